//! The deploy recipe as an SRE follows it: deploy/README.md's marked blocks run as written (only
//! `/etc/whyrefused`, the hub's name and its fingerprint made concrete) in a lab of network
//! namespaces, so the docs and the binary cannot drift; the systemd units pass `systemd-analyze
//! verify`; and the agent runs as an unprivileged user with its token file where systemd puts a
//! credential.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use whyrefused_tests::{Agent, Host, Lab, agent_binary, workspace_root, write_token_file};

fn deploy_file(name: &str) -> String {
    let path = workspace_root().join("deploy").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn both_systemd_units_pass_systemd_analyze_verify() {
    if Command::new("systemd-analyze").arg("--version").output().is_err() {
        println!("skipped: systemd-analyze is absent (./dev setup installs the systemd package)");
        return;
    }
    let directory = tempfile::tempdir().unwrap();
    let binary = agent_binary();
    let mut units = Vec::new();
    for name in ["whyrefused.service", "whyrefused-join.service"] {
        // Only the binary's path differs: verify checks that ExecStart's program exists.
        let unit = deploy_file(name).replace("/usr/local/bin/whyrefused", binary.to_str().unwrap());
        let path = directory.path().join(name);
        std::fs::write(&path, unit).unwrap();
        units.push(path);
    }
    let output = Command::new("systemd-analyze").arg("verify").args(&units).output().unwrap();
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() && said.trim().is_empty(), "systemd-analyze verify: {said}");
    for name in ["whyrefused.service", "whyrefused-join.service"] {
        let unit = deploy_file(name);
        for line in [
            "LoadCredential=tokens:/etc/whyrefused/tokens",
            "--token-file %d/tokens",
            "DynamicUser=yes",
            "CapabilityBoundingSet=CAP_NET_RAW",
            "NoNewPrivileges=yes",
        ] {
            assert!(unit.contains(line), "{name} lacks {line}");
        }
    }
    // The agent that runs on the hosts may read their firewall counters; the hub needs not.
    let join = deploy_file("whyrefused-join.service");
    assert!(join.contains("CapabilityBoundingSet=CAP_NET_RAW CAP_NET_ADMIN\n"), "{join}");
    assert!(join.contains("AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN\n"), "{join}");
    assert!(!deploy_file("whyrefused.service").contains("CAP_NET_ADMIN"));
}

