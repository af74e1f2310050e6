//! Real network faults in a namespace lab: a client host and a server host on one link (and a
//! router where a scenario needs one), with firewalls and services set per scenario.
//! `whyrefused check` runs on the client (or on the server itself), and each test asserts the
//! cause and the evidence behind it.

use serde_json::Value;
use whyrefused_tests::lab_check::{EtcFiles, cause, check, finding, has_evidence, summary};
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
    let _etc = EtcFiles::new(&client, "10.0.1.2 svc.lab\n10.0.1.3 svc.lab\n", SERVER);

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

#[test]
fn a_server_that_accepts_and_closes_at_once_is_server_closed() {
    let (mut lab, client, server) = two_hosts();
    lab.spawn(&server, env!("CARGO_BIN_EXE_lab-server"), &["close", &format!("{SERVER}:5432")]);
    lab.wait_listening(&server, 5432);
    let report = check(&lab, &client, &format!("{SERVER}:5432"), &[]);
    assert_eq!(cause(&report), "server_closed", "{report:#}");
    assert_eq!(report["attempts"][0]["state"], "open", "the connect itself worked");
    assert_eq!(finding(&report, "after_connect")["early_close"], "closed");
    assert!(has_evidence(&report, "after connect", "closed the connection at once"), "{report:#}");
}

#[test]
fn a_banner_is_shown_and_the_service_is_reachable() {
    let (mut lab, client, server) = two_hosts();
    let address = format!("{SERVER}:22");
    lab.spawn(&server, env!("CARGO_BIN_EXE_lab-server"), &["banner", "SSH-2.0-lab", &address]);
    lab.wait_listening(&server, 22);
    let report = check(&lab, &client, &address, &[]);
    assert_eq!(cause(&report), "reachable", "{report:#}");
    assert_eq!(finding(&report, "after_connect")["banner"], "SSH-2.0-lab");
}

/// The lab's DNS server, dnsmasq on the server host, for the zone `lab.`: `web.lab` has
/// SERVER's address, `www.lab` is a CNAME to it, `noaddr.lab` exists with only a TXT record,
/// and every other name under `lab.` does not exist.
fn start_lab_dns(lab: &mut Lab, server: &Host) {
    let pid_file = format!("--pid-file=/tmp/whyrefused-{}-dnsmasq.pid", server.netns);
    let listen = format!("--listen-address={SERVER}");
    let web = format!("--host-record=web.lab,{SERVER}");
    let args = [
        "--keep-in-foreground",
        "--no-resolv",
        "--no-hosts",
        "--bind-interfaces",
        "--local=/lab/",
        "--cname=www.lab,web.lab",
        "--txt-record=noaddr.lab,no address here",
        &pid_file,
        &listen,
        &web,
    ];
    lab.spawn(server, "/usr/sbin/dnsmasq", &args);
    lab.wait_udp(server, 53);
}

/// The lab with its DNS server, the client asking it.
fn lab_with_dns() -> (Lab, Host, Host, EtcFiles) {
    let (mut lab, client, server) = two_hosts();
    start_lab_dns(&mut lab, &server);
    let etc = EtcFiles::new(&client, "", SERVER);
    (lab, client, server, etc)
}

fn answers(report: &Value) -> &Vec<Value> {
    finding(report, "dns_detail")["answers"].as_array().expect("answers")
}

#[test]
fn a_name_that_does_not_exist_is_nxdomain_naming_the_server_that_said_so() {
    let (lab, client, _server, _etc) = lab_with_dns();
    let report = check(&lab, &client, "nosuch.lab:80", &[]);
    assert_eq!(cause(&report), "dns_nxdomain", "{report:#}");
    assert!(summary(&report).contains("10.0.1.2 answered NXDOMAIN"), "{report:#}");
    assert!(answers(&report).iter().all(|a| a["rcode"] == "nx_domain"), "{report:#}");
    assert!(has_evidence(&report, "dns 10.0.1.2:53 A", "NXDOMAIN"), "{report:#}");
}

