//! An agent with a token file: every WebSocket must authenticate, failures are refused and then
//! rate-limited, non-loopback listening needs the file, and every request leaves an audit line.

use std::process::Command;
use std::time::{Duration, Instant};

use tokio_tungstenite::tungstenite::{self, Message, protocol::frame::coding::CloseCode};
use whyrefused_shared::{AgentMessage, Cause, CheckRequest, ErrorCode};
use whyrefused_tests::client::open;
use whyrefused_tests::{Agent, Client, agent_binary, closed_port, write_token_file};

const ALICE: &str = "alice-0123456789abcdef";
const CI: &str = "ci-fedcba9876543210fedc";

/// A token file with two tokens, removed with the returned directory.
fn token_file() -> (tempfile::TempDir, String) {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let text = format!("# who may probe\nalice:{ALICE}\nci:{CI}\n");
    let path = write_token_file(&directory.path().join("tokens"), &text);
    (directory, path)
}

/// What the agent answers a hello with `token`: its error code and close code, if it refused.
async fn refusal(agent: &Agent, token: Option<&str>) -> Option<(ErrorCode, Option<CloseCode>)> {
    let mut client = Client::connect_with_token(agent, token).await;
    client.start_check(1, CheckRequest::new(format!("127.0.0.1:{}", closed_port()))).await;
    let AgentMessage::Error { code, .. } = client.recv().await else { return None };
    let close = match client.next_frame().await {
        Some(Message::Close(frame)) => frame.map(|frame| frame.code),
        _ => None,
    };
    Some((code, close))
}

#[tokio::test]
async fn only_a_hello_with_a_known_token_opens_the_agent() {
    let (_directory, tokens) = token_file();
    let agent = Agent::start_with(&["--token-file", &tokens]);

    let client = Client::connect_silent(&agent).await;
    let AgentMessage::Hello { auth_required, .. } = client.hello else { panic!("no hello") };
    assert!(auth_required, "the hello tells the client a token is needed");

    let refused = Some((ErrorCode::Unauthorized, Some(CloseCode::Policy)));
    assert_eq!(refusal(&agent, None).await, refused, "no token");
    assert_eq!(refusal(&agent, Some("alice-0123456789abcdeX")).await, refused, "a wrong token");

    let mut client = Client::connect_with_token(&agent, Some(CI)).await;
    let port = closed_port();
    let (_, report) = client.check(2, CheckRequest::new(format!("127.0.0.1:{port}"))).await;
    assert_eq!(report.verdict.unwrap().cause, Cause::PortClosed, "a known token works");
}

#[tokio::test]
async fn a_peer_that_keeps_failing_is_refused_for_a_while() {
    let (_directory, tokens) = token_file();
    let agent = Agent::start_with(&["--token-file", &tokens]);
    for _ in 0..5 {
        assert!(refusal(&agent, Some("wrong-wrong-wrong-wrong")).await.is_some());
    }
    let error = open(&agent.ws_url(), None).await.expect_err("the sixth try is refused");
    let tungstenite::Error::Http(response) = error else { panic!("{error:?}") };
    assert_eq!(response.status(), 429);
    let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default()).into_owned();
    assert!(body.contains("too many failed authentications from 127.0.0.1"), "{body}");
}

#[tokio::test]
async fn a_page_from_another_site_is_refused_even_by_an_agent_with_tokens() {
    let (_directory, tokens) = token_file();
    let agent = Agent::start_with(&["--token-file", &tokens]);
    let error = open(&agent.ws_url(), Some("https://evil.example")).await.expect_err("refused");
    let tungstenite::Error::Http(response) = error else { panic!("{error:?}") };
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn every_request_leaves_an_audit_line_naming_the_token() {
    let (directory, tokens) = token_file();
    let log = directory.path().join("agent.log");
    let agent = Agent::start_logged(&["--token-file", &tokens], &log);
    let mut client = Client::connect_with_token(&agent, Some(ALICE)).await;
    let port = closed_port();
    client.check(1, CheckRequest::new(format!("127.0.0.1:{port}"))).await;

    let start = Instant::now();
    let line = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(line) = text.lines().find(|line| line.contains("whyrefused::audit")) {
            break line.to_string();
        }
        assert!(start.elapsed() < Duration::from_secs(5), "no audit line in:\n{text}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let parts = [
        "whyrefused::audit: request",
        "token=\"alice\"",
        "peer=127.0.0.1:",
        "kind=\"check\"",
        "vantage=\"local\"",
        "outcome=Completed",
        "result=\"port_closed\"",
    ];
    for part in parts {
        assert!(line.contains(part), "{part:?} missing from the audit line: {line}");
    }
    assert!(line.contains(&format!("127.0.0.1:{port}")), "the target: {line}");
    assert!(!line.contains(ALICE), "never the secret: {line}");
}

#[test]
fn listening_beyond_loopback_needs_a_token_file_and_a_bad_one_is_explained() {
    let refused =
        Command::new(agent_binary()).args(["serve", "--listen", "0.0.0.0:0"]).output().unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("Give it a --token-file"), "{stderr}");

    let directory = tempfile::tempdir().unwrap();
    let short = write_token_file(&directory.path().join("short"), "bob:secret\n");
    let output = Command::new(agent_binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--token-file", &short])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("line 1") && stderr.contains("at least 16"), "{stderr}");
}

#[test]
fn a_token_file_others_may_read_or_with_a_colon_in_a_secret_is_refused_naming_it() {
    use std::os::unix::fs::PermissionsExt;
    let directory = tempfile::tempdir().unwrap();
    let serve = |path: &str| {
        let args = ["serve", "--listen", "127.0.0.1:0", "--token-file", path];
        Command::new(agent_binary()).args(args).output().unwrap()
    };
    let readable = write_token_file(&directory.path().join("readable"), &format!("a:{ALICE}\n"));
    std::fs::set_permissions(&readable, std::fs::Permissions::from_mode(0o644)).unwrap();
    let output = serve(&readable);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("chmod 600 {readable}")), "{stderr}");

    let colon =
        write_token_file(&directory.path().join("colon"), "# team\na:part-one:part-two-0123\n");
    let output = serve(&colon);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("line 2 of") && stderr.contains("may not contain ':'"), "{stderr}");
}
