//! [`LocalDropsFinding`]: retransmissions this host failed to send: its own firewall dropped them.

use whyrefused_shared::LocalDrops;
use yew::prelude::*;

use crate::format;

#[derive(Properties, PartialEq)]
pub struct LocalDropsFindingProps {
    /// The probe's result.
    pub drops: LocalDrops,
}

/// One sentence: how many retransmissions never left, for which connect, and what that means.
#[function_component(LocalDropsFinding)]
pub fn local_drops_finding(props: &LocalDropsFindingProps) -> Html {
    let drops = &props.drops;
    let count = format::count(drops.failed_retransmissions, "retransmission", "retransmissions");
    html! {
        <p class="finding-line">
            { format!("{count} of the connect to ") }
            <span class="mono">{ drops.address.to_string() }</span>
            { " failed to leave this host" }
            if drops.failed_retransmissions > 0 {
                { ": a rule in its own firewall (OUTPUT chain) drops them." }
            } else {
                { ": nothing points at this host's firewall." }
            }
        </p>
    }
}
