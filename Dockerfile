# whyrefused in a container: the static binary `./dev dist` builds, on distroless's static image
# (no shell, no libc: CA certificates for https checks, /etc/passwd, and the nonroot user, 65532).
#
#   ./dev dist                              # dist/whyrefused-VERSION-{x86_64,aarch64}-unknown-linux-musl
#   docker build -t whyrefused .            # or: docker buildx build --platform linux/amd64,linux/arm64
#   docker run --rm --network host whyrefused check db.internal:5432
#   docker run -d --name whyrefused --network host whyrefused serve   # the page on the host's 127.0.0.1:7070
#
# --network host: the checks start from the host's own addresses, routes and DNS, as the CLI's do
# there (in a bridge network they would start from the container's). See README.md, "Installing".
ARG TARGETARCH

FROM gcr.io/distroless/static-debian12:nonroot AS base

FROM base AS arch-amd64
COPY dist/whyrefused-*-x86_64-unknown-linux-musl /usr/bin/whyrefused

FROM base AS arch-arm64
COPY dist/whyrefused-*-aarch64-unknown-linux-musl /usr/bin/whyrefused

# BuildKit (docker's builder) sets TARGETARCH to the platform built for: amd64 or arm64.
FROM arch-${TARGETARCH}
USER nonroot:nonroot
ENTRYPOINT ["/usr/bin/whyrefused"]
CMD ["serve"]
