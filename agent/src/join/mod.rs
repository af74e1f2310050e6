//! Joining a hub (`serve --join`): dial it, authenticate, register, then serve an ordinary
//! session over the outbound socket (the hub is its client, [`Role::JoinedToHub`]) until the link
//! drops; then rejoin after a [`Backoff`] with jitter, until the agent shuts down.
//!
//! - [`dial`]: the one place a hub is dialled (the URL rules, plain or pinned TLS), also used by
//!   the command line's `--via`.
//! - [`backoff`]: the delays between tries.
//! - [`identity`]: this agent's id, kept in its state directory, so a hub tells it apart from
//!   another agent given the same name.
//!
//! [`Role::JoinedToHub`]: crate::server::session::Role::JoinedToHub

pub mod backoff;
pub mod dial;
pub mod identity;

use std::time::{Duration, Instant};

use axum::extract::ws;
use futures::{SinkExt, Stream, StreamExt};
use tokio_tungstenite::tungstenite::{self, Message};
use tracing::{error, info, warn};
use whyrefused_shared::{AgentMessage, ClientMessage, ErrorCode, PROTOCOL_VERSION};

use crate::app::AppState;
use crate::hub::{PING_INTERVAL, Registration, host_addresses};
use crate::probe::firewall;
use crate::server::session;
use crate::tokens::Secret;
use backoff::{Backoff, random_unit};
use dial::{DIAL_TIMEOUT, DialError, HubUrl, dial};

/// Where and as whom to join.
#[derive(Debug, Clone)]
pub struct JoinConfig {
    /// The hub.
    pub url: HubUrl,
    /// The secret presented in hello (the first of this agent's token file).
    pub token: Secret,
    /// The name to register under.
    pub name: String,
    /// This agent's id (kept in its state directory), sent in `register`: the hub lets it
    /// replace a live link of its name only if that link is this agent's own.
    pub agent_id: String,
    /// The lock on `name` in the state directory, held while the agent runs.
    pub name_lock: std::sync::Arc<identity::NameLock>,
    /// When another agent holds the name: keep trying every [`NAME_TAKEN_PAUSE`] instead of
    /// exiting (`--wait-for-name`).
    pub wait_for_name: bool,
}

/// Why joining failed, or the link ended before it was up.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error(transparent)]
    Dial(#[from] DialError),
    #[error("the hub refused to let this agent join ({code:?}): {message}")]
    Refused { code: ErrorCode, message: String },
    #[error(
        "the hub speaks protocol {0}, this agent {PROTOCOL_VERSION}: run the same whyrefused version on both"
    )]
    ProtocolMismatch(u32),
    #[error("the hub closed the socket during the handshake")]
    Closed,
    #[error("the hub said nothing for {} s during the handshake", DIAL_TIMEOUT.as_secs())]
    Silent,
    #[error("the hub sent something unexpected during the handshake: {0}")]
    Unexpected(String),
    #[error("the socket to the hub failed: {0}")]
    Socket(#[from] tungstenite::Error),
}

/// The pause after the hub showed a certificate this agent does not trust (a wrong
/// `--join-tls-fingerprint`, or an impostor): no retry soon will fix that, but a hub whose
/// certificate is being replaced may come back right, so the agent tries again this rarely.
pub const UNTRUSTED_CERTIFICATE_PAUSE: Duration = Duration::from_secs(5 * 60);

impl JoinError {
    /// The hub's certificate is not the one trusted: the operator's to fix, not a passing fault.
    pub fn is_untrusted_certificate(&self) -> bool {
        matches!(self, JoinError::Dial(error) if error.is_untrusted_certificate())
    }
}

/// Why a joining agent stops trying for good: it exits with this message (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum JoinFatal {
    #[error(
        "the hub refused this agent's name: {0} (exiting; with --wait-for-name the agent keeps \
         trying every 30 s until the name is free)"
    )]
    NameTaken(String),
}

/// The pause between tries while the name is held by another agent (`--wait-for-name`).
pub const NAME_TAKEN_PAUSE: Duration = Duration::from_secs(30);

