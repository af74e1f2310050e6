//! Real network faults in a namespace lab: a client host and a server host on one link (and a
//! router where a scenario needs one), with firewalls and services set per scenario.
//! `whyrefused check` runs on the client (or on the server itself), and each test asserts the
//! cause and the evidence behind it.

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

/// A hosts file for one lab host (`ip netns exec` mounts `/etc/netns/NS/hosts` over
/// `/etc/hosts`), removed when dropped.
struct HostsFile(std::path::PathBuf);

impl HostsFile {
    fn new(host: &Host, lines: &str) -> HostsFile {
        let directory = std::path::Path::new("/etc/netns").join(&host.netns);
        std::fs::create_dir_all(&directory).expect("/etc/netns is writable (root)");
        std::fs::write(directory.join("hosts"), format!("127.0.0.1 localhost\n{lines}"))
            .expect("hosts written");
        HostsFile(directory)
    }
}

impl Drop for HostsFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn cause(report: &Value) -> &str {
    report["verdict"]["cause"].as_str().unwrap_or("(none)")
}

fn summary(report: &Value) -> &str {
    report["verdict"]["summary"].as_str().unwrap_or("")
}

/// Whether some evidence item's probe starts with `probe` and its result contains `result`.
fn has_evidence(report: &Value, probe: &str, result: &str) -> bool {
    report["verdict"]["evidence"].as_array().into_iter().flatten().any(|item| {
        item["probe"].as_str().is_some_and(|p| p.starts_with(probe))
            && item["result"].as_str().is_some_and(|r| r.contains(result))
    })
}

fn finding<'a>(report: &'a Value, probe: &str) -> &'a Value {
    report["findings"]
        .as_array()
        .and_then(|all| all.iter().find(|f| f["probe"] == probe))
        .unwrap_or_else(|| panic!("no {probe} finding in {report:#}"))
}

#[test]
fn nothing_listening_is_port_closed_with_nearby_open_ports_suggested() {
    let (mut lab, client, server) = two_hosts();
    lab.spawn(&server, env!("CARGO_BIN_EXE_lab-server"), &["hold", &format!("{SERVER}:8080")]);
    lab.wait_listening(&server, 8080);
    let report = check(&lab, &client, &format!("{SERVER}:80"), &[]);
    assert_eq!(cause(&report), "port_closed", "{report:#}");
    assert_eq!(report["attempts"][0]["state"], "refused");
    assert!(report["attempts"][0]["icmp"].is_null(), "a real reset carries no ICMP");
    assert_eq!(finding(&report, "nearby_ports")["open"], serde_json::json!([8080]));
    let suggestions = report["verdict"]["suggestions"].to_string();
    assert!(
        suggestions.contains("Port 8080 on that host is open: did you mean 8080?"),
        "{suggestions}"
    );
}

#[test]
fn a_reject_with_tcp_reset_looks_like_a_closed_port_and_says_so() {
    let (lab, client, server) = two_hosts();
    lab.sh(&server, "iptables -A INPUT -p tcp --dport 80 -j REJECT --reject-with tcp-reset");
    let report = check(&lab, &client, &format!("{SERVER}:80"), &[]);
    assert_eq!(cause(&report), "port_closed", "{report:#}");
    assert!(has_evidence(&report, "note", "firewall rejecting with a TCP reset"), "{report:#}");
}

#[test]
fn a_reject_with_icmp_port_unreachable_is_a_firewall_reject_from_the_host() {
    let (lab, client, server) = two_hosts();
    lab.sh(
        &server,
        "iptables -A INPUT -p tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable",
    );
    let report = check(&lab, &client, &format!("{SERVER}:80"), &[]);
    assert_eq!(cause(&report), "firewall_reject", "{report:#}");
    let icmp = &report["attempts"][0]["icmp"];
    assert_eq!((icmp["icmp_type"].as_u64(), icmp["code"].as_u64()), (Some(3), Some(3)), "{icmp}");
    assert_eq!(icmp["from"], SERVER);
    assert!(
        summary(&report).contains("port unreachable from 10.0.1.2 (the host's own firewall)"),
        "{report:#}"
    );
}

