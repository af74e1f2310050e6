//! [`DnsDetailFinding`]: each configured nameserver's own answer, beside the system resolver's.

use whyrefused_shared::{DnsDetail, DnsRcode, NameserverAnswer};
use yew::prelude::*;

use crate::format;

#[derive(Properties, PartialEq)]
pub struct DnsDetailFindingProps {
    /// The probe's result.
    pub detail: DnsDetail,
}

/// An `/etc/hosts` override first (it wins over DNS), then one row per server and record type:
/// response code, the CNAME chain and addresses, and time.
#[function_component(DnsDetailFinding)]
pub fn dns_detail_finding(props: &DnsDetailFindingProps) -> Html {
    let detail = &props.detail;
    html! {
        <>
            <p class="finding-line">{ "Asked about " }<span class="mono">{ &detail.name }</span></p>
            if !detail.hosts_file.is_empty() {
                <p class="finding-line hosts-override">
                    <span class="pill pill--partial">{ "/etc/hosts" }</span>
                    { " gives " }
                    <span class="mono">{ join(&detail.hosts_file) }</span>
                    { ": this overrides DNS for every program that uses the system resolver." }
                </p>
            }
            if detail.answers.is_empty() {
                <p class="finding-line muted">{ "No nameserver is configured." }</p>
            } else {
                <table class="mini-table dns-answers">
                    <thead>
                        <tr>
                            <th scope="col">{ "Server" }</th>
                            <th scope="col">{ "Type" }</th>
                            <th scope="col">{ "Answer" }</th>
                            <th scope="col" class="num">{ "Time" }</th>
                        </tr>
                    </thead>
                    <tbody>
                        { for detail.answers.iter().map(row) }
                    </tbody>
                </table>
            }
        </>
    }
}

fn row(answer: &NameserverAnswer) -> Html {
    let ok = answer.rcode == DnsRcode::NoError;
    html! {
        <tr>
            <td class="mono">{ answer.server.to_string() }</td>
            <td class="mono">{ &answer.record }</td>
            <td>
                <span class={classes!("pill", if ok { "pill--ok" } else { "pill--bad" })}>
                    { format::rcode_label(answer.rcode) }
                </span>
                if !answer.cnames.is_empty() {
                    <span class="cname-chain mono">{ format!(" {} →", answer.cnames.join(" → ")) }</span>
                }
                { " " }
                if answer.addresses.is_empty() {
                    if ok {
                        <span class="muted">{ "no records" }</span>
                    }
                } else {
                    <span class="mono">{ join(&answer.addresses) }</span>
                }
                if let Some(detail) = &answer.detail {
                    <span class="muted">{ format!(" ({detail})") }</span>
                }
            </td>
            <td class="mono num time">{ format::millis(answer.elapsed_us) }</td>
        </tr>
    }
}

fn join(addresses: &[std::net::IpAddr]) -> String {
    addresses.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::render;

    fn answer(rcode: DnsRcode, addresses: &[&str], cnames: &[&str]) -> NameserverAnswer {
        NameserverAnswer {
            server: "192.0.2.53:53".parse().unwrap(),
            record: "A".into(),
            rcode,
            addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
            cnames: cnames.iter().map(|c| (*c).to_owned()).collect(),
            detail: None,
            elapsed_us: 1_500,
            tls: false,
        }
    }

    #[test]
    fn each_answer_shows_its_rcode_cname_chain_and_addresses_and_hosts_overrides_first() {
        let detail = DnsDetail {
            name: "www.example.test.".into(),
            answers: vec![
                answer(DnsRcode::NoError, &["192.0.2.7"], &["www.example.test.", "cdn.test."]),
                answer(DnsRcode::NxDomain, &[], &[]),
            ],
            hosts_file: vec!["192.0.2.99".parse().unwrap()],
            system: None,
        };
        let html = render::<DnsDetailFinding>(DnsDetailFindingProps { detail });
        let hosts = html.find("/etc/hosts").expect("the override");
        assert!(hosts < html.find("<table").unwrap(), "the override comes first: {html}");
        assert!(html.contains("192.0.2.99"), "{html}");
        assert!(html.contains("www.example.test. → cdn.test. →"), "{html}");
        assert!(html.contains("NOERROR") && html.contains("NXDOMAIN"), "{html}");
        assert!(html.contains("192.0.2.7") && html.contains("1.500 ms"), "{html}");
    }
}
