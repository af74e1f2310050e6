//! [`use_agent_link`]: the one WebSocket to the agent, kept open for the page's whole life.
//!
//! The socket runs in a task of its own: it says hello, turns every frame into an
//! [`Action::Received`], and sends what components ask through the [`AgentLink`] handle (given to
//! them by a context provider). When the socket drops it reports [`Action::Disconnected`] with a
//! countdown and opens a new one after a [`Backoff`] pause. Once greeted, it asks the agent for
//! its vantage points (`agents`) at once and every [`AGENTS_EVERY_MS`] after.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use futures::channel::mpsc::{self, UnboundedReceiver, UnboundedSender};
use futures::future::FutureExt;
use futures::stream::{SplitSink, StreamExt};
use futures::{SinkExt, select};
use gloo_net::websocket::futures::WebSocket;
use gloo_net::websocket::{Message, WebSocketError};
use gloo_timers::future::TimeoutFuture;
use whyrefused_shared::{
    AgentMessage, CheckRequest, ClientMessage, ErrorCode, PAGE_CLIENT, PROTOCOL_VERSION, RequestId,
    ScanRequest, WS_PATH,
};
use yew::prelude::*;

use crate::backoff::Backoff;
use crate::state::{Action, State};

/// How often the page asks the agent (a hub) which vantage points it has, while connected.
const AGENTS_EVERY_MS: u32 = 5_000;

/// The ids of the page's `agents` requests: far above any check's or scan's, so they never meet.
/// Each answer replaces the list whatever its id, so one id would do; a fresh one each time keeps
/// an answer that crosses the next request from being refused as a duplicate.
const AGENTS_FIRST_ID: u64 = 1 << 40;

/// The page's handle on the agent: starts and cancels checks and scans, recording them in the [`State`]
/// and sending them over the socket. Cheap to clone; all clones are the same link.
#[derive(Clone)]
pub struct AgentLink(Rc<Inner>);

struct Inner {
    /// Feeds the socket task; messages queued while no socket is open are dropped on reconnect.
    outgoing: UnboundedSender<ClientMessage>,
    /// Tokens the user typed, for an agent that requires one.
    tokens: UnboundedSender<String>,
    /// Records what was sent, so the page shows a check the moment it is asked for.
    dispatch: UseReducerDispatcher<State>,
    /// The id of the next check or scan: unique for the page's life, so late events never mix up
    /// cards, and increasing, so the cards sort newest first by id.
    next_id: Cell<u64>,
    /// The token the socket said hello with (or will), shared with the socket task: the HTTP
    /// API's calls send it too.
    token: Rc<RefCell<Option<String>>>,
}

impl PartialEq for AgentLink {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

impl AgentLink {
    /// Sends a check (from the vantage points named in `from`, or `None` for this agent alone)
    /// and adds its card; returns the id it was sent with.
    pub fn check(&self, request: CheckRequest, from: Option<Vec<String>>) -> RequestId {
        let id = self.next_id();
        let submitted = Action::Submitted { id, request: request.clone(), from: from.clone() };
        self.0.dispatch.dispatch(submitted);
        self.send(ClientMessage::Check { id, request, from, origin: None });
        id
    }

    /// Sends a scan (from the vantage points named in `from`, or `None` for this agent alone)
    /// and adds its card; returns the id it was sent with.
    pub fn scan(&self, request: ScanRequest, from: Option<Vec<String>>) -> RequestId {
        let id = self.next_id();
        let submitted = Action::ScanSubmitted { id, request: request.clone(), from: from.clone() };
        self.0.dispatch.dispatch(submitted);
        self.send(ClientMessage::Scan { id, request, from, origin: None });
        id
    }

    /// Asks the agent to stop a running check or scan; its `done` (outcome cancelled) follows.
    pub fn cancel(&self, id: RequestId) {
        self.0.dispatch.dispatch(Action::CancelRequested(id));
        self.send(ClientMessage::Cancel { id });
    }

