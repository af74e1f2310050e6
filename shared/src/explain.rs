//! Recognising the targets a pasted error message names: `connect ECONNREFUSED ::1:3000` (Node),
//! `dial tcp 10.0.0.5:6379: connect: connection refused` (Go), libpq's `connection to server at
//! "localhost" (::1), port 5432 failed`, a `postgres://user:pw@db/app` connection string, and the
//! other kinds of [`Kind`]. Pure text work: nothing is resolved or connected here, so the agent
//! and the page (wasm) recognise alike.
//!
//! Each recogniser looks for the words its library writes and reads the host and port beside
//! them. They run in a fixed order (the most specific first: gRPC wraps Go's words) and the text
//! one has claimed is not read again by another. A message that names only a host or only a
//! port is kept with the other part absent, so the caller can say what is missing instead of
//! guessing. The words shown back ([`Recognised::text`]) are the matched words only, made one
//! line, cut short, and never with a URL's user name or password.

use std::net::{IpAddr, Ipv6Addr};

use serde::{Deserialize, Serialize};

/// The most targets recognised in one text; the rest are counted, not kept.
pub const MAX_TARGETS: usize = 16;

/// The most characters of the matched words kept in [`Recognised::text`].
pub const MAX_MATCHED_CHARS: usize = 200;

/// The most bytes of a text read; what follows is not looked at.
pub const MAX_TEXT_BYTES: usize = 1 << 20;

/// Who wrote the error: the library or tool whose words were recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Node.js (`connect ECONNREFUSED ::1:3000`, `getaddrinfo ENOTFOUND db`).
    Node,
    /// Python: socket, asyncio, requests/urllib3 (`HTTPConnectionPool(host='x', port=8000)`).
    Python,
    /// PostgreSQL's libpq and the drivers built on it (psycopg, `psql`).
    Libpq,
    /// MySQL and MariaDB clients (`Can't connect to MySQL server on 'db:3306' (111)`).
    Mysql,
    /// Redis clients and `redis-cli` (`Error 111 connecting to localhost:6379`).
    Redis,
    /// Java (`java.net.ConnectException`, `/10.0.0.5:8080`, `UnknownHostException`).
    Java,
    /// Go's net package (`dial tcp 10.0.0.5:6379: connect: connection refused`).
    Go,
    /// curl (`Failed to connect to x port 80`, `Could not resolve host: x`).
    Curl,
    /// The Docker CLI (`dial unix /var/run/docker.sock`, `Cannot connect to the Docker daemon`).
    Docker,
    /// gRPC (`transport: Error while dialing: dial tcp …`, `ipv4:127.0.0.1:50051`).
    Grpc,
    /// .NET (`actively refused it. (127.0.0.1:5000)`).
    Dotnet,
    /// Rust's standard library (`Os { code: 111, kind: ConnectionRefused }`, `(os error 111)`).
    Rust,
    /// A connection string or URL in the text (`postgres://db:5432/app`).
    Url,
    /// A kind this version does not know: a newer agent named it.
    #[serde(other)]
    Unknown,
}

impl Kind {
    /// Who said it, as a person names them.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Node => "Node.js",
            Kind::Python => "Python",
            Kind::Libpq => "libpq (PostgreSQL)",
            Kind::Mysql => "MySQL client",
            Kind::Redis => "Redis client",
            Kind::Java => "Java",
            Kind::Go => "Go",
            Kind::Curl => "curl",
            Kind::Docker => "Docker",
            Kind::Grpc => "gRPC",
            Kind::Dotnet => ".NET",
            Kind::Rust => "Rust",
            Kind::Url => "the connection string",
            Kind::Unknown => "an unknown kind",
        }
    }
}

/// One place the text names, and who named it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recognised {
    /// Who wrote the words.
    pub kind: Kind,
    /// The host or address the program connected to (an IPv6 address without brackets), when
    /// the words name one.
    pub host: Option<String>,
    /// The port, when the words name one (or the connection string's scheme implies it).
    pub port: Option<u16>,
    /// The name the program looked up, when the words name both it and the address it got
    /// (libpq's `"localhost" (::1)`, Java's `db/10.0.0.5`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The connection string's scheme (`postgres`), which the check then speaks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// The Unix socket the words name instead of a host and port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket: Option<String>,
    /// The matched words: one line, at most [`MAX_MATCHED_CHARS`], without any userinfo.
    pub text: String,
}

impl Recognised {
    /// The target to check, as `check` takes it: `host:port`, `[v6]:port`, or
    /// `scheme://host:port`. `None` when the host or the port is missing.
    pub fn target(&self) -> Option<String> {
        let (host, port) = (self.host.as_deref()?, self.port?);
        let authority = match host.parse::<Ipv6Addr>() {
            Ok(_) => format!("[{host}]:{port}"),
            Err(_) => format!("{host}:{port}"),
        };
        Some(match &self.scheme {
            Some(scheme) => format!("{scheme}://{authority}"),
            None => authority,
        })
    }

    /// What the words leave out, in words: `None` when they name a host and a port.
    pub fn missing(&self) -> Option<&'static str> {
        if self.socket.is_some() {
            return None;
        }
        match (&self.host, self.port) {
            (Some(_), Some(_)) => None,
            (Some(_), None) => Some("the port"),
            (None, Some(_)) => Some("the host"),
            (None, None) => Some("the host and the port"),
        }
    }

    /// The host's address family, when the host is an address.
    pub fn family(&self) -> Option<crate::Family> {
        let ip = self.host.as_deref()?.parse::<IpAddr>().ok()?;
        Some(crate::Family::of(&ip))
    }
}

/// Everything recognised in one text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recognition {
    /// What was recognised, in the order the text has it, each place once (at most
    /// [`MAX_TARGETS`]).
    pub recognised: Vec<Recognised>,
    /// How many more places the text names beyond [`MAX_TARGETS`].
    pub left_out: usize,
}

impl Recognition {
    /// Whether any recognised entry names a target to check.
    pub fn has_target(&self) -> bool {
        self.recognised.iter().any(|r| r.target().is_some())
    }
}

