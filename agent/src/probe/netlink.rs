//! Asking the kernel over netlink: one request, its answers read until the kernel says done,
//! and the attributes (type, length, value) the answers carry. Plain bytes laid out as
//! `linux/netlink.h` says, built and read here without `unsafe`; the socket is nix's.

use std::os::fd::AsRawFd;
use std::time::Duration;

use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, recv, sendto,
    setsockopt, socket, sockopt,
};
use nix::sys::time::TimeVal;

/// The size of `struct nlmsghdr`.
pub const HEADER: usize = 16;
/// `NLM_F_REQUEST`.
pub const REQUEST: u16 = 0x1;
/// `NLM_F_REQUEST | NLM_F_DUMP`: every object of a kind.
pub const DUMP_REQUEST: u16 = REQUEST | 0x300;
/// `NLM_F_MULTI`: more answers follow this one, until `NLMSG_DONE`.
const MULTI: u16 = 0x2;
/// `NLMSG_ERROR` and `NLMSG_DONE`.
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
/// The most reads of one answer: a host's listeners or rules fit in far fewer.
const MAX_READS: usize = 4096;
/// How long the kernel may take to answer one read.
const READ_DEADLINE: Duration = Duration::from_secs(1);
/// The size of one read: the kernel fills up to about a page per message batch.
const READ_SIZE: usize = 64 * 1024;

/// Why the kernel's answer could not be had.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("netlink: {0}")]
    Socket(#[from] nix::Error),
    #[error("netlink: the kernel refused the request ({0})")]
    Refused(nix::Error),
    #[error("netlink: an answer was cut short or malformed")]
    Malformed,
    #[error("netlink: the answer did not end within {MAX_READS} reads")]
    Endless,
}

/// A request: the message header for `kind` with `flags`, then `body`.
pub fn request(kind: u16, flags: u16, body: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(HEADER + body.len());
    bytes.extend(((HEADER + body.len()) as u32).to_ne_bytes());
    bytes.extend(kind.to_ne_bytes());
    bytes.extend(flags.to_ne_bytes());
    bytes.extend(1u32.to_ne_bytes()); // sequence
    bytes.extend(0u32.to_ne_bytes()); // port id: the kernel fills it in
    bytes.extend(body);
    bytes
}

/// Sends `request` over a `protocol` socket and hands each answer's type and body (after the
/// message header) to `each`, until the kernel says done (or, for a single answer, after it).
pub fn ask(
    protocol: SockProtocol,
    request: &[u8],
    mut each: impl FnMut(u16, &[u8]),
) -> Result<(), NetlinkError> {
    let socket =
        socket(AddressFamily::Netlink, SockType::Datagram, SockFlag::SOCK_CLOEXEC, protocol)?;
    let deadline = TimeVal::new(READ_DEADLINE.as_secs() as _, 0);
    setsockopt(&socket, sockopt::ReceiveTimeout, &deadline)?;
    sendto(socket.as_raw_fd(), request, &NetlinkAddr::new(0, 0), MsgFlags::empty())?;
    let mut buffer = vec![0u8; READ_SIZE];
    for _ in 0..MAX_READS {
        let length = recv(socket.as_raw_fd(), &mut buffer, MsgFlags::empty())?;
        if read_messages(&buffer[..length], &mut each)? == Read::Done {
            return Ok(());
        }
    }
    Err(NetlinkError::Endless)
}

/// Whether an answer goes on past one read.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    More,
    Done,
}

/// Reads the messages of one read, handing each to `each`.
pub fn read_messages(
    mut bytes: &[u8],
    each: &mut impl FnMut(u16, &[u8]),
) -> Result<Read, NetlinkError> {
    while bytes.len() >= HEADER {
        let length = u32_at(bytes, 0).ok_or(NetlinkError::Malformed)? as usize;
        let kind = u16_at(bytes, 4).ok_or(NetlinkError::Malformed)?;
        let flags = u16_at(bytes, 6).ok_or(NetlinkError::Malformed)?;
        if length < HEADER || length > bytes.len() {
            return Err(NetlinkError::Malformed);
        }
        let body = &bytes[HEADER..length];
        match kind {
            NLMSG_DONE => return Ok(Read::Done),
            NLMSG_ERROR => {
                // An acknowledgement is an error message with code 0.
                let code = body.get(..4).and_then(|b| i32_at(b, 0)).unwrap_or(-libc::EIO);
                if code != 0 {
                    return Err(NetlinkError::Refused(nix::Error::from_raw(-code)));
                }
                return Ok(Read::Done);
            }
            _ => each(kind, body),
        }
        if flags & MULTI == 0 {
            return Ok(Read::Done);
        }
        bytes = bytes.get(aligned(length)..).unwrap_or_default();
    }
    Ok(Read::More)
}

