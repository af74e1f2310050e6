//! Watches: the same check repeated, each round compared with the one before. The parts:
//!
//! - [`Watch`] (here): the rounds seen so far: the current cause, the changes with their
//!   timestamps, the count of each cause, connect times for the percentiles, the recent rounds
//!   for a sparkline; and [`WatchSummary`], what a watch prints when it ends.
//! - [`rounds`]: one watch's rounds, for every caller alike (the command line's `whyrefused
//!   watch`, here or through a hub, and the agent's own watches): each round run at its vantage
//!   points, combined, diagnosed on a change, stored with the watch's id, the change POSTed.
//! - [`quorum`]: "down when N of M vantage points fail", and how a round's parts combine.
//! - [`spec`]: an agent-side watch's [`WatchSpec`](whyrefused_shared::WatchSpec) checked field
//!   by field against the agent's limits and target policy.
//! - [`webhook`]: the POST sent on each change (Slack- and Mattermost-compatible `text`), with
//!   retries and a timeout, its target held to the target policy.
//!
//! A round whose cause differs from the previous one's (and the first round) is *diagnosed*:
//! it runs the full check, every side probe and the path trace, so the evidence stored is from
//! the moment of the change.
//!
//! Layer: above check and history (it runs the one and feeds the other), below the hub and
//! the command line. Where a round runs is a [`rounds::Source`] given from above: the command
//! line's (here, or through a hub's socket) and the hub's fan-out for the agent's own watches
//! (`hub::watches`).

pub mod quorum;
pub mod rounds;
pub mod spec;
pub mod webhook;

use std::collections::{BTreeMap, VecDeque};

use whyrefused_shared::{Cause, CheckReport};
pub use whyrefused_shared::{Change, Latency, WatchSummary};

use crate::history::record::connect_us;

/// How many recent rounds the sparkline shows.
pub const RECENT_ROUNDS: usize = 24;

/// How many rounds' connect times the percentiles are taken over: the latest ones.
pub const LATENCY_WINDOW: usize = 100_000;

/// How many changes a summary lists: the latest ones (the count covers all).
pub const MAX_CHANGES: usize = 1_000;

/// How one round compares with the one before.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    /// Its number, from 1.
    pub round: u64,
    /// Its cause differs from the previous round's (never true for the first round).
    pub changed: bool,
    /// The previous round's cause.
    pub previous: Option<Cause>,
    /// Its cause.
    pub cause: Cause,
}

/// One recent round, for the sparkline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Recent {
    /// Whether it reached the target.
    pub reachable: bool,
    /// Its connect time in milliseconds.
    pub connect_ms: Option<f64>,
}

/// The rounds of one watch so far.
#[derive(Debug, Default)]
pub struct Watch {
    rounds: u64,
    reachable_rounds: u64,
    causes: BTreeMap<&'static str, u64>,
    last: Option<Cause>,
    changes: VecDeque<Change>,
    change_count: u64,
    connect_ms: VecDeque<f64>,
    max_connect_ms: Option<f64>,
    recent: VecDeque<Recent>,
    /// The number of the last round (rounds go on from it when a stored watch resumes).
    last_round: u64,
}

impl Watch {
    /// Whether a round that ended `cause` needs the full diagnosis: it is the first, or its
    /// cause differs from the last round's.
    pub fn needs_diagnosis(&self, cause: Cause) -> bool {
        self.last != Some(cause)
    }

    /// The cause of the last round.
    pub fn last_cause(&self) -> Option<Cause> {
        self.last
    }

    /// The number of the last round (0 before the first).
    pub fn last_round(&self) -> u64 {
        self.last_round
    }

    /// Counts a finished round that started `at`, stored as `result`.
    pub fn observe(&mut self, at: &str, report: &CheckReport, result: Option<String>) -> Observed {
        let cause = report.verdict.as_ref().map_or(Cause::Unknown, |v| v.cause);
        let connect_ms = connect_us(report).map(|us| us as f64 / 1000.0);
        self.observe_cause(at, cause, connect_ms, result)
    }

    /// Counts the next round, which started `at` and ended `cause` (across vantage points).
    pub fn observe_cause(
        &mut self,
        at: &str,
        cause: Cause,
        connect_ms: Option<f64>,
        result: Option<String>,
    ) -> Observed {
        self.observe_numbered(self.last_round + 1, at, cause, connect_ms, result)
    }

