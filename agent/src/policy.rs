//! The target policy: which addresses and ports an agent that connects on request may reach,
//! checked after DNS resolution on every address, before any packet is sent.
//!
//! An agent makes connections for whoever can talk to it, so it must not become a way to reach
//! what its clients must not: the cloud metadata service, link-local neighbours, multicast. The
//! policy holds deny rules (the defaults and `--deny`), allow rules (`--allow`) and the allowed
//! ports (`--allow-ports`):
//!
//! - a deny rule always wins, over any allow;
//! - when any `--allow` is given, an address outside every allow is denied ("not in --allow");
//! - when `--allow-ports` is given, a port outside it is denied.
//!
//! Addresses are checked after resolution, so every way of writing one (a name, the decimal
//! `2130706433` or hex `0xa9fea9fe` forms the system resolver turns into ordinary addresses) is
//! checked as the address actually connected to. IPv6 addresses that carry an IPv4 address
//! (IPv4-mapped `::ffff:169.254.169.254`, IPv4-compatible `::169.254.169.254`, NAT64
//! `64:ff9b::a9fe:a9fe`, 6to4 `2002:a9fe:a9fe::`) are checked as the IPv4 address they carry
//! (and deny rules as written too), so an IPv6 spelling slips past no IPv4 rule.
//!
//! The default rules apply to an agent that serves others: listening beyond loopback, or joined
//! to a hub (see [`TargetPolicy::for_agent`]); the in-process CLI uses
//! [`TargetPolicy::unrestricted`]. A hub checks what needs no resolution (an address literal,
//! the port: [`TargetPolicy::check_unresolved`]) before forwarding a request; each vantage
//! point checks every rule on the addresses its own resolver gives.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use ipnet::IpNet;

use crate::scan::ports::PortSpec;
use crate::target::Host;

/// An IPv4 or IPv6 network (`10.0.0.0/8`, `fe80::/10`); a bare address is a one-address network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr(IpNet);

/// Why a CIDR could not be parsed. Each message names the problem and the valid form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error(
        "the network is empty: give an address with a prefix length, as 10.0.0.0/8 or fd00::/8"
    )]
    Empty,
    #[error("'{0}' is not an IPv4 or IPv6 address: give a network as 10.0.0.0/8 or fd00::/8")]
    Address(String),
    #[error("'{0}' is not a prefix length: give a number of bits, as 10.0.0.0/8")]
    Prefix(String),
    #[error("prefix {prefix} is longer than {bits} bits for an {family} network")]
    PrefixTooLong { prefix: String, bits: u8, family: &'static str },
    #[error(
        "{0} has bits set after its prefix: write the network's first address, {1} (or the one address, {2})"
    )]
    HostBits(String, Cidr, IpAddr),
}

impl Cidr {
    /// The network of `address` with `prefix` bits; bits after the prefix are cleared.
    pub fn new(address: IpAddr, prefix: u8) -> Result<Cidr, CidrError> {
        IpNet::new(address, prefix).map(|network| Cidr(network.trunc())).map_err(|_| {
            CidrError::PrefixTooLong {
                prefix: prefix.to_string(),
                bits: bits_of(&address),
                family: family_of(&address),
            }
        })
    }

    /// The network holding exactly `address`.
    pub fn host(address: IpAddr) -> Cidr {
        Cidr(IpNet::from(address))
    }

    /// Whether `address` is in this network (an IPv4 network holds no IPv6 address and the
    /// reverse: callers normalise mapped addresses first, see [`canonical`]).
    pub fn contains(&self, address: &IpAddr) -> bool {
        self.0.contains(address)
    }

