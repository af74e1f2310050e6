//! The page's state: the link to the agent and every check and scan run so far, changed only by
//! [`Action`]s.
//!
//! Each check's progress is the shared [`CheckReport`] fold of its events, and each scan's the
//! shared [`ScanReport`] fold of its batches; this module only adds what the page knows beyond
//! the events (an error the agent answered with, a socket that dropped under a running request, a
//! cancel on its way).
//!
//! A check or scan sent with `from` runs at several vantage points: each one's tagged events fold
//! into a [`Part`] of its own, and the hub's closing `vantages_done` brings the [`CrossVerdict`].
//! The vantage points to choose from are the hub's last `agents` answer.

use std::net::IpAddr;
use std::rc::Rc;

use whyrefused_shared::{
    AfterConnect, AgentInfo, AgentMessage, Attempt, CheckEvent, CheckReport, CheckRequest,
    CrossVerdict, ErrorCode, Family, Finding, LOCAL_VANTAGE, Outcome, PROTOCOL_VERSION, RequestId,
    ScanEvent, ScanReport, ScanRequest, VantageInfo,
};
use yew::prelude::*;

/// Where the page stands with the agent's WebSocket.
#[derive(Debug, Clone, PartialEq)]
pub enum LinkStatus {
    /// The socket is opening, or open and waiting for the agent's hello.
    Connecting,
    /// The agent said hello: checks can run.
    Connected {
        /// Who answers, shown so the user knows where probes start from.
        agent: AgentInfo,
    },
    /// The socket is closed; the page tries again after a pause.
    Disconnected {
        /// Time left before the next try, in milliseconds.
        retry_in_ms: u32,
        /// What the browser said about the close, when it said anything useful.
        reason: Option<String>,
    },
    /// The agent requires a token (it has a token file) and the page has none, or the agent
    /// refused the one it had.
    NeedsToken {
        /// Why the last token did not work, when one was tried.
        problem: Option<String>,
    },
}

impl LinkStatus {
    /// The name used in `data-state` on the status element (`connecting`, `connected`,
    /// `disconnected`).
    pub fn wire_name(&self) -> &'static str {
        match self {
            LinkStatus::Connecting => "connecting",
            LinkStatus::Connected { .. } => "connected",
            LinkStatus::Disconnected { .. } => "disconnected",
            LinkStatus::NeedsToken { .. } => "needs-token",
        }
    }
}

/// An error the agent answered a check or a scan with (such as `invalid_target` or
/// `invalid_ports`), shown on its card.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestError {
    /// The machine-readable kind.
    pub code: ErrorCode,
    /// The agent's explanation, for people.
    pub message: String,
}

/// Where a check or a scan stands, derived from its report and what happened around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Events are still expected.
    Running,
    /// The agent ran it to the end (a check with a verdict).
    Completed,
    /// The user cancelled it.
    Cancelled,
    /// The agent stopped it because it is shutting down.
    Stopped,
    /// The agent refused it (the card shows why).
    Failed,
    /// The socket dropped before it finished: its result is unknown.
    Interrupted,
}

impl Phase {
    /// The phase of a request whose `done` brought `outcome` (if it came), that the agent
    /// `refused` or not, and whose socket dropped under it or not.
    fn of(outcome: Option<Outcome>, refused: bool, interrupted: bool) -> Phase {
        match outcome {
            Some(Outcome::Completed) => Phase::Completed,
            Some(Outcome::Cancelled) => Phase::Cancelled,
            Some(Outcome::ShuttingDown) => Phase::Stopped,
            // Only a vantage point's part of a request with `from` ends so.
            Some(
                Outcome::VantageOffline
                | Outcome::VantageTimeout
                | Outcome::Rejected
                | Outcome::Unknown,
            ) => Phase::Failed,
            None if refused => Phase::Failed,
            None if interrupted => Phase::Interrupted,
            None => Phase::Running,
        }
    }

    /// The name used in the card's `data-phase` attribute and CSS.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Running => "running",
            Phase::Completed => "completed",
            Phase::Cancelled => "cancelled",
            Phase::Stopped => "stopped",
            Phase::Failed => "failed",
            Phase::Interrupted => "interrupted",
        }
    }
}

/// One vantage point's share of a request sent with `from`: the fold of the events tagged with
/// its name, and its refusal if it refused.
#[derive(Debug, Clone, PartialEq)]
pub struct Part<R> {
    /// The vantage point's name (`local` for the hub itself).
    pub name: String,
    /// The fold of its events so far.
    pub report: R,
    /// Its `vantage_error`, if it refused or stopped its part.
    pub error: Option<RequestError>,
}

impl<R: Default> Part<R> {
    fn new(name: &str) -> Self {
        Part { name: name.to_owned(), report: R::default(), error: None }
    }
}

/// The part named `name` among `parts`, added (empty) if it is not there yet: with `["all"]` the
/// page learns the names from the events.
fn part_mut<'a, R: Default>(parts: &'a mut Vec<Part<R>>, name: &str) -> &'a mut Part<R> {
    match parts.iter().position(|part| part.name == name) {
        Some(index) => &mut parts[index],
        None => {
            parts.push(Part::new(name));
            parts.last_mut().expect("just pushed")
        }
    }
}

/// The parts a request sent with `from` starts with: one per vantage point named (none for
/// `all`, whose names arrive with the events).
fn parts_for<R: Default>(from: Option<&[String]>) -> Vec<Part<R>> {
    from.unwrap_or_default()
        .iter()
        .filter(|name| name.as_str() != whyrefused_shared::ALL_VANTAGES)
        .map(|name| Part::new(name))
        .collect()
}

/// How a request with `from` ended as a whole, once the hub sent its comparison: cancelled or
/// stopped if any part was, completed otherwise; `None` while parts still run.
fn overall_outcome<R>(
    cross: Option<&CrossVerdict>,
    parts: &[Part<R>],
    outcome: impl Fn(&R) -> Option<Outcome>,
) -> Option<Outcome> {
    cross?;
    let outcomes: Vec<Option<Outcome>> = parts.iter().map(|part| outcome(&part.report)).collect();
    Some(if outcomes.contains(&Some(Outcome::Cancelled)) {
        Outcome::Cancelled
    } else if outcomes.contains(&Some(Outcome::ShuttingDown)) {
        Outcome::ShuttingDown
    } else {
        Outcome::Completed
    })
}

