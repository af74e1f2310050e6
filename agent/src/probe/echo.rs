//! An ICMP echo (ping) to one address, with the least privilege that works: an unprivileged
//! ping socket where `net.ipv4.ping_group_range` allows it, else a raw socket (root or
//! `CAP_NET_RAW`), else none, and the reason is reported rather than guessed around.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use whyrefused_shared::{EchoState, Loss};

use super::repeat;
use crate::clock;

/// How many echoes [`echo_loss`] sends.
pub const LOSS_ECHOES: u16 = 5;

/// An echo's outcome: the state, the round trip when it replied, why it could not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Echo {
    /// Replied, no reply, or unavailable.
    pub state: EchoState,
    /// The round trip, in microseconds.
    pub rtt_us: Option<u64>,
    /// Why no echo could be sent.
    pub detail: Option<String>,
}

/// How the echo socket was opened: the kernel fills the identifier and checksum of a ping
/// socket, and strips nothing; a raw IPv4 socket hands back the IP header too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ping,
    Raw,
}

/// Sends one echo request and waits up to `deadline` for the reply.
pub async fn echo(address: IpAddr, deadline: Duration) -> Echo {
    let (socket, kind) = match open(address) {
        Ok(opened) => opened,
        Err(detail) => {
            return Echo { state: EchoState::Unavailable, rtt_us: None, detail: Some(detail) };
        }
    };
    let identifier = identifier();
    let request = request(address, identifier, 1);
    let start = Instant::now();
    if let Err(error) = socket.send_to(&request, SocketAddr::new(address, 0)).await {
        let detail = format!("sending the echo failed: {error}");
        return Echo { state: EchoState::Unavailable, rtt_us: None, detail: Some(detail) };
    }
    match tokio::time::timeout(deadline, wait_reply(&socket, kind, address, identifier)).await {
        Ok(Some(_sequence)) => Echo {
            state: EchoState::Replied,
            rtt_us: Some(clock::micros(start.elapsed())),
            detail: None,
        },
        _ => Echo { state: EchoState::NoReply, rtt_us: None, detail: None },
    }
}

/// Sends [`LOSS_ECHOES`] echoes [`repeat::QUICK_GAP`] apart to a host whose echo was answered
/// in `round_trip`, and counts the replies that come back within [`repeat::quick_wait`] of the
/// last: the loss on the path to the host, as ping measures it. `None` when no echo can be sent.
pub async fn echo_loss(address: IpAddr, round_trip: Duration) -> Option<Loss> {
    let (socket, kind) = open(address).ok()?;
    let identifier = identifier();
    let send = async {
        for sequence in 1..=LOSS_ECHOES {
            let request = request(address, identifier, sequence);
            if socket.send_to(&request, SocketAddr::new(address, 0)).await.is_err() {
                return sequence - 1;
            }
            if sequence < LOSS_ECHOES {
                tokio::time::sleep(repeat::QUICK_GAP).await;
            }
        }
        LOSS_ECHOES
    };
    let mut replied = BTreeSet::new();
    let collect = async {
        while let Some(sequence) = wait_reply(&socket, kind, address, identifier).await {
            // A sequence number seen twice (a duplicated reply) counts once.
            if (1..=LOSS_ECHOES).contains(&sequence) {
                replied.insert(sequence);
            }
            if replied.len() == usize::from(LOSS_ECHOES) {
                return;
            }
        }
    };
    let sending = repeat::QUICK_GAP * u32::from(LOSS_ECHOES - 1);
    let deadline = sending + repeat::quick_wait(round_trip);
    let (sent, _) = tokio::join!(send, tokio::time::timeout(deadline, collect));
    (sent > 0).then(|| Loss::of(u32::from(sent), replied.len() as u32))
}

/// The echo identifier: this process's id, as ping uses (a ping socket replaces it with its own).
fn identifier() -> u16 {
    (std::process::id() & 0xffff) as u16
}