#[test]
fn a_reject_with_admin_prohibited_is_a_firewall_reject() {
    let (lab, client, server) = two_hosts();
    lab.sh(
        &server,
        "iptables -A INPUT -p tcp --dport 80 -j REJECT --reject-with icmp-admin-prohibited",
    );
    let report = check(&lab, &client, &format!("{SERVER}:80"), &[]);
    assert_eq!(cause(&report), "firewall_reject", "{report:#}");
    assert_eq!(report["attempts"][0]["state"], "host_unreachable");
    assert_eq!(report["attempts"][0]["icmp"]["code"], 13);
    assert!(
        has_evidence(&report, "icmp", "communication administratively prohibited"),
        "{report:#}"
    );
}

#[test]
fn a_dropping_firewall_on_an_up_host_is_filtered() {
    let (lab, client, server) = two_hosts();
    lab.sh(&server, "iptables -A INPUT -p tcp --dport 80 -j DROP");
    let report = check(&lab, &client, &format!("{SERVER}:80"), &["--timeout-ms", "700"]);
    assert_eq!(cause(&report), "filtered", "{report:#}");
    assert_eq!(report["attempts"][0]["state"], "timeout");
    let liveness = finding(&report, "liveness");
    assert_eq!(liveness["host_up"], true);
    assert!(has_evidence(&report, "liveness port 22", "refused (the host is up)"), "{report:#}");
}

#[test]
fn a_host_that_drops_everything_is_no_response() {
    let (lab, client, server) = two_hosts();
    lab.sh(&server, "iptables -P INPUT DROP");
    let report = check(&lab, &client, &format!("{SERVER}:80"), &["--timeout-ms", "500"]);
    assert_eq!(cause(&report), "no_response", "{report:#}");
    let liveness = finding(&report, "liveness");
    assert_eq!(liveness["host_up"], false);
    assert_eq!(liveness["echo"], "no_reply", "the echo was sent and went unanswered");
}

#[test]
fn no_route_is_network_unreachable() {
    let (lab, client, _server) = two_hosts();
    let report = check(&lab, &client, "10.9.9.9:80", &[]);
    assert_eq!(cause(&report), "network_unreachable", "{report:#}");
    assert_eq!(report["attempts"][0]["errno"]["name"], "ENETUNREACH");
    assert!(summary(&report).contains("This host has no route"), "{report:#}");
}

#[test]
fn a_host_absent_behind_a_router_is_host_unreachable_reported_by_the_router() {
    let mut lab = Lab::new();
    let client = lab.host("client");
    let router = lab.host("router");
    lab.link(&client, "10.0.1.1/24", &router, "10.0.1.254/24");
    let far = lab.host("far");
    lab.link(&router, "10.0.2.254/24", &far, "10.0.2.1/24");
    lab.sh(&router, "sysctl -qw net.ipv4.ip_forward=1");
    lab.sh(&client, "ip route add default via 10.0.1.254");
    // 10.0.2.99 answers no ARP: the router gives up after its ARP retries.
    let report = check(&lab, &client, "10.0.2.99:80", &["--timeout-ms", "6000"]);
    assert_eq!(cause(&report), "host_unreachable", "{report:#}");
    assert_eq!(report["attempts"][0]["icmp"]["from"], "10.0.1.254");
    assert!(
        summary(&report).contains("router 10.0.1.254 reports 10.0.2.99 unreachable"),
        "{report:#}"
    );
}

#[test]
fn the_agents_own_output_reject_is_the_local_firewall() {
    let (lab, client, _server) = two_hosts();
    lab.sh(&client, "iptables -A OUTPUT -p tcp --dport 80 -j REJECT");
    let report = check(&lab, &client, &format!("{SERVER}:80"), &[]);
    assert_eq!(cause(&report), "local_firewall", "{report:#}");
    assert_eq!(report["attempts"][0]["icmp"]["from_local"], true);
}

