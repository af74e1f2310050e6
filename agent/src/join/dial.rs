//! Dialling a hub: the URL rules and the one function that opens the socket.
//!
//! Everything about how a hub is reached lives here, so TLS (`wss://` with a pinned certificate)
//! can be added in one place: [`dial`] returns the socket every caller (`serve --join`,
//! `agents --via`, `check --via`) then speaks the protocol over.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::http::Uri;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use whyrefused_shared::WS_PATH;

use crate::server::tls::{parse_fingerprint, pinned_client_config, provider};

/// How long opening a hub's socket (TCP and the WebSocket upgrade) may take.
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(10);

/// An open socket to a hub.
pub type HubSocket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A hub's address, checked: `ws://` to a loopback host, or `wss://` to any; the path defaults
/// to [`WS_PATH`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubUrl {
    /// The URL to open, path included (`ws://127.0.0.1:7070/ws`).
    url: String,
    /// The host, without brackets.
    host: String,
    /// The port.
    port: u16,
    /// How the hub's TLS certificate is trusted; `None` for plain `ws://`.
    tls: Option<Trust>,
}

/// How a `wss://` hub's certificate is trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// Exactly the certificate with this SHA-256 (a self-signed agent's, as it printed it).
    Pinned([u8; 32]),
    /// A certificate for the hub's name from an authority this host trusts.
    SystemRoots,
}

impl std::fmt::Display for HubUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url)
    }
}

/// Why a hub cannot be dialled. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    #[error(
        "'{0}' is not a hub URL: write wss://HOST:PORT, or ws://127.0.0.1:PORT for a hub on this \
         host (for example wss://hub.example:7070)"
    )]
    Invalid(String),
    #[error(
        "'{url}': plain ws:// only for a loopback hub; use wss:// (the token would cross the network in clear)"
    )]
    PlainNotLoopback { url: String },
    #[error("'{url}': a certificate fingerprint is for wss:// hubs; this one is plain ws://")]
    PinWithoutTls { url: String },
    #[error("{0}")]
    Fingerprint(String),
    #[error("the TLS handshake with {url} failed: {detail}")]
    Tls { url: String, detail: String },
    #[error(
        "the TLS handshake with {url} failed: {detail}: the hub's certificate is not the one \
         pinned; check the fingerprint the hub printed at start (--tls-fingerprint, or \
         --join-tls-fingerprint)"
    )]
    PinMismatch { url: String, detail: String },
    #[error(
        "the TLS handshake with {url} failed (UnknownIssuer): the hub's certificate is not \
         signed by an authority this host trusts: pin the fingerprint it printed with \
         --tls-fingerprint (or --join-tls-fingerprint)"
    )]
    UnknownIssuer { url: String },
    #[error("cannot reach the hub at {url}: {source}")]
    Connect { url: String, source: std::io::Error },
    #[error("the hub at {url} refused the WebSocket: {detail}")]
    Upgrade { url: String, detail: String },
    #[error("the hub at {url} did not answer within {} s", DIAL_TIMEOUT.as_secs())]
    Timeout { url: String },
}

impl DialError {
    /// The hub's certificate is not the one this side trusts: a mistake in what the user gave
    /// (or an impostor), which trying again will not fix.
    pub fn is_untrusted_certificate(&self) -> bool {
        matches!(self, DialError::PinMismatch { .. } | DialError::UnknownIssuer { .. })
    }
}

