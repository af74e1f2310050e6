//! The cross-vantage verdict: the reports of one request from several vantage points in, one
//! [`CrossVerdict`] out (the same everywhere, a firewall between two places, a service bound to
//! loopback, split-horizon DNS). Pure, so it is tested on made-up reports.

use std::collections::BTreeSet;
use std::net::IpAddr;

use whyrefused_shared::{
    Cause, CheckReport, CrossCause, CrossVerdict, DnsStatus, FirewallMatch, FirewallRule,
    LOCAL_VANTAGE, Outcome, Resolution, ResolveMethod, RouterRule, RuleAction, ScanReport,
    VantageResult,
};

/// One vantage point's finished (or abandoned) check, for [`compare_checks`].
#[derive(Debug, Clone, Copy)]
pub struct VantageCheck<'a> {
    /// The vantage point's name.
    pub name: &'a str,
    /// Its own interface addresses: a vantage point holding the target's address is the
    /// target host itself.
    pub addresses: &'a [IpAddr],
    /// What it saw.
    pub report: &'a CheckReport,
}

/// `host:port` as a person writes it: an IPv6 address in brackets (`[fd00::2]:8080`).
fn host_and_port(host: &str, port: u16) -> String {
    match host.parse::<std::net::Ipv6Addr>() {
        Ok(ip) => format!("[{ip}]:{port}"),
        Err(_) => format!("{host}:{port}"),
    }
}

/// Whether a check's TCP connect got through (whatever followed it).
fn connected(cause: Cause) -> bool {
    matches!(
        cause,
        Cause::Reachable
            | Cause::Partial
            | Cause::ServerClosed
            | Cause::TlsError
            | Cause::HttpError
            | Cause::ServerError
            | Cause::AccessDenied
            | Cause::UnexpectedStatus
    )
}

