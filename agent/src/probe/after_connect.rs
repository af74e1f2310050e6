//! What follows a successful connect: a server that hangs up at once, the banner it sends
//! unprompted, a TLS handshake and one HTTP request when the target asks for them (and the
//! redirects after it, with `follow`), and the phase timings (dns, connect, tls, first byte).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::TcpStream;
use whyrefused_shared::{AfterConnect, EarlyClose, Phases};

use super::{http, redirects, tls};
use crate::clock;
use crate::policy::TargetPolicy;
use crate::rate::SharedBudget;
use crate::target::{Host, Target};

/// How long a plain connection is watched for a banner or a hang-up. Servers that speak first
/// (SSH, SMTP, FTP, MySQL) do so within milliseconds; one that fails closes as fast.
pub const BANNER_WAIT: Duration = Duration::from_millis(250);

/// The most of a banner shown.
pub const MAX_BANNER_CHARS: usize = 160;

/// Schemes spoken over TLS.
const TLS_SCHEMES: [&str; 8] = ["https", "wss", "ftps", "imaps", "pop3s", "smtps", "ldaps", "ircs"];

/// Schemes whose server answers an HTTP request.
const HTTP_SCHEMES: [&str; 4] = ["http", "https", "ws", "wss"];

/// What to do after a connect, decided from the target and the request.
#[derive(Debug, Clone)]
pub struct AfterConnectPlan {
    /// The name for TLS (SNI, certificate match) and the HTTP `Host` header.
    pub host: Host,
    /// The port, for the `Host` header when it is not the scheme's default.
    pub port: u16,
    /// Whether to run a TLS handshake.
    pub tls: bool,
    /// The path to request, when an HTTP request is sent.
    pub http_path: Option<String>,
    /// The statuses that count as working, recorded in the HTTP report for the verdict.
    pub expect_status: Vec<u16>,
    /// Whether to follow redirects, and where a redirect may lead (the check's policy).
    pub follow: Option<Arc<TargetPolicy>>,
    /// The agent's connect budget, which a redirect's connect takes from too.
    pub budget: SharedBudget,
    /// How long each exchange may take.
    pub deadline: Duration,
}

/// What the request asks of the exchange after the connect.
#[derive(Debug, Clone, Default)]
pub struct Asked {
    /// TLS whatever the scheme.
    pub tls: bool,
    /// An HTTP request whatever the scheme.
    pub http: bool,
    /// The statuses that count as working (implies HTTP).
    pub expect_status: Vec<u16>,
    /// Follow redirects where this policy allows (implies HTTP).
    pub follow: Option<Arc<TargetPolicy>>,
    /// The agent's connect budget, for a redirect's connects.
    pub budget: SharedBudget,
}

impl AfterConnectPlan {
    /// The plan for `target`: TLS for TLS schemes or when asked, HTTP for web schemes or when
    /// asked (an expected status or following redirects asks for it too).
    pub fn for_target(target: &Target, asked: &Asked, deadline: Duration) -> AfterConnectPlan {
        let scheme = target.scheme.as_deref().unwrap_or_default();
        let wants_http = HTTP_SCHEMES.contains(&scheme)
            || asked.http
            || !asked.expect_status.is_empty()
            || asked.follow.is_some();
        let http_path = wants_http
            .then(|| target.path.clone().filter(|p| !p.is_empty()).unwrap_or_else(|| "/".into()));
        AfterConnectPlan {
            host: target.host.clone(),
            port: target.port,
            tls: asked.tls || TLS_SCHEMES.contains(&scheme),
            http_path,
            expect_status: asked.expect_status.clone(),
            follow: asked.follow.clone(),
            budget: asked.budget.clone(),
            deadline,
        }
    }
}

/// Watches the connection `stream` to `address` opened in `connect_us`, after a lookup of
/// `dns_us`, and reports what happened. The connection is closed (reset) at the end.
pub async fn after_connect(
    stream: TcpStream,
    address: SocketAddr,
    plan: &AfterConnectPlan,
    dns_us: u64,
    connect_us: u64,
) -> AfterConnect {
    let phases = Phases { dns_us, connect_us, tls_us: None, first_byte_us: None };
    let mut report =
        AfterConnect { address, early_close: None, banner: None, tls: None, http: None, phases };
    if plan.tls {
        let handshake = tls::handshake(stream, &plan.host, plan.deadline).await;
        report.phases.tls_us = Some(handshake.report.elapsed_us);
        report.early_close = handshake.early_close;
        let verified = handshake.report.ok;
        let asked = handshake.report.client_certificate_requested;
        report.tls = Some(handshake.report);
        match handshake.stream {
            Some(stream) if verified => speak(stream, plan, &mut report).await,
            // Nothing is sent over a refused certificate, but a TLS 1.3 server that wanted a
            // client certificate says so on its own, right after the handshake.
            Some(mut stream) if asked => {
                let error = watch_for_banner(&mut stream, BANNER_WAIT, &mut report).await;
                settle_tls(error, &mut report);
            }
            _ => {}
        }
    } else {
        speak(stream, plan, &mut report).await;
    }
    if plan.follow.is_some() {
        redirects::follow(plan, address, &mut report).await;
    }
    report
}

