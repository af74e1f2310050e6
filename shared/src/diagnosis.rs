//! The extra probes a diagnosis runs beyond one connect per address, and their findings.
//!
//! Each finding streams as a `finding` step as soon as its probe ends, and is kept in the
//! report; the verdict cites the ones that support it as [`Evidence`].

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::check::{ConnectState, Family};

/// One probe's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "probe", rename_all = "snake_case")]
pub enum Finding {
    /// The configured nameservers asked directly, beside the system resolver.
    DnsDetail(DnsDetail),
    /// Whether the host is up, from other ports and an ICMP echo.
    Liveness(Liveness),
    /// Open ports near the asked one, and its usual alternatives.
    NearbyPorts(NearbyPorts),
    /// The agent's own listening sockets on the asked port, when the target is this host.
    LocalListeners(LocalListeners),
    /// What happened after a connection opened: banner, early close, TLS, HTTP.
    AfterConnect(Box<AfterConnect>),
    /// What a Happy Eyeballs client (a browser, curl) would end up with.
    HappyEyeballs(HappyEyeballs),
    /// Retransmissions this host failed to send while a connect went unanswered: its own
    /// firewall dropped them.
    LocalDrops(LocalDrops),
    /// Every connect to the port this check sent, and how many were answered: some answered
    /// and some not is a lossy path, none answered a firewall.
    Loss(crate::loss::LossFinding),
    /// A connection that opened and then stalled, repeated with smaller segments: the proof of
    /// a path-MTU black hole, or of its absence.
    MtuProbe(crate::mtu::MtuProbe),
    /// A `large` check's payload to the server, and whether it was acknowledged.
    LargeSend(crate::mtu::LargeSend),
    /// The path the SYNs take, hop by hop, and the last hop that answered. Sent again as hops
    /// answer (`complete` false) and once at the end; a report keeps the latest per address.
    Path(Box<crate::path::Path>),
    /// What answers on an open port: the protocol it speaks, and the one expected.
    Service(crate::service::ServiceIdentity),
    /// On the target host itself: the firewall rule whose counters moved with a repeated probe
    /// of the port (or the rules that could have, without counters), or what reading them needs.
    FirewallRule(crate::host::FirewallMatch),
    /// After a connect failed with `EADDRNOTAVAIL`: this host's ephemeral ports, and who holds
    /// the most to the destination.
    LocalPorts(crate::host::LocalPorts),
    /// After an unanswered connect: this host's conntrack table full or dropping, or SYN
    /// cookies sent, during the check.
    HostPressure(crate::host::HostPressure),
    /// The proxy variables the program follows for the target: the proxy the check went
    /// through and what it answered, or the `NO_PROXY` entry that sent it directly.
    Proxy(crate::proxy::ProxyFinding),
}

impl Finding {
    /// The probe's wire name (`dns_detail`).
    pub fn name(&self) -> &'static str {
        match self {
            Finding::DnsDetail(_) => "dns_detail",
            Finding::Liveness(_) => "liveness",
            Finding::NearbyPorts(_) => "nearby_ports",
            Finding::LocalListeners(_) => "local_listeners",
            Finding::AfterConnect(_) => "after_connect",
            Finding::HappyEyeballs(_) => "happy_eyeballs",
            Finding::LocalDrops(_) => "local_drops",
            Finding::Loss(_) => "loss",
            Finding::MtuProbe(_) => "mtu_probe",
            Finding::Service(_) => "service",
            Finding::LargeSend(_) => "large_send",
            Finding::Path(_) => "path",
            Finding::FirewallRule(_) => "firewall_rule",
            Finding::LocalPorts(_) => "local_ports",
            Finding::HostPressure(_) => "host_pressure",
            Finding::Proxy(_) => "proxy",
        }
    }
}

/// An ICMP error that answered one of the agent's own SYNs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IcmpError {
    /// ICMP (or ICMPv6) type: 3 is destination unreachable for IPv4, 1 for IPv6.
    pub icmp_type: u8,
    /// ICMP code: for IPv4 type 3, 1 host unreachable, 3 port unreachable, 13 administratively
    /// prohibited; for IPv6 type 1, 1 administratively prohibited, 4 port unreachable.
    pub code: u8,
    /// What the type and code mean, in words (`port unreachable`).
    pub meaning: String,
    /// Who sent it: the target itself, a router or firewall on the way, or this host.
    pub from: IpAddr,
    /// Whether the sender is one of the agent's own addresses (its own firewall or neighbour
    /// table answered).
    pub from_local: bool,
}

