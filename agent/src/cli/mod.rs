//! The command line: `whyrefused [serve]` starts the agent, `whyrefused check` runs one check,
//! `whyrefused scan` scans ports, `whyrefused trace` traces the path to a port, `whyrefused
//! explain` checks every target a pasted error names, `whyrefused agents` lists a hub's vantage
//! points, `whyrefused watch` repeats a check, `whyrefused history` lists stored results.
//!
//! `check` and `scan` run the same engines in-process (no server needed); with `--via URL` they
//! run through a hub instead, from the vantage points `--from` names (see [`via`]). `check` exits 0 when
//! the target is reachable, 1 when it is not; `scan` exits 0 when it scanned, 1 when there was
//! nothing to scan (the name did not resolve); both exit 2 for invalid input and 3 for an
//! internal failure.

mod config;
mod explain;
mod history;
mod package;
mod reload;
mod report;
mod scan;
mod trace;
mod via;
mod watch;
mod watches;

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use whyrefused_shared::{
    CheckReport, CheckRequest, DEFAULT_PORT_SPEC, DEFAULT_RETRY_DELAY_MS, DEFAULT_SCAN_RETRIES,
    DEFAULT_SCAN_TIMEOUT_MS, DEFAULT_TIMEOUT_MS, Family, ScanReport, ScanRequest,
};

use crate::check::{self, CheckPlan};
use crate::hub::HubLimits;
use crate::hub::watches::WatchLimits;
use crate::policy::{Cidr, Rules, Serves, TargetPolicy};
use crate::scan::ports::PortSpec;
use crate::scan::{self as port_scan, ScanPlan, limits};
use crate::server::tls::{self, CertificateSource};
use crate::server::{self, AppState, Limits};
use crate::tokens::{FirstToken, TokenRole, Tokens};
use clap::builder::TypedValueParser as _;

/// The connect budget of an agent that serves others, when `--max-connects-per-second` is not
/// given: enough for a full scan of a host in seconds, far from a flood.
const DEFAULT_CONNECTS_PER_SECOND: u32 = 5_000;

/// What `--version` says: the package's version, the commit it was built from (set by `./dev
/// dist`; a development build says so) and the target it runs on.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("WHYREFUSED_COMMIT"),
    ", ",
    env!("WHYREFUSED_TARGET"),
    ")"
);

/// Connection refused (or timed out)? whyrefused finds which part is causing it.
#[derive(Debug, Parser)]
#[command(name = "whyrefused", version = VERSION, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the agent: serve the page and the WebSocket (the default with no arguments).
    #[command(args_override_self = true)]
    Serve(Box<ServeArgs>),
    /// Check a target now and print the verdict.
    Check(CheckArgs),
    /// Scan ports of a host now, with the same classification as a check.
    Scan(ScanArgs),
    /// List a hub's vantage points: itself (`local`) and the agents that joined it.
    Agents(AgentsArgs),
    /// Trace the path to a target's port: TCP SYNs with rising TTLs, which router answers each.
    Trace(trace::TraceArgs),
    /// Read an error message (TEXT, or standard input) and check every target it names.
    Explain(explain::ExplainArgs),
    /// Check a target again and again: one line a round, the full report when the cause
    /// changes, a summary at the end (Ctrl-C or --count).
    Watch(watch::WatchArgs),
    /// List an agent's own watches (default the local agent at http://127.0.0.1:7070), make
    /// one that runs inside it (--add TARGET), or stop one (--stop ID).
    Watches(watches::WatchesArgs),
    /// List stored results, newest first (this host's history, or an agent's with --via).
    History(history::HistoryCommandArgs),
    /// Print the completion script for a shell (bash, zsh, fish, elvish, powershell).
    Completions(package::CompletionsArgs),
    /// Print the manual page (roff), or write one page per command with --out-dir.
    Manual(package::ManualArgs),
}

/// How to reach a hub, for commands run through one.
#[derive(Debug, Args)]
struct ViaArgs {
    /// Run through the agent (hub) at this WebSocket URL, such as ws://127.0.0.1:7070.
    #[arg(long, value_name = "URL")]
    via: Option<String>,
    /// The hub's token file: its first secret is presented (else WHYREFUSED_TOKEN).
    #[arg(long, requires = "via")]
    token_file: Option<std::path::PathBuf>,
    /// The vantage points to run from, comma-separated (local is the hub itself), or all.
    #[arg(long, value_delimiter = ',', requires = "via", default_value = "all")]
    from: Vec<String>,
    /// For a wss:// hub with a self-signed certificate: the SHA-256 fingerprint it printed.
    #[arg(long, requires = "via")]
    tls_fingerprint: Option<String>,
}

impl ViaArgs {
    /// The hub to run through, when --via was given.
    fn hub(&self) -> Option<Result<via::Hub, String>> {
        let url = self.via.as_deref()?;
        Some(via::Hub::new(url, self.tls_fingerprint.as_deref(), self.token_file.as_deref()))
    }
}

