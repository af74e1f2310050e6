//! Forward watches: the rule of a router on the way that stopped a check from several places,
//! named by that router's own agent.
//!
//! A joined agent whose host forwards packets and may read its firewall's counters says so in
//! its `register` (`forwards`). Before a check from several places runs, the hub sends each such
//! agent `forward_watch`: it reads its forwarding rules' counters ([`ForwardWatch`]) and answers
//! whether it watches. After the check, the hub sends `forward_watch_finish` with the
//! destinations the other vantage points failed to reach; the agent reads the counters again
//! and answers with the rule that moved and could have stopped them, which the hub adds to the
//! cross verdict.
//!
//! - The hub's side ([`start_at`], [`RouterWatch`]) waits at most [`ANSWER_WAIT`] for each
//!   answer and goes on without it: an agent that does not know the messages (it answers an
//!   error) or does not answer cannot hold the check up. What a router answers is hostile until
//!   checked ([`checked`]): it must name one of the failed destinations, and is cut to size.
//! - The agent's side ([`OpenWatches`]) takes watches only from the hub it joined (the session
//!   checks that), keeps at most [`MAX_FORWARD_WATCHES`] open on the link, ends each one after
//!   [`FORWARD_WATCH_LIFETIME_S`] when its finish never comes, and refuses a finish whose
//!   destination list is too long or names what no SYN goes to. The rules' text goes to the hub
//!   only when the agent shows the hub its host's details, as for its own checks.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures::future::join_all;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tracing::debug;
use whyrefused_shared::{
    AgentMessage, ClientMessage, ErrorCode, FORWARD_WATCH_LIFETIME_S, FirewallMatch, FirewallRule,
    MAX_FORWARD_WATCH_DESTINATIONS, MAX_FORWARD_WATCHES, RequestId,
};

use super::link::{ClientId, LinkHandle, RemoteRequest};
use crate::probe::firewall::ForwardWatch;
use crate::wire::Outbox;

/// How long the hub waits for a router's answer to a start or a finish before it goes on
/// without it. A router reads its rules in tens of milliseconds (each listing tool may take up
/// to 2 s on a huge ruleset); an agent that never answers delays the check by this at most.
pub const ANSWER_WAIT: Duration = Duration::from_secs(3);

/// The most rules kept of a router's answer (the verdict names the first).
const MAX_RULES_KEPT: usize = 4;

/// The longest text kept of each word of a router's rule (its text, table, chain).
const MAX_RULE_WORDS: usize = 512;

/// An online joined agent that said it forwards packets and may read its counters.
#[derive(Clone)]
pub struct Router {
    /// Its vantage point name.
    pub name: String,
    /// Its link.
    pub link: LinkHandle,
}

/// A forward watch open at a router: dropped before its answer, it is cancelled there.
pub struct RouterWatch {
    name: String,
    request: RemoteRequest,
}

/// Asks every router to read its forwarding rules' counters now; gives the watches of those
/// that did (a router without a stopping forwarding rule does not watch). Waits at most
/// [`ANSWER_WAIT`].
pub async fn start_at(routers: &[Router]) -> Vec<RouterWatch> {
    let started = join_all(routers.iter().map(start_one)).await;
    started.into_iter().flatten().collect()
}

async fn start_one(router: &Router) -> Option<RouterWatch> {
    let started = router.link.start(ClientId::HUB, |id| ClientMessage::ForwardWatch { id });
    let mut request = match started {
        Ok(request) => request,
        Err(error) => {
            debug!(router = %router.name, %error, "a router was not asked to watch");
            return None;
        }
    };
    match tokio::time::timeout(ANSWER_WAIT, request.answers.recv()).await {
        Ok(Some(AgentMessage::ForwardWatching { watching: true, .. })) => {
            Some(RouterWatch { name: router.name.clone(), request })
        }
        Ok(Some(AgentMessage::ForwardWatching { watching: false, .. })) => None,
        Ok(other) => {
            debug!(router = %router.name, answer = ?other, "a router did not start a forward watch");
            None
        }
        Err(_) => {
            debug!(router = %router.name, "a router did not answer a forward watch in time");
            None
        }
    }
}

