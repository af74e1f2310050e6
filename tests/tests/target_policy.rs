//! Hostile targets against real processes: a joined agent is no open proxy (the default deny
//! rules, loopback included, checked where the target resolves; what needs no resolution checked
//! at the hub first, each denial naming where it was made), a URL path cannot inject lines into
//! the HTTP request sent after a connect, a user name or password in a target reaches no log or
//! client, and a hostile port spec or fingerprint is a clear error.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use whyrefused_shared::{AgentMessage, ClientMessage, ErrorCode, RequestId, ScanRequest};
use whyrefused_tests::lab_check::wait_online_in;
use whyrefused_tests::{Agent, Client, Host, Lab, agent_binary, write_token_file};

const SECRET: &str = "policy-secret-0123456789abcdef";

/// The agent token line of the joined agent `name`.
fn agent_token(name: &str) -> String {
    format!("{name}:{name}-agent-0123456789abcdef:agent\n")
}

/// The hub's token file: the team's client token ([`SECRET`]) and the agent tokens of `app1`
/// and `app2`, readable by its owner only (as a token file must be).
fn token_file(directory: &tempfile::TempDir) -> String {
    let text = format!("team:{SECRET}\n{}{}", agent_token("app1"), agent_token("app2"));
    write_token_file(&directory.path().join("tokens"), &text)
}

/// A `whyrefused` command run in a lab host.
fn whyrefused_in(lab: &Lab, host: &Host, args: &[&str]) -> Output {
    lab.run(host, agent_binary().to_str().expect("a UTF-8 path"), args)
}

/// In a lab host (its own loopback, no route anywhere, so nothing a regression would send can
/// leave it): a hub on 127.0.0.1:7070 that allows only ports 80 and 7900 and denies
/// 192.0.2.0/24, `app1` joined to it with the default rules, `app2` with `--allow-loopback`,
/// and a listener the test owns on 127.0.0.1:7900 that records every connection.
struct Place {
    lab: Lab,
    host: Host,
    tokens: String,
    recorded: std::path::PathBuf,
    _directory: tempfile::TempDir,
}

impl Place {
    fn start() -> Place {
        let directory = tempfile::tempdir().expect("a temporary directory");
        let tokens = token_file(&directory);
        let recorded = directory.path().join("connections");
        let mut lab = Lab::new();
        let host = lab.host("box");
        let binary = agent_binary();
        let binary = binary.to_str().unwrap();
        let recorder = recorded.to_str().unwrap();
        lab.spawn(&host, env!("CARGO_BIN_EXE_lab-server"), &["record", recorder, "127.0.0.1:7900"]);
        let hub = ["serve", "--listen", "127.0.0.1:7070", "--token-file", &tokens];
        let rules = ["--allow-ports", "80,7900", "--deny", "192.0.2.0/24"];
        lab.spawn(&host, binary, &[&hub[..], &rules].concat());
        lab.wait_listening(&host, 7070);
        for (name, port, extra) in
            [("app1", "7071", None), ("app2", "7072", Some("--allow-loopback"))]
        {
            let listen = format!("127.0.0.1:{port}");
            let own = write_token_file(&directory.path().join(name), &agent_token(name));
            let join = ["--join", "ws://127.0.0.1:7070"];
            let args = [&["serve", "--listen", &listen, "--token-file", &own][..], &join].concat();
            lab.spawn(&host, binary, &[&args[..], extra.as_slice()].concat());
        }
        lab.wait_listening(&host, 7900);
        let place = Place { lab, host, tokens, recorded, _directory: directory };
        place.wait_online(&["app1", "app2", "local"]);
        place
    }

    fn via(&self) -> [&str; 4] {
        ["--via", "ws://127.0.0.1:7070", "--token-file", &self.tokens]
    }

    fn wait_online(&self, names: &[&str]) {
        wait_online_in(&self.lab, &self.host, &self.via(), names, Duration::from_secs(10));
    }

    /// `check TARGET --from FROM --json` through the hub.
    fn check(&self, target: &str, from: &str) -> Output {
        let check = ["check", target, "--from", from, "--timeout-ms", "1000", "--json"];
        whyrefused_in(&self.lab, &self.host, &[&check[..], &self.via()].concat())
    }

    /// The one vantage point's report of `check TARGET --from FROM`.
    fn report(&self, target: &str, from: &str) -> serde_json::Value {
        let output = self.check(target, from);
        let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!("no JSON ({e}): {}", String::from_utf8_lossy(&output.stderr))
        });
        let vantage = &json["vantages"][0];
        assert_eq!(vantage["vantage"], from, "{json}");
        vantage["report"].clone()
    }

    /// The connections the listener on 127.0.0.1:7900 has seen.
    fn connections(&self) -> usize {
        std::fs::read_to_string(&self.recorded).expect("the record file").lines().count()
    }
}