/// The first pause after the hub refused this agent's token; it doubles with each refusal up to
/// [`AUTH_REFUSED_MAX_PAUSE`]. A hub locks a peer address out after 5 failed tokens a minute:
/// an agent whose token the hub does not know yet (its file not reloaded) must not lock out
/// everyone behind the same address, so it knocks this rarely.
pub const AUTH_REFUSED_PAUSE: Duration = Duration::from_secs(30);

/// The longest pause after refused tokens.
pub const AUTH_REFUSED_MAX_PAUSE: Duration = Duration::from_secs(5 * 60);

/// What to do after a try.
#[derive(Debug)]
enum Next {
    /// Try again after this pause.
    Retry(Duration),
    /// Stop trying.
    GiveUp(JoinFatal),
}

/// The pauses between tries: short ones (with jitter) for passing faults, long ones for what
/// the operator must fix.
#[derive(Debug, Default)]
struct Pauses {
    backoff: Backoff,
    /// Refused tokens since the last join.
    auth_refusals: u32,
}

impl Pauses {
    /// What to do after `outcome` of a try that lasted `lasted`.
    fn after(
        &mut self,
        outcome: Result<&'static str, JoinError>,
        lasted: Duration,
        wait_for_name: bool,
    ) -> Next {
        match outcome {
            Ok(_) => {
                self.auth_refusals = 0;
                // A link that held past a ping or two worked: start over from short delays.
                if lasted > PING_INTERVAL {
                    self.backoff.reset();
                }
            }
            Err(error) if error.is_untrusted_certificate() => {
                return Next::Retry(UNTRUSTED_CERTIFICATE_PAUSE);
            }
            Err(JoinError::Refused { code: ErrorCode::NameTaken, message }) => {
                return match wait_for_name {
                    true => Next::Retry(NAME_TAKEN_PAUSE),
                    false => Next::GiveUp(JoinFatal::NameTaken(message)),
                };
            }
            Err(JoinError::Refused { code: ErrorCode::Unauthorized, .. }) => {
                let doubled = AUTH_REFUSED_PAUSE.saturating_mul(1 << self.auth_refusals.min(8));
                self.auth_refusals = self.auth_refusals.saturating_add(1);
                return Next::Retry(doubled.min(AUTH_REFUSED_MAX_PAUSE));
            }
            Err(_) => {}
        }
        Next::Retry(self.backoff.next(random_unit()))
    }
}

/// Joins the hub and stays joined (rejoining after every drop) until the agent shuts down, or
/// until the hub refuses the name for another agent's (unless `wait_for_name`).
pub async fn run(config: JoinConfig, state: AppState) -> Result<(), JoinFatal> {
    let mut pauses = Pauses::default();
    loop {
        let started = Instant::now();
        let outcome = join_once(&config, &state).await;
        say(&config, &outcome);
        if state.shutdown.is_cancelled() {
            return Ok(());
        }
        let delay = match pauses.after(outcome, started.elapsed(), config.wait_for_name) {
            Next::Retry(delay) => delay,
            Next::GiveUp(fatal) => return Err(fatal),
        };
        info!(hub = %config.url, delay_ms = delay.as_millis() as u64, "joining the hub again after a pause");
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = state.shutdown.cancelled() => return Ok(()),
        }
    }
}

/// Logs how a try ended: loudly when the operator must act.
fn say(config: &JoinConfig, outcome: &Result<&'static str, JoinError>) {
    let (hub, name) = (&config.url, &config.name);
    match outcome {
        Ok(reason) => warn!(%hub, %name, reason, "left the hub"),
        Err(error) if error.is_untrusted_certificate() => error!(
            %hub, %name, %error,
            "NOT JOINED: the hub's certificate is not the one this agent trusts; fix \
             --join-tls-fingerprint (the hub prints its fingerprint at start) and restart; \
             trying again in {} s",
            UNTRUSTED_CERTIFICATE_PAUSE.as_secs()
        ),
        Err(JoinError::Refused { code: ErrorCode::NameTaken, message }) => error!(
            %hub, %name, %message,
            "NOT JOINED: the name '{name}' is held by another agent's live link"
        ),
        Err(JoinError::Refused { code: ErrorCode::Unauthorized, message }) => error!(
            %hub, %name, %message,
            "NOT JOINED: the hub refused this agent's token (the first line of its --token-file \
             must be in the hub's token file, as NAME:SECRET:agent); trying again after a long \
             pause, so as not to lock this address out of the hub"
        ),
        Err(error) => {
            warn!(%hub, %name, error = ?error.to_string(), "could not join the hub")
        }
    }
}

