//! The hub's registry: the agents that joined the hub, online or not, with a handle on the link
//! of each online one. It is bounded ([`HubLimits`]): so many agents, so many addresses each,
//! and an agent offline for long enough is forgotten.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;
use tracing::warn;
use whyrefused_shared::{ALL_VANTAGES, AgentInfo, LOCAL_VANTAGE, Timestamp, VantageInfo};

use super::forwarding::Router;
use super::link::LinkHandle;
use super::{HubLimits, Registration};

/// The longest vantage point name.
pub const MAX_NAME_LEN: usize = 64;

/// The longest host name kept of a registration (a DNS name's limit); longer ones are cut.
pub const MAX_HOSTNAME_LEN: usize = 253;

/// The longest version kept of a registration; longer ones are cut.
pub const MAX_VERSION_LEN: usize = 64;

/// The longest agent id kept of a registration; longer ones are cut.
pub const MAX_AGENT_ID_LEN: usize = 64;

/// The most routers (joined agents that forward) asked to watch their forwarding rules around
/// one check: the first by name. Each costs its host two readings of its rules.
pub const MAX_ROUTERS_ASKED: usize = 16;

/// The registry, shared by every session of the hub.
#[derive(Clone, Default)]
pub struct Hub {
    inner: Arc<Mutex<Registry>>,
    /// How many agents and addresses it keeps, for how long, and each client's share of a link.
    limits: HubLimits,
}

#[derive(Default)]
struct Registry {
    /// By name, so listings come out sorted.
    entries: BTreeMap<String, Entry>,
    /// Counts links, so a link that was replaced cannot mark its successor offline.
    generations: u64,
}

struct Entry {
    /// What the agent said about itself when it last registered.
    registration: Registration,
    /// The current link; `None` once it went offline.
    link: Option<LinkHandle>,
    /// The current (or last) link's number.
    generation: u64,
    /// Cancelled to close the link (a newer one replaced it).
    stop: CancellationToken,
    /// When the link was registered.
    connected_since: SystemTime,
    /// When a frame last arrived on it.
    last_seen: SystemTime,
}

/// Why a registration is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conflict {
    /// Another agent (another agent id) holds the name on a live link.
    NameTaken { name: String, hostname: String, since: String },
    /// The registry is full of online agents; says so.
    Full(String),
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Conflict::NameTaken { name, hostname, since } => write!(
                f,
                "the name '{name}' is held by a live link of another agent (on {hostname}, \
                 joined {since}): two agents may not share a name. Give this one its own agent \
                 token (another name), or stop the other; it is replaced only once its link is \
                 dead (missed pings), or by the same agent (same state directory) reconnecting"
            ),
            Conflict::Full(message) => f.write_str(message),
        }
    }
}

/// One vantage point chosen for a request.
#[derive(Clone)]
pub enum Vantage {
    /// The hub itself.
    Local,
    /// An online joined agent.
    Remote { name: String, addresses: Vec<std::net::IpAddr>, link: LinkHandle },
    /// A joined agent that is offline now: reported `vantage_offline` at once.
    Offline { name: String },
}

impl Vantage {
    /// The vantage point's name.
    pub fn name(&self) -> &str {
        match self {
            Vantage::Local => LOCAL_VANTAGE,
            Vantage::Remote { name, .. } | Vantage::Offline { name } => name,
        }
    }
}

/// A link's place in the registry, for its reader to report on.
#[derive(Debug, Clone)]
pub struct LinkTicket {
    /// The vantage point's name.
    pub name: String,
    /// The link's number.
    pub generation: u64,
    /// Cancelled when a newer link for the same name replaces this one.
    pub stop: CancellationToken,
}

/// Whether `name` may name a vantage point: 1 to [`MAX_NAME_LEN`] letters, digits, `.`, `_` or
/// `-`, and not a reserved word. Says why not.
pub fn check_name(name: &str) -> Result<(), String> {
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty() || name.len() > MAX_NAME_LEN || !name.chars().all(valid) {
        return Err(format!(
            "'{name}' is not a valid vantage point name: use 1 to {MAX_NAME_LEN} letters, \
             digits, '.', '_' or '-'"
        ));
    }
    if name == LOCAL_VANTAGE || name == ALL_VANTAGES {
        return Err(format!("'{name}' is reserved (it names the hub, or every vantage point)"));
    }
    Ok(())
}

impl Hub {
    /// An empty registry kept within `limits`.
    pub fn new(limits: HubLimits) -> Hub {
        Hub { inner: Arc::default(), limits }
    }