/// Over an open (and, with TLS, handshaken) connection: one HTTP request, or a wait for a
/// banner. An alert on the first read after a TLS 1.3 handshake fails the TLS report instead.
pub(super) async fn speak<S>(mut stream: S, plan: &AfterConnectPlan, report: &mut AfterConnect)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let error = match &plan.http_path {
        Some(path) => {
            let request = request_text(&plan.host, plan.port, plan.tls, path);
            let mut done = http::exchange(&mut stream, &request, plan.deadline).await;
            report.phases.first_byte_us = done.http.first_byte_us;
            report.early_close = report.early_close.or(done.early_close);
            done.http.expected_status = plan.expect_status.clone();
            report.http = Some(done.http);
            done.error
        }
        None => watch_for_banner(&mut stream, plan.deadline.min(BANNER_WAIT), report).await,
    };
    settle_tls(error, report);
}

/// After the first read over TLS: an alert then (TLS 1.3's `certificate_required`), or a
/// hang-up from a server that had asked for a client certificate, fails the TLS report; the
/// exchange it cut short is then no HTTP answer.
fn settle_tls(error: Option<std::io::Error>, report: &mut AfterConnect) {
    let Some(tls) = report.tls.as_mut() else { return };
    let alerted = error.is_some_and(|error| tls::alert_after_handshake(tls, &error));
    let hung_up = report.early_close.is_some() && tls.client_certificate_requested;
    if hung_up && !alerted {
        tls.ok = false;
        tls.error = Some(
            "the server asked for a client certificate and hung up when none came: it wants a \
             client certificate"
                .into(),
        );
    }
    if alerted || hung_up {
        report.early_close = None;
        report.http = None;
    }
}

/// Waits briefly for the server to speak first or hang up; returns the read error, if any.
async fn watch_for_banner<S: AsyncRead + Unpin>(
    stream: &mut S,
    wait: Duration,
    report: &mut AfterConnect,
) -> Option<std::io::Error> {
    let start = Instant::now();
    match first_read(stream, wait).await {
        FirstRead::Data(bytes) => {
            report.phases.first_byte_us = Some(clock::micros(start.elapsed()));
            report.banner = Some(printable(&bytes));
        }
        FirstRead::Ended(how) => report.early_close = Some(how),
        FirstRead::Silent => {}
        FirstRead::Failed(error) => return Some(error),
    }
    None
}

