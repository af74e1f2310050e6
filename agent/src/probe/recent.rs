//! A reading of this host that stays true for a while (its network namespace, its capabilities,
//! a counter taken just before a check), shared by the checks running at once instead of
//! re-read by each: a thousand checks in a second then cost the kernel a few reads, not a
//! thousand walks of its tables.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The newest reading and when it was taken; older than `max_age`, it is read again.
pub struct Recent<T> {
    newest: Mutex<Option<(Instant, T)>>,
    max_age: Duration,
}

impl<T: Clone> Recent<T> {
    /// Nothing read yet; a reading is kept for `max_age`.
    pub const fn new(max_age: Duration) -> Recent<T> {
        Recent { newest: Mutex::new(None), max_age }
    }

    /// The newest reading if it is at most `max_age` old, else a new one from `read` (run
    /// without the lock held: checks arriving together may each read once, none waits).
    pub fn get_or_read(&self, read: impl FnOnce() -> T) -> T {
        if let Some(value) = self.fresh() {
            return value;
        }
        let value = read();
        *self.lock() = Some((Instant::now(), value.clone()));
        value
    }

    /// The newest reading if it is at most `max_age` old.
    pub fn fresh(&self) -> Option<T> {
        let newest = self.lock();
        let (taken, value) = newest.as_ref()?;
        (taken.elapsed() <= self.max_age).then(|| value.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(Instant, T)>> {
        self.newest.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn a_fresh_reading_is_shared_and_a_stale_one_is_read_again() {
        let reads = Cell::new(0);
        let read = || {
            reads.set(reads.get() + 1);
            reads.get()
        };
        let recent = Recent::new(Duration::from_millis(40));
        assert_eq!(recent.get_or_read(read), 1);
        assert_eq!(recent.get_or_read(read), 1, "shared while fresh");
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(recent.get_or_read(read), 2, "read again once stale");
    }

    #[test]
    fn with_no_age_every_call_reads() {
        let recent = Recent::new(Duration::ZERO);
        let reads = Cell::new(0);
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(1));
            recent.get_or_read(|| reads.set(reads.get() + 1));
        }
        assert_eq!(reads.get(), 3);
    }
}
