//! [`ConnectionStatus`]: where the page stands with the agent, always in view.

use yew::prelude::*;

use crate::format;
use crate::state::LinkStatus;

#[derive(Properties, PartialEq)]
pub struct ConnectionStatusProps {
    /// The link's current state.
    pub status: LinkStatus,
}

/// `Connecting…`, `Connected to <host> (whyrefused <version>)`, or `Disconnected — reconnecting in
/// N s`, with `data-state` for tests and a coloured dot for people.
#[function_component(ConnectionStatus)]
pub fn connection_status(props: &ConnectionStatusProps) -> Html {
    let state = props.status.wire_name();
    let text = match &props.status {
        LinkStatus::Connecting => html! { <span>{ "Connecting to the agent…" }</span> },
        LinkStatus::Connected { agent } => html! {
            <span>
                { "Connected to " }
                <strong class="mono">{ &agent.hostname }</strong>
                <span class="muted">{ format!(" (whyrefused {})", agent.version) }</span>
            </span>
        },
        LinkStatus::NeedsToken { .. } => html! {
            <span>{ "This agent needs a token before it runs anything" }</span>
        },
        LinkStatus::Disconnected { retry_in_ms, reason } => html! {
            <span>
                { "Disconnected from the agent — reconnecting" }
                // The countdown changes every second: visible, but not read out each time.
                <span aria-hidden="true">{ format!(" in {}", format::retry_delay(*retry_in_ms)) }</span>
                if let Some(reason) = reason {
                    <span class="muted">{ format!(" ({reason})") }</span>
                }
            </span>
        },
    };
    html! {
        <p
            id="connection-status"
            class={classes!("status", format!("status--{state}"))}
            data-state={state}
            role="status"
        >
            <span class="status-dot" aria-hidden="true"></span>
            { text }
        </p>
    }
}
