//! Who a peer is, for counting it: every limit per peer (failed tokens, sessions) counts an IPv4
//! address alone and an IPv6 address by its /64, the block one host or one customer usually
//! holds whole, so a peer cannot step around a limit by changing its interface identifier. The
//! sessions open now are counted here too ([`OpenSessions`]), against their caps.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};

/// The group `address` is counted in: itself for IPv4 (and IPv4-mapped IPv6), its /64 for IPv6.
pub fn group(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
    }
}

/// The sessions open now, in all and per peer group, so neither cap is passed. Cheap to clone:
/// every clone counts the same sessions.
#[derive(Debug, Clone, Default)]
pub struct OpenSessions {
    counts: Arc<Mutex<Counts>>,
}

#[derive(Debug, Default)]
struct Counts {
    /// Every open session.
    total: usize,
    /// Open sessions per peer group; a group with none is removed.
    per_peer: HashMap<IpAddr, usize>,
}

/// How many sessions may be open at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionCaps {
    /// In all (`--max-sessions`).
    pub total: usize,
    /// From one peer group (`--max-sessions-per-peer`).
    pub per_peer: usize,
}

/// Why a session may not open now. Each message names the cap and the flag that sets it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionRefusal {
    #[error("the agent already holds {0} sessions, its most (--max-sessions): try again later")]
    AgentFull(usize),
    #[error(
        "{peer} already holds {max} sessions, the most one peer may (--max-sessions-per-peer; \
         an IPv6 peer counts per /64): close some first"
    )]
    PeerFull { peer: IpAddr, max: usize },
}

/// One open session, counted until it is dropped.
#[derive(Debug)]
pub struct SessionTicket {
    sessions: OpenSessions,
    group: IpAddr,
}

impl OpenSessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a session from `peer`, unless a cap is reached.
    pub fn try_open(
        &self,
        peer: IpAddr,
        caps: SessionCaps,
    ) -> Result<SessionTicket, SessionRefusal> {
        let group = group(peer);
        let mut counts = self.lock();
        if counts.total >= caps.total {
            return Err(SessionRefusal::AgentFull(caps.total));
        }
        let held = counts.per_peer.get(&group).copied().unwrap_or(0);
        if held >= caps.per_peer {
            return Err(SessionRefusal::PeerFull { peer, max: caps.per_peer });
        }
        counts.total += 1;
        counts.per_peer.insert(group, held + 1);
        Ok(SessionTicket { sessions: self.clone(), group })
    }

    /// How many sessions are open now.
    pub fn total(&self) -> usize {
        self.lock().total
    }
}

impl Drop for SessionTicket {
    fn drop(&mut self) {
        let mut counts = self.sessions.lock();
        counts.total -= 1;
        if let Some(held) = counts.per_peer.get_mut(&self.group) {
            *held -= 1;
            if *held == 0 {
                counts.per_peer.remove(&self.group);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_capped_in_all_and_per_peer_and_freed_when_dropped() {
        let sessions = OpenSessions::default();
        let caps = SessionCaps { total: 3, per_peer: 2 };
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let a_neighbour: IpAddr = "2001:db8::2".parse().unwrap();
        let b: IpAddr = "192.0.2.1".parse().unwrap();
        let first = sessions.try_open(a, caps).unwrap();
        let _second = sessions.try_open(a_neighbour, caps).unwrap();
        let refused = sessions.try_open(a, caps).unwrap_err();
        assert_eq!(refused, SessionRefusal::PeerFull { peer: a, max: 2 }, "the /64 is one peer");
        assert!(refused.to_string().contains("--max-sessions-per-peer"), "{refused}");
        let _third = sessions.try_open(b, caps).unwrap();
        let full = sessions.try_open(b, caps).unwrap_err();
        assert_eq!(full, SessionRefusal::AgentFull(3));
        assert!(full.to_string().contains("--max-sessions)"), "{full}");
        drop(first);
        assert_eq!(sessions.total(), 2);
        assert!(sessions.try_open(a, caps).is_ok(), "a closed session frees its place");
    }

    #[test]
    fn ipv6_peers_are_counted_by_their_64_and_ipv4_alone() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff:ffff:ffff:ffff".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(group(a), group(b));
        assert_ne!(group(a), group(c));
        assert_eq!(group("192.0.2.1".parse().unwrap()), "192.0.2.1".parse::<IpAddr>().unwrap());
        assert_eq!(group("::ffff:192.0.2.1".parse().unwrap()), group("192.0.2.1".parse().unwrap()));
    }
}
