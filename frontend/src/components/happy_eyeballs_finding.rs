//! [`HappyEyeballsFinding`]: what a browser or curl (RFC 8305) would end up connected to.

use whyrefused_shared::HappyEyeballs;
use yew::prelude::*;

use crate::format;

#[derive(Properties, PartialEq)]
pub struct HappyEyeballsFindingProps {
    /// The simulation's result.
    pub eyeballs: HappyEyeballs,
}

/// The winner (or that none would connect), then the order the addresses are tried in.
#[function_component(HappyEyeballsFinding)]
pub fn happy_eyeballs_finding(props: &HappyEyeballsFindingProps) -> Html {
    let eyeballs = &props.eyeballs;
    html! {
        <>
            <p class="finding-line">
                if let Some(winner) = eyeballs.winner {
                    { "Connects to " }
                    <span class="mono">{ winner.to_string() }</span>
                    if let Some(family) = eyeballs.family {
                        { format!(" ({})", family.label()) }
                    }
                    if let Some(after_us) = eyeballs.connected_after_us {
                        { " after " }<span class="mono time">{ format::millis(after_us) }</span>
                    }
                } else {
                    <span class="bad-text">{ "No address would connect." }</span>
                }
            </p>
            <p class="finding-label">{ "Order tried" }</p>
            <ol class="finding-order">
                { for eyeballs.order.iter().map(|address| {
                    let winner = eyeballs.winner == Some(*address);
                    html! {
                        <li class={classes!("mono", winner.then_some("winner"))}>
                            { address.to_string() }
                            if winner {
                                <span class="chip chip--open">{ "winner" }</span>
                            }
                        </li>
                    }
                }) }
            </ol>
        </>
    }
}
