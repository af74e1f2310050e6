//! Port scans from the page, end to end in headless Chromium: switching the form to "Scan ports"
//! by keyboard, a full-range scan of loopback that finds the test's own listeners, the agent's
//! error for a bad port spec shown on the scan's card, and "Scan nearby ports" on a closed port's
//! check. Every target is on loopback.

use std::net::TcpListener;
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, Locator};
use serde_json::json;
use whyrefused_tests::browser::{ENTER, TAB, fill, wait_for};
use whyrefused_tests::{Agent, Browser, HangingPort, closed_port};

/// Long enough for 65,535 loopback ports on a loaded two-core machine.
const PATIENCE: Duration = Duration::from_secs(120);

async fn open_page(width: u32, height: u32) -> (Agent, Browser) {
    let agent = Agent::start();
    let browser = Browser::start(width, height).await;
    browser.client.goto(&agent.url()).await.expect("the page loads");
    wait_for(&browser.client, "#connection-status[data-state='connected']", PATIENCE).await;
    (agent, browser)
}

/// Switches the form to "Scan ports" by keyboard and starts a scan of `host` and `ports`.
async fn scan(client: &Client, host: &str, ports: &str) {
    let switch = client.find(Locator::Css("#mode-scan")).await.expect("the mode switch");
    switch.send_keys(ENTER).await.expect("Enter presses the focused button");
    wait_for(client, "#mode-scan[aria-pressed='true']", PATIENCE).await;
    fill(client, "#scan-target", host).await;
    fill(client, "#ports", &format!("{ports}{ENTER}")).await;
}

/// `(data-state, data-count)` of every count on a scan's card.
async fn counts(card: &Element) -> Vec<(String, u64)> {
    let mut counts = Vec::new();
    for item in card.find_all(Locator::Css(".scan-counts li")).await.expect("the counts") {
        let state = item.attr("data-state").await.unwrap().expect("a state");
        let count = item.attr("data-count").await.unwrap().expect("a count");
        counts.push((state, count.parse().expect("a number")));
    }
    counts
}

#[tokio::test]
async fn a_full_range_scan_of_loopback_finds_the_tests_listeners_and_maps_every_port() {
    let (_agent, browser) = open_page(1200, 1400).await;
    let client = &browser.client;
    let listeners: Vec<TcpListener> =
        (0..3).map(|_| TcpListener::bind("127.0.0.1:0").expect("bind")).collect();
    let open: Vec<u16> = listeners.iter().map(|l| l.local_addr().unwrap().port()).collect();

    scan(client, "127.0.0.1", "1-65535").await;
    wait_for(client, ".scan[data-phase='running'] .scan-progress", PATIENCE).await;
    let card = wait_for(client, ".scan[data-done='true']", PATIENCE).await;
    assert_eq!(card.attr("data-phase").await.unwrap().as_deref(), Some("completed"));

    let counts = counts(&card).await;
    let total: u64 = counts.iter().map(|(_, n)| n).sum();
    assert_eq!(total, 65_535, "every port is counted in one state: {counts:?}");
    assert!(counts.iter().all(|(state, _)| state != "pending"), "{counts:?}");
    let opened = counts.iter().find(|(state, _)| state == "open").map(|(_, n)| *n);
    assert!(opened >= Some(3), "the three listeners at least: {counts:?}");

    let progress = card.find(Locator::Css(".scan-progress")).await.expect("the progress");
    assert_eq!(progress.attr("data-complete").await.unwrap().as_deref(), Some("true"));
    let text = progress.text().await.unwrap();
    assert!(text.starts_with("65,535 / 65,535 ports · in "), "{text}");
    assert!(text.ends_with(" ports/s"), "{text}");

    for port in &open {
        let row = card
            .find(Locator::Css(&format!(".port-list tr[data-port='{port}']")))
            .await
            .unwrap_or_else(|_| panic!("port {port} is listed"));
        assert_eq!(row.attr("data-state").await.unwrap().as_deref(), Some("open"), "{port}");
        // This browser is on the agent's host: the process behind the port is named.
        let owner = row.find(Locator::Css(".port-owner")).await.expect("the port's owner");
        let text = owner.text().await.unwrap();
        let expected = format!("listening on 127.0.0.1:{port}: pid {}", std::process::id());
        assert!(text.contains(&expected), "{text}");
    }

    // 256 cells of 256 ports (the last 255): the cell of each listener is open, and no cell is
    // left unscanned.
    let cells = client
        .execute(
            "return [...document.querySelectorAll(\
             '.scan .port-map .port-grid[data-address=\"127.0.0.1\"] .cell')]\
             .map(cell => [cell.dataset.tone, cell.title])",
            vec![],
        )
        .await
        .expect("the cells");
    let cells: Vec<(String, String)> = serde_json::from_value(cells).expect("pairs");
    assert_eq!(cells.len(), 256);
    assert!(cells.iter().all(|(tone, _)| tone != "pending"), "every cell scanned");
    for port in &open {
        let (tone, title) = &cells[usize::from(port - 1) / 256];
        assert_eq!(tone, "open", "port {port}: {title}");
        assert!(title.contains(" open"), "{title}");
    }
    assert_eq!(cells[0].1.split(':').next(), Some("ports 1-256"));
    browser.screenshot("browser-scan-full-range").await;
}

