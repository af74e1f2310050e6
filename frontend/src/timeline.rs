//! A watch's timeline, computed from its rounds (oldest first) before anything is drawn: the
//! state bands (consecutive rounds of one cause merged, coloured by the cause's shared
//! severity), the connect-time line, and a mark at each change with the stored diagnosis it
//! opens. Also the times and durations the watch documents carry, read without a browser.

use whyrefused_shared::{Cause, Severity, WatchRound};

/// The drawing's size in SVG units (it scales to the width it is given).
pub const WIDTH: f64 = 600.0;
/// The height of the band strip.
pub const BAND_HEIGHT: f64 = 18.0;
/// The height of the connect-time plot under the bands.
pub const PLOT_HEIGHT: f64 = 60.0;
/// The total height: bands, then the plot.
pub const HEIGHT: f64 = BAND_HEIGHT + 4.0 + PLOT_HEIGHT;

/// Rounds of one cause in a row.
#[derive(Debug, Clone, PartialEq)]
pub struct Band {
    /// Where it starts and how wide it is.
    pub x: f64,
    pub width: f64,
    /// The cause of its rounds.
    pub cause: Cause,
    /// How bad that is: its colour.
    pub severity: Severity,
    /// Its first and last round.
    pub first: u64,
    pub last: u64,
}

/// A round whose cause differs from the one before.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    pub x: f64,
    /// The round and when it ran.
    pub round: u64,
    pub at: String,
    /// The cause it changed to.
    pub cause: Cause,
    /// The stored result with the diagnosis captured at that moment.
    pub result: Option<String>,
}

/// Everything the timeline draws.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Layout {
    pub bands: Vec<Band>,
    /// The connect-time line's points (`x,y x,y …`), one per round that connected.
    pub line: String,
    /// The slowest connect time plotted, in ms (the plot's top).
    pub max_ms: Option<f64>,
    pub marks: Vec<Mark>,
    /// The first and last round's times, for the axis labels.
    pub from: Option<String>,
    pub to: Option<String>,
}

/// Lays out `rounds` (oldest first) across [`WIDTH`], by their times: each round's band runs
/// to the next round's start, the last one as wide as the one before it (or a sliver).
pub fn layout(rounds: &[WatchRound]) -> Layout {
    let times: Vec<Option<i64>> = rounds.iter().map(|round| unix_ms(&round.at)).collect();
    let known: Vec<i64> = times.iter().flatten().copied().collect();
    let (Some(&start), Some(&end)) = (known.iter().min(), known.iter().max()) else {
        return Layout::default();
    };
    // The last round is given the gap before it, so it shows.
    let tail = match known.len() {
        0 | 1 => 1_000,
        n => (known[n - 1] - known[n - 2]).max(1),
    };
    let span = (end + tail - start).max(1) as f64;
    let x_of = |ms: i64| (ms - start) as f64 / span * WIDTH;
    let xs: Vec<f64> = times
        .iter()
        .scan(start, |last, time| {
            *last = time.unwrap_or(*last);
            Some(x_of(*last))
        })
        .collect();

    let mut bands: Vec<Band> = Vec::new();
    for (index, round) in rounds.iter().enumerate() {
        let x = xs[index];
        let end_x = xs.get(index + 1).copied().unwrap_or(WIDTH);
        match bands.last_mut() {
            Some(band) if band.cause == round.cause => {
                band.width = end_x - band.x;
                band.last = round.round;
            }
            _ => bands.push(Band {
                x,
                width: end_x - x,
                cause: round.cause,
                severity: round.cause.severity(),
                first: round.round,
                last: round.round,
            }),
        }
    }

    let max_ms = rounds.iter().filter_map(|round| round.connect_ms).reduce(f64::max);
    let line = match max_ms {
        Some(max) => rounds
            .iter()
            .zip(&xs)
            .filter_map(|(round, x)| {
                let ms = round.connect_ms?;
                let y = HEIGHT - ms / max.max(f64::EPSILON) * (PLOT_HEIGHT - 2.0) - 1.0;
                Some(format!("{:.1},{:.1}", x, y))
            })
            .collect::<Vec<_>>()
            .join(" "),
        None => String::new(),
    };

    let marks = rounds
        .iter()
        .zip(&xs)
        .filter(|(round, _)| round.changed)
        .map(|(round, x)| Mark {
            x: *x,
            round: round.round,
            at: round.at.clone(),
            cause: round.cause,
            result: round.result.clone(),
        })
        .collect();

    Layout {
        bands,
        line,
        max_ms,
        marks,
        from: rounds.first().map(|round| round.at.clone()),
        to: rounds.last().map(|round| round.at.clone()),
    }
}

