//! The Prometheus routes: `GET /probe` (blackbox_exporter's, with the cause), `GET /metrics`
//! (the agent's own) and `POST /-/reload` (the probe modules).
//!
//! A scrape is a client like any other: the Host, Origin and cross-site rules of the WebSocket
//! apply (a page elsewhere must never make the agent connect), and when the agent has tokens a
//! client token must come as `Authorization: Bearer SECRET` (Prometheus' `authorization`
//! setting); an agent token is refused, and failures count towards the peer's lockout.

use std::collections::HashMap;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tracing::{info, warn};

use super::Peer;
use super::admit::{Caller, admit};
use crate::app::AppState;
use crate::clock;
use crate::exporter::Via;
use crate::exporter::exposition::{self, Probed};
use crate::exporter::modules::DEFAULT_MODULE;
use crate::exporter::probe::{self, Answer, ProbeAsk, ProbeError};

/// The header in which Prometheus says how long it waits for a scrape.
const SCRAPE_TIMEOUT_HEADER: &str = "x-prometheus-scrape-timeout-seconds";

/// The Prometheus routes, to merge into the agent's router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/probe", get(probe))
        .route("/metrics", get(metrics))
        .route("/-/reload", post(reload))
}

async fn probe(
    State(state): State<AppState>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let caller = match admit(&state, &headers, peer) {
        Ok(caller) => caller,
        Err(refusal) => return refusal.into_response(),
    };
    let ask = match ask_of(&state, &params, &headers) {
        Ok(ask) => ask,
        Err(error) => return (StatusCode::BAD_REQUEST, error.to_string()).into_response(),
    };
    let show_processes = peer.ip().is_loopback() || state.show_processes;
    let origin = crate::hub::audit::asked_here(caller.token.as_deref(), caller.peer);
    let answer = match probe::run(&state, &ask, show_processes, origin).await {
        Ok(answer) => answer,
        Err(error) => return refused(&error),
    };
    record(&state, &caller, &ask, &answer);
    let probed = Probed {
        report: &answer.report,
        module: &ask.module,
        elapsed: answer.elapsed,
        vantage: ask.from.as_deref(),
    };
    let text = probed.encode();
    if params.get("debug").is_some_and(|debug| debug == "true") {
        let body = debug_text(&ask, &answer, &text);
        return ([(CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response();
    }
    exposed(&headers, text)
}

/// The exposition in the format the scrape's `Accept` asks for.
fn exposed(headers: &HeaderMap, openmetrics: String) -> Response {
    let accept = headers.get(ACCEPT).and_then(|value| value.to_str().ok());
    let (content_type, text) = exposition::negotiate(accept, openmetrics);
    ([(CONTENT_TYPE, content_type)], text).into_response()
}

/// The scrape's parameters and the module they name.
fn ask_of(
    state: &AppState,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<ProbeAsk, ProbeError> {
    let target =
        params.get("target").filter(|t| !t.trim().is_empty()).ok_or(ProbeError::MissingTarget)?;
    let module_name = params.get("module").map_or(DEFAULT_MODULE, String::as_str).to_string();
    let module = state
        .exporter
        .module(&module_name)
        .map_err(|known| ProbeError::UnknownModule { name: module_name.clone(), known })?;
    let scrape_timeout = headers
        .get(SCRAPE_TIMEOUT_HEADER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<f64>().ok())
        .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok());
    let from = params.get("from").filter(|from| !from.is_empty()).cloned();
    Ok(ProbeAsk { target: target.trim().to_string(), module_name, module, from, scrape_timeout })
}

/// A probe the agent would not run: the policy's refusal is a `403`, a bad request a `400`.
fn refused(error: &ProbeError) -> Response {
    let status = if error.is_policy() { StatusCode::FORBIDDEN } else { StatusCode::BAD_REQUEST };
    (status, error.to_string()).into_response()
}

/// Counts the probe and writes its audit line.
fn record(state: &AppState, caller: &Caller, ask: &ProbeAsk, answer: &Answer) {
    let cause = answer.report.verdict.as_ref().map_or("-", |verdict| verdict.cause.as_str());
    let vantage = ask.from.as_deref().unwrap_or(whyrefused_shared::LOCAL_VANTAGE);
    state.exporter.metrics.check_done(cause, vantage, Via::Probe, answer.elapsed);
    info!(
        target: "whyrefused::audit",
        token = caller.token.as_deref().unwrap_or("-"),
        peer = %caller.peer,
        kind = "probe",
        module = ?ask.module_name,
        target = ?ask.target,
        vantage = ?vantage,
        result = cause,
        elapsed_ms = clock::millis(answer.elapsed),
        "request"
    );
}

/// `debug=true`: the verdict and its evidence in words, then the series, then the module, as
/// blackbox_exporter's debug page shows its logs, metrics and module.
fn debug_text(ask: &ProbeAsk, answer: &Answer, exposition: &str) -> String {
    let mut text = format!("Probe of {} with module {}\n", ask.target, ask.module_name);
    match &answer.report.verdict {
        Some(verdict) => {
            text += &format!("\n{} {}\n", verdict.cause.as_str(), verdict.summary);
            for suggestion in &verdict.suggestions {
                text += &format!("  -> {suggestion}\n");
            }
            text += "\nevidence\n";
            for evidence in &verdict.evidence {
                text += &format!("  {:<28} {}\n", evidence.probe, evidence.result);
            }
        }
        None => text += "\nno verdict: the probe ran out of time before it concluded\n",
    }
    for error in &answer.errors {
        text += &format!("vantage point: {error}\n");
    }
    text += &format!(
        "\nMetrics that would have been returned:\n{exposition}\nModule configuration:\n{:#?}\n",
        ask.module
    );
    text
}

async fn metrics(
    State(state): State<AppState>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    headers: HeaderMap,
) -> Response {
    if let Err(refusal) = admit(&state, &headers, peer) {
        return refusal.into_response();
    }
    exposed(&headers, state.exporter.metrics.encode(&state))
}

async fn reload(
    State(state): State<AppState>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    headers: HeaderMap,
) -> Response {
    if let Err(refusal) = admit(&state, &headers, peer) {
        return refusal.into_response();
    }
    match state.exporter.reload() {
        Ok(reloaded) => {
            let mut text = format!("reloaded: modules {}\n", reloaded.modules.join(", "));
            for skipped in &reloaded.skipped {
                text += &format!("skipped {skipped}\n");
            }
            text.into_response()
        }
        Err(error) => {
            warn!(%error, "POST /-/reload: the probe modules were not reloaded");
            (StatusCode::BAD_REQUEST, error.to_string()).into_response()
        }
    }
}
