//! Stored results, as the agent's HTTP API gives them (`GET /api/results`, `/api/results/{id}`)
//! and the page's History view and `/#/r/ID` links read them.
//!
//! The agent keeps every check and scan it runs (see the agent's `history` module); a query
//! lists [`ResultSummary`]s, newest first, in a [`ResultListing`]; one result comes back as a
//! [`StoredResult`] with its whole report.

use serde::{Deserialize, Serialize};

/// What ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultKind {
    /// A connectivity check; its report is a [`crate::CheckReport`] (the document
    /// `whyrefused check --json` prints).
    Check,
    /// A port scan; its report is a [`crate::ScanReport`].
    Scan,
}

impl ResultKind {
    /// Its name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            ResultKind::Check => "check",
            ResultKind::Scan => "scan",
        }
    }

    /// The kind a stored name means.
    pub fn from_stored(text: &str) -> ResultKind {
        match text {
            "scan" => ResultKind::Scan,
            _ => ResultKind::Check,
        }
    }
}

/// One stored result, as listed: everything but the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultSummary {
    /// Its short stable id (what `/#/r/ID` and `GET /api/results/{id}` name).
    pub id: String,
    /// When it started and ended (RFC 3339, UTC, milliseconds).
    pub at: String,
    pub finished_at: String,
    /// `check` or `scan`.
    pub kind: ResultKind,
    /// What the user typed.
    pub target: String,
    /// The host and port it was stored under.
    pub host: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Where it ran from (`local`, or a joined agent's name).
    pub vantage: String,
    /// The token's name of whoever asked, when the agent has tokens.
    pub asked_by: Option<String>,
    /// Through what: `cli`, `watch`, `websocket`, `hub`.
    pub source: String,
    /// The cause, or a scan's outcome.
    pub cause: Option<String>,
    /// Whether a check reached its target.
    pub reachable: Option<bool>,
    /// The connect time in milliseconds.
    pub connect_ms: Option<f64>,
    /// The verdict's sentence, or a scan's counts.
    pub summary: Option<String>,
    /// The watch it is a round of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch: Option<String>,
}

/// One stored result with its whole report: `R` is the report's type, a
/// [`crate::CheckReport`] or a [`crate::ScanReport`] as [`ResultSummary::kind`] says (a reader
/// that does not know yet reads it as a JSON value first).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredResult<R> {
    #[serde(flatten)]
    pub summary: ResultSummary,
    /// The report as it was when the request ended.
    pub report: R,
}

/// The answer to `GET /api/results`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultListing {
    /// The results, newest first.
    pub results: Vec<ResultSummary>,
    /// Results this agent could not store since it started (never silently lost).
    pub unstored: u64,
    /// Why the last of them was not stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unstored_reason: Option<String>,
}