    /// An IPv4-mapped network (`::ffff:10.0.0.0/104`) as the IPv4 network it means
    /// (`10.0.0.0/8`); any other network unchanged.
    fn canonical(self) -> Cidr {
        let IpNet::V6(v6) = self.0 else { return self };
        match (v6.prefix_len().checked_sub(96), v6.network().to_ipv4_mapped()) {
            (Some(prefix), Some(v4)) => Cidr::new(IpAddr::V4(v4), prefix).unwrap_or(self),
            _ => self,
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(input: &str) -> Result<Cidr, CidrError> {
        let text = input.trim();
        if text.is_empty() {
            return Err(CidrError::Empty);
        }
        let (address_text, prefix_text) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let bare = address_text.trim_start_matches('[').trim_end_matches(']');
        let address: IpAddr =
            bare.parse().map_err(|_| CidrError::Address(address_text.to_string()))?;
        let Some(prefix_text) = prefix_text else { return Ok(Cidr::host(address)) };
        if prefix_text.is_empty() || !prefix_text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CidrError::Prefix(prefix_text.to_string()));
        }
        let bits = bits_of(&address);
        let prefix = match prefix_text.parse::<u8>() {
            Ok(prefix) if prefix <= bits => prefix,
            _ => {
                let (prefix, family) = (prefix_text.to_string(), family_of(&address));
                return Err(CidrError::PrefixTooLong { prefix, bits, family });
            }
        };
        let cidr = Cidr::new(address, prefix)?;
        if cidr.0.network() != address {
            return Err(CidrError::HostBits(text.to_string(), cidr, address));
        }
        Ok(cidr)
    }
}

fn bits_of(address: &IpAddr) -> u8 {
    match address {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

fn family_of(address: &IpAddr) -> &'static str {
    match address {
        IpAddr::V4(_) => "IPv4",
        IpAddr::V6(_) => "IPv6",
    }
}

/// The address a connection to `address` really reaches, for checking: an IPv6 address that
/// carries an IPv4 address (see [`carried_ipv4`]) as that IPv4 address; any other unchanged.
pub fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => carried_ipv4(v6).map_or(address, IpAddr::V4),
        IpAddr::V4(_) => address,
    }
}

/// The well-known NAT64 prefix (RFC 6052), `64:ff9b::/96`, as the top 96 bits of an address.
const NAT64_PREFIX: u128 = 0x0064_ff9b_0000_0000_0000_0000;

/// The 6to4 prefix (RFC 3056), `2002::/16`, as the top 16 bits of an address.
const SIX_TO_FOUR_PREFIX: u16 = 0x2002;

/// The IPv4 address an IPv6 address carries, in each form that reaches it: IPv4-mapped
/// (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`, but not `::` or `::1`), NAT64
/// (`64:ff9b::a.b.c.d`, the last 32 bits) and 6to4 (`2002:AABB:CCDD::/48`, bits 16 to 48).
pub fn carried_ipv4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(v6);
    let last_32 = Ipv4Addr::from(bits as u32);
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    let compatible = bits >> 32 == 0 && !v6.is_unspecified() && !v6.is_loopback();
    if compatible || bits >> 32 == NAT64_PREFIX {
        return Some(last_32);
    }
    (v6.segments()[0] == SIX_TO_FOUR_PREFIX).then(|| Ipv4Addr::from((bits >> 80) as u32))
}

/// The rules every agent that serves others (listening beyond loopback, or joined to a hub)
/// starts with, each with the name a denial quotes.
pub const DEFAULT_DENY: [(&str, &str); 12] = [
    (LOOPBACK, "127.0.0.0/8"),
    (LOOPBACK, "::1/128"),
    ("link-local", "169.254.0.0/16"),
    ("link-local", "fe80::/10"),
    ("cloud metadata", "100.100.100.200/32"),
    ("cloud metadata", "168.63.129.16/32"),
    ("cloud metadata", "fd00:ec2::254/128"),
    ("multicast", "224.0.0.0/4"),
    ("multicast", "ff00::/8"),
    ("broadcast", "255.255.255.255/32"),
    ("unspecified", "0.0.0.0/32"),
    ("unspecified", "::/128"),
];

/// The name of the default rules `--allow-loopback` lifts.
pub const LOOPBACK: &str = "loopback";

/// Whom an agent connects for, which decides its default rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serves {
    /// Only this host's own users (listening on loopback, not joined to a hub): they can reach
    /// every address themselves, so no default rule applies.
    ThisHost,
    /// Anyone else too (listening beyond loopback, or joined to a hub as a vantage point): the
    /// default rules apply.
    Others,
}

/// A deny rule and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DenyRule {
    network: Cidr,
    /// The default rule's name (`link-local`), or `None` for a `--deny`.
    default: Option<&'static str>,
}

/// Why the policy denies a target. The message names the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    /// A default rule matches the address.
    #[error("{} is denied by the default rule \"{name} {network}\"", show(*.address))]
    DefaultRule { address: IpAddr, name: &'static str, network: Cidr },
    /// A `--deny` matches the address.
    #[error("{} is denied by --deny {network}", show(*.address))]
    Deny { address: IpAddr, network: Cidr },
    /// `--allow` was given and no allow holds the address.
    #[error("{} is not in --allow {allow}", show(*.address))]
    NotAllowed { address: IpAddr, allow: String },
    /// `--allow-ports` was given and does not hold the port.
    #[error("port {port} is not in --allow-ports {allow_ports}")]
    Port { port: u16, allow_ports: String },
}

