//! The IPv6 twin of every IPv4 lab scenario (tests/lab.rs), on links that carry both families
//! (ULA addresses, without duplicate address detection): each fault must get the cause its IPv4
//! twin gets, with the ICMPv6 error and its sender as evidence. Then names with an A and an
//! AAAA record where both families work, or only one, and what a Happy Eyeballs client ends up
//! with; and a scan where every ICMPv6-answered port falls in its IPv4 twin's group.

use std::collections::BTreeMap;

use serde_json::Value;
use whyrefused_tests::lab_check::{EtcFiles, cause, check, finding, has_evidence, summary};
use whyrefused_tests::{Host, Lab, agent_binary};

const CLIENT4: &str = "10.0.1.1/24";
const CLIENT6: &str = "fd13:1::1/64";
const SERVER4: &str = "10.0.1.2";
const SERVER6: &str = "fd13:1::2";

/// A client and a server on one link that carries IPv4 and IPv6.
fn two_hosts() -> (Lab, Host, Host) {
    let mut lab = Lab::new();
    let client = lab.host("client");
    let server = lab.host("server");
    let (client_end, server_end) = lab.link(&client, CLIENT4, &server, &format!("{SERVER4}/24"));
    lab.address(&client, &client_end, CLIENT6);
    lab.address(&server, &server_end, &format!("{SERVER6}/64"));
    (lab, client, server)
}

/// `[SERVER6]:port`.
fn server6(port: u16) -> String {
    format!("[{SERVER6}]:{port}")
}

/// The first attempt's connect time, in milliseconds.
fn connect_ms(report: &Value) -> f64 {
    report["attempts"][0]["elapsed_ms"].as_f64().expect("an elapsed_ms")
}

#[test]
fn ipv6_a_listening_service_is_reachable() {
    let (mut lab, client, server) = two_hosts();
    lab.spawn(&server, env!("CARGO_BIN_EXE_lab-server"), &["hold", &server6(80)]);
    lab.wait_listening(&server, 80);
    let report = check(&lab, &client, &server6(80), &[]);
    assert_eq!(cause(&report), "reachable", "{report:#}");
    assert_eq!(report["attempts"][0]["family"], "ipv6");
}

#[test]
fn ipv6_nothing_listening_is_port_closed_with_nearby_open_ports_suggested() {
    let (mut lab, client, server) = two_hosts();
    lab.spawn(&server, env!("CARGO_BIN_EXE_lab-server"), &["hold", &server6(8080)]);
    lab.wait_listening(&server, 8080);
    let report = check(&lab, &client, &server6(80), &[]);
    assert_eq!(cause(&report), "port_closed", "{report:#}");
    assert_eq!(report["attempts"][0]["state"], "refused");
    assert!(report["attempts"][0]["icmp"].is_null(), "a real reset carries no ICMPv6");
    assert_eq!(finding(&report, "nearby_ports")["open"], serde_json::json!([8080]));
    assert!(summary(&report).starts_with("Nothing listens on port 80 of fd13:1::2"), "{report:#}");
}

#[test]
fn ipv6_a_reject_with_tcp_reset_looks_like_a_closed_port_and_says_so() {
    let (lab, client, server) = two_hosts();
    lab.sh(&server, "ip6tables -A INPUT -p tcp --dport 80 -j REJECT --reject-with tcp-reset");
    let report = check(&lab, &client, &server6(80), &[]);
    assert_eq!(cause(&report), "port_closed", "{report:#}");
    assert!(has_evidence(&report, "note", "firewall rejecting with a TCP reset"), "{report:#}");
}

#[test]
fn ipv6_a_reject_with_icmp6_port_unreachable_is_a_firewall_reject_from_the_host_at_once() {
    let (lab, client, server) = two_hosts();
    lab.sh(
        &server,
        "ip6tables -A INPUT -p tcp --dport 80 -j REJECT --reject-with icmp6-port-unreachable",
    );
    let report = check(&lab, &client, &server6(80), &[]);
    assert_eq!(cause(&report), "firewall_reject", "{report:#}");
    let attempt = &report["attempts"][0];
    assert_eq!(attempt["state"], "refused", "as IPv4's port unreachable: {attempt}");
    assert_eq!(attempt["errno"]["name"], "ECONNREFUSED");
    let icmp = &attempt["icmp"];
    assert_eq!((icmp["icmp_type"].as_u64(), icmp["code"].as_u64()), (Some(1), Some(4)), "{icmp}");
    assert_eq!((&icmp["from"], &icmp["from_local"]), (&Value::from(SERVER6), &Value::from(false)));
    assert!(
        summary(&report).contains("port unreachable from fd13:1::2 (the host's own firewall)"),
        "{report:#}"
    );
    // The error is on the socket's error queue long before the SYN would be sent again (1 s).
    assert!(connect_ms(&report) < 500.0, "{attempt}");
}

