//! The agent host's own listening sockets on a port, with the process that owns each.
//!
//! Read from `/proc/net/tcp` and `/proc/net/tcp6` (the agent's network namespace), each with its
//! accept queue from the kernel's socket diagnostics ([`sock_diag`]: waiting connections and
//! backlog), and the owner from the `socket:[inode]` links under `/proc/*/fd`
//! (all processes when the agent runs as root, its own user's otherwise), with the owner's state
//! from `/proc/PID/stat`.

use std::collections::HashMap;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use socket2::{Domain, Socket, Type};

use super::sock_diag;
use whyrefused_shared::{Listener, LocalListeners, OWNERS_UNREADABLE, OwnerState};

/// The TCP state number of a listening socket in `/proc/net/tcp`.
const LISTEN: &str = "0A";

/// The listening sockets on each of `ports` (whatever address each is bound to), the tables
/// and the owners read once for all of them: a scan's open ports.
pub fn listeners_on_ports(ports: &[u16]) -> Vec<Listener> {
    let sockets = listening_sockets(|port| ports.contains(&port));
    let owners = if sockets.is_empty() { HashMap::new() } else { socket_owners() };
    sockets.into_iter().map(|socket| owned(socket, &owners)).collect()
}

/// Every listening socket on `port`, whatever address it is bound to.
pub fn listeners_on(port: u16) -> LocalListeners {
    // Reading the tables costs the kernel a walk of every socket (over a millisecond each in a
    // sandbox like gVisor); when the port is free there is nothing to find.
    if port_is_free(port) {
        return none_on(port);
    }
    let sockets = listening_sockets(|found| found == port);
    let owners = if sockets.is_empty() { HashMap::new() } else { socket_owners() };
    let queues = if sockets.is_empty() { HashMap::new() } else { sock_diag::accept_queues() };
    let listeners: Vec<Listener> = sockets
        .into_iter()
        .map(|socket| {
            let inode = socket.inode;
            let mut listener = owned(socket, &owners);
            listener.queue = queues.get(&inode).copied();
            listener.owner_state = listener.pid.and_then(process_state);
            listener
        })
        .collect();
    let unreadable = listeners.iter().any(|listener| listener.pid.is_none());
    let owners_hidden = unreadable.then(|| OWNERS_UNREADABLE.to_string());
    LocalListeners { port, listeners, owners_hidden, listen_overflows: None }
}

/// No listener on `port`.
pub fn none_on(port: u16) -> LocalListeners {
    LocalListeners { port, listeners: Vec::new(), owners_hidden: None, listen_overflows: None }
}

/// The listening TCP sockets (IPv4 and IPv6) whose port is `wanted`, each once.
fn listening_sockets(wanted: impl Fn(u16) -> bool) -> Vec<ListeningSocket> {
    let mut sockets: Vec<ListeningSocket> = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = fs::read_to_string(table) {
            let listed = parse_table(&text).into_iter();
            sockets.extend(listed.filter(|socket| wanted(socket.address.port())));
        }
    }
    // The kernel may list a socket twice when the table changes while it is read.
    let mut seen = std::collections::HashSet::new();
    sockets.retain(|socket| seen.insert(socket.inode));
    sockets
}

/// A listening socket with its owner, as far as `owners` knows it (no queue or state read).
fn owned(socket: ListeningSocket, owners: &HashMap<u64, (u32, String)>) -> Listener {
    let owner = owners.get(&socket.inode);
    Listener {
        address: socket.address,
        pid: owner.map(|(pid, _)| *pid),
        process: owner.map(|(_, name)| name.clone()),
        command: owner.and_then(|(pid, _)| command_line(*pid)),
        queue: None,
        owner_state: None,
    }
}

/// A process's state (`/proc/PID/stat`'s field after the name in parentheses).
pub fn process_state(pid: u32) -> Option<OwnerState> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    state_of_stat(&stat)
}

/// The state in a `/proc/PID/stat` line: the name may hold spaces and parentheses, so the state
/// is the first word after the last `)`.
fn state_of_stat(stat: &str) -> Option<OwnerState> {
    let (_, rest) = stat.rsplit_once(')')?;
    let code = rest.split_whitespace().next()?.chars().next()?;
    Some(OwnerState::from_code(code))
}

/// A process's command line, its arguments joined by spaces (`/proc/PID/cmdline`).
pub fn command_line(pid: u32) -> Option<String> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let words: Vec<String> = raw
        .split(|byte| *byte == 0)
        .filter(|word| !word.is_empty())
        .map(|word| String::from_utf8_lossy(word).into_owned())
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

