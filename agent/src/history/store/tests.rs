//! The history file's behaviour: storing and finding results, migrations, retention, errors a
//! user can act on, and two writers on one file.

use super::*;
use crate::history::record::{Asker, Document};

fn entry(host: &str, port: Option<u16>, started_ms: i64, cause: &str) -> Entry {
    Entry {
        id: formats::new_id(),
        kind: if port.is_some() { Kind::Check } else { Kind::Scan },
        host: host.into(),
        port,
        input: port.map_or_else(|| host.to_string(), |port| format!("{host}:{port}")),
        started_ms,
        finished_ms: started_ms + 3,
        asker: Asker {
            vantage: "local".into(),
            token: Some("team".into()),
            source: "cli",
            watch: None,
        },
        cause: Some(cause.into()),
        reachable: Some(cause == "reachable"),
        connect_us: Some(1500),
        summary: Some(format!("it is {cause}")),
        report: Document::Json(format!(r#"{{"cause":"{cause}","padding":"{}"}}"#, "x".repeat(400))),
    }
}

fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("nested/history.sqlite")).unwrap();
    (dir, store)
}

fn all(limit: usize) -> Query {
    Query { limit, ..Query::default() }
}

#[test]
fn results_come_back_newest_first_by_host_port_and_time() {
    let (_dir, mut store) = temp_store();
    let old = entry("db", Some(5432), 1_000, "refused");
    let new = entry("db", Some(5432), 2_000, "reachable");
    let other_port = entry("db", Some(80), 3_000, "reachable");
    let scan = entry("db", None, 4_000, "completed");
    let other_host = entry("web", Some(80), 5_000, "reachable");
    store
        .insert(&[old.clone(), new.clone(), other_port.clone(), scan.clone(), other_host])
        .unwrap();

    let of_port = Query { host: Some("db".into()), port: Some(5432), ..all(10) };
    let ids: Vec<String> = store.query(&of_port).unwrap().into_iter().map(|s| s.id).collect();
    assert_eq!(ids, [new.id.clone(), old.id.clone()]);

    let of_host = Query { host: Some("db".into()), ..all(10) };
    assert_eq!(store.query(&of_host).unwrap().len(), 4, "the host's checks and its scan");
    let recent = Query { since_ms: Some(2_000), ..of_port.clone() };
    assert_eq!(store.query(&recent).unwrap().len(), 1);
    assert_eq!(store.query(&all(2)).unwrap().len(), 2, "the limit");

    let summary = &store.query(&of_port).unwrap()[0];
    assert_eq!(summary.at, "1970-01-01T00:00:02.000Z");
    assert_eq!((summary.cause.as_deref(), summary.connect_ms), (Some("reachable"), Some(1.5)));
    assert_eq!(summary.asked_by.as_deref(), Some("team"));
}

#[test]
fn a_result_is_found_by_its_id_with_its_report() {
    let (_dir, mut store) = temp_store();
    let stored = entry("db", Some(5432), 1_000, "refused");
    store.insert(std::slice::from_ref(&stored)).unwrap();
    let found = store.get(&stored.id).unwrap().expect("stored");
    assert_eq!(found.summary.id, stored.id);
    assert_eq!(found.report["cause"], "refused");
    assert!(store.get("0000000000").unwrap().is_none());
}

#[test]
fn results_survive_reopening_and_migrations_run_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.sqlite");
    let kept = entry("db", Some(1), 1, "refused");
    Store::open(&path).unwrap().insert(std::slice::from_ref(&kept)).unwrap();
    let reopened = Store::open(&path).unwrap();
    assert_eq!(reopened.count().unwrap(), 1);
    assert_eq!(reopened.version().unwrap(), MIGRATIONS.len() as i64);
    let mode: String =
        reopened.connection.pragma_query_value(None, "journal_mode", |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn retention_by_age_removes_only_what_is_older() {
    let (_dir, mut store) = temp_store();
    let day = 86_400_000;
    store.insert(&[entry("db", Some(1), 0, "a"), entry("db", Some(1), 9 * day, "b")]).unwrap();
    let retention = Retention { max_age: Some(Duration::from_secs(2 * 86_400)), max_bytes: None };
    assert_eq!(store.prune(retention, 10 * day).unwrap(), 1);
    let left = store.query(&all(10)).unwrap();
    assert_eq!(left.iter().map(|s| s.cause.as_deref()).collect::<Vec<_>>(), [Some("b")]);
}

#[test]
fn retention_by_size_removes_the_oldest_until_the_file_fits() {
    let (_dir, mut store) = temp_store();
    let entries: Vec<Entry> = (0..2_000).map(|n| entry("db", Some(1), n, "refused")).collect();
    store.insert(&entries).unwrap();
    let before = store.used_bytes().unwrap();
    let limit = before / 4;
    let retention = Retention { max_age: None, max_bytes: Some(limit) };
    let removed = store.prune(retention, 0).unwrap();
    assert!(removed > 1_000, "removed {removed}");
    assert!(store.used_bytes().unwrap() <= limit, "{} > {limit}", store.used_bytes().unwrap());
    let newest = &store.query(&all(1)).unwrap()[0];
    assert_eq!(newest.at, formats::rfc3339_ms(1_999), "the newest stays");
    let file = std::fs::metadata(store.path()).unwrap().len();
    assert!(file < before, "the file shrank: {file} of {before}");
}

#[test]
fn a_file_that_is_not_a_database_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.sqlite");
    std::fs::write(&path, vec![b'#'; 8192]).unwrap();
    let error = Store::open(&path).err().expect("refused");
    assert!(matches!(error, StoreError::NotADatabase { .. }), "{error}");
    assert!(error.to_string().contains("is not a SQLite database"), "{error}");
}

