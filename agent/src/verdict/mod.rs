//! The verdict: from everything a round of probes found, name the part at fault, with the
//! evidence that supports it and what to do about it.
//!
//! Each address is diagnosed on its own, from its connect attempt, the ICMP error behind it
//! and the findings about it (liveness, nearby ports, local listeners, what followed the
//! connect). Then the addresses are combined: all working is `reachable`, some working is
//! `partial`, none working names the most telling failure. A failed resolution names the DNS
//! problem before any of that.

use std::net::{IpAddr, SocketAddr};

use whyrefused_shared::{
    AfterConnect, Attempt, Cause, ConnectState, DnsStatus, EarlyClose, EchoState, Evidence, Family,
    Finding, LocalListeners, LossFinding, NearbyPorts, Pattern, Resolution, Round, Verdict,
};

use crate::policy::Denial;
use crate::probe::{icmp, listeners};
use crate::target::{Host, Target};

pub mod cross;
mod dns;
pub mod explain;
mod host;
mod loss;
pub mod mtu;
pub mod namespace;
pub mod path;
pub mod proxy;
mod service;
mod wrong_service;

/// What one round of probing found.
#[derive(Debug, Clone, Default)]
pub struct RoundResult {
    /// The system resolver's answer (absent only when the round never ran).
    pub resolution: Option<Resolution>,
    /// One finished attempt per address the policy allows.
    pub attempts: Vec<Attempt>,
    /// The extra probes' findings.
    pub findings: Vec<Finding>,
    /// The resolved addresses the agent's policy denies: nothing was sent to them.
    pub denied: Vec<Denied>,
}

/// A resolved address (with the target's port) that the policy denies, and the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    /// The address and port that were not connected to.
    pub address: SocketAddr,
    /// Why: the rule that denies it.
    pub denial: Denial,
}

/// Concludes one round.
pub fn conclude(target: &Target, round: &RoundResult, timeout_ms: u32) -> Verdict {
    let Some(dns) = round.resolution.as_ref() else {
        return verdict(Cause::ConnectError, "The check did not run.".into(), vec![], vec![]);
    };
    if dns.status != DnsStatus::Ok {
        let mut verdict = dns::dns_verdict(target, dns, &round.findings);
        dns::note_resolvers(&mut verdict, &round.findings);
        dns::note_search_domain(&mut verdict, &target.host.ascii(), &round.findings);
        return verdict;
    }
    if round.attempts.is_empty() && !round.denied.is_empty() {
        let mut verdict = policy_denied(target, &round.denied);
        verdict.evidence.insert(0, resolution_evidence(dns));
        return verdict;
    }
    let context = Context { target, findings: &round.findings, timeout_ms };
    let diagnoses: Vec<AddressDiagnosis> =
        round.attempts.iter().map(|attempt| context.diagnose(attempt)).collect();
    let mut verdict = combine(target, diagnoses);
    verdict.evidence.insert(0, resolution_evidence(dns));
    if !verdict.cause.is_reachable() {
        dns::note_hosts_override(&mut verdict, &round.findings);
    }
    note_denied(&mut verdict, &round.denied);
    dns::note_resolvers(&mut verdict, &round.findings);
    if !verdict.cause.is_reachable() {
        dns::note_search_domain(&mut verdict, &target.host.ascii(), &round.findings);
    }
    verdict
}

/// The verdict when the policy denies every address: nothing was sent, and each address's
/// evidence names the rule that denies it.
fn policy_denied(target: &Target, denied: &[Denied]) -> Verdict {
    let endpoint = host_and_port(target);
    let first = denied.first().map(|d| d.denial.to_string()).unwrap_or_default();
    let summary = match denied.len() {
        1 => format!("This agent's target policy denies {endpoint}: {first}. Nothing was sent."),
        n => format!(
            "This agent's target policy denies all {n} addresses of {endpoint} (first: {first}). \
             Nothing was sent."
        ),
    };
    let suggestions = vec![
        "The agent was started with rules (--deny, --allow, --allow-ports, or the default rules \
         of an agent open to the network) that keep it from reaching this target: check it from \
         an agent allowed to, or ask whoever runs this agent to allow it."
            .into(),
    ];
    verdict(Cause::PolicyDenied, summary, suggestions, denied_evidence(denied))
}

/// With some addresses checked and others denied: the checked addresses' verdict stands, and
/// says which addresses were not checked, and why.
fn note_denied(verdict: &mut Verdict, denied: &[Denied]) {
    if denied.is_empty() {
        return;
    }
    let addresses: Vec<String> = denied.iter().map(|d| d.address.ip().to_string()).collect();
    verdict.summary = format!(
        "{} (Not checked: {}, denied by this agent's target policy.)",
        verdict.summary,
        addresses.join(", ")
    );
    verdict.evidence.extend(denied_evidence(denied));
}

fn denied_evidence(denied: &[Denied]) -> Vec<Evidence> {
    denied
        .iter()
        .map(|d| evidence(format!("policy {}", d.address), format!("denied: {}", d.denial), None))
        .collect()
}

/// The verdict over retried rounds: the same cause every time is persistent; anything else is
/// intermittent, named by its most frequent failure, with the timeline as evidence.
pub fn across_rounds(target: &Target, rounds: &[Round], mut verdicts: Vec<Verdict>) -> Verdict {
    let timeline: Vec<Evidence> = rounds
        .iter()
        .map(|round| {
            let status = round.http_status.map(|s| format!(" (HTTP {s})")).unwrap_or_default();
            evidence(
                format!("round {} at {}", round.round, round.at.0),
                format!("{}{status}", round.cause.as_str()),
                Some(round.elapsed_us),
            )
        })
        .collect();
    let persistent = rounds.windows(2).all(|pair| pair[0].cause == pair[1].cause);
    let failures: Vec<&Round> = rounds.iter().filter(|r| !r.cause.is_reachable()).collect();
    let most_frequent = failures
        .iter()
        .map(|r| r.cause)
        .max_by_key(|cause| failures.iter().filter(|r| r.cause == *cause).count());
    // A round whose drop this host's own firewall rule proved is not loss, however the others
    // went.
    let host_proven = verdicts.iter().any(host::proves_drop);
    // The latest verdict of the cause that matters carries its evidence and suggestions.
    let chosen = match (persistent, most_frequent) {
        (false, Some(cause)) => verdicts.iter().rposition(|v| v.cause == cause),
        _ => None,
    }
    .unwrap_or(verdicts.len().saturating_sub(1));
    let Some(mut verdict) = (!verdicts.is_empty()).then(|| verdicts.swap_remove(chosen)) else {
        return self::verdict(Cause::ConnectError, "No round ran.".into(), vec![], timeline);
    };
    let lossy = (!host_proven && loss::rounds_are_lossy(rounds))
        .then(|| loss::over_rounds(rounds))
        .flatten();
    if let Some(tries) = lossy {
        // The latest silent round carries the liveness evidence.
        if let Some(silent) = verdicts.iter().rposition(|v| v.cause != Cause::Reachable) {
            verdict = verdicts.swap_remove(silent);
        }
        let (endpoint, host) = (host_and_port(target), target.host.display().to_string());
        verdict = loss::across_rounds(&endpoint, &host, tries, verdict);
        verdict.pattern = Some(Pattern::Intermittent);
    } else if persistent {
        verdict.pattern = Some(Pattern::Persistent);
        verdict.summary = format!("{} (The same in all {} rounds.)", verdict.summary, rounds.len());
    } else if let Some(intermittent) = service::intermittent_service(rounds, verdict.cause) {
        verdict.pattern = Some(Pattern::Intermittent);
        verdict.summary = format!("{intermittent} {}", verdict.summary);
        verdict.suggestions.insert(0, service::INTERMITTENT_SERVICE_FIX.into());
    } else {
        verdict.pattern = Some(Pattern::Intermittent);
        verdict.summary = format!(
            "Intermittent: {} of {} rounds failed, mostly as {}. {}",
            failures.len(),
            rounds.len(),
            verdict.cause.as_str(),
            verdict.summary
        );
        verdict.suggestions.insert(
            0,
            "The failure comes and goes: look for a flapping service, an overloaded server or \
             firewall, or a load balancer with an unhealthy member."
                .into(),
        );
    }
    verdict.evidence.extend(timeline);
    verdict
}

