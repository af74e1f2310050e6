//! The service's own failures, as `whyrefused check` reports them: HTTP statuses from small
//! loopback servers run here (200, a redirect, 404, 401, 503 with a text body, 500 then 200
//! across retries, an expected status), a response reset after its headers, and openssl
//! `s_server`s that want a client certificate (TLS 1.2 and 1.3) or speak only TLS 1.0; with
//! exit codes (only `reachable` exits 0) and `--json`. Every server is on loopback.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use whyrefused_tests::{agent_binary, certificates};

fn whyrefused(args: &[&str]) -> Output {
    Command::new(agent_binary()).args(args).env("NO_COLOR", "1").output().expect("whyrefused runs")
}

/// `check --json` of `target` with `more` arguments: the exit code and the report.
fn check_json(target: &str, more: &[&str]) -> (Option<i32>, Value) {
    let output = whyrefused(&[&["check", target, "--json", "--timeout-ms", "2000"], more].concat());
    let text = String::from_utf8_lossy(&output.stdout);
    let json = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{e}: {text} {}", String::from_utf8_lossy(&output.stderr)));
    (output.status.code(), json)
}

/// The HTTP report of the first connection that opened.
fn http_of(report: &Value) -> &Value {
    let findings = report["findings"].as_array().expect("findings");
    let after = findings.iter().find(|f| f["probe"] == "after_connect").expect("after_connect");
    &after["http"]
}

fn verdict_text(report: &Value) -> String {
    report["verdict"].to_string()
}

/// A loopback HTTP server whose `n`th connection (from 0) gets `answer(n)` after its request;
/// it serves until the test ends. Returns its port.
fn http_server(answer: impl Fn(usize) -> Vec<u8> + Send + 'static) -> u16 {
    serve(move |n, mut stream| {
        let _ = stream.write_all(&answer(n));
    })
}

/// A loopback server that reads each connection's request, then hands the connection to
/// `handle` with its number.
fn serve(handle: impl Fn(usize, TcpStream) + Send + 'static) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    let count = Arc::new(AtomicUsize::new(0));
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = stream.read(&mut [0; 4096]);
            handle(count.fetch_add(1, Ordering::SeqCst), stream);
        }
    });
    port
}

fn response(status_line: &str, headers: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status_line}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[test]
fn a_200_is_reachable_and_exits_0() {
    let port = http_server(|_| response("200 OK", "Server: test/1\r\n", "fine\n"));
    let (code, report) = check_json(&format!("http://127.0.0.1:{port}/"), &[]);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["verdict"]["cause"], "reachable");
    let http = http_of(&report);
    assert_eq!((http["status"].as_u64(), http["reason"].as_str()), (Some(200), Some("OK")));
    assert!(verdict_text(&report).contains("answered 200 OK"), "{report}");
}

#[test]
fn a_301_is_reachable_showing_its_location_and_followed_only_when_asked() {
    let port = http_server(|_| response("301 Moved Permanently", "Location: /new\r\n", ""));
    let target = format!("http://127.0.0.1:{port}/old");
    let (code, report) = check_json(&target, &[]);
    assert_eq!((code, &report["verdict"]["cause"]), (Some(0), &Value::from("reachable")));
    assert!(verdict_text(&report).contains("redirecting to /new (not followed)"), "{report}");
    let http = http_of(&report);
    assert_eq!(http["headers"][0], serde_json::json!({"name": "Location", "value": "/new"}));

    // Followed: /old → /new, which this server answers with a 200.
    let port = http_server(|n| match n {
        0 => response("301 Moved Permanently", "Location: /new\r\n", ""),
        _ => response("200 OK", "", "arrived\n"),
    });
    let (code, report) = check_json(&format!("http://127.0.0.1:{port}/old"), &["--follow"]);
    assert_eq!(code, Some(0), "{report}");
    let http = http_of(&report);
    assert_eq!(http["status"], 200);
    assert_eq!(http["redirects"], serde_json::json!([{"status": 301, "location": "/new"}]));
    assert!(verdict_text(&report).contains("after 1 redirect (→ /new)"), "{report}");
}

#[test]
fn a_404_is_reachable_with_a_note_that_the_path_is_wrong() {
    let port = http_server(|_| response("404 Not Found", "", "no such page\n"));
    let (code, report) = check_json(&format!("http://127.0.0.1:{port}/missing"), &[]);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["verdict"]["cause"], "reachable");
    let summary = report["verdict"]["summary"].as_str().unwrap();
    assert!(summary.contains("/missing does not exist on it"), "{summary}");
    let evidence = report["verdict"]["evidence"].as_array().unwrap();
    assert!(evidence.iter().any(|e| e["probe"] == "note"), "{evidence:?}");
}

#[test]
fn a_401_with_www_authenticate_basic_is_access_denied_and_exits_1() {
    let challenge = "WWW-Authenticate: Basic realm=\"ops\"\r\n";
    let port = http_server(move |_| response("401 Unauthorized", challenge, ""));
    let (code, report) = check_json(&format!("http://127.0.0.1:{port}/"), &[]);
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(report["verdict"]["cause"], "access_denied");
    let summary = report["verdict"]["summary"].as_str().unwrap();
    assert!(summary.ends_with("it wants credentials (Basic authentication)."), "{summary}");
}

