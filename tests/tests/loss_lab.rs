//! A lossy path in a namespace lab: a client, a router that drops forwarded packets (every
//! second one, or at random with iptables' statistic match: this kernel has no netem), and a
//! server with an open, a closed and a firewalled port. Checks must call some-answered-some-not
//! `packet_loss` (naming what the port is when packets get through), keep silence every time as
//! `filtered`, and say nothing of loss on a clean path; a scan through random loss must miss no
//! open port and call no more ports filtered than `nmap -sT -T4` does in the same run.

use serde_json::Value;
use whyrefused_tests::lab_check::{cause, check, finding, json_in, summary};
use whyrefused_tests::{Host, Lab};

const SERVER: &str = "10.0.2.1";
const OPEN: u16 = 8080;
const CLOSED: u16 = 8081;
const DROPPED: u16 = 8082;

/// Client, router, server; the server listens on [`OPEN`] and drops [`DROPPED`].
fn lab() -> (Lab, Host, Host) {
    let mut lab = Lab::new();
    let client = lab.host("client");
    let router = lab.host("router");
    let server = lab.host("server");
    lab.link(&client, "10.0.1.1/24", &router, "10.0.1.254/24");
    lab.link(&router, "10.0.2.254/24", &server, &format!("{SERVER}/24"));
    lab.sh(&router, "sysctl -qw net.ipv4.ip_forward=1");
    lab.sh(&client, "ip route add default via 10.0.1.254");
    lab.sh(&server, "ip route add default via 10.0.2.254");
    lab.sh(&server, &format!("iptables -A INPUT -p tcp --dport {DROPPED} -j DROP"));
    lab.spawn(&server, env!("CARGO_BIN_EXE_lab-server"), &["hold", &format!("{SERVER}:{OPEN}")]);
    lab.wait_listening(&server, OPEN);
    (lab, client, router)
}

/// A check of `port` with a deadline under the kernel's first SYN retransmission (1 s), so each
/// connect is one SYN, and no trace (its SYNs would take turns in the router's drop counter).
fn check_port(lab: &Lab, client: &Host, port: u16, extra: &[&str]) -> Value {
    let args = [&["--timeout-ms", "900", "--no-trace"][..], extra].concat();
    check(lab, client, &format!("{SERVER}:{port}"), &args)
}

#[test]
fn every_second_syn_lost_is_packet_loss_naming_the_port_open_or_closed_when_through() {
    let (lab, client, router) = lab();
    // Every second SYN to the liveness ports is lost too (one counter for all four): the path
    // to the host loses packets, not only the asked port's, and the liveness port says so.
    lab.sh(
        &router,
        "iptables -A FORWARD -p tcp -m multiport --dports 22,80,443,3389 --syn \
         -m statistic --mode nth --every 2 --packet 0 -j DROP",
    );
    for port in [OPEN, CLOSED] {
        // Every second SYN to the port is dropped, the first one included: the check's own
        // connect is silent and its five further connects alternate, three answered of six.
        lab.sh(
            &router,
            &format!(
                "iptables -A FORWARD -p tcp --dport {port} --syn \
                 -m statistic --mode nth --every 2 --packet 0 -j DROP"
            ),
        );
        let report = check_port(&lab, &client, port, &[]);
        assert_eq!(cause(&report), "packet_loss", "{report:#}");
        let loss = finding(&report, "loss");
        assert_eq!((loss["sent"].as_u64(), loss["answered"].as_u64()), (Some(6), Some(3)));
        assert_eq!(loss["rate"].as_f64(), Some(0.5));
        let text = summary(&report);
        assert!(text.contains("about 50% of connects unanswered (3 of 6), 95% CI"), "{text}");
        let through = if port == OPEN { "the port is open" } else { "the port is closed" };
        assert!(text.contains(through), "{text}");
        let other = &finding(&report, "liveness")["port_loss"];
        let (sent, answered) = (other["sent"].as_u64().unwrap(), other["answered"].as_u64());
        assert!(sent == 5 && matches!(answered, Some(2 | 3)), "{other:#}");
        assert!(text.contains("of the same host lost"), "{text}");
    }
}

#[test]
fn a_dropped_port_behind_a_lossy_router_is_still_filtered_and_a_clean_path_has_no_loss() {
    let (lab, client, router) = lab();
    // A clean path first: today's verdicts, and the further connects all silent.
    let report = check_port(&lab, &client, OPEN, &[]);
    assert_eq!(cause(&report), "reachable", "{report:#}");
    let report = check_port(&lab, &client, DROPPED, &[]);
    assert_eq!(cause(&report), "filtered", "{report:#}");
    let loss = finding(&report, "loss");
    assert_eq!((loss["sent"].as_u64(), loss["answered"].as_u64()), (Some(6), Some(0)));
    // Another port of the host answered every further try meanwhile: a clean path.
    let text = summary(&report);
    assert!(text.contains("of the same host answered all 5 tries"), "{text}");
    // Then with every second SYN lost: silence every time is still the firewall's.
    lab.sh(
        &router,
        &format!(
            "iptables -A FORWARD -p tcp --dport {DROPPED} --syn \
             -m statistic --mode nth --every 2 --packet 0 -j DROP"
        ),
    );
    let report = check_port(&lab, &client, DROPPED, &[]);
    assert_eq!(cause(&report), "filtered", "{report:#}");
}

