//! The agent's own watches (`POST /api/watches`, `whyrefused watches --add`): each a task that
//! runs its rounds here or at the hub's vantage points through the fan-out, the same rounds
//! as the command line's `whyrefused watch` ([`crate::watch::rounds`]). They keep running when
//! the page that made them closes, are stored in the history (the `watches` table: the spec
//! as JSON, who made it and when, its state) and resumed when the agent starts again.
//!
//! Bounded: at most [`WatchLimits::max_running`] run at once (`serve --max-watches`), none
//! more often than [`WatchLimits::min_every`] (`serve --min-watch-every`), and the registry
//! lists the running ones and the latest [`MAX_ENDED`] ended ones. Every round is held to the
//! agent's target policy and connect budget like any check; the webhook too.
//!
//! The registry sits at the hub layer because a watch from several vantage points needs the
//! hub's fan-out; the rounds themselves are the watch layer's.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use whyrefused_shared::{
    AgentMessage, CheckRequest, RequestId, WatchInfo, WatchListing, WatchSpec, WatchState,
    WatchSummary,
};

use super::fanout::{Fanout, Job, Work};
use super::link::ClientId;
use super::recorded::Folded;
use crate::app::AppState;
use crate::history::{Availability, History, WatchRow, WatchRowState, formats};
use crate::watch::Watch;
use crate::watch::quorum::Part;
use crate::watch::rounds::{Rounds, Settings, Source, Storage};
use crate::watch::spec::{self, Checked, SpecError};
use crate::watch::webhook::{Webhook, WebhookUrl};
use crate::wire::Frame;

/// How many ended watches the registry lists (the newest); older ones stay in the file.
pub const MAX_ENDED: usize = 100;

/// How long a stopped watch's task gets to end, and its webhooks to be delivered.
const STOP_DEADLINE: Duration = Duration::from_secs(10);

/// The most bytes of one round's events held per fan-out (a check's are a few KiB).
const ROUND_EVENTS_BYTES: usize = 1 << 20;

/// The bounds on an agent's own watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchLimits {
    /// How many may run at once.
    pub max_running: usize,
    /// The shortest interval between two rounds.
    pub min_every: Duration,
}

impl WatchLimits {
    /// Twenty watches, a round a second at most.
    pub const DEFAULT: WatchLimits =
        WatchLimits { max_running: 20, min_every: Duration::from_secs(1) };
}

impl Default for WatchLimits {
    fn default() -> Self {
        WatchLimits::DEFAULT
    }
}

/// Why a watch was not made or stopped; each says it in one line.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// A field of the spec is wrong.
    #[error("{0}")]
    Invalid(#[from] SpecError),
    /// As many watches run as the agent allows.
    #[error("this agent already runs {0} watches, its most (serve --max-watches): stop one first")]
    Full(usize),
    /// The agent keeps no history, so a watch could neither be stored nor resumed.
    #[error("this agent keeps no history ({0}): its watches are stored there, so it runs none")]
    NoHistory(String),
    /// No such watch.
    #[error("no watch {0} on this agent")]
    Unknown(String),
    /// The history could not store it.
    #[error("the watch could not be stored: {0}")]
    Store(String),
}

/// One listed watch, and the handle on its task while it runs.
struct Held {
    info: WatchInfo,
    stop: Option<CancellationToken>,
    task: Option<JoinHandle<()>>,
}

/// The agent's watches. Cheap to clone.
#[derive(Clone, Default)]
pub struct Watches {
    held: Arc<Mutex<VecDeque<Held>>>,
    /// Held while a watch is checked, stored and started: two at once cannot both take the
    /// last place under `max_running`.
    creating: Arc<tokio::sync::Mutex<()>>,
    limits: WatchLimits,
    /// The base of the links webhooks carry (`serve --public-url`).
    public_url: Option<Arc<str>>,
}

impl std::fmt::Debug for Watches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watches").field("limits", &self.limits).finish()
    }
}

impl Watches {
    /// No watches yet, within `limits`; webhooks link under `public_url`.
    pub fn new(limits: WatchLimits, public_url: Option<String>) -> Watches {
        Watches {
            held: Arc::default(),
            creating: Arc::default(),
            limits,
            public_url: public_url.map(Arc::from),
        }
    }

