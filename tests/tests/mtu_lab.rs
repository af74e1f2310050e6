//! The path-MTU black hole in a namespace lab: a client, two routers and a far server, the link
//! between the routers at MTU 1300. With ICMP "fragmentation needed" dropped on both routers, a
//! TLS handshake with a large certificate and an HTTP response of 20 KB open and then stall;
//! the check proves the black hole with smaller MSSes and names the path's MTU. With the ICMP
//! let through (path-MTU discovery works) or the MTU restored, the verdicts are today's.

use std::process::Command;

use serde_json::Value;
use whyrefused_tests::lab_check::{cause, summary};
use whyrefused_tests::{Host, Lab, agent_binary};

/// The far server, behind both routers.
const FAR: &str = "10.0.6.2";

/// The MTU of the link between the routers.
const NARROW_MTU: u32 = 1300;

/// The TLS and HTTP ports on the far server, and a plain TCP service that does not speak first.
const TLS_PORT: u16 = 9443;
const HTTP_PORT: u16 = 8080;
const QUIET_PORT: u16 = 7000;

/// A check's connect and exchange deadline: short, so a stall costs little test time.
const TIMEOUT_MS: &str = "1500";

/// The lab: the client, the far server (with both servers running), and the routers.
struct MtuLab {
    lab: Lab,
    client: Host,
    routers: [Host; 2],
    /// The CA the client trusts (`SSL_CERT_FILE`) and the server's files.
    files: tempfile::TempDir,
    /// The routers' interfaces on the narrow link.
    narrow: [String; 2],
}

/// How the lab's routers treat big packets.
#[derive(Clone, Copy)]
enum Path {
    /// The narrow link, and "fragmentation needed" dropped on both routers.
    BlackHole,
    /// The narrow link, and the ICMP let through.
    PmtuDiscoveryWorks,
    /// The link at 1500 again (the ICMP still dropped, never needed).
    MtuRestored,
}

fn lab(path: Path) -> MtuLab {
    let mut lab = Lab::new();
    let client = lab.host("client");
    let r1 = lab.host("r1");
    let r2 = lab.host("r2");
    let far = lab.host("far");
    lab.link(&client, "10.0.5.1/24", &r1, "10.0.5.254/24");
    let (narrow_r1, narrow_r2) = lab.link(&r1, "10.0.7.1/24", &r2, "10.0.7.2/24");
    lab.link(&r2, "10.0.6.254/24", &far, &format!("{FAR}/24"));
    lab.sh(&client, "ip route add default via 10.0.5.254");
    lab.sh(&far, "ip route add default via 10.0.6.254");
    lab.sh(&r1, "sysctl -qw net.ipv4.ip_forward=1 && ip route add 10.0.6.0/24 via 10.0.7.2");
    lab.sh(&r2, "sysctl -qw net.ipv4.ip_forward=1 && ip route add 10.0.5.0/24 via 10.0.7.1");
    let mtu = match path {
        Path::MtuRestored => 1500,
        Path::BlackHole | Path::PmtuDiscoveryWorks => NARROW_MTU,
    };
    lab.sh(&r1, &format!("ip link set {narrow_r1} mtu {mtu}"));
    lab.sh(&r2, &format!("ip link set {narrow_r2} mtu {mtu}"));
    if matches!(path, Path::BlackHole | Path::MtuRestored) {
        for router in [&r1, &r2] {
            lab.sh(
                router,
                "iptables -A OUTPUT -p icmp --icmp-type fragmentation-needed -j DROP && \
                 iptables -A FORWARD -p icmp --icmp-type fragmentation-needed -j DROP",
            );
        }
    }
    let files = tempfile::tempdir().expect("a temporary directory");
    start_servers(&mut lab, &far, &files);
    MtuLab { lab, client, routers: [r1, r2], files, narrow: [narrow_r1, narrow_r2] }
}

