//! One HTTP/1.1 exchange over an open connection (plain or TLS): the request, the status line,
//! the headers that say something about a failure, the body's first line, and where the server
//! cut the response short, if it did.
//!
//! The reader is a loop of "try to parse, else read more": the head ends at the blank line, the
//! body at its `Content-Length`, its last chunk, or the server's close. It stops early once it
//! holds [`MAX_BODY`] bytes of body: the first line is all the report needs.

use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use whyrefused_shared::{EarlyClose, HttpClose, HttpHeader, HttpPart, HttpReport};

use super::after_connect::printable;
use crate::clock;

/// The most read of a response's head (status line and headers).
const MAX_HEAD: usize = 16 * 1024;

/// The most read of a response's body.
const MAX_BODY: usize = 16 * 1024;

/// How long the body is read for once the head has arrived: enough for a page's first line,
/// and a stream that never ends (server-sent events) does not hold the verdict up.
const BODY_WAIT: Duration = Duration::from_millis(500);

/// The headers kept in the report: the ones that say who answered, where to go instead, what
/// credentials are wanted, when to come back, and what the body is.
const KEPT_HEADERS: [&str; 6] =
    ["server", "location", "www-authenticate", "retry-after", "content-type", "via"];

/// What an exchange produced: the report, and how the connection ended when that matters to
/// more than HTTP (a close before any byte is the server hanging up; an I/O error over TLS
/// may be an alert).
pub struct Exchange {
    /// The HTTP report.
    pub http: HttpReport,
    /// The server closed or reset before the first byte of a response.
    pub early_close: Option<EarlyClose>,
    /// The read error that ended the exchange, when it was not a close or a reset.
    pub error: Option<std::io::Error>,
}

/// Sends `request` and reads the response, each read within `deadline` of the request.
pub async fn exchange<S>(stream: &mut S, request: &str, deadline: Duration) -> Exchange
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut http = HttpReport::empty();
    if let Err(error) = stream.write_all(request.as_bytes()).await {
        http.detail = Some(format!("the request could not be sent: {error}"));
        return Exchange { http, early_close: None, error: Some(error) };
    }
    let start = Instant::now();
    let mut until = tokio::time::Instant::now() + deadline;
    let mut response = Response::default();
    let mut chunk = vec![0; 4096];
    let end = loop {
        if response.is_complete() {
            break ReadEnd::Complete;
        }
        match tokio::time::timeout_at(until, stream.read(&mut chunk)).await {
            Err(_) => break ReadEnd::Silent,
            Ok(Ok(0)) => break ReadEnd::Ended(EarlyClose::Closed),
            Ok(Ok(read)) => {
                if response.bytes.is_empty() {
                    http.first_byte_us = Some(clock::micros(start.elapsed()));
                }
                let had_head = response.head.is_some();
                response.push(&chunk[..read]);
                if !had_head && response.head.is_some() {
                    until = until.min(tokio::time::Instant::now() + BODY_WAIT);
                }
            }
            Ok(Err(error)) => match hang_up(&error) {
                Some(how) => break ReadEnd::Ended(how),
                None => break ReadEnd::Failed(error),
            },
        }
    };
    finish(response, end, deadline, http)
}

/// How reading a response ended.
enum ReadEnd {
    /// The whole response (or as much as is read) arrived.
    Complete,
    /// The server closed or reset the connection.
    Ended(EarlyClose),
    /// The deadline passed.
    Silent,
    /// Another read error.
    Failed(std::io::Error),
}

/// Fills the report from what arrived and how reading ended.
fn finish(response: Response, end: ReadEnd, deadline: Duration, mut http: HttpReport) -> Exchange {
    let mut exchange = Exchange { http: HttpReport::empty(), early_close: None, error: None };
    if let Some(head) = &response.head {
        head.fill(&mut http);
        http.body_first_line = body_first_line(&response.body(), http.header("content-type"));
    }
    let received = response.bytes.len() as u64;
    match end {
        ReadEnd::Complete => {}
        ReadEnd::Ended(how) if response.bytes.is_empty() => {
            exchange.early_close = Some(how);
            http.detail = Some("the server hung up without a response".into());
        }
        ReadEnd::Ended(how) => {
            let during = match response.head {
                None if !looks_like_http(&response.bytes) => None,
                None => Some(HttpPart::Headers),
                Some(_) if how == EarlyClose::Reset || !response.ends_at_close() => {
                    Some(HttpPart::Body)
                }
                Some(_) => None,
            };
            if let Some(during) = during {
                http.closed = Some(HttpClose { during, how, bytes_received: received });
                http.failed = true;
                http.detail = Some(describe_close(during, how, received));
            }
        }
        ReadEnd::Silent if response.bytes.is_empty() => {
            http.detail = Some(format!("no response within {} ms", deadline.as_millis()));
        }
        ReadEnd::Silent if response.head.is_none() => {
            http.failed = true;
            http.detail = Some(format!(
                "the headers were still incomplete after {} ms ({received} bytes)",
                deadline.as_millis()
            ));
        }
        // The head arrived; a body still on its way is not a failure, but one that stopped
        // short of its announced length is a stall worth a second look.
        ReadEnd::Silent => http.body_stalled = response.body_short_of_its_length(),
        ReadEnd::Failed(error) => {
            http.failed = true;
            http.detail = Some(error.to_string());
            exchange.error = Some(error);
        }
    }
    if response.head.is_none() && !response.bytes.is_empty() && http.closed.is_none() {
        http.failed = true;
        if http.detail.is_none() || response.bytes.len() >= MAX_HEAD {
            http.detail = Some(format!("not an HTTP response: {}", printable(&response.bytes)));
        }
    }
    exchange.http = http;
    exchange
}

