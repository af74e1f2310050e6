//! The history file itself: one SQLite database (WAL, a busy timeout, versioned migrations),
//! written and read with plain blocking calls. Callers on the async runtime reach it only
//! through the writer thread ([`super::writer`]) or `spawn_blocking`.
//!
//! Several agents may share one file: WAL lets readers run beside the one writer, and the busy
//! timeout makes a writer wait its turn (up to [`BUSY_TIMEOUT`]) instead of failing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, params};

use super::formats;
use super::record::{Entry, Kind, Stored, Summary};

/// How long a statement waits for another connection's write lock before failing.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The migrations, in order: the database's `user_version` is how many have run. Append only:
/// a released migration never changes.
const MIGRATIONS: [&str; 1] = [
    // 1: results, with the columns a watch and a quorum across vantage points will filter on.
    "CREATE TABLE results (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        host TEXT NOT NULL,
        port INTEGER,
        input TEXT NOT NULL,
        started_ms INTEGER NOT NULL,
        finished_ms INTEGER NOT NULL,
        vantage TEXT NOT NULL,
        asked_by TEXT,
        source TEXT NOT NULL,
        watch TEXT,
        cause TEXT,
        reachable INTEGER,
        connect_us INTEGER,
        summary TEXT,
        report TEXT NOT NULL
    );
    CREATE INDEX results_by_target ON results (host, port, started_ms);
    CREATE INDEX results_by_time ON results (started_ms);
    CREATE INDEX results_by_watch ON results (watch, started_ms) WHERE watch IS NOT NULL;",
];

/// Why the history file cannot be used; each says which file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the history's directory {path}: {source}")]
    Directory { path: PathBuf, source: std::io::Error },
    #[error(
        "the history file {path} is not a SQLite database (damaged, or another file): move it \
         away, or give --state-dir another directory, or --no-history"
    )]
    NotADatabase { path: PathBuf },
    #[error(
        "the history file {path} stayed locked by another process for {seconds} s: is \
         something holding a long write on it?"
    )]
    Locked { path: PathBuf, seconds: u64 },
    #[error(
        "the history file {path} was written by a newer whyrefused (schema {found}, this one \
         knows {known}): upgrade, or give --state-dir another directory"
    )]
    Newer { path: PathBuf, found: i64, known: usize },
    #[error("reading the history stopped: {0}")]
    Interrupted(String),
    #[error("the history file {path}: {source}")]
    Sqlite { path: PathBuf, source: rusqlite::Error },
}

/// An open history file.
pub struct Store {
    connection: Connection,
    path: PathBuf,
}

/// What a query asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// Only results of this host (any port, scans included), or of this host and port.
    pub host: Option<String>,
    pub port: Option<u16>,
    /// Only results that started at or after this time (milliseconds since the epoch).
    pub since_ms: Option<i64>,
    /// Only the rounds of this watch.
    pub watch: Option<String>,
    /// At most this many, newest first.
    pub limit: usize,
}

/// The retention: results older than `max_age` go, then the oldest until the file's used
/// pages fit `max_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub max_age: Option<Duration>,
    pub max_bytes: Option<u64>,
}

impl Retention {
    /// Thirty days, 500 MB.
    pub const DEFAULT: Retention =
        Retention { max_age: Some(Duration::from_secs(30 * 86_400)), max_bytes: Some(500_000_000) };
}

/// The columns a [`Summary`] is read from, in order.
const SUMMARY_COLUMNS: &str = "id, kind, host, port, input, started_ms, finished_ms, vantage, \
     asked_by, source, watch, cause, reachable, connect_us, summary";

