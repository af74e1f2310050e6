//! The target host's own firewall rule on the page, in headless Chromium: a check of a loopback
//! port that this host's nftables rejects shows a `firewall_reject` card whose finding names the
//! rule (table, chain, position, text). The rule lives in a table of this test's own, for one
//! port of an otherwise unused loopback address (127.77.0.1), and is removed when the test ends.

use std::process::Command;
use std::time::Duration;

use whyrefused_tests::browser::{ENTER, fill, wait_for};
use whyrefused_tests::{Agent, Browser};

const PATIENCE: Duration = Duration::from_secs(30);
const ADDRESS: &str = "127.77.0.1";

/// An nftables table of this test's own, deleted when dropped (even when the test fails).
struct OwnTable(String);

impl OwnTable {
    fn rejecting(port: u16) -> OwnTable {
        let name = format!("whyrefused_test_{}", std::process::id());
        let script = format!(
            "table inet {name} {{\n chain input {{\n  type filter hook input priority 0; policy \
             accept;\n  ip daddr {ADDRESS} tcp dport {port} counter reject with tcp reset\n }}\n}}\n"
        );
        let status = Command::new("nft")
            .args(["-f", "-"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child.stdin.take().expect("stdin").write_all(script.as_bytes())?;
                child.wait()
            })
            .expect("nft runs (the tests run as root, with nftables installed)");
        assert!(status.success(), "nft -f failed");
        OwnTable(name)
    }
}

impl Drop for OwnTable {
    fn drop(&mut self) {
        let _ = Command::new("nft").args(["delete", "table", "inet", &self.0]).status();
    }
}

#[tokio::test]
async fn a_port_rejected_by_this_hosts_rule_shows_the_rule_on_the_page() {
    let port = {
        let probe = std::net::TcpListener::bind((ADDRESS, 0)).expect("127.77.0.1 is loopback");
        probe.local_addr().unwrap().port()
    };
    let table = OwnTable::rejecting(port);
    let agent = Agent::start();
    let browser = Browser::start(1200, 1400).await;
    let client = &browser.client;
    client.goto(&agent.url()).await.expect("the page loads");
    wait_for(client, "#connection-status[data-state='connected']", PATIENCE).await;

    fill(client, "#target", &format!("{ADDRESS}:{port}{ENTER}")).await;
    let card = ".check[data-cause='firewall_reject'][data-done='true']";
    wait_for(client, card, PATIENCE).await;
    let finding =
        wait_for(client, &format!("{card} .finding[data-probe='firewall_rule']"), PATIENCE)
            .await
            .text()
            .await
            .expect("its text");
    let place = format!("inet {} input rule 1", table.0);
    assert!(finding.contains(&format!("is rejected by {place}")), "{finding}");
    assert!(
        finding.contains(&format!(
            "ip daddr {ADDRESS} tcp dport {port} counter reject with tcp reset"
        )),
        "{finding}"
    );
    let summary = wait_for(client, &format!("{card} .verdict-summary"), PATIENCE)
        .await
        .text()
        .await
        .expect("its text");
    assert!(summary.contains(&format!("`{place}`")), "{summary}");
    browser.screenshot("browser-firewall-rule").await;
}
