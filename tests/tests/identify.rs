//! `whyrefused scan --identify` and `check` naming what answers, as a user runs them, against
//! loopback servers that send real greeting bytes.

use std::io::Write;
use std::net::TcpListener;
use std::process::Command;

use serde_json::Value;
use whyrefused_tests::{agent_binary, http_server};

/// A loopback server that greets every connection as OpenSSH does; returns its port.
fn ssh_greeter() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let _ = stream.write_all(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n");
        }
    });
    port
}

fn run(args: &[&str]) -> (Option<i32>, Value) {
    let output = Command::new(agent_binary()).args(args).output().expect("whyrefused runs");
    let text = String::from_utf8_lossy(&output.stdout);
    let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("JSON ({e}): {text}"));
    (output.status.code(), json)
}

#[test]
fn scan_identify_names_what_answers_on_each_open_port() {
    let http =
        http_server("HTTP/1.1 404 Not Found\r\nServer: nginx/1.22.1\r\nContent-Length: 0\r\n\r\n");
    let ssh = ssh_greeter();
    let ports = format!("{http},{ssh}");
    let (code, report) = run(&["scan", "127.0.0.1", "--ports", &ports, "--identify", "--json"]);
    assert_eq!(code, Some(0));
    let services = report["services"].as_array().expect("services");
    let named = |port: u16| {
        services
            .iter()
            .find(|s| s["address"] == format!("127.0.0.1:{port}"))
            .map(|s| (s["protocol"].as_str().unwrap().to_string(), s["detail"].clone()))
    };
    assert_eq!(named(http), Some(("http".into(), "Server: nginx/1.22.1".into())));
    assert_eq!(named(ssh), Some(("ssh".into(), "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3".into())));
}

#[test]
fn a_redis_target_reaching_ssh_is_the_wrong_service() {
    let ssh = ssh_greeter();
    let target = format!("redis://127.0.0.1:{ssh}");
    let (code, report) = run(&["check", &target, "--no-trace", "--json"]);
    assert_eq!(code, Some(1));
    assert_eq!(report["verdict"]["cause"], "wrong_service", "{report}");
    let summary = report["verdict"]["summary"].as_str().unwrap();
    assert!(summary.contains("what answers is SSH (SSH-2.0-OpenSSH_9.2p1"), "{summary}");
    assert!(summary.contains("not Redis"), "{summary}");
}
