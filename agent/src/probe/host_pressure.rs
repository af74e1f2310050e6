//! This host's kernel tables that drop new connections when they overflow, read before and after
//! a check: the connection-tracking table (`/proc/sys/net/netfilter/nf_conntrack_count` and
//! `_max`, and the drop counters of `/proc/net/stat/nf_conntrack`) and SYN cookies
//! (`TcpExt: SyncookiesSent`, `SyncookiesFailed` in `/proc/net/netstat`), with the SYNs dropped
//! to full accept queues (`ListenOverflows`) from the same read. Each read is a few small files;
//! missing ones (conntrack not loaded) read as absent.

use std::fs;
use std::time::Duration;

use super::recent::Recent;

use whyrefused_shared::HostPressure;

/// The counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reading {
    conntrack_count: Option<u64>,
    conntrack_max: Option<u64>,
    /// `drop + early_drop + insert_failed` over every CPU.
    conntrack_drops: Option<u64>,
    syncookies_sent: Option<u64>,
    syncookies_failed: Option<u64>,
    /// `TcpExt: ListenOverflows`: SYNs dropped because a listener's accept queue was full.
    listen_overflows: Option<u64>,
}

/// How old a reading taken before a check may be and still stand for the moment it started:
/// these counters are the whole host's, so a check already sees other connections move them,
/// and this widens that window by a few milliseconds. What moved is read after the check.
const BEFORE_MAX_AGE: Duration = Duration::from_millis(50);

/// The newest reading taken before a check, shared by the checks that start together.
static BEFORE: Recent<Reading> = Recent::new(BEFORE_MAX_AGE);

/// A reading to compare a check's outcome with: taken now, or by another check that started at
/// most [`BEFORE_MAX_AGE`] ago (reading `/proc/net/netstat` costs the kernel a walk of every
/// counter it keeps, which a thousand checks a second would otherwise pay each).
pub fn read_before() -> Reading {
    BEFORE.get_or_read(read)
}

/// Reads the counters now.
pub fn read() -> Reading {
    let file = |path: &str| fs::read_to_string(path).ok();
    reading(Files {
        conntrack_count: file("/proc/sys/net/netfilter/nf_conntrack_count"),
        conntrack_max: file("/proc/sys/net/netfilter/nf_conntrack_max"),
        conntrack_stat: file("/proc/net/stat/nf_conntrack"),
        netstat: file("/proc/net/netstat").unwrap_or_default(),
    })
}

/// The files a reading is made of, as read (absent when conntrack is not loaded).
struct Files {
    conntrack_count: Option<String>,
    conntrack_max: Option<String>,
    conntrack_stat: Option<String>,
    netstat: String,
}

fn reading(files: Files) -> Reading {
    let number = |text: Option<String>| text?.trim().parse().ok();
    Reading {
        conntrack_count: number(files.conntrack_count),
        conntrack_max: number(files.conntrack_max),
        conntrack_drops: files.conntrack_stat.and_then(|text| conntrack_drops(&text)),
        syncookies_sent: super::local_drops::parse_tcp_ext(&files.netstat, "SyncookiesSent"),
        syncookies_failed: super::local_drops::parse_tcp_ext(&files.netstat, "SyncookiesFailed"),
        listen_overflows: super::local_drops::parse_tcp_ext(&files.netstat, "ListenOverflows"),
    }
}

/// How many SYNs this host dropped to full accept queues from `before` to `after`.
pub fn listen_overflows_since(before: &Reading, after: &Reading) -> Option<u64> {
    after.listen_overflows?.checked_sub(before.listen_overflows?)
}

/// What moved from `before` to `after`, with the table's fill as `after` read it.
pub fn since(before: &Reading, after: &Reading) -> HostPressure {
    let moved = |then: Option<u64>, now: Option<u64>| {
        now.zip(then).and_then(|(now, then)| now.checked_sub(then)).unwrap_or(0)
    };
    HostPressure {
        conntrack_count: after.conntrack_count,
        conntrack_max: after.conntrack_max,
        conntrack_drops: moved(before.conntrack_drops, after.conntrack_drops),
        syncookies_sent: moved(before.syncookies_sent, after.syncookies_sent),
        syncookies_failed: moved(before.syncookies_failed, after.syncookies_failed),
    }
}

/// The sum of `drop`, `early_drop` and `insert_failed` over the per-CPU lines (hexadecimal)
/// of `/proc/net/stat/nf_conntrack`, found by the header's names.
fn conntrack_drops(text: &str) -> Option<u64> {
    let mut lines = text.lines();
    let names: Vec<&str> = lines.next()?.split_whitespace().collect();
    let columns: Vec<usize> = ["drop", "early_drop", "insert_failed"]
        .iter()
        .filter_map(|name| names.iter().position(|found| found == name))
        .collect();
    if columns.is_empty() {
        return None;
    }
    let mut total = 0u64;
    for line in lines {
        let values: Vec<&str> = line.split_whitespace().collect();
        for column in &columns {
            total += u64::from_str_radix(values.get(*column)?, 16).ok()?;
        }
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real files, captured in a network namespace whose table was filled to this host's
    /// `nf_conntrack_max` (262,144) with unanswered UDP flows, before and after 1,000 more:
    /// each of those evicted an older flow (`early_drop`, CPU 0's column moved by 0x3e8).
    fn full_table(stat: &str) -> Reading {
        reading(Files {
            conntrack_count: Some(include_str!("testdata/nf_conntrack_count-full").into()),
            conntrack_max: Some(include_str!("testdata/nf_conntrack_max").into()),
            conntrack_stat: Some(stat.into()),
            netstat: String::new(),
        })
    }

    #[test]
    fn a_real_full_table_is_full_and_its_evictions_are_counted() {
        let before = full_table(include_str!("testdata/nf_conntrack-full-before"));
        let after = full_table(include_str!("testdata/nf_conntrack-full-after"));
        assert_eq!((before.conntrack_count, before.conntrack_max), (Some(262_144), Some(262_144)));
        assert_eq!(before.conntrack_drops, Some(0xfffb), "every CPU's line is summed");
        let found = since(&before, &after);
        assert_eq!(found.conntrack_drops, 1000);
        assert!(found.conntrack_full() && found.is_notable(), "{found:?}");
    }

    #[test]
    fn unknown_columns_are_not_guessed() {
        assert_eq!(conntrack_drops("entries found\n00000001 00000002\n"), None);
    }

    #[test]
    fn moving_cookies_alone_are_notable_and_a_quiet_host_is_not() {
        let netstat =
            |sent: u64| format!("TcpExt: SyncookiesSent SyncookiesFailed\nTcpExt: {sent} 0\n");
        let cookies = |sent| {
            reading(Files {
                conntrack_count: Some("12\n".into()),
                conntrack_max: Some("262144\n".into()),
                conntrack_stat: None,
                netstat: netstat(sent),
            })
        };
        let found = since(&cookies(7), &cookies(9));
        assert_eq!(found.syncookies_sent, 2);
        assert!(!found.conntrack_full() && found.is_notable(), "{found:?}");
        assert!(!since(&cookies(7), &cookies(7)).is_notable());
    }

    #[test]
    fn this_host_reads_without_failing() {
        let now = read();
        assert!(now.syncookies_sent.is_some(), "{now:?}");
    }
}
