//! A port scan: the request, the steps that stream back in batches, and [`ScanReport`], their fold.
//!
//! A scan connects to every port of a spec on every chosen address, with the same classification
//! as a check. Results stream as [`ScanStep::Progress`] batches (every few tens of milliseconds,
//! never one message per port): every port that is not `refused` individually, and the refused
//! ones as runs of consecutive ports, so a full 65,535-port range costs a few dozen messages.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::check::{ConnectState, Errno, Family, Outcome, Resolution, Timestamp};
use crate::diagnosis::{IcmpError, Listener};
use crate::service::ServiceIdentity;

/// A scan's connect deadline for each port when the request names none. Shorter than a check's:
/// an answering host replies in milliseconds, and a filtered port is retried anyway.
pub const DEFAULT_SCAN_TIMEOUT_MS: u32 = 1_000;

/// How many times a timed-out port is tried again before it is called filtered, by default: a
/// single lost SYN must not hide an open port.
pub const DEFAULT_SCAN_RETRIES: u32 = 1;

/// The most retries a scan may ask for.
pub const MAX_SCAN_RETRIES: u32 = 5;

/// The port spec a scan uses when the request names none.
pub const DEFAULT_PORT_SPEC: &str = "top1000";

/// What a client asks the agent to scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanRequest {
    /// The host: a name, an IPv4 address, or an IPv6 address (brackets optional). No port: the
    /// ports come from `ports`.
    pub target: String,
    /// Ports and ranges, comma-separated: `22,80,8000-8100`, `1-65535` (or `all`), `top100`,
    /// `top1000` (default [`DEFAULT_PORT_SPEC`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<String>,
    /// The connect deadline for each port, in milliseconds (default [`DEFAULT_SCAN_TIMEOUT_MS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u32>,
    /// How many times a timed-out port is tried again (default [`DEFAULT_SCAN_RETRIES`], at most
    /// [`MAX_SCAN_RETRIES`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// Scan only the resolved addresses of this family (`-4` / `-6`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<Family>,
    /// Scan only this one of the resolved addresses (`--address`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<IpAddr>,
    /// Name what answers on each open port (at most [`MAX_IDENTIFIED_PORTS`]), as a check's
    /// `identify` does.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub identify: bool,
}

impl ScanRequest {
    /// A request for `target` and `ports` with default options.
    pub fn new(target: impl Into<String>, ports: impl Into<String>) -> Self {
        ScanRequest {
            target: target.into(),
            ports: Some(ports.into()),
            timeout_ms: None,
            retries: None,
            family: None,
            address: None,
            identify: false,
        }
    }
}

/// One step of a scan and the moment it happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanEvent {
    /// When the agent observed this step.
    pub at: Timestamp,
    /// What happened.
    pub step: ScanStep,
}

/// The steps of a scan, in order: `started`, `resolved`, any number of `progress` batches,
/// `done`. A cancelled scan goes straight to `done`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ScanStep {
    /// The request was validated and the scan began.
    Started {
        /// The host as the user gave it.
        target: String,
        /// The port spec as the agent understood it (`1-65535`, `top100`).
        ports: String,
        /// How many distinct ports the spec holds (per address).
        port_count: u32,
        /// The connect deadline for each port, in milliseconds.
        timeout_ms: u32,
        /// How many times a timed-out port is tried again.
        retries: u32,
    },
    /// The host was resolved, and the addresses to scan chosen from the result.
    Resolved {
        /// The resolution and its timing.
        resolution: Resolution,
        /// The addresses that will be scanned (all resolved ones, or those `-4`/`-6`/`--address`
        /// chose); empty when nothing can be scanned, and `problem` then says why.
        addresses: Vec<IpAddr>,
        /// How many connects the scan makes at most at once.
        #[serde(default)]
        window: u32,
        /// Why nothing will be scanned, when that is so.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        problem: Option<String>,
        /// The chosen addresses the agent's target policy denies, each with the rule that
        /// denies it (`169.254.169.254 is denied by the default rule "link-local
        /// 169.254.0.0/16"`): nothing is sent to them, and `addresses` leaves them out.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        denied: Vec<String>,
    },
    /// A batch of finished ports and where the scan stands.
    Progress(ScanProgress),
    /// The scan is over; no more events carry its id.
    Done {
        /// Whether it ran to the end.
        outcome: Outcome,
        /// How many ports ended in each state.
        counts: StateCounts,
        /// The whole scan's duration, in microseconds.
        elapsed_us: u64,
        /// The packet loss the scan saw (ports that answered only on a retry), when it saw any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        loss: Option<ScanLoss>,
        /// What was found behind the open ports once the scan ended, when anything was.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        found: Option<Box<OpenPortsFound>>,
    },
}