/// `the server reset the connection during the body, after 85 bytes of the response`.
pub fn describe_close(during: HttpPart, how: EarlyClose, bytes: u64) -> String {
    let how = match how {
        EarlyClose::Closed => "closed",
        EarlyClose::Reset => "reset",
    };
    let part = match during {
        HttpPart::Headers => "headers",
        HttpPart::Body => "body",
    };
    format!(
        "the server {how} the connection during the {part}, after {bytes} bytes of the response"
    )
}

/// Whether `bytes` could be the start of an HTTP response (`HTTP/…`).
fn looks_like_http(bytes: &[u8]) -> bool {
    let prefix = &b"HTTP/"[..bytes.len().min(5)];
    bytes.starts_with(prefix)
}

fn hang_up(error: &std::io::Error) -> Option<EarlyClose> {
    match error.kind() {
        std::io::ErrorKind::ConnectionReset => Some(EarlyClose::Reset),
        std::io::ErrorKind::UnexpectedEof => Some(EarlyClose::Closed),
        _ => None,
    }
}

/// The bytes of a response so far, and its head once the blank line has arrived.
#[derive(Default)]
struct Response {
    bytes: Vec<u8>,
    head: Option<Head>,
}

impl Response {
    fn push(&mut self, data: &[u8]) {
        self.bytes.extend_from_slice(data);
        if self.head.is_none() {
            self.head = Head::parse(&self.bytes);
        }
    }

    /// The body's bytes as received (still chunked, if it is).
    fn raw_body(&self) -> &[u8] {
        match &self.head {
            Some(head) => &self.bytes[head.length.min(self.bytes.len())..],
            None => &[],
        }
    }

    /// The body's bytes, de-chunked when it is chunked.
    fn body(&self) -> Vec<u8> {
        match &self.head {
            Some(head) if head.chunked => dechunk(self.raw_body()),
            _ => self.raw_body().to_vec(),
        }
    }

    /// Whether nothing more needs reading: the body is whole, or long enough to describe.
    fn is_complete(&self) -> bool {
        let Some(head) = &self.head else { return self.bytes.len() >= MAX_HEAD };
        let body = self.raw_body();
        if head.bodiless() || body.len() >= MAX_BODY {
            return true;
        }
        match (head.content_length, head.chunked) {
            (_, true) => body.ends_with(b"0\r\n\r\n"),
            (Some(length), false) => body.len() as u64 >= length,
            (None, false) => false,
        }
    }

    /// Whether the head announced a length the body (up to [`MAX_BODY`]) has not reached.
    fn body_short_of_its_length(&self) -> bool {
        let Some(length) = self.head.as_ref().and_then(|head| head.content_length) else {
            return false;
        };
        let wanted = length.min(MAX_BODY as u64);
        (self.raw_body().len() as u64) < wanted
    }

    /// Whether the body runs until the server closes (no length, not chunked), so a clean
    /// close ends it normally.
    fn ends_at_close(&self) -> bool {
        self.head.as_ref().is_some_and(|h| h.content_length.is_none() && !h.chunked)
            || self.is_complete()
    }
}

/// A response's status line and headers.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Head {
    /// How many bytes the head takes, blank line included.
    length: usize,
    version: String,
    status: Option<u16>,
    reason: Option<String>,
    headers: Vec<(String, String)>,
    content_length: Option<u64>,
    chunked: bool,
}

