//! Which rule of this host's own firewall stopped a connect to one of its own addresses.
//!
//! The packet counter of every rule is read, one SYN is sent to the port, and the counters are
//! read again: the dropping or rejecting rules whose counters moved matched it. Other traffic
//! moves counters too, so the probe is sent again when a rule moved by more than its one SYN,
//! and the rule is exact only when it moved by exactly one. A rule written without `counter`
//! cannot be seen moving: the rules without one that could match the probe's port and address
//! are listed as candidates instead.
//!
//! The rules are named by netfilter's own tools (`nft -j list ruleset`, and `iptables-save -c`
//! for the tables iptables-nft or iptables-legacy wrote), which take tens of milliseconds on a
//! large ruleset: that listing runs once, beside the check's connects, and is kept while the
//! ruleset's generation stays the same. The counters around the probe are read from nf_tables
//! over netlink, in about a millisecond ([`counters`]). iptables-legacy's rules live outside
//! nf_tables: with any of them, both readings are listings. When no rule that drops or rejects
//! could match the probe's address and port (a host without rules, the common case of a port
//! where nothing listens), nothing is probed.
//!
//! Reading the counters needs CAP_NET_ADMIN; without it the finding says so and nothing else.

mod condition;
mod counters;
mod forward;
mod iptables;
mod nft;

pub use forward::{ForwardWatch, forwards};

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::task::AbortOnDropHandle;
use whyrefused_shared::{FIREWALL_NEEDS, FirewallMatch, FirewallRule, RuleAction};

use super::recent::Recent;
use crate::clock;
use crate::rate::ConnectBudget;
use condition::Condition;

/// How long the rule probe's connect may take: its SYN crosses this host's own chains
/// (OUTPUT, then INPUT over loopback) as it is sent, so a reject answers at once and a drop has
/// moved its counter by then; the deadline only bounds the wait.
pub const RULE_PROBE_DEADLINE: Duration = Duration::from_millis(5);

/// How long to wait before reading the counters once more when none moved: the SYN may still
/// have been on its way through the chains (another CPU's backlog) at the first reading.
const SETTLE: Duration = Duration::from_millis(20);

/// How many times the probe is sent at most, while other traffic moves the counters too.
pub const MAX_RULE_PROBES: u32 = 3;

/// The most candidates (rules without a counter) listed.
pub const MAX_CANDIDATES: usize = 10;

/// How long one listing tool may run.
const TOOL_DEADLINE: Duration = Duration::from_secs(2);

/// The chains iptables-nft creates in the tables it writes: a table of the `ip` or `ip6`
/// family holding one is iptables', read with iptables' own tool.
const XTABLES_CHAINS: [&str; 5] = ["INPUT", "OUTPUT", "FORWARD", "PREROUTING", "POSTROUTING"];

/// The bit of CAP_NET_ADMIN in `/proc/self/status`'s capability masks.
const CAP_NET_ADMIN: u32 = 12;

/// One rule of one listing, with what identifies it across two listings.
#[derive(Debug, Clone)]
pub struct ListedRule {
    /// The rule as reported (its `packets` unset).
    pub rule: FirewallRule,
    /// Its packet counter as listed; `None` without one.
    pub counter: Option<u64>,
    /// What names the same rule in the next listing: tool, table, chain and handle (nft) or
    /// position and text (iptables).
    pub key: String,
    /// What it matches on, as far as understood.
    pub conditions: Vec<Condition>,
    /// The hook of its chain (`input`, `forward`); none for a chain only jumped to.
    pub hook: Option<String>,
}

impl ListedRule {
    /// Whether it stops packets this host forwards (a rule of a chain on the `forward` hook).
    fn stops_forwarded(&self) -> bool {
        self.rule.action.stops() && self.hook.as_deref() == Some("forward")
    }
}

