#!/usr/bin/env bash
# Probes per second through /probe for a closed loopback port: whyrefused (release, the full
# diagnosis: the connect, the nearby ports, this host's listeners) against blackbox_exporter on
# the same machine in the same run, with the same module file and the same scrapers
# (tests/benches/probe_rate.rs), then each one's peak RSS. Only loopback is probed.
#
#   SECONDS_PER_RUN=8 CONCURRENCY=16 bash tests/bench/prometheus.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds=${SECONDS_PER_RUN:-8}
concurrency=${CONCURRENCY:-16}
cargo build --release --quiet -p whyrefused
cargo bench -p whyrefused-tests --bench probe_rate --no-run --quiet 2>/dev/null
binary=${CARGO_TARGET_DIR:-target}/release/whyrefused
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.05; done; echo "nothing listens on $1" >&2; exit 1; }
peak_rss_mib() { awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

printf 'modules:\n  tcp_connect:\n    prober: tcp\n    timeout: 1s\n    tcp:\n      preferred_ip_protocol: ip4\n' >"$work/modules.yml"
closed=$(free_port)
ours=$(free_port)
theirs=$(free_port)
"$binary" serve --listen "127.0.0.1:$ours" --probe-config "$work/modules.yml" >/dev/null 2>&1 &
pids+=($!); our_pid=$!
prometheus-blackbox-exporter --config.file="$work/modules.yml" --web.listen-address="127.0.0.1:$theirs" --log.level=error >/dev/null 2>&1 &
pids+=($!); their_pid=$!
wait_port "$ours"; wait_port "$theirs"

path="/probe?target=127.0.0.1:$closed&module=tcp_connect"
echo "whyrefused says: $(curl -s "http://127.0.0.1:$ours$path" | grep '^whyrefused_probe_cause')"
for round in 1 2; do
  echo "-- round $round"
  printf 'whyrefused:        '
  cargo bench -p whyrefused-tests --bench probe_rate --quiet -- "127.0.0.1:$ours" "$path" "$seconds" "$concurrency" 2>/dev/null
  printf 'blackbox_exporter: '
  cargo bench -p whyrefused-tests --bench probe_rate --quiet -- "127.0.0.1:$theirs" "$path" "$seconds" "$concurrency" 2>/dev/null
done
echo "peak RSS: whyrefused $(peak_rss_mib "$our_pid") MiB, blackbox_exporter $(peak_rss_mib "$their_pid") MiB"