    /// The agent's token, when the page has one: for `Authorization: Bearer` on API calls.
    pub fn token(&self) -> Option<String> {
        self.0.token.borrow().clone()
    }

    /// Gives the agent's token (typed by the user); the link says hello with it.
    pub fn authenticate(&self, token: String) {
        let _ = self.0.tokens.unbounded_send(token);
    }

    fn next_id(&self) -> RequestId {
        let id = RequestId(self.0.next_id.get());
        self.0.next_id.set(id.0 + 1);
        id
    }

    fn send(&self, message: ClientMessage) {
        // Fails only once the page is gone, when nobody is left to tell.
        let _ = self.0.outgoing.unbounded_send(message);
    }
}

/// Opens the agent's WebSocket once, for as long as the calling component lives, and returns the
/// handle to give to components. Its progress arrives in the reducer as [`Action`]s.
#[hook]
pub fn use_agent_link(dispatch: UseReducerDispatcher<State>) -> AgentLink {
    let channel = {
        let dispatch = dispatch.clone();
        use_memo((), move |_| {
            let (outgoing, receiver) = mpsc::unbounded();
            let (tokens, token_receiver) = mpsc::unbounded();
            let token = Rc::new(RefCell::new(None));
            let inner = Inner { outgoing, tokens, dispatch, next_id: Cell::new(1), token };
            let link = AgentLink(Rc::new(inner));
            (link, RefCell::new(Some((receiver, token_receiver))))
        })
    };
    {
        let channel = channel.clone();
        use_effect_with((), move |_| {
            if let Some((receiver, tokens)) = channel.1.borrow_mut().take() {
                let token = Rc::clone(&channel.0.0.token);
                *token.borrow_mut() = token_from_fragment();
                let link = Link { outgoing: receiver, tokens, token };
                wasm_bindgen_futures::spawn_local(keep_connected(socket_url(), link, dispatch));
            }
        });
    }
    channel.0.clone()
}

/// What the socket task reads from the page: requests, and the token when one is typed.
struct Link {
    outgoing: UnboundedReceiver<ClientMessage>,
    tokens: UnboundedReceiver<String>,
    /// The token to say hello with, once known (shared with the [`AgentLink`]).
    token: Rc<RefCell<Option<String>>>,
}

/// A token given in the page's URL fragment (`#token=SECRET`: a fragment never reaches a server
/// or its logs, unlike a query string), removed from the address bar once read (the rest of the
/// fragment, a route, stays).
fn token_from_fragment() -> Option<String> {
    let window = web_sys::window()?;
    let location = window.location();
    let hash = location.hash().ok()?;
    let token = token_in_fragment(&hash)?;
    let rest = fragment_without_token(&hash);
    let clean = format!("{}{}{rest}", location.pathname().ok()?, location.search().ok()?);
    if let Ok(history) = window.history() {
        let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&clean));
    }
    Some(token)
}

/// The `token=` part of a URL fragment such as `#token=abc` or `#x=1&token=abc`.
fn token_in_fragment(fragment: &str) -> Option<String> {
    let fragment = fragment.strip_prefix('#').unwrap_or(fragment);
    fragment
        .split('&')
        .find_map(|part| part.strip_prefix("token="))
        .filter(|token| !token.is_empty())
        .map(str::to_string)
}

/// The fragment with its `token=` part taken out (`#/r/ID&token=x` → `#/r/ID`), or nothing.
fn fragment_without_token(fragment: &str) -> String {
    let fragment = fragment.strip_prefix('#').unwrap_or(fragment);
    let kept: Vec<&str> = fragment
        .split('&')
        .filter(|part| !part.starts_with("token=") && !part.is_empty())
        .collect();
    if kept.is_empty() { String::new() } else { format!("#{}", kept.join("&")) }
}