    /// Its limits.
    pub fn limits(&self) -> HubLimits {
        self.limits
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The registry, with the agents offline for longer than the limit forgotten (done here,
    /// when it is read or joined, rather than on every frame a link brings).
    fn lock_current(&self) -> std::sync::MutexGuard<'_, Registry> {
        let mut registry = self.lock();
        registry.forget_offline(SystemTime::now(), self.limits.forget_offline_after);
        registry
    }

    /// Why `registration` may not register: its name is held by a live link of another agent
    /// (the same agent, by its agent id, reconnecting replaces its own link: two agents given
    /// one name would otherwise push each other off in turn, forever), or the registry is full
    /// of online agents. A link is live until it closes or misses its pings.
    pub fn conflict(&self, registration: &Registration) -> Option<Conflict> {
        let registry = self.lock_current();
        match registry.entries.contains_key(&registration.name) {
            true => registry.name_taken(registration),
            false => registry.full(self.limits.max_agents).map(Conflict::Full),
        }
    }

    /// Lists a newly registered link. An online link under the same name is closed: the newer
    /// one wins (after a network blip the old one may look alive until its ping timeout). A
    /// new name in a full registry takes the place of the agent offline the longest; with
    /// every agent online, it is refused (saying why).
    pub fn register(
        &self,
        registration: Registration,
        link: LinkHandle,
    ) -> Result<LinkTicket, Conflict> {
        let now = SystemTime::now();
        let registration = self.trimmed(registration);
        let mut registry = self.lock_current();
        // Checked again under the lock: another agent may have taken the name since.
        if let Some(taken) = registry.name_taken(&registration) {
            return Err(taken);
        }
        if !registry.entries.contains_key(&registration.name) {
            registry.make_room(self.limits.max_agents).map_err(Conflict::Full)?;
        }
        registry.generations += 1;
        let generation = registry.generations;
        let stop = CancellationToken::new();
        let name = registration.name.clone();
        let entry = Entry {
            registration,
            link: Some(link),
            generation,
            stop: stop.clone(),
            connected_since: now,
            last_seen: now,
        };
        if let Some(old) = registry.entries.insert(name.clone(), entry) {
            old.stop.cancel();
        }
        Ok(LinkTicket { name, generation, stop })
    }

    /// `registration` within the limits: its first addresses only, its host name and version
    /// cut to a sane length. Says so in the log when something was dropped.
    fn trimmed(&self, mut registration: Registration) -> Registration {
        let reported = registration.addresses.len();
        if reported > self.limits.max_addresses {
            registration.addresses.truncate(self.limits.max_addresses);
            warn!(
                vantage = %registration.name,
                reported,
                kept = self.limits.max_addresses,
                "an agent registered more addresses than the hub keeps (--max-agent-addresses): \
                 the rest are dropped"
            );
        }
        cut(&mut registration.hostname, MAX_HOSTNAME_LEN);
        cut(&mut registration.version, MAX_VERSION_LEN);
        if let Some(id) = &mut registration.agent_id {
            cut(id, MAX_AGENT_ID_LEN);
        }
        registration
    }

    /// Notes that a frame arrived on a link.
    pub fn seen(&self, ticket: &LinkTicket) {
        if let Some(entry) = self.lock().entries.get_mut(&ticket.name)
            && entry.generation == ticket.generation
        {
            entry.last_seen = SystemTime::now();
        }
    }

    /// Marks a link's agent offline, unless a newer link replaced it.
    pub fn offline(&self, ticket: &LinkTicket) {
        if let Some(entry) = self.lock().entries.get_mut(&ticket.name)
            && entry.generation == ticket.generation
        {
            entry.link = None;
        }
    }

    /// Every vantage point: the hub itself (`local`, described by `local`) first, then the
    /// joined agents by name.
    pub fn list(&self, local: &AgentInfo) -> Vec<VantageInfo> {
        let now = timestamp(SystemTime::now());
        let mut list = vec![VantageInfo {
            name: LOCAL_VANTAGE.into(),
            online: true,
            version: local.version.clone(),
            hostname: local.hostname.clone(),
            addresses: super::host_addresses(),
            last_seen: Some(now),
            connected_since: None,
        }];
        list.extend(self.lock_current().entries.iter().map(|(name, entry)| VantageInfo {
            name: name.clone(),
            online: entry.link.is_some(),
            version: entry.registration.version.clone(),
            hostname: entry.registration.hostname.clone(),
            addresses: entry.registration.addresses.clone(),
            last_seen: Some(timestamp(entry.last_seen)),
            connected_since: Some(timestamp(entry.connected_since)),
        }));
        list
    }

    /// The vantage points a request's `from` names, in its order without repeats: `local`,
    /// joined agents' names, or `all` (the hub and every online agent). An unknown name is an
    /// error that lists the known ones.
    pub fn choose(&self, from: &[String]) -> Result<Vec<Vantage>, String> {
        let registry = self.lock_current();
        if from.is_empty() {
            return Err("\"from\" names no vantage point: give names, or [\"all\"]".into());
        }
        let mut names: Vec<&str> = Vec::new();
        for name in from {
            if name == ALL_VANTAGES {
                names.push(LOCAL_VANTAGE);
                let online = registry.entries.iter().filter(|(_, entry)| entry.link.is_some());
                names.extend(online.map(|(name, _)| name.as_str()));
            } else {
                names.push(name);
            }
        }
        let mut chosen: Vec<Vantage> = Vec::new();
        for name in names {
            if chosen.iter().any(|vantage| vantage.name() == name) {
                continue;
            }
            let vantage = match registry.entries.get(name) {
                _ if name == LOCAL_VANTAGE => Vantage::Local,
                Some(Entry { link: Some(link), registration, .. }) => Vantage::Remote {
                    name: name.to_string(),
                    addresses: registration.addresses.clone(),
                    link: link.clone(),
                },
                Some(Entry { link: None, .. }) => Vantage::Offline { name: name.to_string() },
                None => {
                    let mut known = vec![LOCAL_VANTAGE];
                    known.extend(registry.entries.keys().map(String::as_str));
                    return Err(format!(
                        "no vantage point is named '{name}': known are {} (or \"all\")",
                        known.join(", ")
                    ));
                }
            };
            chosen.push(vantage);
        }
        Ok(chosen)
    }

    /// The online joined agents whose registration says they forward packets and may read
    /// their firewall's counters, by name: at most [`MAX_ROUTERS_ASKED`].
    pub fn routers(&self) -> Vec<Router> {
        let registry = self.lock();
        let routers = registry.entries.iter().filter_map(|(name, entry)| match &entry.link {
            Some(link) if entry.registration.forwards => {
                Some(Router { name: name.clone(), link: link.clone() })
            }
            _ => None,
        });
        routers.take(MAX_ROUTERS_ASKED).collect()
    }
}

impl Registry {
    /// Drops the agents offline and last heard from `after` ago or longer.
    fn forget_offline(&mut self, now: SystemTime, after: Duration) {
        self.entries.retain(|_, entry| {
            let silent_for = now.duration_since(entry.last_seen).unwrap_or_default();
            entry.link.is_some() || silent_for < after
        });
    }

