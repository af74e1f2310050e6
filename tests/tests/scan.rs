//! Port scans as users run them: over the agent's WebSocket (batched streaming, cancel, limits,
//! bad input), on the command line (a low open-files limit, exit codes), and in a namespace lab
//! where every port's state is compared with nmap's.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, TcpListener};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use whyrefused_shared::{
    AgentMessage, ConnectState, ErrorCode, Outcome, RequestId, ScanRequest, ScanStep,
};
use whyrefused_tests::{Agent, Client, HangingPort, Lab, agent_binary, syn_sent_to};

/// Waits until `condition` holds, failing the test after a few seconds.
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < Duration::from_secs(5), "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The next error message, skipping anything else.
async fn next_error(client: &mut Client) -> (Option<RequestId>, ErrorCode, String) {
    loop {
        if let AgentMessage::Error { id, code, message } = client.recv().await {
            return (id, code, message);
        }
    }
}

fn localhost() -> IpAddr {
    "127.0.0.1".parse().unwrap()
}

/// Three listeners the test owns, and their ports.
fn listeners() -> (Vec<TcpListener>, Vec<u16>) {
    let listeners: Vec<TcpListener> =
        (0..3).map(|_| TcpListener::bind("127.0.0.1:0").expect("bind")).collect();
    let ports = listeners.iter().map(|l| l.local_addr().unwrap().port()).collect();
    (listeners, ports)
}

#[tokio::test]
async fn a_full_range_streams_in_a_bounded_number_of_batches_and_finds_every_listener() {
    let agent = Agent::start();
    let (_listeners, open) = listeners();
    let mut client = Client::connect(&agent).await;

    let (events, report) = client.scan(1, ScanRequest::new("127.0.0.1", "1-65535")).await;

    let progress = events.iter().filter(|e| matches!(e.step, ScanStep::Progress(_))).count();
    assert!(progress >= 1, "at least one batch");
    assert!(events.len() < 400, "batches, not one message per port: {} messages", events.len());
    assert_eq!(report.total, 65_535);
    assert_eq!(report.done, 65_535);
    assert_eq!(report.counts.total(), 65_535, "{:?}", report.counts);
    assert_eq!(report.counts.error, 0, "no port failed for want of resources");
    for port in &open {
        assert_eq!(report.state_of(localhost(), *port), Some(ConnectState::Open), "port {port}");
    }
    let known = (1..=u16::MAX).filter(|p| report.state_of(localhost(), *p).is_some()).count();
    assert_eq!(known, 65_535, "every port's state arrived");
    assert_eq!(report.outcome, Some(Outcome::Completed));
    // The scanned host is the agent's own, and this client is on it: each listener's owner
    // (this test process) came with `done`.
    for port in &open {
        let address = std::net::SocketAddr::new(localhost(), *port);
        let listener = report.listener_behind(address).unwrap_or_else(|| panic!("{port}'s owner"));
        assert_eq!(listener.pid, Some(std::process::id()), "{listener:?}");
    }
}

#[tokio::test]
async fn cancelling_a_scan_stops_it_and_frees_every_socket() {
    let agent = Agent::start();
    let hanging: Vec<HangingPort> = (0..20).map(|_| HangingPort::new()).collect();
    let ports: Vec<String> = hanging.iter().map(|h| h.address.port().to_string()).collect();
    let mut client = Client::connect(&agent).await;
    let before = agent.open_descriptors();

    let request =
        ScanRequest { timeout_ms: Some(30_000), ..ScanRequest::new("127.0.0.1", ports.join(",")) };
    client.start_scan(1, request).await;
    let in_flight = || hanging.iter().map(|h| syn_sent_to(h.address.port())).sum::<usize>();
    eventually("every port's connect is in flight", || in_flight() == hanging.len()).await;
    assert!(agent.open_descriptors() >= before + hanging.len(), "a socket per port in flight");

    client.send(&whyrefused_shared::ClientMessage::Cancel { id: RequestId(1) }).await;
    let (_, report) = client.scan_events_until_done(1).await;
    assert_eq!(report.outcome, Some(Outcome::Cancelled));
    eventually("no connect is left in flight", || in_flight() == 0).await;
    eventually("the agent is back to its descriptors", || agent.open_descriptors() <= before).await;
}

