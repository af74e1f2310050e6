//! The envelopes exchanged over the WebSocket, one enum per direction.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::check::{CheckEvent, CheckRequest};
use crate::host::FirewallMatch;
use crate::scan::{ScanEvent, ScanRequest};
use crate::vantage::{CrossVerdict, VantageInfo};

/// Names one request on a socket. The client picks it (any number unique among its requests in
/// flight); every event and error about that request carries it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RequestId(pub u64);

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A message from a client (the page or the CLI) to the agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// The first message on a socket: the protocol version the client speaks and who it is.
    Hello {
        /// The client's [`crate::PROTOCOL_VERSION`].
        protocol: u32,
        /// A free-form client name for the agent's log, such as `page` or `whyrefused-cli 0.1.0`.
        client: String,
        /// The secret of one of the agent's tokens, when its hello says `auth_required`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
    },
    /// Run a connectivity check. Its events stream back as [`AgentMessage::Event`] with this id,
    /// ending with a `done` step. With `from`, the check runs from each vantage point named: every
    /// event carries its `vantage`, each vantage point's stream ends with its own `done`, and
    /// [`AgentMessage::VantagesDone`] follows the last of them.
    Check {
        /// The client's id for this request.
        id: RequestId,
        /// What to check and how.
        request: CheckRequest,
        /// Where to run it from: vantage point names (`local` is the agent asked), or `["all"]`
        /// for every online one. Absent: from this agent only, events untagged (as before
        /// vantage points existed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<Vec<String>>,
        /// Who asked, when a hub forwards the request to a joined agent: the agent's audit line
        /// repeats it, so one request can be followed across hosts. Heeded only from a hub.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        origin: Option<Origin>,
    },
    /// Scan ports of a host. Its events stream back as [`AgentMessage::Scan`] with this id, in
    /// batches, ending with a `done` step. `from` works as for a check.
    Scan {
        /// The client's id for this request.
        id: RequestId,
        /// What to scan and how.
        request: ScanRequest,
        /// Where to run it from, as for a check.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<Vec<String>>,
        /// Who asked, as for a check.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        origin: Option<Origin>,
    },
    /// Stop a running request (a check or a scan). The agent answers with its `done` step,
    /// outcome `cancelled`.
    Cancel {
        /// The request to stop.
        id: RequestId,
    },
    /// List the vantage points this agent (as a hub) can run requests from; answered with
    /// [`AgentMessage::Agents`].
    Agents {
        /// The client's id for this request.
        id: RequestId,
    },
    /// Sent after an authenticated `hello` by an agent joining this one as a vantage point
    /// (`whyrefused serve --join`). The hub answers [`AgentMessage::Registered`], and from then
    /// on the roles on this socket are reversed: the hub sends `check`, `scan` and `cancel` (with
    /// its own ids) and the joined agent answers with ordinary agent messages.
    Register {
        /// The vantage point's name, unique on the hub (`--name`).
        name: String,
        /// The joining agent's package version.
        version: String,
        /// The host name of the machine it runs on.
        hostname: String,
        /// The addresses of its network interfaces.
        #[serde(default)]
        addresses: Vec<IpAddr>,
        /// The joining agent's own id: random, made once and kept in its state directory. A hub
        /// lets a newcomer replace the live link of the same name only when the ids match (the
        /// same agent reconnecting), so two agents given one name cannot push each other off.
        /// Absent from agents older than the field.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent_id: Option<String>,
        /// Whether the joining agent's host forwards packets (a router) and the agent may read
        /// its firewall's counters (CAP_NET_ADMIN), as it was when it joined: the hub then asks
        /// it to watch its forwarding rules around each check from several places
        /// ([`ClientMessage::ForwardWatch`]). Absent (false) from agents older than the field,
        /// which are never asked.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        forwards: bool,
    },
    /// Sent by a hub, over a joined agent's link, to an agent whose `register` said it
    /// `forwards`, before a check from several places: read the counters of this host's
    /// forwarding rules now, for [`ClientMessage::ForwardWatchFinish`] to compare. Answered
    /// with [`AgentMessage::ForwardWatching`]. Taken only from the hub an agent joined, at most
    /// [`MAX_FORWARD_WATCHES`] at once on a link; a `cancel` with its id, or
    /// [`FORWARD_WATCH_LIFETIME_S`] without its finish, ends it.
    ForwardWatch {
        /// The hub's id for the watch (from the same ids as its requests on the link).
        id: RequestId,
    },
    /// The check a [`ClientMessage::ForwardWatch`] was opened for is over: name the forwarding
    /// rule that counted SYNs to one of `failed` since the watch started. Answered with
    /// [`AgentMessage::ForwardWatched`], which ends the watch.
    ForwardWatchFinish {
        /// The watch.
        id: RequestId,
        /// The destinations the other vantage points' connects did not open: at most
        /// [`MAX_FORWARD_WATCH_DESTINATIONS`], none with port 0 or an unspecified, multicast
        /// or broadcast address.
        failed: Vec<SocketAddr>,
    },
}