/// Why the rules could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("neither nft nor iptables-save is installed")]
    NoTool,
    #[error("{tool} failed: {message}")]
    Failed { tool: String, message: String },
    #[error("{tool} did not answer within {} s", TOOL_DEADLINE.as_secs())]
    Slow { tool: String },
    #[error(transparent)]
    Listing(#[from] nft::ListingError),
    #[error(transparent)]
    Counters(#[from] crate::probe::netlink::NetlinkError),
    #[error("the rule listing stopped: {0}")]
    Stopped(String),
    /// The shared listing's own error, said as it is.
    #[error(transparent)]
    Shared(Arc<SnapshotError>),
}

/// A listing of the rules, or why there is none; shared by the checks of one ruleset.
type Listed = Result<Arc<Vec<ListedRule>>, Arc<SnapshotError>>;

/// The rules' listing, started early (beside a check's connects) and read when a rule probe
/// needs the rules' names.
#[derive(Default)]
pub struct RuleListing {
    running: Option<AbortOnDropHandle<Listed>>,
    done: Option<Listed>,
}

impl RuleListing {
    /// Starts listing now, when this process may read the rules; otherwise does nothing.
    pub fn start() -> RuleListing {
        let running = has_net_admin().then(|| AbortOnDropHandle::new(tokio::spawn(listing())));
        RuleListing { running, done: None }
    }

    /// The rules, listed (once) if not started already.
    async fn rules(&mut self) -> Listed {
        if let Some(done) = &self.done {
            return done.clone();
        }
        let task = self.running.take();
        let listed = match task {
            Some(task) => {
                task.await.unwrap_or_else(|e| Err(Arc::new(SnapshotError::Stopped(e.to_string()))))
            }
            None => listing().await,
        };
        self.done = Some(listed.clone());
        listed
    }
}

/// The last listing, the ruleset generation it was read at, and when that generation was last
/// seen unchanged.
#[derive(Clone)]
struct Kept {
    generation: Option<u32>,
    confirmed: Instant,
    rules: Arc<Vec<ListedRule>>,
}

/// The last listing kept.
static LAST_LISTING: Mutex<Option<Kept>> = Mutex::new(None);

/// One listing at a time: the checks that start together wait for the first one's listing and
/// then find it kept, instead of each running the tools.
static LISTING_TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Every rule, listed, or kept from the last listing when the ruleset has not changed since.
/// A listing confirmed after this check asked for one (by a check ahead of it in the turn) is
/// as current as its own would be: a thousand checks at once read the generation a few times,
/// not a thousand times in a row.
async fn listing() -> Listed {
    let asked = Instant::now();
    let _turn = LISTING_TURN.lock().await;
    let last = LAST_LISTING.lock().ok().and_then(|last| last.clone());
    if let Some(kept) = &last
        && kept.confirmed >= asked
    {
        return Ok(kept.rules.clone());
    }
    let confirmed = Instant::now();
    let generation = match any_legacy_tables() {
        true => None, // iptables-legacy's changes do not move nf_tables' generation
        // One netlink round trip, answered by the kernel at once.
        false => counters::generation().ok(),
    };
    let rules = match last {
        Some(kept) if generation.is_some() && kept.generation == generation => kept.rules,
        _ => Arc::new(snapshot().await.map_err(Arc::new)?),
    };
    if let Ok(mut last) = LAST_LISTING.lock() {
        *last = Some(Kept { generation, confirmed, rules: rules.clone() });
    }
    Ok(rules)
}

/// For each of `probes` (connects to this host's own addresses), whether some rule of this
/// host's firewall might act on it: any rule outside the forwarding chains whose conditions
/// may hold, whatever it does (a rule that accepts, counts or redirects counts too). `None` when
/// the rules cannot be read (no CAP_NET_ADMIN, no tool, a listing error).
pub async fn could_act_on(probes: &[SocketAddr]) -> Option<Vec<bool>> {
    if !has_net_admin() {
        return None;
    }
    let rules = listing().await.ok()?;
    let acts = |probe: &SocketAddr| {
        rules.iter().any(|rule| {
            rule.hook.as_deref() != Some("forward")
                && condition::may_match(&rule.conditions, *probe)
        })
    };
    Some(probes.iter().map(acts).collect())
}

/// How the counters around the probe are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// From nf_tables over netlink; the rules named from the listing.
    Netlink,
    /// By listing the rules each time (iptables-legacy's rules are outside nf_tables).
    Listings,
}

impl Reading {
    /// How this host's counters are read: over netlink, unless iptables-legacy holds rules.
    fn of_this_host() -> Reading {
        match any_legacy_tables() {
            true => Reading::Listings,
            false => Reading::Netlink,
        }
    }

    /// Every rule with its counter now: `rules` with nf_tables' counters, or a new listing.
    async fn read(self, rules: &[ListedRule]) -> Result<Vec<ListedRule>, SnapshotError> {
        match self {
            Reading::Netlink => {
                let counters = tokio::task::spawn_blocking(counters::read)
                    .await
                    .map_err(|e| SnapshotError::Stopped(e.to_string()))??;
                Ok(counters.applied_to(rules))
            }
            Reading::Listings => snapshot().await,
        }
    }
}

