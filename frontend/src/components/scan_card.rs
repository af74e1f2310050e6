//! [`ScanCard`]: one port scan, drawn from its report as each batch arrives; a scan run from
//! several vantage points shows their comparison on top and each one's ports side by side.

use yew::prelude::*;

use crate::components::card_actions::CardActions;
use crate::components::check_card::vantage_names;
use crate::components::cross_verdict::CrossVerdictPanel;
use crate::components::request_error_note::RequestErrorNote;
use crate::components::scan_details::ScanDetails;
use crate::components::vantage_result::VantageResult;
use crate::format;
use crate::hooks::AgentLink;
use crate::state::{Phase, Scan};

#[derive(Properties, PartialEq)]
pub struct ScanCardProps {
    /// The scan to show.
    pub scan: Scan,
    /// A stored result opened from a link: nothing on it runs anything.
    #[prop_or_default]
    pub readonly: bool,
}

/// The host and spec with the status (and Cancel while it runs), then [`ScanDetails`]; with
/// vantage points, the cross-vantage verdict and one [`VantageResult`] per vantage point instead.
/// Carries `data-request-id`, `data-phase` and `data-done`.
#[function_component(ScanCard)]
pub fn scan_card(props: &ScanCardProps) -> Html {
    let link = use_context::<AgentLink>();
    let scan = &props.scan;
    let id = scan.id;
    let phase = scan.phase();
    let title_id = format!("scan-{}-title", id.0);
    let oncancel = Callback::from(move |_: MouseEvent| {
        if let Some(link) = &link {
            link.cancel(id);
        }
    });

    html! {
        <article
            class={classes!("scan", format!("scan--{}", phase.as_str()))}
            data-request-id={id.0.to_string()}
            data-phase={phase.as_str()}
            data-cross={scan.cross.as_ref().map(|cross| cross.cause.as_str())}
            data-done={scan.is_done().then_some("true")}
            // Batches arrive 20 times a second: screen readers wait for the end to announce it.
            aria-busy={(phase == Phase::Running).then_some("true")}
            aria-labelledby={title_id.clone()}
        >
            <header class="check-head">
                <h2 id={title_id} class="check-title">
                    <span class="kind">{ "Scan " }</span>
                    <span class="mono">{ scan.target() }</span>
                    <span class="kind">{ " ports " }</span>
                    <span class="mono">{ scan.ports() }</span>
                </h2>
                <span class="check-meta">{ meta(scan, phase, props.readonly) }</span>
                if phase == Phase::Running && !props.readonly {
                    <button
                        type="button"
                        class="cancel"
                        onclick={oncancel}
                        disabled={scan.cancel_requested}
                        aria-label={format!("Cancel scan {id}")}
                    >
                        { if scan.cancel_requested { "Cancelling…" } else { "Cancel" } }
                    </button>
                }
            </header>
            if scan.is_done() {
                <CardActions
                    stored={scan.link_id().map(AttrValue::from)}
                    readonly={props.readonly}
                />
            }
            if scan.from.is_none() {
                <ScanDetails scan={scan.clone()} />
            } else {
                if let Some(error) = &scan.error {
                    <RequestErrorNote error={error.clone()} />
                }
                if let Some(cross) = &scan.cross {
                    <CrossVerdictPanel verdict={cross.clone()} />
                }
                <div class="vantage-results">
                    { for scan.vantages.iter().map(|part| {
                        let at = scan.at(part);
                        html! {
                            <VantageResult
                                key={part.name.clone()}
                                name={part.name.clone()}
                                phase={at.phase()}
                                outcome={part.report.outcome}
                            >
                                <ScanDetails scan={at} />
                            </VantageResult>
                        }
                    }) }
                </div>
            }
        </article>
    }
}

/// The short status beside the title: the id and how far the scan got.
fn meta(scan: &Scan, phase: Phase, readonly: bool) -> String {
    let status = match phase {
        Phase::Running if scan.cancel_requested => "cancelling…".to_owned(),
        Phase::Running => "scanning…".to_owned(),
        Phase::Completed => match scan.report.elapsed_us {
            Some(us) => format!("done in {}", format::duration(us)),
            None => "done".to_owned(),
        },
        Phase::Cancelled => "cancelled".to_owned(),
        Phase::Stopped => "stopped".to_owned(),
        Phase::Failed => "not run".to_owned(),
        Phase::Interrupted => "interrupted".to_owned(),
    };
    // A stored result is named by its stored id; the page's own number means nothing there.
    let name = match (scan.stored.as_deref(), readonly) {
        (Some(stored), true) => format!("result {stored}"),
        _ => scan.id.to_string(),
    };
    match &scan.from {
        Some(_) => format!("{name} · {status} · from {}", vantage_names(&scan.vantages)),
        None => format!("{name} · {status}"),
    }
}
