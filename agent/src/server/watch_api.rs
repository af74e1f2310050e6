//! The HTTP API of the agent's own watches ([`crate::hub::watches`]); the documents are
//! `whyrefused_shared::watch`'s.
//!
//! Who may call: every route is admitted as every `/api` route is ([`admit`]): the Host and
//! Origin checks, no cross-site browser request, and on an agent with tokens a client token
//! (`Authorization: Bearer`). So on a loopback agent without tokens, this host's own programs
//! and the agent's own page; on an agent with tokens, any holder of a client token, whose
//! token's name is kept as who made or stopped a watch.
//!
//! - `POST /api/watches` with a `WatchSpec` (`Content-Type: application/json`, at most
//!   [`MAX_SPEC_BYTES`]) → `201` and the `WatchInfo`; a malformed body `400`, a wrong field
//!   `422`, a full agent `409`, each with one line saying why.
//! - `GET /api/watches` → the `WatchListing`.
//! - `GET /api/watches/{id}` → one `WatchInfo`.
//! - `GET /api/watches/{id}/rounds?since=&limit=` → `WatchRounds`: the latest `limit` rounds
//!   (1 to [`history::MAX_LIMIT`], default [`history::DEFAULT_LIMIT`]) started at or after
//!   `since` (RFC 3339 or a duration back from now), oldest first, read from the history.
//! - `DELETE /api/watches/{id}` → `204`: the watch stops (a round under way is dropped) and
//!   stays listed as stopped, with who stopped it.

use std::collections::HashMap;
use std::time::SystemTime;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use whyrefused_shared::{WatchRounds, WatchSpec};

use super::Peer;
use super::admit::admit;
use super::api::{Problem, history_for};
use crate::app::AppState;
use crate::history::{self, formats};
use crate::hub::watches::WatchError;

/// The largest spec a `POST` may carry: a check request and a few fields.
pub const MAX_SPEC_BYTES: usize = 16 * 1024;

/// The watch routes, to merge into the API's.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/watches", get(list).post(create).layer(DefaultBodyLimit::max(MAX_SPEC_BYTES)))
        .route("/api/watches/{id}", get(one).delete(stop))
        .route("/api/watches/{id}/rounds", get(rounds))
}

fn json(status: StatusCode, value: &impl serde::Serialize) -> Response {
    (status, [(CACHE_CONTROL, "no-store")], axum::Json(value)).into_response()
}

impl From<WatchError> for Problem {
    fn from(error: WatchError) -> Problem {
        let status = match &error {
            WatchError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            WatchError::Full(_) => StatusCode::CONFLICT,
            WatchError::NoHistory(_) => StatusCode::SERVICE_UNAVAILABLE,
            WatchError::Unknown(_) => StatusCode::NOT_FOUND,
            WatchError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Problem(status, error.to_string())
    }
}

/// A watch id as the path gave it, or the answer for one that cannot be.
fn watch_id(id: &str) -> Result<&str, Problem> {
    match formats::is_id(id) {
        true => Ok(id),
        false => {
            let shown: String = id.chars().take(32).flat_map(char::escape_default).collect();
            Err(Problem(StatusCode::NOT_FOUND, format!("'{shown}' is not a watch id")))
        }
    }
}

/// Whether the request says its body is JSON.
fn is_json(headers: &HeaderMap) -> bool {
    let media = headers.get(CONTENT_TYPE).and_then(|value| value.to_str().ok()).unwrap_or("");
    let essence = media.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
}

async fn create(
    State(state): State<AppState>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let caller = match admit(&state, &headers, peer) {
        Ok(caller) => caller,
        Err(refusal) => return refusal.into_response(),
    };
    if !is_json(&headers) {
        let message = "a watch is made with a JSON body: send Content-Type: application/json";
        return Problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, message.into()).into_response();
    }
    let spec: WatchSpec = match serde_json::from_slice(&body) {
        Ok(spec) => spec,
        Err(error) => {
            let message = format!("the body is not a watch spec: {error}");
            return Problem(StatusCode::BAD_REQUEST, message).into_response();
        }
    };
    match state.watches.create(&state, spec, caller.token).await {
        Ok(info) => json(StatusCode::CREATED, &info),
        Err(error) => Problem::from(error).into_response(),
    }
}