/// What a scan finds behind its open ports once it ends (at most [`MAX_IDENTIFIED_PORTS`]):
/// what answers on each (with `identify`), and, when the scanned host is the agent's own, the
/// listening socket behind each with its owner.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct OpenPortsFound {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<crate::service::ServiceIdentity>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listeners: Vec<crate::diagnosis::Listener>,
    /// Why the listeners' owners are left out (a client that is not on the agent's host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owners_hidden: Option<String>,
}

impl ScanLoss {
    /// The loss in one paragraph, the same for the CLI and the page.
    pub fn describe(&self) -> String {
        format!(
            "Packet loss: about {} of tries went unanswered (95% CI {}-{}%; {} of {} answering \
             ports answered only on a retry). Silent ports got up to {} tries, so about {:.1} of \
             the {} silent ports may be open or closed all the same.",
            crate::loss::percent(self.rate),
            (self.ci_low * 100.0).round(),
            (self.ci_high * 100.0).round(),
            self.answered_on_retry,
            self.answered,
            self.tries,
            self.expected_live_among_silent,
            self.silent,
        )
    }
}

/// The loss a scan estimated from ports that answered only on a retry, and what it means for
/// the ports that stayed silent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanLoss {
    /// The estimated chance that one try goes unanswered, from 0 to 1.
    pub rate: f64,
    /// The lower end of its 95% confidence interval (Wilson).
    pub ci_low: f64,
    /// The upper end.
    pub ci_high: f64,
    /// Ports that answered only on a retry.
    pub answered_on_retry: u64,
    /// Ports that answered at all (open or closed).
    pub answered: u64,
    /// How many tries a silent port got by the end (raised as the loss showed).
    pub tries: u32,
    /// Ports that stayed silent.
    pub silent: u64,
    /// How many of the silent ports are, expected, open or closed all the same: live ports whose
    /// every try was lost.
    pub expected_live_among_silent: f64,
}

impl ScanStep {
    /// The step's wire name (`progress`).
    pub fn name(&self) -> &'static str {
        match self {
            ScanStep::Started { .. } => "started",
            ScanStep::Resolved { .. } => "resolved",
            ScanStep::Progress(_) => "progress",
            ScanStep::Done { .. } => "done",
        }
    }
}

/// A batch of results, and the scan's progress when it was sent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScanProgress {
    /// Ports finished so far, over every address.
    pub done: u64,
    /// Ports to scan in all (ports per address times addresses).
    pub total: u64,
    /// Ports finished per second so far.
    pub rate_per_s: f64,
    /// The estimated time left, in milliseconds, once a rate is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_ms: Option<u64>,
    /// Every port of this batch that did not end `refused`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub results: Vec<PortResult>,
    /// The `refused` ports of this batch, as runs of consecutive ports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<PortRun>,
}

/// How one port of one address ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortResult {
    /// The address scanned.
    pub address: IpAddr,
    /// The port.
    pub port: u16,
    /// How the last connect to it ended.
    pub state: ConnectState,
    /// The OS error behind a failed connect (absent for `open` and `timeout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno: Option<Errno>,
    /// The ICMP error that ended the connect, when the network sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp: Option<IcmpError>,
    /// How long the last connect took, in microseconds.
    pub elapsed_us: u64,
    /// How many connects it took (more than one when a timeout was retried).
    pub tries: u32,
    /// The service usually found on this port (`ssh`, `postgresql`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

