//! A whole check: resolve the host, connect to every address at once, run the extra probes a
//! careful engineer would (liveness, nearby ports, local listeners, Happy Eyeballs), conclude,
//! and stream each step the moment it happens. The WebSocket session and the CLI both run
//! checks here.
//!
//! Everything in a check runs concurrently on one task, so a verdict costs about one probe's
//! time, and dropping the future stops every probe and closes every socket at once.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, LazyLock, OnceLock};
use std::time::{Duration, Instant};

use futures::future::join_all;
use tokio::sync::mpsc;
use tokio_util::task::AbortOnDropHandle;
use whyrefused_shared::HopReply;
use whyrefused_shared::path::DEFAULT_MAX_HOPS;
use whyrefused_shared::{
    Attempt, CheckEvent, CheckReport, CheckRequest, ConnectState, DEFAULT_RETRY_DELAY_MS,
    DEFAULT_TIMEOUT_MS, DnsDetail, DnsStatus, ErrorCode, Finding, Liveness, LocalDrops,
    MAX_RETRIES, MAX_TIMEOUT_MS, MtuProbe, NearbyPorts, Outcome, Path, Resolution, Round, Step,
    Tries, Verdict,
};

use crate::policy::TargetPolicy;
use crate::probe::after_connect::{self, AfterConnectPlan};
use crate::probe::dns_detail::Resolver;
use crate::probe::proxy::ProxyRequest;
use crate::probe::shared_sweep::{self, SharedSweeps};
use crate::probe::trace::{self as path_trace, TraceOptions};
use crate::probe::{
    self, dns_detail, firewall, host_pressure, icmp, identify, listeners, liveness, local_drops,
    local_ports, mtu, mtu_hops, nearby, repeat,
};
use crate::proxy::{ProxySettings, Reading, Routing};
use crate::rate::{ConnectBudget, SharedBudget};
use crate::target::{Host, Target, TargetError};
use crate::verdict::{self, Denied, RoundResult};
use crate::{clock, happy_eyeballs};

/// How long to wait for the system resolver before calling it timed out.
pub const DNS_DEADLINE: Duration = Duration::from_secs(5);

/// How long a connect may stay silent before liveness probes start beside it, so that a
/// filtered port's verdict costs the timeout and little more.
pub const LIVENESS_AFTER: Duration = Duration::from_millis(100);

/// The longest deadline of the extra probes (liveness, nearby ports): they only need an answer
/// from a live host, which comes in milliseconds. It stays under the 1 s before TCP's first
/// retransmission, so their SYNs never disturb the retransmission count that reveals a local
/// DROP rule (see [`local_drops`]).
pub const EXTRA_PROBE_DEADLINE: Duration = Duration::from_millis(900);

/// The shortest deadline for nearby-port probes; beyond it, it is many round trips (see
/// [`nearby_deadline`]).
pub const NEARBY_MIN_DEADLINE: Duration = Duration::from_millis(30);

/// How long the nameservers' own answers may still be awaited once the system resolver has
/// answered and every address has been probed: they only add detail then.
pub const DNS_DETAIL_GRACE: Duration = Duration::from_millis(250);

/// The longest pause a request may ask for between retried rounds.
pub const MAX_RETRY_DELAY_MS: u32 = 60_000;

/// What a side probe asks: the address, the asked port, the probe's deadline and the policy it
/// obeys (by identity: the agent holds one for every check, and two policies alive at once never
/// share an address).
type SideProbeKey = (IpAddr, u16, Duration, usize);

/// The nearby-port sweeps of checks running at once, shared (see [`shared_sweep`]).
static NEARBY_SWEEPS: LazyLock<SharedSweeps<SideProbeKey, NearbyPorts>> =
    LazyLock::new(|| SharedSweeps::new(shared_sweep::CAPACITY));

/// The liveness probes of checks running at once, shared likewise.
static LIVENESS_SWEEPS: LazyLock<SharedSweeps<SideProbeKey, Liveness>> =
    LazyLock::new(|| SharedSweeps::new(shared_sweep::CAPACITY));

/// A validated request: what to check and how.
#[derive(Debug, Clone)]
pub struct CheckPlan {
    /// Where to connect.
    pub target: Target,
    /// The connect deadline for each address, in milliseconds.
    pub timeout_ms: u32,
    /// Whether to attempt TLS after connecting even when the scheme does not ask for it.
    pub tls: bool,
    /// How many rounds follow the first.
    pub retries: u32,
    /// The pause between rounds, in milliseconds.
    pub retry_delay_ms: u32,
    /// Whether to send an HTTP request after connecting even when the scheme does not ask.
    pub http: bool,
    /// The HTTP statuses that count as working; empty for the default reading of statuses.
    pub expect_status: Vec<u16>,
    /// Whether to follow HTTP redirects.
    pub follow: bool,
    /// Whether to send a payload larger than the MTU after a plain connect (`--large`).
    pub large: bool,
    /// Where the agent may connect: every resolved address, and every extra probe, is checked
    /// against it before a packet is sent.
    pub policy: Arc<TargetPolicy>,
    /// How fast the agent may connect, shared with every other check and scan; `None` without
    /// a limit (the in-process CLI).
    pub budget: SharedBudget,
    /// Whether the owners (pid, command) of this host's listeners may be named: to a client on
    /// this host, or to any with the agent's `--show-processes`.
    pub show_processes: bool,
    /// When to trace the path of an address.
    pub trace: TraceWhen,
    /// Whether a trace looks up its hops' reverse DNS names.
    pub rdns: bool,
    /// Whether to name what answers on an open port even when the target expects nothing in
    /// particular (a scheme or well-known port always asks).
    pub identify: bool,
    /// The proxy variables the check follows, as a program would (the CLI's own environment, a
    /// serving agent's with `--use-env-proxy`); `None` connects directly.
    pub proxy: Option<Arc<ProxySettings>>,
    /// From inside a container or another network namespace, whether a failed loopback check
    /// also tries the host's side of the link (the default gateway) on the same port
    /// (`--try-host`).
    pub try_host: bool,
    /// The DNS servers to resolve with instead of the system resolver (`--resolver`); empty
    /// for the system's.
    pub resolvers: Vec<Resolver>,
    /// The words of a pasted error that named the target, when the check explains one: the
    /// verdict is annotated as `whyrefused explain` annotates it.
    pub recognised: Option<whyrefused_shared::explain::Recognised>,
}

