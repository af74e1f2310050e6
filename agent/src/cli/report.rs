//! The readable report `whyrefused check` prints: verdict first, then the evidence.

use std::fmt::Write;

use anstyle::{AnsiColor, Style};
use whyrefused_shared::{
    Attempt, CheckReport, DnsStatus, Finding, Phases, ResolveMethod, Severity,
};

/// The styles of the report; all plain when colour is off.
#[derive(Debug, Clone, Copy, Default)]
pub struct Colors {
    pub(super) good: Style,
    pub(super) bad: Style,
    pub(super) warn: Style,
    pub(super) dim: Style,
    pub(super) bold: Style,
}

impl Colors {
    /// Colour when writing to a terminal and `NO_COLOR` is not set.
    pub fn for_stdout(is_terminal: bool) -> Colors {
        if !is_terminal || std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
            return Colors::default();
        }
        Colors {
            good: AnsiColor::Green.on_default().bold(),
            bad: AnsiColor::Red.on_default().bold(),
            warn: AnsiColor::Yellow.on_default().bold(),
            dim: Style::new().dimmed(),
            bold: Style::new().bold(),
        }
    }

    /// `text` in bold (plain when colour is off).
    pub(super) fn paint_bold(&self, text: &str) -> String {
        paint(self.bold, text)
    }

    /// The style of a severity: the one scale the page's colours follow too.
    pub(super) fn for_severity(&self, severity: Severity) -> Style {
        match severity {
            Severity::Good => self.good,
            Severity::Neutral => self.bold,
            Severity::Warning => self.warn,
            Severity::Bad => self.bad,
        }
    }
}

/// Text another party wrote (a stored target, an agent's answer) with control characters
/// escaped, so it cannot move the terminal's cursor or change its colours.
pub fn escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| match c.is_control() {
            true => c.escape_default().collect::<Vec<_>>(),
            false => vec![c],
        })
        .collect()
}

fn paint(style: Style, text: &str) -> String {
    format!("{style}{text}{style:#}")
}

/// Renders a finished report.
pub fn render(report: &CheckReport, colors: Colors) -> String {
    let mut out = String::new();
    if let Some(verdict) = &report.verdict {
        let mark = if verdict.cause.is_reachable() { "✓" } else { "✗" };
        let style = colors.for_severity(verdict.cause.severity());
        let _ = writeln!(
            out,
            "{} {}",
            paint(style, &format!("{mark} {}", verdict.cause.as_str())),
            verdict.summary
        );
        for suggestion in &verdict.suggestions {
            let _ = writeln!(out, "  → {suggestion}");
        }
        if !verdict.evidence.is_empty() {
            let _ = writeln!(out, "\n{}", paint(colors.bold, "evidence"));
        }
        for item in &verdict.evidence {
            let took = item
                .elapsed_us
                .map_or(String::new(), |us| format!("  {:.3} ms", us as f64 / 1000.0));
            let _ =
                writeln!(out, "  {:<28} {}{}", item.probe, item.result, paint(colors.dim, &took));
        }
        out.push('\n');
    }
    if let Some(target) = &report.target {
        let source = format!("{:?}", target.port_source).to_lowercase();
        let _ = writeln!(
            out,
            "{} {} port {} {}",
            paint(colors.bold, "target "),
            target.display_host,
            target.port,
            paint(colors.dim, &format!("({source})"))
        );
    }
    if let Some(proxy) = proxy_line(report) {
        let _ = writeln!(out, "{} {}", paint(colors.bold, "proxy  "), proxy);
    }
    if let Some(dns) = &report.dns {
        let _ = writeln!(out, "{} {}", paint(colors.bold, "dns    "), dns_line(dns));
    }
    if let Some(phases) = first_phases(report) {
        let _ = writeln!(out, "{} {}", paint(colors.bold, "phases "), phases_line(&phases));
    }
    if !report.attempts.is_empty() {
        out.push('\n');
        let _ = writeln!(
            out,
            "{}",
            paint(
                colors.bold,
                &format!("{:<40} {:<6} {:<20} {:>12}", "address", "family", "state", "connect")
            )
        );
        for attempt in &report.attempts {
            out.push_str(&attempt_line(attempt, colors));
        }
    }
    if let Some(path) = &report.path {
        let _ = writeln!(
            out,
            "\n{}",
            paint(colors.bold, &format!("path to {}", super::trace::endpoint(path)))
        );
        out.push_str(&super::trace::table(path, colors));
    }
    if let Some(elapsed) = report.elapsed_us {
        let _ = writeln!(
            out,
            "\n{}",
            paint(colors.dim, &format!("checked in {:.3} ms", elapsed as f64 / 1000.0))
        );
    }
    out
}

/// Where the check went through the proxy variables: when through a proxy, the addresses
/// listed below are the proxy's, as they are the program's connects.
fn proxy_line(report: &CheckReport) -> Option<String> {
    let proxy = report.findings.iter().find_map(|finding| match finding {
        Finding::Proxy(proxy) => Some(proxy),
        _ => None,
    })?;
    let below = match &proxy.proxy {
        Some(_) => ": the lookup and connects below are the proxy's",
        None => "",
    };
    Some(format!("checked {}{below}", proxy.summary()))
}

