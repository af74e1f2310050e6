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
use std::time::{Duration, Instant, SystemTime};

use clap::Args;
use serde::Serialize;
use serde_json::json;
use tokio::task::JoinSet;
use whyrefused_shared::{CheckReport, CheckRequest, DEFAULT_TIMEOUT_MS};

use super::history::{self as stored, HistoryArgs};
use super::report::{self, Colors};
use super::{exit, fail, via};
use crate::check::{self, CheckPlan, TraceWhen};
use crate::history::{Asker, Entry, History, formats};
use crate::policy::TargetPolicy;
use crate::watch::webhook::{ChangeBody, Webhook, WebhookUrl};
use crate::watch::{Change, Watch, WatchSummary, percentile};

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
    /// With --via: the one vantage point to run from (local is the hub itself).
    #[arg(long, value_name = "NAME", requires = "via", default_value = "local")]
    from: String,
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
}

/// What a running watch holds besides its [`Watch`].
struct Watcher {
    args: WatchArgs,
    /// The check each round asks for.
    request: CheckRequest,
    plan: CheckPlan,
    /// The hub the rounds run through, with `--via`.
    hub: Option<via::Hub>,
    history: Option<History>,
    /// This watch's id, stored with each round.
    id: String,
    webhook: Option<Webhook>,
    colors: Colors,
    /// Webhook deliveries and `--on-change` commands still running.
    tasks: JoinSet<()>,
    /// How long each round spent handing its result to the history, in microseconds.
    storage_us: Vec<f64>,
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
    let hub = match args.via.as_deref() {
        None => None,
        Some(url) => {
            let pin = args.tls_fingerprint.as_deref();
            match via::Hub::new(url, pin, args.token_file.as_deref()) {
                Ok(hub) => Some(hub),
                Err(error) => return fail(exit::INVALID_INPUT, &error),
            }
        }
    };
    // Through a hub, the hub stores each round (as it does a check --via).
    let opened = match hub {
        Some(_) => None,
        None => stored::opened(&args.history).await,
    };
    let history = match opened {
        None => None,
        Some(Ok(history)) => Some(history),
        Some(Err(error)) => {
            eprintln!("whyrefused: the rounds will not be stored in the history: {error}");
            None
        }
    };
    let colors = Colors::for_stdout(std::io::stdout().is_terminal());
    let mut watcher = Watcher {
        args,
        request,
        plan,
        hub,
        history,
        id: formats::new_id(),
        webhook,
        colors,
        tasks: JoinSet::new(),
        storage_us: Vec::new(),
    };
    let watch = watcher.rounds().await;
    watcher.end(&watch).await
}

