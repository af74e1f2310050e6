//! A check through an HTTP proxy ([`ProxyFinding`]): which proxy variable the program follows
//! for the target, the proxy's own connect, and what it answered to `CONNECT` (or to the
//! request sent through it); and how curl, Python requests and Go each read the proxy variables
//! for this target, when they disagree. A proxy's user name and password never appear here.

use serde::{Deserialize, Serialize};

use crate::check::Cause;

/// What the proxy variables meant for a check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyFinding {
    /// The proxy the check went through (`http://127.0.0.1:3128`, never with its user name or
    /// password); `None` when the check connected directly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
    /// The variable that named the proxy (`HTTPS_PROXY`), or the one that excluded the target
    /// (`NO_PROXY`).
    pub variable: String,
    /// Whose reading of the variables the check followed (`curl`, `Python requests`, `Go`).
    pub client: String,
    /// What was sent to the proxy once connected (`CONNECT db:443`); `None` when the proxy
    /// could not be reached or the check went directly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// The verdict on the proxy's own address, when it could not be reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_cause: Option<Cause>,
    /// The proxy's status line (`HTTP/1.1 502 Bad Gateway`), made printable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_line: Option<String>,
    /// What went wrong after the proxy's connect opened (no answer, a close), if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How each client reads the variables for this target, listed when they disagree.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub readings: Vec<ProxyReading>,
}

/// One client's reading of the proxy variables for a target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyReading {
    /// The client (`curl`, `Python requests`, `Go`).
    pub client: String,
    /// Whether it would go through a proxy.
    pub proxied: bool,
    /// Why, in words (`NO_PROXY entry .example.com`, `HTTPS_PROXY`).
    pub why: String,
}

impl ProxyFinding {
    /// One line: where the check went and why.
    pub fn summary(&self) -> String {
        match &self.proxy {
            Some(proxy) => {
                format!("through {proxy} ({}, as {} reads it)", self.variable, self.client)
            }
            None => format!(
                "directly ({} excludes the target, as {} reads it)",
                self.variable, self.client
            ),
        }
    }

    /// One line saying how the clients disagree, when they do.
    pub fn disagreement(&self) -> Option<String> {
        if self.readings.is_empty() {
            return None;
        }
        let each: Vec<String> = self
            .readings
            .iter()
            .map(|r| {
                let way = if r.proxied { "proxy" } else { "direct" };
                format!("{}: {way} ({})", r.client, r.why)
            })
            .collect();
        Some(format!("the clients disagree: {}", each.join("; ")))
    }
}
