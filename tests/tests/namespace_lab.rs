//! A check from inside another network namespace than the host's, in a namespace lab: a
//! loopback target that fails names the namespace (127.0.0.1 there is its own loopback), says
//! how to reach the host, and with `--try-host` (on `check` and `explain`) tries the namespace's
//! gateway, where the service listens. And kube-proxy's "has no endpoints" REJECT rule names the Kubernetes
//! service it stands for.

use whyrefused_tests::lab_check::{cause, check, has_evidence, json_in, summary};
use whyrefused_tests::{Lab, closed_port};

#[test]
fn a_loopback_check_from_a_fresh_namespace_names_it_and_try_host_finds_the_host() {
    let mut lab = Lab::new();
    let inner = lab.host("app");
    let outer = lab.host("host");
    lab.link(&inner, "10.0.7.2/24", &outer, "10.0.7.1/24");
    lab.sh(&inner, "ip route add default via 10.0.7.1");
    // The service runs on the "host", listening on every address: not on the app's loopback.
    let port = closed_port();
    lab.spawn(&outer, "python3", &["-m", "http.server", "--bind", "0.0.0.0", &port.to_string()]);
    lab.wait_listening(&outer, port);

    let target = format!("127.0.0.1:{port}");
    let report = check(&lab, &inner, &target, &["--no-trace", "--timeout-ms", "500"]);
    assert_eq!(cause(&report), "port_closed", "{report:#}");
    let said = summary(&report);
    assert!(
        said.contains(&format!(
            "This check ran in the network namespace {}, not the host's",
            inner.netns
        )),
        "{said}"
    );
    assert!(said.contains("127.0.0.1 is that namespace's own loopback"), "{said}");
    assert!(has_evidence(&report, "network namespace", &format!("/run/netns/{}", inner.netns)));
    let first = report["verdict"]["suggestions"][0].as_str().unwrap_or_default();
    assert!(first.contains(&format!("gateway 10.0.7.1:{port}")), "{first}");

    let tried = check(&lab, &inner, &target, &["--no-trace", "--timeout-ms", "500", "--try-host"]);
    assert!(has_evidence(&tried, &format!("try host 10.0.7.1:{port}"), "open"), "{tried:#}");
    let first = tried["verdict"]["suggestions"][0].as_str().unwrap_or_default();
    assert_eq!(
        first,
        format!(
            "The host answers on 10.0.7.1:{port}: point the program there instead of 127.0.0.1."
        )
    );

    // `explain` on the program's own error tries the host the same way.
    let error = format!("Error: connect ECONNREFUSED 127.0.0.1:{port}");
    let args = ["explain", &error, "--json", "--no-trace", "--timeout-ms", "500", "--try-host"];
    let explained = json_in(&lab, &inner, &args);
    let checked = &explained["checks"][0];
    assert!(has_evidence(checked, &format!("try host 10.0.7.1:{port}"), "open"), "{explained:#}");
}

#[test]
fn a_kube_proxy_reject_rule_names_the_service_without_endpoints() {
    let mut lab = Lab::new();
    let node = lab.host("node");
    let peer = lab.host("peer");
    lab.link(&node, "10.0.8.2/24", &peer, "10.0.8.1/24");
    // kube-proxy's rule for a NodePort whose service has no ready pod, as iptables-save writes it.
    lab.sh(
        &node,
        "iptables -N KUBE-EXTERNAL-SERVICES && iptables -A INPUT -j KUBE-EXTERNAL-SERVICES && \
         iptables -A KUBE-EXTERNAL-SERVICES -p tcp -m comment --comment \
         'shop/web:http has no endpoints' -m addrtype --dst-type LOCAL -m tcp --dport 30080 \
         -j REJECT --reject-with icmp-port-unreachable",
    );
    let report = check(&lab, &node, "10.0.8.2:30080", &["--no-trace", "--timeout-ms", "500"]);
    assert_eq!(cause(&report), "firewall_reject", "{report:#}");
    let said = summary(&report);
    assert!(
        said.contains(
            "rejected by kube-proxy: the Kubernetes service shop/web:http has no endpoints"
        ),
        "{said}"
    );
    let first = report["verdict"]["suggestions"][0].as_str().unwrap_or_default();
    assert!(first.contains("kubectl get endpointslices -n shop"), "{first}");
}
