//! Words and numbers for people: durations, states, causes and sources as the page shows them.

use whyrefused_shared::{
    Cause, ConnectState, DnsRcode, DnsStatus, EchoState, ErrorCode, IcmpError, Pattern, PortSource,
    ResolveMethod, Severity, TargetInfo,
};

/// A duration in microseconds as milliseconds with microsecond precision (`0.087 ms`).
pub fn millis(us: u64) -> String {
    format!("{}.{:03} ms", us / 1000, us % 1000)
}

/// A longer duration in microseconds: milliseconds under a second (`0.087 ms`), then seconds
/// with three decimals (`2.345 s`).
pub fn duration(us: u64) -> String {
    if us < 1_000_000 {
        millis(us)
    } else {
        format!("{}.{:03} s", us / 1_000_000, us / 1000 % 1000)
    }
}

/// A number with thousands separators (`65,535`).
pub fn digits(n: u64) -> String {
    let text = n.to_string();
    let mut out = String::with_capacity(text.len() + text.len() / 3);
    for (i, digit) in text.chars().enumerate() {
        if i > 0 && (text.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// The time a scan has left, from the agent's estimate in milliseconds (`under a second`,
/// `12 s`, `3 min 5 s`).
pub fn time_left(ms: u64) -> String {
    let seconds = ms.div_ceil(1000);
    match seconds {
        0 => "under a second".to_owned(),
        1..60 => format!("{seconds} s"),
        _ => format!("{} min {} s", seconds / 60, seconds % 60),
    }
}

/// An error code's wire name (`invalid_target`).
pub fn error_code(code: ErrorCode) -> String {
    serde_json::to_value(code)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{code:?}"))
}

/// The time before a reconnect: tenths under a second (`0.5 s`), whole seconds above (`4 s`).
pub fn retry_delay(ms: u32) -> String {
    if ms < 1000 {
        format!("{:.1} s", f64::from(ms) / 1000.0)
    } else {
        format!("{} s", ms.div_ceil(1000))
    }
}

/// A connect state in words (`host unreachable`).
pub fn state_label(state: ConnectState) -> &'static str {
    match state {
        ConnectState::Open => "open",
        ConnectState::Refused => "refused",
        ConnectState::Timeout => "timed out",
        ConnectState::HostUnreachable => "host unreachable",
        ConnectState::NetworkUnreachable => "network unreachable",
        ConnectState::PermissionDenied => "blocked locally",
        ConnectState::Reset => "reset",
        ConnectState::Error => "error",
    }
}

/// The colour family of a verdict: `ok`, `partial`, `bad` or `dns` (a CSS modifier), from the
/// cause's shared [`Severity`] (the CLI colours by the same), with the name failures tinted apart.
pub fn cause_tone(cause: Cause) -> &'static str {
    match cause.severity() {
        Severity::Good => "ok",
        // A cause is never neutral; were one to be, it is not a failure.
        Severity::Warning | Severity::Neutral => "partial",
        Severity::Bad if cause.is_dns() => "dns",
        Severity::Bad => "bad",
    }
}

/// The CSS class that colours a state, a scan group or a count by its shared [`Severity`]
/// (`severity--warning`).
pub fn severity_class(severity: Severity) -> String {
    format!("severity--{}", severity.as_str())
}

/// A short title for a verdict's cause (`Port closed`).
pub fn cause_title(cause: Cause) -> &'static str {
    match cause {
        Cause::Reachable => "Reachable",
        Cause::Partial => "Partly reachable",
        Cause::PortClosed => "Port closed",
        Cause::Filtered => "Filtered (no answer)",
        Cause::HostUnreachable => "Host unreachable",
        Cause::NetworkUnreachable => "Network unreachable",
        Cause::LocalFirewall => "Blocked by a local firewall",
        Cause::ConnectionReset => "Connection reset",
        Cause::ConnectError => "Connect error",
        Cause::LoopbackOnly => "Listening on loopback only",
        Cause::NoResponse => "No response",
        Cause::PacketLoss => "Packets lost on the way",
        Cause::FirewallReject => "Rejected by a firewall",
        Cause::ServerClosed => "Server closed the connection",
        Cause::TlsError => "TLS handshake failed",
        Cause::HttpError => "HTTP request failed",
        Cause::MtuBlackHole => "Large packets never arrive (path-MTU black hole)",
        Cause::ServerError => "The service answered with an error",
        Cause::AccessDenied => "Access denied by the service",
        Cause::UnexpectedStatus => "Unexpected HTTP status",
        Cause::DnsNxdomain => "Name does not exist",
        Cause::DnsNoAddress => "Name has no addresses",
        Cause::DnsError => "DNS lookup failed",
        Cause::PolicyDenied => "Denied by the agent's policy",
        Cause::WrongService => "Another service answers on this port",
        Cause::ServerStopped => "The server process is stopped",
        Cause::BacklogFull => "The server's accept queue is full",
        Cause::LocalPortsExhausted => "No local port left",
        Cause::ConntrackFull => "Connection-tracking table full",
        Cause::ProxyUnreachable => "The proxy cannot be reached",
        Cause::ProxyAuthRequired => "The proxy wants credentials",
        Cause::ProxyDenied => "The proxy refuses this destination",
        Cause::ProxyUpstreamFailed => "The proxy cannot reach the target",
        Cause::Unknown => "Unknown cause (a newer agent's: update this page)",
    }
}