#[test]
fn ipv6_a_reject_with_admin_prohibited_is_the_remote_firewall_naming_eacces_at_once() {
    let (lab, client, server) = two_hosts();
    lab.sh(&server, "ip6tables -A INPUT -p tcp --dport 82 -j REJECT --reject-with adm-prohibited");
    let report = check(&lab, &client, &server6(82), &[]);
    assert_eq!(cause(&report), "firewall_reject", "not this host's firewall: {report:#}");
    let attempt = &report["attempts"][0];
    // IPv4's admin-prohibited is host_unreachable (EHOSTUNREACH); IPv6's arrives as EACCES.
    assert_eq!(attempt["state"], "host_unreachable", "{attempt}");
    assert_eq!(attempt["errno"]["name"], "EACCES", "the errno the socket gave: {attempt}");
    assert_eq!(
        (attempt["icmp"]["code"].as_u64(), &attempt["icmp"]["from_local"]),
        (Some(1), &Value::from(false))
    );
    assert!(
        summary(&report).contains(
            "communication administratively prohibited from fd13:1::2 (the host's own firewall)"
        ),
        "{report:#}"
    );
    assert!(!summary(&report).contains("EPERM"), "{report:#}");
    assert!(connect_ms(&report) < 500.0, "{attempt}");
}

#[test]
fn ipv6_a_reject_that_answers_only_the_retransmitted_syn_is_explained() {
    let (lab, client, server) = two_hosts();
    // What the sender's ICMPv6 rate limit does to a REJECT it has just used: the first SYN
    // gets nothing (here: dropped, deterministically), the one sent again 1 s later an error.
    lab.sh(
        &server,
        "ip6tables -A INPUT -p tcp --dport 82 --syn -m recent --name seen --rcheck \
           -j REJECT --reject-with adm-prohibited && \
         ip6tables -A INPUT -p tcp --dport 82 --syn -m recent --name seen --set -j DROP",
    );
    let report = check(&lab, &client, &server6(82), &[]);
    assert_eq!(cause(&report), "firewall_reject", "{report:#}");
    assert!(connect_ms(&report) >= 1000.0, "{report:#}");
    assert!(
        has_evidence(&report, "note", "answered a retransmitted SYN"),
        "the second it took is explained: {report:#}"
    );
    assert!(has_evidence(&report, "note", "net.ipv6.icmp.ratelimit"), "{report:#}");
}

#[test]
fn ipv6_a_dropping_firewall_on_an_up_host_is_filtered_not_mistaken_for_a_local_drop() {
    let (lab, client, server) = two_hosts();
    lab.sh(&server, "ip6tables -A INPUT -p tcp --dport 80 -j DROP");
    // Past the first SYN retransmission (1 s): it leaves this host, so no local drop is counted.
    let report = check(&lab, &client, &server6(80), &["--timeout-ms", "1500"]);
    assert_eq!(cause(&report), "filtered", "{report:#}");
    let findings = report["findings"].to_string();
    assert!(!findings.contains("local_drops"), "{findings}");
    assert_eq!(report["attempts"][0]["state"], "timeout");
    let liveness = finding(&report, "liveness");
    assert_eq!(
        (&liveness["host_up"], &liveness["echo"]),
        (&Value::from(true), &Value::from("replied")),
        "an ICMPv6 echo answered: {liveness}"
    );
    assert!(has_evidence(&report, "liveness port 22", "refused (the host is up)"), "{report:#}");
}

#[test]
fn ipv6_a_host_that_drops_everything_is_no_response() {
    let (lab, client, server) = two_hosts();
    // Everything but neighbour discovery, as an IPv6 host must: without it the client would not
    // even find the host's link-layer address.
    lab.sh(
        &server,
        "ip6tables -A INPUT -p icmpv6 --icmpv6-type neighbour-solicitation -j ACCEPT && \
         ip6tables -A INPUT -p icmpv6 --icmpv6-type neighbour-advertisement -j ACCEPT && \
         ip6tables -P INPUT DROP",
    );
    let report = check(&lab, &client, &server6(80), &["--timeout-ms", "500"]);
    assert_eq!(cause(&report), "no_response", "{report:#}");
    let liveness = finding(&report, "liveness");
    assert_eq!(liveness["host_up"], false);
    assert_eq!(liveness["echo"], "no_reply", "the ICMPv6 echo was sent and went unanswered");
}

