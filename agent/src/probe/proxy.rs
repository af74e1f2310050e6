//! One exchange with an HTTP proxy, as the program would have it: connect to the proxy, send
//! `CONNECT host:port` (for https:// targets) or the request itself with the full URL (for
//! http:// ones), with `Proxy-Authorization` when the proxy variable carries credentials, and
//! read the proxy's status line. Nothing is decided here; the request is never logged.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::after_connect::printable;
use crate::clock;
use crate::rate::{self, ConnectBudget};

/// The most read of the proxy's answer: its status line and headers.
const MAX_HEAD: usize = 8 * 1024;

/// What to send through the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyRequest {
    /// `CONNECT authority`: a tunnel, for https:// (and any non-HTTP) target.
    Connect { authority: String },
    /// `GET url` with the full URL: the request itself, for an http:// target.
    Get { url: String, authority: String },
}

impl ProxyRequest {
    /// The request line without the protocol: `CONNECT db:443`, `GET http://x/`.
    pub fn line(&self) -> String {
        match self {
            ProxyRequest::Connect { authority } => format!("CONNECT {authority}"),
            ProxyRequest::Get { url, .. } => format!("GET {url}"),
        }
    }

    /// The whole request, with `authorization` (`Basic …`) when given.
    fn text(&self, authorization: Option<&str>) -> String {
        let host = match self {
            ProxyRequest::Connect { authority } | ProxyRequest::Get { authority, .. } => authority,
        };
        let mut text = format!(
            "{} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: whyrefused/{}\r\n",
            self.line(),
            env!("CARGO_PKG_VERSION")
        );
        if let Some(authorization) = authorization {
            text.push_str(&format!("Proxy-Authorization: {authorization}\r\n"));
        }
        if matches!(self, ProxyRequest::Get { .. }) {
            text.push_str("Connection: close\r\n");
        }
        text.push_str("\r\n");
        text
    }
}

/// What the proxy answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyAnswer {
    /// The status code, when a status line arrived.
    pub status: Option<u16>,
    /// The status line, made printable.
    pub status_line: Option<String>,
    /// The `Proxy-Authenticate` header's scheme and realm, made printable (a 407's).
    pub authenticate: Option<String>,
    /// What went wrong instead of an answer (the connect failed, no answer, a close).
    pub error: Option<String>,
    /// From the connect to the status line (or the failure), in microseconds.
    pub elapsed_us: u64,
}

/// Connects to the proxy at `proxy` (an address the caller has checked against its policy)
/// and sends `request`, waiting at most `deadline` for each part.
pub async fn ask(
    proxy: SocketAddr,
    request: &ProxyRequest,
    authorization: Option<&str>,
    deadline: Duration,
    budget: Option<&ConnectBudget>,
) -> ProxyAnswer {
    rate::before_connect(budget).await;
    let start = Instant::now();
    let mut answer = match tokio::time::timeout(deadline, super::connect::open(proxy)).await {
        Ok(Ok(mut stream)) => exchange(&mut stream, request, authorization, deadline).await,
        Ok(Err(failure)) => ProxyAnswer {
            error: Some(format!("the connect to the proxy failed: {}", failure.error)),
            ..ProxyAnswer::default()
        },
        Err(_) => ProxyAnswer {
            error: Some(format!(
                "the connect to the proxy timed out ({} ms)",
                deadline.as_millis()
            )),
            ..ProxyAnswer::default()
        },
    };
    answer.elapsed_us = clock::micros(start.elapsed());
    answer
}

async fn exchange<S>(
    stream: &mut S,
    request: &ProxyRequest,
    authorization: Option<&str>,
    deadline: Duration,
) -> ProxyAnswer
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if let Err(error) = stream.write_all(request.text(authorization).as_bytes()).await {
        return failed(format!("the request could not be sent: {error}"));
    }
    let until = tokio::time::Instant::now() + deadline;
    let mut head = Vec::new();
    let mut chunk = [0u8; 2048];
    loop {
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.len() >= MAX_HEAD {
            break;
        }
        match tokio::time::timeout_at(until, stream.read(&mut chunk)).await {
            Err(_) if head.is_empty() => {
                return failed(format!(
                    "the proxy sent no answer within {} ms",
                    deadline.as_millis()
                ));
            }
            Err(_) => break,
            Ok(Ok(0)) if head.is_empty() => {
                return failed("the proxy closed the connection without an answer".into());
            }
            Ok(Ok(0)) => break,
            Ok(Ok(read)) => head.extend_from_slice(&chunk[..read.min(MAX_HEAD - head.len())]),
            Ok(Err(error)) if head.is_empty() => {
                return failed(format!("the proxy's connection failed: {error}"));
            }
            Ok(Err(_)) => break,
        }
    }
    parse_head(&head)
}

fn failed(error: String) -> ProxyAnswer {
    ProxyAnswer { error: Some(error), ..ProxyAnswer::default() }
}

/// The status line and `Proxy-Authenticate` of an answer's head.
fn parse_head(head: &[u8]) -> ProxyAnswer {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let first = lines.next().unwrap_or_default();
    let status = first
        .strip_prefix("HTTP/")
        .and_then(|rest| rest.split_whitespace().nth(1))
        .and_then(|code| code.parse::<u16>().ok())
        .filter(|code| (100..=599).contains(code));
    let Some(status) = status else {
        return failed(format!("the proxy's answer is not HTTP: {}", printable(head)));
    };
    let authenticate = lines.take_while(|line| !line.is_empty()).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim().eq_ignore_ascii_case("proxy-authenticate").then(|| printable(value.as_bytes()))
    });
    ProxyAnswer {
        status: Some(status),
        status_line: Some(printable(first.as_bytes())),
        authenticate,
        error: None,
        elapsed_us: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connect_request_carries_the_authority_and_credentials_only_in_its_header() {
        let request = ProxyRequest::Connect { authority: "db.internal:443".into() };
        let text = request.text(Some("Basic YTpi"));
        assert!(text.starts_with("CONNECT db.internal:443 HTTP/1.1\r\nHost: db.internal:443\r\n"));
        assert!(text.contains("\r\nProxy-Authorization: Basic YTpi\r\n"));
        assert!(text.ends_with("\r\n\r\n"));
        assert_eq!(request.line(), "CONNECT db.internal:443");
    }

    #[test]
    fn the_status_line_and_the_authentication_scheme_are_read() {
        let answer = parse_head(
            b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"corp\"\r\n\r\n",
        );
        assert_eq!(answer.status, Some(407));
        assert_eq!(
            answer.status_line.as_deref(),
            Some("HTTP/1.1 407 Proxy Authentication Required")
        );
        assert_eq!(answer.authenticate.as_deref(), Some("Basic realm=\"corp\""));
        let junk = parse_head(b"SSH-2.0-OpenSSH_9.2\r\n");
        assert_eq!(junk.status, None);
        assert!(junk.error.unwrap().contains("not HTTP: SSH-2.0-OpenSSH_9.2"));
    }

    #[tokio::test]
    async fn a_tunnel_is_read_without_waiting_for_a_close() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buffer = [0u8; 1024];
            let _ = socket.read(&mut buffer).await.unwrap();
            socket.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").await.unwrap();
            // Held open, as a tunnel is.
            tokio::time::sleep(Duration::from_secs(5)).await;
        });
        let request = ProxyRequest::Connect { authority: "x:443".into() };
        let answer = ask(address, &request, None, Duration::from_secs(2), None).await;
        assert_eq!(answer.status, Some(200));
        assert!(answer.elapsed_us < 1_000_000, "{answer:?}");
        server.abort();
    }
}
