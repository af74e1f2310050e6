//! Port specs (`22,80,8000-8100`, `1-65535`, `all`, `top100`, `top1000`) and the service usually
//! found on a port, from the shipped list of common ports (`top-ports.txt`).

use std::collections::HashMap;
use std::sync::OnceLock;

/// The shipped list: `PORT SERVICE` lines, most often open first.
const TOP_PORTS: &str = include_str!("top-ports.txt");

/// The forms a valid spec takes, quoted by error messages.
pub const VALID_SPECS: &str = "ports and ranges separated by commas (22,80,8000-8100), 1-65535 \
                               or all, top100 or top1000 (the most common ports)";

/// The most comma-separated items a spec may hold, unless the agent is told otherwise
/// (`serve --max-port-spec-items`). Each item costs at most one pass over the port set's 1,024
/// words, so a spec at the cap is parsed in about a millisecond; neighbouring ports fit in one
/// range item.
pub const MAX_ITEMS: usize = 1_024;

/// The most characters of a bad spec or item an error message quotes.
const QUOTED_CHARS: usize = 40;

/// Why a port spec could not be parsed. Each message names the problem and the valid forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortSpecError {
    #[error("the port spec is empty: give {VALID_SPECS}")]
    Empty,
    #[error("the port spec '{0}' has an empty item (two commas in a row?): give {VALID_SPECS}")]
    EmptyItem(String),
    #[error("'{0}' is not a port: ports are numbers from 1 to 65535; give {VALID_SPECS}")]
    NotAPort(String),
    #[error("port {0} is out of range: ports run from 1 to 65535")]
    OutOfRange(String),
    #[error("the range {0} runs backwards: write the lower port first, as {1}-{2}")]
    Backwards(String, u16, u16),
    #[error("'top{0}' is not available: the shipped list holds the top {max} ports (top1 to top{max})", max = top_ports().len())]
    TopTooLarge(usize),
    #[error(
        "the port spec has {0} items, more than the {1} allowed: join neighbouring ports into ranges (8000-8100)"
    )]
    TooManyItems(usize, usize),
}

/// A parsed spec: distinct ports in ascending order, and the spec as written back for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    /// The spec, normalised (lowercase, no spaces).
    pub text: String,
    /// Every port, ascending, each once.
    pub ports: Vec<u16>,
    /// The same ports as a set, to ask about one port at once.
    set: PortSet,
}

impl PortSpec {
    /// Parses a spec of at most [`MAX_ITEMS`] items.
    pub fn parse(input: &str) -> Result<PortSpec, PortSpecError> {
        PortSpec::parse_at_most(input, MAX_ITEMS)
    }

    /// Parses a spec of at most `max_items` items, each added to a set of 65,536 bits (a range
    /// costs a word at a time, never a port at a time).
    pub fn parse_at_most(input: &str, max_items: usize) -> Result<PortSpec, PortSpecError> {
        let text: String = input.chars().filter(|c| !c.is_whitespace()).collect();
        let text = text.to_ascii_lowercase();
        if text.is_empty() {
            return Err(PortSpecError::Empty);
        }
        let items = text.bytes().filter(|byte| *byte == b',').count() + 1;
        if items > max_items {
            return Err(PortSpecError::TooManyItems(items, max_items));
        }
        let mut set = PortSet::default();
        for item in text.split(',') {
            if item.is_empty() {
                return Err(PortSpecError::EmptyItem(quoted(&text)));
            }
            add_item(item, &mut set)?;
        }
        Ok(PortSpec { text, ports: set.ports(), set })
    }

    /// Whether the spec holds `port`.
    pub fn contains(&self, port: u16) -> bool {
        self.set.contains(port)
    }
}

/// A set of ports, one bit each.
#[derive(Clone, PartialEq, Eq)]
struct PortSet {
    /// Bit `p % 64` of word `p / 64` is port `p`.
    words: Box<[u64]>,
}

impl Default for PortSet {
    fn default() -> PortSet {
        PortSet { words: vec![0; 65_536 / 64].into_boxed_slice() }
    }
}

impl std::fmt::Debug for PortSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PortSet({} ports)", self.words.iter().map(|w| w.count_ones()).sum::<u32>())
    }
}

impl PortSet {
    /// Adds every port from `low` to `high`, both included (`low <= high`).
    fn insert_range(&mut self, low: u16, high: u16) {
        let (low, high) = (usize::from(low), usize::from(high));
        let (first, last) = (low / 64, high / 64);
        for index in first..=last {
            let from = if index == first { low % 64 } else { 0 };
            let to = if index == last { high % 64 } else { 63 };
            self.words[index] |= (u64::MAX >> (63 - (to - from))) << from;
        }
    }