/// How long a joining agent without a listener gives its link's running requests to report a
/// shutdown before it exits anyway (as the server gives its sessions).
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(3);

/// Stays joined until `signal` (an agent without a listener of its own), then shuts down
/// gracefully: the link's running requests are told and the link closes. Ends early when the
/// link gives up for good (the name is another agent's).
pub async fn serve_joined(
    config: JoinConfig,
    state: AppState,
    signal: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), JoinFatal> {
    info!(hub = %config.url, name = %config.name, "joining the hub as a vantage point");
    let mut link = tokio::spawn(run(config, state.clone()));
    let ended = tokio::select! {
        () = signal => None,
        ended = &mut link => Some(ended),
    };
    info!("shutting down: telling running requests");
    state.shutdown.cancel();
    state.sessions.close();
    if tokio::time::timeout(SHUTDOWN_DEADLINE, state.sessions.wait()).await.is_err() {
        warn!("sessions did not finish in time; exiting anyway");
    }
    let ended = match ended {
        Some(ended) => ended,
        None => match tokio::time::timeout(SHUTDOWN_DEADLINE, link).await {
            Ok(ended) => ended,
            Err(_) => {
                warn!("the link to the hub did not close in time; exiting anyway");
                Ok(Ok(()))
            }
        },
    };
    ended.unwrap_or(Ok(()))
}

/// One join: the handshake, then the session until the link ends (why, when it did).
async fn join_once(config: &JoinConfig, state: &AppState) -> Result<&'static str, JoinError> {
    let (socket, hub) = dial(&config.url).await?;
    let (mut sink, mut stream) = socket.split();
    match next_message(&mut stream).await? {
        AgentMessage::Hello { protocol, .. } if protocol == PROTOCOL_VERSION => {}
        AgentMessage::Hello { protocol, .. } => return Err(JoinError::ProtocolMismatch(protocol)),
        other => return Err(JoinError::Unexpected(format!("{other:?}"))),
    }
    let hello = ClientMessage::Hello {
        protocol: PROTOCOL_VERSION,
        client: format!("whyrefused {} joining as {}", state.agent.version, config.name),
        token: Some(config.token.expose().to_string()),
    };
    let Registration { name, version, hostname, addresses, agent_id, forwards } =
        Registration::of_this_agent(config, state);
    let register =
        ClientMessage::Register { name, version, hostname, addresses, agent_id, forwards };
    for message in [hello, register] {
        let json = serde_json::to_string(&message).expect("protocol messages serialize");
        sink.send(Message::text(json)).await?;
    }
    match next_message(&mut stream).await? {
        AgentMessage::Registered { name } => info!(hub = %config.url, ?name, "joined the hub"),
        AgentMessage::Error { code, message, .. } => {
            return Err(JoinError::Refused { code, message });
        }
        other => return Err(JoinError::Unexpected(format!("{other:?}"))),
    }
    let stream = stream.map(|frame| frame.map(to_axum).map_err(axum::Error::new));
    let sink = sink.sink_map_err(axum::Error::new).with(|message: ws::Message| {
        futures::future::ready(Ok::<_, axum::Error>(to_tungstenite(message)))
    });
    Ok(session::serve_link(stream, Box::pin(sink), state.clone(), hub).await)
}

/// The hub's next protocol message during the handshake.
async fn next_message(
    stream: &mut (impl Stream<Item = Result<Message, tungstenite::Error>> + Unpin),
) -> Result<AgentMessage, JoinError> {
    loop {
        let frame = tokio::time::timeout(DIAL_TIMEOUT, stream.next())
            .await
            .map_err(|_| JoinError::Silent)?;
        match frame {
            Some(Ok(Message::Text(text))) => {
                return serde_json::from_str(text.as_str())
                    .map_err(|error| JoinError::Unexpected(error.to_string()));
            }
            Some(Ok(Message::Close(_))) | None => return Err(JoinError::Closed),
            Some(Ok(_)) => {}
            Some(Err(error)) => return Err(JoinError::Socket(error)),
        }
    }
}

