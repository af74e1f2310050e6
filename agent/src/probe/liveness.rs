//! Is the host up? Asked when the port does not open: connects to a few well-known ports (a
//! reset or an open port proves the host alive) and an ICMP echo, all at once.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures::future::join_all;
use whyrefused_shared::{ConnectState, EchoState, Liveness, PortProbe};

use super::{connect, echo};

/// Ports that most hosts either serve or answer with a reset.
pub const LIVENESS_PORTS: [u16; 4] = [22, 80, 443, 3389];

/// Probes `address` (skipping `asked_port`, already tried), each probe with its own deadline.
pub async fn liveness(address: IpAddr, asked_port: u16, deadline: Duration) -> Liveness {
    let ports = LIVENESS_PORTS.into_iter().filter(|port| *port != asked_port);
    let connects = join_all(ports.map(|port| connect(SocketAddr::new(address, port), deadline)));
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
        let liveness = liveness("127.0.0.1".parse().unwrap(), 9, Duration::from_millis(500)).await;
        assert!(liveness.host_up, "{liveness:?}");
        assert_eq!(liveness.ports.len(), LIVENESS_PORTS.len());
    }
}
