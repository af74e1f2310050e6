//! What answers on an open port: the first bytes a service sends unprompted (SSH, SMTP, FTP,
//! POP3, IMAP, MySQL greet first), else its answers to the smallest harmless probes, each on a
//! fresh connection: an HTTP `GET /`, a TLS handshake, Redis's `PING`, PostgreSQL's
//! SSLRequest, MongoDB's `hello`, AMQP's protocol header. Nothing is sent that changes state;
//! every connection is closed after one answer.
//!
//! When the target expects a protocol (its scheme, or a well-known port), its probe goes
//! alone first; the others follow, all at once, only when it does not confirm it.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use whyrefused_shared::{AfterConnect, Protocol, ServiceIdentity};

use super::{connect, tls};
use crate::policy::TargetPolicy;
use crate::rate::ConnectBudget;
use crate::target::{Host, Target};

/// How long one probe waits for an answer. A service answers a probe in about a round trip.
pub const PROBE_WAIT: Duration = Duration::from_millis(500);

/// The most bytes read of one answer.
const MAX_ANSWER: usize = 2048;

/// The probes, in the order their answers are trusted.
const PROBES: [Probe; 6] =
    [Probe::Tls, Probe::Http, Probe::Redis, Probe::Postgresql, Probe::Mongodb, Probe::Amqp];

/// One harmless question to a silent service (or, `Greeting`, none: what it says first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    Greeting,
    Tls,
    Http,
    Redis,
    Postgresql,
    Mongodb,
    Amqp,
}

impl Probe {
    /// The probe that asks a service of `protocol`, for those that wait to be spoken to.
    fn asking(protocol: Protocol) -> Option<Probe> {
        Some(match protocol {
            Protocol::Tls => Probe::Tls,
            Protocol::Http => Probe::Http,
            Protocol::Redis => Probe::Redis,
            Protocol::Postgresql => Probe::Postgresql,
            Protocol::Mongodb => Probe::Mongodb,
            Protocol::Amqp => Probe::Amqp,
            _ => return None,
        })
    }

    /// The bytes sent.
    fn bytes(self, host: &Host) -> Vec<u8> {
        match self {
            Probe::Greeting | Probe::Tls => Vec::new(),
            Probe::Http => {
                let host = match host {
                    Host::Ip(std::net::IpAddr::V6(ip)) => format!("[{ip}]"),
                    other => other.ascii(),
                };
                format!("GET / HTTP/1.0\r\nHost: {host}\r\nUser-Agent: whyrefused\r\n\r\n")
                    .into_bytes()
            }
            Probe::Redis => b"PING\r\n".to_vec(),
            // Length 8, then the SSLRequest code 80877103: the server answers one byte.
            Probe::Postgresql => vec![0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f],
            Probe::Mongodb => mongodb_hello(),
            Probe::Amqp => b"AMQP\x00\x00\x09\x01".to_vec(),
        }
    }
}

/// The protocol a target expects: its scheme's, else its well-known port's (only ports whose
/// service is rarely anything else).
pub fn expected(target: &Target) -> Option<Protocol> {
    if let Some(scheme) = target.scheme.as_deref() {
        return expected_of_scheme(scheme);
    }
    Some(match target.port {
        21 => Protocol::Ftp,
        22 => Protocol::Ssh,
        25 | 587 => Protocol::Smtp,
        110 => Protocol::Pop3,
        143 => Protocol::Imap,
        3306 => Protocol::Mysql,
        5432 => Protocol::Postgresql,
        5672 => Protocol::Amqp,
        6379 => Protocol::Redis,
        27017 => Protocol::Mongodb,
        _ => return None,
    })
}

fn expected_of_scheme(scheme: &str) -> Option<Protocol> {
    Some(match scheme {
        "http" | "ws" => Protocol::Http,
        "https" | "wss" | "rediss" | "amqps" | "imaps" | "pop3s" | "smtps" | "ftps" | "ldaps"
        | "mqtts" => Protocol::Tls,
        "ssh" | "sftp" => Protocol::Ssh,
        "smtp" | "submission" => Protocol::Smtp,
        "ftp" => Protocol::Ftp,
        "pop3" => Protocol::Pop3,
        "imap" => Protocol::Imap,
        "redis" => Protocol::Redis,
        "postgres" | "postgresql" => Protocol::Postgresql,
        "mysql" | "mariadb" => Protocol::Mysql,
        "mongodb" => Protocol::Mongodb,
        "amqp" => Protocol::Amqp,
        _ => return None,
    })
}

