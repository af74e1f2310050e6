//! Parsing what the user typed into a [`Target`]: host (name or IP), port, and URL parts.
//!
//! Accepted forms: `host:port`, `v4addr:port`, `[v6addr]:port`, `scheme://host[:port]/path`
//! (with the scheme's well-known port when none is written), and a bare host together with a
//! port given separately. International names are converted to ASCII (IDNA) for the resolver.
//! Every rejection is a [`TargetError`] whose message says what is wrong and what is valid.
//!
//! Two rules keep a target's text from doing harm once it leaves here:
//!
//! - A user name or password (`user:pw@db:5432`, `https://user:pw@host/`) is refused, with or
//!   without a scheme: whyrefused only connects and never sends them, and a refusal (whose
//!   message quotes the target without them) keeps them out of every log, report and client.
//! - A URL's path and query keep only what RFC 3986 allows in them; every other byte (a space,
//!   a CR or LF, a non-ASCII letter, a `%` not starting an escape) is percent-encoded, so the
//!   HTTP request line sent after a connect is one line, whatever was typed. A `#fragment` is
//!   dropped: it is never sent to a server.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use whyrefused_shared::{PortSource, TargetInfo};

/// The forms a valid target takes, quoted by error messages.
pub const VALID_FORMS: &str =
    "host:port, 192.0.2.1:port, [2001:db8::1]:port or scheme://host[:port]/path";

/// A parsed target: where to connect and what the user wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The text the user gave.
    pub input: String,
    /// The host to resolve or connect to.
    pub host: Host,
    /// The TCP port.
    pub port: u16,
    /// Where the port came from.
    pub port_source: PortSource,
    /// The URL scheme, for URL targets (lowercase).
    pub scheme: Option<String>,
    /// The URL path, for URL targets that have one.
    pub path: Option<String>,
}

/// A target's host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// An IP address literal: nothing to resolve.
    Ip(IpAddr),
    /// A host name: `ascii` goes to the resolver, `display` is what the user reads.
    Name {
        /// Lowercase ASCII form (punycode for international names).
        ascii: String,
        /// The Unicode form.
        display: String,
    },
}

impl Host {
    /// The host as sent to the resolver (an IP literal has no brackets).
    pub fn ascii(&self) -> String {
        match self {
            Host::Ip(ip) => ip.to_string(),
            Host::Name { ascii, .. } => ascii.clone(),
        }
    }

    /// The host as a person reads it.
    pub fn display(&self) -> String {
        match self {
            Host::Ip(ip) => ip.to_string(),
            Host::Name { display, .. } => display.clone(),
        }
    }
}

impl Host {
    /// Parses a host alone, as a scan takes it: a name, an IPv4 address, or an IPv6 address with
    /// or without brackets (a URL's host is taken too). A port is refused: a scan's ports come
    /// from its port spec.
    pub fn parse(input: &str) -> Result<Host, TargetError> {
        let text = input.trim();
        if text.is_empty() {
            return Err(TargetError::EmptyHost);
        }
        refuse_userinfo(text)?;
        let (scheme, rest) = split_scheme(text)?;
        let (authority, _path) = split_path(rest, scheme.is_some())?;
        let (host_text, written_port) = split_host_port(authority)?;
        match written_port {
            Some(port) => Err(TargetError::PortInHost { host: host_text.to_string(), port }),
            None => parse_host(host_text),
        }
    }
}

impl Target {
    /// Parses `input`, with `port_option` as the port for a bare host (or, when the input names a
    /// port too, a value it must agree with).
    pub fn parse(input: &str, port_option: Option<u16>) -> Result<Target, TargetError> {
        let text = input.trim();
        if text.is_empty() {
            return Err(TargetError::Empty);
        }
        refuse_userinfo(text)?;
        let (scheme, rest) = split_scheme(text)?;
        let (authority, path) = split_path(rest, scheme.is_some())?;
        let (host_text, written_port) = split_host_port(authority)?;
        let host = parse_host(host_text)?;
        let (port, port_source) = choose_port(written_port, port_option, scheme.as_deref(), &host)?;
        let input = text.to_string();
        Ok(Target { input, host, port, port_source, scheme, path })
    }