/// When a check traces an address's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceWhen {
    /// When the connect ends silent or unreachable after silence (the default).
    Silent,
    /// Always (`--trace`).
    Always,
    /// Never (`--no-trace`).
    Never,
}

impl TraceWhen {
    fn from_request(request: &CheckRequest) -> TraceWhen {
        match (request.trace, request.no_trace) {
            (_, true) => TraceWhen::Never,
            (true, false) => TraceWhen::Always,
            (false, false) => TraceWhen::Silent,
        }
    }
}

/// Why a request cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("invalid target: {0}")]
    Target(#[from] TargetError),
    #[error("timeout_ms must be from 1 to {MAX_TIMEOUT_MS} (milliseconds), not {0}")]
    Timeout(u32),
    #[error("retries must be from 0 to {MAX_RETRIES}, not {0}")]
    Retries(u32),
    #[error("retry_delay_ms must be at most {MAX_RETRY_DELAY_MS} (milliseconds), not {0}")]
    RetryDelay(u32),
    #[error("expect_status holds {0}: HTTP statuses run from 100 to 599")]
    ExpectStatus(u16),
    #[error("{0}")]
    Resolver(String),
}

impl RequestError {
    /// The protocol's name for this kind of error.
    pub fn code(&self) -> ErrorCode {
        match self {
            RequestError::Target(_) => ErrorCode::InvalidTarget,
            RequestError::Timeout(_)
            | RequestError::Retries(_)
            | RequestError::RetryDelay(_)
            | RequestError::ExpectStatus(_)
            | RequestError::Resolver(_) => ErrorCode::InvalidOption,
        }
    }
}

impl CheckPlan {
    /// Validates a request: parses its target and checks its options. The check will connect
    /// only where `policy` allows ([`TargetPolicy::unrestricted`] for the in-process CLI).
    pub fn from_request(
        request: &CheckRequest,
        policy: Arc<TargetPolicy>,
        budget: SharedBudget,
    ) -> Result<CheckPlan, RequestError> {
        let timeout_ms = request.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
        if !(1..=MAX_TIMEOUT_MS).contains(&timeout_ms) {
            return Err(RequestError::Timeout(timeout_ms));
        }
        let retries = request.retries.unwrap_or(0);
        if retries > MAX_RETRIES {
            return Err(RequestError::Retries(retries));
        }
        let retry_delay_ms = request.retry_delay_ms.unwrap_or(DEFAULT_RETRY_DELAY_MS);
        if retry_delay_ms > MAX_RETRY_DELAY_MS {
            return Err(RequestError::RetryDelay(retry_delay_ms));
        }
        if let Some(status) = request.expect_status.iter().find(|s| !(100..=599).contains(*s)) {
            return Err(RequestError::ExpectStatus(*status));
        }
        let target = Target::parse(&request.target, request.port)?;
        if request.resolvers.len() > whyrefused_shared::MAX_RESOLVERS {
            return Err(RequestError::Resolver(format!(
                "at most {} resolvers, not {}",
                whyrefused_shared::MAX_RESOLVERS,
                request.resolvers.len()
            )));
        }
        let resolvers = request
            .resolvers
            .iter()
            .map(|text| Resolver::parse(text))
            .collect::<Result<Vec<_>, _>>()
            .map_err(RequestError::Resolver)?;
        Ok(CheckPlan {
            target,
            timeout_ms,
            tls: request.tls,
            retries,
            retry_delay_ms,
            http: request.http,
            expect_status: request.expect_status.clone(),
            follow: request.follow,
            large: request.large,
            policy,
            budget,
            show_processes: true,
            trace: TraceWhen::from_request(request),
            rdns: !request.no_rdns,
            identify: request.identify,
            proxy: None,
            try_host: false,
            resolvers,
            recognised: request.recognised.clone().map(bounded_words),
        })
    }

    fn budget(&self) -> Option<&ConnectBudget> {
        self.budget.as_deref()
    }

    fn connect_deadline(&self) -> Duration {
        Duration::from_millis(u64::from(self.timeout_ms))
    }

    fn extra_probe_deadline(&self) -> Duration {
        self.connect_deadline().min(EXTRA_PROBE_DEADLINE)
    }

    /// What identifies a side probe of `address` with `deadline` under this plan's policy.
    fn side_probe_key(&self, address: SocketAddr, deadline: Duration) -> SideProbeKey {
        (address.ip(), address.port(), deadline, Arc::as_ptr(&self.policy) as usize)
    }

    fn after_connect_plan(&self) -> AfterConnectPlan {
        let asked = after_connect::Asked {
            tls: self.tls,
            http: self.http,
            expect_status: self.expect_status.clone(),
            follow: self.follow.then(|| self.policy.clone()),
            budget: self.budget.clone(),
        };
        AfterConnectPlan::for_target(&self.target, &asked, self.connect_deadline())
    }

    /// The resolved addresses the policy allows (with the target's port), in the resolver's
    /// order, and the denied ones with the rule that denies each.
    fn split_by_policy(&self, addresses: &[IpAddr]) -> (Vec<IpAddr>, Vec<Denied>) {
        let mut allowed = Vec::new();
        let mut denied = Vec::new();
        for ip in addresses {
            let address = SocketAddr::new(*ip, self.target.port);
            match self.policy.check(address) {
                Ok(()) => allowed.push(*ip),
                Err(denial) => {
                    self.policy.count(&denial);
                    denied.push(Denied { address, denial });
                }
            }
        }
        (allowed, denied)
    }
}

/// The recognised words a client sent, cut to what the recogniser itself keeps.
fn bounded_words(
    mut recognised: whyrefused_shared::explain::Recognised,
) -> whyrefused_shared::explain::Recognised {
    let limit = whyrefused_shared::explain::MAX_MATCHED_CHARS;
    recognised.text = recognised.text.chars().take(limit).collect();
    for field in
        [&mut recognised.host, &mut recognised.name, &mut recognised.scheme, &mut recognised.socket]
    {
        if let Some(value) = field.as_mut() {
            *value = value.chars().take(limit).collect();
        }
    }
    recognised
}

