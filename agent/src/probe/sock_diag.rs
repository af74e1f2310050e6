//! The accept queues of this host's listening TCP sockets, from the kernel's socket diagnostics
//! (netlink `NETLINK_SOCK_DIAG`, what `ss -lnt` reads): for a listener, `idiag_rqueue` is the
//! connections waiting to be accepted and `idiag_wqueue` its backlog. `/proc/net/tcp` shows the
//! first but not the second.
//!
//! The request and the answers are plain bytes laid out as `linux/inet_diag.h` says, built and
//! read here without `unsafe`.

use std::collections::HashMap;
use std::time::Duration;

use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, recv, sendto,
    setsockopt, socket, sockopt,
};
use nix::sys::time::TimeVal;
use whyrefused_shared::AcceptQueue;

/// `SOCK_DIAG_BY_FAMILY`: the request type for inet sockets.
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `NLM_F_REQUEST | NLM_F_DUMP`.
const DUMP_REQUEST: u16 = 0x1 | 0x300;
/// `NLMSG_ERROR` and `NLMSG_DONE`.
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
/// `TCP_LISTEN` in the kernel's TCP states.
const TCP_LISTEN: u32 = 10;
/// The size of `struct nlmsghdr`, of `inet_diag_req_v2` and of `inet_diag_msg`.
const HEADER: usize = 16;
const REQUEST: usize = 56;
const MESSAGE: usize = 72;
/// The most reads of one dump: a host's listeners fit in a few.
const MAX_READS: usize = 1024;
/// How long the kernel may take to answer one read.
const READ_DEADLINE: Duration = Duration::from_secs(1);

/// Every listening TCP socket's accept queue, by socket inode (IPv4 and IPv6); empty when the
/// kernel cannot be asked.
pub fn accept_queues() -> HashMap<u64, AcceptQueue> {
    let mut queues = HashMap::new();
    for family in [libc::AF_INET as u8, libc::AF_INET6 as u8] {
        if let Ok(found) = dump(family) {
            queues.extend(found);
        }
    }
    queues
}

fn dump(family: u8) -> nix::Result<Vec<(u64, AcceptQueue)>> {
    let socket = socket(
        AddressFamily::Netlink,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkSockDiag,
    )?;
    setsockopt(&socket, sockopt::ReceiveTimeout, &TimeVal::new(READ_DEADLINE.as_secs() as _, 0))?;
    sendto(
        std::os::fd::AsRawFd::as_raw_fd(&socket),
        &request(family),
        &NetlinkAddr::new(0, 0),
        MsgFlags::empty(),
    )?;
    let mut found = Vec::new();
    let mut buffer = vec![0u8; 32 * 1024];
    for _ in 0..MAX_READS {
        let length =
            recv(std::os::fd::AsRawFd::as_raw_fd(&socket), &mut buffer, MsgFlags::empty())?;
        match parse(&buffer[..length], &mut found) {
            Read::More => continue,
            Read::Done => return Ok(found),
            Read::Failed => return Err(nix::Error::EIO),
        }
    }
    Ok(found)
}

/// A dump request for `family`'s listening TCP sockets.
fn request(family: u8) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(HEADER + REQUEST);
    bytes.extend(((HEADER + REQUEST) as u32).to_ne_bytes());
    bytes.extend(SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    bytes.extend(DUMP_REQUEST.to_ne_bytes());
    bytes.extend(1u32.to_ne_bytes()); // sequence
    bytes.extend(0u32.to_ne_bytes()); // port id: the kernel fills it in
    bytes.extend([family, libc::IPPROTO_TCP as u8, 0, 0]);
    bytes.extend((1u32 << TCP_LISTEN).to_ne_bytes());
    bytes.resize(HEADER + REQUEST, 0); // any socket id: every listener
    bytes
}

/// What one read held.
#[derive(Debug, PartialEq, Eq)]
enum Read {
    More,
    Done,
    Failed,
}

/// Reads the messages of one read into `found`.
fn parse(mut bytes: &[u8], found: &mut Vec<(u64, AcceptQueue)>) -> Read {
    while bytes.len() >= HEADER {
        let length = u32_at(bytes, 0) as usize;
        let kind = u16::from_ne_bytes([bytes[4], bytes[5]]);
        if length < HEADER || length > bytes.len() {
            return Read::Failed;
        }
        match kind {
            NLMSG_DONE => return Read::Done,
            NLMSG_ERROR => return Read::Failed,
            SOCK_DIAG_BY_FAMILY if length >= HEADER + MESSAGE => {
                let message = &bytes[HEADER..];
                let waiting = u32_at(message, 56);
                let backlog = u32_at(message, 60);
                let inode = u64::from(u32_at(message, 68));
                found.push((inode, AcceptQueue { waiting, backlog }));
            }
            _ => {}
        }
        // Messages are aligned to 4 bytes.
        let next = (length + 3) & !3;
        bytes = bytes.get(next..).unwrap_or_default();
    }
    Read::More
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_ne_bytes(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_a_dump_of_listening_tcp_sockets() {
        let bytes = request(libc::AF_INET as u8);
        assert_eq!(bytes.len(), 72);
        assert_eq!(u32_at(&bytes, 0), 72);
        assert_eq!(bytes[HEADER], libc::AF_INET as u8);
        assert_eq!(bytes[HEADER + 1], 6, "TCP");
        assert_eq!(u32_at(&bytes, HEADER + 4), 1 << 10, "LISTEN only");
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

    #[test]
    fn a_truncated_or_failed_answer_is_not_read() {
        let mut found = Vec::new();
        let mut error = vec![0u8; 20];
        error[0] = 20;
        error[4] = NLMSG_ERROR as u8;
        assert_eq!(parse(&error, &mut found), Read::Failed);
        let mut lying = error.clone();
        lying[0] = 200;
        assert_eq!(parse(&lying, &mut found), Read::Failed);
        assert!(found.is_empty());
    }
}
