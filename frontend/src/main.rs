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
//! - [`route`]: the hash routes a link opens (`#/r/ID`, `#/check?target=…`, `#/history`,
//!   `#/watches`); [`api`]: the agent's HTTP API (stored results, watches); [`timeline`]: a
//!   watch's timeline computed from its rounds.

mod api;
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
mod route;
mod state;
mod timeline;

use yew::prelude::*;

use components::check_card::CheckCard;
use components::check_form::CheckForm;
use components::connection_status::ConnectionStatus;
use components::explain_form::ExplainForm;
use components::history_view::HistoryView;
use components::mode_switch::{Mode, ModeSwitch};
use components::page_footer::PageFooter;
use components::result_view::ResultView;
use components::scan_card::ScanCard;
use components::scan_form::ScanForm;
use components::token_form::TokenForm;
use components::vantage_panel::VantagePanel;
use components::watches_view::WatchesView;
use hooks::{AgentLink, use_agent_link};
use route::Route;
use state::{Card, LinkStatus, State, from_choice};
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use whyrefused_shared::LOCAL_VANTAGE;

#[function_component(App)]
fn app() -> Html {
    let state = use_reducer(State::default);
    let link = use_agent_link(state.dispatcher());
    let mode = use_state(|| Mode::Check);
    let route = use_route();
    // A target a `#/check?target=…` link filled in (never run by the link).
    let prefill = use_state(|| None::<AttrValue>);
    {
        let (mode, prefill) = (mode.clone(), prefill.clone());
        use_effect_with((*route).clone(), move |route| match route {
            Route::History => mode.set(Mode::History),
            Route::Watches => mode.set(Mode::Watches),
            Route::Check(target) => {
                mode.set(Mode::Check);
                prefill.set(Some(target.clone().into()));
            }
            Route::Home | Route::Result(_) => {}
        });
    }
    let onmode = {
        let (mode, route) = (mode.clone(), route.clone());
        Callback::from(move |chosen: Mode| {
            mode.set(chosen);
            match chosen {
                Mode::History => route::go(&Route::History),
                Mode::Watches => route::go(&Route::Watches),
                // A form chosen: the address no longer names a view or a stored result.
                _ if !matches!(*route, Route::Home | Route::Check(_)) => route::go(&Route::Home),
                _ => {}
            }
        })
    };
    let connected = matches!(state.link, LinkStatus::Connected { .. });
    let runs = matches!(*mode, Mode::Check | Mode::Scan | Mode::Explain);
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
                    if let Route::Result(id) = &*route {
                        <ResultView id={AttrValue::from(id.clone())} {connected} />
                    }
                    <ModeSwitch mode={*mode} onchange={onmode} />
                    // Both forms stay mounted, so switching keeps what was typed in each.
                    <div class="form-slot" hidden={*mode != Mode::Check}>
                        <CheckForm blocked={blocked.clone()} from={from.clone()} prefill={(*prefill).clone()} />
                    </div>
                    <div class="form-slot" hidden={*mode != Mode::Scan}>
                        <ScanForm blocked={blocked.clone()} from={from.clone()} />
                    </div>
                    <div class="form-slot" hidden={*mode != Mode::Explain}>
                        <ExplainForm {blocked} {from} />
                    </div>
                    <div class="view-slot" hidden={*mode != Mode::History}>
                        <HistoryView visible={*mode == Mode::History} {connected} />
                    </div>
                    <div class="view-slot" hidden={*mode != Mode::Watches}>
                        <WatchesView visible={*mode == Mode::Watches} {connected} />
                    </div>
                    if let Some(notice) = &state.notice {
                        <p class="notice" role="alert">{ notice }</p>
                    }
                    <section id="results" class="results" aria-live="polite" aria-label="Checks and scans" hidden={!runs}>
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

/// The route of the page's address, kept up to date as it changes (`hashchange`: a link
/// followed, Back pressed, a fragment typed).
#[hook]
fn use_route() -> UseStateHandle<Route> {
    let route = use_state(route::current);
    {
        let route = route.clone();
        use_effect_with((), move |_| {
            let listener = Closure::<dyn Fn()>::new(move || route.set(route::current()));
            let window = web_sys::window();
            if let Some(window) = &window {
                let _ = window.add_event_listener_with_callback(
                    "hashchange",
                    listener.as_ref().unchecked_ref(),
                );
            }
            move || {
                if let Some(window) = window {
                    let _ = window.remove_event_listener_with_callback(
                        "hashchange",
                        listener.as_ref().unchecked_ref(),
                    );
                }
            }
        });
    }
    route
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
