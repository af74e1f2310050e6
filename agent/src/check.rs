//! A whole check: resolve the host, connect to every address at once, conclude, and stream each
//! step to the caller as it happens. The WebSocket session and the CLI both run checks here.

use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use whyrefused_shared::{
    CheckEvent, CheckRequest, DEFAULT_TIMEOUT_MS, DnsStatus, ErrorCode, MAX_TIMEOUT_MS, Outcome,
    Step,
};

use crate::probe;
use crate::target::{Target, TargetError};
use crate::{clock, verdict};

/// How long to wait for the system resolver before calling it timed out.
pub const DNS_DEADLINE: Duration = Duration::from_secs(5);

/// A validated request: what to check and how.
#[derive(Debug, Clone)]
pub struct CheckPlan {
    /// Where to connect.
    pub target: Target,
    /// The connect deadline for each address, in milliseconds.
    pub timeout_ms: u32,
}

/// Why a request cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("invalid target: {0}")]
    Target(#[from] TargetError),
    #[error("timeout_ms must be from 1 to {MAX_TIMEOUT_MS} (milliseconds), not {0}")]
    Timeout(u32),
}

impl RequestError {
    /// The protocol's name for this kind of error.
    pub fn code(&self) -> ErrorCode {
        match self {
            RequestError::Target(_) => ErrorCode::InvalidTarget,
            RequestError::Timeout(_) => ErrorCode::InvalidOption,
        }
    }
}

impl CheckPlan {
    /// Validates a request: parses its target and checks its options.
    pub fn from_request(request: &CheckRequest) -> Result<CheckPlan, RequestError> {
        let timeout_ms = request.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
        if !(1..=MAX_TIMEOUT_MS).contains(&timeout_ms) {
            return Err(RequestError::Timeout(timeout_ms));
        }
        let target = Target::parse(&request.target, request.port)?;
        Ok(CheckPlan { target, timeout_ms })
    }

    fn connect_deadline(&self) -> Duration {
        Duration::from_millis(u64::from(self.timeout_ms))
    }
}

/// Runs the check, handing each step to `emit` the moment it happens, ending with `done`.
///
/// Dropping the future stops the check at once and closes its sockets; the caller then reports
/// the request as cancelled.
pub async fn run(plan: &CheckPlan, mut emit: impl FnMut(CheckEvent)) {
    let start = Instant::now();
    let mut send = |step: Step| emit(CheckEvent { at: clock::now(), step });
    send(Step::Started { target: plan.target.info(), timeout_ms: plan.timeout_ms });

    let resolution = probe::resolve(&plan.target.host, DNS_DEADLINE).await;
    send(Step::Resolved { resolution: resolution.clone() });

    let mut attempts = Vec::new();
    if resolution.status == DnsStatus::Ok {
        let mut connects: FuturesUnordered<_> = resolution
            .addresses
            .iter()
            .map(|ip| {
                let address = std::net::SocketAddr::new(*ip, plan.target.port);
                send(Step::AttemptStarted { address });
                probe::connect(address, plan.connect_deadline())
            })
            .collect();
        while let Some(attempt) = connects.next().await {
            send(Step::AttemptFinished { attempt: attempt.clone() });
            attempts.push(attempt);
        }
    }

    let verdict = verdict::conclude(&plan.target, &resolution, &attempts, plan.timeout_ms);
    send(Step::Verdict { verdict });
    send(Step::Done { outcome: Outcome::Completed, elapsed_us: clock::micros(start.elapsed()) });
}

#[cfg(test)]
mod tests {
    use super::*;
    use whyrefused_shared::{Cause, CheckReport};

    fn plan(target: &str) -> CheckPlan {
        CheckPlan::from_request(&CheckRequest::new(target)).unwrap()
    }

    async fn steps_of(plan: &CheckPlan) -> (Vec<&'static str>, CheckReport) {
        let mut kinds = Vec::new();
        let mut report = CheckReport::default();
        run(plan, |event| {
            kinds.push(event.step.name());
            report.apply(&event);
        })
        .await;
        (kinds, report)
    }

    #[test]
    fn requests_are_validated() {
        let mut request = CheckRequest::new("127.0.0.1:80");
        request.timeout_ms = Some(0);
        assert_eq!(CheckPlan::from_request(&request).unwrap_err(), RequestError::Timeout(0));
        request.timeout_ms = Some(MAX_TIMEOUT_MS + 1);
        assert_eq!(CheckPlan::from_request(&request).unwrap_err().code(), ErrorCode::InvalidOption);
        let error = CheckPlan::from_request(&CheckRequest::new("db:0")).unwrap_err();
        assert_eq!(error.code(), ErrorCode::InvalidTarget);
        assert_eq!(plan("127.0.0.1:80").timeout_ms, DEFAULT_TIMEOUT_MS);
    }

    #[tokio::test]
    async fn an_open_port_streams_every_step_in_order() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (kinds, report) = steps_of(&plan(&format!("127.0.0.1:{port}"))).await;
        assert_eq!(
            kinds,
            ["started", "resolved", "attempt_started", "attempt_finished", "verdict", "done"]
        );
        assert_eq!(report.verdict.unwrap().cause, Cause::Reachable);
        assert_eq!(report.outcome, Some(Outcome::Completed));
    }

    #[tokio::test]
    async fn a_name_with_two_addresses_is_tried_on_both() {
        // localhost resolves to 127.0.0.1 and ::1 on most hosts; the listener takes IPv4 only.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (_, report) = steps_of(&plan(&format!("localhost:{port}"))).await;
        let dns = report.dns.unwrap();
        assert_eq!(report.attempts.len(), dns.addresses.len());
        let expected = if dns.addresses.len() > 1 { Cause::Partial } else { Cause::Reachable };
        assert_eq!(report.verdict.unwrap().cause, expected);
    }
}
