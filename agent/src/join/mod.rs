//! Joining a hub (`serve --join`): dial it, authenticate, register, then serve an ordinary
//! session over the outbound socket (the hub is its client, [`Role::JoinedToHub`]) until the link
//! drops; then rejoin after a [`Backoff`] with jitter, until the agent shuts down.
//!
//! - [`dial`]: the one place a hub is dialled (the URL rules, plain or pinned TLS), also used by
//!   the command line's `--via`.
//! - [`backoff`]: the delays between tries.
//!
//! [`Role::JoinedToHub`]: crate::server::session::Role::JoinedToHub

pub mod backoff;
pub mod dial;

use std::time::{Duration, Instant};

use axum::extract::ws;
use futures::{SinkExt, Stream, StreamExt};
use tokio_tungstenite::tungstenite::{self, Message};
use tracing::{error, info, warn};
use whyrefused_shared::{AgentMessage, ClientMessage, ErrorCode, PROTOCOL_VERSION};

use crate::app::AppState;
use crate::hub::{PING_INTERVAL, Registration, host_addresses};
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

/// Joins the hub and stays joined (rejoining after every drop) until the agent shuts down.
pub async fn run(config: JoinConfig, state: AppState) {
    let mut backoff = Backoff::default();
    loop {
        let started = Instant::now();
        let outcome = join_once(&config, &state).await;
        match &outcome {
            Ok(reason) => {
                warn!(hub = %config.url, name = %config.name, reason, "left the hub");
                // A link that held past a ping or two worked: start over from short delays.
                if started.elapsed() > PING_INTERVAL {
                    backoff.reset();
                }
            }
            Err(error) if error.is_untrusted_certificate() => error!(
                hub = %config.url, name = %config.name, %error,
                "NOT JOINED: the hub's certificate is not the one this agent trusts; fix \
                 --join-tls-fingerprint (the hub prints its fingerprint at start) and restart; \
                 trying again in {} s",
                UNTRUSTED_CERTIFICATE_PAUSE.as_secs()
            ),
            Err(error) => {
                warn!(hub = %config.url, name = %config.name, error = ?error.to_string(), "could not join the hub")
            }
        }
        if state.shutdown.is_cancelled() {
            return;
        }
        let delay = pause_after(&outcome, &mut backoff);
        info!(hub = %config.url, delay_ms = delay.as_millis() as u64, "joining the hub again after a pause");
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = state.shutdown.cancelled() => return,
        }
    }
}

/// How long a joining agent without a listener gives its link's running requests to report a
/// shutdown before it exits anyway (as the server gives its sessions).
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(3);

/// Stays joined until `signal` (an agent without a listener of its own), then shuts down
/// gracefully: the link's running requests are told and the link closes.
pub async fn serve_joined(
    config: JoinConfig,
    state: AppState,
    signal: impl std::future::Future<Output = ()> + Send + 'static,
) {
    info!(hub = %config.url, name = %config.name, "joining the hub as a vantage point");
    let link = tokio::spawn(run(config, state.clone()));
    signal.await;
    info!("shutting down: telling running requests");
    state.shutdown.cancel();
    state.sessions.close();
    if tokio::time::timeout(SHUTDOWN_DEADLINE, state.sessions.wait()).await.is_err() {
        warn!("sessions did not finish in time; exiting anyway");
    }
    if tokio::time::timeout(SHUTDOWN_DEADLINE, link).await.is_err() {
        warn!("the link to the hub did not close in time; exiting anyway");
    }
}

/// How long to wait before the next try, after `outcome`.
fn pause_after(outcome: &Result<&'static str, JoinError>, backoff: &mut Backoff) -> Duration {
    match outcome {
        Err(error) if error.is_untrusted_certificate() => UNTRUSTED_CERTIFICATE_PAUSE,
        _ => backoff.next(random_unit()),
    }
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
    let Registration { name, version, hostname, addresses } =
        Registration::of_this_agent(&config.name, state);
    let register = ClientMessage::Register { name, version, hostname, addresses };
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
    /// This agent's registration under `name`.
    pub fn of_this_agent(name: &str, state: &AppState) -> Registration {
        Registration {
            name: name.to_string(),
            version: state.agent.version.clone(),
            hostname: state.agent.hostname.clone(),
            addresses: host_addresses(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_untrusted_hub_certificate_waits_five_minutes_and_other_failures_back_off_briefly() {
        let mut backoff = Backoff::default();
        let url = "wss://127.0.0.1:1/ws".to_string();
        let mismatch = Err(JoinError::Dial(DialError::PinMismatch { url, detail: "x".into() }));
        assert_eq!(pause_after(&mismatch, &mut backoff), Duration::from_secs(300));
        let closed = Err(JoinError::Closed);
        assert!(pause_after(&closed, &mut backoff) <= backoff::MAX, "a passing fault");
        let unknown = Err(JoinError::Dial(DialError::UnknownIssuer { url: "wss://h:1".into() }));
        assert_eq!(pause_after(&unknown, &mut backoff), UNTRUSTED_CERTIFICATE_PAUSE);
    }
}
