//! What the target host itself proves, which wins over what a client infers from silence: the
//! firewall rule whose counter moved with the probe names the drop or the reject (a reset from a
//! REJECT rule otherwise looks like a closed port, a drop like loss or a silent host); a
//! listener whose owning process is stopped, or whose accept queue is full, names the process.

use std::net::IpAddr;

use whyrefused_shared::{
    Attempt, Cause, ConnectState, Evidence, FirewallMatch, FirewallRule, Listener, LocalListeners,
    RuleAction,
};

use super::{AddressDiagnosis, evidence};
use crate::probe::listeners;

/// The evidence line that names a rule whose counter moved.
pub const RULE_EVIDENCE: &str = "firewall rule";

/// Whether a verdict's drop or reject was proved by this host's own firewall rule.
pub fn proves_drop(verdict: &whyrefused_shared::Verdict) -> bool {
    verdict.evidence.iter().any(|line| line.probe == RULE_EVIDENCE)
}

/// Names the ephemeral ports used up, when the connect failed with `EADDRNOTAVAIL` and they
/// were read. Whether it named them.
pub fn apply_local_ports(
    held: &whyrefused_shared::LocalPorts,
    diagnosis: &mut AddressDiagnosis,
) -> bool {
    let (low, high) = held.range;
    let holder = match &held.top_owner {
        Some(top) => format!("; pid {} ({}) holds {} of them", top.pid, top.process, top.sockets),
        None => String::new(),
    };
    diagnosis.cause = Cause::LocalPortsExhausted;
    diagnosis.summary = format!(
        "This host has no local port left to connect to {}: {} of the {} ports of its range \
         ({low}-{high}) are held by connections to it ({} established, {} in TIME_WAIT){holder}.",
        held.destination,
        held.to_destination(),
        held.size(),
        held.established,
        held.time_wait,
    );
    diagnosis.evidence.push(evidence(
        "local ports",
        format!(
            "range {low}-{high} ({} ports): {} sockets of this host on it, {} to {} ({} \
             established, {} TIME_WAIT, {} other){holder}",
            held.size(),
            held.in_range,
            held.to_destination(),
            held.destination,
            held.established,
            held.time_wait,
            held.other
        ),
        None,
    ));
    diagnosis.suggestions = vec![
        "Reuse connections (a pool, HTTP keep-alive) instead of opening one per request; close \
         the idle ones of the process named."
            .into(),
        format!(
            "Widen the range (`sysctl -w net.ipv4.ip_local_port_range=\"1024 65000\"`), and for \
             TIME_WAIT `sysctl -w net.ipv4.tcp_tw_reuse=1` (now {low}-{high})."
        ),
    ];
    true
}

/// Names this host's full conntrack table when the connect went unanswered; notes SYN cookies
/// either way. Whether it named the table.
pub fn apply_pressure(
    pressure: &whyrefused_shared::HostPressure,
    attempt: &Attempt,
    diagnosis: &mut AddressDiagnosis,
) -> bool {
    if pressure.syncookies_sent > 0 || pressure.syncookies_failed > 0 {
        diagnosis.evidence.push(evidence(
            "syn cookies",
            format!(
                "this host sent {} SYN cookie(s) during the check ({} came back invalid): a \
                 listener's SYN queue overflowed (a SYN flood, or more connects than it keeps up \
                 with)",
                pressure.syncookies_sent, pressure.syncookies_failed
            ),
            None,
        ));
    }
    if attempt.state != ConnectState::Timeout || !pressure.conntrack_full() {
        return false;
    }
    let fill = match (pressure.conntrack_count, pressure.conntrack_max) {
        (Some(count), Some(max)) => format!("{count}/{max} connections tracked"),
        _ => "its size unreadable".to_string(),
    };
    diagnosis.cause = Cause::ConntrackFull;
    diagnosis.summary = format!(
        "This host's connection-tracking table is full ({fill}, {} new connection(s) dropped \
         during the check): netfilter drops new connections, to {} as to anything else.",
        pressure.conntrack_drops,
        attempt.socket_addr()
    );
    diagnosis.evidence.push(evidence(
        "conntrack",
        format!("{fill}; drop, early_drop and insert_failed moved by {}", pressure.conntrack_drops),
        None,
    ));
    diagnosis.suggestions = vec![
        "Raise the table (`sysctl -w net.netfilter.nf_conntrack_max=N`, with \
         `nf_conntrack_buckets`), shorten `nf_conntrack_tcp_timeout_*`, or exempt busy traffic \
         with `notrack` rules; `conntrack -S` shows the drops."
            .into(),
    ];
    true
}

