//! [`ResolutionSummary`]: how the host became addresses (or why it did not).

use whyrefused_shared::{DnsStatus, Resolution};
use yew::prelude::*;

use crate::format;

#[derive(Properties, PartialEq)]
pub struct ResolutionSummaryProps {
    /// The resolution, from the `resolved` step.
    pub resolution: Resolution,
}

/// One line: status, method, name, address count and time; then the resolver's words on failure.
#[function_component(ResolutionSummary)]
pub fn resolution_summary(props: &ResolutionSummaryProps) -> Html {
    let resolution = &props.resolution;
    let ok = resolution.status == DnsStatus::Ok;
    html! {
        <section class="resolution" aria-label="Name resolution">
            <h3>{ "Resolution" }</h3>
            <p class="resolution-line">
                <span class={classes!("pill", if ok { "pill--ok" } else { "pill--dns" })}>
                    { format::dns_status_label(resolution.status) }
                </span>
                <span>{ format::method_label(resolution.method) }</span>
                <span class="sep" aria-hidden="true">{ "·" }</span>
                <span class="mono">{ &resolution.host }</span>
                if ok {
                    <span class="sep" aria-hidden="true">{ "·" }</span>
                    <span>{ format::address_count(resolution.addresses.len()) }</span>
                }
                <span class="sep" aria-hidden="true">{ "·" }</span>
                <span class="mono time">{ format::millis(resolution.elapsed_us) }</span>
            </p>
            if let Some(detail) = &resolution.detail {
                <p class="resolution-detail">{ "Resolver said: " }<q>{ detail }</q></p>
            }
        </section>
    }
}