#[test]
fn a_name_without_address_records_is_dns_no_address() {
    let (lab, client, _server, _etc) = lab_with_dns();
    let report = check(&lab, &client, "noaddr.lab:80", &[]);
    assert_eq!(cause(&report), "dns_no_address", "{report:#}");
    assert!(answers(&report).iter().all(|a| a["rcode"] == "no_error"), "{report:#}");
    assert!(has_evidence(&report, "dns 10.0.1.2:53 AAAA", "NODATA"), "{report:#}");
}

#[test]
fn a_dead_resolver_is_dns_error_naming_the_silent_nameserver() {
    let (lab, client, server) = two_hosts();
    lab.sh(&server, "iptables -A INPUT -p udp --dport 53 -j DROP");
    let _etc = EtcFiles::new(&client, "", SERVER);
    let report = check(&lab, &client, "web.lab:80", &[]);
    assert_eq!(cause(&report), "dns_error", "{report:#}");
    assert!(summary(&report).contains("nameserver 10.0.1.2 is silent"), "{report:#}");
    assert!(answers(&report).iter().all(|a| a["rcode"] == "timeout"), "{report:#}");
}

#[test]
fn a_cname_chain_is_shown_beside_a_working_connection() {
    let (mut lab, client, server, _etc) = lab_with_dns();
    lab.spawn(&server, env!("CARGO_BIN_EXE_lab-server"), &["hold", &format!("{SERVER}:80")]);
    lab.wait_listening(&server, 80);
    let report = check(&lab, &client, "www.lab:80", &[]);
    assert_eq!(cause(&report), "reachable", "{report:#}");
    let a_answer = answers(&report).iter().find(|a| a["record"] == "A").expect("an A answer");
    assert_eq!(a_answer["cnames"], serde_json::json!(["web.lab"]), "{report:#}");
    assert_eq!(a_answer["addresses"], serde_json::json!([SERVER]), "{report:#}");
}

#[test]
fn a_stale_hosts_entry_that_overrides_dns_is_named() {
    let (lab, client, server) = two_hosts();
    let mut lab = lab;
    start_lab_dns(&mut lab, &server);
    lab.sh(&server, "ip addr add 10.0.1.3/24 dev v1b");
    // /etc/hosts sends web.lab to 10.0.1.3, where nothing listens; DNS says 10.0.1.2.
    let _etc = EtcFiles::new(&client, "10.0.1.3 web.lab\n", SERVER);
    let report = check(&lab, &client, "web.lab:80", &[]);
    assert_eq!(cause(&report), "port_closed", "{report:#}");
    assert_eq!(finding(&report, "dns_detail")["hosts_file"], serde_json::json!(["10.0.1.3"]));
    let suggestions = report["verdict"]["suggestions"].to_string();
    assert!(
        suggestions
            .contains("/etc/hosts on this host maps web.lab to 10.0.1.3, but DNS says 10.0.1.2"),
        "{suggestions}"
    );
}

/// A TLS server (openssl s_server) on SERVER:443 with a fresh self-signed certificate for
/// `name`; the files live as long as the returned directory.
fn start_tls_server(lab: &mut Lab, server: &Host, name: &str) -> tempfile::TempDir {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let (key, cert) = (directory.path().join("key.pem"), directory.path().join("cert.pem"));
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"])
        .args(["-nodes", "-days", "1", "-subj", &format!("/CN={name}")])
        .args(["-addext", &format!("subjectAltName=DNS:{name}")])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let (key, cert) = (key.to_str().expect("UTF-8"), cert.to_str().expect("UTF-8"));
    let args = ["s_server", "-quiet", "-www", "-accept", "443", "-key", key, "-cert", cert];
    lab.spawn(server, "openssl", &args);
    lab.wait_listening(server, 443);
    directory
}

