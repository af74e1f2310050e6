//! Vantage points on the page, end to end in headless Chromium: a hub with two agents joined to
//! it on loopback lists them, the user ticks them (keyboard only), and a check of a loopback port
//! runs from each place, side by side under the cross-vantage verdict.

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, Locator};
use whyrefused_shared::VantageInfo;
use whyrefused_tests::browser::{ENTER, fill, wait_for};
use whyrefused_tests::{Agent, Browser, agent_binary, write_token_file};

const PATIENCE: Duration = Duration::from_secs(20);
const SECRET: &str = "page-hub-0123456789abcdef";

/// A hub with a token file and the agents `a1` and `a2` joined to it, once the hub lists them
/// online (asked with the CLI, as a user would).
struct Hub {
    hub: Agent,
    _agents: [Agent; 2],
    _directory: tempfile::TempDir,
}

impl Hub {
    fn start() -> Hub {
        let directory = tempfile::tempdir().expect("a temporary directory");
        // The hub holds the team's client token and each joining agent's agent token; each
        // agent presents its own, first in its file (and joins under its name).
        let agent_line = |name: &str| format!("{name}:{name}-agent-0123456789abcdef:agent\n");
        let hub_text = format!("team:{SECRET}\n{}{}", agent_line("a1"), agent_line("a2"));
        let path = write_token_file(&directory.path().join("tokens"), &hub_text);
        let tokens = path.as_str();
        let hub = Agent::start_with(&["--token-file", tokens]);
        let url = format!("ws://{}", hub.address);
        // The targets are on this host's loopback, which a joined agent denies by default.
        let join = |name: &str| {
            let own = write_token_file(&directory.path().join(name), &agent_line(name));
            Agent::start_with(&["--token-file", &own, "--join", &url, "--allow-loopback"])
        };
        let agents = [join("a1"), join("a2")];
        let start = Instant::now();
        loop {
            let list = listed(&url, tokens);
            let online: Vec<&str> =
                list.values().filter(|info| info.online).map(|info| info.name.as_str()).collect();
            if online == ["a1", "a2", "local"] {
                break;
            }
            assert!(start.elapsed() < PATIENCE, "a1 and a2 never came online: {list:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
        Hub { hub, _agents: agents, _directory: directory }
    }
}

/// `whyrefused agents --via HUB --token-file F --json`, by name.
fn listed(hub: &str, tokens: &str) -> BTreeMap<String, VantageInfo> {
    let output = Command::new(agent_binary())
        .args(["agents", "--via", hub, "--token-file", tokens, "--json"])
        .output()
        .expect("the CLI runs");
    assert!(output.status.success(), "agents failed: {}", String::from_utf8_lossy(&output.stderr));
    let list: Vec<VantageInfo> = serde_json::from_slice(&output.stdout).expect("JSON");
    list.into_iter().map(|info| (info.name.clone(), info)).collect()
}

/// A loopback port with a listener that takes connections and keeps them open, for the test's
/// whole life.
fn open_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    std::thread::spawn(move || {
        let mut held: Vec<TcpStream> = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    port
}

async fn attr(element: &Element, name: &str) -> Option<String> {
    element.attr(name).await.expect("an attribute")
}

/// Opens the hub's page, ticks a1 and a2 with the keyboard beside `local`, checks `port` and
/// waits for the card's cross-vantage verdict; returns the card.
async fn check_from_three_places(client: &Client, hub: &Agent, port: u16) -> Element {
    client.goto(&format!("{}#token={SECRET}", hub.url())).await.expect("the page loads");
    wait_for(client, "#connection-status[data-state='connected']", PATIENCE).await;
    wait_for(client, "#vantages .vantage[data-name='a1'][data-online='true']", PATIENCE).await;
    wait_for(client, "#vantages .vantage[data-name='a2'][data-online='true']", PATIENCE).await;
    let local = wait_for(client, "input[name='vantage'][value='local']", PATIENCE).await;
    assert_eq!(local.prop("checked").await.unwrap().as_deref(), Some("true"), "local by default");
    for name in ["a1", "a2"] {
        let css = format!("input[name='vantage'][value='{name}']");
        let checkbox = wait_for(client, &css, PATIENCE).await;
        assert_eq!(checkbox.prop("checked").await.unwrap().as_deref(), Some("false"));
        // Space on the focused checkbox, as a keyboard user ticks it.
        checkbox.send_keys(" ").await.expect("typing works");
        assert_eq!(checkbox.prop("checked").await.unwrap().as_deref(), Some("true"), "{name}");
    }
    fill(client, "#target", &format!("127.0.0.1:{port}{ENTER}")).await;
    wait_for(client, ".check[data-done='true'] .cross-verdict[data-cause]", PATIENCE).await;
    client.find(Locator::Css(".check[data-done='true']")).await.expect("the card")
}

#[tokio::test]
async fn a_check_runs_from_every_vantage_point_ticked_side_by_side() {
    let hub = Hub::start();
    let port = open_port();
    let browser = Browser::start(1200, 900).await;
    let client = &browser.client;
    let card = check_from_three_places(client, &hub.hub, port).await;

    let results = card.find_all(Locator::Css(".vantage-result")).await.unwrap();
    let mut seen = Vec::new();
    for result in &results {
        let name = attr(result, "data-vantage").await.unwrap_or_default();
        assert_eq!(attr(result, "data-cause").await.as_deref(), Some("reachable"), "{name}");
        seen.push(name);
    }
    assert_eq!(seen, ["local", "a1", "a2"], "one section per vantage point, in the order chosen");
    for name in ["a1", "a2"] {
        let css = format!(".vantage-result[data-vantage='{name}'][data-cause='reachable']");
        let section = card.find(Locator::Css(&css)).await.expect("its section");
        let heading = section.find(Locator::Css("h3")).await.unwrap().text().await.unwrap();
        assert_eq!(heading, name);
        assert!(section.find(Locator::Css(".verdict")).await.is_ok(), "its own verdict");
    }
    let cross = card.find(Locator::Css(".cross-verdict")).await.unwrap();
    assert_eq!(attr(&cross, "data-cause").await.as_deref(), Some("same"));
    let summary = cross.text().await.unwrap();
    assert!(summary.contains("local, a1, a2"), "{summary}");
    let meta = card.find(Locator::Css(".check-meta")).await.unwrap().text().await.unwrap();
    assert!(meta.contains("from local, a1, a2"), "{meta}");

    // Side by side on a wide screen: the sections share one row.
    let tops = client
        .execute(
            "return [...document.querySelectorAll('.vantage-result')]\
                 .map(e => Math.round(e.getBoundingClientRect().top));",
            vec![],
        )
        .await
        .unwrap();
    let tops: Vec<i64> = serde_json::from_value(tops).unwrap();
    assert!(tops.windows(2).all(|pair| pair[0] == pair[1]), "side by side: {tops:?}");
    browser.screenshot("browser-vantage-1200").await;
    client
        .execute("document.querySelector('.vantage-result').scrollIntoView();", vec![])
        .await
        .unwrap();
    browser.screenshot("browser-vantage-1200-results").await;
}

#[tokio::test]
async fn at_phone_width_the_vantage_points_stack() {
    let hub = Hub::start();
    let port = open_port();
    let browser = Browser::start(420, 900).await;
    let client = &browser.client;
    check_from_three_places(client, &hub.hub, port).await;
    let layout = client
        .execute(
            "return [document.documentElement.scrollWidth, \
                 ...[...document.querySelectorAll('.vantage-result')]\
                 .map(e => Math.round(e.getBoundingClientRect().top))];",
            vec![],
        )
        .await
        .unwrap();
    let layout: Vec<i64> = serde_json::from_value(layout).unwrap();
    assert!(layout[0] <= 420, "nothing wider than the screen: {layout:?}");
    assert!(layout[1..].windows(2).all(|pair| pair[0] < pair[1]), "stacked: {layout:?}");
    client
        .execute("document.querySelector('.cross-verdict').scrollIntoView();", vec![])
        .await
        .unwrap();
    browser.screenshot("browser-vantage-420").await;
}