/// The `from` a form sends for the vantage points chosen: `None` for the hub alone (the request
/// runs as it always did, its events untagged), the names otherwise.
pub fn from_choice(chosen: &[String]) -> Option<Vec<String>> {
    match chosen {
        [only] if only == LOCAL_VANTAGE => None,
        [] => None,
        names => Some(names.to_vec()),
    }
}

/// One check the user asked for, and everything known about it so far.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// The id it was sent with; every event about it carries this back.
    pub id: RequestId,
    /// What was asked, shown until the agent's parsed target arrives.
    pub request: CheckRequest,
    /// The fold of its events so far.
    pub report: CheckReport,
    /// The agent's refusal, if it refused.
    pub error: Option<RequestError>,
    /// Set when the socket dropped while it ran: no more events can come for it.
    pub interrupted: bool,
    /// Set once the user pressed Cancel, until the agent's `done` arrives.
    pub cancel_requested: bool,
    /// The vantage points it was sent to run from; `None` for this agent alone.
    pub from: Option<Vec<String>>,
    /// With `from`: each vantage point's part, in the order they were named (or first heard of).
    pub vantages: Vec<Part<CheckReport>>,
    /// With `from`: the comparison across vantage points, which ends the request.
    pub cross: Option<CrossVerdict>,
}

impl Check {
    /// A check just sent, with nothing heard back yet.
    pub fn new(id: RequestId, request: CheckRequest, from: Option<Vec<String>>) -> Self {
        Check {
            id,
            request,
            report: CheckReport::default(),
            error: None,
            interrupted: false,
            cancel_requested: false,
            vantages: parts_for(from.as_deref()),
            from,
            cross: None,
        }
    }

    /// Where the check stands.
    pub fn phase(&self) -> Phase {
        let outcome = match self.from {
            Some(_) => overall_outcome(self.cross.as_ref(), &self.vantages, |r| r.outcome),
            None => self.report.outcome,
        };
        Phase::of(outcome, self.error.is_some(), self.interrupted)
    }

    /// One vantage point's part as a check of its own (same id and request), for the card's
    /// per-vantage sections.
    pub fn at(&self, part: &Part<CheckReport>) -> Check {
        Check {
            report: part.report.clone(),
            error: part.error.clone(),
            from: None,
            vantages: Vec::new(),
            cross: None,
            ..self.clone()
        }
    }

    /// Whether events are still expected for it.
    pub fn is_running(&self) -> bool {
        self.phase() == Phase::Running
    }

    /// Whether it is over for good on the agent's side: `done` arrived (with `from`: the
    /// comparison), or the agent refused it.
    pub fn is_done(&self) -> bool {
        let ended = match self.from {
            Some(_) => self.cross.is_some(),
            None => self.report.is_done(),
        };
        ended || self.error.is_some()
    }

    /// With retries: how many rounds the check runs (the first, then each retry); `None` for a
    /// check of one round.
    pub fn rounds_planned(&self) -> Option<u32> {
        self.request.retries.filter(|retries| *retries > 0).map(|retries| retries + 1)
    }

    /// What followed the first connection that opened (the phase waterfall is drawn from it).
    pub fn first_opened(&self) -> Option<&AfterConnect> {
        self.report.findings.iter().find_map(|finding| match finding {
            Finding::AfterConnect(after) => Some(after.as_ref()),
            _ => None,
        })
    }

    /// One row per address, in the resolver's order: finished attempts, connects in flight, and
    /// addresses not tried (yet). Attempts to addresses the resolution did not list come last.
    pub fn address_rows(&self) -> Vec<AddressRow> {
        let report = &self.report;
        let resolved = report.dns.as_ref().map(|dns| dns.addresses.as_slice()).unwrap_or(&[]);
        let mut addresses: Vec<IpAddr> = resolved.to_vec();
        let others = report
            .attempts
            .iter()
            .map(|attempt| attempt.address)
            .chain(report.pending.iter().map(|pending| pending.ip()));
        for address in others {
            if !addresses.contains(&address) {
                addresses.push(address);
            }
        }
        addresses.into_iter().map(|address| self.row_for(address)).collect()
    }

    fn row_for(&self, address: IpAddr) -> AddressRow {
        let report = &self.report;
        let progress = if let Some(attempt) = report.attempts.iter().find(|a| a.address == address)
        {
            RowProgress::Finished(attempt.clone())
        } else if !self.is_running() {
            RowProgress::NotFinished
        } else if report.pending.iter().any(|pending| pending.ip() == address) {
            RowProgress::Connecting
        } else {
            RowProgress::Waiting
        };
        AddressRow { address, family: Family::of(&address), progress }
    }
}

/// One line of a check's address table.
#[derive(Debug, Clone, PartialEq)]
pub struct AddressRow {
    /// The address connected to.
    pub address: IpAddr,
    /// Its family.
    pub family: Family,
    /// How far the connect to it got.
    pub progress: RowProgress,
}

/// How far the connect to one address got.
#[derive(Debug, Clone, PartialEq)]
pub enum RowProgress {
    /// The attempt ended; here is how.
    Finished(Attempt),
    /// The connect started and has not ended yet.
    Connecting,
    /// The check runs but this address was not tried yet.
    Waiting,
    /// The check ended (cancelled, interrupted) before this address got an answer.
    NotFinished,
}

/// One port scan the user asked for, and everything known about it so far.
#[derive(Debug, Clone, PartialEq)]
pub struct Scan {
    /// The id it was sent with; every event about it carries this back.
    pub id: RequestId,
    /// What was asked, shown until the agent's `started` arrives.
    pub request: ScanRequest,
    /// The fold of its events so far. Behind an `Rc` so that copying the page's state at every
    /// step copies only the report that changed, however many ports the other scans hold.
    pub report: Rc<ScanReport>,
    /// The agent's refusal (`invalid_ports`, `too_many_scans` …), if it refused.
    pub error: Option<RequestError>,
    /// Set when the socket dropped while it ran: no more batches can come for it.
    pub interrupted: bool,
    /// Set once the user pressed Cancel, until the agent's `done` arrives.
    pub cancel_requested: bool,
    /// The vantage points it was sent to run from; `None` for this agent alone.
    pub from: Option<Vec<String>>,
    /// With `from`: each vantage point's part, in the order they were named (or first heard of).
    pub vantages: Vec<Part<Rc<ScanReport>>>,
    /// With `from`: the comparison across vantage points, which ends the request.
    pub cross: Option<CrossVerdict>,
}

impl Scan {
    /// A scan just sent, with nothing heard back yet.
    pub fn new(id: RequestId, request: ScanRequest, from: Option<Vec<String>>) -> Self {
        Scan {
            id,
            request,
            report: Rc::default(),
            error: None,
            interrupted: false,
            cancel_requested: false,
            vantages: parts_for(from.as_deref()),
            from,
            cross: None,
        }
    }