impl HubUrl {
    /// Checks a hub URL given by the user, with the fingerprint to pin for `wss://`, if any.
    pub fn parse(text: &str, fingerprint: Option<&str>) -> Result<HubUrl, DialError> {
        let invalid = || DialError::Invalid(text.to_string());
        let uri: Uri = text.parse().map_err(|_| invalid())?;
        let host = uri.host().ok_or_else(invalid)?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        let pin = fingerprint
            .map(|text| parse_fingerprint(text).map_err(|e| DialError::Fingerprint(e.to_string())))
            .transpose()?;
        let (scheme, tls, default_port) = match (uri.scheme_str(), pin) {
            (Some("ws"), Some(_)) => return Err(DialError::PinWithoutTls { url: text.into() }),
            (Some("ws"), None) if !is_loopback_host(&host) => {
                return Err(DialError::PlainNotLoopback { url: text.to_string() });
            }
            (Some("ws"), None) => ("ws", None, 80),
            (Some("wss"), Some(pin)) => ("wss", Some(Trust::Pinned(pin)), 443),
            (Some("wss"), None) => ("wss", Some(Trust::SystemRoots), 443),
            _ => return Err(invalid()),
        };
        let port = uri.port_u16().unwrap_or(default_port);
        let path = match uri.path() {
            "" | "/" => WS_PATH,
            path => path,
        };
        let shown_host = if host.contains(':') { format!("[{host}]") } else { host.clone() };
        Ok(HubUrl { url: format!("{scheme}://{shown_host}:{port}{path}"), host, port, tls })
    }
}

/// `localhost`, or a loopback address literal.
fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|address| address.is_loopback())
}

/// Opens a WebSocket to the hub; returns it and the hub's socket address. The protocol (hello,
/// token) is the caller's.
pub async fn dial(url: &HubUrl) -> Result<(HubSocket, SocketAddr), DialError> {
    let shown = url.url.clone();
    let work = async {
        let (stream, peer) = open(url).await?;
        let request = url
            .url
            .as_str()
            .into_client_request()
            .map_err(|_| DialError::Invalid(shown.clone()))?;
        let (socket, _response) =
            tokio_tungstenite::client_async_with_config(request, stream, None).await.map_err(
                |error| DialError::Upgrade { url: shown.clone(), detail: upgrade_detail(error) },
            )?;
        Ok((socket, peer))
    };
    tokio::time::timeout(DIAL_TIMEOUT, work)
        .await
        .unwrap_or_else(|_| Err(DialError::Timeout { url: shown.clone() }))
}

/// Opens the TCP connection to the hub, and TLS on it for `wss://` (no deadline: the caller's).
async fn open(url: &HubUrl) -> Result<(MaybeTlsStream<TcpStream>, SocketAddr), DialError> {
    let shown = url.url.clone();
    let tcp = TcpStream::connect((url.host.as_str(), url.port))
        .await
        .map_err(|source| DialError::Connect { url: shown.clone(), source })?;
    // Events are small frames in bursts: see the server's note on Nagle's algorithm.
    let _ = tcp.set_nodelay(true);
    let peer =
        tcp.peer_addr().map_err(|source| DialError::Connect { url: shown.clone(), source })?;
    let stream = match &url.tls {
        None => MaybeTlsStream::Plain(tcp),
        Some(trust) => MaybeTlsStream::Rustls(handshake(tcp, &url.host, trust, &shown).await?),
    };
    Ok((stream, peer))
}

/// A connection to the hub for a plain HTTP request beside its WebSocket (the API), over TLS
/// for a `wss://` hub with the same trust; within [`DIAL_TIMEOUT`].
pub async fn connect(url: &HubUrl) -> Result<MaybeTlsStream<TcpStream>, DialError> {
    let opened = tokio::time::timeout(DIAL_TIMEOUT, open(url)).await;
    let (stream, _peer) =
        opened.unwrap_or_else(|_| Err(DialError::Timeout { url: url.url.clone() }))?;
    Ok(stream)
}

impl HubUrl {
    /// The hub's host and port as a `Host` header names them (IPv6 in brackets).
    pub fn authority(&self) -> String {
        match self.host.contains(':') {
            true => format!("[{}]:{}", self.host, self.port),
            false => format!("{}:{}", self.host, self.port),
        }
    }
}

