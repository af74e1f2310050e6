//! [`EvidenceList`]: the probes behind a verdict, each with what it found and how long it took.

use whyrefused_shared::Evidence;
use yew::prelude::*;

use crate::format;

#[derive(Properties, PartialEq)]
pub struct EvidenceListProps {
    /// The verdict's evidence, in the agent's order.
    pub evidence: Vec<Evidence>,
}

/// One line per probe: its name, its result, and its time on the right (when it is one timed
/// probe). On narrow screens the result goes under the probe's name.
#[function_component(EvidenceList)]
pub fn evidence_list(props: &EvidenceListProps) -> Html {
    html! {
        <div class="evidence">
            <h3 class="verdict-subtitle">{ "Evidence" }</h3>
            <ul>
                { for props.evidence.iter().map(item) }
            </ul>
        </div>
    }
}

fn item(evidence: &Evidence) -> Html {
    html! {
        <li>
            <span class="evidence-probe mono">{ &evidence.probe }</span>
            <span class="evidence-result">{ &evidence.result }</span>
            <span class="evidence-time mono time">
                { evidence.elapsed_us.map(format::millis).unwrap_or_default() }
            </span>
        </li>
    }
}