impl Head {
    /// The head at the start of `bytes`, once its blank line has arrived.
    fn parse(bytes: &[u8]) -> Option<Head> {
        let length = find(bytes, b"\r\n\r\n").map(|at| at + 4)?;
        let text = String::from_utf8_lossy(&bytes[..length]);
        let mut lines = text.lines();
        let (version, status, reason) = status_line(lines.next().unwrap_or_default());
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_string(), value.trim().to_string()))
            .collect();
        let value = |name: &str| {
            headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
        };
        let content_length = value("content-length").and_then(|v| v.parse().ok());
        let chunked = value("transfer-encoding").is_some_and(|v| v.contains("chunked"));
        Some(Head { length, version, status, reason, headers, content_length, chunked })
    }

    /// 1xx, 204 and 304 carry no body.
    fn bodiless(&self) -> bool {
        matches!(self.status, Some(100..=199 | 204 | 304))
    }

    fn fill(&self, http: &mut HttpReport) {
        let Some(status) = self.status else { return };
        http.status = Some(status);
        http.version = Some(self.version.clone());
        http.reason = self.reason.clone();
        http.detail = self.reason.clone();
        http.failed = false;
        http.headers = self
            .headers
            .iter()
            .filter(|(name, _)| KEPT_HEADERS.contains(&name.to_ascii_lowercase().as_str()))
            .map(|(name, value)| HttpHeader {
                name: name.clone(),
                value: printable(value.as_bytes()),
            })
            .collect();
    }
}

