//! Hostile clients of one agent, through real sockets: one that never reads, one that never says
//! hello, one that chatters before hello, one that guesses tokens on sockets opened beforehand,
//! one that holds too many sessions, one that sends its request line half-way and stops, and
//! text from clients and joined agents that tries to forge a line of the agent's log.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{WebSocketStream, client_async};
use whyrefused_shared::{
    AgentMessage, ClientMessage, ErrorCode, PROTOCOL_VERSION, RequestId, ScanRequest,
};
use whyrefused_tests::client::{PATIENCE, open};
use whyrefused_tests::{Agent, Client, write_token_file};

const SECRET: &str = "sessions-0123456789abcdef";

/// An agent with a token file holding [`SECRET`], with more `serve` arguments.
fn agent_with_token(args: &[&str]) -> (Agent, tempfile::TempDir) {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let tokens = write_token_file(&directory.path().join("tokens"), &format!("ops:{SECRET}\n"));
    (Agent::start_with(&[&["--token-file", tokens.as_str()][..], args].concat()), directory)
}

/// A WebSocket to `agent` from the loopback address `from`, with a receive buffer of
/// `receive_buffer` bytes when given (so the kernel holds little of what the client leaves
/// unread).
async fn socket_from(
    agent: &Agent,
    from: IpAddr,
    receive_buffer: Option<u32>,
) -> Result<WebSocketStream<TcpStream>, tungstenite::Error> {
    let socket = TcpSocket::new_v4().expect("a socket");
    socket.bind(SocketAddr::new(from, 0)).expect("bound to a loopback address");
    if let Some(size) = receive_buffer {
        socket.set_recv_buffer_size(size).expect("the receive buffer is set");
    }
    let stream = socket.connect(agent.address).await.expect("the agent accepts connections");
    stream.set_nodelay(true).expect("no delay");
    client_async(agent.ws_url(), stream).await.map(|(socket, _response)| socket)
}

/// The status and body of a refused upgrade.
fn refused_upgrade(error: tungstenite::Error) -> (u16, String) {
    let tungstenite::Error::Http(response) = error else { panic!("not refused: {error:?}") };
    let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default()).into_owned();
    (response.status().as_u16(), body)
}

