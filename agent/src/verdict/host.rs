//! What the target host itself proves, which wins over what a client infers from silence: the
//! firewall rule whose counter moved with the probe names the drop or the reject (a reset from a
//! REJECT rule otherwise looks like a closed port, a drop like loss or a silent host).

use whyrefused_shared::{Cause, Evidence, FirewallMatch, FirewallRule, RuleAction};

use super::{AddressDiagnosis, evidence};

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
        let read = found.rules_read;
        diagnosis.evidence.push(evidence(
            "firewall rules",
            format!("no dropping or rejecting rule of this host's {read} counted the probe"),
            Some(found.elapsed_us),
        ));
    }
    false
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
    diagnosis.evidence.push(rule_evidence(found, rule));
    for other in found.matched.iter().skip(1) {
        diagnosis.evidence.push(rule_evidence(found, other));
    }
    diagnosis.suggestions = vec![fix(rule, port)];
    if !found.exact {
        diagnosis.suggestions.push(
            "Other traffic moved its counter too: run the check again on a quieter moment to be \
             sure."
                .into(),
        );
    }
}

/// `inet filter input rule 2: tcp dport 81 counter drop: +1 packet for 1 probe (exact)`.
fn rule_evidence(found: &FirewallMatch, rule: &FirewallRule) -> Evidence {
    let packets = rule.packets.unwrap_or_default();
    let certainty = match found.exact {
        true => "exact: it moved by the probe's one SYN",
        false => "likely: other traffic moved it too",
    };
    evidence(
        "firewall rule",
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
    fn a_reject_rule_turns_a_closed_port_into_a_firewall_reject_and_a_busy_one_is_likely() {
        let mut d = diagnosis(Cause::PortClosed);
        apply(&found(vec![rule(RuleAction::Reject, 5)], false), 81, &mut d);
        assert_eq!(d.cause, Cause::FirewallReject);
        assert!(d.summary.contains("is most likely rejected by"), "{}", d.summary);
        assert!(d.evidence[0].result.contains("+5 packet(s)"), "{:?}", d.evidence);
        assert!(!d.suggestions.iter().any(|s| s.contains("service is running")));
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
