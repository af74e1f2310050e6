//! End to end in a real browser: headless Chromium opens the page the agent serves, types a
//! loopback target, presses Enter, and sees the verdict and the address rows arrive.

use std::time::Duration;

use fantoccini::{Client, Locator};
use whyrefused_tests::{Agent, Browser, closed_port};

const PATIENCE: Duration = Duration::from_secs(15);

async fn wait_for(client: &Client, css: &str) -> fantoccini::elements::Element {
    client
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} never appeared: {e}"))
}

async fn diagnose(client: &Client, target: &str) {
    let input = client.find(Locator::Css("#target")).await.expect("the target input");
    input.clear().await.expect("the input clears");
    input.send_keys(&format!("{target}\u{E007}")).await.expect("typing works"); // \u{E007}: Enter
}

#[tokio::test]
async fn typing_a_target_and_pressing_enter_shows_the_verdict_and_address_rows() {
    let agent = Agent::start();
    let browser = Browser::start(1200, 900).await;
    let client = &browser.client;
    client.goto(&agent.url()).await.expect("the page loads");
    wait_for(client, "#connection-status[data-state='connected']").await;

    let closed = closed_port();
    diagnose(client, &format!("127.0.0.1:{closed}")).await;
    let card = wait_for(client, ".check[data-done='true']").await;
    assert_eq!(card.attr("data-cause").await.unwrap().as_deref(), Some("port_closed"));
    let verdict =
        card.find(Locator::Css(".verdict")).await.expect("a verdict").text().await.unwrap();
    assert!(verdict.contains(&closed.to_string()), "the verdict names the port: {verdict}");
    let row =
        card.find(Locator::Css("tr.attempt-row[data-address='127.0.0.1']")).await.expect("a row");
    assert_eq!(row.attr("data-state").await.unwrap().as_deref(), Some("refused"));

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let open = listener.local_addr().unwrap().port();
    diagnose(client, &format!("127.0.0.1:{open}")).await;
    wait_for(client, ".check[data-cause='reachable'][data-done='true']").await;
    let cards = client.find_all(Locator::Css(".check")).await.unwrap();
    assert_eq!(cards.len(), 2, "earlier checks stay visible");
    assert_eq!(
        cards[0].attr("data-cause").await.unwrap().as_deref(),
        Some("reachable"),
        "the newest check comes first"
    );
    browser.screenshot("browser-check").await;
}

#[tokio::test]
async fn an_invalid_target_is_explained_on_the_page() {
    let agent = Agent::start();
    let browser = Browser::start(420, 900).await;
    let client = &browser.client;
    client.goto(&agent.url()).await.expect("the page loads");
    wait_for(client, "#connection-status[data-state='connected']").await;

    diagnose(client, "db.internal:70000").await;
    let error = wait_for(client, ".check .check-error").await;
    let text = error.text().await.unwrap();
    assert!(text.contains("1 to 65535"), "{text}");
    browser.screenshot("browser-invalid-target-narrow").await;
}