/// Recognises every place `text` names (its first [`MAX_TEXT_BYTES`]).
pub fn recognise(text: &str) -> Recognition {
    let text = clip(text, MAX_TEXT_BYTES);
    let mut found = Found { text, claimed: Vec::new(), hits: Vec::new() };
    for recogniser in RECOGNISERS {
        recogniser(&mut found);
    }
    found.hits.sort_by_key(|hit| hit.start);
    let unique = unique(found.hits.into_iter().map(|hit| hit.recognised).collect());
    let left_out = unique.len().saturating_sub(MAX_TARGETS);
    Recognition { recognised: unique.into_iter().take(MAX_TARGETS).collect(), left_out }
}

/// The recognisers, the most specific first.
const RECOGNISERS: [fn(&mut Found); 13] =
    [grpc, docker, libpq, mysql, redis, java, curl, dotnet, rust, node, go, python, url];

/// One recognised entry and where its words start.
struct Hit {
    start: usize,
    recognised: Recognised,
}

/// The text being read, the spans already claimed, and what was found.
struct Found<'a> {
    text: &'a str,
    claimed: Vec<(usize, usize)>,
    hits: Vec<Hit>,
}

/// What a recogniser read at one place.
#[derive(Default)]
struct Place {
    host: Option<String>,
    port: Option<u16>,
    name: Option<String>,
    scheme: Option<String>,
    socket: Option<String>,
}

impl Found<'_> {
    /// Records `place` said by `kind` in the words `start..end`, unless another recogniser has
    /// claimed any of them.
    fn add(&mut self, kind: Kind, start: usize, end: usize, place: Place) {
        let end = end.min(self.text.len()).max(start);
        if self.claimed.iter().any(|(s, e)| start < *e && *s < end) {
            return;
        }
        self.claimed.push((start, end));
        let recognised = Recognised {
            kind,
            host: place.host,
            port: place.port,
            name: place.name,
            scheme: place.scheme,
            socket: place.socket,
            text: shown(&self.text[start..end]),
        };
        self.hits.push(Hit { start, recognised });
    }

    /// The byte offsets where `marker` occurs.
    fn occurrences(&self, marker: &str) -> Vec<usize> {
        self.text.match_indices(marker).map(|(at, _)| at).collect()
    }

    /// Whether the text holds `word`, ignoring ASCII case.
    fn mentions(&self, word: &str) -> bool {
        self.text.to_ascii_lowercase().contains(&word.to_ascii_lowercase())
    }
}

/// Keeps one entry per place: a later one naming the same target (or socket) goes, and so
/// does an incomplete one whose host a complete one names, and a second one naming nothing of
/// the same kind.
fn unique(all: Vec<Recognised>) -> Vec<Recognised> {
    let mut kept: Vec<Recognised> = Vec::new();
    for entry in &all {
        let same = |other: &Recognised| match (entry.target(), entry.socket.as_ref()) {
            (Some(target), _) => other.target().as_ref() == Some(&target),
            (None, Some(socket)) => other.socket.as_ref() == Some(socket),
            (None, None) => match &entry.host {
                Some(host) => {
                    other.host.as_ref() == Some(host) || other.name.as_ref() == Some(host)
                }
                None => match entry.port {
                    Some(port) => other.port == Some(port),
                    None => other.kind == entry.kind,
                },
            },
        };
        let covered = match entry.missing() {
            Some(_) => all.iter().any(|other| other.target().is_some() && same(other)),
            None => false,
        };
        if !covered && !kept.iter().any(same) {
            kept.push(entry.clone());
        }
    }
    kept
}

/// The text up to `limit` bytes, cut at a character boundary.
fn clip(text: &str, limit: usize) -> &str {
    if text.len() <= limit {
        return text;
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The words as shown back: userinfo removed, one line, at most [`MAX_MATCHED_CHARS`].
fn shown(words: &str) -> String {
    let words = without_userinfo(words);
    let line: String = words.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.chars().count() > MAX_MATCHED_CHARS {
        true => line.chars().take(MAX_MATCHED_CHARS).collect::<String>() + "…",
        false => line,
    }
}

/// `words` with every URL's `user:password@` replaced by `…@`.
pub fn without_userinfo(words: &str) -> String {
    let mut out = String::with_capacity(words.len());
    let mut rest = words;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        // Up to the token's end, not the first `/`: a password may hold one unescaped.
        let authority_end = after.find(is_token_end).unwrap_or(after.len());
        match after[..authority_end].rfind('@') {
            Some(userinfo_end) => {
                out.push_str("…@");
                rest = &after[userinfo_end + 1..];
            }
            None => rest = after,
        }
    }
    out.push_str(rest);
    out
}

/// Whether `c` ends an address token.
fn is_token_end(c: char) -> bool {
    c.is_whitespace() || "\"'`<>(),;{}|".contains(c)
}

/// The token starting at `start`: up to whitespace, a quote or a bracket that ends it.
fn token_at(text: &str, start: usize) -> (usize, &str) {
    let rest = &text[start..];
    let len = rest.find(is_token_end).unwrap_or(rest.len());
    (start + len, &rest[..len])
}

/// The token's text without the punctuation a sentence puts after it (`localhost:6379.`).
fn trim_tail(token: &str) -> &str {
    token.trim_end_matches(['.', ':', ',', ';', '!', '?'])
}

/// Reads `host:port`, `[v6]:port` or Node's bare `::1:3000`; the host alone when no port
/// follows it. IPv4-mapped IPv6 addresses become their IPv4 address.
fn host_port(token: &str) -> Option<(String, Option<u16>)> {
    let token = trim_tail(token);
    if let Some(rest) = token.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let host = canonical_host(host)?;
        return match after.strip_prefix(':') {
            Some(port) => Some((host, Some(port.parse().ok()?))),
            None if after.is_empty() => Some((host, None)),
            None => None,
        };
    }
    if token.parse::<Ipv6Addr>().is_ok() && !bare_v6_with_port(token) {
        return Some((canonical_host(token)?, None));
    }
    match token.rsplit_once(':') {
        Some((host, port)) => {
            let port = port.parse::<u16>().ok().filter(|p| *p != 0)?;
            Some((canonical_host(host)?, Some(port)))
        }
        None => Some((canonical_host(token)?, None)),
    }
}

