//! One connectivity check: the request, the steps that stream back, and their result types.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::diagnosis::{Evidence, Finding, IcmpError, Pattern, Round};

/// What a client asks the agent to check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRequest {
    /// The target as the user typed it: `host:port`, `[v6]:port`, `v4:port`,
    /// `scheme://host[:port]/path`, or a bare host together with `port`.
    pub target: String,
    /// The port, for a bare host; when the target names a port too, the two must agree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The connect deadline for each address, in milliseconds
    /// (default [`crate::DEFAULT_TIMEOUT_MS`], at most [`crate::MAX_TIMEOUT_MS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u32>,
    /// Attempt a TLS handshake after connecting even when the scheme does not ask for one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tls: bool,
    /// How many times to repeat the check after the first round (default 0, at most
    /// [`crate::MAX_RETRIES`]), to tell a persistent failure from an intermittent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// The pause between rounds, in milliseconds (default [`crate::DEFAULT_RETRY_DELAY_MS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_delay_ms: Option<u32>,
    /// Send one HTTP request after connecting even when the scheme does not ask for one
    /// (`http://` and `https://` targets always get one).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub http: bool,
    /// The HTTP statuses that count as working (`[200, 204]`); any other is
    /// `unexpected_status`. Implies an HTTP request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expect_status: Vec<u16>,
    /// Follow redirects (at most [`crate::MAX_REDIRECTS`]) instead of reporting the first
    /// answer. Implies an HTTP request.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub follow: bool,
    /// On a plain TCP check (no TLS, no HTTP): after the connect, send a payload larger than the
    /// MTU to the server and watch it acknowledged, for services that do not speak first; a
    /// payload that is not is proved a path-MTU black hole (or not) by the MSS probe.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub large: bool,
    /// Trace the path (see [`crate::Path`]) whatever the outcome; without it, only addresses
    /// that end silent or unreachable are traced.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub trace: bool,
    /// Never trace the path, not even of an address that ends silent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_trace: bool,
    /// Do not look up the reverse DNS names of a trace's hops.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_rdns: bool,
    /// Name what answers on an open port (see [`crate::ServiceIdentity`]) even when the
    /// target's scheme and port expect nothing in particular.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub identify: bool,
    /// Resolve with these DNS servers instead of the system resolver (`IP[:PORT]`, or
    /// `tls://IP[:PORT]` for DNS over TLS); the system's answer is compared with theirs. Each
    /// address obeys the agent's target policy. At most [`MAX_RESOLVERS`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolvers: Vec<String>,
    /// The words of a pasted error that named this target (the page's "Explain an error" box):
    /// the verdict then says what follows from how the program connected (the address family
    /// it used, its `/etc/hosts` entry). Only the recognised words travel, never the text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recognised: Option<crate::explain::Recognised>,
}

/// The most resolvers one check asks.
pub const MAX_RESOLVERS: usize = 4;

impl CheckRequest {
    /// A request for `target` with default options.
    pub fn new(target: impl Into<String>) -> Self {
        CheckRequest {
            target: target.into(),
            port: None,
            timeout_ms: None,
            tls: false,
            retries: None,
            retry_delay_ms: None,
            http: false,
            expect_status: Vec::new(),
            follow: false,
            large: false,
            trace: false,
            no_trace: false,
            no_rdns: false,
            identify: false,
            resolvers: Vec::new(),
            recognised: None,
        }
    }
}

/// A wall-clock time in RFC 3339 form with microseconds, in UTC (`2026-11-24T10:00:00.123456Z`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub String);

/// One step of a check and the moment it happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckEvent {
    /// When the agent observed this step.
    pub at: Timestamp,
    /// What happened.
    pub step: Step,
}

