//! The agent over its WebSocket, as the page uses it: a real agent process, a real client, and
//! loopback targets the test controls.

use std::time::{Duration, Instant};

use tokio_tungstenite::tungstenite::{self, Message};
use whyrefused_shared::{
    AgentMessage, Cause, CheckRequest, ClientMessage, ConnectState, ErrorCode, Finding,
    MAX_MESSAGE_BYTES, Outcome, PAGE_CLIENT, PROTOCOL_VERSION, RequestId, Step,
};
use whyrefused_tests::client::{open, step_names};
use whyrefused_tests::scrape::get;
use whyrefused_tests::{Agent, Client, HangingPort, closed_port, syn_sent_to};

/// Waits until `condition` holds, failing the test after a few seconds.
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < Duration::from_secs(5), "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Starts check 1 towards a port whose connect hangs (30 s deadline) and waits until the
/// probe's SYN is in flight; the port stays hanging while the returned value lives.
async fn start_hanging_check(agent: &Agent) -> (Client, HangingPort) {
    let hanging = HangingPort::new();
    let port = hanging.address.port();
    let mut client = Client::connect(agent).await;
    let mut request = CheckRequest::new(hanging.address.to_string());
    request.timeout_ms = Some(30_000);
    client.start_check(1, request).await;
    eventually("the probe's connect is in flight", || syn_sent_to(port) == 1).await;
    (client, hanging)
}

/// The next error message, skipping anything else.
async fn next_error(client: &mut Client) -> (Option<RequestId>, ErrorCode, String) {
    loop {
        if let AgentMessage::Error { id, code, message } = client.recv().await {
            return (id, code, message);
        }
    }
}

#[tokio::test]
async fn the_agent_says_hello_with_its_protocol_and_identity() {
    let agent = Agent::start();
    let client = Client::connect(&agent).await;
    let AgentMessage::Hello { protocol, agent: info, auth_required } = &client.hello else {
        panic!("the first message is hello, not {:?}", client.hello);
    };
    assert_eq!(*protocol, whyrefused_shared::PROTOCOL_VERSION);
    assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
    assert!(!info.hostname.is_empty());
    assert!(!auth_required, "a loopback agent without a token file asks for none");
}

#[tokio::test]
async fn an_open_port_streams_each_step_in_order_and_is_reachable() {
    let agent = Agent::start();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut client = Client::connect(&agent).await;

    let (events, report) = client.check(1, CheckRequest::new(format!("127.0.0.1:{port}"))).await;

    // What followed the connect is a finding, and as 127.0.0.1 is the agent's own host, its
    // listeners on the port are another.
    assert_eq!(
        step_names(&events),
        [
            "started",
            "resolved",
            "attempt_started",
            "attempt_finished",
            "finding",
            "finding",
            "verdict",
            "done"
        ]
    );
    assert!(events.windows(2).all(|pair| pair[0].at <= pair[1].at), "timestamps never go back");
    let [Finding::AfterConnect(after), Finding::LocalListeners(found)] = &report.findings[..]
    else {
        panic!("expected after-connect and the local listeners, got {:?}", report.findings);
    };
    assert_eq!(after.early_close, None, "the listener keeps the connection open");
    assert_eq!(
        found.listeners[0].pid,
        Some(std::process::id()),
        "the test process owns the listener"
    );
    let attempt = &report.attempts[0];
    assert_eq!((attempt.state, attempt.port), (ConnectState::Open, port));
    assert!(attempt.elapsed_us > 0 && attempt.elapsed_us < 1_000_000, "{attempt:?}");
    assert_eq!(report.verdict.unwrap().cause, Cause::Reachable);
    assert_eq!(report.outcome, Some(Outcome::Completed));
}

/// Waits until the agent's history serves the result `id` (the writer stores it a moment after
/// the request ends).
async fn stored_result(agent: &Agent, id: &str) -> serde_json::Value {
    let path = format!("/api/results/{id}");
    let mut found = None;
    eventually("the result is in the history", || {
        let answer = get(agent.address, &path);
        found = (answer.status == 200).then_some(answer.body);
        found.is_some()
    })
    .await;
    serde_json::from_str(&found.unwrap()).expect("a stored result is JSON")
}

