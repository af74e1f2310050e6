//! [`CheckReport`]: a check's events folded into one document, for the page and `--json`.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::check::{
    Attempt, CheckEvent, Outcome, Resolution, Step, TargetInfo, Timestamp, Verdict,
};
use crate::diagnosis::{Finding, Round};
use crate::path::Path;

/// Everything known about one check so far. Start from [`CheckReport::default`] and
/// [`apply`](CheckReport::apply) each event as it arrives; the page renders the report at every
/// step, and the CLI prints the finished one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckReport {
    /// The parsed target (from `started`).
    pub target: Option<TargetInfo>,
    /// The connect deadline for each address, in milliseconds.
    pub timeout_ms: Option<u32>,
    /// When the check started.
    pub started_at: Option<Timestamp>,
    /// The host name's resolution (from `resolved`).
    pub dns: Option<Resolution>,
    /// The finished connect attempts, in the order the addresses were resolved.
    pub attempts: Vec<Attempt>,
    /// Connects started and not yet finished.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<SocketAddr>,
    /// The extra probes' findings, in the order they ended.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
    /// The trace of the first address (in resolution order) whose path was traced: where its
    /// packets die. Every traced address also has a `path` finding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<Path>,
    /// With retries: each finished round.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rounds: Vec<Round>,
    /// With retries: the round running now, from 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round: Option<u32>,
    /// The conclusion (from `verdict`).
    pub verdict: Option<Verdict>,
    /// How the check ended (from `done`); absent while it runs.
    pub outcome: Option<Outcome>,
    /// The whole check's duration in microseconds (from `done`).
    pub elapsed_us: Option<u64>,
}

impl CheckReport {
    /// Folds one event into the report.
    pub fn apply(&mut self, event: &CheckEvent) {
        match &event.step {
            Step::Started { target, timeout_ms } => {
                self.target = Some(target.clone());
                self.timeout_ms = Some(*timeout_ms);
                self.started_at = Some(event.at.clone());
            }
            Step::Resolved { resolution } => self.dns = Some(resolution.clone()),
            Step::AttemptStarted { address } => self.pending.push(*address),
            Step::AttemptFinished { attempt } => self.finish_attempt(attempt.clone()),
            Step::Finding { finding: Finding::Path(path) } => self.update_path(path),
            Step::Finding { finding } => self.findings.push(finding.clone()),
            Step::RoundStarted { round, .. } => self.start_round(*round),
            Step::RoundFinished { round } => self.rounds.push(round.clone()),
            Step::Verdict { verdict } => self.verdict = Some(verdict.clone()),
            Step::Done { outcome, elapsed_us } => {
                self.outcome = Some(*outcome);
                self.elapsed_us = Some(*elapsed_us);
                self.pending.clear();
            }
        }
    }

    /// Whether the check has ended (completed, cancelled or stopped).
    pub fn is_done(&self) -> bool {
        self.outcome.is_some()
    }

    /// The finished attempt for an address, if any.
    pub fn attempt_for(&self, address: &SocketAddr) -> Option<&Attempt> {
        self.attempts.iter().find(|attempt| attempt.socket_addr() == *address)
    }

    /// A new round replaces the previous round's resolution, attempts and findings.
    fn start_round(&mut self, round: u32) {
        self.round = Some(round);
        if round > 1 {
            self.dns = None;
            self.attempts.clear();
            self.pending.clear();
            self.findings.clear();
            self.path = None;
        }
    }

    /// A path replaces the earlier state of the same address's path (a check streams it as
    /// hops answer); the top-level path is the first traced address's in resolution order.
    fn update_path(&mut self, path: &Path) {
        let same =
            |finding: &Finding| matches!(finding, Finding::Path(p) if p.address == path.address);
        match self.findings.iter_mut().find(|finding| same(finding)) {
            Some(existing) => *existing = Finding::Path(Box::new(path.clone())),
            None => self.findings.push(Finding::Path(Box::new(path.clone()))),
        }
        let order = self.resolution_order();
        let rank = |address| order.iter().position(|ip| *ip == address).unwrap_or(usize::MAX);
        let keep_current = self.path.as_ref().is_some_and(|current| {
            current.address != path.address && rank(current.address) <= rank(path.address)
        });
        if !keep_current {
            self.path = Some(path.clone());
        }
    }

    fn finish_attempt(&mut self, attempt: Attempt) {
        let address = attempt.socket_addr();
        self.pending.retain(|pending| *pending != address);
        self.attempts.push(attempt);
        let order = self.resolution_order();
        self.attempts.sort_by_key(|attempt| {
            order.iter().position(|ip| *ip == attempt.address).unwrap_or(usize::MAX)
        });
    }

