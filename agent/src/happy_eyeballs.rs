//! What a Happy Eyeballs client (RFC 8305: browsers, curl) would end up with, replayed from the
//! measured connect attempts: addresses ordered IPv6 first with the families interleaved, each
//! attempt started 250 ms after the previous one or as soon as it failed, first open one wins.

use std::net::IpAddr;
use std::time::Duration;

use whyrefused_shared::{Attempt, ConnectState, Family, HappyEyeballs};

/// RFC 8305's recommended Connection Attempt Delay.
pub const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// The order a Happy Eyeballs client tries `addresses` in: the first family of the list (IPv6
/// when present, as RFC 6724 prefers) first, then alternating families, each family in the
/// resolver's order.
pub fn order(addresses: &[IpAddr]) -> Vec<IpAddr> {
    let (mut v6, mut v4): (Vec<IpAddr>, Vec<IpAddr>) = addresses.iter().partition(|a| a.is_ipv6());
    v6.reverse();
    v4.reverse();
    let mut ordered = Vec::with_capacity(addresses.len());
    let mut take_v6 = !v6.is_empty();
    while let Some(next) =
        if take_v6 { v6.pop().or_else(|| v4.pop()) } else { v4.pop().or_else(|| v6.pop()) }
    {
        ordered.push(next);
        take_v6 = !take_v6;
    }
    ordered
}

/// Replays the attempts in Happy Eyeballs order; `timeout` is when a silent attempt gives up.
pub fn replay(addresses: &[IpAddr], attempts: &[Attempt], timeout: Duration) -> HappyEyeballs {
    let order = order(addresses);
    let mut start = Duration::ZERO;
    let mut best: Option<(Duration, IpAddr)> = None;
    for address in &order {
        let Some(attempt) = attempts.iter().find(|a| a.address == *address) else { continue };
        let took = if attempt.state == ConnectState::Timeout {
            timeout
        } else {
            Duration::from_micros(attempt.elapsed_us)
        };
        if attempt.state == ConnectState::Open {
            let connected = start + took;
            if best.is_none_or(|(at, _)| connected < at) {
                best = Some((connected, *address));
            }
        }
        // The next attempt starts after the delay, or at once when this one failed sooner.
        let failed_early = attempt.state != ConnectState::Open && took < ATTEMPT_DELAY;
        start += if failed_early { took } else { ATTEMPT_DELAY };
        if best.is_some_and(|(at, _)| at <= start) {
            break;
        }
    }
    HappyEyeballs {
        order,
        winner: best.map(|(_, address)| address),
        family: best.map(|(_, address)| Family::of(&address)),
        connected_after_us: best.map(|(at, _)| crate::clock::micros(at)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use whyrefused_shared::Timestamp;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn attempt(address: &str, state: ConnectState, elapsed_ms: u64) -> Attempt {
        let address = ip(address);
        Attempt {
            address,
            port: 443,
            family: Family::of(&address),
            state,
            errno: None,
            icmp: None,
            elapsed_us: elapsed_ms * 1000,
            elapsed_ms: elapsed_ms as f64,
            started_at: Timestamp(String::new()),
        }
    }

    #[test]
    fn families_interleave_with_ipv6_first() {
        let addresses = [ip("192.0.2.1"), ip("192.0.2.2"), ip("2001:db8::1"), ip("2001:db8::2")];
        assert_eq!(
            order(&addresses),
            [ip("2001:db8::1"), ip("192.0.2.1"), ip("2001:db8::2"), ip("192.0.2.2")]
        );
        assert_eq!(order(&[ip("192.0.2.1")]), [ip("192.0.2.1")]);
    }

    #[test]
    fn a_silent_ipv6_costs_the_attempt_delay_before_ipv4_wins() {
        let addresses = [ip("2001:db8::1"), ip("192.0.2.1")];
        let attempts = [
            attempt("2001:db8::1", ConnectState::Timeout, 3000),
            attempt("192.0.2.1", ConnectState::Open, 10),
        ];
        let replay = replay(&addresses, &attempts, Duration::from_secs(3));
        assert_eq!(replay.winner, Some(ip("192.0.2.1")));
        assert_eq!(replay.family, Some(Family::Ipv4));
        assert_eq!(replay.connected_after_us, Some(260_000));
    }

    #[test]
    fn a_refused_ipv6_fails_over_at_once() {
        let addresses = [ip("2001:db8::1"), ip("192.0.2.1")];
        let attempts = [
            attempt("2001:db8::1", ConnectState::Refused, 1),
            attempt("192.0.2.1", ConnectState::Open, 10),
        ];
        assert_eq!(
            replay(&addresses, &attempts, Duration::from_secs(3)).connected_after_us,
            Some(11_000)
        );
    }

    #[test]
    fn nothing_open_means_no_winner() {
        let attempts = [attempt("192.0.2.1", ConnectState::Refused, 1)];
        let replay = replay(&[ip("192.0.2.1")], &attempts, Duration::from_secs(3));
        assert_eq!((replay.winner, replay.connected_after_us), (None, None));
    }
}