impl RouterWatch {
    /// The router's vantage point name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Tells the router the check is over and which destinations failed (those a SYN can go
    /// to, the first [`MAX_FORWARD_WATCH_DESTINATIONS`]); gives the rule it names, checked.
    /// `None` when nothing failed (the watch is cancelled there), the router names nothing, or
    /// it does not answer within [`ANSWER_WAIT`].
    pub async fn finish(mut self, failed: &[SocketAddr]) -> Option<FirewallMatch> {
        let failed: Vec<SocketAddr> = failed
            .iter()
            .copied()
            .filter(|to| syn_may_go_to(*to))
            .take(MAX_FORWARD_WATCH_DESTINATIONS)
            .collect();
        if failed.is_empty() {
            return None;
        }
        let id = self.request.id;
        self.request
            .send(&ClientMessage::ForwardWatchFinish { id, failed: failed.clone() })
            .ok()?;
        match tokio::time::timeout(ANSWER_WAIT, self.request.answers.recv()).await {
            Ok(Some(AgentMessage::ForwardWatched { found, .. })) => {
                found.and_then(|found| checked(found, &failed))
            }
            other => {
                debug!(router = %self.name, answer = ?other, "a router did not finish its forward watch");
                None
            }
        }
    }
}

/// Whether a SYN can go to `to`: a port, and an address that is one host's.
fn syn_may_go_to(to: SocketAddr) -> bool {
    let ip = to.ip();
    let broadcast = matches!(ip, IpAddr::V4(v4) if v4.is_broadcast());
    to.port() != 0 && !ip.is_unspecified() && !ip.is_multicast() && !broadcast
}

/// A router's answer, as far as the hub believes it: it must name one of the destinations the
/// hub said failed and a rule; its rules are cut to [`MAX_RULES_KEPT`] and their words to
/// [`MAX_RULE_WORDS`] characters. `None` when it names nothing the hub asked about.
fn checked(mut found: FirewallMatch, failed: &[SocketAddr]) -> Option<FirewallMatch> {
    if !failed.contains(&found.address) || found.matched.is_empty() {
        return None;
    }
    found.matched.truncate(MAX_RULES_KEPT);
    found.candidates.clear();
    found.exact = false;
    for rule in &mut found.matched {
        cut_rule(rule);
    }
    if let Some(unreadable) = &mut found.unreadable {
        cut(unreadable);
    }
    Some(found)
}

fn cut_rule(rule: &mut FirewallRule) {
    for word in [&mut rule.tool, &mut rule.family, &mut rule.table, &mut rule.chain, &mut rule.text]
    {
        cut(word);
    }
}

fn cut(text: &mut String) {
    if let Some((at, _)) = text.char_indices().nth(MAX_RULE_WORDS) {
        text.truncate(at);
        text.push('…');
    }
}

/// Why a forward watch message was refused: the agent answers with an error about its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// What kind of problem.
    pub code: ErrorCode,
    /// What is wrong, for people.
    pub message: String,
}

/// The forward watches the hub opened on this agent's link (the agent's side), each waiting for
/// its finish.
#[derive(Default)]
pub struct OpenWatches {
    /// Each open watch's way to its finish; a closed one's watch has ended.
    open: HashMap<RequestId, oneshot::Sender<Vec<SocketAddr>>>,
}