#[tokio::test]
async fn the_page_is_told_the_stored_id_of_its_check_and_other_clients_are_not() {
    let agent = Agent::start();
    let port = closed_port();
    let target = format!("127.0.0.1:{port}");

    let mut page = Client::connect_silent(&agent).await;
    let hello = ClientMessage::Hello {
        protocol: PROTOCOL_VERSION,
        client: PAGE_CLIENT.into(),
        token: None,
    };
    page.send(&hello).await;
    page.check(1, CheckRequest::new(&target)).await;
    let AgentMessage::Stored { id, vantage, result } = page.recv().await else {
        panic!("the page is told where its check is stored, after its done");
    };
    assert_eq!((id, vantage), (RequestId(1), None));
    let stored = stored_result(&agent, &result).await;
    assert_eq!(stored["target"], target.as_str());
    assert_eq!(stored["report"]["verdict"]["cause"], "port_closed");

    // A CLI (or an older client) would not know the message: it is never sent one.
    let mut cli = Client::connect(&agent).await;
    cli.check(2, CheckRequest::new(&target)).await;
    let listing = || get(agent.address, "/api/results?limit=10").body;
    eventually("both checks are stored", || listing().matches(r#""id":"#).count() == 2).await;
    cli.send(&ClientMessage::Agents { id: RequestId(3) }).await;
    let next = cli.recv().await;
    assert!(matches!(next, AgentMessage::Agents { .. }), "no stored id for a CLI: {next:?}");
}

#[tokio::test]
async fn a_closed_port_is_refused_and_called_port_closed() {
    let agent = Agent::start();
    let port = closed_port();
    let mut client = Client::connect(&agent).await;

    let (_, report) = client.check(2, CheckRequest::new(format!("127.0.0.1:{port}"))).await;

    let attempt = &report.attempts[0];
    assert_eq!(attempt.state, ConnectState::Refused);
    assert_eq!(attempt.errno.as_ref().map(|e| e.name.as_str()), Some("ECONNREFUSED"));
    let verdict = report.verdict.unwrap();
    assert_eq!(verdict.cause, Cause::PortClosed);
    assert!(verdict.summary.contains(&port.to_string()), "{}", verdict.summary);
}

#[tokio::test]
async fn localhost_is_resolved_and_every_address_is_tried() {
    let agent = Agent::start();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut client = Client::connect(&agent).await;

    let (_, report) = client.check(3, CheckRequest::new(format!("localhost:{port}"))).await;

    let dns = report.dns.unwrap();
    assert!(dns.addresses.contains(&"127.0.0.1".parse().unwrap()), "{dns:?}");
    assert_eq!(report.attempts.len(), dns.addresses.len(), "one attempt per resolved address");
    let ipv4 = report.attempts.iter().find(|a| a.address.is_ipv4()).unwrap();
    assert_eq!(ipv4.state, ConnectState::Open);
}

#[tokio::test]
async fn several_requests_run_at_once_on_one_socket() {
    let agent = Agent::start();
    let hanging = HangingPort::new();
    let closed = closed_port();
    let mut client = Client::connect(&agent).await;

    let mut slow = CheckRequest::new(hanging.address.to_string());
    slow.timeout_ms = Some(1_500);
    client.start_check(10, slow).await;
    let (_, quick) = client.check(11, CheckRequest::new(format!("127.0.0.1:{closed}"))).await;
    assert_eq!(quick.verdict.unwrap().cause, Cause::PortClosed, "the quick check is not held up");

    let (_, slow) = client.events_until_done(10).await;
    assert_eq!(slow.attempts[0].state, whyrefused_shared::ConnectState::Timeout);
    // The hanging port is a listener of this host with its accept queue full: the agent, on
    // the same host, names it.
    let verdict = slow.verdict.unwrap();
    assert_eq!(verdict.cause, Cause::BacklogFull, "{}", verdict.summary);
}

#[tokio::test]
async fn bad_messages_get_errors_and_the_session_goes_on() {
    let agent = Agent::start();
    let mut client = Client::connect(&agent).await;

    client.send_text("{this is not json").await;
    assert_eq!(next_error(&mut client).await.1, ErrorCode::MalformedMessage);

    client.send_text(r#"{"type":"teleport","id":4}"#).await;
    let (id, code, message) = next_error(&mut client).await;
    assert_eq!((id, code), (Some(RequestId(4)), ErrorCode::UnknownMessageType));
    assert!(message.contains("hello, check, scan, cancel"), "{message}");

    client.send_text(r#"{"type":"check","id":5,"request":{"timeout_ms":"soon"}}"#).await;
    assert_eq!(next_error(&mut client).await.1, ErrorCode::InvalidMessage);

    client.start_check(6, CheckRequest::new("db.internal:99999")).await;
    let (id, code, message) = next_error(&mut client).await;
    assert_eq!((id, code), (Some(RequestId(6)), ErrorCode::InvalidTarget));
    assert!(message.contains("1 to 65535"), "{message}");

    client
        .start_check(7, CheckRequest { timeout_ms: Some(0), ..CheckRequest::new("127.0.0.1:1") })
        .await;
    assert_eq!(next_error(&mut client).await.1, ErrorCode::InvalidOption);

    let oversized = format!(
        r#"{{"type":"check","id":8,"request":{{"target":"{}"}}}}"#,
        "x".repeat(MAX_MESSAGE_BYTES)
    );
    client.send_text(&oversized).await;
    let (_, code, message) = next_error(&mut client).await;
    assert_eq!(code, ErrorCode::MessageTooLarge);
    assert!(message.contains(&MAX_MESSAGE_BYTES.to_string()), "{message}");

    client.send_raw(Message::binary(vec![1u8, 2, 3])).await;
    assert_eq!(next_error(&mut client).await.1, ErrorCode::MalformedMessage);

    client.send(&ClientMessage::Cancel { id: RequestId(99) }).await;
    assert_eq!(next_error(&mut client).await.1, ErrorCode::UnknownRequest);

    // A forward watch is the hub's to ask of the agents that joined it, never a client's.
    client.send(&ClientMessage::ForwardWatch { id: RequestId(10) }).await;
    let (id, code, message) = next_error(&mut client).await;
    assert_eq!((id, code), (Some(RequestId(10)), ErrorCode::InvalidMessage));
    assert!(message.contains("only from the hub this agent joined"), "{message}");

    // After all that, the same socket still runs checks.
    let port = closed_port();
    let (_, report) = client.check(9, CheckRequest::new(format!("127.0.0.1:{port}"))).await;
    assert_eq!(report.verdict.unwrap().cause, Cause::PortClosed);
}

#[tokio::test]
async fn requests_before_hello_are_refused_and_a_wrong_protocol_closes_the_socket() {
    let agent = Agent::start();
    let mut client = Client::connect_silent(&agent).await;
    client.start_check(1, CheckRequest::new("127.0.0.1:1")).await;
    let (id, code, _) = next_error(&mut client).await;
    assert_eq!((id, code), (Some(RequestId(1)), ErrorCode::HelloRequired));

    client
        .send(&ClientMessage::Hello { protocol: 999, client: "future".into(), token: None })
        .await;
    let (_, code, message) = next_error(&mut client).await;
    assert_eq!(code, ErrorCode::ProtocolMismatch);
    assert!(message.contains("999"), "{message}");
    match client.next_frame().await {
        Some(Message::Close(Some(frame))) => assert_eq!(u16::from(frame.code), 1002),
        other => panic!("expected a close frame, got {other:?}"),
    }
}

#[tokio::test]
async fn a_reused_request_id_is_refused_while_the_first_runs() {
    let agent = Agent::start();
    let hanging = HangingPort::new();
    let mut client = Client::connect(&agent).await;
    client.start_check(3, CheckRequest::new(hanging.address.to_string())).await;
    client.start_check(3, CheckRequest::new(hanging.address.to_string())).await;
    let (id, code, _) = next_error(&mut client).await;
    assert_eq!((id, code), (Some(RequestId(3)), ErrorCode::DuplicateRequestId));
}

/// The longest connect deadline: the cancelled requests' (the reuses' are the default).
const CANCELLED_TIMEOUT_MS: u32 = 30_000;

#[tokio::test]
async fn an_id_reused_right_after_cancel_is_refused_until_the_cancelled_requests_done() {
    let agent = Agent::start();
    let hanging = HangingPort::new();
    let closed = format!("127.0.0.1:{}", closed_port());
    let mut client = Client::connect(&agent).await;
    // Racing the cancelled request's wind-down: ten times, so a mix-up cannot hide.
    for id in 1..=10 {
        let mut request = CheckRequest::new(hanging.address.to_string());
        request.timeout_ms = Some(CANCELLED_TIMEOUT_MS);
        client.start_check(id, request).await;
        client.send(&ClientMessage::Cancel { id: RequestId(id) }).await;
        client.start_check(id, CheckRequest::new(closed.clone())).await;
        let mut reuse_refused = false;
        loop {
            match client.recv().await {
                AgentMessage::Error { id: Some(RequestId(got)), code, .. } if got == id => {
                    assert_eq!(code, ErrorCode::DuplicateRequestId);
                    reuse_refused = true;
                }
                AgentMessage::Event { id: RequestId(got), event, .. } if got == id => {
                    match event.step {
                        Step::Started { timeout_ms, .. } => assert_eq!(
                            timeout_ms, CANCELLED_TIMEOUT_MS,
                            "request {id}: the reuse started before the cancelled one's done"
                        ),
                        Step::Done { outcome, .. } => {
                            assert_eq!(outcome, Outcome::Cancelled, "request {id}");
                            break;
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        if !reuse_refused {
            // The cancelled request had ended first: the reuse runs, on its own.
            let (_, report) = client.events_until_done(id).await;
            assert_eq!(report.verdict.map(|v| v.cause), Some(Cause::PortClosed), "request {id}");
        }
    }
    // Once the done is out, the id is free, and the new request is cancellable like any.
    let (_, report) = client.check(1, CheckRequest::new(closed.clone())).await;
    assert_eq!(report.outcome, Some(Outcome::Completed));
    client.start_check(1, CheckRequest::new(hanging.address.to_string())).await;
    client.send(&ClientMessage::Cancel { id: RequestId(1) }).await;
    let (_, report) = client.events_until_done(1).await;
    assert_eq!(report.outcome, Some(Outcome::Cancelled));
}

#[tokio::test]
async fn a_cross_origin_page_is_refused_and_a_same_origin_page_accepted() {
    let agent = Agent::start();
    let refused = open(&agent.ws_url(), Some("https://evil.example")).await;
    match refused {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("a foreign origin must get 403, got {:?}", other.map(|_| "a socket")),
    }
    let same_origin = format!("http://{}", agent.address);
    assert!(open(&agent.ws_url(), Some(&same_origin)).await.is_ok());
}

#[tokio::test]
async fn cancel_stops_the_check_and_frees_its_socket() {
    let agent = Agent::start();
    let (mut client, hanging) = start_hanging_check(&agent).await;
    let port = hanging.address.port();

    client.send(&ClientMessage::Cancel { id: RequestId(1) }).await;
    let (events, report) = client.events_until_done(1).await;

    assert_eq!(report.outcome, Some(Outcome::Cancelled));
    assert!(report.verdict.is_none(), "a cancelled check has no verdict");
    assert!(!step_names(&events).contains(&"attempt_finished"));
    eventually("the probe's socket is closed", || syn_sent_to(port) == 0).await;
}

#[tokio::test]
async fn closing_the_socket_mid_check_cancels_it() {
    let agent = Agent::start();
    let (client, hanging) = start_hanging_check(&agent).await;
    let port = hanging.address.port();

    client.close().await;

    eventually("the agent dropped the probe", || syn_sent_to(port) == 0).await;
}

#[tokio::test]
async fn shutdown_tells_running_requests_then_exits() {
    let mut agent = Agent::start();
    let (mut client, _hanging) = start_hanging_check(&agent).await;

    agent.terminate();

    let (id, code, _) = next_error(&mut client).await;
    assert_eq!((id, code), (Some(RequestId(1)), ErrorCode::ShuttingDown));
    match client.recv().await {
        AgentMessage::Event { event, .. } => {
            assert!(
                matches!(event.step, Step::Done { outcome: Outcome::ShuttingDown, .. }),
                "{event:?}"
            )
        }
        other => panic!("expected done, got {other:?}"),
    }
    match client.next_frame().await {
        Some(Message::Close(Some(frame))) => assert_eq!(u16::from(frame.code), 1001),
        other => panic!("expected a going-away close, got {other:?}"),
    }
    let status = agent.wait_exit(Duration::from_secs(5)).expect("the agent exits promptly");
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn a_silent_socket_is_closed_after_the_idle_timeout_but_not_while_a_check_runs() {
    let agent = Agent::start_with(&["--idle-timeout-s", "1"]);
    let (mut client, _hanging) = start_hanging_check(&agent).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    client.send(&ClientMessage::Cancel { id: RequestId(1) }).await;
    let (_, report) = client.events_until_done(1).await;
    assert_eq!(report.outcome, Some(Outcome::Cancelled), "the running check kept it open");

    let start = Instant::now();
    let frame = client.next_frame().await;
    let Some(Message::Close(Some(close))) = frame else {
        panic!("expected a close, got {frame:?}")
    };
    assert_eq!(close.code, tungstenite::protocol::frame::coding::CloseCode::Away);
    assert!(close.reason.contains("idle"), "{}", close.reason);
    assert!(start.elapsed() >= Duration::from_millis(800), "not before the timeout");
}

#[tokio::test]
async fn a_check_the_agents_policy_denies_is_policy_denied_and_makes_no_attempt() {
    let agent = Agent::start_with(&["--deny", "127.0.0.2"]);
    let listener = std::net::TcpListener::bind("127.0.0.2:0").expect("127.0.0.0/8 is loopback");
    let port = listener.local_addr().unwrap().port();
    let mut client = Client::connect(&agent).await;
    let (events, report) = client.check(1, CheckRequest::new(format!("127.0.0.2:{port}"))).await;
    assert_eq!(step_names(&events), ["started", "resolved", "verdict", "done"]);
    let verdict = report.verdict.expect("a verdict");
    assert_eq!(verdict.cause, Cause::PolicyDenied);
    assert!(verdict.summary.contains("127.0.0.2 is denied by --deny 127.0.0.2/32"), "{verdict:?}");
    listener.set_nonblocking(true).unwrap();
    let accepted = listener.accept();
    assert!(accepted.is_err(), "the denied listener was never connected to: {accepted:?}");
    let bound = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let allowed = format!("127.0.0.1:{}", bound.local_addr().unwrap().port());
    let (_, report) = client.check(2, CheckRequest::new(allowed)).await;
    assert_eq!(report.verdict.expect("a verdict").cause, Cause::Reachable);
}
