//! [`PortMap`]: the whole range of a scan at a glance, one grid of cells per scanned address,
//! each cell coloured by the most notable state among its ports (see [`crate::map_cells`] for
//! which ports a cell covers).

use std::rc::Rc;

use whyrefused_shared::ScanReport;
use yew::prelude::*;

use crate::format;
use crate::map_cells::{MapCell, PortAxis, Tone, map_cells};

#[derive(Properties, PartialEq)]
pub struct PortMapProps {
    /// The scan so far.
    pub report: Rc<ScanReport>,
    /// Whether more results are on their way (unreported ports then read "not scanned yet").
    pub running: bool,
}

/// A grid per address (`.port-map .port-grid[data-address]`), a legend, and what the cells
/// span. Every cell says what it holds in its `title` and `aria-label`.
#[function_component(PortMap)]
pub fn port_map(props: &PortMapProps) -> Html {
    let report = &props.report;
    let axes: Vec<PortAxis> =
        report.addresses.iter().map(|address| PortAxis::for_address(report, *address)).collect();
    let several = report.addresses.len() > 1;
    html! {
        <section class="port-map" aria-label="Port map">
            <h3 class="section-title">
                { "Port map" }
                if let Some(axis) = axes.first() {
                    <span class="section-aside">{ aside(report, axis) }</span>
                }
            </h3>
            { for report.addresses.iter().zip(&axes).map(|(address, axis)| {
                let cells = map_cells(report, axis, *address);
                html! {
                    <figure class="port-grid-wrap" key={address.to_string()}>
                        if several {
                            <figcaption class="mono">{ address.to_string() }</figcaption>
                        }
                        <ol class="port-grid" data-address={address.to_string()}
                            aria-label={format!("Ports of {address}")}>
                            { for cells.iter().map(|cell| self::cell(cell, axis.is_exact(), props.running)) }
                        </ol>
                    </figure>
                }
            }) }
            <ul class="map-legend" aria-label="Colours">
                { for Tone::ALL.into_iter().map(|tone| html! {
                    <li><span class="swatch" data-tone={tone.as_str()}></span>{ tone.label() }</li>
                }) }
            </ul>
        </section>
    }
}

fn cell(cell: &MapCell, exact: bool, running: bool) -> Html {
    let description = cell.describe(exact, running);
    html! {
        <li class="cell" data-tone={cell.tone().as_str()} title={description.clone()}
            aria-label={description}></li>
    }
}

/// What one cell covers: `256 ports a cell, 1-65535`, or for a list the page cannot know, that
/// the map spans every port number.
fn aside(report: &ScanReport, axis: &PortAxis) -> String {
    let (first, last) = axis.bounds();
    if !axis.is_exact() {
        return format!(
            "{} is a list this page does not carry: until every port is reported, the cells span \
             every port number, {first}-{last}",
            report.ports
        );
    }
    let count = u64::from(report.port_count);
    let per_cell = count.div_ceil(u64::from(crate::map_cells::MAP_CELLS));
    let size = match per_cell {
        1 => "one port a cell".to_owned(),
        n if count % u64::from(crate::map_cells::MAP_CELLS) == 0 => format!("{n} ports a cell"),
        n => format!("up to {n} ports a cell"),
    };
    format!("{size}, {} ports from {first} to {last}", format::digits(count))
}

#[cfg(test)]
mod tests {
    use whyrefused_shared::{ConnectState, PortRun};

    use super::*;
    use crate::components::render;
    use crate::fixtures::result;

    #[test]
    fn a_full_range_is_256_described_cells_with_a_legend() {
        let address = "127.0.0.1".parse().unwrap();
        let report = ScanReport {
            ports: "1-65535".into(),
            port_count: 65_535,
            addresses: vec![address],
            results: vec![result(22, ConnectState::Open)],
            refused: vec![
                PortRun { address, first: 1, last: 21 },
                PortRun { address, first: 23, last: 65_535 },
            ],
            ..ScanReport::default()
        };
        let html = render::<PortMap>(PortMapProps { report: Rc::new(report), running: false });
        assert_eq!(html.matches(r#"class="cell""#).count(), 256);
        assert_eq!(
            html.matches(r#"data-tone="open""#).count(),
            2,
            "one cell and the legend's swatch"
        );
        assert!(html.contains(r#"title="ports 1-256: 1 open, 255 closed""#), "{html}");
        assert!(html.contains("up to 256 ports a cell, 65,535 ports from 1 to 65535"), "{html}");
        assert!(html.contains("not scanned (yet)"), "the legend: {html}");
    }

    #[test]
    fn a_shipped_list_says_what_the_cells_span() {
        let report = ScanReport {
            ports: "top100".into(),
            port_count: 100,
            addresses: vec!["::1".parse().unwrap(), "127.0.0.1".parse().unwrap()],
            ..ScanReport::default()
        };
        let html = render::<PortMap>(PortMapProps { report: Rc::new(report), running: true });
        assert!(html.contains("top100 is a list this page does not carry"), "{html}");
        assert_eq!(html.matches("<figcaption").count(), 2, "one grid per address: {html}");
        assert!(html.contains(r#"title="ports 1-256: none scanned yet""#), "{html}");
    }
}
