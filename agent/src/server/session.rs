//! One WebSocket session: the hello exchange, then requests (checks and scans, here or from
//! several vantage points) running side by side on one socket.
//!
//! A writer task drains the session's bounded outbox ([`crate::wire::outbox`]); the session reads
//! frames, answers bad ones with an error message (the socket stays open), and hands each request
//! to the hub layer ([`crate::hub::local`] for here, [`crate::hub::fanout`] for several places).
//! Closing the socket cancels everything the session started; shutting the agent down tells every
//! running request before the socket closes.
//!
//! A session plays one of two [`Role`]s: an ordinary client's, or a joined agent's link to its hub
//! (the hub is then the client, already trusted: this agent dialled it and authenticated).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::extract::ws::{Message, WebSocket};
use futures::{Stream, StreamExt};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};
use whyrefused_shared::{
    AgentMessage, ClientMessage, ErrorCode, LOCAL_VANTAGE, Origin, PAGE_CLIENT, PROTOCOL_VERSION,
    RequestId, ScanStep, Step,
};

use super::request_ids::{Claim, IdBusy, RequestIds};
use crate::app::AppState;
use crate::clock;
use crate::exporter::Via;
use crate::history::Asker;
use crate::hub::fanout::{Fanout, Job, Work};
use crate::hub::forwarding::OpenWatches;
use crate::hub::link::ClientId;
use crate::hub::local::{self, Plan, Said, Stops};
use crate::hub::recorded::Folded;
use crate::hub::registry::{self, Conflict};
use crate::hub::{PING_INTERVAL, PING_TIMEOUT, Registration, audit};
use crate::tokens::{Holder, TokenRole};
use crate::wire::{self, Outbox, close};

/// How many requests one socket may run at once.
pub const MAX_REQUESTS_PER_SOCKET: usize = 32;

/// How long running requests get to report a shutdown before the socket closes anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// Who is at the other end of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A client that connected to this agent: it says hello first (with a token when the agent
    /// has tokens), and may instead register as a joining agent.
    Client,
    /// The hub this agent joined, over the socket this agent dialled: no hello, pings both ways,
    /// and silence for the ping timeout ends it.
    JoinedToHub,
}

/// Runs a client's session on an upgraded socket until the client leaves or the agent shuts
/// down. A socket on which an agent registers becomes that agent's link
/// (see [`crate::hub::link`]).
pub async fn run(socket: WebSocket, state: AppState, peer: SocketAddr) {
    info!(%peer, "session opened");
    let (sink, mut stream) = socket.split();
    let (outbox, inbox) = wire::outbox(state.limits.outbox_bytes);
    let writer = tokio::spawn(wire::write_frames(sink, inbox));
    let mut session = Session::new(state, outbox, peer, Role::Client);
    session.send(AgentMessage::Hello {
        protocol: PROTOCOL_VERSION,
        agent: session.state.agent.clone(),
        auth_required: session.state.tokens.is_some(),
    });
    let end = session.read(&mut stream).await;
    if end == End::Registered
        && let Some(registration) = session.registration.take()
    {
        session.tasks.abort_all();
        let (state, outbox) = (session.state.clone(), session.outbox.clone());
        drop(session);
        crate::hub::link::serve(state, registration, peer, stream, outbox).await;
        let _ = writer.await;
        return;
    }
    session.wind_down(end).await;
    drop(session);
    wire::linger(writer, &mut stream, answer_wait(end)).await;
    info!(%peer, ?end, "session closed");
}

/// Runs a session over a joined agent's link to its hub ([`Role::JoinedToHub`]) until the link
/// ends; returns why it ended.
pub async fn serve_link(
    mut stream: impl Stream<Item = Result<Message, axum::Error>> + Unpin,
    sink: impl futures::Sink<Message, Error = axum::Error> + Unpin + Send + 'static,
    state: AppState,
    hub: SocketAddr,
) -> &'static str {
    let (outbox, inbox) = wire::outbox(state.limits.outbox_bytes);
    let writer = tokio::spawn(wire::write_frames(sink, inbox));
    let mut session = Session::new(state, outbox, hub, Role::JoinedToHub);
    let end = session.read(&mut stream).await;
    session.wind_down(end).await;
    drop(session);
    wire::linger(writer, &mut stream, answer_wait(end)).await;
    match end {
        End::ShuttingDown => "this agent is shutting down",
        End::Silent => "the hub fell silent (no answer to pings)",
        End::TooSlow => "the hub did not read this agent's messages",
        _ => "the hub closed the link",
    }
}

