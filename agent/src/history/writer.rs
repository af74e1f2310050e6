//! The writer thread: the one place results are written. Callers hand it entries through a
//! bounded channel and never wait for the disk; it writes them in batches (one transaction per
//! batch) and prunes by the retention now and then.
//!
//! A result that cannot be stored is never lost silently: a full queue or a failed write is
//! logged with the result's id and counted in [`Health`], which the API and the CLI show.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tracing::{debug, warn};

use super::formats;
use super::record::Entry;
use super::store::{Retention, RoundRow, Store};

/// How many results may wait for the writer: a request fanned out to a hub's most joined
/// agents (4,096 by default) fits at once. At tens of microseconds a write in a batch, a full
/// queue means the disk has stalled.
pub const QUEUE: usize = 4096;

/// The most results written in one transaction.
const BATCH: usize = 256;

/// How often the retention is applied while results keep coming.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// What the writer is told.
pub enum Command {
    /// Store a result.
    Record(Box<Entry>),
    /// Store a watch's round.
    Round(Box<RoundRow>),
    /// Answer once every result sent before is written (or failed).
    Flush(SyncSender<()>),
}

/// How the history's writes went: what was not stored, and the last reason.
#[derive(Debug, Default)]
pub struct Health {
    /// Results stored.
    pub stored: AtomicU64,
    /// Results not stored: the queue was full or the write failed.
    pub lost: AtomicU64,
    /// Why the last one was not stored.
    pub last_error: Mutex<Option<String>>,
}

impl Health {
    /// Counts `count` results not stored, for `reason`.
    pub fn lose(&self, count: u64, reason: String) {
        self.lost.fetch_add(count, Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason);
    }