/// Runs the check, handing each step to `emit` the moment it happens, ending with `done`.
///
/// Dropping the future stops the check at once and closes its sockets; the caller then reports
/// the request as cancelled.
pub async fn run(plan: &CheckPlan, mut emit: impl FnMut(CheckEvent)) {
    let start = Instant::now();
    let (sender, mut steps) = mpsc::unbounded_channel();
    let reporter = Reporter(sender);
    reporter.send(Step::Started { target: plan.target.info(), timeout_ms: plan.timeout_ms });
    let work = run_rounds(plan, &reporter);
    tokio::pin!(work);
    // What the check found so far, kept only when its verdict explains a pasted error.
    let mut found = plan.recognised.as_ref().map(|_| CheckReport::default());
    let mut forward = |event: CheckEvent| {
        if let Some(found) = found.as_mut() {
            found.apply(&event);
        }
        emit(event);
    };
    let verdict = loop {
        tokio::select! {
            biased;
            Some(event) = steps.recv() => forward(event),
            verdict = &mut work => break verdict,
        }
    };
    while let Ok(event) = steps.try_recv() {
        forward(event);
    }
    let verdict = match (&plan.recognised, found) {
        (Some(recognised), Some(found)) => explained(recognised, found, verdict).await,
        _ => verdict,
    };
    let elapsed_us = clock::micros(start.elapsed());
    emit(stamped(Step::Verdict { verdict }));
    emit(stamped(Step::Done { outcome: Outcome::Completed, elapsed_us }));
}

/// The verdict annotated with what follows from how the program that wrote `recognised`
/// connected (see [`verdict::explain`]).
async fn explained(
    recognised: &whyrefused_shared::explain::Recognised,
    mut found: CheckReport,
    verdict: Verdict,
) -> Verdict {
    let hosts = match verdict::explain::looked_up_name(recognised) {
        Some(name) => dns_detail::hosts_file_entries(name).await,
        None => Vec::new(),
    };
    found.verdict = Some(verdict.clone());
    verdict::explain::annotate(recognised, &hosts, &mut found);
    found.verdict.unwrap_or(verdict)
}

fn stamped(step: Step) -> CheckEvent {
    CheckEvent { at: clock::now(), step }
}

/// Where the probes report their steps, stamped when they happen.
struct Reporter(mpsc::UnboundedSender<CheckEvent>);

impl Reporter {
    fn send(&self, step: Step) {
        // The receiver lives as long as the check; a failed send means it is being dropped.
        let _ = self.0.send(stamped(step));
    }

    fn finding(&self, finding: Finding, into: &mut Vec<Finding>) {
        self.send(Step::Finding { finding: finding.clone() });
        into.push(finding);
    }
}

/// The program's way to the target: through the proxy its proxy variables name, or directly
/// (saying so when `NO_PROXY` excluded the target or the clients read the variables apart).
async fn run_rounds(plan: &CheckPlan, reporter: &Reporter) -> Verdict {
    let routing =
        plan.proxy.as_deref().and_then(|settings| crate::proxy::route(settings, &plan.target));
    let Some(routing) = routing else {
        let mut verdict = direct_rounds(plan, reporter).await;
        from_inside(plan, &mut verdict).await;
        return verdict;
    };
    if let Reading::Proxied { proxy, .. } = &routing.reading
        && proxy.is_followed()
    {
        return through_proxy(plan, &routing, proxy, reporter).await;
    }
    let mut verdict = direct_rounds(plan, reporter).await;
    if let Some(finding) = verdict::proxy::direct_finding(&routing) {
        verdict::proxy::annotate_direct(&mut verdict, &finding);
        reporter.send(Step::Finding { finding: Finding::Proxy(finding) });
    }
    if let Reading::Proxied { proxy, variable } = &routing.reading {
        verdict.evidence.push(whyrefused_shared::Evidence {
            probe: "proxy".into(),
            result: format!(
                "{variable} names {proxy}, a {} proxy: whyrefused follows http://, https://, \
                 socks5:// and socks5h:// proxies, so this check went directly",
                proxy.scheme
            ),
            elapsed_us: None,
        });
    }
    verdict
}

/// A failed loopback check from inside a container or another network namespace: says whose
/// loopback it is and how to reach the host; with `--try-host`, tries the host's side.
async fn from_inside(plan: &CheckPlan, verdict: &mut Verdict) {
    if verdict.cause.is_reachable() || !verdict::namespace::is_loopback(&plan.target) {
        return;
    }
    let placement = match probe::namespace::recent() {
        Some(placement) => placement,
        None => match tokio::task::spawn_blocking(probe::namespace::read_and_keep).await {
            Ok(placement) => placement,
            Err(_) => return,
        },
    };
    let inside = verdict::namespace::inside(&placement).is_some();
    let host = placement.gateway.filter(|_| plan.try_host && inside);
    let tried = match host.map(|gw| SocketAddr::new(IpAddr::V4(gw), plan.target.port)) {
        Some(address) if plan.policy.check(address).is_ok() => {
            Some(probe::connect::connect(address, plan.connect_deadline(), plan.budget()).await)
        }
        _ => None,
    };
    verdict::namespace::annotate(&plan.target, &placement, tried.as_ref(), verdict);
}

/// The check of a target through a proxy: the proxy's own address checked in full (its steps
/// stream as the check's: they are the program's real connects), then `CONNECT` (or the
/// request) through it, over TLS for an `https://` proxy, or SOCKS5's `CONNECT`. One round:
/// retries are not repeated through a proxy.
async fn through_proxy(
    plan: &CheckPlan,
    routing: &Routing,
    proxy: &crate::proxy::ProxyUrl,
    reporter: &Reporter,
) -> Verdict {
    let request = match proxy_request(&plan.target, proxy).await {
        Ok(request) => request,
        Err(unresolved) => return unresolved,
    };
    let proxy_plan = match Target::parse(&proxy.authority(), None) {
        Ok(target) => CheckPlan {
            target,
            tls: false,
            http: false,
            expect_status: Vec::new(),
            follow: false,
            large: false,
            identify: false,
            proxy: None,
            ..plan.clone()
        },
        Err(error) => {
            return Verdict {
                cause: whyrefused_shared::Cause::ProxyUnreachable,
                summary: format!("The proxy variable names {proxy}, not a valid address: {error}"),
                suggestions: vec![],
                evidence: vec![],
                pattern: None,
            };
        }
    };
    let round = probe_round(&proxy_plan, reporter).await;
    let proxy_verdict = verdict::conclude(&proxy_plan.target, &round, plan.timeout_ms);
    let open = round.attempts.iter().find(|a| a.state == ConnectState::Open);
    let tls_host = (proxy.scheme == "https").then(|| proxy_plan.target.host.clone());
    let answer = match open {
        Some(attempt) => {
            let dial = probe::proxy::ProxyDial {
                address: attempt.socket_addr(),
                tls_host: tls_host.as_ref(),
                authorization: proxy.authorization(),
                credentials: proxy.credentials(),
            };
            let deadline = plan.connect_deadline();
            Some(probe::proxy::ask(&dial, &request, deadline, plan.budget()).await)
        }
        None => None,
    };
    let through = verdict::proxy::Through {
        target: authority(&plan.target),
        routing,
        request: &request,
        proxy_verdict: &proxy_verdict,
        answer: answer.as_ref(),
    };
    reporter.send(Step::Finding { finding: Finding::Proxy(verdict::proxy::finding(&through)) });
    verdict::proxy::conclude(&through)
}

