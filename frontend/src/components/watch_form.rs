//! [`WatchForm`]: "Watch this" on a finished check: how often (a preset or a duration such as
//! `30s`), an optional webhook for each change, and with several vantage points the quorum;
//! sent as `POST /api/watches`. The watch runs inside the agent from then on, page or no page.

use web_sys::HtmlInputElement;
use whyrefused_shared::{CheckRequest, WatchInfo, WatchSpec};
use yew::platform::spawn_local;
use yew::prelude::*;

use crate::api;
use crate::hooks::AgentLink;
use crate::route::Route;
use crate::timeline::duration_ms;

/// The intervals offered with one press.
const PRESETS: [&str; 3] = ["10s", "1m", "5m"];

#[derive(Properties, PartialEq)]
pub struct WatchFormProps {
    /// The check each round runs.
    pub request: CheckRequest,
    /// The vantage points it ran from (`None`: this agent).
    #[prop_or_default]
    pub from: Option<Vec<String>>,
    /// Called when the person closes the form.
    #[prop_or_default]
    pub onclose: Callback<()>,
}

/// What the last submit led to.
#[derive(Debug, Clone, PartialEq)]
enum Sent {
    Idle,
    Sending,
    Made(Box<WatchInfo>),
    Failed(String),
}

/// `form.watch-form` with `input.watch-every`, `input.watch-webhook`, `input.watch-quorum`
/// (with several vantage points) and `button.watch-start`.
#[function_component(WatchForm)]
pub fn watch_form(props: &WatchFormProps) -> Html {
    let link = use_context::<AgentLink>();
    let every = use_state(|| "1m".to_string());
    let webhook_ref = use_node_ref();
    let quorum_ref = use_node_ref();
    let sent = use_state(|| Sent::Idle);
    let several =
        props.from.as_ref().is_some_and(|from| from.len() > 1 || from.iter().any(|n| n == "all"));

    let onevery = {
        let every = every.clone();
        Callback::from(move |event: InputEvent| {
            if let Some(input) = event.target_dyn_into::<HtmlInputElement>() {
                every.set(input.value());
            }
        })
    };
    let onsubmit = {
        let (every, sent) = (every.clone(), sent.clone());
        let (webhook_ref, quorum_ref) = (webhook_ref.clone(), quorum_ref.clone());
        let (request, from) = (props.request.clone(), props.from.clone());
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            let text = |node: &NodeRef| {
                node.cast::<HtmlInputElement>()
                    .map(|i| i.value().trim().to_string())
                    .filter(|v| !v.is_empty())
            };
            let interval = every.trim().to_string();
            if duration_ms(&interval).is_none() {
                sent.set(Sent::Failed(format!(
                    "'{interval}' is not an interval: write a number and a unit, such as 10s, 1m or 5m"
                )));
                return;
            }
            let spec = WatchSpec {
                check: CheckRequest { retries: None, ..request.clone() },
                every: interval,
                count: None,
                from: from.clone().unwrap_or_default(),
                quorum: text(&quorum_ref),
                webhook: text(&webhook_ref),
            };
            let token = link.as_ref().and_then(AgentLink::token);
            let sent = sent.clone();
            sent.set(Sent::Sending);
            spawn_local(async move {
                sent.set(match api::post::<_, WatchInfo>("/api/watches", &spec, token).await {
                    Ok(info) => Sent::Made(Box::new(info)),
                    Err(error) => Sent::Failed(error.to_string()),
                });
            });
        })
    };
    let onclose = {
        let onclose = props.onclose.clone();
        Callback::from(move |_: MouseEvent| onclose.emit(()))
    };

    if let Sent::Made(info) = &*sent {
        return html! {
            <p class="watch-made" role="status" data-watch={info.id.clone()}>
                { format!("Watching {} every {}: ", info.spec.check.target, info.spec.every) }
                <a href={Route::Watches.fragment()}>{ "see its timeline under Watches" }</a>
                { ". It keeps running when this page closes." }
            </p>
        };
    }
    html! {
        <form class="watch-form" {onsubmit} novalidate=true aria-label="Watch this target">
            <div class="field">
                <label>{ "Every" }</label>
                <div class="watch-presets" role="group" aria-label="Interval presets">
                    { for PRESETS.iter().map(|preset| {
                        let every = every.clone();
                        let pressed = *every == *preset;
                        html! {
                            <button
                                type="button"
                                class={classes!("preset", pressed.then_some("preset--on"))}
                                aria-pressed={if pressed { "true" } else { "false" }}
                                onclick={Callback::from(move |_: MouseEvent| every.set((*preset).to_string()))}
                            >
                                { *preset }
                            </button>
                        }
                    }) }
                    <input
                        class="watch-every mono"
                        type="text"
                        value={(*every).clone()}
                        oninput={onevery}
                        aria-label="Interval, such as 30s or 10m"
                        size="6"
                    />
                </div>
            </div>
            <div class="field">
                <label>{ "Webhook (optional)" }</label>
                <input
                    ref={webhook_ref}
                    class="watch-webhook"
                    type="url"
                    placeholder="https://hooks.slack.com/… : each change is POSTed here"
                    autocomplete="off"
                />
            </div>
            if several {
                <div class="field">
                    <label>{ "Down when (quorum)" }</label>
                    <input ref={quorum_ref} class="watch-quorum mono" type="text" placeholder="2/3" size="6" />
                </div>
            }
            <p class="watch-buttons">
                <button type="submit" class="watch-start" disabled={*sent == Sent::Sending}>
                    { if *sent == Sent::Sending { "Starting…" } else { "Start watching" } }
                </button>
                <button type="button" class="watch-cancel" onclick={onclose}>{ "Close" }</button>
            </p>
            if let Sent::Failed(problem) = &*sent {
                <p class="form-error" role="alert">{ problem }</p>
            }
        </form>
    }
}
