//! [`PortList`]: the ports of a scan that are not closed (open, rejected, filtered, unreachable
//! …), grouped by state as `whyrefused scan` groups them, with the service usually found there,
//! the ICMP error or errno, the tries and the time; under an open port, what answers there and
//! the process listening behind it (on the agent's own host), as the CLI says them.

use std::net::SocketAddr;
use std::rc::Rc;

use whyrefused_shared::{PortGroup, PortResult, ScanReport};
use yew::prelude::*;

use crate::format;

/// The most rows shown per group: a filtered host can leave 65,535 silent ports, and the page
/// stays quick by listing the first ones and counting the rest.
pub const ROWS_PER_GROUP: usize = 200;

#[derive(Properties, PartialEq)]
pub struct PortListProps {
    /// The scan so far.
    pub report: Rc<ScanReport>,
}

/// A heading and a table per group; each row carries `data-port`, `data-address` and
/// `data-state` (the group).
#[function_component(PortList)]
pub fn port_list(props: &PortListProps) -> Html {
    let report = &props.report;
    let several = report.addresses.len() > 1;
    let groups: Vec<(PortGroup, Vec<&PortResult>)> = PortGroup::ALL
        .into_iter()
        .filter(|group| *group != PortGroup::Closed)
        .map(|group| (group, report.in_group(group).collect()))
        .filter(|(_, results): &(PortGroup, Vec<&PortResult>)| !results.is_empty())
        .collect();
    html! {
        <section class="port-list" aria-label="Ports that are not closed">
            <h3 class="section-title">{ "Ports that are not closed" }</h3>
            if groups.is_empty() {
                <p class="port-list-empty muted">
                    { if report.is_done() { "None: every port scanned is closed." } else { "None so far." } }
                </p>
            }
            { for groups.iter().map(|(group, results)| group_table(report, *group, results, several)) }
        </section>
    }
}

fn group_table(
    report: &ScanReport,
    group: PortGroup,
    results: &[&PortResult],
    several: bool,
) -> Html {
    let hidden = results.len().saturating_sub(ROWS_PER_GROUP);
    html! {
        <div class="port-group" data-state={group.as_str()}>
            <h4 class="port-group-title">
                <span class={classes!("state", format!("state--{}", group.as_str()), format::severity_class(group.severity()))}>{ group.label() }</span>
                <span class="muted">
                    { format!(" {} · {}", format::count(results.len() as u64, "port", "ports"), group.meaning()) }
                </span>
            </h4>
            <table class="port-table">
                <thead>
                    <tr>
                        <th scope="col" class="col-port">{ "Port" }</th>
                        <th scope="col" class="col-service">{ "Service" }</th>
                        <th scope="col" class="col-detail">{ "Detail" }</th>
                        <th scope="col" class="col-tries num">{ "Tries" }</th>
                        <th scope="col" class="col-time num">{ "Time" }</th>
                    </tr>
                </thead>
                <tbody>
                    { for results.iter().take(ROWS_PER_GROUP).map(|result| row(report, result, group, several)) }
                </tbody>
            </table>
            if hidden > 0 {
                <p class="help">
                    { format!("and {} more: ", format::digits(hidden as u64)) }
                    <code>{ "whyrefused scan --json" }</code>{ " lists them all" }
                </p>
            }
        </div>
    }
}

fn row(report: &ScanReport, result: &PortResult, group: PortGroup, several: bool) -> Html {
    let place = match (several, result.address) {
        (false, _) => result.port.to_string(),
        (true, std::net::IpAddr::V4(v4)) => format!("{v4}:{}", result.port),
        (true, std::net::IpAddr::V6(v6)) => format!("[{v6}]:{}", result.port),
    };
    let detail = match (&result.icmp, &result.errno) {
        (Some(icmp), _) => format!("ICMP {}", format::icmp_label(icmp)),
        (None, Some(errno)) => errno.name.clone(),
        (None, None) => String::new(),
    };
    html! {
        <tr data-port={result.port.to_string()} data-address={result.address.to_string()}
            data-state={group.as_str()}>
            <td class="port mono">{ place }</td>
            <td class="service">{ result.service.as_deref().unwrap_or("—") }</td>
            <td class="detail">
                { detail }
                { behind(report, SocketAddr::new(result.address, result.port)) }
            </td>
            <td class={classes!("tries", "num", (result.tries == 1).then_some("tries--once"))}>
                { result.tries }
            </td>
            <td class="time num mono">{ format::millis(result.elapsed_us) }</td>
        </tr>
    }
}

