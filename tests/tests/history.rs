//! The history and watches, as a user meets them: a watch of a loopback port that a listener
//! the test owns closes, opens and closes again records each change with its time and posts it
//! to a webhook receiver the test runs; results outlive an agent's restart; the API answers
//! as its rules say, by target and id and as CSV; retention prunes; a broken file is named
//! and the agent still serves checks; two agents share one file. Every target is on loopback.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use serde_json::Value;
use whyrefused_shared::CheckRequest;
use whyrefused_tests::scrape::{get, request};
use whyrefused_tests::webhook::{closed_opened_closed, webhook_receiver};
use whyrefused_tests::{Agent, Client, agent_binary, closed_port, write_token_file};

/// Runs the CLI with `args`; its exit code and standard output and error.
fn cli(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(agent_binary()).args(args).output().expect("the CLI runs");
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (output.status.code().unwrap_or(-1), text(&output.stdout), text(&output.stderr))
}

/// `whyrefused history … --json` from the file in `state`: the results, newest first.
fn stored(state: &Path, target: &str) -> Vec<Value> {
    let dir = state.to_str().unwrap();
    let (code, out, err) =
        cli(&["history", target, "--json", "--limit", "1000", "--state-dir", dir]);
    assert_eq!(code, 0, "{err}");
    let document: Value = serde_json::from_str(&out).expect("history --json is JSON");
    document["results"].as_array().expect("a list").clone()
}