/// One address's diagnosis.
#[derive(Debug, Clone)]
struct AddressDiagnosis {
    address: IpAddr,
    cause: Cause,
    summary: String,
    suggestions: Vec<String>,
    evidence: Vec<Evidence>,
}

/// What every address's diagnosis may consult.
struct Context<'a> {
    target: &'a Target,
    findings: &'a [Finding],
    timeout_ms: u32,
}

fn verdict(
    cause: Cause,
    summary: String,
    suggestions: Vec<String>,
    evidence: Vec<Evidence>,
) -> Verdict {
    Verdict { cause, summary, suggestions, evidence, pattern: None }
}

/// The note on a closed port's reset, which a firewall's REJECT with a reset looks like; dropped
/// once the host's own rules settle it (see `host`).
pub const RESET_LOOKS_CLOSED: &str =
    "a firewall rejecting with a TCP reset looks exactly like a closed port from here";

fn evidence(
    probe: impl Into<String>,
    result: impl Into<String>,
    elapsed_us: Option<u64>,
) -> Evidence {
    Evidence { probe: probe.into(), result: result.into(), elapsed_us }
}

fn resolution_evidence(dns: &Resolution) -> Evidence {
    let list: Vec<String> = dns.addresses.iter().map(IpAddr::to_string).collect();
    let how = match dns.method {
        whyrefused_shared::ResolveMethod::Literal => {
            "an IP address, nothing to look up".to_string()
        }
        whyrefused_shared::ResolveMethod::System | whyrefused_shared::ResolveMethod::Resolver => {
            format!("{} → {}", dns.host, list.join(", "))
        }
    };
    let probe = match dns.method {
        whyrefused_shared::ResolveMethod::Resolver => "dns (the resolvers asked)",
        _ => "dns (system resolver)",
    };
    evidence(probe, how, Some(dns.elapsed_us))
}

