//! A finished probe as Prometheus series, shaped like blackbox_exporter's (`probe_success`,
//! `probe_duration_seconds`, `probe_ip_protocol`, `probe_ip_addr_hash`, `probe_tls_*`,
//! `probe_http_*`) plus what only whyrefused knows: the cause as a label, each address's state,
//! and the phases' durations.
//!
//! Everything here is pure: a [`CheckReport`] and its module in, text out.

use std::net::IpAddr;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, UNIX_EPOCH};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use whyrefused_shared::{
    AfterConnect, Attempt, CheckReport, ConnectState, Family as IpFamily, Finding, Path,
};

use super::modules::{IpProtocol, Module, ProbeKind};

/// The content type of OpenMetrics text, which Prometheus asks for first.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The content type of Prometheus' own text format, for every other client (curl, promtool).
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The exposition in the format the client's `Accept` asks for: OpenMetrics as encoded, or
/// Prometheus' text format (a counter's family named with its `_total`, no `# EOF`).
pub fn negotiate(accept: Option<&str>, openmetrics: String) -> (&'static str, String) {
    if accept.is_some_and(|accept| accept.contains("application/openmetrics-text")) {
        return (OPENMETRICS, openmetrics);
    }
    (PROMETHEUS_TEXT, prometheus_text(&openmetrics))
}

/// OpenMetrics text as Prometheus' text format (version 0.0.4).
fn prometheus_text(openmetrics: &str) -> String {
    let counters: Vec<&str> = openmetrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut text = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        text += &rename_counter(line, &counters);
        text.push('\n');
    }
    text
}

/// A `# HELP` or `# TYPE` line of a counter family, renamed to its samples' `_total` name.
fn rename_counter(line: &str, counters: &[&str]) -> String {
    for prefix in ["# HELP ", "# TYPE "] {
        let Some(rest) = line.strip_prefix(prefix) else { continue };
        let name = rest.split(' ').next().unwrap_or_default();
        if counters.contains(&name) {
            return format!("{prefix}{name}_total{}", &rest[name.len()..]);
        }
    }
    line.to_string()
}

/// One finished probe, as the exposition reads it.
pub struct Probed<'a> {
    /// The check's events, folded.
    pub report: &'a CheckReport,
    /// The module it ran.
    pub module: &'a Module,
    /// How long the whole probe took.
    pub elapsed: Duration,
    /// The vantage point it ran at, when the scrape named one (`from=`).
    pub vantage: Option<&'a str>,
}

type FloatGauge = Gauge<f64, AtomicU64>;
type Labels = Vec<(String, String)>;

