//! [`MtuProbeFinding`]: a connection that opened and then stalled, repeated with smaller
//! segments: one row per MSS tried (completed or stalled, and how long), and the path MTU the
//! largest working MSS implies; when the routers told, how far full-size packets get along the
//! path.

use whyrefused_shared::{MssTry, MtuProbe, SizedHop, SizedHops};
use yew::prelude::*;

use crate::format;

#[derive(Properties, PartialEq)]
pub struct MtuProbeFindingProps {
    /// The probe's result.
    pub probe: MtuProbe,
}

/// The conclusion in one line, then the table of tries in the order they ran; each row carries
/// `data-mss` and `data-completed`.
#[function_component(MtuProbeFinding)]
pub fn mtu_probe_finding(props: &MtuProbeFindingProps) -> Html {
    let probe = &props.probe;
    html! {
        <>
            <p class="finding-line">{ summary(probe) }</p>
            <table class="mss-table">
                <thead>
                    <tr>
                        <th scope="col" class="num">{ "MSS" }</th>
                        <th scope="col">{ probe.exchange.clone() }</th>
                        <th scope="col" class="num">{ "Time" }</th>
                    </tr>
                </thead>
                <tbody>
                    { for probe.tries.iter().map(row) }
                </tbody>
            </table>
            { probe.hops.as_ref().map(hops_table).unwrap_or_default() }
        </>
    }
}

/// The routers, nearest first: whether small and full-size packets reached each. Each row
/// carries `data-ttl` and `data-large`.
fn hops_table(hops: &SizedHops) -> Html {
    let full_size = format!("Full-size ({} bytes)", hops.segment_bytes);
    html! {
        <table class="mss-table hops-table">
            <thead>
                <tr>
                    <th scope="col">{ "Router" }</th>
                    <th scope="col">{ "Small packets" }</th>
                    <th scope="col">{ full_size }</th>
                </tr>
            </thead>
            <tbody>
                { for hops.hops.iter().map(hop_row) }
            </tbody>
        </table>
    }
}

fn hop_row(hop: &SizedHop) -> Html {
    let reached = |yes: bool| match yes {
        true => html! { <span class="state severity--good">{ "reach it" }</span> },
        false => html! { <span class="state">{ "never arrive" }</span> },
    };
    html! {
        <tr data-ttl={hop.ttl.to_string()} data-large={hop.large_expired.to_string()}>
            <td class="mono">{ hop.describe() }</td>
            <td>{ reached(hop.small_expired) }</td>
            <td>{ reached(hop.large_expired) }</td>
        </tr>
    }
}

fn summary(probe: &MtuProbe) -> String {
    match (probe.default_stalled(), probe.implied_mtu()) {
        (true, Some(mtu)) => format!(
            "Small segments get through where full-size ones stall: the path's MTU is about \
             {mtu} bytes."
        ),
        (_, None) => {
            "Even small segments stalled: the size of the packets is not the problem.".to_owned()
        }
        (false, Some(_)) => {
            "The default MSS completed when tried again: the stall passed.".to_owned()
        }
    }
}

fn row(attempt: &MssTry) -> Html {
    let mss = match attempt.default {
        true => format!("{} (default)", attempt.mss),
        false => attempt.mss.to_string(),
    };
    let outcome = if attempt.completed { "completed" } else { "stalled" };
    let class = if attempt.completed { "state severity--good" } else { "state" };
    html! {
        <tr data-mss={attempt.mss.to_string()} data-completed={attempt.completed.to_string()}>
            <td class="num mono">{ mss }</td>
            <td><span class={class}>{ outcome }</span></td>
            <td class="num">{ format::millis(attempt.elapsed_us) }</td>
        </tr>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::render;

    fn attempt(mss: u32, default: bool, completed: bool) -> MssTry {
        MssTry {
            mss,
            default,
            completed,
            elapsed_us: 2500,
            bytes_received: None,
            out_of_order: None,
        }
    }

    #[test]
    fn the_table_lists_each_mss_and_the_summary_the_implied_mtu() {
        let probe = MtuProbe {
            address: "10.0.6.2:9443".parse().unwrap(),
            exchange: "TLS handshake".into(),
            tries: vec![
                attempt(536, false, true),
                attempt(1460, true, false),
                attempt(1252, false, true),
            ],
            header_bytes: 40,
            hops: None,
        };
        let html = render::<MtuProbeFinding>(MtuProbeFindingProps { probe });
        assert!(
            html.contains("the path&#x27;s MTU is about 1292 bytes")
                || html.contains("the path's MTU is about 1292 bytes"),
            "{html}"
        );
        assert!(html.contains(r#"data-mss="1460" data-completed="false""#), "{html}");
        assert!(html.contains("1460 (default)"), "{html}");
        assert_eq!(html.matches(r#"data-completed="true""#).count(), 2);
        assert!(!html.contains("hops-table"), "no routers measured, no table: {html}");
    }

    #[test]
    fn the_routers_table_shows_where_full_size_packets_stop() {
        let router = |ttl: u8, large_expired: bool| SizedHop {
            ttl,
            address: Some(format!("10.0.{ttl}.254").parse().unwrap()),
            name: None,
            small_expired: true,
            large_expired,
        };
        let probe = MtuProbe {
            address: "10.0.6.2:9443".parse().unwrap(),
            exchange: "TLS handshake".into(),
            tries: vec![attempt(536, false, true), attempt(1460, true, false)],
            header_bytes: 40,
            hops: Some(SizedHops {
                segment_bytes: 1448,
                target_ttl: Some(3),
                hops: vec![router(1, true), router(2, false)],
            }),
        };
        let html = render::<MtuProbeFinding>(MtuProbeFindingProps { probe });
        assert!(html.contains("Full-size (1448 bytes)"), "{html}");
        assert!(html.contains(r#"data-ttl="1" data-large="true""#), "{html}");
        assert!(html.contains(r#"data-ttl="2" data-large="false""#), "{html}");
        assert!(html.contains("hop 2 (10.0.2.254)"), "{html}");
    }
}