impl Context<'_> {
    fn endpoint(&self, address: &IpAddr) -> String {
        let host = self.target.host.display();
        let port = self.target.port;
        if host == address.to_string() {
            format!("port {port} of {host}")
        } else {
            format!("port {port} of {host} ({address})")
        }
    }

    fn diagnose(&self, attempt: &Attempt) -> AddressDiagnosis {
        let mut connect_result = attempt.state.as_str().to_string();
        if let Some(errno) = &attempt.errno {
            connect_result = format!("{connect_result} ({})", errno.name);
        }
        let mut diagnosis = AddressDiagnosis {
            address: attempt.address,
            cause: Cause::ConnectError,
            summary: String::new(),
            suggestions: Vec::new(),
            evidence: vec![evidence(
                format!("connect {}", attempt.socket_addr()),
                connect_result,
                Some(attempt.elapsed_us),
            )],
        };
        if let Some(error) = &attempt.icmp {
            let sender = self.describe_sender(error.from, attempt.address, error.from_local);
            diagnosis.evidence.push(evidence(
                "icmp",
                format!(
                    "{} (type {}, code {}) from {} ({sender})",
                    error.meaning, error.icmp_type, error.code, error.from
                ),
                None,
            ));
        }
        match attempt.state {
            ConnectState::Open => {
                self.opened(attempt, &mut diagnosis);
                self.mtu_black_hole(attempt, &mut diagnosis);
                if let Some(service) = self.service(attempt) {
                    wrong_service::apply(service, &mut diagnosis);
                    if diagnosis.cause == Cause::WrongService {
                        self.name_the_process(attempt.address, &mut diagnosis);
                    }
                }
            }
            ConnectState::Refused => self.refused(attempt, &mut diagnosis),
            ConnectState::Timeout => self.silent(attempt, &mut diagnosis),
            ConnectState::HostUnreachable => self.host_unreachable(attempt, &mut diagnosis),
            ConnectState::NetworkUnreachable => self.network_unreachable(attempt, &mut diagnosis),
            ConnectState::PermissionDenied => self.permission_denied(attempt, &mut diagnosis),
            ConnectState::Reset => {
                diagnosis.cause = Cause::ConnectionReset;
                diagnosis.summary = format!(
                    "The connection to {} was reset during the handshake.",
                    self.endpoint(&attempt.address)
                );
                diagnosis.suggestions.push(
                    "A firewall or load balancer in front of the service may be resetting connections.".into(),
                );
            }
            ConnectState::Error => {
                let errno = attempt.errno.as_ref().map_or("an unknown error", |e| e.name.as_str());
                diagnosis.summary = format!(
                    "Connecting to {} failed with {errno}.",
                    self.endpoint(&attempt.address)
                );
            }
        }
        let proved = self.host_proof(attempt, &mut diagnosis);
        self.place_on_path(attempt, proved, &mut diagnosis);
        diagnosis
    }

    /// What the target host itself proves (the agent runs on it): the firewall rule that
    /// stopped the probe, the listener's stopped owner or full accept queue, win over what the
    /// client side inferred. Whether it proved one.
    fn host_proof(&self, attempt: &Attempt, diagnosis: &mut AddressDiagnosis) -> bool {
        let address = attempt.socket_addr();
        let rule = self.findings.iter().find_map(|finding| match finding {
            Finding::FirewallRule(found) if found.address == address => Some(found),
            _ => None,
        });
        let named = match rule.filter(|_| attempt.state != ConnectState::Open) {
            Some(found) => host::apply(found, self.target.port, diagnosis),
            None => false,
        };
        let held = self.findings.iter().find_map(|finding| match finding {
            Finding::LocalPorts(held) if held.destination == address => Some(held),
            _ => None,
        });
        if let Some(held) = held {
            return host::apply_local_ports(held, diagnosis);
        }
        let pressure = self.findings.iter().find_map(|finding| match finding {
            Finding::HostPressure(pressure) => Some(pressure),
            _ => None,
        });
        if !named && pressure.is_some_and(|p| host::apply_pressure(p, attempt, diagnosis)) {
            return true;
        }
        let on_this_host = icmp::is_local_address(&attempt.address);
        named
            || self
                .local_listeners()
                .filter(|_| on_this_host)
                .is_some_and(|found| host::apply_listener(found, attempt, diagnosis))
    }

    /// Adds where the packets die, from the address's traced path: to the summary and the
    /// suggestions of a silent or unreachable verdict (unless the host itself `proved` where
    /// they die), to the evidence of any.
    fn place_on_path(&self, attempt: &Attempt, proved: bool, diagnosis: &mut AddressDiagnosis) {
        let Some(traced) = self.traced_path(attempt.socket_addr()) else { return };
        let host_up = self.liveness(attempt.address).map(|l| l.host_up);
        let reading = path::read(traced, host_up);
        let silent = !proved
            && matches!(
                diagnosis.cause,
                Cause::Filtered
                    | Cause::NoResponse
                    | Cause::HostUnreachable
                    | Cause::NetworkUnreachable
            );
        if diagnosis.cause == Cause::PacketLoss
            && let Some(words) = path::loss_start(traced)
        {
            diagnosis.summary = format!("{} {words}", diagnosis.summary);
        }
        if silent {
            diagnosis.summary = format!("{} {}", diagnosis.summary, reading.sentence);
            if let Some(suggestion) = reading.suggestion {
                diagnosis.suggestions.insert(0, suggestion);
            }
        }
        diagnosis.evidence.extend(reading.evidence);
    }

    fn traced_path(&self, address: SocketAddr) -> Option<&whyrefused_shared::Path> {
        self.findings.iter().find_map(|finding| match finding {
            Finding::Path(path) if path.address == address.ip() && path.port == address.port() => {
                Some(path.as_ref())
            }
            _ => None,
        })
    }

    fn describe_sender(&self, from: IpAddr, target: IpAddr, from_local: bool) -> &'static str {
        if from == target {
            "the target itself"
        } else if from_local {
            "this host"
        } else {
            "a router or firewall on the way"
        }
    }

    fn opened(&self, attempt: &Attempt, diagnosis: &mut AddressDiagnosis) {
        let endpoint = self.endpoint(&attempt.address);
        diagnosis.cause = Cause::Reachable;
        diagnosis.summary = format!("{endpoint} accepts connections.");
        let Some(after) = self.after_connect(attempt) else { return };
        diagnosis.evidence.extend(after_connect_evidence(after));
        if let Some(close) = after.early_close {
            let how = match close {
                EarlyClose::Closed => "closed it",
                EarlyClose::Reset => "reset it",
            };
            diagnosis.cause = Cause::ServerClosed;
            diagnosis.summary = format!(
                "{endpoint} accepted the connection, then the server {how} at once: the server \
                 program is failing or refusing this client."
            );
            diagnosis.suggestions.push(
                "Check the server's logs: it may be crashing, out of connections, or rejecting this client's address.".into(),
            );
        } else if let Some(tls) = after.tls.as_ref().filter(|tls| !tls.ok) {
            diagnosis.cause = Cause::TlsError;
            let why = tls.error.as_deref().unwrap_or("the certificate was not accepted");
            diagnosis.summary =
                format!("{endpoint} accepts connections, but the TLS handshake failed: {why}.");
            if let Some(fix) = service::tls_fix(tls, &self.target.host.display()) {
                diagnosis.suggestions.push(fix);
            } else if tls.certificate.is_none() && after.early_close.is_none() {
                diagnosis.suggestions.push(
                    "This port does not speak TLS: use the plain scheme (http://) or drop --tls, \
                     or connect to the service's TLS port."
                        .into(),
                );
            }
            if let Some(certificate) = tls.certificate.as_ref().filter(|c| c.subject == c.issuer) {
                diagnosis.suggestions.push(format!(
                    "The certificate ({}) is self-signed: install a certificate from a trusted \
                     authority, or make the clients trust this one explicitly.",
                    certificate.subject
                ));
            }
            if let Some(certificate) = &tls.certificate {
                if !certificate.name_matches {
                    let names = match certificate.subject_alt_names.is_empty() {
                        true => "no name (it has no subjectAltName)".to_string(),
                        false => certificate.subject_alt_names.join(", "),
                    };
                    diagnosis.suggestions.push(format!(
                        "The certificate is for {names}, not {}: use a name it covers, or fix \
                         the certificate.",
                        self.target.host.display()
                    ));
                }
                if certificate.expired {
                    diagnosis.suggestions.push(format!(
                        "The certificate expired on {}: renew it.",
                        certificate.not_after
                    ));
                }
            }
        } else if let Some(http) = &after.http {
            let judged = match http.failed {
                true => service::judge_failure(http, &endpoint),
                false => service::judge_status(http, &endpoint, &self.path()),
            };
            diagnosis.cause = judged.cause;
            diagnosis.summary = judged.summary;
            if let Some(followed) = service::redirects_followed(http) {
                diagnosis.summary = format!("{} ({followed})", diagnosis.summary);
            }
            diagnosis.suggestions.extend(judged.suggestions);
            diagnosis.evidence.extend(judged.notes);
        }
        if diagnosis.cause != Cause::Reachable {
            self.name_the_process(attempt.address, diagnosis);
        }
    }

    /// The target's URL path (`/` without one).
    fn path(&self) -> String {
        self.target.path.clone().filter(|p| !p.is_empty()).unwrap_or_else(|| "/".into())
    }

    /// When the service runs on this host: the process that answered, whose logs to read.
    fn name_the_process(&self, address: IpAddr, diagnosis: &mut AddressDiagnosis) {
        let Some(found) = self.local_listeners() else { return };
        if let Some((line, suggestion)) = service::answering_process(found, address) {
            diagnosis.evidence.push(line);
            diagnosis.suggestions.insert(0, suggestion);
        }
    }

    fn refused(&self, attempt: &Attempt, diagnosis: &mut AddressDiagnosis) {
        let endpoint = self.endpoint(&attempt.address);
        let family = Family::of(&attempt.address);
        if let Some(error) = attempt.icmp.as_ref().filter(|e| icmp::is_rejection(e, family)) {
            return self.rejected(attempt, error, diagnosis);
        }
        if let Some((listeners, elsewhere)) = self.listeners_elsewhere(attempt.address) {
            diagnosis.cause = Cause::LoopbackOnly;
            let bound: Vec<String> = elsewhere.iter().map(|l| l.address.to_string()).collect();
            diagnosis.summary = format!(
                "The service on port {} listens on {} only, so connections to {} are refused.",
                listeners.port,
                bound.join(", "),
                attempt.address
            );
            diagnosis.evidence.push(listeners_evidence(listeners));
            diagnosis.suggestions.extend(bind_suggestions(
                &elsewhere,
                listeners.port,
                attempt.family,
            ));
            return;
        }
        diagnosis.cause = Cause::PortClosed;
        diagnosis.summary =
            format!("Nothing listens on {endpoint}: the host is up and answered with a reset.");
        diagnosis.evidence.push(evidence("note", RESET_LOOKS_CLOSED, None));
        if let Some(listeners) = self.local_listeners() {
            diagnosis.evidence.push(listeners_evidence(listeners));
        }
        match self.nearby(attempt.address) {
            Some(nearby) if !nearby.open.is_empty() => {
                diagnosis.evidence.push(evidence(
                    "nearby ports",
                    format!("open: {}{}", join_ports(&nearby.open), read_from_listeners(nearby)),
                    None,
                ));
                for port in nearby.open.iter().take(3) {
                    diagnosis
                        .suggestions
                        .push(format!("Port {port} on that host is open: did you mean {port}?"));
                }
            }
            Some(nearby) if nearby.probed == 0 => diagnosis.evidence.push(evidence(
                "nearby ports",
                "not probed: none is in this agent's --allow-ports",
                None,
            )),
            Some(nearby) => diagnosis.evidence.push(evidence(
                "nearby ports",
                format!("none of the nearby ports is open{}", read_from_listeners(nearby)),
                None,
            )),
            None => {}
        }
        diagnosis
            .suggestions
            .push("Check that the service is running and listening on this port.".into());
    }

    fn rejected(
        &self,
        attempt: &Attempt,
        error: &whyrefused_shared::IcmpError,
        diagnosis: &mut AddressDiagnosis,
    ) {
        let endpoint = self.endpoint(&attempt.address);
        if error.from_local && !icmp::is_local_address(&attempt.address) {
            diagnosis.cause = Cause::LocalFirewall;
            diagnosis.summary = format!(
                "This host's own firewall rejected the connection to {endpoint} ({} from {}).",
                error.meaning, error.from
            );
            diagnosis.suggestions.push(local_firewall_fix(attempt.family));
        } else {
            let at = if error.from == attempt.address {
                "the host's own firewall"
            } else {
                "a firewall on the way"
            };
            diagnosis.cause = Cause::FirewallReject;
            diagnosis.summary = format!(
                "A firewall rejected the connection to {endpoint}: {} from {} ({at}).",
                error.meaning, error.from
            );
            diagnosis.suggestions.push(format!(
                "Allow TCP port {} from this host in the firewall at {} (a REJECT rule answers for it).",
                self.target.port, error.from
            ));
            diagnosis.evidence.extend(late_rejection_note(attempt));
        }
    }

    /// `EACCES`/`EPERM`, decided by who sent the ICMP error behind it: another host's error is
    /// that host's (or a router's) reject, this host's is its own firewall; with no ICMP error
    /// at all, this host refused to send the connection.
    fn permission_denied(&self, attempt: &Attempt, diagnosis: &mut AddressDiagnosis) {
        if let Some(error) = &attempt.icmp {
            return self.rejected(attempt, error, diagnosis);
        }
        let errno = attempt.errno.as_ref().map_or("permission denied", |e| e.name.as_str());
        diagnosis.cause = Cause::LocalFirewall;
        diagnosis.summary = format!(
            "This host's own firewall blocked the connection to {} before it left ({errno} \
             with no ICMP error from the network: a local rule forbids it).",
            self.endpoint(&attempt.address)
        );
        diagnosis.suggestions.push(local_firewall_fix(attempt.family));
    }

    fn silent(&self, attempt: &Attempt, diagnosis: &mut AddressDiagnosis) {
        let endpoint = self.endpoint(&attempt.address);
        let timeout_ms = self.timeout_ms;
        if let Some(drops) = self.local_drops(attempt) {
            diagnosis.cause = Cause::LocalFirewall;
            diagnosis.summary = format!(
                "This host's own firewall drops the connection to {endpoint}: its SYN \
                 retransmissions never left this host."
            );
            diagnosis.evidence.push(evidence(
                "local drops",
                format!(
                    "{} TCP retransmission(s) failed to leave this host during the attempt \
                     (TcpExt TCPRetransFail, counted for the whole host)",
                    drops.failed_retransmissions
                ),
                None,
            ));
            diagnosis.suggestions.push(local_firewall_fix(attempt.family));
            return;
        }
        let liveness = self.liveness(attempt.address);
        if let Some(found) = self.loss(attempt.socket_addr()) {
            diagnosis.evidence.push(loss::tries_evidence(found));
            if loss::is_lossy(found) {
                diagnosis.cause = Cause::PacketLoss;
                diagnosis.summary = loss::summary(&endpoint, &found.loss, found.open > 0);
                let other = liveness.and_then(|l| l.port_loss.as_ref());
                if let Some(words) = other.and_then(loss::host_also_lossy) {
                    diagnosis.summary = format!("{} {words}", diagnosis.summary);
                }
                diagnosis.suggestions = loss::suggestions(&host_and_port(self.target));
                diagnosis.evidence.extend(liveness.map(liveness_evidence).unwrap_or_default());
                return;
            }
        }
        if let Some(liveness) = liveness {
            diagnosis.evidence.extend(liveness_evidence(liveness));
        }
        if liveness.is_some_and(|l| l.host_up) {
            diagnosis.cause = Cause::Filtered;
            diagnosis.summary = format!(
                "No answer on {endpoint} within {timeout_ms} ms, while the host is up: a firewall \
                 drops connections to this port."
            );
            let other = liveness.and_then(|l| l.port_loss.as_ref());
            if let Some(words) = other.and_then(loss::beside_silence) {
                diagnosis.summary = format!("{} {words}", diagnosis.summary);
            }
            diagnosis.suggestions.push(format!(
                "Allow TCP port {} in the firewalls between here and the host (security groups, iptables, nftables).",
                self.target.port
            ));
        } else {
            diagnosis.cause = Cause::NoResponse;
            diagnosis.summary = format!(
                "No answer at all from {} within {timeout_ms} ms, on this port or any other: the host \
                 is down, or a firewall drops everything.",
                attempt.address
            );
            if liveness.is_some_and(|l| l.echo == EchoState::Unavailable) {
                diagnosis.evidence.push(evidence(
                    "note",
                    "no ICMP echo could be sent, so a silent host and a firewall that drops everything cannot be told apart",
                    None,
                ));
            }
            diagnosis
                .suggestions
                .push("Check that the host is up and the address is right.".into());
            diagnosis.suggestions.push("Check the firewalls between here and the host.".into());
        }
    }

    fn host_unreachable(&self, attempt: &Attempt, diagnosis: &mut AddressDiagnosis) {
        let family = Family::of(&attempt.address);
        if let Some(error) = attempt.icmp.as_ref().filter(|e| icmp::is_rejection(e, family)) {
            return self.rejected(attempt, error, diagnosis);
        }
        diagnosis.cause = Cause::HostUnreachable;
        diagnosis.summary = match &attempt.icmp {
            Some(error) if error.from_local => format!(
                "{} does not answer on the local network (no ARP or neighbour reply): the host is \
                 down or the address is wrong.",
                attempt.address
            ),
            Some(error) => {
                format!("The router {} reports {} unreachable.", error.from, attempt.address)
            }
            None => {
                let errno = attempt.errno.as_ref().map_or("EHOSTUNREACH", |e| e.name.as_str());
                format!("{} could not be reached ({errno}).", attempt.address)
            }
        };
        diagnosis.suggestions.push("Check that the host is up and its address is right.".into());
    }

    fn network_unreachable(&self, attempt: &Attempt, diagnosis: &mut AddressDiagnosis) {
        diagnosis.cause = Cause::NetworkUnreachable;
        diagnosis.summary = match attempt.icmp.as_ref().filter(|e| !e.from_local) {
            Some(error) => {
                format!("The router {} has no route to {}'s network.", error.from, attempt.address)
            }
            None => format!("This host has no route to {}'s network.", attempt.address),
        };
        diagnosis.suggestions.push("Check the routes (ip route) and the default gateway.".into());
    }

    /// After a connection that opened and then stalled: the MSS probe's proof of a path-MTU
    /// black hole replaces what the stall looked like (a TLS or HTTP timeout). A server that
    /// closed or reset the connection is never a black hole.
    fn mtu_black_hole(&self, attempt: &Attempt, diagnosis: &mut AddressDiagnosis) {
        let probe = self.findings.iter().find_map(|finding| match finding {
            Finding::MtuProbe(probe) if probe.address == attempt.socket_addr() => Some(probe),
            _ => None,
        });
        if let Some(probe) = probe.filter(|_| diagnosis.cause != Cause::ServerClosed) {
            mtu::apply(probe, diagnosis);
        }
    }

    fn after_connect(&self, attempt: &Attempt) -> Option<&AfterConnect> {
        self.findings.iter().find_map(|finding| match finding {
            Finding::AfterConnect(after) if after.address == attempt.socket_addr() => {
                Some(after.as_ref())
            }
            _ => None,
        })
    }

    fn service(&self, attempt: &Attempt) -> Option<&whyrefused_shared::ServiceIdentity> {
        self.findings.iter().find_map(|finding| match finding {
            Finding::Service(service) if service.address == attempt.socket_addr() => Some(service),
            _ => None,
        })
    }

    fn local_drops(&self, attempt: &Attempt) -> Option<&whyrefused_shared::LocalDrops> {
        self.findings.iter().find_map(|finding| match finding {
            Finding::LocalDrops(drops) if drops.address == attempt.socket_addr() => Some(drops),
            _ => None,
        })
    }

    fn liveness(&self, address: IpAddr) -> Option<&whyrefused_shared::Liveness> {
        self.findings.iter().find_map(|finding| match finding {
            Finding::Liveness(liveness) if liveness.address == address => Some(liveness),
            _ => None,
        })
    }

    fn loss(&self, address: SocketAddr) -> Option<&LossFinding> {
        self.findings.iter().find_map(|finding| match finding {
            Finding::Loss(found) if SocketAddr::new(found.address, found.port) == address => {
                Some(found)
            }
            _ => None,
        })
    }

    fn nearby(&self, address: IpAddr) -> Option<&NearbyPorts> {
        self.findings.iter().find_map(|finding| match finding {
            Finding::NearbyPorts(nearby) if nearby.address == address => Some(nearby),
            _ => None,
        })
    }

    fn local_listeners(&self) -> Option<&LocalListeners> {
        self.findings.iter().find_map(|finding| match finding {
            Finding::LocalListeners(listeners) => Some(listeners),
            _ => None,
        })
    }

    /// The local listeners on the port, when there are some and none takes `address`.
    fn listeners_elsewhere(
        &self,
        address: IpAddr,
    ) -> Option<(&LocalListeners, Vec<&whyrefused_shared::Listener>)> {
        let found = self.local_listeners()?;
        let takes = found.listeners.iter().any(|l| listeners::accepts(&l.address, &address));
        (!found.listeners.is_empty() && !takes).then(|| (found, found.listeners.iter().collect()))
    }
}

