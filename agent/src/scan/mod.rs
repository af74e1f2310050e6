//! A port scan: resolve the host, connect to every port of a spec on every chosen address with
//! the same classification as a check, and stream the results in batches.
//!
//! - [`ports`]: port specs (`22,80,8000-8100`, `top1000`) and service names.
//! - [`limits`]: the window of connects in flight, sized from the open-files limit.
//! - [`engine`]: the connects themselves, on epoll threads.
//! - [`open_ports`]: what answers behind the open ports, and this host's listeners behind them.
//!
//! [`run`] is what the WebSocket session and the CLI call: it streams `started`, `resolved`, a
//! `progress` batch at most every [`BATCH_INTERVAL`] (every port not `refused` individually, the
//! refused ones as runs), and `done`. Dropping its future stops the engine and closes every
//! socket within [`engine::POLL_CEILING`].

pub mod engine;
pub mod limits;
pub mod loss;
pub mod open_ports;
pub mod ports;

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use whyrefused_shared::scan::MAX_IDENTIFIED_PORTS;
use whyrefused_shared::{
    ConnectState, DEFAULT_PORT_SPEC, DEFAULT_SCAN_RETRIES, DEFAULT_SCAN_TIMEOUT_MS, DnsStatus,
    ErrorCode, Family, MAX_SCAN_RETRIES, MAX_TIMEOUT_MS, Outcome, PortResult, PortRun, Resolution,
    ScanEvent, ScanProgress, ScanRequest, ScanStep, StateCounts,
};

use crate::check::DNS_DEADLINE;
use crate::policy::TargetPolicy;
use crate::rate::SharedBudget;
use crate::target::{Host, TargetError};
use crate::{clock, probe};
use engine::{PortOutcome, Settings, StopFlag, Work};
use loss::LossEstimate;
use ports::{PortSpec, PortSpecError};

/// How often a running scan sends what it found.
pub const BATCH_INTERVAL: Duration = Duration::from_millis(50);

/// A batch goes out early once it holds this many ports that are not refused, so that no one
/// message grows large.
pub const MAX_BATCH_RESULTS: usize = 2_000;

/// The most threads a scan drives connects from.
const MAX_THREADS: usize = 4;

/// An agent's caps on what one scan request may ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// The most ports one scan may cover (per address); `None` for the in-process CLI.
    pub max_ports: Option<u32>,
    /// The most comma-separated items its port spec may hold.
    pub max_spec_items: usize,
}

impl Caps {
    /// No cap on ports, the default cap on a spec's items: the in-process CLI's.
    pub const NONE: Caps = Caps { max_ports: None, max_spec_items: ports::MAX_ITEMS };
}

/// A validated scan request.
#[derive(Debug, Clone)]
pub struct ScanPlan {
    /// The host as the user gave it.
    pub input: String,
    /// The host to resolve.
    pub host: Host,
    /// The ports.
    pub spec: PortSpec,
    /// The connect deadline for each port, in milliseconds.
    pub timeout_ms: u32,
    /// How many more times a timed-out port is tried.
    pub retries: u32,
    /// Only this family's addresses.
    pub family: Option<Family>,
    /// Only this address.
    pub address: Option<IpAddr>,
    /// Where the agent may connect: denied addresses are left out before the engine starts
    /// (and every port was checked when the request was validated).
    pub policy: Arc<TargetPolicy>,
    /// How fast the agent may connect, shared with every other check and scan; `None` without
    /// a limit (the in-process CLI).
    pub budget: SharedBudget,
    /// Name what answers on each open port.
    pub identify: bool,
    /// Whether the owners (pid, command) of this host's listeners may be named: to a client on
    /// this host, or with the agent's `--show-processes`.
    pub show_processes: bool,
}

