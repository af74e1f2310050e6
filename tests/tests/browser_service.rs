//! The service's own failures in a real browser: a loopback server answering 503 with a text
//! body gets a `server_error` card showing the status line, the `Server` header and the body's
//! first line; with "Expect status" filled in, a 302 is `unexpected_status`. Every target is
//! on loopback.

use std::time::Duration;

use fantoccini::{Client, Locator};
use whyrefused_tests::browser::{ENTER, fill, wait_for};
use whyrefused_tests::{Agent, Browser, http_server};

const PATIENCE: Duration = Duration::from_secs(15);

async fn text(client: &Client, css: &str) -> String {
    let element = wait_for(client, css, PATIENCE).await;
    element.text().await.expect("its text")
}

#[tokio::test]
async fn a_503_card_shows_the_status_line_the_server_and_the_body_and_expect_status_is_sent() {
    let agent = Agent::start();
    let browser = Browser::start(1200, 1400).await;
    let client = &browser.client;
    client.goto(&agent.url()).await.expect("the page loads");
    wait_for(client, "#connection-status[data-state='connected']", PATIENCE).await;

    let failing = http_server(
        "HTTP/1.1 503 Service Unavailable\r\nServer: shop/2.1\r\nContent-Type: text/plain\r\n\
         Content-Length: 24\r\nConnection: close\r\n\r\ndatabase pool exhausted\n",
    );
    fill(client, "#target", &format!("http://127.0.0.1:{failing}/health{ENTER}")).await;
    let card = ".check[data-cause='server_error'][data-done='true']";
    wait_for(client, card, PATIENCE).await;
    let summary = text(client, &format!("{card} .verdict-summary")).await;
    assert!(summary.contains("the service answered 503 Service Unavailable"), "{summary}");
    let response = text(client, &format!("{card} .http-response[data-status='503']")).await;
    for expected in ["HTTP/1.1 503 Service Unavailable", "Server", "shop/2.1"] {
        assert!(response.contains(expected), "{expected} in {response}");
    }
    let body = text(client, &format!("{card} .http-response .http-body")).await;
    assert_eq!(body, "database pool exhausted");
    browser.screenshot("browser-service-503").await;

    let redirecting = http_server(
        "HTTP/1.1 302 Found\r\nLocation: /login\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    fill(client, "#expect-status", "200,204").await;
    fill(client, "#target", &format!("http://127.0.0.1:{redirecting}/{ENTER}")).await;
    let card = ".check[data-cause='unexpected_status'][data-done='true']";
    wait_for(client, card, PATIENCE).await;
    let expected = text(client, &format!("{card} .http-response")).await;
    assert!(expected.contains("200, 204") && expected.contains("/login"), "{expected}");
    let cards = client.find_all(Locator::Css(".check")).await.unwrap();
    assert_eq!(cards.len(), 2);
    client.set_window_size(500, 1400).await.expect("a narrower window");
    browser.screenshot("browser-service-narrow").await;
}
