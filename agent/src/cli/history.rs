//! `whyrefused history [TARGET]`: the stored results, newest first, from this host's history
//! file, or from an agent's through its HTTP API (`--via URL`); and the history settings every
//! command that runs checks shares (`--state-dir`, `--no-history`, `--keep`, `--keep-size`).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use clap::Args;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::report::escape;
use super::{exit, fail, via};
use crate::history::{self, Entry, History, Query, Retention, Summary, formats};
use crate::join::dial::{self, HubUrl};

/// How long a command waits at its end for its results to be written.
const FLUSH_DEADLINE: Duration = Duration::from_secs(10);

/// The most bytes an API answer may take.
const MAX_ANSWER_BYTES: u64 = 64 << 20;

/// Where results are stored and for how long (`serve`, `check`, `scan`, `watch`).
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Where whyrefused keeps what it makes for itself: the history (history.sqlite), an
    /// agent's self-signed certificate and agent id (default: $STATE_DIRECTORY, else
    /// $XDG_STATE_HOME/whyrefused, else ~/.local/state/whyrefused).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Store nothing in the history.
    #[arg(long)]
    pub no_history: bool,
    /// Forget stored results older than this: 30s, 10m, 24h, 30d.
    #[arg(long, value_name = "AGE", default_value = "30d", value_parser = formats::parse_duration)]
    pub keep: Duration,
    /// Forget the oldest results while the history holds more than this: 500MB, 2GB, 64MiB.
    #[arg(long, value_name = "SIZE", default_value = "500MB", value_parser = formats::parse_size)]
    pub keep_size: u64,
}

impl HistoryArgs {
    /// The state directory.
    pub fn state_dir(&self) -> PathBuf {
        self.state_dir.clone().unwrap_or_else(crate::server::tls::default_state_dir)
    }

    /// The history file.
    pub fn file(&self) -> PathBuf {
        history::file_in(&self.state_dir())
    }

    /// What the history keeps.
    pub fn retention(&self) -> Retention {
        Retention { max_age: Some(self.keep), max_bytes: Some(self.keep_size) }
    }

    /// Opens the history, unless `--no-history`; blocking (SQLite's open and migrations).
    pub fn open(&self) -> Option<Result<History, history::StoreError>> {
        (!self.no_history).then(|| History::open(&self.file(), self.retention()))
    }
}

/// Stores `entry` and waits until it is written; says on standard error when it is not (the
/// command's own outcome stands).
pub async fn store(args: &HistoryArgs, entry: Option<Entry>) {
    store_all(args, entry.into_iter().collect()).await;
}

/// Stores `entries` (the checks of one command) and waits until they are written; says on
/// standard error when they are not.
pub async fn store_all(args: &HistoryArgs, entries: Vec<Entry>) {
    if entries.is_empty() {
        return;
    }
    let history = match opened(args).await {
        None => return,
        Some(Ok(history)) => history,
        Some(Err(error)) => {
            eprintln!("whyrefused: the result was not stored in the history: {error}");
            return;
        }
    };
    for entry in entries {
        history.record(entry);
    }
    finish(history).await;
}

/// Opens the history off the runtime's workers (`None` with `--no-history`).
pub async fn opened(args: &HistoryArgs) -> Option<Result<History, history::StoreError>> {
    let (file, retention, off) = (args.file(), args.retention(), args.no_history);
    if off {
        return None;
    }
    let opening = tokio::task::spawn_blocking(move || History::open(&file, retention));
    Some(
        opening
            .await
            .unwrap_or_else(|error| Err(history::StoreError::Interrupted(error.to_string()))),
    )
}

/// Waits for `history`'s writes; says on standard error what was not stored. Whether all was.
pub async fn finish(history: History) -> bool {
    let flushing = history.clone();
    let flushed =
        tokio::task::spawn_blocking(move || flushing.flush(FLUSH_DEADLINE)).await.unwrap_or(false);
    let (lost, reason) = history.lost();
    if !flushed {
        eprintln!(
            "whyrefused: the history ({}) did not finish writing within {} s: the last results \
             may not be stored",
            history.path().display(),
            FLUSH_DEADLINE.as_secs()
        );
    }
    if lost > 0 {
        let reason = reason.unwrap_or_default();
        eprintln!("whyrefused: {lost} result(s) were not stored in the history: {reason}");
    }
    flushed && lost == 0
}

