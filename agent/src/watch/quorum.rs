//! The quorum across vantage points: "down when N of the M vantage points fail" (`2/3`), and
//! how one round's parts, one a vantage point, make the round's state.
//!
//! A vantage point fails a round when its verdict is anything but `reachable`, or when it gave
//! none: offline, silent past its deadline, or refusing the request (its part says which, as
//! its `outcome`). The round is down when at least N fail; its cause is then the cause most of
//! the failing ones gave (a tie goes to the one listed first, and a known cause beats the
//! `unknown` of a vantage point that gave none); else it is `reachable`. Its connect time is
//! the slowest of those that connected.

use whyrefused_shared::{Cause, CheckReport, Outcome, VantageRound};

use crate::history::record::connect_us;

/// "Down when `down_when` of `of` vantage points fail".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quorum {
    /// N: how many failing vantage points make a round down.
    pub down_when: usize,
    /// M: how many vantage points the watch runs from.
    pub of: usize,
}

impl Quorum {
    /// Down when any of `vantages` fails: the rule without `--quorum`.
    pub fn any_of(vantages: usize) -> Quorum {
        Quorum { down_when: 1, of: vantages.max(1) }
    }

    /// Reads `N/M` (`2/3`) and checks it against the watch's `vantages` vantage points (`None`
    /// when the list holds `all`, whose count changes as agents join and leave: then the share
    /// N/M of the vantage points of each round is what counts).
    pub fn parse(text: &str, vantages: Option<usize>) -> Result<Quorum, String> {
        // Said back as given, but never a control character (it may come from the network).
        let shown: String = text.chars().take(32).flat_map(char::escape_default).collect();
        let text = shown.as_str();
        let invalid = || {
            format!(
                "'{text}' is not a quorum: write N/M, as 2/3 (down when 2 of the 3 vantage \
                 points fail)"
            )
        };
        let (n, m) = text.split_once('/').filter(|_| text.len() <= 32).ok_or_else(invalid)?;
        let whole = |digits: &str| match digits.bytes().all(|b| b.is_ascii_digit()) {
            true => digits.parse::<usize>().ok(),
            false => None,
        };
        let (down_when, of) = (whole(n).ok_or_else(invalid)?, whole(m).ok_or_else(invalid)?);
        if down_when == 0 || of == 0 {
            return Err(format!("the quorum '{text}': N and M are at least 1"));
        }
        if down_when > of {
            return Err(format!(
                "the quorum '{text}': N ({down_when}) is more than M ({of}): the watch could \
                 never be down"
            ));
        }
        if let Some(count) = vantages.filter(|count| *count != of) {
            return Err(format!(
                "the quorum '{text}' counts {of} vantage points, but the watch runs from \
                 {count}: write N/{count}"
            ));
        }
        Ok(Quorum { down_when, of })
    }

    /// How many of `count` vantage points failing make a round down: N, or the share N/M of
    /// `count` (rounded up) when the round ran from another number than M.
    pub fn threshold(&self, count: usize) -> usize {
        match count == self.of {
            true => self.down_when,
            false => (self.down_when * count).div_ceil(self.of).max(1),
        }
    }
}

impl std::fmt::Display for Quorum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.down_when, self.of)
    }
}

/// One vantage point's part of a round.
#[derive(Debug, Clone, Default)]
pub struct Part {
    /// The vantage point (`local` for the machine the watch runs on).
    pub vantage: String,
    /// Its report (without a verdict when it gave none).
    pub report: CheckReport,
    /// How its part ended, when not run to the end (offline, silent, refused).
    pub outcome: Option<Outcome>,
    /// What it said when it refused the request.
    pub errors: Vec<String>,
}

impl Part {
    /// Its verdict's cause; `unknown` when it gave none.
    pub fn cause(&self) -> Cause {
        self.report.verdict.as_ref().map_or(Cause::Unknown, |verdict| verdict.cause)
    }

    /// Whether it fails the round.
    pub fn fails(&self) -> bool {
        !self.cause().is_reachable()
    }

    /// Its connect time in milliseconds.
    pub fn connect_ms(&self) -> Option<f64> {
        connect_us(&self.report).map(|us| us as f64 / 1000.0)
    }

    /// Its part as a round lists it, stored as `result`.
    pub fn round(&self, result: Option<String>) -> VantageRound {
        VantageRound {
            vantage: self.vantage.clone(),
            cause: self.cause(),
            connect_ms: self.connect_ms(),
            result,
            outcome: self.outcome.filter(|outcome| *outcome != Outcome::Completed),
        }
    }
}

/// What a round's parts make together.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Combined {
    /// `reachable` while fewer than the quorum fail, else the failing ones' commonest cause.
    pub cause: Cause,
    /// How many parts failed.
    pub failing: usize,
    /// The slowest connect time of the parts that connected.
    pub connect_ms: Option<f64>,
}

/// Combines a round's parts under `quorum`.
pub fn combine(parts: &[Part], quorum: Quorum) -> Combined {
    let failing: Vec<Cause> = parts.iter().filter(|p| p.fails()).map(Part::cause).collect();
    let connect_ms = parts
        .iter()
        .filter(|part| !part.fails())
        .filter_map(Part::connect_ms)
        .fold(None, |slowest: Option<f64>, ms| Some(slowest.map_or(ms, |s| s.max(ms))));
    // A single part is the round: its own connect time, whatever its outcome.
    let connect_ms = match parts {
        [only] => only.connect_ms(),
        _ => connect_ms,
    };
    let down = !parts.is_empty() && failing.len() >= quorum.threshold(parts.len());
    let cause = match down {
        true => commonest(&failing),
        false if parts.is_empty() => Cause::Unknown,
        false => Cause::Reachable,
    };
    Combined { cause, failing: failing.len(), connect_ms }
}

