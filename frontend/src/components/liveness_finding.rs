//! [`LivenessFinding`]: whether the host is up, from other ports and an ICMP echo, and what the
//! path to it lost while the asked port was tried again.

use whyrefused_shared::{EchoState, Liveness, PortProbe};
use yew::prelude::*;

use crate::format;

#[derive(Properties, PartialEq)]
pub struct LivenessFindingProps {
    /// The probe's result.
    pub liveness: Liveness,
}

/// The conclusion first (up, or no sign of life), then each port's state and the echo.
#[function_component(LivenessFinding)]
pub fn liveness_finding(props: &LivenessFindingProps) -> Html {
    let liveness = &props.liveness;
    html! {
        <>
            <p class="finding-line">
                <span class="mono">{ liveness.address.to_string() }</span>{ " " }
                if liveness.host_up {
                    <span class="pill pill--ok">{ "host up" }</span>
                } else {
                    <span class="pill pill--bad">{ "no sign of life" }</span>
                }
            </p>
            <ul class="chips">
                { for liveness.ports.iter().map(port) }
            </ul>
            <p class="finding-line">{ "ICMP echo: " }{ echo(liveness) }</p>
            if let Some(words) = path_loss(liveness) {
                <p class="finding-line path-loss">{ words }</p>
            }
        </>
    }
}

/// "Meanwhile, port 22 answered 5 of 5 tries and 4 of 5 echoes came back."
fn path_loss(liveness: &Liveness) -> Option<String> {
    let port = liveness.port_loss.as_ref().map(|found| {
        format!("port {} answered {} of {} tries", found.port, found.loss.answered, found.loss.sent)
    });
    let echoes = liveness
        .echo_loss
        .as_ref()
        .map(|loss| format!("{} of {} echoes came back", loss.answered, loss.sent));
    let parts: Vec<String> = port.into_iter().chain(echoes).collect();
    (!parts.is_empty()).then(|| format!("Meanwhile, {}.", parts.join(" and ")))
}

fn port(probe: &PortProbe) -> Html {
    // Any answer, open or refused, proves the host up.
    let answered = probe.state.is_answer();
    html! {
        <li
            class={classes!("chip", if answered { "chip--open" } else { "chip--quiet" })}
            title={format::millis(probe.elapsed_us)}
        >
            <span class="mono">{ probe.port }</span>{ " " }{ format::state_label(probe.state) }
        </li>
    }
}

fn echo(liveness: &Liveness) -> Html {
    let label = format::echo_label(liveness.echo);
    match (liveness.echo, liveness.echo_rtt_us, &liveness.echo_detail) {
        (EchoState::Replied, Some(rtt_us), _) => html! {
            <>{ format!("{label} in ") }<span class="mono time">{ format::millis(rtt_us) }</span></>
        },
        (EchoState::Unavailable, _, Some(detail)) => html! {
            <>{ label }<span class="muted">{ format!(" ({detail})") }</span></>
        },
        _ => html! { label },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::render;
    use whyrefused_shared::ConnectState;

    #[test]
    fn a_host_up_lists_each_port_and_the_echo_time() {
        let liveness = Liveness {
            address: "192.0.2.1".parse().unwrap(),
            ports: vec![
                PortProbe { port: 22, state: ConnectState::Refused, elapsed_us: 300 },
                PortProbe { port: 443, state: ConnectState::Timeout, elapsed_us: 1_000_000 },
            ],
            echo: EchoState::Replied,
            echo_rtt_us: Some(250),
            echo_detail: None,
            host_up: true,
            port_loss: None,
            echo_loss: None,
        };
        let html = render::<LivenessFinding>(LivenessFindingProps { liveness });
        assert!(html.contains("host up"), "{html}");
        assert!(html.contains(r#"class="chip chip--open""#) && html.contains("refused"), "{html}");
        assert!(html.contains(r#"class="chip chip--quiet""#) && html.contains("timed out"));
        assert!(html.contains("replied in ") && html.contains("0.250 ms"), "{html}");
    }

    #[test]
    fn an_echo_that_cannot_be_sent_says_why() {
        let liveness = Liveness {
            address: "192.0.2.1".parse().unwrap(),
            ports: vec![],
            echo: EchoState::Unavailable,
            echo_rtt_us: None,
            echo_detail: Some("no ping socket".into()),
            host_up: false,
            port_loss: None,
            echo_loss: None,
        };
        let html = render::<LivenessFinding>(LivenessFindingProps { liveness });
        assert!(html.contains("no sign of life"), "{html}");
        assert!(html.contains("not available") && html.contains("(no ping socket)"), "{html}");
    }

    #[test]
    fn the_path_loss_meanwhile_is_told_in_words() {
        let mut liveness = Liveness {
            address: "192.0.2.1".parse().unwrap(),
            ports: Vec::new(),
            echo: EchoState::Replied,
            echo_rtt_us: Some(300),
            echo_detail: None,
            host_up: true,
            port_loss: None,
            echo_loss: None,
        };
        assert_eq!(path_loss(&liveness), None);
        liveness.port_loss = Some(whyrefused_shared::LossFinding {
            address: liveness.address,
            port: 22,
            loss: whyrefused_shared::Loss::of(5, 5),
            open: 5,
            refused: 0,
            icmp_errors: 0,
        });
        liveness.echo_loss = Some(whyrefused_shared::Loss::of(5, 4));
        assert_eq!(
            path_loss(&liveness).as_deref(),
            Some("Meanwhile, port 22 answered 5 of 5 tries and 4 of 5 echoes came back.")
        );
        let html = render::<LivenessFinding>(LivenessFindingProps { liveness });
        assert!(html.contains("path-loss"), "{html}");
    }
}
