//! `--via URL`: commands run through a hub, from its vantage points (`agents`, `check --from`,
//! `scan --from`). The client side of the protocol: dial, hello with the token, one request,
//! its events folded per vantage point, and the cross-vantage verdict.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use futures::{SinkExt, StreamExt};
use serde::Serialize;
use tokio_tungstenite::tungstenite::Message;
use whyrefused_shared::{
    AgentMessage, CheckReport, CheckRequest, ClientMessage, CrossVerdict, ErrorCode,
    PROTOCOL_VERSION, RequestId, ScanReport, ScanRequest, VantageInfo, version_warning,
};

use super::report::{self, Colors};
use super::{exit, fail};
use crate::join::dial::{self, HubSocket, HubUrl};
use crate::tokens::{Secret, Tokens};
use crate::watch::quorum::Part;

/// The one request a CLI run sends.
const REQUEST: RequestId = RequestId(1);

/// The variable a token may come from instead of `--token-file`.
pub const TOKEN_VARIABLE: &str = "WHYREFUSED_TOKEN";

/// The token to present: the first secret of `--token-file`, else `WHYREFUSED_TOKEN`.
pub fn token(file: Option<&Path>) -> Result<Option<Secret>, String> {
    if let Some(file) = file {
        let first = Tokens::first(file).map_err(|error| error.to_string())?;
        return Ok(Some(first.secret));
    }
    Ok(std::env::var(TOKEN_VARIABLE).ok().filter(|t| !t.trim().is_empty()).map(Secret::new))
}

/// What to add when the hub refuses a `WHYREFUSED_TOKEN` written as a token file's line.
const NAME_IN_VARIABLE: &str = "WHYREFUSED_TOKEN looks like a token file's line (name:secret): \
     give only the secret, the part after the name";

/// Whether `WHYREFUSED_TOKEN` holds a `name:secret` line (with `--token-file` unused) rather
/// than a bare secret; only said when the hub refuses it, since a secret may hold a ':'.
fn variable_looks_like_a_line(file: Option<&Path>) -> bool {
    file.is_none() && std::env::var(TOKEN_VARIABLE).is_ok_and(|token| token.contains(':'))
}

/// A hub to run through: its checked URL (with how to trust its TLS) and the token to present.
#[derive(Clone)]
pub struct Hub {
    url: HubUrl,
    token: Option<Secret>,
    /// The token came from `WHYREFUSED_TOKEN` written as `name:secret`: said if it is refused.
    token_is_a_line: bool,
}

/// Why a run through a hub failed, with the exit code it earns.
#[derive(Debug)]
pub enum ViaError {
    /// What the user gave is wrong (a refused token, a certificate that is not the pinned one or
    /// from no trusted authority): exit 2, as for any invalid input.
    Input(String),
    /// Anything else (the network, the hub's socket): exit 3.
    Failure(String),
}

impl From<String> for ViaError {
    fn from(message: String) -> ViaError {
        ViaError::Failure(message)
    }
}

impl From<dial::DialError> for ViaError {
    fn from(error: dial::DialError) -> ViaError {
        match error.is_untrusted_certificate() {
            true => ViaError::Input(error.to_string()),
            false => ViaError::Failure(error.to_string()),
        }
    }
}

impl ViaError {
    /// Prints the message and gives the exit code.
    fn exit(self) -> ExitCode {
        match self {
            ViaError::Input(message) => fail(exit::INVALID_INPUT, &message),
            ViaError::Failure(message) => fail(exit::INTERNAL, &message),
        }
    }
}

impl Hub {
    /// Checks what the user gave: the URL, the fingerprint to pin for `wss://`, and the token
    /// from `token_file` or the environment.
    pub fn new(
        url: &str,
        fingerprint: Option<&str>,
        token_file: Option<&std::path::Path>,
    ) -> Result<Hub, String> {
        let url = HubUrl::parse(url, fingerprint).map_err(|error| error.to_string())?;
        let token_is_a_line = variable_looks_like_a_line(token_file);
        Ok(Hub { url, token: token(token_file)?, token_is_a_line })
    }
}

