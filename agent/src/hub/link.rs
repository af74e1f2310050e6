//! The hub's side of a joined agent's socket (its link): requests go out under hub-side ids,
//! the agent's answers are routed back to whoever asked, and silence or a close marks the agent
//! offline, which ends every request still waiting on it. Each client of the hub may hold only
//! its share of the link's requests at once ([`super::HubLimits::requests_per_client`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::ws::Message;
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};
use whyrefused_shared::{AgentMessage, ClientMessage, ErrorCode, RequestId, ScanStep, Step};

use super::registry::{Conflict, MAX_VERSION_LEN};
use super::{PING_TIMEOUT, Registration};
use crate::app::AppState;
use crate::wire::{Outbox, close};

/// One client of the hub (one socket), as the links count its requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientId(u64);

impl ClientId {
    /// The hub itself, for what it asks of a joined agent on its own behalf (the forward
    /// watches around a check): it holds its own share of each link, as a client does.
    pub const HUB: ClientId = ClientId(0);

    /// A client id no other client of this process has (never [`ClientId::HUB`]).
    pub fn next() -> ClientId {
        static LAST: AtomicU64 = AtomicU64::new(0);
        ClientId(LAST.fetch_add(1, Ordering::Relaxed) + 1)
    }
}

/// A handle on one link, for starting requests on it.
#[derive(Clone)]
pub struct LinkHandle {
    /// The requests in flight on the link.
    routes: Arc<Mutex<Routes>>,
    /// The link's socket, through its writer task.
    outbox: Outbox,
    /// The most requests one client may have in flight on the link.
    quota: usize,
}

#[derive(Default)]
struct Routes {
    /// The last hub-side id given out.
    last_id: u64,
    /// Where each request's answers go, and whose request it is.
    waiting: HashMap<RequestId, Route>,
    /// Set when the link ended: no more requests are taken.
    closed: bool,
}

/// Where one request's answers go.
struct Route {
    /// The request's answers.
    sender: mpsc::UnboundedSender<AgentMessage>,
    /// Who asked, for the quota.
    client: ClientId,
}

/// Why a request was not sent on a link.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    /// The link closed: the agent is offline.
    #[error("the agent went offline")]
    Offline,
    /// The client already has its share of the link's requests in flight.
    #[error(
        "this client already runs {quota} requests at this vantage point, its share of the \
         agent's request slots (the hub's --max-requests-per-agent-per-client): wait for one to \
         finish"
    )]
    Quota {
        /// The share.
        quota: usize,
    },
}

/// A request running at a joined agent. Its answers arrive on `answers`, which ends (`None`)
/// without a `done` if the agent goes offline. Dropping it before its `done` cancels it there.
pub struct RemoteRequest {
    /// The hub-side id the agent knows it by.
    pub id: RequestId,
    /// The agent's answers about it.
    pub answers: mpsc::UnboundedReceiver<AgentMessage>,
    link: LinkHandle,
}

impl RemoteRequest {
    /// Asks the agent to stop the request; its `done` (outcome `cancelled`) follows.
    pub fn cancel(&self) {
        let _ = self.link.outbox.message(&ClientMessage::Cancel { id: self.id });
    }

    /// Sends the agent a further message about the request (a forward watch's finish).
    pub fn send(&self, message: &ClientMessage) -> Result<(), StartError> {
        self.link.outbox.message(message).map_err(|_| StartError::Offline)
    }
}

impl Drop for RemoteRequest {
    fn drop(&mut self) {
        if self.link.lock().waiting.remove(&self.id).is_some() {
            self.cancel();
        }
    }
}

