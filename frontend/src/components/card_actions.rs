//! [`CardActions`]: what can be done with a finished card: "Copy link" (the page's address
//! with `#/r/ID`, never the token: whoever opens it needs their own) and, on a check the page
//! ran, "Watch this", which opens the [`WatchForm`].

use std::rc::Rc;

use gloo_timers::future::TimeoutFuture;
use whyrefused_shared::CheckRequest;
use yew::platform::spawn_local;
use yew::prelude::*;

use crate::clipboard;
use crate::components::watch_form::WatchForm;
use crate::route::{self, Route};

/// How long "Copied" stays on the button.
const COPIED_FOR_MS: u32 = 4_000;

#[derive(Properties, PartialEq)]
pub struct CardActionsProps {
    /// The id the result is stored under, once the agent said it (no link before).
    #[prop_or_default]
    pub stored: Option<AttrValue>,
    /// The check "Watch this" repeats; `None` where a watch is not offered.
    #[prop_or_default]
    pub watch: Option<CheckRequest>,
    /// The vantage points the check ran from, which the watch runs from too.
    #[prop_or_default]
    pub from: Option<Vec<String>>,
    /// A stored result opened from a link: its link is offered, nothing else.
    #[prop_or_default]
    pub readonly: bool,
}

/// What the last press of "Copy link" led to.
#[derive(Debug, Clone, PartialEq)]
enum Copy {
    Idle,
    Copied,
    /// The clipboard refused: the link is shown to copy by hand.
    Shown,
}

/// `div.card-actions` with `button.copy-link` (`data-link` holds the link) and
/// `button.watch-this`.
#[function_component(CardActions)]
pub fn card_actions(props: &CardActionsProps) -> Html {
    let copy = use_state(|| Copy::Idle);
    let watching = use_state(|| false);
    let presses = use_mut_ref(|| 0_u32);
    // The fragment is rendered; the whole link (the page's origin first) is made on a press.
    let link = props.stored.as_ref().map(|id| Route::Result(id.to_string()));
    let shown = use_state(String::new);

    let oncopy = {
        let (copy, link, shown) = (copy.clone(), link.clone(), shown.clone());
        Callback::from(move |_: MouseEvent| {
            let Some(link) = link.as_ref().map(route::link_to) else { return };
            shown.set(link.clone());
            let press = {
                let mut presses = presses.borrow_mut();
                *presses += 1;
                *presses
            };
            let (copy, presses) = (copy.clone(), Rc::clone(&presses));
            spawn_local(async move {
                match clipboard::copy_text(&link).await {
                    Ok(()) => {
                        copy.set(Copy::Copied);
                        TimeoutFuture::new(COPIED_FOR_MS).await;
                        if *presses.borrow() == press {
                            copy.set(Copy::Idle);
                        }
                    }
                    Err(_) => copy.set(Copy::Shown),
                }
            });
        })
    };
    let ontoggle = {
        let watching = watching.clone();
        Callback::from(move |_: MouseEvent| watching.set(!*watching))
    };
    let onclose = {
        let watching = watching.clone();
        Callback::from(move |()| watching.set(false))
    };

    if link.is_none() && (props.watch.is_none() || props.readonly) {
        return Html::default();
    }
    html! {
        <div class="card-actions">
            if let Some(link) = &link {
                <button
                    type="button"
                    class={classes!("copy-link", (*copy == Copy::Copied).then_some("copy-link--copied"))}
                    data-link={link.fragment()}
                    title="A link to this result; whoever opens it needs the agent's token, if it has one"
                    onclick={oncopy}
                >
                    { if *copy == Copy::Copied { "Link copied" } else { "Copy link" } }
                </button>
                if *copy == Copy::Shown {
                    <input class="link-text mono" readonly=true value={(*shown).clone()} aria-label="Link to this result" />
                }
            }
            if let (Some(request), false) = (&props.watch, props.readonly) {
                <button
                    type="button"
                    class="watch-this"
                    aria-expanded={if *watching { "true" } else { "false" }}
                    onclick={ontoggle}
                >
                    { "Watch this" }
                </button>
                if *watching {
                    <WatchForm request={request.clone()} from={props.from.clone()} {onclose} />
                }
            }
        </div>
    }
}
