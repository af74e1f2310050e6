//! nftables' own listing, `nft -j list ruleset`: every rule with its counter, written back as
//! nft writes it (counters left out), and what it matches.

use serde::Deserialize;
use serde_json::Value;
use whyrefused_shared::{FirewallRule, RuleAction};

use super::ListedRule;
use super::condition::{self, Condition};

/// The listing: a list of objects, each one of `metainfo`, `table`, `chain`, `rule`, `set`...
#[derive(Deserialize)]
struct Listing {
    nftables: Vec<Object>,
}

/// One object of the listing; only chains and rules matter here.
#[derive(Deserialize)]
struct Object {
    chain: Option<Chain>,
    rule: Option<Rule>,
}

#[derive(Deserialize)]
struct Chain {
    family: String,
    table: String,
    name: String,
    /// A base chain's hook (`input`); none for a chain only jumped to.
    hook: Option<String>,
    /// A base chain's policy (`accept`, `drop`).
    policy: Option<String>,
}

#[derive(Deserialize)]
struct Rule {
    family: String,
    table: String,
    chain: String,
    handle: u64,
    #[serde(default)]
    expr: Vec<Value>,
    comment: Option<String>,
}

/// Why the listing could not be read.
#[derive(Debug, thiserror::Error)]
#[error("nft's JSON listing could not be read: {0}")]
pub struct ListingError(#[from] serde_json::Error);

/// Every rule of the listing, in order, then each base chain's policy after its rules.
pub fn parse(json: &str) -> Result<Vec<ListedRule>, ListingError> {
    let listing: Listing = serde_json::from_str(json)?;
    let mut rules: Vec<ListedRule> = Vec::new();
    let mut chains = Vec::new();
    for object in listing.nftables {
        if let Some(chain) = object.chain {
            chains.push(chain);
        }
        if let Some(rule) = object.rule {
            let position = 1 + rules
                .iter()
                .filter(|r| {
                    let r = &r.rule;
                    (&r.family, &r.table, &r.chain) == (&rule.family, &rule.table, &rule.chain)
                })
                .count() as u32;
            rules.push(listed(rule, position));
        }
    }
    for rule in &mut rules {
        let r = &rule.rule;
        let base = chains
            .iter()
            .find(|c| (&c.family, &c.table, &c.name) == (&r.family, &r.table, &r.chain));
        rule.hook = base.and_then(|chain| chain.hook.clone());
    }
    for chain in chains.into_iter().filter(|chain| chain.hook.is_some()) {
        let in_chain = |r: &&ListedRule| {
            (&r.rule.family, &r.rule.table, &r.rule.chain)
                == (&chain.family, &chain.table, &chain.name)
        };
        let position = 1 + rules.iter().filter(in_chain).count() as u32;
        if let Some(policy) = policy(chain, position) {
            rules.push(policy);
        }
    }
    Ok(rules)
}

/// A base chain's policy, as the last rule of its chain (nftables keeps no counter for it).
fn policy(chain: Chain, position: u32) -> Option<ListedRule> {
    let policy = chain.policy?;
    let action = if policy == "drop" { RuleAction::Drop } else { RuleAction::Other };
    let hook = chain.hook;
    let key = format!("nft {} {} {} policy", chain.family, chain.table, chain.name);
    let conditions = family_condition(&chain.family).into_iter().collect();
    Some(ListedRule {
        rule: FirewallRule {
            tool: "nft".into(),
            family: chain.family,
            table: chain.table,
            chain: chain.name,
            position,
            policy: true,
            handle: None,
            text: format!("hook {} policy {policy}", hook.as_deref().unwrap_or_default()),
            action,
            packets: None,
        },
        counter: None,
        key,
        conditions,
        hook,
    })
}

fn listed(rule: Rule, position: u32) -> ListedRule {
    let mut words = Vec::new();
    let mut counter = None;
    let mut action = RuleAction::Other;
    let mut conditions: Vec<Condition> = family_condition(&rule.family).into_iter().collect();
    for expression in &rule.expr {
        if let Some(packets) = expression.pointer("/counter/packets").and_then(Value::as_u64) {
            counter = Some(packets);
        }
        if action == RuleAction::Other {
            action = statement_action(expression);
        }
        if let Some(found) = expression.get("match").and_then(match_condition) {
            conditions.push(found);
        }
        words.push(statement_text(expression));
    }
    if let Some(comment) = &rule.comment {
        words.push(format!("comment {comment:?}"));
    }
    let key = format!("nft {} {} {} {}", rule.family, rule.table, rule.chain, rule.handle);
    ListedRule {
        rule: FirewallRule {
            tool: "nft".into(),
            family: rule.family,
            table: rule.table,
            chain: rule.chain,
            position,
            policy: false,
            handle: Some(rule.handle),
            text: words.join(" "),
            action,
            packets: None,
        },
        counter,
        key,
        conditions,
        hook: None, // set from its chain once every chain is read
    }
}

/// An `ip` table sees only IPv4, an `ip6` table only IPv6.
fn family_condition(family: &str) -> Option<Condition> {
    match family {
        "ip" => Some(Condition::Family { ipv4: true }),
        "ip6" => Some(Condition::Family { ipv4: false }),
        _ => None,
    }
}

fn statement_action(expression: &Value) -> RuleAction {
    let target = expression.pointer("/xt/name").and_then(Value::as_str);
    let is_target = expression.pointer("/xt/type").and_then(Value::as_str) == Some("target");
    if expression.get("drop").is_some() || (is_target && target == Some("DROP")) {
        RuleAction::Drop
    } else if expression.get("reject").is_some() || (is_target && target == Some("REJECT")) {
        RuleAction::Reject
    } else {
        RuleAction::Other
    }
}

/// One statement as nft writes it (`tcp dport { 82, 83 }`, `reject with tcp reset`).
fn statement_text(expression: &Value) -> String {
    let Some((name, body)) = expression.as_object().and_then(|o| o.iter().next()) else {
        return expression.to_string();
    };
    match name.as_str() {
        "match" => match_text(body),
        "counter" => "counter".into(),
        "jump" | "goto" => format!("{name} {}", text_of(&body["target"])),
        "reject" => match (body.get("type").and_then(Value::as_str), body.get("expr")) {
            (Some("tcp reset"), _) => "reject with tcp reset".into(),
            (Some(kind), Some(code)) => format!("reject with {kind} {}", text_of(code)),
            _ => "reject".into(),
        },
        "log" => match body.get("prefix") {
            Some(prefix) => format!("log prefix {:?}", text_of(prefix)),
            None => "log".into(),
        },
        "limit" => format!("limit rate {}/{}", text_of(&body["rate"]), text_of(&body["per"])),
        "xt" => format!("xt {} {}", text_of(&body["type"]), text_of(&body["name"])),
        _ if body.is_null() => name.clone(),
        _ => format!("{name} {}", text_of(body)),
    }
}

fn match_text(body: &Value) -> String {
    let left = expression_text(&body["left"]);
    let right = text_of(&body["right"]);
    let quoted = matches!(left.as_str(), "iifname" | "oifname");
    let right = if quoted { format!("{right:?}") } else { right };
    match body["op"].as_str() {
        Some("==") | Some("in") | None => format!("{left} {right}"),
        Some(op) => format!("{left} {op} {right}"),
    }
}

/// The left side of a match: `tcp dport`, `ip daddr`, `ct state`, `meta l4proto`, `iif`.
fn expression_text(expression: &Value) -> String {
    if let Some(payload) = expression.get("payload") {
        return format!("{} {}", text_of(&payload["protocol"]), text_of(&payload["field"]));
    }
    if let Some(key) = expression.pointer("/meta/key").and_then(Value::as_str) {
        return match key {
            "iif" | "oif" | "iifname" | "oifname" => key.into(),
            _ => format!("meta {key}"),
        };
    }
    if let Some(key) = expression.pointer("/ct/key").and_then(Value::as_str) {
        return format!("ct {key}");
    }
    text_of(expression)
}

/// A value as nft writes it: a number, a word, `{ 82, 83 }`, `85-90`, `10.0.0.0/8`.
fn text_of(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Number(number) => number.to_string(),
        Value::Array(items) => items.iter().map(text_of).collect::<Vec<_>>().join(","),
        Value::Object(object) => {
            if let Some(Value::Array(items)) = object.get("set") {
                let items: Vec<String> = items.iter().map(text_of).collect();
                format!("{{ {} }}", items.join(", "))
            } else if let Some(Value::Array(ends)) = object.get("range") {
                let ends: Vec<String> = ends.iter().map(text_of).collect();
                ends.join("-")
            } else if let Some(prefix) = object.get("prefix") {
                format!("{}/{}", text_of(&prefix["addr"]), text_of(&prefix["len"]))
            } else if object.contains_key("payload")
                || object.contains_key("meta")
                || object.contains_key("ct")
            {
                expression_text(value)
            } else {
                value.to_string()
            }
        }
        Value::Null => String::new(),
        Value::Bool(flag) => flag.to_string(),
    }
}