#[tokio::test]
async fn a_bad_port_spec_shows_the_agents_error_on_the_scans_card() {
    let (_agent, browser) = open_page(420, 900).await;
    let client = &browser.client;

    scan(client, "127.0.0.1", "0-10").await;
    let card = wait_for(client, ".scan[data-done='true']", PATIENCE).await;
    assert_eq!(card.attr("data-phase").await.unwrap().as_deref(), Some("failed"));
    let error = card.find(Locator::Css(".check-error")).await.expect("the error").text().await;
    let error = error.unwrap();
    assert!(error.starts_with("invalid_ports "), "{error}");
    assert!(error.contains("1 to 65535"), "{error}");
    assert!(card.find(Locator::Css(".port-map")).await.is_err(), "nothing was scanned");
    let widths = client
        .execute("return [window.innerWidth, document.documentElement.scrollWidth]", vec![])
        .await
        .expect("the page's width");
    assert_eq!(widths, json!([420, 420]), "nothing wider than the screen");
    browser.screenshot("browser-scan-invalid-ports-narrow").await;
}

#[tokio::test]
async fn a_closed_ports_check_offers_a_scan_of_the_ports_around_it() {
    let (_agent, browser) = open_page(420, 1600).await;
    let client = &browser.client;
    let closed = closed_port();

    fill(client, "#target", &format!("127.0.0.1:{closed}{ENTER}")).await;
    let check =
        wait_for(client, ".check[data-cause='port_closed'][data-done='true']", PATIENCE).await;
    let button = check.find(Locator::Css("button.scan-nearby")).await.expect("the offer");
    client
        .execute("document.querySelector('button.scan-nearby').scrollIntoView()", vec![])
        .await
        .expect("the offer scrolls into view");
    browser.screenshot("browser-scan-nearby-offer-narrow").await;
    button.send_keys(ENTER).await.expect("Enter presses the focused button");

    let card = wait_for(client, ".scan[data-done='true']", PATIENCE).await;
    assert_eq!(card.attr("data-phase").await.unwrap().as_deref(), Some("completed"));
    let title = card.find(Locator::Css(".check-title")).await.unwrap().text().await.unwrap();
    let (low, high) = (closed.saturating_sub(100).max(1), closed.saturating_add(100));
    assert_eq!(title, format!("Scan 127.0.0.1 ports {low}-{high},top100"));
    let counts = counts(&card).await;
    let closed_count = counts.iter().find(|(state, _)| state == "closed").map(|(_, n)| *n);
    assert!(closed_count >= Some(150), "the asked port and most around it: {counts:?}");
    let cards = client.find_all(Locator::Css("#results > article")).await.unwrap();
    assert_eq!(cards[0].attr("class").await.unwrap().as_deref(), Some("scan scan--completed"));
    assert!(cards[1].attr("class").await.unwrap().unwrap().starts_with("check"));
    let widths = client
        .execute("return [window.innerWidth, document.documentElement.scrollWidth]", vec![])
        .await
        .expect("the page's width");
    assert_eq!(widths, json!([420, 420]), "nothing wider than the screen");
    browser.screenshot("browser-scan-nearby-narrow").await;
}