/// A nameserver's answer to one question.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DnsRcode {
    /// The name exists (records may or may not be present).
    NoError,
    /// The name does not exist.
    NxDomain,
    /// The server failed.
    ServFail,
    /// The server refused to answer.
    Refused,
    /// No answer before the deadline.
    Timeout,
    /// Another failure (see the detail).
    Error,
}

/// One question to one nameserver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameserverAnswer {
    /// The nameserver asked.
    pub server: SocketAddr,
    /// The record type asked for (`A` or `AAAA`).
    pub record: String,
    /// Its response code.
    pub rcode: DnsRcode,
    /// The addresses in the answer.
    pub addresses: Vec<IpAddr>,
    /// The CNAME chain the answer followed, in order (`www.example.com` → `cdn.example.net`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cnames: Vec<String>,
    /// The server's words or the error's, when useful.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// How long it took, in microseconds.
    pub elapsed_us: u64,
    /// Whether it was asked over TLS (DNS over TLS, `tls://`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tls: bool,
}

/// The configured nameservers asked directly (via `/etc/resolv.conf`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsDetail {
    /// The name asked about (fully qualified, as the answers name it).
    pub name: String,
    /// Each server's answer for A and for AAAA.
    pub answers: Vec<NameserverAnswer>,
    /// Addresses `/etc/hosts` gives the name: when present, they override DNS for programs
    /// that use the system resolver.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts_file: Vec<IpAddr>,
    /// With resolvers named by the request (the servers in `answers`): what the system
    /// resolver answered, to compare.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<crate::check::Resolution>,
}

/// One extra TCP probe to a port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortProbe {
    /// The port.
    pub port: u16,
    /// How the connect ended.
    pub state: ConnectState,
    /// How long it took, in microseconds.
    pub elapsed_us: u64,
}

/// An ICMP echo's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EchoState {
    /// The host answered.
    Replied,
    /// No reply before the deadline.
    NoReply,
    /// The agent may not send ICMP (no ping socket, no raw socket).
    Unavailable,
}

/// Whether a host is up, independent of the asked port.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Liveness {
    /// The address probed.
    pub address: IpAddr,
    /// Connects to a few well-known ports: any answer (open or refused) proves the host is up.
    pub ports: Vec<PortProbe>,
    /// The ICMP echo.
    pub echo: EchoState,
    /// The echo's round trip, in microseconds, when it replied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub echo_rtt_us: Option<u64>,
    /// Why the echo could not be sent, when unavailable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub echo_detail: Option<String>,
    /// Whether anything above proved the host up.
    pub host_up: bool,
    /// Further connects to the first of the ports above that answered, sent while the asked
    /// port's own further connects ran: the loss on the path to the host, whatever a firewall
    /// does to the asked port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_loss: Option<crate::loss::LossFinding>,
    /// Echoes sent over the same time and how many were answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub echo_loss: Option<crate::loss::Loss>,
}

/// Open ports near the asked one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NearbyPorts {
    /// The address probed.
    pub address: IpAddr,
    /// How many ports were tried.
    pub probed: u32,
    /// The ones that opened, nearest first.
    pub open: Vec<u16>,
    /// How many of them were read from the host's own listening sockets rather than connected
    /// to: the agent's own address, where no rule of its firewall could stop a connect to them.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub from_listeners: u32,
}

fn is_zero(count: &u32) -> bool {
    *count == 0
}

/// A listening socket on the agent's host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listener {
    /// The address it is bound to (`127.0.0.1:5432`, `[::]:5432`).
    pub address: SocketAddr,
    /// The owning process, when readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// The owning process's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<String>,
    /// The owning process's command line (`python3 -m http.server 8080`), when readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Its accept queue, when the kernel shows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<crate::host::AcceptQueue>,
    /// The owning process's state (stopped, a zombie...), when readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_state: Option<crate::host::OwnerState>,
}

/// Whether a socket bound to `bound` takes connections to `destination` (see
/// [`Listener::accepts`]).
pub fn bound_accepts(bound: &SocketAddr, destination: &IpAddr) -> bool {
    let bound = bound.ip().to_canonical();
    let destination = destination.to_canonical();
    bound == destination
        || (bound.is_unspecified() && (bound.is_ipv4() == destination.is_ipv4() || bound.is_ipv6()))
}

impl Listener {
    /// Whether this socket takes connections to `destination`: bound to that address, or to
    /// the unspecified address of its family (an IPv6 one, `[::]`, takes IPv4 too unless
    /// `IPV6_V6ONLY`, which `/proc` does not tell, so it is assumed to). An IPv4-mapped
    /// address is the IPv4 address it carries, on either side.
    pub fn accepts(&self, destination: &IpAddr) -> bool {
        bound_accepts(&self.address, destination)
    }

