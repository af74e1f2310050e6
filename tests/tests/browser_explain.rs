//! The page's "Explain an error" box in a real browser: a Node.js error naming `::1` pasted
//! against a service listening on 127.0.0.1 only lists the place, runs its check, and the card
//! says the family mismatch; a place without a port says what is missing; the pasted text
//! reaches neither the agent's log nor anything but the recognised words. Loopback only.

use std::net::TcpListener;
use std::time::Duration;

use fantoccini::{Client, Locator};
use whyrefused_tests::browser::{fill, wait_for};
use whyrefused_tests::{Agent, Browser};

const PATIENCE: Duration = Duration::from_secs(15);

async fn text(client: &Client, css: &str) -> String {
    wait_for(client, css, PATIENCE).await.text().await.expect("its text")
}

#[tokio::test]
async fn a_pasted_node_error_is_recognised_checked_and_explained_without_logging_the_text() {
    let log = tempfile::NamedTempFile::new().unwrap();
    let agent = Agent::start_logged(&[], log.path());
    let browser = Browser::start(1200, 1400).await;
    let client = &browser.client;
    client.goto(&agent.url()).await.expect("the page loads");
    wait_for(client, "#connection-status[data-state='connected']", PATIENCE).await;

    let service = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = service.local_addr().unwrap().port();
    let pasted = format!(
        "node:net:1555 private-marker-7f3a\nError: connect ECONNREFUSED ::1:{port}\n    at \
         TCPConnectWrap.afterConnect [as oncomplete] (node:net:1555:16)\ngetaddrinfo ENOTFOUND \
         cache"
    );
    client.find(Locator::Css("#mode-explain")).await.unwrap().click().await.unwrap();
    fill(client, "#explain-text", &pasted).await;
    client.find(Locator::Css("#explain")).await.unwrap().click().await.unwrap();

    let places = text(client, ".explain-places").await;
    assert!(places.contains("The text names 2 places:"), "{places}");
    assert!(places.contains(&format!("::1 port {port} (IPv6): Node.js said")), "{places}");
    assert!(places.contains("cache") && places.contains("the port not named"), "{places}");

    let card = ".check[data-cause='loopback_only'][data-done='true']";
    wait_for(client, card, PATIENCE).await;
    let summary = text(client, &format!("{card} .verdict-summary")).await;
    assert!(
        summary.contains(&format!(
            "Node.js connected to ::1 (IPv6), but the service on port {port} listens on \
             127.0.0.1:{port} only (IPv4)"
        )),
        "{summary}"
    );
    let cards = client.find_all(Locator::Css(".check")).await.unwrap();
    assert_eq!(cards.len(), 1, "one place names a target");
    browser.screenshot("browser-explain").await;

    drop(agent);
    let logged = std::fs::read_to_string(log.path()).unwrap();
    assert!(logged.contains("kind=\"check\""), "the check was logged: {logged}");
    assert!(!logged.contains("private-marker-7f3a"), "the pasted text is never logged");
    assert!(!logged.contains("afterConnect"), "nor the recognised words: {logged}");
}