/// What a connection's first exchange already says, without a new connection: a banner, a
/// TLS handshake that got a certificate, an HTTP answer.
pub fn from_after_connect(after: &AfterConnect) -> Option<(Protocol, Option<String>)> {
    if let Some(certificate) = after.tls.as_ref().and_then(|tls| tls.certificate.as_ref()) {
        let detail = format!("{}, expires {}", certificate.subject, certificate.not_after);
        return Some((Protocol::Tls, Some(detail)));
    }
    if let Some(http) = after.http.as_ref().filter(|http| http.status.is_some()) {
        let server = http.headers.iter().find(|h| h.name.eq_ignore_ascii_case("server"));
        return Some((Protocol::Http, server.map(|h| format!("Server: {}", h.value))));
    }
    let banner = after.banner.as_deref()?;
    match classify(banner.as_bytes(), None) {
        (Protocol::Unknown, _) => None,
        known => Some(known),
    }
}

/// Names the service at `address` (of `target`) that opened; `after` is what its first
/// connection already showed. Probes only where the policy allows, within the budget.
pub async fn identify(
    address: SocketAddr,
    target: &Target,
    after: &AfterConnect,
    policy: &TargetPolicy,
    budget: Option<&ConnectBudget>,
) -> ServiceIdentity {
    let expected = expected(target);
    let identity = ServiceIdentity {
        address,
        protocol: Protocol::Unknown,
        detail: None,
        received_bytes: None,
        expected,
    };
    if let Some((protocol, detail)) = from_after_connect(after) {
        return ServiceIdentity { protocol, detail, ..identity };
    }
    if policy.check(address).is_err() {
        return identity;
    }
    if after.banner.is_some() {
        // The banner was made printable; a binary greeting (MySQL's) is read again as sent.
        return ask(address, &target.host, Probe::Greeting, budget).await.into_identity(identity);
    }
    let first = expected.and_then(Probe::asking);
    let mut answers = Vec::new();
    if let Some(probe) = first {
        let answer = ask(address, &target.host, probe, budget).await;
        if answer.protocol == expected.unwrap_or(Protocol::Unknown) {
            return answer.into_identity(identity);
        }
        answers.push(answer);
    }
    let rest = PROBES.iter().filter(|p| Some(**p) != first);
    let asked = futures::future::join_all(rest.map(|p| ask(address, &target.host, *p, budget)));
    answers.extend(asked.await);
    pick(answers, identity)
}

/// One probe's outcome.
#[derive(Debug)]
struct Answer {
    probe: Probe,
    protocol: Protocol,
    detail: Option<String>,
    bytes: usize,
}

impl Answer {
    fn into_identity(self, mut identity: ServiceIdentity) -> ServiceIdentity {
        identity.protocol = self.protocol;
        identity.detail = self.detail;
        if self.protocol == Protocol::Unknown {
            identity.received_bytes = Some(u32::try_from(self.bytes).unwrap_or(u32::MAX));
        }
        identity
    }
}

/// The best answer: a probe that got its own protocol's answer, then any recognised answer,
/// in [`PROBES`] order; else unknown, with the most bytes any probe got.
fn pick(answers: Vec<Answer>, identity: ServiceIdentity) -> ServiceIdentity {
    let own = |a: &Answer| Probe::asking(a.protocol) == Some(a.probe);
    let rank = |a: &Answer| PROBES.iter().position(|p| *p == a.probe).unwrap_or(usize::MAX);
    let mut answers = answers;
    answers.sort_by_key(rank);
    let most = answers.iter().map(|a| a.bytes).max().unwrap_or(0);
    let best = answers
        .iter()
        .position(own)
        .or_else(|| answers.iter().position(|a| a.protocol != Protocol::Unknown));
    match best {
        Some(at) => answers.swap_remove(at).into_identity(identity),
        None => ServiceIdentity {
            received_bytes: Some(u32::try_from(most).unwrap_or(u32::MAX)),
            ..identity
        },
    }
}

/// Connects, sends one probe and reads its answer (or, for TLS, runs a handshake).
async fn ask(
    address: SocketAddr,
    host: &Host,
    probe: Probe,
    budget: Option<&ConnectBudget>,
) -> Answer {
    let unanswered = Answer { probe, protocol: Protocol::Unknown, detail: None, bytes: 0 };
    let (_, stream) = connect::connect_and_keep(address, PROBE_WAIT, budget).await;
    let Some(stream) = stream else { return unanswered };
    if probe == Probe::Tls {
        return tls_answer(stream, host).await;
    }
    let answer = exchange(stream, &probe.bytes(host)).await;
    let asked = Some(probe).filter(|p| *p != Probe::Greeting);
    let (protocol, detail) = classify(&answer, asked);
    Answer { probe, protocol, detail, bytes: answer.len() }
}