/// TCP's first SYN retransmission comes this long after the SYN (the initial RTO, 1 s): an
/// ICMP error that ends a connect later than that answered a retransmission.
const FIRST_RETRANSMISSION_US: u64 = 1_000_000;

/// Why another host's REJECT took a second or more: its answer to the first SYN never came.
/// A Linux host rate-limits the ICMP errors it sends to each address (IPv4: one a second with
/// a burst of six; IPv6: `net.ipv6.icmp.ratelimit`, shortened for wide prefixes), so a REJECT
/// it has just used on this host answers only the SYN sent again a second later.
fn late_rejection_note(attempt: &Attempt) -> Option<Evidence> {
    if attempt.elapsed_us < FIRST_RETRANSMISSION_US {
        return None;
    }
    let sysctl = match attempt.family {
        Family::Ipv4 => "net.ipv4.icmp_ratelimit",
        Family::Ipv6 => "net.ipv6.icmp.ratelimit",
    };
    Some(evidence(
        "note",
        format!(
            "the ICMP error answered a retransmitted SYN, after {} ms: the first SYN got none, \
             most likely held back by the sender's ICMP rate limit ({sysctl} on Linux), which \
             under load makes a REJECT look like a DROP",
            attempt.elapsed_us / 1000
        ),
        None,
    ))
}

