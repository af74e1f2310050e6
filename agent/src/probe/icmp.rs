//! Reading the ICMP error that ended a connect, without privileges.
//!
//! With `IP_RECVERR` (or `IPV6_RECVERR`) set on a socket, Linux queues the ICMP error that
//! answered its SYN on the socket's own error queue: type, code, and the address that sent it.
//! That tells a firewall's REJECT (port unreachable, administratively prohibited) from a real
//! reset, a router's host-unreachable from the target's own answer, and this host's firewall or
//! neighbour table (the sender is a local address) from a remote one. A raw ICMP socket would
//! need `CAP_NET_RAW`; the error queue needs nothing.

use std::io::IoSliceMut;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg, setsockopt, sockopt,
};
use whyrefused_shared::{Family, IcmpError};

/// `sock_extended_err.ee_origin` values for errors that came from ICMP and ICMPv6.
const ORIGIN_ICMP: u8 = 2;
const ORIGIN_ICMP6: u8 = 3;

/// Asks the kernel to queue ICMP errors for this socket.
pub fn enable(socket: BorrowedFd<'_>, family: Family) -> nix::Result<()> {
    match family {
        Family::Ipv4 => setsockopt(&socket, sockopt::Ipv4RecvErr, &true),
        Family::Ipv6 => setsockopt(&socket, sockopt::Ipv6RecvErr, &true),
    }
}

/// The ICMP error queued on the socket, if any (never blocks).
pub fn take(socket: impl AsFd) -> Option<IcmpError> {
    take_with(socket, is_local_address)
}

/// Like [`take`], with the caller's own test of which addresses are this host's (a scan looks
/// them up once rather than once per port).
pub fn take_with(socket: impl AsFd, is_local: impl Fn(&IpAddr) -> bool) -> Option<IcmpError> {
    let mut data = [0u8; 256];
    let mut iov = [IoSliceMut::new(&mut data)];
    let mut control = nix::cmsg_space!(nix::libc::sock_extended_err, nix::libc::sockaddr_in6);
    let flags = MsgFlags::MSG_ERRQUEUE | MsgFlags::MSG_DONTWAIT;
    let fd = socket.as_fd().as_raw_fd();
    let message = recvmsg::<SockaddrStorage>(fd, &mut iov, Some(&mut control), flags).ok()?;
    message.cmsgs().ok()?.find_map(|cmsg| match cmsg {
        ControlMessageOwned::Ipv4RecvErr(error, sender) if error.ee_origin == ORIGIN_ICMP => {
            let from = sender.map(|s| IpAddr::V4(Ipv4Addr::from(u32::from_be(s.sin_addr.s_addr))));
            Some(describe_as(Family::Ipv4, error.ee_type, error.ee_code, from?, &is_local))
        }
        ControlMessageOwned::Ipv6RecvErr(error, sender) if error.ee_origin == ORIGIN_ICMP6 => {
            let from = sender.map(|s| IpAddr::V6(Ipv6Addr::from(s.sin6_addr.s6_addr)));
            Some(describe_as(Family::Ipv6, error.ee_type, error.ee_code, from?, &is_local))
        }
        _ => None,
    })
}

/// An ICMP error with its meaning in words and whether this host sent it.
pub fn describe(family: Family, icmp_type: u8, code: u8, from: IpAddr) -> IcmpError {
    describe_as(family, icmp_type, code, from, is_local_address)
}

fn describe_as(
    family: Family,
    icmp_type: u8,
    code: u8,
    from: IpAddr,
    is_local: impl Fn(&IpAddr) -> bool,
) -> IcmpError {
    IcmpError {
        icmp_type,
        code,
        meaning: meaning(family, icmp_type, code).to_string(),
        from,
        from_local: is_local(&from),
    }
}

/// Whether an ICMP error says a firewall rejected the packet (as opposed to a missing host,
/// network or route).
pub fn is_rejection(error: &IcmpError, family: Family) -> bool {
    match family {
        Family::Ipv4 => error.icmp_type == 3 && matches!(error.code, 2 | 3 | 9 | 10 | 13),
        Family::Ipv6 => error.icmp_type == 1 && matches!(error.code, 1 | 4 | 5 | 6),
    }
}