    fn resolution_order(&self) -> Vec<IpAddr> {
        self.dns.as_ref().map(|dns| dns.addresses.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{Cause, ConnectState, DnsStatus, Family, PortSource, ResolveMethod};

    fn at(step: Step) -> CheckEvent {
        CheckEvent { at: Timestamp("2026-11-24T10:00:00.000000Z".into()), step }
    }

    fn attempt(address: &str, state: ConnectState) -> Attempt {
        let address: IpAddr = address.parse().unwrap();
        Attempt {
            address,
            port: 80,
            family: Family::of(&address),
            state,
            errno: None,
            icmp: None,
            elapsed_us: 120,
            elapsed_ms: 0.12,
            started_at: Timestamp("2026-11-24T10:00:00.000100Z".into()),
        }
    }

    #[test]
    fn folding_a_whole_check_keeps_resolution_order_and_clears_pending() {
        let mut report = CheckReport::default();
        let target = TargetInfo {
            input: "localhost:80".into(),
            host: "localhost".into(),
            display_host: "localhost".into(),
            port: 80,
            port_source: PortSource::Explicit,
            scheme: None,
            path: None,
        };
        report.apply(&at(Step::Started { target, timeout_ms: 3000 }));
        report.apply(&at(Step::Resolved {
            resolution: Resolution {
                host: "localhost".into(),
                method: ResolveMethod::System,
                status: DnsStatus::Ok,
                addresses: vec!["::1".parse().unwrap(), "127.0.0.1".parse().unwrap()],
                detail: None,
                elapsed_us: 50,
            },
        }));
        report.apply(&at(Step::AttemptStarted { address: "[::1]:80".parse().unwrap() }));
        report.apply(&at(Step::AttemptStarted { address: "127.0.0.1:80".parse().unwrap() }));
        assert_eq!(report.pending.len(), 2);

        // The IPv4 attempt finishes first but is listed second, as resolved.
        report.apply(&at(Step::AttemptFinished {
            attempt: attempt("127.0.0.1", ConnectState::Open),
        }));
        assert_eq!(report.pending, vec!["[::1]:80".parse::<SocketAddr>().unwrap()]);
        report.apply(&at(Step::AttemptFinished { attempt: attempt("::1", ConnectState::Refused) }));
        let order: Vec<String> = report.attempts.iter().map(|a| a.address.to_string()).collect();
        assert_eq!(order, ["::1", "127.0.0.1"]);
        assert!(report.pending.is_empty());
        assert!(!report.is_done());

        let verdict = Verdict {
            cause: Cause::Partial,
            summary: "half".into(),
            suggestions: vec![],
            evidence: vec![],
            pattern: None,
        };
        report.apply(&at(Step::Verdict { verdict }));
        report.apply(&at(Step::Done { outcome: Outcome::Completed, elapsed_us: 900 }));
        assert!(report.is_done());
        assert_eq!(report.verdict.as_ref().map(|v| v.cause), Some(Cause::Partial));
        assert_eq!(report.elapsed_us, Some(900));
    }

    #[test]
    fn a_new_round_starts_its_attempts_afresh_and_keeps_the_timeline() {
        let mut report = CheckReport::default();
        report.apply(&at(Step::RoundStarted { round: 1, of: 2 }));
        report.apply(&at(Step::AttemptFinished {
            attempt: attempt("127.0.0.1", ConnectState::Refused),
        }));
        report.apply(&at(Step::RoundFinished {
            round: Round {
                round: 1,
                at: Timestamp(String::new()),
                cause: Cause::PortClosed,
                http_status: None,
                elapsed_us: 5,
                tries: None,
            },
        }));
        report.apply(&at(Step::RoundStarted { round: 2, of: 2 }));
        assert!(report.attempts.is_empty(), "round 2 starts without round 1's attempts");
        assert_eq!(report.rounds.len(), 1);
        assert_eq!(report.round, Some(2));
    }

    fn path(address: &str, hops: usize, complete: bool) -> Path {
        Path {
            address: address.parse().unwrap(),
            port: 81,
            hops: (1..=hops as u8)
                .map(|ttl| crate::path::Hop {
                    ttl,
                    address: Some(format!("10.0.{ttl}.1").parse().unwrap()),
                    name: None,
                    reply: crate::path::HopReply::TimeExceeded,
                    icmp: None,
                    rtt_ms: Some(0.3),
                    tries: 1,
                    answered: 1,
                })
                .collect(),
            reached: false,
            last_answered: None,
            max_ttl: 30,
            target_ttl: None,
            complete,
            elapsed_us: 10,
        }
    }

    #[test]
    fn a_streamed_path_replaces_its_earlier_state_and_the_first_address_is_the_top_level_one() {
        let mut report = CheckReport::default();
        report.apply(&at(Step::Resolved {
            resolution: Resolution {
                host: "db".into(),
                method: ResolveMethod::System,
                status: DnsStatus::Ok,
                addresses: vec!["10.0.3.2".parse().unwrap(), "10.0.3.3".parse().unwrap()],
                detail: None,
                elapsed_us: 50,
            },
        }));
        let finding = |path| at(Step::Finding { finding: Finding::Path(Box::new(path)) });
        report.apply(&finding(path("10.0.3.3", 1, false)));
        report.apply(&finding(path("10.0.3.2", 1, false)));
        report.apply(&finding(path("10.0.3.2", 2, true)));
        report.apply(&finding(path("10.0.3.3", 2, true)));
        assert_eq!(report.findings.len(), 2, "one path finding per address");
        let top = report.path.as_ref().unwrap();
        assert_eq!((top.address.to_string(), top.hops.len()), ("10.0.3.2".to_string(), 2));
        assert!(top.complete);
    }

    #[test]
    fn cancelling_clears_connects_still_pending() {
        let mut report = CheckReport::default();
        report.apply(&at(Step::AttemptStarted { address: "127.0.0.1:9".parse().unwrap() }));
        report.apply(&at(Step::Done { outcome: Outcome::Cancelled, elapsed_us: 10 }));
        assert!(report.pending.is_empty());
        assert_eq!(report.outcome, Some(Outcome::Cancelled));
    }
}
