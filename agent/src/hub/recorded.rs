//! What a request that ran here or at a vantage point leaves in the agent's history: its report,
//! folded from its events as the client's is, stored once it ends (off the runtime's workers:
//! the history's writer thread does the writing).

use std::time::SystemTime;

use whyrefused_shared::{CheckEvent, CheckReport, ScanEvent, ScanReport};

use super::local::Plan;
use crate::history::{Asker, Entry, History};

/// One request's report as its events are folded.
pub enum Folded {
    Check(CheckReport),
    Scan(ScanReport),
}

impl Folded {
    /// An empty report of the kind `plan` makes.
    pub fn of(plan: &Plan) -> Folded {
        match plan {
            Plan::Check(_) => Folded::Check(CheckReport::default()),
            Plan::Scan(_) => Folded::Scan(ScanReport::default()),
        }
    }

    /// Folds a check's event in (a scan's report ignores it).
    pub fn check(&mut self, event: &CheckEvent) {
        if let Folded::Check(report) = self {
            report.apply(event);
        }
    }

    /// Folds a scan's event in (a check's report ignores it).
    pub fn scan(&mut self, event: &ScanEvent) {
        if let Folded::Scan(report) = self {
            report.apply(event);
        }
    }

    /// The history entry of the finished request `plan` asked for, asked by `asker`.
    pub fn entry(&self, plan: &Plan, asker: Asker) -> Option<Entry> {
        let now = SystemTime::now();
        match (self, plan) {
            (Folded::Check(report), _) => Entry::of_check(report, asker, now),
            (Folded::Scan(report), Plan::Scan(plan)) => {
                Some(Entry::of_scan(report, plan.host.ascii(), asker, now))
            }
            (Folded::Scan(_), Plan::Check(_)) => None,
        }
    }

    /// Stores the finished request in `history`, when the agent keeps one; returns the id it
    /// is stored under (queued for the writer, which counts it lost if it cannot write it).
    pub fn store(&self, history: Option<&History>, plan: &Plan, asker: Asker) -> Option<String> {
        match (history, self.entry(plan, asker)) {
            (Some(history), Some(entry)) => Some(history.record(entry)),
            _ => None,
        }
    }
}