fn meaning(family: Family, icmp_type: u8, code: u8) -> &'static str {
    match (family, icmp_type, code) {
        (Family::Ipv4, 3, 0) => "network unreachable",
        (Family::Ipv4, 3, 1) => "host unreachable",
        (Family::Ipv4, 3, 2) => "protocol unreachable",
        (Family::Ipv4, 3, 3) => "port unreachable",
        (Family::Ipv4, 3, 4) => "fragmentation needed",
        (Family::Ipv4, 3, 6) => "destination network unknown",
        (Family::Ipv4, 3, 7) => "destination host unknown",
        (Family::Ipv4, 3, 9) => "network administratively prohibited",
        (Family::Ipv4, 3, 10) => "host administratively prohibited",
        (Family::Ipv4, 3, 13) => "communication administratively prohibited",
        (Family::Ipv4, 3, _) => "destination unreachable",
        (Family::Ipv4, 11, _) => "time exceeded (TTL expired in transit)",
        (Family::Ipv6, 1, 0) => "no route to destination",
        (Family::Ipv6, 1, 1) => "communication administratively prohibited",
        (Family::Ipv6, 1, 3) => "address unreachable",
        (Family::Ipv6, 1, 4) => "port unreachable",
        (Family::Ipv6, 1, 5) => "source address failed ingress/egress policy",
        (Family::Ipv6, 1, 6) => "reject route to destination",
        (Family::Ipv6, 1, _) => "destination unreachable",
        (Family::Ipv6, 3, _) => "time exceeded (hop limit expired in transit)",
        _ => "ICMP error",
    }
}

/// Whether `address` belongs to this host (loopback, or on one of its interfaces; an
/// IPv4-mapped IPv6 address is the IPv4 address it carries).
pub fn is_local_address(address: &IpAddr) -> bool {
    let address = address.to_canonical();
    address.is_loopback() || local_addresses().contains(&address)
}

/// The addresses of this host's interfaces, now.
pub fn local_addresses() -> Vec<IpAddr> {
    let Ok(interfaces) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    interfaces
        .filter_map(|interface| interface.address)
        .filter_map(|socket_address| {
            socket_address
                .as_sockaddr_in()
                .map(|v4| IpAddr::V4(v4.ip()))
                .or_else(|| socket_address.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip())))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_named_and_firewall_rejections_recognised() {
        let remote: IpAddr = "192.0.2.1".parse().unwrap();
        let port = describe(Family::Ipv4, 3, 3, remote);
        assert_eq!(port.meaning, "port unreachable");
        assert!(!port.from_local);
        assert!(is_rejection(&port, Family::Ipv4));
        let prohibited = describe(Family::Ipv4, 3, 13, remote);
        assert!(is_rejection(&prohibited, Family::Ipv4));
        let host = describe(Family::Ipv4, 3, 1, remote);
        assert_eq!(host.meaning, "host unreachable");
        assert!(!is_rejection(&host, Family::Ipv4), "a missing host is not a firewall");
        let v6 = describe(Family::Ipv6, 1, 1, "2001:db8::1".parse().unwrap());
        assert_eq!(v6.meaning, "communication administratively prohibited");
        assert!(is_rejection(&v6, Family::Ipv6));
    }

    #[test]
    fn loopback_is_local_and_a_documentation_address_is_not() {
        assert!(is_local_address(&"127.0.0.1".parse().unwrap()));
        assert!(is_local_address(&"::1".parse().unwrap()));
        assert!(is_local_address(&"::ffff:127.0.0.1".parse().unwrap()), "mapped loopback");
        assert!(!is_local_address(&"192.0.2.1".parse().unwrap()));
    }

    #[test]
    fn an_empty_error_queue_gives_nothing() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        enable(socket.as_fd(), Family::Ipv4).unwrap();
        assert_eq!(take(&socket), None);
    }
}