/// Compares one check run from several vantage points.
pub fn compare_checks(checks: &[VantageCheck<'_>]) -> CrossVerdict {
    let vantages: Vec<VantageResult> = checks
        .iter()
        .map(|check| VantageResult {
            name: check.name.to_string(),
            outcome: check.report.outcome,
            cause: check.report.verdict.as_ref().map(|verdict| verdict.cause),
            resolved: check
                .report
                .dns
                .as_ref()
                .map(|dns| dns.addresses.clone())
                .unwrap_or_default(),
            open_ports: Vec::new(),
        })
        .collect();
    let missing = unfinished(&vantages);
    let finished: Vec<(&VantageCheck<'_>, Cause)> = checks
        .iter()
        .zip(&vantages)
        .filter(|(_, result)| result.outcome == Some(Outcome::Completed))
        .filter_map(|(check, result)| Some((check, result.cause?)))
        .collect();
    let paths = where_paths_go(&finished);
    let host_view = target_host_view(&finished);
    let verdict = |cause, summary: String, mut details: Vec<String>| {
        details.extend(missing.iter().cloned());
        let summary = match (&paths, cause) {
            (Some(paths), CrossCause::FirewallBetween | CrossCause::Differs | CrossCause::Same) => {
                details.extend(paths.details.iter().cloned());
                format!("{summary} {}", paths.sentence)
            }
            _ => summary,
        };
        let summary = match &host_view {
            Some(view) => {
                details.push(view.clone());
                format!("{summary} {view}")
            }
            None => summary,
        };
        CrossVerdict { cause, summary, details, vantages: vantages.clone(), router_rule: None }
    };
    if finished.len() < 2 {
        let summary = match finished.first() {
            Some((check, cause)) => format!(
                "Only {} finished ({}): there is nothing to compare it with.",
                check.name,
                cause.as_str()
            ),
            None => "No vantage point finished: there is nothing to compare.".to_string(),
        };
        return verdict(CrossCause::Inconclusive, summary, Vec::new());
    }
    let resolutions: Vec<(&str, Option<&Resolution>)> =
        finished.iter().map(|(check, _)| (check.name, check.report.dns.as_ref())).collect();
    if let Some((summary, details)) = split_horizon(&resolutions) {
        return verdict(CrossCause::SplitHorizonDns, summary, details);
    }
    let target = checks
        .iter()
        .find_map(|check| check.report.target.as_ref())
        .map_or_else(|| "the target".to_string(), |t| host_and_port(&t.display_host, t.port));
    let open: Vec<&str> =
        finished.iter().filter(|(_, cause)| connected(*cause)).map(|(c, _)| c.name).collect();
    let failed: Vec<(&str, Cause)> = finished
        .iter()
        .filter(|(_, cause)| !connected(*cause))
        .map(|(c, k)| (c.name, *k))
        .collect();
    let each = |list: &[(&str, Cause)]| -> Vec<String> {
        list.iter().map(|(name, cause)| format!("{name}: {}", cause.as_str())).collect()
    };
    let loopback = failed.iter().find(|(_, cause)| *cause == Cause::LoopbackOnly);
    if let (true, Some((host, _))) = (open.is_empty(), loopback) {
        let others: Vec<&str> =
            failed.iter().filter(|(name, _)| name != host).map(|(name, _)| *name).collect();
        let summary = format!(
            "{target} is bound to loopback: on {host} (the target host itself) something \
             listens on the port, but only on a loopback address, so {} cannot reach it. \
             Make the service listen on 0.0.0.0 or the host's own address.",
            list(&others)
        );
        return verdict(CrossCause::BoundToLoopback, summary, each(&failed));
    }
    if !open.is_empty() && !failed.is_empty() {
        let how: BTreeSet<&str> = failed.iter().map(|(_, cause)| failure_word(*cause)).collect();
        let failing: Vec<&str> = failed.iter().map(|(name, _)| *name).collect();
        let from_target_only = open
            .iter()
            .all(|name| checks.iter().any(|check| check.name == *name && holds_target(check)));
        let place = if from_target_only {
            "the target host's own firewall (only the host itself gets in)"
        } else {
            "a firewall or security group between them"
        };
        let summary = format!(
            "{target} is open from {} but {} from {}: {place} blocks {}.",
            list(&open),
            how.into_iter().collect::<Vec<_>>().join(" or "),
            list(&failing),
            list(&failing),
        );
        let mut details: Vec<String> = open.iter().map(|name| format!("{name}: open")).collect();
        details.extend(each(&failed));
        return verdict(CrossCause::FirewallBetween, summary, details);
    }
    let first = finished[0].1;
    if finished.iter().all(|(_, cause)| *cause == first) {
        let names: Vec<&str> = finished.iter().map(|(check, _)| check.name).collect();
        let summary = format!(
            "Every vantage point ({}) sees the same: {}. Where you probe from makes no \
             difference; each one's verdict explains it.",
            names.join(", "),
            first.as_str()
        );
        return verdict(CrossCause::Same, summary, Vec::new());
    }
    let summary = format!(
        "{target} fails from every vantage point, but not in the same way: compare their \
         verdicts."
    );
    verdict(CrossCause::Differs, summary, each(&failed))
}

/// What the target host itself proved, when one of the vantage points is the target host and its
/// check named the rule, the stopped process, the full queue or the full table: "app1 is
/// dropped by db1's `inet filter input` rule 3: `tcp dport 81 counter drop`."
fn target_host_view(finished: &[(&VantageCheck<'_>, Cause)]) -> Option<String> {
    let (host, cause) = finished.iter().find(|(check, _)| holds_target(check))?;
    let others: Vec<&str> = finished
        .iter()
        .filter(|(check, cause)| check.name != host.name && !connected(*cause))
        .map(|(check, _)| check.name)
        .collect();
    let rule = host.report.findings.iter().find_map(|finding| match finding {
        whyrefused_shared::Finding::FirewallRule(found) => found.matched.first(),
        _ => None,
    });
    if let Some(rule) = rule {
        let who = match others.as_slice() {
            [] => "Connections are".to_string(),
            [one] => format!("{one} is"),
            many => format!("{} are", list(many)),
        };
        return Some(format!("{who} {} by {}'s {}.", stopped(rule), host.name, rule_place(rule)));
    }
    let proven = matches!(cause, Cause::ServerStopped | Cause::BacklogFull | Cause::ConntrackFull);
    let summary = host.report.verdict.as_ref().map(|verdict| verdict.summary.as_str())?;
    proven.then(|| format!("On {} (the target host itself): {summary}", host.name))
}

/// What a rule did to a SYN: `dropped` or `rejected`.
fn stopped(rule: &FirewallRule) -> &'static str {
    match rule.action {
        RuleAction::Reject => "rejected",
        _ => "dropped",
    }
}

/// A rule as its tool's user finds it: "`inet filter input` rule 3: `tcp dport 81 drop`".
fn rule_place(rule: &FirewallRule) -> String {
    let family = if rule.tool == "nft" { &rule.family } else { &rule.tool };
    let chain = format!("`{family} {} {}`", rule.table, rule.chain);
    match rule.policy {
        true => format!("{chain} policy: `{}`", rule.text),
        false => format!("{chain} rule {}: `{}`", rule.position, rule.text),
    }
}

/// Adds what a router on the way (`router`, a vantage point that forwards between the others
/// and the target) found: the forwarding rule that counted the failing vantage points' SYNs.
/// "a2 is dropped by the hub's `iptables filter FORWARD` rule 1: `…` (likely: it counted 3
/// packets while the vantage points probed)."
pub fn add_router_rule(verdict: &mut CrossVerdict, router: &str, found: FirewallMatch) {
    let Some(rule) = found.matched.first() else { return };
    let failing: Vec<&str> = verdict
        .vantages
        .iter()
        .filter(|v| v.outcome == Some(Outcome::Completed) && !v.cause.is_some_and(connected))
        .map(|v| v.name.as_str())
        .collect();
    let who = match failing.as_slice() {
        [] => "SYNs to the target are".to_string(),
        [one] => format!("{one} is"),
        many => format!("{} are", list(many)),
    };
    let counted = match rule.packets {
        Some(1) => "1 packet".to_string(),
        Some(packets) => format!("{packets} packets"),
        None => "packets".to_string(),
    };
    let called = match router {
        LOCAL_VANTAGE => "the hub".to_string(),
        name => format!("the router {name}"),
    };
    let sentence = format!(
        "{who} {} by {called}'s {} (likely: it counted {counted} to {} while the \
         vantage points probed).",
        stopped(rule),
        rule_place(rule),
        found.address,
    );
    verdict.details.push(sentence.clone());
    verdict.summary = format!("{} {sentence}", verdict.summary);
    verdict.router_rule = Some(RouterRule { router: router.to_string(), found });
}

/// Where each vantage point's SYNs go, from the paths they traced.
struct PathsCompared {
    /// One sentence: "From app1 the SYNs die after 10.0.1.1 (hop 1); from app2 they reach the
    /// target."
    sentence: String,
    /// A detail line per vantage point.
    details: Vec<String>,
}

/// Says where the paths differ, when at least one finished vantage point traced one; a vantage
/// point that connected without a trace "connects".
fn where_paths_go(finished: &[(&VantageCheck<'_>, Cause)]) -> Option<PathsCompared> {
    if !finished.iter().any(|(check, _)| check.report.path.is_some()) {
        return None;
    }
    let clauses: Vec<(String, String)> = finished
        .iter()
        .map(|(check, cause)| (check.name.to_string(), path_clause(check.report, *cause)))
        .collect();
    let sentence = clauses
        .iter()
        .enumerate()
        .map(|(i, (name, clause))| match i {
            0 => format!("From {name} {clause}"),
            _ => format!("from {name} {clause}"),
        })
        .collect::<Vec<_>>()
        .join("; ");
    let details = clauses.iter().map(|(name, clause)| format!("{name} path: {clause}")).collect();
    Some(PathsCompared { sentence: format!("{sentence}."), details })
}

/// What one vantage point's path says, as a clause: "the SYNs die after 10.0.1.1 (hop 1)".
fn path_clause(report: &CheckReport, cause: Cause) -> String {
    let Some(path) = &report.path else {
        return match connected(cause) {
            true => "it connects".to_string(),
            false => format!("it fails ({}) without a traced path", cause.as_str()),
        };
    };
    if path.reached {
        return format!("the SYNs reach the target in {} hops", path.hops.len());
    }
    if let Some(hop) = path.unreachable_hop() {
        let from = hop.address.map_or("this host".to_string(), |a| a.to_string());
        return format!("the SYNs are turned back at {from} (hop {})", hop.ttl);
    }
    match &path.last_answered {
        Some(last) => format!("the SYNs die after {} (hop {})", last.address, last.ttl),
        None => "no hop answers the SYNs".to_string(),
    }
}

/// Compares one scan run from several vantage points, by the ports found open.
pub fn compare_scans(scans: &[(&str, &ScanReport)]) -> CrossVerdict {
    let vantages: Vec<VantageResult> = scans
        .iter()
        .map(|(name, report)| {
            let open: BTreeSet<u16> = report
                .results
                .iter()
                .filter(|result| result.state == whyrefused_shared::ConnectState::Open)
                .map(|result| result.port)
                .collect();
            VantageResult {
                name: name.to_string(),
                outcome: report.outcome,
                cause: None,
                resolved: report.dns.as_ref().map(|dns| dns.addresses.clone()).unwrap_or_default(),
                open_ports: open.into_iter().collect(),
            }
        })
        .collect();
    let missing = unfinished(&vantages);
    let finished: Vec<(&(&str, &ScanReport), &VantageResult)> = scans
        .iter()
        .zip(&vantages)
        .filter(|(_, result)| result.outcome == Some(Outcome::Completed))
        .collect();
    let verdict = |cause, summary: String, mut details: Vec<String>| {
        details.extend(missing.iter().cloned());
        CrossVerdict { cause, summary, details, vantages: vantages.clone(), router_rule: None }
    };
    if finished.len() < 2 {
        let summary = "Fewer than two vantage points finished: there is nothing to compare.";
        return verdict(CrossCause::Inconclusive, summary.to_string(), Vec::new());
    }
    let resolutions: Vec<(&str, Option<&Resolution>)> =
        finished.iter().map(|((name, report), _)| (*name, report.dns.as_ref())).collect();
    if let Some((summary, details)) = split_horizon(&resolutions) {
        return verdict(CrossCause::SplitHorizonDns, summary, details);
    }
    let every: BTreeSet<u16> =
        finished.iter().flat_map(|(_, result)| result.open_ports.iter().copied()).collect();
    let mut details = Vec::new();
    for port in &every {
        let (open, closed): (Vec<_>, Vec<_>) =
            finished.iter().partition(|(_, result)| result.open_ports.contains(port));
        if !closed.is_empty() {
            let names = |side: &[&(&(&str, &ScanReport), &VantageResult)]| {
                side.iter().map(|((name, _), _)| *name).collect::<Vec<_>>().join(", ")
            };
            details.push(format!(
                "port {port}: open from {}, not from {}",
                names(&open),
                names(&closed)
            ));
        }
    }
    if details.is_empty() {
        let ports: Vec<String> = every.iter().map(u16::to_string).collect();
        let summary = format!(
            "Every vantage point sees the same open ports ({}).",
            if ports.is_empty() { "none".to_string() } else { ports.join(", ") }
        );
        return verdict(CrossCause::Same, summary, Vec::new());
    }
    let summary = format!(
        "{} port(s) are open from some vantage points and not from others: a firewall or \
         security group between them lets only some places in.",
        details.len()
    );
    verdict(CrossCause::FirewallBetween, summary, details)
}

/// Lines naming the vantage points that did not finish, and why.
fn unfinished(vantages: &[VantageResult]) -> Vec<String> {
    vantages
        .iter()
        .filter(|result| result.outcome != Some(Outcome::Completed))
        .map(|result| {
            let why = match result.outcome {
                Some(Outcome::VantageOffline) => "went offline before it finished",
                Some(Outcome::VantageTimeout) => {
                    "fell silent about the request, and the hub gave up on it"
                }
                Some(Outcome::Rejected) => "refused the request",
                Some(Outcome::Cancelled) => "was cancelled",
                Some(Outcome::ShuttingDown) => "shut down before it finished",
                Some(Outcome::Completed | Outcome::Unknown) | None => "did not finish",
            };
            format!("{}: {why} (left out of the comparison)", result.name)
        })
        .collect()
}

/// Split-horizon DNS: the name resolved (by the system resolver) to different address sets in
/// different places. Returns the summary and each place's answer.
fn split_horizon(resolutions: &[(&str, Option<&Resolution>)]) -> Option<(String, Vec<String>)> {
    let looked_up: Vec<(&str, &Resolution)> = resolutions
        .iter()
        .filter_map(|(name, dns)| Some((*name, (*dns)?)))
        .filter(|(_, dns)| dns.method == ResolveMethod::System)
        .collect();
    let answer = |dns: &Resolution| -> (DnsStatus, BTreeSet<IpAddr>) {
        (dns.status, dns.addresses.iter().copied().collect())
    };
    let (_, first) = looked_up.first()?;
    if looked_up.iter().all(|(_, dns)| answer(dns) == answer(first)) {
        return None;
    }
    let details = looked_up
        .iter()
        .map(|(name, dns)| match dns.status {
            DnsStatus::Ok => {
                let addresses: Vec<String> = dns.addresses.iter().map(IpAddr::to_string).collect();
                format!("{name}: {} resolves to {}", dns.host, addresses.join(", "))
            }
            status => format!("{name}: {} does not resolve ({status:?})", dns.host),
        })
        .collect();
    let summary = format!(
        "{} resolves differently depending on where you ask (split-horizon DNS): each place \
         connects to other addresses, so compare the answers before the connects.",
        first.host
    );
    Some((summary, details))
}

/// Whether a vantage point is the target host itself: one of its interface addresses is an
/// address its check connected to.
fn holds_target(check: &VantageCheck<'_>) -> bool {
    check
        .report
        .attempts
        .iter()
        .any(|attempt| attempt.address.is_loopback() || check.addresses.contains(&attempt.address))
}

fn failure_word(cause: Cause) -> &'static str {
    match cause {
        Cause::PortClosed | Cause::FirewallReject | Cause::ConnectionReset => "refused",
        Cause::Filtered | Cause::NoResponse => "filtered (no answer)",
        Cause::HostUnreachable | Cause::NetworkUnreachable => "unreachable",
        Cause::PacketLoss => "losing packets",
        _ => "failing",
    }
}

/// `a`, `a and b`, `a, b and c`.
fn list(names: &[&str]) -> String {
    match names {
        [] => "nowhere".to_string(),
        [one] => (*one).to_string(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// Rule 1 of iptables' `filter FORWARD` chain, as a router's snapshot names it (for tests).
#[cfg(test)]
pub(crate) fn iptables_forward_rule(text: &str, action: RuleAction, packets: u64) -> FirewallRule {
    FirewallRule {
        tool: "iptables".into(),
        family: "ip".into(),
        table: "filter".into(),
        chain: "FORWARD".into(),
        position: 1,
        policy: false,
        handle: None,
        text: text.into(),
        action,
        packets: Some(packets),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use whyrefused_shared::{
        Attempt, CheckEvent, ConnectState, Family, PortSource, Step, TargetInfo, Timestamp, Verdict,
    };

    const AT: &str = "2026-11-25T10:00:00.000000Z";

    /// A finished check of `db.internal:5432` that resolved to `resolved` and ended in `cause`.
    fn report(resolved: &[&str], cause: Cause) -> CheckReport {
        let mut report = CheckReport::default();
        let apply = |report: &mut CheckReport, step| {
            report.apply(&CheckEvent { at: Timestamp(AT.into()), step })
        };
        let target = TargetInfo {
            input: "db.internal:5432".into(),
            host: "db.internal".into(),
            display_host: "db.internal".into(),
            port: 5432,
            port_source: PortSource::Explicit,
            scheme: None,
            path: None,
        };
        apply(&mut report, Step::Started { target, timeout_ms: 1000 });
        let addresses: Vec<IpAddr> = resolved.iter().map(|a| a.parse().unwrap()).collect();
        apply(
            &mut report,
            Step::Resolved {
                resolution: Resolution {
                    host: "db.internal".into(),
                    method: ResolveMethod::System,
                    status: if addresses.is_empty() { DnsStatus::Nxdomain } else { DnsStatus::Ok },
                    addresses: addresses.clone(),
                    detail: None,
                    elapsed_us: 10,
                },
            },
        );
        for address in addresses {
            let attempt = Attempt {
                address,
                port: 5432,
                family: Family::of(&address),
                state: if cause == Cause::Reachable {
                    ConnectState::Open
                } else {
                    ConnectState::Refused
                },
                errno: None,
                icmp: None,
                elapsed_us: 5,
                elapsed_ms: 0.005,
                started_at: Timestamp(AT.into()),
            };
            apply(&mut report, Step::AttemptFinished { attempt });
        }
        let verdict = Verdict {
            cause,
            summary: String::new(),
            suggestions: vec![],
            evidence: vec![],
            pattern: None,
        };
        apply(&mut report, Step::Verdict { verdict });
        apply(&mut report, Step::Done { outcome: Outcome::Completed, elapsed_us: 20 });
        report
    }

    fn with_path(mut report: CheckReport, hops: &[&str], reached: bool) -> CheckReport {
        use whyrefused_shared::{Hop, HopReply, Path};
        let hops: Vec<Hop> = hops
            .iter()
            .enumerate()
            .map(|(i, address)| Hop {
                ttl: i as u8 + 1,
                address: Some(address.parse().unwrap()),
                name: None,
                reply: if reached && i + 1 == hops.len() {
                    HopReply::Reached
                } else {
                    HopReply::TimeExceeded
                },
                icmp: None,
                rtt_ms: Some(0.2),
                tries: 1,
                answered: 1,
            })
            .collect();
        let address = "10.0.3.2:5432".parse().unwrap();
        report.path = Some(Path { reached, complete: true, ..Path::of_hops(address, hops, 30) });
        report
    }

    #[test]
    fn the_cross_verdict_says_where_the_paths_differ() {
        let lost = with_path(report(&["10.0.3.2"], Cause::Filtered), &["10.0.1.1"], false);
        let reaches =
            with_path(report(&["10.0.3.2"], Cause::Reachable), &["10.0.2.1", "10.0.3.2"], true);
        let verdict = compare(&[("app1", &[], &lost), ("app2", &[], &reaches)]);
        assert_eq!(verdict.cause, CrossCause::FirewallBetween);
        assert!(
            verdict.summary.ends_with(
                "From app1 the SYNs die after 10.0.1.1 (hop 1); from app2 the SYNs reach the \
                 target in 2 hops."
            ),
            "{}",
            verdict.summary
        );
        assert!(verdict.details.contains(&"app1 path: the SYNs die after 10.0.1.1 (hop 1)".into()));
        let untraced = report(&["10.0.3.2"], Cause::Reachable);
        let verdict = compare(&[("app1", &[], &lost), ("app2", &[], &untraced)]);
        assert!(verdict.summary.ends_with("; from app2 it connects."), "{}", verdict.summary);
    }

    fn offline() -> CheckReport {
        CheckReport { outcome: Some(Outcome::VantageOffline), ..CheckReport::default() }
    }

    fn compare(checks: &[(&str, &[IpAddr], &CheckReport)]) -> CrossVerdict {
        let checks: Vec<VantageCheck<'_>> = checks
            .iter()
            .map(|(name, addresses, report)| VantageCheck { name, addresses, report })
            .collect();
        compare_checks(&checks)
    }

    const DB: &str = "10.0.0.5";

    #[test]
    fn the_same_result_everywhere_says_so() {
        let a = report(&[DB], Cause::PortClosed);
        let b = report(&[DB], Cause::PortClosed);
        let verdict = compare(&[("local", &[], &a), ("a1", &[], &b)]);
        assert_eq!(verdict.cause, CrossCause::Same);
        assert!(verdict.summary.contains("(local, a1) sees the same: port_closed"), "{verdict:?}");
        assert_eq!(verdict.vantages.len(), 2);
        assert_eq!(verdict.vantages[1].cause, Some(Cause::PortClosed));
    }

    #[test]
    fn open_from_one_place_and_filtered_from_another_is_a_firewall_between_them() {
        let open = report(&[DB], Cause::Reachable);
        let dropped = report(&[DB], Cause::Filtered);
        let refused = report(&[DB], Cause::PortClosed);
        let verdict =
            compare(&[("local", &[], &open), ("laptop", &[], &dropped), ("ci", &[], &refused)]);
        assert_eq!(verdict.cause, CrossCause::FirewallBetween);
        let summary = &verdict.summary;
        assert!(summary.contains("open from local but"), "{summary}");
        assert!(summary.contains("filtered (no answer) or refused"), "{summary}");
        assert!(summary.contains("from laptop and ci"), "{summary}");
        assert!(summary.contains("between them"), "{summary}");
        assert_eq!(verdict.details, ["local: open", "laptop: filtered", "ci: port_closed"]);
    }

    #[test]
    fn a_server_error_from_one_place_and_a_200_from_another_is_no_firewall() {
        let ok = report(&[DB], Cause::Reachable);
        let failing = report(&[DB], Cause::ServerError);
        let verdict = compare(&[("app1", &[], &ok), ("app2", &[], &failing)]);
        assert_ne!(verdict.cause, CrossCause::FirewallBetween, "{verdict:?}");
    }

    #[test]
    fn an_ipv6_target_is_written_in_brackets_beside_its_port() {
        let ipv6 = |cause| {
            let mut report = report(&["fd00::2"], cause);
            if let Some(target) = report.target.as_mut() {
                target.display_host = "fd00::2".into();
                target.port = 8080;
            }
            report
        };
        let (open, dropped) = (ipv6(Cause::Reachable), ipv6(Cause::Filtered));
        let verdict = compare(&[("app1", &[], &open), ("app2", &[], &dropped)]);
        assert!(verdict.summary.contains("[fd00::2]:8080"), "{}", verdict.summary);
        assert_eq!(host_and_port("db.internal", 5432), "db.internal:5432");
        assert_eq!(host_and_port("10.0.0.1", 80), "10.0.0.1:80");
    }

    #[test]
    fn open_only_from_the_target_host_points_at_its_own_firewall() {
        let db: IpAddr = DB.parse().unwrap();
        let open = report(&[DB], Cause::Reachable);
        let refused = report(&[DB], Cause::Filtered);
        let verdict = compare(&[("db", &[db], &open), ("app", &[], &refused)]);
        assert_eq!(verdict.cause, CrossCause::FirewallBetween);
        assert!(verdict.summary.contains("the target host's own firewall"), "{verdict:?}");
    }

    fn with_rule(mut report: CheckReport) -> CheckReport {
        let rule = whyrefused_shared::FirewallRule {
            tool: "nft".into(),
            family: "inet".into(),
            table: "filter".into(),
            chain: "input".into(),
            position: 3,
            policy: false,
            handle: Some(9),
            text: "tcp dport 5432 counter drop".into(),
            action: whyrefused_shared::RuleAction::Drop,
            packets: Some(1),
        };
        report.findings.push(whyrefused_shared::Finding::FirewallRule(
            whyrefused_shared::FirewallMatch {
                address: "10.0.3.2:5432".parse().unwrap(),
                matched: vec![rule],
                exact: true,
                probes: 1,
                candidates: vec![],
                rules_read: 5,
                unreadable: None,
                elapsed_us: 900,
            },
        ));
        report
    }

    fn forward_rule(action: RuleAction, packets: u64) -> FirewallMatch {
        let text = "-A FORWARD -s 10.7.2.2/32 -p tcp -m tcp --dport 80 -j DROP";
        let rule = iptables_forward_rule(text, action, packets);
        FirewallMatch {
            address: "10.7.3.2:80".parse().unwrap(),
            matched: vec![rule],
            exact: false,
            probes: 0,
            candidates: vec![],
            rules_read: 4,
            unreadable: None,
            elapsed_us: 1200,
        }
    }

    #[test]
    fn a_routers_forward_rule_names_the_failing_places_as_likely() {
        let (open, dropped) = (report(&[DB], Cause::Reachable), report(&[DB], Cause::Filtered));
        let mut verdict = compare(&[("a1", &[], &open), ("a2", &[], &dropped)]);
        assert_eq!(verdict.cause, CrossCause::FirewallBetween);
        add_router_rule(&mut verdict, LOCAL_VANTAGE, forward_rule(RuleAction::Drop, 3));
        assert!(
            verdict.summary.ends_with(
                "a2 is dropped by the hub's `iptables filter FORWARD` rule 1: `-A FORWARD -s \
                 10.7.2.2/32 -p tcp -m tcp --dport 80 -j DROP` (likely: it counted 3 packets to 10.7.3.2:80 \
                 while the vantage points probed)."
            ),
            "{verdict:?}"
        );
        assert_eq!(verdict.router_rule.as_ref().map(|r| r.router.as_str()), Some("local"));
        let mut rejected = compare(&[("a1", &[], &open), ("a2", &[], &dropped)]);
        add_router_rule(&mut rejected, "r1", forward_rule(RuleAction::Reject, 1));
        assert!(rejected.summary.contains("a2 is rejected by the router r1's"), "{rejected:?}");
        assert!(rejected.summary.contains("it counted 1 packet to"), "{rejected:?}");
    }

    #[test]
    fn the_target_hosts_own_rule_is_named_in_the_cross_verdict() {
        let db: IpAddr = DB.parse().unwrap();
        let there = with_rule(report(&[DB], Cause::Filtered));
        let here = report(&[DB], Cause::Filtered);
        let verdict = compare(&[("app1", &[], &here), ("db1", &[db], &there)]);
        assert_eq!(verdict.cause, CrossCause::Same);
        assert!(
            verdict.summary.ends_with(
                "app1 is dropped by db1's `inet filter input` rule 3: `tcp dport 5432 counter \
                 drop`."
            ),
            "{verdict:?}"
        );
        // Without the target host among the vantage points, nothing is claimed.
        let elsewhere = compare(&[("app1", &[], &here), ("app2", &[], &there)]);
        assert!(!elsewhere.summary.contains("db1's"), "{elsewhere:?}");
    }

    #[test]
    fn a_stopped_server_seen_by_the_target_host_is_said_in_the_cross_verdict() {
        let db: IpAddr = DB.parse().unwrap();
        let mut there = report(&[DB], Cause::ServerStopped);
        there.verdict.as_mut().unwrap().summary = "pid 4242 (postgres) is stopped.".into();
        let here = report(&[DB], Cause::Filtered);
        let verdict = compare(&[("app1", &[], &here), ("db1", &[db], &there)]);
        assert!(
            verdict
                .summary
                .contains("On db1 (the target host itself): pid 4242 (postgres) is stopped."),
            "{verdict:?}"
        );
    }

    #[test]
    fn refused_everywhere_but_listening_on_loopback_at_the_target_is_bound_to_loopback() {
        let db: IpAddr = DB.parse().unwrap();
        let there = report(&[DB], Cause::LoopbackOnly);
        let here = report(&[DB], Cause::PortClosed);
        let verdict = compare(&[("app", &[], &here), ("db", &[db], &there)]);
        assert_eq!(verdict.cause, CrossCause::BoundToLoopback);
        assert!(verdict.summary.contains("on db (the target host itself)"), "{verdict:?}");
        assert!(verdict.summary.contains("so app cannot reach it"), "{verdict:?}");
    }

    #[test]
    fn different_answers_for_the_name_are_split_horizon_dns_with_each_places_addresses() {
        let inside = report(&[DB], Cause::Reachable);
        let outside = report(&["192.0.2.7"], Cause::Filtered);
        let nowhere = report(&[], Cause::DnsNxdomain);
        let verdict =
            compare(&[("local", &[], &inside), ("cloud", &[], &outside), ("home", &[], &nowhere)]);
        assert_eq!(
            verdict.cause,
            CrossCause::SplitHorizonDns,
            "DNS explains it before the connects"
        );
        assert_eq!(
            verdict.details,
            [
                "local: db.internal resolves to 10.0.0.5",
                "cloud: db.internal resolves to 192.0.2.7",
                "home: db.internal does not resolve (Nxdomain)"
            ]
        );
        let order = report(&[DB, "10.0.0.6"], Cause::Reachable);
        let reversed = report(&["10.0.0.6", DB], Cause::Reachable);
        let verdict = compare(&[("a", &[], &order), ("b", &[], &reversed)]);
        assert_eq!(verdict.cause, CrossCause::Same, "the same set in another order is the same");
    }

    #[test]
    fn a_vantage_point_that_went_offline_is_named_and_left_out() {
        let a = report(&[DB], Cause::Reachable);
        let b = report(&[DB], Cause::Reachable);
        let gone = offline();
        let verdict = compare(&[("local", &[], &a), ("a1", &[], &b), ("a2", &[], &gone)]);
        assert_eq!(verdict.cause, CrossCause::Same);
        assert_eq!(
            verdict.details,
            ["a2: went offline before it finished (left out of the comparison)"]
        );
        assert_eq!(verdict.vantages[2].outcome, Some(Outcome::VantageOffline));
        let verdict = compare(&[("local", &[], &a), ("a2", &[], &gone)]);
        assert_eq!(verdict.cause, CrossCause::Inconclusive);
        assert!(verdict.summary.starts_with("Only local finished"), "{verdict:?}");
    }

    #[test]
    fn a_vantage_point_the_hub_gave_up_on_is_named_as_silent_and_left_out() {
        let a = report(&[DB], Cause::Reachable);
        let b = report(&[DB], Cause::Reachable);
        let silent =
            CheckReport { outcome: Some(Outcome::VantageTimeout), ..CheckReport::default() };
        let verdict = compare(&[("local", &[], &a), ("a1", &[], &b), ("a2", &[], &silent)]);
        assert_eq!(verdict.cause, CrossCause::Same);
        assert_eq!(
            verdict.details,
            [
                "a2: fell silent about the request, and the hub gave up on it (left out of the comparison)"
            ]
        );
        assert_eq!(verdict.vantages[2].outcome, Some(Outcome::VantageTimeout));
    }

    #[test]
    fn different_failures_everywhere_differ() {
        let a = report(&[DB], Cause::PortClosed);
        let b = report(&[DB], Cause::Filtered);
        let verdict = compare(&[("a", &[], &a), ("b", &[], &b)]);
        assert_eq!(verdict.cause, CrossCause::Differs);
        assert_eq!(verdict.details, ["a: port_closed", "b: filtered"]);
    }

    fn scan(open: &[u16]) -> ScanReport {
        let address: IpAddr = DB.parse().unwrap();
        ScanReport {
            results: open
                .iter()
                .map(|port| whyrefused_shared::PortResult {
                    address,
                    port: *port,
                    state: ConnectState::Open,
                    errno: None,
                    icmp: None,
                    elapsed_us: 1,
                    tries: 1,
                    service: None,
                })
                .collect(),
            outcome: Some(Outcome::Completed),
            ..ScanReport::default()
        }
    }

    #[test]
    fn scans_compare_their_open_ports() {
        let (a, b) = (scan(&[22, 80]), scan(&[22, 80]));
        let verdict = compare_scans(&[("local", &a), ("a1", &b)]);
        assert_eq!(verdict.cause, CrossCause::Same);
        assert!(verdict.summary.contains("(22, 80)"), "{verdict:?}");
        let c = scan(&[22]);
        let verdict = compare_scans(&[("local", &a), ("a1", &c)]);
        assert_eq!(verdict.cause, CrossCause::FirewallBetween);
        assert_eq!(verdict.details, ["port 80: open from local, not from a1"]);
        assert_eq!(verdict.vantages[0].open_ports, [22, 80]);
    }

    #[test]
    fn cross_causes_serialize_to_their_wire_names() {
        for cause in [
            CrossCause::Same,
            CrossCause::FirewallBetween,
            CrossCause::BoundToLoopback,
            CrossCause::SplitHorizonDns,
            CrossCause::Differs,
            CrossCause::Inconclusive,
        ] {
            assert_eq!(serde_json::to_string(&cause).unwrap(), format!("\"{}\"", cause.as_str()));
        }
    }
}
