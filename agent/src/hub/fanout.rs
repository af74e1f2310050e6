//! One client request run at several vantage points at once.
//!
//! Each vantage point's events go to the client tagged with its name, and each one's stream ends
//! with its own `done`: a real one, or one the hub makes up when the vantage point was offline
//! (`vantage_offline`), went offline mid-way (its link closed, or fell silent for the ping
//! timeout), or refused the request (`rejected`, after its error). Once every one has ended, the
//! reports are compared and the cross-vantage verdict goes out as `vantages_done`.

use std::net::IpAddr;
use std::time::Instant;

use futures::future::join_all;
use tokio_util::sync::CancellationToken;
use tracing::info;
use whyrefused_shared::{
    AgentMessage, CheckEvent, CheckReport, CheckRequest, ClientMessage, ErrorCode, Outcome,
    RequestId, ScanEvent, ScanReport, ScanRequest, ScanStep, Step,
};

use super::local::{self, Plan, Refused, Said, Stops};
use super::registry::Vantage;
use crate::app::AppState;
use crate::clock;
use crate::scan::limits::ScanSlots;
use crate::verdict::cross::{VantageCheck, compare_checks, compare_scans};
use crate::wire::Outbox;

/// What a client asked for.
#[derive(Debug, Clone)]
pub enum Work {
    /// A check.
    Check(CheckRequest),
    /// A scan.
    Scan(ScanRequest),
}

/// A validated request, ready to run anywhere: the request as the client sent it (for joined
/// agents, which validate it again against their own policy) and the hub's own plan of it.
pub struct Job {
    work: Work,
    plan: Plan,
}

impl Job {
    /// Validates the request once, at the hub (so a bad target is one error, not one per
    /// vantage point), against the hub's own policy and limits. The hub's own part names its
    /// listeners' owners only when `show_processes` (each joined agent decides for its own).
    /// What the hub's policy can decide without resolving (an address literal, the ports) is
    /// decided here, before anything is forwarded; each vantage point checks every rule again
    /// on the addresses its own resolver gives (a name may resolve differently there).
    pub fn new(work: Work, state: &AppState, show_processes: bool) -> Result<Job, Refused> {
        let plan = match &work {
            Work::Check(request) => Plan::check(request, state, show_processes),
            Work::Scan(request) => Plan::scan(request, state),
        };
        let plan = plan.and_then(|plan| match plan.unresolved_denial() {
            Some(denial) => Err(Refused { code: ErrorCode::PolicyDenied, message: denial }),
            None => Ok(plan),
        });
        let plan = plan.map_err(|refused| match refused.code {
            ErrorCode::PolicyDenied => Refused {
                message: format!(
                    "the hub ({}) denies this request before forwarding it: {}",
                    state.agent.hostname, refused.message
                ),
                ..refused
            },
            _ => refused,
        })?;
        Ok(Job { work, plan })
    }

    fn describe(&self) -> (&'static str, String) {
        match &self.work {
            Work::Check(request) => ("check", request.target.clone()),
            Work::Scan(request) => ("scan", request.target.clone()),
        }
    }
}

/// A request being run at several vantage points.
pub(crate) struct Fanout {
    /// The client's id for it.
    pub id: RequestId,
    /// The client's socket.
    pub outbox: Outbox,
    /// Cancelled by the client's `cancel`: passed on to every vantage point.
    pub cancel: CancellationToken,
    /// Cancelled when the hub shuts down.
    pub shutdown: CancellationToken,
    /// Where to run it.
    pub vantages: Vec<Vantage>,
    /// The hub's scan slots, for its local part of a scan.
    pub scans: ScanSlots,
}

/// One vantage point's report as it is folded.
enum Report {
    Check(CheckReport),
    Scan(ScanReport),
}

/// Folds one vantage point's events and passes them on, tagged.
struct Fold<'a> {
    name: &'a str,
    id: RequestId,
    outbox: &'a Outbox,
    report: Report,
    start: Instant,
}

impl Fold<'_> {
    fn send(&self, message: AgentMessage) {
        let _ = self.outbox.message(&message);
    }

    fn check(&mut self, event: CheckEvent) {
        if let Report::Check(report) = &mut self.report {
            report.apply(&event);
        }
        self.send(AgentMessage::Event { id: self.id, vantage: Some(self.name.into()), event });
    }

    fn scan(&mut self, event: ScanEvent) {
        if let Report::Scan(report) = &mut self.report {
            report.apply(&event);
        }
        self.send(AgentMessage::Scan { id: self.id, vantage: Some(self.name.into()), event });
    }

    fn is_done(&self) -> bool {
        match &self.report {
            Report::Check(report) => report.outcome.is_some(),
            Report::Scan(report) => report.outcome.is_some(),
        }
    }

    /// The `done` of a vantage point that did not send its own.
    fn end(&mut self, outcome: Outcome) {
        let (at, elapsed_us) = (clock::now(), clock::micros(self.start.elapsed()));
        match &self.report {
            Report::Check(_) => {
                self.check(CheckEvent { at, step: Step::Done { outcome, elapsed_us } })
            }
            Report::Scan(report) => {
                let counts = report.counts;
                self.scan(ScanEvent { at, step: ScanStep::Done { outcome, counts, elapsed_us } })
            }
        }
    }

    fn error(&self, code: ErrorCode, message: String) {
        let vantage = self.name.to_string();
        self.send(AgentMessage::VantageError { id: self.id, vantage, code, message });
    }
}

