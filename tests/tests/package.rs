//! What a package installs beside the binary, as an operator meets it: the completion scripts
//! load in their shells, the manual renders with `man`, `--version` names the build, and the
//! config file's options reach the agent (the command line winning, an unknown key refused).
//! And what `./dev dist` packs, checked without building it: the .deb's unit, config and token
//! file (deploy/package/), the Dockerfile and the Kubernetes example. The built artifacts
//! themselves are tested by tests/tests/dist.rs, which `./dev dist` runs.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

use whyrefused_shared::AgentMessage;
use whyrefused_tests::{Agent, Client, agent_binary, workspace_root, write_token_file};

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

/// A file of the repository, as text.
fn repository_file(path: &str) -> String {
    let path = workspace_root().join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The long options `whyrefused serve --help` lists, but `--help` and `--config`.
fn serve_options() -> BTreeSet<String> {
    let help = text(&whyrefused(&["serve", "--help"]).stdout);
    let options: BTreeSet<String> = help
        .lines()
        .filter_map(|line| {
            // `  -4, --ipv4` or `      --listen <ADDRESS:PORT>`
            let line = line.trim_start();
            let line = match line.as_bytes() {
                [b'-', short, b',', b' ', ..] if *short != b'-' => &line[4..],
                _ => line,
            };
            let name = line.strip_prefix("--")?;
            let end = name.find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'));
            let end = end.unwrap_or(name.len());
            Some(name[..end].to_string())
        })
        .filter(|name| name != "help" && name != "config")
        .collect();
    assert!(options.len() > 20 && options.contains("listen"), "{help}");
    options
}

/// The keys of a config file, set (`key = …`) or shown in a comment (`# key = …`).
fn config_keys(config: &str) -> BTreeSet<String> {
    config
        .lines()
        .filter_map(|line| {
            let line = line.trim_start_matches('#').trim_start();
            let (key, _) = line.split_once(" = ")?;
            key.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                .then(|| key.to_string())
        })
        .collect()
}

#[test]
fn the_packaged_config_shows_every_serve_option_and_only_those() {
    let config = repository_file("deploy/package/whyrefused.toml");
    let keys = config_keys(&config);
    let options = serve_options();
    let missing: Vec<_> = options.difference(&keys).collect();
    assert!(
        missing.is_empty(),
        "deploy/package/whyrefused.toml does not show {missing:?}: add each with its default"
    );
    let unknown: Vec<_> = keys.difference(&options).collect();
    assert!(
        unknown.is_empty(),
        "deploy/package/whyrefused.toml shows {unknown:?}, not serve options"
    );
}

#[test]
fn every_value_the_packaged_config_shows_is_one_serve_takes() {
    // Every commented line made a setting: clap parses each value with the option's own parser
    // and stops at --help, before starting anything (or minding options that exclude each other).
    let config = repository_file("deploy/package/whyrefused.toml");
    let all: String = config
        .lines()
        .map(|line| line.strip_prefix("# ").filter(|rest| rest.contains(" = ")).unwrap_or(line))
        .map(|line| format!("{}\n", line.split("    #").next().unwrap_or(line)))
        .collect();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &all).unwrap();
    let output = whyrefused(&["serve", "--config", file.path().to_str().unwrap(), "--help"]);
    assert!(output.status.success(), "{}\n{all}", text(&output.stderr));
}

#[test]
fn the_packaged_service_listens_on_nothing_until_its_token_file_holds_a_token() {
    let dir = tempfile::tempdir().unwrap();
    // The token file as the package installs it: root's, mode 0600, comments only.
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, repository_file("deploy/package/tokens")).unwrap();
    std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = workspace_root().join("deploy/package/whyrefused.toml");
    // The unit's command line (its credential's path made concrete), and a state directory.
    let args =
        ["serve", "--config", config.to_str().unwrap(), "--token-file", tokens.to_str().unwrap()];
    let output = Command::new(agent_binary())
        .args(args)
        .env("STATE_DIRECTORY", dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "the unit does not restart on exit 2");
    let said = text(&output.stderr);
    assert!(said.contains("holds no token: write one a line, as name:secret"), "{said}");
    assert!(!text(&output.stdout).contains("open https://"), "it never listened");
    let unit = repository_file("deploy/package/whyrefused.service");
    assert!(unit.contains("RestartPreventExitStatus=2\n"), "{unit}");
}

/// A unit's directives, but those of its `[Unit]` description and its command line.
fn hardening(unit: &str) -> BTreeSet<String> {
    let mut lines = BTreeSet::new();
    let mut continued = false;
    for line in unit.lines() {
        let skipped = continued
            || line.starts_with('#')
            || line.trim().is_empty()
            || ["Description=", "Documentation=", "ExecStart="]
                .iter()
                .any(|key| line.starts_with(key));
        continued = line.ends_with('\\');
        if !skipped {
            lines.insert(line.to_string());
        }
    }
    lines
}

