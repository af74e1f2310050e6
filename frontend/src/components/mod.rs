//! The page's components, one per file.

pub mod after_connect_finding;
pub mod attempt_table;
pub mod card_actions;
pub mod check_card;
pub mod check_details;
pub mod check_form;
pub mod connection_status;
pub mod copy_markdown;
pub mod cross_verdict;
pub mod dns_detail_finding;
pub mod evidence_list;
pub mod explain_form;
pub mod finding_list;
pub mod firewall_rule_finding;
pub mod form_submit;
pub mod happy_eyeballs_finding;
pub mod history_row;
pub mod history_view;
pub mod http_response;
pub mod liveness_finding;
pub mod local_drops_finding;
pub mod local_listeners_finding;
pub mod loss_finding;
pub mod mode_switch;
pub mod mtu_probe_finding;
pub mod nearby_ports_finding;
pub mod number_field;
pub mod page_footer;
pub mod path_view;
pub mod phase_waterfall;
pub mod port_list;
pub mod port_map;
pub mod request_error_note;
pub mod resolution_summary;
pub mod result_view;
pub mod round_timeline;
pub mod scan_card;
pub mod scan_details;
pub mod scan_form;
pub mod target_summary;
pub mod token_form;
pub mod vantage_panel;
pub mod vantage_result;
pub mod verdict_panel;
pub mod watch_form;
pub mod watch_timeline;
pub mod watches_view;

/// Renders a component to HTML natively, for unit tests of what it shows.
#[cfg(test)]
pub fn render<C>(props: C::Properties) -> String
where
    C: yew::BaseComponent,
{
    let renderer = yew::LocalServerRenderer::<C>::with_props(props).hydratable(false);
    futures::executor::block_on(renderer.render())
}