/// The close frame ending `socket`, after whatever messages came before it.
async fn close_frame<S>(socket: &mut S) -> Option<(CloseCode, String)>
where
    S: futures::Stream<Item = Result<Message, tungstenite::Error>> + Unpin,
{
    loop {
        let frame = tokio::time::timeout(PATIENCE, socket.next()).await.expect("the socket ends");
        match frame {
            Some(Ok(Message::Close(frame))) => {
                return frame.map(|frame| (frame.code, frame.reason.as_str().to_string()));
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return None,
        }
    }
}

/// Waits until the agent's log at `log` holds `text`.
async fn wait_for_log(log: &std::path::Path, text: &str) {
    let start = Instant::now();
    loop {
        let written = std::fs::read_to_string(log).unwrap_or_default();
        if written.contains(text) {
            return;
        }
        assert!(start.elapsed() < PATIENCE, "no {text:?} in the agent's log:\n{written}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_client_that_never_reads_while_a_scan_streams_is_disconnected_with_the_close_reason() {
    let directory = tempfile::tempdir().unwrap();
    let log = directory.path().join("agent.log");
    let agent = Agent::start_logged(&["--max-unread-mib", "1", "--max-scans", "1"], &log);
    let localhost = "127.0.0.1".parse().unwrap();
    let mut socket = socket_from(&agent, localhost, Some(4096)).await.expect("upgraded");
    let hello =
        ClientMessage::Hello { protocol: PROTOCOL_VERSION, client: "t".into(), token: None };
    let scan = ClientMessage::Scan {
        id: RequestId(1),
        request: ScanRequest::new("127.0.0.1", "1-65535"),
        from: None,
        origin: None,
    };
    // The scan streams, and each message of an unknown type is answered with an error quoting
    // it: 9 MB of answers, more than the kernel's buffers and the agent's 1 MiB together.
    let unknown = format!(r#"{{"type":"{}"}}"#, "x".repeat(60_000));
    let messages = [hello, scan].map(|message| serde_json::to_string(&message).unwrap());
    for text in messages.into_iter().chain(std::iter::repeat_n(unknown, 150)) {
        if socket.send(Message::text(text)).await.is_err() {
            break;
        }
    }

    wait_for_log(&log, "the client left too much unread").await;
    // Read now: what the kernel held, then the close frame naming why.
    let (code, reason) = close_frame(&mut socket).await.expect("a close frame");
    assert_eq!(code, CloseCode::Policy);
    assert!(reason.contains("does not read its messages"), "{reason}");
    // The agent goes on, and the scan gave its slot back.
    let mut client = Client::connect(&agent).await;
    let (_, report) = client.scan(1, ScanRequest::new("127.0.0.1", "1-100")).await;
    assert_eq!(report.done, 100);
}

#[tokio::test]
async fn a_client_that_never_says_hello_to_an_agent_with_tokens_is_closed_after_the_hello_timeout()
{
    let (agent, _directory) = agent_with_token(&["--hello-timeout-s", "1"]);
    let mut client = Client::connect_silent(&agent).await;
    match client.next_frame().await {
        Some(Message::Close(Some(frame))) => {
            assert_eq!(frame.code, CloseCode::Policy);
            assert_eq!(frame.reason.as_str(), "a token is required");
        }
        other => panic!("expected a close after the hello timeout, got {other:?}"),
    }
}

#[tokio::test]
async fn a_second_message_before_hello_closes_the_socket() {
    let (agent, _directory) = agent_with_token(&[]);
    let mut client = Client::connect_silent(&agent).await;
    client.send(&ClientMessage::Agents { id: RequestId(1) }).await;
    let AgentMessage::Error { code, .. } = client.recv().await else { panic!("no error reply") };
    assert_eq!(code, ErrorCode::HelloRequired, "the first gets an answer");
    client.send(&ClientMessage::Agents { id: RequestId(2) }).await;
    match client.next_frame().await {
        Some(Message::Close(Some(frame))) => assert_eq!(frame.code, CloseCode::Policy),
        other => panic!("expected a close, got {other:?}"),
    }
}

/// What the agent answers a hello with `token` on an open socket: the error's message, if any.
async fn hello_refusal(client: &mut Client, token: &str) -> Option<String> {
    let token = Some(token.to_string());
    client
        .send(&ClientMessage::Hello { protocol: PROTOCOL_VERSION, client: "t".into(), token })
        .await;
    match client.recv().await {
        AgentMessage::Error { code: ErrorCode::Unauthorized, message, .. } => Some(message),
        _ => None,
    }
}

#[tokio::test]
async fn sockets_opened_first_and_guessing_later_are_all_refused_once_the_limit_is_hit() {
    let (agent, _directory) = agent_with_token(&[]);
    let mut sockets = Vec::new();
    for _ in 0..11 {
        sockets.push(Client::connect_silent(&agent).await);
    }
    let mut last = sockets.pop().expect("eleven sockets");
    let mut blocked = 0;
    for socket in &mut sockets {
        let refusal = hello_refusal(socket, "wrong-wrong-wrong-wrong").await.expect("refused");
        blocked += usize::from(refusal.contains("too many failed authentications"));
    }
    assert_eq!(blocked, 5, "five guesses are allowed, the other five sockets are blocked");
    let refusal =
        hello_refusal(&mut last, SECRET).await.expect("refused even with the right token");
    assert!(refusal.contains("too many failed authentications from 127.0.0.1"), "{refusal}");
}

#[tokio::test]
async fn one_loopback_peer_holds_256_sessions_opened_in_a_burst() {
    let agent = Agent::start();
    let url = agent.ws_url();
    let opened = futures::future::join_all((0..256).map(|_| open(&url, None))).await;
    let mut sockets: Vec<_> =
        opened.into_iter().map(|socket| socket.expect("every upgrade succeeds")).collect();
    for socket in &mut sockets {
        let hello = tokio::time::timeout(PATIENCE, socket.next()).await.expect("a hello");
        assert!(matches!(hello, Some(Ok(Message::Text(_)))), "{hello:?}");
    }
}

#[tokio::test]
async fn sessions_beyond_a_cap_are_refused_naming_the_cap_and_its_flag() {
    let agent = Agent::start_with(&["--max-sessions", "4", "--max-sessions-per-peer", "3"]);
    let localhost: IpAddr = "127.0.0.1".parse().unwrap();
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(socket_from(&agent, localhost, None).await.expect("under the caps"));
    }
    let refused = socket_from(&agent, localhost, None).await.expect_err("over the per-peer cap");
    let (status, body) = refused_upgrade(refused);
    assert_eq!(status, 429);
    assert!(body.contains("127.0.0.1 already holds 3 sessions"), "{body}");
    assert!(body.contains("--max-sessions-per-peer"), "{body}");

    let other: IpAddr = "127.0.0.2".parse().unwrap();
    held.push(socket_from(&agent, other, None).await.expect("another peer has room"));
    let refused = socket_from(&agent, "127.0.0.3".parse().unwrap(), None).await;
    let (status, body) = refused_upgrade(refused.expect_err("over the agent's cap"));
    assert_eq!(status, 503);
    assert!(
        body.contains("already holds 4 sessions") && body.contains("--max-sessions)"),
        "{body}"
    );

    // A session that ends frees its place.
    let mut first = held.remove(0);
    first.close(None).await.unwrap();
    while first.next().await.is_some() {}
    let start = Instant::now();
    while socket_from(&agent, localhost, None).await.is_err() {
        assert!(start.elapsed() < PATIENCE, "the closed session's place was never freed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_client_that_sends_half_a_request_line_is_dropped_after_the_header_timeout() {
    let agent = Agent::start_with(&["--header-timeout-s", "1"]);
    let mut stream = TcpStream::connect(agent.address).await.unwrap();
    stream.write_all(b"GET / HT").await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the agent still holds the connection after {PATIENCE:?}");
    assert!(!String::from_utf8_lossy(&answer).contains("200 OK"), "no page for half a request");
}

/// What an attacker would put in a field to start a line of their own in the agent's log.
const FORGED: &str = "\n1999-01-01T00:00:00.000000Z  INFO whyrefused: FORGED";

#[tokio::test]
async fn text_from_clients_and_joined_agents_never_starts_a_line_of_the_agents_log() {
    let directory = tempfile::tempdir().unwrap();
    let agent_secret = "a1-agent-0123456789abcdef";
    let text = format!("ops:{SECRET}\na1:{agent_secret}:agent\n");
    let tokens = write_token_file(&directory.path().join("tokens"), &text);
    let log = directory.path().join("agent.log");
    let agent = Agent::start_logged(&["--token-file", &tokens], &log);

    // A client's name, a target, a name to register under.
    let mut client = Client::connect_silent(&agent).await;
    let hello = ClientMessage::Hello {
        protocol: PROTOCOL_VERSION,
        client: format!("tests{FORGED}"),
        token: Some(SECRET.into()),
    };
    client.send(&hello).await;
    let check = whyrefused_shared::CheckRequest::new(format!("127.0.0.1:9{FORGED}"));
    client
        .send(&ClientMessage::Check { id: RequestId(1), request: check, from: None, origin: None })
        .await;
    assert!(matches!(client.recv().await, AgentMessage::Error { .. }), "an invalid target");
    let register = ClientMessage::Register {
        name: format!("a1{FORGED}"),
        version: "0".into(),
        hostname: format!("host{FORGED}"),
        addresses: Vec::new(),
        agent_id: None,
        forwards: false,
    };
    client.send(&register).await;
    assert!(matches!(client.recv().await, AgentMessage::Error { .. }), "refused");

    // A joined agent's unreadable message.
    let mut joined = Client::connect_with_token(&agent, Some(agent_secret)).await;
    let register = ClientMessage::Register {
        name: "a1".into(),
        version: "0".into(),
        hostname: "host".into(),
        addresses: Vec::new(),
        agent_id: None,
        forwards: false,
    };
    joined.send(&register).await;
    assert!(matches!(joined.recv().await, AgentMessage::Registered { .. }));
    joined.send_text(&format!(r#"{{"type":"x{}"}}"#, FORGED.replace('\n', "\\n"))).await;

    wait_for_log(&log, "a joined agent sent an unreadable message").await;
    let written = std::fs::read_to_string(&log).unwrap();
    assert!(written.contains("FORGED"), "the text is logged, escaped: {written}");
    let forged: Vec<&str> = written.lines().filter(|line| line.starts_with("1999-01-01")).collect();
    assert!(forged.is_empty(), "forged lines: {forged:?}\n{written}");
}
