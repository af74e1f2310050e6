//! The proxy variables (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`, either case) and
//! what they mean for one target, as each of three clients reads them: curl, Python requests
//! and Go's net/http. They differ, and a program's path depends on which one it is:
//!
//! - **Which variable.** curl reads `http_proxy` in lower case only (never `HTTP_PROXY`, a CGI
//!   hazard), `https_proxy`/`HTTPS_PROXY` and falls back to `all_proxy`/`ALL_PROXY`; Python
//!   reads every `*_proxy` in either case (lower case wins) with `all_proxy` as the fallback;
//!   Go reads `HTTP_PROXY`/`HTTPS_PROXY` (upper case first) and never `ALL_PROXY`.
//! - **`NO_PROXY`.** curl: a name matches itself and its subdomains, a leading dot is dropped,
//!   `*` alone means every host, IP entries may be CIDR blocks, ports are not understood.
//!   Python requests: a plain suffix match (`ample.com` matches `example.com`), `host:port`
//!   entries, IPv4 CIDR blocks, and urllib's own leading-dot rule. Go: `example.com` matches it
//!   and its subdomains, `.example.com` and `*.example.com` the subdomains only, CIDR blocks of
//!   both families, `host:port` entries; and Go never proxies `localhost` or a loopback address.
//!
//! Only http:// and https:// targets follow these variables (a database driver does not).
//! A proxy's user name and password are kept to authenticate to it, never shown: [`ProxyUrl`]
//! prints without them, and [`ProxyEnv`]'s `Debug` names the variables only.

use std::net::IpAddr;

use ipnet::IpNet;

/// Whose reading of the proxy variables to follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// curl and libcurl.
    Curl,
    /// Python requests (and urllib underneath).
    Requests,
    /// Go's net/http (`http.ProxyFromEnvironment`).
    Go,
}

impl Client {
    /// Every client, in the order readings are listed.
    pub const ALL: [Client; 3] = [Client::Curl, Client::Requests, Client::Go];

    /// The client as a person names it.
    pub fn label(self) -> &'static str {
        match self {
            Client::Curl => "curl",
            Client::Requests => "Python requests",
            Client::Go => "Go",
        }
    }
}

/// The proxy variables of an environment, captured once.
#[derive(Clone, Default)]
pub struct ProxyEnv {
    /// Each proxy variable set and not empty: its name as written, and its value.
    vars: Vec<(String, String)>,
}

impl std::fmt::Debug for ProxyEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The values may hold a password: only the names are printed.
        let names: Vec<&str> = self.vars.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("ProxyEnv").field("set", &names).finish()
    }
}

/// The variables read, in both cases.
const NAMES: [&str; 8] = [
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
];

impl ProxyEnv {
    /// The proxy variables of this process's environment.
    pub fn from_process() -> ProxyEnv {
        ProxyEnv::from_pairs(
            NAMES
                .iter()
                .filter_map(|name| std::env::var(name).ok().map(|value| (name.to_string(), value))),
        )
    }

    /// The variables from name-value pairs (empty values are unset, as every client reads them).
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> ProxyEnv {
        let vars = pairs
            .into_iter()
            .filter(|(name, value)| NAMES.contains(&name.as_str()) && !value.trim().is_empty())
            .collect();
        ProxyEnv { vars }
    }

    /// Whether any proxy variable is set.
    pub fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.vars.iter().find(|(n, _)| n == name).map(|(_, v)| v.trim())
    }

    /// The first of `names` that is set: its name and value.
    fn first<'a>(&'a self, names: &[&'static str]) -> Option<(&'static str, &'a str)> {
        names.iter().find_map(|name| self.get(name).map(|value| (*name, value)))
    }
}

/// A proxy, parsed from a variable's value: `[http://][user[:password]@]host[:port][/]`.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    /// The proxy's scheme (`http`, `https`, `socks5`, `socks5h` are followed; `socks4` … are
    /// named but not followed).
    pub scheme: String,
    /// Its host: a name, or an IP address (without brackets).
    pub host: String,
    /// Its port.
    pub port: u16,
    /// The user name and password, percent-decoded, to authenticate with (never shown).
    credentials: Option<(String, String)>,
}

impl std::fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ProxyUrl({self})")
    }
}

