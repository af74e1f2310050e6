//! Further connects to a port whose first connect has gone unanswered: a few, spaced over what
//! is left of its deadline, to tell a port that never answers (a firewall drops it) from a path
//! that loses packets (some tries are answered, others not).
//!
//! They are sent while the first connect still waits, so a filtered port's verdict takes no
//! longer than before: the deadline it already had.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::future::join_all;
use whyrefused_shared::{Attempt, ConnectState, LossFinding, Tries};

use super::connect;
use crate::rate::ConnectBudget;

/// How many further connects follow a silent first one: with the first, six tries, enough for a
/// path that loses a third of its packets to answer at least once with 99% probability (each try
/// needs its SYN and the answer through: (1 - 0.67 × 0.67)^6 ≈ 0.9%).
pub const FURTHER_CONNECTS: u32 = 5;

/// The least time the last further connect is given to be answered.
const LEAST_WAIT: Duration = Duration::from_millis(50);

/// Sends up to [`FURTHER_CONNECTS`] connects to `address`, spread from now to `until` (each
/// ending at `until`, the first connect's own deadline); none when too little time is left.
pub async fn further_connects(
    address: SocketAddr,
    until: Instant,
    budget: Option<&ConnectBudget>,
) -> Vec<Attempt> {
    let left = until.saturating_duration_since(Instant::now());
    let Some(spread) = left.checked_sub(LEAST_WAIT) else { return Vec::new() };
    let gap = spread / FURTHER_CONNECTS;
    let tries = (0..FURTHER_CONNECTS).map(|index| async move {
        tokio::time::sleep(gap * index).await;
        let deadline = until.saturating_duration_since(Instant::now()).max(LEAST_WAIT);
        connect(address, deadline, budget).await
    });
    join_all(tries).await
}

/// The pause between [`quick_connects`].
pub const QUICK_GAP: Duration = Duration::from_millis(20);

/// The least time a quick connect is waited for.
const QUICK_LEAST_WAIT: Duration = Duration::from_millis(200);

/// The most: under the kernel's first SYN retransmission (1 s), so each try is one SYN.
const QUICK_MOST_WAIT: Duration = Duration::from_millis(900);

/// How long a try to a port that answered in `round_trip` is waited for before it counts as
/// lost: eight round trips, within [`QUICK_LEAST_WAIT`] and [`QUICK_MOST_WAIT`].
pub fn quick_wait(round_trip: Duration) -> Duration {
    (round_trip * 8).clamp(QUICK_LEAST_WAIT, QUICK_MOST_WAIT)
}

/// [`FURTHER_CONNECTS`] connects to a port that just answered in `round_trip` (a liveness
/// port), [`QUICK_GAP`] apart, each waited for [`quick_wait`]: the loss on the path to its
/// host, measured in a moment rather than over the asked port's whole deadline.
pub async fn quick_connects(
    address: SocketAddr,
    round_trip: Duration,
    budget: Option<&ConnectBudget>,
) -> Vec<Attempt> {
    let wait = quick_wait(round_trip);
    let tries = (0..FURTHER_CONNECTS).map(|index| async move {
        tokio::time::sleep(QUICK_GAP * index).await;
        connect(address, wait, budget).await
    });
    join_all(tries).await
}

/// Every connect to one port, the first and the further ones, told as tries and answers.
pub fn tally(address: SocketAddr, attempts: &[&Attempt]) -> LossFinding {
    let answered = |attempt: &&&Attempt| attempt.icmp.is_none() && attempt.state.is_answer();
    let count = |state: ConnectState| {
        attempts.iter().filter(answered).filter(|attempt| attempt.state == state).count() as u32
    };
    let (open, refused) = (count(ConnectState::Open), count(ConnectState::Refused));
    let tries = Tries { sent: attempts.len() as u32, answered: open + refused, open };
    LossFinding {
        address: address.ip(),
        port: address.port(),
        loss: tries.loss(),
        open,
        refused,
        icmp_errors: attempts.iter().filter(|attempt| attempt.icmp.is_some()).count() as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_closed_port_answers_every_further_connect() {
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let attempts =
            further_connects(address, Instant::now() + Duration::from_millis(300), None).await;
        assert_eq!(attempts.len(), FURTHER_CONNECTS as usize);
        let found = tally(address, &attempts.iter().collect::<Vec<_>>());
        assert_eq!((found.loss.sent, found.loss.answered, found.refused), (5, 5, 5));
        assert_eq!(found.loss.rate, 0.0);
    }

    #[tokio::test]
    async fn quick_connects_to_a_port_that_answers_are_all_answered() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let attempts = quick_connects(address, Duration::from_micros(100), None).await;
        let found = tally(address, &attempts.iter().collect::<Vec<_>>());
        assert_eq!((found.loss.sent, found.loss.answered, found.open), (5, 5, 5));
    }

    #[test]
    fn a_quick_try_waits_eight_round_trips_within_bounds() {
        assert_eq!(quick_wait(Duration::from_micros(50)), Duration::from_millis(200));
        assert_eq!(quick_wait(Duration::from_millis(50)), Duration::from_millis(400));
        assert_eq!(quick_wait(Duration::from_millis(500)), Duration::from_millis(900));
    }

    #[tokio::test]
    async fn no_further_connect_when_the_deadline_is_too_near() {
        let address = SocketAddr::from(([127, 0, 0, 1], 9));
        let until = Instant::now() + Duration::from_millis(10);
        assert!(further_connects(address, until, None).await.is_empty());
    }

    fn attempt(state: ConnectState) -> Attempt {
        Attempt {
            address: "10.0.1.2".parse().unwrap(),
            port: 8080,
            family: whyrefused_shared::Family::Ipv4,
            state,
            errno: None,
            icmp: None,
            elapsed_us: 1,
            elapsed_ms: 0.001,
            started_at: crate::clock::now(),
        }
    }

    #[test]
    fn the_tally_counts_answers_and_keeps_icmp_errors_apart() {
        let address = SocketAddr::from(([10, 0, 1, 2], 8080));
        let mut rejected = attempt(ConnectState::HostUnreachable);
        rejected.icmp = Some(whyrefused_shared::IcmpError {
            icmp_type: 3,
            code: 13,
            meaning: "administratively prohibited".into(),
            from: "10.0.1.1".parse().unwrap(),
            from_local: false,
        });
        let attempts = [
            attempt(ConnectState::Timeout),
            attempt(ConnectState::Open),
            attempt(ConnectState::Timeout),
            attempt(ConnectState::Refused),
            rejected,
        ];
        let found = tally(address, &attempts.iter().collect::<Vec<_>>());
        assert_eq!((found.loss.sent, found.loss.answered), (5, 2));
        assert_eq!((found.open, found.refused, found.icmp_errors), (1, 1, 1));
    }
}
