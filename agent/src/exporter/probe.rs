//! One `/probe`: a module and a target become a check request, validated by the same
//! [`Plan`] path as a WebSocket check (target policy, connect budget), run here or at one
//! vantage point through the hub's fan-out, and folded into a [`CheckReport`].
//!
//! The probe fits inside the scrape: its budget is the module's timeout or the scrape's
//! (`X-Prometheus-Scrape-Timeout-Seconds`) less half a second, whichever is shorter, shared
//! between its rounds and the phases the module runs.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use whyrefused_shared::{AgentMessage, CheckReport, CheckRequest, ErrorCode, Origin, RequestId};

use super::modules::{Module, ProbeKind};
use crate::app::AppState;
use crate::hub::fanout::{Fanout, Job, Work};
use crate::hub::link::ClientId;
use crate::hub::local::{self, Plan, Refused, Said, Stops};
use crate::wire::{self, Frame};

/// The scrape timeout assumed when Prometheus does not send one (its default, 10 s).
pub const DEFAULT_SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);

/// What is kept back from the scrape's timeout for the answer to travel, as blackbox_exporter
/// keeps it (`--timeout-offset`).
pub const TIMEOUT_OFFSET: Duration = Duration::from_millis(500);

/// The shortest budget a probe runs with.
pub const MIN_BUDGET: Duration = Duration::from_millis(100);

/// The most bytes of a vantage point's answer kept for one probe.
const ANSWER_LIMIT: usize = 4 << 20;

/// What a scrape asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeAsk {
    /// The target, as blackbox_exporter takes it (`host:port`; a URL for http modules).
    pub target: String,
    /// The module's name.
    pub module_name: String,
    /// The module itself.
    pub module: Module,
    /// The vantage point to probe from (`from=`); `None`: here.
    pub from: Option<String>,
    /// The scrape's timeout, when Prometheus sent it.
    pub scrape_timeout: Option<Duration>,
}

/// Why a probe did not run. The message goes back with a `400`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    #[error("the target parameter is missing: ask /probe?target=HOST:PORT&module=NAME")]
    MissingTarget,
    #[error("unknown module {name:?}: this agent's modules are {known} (--probe-config)")]
    UnknownModule { name: String, known: String },
    #[error("{0}")]
    UnknownVantage(String),
    #[error("{}", .0.message)]
    Refused(Refused),
}

impl ProbeError {
    /// Whether the agent refused the target itself (its policy), rather than the scrape's form.
    pub fn is_policy(&self) -> bool {
        matches!(self, ProbeError::Refused(Refused { code: ErrorCode::PolicyDenied, .. }))
    }
}

/// A probe that ran.
#[derive(Debug)]
pub struct Answer {
    /// The check's events, folded.
    pub report: CheckReport,
    /// How long it took.
    pub elapsed: Duration,
    /// What a vantage point said instead of (or before) its events.
    pub errors: Vec<String>,
}

impl ProbeAsk {
    /// The whole probe's budget.
    pub fn budget(&self) -> Duration {
        let scrape =
            self.scrape_timeout.unwrap_or(DEFAULT_SCRAPE_TIMEOUT).saturating_sub(TIMEOUT_OFFSET);
        let budget = self.module.timeout.map_or(scrape, |module| module.min(scrape));
        budget.max(MIN_BUDGET)
    }

    /// The check request: the module's kind and options, each connect given its share of the
    /// budget (one per round, and per phase: connect, TLS, HTTP).
    pub fn request(&self) -> CheckRequest {
        let phases = match self.module.kind {
            ProbeKind::Tcp => 1,
            ProbeKind::Tls => 2,
            ProbeKind::Http => 3,
        };
        let shares = (self.module.retries + 1) * phases;
        let share_ms = self.budget().as_millis() / u128::from(shares) * 9 / 10;
        let timeout_ms =
            u32::try_from(share_ms).unwrap_or(u32::MAX).clamp(1, whyrefused_shared::MAX_TIMEOUT_MS);
        let is_http = self.module.kind == ProbeKind::Http;
        let mut request = CheckRequest::new(self.target_for_kind());
        request.timeout_ms = Some(timeout_ms);
        request.retries = Some(self.module.retries);
        request.retry_delay_ms = Some(0);
        request.tls = self.module.kind == ProbeKind::Tls;
        request.http = is_http;
        request.follow = is_http && self.module.follow_redirects;
        request
    }

    /// blackbox_exporter's http prober takes a bare host as `http://host`.
    fn target_for_kind(&self) -> String {
        match self.module.kind {
            ProbeKind::Http if !self.target.contains("://") => format!("http://{}", self.target),
            _ => self.target.clone(),
        }
    }
}

