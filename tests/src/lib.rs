//! The test harness: real agent processes, a real WebSocket client, loopback targets whose
//! behaviour the test controls (open, closed, or hanging), a real browser, and a network lab of
//! namespaces for real network faults.
//!
//! Every target is on loopback. The agent binary is built once per test run (`cargo build -p
//! whyrefused`), so the tests always exercise the current code, page included.

pub mod agent;
pub mod browser;
pub mod certificates;
pub mod client;
pub mod lab;
pub mod lab_check;
pub mod scrape;
pub mod targets;
pub mod tokens;
pub mod webhook;

pub use agent::{Agent, Joiner, agent_binary, workspace_root};
pub use browser::Browser;
pub use client::Client;
pub use lab::{Host, Lab};
pub use targets::{HangingPort, closed_port, http_server, syn_sent_to};
pub use tokens::write_token_file;