/// `host:port`, with brackets around an IPv6 address.
fn authority(target: &Target) -> String {
    match &target.host {
        Host::Ip(IpAddr::V6(ip)) => format!("[{ip}]:{}", target.port),
        host => format!("{}:{}", host.ascii(), target.port),
    }
}

/// What the program sends its proxy: to an HTTP proxy, the request with the full URL for
/// http://, else a tunnel; to a SOCKS5 proxy, its `CONNECT` with the name (`socks5h://`) or with
/// the address the program resolved itself (`socks5://`). A name that does not resolve here for
/// a `socks5://` proxy ends the check: the program stops there too.
async fn proxy_request(
    target: &Target,
    proxy: &crate::proxy::ProxyUrl,
) -> Result<ProxyRequest, Verdict> {
    let authority = authority(target);
    if proxy.is_socks() {
        let destination = socks_destination(target, proxy).await?;
        return Ok(ProxyRequest::Socks { destination, authority });
    }
    Ok(match target.scheme.as_deref() {
        Some("http") => {
            let path = target.path.as_deref().unwrap_or("/");
            ProxyRequest::Get { url: format!("http://{authority}{path}"), authority }
        }
        _ => ProxyRequest::Connect { authority },
    })
}

/// Where a SOCKS5 proxy is asked to connect.
async fn socks_destination(
    target: &Target,
    proxy: &crate::proxy::ProxyUrl,
) -> Result<probe::socks::Destination, Verdict> {
    use probe::socks::Destination;
    let name = match &target.host {
        Host::Ip(ip) => return Ok(Destination::Address(SocketAddr::new(*ip, target.port))),
        Host::Name { ascii, .. } => ascii.clone(),
    };
    if proxy.scheme == "socks5h" {
        return Ok(Destination::Name(name, target.port));
    }
    let resolved = tokio::net::lookup_host((name.as_str(), target.port)).await;
    match resolved.map(|mut addresses| addresses.next()) {
        Ok(Some(address)) => Ok(Destination::Address(address)),
        Ok(None) => Err(unresolved_for_socks(&name, proxy, "no address")),
        Err(error) => Err(unresolved_for_socks(&name, proxy, &error.to_string())),
    }
}

fn unresolved_for_socks(name: &str, proxy: &crate::proxy::ProxyUrl, why: &str) -> Verdict {
    Verdict {
        cause: whyrefused_shared::Cause::DnsError,
        summary: format!(
            "The program resolves {name} itself before asking its SOCKS5 proxy {proxy} (a \
             socks5:// proxy is sent an address), and {name} does not resolve here: {why}."
        ),
        suggestions: vec![format!(
            "Use socks5h://{} to let the proxy resolve the name, or fix the name here \
             (`whyrefused check --no-proxy` shows this host's DNS answer in full).",
            proxy.authority()
        )],
        evidence: vec![],
        pattern: None,
    }
}

/// One round, or with retries every round and a verdict across them.
async fn direct_rounds(plan: &CheckPlan, reporter: &Reporter) -> Verdict {
    if plan.retries == 0 {
        let round = probe_round(plan, reporter).await;
        return verdict::conclude(&plan.target, &round, plan.timeout_ms);
    }
    let total = plan.retries + 1;
    let mut rounds = Vec::new();
    let mut verdicts = Vec::new();
    for number in 1..=total {
        reporter.send(Step::RoundStarted { round: number, of: total });
        let (at, start) = (clock::now(), Instant::now());
        let result = probe_round(plan, reporter).await;
        let verdict = verdict::conclude(&plan.target, &result, plan.timeout_ms);
        let round = Round {
            round: number,
            at,
            cause: verdict.cause,
            http_status: http_status(&result.findings),
            elapsed_us: clock::micros(start.elapsed()),
            tries: Some(round_tries(&result)),
        };
        reporter.send(Step::RoundFinished { round: round.clone() });
        rounds.push(round);
        verdicts.push(verdict);
        if number < total {
            tokio::time::sleep(Duration::from_millis(u64::from(plan.retry_delay_ms))).await;
        }
    }
    verdict::across_rounds(&plan.target, &rounds, verdicts)
}

/// The connects a round sent to the port, over every address: each address's first connect,
/// and the further ones sent when it stayed silent.
fn round_tries(result: &RoundResult) -> Tries {
    result.attempts.iter().fold(Tries::default(), |total, attempt| {
        let further = result.findings.iter().find_map(|finding| match finding {
            Finding::Loss(found) if found.address == attempt.address => Some(found),
            _ => None,
        });
        let tries = match further {
            Some(found) => found.tries(),
            None => repeat::tally(attempt.socket_addr(), &[attempt]).tries(),
        };
        total.plus(tries)
    })
}

/// The HTTP status a round's first answered request got, if any.
fn http_status(findings: &[Finding]) -> Option<u16> {
    findings.iter().find_map(|finding| match finding {
        Finding::AfterConnect(after) => after.http.as_ref().and_then(|http| http.status),
        _ => None,
    })
}

/// Resolves (while asking the nameservers directly), then probes every address and the host's
/// own listeners at once.
async fn probe_round(plan: &CheckPlan, reporter: &Reporter) -> RoundResult {
    let started = Instant::now();
    if let (false, Host::Name { ascii, .. }) = (plan.resolvers.is_empty(), &plan.target.host) {
        let (resolution, detail) = resolve_with_resolvers(plan, ascii).await;
        reporter.send(Step::Resolved { resolution: resolution.clone() });
        let mut findings = Vec::new();
        reporter.finding(Finding::DnsDetail(detail), &mut findings);
        return probe_addresses(plan, resolution, findings, DnsDetailTask(None), started, reporter)
            .await;
    }
    let dns_detail = DnsDetailTask::start(&plan.target.host);
    let resolution = probe::resolve(&plan.target.host, DNS_DEADLINE).await;
    reporter.send(Step::Resolved { resolution: resolution.clone() });
    probe_addresses(plan, resolution, Vec::new(), dns_detail, started, reporter).await
}

