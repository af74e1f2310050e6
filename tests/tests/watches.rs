//! The agent's own watches, as a user meets them through `POST /api/watches`: a watch of a
//! loopback port that a listener the test owns closes, opens and closes again records each
//! change with its time, captures the diagnosis of the changed round and posts it to a webhook
//! receiver the test runs; it survives an agent restart (same id, rounds go on) and stops when
//! deleted; its limits and admission are those of every API route; from two joined agents, a
//! quorum keeps it up while one fails and takes it down when both do. Every target is on
//! loopback.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};
use whyrefused_tests::scrape::{Scraped, get};
use whyrefused_tests::webhook::{closed_opened_closed, webhook_receiver};
use whyrefused_tests::{Agent, agent_binary, closed_port, write_token_file};

/// How long the test waits for something a watch of 200 ms rounds should show within a
/// second or two: a loaded machine gets room, a broken watch fails the test.
const PATIENCE: Duration = Duration::from_secs(20);

/// Sends `method path` with `headers` and, when given, a JSON body.
fn call(address: SocketAddr, method: &str, path: &str, headers: &[&str], body: &str) -> Scraped {
    let mut stream = TcpStream::connect(address).expect("the agent accepts");
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    for header in headers {
        head += &format!("{header}\r\n");
    }
    head += &format!("Content-Length: {}\r\n\r\n{body}", body.len());
    stream.write_all(head.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Scraped { status, head: head.to_ascii_lowercase(), body: body.to_string() }
}

const JSON: &str = "Content-Type: application/json";

/// `POST /api/watches` with `spec` (and `headers`), as JSON.
fn post(address: SocketAddr, spec: &Value, headers: &[&str]) -> Scraped {
    let headers: Vec<&str> = [&[JSON][..], headers].concat();
    call(address, "POST", "/api/watches", &headers, &spec.to_string())
}

/// A JSON answer's document.
fn document(scraped: &Scraped) -> Value {
    serde_json::from_str(&scraped.body).unwrap_or_else(|_| panic!("not JSON: {scraped:?}"))
}

/// The watch's stored rounds, oldest first.
fn rounds(address: SocketAddr, id: &str, headers: &[&str]) -> Vec<Value> {
    let path = format!("/api/watches/{id}/rounds?limit=10000");
    let answer = call(address, "GET", &path, headers, "");
    assert_eq!(answer.status, 200, "{}", answer.body);
    document(&answer)["rounds"].as_array().unwrap().clone()
}

/// Polls the watch's rounds until one satisfies `condition`; returns them all.
fn wait_for_round(
    address: SocketAddr,
    id: &str,
    headers: &[&str],
    what: &str,
    condition: impl Fn(&Value) -> bool,
) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let all = rounds(address, id, headers);
        if all.iter().any(&condition) {
            return all;
        }
        assert!(start.elapsed() < PATIENCE, "no round {what} within {PATIENCE:?}: {all:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn time(value: &Value) -> SystemTime {
    humantime::parse_rfc3339(value.as_str().expect("a time")).expect("RFC 3339")
}

fn cause(round: &Value) -> &str {
    round["cause"].as_str().unwrap_or("")
}

#[test]
fn an_agent_watch_records_each_change_posts_it_survives_a_restart_and_stops_when_deleted() {
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().to_str().unwrap();
    let port = closed_port();
    let target = format!("127.0.0.1:{port}");
    let (hook, bodies) = webhook_receiver();
    let public = "https://whyrefused.example:7070";
    let flags = ["--state-dir", dir, "--min-watch-every", "100ms", "--public-url", public];
    let mut agent = Agent::start_with(&flags);
    let spec = json!({
        "check": { "target": target },
        "every": "200ms",
        "webhook": format!("http://{hook}/hooks/T000/secret-path"),
    });
    let made = post(agent.address, &spec, &[]);
    assert_eq!(made.status, 201, "{}", made.body);
    let watch = document(&made);
    let id = watch["id"].as_str().unwrap().to_string();
    assert_eq!(watch["state"], "running");
    assert_eq!(watch["spec"]["webhook"], format!("http://{}", hook.ip()), "scheme and host only");

    wait_for_round(agent.address, &id, &[], "closed", |r| cause(r) == "port_closed");
    let opened = SystemTime::now();
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("the port is free");
    let seen = wait_for_round(agent.address, &id, &[], "open", |r| cause(r) == "reachable");
    let seen_open = SystemTime::now();
    let open_round = seen.iter().find(|r| cause(r) == "reachable").unwrap().clone();
    drop(listener);
    let closed = SystemTime::now();
    let seen = wait_for_round(agent.address, &id, &[], "closed again", |r| {
        cause(r) == "port_closed" && r["round"].as_u64() > open_round["round"].as_u64()
    });
    let seen_closed = SystemTime::now();

    let info = document(&get(agent.address, &format!("/api/watches/{id}")));
    let changes = info["summary"]["changes"].as_array().unwrap().clone();
    assert_eq!(changes.len(), 2, "{info}");
    assert_eq!(
        (changes[0]["from"].as_str(), changes[0]["to"].as_str()),
        (Some("port_closed"), Some("reachable"))
    );
    assert_eq!(
        (changes[1]["from"].as_str(), changes[1]["to"].as_str()),
        (Some("reachable"), Some("port_closed"))
    );
    // A change is timed by the start of the round that saw it. The round before it saw the
    // old state, so it started before the test's change; the round itself started before the
    // test saw it. (Its connect, a millisecond after its start, may follow the listener's
    // bind by a hair: hence the start may precede the change by at most one round's length.)
    for (change, (before, after)) in
        changes.iter().zip([(opened, seen_open), (closed, seen_closed)])
    {
        let round = change["round"].as_u64().unwrap();
        let at = time(&change["at"]);
        let previous = seen.iter().find(|r| r["round"].as_u64() == Some(round - 1)).unwrap();
        assert!(time(&previous["at"]) < before, "the round before saw the old state");
        assert!(at <= after, "seen before the test read it");
        assert!(at + Duration::from_millis(200) >= before, "not a round early");
        let stored = seen.iter().find(|r| r["round"].as_u64() == Some(round)).unwrap();
        assert_eq!((stored["changed"].as_bool(), &stored["at"]), (Some(true), &change["at"]));
    }
    // The round that saw the change ran the full diagnosis, stored under the watch.
    let diagnosed = changes[0]["result"].as_str().expect("the change's result");
    let result = document(&get(agent.address, &format!("/api/results/{diagnosed}")));
    assert_eq!(
        (result["watch"].as_str(), result["source"].as_str()),
        (Some(id.as_str()), Some("watch"))
    );
    let report = &result["report"];
    assert!(
        report.get("path").is_some()
            || report["findings"].as_array().is_some_and(|f| !f.is_empty()),
        "{report}"
    );

    let (first, _second) = closed_opened_closed(&bodies, PATIENCE);
    assert_eq!(first["at"], changes[0]["at"]);
    assert_eq!(first["link"], format!("{public}/#/r/{diagnosed}"), "the link under --public-url");

    // Restarted on the same state directory, the agent runs the watch on: same id, its
    // rounds numbered on from the last.
    let last_before = rounds(agent.address, &id, &[]).last().unwrap()["round"].as_u64().unwrap();
    let address = agent.address;
    agent.terminate();
    agent.wait_exit(Duration::from_secs(10)).expect("the agent stops");
    drop(agent);
    let agent = Agent::start_on(address, &flags);
    let listing = document(&get(agent.address, "/api/watches"));
    assert_eq!(listing["watches"][0]["id"], id.as_str(), "{listing}");
    assert_eq!(listing["watches"][0]["state"], "running");
    let resumed = wait_for_round(agent.address, &id, &[], "after the restart", |r| {
        r["round"].as_u64().unwrap() > last_before
    });
    let numbers: Vec<u64> = resumed.iter().map(|r| r["round"].as_u64().unwrap()).collect();
    assert!(
        numbers.windows(2).all(|w| w[1] == w[0] + 1),
        "no number twice, none skipped: {numbers:?}"
    );

    let stopped = call(agent.address, "DELETE", &format!("/api/watches/{id}"), &[], "");
    assert_eq!(stopped.status, 204, "{}", stopped.body);
    let after_stop = rounds(agent.address, &id, &[]).len();
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(rounds(agent.address, &id, &[]).len(), after_stop, "no round after the stop");
    let info = document(&get(agent.address, &format!("/api/watches/{id}")));
    assert_eq!(info["state"], "stopped", "it stays listed: {info}");
}

const CLIENT_SECRET: &str = "watches-client-secret-0123456789";

fn cli(args: &[&str]) -> Output {
    Command::new(agent_binary()).args(args).output().expect("the CLI runs")
}

#[test]
fn watches_are_bounded_and_admitted_like_every_api_route() {
    let agent = Agent::start_with(&["--max-watches", "1", "--min-watch-every", "1s"]);
    let target = format!("127.0.0.1:{}", closed_port());
    let spec = |every: &str| json!({ "check": { "target": target }, "every": every });
    assert_eq!(post(agent.address, &spec("10s"), &[]).status, 201);
    let full = post(agent.address, &spec("10s"), &[]);
    assert_eq!(full.status, 409);
    assert!(
        full.body.contains("already runs 1 watches") && full.body.contains("--max-watches"),
        "{}",
        full.body
    );
    let short = post(agent.address, &spec("500ms"), &[]);
    assert_eq!(short.status, 422);
    assert!(
        short.body.starts_with("every: ") && short.body.contains("1s (serve --min-watch-every)"),
        "{}",
        short.body
    );
    let plain = call(agent.address, "POST", "/api/watches", &[], &spec("10s").to_string());
    assert_eq!(plain.status, 415, "{}", plain.body);
    let cross = post(agent.address, &spec("10s"), &["Sec-Fetch-Site: cross-site"]);
    assert_eq!(cross.status, 403, "{}", cross.body);
    let bad = call(agent.address, "POST", "/api/watches", &[JSON], "{\"check\":");
    assert_eq!((bad.status, bad.body.lines().count()), (400, 1), "{}", bad.body);
    let url = format!("http://{}", agent.address);
    let listed = cli(&["watches", "--via", &url]);
    let out = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.status.success() && out.contains(&target) && out.contains("running"), "{out}");
    let unknown = cli(&["watches", "--via", &url, "--stop", "0000000000"]);
    assert_eq!(unknown.status.code(), Some(2));
    let said = String::from_utf8_lossy(&unknown.stderr);
    assert!(said.contains("no watch 0000000000") && said.lines().count() == 1, "{said}");

    let directory = tempfile::tempdir().unwrap();
    let tokens =
        write_token_file(&directory.path().join("tokens"), &format!("team:{CLIENT_SECRET}\n"));
    let guarded = Agent::start_with(&["--token-file", &tokens, "--min-watch-every", "1s"]);
    assert_eq!(post(guarded.address, &spec("10s"), &[]).status, 401);
    assert_eq!(get(guarded.address, "/api/watches").status, 401);
    let bearer = format!("Authorization: Bearer {CLIENT_SECRET}");
    let made = post(guarded.address, &spec("10s"), &[&bearer]);
    assert_eq!(made.status, 201, "{}", made.body);
    let id = document(&made)["id"].as_str().unwrap().to_string();
    assert_eq!(document(&made)["created_by"], "team");
    let guarded_url = format!("http://{}", guarded.address);
    let refused = cli(&["watches", "--via", &guarded_url, "--stop", &id]);
    assert_eq!(refused.status.code(), Some(2), "without a token");
    let stopped = cli(&["watches", "--via", &guarded_url, "--token-file", &tokens, "--stop", &id]);
    assert!(stopped.status.success(), "{}", String::from_utf8_lossy(&stopped.stderr));
    let info =
        document(&call(guarded.address, "GET", &format!("/api/watches/{id}"), &[&bearer], ""));
    assert_eq!((info["state"].as_str(), info["by"].as_str()), (Some("stopped"), Some("team")));
}

