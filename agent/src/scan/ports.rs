//! Port specs (`22,80,8000-8100`, `1-65535`, `all`, `top100`, `top1000`) and the service usually
//! found on a port, from the shipped list of common ports (`top-ports.txt`).

use std::collections::HashMap;
use std::sync::OnceLock;

/// The shipped list: `PORT SERVICE` lines, most often open first.
const TOP_PORTS: &str = include_str!("top-ports.txt");

/// The forms a valid spec takes, quoted by error messages.
pub const VALID_SPECS: &str = "ports and ranges separated by commas (22,80,8000-8100), 1-65535 \
                               or all, top100 or top1000 (the most common ports)";

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
}

/// A parsed spec: distinct ports in ascending order, and the spec as written back for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    /// The spec, normalised (lowercase, no spaces).
    pub text: String,
    /// Every port, ascending, each once.
    pub ports: Vec<u16>,
}

impl PortSpec {
    /// Parses a spec.
    pub fn parse(input: &str) -> Result<PortSpec, PortSpecError> {
        let text: String = input.chars().filter(|c| !c.is_whitespace()).collect();
        let text = text.to_ascii_lowercase();
        if text.is_empty() {
            return Err(PortSpecError::Empty);
        }
        let mut wanted = vec![false; 65_536];
        for item in text.split(',') {
            if item.is_empty() {
                return Err(PortSpecError::EmptyItem(text.clone()));
            }
            for port in parse_item(item)? {
                wanted[usize::from(port)] = true;
            }
        }
        let ports = (1..=u16::MAX).filter(|port| wanted[usize::from(*port)]).collect();
        Ok(PortSpec { text, ports })
    }
}

/// The ports one comma-separated item names.
fn parse_item(item: &str) -> Result<Vec<u16>, PortSpecError> {
    if item == "all" || item == "-" {
        return Ok((1..=u16::MAX).collect());
    }
    if let Some(count) = item.strip_prefix("top") {
        let count: usize = count.parse().map_err(|_| PortSpecError::NotAPort(item.into()))?;
        let list = top_ports();
        if count == 0 || count > list.len() {
            return Err(PortSpecError::TopTooLarge(count));
        }
        return Ok(list[..count].iter().map(|(port, _)| *port).collect());
    }
    match item.split_once('-') {
        Some((low, high)) => {
            let (low, high) = (parse_port(low)?, parse_port(high)?);
            if low > high {
                return Err(PortSpecError::Backwards(item.into(), high, low));
            }
            Ok((low..=high).collect())
        }
        None => Ok(vec![parse_port(item)?]),
    }
}

fn parse_port(text: &str) -> Result<u16, PortSpecError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PortSpecError::NotAPort(text.into()));
    }
    match text.parse::<u32>() {
        Ok(port @ 1..=65_535) => Ok(port as u16),
        _ => Err(PortSpecError::OutOfRange(text.into())),
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
}