/// A connected, greeted client of a hub.
struct HubClient {
    socket: HubSocket,
    /// See [`Hub::token_is_a_line`].
    token_is_a_line: bool,
}

impl HubClient {
    async fn connect(hub: Hub) -> Result<HubClient, ViaError> {
        let Hub { url, token, token_is_a_line } = hub;
        let (socket, _) = dial::dial(&url).await?;
        let mut client = HubClient { socket, token_is_a_line };
        match client.recv().await? {
            AgentMessage::Hello { protocol, .. } if protocol == PROTOCOL_VERSION => {}
            AgentMessage::Hello { protocol, .. } => {
                return Err(ViaError::Failure(format!(
                    "the agent at {url} speaks protocol {protocol}, this CLI {PROTOCOL_VERSION}: use the same whyrefused version"
                )));
            }
            other => {
                return Err(ViaError::Failure(format!(
                    "the agent at {url} did not say hello: {other:?}"
                )));
            }
        }
        let token = token.map(|secret| secret.expose().to_string());
        client
            .send(&ClientMessage::Hello {
                protocol: PROTOCOL_VERSION,
                client: format!("whyrefused-cli {}", env!("CARGO_PKG_VERSION")),
                token,
            })
            .await?;
        Ok(client)
    }

    /// Closes the socket with a close handshake, as a polite client does.
    async fn close(&mut self) {
        let _ = self.socket.close(None).await;
    }

    async fn send(&mut self, message: &ClientMessage) -> Result<(), String> {
        let json = serde_json::to_string(message).expect("protocol messages serialize");
        self.socket
            .send(Message::text(json))
            .await
            .map_err(|error| format!("the hub's socket failed: {error}"))
    }

    /// The next message; an error about the whole request (or the socket) ends the run.
    async fn recv(&mut self) -> Result<AgentMessage, ViaError> {
        loop {
            match self.socket.next().await {
                Some(Ok(Message::Text(text))) => {
                    let message: AgentMessage = serde_json::from_str(text.as_str())
                        .map_err(|error| format!("the hub sent an unreadable message: {error}"))?;
                    if let AgentMessage::Error { code, message, .. } = &message {
                        return Err(self.refusal(*code, message));
                    }
                    return Ok(message);
                }
                Some(Ok(Message::Close(frame))) => {
                    let reason = frame.map(|f| f.reason.to_string()).unwrap_or_default();
                    let message = format!("the hub closed the socket {reason}");
                    return Err(ViaError::Failure(message.trim_end().to_string()));
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => {
                    return Err(ViaError::Failure(format!("the hub's socket failed: {error}")));
                }
                None => return Err(ViaError::Failure("the hub closed the socket".into())),
            }
        }
    }

    /// The hub's refusal of the whole request; a refused token is the user's to fix.
    fn refusal(&self, code: ErrorCode, message: &str) -> ViaError {
        match (code, self.token_is_a_line) {
            (ErrorCode::Unauthorized, true) => {
                ViaError::Input(format!("the hub refused: {message} ({NAME_IN_VARIABLE})"))
            }
            (ErrorCode::Unauthorized, false) => {
                ViaError::Input(format!("the hub refused: {message}"))
            }
            _ => ViaError::Failure(format!("the hub refused: {message}")),
        }
    }
}

/// `whyrefused agents --via URL`.
pub async fn agents(hub: Hub, json: bool) -> ExitCode {
    let result = async {
        let mut client = HubClient::connect(hub).await?;
        client.send(&ClientMessage::Agents { id: REQUEST }).await?;
        loop {
            if let AgentMessage::Agents { agents, .. } = client.recv().await? {
                client.close().await;
                return Ok::<_, ViaError>(agents);
            }
        }
    };
    let agents = match result.await {
        Ok(agents) => agents,
        Err(error) => return error.exit(),
    };
    let output = if json {
        serde_json::to_string_pretty(&agents).expect("vantage points serialize") + "\n"
    } else {
        render_agents(&agents)
    };
    print(&output)
}

fn render_agents(agents: &[VantageInfo]) -> String {
    let mut out = format!(
        "{:<16} {:<8} {:<10} {:<20} {:<28} ADDRESSES\n",
        "NAME", "STATE", "VERSION", "HOST", "LAST SEEN"
    );
    for agent in agents {
        let state = if agent.online { "online" } else { "offline" };
        let seen = agent.last_seen.as_ref().map_or("-", |t| t.0.as_str());
        let addresses: Vec<String> = agent.addresses.iter().map(ToString::to_string).collect();
        out += &format!(
            "{:<16} {:<8} {:<10} {:<20} {:<28} {}\n",
            agent.name,
            state,
            agent.version,
            agent.hostname,
            seen,
            addresses.join(", ")
        );
    }
    for agent in agents {
        if let Some(warning) = version_warning(agents, agent) {
            out += &format!("warning: {warning}\n");
        }
    }
    out
}

/// Each vantage point's report and what it said beside it.
#[derive(Debug, Serialize)]
struct FromVantage<R> {
    /// The vantage point.
    vantage: String,
    /// Its report.
    report: R,
    /// Its errors (it refused or stopped the request).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<String>,
}

/// What `check --via --json` and `scan --via --json` print.
#[derive(Debug, Serialize)]
struct Results<R> {
    vantages: Vec<FromVantage<R>>,
    verdict: CrossVerdict,
}

fn slot<'a, R: Default>(list: &'a mut Vec<FromVantage<R>>, name: &str) -> &'a mut FromVantage<R> {
    let index = match list.iter().position(|entry| entry.vantage == name) {
        Some(index) => index,
        None => {
            list.push(FromVantage {
                vantage: name.to_string(),
                report: R::default(),
                errors: Vec::new(),
            });
            list.len() - 1
        }
    };
    &mut list[index]
}

