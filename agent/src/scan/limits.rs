//! How many connects a scan may have in flight: sized from the open-files limit, so a scan never
//! fails with "too many open files", whatever `ulimit -n` says (a low limit only makes it slower).

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// Descriptors kept free for everything else the process does (the server's sockets, logs,
/// `/proc` reads) while scans run.
pub const RESERVED_DESCRIPTORS: u64 = 64;

/// The smallest window a scan gets; fewer free descriptors than this are found by backing off.
pub const MIN_WINDOW: usize = 8;

/// The largest window: enough for 10,000 silent ports to wait out one deadline together, small
/// enough that the kernel's memory for half-open sockets stays modest.
pub const MAX_WINDOW: usize = 16_384;

/// Raises the soft open-files limit to the hard one (allowed without privileges) and returns the
/// soft limit now in force.
pub fn raise_open_files_limit() -> u64 {
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 1024;
    };
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return hard;
    }
    soft
}

/// How many descriptors this process has open now (`/proc/self/fd`).
pub fn open_descriptors() -> u64 {
    std::fs::read_dir("/proc/self/fd").map_or(0, |entries| entries.count() as u64)
}

/// The window for one scan that shares the free descriptors with `scans` scans in all
/// (itself included).
pub fn window_for(scans: usize) -> usize {
    let limit = raise_open_files_limit();
    let free = limit.saturating_sub(open_descriptors() + RESERVED_DESCRIPTORS);
    let share = free / scans.max(1) as u64;
    usize::try_from(share).unwrap_or(MAX_WINDOW).clamp(MIN_WINDOW, MAX_WINDOW)
}

/// The agent's scan slots: how many scans run at once, agent-wide, and each one's share of the
/// connect window. One place hands them out, for a session's scans and a hub's local part alike.
#[derive(Debug, Clone)]
pub struct ScanSlots {
    permits: std::sync::Arc<tokio::sync::Semaphore>,
    max: usize,
}

/// A running scan's slot, given back when dropped, and its connect window.
#[derive(Debug)]
pub struct ScanSlot {
    _permit: tokio::sync::OwnedSemaphorePermit,
    /// How many connects the scan may have in flight.
    pub window: usize,
}

impl ScanSlots {
    /// At most `max` scans at once.
    pub fn new(max: usize) -> ScanSlots {
        ScanSlots { permits: std::sync::Arc::new(tokio::sync::Semaphore::new(max)), max }
    }

    /// The most scans at once.
    pub fn max(&self) -> usize {
        self.max
    }

    /// A slot for one more scan, or the refusal to send when every slot is taken.
    pub fn try_start(&self) -> Result<ScanSlot, String> {
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            return Err(format!(
                "this agent already runs {} scans, its limit: wait for one to finish (or start \
                 the agent with a higher --max-scans)",
                self.max
            ));
        };
        let running = self.max - self.permits.available_permits();
        Ok(ScanSlot { _permit: permit, window: window_for(running) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_reaches_the_hard_one() {
        let raised = raise_open_files_limit();
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        assert_eq!((raised, soft), (hard, hard));
    }

    #[test]
    fn windows_stay_within_bounds_and_shrink_when_shared() {
        let alone = window_for(1);
        assert!((MIN_WINDOW..=MAX_WINDOW).contains(&alone));
        assert!(window_for(1_000_000) == MIN_WINDOW);
        assert!(window_for(4) <= alone);
    }
}
