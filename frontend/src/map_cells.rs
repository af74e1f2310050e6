//! The cells of a scan's port map: the scanned ports of one address cut into at most
//! [`MAP_CELLS`] slices, each coloured by the most notable state in it.
//!
//! **Which ports the map spans.** The agent sends the spec back as text (`1-65535`,
//! `22,80,8000-8100`, `top100`), not as a list. A spec made only of ports, ranges and `all` is
//! parsed here into its exact list ([`PortAxis::for_spec`]), and the cells slice that *list*
//! (so `22,80,8000-8100` spends no cells on the gaps); if the page's count disagrees with the
//! agent's `port_count`, the page does not trust its reading. A spec naming a shipped list
//! (`top100`, `top1000`) cannot be listed by the page, which does not carry the list: while such
//! a scan runs, the map spans every port number, 1 to 65535, and only reported ports fill it, so
//! a cell with no report reads "none scanned" rather than pretending to know how many ports it
//! holds. Once every port of an address has been reported, the reported ports *are* the list,
//! and the map slices them like any other ([`PortAxis::for_address`]).
//!
//! **Cost.** Results are sorted and refused ports arrive as merged runs, so the cells are built
//! in one pass: a binary search per result, and per run only the cells it crosses. A full
//! 65,535-port scan costs a few hundred steps per render, never ports × cells.

use std::net::IpAddr;

use whyrefused_shared::{PortGroup, ScanReport};

/// The most cells one address's map has: 256 cells of 256 ports for a full range.
pub const MAP_CELLS: u32 = 256;

/// The ports a scan covers, as the page knows them: sorted, disjoint ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortAxis {
    /// Inclusive ranges, ascending, neither overlapping nor touching.
    segments: Vec<(u16, u16)>,
    /// The list position of each segment's first port.
    offsets: Vec<u32>,
    /// How many ports the axis holds.
    len: u32,
    /// Whether the axis is exactly the scanned list (otherwise it is every port number and the
    /// scanned ports are some of them).
    exact: bool,
}

impl PortAxis {
    /// The axis for a spec as the agent wrote it back, holding `port_count` ports.
    pub fn for_spec(spec: &str, port_count: u32) -> PortAxis {
        match parse_spec(spec) {
            Some(ranges) => {
                let axis = PortAxis::from_ranges(ranges, true);
                if axis.len == port_count { axis } else { PortAxis::every_port() }
            }
            None => PortAxis::every_port(),
        }
    }

    /// The axis of the map of `address`: the spec's list when the page can read it; for a list
    /// it cannot know, the reported ports once all of them have been reported (they are then the
    /// list); every port number until then.
    pub fn for_address(report: &ScanReport, address: IpAddr) -> PortAxis {
        let axis = PortAxis::for_spec(&report.ports, report.port_count);
        if axis.is_exact() {
            return axis;
        }
        let singles = report.results.iter().filter(|r| r.address == address);
        let runs = report.refused.iter().filter(|r| r.address == address);
        let reported = singles.map(|r| (r.port, r.port)).chain(runs.map(|r| (r.first, r.last)));
        let reported = PortAxis::from_ranges(reported.collect(), true);
        if report.port_count > 0 && reported.len == report.port_count { reported } else { axis }
    }

    /// Every port number, for a spec whose list the page cannot know.
    fn every_port() -> PortAxis {
        PortAxis::from_ranges(vec![(1, u16::MAX)], false)
    }

    fn from_ranges(mut ranges: Vec<(u16, u16)>, exact: bool) -> PortAxis {
        ranges.sort_unstable();
        let mut segments: Vec<(u16, u16)> = Vec::with_capacity(ranges.len());
        for (first, last) in ranges {
            match segments.last_mut() {
                Some(previous) if u32::from(previous.1) + 1 >= u32::from(first) => {
                    previous.1 = previous.1.max(last);
                }
                _ => segments.push((first, last)),
            }
        }
        let mut offsets = Vec::with_capacity(segments.len());
        let mut len = 0;
        for (first, last) in &segments {
            offsets.push(len);
            len += u32::from(*last) - u32::from(*first) + 1;
        }
        PortAxis { segments, offsets, len, exact }
    }