/// The WebSocket URL on the page's own origin: `ws://` for an `http://` page, `wss://` for
/// `https://`.
fn socket_url() -> String {
    let location = web_sys::window().map(|window| window.location());
    let protocol = location.as_ref().and_then(|l| l.protocol().ok()).unwrap_or_default();
    let host = location.as_ref().and_then(|l| l.host().ok()).unwrap_or_default();
    let scheme = if protocol == "https:" { "wss:" } else { "ws:" };
    format!("{scheme}//{host}{WS_PATH}")
}

/// Why one socket's life ended.
enum SessionEnd {
    /// The page dropped its link: stop for good.
    LinkDropped,
    /// The socket closed or failed.
    SocketClosed {
        /// Whether the agent said hello on it (then the backoff starts over).
        greeted: bool,
        /// What the browser said, when it said something useful.
        reason: Option<String>,
    },
    /// The agent refused the token (or wanted one): connect again once the user gives one.
    TokenRefused,
}

/// Connects, and reconnects after every drop, until the page drops its link.
async fn keep_connected(url: String, mut link: Link, dispatch: UseReducerDispatcher<State>) {
    let mut backoff = Backoff::default();
    loop {
        dispatch.dispatch(Action::Connecting);
        match session(&url, &mut link, &dispatch).await {
            SessionEnd::LinkDropped => return,
            SessionEnd::TokenRefused => match link.tokens.next().await {
                Some(token) => *link.token.borrow_mut() = Some(token),
                None => return,
            },
            SessionEnd::SocketClosed { greeted, reason } => {
                if greeted {
                    backoff.reset();
                }
                count_down(backoff.next_delay(), reason, &dispatch).await;
            }
        }
    }
}

/// Reports the time left before the next try, once a second, while waiting it out.
async fn count_down(delay_ms: u32, reason: Option<String>, dispatch: &UseReducerDispatcher<State>) {
    let mut remaining = delay_ms;
    while remaining > 0 {
        dispatch.dispatch(Action::Disconnected { retry_in_ms: remaining, reason: reason.clone() });
        let step = match remaining % 1000 {
            0 => 1000,
            part => part,
        };
        TimeoutFuture::new(step).await;
        remaining -= step;
    }
}