#[tokio::test]
async fn bad_scan_requests_get_precise_errors_and_the_session_goes_on() {
    let agent = Agent::start();
    let mut client = Client::connect(&agent).await;
    let cases = [
        (ScanRequest::new("127.0.0.1", "0-100"), ErrorCode::InvalidPorts, "out of range"),
        (ScanRequest::new("127.0.0.1", "100-50"), ErrorCode::InvalidPorts, "50-100"),
        (ScanRequest::new("127.0.0.1", "top5000"), ErrorCode::InvalidPorts, "top1000"),
        (ScanRequest::new("127.0.0.1:80", "80"), ErrorCode::InvalidTarget, "--ports 80"),
        (
            ScanRequest { retries: Some(9), ..ScanRequest::new("127.0.0.1", "80") },
            ErrorCode::InvalidOption,
            "retries",
        ),
    ];
    for (id, (request, code, words)) in (10..).zip(cases) {
        client.start_scan(id, request).await;
        let (got_id, got_code, message) = next_error(&mut client).await;
        assert_eq!((got_id, got_code), (Some(RequestId(id)), code), "{message}");
        assert!(message.contains(words), "{message:?} should mention {words:?}");
    }
    let (_, report) = client.scan(1, ScanRequest::new("127.0.0.1", "1-100")).await;
    assert_eq!(report.counts.total(), 100, "the session still scans");
}

#[tokio::test]
async fn the_agent_limits_ports_per_scan_and_scans_at_once() {
    let agent = Agent::start_with(&["--max-scan-ports", "100", "--max-scans", "1"]);
    let mut client = Client::connect(&agent).await;

    client.start_scan(1, ScanRequest::new("127.0.0.1", "1-65535")).await;
    let (_, code, message) = next_error(&mut client).await;
    assert_eq!(code, ErrorCode::TooManyPorts);
    assert!(message.contains("65535 ports") && message.contains("at most 100"), "{message}");

    let hanging = HangingPort::new();
    let port = hanging.address.port().to_string();
    let request = ScanRequest { timeout_ms: Some(30_000), ..ScanRequest::new("127.0.0.1", &port) };
    client.start_scan(2, request).await;
    eventually("the first scan runs", || syn_sent_to(hanging.address.port()) == 1).await;
    client.start_scan(3, ScanRequest::new("127.0.0.1", "1-10")).await;
    let (id, code, message) = next_error(&mut client).await;
    assert_eq!((id, code), (Some(RequestId(3)), ErrorCode::TooManyScans), "{message}");

    client.send(&whyrefused_shared::ClientMessage::Cancel { id: RequestId(2) }).await;
    client.scan_events_until_done(2).await;
    let (_, report) = client.scan(4, ScanRequest::new("127.0.0.1", "1-10")).await;
    assert_eq!(report.counts.total(), 10, "the permit came back with the cancel");
}

/// Runs `whyrefused scan ARGS --json` under `ulimit -n LIMIT` and returns its exit code and
/// parsed report.
fn scan_cli_with_file_limit(limit: u32, args: &str) -> (i32, Value) {
    let binary = agent_binary();
    let script = format!("ulimit -n {limit} && exec {} scan {args} --json", binary.display());
    let output = Command::new("sh").args(["-c", &script]).output().expect("sh runs");
    let report = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("no JSON ({e}): {}", String::from_utf8_lossy(&output.stderr)));
    (output.status.code().unwrap_or(-1), report)
}

fn open_ports(report: &Value) -> BTreeSet<u64> {
    let results = report["results"].as_array().expect("results");
    results.iter().filter(|r| r["state"] == "open").filter_map(|r| r["port"].as_u64()).collect()
}

#[test]
fn with_256_open_files_a_full_range_still_finishes_and_is_correct() {
    let (_listeners, open) = listeners();
    let (code, report) = scan_cli_with_file_limit(256, "127.0.0.1 --ports 1-65535");
    assert_eq!(code, 0);
    assert_eq!(report["counts"]["error"], 0, "never 'too many open files': {}", report["counts"]);
    let counted: u64 =
        report["counts"].as_object().unwrap().values().filter_map(Value::as_u64).sum();
    assert_eq!(counted, 65_535);
    assert!(report["window"].as_u64().unwrap() <= 256, "window {}", report["window"]);
    let found = open_ports(&report);
    assert!(open.iter().all(|p| found.contains(&u64::from(*p))), "{open:?} in {found:?}");
}

#[test]
fn a_limit_below_the_smallest_window_backs_off_and_stays_correct() {
    let (_listeners, open) = listeners();
    let low = open.iter().min().unwrap().saturating_sub(1000).max(1);
    let high = open.iter().max().unwrap().saturating_add(1000);
    let (code, report) = scan_cli_with_file_limit(22, &format!("127.0.0.1 --ports {low}-{high}"));
    assert_eq!(code, 0);
    assert_eq!(report["counts"]["error"], 0, "{}", report["counts"]);
    let found = open_ports(&report);
    assert!(open.iter().all(|p| found.contains(&u64::from(*p))), "{open:?} in {found:?}");
}