    /// Whether the axis is exactly the scanned ports.
    pub fn is_exact(&self) -> bool {
        self.exact
    }

    /// The first and last port of the axis.
    pub fn bounds(&self) -> (u16, u16) {
        let first = self.segments.first().map_or(1, |s| s.0);
        let last = self.segments.last().map_or(u16::MAX, |s| s.1);
        (first, last)
    }

    /// The list positions (first, last) of the axis ports between `first` and `last`, one pair
    /// per segment they touch.
    fn spans(&self, first: u16, last: u16) -> impl Iterator<Item = (u32, u32)> + '_ {
        let start = self.segments.partition_point(|segment| segment.1 < first);
        self.segments[start..]
            .iter()
            .zip(&self.offsets[start..])
            .take_while(move |(segment, _)| segment.0 <= last)
            .map(move |(segment, offset)| {
                let low = first.max(segment.0);
                let high = last.min(segment.1);
                (offset + u32::from(low - segment.0), offset + u32::from(high - segment.0))
            })
    }

    /// The port ranges at list positions `low..=high`.
    fn ranges_between(&self, low: u32, high: u32) -> Vec<(u16, u16)> {
        let mut ranges = Vec::new();
        let mut index = self.offsets.partition_point(|offset| *offset <= low) - 1;
        let mut position = low;
        while position <= high && index < self.segments.len() {
            let (first, last) = self.segments[index];
            let offset = self.offsets[index];
            let from = first + (position - offset) as u16;
            let to_position = high.min(offset + u32::from(last - first));
            let to = first + (to_position - offset) as u16;
            ranges.push((from, to));
            position = to_position + 1;
            index += 1;
        }
        ranges
    }
}

/// A spec's ranges, when it holds only ports, ranges and `all`.
fn parse_spec(spec: &str) -> Option<Vec<(u16, u16)>> {
    let port = |text: &str| text.parse::<u16>().ok().filter(|port| *port > 0);
    spec.split(',')
        .map(|item| match item.trim() {
            "all" | "-" => Some((1, u16::MAX)),
            item => match item.split_once('-') {
                Some((low, high)) => Some((port(low)?, port(high)?)).filter(|(l, h)| l <= h),
                None => port(item).map(|port| (port, port)),
            },
        })
        .collect()
}

/// What a cell is coloured by: its most notable state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// At least one port is open.
    Open,
    /// Something answered with an error: rejected, unreachable, denied, reset.
    Blocked,
    /// At least one port gave no answer.
    Filtered,
    /// Every reported port is closed.
    Closed,
    /// No port of it was reported (yet).
    Pending,
}

impl Tone {
    /// The tones, most notable first, as the legend lists them.
    pub const ALL: [Tone; 5] =
        [Tone::Open, Tone::Blocked, Tone::Filtered, Tone::Closed, Tone::Pending];

    /// The name used in `data-tone` and CSS.
    pub fn as_str(self) -> &'static str {
        match self {
            Tone::Open => "open",
            Tone::Blocked => "blocked",
            Tone::Filtered => "filtered",
            Tone::Closed => "closed",
            Tone::Pending => "pending",
        }
    }

    /// The legend's words.
    pub fn label(self) -> &'static str {
        match self {
            Tone::Open => "open",
            Tone::Blocked => "rejected, unreachable or error",
            Tone::Filtered => "filtered",
            Tone::Closed => "closed",
            Tone::Pending => "not scanned (yet)",
        }
    }
}

/// One cell of the map: a slice of the axis and how its ports ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapCell {
    /// The port ranges the cell covers (several when the spec skips ports).
    pub ranges: Vec<(u16, u16)>,
    /// How many axis ports it covers.
    pub ports: u32,
    /// How many of them ended in each group, indexed by [`PortGroup::index`].
    pub counts: [u32; PortGroup::ALL.len()],
}