/// The steps of a check, in the order they stream: `started`, `resolved`, then for each address
/// `attempt_started` and `attempt_finished` (interleaved, as they happen), `finding`s from the
/// extra probes, `verdict`, `done`. A cancelled check goes straight to `done`. With retries,
/// each round is wrapped in `round_started` and `round_finished`, and the verdict comes last.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Step {
    /// The target was parsed and the check began.
    Started {
        /// The parsed target.
        target: TargetInfo,
        /// The connect deadline for each address, in milliseconds.
        timeout_ms: u32,
    },
    /// The host name was resolved (or failed to resolve, or was an IP literal).
    Resolved {
        /// The resolution and its timing.
        resolution: Resolution,
    },
    /// A TCP connect to one address began.
    AttemptStarted {
        /// The address and port being connected to.
        address: SocketAddr,
    },
    /// A TCP connect to one address ended.
    AttemptFinished {
        /// How it ended.
        attempt: Attempt,
    },
    /// An extra probe ended (DNS detail, liveness, nearby ports, local listeners, what followed
    /// the connect, Happy Eyeballs).
    Finding {
        /// What it found.
        finding: Finding,
    },
    /// A retried check began another round; the report's per-round parts start afresh.
    RoundStarted {
        /// The round's number, from 1.
        round: u32,
        /// How many rounds there will be.
        of: u32,
    },
    /// A round of a retried check ended.
    RoundFinished {
        /// How it ended.
        round: Round,
    },
    /// The agent's conclusion from everything above.
    Verdict {
        /// The cause and its explanation.
        verdict: Verdict,
    },
    /// The request is over; no more events carry its id.
    Done {
        /// Whether it ran to the end.
        outcome: Outcome,
        /// The whole check's duration, in microseconds.
        elapsed_us: u64,
    },
}

impl Step {
    /// The step's wire name (`attempt_finished`).
    pub fn name(&self) -> &'static str {
        match self {
            Step::Started { .. } => "started",
            Step::Resolved { .. } => "resolved",
            Step::AttemptStarted { .. } => "attempt_started",
            Step::AttemptFinished { .. } => "attempt_finished",
            Step::Finding { .. } => "finding",
            Step::RoundStarted { .. } => "round_started",
            Step::RoundFinished { .. } => "round_finished",
            Step::Verdict { .. } => "verdict",
            Step::Done { .. } => "done",
        }
    }
}

/// The target after parsing, as the agent understood it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetInfo {
    /// The text the user gave.
    pub input: String,
    /// The host in the form sent to the resolver: ASCII (punycode for international names), or an
    /// IP address literal without brackets.
    pub host: String,
    /// The host as a person reads it: Unicode for international names, otherwise as `host`.
    pub display_host: String,
    /// The TCP port.
    pub port: u16,
    /// Where the port came from.
    pub port_source: PortSource,
    /// The URL scheme, when the target was a URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// The URL path, when the target was a URL with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// Where a target's port came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PortSource {
    /// Written in the target (`host:port`).
    Explicit,
    /// The well-known port of the target's URL scheme (`https://` means 443).
    SchemeDefault,
    /// Given separately (the request's `port`, the CLI's `--port`).
    Option,
}

/// How a host became addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResolveMethod {
    /// The host was already an IP address: nothing was looked up.
    Literal,
    /// The system resolver (`getaddrinfo`: `/etc/hosts`, `resolv.conf`, nsswitch), as any program
    /// on the agent's host sees it.
    System,
    /// The DNS servers the request named (`--resolver`), asked directly instead of the system
    /// resolver: the first with addresses gives them.
    Resolver,
}

/// The result of a resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DnsStatus {
    /// One or more addresses were found.
    Ok,
    /// The name does not exist.
    Nxdomain,
    /// The name exists but has no A or AAAA records.
    NoAddress,
    /// The resolver failed (a server failure, no nameserver reachable, a local error).
    Error,
    /// The resolver did not answer within the deadline.
    Timeout,
}

/// A host name's resolution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolution {
    /// The name (or literal) that was resolved.
    pub host: String,
    /// How it was resolved.
    pub method: ResolveMethod,
    /// What came of it.
    pub status: DnsStatus,
    /// The addresses found, in the resolver's order (the order programs try them in).
    pub addresses: Vec<IpAddr>,
    /// The resolver's own words on a failure (`Name or service not known`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// How long the resolution took, in microseconds.
    pub elapsed_us: u64,
}

/// An address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// IPv4.
    Ipv4,
    /// IPv6.
    Ipv6,
}