/// Resolves `name` with the plan's resolvers, the system resolver beside them to compare.
async fn resolve_with_resolvers(plan: &CheckPlan, name: &str) -> (Resolution, DnsDetail) {
    let start = Instant::now();
    let asked = async {
        let answers = dns_detail::ask_resolvers(name, &plan.resolvers).await;
        (answers, clock::micros(start.elapsed()))
    };
    let (((qualified, answers), elapsed_us), system) =
        tokio::join!(asked, probe::resolve(&plan.target.host, DNS_DEADLINE));
    let resolution = dns_detail::resolution_from(name, &answers, elapsed_us);
    let hosts_file = dns_detail::hosts_file_entries(name).await;
    let detail = DnsDetail { name: qualified, answers, hosts_file, system: Some(system) };
    (resolution, detail)
}

/// Probes every address of a resolution and the host's own listeners at once.
async fn probe_addresses(
    plan: &CheckPlan,
    resolution: Resolution,
    mut findings: Vec<Finding>,
    dns_detail: DnsDetailTask,
    started: Instant,
    reporter: &Reporter,
) -> RoundResult {
    if resolution.status != DnsStatus::Ok {
        if let Some(detail) = dns_detail.finish(None).await {
            reporter.finding(Finding::DnsDetail(detail), &mut findings);
        }
        return RoundResult { resolution: Some(resolution), findings, ..RoundResult::default() };
    }
    let port = plan.target.port;
    // The policy is checked on every resolved address before anything is sent to any of them.
    let (allowed, denied) = plan.split_by_policy(&resolution.addresses);
    let on_this_host = allowed.iter().any(icmp::is_local_address);
    // The firewall's rules are listed beside the connects, in case one of them stops a connect.
    let mut rule_listing = if on_this_host {
        firewall::RuleListing::start()
    } else {
        firewall::RuleListing::default()
    };
    let dns_us = resolution.elapsed_us;
    let addresses =
        join_all(allowed.iter().map(|ip| probe_address(plan, *ip, dns_us, started, reporter)));
    let pressure_before = host_pressure::read_before();
    let own_listeners = async {
        match on_this_host {
            // Two binds tell a free port at once; reading the tables may take a while.
            true if listeners::port_is_free(port) => Some(listeners::none_on(port)),
            true => tokio::task::spawn_blocking(move || listeners::listeners_on(port)).await.ok(),
            false => None,
        }
    };
    let (per_address, own_listeners) = tokio::join!(addresses, own_listeners);
    let mut attempts = Vec::new();
    for (attempt, address_findings) in per_address {
        attempts.push(attempt);
        findings.extend(address_findings);
    }
    let timed_out = attempts.iter().any(|attempt| attempt.state == ConnectState::Timeout);
    let listening = own_listeners.as_ref().is_some_and(|found| !found.listeners.is_empty());
    // Read again only when what moved can matter: a listener's queue, or a connect left silent.
    let pressure_after = (timed_out || listening).then(host_pressure::read);
    if let Some(mut found) = own_listeners {
        found.listen_overflows = pressure_after
            .as_ref()
            .and_then(|after| host_pressure::listen_overflows_since(&pressure_before, after));
        let found = if plan.show_processes { found } else { found.without_owners() };
        reporter.finding(Finding::LocalListeners(found), &mut findings);
    }
    if let Some(after) = pressure_after.filter(|_| timed_out) {
        let pressure = host_pressure::since(&pressure_before, &after);
        if pressure.is_notable() {
            reporter.finding(Finding::HostPressure(pressure), &mut findings);
        }
    }
    // One address at a time: each rule probe reads counters the others would move.
    for attempt in attempts.iter().filter(|a| stopped_on_this_host(a)) {
        let found =
            firewall::find_rule(attempt.socket_addr(), plan.budget(), &mut rule_listing).await;
        let found = if plan.show_processes { found } else { found.without_rule_text() };
        reporter.finding(Finding::FirewallRule(found), &mut findings);
    }
    if allowed.len() > 1 {
        let replay = happy_eyeballs::replay(&allowed, &attempts, plan.connect_deadline());
        reporter.finding(Finding::HappyEyeballs(replay), &mut findings);
    }
    if let Some(detail) = dns_detail.finish(Some(DNS_DETAIL_GRACE)).await {
        reporter.finding(Finding::DnsDetail(detail), &mut findings);
    }
    RoundResult { resolution: Some(resolution), attempts, findings, denied }
}

/// Whether a connect to one of this host's own addresses failed: its own firewall may have
/// stopped it, and the agent can see which rule did.
fn stopped_on_this_host(attempt: &Attempt) -> bool {
    attempt.state != ConnectState::Open && icmp::is_local_address(&attempt.address)
}

/// The nameservers asked directly, running beside the system resolver and the connects.
struct DnsDetailTask(Option<AbortOnDropHandle<Option<DnsDetail>>>);

impl DnsDetailTask {
    /// Starts asking, for names only (an address literal has nothing to ask).
    fn start(host: &Host) -> DnsDetailTask {
        let Host::Name { ascii, .. } = host else { return DnsDetailTask(None) };
        let name = ascii.clone();
        DnsDetailTask(Some(AbortOnDropHandle::new(tokio::spawn(async move {
            dns_detail::dns_detail(&name).await
        }))))
    }

    /// Its answers: waited for fully, or at most `grace` when they only add detail.
    async fn finish(self, grace: Option<Duration>) -> Option<DnsDetail> {
        let task = self.0?;
        let result = match grace {
            Some(grace) => tokio::time::timeout(grace, task).await.ok()?,
            None => task.await,
        };
        result.ok().flatten()
    }
}