/// Where to look for a rule in this host's own firewall: `ip6tables` holds IPv6's.
fn local_firewall_fix(family: Family) -> String {
    let tool = match family {
        Family::Ipv4 => "iptables",
        Family::Ipv6 => "ip6tables",
    };
    format!("Check this host's OUTPUT firewall rules ({tool} -S OUTPUT, nft list ruleset).")
}

/// `host:port` as a person writes it: an IPv6 address in brackets (`[fd00::2]:8080`).
fn host_and_port(target: &Target) -> String {
    match &target.host {
        Host::Ip(IpAddr::V6(ip)) => format!("[{ip}]:{}", target.port),
        host => format!("{}:{}", host.display(), target.port),
    }
}

/// How the nearby ports of this host's own address were seen, when not all by connecting.
fn read_from_listeners(nearby: &NearbyPorts) -> String {
    match nearby.from_listeners {
        0 => String::new(),
        read => format!(
            " ({read} of the {} ports read from this host's listening sockets: no rule of its \
             firewall could stop a connect to them)",
            nearby.probed
        ),
    }
}

fn join_ports(ports: &[u16]) -> String {
    ports.iter().map(u16::to_string).collect::<Vec<_>>().join(", ")
}

fn listeners_evidence(found: &LocalListeners) -> Evidence {
    let described: Vec<String> = found
        .listeners
        .iter()
        .map(|l| match (&l.process, l.pid) {
            (Some(name), Some(pid)) => format!("{} (pid {pid}, {name})", l.address),
            _ => l.address.to_string(),
        })
        .collect();
    let result = if described.is_empty() {
        format!("nothing on this host listens on port {}", found.port)
    } else {
        format!("listening: {}", described.join(", "))
    };
    evidence("local listeners", result, None)
}

/// How to make a service listen beyond loopback, in its own configuration's words, for the
/// family of the address that was refused.
fn bind_suggestions(
    listeners: &[&whyrefused_shared::Listener],
    port: u16,
    family: Family,
) -> Vec<String> {
    let process = listeners.iter().find_map(|l| l.process.as_deref()).unwrap_or("");
    let wildcard = match family {
        Family::Ipv4 => "0.0.0.0",
        Family::Ipv6 => "::",
    };
    let setting = bind_setting(process, family);
    let mut suggestions = vec![format!(
        "Make the service listen on {wildcard} or this host's address: set {setting}."
    )];
    if let Some(owner) = listeners.iter().find(|l| l.pid.is_some()) {
        suggestions.push(format!(
            "pid {} ({}) owns {}.",
            owner.pid.unwrap_or_default(),
            owner.process.as_deref().unwrap_or("?"),
            SocketAddr::new(owner.address.ip(), port)
        ));
    }
    suggestions
}

/// The setting that makes a well-known server listen on every address of `family`.
fn bind_setting(process: &str, family: Family) -> &'static str {
    let ipv6 = family == Family::Ipv6;
    match process {
        p if p.starts_with("postgres") => "listen_addresses = '*' in postgresql.conf",
        p if p.starts_with("mysqld") || p.starts_with("mariadbd") => match ipv6 {
            false => "bind-address = 0.0.0.0 in my.cnf",
            true => "bind-address = * in my.cnf",
        },
        p if p.starts_with("redis") => match ipv6 {
            false => "bind 0.0.0.0 in redis.conf (and set a password)",
            true => "bind * -::* in redis.conf (and set a password)",
        },
        p if p.starts_with("mongod") => match ipv6 {
            false => "net.bindIp: 0.0.0.0 in mongod.conf",
            true => "net.bindIpAll: true and net.ipv6: true in mongod.conf",
        },
        _ => "its listen or bind address",
    }
}

fn liveness_evidence(liveness: &whyrefused_shared::Liveness) -> Vec<Evidence> {
    let mut found: Vec<Evidence> = liveness
        .ports
        .iter()
        .map(|probe| {
            let meaning = if probe.state.is_answer() { " (the host is up)" } else { "" };
            evidence(
                format!("liveness port {}", probe.port),
                format!("{}{meaning}", probe.state.as_str()),
                Some(probe.elapsed_us),
            )
        })
        .collect();
    let echo = match liveness.echo {
        EchoState::Replied => "reply (the host is up)".to_string(),
        EchoState::NoReply => "no reply".to_string(),
        EchoState::Unavailable => {
            format!("not sent: {}", liveness.echo_detail.as_deref().unwrap_or("no permission"))
        }
    };
    found.push(evidence("icmp echo", echo, liveness.echo_rtt_us));
    found.extend(liveness.port_loss.as_ref().map(loss::tries_evidence));
    found.extend(liveness.echo_loss.as_ref().map(loss::echoes_evidence));
    found
}

fn after_connect_evidence(after: &AfterConnect) -> Vec<Evidence> {
    let mut found = Vec::new();
    if let Some(close) = after.early_close {
        found.push(evidence(
            "after connect",
            format!("the server {close:?} the connection at once").to_lowercase(),
            None,
        ));
    }
    if let Some(banner) = &after.banner {
        found.push(evidence("banner", banner.clone(), None));
    }
    if let Some(tls) = &after.tls {
        let result = match (&tls.error, &tls.version) {
            (Some(error), _) => format!("failed: {error}"),
            (None, Some(version)) => format!("{version}, certificate accepted"),
            (None, None) => "completed".to_string(),
        };
        found.push(evidence("tls", result, Some(tls.elapsed_us)));
    }
    if let Some(http) = &after.http {
        found.extend(service::http_evidence(http));
    }
    found
}

/// The failure causes, most telling first: when addresses fail differently, the verdict names
/// the one that says most about what to fix.
const PRECEDENCE: [Cause; 21] = [
    Cause::LocalPortsExhausted,
    Cause::ConntrackFull,
    Cause::ServerStopped,
    Cause::BacklogFull,
    Cause::LocalFirewall,
    Cause::LoopbackOnly,
    Cause::FirewallReject,
    Cause::PortClosed,
    Cause::ServerClosed,
    Cause::TlsError,
    Cause::HttpError,
    Cause::ServerError,
    Cause::UnexpectedStatus,
    Cause::AccessDenied,
    Cause::ConnectionReset,
    Cause::HostUnreachable,
    Cause::NetworkUnreachable,
    Cause::Filtered,
    Cause::NoResponse,
    Cause::ConnectError,
    Cause::WrongService,
];

fn combine(target: &Target, diagnoses: Vec<AddressDiagnosis>) -> Verdict {
    let evidence: Vec<Evidence> = diagnoses.iter().flat_map(|d| d.evidence.clone()).collect();
    let mut suggestions: Vec<String> = Vec::new();
    for suggestion in diagnoses.iter().flat_map(|d| &d.suggestions) {
        if !suggestions.contains(suggestion) {
            suggestions.push(suggestion.clone());
        }
    }
    let (working, failing): (Vec<&AddressDiagnosis>, Vec<&AddressDiagnosis>) =
        diagnoses.iter().partition(|d| d.cause == Cause::Reachable);
    let endpoint = host_and_port(target);
    match (working.as_slice(), failing.as_slice()) {
        ([], []) => verdict(
            Cause::ConnectError,
            format!("No connection to {endpoint} was attempted."),
            suggestions,
            evidence,
        ),
        ([only], []) => verdict(Cause::Reachable, only.summary.clone(), suggestions, evidence),
        (all, []) => verdict(
            Cause::Reachable,
            format!("{endpoint} accepts connections on all {} addresses.", all.len()),
            suggestions,
            evidence,
        ),
        (_, _) if !working.is_empty() => {
            let works: Vec<String> = working.iter().map(|d| d.address.to_string()).collect();
            let worst = most_telling(&failing);
            suggestions.insert(
                0,
                "Programs that try a failing address first will stall or fail: fix that address, or remove its DNS record.".into(),
            );
            verdict(
                Cause::Partial,
                format!(
                    "{endpoint} works on {} but not on {}: {}",
                    works.join(", "),
                    worst.address,
                    worst.summary
                ),
                suggestions,
                evidence,
            )
        }
        (_, _) => {
            let worst = most_telling(&failing);
            let others = failing.iter().filter(|d| d.cause != worst.cause).count();
            let summary = if others == 0 || failing.len() == 1 {
                worst.summary.clone()
            } else {
                format!("{} ({others} other address(es) failed differently.)", worst.summary)
            };
            verdict(worst.cause, summary, suggestions, evidence)
        }
    }
}

