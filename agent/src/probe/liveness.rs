//! Is the host up? Asked when the port does not open: connects to a few well-known ports (a
//! reset or an open port proves the host alive) and an ICMP echo, all at once.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures::future::join_all;
use whyrefused_shared::{ConnectState, EchoState, Liveness, PortProbe};

use super::{connect, echo};
use crate::policy::TargetPolicy;
use crate::rate::ConnectBudget;

/// Ports that most hosts either serve or answer with a reset.
pub const LIVENESS_PORTS: [u16; 4] = [22, 80, 443, 3389];

/// Probes `address` (skipping `asked_port`, already tried, and the ports `policy` does not
/// allow), each probe with its own deadline. The caller has checked the address itself.
pub async fn liveness(
    address: IpAddr,
    asked_port: u16,
    deadline: Duration,
    policy: &TargetPolicy,
    budget: Option<&ConnectBudget>,
) -> Liveness {
    let ports =
        LIVENESS_PORTS.into_iter().filter(|port| *port != asked_port && policy.allows_port(*port));
    let connects =
        join_all(ports.map(|port| connect(SocketAddr::new(address, port), deadline, budget)));
    let (attempts, echo) = tokio::join!(connects, echo::echo(address, deadline));
    let ports: Vec<PortProbe> = attempts
        .into_iter()
        .map(|attempt| PortProbe {
            port: attempt.port,
            state: attempt.state,
            elapsed_us: attempt.elapsed_us,
        })
        .collect();
    let answered =
        ports.iter().any(|p| matches!(p.state, ConnectState::Open | ConnectState::Refused));
    Liveness {
        address,
        host_up: answered || echo.state == EchoState::Replied,
        ports,
        echo: echo.state,
        echo_rtt_us: echo.rtt_us,
        echo_detail: echo.detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn loopback_is_up() {
        let open = TargetPolicy::unrestricted();
        let liveness =
            liveness("127.0.0.1".parse().unwrap(), 9, Duration::from_millis(500), &open, None)
                .await;
        assert!(liveness.host_up, "{liveness:?}");
        assert_eq!(liveness.ports.len(), LIVENESS_PORTS.len());
    }

    #[tokio::test]
    async fn ports_outside_allow_ports_are_not_probed() {
        let spec = crate::scan::ports::PortSpec::parse("22,9").unwrap();
        let policy = TargetPolicy::unrestricted().allow_ports(spec);
        let address = "127.0.0.1".parse().unwrap();
        let liveness = liveness(address, 9, Duration::from_millis(500), &policy, None).await;
        let probed: Vec<u16> = liveness.ports.iter().map(|p| p.port).collect();
        assert_eq!(probed, [22]);
    }
}
