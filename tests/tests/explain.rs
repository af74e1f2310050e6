//! `whyrefused explain` as a user runs it: a real error message pasted as an argument or piped
//! in, the targets it names checked on loopback, the exit code and `--json`.

use std::io::Write;
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use whyrefused_tests::{agent_binary, closed_port};

fn explain(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(agent_binary())
        .arg("explain")
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("whyrefused runs");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).expect("write stdin");
    }
    drop(input);
    child.wait_with_output().expect("whyrefused ends")
}

fn json(output: &Output) -> Value {
    let text = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("one JSON document ({e}): {text}"))
}

#[test]
fn node_on_ipv6_loopback_against_a_service_on_127_0_0_1_only_says_exactly_that() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let error = format!(
        "Error: connect ECONNREFUSED ::1:{port}\n    at TCPConnectWrap.afterConnect [as \
         oncomplete] (node:net:1555:16) {{\n  errno: -111,\n  code: 'ECONNREFUSED',\n  \
         syscall: 'connect',\n  address: '::1',\n  port: {port}\n}}"
    );
    let output = explain(&["--json", &error], None);
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stderr));
    let report = json(&output);
    assert_eq!(
        report["recognised"],
        serde_json::json!([{"kind": "node", "host": "::1", "port": port,
                            "text": format!("connect ECONNREFUSED ::1:{port}")}])
    );
    let check = &report["checks"][0];
    assert_eq!(check["target"]["host"], "::1");
    assert_eq!(check["verdict"]["cause"], "loopback_only");
    let summary = check["verdict"]["summary"].as_str().unwrap();
    assert_eq!(
        summary,
        format!(
            "Node.js connected to ::1 (IPv6), but the service on port {port} listens on \
             127.0.0.1:{port} only (IPv4): nothing listens on ::1, so it was refused."
        )
    );
    let first = check["verdict"]["suggestions"][0].as_str().unwrap();
    assert!(first.contains("nodejs/node#40702"), "{first}");
}

#[test]
fn piped_text_with_several_targets_checks_each_and_exits_with_the_worst() {
    let open = TcpListener::bind("127.0.0.1:0").unwrap();
    let open_port = open.local_addr().unwrap().port();
    let closed = closed_port();
    let log = format!(
        "2026-12-02T04:00:00Z INFO starting, DATABASE_URL=postgres://app:hunter2@127.0.0.1:{open_port}/app\n\
         2026-12-02T04:00:01Z ERROR cache: dial tcp 127.0.0.1:{closed}: connect: connection refused\n"
    );
    let output = explain(&["--json", "--no-trace"], Some(&log));
    assert_eq!(output.status.code(), Some(1), "one target is closed: the worst code wins");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!stdout.contains("hunter2") && !stdout.contains("app:"), "no userinfo: {stdout}");
    let report = json(&output);
    let kinds: Vec<&str> = report["recognised"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["url", "go"]);
    let causes: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["verdict"]["cause"].as_str().unwrap())
        .collect();
    assert_eq!(causes, ["reachable", "port_closed"]);
    drop(open);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn the_readable_report_says_who_said_it_and_what_was_tried() {
    let open = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = open.local_addr().unwrap().port();
    let error = format!(
        "System.Net.Http.HttpRequestException: No connection could be made because the target \
         machine actively refused it. (127.0.0.1:{port})"
    );
    let output = explain(&[&error], None);
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.starts_with("The text names 1 place:\n"), "{text}");
    assert!(text.contains(&format!("127.0.0.1 port {port} (IPv4): .NET said")), "{text}");
    assert!(text.contains("✓ reachable"), "{text}");
}

#[test]
fn a_host_without_a_port_says_what_is_missing_and_exits_2() {
    let output = explain(&["curl: (6) Could not resolve host: api.internal"], None);
    assert_eq!(output.status.code(), Some(2));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("api.internal, port not named: curl said"), "{text}");
    assert!(text.contains("whyrefused check api.internal:PORT"), "{text}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("names no complete target"), "{stderr}");
}

#[test]
fn text_that_names_nothing_exits_2_without_echoing_it() {
    let output = explain(&[], Some("everything is fine, secret=s3cr3t-token\n"));
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("names no host and port"), "{stderr}");
    assert!(!stderr.contains("s3cr3t"), "{stderr}");
}

#[test]
fn a_name_in_etc_hosts_is_named_as_the_source_of_the_address() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let error = format!(
        "curl: (7) Failed to connect to localhost port {port} after 0 ms: Couldn't connect to server"
    );
    let output = explain(&["--json", "--no-trace", &error], None);
    let report = json(&output);
    let evidence = report["checks"][0]["verdict"]["evidence"].as_array().unwrap();
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    let listed = hosts
        .lines()
        .map(|line| line.split('#').next().unwrap_or_default())
        .any(|line| line.split_whitespace().skip(1).any(|name| name == "localhost"));
    let named = evidence.iter().any(|e| {
        e["probe"] == "/etc/hosts" && e["result"].as_str().unwrap().starts_with("gives localhost ")
    });
    assert_eq!(named, listed, "{evidence:?}");
}

#[test]
fn a_connection_string_whose_port_an_http_server_holds_is_the_wrong_service() {
    let server = whyrefused_tests::http_server(
        "HTTP/1.1 400 Bad Request\r\nServer: nginx/1.22.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    let error = format!(
        "sqlalchemy.exc.OperationalError: (psycopg2.OperationalError) server closed the \
         connection unexpectedly, DATABASE_URL=postgresql://app:pw@127.0.0.1:{server}/app"
    );
    let output = explain(&["--json", "--no-trace", &error], None);
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stderr));
    let report = json(&output);
    let check = &report["checks"][0];
    assert_eq!(check["verdict"]["cause"], "wrong_service", "{check}");
    let summary = check["verdict"]["summary"].as_str().unwrap();
    assert!(
        summary.contains("what answers is HTTP (Server: nginx/1.22.1), not PostgreSQL"),
        "{summary}"
    );
    let service = check["findings"].as_array().unwrap().iter().find(|f| f["probe"] == "service");
    let service = service.expect("a service finding");
    assert_eq!(
        (&service["protocol"], &service["expected"]),
        (&"http".into(), &"postgresql".into())
    );
}