#[derive(Debug, Args)]
pub struct HistoryCommandArgs {
    /// Only this target: host:port (its checks of that port) or a host (everything about it).
    target: Option<String>,
    /// Only results since this time: a duration back from now (30s, 10m, 24h, 30d) or an RFC
    /// 3339 time in UTC (2026-12-02T09:00:00Z).
    #[arg(long, value_name = "WHEN")]
    since: Option<String>,
    /// At most this many results, newest first.
    #[arg(long, default_value_t = history::DEFAULT_LIMIT, value_parser = parse_limit)]
    limit: usize,
    /// Print the API's JSON document ({"results": [...]}).
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Print CSV (a header line, then one line a result).
    #[arg(long)]
    csv: bool,
    /// Where the history file is (as for serve and check).
    #[arg(long, value_name = "DIR", conflicts_with = "via")]
    state_dir: Option<PathBuf>,
    /// Read an agent's (a hub's) history through its HTTP API instead: its WebSocket URL, as
    /// for check --via (ws://127.0.0.1:7070, wss://hub.example:7070).
    #[arg(long, value_name = "URL")]
    via: Option<String>,
    /// The agent's token file: its first secret is presented (else WHYREFUSED_TOKEN).
    #[arg(long, requires = "via")]
    token_file: Option<PathBuf>,
    /// For a wss:// agent with a self-signed certificate: the SHA-256 fingerprint it printed.
    #[arg(long, requires = "via")]
    tls_fingerprint: Option<String>,
}

fn parse_limit(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n @ 1..=history::MAX_LIMIT) => Ok(n),
        _ => Err(format!("'{text}' is not a number from 1 to {}", history::MAX_LIMIT)),
    }
}

/// The API's list document, as read back.
#[derive(Debug, Deserialize)]
struct Listing {
    results: Vec<Summary>,
}

/// Runs `whyrefused history`.
pub async fn run(args: HistoryCommandArgs) -> ExitCode {
    if let Some(since) = &args.since
        && let Err(error) = formats::parse_since(since, SystemTime::now())
    {
        return fail(exit::INVALID_INPUT, &format!("--since: {error}"));
    }
    let filter = match args.target.as_deref().map(history::target_filter).transpose() {
        Ok(filter) => filter,
        Err(error) => return fail(exit::INVALID_INPUT, &format!("the target: {error}")),
    };
    let output = match &args.via {
        Some(url) => through_api(&args, url).await,
        None => from_file(&args, filter).await,
    };
    match output {
        Ok(text) => match std::io::stdout().write_all(text.as_bytes()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => fail(exit::INTERNAL, &format!("cannot write the history: {error}")),
        },
        Err((code, message)) => fail(code, &message),
    }
}

/// Reads this host's history file.
async fn from_file(
    args: &HistoryCommandArgs,
    filter: Option<(String, Option<u16>)>,
) -> Result<String, (u8, String)> {
    let dir = args.state_dir.clone().unwrap_or_else(crate::server::tls::default_state_dir);
    let file = history::file_in(&dir);
    if !file.exists() {
        return Err((
            exit::UNREACHABLE,
            format!("no history at {}: nothing was stored there yet", file.display()),
        ));
    }
    let (host, port) = filter.map_or((None, None), |(host, port)| (Some(host), port));
    let since_ms = args
        .since
        .as_deref()
        .and_then(|since| formats::parse_since(since, SystemTime::now()).ok())
        .map(formats::unix_ms);
    let query = Query { host, port, since_ms, watch: None, limit: args.limit };
    let read =
        tokio::task::spawn_blocking(move || history::Store::open_read_only(&file)?.query(&query));
    let results = read
        .await
        .map_err(|error| (exit::INTERNAL, error.to_string()))?
        .map_err(|error| (exit::INTERNAL, error.to_string()))?;
    render(args, &results).map_err(|error| (exit::INTERNAL, error))
}

/// The results in the format asked for.
fn render(args: &HistoryCommandArgs, results: &[Summary]) -> Result<String, String> {
    if args.csv {
        return Ok(history::csv::render(results));
    }
    if args.json {
        let document = serde_json::json!({ "results": results });
        return serde_json::to_string_pretty(&document)
            .map(|json| json + "\n")
            .map_err(|error| format!("cannot encode the history: {error}"));
    }
    Ok(table(results))
}

/// One line a result: when, id, kind, target, vantage, cause, connect time, summary.
fn table(results: &[Summary]) -> String {
    if results.is_empty() {
        return "no stored results\n".into();
    }
    let width = results.iter().map(|r| r.target.chars().count()).max().unwrap_or(0).min(40);
    let mut out = String::new();
    for result in results {
        let connect = result.connect_ms.map_or_else(|| "-".to_string(), |ms| format!("{ms:.1} ms"));
        out.push_str(&format!(
            "{}  {}  {:<5} {:<width$}  {:<8} {:<22} {:>9}  {}\n",
            result.at,
            result.id,
            result.kind.as_str(),
            escape(&result.target),
            escape(&result.vantage),
            result.cause.as_deref().unwrap_or("-"),
            connect,
            escape(result.summary.as_deref().unwrap_or("")),
        ));
    }
    out
}

