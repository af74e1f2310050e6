//! What the agent sees when it runs on the target host itself, which no remote tool can: the
//! firewall rule that matched its probe (from the rules' packet counters, read before and
//! after), a listener's accept queue, and the state of the process that owns it.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// What a firewall rule does to a packet it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleAction {
    /// Discards the packet silently: the client times out.
    Drop,
    /// Discards it and answers (a TCP reset or an ICMP error): the client is refused.
    Reject,
    /// Anything else (accept, jump, log, a count): does not stop the packet by itself.
    #[serde(other)]
    Other,
}

impl RuleAction {
    /// The action in words (`drop`).
    pub fn as_str(self) -> &'static str {
        match self {
            RuleAction::Drop => "drop",
            RuleAction::Reject => "reject",
            RuleAction::Other => "other",
        }
    }

    /// Whether a packet it matches goes no further.
    pub fn stops(self) -> bool {
        matches!(self, RuleAction::Drop | RuleAction::Reject)
    }
}

/// One rule of this host's firewall, as its own tool names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirewallRule {
    /// The tool that listed it: `nft`, `iptables`, `ip6tables`, `iptables-legacy` or
    /// `ip6tables-legacy`.
    pub tool: String,
    /// The nftables family (`inet`, `ip`, `ip6`, ...); `ip` or `ip6` for iptables.
    pub family: String,
    /// Its table (`filter`).
    pub table: String,
    /// Its chain (`input`, `INPUT`).
    pub chain: String,
    /// Its place in the chain, from 1; a chain's policy comes after its last rule.
    pub position: u32,
    /// Whether it is the chain's policy (what happens to a packet no rule stopped).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub policy: bool,
    /// Its nftables handle (`nft delete rule ... handle N`), when listed by nft.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle: Option<u64>,
    /// The rule as its tool writes it, counters left out (`tcp dport 81 counter drop`).
    pub text: String,
    /// What it does to a packet it matches.
    pub action: RuleAction,
    /// Packets it counted between the two snapshots around the probe; `None` for a rule
    /// without a counter (an nftables rule written without `counter`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packets: Option<u64>,
}

impl FirewallRule {
    /// Where it is, as its tool's user would look for it: `inet filter input rule 3`,
    /// `iptables filter INPUT rule 2`, `ip filter INPUT policy`.
    pub fn place(&self) -> String {
        let family = if self.tool == "nft" { &self.family } else { &self.tool };
        match self.policy {
            true => format!("{family} {} {} policy", self.table, self.chain),
            false => format!("{family} {} {} rule {}", self.table, self.chain, self.position),
        }
    }
}

/// The rules of the agent's own host that stopped (or may have stopped) a connect to one of its
/// own addresses: read before and after a repeated probe of the port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirewallMatch {
    /// The address and port the probe went to.
    pub address: SocketAddr,
    /// The dropping or rejecting rules whose counters moved while the probe ran.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matched: Vec<FirewallRule>,
    /// Whether the first matched rule moved by exactly the probe's packets (one SYN) and no
    /// other stopping rule moved: then it is the rule, not just likely the rule.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exact: bool,
    /// How many times the probe was sent (again when other traffic moved the counters too);
    /// 0 when no rule of the firewall could stop it (none drops or rejects its address and port).
    pub probes: u32,
    /// Dropping or rejecting rules without a counter that could match this probe (its port and
    /// address), listed when no counted rule moved: without counters, which one matched cannot
    /// be told.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<FirewallRule>,
    /// How many rules (and chain policies) were read.
    pub rules_read: u32,
    /// Why the rules could not be read, in one line (`needs CAP_NET_ADMIN ...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<String>,
    /// How long the snapshots and probes took, in microseconds.
    pub elapsed_us: u64,
}

impl FirewallMatch {
    /// The same match without the rules' text (their places stay), saying why: for a client
    /// on another host, as the listeners' owners are.
    pub fn without_rule_text(mut self) -> FirewallMatch {
        for rule in self.matched.iter_mut().chain(self.candidates.iter_mut()) {
            rule.text = RULE_TEXT_HIDDEN.to_string();
        }
        self
    }

    /// What a match that named no rule found, in words: no rule could have stopped the probe
    /// (none was sent), or none that could counted it.
    pub fn nothing_found(&self) -> String {
        let rules = self.rules_read;
        match self.probes {
            0 if rules == 0 => "this host's firewall has no rules: nothing could stop it".into(),
            0 => format!(
                "none of this host's {rules} firewall rules drops or rejects this address and \
                 port: nothing to probe"
            ),
            _ => format!("no dropping or rejecting rule of this host's {rules} counted the probe"),
        }
    }
}