impl Family {
    /// The family of an address.
    pub fn of(address: &IpAddr) -> Family {
        match address {
            IpAddr::V4(_) => Family::Ipv4,
            IpAddr::V6(_) => Family::Ipv6,
        }
    }

    /// `IPv4` or `IPv6`, for people.
    pub fn label(self) -> &'static str {
        match self {
            Family::Ipv4 => "IPv4",
            Family::Ipv6 => "IPv6",
        }
    }
}

/// How one TCP connect attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectState {
    /// The handshake completed: something listens there.
    Open,
    /// The host answered with a reset (`ECONNREFUSED`): nothing listens on that port, or a
    /// firewall rejects with a reset or an ICMP port-unreachable.
    Refused,
    /// No answer before the deadline: a firewall drops the packets, or the host is silent.
    Timeout,
    /// The host could not be reached (`EHOSTUNREACH`): no neighbour answer, or an ICMP
    /// host-unreachable or admin-prohibited from a router or firewall. Another host's ICMPv6
    /// administratively prohibited arrives as `EACCES` (the attempt's errno) and is this too.
    HostUnreachable,
    /// No route to the host's network (`ENETUNREACH`, or a router's ICMPv6 no route to
    /// destination, which arrives as `EHOSTUNREACH`).
    NetworkUnreachable,
    /// The agent's own host forbade the connection (`EACCES`/`EPERM` with no ICMP error, or
    /// with one sent by this host: a local firewall rule).
    PermissionDenied,
    /// The connection was reset during the handshake (`ECONNRESET`).
    Reset,
    /// Any other failure; the attempt's `errno` names it.
    Error,
}

impl ConnectState {
    /// Whether the host itself answered: a SYN-ACK (open) or a reset (refused). Silence, an ICMP
    /// error from the way and a local failure are not answers from the host.
    pub fn is_answer(self) -> bool {
        matches!(self, ConnectState::Open | ConnectState::Refused)
    }

    /// Every state, for documentation, counts and exhaustive tests.
    pub const ALL: [ConnectState; 8] = [
        ConnectState::Open,
        ConnectState::Refused,
        ConnectState::Timeout,
        ConnectState::HostUnreachable,
        ConnectState::NetworkUnreachable,
        ConnectState::PermissionDenied,
        ConnectState::Reset,
        ConnectState::Error,
    ];

    /// The state's wire name, for tables and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectState::Open => "open",
            ConnectState::Refused => "refused",
            ConnectState::Timeout => "timeout",
            ConnectState::HostUnreachable => "host_unreachable",
            ConnectState::NetworkUnreachable => "network_unreachable",
            ConnectState::PermissionDenied => "permission_denied",
            ConnectState::Reset => "reset",
            ConnectState::Error => "error",
        }
    }

    /// How bad the state is, for its colour: open is good, a silent timeout a warning (a
    /// firewall may drop it on purpose), every error bad.
    pub fn severity(self) -> Severity {
        match self {
            ConnectState::Open => Severity::Good,
            ConnectState::Timeout => Severity::Warning,
            ConnectState::Refused
            | ConnectState::HostUnreachable
            | ConnectState::NetworkUnreachable
            | ConnectState::PermissionDenied
            | ConnectState::Reset
            | ConnectState::Error => Severity::Bad,
        }
    }
}

/// An operating-system error number with its symbolic name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Errno {
    /// The number (`111`).
    pub code: i32,
    /// The name (`ECONNREFUSED`).
    pub name: String,
}

/// One finished TCP connect attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// The address connected to.
    pub address: IpAddr,
    /// The port connected to.
    pub port: u16,
    /// The address family.
    pub family: Family,
    /// How the attempt ended.
    pub state: ConnectState,
    /// The OS error behind a failed attempt; absent for `open` and `timeout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno: Option<Errno>,
    /// The ICMP error that ended the attempt, when the network sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp: Option<IcmpError>,
    /// How long the connect took, in microseconds.
    pub elapsed_us: u64,
    /// The same duration in milliseconds, for readers of the JSON.
    pub elapsed_ms: f64,
    /// When the attempt began.
    pub started_at: Timestamp,
}