impl Fanout {
    /// Runs the job at every vantage point, then sends the comparison.
    pub async fn run(self, job: Job) -> RequestId {
        let runs = self.vantages.iter().map(|vantage| self.run_at(vantage, &job));
        let reports: Vec<Report> = join_all(runs).await;
        let verdict = match &job.plan {
            Plan::Check(_) => {
                let addresses: Vec<Vec<IpAddr>> = self.vantages.iter().map(addresses_of).collect();
                let checks: Vec<VantageCheck<'_>> = self
                    .vantages
                    .iter()
                    .zip(&reports)
                    .zip(&addresses)
                    .filter_map(|((vantage, report), addresses)| match report {
                        Report::Check(report) => {
                            Some(VantageCheck { name: vantage.name(), addresses, report })
                        }
                        Report::Scan(_) => None,
                    })
                    .collect();
                compare_checks(&checks)
            }
            Plan::Scan(_) => {
                let scans: Vec<(&str, &ScanReport)> = self
                    .vantages
                    .iter()
                    .zip(&reports)
                    .filter_map(|(vantage, report)| match report {
                        Report::Scan(report) => Some((vantage.name(), report)),
                        Report::Check(_) => None,
                    })
                    .collect();
                compare_scans(&scans)
            }
        };
        let (kind, target) = job.describe();
        info!(
            target: "whyrefused::audit",
            id = %self.id,
            kind,
            target,
            vantage = %self.vantages.iter().map(Vantage::name).collect::<Vec<_>>().join(","),
            result = verdict.cause.as_str(),
            "request"
        );
        let _ = self.outbox.message(&AgentMessage::VantagesDone { id: self.id, verdict });
        self.id
    }

    /// Runs the job at one vantage point, passing its events on; returns its report.
    async fn run_at(&self, vantage: &Vantage, job: &Job) -> Report {
        let report = match job.plan {
            Plan::Check(_) => Report::Check(CheckReport::default()),
            Plan::Scan(_) => Report::Scan(ScanReport::default()),
        };
        let mut fold = Fold {
            name: vantage.name(),
            id: self.id,
            outbox: &self.outbox,
            report,
            start: Instant::now(),
        };
        match vantage {
            Vantage::Local => self.run_local(&mut fold, job).await,
            Vantage::Remote { link, .. } => {
                let request = |id| match &job.work {
                    Work::Check(request) => {
                        ClientMessage::Check { id, request: request.clone(), from: None }
                    }
                    Work::Scan(request) => {
                        ClientMessage::Scan { id, request: request.clone(), from: None }
                    }
                };
                match link.start(request) {
                    Some(remote) => self.follow_remote(&mut fold, remote).await,
                    None => fold.end(Outcome::VantageOffline),
                }
            }
            Vantage::Offline { .. } => fold.end(Outcome::VantageOffline),
        }
        fold.report
    }

    async fn run_local(&self, fold: &mut Fold<'_>, job: &Job) {
        let stops = Stops { cancel: self.cancel.clone(), shutdown: self.shutdown.clone() };
        let ran = local::run(&job.plan, &self.scans, &stops, |said| match said {
            Said::Check(event) => fold.check(event),
            Said::Scan(event) => fold.scan(event),
            Said::Error(code, message) => fold.error(code, message),
        })
        .await;
        if let Err(refused) = ran {
            fold.error(refused.code, refused.message);
            fold.end(Outcome::Rejected);
        }
    }

    /// Passes a joined agent's answers on until its `done`; makes one up if it refuses the
    /// request or goes offline. A cancel (or the hub's shutdown) is passed on to it.
    async fn follow_remote(&self, fold: &mut Fold<'_>, mut remote: super::link::RemoteRequest) {
        let mut stopping = false;
        loop {
            tokio::select! {
                answer = remote.answers.recv() => match answer {
                    Some(AgentMessage::Event { event, .. }) => fold.check(event),
                    Some(AgentMessage::Scan { event, .. }) => fold.scan(event),
                    Some(AgentMessage::Error { code, message, .. }) => {
                        fold.error(code, message);
                        if code != ErrorCode::ShuttingDown {
                            return fold.end(Outcome::Rejected);
                        }
                    }
                    Some(_) => {}
                    None => return fold.end(Outcome::VantageOffline),
                },
                () = self.cancel.cancelled(), if !stopping => {
                    stopping = true;
                    remote.cancel();
                }
                () = self.shutdown.cancelled(), if !stopping => {
                    stopping = true;
                    remote.cancel();
                }
            }
            if fold.is_done() {
                return;
            }
        }
    }
}

fn addresses_of(vantage: &Vantage) -> Vec<IpAddr> {
    match vantage {
        Vantage::Local => crate::probe::icmp::local_addresses(),
        Vantage::Remote { addresses, .. } => addresses.clone(),
        Vantage::Offline { .. } => Vec::new(),
    }
}
