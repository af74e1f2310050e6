//! Vantage points with real processes on loopback: a hub (`serve --token-file`) and agents
//! joining it (`serve --join ws://…`, each with its agent token, named after it); requests run
//! from several of them at once.

use std::collections::BTreeMap;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use whyrefused_shared::{
    AgentMessage, CheckRequest, ClientMessage, CrossCause, ErrorCode, Outcome, RequestId, Step,
    VantageInfo,
};
use whyrefused_tests::lab_check::{json_in, wait_online_in};
use whyrefused_tests::{
    Agent, Client, HangingPort, Host, Lab, agent_binary, certificates, syn_sent_to,
    write_token_file,
};

/// The team's client token on the hub (and on each joined agent, for its own clients).
const SECRET: &str = "hub-secret-0123456789abcdef";

/// The agent token of the vantage point `name`: the one it presents, and may register under.
fn agent_secret(name: &str) -> String {
    format!("{name}-agent-secret-0123456789")
}

/// How long a silent link may last before the hub calls the agent offline (the agent's
/// `PING_TIMEOUT`), plus the ping interval it may have been silent for already.
const PING_TIMEOUT: Duration = Duration::from_secs(15);

/// A directory holding the token files, removed at the end.
struct Files {
    directory: tempfile::TempDir,
}

impl Files {
    fn new() -> Files {
        Files { directory: tempfile::tempdir().expect("a temporary directory") }
    }

    /// A token file holding `text`.
    fn tokens(&self, file: &str, text: &str) -> String {
        write_token_file(&self.path(file), text)
    }

    /// The hub's token file: the team's client token, and the agent token of each of `agents`.
    fn hub_tokens(&self, agents: &[&str]) -> String {
        let mut text = format!("# the hub\nteam:{SECRET}\n");
        for name in agents {
            text += &format!("{name}:{}:agent\n", agent_secret(name));
        }
        self.tokens("tokens", &text)
    }

    /// A joining agent's token file: its agent token first (presented to the hub, naming it),
    /// then the team's client token for its own clients.
    fn agent_tokens(&self, name: &str) -> String {
        self.tokens(
            &format!("{name}.tokens"),
            &format!("{name}:{}:agent\nteam:{SECRET}\n", agent_secret(name)),
        )
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.directory.path().join(name)
    }

    /// Starts the hub on `hub` in `lab`: TLS on 0.0.0.0:7443 with a certificate for `names`
    /// (openssl's subjectAltName list), clients and agents checked against `tokens`. Returns the
    /// certificate's pin, for the agents that join and the CLI that goes through it.
    fn start_tls_hub(&self, lab: &mut Lab, hub: &Host, tokens: &str, names: &str) -> String {
        let made = certificates::with_openssl(self.directory.path(), "hub", names);
        let (cert, key) = (made.cert.to_str().unwrap(), made.key.to_str().unwrap());
        let serve = ["serve", "--listen", "0.0.0.0:7443", "--token-file", tokens];
        let binary = agent_binary();
        lab.spawn(
            hub,
            binary.to_str().unwrap(),
            &[&serve[..], &["--tls-cert", cert, "--tls-key", key]].concat(),
        );
        lab.wait_listening(hub, 7443);
        made.fingerprint
    }

    /// Starts the agent `name` on `host`, serving its own clients on `listen` and joining the hub
    /// at `url` pinned to `pin`, with `extra` arguments.
    #[allow(clippy::too_many_arguments)]
    fn join(
        &self,
        lab: &mut Lab,
        host: &Host,
        name: &str,
        listen: &str,
        url: &str,
        pin: &str,
        extra: &[&str],
    ) {
        let own = self.agent_tokens(name);
        let serve = ["serve", "--listen", listen, "--token-file", &own];
        let join = ["--join", url, "--join-tls-fingerprint", pin];
        let binary = agent_binary();
        lab.spawn(host, binary.to_str().unwrap(), &[&serve[..], &join, extra].concat());
    }
}

fn hub_url(hub: &Agent) -> String {
    format!("ws://{}", hub.address)
}

/// Starts an agent joining `hub` with the agent token named `name` (so under that name). Every
/// vantage point here shares this host's loopback, where the targets are: a joined agent denies
/// loopback by default, so these lift that rule (`--allow-loopback`).
fn join(hub: &Agent, files: &Files, name: &str) -> Agent {
    let join = ["--join", &hub_url(hub), "--allow-loopback"];
    Agent::start_with(&[&["--token-file", &files.agent_tokens(name)][..], &join].concat())
}

/// Runs the CLI.
fn cli(args: &[&str]) -> Output {
    Command::new(agent_binary()).args(args).output().expect("the CLI runs")
}

/// `whyrefused agents --via … --json`, by name.
fn agents(hub: &Agent, tokens: &str) -> BTreeMap<String, VantageInfo> {
    let output = cli(&["agents", "--via", &hub_url(hub), "--token-file", tokens, "--json"]);
    assert!(output.status.success(), "agents failed: {}", String::from_utf8_lossy(&output.stderr));
    let list: Vec<VantageInfo> = serde_json::from_slice(&output.stdout).expect("JSON");
    list.into_iter().map(|info| (info.name.clone(), info)).collect()
}

fn online(list: &BTreeMap<String, VantageInfo>) -> Vec<&str> {
    list.values().filter(|info| info.online).map(|info| info.name.as_str()).collect()
}

