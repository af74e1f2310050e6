//! [`FirewallRuleFinding`]: on the target host itself, the firewall rule whose counter moved with
//! the probe, the rules without counters that could have, or what reading them needs.

use whyrefused_shared::{FirewallMatch, FirewallRule};
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct FirewallRuleFindingProps {
    /// The probe's result.
    pub found: FirewallMatch,
}

/// The rule named with its place and text, exact or likely; else the candidates; else why not.
#[function_component(FirewallRuleFinding)]
pub fn firewall_rule_finding(props: &FirewallRuleFindingProps) -> Html {
    let found = &props.found;
    if let Some(why) = &found.unreadable {
        return html! { <p class="finding-line">{ format!("Rules not read: {why}.") }</p> };
    }
    let probes = found.probes;
    if let Some(rule) = found.matched.first() {
        let (sure, verb) = (if found.exact { "" } else { "most likely " }, action(rule));
        return html! {
            <>
                <p class="finding-line">
                    { format!("{} is {sure}{verb} by ", found.address) }
                    <span class="mono firewall-place">{ rule.place() }</span>
                    { ":" }
                </p>
                <pre class="mono firewall-text">{ rule.text.clone() }</pre>
                <p class="finding-line">{
                    if found.exact {
                        format!("Its counter moved by exactly the probe's one SYN ({probes} probe(s)).")
                    } else {
                        format!(
                            "Its counter moved by {} packets over {probes} probe(s): other traffic moved it too.",
                            rule.packets.unwrap_or_default()
                        )
                    }
                }</p>
            </>
        };
    }
    if !found.candidates.is_empty() {
        return html! {
            <>
                <p class="finding-line">
                    { "No counted rule moved. These rules have no counter and could match the probe:" }
                </p>
                <ul class="firewall-candidates">
                    { for found.candidates.iter().map(|rule| html! {
                        <li><span class="mono firewall-place">{ rule.place() }</span>{ ": " }
                            <span class="mono">{ rule.text.clone() }</span></li>
                    }) }
                </ul>
            </>
        };
    }
    let words = found.nothing_found();
    let mut first = words.chars();
    let sentence = first.next().map(|c| c.to_uppercase().collect::<String>()).unwrap_or_default();
    html! { <p class="finding-line">{ format!("{sentence}{}.", first.as_str()) }</p> }
}

fn action(rule: &FirewallRule) -> &'static str {
    match rule.action {
        whyrefused_shared::RuleAction::Reject => "rejected",
        _ => "dropped",
    }
}
