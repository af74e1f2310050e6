//! `whyrefused watch TARGET`: the check repeated every `--every`, each round compared with the
//! one before ([`crate::watch::Watch`]). On a terminal, one line a round (time, cause, connect
//! time, a sparkline of the recent rounds) and the full report whenever the cause changes;
//! with `--json`, one JSON document a line. Ctrl-C or the end of `--count` prints the summary.
//!
//! The first round, and each round whose cause differs from the last, runs the full diagnosis
//! (every side probe and the path trace); the other rounds skip the trace, so a watch every
//! few seconds sends no TTL-limited SYNs while nothing changes. Every round is stored in the
//! history, with the watch's id; each change is POSTed to `--webhook` and handed to
//! `--on-change`.

use std::io::{IsTerminal, Write};
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use serde::Serialize;
use serde_json::json;
use tokio::task::JoinSet;
use whyrefused_shared::{
    ALL_VANTAGES, Cause, CheckReport, CheckRequest, DEFAULT_TIMEOUT_MS, VantageRound, WatchRound,
};

use super::history::{self as stored, HistoryArgs};
use super::report::{self, Colors};
use super::{exit, fail, via};
use crate::check::{self, CheckPlan, TraceWhen};
use crate::history::{History, formats};
use crate::policy::TargetPolicy;
use crate::watch::quorum::{Part, Quorum};
use crate::watch::rounds::{Rounds, Seen, Settings, Source, Storage};
use crate::watch::webhook::{ChangeBody, Webhook, WebhookUrl};
use crate::watch::{Watch, WatchSummary, percentile};

/// The shortest interval between rounds.
const MIN_EVERY: Duration = Duration::from_millis(10);

/// How long the watch waits at its end for webhooks and `--on-change` commands still running.
const TASKS_DEADLINE: Duration = Duration::from_secs(30);

/// The bars of the sparkline, lowest first.
const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// What to watch: host:port, [v6]:port, scheme://host[:port]/path, or a host with --port.
    target: String,
    /// The port, for a target given as a bare host.
    #[arg(long, short)]
    port: Option<u16>,
    /// The time between the starts of two rounds: 10ms, 30s, 10m, 24h (at least 10ms).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_every)]
    every: Duration,
    /// Stop after this many rounds (default: until Ctrl-C).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,
    /// The connect deadline for each address, in milliseconds.
    #[arg(long, default_value_t = DEFAULT_TIMEOUT_MS)]
    timeout_ms: u32,
    /// Attempt a TLS handshake after connecting, whatever the scheme.
    #[arg(long)]
    tls: bool,
    /// Send an HTTP request after connecting, whatever the scheme.
    #[arg(long)]
    http: bool,
    /// The HTTP statuses that count as working (200,204).
    #[arg(long, value_name = "CODES", value_delimiter = ',')]
    expect_status: Vec<u16>,
    /// One JSON document a line: {"watch": {"round", "changed", "at", "result"}, "report":
    /// <the check document>}, and {"summary": …} at the end.
    #[arg(long)]
    json: bool,
    /// POST each change to this URL (http:// or https://) as JSON, with a `text` field for
    /// Slack- and Mattermost-compatible webhooks; tried 3 times, 5 s each.
    #[arg(long, value_name = "URL")]
    webhook: Option<String>,
    /// Run this shell command on each change, with WHYREFUSED_TARGET, WHYREFUSED_OLD_CAUSE,
    /// WHYREFUSED_NEW_CAUSE, WHYREFUSED_SUMMARY, WHYREFUSED_AT, WHYREFUSED_ROUND and
    /// WHYREFUSED_RESULT in its environment.
    #[arg(long, value_name = "CMD")]
    on_change: Option<String>,
    /// Run each round through the agent (hub) at this WebSocket URL, such as
    /// wss://hub.example:7070; the hub stores the rounds in its history.
    #[arg(long, value_name = "URL")]
    via: Option<String>,
    /// With --via: the vantage points to run from, comma-separated (local is the hub itself,
    /// all every online one); a round is down when any fails, or as --quorum says.
    #[arg(
        long,
        value_name = "NAMES",
        requires = "via",
        value_delimiter = ',',
        default_value = "local"
    )]
    from: Vec<String>,
    /// With several vantage points: down when N of the M fail (2/3); a round's cause is then
    /// the one most of the failing ones gave, and an offline vantage point counts as failing.
    #[arg(long, value_name = "N/M", requires = "via")]
    quorum: Option<String>,
    /// The hub's token file: its first secret is presented (else WHYREFUSED_TOKEN).
    #[arg(long, requires = "via")]
    token_file: Option<std::path::PathBuf>,
    /// For a wss:// hub with a self-signed certificate: the SHA-256 fingerprint it printed.
    #[arg(long, requires = "via")]
    tls_fingerprint: Option<String>,
    #[command(flatten)]
    history: HistoryArgs,
}