/// How long a socket waits for the peer's answer to its close frame: not at all when the agent
/// shuts down (every socket closes at once), else as long as the close frame itself may take.
fn answer_wait(end: End) -> Duration {
    match end {
        End::ShuttingDown => Duration::ZERO,
        _ => wire::outbox::CLOSE_DEADLINE,
    }
}

/// Why a session's read loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The client closed the socket or the connection broke.
    ClientGone,
    /// The agent is shutting down.
    ShuttingDown,
    /// The client speaks another protocol version.
    ProtocolMismatch,
    /// The client's hello had no valid token, or it sent requests without saying hello on an
    /// agent with tokens, or said nothing in time.
    Unauthorized,
    /// The client sent nothing for the idle timeout while nothing ran.
    Idle,
    /// An agent registered: the socket becomes its link to this hub.
    Registered,
    /// A link's peer sent nothing, not even a pong, for the ping timeout.
    Silent,
    /// A `register` was refused.
    RegistrationRefused,
    /// The client left more than the outbox's limit unread.
    TooSlow,
}

/// What to do after handling one frame.
enum Flow {
    Continue,
    Stop(End),
}

struct Session {
    /// The agent-wide state.
    state: AppState,
    /// Everything sent to the client goes through here, to the writer task.
    outbox: Outbox,
    /// The client's address, for the log.
    peer: SocketAddr,
    /// An ordinary client, or the hub this agent joined.
    role: Role,
    /// Whether the client has said hello; requests before it are refused.
    greeted: bool,
    /// Whether a message before hello was already answered with an error (on an agent with
    /// tokens, the next one closes the socket).
    warned_before_hello: bool,
    /// The token the client authenticated with, when the agent requires one: its name for the
    /// audit log, its role for what it may do.
    holder: Option<Holder>,
    /// The ids of the running requests, each with the token that cancels it.
    running: RequestIds,
    /// The request tasks; dropping the set aborts them all.
    tasks: JoinSet<RequestId>,
    /// A joining agent's registration, once accepted.
    registration: Option<Registration>,
    /// This client as the hub's links count it: it may hold only its share of each one.
    hub_client: ClientId,
    /// Whether the client is the page this agent serves, which is told the stored id of each
    /// request ([`AgentMessage::Stored`]).
    is_page: bool,
    /// On the link to the hub this agent joined: the forward watches the hub opened.
    forward_watches: OpenWatches,
}

impl Session {
    fn new(state: AppState, outbox: Outbox, peer: SocketAddr, role: Role) -> Self {
        let joined = role == Role::JoinedToHub;
        Session {
            state,
            outbox,
            peer,
            role,
            greeted: joined,
            warned_before_hello: false,
            holder: joined.then(|| Holder { name: "hub".into(), role: TokenRole::Client }),
            running: RequestIds::default(),
            tasks: JoinSet::new(),
            registration: None,
            hub_client: ClientId::next(),
            is_page: false,
            forward_watches: OpenWatches::default(),
        }
    }

    fn send(&self, message: AgentMessage) {
        // A send fails only when the writer is gone or the outbox overflowed, and then the read
        // loop ends on its own.
        let _ = self.outbox.message(&message);
    }

    fn send_error(&self, id: Option<RequestId>, code: ErrorCode, message: impl Into<String>) {
        let message = message.into();
        debug!(peer = %self.peer, ?id, ?code, ?message, "refused a message");
        self.send(AgentMessage::Error { id, code, message });
    }

    /// Whether this client may see which processes own this host's listeners: one on this host
    /// may (it can list them itself), a remote one only with the agent's `--show-processes`.
    fn show_processes(&self) -> bool {
        self.peer.ip().is_loopback() || self.state.show_processes
    }

    /// Whether the client must still say hello within the hello timeout.
    fn awaiting_hello(&self) -> bool {
        !self.greeted && self.state.tokens.is_some()
    }

