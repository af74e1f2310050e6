//! Running one validated request here, on this agent: the one runner behind a session's own
//! requests and a hub's `local` part of a request from several vantage points.
//!
//! A scan first takes one of the agent's scan slots (and gives it back just before its `done`
//! goes out, so a client that starts another scan on seeing it is not refused for a scan that
//! has ended). A request stopped by a cancel or the agent's shutdown still ends with a `done`
//! naming why, after an error saying so on shutdown.

use std::time::Instant;

use tokio_util::sync::CancellationToken;
use whyrefused_shared::{
    Cause, CheckEvent, ConnectState, ErrorCode, Outcome, ScanEvent, ScanStep, StateCounts, Step,
};

use crate::app::AppState;
use crate::check::{self, CheckPlan};
use crate::clock;
use crate::scan::limits::ScanSlots;
use crate::scan::{self, ScanPlan};

/// A validated request, ready to run.
pub enum Plan {
    /// A connectivity check.
    Check(CheckPlan),
    /// A port scan.
    Scan(ScanPlan),
}

impl Plan {
    /// What kind of request this is and its target, as the audit log names them.
    pub fn describe(&self) -> (&'static str, String) {
        match self {
            Plan::Check(plan) => ("check", plan.target.input.clone()),
            Plan::Scan(plan) => ("scan", format!("{} ports {}", plan.input, plan.spec.text)),
        }
    }
}

/// What a request run here says, in order.
#[derive(Debug)]
pub enum Said {
    /// One of a check's steps.
    Check(CheckEvent),
    /// One of a scan's steps.
    Scan(ScanEvent),
    /// An error about the request that a `done` follows (the agent shutting down).
    Error(ErrorCode, String),
}

/// How a request that ran here ended, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ran {
    /// How it ended.
    pub outcome: Outcome,
    /// The check's cause, or the scan's open ports of all, or `-`.
    pub result: String,
}

/// Why a request was not run at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The protocol's name for it.
    pub code: ErrorCode,
    /// What to tell the client.
    pub message: String,
}

/// What stops a running request early.
#[derive(Debug, Clone)]
pub struct Stops {
    /// The client's `cancel` (or its socket closing).
    pub cancel: CancellationToken,
    /// The agent shutting down.
    pub shutdown: CancellationToken,
}

/// Runs `plan` here, saying each step through `say`; returns how it ended, or why it could not
/// start (every scan slot taken), in which case nothing was said.
pub async fn run(
    plan: &Plan,
    slots: &ScanSlots,
    stops: &Stops,
    mut say: impl FnMut(Said),
) -> Result<Ran, Refused> {
    let start = Instant::now();
    let mut slot = match plan {
        Plan::Scan(_) => Some(
            slots
                .try_start()
                .map_err(|message| Refused { code: ErrorCode::TooManyScans, message })?,
        ),
        Plan::Check(_) => None,
    };
    let window = slot.as_ref().map_or(0, |slot| slot.window);
    let mut cause: Option<Cause> = None;
    let mut counts = StateCounts::default();
    let stopped = {
        let work = async {
            match plan {
                Plan::Check(plan) => {
                    check::run(plan, |event| {
                        if let Step::Verdict { verdict } = &event.step {
                            cause = Some(verdict.cause);
                        }
                        say(Said::Check(event))
                    })
                    .await
                }
                Plan::Scan(plan) => {
                    scan::run(plan, window, |event| {
                        match &event.step {
                            ScanStep::Progress(progress) => count(&mut counts, progress),
                            ScanStep::Done { .. } => drop(slot.take()),
                            _ => {}
                        }
                        say(Said::Scan(event))
                    })
                    .await
                }
            }
        };
        tokio::select! {
            () = work => None,
            () = stops.cancel.cancelled() => Some(Outcome::Cancelled),
            () = stops.shutdown.cancelled() => Some(Outcome::ShuttingDown),
        }
    };
    drop(slot);
    let outcome = stopped.unwrap_or(Outcome::Completed);
    if let Some(outcome) = stopped {
        if outcome == Outcome::ShuttingDown {
            let message = "the agent is shutting down: this request was stopped".to_string();
            say(Said::Error(ErrorCode::ShuttingDown, message));
        }
        let (at, elapsed_us) = (clock::now(), clock::micros(start.elapsed()));
        say(match plan {
            Plan::Check(_) => {
                Said::Check(CheckEvent { at, step: Step::Done { outcome, elapsed_us } })
            }
            Plan::Scan(_) => Said::Scan(ScanEvent {
                at,
                step: ScanStep::Done { outcome, counts, elapsed_us, loss: None, found: None },
            }),
        });
    }
    let result = match plan {
        Plan::Check(_) => cause.map_or("-", Cause::as_str).to_string(),
        Plan::Scan(_) => format!("{} open of {}", counts.open, counts.total()),
    };
    Ok(Ran { outcome, result })
}

/// Adds a batch's ports to a scan's counts so far.
fn count(counts: &mut StateCounts, progress: &whyrefused_shared::ScanProgress) {
    for result in &progress.results {
        counts.add(result.state, 1);
    }
    let refused: u64 = progress.refused.iter().map(|run| u64::from(run.len())).sum();
    counts.add(ConnectState::Refused, refused);
}

impl Plan {
    /// Why this agent's policy denies the request before any resolution (an address literal
    /// it denies, a port outside `--allow-ports`), if it does.
    pub fn unresolved_denial(&self) -> Option<String> {
        let denied = match self {
            Plan::Check(plan) => {
                // A resolver is an address the agent sends to like any other.
                for resolver in &plan.resolvers {
                    if let Err(denial) = plan.policy.check(resolver.address) {
                        return Some(format!("resolver {resolver}: {denial}"));
                    }
                }
                plan.policy.check_unresolved(&plan.target.host, Some(plan.target.port))
            }
            Plan::Scan(plan) => plan.policy.check_unresolved(&plan.host, None),
        };
        denied.err().map(|denial| denial.to_string())
    }

    /// Validates a check request against this agent's target policy; it will run within the
    /// agent's connect budget, and name the owners of this host's listeners only when
    /// `show_processes`.
    pub fn check(
        request: &whyrefused_shared::CheckRequest,
        state: &AppState,
        show_processes: bool,
    ) -> Result<Plan, Refused> {
        CheckPlan::from_request(request, state.policy.clone(), state.connect_budget.clone())
            .map(|plan| {
                let proxy = state.env_proxy.clone();
                Plan::Check(CheckPlan { show_processes, proxy, ..plan })
            })
            .map_err(|error| Refused { code: error.code(), message: error.to_string() })
    }

    /// Validates a scan request against this agent's scan limit and target policy; it will
    /// run within the agent's connect budget, and name the owners of this host's listeners
    /// behind its open ports only when `show_processes`.
    pub fn scan(
        request: &whyrefused_shared::ScanRequest,
        state: &AppState,
        show_processes: bool,
    ) -> Result<Plan, Refused> {
        let (policy, budget) = (state.policy.clone(), state.connect_budget.clone());
        let caps = scan::Caps {
            max_ports: Some(state.limits.max_scan_ports),
            max_spec_items: state.limits.max_port_spec_items,
        };
        ScanPlan::from_request(request, caps, policy, budget)
            .map(|plan| Plan::Scan(ScanPlan { show_processes, ..plan }))
            .map_err(|error| Refused { code: error.code(), message: error.to_string() })
    }
}
