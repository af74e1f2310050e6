//! [`NearbyPortsFinding`]: the open ports found near the asked one, after a refusal.

use whyrefused_shared::NearbyPorts;
use yew::prelude::*;

use crate::format;

#[derive(Properties, PartialEq)]
pub struct NearbyPortsFindingProps {
    /// The probe's result.
    pub nearby: NearbyPorts,
}

/// The open ports as chips, nearest first, or a line saying none of them opened.
#[function_component(NearbyPortsFinding)]
pub fn nearby_ports_finding(props: &NearbyPortsFindingProps) -> Html {
    let nearby = &props.nearby;
    html! {
        <>
            <p class="finding-line">
                { format!("{} checked on ", format::count(u64::from(nearby.probed), "port", "ports")) }
                <span class="mono">{ nearby.address.to_string() }</span>
                { if nearby.open.is_empty() { ": none open." } else { ", open:" } }
            </p>
            if nearby.from_listeners > 0 {
                <p class="finding-line finding-line--note">{ how_checked(nearby) }</p>
            }
            if !nearby.open.is_empty() {
                <ul class="chips">
                    { for nearby.open.iter().map(|port| html! {
                        <li class="chip chip--open mono">{ port }</li>
                    }) }
                </ul>
            }
        </>
    }
}

/// How the ports were checked, when some were read from the host's own listening sockets
/// instead of connected to.
fn how_checked(nearby: &NearbyPorts) -> String {
    let read = match nearby.probed.saturating_sub(nearby.from_listeners) {
        0 => "All read".to_string(),
        connected => format!("{} connected to, {} read", connected, nearby.from_listeners),
    };
    format!(
        "{read} from this host's listening sockets: no rule of its firewall could stop a \
         connect to them."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nearby(probed: u32, from_listeners: u32) -> NearbyPorts {
        NearbyPorts { address: "127.0.0.1".parse().unwrap(), probed, open: vec![], from_listeners }
    }

    #[test]
    fn the_note_says_how_many_ports_were_read_rather_than_connected_to() {
        assert_eq!(
            how_checked(&nearby(20, 20)),
            "All read from this host's listening sockets: no rule of its firewall could stop a \
             connect to them."
        );
        assert!(how_checked(&nearby(20, 17)).starts_with("3 connected to, 17 read from"));
    }
}
