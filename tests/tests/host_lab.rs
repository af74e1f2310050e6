//! The agent on the target host itself, in a namespace lab: the firewall rule that stops a
//! connect to the host's own address is named exactly, from its counters (native nftables and
//! iptables-nft, DROP and REJECT, IPv4 and IPv6); a rule without a counter is a candidate; an
//! agent without CAP_NET_ADMIN says what it needs and keeps its verdict.

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