    /// The target as the wire protocol describes it.
    pub fn info(&self) -> TargetInfo {
        TargetInfo {
            input: self.input.clone(),
            host: self.host.ascii(),
            display_host: self.host.display(),
            port: self.port,
            port_source: self.port_source,
            scheme: self.scheme.clone(),
            path: self.path.clone(),
        }
    }
}

/// Why a target could not be parsed. Each message names the problem and the valid form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("the target is empty: give {VALID_FORMS}")]
    Empty,
    #[error(
        "the host is empty: give a name or an address, as db.internal, 192.0.2.1 or 2001:db8::1"
    )]
    EmptyHost,
    #[error(
        "a scan takes a host without a port, not '{host}:{port}': the ports come from the port list (--ports {port})"
    )]
    PortInHost { host: String, port: u16 },
    #[error(
        "'{0}' is not a valid URL scheme: a scheme is letters, digits, '+', '-' or '.', starting with a letter (like https://)"
    )]
    BadScheme(String),
    #[error("the URL '{0}' has no host after '://': write scheme://host[:port]/path")]
    MissingHost(String),
    #[error("'{0}' has a path but no scheme: write a URL (https://host/path) or just host:port")]
    PathWithoutScheme(String),
    #[error("unclosed '[' in '{0}': write an IPv6 address in brackets, as [2001:db8::1]:443")]
    UnclosedBracket(String),
    #[error("'{0}' inside brackets is not an IPv6 address: write it as [2001:db8::1]:443")]
    BadIpv6(String),
    #[error("unexpected '{rest}' after ']' in '{input}': write [2001:db8::1]:443")]
    AfterBracket { input: String, rest: String },
    #[error(
        "the IPv6 address '{0}' needs brackets to carry a port: write [{0}]:PORT, or give the port separately"
    )]
    BareIpv6NeedsPort(String),
    #[error("no port after ':' in '{0}': write host:PORT with PORT from 1 to 65535")]
    MissingPort(String),
    #[error("port '{0}' is not a number: write host:PORT with PORT from 1 to 65535")]
    PortNotNumber(String),
    #[error("port {0} is out of range: ports run from 1 to 65535")]
    PortOutOfRange(String),
    #[error("the target says port {written} but the port option says {option}: give one")]
    PortConflict { written: u16, option: u16 },
    #[error(
        "no port given for '{0}': write {0}:PORT (e.g. {0}:443), a URL such as https://{0}, or give the port separately"
    )]
    NoPort(String),
    #[error("the scheme '{scheme}' has no well-known port: write {scheme}://host:PORT")]
    UnknownScheme { scheme: String },
    #[error(
        "bad character {character:?} in host '{host}': a host name has letters, digits, '-', '_' and '.'"
    )]
    BadCharacter { host: String, character: char },
    #[error(
        "the target carries a user name or password before '@': whyrefused only connects and never sends them, so it refuses them rather than keep them in a log; write {without}"
    )]
    Userinfo { without: String },
    #[error("'{host}' is not a valid host name: {reason}")]
    BadHostName { host: String, reason: String },
    #[error(
        "'{0}' looks like an IPv4 address but is not one: write four numbers from 0 to 255, as 192.0.2.1"
    )]
    BadIpv4(String),
}

/// Well-known ports of the URL schemes a target may use without writing a port.
pub fn default_port(scheme: &str) -> Option<u16> {
    Some(match scheme {
        "http" | "ws" => 80,
        "https" | "wss" => 443,
        "ssh" | "sftp" => 22,
        "ftp" => 21,
        "ftps" => 990,
        "telnet" => 23,
        "smtp" => 25,
        "submission" => 587,
        "smtps" => 465,
        "dns" => 53,
        "pop3" => 110,
        "pop3s" => 995,
        "imap" => 143,
        "imaps" => 993,
        "ldap" => 389,
        "ldaps" => 636,
        "postgres" | "postgresql" => 5432,
        "mysql" | "mariadb" => 3306,
        "redis" | "rediss" => 6379,
        "mongodb" => 27017,
        "amqp" => 5672,
        "amqps" => 5671,
        "mqtt" => 1883,
        "mqtts" => 8883,
        "memcached" => 11211,
        "git" => 9418,
        "rdp" => 3389,
        "vnc" => 5900,
        _ => return None,
    })
}

