//! In a real browser: the page's footer names the agent that answers, as `whyrefused --version`
//! does, once the page is connected to it.

use std::process::Command;
use std::time::Duration;

use whyrefused_tests::browser::wait_for;
use whyrefused_tests::{Agent, Browser, agent_binary};

const PATIENCE: Duration = Duration::from_secs(15);

#[tokio::test]
async fn the_footer_names_the_agents_version_commit_and_target_once_connected() {
    let agent = Agent::start();
    let browser = Browser::start(1000, 700).await;
    let client = &browser.client;
    client.goto(&agent.url()).await.expect("the page loads");
    wait_for(client, "#connection-status[data-state='connected']", PATIENCE).await;
    let footer = wait_for(client, "#page-footer", PATIENCE).await.text().await.unwrap();
    browser.screenshot("footer").await;
    // `whyrefused 0.1.0 (commit …, x86_64-unknown-linux-gnu)` as --version prints it.
    let version = Command::new(agent_binary()).arg("--version").output().unwrap();
    let version = String::from_utf8(version.stdout).unwrap();
    let version = version.trim();
    assert!(
        footer.starts_with(&format!("{version} on ")),
        "footer {footer:?}, --version {version:?}"
    );
}