/// What the scan found behind an open port: what answers there, and who listens.
fn behind(report: &ScanReport, address: SocketAddr) -> Html {
    let service = report.service_behind(address).map(|s| format!("answers: {}", s.describe()));
    let owner = report.owner_words(address);
    html! {
        <>
            if let Some(service) = service {
                <span class="port-found port-service">{ service }</span>
            }
            if let Some(owner) = owner {
                <span class="port-found port-owner mono">{ owner }</span>
            }
        </>
    }
}

#[cfg(test)]
mod tests {
    use whyrefused_shared::ConnectState;

    use super::*;
    use crate::components::render;
    use crate::fixtures::{rejected, result};

    fn html(results: Vec<PortResult>) -> String {
        let report = ScanReport {
            addresses: vec!["127.0.0.1".parse().unwrap()],
            results,
            ..ScanReport::default()
        };
        render::<PortList>(PortListProps { report: Rc::new(report) })
    }

    #[test]
    fn ports_are_grouped_as_the_cli_groups_them_with_service_icmp_and_tries() {
        let ssh = PortResult { service: Some("ssh".into()), ..result(22, ConnectState::Open) };
        let silent = PortResult { tries: 2, ..result(8080, ConnectState::Timeout) };
        let html = html(vec![ssh, rejected(25), silent]);
        let open = html.find(r#"data-state="open""#).unwrap();
        let rejected_at = html.find(r#"data-state="rejected""#).unwrap();
        let filtered = html.find(r#"data-state="filtered""#).unwrap();
        assert!(open < rejected_at && rejected_at < filtered, "the CLI's order: {html}");
        assert!(html.contains(r#"<tr data-port="22""#), "{html}");
        assert!(html.contains("ssh"), "{html}");
        assert!(html.contains("ICMP port unreachable (type 3, code 3) from 127.0.0.1"), "{html}");
        assert!(html.contains(r#"<td class="tries num">2</td>"#), "{html}");
        assert!(html.contains(r#"<td class="tries num tries--once">1</td>"#), "{html}");
    }

    #[test]
    fn a_long_group_is_cut_and_counted() {
        let silent = (1..=250).map(|port| result(port, ConnectState::Timeout)).collect();
        let html = html(silent);
        assert_eq!(html.matches("<tr data-port=").count(), ROWS_PER_GROUP);
        assert!(html.contains("and 50 more"), "{html}");
        assert!(html.contains("250 ports"), "{html}");
    }

    #[test]
    fn an_open_port_of_the_agents_host_names_its_process_or_why_not() {
        let listener = whyrefused_shared::Listener {
            address: "0.0.0.0:22".parse().unwrap(),
            pid: Some(812),
            process: Some("sshd".into()),
            command: None,
            queue: None,
            owner_state: None,
        };
        let report = ScanReport {
            addresses: vec!["127.0.0.1".parse().unwrap()],
            results: vec![result(22, ConnectState::Open)],
            found: whyrefused_shared::OpenPortsFound {
                listeners: vec![listener.clone()],
                ..Default::default()
            },
            ..ScanReport::default()
        };
        let html = render::<PortList>(PortListProps { report: Rc::new(report.clone()) });
        assert!(html.contains("listening on 0.0.0.0:22: pid 812 (sshd)"), "{html}");
        let hidden = ScanReport {
            found: whyrefused_shared::OpenPortsFound {
                listeners: vec![whyrefused_shared::Listener {
                    pid: None,
                    process: None,
                    ..listener
                }],
                services: vec![],
                owners_hidden: Some(whyrefused_shared::OWNERS_HIDDEN_FROM_REMOTE.into()),
            },
            ..report
        };
        let html = render::<PortList>(PortListProps { report: Rc::new(hidden) });
        assert!(html.contains(whyrefused_shared::OWNERS_HIDDEN_FROM_REMOTE), "{html}");
    }
}