    /// Why no new name fits: the registry holds `max_agents`, all online.
    /// The name's live link belongs to another agent than `registration`'s.
    fn name_taken(&self, registration: &Registration) -> Option<Conflict> {
        let entry = self.entries.get(&registration.name)?;
        let live = entry.link.is_some();
        (live && !entry.registration.is_same_agent(registration)).then(|| Conflict::NameTaken {
            name: registration.name.clone(),
            hostname: entry.registration.hostname.clone(),
            since: humantime::format_rfc3339_seconds(entry.connected_since).to_string(),
        })
    }

    fn full(&self, max_agents: usize) -> Option<String> {
        let online = self.entries.values().filter(|entry| entry.link.is_some()).count();
        (online >= max_agents).then(|| {
            format!(
                "the hub already lists {online} online agents, its limit (--max-agents): \
                 no new vantage point can join until one leaves"
            )
        })
    }

    /// Makes room for one more name within `max_agents`, forgetting the agents offline the
    /// longest; an error when every one listed is online.
    fn make_room(&mut self, max_agents: usize) -> Result<(), String> {
        while self.entries.len() >= max_agents.max(1) {
            let longest_offline = self
                .entries
                .iter()
                .filter(|(_, entry)| entry.link.is_none())
                .min_by_key(|(_, entry)| entry.last_seen)
                .map(|(name, _)| name.clone());
            match longest_offline {
                Some(name) => self.entries.remove(&name),
                None => return Err(self.full(max_agents).unwrap_or_default()),
            };
        }
        Ok(())
    }
}

/// Cuts `text` to at most `max` bytes, at a character boundary.
fn cut(text: &mut String, max: usize) {
    if text.len() > max {
        let end = (0..=max).rev().find(|&end| text.is_char_boundary(end)).unwrap_or(0);
        text.truncate(end);
    }
}

fn timestamp(time: SystemTime) -> Timestamp {
    Timestamp(humantime::format_rfc3339_micros(time).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn registration(name: &str) -> Registration {
        Registration {
            name: name.into(),
            version: "0.1.0".into(),
            hostname: format!("{name}-host"),
            addresses: vec!["192.0.2.1".parse().unwrap()],
            agent_id: Some(format!("{name}-id")),
            forwards: false,
        }
    }

    #[test]
    fn the_routers_are_the_online_agents_that_said_they_forward() {
        let hub = Hub::default();
        let router = |name: &str| Registration { forwards: true, ..registration(name) };
        let r1 = hub.register(router("r1"), link()).unwrap();
        hub.register(router("r2"), link()).unwrap();
        hub.register(registration("a1"), link()).unwrap();
        let named = |hub: &Hub| hub.routers().into_iter().map(|r| r.name).collect::<Vec<_>>();
        assert_eq!(named(&hub), ["r1", "r2"]);
        hub.offline(&r1);
        assert_eq!(named(&hub), ["r2"], "an offline router is not asked");
        let many = Hub::default();
        for i in 0..MAX_ROUTERS_ASKED + 5 {
            many.register(router(&format!("r{i:02}")), link()).unwrap();
        }
        assert_eq!(many.routers().len(), MAX_ROUTERS_ASKED);
    }

    fn link() -> LinkHandle {
        LinkHandle::new(crate::wire::outbox(1 << 20).0, 8)
    }

    fn names(vantages: &[Vantage]) -> Vec<&str> {
        vantages.iter().map(Vantage::name).collect()
    }

    fn local() -> AgentInfo {
        AgentInfo { version: "0.1.0".into(), hostname: "hub".into(), build: None }
    }

    #[test]
    fn agents_are_listed_after_local_by_name_with_their_state() {
        let hub = Hub::default();
        let a2 = hub.register(registration("a2"), link()).unwrap();
        hub.register(registration("a1"), link()).unwrap();
        hub.offline(&a2);
        let list = hub.list(&local());
        let summary: Vec<(&str, bool)> =
            list.iter().map(|info| (info.name.as_str(), info.online)).collect();
        assert_eq!(summary, [("local", true), ("a1", true), ("a2", false)]);
        assert_eq!(list[1].hostname, "a1-host");
        assert!(list[1].connected_since.is_some() && list[1].last_seen.is_some());
    }

    #[test]
    fn a_newer_link_replaces_the_old_one_which_cannot_mark_it_offline() {
        let hub = Hub::default();
        let old = hub.register(registration("a1"), link()).unwrap();
        let new = hub.register(registration("a1"), link()).unwrap();
        assert!(old.stop.is_cancelled(), "the old link is told to close");
        assert!(!new.stop.is_cancelled());
        hub.offline(&old);
        assert!(hub.list(&local())[1].online, "the old link's end leaves the new one online");
        hub.offline(&new);
        assert!(!hub.list(&local())[1].online);
    }

    #[test]
    fn a_name_held_by_a_live_link_is_refused_to_another_agent_but_the_same_agent_takes_it_back() {
        let hub = Hub::default();
        let ticket = hub.register(registration("a1"), link()).unwrap();
        assert_eq!(hub.conflict(&registration("a1")), None, "the same agent reconnecting");
        // A clone: the same host name, its own agent id.
        let clone = Registration { agent_id: Some("another-id".into()), ..registration("a1") };
        let refusal = hub.conflict(&clone).expect("refused").to_string();
        assert!(refusal.contains("the name 'a1' is held by a live link"), "{refusal}");
        assert!(refusal.contains("on a1-host"), "{refusal}");
        let racing = hub.register(clone.clone(), link()).expect_err("refused when registering too");
        assert!(matches!(racing, Conflict::NameTaken { .. }), "{racing:?}");
        hub.offline(&ticket);
        assert_eq!(hub.conflict(&clone), None, "free once its holder's link is dead");
    }

    #[test]
    fn an_agent_without_an_id_is_the_same_agent_only_on_the_same_host() {
        let hub = Hub::default();
        let old = Registration { agent_id: None, ..registration("a1") };
        hub.register(old.clone(), link()).unwrap();
        assert_eq!(hub.conflict(&old), None, "an older agent reconnecting");
        let elsewhere = Registration { hostname: "elsewhere".into(), ..old };
        assert!(matches!(hub.conflict(&elsewhere), Some(Conflict::NameTaken { .. })));
    }

    #[test]
    fn from_all_means_local_and_every_online_agent_and_names_are_checked() {
        let hub = Hub::default();
        hub.register(registration("a1"), link()).unwrap();
        let gone = hub.register(registration("a2"), link()).unwrap();
        hub.register(registration("a3"), link()).unwrap();
        hub.offline(&gone);
        let all = hub.choose(&["all".into()]).unwrap();
        assert_eq!(names(&all), ["local", "a1", "a3"]);
        let some = hub.choose(&["a2".into(), "local".into(), "a2".into()]).unwrap();
        assert_eq!(names(&some), ["a2", "local"], "in order, without repeats");
        assert!(matches!(some[0], Vantage::Offline { .. }), "an offline agent is still chosen");
        let error = hub.choose(&["nope".into()]).err().unwrap();
        assert!(error.contains("'nope'") && error.contains("local, a1, a2, a3"), "{error}");
        assert!(hub.choose(&[]).is_err());
    }

    /// Moves every agent's last frame `by` into the past.
    fn age(hub: &Hub, by: Duration) {
        for entry in hub.lock().entries.values_mut() {
            entry.last_seen -= by;
        }
    }

    fn listed(hub: &Hub) -> Vec<String> {
        hub.list(&local()).into_iter().skip(1).map(|info| info.name).collect()
    }

    #[test]
    fn agents_offline_for_longer_than_the_limit_are_forgotten_and_online_ones_never() {
        let hub = Hub::default();
        let gone = hub.register(registration("gone"), link()).unwrap();
        hub.register(registration("up"), link()).unwrap();
        hub.offline(&gone);
        age(&hub, Duration::from_secs(23 * 60 * 60));
        assert_eq!(listed(&hub), ["gone", "up"], "still listed within a day");
        age(&hub, Duration::from_secs(60 * 60));
        assert_eq!(listed(&hub), ["up"], "forgotten after a day offline; online ones stay");
        let error = hub.choose(&["gone".into()]).err().expect("no longer known");
        assert!(error.contains("no vantage point is named 'gone'"), "{error}");
    }

    #[test]
    fn a_full_registry_forgets_the_agent_offline_longest_and_refuses_when_all_are_online() {
        let hub = Hub::new(HubLimits { max_agents: 2, ..HubLimits::DEFAULT });
        let older = hub.register(registration("a1"), link()).unwrap();
        hub.offline(&older);
        age(&hub, Duration::from_secs(60));
        let newer = hub.register(registration("a2"), link()).unwrap();
        hub.offline(&newer);
        assert_eq!(hub.conflict(&registration("a3")), None, "room is made from offline ones");
        hub.register(registration("a3"), link()).unwrap();
        assert_eq!(listed(&hub), ["a2", "a3"], "a1, offline the longest, made room");
        hub.register(registration("a2"), link()).unwrap();

        let refusal = hub.conflict(&registration("a4")).expect("full of online agents").to_string();
        assert!(
            refusal.contains("already lists 2 online agents") && refusal.contains("--max-agents"),
            "{refusal}"
        );
        let refused = hub.register(registration("a4"), link()).expect_err("refused");
        assert_eq!(refused.to_string(), refusal);
        assert_eq!(hub.conflict(&registration("a3")), None, "a listed agent may rejoin");
        assert_eq!(listed(&hub), ["a2", "a3"]);
    }

    #[test]
    fn a_registration_keeps_only_the_first_addresses_and_a_sane_host_name() {
        let hub = Hub::default();
        let many: Vec<IpAddr> =
            (0..=u16::MAX).map(|i| IpAddr::from([10, 0, (i >> 8) as u8, i as u8])).collect();
        let big = Registration {
            addresses: many.clone(),
            hostname: "h".repeat(60_000),
            version: "ü".repeat(1_000),
            ..registration("big")
        };
        hub.register(big, link()).unwrap();
        let listed = hub.list(&local()).pop().unwrap();
        assert_eq!(listed.addresses, many[..HubLimits::DEFAULT.max_addresses]);
        assert_eq!(listed.hostname.len(), MAX_HOSTNAME_LEN);
        assert!(listed.version.len() <= MAX_VERSION_LEN && listed.version.starts_with('ü'));
        let Vantage::Remote { addresses, .. } = &hub.choose(&["big".into()]).unwrap()[0] else {
            panic!("online")
        };
        assert_eq!(addresses.len(), 64);
    }

    #[test]
    fn names_must_be_short_plain_and_not_reserved() {
        assert!(check_name("app-server.eu_1").is_ok());
        for bad in ["", "local", "all", "a b", "ä", &"x".repeat(MAX_NAME_LEN + 1)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
