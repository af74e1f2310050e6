//! The webhook a watch POSTs on each change: a JSON body with the old and new cause, the
//! verdict's summary and evidence, the stored result's id, and a `text` field that Slack- and
//! Mattermost-compatible incoming webhooks show as is.
//!
//! The webhook's address is held to the target policy like any connection the agent makes
//! (every resolved address is checked before a packet is sent), each attempt has a deadline,
//! and a failed delivery is tried again a few times with a growing pause.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use whyrefused_shared::{CheckReport, Evidence};

use super::Change;
use crate::policy::TargetPolicy;

/// How many times a delivery is attempted in all.
pub const ATTEMPTS: u32 = 3;

/// The deadline of one attempt: connect, send, and the status line back.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// The pause before the second attempt; it doubles after each.
pub const FIRST_PAUSE: Duration = Duration::from_millis(500);

/// The most bytes of the receiver's answer read (its status line is all that matters).
const MAX_ANSWER_BYTES: u64 = 16 * 1024;

/// A checked webhook URL: `http://` or `https://`, a host, a port, a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl {
    /// Whether to speak TLS.
    tls: bool,
    /// The host, without brackets.
    host: String,
    port: u16,
    /// The path and query, from `/`.
    path: String,
}

impl std::fmt::Display for WebhookUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "https" } else { "http" };
        match self.host.contains(':') {
            true => write!(f, "{scheme}://[{}]:{}{}", self.host, self.port, self.path),
            false => write!(f, "{scheme}://{}:{}{}", self.host, self.port, self.path),
        }
    }
}

impl WebhookUrl {
    /// Its scheme and host only, as every listing and log shows it: the path and query of a
    /// chat webhook are often its secret.
    pub fn shown(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        match self.host.contains(':') {
            true => format!("{scheme}://[{}]", self.host),
            false => format!("{scheme}://{}", self.host),
        }
    }

    /// `text` as listings show a webhook URL: its scheme and host only.
    pub fn shown_text(text: &str) -> String {
        WebhookUrl::parse(text).map_or_else(|_| "(not a webhook URL)".into(), |url| url.shown())
    }

    /// The host, without brackets, and the port.
    pub fn host_port(&self) -> (&str, u16) {
        (&self.host, self.port)
    }

    /// Checks a webhook URL the user gave.
    pub fn parse(text: &str) -> Result<WebhookUrl, String> {
        let invalid = || {
            let shown: String = text.chars().take(64).flat_map(char::escape_default).collect();
            format!("'{shown}' is not a webhook URL: write http(s)://HOST[:PORT]/PATH")
        };
        let uri: axum::http::Uri = text.parse().map_err(|_| invalid())?;
        let (tls, default_port) = match uri.scheme_str() {
            Some("https") => (true, 443),
            Some("http") => (false, 80),
            _ => return Err(invalid()),
        };
        let host = uri.host().ok_or_else(invalid)?.trim_start_matches('[').trim_end_matches(']');
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let path = if path.is_empty() { "/" } else { path };
        let port = uri.port_u16().unwrap_or(default_port);
        Ok(WebhookUrl { tls, host: host.to_string(), port, path: path.to_string() })
    }
}

/// Why a delivery failed.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("the webhook {url}: {reason}")]
    Denied { url: String, reason: String },
    #[error("the webhook {url} answered {status}")]
    Status { url: String, status: u16 },
    #[error("the webhook {url}: {detail}")]
    Failed { url: String, detail: String },
}

impl WebhookError {
    /// Whether trying again may help: not for a policy denial or a refusal of the request
    /// itself (a 4xx other than 408 and 429).
    fn is_worth_retrying(&self) -> bool {
        match self {
            WebhookError::Denied { .. } => false,
            WebhookError::Status { status, .. } => {
                !(400..500).contains(status) || matches!(status, 408 | 429)
            }
            WebhookError::Failed { .. } => true,
        }
    }
}

/// The body POSTed on a change.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeBody {
    /// One line for chat webhooks.
    pub text: String,
    /// The target as the user gave it.
    pub target: String,
    /// Where the watch runs from.
    pub vantage: String,
    /// The round that saw the change and when it started.
    pub round: u64,
    pub at: String,
    /// The cause before and after.
    pub old_cause: String,
    pub new_cause: String,
    /// The new verdict's sentence.
    pub summary: String,
    /// The evidence behind the new verdict.
    pub evidence: Vec<Evidence>,
    /// The stored result of the diagnosed round, when it was stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// The link that opens it on the agent's page (`serve --public-url` + `/#/r/ID`), when the
    /// agent knows its public URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

