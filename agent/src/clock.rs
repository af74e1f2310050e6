//! Wall-clock timestamps and elapsed-time conversions used on every event.

use std::time::{Duration, SystemTime};

use whyrefused_shared::Timestamp;

/// Now, as an RFC 3339 UTC timestamp with microseconds.
pub fn now() -> Timestamp {
    Timestamp(humantime::format_rfc3339_micros(SystemTime::now()).to_string())
}

/// A duration in whole microseconds (saturating; a check never lasts 584,000 years).
pub fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// A duration in milliseconds with microsecond precision.
pub fn millis(duration: Duration) -> f64 {
    micros(duration) as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc_with_microseconds() {
        let Timestamp(text) = now();
        assert_eq!(text.len(), "2026-11-24T10:00:00.123456Z".len(), "{text}");
        assert!(text.ends_with('Z') && text.as_bytes()[10] == b'T', "{text}");
    }

    #[test]
    fn durations_keep_microsecond_precision() {
        let duration = Duration::from_nanos(1_234_567);
        assert_eq!(micros(duration), 1234);
        assert_eq!(millis(duration), 1.234);
    }
}