    /// Its bounds.
    pub fn limits(&self) -> WatchLimits {
        self.limits
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Held>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every listed watch, newest first.
    pub fn list(&self) -> WatchListing {
        let held = self.lock();
        WatchListing {
            watches: held.iter().map(|held| held.info.clone()).collect(),
            max_running: self.limits.max_running,
            min_every: formats::duration_text(self.limits.min_every),
        }
    }

    /// One watch.
    pub fn get(&self, id: &str) -> Option<WatchInfo> {
        self.lock().iter().find(|held| held.info.id == id).map(|held| held.info.clone())
    }

    /// Checks `spec`, stores it as made by `by`, and starts it.
    pub async fn create(
        &self,
        state: &AppState,
        spec: WatchSpec,
        by: Option<String>,
    ) -> Result<WatchInfo, WatchError> {
        let history = history_of(state)?;
        let checked = spec::check(&spec, self.limits.min_every, &state.policy)?;
        check_vantages(state, &checked)?;
        let _one_at_a_time = self.creating.lock().await;
        if self.running() >= self.limits.max_running {
            return Err(WatchError::Full(self.limits.max_running));
        }
        let row = WatchRow {
            id: formats::new_id(),
            spec: serde_json::to_string(&spec).unwrap_or_default(),
            created_ms: formats::unix_ms(SystemTime::now()),
            created_by: by,
            state: WatchRowState::Running,
            ended_ms: None,
            ended_by: None,
            summary: None,
        };
        let stored = row.clone();
        history
            .write(move |store| store.insert_watch(&stored))
            .await
            .map_err(|error| WatchError::Store(error.to_string()))?;
        info!(watch = row.id, target = ?spec.check.target, by = ?row.created_by, "watch made");
        let info = self.start(state, &history, &row, spec, checked, Watch::default());
        Ok(info)
    }

    /// How many run now.
    fn running(&self) -> usize {
        self.lock().iter().filter(|held| held.info.state == WatchState::Running).count()
    }

    /// Lists the watch and starts its task, going on from `seen`.
    fn start(
        &self,
        state: &AppState,
        history: &History,
        row: &WatchRow,
        spec: WatchSpec,
        checked: Checked,
        seen: Watch,
    ) -> WatchInfo {
        let webhook = checked.webhook.clone().map(|url| Webhook::new(url, state.policy.clone()));
        let settings = Settings {
            id: row.id.clone(),
            target: spec.check.target.clone(),
            quorum: checked.quorum,
            storage: Some(Storage {
                history: history.clone(),
                token: row.created_by.clone(),
                source: "watch",
            }),
            webhook,
            public_url: self.public_url.as_deref().map(str::to_string),
        };
        let source = Fanned {
            state: state.clone(),
            request: checked.request.clone(),
            from: checked.from.clone(),
            token: row.created_by.clone(),
            client: ClientId::next(),
        };
        let summary = seen.summary();
        let rounds = Rounds::resumed(source, settings, seen);
        let info = WatchInfo {
            id: row.id.clone(),
            spec: shown(spec),
            created_at: formats::rfc3339_ms(row.created_ms),
            created_by: row.created_by.clone(),
            state: WatchState::Running,
            summary,
            last: None,
        };
        let stop = CancellationToken::new();
        let run = Run {
            watches: self.clone(),
            history: history.clone(),
            id: row.id.clone(),
            every: checked.every,
            count: checked.count,
            stop: stop.clone(),
            shutdown: state.shutdown.clone(),
        };
        let mut held = self.lock();
        held.push_front(Held { info: info.clone(), stop: Some(stop), task: None });
        let task = tokio::spawn(run.rounds(rounds));
        if let Some(entry) = held.iter_mut().find(|entry| entry.info.id == row.id) {
            entry.task = Some(task);
        }
        forget_old_ended(&mut held);
        info
    }

    /// Stops a running watch, for `by`; it stays listed as stopped. Returns once its task has
    /// ended and its rounds are written (a round under way is dropped).
    pub async fn stop(
        &self,
        state: &AppState,
        id: &str,
        by: Option<String>,
    ) -> Result<WatchInfo, WatchError> {
        let (stop, task) = {
            let mut held = self.lock();
            let entry = held
                .iter_mut()
                .find(|entry| entry.info.id == id)
                .ok_or_else(|| WatchError::Unknown(id.to_string()))?;
            if entry.info.state != WatchState::Running {
                return Ok(entry.info.clone());
            }
            let at = crate::clock::now().0;
            entry.info.state = WatchState::Stopped { at, by: by.clone() };
            (entry.stop.take(), entry.task.take())
        };
        if let Some(stop) = stop {
            stop.cancel();
        }
        if let Some(task) = task
            && tokio::time::timeout(STOP_DEADLINE, task).await.is_err()
        {
            warn!(watch = id, "a stopped watch's task did not end in time");
        }
        let info = self.get(id).ok_or_else(|| WatchError::Unknown(id.to_string()))?;
        info!(watch = id, by = ?by, "watch stopped");
        if let Ok(history) = history_of(state) {
            let summary = serde_json::to_string(&info.summary).unwrap_or_default();
            let (id, by) = (id.to_string(), by.clone());
            let ended_ms = formats::unix_ms(SystemTime::now());
            let ended = history
                .write(move |store| {
                    store.end_watch(&id, WatchRowState::Stopped, ended_ms, by.as_deref(), &summary)
                })
                .await;
            if let Err(error) = ended {
                warn!(%error, "the stopped watch's state was not stored");
            }
            let flushed = tokio::task::spawn_blocking(move || history.flush(STOP_DEADLINE));
            let _ = flushed.await;
        }
        Ok(info)
    }

    /// Lists the stored watches and starts again those that were running: at the agent's
    /// start. A stored spec this agent no longer takes (a tighter policy, a higher
    /// `--min-watch-every`) is listed stopped, and the log says why.
    pub async fn resume(&self, state: &AppState) {
        let Ok(history) = history_of(state) else { return };
        let rows = match history.read(|store| store.watches(MAX_ENDED)).await {
            Ok(rows) => rows,
            Err(error) => return warn!(%error, "the stored watches could not be read"),
        };
        for row in rows.into_iter().rev() {
            let Ok(spec) = serde_json::from_str::<WatchSpec>(&row.spec) else {
                warn!(watch = row.id, "a stored watch's spec is unreadable: skipped");
                continue;
            };
            if row.state != WatchRowState::Running {
                self.list_ended(row, spec);
                continue;
            }
            let checked = spec::check(&spec, self.limits.min_every, &state.policy);
            let checked = match checked {
                Ok(checked) if self.running() < self.limits.max_running => checked,
                refused => {
                    let reason = refused.err().map_or_else(
                        || WatchError::Full(self.limits.max_running).to_string(),
                        |error| error.to_string(),
                    );
                    warn!(watch = row.id, reason, "a stored watch was not resumed");
                    let ended = WatchRow {
                        state: WatchRowState::Stopped,
                        ended_ms: Some(formats::unix_ms(SystemTime::now())),
                        ..row
                    };
                    self.list_ended(ended, spec);
                    continue;
                }
            };
            let id = row.id.clone();
            let seen = history.read(move |store| store.rounds(&id, None, usize::MAX)).await;
            let mut watch = Watch::default();
            for round in seen.unwrap_or_default() {
                let (at, cause, ms) = (&round.at, round.cause, round.connect_ms);
                watch.observe_numbered(round.round, at, cause, ms, round.result.clone());
            }
            info!(watch = row.id, rounds = watch.last_round(), "watch resumed");
            self.start(state, &history, &row, spec, checked, watch);
        }
    }

    /// Lists a stored watch that ended.
    fn list_ended(&self, row: WatchRow, spec: WatchSpec) {
        let at = formats::rfc3339_ms(row.ended_ms.unwrap_or(row.created_ms));
        let state = match row.state {
            WatchRowState::Finished => WatchState::Finished { at },
            _ => WatchState::Stopped { at, by: row.ended_by.clone() },
        };
        let summary: WatchSummary = row
            .summary
            .as_deref()
            .and_then(|json| serde_json::from_str(json).ok())
            .unwrap_or_default();
        let info = WatchInfo {
            id: row.id,
            spec: shown(spec),
            created_at: formats::rfc3339_ms(row.created_ms),
            created_by: row.created_by,
            state,
            summary,
            last: None,
        };
        let mut held = self.lock();
        held.push_front(Held { info, stop: None, task: None });
        forget_old_ended(&mut held);
    }

    /// Notes a round's outcome in the listing.
    fn note(&self, id: &str, summary: WatchSummary, last: whyrefused_shared::WatchRound) {
        if let Some(entry) = self.lock().iter_mut().find(|entry| entry.info.id == id) {
            entry.info.summary = summary;
            entry.info.last = Some(last);
        }
    }

    /// Marks a watch finished (it ran its count); says whether it was still running.
    fn finished(&self, id: &str) -> bool {
        let mut held = self.lock();
        let Some(entry) = held.iter_mut().find(|entry| entry.info.id == id) else { return false };
        if entry.info.state != WatchState::Running {
            return false;
        }
        entry.info.state = WatchState::Finished { at: crate::clock::now().0 };
        entry.stop = None;
        entry.task = None;
        true
    }
}

/// The history the watches are stored in, or why there is none.
fn history_of(state: &AppState) -> Result<History, WatchError> {
    match &state.history {
        Availability::On(history) => Ok(history.clone()),
        Availability::Off => Err(WatchError::NoHistory("it runs with --no-history".into())),
        Availability::Unavailable(reason) => Err(WatchError::NoHistory(reason.to_string())),
    }
}

/// Refuses vantage points this hub does not know (`all` and `local` it always does), and a
/// check the hub's policy denies before any resolution.
fn check_vantages(state: &AppState, checked: &Checked) -> Result<(), WatchError> {
    state.hub.choose(&checked.from).map_err(|message| SpecError { field: "from", message })?;
    Job::new(Work::Check(checked.request.clone()), state, state.show_processes)
        .map_err(|refused| SpecError { field: "check", message: refused.message })?;
    Ok(())
}

/// The spec as listings show it: the webhook as its scheme and host only.
fn shown(spec: WatchSpec) -> WatchSpec {
    WatchSpec { webhook: spec.webhook.as_deref().map(WebhookUrl::shown_text), ..spec }
}

/// Drops the oldest ended watches beyond [`MAX_ENDED`] from the listing.
fn forget_old_ended(held: &mut VecDeque<Held>) {
    let mut ended = 0;
    held.retain(|entry| {
        if entry.info.state == WatchState::Running {
            return true;
        }
        ended += 1;
        ended <= MAX_ENDED
    });
}

/// One watch's task.
struct Run {
    watches: Watches,
    history: History,
    id: String,
    every: Duration,
    count: Option<u64>,
    /// Cancelled when someone stops the watch.
    stop: CancellationToken,
    /// Cancelled when the agent shuts down: the watch stays running in the file, to resume.
    shutdown: CancellationToken,
}

impl Run {
    /// Runs rounds every `every` until stopped, the count is reached, or the agent stops.
    async fn rounds(self, mut rounds: Rounds<Fanned>) {
        let mut ticks = tokio::time::interval(self.every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                () = self.stop.cancelled() => break,
                () = self.shutdown.cancelled() => break,
            }
            let seen = tokio::select! {
                seen = rounds.next() => seen,
                () = self.stop.cancelled() => break,
                () = self.shutdown.cancelled() => break,
            };
            let number = seen.round.round;
            self.watches.note(&self.id, rounds.watch().summary(), seen.round);
            if self.count.is_some_and(|count| number >= count) {
                self.finish(&rounds).await;
                break;
            }
        }
        if !rounds.finish(STOP_DEADLINE).await {
            warn!(watch = self.id, "webhook deliveries still running were dropped");
        }
    }

