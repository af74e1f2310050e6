//! The agent on the target host itself, in a namespace lab: the firewall rule that stops a
//! connect to the host's own address is named exactly, from its counters (native nftables and
//! iptables-nft, DROP and REJECT, IPv4 and IPv6); a rule without a counter is a candidate; an
//! agent without CAP_NET_ADMIN says what it needs and keeps its verdict. A listener whose
//! accept queue is full, or whose process is stopped, is named with its pid. And on the client
//! side, a host whose ephemeral ports are all held names the process holding them.

use serde_json::Value;
use whyrefused_tests::lab_check::{cause, check, finding, has_evidence, summary};
use whyrefused_tests::{Host, Lab, agent_binary};

const SERVER: &str = "10.0.1.2";
const SERVER6: &str = "fd00:1::2";

/// A server host with an IPv4 and an IPv6 address of its own (on a link to a client that is
/// only there to give the addresses an interface).
fn server() -> (Lab, Host) {
    let mut lab = Lab::new();
    let client = lab.host("client");
    let server = lab.host("server");
    let (_, server_end) = lab.link(&client, "10.0.1.1/24", &server, &format!("{SERVER}/24"));
    lab.address(&server, &server_end, &format!("{SERVER6}/64"));
    (lab, server)
}

/// The check's short options: the rule probe needs no long wait, and no path to trace.
const QUICK: [&str; 3] = ["--timeout-ms", "300", "--no-trace"];

fn named_rule(report: &Value) -> &Value {
    let found = finding(report, "firewall_rule");
    assert!(found["unreadable"].is_null(), "{found:#}");
    &found["matched"][0]
}

fn place(rule: &Value) -> String {
    let family = if rule["tool"] == "nft" { &rule["family"] } else { &rule["tool"] };
    let (family, table, chain) = (
        family.as_str().unwrap(),
        rule["table"].as_str().unwrap(),
        rule["chain"].as_str().unwrap(),
    );
    format!("{family} {table} {chain} rule {}", rule["position"])
}

#[test]
fn nftables_drop_and_reject_rules_are_named_exactly_on_ipv4_and_ipv6() {
    let (lab, server) = server();
    lab.sh(
        &server,
        "nft add table inet filter && nft add chain inet filter input '{ type filter hook input \
         priority 0; }' && nft add rule inet filter input tcp dport 22 accept && nft add rule \
         inet filter input tcp dport 81 counter drop && nft add rule inet filter input tcp dport \
         82 counter reject with tcp reset",
    );
    let dropped = check(&lab, &server, &format!("{SERVER}:81"), &QUICK);
    assert_eq!(cause(&dropped), "filtered", "{dropped:#}");
    let rule = named_rule(&dropped);
    assert_eq!(
        (place(rule).as_str(), rule["text"].as_str()),
        ("inet filter input rule 2", Some("tcp dport 81 counter drop"))
    );
    assert_eq!(finding(&dropped, "firewall_rule")["exact"], true, "{dropped:#}");
    assert!(
        summary(&dropped)
            .contains("is dropped by this host's own firewall: `inet filter input rule 2`"),
        "{dropped:#}"
    );

    let rejected = check(&lab, &server, &format!("{SERVER}:82"), &QUICK);
    assert_eq!(
        cause(&rejected),
        "firewall_reject",
        "a reset from a rule, not a closed port: {rejected:#}"
    );
    assert_eq!(place(named_rule(&rejected)), "inet filter input rule 3", "{rejected:#}");
    assert_eq!(named_rule(&rejected)["action"], "reject");

    let dropped6 = check(&lab, &server, &format!("[{SERVER6}]:81"), &QUICK);
    assert_eq!(cause(&dropped6), "filtered", "{dropped6:#}");
    assert_eq!(place(named_rule(&dropped6)), "inet filter input rule 2", "{dropped6:#}");
}

