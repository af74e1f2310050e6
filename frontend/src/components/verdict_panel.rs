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

#[cfg(test)]
mod tests {
    use whyrefused_shared::{Cause, Evidence, Pattern};

    use super::*;
    use crate::components::render;

    #[test]
    fn the_card_shows_evidence_with_times_suggestions_the_pattern_and_the_copy_button() {
        let verdict = Verdict {
            cause: Cause::FirewallReject,
            summary: "A firewall rejected the connection.".into(),
            suggestions: vec!["Allow TCP port 80.".into()],
            evidence: vec![
                Evidence {
                    probe: "connect 127.0.0.1:80".into(),
                    result: "refused".into(),
                    elapsed_us: Some(112),
                },
                Evidence { probe: "note".into(), result: "untimed".into(), elapsed_us: None },
            ],
            pattern: Some(Pattern::Intermittent),
        };
        let html = render::<VerdictPanel>(VerdictPanelProps { verdict, markdown: "# x".into() });
        assert!(html.contains("Rejected by a firewall") && html.contains("firewall_reject"));
        assert_eq!(html.matches("<li>").count(), 3, "two evidence items, one suggestion: {html}");
        assert!(html.contains("0.112 ms") && html.contains("Allow TCP port 80."), "{html}");
        assert!(html.contains(r#"data-pattern="intermittent""#), "{html}");
        assert!(html.contains("Copy as Markdown"), "{html}");
    }
}
