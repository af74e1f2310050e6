//! Dialling a hub: the URL rules and the one function that opens the socket.
//!
//! Everything about how a hub is reached lives here, so TLS (`wss://` with a pinned certificate)
//! can be added in one place: [`dial`] returns the socket every caller (`serve --join`,
//! `agents --via`, `check --via`) then speaks the protocol over.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::http::Uri;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use whyrefused_shared::WS_PATH;

/// How long opening a hub's socket (TCP and the WebSocket upgrade) may take.
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(10);

/// An open socket to a hub.
pub type HubSocket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A hub's address, checked: `ws://` to a loopback host (for now), the path defaulting to
/// [`WS_PATH`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubUrl {
    /// The URL to open, path included (`ws://127.0.0.1:7070/ws`).
    url: String,
    /// The host, without brackets.
    host: String,
    /// The port.
    port: u16,
}

impl std::fmt::Display for HubUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url)
    }
}

/// Why a hub cannot be dialled. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    #[error("'{0}' is not a hub URL: write ws://HOST:PORT (for example ws://127.0.0.1:7070)")]
    Invalid(String),
    #[error(
        "'{url}': plain ws:// only for a loopback hub; use wss:// (the token would cross the network in clear)"
    )]
    PlainNotLoopback { url: String },
    #[error("'{url}': wss:// is not supported by this build yet; use ws:// to a loopback hub")]
    TlsUnsupported { url: String },
    #[error("cannot reach the hub at {url}: {source}")]
    Connect { url: String, source: std::io::Error },
    #[error("the hub at {url} refused the WebSocket: {detail}")]
    Upgrade { url: String, detail: String },
    #[error("the hub at {url} did not answer within {} s", DIAL_TIMEOUT.as_secs())]
    Timeout { url: String },
}

impl HubUrl {
    /// Checks a hub URL given by the user.
    pub fn parse(text: &str) -> Result<HubUrl, DialError> {
        let invalid = || DialError::Invalid(text.to_string());
        let uri: Uri = text.parse().map_err(|_| invalid())?;
        let host = uri.host().ok_or_else(invalid)?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        match uri.scheme_str() {
            Some("ws") => {}
            Some("wss") => return Err(DialError::TlsUnsupported { url: text.to_string() }),
            _ => return Err(invalid()),
        }
        if !is_loopback_host(&host) {
            return Err(DialError::PlainNotLoopback { url: text.to_string() });
        }
        let port = uri.port_u16().unwrap_or(80);
        let path = match uri.path() {
            "" | "/" => WS_PATH,
            path => path,
        };
        let shown_host = if host.contains(':') { format!("[{host}]") } else { host.clone() };
        Ok(HubUrl { url: format!("ws://{shown_host}:{port}{path}"), host, port })
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
        let tcp = TcpStream::connect((url.host.as_str(), url.port))
            .await
            .map_err(|source| DialError::Connect { url: shown.clone(), source })?;
        // Events are small frames in bursts: see the server's note on Nagle's algorithm.
        let _ = tcp.set_nodelay(true);
        let peer =
            tcp.peer_addr().map_err(|source| DialError::Connect { url: shown.clone(), source })?;
        let request = url
            .url
            .as_str()
            .into_client_request()
            .map_err(|_| DialError::Invalid(shown.clone()))?;
        let (socket, _response) =
            tokio_tungstenite::client_async_with_config(request, MaybeTlsStream::Plain(tcp), None)
                .await
                .map_err(|error| DialError::Upgrade {
                    url: shown.clone(),
                    detail: upgrade_detail(error),
                })?;
        Ok((socket, peer))
    };
    tokio::time::timeout(DIAL_TIMEOUT, work)
        .await
        .unwrap_or_else(|_| Err(DialError::Timeout { url: shown.clone() }))
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
        let url = HubUrl::parse("ws://127.0.0.1:7070").unwrap();
        assert_eq!(url.to_string(), "ws://127.0.0.1:7070/ws");
        assert_eq!(HubUrl::parse("ws://[::1]:9/ws").unwrap().to_string(), "ws://[::1]:9/ws");
        assert_eq!(HubUrl::parse("ws://localhost:1/").unwrap().port, 1);
    }

    #[test]
    fn plain_ws_to_another_host_is_refused_and_says_to_use_wss() {
        for url in ["ws://192.0.2.7:7070", "ws://hub.example:7070/ws", "ws://[2001:db8::1]:1"] {
            let error = HubUrl::parse(url).unwrap_err().to_string();
            assert!(error.contains("plain ws:// only for a loopback hub; use wss://"), "{error}");
        }
    }

    #[test]
    fn other_schemes_and_garbage_are_refused() {
        assert!(matches!(HubUrl::parse("wss://hub:1"), Err(DialError::TlsUnsupported { .. })));
        assert!(matches!(HubUrl::parse("http://127.0.0.1:1"), Err(DialError::Invalid(_))));
        assert!(matches!(HubUrl::parse("127.0.0.1:7070"), Err(DialError::Invalid(_))));
        assert!(matches!(HubUrl::parse("not a url"), Err(DialError::Invalid(_))));
    }
}