    /// Marks the watch finished, in the listing and the file.
    async fn finish(&self, rounds: &Rounds<Fanned>) {
        if !self.watches.finished(&self.id) {
            return;
        }
        info!(watch = self.id, "watch finished its rounds");
        let summary = serde_json::to_string(&rounds.watch().summary()).unwrap_or_default();
        let id = self.id.clone();
        let ended_ms = formats::unix_ms(SystemTime::now());
        let ended = self
            .history
            .write(move |store| {
                store.end_watch(&id, WatchRowState::Finished, ended_ms, None, &summary)
            })
            .await;
        if let Err(error) = ended {
            warn!(%error, "the finished watch's state was not stored");
        }
    }
}

/// Rounds run through the hub's fan-out: here (`local`) and at joined agents.
struct Fanned {
    state: AppState,
    request: CheckRequest,
    from: Vec<String>,
    /// Whose watch it is, for the audit lines.
    token: Option<String>,
    /// The watch as one client of the joined agents (its share of each one's requests).
    client: ClientId,
}

/// The ids of the fan-outs of watches, for their audit lines.
static ROUND_IDS: AtomicU64 = AtomicU64::new(0);

impl Source for Fanned {
    async fn run(&self, diagnose: bool) -> Vec<Part> {
        let request = CheckRequest { trace: diagnose, no_trace: !diagnose, ..self.request.clone() };
        // Each name on its own: one not (yet) known, such as a joined agent that has not
        // rejoined since the hub restarted, is offline for this round, not the whole round.
        let mut parts: Vec<Part> = Vec::with_capacity(self.from.len());
        let mut vantages = Vec::new();
        for name in &self.from {
            match self.state.hub.choose(std::slice::from_ref(name)) {
                Ok(chosen) => vantages.extend(chosen),
                Err(message) => parts.push(Part {
                    vantage: name.clone(),
                    outcome: Some(whyrefused_shared::Outcome::VantageOffline),
                    errors: vec![message],
                    ..Part::default()
                }),
            }
        }
        let job = match Job::new(Work::Check(request), &self.state, self.state.show_processes) {
            Ok(job) => job,
            Err(refused) => {
                return self
                    .from
                    .iter()
                    .map(|name| Part {
                        vantage: name.clone(),
                        outcome: Some(whyrefused_shared::Outcome::Rejected),
                        errors: vec![refused.message.clone()],
                        ..Part::default()
                    })
                    .collect();
            }
        };
        let (outbox, mut said) = crate::wire::outbox(ROUND_EVENTS_BYTES);
        let unspecified = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
        let fanout = Fanout {
            id: RequestId(ROUND_IDS.fetch_add(1, Ordering::Relaxed) + 1),
            origin: super::audit::asked_here(self.token.as_deref(), unspecified),
            outbox,
            cancel: CancellationToken::new(),
            shutdown: self.state.shutdown.clone(),
            vantages,
            scans: self.state.scans.clone(),
            client: self.client,
            metrics: Some(self.state.exporter.metrics.clone()),
            history: None,
            tell_stored: false,
            // A watch combines the reports itself, never reading the cross verdict.
            routers: Vec::new(),
        };
        let (_, reports) = fanout.run_for_reports(job).await;
        let mut errors: Vec<(String, String)> = Vec::new();
        while let Some(frame) = said.try_next() {
            if let Frame::Text(json) = frame
                && let Ok(AgentMessage::VantageError { vantage, message, .. }) =
                    serde_json::from_str(&json)
            {
                errors.push((vantage, message));
            }
        }
        for (vantage, report) in reports {
            let Folded::Check(report) = report else { continue };
            let errors = errors.iter().filter(|(v, _)| *v == vantage).map(|(_, m)| m.clone());
            parts.push(Part { outcome: report.outcome, errors: errors.collect(), report, vantage });
        }
        // In the watch's order.
        let place = |part: &Part| self.from.iter().position(|name| *name == part.vantage);
        parts.sort_by_key(|part| place(part).unwrap_or(usize::MAX));
        parts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ended(id: usize) -> WatchRow {
        WatchRow {
            id: format!("w{id}"),
            spec: String::new(),
            created_ms: id as i64,
            created_by: None,
            state: WatchRowState::Finished,
            ended_ms: Some(id as i64),
            ended_by: None,
            summary: None,
        }
    }

    #[test]
    fn the_listing_keeps_the_latest_ended_watches_within_its_bound() {
        let watches = Watches::default();
        let spec = WatchSpec {
            check: CheckRequest::new("db:1"),
            every: "10s".into(),
            count: None,
            from: vec![],
            quorum: None,
            webhook: Some("https://hooks.example/T0/secret".into()),
        };
        for id in 0..MAX_ENDED + 5 {
            watches.list_ended(ended(id), spec.clone());
        }
        let listing = watches.list();
        assert_eq!(listing.watches.len(), MAX_ENDED);
        assert_eq!(listing.watches[0].id, format!("w{}", MAX_ENDED + 4), "newest first");
        assert_eq!(listing.watches[0].spec.webhook.as_deref(), Some("https://hooks.example"));
        assert_eq!((listing.max_running, listing.min_every.as_str()), (20, "1s"));
    }
}