/// Runs one request through the hub and folds what comes back per vantage point.
async fn run<R: Default>(
    hub: Hub,
    request: ClientMessage,
    mut apply: impl FnMut(&mut R, &AgentMessage),
) -> Result<Results<R>, ViaError> {
    let mut client = HubClient::connect(hub).await?;
    client.send(&request).await?;
    let mut vantages: Vec<FromVantage<R>> = Vec::new();
    loop {
        let message = client.recv().await?;
        match &message {
            AgentMessage::Event { vantage: Some(name), .. }
            | AgentMessage::Scan { vantage: Some(name), .. } => {
                apply(&mut slot(&mut vantages, name).report, &message);
            }
            AgentMessage::VantageError { vantage, message, .. } => {
                slot(&mut vantages, vantage).errors.push(message.clone());
            }
            AgentMessage::VantagesDone { verdict, .. } => {
                client.close().await;
                // In the order they were asked for, whatever order they finished in.
                let order = |entry: &FromVantage<R>| {
                    verdict.vantages.iter().position(|result| result.name == entry.vantage)
                };
                vantages.sort_by_key(|entry| order(entry).unwrap_or(usize::MAX));
                return Ok(Results { vantages, verdict: verdict.clone() });
            }
            _ => {}
        }
    }
}

/// One check through the hub from the vantage points `from`: each one's part, whatever it
/// says (one that went offline ends without a verdict, its outcome says so); an error only
/// when the hub could not be asked. For `watch --via`.
pub async fn check_parts(
    hub: Hub,
    request: CheckRequest,
    from: &[String],
) -> Result<Vec<Part>, String> {
    let message =
        ClientMessage::Check { id: REQUEST, request, from: Some(from.to_vec()), origin: None };
    let results = run(hub, message, |report: &mut CheckReport, message| {
        if let AgentMessage::Event { event, .. } = message {
            report.apply(event);
        }
    });
    let results = results.await.map_err(|error| match error {
        ViaError::Input(message) | ViaError::Failure(message) => message,
    })?;
    let outcome = |name: &str| {
        let result = results.verdict.vantages.iter().find(|result| result.name == name);
        result.and_then(|result| result.outcome)
    };
    let parts: Vec<Part> = results
        .vantages
        .iter()
        .map(|entry| Part {
            vantage: entry.vantage.clone(),
            report: entry.report.clone(),
            outcome: outcome(&entry.vantage).or(entry.report.outcome),
            errors: entry.errors.clone(),
        })
        .collect();
    match parts.is_empty() {
        true => Err("the hub sent no result".into()),
        false => Ok(parts),
    }
}

