//! [`ScanDetails`]: what one scan found, below its card's title: the progress bar, the counts by
//! state, the port map and the list of the ports that are not closed. A scan run from several
//! vantage points shows one of these per vantage point.

use whyrefused_shared::{PortGroup, ScanReport};
use yew::prelude::*;

use crate::components::port_list::PortList;
use crate::components::port_map::PortMap;
use crate::components::request_error_note::RequestErrorNote;
use crate::format;
use crate::state::{Phase, Scan};

#[derive(Properties, PartialEq)]
pub struct ScanDetailsProps {
    /// The scan (or one vantage point's part of it, as a scan).
    pub scan: Scan,
}

/// The agent's refusal or problem if any, a note while it starts or when it ended early, then
/// the progress, the counts, the port map and the port list.
#[function_component(ScanDetails)]
pub fn scan_details(props: &ScanDetailsProps) -> Html {
    let scan = &props.scan;
    let report = &scan.report;
    let phase = scan.phase();
    let scanning = report.total > 0;
    html! {
        <>
            if let Some(error) = &scan.error {
                <RequestErrorNote error={error.clone()} />
            }
            if let Some(problem) = &report.problem {
                <p class="check-error" role="alert">{ problem }</p>
            }
            { outcome_note(scan, phase) }
            if scanning {
                { progress(report, phase) }
                { counts(report, phase) }
                if let Some(loss) = &report.loss {
                    <p class="scan-loss" role="note">{ loss.describe() }</p>
                }
                <PortMap report={report.clone()} running={phase == Phase::Running} />
                <PortList report={report.clone()} />
            }
        </>
    }
}

/// What to say while the scan has not started scanning, or when it ended early.
fn outcome_note(scan: &Scan, phase: Phase) -> Html {
    let report = &scan.report;
    let (class, text) = match phase {
        Phase::Running if report.started_at.is_none() => ("progress", "Sending to the agent…"),
        Phase::Running if report.dns.is_none() => ("progress", "Resolving the host…"),
        Phase::Running => return Html::default(),
        Phase::Cancelled => ("cancelled", "Cancelled: the ports below are those scanned before."),
        Phase::Stopped => ("stopped", "The agent is shutting down and stopped this scan."),
        Phase::Interrupted => (
            "interrupted",
            "The connection to the agent dropped while this scan ran: the ports below are those \
             reported before. Run it again once the page reconnects.",
        ),
        Phase::Completed | Phase::Failed => return Html::default(),
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

/// The bar with ports done over the total, the rate and the time left; once done, the duration.
fn progress(report: &ScanReport, phase: Phase) -> Html {
    let (done, total) = (report.done, report.total);
    let percent = if total == 0 { 0.0 } else { done as f64 * 100.0 / total as f64 };
    let mut parts = vec![format!("{} / {} ports", format::digits(done), format::digits(total))];
    match (phase, report.elapsed_us) {
        (Phase::Running, _) => {
            if report.rate_per_s > 0.0 {
                parts.push(format!("{} ports/s", format::digits(report.rate_per_s as u64)));
            }
            parts.push(match report.eta_ms {
                Some(ms) => format!("{} left", format::time_left(ms)),
                None => "starting…".to_owned(),
            });
        }
        (_, Some(us)) => {
            parts.push(format!("in {}", format::duration(us)));
            if us > 0 {
                let rate = report.counts.total() as f64 * 1e6 / us as f64;
                parts.push(format!("{} ports/s", format::digits(rate as u64)));
            }
        }
        (_, None) => {}
    }
    html! {
        <div class="scan-progress" data-complete={(total > 0 && done >= total).then_some("true")}>
            <div
                class="scan-bar"
                role="progressbar"
                aria-label="Ports scanned"
                aria-valuemin="0"
                aria-valuemax={total.to_string()}
                aria-valuenow={done.to_string()}
            >
                <span class="scan-bar-fill" style={format!("width: {percent:.2}%")}></span>
            </div>
            <p class="scan-progress-text num">{ parts.join(" · ") }</p>
        </div>
    }
}

/// How many ports ended in each group (the CLI's groups), and those not scanned yet.
fn counts(report: &ScanReport, phase: Phase) -> Html {
    let counts = report.group_counts();
    let groups = PortGroup::ALL
        .into_iter()
        .filter(|group| *group == PortGroup::Open || counts[group.index()] > 0);
    let left = report.total.saturating_sub(report.counts.total());
    let left_label = if phase == Phase::Running { "not scanned yet" } else { "not scanned" };
    html! {
        <ul class="scan-counts" aria-label="Ports by state">
            { for groups.map(|group| {
                let n = counts[group.index()];
                html! {
                    <li class={classes!("count", format!("count--{}", group.as_str()), format::severity_class(group.severity()))}
                        data-state={group.as_str()} data-count={n.to_string()}
                        title={group.meaning()}>
                        <span class="count-n num">{ format::digits(n) }</span>
                        <span class="count-label">{ group.label() }</span>
                    </li>
                }
            }) }
            if left > 0 {
                <li class="count count--pending" data-state="pending" data-count={left.to_string()}>
                    <span class="count-n num">{ format::digits(left) }</span>
                    <span class="count-label">{ left_label }</span>
                </li>
            }
        </ul>
    }
}
