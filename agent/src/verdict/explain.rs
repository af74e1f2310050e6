//! What a check means for the program whose error was pasted (`whyrefused explain`): the
//! address family it used against the one the service listens on (Node 17+ and others try
//! `localhost`'s `::1` first: nodejs/node#40702), and the `/etc/hosts` entry its lookup took.
//! Decided from the recognised words and the finished check; nothing is sent here.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use whyrefused_shared::explain::{Kind, Recognised};
use whyrefused_shared::{CheckReport, Evidence, Family, Finding, LocalListeners};

use crate::probe::listeners;

/// Adds to the check's verdict what follows from how the program connected: `hosts_file` are
/// the addresses `/etc/hosts` gives the name the program used (empty when none).
pub fn annotate(recognised: &Recognised, hosts_file: &[IpAddr], report: &mut CheckReport) {
    let family = family_mismatch(recognised, report);
    let hosts = hosts_file_note(recognised, hosts_file);
    let Some(verdict) = report.verdict.as_mut() else { return };
    if let Some(mismatch) = family {
        verdict.summary = mismatch.summary;
        verdict.evidence.push(mismatch.evidence);
        verdict.suggestions.insert(0, mismatch.suggestion);
    }
    verdict.evidence.extend(hosts);
}

/// The program connected to one family's loopback and the service listens on the other's only.
struct FamilyMismatch {
    summary: String,
    evidence: Evidence,
    suggestion: String,
}

fn family_mismatch(recognised: &Recognised, report: &CheckReport) -> Option<FamilyMismatch> {
    let tried: IpAddr = recognised.host.as_deref()?.parse().ok()?;
    if !tried.is_loopback() {
        return None;
    }
    let found = local_listeners(report)?;
    if found.listeners.iter().any(|l| listeners::accepts(&l.address, &tried)) {
        return None;
    }
    let other = other_loopback(tried);
    let bound: Vec<String> = found
        .listeners
        .iter()
        .filter(|l| listeners::accepts(&l.address, &other))
        .map(|l| l.address.to_string())
        .collect();
    if bound.is_empty() {
        return None;
    }
    let (said, port) = (recognised.kind.label(), found.port);
    let (tried_family, other_family) = (family_name(tried), family_name(other));
    let listens = bound.join(", ");
    let summary = format!(
        "{said} connected to {tried} ({tried_family}), but the service on port {port} listens on \
         {listens} only ({other_family}): nothing listens on {tried}, so it was refused."
    );
    let evidence = Evidence {
        probe: "the program".into(),
        result: format!("{said} tried {tried} port {port} ({tried_family})"),
        elapsed_us: None,
    };
    let suggestion = suggestion(recognised, tried, other, port);
    Some(FamilyMismatch { summary, evidence, suggestion })
}

/// What to change: the program's address, or where the service listens.
fn suggestion(recognised: &Recognised, tried: IpAddr, other: IpAddr, port: u16) -> String {
    let name = recognised.name.as_deref().unwrap_or("localhost");
    match (Family::of(&tried), recognised.kind) {
        (Family::Ipv6, Kind::Node) => format!(
            "Node.js 17 and later connect to {name}'s addresses in the resolver's order, ::1 \
             first (nodejs/node#40702): put 127.0.0.1 in the program's address, or start node \
             with --dns-result-order=ipv4first, or make the service listen on ::1 too (or on \
             :: for both families)."
        ),
        (Family::Ipv6, _) => format!(
            "The program's host ({name}) gave it ::1 first: put 127.0.0.1 in its address \
             (127.0.0.1:{port}), or make the service listen on ::1 too (or on :: for both \
             families)."
        ),
        (Family::Ipv4, _) => format!(
            "Put {} in the program's address ([{other}]:{port}), or make the service listen on \
             {tried} too (or on 0.0.0.0 beside ::1, or on :: without IPV6_V6ONLY).",
            other
        ),
    }
}

/// The loopback address of the other family.
fn other_loopback(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        IpAddr::V6(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
    }
}

fn family_name(ip: IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(_) => "IPv4",
        IpAddr::V6(_) => "IPv6",
    }
}

fn local_listeners(report: &CheckReport) -> Option<&LocalListeners> {
    report.findings.iter().find_map(|finding| match finding {
        Finding::LocalListeners(found) => Some(found),
        _ => None,
    })
}

/// When the name the program looked up is in `/etc/hosts`: its lookup through the system
/// resolver took those addresses, not DNS's.
fn hosts_file_note(recognised: &Recognised, hosts_file: &[IpAddr]) -> Option<Evidence> {
    let name = looked_up_name(recognised)?;
    if hosts_file.is_empty() {
        return None;
    }
    let list: Vec<String> = hosts_file.iter().map(IpAddr::to_string).collect();
    Some(Evidence {
        probe: "/etc/hosts".into(),
        result: format!(
            "gives {name} {}: a program using the system resolver gets these, whatever DNS says",
            list.join(", ")
        ),
        elapsed_us: None,
    })
}

