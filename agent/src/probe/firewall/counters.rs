//! nf_tables' packet counters read straight from the kernel over netlink (what `nft` itself
//! asks, without writing the ruleset out as text): every rule's counter by its handle and by its
//! place in its chain, and each base chain's policy counter where it has one (iptables-nft keeps
//! one). About a millisecond for a thousand rules, where a listing takes tens: the rule probe
//! reads these twice around its SYN, and the slow listing, which names the rules, runs once
//! beside the probe.
//!
//! The messages are laid out as `linux/netfilter/nf_tables.h` says.

use std::collections::HashMap;

use nix::sys::socket::SockProtocol;

use super::ListedRule;
use crate::probe::netlink::{self, NetlinkError};

/// `NFNL_SUBSYS_NFTABLES`: the high byte of every nf_tables message type.
const NFTABLES: u16 = 10 << 8;
/// `NFT_MSG_GETCHAIN`, `NFT_MSG_NEWCHAIN`, `NFT_MSG_GETRULE`, `NFT_MSG_NEWRULE`,
/// `NFT_MSG_GETGEN` and `NFT_MSG_NEWGEN`.
const GET_CHAIN: u16 = 4;
const NEW_CHAIN: u16 = 3;
const GET_RULE: u16 = 7;
const NEW_RULE: u16 = 6;
const GET_GENERATION: u16 = 16;
const NEW_GENERATION: u16 = 15;
/// The size of `struct nfgenmsg`, before each message's attributes.
const GENERIC_HEADER: usize = 4;

/// `NFTA_RULE_*`, `NFTA_CHAIN_*`, `NFTA_LIST_ELEM`, `NFTA_EXPR_*`, `NFTA_COUNTER_PACKETS`
/// and `NFTA_GEN_ID`.
const RULE_TABLE: u16 = 1;
const RULE_CHAIN: u16 = 2;
const RULE_HANDLE: u16 = 3;
const RULE_EXPRESSIONS: u16 = 4;
const CHAIN_TABLE: u16 = 1;
const CHAIN_NAME: u16 = 3;
const CHAIN_COUNTERS: u16 = 8;
const LIST_ELEMENT: u16 = 1;
const EXPRESSION_NAME: u16 = 1;
const EXPRESSION_DATA: u16 = 2;
const COUNTER_PACKETS: u16 = 2;
const GENERATION_ID: u16 = 1;

/// One chain's counters: each rule's by its handle (as nft lists it) and in order (as
/// iptables-save lists it, by place), and its policy's when it keeps one.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct ChainCounters {
    by_handle: HashMap<u64, u64>,
    in_order: Vec<Option<u64>>,
    policy: Option<u64>,
}

/// Every counter of this network namespace's nf_tables ruleset, at one moment, by family,
/// table and chain (names are kept once per chain: a dump of thousands of rules allocates
/// little).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counters(HashMap<&'static str, HashMap<String, HashMap<String, ChainCounters>>>);

impl Counters {
    /// The counter of a listed rule, found by the same handle or place its listing gave;
    /// `None` for iptables-legacy's rules, which live outside nf_tables.
    pub fn of(&self, listed: &ListedRule) -> Option<u64> {
        let rule = &listed.rule;
        if rule.tool.ends_with("-legacy") {
            return None;
        }
        let chain = self.0.get(rule.family.as_str())?.get(&rule.table)?.get(&rule.chain)?;
        match (rule.tool.as_str(), rule.policy, rule.handle) {
            (_, true, _) => chain.policy,
            ("nft", false, handle) => chain.by_handle.get(&handle?).copied(),
            (_, false, _) => *chain.in_order.get(rule.position.checked_sub(1)? as usize)?,
        }
    }

    /// The listed rules with these counters in place of the ones their listing read.
    pub fn applied_to(&self, rules: &[ListedRule]) -> Vec<ListedRule> {
        rules.iter().map(|r| ListedRule { counter: self.of(r), ..r.clone() }).collect()
    }

    fn chain_mut(&mut self, family: &'static str, table: &str, chain: &str) -> &mut ChainCounters {
        let tables = self.0.entry(family).or_default();
        if !tables.contains_key(table) {
            tables.insert(table.to_string(), HashMap::new());
        }
        let chains = tables.get_mut(table).expect("inserted above");
        if !chains.contains_key(chain) {
            chains.insert(chain.to_string(), ChainCounters::default());
        }
        chains.get_mut(chain).expect("inserted above")
    }
}

