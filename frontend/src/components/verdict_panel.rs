//! [`VerdictPanel`]: the agent's conclusion in plain words, coloured by the kind of cause, with
//! the evidence behind it and what to try next.

use whyrefused_shared::Verdict;
use yew::prelude::*;

use crate::components::copy_markdown::CopyMarkdown;
use crate::components::evidence_list::EvidenceList;
use crate::format;

#[derive(Properties, PartialEq)]
pub struct VerdictPanelProps {
    /// The verdict to show.
    pub verdict: Verdict,
    /// The whole check as Markdown, for the copy button.
    pub markdown: AttrValue,
}

/// The headline (the cause's title and wire name), the one-sentence summary, the retry pattern,
/// the evidence, the suggestions, and "Copy as Markdown" at the foot.
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
            if let Some(pattern) = verdict.pattern {
                <p class={classes!("pattern", format!("pattern--{}", format::pattern_name(pattern)))}
                    data-pattern={format::pattern_name(pattern)}>
                    <span class="pattern-label">{ "Over the rounds: " }</span>
                    <strong>{ format::pattern_name(pattern) }</strong>
                    { format!(", {}", format::pattern_meaning(pattern)) }
                </p>
            }
            if !verdict.evidence.is_empty() {
                <EvidenceList evidence={verdict.evidence.clone()} />
            }
            if !verdict.suggestions.is_empty() {
                <div class="suggestions">
                    <h3 class="verdict-subtitle">{ "What to try" }</h3>
                    <ul>
                        { for verdict.suggestions.iter().map(|suggestion| html! {
                            <li>{ suggestion }</li>
                        }) }
                    </ul>
                </div>
            }
            <CopyMarkdown markdown={props.markdown.clone()} />
        </section>
    }
}
