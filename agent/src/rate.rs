//! The agent's budget of connects per second, shared by everything that opens a TCP connection
//! (checks, their extra probes, scans), so that no client, or all of them together, can make a
//! reachable agent flood a network.
//!
//! A token bucket holding one second's worth: bursts up to the limit, then the limit's pace. The
//! serving agent makes one at start and keeps it in its [`crate::AppState`]; every check and
//! scan plan carries it beside the target policy down to the probes. Without a limit (the
//! in-process command line, a loopback agent by default) there is no budget and a connect
//! never waits.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A token bucket of connects.
#[derive(Debug)]
pub struct ConnectBudget {
    /// Connects per second; the bucket holds this many at most.
    per_second: u32,
    bucket: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
}

impl ConnectBudget {
    /// A budget of `per_second` connects per second, starting full.
    pub fn new(per_second: u32) -> ConnectBudget {
        let bucket = Bucket { tokens: f64::from(per_second), refilled: Instant::now() };
        ConnectBudget { per_second, bucket: Mutex::new(bucket) }
    }

    /// The limit, in connects per second.
    pub fn per_second(&self) -> u32 {
        self.per_second
    }

    /// Takes up to `wanted` connects now and returns how many were granted.
    pub fn take(&self, wanted: u32) -> u32 {
        self.take_at(wanted, Instant::now())
    }

    fn take_at(&self, wanted: u32, now: Instant) -> u32 {
        let mut bucket = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        let earned = now.saturating_duration_since(bucket.refilled).as_secs_f64();
        let limit = f64::from(self.per_second);
        bucket.tokens = (bucket.tokens + earned * limit).min(limit);
        bucket.refilled = now;
        let granted = (bucket.tokens.floor() as u32).min(wanted);
        bucket.tokens -= f64::from(granted);
        granted
    }

    /// The share of the bucket taken now: 0 when full, 1 when connects must wait.
    pub fn used_fraction(&self) -> f64 {
        let mut bucket = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let earned = now.saturating_duration_since(bucket.refilled).as_secs_f64();
        let limit = f64::from(self.per_second.max(1));
        bucket.tokens = (bucket.tokens + earned * limit).min(limit);
        bucket.refilled = now;
        1.0 - bucket.tokens / limit
    }

    /// How long until one more connect is available.
    pub fn next_in(&self) -> Duration {
        let bucket = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        let missing = (1.0 - bucket.tokens).max(0.0);
        Duration::from_secs_f64(missing / f64::from(self.per_second.max(1)))
    }

    /// Waits until one connect is granted.
    pub async fn acquire(&self) {
        while self.take(1) == 0 {
            tokio::time::sleep(self.next_in().max(Duration::from_micros(100))).await;
        }
    }
}

/// The agent-wide budget a plan carries: `None` without a limit.
pub type SharedBudget = Option<std::sync::Arc<ConnectBudget>>;

/// The budget for a limit of `per_second` connects per second; `0` means none.
pub fn budget_of(per_second: u32) -> SharedBudget {
    (per_second > 0).then(|| std::sync::Arc::new(ConnectBudget::new(per_second)))
}

/// Waits for `budget` to allow one connect (at once without one).
pub async fn before_connect(budget: Option<&ConnectBudget>) {
    if let Some(budget) = budget {
        budget.acquire().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_bucket_grants_a_burst_then_the_pace() {
        let budget = ConnectBudget::new(100);
        let start = Instant::now();
        assert_eq!(budget.take_at(150, start), 100, "one second's worth at once");
        assert_eq!(budget.take_at(10, start), 0, "then nothing");
        assert_eq!(budget.take_at(10, start + Duration::from_millis(50)), 5, "5 per 50 ms");
        assert_eq!(
            budget.take_at(1000, start + Duration::from_secs(60)),
            100,
            "never above one second's worth"
        );
    }

    #[test]
    fn the_wait_for_the_next_connect_follows_the_pace() {
        let budget = ConnectBudget::new(10);
        budget.take(10);
        let next = budget.next_in();
        assert!(next > Duration::from_millis(50) && next <= Duration::from_millis(100), "{next:?}");
    }
}
