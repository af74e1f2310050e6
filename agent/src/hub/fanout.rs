//! One client request run at several vantage points at once.
//!
//! Each vantage point's events go to the client tagged with its name, and each one's stream ends
//! with its own `done`: a real one, or one the hub makes up when the vantage point was offline
//! (`vantage_offline`), went offline mid-way (its link closed, or fell silent for the ping
//! timeout), refused the request (`rejected`, after its error), or said nothing about it for
//! longer than the request's longest single wait plus [`SILENCE_GRACE`] (`vantage_timeout`: a
//! hung vantage point cannot stall the request). Once every one has ended, the reports are
//! compared and the cross-vantage verdict goes out as `vantages_done`.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::future::{join, join_all};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use whyrefused_shared::{
    AgentMessage, CheckEvent, CheckReport, CheckRequest, ClientMessage, ConnectState, ErrorCode,
    FirewallMatch, LOCAL_VANTAGE, Origin, Outcome, RequestId, ScanEvent, ScanReport, ScanRequest,
    ScanStep, Step,
};

use super::SILENCE_GRACE;
use super::forwarding::{self, Router, RouterWatch};
use super::link::{ClientId, RemoteRequest, StartError};
use super::local::{self, Plan, Refused, Said, Stops};
// One vantage point's report as it is folded.
use super::recorded::Folded as Report;
use super::registry::Vantage;
use crate::app::AppState;
use crate::clock;
use crate::exporter::{AgentMetrics, Via};
use crate::history::{Asker, History};
use crate::probe::firewall::ForwardWatch;
use crate::scan::limits::ScanSlots;
use crate::verdict::cross::{VantageCheck, add_router_rule, compare_checks, compare_scans};
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
    /// vantage point), against the hub's own policy and limits. The hub's own part (a check's,
    /// or a scan's open ports') names its listeners' owners, and its forwarding rules' text,
    /// only when `show_processes` (each joined agent decides for its own).
    /// What the hub's policy can decide without resolving (an address literal, the ports) is
    /// decided here, before anything is forwarded; each vantage point checks every rule again
    /// on the addresses its own resolver gives (a name may resolve differently there).
    pub fn new(work: Work, state: &AppState, show_processes: bool) -> Result<Job, Refused> {
        let plan = match &work {
            Work::Check(request) => Plan::check(request, state, show_processes),
            Work::Scan(request) => Plan::scan(request, state, show_processes),
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

    /// How long a vantage point may say nothing about this request before the hub gives up on
    /// its part: the longest single wait in it (a connect timeout or the pause between rounds
    /// for a check, the per-port timeout for a scan) plus [`SILENCE_GRACE`].
    pub fn silence_limit(&self) -> Duration {
        let longest_ms = match &self.plan {
            Plan::Check(plan) => plan.timeout_ms.max(plan.retry_delay_ms),
            Plan::Scan(plan) => plan.timeout_ms,
        };
        Duration::from_millis(u64::from(longest_ms)) + SILENCE_GRACE
    }
}

/// Whether the client may read this host's own details (its listeners' owners, its rules'
/// text): a client on this host, or any with `--show-processes`.
fn shows_processes(plan: &Plan) -> bool {
    match plan {
        Plan::Check(plan) => plan.show_processes,
        Plan::Scan(plan) => plan.show_processes,
    }
}

/// The destinations the connects of the vantage points that may cross a router did not open
/// (silent, turned back, or reset: a REJECT may answer with a reset): what a forwarding rule
/// of that router may have stopped. `parts` pairs each vantage point's report with whether its
/// packets may cross the router (for the hub: the joined agents; for a joined router: every
/// vantage point but itself: a router's own connects do not cross its forwarding rules).
fn failed_destinations<'a>(parts: impl Iterator<Item = (bool, &'a Report)>) -> Vec<SocketAddr> {
    let mut failed = Vec::new();
    for (crosses, report) in parts {
        let Report::Check(report) = report else { continue };
        let unopened = report.attempts.iter().filter(|a| crosses && a.state != ConnectState::Open);
        for attempt in unopened {
            let to = SocketAddr::new(attempt.address, attempt.port);
            if !failed.contains(&to) {
                failed.push(to);
            }
        }
    }
    failed
}

