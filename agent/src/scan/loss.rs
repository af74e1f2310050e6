//! A scan's own estimate of packet loss, and the retries it calls for, as a careful scanner
//! keeps one: a port that answers (a SYN-ACK or a reset) only on a retry shows the path lost a
//! try. From the share of answering ports that needed one, the chance that a single try goes
//! unanswered; from that, how many tries a silent port needs before calling it silent is safe.

use std::sync::atomic::{AtomicU64, Ordering};

use whyrefused_shared::{ScanLoss, loss::wilson_interval};

/// The most tries a silent port gets, however lossy the path: beyond it the scan takes too long
/// for what it can still learn.
pub const MAX_TRIES: u32 = 10;

/// How many answering ports must be seen before the estimate changes the retries.
const LEAST_SAMPLE: u64 = 20;

/// The chance, per silent port, of calling a live one silent that the retries aim below.
const MISS_TARGET: f64 = 0.001;

/// Answers seen so far, shared by every thread of one scan.
#[derive(Debug, Default)]
pub struct LossEstimate {
    /// Ports answered on their first try.
    first: AtomicU64,
    /// Ports answered only on a later try.
    later: AtomicU64,
}

impl LossEstimate {
    /// A port answered on try number `tries`.
    pub fn answered(&self, tries: u32) {
        let counter = if tries > 1 { &self.later } else { &self.first };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn counts(&self) -> (u64, u64) {
        (self.first.load(Ordering::Relaxed), self.later.load(Ordering::Relaxed))
    }

    /// The chance that one try to a live port goes unanswered, once enough ports answered.
    pub fn per_try_loss(&self) -> Option<f64> {
        let (first, later) = self.counts();
        let seen = first + later;
        (seen >= LEAST_SAMPLE).then(|| later as f64 / seen as f64)
    }

    /// How many retries a silent port gets: `asked` (a floor, never fewer), raised as loss grows
    /// until a live port's chance of staying silent through every try is under 0.1%, at most
    /// [`MAX_TRIES`] tries in all.
    pub fn retries(&self, asked: u32) -> u32 {
        let needed = match self.per_try_loss() {
            Some(loss) if loss > 0.0 => tries_for(loss).saturating_sub(1),
            _ => 0,
        };
        asked.max(needed)
    }

    /// What the scan can tell of the loss at its end: `None` when no port answered on a retry.
    /// `silent` is how many ports stayed silent; `tries` how many tries each got.
    pub fn summary(&self, silent: u64, tries: u32) -> Option<ScanLoss> {
        let (first, later) = self.counts();
        let seen = first + later;
        if later == 0 || seen == 0 {
            return None;
        }
        let rate = later as f64 / seen as f64;
        let (ci_low, ci_high) = wilson_interval(
            u32::try_from(later).unwrap_or(u32::MAX),
            u32::try_from(seen).unwrap_or(u32::MAX),
        );
        // A live port stays silent through every try with probability rate^tries; of the ports
        // that answered, as many again times that ratio were missed, expected.
        let missed = rate.powi(tries as i32);
        let expected_missed =
            if missed < 1.0 { seen as f64 * missed / (1.0 - missed) } else { silent as f64 };
        Some(ScanLoss {
            rate,
            ci_low,
            ci_high,
            answered_on_retry: later,
            answered: seen,
            tries,
            silent,
            expected_live_among_silent: expected_missed.min(silent as f64),
        })
    }
}

/// The fewest tries that leave a live port under [`MISS_TARGET`] of staying silent through all,
/// each lost with probability `loss`; at most [`MAX_TRIES`].
fn tries_for(loss: f64) -> u32 {
    if loss >= 1.0 {
        return MAX_TRIES;
    }
    let tries = (MISS_TARGET.ln() / loss.ln()).ceil();
    (tries as u32).clamp(1, MAX_TRIES)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(first: u64, later: u64) -> LossEstimate {
        let estimate = LossEstimate::default();
        (0..first).for_each(|_| estimate.answered(1));
        (0..later).for_each(|_| estimate.answered(2));
        estimate
    }

    #[test]
    fn without_loss_the_asked_retries_hold() {
        assert_eq!(seen(500, 0).retries(1), 1);
        assert_eq!(seen(5, 5).retries(2), 2, "too few answers to judge");
    }

    #[test]
    fn retries_grow_with_loss_up_to_the_cap_and_never_below_the_floor() {
        // Half the tries lost: 0.5^10 ≈ 0.1%, so ten tries (nine retries).
        assert_eq!(seen(50, 50).retries(1), 9);
        // One in ten lost: 0.1^3 = 0.1%, three tries.
        assert_eq!(seen(90, 10).retries(1), 2);
        assert_eq!(seen(90, 10).retries(4), 4, "an explicit --retries is a floor");
        assert_eq!(seen(1, 99).retries(0), MAX_TRIES - 1);
    }

    #[test]
    fn the_summary_gives_the_rate_and_how_many_silent_ports_may_be_live() {
        assert!(seen(100, 0).summary(10, 2).is_none(), "no loss seen, nothing to say");
        let summary = seen(70, 30).summary(50, 5).unwrap();
        assert!((summary.rate - 0.3).abs() < 1e-9);
        assert!(summary.ci_low < 0.3 && summary.ci_high > 0.3);
        // 100 answered; 0.3^5 = 0.00243 of live ports missed: about 0.24 expected.
        assert!((summary.expected_live_among_silent - 0.2436).abs() < 0.01, "{summary:?}");
    }
}
