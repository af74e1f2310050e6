//! The Prometheus face: `/probe` answers blackbox_exporter's series with the cause beside them
//! (parsed by promtool), `/metrics` counts what the agent ran, scrapes meet the same rules as
//! every client, probe modules load from blackbox_exporter's own file and reload, a real
//! Prometheus server scrapes it, and the deploy files pass promtool. Targets are on loopback.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use whyrefused_shared::CheckRequest;
use whyrefused_tests::scrape::{
    Scraped, free_port, get, promtool_check_metrics, request, try_request,
};
use whyrefused_tests::{
    Agent, Client, HangingPort, agent_binary, closed_port, http_server, workspace_root,
    write_token_file,
};

const OK: &str = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";

/// A module file with short timeouts, so a filtered port costs one second.
const MODULES: &str = "modules:\n  tcp_connect:\n    prober: tcp\n    timeout: 1s\n    tcp:\n      preferred_ip_protocol: ip4\n  http_2xx:\n    prober: http\n    timeout: 2s\n    http:\n      preferred_ip_protocol: ip4\n  tls:\n    prober: tcp\n    timeout: 2s\n    tcp:\n      tls: true\n      preferred_ip_protocol: ip4\n";

/// The series every probe answers, whatever its outcome.
const EVERY_PROBE: [&str; 8] = [
    "probe_success",
    "probe_duration_seconds",
    "probe_dns_lookup_time_seconds",
    "probe_ip_protocol",
    "probe_ip_addr_hash",
    "whyrefused_probe_cause",
    "whyrefused_probe_address_state",
    "whyrefused_probe_phase_seconds",
];

fn module_file(directory: &tempfile::TempDir, text: &str) -> String {
    let path = directory.path().join("probe.yml");
    std::fs::write(&path, text).expect("the module file is written");
    path.to_str().expect("UTF-8").to_string()
}

fn probe(agent: &Agent, query: &str) -> Scraped {
    let scraped = get(agent.address, &format!("/probe?{query}"));
    assert_eq!(scraped.status, 200, "{query}: {scraped:?}");
    scraped
}

/// Probes `query` and checks the exposition with promtool and for every common series.
fn probe_checked(agent: &Agent, query: &str) -> Scraped {
    let scraped = probe(agent, query);
    assert_eq!(promtool_check_metrics(&scraped.body), "", "{query}:\n{}", scraped.body);
    for name in EVERY_PROBE {
        assert!(scraped.has(name), "{query}: no {name} in\n{}", scraped.body);
    }
    scraped
}

fn cause_of(scraped: &Scraped, cause: &str) -> Option<f64> {
    scraped.value(&format!("whyrefused_probe_cause{{cause=\"{cause}\"}}"))
}