impl Denial {
    /// The rule, as the agent's `/metrics` labels it: `default link-local`, `deny
    /// 10.0.9.0/24`, `allow`, `allow-ports`.
    pub fn rule(&self) -> String {
        match self {
            Denial::DefaultRule { name, .. } => format!("default {name}"),
            Denial::Deny { network, .. } => format!("deny {network}"),
            Denial::NotAllowed { .. } => "allow".into(),
            Denial::Port { .. } => "allow-ports".into(),
        }
    }
}

/// How many times each rule denied a check's address or a scan's, for `/metrics`. Shared by
/// every clone of a policy; never part of a policy's equality.
#[derive(Debug, Clone, Default)]
pub struct DenialTally(std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<String, u64>>>);

impl PartialEq for DenialTally {
    fn eq(&self, _: &DenialTally) -> bool {
        true
    }
}

impl Eq for DenialTally {}

/// An address as a denial shows it: with the IPv4 address it carries, when it is mapped.
fn show(address: IpAddr) -> String {
    match canonical(address) {
        same if same == address => address.to_string(),
        carried => format!("{address} ({carried})"),
    }
}

/// The rules an operator gives `serve`.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// `--allow`: when given, only these networks.
    pub allow: Vec<Cidr>,
    /// `--deny`: never these networks.
    pub deny: Vec<Cidr>,
    /// `--allow-ports`: when given, only these ports.
    pub allow_ports: Option<PortSpec>,
    /// `--allow-loopback`: lifts the default loopback rules (an `--allow` cannot, as a deny
    /// rule beats it), for an agent whose clients may reach this host's own services.
    pub allow_loopback: bool,
}

/// Where an agent may connect. See the module's documentation for the rules' order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetPolicy {
    /// The default rules (when applied) then every `--deny`, first match named.
    deny: Vec<DenyRule>,
    /// Every `--allow`; empty allows every address no deny rule matches.
    allow: Vec<Cidr>,
    /// `--allow-ports`; `None` allows every port.
    allow_ports: Option<PortSpec>,
    /// The denials so far, by rule.
    tally: DenialTally,
}

impl TargetPolicy {
    /// No rules at all: the in-process CLI's policy (it connects for its own user only).
    pub fn unrestricted() -> TargetPolicy {
        TargetPolicy::default()
    }

    /// The default deny rules only.
    pub fn with_defaults() -> TargetPolicy {
        TargetPolicy::defaults_but(&[])
    }

    /// The default deny rules, but those named in `lifted`.
    fn defaults_but(lifted: &[&str]) -> TargetPolicy {
        let deny = DEFAULT_DENY
            .iter()
            .filter(|(name, _)| !lifted.contains(name))
            .map(|(name, network)| DenyRule {
                network: network.parse().expect("the default rules are valid networks"),
                default: Some(*name),
            })
            .collect();
        TargetPolicy { deny, ..TargetPolicy::default() }
    }

    /// The policy of an agent that serves `serves`: the explicit rules, after the default
    /// rules when it serves others (but the loopback rules, with `--allow-loopback`).
    pub fn for_agent(serves: Serves, rules: &Rules) -> TargetPolicy {
        let lifted: &[&str] = if rules.allow_loopback { &[LOOPBACK] } else { &[] };
        let base = match serves {
            Serves::ThisHost => TargetPolicy::unrestricted(),
            Serves::Others => TargetPolicy::defaults_but(lifted),
        };
        let policy = rules.deny.iter().fold(base, |policy, network| policy.deny(*network));
        let policy = rules.allow.iter().fold(policy, |policy, network| policy.allow(*network));
        match &rules.allow_ports {
            Some(ports) => policy.allow_ports(ports.clone()),
            None => policy,
        }
    }

    /// Adds a `--deny`.
    pub fn deny(mut self, network: Cidr) -> TargetPolicy {
        self.deny.push(DenyRule { network: network.canonical(), default: None });
        self
    }

    /// Adds an `--allow`.
    pub fn allow(mut self, network: Cidr) -> TargetPolicy {
        self.allow.push(network.canonical());
        self
    }

