//! The path view, end to end in headless Chromium at phone width: a filtered loopback port's
//! check shows its traced path (hops as an ordered list a screen reader announces, with a
//! sentence saying where the packets go), and "Trace the path" on a closed port's check runs it
//! again with the trace, reaching loopback at hop 1. Every target is on loopback.

use std::time::Duration;

use fantoccini::Locator;
use fantoccini::elements::Element;
use whyrefused_tests::browser::{ENTER, TAB, fill, wait_for};
use whyrefused_tests::{Agent, Browser, HangingPort, closed_port};

const PATIENCE: Duration = Duration::from_secs(60);

async fn texts(scope: &Element, css: &str) -> Vec<String> {
    let mut texts = Vec::new();
    for element in scope.find_all(Locator::Css(css)).await.expect("a query") {
        texts.push(element.text().await.expect("its text"));
    }
    texts
}

async fn attribute(element: &Element, name: &str) -> String {
    element.attr(name).await.expect("an attribute query").unwrap_or_default()
}

#[tokio::test]
async fn a_filtered_checks_card_shows_its_path_and_a_closed_one_offers_the_trace_at_phone_width() {
    let agent = Agent::start();
    let browser = Browser::start(420, 1800).await;
    let client = &browser.client;
    client.goto(&agent.url()).await.expect("the page loads");
    wait_for(client, "#connection-status[data-state='connected']", PATIENCE).await;

    // A port whose SYNs are dropped (a full accept queue, which the agent on this host names):
    // silent, and traced.
    let hanging = HangingPort::new();
    fill(client, "#target", &format!("{}{TAB}1000{ENTER}", hanging.address)).await;
    let card =
        wait_for(client, ".check[data-done='true'][data-cause='backlog_full']", PATIENCE).await;
    let path = card
        .find(Locator::Css(".finding[data-probe='path'] .path-view"))
        .await
        .expect("the path view of the filtered check");
    let chain = path.find(Locator::Css("ol.path-chain")).await.expect("an ordered list of hops");
    let label = attribute(&chain, "aria-label").await;
    assert_eq!(label, format!("Path to 127.0.0.1 port {}", hanging.address.port()));
    let hops = texts(&path, ".path-hop").await;
    assert!(!hops.is_empty(), "at least hop 1");
    assert!(hops[0].contains("no answer") && hops[0].contains("0 of 3 answered"), "{hops:?}");
    let summary = texts(&path, ".path-summary").await;
    assert_eq!(
        summary,
        [
            "No hop answered: the SYNs are lost at the first hop, a router or, on this network, the target itself."
        ],
        "loopback drops the SYN itself: nothing on the way answers"
    );
    let live =
        attribute(&path.find(Locator::Css(".path-summary")).await.unwrap(), "aria-live").await;
    assert_eq!(live, "polite", "screen readers hear the path as it fills in");
    let widths = client
        .execute("return [window.innerWidth, document.documentElement.scrollWidth]", vec![])
        .await
        .expect("the page's width");
    assert_eq!(widths, serde_json::json!([420, 420]), "a 420 px screen, nothing wider than it");
    client
        .execute("document.querySelector(\".finding[data-probe='path']\").scrollIntoView()", vec![])
        .await
        .expect("the path scrolls into view");
    browser.screenshot("browser-path-filtered-narrow").await;

    // A closed port is not traced, but its card offers to; by keyboard, the trace reaches
    // loopback at hop 1 with a reset.
    fill(client, "#target", &format!("127.0.0.1:{}{TAB}{ENTER}", closed_port())).await;
    let closed =
        wait_for(client, ".check[data-done='true'][data-cause='port_closed']", PATIENCE).await;
    assert!(closed.find(Locator::Css(".path-view")).await.is_err(), "no path unless asked");
    let trace = closed.find(Locator::Css("button.trace-path")).await.expect("Trace the path");
    trace.send_keys(ENTER).await.expect("Enter presses the button");
    let traced = wait_for(
        client,
        ".check[data-done='true'][data-cause='port_closed'] .finding[data-probe='path']",
        PATIENCE,
    )
    .await;
    let hop = traced.find(Locator::Css(".path-hop")).await.expect("hop 1");
    assert_eq!(attribute(&hop, "data-reply").await, "reached");
    assert!(hop.text().await.unwrap().contains("127.0.0.1"));
    let summary = texts(&traced, ".path-summary").await;
    assert!(summary[0].starts_with("The SYNs reach 127.0.0.1 in 1 hop"), "{summary:?}");
}