    async fn read(
        &mut self,
        stream: &mut (impl Stream<Item = Result<Message, axum::Error>> + Unpin),
    ) -> End {
        let keepalive = self.role == Role::JoinedToHub;
        let idle_timeout = self.state.limits.idle_timeout;
        let idle = tokio::time::sleep(idle_timeout);
        tokio::pin!(idle);
        let hello_deadline = tokio::time::sleep(self.state.limits.hello_timeout);
        tokio::pin!(hello_deadline);
        let mut ping = tokio::time::interval(PING_INTERVAL);
        let mut heard = tokio::time::Instant::now();
        let outbox = self.outbox.clone();
        loop {
            tokio::select! {
                () = self.state.shutdown.cancelled() => return End::ShuttingDown,
                () = outbox.overflowed() => {
                    warn!(peer = %self.peer, "the client left too much unread (--max-unread-mib): closing");
                    return End::TooSlow;
                }
                () = &mut hello_deadline, if self.awaiting_hello() => {
                    warn!(peer = %self.peer, "no hello within the deadline");
                    return End::Unauthorized;
                }
                () = &mut idle, if self.running.is_empty() && !keepalive => return End::Idle,
                _ = ping.tick(), if keepalive => {
                    if heard.elapsed() > PING_TIMEOUT {
                        return End::Silent;
                    }
                    let _ = self.outbox.send(wire::Frame::Ping);
                }
                // A request frees its id itself, just before its done; this only reaps the task.
                Some(_) = self.tasks.join_next(), if !self.tasks.is_empty() => {}
                frame = stream.next() => {
                    heard = tokio::time::Instant::now();
                    let flow = self.on_frame(frame);
                    // Only a greeted client's frames keep a socket from idling out.
                    if self.greeted {
                        idle.as_mut().reset(tokio::time::Instant::now() + idle_timeout);
                    }
                    if let Flow::Stop(end) = flow {
                        return end;
                    }
                }
            }
        }
    }

    fn on_frame(&mut self, frame: Option<Result<Message, axum::Error>>) -> Flow {
        match frame {
            Some(Ok(Message::Text(text))) => self.on_text(text.as_str()),
            Some(Ok(Message::Binary(_))) => self.refuse_before_hello().unwrap_or_else(|| {
                self.send_error(
                    None,
                    ErrorCode::MalformedMessage,
                    "binary frames are not understood: send JSON text frames",
                );
                Flow::Continue
            }),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => Flow::Continue,
            Some(Ok(Message::Close(_))) | None => Flow::Stop(End::ClientGone),
            Some(Err(error)) => {
                warn!(peer = %self.peer, %error, "socket error");
                Flow::Stop(End::ClientGone)
            }
        }
    }

    /// On an agent with tokens, a client that has not said hello gets one error reply; its next
    /// message before hello closes the socket. `None` when the message may be answered.
    fn refuse_before_hello(&mut self) -> Option<Flow> {
        if !self.awaiting_hello() {
            return None;
        }
        if self.warned_before_hello {
            warn!(peer = %self.peer, "a second message before hello: closing");
            return Some(Flow::Stop(End::Unauthorized));
        }
        self.warned_before_hello = true;
        None
    }

    fn on_text(&mut self, text: &str) -> Flow {
        let message = wire::decode(text);
        let is_hello = matches!(message, Ok(ClientMessage::Hello { .. }));
        if !is_hello && let Some(flow) = self.refuse_before_hello() {
            return flow;
        }
        match message {
            Ok(ClientMessage::Hello { protocol, client, token }) => {
                self.on_hello(protocol, &client, token.as_deref())
            }
            Ok(ClientMessage::Check { id, request, from: None, origin }) => {
                let plan = Plan::check(&request, &self.state, self.show_processes());
                self.on_request(id, plan, origin);
                Flow::Continue
            }
            Ok(ClientMessage::Scan { id, request, from: None, origin }) => {
                let plan = Plan::scan(&request, &self.state, self.show_processes());
                self.on_request(id, plan, origin);
                Flow::Continue
            }
            Ok(ClientMessage::Check { id, request, from: Some(from), .. }) => {
                self.on_fanout(id, Work::Check(request), &from);
                Flow::Continue
            }
            Ok(ClientMessage::Scan { id, request, from: Some(from), .. }) => {
                self.on_fanout(id, Work::Scan(request), &from);
                Flow::Continue
            }
            Ok(ClientMessage::Agents { id }) => {
                if self.claim(id).is_some() {
                    let agents = self.state.hub.list(&self.state.agent);
                    self.send(AgentMessage::Agents { id, agents });
                }
                Flow::Continue
            }
            Ok(ClientMessage::Register {
                name,
                version,
                hostname,
                addresses,
                agent_id,
                forwards,
            }) => {
                let registration =
                    Registration { name, version, hostname, addresses, agent_id, forwards };
                self.on_register(registration)
            }
            Ok(ClientMessage::Cancel { id }) => {
                self.on_cancel(id);
                Flow::Continue
            }
            Ok(ClientMessage::ForwardWatch { id }) => {
                self.on_forward_watch(id);
                Flow::Continue
            }
            Ok(ClientMessage::ForwardWatchFinish { id, failed }) => {
                self.on_forward_watch_finish(id, failed);
                Flow::Continue
            }
            Err(rejection) => {
                self.send_error(rejection.id, rejection.code, rejection.message);
                Flow::Continue
            }
        }
    }