#[test]
fn a_file_from_a_newer_version_is_refused_not_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.sqlite");
    drop(Store::open(&path).unwrap());
    let raw = Connection::open(&path).unwrap();
    raw.pragma_update(None, "user_version", 99).unwrap();
    drop(raw);
    let error = Store::open(&path).err().expect("refused");
    assert!(matches!(error, StoreError::Newer { found: 99, .. }), "{error}");
}

#[test]
fn two_writers_on_one_file_take_turns_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.sqlite");
    let writers: Vec<_> = (0..2)
        .map(|writer| {
            let path = path.clone();
            std::thread::spawn(move || {
                let mut store = Store::open(&path).unwrap();
                for n in 0..200 {
                    store.insert(&[entry("db", Some(writer), n, "refused")]).unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.count().unwrap(), 400);
    let check: String =
        store.connection.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
}

fn round(number: u64, at_ms: i64, cause: Cause) -> RoundRow {
    RoundRow {
        watch: "w1".into(),
        round: WatchRound {
            round: number,
            at: formats::rfc3339_ms(at_ms),
            cause,
            reachable: cause.is_reachable(),
            connect_ms: Some(1.5),
            changed: number == 3,
            result: Some(format!("r{number}")),
            vantages: vec![],
        },
    }
}

#[test]
fn a_watchs_rounds_come_back_oldest_first_the_latest_within_the_limit() {
    let (_dir, mut store) = temp_store();
    let rounds: Vec<RoundRow> = (1..=5)
        .map(|n| {
            round(n, 1_000 * n as i64, if n < 3 { Cause::PortClosed } else { Cause::Reachable })
        })
        .collect();
    store.insert_rounds(&rounds).unwrap();
    let numbers = |found: Vec<WatchRound>| found.iter().map(|r| r.round).collect::<Vec<_>>();
    assert_eq!(numbers(store.rounds("w1", None, 100).unwrap()), [1, 2, 3, 4, 5]);
    assert_eq!(numbers(store.rounds("w1", None, 2).unwrap()), [4, 5], "the latest two");
    assert_eq!(numbers(store.rounds("w1", Some(2_000), 100).unwrap()), [2, 3, 4, 5]);
    assert!(store.rounds("w2", None, 100).unwrap().is_empty());
    let third = &store.rounds("w1", None, 100).unwrap()[2];
    assert_eq!(*third, rounds[2].round, "every field kept");
}

#[test]
fn watches_are_kept_with_their_state_and_the_ended_ones_listed_within_the_limit() {
    let (_dir, mut store) = temp_store();
    for (index, id) in ["a", "b", "c"].into_iter().enumerate() {
        let row = WatchRow {
            id: id.into(),
            spec: "{}".into(),
            created_ms: index as i64,
            created_by: Some("team".into()),
            state: WatchRowState::Running,
            ended_ms: None,
            ended_by: None,
            summary: None,
        };
        store.insert_watch(&row).unwrap();
    }
    store.end_watch("a", WatchRowState::Stopped, 10, Some("ops"), "{\"rounds\":1}").unwrap();
    store.end_watch("b", WatchRowState::Finished, 20, None, "{}").unwrap();
    let ids = |rows: Vec<WatchRow>| rows.into_iter().map(|row| row.id).collect::<Vec<_>>();
    assert_eq!(ids(store.watches(10).unwrap()), ["c", "b", "a"], "newest first");
    assert_eq!(ids(store.watches(1).unwrap()), ["c", "b"], "running ones, the latest ended");
    let stopped = store.watches(10).unwrap().pop().unwrap();
    assert_eq!(
        (stopped.state, stopped.ended_ms, stopped.ended_by.as_deref()),
        (WatchRowState::Stopped, Some(10), Some("ops"))
    );
}

#[test]
fn processes_opening_one_new_file_at_once_all_get_it() {
    // SQLite refuses a journal mode switch at once while another connection opens the file;
    // a few dozen rounds of four openers hit that window on most runs without the wait.
    for _ in 0..40 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.sqlite");
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
        let openers: Vec<_> = (0..4)
            .map(|_| {
                let (path, barrier) = (path.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    Store::open(&path).map(|_| ())
                })
            })
            .collect();
        for opener in openers {
            opener.join().unwrap().expect("opened");
        }
    }
}
