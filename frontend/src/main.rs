//! The whyrefused page: type a target, press Diagnose, and watch the agent's DNS lookup and TCP
//! connects arrive step by step, ending with a verdict in plain words; or switch to "Scan ports"
//! and watch a host's ports fill a map as the agent's batches arrive.
//!
//! - [`state`]: the one [`State`] (the agent link, every check and every scan) and the
//!   [`Action`]s that change it; each check's progress is the shared `CheckReport` fold of its
//!   events, each scan's the shared `ScanReport` fold of its batches.
//! - [`hooks`]: [`use_agent_link`] keeps the WebSocket to the agent open (reconnecting with
//!   [`backoff`]) and hands out the [`AgentLink`] that components use through a context.
//! - [`components`]: one component per file: the form, the connection status, a check's card and
//!   its parts (the verdict with its evidence, the address table, the phase waterfall, the
//!   findings, the rounds of a retried check), the mode switch, the scan form and a scan's card
//!   (progress, counts, the port map, the ports that are not closed), the vantage points to run
//!   from, and a card's per-vantage sections with the cross-vantage verdict.
//! - [`map_cells`]: the port map's cells, computed in one pass over the sorted report.
//! - [`format`]: durations and labels as people read them.
//! - [`markdown`]: a check as Markdown, for "Copy as Markdown"; [`clipboard`] writes it.

mod backoff;
mod clipboard;
mod components;
#[cfg(test)]
mod fixtures;
mod form;
mod format;
mod hooks;
mod map_cells;
mod markdown;
mod state;

use yew::prelude::*;

use components::check_card::CheckCard;
use components::check_form::CheckForm;
use components::connection_status::ConnectionStatus;
use components::explain_form::ExplainForm;
use components::mode_switch::{Mode, ModeSwitch};
use components::page_footer::PageFooter;
use components::scan_card::ScanCard;
use components::scan_form::ScanForm;
use components::token_form::TokenForm;
use components::vantage_panel::VantagePanel;
use hooks::{AgentLink, use_agent_link};
use state::{Card, LinkStatus, State, from_choice};
use whyrefused_shared::LOCAL_VANTAGE;

#[function_component(App)]
fn app() -> Html {
    let state = use_reducer(State::default);
    let link = use_agent_link(state.dispatcher());
    let mode = use_state(|| Mode::Check);
    let onmode = {
        let mode = mode.clone();
        Callback::from(move |chosen: Mode| mode.set(chosen))
    };
    // The vantage points checks and scans run from: the agent itself until the user ticks others.
    let chosen = use_state(|| vec![LOCAL_VANTAGE.to_owned()]);
    let onchoose = {
        let chosen = chosen.clone();
        Callback::from(move |names: Vec<String>| chosen.set(names))
    };
    let from = from_choice(&chosen);

    let blocked: Option<AttrValue> = match &state.link {
        LinkStatus::Connected { .. } => None,
        LinkStatus::Connecting => Some("Waiting for the agent to answer…".into()),
        LinkStatus::Disconnected { .. } => Some(
            "Not connected to the agent: checks and scans can run again once it reconnects.".into(),
        ),
        LinkStatus::NeedsToken { .. } => Some("Give the agent's token first.".into()),
    }
    .or_else(|| chosen.is_empty().then(|| "Choose at least one vantage point to run from.".into()));

    html! {
        <ContextProvider<AgentLink> context={link}>
            <div class="page">
                <header class="masthead">
                    <div class="brand">
                        <h1>{ "whyrefused" }</h1>
                        <p class="tagline">
                            { "Connection refused or timed out? Find out which part is to blame." }
                        </p>
                    </div>
                    <ConnectionStatus status={state.link.clone()} />
                </header>
                <main>
                    if let LinkStatus::NeedsToken { problem } = &state.link {
                        <TokenForm problem={problem.clone()} />
                    }
                    if matches!(state.link, LinkStatus::Connected { .. }) && !state.vantages.is_empty() {
                        <VantagePanel
                            vantages={state.vantages.clone()}
                            chosen={(*chosen).clone()}
                            onchange={onchoose}
                        />
                    }
                    <ModeSwitch mode={*mode} onchange={onmode} />
                    // Both forms stay mounted, so switching keeps what was typed in each.
                    <div class="form-slot" hidden={*mode != Mode::Check}>
                        <CheckForm blocked={blocked.clone()} from={from.clone()} />
                    </div>
                    <div class="form-slot" hidden={*mode != Mode::Scan}>
                        <ScanForm blocked={blocked.clone()} from={from.clone()} />
                    </div>
                    <div class="form-slot" hidden={*mode != Mode::Explain}>
                        <ExplainForm {blocked} {from} />
                    </div>
                    if let Some(notice) = &state.notice {
                        <p class="notice" role="alert">{ notice }</p>
                    }
                    <section id="results" class="results" aria-live="polite" aria-label="Checks and scans">
                        if state.cards.is_empty() {
                            <p class="empty">
                                { "No checks yet. Try " }<code>{ "localhost:22" }</code>
                                { " or " }<code>{ "https://example.com" }</code>
                                { ". Probes run from the agent's machine, not from your browser." }
                            </p>
                        }
                        { for state.cards.iter().map(|card| match card {
                            Card::Check(check) => html! {
                                <CheckCard key={check.id.0.to_string()} check={check.clone()} />
                            },
                            Card::Scan(scan) => html! {
                                <ScanCard key={scan.id.0.to_string()} scan={scan.clone()} />
                            },
                        }) }
                    </section>
                </main>
                <PageFooter agent={connected_agent(&state.link)} />
            </div>
        </ContextProvider<AgentLink>>
    }
}

/// The agent that answered, while the page is connected to it.
fn connected_agent(link: &LinkStatus) -> Option<whyrefused_shared::AgentInfo> {
    match link {
        LinkStatus::Connected { agent } => Some(agent.clone()),
        _ => None,
    }
}

fn main() {
    yew::Renderer::<App>::new().render();
}