fn most_telling<'a>(failing: &[&'a AddressDiagnosis]) -> &'a AddressDiagnosis {
    let rank =
        |cause: Cause| PRECEDENCE.iter().position(|c| *c == cause).unwrap_or(PRECEDENCE.len());
    failing.iter().copied().min_by_key(|d| rank(d.cause)).expect("at least one failing address")
}

#[cfg(test)]
mod tests {
    use super::*;
    use whyrefused_shared::{
        Errno, Listener, Liveness, NearbyPorts, PortProbe, ResolveMethod, Timestamp,
    };

    fn target(text: &str) -> Target {
        Target::parse(text, None).unwrap()
    }

    fn dns(status: DnsStatus, addresses: &[&str]) -> Resolution {
        Resolution {
            host: "db.internal".into(),
            method: ResolveMethod::System,
            status,
            addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
            detail: (status != DnsStatus::Ok).then(|| "Name or service not known".into()),
            elapsed_us: 100,
        }
    }

    fn attempt(address: &str, state: ConnectState) -> Attempt {
        let address = address.parse().unwrap();
        Attempt {
            address,
            port: 5432,
            family: Family::of(&address),
            state,
            errno: (state == ConnectState::Error)
                .then(|| Errno { code: 99, name: "EADDRNOTAVAIL".into() }),
            icmp: None,
            elapsed_us: 10,
            elapsed_ms: 0.01,
            started_at: Timestamp(String::new()),
        }
    }

    fn with_icmp(mut attempt: Attempt, code: u8, from: &str, from_local: bool) -> Attempt {
        let mut error = icmp::describe(attempt.family, 3, code, from.parse().unwrap());
        error.from_local = from_local;
        attempt.icmp = Some(error);
        attempt
    }

    fn liveness(address: &str, up: bool) -> Finding {
        Finding::Liveness(Liveness {
            address: address.parse().unwrap(),
            ports: vec![PortProbe {
                port: 22,
                state: if up { ConnectState::Refused } else { ConnectState::Timeout },
                elapsed_us: 50,
            }],
            echo: if up { EchoState::Replied } else { EchoState::NoReply },
            echo_rtt_us: up.then_some(80),
            echo_detail: None,
            host_up: up,
            port_loss: None,
            echo_loss: None,
        })
    }

    fn conclude_on(target_text: &str, attempts: Vec<Attempt>, findings: Vec<Finding>) -> Verdict {
        let addresses: Vec<String> = attempts.iter().map(|a| a.address.to_string()).collect();
        let addresses: Vec<&str> = addresses.iter().map(String::as_str).collect();
        let resolution = Some(dns(DnsStatus::Ok, &addresses));
        let round = RoundResult { resolution, attempts, findings, ..RoundResult::default() };
        conclude(&target(target_text), &round, 3000)
    }

    fn denied(address: &str, port: u16) -> Denied {
        let ip: IpAddr = address.parse().unwrap();
        let policy = crate::policy::TargetPolicy::with_defaults();
        let denial = policy.check_address(ip).expect_err("a default-denied address");
        Denied { address: SocketAddr::new(ip, port), denial }
    }

    #[test]
    fn every_address_denied_is_policy_denied_naming_the_rule_with_no_attempt() {
        let round = RoundResult {
            resolution: Some(dns(DnsStatus::Ok, &["169.254.169.254", "fe80::1"])),
            denied: vec![denied("169.254.169.254", 80), denied("fe80::1", 80)],
            ..RoundResult::default()
        };
        let verdict = conclude(&target("metadata.internal:80"), &round, 3000);
        assert_eq!(verdict.cause, Cause::PolicyDenied);
        assert!(verdict.summary.contains("all 2 addresses of metadata.internal:80"));
        assert!(verdict.summary.contains("Nothing was sent"), "{}", verdict.summary);
        let policy: Vec<(&str, &str)> = verdict
            .evidence
            .iter()
            .filter(|e| e.probe.starts_with("policy"))
            .map(|e| (e.probe.as_str(), e.result.as_str()))
            .collect();
        assert_eq!(
            policy,
            [
                (
                    "policy 169.254.169.254:80",
                    "denied: 169.254.169.254 is denied by the default rule \"link-local \
                     169.254.0.0/16\""
                ),
                (
                    "policy [fe80::1]:80",
                    "denied: fe80::1 is denied by the default rule \"link-local fe80::/10\""
                ),
            ]
        );
        assert!(!verdict.evidence.iter().any(|e| e.probe.starts_with("connect")));
    }

    #[test]
    fn some_addresses_denied_keep_the_checked_ones_verdict_and_say_which_were_not_checked() {
        let round = RoundResult {
            resolution: Some(dns(DnsStatus::Ok, &["10.0.0.1", "169.254.169.254"])),
            attempts: vec![attempt("10.0.0.1", ConnectState::Open)],
            denied: vec![denied("169.254.169.254", 5432)],
            ..RoundResult::default()
        };
        let verdict = conclude(&target("db.internal:5432"), &round, 3000);
        assert_eq!(verdict.cause, Cause::Reachable);
        assert!(
            verdict
                .summary
                .ends_with("(Not checked: 169.254.169.254, denied by this agent's target policy.)"),
            "{}",
            verdict.summary
        );
        assert!(verdict.evidence.iter().any(|e| e.probe == "policy 169.254.169.254:5432"));
    }

    #[test]
    fn dns_failures_name_the_dns_problem() {
        for (status, expected) in [
            (DnsStatus::Nxdomain, Cause::DnsNxdomain),
            (DnsStatus::NoAddress, Cause::DnsNoAddress),
            (DnsStatus::Error, Cause::DnsError),
            (DnsStatus::Timeout, Cause::DnsError),
        ] {
            let round =
                RoundResult { resolution: Some(dns(status, &[])), ..RoundResult::default() };
            let verdict = conclude(&target("db.internal:5432"), &round, 3000);
            assert_eq!(verdict.cause, expected);
            assert!(verdict.summary.contains("db.internal"), "{}", verdict.summary);
            assert!(!verdict.evidence.is_empty());
        }
    }

    #[test]
    fn a_reset_without_icmp_is_a_closed_port_and_nearby_open_ports_are_suggested() {
        let nearby = Finding::NearbyPorts(NearbyPorts {
            address: "10.0.0.5".parse().unwrap(),
            probed: 24,
            open: vec![5433],
            from_listeners: 0,
        });
        let verdict = conclude_on(
            "10.0.0.5:5432",
            vec![attempt("10.0.0.5", ConnectState::Refused)],
            vec![nearby],
        );
        assert_eq!(verdict.cause, Cause::PortClosed);
        assert_eq!(
            verdict.summary,
            "Nothing listens on port 5432 of 10.0.0.5: the host is up and answered with a reset."
        );
        assert!(
            verdict
                .suggestions
                .iter()
                .any(|s| s == "Port 5433 on that host is open: did you mean 5433?"),
            "{:?}",
            verdict.suggestions
        );
        assert!(
            verdict
                .evidence
                .iter()
                .any(|e| e.probe == "connect 10.0.0.5:5432" && e.elapsed_us == Some(10))
        );
    }

