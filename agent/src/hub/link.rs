//! The hub's side of a joined agent's socket (its link): requests go out under hub-side ids,
//! the agent's answers are routed back to whoever asked, and silence or a close marks the agent
//! offline, which ends every request still waiting on it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::ws::Message;
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};
use whyrefused_shared::{AgentMessage, ClientMessage, ErrorCode, RequestId, ScanStep, Step};

use super::{PING_TIMEOUT, Registration};
use crate::app::AppState;
use crate::wire::{Outbox, close};

/// A handle on one link, for starting requests on it.
#[derive(Clone)]
pub struct LinkHandle {
    /// The requests in flight on the link.
    routes: Arc<Mutex<Routes>>,
    /// The link's socket, through its writer task.
    outbox: Outbox,
}

#[derive(Default)]
struct Routes {
    /// The last hub-side id given out.
    last_id: u64,
    /// Where each request's answers go.
    waiting: HashMap<RequestId, mpsc::UnboundedSender<AgentMessage>>,
    /// Set when the link ended: no more requests are taken.
    closed: bool,
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
}

impl Drop for RemoteRequest {
    fn drop(&mut self) {
        if self.link.lock().waiting.remove(&self.id).is_some() {
            self.cancel();
        }
    }
}

impl LinkHandle {
    /// A handle sending on `outbox`.
    pub(crate) fn new(outbox: Outbox) -> LinkHandle {
        LinkHandle { routes: Arc::default(), outbox }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Routes> {
        self.routes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends the request `make` builds around a fresh hub-side id; `None` if the link is gone.
    pub fn start(&self, make: impl FnOnce(RequestId) -> ClientMessage) -> Option<RemoteRequest> {
        let (sender, answers) = mpsc::unbounded_channel();
        let id = {
            let mut routes = self.lock();
            if routes.closed {
                return None;
            }
            routes.last_id += 1;
            let id = RequestId(routes.last_id);
            routes.waiting.insert(id, sender);
            id
        };
        self.outbox.message(&make(id)).ok()?;
        Some(RemoteRequest { id, answers, link: self.clone() })
    }

    /// Hands one of the agent's messages to the request it is about. A `done`, or an error
    /// that no `done` follows, ends the request's route.
    fn route(&self, message: AgentMessage) {
        let (id, last) = match &message {
            AgentMessage::Event { id, event, .. } => (*id, matches!(event.step, Step::Done { .. })),
            AgentMessage::Scan { id, event, .. } => {
                (*id, matches!(event.step, ScanStep::Done { .. }))
            }
            AgentMessage::Error { id: Some(id), code, .. } => {
                (*id, *code != ErrorCode::ShuttingDown)
            }
            other => return debug!(?other, "a joined agent sent a message about no request"),
        };
        let mut routes = self.lock();
        let Some(sender) = routes.waiting.get(&id) else { return };
        let _ = sender.send(message);
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
    let link = LinkHandle::new(outbox.clone());
    let ticket = state.hub.register(registration, link.clone());
    let _ = outbox.message(&AgentMessage::Registered { name: name.clone() });
    info!(%peer, vantage = %name, "an agent joined");
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

#[cfg(test)]
mod tests {
    use super::*;
    use whyrefused_shared::{CheckEvent, CheckRequest, Outcome, Timestamp};

    fn check(id: RequestId) -> ClientMessage {
        ClientMessage::Check { id, request: CheckRequest::new("127.0.0.1:9"), from: None }
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
        let link = LinkHandle::new(outbox);
        let mut first = link.start(check).unwrap();
        let mut second = link.start(check).unwrap();
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
        let link = LinkHandle::new(outbox);
        let mut waiting = link.start(check).unwrap();
        let refused = AgentMessage::Error {
            id: Some(waiting.id),
            code: ErrorCode::ShuttingDown,
            message: "bye".into(),
        };
        link.route(refused);
        assert!(matches!(waiting.answers.recv().await, Some(AgentMessage::Error { .. })));
        link.close();
        assert!(waiting.answers.recv().await.is_none(), "ends without a done: offline");
        assert!(link.start(check).is_none());
    }
}