/// Names the stopped owner or the full accept queue of the listener that takes `attempt`'s
/// address, when the connect timed out or opened (a stopped process's kernel still completes
/// connections, then nothing answers). Whether it named one.
pub fn apply_listener(
    found: &LocalListeners,
    attempt: &Attempt,
    diagnosis: &mut AddressDiagnosis,
) -> bool {
    if !matches!(attempt.state, ConnectState::Open | ConnectState::Timeout) {
        return false;
    }
    let Some(listener) = taking(found, attempt.address) else { return false };
    let owner = owner_words(listener);
    let queue = listener.queue.map(|q| format!("{}/{}", q.waiting, q.backlog));
    if let Some(state) = listener.owner_state.filter(|state| state.is_stopped()) {
        diagnosis.cause = Cause::ServerStopped;
        diagnosis.summary = format!(
            "The service on {} is owned by {owner}, which is {}: the kernel still completes \
             connections{}, but nothing accepts or answers them.",
            listener.address,
            state.meaning(),
            queue.as_ref().map(|q| format!(" (accept queue {q})")).unwrap_or_default()
        );
        let resume = match listener.pid {
            Some(pid) => format!("`kill -CONT {pid}`"),
            None => "`kill -CONT PID`".to_string(),
        };
        diagnosis.suggestions = vec![format!(
            "Resume it ({resume}) or detach the debugger; a zombie must be reaped by its parent: \
             restart the service."
        )];
        diagnosis.evidence.push(evidence(
            "listener owner",
            format!("{owner}: {}", state.meaning()),
            None,
        ));
        diagnosis.evidence.extend(queue_evidence(found, listener));
        return true;
    }
    let overflowed = found.listen_overflows.unwrap_or_default() > 0;
    let full =
        listener.queue.is_some_and(|q| q.is_full() || (overflowed && q.waiting >= q.backlog));
    if attempt.state != ConnectState::Timeout || !full {
        return false;
    }
    diagnosis.cause = Cause::BacklogFull;
    diagnosis.summary = format!(
        "The accept queue of the service on {} is full ({}): {owner} is not accepting \
         connections, so this host drops new SYNs while it is up.",
        listener.address,
        queue.unwrap_or_default()
    );
    diagnosis.suggestions = vec![format!(
        "Find why {owner} does not accept (hung, overloaded, too few workers), or raise its \
         backlog (its listen() argument, capped by net.core.somaxconn)."
    )];
    diagnosis.evidence.extend(queue_evidence(found, listener));
    true
}

/// The listener that takes connections to `address`: one bound to it before a wildcard.
fn taking(found: &LocalListeners, address: IpAddr) -> Option<&Listener> {
    let mut taking = found.listeners.iter().filter(|l| listeners::accepts(&l.address, &address));
    let all: Vec<&Listener> = taking.by_ref().collect();
    all.iter().find(|l| l.address.ip() == address).or(all.first()).copied()
}

/// `pid 4242 (gunicorn)`, or `its owning process` when hidden or unreadable.
fn owner_words(listener: &Listener) -> String {
    match (listener.pid, &listener.process) {
        (Some(pid), Some(name)) => format!("pid {pid} ({name})"),
        (Some(pid), None) => format!("pid {pid}"),
        _ => "its owning process".to_string(),
    }
}

fn queue_evidence(found: &LocalListeners, listener: &Listener) -> Option<Evidence> {
    let queue = listener.queue?;
    let overflows = match found.listen_overflows {
        Some(n) => format!(
            "; this host dropped {n} SYN(s) to full queues during the check (ListenOverflows)"
        ),
        None => String::new(),
    };
    Some(evidence(
        "accept queue",
        format!(
            "{} waiting of a backlog of {} on {}{overflows}",
            queue.waiting, queue.backlog, listener.address
        ),
        None,
    ))
}

