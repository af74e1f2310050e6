//! `whyrefused watches`: an agent's own watches through its HTTP API (`/api/watches`): list
//! them, make one (`--add TARGET --every 10s`), stop one (`--stop ID`). The agent is the local
//! one at ws://127.0.0.1:7070 unless `--via` names another (its WebSocket URL, as for `check
//! --via`; an http(s):// URL is read as the same agent).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use whyrefused_shared::{
    CheckRequest, DEFAULT_TIMEOUT_MS, WatchInfo, WatchListing, WatchSpec, WatchState,
};

use super::history::{http_request, percent_encode};
use super::report::escape;
use super::{exit, fail, via};
use crate::join::dial::HubUrl;

/// The agent `whyrefused watches` talks to unless `--via` says another.
const LOCAL_AGENT: &str = "ws://127.0.0.1:7070";

#[derive(Debug, Args)]
pub struct WatchesArgs {
    /// Make a watch of this target that runs inside the agent (it goes on when this command
    /// ends, and across the agent's restarts): host:port, [v6]:port, scheme://host[:port]/path.
    #[arg(long, value_name = "TARGET", conflicts_with = "stop")]
    add: Option<String>,
    /// With --add: the time between the starts of two rounds (10ms, 30s, 10m; at least the
    /// agent's serve --min-watch-every).
    #[arg(long, value_name = "DURATION", default_value = "10s", requires = "add")]
    every: String,
    /// With --add: stop after this many rounds (default: until stopped).
    #[arg(long, value_name = "N", requires = "add")]
    count: Option<u64>,
    /// With --add: the vantage points to run from, comma-separated (local is the agent
    /// itself, all every online one); default local.
    #[arg(long, value_name = "NAMES", value_delimiter = ',', requires = "add")]
    from: Vec<String>,
    /// With --add and several vantage points: down when N of the M fail (2/3).
    #[arg(long, value_name = "N/M", requires = "add")]
    quorum: Option<String>,
    /// With --add: POST each change to this URL (it obeys the agent's target policy).
    #[arg(long, value_name = "URL", requires = "add")]
    webhook: Option<String>,
    /// With --add: the connect deadline for each address, in milliseconds.
    #[arg(long, default_value_t = DEFAULT_TIMEOUT_MS, requires = "add")]
    timeout_ms: u32,
    /// Stop the watch with this id (it stays listed as stopped).
    #[arg(long, value_name = "ID")]
    stop: Option<String>,
    /// The agent's WebSocket URL (default the local agent, ws://127.0.0.1:7070, that is
    /// http://127.0.0.1:7070); http:// and https:// URLs are taken too.
    #[arg(long, value_name = "URL")]
    via: Option<String>,
    /// The agent's token file: its first secret is presented (else WHYREFUSED_TOKEN).
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// For a wss:// agent with a self-signed certificate: the SHA-256 fingerprint it printed.
    #[arg(long)]
    tls_fingerprint: Option<String>,
    /// Print the API's JSON document instead of a table.
    #[arg(long)]
    json: bool,
}

/// An API call that failed: the exit code and the line to print.
type Failed = (u8, String);

/// Runs `whyrefused watches`.
pub async fn run(args: WatchesArgs) -> ExitCode {
    let output = match call(&args).await {
        Ok(text) => text,
        Err((code, message)) => return fail(code, &message),
    };
    match std::io::stdout().write_all(output.as_bytes()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(exit::INTERNAL, &format!("cannot write the watches: {error}")),
    }
}

/// The agent's URL as a WebSocket URL (`http://` read as `ws://`, `https://` as `wss://`).
fn agent_url(via: Option<&str>) -> String {
    let url = via.unwrap_or(LOCAL_AGENT);
    if let Some(rest) = url.strip_prefix("http://") {
        return format!("ws://{rest}");
    }
    if let Some(rest) = url.strip_prefix("https://") {
        return format!("wss://{rest}");
    }
    url.to_string()
}

async fn call(args: &WatchesArgs) -> Result<String, Failed> {
    let invalid = |message: String| (exit::INVALID_INPUT, message);
    let url = agent_url(args.via.as_deref());
    let agent =
        HubUrl::parse(&url, args.tls_fingerprint.as_deref()).map_err(|e| invalid(e.to_string()))?;
    let token = via::token(args.token_file.as_deref()).map_err(invalid)?;
    let token = token.as_ref().map(|secret| secret.expose().to_string());
    let token = token.as_deref();
    if let Some(id) = &args.stop {
        let path = format!("/api/watches/{}", percent_encode(id));
        let (status, body) = http_request(&agent, "DELETE", &path, token, None)
            .await
            .map_err(|error| (exit::INTERNAL, error))?;
        answer(&agent, status, &body)?;
        return Ok(format!("stopped watch {id}\n"));
    }
    if let Some(target) = &args.add {
        let spec = spec_of(args, target);
        let json = serde_json::to_vec(&spec).unwrap_or_default();
        let (status, body) = http_request(&agent, "POST", "/api/watches", token, Some(&json))
            .await
            .map_err(|error| (exit::INTERNAL, error))?;
        answer(&agent, status, &body)?;
        let info: WatchInfo = serde_json::from_slice(&body).map_err(|error| {
            (exit::INTERNAL, format!("the agent's answer is not a watch: {error}"))
        })?;
        return Ok(match args.json {
            true => pretty(&info)?,
            false => format!(
                "watch {} made: {} every {} (whyrefused watches --stop {} ends it)\n",
                info.id, info.spec.check.target, info.spec.every, info.id
            ),
        });
    }
    let (status, body) = http_request(&agent, "GET", "/api/watches", token, None)
        .await
        .map_err(|error| (exit::INTERNAL, error))?;
    answer(&agent, status, &body)?;
    let listing: WatchListing = serde_json::from_slice(&body).map_err(|error| {
        (exit::INTERNAL, format!("the agent's answer is not a watch list: {error}"))
    })?;
    match args.json {
        true => pretty(&listing),
        false => Ok(table(&listing)),
    }
}