impl LinkHandle {
    /// A handle sending on `outbox`, letting each client have `quota` requests in flight.
    pub(crate) fn new(outbox: Outbox, quota: usize) -> LinkHandle {
        LinkHandle { routes: Arc::default(), outbox, quota }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Routes> {
        self.routes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends `client`'s request `make` builds around a fresh hub-side id; refused if the link
    /// is gone or the client already has its share of the link in flight.
    pub fn start(
        &self,
        client: ClientId,
        make: impl FnOnce(RequestId) -> ClientMessage,
    ) -> Result<RemoteRequest, StartError> {
        let (sender, answers) = mpsc::unbounded_channel();
        let id = {
            let mut routes = self.lock();
            if routes.closed {
                return Err(StartError::Offline);
            }
            let held = routes.waiting.values().filter(|route| route.client == client).count();
            if held >= self.quota {
                return Err(StartError::Quota { quota: self.quota });
            }
            routes.last_id += 1;
            let id = RequestId(routes.last_id);
            routes.waiting.insert(id, Route { sender, client });
            id
        };
        // Made before the send, so a failed send still removes (and cancels) the route.
        let request = RemoteRequest { id, answers, link: self.clone() };
        match self.outbox.message(&make(id)) {
            Ok(()) => Ok(request),
            Err(_) => Err(StartError::Offline),
        }
    }

    /// Hands one of the agent's messages to the request it is about. A `done`, an error that
    /// no `done` follows, or a forward watch's last answer, ends the request's route.
    pub(super) fn route(&self, message: AgentMessage) {
        let (id, last) = match &message {
            AgentMessage::Event { id, event, .. } => (*id, matches!(event.step, Step::Done { .. })),
            AgentMessage::Scan { id, event, .. } => {
                (*id, matches!(event.step, ScanStep::Done { .. }))
            }
            AgentMessage::Error { id: Some(id), code, .. } => {
                (*id, *code != ErrorCode::ShuttingDown)
            }
            // A watch that is not watching is over; one that is awaits its finish's answer.
            AgentMessage::ForwardWatching { id, watching } => (*id, !watching),
            AgentMessage::ForwardWatched { id, .. } => (*id, true),
            other => return debug!(?other, "a joined agent sent a message about no request"),
        };
        let mut routes = self.lock();
        let Some(route) = routes.waiting.get(&id) else { return };
        let _ = route.sender.send(message);
        if last {
            routes.waiting.remove(&id);
        }
    }

    /// Ends the link: waiting requests see their answers end, new ones are refused.
    fn close(&self) {
        let mut routes = self.lock();
        routes.closed = true;
        routes.waiting.clear();
    }
}

/// Serves a registered agent's link until it closes, falls silent for [`PING_TIMEOUT`], a newer
/// link replaces it, or the hub shuts down; then marks the agent offline.
pub(crate) async fn serve(
    state: AppState,
    registration: Registration,
    peer: SocketAddr,
    mut stream: impl Stream<Item = Result<Message, axum::Error>> + Unpin,
    outbox: Outbox,
) {
    let name = registration.name.clone();
    let version = registration.version.clone();
    let link = LinkHandle::new(outbox.clone(), state.hub.limits().requests_per_client);
    let ticket = match state.hub.register(registration, link.clone()) {
        Ok(ticket) => ticket,
        Err(conflict) => {
            let message = conflict.to_string();
            warn!(%peer, vantage = %name, %message, "refused a registration");
            let code = match conflict {
                Conflict::NameTaken { .. } => ErrorCode::NameTaken,
                Conflict::Full(_) => ErrorCode::RegistrationRefused,
            };
            let _ = outbox.message(&AgentMessage::Error { id: None, code, message });
            return outbox.close(close::POLICY, close::REGISTRATION_REFUSED);
        }
    };
    let _ = outbox.message(&AgentMessage::Registered { name: name.clone() });
    info!(%peer, vantage = %name, "an agent joined");
    warn_of_another_version(&state, &name, &version);
    let why = loop {
        tokio::select! {
            () = state.shutdown.cancelled() => break "the hub is shutting down",
            () = ticket.stop.cancelled() => break "a newer link under the same name replaced it",
            frame = tokio::time::timeout(PING_TIMEOUT, stream.next()) => match frame {
                Err(_) => break "it fell silent (no ping within the ping timeout)",
                Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => break "its link closed",
                Ok(Some(Ok(Message::Text(text)))) => {
                    state.hub.seen(&ticket);
                    match serde_json::from_str::<AgentMessage>(text.as_str()) {
                        Ok(message) => link.route(message),
                        Err(error) => warn!(vantage = %name, error = ?error.to_string(), "a joined agent sent an unreadable message"),
                    }
                }
                Ok(Some(Ok(_))) => state.hub.seen(&ticket),
            },
        }
    };
    state.hub.offline(&ticket);
    link.close();
    outbox.close(close::AWAY, close::LINK_ENDED);
    warn!(%peer, vantage = %name, reason = why, "an agent went offline");
}

/// Logs a joined agent whose whyrefused version is not the hub's: its requests still run (a
/// different protocol version is refused at its hello), but it may see or say things
/// differently. The agents list says the same (`version_warning`).
fn warn_of_another_version(state: &AppState, name: &str, version: &str) {
    if version != state.agent.version {
        let version: String = version.chars().take(MAX_VERSION_LEN).collect();
        warn!(
            vantage = %name,
            agent_version = ?version,
            hub_version = %state.agent.version,
            "a joined agent runs another whyrefused version than this hub: install the same \
             version on both"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use whyrefused_shared::{CheckEvent, CheckRequest, Outcome, Timestamp};

    fn check(id: RequestId) -> ClientMessage {
        ClientMessage::Check {
            id,
            request: CheckRequest::new("127.0.0.1:9"),
            from: None,
            origin: None,
        }
    }

    fn event(id: RequestId, step: Step) -> AgentMessage {
        let at = Timestamp("2026-11-25T10:00:00.000000Z".into());
        AgentMessage::Event { id, vantage: None, event: CheckEvent { at, step } }
    }

    fn sent(outgoing: &mut crate::wire::Inbox) -> Vec<String> {
        std::iter::from_fn(|| outgoing.try_next())
            .map(|frame| match frame {
                crate::wire::Frame::Text(json) => json,
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[tokio::test]
    async fn answers_are_routed_by_hub_id_until_their_done() {
        let (outbox, mut outgoing) = crate::wire::outbox(1 << 20);
        let link = LinkHandle::new(outbox, 8);
        let client = ClientId::next();
        let mut first = link.start(client, check).unwrap();
        let mut second = link.start(client, check).unwrap();
        assert_ne!(first.id, second.id, "each request gets its own hub-side id");
        assert_eq!(sent(&mut outgoing).len(), 2);

        link.route(event(second.id, Step::RoundStarted { round: 1, of: 1 }));
        link.route(event(first.id, Step::Done { outcome: Outcome::Completed, elapsed_us: 1 }));
        link.route(event(first.id, Step::RoundStarted { round: 9, of: 9 }));
        assert!(matches!(first.answers.recv().await, Some(AgentMessage::Event { .. })));
        assert!(first.answers.recv().await.is_none(), "nothing after its done");
        assert!(matches!(second.answers.try_recv(), Ok(AgentMessage::Event { .. })));

        drop(first);
        assert!(sent(&mut outgoing).is_empty(), "a finished request is not cancelled");
        let second_id = second.id;
        drop(second);
        assert_eq!(sent(&mut outgoing), [format!(r#"{{"type":"cancel","id":{}}}"#, second_id.0)]);
    }

    #[tokio::test]
    async fn a_closed_link_ends_waiting_requests_and_takes_no_more() {
        let (outbox, _outgoing) = crate::wire::outbox(1 << 20);
        let link = LinkHandle::new(outbox, 8);
        let mut waiting = link.start(ClientId::next(), check).unwrap();
        let refused = AgentMessage::Error {
            id: Some(waiting.id),
            code: ErrorCode::ShuttingDown,
            message: "bye".into(),
        };
        link.route(refused);
        assert!(matches!(waiting.answers.recv().await, Some(AgentMessage::Error { .. })));
        link.close();
        assert!(waiting.answers.recv().await.is_none(), "ends without a done: offline");
        assert_eq!(link.start(ClientId::next(), check).err(), Some(StartError::Offline));
    }

    #[tokio::test]
    async fn one_client_holds_only_its_share_of_a_link_and_gets_it_back_as_requests_end() {
        let (outbox, mut outgoing) = crate::wire::outbox(1 << 20);
        let link = LinkHandle::new(outbox, 2);
        let (greedy, other) = (ClientId::next(), ClientId::next());
        let first = link.start(greedy, check).unwrap();
        let second = link.start(greedy, check).unwrap();
        let refused = link.start(greedy, check).err().expect("a third is over the share");
        assert_eq!(refused, StartError::Quota { quota: 2 });
        assert!(refused.to_string().contains("--max-requests-per-agent-per-client"), "{refused}");
        assert_eq!(sent(&mut outgoing).len(), 2, "the refused request never reaches the agent");
        let _others = link.start(other, check).expect("another client has its own share");

        link.route(event(first.id, Step::Done { outcome: Outcome::Completed, elapsed_us: 1 }));
        let _third = link.start(greedy, check).expect("a finished request frees its slot");
        drop(second);
        let _fourth = link.start(greedy, check).expect("a dropped (cancelled) one too");
    }
}
