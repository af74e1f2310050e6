//! The page (html, js, wasm, css), built by `build.rs` and carried inside the binary, so one file
//! is all a remote host needs.
//!
//! Who may call: anyone who reaches the agent's address (the page holds no secret; everything it
//! does goes through the WebSocket, which authenticates). Each file was compressed at build time
//! with gzip (every browser takes it; a brotli copy too would weigh about 370 KB in a binary meant
//! to be copied onto hosts) and carries a strong ETag, so a reload costs a `304`. A client that
//! does not accept gzip gets the gzip form inflated, once, then kept: the binary does not carry
//! each file twice. Every response carries a Content-Security-Policy that loads nothing from anywhere but
//! the agent and forbids framing the page (clickjacking).

use std::io::Read as _;
use std::sync::OnceLock;

use axum::Router;
use axum::http::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG,
    HeaderName, IF_NONE_MATCH, REFERRER_POLICY, VARY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// One file of the page, in each encoding it is served in.
pub struct Asset {
    /// The URL path it is served at.
    pub path: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// The first 128 bits of its SHA-256, in hex: the ETag's base.
    pub etag: &'static str,
    /// Compressed with gzip.
    pub gzip: &'static [u8],
    /// The file as built, inflated from `gzip` when a client first asks for no coding.
    identity: OnceLock<Box<[u8]>>,
}

impl Asset {
    /// The file as built: `gzip` inflated on the first call, then kept (the page's own bytes,
    /// checked at build time: bounded by the page's size).
    fn identity(&self) -> &[u8] {
        self.identity.get_or_init(|| {
            let mut inflated = Vec::new();
            if let Err(error) = flate2::read::GzDecoder::new(self.gzip).read_to_end(&mut inflated) {
                // Unreachable with the build script's gzip (a unit test inflates every file).
                tracing::error!(path = self.path, %error, "the page's gzip form does not inflate");
            }
            inflated.into_boxed_slice()
        })
    }
}

include!(concat!(env!("OUT_DIR"), "/page_assets.rs"));

/// The encodings the agent serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Gzip,
    Identity,
}

impl Encoding {
    fn token(self) -> &'static str {
        match self {
            Encoding::Gzip => "gzip",
            Encoding::Identity => "identity",
        }
    }
}

/// The page's Content-Security-Policy: its own scripts (and the one inline module script, by
/// hash), wasm compiled from its own bytes, its stylesheet (and the progress bar's width, a
/// style attribute), the `data:` favicon, WebSockets to itself; never framed.
pub fn content_security_policy() -> String {
    format!(
        "default-src 'none'; script-src 'self' 'wasm-unsafe-eval' {PAGE_SCRIPT_HASH}; \
         style-src 'self'; style-src-attr 'unsafe-inline'; img-src data:; connect-src 'self'; \
         frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )
}

/// Routes serving every file of the built page at its path.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    PAGE_ASSETS.iter().fold(Router::new(), |router, asset| {
        router
            .route(asset.path, get(move |headers: HeaderMap| async move { serve(asset, &headers) }))
    })
}