/// A run of consecutive ports of one address that all ended `refused`. A run that ends before it
/// starts does not decode (a hostile or broken agent's batch is refused whole, never wrapped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PortRunFields")]
pub struct PortRun {
    /// The address scanned.
    pub address: IpAddr,
    /// The first port of the run.
    pub first: u16,
    /// The last port of the run (inclusive).
    pub last: u16,
}

/// A [`PortRun`] as it arrives, before its order is checked.
#[derive(Deserialize)]
struct PortRunFields {
    address: IpAddr,
    first: u16,
    last: u16,
}

impl TryFrom<PortRunFields> for PortRun {
    type Error = String;

    fn try_from(fields: PortRunFields) -> Result<PortRun, String> {
        let PortRunFields { address, first, last } = fields;
        if first > last {
            return Err(format!("a port run from {first} to {last} runs backwards"));
        }
        Ok(PortRun { address, first, last })
    }
}

impl PortRun {
    /// How many ports the run holds.
    pub fn len(&self) -> u32 {
        u32::from(self.last) - u32::from(self.first) + 1
    }

    /// A run always holds at least one port.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// How many ports ended in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateCounts {
    /// Something listens.
    #[serde(default)]
    pub open: u64,
    /// A reset (or an ICMP port-unreachable) answered.
    #[serde(default)]
    pub refused: u64,
    /// No answer, after every retry: filtered.
    #[serde(default)]
    pub timeout: u64,
    /// An ICMP host-unreachable or admin-prohibited, or no neighbour answer.
    #[serde(default)]
    pub host_unreachable: u64,
    /// No route.
    #[serde(default)]
    pub network_unreachable: u64,
    /// This host's own firewall forbade the connect.
    #[serde(default)]
    pub permission_denied: u64,
    /// Reset during the handshake.
    #[serde(default)]
    pub reset: u64,
    /// Any other error.
    #[serde(default)]
    pub error: u64,
}

impl StateCounts {
    /// Counts `n` more ports in `state`.
    pub fn add(&mut self, state: ConnectState, n: u64) {
        *self.slot(state) += n;
    }

    /// Counts `n` fewer ports in `state` (a port reported again, in another state).
    pub fn remove(&mut self, state: ConnectState, n: u64) {
        let slot = self.slot(state);
        *slot = slot.saturating_sub(n);
    }

    /// How many ports ended in `state`.
    pub fn get(&self, state: ConnectState) -> u64 {
        let mut copy = *self;
        *copy.slot(state)
    }

    /// Every port counted.
    pub fn total(&self) -> u64 {
        ConnectState::ALL.iter().map(|state| self.get(*state)).sum()
    }

    fn slot(&mut self, state: ConnectState) -> &mut u64 {
        match state {
            ConnectState::Open => &mut self.open,
            ConnectState::Refused => &mut self.refused,
            ConnectState::Timeout => &mut self.timeout,
            ConnectState::HostUnreachable => &mut self.host_unreachable,
            ConnectState::NetworkUnreachable => &mut self.network_unreachable,
            ConnectState::PermissionDenied => &mut self.permission_denied,
            ConnectState::Reset => &mut self.reset,
            ConnectState::Error => &mut self.error,
        }
    }
}

