//! [`WatchTimeline`]: a watch's rounds as one SVG: state bands over time coloured by the
//! cause's severity, the connect time as a line under them, and a mark at each change that
//! opens the diagnosis stored at that moment (`#/r/ID`).

use std::rc::Rc;

use whyrefused_shared::WatchRound;
use yew::prelude::*;

use crate::format;
use crate::route::Route;
use crate::timeline::{self, BAND_HEIGHT, HEIGHT, WIDTH, short_time};

#[derive(Properties, PartialEq)]
pub struct WatchTimelineProps {
    /// The rounds kept, oldest first.
    pub rounds: Rc<Vec<WatchRound>>,
}

/// `svg.watch-timeline` (`data-rounds`, `data-changes`); each band a `rect.band` with
/// `data-cause`, each change an `a.change-mark` (`data-round`) around its marker.
#[function_component(WatchTimeline)]
pub fn watch_timeline(props: &WatchTimelineProps) -> Html {
    let layout = timeline::layout(&props.rounds);
    if layout.bands.is_empty() {
        return html! { <p class="muted watch-waiting">{ "Waiting for the first round…" }</p> };
    }
    let label = format!(
        "{} rounds from {} to {}, {} changes",
        props.rounds.len(),
        layout.from.as_deref().map(short_time).unwrap_or_default(),
        layout.to.as_deref().map(short_time).unwrap_or_default(),
        layout.marks.len()
    );
    html! {
        <figure class="watch-figure">
            <svg
                class="watch-timeline"
                viewBox={format!("0 0 {WIDTH} {HEIGHT}")}
                preserveAspectRatio="none"
                role="img"
                aria-label={label}
                data-rounds={props.rounds.len().to_string()}
                data-changes={layout.marks.len().to_string()}
            >
                { for layout.bands.iter().map(|band| html! {
                    <rect
                        class={classes!("band", format::severity_class(band.severity))}
                        x={format!("{:.2}", band.x)}
                        y="0"
                        width={format!("{:.2}", band.width.max(0.5))}
                        height={BAND_HEIGHT.to_string()}
                        data-cause={band.cause.as_str()}
                    >
                        <title>{ format!("{}: rounds {}–{}", format::cause_title(band.cause), band.first, band.last) }</title>
                    </rect>
                }) }
                <rect class="plot" x="0" y={(BAND_HEIGHT + 4.0).to_string()} width={WIDTH.to_string()} height={(HEIGHT - BAND_HEIGHT - 4.0).to_string()} />
                if !layout.line.is_empty() {
                    <polyline class="connect-line" points={layout.line.clone()} />
                }
                { for layout.marks.iter().map(|mark| {
                    let title = format!(
                        "Round {} at {}: {} (open the diagnosis)",
                        mark.round, short_time(&mark.at), format::cause_title(mark.cause)
                    );
                    let marker = html! {
                        <>
                            // A wide, clear strip: the mark is easy to hit with a mouse or a finger.
                            <rect class="change-hit" x={format!("{:.2}", mark.x - 8.0)} y="0" width="16" height={HEIGHT.to_string()} />
                            <line class="change-line" x1={format!("{:.2}", mark.x)} x2={format!("{:.2}", mark.x)} y1="0" y2={HEIGHT.to_string()} />
                            <circle class={classes!("change-dot", format::severity_class(mark.cause.severity()))} cx={format!("{:.2}", mark.x)} cy={(BAND_HEIGHT / 2.0).to_string()} r="5" />
                            <title>{ title }</title>
                        </>
                    };
                    match &mark.result {
                        Some(id) => html! {
                            <a class="change-mark" href={Route::Result(id.clone()).fragment()} data-round={mark.round.to_string()}>{ marker }</a>
                        },
                        None => html! { <g class="change-mark" data-round={mark.round.to_string()}>{ marker }</g> },
                    }
                }) }
            </svg>
            <figcaption class="watch-axis muted">
                <span>{ layout.from.as_deref().map(short_time).unwrap_or_default() }</span>
                if let Some(max) = layout.max_ms {
                    <span class="connect-legend">{ format!("connect time, top {max:.1} ms") }</span>
                }
                <span>{ layout.to.as_deref().map(short_time).unwrap_or_default() }</span>
            </figcaption>
            if !layout.marks.is_empty() {
                <ol class="watch-changes">
                    { for layout.marks.iter().map(|mark| html! {
                        <li>
                            <span class="mono">{ short_time(&mark.at) }</span>
                            { " → " }
                            <span class={classes!("state", format::severity_class(mark.cause.severity()))}>{ format::cause_title(mark.cause) }</span>
                            if let Some(id) = &mark.result {
                                { " " }<a class="change-link" href={Route::Result(id.clone()).fragment()}>{ "diagnosis" }</a>
                            }
                        </li>
                    }) }
                </ol>
            }
        </figure>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::render;
    use whyrefused_shared::Cause;

    fn round(number: u64, cause: Cause, changed: bool) -> WatchRound {
        WatchRound {
            round: number,
            at: format!("2026-12-02T10:00:0{number}.000Z"),
            cause,
            reachable: cause == Cause::Reachable,
            connect_ms: (cause == Cause::Reachable).then_some(0.3),
            changed,
            result: Some(format!("r{number}")),
            vantages: Vec::new(),
        }
    }

    #[test]
    fn bands_and_clickable_change_marks_are_drawn_from_the_rounds() {
        let rounds = vec![
            round(1, Cause::PortClosed, false),
            round(2, Cause::Reachable, true),
            round(3, Cause::Reachable, false),
            round(4, Cause::PortClosed, true),
        ];
        let html = render::<WatchTimeline>(WatchTimelineProps { rounds: Rc::new(rounds) });
        assert_eq!(html.matches(r#"class="band "#).count(), 3, "{html}");
        assert!(html.contains(r#"class="band severity--good""#), "{html}");
        assert!(html.contains(r#"data-cause="port_closed""#), "{html}");
        assert!(
            html.contains(r##"<a href="#/r/r2" data-round="2" class="change-mark">"##),
            "{html}"
        );
        assert!(html.contains(r##"href="#/r/r4""##), "{html}");
        assert!(
            html.contains(r#"data-changes="2""#) && html.contains(r#"data-rounds="4""#),
            "{html}"
        );
        assert!(html.contains("connect-line"), "{html}");
    }

    #[test]
    fn no_rounds_yet_says_so() {
        let html = render::<WatchTimeline>(WatchTimelineProps { rounds: Rc::default() });
        assert!(html.contains("Waiting for the first round"), "{html}");
    }
}