impl Probed<'_> {
    /// blackbox_exporter's meaning of success for the module: every address connected (so a
    /// `partial` target fails), then TLS completed (tls), or the status is valid (http: 2xx
    /// unless `valid_status_codes` says otherwise).
    pub fn success(&self) -> bool {
        let attempts = &self.report.attempts;
        let all_open =
            !attempts.is_empty() && attempts.iter().all(|a| a.state == ConnectState::Open);
        all_open && self.after_connects().all(|after| self.after_connect_succeeded(after))
    }

    fn after_connect_succeeded(&self, after: &AfterConnect) -> bool {
        match self.module.kind {
            ProbeKind::Tcp => true,
            ProbeKind::Tls => after.tls.as_ref().is_some_and(|tls| tls.ok),
            ProbeKind::Http => {
                let status = after.http.as_ref().and_then(|http| http.status);
                status.is_some_and(|status| self.status_is_valid(status))
            }
        }
    }

    fn status_is_valid(&self, status: u16) -> bool {
        match self.module.valid_status_codes.as_slice() {
            [] => (200..300).contains(&status),
            valid => valid.contains(&status),
        }
    }

    fn after_connects(&self) -> impl Iterator<Item = &AfterConnect> {
        self.report.findings.iter().filter_map(|finding| match finding {
            Finding::AfterConnect(after) => Some(after.as_ref()),
            _ => None,
        })
    }

    /// The address blackbox_exporter would have probed: the first of the preferred family, or
    /// (with fallback) the first of all.
    pub fn chosen(&self) -> Option<&Attempt> {
        let family = match self.module.preferred_ip {
            IpProtocol::V4 => IpFamily::Ipv4,
            IpProtocol::V6 => IpFamily::Ipv6,
        };
        let attempts = &self.report.attempts;
        let preferred = attempts.iter().find(|attempt| attempt.family == family);
        preferred.or_else(|| self.module.ip_fallback.then(|| attempts.first()).flatten())
    }

    fn chosen_after_connect(&self) -> Option<&AfterConnect> {
        let chosen = self.chosen()?.socket_addr();
        self.after_connects().find(|after| after.address == chosen)
    }

    /// The exposition: every series of this probe, in OpenMetrics text.
    pub fn encode(&self) -> String {
        let mut registry = match self.vantage {
            Some(vantage) => {
                Registry::with_labels([("vantage".into(), vantage.to_string().into())].into_iter())
            }
            None => Registry::default(),
        };
        self.register_blackbox(&mut registry);
        self.register_tls(&mut registry);
        self.register_http(&mut registry);
        self.register_diagnosis(&mut registry);
        let mut text = String::new();
        encode(&mut text, &registry).expect("writing to a String cannot fail");
        text
    }

    fn register_blackbox(&self, registry: &mut Registry) {
        gauge(
            registry,
            "probe_success",
            "Whether the probe succeeded",
            f64::from(u8::from(self.success())),
        );
        gauge(
            registry,
            "probe_duration_seconds",
            "How long the probe took",
            self.elapsed.as_secs_f64(),
        );
        let dns = self.report.dns.as_ref().map_or(0, |dns| dns.elapsed_us);
        gauge(
            registry,
            "probe_dns_lookup_time_seconds",
            "How long name resolution took",
            micros(dns),
        );
        let chosen = self.chosen();
        let protocol = chosen.map_or(0.0, |attempt| match attempt.family {
            IpFamily::Ipv4 => 4.0,
            IpFamily::Ipv6 => 6.0,
        });
        gauge(
            registry,
            "probe_ip_protocol",
            "The IP protocol of the probed address (4 or 6)",
            protocol,
        );
        let hash = chosen.map_or(0.0, |attempt| f64::from(ip_hash(attempt.address)));
        gauge(registry, "probe_ip_addr_hash", "FNV-1a hash of the probed address", hash);
    }

    fn register_tls(&self, registry: &mut Registry) {
        let Some(tls) = self.chosen_after_connect().and_then(|after| after.tls.as_ref()) else {
            return;
        };
        if let Some(version) = &tls.version {
            let versions = Family::<Labels, FloatGauge>::default();
            versions.get_or_create(&vec![("version".into(), tls_version_name(version))]).set(1.0);
            registry.register(
                "probe_tls_version_info",
                "The TLS version the server chose",
                versions,
            );
        }
        let expiry = tls.certificate.as_ref().and_then(|cert| unix_seconds(&cert.not_after));
        if let Some(expiry) = expiry {
            let help =
                "When the server's certificate expires (Unix time; whyrefused reads the leaf)";
            gauge(registry, "probe_ssl_earliest_cert_expiry", help, expiry);
        }
    }

    fn register_http(&self, registry: &mut Registry) {
        if self.module.kind != ProbeKind::Http {
            return;
        }
        let after = self.chosen_after_connect();
        let http = after.and_then(|after| after.http.as_ref());
        let status = http.and_then(|http| http.status).map_or(0.0, f64::from);
        gauge(registry, "probe_http_status_code", "The HTTP status of the last response", status);
        let ssl = f64::from(u8::from(after.is_some_and(|after| after.tls.is_some())));
        gauge(registry, "probe_http_ssl", "Whether the last request went over TLS", ssl);
        let redirects = http.map_or(0, |http| http.redirects.len());
        gauge(
            registry,
            "probe_http_redirects",
            "How many redirects were followed",
            redirects as f64,
        );
    }

    fn register_diagnosis(&self, registry: &mut Registry) {
        if let Some(verdict) = &self.report.verdict {
            let causes = Family::<Labels, FloatGauge>::default();
            causes.get_or_create(&vec![("cause".into(), verdict.cause.as_str().into())]).set(1.0);
            registry.register(
                "whyrefused_probe_cause",
                "Why the target is (not) reachable: the cause is the label",
                causes,
            );
        }
        let states = Family::<Labels, FloatGauge>::default();
        for attempt in &self.report.attempts {
            states.get_or_create(&address_labels(attempt)).set(1.0);
        }
        registry.register(
            "whyrefused_probe_address_state",
            "How the connect to each resolved address ended",
            states,
        );
        let phases = Family::<Labels, FloatGauge>::default();
        for (phase, us) in self.phases() {
            phases.get_or_create(&vec![("phase".into(), phase.into())]).set(micros(us));
        }
        registry.register(
            "whyrefused_probe_phase_seconds",
            "How long each phase of the probed address took",
            phases,
        );
        if let Some(path) = &self.report.path {
            self.register_path(registry, path);
        }
    }

    /// The path trace's figures, when a trace ran: how many hops it saw, whether the target
    /// answered, and the last hop that answered (its TTL, its address as a label).
    fn register_path(&self, registry: &mut Registry, path: &Path) {
        let address = vec![("address".to_string(), path.address.to_string())];
        let hops = Family::<Labels, FloatGauge>::default();
        hops.get_or_create(&address).set(path.hops.len() as f64);
        registry.register("whyrefused_probe_path_hops", "Hops the path trace saw", hops);
        let reached = Family::<Labels, FloatGauge>::default();
        reached.get_or_create(&address).set(if path.reached { 1.0 } else { 0.0 });
        registry.register(
            "whyrefused_probe_path_reached",
            "Whether the path trace's SYNs reached the target",
            reached,
        );
        if let Some(last) = &path.last_answered {
            let labels = [address, vec![("hop".to_string(), last.address.to_string())]].concat();
            let last_hop = Family::<Labels, FloatGauge>::default();
            last_hop.get_or_create(&labels).set(f64::from(last.ttl));
            registry.register(
                "whyrefused_probe_path_last_answered_hop",
                "The TTL of the farthest hop that answered the path trace (its address: hop)",
                last_hop,
            );
        }
    }

    /// The phases of the chosen address: resolve and connect always, TLS and first byte when
    /// they happened.
    fn phases(&self) -> Vec<(&'static str, u64)> {
        let mut phases =
            vec![("resolve", self.report.dns.as_ref().map_or(0, |dns| dns.elapsed_us))];
        if let Some(attempt) = self.chosen() {
            phases.push(("connect", attempt.elapsed_us));
        }
        if let Some(after) = self.chosen_after_connect() {
            phases.extend(after.phases.tls_us.map(|us| ("tls", us)));
            phases.extend(after.phases.first_byte_us.map(|us| ("first_byte", us)));
        }
        phases
    }
}