    /// Where the scan stands.
    pub fn phase(&self) -> Phase {
        let outcome = match self.from {
            Some(_) => overall_outcome(self.cross.as_ref(), &self.vantages, |r| r.outcome),
            None => self.report.outcome,
        };
        Phase::of(outcome, self.error.is_some(), self.interrupted)
    }

    /// One vantage point's part as a scan of its own (same id and request), for the card's
    /// per-vantage sections.
    pub fn at(&self, part: &Part<Rc<ScanReport>>) -> Scan {
        Scan {
            report: Rc::clone(&part.report),
            error: part.error.clone(),
            from: None,
            vantages: Vec::new(),
            cross: None,
            ..self.clone()
        }
    }

    /// Whether batches are still expected for it.
    pub fn is_running(&self) -> bool {
        self.phase() == Phase::Running
    }

    /// Whether it is over for good on the agent's side: `done` arrived (with `from`: the
    /// comparison), or the agent refused it.
    pub fn is_done(&self) -> bool {
        let ended = match self.from {
            Some(_) => self.cross.is_some(),
            None => self.report.is_done(),
        };
        ended || self.error.is_some()
    }

    /// The report the agent's echo of the request comes from: the scan's own, or with `from`
    /// the first part that started.
    fn echo(&self) -> Option<&ScanReport> {
        std::iter::once(&self.report)
            .chain(self.vantages.iter().map(|part| &part.report))
            .map(Rc::as_ref)
            .find(|report| report.started_at.is_some())
    }

    /// The host as the agent echoed it, or as it was asked until then.
    pub fn target(&self) -> &str {
        self.echo().map_or(&self.request.target, |report| &report.target)
    }

    /// The port spec as the agent understood it, or as it was asked (the default when none was).
    pub fn ports(&self) -> &str {
        if let Some(report) = self.echo() {
            &report.ports
        } else {
            self.request.ports.as_deref().unwrap_or(whyrefused_shared::DEFAULT_PORT_SPEC)
        }
    }
}

/// A card of the results list: a check or a scan.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Card<'a> {
    /// A check's card.
    Check(&'a Check),
    /// A scan's card.
    Scan(&'a Scan),
}

impl Card<'_> {
    /// The request's id: the page numbers checks and scans from one counter, so it orders them.
    pub fn id(&self) -> RequestId {
        match self {
            Card::Check(check) => check.id,
            Card::Scan(scan) => scan.id,
        }
    }
}

/// Everything the page shows.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    /// The link to the agent.
    pub link: LinkStatus,
    /// Every check of this page's life, newest first.
    pub checks: Vec<Check>,
    /// Every scan of this page's life, newest first.
    pub scans: Vec<Scan>,
    /// The last problem not tied to one check (an error without id, an unreadable message).
    pub notice: Option<String>,
    /// The vantage points the agent (a hub) last listed: `local` first, then those that joined.
    pub vantages: Vec<VantageInfo>,
}

impl Default for State {
    fn default() -> Self {
        State {
            link: LinkStatus::Connecting,
            checks: Vec::new(),
            scans: Vec::new(),
            notice: None,
            vantages: Vec::new(),
        }
    }
}

impl State {
    /// The check with this id, if the page sent it.
    #[cfg(test)]
    pub fn check(&self, id: RequestId) -> Option<&Check> {
        self.checks.iter().find(|check| check.id == id)
    }

    /// The scan with this id, if the page sent it.
    #[cfg(test)]
    pub fn scan(&self, id: RequestId) -> Option<&Scan> {
        self.scans.iter().find(|scan| scan.id == id)
    }

    /// Every check and scan, newest first.
    pub fn cards(&self) -> Vec<Card<'_>> {
        let mut cards: Vec<Card<'_>> = self.checks.iter().map(Card::Check).collect();
        cards.extend(self.scans.iter().map(Card::Scan));
        cards.sort_by_key(|card| std::cmp::Reverse(card.id()));
        cards
    }

    fn check_mut(&mut self, id: RequestId) -> Option<&mut Check> {
        self.checks.iter_mut().find(|check| check.id == id)
    }

    fn scan_mut(&mut self, id: RequestId) -> Option<&mut Scan> {
        self.scans.iter_mut().find(|scan| scan.id == id)
    }

    fn receive(&mut self, message: AgentMessage) {
        match message {
            AgentMessage::Hello { protocol, agent, .. } => self.greeted(protocol, agent),
            AgentMessage::Event { id, vantage, event } => self.event(id, vantage, &event),
            AgentMessage::Scan { id, vantage, event } => self.scan_event(id, vantage, &event),
            AgentMessage::Error { id, code, message } => self.error(id, code, message),
            AgentMessage::VantageError { id, vantage, code, message } => {
                self.vantage_error(id, &vantage, RequestError { code, message })
            }
            AgentMessage::VantagesDone { id, verdict } => self.vantages_done(id, verdict),
            AgentMessage::Agents { agents, .. } => self.vantages = agents,
            // Only a joining agent is sent this, never a page.
            AgentMessage::Registered { .. } => {}
        }
    }

    fn vantage_error(&mut self, id: RequestId, vantage: &str, error: RequestError) {
        if let Some(check) = self.check_mut(id).filter(|check| check.is_running()) {
            part_mut(&mut check.vantages, vantage).error = Some(error);
        } else if let Some(scan) = self.scan_mut(id).filter(|scan| scan.is_running()) {
            part_mut(&mut scan.vantages, vantage).error = Some(error);
        }
    }

    fn vantages_done(&mut self, id: RequestId, verdict: CrossVerdict) {
        if let Some(check) = self.check_mut(id).filter(|check| check.is_running()) {
            check.cross = Some(verdict);
        } else if let Some(scan) = self.scan_mut(id).filter(|scan| scan.is_running()) {
            scan.cross = Some(verdict);
        }
    }

    fn greeted(&mut self, protocol: u32, agent: AgentInfo) {
        if protocol == PROTOCOL_VERSION {
            self.link = LinkStatus::Connected { agent };
            self.notice = None;
        } else {
            self.notice = Some(format!(
                "The agent at {} speaks protocol version {protocol} but this page speaks version \
                 {PROTOCOL_VERSION}: reload the page, or run the same whyrefused version on both.",
                agent.hostname
            ));
        }
    }

    fn event(&mut self, id: RequestId, vantage: Option<String>, event: &CheckEvent) {
        if let Some(check) = self.check_mut(id).filter(|check| check.is_running()) {
            let report = match vantage {
                Some(name) => &mut part_mut(&mut check.vantages, &name).report,
                None => &mut check.report,
            };
            report.apply(event);
        }
    }

    fn scan_event(&mut self, id: RequestId, vantage: Option<String>, event: &ScanEvent) {
        if let Some(scan) = self.scan_mut(id).filter(|scan| scan.is_running()) {
            let report = match vantage {
                Some(name) => &mut part_mut(&mut scan.vantages, &name).report,
                None => &mut scan.report,
            };
            Rc::make_mut(report).apply(event);
        }
    }

    fn error(&mut self, id: Option<RequestId>, code: ErrorCode, message: String) {
        // Whether the request named is running, and where its error goes.
        let request = match id {
            Some(id) if self.checks.iter().any(|check| check.id == id) => {
                self.check_mut(id).map(|check| (check.is_running(), &mut check.error))
            }
            Some(id) => self.scan_mut(id).map(|scan| (scan.is_running(), &mut scan.error)),
            None => None,
        };
        match request {
            // A cancel that crossed the request's `done` on the wire: nothing to show.
            Some((false, _)) if code == ErrorCode::UnknownRequest => {}
            Some((true, error)) => *error = Some(RequestError { code, message }),
            _ => self.notice = Some(message),
        }
    }

    fn disconnected(&mut self, retry_in_ms: u32, reason: Option<String>) {
        self.link = LinkStatus::Disconnected { retry_in_ms, reason };
        for check in self.checks.iter_mut().filter(|check| check.is_running()) {
            check.interrupted = true;
        }
        for scan in self.scans.iter_mut().filter(|scan| scan.is_running()) {
            scan.interrupted = true;
        }
    }
}

