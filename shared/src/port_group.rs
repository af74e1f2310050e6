//! The groups a scan's ports are summarised in, one heading each, shared by `whyrefused scan`
//! and the page so both say the same words in the same colours.
//!
//! Grouped by connect state, with the refused ports an ICMP error answered ("rejected", a
//! firewall's REJECT) apart from the plain resets ("closed", nothing listens).

use crate::check::{ConnectState, Severity};
use crate::scan::{PortResult, ScanReport};

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
    /// Every group, in the order a summary lists them.
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

    /// How bad the group is, for its colour: as bad as its connect state, except that closed
    /// ports are the expected bulk of a scan (neutral) while a firewall's REJECT stays bad.
    pub fn severity(self) -> Severity {
        match self {
            PortGroup::Open => ConnectState::Open.severity(),
            PortGroup::Closed => Severity::Neutral,
            PortGroup::Rejected => ConnectState::Refused.severity(),
            PortGroup::Filtered => ConnectState::Timeout.severity(),
            PortGroup::HostUnreachable => ConnectState::HostUnreachable.severity(),
            PortGroup::NetworkUnreachable => ConnectState::NetworkUnreachable.severity(),
            PortGroup::DeniedHere => ConnectState::PermissionDenied.severity(),
            PortGroup::Reset => ConnectState::Reset.severity(),
            PortGroup::Error => ConnectState::Error.severity(),
        }
    }
}

impl ScanReport {
    /// How many ports of the scan are in each group so far, indexed by [`PortGroup::index`]:
    /// the refused ports split into closed and rejected by the results that carry an ICMP error.
    pub fn group_counts(&self) -> [u64; PortGroup::ALL.len()] {
        let rejected = self.results.iter().filter(|r| PortGroup::of(r) == PortGroup::Rejected);
        let rejected = rejected.count() as u64;
        let mut counts = [0; PortGroup::ALL.len()];
        for state in ConnectState::ALL {
            counts[PortGroup::from_state(state).index()] += self.counts.get(state);
        }
        let closed = &mut counts[PortGroup::Closed.index()];
        *closed -= rejected.min(*closed);
        counts[PortGroup::Rejected.index()] = rejected;
        counts
    }

    /// The results in one group, in address then port order.
    pub fn in_group(&self, group: PortGroup) -> impl Iterator<Item = &PortResult> {
        self.results.iter().filter(move |result| PortGroup::of(result) == group)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Cause;
    use crate::diagnosis::IcmpError;
    use crate::scan::StateCounts;

    fn result(port: u16, state: ConnectState) -> PortResult {
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

    fn rejected(port: u16) -> PortResult {
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
        let counts = report.group_counts();
        assert_eq!(counts[PortGroup::Open.index()], 2);
        assert_eq!(counts[PortGroup::Closed.index()], 8);
        assert_eq!(counts[PortGroup::Rejected.index()], 2);
        assert_eq!(counts[PortGroup::Filtered.index()], 3);
        assert_eq!(counts.iter().sum::<u64>(), report.counts.total());
        assert_eq!(report.in_group(PortGroup::Rejected).count(), 2);
    }

    #[test]
    fn open_is_good_closed_neutral_filtered_a_warning_and_every_other_group_bad() {
        for group in PortGroup::ALL {
            let expected = match group {
                PortGroup::Open => Severity::Good,
                PortGroup::Closed => Severity::Neutral,
                PortGroup::Filtered => Severity::Warning,
                _ => Severity::Bad,
            };
            assert_eq!(group.severity(), expected, "{group:?}");
        }
    }

    #[test]
    fn only_reachable_is_good_and_only_what_proves_nothing_broken_a_warning() {
        for cause in Cause::ALL.into_iter().chain([Cause::Unknown]) {
            let expected = match cause {
                Cause::Reachable => Severity::Good,
                Cause::Partial | Cause::PolicyDenied | Cause::Unknown => Severity::Warning,
                _ => Severity::Bad,
            };
            assert_eq!(cause.severity(), expected, "{cause:?}");
        }
    }
}