/// One socket's life: the agent's hello, ours (with the token when the agent wants one), then
/// frames in and messages out until either side ends.
async fn session(url: &str, link: &mut Link, dispatch: &UseReducerDispatcher<State>) -> SessionEnd {
    let socket = match WebSocket::open(url) {
        Ok(socket) => socket,
        Err(error) => {
            return SessionEnd::SocketClosed { greeted: false, reason: Some(error.to_string()) };
        }
    };
    let (mut sink, stream) = socket.split();
    let mut incoming = stream.fuse();
    // The agent's hello, held back while the page waits for a token.
    let mut waiting: Option<AgentMessage> = None;
    let mut greeted = false;
    let mut refused = false;
    // The next `agents` request: its id, and the pause before it (none until greeted).
    let mut agents_id = AGENTS_FIRST_ID;
    let mut agents_due = futures::future::Fuse::terminated();

    // Whatever was asked while no socket was open belongs to checks already marked interrupted.
    while let Ok(_stale) = link.outgoing.try_recv() {}

    loop {
        let step = select! {
            frame = incoming.next() => match frame {
                Some(Ok(Message::Text(text))) => match serde_json::from_str::<AgentMessage>(&text) {
                    Ok(hello @ AgentMessage::Hello { auth_required: true, .. })
                        if link.token.borrow().is_none() =>
                    {
                        dispatch.dispatch(Action::TokenNeeded { problem: None });
                        waiting = Some(hello);
                        Ok(())
                    }
                    Ok(hello @ AgentMessage::Hello { .. }) => {
                        greeted = true;
                        agents_due = TimeoutFuture::new(0).fuse();
                        let token = link.token.borrow().clone();
                        say_hello(&mut sink, token, hello, dispatch).await
                    }
                    Ok(AgentMessage::Error { code: ErrorCode::Unauthorized, .. }) => {
                        *link.token.borrow_mut() = None;
                        refused = true;
                        let problem = "The agent refused that token: check it and try again.";
                        dispatch.dispatch(Action::TokenNeeded { problem: Some(problem.into()) });
                        Ok(())
                    }
                    Ok(message) => {
                        dispatch.dispatch(Action::Received(message));
                        Ok(())
                    }
                    Err(error) => {
                        dispatch.dispatch(Action::Unreadable(error.to_string()));
                        Ok(())
                    }
                },
                // The agent only sends text; a binary frame is not ours to read.
                Some(Ok(Message::Bytes(_))) => Ok(()),
                Some(Err(error)) => Err(close_reason(error)),
                None => Err(None),
            },
            token = link.tokens.next() => match (token, waiting.take()) {
                (Some(token), Some(hello)) => {
                    *link.token.borrow_mut() = Some(token.clone());
                    greeted = true;
                    agents_due = TimeoutFuture::new(0).fuse();
                    say_hello(&mut sink, Some(token), hello, dispatch).await
                }
                (Some(token), None) => {
                    *link.token.borrow_mut() = Some(token);
                    Ok(())
                }
                (None, _) => return SessionEnd::LinkDropped,
            },
            message = link.outgoing.next() => match message {
                Some(message) => send(&mut sink, &message).await.map_err(close_reason),
                None => return SessionEnd::LinkDropped,
            },
            () = agents_due => {
                let id = RequestId(agents_id);
                agents_id += 1;
                agents_due = TimeoutFuture::new(AGENTS_EVERY_MS).fuse();
                send(&mut sink, &ClientMessage::Agents { id }).await.map_err(close_reason)
            },
        };
        if let Err(reason) = step {
            return match refused {
                true => SessionEnd::TokenRefused,
                false => SessionEnd::SocketClosed { greeted, reason },
            };
        }
    }
}

/// Answers the agent's hello with ours, then lets the page know it is connected.
async fn say_hello(
    sink: &mut SplitSink<WebSocket, Message>,
    token: Option<String>,
    agent_hello: AgentMessage,
    dispatch: &UseReducerDispatcher<State>,
) -> Result<(), Option<String>> {
    let hello =
        ClientMessage::Hello { protocol: PROTOCOL_VERSION, client: PAGE_CLIENT.into(), token };
    send(sink, &hello).await.map_err(close_reason)?;
    dispatch.dispatch(Action::Received(agent_hello));
    Ok(())
}

async fn send(
    sink: &mut SplitSink<WebSocket, Message>,
    message: &ClientMessage,
) -> Result<(), WebSocketError> {
    let json = serde_json::to_string(message).expect("a ClientMessage always serializes to JSON");
    sink.send(Message::Text(json)).await
}

/// The part of a socket error worth showing: the agent's close reason, if it gave one. (Browsers
/// hide why a connection failed, so a failed open says nothing useful.)
fn close_reason(error: WebSocketError) -> Option<String> {
    match error {
        WebSocketError::ConnectionClose(event) if !event.reason.is_empty() => Some(event.reason),
        WebSocketError::MessageSendError(error) => Some(error.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_read_from_the_fragment_only() {
        assert_eq!(token_in_fragment("#token=abc123"), Some("abc123".into()));
        assert_eq!(token_in_fragment("#view=scan&token=abc123"), Some("abc123".into()));
        assert_eq!(token_in_fragment("#token="), None);
        assert_eq!(token_in_fragment(""), None);
        assert_eq!(token_in_fragment("#tokens=abc"), None);
    }

    #[test]
    fn reading_the_token_keeps_the_rest_of_the_fragment() {
        assert_eq!(fragment_without_token("#token=abc"), "");
        assert_eq!(fragment_without_token("#/history&token=abc"), "#/history");
        assert_eq!(fragment_without_token("#token=abc&/r/x1"), "#/r/x1");
    }
}