/// Whether a token that parses as an IPv6 address is really Node's `address:port`: its last
/// group is a decimal port and what comes before it is an address on its own (`::1:3000`).
fn bare_v6_with_port(token: &str) -> bool {
    let Some((address, port)) = token.rsplit_once(':') else { return false };
    let decimal = !port.is_empty() && port.len() <= 5 && port.chars().all(|c| c.is_ascii_digit());
    decimal && !address.ends_with(':') && address.parse::<Ipv6Addr>().is_ok()
}

/// A valid host: an address (IPv4-mapped made IPv4) or a name of letters, digits, `-`, `_`, `.`.
fn canonical_host(host: &str) -> Option<String> {
    let host = host.trim_end_matches('.');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(ip.to_canonical().to_string());
    }
    let valid = !host.is_empty()
        && host.len() <= 253
        && host.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && host.chars().any(|c| c.is_ascii_alphabetic())
        && !host.starts_with(['-', '.']);
    valid.then(|| host.to_ascii_lowercase())
}

/// A place with a host and maybe a port.
fn at(host: String, port: Option<u16>) -> Place {
    Place { host: Some(host), port, ..Place::default() }
}

/// The end of the line holding `from`.
fn line_end(text: &str, from: usize) -> usize {
    text[from..].find('\n').map_or(text.len(), |n| from + n)
}

/// The start of the line holding `at`.
fn line_start(text: &str, at: usize) -> usize {
    text[..at].rfind('\n').map_or(0, |n| n + 1)
}

/// gRPC: Go's wrapped dial (`transport: Error while dialing: dial tcp HOST:PORT`) and the C
/// core's `ipv4:HOST:PORT` / `ipv6:%5B::1%5D:PORT`.
fn grpc(found: &mut Found) {
    for marker in ["Error while dialing: dial tcp", "Error while dialing dial tcp"] {
        for start in found.occurrences(marker) {
            let after = start + marker.len();
            let rest = &found.text[after..];
            let skip = rest.find(' ').filter(|n| *n <= 1).map_or(0, |n| n + 1);
            let (end, token) = token_at(found.text, after + skip);
            if let Some((host, port)) = host_port(token) {
                found.add(Kind::Grpc, start, end, at(host, port));
            }
        }
    }
    if !found.mentions("failed to connect to all addresses") && !found.mentions("grpc") {
        return;
    }
    for marker in ["ipv4:", "ipv6:"] {
        for start in found.occurrences(marker) {
            let (end, token) = token_at(found.text, start + marker.len());
            let decoded = token.replace("%5B", "[").replace("%5D", "]");
            if let Some((host, port)) = host_port(&decoded) {
                found.add(Kind::Grpc, start, end, at(host, port));
            }
        }
    }
}

/// Docker: `Cannot connect to the Docker daemon at unix:///var/run/docker.sock` (or a tcp://
/// address), and a dial of a Unix socket whose path is Docker's.
fn docker(found: &mut Found) {
    let marker = "Cannot connect to the Docker daemon at ";
    for start in found.occurrences(marker) {
        let (end, token) = token_at(found.text, start + marker.len());
        let token = trim_tail(token);
        if let Some(path) = token.strip_prefix("unix://") {
            let socket = Some(path.to_string());
            found.add(Kind::Docker, start, end, Place { socket, ..Place::default() });
        } else if let Some((host, port)) =
            token.strip_prefix("tcp://").and_then(|a| host_port(a.trim_end_matches('/')))
        {
            found.add(Kind::Docker, start, end, at(host, port));
        }
    }
    let marker = "dial unix ";
    for start in found.occurrences(marker) {
        let (end, token) = token_at(found.text, start + marker.len());
        let path = trim_tail(token);
        let kind = if path.contains("docker") { Kind::Docker } else { Kind::Go };
        let socket = Some(path.to_string());
        found.add(kind, start, end, Place { socket, ..Place::default() });
    }
}

/// libpq: `connection to server at "HOST" (ADDR), port PORT failed`, the older `Is the server
/// running on host "HOST" (ADDR) and accepting TCP/IP connections on port PORT?`, a socket, and
/// `could not translate host name "HOST" to address`.
fn libpq(found: &mut Found) {
    for (marker, port_marker) in [
        ("connection to server at \"", "port "),
        ("Is the server running on host \"", "connections on port "),
    ] {
        for start in found.occurrences(marker) {
            let after = start + marker.len();
            let Some(quote) = found.text[after..].find('"') else { continue };
            let named = &found.text[after..after + quote];
            let mut cursor = after + quote + 1;
            let mut address = None;
            let rest = &found.text[cursor..];
            if let Some((inner, close)) =
                rest.strip_prefix(" (").and_then(|inner| Some((inner, inner.find(')')?)))
            {
                address = canonical_host(&inner[..close]);
                cursor += 2 + close + 1;
            }
            let window_end = (cursor + 80).min(found.text.len());
            let window_end = line_end(found.text, cursor).max(char_floor(found.text, window_end));
            let window = &found.text[cursor..window_end];
            let port_at = window.find(port_marker).map(|n| cursor + n + port_marker.len());
            let (end, port) = match port_at {
                Some(p) => {
                    let digits = found.text[p..].chars().take_while(char::is_ascii_digit).count();
                    (p + digits, found.text[p..p + digits].parse().ok())
                }
                None => (cursor, None),
            };
            let end = extend_to(found.text, end, &[" failed: ", "?"]);
            let Some(named) = canonical_host(named) else { continue };
            let place = match address {
                Some(address) if address != named => {
                    Place { host: Some(address), port, name: Some(named), ..Place::default() }
                }
                _ => at(named, port),
            };
            found.add(Kind::Libpq, start, end, place);
        }
    }
    let marker = "connection to server on socket \"";
    for start in found.occurrences(marker) {
        let after = start + marker.len();
        let Some(quote) = found.text[after..].find('"') else { continue };
        let socket = Some(found.text[after..after + quote].to_string());
        let end = extend_to(found.text, after + quote + 1, &[" failed: "]);
        found.add(Kind::Libpq, start, end, Place { socket, ..Place::default() });
    }
    let marker = "could not translate host name \"";
    for start in found.occurrences(marker) {
        let after = start + marker.len();
        let Some(quote) = found.text[after..].find('"') else { continue };
        if let Some(host) = canonical_host(&found.text[after..after + quote]) {
            found.add(Kind::Libpq, start, after + quote + 1, at(host, None));
        }
    }
}