/// Connects to one address, then asks what its outcome calls for: nearby ports after a reset;
/// after silence, liveness and the path's trace (started early, beside the connect, once it has
/// been silent a while, so they end with it).
async fn probe_address(
    plan: &CheckPlan,
    ip: IpAddr,
    dns_us: u64,
    started: Instant,
    reporter: &Reporter,
) -> (Attempt, Vec<Finding>) {
    let address = SocketAddr::new(ip, plan.target.port);
    reporter.send(Step::AttemptStarted { address });
    // Read only once the connect has been silent a while (reading it costs the kernel a walk of
    // every counter it keeps): no retransmission can have failed before the first, a second in.
    let failures_before = OnceLock::new();
    let until = Instant::now() + plan.connect_deadline();
    let connect = probe::connect::connect_and_keep(address, plan.connect_deadline(), plan.budget());
    tokio::pin!(connect);
    // Once the connect has been silent a while: is the host up, where do the packets go, and do
    // further connects to the port get answered (a lossy path) or not (a firewall)? Dropped
    // when the connect answers.
    let early = async {
        tokio::time::sleep(LIVENESS_AFTER).await;
        let _ = failures_before.set(local_drops::retransmit_failures());
        let trace_budget = plan.connect_deadline().saturating_sub(LIVENESS_AFTER);
        let live_then_distance = async {
            let live = shared_liveness(plan, address, started).await;
            let distance = match plan.trace {
                TraceWhen::Never => None,
                _ => target_distance(plan, ip, &live, trace_budget / 2).await,
            };
            (live, distance)
        };
        let traced = async {
            match plan.trace {
                TraceWhen::Never => None,
                _ => trace_path(plan, address, trace_budget, reporter).await,
            }
        };
        let further = repeat::further_connects(address, until, plan.budget());
        let ((live, distance), traced, further) = tokio::join!(live_then_distance, traced, further);
        let traced = traced.map(|mut path| {
            path.target_ttl = distance.filter(|_| !path.reached);
            path
        });
        (live, traced, further)
    };
    tokio::pin!(early);
    let mut early_result = None;
    let (attempt, stream) = loop {
        tokio::select! {
            result = &mut connect => break result,
            found = &mut early, if early_result.is_none() => early_result = Some(found),
        }
    };
    reporter.send(Step::AttemptFinished { attempt: attempt.clone() });
    let silent_first = attempt.elapsed_us >= clock::micros(LIVENESS_AFTER);
    let mut findings = Vec::new();
    if attempt.errno.as_ref().is_some_and(|errno| errno.code == libc::EADDRNOTAVAIL) {
        let held = tokio::task::spawn_blocking(move || local_ports::local_ports(address)).await;
        if let Ok(mut held) = held {
            if !plan.show_processes {
                held.top_owner = None;
            }
            reporter.finding(Finding::LocalPorts(held), &mut findings);
        }
    }
    if let Some(stream) = stream {
        let after_plan = plan.after_connect_plan();
        let after =
            after_connect::after_connect(stream, address, &after_plan, dns_us, attempt.elapsed_us)
                .await;
        let service = match plan.identify || identify::expected(&plan.target).is_some() {
            true => Some(
                identify::identify(address, &plan.target, &after, &plan.policy, plan.budget())
                    .await,
            ),
            false => None,
        };
        let stalled = mtu::stalled(&after, after_plan.deadline);
        reporter.finding(Finding::AfterConnect(Box::new(after)), &mut findings);
        if let Some(service) = service {
            reporter.finding(Finding::Service(service), &mut findings);
        }
        if stalled {
            let probe = probe_mtu(plan, address, &after_plan, mtu::Exchange::of(&after_plan)).await;
            reporter.finding(Finding::MtuProbe(probe), &mut findings);
        } else if plan.large && !after_plan.tls && after_plan.http_path.is_none() {
            let sent = mtu::large_send(address, &after_plan).await;
            let acknowledged = sent.acknowledged;
            reporter.finding(Finding::LargeSend(sent), &mut findings);
            if !acknowledged {
                let probe = probe_mtu(plan, address, &after_plan, mtu::Exchange::LargeSend).await;
                reporter.finding(Finding::MtuProbe(probe), &mut findings);
            }
        }
    }
    let mut path = None;
    match attempt.state {
        ConnectState::Refused if attempt.icmp.is_none() => {
            let open = shared_nearby_ports(plan, address, &attempt, started).await;
            reporter.finding(Finding::NearbyPorts(open), &mut findings);
        }
        ConnectState::Timeout => {
            if let Some(drops) =
                local_drops_since(failures_before.get().copied().flatten(), address)
            {
                reporter.finding(Finding::LocalDrops(drops), &mut findings);
            }
            let (found, traced, further) = match early_result {
                Some(found) => found,
                None => early.await,
            };
            reporter.finding(Finding::Liveness(found), &mut findings);
            if !further.is_empty() {
                let tries: Vec<&Attempt> = std::iter::once(&attempt).chain(&further).collect();
                let loss = repeat::tally(address, &tries);
                reporter.finding(Finding::Loss(loss), &mut findings);
            }
            path = traced;
        }
        ConnectState::HostUnreachable | ConnectState::NetworkUnreachable if silent_first => {
            // Silence first, then a router's (or the neighbour table's) verdict: where the
            // SYNs stop is worth showing, the trace has been running beside the connect.
            path = match early_result {
                Some((_, traced, _)) => traced,
                None => early.await.1,
            };
        }
        _ => {}
    }
    if path.is_none() && plan.trace == TraceWhen::Always {
        let budget = plan.connect_deadline();
        path = trace_path(plan, address, budget, reporter).await;
    }
    if let Some(path) = path {
        reporter.finding(Finding::Path(Box::new(path)), &mut findings);
    }
    (attempt, findings)
}

/// Traces the path to `address` within `budget`, streaming it as hops answer. `None` when the
/// policy forbids it (the address was checked before the connect, so never in practice).
/// The MSS probe of an exchange that stalled; when it proves a black hole (and traces may
/// run), how far full-size segments get along the path, from a trace of the same address.
async fn probe_mtu(
    plan: &CheckPlan,
    address: SocketAddr,
    after_plan: &AfterConnectPlan,
    exchange: mtu::Exchange,
) -> MtuProbe {
    let mut probe = mtu::probe(address, after_plan, exchange).await;
    if plan.trace != TraceWhen::Never && verdict::mtu::proves_black_hole(&probe) {
        let options = TraceOptions::within(DEFAULT_MAX_HOPS, SIZED_TRACE_BUDGET, plan.rdns);
        let traced = path_trace::trace(address, options, &plan.policy, plan.budget(), |_| {});
        if let Ok(path) = traced.await {
            probe.hops = mtu_hops::sized_hops(address, &path, plan.budget()).await;
        }
    }
    probe
}

/// The trace behind a black hole's hops: short, the connection already proved the path works.
const SIZED_TRACE_BUDGET: Duration = Duration::from_secs(2);

