//! `whyrefused explain [TEXT]`: read an error message (the arguments, or standard input, so
//! `myapp 2>&1 | whyrefused explain` works), find every place it names, say what the program
//! tried, and check each target exactly as `whyrefused check` does.
//!
//! The text itself is never stored, logged or printed: only the recognised words are shown
//! (one line each, without a URL's user name or password). Exit codes are `check`'s: the worst
//! of the targets' (0 all reachable, 1 one is not, 3 an internal failure), and 2 when the text
//! names no target.

use std::fmt::Write as _;
use std::io::{IsTerminal, Read, Write};
use std::net::IpAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use futures::future::join_all;
use serde::Serialize;
use whyrefused_shared::explain::{self, Kind, Recognised, Recognition};
use whyrefused_shared::{CheckReport, CheckRequest, DEFAULT_TIMEOUT_MS};

use super::{exit, fail, report};
use crate::check::{self, CheckPlan};
use crate::policy::TargetPolicy;
use crate::probe::dns_detail;
use crate::probe::unix_socket::{self, SocketState};
use crate::proxy::{Client, ProxyEnv, ProxySettings};
use crate::verdict;

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The error message (quoted, or as several words); read from standard input when absent.
    text: Vec<String>,
    /// The connect deadline for each address, in milliseconds.
    #[arg(long, default_value_t = DEFAULT_TIMEOUT_MS)]
    timeout_ms: u32,
    /// Never trace the path, not even of an address that ends silent.
    #[arg(long)]
    no_trace: bool,
    /// Print one JSON document: {"recognised": [...], "checks": [...]}.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    history: super::history::HistoryArgs,
    /// Connect directly, whatever the proxy variables (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY,
    /// NO_PROXY) say; without it, http:// and https:// targets go through the proxy they name,
    /// read as the program's library reads them (Python requests, Go, else curl).
    #[arg(long)]
    no_proxy: bool,
    /// From inside a container or another network namespace, when a loopback target fails:
    /// also try the host's side of the link (this namespace's default gateway) on the port.
    #[arg(long)]
    try_host: bool,
}

/// What `--json` prints.
#[derive(Debug, Serialize)]
struct Explained<'a> {
    /// Each place the text names, and who named it.
    recognised: &'a [Recognised],
    /// The check of each target, in the order of `recognised`, as `check --json` prints it.
    checks: Vec<CheckReport>,
    /// Each Unix socket the text names, and what a connect to it found.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    sockets: Vec<SocketFound>,
    /// How many more places the text names beyond the 16 kept.
    #[serde(skip_serializing_if = "is_zero")]
    left_out: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// A Unix socket the text names, and its state.
#[derive(Debug, Serialize)]
struct SocketFound {
    path: String,
    state: SocketState,
}

/// Runs `whyrefused explain`.
pub async fn run(args: ExplainArgs) -> ExitCode {
    let text = match read_text(&args.text) {
        Ok(text) => text,
        Err(error) => return fail(exit::INVALID_INPUT, &error),
    };
    let recognition = explain::recognise(&text);
    drop(text);
    let sockets = sockets_of(&recognition);
    if !recognition.has_target() && sockets.is_empty() {
        return nothing_to_check(&recognition, args.json);
    }
    let plans = match plans(&recognition, &args) {
        Ok(plans) => plans,
        Err(error) => return fail(exit::INVALID_INPUT, &error),
    };
    let checks = check_all(plans).await;
    let now = std::time::SystemTime::now();
    let entries = checks
        .iter()
        .filter_map(|(_, report)| crate::history::Entry::of_check(report, super::cli_asker(), now));
    super::history::store_all(&args.history, entries.collect()).await;
    let code = worst_code(&checks, &sockets);
    let output = match args.json {
        true => {
            let explained = Explained {
                recognised: &recognition.recognised,
                checks: checks.iter().map(|(_, report)| report.clone()).collect(),
                sockets,
                left_out: recognition.left_out,
            };
            match serde_json::to_string_pretty(&explained) {
                Ok(json) => json + "\n",
                Err(error) => {
                    return fail(exit::INTERNAL, &format!("cannot encode the report: {error}"));
                }
            }
        }
        false => {
            let colors = report::Colors::for_stdout(std::io::stdout().is_terminal());
            render(&recognition, &checks, &sockets, colors)
        }
    };
    if let Err(error) = std::io::stdout().write_all(output.as_bytes()) {
        return fail(exit::INTERNAL, &format!("cannot write the report: {error}"));
    }
    ExitCode::from(code)
}

