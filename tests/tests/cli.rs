//! `whyrefused check` and `whyrefused serve` as a user runs them: real processes, exit codes,
//! readable output and `--json`.

use std::process::{Command, Output};

use serde_json::Value;
use whyrefused_tests::{agent_binary, closed_port};

fn whyrefused(args: &[&str]) -> Output {
    Command::new(agent_binary()).args(args).env("NO_COLOR", "1").output().expect("whyrefused runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn check_of_an_open_port_says_reachable_and_exits_0() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap().to_string();
    let output = whyrefused(&["check", &target]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.starts_with("✓ reachable"), "{text}");
    assert!(text.contains(&format!("{target} ")) && text.contains("open"), "{text}");
}

#[test]
fn check_of_a_closed_port_says_port_closed_and_exits_1() {
    let target = format!("127.0.0.1:{}", closed_port());
    let output = whyrefused(&["check", &target]);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(text.starts_with("✗ port_closed"), "{text}");
    assert!(text.contains("refused") && text.contains("ECONNREFUSED"), "{text}");
    assert!(!text.contains('\u{1b}'), "no colour when not on a terminal");
}

#[test]
fn check_json_holds_target_dns_attempts_and_verdict() {
    let port = closed_port();
    let output = whyrefused(&[
        "check",
        "localhost",
        "--port",
        &port.to_string(),
        "--timeout-ms",
        "800",
        "--json",
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let json: Value = serde_json::from_str(&stdout(&output)).expect("stdout is one JSON document");

    assert_eq!(json["target"]["host"], "localhost");
    assert_eq!(json["target"]["port"], port);
    assert_eq!(json["target"]["port_source"], "option");
    assert_eq!(json["timeout_ms"], 800);
    assert_eq!(json["dns"]["method"], "system");
    assert_eq!(json["dns"]["status"], "ok");
    let attempts = json["attempts"].as_array().expect("attempts is a list");
    assert_eq!(attempts.len(), json["dns"]["addresses"].as_array().unwrap().len());
    for attempt in attempts {
        assert_eq!(attempt["port"], port);
        assert_eq!(attempt["state"], "refused", "{attempt}");
        assert!(["ipv4", "ipv6"].contains(&attempt["family"].as_str().unwrap()));
        assert!(attempt["address"].as_str().unwrap().parse::<std::net::IpAddr>().is_ok());
        assert!(attempt["elapsed_ms"].as_f64().unwrap() >= 0.0);
    }
    assert_eq!(json["verdict"]["cause"], "port_closed");
    assert!(json["verdict"]["summary"].as_str().unwrap().contains(&port.to_string()));
    assert_eq!(json["outcome"], "completed");
}

#[test]
fn invalid_targets_exit_2_with_a_precise_message() {
    for (target, says) in [
        ("db.internal:0", "1 to 65535"),
        ("[::1:80", "unclosed '['"),
        ("db internal:80", "bad character ' '"),
        ("foo://host", "no well-known port"),
        ("db.internal", "db.internal:PORT"),
    ] {
        let output = whyrefused(&["check", target]);
        assert_eq!(output.status.code(), Some(2), "{target}");
        assert!(stderr(&output).contains(says), "{target}: {}", stderr(&output));
        assert!(stdout(&output).is_empty(), "nothing on stdout for {target}");
    }
    let output = whyrefused(&["check", "127.0.0.1:1", "--timeout-ms", "0"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("timeout_ms"), "{}", stderr(&output));
}

#[test]
fn serve_refuses_a_non_loopback_address() {
    let output = whyrefused(&["serve", "--listen", "0.0.0.0:0"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("refusing to listen on 0.0.0.0:0"), "{}", stderr(&output));
}

#[test]
fn serve_refuses_a_bad_policy_rule_with_a_precise_message() {
    let output = whyrefused(&["serve", "--listen", "127.0.0.1:0", "--deny", "10.0.0.0/33"]);
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert!(text.contains("prefix 33 is longer than 32 bits for an IPv4 network"), "{text}");
    let output = whyrefused(&["serve", "--listen", "127.0.0.1:0", "--allow-ports", "22,,80"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("has an empty item"), "{}", stderr(&output));
}