#[test]
fn random_loss_over_retried_rounds_is_packet_loss_and_never_a_firewall() {
    let (lab, client, router) = lab();
    // 30% of packets to and from the open port are lost, each way: a try is answered with
    // probability 0.7 × 0.7 = 0.49. The verdict needs a silent try and an answered one among
    // 20 rounds: every round's first connect answered has probability 0.49^20 ≈ 6e-7, and no
    // try answered at all (20 rounds of six tries) 0.51^120 ≈ 1e-35.
    lab.sh(
        &router,
        &format!(
            "iptables -A FORWARD -p tcp --dport {OPEN} -m statistic --mode random --probability 0.3 -j DROP\n\
             iptables -A FORWARD -p tcp --sport {OPEN} -m statistic --mode random --probability 0.3 -j DROP"
        ),
    );
    let rounds = ["--retries", "19", "--retry-delay-ms", "0", "--timeout-ms", "600"];
    let report =
        check(&lab, &client, &format!("{SERVER}:{OPEN}"), &[&rounds[..], &["--no-trace"]].concat());
    assert_eq!(cause(&report), "packet_loss", "{report:#}");
    assert!(summary(&report).contains("the port is open"), "{}", summary(&report));
}

/// The ports whose state is `state` in a `scan --json --all` document.
fn ports_in(report: &Value, state: &str) -> Vec<u64> {
    report["results"]
        .as_array()
        .map(|results| {
            results
                .iter()
                .filter(|r| r["state"] == state)
                .filter_map(|r| r["port"].as_u64())
                .collect()
        })
        .unwrap_or_default()
}

/// nmap's filtered and open ports from its grepable output (`-oG -`): the ports line lists the
/// open ones, and "Ignored State: filtered (N)" counts the rest when they are many.
fn nmap_counts(output: &str) -> (usize, Vec<u64>) {
    let ports = output.lines().find_map(|line| line.split_once("Ports: ")).map(|(_, p)| p);
    let listed: Vec<&str> = ports.map(|p| p.split(", ").collect()).unwrap_or_default();
    let open = listed
        .iter()
        .filter(|entry| entry.contains("/open/"))
        .filter_map(|entry| entry.split('/').next()?.trim().parse().ok())
        .collect();
    let mut filtered = listed.iter().filter(|entry| entry.contains("/filtered/")).count();
    if let Some((_, ignored)) = output.split_once("Ignored State: filtered (") {
        filtered += ignored.split(')').next().and_then(|n| n.parse::<usize>().ok()).unwrap_or(0);
    }
    (filtered, open)
}

#[test]
fn a_scan_through_random_loss_misses_no_open_port_and_calls_no_more_filtered_than_nmap() {
    let (mut lab, client, router) = lab();
    let server = lab.host("server2");
    // A second listener far from the first, both within the scanned range.
    lab.link(&router, "10.0.3.254/24", &server, "10.0.3.1/24");
    lab.sh(&server, "ip route add default via 10.0.3.254");
    lab.spawn(&server, env!("CARGO_BIN_EXE_lab-server"), &["hold", "10.0.3.1:700"]);
    lab.spawn(&server, env!("CARGO_BIN_EXE_lab-server"), &["hold", "10.0.3.1:8080"]);
    lab.wait_listening(&server, 700);
    lab.wait_listening(&server, 8080);
    lab.sh(
        &router,
        "iptables -A FORWARD -p tcp -d 10.0.3.1 -m statistic --mode random --probability 0.3 -j DROP\n\
         iptables -A FORWARD -p tcp -s 10.0.3.1 -m statistic --mode random --probability 0.3 -j DROP",
    );
    let ours = json_in(
        &lab,
        &client,
        &["scan", "10.0.3.1", "--ports", "1-1000,8080", "--timeout-ms", "500", "--json", "--all"],
    );
    let nmap = lab.run(
        &client,
        "nmap",
        &["-sT", "-T4", "-Pn", "-n", "-p", "1-1000,8080", "-oG", "-", "10.0.3.1"],
    );
    let (nmap_filtered, nmap_open) = nmap_counts(&String::from_utf8_lossy(&nmap.stdout));
    let open = ports_in(&ours, "open");
    assert_eq!(open, [700, 8080], "no open port missed: {ours:#}");
    let filtered = ports_in(&ours, "timeout").len();
    assert!(
        filtered <= nmap_filtered,
        "whyrefused called {filtered} ports filtered, nmap -sT -T4 {nmap_filtered} (open {nmap_open:?}); {}",
        ours["loss"]
    );
    assert!(ours["loss"]["rate"].as_f64().is_some_and(|rate| rate > 0.2), "{}", ours["loss"]);
}