    fn contains(&self, port: u16) -> bool {
        let port = usize::from(port);
        self.words[port / 64] & (1 << (port % 64)) != 0
    }

    /// Every port in the set, ascending.
    fn ports(&self) -> Vec<u16> {
        let mut ports = Vec::new();
        for (index, word) in self.words.iter().enumerate() {
            let mut bits = *word;
            while bits != 0 {
                ports.push((index * 64) as u16 + bits.trailing_zeros() as u16);
                bits &= bits - 1;
            }
        }
        ports
    }
}

/// At most [`QUOTED_CHARS`] characters of `text`, for an error message.
fn quoted(text: &str) -> String {
    match text.char_indices().nth(QUOTED_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// Adds the ports one comma-separated item names.
fn add_item(item: &str, set: &mut PortSet) -> Result<(), PortSpecError> {
    if item == "all" || item == "-" {
        set.insert_range(1, u16::MAX);
        return Ok(());
    }
    if let Some(count) = item.strip_prefix("top") {
        let count: usize = count.parse().map_err(|_| PortSpecError::NotAPort(quoted(item)))?;
        let list = top_ports();
        if count == 0 || count > list.len() {
            return Err(PortSpecError::TopTooLarge(count));
        }
        list[..count].iter().for_each(|(port, _)| set.insert_range(*port, *port));
        return Ok(());
    }
    let (low, high) = match item.split_once('-') {
        Some((low, high)) => (parse_port(low)?, parse_port(high)?),
        None => {
            let port = parse_port(item)?;
            (port, port)
        }
    };
    if low > high {
        return Err(PortSpecError::Backwards(quoted(item), high, low));
    }
    set.insert_range(low, high);
    Ok(())
}

fn parse_port(text: &str) -> Result<u16, PortSpecError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PortSpecError::NotAPort(quoted(text)));
    }
    match text.parse::<u32>() {
        Ok(port @ 1..=65_535) => Ok(port as u16),
        _ => Err(PortSpecError::OutOfRange(quoted(text))),
    }
}

