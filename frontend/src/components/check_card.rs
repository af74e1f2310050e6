//! [`CheckCard`]: one check, drawn from its report as each step arrives; a check run from several
//! vantage points shows their comparison on top and each one's findings side by side.

use yew::prelude::*;

use crate::components::card_actions::CardActions;
use crate::components::check_details::CheckDetails;
use crate::components::cross_verdict::CrossVerdictPanel;
use crate::components::request_error_note::RequestErrorNote;
use crate::components::vantage_result::VantageResult;
use crate::format;
use crate::hooks::AgentLink;
use crate::state::{Check, Phase};

#[derive(Properties, PartialEq)]
pub struct CheckCardProps {
    /// The check to show.
    pub check: Check,
    /// A stored result opened from a link: nothing on it runs anything (no Cancel, no "Scan
    /// nearby ports", no "Trace the path", no "Watch this").
    #[prop_or_default]
    pub readonly: bool,
}

/// The title with the status (and Cancel while it runs), then [`CheckDetails`]; with vantage
/// points, the cross-vantage verdict and one [`VantageResult`] per vantage point instead.
/// Carries `data-request-id`, `data-cause` (once a verdict arrived) and `data-done`.
#[function_component(CheckCard)]
pub fn check_card(props: &CheckCardProps) -> Html {
    let link = use_context::<AgentLink>();
    let check = &props.check;
    let report = &check.report;
    let id = check.id;
    let phase = check.phase();
    let title_id = format!("check-{}-title", id.0);
    let cause = report.verdict.as_ref().map(|verdict| verdict.cause.as_str());
    let oncancel = Callback::from(move |_: MouseEvent| {
        if let Some(link) = &link {
            link.cancel(id);
        }
    });
    let watchable = !props.readonly && phase == Phase::Completed && check.error.is_none();

    html! {
        <article
            class={classes!("check", format!("check--{}", phase.as_str()))}
            data-request-id={id.0.to_string()}
            data-phase={phase.as_str()}
            data-cause={cause}
            data-cross={check.cross.as_ref().map(|cross| cross.cause.as_str())}
            data-done={check.is_done().then_some("true")}
            aria-labelledby={title_id.clone()}
        >
            <header class="check-head">
                <h2 id={title_id} class="check-title mono">{ &check.request.target }</h2>
                <span class="check-meta">{ meta(check, phase, props.readonly) }</span>
                if phase == Phase::Running && !props.readonly {
                    <button
                        type="button"
                        class="cancel"
                        onclick={oncancel}
                        disabled={check.cancel_requested}
                        aria-label={format!("Cancel check {id}")}
                    >
                        { if check.cancel_requested { "Cancelling…" } else { "Cancel" } }
                    </button>
                }
            </header>
            if check.is_done() {
                <CardActions
                    stored={check.link_id().map(AttrValue::from)}
                    watch={watchable.then(|| check.request.clone())}
                    from={check.from.clone()}
                    readonly={props.readonly}
                />
            }
            if check.from.is_none() {
                <CheckDetails check={check.clone()} offer_nearby={!props.readonly} />
            } else {
                if let Some(error) = &check.error {
                    <RequestErrorNote error={error.clone()} />
                }
                if let Some(cross) = &check.cross {
                    <CrossVerdictPanel verdict={cross.clone()} />
                }
                <div class="vantage-results">
                    { for check.vantages.iter().map(|part| {
                        let at = check.at(part);
                        let cause = part.report.verdict.as_ref().map(|v| AttrValue::from(v.cause.as_str()));
                        html! {
                            <VantageResult
                                key={part.name.clone()}
                                name={part.name.clone()}
                                phase={at.phase()}
                                outcome={part.report.outcome}
                                {cause}
                            >
                                <CheckDetails check={at} offer_nearby={false} />
                            </VantageResult>
                        }
                    }) }
                </div>
            }
        </article>
    }
}

/// The short status beside the title: the id and how far the check got.
fn meta(check: &Check, phase: Phase, readonly: bool) -> String {
    let status = match phase {
        Phase::Running if check.cancel_requested => "cancelling…".to_owned(),
        Phase::Running => "running…".to_owned(),
        Phase::Completed => match check.report.elapsed_us {
            Some(us) => format!("done in {}", format::millis(us)),
            None => "done".to_owned(),
        },
        Phase::Cancelled => "cancelled".to_owned(),
        Phase::Stopped => "stopped".to_owned(),
        Phase::Failed => "not run".to_owned(),
        Phase::Interrupted => "interrupted".to_owned(),
    };
    // A stored result is named by its stored id; the page's own number means nothing there.
    let name = match (check.stored.as_deref(), readonly) {
        (Some(stored), true) => format!("result {stored}"),
        _ => check.id.to_string(),
    };
    match &check.from {
        Some(_) => format!("{name} · {status} · from {}", vantage_names(&check.vantages)),
        None => format!("{name} · {status}"),
    }
}

/// The names of a request's vantage points, for its status line.
pub fn vantage_names<R>(parts: &[crate::state::Part<R>]) -> String {
    let names: Vec<&str> = parts.iter().map(|part| part.name.as_str()).collect();
    if names.is_empty() { "every vantage point".to_owned() } else { names.join(", ") }
}
