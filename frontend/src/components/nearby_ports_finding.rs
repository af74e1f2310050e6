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
                { format!("{} tried on ", format::count(u64::from(nearby.probed), "port", "ports")) }
                <span class="mono">{ nearby.address.to_string() }</span>
                { if nearby.open.is_empty() { ": none open." } else { ", open:" } }
            </p>
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
