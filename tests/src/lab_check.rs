//! What lab tests do with a check: run `whyrefused check --json` (or any JSON command, such as
//! a hub's `agents` list) inside a lab host, read the report's verdict and findings, and give a
//! lab host its own `/etc/hosts` and resolver.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{Host, Lab, agent_binary};

/// Runs `whyrefused check TARGET --json ARGS` on `host` and parses the report.
pub fn check(lab: &Lab, host: &Host, target: &str, args: &[&str]) -> Value {
    let mut all = vec!["check", target, "--json"];
    all.extend_from_slice(args);
    json_in(lab, host, &all)
}

/// Runs `whyrefused ARGS` (a command with `--json`) on `host` and parses what it prints.
pub fn json_in(lab: &Lab, host: &Host, args: &[&str]) -> Value {
    let binary = agent_binary();
    let output = lab.run(host, binary.to_str().expect("a UTF-8 path"), args);
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON from {args:?} ({e}): {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// The vantage points a hub lists online (`agents --json` with `via`, the `--via` arguments,
/// run on `host`), sorted.
pub fn online_in(lab: &Lab, host: &Host, via: &[&str]) -> Vec<String> {
    let list = json_in(lab, host, &[&["agents", "--json"][..], via].concat());
    let mut online: Vec<String> = list
        .as_array()
        .expect("a list of vantage points")
        .iter()
        .filter(|agent| agent["online"] == true)
        .filter_map(|agent| agent["name"].as_str().map(str::to_string))
        .collect();
    online.sort();
    online
}

/// Polls the hub (see [`online_in`]) until exactly `names` (sorted) are online; fails after
/// `limit`.
pub fn wait_online_in(lab: &Lab, host: &Host, via: &[&str], names: &[&str], limit: Duration) {
    let start = Instant::now();
    loop {
        let online = online_in(lab, host, via);
        if online == names {
            return;
        }
        assert!(start.elapsed() < limit, "not {names:?} online within {limit:?}: {online:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A lab host's own `/etc/hosts` and `/etc/resolv.conf` (`ip netns exec` mounts the files in
/// `/etc/netns/NS/` over `/etc/`), removed when dropped. The resolver configuration always
/// points inside the lab, so no lookup leaves it.
pub struct EtcFiles(std::path::PathBuf);

impl EtcFiles {
    /// `hosts` lines (after localhost) and the lab nameserver the host asks.
    pub fn new(host: &Host, hosts: &str, nameserver: &str) -> EtcFiles {
        let directory = std::path::Path::new("/etc/netns").join(&host.netns);
        std::fs::create_dir_all(&directory).expect("/etc/netns is writable (root)");
        let write = |name: &str, text: String| {
            std::fs::write(directory.join(name), text).expect("lab /etc file written")
        };
        write("hosts", format!("127.0.0.1 localhost\n{hosts}"));
        write("resolv.conf", format!("nameserver {nameserver}\noptions timeout:1 attempts:1\n"));
        EtcFiles(directory)
    }
}

impl Drop for EtcFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn cause(report: &Value) -> &str {
    report["verdict"]["cause"].as_str().unwrap_or("(none)")
}

pub fn summary(report: &Value) -> &str {
    report["verdict"]["summary"].as_str().unwrap_or("")
}

/// Whether some evidence item's probe starts with `probe` and its result contains `result`.
pub fn has_evidence(report: &Value, probe: &str, result: &str) -> bool {
    report["verdict"]["evidence"].as_array().into_iter().flatten().any(|item| {
        item["probe"].as_str().is_some_and(|p| p.starts_with(probe))
            && item["result"].as_str().is_some_and(|r| r.contains(result))
    })
}

pub fn finding<'a>(report: &'a Value, probe: &str) -> &'a Value {
    report["findings"]
        .as_array()
        .and_then(|all| all.iter().find(|f| f["probe"] == probe))
        .unwrap_or_else(|| panic!("no {probe} finding in {report:#}"))
}
