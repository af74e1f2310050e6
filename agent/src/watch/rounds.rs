//! One watch's rounds, the same for every caller: the command line's `whyrefused watch` (here,
//! or through a hub) and the agent's own watches (`hub::watches`).
//!
//! A round runs the check at every vantage point of the watch (its [`Source`]), without the
//! path trace; the parts combine under the quorum ([`super::quorum`]). When the combined cause
//! is new (the first round, or a change), the round runs again with the full diagnosis (every
//! side probe and the path trace), so the evidence kept is from the moment of the change. Each
//! part is stored as a result with the watch's id, the round itself as the watch's round; a
//! change is POSTed to the webhook in the background.

use std::collections::VecDeque;
use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

use tokio::task::JoinSet;
use tracing::warn;
use whyrefused_shared::{Change, CheckReport, WatchRound};

use super::quorum::{Part, Quorum, combine};
use super::webhook::{ChangeBody, Webhook};
use super::{LATENCY_WINDOW, Watch};
use crate::history::{Asker, Entry, History, RoundRow, formats};

/// Where a watch's rounds run.
pub trait Source {
    /// Runs the check once at each of the watch's vantage points: with `diagnose`, the full
    /// diagnosis (the path traced whatever the outcome), else without the path trace. Each
    /// vantage point's part, in the watch's order.
    fn run(&self, diagnose: bool) -> impl Future<Output = Vec<Part>> + Send;
}

/// Where a watch's rounds are stored, and as whose.
#[derive(Debug, Clone)]
pub struct Storage {
    pub history: History,
    /// The token's name of whoever made the watch.
    pub token: Option<String>,
    /// Through what the rounds were asked, as results say it (`watch`).
    pub source: &'static str,
}

/// What a watch is, besides where it runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Its id, stored with each round.
    pub id: String,
    /// The target as the user gave it (for the webhook's text).
    pub target: String,
    pub quorum: Quorum,
    pub storage: Option<Storage>,
    pub webhook: Option<Webhook>,
    /// The base of the links a webhook carries (`serve --public-url`).
    pub public_url: Option<String>,
}

/// What one round saw.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The round as it counted.
    pub round: WatchRound,
    /// Each vantage point's part.
    pub parts: Vec<Part>,
    /// The change it saw, and the body POSTed for it.
    pub change: Option<(Change, ChangeBody)>,
}

impl Seen {
    /// The report that stands for the round: the first part whose cause is the round's, else
    /// the first part.
    pub fn report(&self) -> &CheckReport {
        let matching = self.parts.iter().find(|part| part.cause() == self.round.cause);
        static EMPTY: std::sync::OnceLock<CheckReport> = std::sync::OnceLock::new();
        matching
            .or(self.parts.first())
            .map_or_else(|| EMPTY.get_or_init(CheckReport::default), |part| &part.report)
    }
}

/// A watch's rounds so far, and what runs the next one.
pub struct Rounds<S> {
    source: S,
    settings: Settings,
    watch: Watch,
    /// Webhook deliveries still running.
    deliveries: JoinSet<()>,
    /// How long each recent round spent handing its results to the history, in microseconds.
    storage_us: VecDeque<f64>,
}

impl<S: Source> Rounds<S> {
    /// A new watch's rounds.
    pub fn new(source: S, settings: Settings) -> Rounds<S> {
        Rounds::resumed(source, settings, Watch::default())
    }

    /// A stored watch's rounds, going on from what `watch` saw before.
    pub fn resumed(source: S, settings: Settings, watch: Watch) -> Rounds<S> {
        Rounds { source, settings, watch, deliveries: JoinSet::new(), storage_us: VecDeque::new() }
    }

    /// What the rounds saw so far.
    pub fn watch(&self) -> &Watch {
        &self.watch
    }

    /// The watch's settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Runs the next round: the check at every vantage point, again with the full diagnosis
    /// when the combined cause is new; stores it, counts it, POSTs a change.
    pub async fn next(&mut self) -> Seen {
        self.reap();
        // To the millisecond, as the history keeps it: the live round and the stored one agree.
        let at = formats::rfc3339_ms(formats::unix_ms(SystemTime::now()));
        let quorum = self.settings.quorum;
        let mut parts = self.source.run(false).await;
        let mut combined = combine(&parts, quorum);
        if self.watch.needs_diagnosis(combined.cause) {
            parts = self.source.run(true).await;
            combined = combine(&parts, quorum);
        }
        let results: Vec<Option<String>> = parts.iter().map(|part| self.store(&at, part)).collect();
        let stands_for = parts
            .iter()
            .position(|part| part.cause() == combined.cause)
            .or_else(|| parts.iter().position(|part| part.vantage == "local"))
            .unwrap_or(0);
        let result = results.get(stands_for).cloned().flatten();
        let observed =
            self.watch.observe_cause(&at, combined.cause, combined.connect_ms, result.clone());
        let vantages = match parts.len() {
            1 => Vec::new(),
            _ => parts.iter().zip(&results).map(|(part, id)| part.round(id.clone())).collect(),
        };
        let round = WatchRound {
            round: observed.round,
            at,
            cause: combined.cause,
            reachable: combined.cause.is_reachable(),
            connect_ms: combined.connect_ms,
            changed: observed.changed,
            result,
            vantages,
        };
        if let Some(storage) = &self.settings.storage {
            let row = RoundRow { watch: self.settings.id.clone(), round: round.clone() };
            storage.history.record_round(row);
        }
        let mut seen = Seen { round, parts, change: None };
        if observed.changed
            && let Some(change) = self.watch.last_change()
        {
            let vantage = self.vantage(&seen);
            let body = ChangeBody::new(&self.settings.target, &vantage, &change, seen.report())
                .linked(self.settings.public_url.as_deref());
            self.announce(&body);
            seen.change = Some((change, body));
        }
        seen
    }