fn open(address: IpAddr) -> Result<(UdpSocket, Kind), String> {
    let (domain, protocol) = match address {
        IpAddr::V4(_) => (Domain::IPV4, Protocol::ICMPV4),
        IpAddr::V6(_) => (Domain::IPV6, Protocol::ICMPV6),
    };
    let (socket, kind) = match Socket::new(domain, Type::DGRAM, Some(protocol)) {
        Ok(socket) => (socket, Kind::Ping),
        Err(_) => match Socket::new(domain, Type::RAW, Some(protocol)) {
            Ok(socket) => (socket, Kind::Raw),
            Err(error) => {
                return Err(format!(
                    "no ping socket (net.ipv4.ping_group_range excludes this user) and no raw \
                     socket ({error}): give the agent CAP_NET_RAW to ping"
                ));
            }
        },
    };
    socket.set_nonblocking(true).map_err(|e| e.to_string())?;
    let socket =
        UdpSocket::from_std(std::net::UdpSocket::from(socket)).map_err(|e| e.to_string())?;
    Ok((socket, kind))
}

/// An echo request: type 8 (IPv4) or 128 (IPv6), code 0, identifier, sequence, a payload.
fn request(address: IpAddr, identifier: u16, sequence: u16) -> Vec<u8> {
    let kind = if address.is_ipv4() { 8 } else { 128 };
    let mut packet = vec![kind, 0, 0, 0];
    packet.extend_from_slice(&identifier.to_be_bytes());
    packet.extend_from_slice(&sequence.to_be_bytes());
    packet.extend_from_slice(b"whyrefused");
    if address.is_ipv4() {
        // ICMPv6 checksums cover a pseudo-header the kernel fills in; IPv4's are ours to set
        // (a ping socket rewrites it anyway).
        let checksum = internet_checksum(&packet);
        packet[2..4].copy_from_slice(&checksum.to_be_bytes());
    }
    packet
}

/// Reads until an echo reply from `address` arrives (for raw sockets, one with our
/// identifier), and gives its sequence number; `None` when the socket fails.
async fn wait_reply(
    socket: &UdpSocket,
    kind: Kind,
    address: IpAddr,
    identifier: u16,
) -> Option<u16> {
    let mut buffer = [0u8; 1500];
    loop {
        let (length, from) = socket.recv_from(&mut buffer).await.ok()?;
        if from.ip() != address {
            continue;
        }
        let mut icmp = &buffer[..length];
        if kind == Kind::Raw && address.is_ipv4() {
            let header_length = usize::from(icmp.first().map_or(0, |b| b & 0x0f)) * 4;
            icmp = icmp.get(header_length..).unwrap_or_default();
        }
        let reply_type = if address.is_ipv4() { 0 } else { 129 };
        let ours = kind == Kind::Ping || icmp.get(4..6) == Some(&identifier.to_be_bytes()[..]);
        if icmp.first() == Some(&reply_type) && ours {
            return Some(
                icmp.get(6..8).map_or(0, |bytes| u16::from_be_bytes([bytes[0], bytes[1]])),
            );
        }
    }
}

/// The one's-complement sum of 16-bit words (RFC 1071).
fn internet_checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|pair| u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checksum_of_a_packet_with_its_checksum_is_zero() {
        let packet = request("192.0.2.1".parse().unwrap(), 0x1234, 1);
        assert_eq!(internet_checksum(&packet), 0);
        assert_eq!(&packet[..2], &[8, 0]);
    }

    #[tokio::test]
    async fn loopback_answers_an_echo_or_says_why_it_cannot() {
        let echo = echo("127.0.0.1".parse().unwrap(), Duration::from_secs(2)).await;
        match echo.state {
            EchoState::Replied => assert!(echo.rtt_us.is_some()),
            EchoState::Unavailable => assert!(echo.detail.unwrap().contains("CAP_NET_RAW")),
            EchoState::NoReply => panic!("loopback always answers an echo that was sent"),
        }
    }

    #[tokio::test]
    async fn loopback_loses_no_echo() {
        match echo_loss("127.0.0.1".parse().unwrap(), Duration::from_micros(50)).await {
            Some(loss) => assert_eq!((loss.sent, loss.answered), (5, 5)),
            // No ping socket and no raw socket: nothing to count, and `echo` says why.
            None => assert_eq!(
                echo("127.0.0.1".parse().unwrap(), Duration::from_millis(100)).await.state,
                EchoState::Unavailable
            ),
        }
    }
}