impl Attempt {
    /// The address and port as one socket address.
    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::new(self.address, self.port)
    }
}

/// The cause a verdict names. The vocabulary is stable: programs may match on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// A connection opened on every address.
    Reachable,
    /// Some addresses opened and others failed.
    Partial,
    /// The host answered with a reset: nothing listens on that port.
    PortClosed,
    /// The target is the agent's own host, and something listens on that port, but only on
    /// another local address (such as 127.0.0.1).
    LoopbackOnly,
    /// No answer on that port, while other probes prove the host up: a firewall drops it.
    Filtered,
    /// No answer at all, and nothing proves the host up: it is down, or everything is dropped.
    NoResponse,
    /// Some connects to the port were answered and others, with the same packets, were not:
    /// the path loses packets (a firewall does not drop some SYNs to a port and pass others).
    PacketLoss,
    /// An ICMP error from a firewall (port unreachable, administratively prohibited) rejected
    /// the connection.
    FirewallReject,
    /// The host could not be reached (no neighbour answer, or an ICMP unreachable).
    HostUnreachable,
    /// There is no route to the host's network from the agent.
    NetworkUnreachable,
    /// The agent's own host refused to send the connection (a local firewall rule).
    LocalFirewall,
    /// The connection was reset during the handshake.
    ConnectionReset,
    /// The connection opened, but the server closed or reset it at once.
    ServerClosed,
    /// The connection opened, but the TLS handshake failed.
    TlsError,
    /// The connection (and TLS) worked, but the HTTP exchange failed.
    HttpError,
    /// Connections open, but packets larger than the path's MTU never arrive: a router drops
    /// them without sending ICMP "fragmentation needed" (a path-MTU black hole), proved by the
    /// same exchange completing with a smaller MSS.
    MtuBlackHole,
    /// The connection (and TLS) worked and the service answered with a 5xx status: the server
    /// itself is failing.
    ServerError,
    /// The service answered 401 or 403: it wants credentials, or refuses these.
    AccessDenied,
    /// The service answered with a status outside the expected ones (`expect_status`).
    UnexpectedStatus,
    /// The connect failed with another operating-system error.
    ConnectError,
    /// The name does not exist.
    DnsNxdomain,
    /// The name exists but has no address records.
    DnsNoAddress,
    /// The resolver failed or did not answer.
    DnsError,
    /// The agent's target policy (`--deny`, `--allow`, `--allow-ports`, or a default rule of an
    /// agent listening beyond loopback) denies every address: no packet was sent. The evidence
    /// names the rule for each address.
    PolicyDenied,
    /// The port is open, but what answers speaks another protocol than the target's scheme or
    /// well-known port expects (`postgres://` reaching an HTTP server): the wrong port, or
    /// something else took it.
    WrongService,
    /// On the target host itself: the process that owns the listener is stopped (SIGSTOP, a
    /// debugger) or a zombie, so connects may still open but nothing answers.
    ServerStopped,
    /// On the target host itself: the listener's accept queue is full (its process accepts too
    /// slowly, or hangs), so the kernel drops new SYNs while the host is up.
    BacklogFull,
    /// The agent's own host has no ephemeral port left for the destination (`EADDRNOTAVAIL`):
    /// its `ip_local_port_range` is used up by connections to it (established or `TIME_WAIT`).
    LocalPortsExhausted,
    /// The agent's host's connection-tracking table (netfilter conntrack) is full, or dropped
    /// new connections during the check: it drops them while everything else is up.
    ConntrackFull,
    /// The program goes through an HTTP proxy (its proxy variables), and the proxy's own
    /// address cannot be reached: the evidence names the proxy's own cause.
    ProxyUnreachable,
    /// The proxy answered 407: it wants credentials, or refuses the ones given.
    ProxyAuthRequired,
    /// The proxy answered 403: its rules refuse this destination.
    ProxyDenied,
    /// The proxy answered 502, 503 or 504: it could not reach the target itself (the status
    /// line is in the evidence).
    ProxyUpstreamFailed,
    /// A cause this version does not know: a newer agent named it. Shown as "unknown cause"
    /// rather than failing to read the whole message.
    #[serde(other)]
    Unknown,
}