/// Why a scan request cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    #[error("invalid host: {0}")]
    Host(#[from] TargetError),
    #[error("invalid port list: {0}")]
    Ports(#[from] PortSpecError),
    #[error("timeout_ms must be from 1 to {MAX_TIMEOUT_MS} (milliseconds), not {0}")]
    Timeout(u32),
    #[error("retries must be from 0 to {MAX_SCAN_RETRIES}, not {0}")]
    Retries(u32),
    #[error(
        "the port list holds {ports} ports, and this agent scans at most {limit} per scan: \
         ask for fewer (such as top1000), or start the agent with a higher --max-scan-ports"
    )]
    TooManyPorts { ports: usize, limit: u32 },
    #[error(
        "the port list holds {count} port(s) this agent may not connect to ({listed}): \
         port {first} is not in --allow-ports {allow_ports}; ask only for ports in it"
    )]
    PortsDenied { count: usize, listed: String, first: u16, allow_ports: String },
}

impl ScanError {
    /// The protocol's name for this kind of error.
    pub fn code(&self) -> ErrorCode {
        match self {
            ScanError::Host(_) => ErrorCode::InvalidTarget,
            ScanError::Ports(_) => ErrorCode::InvalidPorts,
            ScanError::Timeout(_) | ScanError::Retries(_) => ErrorCode::InvalidOption,
            ScanError::TooManyPorts { .. } => ErrorCode::TooManyPorts,
            ScanError::PortsDenied { .. } => ErrorCode::PolicyDenied,
        }
    }
}

impl ScanPlan {
    /// Validates a request against the agent's limit of ports per scan (if any) and its
    /// policy's `--allow-ports`: a spec holding a port outside it is refused whole, naming the
    /// rule, rather than quietly scanned in part. ([`TargetPolicy::unrestricted`] for the
    /// in-process CLI.)
    pub fn from_request(
        request: &ScanRequest,
        caps: Caps,
        policy: Arc<TargetPolicy>,
        budget: SharedBudget,
    ) -> Result<Self, ScanError> {
        let Caps { max_ports, max_spec_items } = caps;
        let timeout_ms = request.timeout_ms.unwrap_or(DEFAULT_SCAN_TIMEOUT_MS);
        if !(1..=MAX_TIMEOUT_MS).contains(&timeout_ms) {
            return Err(ScanError::Timeout(timeout_ms));
        }
        let retries = request.retries.unwrap_or(DEFAULT_SCAN_RETRIES);
        if retries > MAX_SCAN_RETRIES {
            return Err(ScanError::Retries(retries));
        }
        let host = Host::parse(&request.target)?;
        let text = request.ports.as_deref().unwrap_or(DEFAULT_PORT_SPEC);
        let spec = PortSpec::parse_at_most(text, max_spec_items)?;
        if let Some(limit) = max_ports.filter(|limit| spec.ports.len() > *limit as usize) {
            return Err(ScanError::TooManyPorts { ports: spec.ports.len(), limit });
        }
        let denied = policy.denied_ports(&spec);
        if let (Some(first), Some(allow_ports)) = (denied.first(), policy.allow_ports_text()) {
            return Err(ScanError::PortsDenied {
                count: denied.len(),
                listed: describe_ports(&denied),
                first: *first,
                allow_ports: allow_ports.to_string(),
            });
        }
        Ok(ScanPlan {
            input: request.target.trim().to_string(),
            host,
            spec,
            timeout_ms,
            retries,
            family: request.family,
            address: request.address,
            policy,
            budget,
            identify: request.identify,
            show_processes: true,
        })
    }

    /// The chosen addresses the policy allows, and a denial (naming its rule) for each other.
    fn allowed(&self, chosen: Vec<IpAddr>) -> (Vec<IpAddr>, Vec<String>) {
        let mut allowed = Vec::new();
        let mut denied = Vec::new();
        for address in chosen {
            match self.policy.check_address(address) {
                Ok(()) => allowed.push(address),
                Err(denial) => {
                    self.policy.count(&denial);
                    denied.push(denial.to_string());
                }
            }
        }
        (allowed, denied)
    }