/// What a `match` says about a TCP SYN, when whyrefused understands it.
fn match_condition(body: &Value) -> Option<Condition> {
    let negated = match body["op"].as_str()? {
        "==" | "in" => false,
        "!=" => true,
        _ => return None,
    };
    let left = &body["left"];
    let right = &body["right"];
    if let Some(payload) = left.get("payload") {
        let protocol = payload["protocol"].as_str()?;
        let field = payload["field"].as_str()?;
        return match (protocol, field) {
            ("tcp" | "th", "dport") => {
                Some(Condition::DestinationPort { ranges: port_ranges(right)?, negated })
            }
            ("ip" | "ip6", "daddr" | "saddr") => Some(Condition::Address {
                networks: networks(right)?,
                negated,
                source: field == "saddr",
            }),
            ("tcp" | "th" | "ip" | "ip6", _) => None,
            _ => Some(Condition::NotTcp),
        };
    }
    let key = left.pointer("/meta/key").or_else(|| left.pointer("/ct/key"))?.as_str()?;
    match key {
        "l4proto" | "protocol" if !negated => {
            let words = words(right);
            (!words.iter().any(|w| w == "tcp" || w == "6")).then_some(Condition::NotTcp)
        }
        "state" if !negated => {
            let words = words(right);
            (!words.iter().any(|w| w == "new")).then_some(Condition::NotNew)
        }
        _ => None,
    }
}

