//! The DNS part of a verdict: a failed lookup named from the system resolver's answer and each
//! nameserver's own (which server said NXDOMAIN, which stayed silent), and `/etc/hosts` named
//! when it overrides DNS with addresses that fail.

use std::net::IpAddr;

use whyrefused_shared::{
    Cause, DnsDetail, DnsRcode, DnsStatus, Evidence, Finding, NameserverAnswer, Resolution, Verdict,
};

use super::{evidence, verdict};
use crate::target::Target;

/// The verdict when the system resolver gave no address.
pub(super) fn dns_verdict(target: &Target, dns: &Resolution, findings: &[Finding]) -> Verdict {
    let name = target.host.display();
    let detail = dns.detail.as_deref().unwrap_or("no details");
    let mut evidence_list = vec![evidence(
        "dns (system resolver)",
        format!("{:?}: {detail}", dns.status).to_lowercase(),
        Some(dns.elapsed_us),
    )];
    let servers = dns_detail(findings);
    if let Some(servers) = servers {
        evidence_list.extend(servers.answers.iter().map(answer_evidence));
    }
    let status = refined_status(dns.status, servers);
    let said = |rcode: DnsRcode| servers.map(|detail| who_said(detail, rcode)).unwrap_or_default();
    let (cause, summary, suggestions): (Cause, String, &[&str]) = match status {
        DnsStatus::Nxdomain => (
            Cause::DnsNxdomain,
            format!("The name {name} does not exist{}.", said(DnsRcode::NxDomain)),
            &[
                "Check the spelling of the host name and its domain.",
                "If you used a short name, check the search domains in /etc/resolv.conf.",
            ],
        ),
        DnsStatus::NoAddress => (
            Cause::DnsNoAddress,
            format!(
                "The name {name} exists but has no address (A or AAAA) records{}.",
                said(DnsRcode::NoError)
            ),
            &["Add an A or AAAA record for it, or use the name that carries the addresses."],
        ),
        DnsStatus::Timeout | DnsStatus::Error | DnsStatus::Ok => (
            Cause::DnsError,
            resolver_failure_summary(&name, status, detail, servers),
            &["Check that the nameservers in /etc/resolv.conf are reachable and running."],
        ),
    };
    verdict(cause, summary, suggestions.iter().map(|s| s.to_string()).collect(), evidence_list)
}

fn dns_detail(findings: &[Finding]) -> Option<&DnsDetail> {
    findings.iter().find_map(|finding| match finding {
        Finding::DnsDetail(detail) => Some(detail),
        _ => None,
    })
}

fn answer_evidence(answer: &NameserverAnswer) -> Evidence {
    let mut result = match answer.rcode {
        DnsRcode::NoError if answer.addresses.is_empty() => {
            "no records of that type (NODATA)".to_string()
        }
        DnsRcode::NoError => {
            let list: Vec<String> = answer.addresses.iter().map(IpAddr::to_string).collect();
            list.join(", ")
        }
        rcode => format!("{rcode:?}").to_uppercase(),
    };
    if !answer.cnames.is_empty() {
        result = format!("via {}: {result}", answer.cnames.join(" → "));
    }
    if let Some(detail) = answer.detail.as_deref().filter(|_| answer.rcode != DnsRcode::NoError) {
        result = format!("{result} ({detail})");
    }
    evidence(format!("dns {} {}", answer.server, answer.record), result, Some(answer.elapsed_us))
}

/// The system resolver's status, corrected by the servers' own answers: `getaddrinfo` reports
/// a name with no records of the asked types as not found, while the servers say it exists.
fn refined_status(system: DnsStatus, servers: Option<&DnsDetail>) -> DnsStatus {
    let Some(servers) = servers else { return system };
    let answered: Vec<&NameserverAnswer> =
        servers.answers.iter().filter(|answer| answer.rcode != DnsRcode::Timeout).collect();
    let exists_without_addresses = !answered.is_empty()
        && answered.iter().all(|a| a.rcode == DnsRcode::NoError && a.addresses.is_empty());
    match system {
        DnsStatus::Nxdomain if exists_without_addresses => DnsStatus::NoAddress,
        other => other,
    }
}

/// `: 10.0.0.53 answered NXDOMAIN` for the servers that gave `rcode`.
fn who_said(detail: &DnsDetail, rcode: DnsRcode) -> String {
    let servers = servers_with(detail, |answer| answer.rcode == rcode);
    match (servers.is_empty(), rcode) {
        (true, _) => String::new(),
        (false, DnsRcode::NxDomain) => format!(": {servers} answered NXDOMAIN"),
        (false, _) => format!(" ({servers} answered, with no address)"),
    }
}