/// When the words at `end` go on with what a message says next (`" failed: "` and its
/// reason), the end of that line (at most 60 bytes on), else `end`.
fn extend_to(text: &str, end: usize, next: &[&str]) -> usize {
    match next.iter().any(|n| text[end..].starts_with(n)) {
        true => char_floor(text, line_end(text, end).min(end + 60)),
        false => end,
    }
}

/// The largest character boundary at or before `at`.
fn char_floor(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// MySQL and MariaDB: `Can't connect to MySQL server on 'HOST:PORT' (111)`, the same with
/// the host alone, the local socket, and `Unknown MySQL server host 'HOST'`.
fn mysql(found: &mut Found) {
    for marker in ["Can't connect to MySQL server on '", "Can't connect to server on '"] {
        for start in found.occurrences(marker) {
            let after = start + marker.len();
            let Some(quote) = found.text[after..].find('\'') else { continue };
            let end = code_after(found.text, after + quote + 1);
            if let Some((host, port)) = host_port(&found.text[after..after + quote]) {
                found.add(Kind::Mysql, start, end, at(host, port));
            }
        }
    }
    let marker = "Can't connect to local MySQL server through socket '";
    for start in found.occurrences(marker) {
        let after = start + marker.len();
        let Some(quote) = found.text[after..].find('\'') else { continue };
        let socket = Some(found.text[after..after + quote].to_string());
        let end = code_after(found.text, after + quote + 1);
        found.add(Kind::Mysql, start, end, Place { socket, ..Place::default() });
    }
    let marker = "Unknown MySQL server host '";
    for start in found.occurrences(marker) {
        let after = start + marker.len();
        let Some(quote) = found.text[after..].find('\'') else { continue };
        let end = code_after(found.text, after + quote + 1);
        if let Some(host) = canonical_host(&found.text[after..after + quote]) {
            found.add(Kind::Mysql, start, end, at(host, None));
        }
    }
}

/// The end of a ` (111)` or ` (111 "Connection refused")` after `at`, else `at`.
fn code_after(text: &str, at: usize) -> usize {
    let rest = &text[at..];
    match rest.strip_prefix(" (").and_then(|inner| inner.find(')')) {
        Some(close) if close < 60 => at + 2 + close + 1,
        _ => at,
    }
}

/// Redis clients: redis-py's `Error 111 connecting to HOST:PORT. Connection refused.` and
/// redis-cli's `Could not connect to Redis at HOST:PORT: Connection refused`.
fn redis(found: &mut Found) {
    for start in found.occurrences(" connecting to ") {
        let line = line_start(found.text, start);
        let before = &found.text[line..start];
        let Some(error_at) = before.rfind("Error ") else { continue };
        let code = &before[error_at + "Error ".len()..];
        if code.is_empty() || !code.trim_start_matches('-').chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let (end, token) = token_at(found.text, start + " connecting to ".len());
        if let Some((host, port)) = host_port(token) {
            let end = extend_to(found.text, end, &[". "]);
            found.add(Kind::Redis, line + error_at, end, at(host, port));
        }
    }
    let marker = "Could not connect to Redis at ";
    for start in found.occurrences(marker) {
        let (end, token) = token_at(found.text, start + marker.len());
        if let Some((host, port)) = host_port(token) {
            found.add(Kind::Redis, start, extend_to(found.text, end, &[" "]), at(host, port));
        }
    }
}

/// Java: an `InetSocketAddress` as Java prints it (`db/10.0.0.5:8080`, `/10.0.0.5:8080`) in
/// a connect exception, Apache HttpClient's `Connect to HOST:PORT [...] failed`, and
/// `UnknownHostException: HOST`.
fn java(found: &mut Found) {
    if found.mentions("java") || found.mentions("Exception") || found.mentions("netty") {
        for marker in ["Connection refused: ", "Failed to connect to ", "connect timed out: "] {
            for start in found.occurrences(marker) {
                let (end, token) = token_at(found.text, start + marker.len());
                if let Some(place) = java_address(token) {
                    found.add(Kind::Java, line_head(found.text, start), end, place);
                }
            }
        }
        let marker = "Connect to ";
        for start in found.occurrences(marker) {
            let (end, token) = token_at(found.text, start + marker.len());
            let rest = &found.text[end..];
            if !rest.starts_with(" [") {
                continue;
            }
            let end = extend_to(found.text, end, &[" ["]);
            if let Some((host, port)) = host_port(token) {
                found.add(Kind::Java, start, end, at(host, port));
            }
        }
    }
    let marker = "UnknownHostException: ";
    for start in found.occurrences(marker) {
        let (end, token) = token_at(found.text, start + marker.len());
        if let Some(host) = canonical_host(trim_tail(token)) {
            found.add(Kind::Java, line_head(found.text, start), end, at(host, None));
        }
    }
}

/// Where a Java exception's words start on its line: at `java.`, `io.`, `org.` or the marker.
fn line_head(text: &str, marker_at: usize) -> usize {
    let line = line_start(text, marker_at);
    let before = &text[line..marker_at];
    ["java.", "io.", "org.", "okhttp3.", "Caused by: "]
        .iter()
        .filter_map(|head| before.find(head))
        .min()
        .map_or(marker_at, |n| line + n)
}

/// `name/address:port` or `/address:port`, as Java prints a socket address.
fn java_address(token: &str) -> Option<Place> {
    let (name, address) = trim_tail(token).split_once('/')?;
    let (host, port) = host_port(address)?;
    host.parse::<IpAddr>().ok()?;
    let name = canonical_host(name).filter(|name| *name != host);
    Some(Place { host: Some(host), port, name, ..Place::default() })
}

/// curl: `Failed to connect to HOST port PORT` (every version) and `Could not resolve host: HOST`.
fn curl(found: &mut Found) {
    let marker = "Failed to connect to ";
    for start in found.occurrences(marker) {
        let (host_end, token) = token_at(found.text, start + marker.len());
        let Some(rest) = found.text[host_end..].strip_prefix(" port ") else { continue };
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        let Ok(port) = rest[..digits].parse::<u16>() else { continue };
        let end = host_end + " port ".len() + digits;
        let end = extend_to(found.text, end, &[" after ", ": "]);
        let head =
            found.text[..start].rfind("curl: (").filter(|n| *n >= line_start(found.text, start));
        if let Some((host, _)) = host_port(token) {
            found.add(Kind::Curl, head.unwrap_or(start), end, at(host, Some(port)));
        }
    }
    let marker = "Could not resolve host: ";
    for start in found.occurrences(marker) {
        let (end, token) = token_at(found.text, start + marker.len());
        let head =
            found.text[..start].rfind("curl: (").filter(|n| *n >= line_start(found.text, start));
        if let Some(host) = canonical_host(trim_tail(token)) {
            found.add(Kind::Curl, head.unwrap_or(start), end, at(host, None));
        }
    }
}

/// .NET: `No connection could be made because the target machine actively refused it.` and
/// the address after it, in parentheses or not (`[::ffff:127.0.0.1]:5000`).
fn dotnet(found: &mut Found) {
    let marker = "actively refused it.";
    for marker_at in found.occurrences(marker) {
        let start = found.text[..marker_at]
            .rfind("No connection could be made")
            .filter(|n| marker_at - n < 80)
            .unwrap_or(marker_at);
        let mut cursor = marker_at + marker.len();
        let rest = &found.text[cursor..];
        let spaces = rest.len() - rest.trim_start_matches(' ').len();
        cursor += spaces;
        let parenthesised = found.text[cursor..].starts_with('(');
        if parenthesised {
            cursor += 1;
        }
        let (end, token) = token_at(found.text, cursor);
        let end = if parenthesised && found.text[end..].starts_with(')') { end + 1 } else { end };
        match host_port(token).filter(|_| !token.is_empty()) {
            Some((host, port)) => found.add(Kind::Dotnet, start, end, at(host, port)),
            None => found.add(Kind::Dotnet, start, marker_at + marker.len(), Place::default()),
        }
    }
}

/// Rust: an `io::Error` printed with `{:?}` (`Os { code: 111, kind: ConnectionRefused, … }`)
/// or `{}` (`Connection refused (os error 111)`), with the address logged on the same line
/// before it (`failed to connect to 127.0.0.1:8080: …`, or a URL).
fn rust(found: &mut Found) {
    for marker in ["Os { code: ", "(os error "] {
        for marker_at in found.occurrences(marker) {
            let line = line_start(found.text, marker_at);
            let close = match marker {
                "Os { code: " => found.text[marker_at..].find('}').map(|n| marker_at + n + 1),
                _ => found.text[marker_at..].find(')').map(|n| marker_at + n + 1),
            };
            let end = close.unwrap_or_else(|| line_end(found.text, marker_at));
            let place = address_before(&found.text[line..marker_at]);
            match place {
                Some((offset, place)) => found.add(Kind::Rust, line + offset, end, place),
                None => found.add(Kind::Rust, marker_at, end, Place::default()),
            }
        }
    }
}

/// The last `host:port` or URL in `before`, and where it starts.
fn address_before(before: &str) -> Option<(usize, Place)> {
    let mut best = None;
    let mut offset = 0;
    for piece in before.split_inclusive(|c: char| c.is_whitespace() || "()\"'`<>,".contains(c)) {
        let token = piece.trim_end_matches(|c: char| c.is_whitespace() || "()\"'`<>,".contains(c));
        if let Some(place) = url_place(token) {
            best = Some((offset, place));
        } else if let Some((host, Some(port))) = host_port(token).filter(|_| token.contains(':')) {
            best = Some((offset, at(host, Some(port))));
        }
        offset += piece.len();
    }
    best
}

/// Node.js: `connect ECONNREFUSED ::1:3000` (and ETIMEDOUT, EHOSTUNREACH, ENETUNREACH), and
/// `getaddrinfo ENOTFOUND db` (and EAI_AGAIN).
fn node(found: &mut Found) {
    for marker in ["connect E", "getaddrinfo E"] {
        for start in found.occurrences(marker) {
            let after = start + marker.len() - 1;
            let code_len = found.text[after..]
                .find(|c: char| !(c.is_ascii_uppercase() || c == '_'))
                .unwrap_or(found.text.len() - after);
            let cursor = after + code_len;
            let Some(rest) = found.text[cursor..].strip_prefix(' ') else { continue };
            let (end, token) = token_at(found.text, cursor + 1);
            let Some((host, port)) = host_port(token).filter(|_| !rest.is_empty()) else {
                continue;
            };
            let port = if marker == "getaddrinfo E" { None } else { port };
            found.add(Kind::Node, start, end, at(host, port));
        }
    }
}

/// Go: `dial tcp HOST:PORT: connect: connection refused` (`i/o timeout`, `no route to host`),
/// and `lookup HOST on RESOLVER: no such host` (the resolver is not the target).
fn go(found: &mut Found) {
    for marker in ["dial tcp ", "dial tcp4 ", "dial tcp6 "] {
        for start in found.occurrences(marker) {
            let (end, token) = token_at(found.text, start + marker.len());
            if let Some((host, port)) = host_port(token) {
                let end = extend_to(found.text, end, &[" "]);
                found.add(Kind::Go, start, end, at(host, port));
            }
        }
    }
    let marker = "lookup ";
    for start in found.occurrences(marker) {
        let (end, token) = token_at(found.text, start + marker.len());
        let rest = &found.text[end..];
        if !(rest.starts_with(" on ") || rest.starts_with(": no such host")) {
            continue;
        }
        let end = match rest.find("no such host") {
            Some(n) if n < 60 => end + n + "no such host".len(),
            _ => end,
        };
        let head = found.text[..start].rfind("dial tcp: ").filter(|n| start - n == 10);
        if let Some(host) = canonical_host(trim_tail(token)) {
            found.add(Kind::Go, head.unwrap_or(start), end, at(host, None));
        }
    }
}

/// Python: requests/urllib3's `HTTPConnectionPool(host='x', port=8000)`, asyncio's `Connect
/// call failed ('127.0.0.1', 8000)`, a traceback's `create_connection(("db", 5432))`, and
/// otherwise the bare `ConnectionRefusedError: [Errno 111]` or `socket.gaierror`, which name
/// no address.
fn python(found: &mut Found) {
    for (marker, scheme) in [("HTTPConnectionPool(", "http"), ("HTTPSConnectionPool(", "https")] {
        for start in found.occurrences(marker) {
            let after = start + marker.len();
            let Some(close) = found.text[after..].find(')') else { continue };
            let inside = &found.text[after..after + close];
            let host = keyword(inside, "host").and_then(canonical_host);
            let port = keyword(inside, "port").and_then(|p| p.parse().ok());
            let scheme = Some(scheme.to_string());
            let place = Place { host, port, scheme, ..Place::default() };
            found.add(Kind::Python, start, after + close + 1, place);
        }
    }
    for marker in ["Connect call failed (", "create_connection(("] {
        for start in found.occurrences(marker) {
            let after = start + marker.len();
            let Some(close) = found.text[after..].find(')') else { continue };
            let inside = &found.text[after..after + close];
            let mut parts = inside.split(',').map(|p| p.trim().trim_matches(['\'', '"']));
            let host = parts.next().and_then(canonical_host);
            let port = parts.next().and_then(|p| p.parse().ok());
            let end =
                (after + close + 1 + usize::from(marker.ends_with("(("))).min(found.text.len());
            let end = char_floor(found.text, end);
            found.add(Kind::Python, start, end, Place { host, port, ..Place::default() });
        }
    }
    if found.hits.iter().any(|hit| hit.recognised.kind == Kind::Python) {
        return;
    }
    for marker in ["ConnectionRefusedError: ", "socket.gaierror: ", "TimeoutError: [Errno"] {
        if let Some(start) = found.occurrences(marker).first().copied() {
            let end = line_end(found.text, start).min(start + 120);
            found.add(Kind::Python, start, char_floor(found.text, end), Place::default());
        }
    }
}

/// The value of `name=` in a Python call's arguments (`host='x'`, `port=8000`).
fn keyword<'a>(arguments: &'a str, name: &str) -> Option<&'a str> {
    arguments.split(',').find_map(|part| {
        let (key, value) = part.split_once('=')?;
        (key.trim() == name).then(|| value.trim().trim_matches(['\'', '"']))
    })
}

