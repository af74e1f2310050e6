//! The whyrefused wire protocol, shared by the agent (native) and the page (wasm).
//!
//! Everything that crosses the WebSocket is defined here, as serde types sent as JSON text frames:
//!
//! - [`message`]: the envelopes, named by direction: [`ClientMessage`] (page or CLI to agent) and
//!   [`AgentMessage`] (agent to page or CLI), the [`RequestId`] that lets several requests run at
//!   once on one socket, and the [`ErrorCode`]s an agent answers bad input with.
//! - [`check`]: one connectivity check: the request, the events that stream back while it runs,
//!   and every result type inside them (DNS resolution, connect attempts, states, verdicts).
//! - [`diagnosis`]: the extra probes behind a verdict (DNS detail, liveness, nearby ports, local
//!   listeners, ICMP errors, what followed the connect) and the evidence they give.
//! - [`explain`]: recognising the targets a pasted error message names (Node, Go, libpq, …), so
//!   the agent's `explain` and the page's box read an error alike.
//! - [`report`]: [`CheckReport`], the fold of a check's events into one document. The page
//!   renders it, and `whyrefused check --json` prints it.
//! - [`path`]: [`Path`], the hop-by-hop trace of a connection's SYNs (TCP with rising TTLs).
//! - [`scan`]: a port scan: the request, its batched progress steps, and [`ScanReport`], their
//!   fold (what the page's scan view renders and `whyrefused scan --json` prints).
//! - [`service`]: what answers on an open port ([`ServiceIdentity`]): the protocol named from
//!   its first bytes or its answer to a harmless probe, and the one the target expected.
//! - [`host`]: what the agent sees on the target host itself: the firewall rule that matched
//!   its probe ([`FirewallMatch`]), a listener's [`AcceptQueue`] and its owner's [`OwnerState`].
//! - [`mtu`]: the MSS probe of a connection that opened and then stalled ([`MtuProbe`]).
//! - [`proxy`]: a check through an HTTP proxy ([`ProxyFinding`]): the variable followed, the
//!   proxy's answer, and how curl, Python requests and Go read the variables.
//! - [`port_group`]: the nine groups a scan's ports are summarised in ([`PortGroup`]), with
//!   their headings and [`Severity`], so the CLI and the page word and colour them alike.
//! - [`history`]: stored results as the agent's HTTP API lists them ([`ResultSummary`]) and
//!   gives one back ([`StoredResult`]): what the page's History view and `/#/r/ID` links read.
//! - [`watch`]: watches that run inside an agent ([`WatchSpec`], [`WatchInfo`]), their rounds
//!   and summaries, as the agent's `/api/watches` routes carry them.
//! - [`vantage`]: vantage points (a hub and the agents that joined it), [`VantageInfo`], and
//!   the cross-vantage verdict comparing what each place saw.
//!
//! A socket opens with both sides sending `hello` carrying [`PROTOCOL_VERSION`]; the agent refuses
//! requests until the client's hello has arrived and answers a different version with
//! [`ErrorCode::ProtocolMismatch`].
//!
//! An agent joining another as a vantage point says hello with a token, then `register`; after
//! the hub's `registered` the roles on that socket reverse (see [`ClientMessage::Register`]).
//!
//! This crate has no runtime dependencies beyond serde, so it builds for `wasm32-unknown-unknown`.

pub mod check;
pub mod diagnosis;
pub mod explain;
pub mod history;
pub mod host;
pub mod loss;
pub mod message;
pub mod mtu;
pub mod path;
pub mod port_group;
pub mod proxy;
pub mod report;
pub mod scan;
pub mod service;
pub mod vantage;
pub mod watch;

pub use check::{
    Attempt, Cause, CheckEvent, CheckRequest, ConnectState, DnsStatus, Errno, Family,
    MAX_RESOLVERS, Outcome, PortSource, Resolution, ResolveMethod, Severity, Step, TargetInfo,
    Timestamp, Verdict,
};
pub use diagnosis::{
    AfterConnect, CertificateSummary, DnsDetail, DnsRcode, EarlyClose, EchoState, Evidence,
    Finding, HappyEyeballs, HttpClose, HttpHeader, HttpPart, HttpRedirect, HttpReport, IcmpError,
    Listener, Liveness, LocalDrops, LocalListeners, NameserverAnswer, NearbyPorts,
    OWNERS_HIDDEN_FROM_REMOTE, OWNERS_UNREADABLE, Pattern, Phases, PortProbe, Round, TlsReport,
};
pub use history::{ResultKind, ResultListing, ResultSummary, StoredResult};
pub use host::{
    AcceptQueue, FIREWALL_NEEDS, FirewallMatch, FirewallRule, HostPressure, LocalPorts, OwnerState,
    PortHolder, RULE_TEXT_HIDDEN, RuleAction,
};
pub use loss::{Loss, LossFinding, Tries};
pub use message::{
    AgentInfo, AgentMessage, ClientMessage, ErrorCode, FORWARD_WATCH_LIFETIME_S,
    MAX_FORWARD_WATCH_DESTINATIONS, MAX_FORWARD_WATCHES, Origin, PAGE_CLIENT, RequestId,
};
pub use mtu::{LARGE_SEND, LargeSend, MssTry, MtuProbe, SMALL_MSS, SizedHop, SizedHops};
pub use path::{Hop, HopReply, LastAnswered, Path, TraceRequest};
pub use port_group::PortGroup;
pub use proxy::{ProxyFinding, ProxyReading};
pub use report::CheckReport;
pub use scan::{
    DEFAULT_PORT_SPEC, DEFAULT_SCAN_RETRIES, DEFAULT_SCAN_TIMEOUT_MS, MAX_SCAN_RETRIES,
    OpenPortsFound, PortResult, PortRun, ScanEvent, ScanLoss, ScanProgress, ScanReport,
    ScanRequest, ScanStep, StateCounts,
};
pub use service::{Protocol, ServiceIdentity};
pub use vantage::{
    ALL_VANTAGES, CrossCause, CrossVerdict, LOCAL_VANTAGE, RouterRule, VantageInfo, VantageResult,
    version_warning,
};
pub use watch::{
    Change, Latency, VantageRound, WatchInfo, WatchListing, WatchRound, WatchRounds, WatchSpec,
    WatchState, WatchSummary,
};

/// The protocol version both sides announce in `hello`. Bump it on any incompatible change.
pub const PROTOCOL_VERSION: u32 = 1;

/// The largest message (in bytes of JSON) the agent accepts; larger ones are answered with
/// [`ErrorCode::MessageTooLarge`]. Real requests are a few hundred bytes.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// The path of the WebSocket endpoint, served from the same origin as the page.
pub const WS_PATH: &str = "/ws";

/// The connect deadline for each address when a request does not name one.
pub const DEFAULT_TIMEOUT_MS: u32 = 3_000;

/// The longest connect deadline a request may ask for (one minute).
pub const MAX_TIMEOUT_MS: u32 = 60_000;

/// The most rounds a retried check may repeat after its first.
pub const MAX_RETRIES: u32 = 20;

/// The most redirects a check with `follow` follows before it reports the last answer.
pub const MAX_REDIRECTS: usize = 5;

/// The pause between rounds of a retried check when a request does not name one.
pub const DEFAULT_RETRY_DELAY_MS: u32 = 1_000;
