//! Vantage points: the places a hub can run a request from, and the cross-vantage verdict that
//! compares what each of them saw.
//!
//! A hub is any agent; it is itself the vantage point [`LOCAL_VANTAGE`], and every agent that
//! joined it (`whyrefused serve --join`) is another, under its own name. A request with `from`
//! runs at each one named; once every one has finished, the hub compares their reports (in the
//! agent's `verdict::cross`) into one [`CrossVerdict`]: the same everywhere, a firewall between
//! two places, a service bound to loopback, or split-horizon DNS. This module holds only the
//! types both sides read.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::check::{Cause, Outcome, Timestamp};
use crate::host::FirewallMatch;

/// The name of the hub itself as a vantage point.
pub const LOCAL_VANTAGE: &str = "local";

/// In a request's `from`: every online vantage point, the hub included.
pub const ALL_VANTAGES: &str = "all";

/// One vantage point as a hub lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VantageInfo {
    /// Its name (`local` for the hub itself).
    pub name: String,
    /// Whether its link to the hub is up (pings arrive).
    pub online: bool,
    /// Its agent's package version.
    pub version: String,
    /// The host name of the machine it runs on.
    pub hostname: String,
    /// The addresses of its network interfaces, as it reported them.
    #[serde(default)]
    pub addresses: Vec<IpAddr>,
    /// When the hub last heard from it (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<Timestamp>,
    /// Since when its current (or last) link is up (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connected_since: Option<Timestamp>,
}

/// What a list of vantage points says of `agent`'s version when it is not the hub's (`local`'s,
/// first in the list): a joined agent of another version still runs requests (a different
/// protocol version is refused when it joins), but may see or say things differently.
pub fn version_warning(list: &[VantageInfo], agent: &VantageInfo) -> Option<String> {
    let hub = list.iter().find(|info| info.name == LOCAL_VANTAGE)?;
    (agent.name != LOCAL_VANTAGE && agent.version != hub.version).then(|| {
        format!(
            "{} runs whyrefused {}, the hub {}: install the same version on both",
            agent.name,
            agent.version.escape_debug(),
            hub.version.escape_debug()
        )
    })
}

/// The pattern across vantage points. The vocabulary is stable: programs may match on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrossCause {
    /// Every vantage point saw the same thing: where you probe from makes no difference.
    Same,
    /// Open from some places and refused or filtered from others: something between them (a
    /// firewall, a security group, the host's own firewall) lets only some places in.
    FirewallBetween,
    /// Refused everywhere, but the target host itself has a listener on another local address
    /// (such as 127.0.0.1): the service is bound to loopback.
    BoundToLoopback,
    /// The name resolves to different addresses in different places.
    SplitHorizonDns,
    /// The vantage points failed in different ways; each one's verdict says why.
    Differs,
    /// Too few vantage points finished to compare anything.
    Inconclusive,
    /// A pattern this version does not know (a newer hub's).
    #[serde(other)]
    Unknown,
}

impl CrossCause {
    /// The cause's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            CrossCause::Same => "same",
            CrossCause::FirewallBetween => "firewall_between",
            CrossCause::BoundToLoopback => "bound_to_loopback",
            CrossCause::SplitHorizonDns => "split_horizon_dns",
            CrossCause::Differs => "differs",
            CrossCause::Inconclusive => "inconclusive",
            CrossCause::Unknown => "unknown",
        }
    }
}

/// The comparison of one request's results across vantage points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrossVerdict {
    /// The pattern, from a stable vocabulary.
    pub cause: CrossCause,
    /// One or two sentences naming the places and the culprit.
    pub summary: String,
    /// The facts behind it, a line each (each place's addresses, each port's difference).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
    /// What each vantage point saw, in the order they were asked.
    pub vantages: Vec<VantageResult>,
    /// The rule of a router on the way (the hub, when it forwards between the vantage points
    /// and the target) that stopped the failing vantage points' SYNs, read from its counters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router_rule: Option<RouterRule>,
}

/// A router's firewall rule that counted the failing vantage points' SYNs while they probed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouterRule {
    /// The router (a vantage point's name: `local` for the hub).
    pub router: String,
    /// Its forwarding rules that moved (never `exact`: the router did not send the SYNs).
    pub found: FirewallMatch,
}

/// One vantage point's result, as the comparison used it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VantageResult {
    /// The vantage point.
    pub name: String,
    /// How its request ended (`vantage_offline` when it dropped off); absent if it never said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// A check's verdict there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<Cause>,
    /// The addresses the name resolved to there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolved: Vec<IpAddr>,
    /// A scan's open ports there (over every address scanned).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub open_ports: Vec<u16>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str, version: &str) -> VantageInfo {
        VantageInfo {
            name: name.into(),
            online: true,
            version: version.into(),
            hostname: format!("{name}-host"),
            addresses: vec![],
            last_seen: None,
            connected_since: None,
        }
    }

    #[test]
    fn only_a_joined_agent_of_another_version_is_warned_about() {
        let list = [info(LOCAL_VANTAGE, "0.2.0"), info("app1", "0.2.0"), info("db1", "0.1.0")];
        assert_eq!(version_warning(&list, &list[0]), None, "the hub itself");
        assert_eq!(version_warning(&list, &list[1]), None, "the same version");
        assert_eq!(
            version_warning(&list, &list[2]).as_deref(),
            Some("db1 runs whyrefused 0.1.0, the hub 0.2.0: install the same version on both")
        );
        let odd = info("x", "0.1\n\u{1b}[31m");
        let said = version_warning(&[info(LOCAL_VANTAGE, "0.2.0"), odd.clone()], &odd).unwrap();
        assert!(!said.contains('\n') && !said.contains('\u{1b}'), "{said}");
    }
}