#[test]
fn a_watch_records_each_change_of_a_port_with_its_time_and_posts_it_to_a_webhook() {
    let state = tempfile::tempdir().unwrap();
    let port = closed_port();
    let target = format!("127.0.0.1:{port}");
    let (hook, bodies) = webhook_receiver();
    let mut watch = Command::new(agent_binary())
        .args(["watch", &target, "--every", "150ms", "--count", "12", "--json"])
        .args(["--webhook", &format!("http://{hook}/hooks/whyrefused")])
        .args(["--state-dir", state.path().to_str().unwrap()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("the watch starts");
    let lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    let (mut rounds, mut summary) = (Vec::new(), None);
    let (mut listener, mut opened_at, mut closed_at) = (None, None, None);
    for line in lines {
        let document: Value =
            serde_json::from_str(&line.unwrap()).expect("one JSON document a line");
        if document.get("summary").is_some() {
            summary = Some(document["summary"].clone());
            break;
        }
        let round = document["watch"]["round"].as_u64().unwrap();
        rounds.push(document);
        // The port opens after round 3 and closes after round 7.
        if round == 3 {
            opened_at = Some(SystemTime::now());
            listener =
                Some(TcpListener::bind(("127.0.0.1", port)).expect("the port is free again"));
        }
        if round == 7 {
            drop(listener.take());
            closed_at = Some(SystemTime::now());
        }
    }
    assert!(watch.wait().unwrap().code() == Some(1), "it ended on a closed port");
    let causes: Vec<&str> =
        rounds.iter().map(|r| r["report"]["verdict"]["cause"].as_str().unwrap()).collect();
    assert_eq!(rounds.len(), 12, "{causes:?}");
    let changed: Vec<u64> = rounds
        .iter()
        .filter(|r| r["watch"]["changed"] == true)
        .map(|r| r["watch"]["round"].as_u64().unwrap())
        .collect();
    assert_eq!(changed, [4, 8], "{causes:?}");
    assert_eq!(&causes[2..5], ["port_closed", "reachable", "reachable"]);

    let summary = summary.expect("a summary at the end");
    assert_eq!(summary["rounds"], 12);
    assert_eq!(summary["causes"]["reachable"], 4);
    let changes = summary["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 2);
    assert_eq!(
        (changes[0]["from"].as_str(), changes[0]["to"].as_str()),
        (Some("port_closed"), Some("reachable"))
    );
    // A change is timed by the start of the round that saw it: the first round that began after
    // the previous one, whose line the test read before it opened or closed the port.
    let time = |value: &Value| humantime::parse_rfc3339(value.as_str().unwrap()).unwrap();
    for (change, moment) in changes.iter().zip([opened_at.unwrap(), closed_at.unwrap()]) {
        let (at, round) = (time(&change["at"]), change["round"].as_u64().unwrap() as usize);
        assert_eq!(change["at"], rounds[round - 1]["watch"]["at"], "the round's own time");
        assert!(at > time(&rounds[round - 2]["watch"]["at"]), "after the round before");
        let around = |a: SystemTime, b: SystemTime| a.duration_since(b).unwrap_or_default();
        assert!(around(moment, at) < Duration::from_millis(500), "not before the change");
        assert!(around(at, moment) < Duration::from_secs(2), "seen at the next round");
    }
    // The round that saw the change ran the full diagnosis: the path trace is in its report.
    let diagnosed = &rounds[3]["report"];
    assert!(
        diagnosed.get("path").is_some()
            || diagnosed["findings"].as_array().is_some_and(|f| !f.is_empty()),
        "{diagnosed}"
    );

    let (first, _second) = closed_opened_closed(&bodies, Duration::from_secs(20));
    assert!(first["text"].as_str().unwrap().contains(&target), "{first}");
    assert_eq!(first["at"], changes[0]["at"]);

    let history = stored(state.path(), &target);
    assert_eq!(history.len(), 12, "every round is stored");
    assert!(history.iter().all(|r| r["source"] == "watch" && r["watch"] == summary["watch"]));
    assert_eq!(history[0]["cause"], "port_closed", "newest first");
    let stored_change = history
        .iter()
        .find(|r| r["id"] == changes[0]["result"])
        .expect("the diagnosed round is stored");
    let (kept, seen) = (time(&stored_change["at"]), time(&changes[0]["at"]));
    assert!(
        seen.duration_since(kept).unwrap() < Duration::from_millis(1),
        "stored to the millisecond"
    );
}

const CLIENT_SECRET: &str = "history-client-secret-0123456789";
const AGENT_SECRET: &str = "history-agent-secret-0123456789";

/// Runs one check of `target` through the agent's WebSocket.
fn check_through(
    agent: &Agent,
    token: Option<&str>,
    target: &str,
) -> whyrefused_shared::CheckReport {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut client = Client::connect_with_token(agent, token).await;
        let (_, report) = client.check(1, CheckRequest::new(target)).await;
        client.close().await;
        report
    })
}

#[test]
fn results_outlive_an_agent_restart_and_the_api_finds_them_by_target_and_id_and_as_csv() {
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().to_str().unwrap();
    let target = format!("127.0.0.1:{}", closed_port());
    let mut agent = Agent::start_with(&["--state-dir", dir]);
    check_through(&agent, None, &target);
    check_through(&agent, None, &format!("127.0.0.1:{}", closed_port()));
    let address = agent.address;
    agent.terminate();
    agent.wait_exit(Duration::from_secs(10)).expect("the agent stops");
    drop(agent);

    let agent = Agent::start_on(address, &["--state-dir", dir]);
    let listed = get(agent.address, &format!("/api/results?target={target}"));
    assert_eq!(listed.status, 200, "{}", listed.body);
    let listing: Value = serde_json::from_str(&listed.body).unwrap();
    let results = listing["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "only that target's: {listing}");
    assert_eq!(
        (results[0]["cause"].as_str(), results[0]["source"].as_str()),
        (Some("port_closed"), Some("websocket"))
    );
    assert_eq!(listing["unstored"], 0);
    assert_eq!(
        serde_json::from_str::<Value>(&get(agent.address, "/api/results").body).unwrap()["results"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let id = results[0]["id"].as_str().unwrap();
    let one: Value =
        serde_json::from_str(&get(agent.address, &format!("/api/results/{id}")).body).unwrap();
    assert_eq!(one["report"]["verdict"]["cause"], "port_closed", "the whole report: {one}");
    assert_eq!(get(agent.address, "/api/results/0000000000").status, 404);
    assert_eq!(get(agent.address, "/api/results?since=1h").status, 200);
    assert_eq!(
        get(agent.address, "/api/results?since=2099-01-01T00:00:00Z")
            .body
            .matches("\"id\"")
            .count(),
        0
    );
    assert_eq!(get(agent.address, "/api/results?since=yesterday").status, 400);
    assert_eq!(get(agent.address, "/api/results?limit=0").status, 400);

    let csv = get(agent.address, &format!("/api/results.csv?target={target}"));
    assert!(csv.head.contains("content-type: text/csv"), "{}", csv.head);
    let rows: Vec<Vec<&str>> =
        csv.body.split("\r\n").filter(|l| !l.is_empty()).map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 2, "a header and one result: {}", csv.body);
    assert_eq!(rows[0][..4], ["id", "at", "finished_at", "kind"]);
    assert_eq!(rows[1].len(), rows[0].len(), "every row has the header's fields");
    let column = |name: &str| rows[0].iter().position(|h| *h == name).unwrap();
    assert_eq!(
        (rows[1][column("id")], rows[1][column("target")], rows[1][column("cause")]),
        (id, target.as_str(), "port_closed")
    );

    let (code, out, err) = cli(&["history", &target, "--via", &agent.ws_url(), "--csv"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, csv.body, "the CLI through the API prints the same CSV");
}

#[test]
fn the_api_needs_a_client_token_on_an_agent_with_tokens_and_refuses_other_sites_on_one_without() {
    let open = Agent::start();
    assert_eq!(get(open.address, "/api/results").status, 200);
    let cross_site = request(open.address, "GET", "/api/results", &["Sec-Fetch-Site: cross-site"]);
    assert_eq!(cross_site.status, 403, "{}", cross_site.body);
    let foreign = request(open.address, "GET", "/api/results", &["Origin: https://evil.example"]);
    assert_eq!(foreign.status, 403);
    let own_page = request(open.address, "GET", "/api/results", &["Sec-Fetch-Site: same-origin"]);
    assert_eq!(own_page.status, 200);

    let directory = tempfile::tempdir().unwrap();
    let text = format!("team:{CLIENT_SECRET}\napp1:{AGENT_SECRET}:agent\n");
    let tokens = write_token_file(&directory.path().join("tokens"), &text);
    let guarded = Agent::start_with(&["--token-file", &tokens]);
    let target = format!("127.0.0.1:{}", closed_port());
    check_through(&guarded, Some(CLIENT_SECRET), &target);
    for path in ["/api/results", "/api/results.csv", "/api/results/0000000000"] {
        assert_eq!(get(guarded.address, path).status, 401, "{path} without a token");
        let agent_token = format!("Authorization: Bearer {AGENT_SECRET}");
        assert_eq!(request(guarded.address, "GET", path, &[&agent_token]).status, 403, "{path}");
    }
    let client_token = format!("Authorization: Bearer {CLIENT_SECRET}");
    let listed = request(guarded.address, "GET", "/api/results", &[&client_token]);
    assert_eq!(listed.status, 200);
    let listing: Value = serde_json::from_str(&listed.body).unwrap();
    assert_eq!(listing["results"][0]["asked_by"], "team", "who asked is stored: {listing}");

    let token_file =
        write_token_file(&directory.path().join("client"), &format!("team:{CLIENT_SECRET}\n"));
    let (code, out, err) =
        cli(&["history", "--via", &guarded.ws_url(), "--token-file", &token_file]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&target) && out.contains("port_closed"), "{out}");
    let (code, _, err) = cli(&["history", "--via", &guarded.ws_url()]);
    assert_eq!(code, 2, "refused without a token: {err}");
}

#[test]
fn retention_forgets_results_older_than_keep() {
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().to_str().unwrap();
    let target = format!("127.0.0.1:{}", closed_port());
    for _ in 0..3 {
        assert_eq!(cli(&["check", &target, "--state-dir", dir]).0, 1);
    }
    assert_eq!(stored(state.path(), &target).len(), 3);
    std::thread::sleep(Duration::from_millis(1_100));
    assert_eq!(cli(&["check", &target, "--state-dir", dir, "--keep", "1s"]).0, 1);
    let left = stored(state.path(), &target);
    assert_eq!(left.len(), 1, "only the newest is kept: {left:?}");
    assert_eq!(left[0]["source"], "cli");
    let (code, _, err) = cli(&["check", &target, "--state-dir", dir, "--keep", "1 day"]);
    assert_eq!(code, 2, "a duration is a number and a unit: {err}");
    assert!(err.contains("30d"), "{err}");
}

#[test]
fn a_broken_history_file_is_named_and_the_agent_still_serves_checks() {
    let state = tempfile::tempdir().unwrap();
    std::fs::write(state.path().join("history.sqlite"), vec![b'x'; 8192]).unwrap();
    let log = state.path().join("agent.log");
    let agent = Agent::start_logged(&["--state-dir", state.path().to_str().unwrap()], &log);
    let report = check_through(&agent, None, &format!("127.0.0.1:{}", closed_port()));
    assert_eq!(report.verdict.unwrap().cause.as_str(), "port_closed", "checks still run");
    let refused = get(agent.address, "/api/results");
    assert_eq!(refused.status, 503);
    assert!(refused.body.contains("is not a SQLite database"), "{}", refused.body);
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(
        said.contains("results will not be stored") && said.contains("history.sqlite"),
        "{said}"
    );

    let target = format!("127.0.0.1:{}", closed_port());
    let (code, _, err) = cli(&["check", &target, "--state-dir", state.path().to_str().unwrap()]);
    assert_eq!(code, 1, "the check's own outcome stands");
    assert!(
        err.contains("not stored in the history") && err.contains("is not a SQLite database"),
        "{err}"
    );
}

#[test]
fn two_agents_on_one_history_file_store_every_result() {
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().to_str().unwrap();
    let mut agents =
        [Agent::start_with(&["--state-dir", dir]), Agent::start_with(&["--state-dir", dir])];
    let target = format!("127.0.0.1:{}", closed_port());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let checks = agents.iter().map(|agent| {
            let target = target.clone();
            async move {
                let mut client = Client::connect(agent).await;
                for id in 0..20 {
                    client.check(id, CheckRequest::new(target.clone())).await;
                }
            }
        });
        futures::future::join_all(checks).await;
    });
    for agent in &agents {
        agent.terminate();
    }
    for agent in &mut agents {
        agent.wait_exit(Duration::from_secs(10)).expect("the agent stops, its history written");
    }
    assert_eq!(stored(state.path(), &target).len(), 40, "both agents' results, none lost");
}

#[test]
fn a_watch_through_an_agent_runs_there_and_the_agent_stores_its_rounds() {
    let agent = Agent::start();
    let target = format!("127.0.0.1:{}", closed_port());
    let local = tempfile::tempdir().unwrap();
    let dir = local.path().to_str().unwrap();
    let via = ["--via", &agent.ws_url(), "--from", "local", "--state-dir", dir];
    let (code, out, err) = cli(&[
        &["watch", &target, "--every", "100ms", "--count", "3", "--json"][..],
        &via,
    ]
    .concat());
    assert_eq!(code, 1, "{err}");
    let lines: Vec<Value> = out.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(lines.len(), 4, "three rounds and the summary: {out}");
    assert!(out.starts_with("{\"watch\":"), "the round first, then its report");
    assert_eq!(lines[2]["report"]["verdict"]["cause"], "port_closed");
    let listed: Value =
        serde_json::from_str(&get(agent.address, &format!("/api/results?target={target}")).body)
            .unwrap();
    let rounds = listed["results"].as_array().unwrap();
    assert!(rounds.len() >= 3, "every round, and the first one's diagnosis: {listed}");
    assert!(rounds.iter().all(|r| r["source"] == "websocket" && r["vantage"] == "local"));
    assert!(!local.path().join("history.sqlite").exists(), "the agent stores them, not the CLI");
}