#[test]
fn a_self_signed_certificate_for_another_name_is_a_tls_error_with_the_certificate_described() {
    let (mut lab, client, server, _etc) = lab_with_dns();
    let _certificate = start_tls_server(&mut lab, &server, "other.lab");
    let report = check(&lab, &client, "https://web.lab/", &[]);
    assert_eq!(cause(&report), "tls_error", "{report:#}");
    let tls = &finding(&report, "after_connect")["tls"];
    assert_eq!(tls["ok"], false);
    assert!(tls["error"].as_str().unwrap_or_default().contains("self-signed"), "{tls}");
    let certificate = &tls["certificate"];
    assert_eq!(certificate["subject"], "CN=other.lab", "{tls}");
    assert_eq!(certificate["subject_alt_names"], serde_json::json!(["other.lab"]));
    assert_eq!(certificate["name_matches"], false);
    let suggestions = report["verdict"]["suggestions"].to_string();
    assert!(suggestions.contains("The certificate is for other.lab, not web.lab"), "{suggestions}");
}

#[test]
fn an_http_server_is_reachable_with_its_status_and_phase_timings() {
    let (mut lab, client, server, _etc) = lab_with_dns();
    let root = tempfile::tempdir().expect("a temporary directory");
    let directory = root.path().to_str().expect("UTF-8");
    let args = ["-m", "http.server", "--bind", SERVER, "--directory", directory, "8000"];
    lab.spawn(&server, "python3", &args);
    lab.wait_listening(&server, 8000);
    let report = check(&lab, &client, "http://web.lab:8000/", &[]);
    assert_eq!(cause(&report), "reachable", "{report:#}");
    let after = finding(&report, "after_connect");
    assert_eq!(after["http"]["status"], 200, "{after}");
    let phases = &after["phases"];
    assert!(phases["dns_us"].as_u64() > Some(0), "{phases}");
    assert!(phases["connect_us"].as_u64() > Some(0), "{phases}");
    assert!(phases["first_byte_us"].as_u64() > Some(0), "{phases}");
}

/// Where a lab agent listens: on its own namespace's loopback, which only processes in that
/// namespace reach (each namespace has its own ports, so a fixed one is free).
const LAB_AGENT: &str = "127.0.0.1:7070";

/// Starts `whyrefused serve --listen LAB_AGENT ARGS` inside `host`.
fn start_agent(lab: &mut Lab, host: &Host, args: &[&str]) {
    let binary = agent_binary();
    let mut all = vec!["serve", "--listen", LAB_AGENT];
    all.extend_from_slice(args);
    lab.spawn(host, binary.to_str().expect("a UTF-8 path"), &all);
    lab.wait_listening(host, 7070);
}

/// Sends one request (`check TARGET` or `scan HOST PORTS`) to the agent in `host`, over its
/// WebSocket, from a client in the same namespace; returns the report, or `{"error": …}`.
fn ask_agent(lab: &Lab, host: &Host, request: &[&str]) -> Value {
    let url = format!("ws://{LAB_AGENT}/ws");
    let mut args = vec![url.as_str()];
    args.extend_from_slice(request);
    let output = lab.run(host, env!("CARGO_BIN_EXE_lab-client"), &args);
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("no JSON ({e}): {}", String::from_utf8_lossy(&output.stderr)))
}

/// Adds a firewall rule without a target to `host`'s INPUT chain, named `name`: it only counts
/// the packets that match.
fn count_packets(lab: &Lab, host: &Host, name: &str, rule: &str) {
    lab.sh(host, &format!("iptables -A INPUT {rule} -m comment --comment {name}"));
}

/// The packets the counting rule `name` has counted so far (`iptables -nvxL`: exact, packets
/// first).
fn counted(lab: &Lab, host: &Host, name: &str) -> u64 {
    let listing = lab.sh(host, "iptables -nvxL INPUT");
    let text = String::from_utf8_lossy(&listing.stdout);
    let line = text
        .lines()
        .find(|line| line.contains(&format!("/* {name} */")))
        .unwrap_or_else(|| panic!("no rule {name} in\n{text}"));
    line.split_whitespace().next().and_then(|n| n.parse().ok()).expect("a packet count")
}

