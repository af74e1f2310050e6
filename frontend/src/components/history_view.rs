//! [`HistoryView`]: every result the agent stored, newest first (`GET /api/results`), searched
//! by target as the person types (the query waits for a pause in the typing), each row
//! reopening the full card. Says plainly when the agent keeps no history, when the list is
//! empty, and when results could not be stored.

use gloo_timers::callback::Timeout;
use web_sys::HtmlInputElement;
use whyrefused_shared::ResultListing;
use yew::platform::spawn_local;
use yew::prelude::*;

use crate::api::{self, ApiError};
use crate::components::history_row::HistoryRow;
use crate::hooks::AgentLink;

/// How many results a page of the list holds; "Load more" asks for this many more.
pub const PAGE: usize = 100;

/// The most the list asks for (the API's own ceiling is higher; a page is not a spreadsheet).
const MOST: usize = 2_000;

/// How long the search waits after the last key before it asks.
const TYPING_PAUSE_MS: u32 = 300;

#[derive(Properties, PartialEq)]
pub struct HistoryViewProps {
    /// Whether the view is shown: it asks only then.
    pub visible: bool,
    /// Whether the page is connected to the agent: a token given since is used at once.
    pub connected: bool,
}

/// Where the list stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Listing {
    /// Asked, no answer yet.
    Loading,
    /// The answer.
    Loaded(ResultListing),
    /// Why there is nothing to show.
    Failed(ApiError),
}

/// The search box (`#history-search`), then [`HistoryList`].
#[function_component(HistoryView)]
pub fn history_view(props: &HistoryViewProps) -> Html {
    let link = use_context::<AgentLink>();
    let typed = use_state(String::new);
    let query = use_state(String::new);
    let limit = use_state(|| PAGE);
    let listing = use_state(|| Listing::Loading);

    {
        // The query follows the typing once it pauses.
        let (query, limit) = (query.clone(), limit.clone());
        use_effect_with((*typed).clone(), move |typed| {
            let typed = typed.trim().to_string();
            let pause = Timeout::new(TYPING_PAUSE_MS, move || {
                if *query != typed {
                    limit.set(PAGE);
                    query.set(typed);
                }
            });
            move || drop(pause)
        });
    }
    {
        let listing = listing.clone();
        let token = link.as_ref().and_then(AgentLink::token);
        let asked = ((*query).clone(), *limit, props.visible, props.connected);
        use_effect_with(asked, move |(query, limit, visible, _)| {
            if *visible {
                let path = match query.is_empty() {
                    true => format!("/api/results?limit={limit}"),
                    false => format!("/api/results?limit={limit}&target={}", api::encode(query)),
                };
                if !matches!(*listing, Listing::Loaded(_)) {
                    listing.set(Listing::Loading);
                }
                spawn_local(async move {
                    listing.set(match api::get::<ResultListing>(&path, token).await {
                        Ok(answer) => Listing::Loaded(answer),
                        Err(error) => Listing::Failed(error),
                    });
                });
            }
        });
    }

    let oninput = {
        let typed = typed.clone();
        Callback::from(move |event: InputEvent| {
            if let Some(input) = event.target_dyn_into::<HtmlInputElement>() {
                typed.set(input.value());
            }
        })
    };
    let onmore = {
        let limit = limit.clone();
        Callback::from(move |_: MouseEvent| limit.set((*limit + PAGE).min(MOST)))
    };
    let more = matches!(&*listing, Listing::Loaded(answer) if answer.results.len() >= *limit && *limit < MOST);

    html! {
        <section id="history" class="history" aria-label="History">
            <div class="field history-search">
                <label for="history-search">{ "Search by target" }</label>
                <input
                    id="history-search"
                    type="search"
                    placeholder="db.internal or db.internal:5432"
                    autocomplete="off"
                    spellcheck="false"
                    value={(*typed).clone()}
                    {oninput}
                />
            </div>
            <HistoryList listing={(*listing).clone()} query={(*query).clone()} />
            if more {
                <p class="next-step">
                    <button type="button" class="load-more" onclick={onmore}>{ "Load more" }</button>
                </p>
            }
        </section>
    }
}

