//! Who may use the agent's plain HTTP routes (`/probe`, `/metrics`, `/-/reload`, `/api/…`):
//! the rules of the WebSocket, in one place. The peer's lockout after failed authentications,
//! the Host and Origin checks and the refusal of cross-site browser requests
//! ([`origin::check_fetch`]), then, on an agent with tokens, a client token as
//! `Authorization: Bearer SECRET`; an agent token is refused, and failures count towards the
//! peer's lockout.

use std::net::SocketAddr;

use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::response::{IntoResponse, Response};
use tracing::warn;

use super::origin;
use crate::app::AppState;
use crate::tokens::{Holder, TokenRole};

/// Who made an allowed request: the token's name when the agent has tokens.
pub struct Caller {
    /// Where the request came from.
    pub peer: SocketAddr,
    /// The client token's name, on an agent with tokens.
    pub token: Option<String>,
}

/// Why a request was refused; the text goes back with the status.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("too many failed authentications from {peer}: try again in {seconds} s")]
    Blocked { peer: std::net::IpAddr, seconds: u64 },
    #[error("{0}")]
    Origin(#[from] origin::OriginError),
    #[error(
        "the token '{0}' is an agent token (name:secret:agent): it may only register as a \
         vantage point. Use a client token (name:secret)"
    )]
    AgentToken(String),
    #[error(
        "this agent needs a token: send one of its token file's client secrets as \
         Authorization: Bearer SECRET (Prometheus: the scrape config's \
         authorization.credentials_file)"
    )]
    NoToken,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = match &self {
            Refusal::Blocked { .. } => StatusCode::TOO_MANY_REQUESTS,
            Refusal::Origin(_) | Refusal::AgentToken(_) => StatusCode::FORBIDDEN,
            Refusal::NoToken => StatusCode::UNAUTHORIZED,
        };
        let challenge = [("www-authenticate", "Bearer")];
        (status, challenge, self.to_string()).into_response()
    }
}

/// Applies the rules every plain HTTP request meets: the peer's lockout, Host and Origin and cross-site,
/// then a client token when the agent has tokens.
pub fn admit(state: &AppState, headers: &HeaderMap, peer: SocketAddr) -> Result<Caller, Refusal> {
    if let Some(wait) = state.auth_blocked_for(peer.ip()) {
        return Err(Refusal::Blocked { peer: peer.ip(), seconds: wait.as_secs().max(1) });
    }
    if let Err(refusal) = origin::check_fetch(headers, state.tokens.is_some()) {
        warn!(%peer, %refusal, "refused an HTTP request");
        return Err(refusal.into());
    }
    let Some(tokens) = &state.tokens else { return Ok(Caller { peer, token: None }) };
    let presented = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    match presented.and_then(|secret| tokens.verify(secret)) {
        Some(Holder { name, role: TokenRole::Client }) => Ok(Caller { peer, token: Some(name) }),
        Some(Holder { name, role: TokenRole::Agent }) => Err(Refusal::AgentToken(name)),
        None => {
            state.record_auth_failure(peer.ip());
            warn!(%peer, "an HTTP request without a valid token");
            Err(Refusal::NoToken)
        }
    }
}
