//! Where the packets die, in a namespace lab: a client, two routers in a row and a far server
//! (IPv4 and IPv6 on every link), with a DROP for one port in the first router's FORWARD chain,
//! for another in the second router's, for a third on the server's INPUT; a silent host behind
//! the routers; an open port two routers away. Each test asserts the hops, `reached`,
//! `last_answered` and the verdict's words.

use serde_json::Value;
use whyrefused_tests::lab_check::{EtcFiles, cause, check, finding, json_in, summary};
use whyrefused_tests::{Host, Lab};

const R1: &str = "10.0.1.254";
const R2: &str = "10.0.2.254";
const SERVER: &str = "10.0.3.2";
const SILENT: &str = "10.0.4.2";
const R1_V6: &str = "fd31:1::254";
const R2_V6: &str = "fd31:2::254";
const SERVER_V6: &str = "fd31:3::2";

/// Port 81 is dropped by router 1's FORWARD chain, 82 by router 2's, 83 by the server's INPUT;
/// port 80 is open on the server.
const DROPPED_AT_ROUTER_1: u16 = 81;
const DROPPED_AT_ROUTER_2: u16 = 82;
const DROPPED_AT_SERVER: u16 = 83;

/// client — r1 — r2 — server (and a silent host beside the server), with the drops above.
struct Path3 {
    lab: Lab,
    client: Host,
}

fn three_hop_lab() -> Path3 {
    let mut lab = Lab::new();
    let client = lab.host("client");
    let r1 = lab.host("r1");
    let r2 = lab.host("r2");
    let server = lab.host("server");
    let silent = lab.host("silent");
    // Link-local addresses usable at once too (no duplicate address detection): until then a
    // router cannot solicit its neighbours, and the first IPv6 SYNs past it would be lost.
    for host in [&client, &r1, &r2, &server, &silent] {
        lab.sh(
            host,
            "sysctl -qw net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0",
        );
    }
    let (c, r1_west) = lab.link(&client, "10.0.1.1/24", &r1, &format!("{R1}/24"));
    let (r1_east, r2_west) = lab.link(&r1, "10.0.2.1/24", &r2, &format!("{R2}/24"));
    let (r2_east, s) = lab.link(&r2, "10.0.3.254/24", &server, &format!("{SERVER}/24"));
    lab.address(&client, &c, "fd31:1::1/64");
    lab.address(&r1, &r1_west, &format!("{R1_V6}/64"));
    lab.address(&r1, &r1_east, "fd31:2::1/64");
    lab.address(&r2, &r2_west, &format!("{R2_V6}/64"));
    lab.address(&r2, &r2_east, "fd31:3::254/64");
    lab.address(&server, &s, &format!("{SERVER_V6}/64"));
    // The silent host hangs off router 2 on a link of its own and drops everything.
    lab.link(&r2, "10.0.4.254/24", &silent, &format!("{SILENT}/24"));
    // Routers forward, and answer every expired SYN: Linux's default ICMP rate limit (a burst
    // of 6 per destination, then 1 a second) would make the checks run at once here race for
    // it. A real router that rate-limits shows as a silent hop, retried.
    let forwarding = "sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
                      net.ipv4.icmp_ratelimit=0 net.ipv6.icmp.ratelimit=0";
    lab.sh(&r1, &format!("{forwarding} && ip route add 10.0.3.0/24 via 10.0.2.254 && ip route add 10.0.4.0/24 via 10.0.2.254 && ip -6 route add fd31:3::/64 via fd31:2::254"));
    lab.sh(&r2, &format!("{forwarding} && ip route add 10.0.1.0/24 via 10.0.2.1 && ip -6 route add fd31:1::/64 via fd31:2::1"));
    lab.sh(
        &client,
        "ip route add default via 10.0.1.254 && ip -6 route add default via fd31:1::254",
    );
    lab.sh(
        &server,
        "ip route add default via 10.0.3.254 && ip -6 route add default via fd31:3::254",
    );
    lab.sh(&silent, "ip route add default via 10.0.4.254 && iptables -P INPUT DROP");
    for (host, chain, port) in [
        (&r1, "FORWARD", DROPPED_AT_ROUTER_1),
        (&r2, "FORWARD", DROPPED_AT_ROUTER_2),
        (&server, "INPUT", DROPPED_AT_SERVER),
    ] {
        lab.sh(
            host,
            &format!(
                "iptables -A {chain} -p tcp --dport {port} -j DROP && \
                 ip6tables -A {chain} -p tcp --dport {port} -j DROP"
            ),
        );
    }
    // One dual-stack socket serves both families.
    lab.spawn(&server, env!("CARGO_BIN_EXE_lab-server"), &["hold", "[::]:80"]);
    lab.wait_listening(&server, 80);
    Path3 { lab, client }
}