/// The most forward watches a joined agent keeps open on its link to the hub at once.
pub const MAX_FORWARD_WATCHES: usize = 4;

/// How long a joined agent keeps a forward watch whose finish never came, in seconds: longer
/// than a check from several places usually lasts (a connect timeout is at most a minute).
pub const FORWARD_WATCH_LIFETIME_S: u64 = 600;

/// The most failed destinations one [`ClientMessage::ForwardWatchFinish`] may carry.
pub const MAX_FORWARD_WATCH_DESTINATIONS: usize = 64;

/// Who asked for a request a hub forwards to a joined agent, for the agent's audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// The request's id, unique across the hub: the hub's audit line carries the same.
    pub request_id: String,
    /// The name of the token the hub's client presented, when the hub requires tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The hub's client's address and port.
    pub peer: String,
}

impl ClientMessage {
    /// Every `type` tag a client may send, for error messages that list the valid ones.
    pub const TYPES: &'static [&'static str] = &[
        "hello",
        "check",
        "scan",
        "cancel",
        "agents",
        "register",
        "forward_watch",
        "forward_watch_finish",
    ];
}

/// A message from the agent to a client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentMessage {
    /// Sent as soon as the socket opens: the agent's protocol version and identity.
    Hello {
        /// The agent's [`crate::PROTOCOL_VERSION`].
        protocol: u32,
        /// Who is answering.
        agent: AgentInfo,
        /// Whether the client's hello must carry a token (the agent has a token file).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        auth_required: bool,
    },
    /// One step of a running request, as it happens.
    Event {
        /// The request this step belongs to.
        id: RequestId,
        /// The vantage point it happened at, for a request with `from`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        vantage: Option<String>,
        /// The step and when it happened.
        event: CheckEvent,
    },
    /// One step of a running scan: progress arrives in batches.
    Scan {
        /// The request this step belongs to.
        id: RequestId,
        /// The vantage point it happened at, for a request with `from`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        vantage: Option<String>,
        /// The step and when it happened.
        event: ScanEvent,
    },
    /// A message could not be acted on. The socket stays open unless the code says otherwise.
    Error {
        /// The request the error is about, when the message named one.
        id: Option<RequestId>,
        /// What kind of problem this is, for programs.
        code: ErrorCode,
        /// What is wrong and what a valid message looks like, for people.
        message: String,
    },
    /// One vantage point of a request with `from` refused or stopped its part (the hub itself
    /// reports the whole request's errors as [`AgentMessage::Error`], after which nothing
    /// follows). That vantage point's `done` follows this.
    VantageError {
        /// The request.
        id: RequestId,
        /// The vantage point.
        vantage: String,
        /// What kind of problem, as for [`AgentMessage::Error`].
        code: ErrorCode,
        /// The vantage point's own words.
        message: String,
    },
    /// Every vantage point of a request with `from` has sent its `done`: the comparison of
    /// what each saw. No more messages carry the request's id.
    VantagesDone {
        /// The request.
        id: RequestId,
        /// What the pattern across vantage points says.
        verdict: CrossVerdict,
    },
    /// The answer to [`ClientMessage::Agents`]: this agent (`local`) and the agents that joined
    /// it, online or not (an agent offline for long enough is forgotten).
    Agents {
        /// The request.
        id: RequestId,
        /// The vantage points, `local` first, then by name.
        agents: Vec<VantageInfo>,
    },
    /// The hub accepted a joining agent's [`ClientMessage::Register`]: requests may follow.
    Registered {
        /// The name it is listed under.
        name: String,
    },
    /// A request that ended was stored in the agent's history under `result`, which
    /// `GET /api/results/{result}` and the page's `/#/r/ID` links open. Sent after the request's
    /// `done` (with `from`: one per vantage point's part, before the comparison), and only to
    /// the page this agent serves (whose hello names it [`PAGE_CLIENT`]): the page always
    /// matches its agent's version, while an older CLI or hub would not know the type.
    Stored {
        /// The request.
        id: RequestId,
        /// The vantage point whose part this is, for a request with `from`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        vantage: Option<String>,
        /// The stored result's id.
        result: String,
    },
    /// A joined agent's answer to [`ClientMessage::ForwardWatch`]: whether it watches (its host
    /// forwards, it may read the counters, and a forwarding rule drops or rejects). When not,
    /// the watch is over; when it does, the hub's `forward_watch_finish` follows.
    ForwardWatching {
        /// The watch.
        id: RequestId,
        /// Whether the counters were read.
        watching: bool,
    },
    /// A joined agent's answer to [`ClientMessage::ForwardWatchFinish`]: the forwarding rules
    /// that moved and could match a SYN to one of the failed destinations, or none. The rules'
    /// text is there only when the agent shows its host's details to the hub (the hub is on its
    /// host, or the agent runs with `--show-processes`), as for its own checks.
    ForwardWatched {
        /// The watch.
        id: RequestId,
        /// What moved, the busiest rule first.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        found: Option<FirewallMatch>,
    },
}

