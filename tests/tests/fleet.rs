//! Running a fleet, with real processes on loopback: two agents given one name (the second is
//! refused, the first keeps its link, and only the same agent takes a stale link back), audit
//! lines followed from the hub to a joined agent, every operator mistake with its own message,
//! SIGHUP reloading the token file, joining agents that do not listen, and one SIGTERM ending
//! the agent whatever is in flight.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use whyrefused_shared::{AgentMessage, ClientMessage, ErrorCode, RequestId, ScanRequest};
use whyrefused_tests::{Agent, Client, HangingPort, Joiner, agent_binary, write_token_file};

/// The team's client token, on the hub and on each joined agent.
const TEAM: &str = "team-secret-0123456789abcdef";

/// The agent token of the vantage point `name`.
fn agent_secret(name: &str) -> String {
    format!("{name}-agent-secret-0123456789")
}

/// A directory for the token files, state directories and logs of one test.
struct Fleet {
    directory: tempfile::TempDir,
}

impl Fleet {
    fn new() -> Fleet {
        Fleet { directory: tempfile::tempdir().expect("a temporary directory") }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.directory.path().join(name)
    }

    /// A path as text, for arguments.
    fn arg(&self, name: &str) -> String {
        self.path(name).to_str().expect("a UTF-8 path").to_string()
    }

    /// The hub's token file: the team's client token first, then each agent's agent token.
    fn hub_tokens(&self, agents: &[&str]) -> String {
        let mut text = format!("team:{TEAM}\n");
        for name in agents {
            text += &format!("{name}:{}:agent\n", agent_secret(name));
        }
        write_token_file(&self.path("hub.tokens"), &text)
    }

    /// A joining agent's token file: its own agent token first.
    fn agent_tokens(&self, name: &str) -> String {
        let text = format!("{name}:{}:agent\nteam:{TEAM}\n", agent_secret(name));
        write_token_file(&self.path(&format!("{name}.tokens")), &text)
    }
}

fn ws(hub: &Agent) -> String {
    format!("ws://{}", hub.address)
}

