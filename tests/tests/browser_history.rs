//! The page's History view, its links and its watches in a real browser: a check the test ran
//! is listed in History and reopens read-only; "Watch this" on its card makes a watch whose
//! timeline fills as rounds arrive, a listener the test owns opened and closed so changes
//! appear, and a change clicked opens the diagnosis stored at that moment; its `/#/r/ID` link
//! opens the same stored card in a fresh browser profile (a new session, at phone width); a
//! `/#/check?target=…` link fills the form and runs nothing until Enter is pressed. Every
//! target is on loopback; one agent for the whole file's story, to keep its wall time short.

use std::net::TcpListener;
use std::time::Duration;

use fantoccini::{Client, Locator};
use serde_json::Value;
use whyrefused_tests::browser::{ENTER, wait_for};
use whyrefused_tests::scrape::get;
use whyrefused_tests::{Agent, Browser, closed_port};

const PATIENCE: Duration = Duration::from_secs(15);

/// How long a link that must not run is given to run anyway, before the test looks.
const WOULD_HAVE_RUN: Duration = Duration::from_secs(2);

/// How many results the agent's history holds for `target` (its API, not the page).
fn stored_count(agent: &Agent, target: &str) -> usize {
    let answer = get(agent.address, &format!("/api/results?limit=1000&target={target}"));
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
    let stored =
        format!("#stored-result .stored[data-result='{id}'] .check[data-cause='port_closed']");
    wait_for(client, &stored, PATIENCE).await;
    for runs in [".scan-nearby", ".trace-path", ".watch-this", ".cancel"] {
        let css = format!("#stored-result {runs}");
        assert!(!present(client, &css).await, "a read-only card offers no {runs}");
    }
    desk.screenshot("browser-result-link").await;

    // "Watch this" on the card: every second, from the agent, page or no page.
    client.find(Locator::Css("#mode-check")).await.unwrap().click().await.unwrap();
    let watch_this = wait_for(client, "#results .check .watch-this", PATIENCE).await;
    watch_this.click().await.unwrap();
    let every = wait_for(client, "#results .watch-form .watch-every", PATIENCE).await;
    every.clear().await.unwrap();
    every.send_keys("1s").await.unwrap();
    client.find(Locator::Css("#results .watch-start")).await.unwrap().click().await.unwrap();
    let made = wait_for(client, "#results .watch-made[data-watch]", PATIENCE).await;
    let watch = made.attr("data-watch").await.unwrap().expect("the watch's id");

    // Its timeline fills as rounds arrive: the port opens, then closes again.
    client.find(Locator::Css("#mode-watches")).await.unwrap().click().await.unwrap();
    let panel = format!(".watch[data-watch='{watch}'][data-state='running']");
    wait_for(client, &format!("{panel} .watch-timeline[data-changes='0']"), PATIENCE).await;
    let listener = TcpListener::bind(("127.0.0.1", closed)).expect("the closed port is free");
    wait_for(client, &format!("{panel} .watch-timeline[data-changes='1']"), PATIENCE).await;
    drop(listener);
    wait_for(client, &format!("{panel} .watch-timeline[data-changes='2']"), PATIENCE).await;
    wait_for(client, &format!("{panel} .band[data-cause='reachable']"), PATIENCE).await;
    desk.screenshot("browser-watch-timeline").await;

    // The first change, clicked on the timeline, opens the diagnosis stored at that moment.
    let mark = wait_for(client, &format!("{panel} a.change-mark"), PATIENCE).await;
    mark.click().await.unwrap();
    let diagnosis = "#stored-result .stored .check[data-cause='reachable']";
    wait_for(client, diagnosis, PATIENCE).await;
    let stored_from = client.find(Locator::Css("#stored-result .stored-meta")).await.unwrap();
    assert!(stored_from.text().await.unwrap().contains(&format!("a round of watch {watch}")));
    client
        .find(Locator::Css(&format!("{panel} .watch-stop")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(client, &format!(".watch[data-watch='{watch}'][data-state='stopped']"), PATIENCE)
        .await;
    // History holds the watch's rounds too, each opening its own card.
    client.find(Locator::Css("#mode-history")).await.unwrap().click().await.unwrap();
    wait_for(client, ".history-row[data-cause='reachable']", PATIENCE).await;
    desk.screenshot("browser-history-watch").await;
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
    client.find(Locator::Css("#mode-watches")).await.unwrap().click().await.unwrap();
    wait_for(
        client,
        &format!(".watch[data-watch='{watch}'] .watch-timeline[data-changes='2']"),
        PATIENCE,
    )
    .await;
    phone.screenshot("browser-watch-timeline-phone").await;

    // A check link fills the form and focuses it, and runs nothing until Enter.
    let unchecked = closed_port();
    let target = format!("127.0.0.1:{unchecked}");
    let before = stored_count(&agent, &target);
    assert_eq!(before, 0);
    let link = format!("{}#/check?target=127.0.0.1%3A{unchecked}", agent.url());
    client.goto("about:blank").await.unwrap();
    open_page(client, &link).await;
    let focused = client
        .execute("return [document.activeElement.id, document.activeElement.value]", vec![])
        .await
        .unwrap();
    assert_eq!(focused, serde_json::json!(["target", target]), "filled and focused");
    tokio::time::sleep(WOULD_HAVE_RUN).await;
    assert_eq!(stored_count(&agent, &target), before, "the link made the agent connect nowhere");
    assert!(!present(client, ".check").await, "no card: nothing ran");
    let input = client.find(Locator::Css("#target")).await.unwrap();
    input.send_keys(ENTER).await.unwrap();
    wait_for(client, ".check[data-cause='port_closed'][data-done='true']", PATIENCE).await;
    let mut stored = 0;
    for _ in 0..50 {
        stored = stored_count(&agent, &target);
        if stored == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(stored, 1, "Enter ran it, and it was stored: the count above could move");
}
