//! A WebSocket client for the agent, as the page or the CLI would speak to it.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async_with_config};
use whyrefused_shared::{
    AgentMessage, CheckEvent, CheckReport, CheckRequest, ClientMessage, PROTOCOL_VERSION,
    RequestId, ScanEvent, ScanReport, ScanRequest, ScanStep, Step,
};

use crate::Agent;

/// How long any single wait for the agent may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(10);

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A connected client that has exchanged hellos with the agent.
pub struct Client {
    socket: Socket,
    /// The agent's hello.
    pub hello: AgentMessage,
}

impl Client {
    /// Connects without an `Origin` header (as a program would) and says hello.
    pub async fn connect(agent: &Agent) -> Client {
        Client::connect_with_token(agent, None).await
    }

    /// Connects and says hello with `token` (for an agent with a token file).
    pub async fn connect_with_token(agent: &Agent, token: Option<&str>) -> Client {
        Client::hello_with(Client::connect_silent(agent).await, token).await
    }

    /// Connects to the agent at a WebSocket URL (one running inside a lab namespace, reached
    /// from a helper in the same namespace) and says hello.
    pub async fn connect_url(ws_url: &str) -> Client {
        Client::connect_url_with_token(ws_url, None).await
    }

    /// Like [`Client::connect_url`], saying hello with `token`.
    pub async fn connect_url_with_token(ws_url: &str, token: Option<&str>) -> Client {
        Client::hello_with(Client::connect_silent_url(ws_url).await, token).await
    }

    async fn hello_with(mut client: Client, token: Option<&str>) -> Client {
        let token = token.map(str::to_string);
        let hello =
            ClientMessage::Hello { protocol: PROTOCOL_VERSION, client: "tests".into(), token };
        client.send(&hello).await;
        client
    }

    /// Connects and reads the agent's hello, but says nothing yet.
    pub async fn connect_silent(agent: &Agent) -> Client {
        Client::connect_silent_url(&agent.ws_url()).await
    }

    async fn connect_silent_url(ws_url: &str) -> Client {
        let socket = open(ws_url, None).await.expect("the agent accepts the upgrade");
        let mut client = Client {
            socket,
            hello: AgentMessage::Hello { protocol: 0, agent: empty_info(), auth_required: false },
        };
        client.hello = client.recv().await;
        client
    }

    /// Sends a protocol message.
    pub async fn send(&mut self, message: &ClientMessage) {
        let json = serde_json::to_string(message).expect("encodes");
        self.send_text(&json).await;
    }

    /// Sends any text frame, valid or not.
    pub async fn send_text(&mut self, text: &str) {
        self.send_raw(Message::text(text)).await;
    }

    /// Sends any frame.
    pub async fn send_raw(&mut self, frame: Message) {
        self.socket.send(frame).await.expect("the socket is open");
    }

    /// Sends a check request.
    pub async fn start_check(&mut self, id: u64, request: CheckRequest) {
        self.send(&ClientMessage::Check { id: RequestId(id), request, from: None, origin: None })
            .await;
    }

    /// The next protocol message; fails the test on a close, garbage or a long silence.
    pub async fn recv(&mut self) -> AgentMessage {
        self.recv_within(PATIENCE).await
    }

    /// Like [`Client::recv`], waiting up to `patience` (for an agent that must stay silent
    /// longer than [`PATIENCE`] before it speaks).
    pub async fn recv_within(&mut self, patience: Duration) -> AgentMessage {
        match self.next_frame_within(patience).await {
            Some(Message::Text(text)) => serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("the agent sent invalid JSON ({e}): {text}")),
            other => panic!("expected a message from the agent, got {other:?}"),
        }
    }

    /// The next frame (text or close), or `None` when the socket ended.
    pub async fn next_frame(&mut self) -> Option<Message> {
        self.next_frame_within(PATIENCE).await
    }

    async fn next_frame_within(&mut self, patience: Duration) -> Option<Message> {
        loop {
            let frame = tokio::time::timeout(patience, self.socket.next())
                .await
                .expect("the agent answered in time");
            match frame {
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(message)) => return Some(message),
                Some(Err(_)) | None => return None,
            }
        }
    }

    /// The events of request `id` up to and including its `done`, and their fold into a report.
    /// Messages about other requests are skipped; an error about this one fails the test.
    pub async fn events_until_done(&mut self, id: u64) -> (Vec<CheckEvent>, CheckReport) {
        let mut events = Vec::new();
        let mut report = CheckReport::default();
        loop {
            match self.recv().await {
                AgentMessage::Event { id: RequestId(got), event, .. } if got == id => {
                    report.apply(&event);
                    let done = matches!(event.step, Step::Done { .. });
                    events.push(event);
                    if done {
                        return (events, report);
                    }
                }
                AgentMessage::Error { id: Some(RequestId(got)), code, message } if got == id => {
                    panic!("request {id} failed: {code:?}: {message}")
                }
                _ => {}
            }
        }
    }

    /// Runs one check to the end.
    pub async fn check(
        &mut self,
        id: u64,
        request: CheckRequest,
    ) -> (Vec<CheckEvent>, CheckReport) {
        self.start_check(id, request).await;
        self.events_until_done(id).await
    }

    /// Sends a scan request.
    pub async fn start_scan(&mut self, id: u64, request: ScanRequest) {
        self.send(&ClientMessage::Scan { id: RequestId(id), request, from: None, origin: None })
            .await;
    }

    /// The events of scan `id` up to and including its `done`, and their fold into a report.
    /// Messages about other requests are skipped; an error about this one fails the test.
    pub async fn scan_events_until_done(&mut self, id: u64) -> (Vec<ScanEvent>, ScanReport) {
        let mut events = Vec::new();
        let mut report = ScanReport::default();
        loop {
            match self.recv().await {
                AgentMessage::Scan { id: RequestId(got), event, .. } if got == id => {
                    report.apply(&event);
                    let done = matches!(event.step, ScanStep::Done { .. });
                    events.push(event);
                    if done {
                        return (events, report);
                    }
                }
                AgentMessage::Error { id: Some(RequestId(got)), code, message } if got == id => {
                    panic!("scan {id} failed: {code:?}: {message}")
                }
                _ => {}
            }
        }
    }

    /// Runs one scan to the end.
    pub async fn scan(&mut self, id: u64, request: ScanRequest) -> (Vec<ScanEvent>, ScanReport) {
        self.start_scan(id, request).await;
        self.scan_events_until_done(id).await
    }

    /// Closes the socket from the client's side.
    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}

/// Opens a WebSocket to `url`, with an `Origin` header when given (as a browser sends).
pub async fn open(url: &str, origin: Option<&str>) -> Result<Socket, tungstenite::Error> {
    let mut request = url.into_client_request()?;
    if let Some(origin) = origin {
        request.headers_mut().insert("Origin", origin.parse().expect("a valid header"));
    }
    let disable_nagle = true;
    connect_async_with_config(request, None, disable_nagle).await.map(|(socket, _response)| socket)
}

fn empty_info() -> whyrefused_shared::AgentInfo {
    whyrefused_shared::AgentInfo { version: String::new(), hostname: String::new(), build: None }
}

/// The `kind` of each step, for asserting the order of a stream.
pub fn step_names(events: &[CheckEvent]) -> Vec<&'static str> {
    events.iter().map(|event| event.step.name()).collect()
}