#[test]
fn ipv6_no_route_is_network_unreachable() {
    let (lab, client, _server) = two_hosts();
    let report = check(&lab, &client, "[fd13:9::9]:80", &[]);
    assert_eq!(cause(&report), "network_unreachable", "{report:#}");
    assert_eq!(report["attempts"][0]["errno"]["name"], "ENETUNREACH");
    assert!(summary(&report).contains("This host has no route"), "{report:#}");
}

#[test]
fn ipv6_a_host_absent_behind_a_router_is_host_unreachable_and_an_unrouted_network_network_unreachable()
 {
    let mut lab = Lab::new();
    let client = lab.host("client");
    let router = lab.host("router");
    lab.link(&client, "fd13:1::1/64", &router, "fd13:1::254/64");
    let far = lab.host("far");
    let (toward_far, _) = lab.link(&router, "fd13:2::254/64", &far, "fd13:2::1/64");
    // Neighbour discovery gives up after two solicitations 100 ms apart (three of 1 s by
    // default), then the router answers ICMPv6 address unreachable.
    lab.sh(
        &router,
        &format!(
            "sysctl -qw net.ipv6.conf.all.forwarding=1 \
             net.ipv6.neigh.{toward_far}.retrans_time_ms=100 \
             net.ipv6.neigh.{toward_far}.mcast_solicit=2"
        ),
    );
    lab.sh(&client, "ip -6 route add default via fd13:1::254");
    let report = check(&lab, &client, "[fd13:2::99]:80", &["--timeout-ms", "3000"]);
    assert_eq!(cause(&report), "host_unreachable", "{report:#}");
    let icmp = &report["attempts"][0]["icmp"];
    assert_eq!((icmp["icmp_type"].as_u64(), icmp["code"].as_u64()), (Some(1), Some(3)), "{icmp}");
    assert_eq!(icmp["meaning"], "address unreachable");
    assert_eq!(icmp["from"], "fd13:1::254");
    assert!(
        summary(&report).contains("router fd13:1::254 reports fd13:2::99 unreachable"),
        "{report:#}"
    );
    // A network the router has no route to: ICMPv6 "no route to destination" (EHOSTUNREACH),
    // IPv4's "network unreachable" (ENETUNREACH).
    let report = check(&lab, &client, "[fd13:9::9]:80", &[]);
    assert_eq!(cause(&report), "network_unreachable", "{report:#}");
    assert_eq!(report["attempts"][0]["icmp"]["code"], 0, "{report:#}");
    assert!(
        summary(&report).contains("router fd13:1::254 has no route to fd13:9::9's network"),
        "{report:#}"
    );
}

#[test]
fn ipv6_the_agents_own_output_reject_is_the_local_firewall_whatever_the_icmpv6_code() {
    let (lab, client, _server) = two_hosts();
    // The default (port unreachable, ECONNREFUSED) and admin-prohibited (EACCES).
    lab.sh(
        &client,
        "ip6tables -A OUTPUT -p tcp --dport 80 -j REJECT && \
         ip6tables -A OUTPUT -p tcp --dport 81 -j REJECT --reject-with adm-prohibited",
    );
    for (port, errno) in [(80, "ECONNREFUSED"), (81, "EACCES")] {
        let report = check(&lab, &client, &server6(port), &[]);
        assert_eq!(cause(&report), "local_firewall", "{report:#}");
        let attempt = &report["attempts"][0];
        assert_eq!(
            (&attempt["errno"]["name"], &attempt["icmp"]["from_local"]),
            (&Value::from(errno), &Value::from(true)),
            "{attempt}"
        );
        let suggestions = report["verdict"]["suggestions"].to_string();
        assert!(suggestions.contains("ip6tables -S OUTPUT"), "{suggestions}");
    }
}

