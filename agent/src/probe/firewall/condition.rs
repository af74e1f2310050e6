//! What a rule matches on, as far as whyrefused understands it: enough to tell whether a rule
//! without a counter could have matched a probe (a TCP SYN from this host to one of its own
//! addresses and a port), or whether a forwarding rule could have matched another host's SYN to
//! a destination. Anything not understood may match.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

/// One condition of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// The TCP destination port is (or, `negated`, is not) one of these ranges.
    DestinationPort { ranges: Vec<(u16, u16)>, negated: bool },
    /// The destination (or, `source`, the source) address is (or is not) in one of these
    /// networks.
    Address { networks: Vec<IpNet>, negated: bool, source: bool },
    /// The packet is IPv4 (`true`) or IPv6 (`false`) only: an `ip` match, an `ip6` table.
    Family { ipv4: bool },
    /// A protocol other than TCP (`udp dport 53`, `meta l4proto icmp`): never a TCP SYN.
    NotTcp,
    /// Connection-tracking states that never hold a new connection's SYN
    /// (`ct state established,related`).
    NotNew,
}

impl Condition {
    /// Whether a SYN to `probe` (from the same address: a connect to this host's own address
    /// comes from it) can satisfy this condition.
    pub fn may_match(&self, probe: SocketAddr) -> bool {
        let ip = probe.ip().to_canonical();
        match self {
            Condition::DestinationPort { ranges, negated } => {
                let inside =
                    ranges.iter().any(|(low, high)| (*low..=*high).contains(&probe.port()));
                inside != *negated
            }
            Condition::Address { networks, negated, .. } => {
                let inside = networks.iter().any(|network| network.contains(&ip));
                inside != *negated
            }
            Condition::Family { ipv4 } => ip.is_ipv4() == *ipv4,
            Condition::NotTcp | Condition::NotNew => false,
        }
    }
}

/// Whether every condition may hold for a SYN to `probe`.
pub fn may_match(conditions: &[Condition], probe: SocketAddr) -> bool {
    conditions.iter().all(|condition| condition.may_match(probe))
}

/// Whether every condition may hold for a SYN another host sent to `destination` through this
/// one: its source is not known here, so a source address may match.
pub fn may_match_forwarded(conditions: &[Condition], destination: SocketAddr) -> bool {
    conditions.iter().all(|condition| match condition {
        Condition::Address { source: true, .. } => true,
        condition => condition.may_match(destination),
    })
}

/// `10.0.0.0/8`, `fd00::/8` or a bare address (a host route).
pub fn network(text: &str) -> Option<IpNet> {
    text.parse::<IpNet>().ok().or_else(|| text.parse::<IpAddr>().ok().map(IpNet::from))
}

/// `81`, `85:90` (iptables) or `85-90` (nftables).
pub fn port_range(text: &str) -> Option<(u16, u16)> {
    match text.split_once([':', '-']) {
        Some((low, high)) => Some((low.parse().ok()?, high.parse().ok()?)),
        None => text.parse().ok().map(|port| (port, port)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_addresses_and_protocols_decide_a_match() {
        let probe: SocketAddr = "10.9.0.2:81".parse().unwrap();
        let port =
            |ranges: Vec<(u16, u16)>, negated| Condition::DestinationPort { ranges, negated };
        assert!(port(vec![(81, 81)], false).may_match(probe));
        assert!(!port(vec![(81, 81)], true).may_match(probe));
        assert!(port(vec![(80, 90)], false).may_match(probe));
        let networks = vec![network("10.0.0.0/8").unwrap()];
        assert!(Condition::Address { networks, negated: false, source: false }.may_match(probe));
        assert!(!Condition::Family { ipv4: false }.may_match(probe));
        assert!(!Condition::NotTcp.may_match(probe));
        assert_eq!(port_range("85:90"), Some((85, 90)));
        assert_eq!(port_range("85-90"), Some((85, 90)));
        assert_eq!(network("::1"), Some("::1/128".parse().unwrap()));
    }

    #[test]
    fn a_forwarded_syn_matches_any_source_but_only_its_destination() {
        let destination: SocketAddr = "10.7.3.2:80".parse().unwrap();
        let from = |text: &str, source| Condition::Address {
            networks: vec![network(text).unwrap()],
            negated: false,
            source,
        };
        let port = Condition::DestinationPort { ranges: vec![(80, 80)], negated: false };
        // `-s 10.7.2.2 --dport 80`: the source is another host's, unknown here.
        assert!(may_match_forwarded(&[from("10.7.2.2", true), port.clone()], destination));
        assert!(!may_match(&[from("10.7.2.2", true), port.clone()], destination));
        // `-d 10.7.9.0/24`: another destination.
        assert!(!may_match_forwarded(&[from("10.7.9.0/24", false), port], destination));
    }
}