/// On the far server: a TLS server (openssl s_server) whose certificate, signed by a CA of the
/// test's own, carries enough names to be several segments long; and an HTTP server with a
/// 20 KB file.
fn start_servers(lab: &mut Lab, far: &Host, files: &tempfile::TempDir) {
    let dir = files.path().to_str().expect("UTF-8");
    let names: Vec<String> =
        (0..40).map(|n| format!("DNS:name-{n:02}.a-rather-long.lab")).collect();
    let script = format!(
        "set -e; cd {dir}
         openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
           -subj /CN=lab-ca -keyout ca-key.pem -out ca.pem 2>/dev/null
         openssl req -newkey rsa:2048 -nodes -subj /CN={FAR} -keyout key.pem -out req.pem 2>/dev/null
         printf 'subjectAltName=IP:{FAR},{names}\\nbasicConstraints=CA:FALSE\\n' > ext.cnf
         openssl x509 -req -in req.pem -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 1 \
           -extfile ext.cnf -out cert.pem 2>/dev/null
         mkdir www && head -c 20480 /dev/zero | tr '\\0' x > www/big.txt",
        names = names.join(",")
    );
    lab.sh(far, &script);
    let (key, cert) = (format!("{dir}/key.pem"), format!("{dir}/cert.pem"));
    let port = TLS_PORT.to_string();
    let args = ["s_server", "-quiet", "-www", "-accept", &port, "-key", &key, "-cert", &cert];
    lab.spawn(far, "openssl", &args);
    // `exec`, so the lab kills python itself; its request log is not the test's output.
    let http = format!(
        "exec python3 -m http.server --bind {FAR} --directory {dir}/www {HTTP_PORT} 2>/dev/null"
    );
    lab.spawn(far, "sh", &["-c", &http]);
    let quiet = format!("{FAR}:{QUIET_PORT}");
    lab.spawn(far, env!("CARGO_BIN_EXE_lab-server"), &["hold", &quiet]);
    lab.wait_listening(far, QUIET_PORT);
    lab.wait_listening(far, TLS_PORT);
    lab.wait_listening(far, HTTP_PORT);
}

impl MtuLab {
    /// `whyrefused check TARGET --json` on the client, trusting the lab's CA.
    fn check(&self, target: &str) -> Value {
        self.check_with(target, &[])
    }

    /// The same, with more arguments.
    fn check_with(&self, target: &str, args: &[&str]) -> Value {
        let ca = self.files.path().join("ca.pem");
        let output = Command::new("ip")
            .args(["netns", "exec", &self.client.netns])
            .arg(agent_binary())
            .args(["check", target, "--json", "--timeout-ms", TIMEOUT_MS])
            .args(args)
            .env("SSL_CERT_FILE", ca)
            .output()
            .expect("ip netns exec runs");
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!("no JSON ({e}): {}", String::from_utf8_lossy(&output.stderr))
        })
    }
}

fn tls_target() -> String {
    format!("https://{FAR}:{TLS_PORT}/")
}

fn http_target() -> String {
    format!("http://{FAR}:{HTTP_PORT}/big.txt")
}

/// The MSS probe's finding, if the check ran one.
fn mtu_probe(report: &Value) -> Option<&Value> {
    report["findings"].as_array()?.iter().find(|f| f["probe"] == "mtu_probe")
}

/// The path MTU the probe implies: its largest completed (non-default) MSS with its headers.
fn implied_mtu(probe: &Value) -> u64 {
    let tries = probe["tries"].as_array().expect("tries");
    let largest = tries
        .iter()
        .filter(|t| t["completed"] == true && t["default"] != true)
        .filter_map(|t| t["mss"].as_u64())
        .max()
        .expect("an MSS that completed");
    largest + probe["header_bytes"].as_u64().expect("header bytes")
}

fn assert_black_hole(report: &Value, exchange: &str) {
    assert_eq!(cause(report), "mtu_black_hole", "{report:#}");
    let probe = mtu_probe(report).expect("an mtu_probe finding");
    assert_eq!(probe["exchange"], exchange, "{probe:#}");
    let tries = probe["tries"].as_array().unwrap();
    assert_eq!(
        (tries[0]["mss"].as_u64(), tries[0]["completed"].as_bool()),
        (Some(536), Some(true))
    );
    assert!(tries.iter().any(|t| t["default"] == true && t["completed"] == false), "{probe:#}");
    assert!(tries.len() <= 10, "bounded: {probe:#}");
    let mtu = implied_mtu(probe);
    assert!(mtu.abs_diff(u64::from(NARROW_MTU)) <= 40, "implied MTU {mtu}: {probe:#}");
    let words = format!("larger than about {mtu} bytes never arrive from {FAR}");
    assert!(summary(report).contains(&words), "{report:#}");
    let suggestions = report["verdict"]["suggestions"].to_string();
    assert!(suggestions.contains("ICMP type 3 code 4"), "{suggestions}");
    assert!(suggestions.contains("--clamp-mss-to-pmtu"), "{suggestions}");
    assert!(suggestions.contains(&format!("mtu {mtu}")), "{suggestions}");
}

