//! [`Path`]: where a connection's packets go, hop by hop: the trace of TCP SYNs to the checked
//! address and port with rising TTLs, and which router answered each.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::diagnosis::IcmpError;

/// The default and the largest number of hops a trace tries.
pub const DEFAULT_MAX_HOPS: u8 = 30;
/// The most hops a trace may be asked to try.
pub const MAX_HOPS: u8 = 64;
/// How often each hop is tried at most.
pub const TRIES_PER_HOP: u8 = 3;
/// How long one try waits for its answer when a trace request does not say.
pub const DEFAULT_TRACE_TIMEOUT_MS: u32 = 1_000;

/// The trace of one address and port.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Path {
    /// The traced address.
    pub address: IpAddr,
    /// The traced port (the checked one).
    pub port: u16,
    /// The hops, by TTL from 1, up to the last one that answered and the silent ones tried
    /// after it.
    pub hops: Vec<Hop>,
    /// Whether the target itself answered (SYN-ACK or reset) at some TTL.
    pub reached: bool,
    /// The farthest hop that answered, if any did.
    pub last_answered: Option<LastAnswered>,
    /// The highest TTL tried: silent TTLs above the last listed hop were tried too.
    pub max_ttl: u8,
    /// How many hops away the target answered on another port (from a trace of a port that
    /// answered the liveness probes), when known: it places the silence relative to the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_ttl: Option<u8>,
    /// Whether the trace has ended; a check streams the path while hops answer.
    pub complete: bool,
    /// How long the trace ran, in microseconds.
    pub elapsed_us: u64,
}

/// One hop of a path: what answered a SYN sent with this TTL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hop {
    /// The TTL (IPv6 hop limit) the SYNs were sent with.
    pub ttl: u8,
    /// Who answered: the router whose TTL ran out, the one that rejected, or the target.
    pub address: Option<IpAddr>,
    /// The answering address's reverse DNS name, when looked up and found.
    pub name: Option<String>,
    /// What answered.
    pub reply: HopReply,
    /// The ICMP error behind a `time_exceeded` or `unreachable` reply.
    pub icmp: Option<IcmpError>,
    /// The fastest answer's round trip, in milliseconds.
    pub rtt_ms: Option<f64>,
    /// How many SYNs were sent with this TTL.
    pub tries: u8,
    /// How many of them were answered.
    pub answered: u8,
}

/// A hop as words: `hop 2 (10.0.7.2)`, with its reverse DNS name when known.
pub fn hop_words(ttl: u8, address: Option<IpAddr>, name: Option<&str>) -> String {
    match (address, name) {
        (Some(address), Some(name)) => format!("hop {ttl} ({name}, {address})"),
        (Some(address), None) => format!("hop {ttl} ({address})"),
        (None, _) => format!("hop {ttl}"),
    }
}

impl Hop {
    /// The hop as words ([`hop_words`]).
    pub fn describe(&self) -> String {
        hop_words(self.ttl, self.address, self.name.as_deref())
    }

    /// How many tries went unanswered.
    pub fn unanswered(&self) -> u8 {
        self.tries - self.answered.min(self.tries)
    }

    /// Whether anything answered at this TTL.
    pub fn is_answered(&self) -> bool {
        self.reply != HopReply::Silent
    }

    /// The share of tries without an answer, in percent.
    pub fn loss_percent(&self) -> u8 {
        match self.tries {
            0 => 0,
            tries => (100 * u32::from(self.unanswered()) / u32::from(tries)) as u8,
        }
    }
}

/// What answered a SYN with a given TTL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HopReply {
    /// A router on the way: the TTL ran out there (ICMP time exceeded).
    TimeExceeded,
    /// A router or the target refused to carry the SYN on (ICMP destination unreachable), or
    /// this host had no way to send it.
    Unreachable,
    /// The target itself answered, with a SYN-ACK or a reset.
    Reached,
    /// Nothing answered.
    Silent,
}

impl HopReply {
    /// The wire name (`time_exceeded`).
    pub fn as_str(self) -> &'static str {
        match self {
            HopReply::TimeExceeded => "time_exceeded",
            HopReply::Unreachable => "unreachable",
            HopReply::Reached => "reached",
            HopReply::Silent => "silent",
        }
    }
}

/// The farthest hop that answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastAnswered {
    /// Its TTL.
    pub ttl: u8,
    /// Its address.
    pub address: IpAddr,
}

impl Path {
    /// A path from the hops traced so far (not complete): whether the target answered and the
    /// farthest hop that did follow from them.
    pub fn of_hops(address: SocketAddr, hops: Vec<Hop>, max_ttl: u8) -> Path {
        Path {
            address: address.ip(),
            port: address.port(),
            reached: hops.iter().any(|hop| hop.reply == HopReply::Reached),
            last_answered: Path::farthest_answer(&hops),
            hops,
            max_ttl,
            target_ttl: None,
            complete: false,
            elapsed_us: 0,
        }
    }

    /// The farthest hop that answered, computed from the hops.
    pub fn farthest_answer(hops: &[Hop]) -> Option<LastAnswered> {
        hops.iter().rev().find_map(|hop| Some(LastAnswered { ttl: hop.ttl, address: hop.address? }))
    }

    /// The hop that ended the path with an unreachable, if one did.
    pub fn unreachable_hop(&self) -> Option<&Hop> {
        self.hops.iter().find(|hop| hop.reply == HopReply::Unreachable)
    }
}

/// A request to trace the path to a target on its own (`whyrefused trace`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceRequest {
    /// What to trace: host:port, [v6]:port, or a URL, as for a check.
    pub target: String,
    /// The port, for a target given as a bare host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The most hops to try (default [`DEFAULT_MAX_HOPS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_hops: Option<u8>,
    /// How long one try waits, in milliseconds (default [`DEFAULT_TRACE_TIMEOUT_MS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u32>,
    /// Skip reverse DNS names of the hops.
    #[serde(default)]
    pub no_rdns: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(ttl: u8, address: Option<&str>, reply: HopReply) -> Hop {
        Hop {
            ttl,
            address: address.map(|a| a.parse().unwrap()),
            name: None,
            reply,
            icmp: None,
            rtt_ms: address.map(|_| 0.4),
            tries: 3,
            answered: if address.is_some() { 2 } else { 0 },
        }
    }

    #[test]
    fn the_farthest_answer_skips_silent_hops_and_loss_counts_tries() {
        let hops = [
            hop(1, Some("10.0.1.1"), HopReply::TimeExceeded),
            hop(2, Some("10.0.2.1"), HopReply::TimeExceeded),
            hop(3, None, HopReply::Silent),
        ];
        let last = Path::farthest_answer(&hops).unwrap();
        assert_eq!((last.ttl, last.address.to_string()), (2, "10.0.2.1".to_string()));
        assert_eq!(hops[0].loss_percent(), 33);
        assert_eq!(hops[2].loss_percent(), 100);
        assert_eq!(Path::farthest_answer(&hops[2..]), None);
    }

    #[test]
    fn a_hop_reads_as_the_json_contract_says() {
        let json = serde_json::to_value(hop(1, Some("10.0.1.1"), HopReply::TimeExceeded)).unwrap();
        assert_eq!(json["reply"], "time_exceeded");
        assert_eq!(json["address"], "10.0.1.1");
        assert_eq!(json["name"], serde_json::Value::Null);
        assert_eq!(json["icmp"], serde_json::Value::Null);
        assert_eq!((json["tries"].as_u64(), json["answered"].as_u64()), (Some(3), Some(2)));
    }
}