    fn on_hello(&mut self, protocol: u32, client: &str, token: Option<&str>) -> Flow {
        if protocol != PROTOCOL_VERSION {
            self.send_error(
                None,
                ErrorCode::ProtocolMismatch,
                format!(
                    "this agent speaks protocol {PROTOCOL_VERSION}, the client {protocol}: \
                     use a page or CLI of the same whyrefused version"
                ),
            );
            return Flow::Stop(End::ProtocolMismatch);
        }
        if let Some(tokens) = &self.state.tokens {
            if let Some(wait) = self.state.auth_blocked_for(self.peer.ip()) {
                warn!(peer = %self.peer, "refused a hello: too many failed authentications");
                let message = format!(
                    "too many failed authentications from {}: try again in {} s",
                    self.peer.ip(),
                    wait.as_secs().max(1)
                );
                self.send_error(None, ErrorCode::Unauthorized, message);
                return Flow::Stop(End::Unauthorized);
            }
            let Some(holder) = token.and_then(|token| tokens.verify(token)) else {
                self.state.record_auth_failure(self.peer.ip());
                let given = token.is_some();
                warn!(peer = %self.peer, client = ?client, token_given = given, "authentication failed");
                self.send_error(None, ErrorCode::Unauthorized, refused_token_message(given));
                return Flow::Stop(End::Unauthorized);
            };
            self.holder = Some(holder);
        }
        let token = self.holder.as_ref().map(|holder| holder.name.as_str());
        info!(peer = %self.peer, client = ?client, token, "client said hello");
        self.greeted = true;
        self.is_page = self.role == Role::Client && client == PAGE_CLIENT;
        Flow::Continue
    }

    /// An agent asks to join this hub as a vantage point: it must have said hello with a token
    /// (so this agent must have a token file) and give a valid, free name.
    fn on_register(&mut self, registration: Registration) -> Flow {
        let refuse_with = |session: &mut Self, code: ErrorCode, message: String| {
            warn!(peer = %session.peer, name = ?registration.name, ?message, "refused a registration");
            session.send_error(None, code, message);
            Flow::Stop(End::RegistrationRefused)
        };
        let refuse = |session: &mut Self, message| {
            refuse_with(session, ErrorCode::RegistrationRefused, message)
        };
        if !self.greeted {
            return refuse(self, "say hello (with a token) before registering".into());
        }
        if self.role == Role::JoinedToHub || self.state.tokens.is_none() {
            return refuse(
                self,
                "this agent is not a hub: start it with --token-file so joining agents \
                 authenticate"
                    .into(),
            );
        }
        if let Err(problem) = registry::check_name(&registration.name) {
            return refuse(self, problem);
        }
        if let Err(problem) = may_register(self.holder.as_ref(), &registration.name) {
            return refuse(self, problem);
        }
        match self.state.hub.conflict(&registration) {
            Some(taken @ Conflict::NameTaken { .. }) => {
                return refuse_with(self, ErrorCode::NameTaken, taken.to_string());
            }
            Some(Conflict::Full(problem)) => return refuse(self, problem),
            None => {}
        }
        self.registration = Some(registration);
        Flow::Stop(End::Registered)
    }