#[test]
fn a_black_hole_stalls_tls_and_http_and_small_segments_prove_it_with_the_path_mtu() {
    let lab = lab(Path::BlackHole);
    for (target, exchange) in [(tls_target(), "TLS handshake"), (http_target(), "HTTP response")] {
        let report = lab.check(&target);
        assert_black_hole(&report, exchange);
        assert_narrow_link_named(&report);
    }
}

/// The summary names the link between the routers, from the routers' own answers: full-size
/// segments expire at the first router and never reach the second.
fn assert_narrow_link_named(report: &Value) {
    let words = "get as far as hop 1 (10.0.5.254) and no farther: the link from there to hop 2 \
                 (10.0.7.2) is the narrow one";
    assert!(summary(report).contains(words), "{report:#}");
    let hops = &mtu_probe(report).expect("an mtu_probe finding")["hops"];
    assert_eq!(hops["target_ttl"], 3, "{hops:#}");
}

#[test]
fn a_large_send_to_a_quiet_service_finds_the_black_hole_towards_it() {
    let lab = lab(Path::BlackHole);
    let quiet = format!("{FAR}:{QUIET_PORT}");
    let plain = lab.check(&quiet);
    assert_eq!(cause(&plain), "reachable", "without --large nothing big is sent: {plain:#}");
    let report = lab.check_with(&quiet, &["--large"]);
    assert_eq!(cause(&report), "mtu_black_hole", "{report:#}");
    let sent = report["findings"].as_array().unwrap().iter().find(|f| f["probe"] == "large_send");
    assert_eq!(sent.expect("a large_send finding")["acknowledged"], false, "{report:#}");
    let probe = mtu_probe(&report).expect("an mtu_probe finding");
    assert_eq!(probe["exchange"], "large send");
    let mtu = implied_mtu(probe);
    assert!(mtu.abs_diff(u64::from(NARROW_MTU)) <= 40, "implied MTU {mtu}: {probe:#}");
    let words = format!("larger than about {mtu} bytes sent to {FAR} never arrive");
    assert!(summary(&report).contains(&words), "{report:#}");
    assert_narrow_link_named(&report);
}

#[test]
fn with_path_mtu_discovery_working_the_verdicts_are_todays_and_no_probe_runs() {
    let lab = lab(Path::PmtuDiscoveryWorks);
    for target in [tls_target(), http_target()] {
        let report = lab.check(&target);
        assert_eq!(cause(&report), "reachable", "{report:#}");
        assert!(mtu_probe(&report).is_none(), "no stall, no probe: {report:#}");
    }
    let report = lab.check_with(&format!("{FAR}:{QUIET_PORT}"), &["--large"]);
    assert_eq!(cause(&report), "reachable", "{report:#}");
    assert!(mtu_probe(&report).is_none(), "acknowledged, no probe: {report:#}");
}

#[test]
fn with_the_mtu_restored_both_servers_are_reachable() {
    let lab = lab(Path::MtuRestored);
    for target in [tls_target(), http_target()] {
        let report = lab.check(&target);
        assert_eq!(cause(&report), "reachable", "{report:#}");
        assert!(mtu_probe(&report).is_none(), "{report:#}");
    }
    // The narrow link really is back at 1500 on both routers.
    for (router, device) in lab.routers.iter().zip(&lab.narrow) {
        let shown = lab.lab.sh(router, &format!("ip link show {device}"));
        assert!(String::from_utf8_lossy(&shown.stdout).contains("mtu 1500"));
    }
}
