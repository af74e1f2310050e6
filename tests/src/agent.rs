//! Starting, stopping and reaching a real `whyrefused` agent process.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The `whyrefused` binary of this workspace, built once per test process: a debug build for
/// tests, a release build when the harness itself is optimised (benchmarks).
pub fn agent_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(build_agent).clone()
}

fn build_agent() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    let mut build = Command::new(cargo);
    build.args(["build", "--quiet", "-p", "whyrefused"]);
    if profile == "release" {
        build.arg("--release");
    }
    let status = build.current_dir(workspace_root()).status().expect("cargo runs");
    assert!(status.success(), "building the agent failed");
    // A relative CARGO_TARGET_DIR is relative to where cargo ran: the workspace root.
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(|dir| workspace_root().join(dir))
        .unwrap_or_else(|| workspace_root().join("target"));
    target_dir.join(profile).join("whyrefused")
}

/// The repository's root directory.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// Where agents listen unless told otherwise: a free loopback port.
const LOOPBACK_ANY_PORT: &str = "127.0.0.1:0";

/// A running agent (`whyrefused serve --listen 127.0.0.1:0`), killed when dropped.
pub struct Agent {
    child: Child,
    /// Where it listens.
    pub address: SocketAddr,
    /// The SHA-256 fingerprint of its TLS certificate, when it serves TLS.
    pub fingerprint: Option<String>,
    /// Its own default state directory (`STATE_DIRECTORY`), as if it ran on a host of its own:
    /// agents of tests running at once never share an agent id or a name's lock.
    _state: tempfile::TempDir,
}

impl Agent {
    /// Starts an agent on a free loopback port and waits until it prints its URL.
    pub fn start() -> Agent {
        Agent::start_with(&[])
    }

    /// Like [`Agent::start`], with more `serve` arguments (limits).
    pub fn start_with(args: &[&str]) -> Agent {
        Agent::spawn(LOOPBACK_ANY_PORT, args, Stdio::inherit())
    }

    /// Like [`Agent::start_with`], with these variables added to the agent's environment (the
    /// test's proxy variables removed first).
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Agent {
        let mut command = Command::new(agent_binary());
        for name in ["http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"] {
            command.env_remove(name);
        }
        command.env_remove("ALL_PROXY").env_remove("no_proxy").env_remove("NO_PROXY");
        command.envs(env.iter().copied());
        Agent::spawn_command(command, LOOPBACK_ANY_PORT, args, Stdio::inherit())
    }

    /// Like [`Agent::start_with`], listening on `address` (to restart an agent on its port).
    pub fn start_on(address: SocketAddr, args: &[&str]) -> Agent {
        Agent::spawn(&address.to_string(), args, Stdio::inherit())
    }

    /// Like [`Agent::start_with`], with the agent's log written to `log` (to read it back).
    pub fn start_logged(args: &[&str], log: &std::path::Path) -> Agent {
        let file = std::fs::File::create(log).expect("the log file can be created");
        Agent::spawn(LOOPBACK_ANY_PORT, args, Stdio::from(file))
    }

