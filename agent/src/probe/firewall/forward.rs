//! Which rule of this router's firewall stopped the SYNs other hosts sent through it: the
//! counters of its forwarding rules (the chains on the `forward` hook) are read before the other
//! vantage points probe and again after, and the stopping rules that moved, and could match a
//! SYN to a destination those vantage points failed to reach, are named.
//!
//! The router does not send these SYNs, so it cannot repeat them or count them: a rule that
//! moved is always named as likely, with how many packets it counted while the others probed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use whyrefused_shared::{FirewallMatch, FirewallRule};

use super::{ListedRule, Reading, condition, has_net_admin, listing, moved, the_rule_first};
use crate::clock;

/// Whether this host forwards packets, IPv4 or IPv6 (this network namespace's setting).
pub fn forwards() -> bool {
    let enabled = |path: &str| std::fs::read_to_string(path).is_ok_and(|v| v.trim() == "1");
    enabled("/proc/sys/net/ipv4/ip_forward") || enabled("/proc/sys/net/ipv6/conf/all/forwarding")
}

/// The counters of this router's forwarding rules, read before other hosts' SYNs cross it.
pub struct ForwardWatch {
    rules: Arc<Vec<ListedRule>>,
    reading: Reading,
    before: Vec<ListedRule>,
    started: Instant,
}

impl ForwardWatch {
    /// Reads the counters now, when this host forwards packets, may read its rules and has a
    /// forwarding rule that drops or rejects; `None` otherwise (nothing it could name).
    pub async fn start() -> Option<ForwardWatch> {
        if !forwards() || !has_net_admin() {
            return None;
        }
        let started = Instant::now();
        let rules = match listing().await {
            Ok(rules) => rules,
            Err(error) => {
                tracing::debug!(%error, "the forwarding rules could not be listed");
                return None;
            }
        };
        if !rules.iter().any(ListedRule::stops_forwarded) {
            return None;
        }
        let reading = Reading::of_this_host();
        let before = reading.read(&rules).await.ok()?;
        Some(ForwardWatch { rules, reading, before, started })
    }

    /// The forwarding rules that moved since the watch started and could have stopped a SYN to
    /// one of `failed` (the destinations the other vantage points did not reach), the busiest
    /// first; `None` when none did.
    pub async fn finish(self, failed: &[SocketAddr]) -> Option<FirewallMatch> {
        if failed.is_empty() {
            return None;
        }
        let after = match self.reading.read(&self.rules).await {
            Ok(after) => after,
            Err(error) => {
                tracing::debug!(%error, "the forwarding rules' counters could not be read again");
                return None;
            }
        };
        let (address, matched) = stopped_forwarded(&self.before, &after, failed)?;
        Some(FirewallMatch {
            address,
            matched,
            exact: false,
            probes: 0,
            candidates: Vec::new(),
            rules_read: after.len() as u32,
            unreadable: None,
            elapsed_us: clock::micros(self.started.elapsed()),
        })
    }
}

/// The forwarding rules that moved from `before` to `after` and could match a SYN to one of
/// `failed`, with the first destination the first of them matches.
fn stopped_forwarded(
    before: &[ListedRule],
    after: &[ListedRule],
    failed: &[SocketAddr],
) -> Option<(SocketAddr, Vec<FirewallRule>)> {
    let could_match = |rule: &ListedRule| {
        failed.iter().find(|to| condition::may_match_forwarded(&rule.conditions, **to)).copied()
    };
    let forwarding: Vec<ListedRule> = after
        .iter()
        .filter(|rule| rule.stops_forwarded() && could_match(rule).is_some())
        .cloned()
        .collect();
    let mut matched = moved(before, &forwarding);
    if matched.is_empty() {
        return None;
    }
    the_rule_first(&mut matched);
    let first = forwarding.iter().find(|rule| rule.rule.place() == matched[0].place())?;
    Some((could_match(first)?, matched))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::firewall::{iptables, nft};

    // Captured in a lab: a2 (10.7.2.2) connects to 10.7.3.2:80 through a router whose FORWARD
    // rule drops its SYNs; the router's listings before and after (three SYNs in 2.5 s).
    const SAVE_BEFORE: &str = include_str!("testdata/iptables-forward-before.txt");
    const SAVE_AFTER: &str = include_str!("testdata/iptables-forward-after.txt");
    const NFT_BEFORE: &str = include_str!("testdata/nft-forward-before.json");
    const NFT_AFTER: &str = include_str!("testdata/nft-forward-after.json");

    fn failed(to: &str) -> Vec<SocketAddr> {
        vec![to.parse().unwrap()]
    }

    #[test]
    fn an_iptables_forward_rule_that_moved_and_matches_the_failed_destination_is_named() {
        let before = iptables::parse("iptables", SAVE_BEFORE);
        let after = iptables::parse("iptables", SAVE_AFTER);
        let (address, matched) =
            stopped_forwarded(&before, &after, &failed("10.7.3.2:80")).expect("named");
        assert_eq!(address, "10.7.3.2:80".parse().unwrap());
        assert_eq!(matched.len(), 1, "{matched:?}");
        assert_eq!(matched[0].place(), "iptables filter FORWARD rule 1");
        assert_eq!(matched[0].packets, Some(3));
        // The same movement, for a failure on another port: not that failure's rule.
        assert!(stopped_forwarded(&before, &after, &failed("10.7.3.2:443")).is_none());
    }

    #[test]
    fn an_nft_forward_rule_that_moved_is_named_with_its_handle() {
        let before = nft::parse(NFT_BEFORE).unwrap();
        let after = nft::parse(NFT_AFTER).unwrap();
        let (_, matched) =
            stopped_forwarded(&before, &after, &failed("10.7.3.2:80")).expect("named");
        assert_eq!(matched[0].place(), "inet filter forward rule 1");
        assert_eq!(matched[0].handle, Some(2));
        assert_eq!(matched[0].text, "ip saddr 10.7.2.2 tcp dport 80 counter drop");
        assert_eq!(matched[0].packets, Some(3));
    }

    #[test]
    fn input_rules_and_rules_that_did_not_move_are_not_named() {
        let before = iptables::parse("iptables", SAVE_BEFORE);
        // The INPUT rule on the same port moves: it guards the router itself, not what it
        // forwards.
        let after = iptables::parse(
            "iptables",
            &SAVE_BEFORE.replace("[0:0] -A INPUT -p tcp", "[4:240] -A INPUT -p tcp"),
        );
        assert!(stopped_forwarded(&before, &after, &failed("10.7.3.2:80")).is_none());
        assert!(stopped_forwarded(&before, &before, &failed("10.7.3.2:80")).is_none());
    }
}