/// Keeps at most `limit` rounds: the newest.
pub fn keep_newest(rounds: &mut Vec<WatchRound>, limit: usize) {
    if rounds.len() > limit {
        rounds.drain(..rounds.len() - limit);
    }
}

/// Adds the rounds of a poll to those kept: only rounds newer than the last kept (a `since=`
/// answer repeats the round at that time).
pub fn append_new(rounds: &mut Vec<WatchRound>, polled: Vec<WatchRound>) {
    let last = rounds.last().map_or(0, |round| round.round);
    rounds.extend(polled.into_iter().filter(|round| round.round > last));
}

/// A cause by its wire name (`port_closed`); an unknown name is [`Cause::Unknown`].
pub fn cause_named(name: &str) -> Cause {
    Cause::ALL.into_iter().find(|cause| cause.as_str() == name).unwrap_or(Cause::Unknown)
}

/// Milliseconds since the epoch of an RFC 3339 time in UTC (`2026-12-02T11:24:02.123Z`, the
/// agent's form; an offset is taken into account); `None` when it is not one.
pub fn unix_ms(text: &str) -> Option<i64> {
    let (date, time) = text.split_once(['T', 't', ' '])?;
    let mut date_parts = date.splitn(3, '-').map(|part| part.parse::<i64>().ok());
    let (year, month, day) = (date_parts.next()??, date_parts.next()??, date_parts.next()??);
    let (clock, offset_minutes) = split_offset(time)?;
    let (hms, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let mut hms = hms.splitn(3, ':').map(|part| part.parse::<i64>().ok());
    let (hour, minute, second) = (hms.next()??, hms.next()??, hms.next()??);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    let millis = match fraction.get(..fraction.len().min(3)) {
        Some("") | None => 0,
        Some(digits) => digits.parse::<i64>().ok()? * 10_i64.pow(3 - digits.len() as u32),
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1_000 + millis)
}

/// The clock part and the offset in minutes (`Z` is 0).
fn split_offset(time: &str) -> Option<(&str, i64)> {
    if let Some(clock) = time.strip_suffix(['Z', 'z']) {
        return Some((clock, 0));
    }
    let at = time.rfind(['+', '-'])?;
    let (clock, offset) = time.split_at(at);
    let sign = if offset.starts_with('-') { -1 } else { 1 };
    let (hours, minutes) = offset[1..].split_once(':')?;
    Some((clock, sign * (hours.parse::<i64>().ok()? * 60 + minutes.parse::<i64>().ok()?)))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Milliseconds of a duration written as the command line writes it (`500ms`, `10s`, `5m`,
/// `2h`, `1d`); `None` when it is not one.
pub fn duration_ms(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let unit_ms = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    number.checked_mul(unit_ms)
}

/// A stored time as people read it: `2026-12-02 11:24:02` (UTC, the agent's clock).
pub fn short_time(at: &str) -> String {
    let trimmed = at.split('.').next().unwrap_or(at).trim_end_matches('Z');
    trimmed.replacen('T', " ", 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(number: u64, second: u32, cause: Cause, connect_ms: Option<f64>) -> WatchRound {
        WatchRound {
            round: number,
            at: format!("2026-12-02T10:00:{second:02}.000Z"),
            cause,
            reachable: cause == Cause::Reachable,
            connect_ms,
            changed: false,
            result: Some(format!("res{number}")),
            vantages: Vec::new(),
        }
    }

    /// Closed, closed, open, open, closed: one second apart.
    fn closed_open_closed() -> Vec<WatchRound> {
        let mut rounds = vec![
            round(1, 0, Cause::PortClosed, None),
            round(2, 1, Cause::PortClosed, None),
            round(3, 2, Cause::Reachable, Some(0.4)),
            round(4, 3, Cause::Reachable, Some(0.8)),
            round(5, 4, Cause::PortClosed, None),
        ];
        rounds[2].changed = true;
        rounds[4].changed = true;
        rounds
    }

    #[test]
    fn rounds_of_one_cause_in_a_row_are_one_band_coloured_by_its_severity() {
        let layout = layout(&closed_open_closed());
        let causes: Vec<(Cause, u64, u64)> =
            layout.bands.iter().map(|band| (band.cause, band.first, band.last)).collect();
        assert_eq!(
            causes,
            [(Cause::PortClosed, 1, 2), (Cause::Reachable, 3, 4), (Cause::PortClosed, 5, 5)]
        );
        assert_eq!(layout.bands[0].severity, Severity::Bad);
        assert_eq!(layout.bands[1].severity, Severity::Good);
        // Five rounds a second apart and the last given a second: 6 s over the width.
        assert_eq!(layout.bands[0].x, 0.0);
        assert!((layout.bands[1].x - WIDTH * 2.0 / 5.0).abs() < 1e-9);
        assert!((layout.bands[1].width - WIDTH * 2.0 / 5.0).abs() < 1e-9);
        let right = layout.bands.last().map(|band| band.x + band.width).unwrap();
        assert!((right - WIDTH).abs() < 1e-9, "the bands fill the width: {right}");
    }

    #[test]
    fn each_change_is_marked_with_its_round_and_stored_diagnosis() {
        let layout = layout(&closed_open_closed());
        let marks: Vec<(u64, Cause, Option<&str>)> = layout
            .marks
            .iter()
            .map(|mark| (mark.round, mark.cause, mark.result.as_deref()))
            .collect();
        assert_eq!(
            marks,
            [(3, Cause::Reachable, Some("res3")), (5, Cause::PortClosed, Some("res5"))]
        );
    }

    #[test]
    fn the_connect_line_has_a_point_per_round_that_connected_the_slowest_at_the_top() {
        let layout = layout(&closed_open_closed());
        assert_eq!(layout.max_ms, Some(0.8));
        let points: Vec<&str> = layout.line.split(' ').collect();
        assert_eq!(points.len(), 2);
        assert!(points[1].ends_with(&format!(",{:.1}", HEIGHT - PLOT_HEIGHT + 1.0)), "{points:?}");
        assert!(super::layout(&[]).bands.is_empty());
    }

    #[test]
    fn a_poll_adds_only_newer_rounds_and_memory_keeps_the_newest() {
        let mut kept = closed_open_closed()[..3].to_vec();
        append_new(&mut kept, closed_open_closed()[2..].to_vec());
        let numbers: Vec<u64> = kept.iter().map(|round| round.round).collect();
        assert_eq!(numbers, [1, 2, 3, 4, 5], "round 3 came again and was kept once");
        keep_newest(&mut kept, 2);
        assert_eq!(kept.iter().map(|round| round.round).collect::<Vec<_>>(), [4, 5]);
    }

    #[test]
    fn times_and_durations_read_as_the_agent_writes_them() {
        assert_eq!(unix_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(unix_ms("2026-12-02T11:24:02.123Z"), Some(1_796_210_642_123));
        assert_eq!(unix_ms("2026-12-02T12:24:02.123+01:00"), Some(1_796_210_642_123));
        assert_eq!(unix_ms("2026-12-02T11:24:02.123456Z"), Some(1_796_210_642_123));
        assert_eq!(unix_ms("yesterday"), None);
        assert_eq!(duration_ms("10s"), Some(10_000));
        assert_eq!(duration_ms("500ms"), Some(500));
        assert_eq!(duration_ms("5m"), Some(300_000));
        assert_eq!(duration_ms("5"), None);
        assert_eq!(duration_ms("1w"), None);
        assert_eq!(short_time("2026-12-02T11:24:02.123Z"), "2026-12-02 11:24:02");
        assert_eq!(cause_named("port_closed"), Cause::PortClosed);
        assert_eq!(cause_named("new_in_a_later_version"), Cause::Unknown);
    }
}
