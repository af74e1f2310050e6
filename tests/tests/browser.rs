//! End to end in a real browser: headless Chromium opens the page the agent serves, types a
//! loopback target, presses Enter, and sees the verdict, its evidence and suggestions, the
//! address rows, the phase waterfall, the findings and the rounds of a retried check arrive.
//! Every target is on loopback.

use std::time::Duration;

use fantoccini::{Client, Locator};
use whyrefused_tests::browser::{ENTER, TAB, fill, wait_for};
use whyrefused_tests::{Agent, Browser, closed_port};

const PATIENCE: Duration = Duration::from_secs(15);

/// The texts of every element matching `css` inside `scope`.
async fn texts(scope: &fantoccini::elements::Element, css: &str) -> Vec<String> {
    let mut texts = Vec::new();
    for element in scope.find_all(Locator::Css(css)).await.expect("a query") {
        texts.push(element.text().await.expect("its text"));
    }
    texts
}

/// A loopback HTTP server that answers every request with `200 OK`, for the test's whole life.
fn http_server() -> u16 {
    whyrefused_tests::http_server(
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
    )
}

/// Runs a check of an HTTP server on loopback and then of a closed port, so the closed port's
/// verdict comes first and the reachable one, with its waterfall, below it. Returns the closed
/// port's card.
async fn open_then_closed(client: &Client) -> (fantoccini::elements::Element, u16) {
    let open = http_server();
    diagnose(client, &format!("http://127.0.0.1:{open}/")).await;
    wait_for(client, ".check[data-cause='reachable'][data-done='true']", PATIENCE).await;
    let closed = closed_port();
    diagnose(client, &format!("127.0.0.1:{closed}")).await;
    let card =
        wait_for(client, ".check[data-cause='port_closed'][data-done='true']", PATIENCE).await;
    (card, closed)
}

async fn diagnose(client: &Client, target: &str) {
    let input = client.find(Locator::Css("#target")).await.expect("the target input");
    input.clear().await.expect("the input clears");
    input.send_keys(&format!("{target}{ENTER}")).await.expect("typing works");
}