#[test]
fn probes_of_open_closed_and_filtered_ports_parse_with_promtool_and_name_the_cause() {
    let directory = tempfile::tempdir().unwrap();
    let agent = Agent::start_with(&["--probe-config", &module_file(&directory, MODULES)]);
    let open = http_server(OK);
    let closed = closed_port();
    let hanging = HangingPort::new();

    let reached = probe_checked(&agent, &format!("target=127.0.0.1:{open}"));
    assert_eq!(reached.value("probe_success"), Some(1.0), "{}", reached.body);
    assert_eq!(cause_of(&reached, "reachable"), Some(1.0));
    assert_eq!(reached.value("probe_ip_protocol"), Some(4.0));
    assert_eq!(
        reached.value("probe_ip_addr_hash"),
        Some(3_668_918_509.0),
        "blackbox_exporter's hash"
    );
    let state = r#"whyrefused_probe_address_state{address="127.0.0.1",family="ipv4",state="open"}"#;
    assert_eq!(reached.value(state), Some(1.0), "{}", reached.body);

    let refused = probe_checked(&agent, &format!("target=127.0.0.1:{closed}&module=tcp_connect"));
    assert_eq!(refused.value("probe_success"), Some(0.0));
    assert_eq!(cause_of(&refused, "port_closed"), Some(1.0), "{}", refused.body);

    let start = Instant::now();
    let filtered = probe_checked(&agent, &format!("target={}", hanging.address));
    assert!(
        start.elapsed() < Duration::from_millis(1_800),
        "within the module's 1 s: {:?}",
        start.elapsed()
    );
    assert_eq!(filtered.value("probe_success"), Some(0.0));
    let state =
        r#"whyrefused_probe_address_state{address="127.0.0.1",family="ipv4",state="timeout"}"#;
    assert_eq!(filtered.value(state), Some(1.0), "{}", filtered.body);
    // A silent target's path was traced: its series are there (loopback has no router to name).
    let traced = r#"whyrefused_probe_path_reached{address="127.0.0.1"}"#;
    assert_eq!(filtered.value(traced), Some(0.0), "{}", filtered.body);

    let http = probe_checked(&agent, &format!("target=127.0.0.1:{open}&module=http_2xx"));
    assert_eq!(http.value("probe_http_status_code"), Some(200.0), "{}", http.body);
    assert_eq!(http.value("probe_success"), Some(1.0));
    assert!(
        http.value(r#"whyrefused_probe_phase_seconds{phase="first_byte"}"#).is_some(),
        "{}",
        http.body
    );
}

#[test]
fn a_tls_probe_reports_the_certificate_expiry_and_a_bad_certificate_as_the_cause() {
    let directory = tempfile::tempdir().unwrap();
    let state = directory.path().join("state");
    let tls_target =
        Agent::start_with(&["--tls-self-signed", "--state-dir", state.to_str().unwrap()]);
    let agent = Agent::start_with(&["--probe-config", &module_file(&directory, MODULES)]);
    let scraped = probe_checked(&agent, &format!("target={}&module=tls", tls_target.address));
    assert!(scraped.has("probe_ssl_earliest_cert_expiry"), "{}", scraped.body);
    assert_eq!(scraped.value("probe_success"), Some(0.0), "a self-signed certificate fails");
    assert_eq!(cause_of(&scraped, "tls_error"), Some(1.0), "{}", scraped.body);
}

#[test]
fn debug_true_explains_the_verdict_and_a_denied_target_names_its_rule() {
    let agent = Agent::start_with(&["--deny", "127.0.0.2/32"]);
    let closed = closed_port();
    let debug = probe(&agent, &format!("target=127.0.0.1:{closed}&debug=true"));
    assert!(debug.head.contains("content-type: text/plain"), "{}", debug.head);
    assert!(debug.body.contains("port_closed Nothing listens"), "{}", debug.body);
    assert!(debug.body.contains("Metrics that would have been returned:"), "{}", debug.body);

    let denied = probe(&agent, "target=127.0.0.2:80&debug=true");
    assert!(denied.body.contains("policy_denied"), "{}", denied.body);
    assert!(denied.body.contains("--deny 127.0.0.2/32"), "{}", denied.body);

    let missing = get(agent.address, "/probe?module=tcp_connect");
    assert_eq!(missing.status, 400);
    assert!(missing.body.contains("target parameter is missing"), "{}", missing.body);
    let unknown = get(agent.address, "/probe?target=127.0.0.1:1&module=icmp");
    assert_eq!(unknown.status, 400);
    assert!(unknown.body.contains("unknown module \"icmp\""), "{}", unknown.body);
}

#[tokio::test]
async fn metrics_count_checks_by_cause_and_parse_with_promtool() {
    let agent = Agent::start_with(&["--deny", "127.0.0.2/32", "--max-connects-per-second", "1000"]);
    let closed = closed_port();
    let mut client = Client::connect(&agent).await;
    client.check(1, CheckRequest::new(format!("127.0.0.1:{closed}"))).await;
    client.check(2, CheckRequest::new("127.0.0.2:80")).await;
    probe(&agent, &format!("target=127.0.0.1:{closed}"));

    let metrics = get(agent.address, "/metrics");
    assert_eq!(metrics.status, 200);
    assert_eq!(promtool_check_metrics(&metrics.body), "", "{}", metrics.body);
    let counted = |labels: &str| metrics.value(&format!("whyrefused_checks_total{{{labels}}}"));
    assert_eq!(
        counted(r#"cause="port_closed",vantage="local",via="websocket""#),
        Some(1.0),
        "{}",
        metrics.body
    );
    assert_eq!(counted(r#"cause="policy_denied",vantage="local",via="websocket""#), Some(1.0));
    assert_eq!(counted(r#"cause="port_closed",vantage="local",via="probe""#), Some(1.0));
    assert_eq!(
        metrics.value(r#"whyrefused_policy_denials_total{rule="deny 127.0.0.2/32"}"#),
        Some(1.0)
    );
    assert_eq!(metrics.value("whyrefused_sessions"), Some(1.0), "{}", metrics.body);
    assert_eq!(metrics.value("whyrefused_connect_budget_per_second"), Some(1000.0));
    for name in [
        "whyrefused_request_duration_seconds_bucket",
        "whyrefused_connect_budget_used_ratio",
        "whyrefused_joined_agents_online",
        "whyrefused_build_info",
    ] {
        assert!(metrics.has(name), "no {name} in\n{}", metrics.body);
    }
    let openmetrics = request(
        agent.address,
        "GET",
        "/metrics",
        &["Accept: application/openmetrics-text; version=1.0.0"],
    );
    assert!(openmetrics.body.ends_with("# EOF\n"), "OpenMetrics when asked for");
}

const CLIENT_SECRET: &str = "scrape-secret-0123456789abcdef";
const AGENT_SECRET: &str = "app1-agent-secret-0123456789";

#[test]
fn scrapes_need_a_client_token_when_tokens_exist_and_never_come_from_another_site() {
    let directory = tempfile::tempdir().unwrap();
    let text = format!("prometheus:{CLIENT_SECRET}\napp1:{AGENT_SECRET}:agent\n");
    let tokens = write_token_file(&directory.path().join("tokens"), &text);
    let agent = Agent::start_with(&["--token-file", &tokens]);
    let target = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    target.set_nonblocking(true).unwrap();
    let query = format!("/probe?target={}", target.local_addr().unwrap());

    assert_eq!(get(agent.address, &query).status, 401);
    let agent_token = format!("Authorization: Bearer {AGENT_SECRET}");
    let refused = request(agent.address, "GET", &query, &[&agent_token]);
    assert_eq!(refused.status, 403, "an agent token never scrapes");
    assert!(refused.body.contains("agent token"), "{}", refused.body);
    let client_token = format!("Authorization: Bearer {CLIENT_SECRET}");
    let cross_site =
        request(agent.address, "GET", &query, &[&client_token, "Sec-Fetch-Site: cross-site"]);
    assert_eq!(cross_site.status, 403);
    let foreign =
        request(agent.address, "GET", &query, &[&client_token, "Origin: https://evil.example"]);
    assert_eq!(foreign.status, 403);
    assert!(target.accept().is_err(), "no refused scrape made the agent connect");

    let allowed = request(agent.address, "GET", &query, &[&client_token]);
    assert_eq!(allowed.status, 200, "{allowed:?}");
    assert!(
        allowed.body.contains("whyrefused_probe_cause{cause=\"reachable\"}"),
        "{}",
        allowed.body
    );
    assert_eq!(request(agent.address, "GET", "/metrics", &[]).status, 401);
    assert_eq!(request(agent.address, "GET", "/metrics", &[&client_token]).status, 200);
    assert_eq!(request(agent.address, "POST", "/-/reload", &[]).status, 401);
}

#[test]
fn a_loopback_agent_answers_scrapes_only_to_its_own_names() {
    let agent = Agent::start();
    let mut stream = std::net::TcpStream::connect(agent.address).unwrap();
    use std::io::{Read, Write};
    stream.write_all(b"GET /probe?target=127.0.0.1:1 HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 403"), "DNS rebinding is refused: {answer}");
}

fn start_fails(args: &[&str]) -> String {
    let output = Command::new(agent_binary())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::null())
        .output()
        .expect("the agent runs");
    assert_eq!(output.status.code(), Some(2), "{args:?} must refuse to start");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn blackbox_exporters_own_module_file_loads_and_an_unknown_option_is_an_error_naming_it() {
    let blackbox = "/etc/prometheus/blackbox.yml";
    assert!(
        std::path::Path::new(blackbox).exists(),
        "Debian's prometheus-blackbox-exporter installs {blackbox}"
    );
    let directory = tempfile::tempdir().unwrap();
    let log = directory.path().join("agent.log");
    let agent = Agent::start_logged(&["--probe-config", blackbox], &log);
    let open = http_server(OK);
    let http = probe(&agent, &format!("target=127.0.0.1:{open}&module=http_2xx"));
    assert_eq!(http.value("probe_success"), Some(1.0), "{}", http.body);
    probe(&agent, &format!("target=127.0.0.1:{open}&module=tcp_connect"));
    let logged = std::fs::read_to_string(&log).unwrap();
    for skipped in ["icmp", "grpc", "pop3s_banner", "http_post_2xx"] {
        assert!(
            logged.contains(&format!("module={skipped}")),
            "no warning for {skipped}: {logged}"
        );
    }

    let typo =
        module_file(&directory, "modules:\n  m:\n    prober: tcp\n    tcp:\n      tsl: true\n");
    let error = start_fails(&["--probe-config", &typo]);
    assert!(error.contains("module m in") && error.contains("unknown option `tcp.tsl`"), "{error}");
}

#[test]
fn modules_reload_on_sighup_and_on_post_and_a_broken_file_keeps_the_old_ones() {
    let directory = tempfile::tempdir().unwrap();
    let file = module_file(&directory, "modules:\n  first:\n    prober: tcp\n");
    let agent = Agent::start_with(&["--probe-config", &file]);
    let closed = closed_port();
    let asks = |module: &str| {
        get(agent.address, &format!("/probe?target=127.0.0.1:{closed}&module={module}")).status
    };
    assert_eq!(asks("first"), 200);
    assert_eq!(asks("second"), 400);

    std::fs::write(&file, "modules:\n  second:\n    prober: tcp\n").unwrap();
    agent.signal(nix::sys::signal::Signal::SIGHUP);
    let start = Instant::now();
    while asks("second") != 200 {
        assert!(start.elapsed() < Duration::from_secs(5), "SIGHUP did not reload the modules");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(asks("first"), 400, "the file's modules replace the old ones");

    std::fs::write(&file, "modules:\n  third:\n    prober: http\n").unwrap();
    let reloaded = request(agent.address, "POST", "/-/reload", &[]);
    assert_eq!((reloaded.status, reloaded.body.as_str()), (200, "reloaded: modules third\n"));

    std::fs::write(&file, "modules:\n  fourth:\n    prober: tcp\n    timeout: 5\n    retires: 2\n")
        .unwrap();
    let broken = request(agent.address, "POST", "/-/reload", &[]);
    assert_eq!(broken.status, 400);
    assert!(broken.body.contains("the modules in use stay"), "{}", broken.body);
    assert_eq!(asks("third"), 200);
}

/// A Prometheus server on loopback, with its own storage, killed when dropped.
struct PrometheusServer {
    child: Child,
    address: SocketAddr,
    _directory: tempfile::TempDir,
}

impl PrometheusServer {
    /// Starts `prometheus` scraping `agent`'s `/probe` for `targets` every second.
    fn start(agent: &Agent, targets: &[String]) -> PrometheusServer {
        let directory = tempfile::tempdir().unwrap();
        let listed = targets.iter().map(|t| format!("'{t}'")).collect::<Vec<_>>().join(", ");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: whyrefused\n    \
             metrics_path: /probe\n    params:\n      module: [tcp_connect]\n    static_configs:\n      - targets: [{listed}]\n    \
             relabel_configs:\n      - source_labels: [__address__]\n        target_label: __param_target\n      \
             - source_labels: [__param_target]\n        target_label: instance\n      - target_label: __address__\n        \
             replacement: '{}'\n",
            agent.address
        );
        let config_path = directory.path().join("prometheus.yml");
        std::fs::write(&config_path, config).unwrap();
        let address: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!("--storage.tsdb.path={}", directory.path().join("data").display()))
            .arg(format!("--web.listen-address={address}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus runs (Debian's prometheus package: ./dev setup installs it)");
        PrometheusServer { child, address, _directory: directory }
    }

    /// The instant vector `query` returns now: each series' labels and value.
    fn query(&self, query: &str) -> Vec<(Value, f64)> {
        let encoded: String = query
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b == b'_' {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        // Nothing yet while the server starts.
        let path = format!("/api/v1/query?query={encoded}");
        let Some(answer) = try_request(self.address, "GET", &path, &[]) else { return Vec::new() };
        let json: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
        json["data"]["result"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|series| {
                let value =
                    series["value"][1].as_str().and_then(|v| v.parse().ok()).unwrap_or(f64::NAN);
                (series["metric"].clone(), value)
            })
            .collect()
    }
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_real_prometheus_scrapes_probe_and_its_query_api_returns_success_and_the_cause() {
    let agent = Agent::start();
    let (open, closed) =
        (format!("127.0.0.1:{}", http_server(OK)), format!("127.0.0.1:{}", closed_port()));
    let prometheus = PrometheusServer::start(&agent, &[open.clone(), closed.clone()]);
    let start = Instant::now();
    let mut success = Vec::new();
    while success.len() < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "Prometheus scraped nothing: {success:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
        success = prometheus.query("probe_success");
    }
    let of = |instance: &str| {
        success.iter().find(|(labels, _)| labels["instance"] == instance).map(|(_, v)| *v)
    };
    assert_eq!((of(&open), of(&closed)), (Some(1.0), Some(0.0)), "{success:?}");
    let causes = prometheus.query("whyrefused_probe_cause == 1");
    let cause = |instance: &str| {
        causes
            .iter()
            .find(|(labels, _)| labels["instance"] == instance)
            .map(|(labels, _)| labels["cause"].clone())
    };
    assert_eq!(cause(&closed), Some(Value::from("port_closed")), "{causes:?}");
    assert_eq!(cause(&open), Some(Value::from("reachable")), "{causes:?}");
}

#[test]
fn the_deploy_scrape_config_and_alert_rules_pass_promtool() {
    let deploy = workspace_root().join("deploy");
    let promtool = |args: &[&str], directory: &std::path::Path| {
        let output = Command::new("promtool")
            .args(args)
            .current_dir(directory)
            .output()
            .expect("promtool runs");
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.status.success(), "promtool {args:?}: {said}");
    };
    promtool(&["check", "config", "--syntax-only", "prometheus.yml"], &deploy);
    promtool(&["check", "rules", "whyrefused-alerts.yml"], &deploy);
    promtool(&["test", "rules", "alerts-test.yml"], &workspace_root().join("tests/prometheus"));
}

#[test]
fn a_probe_from_a_joined_agent_runs_there_and_labels_its_series_with_the_vantage_point() {
    let directory = tempfile::tempdir().unwrap();
    let hub_tokens = write_token_file(
        &directory.path().join("hub"),
        &format!("prometheus:{CLIENT_SECRET}\napp1:{AGENT_SECRET}:agent\n"),
    );
    let hub = Agent::start_with(&["--token-file", &hub_tokens]);
    let app1_tokens = write_token_file(
        &directory.path().join("app1"),
        &format!("app1:{AGENT_SECRET}:agent\nprometheus:{CLIENT_SECRET}\n"),
    );
    let hub_url = format!("ws://{}", hub.address);
    let _app1 =
        Agent::start_with(&["--token-file", &app1_tokens, "--join", &hub_url, "--allow-loopback"]);
    let token = format!("Authorization: Bearer {CLIENT_SECRET}");
    let closed = closed_port();
    let query = format!("/probe?target=127.0.0.1:{closed}&from=app1");
    let start = Instant::now();
    let scraped = loop {
        let scraped = request(hub.address, "GET", &query, &[&token]);
        if scraped.status == 200 && scraped.body.contains("port_closed") {
            break scraped;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "app1 never answered: {scraped:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(promtool_check_metrics(&scraped.body), "", "{}", scraped.body);
    let cause = r#"whyrefused_probe_cause{vantage="app1",cause="port_closed"}"#;
    assert_eq!(scraped.value(cause), Some(1.0), "{}", scraped.body);
    assert_eq!(scraped.value(r#"probe_success{vantage="app1"}"#), Some(0.0));
    let metrics = request(hub.address, "GET", "/metrics", &[&token]);
    let counted = r#"whyrefused_checks_total{cause="port_closed",vantage="app1",via="probe"}"#;
    assert_eq!(metrics.value(counted), Some(1.0), "{}", metrics.body);
    assert_eq!(metrics.value("whyrefused_joined_agents_online"), Some(1.0));
    let unknown = request(hub.address, "GET", "/probe?target=127.0.0.1:1&from=nowhere", &[&token]);
    assert_eq!(unknown.status, 400);
    assert!(unknown.body.contains("no vantage point is named 'nowhere'"), "{}", unknown.body);
}
