//! iptables' own listing with counters, `iptables-save -c` (and `ip6tables-save -c`, and their
//! `-legacy` and `-nft` variants): each rule's `[packets:bytes]` and its `-A` line.

use whyrefused_shared::{FirewallRule, RuleAction};

use super::ListedRule;
use super::condition::{self, Condition};

/// Every rule of the listing of `tool` (`iptables`, `ip6tables-legacy`), in order, with each
/// built-in chain's policy after its chain's rules.
pub fn parse(tool: &str, text: &str) -> Vec<ListedRule> {
    let ipv4 = !tool.starts_with("ip6");
    let family = if ipv4 { "ip" } else { "ip6" };
    let mut rules: Vec<ListedRule> = Vec::new();
    let mut policies: Vec<(String, String, String, u64)> = Vec::new();
    let mut table = String::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix('*') {
            table = name.trim().to_string();
        } else if let Some(chain) = line.strip_prefix(':') {
            if let Some((name, policy, packets)) = chain_line(chain) {
                policies.push((table.clone(), name, policy, packets));
            }
        } else if let Some((packets, arguments)) = rule_line(line) {
            let words = split_words(arguments);
            let Some(chain) = words.get(1).filter(|_| words[0] == "-A").cloned() else {
                continue;
            };
            let in_chain = |r: &&ListedRule| r.rule.table == table && r.rule.chain == chain;
            let position = 1 + rules.iter().filter(in_chain).count() as u32;
            let rule = FirewallRule {
                tool: tool.into(),
                family: family.into(),
                table: table.clone(),
                chain: chain.clone(),
                position,
                policy: false,
                handle: None,
                text: arguments.to_string(),
                action: action(&words),
                packets: None,
            };
            let key = format!("{tool} {table} {chain} {position} {arguments}");
            let conditions = conditions(&words, ipv4);
            let hook = builtin_hook(&chain);
            rules.push(ListedRule { rule, counter: Some(packets), key, conditions, hook });
        }
    }
    for (table, chain, policy, packets) in policies {
        let in_chain = |r: &&ListedRule| r.rule.table == table && r.rule.chain == chain;
        let position = 1 + rules.iter().filter(in_chain).count() as u32;
        let action = if policy == "DROP" { RuleAction::Drop } else { RuleAction::Other };
        let key = format!("{tool} {table} {chain} policy");
        let rule = FirewallRule {
            tool: tool.into(),
            family: family.into(),
            text: format!("-P {chain} {policy}"),
            table,
            chain,
            position,
            policy: true,
            handle: None,
            action,
            packets: None,
        };
        let conditions = vec![Condition::Family { ipv4 }];
        let hook = builtin_hook(&rule.chain);
        rules.push(ListedRule { rule, counter: Some(packets), key, conditions, hook });
    }
    rules
}

/// The hook of a built-in chain (`FORWARD` is `forward`); none for a chain only jumped to.
fn builtin_hook(chain: &str) -> Option<String> {
    let builtin = ["INPUT", "OUTPUT", "FORWARD", "PREROUTING", "POSTROUTING"].contains(&chain);
    builtin.then(|| chain.to_ascii_lowercase())
}

/// `INPUT DROP [3:188]`: a built-in chain, its policy and its counter (`-` for a user chain,
/// which has no policy).
fn chain_line(line: &str) -> Option<(String, String, u64)> {
    let mut words = line.split_whitespace();
    let (name, policy, counters) = (words.next()?, words.next()?, words.next()?);
    if policy == "-" {
        return None;
    }
    let (packets, _) = counters.strip_prefix('[')?.strip_suffix(']')?.split_once(':')?;
    Some((name.to_string(), policy.to_string(), packets.parse().ok()?))
}

/// `[2:120] -A INPUT -p tcp ...`: the packet counter and the rule.
fn rule_line(line: &str) -> Option<(u64, &str)> {
    let (counters, arguments) = line.strip_prefix('[')?.split_once("] ")?;
    let (packets, _) = counters.split_once(':')?;
    Some((packets.parse().ok()?, arguments.trim()))
}