/// When a vantage point last said something about a request (shared between the part that
/// runs it and the watch on its silence).
struct Heard {
    /// When the part started.
    since: tokio::time::Instant,
    /// Microseconds from `since` to the last event.
    last_us: AtomicU64,
}

impl Heard {
    fn now() -> Heard {
        Heard { since: tokio::time::Instant::now(), last_us: AtomicU64::new(0) }
    }

    fn note(&self) {
        let micros = u64::try_from(self.since.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.last_us.store(micros, Ordering::Relaxed);
    }

    /// Completes once the last event is `limit` in the past.
    async fn silent_for(&self, limit: Duration) {
        loop {
            let last = self.since + Duration::from_micros(self.last_us.load(Ordering::Relaxed));
            if tokio::time::Instant::now() >= last + limit {
                return;
            }
            tokio::time::sleep_until(last + limit).await;
        }
    }
}

/// A request being run at several vantage points.
pub(crate) struct Fanout {
    /// The client's id for it.
    pub id: RequestId,
    /// Who asked, under the request id unique across the hub: in the audit line, and sent with
    /// the request to every joined agent, whose audit line repeats it.
    pub origin: Origin,
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
    /// The client who asked, whose share of each joined agent's requests this one uses.
    pub client: ClientId,
    /// Where each vantage point's finished check or scan is counted (`/metrics`); `None` when
    /// the caller counts it itself.
    pub metrics: Option<AgentMetrics>,
    /// Where each vantage point's finished part is stored; `None` when it is not.
    pub history: Option<History>,
    /// Whether the client is told each stored part's id ([`AgentMessage::Stored`]): only the
    /// page this agent serves is.
    pub tell_stored: bool,
    /// The joined agents that are routers, asked to watch their forwarding rules around a
    /// check ([`forwarding`]) so the cross verdict can name the rule that stopped it; empty
    /// when nobody reads the cross verdict.
    pub routers: Vec<Router>,
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
                let (counts, loss) = (report.counts, report.loss.clone());
                self.scan(ScanEvent {
                    at,
                    step: ScanStep::Done { outcome, counts, elapsed_us, loss, found: None },
                })
            }
        }
    }

    fn error(&self, code: ErrorCode, message: String) {
        let vantage = self.name.to_string();
        self.send(AgentMessage::VantageError { id: self.id, vantage, code, message });
    }
}

impl Fanout {
    /// Runs the job at every vantage point, then sends the comparison. When the hub routes
    /// the joined agents' packets, its forwarding rules' counters are read around their checks,
    /// so the rule that stopped them can be named ([`ForwardWatch`]); so are those of the
    /// joined agents that are routers ([`forwarding`]).
    pub async fn run(self, job: Job) -> RequestId {
        self.run_for_reports(job).await.0
    }