/// The `client` the page names in its hello: the agent tells it the stored ids of its requests
/// ([`AgentMessage::Stored`]).
pub const PAGE_CLIENT: &str = "page";

/// Who an agent is: shown by the page so the user knows where probes start from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentInfo {
    /// The agent's package version.
    pub version: String,
    /// The host name of the machine the agent runs on: probes start from there.
    pub hostname: String,
    /// The build, as `whyrefused --version` names it: `commit 1a2b3c4d5e6f,
    /// x86_64-unknown-linux-musl`. Absent from agents older than the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<String>,
}

/// Why the agent refused a client message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame was not JSON (or not text).
    MalformedMessage,
    /// The JSON had no `type`, or a `type` the agent does not know.
    UnknownMessageType,
    /// The `type` was known but its fields were missing or of the wrong kind.
    InvalidMessage,
    /// The message was larger than [`crate::MAX_MESSAGE_BYTES`].
    MessageTooLarge,
    /// A request arrived before the client's `hello`.
    HelloRequired,
    /// The client's protocol version differs from the agent's; the agent closes the socket.
    ProtocolMismatch,
    /// The check's target could not be parsed; the message says why and what is valid.
    InvalidTarget,
    /// The check's options were out of range (for example a timeout of zero).
    InvalidOption,
    /// A request reused the id of one still running on this socket.
    DuplicateRequestId,
    /// A cancel named a request that is not running.
    UnknownRequest,
    /// The socket already runs as many requests as the agent allows.
    TooManyRequests,
    /// The agent is shutting down: the request was stopped and no new ones are taken.
    ShuttingDown,
    /// A scan's port spec could not be parsed; the message says why and what is valid.
    InvalidPorts,
    /// A scan asked for more ports than the agent's settings allow.
    TooManyPorts,
    /// The agent already runs as many scans as its settings allow.
    TooManyScans,
    /// The hello carried no token, or none the agent knows; the agent closes the socket.
    Unauthorized,
    /// The agent's target policy denies what the request asks for (a scan's ports outside
    /// `--allow-ports`); the message names the rule.
    PolicyDenied,
    /// A request's `from` named a vantage point this hub does not know.
    UnknownVantage,
    /// A `register` was refused (no token file on the hub, a bad name); the socket closes.
    RegistrationRefused,
    /// A `register` named a vantage point whose live link belongs to another agent (another
    /// agent id); the socket closes. The newcomer exits, or waits for the name
    /// (`--wait-for-name`).
    NameTaken,
    /// An error this version does not know (a newer agent's); its message says what happened.
    #[serde(other)]
    Unknown,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::*;
    use crate::diagnosis::*;
    use serde::de::DeserializeOwned;

    fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(
        value: &T,
    ) -> String {
        let json = serde_json::to_string(value).unwrap();
        let back: T = serde_json::from_str(&json).unwrap();
        assert_eq!(&back, value, "round trip changed {json}");
        json
    }

    fn event(step: Step) -> AgentMessage {
        AgentMessage::Event {
            id: RequestId(7),
            vantage: None,
            event: CheckEvent { at: Timestamp("2026-11-24T10:00:00.000001Z".into()), step },
        }
    }

    #[test]
    fn a_newer_agents_unknown_words_decode_as_unknown_instead_of_failing() {
        let cause: Cause = serde_json::from_str(r#""a_cause_from_the_future""#).unwrap();
        assert_eq!(cause, Cause::Unknown);
        let outcome: Outcome = serde_json::from_str(r#""vantage_moved_away""#).unwrap();
        assert_eq!(outcome, Outcome::Unknown);
        let code: ErrorCode = serde_json::from_str(r#""a_code_from_the_future""#).unwrap();
        assert_eq!(code, ErrorCode::Unknown);
        let cross: crate::CrossCause =
            serde_json::from_str(r#""a_cross_cause_from_the_future""#).unwrap();
        assert_eq!(cross, crate::CrossCause::Unknown);
    }

    #[test]
    fn every_client_message_round_trips_with_its_type_tag() {
        let hello = ClientMessage::Hello {
            protocol: crate::PROTOCOL_VERSION,
            client: "page".into(),
            token: None,
        };
        assert_eq!(round_trip(&hello), r#"{"type":"hello","protocol":1,"client":"page"}"#);
        let with_token = ClientMessage::Hello {
            protocol: 1,
            client: "cli".into(),
            token: Some("s3cret".into()),
        };
        assert!(round_trip(&with_token).ends_with(r#","token":"s3cret"}"#));
        let check = ClientMessage::Check {
            id: RequestId(1),
            request: CheckRequest {
                target: "db".into(),
                port: Some(5432),
                timeout_ms: Some(500),
                tls: true,
                retries: Some(2),
                retry_delay_ms: Some(100),
                ..CheckRequest::new("db")
            },
            from: None,
            origin: None,
        };
        assert_eq!(
            round_trip(&check),
            r#"{"type":"check","id":1,"request":{"target":"db","port":5432,"timeout_ms":500,"tls":true,"retries":2,"retry_delay_ms":100}}"#
        );
        let scan = ClientMessage::Scan {
            id: RequestId(2),
            request: crate::scan::ScanRequest {
                family: Some(Family::Ipv6),
                ..crate::scan::ScanRequest::new("db", "top100")
            },
            from: None,
            origin: None,
        };
        assert_eq!(
            round_trip(&scan),
            r#"{"type":"scan","id":2,"request":{"target":"db","ports":"top100","family":"ipv6"}}"#
        );
        let cancel = ClientMessage::Cancel { id: RequestId(1) };
        assert_eq!(round_trip(&cancel), r#"{"type":"cancel","id":1}"#);
    }

    #[test]
    fn an_agents_build_is_optional_so_older_agents_hellos_still_read() {
        let older = r#"{"type":"hello","protocol":1,"agent":{"version":"0.1.0","hostname":"box"}}"#;
        let AgentMessage::Hello { agent, .. } = serde_json::from_str(older).unwrap() else {
            panic!("a hello");
        };
        assert_eq!(agent.build, None);
        let build = Some("commit 1a2b3c4d5e6f, aarch64-unknown-linux-musl".to_string());
        let newer = AgentInfo { version: "0.2.0".into(), hostname: "box".into(), build };
        assert!(round_trip(&newer).contains(r#""build":"commit 1a2b3c4d5e6f, aarch64"#));
    }

    #[test]
    fn every_agent_message_and_step_round_trips() {
        let address: std::net::IpAddr = "2001:db8::1".parse().unwrap();
        let target = TargetInfo {
            input: "https://bücher.example/x".into(),
            host: "xn--bcher-kva.example".into(),
            display_host: "bücher.example".into(),
            port: 443,
            port_source: PortSource::SchemeDefault,
            scheme: Some("https".into()),
            path: Some("/x".into()),
        };
        let messages = [
            AgentMessage::Hello {
                protocol: 1,
                agent: AgentInfo { version: "0.1.0".into(), hostname: "box".into(), build: None },
                auth_required: true,
            },
            event(Step::Started { target, timeout_ms: 3000 }),
            event(Step::Resolved {
                resolution: Resolution {
                    host: "xn--bcher-kva.example".into(),
                    method: ResolveMethod::System,
                    status: DnsStatus::Ok,
                    addresses: vec![address],
                    detail: None,
                    elapsed_us: 1234,
                },
            }),
            event(Step::AttemptStarted { address: "[2001:db8::1]:443".parse().unwrap() }),
            event(Step::AttemptFinished {
                attempt: Attempt {
                    address,
                    port: 443,
                    family: Family::Ipv6,
                    state: ConnectState::Refused,
                    errno: Some(Errno { code: 111, name: "ECONNREFUSED".into() }),
                    icmp: Some(IcmpError {
                        icmp_type: 1,
                        code: 4,
                        meaning: "port unreachable".into(),
                        from: address,
                        from_local: false,
                    }),
                    elapsed_us: 87,
                    elapsed_ms: 0.087,
                    started_at: Timestamp("2026-11-24T10:00:00.000002Z".into()),
                },
            }),
            event(Step::Verdict {
                verdict: Verdict {
                    cause: Cause::PortClosed,
                    summary: "Nothing listens on port 443.".into(),
                    suggestions: vec!["Start the service.".into()],
                    evidence: vec![Evidence {
                        probe: "connect [2001:db8::1]:443".into(),
                        result: "refused".into(),
                        elapsed_us: Some(87),
                    }],
                    pattern: Some(Pattern::Persistent),
                },
            }),
            event(Step::RoundStarted { round: 1, of: 3 }),
            event(Step::RoundFinished {
                round: Round {
                    round: 1,
                    at: Timestamp("2026-11-24T10:00:00.000003Z".into()),
                    cause: Cause::PortClosed,
                    http_status: None,
                    elapsed_us: 90,
                    tries: None,
                },
            }),
            event(Step::Done { outcome: Outcome::Completed, elapsed_us: 2000 }),
            AgentMessage::Scan {
                id: RequestId(4),
                vantage: None,
                event: crate::scan::ScanEvent {
                    at: Timestamp("2026-11-24T10:00:00.000004Z".into()),
                    step: crate::scan::ScanStep::Done {
                        outcome: Outcome::Cancelled,
                        counts: crate::scan::StateCounts { open: 1, ..Default::default() },
                        elapsed_us: 5,
                        loss: None,
                        found: None,
                    },
                },
            },
            AgentMessage::Error {
                id: Some(RequestId(3)),
                code: ErrorCode::InvalidTarget,
                message: "port 0 is not a valid port".into(),
            },
            AgentMessage::Error {
                id: None,
                code: ErrorCode::MalformedMessage,
                message: "x".into(),
            },
        ];
        for message in messages.iter().chain(&every_finding()) {
            round_trip(message);
        }
        let json = round_trip(&messages[2]);
        assert!(json.contains(r#""step":{"kind":"resolved""#), "{json}");
    }

    fn every_finding() -> Vec<AgentMessage> {
        let v4: std::net::IpAddr = "192.0.2.7".parse().unwrap();
        let v6: std::net::IpAddr = "2001:db8::7".parse().unwrap();
        let findings = [
            Finding::DnsDetail(DnsDetail {
                name: "www.example.".into(),
                answers: vec![NameserverAnswer {
                    server: "192.0.2.53:53".parse().unwrap(),
                    record: "A".into(),
                    rcode: DnsRcode::NoError,
                    addresses: vec![v4],
                    cnames: vec!["cdn.example.".into()],
                    detail: None,
                    elapsed_us: 800,
                    tls: false,
                }],
                hosts_file: vec![v6],
                system: None,
            }),
            Finding::Liveness(Liveness {
                address: v4,
                ports: vec![PortProbe { port: 22, state: ConnectState::Refused, elapsed_us: 40 }],
                echo: EchoState::Replied,
                echo_rtt_us: Some(90),
                echo_detail: None,
                host_up: true,
                port_loss: None,
                echo_loss: None,
            }),
            Finding::NearbyPorts(NearbyPorts {
                address: v4,
                probed: 40,
                open: vec![8080],
                from_listeners: 0,
            }),
            Finding::LocalListeners(LocalListeners {
                port: 5432,
                listeners: vec![Listener {
                    address: "127.0.0.1:5432".parse().unwrap(),
                    pid: Some(4321),
                    process: Some("postgres".into()),
                    command: None,
                    queue: None,
                    owner_state: None,
                }],
                owners_hidden: None,
                listen_overflows: None,
            }),
            Finding::AfterConnect(Box::new(AfterConnect {
                address: "192.0.2.7:443".parse().unwrap(),
                early_close: Some(EarlyClose::Reset),
                banner: Some("SSH-2.0-OpenSSH_9.2".into()),
                tls: Some(TlsReport {
                    ok: false,
                    version: Some("TLSv1.3".into()),
                    error: Some("certificate expired".into()),
                    certificate: Some(CertificateSummary {
                        subject: "CN=example".into(),
                        issuer: "CN=ca".into(),
                        not_after: "2026-01-01T00:00:00Z".into(),
                        subject_alt_names: vec!["example".into()],
                        name_matches: true,
                        expired: true,
                    }),
                    elapsed_us: 3000,
                    alert: None,
                    client_certificate_requested: false,
                }),
                http: Some(HttpReport {
                    status: Some(503),
                    detail: Some("Service Unavailable".into()),
                    failed: false,
                    first_byte_us: Some(1200),
                    ..HttpReport::empty()
                }),
                phases: Phases {
                    dns_us: 1,
                    connect_us: 2,
                    tls_us: Some(3),
                    first_byte_us: Some(4),
                },
            })),
            Finding::HappyEyeballs(HappyEyeballs {
                order: vec![v6, v4],
                winner: Some(v4),
                family: Some(Family::Ipv4),
                connected_after_us: Some(250_400),
            }),
        ];
        let findings = findings.into_iter().chain([Finding::LocalDrops(LocalDrops {
            address: "192.0.2.7:80".parse().unwrap(),
            failed_retransmissions: 2,
        })]);
        findings.map(|finding| event(Step::Finding { finding })).collect()
    }

    #[test]
    fn findings_are_tagged_by_probe() {
        let json = serde_json::to_string(&every_finding()[2]).unwrap();
        assert!(json.contains(r#""finding":{"probe":"nearby_ports","#), "{json}");
    }

    #[test]
    fn vantage_messages_round_trip_and_old_messages_still_parse() {
        let check: ClientMessage =
            serde_json::from_str(r#"{"type":"check","id":1,"request":{"target":"db:5432"}}"#)
                .unwrap();
        assert!(matches!(check, ClientMessage::Check { from: None, .. }), "from defaults to none");
        let from = ClientMessage::Check {
            id: RequestId(1),
            request: CheckRequest::new("db:5432"),
            from: Some(vec!["all".into()]),
            origin: None,
        };
        assert!(round_trip(&from).ends_with(r#""from":["all"]}"#));
        let register = ClientMessage::Register {
            name: "a1".into(),
            version: "0.1.0".into(),
            hostname: "box".into(),
            addresses: vec!["192.0.2.1".parse().unwrap()],
            agent_id: None,
            forwards: false,
        };
        assert_eq!(
            round_trip(&register),
            r#"{"type":"register","name":"a1","version":"0.1.0","hostname":"box","addresses":["192.0.2.1"]}"#
        );
        round_trip(&ClientMessage::Agents { id: RequestId(3) });
        let tagged = AgentMessage::Event {
            id: RequestId(7),
            vantage: Some("a1".into()),
            event: CheckEvent {
                at: Timestamp("2026-11-24T10:00:00.000001Z".into()),
                step: Step::Done { outcome: Outcome::VantageOffline, elapsed_us: 5 },
            },
        };
        assert!(round_trip(&tagged).contains(r#""vantage":"a1""#));
        assert!(!round_trip(&event(Step::RoundStarted { round: 1, of: 1 })).contains("vantage"));
        round_trip(&AgentMessage::Registered { name: "a1".into() });
        let stored = AgentMessage::Stored { id: RequestId(4), vantage: None, result: "r1".into() };
        assert_eq!(round_trip(&stored), r#"{"type":"stored","id":4,"result":"r1"}"#);
        round_trip(&AgentMessage::VantageError {
            id: RequestId(7),
            vantage: "a1".into(),
            code: ErrorCode::TooManyScans,
            message: "busy".into(),
        });
        round_trip(&AgentMessage::Agents {
            id: RequestId(3),
            agents: vec![crate::vantage::VantageInfo {
                name: "local".into(),
                online: true,
                version: "0.1.0".into(),
                hostname: "box".into(),
                addresses: vec![],
                last_seen: Some(Timestamp("2026-11-24T10:00:00.000001Z".into())),
                connected_since: None,
            }],
        });
    }

    #[test]
    fn forward_watches_round_trip_and_a_router_says_so_in_its_register() {
        let older = r#"{"type":"register","name":"r1","version":"0.1.0","hostname":"box"}"#;
        let older: ClientMessage = serde_json::from_str(older).unwrap();
        assert!(matches!(older, ClientMessage::Register { forwards: false, .. }), "{older:?}");
        let router = ClientMessage::Register {
            name: "r1".into(),
            version: "0.2.0".into(),
            hostname: "gw".into(),
            addresses: Vec::new(),
            agent_id: None,
            forwards: true,
        };
        assert!(round_trip(&router).ends_with(r#""forwards":true}"#));
        let start = ClientMessage::ForwardWatch { id: RequestId(5) };
        assert_eq!(round_trip(&start), r#"{"type":"forward_watch","id":5}"#);
        let finish = ClientMessage::ForwardWatchFinish {
            id: RequestId(5),
            failed: vec!["10.7.3.2:80".parse().unwrap(), "[2001:db8::2]:443".parse().unwrap()],
        };
        assert_eq!(
            round_trip(&finish),
            r#"{"type":"forward_watch_finish","id":5,"failed":["10.7.3.2:80","[2001:db8::2]:443"]}"#
        );
        for tag in ["forward_watch", "forward_watch_finish"] {
            assert!(ClientMessage::TYPES.contains(&tag), "{tag}");
        }
        let watching = AgentMessage::ForwardWatching { id: RequestId(5), watching: true };
        assert_eq!(round_trip(&watching), r#"{"type":"forward_watching","id":5,"watching":true}"#);
        let nothing = AgentMessage::ForwardWatched { id: RequestId(5), found: None };
        assert_eq!(round_trip(&nothing), r#"{"type":"forward_watched","id":5}"#);
        let found = FirewallMatch {
            address: "10.7.3.2:80".parse().unwrap(),
            matched: vec![crate::host::FirewallRule {
                tool: "iptables".into(),
                family: "ip".into(),
                table: "filter".into(),
                chain: "FORWARD".into(),
                position: 1,
                policy: false,
                handle: None,
                text: "-A FORWARD -p tcp -m tcp --dport 80 -j DROP".into(),
                action: crate::host::RuleAction::Drop,
                packets: Some(3),
            }],
            exact: false,
            probes: 0,
            candidates: Vec::new(),
            rules_read: 4,
            unreadable: None,
            elapsed_us: 2_500_000,
        };
        round_trip(&AgentMessage::ForwardWatched { id: RequestId(5), found: Some(found) });
    }

    #[test]
    fn error_codes_use_snake_case_names() {
        let json = serde_json::to_string(&ErrorCode::DuplicateRequestId).unwrap();
        assert_eq!(json, r#""duplicate_request_id""#);
    }
}