/// Reads every counter: the rules' and the chains' policies.
pub fn read() -> Result<Counters, NetlinkError> {
    let mut counters = Counters::default();
    dump(GET_RULE, |kind, body| counters.take(kind, body))?;
    dump(GET_CHAIN, |kind, body| counters.take(kind, body))?;
    Ok(counters)
}

impl Counters {
    /// Keeps what one answer of a dump says: a rule's counter, or a chain's policy counter.
    fn take(&mut self, kind: u16, body: &[u8]) {
        if kind == NFTABLES | NEW_RULE
            && let Some(rule) = rule_counter(body)
        {
            let chain = self.chain_mut(rule.family, rule.table, rule.chain);
            chain.in_order.push(rule.packets);
            if let Some(packets) = rule.packets {
                chain.by_handle.insert(rule.handle, packets);
            }
        }
        if kind == NFTABLES | NEW_CHAIN
            && let Some(policy) = policy_counter(body)
        {
            self.chain_mut(policy.family, policy.table, policy.chain).policy = Some(policy.packets);
        }
    }
}

/// The ruleset's generation: nf_tables counts every change to it, so two equal generations
/// mean the same rules (their counters aside).
pub fn generation() -> Result<u32, NetlinkError> {
    let mut found = None;
    let request = netlink::request(NFTABLES | GET_GENERATION, netlink::REQUEST, &[0; 4]);
    netlink::ask(SockProtocol::NetlinkNetFilter, &request, |kind, body| {
        if kind == NFTABLES | NEW_GENERATION {
            found = generation_id(body);
        }
    })?;
    found.ok_or(NetlinkError::Malformed)
}

fn dump(kind: u16, each: impl FnMut(u16, &[u8])) -> Result<(), NetlinkError> {
    // Every family (NFPROTO_UNSPEC), version 0, no resource id.
    let request = netlink::request(NFTABLES | kind, netlink::DUMP_REQUEST, &[0; 4]);
    netlink::ask(SockProtocol::NetlinkNetFilter, &request, each)
}

/// One rule's place and counter, as a dump names it (borrowed from the answer).
#[derive(Debug, PartialEq, Eq)]
struct RuleCounter<'a> {
    family: &'static str,
    table: &'a str,
    chain: &'a str,
    handle: u64,
    packets: Option<u64>,
}

/// A `NFT_MSG_NEWRULE` message's rule: where it is and its counter expression's packets.
fn rule_counter(body: &[u8]) -> Option<RuleCounter<'_>> {
    let mut rule = RuleCounter {
        family: family_name(*body.first()?)?,
        table: "",
        chain: "",
        handle: 0,
        packets: None,
    };
    for (kind, value) in netlink::attributes(body.get(GENERIC_HEADER..)?) {
        match kind {
            RULE_TABLE => rule.table = netlink::str(value)?,
            RULE_CHAIN => rule.chain = netlink::str(value)?,
            RULE_HANDLE => rule.handle = netlink::be_u64(value)?,
            RULE_EXPRESSIONS => rule.packets = counter_expression(value),
            _ => {}
        }
    }
    Some(rule)
}

/// The packets of the first `counter` expression among a rule's expressions.
fn counter_expression(expressions: &[u8]) -> Option<u64> {
    netlink::attributes(expressions).filter(|(kind, _)| *kind == LIST_ELEMENT).find_map(
        |(_, element)| {
            let mut name = "";
            let mut data: &[u8] = &[];
            for (kind, value) in netlink::attributes(element) {
                match kind {
                    EXPRESSION_NAME => name = netlink::str(value).unwrap_or_default(),
                    EXPRESSION_DATA => data = value,
                    _ => {}
                }
            }
            (name == "counter").then(|| packets(data)).flatten()
        },
    )
}

/// A base chain's policy counter (borrowed from the answer).
struct PolicyCounter<'a> {
    family: &'static str,
    table: &'a str,
    chain: &'a str,
    packets: u64,
}

/// A `NFT_MSG_NEWCHAIN` message's policy counter, when the chain keeps one.
fn policy_counter(body: &[u8]) -> Option<PolicyCounter<'_>> {
    let family = family_name(*body.first()?)?;
    let (mut table, mut chain, mut counted) = ("", "", None);
    for (kind, value) in netlink::attributes(body.get(GENERIC_HEADER..)?) {
        match kind {
            CHAIN_TABLE => table = netlink::str(value)?,
            CHAIN_NAME => chain = netlink::str(value)?,
            CHAIN_COUNTERS => counted = packets(value),
            _ => {}
        }
    }
    Some(PolicyCounter { family, table, chain, packets: counted? })
}