pub(super) fn request_text(host: &Host, port: u16, tls: bool, path: &str) -> String {
    let host = match host {
        Host::Ip(std::net::IpAddr::V6(ip)) => format!("[{ip}]"),
        Host::Ip(ip) => ip.to_string(),
        Host::Name { ascii, .. } => ascii.clone(),
    };
    let default_port = if tls { 443 } else { 80 };
    let authority = match port == default_port {
        true => host,
        false => format!("{host}:{port}"),
    };
    // The path was made safe when the target was parsed; encoding again (a no-op then) keeps
    // the request line one line whatever builds a plan.
    let path = crate::target::request_target(path);
    format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: whyrefused/{}\r\n\
         Accept: */*\r\nConnection: close\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    )
}

/// How the first read on a fresh connection ended.
enum FirstRead {
    /// The server sent these bytes.
    Data(Vec<u8>),
    /// The server closed or reset the connection.
    Ended(EarlyClose),
    /// Nothing within the wait.
    Silent,
    /// Another error.
    Failed(std::io::Error),
}

async fn first_read<S: AsyncRead + Unpin>(stream: &mut S, wait: Duration) -> FirstRead {
    let mut buffer = vec![0; 1024];
    match tokio::time::timeout(wait, stream.read(&mut buffer)).await {
        Err(_) => FirstRead::Silent,
        Ok(Ok(0)) => FirstRead::Ended(EarlyClose::Closed),
        Ok(Ok(read)) => {
            buffer.truncate(read);
            FirstRead::Data(buffer)
        }
        Ok(Err(error)) => match error.kind() {
            std::io::ErrorKind::ConnectionReset => FirstRead::Ended(EarlyClose::Reset),
            std::io::ErrorKind::UnexpectedEof => FirstRead::Ended(EarlyClose::Closed),
            _ => FirstRead::Failed(error),
        },
    }
}

/// The bytes as one readable line: control characters become spaces, runs of space collapse,
/// and it is cut at [`MAX_BANNER_CHARS`].
pub fn printable(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let cleaned: String =
        text.chars().map(|c| if c.is_control() || c == '\u{fffd}' { ' ' } else { c }).collect();
    let mut line = cleaned.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() > MAX_BANNER_CHARS {
        line = line.chars().take(MAX_BANNER_CHARS).collect::<String>() + "…";
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    fn plan_for(text: &str, tls: bool) -> AfterConnectPlan {
        let target = Target::parse(text, None).unwrap();
        let asked = Asked { tls, ..Asked::default() };
        AfterConnectPlan::for_target(&target, &asked, Duration::from_secs(2))
    }

    #[test]
    fn the_scheme_decides_tls_and_http() {
        let https = plan_for("https://example.com/health", false);
        assert!(https.tls);
        assert_eq!(https.http_path.as_deref(), Some("/health"));
        let http = plan_for("http://example.com", false);
        assert!(!http.tls);
        assert_eq!(http.http_path.as_deref(), Some("/"));
        let plain = plan_for("db.internal:5432", false);
        assert!(!plain.tls && plain.http_path.is_none());
        assert!(plan_for("db.internal:5432", true).tls);
        assert!(plan_for("smtps://mail.example.com", false).tls);
        let target = Target::parse("db.internal:8080", None).unwrap();
        let asked = Asked { expect_status: vec![200], ..Asked::default() };
        let expecting = AfterConnectPlan::for_target(&target, &asked, Duration::from_secs(1));
        assert_eq!(expecting.http_path.as_deref(), Some("/"), "an expected status asks for HTTP");
    }

    #[test]
    fn the_host_header_carries_the_port_only_when_it_is_not_the_default() {
        let text =
            |plan: AfterConnectPlan, path| request_text(&plan.host, plan.port, plan.tls, path);
        let request = text(plan_for("http://example.com:8080/x", false), "/x");
        assert!(request.starts_with("GET /x HTTP/1.1\r\nHost: example.com:8080\r\n"));
        let request = text(plan_for("https://[::1]/", false), "/");
        assert!(request.contains("\r\nHost: [::1]\r\n"), "{request}");
    }

    #[test]
    fn banners_are_made_printable_and_short() {
        assert_eq!(printable(b"220 mail ESMTP\r\n"), "220 mail ESMTP");
        assert_eq!(printable(b"\x00\x01ab\xffc"), "ab c");
        assert_eq!(printable(&[b'x'; 400]).chars().count(), MAX_BANNER_CHARS + 1);
    }

    /// A loopback server that runs `serve` on its first connection.
    async fn server<F, Fut>(serve: F) -> SocketAddr
    where
        F: FnOnce(TcpStream) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            serve(stream).await;
        });
        address
    }

    async fn watch(address: SocketAddr, plan: &AfterConnectPlan) -> AfterConnect {
        let stream = TcpStream::connect(address).await.unwrap();
        after_connect(stream, address, plan, 10, 20).await
    }

    #[tokio::test]
    async fn a_server_that_hangs_up_at_once_is_an_early_close() {
        let address = server(|stream| async move { drop(stream) }).await;
        let report = watch(address, &plan_for("127.0.0.1:1", false)).await;
        assert_eq!(report.early_close, Some(EarlyClose::Closed));
        assert_eq!((report.phases.dns_us, report.phases.connect_us), (10, 20));
    }

    #[tokio::test]
    async fn a_server_that_speaks_first_shows_its_banner() {
        let address = server(|mut stream| async move {
            stream.write_all(b"SSH-2.0-OpenSSH_9.2\r\n").await.unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
        })
        .await;
        let report = watch(address, &plan_for("127.0.0.1:1", false)).await;
        assert_eq!(report.banner.as_deref(), Some("SSH-2.0-OpenSSH_9.2"));
        assert_eq!(report.early_close, None);
        assert!(report.phases.first_byte_us.is_some());
    }

    #[tokio::test]
    async fn an_http_server_answers_with_its_status_and_first_byte_time() {
        let address = server(|mut stream| async move {
            let mut request = vec![0; 1024];
            let read = stream.read(&mut request).await.unwrap();
            assert!(request[..read].starts_with(b"GET /health HTTP/1.1\r\n"));
            stream.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").await.unwrap();
        })
        .await;
        let report = watch(address, &plan_for("http://127.0.0.1:1/health", false)).await;
        let http = report.http.unwrap();
        assert_eq!((http.status, http.failed), (Some(204), false));
        assert_eq!(http.first_byte_us, report.phases.first_byte_us);
    }

    #[tokio::test]
    async fn tls_to_a_plain_text_server_fails_with_a_reason() {
        let address = server(|mut stream| async move {
            let mut hello = vec![0; 1024];
            let _ = stream.read(&mut hello).await;
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
            tokio::time::sleep(Duration::from_secs(1)).await;
        })
        .await;
        let report = watch(address, &plan_for("https://127.0.0.1:1/", false)).await;
        let tls = report.tls.unwrap();
        assert!(!tls.ok);
        assert!(tls.error.unwrap().contains("plain-text"), "");
        assert!(report.http.is_none(), "no request goes over a failed handshake");
    }
}
