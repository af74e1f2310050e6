//! The agent's HTTP API as the page calls it: stored results (`/api/results`) and watches
//! (`/api/watches`), on the page's own origin, with `Authorization: Bearer` when the page holds
//! the agent's token. Every failure becomes an [`ApiError`] that says what to do.

use serde::Serialize;
use serde::de::DeserializeOwned;

use gloo_net::http::{Request, RequestBuilder, Response};

/// Why an API call gave nothing to show.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    /// 401: the agent wants a token the page does not have (or refused the one it has).
    Unauthorized,
    /// 404: nothing there, in the agent's own words ("this agent keeps no history", "no result
    /// … in this agent's history").
    NotFound(String),
    /// Any other refusal, in the agent's words, with its status.
    Refused(u16, String),
    /// The request never got an answer (the agent is down, the network dropped).
    Unreachable(String),
    /// The answer was not the document expected.
    Unreadable(String),
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::Unauthorized => f.write_str(
                "The agent needs its token to show this: give it above (a link never carries it).",
            ),
            ApiError::NotFound(message) => write!(f, "Not found: {message}"),
            ApiError::Refused(status, message) => {
                write!(f, "The agent refused ({status}): {message}")
            }
            ApiError::Unreachable(problem) => write!(f, "The agent did not answer: {problem}"),
            ApiError::Unreadable(problem) => {
                write!(f, "The agent's answer could not be read: {problem}")
            }
        }
    }
}

/// `GET path` as JSON.
pub async fn get<T: DeserializeOwned>(path: &str, token: Option<String>) -> Result<T, ApiError> {
    let response = send(authorized(Request::get(path), token).build()).await?;
    json(response).await
}

/// `POST path` with `body` as JSON (`Content-Type: application/json`), the answer as JSON.
pub async fn post<B: Serialize, T: DeserializeOwned>(
    path: &str,
    body: &B,
    token: Option<String>,
) -> Result<T, ApiError> {
    let request = authorized(Request::post(path), token).json(body);
    let response = send(request).await?;
    json(response).await
}

/// `DELETE path`, expecting no body.
pub async fn delete(path: &str, token: Option<String>) -> Result<(), ApiError> {
    let response = send(authorized(Request::delete(path), token).build()).await?;
    checked(response).await.map(drop)
}

fn authorized(request: RequestBuilder, token: Option<String>) -> RequestBuilder {
    match token {
        Some(token) => request.header("Authorization", &format!("Bearer {token}")),
        None => request,
    }
}

async fn send(request: Result<Request, gloo_net::Error>) -> Result<Response, ApiError> {
    let request = request.map_err(|error| ApiError::Unreachable(error.to_string()))?;
    request.send().await.map_err(|error| ApiError::Unreachable(error.to_string()))
}

/// The response if it succeeded, else the error its status and text say.
async fn checked(response: Response) -> Result<Response, ApiError> {
    if response.ok() {
        return Ok(response);
    }
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let text = text.trim().chars().take(300).collect::<String>();
    Err(match status {
        401 => ApiError::Unauthorized,
        404 => ApiError::NotFound(text),
        _ => ApiError::Refused(status, text),
    })
}

async fn json<T: DeserializeOwned>(response: Response) -> Result<T, ApiError> {
    let response = checked(response).await?;
    response.json::<T>().await.map_err(|error| ApiError::Unreadable(error.to_string()))
}

/// A query string's value, percent-encoded.
pub fn encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