/// Everything known about one scan so far: start from [`ScanReport::default`] and
/// [`apply`](ScanReport::apply) each event. The page renders it at every step; `whyrefused scan
/// --json` prints the finished one. Memory stays small whatever the range: refused ports are
/// kept as merged runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScanReport {
    /// The host as the user gave it.
    pub target: String,
    /// The port spec as the agent understood it.
    pub ports: String,
    /// Distinct ports per address.
    pub port_count: u32,
    /// The connect deadline for each port, in milliseconds.
    pub timeout_ms: u32,
    /// How many times a timed-out port is tried again.
    pub retries: u32,
    /// When the scan started.
    pub started_at: Option<Timestamp>,
    /// The host's resolution.
    pub dns: Option<Resolution>,
    /// The addresses scanned.
    pub addresses: Vec<IpAddr>,
    /// How many connects ran at most at once.
    pub window: u32,
    /// Why nothing was scanned, when that is so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// The addresses the agent's target policy kept out of the scan, each with its rule.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub denied: Vec<String>,
    /// Ports finished so far.
    pub done: u64,
    /// Ports to scan in all.
    pub total: u64,
    /// Ports finished per second, as last reported.
    pub rate_per_s: f64,
    /// Estimated time left in milliseconds, as last reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_ms: Option<u64>,
    /// Every port that did not end `refused`, by address (in scan order) then port.
    pub results: Vec<PortResult>,
    /// The refused ports, as merged runs by address then port.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<PortRun>,
    /// How many ports ended in each state (counted as batches arrive; final with `done`).
    pub counts: StateCounts,
    /// How the scan ended; absent while it runs.
    pub outcome: Option<Outcome>,
    /// The whole scan's duration in microseconds.
    pub elapsed_us: Option<u64>,
    /// The packet loss the scan saw, when it saw any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<ScanLoss>,
    /// What was found behind the open ports once the scan ended: what answers on each (with
    /// `identify`) and, when the scanned host is the agent's own, the listening socket behind
    /// each, with its owner when it may be named (at most [`MAX_IDENTIFIED_PORTS`] ports).
    #[serde(flatten)]
    pub found: OpenPortsFound,
}

/// The most open ports of one scan whose service is identified.
pub const MAX_IDENTIFIED_PORTS: usize = 64;

impl ScanReport {
    /// The listener of the agent's host behind an open port, when the scan found it.
    pub fn listener_behind(&self, address: SocketAddr) -> Option<&Listener> {
        self.found
            .listeners
            .iter()
            .find(|l| l.address.port() == address.port() && l.accepts(&address.ip()))
    }

    /// Who listens behind an open port, in words, as the CLI and the page say it:
    /// `listening on 0.0.0.0:22: pid 812 (sshd)`.
    pub fn owner_words(&self, address: SocketAddr) -> Option<String> {
        let listener = self.listener_behind(address)?;
        let owner = match (listener.owner(), &self.found.owners_hidden) {
            (Some(owner), _) => owner,
            (None, Some(hidden)) => hidden.clone(),
            (None, None) => "owner not readable (run as root to see other users' processes)".into(),
        };
        Some(format!("listening on {}: {owner}", listener.address))
    }

    /// What answers on an open port, when the scan identified it.
    pub fn service_behind(&self, address: SocketAddr) -> Option<&ServiceIdentity> {
        self.found.services.iter().find(|s| s.address == address)
    }

    /// Folds one event into the report.
    pub fn apply(&mut self, event: &ScanEvent) {
        match &event.step {
            ScanStep::Started { target, ports, port_count, timeout_ms, retries } => {
                self.target = target.clone();
                self.ports = ports.clone();
                self.port_count = *port_count;
                self.timeout_ms = *timeout_ms;
                self.retries = *retries;
                self.started_at = Some(event.at.clone());
            }
            ScanStep::Resolved { resolution, addresses, window, problem, denied } => {
                self.dns = Some(resolution.clone());
                self.addresses = addresses.clone();
                self.window = *window;
                self.problem = problem.clone();
                self.denied = denied.clone();
                self.total = u64::from(self.port_count) * addresses.len() as u64;
            }
            ScanStep::Progress(progress) => self.add_batch(progress),
            ScanStep::Done { outcome, counts, elapsed_us, loss, found } => {
                if let Some(found) = found {
                    self.found = (**found).clone();
                }
                self.loss = loss.clone();
                self.outcome = Some(*outcome);
                self.counts = *counts;
                self.elapsed_us = Some(*elapsed_us);
                self.eta_ms = None;
            }
        }
    }

    /// Whether the scan has ended.
    pub fn is_done(&self) -> bool {
        self.outcome.is_some()
    }

    /// The results in one state, in address then port order.
    pub fn in_state(&self, state: ConnectState) -> impl Iterator<Item = &PortResult> {
        self.results.iter().filter(move |result| result.state == state)
    }

    /// The state a port of an address ended in, if it has been scanned.
    pub fn state_of(&self, address: IpAddr, port: u16) -> Option<ConnectState> {
        if let Ok(index) = self.find_result(address, port) {
            return Some(self.results[index].state);
        }
        let refused = self
            .refused
            .iter()
            .any(|run| run.address == address && (run.first..=run.last).contains(&port));
        refused.then_some(ConnectState::Refused)
    }