/// How a host was resolved, in words.
pub fn method_label(method: ResolveMethod) -> &'static str {
    match method {
        ResolveMethod::Literal => "IP address, no lookup",
        ResolveMethod::System => "system resolver",
        ResolveMethod::Resolver => "the resolvers asked",
    }
}

/// A resolution's result, in words.
pub fn dns_status_label(status: DnsStatus) -> &'static str {
    match status {
        DnsStatus::Ok => "ok",
        DnsStatus::Nxdomain => "no such name (NXDOMAIN)",
        DnsStatus::NoAddress => "no A/AAAA records",
        DnsStatus::Error => "resolver error",
        DnsStatus::Timeout => "resolver timed out",
    }
}

/// Where the target's port came from, in words (`default for https`).
pub fn port_source_label(target: &TargetInfo) -> String {
    match target.port_source {
        PortSource::Explicit => "given in the target".to_owned(),
        PortSource::SchemeDefault => match &target.scheme {
            Some(scheme) => format!("default for {scheme}"),
            None => "default for the scheme".to_owned(),
        },
        PortSource::Option => "given separately".to_owned(),
    }
}

/// `1 address` or `3 addresses`.
pub fn address_count(count: usize) -> String {
    match count {
        1 => "1 address".to_owned(),
        _ => format!("{count} addresses"),
    }
}

/// An ICMP error in words: meaning, type and code, and who sent it
/// (`port unreachable (type 3, code 3) from 10.0.0.1`, with ` (this host)` when it was local).
pub fn icmp_label(icmp: &IcmpError) -> String {
    let sender = if icmp.from_local { " (this host)" } else { "" };
    format!(
        "{} (type {}, code {}) from {}{sender}",
        icmp.meaning, icmp.icmp_type, icmp.code, icmp.from
    )
}

/// What a retry pattern means (`the same in every round`).
pub fn pattern_meaning(pattern: Pattern) -> &'static str {
    match pattern {
        Pattern::Persistent => "the same in every round",
        Pattern::Intermittent => "the rounds disagreed, so it sometimes works",
    }
}

/// A pattern's short name, for CSS and tests (`persistent`).
pub fn pattern_name(pattern: Pattern) -> &'static str {
    match pattern {
        Pattern::Persistent => "persistent",
        Pattern::Intermittent => "intermittent",
    }
}

/// A nameserver's response code as DNS people write it (`NXDOMAIN`).
pub fn rcode_label(rcode: DnsRcode) -> &'static str {
    match rcode {
        DnsRcode::NoError => "NOERROR",
        DnsRcode::NxDomain => "NXDOMAIN",
        DnsRcode::ServFail => "SERVFAIL",
        DnsRcode::Refused => "REFUSED",
        DnsRcode::Timeout => "timed out",
        DnsRcode::Error => "error",
    }
}

/// An ICMP echo's outcome, in words.
pub fn echo_label(echo: EchoState) -> &'static str {
    match echo {
        EchoState::Replied => "replied",
        EchoState::NoReply => "no reply",
        EchoState::Unavailable => "not available",
    }
}

/// A number with the right noun (`1 port`, `3 ports`).
pub fn count(n: u64, one: &str, many: &str) -> String {
    if n == 1 { format!("1 {one}") } else { format!("{n} {many}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_keep_microseconds() {
        assert_eq!(millis(87), "0.087 ms");
        assert_eq!(millis(0), "0.000 ms");
        assert_eq!(millis(3_000_123), "3000.123 ms");
    }

    #[test]
    fn scan_figures_read_naturally() {
        assert_eq!(duration(87), "0.087 ms");
        assert_eq!(duration(2_345_678), "2.345 s");
        assert_eq!(digits(0), "0");
        assert_eq!(digits(999), "999");
        assert_eq!(digits(65_535), "65,535");
        assert_eq!(digits(1_234_567), "1,234,567");
        assert_eq!(time_left(0), "under a second");
        assert_eq!(time_left(1), "1 s");
        assert_eq!(time_left(59_000), "59 s");
        assert_eq!(time_left(185_000), "3 min 5 s");
        assert_eq!(error_code(ErrorCode::InvalidPorts), "invalid_ports");
    }

    #[test]
    fn retry_delays_read_naturally() {
        assert_eq!(retry_delay(500), "0.5 s");
        assert_eq!(retry_delay(1000), "1 s");
        assert_eq!(retry_delay(2500), "3 s");
        assert_eq!(retry_delay(10_000), "10 s");
    }

    #[test]
    fn an_icmp_error_names_its_sender_and_marks_this_host() {
        let mut icmp = IcmpError {
            icmp_type: 3,
            code: 3,
            meaning: "port unreachable".into(),
            from: "10.0.0.1".parse().unwrap(),
            from_local: false,
        };
        assert_eq!(icmp_label(&icmp), "port unreachable (type 3, code 3) from 10.0.0.1");
        icmp.from_local = true;
        assert!(icmp_label(&icmp).ends_with("from 10.0.0.1 (this host)"));
    }

    #[test]
    fn counts_take_the_right_noun() {
        assert_eq!(count(1, "port", "ports"), "1 port");
        assert_eq!(count(0, "port", "ports"), "0 ports");
        assert_eq!(count(12, "port", "ports"), "12 ports");
    }
}