/// The name the program looked up, when the words give one.
pub fn looked_up_name(recognised: &Recognised) -> Option<&str> {
    if let Some(name) = recognised.name.as_deref() {
        return Some(name);
    }
    let host = recognised.host.as_deref()?;
    host.parse::<IpAddr>().is_err().then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use whyrefused_shared::explain::recognise;
    use whyrefused_shared::{Cause, Listener, Verdict};

    fn report_with_listeners(port: u16, bound: &[&str]) -> CheckReport {
        let listeners = bound
            .iter()
            .map(|address| Listener {
                address: address.parse().unwrap(),
                pid: Some(42),
                process: Some("node".into()),
                command: None,
                queue: None,
                owner_state: None,
            })
            .collect();
        CheckReport {
            findings: vec![Finding::LocalListeners(LocalListeners {
                owners_hidden: None,
                port,
                listeners,
                listen_overflows: None,
            })],
            verdict: Some(Verdict {
                cause: Cause::LoopbackOnly,
                summary: "listens elsewhere".into(),
                suggestions: vec![],
                evidence: vec![],
                pattern: None,
            }),
            ..CheckReport::default()
        }
    }

    fn annotated(error: &str, bound: &[&str]) -> Verdict {
        let recognised = recognise(error).recognised.remove(0);
        let mut report = report_with_listeners(recognised.port.unwrap(), bound);
        annotate(&recognised, &[], &mut report);
        report.verdict.unwrap()
    }

    #[test]
    fn node_on_ipv6_loopback_against_an_ipv4_only_service_says_exactly_that() {
        let verdict = annotated("Error: connect ECONNREFUSED ::1:3000", &["127.0.0.1:3000"]);
        assert_eq!(
            verdict.summary,
            "Node.js connected to ::1 (IPv6), but the service on port 3000 listens on \
             127.0.0.1:3000 only (IPv4): nothing listens on ::1, so it was refused."
        );
        assert!(verdict.suggestions[0].contains("nodejs/node#40702"), "{:?}", verdict.suggestions);
        assert!(verdict.suggestions[0].contains("--dns-result-order=ipv4first"));
    }

    #[test]
    fn the_reverse_names_the_ipv6_listener() {
        let verdict =
            annotated("dial tcp 127.0.0.1:8080: connect: connection refused", &["[::1]:8080"]);
        assert!(
            verdict.summary.starts_with("Go connected to 127.0.0.1 (IPv4)"),
            "{}",
            verdict.summary
        );
        assert!(verdict.summary.contains("listens on [::1]:8080 only (IPv6)"));
        assert!(verdict.suggestions[0].starts_with("Put ::1 in the program's address"));
    }

    #[test]
    fn libpq_names_the_host_the_program_used() {
        let error =
            "connection to server at \"localhost\" (::1), port 5432 failed: Connection refused";
        let verdict = annotated(error, &["127.0.0.1:5432"]);
        assert!(verdict.summary.starts_with("libpq (PostgreSQL) connected to ::1 (IPv6)"));
        assert!(verdict.suggestions[0].contains("host (localhost) gave it ::1 first"));
    }

    #[test]
    fn no_mismatch_when_the_service_takes_the_family_or_listens_on_neither_loopback() {
        let error = "Error: connect ECONNREFUSED ::1:3000";
        for bound in [&["[::]:3000"][..], &["10.0.0.5:3000"][..], &[][..]] {
            let verdict = annotated(error, bound);
            assert_eq!(verdict.summary, "listens elsewhere", "{bound:?}");
            assert!(verdict.suggestions.is_empty());
        }
    }

    #[test]
    fn a_name_from_etc_hosts_is_named() {
        let recognised =
            recognise("curl: (7) Failed to connect to localhost port 8080 after 0 ms").recognised;
        let mut report = report_with_listeners(8080, &[]);
        let hosts = ["127.0.0.1".parse().unwrap()];
        annotate(&recognised[0], &hosts, &mut report);
        let evidence = report.verdict.unwrap().evidence;
        assert_eq!(evidence[0].probe, "/etc/hosts");
        assert!(evidence[0].result.starts_with("gives localhost 127.0.0.1: a program"));
        let address = recognise("connect ECONNREFUSED 127.0.0.1:8080").recognised;
        assert_eq!(looked_up_name(&address[0]), None, "an address has no hosts entry");
    }
}
