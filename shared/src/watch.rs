//! Watches that run inside an agent: the same check repeated every so often, kept running
//! when the page closes and across the agent's restarts, stopped from the page or
//! `whyrefused watches`.
//!
//! The agent's HTTP API carries them (same admission rules as every `/api` route; a `POST`
//! must be `Content-Type: application/json`):
//!
//! - `POST /api/watches` with a [`WatchSpec`] → `201` and the new [`WatchInfo`];
//! - `GET /api/watches` → a [`WatchListing`];
//! - `GET /api/watches/{id}` → one [`WatchInfo`];
//! - `GET /api/watches/{id}/rounds?since=&limit=` → [`WatchRounds`], oldest first (the
//!   page's timeline: `since=` is RFC 3339 or a duration back from now, as for results);
//! - `DELETE /api/watches/{id}` → `204`; the watch stops and stays listed as stopped.
//!
//! Durations are written as the command line writes them: `10ms`, `30s`, `10m`, `24h`, `30d`;
//! a quorum as `2/3` ("down when 2 of the 3 vantage points fail").

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Cause, CheckRequest, Outcome};

/// What a watch repeats, how often, from where, and whom it tells.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchSpec {
    /// The check each round runs (its `retries` are ignored: the watch is the repetition).
    pub check: CheckRequest,
    /// The pause between the starts of two rounds (`10s`); at least the agent's shortest
    /// (`serve --min-watch-every`).
    pub every: String,
    /// Stop after this many rounds; without it the watch runs until stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// The vantage points each round runs from, by name (`all` for every joined one, `local`
    /// for this agent); empty means this agent alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from: Vec<String>,
    /// With several vantage points: down when this many of them fail (`2/3`); without it,
    /// down when any fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum: Option<String>,
    /// A URL to POST each change to (Slack- and Mattermost-compatible); it obeys the agent's
    /// target policy. A listing shows only its scheme and host (the rest is often a secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
}

/// Whether a watch still runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum WatchState {
    Running,
    /// Stopped by someone (`by` is the token's name, when the agent has tokens).
    Stopped {
        at: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
    /// Ran its `count` rounds.
    Finished {
        at: String,
    },
}

/// One watch, as listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchInfo {
    /// Its short stable id.
    pub id: String,
    /// What it repeats (the webhook shown as its scheme and host only).
    pub spec: WatchSpec,
    /// When it was made (RFC 3339) and by whom (the token's name, on an agent with tokens).
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// Running, stopped or finished.
    #[serde(flatten)]
    pub state: WatchState,
    /// What it has seen so far.
    pub summary: WatchSummary,
    /// Its latest round.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<WatchRound>,
}

/// The answer to `GET /api/watches`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchListing {
    /// Newest first, running and ended alike.
    pub watches: Vec<WatchInfo>,
    /// How many may run at once on this agent (`serve --max-watches`).
    pub max_running: usize,
    /// The shortest `every` this agent takes (`serve --min-watch-every`).
    pub min_every: String,
}

/// One round of a watch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchRound {
    /// Its number, from 1.
    pub round: u64,
    /// When it started (RFC 3339).
    pub at: String,
    /// Its cause: with several vantage points, [`Cause::Reachable`] while fewer than the
    /// quorum fail, else the cause most of the failing ones gave.
    pub cause: Cause,
    /// Whether it counts as up.
    pub reachable: bool,
    /// Its connect time in milliseconds (with several vantage points, the slowest of those
    /// that connected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_ms: Option<f64>,
    /// Its cause differs from the round before (the first round never counts as a change).
    pub changed: bool,
    /// The stored result of this round (with several vantage points, of the first whose cause
    /// is the round's, else of this agent's part, else of the first one's), which `/#/r/ID`
    /// opens; a changed round's holds the full diagnosis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// Each vantage point's part, with several.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vantages: Vec<VantageRound>,
}

/// One vantage point's part of a round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VantageRound {
    pub vantage: String,
    /// Its cause; `unknown` when it gave no verdict (then `outcome` says why).
    pub cause: Cause,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// How its part ended when it did not run to the end: `vantage_offline`,
    /// `vantage_timeout` or `rejected` (it counts as failing the round).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
}

/// The answer to `GET /api/watches/{id}/rounds`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchRounds {
    /// Oldest first.
    pub rounds: Vec<WatchRound>,
}

/// One change of cause.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// The round that saw it, from 1.
    pub round: u64,
    /// When that round started (RFC 3339).
    pub at: String,
    /// The cause before and after.
    pub from: Cause,
    pub to: Cause,
    /// The stored result of the diagnosed round, when it was stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
}

/// What a watch saw, as it prints when it ends and as the page shows beside its timeline.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct WatchSummary {
    /// Rounds run.
    pub rounds: u64,
    /// The share of rounds that reached the target.
    pub uptime_percent: f64,
    /// How many rounds ended with each cause.
    pub causes: BTreeMap<String, u64>,
    /// How many times the cause changed.
    pub change_count: u64,
    /// The latest changes, oldest first.
    pub changes: Vec<Change>,
    /// The connect times.
    pub connect_ms: Latency,
}

/// Connect-time percentiles, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Latency {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub max: Option<f64>,
}
