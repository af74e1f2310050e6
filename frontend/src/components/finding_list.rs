//! [`FindingList`]: the extra probes' findings, each in a small framed section of its own.

use whyrefused_shared::Finding;
use yew::prelude::*;

use crate::components::after_connect_finding::AfterConnectFinding;
use crate::components::dns_detail_finding::DnsDetailFinding;
use crate::components::firewall_rule_finding::FirewallRuleFinding;
use crate::components::happy_eyeballs_finding::HappyEyeballsFinding;
use crate::components::liveness_finding::LivenessFinding;
use crate::components::local_drops_finding::LocalDropsFinding;
use crate::components::local_listeners_finding::LocalListenersFinding;
use crate::components::loss_finding::LossFinding;
use crate::components::mtu_probe_finding::MtuProbeFinding;
use crate::components::nearby_ports_finding::NearbyPortsFinding;
use crate::components::path_view::PathView;

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
        Finding::Loss(loss) => {
            ("Answered tries", false, html! { <LossFinding loss={loss.clone()} /> })
        }
        Finding::LargeSend(sent) => (
            "Large send",
            false,
            html! {
                <p class="finding-line">{ format!(
                    "{} of {} bytes sent to {} acknowledged within {}.",
                    sent.acknowledged_bytes.min(sent.bytes), sent.bytes, sent.address,
                    crate::format::millis(sent.elapsed_us)
                ) }</p>
            },
        ),
        Finding::MtuProbe(probe) => (
            "Smaller packets (MSS probe)",
            false,
            html! { <MtuProbeFinding probe={probe.clone()} /> },
        ),
        Finding::Path(path) => {
            ("Where the packets go", true, html! { <PathView path={(**path).clone()} /> })
        }
        Finding::Service(service) => (
            "What answers",
            false,
            html! {
                <p class="finding-line">{ service_line(service) }</p>
            },
        ),
        Finding::LocalPorts(held) => (
            "Local ports",
            false,
            html! {
                <p class="finding-line">{ format!(
                    "{} of the {} local ports ({}-{}) are held to {} ({} established, {} in TIME_WAIT){}.",
                    held.to_destination(), held.size(), held.range.0, held.range.1,
                    held.destination, held.established, held.time_wait,
                    held.top_owner.as_ref().map(|top| format!(
                        "; pid {} ({}) holds {}", top.pid, top.process, top.sockets
                    )).unwrap_or_default()
                ) }</p>
            },
        ),
        Finding::HostPressure(pressure) => (
            "This host's tables",
            false,
            html! {
                <p class="finding-line">{ format!(
                    "Conntrack: {} tracked of {}, {} dropped during the check; SYN cookies sent: {} ({} invalid).",
                    pressure.conntrack_count.map_or("?".into(), |c| c.to_string()),
                    pressure.conntrack_max.map_or("?".into(), |m| m.to_string()),
                    pressure.conntrack_drops, pressure.syncookies_sent, pressure.syncookies_failed
                ) }</p>
            },
        ),
        Finding::FirewallRule(found) => (
            "This host's firewall rule",
            true,
            html! { <FirewallRuleFinding found={found.clone()} /> },
        ),
        Finding::Proxy(proxy) => (
            "Proxy",
            false,
            html! {
                <>
                    <p class="finding-line">{ proxy_line(proxy) }</p>
                    if let Some(line) = proxy.disagreement() {
                        <p class="finding-line">{ line }</p>
                    }
                </>
            },
        ),
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

/// Where the check went through the proxy variables, and what the proxy answered.
fn proxy_line(proxy: &whyrefused_shared::ProxyFinding) -> String {
    let way = format!("Checked {}", proxy.summary());
    let answer = match (&proxy.request, &proxy.status_line, &proxy.error, proxy.proxy_cause) {
        (_, _, _, Some(cause)) => {
            format!(": the proxy itself is not reachable ({}).", cause.as_str())
        }
        (Some(request), Some(line), _, _) => format!(": {request} answered \"{line}\"."),
        (Some(request), None, Some(error), _) => format!(": {request}: {error}."),
        _ => ".".to_string(),
    };
    way + &answer
}

