//! `whyrefused scan`: a progress bar on a terminal, then a summary grouped by state, or one JSON
//! document with every port that is not refused and the counts by state.

use std::fmt::Write;
use std::net::IpAddr;

use anstyle::Style;
use indicatif::{ProgressBar, ProgressStyle};
use whyrefused_shared::{ConnectState, PortGroup, PortResult, ScanReport, ScanStep};

use super::report::Colors;
use crate::scan::ports;

/// A live progress bar on stderr, drawn only when stderr is a terminal.
pub struct Progress(ProgressBar);

impl Progress {
    /// A hidden bar until the scan's size is known.
    pub fn new() -> Progress {
        let bar = ProgressBar::hidden();
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {bar:32.cyan/blue} {human_pos}/{human_len} ports · {per_sec} · {eta} left · {msg}",
            )
            .expect("the template is valid")
            .progress_chars("█▉▊▋▌▍▎▏ "),
        );
        Progress(bar)
    }

    /// Follows one step of the scan.
    pub fn follow(&self, step: &ScanStep, report: &ScanReport) {
        match step {
            ScanStep::Resolved { .. } if report.total > 0 => {
                self.0.set_length(report.total);
                self.0.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            }
            ScanStep::Progress(progress) => {
                self.0.set_position(progress.done);
                self.0.set_message(format!("{} open", report.counts.open));
            }
            ScanStep::Done { .. } => self.0.finish_and_clear(),
            _ => {}
        }
    }
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}

/// The JSON document: the report, with the refused ports listed one by one when `all` is set
/// (otherwise only counted, and kept as runs out of the document).
pub fn json(report: &ScanReport, all: bool) -> ScanReport {
    let mut document = report.clone();
    if all {
        let refused = report.refused.iter().flat_map(|run| {
            (run.first..=run.last).map(move |port| refused_port(run.address, port))
        });
        document.results.extend(refused);
        document
            .results
            .sort_by_key(|r| (report.addresses.iter().position(|a| *a == r.address), r.port));
    }
    document.refused.clear();
    document
}

fn refused_port(address: IpAddr, port: u16) -> PortResult {
    PortResult {
        address,
        port,
        state: ConnectState::Refused,
        errno: None,
        icmp: None,
        elapsed_us: 0,
        tries: 1,
        service: ports::service_name(port).map(str::to_string),
    }
}

/// The readable summary of a finished scan.
pub fn render(report: &ScanReport, colors: Colors, all: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", paint(colors.bold, &title(report)));
    if let Some(problem) = &report.problem {
        let _ = writeln!(out, "{} {problem}", paint(colors.bad, "✗"));
        return out;
    }
    let counts = report.group_counts();
    for group in PortGroup::ALL {
        let count = counts[group.index()];
        if count == 0 && group != PortGroup::Open {
            continue;
        }
        let style = colors.for_severity(group.severity());
        let heading = paint(style, &format!("{:<19}", group.label()));
        let meaning = paint(colors.dim, group.meaning());
        let _ = writeln!(out, "\n{heading} {}  {meaning}", group_digits(count));
        for result in report.in_group(group) {
            out.push_str(&port_line(result, report.addresses.len() > 1));
            let address = std::net::SocketAddr::new(result.address, result.port);
            if let Some(owner) = report.owner_words(address) {
                let _ = writeln!(out, "           {}", paint(colors.dim, &owner));
            }
            if let Some(service) = report.service_behind(address) {
                let _ = writeln!(
                    out,
                    "           {}",
                    paint(colors.dim, &format!("answers: {}", service.describe()))
                );
            }
        }
        if group == PortGroup::Closed && all {
            for run in &report.refused {
                let _ = writeln!(out, "  {}  {}", run.address, span(run.first, run.last));
            }
        }
    }
    if let Some(loss) = &report.loss {
        let _ = writeln!(out, "\n{} {}", paint(colors.bad, "!"), loss.describe());
    }
    out
}

fn title(report: &ScanReport) -> String {
    let addresses: Vec<String> = report.addresses.iter().map(IpAddr::to_string).collect();
    let mut title = format!(
        "scan {} · ports {} ({})",
        report.target,
        report.ports,
        group_digits(u64::from(report.port_count))
    );
    if !addresses.is_empty() && addresses.join(", ") != report.target {
        let _ = write!(title, " · {}", addresses.join(", "));
    }
    if let Some(elapsed) = report.elapsed_us {
        let seconds = elapsed as f64 / 1e6;
        let rate = if seconds > 0.0 { report.counts.total() as f64 / seconds } else { 0.0 };
        let _ = write!(title, " · {seconds:.3} s, {} ports/s", group_digits(rate as u64));
    }
    title
}

