//! whyrefused's `/probe` beside blackbox_exporter's, in a namespace lab: both run on the client
//! host with the same module file and probe the same targets (open, closed, DROP, REJECT, no
//! route, NXDOMAIN). blackbox_exporter says `probe_success 0` for every failure (the reason is
//! only in its debug log); whyrefused says which one it is. The table this prints is the
//! README's. Needs root (CI runs as root).

use whyrefused_tests::lab_check::EtcFiles;
use whyrefused_tests::{Host, Lab, agent_binary};

const SERVER: &str = "10.0.1.2";

/// One module file for both exporters: blackbox_exporter's format, read by whyrefused as is.
const MODULES: &str = "modules:\n  tcp_connect:\n    prober: tcp\n    timeout: 1s\n    tcp:\n      preferred_ip_protocol: ip4\n";

const WHYREFUSED: &str = "127.0.0.1:7070";
const BLACKBOX: &str = "127.0.0.1:9115";

/// The scenarios: a name for the table, the target, and the cause whyrefused must name.
const SCENARIOS: [(&str, &str, &str); 6] = [
    ("service listening", "10.0.1.2:8080", "reachable"),
    ("nothing listening", "10.0.1.2:80", "port_closed"),
    ("firewall DROP", "10.0.1.2:81", "filtered"),
    ("firewall REJECT (icmp-port-unreachable)", "10.0.1.2:82", "firewall_reject"),
    ("no route", "10.9.9.9:80", "network_unreachable"),
    ("name does not exist (NXDOMAIN)", "nosuch.lab:80", "dns_nxdomain"),
];

/// A client and a server on one link; the server holds port 8080 open, drops 81, rejects 82,
/// and answers DNS for `lab.` (every name but `web.lab` is NXDOMAIN).
fn lab() -> (Lab, Host, EtcFiles, tempfile::TempDir) {
    let mut lab = Lab::new();
    let client = lab.host("client");
    let server = lab.host("server");
    lab.link(&client, "10.0.1.1/24", &server, &format!("{SERVER}/24"));
    lab.spawn(&server, env!("CARGO_BIN_EXE_lab-server"), &["hold", &format!("{SERVER}:8080")]);
    lab.wait_listening(&server, 8080);
    lab.sh(&server, "iptables -A INPUT -p tcp --dport 81 -j DROP");
    lab.sh(
        &server,
        "iptables -A INPUT -p tcp --dport 82 -j REJECT --reject-with icmp-port-unreachable",
    );
    let pid_file = format!("--pid-file=/tmp/whyrefused-{}-dnsmasq.pid", server.netns);
    let listen = format!("--listen-address={SERVER}");
    let dns = [
        "--keep-in-foreground",
        "--no-resolv",
        "--no-hosts",
        "--bind-interfaces",
        "--local=/lab/",
        &pid_file,
        &listen,
    ];
    lab.spawn(&server, "/usr/sbin/dnsmasq", &dns);
    lab.wait_udp(&server, 53);
    let etc = EtcFiles::new(&client, "", SERVER);
    let directory = tempfile::tempdir().expect("a temporary directory");
    (lab, client, etc, directory)
}

/// Starts both exporters on the client's loopback with the same module file.
fn start_exporters(lab: &mut Lab, client: &Host, directory: &tempfile::TempDir) {
    let modules = directory.path().join("modules.yml");
    std::fs::write(&modules, MODULES).expect("the module file is written");
    let modules = modules.to_str().expect("UTF-8");
    let binary = agent_binary();
    let agent = ["serve", "--listen", WHYREFUSED, "--probe-config", modules];
    lab.spawn(client, binary.to_str().expect("UTF-8"), &agent);
    let config = format!("--config.file={modules}");
    let listen = format!("--web.listen-address={BLACKBOX}");
    lab.spawn(client, "prometheus-blackbox-exporter", &[&config, &listen]);
    lab.wait_listening(client, 7070);
    lab.wait_listening(client, 9115);
}

/// GETs `url` from inside the client host.
fn fetch(lab: &Lab, client: &Host, url: &str) -> String {
    let output = lab.run(client, "curl", &["-s", "--max-time", "10", url]);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The value of the first sample whose line starts with `series`.
fn value(exposition: &str, series: &str) -> Option<f64> {
    exposition
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().split(' ').next()?.parse().ok())
}

/// The cause whyrefused named.
fn cause(exposition: &str) -> String {
    let line = exposition.lines().find(|line| line.starts_with("whyrefused_probe_cause{"));
    line.and_then(|line| line.split('"').nth(1)).unwrap_or("(none)").to_string()
}

/// What blackbox_exporter's debug log says went wrong: its first error line's message.
fn blackbox_reason(debug: &str) -> String {
    let error = debug.lines().find(|line| line.contains("level=error") && line.contains("err="));
    error
        .and_then(|line| line.split("err=").nth(1))
        .map(|err| err.trim_matches('"').to_string())
        .unwrap_or_else(|| "-".into())
}

#[test]
fn whyrefused_names_the_cause_where_blackbox_exporter_says_only_probe_success_0() {
    let (mut lab, client, _etc, directory) = lab();
    start_exporters(&mut lab, &client, &directory);
    let mut table = String::from(
        "| scenario | blackbox_exporter | its debug log | whyrefused |\n|---|---|---|---|\n",
    );
    for (scenario, target, expected) in SCENARIOS {
        let query = format!("probe?target={target}&module=tcp_connect");
        let theirs = fetch(&lab, &client, &format!("http://{BLACKBOX}/{query}"));
        let ours = fetch(&lab, &client, &format!("http://{WHYREFUSED}/{query}"));
        let reason = blackbox_reason(&fetch(
            &lab,
            &client,
            &format!("http://{BLACKBOX}/{query}&debug=true"),
        ));
        let success = u8::from(expected == "reachable");
        assert_eq!(
            value(&theirs, "probe_success"),
            Some(f64::from(success)),
            "{scenario}: {theirs}"
        );
        assert_eq!(value(&ours, "probe_success"), Some(f64::from(success)), "{scenario}: {ours}");
        assert_eq!(cause(&ours), expected, "{scenario}: {ours}");
        if success == 1 {
            let hash = value(&theirs, "probe_ip_addr_hash");
            assert_eq!(value(&ours, "probe_ip_addr_hash"), hash, "the same address hash");
        }
        table += &format!(
            "| {scenario} | probe_success {success} | {reason} | probe_success {success}, cause `{expected}` |\n"
        );
    }
    println!("{table}");
}
