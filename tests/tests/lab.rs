//! Real network faults in a namespace lab: a client host and a server host on one link, with
//! the server's firewall and services set per scenario. `whyrefused check` runs on the client,
//! and each test asserts the cause and the evidence behind it.

use serde_json::Value;
use whyrefused_tests::{Host, Lab, agent_binary};

const CLIENT: &str = "10.0.1.1/24";
const SERVER: &str = "10.0.1.2";

/// A client and a server on one link.
fn two_hosts() -> (Lab, Host, Host) {
    let mut lab = Lab::new();
    let client = lab.host("client");
    let server = lab.host("server");
    lab.link(&client, CLIENT, &server, &format!("{SERVER}/24"));
    (lab, client, server)
}

/// Runs `whyrefused check TARGET --json ARGS` on `host` and parses the report.
fn check(lab: &Lab, host: &Host, target: &str, args: &[&str]) -> Value {
    let binary = agent_binary();
    let mut all = vec!["check", target, "--json"];
    all.extend_from_slice(args);
    let output = lab.run(host, binary.to_str().expect("a UTF-8 path"), &all);
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn cause(report: &Value) -> &str {
    report["verdict"]["cause"].as_str().unwrap_or("(none)")
}

#[test]
fn nothing_listening_is_port_closed() {
    let (lab, client, _server) = two_hosts();
    let report = check(&lab, &client, &format!("{SERVER}:80"), &[]);
    assert_eq!(cause(&report), "port_closed", "{report:#}");
    assert_eq!(report["attempts"][0]["state"], "refused");
}

#[test]
fn a_dropping_firewall_is_filtered() {
    let (lab, client, server) = two_hosts();
    lab.sh(&server, "iptables -A INPUT -p tcp --dport 80 -j DROP");
    let report = check(&lab, &client, &format!("{SERVER}:80"), &["--timeout-ms", "500"]);
    assert_eq!(cause(&report), "filtered", "{report:#}");
    assert_eq!(report["attempts"][0]["state"], "timeout");
}

#[test]
fn a_listening_service_is_reachable() {
    let (mut lab, client, server) = two_hosts();
    lab.spawn(&server, env!("CARGO_BIN_EXE_lab-server"), &["hold", &format!("{SERVER}:80")]);
    lab.wait_listening(&server, 80);
    let report = check(&lab, &client, &format!("{SERVER}:80"), &[]);
    assert_eq!(cause(&report), "reachable", "{report:#}");
}