#[tokio::test]
async fn open_and_filtered_ports_read_well_at_phone_width() {
    let (_agent, browser) = open_page(420, 1800).await;
    let client = &browser.client;
    let listeners: Vec<TcpListener> =
        (0..3).map(|_| TcpListener::bind("127.0.0.1:0").expect("bind")).collect();
    let open: Vec<u16> = listeners.iter().map(|l| l.local_addr().unwrap().port()).collect();
    let hanging: Vec<HangingPort> = (0..2).map(|_| HangingPort::new()).collect();
    let silent: Vec<u16> = hanging.iter().map(|h| h.address.port()).collect();
    let extra: Vec<String> = open.iter().chain(&silent).map(u16::to_string).collect();

    // By keyboard alone: the ports, Tab to the timeout, Tab to the retries, Enter.
    let ports = format!("1-1000,{}", extra.join(","));
    scan(client, "127.0.0.1", &format!("{ports}{TAB}300{TAB}1")).await;
    let card = wait_for(client, ".scan[data-done='true']", PATIENCE).await;
    assert_eq!(card.attr("data-phase").await.unwrap().as_deref(), Some("completed"));
    for port in &open {
        let css = format!(".port-list tr[data-port='{port}'][data-state='open']");
        card.find(Locator::Css(&css)).await.unwrap_or_else(|_| panic!("{port} is listed open"));
    }
    for port in &silent {
        let css = format!(".port-list tr[data-port='{port}'][data-state='filtered'] td.tries");
        let tries = card.find(Locator::Css(&css)).await.unwrap_or_else(|_| panic!("{port}"));
        assert_eq!(tries.text().await.unwrap(), "2", "tried again once: {port}");
    }
    let counts = counts(&card).await;
    let filtered = counts.iter().find(|(state, _)| state == "filtered").map(|(_, n)| *n);
    assert!(filtered >= Some(2), "{counts:?}");
    let titles = client
        .execute(
            "return [...document.querySelectorAll('.scan .port-grid .cell')].map(c => c.title)",
            vec![],
        )
        .await
        .expect("the cells");
    let titles: Vec<String> = serde_json::from_value(titles).expect("strings");
    assert_eq!(titles.len(), 256, "1,005 ports over 256 cells");
    // The listeners and the silent ports come last in the list and share the last cells, where
    // open outranks filtered in the colour; the cells' descriptions still count both.
    let tail = titles[253..].join(" / ");
    assert!(tail.contains(" open") && tail.contains(" filtered"), "{tail}");
    let widths = client
        .execute("return [window.innerWidth, document.documentElement.scrollWidth]", vec![])
        .await
        .expect("the page's width");
    assert_eq!(widths, json!([420, 420]), "nothing wider than the screen");
    client
        .execute("document.querySelector('.scan').scrollIntoView()", vec![])
        .await
        .expect("the card scrolls into view");
    browser.screenshot("browser-scan-narrow").await;
}

#[tokio::test]
async fn cancel_stops_a_running_scan_and_keeps_what_it_found() {
    let (_agent, browser) = open_page(1200, 900).await;
    let client = &browser.client;
    let hanging: Vec<HangingPort> = (0..5).map(|_| HangingPort::new()).collect();
    let ports: Vec<String> = hanging.iter().map(|h| h.address.port().to_string()).collect();
    let closed = closed_port();

    // The silent ports hold the scan for 30 s; the closed one is reported at once.
    let ports = format!("{closed},{}", ports.join(","));
    scan(client, "127.0.0.1", &format!("{ports}{TAB}30000{TAB}0")).await;
    let card = wait_for(client, ".scan[data-phase='running'][aria-busy='true']", PATIENCE).await;
    wait_for(client, ".scan .scan-counts [data-state='closed'][data-count='1']", PATIENCE).await;
    let cancel = card.find(Locator::Css("button.cancel")).await.expect("a Cancel button");
    cancel.send_keys(ENTER).await.expect("Enter presses the focused button");

    let card = client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(".scan[data-done='true']"))
        .await
        .expect("the scan ends well before its 30 s timeout");
    assert_eq!(card.attr("data-phase").await.unwrap().as_deref(), Some("cancelled"));
    assert_eq!(card.attr("aria-busy").await.unwrap(), None);
    let note = card.find(Locator::Css(".outcome--cancelled")).await.expect("a note");
    assert!(note.text().await.unwrap().starts_with("Cancelled"));
    let counts = counts(&card).await;
    assert!(counts.contains(&("closed".to_owned(), 1)), "what was found stays: {counts:?}");
    assert!(card.find(Locator::Css("button.cancel")).await.is_err(), "nothing left to cancel");
}
