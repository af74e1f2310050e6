//! One WebSocket session: the hello exchange, then requests (checks and scans) running side by
//! side on one socket.
//!
//! A writer task owns the socket's sending half and drains the session's outbox; the session
//! reads frames, answers bad ones with an error message (the socket stays open), and runs each
//! check as its own task. Closing the socket cancels everything the session started; shutting the
//! agent down tells every running request before the socket closes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket, close_code};
use futures::{SinkExt, Stream, StreamExt};
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use whyrefused_shared::{
    AgentMessage, Cause, CheckEvent, CheckRequest, ClientMessage, ErrorCode, MAX_MESSAGE_BYTES,
    Outcome, PROTOCOL_VERSION, RequestId, ScanEvent, ScanRequest, ScanStep, StateCounts, Step,
};

use super::AppState;
use crate::check::{self, CheckPlan};
use crate::clock;
use crate::scan::{self, ScanPlan, limits};

/// How many requests one socket may run at once.
pub const MAX_REQUESTS_PER_SOCKET: usize = 32;

/// How long running requests get to report a shutdown before the socket closes anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// What the writer task sends.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// A protocol message, as a JSON text frame.
    Message(AgentMessage),
    /// A client message, on a joined agent's link where the hub is the client.
    Client(ClientMessage),
    /// A ping frame, to keep a link alive and prove it is.
    Ping,
    /// A close frame; the writer stops after it.
    Close(u16, &'static str),
}

/// The sending side of a session's socket, through its writer task.
pub(crate) type Outbox = mpsc::UnboundedSender<Outgoing>;

/// Runs a session on an upgraded socket until the client leaves or the agent shuts down. A
/// socket on which an agent registers becomes that agent's link (see [`crate::vantage::link`]).
pub async fn run(socket: WebSocket, state: AppState, peer: SocketAddr) {
    info!(%peer, "session opened");
    let (sink, mut stream) = socket.split();
    let (outbox, inbox) = mpsc::unbounded_channel();
    let writer = tokio::spawn(write_frames(sink, inbox));
    let mut session = Session::new(state, outbox, peer);
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
        crate::vantage::link::serve(state, registration, peer, stream, outbox).await;
        let _ = writer.await;
        return;
    }
    session.wind_down(end).await;
    drop(session);
    let _ = writer.await;
    info!(%peer, ?end, "session closed");
}

/// Runs a session over a joined agent's link to its hub: the hub is the client, already trusted
/// (this agent dialled it and authenticated), so no hello is exchanged. Pings go out every
/// [`crate::vantage::PING_INTERVAL`]; a hub silent for [`crate::vantage::PING_TIMEOUT`] ends the
/// session. Returns why it ended.
pub(crate) async fn run_link(
    stream: impl Stream<Item = Result<Message, axum::Error>> + Unpin,
    sink: impl futures::Sink<Message, Error = axum::Error> + Unpin + Send + 'static,
    state: AppState,
    hub: SocketAddr,
) -> &'static str {
    let mut stream = stream;
    let (outbox, inbox) = mpsc::unbounded_channel();
    let writer = tokio::spawn(write_frames(sink, inbox));
    let mut session = Session::new(state, outbox, hub);
    session.greeted = true;
    session.keepalive = true;
    session.token_name = Some("hub".into());
    let end = session.read(&mut stream).await;
    session.wind_down(end).await;
    drop(session);
    let _ = writer.await;
    match end {
        End::ShuttingDown => "this agent is shutting down",
        End::Silent => "the hub fell silent (no answer to pings)",
        _ => "the hub closed the link",
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
    /// The client's hello had no valid token.
    Unauthorized,
    /// The client sent nothing for the idle timeout while nothing ran.
    Idle,
    /// An agent registered: the socket becomes its link to this hub.
    Registered,
    /// A link's peer sent nothing, not even a pong, for the ping timeout.
    Silent,
    /// A `register` was refused.
    RegistrationRefused,
}

