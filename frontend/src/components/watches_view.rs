//! [`WatchesView`]: the watches that run inside the agent (`GET /api/watches`), each a
//! [`WatchPanel`]: its timeline, uptime and connect-time percentiles, its state and a Stop
//! button. While shown, a running watch's new rounds are polled
//! (`GET /api/watches/{id}/rounds?since=LAST`) at the watch's own pace, between one and five
//! seconds; polling stops when the view is hidden or the watch has ended.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use gloo_timers::future::TimeoutFuture;
use whyrefused_shared::{WatchInfo, WatchListing, WatchRound, WatchRounds, WatchState};
use yew::platform::spawn_local;
use yew::prelude::*;

use crate::api::{self, ApiError};
use crate::components::watch_timeline::WatchTimeline;
use crate::hooks::AgentLink;
use crate::timeline::{self, duration_ms, short_time};

/// The most rounds a watch keeps in the page's memory: the newest.
pub const MAX_ROUNDS: usize = 2_000;

/// The quickest and slowest polls.
const POLL_MIN_MS: u64 = 1_000;
const POLL_MAX_MS: u64 = 5_000;

#[derive(Properties, PartialEq)]
pub struct WatchesViewProps {
    /// Whether the view is shown: it asks and polls only then.
    pub visible: bool,
    /// Whether the page is connected: a token given since is used at once.
    pub connected: bool,
}

/// `section#watches`: one [`WatchPanel`] per watch, newest first, or what went wrong.
#[function_component(WatchesView)]
pub fn watches_view(props: &WatchesViewProps) -> Html {
    let link = use_context::<AgentLink>();
    let listing = use_state(|| None::<Result<WatchListing, ApiError>>);
    {
        let listing = listing.clone();
        let token = link.as_ref().and_then(AgentLink::token);
        use_effect_with((props.visible, props.connected), move |(visible, _)| {
            if *visible {
                spawn_local(async move {
                    listing.set(Some(api::get::<WatchListing>("/api/watches", token).await));
                });
            }
        });
    }
    let body = match &*listing {
        None => {
            html! { <p class="history-state" data-state="loading">{ "Loading the watches…" }</p> }
        }
        Some(Err(error)) => {
            html! { <p class="notice" role="alert" data-state="error">{ error.to_string() }</p> }
        }
        Some(Ok(listing)) if listing.watches.is_empty() => html! {
            <p class="history-state empty" data-state="empty">
                { "No watches yet: press \"Watch this\" on a finished check to repeat it here, page or no page." }
            </p>
        },
        Some(Ok(listing)) => html! {
            <ol class="watch-list">
                { for listing.watches.iter().map(|info| html! {
                    <WatchPanel key={info.id.clone()} info={info.clone()} visible={props.visible} />
                }) }
            </ol>
        },
    };
    html! {
        <section id="watches" class="watches" aria-label="Watches">{ body }</section>
    }
}

#[derive(Properties, PartialEq)]
pub struct WatchPanelProps {
    /// The watch as listed.
    pub info: WatchInfo,
    /// Whether the view is shown.
    pub visible: bool,
}

/// One watch's rounds and latest state, as the polls bring them.
#[derive(Debug, Clone, PartialEq)]
struct Watched {
    info: WatchInfo,
    rounds: Rc<Vec<WatchRound>>,
    problem: Option<String>,
}

enum Heard {
    Rounds(Vec<WatchRound>),
    Info(Box<WatchInfo>),
    Problem(String),
}

impl Reducible for Watched {
    type Action = Heard;

    fn reduce(self: Rc<Self>, heard: Heard) -> Rc<Self> {
        let mut watched = (*self).clone();
        match heard {
            Heard::Rounds(polled) => {
                let rounds = Rc::make_mut(&mut watched.rounds);
                timeline::append_new(rounds, polled);
                timeline::keep_newest(rounds, MAX_ROUNDS);
                watched.problem = None;
            }
            Heard::Info(info) => watched.info = *info,
            Heard::Problem(problem) => watched.problem = Some(problem),
        }
        watched.into()
    }
}