async fn tls_answer(stream: TcpStream, host: &Host) -> Answer {
    let handshake = tls::handshake(stream, host, PROBE_WAIT).await;
    let report = handshake.report;
    let (protocol, detail) = match (&report.certificate, &report.version) {
        (Some(certificate), _) => (
            Protocol::Tls,
            Some(format!("{}, expires {}", certificate.subject, certificate.not_after)),
        ),
        (None, Some(version)) => (Protocol::Tls, Some(version.clone())),
        (None, None) => (Protocol::Unknown, None),
    };
    Answer { probe: Probe::Tls, protocol, detail, bytes: 0 }
}

/// Sends `question` (nothing for a greeting) and reads the answer until it looks whole, the
/// server closes, or [`PROBE_WAIT`] ends: what came by then is the answer.
async fn exchange(mut stream: TcpStream, question: &[u8]) -> Vec<u8> {
    let until = tokio::time::Instant::now() + PROBE_WAIT;
    let mut answer = vec![0; MAX_ANSWER];
    if !question.is_empty() {
        let sent = tokio::time::timeout_at(until, stream.write_all(question)).await;
        if !matches!(sent, Ok(Ok(()))) {
            return Vec::new();
        }
    }
    let mut filled = 0;
    while filled < MAX_ANSWER && !looks_whole(&answer[..filled]) {
        match tokio::time::timeout_at(until, stream.read(&mut answer[filled..])).await {
            Ok(Ok(read)) if read > 0 => filled += read,
            _ => break,
        }
    }
    answer.truncate(filled);
    answer
}

/// Whether an answer can be classified now: a whole line, a whole binary frame, one byte
/// (PostgreSQL's S or N).
fn looks_whole(bytes: &[u8]) -> bool {
    if bytes.len() == 1 && matches!(bytes[0], b'S' | b'N') {
        return true;
    }
    if bytes.windows(4).any(|w| w == b"\r\n\r\n") {
        return true;
    }
    if bytes.first().is_some_and(|b| b"+-*$:".contains(b)) && bytes.ends_with(b"\r\n") {
        return true;
    }
    if bytes.len() >= 8 && &bytes[..4] == b"AMQP" {
        return true;
    }
    if bytes.len() >= 4 {
        let length = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
        if length >= 16 && bytes.len() >= length {
            return true;
        }
    }
    if bytes.first() == Some(&1) && bytes.len() >= 7 {
        let size = u32::from_be_bytes([bytes[3], bytes[4], bytes[5], bytes[6]]) as usize;
        return bytes.len() > 7 + size;
    }
    false
}

/// Names the protocol of `bytes`, sent unprompted (`probe` `None`) or in answer to `probe`,
/// with what it says about itself.
fn classify(bytes: &[u8], probe: Option<Probe>) -> (Protocol, Option<String>) {
    let text = String::from_utf8_lossy(bytes);
    let first_line = || {
        Some(crate::probe::after_connect::printable(text.lines().next().unwrap_or("").as_bytes()))
    };
    if bytes.is_empty() {
        return (Protocol::Unknown, None);
    }
    if text.starts_with("SSH-") {
        return (Protocol::Ssh, first_line());
    }
    if text.starts_with("HTTP/") {
        return (Protocol::Http, Some(http_detail(&text)));
    }
    if let Some(found) = mysql_greeting(bytes) {
        return found;
    }
    if probe.is_none() || probe == Some(Probe::Http) {
        if text.starts_with("220") {
            let is_ftp = text.to_ascii_uppercase().contains("FTP");
            let protocol = if is_ftp { Protocol::Ftp } else { Protocol::Smtp };
            return (protocol, first_line());
        }
        if text.starts_with("+OK") {
            return (Protocol::Pop3, first_line());
        }
        if text.starts_with("* OK") {
            return (Protocol::Imap, first_line());
        }
    }
    if probe == Some(Probe::Postgresql) && bytes.len() == 1 {
        return match bytes[0] {
            b'S' => (Protocol::Postgresql, Some("accepts TLS (SSLRequest answered S)".into())),
            b'N' => (Protocol::Postgresql, Some("no TLS (SSLRequest answered N)".into())),
            _ => (Protocol::Unknown, None),
        };
    }
    if let Some(found) = redis_answer(&text) {
        return found;
    }
    if bytes.starts_with(b"AMQP") || amqp_frame(bytes) {
        let product = ["RabbitMQ", "ActiveMQ", "Qpid", "LavinMQ"]
            .into_iter()
            .find(|name| text.contains(name));
        return (Protocol::Amqp, product.map(str::to_string));
    }
    if mongodb_reply(bytes) {
        return (Protocol::Mongodb, None);
    }
    if bytes.len() >= 3 && bytes[0] == 0x15 && bytes[1] == 0x03 {
        return (Protocol::Tls, Some("a TLS alert to plain text".into()));
    }
    (Protocol::Unknown, None)
}

