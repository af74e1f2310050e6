//! Exponential backoff with jitter, for rejoining a hub.
//!
//! The delay doubles from [`BASE`] up to [`MAX`]; each wait is drawn uniformly from the upper
//! half of the current delay ("equal jitter"), so agents that lost the same hub at the same
//! moment do not all knock again at the same moment, and none hammers it.

use std::time::Duration;

/// The first delay: a hub restart usually takes about this long.
pub const BASE: Duration = Duration::from_millis(250);

/// The longest delay. With the jitter, an agent knocks at least every 5 s, so it rejoins a
/// restarted hub within 10 s of the hub coming back (the promise).
pub const MAX: Duration = Duration::from_secs(5);

/// The delays between attempts to join.
#[derive(Debug, Clone, Default)]
pub struct Backoff {
    /// Failed attempts since the last success.
    attempts: u32,
}

impl Backoff {
    /// The next wait, given a `random` number in `[0, 1)`; counts one more failure.
    pub fn next(&mut self, random: f64) -> Duration {
        let ceiling = BASE.saturating_mul(1 << self.attempts.min(16)).min(MAX);
        self.attempts = self.attempts.saturating_add(1);
        let half = ceiling / 2;
        half + half.mul_f64(random.clamp(0.0, 1.0))
    }

    /// Starts again from [`BASE`] (after a link that worked).
    pub fn reset(&mut self) {
        self.attempts = 0;
    }
}

/// A random number in `[0, 1)` from the system's generator (0.5 should it fail).
pub fn random_unit() -> f64 {
    use ring::rand::{SecureRandom, SystemRandom};
    let mut bytes = [0u8; 4];
    match SystemRandom::new().fill(&mut bytes) {
        Ok(()) => f64::from(u32::from_le_bytes(bytes)) / (f64::from(u32::MAX) + 1.0),
        Err(_) => 0.5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_ceiling_within_their_jitter_bounds() {
        let mut backoff = Backoff::default();
        let mut ceiling = BASE;
        for _ in 0..10 {
            let low = backoff.clone().next(0.0);
            let high = backoff.clone().next(0.999_999);
            assert_eq!(low, ceiling / 2, "the least wait is half the delay");
            assert!(high < ceiling && high > ceiling.mul_f64(0.99), "{high:?} vs {ceiling:?}");
            let drawn = backoff.next(random_unit());
            assert!(drawn >= low && drawn <= high, "{drawn:?} outside {low:?}..{high:?}");
            ceiling = (ceiling * 2).min(MAX);
        }
        assert!(backoff.next(0.999_999) <= MAX, "never above the ceiling");
        backoff.reset();
        assert_eq!(backoff.next(0.0), BASE / 2, "a reset starts over");
    }

    #[test]
    fn random_numbers_stay_in_the_unit_interval_and_vary() {
        let draws: Vec<f64> = (0..32).map(|_| random_unit()).collect();
        assert!(draws.iter().all(|r| (0.0..1.0).contains(r)));
        assert!(draws.windows(2).any(|pair| pair[0] != pair[1]), "not a constant");
    }
}
