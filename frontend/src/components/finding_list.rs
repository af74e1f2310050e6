//! [`FindingList`]: the extra probes' findings, each in a small framed section of its own.

use whyrefused_shared::Finding;
use yew::prelude::*;

use crate::components::after_connect_finding::AfterConnectFinding;
use crate::components::dns_detail_finding::DnsDetailFinding;
use crate::components::happy_eyeballs_finding::HappyEyeballsFinding;
use crate::components::liveness_finding::LivenessFinding;
use crate::components::local_drops_finding::LocalDropsFinding;
use crate::components::local_listeners_finding::LocalListenersFinding;
use crate::components::nearby_ports_finding::NearbyPortsFinding;

#[derive(Properties, PartialEq)]
pub struct FindingListProps {
    /// The findings, in the order their probes ended.
    pub findings: Vec<Finding>,
}

/// A grid of findings; each carries `data-probe` with the probe's wire name (`nearby_ports`).
#[function_component(FindingList)]
pub fn finding_list(props: &FindingListProps) -> Html {
    html! {
        <section class="findings" aria-label="Findings">
            <h3 class="section-title">{ "Findings" }</h3>
            <div class="finding-grid">
                { for props.findings.iter().map(finding) }
            </div>
        </section>
    }
}

fn finding(finding: &Finding) -> Html {
    let (title, wide, body) = match finding {
        Finding::DnsDetail(detail) => (
            "DNS servers asked directly",
            true,
            html! { <DnsDetailFinding detail={detail.clone()} /> },
        ),
        Finding::Liveness(liveness) => {
            ("Is the host up?", false, html! { <LivenessFinding liveness={liveness.clone()} /> })
        }
        Finding::NearbyPorts(nearby) => {
            ("Open ports nearby", false, html! { <NearbyPortsFinding nearby={nearby.clone()} /> })
        }
        Finding::LocalListeners(found) => (
            "Listeners on this host",
            false,
            html! { <LocalListenersFinding found={found.clone()} /> },
        ),
        Finding::AfterConnect(after) => (
            "After the connect",
            false,
            html! { <AfterConnectFinding after={(**after).clone()} /> },
        ),
        Finding::HappyEyeballs(eyeballs) => (
            "Happy Eyeballs",
            false,
            html! { <HappyEyeballsFinding eyeballs={eyeballs.clone()} /> },
        ),
        Finding::LocalDrops(drops) => {
            ("Dropped on this host", false, html! { <LocalDropsFinding drops={drops.clone()} /> })
        }
    };
    html! {
        <section
            class={classes!("finding", wide.then_some("finding--wide"))}
            data-probe={finding.name()}
        >
            <h4 class="finding-title">{ title }</h4>
            { body }
        </section>
    }
}
