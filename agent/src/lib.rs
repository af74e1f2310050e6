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
//! - [`proxy`]: the proxy variables (`HTTPS_PROXY`, `NO_PROXY` …) as curl, Python requests and
//!   Go each read them for a target.
//! - [`rate`]: the agent-wide budget of connects per second.
//! - [`scan`]: port scans: port specs, an epoll connect engine, batched results.
//! - [`wire`]: the bounded outbox and frame writer every socket uses, decoding client messages.
//! - [`history`]: every check and scan run here or by the CLI, stored in one SQLite file
//!   (retention, the writer thread, the CSV export), for the API and `whyrefused history`.
//! - [`hub`]: where requests run: here ([`hub::local`]), or at several vantage points at once
//!   (the registry of joined agents, their links, the fan-out).
//! - [`server`]: the axum server: the embedded page at `/`, the WebSocket at `/ws`, origin and
//!   TLS, and the session on each socket.
//! - [`exporter`]: Prometheus: the blackbox_exporter-compatible `/probe` (its modules, the
//!   series that name the cause) and the agent's own `/metrics`.
//! - [`join`]: joining a hub as a vantage point (`serve --join`), and dialling one.
//! - [`watch`]: a check repeated: the rounds, the changes of cause, the summary, the webhook.
//! - [`cli`]: the `whyrefused` command line (`serve`, `check`, `scan`, `trace`, `explain`, `agents`, `history`, `watch`, `watches`).
//! - [`app`]: the state every layer shares; [`tokens`] and [`peer`]: who may use the agent and
//!   how peers are counted; [`clock`] and [`logging`]: timestamps, logs, the shutdown signal.
//!
//! The layers go one way: cli → join → server → exporter → hub → watch → history → wire → check/scan → verdict → probe. The
//! wire protocol lives in the `whyrefused-shared` crate, shared with the page.

pub mod app;
pub mod check;
pub mod cli;
pub mod clock;
pub mod exporter;
pub mod happy_eyeballs;
pub mod history;
pub mod hub;
pub mod join;
pub mod logging;
pub mod peer;
pub mod policy;
pub mod probe;
pub mod proxy;
pub mod rate;
pub mod scan;
pub mod server;
pub mod target;
pub mod tokens;
pub mod verdict;
pub mod watch;
pub mod wire;

pub use app::AppState;