impl ChangeBody {
    /// The body for `change` of a watch of `target` at `vantage`, whose diagnosed round
    /// reported `report`.
    pub fn new(target: &str, vantage: &str, change: &Change, report: &CheckReport) -> ChangeBody {
        let summary = report.verdict.as_ref().map(|v| v.summary.clone()).unwrap_or_default();
        let (old_cause, new_cause) = (change.from.as_str(), change.to.as_str());
        let text = format!(
            "whyrefused: {target} went from {old_cause} to {new_cause} at {} (from {vantage}): {summary}",
            change.at
        );
        ChangeBody {
            text,
            target: target.to_string(),
            vantage: vantage.to_string(),
            round: change.round,
            at: change.at.clone(),
            old_cause: old_cause.into(),
            new_cause: new_cause.into(),
            summary,
            evidence: report.verdict.as_ref().map(|v| v.evidence.clone()).unwrap_or_default(),
            result: change.result.clone(),
            link: None,
        }
    }

    /// The same body, linking its result under `public_url` (`URL/#/r/ID`), said in `text`.
    pub fn linked(mut self, public_url: Option<&str>) -> ChangeBody {
        if let (Some(base), Some(id)) = (public_url, &self.result) {
            let link = format!("{}/#/r/{id}", base.trim_end_matches('/'));
            self.text = format!("{} {link}", self.text);
            self.link = Some(link);
        }
        self
    }
}

/// Where changes are POSTed, under a target policy.
#[derive(Debug, Clone)]
pub struct Webhook {
    url: WebhookUrl,
    policy: Arc<TargetPolicy>,
}

impl Webhook {
    /// A webhook at `url` whose connections `policy` rules.
    pub fn new(url: WebhookUrl, policy: Arc<TargetPolicy>) -> Webhook {
        Webhook { url, policy }
    }

    /// POSTs `body`, trying again after a failure worth retrying; the status of the delivery
    /// that succeeded, or the last failure.
    pub async fn deliver(&self, body: &ChangeBody) -> Result<u16, WebhookError> {
        let json = serde_json::to_vec(body).unwrap_or_default();
        let mut pause = FIRST_PAUSE;
        let mut attempt = 1;
        loop {
            let tried = tokio::time::timeout(ATTEMPT_TIMEOUT, self.post(&json)).await;
            let error = match tried {
                Ok(Ok(status)) => return Ok(status),
                Ok(Err(error)) => error,
                Err(_) => self.failed(format!("no answer within {} s", ATTEMPT_TIMEOUT.as_secs())),
            };
            if attempt >= ATTEMPTS || !error.is_worth_retrying() {
                return Err(error);
            }
            tracing::debug!(%error, attempt, "webhook delivery failed; trying again");
            tokio::time::sleep(pause).await;
            pause *= 2;
            attempt += 1;
        }
    }

    fn failed(&self, detail: String) -> WebhookError {
        WebhookError::Failed { url: self.url.shown(), detail }
    }

    /// One attempt: resolve, check every address against the policy, connect to the first
    /// that answers, POST, read the status.
    async fn post(&self, json: &[u8]) -> Result<u16, WebhookError> {
        let url = &self.url;
        let resolved: Vec<SocketAddr> = tokio::net::lookup_host((url.host.as_str(), url.port))
            .await
            .map_err(|error| self.failed(format!("cannot resolve {}: {error}", url.host)))?
            .collect();
        let mut denial = None;
        let allowed: Vec<SocketAddr> = resolved
            .into_iter()
            .filter(|address| match self.policy.check(*address) {
                Ok(()) => true,
                Err(denied) => {
                    denial = Some(denied.to_string());
                    false
                }
            })
            .collect();
        if allowed.is_empty() {
            let reason = denial.unwrap_or_else(|| format!("{} has no address", url.host));
            return Err(WebhookError::Denied { url: url.shown(), reason });
        }
        let tcp = TcpStream::connect(&allowed[..])
            .await
            .map_err(|error| self.failed(format!("cannot connect: {error}")))?;
        let request = self.request(json);
        let status = match url.tls {
            false => exchange(tcp, &request).await,
            true => {
                let name = ServerName::try_from(url.host.clone())
                    .map_err(|_| self.failed("not a valid TLS server name".into()))?;
                let tls = tokio_rustls::TlsConnector::from(tls_config())
                    .connect(name, tcp)
                    .await
                    .map_err(|error| self.failed(format!("TLS: {error}")))?;
                exchange(tls, &request).await
            }
        };
        match status.map_err(|error| self.failed(error.to_string()))? {
            status @ 200..=299 => Ok(status),
            status => Err(WebhookError::Status { url: url.shown(), status }),
        }
    }

