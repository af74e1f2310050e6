//! Telling this host's own DROP rule from a remote one, without privileges.
//!
//! A SYN dropped by this host's OUTPUT chain never leaves, yet `connect` just times out: Linux
//! ignores the local error and retransmits. Each retransmission that fails locally is counted in
//! `TcpExt: TCPRetransFail` (`/proc/net/netstat`), while one lost on the wire is not. So a
//! connect that timed out while that counter rose had its packets stopped on this host. The
//! counter is per network namespace, so other connections failing at the same moment would count
//! too; the evidence says what was observed. The first retransmission comes one second after the
//! SYN, so shorter deadlines cannot see it.

use std::fs;

/// How many TCP retransmissions this network namespace has failed to send, if readable.
pub fn retransmit_failures() -> Option<u64> {
    tcp_ext("TCPRetransFail")
}

/// One `TcpExt` counter of `/proc/net/netstat`.
fn tcp_ext(name: &str) -> Option<u64> {
    parse(&fs::read_to_string("/proc/net/netstat").ok()?, name)
}

/// One `TcpExt` counter of `/proc/net/netstat`'s text, read once for several counters.
pub fn parse_tcp_ext(text: &str, name: &str) -> Option<u64> {
    parse(text, name)
}

/// The value of `name` in `/proc/net/netstat`'s text: a `TcpExt:` line of names followed by a
/// `TcpExt:` line of values.
fn parse(text: &str, name: &str) -> Option<u64> {
    let mut lines = text.lines().filter(|line| line.starts_with("TcpExt:"));
    let names = lines.next()?;
    let values = lines.next()?;
    let index = names.split_whitespace().position(|found| found == name)?;
    values.split_whitespace().nth(index)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counter_is_found_by_name() {
        let text = "TcpExt: SyncookiesSent TCPRetransFail ListenOverflows\nTcpExt: 0 7 3\nIpExt: InNoRoutes\nIpExt: 0\n";
        assert_eq!(parse(text, "TCPRetransFail"), Some(7));
        assert_eq!(parse(text, "ListenOverflows"), Some(3));
        assert_eq!(parse("IpExt: A\nIpExt: 1\n", "TCPRetransFail"), None);
    }

    #[test]
    fn this_host_has_the_counter() {
        assert!(retransmit_failures().is_some());
    }
}
