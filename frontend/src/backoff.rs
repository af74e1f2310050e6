//! The pause between reconnects: 0.5 s, doubling to 10 s, back to 0.5 s after a success.

/// The first pause after a drop, in milliseconds.
const FIRST_MS: u32 = 500;
/// The longest pause, in milliseconds: a restarted agent is found within this.
const MAX_MS: u32 = 10_000;

/// Exponential backoff for reconnecting to the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    /// The pause the next failure waits.
    next_ms: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next_ms: FIRST_MS }
    }
}

impl Backoff {
    /// The pause to wait now, doubling the one after it (up to the maximum).
    pub fn next_delay(&mut self) -> u32 {
        let delay = self.next_ms;
        self.next_ms = (self.next_ms * 2).min(MAX_MS);
        delay
    }

    /// The agent answered: the next drop waits the shortest pause again.
    pub fn reset(&mut self) {
        self.next_ms = FIRST_MS;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_ten_seconds_and_reset() {
        let mut backoff = Backoff::default();
        let delays: Vec<u32> = (0..7).map(|_| backoff.next_delay()).collect();
        assert_eq!(delays, [500, 1000, 2000, 4000, 8000, 10_000, 10_000]);
        backoff.reset();
        assert_eq!(backoff.next_delay(), 500);
    }
}