async fn list(
    State(state): State<AppState>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    headers: HeaderMap,
) -> Response {
    match admit(&state, &headers, peer) {
        Ok(_) => json(StatusCode::OK, &state.watches.list()),
        Err(refusal) => refusal.into_response(),
    }
}

async fn one(
    State(state): State<AppState>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(refusal) = admit(&state, &headers, peer) {
        return refusal.into_response();
    }
    let found = watch_id(&id).and_then(|id| {
        state.watches.get(id).ok_or_else(|| WatchError::Unknown(id.to_string()).into())
    });
    match found {
        Ok(info) => json(StatusCode::OK, &info),
        Err(problem) => problem.into_response(),
    }
}

async fn stop(
    State(state): State<AppState>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let caller = match admit(&state, &headers, peer) {
        Ok(caller) => caller,
        Err(refusal) => return refusal.into_response(),
    };
    let id = match watch_id(&id) {
        Ok(id) => id,
        Err(problem) => return problem.into_response(),
    };
    match state.watches.stop(&state, id, caller.token).await {
        Ok(_) => (StatusCode::NO_CONTENT, [(CACHE_CONTROL, "no-store")]).into_response(),
        Err(error) => Problem::from(error).into_response(),
    }
}

async fn rounds(
    State(state): State<AppState>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let history = match history_for(&state, &headers, peer) {
        Ok(history) => history,
        Err(unserved) => return unserved.into_response(),
    };
    let asked = watch_id(&id).and_then(|id| {
        state.watches.get(id).ok_or_else(|| WatchError::Unknown(id.to_string()))?;
        let (since_ms, limit) = window(&params)?;
        Ok((id.to_string(), since_ms, limit))
    });
    let (id, since_ms, limit) = match asked {
        Ok(asked) => asked,
        Err(problem) => return problem.into_response(),
    };
    match history.read(move |store| store.rounds(&id, since_ms, limit)).await {
        Ok(rounds) => json(StatusCode::OK, &WatchRounds { rounds }),
        Err(error) => Problem(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}

/// `since=` and `limit=` of a rounds query.
fn window(params: &HashMap<String, String>) -> Result<(Option<i64>, usize), Problem> {
    let bad = |message: String| Problem(StatusCode::BAD_REQUEST, message);
    let since_ms = match params.get("since").filter(|s| !s.is_empty()) {
        None => None,
        Some(since) => Some(formats::unix_ms(
            formats::parse_since(since, SystemTime::now())
                .map_err(|e| bad(format!("since: {e}")))?,
        )),
    };
    let limit = match params.get("limit") {
        None => history::DEFAULT_LIMIT,
        Some(limit) => match limit.parse::<usize>() {
            Ok(n @ 1..=history::MAX_LIMIT) => n,
            _ => {
                return Err(bad(format!(
                    "limit: '{limit}' is not a number from 1 to {}",
                    history::MAX_LIMIT
                )));
            }
        },
    };
    Ok((since_ms, limit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_json_body_makes_a_watch() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_TYPE, value.parse().unwrap());
            is_json(&headers)
        };
        assert!(with("application/json"));
        assert!(with("Application/JSON; charset=utf-8"));
        assert!(!with("text/plain"));
        assert!(!with("application/x-www-form-urlencoded"));
        assert!(!is_json(&HeaderMap::new()));
    }

    #[test]
    fn a_rounds_query_reads_since_and_limit() {
        let params = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        assert_eq!(window(&params(&[])).ok().unwrap(), (None, history::DEFAULT_LIMIT));
        assert_eq!(window(&params(&[("limit", "5")])).ok().unwrap().1, 5);
        for (key, value) in [("limit", "0"), ("limit", "x"), ("since", "later")] {
            let Err(Problem(status, message)) = window(&params(&[(key, value)])) else {
                panic!("{key}={value} was taken");
            };
            assert_eq!(status, StatusCode::BAD_REQUEST);
            assert!(message.starts_with(key), "{message}");
        }
    }
}
