//! This host's ephemeral ports, after a connect failed with `EADDRNOTAVAIL`: the range
//! (`/proc/sys/net/ipv4/ip_local_port_range`), the TCP sockets holding its ports
//! (`/proc/net/tcp*`), and the process owning the most of those to the destination.

use std::collections::HashMap;
use std::fs;
use std::net::SocketAddr;

use whyrefused_shared::{LocalPorts, PortHolder};

use super::listeners;

/// `ESTABLISHED` and `TIME_WAIT` in `/proc/net/tcp`'s state column.
const ESTABLISHED: &str = "01";
const TIME_WAIT: &str = "06";
const LISTEN: &str = "0A";

/// The ephemeral ports of this host (its network namespace), with those held to `destination`.
pub fn local_ports(destination: SocketAddr) -> LocalPorts {
    let range = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| parse_range(&text))
        .unwrap_or((32768, 60999));
    let mut sockets = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = fs::read_to_string(table) {
            sockets.extend(parse_sockets(&text));
        }
    }
    let mut found = count(&sockets, range, destination);
    let to_destination: Vec<u64> = sockets
        .iter()
        .filter(|s| s.remote.ip().to_canonical() == destination.ip().to_canonical())
        .filter(|s| s.remote.port() == destination.port() && s.inode != 0)
        .map(|s| s.inode)
        .collect();
    if !to_destination.is_empty() {
        found.top_owner = top_owner(&to_destination, &listeners::socket_owners());
    }
    found
}

/// One socket of a `/proc/net/tcp*` table.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Socket {
    local: SocketAddr,
    remote: SocketAddr,
    state: String,
    inode: u64,
}

/// `32768\t60999`.
fn parse_range(text: &str) -> Option<(u16, u16)> {
    let mut words = text.split_whitespace();
    Some((words.next()?.parse().ok()?, words.next()?.parse().ok()?))
}

fn parse_sockets(text: &str) -> Vec<Socket> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            Some(Socket {
                local: listeners::parse_address(fields.get(1)?)?,
                remote: listeners::parse_address(fields.get(2)?)?,
                state: fields.get(3)?.to_string(),
                inode: fields.get(9)?.parse().ok()?,
            })
        })
        .collect()
}

/// The counts: sockets on a port of `range` (listeners aside), and those to `destination` by
/// state.
fn count(sockets: &[Socket], range: (u16, u16), destination: SocketAddr) -> LocalPorts {
    let in_range = |s: &&Socket| (range.0..=range.1).contains(&s.local.port()) && s.state != LISTEN;
    let mut found = LocalPorts {
        destination,
        range,
        in_range: 0,
        established: 0,
        time_wait: 0,
        other: 0,
        top_owner: None,
    };
    for socket in sockets.iter().filter(in_range) {
        found.in_range += 1;
        let to = socket.remote.ip().to_canonical() == destination.ip().to_canonical()
            && socket.remote.port() == destination.port();
        if to {
            match socket.state.as_str() {
                ESTABLISHED => found.established += 1,
                TIME_WAIT => found.time_wait += 1,
                _ => found.other += 1,
            }
        }
    }
    found
}

/// The process owning the most of `inodes`.
fn top_owner(inodes: &[u64], owners: &HashMap<u64, (u32, String)>) -> Option<PortHolder> {
    let mut per_pid: HashMap<u32, (String, u32)> = HashMap::new();
    for inode in inodes {
        if let Some((pid, name)) = owners.get(inode) {
            per_pid.entry(*pid).or_insert_with(|| (name.clone(), 0)).1 += 1;
        }
    }
    per_pid
        .into_iter()
        .max_by_key(|(pid, (_, sockets))| (*sockets, std::cmp::Reverse(*pid)))
        .map(|(pid, (process, sockets))| PortHolder { pid, process, sockets })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `/proc/net/tcp` of a lab client whose range is 40000-40003, all held to 10.0.1.2:80
    /// (three established, one in TIME_WAIT), with one more to another port and a listener.
    const TABLE: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5001 1 0000000000000000 100 0 0 10 0
   1: 0101000A:9C40 0201000A:0050 01 00000000:00000000 00:00000000 00000000     0        0 7001 1 0000000000000000 20 4 30 10 -1
   2: 0101000A:9C41 0201000A:0050 01 00000000:00000000 00:00000000 00000000     0        0 7002 1 0000000000000000 20 4 30 10 -1
   3: 0101000A:9C42 0201000A:0050 01 00000000:00000000 00:00000000 00000000     0        0 7003 1 0000000000000000 20 4 30 10 -1
   4: 0101000A:9C43 0201000A:0050 06 00000000:00000000 03:00001770 00000000     0        0 0 3 0000000000000000
   5: 0101000A:9C40 0201000A:0051 01 00000000:00000000 00:00000000 00000000     0        0 7004 1 0000000000000000 20 4 30 10 -1
";

    #[test]
    fn the_ports_held_to_the_destination_are_counted_by_state() {
        let sockets = parse_sockets(TABLE);
        assert_eq!(sockets.len(), 6);
        let found = count(&sockets, (40000, 40003), "10.0.1.2:80".parse().unwrap());
        assert_eq!((found.in_range, found.established, found.time_wait, found.other), (5, 3, 1, 0));
        assert_eq!((found.size(), found.to_destination()), (4, 4));
        assert_eq!(parse_range("40000\t40003\n"), Some((40000, 40003)));
    }

    #[test]
    fn the_process_holding_the_most_is_named() {
        let owners: HashMap<u64, (u32, String)> = [
            (7001, (4242, "loadgen".to_string())),
            (7002, (4242, "loadgen".to_string())),
            (7003, (5151, "curl".to_string())),
        ]
        .into();
        let top = top_owner(&[7001, 7002, 7003], &owners).unwrap();
        assert_eq!((top.pid, top.process.as_str(), top.sockets), (4242, "loadgen", 2));
        assert_eq!(top_owner(&[9], &owners), None);
    }
}