fn resolver_failure_summary(
    name: &str,
    status: DnsStatus,
    detail: &str,
    servers: Option<&DnsDetail>,
) -> String {
    let silent = servers
        .map(|d| servers_with(d, |answer| answer.rcode == DnsRcode::Timeout))
        .unwrap_or_default();
    let failing = servers
        .map(|d| {
            servers_with(d, |a| {
                matches!(a.rcode, DnsRcode::ServFail | DnsRcode::Refused | DnsRcode::Error)
            })
        })
        .unwrap_or_default();
    match (silent.is_empty(), failing.is_empty(), status) {
        (false, _, _) => {
            format!("The resolver did not answer for {name}: nameserver {silent} is silent.")
        }
        (true, false, _) => {
            format!("The resolver failed to look up {name}: nameserver {failing} failed.")
        }
        (true, true, DnsStatus::Timeout) => {
            format!("The resolver did not answer for {name}: {detail}.")
        }
        (true, true, _) => format!("The resolver failed to look up {name}: {detail}."),
    }
}

/// The servers (deduplicated, in order) with an answer that passes `test`, joined.
fn servers_with(detail: &DnsDetail, test: impl Fn(&NameserverAnswer) -> bool) -> String {
    let mut servers: Vec<String> = Vec::new();
    for answer in detail.answers.iter().filter(|answer| test(answer)) {
        let server = answer.server.ip().to_string();
        if !servers.contains(&server) {
            servers.push(server);
        }
    }
    servers.join(", ")
}

/// With resolvers named by the request: what the system resolver said beside what each of
/// them said, and when they differ, that the program's answer depends on which it asks.
pub(super) fn note_resolvers(verdict: &mut Verdict, findings: &[Finding]) {
    let Some(detail) = dns_detail(findings) else { return };
    let Some(system) = &detail.system else { return };
    let list = |addresses: &[IpAddr]| {
        let mut sorted: Vec<String> = addresses.iter().map(IpAddr::to_string).collect();
        sorted.sort();
        sorted.dedup();
        sorted.join(", ")
    };
    let system_said = match system.status {
        whyrefused_shared::DnsStatus::Ok => list(&system.addresses),
        status => format!("{status:?}").to_lowercase(),
    };
    let mut servers: Vec<(std::net::SocketAddr, bool)> = Vec::new();
    for answer in &detail.answers {
        if !servers.contains(&(answer.server, answer.tls)) {
            servers.push((answer.server, answer.tls));
        }
    }
    let mut parts = vec![format!("system resolver: {system_said}")];
    let mut differing = Vec::new();
    for (server, tls) in servers {
        let answers: Vec<_> = detail.answers.iter().filter(|a| a.server == server).collect();
        let addresses: Vec<IpAddr> = answers.iter().flat_map(|a| a.addresses.clone()).collect();
        let said = match addresses.is_empty() {
            false => list(&addresses),
            true => answers
                .iter()
                .map(|a| format!("{} {:?}", a.record, a.rcode))
                .collect::<Vec<_>>()
                .join(", ")
                .to_lowercase(),
        };
        let name = if tls { format!("tls://{server}") } else { server.to_string() };
        let same = said == system_said;
        parts.push(format!("{name}: {said} ({})", if same { "same" } else { "differs" }));
        if !same {
            differing.push(format!("{name} gives {said}"));
        }
    }
    verdict.evidence.push(evidence("resolvers compared", parts.join("; "), None));
    if !differing.is_empty() {
        verdict.suggestions.push(format!(
            "The resolvers disagree about {}: the system resolver (getaddrinfo, what most \
             programs use) gives {system_said}, while {}. Find out which one the program asks.",
            detail.name,
            differing.join(", ")
        ));
    }
}

/// When the name is short of `ndots` dots, the system resolver asks it with the first search
/// domain first: says so, as a program that asks DNS itself without the search list (`dig`,
/// some resolver libraries) asks the name as written and may get another answer.
pub(super) fn note_search_domain(verdict: &mut Verdict, written: &str, findings: &[Finding]) {
    let Some(detail) = dns_detail(findings) else { return };
    let written = written.trim_end_matches('.');
    if detail.name.eq_ignore_ascii_case(written) {
        return;
    }
    verdict.evidence.push(evidence(
        "search domain",
        format!(
            "{written} has fewer dots than resolv.conf's ndots: the system resolver asks {} \
             first (then the other search domains, then {written} as written); a program that \
             asks DNS itself without the search list (dig, some resolver libraries) asks \
             {written}",
            detail.name
        ),
        None,
    ));
}