/// A silent check of `target` with the trace, quick and without reverse DNS.
fn silent_check(setup: &Path3, target: &str) -> Value {
    check(&setup.lab, &setup.client, target, &["--timeout-ms", "1200", "--no-rdns"])
}

fn hop_addresses(path: &Value) -> Vec<String> {
    path["hops"]
        .as_array()
        .expect("hops")
        .iter()
        .map(|hop| hop["address"].as_str().unwrap_or("*").to_string())
        .collect()
}

fn last_answered(path: &Value) -> (u64, String) {
    let last = &path["last_answered"];
    (last["ttl"].as_u64().unwrap_or(0), last["address"].as_str().unwrap_or("").to_string())
}

/// Runs the three dropped ports' checks at once (each waits out its timeout).
fn three_drops(setup: &Path3, server: &str) -> [Value; 3] {
    let target = |port: u16| match server.contains(':') {
        true => format!("[{server}]:{port}"),
        false => format!("{server}:{port}"),
    };
    std::thread::scope(|scope| {
        let checks = [DROPPED_AT_ROUTER_1, DROPPED_AT_ROUTER_2, DROPPED_AT_SERVER].map(|port| {
            let target = target(port);
            scope.spawn(move || silent_check(setup, &target))
        });
        checks.map(|handle| handle.join().expect("the check ran"))
    })
}

#[test]
fn drops_at_each_router_and_at_the_server_are_placed_where_the_client_can_tell() {
    let setup = three_hop_lab();
    let [at_r1, at_r2, at_server] = three_drops(&setup, SERVER);

    // Router 1 answers TTL 1 (the TTL is checked before its FORWARD chain) and drops the rest;
    // the server answers port 80 three hops away, so the loss is two hops before it.
    assert_eq!(cause(&at_r1), "filtered", "{at_r1:#}");
    let path = &at_r1["path"];
    assert_eq!(path["address"], SERVER);
    assert_eq!(hop_addresses(path)[0], R1, "{path:#}");
    assert_eq!(path["hops"][0]["reply"], "time_exceeded");
    assert_eq!(path["reached"], false);
    assert_eq!(last_answered(path), (1, R1.to_string()), "{path:#}");
    assert_eq!(path["target_ttl"], 3, "{path:#}");
    assert_eq!(finding(&at_r1, "path")["address"], SERVER);
    assert!(
        summary(&at_r1).contains(&format!(
            "Packets to port 81 pass {R1} (hop 1) and are lost after it, 2 hops before {SERVER}."
        )),
        "{at_r1:#}"
    );

    // A drop in router 2's FORWARD chain and one on the server's INPUT look the same from
    // here: both leave router 2, the last router, as the last answer. The verdict says so.
    for (report, port) in [(&at_r2, DROPPED_AT_ROUTER_2), (&at_server, DROPPED_AT_SERVER)] {
        assert_eq!(cause(report), "filtered", "{report:#}");
        let path = &report["path"];
        assert_eq!(hop_addresses(path)[..2], [R1, R2], "{path:#}");
        assert_eq!(last_answered(path), (2, R2.to_string()), "{path:#}");
        assert_eq!(path["reached"], false);
        let words = summary(report);
        assert!(words.contains(&format!("Packets to port {port} pass {R2} (hop 2)")), "{words}");
        assert!(
            words.contains(&format!("either it or {SERVER}'s own firewall drops them")),
            "{words}"
        );
        assert!(words.contains("its own firewall is the likelier one"), "{words}");
    }
}