impl MapCell {
    /// How many of its ports have been reported.
    pub fn reported(&self) -> u32 {
        self.counts.iter().sum()
    }

    fn count(&self, group: PortGroup) -> u32 {
        self.counts[group.index()]
    }

    /// Its colour: open, then an error answer, then silence, then closed, then nothing yet.
    pub fn tone(&self) -> Tone {
        let any = |groups: &[PortGroup]| groups.iter().any(|group| self.count(*group) > 0);
        if any(&[PortGroup::Open]) {
            Tone::Open
        } else if any(&[
            PortGroup::Rejected,
            PortGroup::HostUnreachable,
            PortGroup::NetworkUnreachable,
            PortGroup::DeniedHere,
            PortGroup::Reset,
            PortGroup::Error,
        ]) {
            Tone::Blocked
        } else if any(&[PortGroup::Filtered]) {
            Tone::Filtered
        } else if any(&[PortGroup::Closed]) {
            Tone::Closed
        } else {
            Tone::Pending
        }
    }

    /// What the cell holds, for its tooltip and screen readers (`ports 1-256: 1 open, 255
    /// closed`). With an axis that is not the exact list, unreported ports are not counted.
    pub fn describe(&self, exact: bool, running: bool) -> String {
        let mut parts: Vec<String> = PortGroup::ALL
            .into_iter()
            .filter(|group| self.count(*group) > 0)
            .map(|group| format!("{} {}", self.count(group), group.label()))
            .collect();
        let missing = self.ports - self.reported();
        if exact && missing > 0 {
            parts.push(format!("{missing} not scanned{}", if running { " yet" } else { "" }));
        }
        if parts.is_empty() {
            parts.push(if running { "none scanned yet" } else { "none scanned" }.to_owned());
        }
        format!("{}: {}", self.place(), parts.join(", "))
    }

    /// `port 22`, `ports 1-256`, `ports 22, 80, 443, …`.
    fn place(&self) -> String {
        let shown: Vec<String> = self
            .ranges
            .iter()
            .take(3)
            .map(|(first, last)| match first == last {
                true => first.to_string(),
                false => format!("{first}-{last}"),
            })
            .collect();
        let more = if self.ranges.len() > 3 { ", …" } else { "" };
        let noun = if self.ports == 1 { "port" } else { "ports" };
        format!("{noun} {}{more}", shown.join(", "))
    }
}

