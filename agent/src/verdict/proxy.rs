//! The verdict of a check that went the program's way through a proxy: the proxy's own
//! address unreachable (`proxy_unreachable`, naming the proxy's own cause), or its answer to
//! `CONNECT` (or to the request sent through it): 407 `proxy_auth_required`, 403
//! `proxy_denied`, 502/503/504 `proxy_upstream_failed`, a tunnel `reachable`. A SOCKS5 proxy's
//! reply arrives as the HTTP status it amounts to, its own words in the status line. And the note on a
//! check that went directly because `NO_PROXY` excluded the target, or on which the clients
//! disagree. Decided from values; nothing is sent here.

use whyrefused_shared::{Cause, Evidence, ProxyFinding, ProxyReading, Verdict};

use crate::probe::proxy::{ProxyAnswer, ProxyRequest};
use crate::proxy::{Reading, Routing};

/// The proxy a check went through, as the verdict names it.
pub struct Through<'a> {
    /// The target as `host:port`.
    pub target: String,
    /// The followed client's reading (its variable and proxy).
    pub routing: &'a Routing,
    /// What was sent to the proxy.
    pub request: &'a ProxyRequest,
    /// The verdict on the proxy's own address.
    pub proxy_verdict: &'a Verdict,
    /// What the proxy answered, when its address could be reached.
    pub answer: Option<&'a ProxyAnswer>,
}

impl Through<'_> {
    /// `the proxy http://127.0.0.1:3128 (HTTPS_PROXY)`.
    fn proxy(&self) -> String {
        match &self.routing.reading {
            Reading::Proxied { variable, proxy } => format!("the proxy {proxy} ({variable})"),
            _ => "the proxy".to_string(),
        }
    }

    fn variable(&self) -> &'static str {
        match &self.routing.reading {
            Reading::Proxied { variable, .. } => variable,
            _ => "the proxy variable",
        }
    }

    /// The proxy's scheme (`http`, `socks5h` …).
    fn scheme(&self) -> &str {
        match &self.routing.reading {
            Reading::Proxied { proxy, .. } => &proxy.scheme,
            _ => "http",
        }
    }

    fn has_credentials(&self) -> bool {
        matches!(&self.routing.reading, Reading::Proxied { proxy, .. } if proxy.has_credentials())
    }
}

/// The finding of a check through a proxy.
pub fn finding(through: &Through<'_>) -> ProxyFinding {
    let (variable, proxy) = match &through.routing.reading {
        Reading::Proxied { variable, proxy } => (variable.to_string(), Some(proxy.to_string())),
        other => (other.why(), None),
    };
    let reached = through.answer.is_some();
    ProxyFinding {
        proxy,
        variable,
        client: through.routing.client.label().to_string(),
        request: reached.then(|| through.request.line()),
        proxy_cause: (!reached).then_some(through.proxy_verdict.cause),
        status_line: through.answer.and_then(|a| a.status_line.clone()),
        error: through.answer.and_then(|a| a.error.clone()),
        readings: readings_when_disagreeing(through.routing),
    }
}

/// The finding of a check that went directly although proxy variables are set: the `NO_PROXY`
/// entry that excluded the target, or the clients' disagreement. `None` when there is nothing
/// to say (no variable applies, for every client alike).
pub fn direct_finding(routing: &Routing) -> Option<ProxyFinding> {
    let excluded = matches!(routing.reading, Reading::Excluded { .. });
    if !excluded && !routing.disagree() {
        return None;
    }
    Some(ProxyFinding {
        proxy: None,
        variable: routing.reading.why(),
        client: routing.client.label().to_string(),
        request: None,
        proxy_cause: None,
        status_line: None,
        error: None,
        readings: readings_when_disagreeing(routing),
    })
}

fn readings_when_disagreeing(routing: &Routing) -> Vec<ProxyReading> {
    if !routing.disagree() {
        return Vec::new();
    }
    routing
        .readings
        .iter()
        .map(|(client, reading)| ProxyReading {
            client: client.label().to_string(),
            proxied: reading.is_proxied(),
            why: reading.why(),
        })
        .collect()
}

/// Adds to a direct check's verdict why it went directly, and how the clients disagree.
pub fn annotate_direct(verdict: &mut Verdict, finding: &ProxyFinding) {
    verdict.evidence.push(evidence(
        "proxy",
        format!("checked {}: {}", finding.summary(), "the program connects directly too"),
    ));
    if let Some(disagreement) = finding.disagreement() {
        verdict.evidence.push(evidence("proxy variables", disagreement));
        verdict.suggestions.push(
            "curl, Python requests and Go read the proxy variables differently for this target \
             (see the evidence): check it as the program's library reads them, or make NO_PROXY \
             unambiguous (a plain host name, no leading dot, wildcard or port)."
                .into(),
        );
    }
}

