//! One side probe for every check that needs it at once: checks of the same address that run
//! together share one nearby-port sweep and one liveness probe, instead of each sending its own
//! twenty SYNs to the same host.
//!
//! A check takes a shared result only when that probe started after the check itself did, so
//! what it reports was seen during the check, as if it had probed alone. A check that arrives
//! while a probe of its address is running cannot take that one; it waits for the next, which
//! starts as soon as the running one ends and is shared by every check that arrived meanwhile.
//! So at most one probe of an address runs at a time and one waits: a lone check never waits,
//! and a thousand checks of one closed port in a second cost the host as many sweeps as fit
//! one after another, not a thousand.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::{OnceCell, watch};

/// How many probes may be remembered at once; beyond it, finished ones are forgotten, and when
/// every one is still running a new probe runs unshared.
pub const CAPACITY: usize = 4_096;

/// The longest a waiting probe waits for the running one to end (a running probe ends at its
/// own deadline; this bounds a wait on one whose every caller has gone).
const MAX_WAIT: Duration = Duration::from_secs(5);

/// Probes keyed by what they ask, each remembered with the moment it started.
pub struct SharedSweeps<K, V> {
    /// The newest probe for each key.
    entries: Mutex<HashMap<K, Sweep<V>>>,
    /// The most entries kept.
    capacity: usize,
}

/// One probe: when it started (unset while it waits for the one before), its result once it
/// has one, and whether it has ended.
struct Sweep<V> {
    started: Arc<OnceLock<Instant>>,
    result: Arc<OnceCell<V>>,
    ended: Arc<watch::Sender<bool>>,
}

impl<V> Sweep<V> {
    fn new() -> Sweep<V> {
        Sweep {
            started: Arc::new(OnceLock::new()),
            result: Arc::new(OnceCell::new()),
            ended: Arc::new(watch::Sender::new(false)),
        }
    }

    /// Whether a check that started at `since` may take this probe's result: it has not
    /// started yet, or started after the check did.
    fn serves(&self, since: Instant) -> bool {
        self.started.get().is_none_or(|started| *started >= since)
    }

    fn has_ended(&self) -> bool {
        *self.ended.borrow()
    }
}

/// What a caller waits on or runs: the probe's cells, and the running probe to let end first.
struct Slot<V> {
    started: Arc<OnceLock<Instant>>,
    result: Arc<OnceCell<V>>,
    ended: Arc<watch::Sender<bool>>,
    after: Option<watch::Receiver<bool>>,
}

impl<K: Hash + Eq + Clone, V: Clone> SharedSweeps<K, V> {
    /// An empty set holding at most `capacity` probes.
    pub fn new(capacity: usize) -> SharedSweeps<K, V> {
        SharedSweeps { entries: Mutex::new(HashMap::new()), capacity }
    }

    /// The result of the probe for `key` that started at or after `since` (the asking check's
    /// start), running `probe` when there is none. Callers that arrive while it waits to start
    /// or runs wait for it; if the caller running it is dropped, a waiting one runs its own
    /// `probe` instead.
    pub async fn get_or_probe<F, Fut>(&self, key: K, since: Instant, probe: F) -> V
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V>,
    {
        let Some(slot) = self.slot(key, since) else { return probe().await };
        let Slot { started, result, ended, after } = slot;
        let run = || async move {
            if let Some(mut running) = after {
                let _ = tokio::time::timeout(MAX_WAIT, running.wait_for(|ended| *ended)).await;
            }
            let _ = started.set(Instant::now());
            let value = probe().await;
            ended.send_replace(true);
            value
        };
        result.get_or_init(run).await.clone()
    }

