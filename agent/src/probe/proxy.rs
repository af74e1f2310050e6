//! One exchange with a proxy, as the program would have it: connect to the proxy (with TLS for an
//! `https://` proxy, its certificate verified as a client would), then for an HTTP proxy send
//! `CONNECT host:port` (for https:// targets) or the request itself with the full URL (for
//! http:// ones), with `Proxy-Authorization` when the proxy variable carries credentials, and
//! read the proxy's status line; for a SOCKS5 proxy ([`super::socks`]), its `CONNECT` and reply.
//! Nothing is decided here; the request is never logged.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::after_connect::printable;
use super::socks::{self, Destination, SocksOutcome};
use crate::clock;
use crate::rate::{self, ConnectBudget};
use crate::target::Host;

/// The most read of the proxy's answer: its status line and headers.
const MAX_HEAD: usize = 8 * 1024;

/// What to send through the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyRequest {
    /// `CONNECT authority`: a tunnel, for https:// (and any non-HTTP) target.
    Connect { authority: String },
    /// `GET url` with the full URL: the request itself, for an http:// target.
    Get { url: String, authority: String },
    /// SOCKS5 `CONNECT` (any target: a SOCKS proxy only makes tunnels).
    Socks { destination: Destination, authority: String },
}

impl ProxyRequest {
    /// The request line without the protocol: `CONNECT db:443`, `GET http://x/`.
    pub fn line(&self) -> String {
        match self {
            ProxyRequest::Connect { authority } => format!("CONNECT {authority}"),
            ProxyRequest::Get { url, .. } => format!("GET {url}"),
            ProxyRequest::Socks { authority, .. } => format!("SOCKS5 CONNECT {authority}"),
        }
    }

    /// Whether the proxy is asked for a tunnel (rather than to send the request itself).
    pub fn is_tunnel(&self) -> bool {
        !matches!(self, ProxyRequest::Get { .. })
    }

    /// The whole HTTP request, with `authorization` (`Basic …`) when given.
    fn text(&self, authorization: Option<&str>) -> String {
        let host = match self {
            ProxyRequest::Connect { authority }
            | ProxyRequest::Get { authority, .. }
            | ProxyRequest::Socks { authority, .. } => authority,
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
    /// The status code, when a status line arrived; for a SOCKS5 proxy, the HTTP status its
    /// reply amounts to (see `socks_answer`).
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

/// How to reach the proxy and speak to it.
pub struct ProxyDial<'a> {
    /// Its address, which the caller has checked against its policy.
    pub address: SocketAddr,
    /// For an `https://` proxy, its host: the TLS handshake's name, verified against this
    /// host's trusted roots.
    pub tls_host: Option<&'a Host>,
    /// The `Proxy-Authorization` value (`Basic …`) of an HTTP proxy with credentials.
    pub authorization: Option<String>,
    /// The user name and password of a SOCKS5 proxy with credentials.
    pub credentials: Option<(&'a str, &'a str)>,
}

/// Connects to the proxy and sends `request`, waiting at most `deadline` for each part.
pub async fn ask(
    proxy: &ProxyDial<'_>,
    request: &ProxyRequest,
    deadline: Duration,
    budget: Option<&ConnectBudget>,
) -> ProxyAnswer {
    rate::before_connect(budget).await;
    let start = Instant::now();
    let mut answer = match tokio::time::timeout(deadline, super::connect::open(proxy.address)).await
    {
        Ok(Ok(stream)) => match proxy.tls_host {
            Some(host) => {
                let handshake = super::tls::handshake(stream, host, deadline).await;
                match (handshake.stream, handshake.report.ok) {
                    (Some(mut stream), true) => talk(&mut stream, proxy, request, deadline).await,
                    _ => failed(format!(
                        "its TLS handshake failed: {}",
                        handshake.report.error.unwrap_or_else(|| "no reason given".into())
                    )),
                }
            }
            None => {
                let mut stream = stream;
                talk(&mut stream, proxy, request, deadline).await
            }
        },
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

/// The exchange on an open connection: SOCKS5 or HTTP, as the request says.
async fn talk<S>(
    stream: &mut S,
    proxy: &ProxyDial<'_>,
    request: &ProxyRequest,
    deadline: Duration,
) -> ProxyAnswer
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let ProxyRequest::Socks { destination, .. } = request else {
        return exchange(stream, request, proxy.authorization.as_deref(), deadline).await;
    };
    match tokio::time::timeout(deadline, socks::connect(stream, destination, proxy.credentials))
        .await
    {
        Ok(outcome) => socks_answer(outcome, proxy.credentials.is_some()),
        Err(_) => {
            failed(format!("the proxy sent no SOCKS5 answer within {} ms", deadline.as_millis()))
        }
    }
}

/// A SOCKS5 outcome as the HTTP status it amounts to, so one verdict reads both kinds of proxy:
/// success is 200, "not allowed by ruleset" 403, a refused or missing login 407, the proxy's
/// failure to reach the target (refused, unreachable, TTL expired, general failure) 502, and a
/// request it does not support 400. The status line says what the proxy really replied.
fn socks_answer(outcome: SocksOutcome, had_credentials: bool) -> ProxyAnswer {
    let (status, line) = match outcome {
        SocksOutcome::Reply(code) => {
            let status = match code {
                0 => 200,
                2 => 403,
                1 | 3..=6 => 502,
                _ => 400,
            };
            (status, format!("SOCKS5 reply {code}: {}", socks::reply_words(code)))
        }
        SocksOutcome::AuthFailed => (407, "SOCKS5: the user name and password were refused".into()),
        SocksOutcome::NoAcceptableMethod => {
            let offered = match had_credentials {
                true => "no authentication, or a user name and password",
                false => "no authentication",
            };
            (407, format!("SOCKS5: the proxy accepts none of the methods offered ({offered})"))
        }
        SocksOutcome::Broken(why) => return failed(why),
    };
    ProxyAnswer {
        status: Some(status),
        status_line: Some(line),
        authenticate: None,
        error: None,
        elapsed_us: 0,
    }
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
        let proxy = ProxyDial { address, tls_host: None, authorization: None, credentials: None };
        let answer = ask(&proxy, &request, Duration::from_secs(2), None).await;
        assert_eq!(answer.status, Some(200));
        assert!(answer.elapsed_us < 1_000_000, "{answer:?}");
        server.abort();
    }
}
