//! The hub: where requests run. Every agent is a hub: it is the vantage point `local`, and
//! other agents may join it (`whyrefused serve --join`) by dialling out to its WebSocket, so an
//! agent behind NAT can join too. The parts:
//!
//! - [`audit`]: who asked for a request (token, peer, a request id unique across the hub), for
//!   the audit lines of the hub and of the joined agents it forwards the request to.
//! - [`local`]: runs one validated request here: the one runner behind a session's own
//!   requests and the hub's `local` part of a request from several places.
//! - [`recorded`]: a finished request's report, stored in the agent's history.
//! - [`registry`]: the list of joined agents ([`Hub`]): online or not, since when, last seen,
//!   and a handle on each link; bounded in agents and addresses, forgetting long-offline ones
//!   ([`HubLimits`]).
//! - [`link`]: the hub's side of one joined agent's socket: sends it requests under hub-side ids
//!   (at most [`HubLimits::requests_per_client`] at once from one client) and routes its answers
//!   back to whoever asked; marks it offline when it falls silent.
//! - [`fanout`]: one client request run at several vantage points, events tagged by vantage,
//!   each vantage point given up on (`vantage_timeout`) once silent for longer than the
//!   request's longest wait plus [`SILENCE_GRACE`], ending with the cross-vantage verdict
//!   (`verdict::cross`).
//! - [`forwarding`]: the forward watches around a check from several places: the hub asks the
//!   joined agents that are routers to read their forwarding rules' counters before and after
//!   (the hub's side), and a joined agent keeps the watches its hub opened, bounded (the
//!   agent's side).
//! - [`watches`]: the agent's own watches, each a task running its rounds through the
//!   fan-out; stored, resumed at start, bounded in number and interval.
//!
//! The joining agent's side (dialling, backoff, serving the hub as a client) is `join`, above
//! the server; this layer only ever answers sockets it is handed.
//!
//! On the wire, a joining agent sends `hello` (with a token) and then `register`; the hub
//! answers `registered`, and from then on the hub sends `check`, `scan` and `cancel` and the
//! agent answers with ordinary agent messages; to an agent whose `register` said it `forwards`,
//! the hub also sends `forward_watch` and `forward_watch_finish` around a check from several
//! places, answered with `forward_watching` and `forward_watched`.

pub mod audit;
pub mod fanout;
pub mod forwarding;
pub mod link;
pub mod local;
pub mod recorded;
pub mod registry;
pub mod watches;

use std::net::IpAddr;
use std::time::Duration;

pub use registry::Hub;

/// How often a joined agent pings its hub. Short enough that a dead link is noticed within
/// [`PING_TIMEOUT`]; long enough to cost nothing (one small frame each way).
pub const PING_INTERVAL: Duration = Duration::from_secs(5);

/// How long a link may stay silent (no frame, not even a ping or pong) before either end calls
/// it dead: three missed pings, so one late or lost ping is not a disconnection. A request at a
/// vantage point that falls silent is reported `vantage_offline` within this time.
pub const PING_TIMEOUT: Duration = Duration::from_secs(15);

/// How much longer than a request's longest single wait (a connect timeout, a retry delay, a
/// scan's per-port timeout) a vantage point may stay silent about it before the hub gives up on
/// its part (`vantage_timeout`): room for DNS, a busy host and the link's own latency.
pub const SILENCE_GRACE: Duration = Duration::from_secs(10);

/// What the hub keeps about joined agents, and how much of one agent one client may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HubLimits {
    /// The most agents the registry lists, online or not. When it is full, the agent offline
    /// the longest makes room; when every one is online, a new name is refused.
    pub max_agents: usize,
    /// The most interface addresses kept of one agent's registration: the rest are dropped
    /// (and the drop logged), so one registration costs a bounded amount of memory.
    pub max_addresses: usize,
    /// How long an agent stays listed after it was last heard from, once offline.
    pub forget_offline_after: Duration,
    /// The most requests one client of the hub may run at once at one joined agent. The hub
    /// carries every client's requests on the agent's one link, where the agent runs at most 32
    /// at once (its per-socket limit): this share keeps one client from taking all of them.
    pub requests_per_client: usize,
}

impl HubLimits {
    /// 4,096 agents of 64 addresses each, offline ones forgotten after a day, and a quarter of
    /// an agent's 32 request slots per client.
    pub const DEFAULT: HubLimits = HubLimits {
        max_agents: 4_096,
        max_addresses: 64,
        forget_offline_after: Duration::from_secs(24 * 60 * 60),
        requests_per_client: 8,
    };
}

impl Default for HubLimits {
    fn default() -> Self {
        HubLimits::DEFAULT
    }
}

/// What a joining agent tells the hub about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The name it is listed and chosen under.
    pub name: String,
    /// Its package version.
    pub version: String,
    /// Its host name.
    pub hostname: String,
    /// Its interfaces' addresses.
    pub addresses: Vec<IpAddr>,
    /// Its agent id (kept in its state directory), when it sent one.
    pub agent_id: Option<String>,
    /// Whether its host forwards packets and it may read the firewall's counters: the hub asks
    /// it to watch its forwarding rules around checks from several places ([`forwarding`]).
    pub forwards: bool,
}

impl Registration {
    /// Whether `newcomer` is the agent that made this registration, reconnecting: the same
    /// agent id; for agents too old to send one, the same host name.
    pub fn is_same_agent(&self, newcomer: &Registration) -> bool {
        match (&self.agent_id, &newcomer.agent_id) {
            (Some(held), Some(new)) => held == new,
            (None, None) => self.hostname == newcomer.hostname,
            _ => false,
        }
    }
}

/// This host's interface addresses as a vantage point reports them: sorted, loopback left out
/// (every host has those).
pub fn host_addresses() -> Vec<IpAddr> {
    let mut addresses: Vec<IpAddr> = crate::probe::icmp::local_addresses()
        .into_iter()
        .filter(|address| !address.is_loopback())
        .collect();
    addresses.sort();
    addresses.dedup();
    addresses
}