#[test]
fn iptables_nft_drop_and_reject_rules_are_named_with_their_chain_position() {
    let (lab, server) = server();
    lab.sh(
        &server,
        "iptables -A INPUT -p tcp --dport 22 -j ACCEPT && iptables -A INPUT -p tcp --dport 83 -j \
         DROP && iptables -A INPUT -p tcp --dport 84 -j REJECT --reject-with tcp-reset && \
         ip6tables -A INPUT -p tcp --dport 83 -j DROP",
    );
    let dropped = check(&lab, &server, &format!("{SERVER}:83"), &QUICK);
    assert_eq!(cause(&dropped), "filtered", "{dropped:#}");
    let rule = named_rule(&dropped);
    assert_eq!(place(rule), "iptables filter INPUT rule 2", "{dropped:#}");
    assert_eq!(rule["text"], "-A INPUT -p tcp -m tcp --dport 83 -j DROP");
    assert!(has_evidence(&dropped, "firewall rule", "(exact"), "{dropped:#}");
    let suggestions = dropped["verdict"]["suggestions"].to_string();
    assert!(suggestions.contains("iptables -t filter -D INPUT 2"), "{suggestions}");

    let rejected = check(&lab, &server, &format!("{SERVER}:84"), &QUICK);
    assert_eq!(cause(&rejected), "firewall_reject", "{rejected:#}");
    assert_eq!(place(named_rule(&rejected)), "iptables filter INPUT rule 3", "{rejected:#}");

    let dropped6 = check(&lab, &server, &format!("[{SERVER6}]:83"), &QUICK);
    assert_eq!(place(named_rule(&dropped6)), "ip6tables filter INPUT rule 1", "{dropped6:#}");
}

#[test]
fn a_rule_without_a_counter_is_a_candidate_and_without_cap_net_admin_the_verdict_stays() {
    let (lab, server) = server();
    lab.sh(
        &server,
        "nft add table inet filter && nft add chain inet filter input '{ type filter hook input \
         priority 0; }' && nft add rule inet filter input tcp dport 85 drop && nft add rule inet \
         filter input tcp dport 86 drop",
    );
    let report = check(&lab, &server, &format!("{SERVER}:85"), &QUICK);
    assert_eq!(cause(&report), "filtered", "{report:#}");
    let found = finding(&report, "firewall_rule");
    assert!(found["matched"].is_null() && found["exact"].is_null(), "{found:#}");
    let candidates: Vec<String> =
        found["candidates"].as_array().unwrap().iter().map(place).collect();
    assert_eq!(candidates, ["inet filter input rule 1"], "port 86's rule cannot match: {found:#}");
    assert!(has_evidence(&report, "firewall candidates", "tcp dport 85 drop"), "{report:#}");

    // The same check by an agent without CAP_NET_ADMIN (root, with it removed from its bounding
    // set, so the exec'd agent cannot have it).
    let binary = agent_binary();
    let args = ["--bounding-set=-net_admin", "--", binary.to_str().unwrap(), "check"];
    let target = format!("{SERVER}:85");
    let output = lab.run(&server, "setpriv", &[&args[..], &[&target, "--json"], &QUICK].concat());
    let unprivileged: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stderr)));
    assert_eq!(cause(&unprivileged), cause(&report), "{unprivileged:#}");
    let needs = finding(&unprivileged, "firewall_rule")["unreadable"].as_str().unwrap_or_default();
    assert!(needs.starts_with("needs CAP_NET_ADMIN"), "{needs}");
    assert!(
        has_evidence(&unprivileged, "firewall rules", "needs CAP_NET_ADMIN"),
        "{unprivileged:#}"
    );
}

/// Starts a Python listener on `address` with `backlog` that never accepts; `then` runs after
/// `listen` (Python statements, with `s` the socket and `os`, `signal`, `socket` imported).
fn python_listener(lab: &mut Lab, host: &Host, address: (&str, u16), backlog: u32, then: &str) {
    let (ip, port) = address;
    let script = format!(
        "import os, signal, socket, time\ns = socket.socket()\ns.bind(('{ip}', {port}))\n\
         s.listen({backlog})\n{then}\ntime.sleep(120)\n"
    );
    lab.spawn(host, "python3", &["-c", &script]);
    lab.wait_listening(host, port);
}