    /// Like [`Agent::start_logged`], run by `setpriv` as the unprivileged user and group 65534
    /// (nobody, nogroup), with no supplementary groups: as a systemd `DynamicUser` would run it.
    pub fn start_unprivileged(args: &[&str], log: &std::path::Path) -> Agent {
        let file = std::fs::File::create(log).expect("the log file can be created");
        let mut setpriv = Command::new("setpriv");
        setpriv.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]);
        setpriv.arg(agent_binary());
        Agent::spawn_command(setpriv, LOOPBACK_ANY_PORT, args, Stdio::from(file))
    }

    fn spawn(listen: &str, args: &[&str], log: Stdio) -> Agent {
        Agent::spawn_command(Command::new(agent_binary()), listen, args, log)
    }

    fn spawn_command(mut command: Command, listen: &str, args: &[&str], log: Stdio) -> Agent {
        let state = tempfile::tempdir().expect("a temporary state directory");
        let mut child = command
            .args(["serve", "--listen", listen])
            .args(args)
            .env("RUST_LOG", "whyrefused=debug")
            .env("STATE_DIRECTORY", state.path())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("the agent starts");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("the agent prints its URL");
        let tls = line.contains("https://");
        let address = line
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .and_then(|address| address.parse().ok())
            .unwrap_or_else(|| panic!("no address in the agent's first line: {line:?}"));
        let fingerprint = tls.then(|| {
            let mut line = String::new();
            stdout.read_line(&mut line).expect("a TLS agent prints its fingerprint");
            line.split("fingerprint: ")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .unwrap_or_else(|| panic!("no fingerprint in {line:?}"))
                .to_string()
        });
        Agent { child, address, fingerprint, _state: state }
    }

    /// The page's URL.
    pub fn url(&self) -> String {
        let scheme = if self.fingerprint.is_some() { "https" } else { "http" };
        format!("{scheme}://{}/", self.address)
    }

    /// The WebSocket's URL.
    pub fn ws_url(&self) -> String {
        let scheme = if self.fingerprint.is_some() { "wss" } else { "ws" };
        format!("{scheme}://{}{}", self.address, whyrefused_shared::WS_PATH)
    }

    /// The agent process's id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The agent process's peak resident memory so far, in KiB (`VmHWM` in `/proc/PID/status`).
    pub fn peak_rss_kib(&self) -> u64 {
        peak_rss_kib(self.child.id())
    }

    /// How many file descriptors the agent process has open now (`/proc/PID/fd`).
    pub fn open_descriptors(&self) -> usize {
        let directory = format!("/proc/{}/fd", self.child.id());
        std::fs::read_dir(directory).map_or(0, |entries| entries.count())
    }

    /// Sends SIGTERM (as Ctrl-C or systemd would).
    pub fn terminate(&self) {
        self.signal(Signal::SIGTERM);
    }

    /// Sends a signal (SIGSTOP freezes the agent: its sockets stay open but fall silent).
    pub fn signal(&self, signal: Signal) {
        let pid = Pid::from_raw(i32::try_from(self.child.id()).expect("pid fits"));
        kill(pid, signal).expect("the agent can be signalled");
    }

    /// Waits for the process to exit, up to `limit`; `None` if it is still running.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        wait_exit(&mut self.child, limit)
    }
}

/// A running agent that joins a hub without listening itself (`serve --join …` without
/// `--listen`), killed when dropped.
pub struct Joiner {
    child: Child,
    /// The line it printed at start (where it joins, as whom).
    pub first_line: String,
}

impl Joiner {
    /// Starts `whyrefused serve ARGS` (no `--listen` added), its log written to `log`, and waits
    /// for its first line.
    pub fn start(args: &[&str], log: &std::path::Path) -> Joiner {
        let file = std::fs::File::create(log).expect("the log file can be created");
        let mut child = Command::new(agent_binary())
            .arg("serve")
            .args(args)
            .env("RUST_LOG", "whyrefused=debug")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(file))
            .spawn()
            .expect("the agent starts");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let mut first_line = String::new();
        let _ = stdout.read_line(&mut first_line);
        Joiner { child, first_line }
    }

    /// Sends a signal.
    pub fn signal(&self, signal: Signal) {
        let pid = Pid::from_raw(i32::try_from(self.child.id()).expect("pid fits"));
        kill(pid, signal).expect("the agent can be signalled");
    }

    /// Waits for the process to exit, up to `limit`; `None` if it is still running.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        wait_exit(&mut self.child, limit)
    }
}

impl Drop for Joiner {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for `child` to exit, up to `limit`; `None` if it is still running.
fn wait_exit(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = child.try_wait().expect("waitable") {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// A process's peak resident memory so far, in KiB (`VmHWM` in `/proc/PID/status`); 0 when it
/// cannot be read.
pub fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