/// The map of one address: up to [`MAP_CELLS`] cells over the axis, in port order.
pub fn map_cells(report: &ScanReport, axis: &PortAxis, address: IpAddr) -> Vec<MapCell> {
    if axis.len == 0 {
        return Vec::new();
    }
    let cells = axis.len.min(MAP_CELLS);
    let len = u64::from(axis.len);
    // Cell `c` holds the list positions from `start(c)` up to `start(c + 1) - 1`.
    let start = |cell: u32| (u64::from(cell) * len).div_ceil(u64::from(cells)) as u32;
    let cell_of = |position: u32| (u64::from(position) * u64::from(cells) / len) as u32;
    let mut map: Vec<MapCell> = (0..cells)
        .map(|cell| {
            let (low, high) = (start(cell), start(cell + 1) - 1);
            MapCell {
                ranges: axis.ranges_between(low, high),
                ports: high - low + 1,
                counts: [0; PortGroup::ALL.len()],
            }
        })
        .collect();
    let add = |(low, high): (u32, u32), group: PortGroup, map: &mut Vec<MapCell>| {
        let mut position = low;
        while position <= high {
            let cell = cell_of(position);
            let through = high.min(start(cell + 1) - 1);
            map[cell as usize].counts[group.index()] += through - position + 1;
            position = through + 1;
        }
    };
    for result in report.results.iter().filter(|result| result.address == address) {
        for span in axis.spans(result.port, result.port) {
            add(span, PortGroup::of(result), &mut map);
        }
    }
    for run in report.refused.iter().filter(|run| run.address == address) {
        for span in axis.spans(run.first, run.last) {
            add(span, PortGroup::Closed, &mut map);
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use whyrefused_shared::{ConnectState, PortRun};

    use super::*;
    use crate::fixtures::{rejected, result};

    fn localhost() -> IpAddr {
        "127.0.0.1".parse().unwrap()
    }

    fn run(first: u16, last: u16) -> PortRun {
        PortRun { address: localhost(), first, last }
    }

    fn report(results: Vec<whyrefused_shared::PortResult>, refused: Vec<PortRun>) -> ScanReport {
        ScanReport { addresses: vec![localhost()], results, refused, ..ScanReport::default() }
    }

    #[test]
    fn a_spec_of_ports_and_ranges_is_its_exact_list_and_a_shipped_list_is_every_port() {
        let axis = PortAxis::for_spec("22,80,8000-8100,79", 104);
        assert!(axis.is_exact());
        assert_eq!(axis.segments, [(22, 22), (79, 80), (8000, 8100)]);
        assert_eq!(axis.len, 104);
        assert_eq!(PortAxis::for_spec("all", 65_535).len, 65_535);
        for spec in ["top100", "22,top100", "0-10", "9-3"] {
            let axis = PortAxis::for_spec(spec, 100);
            assert!(!axis.is_exact(), "{spec}");
            assert_eq!(axis.bounds(), (1, 65_535));
        }
        // The agent counted otherwise: the page does not trust its own reading.
        assert!(!PortAxis::for_spec("1-10", 9).is_exact());
    }

    #[test]
    fn a_full_range_makes_256_cells_of_256_ports_except_the_last() {
        let axis = PortAxis::for_spec("1-65535", 65_535);
        let cells = map_cells(&report(vec![], vec![]), &axis, localhost());
        assert_eq!(cells.len(), 256);
        assert_eq!(cells[0].ranges, [(1, 256)]);
        assert_eq!(cells[0].ports, 256);
        assert_eq!(cells[255].ranges, [(65_281, 65_535)]);
        assert_eq!(cells.iter().map(|cell| cell.ports).sum::<u32>(), 65_535);
        assert!(cells.iter().all(|cell| cell.tone() == Tone::Pending));
        assert_eq!(cells[0].describe(true, true), "ports 1-256: 256 not scanned yet");
    }

    #[test]
    fn results_and_runs_land_in_their_cells_and_the_most_notable_state_colours_them() {
        let axis = PortAxis::for_spec("1-65535", 65_535);
        let results = vec![
            result(22, ConnectState::Open),
            rejected(300),
            result(600, ConnectState::Timeout),
            result(40_000, ConnectState::Open),
        ];
        // Closed runs around them, one of them crossing many cells.
        let refused = vec![run(1, 21), run(23, 299), run(301, 599), run(601, 39_999)];
        let cells = map_cells(&report(results, refused), &axis, localhost());
        assert_eq!(cells[0].tone(), Tone::Open);
        assert_eq!(cells[0].describe(true, false), "ports 1-256: 1 open, 255 closed");
        assert_eq!(cells[1].tone(), Tone::Blocked, "257-512 holds the rejected 300");
        assert_eq!(cells[1].describe(true, false), "ports 257-512: 255 closed, 1 rejected");
        assert_eq!(cells[2].tone(), Tone::Filtered, "513-768 holds the silent 600");
        assert_eq!(cells[3].tone(), Tone::Closed);
        let forty = cells.iter().position(|c| c.ranges[0].0 <= 40_000 && c.ranges[0].1 >= 40_000);
        let forty = &cells[forty.unwrap()];
        assert_eq!(forty.tone(), Tone::Open);
        assert!(forty.describe(true, true).contains("not scanned yet"), "{forty:?}");
        assert_eq!(cells[255].tone(), Tone::Pending);
        let reported: u32 = cells.iter().map(MapCell::reported).sum();
        assert_eq!(reported, 40_000, "every reported port counted once");
    }

    #[test]
    fn other_addresses_do_not_mix_into_the_map() {
        let axis = PortAxis::for_spec("1-100", 100);
        let other: IpAddr = "::1".parse().unwrap();
        let mut report = report(vec![], vec![PortRun { address: other, first: 1, last: 100 }]);
        report.addresses.push(other);
        let cells = map_cells(&report, &axis, localhost());
        assert_eq!(cells.len(), 100, "one cell a port when there are few");
        assert!(cells.iter().all(|cell| cell.reported() == 0));
        assert_eq!(
            map_cells(&report, &axis, other)[99].describe(true, false),
            "port 100: 1 closed"
        );
    }

    #[test]
    fn a_spec_with_gaps_slices_its_list_not_the_number_line() {
        let axis = PortAxis::for_spec("22,80,8000-8100", 103);
        let cells =
            map_cells(&report(vec![result(80, ConnectState::Open)], vec![]), &axis, localhost());
        assert_eq!(cells.len(), 103);
        assert_eq!(cells[1].ranges, [(80, 80)]);
        assert_eq!(cells[1].tone(), Tone::Open);
        assert_eq!(cells[2].ranges, [(8000, 8000)]);

        // 300 ports over 256 cells: some cells hold two ports, across a gap.
        let axis = PortAxis::for_spec("1-151,1001-1149", 300);
        let cells =
            map_cells(&report(vec![], vec![run(1, 151), run(1001, 1149)]), &axis, localhost());
        assert_eq!(cells.len(), 256);
        assert_eq!(cells.iter().map(|cell| cell.ports).sum::<u32>(), 300);
        let across = cells.iter().find(|cell| cell.ranges.len() == 2).expect("a cell over the gap");
        assert_eq!(across.ranges, [(151, 151), (1001, 1001)]);
        assert_eq!(across.describe(true, false), "ports 151, 1001: 2 closed");
        assert!(cells.iter().all(|cell| cell.tone() == Tone::Closed));
    }

    #[test]
    fn a_shipped_list_becomes_exact_once_every_port_is_reported() {
        let mut report = report(vec![result(443, ConnectState::Open)], vec![run(20, 23)]);
        report.ports = "top6".into();
        report.port_count = 6;
        assert!(!PortAxis::for_address(&report, localhost()).is_exact(), "one port still to come");
        report.refused.push(run(8080, 8080));
        let axis = PortAxis::for_address(&report, localhost());
        assert!(axis.is_exact());
        assert_eq!(axis.segments, [(20, 23), (443, 443), (8080, 8080)]);
        let cells = map_cells(&report, &axis, localhost());
        assert_eq!(cells.len(), 6);
        assert_eq!(cells[4].describe(true, false), "port 443: 1 open");
        let other: IpAddr = "::1".parse().unwrap();
        assert!(!PortAxis::for_address(&report, other).is_exact(), "nothing of ::1 reported");
        // A spec the page reads is taken as it is.
        report.ports = "20-23,443,8080".into();
        assert_eq!(PortAxis::for_address(&report, localhost()), axis);
    }

    #[test]
    fn with_a_shipped_list_only_reported_ports_count() {
        let axis = PortAxis::for_spec("top100", 100);
        let cells = map_cells(
            &report(vec![result(443, ConnectState::Open)], vec![run(20, 23)]),
            &axis,
            localhost(),
        );
        assert_eq!(cells.len(), 256);
        assert_eq!(cells[0].describe(false, false), "ports 1-256: 4 closed");
        assert_eq!(cells[1].describe(false, false), "ports 257-512: 1 open");
        assert_eq!(cells[2].describe(false, true), "ports 513-768: none scanned yet");
        assert_eq!(cells[2].describe(false, false), "ports 513-768: none scanned");
    }
}