#[test]
fn the_cli_explains_bad_input_and_exits_2() {
    let binary = agent_binary();
    for (args, words) in [
        (vec!["scan", "127.0.0.1", "--ports", "1-70000"], "70000 is out of range"),
        (vec!["scan", "db.internal:5432"], "--ports 5432"),
        (vec!["scan", "127.0.0.1", "--ports", "22,,80"], "empty item"),
    ] {
        let output = Command::new(&binary).args(&args).output().expect("runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(words), "{args:?}: {stderr}");
    }
}

#[test]
fn the_readable_summary_names_open_ports_with_their_service() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let output = Command::new(agent_binary())
        .args(["scan", "127.0.0.1", "--ports", &format!("{port}"), "--all"])
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(text.starts_with("scan 127.0.0.1 · ports "), "{text}");
    assert!(text.contains("open                1"), "{text}");
    assert!(text.contains(&format!("\n  {port} ")), "{text}");
}

/// nmap's state and reason for every port of a scan, from its XML output (`<port>` elements and
/// the `<extrareasons ports=…>` of collapsed ones).
fn nmap_reasons(xml: &str) -> BTreeMap<u16, String> {
    let mut reasons = BTreeMap::new();
    for element in xml.split('<').skip(1) {
        if let Some(rest) = element.strip_prefix("port ") {
            let port = attribute(rest, "portid").parse().expect("a port number");
            let state = xml[xml.find(element).unwrap()..].split("<state ").nth(1).expect("a state");
            reasons.insert(port, attribute(state, "reason"));
        } else if let Some(rest) = element.strip_prefix("extrareasons ") {
            let reason = attribute(rest, "reason");
            for span in attribute(rest, "ports").split(',') {
                let (first, last) = span.split_once('-').unwrap_or((span, span));
                for port in first.parse::<u16>().unwrap()..=last.parse().unwrap() {
                    reasons.insert(port, reason.clone());
                }
            }
        }
    }
    reasons
}

fn attribute(element: &str, name: &str) -> String {
    let start =
        element.find(&format!("{name}=\"")).unwrap_or_else(|| panic!("no {name} in {element}"));
    let value = &element[start + name.len() + 2..];
    value[..value.find('"').expect("a closing quote")].to_string()
}

/// What whyrefused's state (and ICMP error) for a port corresponds to in nmap's reasons: nmap's
/// `filtered` splits into silence and the ICMP errors whyrefused names.
fn as_nmap_reason(result: Option<&Value>) -> &'static str {
    let Some(result) = result else { return "reset" };
    let icmp = result["icmp"]["meaning"].as_str();
    match (result["state"].as_str(), icmp) {
        (Some("open"), _) => "syn-ack",
        (Some("timeout"), _) => "no-response",
        (_, Some("port unreachable")) => "port-unreach",
        (_, Some("communication administratively prohibited")) => "admin-prohibited",
        (state, icmp) => panic!("unexpected state {state:?} with ICMP {icmp:?}"),
    }
}

#[test]
fn in_a_lab_every_port_state_agrees_with_nmap_syn_scan() {
    let mut lab = Lab::new();
    let client = lab.host("client");
    let server = lab.host("server");
    lab.link(&client, "10.0.1.1/24", &server, "10.0.1.2/24");
    // Open, closed, dropped and rejected ports mixed across the range. ICMP errors are not
    // rate-limited in the lab, so every REJECT answers (both scanners would otherwise see
    // silence past the kernel's burst).
    lab.sh(
        &server,
        "sysctl -qw net.ipv4.icmp_ratelimit=0 && \
         iptables -A INPUT -p tcp --dport 20010:20019 -j DROP && \
         iptables -A INPUT -p tcp --dport 20040:20049 -j REJECT --reject-with tcp-reset && \
         iptables -A INPUT -p tcp -m multiport --dports 20060,20061,20077 -j REJECT --reject-with icmp-port-unreachable && \
         iptables -A INPUT -p tcp --dport 20090:20095 -j REJECT --reject-with icmp-admin-prohibited && \
         iptables -A INPUT -p tcp --dport 20150 -j DROP",
    );
    let open = ["10.0.1.2:20001", "10.0.1.2:20055", "10.0.1.2:20150", "10.0.1.2:20199"];
    let mut server_args = vec!["hold"];
    server_args.extend(open);
    lab.spawn(&server, env!("CARGO_BIN_EXE_lab-server"), &server_args);
    lab.wait_listening(&server, 20199);

    let binary = agent_binary();
    let ours = lab.run(
        &client,
        binary.to_str().unwrap(),
        &["scan", "10.0.1.2", "--ports", "20000-20199", "--timeout-ms", "400", "--json"],
    );
    let report: Value = serde_json::from_slice(&ours.stdout).expect("JSON from whyrefused");
    let nmap = lab.run(
        &client,
        "nmap",
        &["-sS", "--reason", "-n", "-Pn", "-p", "20000-20199", "-oX", "-", "10.0.1.2"],
    );
    let theirs = nmap_reasons(&String::from_utf8_lossy(&nmap.stdout));
    assert_eq!(theirs.len(), 200, "nmap reported every port");

    let results: BTreeMap<u64, &Value> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["port"].as_u64().unwrap(), r))
        .collect();
    for (port, reason) in &theirs {
        let ours = as_nmap_reason(results.get(&u64::from(*port)).copied());
        assert_eq!(ours, reason, "port {port}: whyrefused {:?}", results.get(&u64::from(*port)));
    }
    // The scenario really mixes every kind.
    let kinds: BTreeSet<&str> = theirs.values().map(String::as_str).collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["admin-prohibited", "no-response", "port-unreach", "reset", "syn-ack"])
    );
    assert_eq!(report["counts"]["timeout"], 11, "dropped ports are filtered after the retry");
    let dropped = results[&20010];
    assert_eq!(dropped["tries"], 2, "a timeout is tried again before it is called filtered");
}

