//! [`TargetSummary`]: the target as the agent parsed it (host, port and where the port came from).

use whyrefused_shared::TargetInfo;
use yew::prelude::*;

use crate::format;

#[derive(Properties, PartialEq)]
pub struct TargetSummaryProps {
    /// The parsed target, from the `started` step.
    pub target: TargetInfo,
    /// The connect deadline for each address, in milliseconds.
    pub timeout_ms: Option<u32>,
}

/// A small definition list: host (and its ASCII form when it differs), port, URL parts, timeout.
#[function_component(TargetSummary)]
pub fn target_summary(props: &TargetSummaryProps) -> Html {
    let target = &props.target;
    html! {
        <dl class="facts">
            <div>
                <dt>{ "Host" }</dt>
                <dd>
                    <span class="mono">{ &target.display_host }</span>
                    if target.host != target.display_host {
                        <span class="muted mono">{ format!(" ({})", target.host) }</span>
                    }
                </dd>
            </div>
            <div>
                <dt>{ "Port" }</dt>
                <dd>
                    <span class="mono">{ target.port }</span>
                    <span class="muted">{ format!(" ({})", format::port_source_label(target)) }</span>
                </dd>
            </div>
            if let Some(path) = &target.path {
                <div>
                    <dt>{ "Path" }</dt>
                    <dd>
                        <span class="mono">{ path }</span>
                        <span class="muted">{ path_note(target) }</span>
                    </dd>
                </div>
            }
            if let Some(timeout_ms) = props.timeout_ms {
                <div>
                    <dt>{ "Timeout" }</dt>
                    <dd><span class="mono">{ format!("{timeout_ms} ms") }</span>{ " per address" }</dd>
                </div>
            }
        </dl>
    }
}

/// Whether the agent asks for the path: it sends one GET for web schemes, and only connects for
/// the others.
fn path_note(target: &TargetInfo) -> &'static str {
    match target.scheme.as_deref() {
        Some("http" | "https" | "ws" | "wss") => " (requested with one GET)",
        _ => " (not requested: only the connection is checked)",
    }
}
