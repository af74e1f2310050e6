//! [`VantageResult`]: one vantage point's section of a card run from several places, headed by
//! its name.

use whyrefused_shared::Outcome;
use yew::prelude::*;

use crate::state::Phase;

#[derive(Properties, PartialEq)]
pub struct VantageResultProps {
    /// The vantage point's name.
    pub name: AttrValue,
    /// Where its part stands.
    pub phase: Phase,
    /// How its part ended, once its `done` came.
    #[prop_or_default]
    pub outcome: Option<Outcome>,
    /// A check's verdict there (its wire name).
    #[prop_or_default]
    pub cause: Option<AttrValue>,
    /// What it found ([`crate::components::check_details::CheckDetails`] or the scan's).
    #[prop_or_default]
    pub children: Html,
}

/// The name and the status, a plain line when the vantage point went offline or refused its
/// part, then what it found. Carries `data-vantage`, `data-phase`, `data-outcome` and (for a
/// check with a verdict) `data-cause`.
#[function_component(VantageResult)]
pub fn vantage_result(props: &VantageResultProps) -> Html {
    let status = match (props.phase, props.outcome) {
        (_, Some(Outcome::VantageOffline)) => "offline",
        (_, Some(Outcome::VantageTimeout)) => "timed out",
        (_, Some(Outcome::Rejected)) => "refused",
        (Phase::Running, _) => "running…",
        (Phase::Completed, _) => "done",
        (Phase::Cancelled, _) => "cancelled",
        (Phase::Stopped, _) => "stopped",
        (Phase::Failed, _) => "not run",
        (Phase::Interrupted, _) => "interrupted",
    };
    let note = match props.outcome {
        Some(Outcome::VantageOffline) => Some(format!(
            "{} went offline (or was offline) before it finished: no result from there.",
            props.name
        )),
        Some(Outcome::VantageTimeout) => Some(format!(
            "{} fell silent about this request (nothing for longer than its longest wait plus \
             10 s): the hub gave up on it, no result from there.",
            props.name
        )),
        Some(Outcome::Rejected) => Some(format!("{} refused its part of the request.", props.name)),
        _ => None,
    };
    html! {
        <section
            class={classes!("vantage-result", format!("vantage-result--{}", props.phase.as_str()))}
            data-vantage={props.name.clone()}
            data-phase={props.phase.as_str()}
            data-outcome={props.outcome.map(Outcome::as_str)}
            data-cause={props.cause.clone()}
            aria-label={format!("From {}", props.name)}
        >
            <header class="vantage-result-head">
                <h3 class="vantage-result-name mono">{ &props.name }</h3>
                <span class="check-meta">{ status }</span>
            </header>
            if let Some(note) = note {
                <p class="outcome outcome--offline" role="status">{ note }</p>
            }
            { props.children.clone() }
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::render;

    #[test]
    fn a_vantage_point_that_went_offline_says_so_plainly() {
        let html = render::<VantageResult>(VantageResultProps {
            name: "a1".into(),
            phase: Phase::Failed,
            outcome: Some(Outcome::VantageOffline),
            cause: None,
            children: Html::default(),
        });
        assert!(html.contains(r#"data-vantage="a1""#), "{html}");
        assert!(html.contains(r#"data-outcome="vantage_offline""#), "{html}");
        assert!(html.contains("a1 went offline"), "{html}");
    }

    #[test]
    fn a_vantage_point_the_hub_gave_up_on_says_it_timed_out() {
        let html = render::<VantageResult>(VantageResultProps {
            name: "a1".into(),
            phase: Phase::Failed,
            outcome: Some(Outcome::VantageTimeout),
            cause: None,
            children: Html::default(),
        });
        assert!(html.contains(r#"data-outcome="vantage_timeout""#), "{html}");
        assert!(html.contains("timed out") && html.contains("a1 fell silent"), "{html}");
    }

    #[test]
    fn a_finished_vantage_point_carries_its_cause() {
        let html = render::<VantageResult>(VantageResultProps {
            name: "local".into(),
            phase: Phase::Completed,
            outcome: Some(Outcome::Completed),
            cause: Some("reachable".into()),
            children: html! { <p class="inside">{ "details" }</p> },
        });
        assert!(html.contains(r#"data-cause="reachable""#), "{html}");
        assert!(html.contains("details") && !html.contains("offline"), "{html}");
    }
}
