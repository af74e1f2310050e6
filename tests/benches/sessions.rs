//! Benchmark: many clients at once. SESSIONS WebSocket sessions (default 1,000) are opened to one
//! release agent, then each runs one check of a closed loopback port, all at the same moment.
//! Every check must be answered (its verdict `port_closed`); prints the latency from each
//! check's request to its `done` (p50, p99, max) and the agent's peak resident memory.
//! Goal: p99 under 250 ms, peak RSS under 200 MiB.
//!
//! `cargo bench -p whyrefused-tests --bench sessions [-- SESSIONS]`. Extra `serve` flags (the
//! per-peer session cap, which must admit every session: they all come from 127.0.0.1) come
//! from the environment variable `AGENT_FLAGS`, split on spaces. This process opens a socket per
//! session: raise `ulimit -n` first (tests/bench/run.sh does).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Barrier;
use whyrefused_shared::{Cause, CheckRequest};
use whyrefused_tests::{Agent, Client, closed_port};

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index]
}

fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

/// One session: connects, waits for every other one, runs its check; returns the check's time.
async fn session(agent_url: Arc<Agent>, target: String, barrier: Arc<Barrier>) -> Duration {
    let mut client = Client::connect(&agent_url).await;
    barrier.wait().await;
    let start = Instant::now();
    let (_, report) = client.check(1, CheckRequest::new(target)).await;
    let elapsed = start.elapsed();
    assert_eq!(report.verdict.map(|v| v.cause), Some(Cause::PortClosed), "answered in full");
    // Held open until every session has its answer, so all are open at once.
    barrier.wait().await;
    client.close().await;
    elapsed
}

#[tokio::main]
async fn main() {
    let sessions: usize =
        std::env::args().skip(1).find_map(|arg| arg.parse().ok()).unwrap_or(1_000);
    let flags = std::env::var("AGENT_FLAGS").unwrap_or_default();
    let flags: Vec<&str> = flags.split_whitespace().collect();
    let agent = Arc::new(Agent::start_with(&flags));
    let target = format!("127.0.0.1:{}", closed_port());
    let barrier = Arc::new(Barrier::new(sessions));
    let started = Instant::now();
    let tasks: Vec<_> = (0..sessions)
        .map(|_| tokio::spawn(session(agent.clone(), target.clone(), barrier.clone())))
        .collect();
    let mut times = Vec::with_capacity(sessions);
    for task in tasks {
        times.push(task.await.expect("every session is answered"));
    }
    let wall = started.elapsed();
    times.sort();
    println!(
        "{sessions} concurrent sessions, one check each of a closed loopback port, all answered: \
         p50 {} p99 {} max {} (all done {:.2} s after the first connect); agent peak RSS {:.1} MiB",
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.99)),
        ms(*times.last().expect("at least one session")),
        wall.as_secs_f64(),
        agent.peak_rss_kib() as f64 / 1024.0,
    );
}