    /// Where the watch runs from, as the webhook says it: one vantage point's name, or the
    /// names and the quorum.
    fn vantage(&self, seen: &Seen) -> String {
        let names: Vec<&str> = seen.parts.iter().map(|part| part.vantage.as_str()).collect();
        match names.as_slice() {
            [] => "local".into(),
            [one] => one.to_string(),
            many => format!("{} (down when {} fail)", many.join(", "), self.settings.quorum),
        }
    }

    /// Stores one vantage point's part of the round that started `at`; its id.
    fn store(&mut self, at: &str, part: &Part) -> Option<String> {
        let storage = self.settings.storage.as_ref()?;
        let asker = Asker {
            vantage: part.vantage.clone(),
            token: storage.token.clone(),
            source: storage.source,
            watch: Some(self.settings.id.clone()),
        };
        let mut entry = Entry::of_check(&part.report, asker, SystemTime::now())?;
        // The round's start, not its diagnosis's: the time the change was seen.
        if let Ok(started) = humantime::parse_rfc3339(at) {
            entry.started_ms = formats::unix_ms(started);
        }
        let start = Instant::now();
        let id = storage.history.record(entry);
        if self.storage_us.len() == LATENCY_WINDOW {
            self.storage_us.pop_front();
        }
        self.storage_us.push_back(start.elapsed().as_secs_f64() * 1e6);
        Some(id)
    }

    /// POSTs a change to the webhook, in the background.
    fn announce(&mut self, body: &ChangeBody) {
        let Some(webhook) = self.settings.webhook.clone() else { return };
        let (body, id) = (body.clone(), self.settings.id.clone());
        self.deliveries.spawn(async move {
            if let Err(error) = webhook.deliver(&body).await {
                warn!(watch = id, round = body.round, %error, "a change was not delivered");
            }
        });
    }

    /// Forgets the deliveries that ended.
    fn reap(&mut self) {
        while self.deliveries.try_join_next().is_some() {}
    }

    /// Waits at most `deadline` for the deliveries still running; says whether they ended.
    pub async fn finish(&mut self, deadline: Duration) -> bool {
        let waiting = async { while self.deliveries.join_next().await.is_some() {} };
        tokio::time::timeout(deadline, waiting).await.is_ok()
    }

    /// How long storing each recent round took, in microseconds, sorted.
    pub fn storage_us(&self) -> Vec<f64> {
        let mut sorted: Vec<f64> = self.storage_us.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        sorted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use whyrefused_shared::{Cause, Verdict};

    /// A source whose vantage points give the causes the test scripts, round by round.
    struct Scripted {
        rounds: Mutex<VecDeque<Vec<Cause>>>,
        diagnosed: Mutex<Vec<bool>>,
    }

    impl Source for &Scripted {
        async fn run(&self, diagnose: bool) -> Vec<Part> {
            self.diagnosed.lock().unwrap().push(diagnose);
            // A diagnosis runs again the round the plain run just saw; the test moves on.
            let causes = self.rounds.lock().unwrap().front().cloned().unwrap_or_default();
            causes
                .iter()
                .enumerate()
                .map(|(index, cause)| Part {
                    vantage: format!("v{index}"),
                    report: CheckReport {
                        verdict: Some(Verdict {
                            cause: *cause,
                            summary: String::new(),
                            suggestions: vec![],
                            evidence: vec![],
                            pattern: None,
                        }),
                        ..CheckReport::default()
                    },
                    outcome: None,
                    errors: vec![],
                })
                .collect()
        }
    }

    impl Scripted {
        fn advance(&self) {
            self.rounds.lock().unwrap().pop_front();
        }
    }

    #[tokio::test]
    async fn a_round_across_vantage_points_follows_the_quorum_and_is_diagnosed_on_a_change() {
        use Cause::{PortClosed as Closed, Reachable as Up};
        let script = Scripted {
            rounds: Mutex::new(VecDeque::from([
                vec![Up, Up],
                vec![Up, Closed],
                vec![Closed, Closed],
                vec![Closed, Closed],
            ])),
            diagnosed: Mutex::new(Vec::new()),
        };
        let settings = Settings {
            id: "w1".into(),
            target: "db:5432".into(),
            quorum: Quorum::parse("2/2", Some(2)).unwrap(),
            storage: None,
            webhook: None,
            public_url: None,
        };
        let mut rounds = Rounds::new(&script, settings);
        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.push(rounds.next().await);
            script.advance();
        }
        let causes: Vec<Cause> = seen.iter().map(|s| s.round.cause).collect();
        assert_eq!(causes, [Up, Up, Closed, Closed], "one of two failing keeps it up");
        assert_eq!(seen[1].round.vantages[1].cause, Closed, "each vantage point's part is kept");
        let changed: Vec<bool> = seen.iter().map(|s| s.round.changed).collect();
        assert_eq!(changed, [false, false, true, false]);
        let (change, body) = seen[2].change.clone().expect("the change");
        assert_eq!((change.from, change.to, change.round), (Up, Closed, 3));
        assert!(body.text.contains("v0, v1 (down when 2/2 fail)"), "{}", body.text);
        assert_eq!(
            *script.diagnosed.lock().unwrap(),
            [false, true, false, false, true, false],
            "the first round and the change ran again with the full diagnosis"
        );
        assert_eq!(rounds.watch().summary().uptime_percent, 50.0);
    }
}