fn to_axum(message: Message) -> ws::Message {
    match message {
        Message::Text(text) => ws::Message::Text(text.as_str().to_owned().into()),
        Message::Binary(bytes) => ws::Message::Binary(bytes),
        Message::Ping(bytes) => ws::Message::Ping(bytes),
        Message::Pong(bytes) => ws::Message::Pong(bytes),
        Message::Close(frame) => ws::Message::Close(frame.map(|frame| ws::CloseFrame {
            code: frame.code.into(),
            reason: frame.reason.as_str().to_owned().into(),
        })),
        // Raw frames only appear when writing; a reader never sees one.
        Message::Frame(_) => ws::Message::Binary(Default::default()),
    }
}

fn to_tungstenite(message: ws::Message) -> Message {
    match message {
        ws::Message::Text(text) => Message::Text(text.as_str().to_owned().into()),
        ws::Message::Binary(bytes) => Message::Binary(bytes),
        ws::Message::Ping(bytes) => Message::Ping(bytes),
        ws::Message::Pong(bytes) => Message::Pong(bytes),
        ws::Message::Close(frame) => {
            Message::Close(frame.map(|frame| tungstenite::protocol::CloseFrame {
                code: frame.code.into(),
                reason: frame.reason.as_str().to_owned().into(),
            }))
        }
    }
}

impl Registration {
    /// This agent's registration, as `config` says. It `forwards` when its host forwards
    /// packets and it may read the firewall's counters now (each join looks again).
    pub fn of_this_agent(config: &JoinConfig, state: &AppState) -> Registration {
        Registration {
            name: config.name.clone(),
            version: state.agent.version.clone(),
            hostname: state.agent.hostname.clone(),
            addresses: host_addresses(),
            agent_id: Some(config.agent_id.clone()),
            forwards: firewall::forwards() && firewall::has_net_admin(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pause `pauses` takes after `outcome`, failing if it gives up.
    fn pause(pauses: &mut Pauses, outcome: Result<&'static str, JoinError>) -> Duration {
        match pauses.after(outcome, Duration::ZERO, false) {
            Next::Retry(delay) => delay,
            Next::GiveUp(fatal) => panic!("gave up: {fatal}"),
        }
    }

    fn refused(code: ErrorCode) -> Result<&'static str, JoinError> {
        Err(JoinError::Refused { code, message: "no".into() })
    }

    #[test]
    fn an_untrusted_hub_certificate_waits_five_minutes_and_other_failures_back_off_briefly() {
        let mut pauses = Pauses::default();
        let url = "wss://127.0.0.1:1/ws".to_string();
        let mismatch = Err(JoinError::Dial(DialError::PinMismatch { url, detail: "x".into() }));
        assert_eq!(pause(&mut pauses, mismatch), Duration::from_secs(300));
        assert!(pause(&mut pauses, Err(JoinError::Closed)) <= backoff::MAX, "a passing fault");
        let unknown = Err(JoinError::Dial(DialError::UnknownIssuer { url: "wss://h:1".into() }));
        assert_eq!(pause(&mut pauses, unknown), UNTRUSTED_CERTIFICATE_PAUSE);
    }

    #[test]
    fn a_refused_token_waits_thirty_seconds_then_longer_until_the_agent_joins() {
        let mut pauses = Pauses::default();
        let waits: Vec<u64> = (0..6)
            .map(|_| pause(&mut pauses, refused(ErrorCode::Unauthorized)).as_secs())
            .collect();
        assert_eq!(waits, [30, 60, 120, 240, 300, 300]);
        pause(&mut pauses, Ok("the hub closed the link"));
        assert_eq!(pause(&mut pauses, refused(ErrorCode::Unauthorized)).as_secs(), 30);
    }

    #[test]
    fn a_name_held_by_another_agent_ends_the_agent_unless_it_waits_for_the_name() {
        let mut pauses = Pauses::default();
        let gave_up = pauses.after(refused(ErrorCode::NameTaken), Duration::ZERO, false);
        assert!(matches!(gave_up, Next::GiveUp(JoinFatal::NameTaken(_))), "{gave_up:?}");
        let waits = pauses.after(refused(ErrorCode::NameTaken), Duration::ZERO, true);
        assert!(matches!(waits, Next::Retry(NAME_TAKEN_PAUSE)), "{waits:?}");
    }
}
