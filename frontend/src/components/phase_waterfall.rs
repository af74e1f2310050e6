//! [`PhaseWaterfall`]: where the time of the first connection that opened went (DNS, TCP connect,
//! TLS, first byte), as bars laid end to end.

use std::net::SocketAddr;

use whyrefused_shared::Phases;
use yew::prelude::*;

use crate::format;

#[derive(Properties, PartialEq)]
pub struct PhaseWaterfallProps {
    /// The connection the phases belong to.
    pub address: SocketAddr,
    /// Its phase timings.
    pub phases: Phases,
}

/// One row per phase: its name, a bar starting where the previous phase ended with a length
/// proportional to its time, and its time in milliseconds.
#[function_component(PhaseWaterfall)]
pub fn phase_waterfall(props: &PhaseWaterfallProps) -> Html {
    let segments = segments(&props.phases);
    let total_us = segments.last().map_or(0, Segment::end_us);
    html! {
        <section class="waterfall" aria-label="Phases of the first connection">
            <h3 class="section-title">
                { "Phases " }
                <span class="muted section-aside">
                    { "first connection, to " }<span class="mono">{ props.address.to_string() }</span>
                    { format!(" · {} in all", format::millis(total_us)) }
                </span>
            </h3>
            <ol class="waterfall-rows">
                { for segments.iter().map(|segment| bar(segment, total_us)) }
            </ol>
        </section>
    }
}

fn bar(segment: &Segment, total_us: u64) -> Html {
    let (left, width) = placement(segment, total_us);
    let style = format!("margin-left: {left:.2}%; width: {width:.2}%;");
    html! {
        <li class="waterfall-row" data-phase={segment.name}>
            <span class="waterfall-label">{ segment.label }</span>
            <span class="waterfall-track" aria-hidden="true">
                <span class={classes!("waterfall-bar", format!("waterfall-bar--{}", segment.name))} {style}></span>
            </span>
            <span class="waterfall-time mono time">{ format::millis(segment.duration_us) }</span>
        </li>
    }
}

/// One phase, placed on the connection's timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Segment {
    /// Its short name, for `data-phase` and CSS (`first_byte`).
    name: &'static str,
    /// Its name for people.
    label: &'static str,
    /// When it began, counted from the start of name resolution.
    start_us: u64,
    /// How long it took.
    duration_us: u64,
}

impl Segment {
    fn end_us(&self) -> u64 {
        self.start_us + self.duration_us
    }
}

/// The phases that happened, each starting where the one before ended.
fn segments(phases: &Phases) -> Vec<Segment> {
    let steps = [
        ("dns", "DNS", Some(phases.dns_us)),
        ("connect", "TCP connect", Some(phases.connect_us)),
        ("tls", "TLS", phases.tls_us),
        ("first_byte", "First byte", phases.first_byte_us),
    ];
    let mut start_us = 0;
    let mut segments = Vec::new();
    for (name, label, duration_us) in steps {
        if let Some(duration_us) = duration_us {
            segments.push(Segment { name, label, start_us, duration_us });
            start_us += duration_us;
        }
    }
    segments
}

/// The bar's left edge and width as percentages of the track. A phase too short to see still
/// gets a sliver, and is moved back so that it stays inside the track.
fn placement(segment: &Segment, total_us: u64) -> (f64, f64) {
    const SLIVER: f64 = 0.6;
    if total_us == 0 {
        return (0.0, SLIVER);
    }
    let percent = |us: u64| us as f64 * 100.0 / total_us as f64;
    let width = percent(segment.duration_us).max(SLIVER);
    let left = percent(segment.start_us).min(100.0 - width);
    (left, width)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_follow_each_other_and_absent_ones_are_left_out() {
        let phases =
            Phases { dns_us: 400, connect_us: 1_600, tls_us: None, first_byte_us: Some(2_000) };
        let placed: Vec<(&str, u64, u64)> =
            segments(&phases).iter().map(|s| (s.name, s.start_us, s.duration_us)).collect();
        assert_eq!(
            placed,
            [("dns", 0, 400), ("connect", 400, 1_600), ("first_byte", 2_000, 2_000)]
        );
    }

    #[test]
    fn bars_are_proportional_to_time() {
        let phases =
            Phases { dns_us: 1_000, connect_us: 1_000, tls_us: Some(2_000), first_byte_us: None };
        let segments = segments(&phases);
        let total = segments.last().unwrap().end_us();
        assert_eq!(placement(&segments[0], total), (0.0, 25.0));
        assert_eq!(placement(&segments[2], total), (50.0, 50.0));
    }

    #[test]
    fn an_instant_phase_is_still_visible_and_inside_the_track() {
        let phases = Phases { dns_us: 0, connect_us: 100_000, tls_us: None, first_byte_us: None };
        let segments = segments(&phases);
        let (left, width) = placement(&segments[0], 100_000);
        assert!(width > 0.0 && left == 0.0);
        let (left, width) = placement(&segments[1], 100_000);
        assert!(left + width <= 100.0, "{left} + {width}");
        assert_eq!(placement(&segments[0], 0), (0.0, 0.6));
    }
}