/// Reads an agent's history through `GET /api/results` (`.csv` for `--csv`).
async fn through_api(args: &HistoryCommandArgs, url: &str) -> Result<String, (u8, String)> {
    let invalid = |message: String| (exit::INVALID_INPUT, message);
    let hub =
        HubUrl::parse(url, args.tls_fingerprint.as_deref()).map_err(|e| invalid(e.to_string()))?;
    let token = via::token(args.token_file.as_deref()).map_err(invalid)?;
    let mut path =
        format!("/api/results{}?limit={}", if args.csv { ".csv" } else { "" }, args.limit);
    if let Some(target) = &args.target {
        path.push_str(&format!("&target={}", percent_encode(target)));
    }
    if let Some(since) = &args.since {
        path.push_str(&format!("&since={}", percent_encode(since)));
    }
    let token = token.as_ref().map(|secret| secret.expose().to_string());
    let (status, body) =
        http_get(&hub, &path, token.as_deref()).await.map_err(|error| (exit::INTERNAL, error))?;
    let text = String::from_utf8_lossy(&body).into_owned();
    match status {
        200 => {}
        401 | 403 => {
            return Err((
                exit::INVALID_INPUT,
                format!("the agent at {hub} refused: {}", text.trim()),
            ));
        }
        _ => {
            return Err((
                exit::INTERNAL,
                format!("the agent at {hub} answered {status}: {}", text.trim()),
            ));
        }
    }
    if args.csv {
        return Ok(text);
    }
    let listing: Listing = serde_json::from_str(&text).map_err(|error| {
        (exit::INTERNAL, format!("the agent's answer is not a history: {error}"))
    })?;
    render(args, &listing.results).map_err(|error| (exit::INTERNAL, error))
}

/// `text` percent-encoded for a query string (everything but unreserved characters).
pub(super) fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// One HTTP/1.1 GET to the agent (TLS as its URL says), `Connection: close`; the status and
/// the body.
async fn http_get(hub: &HubUrl, path: &str, token: Option<&str>) -> Result<(u16, Vec<u8>), String> {
    http_request(hub, "GET", path, token, None).await
}

/// One HTTP/1.1 request to the agent's API (TLS as its URL says), `Connection: close`, with a
/// JSON body when given; the status and the body.
pub(super) async fn http_request(
    hub: &HubUrl,
    method: &str,
    path: &str,
    token: Option<&str>,
    json: Option<&[u8]>,
) -> Result<(u16, Vec<u8>), String> {
    let mut stream = dial::connect(hub)
        .await
        .map_err(|error| format!("{error} (is `whyrefused serve` running there?)"))?;
    let authorization =
        token.map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"));
    let content = json.map_or_else(String::new, |body| {
        format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len())
    });
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\n{authorization}{content}Accept: */*\r\nConnection: close\r\n\r\n",
        hub.authority()
    )
    .into_bytes();
    request.extend_from_slice(json.unwrap_or_default());
    let exchange = async {
        stream.write_all(&request).await?;
        let mut answer = Vec::new();
        (&mut stream).take(MAX_ANSWER_BYTES).read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    let answer = tokio::time::timeout(dial::DIAL_TIMEOUT * 3, exchange)
        .await
        .map_err(|_| format!("the agent at {hub} did not answer in time"))?
        .map_err(|error| format!("reading from the agent at {hub}: {error}"))?;
    parse_response(&answer).ok_or_else(|| format!("the agent at {hub} sent no HTTP answer"))
}

/// The status and body of a whole HTTP/1.1 response (its body plain or chunked).
fn parse_response(answer: &[u8]) -> Option<(u16, Vec<u8>)> {
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&answer[..split]).ok()?;
    let body = &answer[split + 4..];
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let chunked = head.lines().any(|line| {
        let line = line.to_ascii_lowercase();
        line.starts_with("transfer-encoding:") && line.contains("chunked")
    });
    Some((status, if chunked { dechunk(body)? } else { body.to_vec() }))
}

/// A chunked body's bytes.
fn dechunk(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&body[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(body.get(..size)?);
        body = body.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_are_read_plain_or_chunked() {
        let plain = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi";
        assert_eq!(parse_response(plain), Some((200, b"hi".to_vec())));
        let chunked = b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked), Some((404, b"abcde".to_vec())));
        assert_eq!(parse_response(b"garbage"), None);
    }

    #[test]
    fn query_values_are_percent_encoded_and_control_characters_escaped() {
        assert_eq!(percent_encode("db:5432"), "db%3A5432");
        assert_eq!(percent_encode("2026-12-02T09:00:00Z"), "2026-12-02T09%3A00%3A00Z");
        assert_eq!(escape("a\u{1b}[31mb"), "a\\u{1b}[31mb");
    }
}