    /// A check or scan to run from several vantage points: validated here once, then run by
    /// [`crate::hub::fanout`] as one request of this socket.
    fn on_fanout(&mut self, id: RequestId, work: Work, from: &[String]) {
        let Some(claim) = self.claim(id) else { return };
        let vantages = match self.state.hub.choose(from) {
            Ok(vantages) => vantages,
            Err(message) => return self.send_error(Some(id), ErrorCode::UnknownVantage, message),
        };
        let job = match Job::new(work, &self.state, self.show_processes()) {
            Ok(job) => job,
            Err(refused) => return self.send_error(Some(id), refused.code, refused.message),
        };
        let names: Vec<&str> = vantages.iter().map(|v| v.name()).collect();
        let origin = self.asked_here();
        let request_id = &origin.request_id;
        info!(peer = %self.peer, %id, request_id, vantages = ?names, "request from several vantage points started");
        let fanout = Fanout {
            id,
            origin,
            outbox: self.outbox.clone(),
            cancel: claim.cancel.clone(),
            shutdown: self.state.shutdown.clone(),
            vantages,
            scans: self.state.scans.clone(),
            client: self.hub_client,
            metrics: Some(self.state.exporter.metrics.clone()),
            history: self.state.history.history().cloned(),
            tell_stored: self.is_page,
            routers: self.state.hub.routers(),
        };
        self.tasks.spawn(async move {
            let id = fanout.run(job).await;
            drop(claim);
            id
        });
    }

    /// A check or scan to run here, validated into `plan` (or refused).
    fn on_request(
        &mut self,
        id: RequestId,
        plan: Result<Plan, local::Refused>,
        origin: Option<Origin>,
    ) {
        let Some(claim) = self.claim(id) else { return };
        let plan = match plan {
            Ok(plan) => plan,
            Err(refused) => return self.send_error(Some(id), refused.code, refused.message),
        };
        let audit = self.audit(origin);
        let (kind, target) = plan.describe();
        let request_id = &audit.origin.request_id;
        info!(peer = %self.peer, %id, request_id, kind, target = ?target, "request started");
        let request = Request {
            id,
            role: self.role,
            outbox: self.outbox.clone(),
            stops: Stops { cancel: claim.cancel.clone(), shutdown: self.state.shutdown.clone() },
            claim,
            audit,
            tell_stored: self.is_page,
            state: self.state.clone(),
        };
        self.tasks.spawn(request.run(plan));
    }

    /// Who asked for a request on this socket, under a new request id.
    fn asked_here(&self) -> Origin {
        audit::asked_here(self.holder.as_ref().map(|h| h.name.as_str()), self.peer)
    }

    /// Whom the audit line of a request names: on the link to a hub, the hub's client the
    /// request came from (as the hub sent it), under the hub's request id; else this socket's
    /// client. Only a hub's word is taken: a client cannot speak for someone else.
    fn audit(&self, origin: Option<Origin>) -> Audit {
        match (self.role, origin.filter(audit::is_well_formed)) {
            (Role::JoinedToHub, Some(origin)) => Audit { origin, via: Some(self.peer) },
            (Role::JoinedToHub, None) => Audit { origin: self.asked_here(), via: Some(self.peer) },
            (Role::Client, _) => Audit { origin: self.asked_here(), via: None },
        }
    }

