//! The page of an agent that requires a token, end to end in headless Chromium: it asks for the
//! token, says so when the agent refuses one, runs checks once given the right one, and takes the
//! token from the URL fragment (then removes it from the address bar). Targets are on loopback.

use std::time::Duration;

use fantoccini::{Client, Locator};
use whyrefused_tests::browser::{ENTER, fill, wait_for};
use whyrefused_tests::{Agent, Browser, closed_port, write_token_file};

const PATIENCE: Duration = Duration::from_secs(20);
const TOKEN: &str = "page-0123456789abcdef";

/// An agent whose token file holds [`TOKEN`], and the directory holding the file.
fn agent_with_token() -> (Agent, tempfile::TempDir) {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = write_token_file(&directory.path().join("tokens"), &format!("page:{TOKEN}\n"));
    (Agent::start_with(&["--token-file", &path]), directory)
}

/// A check of a closed loopback port runs to its verdict.
async fn a_check_runs(client: &Client) {
    let port = closed_port();
    fill(client, "#target", &format!("127.0.0.1:{port}{ENTER}")).await;
    let card = wait_for(client, ".check[data-done='true']", PATIENCE).await;
    assert_eq!(card.attr("data-cause").await.unwrap().as_deref(), Some("port_closed"));
}

#[tokio::test]
async fn the_page_asks_for_the_token_and_says_when_it_is_refused() {
    let (agent, _directory) = agent_with_token();
    let browser = Browser::start(1200, 900).await;
    let client = &browser.client;
    client.goto(&agent.url()).await.expect("the page loads");
    wait_for(client, "#connection-status[data-state='needs-token']", PATIENCE).await;
    let diagnose = client.find(Locator::Css("#diagnose")).await.unwrap();
    assert!(diagnose.attr("disabled").await.unwrap().is_some(), "no check without the token");

    fill(client, "#token", &format!("page-wrong-wrong-wrong{ENTER}")).await;
    let problem = wait_for(client, "#token-problem", PATIENCE).await.text().await.unwrap();
    assert!(problem.contains("refused that token"), "{problem}");
    browser.screenshot("browser-token-refused").await;

    fill(client, "#token", &format!("{TOKEN}{ENTER}")).await;
    wait_for(client, "#connection-status[data-state='connected']", PATIENCE).await;
    assert!(client.find(Locator::Css("#token-form")).await.is_err(), "the prompt is gone");
    a_check_runs(client).await;
}

#[tokio::test]
async fn a_token_in_the_url_fragment_connects_and_leaves_the_address_bar() {
    let (agent, _directory) = agent_with_token();
    let browser = Browser::start(1200, 900).await;
    let client = &browser.client;
    client.goto(&format!("{}#token={TOKEN}", agent.url())).await.expect("the page loads");
    wait_for(client, "#connection-status[data-state='connected']", PATIENCE).await;
    let address = client.current_url().await.unwrap().to_string();
    assert!(!address.contains(TOKEN), "the token left the address bar: {address}");
    a_check_runs(client).await;
}
