//! The first verdict: from a resolution and the connect attempts, name the cause in plain words.
//!
//! The rules, in order: a failed resolution names the DNS problem; every address open is
//! `reachable`; some open and some not is `partial`; none open names the most telling failure
//! (a reset proves the host is up, so `port_closed` outranks the rest, and a timeout, which
//! proves nothing, comes last).

use whyrefused_shared::{Attempt, Cause, ConnectState, DnsStatus, Resolution, Verdict};

use crate::target::Target;

/// Concludes a check whose resolution failed or whose attempts have all finished.
pub fn conclude(
    target: &Target,
    dns: &Resolution,
    attempts: &[Attempt],
    timeout_ms: u32,
) -> Verdict {
    if dns.status != DnsStatus::Ok {
        return dns_verdict(target, dns);
    }
    let (open, failed): (Vec<&Attempt>, Vec<&Attempt>) =
        attempts.iter().partition(|attempt| attempt.state == ConnectState::Open);
    match (open.is_empty(), failed.is_empty()) {
        (false, true) => reachable(target, &open),
        (false, false) => partial(target, &open, &failed),
        (true, _) => failure(target, &failed, timeout_ms),
    }
}

fn endpoint(target: &Target) -> String {
    format!("{}:{}", target.host.display(), target.port)
}

fn addresses(attempts: &[&Attempt]) -> String {
    let list: Vec<String> = attempts.iter().map(|a| a.address.to_string()).collect();
    list.join(", ")
}

fn verdict(cause: Cause, summary: String, suggestions: &[&str]) -> Verdict {
    Verdict {
        cause,
        summary,
        suggestions: suggestions.iter().map(|s| s.to_string()).collect(),
        evidence: Vec::new(),
        pattern: None,
    }
}

fn dns_verdict(target: &Target, dns: &Resolution) -> Verdict {
    let name = target.host.display();
    let detail = dns.detail.as_deref().unwrap_or("no details");
    match dns.status {
        DnsStatus::Nxdomain => verdict(
            Cause::DnsNxdomain,
            format!("The name {name} does not exist: the resolver found no such name ({detail})."),
            &[
                "Check the spelling of the host name and its domain.",
                "If you used a short name, check the search domains in /etc/resolv.conf.",
            ],
        ),
        DnsStatus::NoAddress => verdict(
            Cause::DnsNoAddress,
            format!("The name {name} exists but has no address (A or AAAA) records."),
            &["Add an A or AAAA record for it, or use the name that carries the addresses."],
        ),
        DnsStatus::Timeout => verdict(
            Cause::DnsError,
            format!("The resolver did not answer for {name}: {detail}."),
            &["Check that the nameservers in /etc/resolv.conf are reachable and running."],
        ),
        DnsStatus::Error | DnsStatus::Ok => verdict(
            Cause::DnsError,
            format!("The resolver failed to look up {name}: {detail}."),
            &["Check the nameservers in /etc/resolv.conf, and try again in a moment."],
        ),
    }
}

fn reachable(target: &Target, open: &[&Attempt]) -> Verdict {
    let summary = match open {
        [only] => format!("{} accepts connections (on {}).", endpoint(target), only.address),
        _ => format!("{} accepts connections on all {} addresses.", endpoint(target), open.len()),
    };
    verdict(Cause::Reachable, summary, &[])
}

fn partial(target: &Target, open: &[&Attempt], failed: &[&Attempt]) -> Verdict {
    let failures: Vec<String> =
        failed.iter().map(|a| format!("{} ({})", a.address, a.state.as_str())).collect();
    verdict(
        Cause::Partial,
        format!(
            "{} opens on {} but fails on {}.",
            endpoint(target),
            addresses(open),
            failures.join(", ")
        ),
        &["Programs that try a failing address first will stall or fail: fix that address, \
             or remove its DNS record."],
    )
}