#[test]
fn the_agents_own_output_drop_is_the_local_firewall() {
    let (lab, client, _server) = two_hosts();
    lab.sh(&client, "iptables -A OUTPUT -p tcp --dport 80 -j DROP");
    // The first SYN retransmission, whose local failure gives the rule away, comes after 1 s.
    let report = check(&lab, &client, &format!("{SERVER}:80"), &["--timeout-ms", "1500"]);
    assert_eq!(cause(&report), "local_firewall", "{report:#}");
    assert_eq!(report["attempts"][0]["state"], "timeout");
    assert!(finding(&report, "local_drops")["failed_retransmissions"].as_u64() >= Some(1));
}

#[test]
fn a_remote_drop_is_not_mistaken_for_a_local_one() {
    let (lab, client, server) = two_hosts();
    lab.sh(&server, "iptables -A INPUT -p tcp --dport 80 -j DROP");
    let report = check(&lab, &client, &format!("{SERVER}:80"), &["--timeout-ms", "1500"]);
    assert_eq!(cause(&report), "filtered", "{report:#}");
}

#[test]
fn a_listener_on_loopback_only_is_named_with_its_process() {
    let (mut lab, _client, server) = two_hosts();
    lab.spawn(&server, env!("CARGO_BIN_EXE_lab-server"), &["hold", "127.0.0.1:5432"]);
    lab.wait_listening(&server, 5432);
    // The agent runs on the target host itself and checks the host's own network address.
    let report = check(&lab, &server, &format!("{SERVER}:5432"), &[]);
    assert_eq!(cause(&report), "loopback_only", "{report:#}");
    assert!(summary(&report).contains("listens on 127.0.0.1:5432 only"), "{report:#}");
    let suggestions = report["verdict"]["suggestions"].to_string();
    assert!(suggestions.contains("(lab-server) owns 127.0.0.1:5432"), "{suggestions}");
}

#[test]
fn a_name_with_one_working_and_one_dead_address_is_partial() {
    let (mut lab, client, server) = two_hosts();
    lab.sh(&server, "ip addr add 10.0.1.3/24 dev v1b");
    lab.spawn(&server, env!("CARGO_BIN_EXE_lab-server"), &["hold", &format!("{SERVER}:80")]);
    lab.wait_listening(&server, 80);
    lab.sh(&server, "iptables -A INPUT -d 10.0.1.3 -p tcp --dport 80 -j DROP");
    let _hosts = HostsFile::new(&client, "10.0.1.2 svc.lab\n10.0.1.3 svc.lab\n");

    let report = check(&lab, &client, "svc.lab:80", &["--timeout-ms", "700"]);

    assert_eq!(
        report["dns"]["addresses"],
        serde_json::json!(["10.0.1.2", "10.0.1.3"]),
        "{report:#}"
    );
    assert_eq!(cause(&report), "partial", "{report:#}");
    assert!(summary(&report).contains("works on 10.0.1.2 but not on 10.0.1.3"), "{report:#}");
    let happy = finding(&report, "happy_eyeballs");
    assert_eq!(happy["winner"], "10.0.1.2", "a Happy Eyeballs client still connects: {happy}");
}

#[test]
fn a_listening_service_is_reachable() {
    let (mut lab, client, server) = two_hosts();
    lab.spawn(&server, env!("CARGO_BIN_EXE_lab-server"), &["hold", &format!("{SERVER}:80")]);
    lab.wait_listening(&server, 80);
    let report = check(&lab, &client, &format!("{SERVER}:80"), &[]);
    assert_eq!(cause(&report), "reachable", "{report:#}");
}

#[test]
fn retries_tell_a_persistent_failure() {
    let (lab, client, _server) = two_hosts();
    let report = check(
        &lab,
        &client,
        &format!("{SERVER}:80"),
        &["--retries", "2", "--retry-delay-ms", "50"],
    );
    assert_eq!(cause(&report), "port_closed", "{report:#}");
    assert_eq!(report["verdict"]["pattern"], "persistent");
    assert_eq!(report["rounds"].as_array().map(Vec::len), Some(3));
}