    /// The whole HTTP/1.1 request.
    fn request(&self, json: &[u8]) -> Vec<u8> {
        let url = &self.url;
        let host = match url.host.contains(':') {
            true => format!("[{}]:{}", url.host, url.port),
            false => format!("{}:{}", url.host, url.port),
        };
        let mut request = format!(
            "POST {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: whyrefused/{}\r\nContent-Type: \
             application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            url.path,
            env!("CARGO_PKG_VERSION"),
            json.len()
        )
        .into_bytes();
        request.extend_from_slice(json);
        request
    }
}

/// Sends the request and reads the answer's status code.
async fn exchange(
    mut stream: impl AsyncRead + AsyncWrite + Unpin,
    request: &[u8],
) -> std::io::Result<u16> {
    stream.write_all(request).await?;
    let mut answer = Vec::new();
    let mut limited = (&mut stream).take(MAX_ANSWER_BYTES);
    let mut buffer = [0u8; 1024];
    while !answer.windows(2).any(|w| w == b"\r\n") {
        let read = limited.read(&mut buffer).await?;
        if read == 0 {
            break;
        }
        answer.extend_from_slice(&buffer[..read]);
    }
    let line = String::from_utf8_lossy(&answer);
    line.split(' ')
        .nth(1)
        .and_then(|code| code.trim().parse().ok())
        .ok_or_else(|| std::io::Error::other("the answer is not HTTP"))
}

/// This host's trusted authorities, for an `https://` webhook.
fn tls_config() -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use whyrefused_shared::Cause;

    #[test]
    fn webhook_urls_are_http_or_https_with_a_path() {
        let url = WebhookUrl::parse("http://127.0.0.1:9000/hooks/x?a=1").unwrap();
        assert_eq!(url.to_string(), "http://127.0.0.1:9000/hooks/x?a=1");
        assert_eq!(url.shown(), "http://127.0.0.1", "listings and logs: scheme and host");
        assert_eq!(WebhookUrl::shown_text("https://[::1]:8443/T0/B1/secret"), "https://[::1]");
        assert_eq!(WebhookUrl::parse("https://hooks.example").unwrap().port, 443);
        assert!(WebhookUrl::parse("ftp://x/").is_err());
        assert!(WebhookUrl::parse("not a url").is_err());
    }

    #[tokio::test]
    async fn a_webhook_the_policy_denies_is_not_contacted_nor_retried() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url =
            WebhookUrl::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        let webhook = Webhook::new(url, Arc::new(TargetPolicy::with_defaults()));
        let change = Change {
            round: 2,
            at: "t".into(),
            from: Cause::PortClosed,
            to: Cause::Reachable,
            result: None,
        };
        let body = ChangeBody::new("db:5432", "local", &change, &CheckReport::default());
        let started = std::time::Instant::now();
        let error = webhook.deliver(&body).await.unwrap_err();
        assert!(matches!(error, WebhookError::Denied { .. }), "{error}");
        assert!(started.elapsed() < FIRST_PAUSE, "no retry");
        listener.set_nonblocking(true).unwrap();
        assert!(listener.accept().is_err(), "nothing connected");
    }

    #[test]
    fn the_body_says_the_change_in_one_line_for_chat() {
        let change = Change {
            round: 7,
            at: "2026-12-02T09:00:00Z".into(),
            from: Cause::Reachable,
            to: Cause::PortClosed,
            result: Some("abc".into()),
        };
        let body = ChangeBody::new("db:5432", "local", &change, &CheckReport::default());
        assert!(
            body.text
                .contains("db:5432 went from reachable to port_closed at 2026-12-02T09:00:00Z"),
            "{}",
            body.text
        );
        let linked = body.clone().linked(Some("https://agent.example:7070/"));
        assert_eq!(linked.link.as_deref(), Some("https://agent.example:7070/#/r/abc"));
        assert!(linked.text.ends_with(" https://agent.example:7070/#/r/abc"), "{}", linked.text);
        let json = serde_json::to_value(&body).unwrap();
        assert_eq!(
            (json["old_cause"].as_str(), json["new_cause"].as_str()),
            (Some("reachable"), Some("port_closed"))
        );
    }
}