    /// The resolved addresses this plan scans, or why none.
    fn choose(&self, resolution: &Resolution) -> Result<Vec<IpAddr>, String> {
        if resolution.status != DnsStatus::Ok {
            let detail = resolution.detail.as_deref().unwrap_or("no details");
            return Err(format!("{} did not resolve ({detail}): nothing to scan", self.input));
        }
        let found = resolution.addresses.iter().copied();
        let chosen: Vec<IpAddr> = match (self.address, self.family) {
            (Some(address), _) => found.filter(|ip| *ip == address).collect(),
            (None, Some(family)) => found.filter(|ip| Family::of(ip) == family).collect(),
            (None, None) => found.collect(),
        };
        if !chosen.is_empty() {
            return Ok(chosen);
        }
        let listed: Vec<String> = resolution.addresses.iter().map(IpAddr::to_string).collect();
        let wanted = match (self.address, self.family) {
            (Some(address), _) => format!("address {address}"),
            (None, Some(family)) => format!("{} address", family.label()),
            (None, None) => "address".to_string(),
        };
        Err(format!("{} resolves to {} only: no {wanted} to scan", self.input, listed.join(", ")))
    }

    fn settings(&self, window: usize, work: usize) -> Settings {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        // Small scans are over before a second thread would help.
        let threads = if work < 2_048 { 1 } else { cores.min(MAX_THREADS) };
        Settings {
            timeout: Duration::from_millis(u64::from(self.timeout_ms)),
            retries: self.retries,
            window: window.min(work.max(1)),
            threads,
        }
    }
}

/// Runs the scan with at most `window` connects in flight, handing each step to `emit`.
pub async fn run(plan: &ScanPlan, window: usize, mut emit: impl FnMut(ScanEvent)) {
    let start = Instant::now();
    let mut step = |step| emit(ScanEvent { at: clock::now(), step });
    step(ScanStep::Started {
        target: plan.input.clone(),
        ports: plan.spec.text.clone(),
        port_count: plan.spec.ports.len() as u32,
        timeout_ms: plan.timeout_ms,
        retries: plan.retries,
    });
    let resolution = probe::resolve(&plan.host, DNS_DEADLINE).await;
    let (addresses, denied, problem) = match plan.choose(&resolution) {
        Ok(chosen) => match plan.allowed(chosen) {
            (allowed, denied) if allowed.is_empty() => {
                let problem = format!(
                    "this agent's target policy denies every address to scan: {}",
                    denied.join("; ")
                );
                (allowed, denied, Some(problem))
            }
            (allowed, denied) => (allowed, denied, None),
        },
        Err(problem) => (Vec::new(), Vec::new(), Some(problem)),
    };
    let work = Arc::new(Work {
        addresses: addresses.clone(),
        ports: plan.spec.ports.clone(),
        budget: plan.budget.clone(),
        loss: LossEstimate::default(),
    });
    let settings = plan.settings(window, work.len());
    let (sender, receiver) = mpsc::unbounded_channel();
    let stop = StopOnDrop(StopFlag::default());
    let started = match work.is_empty() {
        true => Ok(()),
        false => engine::start(work.clone(), settings, stop.0.clone(), sender),
    };
    let (addresses, problem) = match started {
        Ok(()) => (addresses, problem),
        Err(error) => (Vec::new(), Some(format!("the scan could not start: {error}"))),
    };
    let scanning = !addresses.is_empty();
    let window = settings.window as u32;
    step(ScanStep::Resolved { resolution, addresses, window, problem, denied });
    let mut tally = Tally::new(if scanning { work.len() as u64 } else { 0 });
    let mut open = Vec::new();
    if scanning {
        let mut noting = |found: ScanStep| {
            if let ScanStep::Progress(progress) = &found {
                let opened = progress.results.iter().filter(|r| r.state == ConnectState::Open);
                for address in opened.map(|r| SocketAddr::new(r.address, r.port)) {
                    if open.len() < MAX_IDENTIFIED_PORTS && !open.contains(&address) {
                        open.push(address);
                    }
                }
            }
            step(found)
        };
        stream_batches(receiver, &mut tally, &mut noting).await;
    }
    let found = open_ports::find(plan, &open).await;
    let elapsed_us = clock::micros(start.elapsed());
    let tries = work.loss.retries(plan.retries) + 1;
    let loss = work.loss.summary(tally.counts.timeout, tries);
    let counts = tally.counts;
    step(ScanStep::Done { outcome: Outcome::Completed, counts, elapsed_us, loss, found });
}