/// The hub's client token, and each joined agent's agent token.
const SECRET: &str = "watches-hub-secret-0123456789";

fn agent_secret(name: &str) -> String {
    format!("{name}-watches-agent-secret-0123456789")
}

/// Starts an agent that joins `hub` as `name`, allowed to check this host's loopback.
fn join(hub: &Agent, directory: &std::path::Path, name: &str) -> Agent {
    let text = format!("{name}:{}:agent\nteam:{SECRET}\n", agent_secret(name));
    let tokens = write_token_file(&directory.join(format!("{name}.tokens")), &text);
    let hub_url = format!("ws://{}", hub.address);
    Agent::start_with(&["--token-file", &tokens, "--join", &hub_url, "--allow-loopback"])
}

#[test]
fn a_watch_from_two_joined_agents_stays_up_while_one_fails_and_goes_down_when_both_do() {
    let directory = tempfile::tempdir().unwrap();
    let text = format!(
        "team:{SECRET}\na1:{}:agent\na2:{}:agent\n",
        agent_secret("a1"),
        agent_secret("a2")
    );
    let tokens = write_token_file(&directory.path().join("tokens"), &text);
    let hub = Agent::start_with(&["--token-file", &tokens, "--min-watch-every", "100ms"]);
    let _a1 = join(&hub, directory.path(), "a1");
    let a2 = join(&hub, directory.path(), "a2");
    let bearer = format!("Authorization: Bearer {SECRET}");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap().to_string();
    let spec = json!({
        "check": { "target": target },
        "every": "200ms",
        "from": ["a1", "a2"],
        "quorum": "2/2",
    });
    // The agents join within a moment of starting: until then the hub does not know them.
    let start = Instant::now();
    let made = loop {
        let made = post(hub.address, &spec, &[&bearer]);
        if made.status == 201 || start.elapsed() > PATIENCE {
            break made;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(made.status, 201, "{}", made.body);
    let id = document(&made)["id"].as_str().unwrap().to_string();
    let headers = [bearer.as_str()];
    let both_up = |r: &Value| {
        r["vantages"]
            .as_array()
            .is_some_and(|v| v.len() == 2 && v.iter().all(|p| p["cause"] == "reachable"))
    };
    wait_for_round(hub.address, &id, &headers, "up at both", both_up);

    drop(a2);
    let a2_offline = |r: &Value| r["vantages"][1]["outcome"] == "vantage_offline";
    let seen = wait_for_round(hub.address, &id, &headers, "with a2 offline", a2_offline);
    let one_down = seen.iter().find(|r| a2_offline(r)).unwrap();
    assert_eq!(one_down["vantages"][1]["vantage"], "a2");
    assert_eq!(one_down["vantages"][0]["cause"], "reachable");
    assert_eq!(
        (cause(one_down), one_down["reachable"].as_bool()),
        ("reachable", Some(true)),
        "1 of 2 failing: up"
    );

    // The command line's watch through the hub combines the same way.
    let client = write_token_file(&directory.path().join("team"), &format!("team:{SECRET}\n"));
    let hub_url = format!("ws://{}", hub.address);
    let through = cli(&[
        &["watch", &target, "--via", &hub_url, "--token-file", &client][..],
        &["--from", "a1,a2", "--quorum", "2/2", "--count", "1", "--json"],
    ]
    .concat());
    let out = String::from_utf8_lossy(&through.stdout);
    assert_eq!(through.status.code(), Some(0), "up under the quorum: {out}");
    let line: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(line["watch"]["cause"], "reachable", "{line}");
    assert_eq!(line["watch"]["vantages"][1]["outcome"], "vantage_offline", "{line}");

    drop(listener);
    let seen = wait_for_round(hub.address, &id, &headers, "down", |r| cause(r) == "port_closed");
    let down = seen.iter().find(|r| cause(r) == "port_closed").unwrap();
    assert_eq!(down["changed"], true, "{down}");
    assert_eq!(down["reachable"], false);
    assert_eq!(down["vantages"][0]["cause"], "port_closed");
    let info = document(&call(hub.address, "GET", &format!("/api/watches/{id}"), &headers, ""));
    let changes = info["summary"]["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "down once, not when a2 went offline: {info}");
}