#[derive(Debug, Args)]
struct AgentsArgs {
    /// The hub's WebSocket URL, such as ws://127.0.0.1:7070.
    #[arg(long, value_name = "URL")]
    via: String,
    /// The hub's token file: its first secret is presented (else WHYREFUSED_TOKEN).
    #[arg(long)]
    token_file: Option<std::path::PathBuf>,
    /// For a wss:// hub with a self-signed certificate: the SHA-256 fingerprint it printed.
    #[arg(long)]
    tls_fingerprint: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Read options from this TOML file first (keys are these options' long names: `listen =
    /// "0.0.0.0:7070"`, a list repeats an option, a switch is true or false); the command line
    /// wins over it. Default /etc/whyrefused/whyrefused.toml, when it exists.
    #[arg(long, value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    /// Where to serve the page and the WebSocket (default 127.0.0.1:7070; an agent that joins a
    /// hub with --join listens only when given this). Beyond loopback only with --token-file and
    /// TLS (--tls-self-signed, or --tls-cert and --tls-key).
    #[arg(long, value_name = "ADDRESS:PORT")]
    listen: Option<SocketAddr>,
    /// The most ports one scan may cover (per address).
    #[arg(long, default_value_t = Limits::DEFAULT.max_scan_ports, value_parser = clap::value_parser!(u32).range(1..=65_535))]
    max_scan_ports: u32,
    /// The most comma-separated items a scan's port list may hold (ranges count as one).
    #[arg(long, value_name = "N", default_value_t = Limits::DEFAULT.max_port_spec_items, value_parser = parse_max_port_spec_items)]
    max_port_spec_items: usize,
    /// The most scans the agent runs at once.
    #[arg(long, default_value_t = Limits::DEFAULT.max_scans, value_parser = parse_max_scans)]
    max_scans: usize,
    /// Close a socket that sent nothing for this many seconds while nothing ran on it.
    #[arg(long, default_value_t = Limits::DEFAULT.idle_timeout.as_secs(), value_parser = clap::value_parser!(u64).range(1..=86_400))]
    idle_timeout_s: u64,
    /// Disconnect a client that leaves more than this many MiB of messages unread.
    #[arg(long, value_name = "MIB", default_value_t = (Limits::DEFAULT.outbox_bytes >> 20) as u32, value_parser = clap::value_parser!(u32).range(1..=1024))]
    max_unread_mib: u32,
    /// Name the processes that own this host's listeners (pid, command), and show the text of
    /// its firewall rules, to remote clients too, a joined agent's hub included; clients on this
    /// host always see them.
    #[arg(long)]
    show_processes: bool,
    /// On an agent with tokens, close a socket that has not said hello within this many seconds.
    #[arg(long, value_name = "S", default_value_t = Limits::DEFAULT.hello_timeout.as_secs(), value_parser = clap::value_parser!(u64).range(1..=3_600))]
    hello_timeout_s: u64,
    /// Drop a connection that has not sent a request's headers within this many seconds.
    #[arg(long, value_name = "S", default_value_t = Limits::DEFAULT.header_timeout.as_secs(), value_parser = clap::value_parser!(u64).range(1..=3_600))]
    header_timeout_s: u64,
    /// The most WebSocket sessions the agent holds open at once.
    #[arg(long, value_name = "N", default_value_t = Limits::DEFAULT.max_sessions, value_parser = parse_session_cap)]
    max_sessions: usize,
    /// The most WebSocket sessions one peer (an IPv4 address, an IPv6 /64) holds open at once.
    #[arg(long, value_name = "N", default_value_t = Limits::DEFAULT.max_sessions_per_peer, value_parser = parse_session_cap)]
    max_sessions_per_peer: usize,
    /// The most TCP connects per second the whole agent makes, for every check and scan
    /// together (0: no limit). Default: no limit on loopback, 5000 beyond it or with --join.
    #[arg(long, value_name = "N")]
    max_connects_per_second: Option<u32>,
    /// Require every client to present one of these tokens (`name:secret` a line); needed to
    /// listen on a non-loopback address. Reread on SIGHUP.
    #[arg(long)]
    token_file: Option<std::path::PathBuf>,
    /// Serve TLS with this certificate chain (PEM, leaf first); with --tls-key.
    #[arg(long, requires = "tls_key", conflicts_with = "tls_self_signed")]
    tls_cert: Option<std::path::PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// Serve TLS with a self-signed certificate, made on first start and kept in --state-dir;
    /// its SHA-256 fingerprint is printed for clients to pin (--tls-fingerprint).
    #[arg(long)]
    tls_self_signed: bool,
    #[command(flatten)]
    history: history::HistoryArgs,
    /// Connect only to addresses in these networks (10.0.0.0/8, fd00::/8; repeat or separate
    /// with commas). Deny rules win over allows.
    #[arg(long, value_name = "CIDR", value_delimiter = ',')]
    allow: Vec<Cidr>,
    /// Never connect to addresses in these networks (checked after DNS resolution, IPv6 forms
    /// carrying an IPv4 address included). An agent listening beyond loopback or joined to a
    /// hub also denies loopback, link-local, cloud metadata, multicast, broadcast and
    /// unspecified addresses by default.
    #[arg(long, value_name = "CIDR", value_delimiter = ',')]
    deny: Vec<Cidr>,
    /// Lift the default loopback rules (127.0.0.0/8, ::1) of an agent listening beyond loopback
    /// or joined to a hub, so its clients may check this host's own services (--allow cannot:
    /// a deny rule beats any allow).
    #[arg(long)]
    allow_loopback: bool,
    /// Connect only to these ports (22,80,443,8000-9000): checks, their extra probes and scans.
    #[arg(long, value_name = "PORTS", value_parser = PortSpec::parse)]
    allow_ports: Option<PortSpec>,
    /// Also join the hub at this WebSocket URL as a vantage point (wss://, or ws:// to a loopback
    /// hub), presenting the first token of --token-file, an agent token (NAME:SECRET:agent);
    /// rejoin whenever the link drops. Listens (page, WebSocket) only when --listen is given too.
    /// The hub's clients reach this agent: the default deny rules and connect budget apply, as
    /// beyond loopback.
    #[arg(long, value_name = "URL", requires = "token_file")]
    join: Option<String>,
    /// The name to join the hub under: its agent token's name (the default), or refused.
    #[arg(long, requires = "join")]
    name: Option<String>,
    /// For a wss:// hub with a self-signed certificate: the SHA-256 fingerprint it printed.
    #[arg(long = "join-tls-fingerprint", value_name = "SHA256", requires = "join")]
    join_tls_fingerprint: Option<String>,
    /// When another agent's live link holds this agent's name on the hub: keep trying every
    /// 30 s until it is free, instead of exiting (exit 2).
    #[arg(long, requires = "join")]
    wait_for_name: bool,
    /// As a hub: the most joined agents listed, online or not (the one offline the longest
    /// makes room for a newcomer; with all online, a newcomer is refused).
    #[arg(long, value_name = "N", default_value_t = HubLimits::DEFAULT.max_agents, value_parser = clap::value_parser!(u32).range(1..=1_000_000).map(|n| n as usize))]
    max_agents: usize,
    /// As a hub: the most interface addresses kept of one joined agent (the rest are dropped).
    #[arg(long, value_name = "N", default_value_t = HubLimits::DEFAULT.max_addresses, value_parser = clap::value_parser!(u32).range(0..=4_096).map(|n| n as usize))]
    max_agent_addresses: usize,
    /// As a hub: forget a joined agent offline for this many seconds.
    #[arg(long, value_name = "S", default_value_t = HubLimits::DEFAULT.forget_offline_after.as_secs(), value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
    forget_offline_after_s: u64,
    /// As a hub: the most requests one client may run at once at one joined agent (an agent
    /// runs at most 32 at once for the hub, all clients together).
    #[arg(long, value_name = "N", default_value_t = HubLimits::DEFAULT.requests_per_client, value_parser = clap::value_parser!(u32).range(1..=32).map(|n| n as usize))]
    max_requests_per_agent_per_client: usize,
    /// The probe modules of /probe: a blackbox_exporter module file (its tcp and http modules,
    /// and whyrefused's tls); reloaded on SIGHUP and POST /-/reload. Default: tcp_connect, tls,
    /// http_2xx.
    #[arg(long, value_name = "FILE")]
    probe_config: Option<std::path::PathBuf>,
    /// The most watches the agent runs at once for its clients (POST /api/watches,
    /// whyrefused watches --add); one more is refused, naming this limit.
    #[arg(long, value_name = "N", default_value_t = WatchLimits::DEFAULT.max_running, value_parser = clap::value_parser!(u32).range(1..=10_000).map(|n| n as usize))]
    max_watches: usize,
    /// The shortest interval between the rounds of the agent's own watches (10ms, 1s, 30s):
    /// each round is a check with its connects, so a busy agent wants it long.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_min_watch_every)]
    min_watch_every: std::time::Duration,
    /// The agent's address as its users open it (https://whyrefused.example:7070): the links
    /// a watch's webhook carries are URL/#/r/ID. Without it, a webhook carries the result's
    /// id only.
    #[arg(long, value_name = "URL", value_parser = parse_public_url)]
    public_url: Option<String>,
    /// Check http:// and https:// targets through the proxy that this agent's own HTTP_PROXY,
    /// HTTPS_PROXY, ALL_PROXY and NO_PROXY name (as curl reads them). Without it the agent
    /// ignores them: its checks do not change with how it was started.
    #[arg(long)]
    use_env_proxy: bool,
}

/// Where an agent that does not join a hub listens unless told otherwise.
const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 7070);

