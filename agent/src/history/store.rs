//! The history file itself: one SQLite database (WAL, a busy timeout, versioned migrations),
//! written and read with plain blocking calls. Callers on the async runtime reach it only
//! through the writer thread ([`super::writer`]) or `spawn_blocking`.
//!
//! Several agents may share one file: WAL lets readers run beside the one writer, and the busy
//! timeout makes a writer wait its turn (up to [`BUSY_TIMEOUT`]) instead of failing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, params};

use whyrefused_shared::{Cause, WatchRound};

use super::formats;
use super::record::{Entry, Kind, Stored, Summary};

/// How long a statement waits for another connection's write lock before failing.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The migrations, in order: the database's `user_version` is how many have run. Append only:
/// a released migration never changes.
const MIGRATIONS: [&str; 2] = [
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
    // 2: the agent's own watches (their spec as JSON, who made and ended them), and each
    // round of a watch as it counted: its cause across vantage points, whether it changed,
    // each vantage point's part (JSON).
    "CREATE TABLE watches (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        spec TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        created_by TEXT,
        state TEXT NOT NULL,
        ended_ms INTEGER,
        ended_by TEXT,
        summary TEXT
    );
    CREATE TABLE watch_rounds (
        seq INTEGER PRIMARY KEY,
        watch TEXT NOT NULL,
        round INTEGER NOT NULL,
        started_ms INTEGER NOT NULL,
        cause TEXT NOT NULL,
        reachable INTEGER NOT NULL,
        connect_us INTEGER,
        changed INTEGER NOT NULL,
        result TEXT,
        vantages TEXT
    );
    CREATE INDEX watch_rounds_by_watch ON watch_rounds (watch, round);
    CREATE INDEX watch_rounds_by_time ON watch_rounds (started_ms);",
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

/// One round of a watch, to store.
#[derive(Debug, Clone)]
pub struct RoundRow {
    /// The watch's id.
    pub watch: String,
    /// The round as it counted.
    pub round: WatchRound,
}

/// How a stored watch stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchRowState {
    Running,
    Stopped,
    Finished,
}

impl WatchRowState {
    fn as_str(&self) -> &'static str {
        match self {
            WatchRowState::Running => "running",
            WatchRowState::Stopped => "stopped",
            WatchRowState::Finished => "finished",
        }
    }

    fn from_stored(text: &str) -> WatchRowState {
        match text {
            "stopped" => WatchRowState::Stopped,
            "finished" => WatchRowState::Finished,
            _ => WatchRowState::Running,
        }
    }
}