/// `li.watch` (`data-watch`, `data-state`): the target and interval, the state, uptime and
/// percentiles, the [`WatchTimeline`], and Stop while it runs.
#[function_component(WatchPanel)]
pub fn watch_panel(props: &WatchPanelProps) -> Html {
    let link = use_context::<AgentLink>();
    let watched = {
        let info = props.info.clone();
        use_reducer(move || Watched { info, rounds: Rc::default(), problem: None })
    };
    let running = watched.info.state == WatchState::Running;
    {
        let dispatcher = watched.dispatcher();
        let token = link.as_ref().and_then(AgentLink::token);
        let id = props.info.id.clone();
        let every = duration_ms(&props.info.spec.every).unwrap_or(POLL_MAX_MS);
        let pause = every.clamp(POLL_MIN_MS, POLL_MAX_MS) as u32;
        let known = watched.rounds.last().map(|round| round.at.clone());
        use_effect_with((props.visible, running), move |(visible, running)| {
            let stop = Rc::new(Cell::new(false));
            if *visible {
                let last = Rc::new(RefCell::new(known));
                spawn_local(poll(id, token, pause, *running, last, dispatcher, Rc::clone(&stop)));
            }
            move || stop.set(true)
        });
    }
    let onstop = {
        let dispatcher = watched.dispatcher();
        let token = link.as_ref().and_then(AgentLink::token);
        let id = props.info.id.clone();
        Callback::from(move |_: MouseEvent| {
            let (dispatcher, token, id) = (dispatcher.clone(), token.clone(), id.clone());
            spawn_local(async move {
                let path = format!("/api/watches/{id}");
                match api::delete(&path, token.clone()).await {
                    Ok(()) => {
                        if let Ok(info) = api::get::<WatchInfo>(&path, token).await {
                            dispatcher.dispatch(Heard::Info(Box::new(info)));
                        }
                    }
                    Err(error) => dispatcher.dispatch(Heard::Problem(error.to_string())),
                }
            });
        })
    };
    let info = &watched.info;
    html! {
        <li class="watch" data-watch={info.id.clone()} data-state={state_name(&info.state)}>
            <header class="watch-head">
                <h3 class="mono">{ &info.spec.check.target }</h3>
                <span class="muted">{ describe(info) }</span>
                <span class={classes!("watch-state", format!("watch-state--{}", state_name(&info.state)))}>
                    { state_text(&info.state) }
                </span>
                if running {
                    <button type="button" class="watch-stop cancel" onclick={onstop}>{ "Stop" }</button>
                }
            </header>
            <div class="watch-body">
                <WatchTimeline rounds={Rc::clone(&watched.rounds)} />
                <dl class="watch-stats">
                    <dt>{ "Uptime" }</dt>
                    <dd class="watch-uptime">{ format!("{:.1} %", info.summary.uptime_percent) }</dd>
                    <dt>{ "Rounds" }</dt>
                    <dd>{ info.summary.rounds }</dd>
                    <dt>{ "Changes" }</dt>
                    <dd>{ info.summary.change_count }</dd>
                    <dt>{ "Connect p50" }</dt>
                    <dd class="mono watch-p50">{ ms(info.summary.connect_ms.p50) }</dd>
                    <dt>{ "Connect p95" }</dt>
                    <dd class="mono">{ ms(info.summary.connect_ms.p95) }</dd>
                    <dt>{ "Connect max" }</dt>
                    <dd class="mono">{ ms(info.summary.connect_ms.max) }</dd>
                </dl>
            </div>
            if let Some(problem) = &watched.problem {
                <p class="notice" role="alert">{ problem }</p>
            }
        </li>
    }
}

/// Polls the watch: its rounds since the last one seen, then its summary and state; again
/// after `pause_ms` while it runs and until `stop`.
async fn poll(
    id: String,
    token: Option<String>,
    pause_ms: u32,
    running: bool,
    last: Rc<RefCell<Option<String>>>,
    dispatcher: UseReducerDispatcher<Watched>,
    stop: Rc<Cell<bool>>,
) {
    loop {
        let since = last.borrow().clone();
        let path = match &since {
            Some(at) => {
                format!("/api/watches/{id}/rounds?since={}&limit={MAX_ROUNDS}", api::encode(at))
            }
            None => format!("/api/watches/{id}/rounds?limit={MAX_ROUNDS}"),
        };
        if stop.get() {
            return;
        }
        match api::get::<WatchRounds>(&path, token.clone()).await {
            Ok(polled) => {
                if let Some(newest) = polled.rounds.last() {
                    *last.borrow_mut() = Some(newest.at.clone());
                }
                if !stop.get() {
                    dispatcher.dispatch(Heard::Rounds(polled.rounds));
                }
            }
            Err(error) => dispatcher.dispatch(Heard::Problem(error.to_string())),
        }
        if let Ok(info) = api::get::<WatchInfo>(&format!("/api/watches/{id}"), token.clone()).await
        {
            let ended = info.state != WatchState::Running;
            if !stop.get() {
                dispatcher.dispatch(Heard::Info(Box::new(info)));
            }
            if ended {
                return;
            }
        }
        if !running || stop.get() {
            return;
        }
        TimeoutFuture::new(pause_ms).await;
    }
}

fn state_name(state: &WatchState) -> &'static str {
    match state {
        WatchState::Running => "running",
        WatchState::Stopped { .. } => "stopped",
        WatchState::Finished { .. } => "finished",
    }
}

fn state_text(state: &WatchState) -> String {
    match state {
        WatchState::Running => "running".into(),
        WatchState::Stopped { at, by: Some(by) } => format!("stopped {} by {by}", short_time(at)),
        WatchState::Stopped { at, by: None } => format!("stopped {}", short_time(at)),
        WatchState::Finished { at } => format!("finished {}", short_time(at)),
    }
}

/// `every 10s · from a1, a2 · quorum 2/3 · webhook https://hooks…`
fn describe(info: &WatchInfo) -> String {
    let spec = &info.spec;
    let mut parts = vec![format!("every {}", spec.every)];
    if !spec.from.is_empty() {
        parts.push(format!("from {}", spec.from.join(", ")));
    }
    if let Some(quorum) = &spec.quorum {
        parts.push(format!("down when {quorum} fail"));
    }
    if let Some(webhook) = &spec.webhook {
        parts.push(format!("webhook {webhook}"));
    }
    if let Some(count) = spec.count {
        parts.push(format!("{count} rounds"));
    }
    parts.join(" · ")
}

/// A connect time as the stats show it (`0.4 ms`), or a dash before any round connected.
fn ms(value: Option<f64>) -> String {
    value.map_or("–".to_string(), |ms| format!("{ms:.1} ms"))
}