#[test]
fn a_silent_host_behind_the_routers_is_lost_after_the_last_router_that_answers() {
    let setup = three_hop_lab();
    let report = silent_check(&setup, &format!("{SILENT}:80"));
    assert_eq!(cause(&report), "no_response", "{report:#}");
    let path = &report["path"];
    assert_eq!(hop_addresses(path)[..2], [R1, R2], "{path:#}");
    assert_eq!(path["hops"][2]["reply"], "silent", "{path:#}");
    assert_eq!(path["hops"][2]["tries"], 3, "a silent hop next to the last answer is retried");
    assert_eq!(last_answered(path), (2, R2.to_string()));
    assert!(path["target_ttl"].is_null(), "nothing on the host answers: no distance");
    let words = summary(&report);
    assert!(words.contains(&format!("pass {R2} (hop 2) and are lost after it")), "{words}");
    assert!(!words.contains("likelier"), "the host answers nothing: no lean either way");
}

#[test]
fn an_open_port_two_routers_away_is_reached_at_hop_3_and_trace_names_the_hops() {
    let setup = three_hop_lab();
    let _names = EtcFiles::new(&setup.client, &format!("{R1} r1.lab\n{R2} r2.lab\n"), "10.0.1.254");
    let report = check(&setup.lab, &setup.client, &format!("{SERVER}:80"), &["--trace"]);
    assert_eq!(cause(&report), "reachable", "{report:#}");
    let path = &report["path"];
    assert_eq!(hop_addresses(path), [R1, R2, SERVER], "{path:#}");
    assert_eq!(path["reached"], true);
    assert_eq!(path["hops"][2]["reply"], "reached");
    assert_eq!(last_answered(path), (3, SERVER.to_string()));
    let names: Vec<&str> =
        path["hops"].as_array().unwrap().iter().map(|h| h["name"].as_str().unwrap_or("")).collect();
    assert_eq!(names, ["r1.lab", "r2.lab", ""], "names from the host's own /etc/hosts");

    let traced = json_in(&setup.lab, &setup.client, &["trace", &format!("{SERVER}:80"), "--json"]);
    assert_eq!(hop_addresses(&traced["path"]), [R1, R2, SERVER], "{traced:#}");
    assert_eq!(traced["path"]["reached"], true);
    let filtered = json_in(
        &setup.lab,
        &setup.client,
        &["trace", "10.0.3.2:81", "--json", "--no-rdns", "--timeout-ms", "300"],
    );
    assert_eq!(last_answered(&filtered["path"]), (1, R1.to_string()), "{filtered:#}");
    assert!(filtered["summary"].as_str().unwrap().contains(&format!("pass {R1} (hop 1)")));
}

#[test]
fn ipv6_drops_are_placed_by_hop_limit_as_ipv4_ones_are() {
    let setup = three_hop_lab();
    let [at_r1, at_r2, _at_server] = three_drops(&setup, SERVER_V6);
    assert_eq!(cause(&at_r1), "filtered", "{at_r1:#}");
    assert_eq!(last_answered(&at_r1["path"]), (1, R1_V6.to_string()), "{at_r1:#}");
    assert_eq!(at_r1["path"]["hops"][0]["icmp"]["icmp_type"], 3, "ICMPv6 time exceeded");
    assert!(
        summary(&at_r1).contains(&format!(
            "pass {R1_V6} (hop 1) and are lost after it, 2 hops before {SERVER_V6}"
        )),
        "{at_r1:#}"
    );
    assert_eq!(last_answered(&at_r2["path"]), (2, R2_V6.to_string()), "{at_r2:#}");
    assert!(summary(&at_r2).contains("likelier"), "{at_r2:#}");
    let open =
        check(&setup.lab, &setup.client, &format!("[{SERVER_V6}]:80"), &["--trace", "--no-rdns"]);
    assert_eq!(hop_addresses(&open["path"]), [R1_V6, R2_V6, SERVER_V6], "{open:#}");
}