/// The text from the arguments, or else standard input (its first
/// [`explain::MAX_TEXT_BYTES`]).
fn read_text(words: &[String]) -> Result<String, String> {
    if !words.is_empty() {
        return Ok(words.join(" "));
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("whyrefused: paste the error message, then press Ctrl-D");
    }
    let mut bytes = Vec::new();
    let limit = explain::MAX_TEXT_BYTES as u64;
    stdin
        .lock()
        .take(limit)
        .read_to_end(&mut bytes)
        .map_err(|error| format!("cannot read standard input: {error}"))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Exit 2, saying what was recognised without a target, or that nothing was.
fn nothing_to_check(recognition: &Recognition, json: bool) -> ExitCode {
    if json {
        let explained = Explained {
            recognised: &recognition.recognised,
            checks: Vec::new(),
            sockets: Vec::new(),
            left_out: 0,
        };
        if let Ok(json) = serde_json::to_string_pretty(&explained) {
            println!("{json}");
        }
    } else if !recognition.recognised.is_empty() {
        print!("{}", places(recognition));
    }
    let message = match recognition.recognised.is_empty() {
        true => "the text names no host and port whyrefused recognises; run `whyrefused check \
                 HOST:PORT` with the address the program connects to"
            .to_string(),
        false => "the text names no complete target (see above for what is missing); run \
                  `whyrefused check HOST:PORT` with the address the program connects to"
            .to_string(),
    };
    fail(exit::INVALID_INPUT, &message)
}

/// The Unix sockets the text names, each connected to once.
fn sockets_of(recognition: &Recognition) -> Vec<SocketFound> {
    recognition
        .recognised
        .iter()
        .filter_map(|r| r.socket.as_ref())
        .map(|path| SocketFound { path: path.clone(), state: unix_socket::state(Path::new(path)) })
        .collect()
}

/// The plan of each target's check, as `whyrefused check` makes it; an option out of range
/// (the timeout) is the user's error, said once.
fn plans(
    recognition: &Recognition,
    args: &ExplainArgs,
) -> Result<Vec<(Recognised, CheckPlan)>, String> {
    // The CLI connects for its own user, as the program that failed did: no target policy.
    let policy = Arc::new(TargetPolicy::unrestricted());
    let env = (!args.no_proxy).then(ProxyEnv::from_process);
    let mut plans = Vec::new();
    for recognised in &recognition.recognised {
        let Some(target) = recognised.target() else { continue };
        let mut request = CheckRequest::new(target.clone());
        request.timeout_ms = Some(args.timeout_ms);
        request.no_trace = args.no_trace;
        let plan = CheckPlan::from_request(&request, policy.clone(), None)
            .map_err(|error| format!("{target}: {error}"))?;
        let proxy = env.as_ref().map(|env| {
            Arc::new(ProxySettings { env: env.clone(), client: proxy_client(recognised.kind) })
        });
        plans.push((recognised.clone(), CheckPlan { proxy, try_host: args.try_host, ..plan }));
    }
    Ok(plans)
}

/// Whose reading of the proxy variables a program of this kind follows.
fn proxy_client(kind: Kind) -> Client {
    match kind {
        Kind::Python => Client::Requests,
        Kind::Go | Kind::Grpc | Kind::Docker => Client::Go,
        _ => Client::Curl,
    }
}

/// Runs every check at once, as `whyrefused check` does, and annotates each verdict with what
/// follows from how the program connected.
async fn check_all(plans: Vec<(Recognised, CheckPlan)>) -> Vec<(Recognised, CheckReport)> {
    let checks = plans.into_iter().map(|(recognised, plan)| async move {
        let mut report = CheckReport::default();
        check::run(&plan, |event| report.apply(&event)).await;
        (recognised, report)
    });
    let mut checks = join_all(checks).await;
    for (recognised, report) in &mut checks {
        let hosts = hosts_entries(recognised).await;
        verdict::explain::annotate(recognised, &hosts, report);
    }
    checks
}

/// The `/etc/hosts` entries of the name the program looked up, if it names one.
async fn hosts_entries(recognised: &Recognised) -> Vec<IpAddr> {
    match verdict::explain::looked_up_name(recognised) {
        Some(name) => dns_detail::hosts_file_entries(name).await,
        None => Vec::new(),
    }
}

/// The worst exit code: 3 for a check without a verdict, 1 for one not reachable or a socket
/// that does not accept, else 0.
fn worst_code(checks: &[(Recognised, CheckReport)], sockets: &[SocketFound]) -> u8 {
    let of_checks = checks.iter().map(|(_, report)| match &report.verdict {
        Some(verdict) if verdict.cause.is_reachable() => 0,
        Some(_) => exit::UNREACHABLE,
        None => exit::INTERNAL,
    });
    let of_sockets = sockets.iter().map(|s| if s.state.is_up() { 0 } else { exit::UNREACHABLE });
    of_checks.chain(of_sockets).max().unwrap_or(exit::INVALID_INPUT)
}

/// The readable report: what the text names, then each check.
fn render(
    recognition: &Recognition,
    checks: &[(Recognised, CheckReport)],
    sockets: &[SocketFound],
    colors: report::Colors,
) -> String {
    let mut out = places(recognition);
    for socket in sockets {
        let _ = writeln!(out, "\nUnix socket {}: {}", socket.path, socket.state.meaning());
    }
    for (recognised, report) in checks {
        let heading = format!(
            "── {} (named by {}) ──",
            recognised.target().unwrap_or_default(),
            recognised.kind.label()
        );
        let _ = writeln!(out, "\n{}", colors.paint_bold(&heading));
        out.push_str(&report::render(report, colors));
    }
    out
}

/// One line a place: what the program tried, in whose words, and what is missing.
fn places(recognition: &Recognition) -> String {
    let mut out = String::new();
    let count = recognition.recognised.len();
    let _ = writeln!(out, "The text names {count} place{}:", if count == 1 { "" } else { "s" });
    for recognised in &recognition.recognised {
        let _ = writeln!(out, "  {}", place_line(recognised));
    }
    if recognition.left_out > 0 {
        let _ = writeln!(
            out,
            "  … and {} more, not checked (at most {} from one text)",
            recognition.left_out,
            explain::MAX_TARGETS
        );
    }
    out
}

fn place_line(recognised: &Recognised) -> String {
    let said = format!("{} said \"{}\"", recognised.kind.label(), recognised.text);
    if let Some(socket) = &recognised.socket {
        return format!("the Unix socket {socket}: {said}");
    }
    let family = recognised.family().map_or(String::new(), |f| format!(" ({})", f.label()));
    let through = recognised.name.as_ref().map_or(String::new(), |n| format!(", looked up as {n}"));
    match (&recognised.host, recognised.port, recognised.missing()) {
        (Some(host), Some(port), None) => {
            format!("{host} port {port}{family}{through}: {said}")
        }
        (Some(host), None, _) => format!(
            "{host}{family}, port not named: {said}. Give the port the program uses: \
             whyrefused check {host}:PORT"
        ),
        (None, Some(port), _) => format!(
            "port {port}, host not named: {said}. Give the host the program uses: \
             whyrefused check HOST:{port}"
        ),
        _ => format!(
            "no host or port: {said}. Paste the lines that name the address too (a traceback's \
             connect call, the program's connection settings), or run whyrefused check HOST:PORT"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use whyrefused_shared::explain::recognise;

    #[test]
    fn each_place_says_what_was_tried_or_what_is_missing() {
        let line = |text: &str| place_line(&recognise(text).recognised[0]);
        assert_eq!(
            line("connect ECONNREFUSED ::1:3000"),
            "::1 port 3000 (IPv6): Node.js said \"connect ECONNREFUSED ::1:3000\""
        );
        assert!(line("getaddrinfo ENOTFOUND db").starts_with("db, port not named:"));
        assert!(line("getaddrinfo ENOTFOUND db").ends_with("whyrefused check db:PORT"));
        assert!(
            line("ConnectionRefusedError: [Errno 111] Connection refused")
                .starts_with("no host or port: Python said")
        );
        assert!(
            line("connection to server at \"localhost\" (::1), port 5432 failed: x")
                .starts_with("::1 port 5432 (IPv6), looked up as localhost:")
        );
    }

    #[test]
    fn the_worst_exit_code_wins() {
        let reached = |reachable: bool| {
            let cause = match reachable {
                true => whyrefused_shared::Cause::Reachable,
                false => whyrefused_shared::Cause::PortClosed,
            };
            let verdict = whyrefused_shared::Verdict {
                cause,
                summary: String::new(),
                suggestions: vec![],
                evidence: vec![],
                pattern: None,
            };
            let recognised = recognise("connect ECONNREFUSED ::1:3000").recognised.remove(0);
            (recognised, CheckReport { verdict: Some(verdict), ..CheckReport::default() })
        };
        assert_eq!(worst_code(&[reached(true), reached(true)], &[]), 0);
        assert_eq!(worst_code(&[reached(true), reached(false)], &[]), exit::UNREACHABLE);
        let missing = SocketFound { path: "/x".into(), state: SocketState::Missing };
        assert_eq!(worst_code(&[reached(true)], &[missing]), exit::UNREACHABLE);
        let broken = (reached(true).0, CheckReport::default());
        assert_eq!(worst_code(&[reached(false), broken], &[]), exit::INTERNAL);
    }
}
