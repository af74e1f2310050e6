//! What one stored result is: the [`Entry`] a caller hands to history (built from a check's or a
//! scan's report by [`Entry::of_check`] and [`Entry::of_scan`]), and what a query gives back:
//! a [`Summary`] per result, the [`Stored`] result with its whole report.

use std::time::SystemTime;

use whyrefused_shared::{CheckReport, ScanReport};

use super::formats;

pub use whyrefused_shared::history::{ResultKind as Kind, ResultSummary as Summary};

/// Who asked for a result and through what, as stored beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asker {
    /// Where it ran from: `local` for this host, else the joined agent's name.
    pub vantage: String,
    /// The token's name, on an agent that requires tokens.
    pub token: Option<String>,
    /// Through what it was asked: `cli`, `watch`, `websocket` (the page, `--via`) or `hub` (a
    /// hub this agent joined).
    pub source: &'static str,
    /// The watch it is a round of, if any.
    pub watch: Option<String>,
}

/// One result to store.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Its id, made when the entry is, so the caller can name it before it is written.
    pub id: String,
    /// A check or a scan.
    pub kind: Kind,
    /// The host as the resolver was asked (ASCII, an IP literal without brackets): what
    /// `?target=HOST` matches.
    pub host: String,
    /// The port of a check; `None` for a scan.
    pub port: Option<u16>,
    /// What the user typed.
    pub input: String,
    /// When it started and ended, in milliseconds since the Unix epoch.
    pub started_ms: i64,
    pub finished_ms: i64,
    /// Who asked, from where.
    pub asker: Asker,
    /// A check's cause (`refused`, `reachable` …) or a scan's outcome.
    pub cause: Option<String>,
    /// Whether a check reached its target.
    pub reachable: Option<bool>,
    /// The quickest successful connect of a check, else its first connect's time, in µs.
    pub connect_us: Option<u64>,
    /// The verdict's sentence, or a scan's counts.
    pub summary: Option<String>,
    /// The whole report, turned into JSON by the writer thread (off the async runtime).
    pub report: Document,
}

/// A report to store.
#[derive(Debug, Clone)]
pub enum Document {
    Check(Box<CheckReport>),
    Scan(Box<ScanReport>),
    /// Already JSON.
    Json(String),
}

impl Document {
    /// The report as JSON text.
    pub fn to_json(&self) -> String {
        let encoded = match self {
            Document::Check(report) => serde_json::to_string(report),
            Document::Scan(report) => serde_json::to_string(report),
            Document::Json(text) => return text.clone(),
        };
        encoded.unwrap_or_else(|_| "null".into())
    }
}

impl Entry {
    /// The entry of a finished check, or `None` when its report has no target (it was refused
    /// before it started).
    pub fn of_check(report: &CheckReport, asker: Asker, finished: SystemTime) -> Option<Entry> {
        let target = report.target.as_ref()?;
        let verdict = report.verdict.as_ref();
        let finished_ms = formats::unix_ms(finished);
        Some(Entry {
            id: formats::new_id(),
            kind: Kind::Check,
            host: target.host.clone(),
            port: Some(target.port),
            input: target.input.clone(),
            started_ms: started_ms(report.started_at.as_ref(), finished_ms, report.elapsed_us),
            finished_ms,
            asker,
            cause: verdict.map(|v| v.cause.as_str().to_string()),
            reachable: verdict.map(|v| v.cause.is_reachable()),
            connect_us: connect_us(report),
            summary: verdict.map(|v| v.summary.clone()),
            report: Document::Check(Box::new(report.clone())),
        })
    }

    /// The entry of a finished scan of `host` (as the resolver was asked).
    pub fn of_scan(report: &ScanReport, host: String, asker: Asker, finished: SystemTime) -> Entry {
        let finished_ms = formats::unix_ms(finished);
        let counts = report.counts;
        Entry {
            id: formats::new_id(),
            kind: Kind::Scan,
            host,
            port: None,
            input: report.target.clone(),
            started_ms: started_ms(report.started_at.as_ref(), finished_ms, report.elapsed_us),
            finished_ms,
            asker,
            cause: report.outcome.map(|outcome| outcome.as_str().to_string()),
            reachable: None,
            connect_us: None,
            summary: Some(format!("{} open of {} ports", counts.open, counts.total())),
            report: Document::Scan(Box::new(report.clone())),
        }
    }
}

/// When a request started: its own timestamp, else its end less its duration.
fn started_ms(
    started_at: Option<&whyrefused_shared::Timestamp>,
    finished_ms: i64,
    elapsed_us: Option<u64>,
) -> i64 {
    let parsed = started_at.and_then(|at| humantime::parse_rfc3339(&at.0).ok());
    match parsed {
        Some(at) => formats::unix_ms(at),
        None => finished_ms - i64::try_from(elapsed_us.unwrap_or(0) / 1000).unwrap_or(0),
    }
}

/// A check's connect time: its quickest open connect, else its first attempt's.
pub fn connect_us(report: &CheckReport) -> Option<u64> {
    let open = report
        .attempts
        .iter()
        .filter(|a| a.state == whyrefused_shared::ConnectState::Open)
        .map(|a| a.elapsed_us)
        .min();
    open.or_else(|| report.attempts.first().map(|a| a.elapsed_us))
}

/// One stored result with its whole report, as JSON.
pub type Stored = whyrefused_shared::StoredResult<serde_json::Value>;