/// The `Server` header, else the status line.
fn http_detail(text: &str) -> String {
    let server = text.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim().eq_ignore_ascii_case("server").then(|| value.trim().to_string())
    });
    match server {
        Some(server) => {
            format!("Server: {}", crate::probe::after_connect::printable(server.as_bytes()))
        }
        None => {
            crate::probe::after_connect::printable(text.lines().next().unwrap_or("").as_bytes())
        }
    }
}

/// A MySQL or MariaDB greeting (protocol 10 and its version), or its error packet.
fn mysql_greeting(bytes: &[u8]) -> Option<(Protocol, Option<String>)> {
    if bytes.len() < 6 || bytes[3] != 0 {
        return None;
    }
    let length = usize::from(bytes[0]) | usize::from(bytes[1]) << 8 | usize::from(bytes[2]) << 16;
    if length + 4 > bytes.len() + 64 || length < 2 {
        return None;
    }
    match bytes[4] {
        10 => {
            let version = &bytes[5..];
            let end = version.iter().position(|b| *b == 0)?;
            let version = std::str::from_utf8(&version[..end]).ok()?;
            let name = if version.contains("MariaDB") { "MariaDB" } else { "MySQL" };
            Some((Protocol::Mysql, Some(format!("{name} {version}"))))
        }
        0xff if bytes.len() > 7 => {
            let message = crate::probe::after_connect::printable(&bytes[7..]);
            Some((Protocol::Mysql, Some(format!("refuses: {message}"))))
        }
        _ => None,
    }
}

/// A Redis reply: `+PONG`, or an error Redis words its own way.
fn redis_answer(text: &str) -> Option<(Protocol, Option<String>)> {
    let line = text.lines().next().unwrap_or_default();
    let redis_words =
        ["+PONG", "-NOAUTH", "-DENIED", "-ERR unknown command", "-WRONGPASS", "-LOADING"];
    redis_words
        .iter()
        .any(|w| line.starts_with(w))
        .then(|| (Protocol::Redis, Some(crate::probe::after_connect::printable(line.as_bytes()))))
}

/// An AMQP 0-9-1 method frame on channel 0 of class 10 (connection), as `Connection.Start`.
fn amqp_frame(bytes: &[u8]) -> bool {
    bytes.len() >= 11 && bytes[0] == 1 && bytes[1..3] == [0, 0] && bytes[7..9] == [0, 10]
}

/// A MongoDB reply: a message header whose length fits and whose opcode is OP_MSG (2013) or
/// OP_REPLY (1), answering our request id.
fn mongodb_reply(bytes: &[u8]) -> bool {
    if bytes.len() < 16 {
        return false;
    }
    let word =
        |at: usize| i32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let (length, response_to, opcode) = (word(0), word(8), word(12));
    length >= 16 && response_to == MONGODB_REQUEST_ID && (opcode == 2013 || opcode == 1)
}

/// The request id of our MongoDB `hello`.
const MONGODB_REQUEST_ID: i32 = 0x7779;

/// An OP_MSG `{hello: 1, $db: "admin"}`: the handshake every driver sends first.
fn mongodb_hello() -> Vec<u8> {
    let mut document = Vec::new();
    document.push(0x10); // int32
    document.extend_from_slice(b"hello\0");
    document.extend_from_slice(&1i32.to_le_bytes());
    document.push(0x02); // string
    document.extend_from_slice(b"$db\0");
    document.extend_from_slice(&6i32.to_le_bytes());
    document.extend_from_slice(b"admin\0");
    document.push(0);
    let size = i32::try_from(document.len() + 4).unwrap_or(i32::MAX);
    let mut body = Vec::new();
    body.extend_from_slice(&0u32.to_le_bytes()); // flag bits
    body.push(0); // section kind 0: the body document
    body.extend_from_slice(&size.to_le_bytes());
    body.extend_from_slice(&document);
    let length = i32::try_from(body.len() + 16).unwrap_or(i32::MAX);
    let mut message = Vec::new();
    message.extend_from_slice(&length.to_le_bytes());
    message.extend_from_slice(&MONGODB_REQUEST_ID.to_le_bytes());
    message.extend_from_slice(&0i32.to_le_bytes());
    message.extend_from_slice(&2013i32.to_le_bytes());
    message.extend_from_slice(&body);
    message
}

#[cfg(test)]
mod tests;