    fn add_batch(&mut self, progress: &ScanProgress) {
        self.done = progress.done;
        self.total = progress.total;
        self.rate_per_s = progress.rate_per_s;
        self.eta_ms = progress.eta_ms;
        for result in &progress.results {
            self.counts.add(result.state, 1);
            match self.find_result(result.address, result.port) {
                Ok(index) => {
                    let replaced = std::mem::replace(&mut self.results[index], result.clone());
                    self.counts.remove(replaced.state, 1);
                }
                Err(index) => self.results.insert(index, result.clone()),
            }
        }
        for run in &progress.refused {
            self.counts.add(ConnectState::Refused, u64::from(run.len()));
            self.merge_run(*run);
        }
    }

    /// Where a result is, or would go, in address (scan order) then port order.
    fn find_result(&self, address: IpAddr, port: u16) -> Result<usize, usize> {
        let key = (self.address_rank(address), port);
        self.results.binary_search_by_key(&key, |r| (self.address_rank(r.address), r.port))
    }

    fn address_rank(&self, address: IpAddr) -> usize {
        self.addresses.iter().position(|a| *a == address).unwrap_or(usize::MAX)
    }

    /// Inserts a run in order, merging it with the runs it touches.
    fn merge_run(&mut self, run: PortRun) {
        let key = |r: &PortRun| (self.address_rank(r.address), r.first);
        let mut index = self.refused.partition_point(|r| key(r) < key(&run));
        let mut merged = run;
        if index > 0 {
            let before = self.refused[index - 1];
            if before.address == run.address && u32::from(before.last) + 1 >= u32::from(run.first) {
                merged.first = before.first;
                merged.last = merged.last.max(before.last);
                index -= 1;
                self.refused.remove(index);
            }
        }
        while let Some(after) = self.refused.get(index).copied() {
            if after.address != merged.address
                || u32::from(merged.last) + 1 < u32::from(after.first)
            {
                break;
            }
            merged.last = merged.last.max(after.last);
            self.refused.remove(index);
        }
        self.refused.insert(index, merged);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{DnsStatus, ResolveMethod};

    fn at(step: ScanStep) -> ScanEvent {
        ScanEvent { at: Timestamp("2026-11-25T10:00:00.000000Z".into()), step }
    }

    fn result(port: u16, state: ConnectState) -> PortResult {
        PortResult {
            address: "127.0.0.1".parse().unwrap(),
            port,
            state,
            errno: None,
            icmp: None,
            elapsed_us: 50,
            tries: 1,
            service: None,
        }
    }

    fn run(first: u16, last: u16) -> PortRun {
        PortRun { address: "127.0.0.1".parse().unwrap(), first, last }
    }

    #[test]
    fn a_run_that_ends_before_it_starts_does_not_decode() {
        let backwards = r#"{"address":"127.0.0.1","first":90,"last":10}"#;
        let error = serde_json::from_str::<PortRun>(backwards).unwrap_err().to_string();
        assert!(error.contains("from 90 to 10 runs backwards"), "{error}");
        let forwards = r#"{"address":"127.0.0.1","first":10,"last":90}"#;
        assert_eq!(serde_json::from_str::<PortRun>(forwards).unwrap().len(), 81);
        let single = r#"{"address":"127.0.0.1","first":65535,"last":65535}"#;
        assert_eq!(serde_json::from_str::<PortRun>(single).unwrap().len(), 1);
    }

    fn started_report() -> ScanReport {
        let mut report = ScanReport::default();
        report.apply(&at(ScanStep::Started {
            target: "localhost".into(),
            ports: "1-100".into(),
            port_count: 100,
            timeout_ms: 1000,
            retries: 1,
        }));
        report.apply(&at(ScanStep::Resolved {
            resolution: Resolution {
                host: "localhost".into(),
                method: ResolveMethod::System,
                status: DnsStatus::Ok,
                addresses: vec!["127.0.0.1".parse().unwrap()],
                detail: None,
                elapsed_us: 10,
            },
            addresses: vec!["127.0.0.1".parse().unwrap()],
            window: 512,
            problem: None,
            denied: Vec::new(),
        }));
        report
    }

    #[test]
    fn batches_fold_into_ordered_results_and_merged_runs() {
        let mut report = started_report();
        assert_eq!(report.total, 100);
        report.apply(&at(ScanStep::Progress(ScanProgress {
            done: 60,
            total: 100,
            rate_per_s: 1000.0,
            eta_ms: Some(40),
            results: vec![result(22, ConnectState::Open), result(9, ConnectState::Timeout)],
            refused: vec![run(1, 8), run(10, 21), run(30, 40)],
        })));
        report.apply(&at(ScanStep::Progress(ScanProgress {
            done: 100,
            total: 100,
            rate_per_s: 1000.0,
            eta_ms: Some(0),
            results: vec![],
            refused: vec![run(23, 29), run(41, 100)],
        })));
        let ports: Vec<u16> = report.results.iter().map(|r| r.port).collect();
        assert_eq!(ports, [9, 22]);
        assert_eq!(report.refused, [run(1, 8), run(10, 21), run(23, 100)]);
        assert_eq!(report.counts.open, 1);
        assert_eq!(report.counts.timeout, 1);
        assert_eq!(report.counts.refused, 98);
        assert_eq!(report.counts.total(), 100);
        let localhost = "127.0.0.1".parse().unwrap();
        assert_eq!(report.state_of(localhost, 50), Some(ConnectState::Refused));
        assert_eq!(report.state_of(localhost, 22), Some(ConnectState::Open));
        assert_eq!(report.state_of(localhost, 200), None);
        assert_eq!(report.in_state(ConnectState::Open).count(), 1);
    }

    #[test]
    fn a_port_reported_again_replaces_its_result_and_is_counted_once() {
        let mut report = started_report();
        let batch = |state| {
            at(ScanStep::Progress(ScanProgress {
                done: 1,
                total: 100,
                results: vec![result(22, state)],
                ..ScanProgress::default()
            }))
        };
        report.apply(&batch(ConnectState::Timeout));
        report.apply(&batch(ConnectState::Open));
        assert_eq!(report.results.len(), 1);
        assert_eq!((report.counts.open, report.counts.timeout), (1, 0));
    }

    #[test]
    fn a_run_bridging_two_others_merges_all_three() {
        let mut report = started_report();
        report.merge_run(run(1, 5));
        report.merge_run(run(10, 20));
        report.merge_run(run(6, 9));
        assert_eq!(report.refused, [run(1, 20)]);
    }

    #[test]
    fn done_sets_the_final_counts_and_outcome() {
        let mut report = started_report();
        let mut counts = StateCounts::default();
        counts.add(ConnectState::Refused, 99);
        counts.add(ConnectState::Open, 1);
        report.apply(&at(ScanStep::Done {
            outcome: Outcome::Completed,
            counts,
            elapsed_us: 9,
            loss: None,
            found: Some(Box::new(OpenPortsFound {
                owners_hidden: Some("hidden from remote clients".into()),
                ..OpenPortsFound::default()
            })),
        }));
        assert!(report.is_done());
        assert_eq!(report.counts.get(ConnectState::Refused), 99);
        assert_eq!(report.found.owners_hidden.as_deref(), Some("hidden from remote clients"));
    }

    #[test]
    fn steps_round_trip_with_their_kind() {
        let progress = at(ScanStep::Progress(ScanProgress {
            done: 1,
            total: 2,
            rate_per_s: 3.5,
            eta_ms: None,
            results: vec![result(22, ConnectState::Open)],
            refused: vec![run(1, 3)],
        }));
        let json = serde_json::to_string(&progress).unwrap();
        assert!(json.contains(r#""step":{"kind":"progress","done":1"#), "{json}");
        let back: ScanEvent = serde_json::from_str(&json).unwrap();
        assert_eq!(back, progress);
        let request = ScanRequest::new("db", "22,80");
        assert_eq!(serde_json::to_string(&request).unwrap(), r#"{"target":"db","ports":"22,80"}"#);
    }
}