#[test]
fn the_packaged_unit_passes_systemd_analyze_verify_with_the_hardening_of_deploys() {
    let packaged = repository_file("deploy/package/whyrefused.service");
    let directory = tempfile::tempdir().unwrap();
    let binary = agent_binary();
    // Only the binary's path differs: verify checks that ExecStart's program exists.
    let unit = packaged.replace("/usr/bin/whyrefused", binary.to_str().unwrap());
    let path = directory.path().join("whyrefused.service");
    std::fs::write(&path, unit).unwrap();
    let output = Command::new("systemd-analyze")
        .args(["verify"])
        .arg(&path)
        .output()
        .expect("systemd-analyze is installed by ./dev (TEST_PACKAGES: systemd)");
    let said = text(&output.stderr);
    assert!(output.status.success() && said.trim().is_empty(), "systemd-analyze verify: {said}");
    assert!(
        packaged.contains(
            "ExecStart=/usr/bin/whyrefused serve --config /etc/whyrefused/whyrefused.toml"
        )
    );
    let deploy = hardening(&repository_file("deploy/whyrefused.service"));
    let package = hardening(&packaged);
    assert_eq!(deploy, package, "deploy/whyrefused.service and the packaged unit drifted apart");
    assert!(
        package.contains("CapabilityBoundingSet=CAP_NET_RAW")
            && package.contains("DynamicUser=yes")
    );
}

/// The Rust targets `./dev dist` builds (its DIST_TARGETS line).
fn dist_targets() -> Vec<String> {
    let dev = repository_file("dev");
    let line = dev
        .lines()
        .find(|line| line.starts_with("DIST_TARGETS=("))
        .expect("dev names DIST_TARGETS");
    line.trim_start_matches("DIST_TARGETS=(")
        .trim_end_matches(')')
        .split_whitespace()
        .map(String::from)
        .collect()
}

#[test]
fn the_dockerfile_copies_the_static_binary_dist_builds_for_each_architecture() {
    let dockerfile = repository_file("Dockerfile");
    let targets = dist_targets();
    assert_eq!(targets, ["x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl"]);
    for (arch, target) in [("amd64", &targets[0]), ("arm64", &targets[1])] {
        let stage =
            format!("AS arch-{arch}\nCOPY dist/whyrefused-*-{target} /usr/bin/whyrefused\n");
        assert!(dockerfile.contains(&stage), "no {arch} stage copying the {target} binary");
        // The name ./dev dist gives the binary matches the pattern.
        let built = format!("whyrefused-{}-{target}", env!("CARGO_PKG_VERSION"));
        assert!(built.starts_with("whyrefused-") && built.ends_with(&format!("-{target}")));
    }
    assert!(dockerfile.contains("FROM arch-${TARGETARCH}\n"), "{dockerfile}");
    assert!(
        dockerfile.contains("USER nonroot:nonroot\n")
            && dockerfile.contains("ENTRYPOINT [\"/usr/bin/whyrefused\"]")
    );
    let ignored = repository_file(".dockerignore");
    assert!(ignored.lines().any(|line| line == "!dist/"), "the builder gets dist/: {ignored}");
}

#[test]
fn the_kubernetes_example_runs_a_non_root_agent_on_every_node_joining_the_hub() {
    use serde_norway::Value;
    let yaml = repository_file("deploy/kubernetes.yaml");
    let documents: Vec<Value> = serde_norway::Deserializer::from_str(&yaml)
        .map(|document| serde::Deserialize::deserialize(document).expect("valid YAML"))
        .collect();
    let kinds: Vec<&str> = documents.iter().filter_map(|d| d["kind"].as_str()).collect();
    assert_eq!(kinds, ["Namespace", "Secret", "DaemonSet"]);
    let secret = &documents[1];
    let daemonset = &documents[2];
    let pod = &daemonset["spec"]["template"]["spec"];
    assert_eq!(pod["hostNetwork"].as_bool(), Some(true));
    assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true));
    assert_ne!(pod["securityContext"]["runAsUser"].as_u64(), Some(0));
    let agent = &pod["containers"][0];
    let security = &agent["securityContext"];
    assert_eq!(security["allowPrivilegeEscalation"].as_bool(), Some(false));
    assert_eq!(security["capabilities"]["drop"][0].as_str(), Some("ALL"));
    let added: Vec<&str> = security["capabilities"]["add"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(added, ["NET_RAW"]);
    // The token comes from the Secret (through the init container's copy, mode 0600).
    let secret_name = secret["metadata"]["name"].as_str().unwrap();
    let volumes = pod["volumes"].as_sequence().unwrap();
    assert!(volumes.iter().any(|v| v["secret"]["secretName"].as_str() == Some(secret_name)));
    let init = pod["initContainers"][0]["command"][2].as_str().unwrap();
    assert!(init.contains("install -m 0600") && init.contains("/tokens/tokens"), "{init}");
    // Its arguments, the environment's values put in, are ones serve takes.
    let mut args: Vec<String> = Vec::new();
    for arg in agent["args"].as_sequence().unwrap() {
        let mut arg = arg.as_str().unwrap().to_string();
        for variable in agent["env"].as_sequence().unwrap() {
            let name = format!("$({})", variable["name"].as_str().unwrap());
            arg = arg.replace(&name, variable["value"].as_str().unwrap());
        }
        args.push(arg);
    }
    assert_eq!(args[0], "serve");
    assert!(args.contains(&"--token-file=/tokens/tokens".to_string()), "{args:?}");
    assert!(args.iter().any(|arg| arg.starts_with("--join=wss://")), "{args:?}");
    let args: Vec<&str> = args.iter().map(String::as_str).chain(["--help"]).collect();
    let output = whyrefused(&args);
    assert!(output.status.success(), "{args:?}: {}", text(&output.stderr));
}