#[test]
fn a_503_with_a_text_body_is_a_server_error_naming_the_server_the_body_and_the_process() {
    let port = http_server(|_| {
        let headers = "Server: shop/2.1\r\nContent-Type: text/plain\r\nRetry-After: 30\r\n";
        response("503 Service Unavailable", headers, "database pool exhausted\nretry later\n")
    });
    let (code, report) = check_json(&format!("http://127.0.0.1:{port}/"), &[]);
    assert_eq!(code, Some(1), "{report}");
    let verdict = &report["verdict"];
    assert_eq!(verdict["cause"], "server_error");
    let summary = verdict["summary"].as_str().unwrap();
    assert!(
        summary.starts_with(&format!(
            "The network path and the connection to port {port} of 127.0.0.1 are fine; the \
             service answered 503 Service Unavailable (Server: shop/2.1, first byte after "
        )) && summary.ends_with("look at its logs. It says: \"database pool exhausted\"."),
        "{summary}"
    );
    let http = http_of(&report);
    assert_eq!(http["body_first_line"], "database pool exhausted");
    assert!(http["first_byte_us"].as_u64().is_some());
    // The server runs in this test's process, on this host: the verdict names it.
    let pid = format!("pid {}", std::process::id());
    let suggestions = verdict["suggestions"].to_string();
    assert!(suggestions.contains(&pid), "{suggestions}");
    assert!(suggestions.contains("Retry-After: 30"), "{suggestions}");

    let text = String::from_utf8_lossy(
        &whyrefused(&["check", &format!("http://127.0.0.1:{port}/")]).stdout,
    )
    .into_owned();
    assert!(text.starts_with("✗ server_error The network path"), "{text}");
    assert!(text.contains("http Server") && text.contains("shop/2.1"), "{text}");
}

#[test]
fn a_500_then_a_200_across_retries_is_an_intermittent_server_error() {
    let port = http_server(|n| match n {
        0 => response("500 Internal Server Error", "", "boom\n"),
        _ => response("200 OK", "", "fine\n"),
    });
    let target = format!("http://127.0.0.1:{port}/");
    let (code, report) = check_json(&target, &["--retries", "1", "--retry-delay-ms", "10"]);
    assert_eq!(code, Some(1), "{report}");
    let verdict = &report["verdict"];
    assert_eq!(
        (&verdict["cause"], &verdict["pattern"]),
        (&"server_error".into(), &"intermittent".into())
    );
    let summary = verdict["summary"].as_str().unwrap();
    assert!(
        summary.starts_with(
            "Intermittent server error: the service answered 500 in 1 of 2 rounds; the \
             network path worked in every round."
        ),
        "{summary}"
    );
    let rounds: Vec<Option<u64>> =
        report["rounds"].as_array().unwrap().iter().map(|r| r["http_status"].as_u64()).collect();
    assert_eq!(rounds, [Some(500), Some(200)]);
}

#[test]
fn expect_status_makes_any_other_status_unexpected_and_an_expected_one_reachable() {
    let port = http_server(|_| response("302 Found", "Location: /login\r\n", ""));
    let target = format!("127.0.0.1:{port}");
    let (code, report) = check_json(&target, &["--expect-status", "200,204"]);
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(report["verdict"]["cause"], "unexpected_status");
    assert!(verdict_text(&report).contains("answered 302 Found, not 200 or 204"), "{report}");
    assert_eq!(http_of(&report)["expected_status"], serde_json::json!([200, 204]));

    let (code, report) = check_json(&target, &["--expect-status", "302"]);
    assert_eq!((code, &report["verdict"]["cause"]), (Some(0), &Value::from("reachable")));
    let output = whyrefused(&["check", &target, "--expect-status", "700"]);
    assert_eq!(output.status.code(), Some(2), "an impossible status is invalid input");
}

#[test]
fn a_server_that_resets_after_the_headers_is_an_http_error_naming_the_body_and_bytes() {
    let head = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial";
    let port = serve(move |_, mut stream| {
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.flush();
        std::thread::sleep(Duration::from_millis(50));
        let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    });
    let (code, report) = check_json(&format!("http://127.0.0.1:{port}/"), &["--http"]);
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(report["verdict"]["cause"], "http_error");
    let closed = &http_of(&report)["closed"];
    assert_eq!(closed["during"], "body");
    assert_eq!(closed["how"], "reset");
    assert_eq!(closed["bytes_received"], head.len());
    let summary = report["verdict"]["summary"].as_str().unwrap();
    assert!(
        summary.contains(&format!(
            "the server reset the connection during the body, after {} bytes of the response",
            head.len()
        )),
        "{summary}"
    );

    // Before any byte of the status line, the same hang-up is the server closing at once.
    let port = serve(|_, stream| drop(stream));
    let (code, report) = check_json(&format!("http://127.0.0.1:{port}/"), &[]);
    assert_eq!((code, &report["verdict"]["cause"]), (Some(1), &Value::from("server_closed")));
}