    /// Its owner in words: `pid 812 (sshd)`; `None` when it is not known.
    pub fn owner(&self) -> Option<String> {
        Some(format!("pid {} ({})", self.pid?, self.process.as_deref()?))
    }
}

/// The agent host's listeners on the asked port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalListeners {
    /// The port.
    pub port: u16,
    /// Every listening socket on it, whatever its address.
    pub listeners: Vec<Listener>,
    /// Why the owning processes are not shown, when they are not: hidden from a remote client
    /// (the agent's `--show-processes` shows them), or not readable by the agent's user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owners_hidden: Option<String>,
    /// SYNs this host dropped while the check ran because a listener's accept queue was full
    /// (`TcpExt: ListenOverflows` moving, counted for the whole host), when read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen_overflows: Option<u64>,
}

/// Why a listener's owner is not named to a client that connected from another host.
pub const OWNERS_HIDDEN_FROM_REMOTE: &str = "the owning processes are shown only to clients on     the agent's own host: start the agent with --show-processes to show them to remote clients";

/// Why a listener's owner could not be read.
pub const OWNERS_UNREADABLE: &str = "the owning process is not readable by the agent's user:     it needs CAP_SYS_PTRACE or CAP_DAC_READ_SEARCH (or root) to see other users' processes";

impl LocalListeners {
    /// The same listeners without their owners, saying why.
    pub fn without_owners(mut self) -> LocalListeners {
        for listener in &mut self.listeners {
            listener.pid = None;
            listener.process = None;
            listener.command = None;
        }
        if !self.listeners.is_empty() {
            self.owners_hidden = Some(OWNERS_HIDDEN_FROM_REMOTE.into());
        }
        self
    }
}

/// How a server ended a connection it had just accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EarlyClose {
    /// It closed cleanly (FIN) before sending anything.
    Closed,
    /// It reset the connection.
    Reset,
}

/// A server certificate, summarised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateSummary {
    /// The subject's distinguished name.
    pub subject: String,
    /// The issuer's distinguished name.
    pub issuer: String,
    /// The end of validity (RFC 3339).
    pub not_after: String,
    /// The DNS names and addresses it is valid for.
    pub subject_alt_names: Vec<String>,
    /// Whether the asked host name is among them.
    pub name_matches: bool,
    /// Whether it has expired.
    pub expired: bool,
}

/// The TLS handshake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsReport {
    /// Whether the handshake completed and the certificate was accepted.
    pub ok: bool,
    /// The negotiated version (`TLSv1.3`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The server's certificate, when one was received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertificateSummary>,
    /// How long the handshake took, in microseconds.
    pub elapsed_us: u64,
    /// The TLS alert the server ended the handshake with, by its RFC 8446 name
    /// (`certificate_required`, `handshake_failure`, `protocol_version`, `unrecognized_name`).
    /// With TLS 1.3 a server that wants a client certificate says so only after the handshake:
    /// the alert then arrives on the first read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<String>,
    /// Whether the server asked for a client certificate (a CertificateRequest); none was sent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub client_certificate_requested: bool,
}

/// One HTTP request and its answer (the last one, when redirects were followed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpReport {
    /// The status code, when a response arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The status line's reason or the error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Whether the exchange failed (no response, or a malformed or cut one).
    pub failed: bool,
    /// Time from sending the request to the response's first byte, in microseconds.
    pub first_byte_us: Option<u64>,
    /// The protocol of the status line (`HTTP/1.1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The status line's reason phrase (`Service Unavailable`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The headers that say something about a failure (`Server`, `Location`,
    /// `WWW-Authenticate`, `Retry-After`, `Content-Type`, `Via`), in the order received.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HttpHeader>,
    /// The first line of the body, when it is text (an HTML page's title), made printable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_first_line: Option<String>,
    /// How the server ended the connection mid-response, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed: Option<HttpClose>,
    /// The redirects followed on the way (with `follow`), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redirects: Vec<HttpRedirect>,
    /// The statuses the request said count as working (`expect_status`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expected_status: Vec<u16>,
    /// The head arrived, then the body stopped arriving short of its announced length (within
    /// the body wait), the connection still open: the stall a path-MTU black hole leaves.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub body_stalled: bool,
}

impl HttpReport {
    /// A report of an exchange that has not (yet) produced anything: failed until a status
    /// line arrives.
    pub fn empty() -> HttpReport {
        HttpReport {
            status: None,
            detail: None,
            failed: true,
            first_byte_us: None,
            version: None,
            reason: None,
            headers: Vec::new(),
            body_first_line: None,
            closed: None,
            redirects: Vec::new(),
            expected_status: Vec::new(),
            body_stalled: false,
        }
    }