/// Whether no socket of this host (in this network namespace) listens on TCP `port` on any
/// address: binding it on the IPv4 and the IPv6 wildcard, allowing reuse, both succeed (a
/// listener on any address makes such a bind fail; a socket that does not listen and allows
/// reuse too does not). `false` whenever that cannot be shown (a privileged port, a port held by
/// a socket that allows no reuse): the caller then reads the tables.
pub fn port_is_free(port: u16) -> bool {
    let binds = |domain: Domain, address: SocketAddr| -> Option<bool> {
        let socket = match Socket::new(domain, Type::STREAM, None) {
            Ok(socket) => socket,
            // No IPv6 on this host: no IPv6 socket can hold the port.
            Err(_) if domain == Domain::IPV6 => return Some(true),
            Err(_) => return None,
        };
        if domain == Domain::IPV6 {
            socket.set_only_v6(true).ok()?;
        }
        // A listener on the port still makes the bind fail; another check's test socket on the
        // same port (checks of one port run at once) or a closing connection does not.
        socket.set_reuse_address(true).ok()?;
        Some(socket.bind(&address.into()).is_ok())
    };
    let v4 = binds(Domain::IPV4, SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)));
    let v6 = binds(Domain::IPV6, SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)));
    v4 == Some(true) && v6 == Some(true)
}

/// Whether a listener accepts connections to `destination` (same address, or a wildcard of
/// the same family; an IPv6 wildcard also takes IPv4 unless the socket is v6-only, which
/// `/proc` does not tell, so it is assumed to). An IPv4-mapped address (`::ffff:127.0.0.1`, as
/// `/proc/net/tcp6` shows an IPv6 socket bound to an IPv4 address) is the IPv4 address it
/// carries, on either side.
pub fn accepts(listener: &SocketAddr, destination: &IpAddr) -> bool {
    whyrefused_shared::diagnosis::bound_accepts(listener, destination)
}

/// One listening socket of a `/proc/net/tcp*` table.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ListeningSocket {
    address: SocketAddr,
    inode: u64,
}

/// The listening sockets in one `/proc/net/tcp*` table, with their inodes.
fn parse_table(text: &str) -> Vec<ListeningSocket> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.get(3) != Some(&LISTEN) {
                return None;
            }
            let address = parse_address(fields.get(1)?)?;
            let inode = fields.get(9)?.parse().ok()?;
            Some(ListeningSocket { address, inode })
        })
        .collect()
}