/// The TLS handshake with a `wss://` hub, trusting its certificate as `trust` says.
async fn handshake(
    tcp: TcpStream,
    host: &str,
    trust: &Trust,
    shown: &str,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, DialError> {
    let config = match trust {
        Trust::Pinned(pin) => pinned_client_config(*pin),
        Trust::SystemRoots => system_roots_config(),
    };
    let name = match host.parse::<IpAddr>() {
        Ok(address) => ServerName::IpAddress(address.into()),
        Err(_) => ServerName::try_from(host.to_string())
            .map_err(|_| DialError::Invalid(shown.to_string()))?,
    };
    TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|error| handshake_error(&error, trust, shown))
}

/// Tells a certificate this side does not trust (a pin mismatch, an unknown authority) from
/// other handshake failures, so the message can say what to do.
fn handshake_error(error: &std::io::Error, trust: &Trust, shown: &str) -> DialError {
    let url = shown.to_string();
    let detail = error.to_string();
    let cause = error.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match (trust, cause) {
        // The pinned verifier refuses with its own words (the certificate's real fingerprint).
        (
            Trust::Pinned(_),
            Some(rustls::Error::General(_) | rustls::Error::InvalidCertificate(_)),
        ) => DialError::PinMismatch { url, detail },
        (
            Trust::SystemRoots,
            Some(rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)),
        ) => DialError::UnknownIssuer { url },
        _ => DialError::Tls { url, detail },
    }
}

/// Trusts what this host's certificate store trusts, for the hub's name.
fn system_roots_config() -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// The hub's own words for a refused upgrade (its status and body), else the error.
fn upgrade_detail(error: tokio_tungstenite::tungstenite::Error) -> String {
    match error {
        tokio_tungstenite::tungstenite::Error::Http(response) => {
            let body = response.body().as_deref().map(String::from_utf8_lossy).unwrap_or_default();
            format!("{} {}", response.status(), body.trim())
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_ws_urls_are_taken_and_get_the_socket_path() {
        let url = HubUrl::parse("ws://127.0.0.1:7070", None).unwrap();
        assert_eq!(url.to_string(), "ws://127.0.0.1:7070/ws");
        assert_eq!(HubUrl::parse("ws://[::1]:9/ws", None).unwrap().to_string(), "ws://[::1]:9/ws");
        assert_eq!(HubUrl::parse("ws://localhost:1/", None).unwrap().port, 1);
    }

    #[test]
    fn plain_ws_to_another_host_is_refused_and_says_to_use_wss() {
        for url in ["ws://192.0.2.7:7070", "ws://hub.example:7070/ws", "ws://[2001:db8::1]:1"] {
            let error = HubUrl::parse(url, None).unwrap_err().to_string();
            assert!(error.contains("plain ws:// only for a loopback hub; use wss://"), "{error}");
        }
    }

    #[test]
    fn other_schemes_and_garbage_are_refused() {
        assert!(matches!(HubUrl::parse("http://127.0.0.1:1", None), Err(DialError::Invalid(_))));
        assert!(matches!(HubUrl::parse("127.0.0.1:7070", None), Err(DialError::Invalid(_))));
        assert!(matches!(HubUrl::parse("not a url", None), Err(DialError::Invalid(_))));
    }

    #[test]
    fn wss_hubs_are_pinned_to_a_fingerprint_or_trusted_by_the_system() {
        let pin = "AB:".repeat(31) + "CD";
        let pinned = HubUrl::parse("wss://hub.example", Some(&pin)).unwrap();
        assert_eq!(pinned.to_string(), "wss://hub.example:443/ws");
        assert!(matches!(pinned.tls, Some(Trust::Pinned(digest)) if digest[31] == 0xCD));
        let system = HubUrl::parse("wss://192.0.2.7:7070", None).unwrap();
        assert_eq!(system.tls, Some(Trust::SystemRoots));
        let plain = HubUrl::parse("ws://127.0.0.1:1", Some(&pin)).unwrap_err().to_string();
        assert!(plain.contains("fingerprint is for wss://"), "{plain}");
        let bad = HubUrl::parse("wss://hub:1", Some("12:34")).unwrap_err().to_string();
        assert!(bad.contains("64 hexadecimal digits"), "{bad}");
    }
}
