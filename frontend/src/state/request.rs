//! [`Request<R>`]: one check or scan the user asked for, and everything known about it so far,
//! whichever kind it is: the fold of its events (an [`Rc`] so copying the page's state copies no
//! report), and what the page knows beyond the events (an error the agent answered with, a
//! socket that dropped under it, a cancel on its way, each vantage point's part).

use std::fmt::Debug;
use std::rc::Rc;

use whyrefused_shared::{
    CheckEvent, CheckReport, CheckRequest, CrossVerdict, Outcome, RequestId, ScanEvent, ScanReport,
    ScanRequest,
};

use super::RequestError;

/// A report built by folding a request's events one by one, as the shared `CheckReport::apply`
/// and `ScanReport::apply` do for the page, the CLI and the hub alike.
pub trait Fold: Debug + Clone + Default + PartialEq {
    /// What the user asked for.
    type Request: Debug + Clone + PartialEq;
    /// One event the agent sends about the request.
    type Event;

    /// Folds one event into the report.
    fn apply(&mut self, event: &Self::Event);

    /// How the request ended, once its `done` arrived.
    fn outcome(&self) -> Option<Outcome>;
}

impl Fold for CheckReport {
    type Request = CheckRequest;
    type Event = CheckEvent;

    fn apply(&mut self, event: &CheckEvent) {
        CheckReport::apply(self, event);
    }

    fn outcome(&self) -> Option<Outcome> {
        self.outcome
    }
}

impl Fold for ScanReport {
    type Request = ScanRequest;
    type Event = ScanEvent;

    fn apply(&mut self, event: &ScanEvent) {
        ScanReport::apply(self, event);
    }

    fn outcome(&self) -> Option<Outcome> {
        self.outcome
    }
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
    pub report: Rc<R>,
    /// Its `vantage_error`, if it refused or stopped its part.
    pub error: Option<RequestError>,
    /// The id its part is stored under in the agent's history, once stored.
    pub stored: Option<String>,
}

impl<R: Default> Part<R> {
    fn new(name: &str) -> Self {
        Part { name: name.to_owned(), report: Rc::default(), error: None, stored: None }
    }
}

/// One check or scan the user asked for, and everything known about it so far.
#[derive(Debug, Clone, PartialEq)]
pub struct Request<R: Fold> {
    /// The id it was sent with; every event about it carries this back.
    pub id: RequestId,
    /// What was asked, shown until the agent echoes what it understood.
    pub request: R::Request,
    /// The fold of its events so far. Behind an `Rc`, so that copying the page's state at every
    /// step copies only the report that changed, however much the other requests hold.
    pub report: Rc<R>,
    /// The agent's refusal (`invalid_target`, `too_many_scans` …), if it refused.
    pub error: Option<RequestError>,
    /// Set when the socket dropped while it ran: no more events can come for it.
    pub interrupted: bool,
    /// Set once the user pressed Cancel, until the agent's `done` arrives.
    pub cancel_requested: bool,
    /// The vantage points it was sent to run from; `None` for this agent alone.
    pub from: Option<Vec<String>>,
    /// With `from`: each vantage point's part, in the order they were named (or first heard of).
    pub vantages: Vec<Part<R>>,
    /// With `from`: the comparison across vantage points, which ends the request.
    pub cross: Option<CrossVerdict>,
    /// The id its result is stored under in the agent's history (`/#/r/ID`), once the agent
    /// said so; with `from`, each part has its own.
    pub stored: Option<String>,
}

impl<R: Fold> Request<R> {
    /// A request just sent, with nothing heard back yet.
    pub fn new(id: RequestId, request: R::Request, from: Option<Vec<String>>) -> Self {
        Request {
            id,
            request,
            report: Rc::default(),
            error: None,
            interrupted: false,
            cancel_requested: false,
            vantages: parts_for(from.as_deref()),
            from,
            cross: None,
            stored: None,
        }
    }

    /// Where the request stands.
    pub fn phase(&self) -> Phase {
        let outcome = match self.from {
            Some(_) => self.overall_outcome(),
            None => self.report.outcome(),
        };
        Phase::of(outcome, self.error.is_some(), self.interrupted)
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
            None => self.report.outcome().is_some(),
        };
        ended || self.error.is_some()
    }

    /// One vantage point's part as a request of its own (same id and request), for the card's
    /// per-vantage sections.
    pub fn at(&self, part: &Part<R>) -> Self {
        Request {
            id: self.id,
            request: self.request.clone(),
            report: Rc::clone(&part.report),
            error: part.error.clone(),
            interrupted: self.interrupted,
            cancel_requested: self.cancel_requested,
            from: None,
            vantages: Vec::new(),
            cross: None,
            stored: part.stored.clone(),
        }
    }

    /// Folds one event into its report, or with a vantage point's name into that part's
    /// (added if the event is the first heard of it: with `["all"]` the names arrive so).
    pub(super) fn apply(&mut self, vantage: Option<&str>, event: &R::Event) {
        let report = match vantage {
            Some(name) => &mut self.part_mut(name).report,
            None => &mut self.report,
        };
        Rc::make_mut(report).apply(event);
    }

    /// Keeps the id its result is stored under, or with a vantage point's name that part's.
    /// Arrives after `done`: taken whatever the phase.
    pub(super) fn stored(&mut self, vantage: Option<&str>, result: String) {
        match vantage {
            Some(name) => self.part_mut(name).stored = Some(result),
            None => self.stored = Some(result),
        }
    }

    /// A finished request as the agent stored it (`/#/r/ID`): its report, nothing running.
    pub fn of_stored(request: R::Request, report: Rc<R>, stored: String) -> Self {
        let mut shown = Request::new(RequestId(0), request, None);
        shown.report = report;
        shown.stored = Some(stored);
        shown
    }

    /// The stored id a link to it names: its own, or with `from` the first stored part's.
    pub fn link_id(&self) -> Option<&str> {
        self.stored
            .as_deref()
            .or_else(|| self.vantages.iter().find_map(|part| part.stored.as_deref()))
    }

    /// Keeps a vantage point's refusal of its part.
    pub(super) fn vantage_refused(&mut self, vantage: &str, error: RequestError) {
        self.part_mut(vantage).error = Some(error);
    }

    /// The part named `name`, added (empty) if it is not there yet.
    fn part_mut(&mut self, name: &str) -> &mut Part<R> {
        let index = match self.vantages.iter().position(|part| part.name == name) {
            Some(index) => index,
            None => {
                self.vantages.push(Part::new(name));
                self.vantages.len() - 1
            }
        };
        &mut self.vantages[index]
    }

    /// How a request with `from` ended as a whole, once the hub sent its comparison: cancelled
    /// or stopped if any part was, completed otherwise; `None` while parts still run.
    fn overall_outcome(&self) -> Option<Outcome> {
        self.cross.as_ref()?;
        let outcomes: Vec<Option<Outcome>> =
            self.vantages.iter().map(|part| part.report.outcome()).collect();
        Some(if outcomes.contains(&Some(Outcome::Cancelled)) {
            Outcome::Cancelled
        } else if outcomes.contains(&Some(Outcome::ShuttingDown)) {
            Outcome::ShuttingDown
        } else {
            Outcome::Completed
        })
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