/// Everything that can change the [`State`].
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// A socket to the agent is being opened.
    Connecting,
    /// The socket closed (or never opened); the next try is in `retry_in_ms`. Sent again as the
    /// countdown runs. Running checks become interrupted.
    Disconnected {
        /// Time left before the next try, in milliseconds.
        retry_in_ms: u32,
        /// What the browser said about the close.
        reason: Option<String>,
    },
    /// A message arrived from the agent.
    Received(AgentMessage),
    /// The agent sent something the page could not read.
    Unreadable(String),
    /// A check was sent with this id.
    Submitted {
        /// The id it was sent with.
        id: RequestId,
        /// What was asked.
        request: CheckRequest,
        /// The vantage points it runs from; `None` for this agent alone.
        from: Option<Vec<String>>,
    },
    /// A scan was sent with this id.
    ScanSubmitted {
        /// The id it was sent with.
        id: RequestId,
        /// What was asked.
        request: ScanRequest,
        /// The vantage points it runs from; `None` for this agent alone.
        from: Option<Vec<String>>,
    },
    /// The user asked to cancel a running check or scan.
    CancelRequested(RequestId),
    /// The agent wants a token before it takes requests (or refused the one sent).
    TokenNeeded {
        /// Why the last token did not work, when one was tried.
        problem: Option<String>,
    },
}

impl Reducible for State {
    type Action = Action;