/// A few ports, for a message: `25, 8080 and 3 more`.
fn describe_ports(ports: &[u16]) -> String {
    const SHOWN: usize = 5;
    let listed: Vec<String> = ports.iter().take(SHOWN).map(u16::to_string).collect();
    match ports.len().saturating_sub(SHOWN) {
        0 => listed.join(", "),
        more => format!("{} and {more} more", listed.join(", ")),
    }
}

/// Stops the engine when the scan's future is dropped (cancelled) or ends.
struct StopOnDrop(StopFlag);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop();
    }
}

/// Gathers the engine's outcomes and sends a batch every [`BATCH_INTERVAL`] (sooner when it
/// holds [`MAX_BATCH_RESULTS`]), until the engine's threads have all finished.
async fn stream_batches(
    mut outcomes: mpsc::UnboundedReceiver<Vec<PortOutcome>>,
    tally: &mut Tally,
    step: &mut impl FnMut(ScanStep),
) {
    let mut ticker = tokio::time::interval(BATCH_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        tokio::select! {
            received = outcomes.recv() => match received {
                Some(batch) => {
                    tally.absorb(batch);
                    if tally.results.len() >= MAX_BATCH_RESULTS {
                        step(ScanStep::Progress(tally.batch()));
                    }
                }
                None => break,
            },
            _ = ticker.tick() => {
                if tally.has_news() {
                    step(ScanStep::Progress(tally.batch()));
                }
            }
        }
    }
    if tally.has_news() {
        step(ScanStep::Progress(tally.batch()));
    }
}

/// Counts, rate, and the outcomes not sent yet.
struct Tally {
    started: Instant,
    total: u64,
    done: u64,
    counts: StateCounts,
    /// Ports not refused, not sent yet.
    results: Vec<PortResult>,
    /// Refused ports not sent yet (sorted when sent).
    refused: BTreeSet<SocketAddr>,
}

impl Tally {
    fn new(total: u64) -> Tally {
        Tally {
            started: Instant::now(),
            total,
            done: 0,
            counts: StateCounts::default(),
            results: Vec::new(),
            refused: BTreeSet::new(),
        }
    }

    fn absorb(&mut self, outcomes: Vec<PortOutcome>) {
        self.done += outcomes.len() as u64;
        for outcome in outcomes {
            self.counts.add(outcome.state, 1);
            // A refused port that an ICMP error answered is a firewall's, not a closed port's:
            // it is listed, with its ICMP detail.
            if outcome.state == ConnectState::Refused && outcome.icmp.is_none() {
                self.refused.insert(outcome.target);
            } else {
                self.results.push(port_result(outcome));
            }
        }
    }

    fn has_news(&self) -> bool {
        !self.results.is_empty() || !self.refused.is_empty()
    }

    /// The batch to send now, with the progress so far.
    fn batch(&mut self) -> ScanProgress {
        let elapsed = self.started.elapsed().as_secs_f64();
        let rate_per_s = if elapsed > 0.0 { self.done as f64 / elapsed } else { 0.0 };
        let left = self.total.saturating_sub(self.done);
        let eta_ms = (rate_per_s > 0.0).then(|| (left as f64 / rate_per_s * 1000.0) as u64);
        let mut results = std::mem::take(&mut self.results);
        results.sort_by_key(|result| (result.address, result.port));
        ScanProgress {
            done: self.done,
            total: self.total,
            rate_per_s,
            eta_ms,
            results,
            refused: runs(std::mem::take(&mut self.refused)),
        }
    }
}

fn port_result(outcome: PortOutcome) -> PortResult {
    PortResult {
        address: outcome.target.ip(),
        port: outcome.target.port(),
        state: outcome.state,
        errno: outcome.errno,
        icmp: outcome.icmp,
        elapsed_us: outcome.elapsed_us,
        tries: outcome.tries,
        service: ports::service_name(outcome.target.port()).map(str::to_string),
    }
}