#[test]
fn a_joined_agent_is_no_open_proxy_and_each_denial_names_the_rule_and_the_place() {
    let place = Place::start();

    // app1 denies its own loopback and the metadata service, by the default rules, and sends
    // nothing: its report has no connect attempt and the listener saw no connection.
    for (target, rule) in [
        ("127.0.0.1:7900", "default rule \"loopback 127.0.0.0/8\""),
        ("169.254.169.254:80", "default rule \"link-local 169.254.0.0/16\""),
    ] {
        let report = place.report(target, "app1");
        let verdict = &report["verdict"];
        assert_eq!(verdict["cause"], "policy_denied", "{target}: {report}");
        assert!(verdict["summary"].as_str().unwrap().contains(rule), "{target}: {verdict}");
        assert_eq!(report["attempts"], serde_json::json!([]), "{target}: nothing was sent");
    }
    assert_eq!(place.connections(), 0, "nothing connected to the listener");

    // The hub decides what needs no resolution before forwarding anything, and says it did.
    for (target, rule) in [
        ("192.0.2.1:80", "192.0.2.1 is denied by --deny 192.0.2.0/24"),
        ("db.example:7901", "port 7901 is not in --allow-ports 80,7900"),
    ] {
        let output = place.check(target, "app1");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{target}");
        assert!(stderr.contains("the hub (") && stderr.contains("before forwarding"), "{stderr}");
        assert!(stderr.contains(rule), "{stderr}");
    }

    // With --allow-loopback, app2 checks its own loopback (the listener closes at once).
    let report = place.report("127.0.0.1:7900", "app2");
    assert_eq!(report["attempts"][0]["state"], "open", "{report}");
    let start = Instant::now();
    while place.connections() == 0 {
        assert!(start.elapsed() < Duration::from_secs(5), "app2's connect never arrived");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A loopback listener the test owns that answers one HTTP request and hands back its bytes.
fn recording_http_server() -> (u16, std::thread::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut reader = BufReader::new(stream);
        let mut received = Vec::new();
        loop {
            let mut line = Vec::new();
            if reader.read_until(b'\n', &mut line).unwrap_or(0) == 0 {
                break;
            }
            received.extend_from_slice(&line);
            if line == b"\r\n" {
                break;
            }
        }
        let _ = reader.get_mut().write_all(b"HTTP/1.1 204 No Content\r\n\r\n");
        let mut rest = Vec::new();
        let _ = reader.read_to_end(&mut rest);
        received
    });
    (port, server)
}

#[test]
fn a_url_path_cannot_inject_lines_into_the_http_request() {
    let (port, server) = recording_http_server();
    let target = format!("http://127.0.0.1:{port}/\r\nCONFIG SET dir /tmp\r\nx");
    let output = Command::new(agent_binary()).args(["check", &target]).output().unwrap();
    let received = String::from_utf8(server.join().unwrap()).unwrap();
    let lines: Vec<&str> = received.split("\r\n").collect();
    assert_eq!(lines[0], "GET /%0D%0ACONFIG%20SET%20dir%20/tmp%0D%0Ax HTTP/1.1", "{received:?}");
    assert!(!received.contains("\r\nCONFIG"), "{received:?}");
    assert!(
        lines.iter().skip(1).all(|line| line.is_empty() || line.contains(": ")),
        "{received:?}"
    );
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

#[test]
fn a_user_name_or_password_in_a_target_is_refused_on_the_command_line_without_being_shown() {
    for target in ["admin:hunter2secret@127.0.0.1:5432", "postgres://admin:hunter2secret@db/app"] {
        let output = Command::new(agent_binary()).args(["check", target]).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("user name or password"), "{stderr}");
        let shown = format!("{stderr}{}", String::from_utf8_lossy(&output.stdout));
        assert!(!shown.contains("hunter2secret") && !shown.contains("admin"), "{shown}");
    }
}

#[tokio::test]
async fn a_user_name_or_password_sent_to_an_agent_reaches_neither_its_log_nor_the_client() {
    let directory = tempfile::tempdir().unwrap();
    let log = directory.path().join("agent.log");
    let agent = Agent::start_logged(&[], &log);
    let mut client = Client::connect(&agent).await;
    let request = whyrefused_shared::CheckRequest::new("admin:hunter2secret@127.0.0.1:5432");
    client.start_check(1, request).await;
    let AgentMessage::Error { code, message, .. } = client.recv().await else {
        panic!("the request was not refused");
    };
    assert_eq!(code, ErrorCode::InvalidTarget);
    assert!(message.contains("write 127.0.0.1:5432"), "{message}");
    assert!(!message.contains("hunter2secret") && !message.contains("admin"), "{message}");
    // A request that follows is answered: the refusal is logged (or not) by then.
    client.send(&ClientMessage::Cancel { id: RequestId(9) }).await;
    assert!(matches!(client.recv().await, AgentMessage::Error { .. }));
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(!logged.contains("hunter2secret"), "{logged}");
}

#[tokio::test]
async fn a_port_spec_of_too_many_items_is_refused_with_the_cap_and_the_agent_answers_at_once() {
    let agent = Agent::start();
    let mut client = Client::connect(&agent).await;
    // 60 KiB of "-,-,-,…": each item once meant a whole range of work.
    let spec = vec!["-"; 30_000].join(",");
    client.start_scan(1, ScanRequest::new("127.0.0.1", &spec)).await;
    let AgentMessage::Error { code, message, .. } = client.recv().await else {
        panic!("the scan was not refused");
    };
    assert_eq!(code, ErrorCode::InvalidPorts);
    assert!(message.contains("30000 items") && message.contains("1024 allowed"), "{message}");
    assert!(message.len() < 300, "the spec is not echoed back: {message}");
}

#[test]
fn a_fingerprint_with_a_multibyte_character_is_invalid_input_not_a_crash() {
    let fingerprint = format!("{}é", "a".repeat(62));
    let output = Command::new(agent_binary())
        .args(["agents", "--via", "wss://127.0.0.1:1", "--tls-fingerprint", &fingerprint])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("64 hexadecimal digits") && !stderr.contains("panicked"), "{stderr}");
}
