//! The command line: `whyrefused [serve]` starts the agent, `whyrefused check` runs one check.
//!
//! `check` runs the same engine in-process (no server needed) and exits 0 when the target is
//! reachable, 1 when it is not, 2 for invalid input and 3 for an internal failure.

mod report;

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use whyrefused_shared::{CheckReport, CheckRequest, DEFAULT_RETRY_DELAY_MS, DEFAULT_TIMEOUT_MS};

use crate::check::{self, CheckPlan};
use crate::server::{self, AppState};

/// Connection refused (or timed out)? whyrefused finds which part is causing it.
#[derive(Debug, Parser)]
#[command(name = "whyrefused", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the agent: serve the page and the WebSocket (the default with no arguments).
    Serve(ServeArgs),
    /// Check a target now and print the verdict.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Where to listen; loopback addresses only (remote access needs authentication).
    #[arg(long, default_value = "127.0.0.1:7070")]
    listen: SocketAddr,
}

#[derive(Debug, Args)]
struct CheckArgs {
    /// What to check: host:port, [v6]:port, v4:port, scheme://host[:port]/path, or a host with --port.
    target: String,
    /// The port, for a target given as a bare host.
    #[arg(long, short)]
    port: Option<u16>,
    /// The connect deadline for each address, in milliseconds.
    #[arg(long, default_value_t = DEFAULT_TIMEOUT_MS)]
    timeout_ms: u32,
    /// Attempt a TLS handshake after connecting, whatever the scheme.
    #[arg(long)]
    tls: bool,
    /// Repeat the check this many more times, to tell a persistent failure from an intermittent one.
    #[arg(long, default_value_t = 0)]
    retries: u32,
    /// The pause between repeated rounds, in milliseconds.
    #[arg(long, default_value_t = DEFAULT_RETRY_DELAY_MS)]
    retry_delay_ms: u32,
    /// Print one JSON document instead of the readable report.
    #[arg(long)]
    json: bool,
}

/// The exit codes of `whyrefused check`.
mod exit {
    pub const UNREACHABLE: u8 = 1;
    pub const INVALID_INPUT: u8 = 2;
    pub const INTERNAL: u8 = 3;
}

/// Parses the arguments and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            return fail(exit::INTERNAL, &format!("cannot start the async runtime: {error}"));
        }
    };
    match cli.command {
        None => {
            runtime.block_on(serve(ServeArgs { listen: SocketAddr::from(([127, 0, 0, 1], 7070)) }))
        }
        Some(Command::Serve(args)) => runtime.block_on(serve(args)),
        Some(Command::Check(args)) => runtime.block_on(run_check(args)),
    }
}

fn fail(code: u8, message: &str) -> ExitCode {
    eprintln!("whyrefused: {message}");
    ExitCode::from(code)
}

async fn serve(args: ServeArgs) -> ExitCode {
    crate::logging::init("whyrefused=info,tower_http=info");
    let listener = match server::bind(args.listen).await {
        Ok(listener) => listener,
        Err(error) => return fail(exit::INVALID_INPUT, &error.to_string()),
    };
    let address = listener.local_addr().map_or(args.listen, |a| a);
    println!("whyrefused agent: open http://{address}/ (Ctrl-C to stop)");
    let _ = std::io::stdout().flush();
    match server::serve(listener, AppState::new(), crate::logging::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(exit::INTERNAL, &error.to_string()),
    }
}

async fn run_check(args: CheckArgs) -> ExitCode {
    crate::logging::init("whyrefused=warn");
    let request = CheckRequest {
        target: args.target,
        port: args.port,
        timeout_ms: Some(args.timeout_ms),
        tls: args.tls,
        retries: Some(args.retries),
        retry_delay_ms: Some(args.retry_delay_ms),
    };
    let plan = match CheckPlan::from_request(&request) {
        Ok(plan) => plan,
        Err(error) => return fail(exit::INVALID_INPUT, &error.to_string()),
    };
    let mut report = CheckReport::default();
    check::run(&plan, |event| report.apply(&event)).await;
    let output = if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(json) => json + "\n",
            Err(error) => {
                return fail(exit::INTERNAL, &format!("cannot encode the report: {error}"));
            }
        }
    } else {
        report::render(&report, report::Colors::for_stdout(std::io::stdout().is_terminal()))
    };
    if let Err(error) = std::io::stdout().write_all(output.as_bytes()) {
        return fail(exit::INTERNAL, &format!("cannot write the report: {error}"));
    }
    match report.verdict {
        Some(verdict) if verdict.cause.is_reachable() => ExitCode::SUCCESS,
        Some(_) => ExitCode::from(exit::UNREACHABLE),
        None => fail(exit::INTERNAL, "the check ended without a verdict"),
    }
}
