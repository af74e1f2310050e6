//! [`LossFinding`]: the connects sent to one port and how many were answered, with the loss
//! rate's confidence interval: some answered and some not is a lossy path, not a firewall.

use whyrefused_shared::LossFinding as Loss;
use yew::prelude::*;

use crate::format;

#[derive(Properties, PartialEq)]
pub struct LossFindingProps {
    /// The probe's result.
    pub loss: Loss,
}

/// Tries answered over tries sent as a row of marks, then the estimate in words.
#[function_component(LossFinding)]
pub fn loss_finding(props: &LossFindingProps) -> Html {
    let found = &props.loss;
    let answered = found.loss.answered;
    let sent = found.loss.sent;
    let through = match (found.open, found.refused) {
        (0, 0) => "No try was answered: silence every time is a drop, not loss.".to_string(),
        (0, refused) => format!("The port is closed when packets get through ({refused} resets)."),
        (open, _) => format!("The port is open when packets get through ({open} answered)."),
    };
    html! {
        <>
            <p class="finding-line">
                <span class="mono">{ format!("{}:{}", found.address, found.port) }</span>
                { format!(" answered {answered} of {sent} connects: {}.", found.loss.describe()) }
            </p>
            <p class="finding-line">{ through }</p>
            if found.icmp_errors > 0 {
                <p class="finding-line">
                    { format!("{} answered with an ICMP error.", format::count(u64::from(found.icmp_errors), "connect", "connects")) }
                </p>
            }
            <ol class="loss-tries" aria-label={format!("{answered} of {sent} connects answered")}>
                { for (0..sent.min(64)).map(|index| try_mark(index < answered)) }
            </ol>
        </>
    }
}

/// One try: answered (filled) or not (hollow).
fn try_mark(answered: bool) -> Html {
    let (class, label) = if answered {
        ("loss-try loss-try--answered", "answered")
    } else {
        ("loss-try", "no answer")
    };
    html! { <li class={class} title={label}><span class="visually-hidden">{ label }</span></li> }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::render;
    use whyrefused_shared::Loss as Tries;

    fn finding(sent: u32, open: u32) -> Loss {
        Loss {
            address: "10.0.2.1".parse().unwrap(),
            port: 8080,
            loss: Tries::of(sent, open),
            open,
            refused: 0,
            icmp_errors: 0,
        }
    }

    #[test]
    fn a_lossy_port_says_it_is_open_when_through_and_a_silent_one_says_it_is_a_drop() {
        let html = render::<LossFinding>(LossFindingProps { loss: finding(6, 3) });
        assert!(html.contains("answered 3 of 6 connects"), "{html}");
        assert!(html.contains("The port is open when packets get through (3 answered)."), "{html}");
        let html = render::<LossFinding>(LossFindingProps { loss: finding(6, 0) });
        assert!(html.contains("silence every time is a drop, not loss"), "{html}");
    }
}
