//! The history: every check and scan this agent or CLI runs, stored with its whole report, when
//! it ran, where from and who asked, in one SQLite file under the state directory
//! (`history.sqlite`). Nothing to install or start: SQLite is compiled in.
//!
//! - [`formats`]: the pinned formats: durations (`30s`, `10m`, `24h`, `30d`), sizes (`500MB`),
//!   `since=` (RFC 3339 or a duration), result ids.
//! - [`record`]: what is stored ([`Entry`], built from a report) and what a query returns.
//! - [`store`]: the file: schema migrations, WAL, inserts, queries, retention.
//! - [`writer`]: the thread that writes, fed by a bounded queue, so a check never waits for the
//!   disk.
//! - [`csv`]: the CSV export.
//!
//! The layer sits under the hub and the server and beside the CLI, which all feed it; it
//! imports only the wire types (`shared`) and [`crate::target`] (to read a target filter the
//! way a check reads its target).

pub mod csv;
pub mod formats;
pub mod record;
pub mod store;
pub mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{SyncSender, sync_channel};
use std::time::Duration;

pub use record::{Asker, Document, Entry, Kind, Stored, Summary};
pub use store::{Query, Retention, RoundRow, Store, StoreError, WatchRow, WatchRowState};
use writer::{Command, Health};

use crate::target::{Host, Target};

/// The file's name in the state directory.
pub const FILE_NAME: &str = "history.sqlite";

/// The most results one query returns; `limit=` is clamped to it.
pub const MAX_LIMIT: usize = 10_000;

/// How many results a query returns when it does not say.
pub const DEFAULT_LIMIT: usize = 100;

/// The history file in `state_dir`.
pub fn file_in(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE_NAME)
}

/// An open history: a handle on its writer thread. Cheap to clone; the writer stops once every
/// clone is dropped (after writing what it was sent).
#[derive(Clone)]
pub struct History {
    sender: SyncSender<Command>,
    health: Arc<Health>,
    path: Arc<PathBuf>,
}

impl std::fmt::Debug for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("History").field("path", &self.path).finish()
    }
}

impl History {
    /// Opens (or creates) the file at `path` and starts its writer, applying `retention`.
    pub fn open(path: &Path, retention: Retention) -> Result<History, StoreError> {
        let store = Store::open(path)?;
        let (sender, commands) = sync_channel(writer::QUEUE);
        let health = Arc::new(Health::default());
        let thread_health = health.clone();
        std::thread::Builder::new()
            .name("whyrefused-history".into())
            .spawn(move || writer::run(store, retention, commands, thread_health))
            .map_err(|source| StoreError::Directory { path: path.to_path_buf(), source })?;
        Ok(History { sender, health, path: Arc::new(path.to_path_buf()) })
    }

    /// Hands `entry` to the writer without waiting; returns its id. When it cannot be queued
    /// it is logged and counted as lost (see [`History::lost`]).
    pub fn record(&self, entry: Entry) -> String {
        let id = entry.id.clone();
        writer::send(&self.sender, &self.health, entry);
        id
    }

    /// Hands a watch's round to the writer without waiting (as [`History::record`]).
    pub fn record_round(&self, row: RoundRow) {
        writer::send_round(&self.sender, &self.health, row);
    }

    /// Runs `write` on a fresh connection that may write (the watches' rare changes), off the
    /// async runtime's workers.
    pub async fn write<T: Send + 'static>(
        &self,
        write: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let path = self.path.clone();
        let joined = tokio::task::spawn_blocking(move || write(&mut Store::open(&path)?)).await;
        joined.unwrap_or_else(|error| Err(StoreError::Interrupted(error.to_string())))
    }

    /// Waits (blocking, at most `limit`) until everything recorded so far is written; says
    /// whether it was.
    pub fn flush(&self, limit: Duration) -> bool {
        let (done, wait) = sync_channel(1);
        if self.sender.send(Command::Flush(done)).is_err() {
            return false;
        }
        wait.recv_timeout(limit).is_ok()
    }

    /// How many results were not stored, and why the last one was not.
    pub fn lost(&self) -> (u64, Option<String>) {
        (self.health.lost.load(Ordering::Relaxed), self.health.last_error())
    }

    /// How many results this process stored.
    pub fn stored(&self) -> u64 {
        self.health.stored.load(Ordering::Relaxed)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `read` on a fresh read connection, off the async runtime's workers.
    pub async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let path = self.path.clone();
        let joined =
            tokio::task::spawn_blocking(move || read(&Store::open_read_only(&path)?)).await;
        joined.unwrap_or_else(|error| Err(StoreError::Interrupted(error.to_string())))
    }
}

/// Whether this agent keeps a history, and why not when it cannot.
#[derive(Clone, Debug, Default)]
pub enum Availability {
    /// `--no-history`.
    #[default]
    Off,
    /// It was asked for, but the file could not be opened: the reason.
    Unavailable(Arc<str>),
    /// Stored here.
    On(History),
}

impl Availability {
    /// The history, when results are stored.
    pub fn history(&self) -> Option<&History> {
        match self {
            Availability::On(history) => Some(history),
            _ => None,
        }
    }
}

/// Which results a target filter (`?target=`, `whyrefused history TARGET`) means: a target with
/// a port (`db:5432`, `https://db/`) is its checks of that port; a bare host (`db`) is every
/// result about the host, scans included. Read the way a check reads its target, so `DB:5432`
/// and `db:5432` are one.
pub fn target_filter(text: &str) -> Result<(String, Option<u16>), String> {
    if let Ok(target) = Target::parse(text, None) {
        return Ok((target.host.ascii(), Some(target.port)));
    }
    Host::parse(text).map(|host| (host.ascii(), None)).map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_filter_reads_a_port_when_there_is_one_and_means_the_whole_host_otherwise() {
        assert_eq!(target_filter("DB.example:5432"), Ok(("db.example".into(), Some(5432))));
        assert_eq!(target_filter("https://db.example/x"), Ok(("db.example".into(), Some(443))));
        assert_eq!(target_filter("[::1]:80"), Ok(("::1".into(), Some(80))));
        assert_eq!(target_filter("db.example"), Ok(("db.example".into(), None)));
        assert!(target_filter("").is_err());
    }
}
