//! A scan's ports grouped as `whyrefused scan` groups them: by connect state, with the refused
//! ports an ICMP error answered ("rejected", a firewall's REJECT) apart from the plain resets
//! ("closed", nothing listens).

use whyrefused_shared::{ConnectState, PortResult, ScanReport};

/// One group of a scan's summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PortGroup {
    /// Something listens.
    Open,
    /// A reset answered: nothing listens.
    Closed,
    /// An ICMP port-unreachable answered: a firewall's REJECT.
    Rejected,
    /// No answer, even when tried again: a firewall drops it.
    Filtered,
    /// An ICMP error or no neighbour answer.
    HostUnreachable,
    /// No route.
    NetworkUnreachable,
    /// This host's own firewall forbade the connect.
    DeniedHere,
    /// Reset during the handshake.
    Reset,
    /// Another error.
    Error,
}

impl PortGroup {
    /// Every group, in the order the summary lists them (the CLI's order).
    pub const ALL: [PortGroup; 9] = [
        PortGroup::Open,
        PortGroup::Closed,
        PortGroup::Rejected,
        PortGroup::Filtered,
        PortGroup::HostUnreachable,
        PortGroup::NetworkUnreachable,
        PortGroup::DeniedHere,
        PortGroup::Reset,
        PortGroup::Error,
    ];

    /// The group a port's result belongs to.
    pub fn of(result: &PortResult) -> PortGroup {
        match (result.state, &result.icmp) {
            (ConnectState::Refused, Some(_)) => PortGroup::Rejected,
            (state, _) => PortGroup::from_state(state),
        }
    }

    /// The group of a state when no ICMP error is known (a refused port is closed).
    pub fn from_state(state: ConnectState) -> PortGroup {
        match state {
            ConnectState::Open => PortGroup::Open,
            ConnectState::Refused => PortGroup::Closed,
            ConnectState::Timeout => PortGroup::Filtered,
            ConnectState::HostUnreachable => PortGroup::HostUnreachable,
            ConnectState::NetworkUnreachable => PortGroup::NetworkUnreachable,
            ConnectState::PermissionDenied => PortGroup::DeniedHere,
            ConnectState::Reset => PortGroup::Reset,
            ConnectState::Error => PortGroup::Error,
        }
    }

    /// Its position in [`PortGroup::ALL`], for per-group arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The name used in `data-state` and CSS (`host_unreachable`).
    pub fn as_str(self) -> &'static str {
        match self {
            PortGroup::Open => "open",
            PortGroup::Closed => "closed",
            PortGroup::Rejected => "rejected",
            PortGroup::Filtered => "filtered",
            PortGroup::HostUnreachable => "host_unreachable",
            PortGroup::NetworkUnreachable => "network_unreachable",
            PortGroup::DeniedHere => "denied",
            PortGroup::Reset => "reset",
            PortGroup::Error => "error",
        }
    }

    /// The heading people read (`host unreachable`).
    pub fn label(self) -> &'static str {
        match self {
            PortGroup::Open => "open",
            PortGroup::Closed => "closed",
            PortGroup::Rejected => "rejected",
            PortGroup::Filtered => "filtered",
            PortGroup::HostUnreachable => "host unreachable",
            PortGroup::NetworkUnreachable => "network unreachable",
            PortGroup::DeniedHere => "denied here",
            PortGroup::Reset => "reset",
            PortGroup::Error => "error",
        }
    }

    /// What the group means, in a few words.
    pub fn meaning(self) -> &'static str {
        match self {
            PortGroup::Open => "something listens",
            PortGroup::Closed => "a reset: nothing listens",
            PortGroup::Rejected => "an ICMP port-unreachable: a firewall's REJECT",
            PortGroup::Filtered => "no answer, even when tried again: a firewall drops it",
            PortGroup::HostUnreachable => "an ICMP error or no neighbour answer",
            PortGroup::NetworkUnreachable => "no route",
            PortGroup::DeniedHere => "this host's own firewall",
            PortGroup::Reset => "reset during the handshake",
            PortGroup::Error => "another error",
        }
    }
}

/// How many ports of a scan are in each group so far, indexed by [`PortGroup::index`].
pub fn group_counts(report: &ScanReport) -> [u64; PortGroup::ALL.len()] {
    let rejected = report.results.iter().filter(|r| PortGroup::of(r) == PortGroup::Rejected);
    let rejected = rejected.count() as u64;
    let mut counts = [0; PortGroup::ALL.len()];
    for state in ConnectState::ALL {
        counts[PortGroup::from_state(state).index()] += report.counts.get(state);
    }
    counts[PortGroup::Closed.index()] -= rejected.min(counts[PortGroup::Closed.index()]);
    counts[PortGroup::Rejected.index()] = rejected;
    counts
}

#[cfg(test)]
pub(crate) mod tests {
    use whyrefused_shared::{IcmpError, StateCounts};

    use super::*;

    /// A result on 127.0.0.1.
    pub fn result(port: u16, state: ConnectState) -> PortResult {
        PortResult {
            address: "127.0.0.1".parse().unwrap(),
            port,
            state,
            errno: None,
            icmp: None,
            elapsed_us: 120,
            tries: 1,
            service: None,
        }
    }

    /// A refused result that an ICMP port-unreachable from the target answered.
    pub fn rejected(port: u16) -> PortResult {
        PortResult {
            icmp: Some(IcmpError {
                icmp_type: 3,
                code: 3,
                meaning: "port unreachable".into(),
                from: "127.0.0.1".parse().unwrap(),
                from_local: false,
            }),
            ..result(port, ConnectState::Refused)
        }
    }

    #[test]
    fn refused_with_an_icmp_error_is_rejected_and_without_one_closed() {
        assert_eq!(PortGroup::of(&rejected(80)), PortGroup::Rejected);
        assert_eq!(PortGroup::of(&result(80, ConnectState::Refused)), PortGroup::Closed);
        assert_eq!(PortGroup::of(&result(80, ConnectState::Timeout)), PortGroup::Filtered);
        for (index, group) in PortGroup::ALL.into_iter().enumerate() {
            assert_eq!(group.index(), index);
        }
    }

    #[test]
    fn counts_split_the_refused_ports_into_closed_and_rejected() {
        let report = ScanReport {
            counts: StateCounts { open: 2, refused: 10, timeout: 3, ..StateCounts::default() },
            results: vec![result(22, ConnectState::Open), rejected(23), rejected(24)],
            ..ScanReport::default()
        };
        let counts = group_counts(&report);
        assert_eq!(counts[PortGroup::Open.index()], 2);
        assert_eq!(counts[PortGroup::Closed.index()], 8);
        assert_eq!(counts[PortGroup::Rejected.index()], 2);
        assert_eq!(counts[PortGroup::Filtered.index()], 3);
        assert_eq!(counts.iter().sum::<u64>(), report.counts.total());
    }
}