impl std::fmt::Display for ProxyUrl {
    /// The proxy without its user name or password: `http://127.0.0.1:3128`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}", self.scheme, self.authority())
    }
}

impl ProxyUrl {
    /// Parses a proxy variable's value; `client` decides the port of a proxy without one
    /// (curl's is 1080, the others' the scheme's). `None` when it names no host.
    pub fn parse(value: &str, client: Client) -> Option<ProxyUrl> {
        let value = value.trim();
        let (scheme, rest) = match value.split_once("://") {
            Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
            None => ("http".to_string(), value),
        };
        let rest = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let (userinfo, hostport) = match rest.rsplit_once('@') {
            Some((userinfo, hostport)) => (Some(userinfo), hostport),
            None => (None, rest),
        };
        let (host, port) = split_host_port(hostport)?;
        if host.is_empty() {
            return None;
        }
        let port = match port {
            Some(port) => port,
            None => default_port(&scheme, client),
        };
        let credentials = userinfo.map(|info| {
            let (user, password) = info.split_once(':').unwrap_or((info, ""));
            (percent_decode(user), percent_decode(password))
        });
        Some(ProxyUrl { scheme, host: host.to_ascii_lowercase(), port, credentials })
    }

    /// `host:port`, with brackets around an IPv6 address.
    pub fn authority(&self) -> String {
        match self.host.parse::<std::net::Ipv6Addr>() {
            Ok(_) => format!("[{}]:{}", self.host, self.port),
            Err(_) => format!("{}:{}", self.host, self.port),
        }
    }

    /// Whether the URL carries a user name.
    pub fn has_credentials(&self) -> bool {
        self.credentials.is_some()
    }

    /// The `Proxy-Authorization` header's value (`Basic …`), when the URL carries credentials.
    pub fn authorization(&self) -> Option<String> {
        use base64::Engine as _;
        let (user, password) = self.credentials.as_ref()?;
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        Some(format!("Basic {encoded}"))
    }

    /// The user name and password, to send to a SOCKS5 proxy (never to show).
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.credentials.as_ref().map(|(user, password)| (user.as_str(), password.as_str()))
    }

    /// Whether whyrefused can go through it: HTTP proxies, plain or over TLS, and SOCKS5 ones
    /// (`socks5h://` letting the proxy resolve the name).
    pub fn is_followed(&self) -> bool {
        matches!(self.scheme.as_str(), "http" | "https" | "socks5" | "socks5h")
    }

    /// Whether it is a SOCKS5 proxy.
    pub fn is_socks(&self) -> bool {
        self.scheme.starts_with("socks5")
    }
}

fn default_port(scheme: &str, client: Client) -> u16 {
    match (scheme, client) {
        ("https", _) => 443,
        ("socks4" | "socks4a" | "socks5" | "socks5h" | "socks", _) => 1080,
        (_, Client::Curl) => 1080,
        _ => 80,
    }
}

