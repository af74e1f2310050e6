//! `--resolver`: a check that resolves with named DNS servers instead of the system resolver,
//! and says where their answers differ from the system's. In a namespace lab (so no lookup
//! leaves it): the "system" nameserver (dnsmasq on 127.0.0.53) gives the name one address,
//! the named resolver (dnsmasq on 127.0.0.1:5353) another, where the service listens. And DNS
//! over TLS against a small DoT server this test runs on loopback.

use whyrefused_tests::lab_check::{EtcFiles, cause, check, finding, has_evidence};
use whyrefused_tests::{Host, Lab};

/// A dnsmasq in `host` on `address:port` that gives `db.lab` the address `db`.
fn dnsmasq(lab: &mut Lab, host: &Host, address: &str, port: u16, db: &str) {
    let pid_file = format!("--pid-file=/tmp/whyrefused-{}-{port}-dnsmasq.pid", host.netns);
    let args = [
        "--keep-in-foreground".to_string(),
        "--no-resolv".into(),
        "--no-hosts".into(),
        "--bind-interfaces".into(),
        "--local=/lab/".into(),
        format!("--listen-address={address}"),
        format!("--port={port}"),
        format!("--host-record=db.lab,{db}"),
        pid_file,
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    lab.spawn(host, "/usr/sbin/dnsmasq", &args);
    lab.wait_udp(host, port);
}

#[test]
fn a_named_resolver_is_used_instead_of_the_systems_and_the_difference_is_said() {
    let mut lab = Lab::new();
    let client = lab.host("client");
    lab.sh(&client, "ip addr add 127.0.0.53/8 dev lo 2>/dev/null || true");
    let _etc = EtcFiles::new(&client, "", "127.0.0.53");
    dnsmasq(&mut lab, &client, "127.0.0.53", 53, "127.0.0.2");
    dnsmasq(&mut lab, &client, "127.0.0.1", 5353, "127.0.0.1");
    lab.spawn(&client, "python3", &["-m", "http.server", "--bind", "127.0.0.1", "8080"]);
    lab.wait_listening(&client, 8080);
    let quick = ["--no-trace", "--timeout-ms", "500"];

    let system = check(&lab, &client, "db.lab:8080", &quick);
    assert_eq!(cause(&system), "loopback_only", "the system's 127.0.0.2: {system:#}");

    let args = [&quick[..], &["--resolver", "127.0.0.1:5353"]].concat();
    let asked = check(&lab, &client, "db.lab:8080", &args);
    assert_eq!(cause(&asked), "reachable", "{asked:#}");
    assert_eq!(asked["dns"]["method"], "resolver");
    assert_eq!(asked["dns"]["addresses"][0], "127.0.0.1");
    let detail = finding(&asked, "dns_detail");
    assert_eq!(detail["system"]["addresses"][0], "127.0.0.2", "{detail:#}");
    assert!(
        has_evidence(
            &asked,
            "resolvers compared",
            "system resolver: 127.0.0.2; 127.0.0.1:5353: 127.0.0.1 (differs)"
        ),
        "{asked:#}"
    );
    let suggestions = asked["verdict"]["suggestions"].to_string();
    assert!(suggestions.contains("The resolvers disagree about db.lab"), "{suggestions}");
}
