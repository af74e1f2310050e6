//! Who a peer is, for counting it: every limit per peer (failed tokens, sessions) counts an IPv4
//! address alone and an IPv6 address by its /64, the block one host or one customer usually
//! holds whole, so a peer cannot step around a limit by changing its interface identifier.

use std::net::{IpAddr, Ipv6Addr};

/// The group `address` is counted in: itself for IPv4 (and IPv4-mapped IPv6), its /64 for IPv6.
pub fn group(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_peers_are_counted_by_their_64_and_ipv4_alone() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff:ffff:ffff:ffff".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(group(a), group(b));
        assert_ne!(group(a), group(c));
        assert_eq!(group("192.0.2.1".parse().unwrap()), "192.0.2.1".parse::<IpAddr>().unwrap());
        assert_eq!(group("::ffff:192.0.2.1".parse().unwrap()), group("192.0.2.1".parse().unwrap()));
    }
}
