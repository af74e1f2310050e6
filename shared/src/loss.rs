//! Packet loss estimated from tries: how many connects went out, how many got any answer (a
//! SYN-ACK or a reset), and the loss rate's 95% confidence interval by the Wilson score method,
//! so that "5 of 10 unanswered" reads as "about 50%, 95% CI 24-76%": honest about how little ten
//! tries can tell.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// The normal quantile of a two-sided 95% interval.
const Z_95: f64 = 1.959_963_984_540_054;

/// Connects sent to one port and how many were answered, before any estimate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tries {
    /// Connects sent.
    pub sent: u32,
    /// Connects that got an answer (open or refused).
    pub answered: u32,
    /// Of those, the ones answered with a SYN-ACK (the port open).
    #[serde(default)]
    pub open: u32,
}

impl Tries {
    /// These tries and `other`'s together.
    pub fn plus(self, other: Tries) -> Tries {
        Tries {
            sent: self.sent + other.sent,
            answered: self.answered + other.answered,
            open: self.open + other.open,
        }
    }

    /// The loss they imply.
    pub fn loss(self) -> Loss {
        Loss::of(self.sent, self.answered)
    }
}

/// Tries and answers, and the loss rate they imply.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Loss {
    /// Connects sent.
    pub sent: u32,
    /// Connects that got an answer (open or refused).
    pub answered: u32,
    /// The share of connects unanswered, from 0 to 1.
    pub rate: f64,
    /// The lower end of the rate's 95% confidence interval.
    pub ci_low: f64,
    /// The upper end of the rate's 95% confidence interval.
    pub ci_high: f64,
}

impl Loss {
    /// The loss of `sent` tries of which `answered` got an answer (at most `sent`).
    pub fn of(sent: u32, answered: u32) -> Loss {
        let answered = answered.min(sent);
        let (ci_low, ci_high) = wilson_interval(sent - answered, sent);
        let rate = if sent == 0 { 0.0 } else { f64::from(sent - answered) / f64::from(sent) };
        Loss { sent, answered, rate, ci_low, ci_high }
    }

    /// How many tries went unanswered.
    pub fn lost(&self) -> u32 {
        self.sent - self.answered
    }

    /// "about 50% of connects unanswered (5 of 10), 95% CI 24-76%".
    pub fn describe(&self) -> String {
        format!(
            "about {} of connects unanswered ({} of {}), 95% CI {}-{}%",
            percent(self.rate),
            self.lost(),
            self.sent,
            (self.ci_low * 100.0).round(),
            (self.ci_high * 100.0).round(),
        )
    }
}

/// A rate as a whole percentage ("30%").
pub fn percent(rate: f64) -> String {
    format!("{}%", (rate * 100.0).round())
}

/// The Wilson score interval for `successes` out of `trials` at 95%: `(0, 1)` without trials.
pub fn wilson_interval(successes: u32, trials: u32) -> (f64, f64) {
    if trials == 0 {
        return (0.0, 1.0);
    }
    let n = f64::from(trials);
    let p = f64::from(successes) / n;
    let z2 = Z_95 * Z_95;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z_95 / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// The connects to one address and port that a check sent, and how they were answered: the
/// evidence that tells a lossy path (some answered, some not) from a firewall (none answered).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LossFinding {
    /// The address connected to.
    pub address: IpAddr,
    /// The port connected to.
    pub port: u16,
    /// Tries and answers.
    #[serde(flatten)]
    pub loss: Loss,
    /// Tries answered with a SYN-ACK: the port is open when packets get through.
    pub open: u32,
    /// Tries answered with a reset: the port is closed when packets get through.
    pub refused: u32,
    /// Tries answered with an ICMP error (a reject or an unreachable): these keep their own
    /// meaning, and a lossy path is not concluded beside them.
    #[serde(default)]
    pub icmp_errors: u32,
}

impl LossFinding {
    /// Its tries and answers, without the estimate.
    pub fn tries(&self) -> Tries {
        Tries { sent: self.loss.sent, answered: self.loss.answered, open: self.open }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 0.005
    }

    #[test]
    fn the_wilson_interval_matches_published_values() {
        // 5 of 10: 0.237-0.763; 0 of 10: 0-0.278; 10 of 10: 0.722-1 (Wilson 1927, as tabled in
        // Newcombe 1998).
        let (low, high) = wilson_interval(5, 10);
        assert!(close(low, 0.237) && close(high, 0.763), "{low} {high}");
        let (low, high) = wilson_interval(0, 10);
        assert!(close(low, 0.0) && close(high, 0.278), "{low} {high}");
        let (low, high) = wilson_interval(10, 10);
        assert!(close(low, 0.722) && close(high, 1.0), "{low} {high}");
        assert_eq!(wilson_interval(0, 0), (0.0, 1.0));
    }

    #[test]
    fn loss_is_described_with_its_interval() {
        let loss = Loss::of(10, 5);
        assert_eq!(loss.lost(), 5);
        assert_eq!(loss.describe(), "about 50% of connects unanswered (5 of 10), 95% CI 24-76%");
        assert_eq!(Loss::of(3, 7).answered, 3, "never more answers than tries");
    }

    #[test]
    fn a_loss_finding_flattens_its_figures_into_json() {
        let finding = LossFinding {
            address: "10.0.1.2".parse().unwrap(),
            port: 8080,
            loss: Loss::of(4, 2),
            open: 2,
            refused: 0,
            icmp_errors: 0,
        };
        let json = serde_json::to_value(&finding).unwrap();
        assert_eq!((json["sent"].as_u64(), json["answered"].as_u64()), (Some(4), Some(2)));
        assert_eq!(json["rate"].as_f64(), Some(0.5));
        assert!(json["ci_low"].as_f64().unwrap() > 0.1);
        assert_eq!(serde_json::from_value::<LossFinding>(json).unwrap(), finding);
    }
}