impl Store {
    /// Opens (creating it and its directory when missing) and migrates the file at `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(directory) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(directory)
                .map_err(|source| StoreError::Directory { path: directory.into(), source })?;
        }
        let connection = Connection::open(path).map_err(|e| classify(path, e))?;
        let mut store = Store { connection, path: path.to_path_buf() };
        store.configure().map_err(|e| classify(path, e))?;
        store.migrate()?;
        Ok(store)
    }

    /// Opens an existing file for reading only (no migration: a file being created by another
    /// process is read once it is).
    pub fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connection = Connection::open_with_flags(path, flags).map_err(|e| classify(path, e))?;
        connection.busy_timeout(BUSY_TIMEOUT).map_err(|e| classify(path, e))?;
        let store = Store { connection, path: path.to_path_buf() };
        let version = store.version()?;
        if version > MIGRATIONS.len() as i64 {
            return Err(StoreError::Newer {
                path: path.into(),
                found: version,
                known: MIGRATIONS.len(),
            });
        }
        Ok(store)
    }

    /// WAL (readers beside a writer, another agent included), the busy timeout, and pages
    /// given back to the file system as results are pruned.
    fn configure(&self) -> rusqlite::Result<()> {
        self.connection.busy_timeout(BUSY_TIMEOUT)?;
        // Must come before the first table: it decides the file's layout.
        self.connection.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
        self.connection.pragma_update(None, "journal_mode", "WAL")?;
        // With WAL, NORMAL loses at most the last commits on a power cut, never the file.
        self.connection.pragma_update(None, "synchronous", "NORMAL")?;
        Ok(())
    }

    fn version(&self) -> Result<i64, StoreError> {
        self.connection
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(|e| classify(&self.path, e))
    }

    /// Runs the migrations this file has not seen, each in its own transaction.
    fn migrate(&mut self) -> Result<(), StoreError> {
        let path = self.path.clone();
        let sqlite = |source| classify(&path, source);
        let found = self.version()?;
        if found > MIGRATIONS.len() as i64 {
            return Err(StoreError::Newer { path, found, known: MIGRATIONS.len() });
        }
        for (index, migration) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
            // IMMEDIATE: two agents starting on a new file take turns; the second sees the
            // first's version and skips the migration.
            let transaction = self
                .connection
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(sqlite)?;
            let now: i64 = transaction
                .pragma_query_value(None, "user_version", |row| row.get(0))
                .map_err(sqlite)?;
            if now > index as i64 {
                continue;
            }
            transaction.execute_batch(migration).map_err(sqlite)?;
            transaction.pragma_update(None, "user_version", index as i64 + 1).map_err(sqlite)?;
            transaction.commit().map_err(sqlite)?;
        }
        Ok(())
    }

    /// Stores `entries` in one transaction.
    pub fn insert(&mut self, entries: &[Entry]) -> Result<(), StoreError> {
        let path = self.path.clone();
        let sqlite = |source| classify(&path, source);
        let transaction = self.connection.transaction().map_err(sqlite)?;
        {
            let mut insert = transaction
                .prepare_cached(
                    "INSERT INTO results (id, kind, host, port, input, started_ms, finished_ms, \
                     vantage, asked_by, source, watch, cause, reachable, connect_us, summary, \
                     report) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, \
                     ?14, ?15, ?16)",
                )
                .map_err(sqlite)?;
            for entry in entries {
                insert
                    .execute(params![
                        entry.id,
                        entry.kind.as_str(),
                        entry.host,
                        entry.port,
                        entry.input,
                        entry.started_ms,
                        entry.finished_ms,
                        entry.asker.vantage,
                        entry.asker.token,
                        entry.asker.source,
                        entry.asker.watch,
                        entry.cause,
                        entry.reachable,
                        entry.connect_us.map(|us| i64::try_from(us).unwrap_or(i64::MAX)),
                        entry.summary,
                        entry.report.to_json(),
                    ])
                    .map_err(sqlite)?;
            }
        }
        transaction.commit().map_err(sqlite)
    }

    /// The results `query` asks for, newest first.
    pub fn query(&self, query: &Query) -> Result<Vec<Summary>, StoreError> {
        let mut conditions = vec!["started_ms >= ?1"];
        if query.host.is_some() {
            conditions.push("host = ?2");
        }
        if query.port.is_some() {
            conditions.push("port = ?3");
        }
        if query.watch.is_some() {
            conditions.push("watch = ?4");
        }
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS} FROM results WHERE {} \
             ORDER BY started_ms DESC, seq DESC LIMIT ?5",
            conditions.join(" AND ")
        );
        let sqlite = |source| classify(&self.path, source);
        let mut statement = self.connection.prepare_cached(&sql).map_err(sqlite)?;
        let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
        let parameters =
            params![query.since_ms.unwrap_or(i64::MIN), query.host, query.port, query.watch, limit];
        let rows = statement.query_map(parameters, summary_of).map_err(sqlite)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(sqlite)
    }

    /// The result with this id, with its report.
    pub fn get(&self, id: &str) -> Result<Option<Stored>, StoreError> {
        let sql = format!("SELECT {SUMMARY_COLUMNS}, report FROM results WHERE id = ?1");
        let sqlite = |source| classify(&self.path, source);
        let mut statement = self.connection.prepare_cached(&sql).map_err(sqlite)?;
        statement
            .query_row([id], |row| {
                let summary = summary_of(row)?;
                let report: String = row.get(15)?;
                Ok(Stored {
                    summary,
                    report: serde_json::from_str(&report).unwrap_or(serde_json::Value::Null),
                })
            })
            .optional()
            .map_err(sqlite)
    }

    /// How many results the file holds.
    pub fn count(&self) -> Result<u64, StoreError> {
        self.connection
            .query_row("SELECT count(*) FROM results", [], |row| row.get::<_, i64>(0))
            .map(|n| u64::try_from(n).unwrap_or(0))
            .map_err(|e| classify(&self.path, e))
    }

    /// The bytes the file's pages in use take (free pages left out).
    pub fn used_bytes(&self) -> Result<u64, StoreError> {
        let pragma = |name: &str| {
            self.connection
                .pragma_query_value(None, name, |row| row.get::<_, i64>(0))
                .map_err(|e| classify(&self.path, e))
        };
        let used_pages = pragma("page_count")? - pragma("freelist_count")?;
        Ok(u64::try_from(used_pages * pragma("page_size")?).unwrap_or(0))
    }

    /// Deletes what `retention` no longer keeps, as of `now_ms`; returns how many results went.
    pub fn prune(&mut self, retention: Retention, now_ms: i64) -> Result<u64, StoreError> {
        let sqlite = |source| classify(&self.path, source);
        let mut removed = 0u64;
        if let Some(age) = retention.max_age {
            let cutoff = now_ms.saturating_sub(i64::try_from(age.as_millis()).unwrap_or(i64::MAX));
            removed += self
                .connection
                .execute("DELETE FROM results WHERE started_ms < ?1", [cutoff])
                .map_err(sqlite)? as u64;
        }
        if let Some(limit) = retention.max_bytes {
            // A few rounds at most: each removes the share of rows the excess suggests.
            for _ in 0..8 {
                let used = self.used_bytes()?;
                let rows = self.count()?;
                if used <= limit || rows == 0 {
                    break;
                }
                let share = 1.0 - limit as f64 / used as f64;
                let doomed = ((rows as f64 * share).ceil() as u64 + rows / 100).clamp(1, rows);
                removed += self
                    .connection
                    .execute(
                        "DELETE FROM results WHERE seq IN \
                         (SELECT seq FROM results ORDER BY started_ms, seq LIMIT ?1)",
                        [i64::try_from(doomed).unwrap_or(i64::MAX)],
                    )
                    .map_err(sqlite)? as u64;
                self.connection.execute_batch("PRAGMA incremental_vacuum").map_err(sqlite)?;
            }
        }
        if removed > 0 {
            self.connection
                .execute_batch("PRAGMA incremental_vacuum; PRAGMA wal_checkpoint(TRUNCATE);")
                .map_err(sqlite)?;
        }
        Ok(removed)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A row of [`SUMMARY_COLUMNS`] as a summary.
fn summary_of(row: &rusqlite::Row<'_>) -> rusqlite::Result<Summary> {
    let kind: String = row.get(1)?;
    let connect_us: Option<i64> = row.get(13)?;
    Ok(Summary {
        id: row.get(0)?,
        kind: Kind::from_stored(&kind),
        host: row.get(2)?,
        port: row.get(3)?,
        target: row.get(4)?,
        at: formats::rfc3339_ms(row.get(5)?),
        finished_at: formats::rfc3339_ms(row.get(6)?),
        vantage: row.get(7)?,
        asked_by: row.get(8)?,
        source: row.get(9)?,
        watch: row.get(10)?,
        cause: row.get(11)?,
        reachable: row.get(12)?,
        connect_ms: connect_us.map(|us| us as f64 / 1000.0),
        summary: row.get(14)?,
    })
}

/// A SQLite error, told apart where the user can act on it.
fn classify(path: &Path, source: rusqlite::Error) -> StoreError {
    let path = path.to_path_buf();
    match source.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => StoreError::NotADatabase { path },
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            StoreError::Locked { path, seconds: BUSY_TIMEOUT.as_secs() }
        }
        _ => StoreError::Sqlite { path, source },
    }
}

#[cfg(test)]
mod tests;