#[tokio::test]
async fn the_agents_policy_refuses_denied_ports_and_leaves_denied_addresses_out() {
    let agent = Agent::start_with(&["--deny", "127.0.0.2/32", "--allow-ports", "1-100"]);
    let mut client = Client::connect(&agent).await;

    client.start_scan(1, ScanRequest::new("127.0.0.1", "90-110")).await;
    let (id, code, message) = next_error(&mut client).await;
    assert_eq!((id, code), (Some(RequestId(1)), ErrorCode::PolicyDenied), "{message}");
    assert!(message.contains("port 101 is not in --allow-ports 1-100"), "{message}");

    let (_, report) = client.scan(2, ScanRequest::new("127.0.0.2", "1-10")).await;
    assert_eq!(report.denied, ["127.0.0.2 is denied by --deny 127.0.0.2/32"]);
    assert!(report.problem.as_deref().unwrap_or_default().contains("denies every address"));
    assert_eq!((report.total, report.counts.total()), (0, 0), "nothing was scanned");

    let (_, report) = client.scan(3, ScanRequest::new("127.0.0.1", "1-10")).await;
    assert_eq!(report.counts.total(), 10, "an allowed scan runs");
}

#[tokio::test]
async fn the_agents_connect_budget_paces_a_scan_and_every_port_still_gets_its_state() {
    // 200 connects a second, one second's worth at once: 600 ports need two more seconds.
    let agent = Agent::start_with(&["--max-connects-per-second", "200"]);
    let mut client = Client::connect(&agent).await;
    let start = Instant::now();
    let (_, report) = client.scan(1, ScanRequest::new("127.0.0.1", "20001-20600")).await;
    let took = start.elapsed();
    assert_eq!(report.counts.total(), 600);
    assert_eq!(report.counts.error, 0);
    assert!(took >= Duration::from_millis(1_900), "paced by the budget, not {took:?}");
    assert!(
        report.rate_per_s < 400.0,
        "the reported rate follows the budget: {}",
        report.rate_per_s
    );
}

#[test]
fn a_scan_of_this_host_names_the_process_behind_each_open_port() {
    let (_listeners, mut ports) = listeners();
    ports.sort_unstable();
    let spec = ports.iter().map(u16::to_string).collect::<Vec<_>>().join(",");
    let output = Command::new(agent_binary())
        .args(["scan", "127.0.0.1", "--ports", &spec, "--json"])
        .output()
        .expect("whyrefused runs");
    let report: Value = serde_json::from_slice(&output.stdout).expect("one JSON document");
    let owners = report["listeners"].as_array().expect("the listeners of the open ports");
    assert_eq!(owners.len(), ports.len(), "{report:#}");
    for (owner, port) in owners.iter().zip(&ports) {
        assert_eq!(owner["address"], format!("127.0.0.1:{port}"));
        // The test process owns them.
        assert_eq!(owner["pid"], std::process::id(), "{owner}");
    }
    let readable = Command::new(agent_binary())
        .args(["scan", "127.0.0.1", "--ports", &spec])
        .env("NO_COLOR", "1")
        .output()
        .expect("whyrefused runs");
    let text = String::from_utf8_lossy(&readable.stdout);
    let line = format!("listening on 127.0.0.1:{}: pid {}", ports[0], std::process::id());
    assert!(text.contains(&line), "{text}");
}