#[test]
fn a_full_accept_queue_is_backlog_full_naming_the_process_and_its_backlog() {
    let (mut lab, server) = server();
    // Backlog 1 holds two finished handshakes; the listener's own two connects fill it.
    let fill = "held = [socket.create_connection(('10.0.1.2', 8081)) for _ in range(2)]";
    python_listener(&mut lab, &server, (SERVER, 8081), 1, fill);
    let report = check(&lab, &server, &format!("{SERVER}:8081"), &QUICK);
    assert_eq!(cause(&report), "backlog_full", "{report:#}");
    assert!(summary(&report).contains("is full (2/1): pid "), "{report:#}");
    assert!(summary(&report).contains("(python3) is not accepting"), "{report:#}");
    let listener = &finding(&report, "local_listeners")["listeners"][0];
    assert_eq!(listener["queue"], serde_json::json!({"waiting": 2, "backlog": 1}), "{listener}");
    let overflows = finding(&report, "local_listeners")["listen_overflows"].as_u64();
    assert!(overflows >= Some(1), "the check's SYNs were dropped: {report:#}");
}

#[test]
fn a_listener_whose_process_is_stopped_is_server_stopped_naming_its_pid() {
    let (mut lab, server) = server();
    let pid_file = tempfile::NamedTempFile::new().unwrap();
    let path = pid_file.path().display().to_string();
    let stop = format!(
        "open('{path}', 'w').write(str(os.getpid()))\nos.kill(os.getpid(), signal.SIGSTOP)"
    );
    python_listener(&mut lab, &server, (SERVER, 8082), 16, &stop);
    let pid = wait_stopped(&path);

    // A plain connect opens (the kernel completes it), an HTTP request then times out.
    for target in [format!("{SERVER}:8082"), format!("http://{SERVER}:8082/")] {
        let report = check(&lab, &server, &target, &["--timeout-ms", "400", "--no-trace"]);
        assert_eq!(cause(&report), "server_stopped", "{target}: {report:#}");
        assert!(
            summary(&report)
                .contains(&format!("owned by pid {pid} (python3), which is stopped (T")),
            "{report:#}"
        );
        assert!(
            report["verdict"]["suggestions"].to_string().contains(&format!("kill -CONT {pid}"))
        );
    }
}

/// The pid written to `path`, once that process is stopped (state `T`).
fn wait_stopped(path: &str) -> u32 {
    let start = std::time::Instant::now();
    loop {
        let pid =
            std::fs::read_to_string(path).ok().and_then(|text| text.trim().parse::<u32>().ok());
        let stat = pid.and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok());
        let stopped = |stat: &str| {
            stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('T'))
        };
        if let (Some(pid), Some(stat)) = (pid, stat)
            && stopped(&stat)
        {
            return pid;
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(10), "the listener never stopped");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn a_client_whose_ports_are_all_held_is_local_ports_exhausted_naming_the_holder() {
    let mut lab = Lab::new();
    let client = lab.host("client");
    let server = lab.host("server");
    lab.link(&client, "10.0.1.1/24", &server, &format!("{SERVER}/24"));
    lab.spawn(&server, env!("CARGO_BIN_EXE_lab-server"), &["hold", &format!("{SERVER}:80")]);
    lab.wait_listening(&server, 80);
    lab.sh(&client, "sysctl -qw net.ipv4.ip_local_port_range='40000 40003'");
    let fill = format!(
        "import socket, time\nheld = []\ntry:\n    while True:\n        held.append(\
         socket.create_connection(('{SERVER}', 80)))\nexcept OSError:\n    pass\ntime.sleep(120)\n"
    );
    lab.spawn(&client, "python3", &["-c", &fill]);
    wait_established(&lab, &client, 4);

    let report = check(&lab, &client, &format!("{SERVER}:80"), &QUICK);
    assert_eq!(cause(&report), "local_ports_exhausted", "{report:#}");
    assert_eq!(report["attempts"][0]["errno"]["name"], "EADDRNOTAVAIL");
    assert!(
        summary(&report).contains(
            "4 of the 4 ports of its range (40000-40003) are held by \
                                   connections to it (4 established, 0 in TIME_WAIT); pid "
        ),
        "{report:#}"
    );
    assert!(summary(&report).contains("(python3) holds 4 of them"), "{report:#}");
    let held = finding(&report, "local_ports");
    assert_eq!(held["range"], serde_json::json!([40000, 40003]), "{held}");
}

/// Waits until `host` has `count` established TCP connections.
fn wait_established(lab: &Lab, host: &Host, count: usize) {
    let start = std::time::Instant::now();
    loop {
        let out = lab.run(host, "ss", &["-Htn", "state", "established"]);
        if String::from_utf8_lossy(&out.stdout).lines().count() >= count {
            return;
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(10), "not {count} connections");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
