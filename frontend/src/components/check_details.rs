//! [`CheckDetails`]: what one check found, below its card's title: the verdict, the rounds, the
//! target, the resolution, the address table, the phase waterfall and the findings. A check run
//! from several vantage points shows one of these per vantage point.

use whyrefused_shared::{Cause, CheckReport, ScanRequest};
use yew::prelude::*;

use crate::components::attempt_table::AttemptTable;
use crate::components::finding_list::FindingList;
use crate::components::http_response::HttpResponse;
use crate::components::path_view::TraceAction;
use crate::components::phase_waterfall::PhaseWaterfall;
use crate::components::request_error_note::RequestErrorNote;
use crate::components::resolution_summary::ResolutionSummary;
use crate::components::round_timeline::RoundTimeline;
use crate::components::target_summary::TargetSummary;
use crate::components::verdict_panel::VerdictPanel;
use crate::hooks::AgentLink;
use crate::markdown;
use crate::state::{Check, Phase};

#[derive(Properties, PartialEq)]
pub struct CheckDetailsProps {
    /// The check (or one vantage point's part of it, as a check).
    pub check: Check,
    /// Whether to offer "Scan nearby ports" after a verdict that calls for it (from this agent).
    #[prop_or(true)]
    pub offer_nearby: bool,
}

/// The verdict on top (with "Scan nearby ports" when a port nearby may be the one meant), then
/// the rounds of a retried check, the target as parsed, the resolution, the address table, the
/// phase waterfall and the findings.
#[function_component(CheckDetails)]
pub fn check_details(props: &CheckDetailsProps) -> Html {
    let link = use_context::<AgentLink>();
    let check = &props.check;
    let report = &check.report;
    let phase = check.phase();
    let nearby = nearby_scan(report).filter(|_| phase == Phase::Completed && props.offer_nearby);
    let onscan = {
        let nearby = nearby.clone();
        Callback::from(move |_: MouseEvent| {
            if let (Some(request), Some(link)) = (&nearby, &link) {
                link.scan(request.clone(), None);
            }
        })
    };
    let rows = check.address_rows();

    html! {
        <>
            if let Some(verdict) = &report.verdict {
                <VerdictPanel
                    verdict={verdict.clone()}
                    markdown={markdown::check_markdown(&check.request.target, report)}
                />
            }
            if let Some(http) = first_http(report) {
                <HttpResponse {http} />
            }
            if let Some(request) = &nearby {
                <p class="next-step">
                    <button type="button" class="scan-nearby" onclick={onscan}>
                        { "Scan nearby ports" }
                    </button>
                    <span class="muted">
                        { format!(
                            "ports {} and the 100 most common on {}",
                            request.ports.as_deref().unwrap_or_default().trim_end_matches(",top100"),
                            request.target,
                        ) }
                    </span>
                </p>
            }
            if phase == Phase::Completed && props.offer_nearby && report.path.is_none() {
                <TraceAction request={check.request.clone()} />
            }
            if let Some(planned) = check.rounds_planned() {
                <RoundTimeline
                    rounds={report.rounds.clone()}
                    {planned}
                    current={report.round.filter(|_| phase == Phase::Running)}
                />
            }
            { outcome_note(check, phase) }
            if let Some(error) = &check.error {
                <RequestErrorNote error={error.clone()} />
            }
            if let Some(target) = &report.target {
                <TargetSummary target={target.clone()} timeout_ms={report.timeout_ms} />
            }
            if let Some(resolution) = &report.dns {
                <ResolutionSummary resolution={resolution.clone()} />
            }
            if !rows.is_empty() {
                <AttemptTable {rows} />
            }
            if let Some(opened) = check.first_opened() {
                <PhaseWaterfall address={opened.address} phases={opened.phases} />
            }
            if !report.findings.is_empty() {
                <FindingList findings={report.findings.clone()} />
            }
        </>
    }
}

/// The HTTP exchange of the first connection that opened, once it is known.
fn first_http(report: &CheckReport) -> Option<whyrefused_shared::HttpReport> {
    report.findings.iter().find_map(|finding| match finding {
        whyrefused_shared::Finding::AfterConnect(after) => after.http.clone(),
        _ => None,
    })
}

