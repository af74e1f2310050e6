//! The page's state: the link to the agent and every check and scan run so far, changed only by
//! [`Action`]s.
//!
//! Checks and scans are one list of [`Card`]s, newest first. Either kind is a [`Request<R>`]
//! ([`request`]) over the shared fold of its events ([`Fold`]: the `CheckReport` or the
//! `ScanReport`, kept behind an `Rc`), with what the page knows beyond the events (an error the
//! agent answered with, a socket that dropped under a running request, a cancel on its way);
//! [`check`] and [`scan`] add what only one kind's card asks.
//!
//! A check or scan sent with `from` runs at several vantage points: each one's tagged events fold
//! into a [`Part`] of its own, and the hub's closing `vantages_done` brings the [`CrossVerdict`].
//! The vantage points to choose from are the hub's last `agents` answer.

mod check;
mod request;
mod scan;

use std::rc::Rc;

pub use check::{AddressRow, Check, RowProgress};
pub use request::{Fold, Part, Phase, Request};
pub use scan::Scan;
use whyrefused_shared::{
    AgentInfo, AgentMessage, CheckRequest, CrossVerdict, ErrorCode, LOCAL_VANTAGE,
    PROTOCOL_VERSION, RequestId, ScanRequest, VantageInfo,
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

/// The `from` a form sends for the vantage points chosen: `None` for the hub alone (the request
/// runs as it always did, its events untagged), the names otherwise.
pub fn from_choice(chosen: &[String]) -> Option<Vec<String>> {
    match chosen {
        [only] if only == LOCAL_VANTAGE => None,
        [] => None,
        names => Some(names.to_vec()),
    }
}

/// A card of the results list: a check or a scan.
#[derive(Debug, Clone, PartialEq)]
pub enum Card {
    /// A check's card.
    Check(Check),
    /// A scan's card.
    Scan(Scan),
}

/// `$body` with `$request` bound to the card's request, whichever kind it is: what does not
/// depend on the kind is written once, on [`Request`].
macro_rules! either {
    ($card:expr, $request:ident => $body:expr) => {
        match $card {
            Card::Check($request) => $body,
            Card::Scan($request) => $body,
        }
    };
}

impl Card {
    /// The request's id: the page numbers checks and scans from one counter, so it orders them.
    pub fn id(&self) -> RequestId {
        either!(self, request => request.id)
    }

    /// Whether events are still expected for it.
    pub fn is_running(&self) -> bool {
        either!(self, request => request.is_running())
    }

    /// Keeps the agent's refusal of the request.
    fn refused(&mut self, error: RequestError) {
        either!(self, request => request.error = Some(error))
    }

    /// Keeps a vantage point's refusal of its part.
    fn vantage_refused(&mut self, vantage: &str, error: RequestError) {
        either!(self, request => request.vantage_refused(vantage, error))
    }

    /// Keeps the hub's comparison across vantage points, which ends the request.
    fn compared(&mut self, verdict: CrossVerdict) {
        either!(self, request => request.cross = Some(verdict))
    }

    /// Marks the request cancelled by the user, until its `done` arrives.
    fn cancel_requested(&mut self) {
        either!(self, request => request.cancel_requested = true)
    }

    /// Keeps the id its result (or a vantage point's part) is stored under.
    fn stored(&mut self, vantage: Option<&str>, result: String) {
        either!(self, request => request.stored(vantage, result))
    }

    /// Marks the request cut off by a dropped socket.
    fn interrupted(&mut self) {
        either!(self, request => request.interrupted = true)
    }
}

/// Everything the page shows.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    /// The link to the agent.
    pub link: LinkStatus,
    /// Every check and scan of this page's life, newest first.
    pub cards: Vec<Card>,
    /// The last problem not tied to one check (an error without id, an unreadable message).
    pub notice: Option<String>,
    /// The vantage points the agent (a hub) last listed: `local` first, then those that joined.
    pub vantages: Vec<VantageInfo>,
}

impl Default for State {
    fn default() -> Self {
        State {
            link: LinkStatus::Connecting,
            cards: Vec::new(),
            notice: None,
            vantages: Vec::new(),
        }
    }
}