    /// Why the last result not stored was not, if one was not.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Sends a watch's round to the writer without waiting; when the queue is full or the writer
/// gone, says so (log and [`Health`]).
pub fn send_round(sender: &SyncSender<Command>, health: &Health, row: RoundRow) {
    let (watch, round) = (row.watch.clone(), row.round.round);
    let reason = match sender.try_send(Command::Round(Box::new(row))) {
        Ok(()) => return,
        Err(TrySendError::Full(_)) => format!("{QUEUE} results were already waiting to be written"),
        Err(TrySendError::Disconnected(_)) => "the history's writer has stopped".to_string(),
    };
    warn!(watch, round, %reason, "a watch's round was not stored in the history");
    health.lose(1, reason);
}

/// Sends `entry` to the writer without waiting; when the queue is full or the writer gone, says
/// so (log and [`Health`]).
pub fn send(sender: &SyncSender<Command>, health: &Health, entry: Entry) {
    let id = entry.id.clone();
    let reason = match sender.try_send(Command::Record(Box::new(entry))) {
        Ok(()) => return,
        Err(TrySendError::Full(_)) => format!("{QUEUE} results were already waiting to be written"),
        Err(TrySendError::Disconnected(_)) => "the history's writer has stopped".to_string(),
    };
    warn!(id, %reason, "a result was not stored in the history");
    health.lose(1, reason);
}

/// Runs the writer until every sender is gone.
pub fn run(
    mut store: Store,
    retention: Retention,
    commands: Receiver<Command>,
    health: Arc<Health>,
) {
    prune(&mut store, retention, &health);
    let mut last_prune = Instant::now();
    let mut batch = Batch::default();
    let mut flushes: Vec<SyncSender<()>> = Vec::new();
    loop {
        let first = match commands.recv_timeout(PRUNE_EVERY) {
            Ok(command) => command,
            Err(RecvTimeoutError::Timeout) => {
                prune(&mut store, retention, &health);
                last_prune = Instant::now();
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        take(first, &mut batch, &mut flushes);
        while batch.entries.len() + batch.rounds.len() < BATCH {
            match commands.try_recv() {
                Ok(command) => take(command, &mut batch, &mut flushes),
                Err(_) => break,
            }
        }
        write(&mut store, &mut batch, &health);
        for flush in flushes.drain(..) {
            let _ = flush.send(());
        }
        if last_prune.elapsed() >= PRUNE_EVERY {
            prune(&mut store, retention, &health);
            last_prune = Instant::now();
        }
    }
}

/// What the writer is about to write.
#[derive(Default)]
struct Batch {
    entries: Vec<Entry>,
    rounds: Vec<RoundRow>,
}

fn take(command: Command, batch: &mut Batch, flushes: &mut Vec<SyncSender<()>>) {
    match command {
        Command::Record(entry) => batch.entries.push(*entry),
        Command::Round(row) => batch.rounds.push(*row),
        Command::Flush(done) => flushes.push(done),
    }
}

/// Writes and empties `batch`: the results, then the rounds that name them.
fn write(store: &mut Store, batch: &mut Batch, health: &Health) {
    write_entries(store, &mut batch.entries, health);
    if batch.rounds.is_empty() {
        return;
    }
    if let Err(error) = store.insert_rounds(&batch.rounds) {
        let rounds: Vec<(&str, u64)> =
            batch.rounds.iter().map(|row| (row.watch.as_str(), row.round.round)).collect();
        warn!(%error, ?rounds, "watch rounds were not stored in the history");
        health.lose(batch.rounds.len() as u64, error.to_string());
    }
    batch.rounds.clear();
}

/// Writes and empties `batch`; a failure loses the batch, loudly.
fn write_entries(store: &mut Store, batch: &mut Vec<Entry>, health: &Health) {
    if batch.is_empty() {
        return;
    }
    match store.insert(batch) {
        Ok(()) => {
            health.stored.fetch_add(batch.len() as u64, Ordering::Relaxed);
        }
        Err(error) => {
            let ids: Vec<&str> = batch.iter().map(|entry| entry.id.as_str()).collect();
            warn!(%error, ?ids, "results were not stored in the history");
            health.lose(batch.len() as u64, error.to_string());
        }
    }
    batch.clear();
}

/// Applies the retention; a failure is logged (the results stay, nothing is lost).
fn prune(store: &mut Store, retention: Retention, health: &Health) {
    match store.prune(retention, formats::unix_ms(SystemTime::now())) {
        Ok(0) => {}
        Ok(removed) => debug!(removed, "pruned the history"),
        Err(error) => {
            warn!(%error, "could not prune the history");
            *health.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(error.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::record::{Asker, Document, Kind};

    fn entry() -> Entry {
        Entry {
            id: formats::new_id(),
            kind: Kind::Check,
            host: "db".into(),
            port: Some(1),
            input: "db:1".into(),
            started_ms: 0,
            finished_ms: 0,
            asker: Asker { vantage: "local".into(), token: None, source: "cli", watch: None },
            cause: None,
            reachable: None,
            connect_us: None,
            summary: None,
            report: Document::Json("{}".into()),
        }
    }

    #[test]
    fn a_result_that_finds_the_queue_full_or_the_writer_gone_is_counted_with_the_reason() {
        let health = Health::default();
        let (sender, receiver) = std::sync::mpsc::sync_channel(1);
        send(&sender, &health, entry());
        send(&sender, &health, entry());
        assert_eq!(health.lost.load(Ordering::Relaxed), 1);
        assert!(health.last_error().unwrap().contains("waiting to be written"));
        drop(receiver);
        send(&sender, &health, entry());
        assert_eq!(health.lost.load(Ordering::Relaxed), 2);
        assert!(health.last_error().unwrap().contains("stopped"));
    }

    #[test]
    fn a_write_that_fails_loses_its_batch_loudly_and_the_writer_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("history.sqlite")).unwrap();
        let health = Health::default();
        let first = entry();
        let duplicate = Entry { input: "again".into(), ..first.clone() };
        write_entries(&mut store, &mut vec![first], &health);
        write_entries(&mut store, &mut vec![duplicate], &health);
        assert_eq!(health.stored.load(Ordering::Relaxed), 1);
        assert_eq!(health.lost.load(Ordering::Relaxed), 1, "the id is unique: the second failed");
        write_entries(&mut store, &mut vec![entry()], &health);
        assert_eq!(health.stored.load(Ordering::Relaxed), 2);
    }
}
