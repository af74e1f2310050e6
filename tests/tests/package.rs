//! What a package installs beside the binary, as an operator meets it: the completion scripts
//! load in their shells, the manual renders with `man`, `--version` names the build, and the
//! config file's options reach the agent (the command line winning, an unknown key refused).

use std::process::{Command, Output};

use whyrefused_shared::AgentMessage;
use whyrefused_tests::{Agent, Client, agent_binary, write_token_file};

fn whyrefused(args: &[&str]) -> Output {
    Command::new(agent_binary()).args(args).output().expect("whyrefused runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn each_completion_script_loads_in_its_shell() {
    for (shell, check) in [("bash", "-n"), ("zsh", "-n"), ("fish", "--no-execute")] {
        let output = whyrefused(&["completions", shell]);
        assert!(output.status.success(), "{shell}: {}", text(&output.stderr));
        let script = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(script.path(), &output.stdout).unwrap();
        let loaded = Command::new(shell)
            .arg(check)
            .arg(script.path())
            .output()
            .unwrap_or_else(|e| panic!("{shell} is installed by ./dev (TEST_PACKAGES): {e}"));
        assert!(loaded.status.success(), "{shell} rejects its script: {}", text(&loaded.stderr));
        assert!(text(&output.stdout).contains("explain"), "{shell}: the commands are completed");
    }
}

#[test]
fn the_manual_renders_with_man_and_documents_each_command() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().to_str().unwrap();
    assert!(whyrefused(&["manual", "--out-dir", out_dir]).status.success());
    let page = dir.path().join("whyrefused-check.1");
    let rendered = Command::new("man")
        .args(["-l", "-P", "cat"])
        .arg(&page)
        .env("MANWIDTH", "100")
        .output()
        .expect("man is installed by ./dev (TEST_PACKAGES)");
    let shown = text(&rendered.stdout);
    assert!(rendered.status.success(), "{}", text(&rendered.stderr));
    assert!(shown.contains("--timeout-ms") && shown.contains("--json"), "{shown}");
    let main = text(&whyrefused(&["manual"]).stdout);
    assert!(main.contains(".TH whyrefused 1") && main.contains("serve"), "{main}");
}

#[test]
fn the_version_names_the_package_the_commit_and_the_target() {
    let output = text(&whyrefused(&["--version"]).stdout);
    let expected = format!("whyrefused {} (commit ", env!("CARGO_PKG_VERSION"));
    assert!(output.starts_with(&expected), "{output}");
    assert!(output.contains("-linux-"), "the target triple: {output}");
}

#[test]
fn a_config_file_with_an_unknown_key_exits_2_naming_it() {
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(config.path(), "listen = \"127.0.0.1:0\"\nmax-sesions = 5\n").unwrap();
    let output = whyrefused(&["serve", "--config", config.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let said = text(&output.stderr);
    assert!(said.contains("unknown key `max-sesions`"), "{said}");
}

#[tokio::test]
async fn the_config_files_options_reach_the_agent_and_the_command_line_wins() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = write_token_file(&dir.path().join("tokens"), "ci:ci-fedcba9876543210fedc\n");
    let config = dir.path().join("whyrefused.toml");
    // The harness gives `--listen 127.0.0.1:0` on the command line: it must win over port 9.
    let body = format!("listen = \"127.0.0.1:9\"\ntoken-file = {tokens:?}\n");
    std::fs::write(&config, body).unwrap();
    let agent = Agent::start_with(&["--config", config.to_str().unwrap()]);
    assert_ne!(agent.address.port(), 9, "the command line's --listen wins");
    let client = Client::connect_silent(&agent).await;
    let AgentMessage::Hello { auth_required, .. } = client.hello else { panic!("no hello") };
    assert!(auth_required, "the file's token-file is in force");
}