/// `HTTP/1.1 503 Service Unavailable` → (`HTTP/1.1`, 503, `Service Unavailable`); a line that
/// is not a status line has no status.
fn status_line(line: &str) -> (String, Option<u16>, Option<String>) {
    let mut parts = line.trim().splitn(3, ' ');
    let version = parts.next().unwrap_or_default().to_string();
    let status = parts.next().and_then(|code| code.parse::<u16>().ok());
    let reason = parts.next().map(str::trim).filter(|r| !r.is_empty()).map(str::to_string);
    match (version.starts_with("HTTP/"), status) {
        (true, Some(status @ 100..=999)) => (version, Some(status), reason),
        _ => (version, None, None),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

/// The data of a chunked body, as far as it arrived.
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut data = Vec::new();
    while let Some(end) = find(raw, b"\r\n") {
        let size_text = String::from_utf8_lossy(&raw[..end]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let Ok(size) = usize::from_str_radix(size_text, 16) else { break };
        let start = end + 2;
        if size == 0 {
            break;
        }
        let stop = (start + size).min(raw.len());
        data.extend_from_slice(&raw[start..stop]);
        raw = raw.get(stop + 2..).unwrap_or_default();
    }
    data
}

/// The body's first line, when it is text: an HTML page's title (or its first line of text),
/// another text's first non-blank line; nothing for images, archives and the like.
pub fn body_first_line(body: &[u8], content_type: Option<&str>) -> Option<String> {
    let kind = content_type.unwrap_or_default().to_ascii_lowercase();
    let textual = kind.starts_with("text/")
        || ["json", "xml", "javascript", "problem"].iter().any(|k| kind.contains(k))
        || (kind.is_empty() && std::str::from_utf8(body).is_ok() && !body.contains(&0));
    if !textual || body.is_empty() {
        return None;
    }
    let text = String::from_utf8_lossy(body);
    let html = kind.contains("html") || text.trim_start().starts_with('<');
    let line = match html {
        true => html_title(&text).or_else(|| first_text_line(&strip_tags(&text))),
        false => first_text_line(&text),
    }?;
    Some(printable(line.as_bytes()))
}

fn first_text_line(text: &str) -> Option<String> {
    text.lines().map(str::trim).find(|line| !line.is_empty()).map(str::to_string)
}

fn html_title(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let open = lower.find("<title")?;
    let start = open + lower[open..].find('>')? + 1;
    let end = start + lower[start..].find("</title")?;
    Some(text[start..end].trim().to_string()).filter(|title| !title.is_empty())
}

/// The text of an HTML fragment, one line per element's text.
fn strip_tags(html: &str) -> String {
    let mut text = String::new();
    let mut inside = false;
    for c in html.chars() {
        match c {
            '<' => {
                inside = true;
                text.push('\n');
            }
            '>' => inside = false,
            c if !inside => text.push(c),
            _ => {}
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn exchange_with(response: &'static [u8], end: Option<EarlyClose>) -> Exchange {
        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        let server = tokio::spawn(async move {
            let mut request = vec![0; 1024];
            let _ = server.read(&mut request).await;
            server.write_all(response).await.unwrap();
            match end {
                Some(_) => drop(server),
                None => tokio::time::sleep(Duration::from_secs(5)).await,
            }
        });
        let exchange =
            exchange(&mut client, "GET / HTTP/1.1\r\n\r\n", Duration::from_secs(1)).await;
        server.abort();
        exchange
    }

    #[tokio::test]
    async fn a_whole_response_gives_its_status_line_kept_headers_and_first_body_line() {
        let done = exchange_with(
            b"HTTP/1.1 503 Service Unavailable\r\nServer: nginx/1.22\r\nX-Trace: 1\r\n\
              Content-Type: text/plain\r\nContent-Length: 29\r\n\r\ndatabase pool exhausted\nmore\n",
            None,
        )
        .await;
        let http = done.http;
        assert_eq!(http.status_line().as_deref(), Some("HTTP/1.1 503 Service Unavailable"));
        assert_eq!(http.header("server"), Some("nginx/1.22"));
        assert_eq!(http.header("x-trace"), None, "only the headers that matter are kept");
        assert_eq!(http.body_first_line.as_deref(), Some("database pool exhausted"));
        assert!(!http.failed && http.closed.is_none() && http.first_byte_us.is_some());
    }

    #[tokio::test]
    async fn a_close_during_the_body_is_a_failed_exchange_naming_the_part_and_bytes() {
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc";
        let done = exchange_with(head, Some(EarlyClose::Closed)).await;
        let closed = done.http.closed.expect("a cut response");
        assert_eq!((closed.during, closed.bytes_received), (HttpPart::Body, 43));
        assert!(done.http.failed && done.early_close.is_none());
        assert_eq!(
            done.http.detail.as_deref(),
            Some(
                "the server closed the connection during the body, after 43 bytes of the response"
            )
        );
    }

    #[tokio::test]
    async fn a_close_during_the_headers_or_before_any_byte_is_told_apart() {
        let done = exchange_with(b"HTTP/1.1 200 OK\r\nServ", Some(EarlyClose::Closed)).await;
        assert_eq!(done.http.closed.map(|c| c.during), Some(HttpPart::Headers));
        let done = exchange_with(b"", Some(EarlyClose::Closed)).await;
        assert_eq!(done.early_close, Some(EarlyClose::Closed));
        assert!(done.http.closed.is_none() && done.http.failed);
    }

    #[tokio::test]
    async fn a_body_without_a_length_ends_normally_at_the_close() {
        let done = exchange_with(b"HTTP/1.0 200 OK\r\n\r\nhello\n", Some(EarlyClose::Closed)).await;
        assert!(!done.http.failed && done.http.closed.is_none(), "{:?}", done.http);
        assert_eq!(done.http.body_first_line.as_deref(), Some("hello"));
    }

    #[tokio::test]
    async fn a_body_that_never_ends_is_read_only_briefly_and_is_no_failure() {
        let start = Instant::now();
        let done = exchange_with(b"HTTP/1.1 200 OK\r\n\r\nevent: tick\n", None).await;
        assert!(start.elapsed() < Duration::from_millis(900), "{:?}", start.elapsed());
        assert!(!done.http.failed && done.http.closed.is_none(), "{:?}", done.http);
        assert_eq!(done.http.body_first_line.as_deref(), Some("event: tick"));
    }

    #[tokio::test]
    async fn a_body_that_stops_short_of_its_length_is_a_stall_and_an_endless_stream_is_not() {
        let cut = b"HTTP/1.1 200 OK\r\nContent-Length: 20480\r\n\r\nfirst bytes";
        let done = exchange_with(cut, None).await;
        assert_eq!(done.http.status, Some(200));
        assert!(done.http.body_stalled && !done.http.failed, "{:?}", done.http);
        let whole = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        assert!(!exchange_with(whole, None).await.http.body_stalled);
        let stream = b"HTTP/1.1 200 OK\r\n\r\nevent: tick\n";
        assert!(!exchange_with(stream, None).await.http.body_stalled);
    }

    #[tokio::test]
    async fn another_protocol_is_not_an_http_response() {
        let done = exchange_with(b"SSH-2.0-OpenSSH_9.2\r\n", Some(EarlyClose::Closed)).await;
        assert!(done.http.failed);
        assert!(done.http.detail.unwrap().contains("SSH-2.0-OpenSSH_9.2"));
    }

    #[test]
    fn html_bodies_give_their_title_and_binary_bodies_nothing() {
        let page = b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head></html>";
        assert_eq!(body_first_line(page, Some("text/html")).as_deref(), Some("502 Bad Gateway"));
        let untitled = b"<html><body><h1>Maintenance</h1></body></html>";
        assert_eq!(body_first_line(untitled, Some("text/html")).as_deref(), Some("Maintenance"));
        assert_eq!(body_first_line(b"\x89PNG\r\n", Some("image/png")), None);
        assert_eq!(
            body_first_line(br#"{"error":"down"}"#, Some("application/json")).as_deref(),
            Some(r#"{"error":"down"}"#)
        );
    }

    #[test]
    fn chunked_bodies_are_read_through_their_chunks() {
        assert_eq!(dechunk(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"), b"hello world");
    }
}