/// Sorted ports as runs of consecutive ports per address.
fn runs(ports: BTreeSet<SocketAddr>) -> Vec<PortRun> {
    let mut runs: Vec<PortRun> = Vec::new();
    for target in ports {
        let (address, port) = (target.ip(), target.port());
        match runs.last_mut() {
            Some(run) if run.address == address && u32::from(run.last) + 1 == u32::from(port) => {
                run.last = port;
            }
            _ => runs.push(PortRun { address, first: port, last: port }),
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;
    use whyrefused_shared::ScanReport;

    fn open() -> Arc<TargetPolicy> {
        Arc::new(TargetPolicy::unrestricted())
    }

    fn plan(target: &str, ports: &str) -> ScanPlan {
        ScanPlan::from_request(&ScanRequest::new(target, ports), Caps::NONE, open(), None).unwrap()
    }

    #[test]
    fn ports_outside_allow_ports_refuse_the_scan_naming_the_rule() {
        let spec = PortSpec::parse("22,80,443").unwrap();
        let policy = Arc::new(TargetPolicy::unrestricted().allow_ports(spec));
        let request = |ports: &str| ScanRequest::new("db", ports);
        let error = ScanPlan::from_request(&request("20-30,80"), Caps::NONE, policy.clone(), None)
            .unwrap_err();
        assert_eq!(error.code(), ErrorCode::PolicyDenied);
        assert_eq!(
            error.to_string(),
            "the port list holds 10 port(s) this agent may not connect to (20, 21, 23, 24, 25 \
             and 5 more): port 20 is not in --allow-ports 22,80,443; ask only for ports in it"
        );
        assert!(ScanPlan::from_request(&request("443,22"), Caps::NONE, policy, None).is_ok());
    }

    #[tokio::test]
    async fn denied_addresses_are_left_out_and_a_scan_of_only_denied_ones_sends_nothing() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let deny = TargetPolicy::unrestricted().deny("127.0.0.0/8".parse().unwrap());
        let request = ScanRequest::new("127.0.0.1", port.to_string());
        let plan = ScanPlan::from_request(&request, Caps::NONE, Arc::new(deny), None).unwrap();
        let mut report = ScanReport::default();
        run(&plan, 16, |event| report.apply(&event)).await;
        assert_eq!(report.denied, ["127.0.0.1 is denied by --deny 127.0.0.0/8"]);
        assert_eq!(
            report.problem.as_deref(),
            Some(
                "this agent's target policy denies every address to scan: 127.0.0.1 is denied \
                 by --deny 127.0.0.0/8"
            )
        );
        assert!(report.addresses.is_empty());
        assert_eq!((report.total, report.counts.total()), (0, 0), "no port was tried");
        // A name with an allowed and a denied address scans the allowed one only.
        let mut both = plan.clone();
        both.policy = Arc::new(TargetPolicy::unrestricted().deny("::1".parse().unwrap()));
        let (allowed, denied) =
            both.allowed(vec!["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()]);
        assert_eq!(allowed, ["127.0.0.1".parse::<IpAddr>().unwrap()]);
        assert_eq!(denied, ["::1 is denied by --deny ::1/128"]);
    }

    #[test]
    fn requests_are_validated_with_the_right_codes() {
        let error = |request: ScanRequest, max_ports| {
            let caps = Caps { max_ports, ..Caps::NONE };
            ScanPlan::from_request(&request, caps, open(), None)
        };
        assert_eq!(
            error(ScanRequest::new("db:80", "80"), None).unwrap_err().code(),
            ErrorCode::InvalidTarget
        );
        assert_eq!(
            error(ScanRequest::new("db", "0-5"), None).unwrap_err().code(),
            ErrorCode::InvalidPorts
        );
        let too_many = error(ScanRequest::new("db", "1-2000"), Some(1000)).unwrap_err();
        assert_eq!(too_many, ScanError::TooManyPorts { ports: 2000, limit: 1000 });
        assert_eq!(too_many.code(), ErrorCode::TooManyPorts);
        let retries = ScanRequest { retries: Some(9), ..ScanRequest::new("db", "80") };
        assert_eq!(error(retries, None).unwrap_err(), ScanError::Retries(9));
        let timeout = ScanRequest { timeout_ms: Some(0), ..ScanRequest::new("db", "80") };
        assert_eq!(error(timeout, None).unwrap_err().code(), ErrorCode::InvalidOption);
        let items = Caps { max_spec_items: 2, ..Caps::NONE };
        let too_long =
            ScanPlan::from_request(&ScanRequest::new("db", "1,2,3"), items, open(), None);
        assert_eq!(too_long.unwrap_err(), ScanError::Ports(PortSpecError::TooManyItems(3, 2)));
        let defaults = plan("db", "top1000");
        assert_eq!((defaults.timeout_ms, defaults.retries), (DEFAULT_SCAN_TIMEOUT_MS, 1));
        let no_spec = ScanPlan::from_request(
            &ScanRequest { ports: None, ..ScanRequest::new("db", "") },
            Caps::NONE,
            open(),
            None,
        );
        assert_eq!(no_spec.unwrap().spec.ports.len(), 1000);
    }

    #[test]
    fn sorted_ports_become_runs_per_address() {
        let set: BTreeSet<SocketAddr> =
            ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3", "127.0.0.1:5", "[::1]:6"]
                .iter()
                .map(|s| s.parse().unwrap())
                .collect();
        let runs = runs(set);
        let shape: Vec<(String, u16, u16)> =
            runs.iter().map(|r| (r.address.to_string(), r.first, r.last)).collect();
        assert_eq!(
            shape,
            [("127.0.0.1".into(), 1, 3), ("127.0.0.1".into(), 5, 5), ("::1".into(), 6, 6)]
        );
    }

    #[test]
    fn the_family_choice_filters_the_resolved_addresses_and_says_when_none_is_left() {
        let resolution = Resolution {
            host: "localhost".into(),
            method: whyrefused_shared::ResolveMethod::System,
            status: DnsStatus::Ok,
            addresses: vec!["127.0.0.1".parse().unwrap()],
            detail: None,
            elapsed_us: 1,
        };
        let mut only_v6 = plan("localhost", "80");
        only_v6.family = Some(Family::Ipv6);
        let problem = only_v6.choose(&resolution).unwrap_err();
        assert_eq!(problem, "localhost resolves to 127.0.0.1 only: no IPv6 address to scan");
        assert_eq!(plan("localhost", "80").choose(&resolution).unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_loopback_range_streams_batches_that_fold_into_every_port() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let open = listener.local_addr().unwrap().port();
        let low = open.saturating_sub(500).max(1);
        let high = open.saturating_add(500);
        let plan = plan("127.0.0.1", &format!("{low}-{high}"));
        let mut report = ScanReport::default();
        let mut kinds = Vec::new();
        run(&plan, 256, |event| {
            kinds.push(event.step.name());
            report.apply(&event);
        })
        .await;
        assert_eq!(kinds.first(), Some(&"started"));
        assert_eq!(kinds[1], "resolved");
        assert_eq!(kinds.last(), Some(&"done"));
        assert!(kinds.len() < 50, "batches, not a message per port: {}", kinds.len());
        assert_eq!(report.counts.total(), u64::from(high - low + 1));
        assert_eq!(report.done, report.total);
        let localhost = "127.0.0.1".parse().unwrap();
        assert_eq!(report.state_of(localhost, open), Some(ConnectState::Open));
        let scanned = (low..=high).filter(|p| report.state_of(localhost, *p).is_some()).count();
        assert_eq!(scanned, usize::from(high - low + 1), "every port has a state");
    }

    #[tokio::test]
    async fn an_address_of_the_wrong_family_ends_with_the_problem_and_no_ports() {
        let mut plan = plan("127.0.0.1", "80");
        plan.family = Some(Family::Ipv6);
        let mut report = ScanReport::default();
        run(&plan, 16, |event| report.apply(&event)).await;
        assert_eq!(
            report.problem.as_deref(),
            Some("127.0.0.1 resolves to 127.0.0.1 only: no IPv6 address to scan")
        );
        assert_eq!((report.total, report.counts.total()), (0, 0));
        assert_eq!(report.outcome, Some(Outcome::Completed));
    }
}