#[derive(Properties, PartialEq)]
pub struct HistoryListProps {
    /// Where the list stands.
    pub listing: Listing,
    /// The target searched for, if any.
    #[prop_or_default]
    pub query: String,
}

/// The rows (`ol.history-list`), or a sentence for loading, empty, and every failure;
/// `data-state` says which (`loading`, `loaded`, `empty`, `off`, `error`).
#[function_component(HistoryList)]
pub fn history_list(props: &HistoryListProps) -> Html {
    match &props.listing {
        Listing::Loading => html! {
            <p class="history-state" data-state="loading"><span class="spinner" aria-hidden="true"></span>{ "Loading the history…" }</p>
        },
        Listing::Failed(ApiError::NotFound(message)) if message.contains("no history") => html! {
            <p class="history-state notice" data-state="off">
                { "This agent keeps no history: it runs with --no-history, so nothing it runs is stored." }
            </p>
        },
        Listing::Failed(error) => html! {
            <p class="history-state notice" role="alert" data-state="error">{ error.to_string() }</p>
        },
        Listing::Loaded(listing) => {
            let unstored = (listing.unstored > 0).then(|| {
                let why = listing
                    .unstored_reason
                    .clone()
                    .map(|r| format!(" (the last: {r})"))
                    .unwrap_or_default();
                format!(
                    "{} this agent ran since it started could not be stored{why}.",
                    crate::format::count(listing.unstored, "result", "results")
                )
            });
            html! {
                <>
                    if let Some(warning) = unstored {
                        <p class="history-unstored notice" role="alert">{ warning }</p>
                    }
                    if listing.results.is_empty() {
                        <p class="history-state empty" data-state="empty">
                            if props.query.is_empty() {
                                { "Nothing stored yet: every check and scan this agent runs appears here." }
                            } else {
                                { format!("Nothing stored for {}.", props.query) }
                            }
                        </p>
                    } else {
                        <ol class="history-list" data-state="loaded" aria-label="Stored results, newest first">
                            { for listing.results.iter().map(|summary| html! {
                                <HistoryRow key={summary.id.clone()} summary={summary.clone()} />
                            }) }
                        </ol>
                    }
                </>
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::history_row::tests::summary;
    use crate::components::render;

    fn listing(results: usize, unstored: u64) -> Listing {
        Listing::Loaded(ResultListing {
            results: (0..results)
                .map(|n| summary(&format!("id{n}"), "port_closed", None))
                .collect(),
            unstored,
            unstored_reason: (unstored > 0).then(|| "the disk is full".into()),
        })
    }

    #[test]
    fn stored_results_are_listed_in_the_order_given_newest_first() {
        let html = render::<HistoryList>(HistoryListProps {
            listing: listing(3, 0),
            query: String::new(),
        });
        let first = html.find("#/r/id0").unwrap();
        let last = html.find("#/r/id2").unwrap();
        assert!(first < last, "{html}");
        assert!(!html.contains("could not be stored"), "{html}");
    }

    #[test]
    fn results_that_could_not_be_stored_are_said_with_why() {
        let html = render::<HistoryList>(HistoryListProps {
            listing: listing(1, 2),
            query: String::new(),
        });
        assert!(html.contains("2 results this agent ran since it started could not be stored (the last: the disk is full)."), "{html}");
    }

    #[test]
    fn empty_loading_off_and_refused_each_say_so() {
        let render_of = |listing: Listing, query: &str| {
            render::<HistoryList>(HistoryListProps { listing, query: query.into() })
        };
        assert!(render_of(listing(0, 0), "").contains(r#"data-state="empty""#));
        assert!(render_of(listing(0, 0), "db:1").contains("Nothing stored for db:1."));
        assert!(render_of(Listing::Loading, "").contains("Loading the history"));
        let off = render_of(
            Listing::Failed(ApiError::NotFound(
                "this agent keeps no history (it runs with --no-history)".into(),
            )),
            "",
        );
        assert!(off.contains("This agent keeps no history"), "{off}");
        let refused = render_of(Listing::Failed(ApiError::Unauthorized), "");
        assert!(refused.contains("needs its token"), "{refused}");
    }
}
