//! Probes per second through an exporter's `/probe`: CONCURRENCY scrapers, each on its own
//! kept-alive connection, GET the same probe for SECONDS; prints the rate and the latency
//! percentiles. The exporter (whyrefused or blackbox_exporter) is started by
//! tests/bench/prometheus.sh, which runs this against both in turn.
//!
//! `cargo bench -p whyrefused-tests --bench probe_rate -- ADDRESS PATH [SECONDS] [CONCURRENCY]`

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// One scraper's connection.
struct Scraper {
    stream: BufReader<TcpStream>,
    request: Vec<u8>,
}

impl Scraper {
    async fn connect(address: SocketAddr, path: &str) -> Scraper {
        let stream = TcpStream::connect(address).await.expect("the exporter accepts");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nAccept: text/plain\r\n\r\n");
        Scraper { stream: BufReader::new(stream), request: request.into_bytes() }
    }

    /// One probe: the request, then the whole response; returns its status.
    async fn probe(&mut self) -> u16 {
        self.stream.get_mut().write_all(&self.request).await.expect("the request is sent");
        let mut status_line = String::new();
        self.stream.read_line(&mut status_line).await.expect("a status line");
        let status =
            status_line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let mut length = None;
        loop {
            let mut line = String::new();
            self.stream.read_line(&mut line).await.expect("a header");
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse::<usize>().ok();
            }
        }
        let mut body = vec![0; length.expect("the exporter sends Content-Length")];
        self.stream.read_exact(&mut body).await.expect("the body");
        status
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|arg| arg != "--bench").collect();
    let address: SocketAddr = args
        .first()
        .and_then(|a| a.parse().ok())
        .expect("usage: ADDRESS PATH [SECONDS] [CONCURRENCY]");
    let path = args.get(1).expect("usage: ADDRESS PATH [SECONDS] [CONCURRENCY]").clone();
    let seconds: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10);
    let concurrency: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(16);
    let until = Instant::now() + Duration::from_secs(seconds);
    let scrapers: Vec<_> = (0..concurrency)
        .map(|_| {
            let path = path.clone();
            tokio::spawn(async move {
                let mut scraper = Scraper::connect(address, &path).await;
                let mut latencies = Vec::new();
                while Instant::now() < until {
                    let start = Instant::now();
                    let status = scraper.probe().await;
                    assert_eq!(status, 200, "the exporter answered {status}");
                    latencies.push(start.elapsed());
                }
                latencies
            })
        })
        .collect();
    let start = Instant::now();
    let mut latencies: Vec<Duration> = Vec::new();
    for scraper in scrapers {
        latencies.extend(scraper.await.expect("a scraper finished"));
    }
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    let mean = latencies.iter().sum::<Duration>() / latencies.len().max(1) as u32;
    let max = latencies.last().copied().unwrap_or_default();
    println!(
        "{} probes in {elapsed:.1} s with {concurrency} scrapers: {:.0} probes/s, p50 {:.2} ms, p99 {:.2} ms, mean {:.2} ms, max {:.0} ms",
        latencies.len(),
        latencies.len() as f64 / elapsed,
        at(0.50).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        mean.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3,
    );
}