fn parse_every(text: &str) -> Result<Duration, String> {
    let every = formats::parse_duration(text)?;
    match every >= MIN_EVERY {
        true => Ok(every),
        false => Err(format!("'{text}' is shorter than the shortest interval, 10ms")),
    }
}

/// One `--json` line: the round, then its report (fields in this order).
#[derive(Serialize)]
struct RoundLine<'a> {
    watch: RoundInfo<'a>,
    report: &'a CheckReport,
}

/// The round of a `--json` line.
#[derive(Serialize)]
struct RoundInfo<'a> {
    /// Its number, from 1.
    round: u64,
    /// Its cause differs from the round before's.
    changed: bool,
    /// When it started (RFC 3339).
    at: &'a str,
    /// Its stored result, when it was stored here.
    result: Option<&'a str>,
    /// With several vantage points: the round's cause under the quorum (the report is the
    /// part of the first vantage point that gave it).
    #[serde(skip_serializing_if = "Option::is_none")]
    cause: Option<Cause>,
    /// With several vantage points: each one's part.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    vantages: &'a [VantageRound],
}

/// Where the command line's rounds run: here, or through a hub from its vantage points.
enum Place {
    Here(CheckPlan),
    Hub { hub: via::Hub, request: CheckRequest, from: Vec<String> },
}

impl Source for Place {
    async fn run(&self, diagnose: bool) -> Vec<Part> {
        match self {
            Place::Here(plan) => {
                let trace = if diagnose { TraceWhen::Always } else { TraceWhen::Never };
                let report = checked(&CheckPlan { trace, ..plan.clone() }).await;
                let outcome = report.outcome;
                vec![Part { vantage: "local".into(), report, outcome, errors: Vec::new() }]
            }
            Place::Hub { hub, request, from } => {
                let request =
                    CheckRequest { trace: diagnose, no_trace: !diagnose, ..request.clone() };
                match via::check_parts(hub.clone(), request, from).await {
                    Ok(parts) => parts,
                    Err(error) => {
                        // The round counts as unknown; the watch goes on (the hub may come back).
                        eprintln!("whyrefused: this round could not run through the hub: {error}");
                        vec![Part { vantage: from.join(","), ..Part::default() }]
                    }
                }
            }
        }
    }
}

/// What a running watch holds besides its rounds.
struct Watcher {
    args: WatchArgs,
    rounds: Rounds<Place>,
    /// Where the rounds are stored here (not through a hub: the hub stores them).
    history: Option<History>,
    colors: Colors,
    /// `--on-change` commands still running.
    tasks: JoinSet<()>,
}

/// Runs `whyrefused watch`.
pub async fn run(args: WatchArgs) -> ExitCode {
    crate::logging::init("whyrefused=warn");
    let request = CheckRequest {
        port: args.port,
        timeout_ms: Some(args.timeout_ms),
        tls: args.tls,
        http: args.http,
        expect_status: args.expect_status.clone(),
        ..CheckRequest::new(args.target.clone())
    };
    // As `check`: the CLI connects for its own user, with no target policy.
    let unrestricted = Arc::new(TargetPolicy::unrestricted());
    let plan = match CheckPlan::from_request(&request, unrestricted.clone(), None) {
        Ok(plan) => plan,
        Err(error) => return fail(exit::INVALID_INPUT, &error.to_string()),
    };
    let webhook = match args.webhook.as_deref().map(WebhookUrl::parse).transpose() {
        Ok(url) => url.map(|url| Webhook::new(url, unrestricted)),
        Err(error) => return fail(exit::INVALID_INPUT, &format!("--webhook: {error}")),
    };
    let quorum = match quorum(&args) {
        Ok(quorum) => quorum,
        Err(error) => return fail(exit::INVALID_INPUT, &format!("--quorum: {error}")),
    };
    let place = match args.via.as_deref() {
        None => Place::Here(plan),
        Some(url) => {
            let pin = args.tls_fingerprint.as_deref();
            match via::Hub::new(url, pin, args.token_file.as_deref()) {
                Ok(hub) => Place::Hub { hub, request, from: args.from.clone() },
                Err(error) => return fail(exit::INVALID_INPUT, &error),
            }
        }
    };
    // Through a hub, the hub stores each round (as it does a check --via).
    let opened = match place {
        Place::Hub { .. } => None,
        Place::Here(_) => stored::opened(&args.history).await,
    };
    let history = match opened {
        None => None,
        Some(Ok(history)) => Some(history),
        Some(Err(error)) => {
            eprintln!("whyrefused: the rounds will not be stored in the history: {error}");
            None
        }
    };
    let settings = Settings {
        id: formats::new_id(),
        target: args.target.clone(),
        quorum,
        storage: history.clone().map(|history| Storage { history, token: None, source: "watch" }),
        webhook,
        public_url: None,
    };
    let colors = Colors::for_stdout(std::io::stdout().is_terminal());
    let rounds = Rounds::new(place, settings);
    let mut watcher = Watcher { args, rounds, history, colors, tasks: JoinSet::new() };
    watcher.rounds().await;
    watcher.end().await
}

