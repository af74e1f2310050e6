//! `whyrefused trace TARGET`: the path to a target's port on its own, as a live table on a
//! terminal (redrawn as hops answer, like mtr's), plain lines otherwise, or one JSON document.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use serde::Serialize;
use whyrefused_shared::path::{DEFAULT_MAX_HOPS, DEFAULT_TRACE_TIMEOUT_MS, MAX_HOPS};
use whyrefused_shared::{DnsStatus, HopReply, Path};

use super::report::Colors;
use super::{exit, fail};
use crate::check::DNS_DEADLINE;
use crate::policy::TargetPolicy;
use crate::probe::{self, trace as path_trace};
use crate::target::Target;
use crate::verdict::path as reading;

/// `whyrefused trace`'s options.
#[derive(Debug, clap::Args)]
pub struct TraceArgs {
    /// What to trace: host:port, [v6]:port, or scheme://host[:port]; the SYNs go to that port.
    target: String,
    /// The port, for a target given as a bare host.
    #[arg(long, short)]
    port: Option<u16>,
    /// The highest TTL (IPv6 hop limit) tried.
    #[arg(long, default_value_t = DEFAULT_MAX_HOPS, value_parser = clap::value_parser!(u8).range(1..=i64::from(MAX_HOPS)))]
    max_hops: u8,
    /// How long each try waits for its answer, in milliseconds (a silent hop is tried 3 times).
    #[arg(long, default_value_t = DEFAULT_TRACE_TIMEOUT_MS, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    timeout_ms: u32,
    /// Do not look up the hops' reverse DNS names.
    #[arg(long)]
    no_rdns: bool,
    /// Print one JSON document instead of the table.
    #[arg(long)]
    json: bool,
}

/// The JSON document of `trace --json`.
#[derive(Debug, Serialize)]
struct Document<'a> {
    /// The target as given.
    target: &'a str,
    /// Every address the name resolved to (the first is traced).
    addresses: Vec<std::net::IpAddr>,
    /// The trace of the first address.
    path: &'a Path,
    /// Where the packets die, in words.
    summary: String,
}

/// Resolves the target, traces its first address and prints the path.
pub async fn run(args: TraceArgs) -> ExitCode {
    let target = match Target::parse(&args.target, args.port) {
        Ok(target) => target,
        Err(error) => return fail(exit::INVALID_INPUT, &format!("invalid target: {error}")),
    };
    let resolution = probe::resolve(&target.host, DNS_DEADLINE).await;
    let Some(first) = resolution.addresses.first().copied() else {
        let why = match resolution.status {
            DnsStatus::Ok => "no addresses".to_string(),
            status => format!("{status:?}").to_lowercase(),
        };
        return fail(
            exit::UNREACHABLE,
            &format!("{} did not resolve ({why})", target.host.display()),
        );
    };
    let address = std::net::SocketAddr::new(first, target.port);
    let try_wait = Duration::from_millis(u64::from(args.timeout_ms));
    let options = path_trace::TraceOptions::new(args.max_hops, try_wait, !args.no_rdns);
    // The CLI connects for its own user, as any program they run would: no target policy.
    let policy = TargetPolicy::unrestricted();
    let live = !args.json && std::io::stdout().is_terminal();
    let colors = Colors::for_stdout(live);
    let mut drawn = 0;
    let redraw = |path: &Path| {
        if live {
            drawn = draw(path, drawn, colors);
        }
    };
    let path = match path_trace::trace(address, options, &policy, None, redraw).await {
        Ok(path) => path,
        Err(denial) => return fail(exit::INVALID_INPUT, &denial.to_string()),
    };
    let summary = reading::read(&path, None).sentence;
    let output = if args.json {
        let document = Document {
            target: &args.target,
            addresses: resolution.addresses,
            path: &path,
            summary,
        };
        match serde_json::to_string_pretty(&document) {
            Ok(json) => json + "\n",
            Err(error) => return fail(exit::INTERNAL, &format!("cannot encode the path: {error}")),
        }
    } else {
        let mut out = String::new();
        if live {
            out.push_str(&clear(drawn));
        }
        out.push_str(&table(&path, colors));
        let _ = writeln!(out, "\n{summary}");
        out
    };
    if let Err(error) = std::io::stdout().write_all(output.as_bytes()) {
        return fail(exit::INTERNAL, &format!("cannot write the path: {error}"));
    }
    match path.reached {
        true => ExitCode::SUCCESS,
        false => ExitCode::from(exit::UNREACHABLE),
    }
}