/// `serve` with every option at its default: what `whyrefused` alone runs.
fn default_serve_args() -> ServeArgs {
    match Cli::parse_from(["whyrefused", "serve"]).command {
        Some(Command::Serve(args)) => *args,
        _ => unreachable!("`whyrefused serve` parses as serve"),
    }
}

impl ServeArgs {
    /// Where to listen: `--listen`, else the default unless the agent joins a hub (a joining
    /// agent listens only when asked, so several can run on one host).
    fn listen_address(&self) -> Option<SocketAddr> {
        self.listen.or(self.join.is_none().then_some(DEFAULT_LISTEN))
    }

    /// The address whose kind (loopback or not) sets the defaults of the policy and the connect
    /// budget: the listening one, else loopback's, as a joining agent had before it could go
    /// without a listener.
    fn exposure(&self) -> SocketAddr {
        self.listen_address().unwrap_or(DEFAULT_LISTEN)
    }

    /// Where the agent keeps what it makes for itself (its certificate, its agent id).
    fn state_dir(&self) -> std::path::PathBuf {
        self.history.state_dir()
    }

    /// Where the certificate comes from, if the agent serves TLS.
    fn certificate(&self) -> Option<CertificateSource> {
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            return Some(CertificateSource::Files { cert: cert.clone(), key: key.clone() });
        }
        self.tls_self_signed.then(|| CertificateSource::SelfSigned {
            state_dir: self.state_dir(),
            names: self.certificate_names(),
        })
    }

    /// The names a self-signed certificate is made for: this host's name, localhost, loopback,
    /// and the listen address when it is a specific one.
    fn certificate_names(&self) -> Vec<String> {
        let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
        if let Ok(host) = hostname::get() {
            names.push(host.to_string_lossy().into_owned());
        }
        let listen = self.exposure().ip();
        if !listen.is_unspecified() && !listen.is_loopback() {
            names.push(listen.to_string());
        }
        names
    }
}