/// The cause given most often; a tie goes to the first listed, and `unknown` loses every tie.
fn commonest(causes: &[Cause]) -> Cause {
    let mut best: Option<(Cause, usize)> = None;
    for &cause in causes {
        let n = causes.iter().filter(|c| **c == cause).count();
        let beats = match best {
            None => true,
            Some((held, held_n)) => {
                n > held_n || (n == held_n && held == Cause::Unknown && cause != Cause::Unknown)
            }
        };
        if beats {
            best = Some((cause, n));
        }
    }
    best.map_or(Cause::Unknown, |(cause, _)| cause)
}

#[cfg(test)]
mod tests {
    use super::*;
    use whyrefused_shared::Verdict;

    fn part(vantage: &str, cause: Option<Cause>) -> Part {
        let verdict = cause.map(|cause| Verdict {
            cause,
            summary: String::new(),
            suggestions: vec![],
            evidence: vec![],
            pattern: None,
        });
        let outcome = match cause {
            Some(_) => Some(Outcome::Completed),
            None => Some(Outcome::VantageOffline),
        };
        Part {
            vantage: vantage.into(),
            report: CheckReport { verdict, ..CheckReport::default() },
            outcome,
            errors: vec![],
        }
    }

    #[test]
    fn a_quorum_is_n_of_m_checked_against_the_vantage_points() {
        assert_eq!(Quorum::parse("2/3", Some(3)), Ok(Quorum { down_when: 2, of: 3 }));
        assert_eq!(Quorum::parse("1/1", Some(1)).unwrap().to_string(), "1/1");
        let refused = |text: &str, count: Option<usize>, says: &str| {
            let error = Quorum::parse(text, count).unwrap_err();
            assert!(error.contains(says), "{text}: {error}");
        };
        refused("3/2", Some(2), "more than M");
        refused("0/3", Some(3), "at least 1");
        refused("2/3", Some(2), "write N/2");
        refused("two/3", Some(3), "write N/M");
        refused("2/3/4", Some(3), "write N/M");
        refused("-1/3", Some(3), "write N/M");
        refused("", None, "write N/M");
        assert_eq!(Quorum::parse("2/3", None), Ok(Quorum { down_when: 2, of: 3 }), "with all");
    }

    #[test]
    fn a_round_is_down_only_when_the_quorum_of_vantage_points_fail() {
        let quorum = Quorum::parse("2/3", Some(3)).unwrap();
        let one_fails = [
            part("a", Some(Cause::Reachable)),
            part("b", Some(Cause::Filtered)),
            part("c", Some(Cause::Reachable)),
        ];
        let up = combine(&one_fails, quorum);
        assert_eq!((up.cause, up.failing), (Cause::Reachable, 1));
        let two_fail = [
            part("a", Some(Cause::PortClosed)),
            part("b", Some(Cause::Filtered)),
            part("c", Some(Cause::Filtered)),
        ];
        assert_eq!(combine(&two_fail, quorum).cause, Cause::Filtered, "the commonest");
        let any = Quorum::any_of(3);
        assert_eq!(combine(&one_fails, any).cause, Cause::Filtered, "without a quorum: any");
    }

    #[test]
    fn a_tie_goes_to_the_first_listed_and_unknown_loses_ties() {
        let quorum = Quorum::parse("2/2", Some(2)).unwrap();
        let tied = [part("a", Some(Cause::PortClosed)), part("b", Some(Cause::Filtered))];
        assert_eq!(combine(&tied, quorum).cause, Cause::PortClosed);
        let reversed = [part("b", Some(Cause::Filtered)), part("a", Some(Cause::PortClosed))];
        assert_eq!(combine(&reversed, quorum).cause, Cause::Filtered);
        let offline_first = [part("a", None), part("b", Some(Cause::Filtered))];
        assert_eq!(combine(&offline_first, quorum).cause, Cause::Filtered);
        let quorum = Quorum::parse("3/3", Some(3)).unwrap();
        let two_unknown = [part("a", None), part("b", None), part("c", Some(Cause::Filtered))];
        assert_eq!(combine(&two_unknown, quorum).cause, Cause::Unknown, "2 against 1");
    }

    #[test]
    fn an_offline_vantage_point_fails_the_round_and_its_part_says_so() {
        let quorum = Quorum::parse("2/2", Some(2)).unwrap();
        let parts = [part("a", Some(Cause::Reachable)), part("b", None)];
        let combined = combine(&parts, quorum);
        assert_eq!((combined.cause, combined.failing), (Cause::Reachable, 1), "1 of 2: still up");
        let listed = parts[1].round(None);
        assert_eq!((listed.cause, listed.outcome), (Cause::Unknown, Some(Outcome::VantageOffline)));
        assert_eq!(parts[0].round(None).outcome, None, "a completed part says nothing more");
        let both = [part("a", Some(Cause::PortClosed)), part("b", None)];
        assert_eq!(combine(&both, quorum).cause, Cause::PortClosed);
    }

    #[test]
    fn with_all_the_share_of_the_rounds_vantage_points_counts() {
        let quorum = Quorum::parse("2/3", None).unwrap();
        assert_eq!(quorum.threshold(3), 2);
        assert_eq!(quorum.threshold(6), 4);
        assert_eq!(quorum.threshold(1), 1);
        assert_eq!(quorum.threshold(2), 2);
    }
}