/// `--quorum N/M` checked against `--from`; without it, down when any vantage point fails.
fn quorum(args: &WatchArgs) -> Result<Quorum, String> {
    let mut names: Vec<&String> = Vec::new();
    for name in &args.from {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let counted = (!names.iter().any(|name| *name == ALL_VANTAGES)).then_some(names.len());
    match &args.quorum {
        Some(text) => Quorum::parse(text, counted),
        None => Ok(Quorum::any_of(counted.unwrap_or(1))),
    }
}

impl Watcher {
    /// Runs rounds until `--count` or Ctrl-C.
    async fn rounds(&mut self) {
        let mut ticks = tokio::time::interval(self.args.every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let interrupted = tokio::signal::ctrl_c();
        tokio::pin!(interrupted);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = &mut interrupted => break,
            }
            let seen = tokio::select! {
                seen = self.rounds.next() => seen,
                _ = &mut interrupted => break,
            };
            self.show(&seen);
            if let Some((_, body)) = &seen.change {
                self.on_change(body);
            }
            self.tasks_reap();
            if self.args.count.is_some_and(|count| seen.round.round >= count) {
                break;
            }
        }
    }

    /// Prints the round: a JSON line, or a line on the terminal (and the report on a change).
    fn show(&self, seen: &Seen) {
        let round = &seen.round;
        let report = seen.report();
        let text = match self.args.json {
            true => {
                let watch = RoundInfo {
                    round: round.round,
                    changed: round.changed,
                    at: &round.at,
                    result: round.result.as_deref(),
                    cause: (!round.vantages.is_empty()).then_some(round.cause),
                    vantages: &round.vantages,
                };
                let line = serde_json::to_string(&RoundLine { watch, report }).unwrap_or_default();
                format!("{line}\n")
            }
            false => {
                let mut text = self.line(round);
                if round.changed || round.round == 1 {
                    for part in &seen.parts {
                        if seen.parts.len() > 1 {
                            text.push_str(&format!("── from {} ──\n", part.vantage));
                        }
                        for error in &part.errors {
                            text.push_str(&format!("✗ {error}\n"));
                        }
                        text.push_str(&report::render(&part.report, self.colors));
                    }
                }
                text
            }
        };
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    }

    /// `2026-12-02T09:00:01.123Z  #12  ✓ reachable   0.1 ms  ▁▂▁█`, and each vantage
    /// point's cause when there are several.
    fn line(&self, round: &WatchRound) -> String {
        let cause = round.cause;
        let mark = if cause.is_reachable() { "✓" } else { "✗" };
        let style = self.colors.for_severity(cause.severity());
        let connect = round.connect_ms.map_or_else(|| "-".to_string(), |ms| format!("{ms:.1} ms"));
        let at = &round.at;
        let time = at.get(..23).map_or_else(|| at.to_string(), |ms| format!("{ms}Z"));
        let dim = self.colors.dim;
        let parts: Vec<String> = round
            .vantages
            .iter()
            .map(|part| {
                let said = part.outcome.map_or(part.cause.as_str(), |outcome| outcome.as_str());
                format!("{} {said}", part.vantage)
            })
            .collect();
        let parts = match parts.is_empty() {
            true => String::new(),
            false => format!("  ({})", parts.join(", ")),
        };
        format!(
            "{dim}{time}{dim:#}  #{:<5} {style}{mark} {:<22}{style:#} {connect:>9}  {}{parts}\n",
            round.round,
            cause.as_str(),
            sparkline(self.rounds.watch())
        )
    }

    /// Hands the change to the `--on-change` command, in the background (the webhook is the
    /// rounds' own).
    fn on_change(&mut self, body: &ChangeBody) {
        if let Some(command) = self.args.on_change.clone() {
            let (quiet, body) = (self.args.json, body.clone());
            self.tasks.spawn(async move { run_on_change(&command, &body, quiet).await });
        }
    }

    /// Forgets the background tasks that ended.
    fn tasks_reap(&mut self) {
        while self.tasks.try_join_next().is_some() {}
    }

    /// Prints the summary, waits for the background tasks and the history; the exit code: 0
    /// when the last round reached the target, 1 when it did not.
    async fn end(mut self) -> ExitCode {
        let summary = self.rounds.watch().summary();
        let text = match self.args.json {
            true => format!("{}\n", json!({ "summary": self.summary_document(&summary) })),
            false => self.summary_text(&summary),
        };
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
        drop(out);
        let waiting = async { while self.tasks.join_next().await.is_some() {} };
        let commands = tokio::time::timeout(TASKS_DEADLINE, waiting).await.is_ok();
        let webhooks = self.rounds.finish(TASKS_DEADLINE).await;
        if !(commands && webhooks) {
            eprintln!("whyrefused: webhooks or --on-change commands still running were stopped");
        }
        if let Some(history) = self.history.take() {
            stored::finish(history).await;
        }
        match self.rounds.watch().last_cause() {
            Some(cause) if cause.is_reachable() => ExitCode::SUCCESS,
            _ => ExitCode::from(exit::UNREACHABLE),
        }
    }

    /// The summary as JSON, with the watch's id and what storing each round cost.
    fn summary_document(&self, summary: &WatchSummary) -> serde_json::Value {
        let storage = self.rounds.storage_us();
        json!({
            "target": self.args.target,
            "watch": self.rounds.settings().id,
            "rounds": summary.rounds,
            "uptime_percent": summary.uptime_percent,
            "causes": summary.causes,
            "change_count": summary.change_count,
            "changes": summary.changes,
            "connect_ms": summary.connect_ms,
            "storage_us": {
                "p50": percentile(&storage, 50.0),
                "p99": percentile(&storage, 99.0),
                "max": storage.last(),
            },
        })
    }

    fn summary_text(&self, summary: &WatchSummary) -> String {
        let bold = self.colors.bold;
        let mut text = format!(
            "\n{bold}{}: {} rounds, up {:.1}% of them{bold:#}\n",
            self.args.target, summary.rounds, summary.uptime_percent
        );
        let causes: Vec<String> =
            summary.causes.iter().map(|(cause, count)| format!("{cause} {count}")).collect();
        text.push_str(&format!("  causes: {}\n", causes.join(", ")));
        match summary.change_count {
            0 => text.push_str("  no change\n"),
            count => text.push_str(&format!("  {count} change(s):\n")),
        }
        for change in &summary.changes {
            let stored =
                change.result.as_deref().map_or_else(String::new, |id| format!(" (result {id})"));
            text.push_str(&format!(
                "    {}  round {}: {} → {}{stored}\n",
                change.at,
                change.round,
                change.from.as_str(),
                change.to.as_str()
            ));
        }
        let ms = |value: Option<f64>| value.map_or_else(|| "-".into(), |ms| format!("{ms:.1} ms"));
        let latency = summary.connect_ms;
        text.push_str(&format!(
            "  connect time: p50 {}, p95 {}, max {}\n",
            ms(latency.p50),
            ms(latency.p95),
            ms(latency.max)
        ));
        if self.history.is_some() {
            text.push_str(&format!(
                "  stored as watch {} (whyrefused history {})\n",
                self.rounds.settings().id,
                self.args.target
            ));
        }
        text
    }
}