/// An `openssl s_server` on a free loopback port with `args`, killed when dropped.
struct OpensslServer {
    child: Child,
    port: u16,
}

impl OpensslServer {
    /// On 127.0.0.1, on a free port.
    fn start(directory: &Path, args: &[&str]) -> OpensslServer {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        OpensslServer::start_at(directory, SocketAddr::from(([127, 0, 0, 1], port)), args)
    }

    /// On `address`, with a certificate made for localhost.
    fn start_at(directory: &Path, address: SocketAddr, args: &[&str]) -> OpensslServer {
        let made = certificates::with_openssl(directory, "localhost", "IP:127.0.0.1");
        let port = address.port();
        let child = Command::new("openssl")
            .args(["s_server", "-accept", &address.to_string(), "-www", "-quiet"])
            .args(["-cert", made.cert.to_str().unwrap(), "-key", made.key.to_str().unwrap()])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl runs (./dev setup installs it)");
        let start = Instant::now();
        while TcpStream::connect(address).is_err() {
            assert!(start.elapsed() < Duration::from_secs(10), "s_server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        OpensslServer { child, port }
    }

    fn check(&self) -> (Option<i32>, Value) {
        check_json(&format!("https://127.0.0.1:{}/", self.port), &[])
    }
}

impl Drop for OpensslServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tls_of(report: &Value) -> &Value {
    let findings = report["findings"].as_array().expect("findings");
    let after = findings.iter().find(|f| f["probe"] == "after_connect").expect("after_connect");
    &after["tls"]
}

/// With TLS 1.2 the server's alert ends the handshake; with TLS 1.3 the handshake finishes and
/// the alert comes on the first read.
#[test]
fn a_server_demanding_a_client_certificate_is_named_with_tls_1_2_and_1_3() {
    let directory = tempfile::tempdir().unwrap();
    for (version, alert) in [("-tls1_2", "handshake_failure"), ("-tls1_3", "certificate_required")]
    {
        let server = OpensslServer::start(directory.path(), &[version, "-Verify", "1"]);
        let (code, report) = server.check();
        assert_eq!(code, Some(1), "{version}: {report}");
        assert_eq!(report["verdict"]["cause"], "tls_error", "{version}: {report}");
        let tls = tls_of(&report);
        assert_eq!(tls["alert"], alert, "{version}: {tls}");
        assert_eq!(tls["client_certificate_requested"], true, "{version}: {tls}");
        let summary = report["verdict"]["summary"].as_str().unwrap();
        assert!(summary.contains("the server wants a client certificate"), "{version}: {summary}");
        let fixes = report["verdict"]["suggestions"].to_string();
        assert!(fixes.contains("curl --cert client.pem"), "{version}: {fixes}");
    }
}

#[test]
fn a_server_that_speaks_only_tls_1_0_is_named_by_protocol_version() {
    let directory = tempfile::tempdir().unwrap();
    let server =
        OpensslServer::start(directory.path(), &["-tls1", "-cipher", "DEFAULT:@SECLEVEL=0"]);
    let (code, report) = server.check();
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(report["verdict"]["cause"], "tls_error");
    assert_eq!(tls_of(&report)["alert"], "protocol_version", "{report}");
    let summary = report["verdict"]["summary"].as_str().unwrap();
    assert!(summary.contains("speaks only TLS 1.0/1.1"), "{summary}");
    assert!(report["verdict"]["suggestions"].to_string().contains("enable TLS 1.2"), "{report}");
}

/// SNI needs a name: `localhost`, served on each loopback address it resolves to here.
#[test]
fn a_server_without_a_site_for_the_name_sent_in_sni_is_named_by_unrecognized_name() {
    let directory = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addresses: Vec<SocketAddr> = ("localhost", port).to_socket_addrs().unwrap().collect();
    let args = ["-servername", "other.example", "-servername_fatal"];
    let cert = certificates::with_openssl(directory.path(), "other", "DNS:other.example");
    let second = ["-cert2", cert.cert.to_str().unwrap(), "-key2", cert.key.to_str().unwrap()];
    let _servers: Vec<OpensslServer> = addresses
        .iter()
        .map(|address| {
            OpensslServer::start_at(directory.path(), *address, &[&args[..], &second].concat())
        })
        .collect();
    let (code, report) = check_json(&format!("https://localhost:{port}/"), &[]);
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(report["verdict"]["cause"], "tls_error", "{report}");
    assert_eq!(tls_of(&report)["alert"], "unrecognized_name", "{report}");
    let summary = report["verdict"]["summary"].as_str().unwrap();
    assert!(summary.contains("no certificate for the name sent in SNI"), "{summary}");
    let fixes = report["verdict"]["suggestions"].to_string();
    assert!(fixes.contains("no site or certificate for localhost (SNI)"), "{fixes}");
}