/// Finds the rule of this host's firewall that stops connects to `address`, one of this
/// host's own addresses: counters read, a SYN sent, counters read again.
pub async fn find_rule(
    address: SocketAddr,
    budget: Option<&ConnectBudget>,
    listing: &mut RuleListing,
) -> FirewallMatch {
    let started = Instant::now();
    let mut found = FirewallMatch {
        address,
        matched: Vec::new(),
        exact: false,
        probes: 0,
        candidates: Vec::new(),
        rules_read: 0,
        unreadable: None,
        elapsed_us: 0,
    };
    if !has_net_admin() {
        found.unreadable = Some(FIREWALL_NEEDS.to_string());
        return found;
    }
    if let Err(error) = probe_between_snapshots(address, budget, listing, &mut found).await {
        found.unreadable = Some(error.to_string());
    }
    found.elapsed_us = clock::micros(started.elapsed());
    found
}

async fn probe_between_snapshots(
    address: SocketAddr,
    budget: Option<&ConnectBudget>,
    listing: &mut RuleListing,
    found: &mut FirewallMatch,
) -> Result<(), SnapshotError> {
    let rules = listing.rules().await.map_err(SnapshotError::Shared)?;
    found.rules_read = rules.len() as u32;
    if !rules.iter().any(|r| r.rule.action.stops() && condition::may_match(&r.conditions, address))
    {
        return Ok(()); // no rule of this firewall could stop it: nothing to probe
    }
    let reading = Reading::of_this_host();
    let mut before = reading.read(&rules).await?;
    send_probe(address, budget, found).await;
    let mut after = reading.read(&rules).await?;
    let mut settled = false;
    loop {
        found.rules_read = after.len() as u32;
        let mut moved = moved(&before, &after);
        if moved.is_empty() && !settled {
            settled = true;
            tokio::time::sleep(SETTLE).await;
            after = reading.read(&rules).await?;
            continue;
        }
        if moved.is_empty() {
            found.matched.clear();
            found.candidates = candidates(&after, address);
            return Ok(());
        }
        found.exact = the_rule_first(&mut moved);
        found.matched = moved;
        if found.exact || found.probes >= MAX_RULE_PROBES {
            return Ok(());
        }
        send_probe(address, budget, found).await;
        before = after;
        after = reading.read(&rules).await?;
    }
}

async fn send_probe(
    address: SocketAddr,
    budget: Option<&ConnectBudget>,
    found: &mut FirewallMatch,
) {
    found.probes += 1;
    super::connect::connect(address, RULE_PROBE_DEADLINE, budget).await;
}

/// The stopping rules whose counters moved from `before` to `after`, with how much.
pub fn moved(before: &[ListedRule], after: &[ListedRule]) -> Vec<FirewallRule> {
    let earlier: HashMap<&str, u64> =
        before.iter().filter_map(|r| Some((r.key.as_str(), r.counter?))).collect();
    after
        .iter()
        .filter(|r| r.rule.action.stops())
        .filter_map(|r| {
            let moved = r.counter?.checked_sub(*earlier.get(r.key.as_str())?)?;
            (moved > 0).then(|| FirewallRule { packets: Some(moved), ..r.rule.clone() })
        })
        .collect()
}

/// Puts the rule that stopped the probe first, and says whether it is sure: a rule that moved
/// by exactly the probe's one SYN. A REJECT's answer crosses the chains too (on this host it comes
/// back in over loopback), so a dropping rule that also moved by one may have caught the answer:
/// a rejecting rule that moved by one comes first. Sure when exactly one rule of that kind moved
/// by one.
fn the_rule_first(moved: &mut [FirewallRule]) -> bool {
    let by_one = |rule: &FirewallRule| rule.packets == Some(1);
    let rank = |rule: &FirewallRule| match (by_one(rule), rule.action) {
        (true, RuleAction::Reject) => 0,
        (true, _) => 1,
        (false, _) => 2,
    };
    moved.sort_by_key(rank);
    let Some(best) = moved.first().map(rank) else { return false };
    best < 2 && moved.iter().filter(|rule| rank(rule) == best).count() == 1
}