impl Cause {
    /// Every cause, for documentation and exhaustive tests.
    pub const ALL: [Cause; 33] = [
        Cause::Reachable,
        Cause::Partial,
        Cause::PortClosed,
        Cause::LoopbackOnly,
        Cause::Filtered,
        Cause::NoResponse,
        Cause::PacketLoss,
        Cause::FirewallReject,
        Cause::HostUnreachable,
        Cause::NetworkUnreachable,
        Cause::LocalFirewall,
        Cause::ConnectionReset,
        Cause::ServerClosed,
        Cause::TlsError,
        Cause::HttpError,
        Cause::MtuBlackHole,
        Cause::ServerError,
        Cause::AccessDenied,
        Cause::UnexpectedStatus,
        Cause::ConnectError,
        Cause::DnsNxdomain,
        Cause::DnsNoAddress,
        Cause::DnsError,
        Cause::PolicyDenied,
        Cause::WrongService,
        Cause::ServerStopped,
        Cause::BacklogFull,
        Cause::LocalPortsExhausted,
        Cause::ConntrackFull,
        Cause::ProxyUnreachable,
        Cause::ProxyAuthRequired,
        Cause::ProxyDenied,
        Cause::ProxyUpstreamFailed,
    ];

    /// The cause's wire name (`port_closed`).
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Reachable => "reachable",
            Cause::Partial => "partial",
            Cause::PortClosed => "port_closed",
            Cause::LoopbackOnly => "loopback_only",
            Cause::Filtered => "filtered",
            Cause::NoResponse => "no_response",
            Cause::PacketLoss => "packet_loss",
            Cause::FirewallReject => "firewall_reject",
            Cause::HostUnreachable => "host_unreachable",
            Cause::NetworkUnreachable => "network_unreachable",
            Cause::LocalFirewall => "local_firewall",
            Cause::ConnectionReset => "connection_reset",
            Cause::ServerClosed => "server_closed",
            Cause::TlsError => "tls_error",
            Cause::HttpError => "http_error",
            Cause::MtuBlackHole => "mtu_black_hole",
            Cause::ServerError => "server_error",
            Cause::AccessDenied => "access_denied",
            Cause::UnexpectedStatus => "unexpected_status",
            Cause::ConnectError => "connect_error",
            Cause::DnsNxdomain => "dns_nxdomain",
            Cause::DnsNoAddress => "dns_no_address",
            Cause::DnsError => "dns_error",
            Cause::PolicyDenied => "policy_denied",
            Cause::WrongService => "wrong_service",
            Cause::ServerStopped => "server_stopped",
            Cause::BacklogFull => "backlog_full",
            Cause::LocalPortsExhausted => "local_ports_exhausted",
            Cause::ConntrackFull => "conntrack_full",
            Cause::ProxyUnreachable => "proxy_unreachable",
            Cause::ProxyAuthRequired => "proxy_auth_required",
            Cause::ProxyDenied => "proxy_denied",
            Cause::ProxyUpstreamFailed => "proxy_upstream_failed",
            Cause::Unknown => "unknown",
        }
    }

    /// Whether the target can be connected to (fully or on some addresses).
    pub fn is_reachable(self) -> bool {
        matches!(self, Cause::Reachable)
    }

    /// How bad the verdict is, for its colour: the CLI and the page both colour by this.
    pub fn severity(self) -> Severity {
        match self {
            Cause::Reachable => Severity::Good,
            // Some addresses work; or the agent's own rule, not a fault of the network; or a
            // cause this version cannot judge.
            Cause::Partial | Cause::PolicyDenied | Cause::Unknown => Severity::Warning,
            Cause::PortClosed
            | Cause::LoopbackOnly
            | Cause::Filtered
            | Cause::NoResponse
            | Cause::PacketLoss
            | Cause::FirewallReject
            | Cause::HostUnreachable
            | Cause::NetworkUnreachable
            | Cause::LocalFirewall
            | Cause::ConnectionReset
            | Cause::ServerClosed
            | Cause::TlsError
            | Cause::HttpError
            | Cause::MtuBlackHole
            | Cause::ServerError
            | Cause::AccessDenied
            | Cause::UnexpectedStatus
            | Cause::ConnectError
            | Cause::DnsNxdomain
            | Cause::DnsNoAddress
            | Cause::DnsError
            | Cause::WrongService => Severity::Bad,
            Cause::ServerStopped
            | Cause::BacklogFull
            | Cause::LocalPortsExhausted
            | Cause::ConntrackFull
            | Cause::ProxyUnreachable
            | Cause::ProxyAuthRequired
            | Cause::ProxyDenied
            | Cause::ProxyUpstreamFailed => Severity::Bad,
        }
    }

    /// Whether the name, not the connection, failed (the page tints these apart).
    pub fn is_dns(self) -> bool {
        matches!(self, Cause::DnsNxdomain | Cause::DnsNoAddress | Cause::DnsError)
    }
}

