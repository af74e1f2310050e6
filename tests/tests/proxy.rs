//! Checks that follow the proxy variables, as a program does: a small proxy this test runs on
//! loopback answers `CONNECT` with 407, 403 or 502, or is down; `NO_PROXY` sends the check
//! directly; the proxy's password is sent to it and never printed; a serving agent ignores its
//! environment's proxies unless started with `--use-env-proxy`.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use whyrefused_shared::CheckRequest;
use whyrefused_tests::{Agent, Client, agent_binary, closed_port};

/// The proxy variables a test sets itself: any the test runner has are removed.
const PROXY_VARIABLES: [&str; 8] = [
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
];

/// A proxy on loopback that answers every request with `status_line`, and hands each request
/// it received (its head) to the test.
struct FakeProxy {
    port: u16,
    requests: mpsc::Receiver<String>,
}

impl FakeProxy {
    fn answering(status_line: &'static str) -> FakeProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (sender, requests) = mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(16) {
                let Ok(mut stream) = stream else { continue };
                let sender = sender.clone();
                std::thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                    let mut head = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let _ = sender.send(String::from_utf8_lossy(&head).into_owned());
                    let answer = format!(
                        "{status_line}\r\nProxy-Authenticate: Basic realm=\"test\"\r\n\
                         Content-Length: 0\r\n\r\n"
                    );
                    let _ = stream.write_all(answer.as_bytes());
                });
            }
        });
        FakeProxy { port, requests }
    }

    fn request(&self) -> String {
        self.requests.recv_timeout(Duration::from_secs(5)).expect("the proxy got a request")
    }
}

fn check(args: &[&str], env: &[(&str, String)]) -> Output {
    let mut command = Command::new(agent_binary());
    command.arg("check").args(args).env("NO_COLOR", "1");
    for name in PROXY_VARIABLES {
        command.env_remove(name);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("whyrefused runs")
}

fn json(output: &Output) -> Value {
    let text = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("one JSON document ({e}): {text}"))
}

fn proxy_finding(report: &Value) -> &Value {
    report["findings"]
        .as_array()
        .and_then(|all| all.iter().find(|f| f["probe"] == "proxy"))
        .unwrap_or_else(|| panic!("a proxy finding: {report}"))
}

#[test]
fn a_proxy_answering_407_403_or_502_is_named_with_its_cause_and_never_its_password() {
    let cases = [
        ("HTTP/1.1 407 Proxy Authentication Required", "proxy_auth_required"),
        ("HTTP/1.1 403 Forbidden", "proxy_denied"),
        ("HTTP/1.1 502 Bad Gateway", "proxy_upstream_failed"),
    ];
    for (status_line, cause) in cases {
        let proxy = FakeProxy::answering(status_line);
        let variable = format!("http://alice:hunter2@127.0.0.1:{}", proxy.port);
        // The target's name is never resolved here: the proxy would resolve it.
        let output = check(
            &["https://db.internal.test/", "--json", "--no-trace"],
            &[("HTTPS_PROXY", variable)],
        );
        assert_eq!(output.status.code(), Some(1), "{status_line}");
        let printed = [output.stdout.as_slice(), output.stderr.as_slice()].concat();
        let printed = String::from_utf8_lossy(&printed);
        assert!(!printed.contains("hunter2") && !printed.contains("alice"), "{printed}");
        let report = json(&output);
        assert_eq!(report["verdict"]["cause"], cause, "{status_line}: {report}");
        let summary = report["verdict"]["summary"].as_str().unwrap();
        assert!(summary.contains(status_line), "{summary}");
        assert!(summary.contains(&format!("http://127.0.0.1:{} (HTTPS_PROXY)", proxy.port)));
        let finding = proxy_finding(&report);
        assert_eq!(finding["request"], "CONNECT db.internal.test:443");
        assert_eq!(finding["status_line"], status_line);
        // What the proxy got: the tunnel asked for, with the credentials ("alice:hunter2").
        let request = proxy.request();
        assert!(request.starts_with("CONNECT db.internal.test:443 HTTP/1.1\r\n"), "{request}");
        assert!(request.contains("\r\nProxy-Authorization: Basic YWxpY2U6aHVudGVyMg==\r\n"));
    }
}

#[test]
fn an_http_target_sends_its_request_through_the_proxy_with_the_full_url() {
    let proxy = FakeProxy::answering("HTTP/1.1 504 Gateway Timeout");
    let variable = format!("127.0.0.1:{}", proxy.port);
    // curl reads http_proxy in lower case only; Go reads HTTP_PROXY.
    let output = check(
        &["http://app.internal.test:8080/health", "--json", "--no-trace", "--proxy-as", "go"],
        &[("HTTP_PROXY", variable)],
    );
    let report = json(&output);
    assert_eq!(report["verdict"]["cause"], "proxy_upstream_failed", "{report}");
    let request = proxy.request();
    assert!(
        request.starts_with("GET http://app.internal.test:8080/health HTTP/1.1\r\n"),
        "{request}"
    );
    let finding = proxy_finding(&report);
    let readings = finding["readings"].as_array().expect("the clients disagree");
    let curl = readings.iter().find(|r| r["client"] == "curl").unwrap();
    assert_eq!(curl["proxied"], false, "curl ignores HTTP_PROXY in upper case: {finding}");
}