/// Names the rule on the diagnosis when its counter moved; lists the candidates (rules without
/// counters) as evidence; says what reading the rules needs when it could not. Without a rule
/// that moved, the cause is left as it was. Whether a rule was named.
pub fn apply(found: &FirewallMatch, port: u16, diagnosis: &mut AddressDiagnosis) -> bool {
    if let Some(why) = &found.unreadable {
        diagnosis.evidence.push(evidence("firewall rules", why.clone(), None));
        return false;
    }
    if let Some(rule) = found.matched.first() {
        name_the_rule(found, rule, port, diagnosis);
        return true;
    }
    if !found.candidates.is_empty() {
        diagnosis.evidence.push(candidates_evidence(&found.candidates));
        diagnosis.suggestions.push(
            "Add `counter` to these rules (or run `nft monitor trace` with `meta nftrace set 1`) to \
             see which one stops the connection."
                .into(),
        );
    } else {
        // No rule of this host could stop it, or none counted it: the reset came from the
        // host's TCP stack, and the note that a rule's reset looks like a closed port is moot.
        drop_reset_note(diagnosis);
        let words = found.nothing_found();
        diagnosis.evidence.push(evidence("firewall rules", words, Some(found.elapsed_us)));
    }
    false
}

/// Removes the note that a firewall's reset looks like a closed port, once the host's own
/// rules settled the question.
fn drop_reset_note(diagnosis: &mut AddressDiagnosis) {
    diagnosis.evidence.retain(|line| line.result != super::RESET_LOOKS_CLOSED);
}

fn name_the_rule(
    found: &FirewallMatch,
    rule: &FirewallRule,
    port: u16,
    diagnosis: &mut AddressDiagnosis,
) {
    let verb = match rule.action {
        RuleAction::Reject => "rejected",
        _ => "dropped",
    };
    let sure = if found.exact { "" } else { "most likely " };
    let place = rule.place();
    diagnosis.summary = format!(
        "The connection to {} is {sure}{verb} by this host's own firewall: `{place}`: `{}`.",
        found.address, rule.text
    );
    if diagnosis.cause != Cause::LocalFirewall {
        diagnosis.cause = match rule.action {
            RuleAction::Reject => Cause::FirewallReject,
            _ => Cause::Filtered,
        };
    }
    // The rule is known: the note that a reset from a rule looks like a closed port is moot.
    drop_reset_note(diagnosis);
    diagnosis.evidence.push(rule_evidence(found, rule));
    for other in found.matched.iter().skip(1) {
        diagnosis.evidence.push(rule_evidence(found, other));
    }
    diagnosis.suggestions = vec![fix(rule, port)];
    if let Some(service) = kube_service_without_endpoints(&rule.text) {
        name_the_kube_service(found, rule, &service, diagnosis);
    }
    if !found.exact {
        diagnosis.suggestions.push(
            "Other traffic moved its counter too: run the check again on a quieter moment to be \
             sure."
                .into(),
        );
    }
}

/// The Kubernetes service a kube-proxy rule rejects for having no endpoints: its comment
/// `"default/web:http has no endpoints"` gives `default/web:http`.
fn kube_service_without_endpoints(text: &str) -> Option<String> {
    const NO_ENDPOINTS: &str = " has no endpoints";
    let end = text.find(NO_ENDPOINTS)?;
    let start = text[..end].rfind('"').map_or(0, |quote| quote + 1);
    let service = text[start..end].trim();
    (!service.is_empty() && !service.contains(char::is_whitespace)).then(|| service.to_string())
}

/// The rule is kube-proxy's: the service has no ready pod behind it, which no firewall change
/// fixes.
fn name_the_kube_service(
    found: &FirewallMatch,
    rule: &FirewallRule,
    service: &str,
    diagnosis: &mut AddressDiagnosis,
) {
    let (namespace, name) = service.split_once('/').unwrap_or(("default", service));
    let name = name.split(':').next().unwrap_or(name);
    diagnosis.summary = format!(
        "The connection to {} is rejected by kube-proxy: the Kubernetes service {service} has no \
         endpoints (no ready pod behind it), so its rule `{}` refuses every connection.",
        found.address,
        rule.place()
    );
    diagnosis.suggestions = vec![
        format!(
            "Look at the service's pods: `kubectl get endpointslices -n {namespace} -l \
             kubernetes.io/service-name={name}` and `kubectl describe service -n {namespace} \
             {name}`: a selector that matches no pod, or pods that are not Ready (failing \
             readiness probes, crash loops), leave it without endpoints."
        ),
        "Do not delete the rule: kube-proxy writes it back; it goes away once a pod is ready."
            .into(),
    ];
}

