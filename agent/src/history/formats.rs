//! The pinned text formats of history's settings and queries: durations (`30s`, `10m`, `24h`,
//! `30d`, and `10ms` for a watch's interval), sizes (`500MB`), `since=` (RFC 3339 in UTC, or a
//! duration back from now) and result ids.

use std::time::{Duration, SystemTime};

use ring::rand::{SecureRandom, SystemRandom};

/// The units a duration may carry, longest suffix first (so `ms` is not read as `m`).
const DURATION_UNITS: [(&str, u64); 5] =
    [("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)];

/// The units a size may carry, longest suffix first: decimal (`KB` = 1000) and binary
/// (`KiB` = 1024).
const SIZE_UNITS: [(&str, u64); 7] = [
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("KB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
    ("B", 1),
];

/// A duration: a whole number and one unit, `ms`, `s`, `m`, `h` or `d`, without spaces
/// (`10ms`, `30s`, `10m`, `24h`, `30d`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || {
        format!(
            "'{text}' is not a duration: write a whole number and a unit, as 10ms, 30s, 10m, 24h or 30d"
        )
    };
    let (number, unit_ms) = DURATION_UNITS
        .iter()
        .find_map(|(unit, ms)| text.strip_suffix(unit).map(|number| (number, *ms)))
        .ok_or_else(invalid)?;
    let count: u64 = parse_whole(number).ok_or_else(invalid)?;
    count.checked_mul(unit_ms).map(Duration::from_millis).ok_or_else(invalid)
}

/// A duration as [`parse_duration`] reads it, in the largest unit that divides it (`1s`,
/// `200ms`, `10m`).
pub fn duration_text(duration: Duration) -> String {
    let ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
    let (unit, size) = DURATION_UNITS
        .iter()
        .rev()
        .find(|(_, size)| ms > 0 && ms % size == 0)
        .copied()
        .unwrap_or(("ms", 1));
    format!("{}{unit}", ms / size)
}

/// A size: a whole number and one unit, `B`, `KB`, `MB`, `GB` (powers of 1000) or `KiB`,
/// `MiB`, `GiB` (powers of 1024), without spaces (`500MB`).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let invalid = || {
        format!("'{text}' is not a size: write a whole number and a unit, as 500MB, 2GB or 64MiB")
    };
    let (number, unit) = SIZE_UNITS
        .iter()
        .find_map(|(unit, bytes)| text.strip_suffix(unit).map(|number| (number, *bytes)))
        .ok_or_else(invalid)?;
    parse_whole(number).and_then(|count| count.checked_mul(unit)).ok_or_else(invalid)
}

/// Digits only: no sign, no spaces, no fraction.
fn parse_whole(digits: &str) -> Option<u64> {
    match !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        true => digits.parse().ok(),
        false => None,
    }
}

/// The moment `since=` names: an RFC 3339 timestamp in UTC (`2026-12-02T09:00:00Z`, fractions
/// allowed), or a duration back from `now` (`1h`).
pub fn parse_since(text: &str, now: SystemTime) -> Result<SystemTime, String> {
    if let Ok(at) = humantime::parse_rfc3339(text) {
        return Ok(at);
    }
    let back = parse_duration(text).map_err(|_| {
        format!(
            "'{text}' is neither an RFC 3339 time in UTC (2026-12-02T09:00:00Z) nor a duration \
             (30s, 10m, 24h, 30d)"
        )
    })?;
    Ok(now.checked_sub(back).unwrap_or(SystemTime::UNIX_EPOCH))
}

/// The letters of a result id: digits and lower-case letters without i, l, o and u
/// (Crockford's base 32), so an id read aloud or retyped is not misread.
const ID_ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// How many characters a result id has: 10, that is 50 random bits.
pub const ID_LENGTH: usize = 10;

/// A new result id: ten characters of [`ID_ALPHABET`] from the system's random source.
pub fn new_id() -> String {
    let mut bytes = [0u8; 8];
    // Without a kernel random source the id would repeat and the insert fail loudly (the
    // column is unique): never a silent overwrite.
    let _ = SystemRandom::new().fill(&mut bytes);
    let mut bits = u64::from_be_bytes(bytes);
    (0..ID_LENGTH)
        .map(|_| {
            let letter = ID_ALPHABET[(bits & 31) as usize];
            bits >>= 5;
            letter as char
        })
        .collect()
}

/// Whether `text` could be a result id (so a path segment can be refused before any query).
pub fn is_id(text: &str) -> bool {
    text.len() == ID_LENGTH && text.bytes().all(|b| ID_ALPHABET.contains(&b))
}

/// Milliseconds since the Unix epoch, as history stores times.
pub fn unix_ms(at: SystemTime) -> i64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A stored time as RFC 3339 in UTC with milliseconds.
pub fn rfc3339_ms(unix_ms: i64) -> String {
    let at = SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(unix_ms).unwrap_or(0));
    humantime::format_rfc3339_millis(at).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_a_whole_number_and_one_unit() {
        assert_eq!(parse_duration("10ms"), Ok(Duration::from_millis(10)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86_400)));
        for bad in ["", "30", "d", "1.5h", "-1s", "1 h", "1h30m", "30 d", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        for text in ["200ms", "1s", "90s", "10m", "36h", "30d", "1500ms"] {
            assert_eq!(duration_text(parse_duration(text).unwrap()), text, "written back");
        }
    }

    #[test]
    fn sizes_are_decimal_or_binary_units() {
        assert_eq!(parse_size("500MB"), Ok(500_000_000));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("2GB"), Ok(2_000_000_000));
        assert_eq!(parse_size("4096B"), Ok(4096));
        for bad in ["", "500", "MB", "1.5GB", "500 MB", "500mb", "-1MB"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn since_is_a_utc_timestamp_or_a_duration_back_from_now() {
        let now = humantime::parse_rfc3339("2026-12-02T10:00:00Z").unwrap();
        assert_eq!(
            parse_since("2026-12-02T09:00:00Z", now),
            humantime::parse_rfc3339("2026-12-02T09:00:00Z").map_err(|e| e.to_string())
        );
        assert_eq!(parse_since("1h", now), Ok(now - Duration::from_secs(3600)));
        assert!(parse_since("yesterday", now).is_err());
    }

    #[test]
    fn ids_are_ten_unambiguous_characters_and_differ() {
        let (first, second) = (new_id(), new_id());
        assert!(is_id(&first) && is_id(&second), "{first} {second}");
        assert_ne!(first, second);
        assert!(!is_id("ABCDEFGHJK") && !is_id("0123456789a") && !is_id("0123456i89"));
    }

    #[test]
    fn stored_times_read_back_as_rfc3339() {
        let at = humantime::parse_rfc3339("2026-12-02T09:00:00.250Z").unwrap();
        assert_eq!(rfc3339_ms(unix_ms(at)), "2026-12-02T09:00:00.250Z");
    }
}
