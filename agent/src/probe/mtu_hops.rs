//! How far full-size segments get along a path: for each router of a path trace, an open
//! connection to the server sends one full-size data segment with that router's TTL, and the
//! router's "time exceeded" (reported on the socket as `EHOSTUNREACH` once `IP_RECVERR` is on)
//! shows the segment reached it.
//!
//! A router checks the TTL before the next link's MTU, so a router whose next link is too narrow
//! still answers a full-size segment that expires there, and none that should pass it. Each
//! connection is reset with its TTL restored, so the server sees the reset and keeps no
//! half-open connection; the data never reaches it. This module only measures.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use socket2::SockRef;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use whyrefused_shared::{Family, HopReply, Path, SizedHop, SizedHops};

use super::icmp;
use crate::rate::{self, ConnectBudget};

/// How long one segment's "time exceeded" is waited for: three retransmissions (at 200, 600
/// and 1,400 ms on a short path), so that one comes after the router's ICMP rate limit (one
/// message a second toward one host, in Linux) refilled: a router that dropped full-size
/// packets a moment ago spent its allowance on the "fragmentation needed" nobody received.
pub const EXPIRY_WAIT: Duration = Duration::from_millis(1600);

/// How often a connection's pending error is looked at.
const ERROR_POLL: Duration = Duration::from_millis(10);

/// How far a full-size segment gets toward `address`, router by router, for the routers of
/// `path` (a trace to the same address that reached it), nearest first, up to the first router
/// it does not reach: past that one a segment makes the narrow router send more "fragmentation
/// needed", spending the allowance its own answers need. `None` when the trace did not reach
/// the server, found no router, or no connection opened to learn the segment size.
pub async fn sized_hops(
    address: SocketAddr,
    path: &Path,
    budget: Option<&ConnectBudget>,
) -> Option<SizedHops> {
    let target_ttl = path.hops.iter().find(|hop| hop.reply == HopReply::Reached)?.ttl;
    let mut segment_bytes = None;
    let mut hops = Vec::new();
    for hop in path.hops.iter().filter(|hop| hop.ttl < target_ttl) {
        let (large_expired, bytes) = expires_at(address, hop.ttl, budget).await?;
        segment_bytes = Some(bytes);
        hops.push(SizedHop {
            ttl: hop.ttl,
            address: hop.address,
            name: hop.name.clone(),
            small_expired: hop.reply == HopReply::TimeExceeded,
            large_expired,
        });
        if !large_expired {
            break;
        }
    }
    Some(SizedHops { segment_bytes: segment_bytes?, target_ttl: Some(target_ttl), hops })
}

/// One try: a connection at the default TTL, then one full-size segment with `ttl`. Whether it
/// expired on the way (within [`EXPIRY_WAIT`]) and its size; `None` when no connection opened.
async fn expires_at(
    address: SocketAddr,
    ttl: u8,
    budget: Option<&ConnectBudget>,
) -> Option<(bool, u32)> {
    rate::before_connect(budget).await;
    let stream = tokio::time::timeout(EXPIRY_WAIT, open(address)).await.ok()?.ok()?;
    let family = Family::of(&address.ip());
    let socket = SockRef::from(&stream);
    let segment = socket.tcp_mss().ok()?;
    let restore = default_ttl(&socket, family).ok()?;
    icmp::enable(stream.as_fd(), family).ok()?;
    set_ttl(&socket, family, u32::from(ttl)).ok()?;
    let expired = send_and_wait(stream, segment, family, restore).await;
    Some((expired, segment))
}

/// A connection with zero linger, so dropping it resets it.
async fn open(address: SocketAddr) -> io::Result<TcpStream> {
    let socket = match address {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_zero_linger()?;
    socket.connect(address).await
}

/// Sends one segment of `bytes` (newlines, which line-based services would read as empty lines
/// if one ever arrived) and waits for the "time exceeded" it meets; then restores the TTL and
/// resets the connection.
async fn send_and_wait(mut stream: TcpStream, bytes: u32, family: Family, restore: u32) -> bool {
    let start = Instant::now();
    let payload = vec![b'\n'; bytes as usize];
    let sent =
        matches!(tokio::time::timeout(EXPIRY_WAIT, stream.write_all(&payload)).await, Ok(Ok(())));
    let mut expired = false;
    while sent && start.elapsed() < EXPIRY_WAIT {
        match stream.take_error() {
            Ok(Some(error)) => {
                expired = error.raw_os_error() == Some(Errno::EHOSTUNREACH as i32);
                break;
            }
            Ok(None) => tokio::time::sleep(ERROR_POLL).await,
            Err(_) => break,
        }
    }
    let _ = set_ttl(&SockRef::from(&stream), family, restore);
    expired
}

/// The TTL (IPv6 hop limit) a connection's packets carry by default.
fn default_ttl(socket: &SockRef<'_>, family: Family) -> io::Result<u32> {
    match family {
        Family::Ipv4 => socket.ttl_v4(),
        Family::Ipv6 => socket.unicast_hops_v6(),
    }
}

fn set_ttl(socket: &SockRef<'_>, family: Family, ttl: u32) -> io::Result<()> {
    match family {
        Family::Ipv4 => socket.set_ttl_v4(ttl),
        Family::Ipv6 => socket.set_unicast_hops_v6(ttl),
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use whyrefused_shared::Hop;

    use super::*;

    fn hop(ttl: u8, reply: HopReply) -> Hop {
        Hop {
            ttl,
            address: Some("127.0.0.1".parse().unwrap()),
            name: None,
            reply,
            icmp: None,
            rtt_ms: Some(0.1),
            tries: 1,
            answered: 1,
        }
    }

    #[tokio::test]
    async fn a_path_with_no_router_before_the_server_has_nothing_to_measure() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let path = Path::of_hops(address, vec![hop(1, HopReply::Reached)], 1);
        assert_eq!(sized_hops(address, &path, None).await, None);
    }

    #[tokio::test]
    async fn a_segment_that_reaches_the_server_does_not_expire() {
        // Loopback has no router: a TTL of 1 reaches the listener, so nothing expires.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let (expired, segment) = expires_at(address, 1, None).await.expect("a connection");
        assert!(!expired);
        assert!(segment > 1000, "loopback's MSS is large: {segment}");
    }
}