/// What to do after handling one frame.
enum Flow {
    Continue,
    Stop(End),
}

struct Session {
    /// The agent-wide state: identity and the shutdown signal.
    state: AppState,
    /// Everything sent to the client goes through here, to the writer task.
    outbox: mpsc::UnboundedSender<Outgoing>,
    /// The client's address, for the log.
    peer: SocketAddr,
    /// Whether the client has said hello; requests before it are refused.
    greeted: bool,
    /// The name of the token the client authenticated with, when the agent requires one.
    token_name: Option<String>,
    /// The running requests, each with the token that cancels it.
    running: HashMap<RequestId, CancellationToken>,
    /// The request tasks; dropping the set aborts them all.
    tasks: JoinSet<RequestId>,
    /// Whether this is a joined agent's link to its hub: pings go out, silence ends it.
    keepalive: bool,
    /// A joining agent's registration, once accepted.
    registration: Option<crate::vantage::Registration>,
}

impl Session {
    fn new(state: AppState, outbox: mpsc::UnboundedSender<Outgoing>, peer: SocketAddr) -> Self {
        Session {
            state,
            outbox,
            peer,
            greeted: false,
            token_name: None,
            running: HashMap::new(),
            tasks: JoinSet::new(),
            keepalive: false,
            registration: None,
        }
    }

    fn send(&self, message: AgentMessage) {
        // A send fails only when the writer is gone, and then the read loop ends on its own.
        let _ = self.outbox.send(Outgoing::Message(message));
    }

    fn send_error(&self, id: Option<RequestId>, code: ErrorCode, message: impl Into<String>) {
        let message = message.into();
        debug!(peer = %self.peer, ?id, ?code, %message, "refused a message");
        self.send(AgentMessage::Error { id, code, message });
    }

    async fn read(
        &mut self,
        stream: &mut (impl Stream<Item = Result<Message, axum::Error>> + Unpin),
    ) -> End {
        let idle_timeout = self.state.limits.idle_timeout;
        let idle = tokio::time::sleep(idle_timeout);
        tokio::pin!(idle);
        let mut ping = tokio::time::interval(crate::vantage::PING_INTERVAL);
        let mut heard = tokio::time::Instant::now();
        loop {
            tokio::select! {
                () = self.state.shutdown.cancelled() => return End::ShuttingDown,
                () = &mut idle, if self.running.is_empty() && !self.keepalive => return End::Idle,
                _ = ping.tick(), if self.keepalive => {
                    if heard.elapsed() > crate::vantage::PING_TIMEOUT {
                        return End::Silent;
                    }
                    let _ = self.outbox.send(Outgoing::Ping);
                }
                Some(finished) = self.tasks.join_next(), if !self.tasks.is_empty() => {
                    if let Ok(id) = finished {
                        self.running.remove(&id);
                    }
                }
                frame = stream.next() => {
                    heard = tokio::time::Instant::now();
                    idle.as_mut().reset(tokio::time::Instant::now() + idle_timeout);
                    let flow = match frame {
                        Some(Ok(Message::Text(text))) => self.on_text(text.as_str()),
                        Some(Ok(Message::Binary(_))) => {
                            self.send_error(None, ErrorCode::MalformedMessage,
                                "binary frames are not understood: send JSON text frames");
                            Flow::Continue
                        }
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => Flow::Continue,
                        Some(Ok(Message::Close(_))) | None => Flow::Stop(End::ClientGone),
                        Some(Err(error)) => {
                            warn!(peer = %self.peer, %error, "socket error");
                            Flow::Stop(End::ClientGone)
                        }
                    };
                    if let Flow::Stop(end) = flow {
                        return end;
                    }
                }
            }
        }
    }

