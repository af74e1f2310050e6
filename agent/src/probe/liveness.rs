//! Is the host up? Asked when the port does not open: connects to a few well-known ports (a
//! reset or an open port proves the host alive) and an ICMP echo, all at once. The first port
//! that answers, and an echo that is answered, are then tried a few more times in a moment: the
//! loss on the path to the host itself, whatever a firewall does to the asked port.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use whyrefused_shared::{Attempt, EchoState, Liveness, LossFinding, PortProbe};

use super::{connect, echo, repeat};
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
    let ports: Vec<u16> = LIVENESS_PORTS
        .into_iter()
        .filter(|port| *port != asked_port && policy.allows_port(*port))
        .collect();
    let echoes = async {
        let first = echo::echo(address, deadline).await;
        let loss = match (first.state, first.rtt_us) {
            (EchoState::Replied, Some(rtt_us)) => {
                echo::echo_loss(address, Duration::from_micros(rtt_us)).await
            }
            _ => None,
        };
        (first, loss)
    };
    let ((attempts, port_loss), (echo, echo_loss)) =
        tokio::join!(ports_and_loss(address, &ports, deadline, budget), echoes);
    let ports: Vec<PortProbe> = attempts
        .into_iter()
        .map(|attempt| PortProbe {
            port: attempt.port,
            state: attempt.state,
            elapsed_us: attempt.elapsed_us,
        })
        .collect();
    let answered = ports.iter().any(|p| p.state.is_answer());
    Liveness {
        address,
        host_up: answered || echo.state == EchoState::Replied,
        port_loss,
        echo_loss,
        ports,
        echo: echo.state,
        echo_rtt_us: echo.rtt_us,
        echo_detail: echo.detail,
    }
}

/// Connects to each port at once, in `ports`' order; as soon as one answers, quick further
/// connects to it while the others still wait. The attempts in `ports`' order, and the loss.
async fn ports_and_loss(
    address: IpAddr,
    ports: &[u16],
    deadline: Duration,
    budget: Option<&ConnectBudget>,
) -> (Vec<Attempt>, Option<LossFinding>) {
    let mut pending: FuturesUnordered<_> = ports
        .iter()
        .map(|port| connect(SocketAddr::new(address, *port), deadline, budget))
        .collect();
    let mut attempts = Vec::with_capacity(ports.len());
    let mut further: Option<Pin<Box<dyn Future<Output = LossFinding> + Send + '_>>> = None;
    let mut port_loss = None;
    loop {
        tokio::select! {
            Some(attempt) = pending.next() => {
                if further.is_none() && port_loss.is_none() && attempt.state.is_answer() {
                    let target = attempt.socket_addr();
                    let round_trip = Duration::from_micros(attempt.elapsed_us);
                    further = Some(Box::pin(async move {
                        let tries = repeat::quick_connects(target, round_trip, budget).await;
                        repeat::tally(target, &tries.iter().collect::<Vec<_>>())
                    }));
                }
                attempts.push(attempt);
            }
            found = async { further.as_mut().expect("guarded").await }, if further.is_some() => {
                port_loss = Some(found);
                further = None;
            }
            else => break,
        }
    }
    attempts.sort_by_key(|attempt| ports.iter().position(|port| *port == attempt.port));
    (attempts, port_loss)
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
        let ports: Vec<u16> = liveness.ports.iter().map(|p| p.port).collect();
        assert_eq!(ports, LIVENESS_PORTS, "in the list's order");
        // Loopback loses nothing: the first port that answered answers every further try.
        let port_loss = liveness.port_loss.expect("further tries of an answering port");
        assert_eq!((port_loss.loss.sent, port_loss.loss.answered), (5, 5));
        if liveness.echo == EchoState::Replied {
            let echoes = liveness.echo_loss.expect("further echoes");
            assert_eq!((echoes.sent, echoes.answered), (5, 5));
        }
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