fn port_line(result: &PortResult, show_address: bool) -> String {
    let place = match show_address {
        true => format!("{}:{}", bracketed(result.address), result.port),
        false => result.port.to_string(),
    };
    let service = result.service.as_deref().unwrap_or("");
    let mut detail = String::new();
    if let Some(icmp) = &result.icmp {
        let _ = write!(detail, "ICMP {} from {}", icmp.meaning, icmp.from);
    } else if let Some(errno) = &result.errno {
        detail.push_str(&errno.name);
    }
    if result.tries > 1 {
        let _ =
            write!(detail, "{}{} tries", if detail.is_empty() { "" } else { ", " }, result.tries);
    }
    format!(
        "  {place:<8} {service:<16} {:>10}  {detail}\n",
        format!("{:.3} ms", result.elapsed_us as f64 / 1000.0)
    )
    .replace("  \n", "\n")
}

fn bracketed(address: IpAddr) -> String {
    match address {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

fn span(first: u16, last: u16) -> String {
    match first == last {
        true => first.to_string(),
        false => format!("{first}-{last}"),
    }
}

/// 65535 as `65,535`.
fn group_digits(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

fn paint(style: Style, text: &str) -> String {
    format!("{style}{text}{style:#}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use whyrefused_shared::{IcmpError, PortRun, StateCounts};

    fn report() -> ScanReport {
        let address: IpAddr = "127.0.0.1".parse().unwrap();
        let result = |port, state, service: Option<&str>| PortResult {
            address,
            port,
            state,
            errno: None,
            icmp: None,
            elapsed_us: 40,
            tries: 1,
            service: service.map(str::to_string),
        };
        let mut rejected = result(84, ConnectState::Refused, None);
        rejected.icmp = Some(IcmpError {
            icmp_type: 3,
            code: 3,
            meaning: "port unreachable".into(),
            from: address,
            from_local: true,
        });
        let mut filtered = result(82, ConnectState::Timeout, None);
        filtered.tries = 2;
        let mut counts = StateCounts::default();
        counts.add(ConnectState::Open, 1);
        counts.add(ConnectState::Refused, 97);
        counts.add(ConnectState::Timeout, 1);
        ScanReport {
            target: "127.0.0.1".into(),
            ports: "1-99".into(),
            port_count: 99,
            addresses: vec![address],
            results: vec![result(22, ConnectState::Open, Some("ssh")), filtered, rejected],
            refused: vec![
                PortRun { address, first: 1, last: 21 },
                PortRun { address, first: 23, last: 81 },
            ],
            counts,
            elapsed_us: Some(250_000),
            ..ScanReport::default()
        }
    }

    #[test]
    fn the_summary_groups_ports_by_state_with_services_and_icmp() {
        let text = render(&report(), Colors::default(), false);
        assert!(
            text.starts_with("scan 127.0.0.1 · ports 1-99 (99) · 0.250 s, 396 ports/s"),
            "{text}"
        );
        assert!(text.contains("open                1  something listens"), "{text}");
        assert!(text.contains("  22       ssh"), "{text}");
        assert!(text.contains("filtered            1"), "{text}");
        assert!(text.contains("2 tries"), "{text}");
        assert!(text.contains("closed              96  a reset"), "{text}");
        assert!(text.contains("rejected            1"), "{text}");
        assert!(text.contains("ICMP port unreachable from 127.0.0.1"), "{text}");
        assert!(!text.contains("1-21"), "refused runs only with --all");
        assert!(render(&report(), Colors::default(), true).contains("127.0.0.1  23-81"));
    }

    #[test]
    fn json_lists_every_port_only_with_all() {
        let plain = json(&report(), false);
        assert_eq!(plain.results.len(), 3);
        assert!(plain.refused.is_empty());
        let all = json(&report(), true);
        assert_eq!(all.results.len(), 3 + 21 + 59);
        assert_eq!(all.results[0].port, 1);
        assert_eq!(all.results[0].service.as_deref(), Some("tcpmux"));
    }

    #[test]
    fn numbers_are_grouped_by_thousands() {
        assert_eq!(group_digits(65_535), "65,535");
        assert_eq!(group_digits(999), "999");
        assert_eq!(group_digits(1_000_000), "1,000,000");
    }
}