fn evidence(probe: &str, result: String) -> Evidence {
    Evidence { probe: probe.into(), result, elapsed_us: None }
}

/// The verdict of a check through a proxy.
pub fn conclude(through: &Through<'_>) -> Verdict {
    let mut evidence_list = vec![evidence(
        "proxy",
        format!(
            "{} goes through {}",
            through.routing.client.label(),
            through.proxy().trim_start_matches("the proxy ")
        ),
    )];
    if through.routing.disagree() {
        let finding = finding(through);
        if let Some(line) = finding.disagreement() {
            evidence_list.push(evidence("proxy variables", line));
        }
    }
    let Some(answer) = through.answer else {
        return unreachable(through, evidence_list);
    };
    let said = answer.status_line.clone().or_else(|| answer.error.clone()).unwrap_or_default();
    evidence_list.push(Evidence {
        probe: through.request.line(),
        result: said.clone(),
        elapsed_us: Some(answer.elapsed_us),
    });
    if let Some(authenticate) = &answer.authenticate {
        evidence_list.push(evidence("proxy-authenticate", authenticate.clone()));
    }
    let (cause, summary, suggestions) = match (answer.status, &answer.error) {
        (_, Some(error)) => (
            Cause::ProxyUnreachable,
            format!(
                "The program goes through {}, which accepted the connection but {error}.",
                through.proxy()
            ),
            vec![
                "Check the proxy itself (its logs, its port): it is not answering as a proxy."
                    .into(),
            ],
        ),
        (Some(status), None) => by_status(through, status, &said),
        (None, None) => (Cause::ProxyUnreachable, "The proxy gave no answer.".into(), vec![]),
    };
    Verdict {
        cause,
        summary: capitalised(summary, &through.target),
        suggestions,
        evidence: evidence_list,
        pattern: None,
    }
}

/// The sentence with its first letter in upper case, unless it starts with the target (a host
/// name is written as it is: `localhost:8080 is reachable…`).
fn capitalised(sentence: String, target: &str) -> String {
    if sentence.starts_with(target) {
        return sentence;
    }
    let mut chars = sentence.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => sentence,
    }
}

/// The proxy's own address could not be reached: its own verdict, named.
fn unreachable(through: &Through<'_>, mut evidence_list: Vec<Evidence>) -> Verdict {
    let own = through.proxy_verdict;
    evidence_list.extend(own.evidence.iter().cloned());
    let mut suggestions = own.suggestions.clone();
    suggestions.push(format!(
        "If {} should be reached without the proxy, add its host to NO_PROXY (or unset {}); \
         `whyrefused check --no-proxy` checks it directly.",
        through.target,
        through.variable()
    ));
    Verdict {
        cause: Cause::ProxyUnreachable,
        summary: format!(
            "The program connects to {}, not to {}, and the proxy is not reachable ({}): {}",
            through.proxy(),
            through.target,
            own.cause.as_str(),
            own.summary
        ),
        suggestions,
        evidence: evidence_list,
        pattern: None,
    }
}