/// The shipped list of common ports with their services, most often open first.
pub fn top_ports() -> &'static [(u16, &'static str)] {
    static LIST: OnceLock<Vec<(u16, &'static str)>> = OnceLock::new();
    LIST.get_or_init(|| {
        TOP_PORTS
            .lines()
            .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
            .filter_map(|line| {
                let (port, service) = line.split_once(' ')?;
                Some((port.parse().ok()?, service.trim()))
            })
            .collect()
    })
}

/// The service usually found on `port` (`ssh` for 22), when the shipped list knows one.
pub fn service_name(port: u16) -> Option<&'static str> {
    static BY_PORT: OnceLock<HashMap<u16, &'static str>> = OnceLock::new();
    let by_port = BY_PORT.get_or_init(|| {
        top_ports().iter().filter(|(_, service)| *service != "unknown").copied().collect()
    });
    by_port.get(&port).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports(spec: &str) -> Vec<u16> {
        PortSpec::parse(spec).unwrap_or_else(|e| panic!("{spec}: {e}")).ports
    }

    #[test]
    fn lists_and_ranges_are_merged_sorted_and_deduplicated() {
        assert_eq!(ports("80,22,8000-8003,22"), [22, 80, 8000, 8001, 8002, 8003]);
        assert_eq!(ports(" 443 , 80 "), [80, 443]);
        assert_eq!(ports("65535"), [65535]);
        assert_eq!(ports("1-65535").len(), 65_535);
        assert_eq!(ports("all").len(), 65_535);
        assert_eq!(ports("-").len(), 65_535);
    }

    #[test]
    fn top_lists_come_from_the_shipped_file() {
        assert_eq!(top_ports().len(), 1000);
        assert_eq!(top_ports()[0], (80, "http"));
        let top100 = ports("top100");
        assert_eq!(top100.len(), 100);
        assert!(top100.contains(&22) && top100.contains(&443) && top100.contains(&3306));
        assert_eq!(ports("top1000").len(), 1000);
        assert_eq!(ports("TOP10,1-2").len(), 12 - usize::from(ports("top10").contains(&1)));
    }

    #[test]
    fn services_are_named_for_common_ports() {
        assert_eq!(service_name(22), Some("ssh"));
        assert_eq!(service_name(5432), Some("postgresql"));
        assert_eq!(service_name(1), Some("tcpmux"));
        assert_eq!(service_name(64_999), None);
    }

    #[test]
    fn every_bad_spec_says_what_is_wrong() {
        let error = |spec: &str| PortSpec::parse(spec).unwrap_err();
        assert_eq!(error(""), PortSpecError::Empty);
        assert_eq!(error("22,,80"), PortSpecError::EmptyItem("22,,80".into()));
        assert_eq!(error("0"), PortSpecError::OutOfRange("0".into()));
        assert_eq!(error("65536"), PortSpecError::OutOfRange("65536".into()));
        assert_eq!(error("99999999999"), PortSpecError::OutOfRange("99999999999".into()));
        assert_eq!(error("ssh"), PortSpecError::NotAPort("ssh".into()));
        assert_eq!(error("-5"), PortSpecError::NotAPort("".into()));
        assert_eq!(error("100-50"), PortSpecError::Backwards("100-50".into(), 50, 100));
        assert_eq!(error("top0"), PortSpecError::TopTooLarge(0));
        assert_eq!(error("top5000"), PortSpecError::TopTooLarge(5000));
        assert!(error("100-50").to_string().contains("50-100"));
        assert!(error("top5000").to_string().contains("top1000"));
    }

    #[test]
    fn a_spec_of_more_items_than_the_cap_is_refused_naming_the_cap() {
        let dashes = vec!["-"; 30_000].join(",");
        let error = PortSpec::parse(&dashes).unwrap_err();
        assert_eq!(error, PortSpecError::TooManyItems(30_000, MAX_ITEMS));
        assert!(error.to_string().contains("1024 allowed"), "{error}");
        assert_eq!(ports(&vec!["-"; MAX_ITEMS].join(",")).len(), 65_535, "the cap itself is fine");
        assert_eq!(PortSpec::parse_at_most(&dashes, 30_000).unwrap().ports.len(), 65_535);
        assert_eq!(PortSpec::parse_at_most("1,2,3", 2), Err(PortSpecError::TooManyItems(3, 2)));
    }

    #[test]
    fn errors_quote_a_long_spec_in_part_only() {
        let long = format!("{},,1", "1".repeat(10_000));
        let message = PortSpec::parse(&long).unwrap_err().to_string();
        assert!(message.len() < 300, "{message}");
        assert!(message.contains("…"), "{message}");
    }

    /// A spec written as items (`port`, `low-high`), and the ports it means, counted one by one.
    fn spec_and_ports() -> impl proptest::strategy::Strategy<Value = (String, Vec<u16>)> {
        use proptest::prelude::*;
        let item = prop_oneof![
            (1u16..).prop_map(|port| (port.to_string(), vec![port])),
            (1u16.., 0u16..300).prop_map(|(low, width)| {
                let high = low.saturating_add(width);
                (format!("{low}-{high}"), (low..=high).collect())
            }),
        ];
        proptest::collection::vec(item, 1..40).prop_map(|items| {
            let text = items.iter().map(|(text, _)| text.as_str()).collect::<Vec<_>>().join(",");
            let mut ports: Vec<u16> = items.into_iter().flat_map(|(_, ports)| ports).collect();
            ports.sort_unstable();
            ports.dedup();
            (text, ports)
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(300))]

        #[test]
        fn any_spec_parses_to_the_ports_it_names((text, expected) in spec_and_ports()) {
            let spec = PortSpec::parse(&text).unwrap();
            proptest::prop_assert_eq!(&spec.ports, &expected);
            for port in [0u16, 1, 80, 1000, 65_535].into_iter().chain(expected.iter().copied().take(5)) {
                proptest::prop_assert_eq!(spec.contains(port), expected.binary_search(&port).is_ok());
            }
        }

        #[test]
        fn any_text_parses_or_says_what_is_wrong_in_a_line(
            text in proptest::prop_oneof!["\\PC{0,80}", "[0-9,\\- a-zA-Z]{0,120}", "[-,]{0,3000}"],
        ) {
            match PortSpec::parse(&text) {
                Ok(spec) => {
                    proptest::prop_assert!(!spec.ports.is_empty());
                    proptest::prop_assert!(spec.ports.windows(2).all(|pair| pair[0] < pair[1]));
                }
                Err(error) => {
                    let message = error.to_string();
                    proptest::prop_assert!(!message.is_empty() && message.len() < 400, "{}", message);
                    proptest::prop_assert!(!message.contains('\n'));
                }
            }
        }
    }
}