/// The stopping rules without a counter that could match a SYN to `address`.
pub fn candidates(rules: &[ListedRule], address: SocketAddr) -> Vec<FirewallRule> {
    rules
        .iter()
        .filter(|r| r.counter.is_none() && r.rule.action.stops())
        .filter(|r| condition::may_match(&r.conditions, address))
        .take(MAX_CANDIDATES)
        .map(|r| r.rule.clone())
        .collect()
}

/// Every rule of this host's firewall (this network namespace's), with its counter.
pub async fn snapshot() -> Result<Vec<ListedRule>, SnapshotError> {
    let mut rules = Vec::new();
    match run("nft", &["-j", "list", "ruleset"]).await? {
        Some(json) => {
            let mut native = nft::parse(&json)?;
            for (family, tool, save) in [
                ("ip", "iptables", "iptables-nft-save"),
                ("ip6", "ip6tables", "ip6tables-nft-save"),
            ] {
                let written_by_iptables = native.iter().any(|r| {
                    r.rule.family == family && XTABLES_CHAINS.contains(&r.rule.chain.as_str())
                });
                if !written_by_iptables {
                    continue;
                }
                if let Some(text) = run(save, &["-c"]).await? {
                    let listed = iptables::parse(tool, &text);
                    let tables: HashSet<String> =
                        listed.iter().map(|r| r.rule.table.clone()).collect();
                    native.retain(|r| r.rule.family != family || !tables.contains(&r.rule.table));
                    rules.extend(listed);
                }
            }
            rules.extend(native);
        }
        None => {
            let mut any = false;
            for (tool, save) in
                [("iptables", "iptables-nft-save"), ("ip6tables", "ip6tables-nft-save")]
            {
                if let Some(text) = run(save, &["-c"]).await? {
                    any = true;
                    rules.extend(iptables::parse(tool, &text));
                }
            }
            if !any && !legacy_tables("/proc/net/ip_tables_names") {
                return Err(SnapshotError::NoTool);
            }
        }
    }
    for (names, tool, save) in [
        ("/proc/net/ip_tables_names", "iptables-legacy", "iptables-legacy-save"),
        ("/proc/net/ip6_tables_names", "ip6tables-legacy", "ip6tables-legacy-save"),
    ] {
        if legacy_tables(names)
            && let Some(text) = run(save, &["-c"]).await?
        {
            rules.extend(iptables::parse(tool, &text));
        }
    }
    Ok(rules)
}

/// Whether iptables-legacy holds tables of either family in this network namespace.
fn any_legacy_tables() -> bool {
    static NEWEST: Recent<bool> = Recent::new(Duration::from_secs(1));
    NEWEST.get_or_read(|| {
        legacy_tables("/proc/net/ip_tables_names") || legacy_tables("/proc/net/ip6_tables_names")
    })
}

/// Whether iptables-legacy holds tables in this network namespace (its kernel module lists them).
fn legacy_tables(names: &str) -> bool {
    std::fs::read_to_string(names).is_ok_and(|text| !text.trim().is_empty())
}

/// Runs a listing tool; `None` when it is not installed.
async fn run(tool: &str, arguments: &[&str]) -> Result<Option<String>, SnapshotError> {
    let Some(path) = locate(tool) else { return Ok(None) };
    let mut command = tokio::process::Command::new(path);
    command.args(arguments).kill_on_drop(true).stdin(std::process::Stdio::null());
    let output = match tokio::time::timeout(TOOL_DEADLINE, command.output()).await {
        Err(_) => return Err(SnapshotError::Slow { tool: tool.into() }),
        Ok(Err(error)) => {
            return Err(SnapshotError::Failed { tool: tool.into(), message: error.to_string() });
        }
        Ok(Ok(output)) => output,
    };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let message = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("no message");
        let message = message.trim().escape_debug().to_string();
        return Err(SnapshotError::Failed { tool: tool.into(), message });
    }
    Ok(Some(String::from_utf8_lossy(&output.stdout).into_owned()))
}

/// Where a tool is: on `PATH`, or in the system directories a user's `PATH` may lack.
fn locate(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin"].map(PathBuf::from))
        .map(|directory| directory.join(tool))
        .find(|candidate| candidate.is_file())
}