/// The states that say the most about a failure, most telling first.
const PRECEDENCE: [ConnectState; 7] = [
    ConnectState::Refused,
    ConnectState::Reset,
    ConnectState::PermissionDenied,
    ConnectState::HostUnreachable,
    ConnectState::NetworkUnreachable,
    ConnectState::Timeout,
    ConnectState::Error,
];

fn failure(target: &Target, failed: &[&Attempt], timeout_ms: u32) -> Verdict {
    let Some(state) = PRECEDENCE.into_iter().find(|s| failed.iter().any(|a| a.state == *s)) else {
        return verdict(
            Cause::ConnectError,
            format!("No connection to {} was attempted.", endpoint(target)),
            &[],
        );
    };
    let with_state: Vec<&Attempt> = failed.iter().copied().filter(|a| a.state == state).collect();
    let place = match (with_state.len(), failed.len()) {
        (n, total) if n == total => addresses(&with_state),
        (n, total) => format!("{} ({n} of {total} addresses)", addresses(&with_state)),
    };
    // "127.0.0.1 (127.0.0.1)" says nothing twice: name the host alone when it is the address.
    let host = target.host.display();
    let at = if place == host { host.clone() } else { format!("{host} ({place})") };
    let port = target.port;
    match state {
        ConnectState::Refused => verdict(
            Cause::PortClosed,
            format!(
                "Nothing listens on port {port} of {at}: the host is up and answered with a reset."
            ),
            &[
                "Check that the service is running and listening on this port.",
                "Check the port number: the service may listen on another one.",
            ],
        ),
        ConnectState::Reset => verdict(
            Cause::ConnectionReset,
            format!("The connection to port {port} of {at} was reset during the handshake."),
            &["A firewall or load balancer in front of the service may be resetting connections."],
        ),
        ConnectState::PermissionDenied => verdict(
            Cause::LocalFirewall,
            format!(
                "This host's own firewall refused to send the connection to port {port} of {at}."
            ),
            &[
                "Check the OUTPUT rules of this host's firewall (iptables -L OUTPUT, nft list ruleset).",
            ],
        ),
        ConnectState::HostUnreachable => verdict(
            Cause::HostUnreachable,
            format!(
                "{at} could not be reached: no answer from the host on its network, or a router \
                 reported it unreachable."
            ),
            &["Check that the host is up and its address is right."],
        ),
        ConnectState::NetworkUnreachable => verdict(
            Cause::NetworkUnreachable,
            format!("There is no route from this host to the network of {place}."),
            &["Check this host's routes (ip route) and its default gateway."],
        ),
        ConnectState::Timeout => verdict(
            Cause::Filtered,
            format!(
                "No answer from port {port} of {at} within {timeout_ms} ms: a firewall is dropping \
                 the connection, or the host is down."
            ),
            &[
                "Check the firewalls between here and the host (security groups, iptables, nftables).",
                "Check that the host is up.",
            ],
        ),
        ConnectState::Error | ConnectState::Open => {
            let errno = with_state
                .iter()
                .find_map(|a| a.errno.as_ref().map(|e| e.name.clone()))
                .unwrap_or_else(|| "an unknown error".into());
            verdict(
                Cause::ConnectError,
                format!("Connecting to port {port} of {at} failed with {errno}."),
                &[],
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use whyrefused_shared::{Errno, Family, ResolveMethod, Timestamp};

    fn target() -> Target {
        Target::parse("db.internal:5432", None).unwrap()
    }

    fn dns(status: DnsStatus, addresses: &[&str]) -> Resolution {
        Resolution {
            host: "db.internal".into(),
            method: ResolveMethod::System,
            status,
            addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
            detail: (status != DnsStatus::Ok).then(|| "Name or service not known".into()),
            elapsed_us: 100,
        }
    }

    fn attempt(address: &str, state: ConnectState) -> Attempt {
        let address = address.parse().unwrap();
        Attempt {
            address,
            port: 5432,
            family: Family::of(&address),
            state,
            errno: (state == ConnectState::Error)
                .then(|| Errno { code: 99, name: "EADDRNOTAVAIL".into() }),
            icmp: None,
            elapsed_us: 10,
            elapsed_ms: 0.01,
            started_at: Timestamp(String::new()),
        }
    }

    fn cause(states: &[(&str, ConnectState)]) -> Verdict {
        let addresses: Vec<&str> = states.iter().map(|(a, _)| *a).collect();
        let attempts: Vec<Attempt> = states.iter().map(|(a, s)| attempt(a, *s)).collect();
        conclude(&target(), &dns(DnsStatus::Ok, &addresses), &attempts, 3000)
    }

    #[test]
    fn dns_failures_name_the_dns_problem() {
        for (status, expected) in [
            (DnsStatus::Nxdomain, Cause::DnsNxdomain),
            (DnsStatus::NoAddress, Cause::DnsNoAddress),
            (DnsStatus::Error, Cause::DnsError),
            (DnsStatus::Timeout, Cause::DnsError),
        ] {
            let verdict = conclude(&target(), &dns(status, &[]), &[], 3000);
            assert_eq!(verdict.cause, expected);
            assert!(verdict.summary.contains("db.internal"), "{}", verdict.summary);
        }
    }

    #[test]
    fn every_address_open_is_reachable() {
        let verdict =
            cause(&[("10.0.0.1", ConnectState::Open), ("2001:db8::1", ConnectState::Open)]);
        assert_eq!(verdict.cause, Cause::Reachable);
        assert!(verdict.summary.contains("all 2 addresses"));
    }

    #[test]
    fn some_open_is_partial_and_names_the_failing_address() {
        let verdict =
            cause(&[("10.0.0.1", ConnectState::Open), ("2001:db8::1", ConnectState::Timeout)]);
        assert_eq!(verdict.cause, Cause::Partial);
        assert!(verdict.summary.contains("2001:db8::1 (timeout)"), "{}", verdict.summary);
    }

    #[test]
    fn each_single_failure_maps_to_its_cause() {
        for (state, expected) in [
            (ConnectState::Refused, Cause::PortClosed),
            (ConnectState::Timeout, Cause::Filtered),
            (ConnectState::HostUnreachable, Cause::HostUnreachable),
            (ConnectState::NetworkUnreachable, Cause::NetworkUnreachable),
            (ConnectState::PermissionDenied, Cause::LocalFirewall),
            (ConnectState::Reset, Cause::ConnectionReset),
            (ConnectState::Error, Cause::ConnectError),
        ] {
            assert_eq!(cause(&[("10.0.0.1", state)]).cause, expected, "{state:?}");
        }
        assert!(cause(&[("10.0.0.1", ConnectState::Error)]).summary.contains("EADDRNOTAVAIL"));
        assert!(cause(&[("10.0.0.1", ConnectState::Timeout)]).summary.contains("3000 ms"));
    }

    #[test]
    fn an_ip_target_is_not_named_twice() {
        let target = Target::parse("10.0.0.1:5432", None).unwrap();
        let dns = dns(DnsStatus::Ok, &["10.0.0.1"]);
        let verdict = conclude(&target, &dns, &[attempt("10.0.0.1", ConnectState::Refused)], 3000);
        assert_eq!(
            verdict.summary,
            "Nothing listens on port 5432 of 10.0.0.1: the host is up and answered with a reset."
        );
    }

    #[test]
    fn a_reset_outranks_a_timeout_because_it_proves_the_host_is_up() {
        let verdict =
            cause(&[("2001:db8::1", ConnectState::Timeout), ("10.0.0.1", ConnectState::Refused)]);
        assert_eq!(verdict.cause, Cause::PortClosed);
        assert!(verdict.summary.contains("1 of 2 addresses"), "{}", verdict.summary);
    }
}