/// What a remote client sees instead of a rule's text.
pub const RULE_TEXT_HIDDEN: &str =
    "(text shown only to clients on the agent's host, or with the agent's --show-processes)";

/// A listening socket's accept queue: connections the kernel completed that the process has not
/// yet accepted, and how many it may hold (the backlog the process asked for, capped by
/// `net.core.somaxconn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptQueue {
    /// Connections waiting to be accepted.
    pub waiting: u32,
    /// The queue's size.
    pub backlog: u32,
}

impl AcceptQueue {
    /// Whether the kernel drops new SYNs to it: Linux holds one more than the backlog.
    pub fn is_full(self) -> bool {
        self.waiting > self.backlog
    }
}

/// The state of a listener's owning process (`/proc/PID/stat`'s third field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OwnerState {
    /// `R`: running or ready to run.
    Running,
    /// `S`: waiting for something (an idle server waiting in `accept` or `epoll`).
    Sleeping,
    /// `D`: in an uninterruptible wait (usually disk or a hung network filesystem).
    DiskSleep,
    /// `T`: stopped by a signal (SIGSTOP, SIGTSTP: Ctrl-Z).
    Stopped,
    /// `t`: stopped by a debugger.
    TracingStop,
    /// `Z`: exited, not yet reaped by its parent.
    Zombie,
    /// `X`: dead.
    Dead,
    /// `I`: an idle kernel thread.
    Idle,
    /// A state this version does not know.
    #[serde(other)]
    Other,
}

impl OwnerState {
    /// The state from its one-letter code.
    pub fn from_code(code: char) -> OwnerState {
        match code {
            'R' => OwnerState::Running,
            'S' => OwnerState::Sleeping,
            'D' => OwnerState::DiskSleep,
            'T' => OwnerState::Stopped,
            't' => OwnerState::TracingStop,
            'Z' => OwnerState::Zombie,
            'X' | 'x' => OwnerState::Dead,
            'I' => OwnerState::Idle,
            _ => OwnerState::Other,
        }
    }

    /// Whether the process cannot run at all: nothing it owns will be answered.
    pub fn is_stopped(self) -> bool {
        matches!(
            self,
            OwnerState::Stopped | OwnerState::TracingStop | OwnerState::Zombie | OwnerState::Dead
        )
    }

    /// The state in words, with its code (`stopped (T: SIGSTOP or Ctrl-Z)`).
    pub fn meaning(self) -> &'static str {
        match self {
            OwnerState::Running => "running (R)",
            OwnerState::Sleeping => "sleeping (S)",
            OwnerState::DiskSleep => "in uninterruptible sleep (D: disk or a hung mount)",
            OwnerState::Stopped => "stopped (T: SIGSTOP, or Ctrl-Z in its terminal)",
            OwnerState::TracingStop => "stopped by a debugger (t)",
            OwnerState::Zombie => "a zombie (Z: exited, not reaped by its parent)",
            OwnerState::Dead => "dead (X)",
            OwnerState::Idle => "idle (I)",
            OwnerState::Other => "in an unknown state",
        }
    }
}

/// The agent's own ephemeral ports, read when a connect failed with `EADDRNOTAVAIL`: the range
/// (`net.ipv4.ip_local_port_range`), how many of its ports are held, and who holds the most to
/// the destination (a port can be reused towards another destination, not towards the same).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalPorts {
    /// Where the connect went.
    pub destination: SocketAddr,
    /// The lowest and highest ephemeral port.
    pub range: (u16, u16),
    /// This host's TCP sockets on a port of the range, whatever their destination.
    pub in_range: u32,
    /// Its sockets to the destination: established ones.
    pub established: u32,
    /// Its sockets to the destination in `TIME_WAIT` (closed, held for a minute by the kernel).
    pub time_wait: u32,
    /// Its sockets to the destination in another state (connecting, closing).
    pub other: u32,
    /// The process that owns the most sockets to the destination, when readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_owner: Option<PortHolder>,
}

impl LocalPorts {
    /// How many ports the range holds.
    pub fn size(&self) -> u32 {
        u32::from(self.range.1.saturating_sub(self.range.0)) + 1
    }

    /// Sockets to the destination, in every state.
    pub fn to_destination(&self) -> u32 {
        self.established + self.time_wait + self.other
    }
}