fn gauge(registry: &mut Registry, name: &str, help: &str, value: f64) {
    let gauge = FloatGauge::default();
    gauge.set(value);
    registry.register(name, help, gauge);
}

fn address_labels(attempt: &Attempt) -> Labels {
    let family = match attempt.family {
        IpFamily::Ipv4 => "ipv4",
        IpFamily::Ipv6 => "ipv6",
    };
    vec![
        ("address".into(), attempt.address.to_string()),
        ("family".into(), family.into()),
        ("state".into(), attempt.state.as_str().into()),
    ]
}

fn micros(us: u64) -> f64 {
    Duration::from_micros(us).as_secs_f64()
}

/// blackbox_exporter's `probe_ip_addr_hash`: FNV-1a (32 bits) of the address's bytes, 4 for
/// IPv4 and 16 for IPv6, so the two exporters give the same number for the same address.
pub fn ip_hash(address: IpAddr) -> u32 {
    let bytes: Vec<u8> = match address {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    bytes
        .iter()
        .fold(0x811c_9dc5_u32, |hash, byte| (hash ^ u32::from(*byte)).wrapping_mul(0x0100_0193))
}

/// `TLSv1.3` as blackbox_exporter names it: `TLS 1.3`.
fn tls_version_name(version: &str) -> String {
    version
        .strip_prefix("TLSv")
        .map_or_else(|| version.to_string(), |number| format!("TLS {number}"))
}

/// An RFC 3339 time as Unix seconds.
fn unix_seconds(rfc3339: &str) -> Option<f64> {
    let at = humantime::parse_rfc3339(rfc3339).ok()?;
    Some(at.duration_since(UNIX_EPOCH).ok()?.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use whyrefused_shared::{Cause, Timestamp, Verdict};

    fn attempt(address: &str, state: ConnectState) -> Attempt {
        let address: IpAddr = address.parse().unwrap();
        Attempt {
            address,
            port: 80,
            family: IpFamily::of(&address),
            state,
            errno: None,
            icmp: None,
            elapsed_us: 1_500,
            elapsed_ms: 1.5,
            started_at: Timestamp(String::new()),
        }
    }

    fn report(attempts: Vec<Attempt>, cause: Cause) -> CheckReport {
        let verdict = Verdict {
            cause,
            summary: String::new(),
            suggestions: vec![],
            evidence: vec![],
            pattern: None,
        };
        CheckReport { attempts, verdict: Some(verdict), ..CheckReport::default() }
    }

    fn probed<'a>(report: &'a CheckReport, module: &'a Module) -> Probed<'a> {
        Probed { report, module, elapsed: Duration::from_millis(2), vantage: None }
    }

    #[test]
    fn the_address_hash_is_blackbox_exporters_fnv1a_of_the_address_bytes() {
        // The values blackbox_exporter reports for these addresses (also compared live in
        // tests/tests/prometheus.rs).
        assert_eq!(ip_hash("127.0.0.1".parse().unwrap()), 3_668_918_509);
        assert_eq!(ip_hash("::1".parse().unwrap()), 1_751_717_746);
    }

    #[test]
    fn a_partial_target_fails_and_every_address_has_its_state() {
        let module = Module::of(ProbeKind::Tcp);
        let partial = report(
            vec![attempt("::1", ConnectState::Refused), attempt("127.0.0.1", ConnectState::Open)],
            Cause::Partial,
        );
        let probed = probed(&partial, &module);
        assert!(!probed.success());
        let text = probed.encode();
        assert!(text.contains("probe_success 0.0"), "{text}");
        assert!(text.contains("whyrefused_probe_cause{cause=\"partial\"} 1.0"), "{text}");
        assert!(text.contains("whyrefused_probe_address_state{address=\"::1\",family=\"ipv6\",state=\"refused\"} 1.0"), "{text}");
        assert!(
            text.contains("probe_ip_protocol 6.0"),
            "ip6 is preferred, as in blackbox_exporter: {text}"
        );
    }

    #[test]
    fn an_open_target_succeeds_and_the_vantage_labels_every_series() {
        let module = Module { preferred_ip: IpProtocol::V4, ..Module::of(ProbeKind::Tcp) };
        let open = report(vec![attempt("127.0.0.1", ConnectState::Open)], Cause::Reachable);
        let probed = Probed { vantage: Some("app1"), ..probed(&open, &module) };
        let text = probed.encode();
        assert!(text.contains("probe_success{vantage=\"app1\"} 1.0"), "{text}");
        assert!(text.contains("probe_ip_protocol{vantage=\"app1\"} 4.0"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn a_traced_path_gives_its_hop_count_and_last_answering_hop() {
        use whyrefused_shared::{Hop, HopReply, LastAnswered};
        let module = Module::of(ProbeKind::Tcp);
        let mut filtered =
            report(vec![attempt("10.0.3.2", ConnectState::Timeout)], Cause::Filtered);
        let hop = |ttl: u8, address: Option<&str>, reply: HopReply| Hop {
            ttl,
            address: address.map(|a| a.parse().unwrap()),
            name: None,
            reply,
            icmp: None,
            rtt_ms: None,
            tries: 3,
            answered: u8::from(address.is_some()) * 3,
        };
        filtered.path = Some(Path {
            address: "10.0.3.2".parse().unwrap(),
            port: 80,
            hops: vec![
                hop(1, Some("10.0.1.254"), HopReply::TimeExceeded),
                hop(2, None, HopReply::Silent),
            ],
            reached: false,
            last_answered: Some(LastAnswered { ttl: 1, address: "10.0.1.254".parse().unwrap() }),
            max_ttl: 30,
            target_ttl: None,
            complete: true,
            elapsed_us: 1,
        });
        let text = probed(&filtered, &module).encode();
        assert!(text.contains("whyrefused_probe_path_hops{address=\"10.0.3.2\"} 2.0"), "{text}");
        assert!(text.contains("whyrefused_probe_path_reached{address=\"10.0.3.2\"} 0.0"), "{text}");
        assert!(
            text.contains(
                "whyrefused_probe_path_last_answered_hop{address=\"10.0.3.2\",hop=\"10.0.1.254\"} 1.0"
            ),
            "{text}"
        );
        let open = report(vec![attempt("127.0.0.1", ConnectState::Open)], Cause::Reachable);
        assert!(!probed(&open, &module).encode().contains("path"), "no trace, no path series");
    }

    #[test]
    fn without_openmetrics_in_accept_counters_are_named_as_prometheus_text_names_them() {
        let openmetrics = "# HELP c Checks.\n# TYPE c counter\nc_total 1\n# EOF\n".to_string();
        let (kind, text) = negotiate(Some("*/*"), openmetrics.clone());
        assert_eq!(kind, PROMETHEUS_TEXT);
        assert_eq!(text, "# HELP c_total Checks.\n# TYPE c_total counter\nc_total 1\n");
        let prometheus = "application/openmetrics-text;version=1.0.0,text/plain;q=0.5";
        assert_eq!(negotiate(Some(prometheus), openmetrics.clone()), (OPENMETRICS, openmetrics));
    }

    #[test]
    fn tls_versions_read_as_blackbox_exporter_writes_them() {
        assert_eq!(tls_version_name("TLSv1.3"), "TLS 1.3");
        assert_eq!(unix_seconds("2030-01-01T00:00:00Z"), Some(1_893_456_000.0));
    }
}