#[test]
fn an_agent_denying_an_address_sends_it_nothing_and_names_the_rule() {
    let (mut lab, client, server) = two_hosts();
    // A second address on the server's end of the link (v1b), for the control.
    lab.sh(&server, "ip addr add 10.0.1.3/24 dev v1b");
    count_packets(&lab, &server, "denied-tcp", "-d 10.0.1.2 -p tcp");
    count_packets(&lab, &server, "denied-icmp", "-d 10.0.1.2 -p icmp");
    count_packets(&lab, &server, "allowed-syn", "-d 10.0.1.3 -p tcp --dport 80 --syn");
    start_agent(&mut lab, &client, &["--deny", "10.0.1.2/32"]);
    // The address itself, and its hex spelling that the system resolver turns into it.
    for target in ["10.0.1.2:80", "0xa000102:80"] {
        let report = ask_agent(&lab, &client, &["check", target]);
        assert_eq!(cause(&report), "policy_denied", "{report:#}");
        assert!(
            has_evidence(&report, "policy 10.0.1.2:80", "10.0.1.2 is denied by --deny 10.0.1.2/32"),
            "{report:#}"
        );
        assert_eq!(report["attempts"], serde_json::json!([]), "no attempt: {report:#}");
    }
    assert_eq!(counted(&lab, &server, "denied-tcp"), 0, "no TCP packet reached the address");
    assert_eq!(counted(&lab, &server, "denied-icmp"), 0, "no ICMP packet reached the address");
    // The control: the same agent checks an allowed address, and its SYN is counted.
    let report = ask_agent(&lab, &client, &["check", "10.0.1.3:80"]);
    assert_eq!(cause(&report), "port_closed", "{report:#}");
    assert!(counted(&lab, &server, "allowed-syn") >= 1, "the allowed SYN was counted");
}

#[test]
fn an_agent_with_allow_ports_sends_no_syn_to_another_port_not_even_a_nearby_one() {
    let (mut lab, client, server) = two_hosts();
    count_packets(&lab, &server, "syn-22", "-p tcp --syn --dport 22");
    count_packets(&lab, &server, "syn-other", "-p tcp --syn ! --dport 22");
    lab.spawn(&server, env!("CARGO_BIN_EXE_lab-server"), &["hold", &format!("{SERVER}:2222")]);
    lab.wait_listening(&server, 2222);
    start_agent(&mut lab, &client, &["--allow-ports", "22"]);
    let report = ask_agent(&lab, &client, &["check", &format!("{SERVER}:80")]);
    assert_eq!(cause(&report), "policy_denied", "{report:#}");
    assert!(summary(&report).contains("port 80 is not in --allow-ports 22"), "{report:#}");
    // Port 22 is allowed and closed: probed, but its nearby ports (2222 is open) are not.
    let report = ask_agent(&lab, &client, &["check", &format!("{SERVER}:22")]);
    assert_eq!(cause(&report), "port_closed", "{report:#}");
    assert_eq!(finding(&report, "nearby_ports")["probed"], 0, "{report:#}");
    assert!(counted(&lab, &server, "syn-22") >= 1, "the allowed SYN was counted");
    assert_eq!(counted(&lab, &server, "syn-other"), 0, "no SYN to any other port");
    // A scan asking for a port outside --allow-ports is refused whole, naming the rule.
    let refused = ask_agent(&lab, &client, &["scan", SERVER, "22,80"]);
    assert_eq!(refused["error"]["code"], "policy_denied", "{refused:#}");
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("port 80 is not in --allow-ports 22"), "{message}");
    assert_eq!(counted(&lab, &server, "syn-other"), 0, "the refused scan sent nothing");
}