/// Runs the CLI with `environment` added.
fn cli(args: &[&str], environment: &[(&str, &str)]) -> Output {
    let mut command = Command::new(agent_binary());
    command.args(args).env_remove("WHYREFUSED_TOKEN");
    for (key, value) in environment {
        command.env(key, value);
    }
    command.output().expect("the CLI runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The hub's list as JSON values, by `agents --json`.
fn agents(hub: &Agent, tokens: &str) -> Vec<serde_json::Value> {
    let output = cli(&["agents", "--via", &ws(hub), "--token-file", tokens, "--json"], &[]);
    assert!(output.status.success(), "agents failed: {}", stderr(&output));
    serde_json::from_slice(&output.stdout).expect("JSON")
}

/// When `name`'s current link joined, once it is online (waits up to `limit`).
fn online_since(hub: &Agent, tokens: &str, name: &str, limit: Duration) -> String {
    online_since_other_than(hub, tokens, name, "", limit)
}

/// Like [`online_since`], waiting for a link that joined at another time than `old`.
fn online_since_other_than(
    hub: &Agent,
    tokens: &str,
    name: &str,
    old: &str,
    limit: Duration,
) -> String {
    let start = Instant::now();
    loop {
        let list = agents(hub, tokens);
        let found = list.iter().find(|info| info["name"] == name && info["online"] == true);
        if let Some(since) = found.and_then(|info| info["connected_since"].as_str())
            && since != old
        {
            return since.to_string();
        }
        assert!(start.elapsed() < limit, "{name} not online (since ≠ {old:?}) in {list:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A check of `target` from `from` through the hub, as JSON.
fn check_from(hub: &Agent, tokens: &str, target: &str, from: &str) -> serde_json::Value {
    let args = ["check", target, "--via", &ws(hub), "--token-file", tokens, "--from", from];
    let output = cli(&[&args[..], &["--json"]].concat(), &[]);
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("no JSON ({e}): {}", stderr(&output)))
}

/// Waits until `log` holds a line with every one of `parts`; returns it.
fn line_in_log(log: &std::path::Path, parts: &[&str], limit: Duration) -> String {
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(line) = text.lines().find(|line| parts.iter().all(|part| line.contains(part))) {
            return line.to_string();
        }
        assert!(start.elapsed() < limit, "no line with {parts:?} in {log:?}:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A joining agent's arguments: its token file, the hub, its state directory (its agent id).
fn joining(tokens: &str, hub: &Agent, state: &str) -> Vec<String> {
    ["--token-file", tokens, "--join", &ws(hub), "--state-dir", state].map(str::to_string).to_vec()
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

#[test]
fn a_second_agent_under_the_first_ones_name_is_refused_and_exits_2_without_flapping() {
    let fleet = Fleet::new();
    let tokens = fleet.hub_tokens(&["app1"]);
    let hub = Agent::start_with(&["--token-file", &tokens]);
    let app1 = fleet.agent_tokens("app1");
    let first_args = joining(&app1, &hub, &fleet.arg("first-state"));
    let _first = Agent::start_with(&[&strs(&first_args)[..], &["--allow-loopback"]].concat());
    let since = online_since(&hub, &tokens, "app1", Duration::from_secs(10));

    // A clone: the same token, the same host name, its own state directory (its own id).
    let clone_args = joining(&app1, &hub, &fleet.arg("clone-state"));
    let mut clone = Joiner::start(&strs(&clone_args), &fleet.path("clone.log"));
    let status = clone.wait_exit(Duration::from_secs(10)).expect("the clone gives up");
    assert_eq!(status.code(), Some(2), "an operator's mistake: exit 2");
    let log = std::fs::read_to_string(fleet.path("clone.log")).unwrap();
    assert!(log.contains("the name 'app1' is held by a live link of another agent"), "{log}");
    assert!(log.contains("--wait-for-name"), "says how to wait instead: {log}");

    // A twin on this host with the first one's state directory (so its id): refused at start.
    let mut twin = Joiner::start(&strs(&first_args), &fleet.path("twin.log"));
    let status = twin.wait_exit(Duration::from_secs(10)).expect("the twin gives up");
    assert_eq!(status.code(), Some(2), "an operator's mistake: exit 2");
    let log = std::fs::read_to_string(fleet.path("twin.log")).unwrap();
    assert!(log.contains("another agent on this host runs under the name 'app1'"), "{log}");

    // With --wait-for-name, it stays and tries again every 30 s instead.
    let waiting_args = [&strs(&clone_args)[..], &["--wait-for-name"]].concat();
    let mut waiting = Joiner::start(&waiting_args, &fleet.path("waiting.log"));
    line_in_log(&fleet.path("waiting.log"), &["delay_ms=30000"], Duration::from_secs(10));
    assert!(waiting.wait_exit(Duration::ZERO).is_none(), "it waits for the name");

    let still = online_since(&hub, &tokens, "app1", Duration::from_secs(1));
    assert_eq!(still, since, "the first agent's link was never replaced");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap().to_string();
    let result = check_from(&hub, &tokens, &target, "app1");
    let part = &result["vantages"][0];
    assert_eq!(part["vantage"], "app1");
    assert_eq!(part["report"]["verdict"]["cause"], "reachable", "{result}");
}

#[test]
fn the_same_agent_restarted_takes_its_name_back_at_once_from_its_stale_link() {
    let fleet = Fleet::new();
    let tokens = fleet.hub_tokens(&["app1"]);
    let hub = Agent::start_with(&["--token-file", &tokens]);
    let app1 = fleet.agent_tokens("app1");
    let args = joining(&app1, &hub, &fleet.arg("state"));
    let args = [&strs(&args)[..], &["--allow-loopback"]].concat();
    let first = Agent::start_with(&args);
    let since = online_since(&hub, &tokens, "app1", Duration::from_secs(10));

    // Frozen, its link stays open and silent: the hub would call it dead only after 15 s. The
    // same agent starts again (its id copied to a state directory of its own, since the frozen
    // process still holds its name's lock in the first, as a crashed host's would not).
    first.signal(Signal::SIGSTOP);
    let again_state = fleet.path("again-state");
    std::fs::create_dir(&again_state).unwrap();
    std::fs::copy(fleet.path("state").join("agent-id"), again_state.join("agent-id")).unwrap();
    let again_args = joining(&app1, &hub, &fleet.arg("again-state"));
    let again_args = [&strs(&again_args)[..], &["--allow-loopback"]].concat();
    let start = Instant::now();
    let _again = Agent::start_with(&again_args);
    online_since_other_than(&hub, &tokens, "app1", &since, Duration::from_secs(5));
    assert!(start.elapsed() < Duration::from_secs(5), "at once, not after the ping timeout");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap().to_string();
    let result = check_from(&hub, &tokens, &target, "app1");
    assert_eq!(result["vantages"][0]["report"]["verdict"]["cause"], "reachable", "{result}");
}

/// The value of `key=` in a log line (up to the next space).
fn field<'a>(line: &'a str, key: &str) -> &'a str {
    let start = line.find(&format!(" {key}=")).unwrap_or_else(|| panic!("no {key} in {line}"));
    let value = &line[start + key.len() + 2..];
    value.split(' ').next().unwrap_or_default()
}

#[test]
fn a_fan_outs_audit_lines_on_the_hub_and_the_agent_share_token_peer_and_request_id() {
    let fleet = Fleet::new();
    let tokens = fleet.hub_tokens(&["a1"]);
    let hub_log = fleet.path("hub.log");
    let hub = Agent::start_logged(&["--token-file", &tokens], &hub_log);
    let a1_log = fleet.path("a1.log");
    let args = joining(&fleet.agent_tokens("a1"), &hub, &fleet.arg("a1-state"));
    let _a1 = Agent::start_logged(&[&strs(&args)[..], &["--allow-loopback"]].concat(), &a1_log);
    online_since(&hub, &tokens, "a1", Duration::from_secs(10));

    // An IPv6 target: every address:port printed is bracketed.
    let listener = std::net::TcpListener::bind("[::1]:0").expect("IPv6 loopback");
    let target = format!("[::1]:{}", listener.local_addr().unwrap().port());
    let check = ["check", &target, "--via", &ws(&hub), "--token-file", &tokens, "--from", "all"];
    let output = cli(&check, &[]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}{}", stderr(&output));
    let unbracketed = target.replace(['[', ']'], "");
    assert!(text.contains(&target), "{text}");
    assert!(!text.contains(&unbracketed), "{text}");

    let audit = ["whyrefused::audit", "request_id="];
    let on_hub = line_in_log(&hub_log, &audit, Duration::from_secs(5));
    assert_eq!(field(&on_hub, "token"), "\"team\"", "{on_hub}");
    let peer = field(&on_hub, "peer");
    assert!(peer.starts_with("127.0.0.1:"), "the CLI's address: {on_hub}");
    let request_id = field(&on_hub, "request_id");
    assert_eq!(request_id.len(), 16, "{on_hub}");

    let same_id = format!("request_id={request_id}");
    let on_agent = line_in_log(&a1_log, &[audit[0], &same_id], Duration::from_secs(5));
    assert_eq!(field(&on_agent, "token"), "\"team\"", "the hub's client, not the hub: {on_agent}");
    assert_eq!(field(&on_agent, "peer"), peer, "{on_agent}");
    assert!(field(&on_agent, "via").starts_with("127.0.0.1:"), "{on_agent}");

    // Another request, another id.
    cli(&check, &[]);
    let text = std::fs::read_to_string(&hub_log).unwrap();
    let ids: std::collections::BTreeSet<&str> = text
        .lines()
        .filter(|line| line.contains(audit[0]))
        .map(|line| field(line, "request_id"))
        .collect();
    assert_eq!(ids.len(), 2, "{text}");
}

#[tokio::test]
async fn no_token_and_a_wrong_token_are_refused_with_different_messages() {
    let fleet = Fleet::new();
    let hub = Agent::start_with(&["--token-file", &fleet.hub_tokens(&[])]);
    let refusal = |token: Option<&'static str>| {
        let hub = &hub;
        async move {
            let mut client = Client::connect_with_token(hub, token).await;
            match client.recv().await {
                AgentMessage::Error { code: ErrorCode::Unauthorized, message, .. } => message,
                other => panic!("expected a refusal, got {other:?}"),
            }
        }
    };
    let none = refusal(None).await;
    assert!(none.contains("this agent needs a token"), "{none}");
    let wrong = refusal(Some("not-a-token-of-this-agent")).await;
    assert!(wrong.contains("the token is not one of this agent's"), "{wrong}");
}

#[test]
fn whyrefused_token_written_as_a_token_files_line_says_so_and_exits_2() {
    let fleet = Fleet::new();
    let hub = Agent::start_with(&["--token-file", &fleet.hub_tokens(&[])]);
    let line = format!("team:{TEAM}");
    let output = cli(&["agents", "--via", &ws(&hub)], &[("WHYREFUSED_TOKEN", &line)]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("WHYREFUSED_TOKEN looks like a token file's line"));
    let bare = cli(&["agents", "--via", &ws(&hub)], &[("WHYREFUSED_TOKEN", TEAM)]);
    assert!(bare.status.success(), "the bare secret works: {}", stderr(&bare));
}

#[test]
fn a_self_signed_hub_without_its_fingerprint_or_with_another_exits_2_saying_what_to_pin() {
    let fleet = Fleet::new();
    let tokens = fleet.hub_tokens(&[]);
    let state = fleet.arg("hub-state");
    let args = ["--token-file", &tokens, "--tls-self-signed", "--state-dir", &state];
    let hub = Agent::start_with(&args);
    let url = format!("wss://{}", hub.address);

    let unpinned = cli(&["agents", "--via", &url, "--token-file", &tokens], &[]);
    assert_eq!(unpinned.status.code(), Some(2), "{}", stderr(&unpinned));
    let message = stderr(&unpinned);
    assert!(
        message.contains("UnknownIssuer") && message.contains("--tls-fingerprint"),
        "{message}"
    );

    let wrong = "AB:".repeat(31) + "AB";
    let args = ["agents", "--via", &url, "--token-file", &tokens, "--tls-fingerprint", &wrong];
    let mismatch = cli(&args, &[]);
    assert_eq!(mismatch.status.code(), Some(2), "{}", stderr(&mismatch));
    assert!(stderr(&mismatch).contains("not the one pinned"), "{}", stderr(&mismatch));
}

#[test]
fn a_joining_agent_pinning_another_certificate_says_so_loudly_and_waits_five_minutes() {
    let fleet = Fleet::new();
    let tokens = fleet.hub_tokens(&["a1"]);
    let state = fleet.arg("hub-state");
    let hub =
        Agent::start_with(&["--token-file", &tokens, "--tls-self-signed", "--state-dir", &state]);
    let wrong = "AB:".repeat(31) + "AB";
    let url = format!("wss://{}", hub.address);
    let a1 = fleet.agent_tokens("a1");
    let state = fleet.arg("a1-state");
    let args = ["--token-file", &a1, "--join", &url, "--join-tls-fingerprint", &wrong];
    let log = fleet.path("a1.log");
    let _a1 = Joiner::start(&[&args[..], &["--state-dir", &state]].concat(), &log);
    let line = line_in_log(&log, &["NOT JOINED"], Duration::from_secs(10));
    assert!(line.contains("ERROR") && line.contains("trying again in 300 s"), "{line}");
    line_in_log(&log, &["delay_ms=300000"], Duration::from_secs(2));
}

#[test]
fn a_token_file_line_with_an_equals_sign_for_its_colon_is_refused_naming_the_line() {
    let fleet = Fleet::new();
    let path = write_token_file(&fleet.path("tokens"), &format!("# team\nalice={TEAM}\n"));
    let output = cli(&["serve", "--listen", "127.0.0.1:0", "--token-file", &path], &[]);
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(message.contains("line 2 of") && message.contains("alice:SECRET"), "{message}");
    assert!(!message.contains(TEAM), "never the secret: {message}");
}

/// Text with every run of white space made one space (help and Markdown wrap differently).
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn the_help_of_listen_and_join_says_what_the_deploy_docs_say() {
    let help = one_line(&String::from_utf8_lossy(&cli(&["serve", "--help"], &[]).stdout));
    let docs = std::fs::read_to_string(whyrefused_tests::workspace_root().join("deploy/README.md"))
        .expect("deploy/README.md");
    let docs = one_line(&docs.replace('`', ""));
    for said in [
        "an agent that joins a hub with --join listens only when given this",
        "Listens (page, WebSocket) only when --listen is given too",
        "presenting the first token of --token-file, an agent token (NAME:SECRET:agent)",
    ] {
        assert!(help.contains(said), "--help lacks {said:?}: {help}");
        assert!(docs.contains(said), "deploy/README.md lacks {said:?}");
    }
}

/// Whether a hello with `secret` is accepted: the hub then answers a request.
async fn accepted(hub: &Agent, secret: &str) -> bool {
    let mut client = Client::connect_with_token(hub, Some(secret)).await;
    client.send(&ClientMessage::Agents { id: RequestId(1) }).await;
    matches!(client.recv().await, AgentMessage::Agents { .. })
}

#[tokio::test]
async fn sighup_reloads_the_token_file_and_a_broken_one_keeps_the_tokens_loaded_before() {
    let fleet = Fleet::new();
    let tokens = fleet.hub_tokens(&[]);
    let log = fleet.path("hub.log");
    let hub = Agent::start_logged(&["--token-file", &tokens], &log);
    let newcomer = "newcomer-secret-0123456789";
    assert!(!accepted(&hub, newcomer).await, "not yet in the file");

    let path = fleet.path("hub.tokens");
    write_token_file(&path, &format!("team:{TEAM}\nnewcomer:{newcomer}\n"));
    hub.signal(Signal::SIGHUP);
    line_in_log(&log, &["reloaded 2 tokens"], Duration::from_secs(5));
    assert!(accepted(&hub, newcomer).await, "works without a restart");

    write_token_file(&path, &format!("team={TEAM}\n"));
    hub.signal(Signal::SIGHUP);
    let line = line_in_log(&log, &["cannot reload the token file"], Duration::from_secs(5));
    assert!(line.contains("keeping the tokens loaded before") && line.contains("line 1"), "{line}");
    assert!(accepted(&hub, newcomer).await, "the tokens loaded before still work");
}

#[test]
fn two_joining_agents_without_listen_run_beside_a_listening_agent_on_one_host() {
    let fleet = Fleet::new();
    let tokens = fleet.hub_tokens(&["a1", "a2"]);
    let hub = Agent::start_with(&["--token-file", &tokens]);
    let start = |name: &str| {
        let args = joining(&fleet.agent_tokens(name), &hub, &fleet.arg(&format!("{name}-state")));
        Joiner::start(&strs(&args), &fleet.path(&format!("{name}.log")))
    };
    let (mut a1, mut a2) = (start("a1"), start("a2"));
    for joiner in [&a1, &a2] {
        assert!(joiner.first_line.contains("not listening"), "{}", joiner.first_line);
    }
    online_since(&hub, &tokens, "a1", Duration::from_secs(10));
    online_since(&hub, &tokens, "a2", Duration::from_secs(10));
    assert!(a1.wait_exit(Duration::ZERO).is_none() && a2.wait_exit(Duration::ZERO).is_none());

    a1.signal(Signal::SIGTERM);
    let status = a1.wait_exit(Duration::from_secs(5)).expect("one SIGTERM ends it");
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn one_sigterm_ends_the_agent_during_a_running_scan() {
    let fleet = Fleet::new();
    let log = fleet.path("agent.log");
    let mut agent = Agent::start_logged(&[], &log);
    let hanging = HangingPort::new();
    let mut client = Client::connect(&agent).await;
    let mut request = ScanRequest::new("127.0.0.1", hanging.address.port().to_string());
    request.timeout_ms = Some(20_000);
    client.start_scan(1, request).await;
    client.recv().await;

    agent.terminate();
    let status = agent.wait_exit(Duration::from_secs(5)).expect("one SIGTERM ends it");
    assert!(status.success(), "{status:?}");
    line_in_log(&log, &["shutting down"], Duration::from_secs(1));
}

#[test]
fn one_sigterm_ends_a_tls_agent_with_a_handshake_in_flight() {
    let fleet = Fleet::new();
    let log = fleet.path("agent.log");
    let state = fleet.arg("state");
    let mut agent = Agent::start_logged(&["--tls-self-signed", "--state-dir", &state], &log);
    // A client that connects and never finishes (or even starts) its TLS handshake.
    let stalled = std::net::TcpStream::connect(agent.address).expect("connects");
    std::thread::sleep(Duration::from_millis(200));

    agent.terminate();
    let status = agent.wait_exit(Duration::from_secs(5)).expect("one SIGTERM ends it");
    assert!(status.success(), "{status:?}");
    line_in_log(&log, &["shutting down"], Duration::from_secs(1));
    drop(stalled);
}