/// The phase timings of the first connection that opened.
fn first_phases(report: &CheckReport) -> Option<Phases> {
    report.findings.iter().find_map(|finding| match finding {
        Finding::AfterConnect(after) => Some(after.phases),
        _ => None,
    })
}

fn phases_line(phases: &Phases) -> String {
    let ms = |us: u64| format!("{:.3} ms", us as f64 / 1000.0);
    let mut parts =
        vec![format!("dns {}", ms(phases.dns_us)), format!("connect {}", ms(phases.connect_us))];
    if let Some(tls) = phases.tls_us {
        parts.push(format!("tls {}", ms(tls)));
    }
    if let Some(first_byte) = phases.first_byte_us {
        parts.push(format!("first byte {}", ms(first_byte)));
    }
    parts.join(" · ")
}

fn dns_line(dns: &whyrefused_shared::Resolution) -> String {
    let who = match dns.method {
        ResolveMethod::Resolver => "the resolvers asked",
        _ => "system resolver",
    };
    let took = format!("{who}, {:.3} ms", dns.elapsed_us as f64 / 1000.0);
    match (dns.method, dns.status) {
        (ResolveMethod::Literal, _) => "an IP address: nothing to look up".to_string(),
        (_, DnsStatus::Ok) => {
            let list: Vec<String> = dns.addresses.iter().map(|a| a.to_string()).collect();
            format!("{} → {} ({took})", dns.host, list.join(", "))
        }
        (_, status) => format!(
            "{} → {:?}: {} ({took})",
            dns.host,
            status,
            dns.detail.as_deref().unwrap_or("no details")
        ),
    }
}

fn attempt_line(attempt: &Attempt, colors: Colors) -> String {
    let address = attempt.socket_addr().to_string();
    let state = attempt.state.as_str();
    let mut errno = attempt.errno.as_ref().map_or(String::new(), |e| format!("  {}", e.name));
    if let Some(icmp) = &attempt.icmp {
        errno.push_str(&format!("  ICMP {} from {}", icmp.meaning, icmp.from));
    }
    format!(
        "{address:<40} {:<6} {} {:>12}{}\n",
        attempt.family.label(),
        paint(colors.for_severity(attempt.state.severity()), &format!("{state:<20}")),
        format!("{:.3} ms", attempt.elapsed_ms),
        paint(colors.dim, &errno),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use whyrefused_shared::{Cause, ConnectState, Errno, Family, Resolution, Timestamp, Verdict};

    fn report() -> CheckReport {
        CheckReport {
            dns: Some(Resolution {
                host: "localhost".into(),
                method: ResolveMethod::System,
                status: DnsStatus::Ok,
                addresses: vec!["127.0.0.1".parse().unwrap()],
                detail: None,
                elapsed_us: 412,
            }),
            attempts: vec![Attempt {
                address: "127.0.0.1".parse().unwrap(),
                port: 5432,
                family: Family::Ipv4,
                state: ConnectState::Refused,
                errno: Some(Errno { code: 111, name: "ECONNREFUSED".into() }),
                icmp: None,
                elapsed_us: 61,
                elapsed_ms: 0.061,
                started_at: Timestamp(String::new()),
            }],
            verdict: Some(Verdict {
                cause: Cause::PortClosed,
                summary: "Nothing listens on port 5432.".into(),
                suggestions: vec!["Start the service.".into()],
                evidence: vec![],
                pattern: None,
            }),
            elapsed_us: Some(700),
            ..CheckReport::default()
        }
    }

    #[test]
    fn the_plain_report_leads_with_the_verdict_and_lists_each_address() {
        let text = render(&report(), Colors::default());
        assert!(text.starts_with("✗ port_closed Nothing listens on port 5432."), "{text}");
        assert!(text.contains("  → Start the service."));
        assert!(text.contains("localhost → 127.0.0.1 (system resolver, 0.412 ms)"));
        let row = text.lines().find(|l| l.starts_with("127.0.0.1:5432")).expect(&text);
        assert!(
            row.contains("IPv4")
                && row.contains("refused")
                && row.contains("0.061 ms")
                && row.contains("ECONNREFUSED")
        );
        assert!(!text.contains('\u{1b}'), "no escape codes without colour");
    }

    #[test]
    fn colour_wraps_the_verdict_when_asked_for() {
        let colors = Colors { bad: AnsiColor::Red.on_default(), ..Colors::default() };
        assert!(render(&report(), colors).starts_with("\u{1b}[31m✗ port_closed"));
    }

    #[test]
    fn the_phases_of_an_opened_connection_are_listed() {
        let phases =
            Phases { dns_us: 400, connect_us: 1_500, tls_us: Some(12_000), first_byte_us: None };
        assert_eq!(phases_line(&phases), "dns 0.400 ms · connect 1.500 ms · tls 12.000 ms");
        let mut opened = report();
        opened.findings.push(Finding::AfterConnect(Box::new(whyrefused_shared::AfterConnect {
            address: "127.0.0.1:5432".parse().unwrap(),
            early_close: None,
            banner: None,
            tls: None,
            http: None,
            phases,
        })));
        assert!(render(&opened, Colors::default()).contains("phases  dns 0.400 ms"));
    }
}