/// One file, in the best encoding the client accepts, or `304` when it has it already.
fn serve(asset: &'static Asset, request: &HeaderMap) -> Response {
    let accepted = request.get(ACCEPT_ENCODING).and_then(|value| value.to_str().ok()).unwrap_or("");
    let encoding = choose_encoding(accepted);
    let etag = match encoding {
        Encoding::Identity => format!("\"{}\"", asset.etag),
        other => format!("\"{}-{}\"", asset.etag, other.token()),
    };
    let mut headers = HeaderMap::new();
    let mut set = |name: HeaderName, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    set(ETAG, &etag);
    set(CACHE_CONTROL, "no-cache");
    set(VARY, "Accept-Encoding");
    set(CONTENT_SECURITY_POLICY, &content_security_policy());
    set(X_FRAME_OPTIONS, "DENY");
    set(X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(REFERRER_POLICY, "no-referrer");
    let cached = request.get(IF_NONE_MATCH).and_then(|value| value.to_str().ok());
    if cached.is_some_and(|tags| matches_etag(tags, &etag)) {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    set(CONTENT_TYPE, asset.content_type);
    let body = match encoding {
        Encoding::Gzip => asset.gzip,
        Encoding::Identity => asset.identity(),
    };
    if encoding != Encoding::Identity {
        set(CONTENT_ENCODING, encoding.token());
    }
    (headers, body).into_response()
}

/// The encoding `accept_encoding` allows: gzip, else none. A coding with
/// `q=0` is refused; `*` stands for any coding not named.
fn choose_encoding(accept_encoding: &str) -> Encoding {
    let mut weights: Vec<(&str, bool)> = Vec::new();
    for item in accept_encoding.split(',') {
        let mut parts = item.split(';').map(str::trim);
        let name = parts.next().unwrap_or("");
        let refused = parts.any(|parameter| {
            parameter
                .strip_prefix("q=")
                .and_then(|q| q.parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        if !name.is_empty() {
            weights.push((name, !refused));
        }
    }
    let allows = |token: &str| {
        let named = weights.iter().find(|(name, _)| name.eq_ignore_ascii_case(token));
        let any = weights.iter().find(|(name, _)| *name == "*");
        named.or(any).is_some_and(|(_, allowed)| *allowed)
    };
    if allows(Encoding::Gzip.token()) { Encoding::Gzip } else { Encoding::Identity }
}

/// Whether an `If-None-Match` list holds `etag` (or is `*`); weak tags compare by value.
fn matches_etag(if_none_match: &str, etag: &str) -> bool {
    if_none_match
        .split(',')
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == "*" || tag == etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_is_served_when_accepted_and_q_zero_refuses_it() {
        assert_eq!(choose_encoding("gzip, deflate, br, zstd"), Encoding::Gzip);
        assert_eq!(choose_encoding("GZIP"), Encoding::Gzip);
        assert_eq!(choose_encoding("br;q=0, gzip;q=0.5"), Encoding::Gzip);
        assert_eq!(choose_encoding("br, gzip;q=0"), Encoding::Identity);
        assert_eq!(choose_encoding("*;q=0"), Encoding::Identity);
        assert_eq!(choose_encoding("br, *"), Encoding::Gzip);
        assert_eq!(choose_encoding(""), Encoding::Identity);
        assert_eq!(choose_encoding("identity"), Encoding::Identity);
    }

    #[test]
    fn if_none_match_takes_lists_weak_tags_and_star() {
        assert!(matches_etag(r#""a", "b-gzip""#, r#""b-gzip""#));
        assert!(matches_etag(r#"W/"b-gzip""#, r#""b-gzip""#));
        assert!(matches_etag("*", r#""x""#));
        assert!(!matches_etag(r#""b""#, r#""b-gzip""#), "another encoding is another tag");
    }

    #[test]
    fn every_file_is_carried_gzipped_and_inflates_to_the_bytes_its_etag_names() {
        use sha2::Digest as _;
        assert!(PAGE_ASSETS.iter().any(|asset| asset.path == "/"));
        for asset in &PAGE_ASSETS {
            let identity = asset.identity();
            let digest = sha2::Sha256::digest(identity);
            let hex: String = digest[..16].iter().map(|byte| format!("{byte:02x}")).collect();
            assert_eq!(hex, asset.etag, "the inflated gzip of {} is the file as built", asset.path);
        }
    }

    #[test]
    fn the_inline_script_hash_is_the_one_index_html_holds() {
        assert!(PAGE_SCRIPT_HASH.starts_with("'sha256-") && PAGE_SCRIPT_HASH.ends_with("='"));
        assert!(content_security_policy().contains(PAGE_SCRIPT_HASH));
    }
}