/// `0100007F:1538` (IPv4) or 32 hex digits and a port (IPv6): the kernel prints each 32-bit
/// word of the address as a number read in host (little-endian) order, so its bytes in memory
/// order are the address's bytes in network order.
pub(super) fn parse_address(text: &str) -> Option<SocketAddr> {
    let (address, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words: Vec<u32> = (0..address.len() / 8)
        .map(|i| u32::from_str_radix(&address[i * 8..i * 8 + 8], 16))
        .collect::<Result<_, _>>()
        .ok()?;
    let ip = match words.as_slice() {
        [word] => IpAddr::V4(Ipv4Addr::from(word.to_le_bytes())),
        [a, b, c, d] => {
            let mut bytes = [0u8; 16];
            for (chunk, word) in bytes.chunks_mut(4).zip([a, b, c, d]) {
                chunk.copy_from_slice(&word.to_le_bytes());
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Socket inode → (pid, process name), from every readable `/proc/PID/fd`.
pub(super) fn socket_owners() -> HashMap<u64, (u32, String)> {
    let mut owners = HashMap::new();
    let Ok(processes) = fs::read_dir("/proc") else {
        return owners;
    };
    for process in processes.flatten() {
        let Some(pid) = process.file_name().to_str().and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(descriptors) = fs::read_dir(process.path().join("fd")) else {
            continue;
        };
        let name =
            fs::read_to_string(process.path().join("comm")).unwrap_or_default().trim().to_string();
        for descriptor in descriptors.flatten() {
            let Ok(link) = fs::read_link(descriptor.path()) else { continue };
            let inode = link
                .to_str()
                .and_then(|l| l.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok());
            if let Some(inode) = inode {
                owners.entry(inode).or_insert_with(|| (pid, name.clone()));
            }
        }
    }
    owners
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_addresses_decode() {
        assert_eq!(parse_address("0100007F:1538"), Some("127.0.0.1:5432".parse().unwrap()));
        assert_eq!(parse_address("00000000:0050"), Some("0.0.0.0:80".parse().unwrap()));
        assert_eq!(
            parse_address("00000000000000000000000001000000:1F90"),
            Some("[::1]:8080".parse().unwrap())
        );
        assert_eq!(parse_address("nonsense"), None);
    }

    #[test]
    fn only_listeners_are_read_from_the_table() {
        // /proc/net/tcp of a lab namespace: a listener with backlog 1 that never accepts, after
        // three connects (two wait, the third's SYN is dropped), and one of its connections.
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0201000A:1F90 00000000:0000 0A 00000001:00000002 00:00000000 00000000     0        0 81234 1 0000000000000000 100 0 0 10 0
   1: 0201000A:1F90 0101000A:B3A2 01 00000000:00000000 00:00000000 00000000     0        0 0 1 0000000000000000 20 4 30 10 -1
";
        let sockets = parse_table(table);
        assert_eq!(sockets.len(), 1, "only the listener");
        assert_eq!(sockets[0].address, "10.0.1.2:8080".parse().unwrap());
        assert_eq!(sockets[0].inode, 81234);
    }

    #[test]
    fn the_state_follows_the_last_parenthesis_of_the_name() {
        let stat = "4242 (gunicorn: (worker) x) T 1 4242 4242 0 -1 4194560 0 0 0 0";
        assert_eq!(state_of_stat(stat), Some(OwnerState::Stopped));
        let this = process_state(std::process::id());
        assert!(matches!(this, Some(OwnerState::Running | OwnerState::Sleeping)), "{this:?}");
    }

    #[test]
    fn wildcards_accept_their_family() {
        let any4: SocketAddr = "0.0.0.0:80".parse().unwrap();
        let loopback: SocketAddr = "127.0.0.1:80".parse().unwrap();
        assert!(accepts(&any4, &"10.0.0.5".parse().unwrap()));
        assert!(!accepts(&loopback, &"10.0.0.5".parse().unwrap()));
        assert!(accepts(&"[::]:80".parse().unwrap(), &"10.0.0.5".parse().unwrap()));
    }

    #[test]
    fn ipv6_listeners_accept_their_own_address_and_mapped_ones_their_ipv4_address() {
        let any6: SocketAddr = "[::]:80".parse().unwrap();
        let loopback6: SocketAddr = "[::1]:80".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:80".parse().unwrap();
        let server: IpAddr = "fd13:1::2".parse().unwrap();
        assert!(accepts(&any6, &server));
        assert!(accepts(&loopback6, &"::1".parse().unwrap()));
        assert!(!accepts(&loopback6, &server), "::1 takes no connection to another address");
        assert!(!accepts(&loopback6, &"127.0.0.1".parse().unwrap()), "nor to IPv4 loopback");
        assert!(accepts(&mapped, &"127.0.0.1".parse().unwrap()), "a mapped bind is IPv4's");
        assert!(!accepts(&mapped, &"10.0.0.5".parse().unwrap()));
        let any4: SocketAddr = "0.0.0.0:80".parse().unwrap();
        assert!(accepts(&any4, &"::ffff:10.0.0.5".parse().unwrap()), "a mapped destination");
        assert!(!accepts(&any4, &server), "an IPv4 wildcard takes no IPv6");
    }

    #[test]
    fn ipv4_mapped_listeners_decode_from_tcp6() {
        assert_eq!(
            parse_address("0000000000000000FFFF00000100007F:1538"),
            Some("[::ffff:127.0.0.1]:5432".parse().unwrap())
        );
    }

    #[test]
    fn an_ipv6_loopback_listener_of_this_process_is_found() {
        let Ok(listener) = std::net::TcpListener::bind("[::1]:0") else { return };
        let port = listener.local_addr().unwrap().port();
        let found = listeners_on(port);
        assert_eq!(found.listeners.len(), 1, "{found:?}");
        assert_eq!(found.listeners[0].address, listener.local_addr().unwrap());
    }

    #[test]
    fn a_listener_of_this_process_is_found_with_its_owner() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let found = listeners_on(port);
        assert_eq!(found.listeners.len(), 1, "{found:?}");
        let only = &found.listeners[0];
        assert_eq!(only.address, listener.local_addr().unwrap());
        assert_eq!(only.pid, Some(std::process::id()));
        assert_eq!(only.queue.map(|q| q.waiting), Some(0), "nothing waits to be accepted");
        assert_eq!(only.queue.map(|q| q.backlog), Some(128), "std's backlog");
    }

    #[test]
    fn a_port_is_free_only_when_no_socket_holds_it() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(!port_is_free(port), "a listener on 127.0.0.1 holds it");
        let found = listeners_on(port);
        assert_eq!(found.listeners.len(), 1, "and the tables are read: {found:?}");
        drop(listener);
        assert!(port_is_free(port), "released");
        assert!(listeners_on(port).listeners.is_empty());
        let other_check = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        other_check.set_reuse_address(true).unwrap();
        other_check.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)).into()).unwrap();
        assert!(port_is_free(port), "another check's test socket does not hold it");
        let v6 = std::net::TcpListener::bind("[::1]:0");
        if let Ok(v6) = v6 {
            assert!(!port_is_free(v6.local_addr().unwrap().port()), "an IPv6 listener holds it");
        }
    }
}