impl Watcher {
    /// Runs rounds until `--count` or Ctrl-C; returns what they saw.
    async fn rounds(&mut self) -> Watch {
        let mut watch = Watch::default();
        let mut ticks = tokio::time::interval(self.args.every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let interrupted = tokio::signal::ctrl_c();
        tokio::pin!(interrupted);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = &mut interrupted => break,
            }
            let at = crate::clock::now().0;
            let report = tokio::select! {
                report = self.round(&watch) => report,
                _ = &mut interrupted => break,
            };
            let result = self.store(&at, &report);
            let observed = watch.observe(&at, &report, result.clone());
            self.show(&watch, observed.round, observed.changed, &at, &report, result.as_deref());
            if observed.changed {
                let change = watch.last_change();
                self.announce(change, &report);
            }
            self.tasks_reap();
            if self.args.count.is_some_and(|count| observed.round >= count) {
                break;
            }
        }
        watch
    }

    /// One round: a check without the path trace; when its cause is new, the full diagnosis.
    async fn round(&self, watch: &Watch) -> CheckReport {
        let report = self.check(false).await;
        let cause = report.verdict.as_ref().map(|verdict| verdict.cause);
        match cause.is_some_and(|cause| !watch.needs_diagnosis(cause)) {
            true => report,
            false => self.check(true).await,
        }
    }

    /// One check, here or through the hub; with `diagnose`, the path traced whatever the
    /// outcome, else never.
    async fn check(&self, diagnose: bool) -> CheckReport {
        let Some(hub) = &self.hub else {
            let trace = if diagnose { TraceWhen::Always } else { TraceWhen::Never };
            return checked(&CheckPlan { trace, ..self.plan.clone() }).await;
        };
        let request = CheckRequest { trace: diagnose, no_trace: !diagnose, ..self.request.clone() };
        match via::check_from(hub.clone(), request, &self.args.from).await {
            Ok(report) => report,
            Err(error) => {
                // The round counts as unknown; the watch goes on (the hub may come back).
                eprintln!("whyrefused: this round could not run through the hub: {error}");
                CheckReport::default()
            }
        }
    }

    /// Hands the round that started `at` to the history; its id.
    fn store(&mut self, at: &str, report: &CheckReport) -> Option<String> {
        let history = self.history.as_ref()?;
        let asker = Asker {
            vantage: "local".into(),
            token: None,
            source: "watch",
            watch: Some(self.id.clone()),
        };
        let mut entry = Entry::of_check(report, asker, SystemTime::now())?;
        // The round's start, not its diagnosis's: the time the change was seen.
        if let Ok(started) = humantime::parse_rfc3339(at) {
            entry.started_ms = formats::unix_ms(started);
        }
        let start = Instant::now();
        let id = history.record(entry);
        self.storage_us.push(start.elapsed().as_secs_f64() * 1e6);
        Some(id)
    }

    /// Prints the round: a JSON line, or a line on the terminal (and the report on a change).
    fn show(
        &self,
        watch: &Watch,
        round: u64,
        changed: bool,
        at: &str,
        report: &CheckReport,
        result: Option<&str>,
    ) {
        let text = match self.args.json {
            true => {
                let watch = RoundInfo { round, changed, at, result };
                let line = serde_json::to_string(&RoundLine { watch, report }).unwrap_or_default();
                format!("{line}\n")
            }
            false => {
                let mut text = self.line(watch, round, at, report);
                if changed || round == 1 {
                    text.push_str(&report::render(report, self.colors));
                }
                text
            }
        };
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    }

    /// `2026-12-02T09:00:01.123Z  #12  ✓ reachable   0.1 ms  ▁▂▁█`
    fn line(&self, watch: &Watch, round: u64, at: &str, report: &CheckReport) -> String {
        let (mark, cause, style) = match &report.verdict {
            Some(verdict) => (
                if verdict.cause.is_reachable() { "✓" } else { "✗" },
                verdict.cause.as_str(),
                self.colors.for_severity(verdict.cause.severity()),
            ),
            None => ("?", "unknown", self.colors.warn),
        };
        let connect = crate::history::record::connect_us(report)
            .map_or_else(|| "-".to_string(), |us| format!("{:.1} ms", us as f64 / 1000.0));
        let time = at.get(..23).map_or_else(|| at.to_string(), |ms| format!("{ms}Z"));
        let dim = self.colors.dim;
        format!(
            "{dim}{time}{dim:#}  #{round:<5} {style}{mark} {cause:<22}{style:#} {connect:>9}  {}\n",
            sparkline(watch)
        )
    }

    /// Sends the change to the webhook and the `--on-change` command, in the background.
    fn announce(&mut self, change: Option<Change>, report: &CheckReport) {
        let Some(change) = change else { return };
        let vantage = if self.hub.is_some() { self.args.from.as_str() } else { "local" };
        let body = ChangeBody::new(&self.args.target, vantage, &change, report);
        if let Some(webhook) = self.webhook.clone() {
            let body = body.clone();
            self.tasks.spawn(async move {
                if let Err(error) = webhook.deliver(&body).await {
                    eprintln!(
                        "whyrefused: the change of round {} was not delivered: {error}",
                        body.round
                    );
                }
            });
        }
        if let Some(command) = self.args.on_change.clone() {
            let quiet = self.args.json;
            self.tasks.spawn(async move { run_on_change(&command, &body, quiet).await });
        }
    }

    /// Forgets the background tasks that ended.
    fn tasks_reap(&mut self) {
        while self.tasks.try_join_next().is_some() {}
    }

    /// Prints the summary, waits for the background tasks and the history; the exit code: 0
    /// when the last round reached the target, 1 when it did not.
    async fn end(mut self, watch: &Watch) -> ExitCode {
        let summary = watch.summary();
        let text = match self.args.json {
            true => format!("{}\n", json!({ "summary": self.summary_document(&summary) })),
            false => self.summary_text(&summary),
        };
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
        drop(out);
        let waiting = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(TASKS_DEADLINE, waiting).await.is_err() {
            eprintln!("whyrefused: webhooks or --on-change commands still running were stopped");
        }
        if let Some(history) = self.history.take() {
            stored::finish(history).await;
        }
        match watch.last_cause() {
            Some(cause) if cause.is_reachable() => ExitCode::SUCCESS,
            _ => ExitCode::from(exit::UNREACHABLE),
        }
    }

    /// The summary as JSON, with the watch's id and what storing each round cost.
    fn summary_document(&self, summary: &WatchSummary) -> serde_json::Value {
        let mut storage = self.storage_us.clone();
        storage.sort_by(f64::total_cmp);
        json!({
            "target": self.args.target,
            "watch": self.id,
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
                self.id, self.args.target
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
