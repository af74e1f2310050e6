//! The page's History view, its links and its watches in a real browser: a check the test ran
//! is listed in History and reopens read-only; its `/#/r/ID` link opens the same stored card in
//! a fresh browser profile (a new session, at phone width); a `/#/check?target=…` link fills the
//! form and runs nothing until Enter is pressed. Every target is on loopback; one agent for the
//! whole file's story, to keep its wall time short.

use std::time::Duration;

use fantoccini::{Client, Locator};
use serde_json::Value;
use whyrefused_tests::browser::{ENTER, wait_for};
use whyrefused_tests::scrape::get;
use whyrefused_tests::{Agent, Browser, closed_port};

const PATIENCE: Duration = Duration::from_secs(15);

/// How long a link that must not run is given to run anyway, before the test looks.
const WOULD_HAVE_RUN: Duration = Duration::from_secs(2);

/// How many results the agent's history holds (its API, not the page).
fn stored_count(agent: &Agent) -> usize {
    let answer = get(agent.address, "/api/results?limit=1000");
    assert_eq!(answer.status, 200, "{}", answer.body);
    let listing: Value = serde_json::from_str(&answer.body).expect("a listing is JSON");
    listing["results"].as_array().expect("a list").len()
}

async fn open_page(client: &Client, url: &str) {
    client.goto(url).await.expect("the page loads");
    wait_for(client, "#connection-status[data-state='connected']", PATIENCE).await;
}

/// Whether an element matches `css` now.
async fn present(client: &Client, css: &str) -> bool {
    !client.find_all(Locator::Css(css)).await.expect("a query").is_empty()
}

#[tokio::test]
async fn a_check_is_in_history_its_link_opens_read_only_anywhere_and_a_check_link_runs_nothing() {
    let agent = Agent::start();
    let closed = closed_port();
    let target = format!("127.0.0.1:{closed}");

    // A check run on the page: its card learns the stored id and offers the link.
    let desk = Browser::start(1200, 1000).await;
    let client = &desk.client;
    open_page(client, &agent.url()).await;
    let input = client.find(Locator::Css("#target")).await.unwrap();
    input.send_keys(&format!("{target}{ENTER}")).await.unwrap();
    wait_for(client, ".check[data-cause='port_closed'][data-done='true']", PATIENCE).await;
    let copy = wait_for(client, ".check .copy-link[data-link]", PATIENCE).await;
    let fragment = copy.attr("data-link").await.unwrap().expect("the link");
    let id = fragment.strip_prefix("#/r/").expect("a result link").to_string();
    assert!(!fragment.contains("token"), "a link never carries a token: {fragment}");
    assert!(present(client, ".check .watch-this").await, "a finished check offers a watch");

    // History lists it, newest first, and reopens its full card read-only.
    client.find(Locator::Css("#mode-history")).await.unwrap().click().await.unwrap();
    let row = wait_for(client, &format!(".history-row[data-result='{id}']"), PATIENCE).await;
    assert_eq!(row.attr("data-cause").await.unwrap().as_deref(), Some("port_closed"));
    let text = row.text().await.unwrap();
    assert!(text.contains(&target) && text.contains("from local"), "{text}");
    assert!(client.current_url().await.unwrap().as_str().ends_with("#/history"));
    desk.screenshot("browser-history").await;
    row.find(Locator::Css("a")).await.unwrap().click().await.unwrap();
    let stored = format!("#stored-result .stored[data-result='{id}'] .check[data-cause='port_closed']");
    wait_for(client, &stored, PATIENCE).await;
    for runs in [".scan-nearby", ".trace-path", ".watch-this", ".cancel"] {
        let css = format!("#stored-result {runs}");
        assert!(!present(client, &css).await, "a read-only card offers no {runs}");
    }
    desk.screenshot("browser-result-link").await;
    drop(desk);

    // The link in a fresh profile (a new session), on a phone: the same stored card.
    let phone = Browser::start(390, 1400).await;
    let client = &phone.client;
    open_page(client, &format!("{}{fragment}", agent.url())).await;
    wait_for(client, &stored, PATIENCE).await;
    let summary = client.find(Locator::Css("#stored-result .verdict-summary")).await.unwrap();
    assert!(summary.text().await.unwrap().contains(&closed.to_string()));
    let widths = client
        .execute("return [window.innerWidth, document.documentElement.scrollWidth]", vec![])
        .await
        .unwrap();
    assert_eq!(widths, serde_json::json!([390, 390]), "nothing wider than the phone");
    phone.screenshot("browser-result-link-phone").await;
    client.find(Locator::Css("#mode-history")).await.unwrap().click().await.unwrap();
    wait_for(client, &format!(".history-row[data-result='{id}']"), PATIENCE).await;
    phone.screenshot("browser-history-phone").await;

    // A check link fills the form and focuses it, and runs nothing until Enter.
    let before = stored_count(&agent);
    let link = format!("{}#/check?target=127.0.0.1%3A{closed}", agent.url());
    client.goto("about:blank").await.unwrap();
    open_page(client, &link).await;
    let focused = client
        .execute("return [document.activeElement.id, document.activeElement.value]", vec![])
        .await
        .unwrap();
    assert_eq!(focused, serde_json::json!(["target", target]), "filled and focused");
    tokio::time::sleep(WOULD_HAVE_RUN).await;
    assert_eq!(stored_count(&agent), before, "the link made the agent connect to nothing");
    assert!(!present(client, ".check").await, "no card: nothing ran");
    let input = client.find(Locator::Css("#target")).await.unwrap();
    input.send_keys(ENTER).await.unwrap();
    wait_for(client, ".check[data-cause='port_closed'][data-done='true']", PATIENCE).await;
}