    /// The value of the header `name` (case-insensitive), when it was kept.
    pub fn header(&self, name: &str) -> Option<&str> {
        let found = self.headers.iter().find(|header| header.name.eq_ignore_ascii_case(name));
        found.map(|header| header.value.as_str())
    }

    /// The status line as received (`HTTP/1.1 503 Service Unavailable`), when one arrived.
    /// (Reports from agents older than `reason` carry the reason in `detail`.)
    pub fn status_line(&self) -> Option<String> {
        let status = self.status?;
        let version = self.version.as_deref().unwrap_or("HTTP/1.1");
        let reason = self.reason.as_deref().or(self.detail.as_deref().filter(|_| !self.failed));
        let line = format!("{version} {status} {}", reason.unwrap_or_default());
        Some(line.trim_end().to_string())
    }
}

/// One header of an HTTP response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpHeader {
    /// Its name as the server wrote it.
    pub name: String,
    /// Its value, made printable and cut to a line.
    pub value: String,
}

/// Where in a response the server closed or reset the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HttpPart {
    /// Before the blank line that ends the status line and headers.
    Headers,
    /// After the headers, before the body's announced end.
    Body,
}

/// A response cut short by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpClose {
    /// Where it happened.
    pub during: HttpPart,
    /// A clean close (FIN) or a reset.
    pub how: EarlyClose,
    /// How many bytes of the response had arrived.
    pub bytes_received: u64,
}

/// A redirect that was followed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpRedirect {
    /// Its status (301, 302, 307, 308, …).
    pub status: u16,
    /// Where it pointed.
    pub location: String,
}

/// The phases of the first connection that opened, in microseconds each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Phases {
    /// Name resolution.
    pub dns_us: u64,
    /// The TCP handshake.
    pub connect_us: u64,
    /// The TLS handshake, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_us: Option<u64>,
    /// From the request (or the connection, with no request) to the first byte back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_byte_us: Option<u64>,
}

/// What followed a successful connect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AfterConnect {
    /// The address the connection went to.
    pub address: SocketAddr,
    /// The server closed or reset the connection at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_close: Option<EarlyClose>,
    /// What the server sent first unprompted (SSH, SMTP, FTP, Redis errors, …), made printable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub banner: Option<String>,
    /// The TLS handshake, for `https://`, `wss://` and other TLS schemes or `--tls`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsReport>,
    /// The HTTP exchange, for `http://` and `https://`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpReport>,
    /// Phase timings.
    pub phases: Phases,
}

/// What a Happy Eyeballs client (RFC 8305) would do with the resolved addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HappyEyeballs {
    /// The order it tries addresses in: families interleaved, the preferred family first.
    pub order: Vec<IpAddr>,
    /// The address it ends up connected to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub winner: Option<IpAddr>,
    /// The winner's family.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<Family>,
    /// When it would have a connection, counting its 250 ms staggering, in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connected_after_us: Option<u64>,
}

/// TCP retransmissions this host failed to send (`TcpExt: TCPRetransFail`) while a connect to
/// `address` went unanswered: the packets never left, so this host's own firewall (its OUTPUT
/// chain) dropped them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalDrops {
    /// The address the unanswered connect went to.
    pub address: SocketAddr,
    /// How many retransmissions failed on this host during it (counted for the whole network
    /// namespace).
    pub failed_retransmissions: u64,
}

/// One piece of evidence behind a verdict: a probe, what it found, and how long it took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// The probe (`connect 10.0.0.5:5432`, `icmp`, `liveness`, `dns 10.0.0.2`, `listeners`).
    pub probe: String,
    /// What it found, in words.
    pub result: String,
    /// How long it took, in microseconds, when it is one timed probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elapsed_us: Option<u64>,
}

/// Whether a failure repeats over retried rounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pattern {
    /// Every round ended the same way.
    Persistent,
    /// Rounds disagreed: it sometimes works.
    Intermittent,
}

/// One round of a retried check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Round {
    /// The round's number, from 1.
    pub round: u32,
    /// When it started (RFC 3339).
    pub at: crate::check::Timestamp,
    /// Its cause.
    pub cause: crate::check::Cause,
    /// The HTTP status the service answered in that round, when it answered one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// How long it took, in microseconds.
    pub elapsed_us: u64,
    /// The connects to the port that round sent, and how many were answered (a SYN-ACK or a
    /// reset): the timeline's answered and unanswered tries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tries: Option<crate::loss::Tries>,
}
