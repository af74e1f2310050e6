//! The path-MTU probe: what a connection that opened and then stalled did when the same exchange
//! was repeated with smaller TCP segments (a smaller MSS set before connect).
//!
//! A path-MTU black hole lets the small SYNs through and drops every packet larger than some
//! router's MTU, without the ICMP "fragmentation needed" that would let the sender shrink them:
//! the exchange stalls at the default MSS and completes at a small one. The largest MSS that
//! completes gives the path's MTU.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

/// The exchange of a `large` check: a payload larger than the MTU sent to the server.
pub const LARGE_SEND: &str = "large send";

/// A `large` check's payload, sent after the connect, and whether the server acknowledged it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LargeSend {
    /// The address it went to.
    pub address: SocketAddr,
    /// Bytes sent.
    pub bytes: u64,
    /// Bytes the server acknowledged (`TCP_INFO`'s bytes acked), by the deadline.
    pub acknowledged_bytes: u64,
    /// Whether every byte was acknowledged.
    pub acknowledged: bool,
    /// How long until it was, or how long it was waited for, in microseconds.
    pub elapsed_us: u64,
}

/// The MSS the probe tries first after a stall: small enough for any path (RFC 1122's default).
pub const SMALL_MSS: u32 = 536;

/// One repetition of the exchange at one MSS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MssTry {
    /// The MSS the connection announced (set before connect), in bytes.
    pub mss: u32,
    /// Whether it was the system's default MSS (nothing set), the repetition of what stalled.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub default: bool,
    /// Whether the exchange completed (the server's large answer arrived); `false`: it stalled
    /// until the probe's deadline.
    pub completed: bool,
    /// How long it took, or how long it was waited for, in microseconds.
    pub elapsed_us: u64,
    /// Bytes the server's answer brought in order (`TCP_INFO`'s bytes received), when read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_received: Option<u64>,
    /// Segments that arrived out of order, behind a hole (`TCP_INFO`'s `rcv_ooopack`): the
    /// small tail of a flight whose full-size segments were lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_of_order: Option<u32>,
}

/// The MSS probe of one address whose connection opened and then stalled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MtuProbe {
    /// The address probed.
    pub address: SocketAddr,
    /// The exchange repeated (`TLS handshake`, `HTTP response`).
    pub exchange: String,
    /// Every repetition, in the order tried: the default MSS, the small one, then the search.
    pub tries: Vec<MssTry>,
    /// Bytes of IP and TCP header around a segment of MSS bytes (40 for IPv4, 60 for IPv6).
    pub header_bytes: u32,
    /// How far full-size segments get toward the server, router by router, once the probe
    /// proved a black hole (absent when it did not, or the path could not be traced).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hops: Option<SizedHops>,
}

/// How far full-size segments get along the path toward the server: for each router of the path
/// trace, whether an open connection's full-size data segment sent with that router's TTL
/// expired there (the router sent back "time exceeded", so the segment reached it), next to
/// whether the trace's small SYN with the same TTL did. A router forwards only what fits its
/// next link, so the last router a full-size segment reaches, when small packets go on past
/// it, is where the MTU drops.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SizedHops {
    /// The TCP payload of each full-size segment, in bytes (the connection's MSS).
    pub segment_bytes: u32,
    /// The TTL at which the trace reached the server, when it did.
    pub target_ttl: Option<u8>,
    /// One entry per router, by TTL, up to the first that no full-size segment reached.
    pub hops: Vec<SizedHop>,
}

/// One router of [`SizedHops`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SizedHop {
    /// The TTL (IPv6 hop limit).
    pub ttl: u8,
    /// The router that answered the trace's SYN at this TTL.
    pub address: Option<IpAddr>,
    /// Its reverse DNS name, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Whether a small packet (the trace's SYN) expired here.
    pub small_expired: bool,
    /// Whether a full-size data segment expired here.
    pub large_expired: bool,
}

impl SizedHop {
    /// The router as words: `hop 2 (10.0.7.2)`, with its name when known.
    pub fn describe(&self) -> String {
        crate::path::hop_words(self.ttl, self.address, self.name.as_deref())
    }
}