#[test]
fn a_proxy_that_is_down_is_proxy_unreachable_naming_its_own_cause() {
    let down = closed_port();
    let output = check(
        &["https://db.internal.test/", "--json", "--no-trace"],
        &[("https_proxy", format!("http://127.0.0.1:{down}"))],
    );
    assert_eq!(output.status.code(), Some(1));
    let report = json(&output);
    let verdict = &report["verdict"];
    assert_eq!(verdict["cause"], "proxy_unreachable", "{report}");
    let summary = verdict["summary"].as_str().unwrap();
    assert!(summary.contains("the proxy is not reachable (port_closed)"), "{summary}");
    // The connect the program makes is the proxy's: it is the attempt shown.
    assert_eq!(report["attempts"][0]["port"], down);
    assert_eq!(proxy_finding(&report)["proxy_cause"], "port_closed");
}

#[test]
fn no_proxy_excluding_the_target_checks_it_directly_and_says_so() {
    let down = closed_port();
    let target_port = closed_port();
    let target = format!("https://127.0.0.1:{target_port}/");
    let proxy = ("HTTPS_PROXY", format!("http://127.0.0.1:{down}"));
    let output = check(
        &[&target, "--json", "--no-trace"],
        &[proxy.clone(), ("NO_PROXY", "localhost,127.0.0.0/8".into())],
    );
    let report = json(&output);
    assert_eq!(report["verdict"]["cause"], "port_closed", "direct: {report}");
    assert_eq!(report["attempts"][0]["port"], target_port);
    let finding = proxy_finding(&report);
    assert_eq!(finding["variable"], "NO_PROXY entry 127.0.0.0/8");
    assert!(finding.get("proxy").is_none());
    // --no-proxy goes directly whatever the variables say.
    let output = check(&[&target, "--json", "--no-trace", "--no-proxy"], &[proxy]);
    let report = json(&output);
    assert_eq!(report["verdict"]["cause"], "port_closed", "{report}");
    assert!(report["findings"].as_array().unwrap().iter().all(|f| f["probe"] != "proxy"));
}

