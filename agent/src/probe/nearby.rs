//! Open ports near the asked one and its usual alternatives: "nothing on 8080, but 8081 is
//! open" is the fix more often than not.
//!
//! Each is connected to, except on this host's own addresses where the firewall's rules are
//! readable and none of them could act on a connect to the port: there the kernel's table of
//! listening sockets says what the connect would, without twenty SYNs per check.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures::future::join_all;
use whyrefused_shared::{ConnectState, NearbyPorts};

use super::{connect, firewall, icmp, listeners, sock_diag};
use crate::policy::TargetPolicy;
use crate::rate::ConnectBudget;

/// How far either side of the asked port to look.
const WINDOW: u16 = 10;

/// Ports a service is commonly moved to, by its usual port.
fn alternatives(port: u16) -> &'static [u16] {
    match port {
        80 => &[8080, 8000, 8008, 8888, 3000, 5000],
        443 => &[8443, 4443, 9443, 80, 8080],
        8080 => &[80, 8000, 8081, 8088, 8888, 3000],
        22 => &[2222, 2200, 22222],
        5432 => &[5433, 5434, 6432],
        3306 => &[3307, 33060],
        6379 => &[6380, 6381],
        27017 => &[27018, 27019],
        5672 => &[5671, 15672],
        9200 => &[9300, 9201],
        25 => &[587, 465, 2525],
        3000 => &[3001, 8080, 5000, 8000],
        5000 => &[5001, 3000, 8000],
        _ => &[],
    }
}

/// The ports to try for `port`: its alternatives first, then the window around it.
pub fn candidates(port: u16) -> Vec<u16> {
    let low = port.saturating_sub(WINDOW).max(1);
    let high = port.saturating_add(WINDOW);
    let mut ports: Vec<u16> = alternatives(port).to_vec();
    ports.extend((low..=high).filter(|p| *p != port));
    let mut seen = std::collections::HashSet::new();
    ports.retain(|p| seen.insert(*p));
    ports
}

/// Connects to every candidate `policy` allows at once; returns the open ones, alternatives
/// first, then nearest first. The caller has checked the address itself.
pub async fn nearby_ports(
    address: IpAddr,
    port: u16,
    deadline: Duration,
    policy: &TargetPolicy,
    budget: Option<&ConnectBudget>,
) -> NearbyPorts {
    let mut candidates = candidates(port);
    candidates.retain(|candidate| policy.allows_port(*candidate));
    let listening = read_from_listeners(address, &candidates).await;
    let attempts = candidates
        .iter()
        .filter(|p| !listening.contains_key(p))
        .map(|p| connect(SocketAddr::new(address, *p), deadline, budget));
    let attempts = join_all(attempts).await;
    let connected: Vec<u16> =
        attempts.iter().filter(|a| a.state == ConnectState::Open).map(|a| a.port).collect();
    let open = candidates
        .iter()
        .filter(|p| listening.get(p) == Some(&true) || connected.contains(p))
        .copied()
        .collect();
    NearbyPorts {
        address,
        probed: candidates.len() as u32,
        open,
        from_listeners: listening.len() as u32,
    }
}

/// For this host's own `address`: the `ports` no rule of its firewall could act on, each with
/// whether a socket listens for connects to it. Empty elsewhere, or when the rules or the
/// listeners cannot be read: every port is then connected to.
async fn read_from_listeners(address: IpAddr, ports: &[u16]) -> HashMap<u16, bool> {
    if !icmp::is_local_address(&address) {
        return HashMap::new();
    }
    let probes: Vec<SocketAddr> = ports.iter().map(|p| SocketAddr::new(address, *p)).collect();
    let Some(acted_on) = firewall::could_act_on(&probes).await else { return HashMap::new() };
    let Ok(bound) = sock_diag::listening_addresses() else { return HashMap::new() };
    let listens = |port: u16| {
        bound
            .iter()
            .any(|listener| listener.port() == port && listeners::accepts(listener, &address))
    };
    ports
        .iter()
        .zip(acted_on)
        .filter(|(_, acted_on)| !acted_on)
        .map(|(port, _)| (*port, listens(*port)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_put_alternatives_first_and_skip_the_asked_port() {
        let ports = candidates(5432);
        assert_eq!(&ports[..3], &[5433, 5434, 6432]);
        assert!(!ports.contains(&5432));
        assert!(ports.contains(&5422) && ports.contains(&5442));
        assert_eq!(ports.iter().filter(|p| **p == 5433).count(), 1, "no duplicates");
        assert!(candidates(3).iter().all(|p| *p >= 1), "no port 0");
    }

    #[tokio::test]
    async fn an_open_port_next_door_is_found() {
        // Find a free pair (p, p + 1) and listen on p + 1.
        let listener = loop {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let port = probe.local_addr().unwrap().port();
            drop(probe);
            if let Ok(next) = std::net::TcpListener::bind(("127.0.0.1", port.wrapping_add(1))) {
                break next;
            }
        };
        let open = listener.local_addr().unwrap().port();
        let address = "127.0.0.1".parse().unwrap();
        let deadline = Duration::from_millis(500);
        let unrestricted = TargetPolicy::unrestricted();
        let found = nearby_ports(address, open - 1, deadline, &unrestricted, None).await;
        assert!(found.open.contains(&open), "{found:?}");
        // The same open port outside --allow-ports is not even tried.
        let spec = crate::scan::ports::PortSpec::parse(&(open - 1).to_string()).unwrap();
        let only_asked = TargetPolicy::unrestricted().allow_ports(spec);
        let found = nearby_ports(address, open - 1, deadline, &only_asked, None).await;
        assert_eq!((found.probed, found.open.len()), (0, 0), "{found:?}");
    }

    #[tokio::test]
    async fn a_listener_beside_a_closed_port_of_this_host_is_found_and_only_for_its_address() {
        let (closed, neighbour) = free_pair();
        let _listener = std::net::TcpListener::bind(("127.0.0.1", neighbour)).unwrap();
        let open = TargetPolicy::default();
        let here = nearby_ports("127.0.0.1".parse().unwrap(), closed, DEADLINE, &open, None).await;
        assert_eq!(here.open, vec![neighbour], "{here:?}");
        let other = nearby_ports("127.0.0.2".parse().unwrap(), closed, DEADLINE, &open, None).await;
        assert!(other.open.is_empty(), "127.0.0.2 is not the listener's address: {other:?}");
        // Read from the listening sockets exactly when this host's rules are readable and none
        // could act on these ports; connected to otherwise.
        let probes: Vec<SocketAddr> =
            candidates(closed).iter().map(|p| SocketAddr::from(([127, 0, 0, 1], *p))).collect();
        let untouched = match firewall::could_act_on(&probes).await {
            Some(acted_on) => acted_on.iter().filter(|acted_on| !**acted_on).count(),
            None => 0,
        };
        assert_eq!(here.from_listeners as usize, untouched);
    }

    const DEADLINE: Duration = Duration::from_millis(500);

    /// A free port whose next port is free too.
    fn free_pair() -> (u16, u16) {
        loop {
            let port =
                std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            if port < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
                return (port, port + 1);
            }
        }
    }
}