impl ServeArgs {
    fn limits(&self) -> Limits {
        Limits {
            max_scan_ports: self.max_scan_ports,
            max_port_spec_items: self.max_port_spec_items,
            max_scans: self.max_scans,
            idle_timeout: std::time::Duration::from_secs(self.idle_timeout_s),
            outbox_bytes: self.max_unread_mib as usize * 1024 * 1024,
            hello_timeout: std::time::Duration::from_secs(self.hello_timeout_s),
            header_timeout: std::time::Duration::from_secs(self.header_timeout_s),
            max_sessions: self.max_sessions,
            max_sessions_per_peer: self.max_sessions_per_peer,
        }
    }

    /// Whom an agent listening on `listen` connects for: anyone beyond this host's own users
    /// when it listens beyond loopback or joins a hub (the hub's clients reach it).
    fn serves(&self, listen: SocketAddr) -> Serves {
        match listen.ip().is_loopback() && self.join.is_none() {
            true => Serves::ThisHost,
            false => Serves::Others,
        }
    }

    /// The agent-wide connects per second (0: none): none for this host's own users unless
    /// asked, 5000 for an agent that serves others.
    fn connects_per_second(&self, listen: SocketAddr) -> u32 {
        let default = match self.serves(listen) {
            Serves::ThisHost => 0,
            Serves::Others => DEFAULT_CONNECTS_PER_SECOND,
        };
        self.max_connects_per_second.unwrap_or(default)
    }

    /// The hub's bounds on the agents that join it and on each client's share of them.
    fn hub_limits(&self) -> HubLimits {
        HubLimits {
            max_agents: self.max_agents,
            max_addresses: self.max_agent_addresses,
            forget_offline_after: std::time::Duration::from_secs(self.forget_offline_after_s),
            requests_per_client: self.max_requests_per_agent_per_client,
        }
    }

    /// The target policy for an agent listening on `listen`.
    fn policy(&self, listen: SocketAddr) -> TargetPolicy {
        let rules = Rules {
            allow: self.allow.clone(),
            deny: self.deny.clone(),
            allow_ports: self.allow_ports.clone(),
            allow_loopback: self.allow_loopback,
        };
        TargetPolicy::for_agent(self.serves(listen), &rules)
    }
}

fn parse_min_watch_every(text: &str) -> Result<std::time::Duration, String> {
    let every = crate::history::formats::parse_duration(text)?;
    match every >= std::time::Duration::from_millis(10) {
        true => Ok(every),
        false => Err(format!("'{text}' is shorter than the shortest interval, 10ms")),
    }
}

/// `--public-url`: an http(s) URL without a query or fragment; kept without its trailing `/`.
fn parse_public_url(text: &str) -> Result<String, String> {
    let invalid = || format!("'{text}' is not a URL: write https://HOST[:PORT][/PATH]");
    let uri: axum::http::Uri = text.parse().map_err(|_| invalid())?;
    let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
    if !scheme_ok || uri.host().is_none() || uri.query().is_some() || text.contains('#') {
        return Err(invalid());
    }
    Ok(text.trim_end_matches('/').to_string())
}

fn parse_max_port_spec_items(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n @ 1..=32_768) => Ok(n),
        _ => Err(format!("'{text}' is not a number of items from 1 to 32768")),
    }
}

fn parse_session_cap(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n @ 1..=1_000_000) => Ok(n),
        _ => Err(format!("'{text}' is not a number of sessions from 1 to 1000000")),
    }
}

fn parse_max_scans(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n @ 1..=64) => Ok(n),
        _ => Err(format!("'{text}' is not a number of scans from 1 to 64")),
    }
}

