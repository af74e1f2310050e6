//! [`VerdictPanel`]: the agent's conclusion in plain words, coloured by the kind of cause.

use whyrefused_shared::Verdict;
use yew::prelude::*;

use crate::format;

#[derive(Properties, PartialEq)]
pub struct VerdictPanelProps {
    /// The verdict to show.
    pub verdict: Verdict,
}

/// The cause's title and wire name, the one-sentence summary, and what to try next.
#[function_component(VerdictPanel)]
pub fn verdict_panel(props: &VerdictPanelProps) -> Html {
    let verdict = &props.verdict;
    let tone = format::cause_tone(verdict.cause);
    html! {
        <section class={classes!("verdict", format!("verdict--{tone}"))} aria-label="Verdict">
            <p class="verdict-title">
                <span class="verdict-icon" aria-hidden="true"></span>
                <strong>{ format::cause_title(verdict.cause) }</strong>
                <code class="verdict-cause">{ verdict.cause.as_str() }</code>
            </p>
            <p class="verdict-summary">{ &verdict.summary }</p>
            if !verdict.suggestions.is_empty() {
                <div class="suggestions">
                    <p class="suggestions-title">{ "What to try" }</p>
                    <ul>
                        { for verdict.suggestions.iter().map(|suggestion| html! {
                            <li>{ suggestion }</li>
                        }) }
                    </ul>
                </div>
            }
        </section>
    }
}