impl SizedHops {
    /// Where the MTU drops, when the routers tell: the last router a full-size segment reached
    /// and the next one, which small packets reach and full-size ones do not (`None` as the
    /// first when not even the first router got one). `None` when the answers do not show one
    /// such place (a router that sends no "time exceeded", or rate-limits it, blurs the line).
    pub fn narrow_link(&self) -> Option<(Option<&SizedHop>, &SizedHop)> {
        let first_short = self.hops.iter().position(|hop| !hop.large_expired)?;
        let beyond = &self.hops[first_short];
        let before = first_short.checked_sub(1).map(|index| &self.hops[index]);
        let contiguous = self.hops[..first_short].iter().all(|hop| hop.large_expired);
        let later_short = self.hops[first_short..].iter().all(|hop| !hop.large_expired);
        let small_passes = self.hops[first_short..].iter().all(|hop| hop.small_expired);
        (contiguous && later_short && small_passes && beyond.small_expired)
            .then_some((before, beyond))
    }
}

impl MtuProbe {
    /// Whether the default MSS stalled.
    pub fn default_stalled(&self) -> bool {
        self.tries.iter().any(|t| t.default && !t.completed)
    }

    /// The largest MSS that completed, if any did.
    pub fn largest_working_mss(&self) -> Option<u32> {
        self.tries.iter().filter(|t| t.completed && !t.default).map(|t| t.mss).max()
    }

    /// The smallest MSS that stalled, default included.
    pub fn smallest_stalled_mss(&self) -> Option<u32> {
        self.tries.iter().filter(|t| !t.completed).map(|t| t.mss).min()
    }

    /// Whether the stalled packets went from this host to the server (a `large` send), not
    /// from the server to this host.
    pub fn is_upstream(&self) -> bool {
        self.exchange == LARGE_SEND
    }

    /// The path MTU the largest working MSS implies: that MSS with its headers.
    pub fn implied_mtu(&self) -> Option<u32> {
        self.largest_working_mss().map(|mss| mss + self.header_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(mss: u32, default: bool, completed: bool) -> MssTry {
        MssTry { mss, default, completed, elapsed_us: 1, bytes_received: None, out_of_order: None }
    }

    #[test]
    fn the_largest_mss_that_completed_implies_the_mtu_with_its_headers() {
        let probe = MtuProbe {
            address: "10.0.6.2:9443".parse().unwrap(),
            exchange: "TLS handshake".into(),
            tries: vec![
                attempt(1460, true, false),
                attempt(536, false, true),
                attempt(998, false, true),
                attempt(1229, false, true),
                attempt(1344, false, false),
            ],
            header_bytes: 40,
            hops: None,
        };
        assert!(probe.default_stalled());
        assert_eq!(probe.largest_working_mss(), Some(1229));
        assert_eq!(probe.smallest_stalled_mss(), Some(1344));
        assert_eq!(probe.implied_mtu(), Some(1269));
    }

    fn hop(ttl: u8, small_expired: bool, large_expired: bool) -> SizedHop {
        let address = Some(format!("10.0.{ttl}.1").parse().unwrap());
        SizedHop { ttl, address, name: None, small_expired, large_expired }
    }

    fn sized(hops: Vec<SizedHop>) -> SizedHops {
        SizedHops { segment_bytes: 1448, target_ttl: Some(4), hops }
    }

    #[test]
    fn the_narrow_link_follows_the_last_router_a_full_size_segment_reached() {
        let hops = sized(vec![hop(1, true, true), hop(2, true, true), hop(3, true, false)]);
        let (before, beyond) = hops.narrow_link().expect("a narrow link");
        assert_eq!(before.map(|hop| hop.ttl), Some(2));
        assert_eq!(beyond.describe(), "hop 3 (10.0.3.1)");
    }

    #[test]
    fn a_first_router_that_gets_no_full_size_segment_has_nothing_before_it() {
        let hops = sized(vec![hop(1, true, false), hop(2, true, false)]);
        let (before, beyond) = hops.narrow_link().expect("a narrow link");
        assert!(before.is_none());
        assert_eq!(beyond.ttl, 1);
    }

    #[test]
    fn routers_that_do_not_tell_name_no_link() {
        for hops in [
            // Every router got full-size segments: the drop is beyond them (or on the way back).
            vec![hop(1, true, true), hop(2, true, true)],
            // A router silent for small packets too: it sends no "time exceeded" at all.
            vec![hop(1, true, true), hop(2, false, false)],
            // A full-size segment expired past a router that got none: rate-limited answers.
            vec![hop(1, true, false), hop(2, true, true)],
            vec![],
        ] {
            assert_eq!(sized(hops).narrow_link(), None);
        }
    }
}