/// Runs one check to its end; its report.
async fn checked(plan: &CheckPlan) -> CheckReport {
    let mut report = CheckReport::default();
    check::run(plan, |event| report.apply(&event)).await;
    report
}

/// The recent rounds as bars: connect time scaled to the slowest, `×` for a round that did not
/// reach the target.
fn sparkline(watch: &Watch) -> String {
    let slowest = watch.recent().filter_map(|r| r.connect_ms).fold(0.0_f64, f64::max);
    watch
        .recent()
        .map(|recent| match (recent.reachable, recent.connect_ms) {
            (false, _) => '×',
            (true, Some(ms)) if slowest > 0.0 => {
                BARS[((ms / slowest) * (BARS.len() - 1) as f64).round() as usize]
            }
            (true, _) => BARS[0],
        })
        .collect()
}

/// Runs `--on-change` with the change in its environment (its output to this one's, but for
/// `--json`, where standard output carries only JSON).
async fn run_on_change(command: &str, body: &ChangeBody, quiet: bool) {
    let mut child = tokio::process::Command::new("sh");
    child
        .arg("-c")
        .arg(command)
        .env("WHYREFUSED_TARGET", &body.target)
        .env("WHYREFUSED_OLD_CAUSE", &body.old_cause)
        .env("WHYREFUSED_NEW_CAUSE", &body.new_cause)
        .env("WHYREFUSED_SUMMARY", &body.summary)
        .env("WHYREFUSED_AT", &body.at)
        .env("WHYREFUSED_ROUND", body.round.to_string())
        .env("WHYREFUSED_RESULT", body.result.as_deref().unwrap_or(""))
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if quiet {
        child.stdout(Stdio::null());
    }
    match child.status().await {
        Ok(status) if status.success() => {}
        Ok(status) => eprintln!("whyrefused: --on-change ended with {status}"),
        Err(error) => eprintln!("whyrefused: --on-change could not run: {error}"),
    }
}