    /// Takes `id` for a new request if it may start: the client said hello with a token that may
    /// run requests, the id is free, and the socket has room. Answers with the error when not.
    fn claim(&self, id: RequestId) -> Option<Claim> {
        if !self.greeted {
            self.send_error(Some(id), ErrorCode::HelloRequired,
                format!(r#"say hello first: {{"type":"hello","protocol":{PROTOCOL_VERSION},"client":"NAME"}}"#));
            return None;
        }
        if let Some(holder) = self.holder.as_ref().filter(|h| h.role == TokenRole::Agent) {
            self.send_error(
                Some(id),
                ErrorCode::Unauthorized,
                format!(
                    "the token '{}' is an agent token (name:secret:agent): it may only register as \
                 a vantage point, never run requests. Use a client token (name:secret)",
                    holder.name
                ),
            );
            return None;
        }
        if self.running.len() >= MAX_REQUESTS_PER_SOCKET && !self.running.holds(id) {
            self.send_error(Some(id), ErrorCode::TooManyRequests,
                format!("{MAX_REQUESTS_PER_SOCKET} requests are already running on this socket: wait for one to finish"));
            return None;
        }
        let message = match self.running.claim(id) {
            Ok(claim) => return Some(claim),
            Err(IdBusy::Running) => {
                format!("request {id} is still running: give each request its own id")
            }
            Err(IdBusy::Cancelling) => format!(
                "request {id} was cancelled and has not sent its done yet: reuse its id after that \
                 done, or give each request its own id"
            ),
        };
        self.send_error(Some(id), ErrorCode::DuplicateRequestId, message);
        None
    }

    /// The hub this agent joined asks it to read its forwarding rules' counters around a check
    /// from several places ([`crate::hub::forwarding`]). Who may: only that hub, over the link this agent
    /// dialled; the rules' text goes with the answer only when the hub may read this host's
    /// details ([`Session::show_processes`]), as for the checks it forwards here.
    fn on_forward_watch(&mut self, id: RequestId) {
        if !self.is_link_to_hub(id, "forward_watch") {
            return;
        }
        let (outbox, shutdown) = (self.outbox.clone(), self.state.shutdown.clone());
        match self.forward_watches.open(id, outbox, self.show_processes(), shutdown) {
            Ok(watch) => {
                self.tasks.spawn(watch);
            }
            Err(refused) => self.send_error(Some(id), refused.code, refused.message),
        }
    }

    /// The hub's check is over: the watch `id` names what stopped SYNs to `failed`.
    fn on_forward_watch_finish(&mut self, id: RequestId, failed: Vec<std::net::SocketAddr>) {
        if !self.is_link_to_hub(id, "forward_watch_finish") {
            return;
        }
        if let Err(refused) = self.forward_watches.finish(id, failed) {
            self.send_error(Some(id), refused.code, refused.message);
        }
    }

    /// Whether this session is the link to the hub this agent joined; answers `kind` with an
    /// error when not (an ordinary client may not ask for the hub's forward watches).
    fn is_link_to_hub(&self, id: RequestId, kind: &str) -> bool {
        if self.role == Role::JoinedToHub {
            return true;
        }
        self.send_error(
            Some(id),
            ErrorCode::InvalidMessage,
            format!("{kind} is taken only from the hub this agent joined, over its link"),
        );
        false
    }

    fn on_cancel(&mut self, id: RequestId) {
        if self.forward_watches.cancel(id) {
            return;
        }
        // The id stays taken until the request's done: see [`RequestIds`].
        if !self.running.cancel(id) {
            self.send_error(
                Some(id),
                ErrorCode::UnknownRequest,
                format!("no request {id} is running on this socket (it may have finished already)"),
            );
        }
    }

    /// Ends the session: on shutdown, lets requests report it and closes with "going away"; when
    /// the client is gone, aborts everything at once.
    async fn wind_down(&mut self, end: End) {
        let reason = match end {
            End::ClientGone | End::TooSlow => {
                self.tasks.abort_all();
                return;
            }
            End::Registered => return,
            End::ShuttingDown => {
                let all_done = async { while self.tasks.join_next().await.is_some() {} };
                let _ = tokio::time::timeout(SHUTDOWN_GRACE, all_done).await;
                (close::AWAY, close::SHUTTING_DOWN)
            }
            End::ProtocolMismatch => (close::PROTOCOL, close::PROTOCOL_MISMATCH),
            End::Idle => (close::AWAY, close::IDLE),
            End::Unauthorized => (close::POLICY, close::TOKEN_REQUIRED),
            End::RegistrationRefused => (close::POLICY, close::REGISTRATION_REFUSED),
            End::Silent => (close::AWAY, close::NO_PONG),
        };
        self.tasks.abort_all();
        self.outbox.close(reason.0, reason.1);
    }
}

/// Whether the holder of a token may register as the vantage point `name`: only an agent token,
/// and only under its own name (so a token names the one place it may speak for). Says why not.
fn may_register(holder: Option<&Holder>, name: &str) -> Result<(), String> {
    match holder {
        Some(Holder { role: TokenRole::Agent, name: own }) if own == name => Ok(()),
        Some(Holder { role: TokenRole::Agent, name: own }) => Err(format!(
            "the agent token '{own}' registers only as '{own}', not '{name}': drop the joining \
             agent's --name, or give it the token named '{name}'"
        )),
        _ => Err("a client token cannot register: give the joining agent an agent token (a line \
             NAME:SECRET:agent in this hub's token file, first in the agent's own)"
            .into()),
    }
}

/// Why a hello was refused: no token at all, or one this agent does not know.
fn refused_token_message(given: bool) -> &'static str {
    match given {
        false => {
            "this agent needs a token: send one of its token file's secrets in hello (the page \
             asks for it; clients read --token-file or WHYREFUSED_TOKEN)"
        }
        true => {
            "the token is not one of this agent's: check the secret (the part after the name \
             in the agent's token file), or ask for one that is in its token file"
        }
    }
}

/// One request run here, and how to reach its client.
struct Request {
    id: RequestId,
    /// Whether it came from this socket's client or through the hub this agent joined.
    role: Role,
    /// Its hold on its id, released just before its `done` goes out.
    claim: Claim,
    outbox: Outbox,
    /// The client's cancel and the agent's shutdown.
    stops: Stops,
    /// Who asked, for the audit log.
    audit: Audit,
    /// Whether the client is told the stored result's id once the request is stored.
    tell_stored: bool,
    /// The agent's scan slots, among the rest.
    state: AppState,
}

/// Whether a request says its last word, its `done`.
fn is_done(said: &Said) -> bool {
    match said {
        Said::Check(event) => matches!(event.step, Step::Done { .. }),
        Said::Scan(event) => matches!(event.step, ScanStep::Done { .. }),
        Said::Error(..) => false,
    }
}

/// Who asked for a request: the audit log's line names them.
struct Audit {
    /// The token's name (on an agent that requires one), the client's address, the request id.
    origin: Origin,
    /// The hub the request came through, for a joined agent.
    via: Option<SocketAddr>,
}

impl Request {
    async fn run(self, plan: Plan) -> RequestId {
        let start = Instant::now();
        let id = self.id;
        let mut folded = Folded::of(&plan);
        let ran = local::run(&plan, &self.state.scans, &self.stops, |said| {
            match &said {
                Said::Check(event) => folded.check(event),
                Said::Scan(event) => folded.scan(event),
                Said::Error(..) => {}
            }
            if is_done(&said) {
                self.claim.release();
            }
            let _ = self.outbox.message(&match said {
                Said::Check(event) => AgentMessage::Event { id, vantage: None, event },
                Said::Scan(event) => AgentMessage::Scan { id, vantage: None, event },
                Said::Error(code, message) => AgentMessage::Error { id: Some(id), code, message },
            });
        })
        .await;
        match ran {
            Ok(ran) => {
                self.count(&plan, &ran, start.elapsed());
                self.write_audit(&plan, &ran, start.elapsed());
                let stored = folded.store(self.state.history.history(), &plan, self.asker());
                if let Some(result) = stored.filter(|_| self.tell_stored) {
                    let _ =
                        self.outbox.message(&AgentMessage::Stored { id, vantage: None, result });
                }
            }
            Err(refused) => {
                let error = AgentMessage::Error {
                    id: Some(id),
                    code: refused.code,
                    message: refused.message,
                };
                let _ = self.outbox.message(&error);
            }
        }
        id
    }

