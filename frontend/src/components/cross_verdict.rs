//! [`CrossVerdictPanel`]: the comparison of what each vantage point saw, on top of a card run
//! from several places.

use whyrefused_shared::{CrossCause, CrossVerdict, LOCAL_VANTAGE, RouterRule, RuleAction};
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
            if let Some(router) = &verdict.router_rule {
                { router_rule(router) }
            }
            if !verdict.details.is_empty() {
                <ul class="cross-details">
                    { for verdict.details.iter().map(|detail| html! { <li>{ detail }</li> }) }
                </ul>
            }
        </section>
    }
}

/// The forwarding rule of a router on the way that counted the failing places' SYNs: its place
/// and text as its tool writes them, and why it is only likely.
fn router_rule(router: &RouterRule) -> Html {
    let Some(rule) = router.found.matched.first() else { return html! {} };
    let on = match router.router.as_str() {
        LOCAL_VANTAGE => "the hub".to_string(),
        name => name.to_string(),
    };
    let verb = if rule.action == RuleAction::Reject { "rejected" } else { "dropped" };
    html! {
        <div class="cross-router-rule" data-router={router.router.clone()}>
            <p class="finding-line">
                { format!("On the way, {on} likely {verb} them with ") }
                <span class="mono firewall-place">{ rule.place() }</span>
                { ":" }
            </p>
            <pre class="mono firewall-text">{ rule.text.clone() }</pre>
            <p class="finding-line">{ format!(
                "It counted {} packet(s) to {} while the vantage points probed through it \
                 (a router cannot repeat their SYNs to be sure).",
                rule.packets.unwrap_or_default(),
                router.found.address,
            ) }</p>
        </div>
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
            router_rule: None,
        };
        let html = render::<CrossVerdictPanel>(CrossVerdictPanelProps { verdict });
        assert!(html.contains(r#"data-cause="firewall_between""#), "{html}");
        assert!(html.contains("open from local but refused from a1"), "{html}");
        assert_eq!(html.matches("<li>").count(), 2, "{html}");
        assert!(html.contains("verdict--bad"), "{html}");
    }

    #[test]
    fn a_routers_forward_rule_shows_its_place_text_and_count() {
        let rule = whyrefused_shared::FirewallRule {
            tool: "nft".into(),
            family: "inet".into(),
            table: "filter".into(),
            chain: "forward".into(),
            position: 1,
            policy: false,
            handle: Some(2),
            text: "ip saddr 10.7.2.2 tcp dport 80 counter drop".into(),
            action: RuleAction::Drop,
            packets: Some(3),
        };
        let found = whyrefused_shared::FirewallMatch {
            address: "10.7.3.2:80".parse().unwrap(),
            matched: vec![rule],
            exact: false,
            probes: 0,
            candidates: vec![],
            rules_read: 3,
            unreadable: None,
            elapsed_us: 900,
        };
        let verdict = CrossVerdict {
            cause: CrossCause::FirewallBetween,
            summary: "a2 is dropped by the hub's `inet filter forward` rule 1.".into(),
            details: vec![],
            vantages: vec![],
            router_rule: Some(RouterRule { router: LOCAL_VANTAGE.into(), found }),
        };
        let html = render::<CrossVerdictPanel>(CrossVerdictPanelProps { verdict });
        assert!(html.contains("the hub likely dropped them"), "{html}");
        assert!(html.contains("inet filter forward rule 1"), "{html}");
        assert!(html.contains("ip saddr 10.7.2.2 tcp dport 80 counter drop"), "{html}");
        assert!(html.contains("counted 3 packet(s) to 10.7.3.2:80"), "{html}");
    }
}