/// What to say when a check ended without (or before) its verdict, or is still on its way to one.
fn outcome_note(check: &Check, phase: Phase) -> Html {
    let has_verdict = check.report.verdict.is_some();
    let (class, text) = match phase {
        Phase::Running if has_verdict => return Html::default(),
        Phase::Running => ("progress", progress_text(check)),
        Phase::Cancelled if !has_verdict => ("cancelled", "Cancelled before a verdict."),
        Phase::Stopped => ("stopped", "The agent is shutting down and stopped this check."),
        Phase::Interrupted => (
            "interrupted",
            "The connection to the agent dropped while this check ran, so its result is \
             unknown. Run it again once the page reconnects.",
        ),
        Phase::Completed | Phase::Cancelled | Phase::Failed => return Html::default(),
    };
    html! {
        <p class={classes!("outcome", format!("outcome--{class}"))}>
            if phase == Phase::Running {
                <span class="spinner" aria-hidden="true"></span>
            }
            { text }
        </p>
    }
}

fn progress_text(check: &Check) -> &'static str {
    let report = &check.report;
    if report.target.is_none() {
        "Sending to the agent…"
    } else if report.dns.is_none() {
        "Resolving the name…"
    } else {
        "Connecting…"
    }
}

/// The scan "Scan nearby ports" starts after a verdict that says the asked port does not answer
/// as hoped (closed, filtered, rejected, reset): the 100 ports on each side of it and the 100
/// most common ones, on the same host. `None` for other verdicts.
pub fn nearby_scan(report: &CheckReport) -> Option<ScanRequest> {
    let cause = report.verdict.as_ref()?.cause;
    let worth_it = matches!(
        cause,
        Cause::PortClosed
            | Cause::Filtered
            | Cause::FirewallReject
            | Cause::NoResponse
            | Cause::ConnectionReset
            | Cause::LocalFirewall
    );
    let target = report.target.as_ref().filter(|_| worth_it)?;
    let low = target.port.saturating_sub(NEARBY).max(1);
    let high = target.port.saturating_add(NEARBY);
    Some(ScanRequest::new(target.host.clone(), format!("{low}-{high},top100")))
}

/// How many ports on each side of the asked one "Scan nearby ports" covers.
const NEARBY: u16 = 100;

#[cfg(test)]
mod tests {
    use whyrefused_shared::{PortSource, TargetInfo, Verdict};

    use super::*;

    fn report(port: u16, cause: Cause) -> CheckReport {
        CheckReport {
            target: Some(TargetInfo {
                input: format!("127.0.0.1:{port}"),
                host: "127.0.0.1".into(),
                display_host: "127.0.0.1".into(),
                port,
                port_source: PortSource::Explicit,
                scheme: None,
                path: None,
            }),
            verdict: Some(Verdict {
                cause,
                summary: String::new(),
                suggestions: vec![],
                evidence: vec![],
                pattern: None,
            }),
            ..CheckReport::default()
        }
    }

    #[test]
    fn a_closed_filtered_or_rejected_port_offers_its_neighbours_and_the_common_ports() {
        let request = nearby_scan(&report(5432, Cause::PortClosed)).unwrap();
        assert_eq!(request, ScanRequest::new("127.0.0.1", "5332-5532,top100"));
        for cause in [Cause::Filtered, Cause::FirewallReject] {
            assert!(nearby_scan(&report(80, cause)).is_some(), "{cause:?}");
        }
    }

    #[test]
    fn the_range_stays_within_the_valid_ports() {
        let low = nearby_scan(&report(22, Cause::PortClosed)).unwrap();
        assert_eq!(low.ports.as_deref(), Some("1-122,top100"));
        let high = nearby_scan(&report(65_500, Cause::Filtered)).unwrap();
        assert_eq!(high.ports.as_deref(), Some("65400-65535,top100"));
    }

    #[test]
    fn a_reachable_port_or_a_dns_failure_offers_no_scan() {
        for cause in [Cause::Reachable, Cause::DnsNxdomain, Cause::TlsError] {
            assert_eq!(nearby_scan(&report(80, cause)), None, "{cause:?}");
        }
        assert_eq!(nearby_scan(&CheckReport::default()), None);
    }
}
