//! whyrefused: "connection refused (or timed out): which part is causing it?"
//!
//! The agent runs real probes and names the culprit. Its parts:
//!
//! - [`target`]: parses what the user typed (`host:port`, URLs, IPv6 in brackets, IDNA names).
//! - [`probe`]: the probes themselves: DNS through the system resolver, TCP connects.
//! - [`verdict`]: turns probe results into a cause, a summary and suggestions.
//! - [`check`]: runs a whole check, streaming each step as it happens.
//! - [`policy`]: where an agent may connect (`--allow`, `--deny`, `--allow-ports`, the default
//!   rules of an agent open to the network), checked on every address before a packet is sent.
//! - [`rate`]: the agent-wide budget of connects per second.
//! - [`scan`]: port scans: port specs, an epoll connect engine, batched results.
//! - [`server`]: the axum server: the embedded page at `/`, the WebSocket at `/ws`.
//! - [`vantage`]: vantage points: joining a hub (`serve --join`), the hub's registry of joined
//!   agents and their links, and running one request from several places at once.
//! - [`cli`]: the `whyrefused` command line (`serve`, `check`, `scan`, `agents`).
//! - [`clock`] and [`logging`]: timestamps, logs, the shutdown signal.
//!
//! The wire protocol lives in the `whyrefused-shared` crate, shared with the page.

pub mod check;
pub mod cli;
pub mod clock;
pub mod happy_eyeballs;
pub mod logging;
pub mod policy;
pub mod probe;
pub mod rate;
pub mod scan;
pub mod server;
pub mod target;
pub mod vantage;
pub mod verdict;