/// Gives `path` to the unprivileged user (65534) with `mode`.
fn give_to_nobody(path: &Path, mode: u32) {
    std::os::unix::fs::chown(path, Some(65534), Some(65534))
        .expect("chown (the tests run as root)");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn the_agent_serves_as_an_unprivileged_user_reading_its_token_file_as_a_credential() {
    let directory = tempfile::tempdir().unwrap();
    std::fs::set_permissions(directory.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // Where systemd puts a service's credentials: a directory and a file only its user may read.
    let credentials = directory.path().join("credentials/whyrefused.service");
    std::fs::create_dir_all(&credentials).unwrap();
    std::fs::set_permissions(credentials.parent().unwrap(), std::fs::Permissions::from_mode(0o755))
        .unwrap();
    let secret = "team-secret-0123456789abcdef";
    let tokens = write_token_file(&credentials.join("tokens"), &format!("team:{secret}\n"));
    give_to_nobody(Path::new(&tokens), 0o400);
    give_to_nobody(&credentials, 0o500);
    let state = directory.path().join("state");
    std::fs::create_dir(&state).unwrap();
    give_to_nobody(&state, 0o700);

    let log = directory.path().join("agent.log");
    let state_arg = state.to_str().unwrap();
    let args = ["--token-file", &tokens, "--tls-self-signed", "--state-dir", state_arg];
    let agent = Agent::start_unprivileged(&args, &log);
    let status = std::fs::read_to_string(format!("/proc/{}/status", agent.pid())).unwrap();
    let uid = status.lines().find(|line| line.starts_with("Uid:")).unwrap();
    assert!(uid.split_whitespace().skip(1).all(|id| id == "65534"), "{uid}");

    let fingerprint = agent.fingerprint.clone().expect("a TLS agent");
    let mine = write_token_file(&directory.path().join("mine"), &format!("team:{secret}\n"));
    let url = format!("wss://{}", agent.address);
    let args = ["agents", "--via", &url, "--tls-fingerprint", &fingerprint, "--token-file", &mine];
    let output = Command::new(agent_binary()).args(args).output().unwrap();
    let listed = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(listed.lines().any(|line| line.starts_with("local")), "{listed}");
    assert!(state.join("agent-id").exists() || state.read_dir().unwrap().count() > 0);
}

/// The `sh` block after the marker `<!-- deploy.rs: NAME -->` in deploy/README.md.
fn block(docs: &str, name: &str) -> String {
    let marker = format!("<!-- deploy.rs: {name} -->");
    let at = docs.find(&marker).unwrap_or_else(|| panic!("deploy/README.md lost {marker}"));
    let after = &docs[at + marker.len()..];
    let start = after.find("```sh\n").expect("a sh block follows the marker") + "```sh\n".len();
    let end = after[start..].find("```").expect("the block ends");
    after[start..start + end].to_string()
}

/// The hub's address in the lab, for `hub` in the docs.
const HUB: &str = "10.61.1.1";

/// One host of the walk: its namespace and its own `/etc/whyrefused` and state directory.
struct Place {
    host: Host,
    root: PathBuf,
}

impl Place {
    fn new(lab: &mut Lab, name: &str, walk: &Path) -> Place {
        let root = walk.join(name);
        std::fs::create_dir_all(root.join("state")).unwrap();
        Place { host: lab.host(name), root }
    }

    /// A block of the docs made concrete here: `/etc/whyrefused` is this place's, `hub` the
    /// hub's address, `AB:CD:…` its fingerprint, `app1` the agent `agent`.
    fn concrete(&self, block: &str, fingerprint: &str, agent: &str) -> String {
        let etc = self.root.join("etc/whyrefused");
        block
            .replace("/etc/whyrefused", etc.to_str().unwrap())
            .replace("hub:7070", &format!("{HUB}:7070"))
            .replace("AB:CD:…", fingerprint)
            .replace("app1", agent)
    }

    /// `sh -c SCRIPT` in this place's namespace, in `directory` (where files are handed over),
    /// with `whyrefused` on the PATH and the state directory systemd would give.
    fn command(&self, script: &str, directory: &Path) -> Command {
        let binary_dir = agent_binary().parent().unwrap().to_path_buf();
        let path =
            format!("{}:{}", binary_dir.display(), std::env::var("PATH").unwrap_or_default());
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.host.netns, "sh", "-ec", script])
            .current_dir(directory)
            .env("PATH", path)
            .env("STATE_DIRECTORY", self.root.join("state"));
        command
    }

    fn run(&self, script: &str, directory: &Path) -> Output {
        let output = self.command(script, directory).output().expect("sh runs");
        assert!(
            output.status.success(),
            "{script}\nfailed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// Starts a long-running command (`exec`ed by sh), its log in this place's directory.
    fn spawn(&self, line: &str, directory: &Path) -> Child {
        let log = std::fs::File::create(self.root.join("log")).unwrap();
        self.command(&format!("exec {line}"), directory)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("the agent starts")
    }
}

/// Kills the walk's long-running agents, even when the test fails.
struct Running(Vec<Child>);

impl Drop for Running {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Reads the hub's fingerprint from what it printed at start.
fn printed_fingerprint(hub: &mut Child) -> String {
    use std::io::BufRead;
    let mut lines = std::io::BufReader::new(hub.stdout.take().unwrap()).lines();
    for line in lines.by_ref().take(2) {
        let line = line.unwrap();
        if let Some(rest) = line.split("fingerprint: ").nth(1) {
            return rest.split_whitespace().next().unwrap().to_string();
        }
    }
    panic!("the hub printed no fingerprint")
}

#[test]
fn the_deploy_docs_walked_in_a_lab_give_a_check_from_the_hub_and_both_agents() {
    let docs = deploy_file("README.md");
    let walk = tempfile::tempdir().unwrap();
    let mut lab = Lab::new();
    let hub = Place::new(&mut lab, "hub", walk.path());
    let apps =
        [Place::new(&mut lab, "app1", walk.path()), Place::new(&mut lab, "app2", walk.path())];
    for (index, app) in apps.iter().enumerate() {
        let net = format!("10.61.{}", index + 1);
        lab.link(&hub.host, &format!("{net}.1/24"), &app.host, &format!("{net}.2/24"));
        lab.sh(&app.host, &format!("ip route add default via {net}.1"));
    }
    let handed_over = walk.path();
    let names = ["app1", "app2"];

    // 1. Tokens: the team's, then one agent token per agent, on the hub.
    hub.run(&hub.concrete(&block(&docs, "hub-tokens"), "", "app1"), handed_over);
    for name in names {
        hub.run(&hub.concrete(&block(&docs, "agent-token"), "", name), handed_over);
    }
    // 2. The hub, over TLS.
    let mut hub_process =
        hub.spawn(&hub.concrete(&block(&docs, "hub-serve"), "", "app1"), handed_over);
    let fingerprint = printed_fingerprint(&mut hub_process);
    let mut running = Running(vec![hub_process]);
    lab.wait_listening(&hub.host, 7070);
    // 3. Each agent with its own token, pinning the hub's fingerprint.
    for (app, name) in apps.iter().zip(names) {
        app.run(&app.concrete(&block(&docs, "agent-install"), &fingerprint, name), handed_over);
        let line = app.concrete(&block(&docs, "agent-serve"), &fingerprint, name);
        running.0.push(app.spawn(&line, handed_over));
    }
    // 4. A check from every place, once both agents are online.
    let check = hub.concrete(&block(&docs, "check"), &fingerprint, "app1");
    let start = Instant::now();
    let output = loop {
        let output = hub.command(&check, handed_over).output().unwrap();
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        if names.iter().all(|name| text.contains(&format!("from {name}"))) {
            break output;
        }
        let logs: Vec<String> = apps
            .iter()
            .map(|app| std::fs::read_to_string(app.root.join("log")).unwrap_or_default())
            .collect();
        assert!(start.elapsed() < Duration::from_secs(15), "not from every place: {text}{logs:?}");
        std::thread::sleep(Duration::from_millis(300));
    };
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}{}", String::from_utf8_lossy(&output.stderr));
    assert!(text.contains("from local"), "{text}");
    assert!(text.contains("across vantage points: same"), "{text}");
    drop(running);
}
