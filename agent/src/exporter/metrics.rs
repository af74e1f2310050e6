//! The agent's own metrics, for `GET /metrics`: what it ran (checks by cause and vantage
//! point, scans by outcome, probes by module), how long requests took, and, read at each
//! scrape, its sessions, joined agents, connect budget and policy denials.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::app::AppState;

/// Who asked for a check: a WebSocket client, or a scrape of `/probe`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Via {
    /// A WebSocket session (the page, the CLI, a hub).
    Websocket,
    /// A scrape of `/probe`.
    Probe,
}

impl Via {
    fn as_str(self) -> &'static str {
        match self {
            Via::Websocket => "websocket",
            Via::Probe => "probe",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CheckLabels {
    cause: String,
    vantage: String,
    via: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ScanLabels {
    outcome: String,
    vantage: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

type Durations = Family<KindLabels, Histogram, fn() -> Histogram>;

/// Request durations from 1 ms to about a minute.
fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// The counters the agent keeps; cheap to clone (every clone counts into the same ones).
#[derive(Debug, Clone)]
pub struct AgentMetrics {
    checks: Family<CheckLabels, Counter>,
    scans: Family<ScanLabels, Counter>,
    durations: Durations,
}

impl Default for AgentMetrics {
    fn default() -> Self {
        AgentMetrics {
            checks: Family::default(),
            scans: Family::default(),
            durations: Family::new_with_constructor(duration_histogram),
        }
    }
}

impl AgentMetrics {
    /// Counts a finished check: its cause (`-` without a verdict), where it ran, who asked.
    pub fn check_done(&self, cause: &str, vantage: &str, via: Via, took: Duration) {
        let labels =
            CheckLabels { cause: cause.into(), vantage: vantage.into(), via: via.as_str().into() };
        self.checks.get_or_create(&labels).inc();
        self.observe(via_kind(via), took);
    }

    /// Counts a finished scan by how it ended and where it ran.
    pub fn scan_done(&self, outcome: &str, vantage: &str, took: Duration) {
        let labels = ScanLabels { outcome: outcome.into(), vantage: vantage.into() };
        self.scans.get_or_create(&labels).inc();
        self.observe("scan", took);
    }

    fn observe(&self, kind: &str, took: Duration) {
        self.durations.get_or_create(&KindLabels { kind: kind.into() }).observe(took.as_secs_f64());
    }

    /// Every metric of the agent, read now, in OpenMetrics text.
    pub fn encode(&self, state: &AppState) -> String {
        let mut registry = Registry::with_prefix("whyrefused");
        registry.register(
            "checks",
            "Checks that ended, by cause, vantage point and who asked",
            self.checks.clone(),
        );
        registry.register(
            "scans",
            "Scans that ended, by outcome and vantage point",
            self.scans.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "How long requests took, by kind",
            self.durations.clone(),
        );
        register_now(&mut registry, state);
        let mut text = String::new();
        encode(&mut text, &registry).expect("writing to a String cannot fail");
        text
    }
}

fn via_kind(via: Via) -> &'static str {
    match via {
        Via::Websocket => "check",
        Via::Probe => "probe",
    }
}

/// The gauges read at the scrape: sessions, joined agents, connect budget, denials, build.
fn register_now(registry: &mut Registry, state: &AppState) {
    let sessions = state.open_sessions.total() as i64;
    gauge(registry, "sessions", "WebSocket sessions open now", sessions);
    let mut agents = state.hub.list(&state.agent);
    agents.retain(|agent| agent.name != whyrefused_shared::LOCAL_VANTAGE);
    let online = agents.iter().filter(|agent| agent.online).count() as i64;
    gauge(registry, "joined_agents_online", "Joined agents (vantage points) online now", online);
    gauge(
        registry,
        "joined_agents",
        "Joined agents the hub lists, online or not",
        agents.len() as i64,
    );
    if let Some(budget) = &state.connect_budget {
        gauge(
            registry,
            "connect_budget_per_second",
            "The agent-wide connects per second",
            i64::from(budget.per_second()),
        );
        let used = Gauge::<f64, AtomicU64>::default();
        used.set(budget.used_fraction());
        registry.register(
            "connect_budget_used_ratio",
            "The share of the connect budget taken now (1: connects wait)",
            used,
        );
    }
    let denials = Family::<Vec<(String, String)>, Counter>::default();
    for (rule, count) in state.policy.denials() {
        denials.get_or_create(&vec![("rule".into(), rule)]).inc_by(count);
    }
    registry.register(
        "policy_denials",
        "Addresses and ports the target policy denied, by rule",
        denials,
    );
    let build = Family::<Vec<(String, String)>, Gauge>::default();
    build.get_or_create(&vec![("version".into(), state.agent.version.clone())]).set(1);
    registry.register("build_info", "The agent's version (always 1)", build);
}

fn gauge(registry: &mut Registry, name: &str, help: &str, value: i64) {
    let gauge = Gauge::<i64>::default();
    gauge.set(value);
    registry.register(name, help, gauge);
}