/// One stored watch.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchRow {
    pub id: String,
    /// Its spec as JSON (the webhook URL whole: it is needed to resume the watch).
    pub spec: String,
    pub created_ms: i64,
    pub created_by: Option<String>,
    pub state: WatchRowState,
    /// When it stopped or finished, and who stopped it.
    pub ended_ms: Option<i64>,
    pub ended_by: Option<String>,
    /// Its summary as JSON, once it ended.
    pub summary: Option<String>,
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
        self.switch_to_wal()?;
        // With WAL, NORMAL loses at most the last commits on a power cut, never the file.
        self.connection.pragma_update(None, "synchronous", "NORMAL")?;
        Ok(())
    }

    /// Switching the journal mode needs the file to itself, and SQLite answers "busy" at once,
    /// without its busy handler, while another process opens the same new file: wait our turn
    /// here, as long as any other wait.
    fn switch_to_wal(&self) -> rusqlite::Result<()> {
        let started = std::time::Instant::now();
        loop {
            match self.connection.pragma_update(None, "journal_mode", "WAL") {
                Err(error)
                    if error.sqlite_error_code() == Some(ErrorCode::DatabaseBusy)
                        && started.elapsed() < BUSY_TIMEOUT =>
                {
                    std::thread::sleep(Duration::from_millis(5));
                }
                result => return result,
            }
        }
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

    /// Stores the rounds of watches in one transaction.
    pub fn insert_rounds(&mut self, rounds: &[RoundRow]) -> Result<(), StoreError> {
        let path = self.path.clone();
        let sqlite = |source| classify(&path, source);
        let transaction = self.connection.transaction().map_err(sqlite)?;
        {
            let mut insert = transaction
                .prepare_cached(
                    "INSERT INTO watch_rounds (watch, round, started_ms, cause, reachable, \
                     connect_us, changed, result, vantages) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, \
                     ?8, ?9)",
                )
                .map_err(sqlite)?;
            for row in rounds {
                let round = &row.round;
                let started_ms = humantime::parse_rfc3339(&round.at).map_or(0, formats::unix_ms);
                let vantages = match round.vantages.is_empty() {
                    true => None,
                    false => serde_json::to_string(&round.vantages).ok(),
                };
                insert
                    .execute(params![
                        row.watch,
                        i64::try_from(round.round).unwrap_or(i64::MAX),
                        started_ms,
                        round.cause.as_str(),
                        round.reachable,
                        round.connect_ms.map(|ms| (ms * 1000.0).round() as i64),
                        round.changed,
                        round.result,
                        vantages,
                    ])
                    .map_err(sqlite)?;
            }
        }
        transaction.commit().map_err(sqlite)
    }

    /// The latest `limit` rounds of `watch` that started at or after `since_ms`, oldest first.
    pub fn rounds(
        &self,
        watch: &str,
        since_ms: Option<i64>,
        limit: usize,
    ) -> Result<Vec<WatchRound>, StoreError> {
        let sqlite = |source| classify(&self.path, source);
        let mut statement = self
            .connection
            .prepare_cached(
                "SELECT round, started_ms, cause, reachable, connect_us, changed, result, \
                 vantages FROM watch_rounds WHERE watch = ?1 AND started_ms >= ?2 \
                 ORDER BY round DESC, seq DESC LIMIT ?3",
            )
            .map_err(sqlite)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = statement
            .query_map(params![watch, since_ms.unwrap_or(i64::MIN), limit], |row| {
                let cause: String = row.get(2)?;
                let connect_us: Option<i64> = row.get(4)?;
                let vantages: Option<String> = row.get(7)?;
                Ok(WatchRound {
                    round: u64::try_from(row.get::<_, i64>(0)?).unwrap_or(0),
                    at: formats::rfc3339_ms(row.get(1)?),
                    cause: serde_json::from_value(serde_json::Value::String(cause))
                        .unwrap_or(Cause::Unknown),
                    reachable: row.get(3)?,
                    connect_ms: connect_us.map(|us| us as f64 / 1000.0),
                    changed: row.get(5)?,
                    result: row.get(6)?,
                    vantages: vantages
                        .and_then(|json| serde_json::from_str(&json).ok())
                        .unwrap_or_default(),
                })
            })
            .map_err(sqlite)?;
        let mut rounds = rows.collect::<Result<Vec<_>, _>>().map_err(sqlite)?;
        rounds.reverse();
        Ok(rounds)
    }

    /// Stores a new watch.
    pub fn insert_watch(&mut self, watch: &WatchRow) -> Result<(), StoreError> {
        self.connection
            .execute(
                "INSERT INTO watches (id, spec, created_ms, created_by, state, ended_ms, \
                 ended_by, summary) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    watch.id,
                    watch.spec,
                    watch.created_ms,
                    watch.created_by,
                    watch.state.as_str(),
                    watch.ended_ms,
                    watch.ended_by,
                    watch.summary,
                ],
            )
            .map(|_| ())
            .map_err(|e| classify(&self.path, e))
    }

    /// Marks a watch stopped or finished, at `ended_ms`, by `by`, with its summary.
    pub fn end_watch(
        &mut self,
        id: &str,
        state: WatchRowState,
        ended_ms: i64,
        by: Option<&str>,
        summary: &str,
    ) -> Result<(), StoreError> {
        self.connection
            .execute(
                "UPDATE watches SET state = ?2, ended_ms = ?3, ended_by = ?4, summary = ?5 \
                 WHERE id = ?1",
                params![id, state.as_str(), ended_ms, by, summary],
            )
            .map(|_| ())
            .map_err(|e| classify(&self.path, e))
    }

    /// Every running watch, and the latest `ended` that ended, newest first.
    pub fn watches(&self, ended: usize) -> Result<Vec<WatchRow>, StoreError> {
        let sqlite = |source| classify(&self.path, source);
        let mut statement = self
            .connection
            .prepare_cached(
                "SELECT id, spec, created_ms, created_by, state, ended_ms, ended_by, summary \
                 FROM watches WHERE state = 'running' OR seq IN (SELECT seq FROM watches \
                 WHERE state != 'running' ORDER BY ended_ms DESC, seq DESC LIMIT ?1) \
                 ORDER BY created_ms DESC, seq DESC",
            )
            .map_err(sqlite)?;
        let limit = i64::try_from(ended).unwrap_or(i64::MAX);
        let rows = statement
            .query_map([limit], |row| {
                let state: String = row.get(4)?;
                Ok(WatchRow {
                    id: row.get(0)?,
                    spec: row.get(1)?,
                    created_ms: row.get(2)?,
                    created_by: row.get(3)?,
                    state: WatchRowState::from_stored(&state),
                    ended_ms: row.get(5)?,
                    ended_by: row.get(6)?,
                    summary: row.get(7)?,
                })
            })
            .map_err(sqlite)?;
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
            // A watch's rounds go with their results (the watch itself stays listed).
            self.connection
                .execute("DELETE FROM watch_rounds WHERE started_ms < ?1", [cutoff])
                .map_err(sqlite)?;
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