impl OpenWatches {
    /// Opens watch `id`: gives the task (for the session to run) that reads the counters,
    /// answers `forward_watching` on `outbox`, waits for its finish (at most
    /// [`FORWARD_WATCH_LIFETIME_S`], or until `shutdown`) and answers `forward_watched`, the
    /// rules' text only when `show_rule_text`. Refused when `id` is open already, or
    /// [`MAX_FORWARD_WATCHES`] are.
    pub fn open(
        &mut self,
        id: RequestId,
        outbox: Outbox,
        show_rule_text: bool,
        shutdown: CancellationToken,
    ) -> Result<impl Future<Output = RequestId> + Send + use<>, Refusal> {
        self.open.retain(|_, finish| !finish.is_closed());
        if self.open.contains_key(&id) {
            return Err(Refusal {
                code: ErrorCode::DuplicateRequestId,
                message: format!("forward watch {id} is open already: give each its own id"),
            });
        }
        if self.open.len() >= MAX_FORWARD_WATCHES {
            return Err(Refusal {
                code: ErrorCode::TooManyRequests,
                message: format!(
                    "{MAX_FORWARD_WATCHES} forward watches are open on this link already: \
                     finish or cancel one first"
                ),
            });
        }
        let (finish, finished) = oneshot::channel();
        self.open.insert(id, finish);
        Ok(watch(id, outbox, show_rule_text, finished, shutdown))
    }

    /// Finishes watch `id` with the destinations that failed. Refused when no such watch is
    /// open, or the list is too long or names a destination no SYN goes to (the watch ends).
    pub fn finish(&mut self, id: RequestId, failed: Vec<SocketAddr>) -> Result<(), Refusal> {
        let finish = self.open.remove(&id).filter(|finish| !finish.is_closed());
        let Some(finish) = finish else {
            return Err(Refusal {
                code: ErrorCode::UnknownRequest,
                message: format!(
                    "no forward watch {id} is open on this link (it may have ended: this agent \
                     does not forward, or it waited {FORWARD_WATCH_LIFETIME_S} s)"
                ),
            });
        };
        if failed.len() > MAX_FORWARD_WATCH_DESTINATIONS {
            return Err(Refusal {
                code: ErrorCode::InvalidMessage,
                message: format!(
                    "a forward watch's finish names {} destinations; the most is \
                     {MAX_FORWARD_WATCH_DESTINATIONS}",
                    failed.len()
                ),
            });
        }
        if let Some(bad) = failed.iter().find(|to| !syn_may_go_to(**to)) {
            return Err(Refusal {
                code: ErrorCode::InvalidMessage,
                message: format!(
                    "a forward watch's finish names {bad}: a destination needs a port and one \
                     host's address (not unspecified, multicast or broadcast)"
                ),
            });
        }
        let _ = finish.send(failed);
        Ok(())
    }

    /// Ends watch `id` without an answer; `false` when no such watch is open.
    pub fn cancel(&mut self, id: RequestId) -> bool {
        self.open.remove(&id).is_some()
    }
}