#[derive(Debug, Args)]
struct ScanArgs {
    /// The host to scan: a name or an address (no port: the ports come from --ports).
    target: String,
    /// Ports and ranges (22,80,8000-8100), 1-65535 or all, top100 or top1000.
    #[arg(long, short = 'p', default_value = DEFAULT_PORT_SPEC)]
    ports: String,
    /// The connect deadline for each port, in milliseconds.
    #[arg(long, default_value_t = DEFAULT_SCAN_TIMEOUT_MS)]
    timeout_ms: u32,
    /// How many more times a port that timed out is tried before it is called filtered.
    #[arg(long, default_value_t = DEFAULT_SCAN_RETRIES)]
    retries: u32,
    /// Scan only the name's IPv4 addresses.
    #[arg(short = '4', conflicts_with_all = ["ipv6", "address"])]
    ipv4: bool,
    /// Scan only the name's IPv6 addresses.
    #[arg(short = '6', conflicts_with = "address")]
    ipv6: bool,
    /// Scan only this one of the name's addresses.
    #[arg(long)]
    address: Option<std::net::IpAddr>,
    /// Print one JSON document instead of the readable summary.
    #[arg(long)]
    json: bool,
    /// List every port, refused ones included.
    #[arg(long)]
    all: bool,
    #[command(flatten)]
    history: history::HistoryArgs,
    /// Name what answers on each open port (HTTP, TLS, SSH, Redis …; at most 64 ports), with
    /// small harmless probes on fresh connections.
    #[arg(long, conflicts_with = "via")]
    identify: bool,
    #[command(flatten)]
    via: ViaArgs,
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
    /// Send an HTTP request after connecting, whatever the scheme (http(s):// always does).
    #[arg(long)]
    http: bool,
    /// The HTTP statuses that count as working (200,204); any other fails as unexpected_status.
    #[arg(long, value_name = "CODES", value_delimiter = ',')]
    expect_status: Vec<u16>,
    /// Follow HTTP redirects (at most 5) instead of reporting the first answer.
    #[arg(long)]
    follow: bool,
    /// After the connect, send 16 KiB to the server and watch it acknowledged (a plain TCP
    /// check, for services that do not speak first): finds a path-MTU black hole towards it.
    #[arg(long, conflicts_with_all = ["tls", "http", "follow"])]
    large: bool,
    /// Repeat the check this many more times, to tell a persistent failure from an intermittent one.
    #[arg(long, default_value_t = 0)]
    retries: u32,
    /// The pause between repeated rounds, in milliseconds.
    #[arg(long, default_value_t = DEFAULT_RETRY_DELAY_MS)]
    retry_delay_ms: u32,
    /// Trace the path to every address (TCP SYNs to the port with rising TTLs), whatever the
    /// outcome; without it, only addresses that end silent or unreachable are traced.
    #[arg(long, conflicts_with = "no_trace")]
    trace: bool,
    /// Never trace the path, not even of an address that ends silent (no TTL-limited SYNs).
    #[arg(long)]
    no_trace: bool,
    /// Do not look up reverse DNS names for the hops of a trace.
    #[arg(long)]
    no_rdns: bool,
    /// Name what answers on an open port (HTTP, TLS, SSH, Redis, PostgreSQL …) even when the
    /// scheme and port expect nothing in particular (they always are for postgres://, :5432 …).
    #[arg(long)]
    identify: bool,
    /// Print one JSON document instead of the readable report.
    #[arg(long)]
    json: bool,
    /// From inside a container or another network namespace, when a loopback target fails:
    /// also try the host's side of the link (this namespace's default gateway) on the port.
    #[arg(long, conflicts_with = "via")]
    try_host: bool,
    /// Resolve with this DNS server instead of the system resolver (IP[:PORT], or
    /// tls://IP[:PORT] for DNS over TLS); repeat for several (at most 4). The system
    /// resolver's answer is shown beside theirs.
    #[arg(long = "resolver", value_name = "SERVER")]
    resolvers: Vec<String>,
    #[command(flatten)]
    proxy: ProxyArgs,
    #[command(flatten)]
    via: ViaArgs,
    #[command(flatten)]
    history: history::HistoryArgs,
}

/// How a check follows the proxy variables of its environment (HTTP_PROXY, HTTPS_PROXY,
/// ALL_PROXY, NO_PROXY): http:// and https:// targets go through the proxy they name, as the
/// program would.
#[derive(Debug, Args)]
struct ProxyArgs {
    /// Connect directly, whatever the proxy variables say.
    #[arg(long)]
    no_proxy: bool,
    /// Read the proxy variables as this client does (they differ: which variables, NO_PROXY's
    /// leading dots, wildcards, CIDR blocks and ports).
    #[arg(long, value_enum, default_value = "curl", conflicts_with = "no_proxy")]
    proxy_as: ProxyClient,
}

/// The clients whose reading of the proxy variables a check can follow.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ProxyClient {
    Curl,
    Python,
    Go,
}

impl ProxyArgs {
    /// The proxy settings a check follows: this process's variables, unless `--no-proxy`.
    fn settings(&self) -> Option<Arc<crate::proxy::ProxySettings>> {
        use crate::proxy::{Client, ProxyEnv, ProxySettings};
        if self.no_proxy {
            return None;
        }
        let client = match self.proxy_as {
            ProxyClient::Curl => Client::Curl,
            ProxyClient::Python => Client::Requests,
            ProxyClient::Go => Client::Go,
        };
        Some(Arc::new(ProxySettings { env: ProxyEnv::from_process(), client }))
    }
}

/// The exit codes of `whyrefused check`.
mod exit {
    pub const UNREACHABLE: u8 = 1;
    pub const INVALID_INPUT: u8 = 2;
    pub const INTERNAL: u8 = 3;
}