    /// Sets `--allow-ports`.
    pub fn allow_ports(mut self, ports: PortSpec) -> TargetPolicy {
        self.allow_ports = Some(ports);
        self
    }

    /// Whether the policy has no rule at all.
    pub fn is_unrestricted(&self) -> bool {
        *self == TargetPolicy::default()
    }

    /// Checks an address: the deny rules first (on the address as written and as the IPv4
    /// address it carries), then the allow rules (on the address it carries).
    pub fn check_address(&self, address: IpAddr) -> Result<(), Denial> {
        let carried = canonical(address);
        let denied_by = self
            .deny
            .iter()
            .find(|rule| rule.network.contains(&carried) || rule.network.contains(&address));
        if let Some(rule) = denied_by {
            return Err(match rule.default {
                Some(name) => Denial::DefaultRule { address, name, network: rule.network },
                None => Denial::Deny { address, network: rule.network },
            });
        }
        if !self.allow.is_empty() && !self.allow.iter().any(|network| network.contains(&carried)) {
            let allow = self.allow.iter().map(Cidr::to_string).collect::<Vec<_>>().join(", ");
            return Err(Denial::NotAllowed { address, allow });
        }
        Ok(())
    }

    /// Checks what can be checked before resolving: the port, and the address when the host is
    /// an address literal (a name is checked where it is resolved).
    pub fn check_unresolved(&self, host: &Host, port: Option<u16>) -> Result<(), Denial> {
        if let Host::Ip(address) = host {
            self.check_address(*address)?;
        }
        port.map_or(Ok(()), |port| self.check_port(port))
    }

    /// Checks a port against `--allow-ports`.
    pub fn check_port(&self, port: u16) -> Result<(), Denial> {
        match &self.allow_ports {
            Some(spec) if !spec.contains(port) => {
                Err(Denial::Port { port, allow_ports: spec.text.clone() })
            }
            _ => Ok(()),
        }
    }

    /// Whether `port` is allowed (for the extra probes, which skip ports that are not).
    pub fn allows_port(&self, port: u16) -> bool {
        self.check_port(port).is_ok()
    }

    /// Checks an address and a port, the address first.
    pub fn check(&self, target: SocketAddr) -> Result<(), Denial> {
        self.check_address(target.ip())?;
        self.check_port(target.port())
    }

    /// Counts a denial of a request's address (once per address a check or scan leaves out).
    pub fn count(&self, denial: &Denial) {
        let mut tally = self.tally.0.lock().unwrap_or_else(|e| e.into_inner());
        *tally.entry(denial.rule()).or_default() += 1;
    }

    /// The denials counted so far, by rule.
    pub fn denials(&self) -> Vec<(String, u64)> {
        let tally = self.tally.0.lock().unwrap_or_else(|e| e.into_inner());
        tally.iter().map(|(rule, count)| (rule.clone(), *count)).collect()
    }

    /// The ports of `spec` outside `--allow-ports`, ascending.
    pub fn denied_ports(&self, spec: &PortSpec) -> Vec<u16> {
        spec.ports.iter().copied().filter(|port| !self.allows_port(*port)).collect()
    }

    /// `--allow-ports` as written, when given.
    pub fn allow_ports_text(&self) -> Option<&str> {
        self.allow_ports.as_ref().map(|spec| spec.text.as_str())
    }
}