/// The schemes a connection string may have, and each one's port when none is written (as
/// `check` reads them).
pub const URL_SCHEMES: [(&str, u16); 16] = [
    ("postgres", 5432),
    ("postgresql", 5432),
    ("mysql", 3306),
    ("mariadb", 3306),
    ("redis", 6379),
    ("rediss", 6379),
    ("mongodb", 27017),
    ("amqp", 5672),
    ("amqps", 5671),
    ("http", 80),
    ("https", 443),
    ("ws", 80),
    ("wss", 443),
    ("mqtt", 1883),
    ("ldap", 389),
    ("memcached", 11211),
];

/// Connection strings and URLs: `scheme://[user:pw@]host[:port][/…]`.
fn url(found: &mut Found) {
    for start in found.occurrences("://") {
        let scheme_start = found.text[..start]
            .char_indices()
            .rev()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || "+-.".contains(*c)))
            .map_or(0, |(n, c)| n + c.len_utf8());
        let (end, token) = token_at(found.text, scheme_start);
        if let Some(place) = url_place(token) {
            found.add(Kind::Url, scheme_start, end, place);
        }
    }
}

/// The place a URL names: its host, its port (or the scheme's), its scheme. `None` for a
/// scheme not in [`URL_SCHEMES`] or no valid host.
fn url_place(token: &str) -> Option<Place> {
    let (scheme, rest) = token.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default = URL_SCHEMES.iter().find(|(s, _)| *s == scheme)?.1;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let first = authority.split(',').next().unwrap_or_default();
    let (host, port) = host_port(first)?;
    let port = Some(port.unwrap_or(default));
    Some(Place { host: Some(host), port, scheme: Some(scheme), ..Place::default() })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One real message of each kind, and the one place it names (host, port).
    const MESSAGES: &[(Kind, &str, Option<&str>, Option<u16>)] = &[
        (
            Kind::Node,
            "Error: connect ECONNREFUSED ::1:3000\n    at TCPConnectWrap.afterConnect [as oncomplete] (node:net:1555:16)",
            Some("::1"),
            Some(3000),
        ),
        (
            Kind::Node,
            "Error: getaddrinfo ENOTFOUND db\n    at GetAddrInfoReqWrap.onlookup [as oncomplete] (node:dns:107:26)",
            Some("db"),
            None,
        ),
        (
            Kind::Node,
            "Error: connect ETIMEDOUT 10.0.0.5:443\n    at TCPConnectWrap.afterConnect",
            Some("10.0.0.5"),
            Some(443),
        ),
        (
            Kind::Node,
            "Error: connect EHOSTUNREACH 192.168.1.20:8080 - Local (192.168.1.5:53211)",
            Some("192.168.1.20"),
            Some(8080),
        ),
        (
            Kind::Python,
            "  File \"app.py\", line 4, in <module>\n    s = socket.create_connection((\"db.internal\", 5432))\n  File \"/usr/lib/python3.11/socket.py\", line 851, in create_connection\n    raise exceptions[0]\nConnectionRefusedError: [Errno 111] Connection refused",
            Some("db.internal"),
            Some(5432),
        ),
        (
            Kind::Python,
            "requests.exceptions.ConnectionError: HTTPConnectionPool(host='x', port=8000): Max retries exceeded with url: /health (Caused by NewConnectionError('<urllib3.connection.HTTPConnection object at 0x7f2c1c0b2d10>: Failed to establish a new connection: [Errno 111] Connection refused'))",
            Some("x"),
            Some(8000),
        ),
        (
            Kind::Python,
            "OSError: Multiple exceptions: [Errno 111] Connect call failed ('127.0.0.1', 8000), [Errno 99] Cannot assign requested address",
            Some("127.0.0.1"),
            Some(8000),
        ),
        (
            Kind::Python,
            "  File \"/usr/lib/python3.11/socket.py\", line 962, in getaddrinfo\n    for res in _socket.getaddrinfo(host, port, family, type, proto, flags):\nsocket.gaierror: [Errno -2] Name or service not known",
            None,
            None,
        ),
        (
            Kind::Libpq,
            "psycopg2.OperationalError: connection to server at \"localhost\" (::1), port 5432 failed: Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?",
            Some("::1"),
            Some(5432),
        ),
        (
            Kind::Mysql,
            "ERROR 2003 (HY000): Can't connect to MySQL server on 'db:3306' (111)",
            Some("db"),
            Some(3306),
        ),
        (Kind::Mysql, "ERROR 2005 (HY000): Unknown MySQL server host 'db' (-2)", Some("db"), None),
        (
            Kind::Redis,
            "redis.exceptions.ConnectionError: Error 111 connecting to localhost:6379. Connection refused.",
            Some("localhost"),
            Some(6379),
        ),
        (
            Kind::Java,
            "java.net.ConnectException: Failed to connect to /10.0.0.5:8080\n\tat okhttp3.internal.connection.RealConnection.connectSocket(RealConnection.kt:297)",
            Some("10.0.0.5"),
            Some(8080),
        ),
        (
            Kind::Java,
            "Caused by: java.net.UnknownHostException: db: Name or service not known",
            Some("db"),
            None,
        ),
        (
            Kind::Go,
            "panic: dial tcp 10.0.0.5:6379: connect: connection refused",
            Some("10.0.0.5"),
            Some(6379),
        ),
        (Kind::Go, "error: dial tcp: lookup db on 127.0.0.53:53: no such host", Some("db"), None),
        (
            Kind::Curl,
            "curl: (7) Failed to connect to x port 80 after 3 ms: Couldn't connect to server",
            Some("x"),
            Some(80),
        ),
        (Kind::Curl, "curl: (6) Could not resolve host: x", Some("x"), None),
        (
            Kind::Grpc,
            "rpc error: code = Unavailable desc = connection error: desc = \"transport: Error while dialing: dial tcp 127.0.0.1:50051: connect: connection refused\"",
            Some("127.0.0.1"),
            Some(50051),
        ),
        (
            Kind::Dotnet,
            "System.Net.Http.HttpRequestException: No connection could be made because the target machine actively refused it. (127.0.0.1:5000)",
            Some("127.0.0.1"),
            Some(5000),
        ),
        (
            Kind::Rust,
            "Error: failed to connect to 127.0.0.1:8080: Os { code: 111, kind: ConnectionRefused, message: \"Connection refused\" }",
            Some("127.0.0.1"),
            Some(8080),
        ),
        (
            Kind::Url,
            "django.db.utils.OperationalError: could not connect, DATABASE_URL=postgres://app:s3cret@db:5433/app",
            Some("db"),
            Some(5433),
        ),
    ];

    #[test]
    fn every_kind_of_message_names_its_target() {
        for (kind, message, host, port) in MESSAGES {
            let found = recognise(message).recognised;
            assert_eq!(found.len(), 1, "{message}: {found:?}");
            let only = &found[0];
            assert_eq!(only.kind, *kind, "{message}");
            assert_eq!(only.host.as_deref(), *host, "{message}");
            assert_eq!(only.port, *port, "{message}");
            let first_word = only.text.split_whitespace().next().unwrap();
            assert!(without_userinfo(message).contains(first_word), "{only:?}");
        }
    }

    #[test]
    fn the_kinds_the_issue_lists_are_all_in_the_table() {
        for kind in [
            Kind::Node,
            Kind::Python,
            Kind::Libpq,
            Kind::Mysql,
            Kind::Redis,
            Kind::Java,
            Kind::Go,
            Kind::Curl,
            Kind::Docker,
            Kind::Grpc,
            Kind::Dotnet,
            Kind::Rust,
            Kind::Url,
        ] {
            let in_table = MESSAGES.iter().any(|(k, ..)| *k == kind);
            let in_sockets = SOCKETS.iter().any(|(k, ..)| *k == kind);
            assert!(in_table || in_sockets, "{kind:?} has no message in the tables");
        }
    }

    /// Messages that name a Unix socket, and the socket.
    const SOCKETS: &[(Kind, &str, &str)] = &[
        (
            Kind::Docker,
            "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?",
            "/var/run/docker.sock",
        ),
        (
            Kind::Docker,
            "permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock: Get \"http://%2Fvar%2Frun%2Fdocker.sock/v1.24/containers/json\": dial unix /var/run/docker.sock: connect: permission denied",
            "/var/run/docker.sock",
        ),
        (
            Kind::Libpq,
            "psql: error: connection to server on socket \"/var/run/postgresql/.s.PGSQL.5432\" failed: No such file or directory",
            "/var/run/postgresql/.s.PGSQL.5432",
        ),
        (
            Kind::Mysql,
            "ERROR 2002 (HY000): Can't connect to local MySQL server through socket '/var/run/mysqld/mysqld.sock' (2)",
            "/var/run/mysqld/mysqld.sock",
        ),
    ];

    #[test]
    fn a_unix_socket_is_named_as_a_socket_not_a_target() {
        for (kind, message, socket) in SOCKETS {
            let found = recognise(message).recognised;
            assert_eq!(found.len(), 1, "{message}: {found:?}");
            assert_eq!((found[0].kind, found[0].socket.as_deref()), (*kind, Some(*socket)));
            assert_eq!((found[0].target(), found[0].missing()), (None, None));
        }
    }

    #[test]
    fn more_forms_of_each_library_are_read() {
        let cases: &[(&str, Kind, &str)] = &[
            (
                "could not connect to server: Connection refused\n\tIs the server running on host \"localhost\" (127.0.0.1) and accepting\n\tTCP/IP connections on port 5432?",
                Kind::Libpq,
                "127.0.0.1:5432",
            ),
            (
                "connection to server at \"10.0.0.7\", port 5432 failed: timeout expired",
                Kind::Libpq,
                "10.0.0.7:5432",
            ),
            (
                "Could not connect to Redis at 127.0.0.1:6379: Connection refused",
                Kind::Redis,
                "127.0.0.1:6379",
            ),
            (
                "io.netty.channel.AbstractChannel$AnnotatedConnectException: Connection refused: localhost/127.0.0.1:8080",
                Kind::Java,
                "127.0.0.1:8080",
            ),
            (
                "org.apache.http.conn.HttpHostConnectException: Connect to localhost:8080 [localhost/127.0.0.1] failed: Connection refused",
                Kind::Java,
                "localhost:8080",
            ),
            (
                "curl: (7) Failed to connect to localhost port 8080: Connection refused",
                Kind::Curl,
                "localhost:8080",
            ),
            ("Error: dial tcp [::1]:8080: connect: connection refused", Kind::Go, "[::1]:8080"),
            (
                "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:50051: Failed to connect to remote host: Connection refused",
                Kind::Grpc,
                "127.0.0.1:50051",
            ),
            (
                "System.Net.Sockets.SocketException (10061): No connection could be made because the target machine actively refused it. [::ffff:127.0.0.1]:5000",
                Kind::Dotnet,
                "127.0.0.1:5000",
            ),
            (
                "Error: reqwest::Error { kind: Request, url: \"http://localhost:3000/\", source: hyper::Error(Connect, ConnectError(\"tcp connect error\", Os { code: 111, kind: ConnectionRefused, message: \"Connection refused\" })) }",
                Kind::Rust,
                "http://localhost:3000",
            ),
            (
                "Cannot connect to the Docker daemon at tcp://10.0.0.9:2375. Is the docker daemon running?",
                Kind::Docker,
                "10.0.0.9:2375",
            ),
            (
                "MONGO_URL=mongodb://root:pw@mongo1:27017,mongo2:27017/app?replicaSet=rs0",
                Kind::Url,
                "mongodb://mongo1:27017",
            ),
            (
                "Get \"http://db:8080/\": dial tcp: lookup db on 127.0.0.53:53: no such host",
                Kind::Url,
                "http://db:8080",
            ),
            (
                "redis.exceptions.ConnectionError: Error -2 connecting to cache:6379. Name or service not known.",
                Kind::Redis,
                "cache:6379",
            ),
        ];
        for (message, kind, target) in cases {
            let found = recognise(message).recognised;
            assert_eq!(found.len(), 1, "{message}: {found:?}");
            assert_eq!(found[0].kind, *kind, "{message}");
            assert_eq!(found[0].target().as_deref(), Some(*target), "{message}");
        }
    }

    #[test]
    fn libpq_keeps_the_name_and_the_address_it_tried() {
        let found = recognise(MESSAGES[8].1).recognised;
        assert_eq!(found[0].name.as_deref(), Some("localhost"));
        assert_eq!(found[0].target().as_deref(), Some("[::1]:5432"));
        assert_eq!(found[0].family(), Some(crate::Family::Ipv6));
        assert_eq!(
            found[0].text,
            "connection to server at \"localhost\" (::1), port 5432 failed: Connection refused"
        );
    }

    #[test]
    fn a_password_in_the_text_is_never_shown_back() {
        let text = "sqlalchemy.exc.OperationalError: could not connect to \
                    postgresql://admin:hunter2@db.internal/app and redis://:tok3n@cache:6380";
        let found = recognise(text);
        let json = serde_json::to_string(&found).unwrap();
        assert!(!json.contains("hunter2") && !json.contains("admin") && !json.contains("tok3n"));
        let targets: Vec<_> = found.recognised.iter().filter_map(Recognised::target).collect();
        assert_eq!(targets, ["postgresql://db.internal:5432", "redis://cache:6380"]);
        assert_eq!(found.recognised[0].text, "postgresql://…@db.internal/app");
    }

    #[test]
    fn only_a_host_or_only_a_port_says_what_is_missing() {
        let host_only = &recognise("curl: (6) Could not resolve host: api.internal").recognised[0];
        assert_eq!((host_only.target(), host_only.missing()), (None, Some("the port")));
        let nothing =
            &recognise("ConnectionRefusedError: [Errno 111] Connection refused").recognised;
        assert_eq!(nothing[0].missing(), Some("the host and the port"));
        assert!(!recognise("ConnectionRefusedError: [Errno 111] Connection refused").has_target());
        assert!(recognise("all good here, nothing failed").recognised.is_empty());
    }

    #[test]
    fn several_targets_are_each_kept_once_in_order() {
        let text = "Error: connect ECONNREFUSED 127.0.0.1:5432\n\
                    Error: connect ECONNREFUSED 127.0.0.1:5432\n\
                    dial tcp 10.0.0.5:6379: connect: connection refused\n\
                    Error: getaddrinfo ENOTFOUND 10.0.0.5";
        let targets: Vec<_> = recognise(text).recognised.iter().map(|r| r.target()).collect();
        assert_eq!(targets, [Some("127.0.0.1:5432".into()), Some("10.0.0.5:6379".into())]);
    }

    #[test]
    fn at_most_sixteen_targets_are_kept_and_the_rest_counted() {
        let text: String =
            (1..=20).map(|n| format!("connect ECONNREFUSED 127.0.0.1:{}\n", 4000 + n)).collect();
        let found = recognise(&text);
        assert_eq!((found.recognised.len(), found.left_out), (MAX_TARGETS, 4));
        assert_eq!(found.recognised[15].port, Some(4016));
    }

    #[test]
    fn the_json_has_the_issue_shape() {
        let found = recognise("connect ECONNREFUSED ::1:3000");
        let json = serde_json::to_value(&found.recognised[0]).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind": "node", "host": "::1", "port": 3000,
                               "text": "connect ECONNREFUSED ::1:3000"})
        );
    }

    #[test]
    fn odd_text_never_panics() {
        for text in [
            "connect E",
            "dial tcp ",
            "://",
            "connection to server at \"",
            "Os { code: ",
            "actively refused it.",
            "HTTPConnectionPool(",
            "Error 1 connecting to ",
            "lookup é on",
            "Failed to connect to ü port 9",
            "é://é@é",
            "[::1",
            "[::1]:x",
        ] {
            let _ = recognise(text);
        }
        // Every message cut anywhere, with a multi-byte letter after the cut.
        for (_, message, ..) in MESSAGES {
            for (at, _) in message.char_indices() {
                let _ = recognise(&format!("{}é", &message[..at]));
            }
        }
        let long = "é".repeat(MAX_TEXT_BYTES);
        let _ = recognise(&long);
    }
}
