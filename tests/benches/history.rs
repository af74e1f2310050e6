//! The history's query time and size at scale: stores COUNT results of one target (and one in
//! ten of another) in a fresh history file, each with a real check report (read from a file),
//! then times the query `whyrefused history TARGET` runs (the newest 100 of the target, and of
//! the last hour) and prints the file's size per 1,000 results. Run by tests/bench/history.sh.
//!
//! `cargo bench -p whyrefused-tests --bench history -- STATE_DIR REPORT_JSON [COUNT]`

use std::time::{Duration, Instant, SystemTime};

use whyrefused::history::formats::{new_id, unix_ms};
use whyrefused::history::{Asker, Document, Entry, Kind, Query, Store, file_in};

/// How many results go in one transaction while filling.
const BATCH: usize = 1_000;

/// How many times each query is timed.
const RUNS: usize = 50;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let [dir, report, rest @ ..] = args.as_slice() else {
        panic!("usage: history STATE_DIR REPORT_JSON [COUNT]");
    };
    let count: usize = rest.first().map_or(100_000, |c| c.parse().expect("COUNT is a number"));
    let report = std::fs::read_to_string(report).expect("the report file is readable");
    let path = file_in(std::path::Path::new(dir));
    let mut store = Store::open(&path).expect("a fresh history");
    let now = unix_ms(SystemTime::now());
    let started = Instant::now();
    let mut batch = Vec::with_capacity(BATCH);
    for n in 0..count + count / 10 {
        // One result a second back from now; every eleventh of another target.
        let other = n % 11 == 10;
        batch.push(entry(&report, other, now - (count + count / 10 - n) as i64 * 1000));
        if batch.len() == BATCH {
            store.insert(&batch).expect("stored");
            batch.clear();
        }
    }
    store.insert(&batch).expect("stored");
    let filled = started.elapsed();
    println!("filled {} results in {:.1} s", count + count / 10, filled.as_secs_f64());

    let newest =
        Query { host: Some("127.0.0.1".into()), port: Some(5432), limit: 100, ..Query::default() };
    let last_hour = Query { since_ms: Some(now - 3_600_000), ..newest.clone() };
    for (name, query) in
        [("newest 100 of the target", &newest), ("the target's last hour", &last_hour)]
    {
        let mut times: Vec<Duration> = (0..RUNS)
            .map(|_| {
                // A fresh read connection each time, as the API and the CLI open one.
                let start = Instant::now();
                let reader = Store::open_read_only(&path).expect("readable");
                let found = reader.query(query).expect("queried");
                assert!(!found.is_empty());
                start.elapsed()
            })
            .collect();
        times.sort();
        println!(
            "query ({name}), {RUNS} runs: median {:.2} ms, max {:.2} ms",
            times[RUNS / 2].as_secs_f64() * 1e3,
            times[RUNS - 1].as_secs_f64() * 1e3
        );
    }
    drop(store);
    let size = std::fs::metadata(&path).expect("the file").len()
        + std::fs::metadata(path.with_extension("sqlite-wal")).map_or(0, |m| m.len());
    let total = (count + count / 10) as f64;
    println!(
        "file: {:.1} MB for {total} results, {:.0} kB per 1,000 (report {} bytes of JSON each)",
        size as f64 / 1e6,
        size as f64 / total,
        report.len()
    );
}

fn entry(report: &str, other: bool, started_ms: i64) -> Entry {
    let port = if other { 80 } else { 5432 };
    Entry {
        id: new_id(),
        kind: Kind::Check,
        host: "127.0.0.1".into(),
        port: Some(port),
        input: format!("127.0.0.1:{port}"),
        started_ms,
        finished_ms: started_ms + 12,
        asker: Asker { vantage: "local".into(), token: None, source: "watch", watch: None },
        cause: Some("port_closed".into()),
        reachable: Some(false),
        connect_us: Some(480),
        summary: Some("Nothing listens on port 5432 of 127.0.0.1.".into()),
        report: Document::Json(report.to_string()),
    }
}
