//! This host's kernel tables that drop new connections when they overflow, read before and after
//! a check: the connection-tracking table (`/proc/sys/net/netfilter/nf_conntrack_count` and
//! `_max`, and the drop counters of `/proc/net/stat/nf_conntrack`) and SYN cookies
//! (`TcpExt: SyncookiesSent`, `SyncookiesFailed` in `/proc/net/netstat`). Each read is a few
//! small files; missing ones (conntrack not loaded) read as absent.

use std::fs;

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
}

/// Reads the counters now.
pub fn read() -> Reading {
    let number = |path: &str| fs::read_to_string(path).ok()?.trim().parse().ok();
    let netstat = fs::read_to_string("/proc/net/netstat").unwrap_or_default();
    Reading {
        conntrack_count: number("/proc/sys/net/netfilter/nf_conntrack_count"),
        conntrack_max: number("/proc/sys/net/netfilter/nf_conntrack_max"),
        conntrack_drops: fs::read_to_string("/proc/net/stat/nf_conntrack")
            .ok()
            .and_then(|text| conntrack_drops(&text)),
        syncookies_sent: super::local_drops::parse_tcp_ext(&netstat, "SyncookiesSent"),
        syncookies_failed: super::local_drops::parse_tcp_ext(&netstat, "SyncookiesFailed"),
    }
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

    /// The header of this kernel's `/proc/net/stat/nf_conntrack` (Linux 6.x), with two CPUs'
    /// lines: the values are written by hand (a full table cannot be made in a test without
    /// changing the host-wide `nf_conntrack_max`), in the kernel's layout.
    const STAT: &str = "entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart
00040000  00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000002 00000010 00000000 00000000  00000000 00000000 00000000 00000000
00040000  00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000005 00000001 00000000  00000000 00000000 00000000 00000000
";

    #[test]
    fn conntrack_drops_sum_every_cpu_by_column_name() {
        assert_eq!(conntrack_drops(STAT), Some(2 + 0x10 + 5 + 1));
        assert_eq!(conntrack_drops("entries found\n00000001 00000002\n"), None);
    }

    #[test]
    fn a_full_table_and_moving_cookies_are_notable() {
        let before = Reading {
            conntrack_count: Some(262_144),
            conntrack_max: Some(262_144),
            conntrack_drops: Some(10),
            syncookies_sent: Some(7),
            syncookies_failed: Some(0),
        };
        let after =
            Reading { conntrack_drops: Some(13), syncookies_sent: Some(9), ..before.clone() };
        let found = since(&before, &after);
        assert_eq!((found.conntrack_drops, found.syncookies_sent), (3, 2));
        assert!(found.conntrack_full() && found.is_notable());
        let quiet = Reading { conntrack_count: Some(12), ..Reading::default() };
        let found = since(&quiet, &quiet);
        assert!(!found.is_notable(), "{found:?}");
    }

    #[test]
    fn this_host_reads_without_failing() {
        let now = read();
        assert!(now.syncookies_sent.is_some(), "{now:?}");
    }
}