    fn on_text(&mut self, text: &str) -> Flow {
        match decode(text) {
            Ok(ClientMessage::Hello { protocol, client, token }) => {
                self.on_hello(protocol, &client, token.as_deref())
            }
            Ok(ClientMessage::Check { id, request, from: None }) => {
                self.on_check(id, &request);
                Flow::Continue
            }
            Ok(ClientMessage::Scan { id, request, from: None }) => {
                self.on_scan(id, &request);
                Flow::Continue
            }
            Ok(ClientMessage::Check { id, request, from: Some(from) }) => {
                self.on_fanout(id, crate::vantage::fanout::Work::Check(request), &from);
                Flow::Continue
            }
            Ok(ClientMessage::Scan { id, request, from: Some(from) }) => {
                self.on_fanout(id, crate::vantage::fanout::Work::Scan(request), &from);
                Flow::Continue
            }
            Ok(ClientMessage::Agents { id }) => {
                if self.may_start(id) {
                    let agents = self.state.hub.list(&self.state.agent);
                    self.send(AgentMessage::Agents { id, agents });
                }
                Flow::Continue
            }
            Ok(ClientMessage::Register { name, version, hostname, addresses }) => self
                .on_register(crate::vantage::Registration { name, version, hostname, addresses }),
            Ok(ClientMessage::Cancel { id }) => {
                self.on_cancel(id);
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
            let Some(name) = token.and_then(|token| tokens.verify(token)) else {
                self.state.record_auth_failure(self.peer.ip());
                warn!(peer = %self.peer, client, "authentication failed");
                self.send_error(
                    None,
                    ErrorCode::Unauthorized,
                    "this agent needs a token: send one of its token file's secrets in hello \
                     (the page asks for it; clients read --token-file or WHYREFUSED_TOKEN)",
                );
                return Flow::Stop(End::Unauthorized);
            };
            self.token_name = Some(name.to_string());
        }
        info!(peer = %self.peer, client, token = self.token_name.as_deref(), "client said hello");
        self.greeted = true;
        Flow::Continue
    }

    /// An agent asks to join this hub as a vantage point: it must have said hello with a token
    /// (so this agent must have a token file) and give a valid, free name.
    fn on_register(&mut self, registration: crate::vantage::Registration) -> Flow {
        let refuse = |session: &mut Self, message: String| {
            warn!(peer = %session.peer, name = %registration.name, %message, "refused a registration");
            session.send_error(None, ErrorCode::RegistrationRefused, message);
            Flow::Stop(End::RegistrationRefused)
        };
        if !self.greeted {
            return refuse(self, "say hello (with a token) before registering".into());
        }
        if self.state.tokens.is_none() {
            return refuse(
                self,
                "this agent is not a hub: start it with --token-file so joining agents \
                 authenticate"
                    .into(),
            );
        }
        if let Err(problem) = crate::vantage::registry::check_name(&registration.name) {
            return refuse(self, problem);
        }
        if let Some(problem) = self.state.hub.conflict(&registration) {
            return refuse(self, problem);
        }
        self.registration = Some(registration);
        Flow::Stop(End::Registered)
    }

    /// A check or scan to run from several vantage points: validated here once, then run by
    /// [`crate::vantage::fanout`] as one request of this socket.
    fn on_fanout(&mut self, id: RequestId, work: crate::vantage::fanout::Work, from: &[String]) {
        if !self.may_start(id) {
            return;
        }
        let vantages = match self.state.hub.choose(from) {
            Ok(vantages) => vantages,
            Err(message) => return self.send_error(Some(id), ErrorCode::UnknownVantage, message),
        };
        let job = match crate::vantage::fanout::Job::new(work, &self.state) {
            Ok(job) => job,
            Err((code, message)) => return self.send_error(Some(id), code, message),
        };
        let cancel = CancellationToken::new();
        self.running.insert(id, cancel.clone());
        let names: Vec<&str> = vantages.iter().map(|v| v.name()).collect();
        info!(peer = %self.peer, %id, vantages = ?names, "request from several vantage points started");
        let fanout = crate::vantage::fanout::Fanout {
            id,
            outbox: self.outbox.clone(),
            cancel,
            shutdown: self.state.shutdown.clone(),
            vantages,
        };
        self.tasks.spawn(fanout.run(job));
    }

    fn on_check(&mut self, id: RequestId, request: &CheckRequest) {
        if !self.may_start(id) {
            return;
        }
        let plan = match CheckPlan::from_request(request, self.state.policy.clone()) {
            Ok(plan) => plan,
            Err(error) => return self.send_error(Some(id), error.code(), error.to_string()),
        };
        info!(peer = %self.peer, %id, target = %plan.target.input, "check started");
        self.spawn(id, Job::Check(plan));
    }

    fn on_scan(&mut self, id: RequestId, request: &ScanRequest) {
        if !self.may_start(id) {
            return;
        }
        let limits = &self.state.limits;
        let policy = self.state.policy.clone();
        let plan = match ScanPlan::from_request(request, Some(limits.max_scan_ports), policy) {
            Ok(plan) => plan,
            Err(error) => return self.send_error(Some(id), error.code(), error.to_string()),
        };
        let Ok(permit) = self.state.scans.clone().try_acquire_owned() else {
            return self.send_error(
                Some(id),
                ErrorCode::TooManyScans,
                format!(
                    "this agent already runs {} scans, its limit: wait for one to finish \
                     (or start the agent with a higher --max-scans)",
                    limits.max_scans
                ),
            );
        };
        let running = limits.max_scans - self.state.scans.available_permits();
        let window = limits::window_for(running);
        info!(peer = %self.peer, %id, target = %plan.input, ports = %plan.spec.text, window, "scan started");
        self.spawn(id, Job::Scan { plan, window, permit: Mutex::new(Some(permit)) });
    }

    /// Whether a new request may start: the client said hello, the id is free, and the socket
    /// has room. Answers with the error when not.
    fn may_start(&self, id: RequestId) -> bool {
        if !self.greeted {
            self.send_error(Some(id), ErrorCode::HelloRequired,
                format!(r#"say hello first: {{"type":"hello","protocol":{PROTOCOL_VERSION},"client":"NAME"}}"#));
            return false;
        }
        if self.running.contains_key(&id) {
            self.send_error(
                Some(id),
                ErrorCode::DuplicateRequestId,
                format!("request {id} is still running: give each request its own id"),
            );
            return false;
        }
        if self.running.len() >= MAX_REQUESTS_PER_SOCKET {
            self.send_error(Some(id), ErrorCode::TooManyRequests,
                format!("{MAX_REQUESTS_PER_SOCKET} requests are already running on this socket: wait for one to finish"));
            return false;
        }
        true
    }

    fn spawn(&mut self, id: RequestId, job: Job) {
        let cancel = CancellationToken::new();
        self.running.insert(id, cancel.clone());
        let request = Request {
            id,
            outbox: self.outbox.clone(),
            cancel,
            shutdown: self.state.shutdown.clone(),
            scan_counts: Mutex::default(),
            cause: Mutex::default(),
            audit: Audit { peer: self.peer, token: self.token_name.clone() },
        };
        self.tasks.spawn(request.run(job));
    }

    fn on_cancel(&mut self, id: RequestId) {
        match self.running.remove(&id) {
            Some(cancel) => cancel.cancel(),
            None => self.send_error(
                Some(id),
                ErrorCode::UnknownRequest,
                format!("no request {id} is running on this socket (it may have finished already)"),
            ),
        }
    }

    /// Ends the session: on shutdown, lets requests report it and closes with "going away"; when
    /// the client is gone, aborts everything at once.
    async fn wind_down(&mut self, end: End) {
        match end {
            End::ClientGone => self.tasks.abort_all(),
            End::ShuttingDown => {
                let all_done = async { while self.tasks.join_next().await.is_some() {} };
                let _ = tokio::time::timeout(SHUTDOWN_GRACE, all_done).await;
                let _ = self
                    .outbox
                    .send(Outgoing::Close(close_code::AWAY, "the agent is shutting down"));
            }
            End::ProtocolMismatch => {
                self.tasks.abort_all();
                let _ = self
                    .outbox
                    .send(Outgoing::Close(close_code::PROTOCOL, "protocol version mismatch"));
            }
            End::Idle => {
                let reason = "idle: nothing was asked for a while (the agent's --idle-timeout-s)";
                let _ = self.outbox.send(Outgoing::Close(close_code::AWAY, reason));
            }
            End::Unauthorized => {
                let _ =
                    self.outbox.send(Outgoing::Close(close_code::POLICY, "a token is required"));
            }
            End::RegistrationRefused => {
                let _ = self
                    .outbox
                    .send(Outgoing::Close(close_code::POLICY, "the registration was refused"));
            }
            End::Silent => {
                self.tasks.abort_all();
                let _ = self.outbox.send(Outgoing::Close(close_code::AWAY, "no answer to pings"));
            }
            End::Registered => {}
        }
    }
}

/// What a request runs.
enum Job {
    /// A connectivity check.
    Check(CheckPlan),
    /// A port scan, holding one of the agent's scan permits while it runs. The permit is given
    /// back just before the scan's `done` goes out, so a client that starts another scan on
    /// seeing it is not refused for a scan that has ended.
    Scan { plan: ScanPlan, window: usize, permit: Mutex<Option<OwnedSemaphorePermit>> },
}

/// One running request and how to reach its client.
struct Request {
    id: RequestId,
    outbox: mpsc::UnboundedSender<Outgoing>,
    /// Cancelled by the client's `cancel`.
    cancel: CancellationToken,
    /// Cancelled when the agent shuts down.
    shutdown: CancellationToken,
    /// A scan's counts so far, for the `done` of a scan stopped early and the audit log.
    scan_counts: Mutex<StateCounts>,
    /// A check's verdict, once it came, for the audit log.
    cause: Mutex<Option<Cause>>,
    /// Who asked, for the audit log.
    audit: Audit,
}

/// Who asked for a request: the audit log's line names them.
struct Audit {
    peer: SocketAddr,
    /// The token's name, on an agent that requires one.
    token: Option<String>,
}

impl Request {
    async fn run(self, job: Job) -> RequestId {
        let start = Instant::now();
        let stopped = {
            let work = async {
                match &job {
                    Job::Check(plan) => check::run(plan, |event| self.send_check(event)).await,
                    Job::Scan { plan, window, permit } => {
                        scan::run(plan, *window, |event| {
                            if matches!(event.step, ScanStep::Done { .. }) {
                                release(permit);
                            }
                            self.send_scan(event)
                        })
                        .await
                    }
                }
            };
            tokio::select! {
                () = work => None,
                () = self.cancel.cancelled() => Some(Outcome::Cancelled),
                () = self.shutdown.cancelled() => Some(Outcome::ShuttingDown),
            }
        };
        let outcome = stopped.unwrap_or(Outcome::Completed);
        self.write_audit(&job, outcome, start.elapsed());
        if let Some(outcome) = stopped {
            info!(id = %self.id, ?outcome, "request stopped");
            if outcome == Outcome::ShuttingDown {
                self.send(AgentMessage::Error {
                    id: Some(self.id),
                    code: ErrorCode::ShuttingDown,
                    message: "the agent is shutting down: this request was stopped".into(),
                });
            }
            self.send_stopped(&job, outcome, clock::micros(start.elapsed()));
        }
        self.id
    }

    /// One line per request in the audit log (target `whyrefused::audit`): who asked what, and
    /// how it ended.
    fn write_audit(&self, job: &Job, outcome: Outcome, elapsed: Duration) {
        let (kind, target, result) = match job {
            Job::Check(plan) => {
                let cause = *self.cause.lock().unwrap_or_else(|e| e.into_inner());
                ("check", plan.target.input.clone(), cause.map_or("-", Cause::as_str).to_string())
            }
            Job::Scan { plan, .. } => {
                let counts = *self.scan_counts.lock().unwrap_or_else(|e| e.into_inner());
                let result = format!("{} open of {}", counts.open, counts.total());
                ("scan", format!("{} ports {}", plan.input, plan.spec.text), result)
            }
        };
        info!(
            target: "whyrefused::audit",
            token = self.audit.token.as_deref().unwrap_or("-"),
            peer = %self.audit.peer,
            id = %self.id,
            kind,
            target,
            vantage = "local",
            outcome = ?outcome,
            result,
            elapsed_ms = clock::millis(elapsed),
            "request"
        );
    }

    /// The `done` of a request that did not run to its end.
    fn send_stopped(&self, job: &Job, outcome: Outcome, elapsed_us: u64) {
        let at = clock::now();
        match job {
            Job::Check(_) => {
                self.send_check(CheckEvent { at, step: Step::Done { outcome, elapsed_us } })
            }
            Job::Scan { permit, .. } => {
                release(permit);
                let counts = *self.scan_counts.lock().unwrap_or_else(|e| e.into_inner());
                self.send_scan(ScanEvent {
                    at,
                    step: ScanStep::Done { outcome, counts, elapsed_us },
                })
            }
        }
    }

    fn send_check(&self, event: CheckEvent) {
        if let Step::Verdict { verdict } = &event.step {
            *self.cause.lock().unwrap_or_else(|e| e.into_inner()) = Some(verdict.cause);
        }
        self.send(AgentMessage::Event { id: self.id, vantage: None, event });
    }

    fn send_scan(&self, event: ScanEvent) {
        if let ScanStep::Progress(progress) = &event.step {
            let mut counts = self.scan_counts.lock().unwrap_or_else(|e| e.into_inner());
            for result in &progress.results {
                counts.add(result.state, 1);
            }
            let refused: u64 = progress.refused.iter().map(|run| u64::from(run.len())).sum();
            counts.add(whyrefused_shared::ConnectState::Refused, refused);
        }
        self.send(AgentMessage::Scan { id: self.id, vantage: None, event });
    }

    fn send(&self, message: AgentMessage) {
        let _ = self.outbox.send(Outgoing::Message(message));
    }
}

/// Gives a scan's permit back (once; later calls do nothing).
fn release(permit: &Mutex<Option<OwnedSemaphorePermit>>) {
    drop(permit.lock().unwrap_or_else(|e| e.into_inner()).take());
}

/// Sends everything from the outbox as frames, until a close or until every sender is gone.
/// Frames queued together are written together and flushed once.
pub(crate) async fn write_frames(
    mut sink: impl futures::Sink<Message, Error = axum::Error> + Unpin,
    mut inbox: mpsc::UnboundedReceiver<Outgoing>,
) {
    while let Some(first) = inbox.recv().await {
        let mut next = Some(first);
        while let Some(outgoing) = next.take() {
            let frame = match outgoing {
                Outgoing::Message(message) => encode(&message),
                Outgoing::Client(message) => {
                    let json =
                        serde_json::to_string(&message).expect("protocol messages serialize");
                    Message::Text(json.into())
                }
                Outgoing::Ping => Message::Ping(Vec::new().into()),
                Outgoing::Close(code, reason) => {
                    let close = CloseFrame { code, reason: reason.into() };
                    let _ = sink.send(Message::Close(Some(close))).await;
                    return;
                }
            };
            if sink.feed(frame).await.is_err() {
                return;
            }
            next = inbox.try_recv().ok();
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
    let _ = sink.close().await;
}

fn encode(message: &AgentMessage) -> Message {
    // The protocol's types always serialize; a failure would be a bug in them.
    let json = serde_json::to_string(message).expect("protocol messages serialize");
    Message::Text(json.into())
}

/// Why a text frame is not a valid client message, and which request it named, if any.
#[derive(Debug, PartialEq, Eq)]
pub struct Rejection {
    pub id: Option<RequestId>,
    pub code: ErrorCode,
    pub message: String,
}

/// Parses a text frame into a client message, telling apart bytes that are not JSON, JSON that
/// is not a known message, and a known message with bad fields.
pub fn decode(text: &str) -> Result<ClientMessage, Rejection> {
    let reject = |id, code, message: String| Rejection { id, code, message };
    if text.len() > MAX_MESSAGE_BYTES {
        return Err(reject(
            None,
            ErrorCode::MessageTooLarge,
            format!("the message is {} bytes; the limit is {MAX_MESSAGE_BYTES}", text.len()),
        ));
    }
    let value: serde_json::Value = serde_json::from_str(text).map_err(|error| {
        reject(None, ErrorCode::MalformedMessage, format!("the message is not valid JSON: {error}"))
    })?;
    let id = value.get("id").and_then(serde_json::Value::as_u64).map(RequestId);
    let types = ClientMessage::TYPES.join(", ");
    match value.get("type").and_then(serde_json::Value::as_str) {
        None => {
            return Err(reject(
                id,
                ErrorCode::UnknownMessageType,
                format!(
                    r#"the message has no "type": it must be an object with "type" one of {types}"#
                ),
            ));
        }
        Some(kind) if !ClientMessage::TYPES.contains(&kind) => {
            return Err(reject(
                id,
                ErrorCode::UnknownMessageType,
                format!("unknown message type {kind:?}: expected one of {types}"),
            ));
        }
        Some(_) => {}
    }
    serde_json::from_value(value).map_err(|error| {
        reject(id, ErrorCode::InvalidMessage, format!("the message's fields are wrong: {error}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejection(text: &str) -> Rejection {
        decode(text).expect_err(text)
    }

    #[test]
    fn valid_messages_decode() {
        let check = decode(r#"{"type":"check","id":4,"request":{"target":"db:5432"}}"#).unwrap();
        assert!(matches!(check, ClientMessage::Check { id: RequestId(4), .. }));
        assert!(matches!(
            decode(r#"{"type":"cancel","id":4}"#).unwrap(),
            ClientMessage::Cancel { .. }
        ));
    }

    #[test]
    fn not_json_is_malformed() {
        let r = rejection("{not json");
        assert_eq!((r.code, r.id), (ErrorCode::MalformedMessage, None));
        assert!(r.message.contains("not valid JSON"));
    }

    #[test]
    fn unknown_or_missing_types_are_named() {
        let r = rejection(r#"{"type":"scan_everything","id":9}"#);
        assert_eq!((r.code, r.id), (ErrorCode::UnknownMessageType, Some(RequestId(9))));
        assert!(
            r.message.contains("\"scan_everything\"")
                && r.message.contains("hello, check, scan, cancel")
        );
        assert_eq!(rejection("[1,2]").code, ErrorCode::UnknownMessageType);
        assert_eq!(rejection(r#"{"id":1}"#).code, ErrorCode::UnknownMessageType);
    }

    #[test]
    fn bad_fields_name_the_request() {
        let r = rejection(r#"{"type":"check","id":5,"request":{"target":7}}"#);
        assert_eq!((r.code, r.id), (ErrorCode::InvalidMessage, Some(RequestId(5))));
        let r = rejection(r#"{"type":"check","id":5}"#);
        assert!(r.message.contains("request"), "{}", r.message);
    }

    #[test]
    fn oversized_messages_are_refused_before_parsing() {
        let big = format!(
            r#"{{"type":"check","id":1,"request":{{"target":"{}"}}}}"#,
            "a".repeat(MAX_MESSAGE_BYTES)
        );
        assert_eq!(rejection(&big).code, ErrorCode::MessageTooLarge);
    }
}
