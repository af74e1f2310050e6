//! Scraping an agent's Prometheus routes as Prometheus or curl would (one HTTP/1.1 request a
//! connection), and reading what came back: statuses, series, and `promtool check metrics`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

/// An HTTP response: its status and body.
#[derive(Debug, Clone)]
pub struct Scraped {
    /// The status code.
    pub status: u16,
    /// The response head, lower-cased, for header checks.
    pub head: String,
    /// The body.
    pub body: String,
}

impl Scraped {
    /// The value of the one sample whose line starts with `series` (a name, or a name and
    /// its labels as written: `whyrefused_probe_cause{cause="port_closed"}`).
    pub fn value(&self, series: &str) -> Option<f64> {
        self.body.lines().find_map(|line| {
            let rest = line.strip_prefix(series)?;
            let value = rest.strip_prefix(' ').or_else(|| {
                // A name alone also matches a sample with labels.
                rest.starts_with('{').then(|| rest.rsplit_once("} ").map(|(_, v)| v)).flatten()
            })?;
            value.split_whitespace().next()?.parse().ok()
        })
    }

    /// Whether a sample of the metric `name` is present.
    pub fn has(&self, name: &str) -> bool {
        self.body.lines().any(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
    }
}

/// Sends `method path` to the agent at `address` with extra `headers` (`Name: value`).
pub fn request(address: SocketAddr, method: &str, path: &str, headers: &[&str]) -> Scraped {
    try_request(address, method, path, headers).expect("the agent accepts")
}

/// Like [`request`], or `None` when nothing listens at `address` (yet).
pub fn try_request(
    address: SocketAddr,
    method: &str,
    path: &str,
    headers: &[&str],
) -> Option<Scraped> {
    let mut stream = TcpStream::connect(address).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("a read timeout");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    for header in headers {
        head += &format!("{header}\r\n");
    }
    head += "Content-Length: 0\r\n\r\n";
    stream.write_all(head.as_bytes()).expect("the request is sent");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("the response is read");
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Some(Scraped { status, head: head.to_ascii_lowercase(), body: body.to_string() })
}

/// `GET path` without extra headers.
pub fn get(address: SocketAddr, path: &str) -> Scraped {
    request(address, "GET", path, &[])
}

/// Runs `promtool check metrics` (Prometheus' own parser and linter) on an exposition; returns
/// its complaints, empty when it found none.
pub fn promtool_check_metrics(exposition: &str) -> String {
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs (Debian's prometheus package: ./dev setup installs it)");
    promtool.stdin.take().expect("stdin").write_all(exposition.as_bytes()).expect("written");
    let output = promtool.wait_with_output().expect("promtool ends");
    let mut complaints = String::from_utf8_lossy(&output.stdout).into_owned();
    complaints += &String::from_utf8_lossy(&output.stderr);
    if output.status.success() { String::new() } else { complaints }
}

/// A free loopback port for a helper server (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("address").port()
}