impl State {
    /// The check with this id, if the page sent it.
    #[cfg(test)]
    pub fn check(&self, id: RequestId) -> Option<&Check> {
        self.cards.iter().find_map(|card| match card {
            Card::Check(check) if check.id == id => Some(check),
            _ => None,
        })
    }

    /// The scan with this id, if the page sent it.
    #[cfg(test)]
    pub fn scan(&self, id: RequestId) -> Option<&Scan> {
        self.cards.iter().find_map(|card| match card {
            Card::Scan(scan) if scan.id == id => Some(scan),
            _ => None,
        })
    }

    /// The card with this id, if the page sent it.
    fn card_mut(&mut self, id: RequestId) -> Option<&mut Card> {
        self.cards.iter_mut().find(|card| card.id() == id)
    }

    /// The card with this id if events are still expected for it: nothing is taken for a
    /// request that ended, was refused or was cut off.
    fn running_mut(&mut self, id: RequestId) -> Option<&mut Card> {
        self.card_mut(id).filter(|card| card.is_running())
    }

    fn receive(&mut self, message: AgentMessage) {
        match message {
            AgentMessage::Hello { protocol, agent, .. } => self.greeted(protocol, agent),
            AgentMessage::Event { id, vantage, event } => {
                if let Some(Card::Check(check)) = self.running_mut(id) {
                    check.apply(vantage.as_deref(), &event);
                }
            }
            AgentMessage::Scan { id, vantage, event } => {
                if let Some(Card::Scan(scan)) = self.running_mut(id) {
                    scan.apply(vantage.as_deref(), &event);
                }
            }
            AgentMessage::Error { id, code, message } => self.error(id, code, message),
            AgentMessage::VantageError { id, vantage, code, message } => {
                self.vantage_error(id, &vantage, RequestError { code, message })
            }
            AgentMessage::VantagesDone { id, verdict } => self.vantages_done(id, verdict),
            AgentMessage::Agents { agents, .. } => self.vantages = agents,
            AgentMessage::Stored { id, vantage, result } => {
                if let Some(card) = self.card_mut(id) {
                    card.stored(vantage.as_deref(), result);
                }
            }
            // Only a joining agent is sent these (or sends them), never a page.
            AgentMessage::Registered { .. }
            | AgentMessage::ForwardWatching { .. }
            | AgentMessage::ForwardWatched { .. } => {}
        }
    }

    fn vantage_error(&mut self, id: RequestId, vantage: &str, error: RequestError) {
        if let Some(card) = self.running_mut(id) {
            card.vantage_refused(vantage, error);
        }
    }

    fn vantages_done(&mut self, id: RequestId, verdict: CrossVerdict) {
        if let Some(card) = self.running_mut(id) {
            card.compared(verdict);
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

    fn error(&mut self, id: Option<RequestId>, code: ErrorCode, message: String) {
        match id.and_then(|id| self.card_mut(id)) {
            Some(card) if card.is_running() => card.refused(RequestError { code, message }),
            // A cancel that crossed the request's `done` on the wire: nothing to show.
            Some(_) if code == ErrorCode::UnknownRequest => {}
            _ => self.notice = Some(message),
        }
    }

    fn disconnected(&mut self, retry_in_ms: u32, reason: Option<String>) {
        self.link = LinkStatus::Disconnected { retry_in_ms, reason };
        for card in self.cards.iter_mut().filter(|card| card.is_running()) {
            card.interrupted();
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
            // Ids come from one increasing counter: the newest card goes first.
            Action::Submitted { id, request, from } => {
                state.cards.insert(0, Card::Check(Request::new(id, request, from)))
            }
            Action::ScanSubmitted { id, request, from } => {
                state.cards.insert(0, Card::Scan(Request::new(id, request, from)))
            }
            Action::CancelRequested(id) => {
                if let Some(card) = state.running_mut(id) {
                    card.cancel_requested();
                }
            }
        }
        state.into()
    }
}

#[cfg(test)]
mod tests;
