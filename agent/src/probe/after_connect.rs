//! What follows a successful connect: a server that hangs up at once, the banner it sends
//! unprompted, a TLS handshake and one HTTP request when the target asks for them, and the
//! phase timings (dns, connect, tls, first byte).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use whyrefused_shared::{AfterConnect, EarlyClose, HttpReport, Phases};

use super::tls;
use crate::clock;
use crate::target::{Host, Target};

/// How long a plain connection is watched for a banner or a hang-up. Servers that speak first
/// (SSH, SMTP, FTP, MySQL) do so within milliseconds; one that fails closes as fast.
pub const BANNER_WAIT: Duration = Duration::from_millis(250);

/// The most of a banner shown.
pub const MAX_BANNER_CHARS: usize = 160;

/// The most read while waiting for an HTTP status line.
const MAX_STATUS_LINE: usize = 8192;

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
    /// How long each exchange may take.
    pub deadline: Duration,
}

impl AfterConnectPlan {
    /// The plan for `target`: TLS for TLS schemes or when `force_tls`, HTTP for web schemes.
    pub fn for_target(target: &Target, force_tls: bool, deadline: Duration) -> AfterConnectPlan {
        let scheme = target.scheme.as_deref().unwrap_or_default();
        let http_path = HTTP_SCHEMES
            .contains(&scheme)
            .then(|| target.path.clone().filter(|p| !p.is_empty()).unwrap_or_else(|| "/".into()));
        AfterConnectPlan {
            host: target.host.clone(),
            port: target.port,
            tls: force_tls || TLS_SCHEMES.contains(&scheme),
            http_path,
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
        report.tls = Some(handshake.report);
        if let (Some(stream), Some(path)) = (handshake.stream, &plan.http_path) {
            exchange_http(stream, plan, path, &mut report).await;
        }
    } else if let Some(path) = &plan.http_path {
        exchange_http(stream, plan, path, &mut report).await;
    } else {
        watch_for_banner(stream, plan.deadline.min(BANNER_WAIT), &mut report).await;
    }
    report
}

/// Waits briefly for the server to speak first or hang up.
async fn watch_for_banner(mut stream: TcpStream, wait: Duration, report: &mut AfterConnect) {
    let start = Instant::now();
    match first_read(&mut stream, wait).await {
        FirstRead::Data(bytes) => {
            report.phases.first_byte_us = Some(clock::micros(start.elapsed()));
            report.banner = Some(printable(&bytes));
        }
        FirstRead::Ended(how) => report.early_close = Some(how),
        FirstRead::Silent | FirstRead::Failed(_) => {}
    }
}

/// Sends one GET and reads the status line.
async fn exchange_http<S>(
    mut stream: S,
    plan: &AfterConnectPlan,
    path: &str,
    report: &mut AfterConnect,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let request = request_text(plan, path);
    let start = Instant::now();
    let mut http = HttpReport { status: None, detail: None, failed: true, first_byte_us: None };
    if let Err(error) = stream.write_all(request.as_bytes()).await {
        http.detail = Some(format!("the request could not be sent: {error}"));
        report.http = Some(http);
        return;
    }
    match first_read(&mut stream, plan.deadline).await {
        FirstRead::Data(mut bytes) => {
            let first_byte_us = clock::micros(start.elapsed());
            http.first_byte_us = Some(first_byte_us);
            report.phases.first_byte_us = Some(first_byte_us);
            read_line(&mut stream, &mut bytes, plan.deadline).await;
            read_status_line(&bytes, &mut http);
        }
        FirstRead::Ended(how) => {
            report.early_close = Some(how);
            http.detail = Some("the server hung up without a response".into());
        }
        FirstRead::Silent => {
            http.detail = Some(format!("no response within {} ms", plan.deadline.as_millis()));
        }
        FirstRead::Failed(error) => http.detail = Some(error),
    }
    report.http = Some(http);
}

fn request_text(plan: &AfterConnectPlan, path: &str) -> String {
    let host = match &plan.host {
        Host::Ip(std::net::IpAddr::V6(ip)) => format!("[{ip}]"),
        Host::Ip(ip) => ip.to_string(),
        Host::Name { ascii, .. } => ascii.clone(),
    };
    let default_port = if plan.tls { 443 } else { 80 };
    let authority = match plan.port == default_port {
        true => host,
        false => format!("{host}:{}", plan.port),
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

/// Reads on until the buffer holds a whole first line (or the limit, or the deadline).
async fn read_line<S: AsyncRead + Unpin>(stream: &mut S, bytes: &mut Vec<u8>, deadline: Duration) {
    let until = tokio::time::Instant::now() + deadline;
    let mut chunk = [0; 1024];
    while !bytes.contains(&b'\n') && bytes.len() < MAX_STATUS_LINE {
        match tokio::time::timeout_at(until, stream.read(&mut chunk)).await {
            Ok(Ok(read)) if read > 0 => bytes.extend_from_slice(&chunk[..read]),
            _ => return,
        }
    }
}

/// Fills `http` from the start of a response: `HTTP/1.1 200 OK`.
fn read_status_line(bytes: &[u8], http: &mut HttpReport) {
    let text = String::from_utf8_lossy(bytes);
    let line = text.lines().next().unwrap_or_default().trim();
    let mut parts = line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let status = parts.next().and_then(|code| code.parse::<u16>().ok());
    match (version.starts_with("HTTP/"), status) {
        (true, Some(status)) if (100..1000).contains(&status) => {
            http.status = Some(status);
            http.detail = parts.next().map(str::to_string).filter(|reason| !reason.is_empty());
            http.failed = false;
        }
        _ => {
            http.detail = Some(format!("not an HTTP response: {}", printable(bytes)));
        }
    }
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
    Failed(String),
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
            _ => FirstRead::Failed(error.to_string()),
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
    use tokio::net::TcpListener;

    fn plan_for(text: &str, force_tls: bool) -> AfterConnectPlan {
        let target = Target::parse(text, None).unwrap();
        AfterConnectPlan::for_target(&target, force_tls, Duration::from_secs(2))
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
    }

    #[test]
    fn the_host_header_carries_the_port_only_when_it_is_not_the_default() {
        let request = request_text(&plan_for("http://example.com:8080/x", false), "/x");
        assert!(request.starts_with("GET /x HTTP/1.1\r\nHost: example.com:8080\r\n"));
        let request = request_text(&plan_for("https://[::1]/", false), "/");
        assert!(request.contains("\r\nHost: [::1]\r\n"), "{request}");
    }

    #[test]
    fn status_lines_are_read_and_anything_else_is_a_failed_exchange() {
        let mut http = HttpReport { status: None, detail: None, failed: true, first_byte_us: None };
        read_status_line(b"HTTP/1.1 503 Service Unavailable\r\nServer: x\r\n", &mut http);
        assert_eq!(
            (http.status, http.detail.as_deref(), http.failed),
            (Some(503), Some("Service Unavailable"), false)
        );
        let mut http = HttpReport { status: None, detail: None, failed: true, first_byte_us: None };
        read_status_line(b"SSH-2.0-OpenSSH_9.2\r\n", &mut http);
        assert!(http.failed);
        assert_eq!(http.detail.as_deref(), Some("not an HTTP response: SSH-2.0-OpenSSH_9.2"));
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