fn by_status(through: &Through<'_>, status: u16, said: &str) -> (Cause, String, Vec<String>) {
    let (proxy, target) = (through.proxy(), &through.target);
    let tunnel = through.request.is_tunnel();
    match status {
        407 => {
            let why = match through.has_credentials() {
                true => format!("it refused the user name and password in {}", through.variable()),
                false => format!("{} carries none", through.variable()),
            };
            (
                Cause::ProxyAuthRequired,
                format!("{proxy} wants credentials (\"{said}\"), and {why}."),
                vec![format!(
                    "Give the program the proxy's credentials the way it reads them \
                     ({}={}://USER:PASSWORD@host:port, percent-encoding special characters); \
                     whyrefused sends them but never shows them.",
                    through.variable(),
                    through.scheme()
                )],
            )
        }
        403 => (
            Cause::ProxyDenied,
            format!(
                "{proxy} refuses {} (\"{said}\"): its rules do not let this destination through.",
                through.request.line()
            ),
            vec![format!(
                "Ask the proxy's administrators to allow {target} (for CONNECT, proxies often \
                 allow port 443 only), or add its host to NO_PROXY if it is reachable directly."
            )],
        ),
        502..=504 => (
            Cause::ProxyUpstreamFailed,
            format!(
                "{proxy} is reachable, but it could not reach {target} itself: it answered \
                 \"{said}\". The failure is between the proxy and the target."
            ),
            vec![
                format!(
                    "Check {target} from the proxy's host (run whyrefused there, or join it to a \
                     hub and use --via): its name must resolve and its port answer from there."
                ),
                "The proxy's own log names the error it met (refused, timed out, no such name)."
                    .into(),
            ],
        ),
        200..=299 if tunnel => (
            Cause::Reachable,
            format!("{target} is reachable through {proxy}: it opened a tunnel (\"{said}\")."),
            vec![],
        ),
        _ if tunnel => (
            Cause::UnexpectedStatus,
            format!("{proxy} answered \"{said}\" to {}, not a tunnel.", through.request.line()),
            vec!["The proxy's documentation or log says what this status means.".into()],
        ),
        401 => (
            Cause::AccessDenied,
            format!("{target} answered through {proxy}, wanting credentials (\"{said}\")."),
            vec![],
        ),
        500..=599 => (
            Cause::ServerError,
            format!("{target} answered through {proxy} with an error (\"{said}\")."),
            vec![],
        ),
        _ => (Cause::Reachable, format!("{target} answered through {proxy} (\"{said}\")."), vec![]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::{Client, ProxyEnv, ProxySettings};
    use crate::target::Target;

    fn routing(proxy: &str) -> Routing {
        let env = ProxyEnv::from_pairs([("HTTPS_PROXY".to_string(), proxy.to_string())]);
        let settings = ProxySettings { env, client: Client::Curl };
        crate::proxy::route(&settings, &Target::parse("https://db.internal", None).unwrap())
            .unwrap()
    }

    fn ok_verdict() -> Verdict {
        Verdict {
            cause: Cause::Reachable,
            summary: "open".into(),
            suggestions: vec![],
            evidence: vec![],
            pattern: None,
        }
    }

    fn answered(proxy: &str, status_line: &str) -> Verdict {
        let routing = routing(proxy);
        let request = ProxyRequest::Connect { authority: "db.internal:443".into() };
        let status = status_line.split_whitespace().nth(1).and_then(|s| s.parse().ok());
        let answer =
            ProxyAnswer { status, status_line: Some(status_line.into()), ..ProxyAnswer::default() };
        let through = Through {
            target: "db.internal:443".into(),
            routing: &routing,
            request: &request,
            proxy_verdict: &ok_verdict(),
            answer: Some(&answer),
        };
        conclude(&through)
    }

    #[test]
    fn each_proxy_status_has_its_cause() {
        let proxy = "http://127.0.0.1:3128";
        let cases = [
            ("HTTP/1.1 407 Proxy Authentication Required", Cause::ProxyAuthRequired),
            ("HTTP/1.1 403 Forbidden", Cause::ProxyDenied),
            ("HTTP/1.1 502 Bad Gateway", Cause::ProxyUpstreamFailed),
            ("HTTP/1.1 504 Gateway Timeout", Cause::ProxyUpstreamFailed),
            ("HTTP/1.1 200 Connection established", Cause::Reachable),
            ("HTTP/1.1 405 Method Not Allowed", Cause::UnexpectedStatus),
        ];
        for (line, cause) in cases {
            let verdict = answered(proxy, line);
            assert_eq!(verdict.cause, cause, "{line}");
            assert!(verdict.summary.contains("http://127.0.0.1:3128 (HTTPS_PROXY)"), "{line}");
        }
        let upstream = answered(proxy, "HTTP/1.1 502 Bad Gateway");
        assert!(upstream.summary.contains("\"HTTP/1.1 502 Bad Gateway\""), "{}", upstream.summary);
    }

    #[test]
    fn credentials_are_used_never_shown() {
        let verdict = answered(
            "http://alice:hunter2@127.0.0.1:3128",
            "HTTP/1.1 407 Proxy Authentication Required",
        );
        let text = serde_json::to_string(&verdict).unwrap();
        assert!(!text.contains("hunter2") && !text.contains("alice"), "{text}");
        assert!(verdict.summary.contains("refused the user name and password in HTTPS_PROXY"));
        let bare = answered("http://127.0.0.1:3128", "HTTP/1.1 407 Proxy Authentication Required");
        assert!(bare.summary.contains("HTTPS_PROXY carries none"), "{}", bare.summary);
    }

    #[test]
    fn an_unreachable_proxy_names_its_own_cause() {
        let routing = routing("http://127.0.0.1:3128");
        let request = ProxyRequest::Connect { authority: "db.internal:443".into() };
        let closed = Verdict {
            cause: Cause::PortClosed,
            summary: "Nothing listens on port 3128 of 127.0.0.1.".into(),
            ..ok_verdict()
        };
        let through = Through {
            target: "db.internal:443".into(),
            routing: &routing,
            request: &request,
            proxy_verdict: &closed,
            answer: None,
        };
        let verdict = conclude(&through);
        assert_eq!(verdict.cause, Cause::ProxyUnreachable);
        assert!(verdict.summary.contains("not reachable (port_closed): Nothing listens"));
        assert!(verdict.suggestions.last().unwrap().contains("--no-proxy"));
        let found = finding(&through);
        assert_eq!(found.proxy_cause, Some(Cause::PortClosed));
        assert_eq!(found.request, None);
    }
}