#[test]
fn go_never_proxies_loopback_and_the_check_says_the_clients_disagree() {
    let down = closed_port();
    let target_port = closed_port();
    let target = format!("https://127.0.0.1:{target_port}/");
    let output = check(
        &[&target, "--json", "--no-trace", "--proxy-as", "go"],
        &[("HTTPS_PROXY", format!("http://127.0.0.1:{down}"))],
    );
    let report = json(&output);
    assert_eq!(report["verdict"]["cause"], "port_closed", "Go went directly: {report}");
    let evidence = report["verdict"]["evidence"].to_string();
    assert!(evidence.contains("the clients disagree: curl: proxy"), "{evidence}");
    assert!(evidence.contains("Go: direct (Go never proxies localhost or loopback)"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serving_agent_ignores_its_environments_proxy_unless_told_to_use_it() {
    let down = closed_port();
    let target_port = closed_port();
    let target = format!("https://127.0.0.1:{target_port}/");
    let proxy = format!("http://127.0.0.1:{down}");
    for (args, cause) in [(&[][..], "port_closed"), (&["--use-env-proxy"][..], "proxy_unreachable")]
    {
        let agent = Agent::start_with_env(args, &[("HTTPS_PROXY", &proxy)]);
        let mut client = Client::connect(&agent).await;
        let mut request = CheckRequest::new(target.clone());
        request.no_trace = true;
        let (_, report) = client.check(1, request).await;
        let verdict = report.verdict.expect("a verdict");
        assert_eq!(verdict.cause.as_str(), cause, "{args:?}: {}", verdict.summary);
    }
}

/// A real SOCKS5 server (Debian's microsocks) on loopback, stopped when dropped; with
/// `login`, it wants that user name and password.
struct Microsocks {
    port: u16,
    child: std::process::Child,
}

impl Microsocks {
    fn start(login: Option<(&str, &str)>) -> Microsocks {
        let port = closed_port();
        let mut command = Command::new("microsocks");
        command.args(["-i", "127.0.0.1", "-p", &port.to_string()]);
        if let Some((user, password)) = login {
            command.args(["-u", user, "-P", password]);
        }
        let child = command
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("microsocks runs (./dev setup installs it)");
        wait_listening(port);
        Microsocks { port, child }
    }
}

impl Drop for Microsocks {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits (at most 5 s) until something listens on loopback's `port`.
fn wait_listening(port: u16) {
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on 127.0.0.1:{port}");
}

#[test]
fn a_socks5_proxy_tunnels_to_an_open_port_and_names_the_port_it_could_not_reach() {
    let socks = Microsocks::start(None);
    let open = TcpListener::bind("127.0.0.1:0").unwrap();
    let open_port = open.local_addr().unwrap().port();
    // socks5h: the proxy resolves "localhost" itself.
    let variable = ("ALL_PROXY", format!("socks5h://127.0.0.1:{}", socks.port));
    let target = format!("https://localhost:{open_port}/");
    let report = json(&check(&[&target, "--json", "--no-trace"], std::slice::from_ref(&variable)));
    assert_eq!(report["verdict"]["cause"], "reachable", "{report}");
    let finding = proxy_finding(&report);
    assert_eq!(finding["request"], format!("SOCKS5 CONNECT localhost:{open_port}"));
    assert_eq!(finding["status_line"], "SOCKS5 reply 0: succeeded", "{finding}");

    // A closed port behind it: the proxy itself is fine, its connect was refused.
    let closed = closed_port();
    let target = format!("https://localhost:{closed}/");
    let report = json(&check(&[&target, "--json", "--no-trace"], &[variable]));
    assert_eq!(report["verdict"]["cause"], "proxy_upstream_failed", "{report}");
    let summary = report["verdict"]["summary"].as_str().unwrap();
    assert!(summary.contains("SOCKS5 reply"), "{summary}");
    assert!(summary.contains(&format!("socks5h://127.0.0.1:{} (ALL_PROXY)", socks.port)));

    // socks5: the program resolves the name itself; one that does not resolve stops it here.
    let variable = ("ALL_PROXY", format!("socks5://127.0.0.1:{}", socks.port));
    let report = json(&check(&["https://no-such-host.invalid/", "--json"], &[variable]));
    assert_eq!(report["verdict"]["cause"], "dns_error", "{report}");
    let summary = report["verdict"]["summary"].as_str().unwrap();
    assert!(summary.contains("resolves no-such-host.invalid itself"), "{summary}");
}

#[test]
fn a_socks5_proxy_that_wants_a_login_is_proxy_auth_required_and_the_password_never_shows() {
    let socks = Microsocks::start(Some(("alice", "hunter2")));
    let open = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = format!("https://127.0.0.1:{}/", open.local_addr().unwrap().port());
    let with = |login: &str| ("ALL_PROXY", format!("socks5://{login}127.0.0.1:{}", socks.port));
    for (login, cause) in [
        ("", "proxy_auth_required"),
        ("alice:wrong@", "proxy_auth_required"),
        ("alice:hunter2@", "reachable"),
    ] {
        let output = check(&[&target, "--json", "--no-trace"], &[with(login)]);
        let printed = [output.stdout.as_slice(), output.stderr.as_slice()].concat();
        let printed = String::from_utf8_lossy(&printed);
        assert!(!printed.contains("hunter2") && !printed.contains("wrong"), "{printed}");
        let report = json(&output);
        assert_eq!(report["verdict"]["cause"], cause, "{login}: {report}");
    }
}

/// An HTTPS proxy: stunnel (Debian's) holding a certificate for 127.0.0.1 in front of a proxy
/// that opens every tunnel; stopped when dropped.
struct TlsProxy {
    port: u16,
    /// The certificate, for `SSL_CERT_FILE`.
    cert: std::path::PathBuf,
    child: std::process::Child,
    _inner: FakeProxy,
    _files: tempfile::TempDir,
}

impl TlsProxy {
    fn start() -> TlsProxy {
        let inner = FakeProxy::answering("HTTP/1.1 200 Connection established");
        let files = tempfile::tempdir().unwrap();
        let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
        let (cert, key) = (files.path().join("proxy.pem"), files.path().join("proxy-key.pem"));
        std::fs::write(&cert, made.cert.pem()).unwrap();
        std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
        let port = closed_port();
        let config = files.path().join("stunnel.conf");
        std::fs::write(
            &config,
            format!(
                "foreground = yes\npid =\n[proxy]\naccept = 127.0.0.1:{port}\n\
                 connect = 127.0.0.1:{}\ncert = {}\nkey = {}\n",
                inner.port,
                cert.display(),
                key.display()
            ),
        )
        .unwrap();
        let child = Command::new("stunnel4")
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("stunnel4 runs (./dev setup installs it)");
        wait_listening(port);
        TlsProxy { port, cert, child, _inner: inner, _files: files }
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn an_https_proxy_is_reached_over_tls_and_an_untrusted_one_is_said() {
    let proxy = TlsProxy::start();
    let variable = ("HTTPS_PROXY", format!("https://127.0.0.1:{}", proxy.port));
    let args = ["https://db.internal.test/", "--json", "--no-trace"];
    let trusted = ("SSL_CERT_FILE", proxy.cert.display().to_string());
    let report = json(&check(&args, &[variable.clone(), trusted]));
    assert_eq!(report["verdict"]["cause"], "reachable", "{report}");
    assert_eq!(proxy_finding(&report)["status_line"], "HTTP/1.1 200 Connection established");

    // The same proxy, its certificate not trusted: the TLS failure is the proxy's.
    let report = json(&check(&args, &[variable]));
    assert_eq!(report["verdict"]["cause"], "proxy_unreachable", "{report}");
    let error = proxy_finding(&report)["error"].as_str().unwrap_or_default().to_string();
    assert!(error.starts_with("its TLS handshake failed"), "{report}");
}