/// Redraws the table over the `drawn` lines drawn before; returns how many lines it drew.
fn draw(path: &Path, drawn: usize, colors: Colors) -> usize {
    let text = table(path, colors);
    let mut stdout = std::io::stdout().lock();
    let _ = write!(stdout, "{}{text}", clear(drawn));
    let _ = stdout.flush();
    text.lines().count()
}

/// `10.0.3.2 port 81` (IPv6 addresses bare: no port syntax to confuse).
pub fn endpoint(path: &Path) -> String {
    format!("{} port {}", path.address, path.port)
}

/// Moves the cursor up `lines` and clears to the end of the screen.
fn clear(lines: usize) -> String {
    match lines {
        0 => String::new(),
        n => format!("\x1b[{n}A\x1b[J"),
    }
}

/// The table: hop, address, name, reply, rtt, loss over the tries; the address and name
/// columns as wide as their widest entry.
pub fn table(path: &Path, colors: Colors) -> String {
    let mut out = String::new();
    let addresses: Vec<String> = path
        .hops
        .iter()
        .map(|hop| hop.address.map_or("*".to_string(), |a| a.to_string()))
        .collect();
    let names: Vec<String> =
        path.hops.iter().map(|hop| truncate(hop.name.as_deref().unwrap_or(""), 40)).collect();
    let address_width = addresses.iter().map(String::len).max().unwrap_or(0).max(7);
    let name_width = names.iter().map(|n| n.chars().count()).max().unwrap_or(0).max(4);
    let header = format!(
        "{:>3}  {:<address_width$}  {:<name_width$}  {:<13}  {:>9}  {:>9}",
        "hop", "address", "name", "reply", "rtt", "loss"
    );
    let _ = writeln!(out, "{}{header}{}", colors.bold, colors.bold.render_reset());
    for ((hop, address), name) in path.hops.iter().zip(&addresses).zip(&names) {
        let rtt = hop.rtt_ms.map_or("-".to_string(), |ms| format!("{ms:.2} ms"));
        let loss = format!("{}% of {}", hop.loss_percent(), hop.tries);
        let style = match hop.reply {
            HopReply::Reached => colors.good,
            HopReply::Unreachable => colors.bad,
            HopReply::Silent => colors.dim,
            HopReply::TimeExceeded => anstyle::Style::new(),
        };
        let reply = hop.reply.as_str();
        let _ = writeln!(
            out,
            "{:>3}  {address:<address_width$}  {name:<name_width$}  {style}{reply:<13}{}  {rtt:>9}  {loss:>9}",
            hop.ttl,
            style.render_reset()
        );
    }
    let last_listed = path.hops.last().map_or(0, |hop| hop.ttl);
    if path.max_ttl > last_listed {
        let _ = writeln!(
            out,
            "{}{:>3}  silent up to hop {}{}",
            colors.dim,
            "…",
            path.max_ttl,
            colors.dim.render_reset()
        );
    }
    out
}

fn truncate(text: &str, width: usize) -> String {
    match text.chars().count() > width {
        true => text.chars().take(width - 1).chain(['…']).collect(),
        false => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use whyrefused_shared::Hop;

    #[test]
    fn the_table_lists_each_hop_with_its_loss_and_notes_silent_ttls_beyond() {
        let hops = vec![Hop {
            ttl: 1,
            address: Some("10.0.1.254".parse().unwrap()),
            name: Some("gw.lab".into()),
            reply: HopReply::TimeExceeded,
            icmp: None,
            rtt_ms: Some(0.25),
            tries: 2,
            answered: 1,
        }];
        let address = "10.0.3.2:81".parse().unwrap();
        let path = Path { complete: true, elapsed_us: 1, ..Path::of_hops(address, hops, 30) };
        let text = table(&path, Colors::default());
        let row = text.lines().nth(1).unwrap();
        for part in ["1", "10.0.1.254", "gw.lab", "time_exceeded", "0.25 ms", "50% of 2"] {
            assert!(row.contains(part), "{part} in {row}");
        }
        assert!(text.lines().nth(2).unwrap().contains("silent up to hop 30"), "{text}");
        assert!(!text.contains('\x1b'), "no colour when off");
    }
}