/// `whyrefused check TARGET --via URL [--from …]`.
pub async fn check(hub: Hub, request: CheckRequest, from: Vec<String>, json: bool) -> ExitCode {
    let message = ClientMessage::Check { id: REQUEST, request, from: Some(from), origin: None };
    let results = run(hub, message, |report: &mut CheckReport, message| {
        if let AgentMessage::Event { event, .. } = message {
            report.apply(event);
        }
    });
    let results = match results.await {
        Ok(results) => results,
        Err(error) => return error.exit(),
    };
    let colors = Colors::for_stdout(std::io::stdout().is_terminal());
    let output = if json {
        serde_json::to_string_pretty(&results).expect("reports serialize") + "\n"
    } else {
        render(&results, |report| report::render(report, colors))
    };
    let code = print(&output);
    let everywhere = results.vantages.iter().all(|entry| {
        entry.report.verdict.as_ref().is_some_and(|verdict| verdict.cause.is_reachable())
    });
    match (code == ExitCode::SUCCESS, everywhere) {
        (true, true) => ExitCode::SUCCESS,
        (true, false) => ExitCode::from(exit::UNREACHABLE),
        (false, _) => code,
    }
}

/// `whyrefused scan HOST --via URL [--from …]`.
pub async fn scan(
    hub: Hub,
    request: ScanRequest,
    from: Vec<String>,
    json: bool,
    all: bool,
) -> ExitCode {
    let message = ClientMessage::Scan { id: REQUEST, request, from: Some(from), origin: None };
    let results = run(hub, message, |report: &mut ScanReport, message| {
        if let AgentMessage::Scan { event, .. } = message {
            report.apply(event);
        }
    });
    let results = match results.await {
        Ok(results) => results,
        Err(error) => return error.exit(),
    };
    let colors = Colors::for_stdout(std::io::stdout().is_terminal());
    let output = if json {
        let results = Results {
            vantages: results
                .vantages
                .into_iter()
                .map(|entry| FromVantage { report: super::scan::json(&entry.report, all), ..entry })
                .collect(),
            verdict: results.verdict,
        };
        serde_json::to_string_pretty(&results).expect("reports serialize") + "\n"
    } else {
        render(&results, |report| super::scan::render(report, colors, all))
    };
    print(&output)
}

/// Each vantage point's report under its name, then the cross-vantage verdict.
fn render<R>(results: &Results<R>, one: impl Fn(&R) -> String) -> String {
    let mut out = String::new();
    for entry in &results.vantages {
        let outcome = results
            .verdict
            .vantages
            .iter()
            .find(|result| result.name == entry.vantage)
            .and_then(|result| result.outcome);
        out += &format!("── from {} ──\n", entry.vantage);
        for error in &entry.errors {
            out += &format!("✗ {error}\n");
        }
        match outcome {
            Some(whyrefused_shared::Outcome::VantageOffline) => {
                out += "✗ this vantage point went offline before it finished\n";
            }
            Some(whyrefused_shared::Outcome::VantageTimeout) => {
                out += "✗ this vantage point fell silent about the request (nothing for longer \
                        than its longest wait plus 10 s): the hub gave up on it\n";
            }
            // Its error above says why; it has no report to show.
            Some(whyrefused_shared::Outcome::Rejected) => {}
            _ => out += &one(&entry.report),
        }
        out += "\n";
    }
    let verdict = &results.verdict;
    out +=
        &format!("══ across vantage points: {} ══\n{}\n", verdict.cause.as_str(), verdict.summary);
    for detail in &verdict.details {
        out += &format!("  • {detail}\n");
    }
    out
}

fn print(output: &str) -> ExitCode {
    match std::io::stdout().write_all(output.as_bytes()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(exit::INTERNAL, &format!("cannot write the report: {error}")),
    }
}