#[test]
fn ipv6_the_agents_own_output_drop_is_the_local_firewall() {
    let (lab, client, _server) = two_hosts();
    lab.sh(&client, "ip6tables -A OUTPUT -p tcp --dport 80 -j DROP");
    // The first SYN retransmission, whose local failure gives the rule away, comes after 1 s.
    let report = check(&lab, &client, &server6(80), &["--timeout-ms", "1500"]);
    assert_eq!(cause(&report), "local_firewall", "{report:#}");
    assert_eq!(report["attempts"][0]["state"], "timeout");
    assert!(finding(&report, "local_drops")["failed_retransmissions"].as_u64() >= Some(1));
}

#[test]
fn ipv6_a_listener_on_loopback_only_is_named_in_brackets() {
    let (mut lab, _client, server) = two_hosts();
    // ::1 only, and an IPv6 socket bound to the IPv4-mapped loopback.
    lab.spawn(
        &server,
        env!("CARGO_BIN_EXE_lab-server"),
        &["hold", "[::1]:5432", "[::ffff:127.0.0.1]:5433"],
    );
    lab.wait_listening(&server, 5433);
    lab.wait_listening(&server, 5432);
    // The agent runs on the target host itself and checks the host's own network address.
    let report = check(&lab, &server, &server6(5432), &[]);
    assert_eq!(cause(&report), "loopback_only", "{report:#}");
    assert!(summary(&report).contains("listens on [::1]:5432 only"), "{report:#}");
    let suggestions = report["verdict"]["suggestions"].to_string();
    assert!(suggestions.contains("owns [::1]:5432"), "{suggestions}");
    assert!(suggestions.contains("listen on :: or this host's address"), "{suggestions}");
    let mapped = check(&lab, &server, &format!("{SERVER4}:5433"), &[]);
    assert_eq!(cause(&mapped), "loopback_only", "{mapped:#}");
    assert!(summary(&mapped).contains("[::ffff:127.0.0.1]:5433 only"), "{mapped:#}");
    let loopback = check(&lab, &server, "127.0.0.1:5433", &[]);
    assert_eq!(cause(&loopback), "reachable", "the mapped listener takes 127.0.0.1: {loopback:#}");
}

/// The lab's DNS server for the zone `lab.`, on the server host: `both.lab` has an A and an
/// AAAA record for the server, where a service listens on both families; `v4only.lab` has the
/// server's A and an AAAA whose port drops everything (`fd13:1::3`); `v6only.lab` has the
/// server's AAAA and an A where nothing listens (`10.0.1.3`).
fn dual_stack_lab() -> (Lab, Host, EtcFiles) {
    let (mut lab, client, server) = two_hosts();
    lab.address(&server, "v1b", "10.0.1.3/24");
    lab.address(&server, "v1b", "fd13:1::3/64");
    lab.sh(&server, "ip6tables -A INPUT -d fd13:1::3 -p tcp -j DROP");
    lab.spawn(
        &server,
        env!("CARGO_BIN_EXE_lab-server"),
        &["hold", &format!("{SERVER4}:80"), &server6(80)],
    );
    let pid_file = format!("--pid-file=/tmp/whyrefused-{}-dnsmasq.pid", server.netns);
    let listen = format!("--listen-address={SERVER4}");
    let both = format!("--host-record=both.lab,{SERVER4},{SERVER6}");
    let args = [
        "--keep-in-foreground",
        "--no-resolv",
        "--no-hosts",
        "--bind-interfaces",
        "--local=/lab/",
        "--host-record=v4only.lab,10.0.1.2,fd13:1::3",
        "--host-record=v6only.lab,10.0.1.3,fd13:1::2",
        &pid_file,
        &listen,
        &both,
    ];
    lab.spawn(&server, "/usr/sbin/dnsmasq", &args);
    lab.wait_udp(&server, 53);
    lab.wait_listening(&server, 80);
    let etc = EtcFiles::new(&client, "", SERVER4);
    (lab, client, etc)
}