    /// Who asked, as the history stores it: here, by the token's name (a hub's client's, for a
    /// request through the hub this agent joined).
    fn asker(&self) -> Asker {
        let source = match self.role {
            Role::Client => "websocket",
            Role::JoinedToHub => "hub",
        };
        let token = self.audit.origin.token.clone();
        Asker { vantage: LOCAL_VANTAGE.to_string(), token, source, watch: None }
    }

    /// Counts the request for `/metrics`: a check by its cause, a scan by how it ended.
    fn count(&self, plan: &Plan, ran: &local::Ran, took: Duration) {
        let metrics = &self.state.exporter.metrics;
        match plan {
            Plan::Check(_) => metrics.check_done(&ran.result, LOCAL_VANTAGE, Via::Websocket, took),
            Plan::Scan(_) => metrics.scan_done(ran.outcome.as_str(), LOCAL_VANTAGE, took),
        }
    }

    /// One line per request in the audit log (target `whyrefused::audit`): who asked what, and
    /// how it ended. The target is the client's text: it is written escaped.
    fn write_audit(&self, plan: &Plan, ran: &local::Ran, elapsed: Duration) {
        let (kind, target) = plan.describe();
        info!(
            target: "whyrefused::audit",
            token = self.audit.origin.token.as_deref().unwrap_or("-"),
            peer = %self.audit.origin.peer,
            request_id = %self.audit.origin.request_id,
            via = %self.audit.via.map_or_else(|| "-".to_string(), |hub| hub.to_string()),
            id = %self.id,
            kind,
            target = ?target,
            vantage = "local",
            outcome = ?ran.outcome,
            result = ran.result,
            elapsed_ms = clock::millis(elapsed),
            "request"
        );
    }
}