/// The attributes of a message body (or of a nested attribute): each one's type (its flag
/// bits cleared) and value. Stops at the first that does not fit.
pub fn attributes(mut bytes: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let length = u16_at(bytes, 0)? as usize;
        let kind = u16_at(bytes, 2)? & 0x3fff;
        let value = bytes.get(4..length)?;
        bytes = bytes.get(aligned(length)..).unwrap_or_default();
        Some((kind, value))
    })
}

/// An attribute's value read as a NUL-terminated UTF-8 string, borrowed; `None` when not UTF-8.
pub fn str(value: &[u8]) -> Option<&str> {
    let end = value.iter().position(|b| *b == 0).unwrap_or(value.len());
    std::str::from_utf8(&value[..end]).ok()
}

/// An attribute's value read as a big-endian (network order) number, as netfilter sends them.
pub fn be_u64(value: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(value.get(..8)?.try_into().ok()?))
}

/// Netlink messages and attributes are aligned to 4 bytes.
fn aligned(length: usize) -> usize {
    (length + 3) & !3
}

pub fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn i32_at(bytes: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_ne_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: u16, flags: u16, body: &[u8]) -> Vec<u8> {
        let mut bytes = request(kind, flags, body);
        bytes.resize(aligned(bytes.len()), 0);
        bytes
    }

    #[test]
    fn a_dump_is_read_until_done_and_a_single_answer_alone() {
        let mut seen = Vec::new();
        let mut each = |kind: u16, body: &[u8]| seen.push((kind, body.to_vec()));
        let mut bytes = message(20, MULTI, b"one");
        bytes.extend(message(20, MULTI, b"two"));
        assert_eq!(read_messages(&bytes, &mut each).unwrap(), Read::More);
        assert_eq!(
            read_messages(&message(NLMSG_DONE, MULTI, &[0; 4]), &mut each).unwrap(),
            Read::Done
        );
        assert_eq!(read_messages(&message(15, 0, b"gen"), &mut each).unwrap(), Read::Done);
        let kinds: Vec<u16> = seen.iter().map(|(kind, _)| *kind).collect();
        assert_eq!(kinds, [20, 20, 15]);
        assert_eq!(seen[1].1, b"two");
    }

    #[test]
    fn an_error_or_a_lying_length_is_not_read() {
        let mut each = |_: u16, _: &[u8]| panic!("nothing is handed on");
        let refused = message(NLMSG_ERROR, 0, &(-libc::EPERM).to_ne_bytes());
        assert!(matches!(read_messages(&refused, &mut each), Err(NetlinkError::Refused(_))));
        let mut lying = message(20, MULTI, b"x");
        lying[0] = 200;
        assert!(matches!(read_messages(&lying, &mut each), Err(NetlinkError::Malformed)));
    }

    #[test]
    fn attributes_are_split_and_a_cut_one_ends_the_list() {
        let mut bytes = Vec::new();
        bytes.extend(9u16.to_ne_bytes());
        bytes.extend((1u16 | 0x8000).to_ne_bytes()); // a nested flag is cleared
        bytes.extend(b"abcd\0\0\0\0"); // 5 bytes of value, padded to 8
        bytes.extend(12u16.to_ne_bytes());
        bytes.extend(3u16.to_ne_bytes());
        bytes.extend(7u64.to_be_bytes());
        bytes.extend(50u16.to_ne_bytes()); // longer than what is left
        bytes.extend(4u16.to_ne_bytes());
        let found: Vec<(u16, &[u8])> = attributes(&bytes).collect();
        assert_eq!(found.len(), 2);
        assert_eq!((found[0].0, str(found[0].1)), (1, Some("abcd")));
        assert_eq!((found[1].0, be_u64(found[1].1)), (3, Some(7)));
    }
}