    fn reduce(self: Rc<Self>, action: Action) -> Rc<Self> {
        let mut state = (*self).clone();
        match action {
            Action::Connecting => state.link = LinkStatus::Connecting,
            Action::TokenNeeded { problem } => state.link = LinkStatus::NeedsToken { problem },
            Action::Disconnected { retry_in_ms, reason } => state.disconnected(retry_in_ms, reason),
            Action::Received(message) => state.receive(message),
            Action::Unreadable(problem) => {
                state.notice =
                    Some(format!("The agent sent a message this page cannot read: {problem}"))
            }
            Action::Submitted { id, request, from } => {
                state.checks.insert(0, Check::new(id, request, from))
            }
            Action::ScanSubmitted { id, request, from } => {
                state.scans.insert(0, Scan::new(id, request, from))
            }
            Action::CancelRequested(id) => {
                if let Some(check) = state.check_mut(id).filter(|check| check.is_running()) {
                    check.cancel_requested = true;
                }
                if let Some(scan) = state.scan_mut(id).filter(|scan| scan.is_running()) {
                    scan.cancel_requested = true;
                }
            }
        }
        state.into()
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use whyrefused_shared::{
        Cause, ConnectState, CrossCause, DnsStatus, Phases, PortResult, PortRun, PortSource,
        Resolution, ResolveMethod, ScanProgress, ScanStep, StateCounts, Step, TargetInfo,
        Timestamp, Verdict,
    };

    use super::*;

    fn reduce(state: State, actions: impl IntoIterator<Item = Action>) -> State {
        let mut state = Rc::new(state);
        for action in actions {
            state = state.reduce(action);
        }
        Rc::unwrap_or_clone(state)
    }

    fn hello(protocol: u32) -> Action {
        Action::Received(AgentMessage::Hello {
            protocol,
            agent: AgentInfo { version: "0.1.0".into(), hostname: "box".into() },
            auth_required: false,
        })
    }

    fn submit(id: u64, target: &str) -> Action {
        Action::Submitted { id: RequestId(id), request: CheckRequest::new(target), from: None }
    }

    fn event(id: u64, step: Step) -> Action {
        Action::Received(AgentMessage::Event {
            id: RequestId(id),
            vantage: None,
            event: CheckEvent { at: Timestamp("2026-11-24T10:00:00.000000Z".into()), step },
        })
    }

    fn started(port: u16) -> Step {
        Step::Started {
            target: TargetInfo {
                input: format!("localhost:{port}"),
                host: "localhost".into(),
                display_host: "localhost".into(),
                port,
                port_source: PortSource::Explicit,
                scheme: None,
                path: None,
            },
            timeout_ms: 3000,
        }
    }

    fn resolved(addresses: &[&str]) -> Step {
        Step::Resolved {
            resolution: Resolution {
                host: "localhost".into(),
                method: ResolveMethod::System,
                status: DnsStatus::Ok,
                addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
                detail: None,
                elapsed_us: 42,
            },
        }
    }

    fn attempt_started(address: &str) -> Step {
        Step::AttemptStarted { address: address.parse::<SocketAddr>().unwrap() }
    }

    fn attempt_finished(address: &str, state: ConnectState) -> Step {
        let address: IpAddr = address.parse().unwrap();
        Step::AttemptFinished {
            attempt: Attempt {
                address,
                port: 80,
                family: Family::of(&address),
                state,
                errno: None,
                icmp: None,
                elapsed_us: 87,
                elapsed_ms: 0.087,
                started_at: Timestamp("2026-11-24T10:00:00.000001Z".into()),
            },
        }
    }

    fn done(outcome: Outcome) -> Step {
        Step::Done { outcome, elapsed_us: 1000 }
    }

    fn connected() -> State {
        reduce(State::default(), [hello(PROTOCOL_VERSION)])
    }

    #[test]
    fn the_page_starts_connecting_and_connects_on_the_agents_hello() {
        let state = State::default();
        assert_eq!(state.link.wire_name(), "connecting");
        let state = connected();
        assert!(matches!(state.link, LinkStatus::Connected { .. }));
        assert_eq!(state.link.wire_name(), "connected");
    }

    #[test]
    fn a_hello_with_another_protocol_does_not_connect_and_says_why() {
        let state = reduce(State::default(), [hello(PROTOCOL_VERSION + 1)]);
        assert!(!matches!(state.link, LinkStatus::Connected { .. }));
        assert!(state.notice.as_deref().unwrap().contains("protocol version"));
    }

    #[test]
    fn new_checks_come_first_and_earlier_ones_stay() {
        let state = reduce(connected(), [submit(1, "a:1"), submit(2, "b:2")]);
        let ids: Vec<u64> = state.checks.iter().map(|check| check.id.0).collect();
        assert_eq!(ids, [2, 1]);
        assert!(state.checks.iter().all(Check::is_running));
    }

    #[test]
    fn events_fold_into_their_own_checks_report() {
        let state = reduce(
            connected(),
            [
                submit(1, "localhost:80"),
                submit(2, "localhost:81"),
                event(1, started(80)),
                event(1, resolved(&["::1", "127.0.0.1"])),
                event(1, attempt_started("[::1]:80")),
                event(1, attempt_started("127.0.0.1:80")),
                event(1, attempt_finished("127.0.0.1", ConnectState::Open)),
            ],
        );
        let check = state.check(RequestId(1)).unwrap();
        assert_eq!(check.report.target.as_ref().unwrap().port, 80);
        let rows = check.address_rows();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].address.to_string(), "::1");
        assert_eq!(rows[0].progress, RowProgress::Connecting);
        assert!(
            matches!(&rows[1].progress, RowProgress::Finished(a) if a.state == ConnectState::Open)
        );
        assert_eq!(state.check(RequestId(2)).unwrap().report, CheckReport::default());
    }

    #[test]
    fn a_verdict_and_done_complete_a_check() {
        let verdict = Verdict {
            cause: Cause::PortClosed,
            summary: "closed".into(),
            suggestions: vec![],
            evidence: vec![],
            pattern: None,
        };
        let state = reduce(
            connected(),
            [
                submit(1, "localhost:80"),
                event(1, started(80)),
                event(1, Step::Verdict { verdict }),
                event(1, done(Outcome::Completed)),
            ],
        );
        let check = state.check(RequestId(1)).unwrap();
        assert_eq!(check.phase(), Phase::Completed);
        assert!(check.is_done());
        assert_eq!(check.report.verdict.as_ref().unwrap().cause, Cause::PortClosed);
    }

    #[test]
    fn only_a_check_with_retries_plans_rounds_and_they_count_the_first() {
        let mut check = Check::new(RequestId(1), CheckRequest::new("a:1"), None);
        assert_eq!(check.rounds_planned(), None);
        check.request.retries = Some(0);
        assert_eq!(check.rounds_planned(), None);
        check.request.retries = Some(2);
        assert_eq!(check.rounds_planned(), Some(3));
    }

    #[test]
    fn the_waterfall_comes_from_the_first_connection_that_opened() {
        let opened = |address: &str, connect_us: u64| Step::Finding {
            finding: Finding::AfterConnect(Box::new(AfterConnect {
                address: address.parse().unwrap(),
                early_close: None,
                banner: None,
                tls: None,
                http: None,
                phases: Phases { connect_us, ..Phases::default() },
            })),
        };
        let state = reduce(connected(), [submit(1, "localhost:80")]);
        assert_eq!(state.check(RequestId(1)).unwrap().first_opened(), None);
        let state = reduce(
            state,
            [event(1, opened("127.0.0.1:80", 120)), event(1, opened("[::1]:80", 90))],
        );
        let first = state.check(RequestId(1)).unwrap().first_opened().unwrap();
        assert_eq!(first.phases.connect_us, 120);
    }

    #[test]
    fn resolved_addresses_not_tried_yet_are_waiting() {
        let state =
            reduce(connected(), [submit(1, "localhost:80"), event(1, resolved(&["127.0.0.1"]))]);
        let rows = state.check(RequestId(1)).unwrap().address_rows();
        assert_eq!(rows[0].progress, RowProgress::Waiting);
    }

    #[test]
    fn an_error_for_a_check_is_shown_on_its_card_and_ends_it() {
        let error = AgentMessage::Error {
            id: Some(RequestId(1)),
            code: ErrorCode::InvalidTarget,
            message: "port 0 is not a valid port".into(),
        };
        let state = reduce(connected(), [submit(1, "x:0"), Action::Received(error)]);
        let check = state.check(RequestId(1)).unwrap();
        assert_eq!(check.phase(), Phase::Failed);
        assert!(check.is_done());
        assert_eq!(check.error.as_ref().unwrap().message, "port 0 is not a valid port");
        assert_eq!(state.notice, None);
    }

    #[test]
    fn an_error_without_a_check_becomes_the_notice() {
        let error = AgentMessage::Error {
            id: None,
            code: ErrorCode::MalformedMessage,
            message: "not JSON".into(),
        };
        let state = reduce(connected(), [Action::Received(error)]);
        assert_eq!(state.notice.as_deref(), Some("not JSON"));
    }

    #[test]
    fn a_late_unknown_request_after_a_cancel_is_ignored() {
        let late = AgentMessage::Error {
            id: Some(RequestId(1)),
            code: ErrorCode::UnknownRequest,
            message: "request #1 is not running".into(),
        };
        let state = reduce(
            connected(),
            [
                submit(1, "localhost:80"),
                Action::CancelRequested(RequestId(1)),
                event(1, done(Outcome::Cancelled)),
                Action::Received(late),
            ],
        );
        let check = state.check(RequestId(1)).unwrap();
        assert_eq!(check.phase(), Phase::Cancelled);
        assert_eq!(check.error, None);
        assert_eq!(state.notice, None);
    }

    #[test]
    fn cancelling_marks_the_check_until_done_arrives() {
        let state = reduce(
            connected(),
            [
                submit(1, "localhost:80"),
                event(1, resolved(&["127.0.0.1"])),
                event(1, attempt_started("127.0.0.1:80")),
                Action::CancelRequested(RequestId(1)),
            ],
        );
        assert!(state.check(RequestId(1)).unwrap().cancel_requested);
        let state = reduce(state, [event(1, done(Outcome::Cancelled))]);
        let check = state.check(RequestId(1)).unwrap();
        assert_eq!(check.phase(), Phase::Cancelled);
        assert_eq!(check.address_rows()[0].progress, RowProgress::NotFinished);
    }

    #[test]
    fn a_dropped_socket_interrupts_running_checks_only() {
        let state = reduce(
            connected(),
            [
                submit(1, "localhost:80"),
                event(1, done(Outcome::Completed)),
                submit(2, "localhost:81"),
                Action::Disconnected { retry_in_ms: 500, reason: None },
            ],
        );
        assert_eq!(state.link.wire_name(), "disconnected");
        assert_eq!(state.check(RequestId(1)).unwrap().phase(), Phase::Completed);
        let interrupted = state.check(RequestId(2)).unwrap();
        assert_eq!(interrupted.phase(), Phase::Interrupted);
        assert!(!interrupted.is_done());
    }

    #[test]
    fn connects_in_flight_when_the_socket_drops_are_no_longer_shown_as_connecting() {
        let state = reduce(
            connected(),
            [
                submit(1, "localhost:80"),
                event(1, resolved(&["127.0.0.1"])),
                event(1, attempt_started("127.0.0.1:80")),
                Action::Disconnected { retry_in_ms: 500, reason: None },
            ],
        );
        let rows = state.check(RequestId(1)).unwrap().address_rows();
        assert_eq!(rows[0].progress, RowProgress::NotFinished);
    }

    #[test]
    fn events_for_an_interrupted_or_unknown_check_are_dropped() {
        let state = reduce(
            connected(),
            [
                submit(1, "localhost:80"),
                Action::Disconnected { retry_in_ms: 500, reason: None },
                Action::Connecting,
                hello(PROTOCOL_VERSION),
                event(1, started(80)),
                event(9, started(80)),
            ],
        );
        assert!(matches!(state.link, LinkStatus::Connected { .. }));
        assert_eq!(state.check(RequestId(1)).unwrap().report, CheckReport::default());
        assert_eq!(state.checks.len(), 1);
    }

    fn scan_submit(id: u64, ports: &str) -> Action {
        Action::ScanSubmitted {
            id: RequestId(id),
            request: ScanRequest::new("127.0.0.1", ports),
            from: None,
        }
    }

    fn scan_event(id: u64, step: ScanStep) -> Action {
        Action::Received(AgentMessage::Scan {
            id: RequestId(id),
            vantage: None,
            event: ScanEvent { at: Timestamp("2026-11-25T10:00:00.000000Z".into()), step },
        })
    }

    fn scan_started(ports: &str, port_count: u32) -> ScanStep {
        ScanStep::Started {
            target: "127.0.0.1".into(),
            ports: ports.into(),
            port_count,
            timeout_ms: 1000,
            retries: 1,
        }
    }

    fn scan_resolved() -> ScanStep {
        ScanStep::Resolved {
            resolution: Resolution {
                host: "127.0.0.1".into(),
                method: ResolveMethod::Literal,
                status: DnsStatus::Ok,
                addresses: vec!["127.0.0.1".parse().unwrap()],
                detail: None,
                elapsed_us: 1,
            },
            addresses: vec!["127.0.0.1".parse().unwrap()],
            window: 512,
            problem: None,
            denied: Vec::new(),
        }
    }

    fn batch(done: u64, open: &[u16], refused: &[(u16, u16)]) -> ScanStep {
        let address: IpAddr = "127.0.0.1".parse().unwrap();
        ScanStep::Progress(ScanProgress {
            done,
            total: 100,
            rate_per_s: 5000.0,
            eta_ms: Some(10),
            results: open
                .iter()
                .map(|port| PortResult {
                    address,
                    port: *port,
                    state: ConnectState::Open,
                    errno: None,
                    icmp: None,
                    elapsed_us: 40,
                    tries: 1,
                    service: None,
                })
                .collect(),
            refused: refused
                .iter()
                .map(|(first, last)| PortRun { address, first: *first, last: *last })
                .collect(),
        })
    }

    fn scan_done(outcome: Outcome, open: u64, refused: u64) -> ScanStep {
        ScanStep::Done {
            outcome,
            counts: StateCounts { open, refused, ..StateCounts::default() },
            elapsed_us: 20_000,
            loss: None,
        }
    }

    #[test]
    fn scan_batches_fold_into_the_scans_report_until_done() {
        let state = reduce(
            connected(),
            [
                scan_submit(1, "1-100"),
                scan_event(1, scan_started("1-100", 100)),
                scan_event(1, scan_resolved()),
                scan_event(1, batch(60, &[22], &[(1, 21), (23, 60)])),
            ],
        );
        let scan = state.scan(RequestId(1)).unwrap();
        assert_eq!(scan.phase(), Phase::Running);
        assert_eq!((scan.report.done, scan.report.total), (60, 100));
        assert_eq!(
            scan.report.state_of("127.0.0.1".parse().unwrap(), 22),
            Some(ConnectState::Open)
        );
        assert_eq!(scan.report.refused.len(), 2);

        let state = reduce(
            state,
            [
                scan_event(1, batch(100, &[], &[(61, 100)])),
                scan_event(1, scan_done(Outcome::Completed, 1, 99)),
                // Nothing more is taken once it is done.
                scan_event(1, batch(100, &[99], &[])),
            ],
        );
        let scan = state.scan(RequestId(1)).unwrap();
        assert_eq!(scan.phase(), Phase::Completed);
        assert!(scan.is_done());
        assert_eq!(
            scan.report.refused,
            [
                PortRun { address: "127.0.0.1".parse().unwrap(), first: 1, last: 21 },
                PortRun { address: "127.0.0.1".parse().unwrap(), first: 23, last: 100 }
            ]
        );
        assert_eq!(scan.report.counts.total(), 100);
        assert_eq!(scan.report.results.len(), 1);
    }

    #[test]
    fn a_scan_shows_what_was_asked_until_the_agent_echoes_it() {
        let state = reduce(
            connected(),
            [Action::ScanSubmitted {
                id: RequestId(1),
                request: ScanRequest { ports: None, ..ScanRequest::new("db", "") },
                from: None,
            }],
        );
        let scan = state.scan(RequestId(1)).unwrap();
        assert_eq!((scan.target(), scan.ports()), ("db", "top1000"));
        let state = reduce(state, [scan_event(1, scan_started("1-10", 10))]);
        let scan = state.scan(RequestId(1)).unwrap();
        assert_eq!((scan.target(), scan.ports()), ("127.0.0.1", "1-10"));
    }

    #[test]
    fn an_error_for_a_scan_is_shown_on_its_card_and_ends_it() {
        let error = AgentMessage::Error {
            id: Some(RequestId(2)),
            code: ErrorCode::InvalidPorts,
            message: "port 0 is out of range: ports run from 1 to 65535".into(),
        };
        let state = reduce(
            connected(),
            [submit(1, "a:1"), scan_submit(2, "0-10"), Action::Received(error)],
        );
        let scan = state.scan(RequestId(2)).unwrap();
        assert_eq!(scan.phase(), Phase::Failed);
        assert!(scan.is_done());
        assert_eq!(scan.error.as_ref().unwrap().code, ErrorCode::InvalidPorts);
        assert_eq!(state.check(RequestId(1)).unwrap().error, None, "the check is untouched");
        assert_eq!(state.notice, None);
    }

    #[test]
    fn cancelling_a_scan_marks_it_until_done_and_a_late_unknown_request_is_ignored() {
        let late = AgentMessage::Error {
            id: Some(RequestId(1)),
            code: ErrorCode::UnknownRequest,
            message: "request #1 is not running".into(),
        };
        let state = reduce(
            connected(),
            [
                scan_submit(1, "1-100"),
                scan_event(1, scan_started("1-100", 100)),
                Action::CancelRequested(RequestId(1)),
            ],
        );
        assert!(state.scan(RequestId(1)).unwrap().cancel_requested);
        let state = reduce(
            state,
            [scan_event(1, scan_done(Outcome::Cancelled, 0, 0)), Action::Received(late)],
        );
        let scan = state.scan(RequestId(1)).unwrap();
        assert_eq!(scan.phase(), Phase::Cancelled);
        assert_eq!(scan.error, None);
        assert_eq!(state.notice, None);
    }

    #[test]
    fn a_dropped_socket_interrupts_running_scans_and_their_late_batches_are_dropped() {
        let state = reduce(
            connected(),
            [
                scan_submit(1, "1-100"),
                scan_event(1, scan_done(Outcome::Completed, 0, 0)),
                scan_submit(2, "1-100"),
                scan_event(2, batch(10, &[], &[(1, 10)])),
                Action::Disconnected { retry_in_ms: 500, reason: None },
                scan_event(2, batch(20, &[], &[(11, 20)])),
            ],
        );
        assert_eq!(state.scan(RequestId(1)).unwrap().phase(), Phase::Completed);
        let interrupted = state.scan(RequestId(2)).unwrap();
        assert_eq!(interrupted.phase(), Phase::Interrupted);
        assert!(!interrupted.is_done());
        assert_eq!(interrupted.report.done, 10);
    }

    #[test]
    fn checks_and_scans_share_one_list_newest_first() {
        let state =
            reduce(connected(), [submit(1, "a:1"), scan_submit(2, "top100"), submit(3, "b:2")]);
        let ids: Vec<u64> = state.cards().iter().map(|card| card.id().0).collect();
        assert_eq!(ids, [3, 2, 1]);
        assert!(matches!(state.cards()[1], Card::Scan(scan) if scan.id == RequestId(2)));
    }

    #[test]
    fn an_update_copies_only_the_report_of_the_scan_it_is_about() {
        let state = reduce(connected(), [scan_submit(1, "1-100"), scan_submit(2, "1-100")]);
        let before = Rc::clone(&state.scan(RequestId(1)).unwrap().report);
        let state = reduce(state, [scan_event(2, batch(10, &[], &[(1, 10)]))]);
        assert!(Rc::ptr_eq(&before, &state.scan(RequestId(1)).unwrap().report));
    }

    #[test]
    fn a_reconnect_clears_an_old_notice() {
        let state = reduce(connected(), [Action::Unreadable("expected value".into())]);
        assert!(state.notice.is_some());
        let state = reduce(state, [Action::Connecting, hello(PROTOCOL_VERSION)]);
        assert_eq!(state.notice, None);
    }

    #[test]
    fn an_agent_that_wants_a_token_blocks_requests_until_it_is_greeted_with_one() {
        let state = reduce(State::default(), vec![Action::TokenNeeded { problem: None }]);
        assert!(matches!(state.link, LinkStatus::NeedsToken { problem: None }));
        assert_eq!(state.link.wire_name(), "needs-token");
        let refused = Some("The agent refused that token.".to_string());
        let actions = [hello(PROTOCOL_VERSION), Action::TokenNeeded { problem: refused.clone() }];
        let state = reduce(State::default(), actions);
        assert_eq!(state.link, LinkStatus::NeedsToken { problem: refused });
        let actions = [Action::TokenNeeded { problem: None }, hello(PROTOCOL_VERSION)];
        let state = reduce(State::default(), actions);
        assert!(matches!(state.link, LinkStatus::Connected { .. }), "greeted once a token is sent");
    }

    fn submit_from(id: u64, target: &str, from: &[&str]) -> Action {
        Action::Submitted {
            id: RequestId(id),
            request: CheckRequest::new(target),
            from: Some(from.iter().map(|name| name.to_string()).collect()),
        }
    }

    fn tagged(id: u64, vantage: &str, step: Step) -> Action {
        Action::Received(AgentMessage::Event {
            id: RequestId(id),
            vantage: Some(vantage.into()),
            event: CheckEvent { at: Timestamp("2026-11-24T10:00:00.000000Z".into()), step },
        })
    }

    fn verdict(cause: Cause) -> Step {
        Step::Verdict {
            verdict: Verdict {
                cause,
                summary: String::new(),
                suggestions: vec![],
                evidence: vec![],
                pattern: None,
            },
        }
    }

    fn cross(id: u64, cause: CrossCause) -> Action {
        Action::Received(AgentMessage::VantagesDone {
            id: RequestId(id),
            verdict: CrossVerdict {
                cause,
                summary: "Every vantage point sees the same.".into(),
                details: vec![],
                vantages: vec![],
            },
        })
    }

    #[test]
    fn tagged_events_fold_into_their_vantage_points_part() {
        let state = reduce(
            connected(),
            [
                submit_from(1, "localhost:80", &["local", "a1"]),
                tagged(1, "a1", started(80)),
                tagged(1, "a1", verdict(Cause::PortClosed)),
                tagged(1, "local", verdict(Cause::Reachable)),
                tagged(1, "a2", started(80)),
            ],
        );
        let check = state.check(RequestId(1)).unwrap();
        let names: Vec<&str> = check.vantages.iter().map(|part| part.name.as_str()).collect();
        assert_eq!(names, ["local", "a1", "a2"], "named first, then as heard of");
        let cause = |index: usize| check.vantages[index].report.verdict.as_ref().map(|v| v.cause);
        assert_eq!((cause(0), cause(1)), (Some(Cause::Reachable), Some(Cause::PortClosed)));
        assert!(check.vantages[2].report.target.is_some());
        assert_eq!(check.report, CheckReport::default(), "untagged report untouched");
        assert_eq!(check.phase(), Phase::Running);
    }

    #[test]
    fn each_vantage_points_done_ends_its_part_and_vantages_done_ends_the_check() {
        let state = reduce(
            connected(),
            [
                submit_from(1, "localhost:80", &["local", "a1"]),
                tagged(1, "local", verdict(Cause::Reachable)),
                tagged(1, "local", done(Outcome::Completed)),
                tagged(1, "a1", done(Outcome::VantageOffline)),
                tagged(1, "a2", done(Outcome::VantageTimeout)),
            ],
        );
        let check = state.check(RequestId(1)).unwrap();
        assert_eq!(check.phase(), Phase::Running, "running until the comparison");
        assert_eq!(check.at(&check.vantages[2]).phase(), Phase::Failed, "the hub gave up on a2");
        assert!(!check.is_done());
        assert_eq!(check.at(&check.vantages[0]).phase(), Phase::Completed);
        assert_eq!(check.at(&check.vantages[1]).phase(), Phase::Failed);

        let state = reduce(state, [cross(1, CrossCause::Inconclusive)]);
        let check = state.check(RequestId(1)).unwrap();
        assert_eq!(check.cross.as_ref().unwrap().cause, CrossCause::Inconclusive);
        assert_eq!(check.phase(), Phase::Completed);
        assert!(check.is_done());
        // Nothing is taken once the comparison came.
        let state = reduce(state, [tagged(1, "local", started(81))]);
        assert_eq!(state.check(RequestId(1)).unwrap().vantages[0].report.target, None);
    }

    #[test]
    fn a_vantage_error_is_kept_on_that_vantage_points_part() {
        let refusal = AgentMessage::VantageError {
            id: RequestId(1),
            vantage: "a1".into(),
            code: ErrorCode::TooManyScans,
            message: "busy".into(),
        };
        let state = reduce(
            connected(),
            [
                submit_from(1, "localhost:80", &["local", "a1"]),
                Action::Received(refusal),
                tagged(1, "a1", done(Outcome::Rejected)),
            ],
        );
        let check = state.check(RequestId(1)).unwrap();
        assert_eq!(check.vantages[1].error.as_ref().unwrap().code, ErrorCode::TooManyScans);
        assert_eq!(check.vantages[0].error, None);
        assert_eq!(check.error, None, "the request as a whole was not refused");
        assert_eq!(check.at(&check.vantages[1]).phase(), Phase::Failed);
    }

    #[test]
    fn a_cancelled_request_with_from_ends_cancelled() {
        let state = reduce(
            connected(),
            [
                submit_from(1, "localhost:80", &["all"]),
                Action::CancelRequested(RequestId(1)),
                tagged(1, "local", done(Outcome::Cancelled)),
                tagged(1, "a1", done(Outcome::Cancelled)),
                cross(1, CrossCause::Inconclusive),
            ],
        );
        let check = state.check(RequestId(1)).unwrap();
        assert_eq!(check.vantages.len(), 2, "`all` names come from the events");
        assert_eq!(check.phase(), Phase::Cancelled);
    }

    #[test]
    fn tagged_scan_batches_fold_per_vantage_point() {
        let tagged_scan = |vantage: &str, step: ScanStep| {
            Action::Received(AgentMessage::Scan {
                id: RequestId(1),
                vantage: Some(vantage.into()),
                event: ScanEvent { at: Timestamp("2026-11-25T10:00:00.000000Z".into()), step },
            })
        };
        let state = reduce(
            connected(),
            [
                Action::ScanSubmitted {
                    id: RequestId(1),
                    request: ScanRequest::new("127.0.0.1", "1-100"),
                    from: Some(vec!["local".into(), "a1".into()]),
                },
                tagged_scan("a1", scan_started("1-100", 100)),
                tagged_scan("a1", batch(100, &[22], &[(1, 21), (23, 100)])),
                tagged_scan("a1", scan_done(Outcome::Completed, 1, 99)),
                tagged_scan("local", scan_done(Outcome::Completed, 0, 0)),
            ],
        );
        let scan = state.scan(RequestId(1)).unwrap();
        assert_eq!(scan.vantages[1].report.done, 100);
        assert_eq!(scan.vantages[0].report.done, 0);
        assert_eq!(scan.ports(), "1-100", "echoed by the first part that started");
        assert_eq!(scan.phase(), Phase::Running);
        let state = reduce(state, [cross(1, CrossCause::FirewallBetween)]);
        let scan = state.scan(RequestId(1)).unwrap();
        assert_eq!(scan.phase(), Phase::Completed);
        assert_eq!(scan.cross.as_ref().unwrap().cause, CrossCause::FirewallBetween);
    }

    #[test]
    fn the_agents_answer_replaces_the_vantage_list() {
        let info = |name: &str, online: bool| VantageInfo {
            name: name.into(),
            online,
            version: "0.1.0".into(),
            hostname: "box".into(),
            addresses: vec![],
            last_seen: None,
            connected_since: None,
        };
        let list = |agents| Action::Received(AgentMessage::Agents { id: RequestId(9), agents });
        let state = reduce(connected(), [list(vec![info("local", true), info("a1", true)])]);
        assert_eq!(state.vantages.len(), 2);
        let state = reduce(state, [list(vec![info("local", true), info("a1", false)])]);
        assert!(!state.vantages[1].online);
        assert!(state.checks.is_empty() && state.notice.is_none());
    }

    #[test]
    fn only_local_sends_no_from() {
        let names = |list: &[&str]| list.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert_eq!(from_choice(&names(&["local"])), None);
        assert_eq!(from_choice(&names(&[])), None);
        assert_eq!(from_choice(&names(&["a1"])), Some(names(&["a1"])));
        assert_eq!(from_choice(&names(&["local", "a1"])), Some(names(&["local", "a1"])));
    }
}