/// Splits `host[:port]` or `[v6][:port]`; `None` for a port that is not a number.
fn split_host_port(text: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after.strip_prefix(':') {
            Some(port) => Some((host, Some(port.parse().ok()?))),
            None if after.is_empty() => Some((host, None)),
            None => None,
        };
    }
    match text.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => Some((host, Some(port.parse().ok()?))),
        Some(_) => Some((text, None)),
        None => Some((text, None)),
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What one client does for one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reading {
    /// It goes through `proxy`, named by `variable`.
    Proxied { variable: &'static str, proxy: ProxyUrl },
    /// A proxy variable applies, but `variable`'s `entry` excludes the target.
    Excluded { variable: &'static str, entry: String },
    /// Go never proxies `localhost` or a loopback address.
    LoopbackNeverProxied,
    /// No proxy variable applies to the target's scheme.
    NoProxyVariable,
}

impl Reading {
    /// Whether the client would go through a proxy.
    pub fn is_proxied(&self) -> bool {
        matches!(self, Reading::Proxied { .. })
    }

    /// Why, in words.
    pub fn why(&self) -> String {
        match self {
            Reading::Proxied { variable, proxy } => format!("{variable}={proxy}"),
            Reading::Excluded { variable, entry } => format!("{variable} entry {entry}"),
            Reading::LoopbackNeverProxied => "Go never proxies localhost or loopback".into(),
            Reading::NoProxyVariable => "no proxy variable for the scheme".into(),
        }
    }
}

/// Whose reading a check follows, and the proxy variables it reads them from: the CLI's own
/// environment, or a serving agent's with `--use-env-proxy`.
#[derive(Debug, Clone)]
pub struct ProxySettings {
    /// The variables.
    pub env: ProxyEnv,
    /// The client whose reading the check follows.
    pub client: Client,
}

/// What the proxy variables mean for one target: the followed client's reading, and every
/// client's (to say when they disagree).
#[derive(Debug, Clone)]
pub struct Routing {
    /// The client the check follows.
    pub client: Client,
    /// Its reading.
    pub reading: Reading,
    /// Every client's reading, in [`Client::ALL`]'s order.
    pub readings: Vec<(Client, Reading)>,
}

impl Routing {
    /// Whether the clients would not all take the same way (proxy or direct).
    pub fn disagree(&self) -> bool {
        let mut ways = self.readings.iter().map(|(_, r)| r.is_proxied());
        let first = ways.next();
        ways.any(|way| Some(way) != first)
    }
}

/// What the proxy variables mean for `target`: `None` when it is not an http:// or https://
/// target (no client proxies a database connection) or no proxy variable is set.
pub fn route(settings: &ProxySettings, target: &crate::target::Target) -> Option<Routing> {
    let scheme = target.scheme.as_deref().filter(|s| matches!(*s, "http" | "https"))?;
    if settings.env.is_empty() {
        return None;
    }
    let host = target.host.ascii();
    let written = target.port_source == whyrefused_shared::PortSource::Explicit;
    let readings = readings(&settings.env, scheme, &host, target.port, written);
    let reading = readings
        .iter()
        .find(|(client, _)| *client == settings.client)
        .map(|(_, reading)| reading.clone())?;
    Some(Routing { client: settings.client, reading, readings })
}

/// What `client` does for a `scheme://host:port` target; `port_written` is whether the URL
/// names its port (Python matches `host:port` entries only then).
pub fn reading(
    env: &ProxyEnv,
    client: Client,
    scheme: &str,
    host: &str,
    port: u16,
    port_written: bool,
) -> Reading {
    let Some((variable, value)) = env.first(proxy_names(client, scheme)) else {
        return Reading::NoProxyVariable;
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if client == Client::Go && is_loopback(&host) {
        return Reading::LoopbackNeverProxied;
    }
    if let Some((no_proxy, list)) = env.first(no_proxy_names(client)) {
        let excluded = match client {
            Client::Curl => curl_excludes(list, &host),
            Client::Requests => requests_excludes(list, &host, port_written.then_some(port)),
            Client::Go => go_excludes(list, &host, port),
        };
        if let Some(entry) = excluded {
            return Reading::Excluded { variable: no_proxy, entry };
        }
    }
    match ProxyUrl::parse(value, client) {
        Some(proxy) => Reading::Proxied { variable, proxy },
        None => Reading::NoProxyVariable,
    }
}

/// Every client's reading, in [`Client::ALL`]'s order.
pub fn readings(
    env: &ProxyEnv,
    scheme: &str,
    host: &str,
    port: u16,
    port_written: bool,
) -> Vec<(Client, Reading)> {
    Client::ALL
        .iter()
        .map(|client| (*client, reading(env, *client, scheme, host, port, port_written)))
        .collect()
}

/// The variables that name a proxy for `scheme`, in the order `client` tries them.
fn proxy_names(client: Client, scheme: &str) -> &'static [&'static str] {
    match (client, scheme) {
        (Client::Curl, "http") => &["http_proxy", "all_proxy", "ALL_PROXY"],
        (Client::Curl, "https") => &["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"],
        (Client::Requests, "http") => &["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"],
        (Client::Requests, "https") => &["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"],
        (Client::Go, "http") => &["HTTP_PROXY", "http_proxy"],
        (Client::Go, "https") => &["HTTPS_PROXY", "https_proxy"],
        _ => &[],
    }
}

fn no_proxy_names(client: Client) -> &'static [&'static str] {
    match client {
        Client::Go => &["NO_PROXY", "no_proxy"],
        Client::Curl | Client::Requests => &["no_proxy", "NO_PROXY"],
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The host as an IP address, brackets dropped.
fn ip_of(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[').trim_end_matches(']').parse().ok()
}

/// Whether `ip` is in `entry`, read as a CIDR block (`10.0.0.0/8`).
fn in_block(entry: &str, ip: IpAddr) -> bool {
    entry.parse::<IpNet>().is_ok_and(|net| net.contains(&ip))
}

/// curl's `NO_PROXY` (lib/noproxy.c): entries split at commas and spaces.
fn curl_excludes(list: &str, host: &str) -> Option<String> {
    let entries = list.split([',', ' ']).map(str::trim).filter(|e| !e.is_empty());
    for entry in entries {
        let lower = entry.to_ascii_lowercase();
        if lower == "*" {
            return Some(entry.to_string());
        }
        let matched = match ip_of(host) {
            Some(ip) => {
                let bare = lower.trim_start_matches('[').trim_end_matches(']');
                in_block(bare, ip) || bare.parse::<IpAddr>().is_ok_and(|e| e == ip)
            }
            None => {
                let name = lower.trim_start_matches('.').trim_end_matches('.');
                host == name || host.ends_with(&format!(".{name}"))
            }
        };
        if matched {
            return Some(entry.to_string());
        }
    }
    None
}

/// Python requests' `NO_PROXY` (`should_bypass_proxies`), then urllib's
/// (`proxy_bypass_environment`), which requests also asks.
fn requests_excludes(list: &str, host: &str, port: Option<u16>) -> Option<String> {
    let entries: Vec<&str> = list.split(',').map(|e| e.trim()).filter(|e| !e.is_empty()).collect();
    let ipv4 = host.parse::<std::net::Ipv4Addr>().ok();
    for entry in &entries {
        let entry_text = entry.replace(' ', "").to_ascii_lowercase();
        let matched = match ipv4 {
            Some(ip) if entry_text.contains('/') => in_block(&entry_text, IpAddr::V4(ip)),
            Some(_) => entry_text == host,
            None => {
                let with_port = port.map_or(host.to_string(), |p| format!("{host}:{p}"));
                host.ends_with(&entry_text) || with_port.ends_with(&entry_text)
            }
        };
        if matched {
            return Some(entry.to_string());
        }
    }
    // urllib: `*` is every host; a leading dot is dropped; the name or a subdomain matches.
    let with_port = port.map_or(host.to_string(), |p| format!("{host}:{p}"));
    for entry in &entries {
        if *entry == "*" {
            return Some(entry.to_string());
        }
        let name = entry.trim_start_matches('.').to_ascii_lowercase();
        let dotted = format!(".{name}");
        if host == name
            || with_port == name
            || host.ends_with(&dotted)
            || with_port.ends_with(&dotted)
        {
            return Some(entry.to_string());
        }
    }
    None
}

/// Go's `NO_PROXY` (golang.org/x/net/http/httpproxy).
fn go_excludes(list: &str, host: &str, port: u16) -> Option<String> {
    let ip = ip_of(host);
    for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let lower = entry.to_ascii_lowercase();
        if lower == "*" {
            return Some(entry.to_string());
        }
        if let Ok(net) = lower.parse::<IpNet>() {
            if ip.is_some_and(|ip| net.contains(&ip)) {
                return Some(entry.to_string());
            }
            continue;
        }
        let (entry_host, entry_port) = match split_host_port(&lower) {
            Some((h, p)) => (h.to_string(), p),
            None => continue,
        };
        if entry_port.is_some_and(|p| p != port) {
            continue;
        }
        if let Ok(entry_ip) = entry_host.parse::<IpAddr>() {
            if ip == Some(entry_ip) {
                return Some(entry.to_string());
            }
            continue;
        }
        if ip.is_some() || entry_host.is_empty() {
            continue;
        }
        let entry_host = entry_host.strip_prefix('*').unwrap_or(&entry_host);
        let (suffix, match_host) = match entry_host.strip_prefix('.') {
            Some(_) => (entry_host.to_string(), false),
            None => (format!(".{entry_host}"), true),
        };
        if host.ends_with(&suffix) || (match_host && host == &suffix[1..]) {
            return Some(entry.to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> ProxyEnv {
        ProxyEnv::from_pairs(pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())))
    }

    fn proxied(env: &ProxyEnv, client: Client, url: (&str, &str, u16)) -> bool {
        reading(env, client, url.0, url.1, url.2, false).is_proxied()
    }

    #[test]
    fn a_proxy_url_keeps_its_credentials_out_of_sight() {
        let proxy = ProxyUrl::parse("http://alice:s%40cret@proxy.corp:3128/", Client::Go).unwrap();
        assert_eq!(proxy.to_string(), "http://proxy.corp:3128");
        assert_eq!(format!("{proxy:?}"), "ProxyUrl(http://proxy.corp:3128)");
        // "alice:s@cret" in base64.
        assert_eq!(proxy.authorization().as_deref(), Some("Basic YWxpY2U6c0BjcmV0"));
        let env = env(&[("HTTPS_PROXY", "http://alice:secret@proxy:3128")]);
        assert!(!format!("{env:?}").contains("secret"));
    }

    #[test]
    fn a_proxy_without_a_port_gets_each_clients_default() {
        assert_eq!(ProxyUrl::parse("proxy", Client::Curl).unwrap().port, 1080);
        assert_eq!(ProxyUrl::parse("http://proxy", Client::Go).unwrap().port, 80);
        assert_eq!(ProxyUrl::parse("[::1]:3128", Client::Go).unwrap().authority(), "[::1]:3128");
        assert_eq!(ProxyUrl::parse("http://:3128", Client::Go), None);
    }

    #[test]
    fn curl_ignores_upper_case_http_proxy_and_go_ignores_all_proxy() {
        let upper = env(&[("HTTP_PROXY", "http://p:3128")]);
        let target = ("http", "api.example.com", 80);
        assert!(!proxied(&upper, Client::Curl, target));
        assert!(proxied(&upper, Client::Requests, target));
        assert!(proxied(&upper, Client::Go, target));
        let all = env(&[("ALL_PROXY", "http://p:3128")]);
        let target = ("https", "api.example.com", 443);
        assert!(proxied(&all, Client::Curl, target));
        assert!(proxied(&all, Client::Requests, target));
        assert!(!proxied(&all, Client::Go, target));
        assert_eq!(
            reading(&all, Client::Curl, "postgres", "db", 5432, true),
            Reading::NoProxyVariable
        );
    }

    #[test]
    fn go_never_proxies_loopback() {
        let e = env(&[("HTTPS_PROXY", "http://p:3128")]);
        assert_eq!(
            reading(&e, Client::Go, "https", "127.0.0.1", 443, false),
            Reading::LoopbackNeverProxied
        );
        assert!(proxied(&e, Client::Curl, ("https", "127.0.0.1", 443)));
    }

    #[test]
    fn no_proxy_rules_differ_between_clients() {
        let with = |list: &str| env(&[("HTTPS_PROXY", "http://p:3128"), ("NO_PROXY", list)]);
        let each = |list: &str, host: &str, port: u16| -> [bool; 3] {
            let e = with(list);
            Client::ALL.map(|c| !reading(&e, c, "https", host, port, true).is_proxied())
        };
        // [curl, requests, Go] excluded?
        assert_eq!(each("example.com", "example.com", 443), [true, true, true]);
        assert_eq!(each("example.com", "api.example.com", 443), [true, true, true]);
        // A leading dot: curl and Python drop it, Go matches subdomains only.
        assert_eq!(each(".example.com", "example.com", 443), [true, true, false]);
        // A wildcard: only Go reads *.example.com.
        assert_eq!(each("*.example.com", "api.example.com", 443), [false, false, true]);
        // A plain suffix: only Python requests matches within a label.
        assert_eq!(each("ample.com", "example.com", 443), [false, true, false]);
        // CIDR: curl and Go for both families, requests for IPv4 only.
        assert_eq!(each("10.0.0.0/8", "10.1.2.3", 443), [true, true, true]);
        assert_eq!(each("fd00::/8", "fd00::5", 443), [true, false, true]);
        // A port: curl does not understand it.
        assert_eq!(each("db.internal:443", "db.internal", 443), [false, true, true]);
        assert_eq!(each("db.internal:8443", "db.internal", 443), [false, false, false]);
        assert_eq!(each("*", "anything", 443), [true, true, true]);
    }
}