    /// Like [`Fanout::run`]; also gives each vantage point's report, by name, in order (an
    /// agent-side watch combines them).
    pub async fn run_for_reports(self, job: Job) -> (RequestId, Vec<(String, Report)>) {
        let (forwarding, routers) = self.watch_forwarding(&job).await;
        let runs = self.vantages.iter().map(|vantage| self.run_at(vantage, &job));
        let reports: Vec<Report> = join_all(runs).await;
        self.count(&reports);
        self.store(&job, &reports);
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
                let mut verdict = compare_checks(&checks);
                if let Some(watch) = forwarding {
                    let remote = self.vantages.iter().map(|v| matches!(v, Vantage::Remote { .. }));
                    let failed = failed_destinations(remote.zip(&reports));
                    if let Some(found) = watch.finish(&failed).await {
                        // The hub's rules' text is for clients on its host, as its own
                        // check's rule is.
                        let found = match shows_processes(&job.plan) {
                            true => found,
                            false => found.without_rule_text(),
                        };
                        add_router_rule(&mut verdict, LOCAL_VANTAGE, found);
                    }
                }
                // A joined router decided itself whether the hub sees its rules' text, as for
                // its own checks; what it found goes on as it came.
                for (router, found) in self.finish_at_routers(routers, &reports).await {
                    add_router_rule(&mut verdict, &router, found);
                }
                verdict
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
            token = self.origin.token.as_deref().unwrap_or("-"),
            peer = %self.origin.peer,
            request_id = %self.origin.request_id,
            id = %self.id,
            kind,
            target,
            vantage = %self.vantages.iter().map(Vantage::name).collect::<Vec<_>>().join(","),
            result = verdict.cause.as_str(),
            "request"
        );
        let _ = self.outbox.message(&AgentMessage::VantagesDone { id: self.id, verdict });
        let names = self.vantages.iter().map(|vantage| vantage.name().to_string());
        (self.id, names.zip(reports).collect())
    }

    /// Starts watching the forwarding rules around a check: the hub's own when it may route
    /// the joined agents' packets, and the joined routers' ([`forwarding::start_at`]), at once.
    async fn watch_forwarding(&self, job: &Job) -> (Option<ForwardWatch>, Vec<RouterWatch>) {
        if !matches!(job.plan, Plan::Check(_)) {
            return (None, Vec::new());
        }
        let others_probe = self.vantages.iter().any(|v| matches!(v, Vantage::Remote { .. }));
        let own = async {
            match others_probe {
                true => ForwardWatch::start().await,
                false => None,
            }
        };
        join(own, forwarding::start_at(&self.routers)).await
    }

    /// Tells each watching router which destinations the other vantage points failed to
    /// reach; gives each router's name with the rule it named, in the routers' order.
    async fn finish_at_routers(
        &self,
        routers: Vec<RouterWatch>,
        reports: &[Report],
    ) -> Vec<(String, FirewallMatch)> {
        let finishing = routers.into_iter().map(|watch| {
            let name = watch.name().to_string();
            let others = self.vantages.iter().map(|vantage| vantage.name() != name);
            let failed = failed_destinations(others.zip(reports));
            async move { watch.finish(&failed).await.map(|found| (name, found)) }
        });
        join_all(finishing).await.into_iter().flatten().collect()
    }

    /// Counts each vantage point's finished part.
    fn count(&self, reports: &[Report]) {
        let Some(metrics) = &self.metrics else { return };
        for (vantage, report) in self.vantages.iter().zip(reports) {
            match report {
                Report::Check(report) => {
                    let cause = report.verdict.as_ref().map_or("-", |v| v.cause.as_str());
                    let took = std::time::Duration::from_micros(report.elapsed_us.unwrap_or(0));
                    metrics.check_done(cause, vantage.name(), Via::Websocket, took);
                }
                Report::Scan(report) => {
                    let outcome = report.outcome.map_or("-", Outcome::as_str);
                    let took = std::time::Duration::from_micros(report.elapsed_us.unwrap_or(0));
                    metrics.scan_done(outcome, vantage.name(), took);
                }
            }
        }
    }

    /// Stores each vantage point's finished part in the history, under its name.
    fn store(&self, job: &Job, reports: &[Report]) {
        let Some(history) = &self.history else { return };
        for (vantage, report) in self.vantages.iter().zip(reports) {
            let asker = Asker {
                vantage: vantage.name().to_string(),
                token: self.origin.token.clone(),
                source: "websocket",
                watch: None,
            };
            let stored = report.store(Some(history), &job.plan, asker);
            if let Some(result) = stored.filter(|_| self.tell_stored) {
                let vantage = Some(vantage.name().to_string());
                let _ = self.outbox.message(&AgentMessage::Stored { id: self.id, vantage, result });
            }
        }
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
        let silence = job.silence_limit();
        match vantage {
            Vantage::Local => self.run_local(&mut fold, job, silence).await,
            Vantage::Remote { link, .. } => {
                let request = |id| match &job.work {
                    Work::Check(request) => ClientMessage::Check {
                        id,
                        request: request.clone(),
                        from: None,
                        origin: Some(self.origin.clone()),
                    },
                    Work::Scan(request) => ClientMessage::Scan {
                        id,
                        request: request.clone(),
                        from: None,
                        origin: Some(self.origin.clone()),
                    },
                };
                match link.start(self.client, request) {
                    Ok(remote) => self.follow_remote(&mut fold, remote, silence).await,
                    Err(StartError::Offline) => fold.end(Outcome::VantageOffline),
                    Err(quota @ StartError::Quota { .. }) => {
                        fold.error(ErrorCode::TooManyRequests, quota.to_string());
                        fold.end(Outcome::Rejected);
                    }
                }
            }
            Vantage::Offline { .. } => fold.end(Outcome::VantageOffline),
        }
        fold.report
    }

    /// Runs the hub's own part; gives up on it like on any vantage point's once it says nothing
    /// for `silence` (a system resolver that hangs, say).
    async fn run_local(&self, fold: &mut Fold<'_>, job: &Job, silence: Duration) {
        let stops = Stops { cancel: self.cancel.clone(), shutdown: self.shutdown.clone() };
        let heard = Heard::now();
        let ran = {
            let work = local::run(&job.plan, &self.scans, &stops, |said| {
                heard.note();
                match said {
                    Said::Check(event) => fold.check(event),
                    Said::Scan(event) => fold.scan(event),
                    Said::Error(code, message) => fold.error(code, message),
                }
            });
            tokio::select! {
                ran = work => Some(ran),
                () = heard.silent_for(silence) => None,
            }
        };
        match ran {
            None => self.give_up(fold, silence),
            Some(Err(refused)) => {
                fold.error(refused.code, refused.message);
                fold.end(Outcome::Rejected);
            }
            Some(Ok(_)) => {}
        }
    }

    /// Ends a vantage point's part that said nothing for `silence`.
    fn give_up(&self, fold: &mut Fold<'_>, silence: Duration) {
        warn!(
            id = %self.id,
            vantage = %fold.name,
            silent_s = silence.as_secs(),
            "a vantage point said nothing about a request for longer than its longest wait plus \
             the grace: its part ends vantage_timeout"
        );
        fold.end(Outcome::VantageTimeout);
    }

    /// Passes a joined agent's answers on until its `done`; makes one up if it refuses the
    /// request, goes offline, or says nothing for `silence` (then the request is dropped, which
    /// cancels it there). A cancel (or the hub's shutdown) is passed on to it.
    async fn follow_remote(
        &self,
        fold: &mut Fold<'_>,
        mut remote: RemoteRequest,
        silence: Duration,
    ) {
        let mut stopping = false;
        let quiet = tokio::time::sleep(silence);
        tokio::pin!(quiet);
        loop {
            tokio::select! {
                () = &mut quiet => return self.give_up(fold, silence),
                answer = remote.answers.recv() => {
                    quiet.as_mut().reset(tokio::time::Instant::now() + silence);
                    match answer {
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
                    }
                }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::link::LinkHandle;
    use crate::wire::{Frame, Inbox};
    use whyrefused_shared::Timestamp;

    /// A joined agent whose link the test plays: what the hub sends it arrives on the inbox.
    struct FakeAgent {
        link: LinkHandle,
        sent: Inbox,
    }

    impl FakeAgent {
        fn new(quota: usize) -> FakeAgent {
            let (outbox, sent) = crate::wire::outbox(1 << 20);
            FakeAgent { link: LinkHandle::new(outbox, quota), sent }
        }

        fn vantage(&self, name: &str) -> Vantage {
            Vantage::Remote { name: name.into(), addresses: Vec::new(), link: self.link.clone() }
        }

        /// Every message the hub sent this agent so far.
        fn received(&mut self) -> Vec<ClientMessage> {
            std::iter::from_fn(|| self.sent.try_next())
                .filter_map(|frame| match frame {
                    Frame::Text(json) => Some(serde_json::from_str(&json).unwrap()),
                    _ => None,
                })
                .collect()
        }

        /// Answers the hub's request `id` with one step.
        fn say(&self, id: RequestId, step: Step) {
            let at = Timestamp("2026-12-01T10:00:00.000000Z".into());
            let event = CheckEvent { at, step };
            self.link.route(AgentMessage::Event { id, vantage: None, event });
        }
    }

    fn check_job(timeout_ms: u32) -> Job {
        let mut request = CheckRequest::new("127.0.0.1:9");
        request.timeout_ms = Some(timeout_ms);
        request.retry_delay_ms = Some(500);
        Job::new(Work::Check(request), &AppState::default(), false).expect("a valid check")
    }

    /// A fan-out of client `client`'s request 1 to `vantages`, and the client's end.
    fn fanout(vantages: Vec<Vantage>, client: ClientId) -> (Fanout, Inbox) {
        let (outbox, client_end) = crate::wire::outbox(1 << 20);
        let origin = crate::hub::audit::asked_here(Some("team"), "192.0.2.9:4000".parse().unwrap());
        let fanout = Fanout {
            id: RequestId(1),
            origin,
            outbox,
            cancel: CancellationToken::new(),
            shutdown: CancellationToken::new(),
            vantages,
            scans: ScanSlots::new(1),
            client,
            metrics: None,
            history: None,
            tell_stored: false,
            routers: Vec::new(),
        };
        (fanout, client_end)
    }

    /// A vantage point's error: its name, the code and the message.
    type Refusal = (String, ErrorCode, String);

    /// What the client received: each vantage point's `done` outcome, and the errors.
    fn ends(client_end: &mut Inbox) -> (Vec<(String, Outcome)>, Vec<Refusal>) {
        let (mut dones, mut errors) = (Vec::new(), Vec::new());
        while let Some(Frame::Text(json)) = client_end.try_next() {
            match serde_json::from_str(&json).unwrap() {
                AgentMessage::Event { vantage: Some(name), event, .. } => {
                    if let Step::Done { outcome, .. } = event.step {
                        dones.push((name, outcome));
                    }
                }
                AgentMessage::VantageError { vantage, code, message, .. } => {
                    errors.push((vantage, code, message))
                }
                _ => {}
            }
        }
        (dones, errors)
    }

    fn hub_id(agent: &mut FakeAgent) -> RequestId {
        match agent.received().first() {
            Some(ClientMessage::Check { id, .. }) => *id,
            other => panic!("no check sent: {other:?}"),
        }
    }

    #[test]
    fn the_silence_limit_is_the_longest_single_wait_plus_the_grace() {
        assert_eq!(check_job(2_000).silence_limit(), Duration::from_secs(12));
        assert_eq!(check_job(100).silence_limit(), Duration::from_millis(10_500), "retry delay");
        let scan = ScanRequest { timeout_ms: Some(4_000), ..ScanRequest::new("127.0.0.1", "80") };
        let scan = Job::new(Work::Scan(scan), &AppState::default(), false).unwrap();
        assert_eq!(scan.silence_limit(), Duration::from_secs(14));
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_vantage_point_ends_vantage_timeout_and_is_cancelled_while_others_finish() {
        let (mut hung, mut healthy) = (FakeAgent::new(8), FakeAgent::new(8));
        let vantages = vec![hung.vantage("hung"), healthy.vantage("healthy")];
        let (fanout, mut client_end) = fanout(vantages, ClientId::next());
        let start = tokio::time::Instant::now();
        let running = tokio::spawn(fanout.run(check_job(2_000)));
        tokio::task::yield_now().await;
        let healthy_id = hub_id(&mut healthy);
        healthy.say(healthy_id, Step::Done { outcome: Outcome::Completed, elapsed_us: 1 });
        let hung_id = hub_id(&mut hung);

        running.await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(12), "2 s timeout + 10 s grace");
        let (dones, _) = ends(&mut client_end);
        assert_eq!(
            dones,
            [
                ("healthy".to_string(), Outcome::Completed),
                ("hung".to_string(), Outcome::VantageTimeout)
            ]
        );
        assert_eq!(hung.received(), [ClientMessage::Cancel { id: hung_id }], "cancelled there");
    }

    #[tokio::test(start_paused = true)]
    async fn every_event_restarts_the_silence_clock() {
        let mut slow = FakeAgent::new(8);
        let (fanout, mut client_end) = fanout(vec![slow.vantage("slow")], ClientId::next());
        let start = tokio::time::Instant::now();
        let running = tokio::spawn(fanout.run(check_job(2_000)));
        tokio::time::sleep(Duration::from_secs(11)).await;
        let id = hub_id(&mut slow);
        slow.say(id, Step::RoundStarted { round: 1, of: 1 });
        running.await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(23), "12 s after its last event");
        assert_eq!(ends(&mut client_end).0, [("slow".to_string(), Outcome::VantageTimeout)]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_over_its_share_of_an_agent_is_refused_there_with_the_flag_named() {
        let agent = FakeAgent::new(1);
        let client = ClientId::next();
        let (first, _first_end) = fanout(vec![agent.vantage("a1")], client);
        let _holding = tokio::spawn(first.run(check_job(2_000)));
        tokio::task::yield_now().await;

        let (second, mut second_end) = fanout(vec![agent.vantage("a1")], client);
        second.run(check_job(2_000)).await;
        let (dones, errors) = ends(&mut second_end);
        assert_eq!(dones, [("a1".to_string(), Outcome::Rejected)]);
        let (_, code, message) = &errors[0];
        assert_eq!(*code, ErrorCode::TooManyRequests);
        assert!(message.contains("already runs 1 requests at this vantage point"), "{message}");

        let (other, mut other_end) = fanout(vec![agent.vantage("a1")], ClientId::next());
        let other = tokio::spawn(other.run(check_job(2_000)));
        other.await.unwrap();
        assert_eq!(
            ends(&mut other_end).0,
            [("a1".to_string(), Outcome::VantageTimeout)],
            "another client was let through (and the silent agent timed out)"
        );
    }

    /// Lets every spawned task run as far as it can.
    async fn settle() {
        for _ in 0..16 {
            tokio::task::yield_now().await;
        }
    }

    /// The cross verdict the client received.
    fn cross_verdict(client_end: &mut Inbox) -> whyrefused_shared::CrossVerdict {
        std::iter::from_fn(|| client_end.try_next())
            .find_map(|frame| match frame {
                Frame::Text(json) => match serde_json::from_str(&json).unwrap() {
                    AgentMessage::VantagesDone { verdict, .. } => Some(verdict),
                    _ => None,
                },
                _ => None,
            })
            .expect("the cross verdict came")
    }

    fn timed_out(to: &str) -> Step {
        let to: SocketAddr = to.parse().unwrap();
        let attempt = whyrefused_shared::Attempt {
            address: to.ip(),
            port: to.port(),
            family: whyrefused_shared::Family::Ipv4,
            state: ConnectState::Timeout,
            errno: None,
            icmp: None,
            elapsed_us: 2_000_000,
            elapsed_ms: 2_000.0,
            started_at: Timestamp("2026-12-01T10:00:00.000000Z".into()),
        };
        Step::AttemptFinished { attempt }
    }

    fn forward_drop(to: &str) -> FirewallMatch {
        FirewallMatch {
            address: to.parse().unwrap(),
            matched: vec![whyrefused_shared::FirewallRule {
                tool: "iptables".into(),
                family: "ip".into(),
                table: "filter".into(),
                chain: "FORWARD".into(),
                position: 2,
                policy: false,
                handle: None,
                text: "-A FORWARD -p tcp -m tcp --dport 9 -j DROP".into(),
                action: whyrefused_shared::RuleAction::Drop,
                packets: Some(3),
            }],
            exact: false,
            probes: 0,
            candidates: Vec::new(),
            rules_read: 3,
            unreadable: None,
            elapsed_us: 2_100_000,
        }
    }

    /// A check from a1 running with r1 as a joined router, and the id of the watch r1 was asked
    /// to open before anything else happened.
    struct WithRouter {
        a1: FakeAgent,
        r1: FakeAgent,
        client_end: Inbox,
        running: tokio::task::JoinHandle<RequestId>,
        watch: RequestId,
    }

    async fn check_with_a_router() -> WithRouter {
        let (mut a1, mut r1) = (FakeAgent::new(8), FakeAgent::new(8));
        let (mut fanout, client_end) = fanout(vec![a1.vantage("a1")], ClientId::next());
        fanout.routers = vec![Router { name: "r1".into(), link: r1.link.clone() }];
        let running = tokio::spawn(fanout.run(check_job(2_000)));
        settle().await;
        let watch = match r1.received().as_slice() {
            [ClientMessage::ForwardWatch { id }] => *id,
            other => panic!("r1 was not asked to watch: {other:?}"),
        };
        assert!(a1.received().is_empty(), "the check waits for the router's counters");
        WithRouter { a1, r1, client_end, running, watch }
    }

    #[tokio::test(start_paused = true)]
    async fn a_joined_router_watches_around_the_check_and_the_verdict_names_its_rule() {
        let WithRouter { mut a1, mut r1, mut client_end, running, watch } =
            check_with_a_router().await;
        r1.link.route(AgentMessage::ForwardWatching { id: watch, watching: true });
        settle().await;

        let id = hub_id(&mut a1);
        a1.say(id, timed_out("127.0.0.1:9"));
        a1.say(id, Step::Done { outcome: Outcome::Completed, elapsed_us: 2_000_000 });
        settle().await;
        let failed = vec!["127.0.0.1:9".parse().unwrap()];
        assert_eq!(r1.received(), [ClientMessage::ForwardWatchFinish { id: watch, failed }]);
        let found = Some(forward_drop("127.0.0.1:9"));
        r1.link.route(AgentMessage::ForwardWatched { id: watch, found });
        running.await.unwrap();

        let verdict = cross_verdict(&mut client_end);
        assert!(
            verdict.summary.contains(
                "a1 is dropped by the router r1's `iptables filter FORWARD` rule 2: `-A FORWARD \
                 -p tcp -m tcp --dport 9 -j DROP` (likely: it counted 3 packets to 127.0.0.1:9"
            ),
            "{verdict:?}"
        );
        assert_eq!(verdict.router_rule.map(|rule| rule.router), Some("r1".to_string()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_router_that_does_not_watch_is_not_told_the_check_is_over() {
        let WithRouter { mut a1, mut r1, mut client_end, running, watch } =
            check_with_a_router().await;
        r1.link.route(AgentMessage::ForwardWatching { id: watch, watching: false });
        settle().await;
        let id = hub_id(&mut a1);
        a1.say(id, timed_out("127.0.0.1:9"));
        a1.say(id, Step::Done { outcome: Outcome::Completed, elapsed_us: 2_000_000 });
        running.await.unwrap();
        assert!(r1.received().is_empty(), "nothing more is sent to r1");
        assert!(cross_verdict(&mut client_end).router_rule.is_none());
    }
}