    /// Counts round `round` (a stored one, replayed when its watch resumes).
    pub fn observe_numbered(
        &mut self,
        round: u64,
        at: &str,
        cause: Cause,
        connect_ms: Option<f64>,
        result: Option<String>,
    ) -> Observed {
        self.rounds += 1;
        self.last_round = round;
        let previous = self.last.replace(cause);
        let changed = previous.is_some_and(|previous| previous != cause);
        *self.causes.entry(cause.as_str()).or_default() += 1;
        if cause.is_reachable() {
            self.reachable_rounds += 1;
        }
        if let Some(ms) = connect_ms {
            if self.connect_ms.len() == LATENCY_WINDOW {
                self.connect_ms.pop_front();
            }
            self.connect_ms.push_back(ms);
            self.max_connect_ms = Some(self.max_connect_ms.map_or(ms, |max| max.max(ms)));
        }
        if self.recent.len() == RECENT_ROUNDS {
            self.recent.pop_front();
        }
        self.recent.push_back(Recent { reachable: cause.is_reachable(), connect_ms });
        if let (true, Some(from)) = (changed, previous) {
            self.change_count += 1;
            if self.changes.len() == MAX_CHANGES {
                self.changes.pop_front();
            }
            let change = Change { round, at: at.to_string(), from, to: cause, result };
            self.changes.push_back(change);
        }
        Observed { round, changed, previous, cause }
    }

    /// The last change, if there was one.
    pub fn last_change(&self) -> Option<Change> {
        self.changes.back().cloned()
    }

    /// The recent rounds, oldest first.
    pub fn recent(&self) -> impl Iterator<Item = &Recent> {
        self.recent.iter()
    }

    /// What the watch saw, so far.
    pub fn summary(&self) -> WatchSummary {
        let mut sorted: Vec<f64> = self.connect_ms.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        WatchSummary {
            rounds: self.rounds,
            uptime_percent: match self.rounds {
                0 => 0.0,
                rounds => self.reachable_rounds as f64 * 100.0 / rounds as f64,
            },
            causes: self.causes.iter().map(|(cause, count)| (cause.to_string(), *count)).collect(),
            change_count: self.change_count,
            changes: self.changes.iter().cloned().collect(),
            connect_ms: Latency {
                p50: percentile(&sorted, 50.0),
                p95: percentile(&sorted, 95.0),
                max: self.max_connect_ms,
            },
        }
    }
}

/// The nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], percent: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (percent / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use whyrefused_shared::{Attempt, ConnectState, Family, Timestamp, Verdict};

    fn report(cause: Cause, connect_ms: u64) -> CheckReport {
        let attempt = Attempt {
            address: "127.0.0.1".parse().unwrap(),
            port: 5432,
            family: Family::Ipv4,
            state: if cause.is_reachable() { ConnectState::Open } else { ConnectState::Refused },
            errno: None,
            icmp: None,
            elapsed_us: connect_ms * 1000,
            elapsed_ms: connect_ms as f64,
            started_at: Timestamp("2026-12-02T09:00:00Z".into()),
        };
        let verdict = Verdict {
            cause,
            summary: String::new(),
            suggestions: vec![],
            evidence: vec![],
            pattern: None,
        };
        CheckReport { attempts: vec![attempt], verdict: Some(verdict), ..CheckReport::default() }
    }

    #[test]
    fn the_first_round_and_each_change_of_cause_are_diagnosed_and_changes_timestamped() {
        let mut watch = Watch::default();
        assert!(watch.needs_diagnosis(Cause::PortClosed), "the first round");
        let first = watch.observe("t1", &report(Cause::PortClosed, 1), None);
        assert!(!first.changed, "the first round is the baseline, not a change");
        assert!(!watch.needs_diagnosis(Cause::PortClosed));
        assert!(watch.needs_diagnosis(Cause::Reachable));
        let opened = watch.observe("t2", &report(Cause::Reachable, 2), Some("id2".into()));
        assert_eq!(
            (opened.round, opened.changed, opened.previous),
            (2, true, Some(Cause::PortClosed))
        );
        watch.observe("t3", &report(Cause::Reachable, 3), None);
        watch.observe("t4", &report(Cause::PortClosed, 4), Some("id4".into()));
        let summary = watch.summary();
        assert_eq!(summary.rounds, 4);
        assert_eq!(summary.uptime_percent, 50.0);
        assert_eq!(summary.causes["port_closed"], 2);
        let changes: Vec<(u64, &str, Cause)> =
            summary.changes.iter().map(|c| (c.round, c.at.as_str(), c.to)).collect();
        assert_eq!(changes, [(2, "t2", Cause::Reachable), (4, "t4", Cause::PortClosed)]);
        assert_eq!(summary.connect_ms.max, Some(4.0));
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 50.0), Some(50.0));
        assert_eq!(percentile(&values, 95.0), Some(95.0));
        assert_eq!(percentile(&[7.0], 95.0), Some(7.0));
        assert_eq!(percentile(&[], 50.0), None);
    }
}