#[test]
fn dual_stack_names_work_on_both_families_or_name_the_broken_one_with_the_happy_eyeballs_outcome() {
    let (lab, client, _etc) = dual_stack_lab();

    let both = check(&lab, &client, "both.lab:80", &["--timeout-ms", "700"]);
    assert_eq!(cause(&both), "reachable", "{both:#}");
    let addresses: Vec<&str> =
        both["dns"]["addresses"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(addresses.contains(&SERVER4) && addresses.contains(&SERVER6), "{addresses:?}");
    let happy = finding(&both, "happy_eyeballs");
    let first = &happy["order"][0];
    assert_eq!(&happy["winner"], first, "the first address tried connects: {happy}");

    let v4only = check(&lab, &client, "v4only.lab:80", &["--timeout-ms", "700"]);
    assert_eq!(cause(&v4only), "partial", "{v4only:#}");
    assert!(summary(&v4only).contains("works on 10.0.1.2 but not on fd13:1::3"), "{v4only:#}");
    let happy = finding(&v4only, "happy_eyeballs");
    assert_eq!(
        (&happy["winner"], &happy["family"]),
        (&Value::from(SERVER4), &Value::from("ipv4")),
        "{happy}"
    );

    let v6only = check(&lab, &client, "v6only.lab:80", &["--timeout-ms", "700"]);
    assert_eq!(cause(&v6only), "partial", "{v6only:#}");
    assert!(summary(&v6only).contains("works on fd13:1::2 but not on 10.0.1.3"), "{v6only:#}");
    let happy = finding(&v6only, "happy_eyeballs");
    assert_eq!(
        (&happy["winner"], &happy["family"]),
        (&Value::from(SERVER6), &Value::from("ipv6")),
        "{happy}"
    );
}

/// `whyrefused scan ADDRESS --json` from the client: each reported port's state and the ICMP
/// error's meaning (`-` without one).
fn scan_states(lab: &Lab, client: &Host, address: &str, ports: &str) -> BTreeMap<u64, String> {
    let binary = agent_binary();
    let output = lab.run(
        client,
        binary.to_str().expect("a UTF-8 path"),
        &["scan", address, "--ports", ports, "--timeout-ms", "300", "--retries", "0", "--json"],
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON from whyrefused");
    report["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            let icmp = r["icmp"]["meaning"].as_str().unwrap_or("-");
            (r["port"].as_u64().unwrap(), format!("{} {icmp}", r["state"].as_str().unwrap()))
        })
        .collect()
}

#[test]
fn ipv6_scan_puts_every_icmpv6_answered_port_in_its_ipv4_twins_group() {
    let (mut lab, client, server) = two_hosts();
    // Every REJECT answers (no ICMP rate limit), the same rule in each family.
    lab.sh(
        &server,
        "sysctl -qw net.ipv4.icmp_ratelimit=0 net.ipv6.icmp.ratelimit=0 && \
         for t in iptables ip6tables; do $t -A INPUT -p tcp --dport 20010 -j DROP; \
         $t -A INPUT -p tcp --dport 20040 -j REJECT --reject-with tcp-reset; done && \
         iptables -A INPUT -p tcp --dport 20060 -j REJECT --reject-with icmp-port-unreachable && \
         ip6tables -A INPUT -p tcp --dport 20060 -j REJECT --reject-with icmp6-port-unreachable && \
         iptables -A INPUT -p tcp --dport 20090 -j REJECT --reject-with icmp-admin-prohibited && \
         ip6tables -A INPUT -p tcp --dport 20090 -j REJECT --reject-with adm-prohibited",
    );
    let (open4, open6) = (format!("{SERVER4}:20001"), server6(20001));
    lab.spawn(&server, env!("CARGO_BIN_EXE_lab-server"), &["hold", &open4, &open6]);
    lab.wait_listening(&server, 20001);
    let ports = "20000-20099";
    let ipv4 = scan_states(&lab, &client, SERVER4, ports);
    let ipv6 = scan_states(&lab, &client, SERVER6, ports);
    assert_eq!(ipv6, ipv4, "each port's state and ICMP meaning, IPv6 against IPv4");
    let expected = [
        (20001, "open -"),
        (20010, "timeout -"),
        (20060, "refused port unreachable"),
        (20090, "host_unreachable communication administratively prohibited"),
    ];
    let expected: BTreeMap<u64, String> =
        expected.into_iter().map(|(port, state)| (port, state.to_string())).collect();
    assert_eq!(ipv6, expected, "closed and reset ports are counted, not listed");
    // The readable summary: the same groups, with the ICMPv6-rejected port under "rejected".
    let binary = agent_binary();
    let summary = lab.run(
        &client,
        binary.to_str().unwrap(),
        &["scan", SERVER6, "--ports", ports, "--timeout-ms", "300", "--retries", "0"],
    );
    let text = String::from_utf8_lossy(&summary.stdout);
    assert!(text.contains("rejected            1"), "{text}");
    assert!(text.contains("host unreachable    1"), "{text}");
    assert!(!text.contains("denied here"), "{text}");
}