impl fmt::Display for TargetPolicy {
    /// The rules in one line, for the agent's log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_unrestricted() {
            return write!(f, "no rules");
        }
        let mut parts = Vec::new();
        if self.deny.iter().any(|rule| rule.default.is_some()) {
            parts.push("the default deny rules".to_string());
        }
        parts.extend(
            self.deny
                .iter()
                .filter(|rule| rule.default.is_none())
                .map(|rule| format!("--deny {}", rule.network)),
        );
        parts.extend(self.allow.iter().map(|network| format!("--allow {network}")));
        if let Some(ports) = &self.allow_ports {
            parts.push(format!("--allow-ports {}", ports.text));
        }
        write!(f, "{}", parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(text: &str) -> Cidr {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn denial(policy: &TargetPolicy, address: &str) -> String {
        policy.check_address(ip(address)).expect_err(address).to_string()
    }

    #[test]
    fn networks_parse_and_bad_ones_say_what_is_wrong() {
        assert_eq!(cidr("10.0.0.0/8").to_string(), "10.0.0.0/8");
        assert_eq!(cidr(" fe80::/10 ").to_string(), "fe80::/10");
        assert_eq!(cidr("[fd00::]/8").to_string(), "fd00::/8");
        assert_eq!(cidr("10.0.1.2").to_string(), "10.0.1.2/32");
        assert_eq!(cidr("::1").to_string(), "::1/128");
        assert_eq!(cidr("0.0.0.0/0").to_string(), "0.0.0.0/0");
        let error = |text: &str| text.parse::<Cidr>().unwrap_err().to_string();
        assert_eq!(error("10.0.0.0/33"), "prefix 33 is longer than 32 bits for an IPv4 network");
        assert_eq!(error("fd00::/129"), "prefix 129 is longer than 128 bits for an IPv6 network");
        assert_eq!(
            error("10.0.0.0/99999999999"),
            "prefix 99999999999 is longer than 32 bits for an IPv4 network"
        );
        assert!(error("10.0.0/8").starts_with("'10.0.0' is not an IPv4 or IPv6 address"));
        assert!(error("db.internal").starts_with("'db.internal' is not an IPv4 or IPv6 address"));
        assert!(error("10.0.0.0/").starts_with("'' is not a prefix length"));
        assert!(error("10.0.0.0/-1").starts_with("'-1' is not a prefix length"));
        assert!(error("10.0.0.0/8/9").starts_with("'8/9' is not a prefix length"));
        assert!(error("").starts_with("the network is empty"));
        assert_eq!(
            error("10.0.1.2/24"),
            "10.0.1.2/24 has bits set after its prefix: write the network's first address, \
             10.0.1.0/24 (or the one address, 10.0.1.2)"
        );
    }

    #[test]
    fn networks_hold_their_own_family_only() {
        let private = cidr("10.0.0.0/8");
        assert!(private.contains(&ip("10.255.255.255")) && private.contains(&ip("10.0.0.0")));
        assert!(!private.contains(&ip("11.0.0.0")) && !private.contains(&ip("9.255.255.255")));
        assert!(!private.contains(&ip("::ffff:10.0.0.1")), "callers normalise first");
        assert!(cidr("0.0.0.0/0").contains(&ip("203.0.113.7")));
        assert!(!cidr("0.0.0.0/0").contains(&ip("::1")));
        let link_local = cidr("fe80::/10");
        assert!(link_local.contains(&ip("fe80::1")) && link_local.contains(&ip("febf::1")));
        assert!(!link_local.contains(&ip("fec0::1")));
        assert!(cidr("::/0").contains(&ip("2001:db8::1")));
    }

    #[test]
    fn mapped_and_compatible_addresses_are_the_ipv4_address_they_carry() {
        assert_eq!(canonical(ip("::ffff:169.254.169.254")), ip("169.254.169.254"));
        assert_eq!(canonical(ip("::169.254.169.254")), ip("169.254.169.254"));
        assert_eq!(canonical(ip("::1")), ip("::1"), "loopback is not 0.0.0.1");
        assert_eq!(canonical(ip("::")), ip("::"), "unspecified is not 0.0.0.0");
        assert_eq!(canonical(ip("2001:db8::a9fe:a9fe")), ip("2001:db8::a9fe:a9fe"));
        assert_eq!(canonical(ip("10.0.0.1")), ip("10.0.0.1"));
        // A mapped network is the IPv4 network it means.
        assert_eq!(cidr("::ffff:10.0.0.0/104").canonical(), cidr("10.0.0.0/8"));
        assert_eq!(cidr("fd00::/8").canonical(), cidr("fd00::/8"));
    }

    #[test]
    fn the_default_rules_deny_loopback_metadata_link_local_multicast_broadcast_and_unspecified() {
        let policy = TargetPolicy::with_defaults();
        assert_eq!(
            denial(&policy, "169.254.169.254"),
            "169.254.169.254 is denied by the default rule \"link-local 169.254.0.0/16\""
        );
        assert_eq!(
            denial(&policy, "::ffff:169.254.169.254"),
            "::ffff:169.254.169.254 (169.254.169.254) is denied by the default rule \
             \"link-local 169.254.0.0/16\""
        );
        assert!(denial(&policy, "::169.254.169.254").contains("link-local 169.254.0.0/16"));
        assert!(denial(&policy, "fe80::1").contains("\"link-local fe80::/10\""));
        assert!(denial(&policy, "fd00:ec2::254").contains("\"cloud metadata fd00:ec2::254/128\""));
        assert!(denial(&policy, "224.0.0.1").contains("\"multicast 224.0.0.0/4\""));
        assert!(denial(&policy, "239.255.255.250").contains("multicast"));
        assert!(denial(&policy, "ff02::1").contains("\"multicast ff00::/8\""));
        assert!(denial(&policy, "255.255.255.255").contains("\"broadcast 255.255.255.255/32\""));
        assert!(denial(&policy, "0.0.0.0").contains("\"unspecified 0.0.0.0/32\""));
        assert!(denial(&policy, "::").contains("\"unspecified ::/128\""));
        assert!(denial(&policy, "::ffff:0.0.0.0").contains("unspecified 0.0.0.0/32"));
        for allowed in ["10.0.1.2", "192.0.2.1", "fd00:ec2::253", "2001:db8::1"] {
            assert_eq!(policy.check_address(ip(allowed)), Ok(()), "{allowed}");
        }
        assert!(policy.allows_port(25), "no --allow-ports: every port");
    }

    #[test]
    fn deny_wins_over_allow_and_an_allow_list_denies_everything_else() {
        let policy = TargetPolicy::unrestricted()
            .allow(cidr("10.0.0.0/8"))
            .allow(cidr("fd00::/8"))
            .deny(cidr("10.0.1.2"));
        assert_eq!(denial(&policy, "10.0.1.2"), "10.0.1.2 is denied by --deny 10.0.1.2/32");
        assert_eq!(policy.check_address(ip("10.0.1.3")), Ok(()));
        assert_eq!(policy.check_address(ip("::ffff:10.0.1.3")), Ok(()), "the same IPv4 host");
        assert_eq!(policy.check_address(ip("fd00::5")), Ok(()));
        assert_eq!(
            denial(&policy, "192.0.2.1"),
            "192.0.2.1 is not in --allow 10.0.0.0/8, fd00::/8"
        );
        assert!(denial(&policy, "::ffff:10.0.1.2").contains("--deny 10.0.1.2/32"));
        // A mapped --deny is the IPv4 rule it means.
        let mapped = TargetPolicy::unrestricted().deny(cidr("::ffff:192.0.2.0/120"));
        assert!(denial(&mapped, "192.0.2.9").contains("--deny 192.0.2.0/24"));
        // An allow never lifts a default rule.
        let metadata = TargetPolicy::with_defaults().allow(cidr("169.254.0.0/16"));
        assert!(denial(&metadata, "169.254.169.254").contains("default rule"));
    }

    #[test]
    fn allow_ports_names_the_spec_in_its_denial() {
        let policy = TargetPolicy::unrestricted()
            .allow_ports(PortSpec::parse("22,80,443,8000-9000").unwrap());
        assert_eq!(
            policy.check_port(25).unwrap_err().to_string(),
            "port 25 is not in --allow-ports 22,80,443,8000-9000"
        );
        assert!(policy.allows_port(22) && policy.allows_port(8500) && !policy.allows_port(9001));
        let spec = PortSpec::parse("20-25,80").unwrap();
        assert_eq!(policy.denied_ports(&spec), [20, 21, 23, 24, 25]);
        assert_eq!(policy.check("10.0.0.1:443".parse().unwrap()), Ok(()));
        assert!(policy.check("10.0.0.1:25".parse().unwrap()).is_err());
    }

    #[test]
    fn only_an_agent_that_serves_others_gets_the_defaults() {
        let rules = Rules { deny: vec![cidr("10.0.1.2")], ..Rules::default() };
        let local = TargetPolicy::for_agent(Serves::ThisHost, &rules);
        assert_eq!(local.check_address(ip("169.254.169.254")), Ok(()));
        assert_eq!(local.check_address(ip("127.0.0.1")), Ok(()));
        assert!(local.check_address(ip("10.0.1.2")).is_err());
        assert_eq!(local.to_string(), "--deny 10.0.1.2/32");
        let remote = TargetPolicy::for_agent(Serves::Others, &rules);
        assert!(remote.check_address(ip("169.254.169.254")).is_err());
        assert!(remote.check_address(ip("10.0.1.2")).is_err());
        assert_eq!(remote.to_string(), "the default deny rules, --deny 10.0.1.2/32");
        assert!(TargetPolicy::for_agent(Serves::ThisHost, &Rules::default()).is_unrestricted());
    }

    #[test]
    fn an_agent_that_serves_others_denies_its_own_loopback_unless_allowed_to() {
        let policy = TargetPolicy::for_agent(Serves::Others, &Rules::default());
        assert_eq!(
            denial(&policy, "127.0.0.1"),
            "127.0.0.1 is denied by the default rule \"loopback 127.0.0.0/8\""
        );
        assert!(denial(&policy, "127.255.0.9").contains("loopback 127.0.0.0/8"));
        assert!(denial(&policy, "::1").contains("\"loopback ::1/128\""));
        assert!(denial(&policy, "::ffff:127.0.0.1").contains("loopback 127.0.0.0/8"));
        // An --allow never lifts a deny rule, so it cannot open loopback.
        let allow = Rules { allow: vec![cidr("127.0.0.0/8")], ..Rules::default() };
        let allowed = TargetPolicy::for_agent(Serves::Others, &allow);
        assert!(denial(&allowed, "127.0.0.1").contains("default rule"));
        // --allow-loopback lifts the loopback rules and nothing else.
        let lifted = Rules { allow_loopback: true, ..Rules::default() };
        let lifted = TargetPolicy::for_agent(Serves::Others, &lifted);
        assert_eq!(lifted.check_address(ip("127.0.0.1")), Ok(()));
        assert_eq!(lifted.check_address(ip("::1")), Ok(()));
        assert!(denial(&lifted, "169.254.169.254").contains("link-local"));
    }

    #[test]
    fn every_cloud_metadata_address_is_denied_by_default() {
        let policy = TargetPolicy::with_defaults();
        for address in ["100.100.100.200", "168.63.129.16", "fd00:ec2::254"] {
            assert!(denial(&policy, address).contains("cloud metadata"), "{address}");
        }
        assert_eq!(policy.check_address(ip("100.100.100.201")), Ok(()));
    }

    #[test]
    fn nat64_and_6to4_addresses_are_the_ipv4_address_they_carry() {
        assert_eq!(canonical(ip("64:ff9b::a9fe:a9fe")), ip("169.254.169.254"));
        assert_eq!(canonical(ip("64:ff9b::127.0.0.1")), ip("127.0.0.1"));
        assert_eq!(canonical(ip("2002:a9fe:a9fe::1")), ip("169.254.169.254"));
        assert_eq!(canonical(ip("2002:7f00:1:5::9")), ip("127.0.0.1"));
        // Neighbours of those prefixes carry nothing.
        assert_eq!(canonical(ip("64:ff9b:1::a9fe:a9fe")), ip("64:ff9b:1::a9fe:a9fe"));
        assert_eq!(canonical(ip("2003:a9fe:a9fe::1")), ip("2003:a9fe:a9fe::1"));
        let policy = TargetPolicy::with_defaults();
        assert_eq!(
            denial(&policy, "64:ff9b::a9fe:a9fe"),
            "64:ff9b::a9fe:a9fe (169.254.169.254) is denied by the default rule \
             \"link-local 169.254.0.0/16\""
        );
        assert!(denial(&policy, "2002:a9fe:a9fe::").contains("link-local 169.254.0.0/16"));
        assert!(denial(&policy, "64:ff9b::7f00:1").contains("loopback 127.0.0.0/8"));
        assert!(denial(&policy, "2002:6464:64c8::").contains("cloud metadata 100.100.100.200"));
        let deny = TargetPolicy::unrestricted().deny(cidr("192.0.2.0/24"));
        assert!(denial(&deny, "64:ff9b::192.0.2.1").contains("--deny 192.0.2.0/24"));
    }

    #[test]
    fn what_needs_no_resolution_is_checked_before_it() {
        let policy = TargetPolicy::with_defaults().allow_ports(PortSpec::parse("80,443").unwrap());
        let literal = Host::parse("169.254.169.254").unwrap();
        assert!(
            policy
                .check_unresolved(&literal, Some(80))
                .unwrap_err()
                .to_string()
                .contains("link-local")
        );
        let name = Host::parse("metadata.internal").unwrap();
        assert_eq!(
            policy.check_unresolved(&name, Some(443)),
            Ok(()),
            "a name waits for its resolution"
        );
        assert!(
            policy
                .check_unresolved(&name, Some(25))
                .unwrap_err()
                .to_string()
                .contains("--allow-ports")
        );
        assert_eq!(policy.check_unresolved(&name, None), Ok(()));
    }
}