/// When `/etc/hosts` gave the failing addresses while DNS gives others, says so: a stale hosts
/// entry is a classic cause of connecting to the wrong machine.
pub(super) fn note_hosts_override(verdict: &mut Verdict, findings: &[Finding]) {
    let Some(detail) = dns_detail(findings).filter(|d| !d.hosts_file.is_empty()) else { return };
    let mut from_dns: Vec<IpAddr> = Vec::new();
    for address in detail.answers.iter().flat_map(|answer| &answer.addresses) {
        if !from_dns.contains(address) {
            from_dns.push(*address);
        }
    }
    if from_dns.is_empty() || detail.hosts_file.iter().all(|a| from_dns.contains(a)) {
        return;
    }
    let list = |addresses: &[IpAddr]| {
        addresses.iter().map(IpAddr::to_string).collect::<Vec<_>>().join(", ")
    };
    let (hosts, dns) = (list(&detail.hosts_file), list(&from_dns));
    verdict.evidence.push(evidence(
        "/etc/hosts",
        format!("gives {} {hosts}, overriding DNS, which gives {dns}", detail.name),
        None,
    ));
    verdict.suggestions.insert(
        0,
        format!(
            "/etc/hosts on this host maps {} to {hosts}, but DNS says {dns}: remove or fix the \
             stale /etc/hosts entry.",
            detail.name
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(rcode: DnsRcode, addresses: &[&str]) -> NameserverAnswer {
        NameserverAnswer {
            server: "10.0.0.53:53".parse().unwrap(),
            record: "A".into(),
            rcode,
            addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
            cnames: Vec::new(),
            detail: None,
            elapsed_us: 900,
            tls: false,
        }
    }

    fn detail(answers: Vec<NameserverAnswer>, hosts_file: &[&str]) -> DnsDetail {
        DnsDetail {
            name: "db.internal".into(),
            answers,
            hosts_file: hosts_file.iter().map(|a| a.parse().unwrap()).collect(),
            system: None,
        }
    }

    fn failed_lookup(status: DnsStatus) -> Resolution {
        Resolution {
            host: "db.internal".into(),
            method: whyrefused_shared::ResolveMethod::System,
            status,
            addresses: Vec::new(),
            detail: Some("Name or service not known".into()),
            elapsed_us: 1200,
        }
    }

    fn target() -> Target {
        Target::parse("db.internal:5432", None).unwrap()
    }

    #[test]
    fn the_server_that_said_nxdomain_is_named() {
        let servers = Finding::DnsDetail(detail(vec![answer(DnsRcode::NxDomain, &[])], &[]));
        let verdict = dns_verdict(&target(), &failed_lookup(DnsStatus::Nxdomain), &[servers]);
        assert_eq!(verdict.cause, Cause::DnsNxdomain);
        assert_eq!(
            verdict.summary,
            "The name db.internal does not exist: 10.0.0.53 answered NXDOMAIN."
        );
        assert!(verdict.evidence.iter().any(|e| e.probe == "dns 10.0.0.53:53 A"));
    }

    #[test]
    fn not_found_by_the_system_but_existing_on_the_servers_is_no_address() {
        let servers = Finding::DnsDetail(detail(vec![answer(DnsRcode::NoError, &[])], &[]));
        let verdict = dns_verdict(&target(), &failed_lookup(DnsStatus::Nxdomain), &[servers]);
        assert_eq!(verdict.cause, Cause::DnsNoAddress);
        assert!(verdict.evidence.iter().any(|e| e.result.contains("NODATA")));
    }

    #[test]
    fn a_silent_nameserver_is_named() {
        let servers = Finding::DnsDetail(detail(vec![answer(DnsRcode::Timeout, &[])], &[]));
        let verdict = dns_verdict(&target(), &failed_lookup(DnsStatus::Error), &[servers]);
        assert_eq!(verdict.cause, Cause::DnsError);
        assert!(verdict.summary.contains("nameserver 10.0.0.53 is silent"), "{}", verdict.summary);
    }

    #[test]
    fn a_stale_hosts_entry_is_named_when_dns_disagrees() {
        let mut failing = verdict(Cause::PortClosed, "closed".into(), vec![], vec![]);
        let servers = detail(vec![answer(DnsRcode::NoError, &["10.0.0.5"])], &["10.0.0.9"]);
        note_hosts_override(&mut failing, &[Finding::DnsDetail(servers)]);
        assert!(
            failing.suggestions[0].contains("maps db.internal to 10.0.0.9, but DNS says 10.0.0.5")
        );
        let mut agreeing = verdict(Cause::PortClosed, "closed".into(), vec![], vec![]);
        let same = detail(vec![answer(DnsRcode::NoError, &["10.0.0.9"])], &["10.0.0.9"]);
        note_hosts_override(&mut agreeing, &[Finding::DnsDetail(same)]);
        assert!(agreeing.suggestions.is_empty() && agreeing.evidence.is_empty());
    }
}