/// Whether this process may read the firewall's counters (CAP_NET_ADMIN is effective), read
/// at most once a second: a process's capabilities rarely change while it runs.
pub fn has_net_admin() -> bool {
    static NEWEST: Recent<bool> = Recent::new(Duration::from_secs(1));
    NEWEST.get_or_read(read_net_admin)
}

fn read_net_admin() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| effective_capabilities(&status))
        .is_some_and(|mask| mask & (1 << CAP_NET_ADMIN) != 0)
}

/// The `CapEff:` mask of `/proc/PID/status`.
fn effective_capabilities(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|line| line.strip_prefix("CapEff:"))?;
    u64::from_str_radix(line.trim(), 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counted(rules: &[ListedRule], place: &str, counter: u64) -> Vec<ListedRule> {
        rules
            .iter()
            .cloned()
            .map(|mut r| {
                if r.rule.place() == place {
                    r.counter = Some(counter);
                }
                r
            })
            .collect()
    }

    #[test]
    fn the_stopping_rules_whose_counters_moved_are_named_with_how_much() {
        let before = nft::parse(include_str!("testdata/nft-ruleset.json")).unwrap();
        let after = counted(&before, "inet filter input rule 2", 4);
        let moved = moved(&before, &after);
        assert_eq!(moved.len(), 1, "{moved:?}");
        assert_eq!(moved[0].place(), "inet filter input rule 2");
        assert_eq!(moved[0].packets, Some(1));
        assert!(super::moved(&before, &before).is_empty(), "nothing moved");
    }

    #[test]
    fn iptables_counters_move_between_two_real_listings() {
        let before = iptables::parse("iptables", include_str!("testdata/iptables-nft-save.txt"));
        let text = include_str!("testdata/iptables-nft-save.txt").replace(
            "[2:120] -A INPUT -p tcp -m tcp --dport 86",
            "[3:180] -A INPUT -p tcp -m tcp --dport 86",
        );
        let moved = moved(&before, &iptables::parse("iptables", &text));
        assert_eq!(moved.len(), 1);
        assert_eq!(moved[0].place(), "iptables filter INPUT rule 2");
        assert_eq!((moved[0].action, moved[0].packets), (RuleAction::Drop, Some(1)));
        // A rule that does not stop the packet (a jump) is not the rule.
        let jumped = counted(&before, "iptables filter INPUT rule 4", 9);
        assert!(super::moved(&before, &jumped).is_empty());
    }

    #[test]
    fn rules_without_counters_matching_the_probe_are_candidates() {
        let rules = nft::parse(include_str!("testdata/nft-ruleset.json")).unwrap();
        let places = |probe: &str| -> Vec<String> {
            candidates(&rules, probe.parse().unwrap()).iter().map(FirewallRule::place).collect()
        };
        assert_eq!(
            places("127.0.0.1:84"),
            ["inet filter input rule 4", "inet filter input policy"]
        );
        assert_eq!(places("127.0.0.1:7000"), ["inet filter input policy"]);
    }

    fn moved_by(place: &str, action: RuleAction, packets: u64) -> FirewallRule {
        let mut rule = iptables::parse("iptables", include_str!("testdata/iptables-nft-save.txt"))
            .into_iter()
            .find(|r| r.rule.place() == place)
            .unwrap()
            .rule;
        (rule.action, rule.packets) = (action, Some(packets));
        rule
    }

    #[test]
    fn a_reject_that_moved_by_one_is_the_rule_even_when_a_drop_caught_its_answer() {
        let policy = moved_by("iptables filter INPUT policy", RuleAction::Drop, 1);
        let reject = moved_by("iptables filter app rule 1", RuleAction::Reject, 1);
        let mut moved = vec![policy.clone(), reject.clone()];
        assert!(the_rule_first(&mut moved));
        assert_eq!(moved[0], reject);
        let busy = moved_by("iptables filter INPUT rule 2", RuleAction::Drop, 7);
        let mut moved = vec![busy.clone()];
        assert!(!the_rule_first(&mut moved), "moved by more than the probe: likely");
        let mut moved = vec![busy, policy.clone(), policy];
        assert!(!the_rule_first(&mut moved), "two drops by one each: which one is not sure");
        assert_eq!(moved[0].packets, Some(1));
    }

    #[test]
    fn the_effective_capability_mask_is_read() {
        let status = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t0000000000001000\n";
        assert_eq!(effective_capabilities(status), Some(1 << CAP_NET_ADMIN));
        assert_eq!(effective_capabilities("Name: x\n"), None);
    }
}