/// `NFTA_COUNTER_PACKETS` of a counter's attributes.
fn packets(counter: &[u8]) -> Option<u64> {
    netlink::attributes(counter)
        .find(|(kind, _)| *kind == COUNTER_PACKETS)
        .and_then(|(_, value)| netlink::be_u64(value))
}

fn generation_id(body: &[u8]) -> Option<u32> {
    let (_, value) = netlink::attributes(body.get(GENERIC_HEADER..)?)
        .find(|(kind, _)| *kind == GENERATION_ID)?;
    Some(u32::from_be_bytes(value.get(..4)?.try_into().ok()?))
}

/// The family's name as nft writes it, from its `NFPROTO_*` number.
fn family_name(number: u8) -> Option<&'static str> {
    Some(match number {
        1 => "inet",
        2 => "ip",
        3 => "arp",
        5 => "netdev",
        7 => "bridge",
        10 => "ip6",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::firewall::{iptables, nft};

    /// The answers of a real dump, captured in a namespace holding an iptables-nft `ip filter`
    /// table (FORWARD policy DROP; INPUT: port 86 DROP, port 87 REJECT) and a native `inet
    /// filter input` chain (port 81 counter reject, port 84 drop without a counter, port 82
    /// counter drop), after SYNs to 86, 87, 81 twice and 82.
    fn lab_counters() -> Counters {
        let mut counters = Counters::default();
        let mut take = |kind: u16, body: &[u8]| counters.take(kind, body);
        netlink::read_messages(include_bytes!("testdata/nft-rules.netlink"), &mut take).unwrap();
        netlink::read_messages(include_bytes!("testdata/nft-chains.netlink"), &mut take).unwrap();
        counters
    }

    #[test]
    fn a_real_dump_gives_each_counted_rule_by_handle_and_by_place() {
        let counters = lab_counters();
        let chain = |family: &str, table: &str, chain: &str| {
            counters.0.get(family).and_then(|t| t.get(table)).and_then(|c| c.get(chain)).unwrap()
        };
        let input = chain("inet", "filter", "input");
        assert_eq!(input.by_handle.get(&2), Some(&2), "port 81, twice");
        assert_eq!(input.by_handle.get(&3), None, "port 84: no counter");
        assert_eq!(input.by_handle.get(&4), Some(&1));
        assert_eq!(input.in_order, [Some(2), None, Some(1)]);
        assert_eq!(input.policy, None, "nft keeps none");
        assert_eq!(chain("ip", "filter", "INPUT").in_order, [Some(1), Some(1)], "ports 86, 87");
        assert_eq!(chain("ip", "filter", "FORWARD").policy, Some(0), "iptables' policy");
    }

    #[test]
    fn the_listings_rules_find_their_counters() {
        let counters = lab_counters();
        let listed = nft::parse(include_str!("testdata/netlink-lab-nft.json")).unwrap();
        let found: Vec<(String, Option<u64>)> = counters
            .applied_to(&listed)
            .iter()
            .filter(|r| r.rule.family == "inet")
            .map(|r| (r.rule.place(), r.counter))
            .collect();
        let expected = [
            ("inet filter input rule 1", Some(2)),
            ("inet filter input rule 2", None),
            ("inet filter input rule 3", Some(1)),
            ("inet filter input policy", None),
        ];
        assert_eq!(found, expected.map(|(place, packets)| (place.to_string(), packets)));
        let saved = include_str!("testdata/netlink-lab-iptables-nft-save.txt");
        // nf_tables keeps a policy counter only for a stopping policy (FORWARD DROP here).
        for rule in iptables::parse("iptables", saved).iter().filter(|r| r.rule.action.stops()) {
            assert_eq!(
                counters.of(rule),
                rule.counter,
                "{} as iptables-save counts it",
                rule.rule.place()
            );
        }
    }

    #[test]
    fn the_generation_is_read_from_its_answer() {
        let mut found = None;
        let mut each = |kind: u16, body: &[u8]| {
            if kind == NFTABLES | NEW_GENERATION {
                found = generation_id(body);
            }
        };
        netlink::read_messages(include_bytes!("testdata/nft-gen.netlink"), &mut each).unwrap();
        assert!(found.is_some_and(|generation| generation > 0), "{found:?}");
    }

    #[test]
    fn legacy_rules_have_no_netfilter_counter() {
        let legacy =
            iptables::parse("iptables-legacy", include_str!("testdata/iptables-legacy-save.txt"));
        assert!(legacy.iter().all(|rule| lab_counters().of(rule).is_none()));
    }
}
