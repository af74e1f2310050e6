//! The HTTP API beside the WebSocket: the stored results (and, merged here, the agent's own
//! watches: [`super::watch_api`]).
//!
//! Who may call: every route meets the WebSocket's rules through [`admit`]: the Host check
//! (DNS rebinding) and the Origin check; a browser request from another site
//! (`Sec-Fetch-Site: cross-site`, or a foreign `Referer`) is refused; and on an agent with
//! tokens, every route needs `Authorization: Bearer SECRET` with a client token (an agent token
//! is refused). So: on a loopback agent without tokens, this host's own programs and the
//! agent's own page; on an agent with tokens, any holder of a client token.
//!
//! - `GET /api/results?target=&since=&limit=`: summaries, newest first, as JSON.
//! - `GET /api/results/{id}`: one result with its whole report.
//! - `GET /api/results.csv?target=&since=&limit=`: the summaries as CSV.
//!
//! `target=` is read as [`history::target_filter`] reads it; `since=` is RFC 3339 in UTC or a
//! duration back from now (`1h`); `limit=` is 1 to [`history::MAX_LIMIT`] (default
//! [`history::DEFAULT_LIMIT`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::SystemTime;

use axum::Router;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use whyrefused_shared::ResultListing;

use super::Peer;
use super::admit::{Refusal, admit};
use crate::app::AppState;
use crate::history::{self, Availability, History, Summary, formats};

/// The API's routes, to merge into the agent's router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/results", get(list))
        .route("/api/results.csv", get(csv))
        .route("/api/results/{id}", get(one))
        .merge(super::watch_api::routes())
}

/// A refusal or a failure, as a status and one line of text.
pub(super) struct Problem(pub(super) StatusCode, pub(super) String);

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let Problem(status, message) = self;
        (status, [(CACHE_CONTROL, "no-store")], message + "\n").into_response()
    }
}

/// Why a request gets no history: refused by the rules, or the history is off or unavailable.
pub(super) enum Unserved {
    Refused(Refusal),
    Problem(Problem),
}

impl IntoResponse for Unserved {
    fn into_response(self) -> Response {
        match self {
            Unserved::Refused(refusal) => refusal.into_response(),
            Unserved::Problem(problem) => problem.into_response(),
        }
    }
}

/// Admits the request and finds the history, or says why not.
pub(super) fn history_for(
    state: &AppState,
    headers: &HeaderMap,
    peer: SocketAddr,
) -> Result<History, Unserved> {
    admit(state, headers, peer).map_err(Unserved::Refused)?;
    match &state.history {
        Availability::On(history) => Ok(history.clone()),
        Availability::Off => Err(Unserved::Problem(Problem(
            StatusCode::NOT_FOUND,
            "this agent keeps no history (it runs with --no-history)".into(),
        ))),
        Availability::Unavailable(reason) => Err(Unserved::Problem(Problem(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("this agent's history is unavailable: {reason}"),
        ))),
    }
}

/// The query that `params` ask for.
fn query_of(params: &HashMap<String, String>) -> Result<history::Query, Problem> {
    let bad = |message: String| Problem(StatusCode::BAD_REQUEST, message);
    let mut query = history::Query { limit: history::DEFAULT_LIMIT, ..Default::default() };
    if let Some(target) = params.get("target").filter(|t| !t.is_empty()) {
        let (host, port) =
            history::target_filter(target).map_err(|e| bad(format!("target: {e}")))?;
        (query.host, query.port) = (Some(host), port);
    }
    if let Some(since) = params.get("since").filter(|s| !s.is_empty()) {
        let at = formats::parse_since(since, SystemTime::now())
            .map_err(|e| bad(format!("since: {e}")))?;
        query.since_ms = Some(formats::unix_ms(at));
    }
    if let Some(limit) = params.get("limit") {
        query.limit = match limit.parse::<usize>() {
            Ok(n @ 1..=history::MAX_LIMIT) => n,
            _ => {
                return Err(bad(format!(
                    "limit: '{limit}' is not a number from 1 to {}",
                    history::MAX_LIMIT
                )));
            }
        };
    }
    Ok(query)
}

/// The history the caller may read and the results its query parameters ask for, or the
/// answer that refuses them (who may call, or what is wrong with the query).
async fn matching(
    state: &AppState,
    headers: &HeaderMap,
    peer: SocketAddr,
    params: &HashMap<String, String>,
) -> Result<(History, Vec<Summary>), Response> {
    let history = history_for(state, headers, peer).map_err(IntoResponse::into_response)?;
    let query = query_of(params).map_err(IntoResponse::into_response)?;
    let results = summaries(&history, query).await.map_err(IntoResponse::into_response)?;
    Ok((history, results))
}

/// Runs `query` on the history.
async fn summaries(history: &History, query: history::Query) -> Result<Vec<Summary>, Problem> {
    history
        .read(move |store| store.query(&query))
        .await
        .map_err(|error| Problem(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()))
}

async fn list(
    State(state): State<AppState>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    match matching(&state, &headers, peer, &params).await {
        Ok((history, results)) => {
            let (unstored, unstored_reason) = history.lost();
            let listing = ResultListing { results, unstored, unstored_reason };
            ([(CACHE_CONTROL, "no-store")], axum::Json(listing)).into_response()
        }
        Err(refused) => refused,
    }
}

async fn csv(
    State(state): State<AppState>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    match matching(&state, &headers, peer, &params).await {
        Ok((_, results)) => {
            let headers = [(CONTENT_TYPE, "text/csv; charset=utf-8"), (CACHE_CONTROL, "no-store")];
            (headers, history::csv::render(&results)).into_response()
        }
        Err(refused) => refused,
    }
}

async fn one(
    State(state): State<AppState>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let history = match history_for(&state, &headers, peer) {
        Ok(history) => history,
        Err(unserved) => return unserved.into_response(),
    };
    if !formats::is_id(&id) {
        let message = format!("{id:?} is not a result id (ten letters and digits)");
        return Problem(StatusCode::NOT_FOUND, message).into_response();
    }
    let lookup = id.clone();
    match history.read(move |store| store.get(&lookup)).await {
        Ok(Some(stored)) => ([(CACHE_CONTROL, "no-store")], axum::Json(stored)).into_response(),
        Ok(None) => {
            Problem(StatusCode::NOT_FOUND, format!("no result {id} in this agent's history"))
                .into_response()
        }
        Err(error) => Problem(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn a_query_reads_target_since_and_limit_and_names_what_is_wrong() {
        let query = query_of(&params(&[("target", "DB:5432"), ("limit", "5")])).ok().unwrap();
        assert_eq!((query.host.as_deref(), query.port, query.limit), (Some("db"), Some(5432), 5));
        assert_eq!(query_of(&params(&[])).ok().unwrap().limit, history::DEFAULT_LIMIT);
        let recent = query_of(&params(&[("since", "1h")])).ok().unwrap();
        let hour_ago = formats::unix_ms(SystemTime::now()) - 3_600_000;
        assert!(recent.since_ms.unwrap().abs_diff(hour_ago) < 5_000);
        for (key, value, named) in [
            ("limit", "0", "limit"),
            ("limit", "10001", "limit"),
            ("since", "soon", "since"),
            ("target", "[::1", "target"),
        ] {
            let Err(Problem(status, message)) = query_of(&params(&[(key, value)])) else {
                panic!("{key}={value} was taken");
            };
            assert_eq!(status, StatusCode::BAD_REQUEST);
            assert!(message.starts_with(named), "{message}");
        }
    }
}