fn split_scheme(text: &str) -> Result<(Option<String>, &str), TargetError> {
    let Some((scheme, rest)) = text.split_once("://") else {
        return Ok((None, text));
    };
    let valid = scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !valid {
        return Err(TargetError::BadScheme(scheme.to_string()));
    }
    if rest.is_empty() {
        return Err(TargetError::MissingHost(text.to_string()));
    }
    Ok((Some(scheme.to_ascii_lowercase()), rest))
}

/// Refuses a target whose authority carries `user[:password]@`, quoting it without them.
fn refuse_userinfo(text: &str) -> Result<(), TargetError> {
    let (scheme, rest) = match text.find("://") {
        Some(at) => text.split_at(at + 3),
        None => ("", text),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, after) = rest.split_at(authority_end);
    match authority.rfind('@') {
        Some(at) => {
            let without = format!("{scheme}{}{after}", &authority[at + 1..]);
            Err(TargetError::Userinfo { without })
        }
        None => Ok(()),
    }
}

/// Splits `authority/path?query#fragment` into the authority and the path with its query, made
/// safe to send (see [`request_target`]).
fn split_path(rest: &str, is_url: bool) -> Result<(&str, Option<String>), TargetError> {
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if !path.is_empty() && !is_url {
        return Err(TargetError::PathWithoutScheme(rest.to_string()));
    }
    if authority.is_empty() {
        return Err(TargetError::MissingHost(rest.to_string()));
    }
    let path = Some(request_target(path)).filter(|path| !path.is_empty());
    Ok((authority, path))
}

/// A URL's path and query as RFC 3986 allows them, fit for an HTTP request line: the fragment
/// dropped, every byte outside the path and query characters (`pchar`, `/` and `?`)
/// percent-encoded, and a `%` kept only where it starts an escape (`%2F`).
pub fn request_target(path: &str) -> String {
    let path = path.split_once('#').map_or(path, |(before, _fragment)| before);
    let bytes = path.as_bytes();
    let mut safe = String::with_capacity(path.len());
    for (index, byte) in bytes.iter().enumerate() {
        let escape = *byte == b'%'
            && bytes
                .get(index + 1..index + 3)
                .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit));
        if escape || is_path_or_query_char(*byte) {
            safe.push(char::from(*byte));
        } else {
            safe.push_str(&format!("%{byte:02X}"));
        }
    }
    safe
}

/// RFC 3986's characters of a path or query, but `%`: unreserved, sub-delims, `:`, `@`, `/`
/// and `?`.
fn is_path_or_query_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?".contains(&byte)
}

/// Splits `host[:port]` or `[v6][:port]` into the host text and the written port, if any.
fn split_host_port(authority: &str) -> Result<(&str, Option<u16>), TargetError> {
    if let Some(inside) = authority.strip_prefix('[') {
        let Some((address, after)) = inside.split_once(']') else {
            return Err(TargetError::UnclosedBracket(authority.to_string()));
        };
        if address.parse::<Ipv6Addr>().is_err() {
            return Err(TargetError::BadIpv6(address.to_string()));
        }
        return match after {
            "" => Ok((address, None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((address, Some(parse_port(port, authority)?))),
                None => Err(TargetError::AfterBracket {
                    input: authority.to_string(),
                    rest: after.to_string(),
                }),
            },
        };
    }
    if authority.matches(':').count() > 1 {
        // More than one colon and no brackets: only a bare IPv6 address (port given separately).
        return match authority.parse::<Ipv6Addr>() {
            Ok(_) => Ok((authority, None)),
            Err(_) => {
                Err(TargetError::BadCharacter { host: authority.to_string(), character: ':' })
            }
        };
    }
    match authority.split_once(':') {
        Some((host, port)) => Ok((host, Some(parse_port(port, authority)?))),
        None => Ok((authority, None)),
    }
}

fn parse_port(text: &str, authority: &str) -> Result<u16, TargetError> {
    if text.is_empty() {
        return Err(TargetError::MissingPort(authority.to_string()));
    }
    if !text.chars().all(|c| c.is_ascii_digit()) {
        return Err(TargetError::PortNotNumber(text.to_string()));
    }
    match text.parse::<u32>() {
        Ok(port @ 1..=65535) => Ok(port as u16),
        _ => Err(TargetError::PortOutOfRange(text.to_string())),
    }
}

fn choose_port(
    written: Option<u16>,
    option: Option<u16>,
    scheme: Option<&str>,
    host: &Host,
) -> Result<(u16, PortSource), TargetError> {
    match (written, option) {
        (Some(written), Some(option)) if written != option => {
            Err(TargetError::PortConflict { written, option })
        }
        (_, Some(0)) => Err(TargetError::PortOutOfRange("0".into())),
        (Some(port), _) => Ok((port, PortSource::Explicit)),
        (None, Some(port)) => Ok((port, PortSource::Option)),
        (None, None) => match scheme {
            Some(scheme) => default_port(scheme)
                .map(|port| (port, PortSource::SchemeDefault))
                .ok_or_else(|| TargetError::UnknownScheme { scheme: scheme.to_string() }),
            None => match host {
                Host::Ip(IpAddr::V6(_)) => Err(TargetError::BareIpv6NeedsPort(host.display())),
                _ => Err(TargetError::NoPort(host.display())),
            },
        },
    }
}

fn parse_host(text: &str) -> Result<Host, TargetError> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(Host::Ip(ip));
    }
    if let Some(character) =
        text.chars().find(|&c| !(c.is_alphanumeric() || c == '-' || c == '.' || c == '_'))
    {
        return Err(TargetError::BadCharacter { host: text.to_string(), character });
    }
    if looks_like_ipv4(text) {
        return Err(TargetError::BadIpv4(text.to_string()));
    }
    let ascii = idna::domain_to_ascii(text).map_err(|_| TargetError::BadHostName {
        host: text.to_string(),
        reason: "it is not a valid international domain name (IDNA)".into(),
    })?;
    check_labels(text, &ascii)?;
    let (display, _) = idna::domain_to_unicode(&ascii);
    Ok(Host::Name { ascii, display })
}