/// Parses the arguments and runs the command.
pub fn main() -> ExitCode {
    let arguments = match config::with_config_file(std::env::args_os().collect()) {
        Ok(arguments) => arguments,
        Err(error) => return fail(exit::INVALID_INPUT, &error.to_string()),
    };
    let cli = Cli::parse_from(arguments);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            return fail(exit::INTERNAL, &format!("cannot start the async runtime: {error}"));
        }
    };
    let code = match cli.command {
        None => runtime.block_on(serve(default_serve_args())),
        Some(Command::Serve(args)) => runtime.block_on(serve(*args)),
        Some(Command::Check(args)) => runtime.block_on(run_check(args)),
        Some(Command::Scan(args)) => runtime.block_on(run_scan(args)),
        Some(Command::Trace(args)) => runtime.block_on(async {
            crate::logging::init("whyrefused=warn");
            trace::run(args).await
        }),
        Some(Command::Watch(args)) => runtime.block_on(watch::run(args)),
        Some(Command::Watches(args)) => runtime.block_on(async {
            crate::logging::init("whyrefused=warn");
            watches::run(args).await
        }),
        Some(Command::History(args)) => runtime.block_on(async {
            crate::logging::init("whyrefused=warn");
            history::run(args).await
        }),
        Some(Command::Explain(args)) => runtime.block_on(async {
            crate::logging::init("whyrefused=warn");
            explain::run(args).await
        }),
        Some(Command::Completions(args)) => package::completions(args),
        Some(Command::Manual(args)) => package::manual(args),
        Some(Command::Agents(args)) => runtime.block_on(async {
            crate::logging::init("whyrefused=warn");
            let fingerprint = args.tls_fingerprint.as_deref();
            match via::Hub::new(&args.via, fingerprint, args.token_file.as_deref()) {
                Ok(hub) => via::agents(hub, args.json).await,
                Err(error) => fail(exit::INVALID_INPUT, &error),
            }
        }),
    };
    // A blocking task still running (a system DNS lookup that hangs) must not hold the exit.
    runtime.shutdown_timeout(EXIT_DEADLINE);
    code
}

/// How long the process waits at exit for blocking tasks (system DNS lookups) still running.
const EXIT_DEADLINE: std::time::Duration = std::time::Duration::from_secs(1);

fn fail(code: u8, message: &str) -> ExitCode {
    eprintln!("whyrefused: {message}");
    ExitCode::from(code)
}

async fn serve(args: ServeArgs) -> ExitCode {
    crate::logging::init("whyrefused=info,tower_http=info");
    // Signals are caught from here on: a SIGTERM right after the start line is not lost.
    let signal = crate::logging::shutdown_signal();
    let hangups = reload::catch_hangups();
    if let Some(file) = &args.config {
        tracing::info!(file = %file.display().to_string().escape_debug(), "options read from the config file");
    }
    let tokens = match args.token_file.as_deref().map(Tokens::load).transpose() {
        Ok(tokens) => tokens,
        Err(error) => return fail(exit::INVALID_INPUT, &error.to_string()),
    };
    let exporter = match args.probe_config.as_deref().map(crate::exporter::Exporter::from_file) {
        None => Ok(crate::exporter::Exporter::default()),
        Some(loaded) => loaded,
    };
    let exporter = match exporter {
        Ok(exporter) => exporter,
        Err(error) => return fail(exit::INVALID_INPUT, &error.to_string()),
    };
    let join = match join_config(&args) {
        Ok(join) => join,
        Err(error) => return fail(exit::INVALID_INPUT, &error),
    };
    let Some(listen) = args.listen_address() else {
        return match (join, args.certificate()) {
            (Some(join), None) => serve_joined_only(&args, tokens, join, signal, hangups).await,
            (_, _) => fail(exit::INVALID_INPUT, NO_LISTENER_FOR_TLS),
        };
    };
    let tls = match args.certificate().as_ref().map(tls::server_tls).transpose() {
        Ok(tls) => tls,
        Err(error) => return fail(exit::INVALID_INPUT, &error.to_string()),
    };
    let guard = server::Guard { authenticated: tokens.is_some(), encrypted: tls.is_some() };
    let listener = match server::bind(listen, guard).await {
        Ok(listener) => listener,
        Err(error) => return fail(exit::INVALID_INPUT, &error.to_string()),
    };
    let address = listener.local_addr().map_or(listen, |a| a);
    match &tls {
        Some(tls) => println!(
            "whyrefused agent: open https://{address}/ (Ctrl-C to stop)\n\
             TLS certificate SHA-256 fingerprint: {} (clients pin it with --tls-fingerprint; \
             a browser shows it as the certificate's SHA-256 fingerprint)",
            tls.fingerprint
        ),
        None => println!("whyrefused agent: open http://{address}/ (Ctrl-C to stop)"),
    }
    let _ = std::io::stdout().flush();
    let state = agent_state(&args, address, tokens, exporter);
    reload_tokens_on_hangup(hangups, &args, &state);
    // The watches it ran when it stopped run on (only an agent that serves the API has any).
    state.watches.resume(&state).await;
    let gave_up = Arc::new(std::sync::OnceLock::new());
    let stop = match join {
        Some(join) => {
            tracing::info!(hub = %join.url, name = %join.name, "joining the hub as a vantage point");
            let link = tokio::spawn(crate::join::run(join, state.clone()));
            futures::future::Either::Left(until_signal_or_gave_up(signal, link, gave_up.clone()))
        }
        None => futures::future::Either::Right(signal),
    };
    let acceptor = tls.map(|tls| tls.acceptor);
    let history = state.history.clone();
    let served = server::serve(listener, acceptor, state, stop).await;
    flush_history(history).await;
    match (served, gave_up.get()) {
        (Err(error), _) => fail(exit::INTERNAL, &error.to_string()),
        (Ok(()), Some(fatal)) => fail(exit::INVALID_INPUT, &fatal.to_string()),
        (Ok(()), None) => ExitCode::SUCCESS,
    }
}