/// One watch, at the agent: see [`OpenWatches::open`].
async fn watch(
    id: RequestId,
    outbox: Outbox,
    show_rule_text: bool,
    finished: oneshot::Receiver<Vec<SocketAddr>>,
    shutdown: CancellationToken,
) -> RequestId {
    let watch = ForwardWatch::start().await;
    let _ = outbox.message(&AgentMessage::ForwardWatching { id, watching: watch.is_some() });
    let Some(watch) = watch else { return id };
    let lifetime = tokio::time::sleep(Duration::from_secs(FORWARD_WATCH_LIFETIME_S));
    let failed = tokio::select! {
        finished = finished => finished,
        () = lifetime => return id,
        () = shutdown.cancelled() => return id,
    };
    // Cancelled: the hub dropped its side.
    let Ok(failed) = failed else { return id };
    let found = watch.finish(&failed).await.map(|found| match show_rule_text {
        true => found,
        false => found.without_rule_text(),
    });
    let _ = outbox.message(&AgentMessage::ForwardWatched { id, found });
    id
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Frame, Inbox};
    use whyrefused_shared::RuleAction;

    /// A joined agent whose link the test plays: what the hub sends it arrives on `sent`.
    fn router(name: &str) -> (Router, Inbox) {
        let (outbox, sent) = crate::wire::outbox(1 << 20);
        (Router { name: name.into(), link: LinkHandle::new(outbox, 8) }, sent)
    }

    fn received(sent: &mut Inbox) -> Vec<ClientMessage> {
        std::iter::from_fn(|| sent.try_next())
            .filter_map(|frame| match frame {
                Frame::Text(json) => Some(serde_json::from_str(&json).unwrap()),
                _ => None,
            })
            .collect()
    }

    fn watch_id(sent: &mut Inbox) -> RequestId {
        match received(sent).as_slice() {
            [ClientMessage::ForwardWatch { id }] => *id,
            other => panic!("no forward watch sent: {other:?}"),
        }
    }

    fn forward_rule(text: &str) -> FirewallRule {
        crate::verdict::cross::iptables_forward_rule(text, RuleAction::Drop, 3)
    }

    fn found(to: &str, rules: usize) -> FirewallMatch {
        FirewallMatch {
            address: to.parse().unwrap(),
            matched: (0..rules).map(|_| forward_rule("-A FORWARD -j DROP")).collect(),
            exact: true,
            probes: 0,
            candidates: vec![forward_rule("-A FORWARD -p tcp -j DROP")],
            rules_read: 2,
            unreadable: None,
            elapsed_us: 1,
        }
    }

    async fn settle() {
        for _ in 0..8 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_router_that_watches_is_told_what_failed_and_its_rule_comes_back() {
        let (r1, mut sent) = router("r1");
        let link = r1.link.clone();
        let starting = tokio::spawn(async move { start_at(&[r1]).await });
        settle().await;
        let id = watch_id(&mut sent);
        assert!(!starting.is_finished(), "the hub waits for the router's answer");
        link.route(AgentMessage::ForwardWatching { id, watching: true });
        let watch = starting.await.unwrap().pop().expect("r1 watches");
        assert_eq!(watch.name(), "r1");

        let failed: Vec<SocketAddr> =
            vec!["0.0.0.0:80".parse().unwrap(), "10.7.3.2:80".parse().unwrap()];
        let finishing = tokio::spawn(async move { watch.finish(&failed).await });
        settle().await;
        let only_real = vec!["10.7.3.2:80".parse().unwrap()];
        assert_eq!(
            received(&mut sent),
            [ClientMessage::ForwardWatchFinish { id, failed: only_real }]
        );
        link.route(AgentMessage::ForwardWatched { id, found: Some(found("10.7.3.2:80", 1)) });
        let named = finishing.await.unwrap().expect("r1's rule");
        assert_eq!(named.matched[0].place(), "iptables filter FORWARD rule 1");
        assert!(received(&mut sent).is_empty(), "a finished watch is not cancelled");
    }

    #[tokio::test(start_paused = true)]
    async fn an_agent_that_does_not_know_the_message_or_stays_silent_is_gone_past() {
        // An older agent answers the unknown type with an error about its id: at once.
        let (old, mut old_sent) = router("old");
        let link = old.link.clone();
        let start = tokio::time::Instant::now();
        let asking = tokio::spawn(async move { start_at(&[old]).await });
        settle().await;
        let id = watch_id(&mut old_sent);
        link.route(AgentMessage::Error {
            id: Some(id),
            code: ErrorCode::UnknownMessageType,
            message: "unknown message type \"forward_watch\"".into(),
        });
        assert!(asking.await.unwrap().is_empty());
        assert_eq!(start.elapsed(), Duration::ZERO, "no wait for an agent that said no");

        // A silent one is given up on after the answer wait, and its watch cancelled there.
        let (silent, mut silent_sent) = router("silent");
        let start = tokio::time::Instant::now();
        assert!(start_at(&[silent]).await.is_empty());
        assert_eq!(start.elapsed(), ANSWER_WAIT);
        let said = received(&mut silent_sent);
        assert!(
            matches!(said.as_slice(), [ClientMessage::ForwardWatch { id }, ClientMessage::Cancel { id: cancelled }] if id == cancelled),
            "{said:?}"
        );
    }

    #[test]
    fn a_routers_answer_must_name_a_failed_destination_and_is_cut_to_size() {
        let failed: Vec<SocketAddr> = vec!["10.7.3.2:80".parse().unwrap()];
        assert!(checked(found("10.7.3.2:443", 1), &failed).is_none(), "not asked about");
        assert!(checked(found("10.7.3.2:80", 0), &failed).is_none(), "no rule");
        let mut big = found("10.7.3.2:80", 9);
        big.matched[0].text = "x".repeat(100_000);
        let kept = checked(big, &failed).expect("a rule to a failed destination");
        assert_eq!(kept.matched.len(), MAX_RULES_KEPT);
        assert_eq!(kept.matched[0].text.chars().count(), MAX_RULE_WORDS + 1);
        assert!(kept.candidates.is_empty() && !kept.exact, "{kept:?}");
    }

    #[test]
    fn only_a_port_on_one_hosts_address_is_a_destination() {
        for good in ["10.7.3.2:80", "[2001:db8::2]:443"] {
            assert!(syn_may_go_to(good.parse().unwrap()), "{good}");
        }
        for bad in ["10.7.3.2:0", "0.0.0.0:80", "255.255.255.255:80", "224.0.0.1:80", "[::]:80"] {
            assert!(!syn_may_go_to(bad.parse().unwrap()), "{bad}");
        }
    }

    fn outbox() -> Outbox {
        crate::wire::outbox(1 << 20).0
    }

    #[test]
    fn an_agent_keeps_only_a_few_watches_open_and_refuses_bad_finishes() {
        let mut watches = OpenWatches::default();
        let shutdown = CancellationToken::new();
        let mut open: Vec<_> = (1..=MAX_FORWARD_WATCHES as u64)
            .map(|id| watches.open(RequestId(id), outbox(), false, shutdown.clone()).unwrap())
            .collect();
        let duplicate = watches.open(RequestId(1), outbox(), false, shutdown.clone());
        assert_eq!(duplicate.err().unwrap().code, ErrorCode::DuplicateRequestId);
        let over = watches.open(RequestId(99), outbox(), false, shutdown.clone());
        assert_eq!(over.err().unwrap().code, ErrorCode::TooManyRequests);
        // A watch that ended (its task gone: timed out, or this agent does not forward) frees
        // its place.
        drop(open.remove(0));
        assert!(watches.open(RequestId(99), outbox(), false, shutdown.clone()).is_ok());

        let too_many = vec!["10.7.3.2:80".parse().unwrap(); MAX_FORWARD_WATCH_DESTINATIONS + 1];
        assert_eq!(
            watches.finish(RequestId(2), too_many).unwrap_err().code,
            ErrorCode::InvalidMessage
        );
        assert_eq!(
            watches.finish(RequestId(2), Vec::new()).unwrap_err().code,
            ErrorCode::UnknownRequest,
            "a refused finish ends its watch"
        );
        let multicast = vec!["224.0.0.1:80".parse().unwrap()];
        let refused = watches.finish(RequestId(3), multicast).unwrap_err();
        assert!(refused.message.contains("224.0.0.1:80"), "{refused:?}");
        assert!(watches.finish(RequestId(4), vec!["10.7.3.2:80".parse().unwrap()]).is_ok());
        assert!(watches.cancel(RequestId(99)));
        assert!(!watches.cancel(RequestId(99)), "cancelled once");
        assert_eq!(
            watches.finish(RequestId(1), Vec::new()).unwrap_err().code,
            ErrorCode::UnknownRequest
        );
    }
}