/// `inet filter input rule 2: tcp dport 81 counter drop: +1 packet for 1 probe (exact)`.
fn rule_evidence(found: &FirewallMatch, rule: &FirewallRule) -> Evidence {
    let packets = rule.packets.unwrap_or_default();
    let certainty = match found.exact {
        true => "exact: it moved by the probe's one SYN",
        false => "likely: other traffic moved it too",
    };
    evidence(
        RULE_EVIDENCE,
        format!(
            "{}: {}: +{packets} packet(s) for {} probe(s) ({certainty})",
            rule.place(),
            rule.text,
            found.probes
        ),
        Some(found.elapsed_us),
    )
}

fn candidates_evidence(candidates: &[FirewallRule]) -> Evidence {
    let listed: Vec<String> =
        candidates.iter().map(|rule| format!("{}: {}", rule.place(), rule.text)).collect();
    evidence(
        "firewall candidates",
        format!(
            "no counted rule moved; these rules have no counter and could match the probe: {}",
            listed.join("; ")
        ),
        None,
    )
}

/// How to remove or get around the rule, in its own tool's words.
fn fix(rule: &FirewallRule, port: u16) -> String {
    let (family, table, chain) = (&rule.family, &rule.table, &rule.chain);
    match (rule.tool.as_str(), rule.handle, rule.policy) {
        ("nft", _, true) => format!(
            "Allow it before the policy: `nft insert rule {family} {table} {chain} tcp dport \
             {port} accept` (and make it permanent in /etc/nftables.conf)."
        ),
        ("nft", Some(handle), false) => format!(
            "If the port should be open, remove the rule (`nft delete rule {family} {table} \
             {chain} handle {handle}`) or allow the port before it, and make it permanent in \
             /etc/nftables.conf."
        ),
        (tool, _, true) => {
            let command = tool.trim_end_matches("-legacy");
            format!(
                "Allow it before the policy: `{command} -t {table} -I {chain} -p tcp --dport \
                 {port} -j ACCEPT` (and save the rules)."
            )
        }
        (tool, _, false) => {
            let command = tool.trim_end_matches("-legacy");
            format!(
                "If the port should be open, remove the rule (`{command} -t {table} -D {chain} {}`) \
                 or allow the port before it, and save the rules.",
                rule.position
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use whyrefused_shared::{AcceptQueue, OwnerState};

    fn rule(action: RuleAction, packets: u64) -> FirewallRule {
        FirewallRule {
            tool: "nft".into(),
            family: "inet".into(),
            table: "filter".into(),
            chain: "input".into(),
            position: 3,
            policy: false,
            handle: Some(7),
            text: "tcp dport 81 counter drop".into(),
            action,
            packets: Some(packets),
        }
    }

    fn found(matched: Vec<FirewallRule>, exact: bool) -> FirewallMatch {
        FirewallMatch {
            address: "10.9.0.2:81".parse().unwrap(),
            matched,
            exact,
            probes: 1,
            candidates: vec![],
            rules_read: 12,
            unreadable: None,
            elapsed_us: 4000,
        }
    }

    fn diagnosis(cause: Cause) -> AddressDiagnosis {
        AddressDiagnosis {
            address: "10.9.0.2".parse().unwrap(),
            cause,
            summary: "before".into(),
            suggestions: vec!["Check that the service is running.".into()],
            evidence: vec![],
        }
    }

    #[test]
    fn an_exact_drop_rule_is_filtered_naming_the_rule_even_over_packet_loss() {
        let mut d = diagnosis(Cause::PacketLoss);
        apply(&found(vec![rule(RuleAction::Drop, 1)], true), 81, &mut d);
        assert_eq!(d.cause, Cause::Filtered);
        assert_eq!(
            d.summary,
            "The connection to 10.9.0.2:81 is dropped by this host's own firewall: `inet filter \
             input rule 3`: `tcp dport 81 counter drop`."
        );
        assert!(d.suggestions[0].contains("nft delete rule inet filter input handle 7"));
        assert!(d.evidence[0].result.contains("(exact"), "{:?}", d.evidence);
    }

    #[test]
    fn a_host_whose_rules_stop_nothing_drops_the_note_that_a_reset_may_be_a_rule() {
        for rules_read in [0, 12] {
            let mut d = diagnosis(Cause::PortClosed);
            d.evidence.push(evidence("note", crate::verdict::RESET_LOOKS_CLOSED, None));
            let nothing = FirewallMatch { probes: 0, rules_read, ..found(vec![], false) };
            assert!(!apply(&nothing, 81, &mut d));
            assert_eq!(d.cause, Cause::PortClosed, "the verdict stands");
            let lines: Vec<&str> = d.evidence.iter().map(|e| e.result.as_str()).collect();
            assert_eq!(lines, [nothing.nothing_found()], "{rules_read} rules");
        }
        // Unreadable rules settle nothing: the note stays.
        let mut d = diagnosis(Cause::PortClosed);
        d.evidence.push(evidence("note", crate::verdict::RESET_LOOKS_CLOSED, None));
        let unread = FirewallMatch {
            unreadable: Some("needs CAP_NET_ADMIN".into()),
            ..found(vec![], false)
        };
        apply(&unread, 81, &mut d);
        assert_eq!(d.evidence[0].result, crate::verdict::RESET_LOOKS_CLOSED);
    }

    #[test]
    fn a_reject_rule_turns_a_closed_port_into_a_firewall_reject_and_a_busy_one_is_likely() {
        let mut d = diagnosis(Cause::PortClosed);
        d.evidence.push(evidence("note", crate::verdict::RESET_LOOKS_CLOSED, None));
        apply(&found(vec![rule(RuleAction::Reject, 5)], false), 81, &mut d);
        assert!(d.evidence.iter().all(|e| e.probe != "note"), "{:?}", d.evidence);
        assert_eq!(d.cause, Cause::FirewallReject);
        assert!(d.summary.contains("is most likely rejected by"), "{}", d.summary);
        assert!(d.evidence[0].result.contains("+5 packet(s)"), "{:?}", d.evidence);
        assert!(!d.suggestions.iter().any(|s| s.contains("service is running")));
    }

    #[test]
    fn a_kube_proxy_rule_for_a_service_without_endpoints_names_the_service() {
        let mut kube = rule(RuleAction::Reject, 1);
        kube.tool = "iptables".into();
        kube.text = "-A KUBE-SERVICES -d 10.96.0.12/32 -p tcp -m comment --comment \
                     \"shop/web:http has no endpoints\" -m tcp --dport 80 -j REJECT \
                     --reject-with icmp-port-unreachable"
            .into();
        let mut d = diagnosis(Cause::HostUnreachable);
        apply(&found(vec![kube], true), 80, &mut d);
        assert_eq!(d.cause, Cause::FirewallReject);
        assert!(
            d.summary.contains(
                "rejected by kube-proxy: the Kubernetes service shop/web:http has no endpoints"
            ),
            "{}",
            d.summary
        );
        assert!(d.suggestions[0].contains("kubernetes.io/service-name=web"), "{:?}", d.suggestions);
        assert!(d.suggestions[0].contains("-n shop"));
        assert_eq!(kube_service_without_endpoints("tcp dport 80 counter drop"), None);
    }

    #[test]
    fn without_the_privilege_or_a_moved_rule_the_cause_stays() {
        let mut d = diagnosis(Cause::Filtered);
        let mut unreadable = found(vec![], false);
        unreadable.unreadable = Some(whyrefused_shared::FIREWALL_NEEDS.into());
        apply(&unreadable, 81, &mut d);
        assert_eq!((d.cause, d.summary.as_str()), (Cause::Filtered, "before"));
        assert!(d.evidence[0].result.starts_with("needs CAP_NET_ADMIN"));
        let mut candidates = found(vec![], false);
        candidates.candidates = vec![rule(RuleAction::Drop, 0)];
        let mut d = diagnosis(Cause::Filtered);
        apply(&candidates, 81, &mut d);
        assert_eq!(d.cause, Cause::Filtered);
        assert!(d.evidence[0].result.contains("inet filter input rule 3: tcp dport 81"));
    }

    fn listeners(state: Option<OwnerState>, waiting: u32, overflows: u64) -> LocalListeners {
        LocalListeners {
            port: 81,
            listeners: vec![Listener {
                address: "0.0.0.0:81".parse().unwrap(),
                pid: Some(4242),
                process: Some("gunicorn".into()),
                command: None,
                queue: Some(AcceptQueue { waiting, backlog: 128 }),
                owner_state: state,
            }],
            owners_hidden: None,
            listen_overflows: Some(overflows),
        }
    }

    fn attempt(state: ConnectState) -> Attempt {
        Attempt {
            address: "10.9.0.2".parse().unwrap(),
            port: 81,
            family: whyrefused_shared::Family::Ipv4,
            state,
            errno: None,
            icmp: None,
            elapsed_us: 300_000,
            elapsed_ms: 300.0,
            started_at: whyrefused_shared::Timestamp(String::new()),
        }
    }

    #[test]
    fn a_full_queue_is_backlog_full_naming_the_process_over_loss() {
        let mut d = diagnosis(Cause::PacketLoss);
        let full = listeners(Some(OwnerState::Sleeping), 129, 2);
        assert!(apply_listener(&full, &attempt(ConnectState::Timeout), &mut d));
        assert_eq!(d.cause, Cause::BacklogFull);
        assert!(
            d.summary.contains("full (129/128): pid 4242 (gunicorn) is not accepting"),
            "{}",
            d.summary
        );
        assert!(d.evidence[0].result.contains("dropped 2 SYN(s)"), "{:?}", d.evidence);
        let mut d = diagnosis(Cause::Filtered);
        assert!(!apply_listener(&listeners(None, 3, 0), &attempt(ConnectState::Timeout), &mut d));
        assert_eq!(d.cause, Cause::Filtered, "a queue with room proves nothing");
    }

    #[test]
    fn a_stopped_owner_is_server_stopped_even_when_the_connect_opened() {
        let stopped = listeners(Some(OwnerState::Stopped), 1, 0);
        // What the client side made of the stall (an HTTP timeout, a proved MTU black hole)
        // gives way to what the host proves.
        for before in [Cause::HttpError, Cause::MtuBlackHole] {
            let mut d = diagnosis(before);
            assert!(apply_listener(&stopped, &attempt(ConnectState::Open), &mut d));
            assert_eq!(d.cause, Cause::ServerStopped, "over {before:?}");
        }
        let mut d = diagnosis(Cause::Reachable);
        assert!(apply_listener(&stopped, &attempt(ConnectState::Open), &mut d));
        assert_eq!(d.cause, Cause::ServerStopped);
        assert!(
            d.summary.contains("owned by pid 4242 (gunicorn), which is stopped (T"),
            "{}",
            d.summary
        );
        assert!(d.suggestions[0].contains("kill -CONT 4242"));
        let mut d = diagnosis(Cause::PortClosed);
        assert!(!apply_listener(&stopped, &attempt(ConnectState::Refused), &mut d));
    }

    #[test]
    fn used_up_ports_are_local_ports_exhausted_naming_the_holder() {
        let held = whyrefused_shared::LocalPorts {
            destination: "10.0.1.2:80".parse().unwrap(),
            range: (40000, 40003),
            in_range: 4,
            established: 3,
            time_wait: 1,
            other: 0,
            top_owner: Some(whyrefused_shared::PortHolder {
                pid: 4242,
                process: "loadgen".into(),
                sockets: 3,
            }),
        };
        let mut d = diagnosis(Cause::ConnectError);
        assert!(apply_local_ports(&held, &mut d));
        assert_eq!(d.cause, Cause::LocalPortsExhausted);
        assert_eq!(
            d.summary,
            "This host has no local port left to connect to 10.0.1.2:80: 4 of the 4 ports of its \
             range (40000-40003) are held by connections to it (3 established, 1 in TIME_WAIT); \
             pid 4242 (loadgen) holds 3 of them."
        );
    }

    #[test]
    fn a_full_conntrack_table_is_conntrack_full_and_cookies_are_noted() {
        let pressure = whyrefused_shared::HostPressure {
            conntrack_count: Some(262_144),
            conntrack_max: Some(262_144),
            conntrack_drops: 6,
            syncookies_sent: 2,
            syncookies_failed: 0,
        };
        let mut d = diagnosis(Cause::PacketLoss);
        assert!(apply_pressure(&pressure, &attempt(ConnectState::Timeout), &mut d));
        assert_eq!(d.cause, Cause::ConntrackFull);
        assert!(
            d.summary.contains("full (262144/262144 connections tracked, 6 new"),
            "{}",
            d.summary
        );
        assert!(d.evidence.iter().any(|e| e.probe == "syn cookies"), "{:?}", d.evidence);
        let mut d = diagnosis(Cause::PortClosed);
        assert!(!apply_pressure(&pressure, &attempt(ConnectState::Refused), &mut d));
        assert_eq!(d.cause, Cause::PortClosed);
    }

    #[test]
    fn iptables_rules_and_policies_are_fixed_with_iptables() {
        let mut dropped = rule(RuleAction::Drop, 1);
        dropped.tool = "iptables-legacy".into();
        dropped.chain = "INPUT".into();
        assert!(fix(&dropped, 81).contains("`iptables -t filter -D INPUT 3`"));
        dropped.policy = true;
        assert!(fix(&dropped, 81).contains("-I INPUT -p tcp --dport 81 -j ACCEPT"));
    }
}
