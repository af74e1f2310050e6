//! [`CrossVerdictPanel`]: the comparison of what each vantage point saw, on top of a card run
//! from several places.

use whyrefused_shared::{CrossCause, CrossVerdict};
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct CrossVerdictPanelProps {
    /// The hub's comparison (`vantages_done`).
    pub verdict: CrossVerdict,
}

/// The pattern's title and wire name, the summary naming the places, and the facts behind it a
/// line each. Carries `data-cause`.
#[function_component(CrossVerdictPanel)]
pub fn cross_verdict_panel(props: &CrossVerdictPanelProps) -> Html {
    let verdict = &props.verdict;
    html! {
        <section
            class={classes!("verdict", "cross-verdict", format!("verdict--{}", tone(verdict.cause)))}
            data-cause={verdict.cause.as_str()}
            aria-label="Across vantage points"
        >
            <p class="verdict-title">
                <span class="verdict-icon" aria-hidden="true"></span>
                <strong>{ title(verdict.cause) }</strong>
                <code class="verdict-cause">{ verdict.cause.as_str() }</code>
            </p>
            <p class="verdict-summary">{ &verdict.summary }</p>
            if !verdict.details.is_empty() {
                <ul class="cross-details">
                    { for verdict.details.iter().map(|detail| html! { <li>{ detail }</li> }) }
                </ul>
            }
        </section>
    }
}

/// The headline for each pattern.
fn title(cause: CrossCause) -> &'static str {
    match cause {
        CrossCause::Same => "The same from everywhere",
        CrossCause::FirewallBetween => "A firewall between the places",
        CrossCause::BoundToLoopback => "Bound to loopback",
        CrossCause::SplitHorizonDns => "Split-horizon DNS",
        CrossCause::Differs => "Fails differently from each place",
        CrossCause::Inconclusive => "Nothing to compare",
        CrossCause::Unknown => "A pattern this page does not know (a newer agent's)",
    }
}

/// The colour family, as for a check's verdict (`ok`, `bad`, `dns`, `grey`).
fn tone(cause: CrossCause) -> &'static str {
    match cause {
        CrossCause::Same | CrossCause::Inconclusive | CrossCause::Unknown => "grey",
        CrossCause::FirewallBetween | CrossCause::BoundToLoopback | CrossCause::Differs => "bad",
        CrossCause::SplitHorizonDns => "dns",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::render;

    #[test]
    fn the_comparison_shows_its_cause_summary_and_details() {
        let verdict = CrossVerdict {
            cause: CrossCause::FirewallBetween,
            summary: "db:5432 is open from local but refused from a1.".into(),
            details: vec!["local: open".into(), "a1: port_closed".into()],
            vantages: vec![],
        };
        let html = render::<CrossVerdictPanel>(CrossVerdictPanelProps { verdict });
        assert!(html.contains(r#"data-cause="firewall_between""#), "{html}");
        assert!(html.contains("open from local but refused from a1"), "{html}");
        assert_eq!(html.matches("<li>").count(), 2, "{html}");
        assert!(html.contains("verdict--bad"), "{html}");
    }
}
