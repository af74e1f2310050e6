//! Benchmark: round trip of a check of a closed loopback port through the WebSocket, from
//! sending the request to receiving its `done`, over a release agent process.
//!
//! `cargo bench -p whyrefused-tests --bench ws_roundtrip [-- CHECKS]` (default 1,000 checks,
//! after 50 for warm-up). Prints the median, p90, p99 and max.

use std::time::{Duration, Instant};

use whyrefused_shared::{Cause, CheckRequest};
use whyrefused_tests::{Agent, Client, closed_port};

const WARM_UP: u64 = 50;

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index]
}

fn ms(duration: Duration) -> String {
    format!("{:.3} ms", duration.as_secs_f64() * 1000.0)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let checks: u64 = std::env::args().skip(1).find_map(|arg| arg.parse().ok()).unwrap_or(1_000);
    let agent = Agent::start();
    let target = format!("127.0.0.1:{}", closed_port());
    let mut client = Client::connect(&agent).await;

    let mut times = Vec::with_capacity(checks as usize);
    for id in 0..WARM_UP + checks {
        let start = Instant::now();
        let (_, report) = client.check(id, CheckRequest::new(target.clone())).await;
        let elapsed = start.elapsed();
        assert_eq!(report.verdict.map(|v| v.cause), Some(Cause::PortClosed));
        if id >= WARM_UP {
            times.push(elapsed);
        }
    }
    times.sort();
    println!(
        "ws round trip, closed loopback port, {checks} checks: median {} p90 {} p99 {} max {}",
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.9)),
        ms(percentile(&times, 0.99)),
        ms(*times.last().expect("at least one check")),
    );
}