async fn trace_path(
    plan: &CheckPlan,
    address: SocketAddr,
    budget: Duration,
    reporter: &Reporter,
) -> Option<Path> {
    let options = TraceOptions::within(DEFAULT_MAX_HOPS, budget, plan.rdns);
    let stream = |path: &Path| {
        reporter.send(Step::Finding { finding: Finding::Path(Box::new(path.clone())) })
    };
    path_trace::trace(address, options, &plan.policy, plan.budget(), stream).await.ok()
}

/// How many hops away `ip` is, from a trace of a liveness port that answered (a reset or a
/// SYN-ACK comes from the target itself), so a silent path can say how far before the target
/// its packets die. `None` when no port answered or the trace did not reach it within `budget`.
async fn target_distance(
    plan: &CheckPlan,
    ip: IpAddr,
    live: &Liveness,
    budget: Duration,
) -> Option<u8> {
    let port = answering_port(live)?;
    let options = TraceOptions::within(DEFAULT_MAX_HOPS, budget, false);
    let policy = &plan.policy;
    let traced =
        path_trace::trace(SocketAddr::new(ip, port), options, policy, plan.budget(), |_| {});
    let path = traced.await.ok()?;
    path.hops.iter().find(|hop| hop.reply == HopReply::Reached).map(|hop| hop.ttl)
}

/// A liveness port that answered (open or refused), if any.
fn answering_port(live: &Liveness) -> Option<u16> {
    live.ports.iter().find(|p| p.state.is_answer()).map(|p| p.port)
}

/// The open ports near `address`, which just refused `refused`: from a sweep that started
/// during this round, shared with every check of the same address running at once.
async fn shared_nearby_ports(
    plan: &CheckPlan,
    address: SocketAddr,
    refused: &Attempt,
    started: Instant,
) -> NearbyPorts {
    let ceiling = plan.extra_probe_deadline();
    let key = plan.side_probe_key(address, ceiling);
    NEARBY_SWEEPS
        .get_or_probe(key, started, || {
            let deadline = nearby_deadline(refused, ceiling);
            nearby::nearby_ports(
                address.ip(),
                address.port(),
                deadline,
                &plan.policy,
                plan.budget(),
            )
        })
        .await
}

/// Whether the host at `address` is up: from a liveness probe that started during this round,
/// shared likewise.
async fn shared_liveness(plan: &CheckPlan, address: SocketAddr, started: Instant) -> Liveness {
    let deadline = plan.extra_probe_deadline();
    let key = plan.side_probe_key(address, deadline);
    LIVENESS_SWEEPS
        .get_or_probe(key, started, || {
            liveness::liveness(address.ip(), address.port(), deadline, &plan.policy, plan.budget())
        })
        .await
}

/// The retransmissions this host failed to send since `before` was read, if any.
fn local_drops_since(before: Option<u64>, address: SocketAddr) -> Option<LocalDrops> {
    let failed_retransmissions = local_drops::retransmit_failures()?.checked_sub(before?)?;
    (failed_retransmissions > 0).then_some(LocalDrops { address, failed_retransmissions })
}

/// How long to wait for nearby ports of a host that just answered with a reset: an open port
/// answers a SYN as fast as a closed one, so ten times that round trip (at least
/// [`NEARBY_MIN_DEADLINE`]) is plenty, and a firewalled neighbour does not hold the verdict up.
fn nearby_deadline(refused: &Attempt, ceiling: Duration) -> Duration {
    let round_trip = Duration::from_micros(refused.elapsed_us);
    (round_trip * 10).max(NEARBY_MIN_DEADLINE).min(ceiling)
}

#[cfg(test)]
mod tests {
    use super::*;
    use whyrefused_shared::{Cause, CheckReport};

    fn open() -> Arc<TargetPolicy> {
        Arc::new(TargetPolicy::unrestricted())
    }

    fn plan(target: &str) -> CheckPlan {
        plan_with(target, TargetPolicy::unrestricted())
    }

    fn plan_with(target: &str, policy: TargetPolicy) -> CheckPlan {
        CheckPlan::from_request(&CheckRequest::new(target), Arc::new(policy), None).unwrap()
    }

    async fn steps_of(plan: &CheckPlan) -> (Vec<&'static str>, CheckReport) {
        let mut kinds = Vec::new();
        let mut report = CheckReport::default();
        run(plan, |event| {
            kinds.push(event.step.name());
            report.apply(&event);
        })
        .await;
        (kinds, report)
    }

    #[test]
    fn requests_are_validated() {
        let mut request = CheckRequest::new("127.0.0.1:80");
        request.timeout_ms = Some(0);
        assert_eq!(
            CheckPlan::from_request(&request, open(), None).unwrap_err(),
            RequestError::Timeout(0)
        );
        request.timeout_ms = Some(MAX_TIMEOUT_MS + 1);
        assert_eq!(
            CheckPlan::from_request(&request, open(), None).unwrap_err().code(),
            ErrorCode::InvalidOption
        );
        let error = CheckPlan::from_request(&CheckRequest::new("db:0"), open(), None).unwrap_err();
        assert_eq!(error.code(), ErrorCode::InvalidTarget);
        assert_eq!(plan("127.0.0.1:80").timeout_ms, DEFAULT_TIMEOUT_MS);
    }

