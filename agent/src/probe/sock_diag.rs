//! The accept queues of this host's listening TCP sockets, from the kernel's socket diagnostics
//! (netlink `NETLINK_SOCK_DIAG`, what `ss -lnt` reads): for a listener, `idiag_rqueue` is the
//! connections waiting to be accepted and `idiag_wqueue` its backlog. `/proc/net/tcp` shows the
//! first but not the second.
//!
//! The request and the answers are plain bytes laid out as `linux/inet_diag.h` says, built and
//! read here without `unsafe`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use nix::sys::socket::SockProtocol;
use whyrefused_shared::AcceptQueue;

use super::netlink::{self, NetlinkError};

/// `SOCK_DIAG_BY_FAMILY`: the request type for inet sockets.
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `TCP_LISTEN` in the kernel's TCP states.
const TCP_LISTEN: u32 = 10;
/// The size of `inet_diag_req_v2` and of `inet_diag_msg`.
const REQUEST: usize = 56;
const MESSAGE: usize = 72;

/// Every listening TCP socket's accept queue, by socket inode (IPv4 and IPv6); empty when the
/// kernel cannot be asked.
pub fn accept_queues() -> HashMap<u64, AcceptQueue> {
    let mut queues = HashMap::new();
    for family in [libc::AF_INET as u8, libc::AF_INET6 as u8] {
        if let Ok(found) = dump(family, accept_queue) {
            queues.extend(found);
        }
    }
    queues
}

/// The address every listening TCP socket is bound to (IPv4 and IPv6): one dump per family,
/// which walks only the kernel's table of listeners.
pub fn listening_addresses() -> Result<Vec<SocketAddr>, NetlinkError> {
    let mut found = dump(libc::AF_INET as u8, bound_address)?;
    found.extend(dump(libc::AF_INET6 as u8, bound_address)?);
    Ok(found)
}

fn dump<T>(family: u8, read: fn(&[u8]) -> Option<T>) -> Result<Vec<T>, NetlinkError> {
    let mut found = Vec::new();
    netlink::ask(SockProtocol::NetlinkSockDiag, &request(family), |kind, body| {
        if let Some(item) = (kind == SOCK_DIAG_BY_FAMILY).then(|| read(body)).flatten() {
            found.push(item);
        }
    })?;
    Ok(found)
}

/// A dump request for `family`'s listening TCP sockets.
fn request(family: u8) -> Vec<u8> {
    let mut body = Vec::with_capacity(REQUEST);
    body.extend([family, libc::IPPROTO_TCP as u8, 0, 0]);
    body.extend((1u32 << TCP_LISTEN).to_ne_bytes());
    body.resize(REQUEST, 0); // any socket id: every listener
    netlink::request(SOCK_DIAG_BY_FAMILY, netlink::DUMP_REQUEST, &body)
}

/// One listener's bound address, from its `inet_diag_msg`: the family, then the socket id's
/// source port and address (network byte order).
fn bound_address(message: &[u8]) -> Option<SocketAddr> {
    if message.len() < MESSAGE {
        return None;
    }
    let port = u16::from_be_bytes([message[4], message[5]]);
    let ip = match i32::from(message[0]) {
        libc::AF_INET => IpAddr::from(<[u8; 4]>::try_from(&message[8..12]).ok()?),
        libc::AF_INET6 => IpAddr::from(<[u8; 16]>::try_from(&message[8..24]).ok()?),
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// One listener's socket inode and accept queue, from its `inet_diag_msg`.
fn accept_queue(message: &[u8]) -> Option<(u64, AcceptQueue)> {
    if message.len() < MESSAGE {
        return None;
    }
    let waiting = netlink::u32_at(message, 56)?;
    let backlog = netlink::u32_at(message, 60)?;
    let inode = u64::from(netlink::u32_at(message, 68)?);
    Some((inode, AcceptQueue { waiting, backlog }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_a_dump_of_listening_tcp_sockets() {
        let bytes = request(libc::AF_INET as u8);
        let header = netlink::HEADER;
        assert_eq!(bytes.len(), 72);
        assert_eq!(netlink::u32_at(&bytes, 0), Some(72));
        assert_eq!(bytes[header], libc::AF_INET as u8);
        assert_eq!(bytes[header + 1], 6, "TCP");
        assert_eq!(netlink::u32_at(&bytes, header + 4), Some(1 << 10), "LISTEN only");
    }

    #[test]
    fn the_listeners_of_this_process_are_listed_with_their_addresses() {
        let v4 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let found = listening_addresses().unwrap();
        assert!(found.contains(&v4.local_addr().unwrap()), "{found:?}");
        if let Ok(v6) = std::net::TcpListener::bind("[::1]:0") {
            let found = listening_addresses().unwrap();
            assert!(found.contains(&v6.local_addr().unwrap()), "{found:?}");
        }
        let connected = std::net::TcpStream::connect(v4.local_addr().unwrap()).unwrap();
        let found = listening_addresses().unwrap();
        assert!(!found.contains(&connected.local_addr().unwrap()), "only listeners");
    }

    #[test]
    fn a_listener_of_this_process_shows_its_backlog_and_queue() {
        let listener =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        listener.bind(&"127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap().into()).unwrap();
        listener.listen(3).unwrap();
        let address = listener.local_addr().unwrap().as_socket().unwrap();
        let _waiting = std::net::TcpStream::connect(address).unwrap();
        let inode = std::fs::metadata(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&listener)
        ))
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
        .unwrap();
        let queues = accept_queues();
        assert_eq!(queues.get(&inode), Some(&AcceptQueue { waiting: 1, backlog: 3 }), "{queues:?}");
    }
}