/// The spec `--add` asks for.
fn spec_of(args: &WatchesArgs, target: &str) -> WatchSpec {
    WatchSpec {
        check: CheckRequest { timeout_ms: Some(args.timeout_ms), ..CheckRequest::new(target) },
        every: args.every.clone(),
        count: args.count,
        from: args.from.clone(),
        quorum: args.quorum.clone(),
        webhook: args.webhook.clone(),
    }
}

/// Turns the agent's refusal into a failure: the user's to fix (exit 2) when it is about what
/// was asked (a token, an id, a field), else the agent's (exit 3).
fn answer(agent: &HubUrl, status: u16, body: &[u8]) -> Result<(), Failed> {
    let text = String::from_utf8_lossy(body);
    let said = text.trim();
    match status {
        200..=299 => Ok(()),
        400 | 401 | 403 | 404 | 409 | 413 | 415 | 422 => {
            Err((exit::INVALID_INPUT, format!("the agent at {agent} refused: {said}")))
        }
        _ => Err((exit::INTERNAL, format!("the agent at {agent} answered {status}: {said}"))),
    }
}

fn pretty(value: &impl serde::Serialize) -> Result<String, Failed> {
    serde_json::to_string_pretty(value)
        .map(|json| json + "\n")
        .map_err(|error| (exit::INTERNAL, format!("cannot encode the answer: {error}")))
}

/// One line a watch: id, state, target, every, vantage points, rounds, uptime, last cause.
fn table(listing: &WatchListing) -> String {
    let mut out = format!(
        "{} watch(es); at most {} run at once, every {} at the shortest\n",
        listing.watches.len(),
        listing.max_running,
        listing.min_every
    );
    if listing.watches.is_empty() {
        return out;
    }
    out.push_str(&format!(
        "{:<10}  {:<9} {:<28} {:>6}  {:<16} {:>6} {:>7}  {:<14} {}\n",
        "ID", "STATE", "TARGET", "EVERY", "FROM", "ROUNDS", "UP", "LAST", "MADE"
    ));
    for watch in &listing.watches {
        let state = match &watch.state {
            WatchState::Running => "running".to_string(),
            WatchState::Stopped { by: Some(by), .. } => format!("stopped by {}", escape(by)),
            WatchState::Stopped { .. } => "stopped".into(),
            WatchState::Finished { .. } => "finished".into(),
        };
        let from = match watch.spec.from.is_empty() {
            true => "local".to_string(),
            false => watch.spec.from.join(","),
        };
        let from = match &watch.spec.quorum {
            Some(quorum) => format!("{from} ({quorum})"),
            None => from,
        };
        let last = watch.last.as_ref().map_or("-", |round| round.cause.as_str());
        let made = match &watch.created_by {
            Some(by) => format!("{} by {}", watch.created_at, escape(by)),
            None => watch.created_at.clone(),
        };
        out.push_str(&format!(
            "{:<10}  {:<9} {:<28} {:>6}  {:<16} {:>6} {:>6.1}%  {:<14} {made}\n",
            watch.id,
            state,
            escape(&watch.spec.check.target),
            escape(&watch.spec.every),
            escape(&from),
            watch.summary.rounds,
            watch.summary.uptime_percent,
            last,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agent_is_the_local_one_unless_named_and_http_urls_are_read_as_its_socket() {
        assert_eq!(agent_url(None), "ws://127.0.0.1:7070");
        assert_eq!(agent_url(Some("http://127.0.0.1:9000")), "ws://127.0.0.1:9000");
        assert_eq!(agent_url(Some("https://hub.example:7070/")), "wss://hub.example:7070/");
        assert_eq!(agent_url(Some("wss://hub.example")), "wss://hub.example");
    }

    #[test]
    fn a_refusal_about_what_was_asked_is_the_users_to_fix() {
        let agent = HubUrl::parse("ws://127.0.0.1:7070", None).unwrap();
        assert_eq!(answer(&agent, 404, b"no watch x on this agent\n").unwrap_err().0, 2);
        assert_eq!(answer(&agent, 401, b"needs a token").unwrap_err().0, 2);
        assert_eq!(answer(&agent, 500, b"disk").unwrap_err().0, 3);
        let (_, line) = answer(&agent, 422, b"every: too short\n").unwrap_err();
        assert!(line.ends_with("refused: every: too short"), "{line}");
    }
}