/// Completes on `signal`, or when the link to the hub gives up for good (kept in `gave_up`, so
/// the agent exits saying why).
async fn until_signal_or_gave_up(
    signal: impl std::future::Future<Output = ()>,
    link: tokio::task::JoinHandle<Result<(), crate::join::JoinFatal>>,
    gave_up: Arc<std::sync::OnceLock<crate::join::JoinFatal>>,
) {
    let link = async move {
        match link.await {
            Ok(Err(fatal)) => {
                let _ = gave_up.set(fatal);
            }
            // The link stopped for the shutdown: wait for the signal.
            _ => std::future::pending().await,
        }
    };
    tokio::select! {
        () = signal => {}
        () = link => {}
    }
}

/// Why TLS options need `--listen` on a joining agent.
const NO_LISTENER_FOR_TLS: &str = "--tls-self-signed, --tls-cert and --tls-key are for the \
     agent's own listener, and an agent that joins a hub listens only with --listen: give \
     --listen too, or drop them (the link to the hub is secured by its wss:// URL)";

/// A joining agent without `--listen`: it serves the hub's requests over its link only, until a
/// signal.
async fn serve_joined_only(
    args: &ServeArgs,
    tokens: Option<Tokens>,
    join: crate::join::JoinConfig,
    signal: impl std::future::Future<Output = ()> + Send + 'static,
    hangups: Option<tokio::signal::unix::Signal>,
) -> ExitCode {
    println!(
        "whyrefused agent: joining {} as {}, not listening (give --listen to serve the page \
         here too) (Ctrl-C to stop)",
        join.url, join.name
    );
    let _ = std::io::stdout().flush();
    // No listener, so no scrapes: the probe modules are not needed here.
    let state = agent_state(args, args.exposure(), tokens, crate::exporter::Exporter::default());
    reload_tokens_on_hangup(hangups, args, &state);
    let history = state.history.clone();
    let served = crate::join::serve_joined(join, state, signal).await;
    flush_history(history).await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(fatal) => fail(exit::INVALID_INPUT, &fatal.to_string()),
    }
}

/// From now on, SIGHUP reloads the token file (when the agent has one).
fn reload_tokens_on_hangup(
    hangups: Option<tokio::signal::unix::Signal>,
    args: &ServeArgs,
    state: &AppState,
) {
    if let (Some(hangups), Some(path)) = (hangups, args.token_file.clone()) {
        tokio::spawn(reload::reload_on_hangup(hangups, path, state.tokens.clone()));
    }
}

/// The state every layer shares, for an agent whose policy is that of one listening on
/// `address`; logs the settings that matter.
fn agent_state(
    args: &ServeArgs,
    address: SocketAddr,
    tokens: Option<Tokens>,
    exporter: crate::exporter::Exporter,
) -> AppState {
    limits::raise_open_files_limit();
    let connects_per_second = args.connects_per_second(address);
    if connects_per_second > 0 {
        tracing::info!(connects_per_second, "connect budget for the whole agent");
    }
    let policy = args.policy(address);
    tracing::info!(%policy, "target policy");
    let mut state = AppState::new(args.limits(), policy).with_connect_budget(connects_per_second);
    state.show_processes = args.show_processes;
    state.exporter = exporter;
    if args.use_env_proxy {
        let env = crate::proxy::ProxyEnv::from_process();
        // The names only: a value may hold a password.
        tracing::info!(proxy_variables = ?env, "checks follow the environment's proxy variables");
        let settings = crate::proxy::ProxySettings { env, client: crate::proxy::Client::Curl };
        state.env_proxy = Some(Arc::new(settings));
    }
    if args.probe_config.is_some() {
        crate::exporter::reload_on_hangup(&state);
    }
    state.hub = crate::hub::Hub::new(args.hub_limits());
    state.history = open_history(&args.history);
    let watch_limits =
        WatchLimits { max_running: args.max_watches, min_every: args.min_watch_every };
    state.watches = crate::hub::watches::Watches::new(watch_limits, args.public_url.clone());
    if let Some(tokens) = tokens {
        tracing::info!(tokens = ?tokens.names(), "clients must authenticate");
        state = state.with_tokens(tokens);
    }
    state
}

/// The agent's history, or why it has none. A file that cannot be opened does not stop the
/// agent: it says so at start and in the API, and serves checks without storing them.
fn open_history(args: &history::HistoryArgs) -> crate::history::Availability {
    use crate::history::Availability;
    match args.open() {
        None => Availability::Off,
        Some(Ok(history)) => {
            tracing::info!(file = %history.path().display(), "storing results in the history");
            Availability::On(history)
        }
        Some(Err(error)) => {
            eprintln!(
                "whyrefused: the history is unavailable, results will not be stored: {error}"
            );
            tracing::warn!(%error, "the history is unavailable: results will not be stored");
            Availability::Unavailable(error.to_string().into())
        }
    }
}

/// At the agent's exit: writes what the history still holds, and says what it could not store.
async fn flush_history(history: crate::history::Availability) {
    if let crate::history::Availability::On(history) = history {
        history::finish(history).await;
    }
}