/// All-numeric dotted text (`256.1.1.1`, `10.0.0`) is a mistyped IPv4 address, not a name.
fn looks_like_ipv4(text: &str) -> bool {
    let labels: Vec<&str> = text.trim_end_matches('.').split('.').collect();
    labels.len() > 1
        && labels.iter().all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_digit()))
        && text.parse::<Ipv4Addr>().is_err()
}

fn check_labels(original: &str, ascii: &str) -> Result<(), TargetError> {
    let bad = |reason: &str| TargetError::BadHostName {
        host: original.to_string(),
        reason: reason.to_string(),
    };
    let name = ascii.strip_suffix('.').unwrap_or(ascii);
    if name.is_empty() {
        return Err(bad("it is empty"));
    }
    if name.len() > 253 {
        return Err(bad("it is longer than 253 characters"));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(bad("it has an empty label (two dots in a row, or a leading dot)"));
        }
        if label.len() > 63 {
            return Err(bad("a label is longer than 63 characters"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(bad("a label starts or ends with '-'"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(input: &str) -> Target {
        Target::parse(input, None).unwrap_or_else(|e| panic!("{input}: {e}"))
    }

    fn err(input: &str) -> String {
        match Target::parse(input, None) {
            Ok(target) => panic!("{input} parsed as {target:?}"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn host_and_port() {
        let target = ok("db.internal:5432");
        assert_eq!(
            target.host,
            Host::Name { ascii: "db.internal".into(), display: "db.internal".into() }
        );
        assert_eq!((target.port, target.port_source), (5432, PortSource::Explicit));
        assert_eq!(ok("  LocalHost:80 ").host.ascii(), "localhost");
        assert_eq!(ok("my_host.example.:22").host.ascii(), "my_host.example.");
    }

    #[test]
    fn ip_literals() {
        assert_eq!(ok("127.0.0.1:80").host, Host::Ip("127.0.0.1".parse().unwrap()));
        let v6 = ok("[::1]:8080");
        assert_eq!((v6.host, v6.port), (Host::Ip("::1".parse().unwrap()), 8080));
        let bare_v6 = Target::parse("2001:db8::1", Some(443)).unwrap();
        assert_eq!(bare_v6.host, Host::Ip("2001:db8::1".parse().unwrap()));
        assert_eq!(bare_v6.port_source, PortSource::Option);
        assert_eq!(Target::parse("[fe80::1]", Some(22)).unwrap().port, 22);
    }

    #[test]
    fn urls_use_scheme_default_ports() {
        for (input, port) in [
            ("http://example.com", 80),
            ("https://example.com/", 443),
            ("ssh://example.com", 22),
            ("ftp://example.com", 21),
            ("smtp://mail.example.com", 25),
            ("postgres://db/app", 5432),
            ("postgresql://db", 5432),
            ("mysql://db", 3306),
            ("redis://cache", 6379),
            ("mongodb://mongo", 27017),
            ("amqp://rabbit", 5672),
            ("ws://socket.example", 80),
            ("wss://socket.example", 443),
        ] {
            let target = ok(input);
            assert_eq!(
                (target.port, target.port_source),
                (port, PortSource::SchemeDefault),
                "{input}"
            );
        }
        let url = ok("HTTPS://Example.com:8443/health?full=1#top");
        assert_eq!(url.scheme.as_deref(), Some("https"));
        assert_eq!((url.host.ascii(), url.port), ("example.com".to_string(), 8443));
        assert_eq!(url.path.as_deref(), Some("/health?full=1"), "a fragment is never sent");
    }

    #[test]
    fn a_user_name_or_password_is_refused_without_being_quoted() {
        for (input, without) in [
            ("user:pw@db:5432", "db:5432"),
            ("admin@db:5432", "db:5432"),
            ("postgres://u:secret@db/app", "postgres://db/app"),
            (
                "HTTPS://user:secret@Example.com:8443/health?full=1",
                "HTTPS://Example.com:8443/health?full=1",
            ),
            ("ssh://git@example.com", "ssh://example.com"),
            ("a:b@c@db:80", "db:80"),
        ] {
            let error = Target::parse(input, None).unwrap_err();
            assert_eq!(error, TargetError::Userinfo { without: without.into() }, "{input}");
            let message = error.to_string();
            assert!(message.ends_with(&format!("write {without}")), "{message}");
            assert!(!message.contains("pw") && !message.contains("secret"), "{message}");
        }
        assert!(matches!(Host::parse("user:pw@db"), Err(TargetError::Userinfo { .. })));
        // An '@' in the path or query is not a user name.
        assert_eq!(ok("https://example.com/@me?by=a@b").path.as_deref(), Some("/@me?by=a@b"));
    }

    #[test]
    fn a_path_keeps_only_what_rfc_3986_allows_and_the_rest_is_percent_encoded() {
        let injected = ok("http://127.0.0.1:6379/\r\nCONFIG SET dir /tmp\r\nx");
        assert_eq!(injected.path.as_deref(), Some("/%0D%0ACONFIG%20SET%20dir%20/tmp%0D%0Ax"));
        assert_eq!(ok("http://h/caf\u{e9}?q=a b").path.as_deref(), Some("/caf%C3%A9?q=a%20b"));
        assert_eq!(ok("http://h/a%2Fb%zz%4").path.as_deref(), Some("/a%2Fb%25zz%254"));
        assert_eq!(
            ok("http://h/a\"<>\\^`{|}").path.as_deref(),
            Some("/a%22%3C%3E%5C%5E%60%7B%7C%7D")
        );
        let kept = "/p-._~!$&'()*+,;=:@/x?y=1&z=%20";
        assert_eq!(ok(&format!("http://h{kept}")).path.as_deref(), Some(kept));
        assert_eq!(ok("http://h#only-a-fragment").path, None);
    }

    #[test]
    fn international_names_become_punycode() {
        let target = ok("bücher.example:443");
        assert_eq!(
            target.host,
            Host::Name { ascii: "xn--bcher-kva.example".into(), display: "bücher.example".into() }
        );
        assert_eq!(ok("https://münchen.de").host.ascii(), "xn--mnchen-3ya.de");
    }

    #[test]
    fn bare_host_takes_the_port_option() {
        let target = Target::parse("db.internal", Some(5432)).unwrap();
        assert_eq!((target.port, target.port_source), (5432, PortSource::Option));
        assert_eq!(Target::parse("db:5432", Some(5432)).unwrap().port, 5432);
        assert!(Target::parse("db:5432", Some(5433)).unwrap_err().to_string().contains("5432"));
    }

    #[test]
    fn rejections_say_what_is_wrong_and_what_is_valid() {
        assert!(err("").contains("empty"));
        assert!(err("   ").contains("host:port"));
        assert!(err("db:0").contains("out of range"));
        assert!(err("db:65536").contains("1 to 65535"));
        assert!(err("db:99999999999").contains("out of range"));
        assert!(err("db:http").contains("not a number"));
        assert!(err("db:").contains("no port after ':'"));
        assert!(err("db.internal").contains("db.internal:PORT"));
        assert!(err("[::1:80").contains("unclosed '['"));
        assert!(err("[nothost]:80").contains("not an IPv6 address"));
        assert!(err("[::1]x").contains("after ']'"));
        assert!(err("2001:db8::1").contains("[2001:db8::1]:PORT"));
        assert!(err("foo://host").contains("no well-known port"));
        assert!(err("db internal:80").contains("' '"));
        assert!(err("db!:80").contains("'!'"));
        assert!(err("a..b:80").contains("empty label"));
        assert!(err("-a.example:80").contains("'-'"));
        assert!(err(&format!("{}.com:80", "a".repeat(64))).contains("63"));
        assert!(err("256.1.1.1:80").contains("0 to 255"));
        assert!(err("db:80/path").contains("no scheme"));
        assert!(err("https://").contains("no host"));
        assert!(err("1http://x").contains("scheme"));
        assert!(err("a:b:c").contains("':'"));
        assert!(Target::parse("db", Some(0)).unwrap_err().to_string().contains("out of range"));
    }

    #[test]
    fn unknown_scheme_with_a_port_is_fine() {
        let target = ok("gopher://old.example:70");
        assert_eq!((target.scheme.as_deref(), target.port), (Some("gopher"), 70));
    }

    #[test]
    fn a_host_alone_parses_for_scans_and_a_port_is_refused() {
        assert_eq!(Host::parse(" 127.0.0.1 ").unwrap(), Host::Ip("127.0.0.1".parse().unwrap()));
        assert_eq!(Host::parse("[::1]").unwrap(), Host::Ip("::1".parse().unwrap()));
        assert_eq!(Host::parse("::1").unwrap(), Host::Ip("::1".parse().unwrap()));
        assert_eq!(
            Host::parse("https://Bücher.example/x").unwrap().ascii(),
            "xn--bcher-kva.example"
        );
        assert_eq!(Host::parse(""), Err(TargetError::EmptyHost));
        let error = Host::parse("db:5432").unwrap_err();
        assert_eq!(error, TargetError::PortInHost { host: "db".into(), port: 5432 });
        assert!(error.to_string().contains("--ports 5432"), "{error}");
        assert!(matches!(Host::parse("[::1"), Err(TargetError::UnclosedBracket(_))));
        assert!(matches!(Host::parse("db host"), Err(TargetError::BadCharacter { .. })));
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(400))]

        #[test]
        fn any_text_parses_to_a_safe_target_or_says_what_is_wrong(
            text in proptest::prop_oneof![
                "\\PC{0,60}",
                "[a-z]{1,6}://[a-zA-Z0-9:@\\.\\[\\]]{0,20}[/?#][\\PC\r\n\t %]{0,40}",
                "[a-zA-Z0-9:@\\.\\[\\]_ -]{0,30}",
            ],
            port in proptest::option::of(0u16..),
        ) {
            match Target::parse(&text, port) {
                Ok(target) => {
                    let path = target.path.unwrap_or_default();
                    proptest::prop_assert!(
                        path.bytes().all(|b| is_path_or_query_char(b) || b == b'%'),
                        "unsafe path {path:?}"
                    );
                    proptest::prop_assert_eq!(request_target(&path), path.clone(), "encoding twice changes nothing");
                    proptest::prop_assert!(target.port > 0);
                }
                Err(error) => proptest::prop_assert!(!error.to_string().is_empty()),
            }
            if let Ok(host) = Host::parse(&text) {
                proptest::prop_assert!(!host.ascii().is_empty());
                proptest::prop_assert!(!host.ascii().contains(['@', '/', '\r', '\n', ' ']));
            }
        }

        #[test]
        fn a_target_with_a_user_name_never_quotes_it(
            user in "[a-z]{1,8}", password in "[A-Z]{8}", host in "[a-z]{1,8}", scheme in proptest::option::of("[a-z]{2,6}"),
        ) {
            let text = match scheme {
                Some(scheme) => format!("{scheme}://{user}:{password}@{host}:80/x"),
                None => format!("{user}:{password}@{host}:80"),
            };
            let error = Target::parse(&text, None).unwrap_err().to_string();
            proptest::prop_assert!(!error.contains(&password), "{error}");
            proptest::prop_assert!(error.contains("user name or password"), "{error}");
        }
    }
}