/// How bad a result is: the one scale both the CLI's colours and the page's follow, for
/// verdicts ([`Cause::severity`]), connect states and scan groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    /// It works (green).
    Good,
    /// The expected, harmless answer among many (a scan's closed ports: grey).
    Neutral,
    /// Partly works, or nothing is proved broken (amber).
    Warning,
    /// It fails (red).
    Bad,
}

impl Severity {
    /// The name used in CSS modifiers (`good`, `neutral`, `warning`, `bad`).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Good => "good",
            Severity::Neutral => "neutral",
            Severity::Warning => "warning",
            Severity::Bad => "bad",
        }
    }
}

/// The agent's conclusion about a check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// The cause, from a stable vocabulary.
    pub cause: Cause,
    /// One sentence in plain words naming the culprit.
    pub summary: String,
    /// What to try next.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suggestions: Vec<String>,
    /// The probes that support the cause, with their results and timings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<Evidence>,
    /// With retries: whether the outcome repeated in every round.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<Pattern>,
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It ran to the end; a verdict was sent.
    Completed,
    /// The client cancelled it.
    Cancelled,
    /// The agent is shutting down and stopped it.
    ShuttingDown,
    /// The vantage point went offline (or was offline) before it finished: its link to the hub
    /// closed, or fell silent for the hub's ping timeout.
    VantageOffline,
    /// The vantage point sent nothing about the request for longer than the request's longest
    /// single wait (its connect timeout, its retry delay, or a scan's per-port timeout) plus
    /// 10 s: the hub gave up on it (and cancelled it there).
    VantageTimeout,
    /// The vantage point refused the request; the error sent just before says why.
    Rejected,
    /// An outcome this version does not know (a newer agent's).
    #[serde(other)]
    Unknown,
}

impl Outcome {
    /// The outcome's wire name, for labels and attributes.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Cancelled => "cancelled",
            Outcome::ShuttingDown => "shutting_down",
            Outcome::VantageOffline => "vantage_offline",
            Outcome::VantageTimeout => "vantage_timeout",
            Outcome::Rejected => "rejected",
            Outcome::Unknown => "unknown",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_and_causes_serialize_to_their_wire_names() {
        for state in ConnectState::ALL {
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{}\"", state.as_str()));
        }
        for cause in Cause::ALL {
            let json = serde_json::to_string(&cause).unwrap();
            assert_eq!(json, format!("\"{}\"", cause.as_str()));
        }
    }

    #[test]
    fn every_cause_is_listed_once() {
        let mut names: Vec<&str> = Cause::ALL.iter().map(|c| c.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Cause::ALL.len());
    }

    #[test]
    fn the_readme_cause_table_lists_every_cause() {
        let readme = include_str!("../../README.md");
        for cause in Cause::ALL {
            let row = format!("\n| `{}` |", cause.as_str());
            assert!(readme.contains(&row), "README.md's cause table has no row for {cause:?}");
        }
    }

    #[test]
    fn a_request_without_options_omits_them() {
        let json = serde_json::to_string(&CheckRequest::new("db:5432")).unwrap();
        assert_eq!(json, r#"{"target":"db:5432"}"#);
        let back: CheckRequest = serde_json::from_str(r#"{"target":"db","port":5432}"#).unwrap();
        assert_eq!(back.port, Some(5432));
        assert_eq!(back.timeout_ms, None);
    }
}