fn words(value: &Value) -> Vec<String> {
    match value {
        Value::Array(items) => items.iter().flat_map(words).collect(),
        Value::Object(object) => object.get("set").map(words).unwrap_or_default(),
        other => vec![text_of(other)],
    }
}

/// The ports of a right side: a number, a range, a set of them. `None` for a named set.
fn port_ranges(value: &Value) -> Option<Vec<(u16, u16)>> {
    match value {
        Value::Number(number) => {
            let port = u16::try_from(number.as_u64()?).ok()?;
            Some(vec![(port, port)])
        }
        Value::Object(object) => {
            if let Some(Value::Array(items)) = object.get("set") {
                items.iter().map(port_ranges).collect::<Option<Vec<_>>>().map(|all| all.concat())
            } else if let Some(Value::Array(ends)) = object.get("range") {
                let low = u16::try_from(ends.first()?.as_u64()?).ok()?;
                let high = u16::try_from(ends.get(1)?.as_u64()?).ok()?;
                Some(vec![(low, high)])
            } else {
                None
            }
        }
        _ => None,
    }
}

/// The networks of a right side: an address, a prefix, a set of them.
fn networks(value: &Value) -> Option<Vec<ipnet::IpNet>> {
    match value {
        Value::String(text) => Some(vec![condition::network(text)?]),
        Value::Object(object) => {
            if let Some(Value::Array(items)) = object.get("set") {
                items.iter().map(networks).collect::<Option<Vec<_>>>().map(|all| all.concat())
            } else {
                condition::network(&text_of(value)).map(|network| vec![network])
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `nft -j list ruleset` of nftables 1.0.6 (Debian 12) in a lab namespace, with a native
    /// `inet filter` table and the `ip filter` table iptables-nft wrote.
    pub const LISTING: &str = include_str!("testdata/nft-ruleset.json");

    #[test]
    fn every_rule_is_named_with_its_place_text_and_counter() {
        let rules = parse(LISTING).unwrap();
        let drop81 = rules.iter().find(|r| r.rule.text == "tcp dport 81 counter drop").unwrap();
        assert_eq!(drop81.rule.place(), "inet filter input rule 2");
        assert_eq!((drop81.rule.action, drop81.counter), (RuleAction::Drop, Some(3)));
        let texts: Vec<&str> = rules.iter().map(|r| r.rule.text.as_str()).collect();
        for expected in [
            "iif lo tcp dport 22 accept",
            "tcp dport { 82, 83 } ip daddr 127.0.0.1 counter reject with tcp reset",
            "tcp dport 84 drop",
            "ct state established,related accept",
            "ip6 saddr fd00::/8 tcp dport 85-90 counter reject with icmpx admin-prohibited",
            "tcp dport 91 jump foo",
            "iifname \"eth0\" ip saddr 10.0.0.0/8 tcp dport != 92 counter drop comment \"hello\"",
            "meta l4proto tcp xt match multiport counter xt target REJECT",
        ] {
            assert!(texts.contains(&expected), "{expected} in {texts:#?}");
        }
        let xt = rules.iter().find(|r| r.rule.text.contains("xt target REJECT")).unwrap();
        assert_eq!(
            (xt.rule.action, xt.rule.place().as_str()),
            (RuleAction::Reject, "ip filter INPUT rule 2")
        );
        let policy = rules.iter().find(|r| r.rule.policy && r.rule.chain == "input").unwrap();
        assert_eq!(policy.rule.text, "hook input policy drop");
        assert_eq!(
            (policy.rule.action, policy.counter, policy.rule.position),
            (RuleAction::Drop, None, 10)
        );
    }

    #[test]
    fn a_rule_without_counter_may_match_only_its_port_and_address() {
        let rules = parse(LISTING).unwrap();
        let rule = |text: &str| rules.iter().find(|r| r.rule.text == text).unwrap();
        let may = |text: &str, probe: &str| {
            condition::may_match(&rule(text).conditions, probe.parse().unwrap())
        };
        assert!(may("tcp dport 84 drop", "127.0.0.1:84"));
        assert!(!may("tcp dport 84 drop", "127.0.0.1:85"));
        let reject = "tcp dport { 82, 83 } ip daddr 127.0.0.1 counter reject with tcp reset";
        assert!(may(reject, "127.0.0.1:83"));
        assert!(!may(reject, "10.0.0.1:83"), "another address");
        let v6 = "ip6 saddr fd00::/8 tcp dport 85-90 counter reject with icmpx admin-prohibited";
        assert!(may(v6, "[fd00::2]:86"));
        assert!(!may(v6, "10.0.0.1:86"), "an IPv4 probe has no ip6 saddr");
        assert!(!may("meta l4proto udp reject with icmpx port-unreachable", "10.0.0.1:53"));
        assert!(!may("ct state established,related accept", "10.0.0.1:53"));
    }

    #[test]
    fn malformed_listings_are_errors() {
        assert!(parse("{").is_err());
        assert!(parse("{\"nftables\": [{\"rule\": {\"family\": 1}}]}").is_err());
        assert!(parse("{\"nftables\": [{\"metainfo\": {}}]}").unwrap().is_empty());
    }
}
