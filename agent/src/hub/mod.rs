//! The hub: where requests run. Every agent is a hub: it is the vantage point `local`, and
//! other agents may join it (`whyrefused serve --join`) by dialling out to its WebSocket, so an
//! agent behind NAT can join too. The parts:
//!
//! - [`local`]: runs one validated request here: the one runner behind a session's own
//!   requests and the hub's `local` part of a request from several places.
//! - [`registry`]: the list of joined agents ([`Hub`]): online or not, since when, last seen,
//!   and a handle on each link.
//! - [`link`]: the hub's side of one joined agent's socket: sends it requests under hub-side ids
//!   and routes its answers back to whoever asked; marks it offline when it falls silent.
//! - [`fanout`]: one client request run at several vantage points, events tagged by vantage,
//!   ending with the cross-vantage verdict (`verdict::cross`).
//!
//! The joining agent's side (dialling, backoff, serving the hub as a client) is `join`, above
//! the server; this layer only ever answers sockets it is handed.
//!
//! On the wire, a joining agent sends `hello` (with a token) and then `register`; the hub
//! answers `registered`, and from then on the hub sends `check`, `scan` and `cancel` and the
//! agent answers with ordinary agent messages.

pub mod fanout;
pub mod link;
pub mod local;
pub mod registry;

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