/// What answers on the port, and what was expected when it differs.
fn service_line(service: &whyrefused_shared::ServiceIdentity) -> String {
    let found = format!(
        "{} answers on {}: {}.",
        service.protocol.label(),
        service.address,
        service.describe()
    );
    match service.expected.filter(|_| service.is_wrong_service()) {
        Some(expected) => format!("{found} Expected {}.", expected.label()),
        None => found,
    }
}

#[cfg(test)]
mod tests {
    use whyrefused_shared::{
        AfterConnect, DnsDetail, EchoState, Family, HappyEyeballs, Liveness, LocalDrops,
        LocalListeners, NearbyPorts, Phases,
    };

    use super::*;
    use crate::components::render;

    #[test]
    fn every_finding_gets_a_frame_named_after_its_probe() {
        let address = "127.0.0.1".parse().unwrap();
        let findings = vec![
            Finding::DnsDetail(DnsDetail {
                name: "x.".into(),
                answers: vec![],
                hosts_file: vec![],
                system: None,
            }),
            Finding::Liveness(Liveness {
                address,
                ports: vec![],
                echo: EchoState::NoReply,
                echo_rtt_us: None,
                echo_detail: None,
                host_up: false,
                port_loss: None,
                echo_loss: None,
            }),
            Finding::NearbyPorts(NearbyPorts {
                address,
                probed: 20,
                open: vec![8080, 8081],
                from_listeners: 0,
            }),
            Finding::LocalListeners(LocalListeners {
                port: 80,
                listeners: vec![whyrefused_shared::Listener {
                    address: "127.0.0.1:80".parse().unwrap(),
                    pid: Some(4321),
                    process: Some("postgres".into()),
                    command: None,
                    queue: None,
                    owner_state: None,
                }],
                owners_hidden: None,
                listen_overflows: None,
            }),
            Finding::AfterConnect(Box::new(AfterConnect {
                address: "127.0.0.1:80".parse().unwrap(),
                early_close: None,
                banner: None,
                tls: None,
                http: None,
                phases: Phases::default(),
            })),
            Finding::HappyEyeballs(HappyEyeballs {
                order: vec!["::1".parse().unwrap(), address],
                winner: Some(address),
                family: Some(Family::Ipv4),
                connected_after_us: Some(250_300),
            }),
            Finding::LocalDrops(LocalDrops {
                address: "127.0.0.1:80".parse().unwrap(),
                failed_retransmissions: 2,
            }),
            Finding::Service(whyrefused_shared::ServiceIdentity {
                address: "127.0.0.1:5432".parse().unwrap(),
                protocol: whyrefused_shared::Protocol::Http,
                detail: Some("Server: nginx/1.22.1".into()),
                received_bytes: None,
                expected: Some(whyrefused_shared::Protocol::Postgresql),
            }),
            Finding::FirewallRule(whyrefused_shared::FirewallMatch {
                address: "127.0.0.1:81".parse().unwrap(),
                matched: vec![whyrefused_shared::FirewallRule {
                    tool: "nft".into(),
                    family: "inet".into(),
                    table: "filter".into(),
                    chain: "input".into(),
                    position: 3,
                    policy: false,
                    handle: Some(9),
                    text: "tcp dport 81 counter drop".into(),
                    action: whyrefused_shared::RuleAction::Drop,
                    packets: Some(1),
                }],
                exact: true,
                probes: 1,
                candidates: vec![],
                rules_read: 4,
                unreadable: None,
                elapsed_us: 3000,
            }),
        ];
        let names: Vec<&str> = findings.iter().map(Finding::name).collect();
        let html = render::<FindingList>(FindingListProps { findings });
        for name in names {
            assert!(html.contains(&format!(r#"data-probe="{name}""#)), "{name} in {html}");
        }
        assert!(
            html.contains(r#"data-probe="dns_detail" class="finding finding--wide""#),
            "{html}"
        );
        for expected in [
            "8080",
            "8081",
            "4321",
            "postgres",
            "winner",
            "250.300 ms",
            "2 retransmissions",
            "OUTPUT chain",
            "HTTP answers on 127.0.0.1:5432: HTTP (Server: nginx/1.22.1). Expected PostgreSQL.",
            "is dropped by",
            "inet filter input rule 3",
            "tcp dport 81 counter drop",
        ] {
            assert!(html.contains(expected), "{expected} in {html}");
        }
    }
}
