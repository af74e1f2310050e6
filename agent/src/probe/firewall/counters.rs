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

/// Where a counter is: a rule by its handle (as nft lists it) or by its place from 1 (as
/// iptables-save lists it), or a chain's policy.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Slot {
    Handle(u64),
    Position(u32),
    Policy,
}

/// A counter's family (`ip`, `inet`...), table, chain and slot.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CounterKey {
    pub family: String,
    pub table: String,
    pub chain: String,
    pub slot: Slot,
}

/// Every counter of this network namespace's nf_tables ruleset, at one moment.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counters(HashMap<CounterKey, u64>);

impl Counters {
    /// The counter of a listed rule, found by the same handle or place its listing gave.
    pub fn of(&self, listed: &ListedRule) -> Option<u64> {
        self.0.get(&key_of(listed)?).copied()
    }

    /// The listed rules with these counters in place of the ones their listing read.
    pub fn applied_to(&self, rules: &[ListedRule]) -> Vec<ListedRule> {
        rules.iter().map(|r| ListedRule { counter: self.of(r), ..r.clone() }).collect()
    }
}

/// Where a listed rule's counter is kept by nf_tables; `None` for iptables-legacy's rules,
/// which live outside it.
fn key_of(listed: &ListedRule) -> Option<CounterKey> {
    let rule = &listed.rule;
    let slot = match (rule.tool.as_str(), rule.policy, rule.handle) {
        (tool, _, _) if tool.ends_with("-legacy") => return None,
        (_, true, _) => Slot::Policy,
        ("nft", false, Some(handle)) => Slot::Handle(handle),
        ("nft", false, None) => return None,
        (_, false, _) => Slot::Position(rule.position),
    };
    Some(CounterKey {
        family: rule.family.clone(),
        table: rule.table.clone(),
        chain: rule.chain.clone(),
        slot,
    })
}

/// Reads every counter: the rules' and the chains' policies.
pub fn read() -> Result<Counters, NetlinkError> {
    let mut collector = Collector::default();
    dump(GET_RULE, |kind, body| collector.take(kind, body))?;
    dump(GET_CHAIN, |kind, body| collector.take(kind, body))?;
    Ok(collector.counters)
}

/// The counters of a dump's answers, as they arrive, with each chain's rules counted so far.
#[derive(Default)]
struct Collector {
    counters: Counters,
    places: HashMap<(String, String, String), u32>,
}

impl Collector {
    fn take(&mut self, kind: u16, body: &[u8]) {
        if kind == NFTABLES | NEW_RULE
            && let Some(rule) = rule_counter(body)
        {
            let chain = (rule.family.clone(), rule.table.clone(), rule.chain.clone());
            let position = *self.places.entry(chain).and_modify(|p| *p += 1).or_insert(1);
            self.counters.insert(rule, position);
        }
        if kind == NFTABLES | NEW_CHAIN
            && let Some((key, packets)) = policy_counter(body)
        {
            self.counters.0.insert(key, packets);
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

/// One rule's place and counter, as a dump names it.
#[derive(Debug, PartialEq, Eq)]
struct RuleCounter {
    family: String,
    table: String,
    chain: String,
    handle: u64,
    packets: Option<u64>,
}

impl Counters {
    /// Keeps a rule's counter under its handle and under its place in its chain.
    fn insert(&mut self, rule: RuleCounter, position: u32) {
        let Some(packets) = rule.packets else { return };
        let key = |slot| CounterKey {
            family: rule.family.clone(),
            table: rule.table.clone(),
            chain: rule.chain.clone(),
            slot,
        };
        self.0.insert(key(Slot::Handle(rule.handle)), packets);
        self.0.insert(key(Slot::Position(position)), packets);
    }
}

/// A `NFT_MSG_NEWRULE` message's rule: where it is and its counter expression's packets.
fn rule_counter(body: &[u8]) -> Option<RuleCounter> {
    let family = family_name(*body.first()?)?;
    let mut rule = RuleCounter {
        family: family.into(),
        table: String::new(),
        chain: String::new(),
        handle: 0,
        packets: None,
    };
    for (kind, value) in netlink::attributes(body.get(GENERIC_HEADER..)?) {
        match kind {
            RULE_TABLE => rule.table = netlink::string(value),
            RULE_CHAIN => rule.chain = netlink::string(value),
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
            let mut name = String::new();
            let mut data: &[u8] = &[];
            for (kind, value) in netlink::attributes(element) {
                match kind {
                    EXPRESSION_NAME => name = netlink::string(value),
                    EXPRESSION_DATA => data = value,
                    _ => {}
                }
            }
            (name == "counter").then(|| packets(data)).flatten()
        },
    )
}

/// A base chain's policy counter, when it keeps one.
fn policy_counter(body: &[u8]) -> Option<(CounterKey, u64)> {
    let family = family_name(*body.first()?)?;
    let (mut table, mut chain, mut counted) = (String::new(), String::new(), None);
    for (kind, value) in netlink::attributes(body.get(GENERIC_HEADER..)?) {
        match kind {
            CHAIN_TABLE => table = netlink::string(value),
            CHAIN_NAME => chain = netlink::string(value),
            CHAIN_COUNTERS => counted = packets(value),
            _ => {}
        }
    }
    let key = CounterKey { family: family.into(), table, chain, slot: Slot::Policy };
    Some((key, counted?))
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
        let mut collector = Collector::default();
        let mut take = |kind: u16, body: &[u8]| collector.take(kind, body);
        netlink::read_messages(include_bytes!("testdata/nft-rules.netlink"), &mut take).unwrap();
        netlink::read_messages(include_bytes!("testdata/nft-chains.netlink"), &mut take).unwrap();
        collector.counters
    }

    #[test]
    fn a_real_dump_gives_each_counted_rule_by_handle_and_by_place() {
        let counters = lab_counters();
        let at = |family: &str, table: &str, chain: &str, slot| {
            let key = CounterKey {
                family: family.into(),
                table: table.into(),
                chain: chain.into(),
                slot,
            };
            counters.0.get(&key).copied()
        };
        assert_eq!(at("inet", "filter", "input", Slot::Handle(2)), Some(2), "port 81, twice");
        assert_eq!(at("inet", "filter", "input", Slot::Handle(3)), None, "no counter");
        assert_eq!(at("inet", "filter", "input", Slot::Handle(4)), Some(1));
        assert_eq!(at("ip", "filter", "INPUT", Slot::Position(1)), Some(1), "port 86");
        assert_eq!(at("ip", "filter", "INPUT", Slot::Position(2)), Some(1), "port 87");
        assert_eq!(at("ip", "filter", "FORWARD", Slot::Policy), Some(0), "iptables' policy");
        assert_eq!(at("inet", "filter", "input", Slot::Policy), None, "nft keeps none");
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
        assert!(legacy.iter().all(|rule| key_of(rule).is_none()));
    }
}