    #[test]
    fn an_icmp_port_unreachable_is_a_firewall_reject_naming_the_sender() {
        let refused = with_icmp(attempt("10.0.0.5", ConnectState::Refused), 3, "10.0.0.5", false);
        let verdict = conclude_on("10.0.0.5:5432", vec![refused], vec![]);
        assert_eq!(verdict.cause, Cause::FirewallReject);
        assert!(
            verdict.summary.contains("port unreachable from 10.0.0.5 (the host's own firewall)"),
            "{}",
            verdict.summary
        );
        let prohibited =
            with_icmp(attempt("10.0.0.5", ConnectState::HostUnreachable), 13, "10.0.0.1", false);
        let verdict = conclude_on("10.0.0.5:5432", vec![prohibited], vec![]);
        assert_eq!(verdict.cause, Cause::FirewallReject);
        assert!(verdict.summary.contains("a firewall on the way"), "{}", verdict.summary);
    }

    #[test]
    fn an_icmp_rejection_from_this_host_is_the_local_firewall() {
        let refused = with_icmp(attempt("192.0.2.5", ConnectState::Refused), 3, "192.0.2.1", true);
        assert_eq!(
            conclude_on("192.0.2.5:5432", vec![refused], vec![]).cause,
            Cause::LocalFirewall
        );
        let eperm = attempt("192.0.2.5", ConnectState::PermissionDenied);
        assert_eq!(conclude_on("192.0.2.5:5432", vec![eperm], vec![]).cause, Cause::LocalFirewall);
    }

    /// An attempt ended by an ICMPv6 destination unreachable (type 1) with `errno`.
    fn with_icmpv6(
        mut attempt: Attempt,
        (code, errno): (u8, &str),
        from: &str,
        from_local: bool,
    ) -> Attempt {
        let mut error = icmp::describe(Family::Ipv6, 1, code, from.parse().unwrap());
        error.from_local = from_local;
        attempt.icmp = Some(error);
        attempt.errno = Some(Errno { code: 13, name: errno.into() });
        attempt
    }

    #[test]
    fn an_icmpv6_admin_prohibited_from_the_target_is_its_firewall_reject_not_the_local_one() {
        // As the agent reports it now (host_unreachable, like IPv4's admin-prohibited), and as
        // an older agent did (permission_denied): the sender decides, not the errno.
        for state in [ConnectState::HostUnreachable, ConnectState::PermissionDenied] {
            let rejected =
                with_icmpv6(attempt("fd13:2::2", state), (1, "EACCES"), "fd13:2::2", false);
            let verdict = conclude_on("[fd13:2::2]:82", vec![rejected], vec![]);
            assert_eq!(verdict.cause, Cause::FirewallReject, "{state:?}: {}", verdict.summary);
            assert!(
                verdict.summary.contains(
                    "communication administratively prohibited from fd13:2::2 (the host's own \
                     firewall)"
                ),
                "{}",
                verdict.summary
            );
            assert!(!verdict.summary.contains("EPERM"), "{}", verdict.summary);
            assert!(verdict.suggestions.iter().any(|s| s.contains("firewall at fd13:2::2")));
        }
    }

    #[test]
    fn a_reject_that_answered_only_the_retransmitted_syn_names_the_senders_rate_limit() {
        for (address, sysctl) in
            [("10.0.0.5", "net.ipv4.icmp_ratelimit"), ("fd13:2::2", "net.ipv6.icmp.ratelimit")]
        {
            let mut late = with_icmp(attempt(address, ConnectState::Refused), 3, address, false);
            if address.contains(':') {
                late = with_icmpv6(late, (4, "ECONNREFUSED"), address, false);
            }
            late.elapsed_us = 1_006_741;
            let verdict = conclude_on("db.internal:5432", vec![late.clone()], vec![]);
            assert_eq!(verdict.cause, Cause::FirewallReject);
            let note = verdict.evidence.iter().find(|e| e.result.contains("retransmitted SYN"));
            let note = note.expect("a note on the late ICMP error");
            assert!(note.result.contains("after 1006 ms"), "{}", note.result);
            assert!(note.result.contains(sysctl), "{}", note.result);
            late.elapsed_us = 900;
            let verdict = conclude_on("db.internal:5432", vec![late], vec![]);
            assert!(!verdict.evidence.iter().any(|e| e.result.contains("retransmitted SYN")));
        }
    }

    #[test]
    fn an_icmpv6_reject_from_a_router_names_the_router() {
        let rejected = with_icmpv6(
            attempt("fd13:3::2", ConnectState::HostUnreachable),
            (1, "EACCES"),
            "fd13:1::254",
            false,
        );
        let verdict = conclude_on("[fd13:3::2]:82", vec![rejected], vec![]);
        assert_eq!(verdict.cause, Cause::FirewallReject);
        assert!(verdict.summary.contains("from fd13:1::254 (a firewall on the way)"));
    }

    #[test]
    fn an_icmpv6_reject_from_this_host_is_the_local_firewall_with_ip6tables_to_check() {
        let rejected = with_icmpv6(
            attempt("fd13:2::2", ConnectState::PermissionDenied),
            (1, "EACCES"),
            "fd13:2::1",
            true,
        );
        let verdict = conclude_on("[fd13:2::2]:82", vec![rejected], vec![]);
        assert_eq!(verdict.cause, Cause::LocalFirewall);
        assert!(verdict.summary.contains("from fd13:2::1"), "{}", verdict.summary);
        assert!(
            verdict.suggestions.iter().any(|s| s.contains("ip6tables -S OUTPUT")),
            "{:?}",
            verdict.suggestions
        );
    }

    #[test]
    fn permission_denied_without_icmp_is_the_local_firewall_naming_the_real_errno() {
        for errno in ["EACCES", "EPERM"] {
            let mut denied = attempt("10.0.0.5", ConnectState::PermissionDenied);
            denied.errno = Some(Errno { code: 1, name: errno.into() });
            let verdict = conclude_on("10.0.0.5:5432", vec![denied], vec![]);
            assert_eq!(verdict.cause, Cause::LocalFirewall);
            assert!(
                verdict.summary.contains(&format!("({errno} with no ICMP error")),
                "{}",
                verdict.summary
            );
            let other = if errno == "EACCES" { "EPERM" } else { "EACCES" };
            assert!(!verdict.summary.contains(other), "{}", verdict.summary);
            assert!(verdict.suggestions.iter().any(|s| s.contains("iptables -S OUTPUT")));
        }
    }

    #[test]
    fn an_ipv6_host_and_port_are_written_in_brackets() {
        let verdict = conclude_on(
            "[fd00::2]:8080",
            vec![attempt("fd00::2", ConnectState::Open), attempt("fd00::3", ConnectState::Refused)],
            vec![],
        );
        assert!(
            verdict.summary.starts_with("[fd00::2]:8080 works on fd00::2 but not on fd00::3"),
            "{}",
            verdict.summary
        );
        let round = RoundResult {
            resolution: Some(dns(DnsStatus::Ok, &["fe80::1"])),
            denied: vec![denied("fe80::1", 80)],
            ..RoundResult::default()
        };
        let verdict = conclude(&target("[fe80::1]:80"), &round, 3000);
        assert!(verdict.summary.contains("denies [fe80::1]:80:"), "{}", verdict.summary);
    }

    #[test]
    fn an_ipv6_loopback_listener_is_named_in_brackets() {
        let listeners = Finding::LocalListeners(LocalListeners {
            owners_hidden: None,
            listen_overflows: None,
            port: 5432,
            listeners: vec![Listener {
                address: "[::1]:5432".parse().unwrap(),
                pid: Some(4321),
                process: Some("postgres".into()),
                command: None,
                queue: None,
                owner_state: None,
            }],
        });
        let verdict = conclude_on(
            "[fd00::2]:5432",
            vec![attempt("fd00::2", ConnectState::Refused)],
            vec![listeners],
        );
        assert_eq!(verdict.cause, Cause::LoopbackOnly);
        assert!(verdict.summary.contains("listens on [::1]:5432 only"), "{}", verdict.summary);
        assert!(verdict.suggestions.iter().any(|s| s == "pid 4321 (postgres) owns [::1]:5432."));
        assert!(
            verdict.suggestions.iter().any(|s| s.starts_with("Make the service listen on :: ")),
            "{:?}",
            verdict.suggestions
        );
    }