/// What `--join` asks for, checked before anything starts: the URL's rules, the token file (its
/// first token, an agent token, is presented), the name (the token's, unless `--name` repeats it).
fn join_config(args: &ServeArgs) -> Result<Option<crate::join::JoinConfig>, String> {
    let Some(url) = &args.join else { return Ok(None) };
    let pin = args.join_tls_fingerprint.as_deref();
    let url = crate::join::dial::HubUrl::parse(url, pin).map_err(|error| error.to_string())?;
    let file = args.token_file.as_deref().ok_or("--join needs --token-file")?;
    let first = Tokens::first(file).map_err(|error| error.to_string())?;
    let name = join_name(&first, args.name.as_deref(), file)?;
    crate::hub::registry::check_name(&name).map_err(|problem| format!("--name: {problem}"))?;
    let state_dir = args.state_dir();
    let name_lock =
        crate::join::identity::hold_name(&state_dir, &name).map_err(|error| error.to_string())?;
    let agent_id =
        crate::join::identity::load_or_create(&state_dir).map_err(|error| error.to_string())?;
    Ok(Some(crate::join::JoinConfig {
        url,
        token: first.secret,
        name,
        agent_id,
        name_lock: std::sync::Arc::new(name_lock),
        wait_for_name: args.wait_for_name,
    }))
}

/// The name to join under: the agent token's own. A hub registers an agent token's holder only
/// under that token's name, so a `--name` that differs could never join.
fn join_name(
    first: &FirstToken,
    name: Option<&str>,
    file: &std::path::Path,
) -> Result<String, String> {
    let shown = file.display();
    if first.role != TokenRole::Agent {
        return Err(format!(
            "--join presents the first token of {shown}, '{}', a client token: a hub lets only an \
             agent token register. Put this agent's token (a line NAME:SECRET:agent, also in the \
             hub's token file) first",
            first.name
        ));
    }
    match name {
        Some(name) if name != first.name => Err(format!(
            "--name {name} differs from the name of the agent token this agent presents ('{}', \
             first in {shown}): a hub registers an agent token only under its own name. Drop \
             --name, or use the agent token named {name}",
            first.name
        )),
        _ => Ok(first.name.clone()),
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
        http: args.http,
        expect_status: args.expect_status,
        follow: args.follow,
        large: args.large,
        trace: args.trace,
        no_trace: args.no_trace,
        no_rdns: args.no_rdns,
        identify: args.identify,
        resolvers: args.resolvers,
        recognised: None,
    };
    if let Some(hub) = args.via.hub() {
        return match hub {
            Ok(hub) => via::check(hub, request, args.via.from, args.json).await,
            Err(error) => fail(exit::INVALID_INPUT, &error),
        };
    }

    // The CLI connects for its own user, as any program they run would: no target policy.
    let unrestricted = Arc::new(TargetPolicy::unrestricted());
    let plan = match CheckPlan::from_request(&request, unrestricted, None) {
        Ok(plan) => CheckPlan { proxy: args.proxy.settings(), try_host: args.try_host, ..plan },
        Err(error) => return fail(exit::INVALID_INPUT, &error.to_string()),
    };
    let mut report = CheckReport::default();
    check::run(&plan, |event| report.apply(&event)).await;
    let asker = cli_asker();
    let entry = crate::history::Entry::of_check(&report, asker, std::time::SystemTime::now());
    history::store(&args.history, entry).await;
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

/// Who asked, for a check or scan the command line ran itself.
fn cli_asker() -> crate::history::Asker {
    crate::history::Asker { vantage: "local".into(), token: None, source: "cli", watch: None }
}

async fn run_scan(args: ScanArgs) -> ExitCode {
    crate::logging::init("whyrefused=warn");
    let family = match (args.ipv4, args.ipv6) {
        (true, _) => Some(Family::Ipv4),
        (_, true) => Some(Family::Ipv6),
        _ => None,
    };
    let request = ScanRequest {
        target: args.target,
        ports: Some(args.ports),
        timeout_ms: Some(args.timeout_ms),
        retries: Some(args.retries),
        family,
        address: args.address,
    };
    if let Some(hub) = args.via.hub() {
        return match hub {
            Ok(hub) => via::scan(hub, request, args.via.from, args.json, args.all).await,
            Err(error) => fail(exit::INVALID_INPUT, &error),
        };
    }

    let unrestricted = Arc::new(TargetPolicy::unrestricted());
    let plan = match ScanPlan::from_request(&request, port_scan::Caps::NONE, unrestricted, None) {
        Ok(plan) => plan,
        Err(error) => return fail(exit::INVALID_INPUT, &error.to_string()),
    };
    let mut report = ScanReport::default();
    let progress = scan::Progress::new();
    port_scan::run(&plan, limits::window_for(1), |event| {
        report.apply(&event);
        progress.follow(&event.step, &report);
    })
    .await;
    if args.identify {
        report.services = scan::identify_open(&report, &plan).await;
    }
    report.listeners = scan::local_owners(&report).await;
    let (host, now) = (plan.host.ascii(), std::time::SystemTime::now());
    let entry = crate::history::Entry::of_scan(&report, host, cli_asker(), now);
    history::store(&args.history, Some(entry)).await;
    let output = if args.json {
        match serde_json::to_string_pretty(&scan::json(&report, args.all)) {
            Ok(json) => json + "\n",
            Err(error) => {
                return fail(exit::INTERNAL, &format!("cannot encode the report: {error}"));
            }
        }
    } else {
        let colors = report::Colors::for_stdout(std::io::stdout().is_terminal());
        scan::render(&report, colors, args.all)
    };
    if let Err(error) = std::io::stdout().write_all(output.as_bytes()) {
        return fail(exit::INTERNAL, &format!("cannot write the report: {error}"));
    }
    match report.addresses.is_empty() {
        true => ExitCode::from(exit::UNREACHABLE),
        false => ExitCode::SUCCESS,
    }
}