#[tokio::test]
async fn typing_a_target_and_pressing_enter_shows_the_verdict_and_address_rows() {
    let agent = Agent::start();
    let browser = Browser::start(1200, 900).await;
    let client = &browser.client;
    client.goto(&agent.url()).await.expect("the page loads");
    wait_for(client, "#connection-status[data-state='connected']", PATIENCE).await;

    let closed = closed_port();
    diagnose(client, &format!("127.0.0.1:{closed}")).await;
    let card = wait_for(client, ".check[data-done='true']", PATIENCE).await;
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
    wait_for(client, ".check[data-cause='reachable'][data-done='true']", PATIENCE).await;
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
async fn a_closed_port_shows_its_evidence_suggestions_and_findings_and_an_open_one_its_phases() {
    let agent = Agent::start();
    let browser = Browser::start(1200, 2080).await;
    let client = &browser.client;
    client.goto(&agent.url()).await.expect("the page loads");
    wait_for(client, "#connection-status[data-state='connected']", PATIENCE).await;

    let (closed_card, closed) = open_then_closed(client).await;
    let evidence = texts(&closed_card, ".verdict .evidence li").await;
    assert!(
        evidence.iter().any(|item| item.contains(&format!("127.0.0.1:{closed}"))
            && item.contains("refused")
            && item.contains(" ms")),
        "the connect is evidence, with its result and time: {evidence:?}"
    );
    let suggestions = texts(&closed_card, ".verdict .suggestions li").await;
    assert!(!suggestions.is_empty(), "a closed port comes with something to try");
    let nearby = texts(&closed_card, ".finding[data-probe='nearby_ports']").await;
    assert!(nearby[0].contains("checked on 127.0.0.1"), "{nearby:?}");
    let listeners = texts(&closed_card, ".finding[data-probe='local_listeners']").await;
    assert!(listeners[0].contains(&format!("listens on port {closed}")), "{listeners:?}");
    assert!(
        closed_card.find(Locator::Css(".waterfall")).await.is_err(),
        "no connection opened, so there are no phases"
    );

    let open_card = wait_for(client, ".check[data-cause='reachable']", PATIENCE).await;
    let phases: Vec<String> = texts(&open_card, ".waterfall .waterfall-row").await;
    assert_eq!(phases.len(), 3, "dns, connect and first byte: {phases:?}");
    assert!(phases[1].starts_with("TCP connect") && phases[1].ends_with(" ms"), "{phases:?}");
    let widths = client
        .execute(
            "return [...document.querySelectorAll('.check[data-cause=reachable] .waterfall-bar')]\
             .map(bar => bar.getBoundingClientRect().width)",
            vec![],
        )
        .await
        .expect("the bars' widths");
    let widths: Vec<f64> = serde_json::from_value(widths).expect("numbers");
    assert!(widths.iter().all(|width| *width >= 2.0), "every bar is visible: {widths:?}");
    let after = texts(&open_card, ".finding[data-probe='after_connect']").await;
    assert!(after[0].contains("200") && after[0].contains("OK"), "{after:?}");
    browser.screenshot("browser-verdict-wide").await;
}

#[tokio::test]
async fn the_verdict_card_reads_well_at_phone_width() {
    let agent = Agent::start();
    let browser = Browser::start(420, 1800).await;
    let client = &browser.client;
    client.goto(&agent.url()).await.expect("the page loads");
    wait_for(client, "#connection-status[data-state='connected']", PATIENCE).await;

    let (card, _) = open_then_closed(client).await;
    let widths = client
        .execute("return [window.innerWidth, document.documentElement.scrollWidth]", vec![])
        .await
        .expect("the page's width");
    assert_eq!(widths, serde_json::json!([420, 420]), "a 420 px screen, nothing wider than it");
    assert!(!texts(&card, ".verdict .evidence li").await.is_empty());
    browser.screenshot("browser-verdict-narrow").await;
    client
        .execute("document.querySelector('.check[data-cause=reachable]').scrollIntoView()", vec![])
        .await
        .expect("the reachable card scrolls into view");
    browser.screenshot("browser-verdict-narrow-reachable").await;
}

#[tokio::test]
async fn retries_show_each_round_and_the_pattern() {
    let agent = Agent::start();
    let browser = Browser::start(1200, 1200).await;
    let client = &browser.client;
    client.goto(&agent.url()).await.expect("the page loads");
    wait_for(client, "#connection-status[data-state='connected']", PATIENCE).await;

    // By keyboard alone: the target, Tab past the timeout to Retries, Tab to Delay, Enter.
    let keys = format!("127.0.0.1:{}{TAB}{TAB}2{TAB}700{ENTER}", closed_port());
    fill(client, "#target", &keys).await;
    let progress = wait_for(client, ".check .rounds .round-progress", PATIENCE).await;
    let progress = progress.text().await.unwrap();
    assert!(progress.starts_with("round ") && progress.ends_with(" of 3"), "{progress}");

    let card = wait_for(client, ".check[data-done='true']", PATIENCE).await;
    let rounds = texts(&card, ".rounds .round").await;
    assert_eq!(rounds.len(), 3, "{rounds:?}");
    assert!(rounds.iter().all(|round| round.contains("Port closed")), "{rounds:?}");
    assert!(rounds[2].starts_with("#3"), "{rounds:?}");
    assert!(card.find(Locator::Css(".round-progress")).await.is_err(), "no progress once done");
    let pattern = card.find(Locator::Css(".verdict .pattern")).await.expect("a pattern");
    assert_eq!(pattern.attr("data-pattern").await.unwrap().as_deref(), Some("persistent"));
    browser.screenshot("browser-retries").await;
}

#[tokio::test]
async fn a_delay_without_retries_is_refused_before_anything_is_sent() {
    let agent = Agent::start();
    let browser = Browser::start(420, 900).await;
    let client = &browser.client;
    client.goto(&agent.url()).await.expect("the page loads");
    wait_for(client, "#connection-status[data-state='connected']", PATIENCE).await;

    fill(client, "#retry-delay", "500").await;
    diagnose(client, "127.0.0.1:9").await;
    let problem = wait_for(client, ".form-error", PATIENCE).await.text().await.unwrap();
    assert!(problem.contains("set Retries to 1 or more"), "{problem}");
    let focused = client
        .execute(
            "const field = document.activeElement;\
             return [field.id, field.getAttribute('aria-invalid'), field.getAttribute('aria-describedby')]",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        focused,
        serde_json::json!(["retry-delay", "true", "retry-delay-help form-error"]),
        "the field to fix is focused, marked, and points at the message"
    );
    assert!(client.find(Locator::Css(".check")).await.is_err(), "no check was sent");
}

#[tokio::test]
async fn copy_as_markdown_puts_the_verdict_on_the_clipboard_or_shows_it_for_copying() {
    let agent = Agent::start();
    let browser = Browser::start(1200, 900).await;
    let client = &browser.client;
    client.goto(&agent.url()).await.expect("the page loads");
    wait_for(client, "#connection-status[data-state='connected']", PATIENCE).await;
    browser.grant("clipboard-read").await;
    browser.grant("clipboard-write").await;

    let closed = closed_port();
    diagnose(client, &format!("127.0.0.1:{closed}")).await;
    let copy = wait_for(client, ".check[data-done='true'] button.copy-markdown", PATIENCE).await;
    copy.send_keys(ENTER).await.expect("Enter presses the focused button");
    wait_for(client, "button.copy-markdown[data-copied='true']", PATIENCE).await;
    let read_back = client
        .execute_async(
            "const done = arguments[arguments.length - 1];\
             navigator.clipboard.readText().then(done, error => done('failed: ' + error));",
            vec![],
        )
        .await
        .expect("the clipboard is read");
    let markdown = read_back.as_str().expect("text").to_owned();
    assert!(markdown.starts_with(&format!("### whyrefused: `127.0.0.1:{closed}`")), "{markdown}");
    assert!(markdown.contains("**Port closed** (`port_closed`)"), "{markdown}");
    assert!(markdown.contains("#### Evidence") && markdown.contains("#### What to try"));
    assert!(markdown.contains(&format!("| `127.0.0.1:{closed}` | IPv4 | refused")), "{markdown}");

    // Without a clipboard API (as on a plain-http origin), the Markdown is shown, selected.
    client
        .execute(
            "Object.defineProperty(Navigator.prototype, 'clipboard', \
             { get: () => undefined, configurable: true })",
            vec![],
        )
        .await
        .expect("the clipboard API is removed");
    client.find(Locator::Css("button.copy-markdown")).await.unwrap().click().await.unwrap();
    let shown = wait_for(client, ".markdown-fallback textarea.markdown-text", PATIENCE).await;
    assert_eq!(shown.prop("value").await.unwrap().as_deref(), Some(markdown.as_str()));
    let focused = client
        .execute("return document.activeElement.classList.contains('markdown-text')", vec![])
        .await
        .unwrap();
    assert_eq!(focused, serde_json::Value::Bool(true), "the text is focused for Ctrl+C");
    browser.screenshot("browser-copy-fallback").await;
}

#[tokio::test]
async fn an_invalid_target_is_explained_on_the_page() {
    let agent = Agent::start();
    let browser = Browser::start(420, 900).await;
    let client = &browser.client;
    client.goto(&agent.url()).await.expect("the page loads");
    wait_for(client, "#connection-status[data-state='connected']", PATIENCE).await;

    diagnose(client, "db.internal:70000").await;
    let error = wait_for(client, ".check .check-error", PATIENCE).await;
    let text = error.text().await.unwrap();
    assert!(text.contains("1 to 65535"), "{text}");
    browser.screenshot("browser-invalid-target-narrow").await;
}
