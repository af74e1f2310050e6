//! A reachable agent over TLS: a self-signed certificate made once and kept, its fingerprint
//! printed for clients to pin, a client with the right pin gets through and one with a wrong
//! pin does not, an operator's own certificate (made here with openssl) works the same, and an
//! agent refuses to listen beyond loopback without TLS. Everything stays on loopback.

use std::process::Command;

use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{Connector, connect_async_tls_with_config};
use whyrefused::server::tls::{parse_fingerprint, pinned_client_config};
use whyrefused_shared::{
    AgentMessage, CheckRequest, ClientMessage, PROTOCOL_VERSION, RequestId, Step,
};
use whyrefused_tests::{Agent, agent_binary, certificates, closed_port, write_token_file};

const TOKEN: &str = "tls-0123456789abcdef";

/// A token file (and the directory holding it, removed when dropped).
fn token_file() -> (tempfile::TempDir, String) {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = write_token_file(&directory.path().join("tokens"), &format!("ops:{TOKEN}\n"));
    (directory, path)
}

/// Opens `wss://` to the agent trusting only the certificate with `pin`, says hello with the
/// token, runs a check of a closed loopback port and returns its cause.
async fn check_over_tls(agent: &Agent, pin: &str) -> Result<String, String> {
    let config = pinned_client_config(parse_fingerprint(pin).map_err(|e| e.to_string())?);
    let request = agent.ws_url().into_client_request().unwrap();
    let (mut socket, _) =
        connect_async_tls_with_config(request, None, true, Some(Connector::Rustls(config)))
            .await
            .map_err(|e| e.to_string())?;
    let send = |message: &ClientMessage| Message::text(serde_json::to_string(message).unwrap());
    let hello = ClientMessage::Hello {
        protocol: PROTOCOL_VERSION,
        client: "tests".into(),
        token: Some(TOKEN.into()),
    };
    socket.send(send(&hello)).await.unwrap();
    let request = CheckRequest::new(format!("127.0.0.1:{}", closed_port()));
    let check = ClientMessage::Check { id: RequestId(1), request, from: None, origin: None };
    socket.send(send(&check)).await.unwrap();
    while let Some(Ok(frame)) = socket.next().await {
        let Message::Text(text) = frame else { continue };
        match serde_json::from_str::<AgentMessage>(&text).unwrap() {
            AgentMessage::Event { event, .. } => {
                if let Step::Verdict { verdict } = event.step {
                    return Ok(verdict.cause.as_str().to_string());
                }
            }
            AgentMessage::Error { message, .. } => return Err(message),
            _ => {}
        }
    }
    Err("the socket ended before a verdict".into())
}

#[tokio::test]
async fn a_self_signed_agent_serves_clients_that_pin_its_fingerprint_and_keeps_its_certificate() {
    let (directory, tokens) = token_file();
    let state = directory.path().join("state");
    let args =
        ["--token-file", &tokens, "--tls-self-signed", "--state-dir", state.to_str().unwrap()];
    let agent = Agent::start_with(&args);
    let pin = agent.fingerprint.clone().expect("a TLS agent prints its fingerprint");
    assert!(agent.url().starts_with("https://"));

    assert_eq!(check_over_tls(&agent, &pin).await, Ok("port_closed".to_string()));
    let wrong = "00:".repeat(31) + "00";
    let refused = check_over_tls(&agent, &wrong).await.expect_err("a wrong pin is refused");
    assert!(refused.contains("not the pinned one"), "{refused}");

    drop(agent);
    let again = Agent::start_with(&args);
    assert_eq!(again.fingerprint.as_deref(), Some(pin.as_str()), "the same certificate");
}

#[tokio::test]
async fn an_operators_own_certificate_serves_and_its_fingerprint_matches_openssl() {
    let (directory, tokens) = token_file();
    let made = certificates::with_openssl(directory.path(), "localhost", "IP:127.0.0.1");
    let (cert, key, expected) = (made.cert, made.key, made.fingerprint);

    let agent = Agent::start_with(&[
        "--token-file",
        &tokens,
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    assert_eq!(agent.fingerprint.as_deref(), Some(expected.as_str()), "as openssl computes it");
    assert_eq!(check_over_tls(&agent, &expected).await, Ok("port_closed".to_string()));
}

#[test]
fn beyond_loopback_an_agent_needs_tls_as_well_as_tokens() {
    let (_directory, tokens) = token_file();
    let output = Command::new(agent_binary())
        .args(["serve", "--listen", "0.0.0.0:0", "--token-file", &tokens])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("without TLS") && stderr.contains("--tls-self-signed"), "{stderr}");
}

#[test]
fn a_tls_key_others_may_read_is_refused_naming_it_and_the_fix() {
    use std::os::unix::fs::PermissionsExt;
    let (directory, tokens) = token_file();
    let made = certificates::with_openssl(directory.path(), "localhost", "IP:127.0.0.1");
    std::fs::set_permissions(&made.key, std::fs::Permissions::from_mode(0o640)).unwrap();
    let (cert, key) = (made.cert.to_str().unwrap(), made.key.to_str().unwrap());
    let output = Command::new(agent_binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--token-file", &tokens])
        .args(["--tls-cert", cert, "--tls-key", key])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("the TLS key {key}")), "{stderr}");
    assert!(stderr.contains(&format!("chmod 600 {key}")), "{stderr}");
}