/// The words of a rule, a quoted comment kept as one word.
fn split_words(arguments: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for character in arguments.chars() {
        match character {
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            _ => word.push(character),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

fn action(words: &[String]) -> RuleAction {
    let target = words.iter().position(|w| w == "-j").and_then(|at| words.get(at + 1));
    match target.map(String::as_str) {
        Some("DROP") => RuleAction::Drop,
        Some("REJECT") => RuleAction::Reject,
        _ => RuleAction::Other,
    }
}

/// What the rule's options say about a TCP SYN: `-p`, `--dport`, `--dports`, `-d`, `-s`, each
/// possibly negated by a `!` before it.
fn conditions(words: &[String], ipv4: bool) -> Vec<Condition> {
    let mut found = vec![Condition::Family { ipv4 }];
    let mut negated = false;
    let mut at = 0;
    while at < words.len() {
        let value = words.get(at + 1).map(String::as_str).unwrap_or_default();
        let condition = match words[at].as_str() {
            "!" => {
                negated = true;
                at += 1;
                continue;
            }
            "-p" if !negated && value != "tcp" && value != "6" => Some(Condition::NotTcp),
            "--dport" | "--destination-port" => condition::port_range(value)
                .map(|range| Condition::DestinationPort { ranges: vec![range], negated }),
            "--dports" | "--destination-ports" => value
                .split(',')
                .map(condition::port_range)
                .collect::<Option<Vec<_>>>()
                .map(|ranges| Condition::DestinationPort { ranges, negated }),
            "-d" | "-s" => condition::network(value).map(|network| Condition::Address {
                networks: vec![network],
                negated,
                source: words[at] == "-s",
            }),
            _ => None,
        };
        found.extend(condition);
        negated = false;
        at += 1;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `iptables-save -c` of iptables 1.8.9 (nf_tables) in a lab namespace, after SYNs to ports
    /// 86 (twice), 89, 87 and 3000 of 10.77.0.1.
    const NFT_SAVE: &str = include_str!("testdata/iptables-nft-save.txt");
    /// `iptables-legacy-save -c` after one SYN to port 99.
    const LEGACY_SAVE: &str = include_str!("testdata/iptables-legacy-save.txt");

    fn find<'a>(rules: &'a [ListedRule], place: &str) -> &'a ListedRule {
        rules.iter().find(|r| r.rule.place() == place).unwrap()
    }

    #[test]
    fn rules_are_named_with_chain_position_text_and_counter() {
        let rules = parse("iptables", NFT_SAVE);
        let drop = find(&rules, "iptables filter INPUT rule 2");
        assert_eq!(drop.rule.text, "-A INPUT -p tcp -m tcp --dport 86 -j DROP");
        assert_eq!((drop.rule.action, drop.counter), (RuleAction::Drop, Some(2)));
        let reject = find(&rules, "iptables filter app rule 1");
        assert_eq!(reject.rule.action, RuleAction::Reject);
        assert_eq!(reject.counter, Some(1));
        assert!(reject.rule.text.contains("--comment \"no app\""), "{}", reject.rule.text);
        let policy = find(&rules, "iptables filter INPUT policy");
        assert_eq!(
            (policy.rule.action, policy.counter, policy.rule.position),
            (RuleAction::Drop, Some(3), 6)
        );
        assert_eq!(find(&rules, "iptables nat OUTPUT rule 1").rule.action, RuleAction::Other);
        assert!(
            rules.iter().all(|r| r.rule.chain != "app" || !r.rule.policy),
            "a user chain has none"
        );
        let legacy = parse("iptables-legacy", LEGACY_SAVE);
        assert_eq!(find(&legacy, "iptables-legacy filter INPUT rule 1").counter, Some(1));
    }

    #[test]
    fn options_say_which_syns_a_rule_may_match() {
        let rules = parse("iptables", NFT_SAVE);
        let may = |place: &str, probe: &str| {
            condition::may_match(&find(&rules, place).conditions, probe.parse().unwrap())
        };
        assert!(may("iptables filter INPUT rule 3", "10.77.0.1:88"), "multiport");
        assert!(!may("iptables filter INPUT rule 3", "10.77.0.1:89"));
        assert!(may("iptables filter INPUT rule 4", "10.77.0.1:89"), "! --dport 1000:2000");
        assert!(!may("iptables filter INPUT rule 4", "10.77.0.1:1500"));
        assert!(!may("iptables filter INPUT rule 4", "10.77.0.2:89"), "-d 10.77.0.1/32");
        assert!(!may("iptables filter INPUT rule 5", "10.77.0.1:53"), "-p udp");
        assert!(!may("iptables filter INPUT rule 2", "[fd00::1]:86"), "iptables is IPv4's");
    }
}