/// A process holding sockets to a destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortHolder {
    /// Its pid.
    pub pid: u32,
    /// Its name.
    pub process: String,
    /// How many of the sockets it owns.
    pub sockets: u32,
}

/// This host's kernel tables that drop new connections when they overflow, read before and
/// after a check whose connect went unanswered: connection tracking (netfilter's conntrack
/// table) and the SYN queue (SYN cookies sent once it overflows).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostPressure {
    /// Connections tracked now (`nf_conntrack_count`), when conntrack is loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conntrack_count: Option<u64>,
    /// The table's size (`nf_conntrack_max`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conntrack_max: Option<u64>,
    /// New connections conntrack dropped or failed to insert during the check (`drop`,
    /// `early_drop` and `insert_failed` of `/proc/net/stat/nf_conntrack`, every CPU).
    pub conntrack_drops: u64,
    /// SYN cookies this host sent during the check (`TcpExt: SyncookiesSent`): a listener's
    /// SYN queue overflowed (a SYN flood, or more connects than it keeps up with).
    pub syncookies_sent: u64,
    /// Cookies that came back invalid (`SyncookiesFailed`).
    pub syncookies_failed: u64,
}

impl HostPressure {
    /// Whether the conntrack table is full, or dropped connections during the check.
    pub fn conntrack_full(&self) -> bool {
        let at_max = matches!((self.conntrack_count, self.conntrack_max), (Some(count), Some(max)) if max > 0 && count >= max);
        at_max || self.conntrack_drops > 0
    }

    /// Whether anything in it is worth a finding.
    pub fn is_notable(&self) -> bool {
        self.conntrack_full() || self.syncookies_sent > 0 || self.syncookies_failed > 0
    }
}

/// What the agent needs to read the firewall's counters, said when it lacks it.
pub const FIREWALL_NEEDS: &str = "needs CAP_NET_ADMIN to read this host's firewall counters \
    (run as root, or give the agent CAP_NET_ADMIN: AmbientCapabilities= in its systemd unit)";

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(tool: &str, policy: bool) -> FirewallRule {
        FirewallRule {
            tool: tool.into(),
            family: "inet".into(),
            table: "filter".into(),
            chain: "input".into(),
            position: 3,
            policy,
            handle: Some(5),
            text: "tcp dport 81 counter drop".into(),
            action: RuleAction::Drop,
            packets: Some(1),
        }
    }

    #[test]
    fn a_queue_is_full_past_its_backlog_and_a_stopped_owner_is_told_apart() {
        assert!(!AcceptQueue { waiting: 1, backlog: 1 }.is_full());
        assert!(AcceptQueue { waiting: 2, backlog: 1 }.is_full());
        assert!(OwnerState::from_code('T').is_stopped());
        assert!(OwnerState::from_code('t').is_stopped());
        assert!(OwnerState::from_code('Z').is_stopped());
        assert!(!OwnerState::from_code('S').is_stopped());
        assert!(!OwnerState::from_code('D').is_stopped(), "D passes: one reading is not 'long'");
        assert_eq!(OwnerState::from_code('?'), OwnerState::Other);
    }

    #[test]
    fn a_rule_is_placed_as_its_tool_names_it() {
        assert_eq!(rule("nft", false).place(), "inet filter input rule 3");
        assert_eq!(rule("iptables", false).place(), "iptables filter input rule 3");
        assert_eq!(rule("nft", true).place(), "inet filter input policy");
    }

    #[test]
    fn a_match_reads_back_and_unknown_actions_are_other() {
        let found = FirewallMatch {
            address: "10.0.0.2:81".parse().unwrap(),
            matched: vec![rule("nft", false)],
            exact: true,
            probes: 1,
            candidates: vec![],
            rules_read: 7,
            unreadable: None,
            elapsed_us: 900,
        };
        let text = serde_json::to_string(&found).unwrap();
        assert_eq!(serde_json::from_str::<FirewallMatch>(&text).unwrap(), found);
        let queue: RuleAction = serde_json::from_str("\"queue\"").unwrap();
        assert_eq!(queue, RuleAction::Other);
        let none = FirewallMatch { matched: vec![], exact: false, probes: 0, ..found.clone() };
        assert!(none.nothing_found().starts_with("none of this host's 7 firewall rules"));
        let empty = FirewallMatch { rules_read: 0, ..none.clone() };
        assert_eq!(
            empty.nothing_found(),
            "this host's firewall has no rules: nothing could stop it"
        );
        let uncounted = FirewallMatch { probes: 1, ..none };
        assert!(uncounted.nothing_found().ends_with("7 counted the probe"));
    }
}
