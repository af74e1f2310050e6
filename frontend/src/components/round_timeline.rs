//! [`RoundTimeline`]: a retried check's rounds: which one runs now, and how each finished one
//! ended.

use whyrefused_shared::Round;
use yew::prelude::*;

use crate::format;

#[derive(Properties, PartialEq)]
pub struct RoundTimelineProps {
    /// The finished rounds, in order.
    pub rounds: Vec<Round>,
    /// How many rounds the check runs.
    pub planned: u32,
    /// The round running now, while the check runs.
    pub current: Option<u32>,
}

/// "Round N of M" while a round runs, then one entry per finished round: its number, when it
/// started, its cause (with the HTTP status the service answered) and how long it took.
#[function_component(RoundTimeline)]
pub fn round_timeline(props: &RoundTimelineProps) -> Html {
    html! {
        <section class="rounds" aria-label="Rounds">
            <h3 class="section-title">
                { "Rounds " }
                <span class="muted section-aside">{ format!("{} planned · start times in UTC", props.planned) }</span>
            </h3>
            if let Some(current) = props.current {
                <p class="round-progress" role="status" data-round={current.to_string()}>
                    <span class="spinner" aria-hidden="true"></span>
                    { format!("round {current} of {}", props.planned) }
                </p>
            }
            if !props.rounds.is_empty() {
                <ol class="round-list">
                    { for props.rounds.iter().map(round) }
                </ol>
            }
        </section>
    }
}

fn round(round: &Round) -> Html {
    let tone = format::cause_tone(round.cause);
    html! {
        <li class={classes!("round", format!("round--{tone}"))} data-cause={round.cause.as_str()}>
            <span class="round-number">{ format!("#{}", round.round) }</span>
            <span class="round-at mono">{ clock_time(&round.at.0) }</span>
            <span class="round-cause">
                <span class="round-dot" aria-hidden="true"></span>
                { format::cause_title(round.cause) }
                if let Some(status) = round.http_status {
                    { " " }<span class="mono round-status">{ format!("HTTP {status}") }</span>
                }
            </span>
            if let Some(tries) = round.tries.filter(|tries| tries.sent > 1) {
                <span class="round-tries mono" title="connects answered of connects sent">
                    { format!("{} of {} answered", tries.answered, tries.sent) }
                </span>
            }
            <span class="round-time mono time">{ format::millis(round.elapsed_us) }</span>
        </li>
    }
}

/// The time of day of an RFC 3339 timestamp, to the millisecond (`10:00:01.234`); anything else
/// as it came.
fn clock_time(rfc3339: &str) -> String {
    rfc3339
        .split_once('T')
        .map(|(_, time)| time.trim_end_matches('Z'))
        .map(|time| match time.split_once('.') {
            Some((seconds, fraction)) => {
                format!("{seconds}.{}", &fraction[..fraction.len().min(3)])
            }
            None => time.to_owned(),
        })
        .unwrap_or_else(|| rfc3339.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rounds_start_shows_as_a_time_of_day_to_the_millisecond() {
        assert_eq!(clock_time("2026-11-24T10:00:01.234567Z"), "10:00:01.234");
        assert_eq!(clock_time("2026-11-24T10:00:01Z"), "10:00:01");
        assert_eq!(clock_time("soon"), "soon");
    }
}

#[cfg(test)]
mod render_tests {
    use whyrefused_shared::{Cause, Timestamp};

    use super::*;
    use crate::components::render;

    fn round(number: u32, cause: Cause) -> Round {
        Round {
            round: number,
            at: Timestamp("2026-11-24T10:00:01.234567Z".into()),
            cause,
            http_status: None,
            elapsed_us: 900,
            tries: None,
        }
    }

    #[test]
    fn a_running_check_says_which_round_and_lists_the_finished_ones() {
        let props = RoundTimelineProps {
            rounds: vec![round(1, Cause::PortClosed), round(2, Cause::Reachable)],
            planned: 3,
            current: Some(3),
        };
        let html = render::<RoundTimeline>(props);
        assert!(html.contains("round 3 of 3"), "{html}");
        assert_eq!(html.matches(r#"class="round round--"#).count(), 2, "{html}");
        assert!(html.contains(r#"data-cause="reachable""#) && html.contains("Port closed"));
    }

    #[test]
    fn each_round_shows_the_http_status_the_service_answered() {
        let mut failing = round(1, Cause::ServerError);
        failing.http_status = Some(503);
        let props = RoundTimelineProps { rounds: vec![failing], planned: 2, current: None };
        let html = render::<RoundTimeline>(props);
        assert!(html.contains("HTTP 503") && html.contains("The service answered"), "{html}");
    }

    #[test]
    fn a_finished_check_has_no_progress_line() {
        let props = RoundTimelineProps { rounds: vec![], planned: 2, current: None };
        assert!(!render::<RoundTimeline>(props).contains("round-progress"));
    }
}