    /// The probe to wait on or run, or `None` when no room is left to share.
    fn slot(&self, key: K, since: Instant) -> Option<Slot<V>> {
        let mut entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let newest = entries.get(&key);
        if let Some(sweep) = newest.filter(|sweep| sweep.serves(since)) {
            return Some(Slot {
                started: sweep.started.clone(),
                result: sweep.result.clone(),
                ended: sweep.ended.clone(),
                after: None,
            });
        }
        let after = newest.filter(|sweep| !sweep.has_ended()).map(|sweep| sweep.ended.subscribe());
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            entries.retain(|_, sweep| !sweep.has_ended());
            if entries.len() >= self.capacity {
                return None;
            }
        }
        let sweep = Sweep::new();
        let slot = Slot {
            started: sweep.started.clone(),
            result: sweep.result.clone(),
            ended: sweep.ended.clone(),
            after,
        };
        entries.insert(key, sweep);
        Some(slot)
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

    fn now() -> Instant {
        Instant::now()
    }

    /// A probe that counts its runs and takes a while, returning its run number.
    async fn counted(runs: &AtomicU32) -> u32 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        runs.fetch_add(1, Ordering::SeqCst) + 1
    }

    #[tokio::test(start_paused = true)]
    async fn checks_that_started_before_a_running_probe_share_it() {
        let sweeps = SharedSweeps::new(16);
        let runs = AtomicU32::new(0);
        let since = now();
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
        let first = sweeps.get_or_probe("a", now(), || counted(&runs)).await;
        tokio::time::advance(Duration::from_millis(1)).await;
        let later = sweeps.get_or_probe("a", now(), || counted(&runs)).await;
        assert_eq!((first, later), (1, 2), "a check started after the first probe probes anew");
        let other = sweeps.get_or_probe("b", now(), || counted(&runs)).await;
        assert_eq!(other, 3, "another key is another probe");
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_runner_hands_the_probe_to_a_waiting_check() {
        let sweeps = SharedSweeps::new(16);
        let runs = AtomicU32::new(0);
        let since = now();
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
            sweeps.get_or_probe(key, now(), || counted(&runs)).await;
            assert!(sweeps.len() <= 4, "{} remembered", sweeps.len());
        }
        assert_eq!(runs.load(Ordering::SeqCst), 100);
    }

    #[tokio::test(start_paused = true)]
    async fn checks_arriving_while_a_probe_runs_share_the_next_one_which_starts_after_them() {
        let sweeps = Arc::new(SharedSweeps::new(16));
        let runs = Arc::new(AtomicU32::new(0));
        // The probe answers its run number and when it started; the first one runs a while.
        let probe = |runs: Arc<AtomicU32>| async move {
            let started = now();
            (counted(&runs).await, started)
        };
        let first = {
            let (sweeps, runs) = (sweeps.clone(), runs.clone());
            tokio::spawn(async move { sweeps.get_or_probe("a", now(), || probe(runs)).await })
        };
        tokio::task::yield_now().await; // the first probe starts
        // Three checks start one after another while it runs.
        let mut checks = Vec::new();
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(1)).await;
            let (sweeps, runs, since) = (sweeps.clone(), runs.clone(), now());
            let check =
                async move { (since, sweeps.get_or_probe("a", since, || probe(runs)).await) };
            checks.push(tokio::spawn(check));
            tokio::task::yield_now().await; // it asks now
        }
        let (first_run, first_started) = first.await.unwrap();
        assert_eq!(first_run, 1);
        for check in checks {
            let (since, (run, started)) = check.await.unwrap();
            assert_eq!(run, 2, "one more probe for the three");
            assert!(started >= since, "the shared probe started after each check");
            assert!(started > first_started);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lone_check_after_a_probe_ended_probes_at_once() {
        let sweeps = SharedSweeps::new(16);
        let runs = AtomicU32::new(0);
        sweeps.get_or_probe("a", now(), || counted(&runs)).await;
        let asked = tokio::time::Instant::now();
        assert_eq!(sweeps.get_or_probe("a", now(), || counted(&runs)).await, 2);
        assert_eq!(asked.elapsed(), Duration::from_millis(20), "only its own probe's time");
    }
}
