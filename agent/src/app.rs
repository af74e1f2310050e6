//! What the whole agent shares: its identity, limits, target policy, connect budget, tokens, scan slots, the
//! hub's registry, its history and the shutdown signal. Every layer below the command line reads it; none
//! owns it.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use whyrefused_shared::AgentInfo;

use crate::exporter::Exporter;
use crate::history::Availability;
use crate::hub::Hub;
use crate::hub::watches::Watches;
use crate::peer::{OpenSessions, SessionCaps};
use crate::policy::TargetPolicy;
use crate::rate::SharedBudget;
use crate::scan::limits::ScanSlots;
use crate::tokens::{FailureCounter, Tokens};
use crate::wire::outbox::DEFAULT_OUTBOX_BYTES;

/// The agent's limits on what clients may ask of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The most ports one scan may cover (per address).
    pub max_scan_ports: u32,
    /// The most comma-separated items a scan's port spec may hold (each costs a pass over the
    /// port set).
    pub max_port_spec_items: usize,
    /// The most scans the whole agent runs at once.
    pub max_scans: usize,
    /// How long a socket may stay silent, with nothing running, before the agent closes it.
    pub idle_timeout: Duration,
    /// The most bytes a socket's outbox holds unsent before its peer is disconnected.
    pub outbox_bytes: usize,
    /// How long a client of an agent with tokens has to say hello after the upgrade.
    pub hello_timeout: Duration,
    /// How long a connection may take to send a request's headers (slowloris).
    pub header_timeout: Duration,
    /// The most WebSocket sessions the whole agent holds open at once.
    pub max_sessions: usize,
    /// The most WebSocket sessions one peer (an IPv4 address, an IPv6 /64) holds open at once.
    pub max_sessions_per_peer: usize,
}

impl Limits {
    /// Every port of a host, a few scans at once (they share the open-files limit), ten
    /// minutes of silence, 16 MiB unread, ten seconds to say hello or send headers, and sessions
    /// enough for a thousand clients (512 from any one peer, so a burst of a few hundred from one
    /// host, a load test or a busy hub's page, still gets in).
    pub const DEFAULT: Limits = Limits {
        max_scan_ports: 65_535,
        max_port_spec_items: crate::scan::ports::MAX_ITEMS,
        max_scans: 4,
        idle_timeout: Duration::from_secs(600),
        outbox_bytes: DEFAULT_OUTBOX_BYTES,
        hello_timeout: Duration::from_secs(10),
        header_timeout: Duration::from_secs(10),
        max_sessions: 4096,
        max_sessions_per_peer: 512,
    };
}

impl Limits {
    /// The caps on open sessions.
    pub fn session_caps(&self) -> SessionCaps {
        SessionCaps { total: self.max_sessions, per_peer: self.max_sessions_per_peer }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// What every handler, session and request shares.
#[derive(Clone)]
pub struct AppState {
    /// Who this agent is, sent in every hello.
    pub agent: AgentInfo,
    /// Cancelled once when the agent starts shutting down.
    pub shutdown: CancellationToken,
    /// Tracks the WebSocket sessions, so shutdown can wait for them.
    pub sessions: TaskTracker,
    /// What clients may ask.
    pub limits: Limits,
    /// The scans that may run at once, agent-wide.
    pub scans: ScanSlots,
    /// The tokens that open this agent; `None` on a loopback agent without a token file.
    pub tokens: Option<Arc<Tokens>>,
    /// Failed authentications per peer address, to refuse a peer that keeps guessing.
    pub failures: Arc<Mutex<FailureCounter>>,
    /// The WebSocket sessions open now, in all and per peer, held under the limits' caps.
    pub open_sessions: OpenSessions,
    /// Where the agent may connect on a client's behalf: every check and scan is held to it.
    pub policy: Arc<TargetPolicy>,
    /// How fast the agent may connect, for every check and scan together; `None` without a
    /// limit.
    pub connect_budget: SharedBudget,
    /// The agents that joined this one (every agent is a hub), and their links.
    pub hub: Hub,
    /// Whether remote clients may see which processes own this host's listeners
    /// (`--show-processes`); clients on this host always may.
    pub show_processes: bool,
    /// The probe modules of `/probe` and the counters of `/metrics`.
    pub exporter: Exporter,
    /// Where every check and scan run here is stored (`--no-history`: off).
    pub history: Availability,
    /// The agent's own watches (`/api/watches`), stored in the history.
    pub watches: Watches,
    /// The proxy variables of the agent's environment, followed by its checks only with
    /// `--use-env-proxy` (a check must not change with how the agent was started).
    pub env_proxy: Option<Arc<crate::proxy::ProxySettings>>,
}

/// The build every hello names, as `--version` does: the commit (set by `./dev dist`; a
/// development build says so) and the target triple.
pub const BUILD: &str =
    concat!("commit ", env!("WHYREFUSED_COMMIT"), ", ", env!("WHYREFUSED_TARGET"));

impl AppState {
    /// State for an agent on this host with these limits and this target policy, not yet
    /// shutting down.
    pub fn new(limits: Limits, policy: TargetPolicy) -> Self {
        let hostname =
            hostname::get().map_or_else(|_| "unknown".into(), |h| h.to_string_lossy().into_owned());
        AppState {
            agent: AgentInfo {
                version: env!("CARGO_PKG_VERSION").into(),
                hostname,
                build: Some(BUILD.into()),
            },
            shutdown: CancellationToken::new(),
            sessions: TaskTracker::new(),
            limits,
            scans: ScanSlots::new(limits.max_scans),
            tokens: None,
            failures: Arc::default(),
            open_sessions: OpenSessions::default(),
            policy: Arc::new(policy),
            connect_budget: None,
            hub: Hub::default(),
            show_processes: false,
            exporter: Exporter::default(),
            history: Availability::Off,
            watches: Watches::default(),
            env_proxy: None,
        }
    }

    /// The same agent, making at most `per_second` connects a second (`0`: no limit).
    pub fn with_connect_budget(self, per_second: u32) -> Self {
        AppState { connect_budget: crate::rate::budget_of(per_second), ..self }
    }

    /// The same agent, requiring one of `tokens` from every client.
    pub fn with_tokens(self, tokens: Tokens) -> Self {
        AppState { tokens: Some(Arc::new(tokens)), ..self }
    }

    /// Counts a failed authentication from `peer`.
    pub fn record_auth_failure(&self, peer: IpAddr) {
        self.failures.lock().unwrap_or_else(|e| e.into_inner()).record(peer, Instant::now());
    }

    /// How long `peer` must wait after too many failed authentications, if it must.
    pub fn auth_blocked_for(&self, peer: IpAddr) -> Option<Duration> {
        self.tokens.as_ref()?;
        self.failures.lock().unwrap_or_else(|e| e.into_inner()).blocked_for(peer, Instant::now())
    }
}

impl Default for AppState {
    /// The default limits and no target policy (a loopback agent without rules).
    fn default() -> Self {
        Self::new(Limits::DEFAULT, TargetPolicy::unrestricted())
    }
}