/// Runs the probe here, or at the vantage point `from` names (telling it who asked, `origin`,
/// for its audit line); `show_processes` as for a WebSocket client from the same peer.
pub async fn run(
    state: &AppState,
    ask: &ProbeAsk,
    show_processes: bool,
    origin: Origin,
) -> Result<Answer, ProbeError> {
    let start = Instant::now();
    let request = ask.request();
    let (report, errors) = match &ask.from {
        None => (run_here(state, &request, ask.budget(), show_processes).await?, Vec::new()),
        Some(from) => run_at(state, request, from, ask.budget(), show_processes, origin).await?,
    };
    Ok(Answer { report, elapsed: start.elapsed(), errors })
}

/// Runs the check here, through the one local runner; stops it at the budget.
async fn run_here(
    state: &AppState,
    request: &CheckRequest,
    budget: Duration,
    show_processes: bool,
) -> Result<CheckReport, ProbeError> {
    let plan = Plan::check(request, state, show_processes).map_err(ProbeError::Refused)?;
    let stops = Stops { cancel: CancellationToken::new(), shutdown: state.shutdown.clone() };
    let mut report = CheckReport::default();
    let work = local::run(&plan, &state.scans, &stops, |said| {
        if let Said::Check(event) = said {
            report.apply(&event);
        }
    });
    if let Ok(Err(refused)) = tokio::time::timeout(budget, work).await {
        return Err(ProbeError::Refused(refused));
    }
    Ok(report)
}

/// Runs the check at one vantage point through the hub's fan-out (the hub's policy first,
/// then the vantage point's own), folding that vantage point's events.
async fn run_at(
    state: &AppState,
    request: CheckRequest,
    from: &str,
    budget: Duration,
    show_processes: bool,
    origin: Origin,
) -> Result<(CheckReport, Vec<String>), ProbeError> {
    let vantages = state.hub.choose(&[from.to_string()]).map_err(ProbeError::UnknownVantage)?;
    let job = Job::new(Work::Check(request), state, show_processes).map_err(ProbeError::Refused)?;
    let (outbox, mut answers) = wire::outbox(ANSWER_LIMIT);
    let fanout = Fanout {
        id: RequestId(1),
        outbox,
        cancel: CancellationToken::new(),
        shutdown: state.shutdown.clone(),
        vantages,
        scans: state.scans.clone(),
        client: ClientId::next(),
        metrics: None,
        // A scrape is a measurement, repeated every interval: Prometheus keeps those.
        history: None,
        tell_stored: false,
        origin,
        // Only this vantage point's own report is read, never the cross verdict.
        routers: Vec::new(),
    };
    // Dropped at the budget: the vantage point's part is cancelled there.
    let _ = tokio::time::timeout(budget, fanout.run(job)).await;
    let (mut report, mut errors) = (CheckReport::default(), Vec::new());
    while let Some(frame) = answers.try_next() {
        let Frame::Text(json) = frame else { continue };
        match serde_json::from_str(&json) {
            Ok(AgentMessage::Event { event, .. }) => report.apply(&event),
            Ok(AgentMessage::VantageError { message, .. }) => errors.push(message),
            _ => {}
        }
    }
    Ok((report, errors))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(kind: ProbeKind, module_timeout: Option<u64>, scrape: Option<u64>) -> ProbeAsk {
        ProbeAsk {
            target: "db:5432".into(),
            module_name: "m".into(),
            module: Module { timeout: module_timeout.map(Duration::from_secs), ..Module::of(kind) },
            from: None,
            scrape_timeout: scrape.map(Duration::from_secs),
        }
    }

    #[test]
    fn the_budget_is_the_shorter_of_the_module_and_the_scrape_less_the_offset() {
        assert_eq!(ask(ProbeKind::Tcp, None, None).budget(), Duration::from_millis(9_500));
        assert_eq!(ask(ProbeKind::Tcp, Some(3), Some(10)).budget(), Duration::from_secs(3));
        assert_eq!(ask(ProbeKind::Tcp, Some(30), Some(5)).budget(), Duration::from_millis(4_500));
    }

    #[test]
    fn each_round_and_phase_gets_its_share_of_the_budget() {
        assert_eq!(ask(ProbeKind::Tcp, Some(2), None).request().timeout_ms, Some(1_800));
        let http = ask(ProbeKind::Http, Some(3), None).request();
        assert_eq!(http.timeout_ms, Some(900));
        assert_eq!(http.target, "http://db:5432", "a bare target is an http:// URL");
        assert!(http.http && http.follow);
        let tls = ProbeAsk {
            module: Module { retries: 1, ..ask(ProbeKind::Tls, Some(4), None).module },
            ..ask(ProbeKind::Tls, Some(4), None)
        };
        assert_eq!(tls.request().timeout_ms, Some(900));
        assert!(tls.request().tls);
    }
}