    #[tokio::test]
    async fn an_open_port_streams_every_step_in_order() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (kinds, report) = steps_of(&plan(&format!("127.0.0.1:{port}"))).await;
        // What followed the connect is reported, and as 127.0.0.1 is this host, its own
        // listeners on the port too.
        let finding = "finding";
        let expected =
            ["started", "resolved", "attempt_started", "attempt_finished", finding, finding];
        assert_eq!(kinds, [&expected[..], &["verdict", "done"]].concat());
        let [Finding::AfterConnect(after), Finding::LocalListeners(found)] = &report.findings[..]
        else {
            panic!("expected after-connect and local listeners, got {:?}", report.findings);
        };
        assert_eq!((after.early_close, &after.banner), (None, &None), "a silent, healthy server");
        assert_eq!(found.listeners[0].pid, Some(std::process::id()));
        assert_eq!(report.verdict.unwrap().cause, Cause::Reachable);
        assert_eq!(report.outcome, Some(Outcome::Completed));
    }

    #[tokio::test]
    async fn a_remote_clients_check_names_no_process_and_says_how_to_show_them() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hidden = CheckPlan { show_processes: false, ..plan(&format!("127.0.0.1:{port}")) };
        let (_, report) = steps_of(&hidden).await;
        let found = report
            .findings
            .iter()
            .find_map(|finding| match finding {
                Finding::LocalListeners(found) => Some(found),
                _ => None,
            })
            .expect("the local listeners finding");
        assert!(found.listeners.iter().all(|l| l.pid.is_none() && l.process.is_none()));
        let why = found.owners_hidden.as_deref().unwrap_or_default();
        assert!(why.contains("--show-processes"), "{why}");
        let text = serde_json::to_string(&report).unwrap();
        assert!(!text.contains(&format!("\"pid\":{}", std::process::id())), "{text}");
    }

    #[tokio::test]
    async fn a_closed_local_port_reports_nearby_ports_and_the_closed_cause() {
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let (kinds, report) = steps_of(&plan(&format!("127.0.0.1:{port}"))).await;
        assert!(kinds.contains(&"finding"));
        assert!(report.findings.iter().any(|f| matches!(f, Finding::NearbyPorts(_))));
        assert_eq!(report.verdict.unwrap().cause, Cause::PortClosed);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn checks_of_one_closed_port_at_once_each_name_its_open_neighbour() {
        // They share nearby-port sweeps; every one must still report the neighbour it would
        // have found alone.
        let neighbour = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open_port = neighbour.local_addr().unwrap().port();
        let closed = [open_port - 1, open_port + 1]
            .into_iter()
            .find(|port| std::net::TcpListener::bind(("127.0.0.1", *port)).is_ok())
            .expect("a free port beside the listener");
        let policy = open();
        let checks = (0..50).map(|_| {
            let request = CheckRequest::new(format!("127.0.0.1:{closed}"));
            let plan = CheckPlan::from_request(&request, policy.clone(), None).unwrap();
            tokio::spawn(async move { steps_of(&plan).await.1 })
        });
        for report in join_all(checks).await {
            let report = report.unwrap();
            assert_eq!(report.verdict.as_ref().map(|v| v.cause), Some(Cause::PortClosed));
            let nearby = report.findings.iter().find_map(|f| match f {
                Finding::NearbyPorts(nearby) => Some(nearby),
                _ => None,
            });
            assert_eq!(nearby.map(|n| n.open.as_slice()), Some(&[open_port][..]), "{report:?}");
        }
    }

    #[tokio::test]
    async fn retries_run_every_round_and_say_the_failure_is_persistent() {
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let mut request = CheckRequest::new(format!("127.0.0.1:{port}"));
        request.retries = Some(2);
        request.retry_delay_ms = Some(10);
        let (kinds, report) =
            steps_of(&CheckPlan::from_request(&request, open(), None).unwrap()).await;
        assert_eq!(kinds.iter().filter(|k| **k == "round_finished").count(), 3);
        assert_eq!(report.rounds.len(), 3);
        let verdict = report.verdict.unwrap();
        assert_eq!(verdict.pattern, Some(whyrefused_shared::Pattern::Persistent));
    }

    #[tokio::test]
    async fn hex_and_decimal_metadata_addresses_are_resolved_then_denied_before_any_packet() {
        // The system resolver reads both as 169.254.169.254 (no DNS query is made for them);
        // the policy is checked on what it returns, so neither slips past the link-local rule.
        for target in ["0xa9fea9fe:80", "2852039166:80"] {
            let plan = plan_with(target, TargetPolicy::with_defaults());
            let (kinds, report) = steps_of(&plan).await;
            assert_eq!(kinds, ["started", "resolved", "verdict", "done"], "{target}: no attempt");
            let dns = report.dns.as_ref().unwrap();
            assert_eq!(dns.addresses, ["169.254.169.254".parse::<IpAddr>().unwrap()]);
            assert!(report.attempts.is_empty() && report.findings.is_empty(), "{report:?}");
            let verdict = report.verdict.unwrap();
            assert_eq!(verdict.cause, Cause::PolicyDenied, "{target}");
            let denial = verdict.evidence.iter().find(|e| e.probe == "policy 169.254.169.254:80");
            assert_eq!(
                denial.map(|e| e.result.as_str()),
                Some(
                    "denied: 169.254.169.254 is denied by the default rule \"link-local \
                     169.254.0.0/16\""
                ),
                "{target}"
            );
        }
    }

    #[tokio::test]
    async fn a_denied_port_is_policy_denied_and_an_allowed_one_is_probed_without_its_neighbours() {
        // Bound but never listening: the port stays closed and no other test can take it (a
        // listener closed here could still be open in a process another test forks, and answer).
        let closed = tokio::net::TcpSocket::new_v4().unwrap();
        closed.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let port = closed.local_addr().unwrap().port();
        let only = |port: u16| {
            let spec = crate::scan::ports::PortSpec::parse(&port.to_string()).unwrap();
            TargetPolicy::unrestricted().allow_ports(spec)
        };
        let (kinds, report) = steps_of(&plan_with(&format!("127.0.0.1:{port}"), only(1))).await;
        assert!(!kinds.contains(&"attempt_started"), "{kinds:?}");
        let verdict = report.verdict.unwrap();
        assert_eq!(verdict.cause, Cause::PolicyDenied);
        assert!(verdict.summary.contains(&format!("port {port} is not in --allow-ports 1")));
        // Closed and allowed: probed, but the nearby ports outside --allow-ports are not.
        let (_, report) = steps_of(&plan_with(&format!("127.0.0.1:{port}"), only(port))).await;
        assert_eq!(report.verdict.unwrap().cause, Cause::PortClosed);
        let nearby = report.findings.iter().find_map(|f| match f {
            Finding::NearbyPorts(nearby) => Some(nearby),
            _ => None,
        });
        assert_eq!(nearby.map(|n| n.probed), Some(0), "{:?}", report.findings);
    }

    #[tokio::test]
    async fn a_name_with_two_addresses_is_tried_on_both() {
        // localhost resolves to 127.0.0.1 and ::1 on most hosts; the listener takes IPv4 only.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (_, report) = steps_of(&plan(&format!("localhost:{port}"))).await;
        let dns = report.dns.unwrap();
        assert_eq!(report.attempts.len(), dns.addresses.len());
        let expected = if dns.addresses.len() > 1 { Cause::Partial } else { Cause::Reachable };
        assert_eq!(report.verdict.unwrap().cause, expected);
    }
}