    #[test]
    fn a_timeout_is_filtered_when_the_host_is_up_and_no_response_otherwise() {
        let silent = || attempt("10.0.0.5", ConnectState::Timeout);
        let filtered =
            conclude_on("10.0.0.5:5432", vec![silent()], vec![liveness("10.0.0.5", true)]);
        assert_eq!(filtered.cause, Cause::Filtered);
        assert!(filtered.evidence.iter().any(|e| e.result.contains("the host is up")));
        let silent_host =
            conclude_on("10.0.0.5:5432", vec![silent()], vec![liveness("10.0.0.5", false)]);
        assert_eq!(silent_host.cause, Cause::NoResponse);
    }

    #[test]
    fn a_timeout_with_failed_local_retransmissions_is_the_local_firewall() {
        let drops = Finding::LocalDrops(whyrefused_shared::LocalDrops {
            address: "10.0.0.5:5432".parse().unwrap(),
            failed_retransmissions: 2,
        });
        let silent = attempt("10.0.0.5", ConnectState::Timeout);
        let verdict =
            conclude_on("10.0.0.5:5432", vec![silent], vec![drops, liveness("10.0.0.5", true)]);
        assert_eq!(verdict.cause, Cause::LocalFirewall);
        assert!(
            verdict
                .evidence
                .iter()
                .any(|e| e.probe == "local drops" && e.result.starts_with("2 TCP"))
        );
    }

    #[test]
    fn host_unreachable_says_who_reported_it() {
        let local =
            with_icmp(attempt("10.0.0.9", ConnectState::HostUnreachable), 1, "10.0.0.1", true);
        let verdict = conclude_on("10.0.0.9:22", vec![local], vec![]);
        assert_eq!(verdict.cause, Cause::HostUnreachable);
        assert!(verdict.summary.contains("no ARP or neighbour reply"), "{}", verdict.summary);
        let router =
            with_icmp(attempt("10.9.0.9", ConnectState::HostUnreachable), 1, "10.0.0.254", false);
        assert!(
            conclude_on("10.9.0.9:22", vec![router], vec![]).summary.contains("router 10.0.0.254")
        );
    }

    #[test]
    fn a_listener_on_loopback_only_explains_the_refusal() {
        let listeners = Finding::LocalListeners(LocalListeners {
            owners_hidden: None,
            listen_overflows: None,
            port: 5432,
            listeners: vec![Listener {
                address: "127.0.0.1:5432".parse().unwrap(),
                pid: Some(4321),
                process: Some("postgres".into()),
                command: None,
                queue: None,
                owner_state: None,
            }],
        });
        let verdict = conclude_on(
            "10.0.0.5:5432",
            vec![attempt("10.0.0.5", ConnectState::Refused)],
            vec![listeners],
        );
        assert_eq!(verdict.cause, Cause::LoopbackOnly);
        assert!(verdict.summary.contains("listens on 127.0.0.1:5432 only"), "{}", verdict.summary);
        assert!(verdict.suggestions.iter().any(|s| s.contains("listen_addresses")));
        assert!(verdict.suggestions.iter().any(|s| s.contains("pid 4321 (postgres)")));
    }

    #[test]
    fn a_server_that_closes_at_once_is_server_closed() {
        let after = Finding::AfterConnect(Box::new(AfterConnect {
            address: "10.0.0.5:5432".parse().unwrap(),
            early_close: Some(EarlyClose::Closed),
            banner: None,
            tls: None,
            http: None,
            phases: whyrefused_shared::Phases::default(),
        }));
        let verdict = conclude_on(
            "10.0.0.5:5432",
            vec![attempt("10.0.0.5", ConnectState::Open)],
            vec![after],
        );
        assert_eq!(verdict.cause, Cause::ServerClosed);
    }

    #[test]
    fn some_addresses_working_is_partial_naming_the_failing_one() {
        let verdict = conclude_on(
            "db.internal:5432",
            vec![
                attempt("10.0.0.1", ConnectState::Open),
                attempt("2001:db8::1", ConnectState::Timeout),
            ],
            vec![liveness("2001:db8::1", false)],
        );
        assert_eq!(verdict.cause, Cause::Partial);
        assert!(
            verdict.summary.contains("works on 10.0.0.1 but not on 2001:db8::1"),
            "{}",
            verdict.summary
        );
    }

    #[test]
    fn every_address_open_is_reachable() {
        let verdict = conclude_on(
            "db.internal:5432",
            vec![
                attempt("10.0.0.1", ConnectState::Open),
                attempt("2001:db8::1", ConnectState::Open),
            ],
            vec![],
        );
        assert_eq!(verdict.cause, Cause::Reachable);
        assert!(verdict.summary.contains("all 2 addresses"));
    }

    #[test]
    fn the_most_telling_failure_wins() {
        let verdict = conclude_on(
            "db.internal:5432",
            vec![
                attempt("2001:db8::1", ConnectState::Timeout),
                attempt("10.0.0.1", ConnectState::Refused),
            ],
            vec![],
        );
        assert_eq!(verdict.cause, Cause::PortClosed);
        assert!(verdict.summary.contains("failed differently"), "{}", verdict.summary);
    }

    fn round(number: u32, cause: Cause) -> Round {
        let at = Timestamp(format!("t{number}"));
        Round { round: number, at, cause, http_status: None, elapsed_us: 100, tries: None }
    }

    fn plain(cause: Cause) -> Verdict {
        verdict(cause, format!("{} happened.", cause.as_str()), vec![], vec![])
    }

    #[test]
    fn the_same_cause_every_round_is_persistent() {
        let rounds = [round(1, Cause::PortClosed), round(2, Cause::PortClosed)];
        let verdict = across_rounds(
            &target("db:5432"),
            &rounds,
            vec![plain(Cause::PortClosed), plain(Cause::PortClosed)],
        );
        assert_eq!(
            (verdict.cause, verdict.pattern),
            (Cause::PortClosed, Some(Pattern::Persistent))
        );
        assert!(verdict.summary.contains("all 2 rounds"));
        assert_eq!(verdict.evidence.iter().filter(|e| e.probe.starts_with("round ")).count(), 2);
    }

    #[test]
    fn rounds_dropped_by_a_named_rule_are_not_loss() {
        let tries = Some(whyrefused_shared::Tries { sent: 6, answered: 3, open: 3 });
        let rounds = [
            Round { tries, ..round(1, Cause::Filtered) },
            Round { tries, ..round(2, Cause::Reachable) },
        ];
        let mut dropped = plain(Cause::Filtered);
        dropped.evidence.push(evidence(host::RULE_EVIDENCE, "inet filter input rule 2", None));
        let verdict =
            across_rounds(&target("db:5432"), &rounds, vec![dropped, plain(Cause::Reachable)]);
        assert_eq!(verdict.cause, Cause::Filtered, "{verdict:?}");
        let lossy = across_rounds(
            &target("db:5432"),
            &rounds,
            vec![plain(Cause::Filtered), plain(Cause::Reachable)],
        );
        assert_eq!(lossy.cause, Cause::PacketLoss, "without the rule, loss: {lossy:?}");
    }

    #[test]
    fn a_failure_that_comes_and_goes_is_intermittent_and_named() {
        let rounds =
            [round(1, Cause::Reachable), round(2, Cause::Filtered), round(3, Cause::Reachable)];
        let verdicts =
            vec![plain(Cause::Reachable), plain(Cause::Filtered), plain(Cause::Reachable)];
        let verdict = across_rounds(&target("db:5432"), &rounds, verdicts);
        assert_eq!(
            (verdict.cause, verdict.pattern),
            (Cause::Filtered, Some(Pattern::Intermittent))
        );
        assert!(
            verdict.summary.starts_with("Intermittent: 1 of 3 rounds failed, mostly as filtered."),
            "{}",
            verdict.summary
        );
    }

    #[test]
    fn other_errors_name_the_errno() {
        let verdict =
            conclude_on("10.0.0.5:5432", vec![attempt("10.0.0.5", ConnectState::Error)], vec![]);
        assert_eq!(verdict.cause, Cause::ConnectError);
        assert!(verdict.summary.contains("EADDRNOTAVAIL"));
    }
}