/// Polls the hub's list until `condition` holds; returns how long it took. Fails after `limit`.
fn wait_for_list(
    hub: &Agent,
    tokens: &str,
    limit: Duration,
    what: &str,
    condition: impl Fn(&BTreeMap<String, VantageInfo>) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        let list = agents(hub, tokens);
        if condition(&list) {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "not within {limit:?}: {what}; the list: {list:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A hub and two agents joined to it, all online.
fn hub_and_two_agents(files: &Files) -> (Agent, Agent, Agent, String) {
    let tokens = files.hub_tokens(&["a1", "a2"]);
    let hub = Agent::start_with(&["--token-file", &tokens]);
    let a1 = join(&hub, files, "a1");
    let a2 = join(&hub, files, "a2");
    wait_for_list(&hub, &tokens, Duration::from_secs(10), "a1 and a2 online", |list| {
        online(list) == ["a1", "a2", "local"]
    });
    (hub, a1, a2, tokens)
}

async fn hub_client(hub: &Agent) -> Client {
    let client = Client::connect_with_token(hub, Some(SECRET)).await;
    assert!(matches!(client.hello, AgentMessage::Hello { auth_required: true, .. }));
    client
}

#[test]
fn agents_lists_the_hub_and_every_joined_agent_online() {
    let files = Files::new();
    let (hub, _a1, _a2, tokens) = hub_and_two_agents(&files);
    let list = agents(&hub, &tokens);
    assert_eq!(list.keys().collect::<Vec<_>>(), ["a1", "a2", "local"]);
    for info in list.values() {
        assert!(info.online, "{info:?}");
        assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
        assert!(!info.hostname.is_empty() && info.last_seen.is_some(), "{info:?}");
    }
    assert!(list["a1"].connected_since.is_some());
    for info in list.values() {
        assert!(
            info.addresses.iter().all(|a| !a.is_loopback()),
            "loopback is not listed: {info:?}"
        );
    }

    let table = cli(&["agents", "--via", &hub_url(&hub), "--token-file", &tokens]);
    let table = String::from_utf8_lossy(&table.stdout).into_owned();
    assert!(table.starts_with("NAME"), "{table}");
    assert!(table.lines().any(|l| l.starts_with("a2") && l.contains("online")), "{table}");
    assert!(!table.contains("warning"), "the same version everywhere: {table}");
}

#[tokio::test]
async fn a_joined_agent_of_another_version_is_warned_about_in_the_log_and_the_list() {
    let files = Files::new();
    let tokens = files.hub_tokens(&["old1"]);
    let log = files.path("hub.log");
    let hub = Agent::start_logged(&["--token-file", &tokens], &log);
    let mut agent = Client::connect_with_token(&hub, Some(&agent_secret("old1"))).await;
    // An agent of another release: the same protocol, another package version ("0").
    agent.send(&register("old1")).await;
    assert!(matches!(agent.recv().await, AgentMessage::Registered { name } if name == "old1"));

    let table = cli(&["agents", "--via", &hub_url(&hub), "--token-file", &tokens]);
    let table = String::from_utf8_lossy(&table.stdout).into_owned();
    let expected = format!(
        "warning: old1 runs whyrefused 0, the hub {}: install the same version on both",
        env!("CARGO_PKG_VERSION")
    );
    assert!(table.lines().any(|line| line == expected), "{table}");
    let start = Instant::now();
    let line = loop {
        let logged = std::fs::read_to_string(&log).unwrap_or_default();
        let warning = "a joined agent runs another whyrefused version";
        if let Some(line) = logged.lines().find(|line| line.contains(warning)) {
            break line.to_string();
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no warning logged: {logged}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(line.contains("WARN") && line.contains("old1") && line.contains("\"0\""), "{line}");
}

#[tokio::test]
async fn a_joined_agent_still_serves_its_own_clients() {
    let files = Files::new();
    let (_hub, a1, _a2, _tokens) = hub_and_two_agents(&files);
    let mut client = Client::connect_with_token(&a1, Some(SECRET)).await;
    let port = whyrefused_tests::closed_port();
    let (_, report) = client.check(1, CheckRequest::new(format!("127.0.0.1:{port}"))).await;
    assert_eq!(report.outcome, Some(Outcome::Completed));
}

#[test]
fn a_check_from_all_returns_one_result_per_vantage_point_and_the_cross_verdict() {
    let files = Files::new();
    let (hub, a1, _a2, tokens) = hub_and_two_agents(&files);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap().to_string();

    let output = cli(&[
        "check",
        &target,
        "--via",
        &hub_url(&hub),
        "--token-file",
        &tokens,
        "--from",
        "all",
        "--json",
    ]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let vantages = json["vantages"].as_array().unwrap();
    let names: Vec<&str> = vantages.iter().map(|v| v["vantage"].as_str().unwrap()).collect();
    assert_eq!(names, ["local", "a1", "a2"], "one result per vantage point, in order");
    for vantage in vantages {
        assert_eq!(vantage["report"]["verdict"]["cause"], "reachable", "{vantage}");
        assert_eq!(vantage["report"]["outcome"], "completed");
    }
    assert_eq!(json["verdict"]["cause"], "same", "{}", json["verdict"]);
    assert!(json["verdict"]["summary"].as_str().unwrap().contains("(local, a1, a2)"));

    // The hub stores each vantage point's part under its name, asked by the team's token; a
    // joined agent stores its own part too, asked through the hub.
    let stored = |agent: &Agent, token_file: &str| -> Vec<serde_json::Value> {
        let url = format!("ws://{}", agent.address);
        let output =
            cli(&["history", &target, "--via", &url, "--token-file", token_file, "--json"]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let listing: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
        listing["results"].as_array().expect("a list").clone()
    };
    let at_hub = stored(&hub, &tokens);
    let mut places: Vec<&str> = at_hub.iter().map(|r| r["vantage"].as_str().unwrap()).collect();
    places.sort();
    assert_eq!(places, ["a1", "a2", "local"], "{at_hub:?}");
    assert!(at_hub.iter().all(|r| r["asked_by"] == "team" && r["cause"] == "reachable"));
    let at_a1 = stored(&a1, &files.tokens("team", &format!("team:{SECRET}\n")));
    assert_eq!(at_a1.len(), 1, "{at_a1:?}");
    assert_eq!(
        (at_a1[0]["vantage"].as_str(), at_a1[0]["source"].as_str()),
        (Some("local"), Some("hub"))
    );
    assert_eq!(at_a1[0]["asked_by"], "team", "the hub's client, as the hub sent it");

    // Read as text, each vantage point has its section and the verdict comes last.
    let closed = whyrefused_tests::closed_port();
    let output = cli(&[
        "check",
        &format!("127.0.0.1:{closed}"),
        "--via",
        &hub_url(&hub),
        "--token-file",
        &tokens,
        "--from",
        "a2,local",
    ]);
    assert_eq!(output.status.code(), Some(1), "not reachable from anywhere");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let a2 = text.find("── from a2 ──").expect(&text);
    let local = text.find("── from local ──").expect(&text);
    let verdict = text.find("══ across vantage points: same ══").expect(&text);
    assert!(a2 < local && local < verdict, "{text}");
    assert!(!text.contains("from a1"), "only the vantage points asked for: {text}");
}

#[test]
fn a_scan_from_two_vantage_points_compares_their_open_ports() {
    let files = Files::new();
    let (hub, _a1, _a2, tokens) = hub_and_two_agents(&files);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let open = listener.local_addr().unwrap().port();
    let closed = whyrefused_tests::closed_port();
    let ports = format!("{open},{closed}");
    let output = cli(&[
        "scan",
        "127.0.0.1",
        "--ports",
        &ports,
        "--via",
        &hub_url(&hub),
        "--token-file",
        &tokens,
        "--from",
        "local,a1",
        "--json",
    ]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let names: Vec<&str> = json["vantages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["vantage"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["local", "a1"]);
    let verdict = &json["verdict"];
    assert_eq!(verdict["cause"], "same", "{verdict}");
    for vantage in verdict["vantages"].as_array().unwrap() {
        assert_eq!(vantage["open_ports"], serde_json::json!([open]), "{vantage}");
        assert_eq!(vantage["outcome"], "completed");
    }
}

#[tokio::test]
async fn events_are_tagged_by_vantage_point_each_ending_with_its_own_done() {
    let files = Files::new();
    let (hub, _a1, _a2, _tokens) = hub_and_two_agents(&files);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap().to_string();
    let mut client = hub_client(&hub).await;
    let from = Some(vec!["all".to_string()]);
    client
        .send(&ClientMessage::Check {
            id: RequestId(5),
            request: CheckRequest::new(target),
            from,
            origin: None,
        })
        .await;
    let mut steps: BTreeMap<String, Vec<&'static str>> = BTreeMap::new();
    let verdict = loop {
        match client.recv().await {
            AgentMessage::Event { id: RequestId(5), vantage: Some(vantage), event } => {
                let done = steps.get(&vantage).is_some_and(|s| s.last() == Some(&"done"));
                assert!(!done, "{vantage} sent events after its done");
                steps.entry(vantage).or_default().push(event.step.name());
            }
            AgentMessage::VantagesDone { id: RequestId(5), verdict } => break verdict,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(steps.keys().collect::<Vec<_>>(), ["a1", "a2", "local"]);
    for (vantage, steps) in &steps {
        assert_eq!(steps.first(), Some(&"started"), "{vantage}: {steps:?}");
        assert_eq!(steps.last(), Some(&"done"), "{vantage}: {steps:?}");
    }
    assert_eq!(verdict.cause, CrossCause::Same);

    // A name the hub does not know is refused with the known ones listed.
    let from = Some(vec!["nowhere".to_string()]);
    let request = CheckRequest::new("127.0.0.1:9");
    client.send(&ClientMessage::Check { id: RequestId(6), request, from, origin: None }).await;
    let AgentMessage::Error { id, message, .. } = client.recv().await else { panic!("no error") };
    assert_eq!(id, Some(RequestId(6)));
    assert!(message.contains("'nowhere'") && message.contains("local, a1, a2"), "{message}");

    // And the same socket still runs ordinary checks, untagged.
    let (_, report) =
        client.check(7, CheckRequest::new(listener.local_addr().unwrap().to_string())).await;
    assert_eq!(report.outcome, Some(Outcome::Completed));
}

#[tokio::test]
async fn a_refused_agent_backs_off_for_30_s_and_never_locks_its_address_out_of_the_hub() {
    let files = Files::new();
    let tokens = files.hub_tokens(&["a1"]);
    let wrong_secret = "wrong-secret-0123456789abcdef";
    let wrong = files.tokens("wrong", &format!("intruder:{wrong_secret}:agent\n"));
    let hub = Agent::start_with(&["--token-file", &tokens]);

    let log = files.path("agent.log");
    let hub_address = hub_url(&hub);
    let _agent = Agent::start_logged(&["--token-file", &wrong, "--join", &hub_address], &log);
    let start = Instant::now();
    let refusals = || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.lines()
            .filter(|line| line.contains("NOT JOINED: the hub refused this agent's token"))
            .count()
    };
    while refusals() < 1 {
        assert!(start.elapsed() < Duration::from_secs(10), "the agent was not refused");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Without the long pause, five refusals a minute (in about 4 s of quick retries) would lock
    // out 127.0.0.1, this client's address too.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(refusals(), 1, "one try, then a long pause: {text}");
    assert!(text.contains("delay_ms=30000"), "{text}");
    assert!(!text.contains(wrong_secret), "the secret never reaches the log");

    let mut client = hub_client(&hub).await;
    client.send(&ClientMessage::Agents { id: RequestId(1) }).await;
    let AgentMessage::Agents { agents, .. } = client.recv().await else {
        panic!("the hub refused a client from the agent's address")
    };
    let names: Vec<&str> = agents.iter().map(|info| info.name.as_str()).collect();
    assert_eq!(names, ["local"], "the hub does not list an agent it refused");
}

#[test]
fn an_agent_without_a_token_file_is_no_hub_and_says_so_to_joining_agents() {
    let files = Files::new();
    let tokens = files.agent_tokens("a1");
    let hub = Agent::start();
    let log = files.path("agent.log");
    let _agent = Agent::start_logged(&["--token-file", &tokens, "--join", &hub_url(&hub)], &log);
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("this agent is not a hub: start it with --token-file") {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no refusal logged: {text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_plain_ws_join_to_another_host_is_refused_at_startup() {
    let files = Files::new();
    let tokens = files.agent_tokens("a1");
    let output = Command::new(agent_binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--token-file", &tokens])
        .args(["--join", "ws://192.0.2.1:7070", "--name", "a1"])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(error.contains("plain ws:// only for a loopback hub; use wss://"), "{error}");
}

/// A `register` for the vantage point `name`.
fn register(name: &str) -> ClientMessage {
    let (version, hostname) = ("0".into(), "host".into());
    ClientMessage::Register {
        name: name.into(),
        version,
        hostname,
        addresses: Vec::new(),
        agent_id: None,
        forwards: false,
    }
}

/// The error `client` gets for `message`.
async fn error_for(client: &mut Client, message: &ClientMessage) -> (ErrorCode, String) {
    client.send(message).await;
    match client.recv().await {
        AgentMessage::Error { code, message, .. } => (code, message),
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_client_token_never_registers_and_an_agent_token_only_registers_under_its_name() {
    let files = Files::new();
    let hub = Agent::start_with(&["--token-file", &files.hub_tokens(&["a1"])]);
    let mut client = hub_client(&hub).await;
    let (code, message) = error_for(&mut client, &register("a1")).await;
    assert_eq!(code, ErrorCode::RegistrationRefused);
    assert!(message.contains("a client token cannot register"), "{message}");

    let mut agent = Client::connect_with_token(&hub, Some(&agent_secret("a1"))).await;
    let check = CheckRequest::new("127.0.0.1:9");
    let request =
        ClientMessage::Check { id: RequestId(1), request: check, from: None, origin: None };
    let (code, message) = error_for(&mut agent, &request).await;
    assert_eq!(code, ErrorCode::Unauthorized);
    assert!(message.contains("agent token") && message.contains("never run requests"), "{message}");
    let (code, message) = error_for(&mut agent, &register("a2")).await;
    assert_eq!(code, ErrorCode::RegistrationRefused);
    assert!(message.contains("registers only as 'a1', not 'a2'"), "{message}");

    let mut agent = Client::connect_with_token(&hub, Some(&agent_secret("a1"))).await;
    agent.send(&register("a1")).await;
    assert!(matches!(agent.recv().await, AgentMessage::Registered { name } if name == "a1"));
}

#[test]
fn a_joining_agent_must_present_an_agent_token_and_join_under_its_name() {
    let files = Files::new();
    let serve = |tokens: &str, more: &[&str]| {
        let join = ["serve", "--listen", "127.0.0.1:0", "--token-file", tokens, "--join"];
        cli(&[&join[..], &["ws://127.0.0.1:9"], more].concat())
    };
    let renamed = serve(&files.agent_tokens("a1"), &["--name", "a2"]);
    assert_eq!(renamed.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&renamed.stderr);
    assert!(stderr.contains("--name a2 differs from the name of the agent token"), "{stderr}");
    let client_first = serve(&files.tokens("client", &format!("team:{SECRET}\n")), &[]);
    assert_eq!(client_first.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&client_first.stderr);
    assert!(stderr.contains("'team', a client token") && stderr.contains(":agent"), "{stderr}");
}

/// `check` of a closed loopback port `--from all` through the hub: asserts that every vantage
/// point in `expected` (and no other) completed it.
fn a_check_from_all_completes_at(hub: &Agent, tokens: &str, expected: &[&str]) {
    let target = format!("127.0.0.1:{}", whyrefused_tests::closed_port());
    let via = hub_url(hub);
    let args = ["check", &target, "--via", &via, "--token-file", tokens, "--from", "all", "--json"];
    let output = cli(&args);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("no JSON ({e}): {}", String::from_utf8_lossy(&output.stderr)));
    let vantages = json["verdict"]["vantages"].as_array().expect("the cross verdict came");
    let mut ended: Vec<(&str, &str)> = vantages
        .iter()
        .map(|v| (v["name"].as_str().unwrap(), v["outcome"].as_str().unwrap_or("none")))
        .collect();
    ended.sort();
    let completed: Vec<(&str, &str)> = expected.iter().map(|name| (*name, "completed")).collect();
    assert_eq!(ended, completed, "{json}");
}

#[tokio::test]
async fn a_hub_killed_mid_fan_out_closes_its_clients_socket_and_the_agents_rejoin_it_restarted() {
    let files = Files::new();
    let (hub, _a1, _a2, tokens) = hub_and_two_agents(&files);
    let (mut client, _hanging) = start_hanging_check(&hub, &["a1", "local"]).await;
    let address = hub.address;
    drop(hub);
    // The client is not left waiting: its socket ends (no close frame from a killed process).
    loop {
        match client.next_frame().await {
            None | Some(tokio_tungstenite::tungstenite::Message::Close(_)) => break,
            Some(_) => {}
        }
    }
    // Down long enough that the agents' first retries fail.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let hub = Agent::start_on(address, &["--token-file", &tokens]);
    let took = wait_for_list(&hub, &tokens, Duration::from_secs(10), "rejoined", |list| {
        online(list) == ["a1", "a2", "local"]
    });
    eprintln!("the agents rejoined the restarted hub in {took:?}");
    a_check_from_all_completes_at(&hub, &tokens, &["a1", "a2", "local"]);
}

/// Starts a check `from` these vantage points of a port whose connects hang (2 s timeout),
/// and waits until every one's connect is in flight.
async fn start_hanging_check(hub: &Agent, from: &[&str]) -> (Client, HangingPort) {
    let hanging = HangingPort::new();
    let mut client = hub_client(hub).await;
    let mut request = CheckRequest::new(hanging.address.to_string());
    request.timeout_ms = Some(2_000);
    let places = if from == ["all"] { 3 } else { from.len() };
    let from = Some(from.iter().map(|name| name.to_string()).collect());
    client.send(&ClientMessage::Check { id: RequestId(1), request, from, origin: None }).await;
    let start = Instant::now();
    while syn_sent_to(hanging.address.port()) < places {
        assert!(start.elapsed() < Duration::from_secs(5), "the connects did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (client, hanging)
}

/// Follows request 1: when a1's `done` came and its outcome, then the cross verdict.
#[derive(Default)]
struct Follow {
    a1: Option<(Duration, Outcome)>,
}

impl Follow {
    /// Takes one message; once the request is over, a1's end and the cross-vantage cause.
    fn on(
        &mut self,
        message: AgentMessage,
        since: Instant,
    ) -> Option<(Duration, Outcome, CrossCause)> {
        match message {
            AgentMessage::Event { vantage: Some(vantage), event, .. } if vantage == "a1" => {
                if let Step::Done { outcome, .. } = event.step {
                    self.a1 = Some((since.elapsed(), outcome));
                }
                None
            }
            AgentMessage::VantagesDone { verdict, .. } => {
                let (at, outcome) = self.a1.expect("a1 ended with its own done");
                let reported = verdict.vantages.iter().find(|v| v.name == "a1").unwrap();
                assert_eq!(reported.outcome, Some(outcome));
                Some((at, outcome, verdict.cause))
            }
            _ => None,
        }
    }
}

#[tokio::test]
async fn an_agent_killed_mid_check_is_reported_offline() {
    let files = Files::new();
    let (hub, a1, _a2, _tokens) = hub_and_two_agents(&files);
    let (mut client, _hanging) = start_hanging_check(&hub, &["a1", "local"]).await;
    let killed = Instant::now();
    drop(a1);
    let mut follow = Follow::default();
    let (after, outcome, cause) = loop {
        if let Some(end) = follow.on(client.recv().await, killed) {
            break end;
        }
    };
    assert_eq!(outcome, Outcome::VantageOffline);
    assert!(after < PING_TIMEOUT, "reported {after:?} after the kill");
    assert_eq!(cause, CrossCause::Inconclusive, "only local finished: nothing to compare");
}

#[tokio::test]
async fn a_frozen_agents_part_ends_vantage_timeout_while_the_others_finish_and_all_serve_after() {
    let files = Files::new();
    let (hub, a1, _a2, tokens) = hub_and_two_agents(&files);
    let (mut client, _hanging) = start_hanging_check(&hub, &["all"]).await;
    // Frozen mid-check, its socket stays open but nothing comes from it any more: the hub gives
    // up on its part after the check's longest wait (2 s) plus 10 s, before the ping timeout
    // would call it offline.
    a1.signal(Signal::SIGSTOP);
    let mut outcomes: BTreeMap<String, Outcome> = BTreeMap::new();
    let verdict = loop {
        match client.recv_within(PING_TIMEOUT).await {
            AgentMessage::Event { vantage: Some(vantage), event, .. } => {
                if let Step::Done { outcome, .. } = event.step {
                    outcomes.insert(vantage, outcome);
                }
            }
            AgentMessage::VantagesDone { verdict, .. } => break verdict,
            _ => {}
        }
    };
    a1.signal(Signal::SIGCONT);
    let ended: Vec<(&str, Outcome)> = outcomes.iter().map(|(n, o)| (n.as_str(), *o)).collect();
    assert_eq!(
        ended,
        [
            ("a1", Outcome::VantageTimeout),
            ("a2", Outcome::Completed),
            ("local", Outcome::Completed)
        ]
    );
    assert!(verdict.details.iter().any(|d| d.starts_with("a1: fell silent")), "{verdict:?}");
    // Thawed within the ping timeout, a1 kept its link: every vantage point serves again.
    a_check_from_all_completes_at(&hub, &tokens, &["a1", "a2", "local"]);
}

/// `whyrefused agents` through a `wss://` hub, pinning `fingerprint`.
fn agents_over_tls(hub: &Agent, tokens: &str, fingerprint: &str) -> Output {
    let url = format!("wss://{}", hub.address);
    cli(&[
        "agents",
        "--via",
        &url,
        "--tls-fingerprint",
        fingerprint,
        "--token-file",
        tokens,
        "--json",
    ])
}

#[test]
fn agents_join_a_tls_hub_by_its_pinned_fingerprint_and_a_wrong_pin_is_refused() {
    let files = Files::new();
    let tokens = files.hub_tokens(&["a1"]);
    let state = files.path("hub-state");
    let hub = Agent::start_with(&[
        "--token-file",
        &tokens,
        "--tls-self-signed",
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    let pin = hub.fingerprint.clone().expect("a TLS hub prints its fingerprint");
    let url = format!("wss://{}", hub.address);
    let a1_tokens = files.agent_tokens("a1");
    let _a1 = Agent::start_with(&[
        "--token-file",
        &a1_tokens,
        "--join",
        &url,
        "--join-tls-fingerprint",
        &pin,
    ]);

    let start = Instant::now();
    let listed = loop {
        let output = agents_over_tls(&hub, &tokens, &pin);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let list: Vec<VantageInfo> = serde_json::from_slice(&output.stdout).expect("JSON");
        if list.iter().any(|info| info.name == "a1" && info.online) {
            break list;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "a1 never joined over TLS: {list:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(listed.len(), 2, "local and a1: {listed:?}");

    let wrong = "00:".repeat(31) + "00";
    let refused = agents_over_tls(&hub, &tokens, &wrong);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("not the pinned one"), "{stderr}");
}

/// A hub routing between two agents' networks (10.7.1.0/24 with a1, 10.7.2.0/24 with a2) and a
/// target's (10.7.3.2, holding port 80 open); the agents join it over TLS, pinned.
struct RoutedLab {
    lab: Lab,
    hub: Host,
    target: Host,
    /// `--via` and its pin and token, for the CLI run on the hub's host.
    via: Vec<String>,
    _files: Files,
}

impl RoutedLab {
    fn new() -> RoutedLab {
        let files = Files::new();
        let tokens = files.hub_tokens(&["a1", "a2"]);
        let mut lab = Lab::new();
        let hub = lab.host("hub");
        let (a1, a2, target) = (lab.host("a1"), lab.host("a2"), lab.host("target"));
        lab.link(&hub, "10.7.1.1/24", &a1, "10.7.1.2/24");
        lab.link(&hub, "10.7.2.1/24", &a2, "10.7.2.2/24");
        lab.link(&hub, "10.7.3.1/24", &target, "10.7.3.2/24");
        lab.sh(&hub, "sysctl -qw net.ipv4.ip_forward=1");
        lab.sh(&a1, "ip route add default via 10.7.1.1");
        lab.sh(&a2, "ip route add default via 10.7.2.1");
        lab.sh(&target, "ip route add default via 10.7.3.1");
        lab.spawn(&target, env!("CARGO_BIN_EXE_lab-server"), &["hold", "10.7.3.2:80"]);
        lab.wait_listening(&target, 80);

        let pin =
            files.start_tls_hub(&mut lab, &hub, &tokens, "IP:10.7.1.1,IP:10.7.2.1,IP:127.0.0.1");
        for (host, name, url) in
            [(&a1, "a1", "wss://10.7.1.1:7443"), (&a2, "a2", "wss://10.7.2.1:7443")]
        {
            files.join(&mut lab, host, name, "127.0.0.1:7070", url, &pin, &[]);
        }
        let via: Vec<String> =
            ["--via", "wss://127.0.0.1:7443", "--tls-fingerprint", &pin, "--token-file", &tokens]
                .map(String::from)
                .to_vec();
        let via_args: Vec<&str> = via.iter().map(String::as_str).collect();
        wait_online_in(&lab, &hub, &via_args, &["a1", "a2", "local"], Duration::from_secs(10));
        RoutedLab { lab, hub, target, via, _files: files }
    }

    /// `whyrefused check 10.7.3.2:80 --from a1,a2 --json` with `extra` arguments, run on the
    /// hub's host through the hub.
    fn check_from_both(&self, extra: &[&str]) -> serde_json::Value {
        let check = ["check", "10.7.3.2:80", "--from", "a1,a2", "--timeout-ms", "1000", "--json"];
        let via: Vec<&str> = self.via.iter().map(String::as_str).collect();
        json_in(&self.lab, &self.hub, &[&check[..], extra, &via].concat())
    }
}

#[test]
fn in_a_lab_two_places_see_a_firewall_between_them_and_the_hub_says_so() {
    // The target's firewall drops a2's SYNs to port 80 and lets a1's in.
    let routed = RoutedLab::new();
    routed.lab.sh(&routed.target, "iptables -A INPUT -s 10.7.2.2 -p tcp --dport 80 -j DROP");
    let result = routed.check_from_both(&[]);
    let cause_at = |name: &str| {
        let entry = result["vantages"].as_array().unwrap().iter().find(|v| v["vantage"] == name);
        entry.map(|v| v["report"]["verdict"]["cause"].as_str().unwrap_or("").to_string())
    };
    assert_eq!(cause_at("a1").as_deref(), Some("reachable"), "{result}");
    assert_eq!(cause_at("a2").as_deref(), Some("filtered"), "{result}");
    let verdict = &result["verdict"];
    assert_eq!(verdict["cause"], "firewall_between", "{verdict}");
    let summary = verdict["summary"].as_str().unwrap();
    assert!(summary.contains("a1") && summary.contains("a2"), "names both places: {summary}");
    // a2's silent check traced its path: the hub (its router) answers, then nothing. Each
    // vantage point's report carries its own path, and the cross verdict says where they part.
    let a2 = result["vantages"].as_array().unwrap().iter().find(|v| v["vantage"] == "a2");
    let path = &a2.expect("a2's result")["report"]["path"];
    assert_eq!(path["last_answered"]["address"], "10.7.2.1", "{path}");
    assert_eq!(path["reached"], false, "{path}");
    assert!(
        summary.ends_with("From a1 it connects; from a2 the SYNs die after 10.7.2.1 (hop 1)."),
        "{summary}"
    );
}

#[test]
fn in_a_lab_the_hub_routing_between_the_places_names_its_forward_rule() {
    // The hub itself drops a2's SYNs as it forwards them: iptables-nft first, then native nft.
    let routed = RoutedLab::new();
    let (lab, hub) = (&routed.lab, &routed.hub);
    lab.sh(hub, "iptables -A FORWARD -s 10.7.2.2 -p tcp --dport 80 -j DROP");
    let result = routed.check_from_both(&["--no-trace"]);
    let verdict = &result["verdict"];
    assert_eq!(verdict["cause"], "firewall_between", "{verdict}");
    let summary = verdict["summary"].as_str().unwrap();
    assert!(
        summary.contains(
            "a2 is dropped by the hub's `iptables filter FORWARD` rule 1: `-A FORWARD -s 10.7.2.2/32 \
             -p tcp -m tcp --dport 80 -j DROP` (likely: it counted"
        ),
        "{summary}"
    );
    let found = &verdict["router_rule"]["found"];
    assert_eq!(verdict["router_rule"]["router"], "local", "{verdict}");
    assert_eq!(found["address"], "10.7.3.2:80", "{found}");
    assert!(found["matched"][0]["packets"].as_u64().unwrap() >= 1, "{found}");

    lab.sh(hub, "iptables -F FORWARD");
    lab.sh(
        hub,
        "nft add table inet filter && nft add chain inet filter forward \
         '{ type filter hook forward priority 0; policy accept; }' && \
         nft add rule inet filter forward ip saddr 10.7.2.2 tcp dport 80 counter reject with tcp reset",
    );
    let result = routed.check_from_both(&["--no-trace"]);
    let verdict = &result["verdict"];
    let summary = verdict["summary"].as_str().unwrap();
    assert!(
        summary.contains(
            "a2 is rejected by the hub's `inet filter forward` rule 1: `ip saddr 10.7.2.2 tcp \
             dport 80 counter reject with tcp reset`"
        ),
        "{summary}"
    );

    // Without a stopping forwarding rule, nothing is named (and a2 connects).
    lab.sh(hub, "nft flush ruleset");
    let result = routed.check_from_both(&["--no-trace"]);
    assert!(result["verdict"].get("router_rule").is_none(), "{result}");
    assert_eq!(result["verdict"]["cause"], "same", "{result}");
}

#[test]
fn in_a_lab_a_joined_agent_on_the_router_between_names_its_forward_rule() {
    // The hub (10.8.1.1) is outside the path: it reaches c1's network and the target's through
    // r1, a router whose own agent joined it. r1's FORWARD chain drops SYNs to the target's
    // port 80; r1's own connects (OUTPUT, not FORWARD) get through.
    let files = Files::new();
    let tokens = files.hub_tokens(&["c1", "r1"]);
    let mut lab = Lab::new();
    let (hub, r1) = (lab.host("hub"), lab.host("r1"));
    let (c1, target) = (lab.host("c1"), lab.host("target"));
    lab.link(&hub, "10.8.1.1/24", &r1, "10.8.1.2/24");
    lab.link(&r1, "10.8.2.1/24", &c1, "10.8.2.2/24");
    lab.link(&r1, "10.8.3.1/24", &target, "10.8.3.2/24");
    lab.sh(&r1, "sysctl -qw net.ipv4.ip_forward=1");
    lab.sh(&hub, "ip route add default via 10.8.1.2");
    lab.sh(&c1, "ip route add default via 10.8.2.1");
    lab.sh(&target, "ip route add default via 10.8.3.1");
    lab.spawn(&target, env!("CARGO_BIN_EXE_lab-server"), &["hold", "10.8.3.2:80"]);
    lab.wait_listening(&target, 80);

    let pin = files.start_tls_hub(&mut lab, &hub, &tokens, "IP:10.8.1.1,IP:127.0.0.1");
    // r1 shows the hub its host's details (its rules' text): the hub is not on its host.
    for (host, name, extra) in [(&c1, "c1", &[][..]), (&r1, "r1", &["--show-processes"][..])] {
        files.join(&mut lab, host, name, "127.0.0.1:7070", "wss://10.8.1.1:7443", &pin, extra);
    }
    let via = ["--via", "wss://127.0.0.1:7443", "--tls-fingerprint", &pin, "--token-file", &tokens];
    wait_online_in(&lab, &hub, &via, &["c1", "local", "r1"], Duration::from_secs(10));

    lab.sh(&r1, "iptables -A FORWARD -d 10.8.3.2 -p tcp --dport 80 -j DROP");
    let check = ["check", "10.8.3.2:80", "--from", "c1,r1", "--timeout-ms", "1000", "--no-trace"];
    let result = json_in(&lab, &hub, &[&check[..], &["--json"], &via].concat());
    let verdict = &result["verdict"];
    assert_eq!(verdict["cause"], "firewall_between", "{verdict}");
    let summary = verdict["summary"].as_str().unwrap();
    assert!(
        summary.contains(
            "c1 is dropped by the router r1's `iptables filter FORWARD` rule 1: `-A FORWARD -d \
             10.8.3.2/32 -p tcp -m tcp --dport 80 -j DROP` (likely: it counted"
        ),
        "{summary}"
    );
    assert_eq!(verdict["router_rule"]["router"], "r1", "{verdict}");
    assert_eq!(verdict["router_rule"]["found"]["address"], "10.8.3.2:80", "{verdict}");
}

/// The packets a host's first INPUT rule matched so far.
fn first_input_rule_packets(lab: &Lab, host: &Host) -> u64 {
    let listing = lab.sh(host, "iptables -L INPUT -v -x -n | awk 'NR == 3 { print $1 }'");
    String::from_utf8_lossy(&listing.stdout).trim().parse().unwrap_or(0)
}

/// Each vantage point's outcome in a `--json` result of a request from several places.
fn outcomes(result: &serde_json::Value) -> Vec<(String, String)> {
    let vantages = result["verdict"]["vantages"].as_array().expect("the cross verdict came");
    let mut outcomes: Vec<(String, String)> = vantages
        .iter()
        .map(|v| (v["name"].as_str().unwrap().into(), v["outcome"].as_str().unwrap_or("").into()))
        .collect();
    outcomes.sort();
    outcomes
}

#[test]
fn in_a_lab_an_agents_link_cut_mid_scan_still_ends_its_part_and_every_place_serves_after() {
    // A hub with a2 beside it and a1 in its own namespace over a veth link. a1's SYNs to the
    // hub's ports 1000-1199 are dropped, so its scan of them lasts; its link is cut mid-way.
    let files = Files::new();
    let tokens = files.hub_tokens(&["a1", "a2"]);
    let mut lab = Lab::new();
    let (hub, a1) = (lab.host("hub"), lab.host("a1"));
    let (_, a1_end) = lab.link(&hub, "10.7.1.1/24", &a1, "10.7.1.2/24");
    lab.sh(&hub, "iptables -A INPUT -s 10.7.1.2 -p tcp --dport 1000:1199 -j DROP");
    let pin = files.start_tls_hub(&mut lab, &hub, &tokens, "IP:10.7.1.1,IP:127.0.0.1");
    for (host, name, listen, url) in [
        (&a1, "a1", "127.0.0.1:7070", "wss://10.7.1.1:7443"),
        (&hub, "a2", "127.0.0.1:7071", "wss://127.0.0.1:7443"),
    ] {
        files.join(&mut lab, host, name, listen, url, &pin, &[]);
    }
    let via = ["--via", "wss://127.0.0.1:7443", "--tls-fingerprint", &pin, "--token-file", &tokens];
    wait_online_in(&lab, &hub, &via, &["a1", "a2", "local"], Duration::from_secs(10));

    let scan = ["scan", "10.7.1.1", "--ports", "1000-1199", "--from", "all", "--json"];
    let result = std::thread::scope(|scope| {
        let running = scope.spawn(|| json_in(&lab, &hub, &[&scan[..], &via].concat()));
        let start = Instant::now();
        while first_input_rule_packets(&lab, &hub) == 0 {
            assert!(start.elapsed() < Duration::from_secs(10), "a1's scan never started");
            std::thread::sleep(Duration::from_millis(20));
        }
        lab.sh(&a1, &format!("ip link set {a1_end} down"));
        running.join().expect("the scan's client ends")
    });
    let ended = outcomes(&result);
    let a1_outcome = ended[0].1.as_str();
    assert!(
        ["vantage_offline", "vantage_timeout"].contains(&a1_outcome),
        "a1's part ends offline or timed out: {result}"
    );
    assert_eq!(
        ended[1..],
        [("a2".into(), "completed".into()), ("local".into(), "completed".into())]
    );

    // The hub calls a1 offline once its link is silent for the ping timeout; with the link back
    // up, a1 rejoins, and a check from all runs everywhere.
    wait_online_in(&lab, &hub, &via, &["a2", "local"], PING_TIMEOUT + Duration::from_secs(5));
    lab.sh(&a1, &format!("ip link set {a1_end} up"));
    wait_online_in(&lab, &hub, &via, &["a1", "a2", "local"], Duration::from_secs(30));
    let check = ["check", "10.7.1.1:9", "--from", "all", "--json"];
    let result = json_in(&lab, &hub, &[&check[..], &via].concat());
    let completed = |name: &str| (name.to_string(), "completed".to_string());
    assert_eq!(outcomes(&result), [completed("a1"), completed("a2"), completed("local")]);
}
