//! One side probe for every check that needs it at once: checks of the same address that run
//! together share one nearby-port sweep and one liveness probe, instead of each sending its own
//! twenty SYNs to the same host.
//!
//! A check takes a shared result only when that probe started after the check itself did, so
//! what it reports was seen during the check, as if it had probed alone. A thousand clients
//! asking about one closed port at the same moment then cost the host a handful of sweeps, not a
//! thousand (and the agent a few milliseconds of CPU, not a second).

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::OnceCell;

/// How many probes may be remembered at once; beyond it, finished ones are forgotten, and when
/// every one is still running a new probe runs unshared.
pub const CAPACITY: usize = 4_096;

/// Probes keyed by what they ask, each remembered with the moment it started.
pub struct SharedSweeps<K, V> {
    /// The newest probe for each key.
    entries: Mutex<HashMap<K, Sweep<V>>>,
    /// The most entries kept.
    capacity: usize,
}

/// One probe: when it started, and its result once it has one.
struct Sweep<V> {
    /// When the probe was asked for first.
    started: Instant,
    /// Its result, set once by whichever caller runs it.
    result: Arc<OnceCell<V>>,
}

impl<K: Hash + Eq + Clone, V: Clone> SharedSweeps<K, V> {
    /// An empty set holding at most `capacity` probes.
    pub fn new(capacity: usize) -> SharedSweeps<K, V> {
        SharedSweeps { entries: Mutex::new(HashMap::new()), capacity }
    }

    /// The result of the probe for `key` that started at or after `since` (the asking check's
    /// start), running `probe` when there is none. Callers that arrive while it runs wait for
    /// it; if the caller running it is dropped, a waiting one runs its own `probe` instead.
    pub async fn get_or_probe<F, Fut>(&self, key: K, since: Instant, probe: F) -> V
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V>,
    {
        match self.slot(key, since) {
            Some(result) => result.get_or_init(probe).await.clone(),
            None => probe().await,
        }
    }

    /// The shared result cell to wait on or fill, or `None` when no room is left to share.
    fn slot(&self, key: K, since: Instant) -> Option<Arc<OnceCell<V>>> {
        let mut entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(sweep) = entries.get(&key).filter(|sweep| sweep.started >= since) {
            return Some(sweep.result.clone());
        }
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            entries.retain(|_, sweep| !sweep.result.initialized());
            if entries.len() >= self.capacity {
                return None;
            }
        }
        let sweep = Sweep { started: Instant::now(), result: Arc::new(OnceCell::new()) };
        let result = sweep.result.clone();
        entries.insert(key, sweep);
        Some(result)
    }

    /// How many probes are remembered.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    /// A probe that counts its runs and takes a while, returning its run number.
    async fn counted(runs: &AtomicU32) -> u32 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        runs.fetch_add(1, Ordering::SeqCst) + 1
    }

    #[tokio::test(start_paused = true)]
    async fn checks_that_started_before_a_running_probe_share_it() {
        let sweeps = SharedSweeps::new(16);
        let runs = AtomicU32::new(0);
        let since = Instant::now();
        let results = futures::future::join_all(
            (0..100).map(|_| sweeps.get_or_probe("127.0.0.1:81", since, || counted(&runs))),
        )
        .await;
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(results.iter().all(|result| *result == 1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_check_never_takes_a_probe_older_than_itself() {
        let sweeps = SharedSweeps::new(16);
        let runs = AtomicU32::new(0);
        let first = sweeps.get_or_probe("a", Instant::now(), || counted(&runs)).await;
        tokio::time::advance(Duration::from_millis(1)).await;
        let later = sweeps.get_or_probe("a", Instant::now(), || counted(&runs)).await;
        assert_eq!((first, later), (1, 2), "a check started after the first probe probes anew");
        let other = sweeps.get_or_probe("b", Instant::now(), || counted(&runs)).await;
        assert_eq!(other, 3, "another key is another probe");
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_runner_hands_the_probe_to_a_waiting_check() {
        let sweeps = SharedSweeps::new(16);
        let runs = AtomicU32::new(0);
        let since = Instant::now();
        let dropped = sweeps.get_or_probe("a", since, || counted(&runs));
        // The first caller gives up before its probe ends; the second still gets an answer.
        let _ = tokio::time::timeout(Duration::from_millis(5), dropped).await;
        assert_eq!(sweeps.get_or_probe("a", since, || counted(&runs)).await, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_remembered_probes_stay_within_capacity() {
        let sweeps = SharedSweeps::new(4);
        let runs = AtomicU32::new(0);
        for key in 0..100 {
            sweeps.get_or_probe(key, Instant::now(), || counted(&runs)).await;
            assert!(sweeps.len() <= 4, "{} remembered", sweeps.len());
        }
        assert_eq!(runs.load(Ordering::SeqCst), 100);
    }
}
