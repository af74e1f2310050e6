//! A network lab of the test's own: network namespaces as hosts, veth links between them,
//! routes, firewall rules and services, all torn down when the [`Lab`] is dropped, even when the
//! test fails. Needs root (CI runs as root); traffic stays inside the namespaces it creates.

use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A namespace standing in for one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// The namespace's name (`ip netns exec NAME …`).
    pub netns: String,
}

/// A set of namespaces, links and processes that exist for one test.
pub struct Lab {
    prefix: String,
    hosts: Vec<Host>,
    processes: Vec<Child>,
    /// Each spawned process's own default state directory (`STATE_DIRECTORY`): agents in lab
    /// hosts are on hosts of their own, so they never share an agent id or a name's lock.
    states: Vec<tempfile::TempDir>,
    links: u32,
}

impl Lab {
    /// Starts an empty lab; fails the test with a clear message when not run as root.
    pub fn new() -> Lab {
        assert!(
            nix::unistd::geteuid().is_root(),
            "the namespace lab needs root (ip netns, veth, iptables): run the tests as root, as CI does"
        );
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let prefix =
            format!("wr{}x{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
        Lab { prefix, hosts: Vec::new(), processes: Vec::new(), states: Vec::new(), links: 0 }
    }

    /// Adds a host: a new namespace with its loopback up.
    pub fn host(&mut self, name: &str) -> Host {
        let host = Host { netns: format!("{}-{name}", self.prefix) };
        must(Command::new("ip").args(["netns", "add", &host.netns]));
        self.hosts.push(host.clone());
        self.sh(&host, "ip link set lo up");
        host
    }

    /// Links two hosts with a veth pair and gives each end an address (`10.0.1.1/24`, or IPv6
    /// such as `fd00::1/64`); returns the interface names (on `a`, on `b`).
    pub fn link(
        &mut self,
        a: &Host,
        a_address: &str,
        b: &Host,
        b_address: &str,
    ) -> (String, String) {
        self.links += 1;
        let (a_end, b_end) = (format!("v{}a", self.links), format!("v{}b", self.links));
        must(Command::new("ip").args([
            "link", "add", &a_end, "netns", &a.netns, "type", "veth", "peer", "name", &b_end,
            "netns", &b.netns,
        ]));
        for (host, end, address) in [(a, &a_end, a_address), (b, &b_end, b_address)] {
            let nodad = if address.contains(':') { " nodad" } else { "" };
            self.sh(
                host,
                &format!("ip addr add {address} dev {end}{nodad} && ip link set {end} up"),
            );
        }
        (a_end, b_end)
    }

    /// Gives `host`'s interface `device` one more address (IPv6 without duplicate address
    /// detection, so it is usable at once): a second family on a link, or a second address.
    pub fn address(&self, host: &Host, device: &str, address: &str) {
        let nodad = if address.contains(':') { " nodad" } else { "" };
        self.sh(host, &format!("ip addr add {address} dev {device}{nodad}"));
    }

    /// Runs a shell command in a host and fails the test if it fails.
    pub fn sh(&self, host: &Host, script: &str) -> Output {
        must(Command::new("ip").args(["netns", "exec", &host.netns, "sh", "-c", script]))
    }

    /// Runs a program in a host and returns its output, whatever its exit code.
    pub fn run(&self, host: &Host, program: &str, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &host.netns, program])
            .args(args)
            .output()
            .expect("ip netns exec runs")
    }

    /// Starts a long-running program in a host; it is killed with the lab.
    pub fn spawn(&mut self, host: &Host, program: &str, args: &[&str]) {
        let state = tempfile::tempdir().expect("a temporary state directory");
        let child = Command::new("ip")
            .args(["netns", "exec", &host.netns, program])
            .args(args)
            .env("STATE_DIRECTORY", state.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("ip netns exec starts");
        self.processes.push(child);
        self.states.push(state);
    }

    /// Waits until something listens on TCP `port` in `host` (per `ss`).
    pub fn wait_listening(&self, host: &Host, port: u16) {
        self.wait_socket(host, "-Hltn", port);
    }

    /// Waits until something is bound to UDP `port` in `host` (a DNS server).
    pub fn wait_udp(&self, host: &Host, port: u16) {
        self.wait_socket(host, "-Hlun", port);
    }

    fn wait_socket(&self, host: &Host, ss_flags: &str, port: u16) {
        let start = Instant::now();
        loop {
            let out = self.run(host, "ss", &[ss_flags, &format!("sport = :{port}")]);
            if !String::from_utf8_lossy(&out.stdout).trim().is_empty() {
                return;
            }
            assert!(start.elapsed() < Duration::from_secs(10), "nothing listened on port {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Default for Lab {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in &mut self.processes {
            let _ = child.kill();
            let _ = child.wait();
        }
        for host in &self.hosts {
            let _ = Command::new("ip").args(["netns", "del", &host.netns]).status();
        }
    }
}

fn must(command: &mut Command) -> Output {
    let output = command.output().expect("the command runs");
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}
