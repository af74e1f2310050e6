//! The path-MTU probe: what a connection that opened and then stalled did when the same exchange
//! was repeated with smaller TCP segments (a smaller MSS set before connect).
//!
//! A path-MTU black hole lets the small SYNs through and drops every packet larger than some
//! router's MTU, without the ICMP "fragmentation needed" that would let the sender shrink them:
//! the exchange stalls at the default MSS and completes at a small one. The largest MSS that
//! completes gives the path's MTU.

use std::net::SocketAddr;

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
        };
        assert!(probe.default_stalled());
        assert_eq!(probe.largest_working_mss(), Some(1229));
        assert_eq!(probe.smallest_stalled_mss(), Some(1344));
        assert_eq!(probe.implied_mtu(), Some(1269));
    }
}
