//! The service's own part of a verdict, once the network path and the connection worked: what
//! its HTTP status says (5xx `server_error`, 401/403 `access_denied`, a status outside the
//! expected ones `unexpected_status`, 404/405 and other 4xx a note), a response cut short, a TLS
//! alert's fix, the process that answered when it runs on this host, and retried rounds in
//! which only the service failed.

use std::net::IpAddr;

use whyrefused_shared::{
    Cause, Evidence, HttpPart, HttpReport, Listener, LocalListeners, Round, TlsReport,
};

use super::evidence;
use crate::probe::listeners;

/// What one answer says: the cause, the sentence, what to try, and notes for the evidence.
pub(super) struct Judged {
    pub cause: Cause,
    pub summary: String,
    pub suggestions: Vec<String>,
    pub notes: Vec<Evidence>,
}

impl Judged {
    fn new(cause: Cause, summary: String) -> Judged {
        Judged { cause, summary, suggestions: Vec::new(), notes: Vec::new() }
    }

    fn suggest(mut self, suggestion: impl Into<String>) -> Judged {
        self.suggestions.push(suggestion.into());
        self
    }

    fn note(mut self, note: impl Into<String>) -> Judged {
        self.notes.push(evidence("note", note, None));
        self
    }
}

/// The causes that mean the network path worked and the service itself failed.
pub(super) fn is_service_failure(cause: Cause) -> bool {
    matches!(
        cause,
        Cause::ServerError
            | Cause::AccessDenied
            | Cause::UnexpectedStatus
            | Cause::HttpError
            | Cause::ServerClosed
    )
}

/// What an answered request's status says about `endpoint`, asked for `path`.
pub(super) fn judge_status(http: &HttpReport, endpoint: &str, path: &str) -> Judged {
    let status = http.status.unwrap_or_default();
    let answered = answered(http);
    if !http.expected_status.is_empty() {
        return judge_expected(http, endpoint, &answered);
    }
    match status {
        500..=599 => server_error(http, endpoint, &answered),
        401 | 403 => access_denied(http, endpoint, &answered),
        404 => Judged::new(
            Cause::Reachable,
            format!(
                "{endpoint} accepts connections and the service answered {answered}: it works, \
                 but {path} does not exist on it."
            ),
        )
        .note(format!(
            "the path {path} is not on this server: the network and the service are fine"
        ))
        .suggest(format!("Check the path in the URL: {path} is not found on this server.")),
        405 => Judged::new(
            Cause::Reachable,
            format!(
                "{endpoint} accepts connections and the service answered {answered}: it works, \
                 but does not take GET on {path}."
            ),
        )
        .note("the method is wrong for this path: the network and the service are fine")
        .suggest("Check the method: this path takes another one (its Allow header lists them)."),
        400..=499 => Judged::new(
            Cause::Reachable,
            format!(
                "{endpoint} accepts connections and the service answered {answered}: it works, \
                 and refused this request."
            ),
        )
        .note(format!("{answered}: the service rejected the request itself")),
        300..=399 => redirect(http, endpoint, &answered),
        _ => Judged::new(
            Cause::Reachable,
            format!("{endpoint} accepts connections and the service answered {answered}."),
        ),
    }
}

/// `503 Service Unavailable`.
fn answered(http: &HttpReport) -> String {
    let status = http.status.unwrap_or_default();
    format!("{status} {}", http.reason.as_deref().unwrap_or_default()).trim_end().to_string()
}

fn judge_expected(http: &HttpReport, endpoint: &str, answered: &str) -> Judged {
    let status = http.status.unwrap_or_default();
    let expected: Vec<String> = http.expected_status.iter().map(u16::to_string).collect();
    if http.expected_status.contains(&status) {
        return Judged::new(
            Cause::Reachable,
            format!(
                "{endpoint} accepts connections and the service answered {answered}, as expected."
            ),
        );
    }
    let mut judged = Judged::new(
        Cause::UnexpectedStatus,
        format!(
            "The network path and the connection to {endpoint} are fine; the service answered \
             {answered}, not {}{}.",
            expected.join(" or "),
            server_named(http)
        ),
    );
    let class = match status {
        500..=599 => server_error(http, endpoint, answered).suggestions,
        401 | 403 => access_denied(http, endpoint, answered).suggestions,
        300..=399 => redirect(http, endpoint, answered).suggestions,
        _ => Vec::new(),
    };
    judged.suggestions.extend(class);
    judged.suggest(format!(
        "If {answered} is right for this service, add {status} to the expected statuses."
    ))
}

/// ` (Server: nginx/1.22)`, or nothing.
fn server_named(http: &HttpReport) -> String {
    http.header("server").map(|server| format!(" (Server: {server})")).unwrap_or_default()
}

fn server_error(http: &HttpReport, endpoint: &str, answered: &str) -> Judged {
    let status = http.status.unwrap_or_default();
    let first_byte = http
        .first_byte_us
        .map(|us| format!(", first byte after {:.3} ms", us as f64 / 1000.0))
        .unwrap_or_default();
    let mut server = server_named(http);
    if !first_byte.is_empty() {
        server = match server.strip_suffix(')') {
            Some(open) => format!("{open}{first_byte})"),
            None => format!(" ({})", first_byte.trim_start_matches(", ")),
        };
    }
    let said = http
        .body_first_line
        .as_ref()
        .map(|line| format!(" It says: \"{line}\"."))
        .unwrap_or_default();
    let summary = format!(
        "The network path and the connection to {endpoint} are fine; the service answered \
         {answered}{server}: look at its logs.{said}"
    );
    let proxy = http.header("server").unwrap_or("the proxy");
    let advice = match status {
        502 => format!(
            "{proxy} answered for a backend it could not use (502: the backend refused, crashed \
             or sent garbage): check the upstream service and {proxy}'s error log."
        ),
        504 => format!(
            "{proxy} waited for a backend that did not answer in time (504): check the upstream \
             service's health and the proxy's timeouts."
        ),
        503 => format!(
            "The service says it is unavailable: overloaded, starting up, in maintenance, or with \
             no healthy backend{}. Check its health and logs.",
            http.header("retry-after")
                .map(|after| format!(" (Retry-After: {after})"))
                .unwrap_or_default()
        ),
        500 => "The application failed on this request: its error log (a stack trace) at this \
                time says why."
            .to_string(),
        _ => "Read the service's error log for this request.".to_string(),
    };
    Judged::new(Cause::ServerError, summary).suggest(advice)
}

fn access_denied(http: &HttpReport, endpoint: &str, answered: &str) -> Judged {
    let status = http.status.unwrap_or_default();
    let challenge = http.header("www-authenticate");
    let scheme = challenge.and_then(|c| c.split_whitespace().next()).unwrap_or_default();
    let wants = match (status, scheme) {
        (401, "") => "it wants credentials, and did not say which (no WWW-Authenticate)".into(),
        (401, scheme) => format!("it wants credentials ({scheme} authentication)"),
        (_, "") => "it refuses this client".to_string(),
        (_, scheme) => format!("it refuses this client ({scheme} authentication)"),
    };
    let summary = format!(
        "The network path and the connection to {endpoint} are fine; the service answered \
         {answered}: {wants}."
    );
    let advice = match (status, scheme.to_ascii_lowercase().as_str()) {
        (401, "basic") => {
            "Send a user name and password (curl -u USER URL), or check the ones the client is \
             configured with."
                .to_string()
        }
        (401, "bearer") => {
            "Send a valid token (Authorization: Bearer …): it is missing, expired or for another \
             audience."
                .to_string()
        }
        (401, "negotiate") => "The service wants Kerberos (SPNEGO): get a ticket (kinit) and use \
                               a client that sends it."
            .to_string(),
        (401, "") => {
            "Send the credentials the service expects (its documentation says which).".to_string()
        }
        (401, scheme) => format!("Send the credentials the {scheme} scheme asks for."),
        _ => "Check the service's access rules for this client: an IP allow list, a WAF, the \
              credentials' permissions, or the file permissions of the path."
            .to_string(),
    };
    Judged::new(Cause::AccessDenied, summary).suggest(advice)
}

fn redirect(http: &HttpReport, endpoint: &str, answered: &str) -> Judged {
    let location = http.header("location");
    let summary = match (location, http.redirects.is_empty()) {
        (Some(location), _) => format!(
            "{endpoint} accepts connections and the service answered {answered}, redirecting \
             to {location} (not followed)."
        ),
        (None, _) => format!("{endpoint} accepts connections and the service answered {answered}."),
    };
    let judged = Judged::new(Cause::Reachable, summary);
    match location {
        Some(location) => judged.suggest(format!(
            "The service redirects to {location}: check that (or use --follow to follow it)."
        )),
        None => judged,
    }
}

/// The summary's ending after followed redirects: ` after 2 redirects (→ /a → /b)`.
pub(super) fn redirects_followed(http: &HttpReport) -> Option<String> {
    let hops: Vec<String> =
        http.redirects.iter().map(|hop| format!("→ {}", hop.location)).collect();
    match hops.len() {
        0 => None,
        1 => Some(format!("after 1 redirect ({})", hops[0])),
        n => Some(format!("after {n} redirects ({})", hops.join(" "))),
    }
}

/// A failed exchange: a response cut short, or something that is not HTTP.
pub(super) fn judge_failure(http: &HttpReport, endpoint: &str) -> Judged {
    let why = http.detail.as_deref().unwrap_or("no valid response");
    let Some(closed) = http.closed else {
        return Judged::new(
            Cause::HttpError,
            format!("{endpoint} accepts connections, but the HTTP request failed: {why}."),
        )
        .suggest(
            "Check that this port serves HTTP (not another protocol, or TLS: try https://), and \
             the server's logs for the request.",
        );
    };
    let status = match (closed.during, http.status_line()) {
        (HttpPart::Body, Some(line)) => format!(" (it had begun {line})"),
        _ => String::new(),
    };
    Judged::new(
        Cause::HttpError,
        format!(
            "{endpoint} accepts connections and took the request, but {why}{status}: the \
             service failed mid-response."
        ),
    )
    .suggest(
        "Look at the service's logs at this time: a worker that crashed or was killed \
         mid-response (out of memory, a panic), or a proxy in front that cuts responses at a \
         timeout or size limit.",
    )
}

/// The fix for a TLS handshake the server refused with an alert, or that it ended after
/// asking for a client certificate.
pub(super) fn tls_fix(tls: &TlsReport, host: &str) -> Option<String> {
    let alert = tls.alert.as_deref().unwrap_or_default();
    let wants_certificate = alert == "certificate_required"
        || (tls.client_certificate_requested && !tls.ok && tls.certificate.is_some());
    if wants_certificate {
        return Some(
            "The server wants a client certificate (mutual TLS): give the client one the server \
             trusts (curl --cert client.pem --key client.key), or stop requiring one on the \
             server (nginx ssl_verify_client, openssl -Verify)."
                .into(),
        );
    }
    match alert {
        "protocol_version" => Some(
            "The server speaks only TLS 1.0/1.1, which current clients refuse: enable TLS 1.2 \
             and 1.3 on it (nginx ssl_protocols TLSv1.2 TLSv1.3; upgrade an old OpenSSL or Java)."
                .into(),
        ),
        "unrecognized_name" => Some(format!(
            "The server has no site or certificate for {host} (SNI): connect with a name it \
             serves, or add {host} to its virtual hosts and certificate."
        )),
        "handshake_failure" => Some(
            "The client and the server share no TLS version or cipher suite: compare the \
             server's TLS settings with a current client's (openssl s_client -connect HOST:PORT)."
                .into(),
        ),
        _ => None,
    }
}

/// The local listener that took connections to `address`, when the service runs on this host
/// and its owner is known: the evidence line and the suggestion naming whose logs to read.
pub(super) fn answering_process(
    found: &LocalListeners,
    address: IpAddr,
) -> Option<(Evidence, String)> {
    let listener = owner(found, address)?;
    let pid = listener.pid?;
    let name = listener.command.as_deref().or(listener.process.as_deref()).unwrap_or("?");
    let line = format!("pid {pid} ({name}) on {}", listener.address);
    let suggestion = format!("The process that answered is pid {pid} ({name}): read its logs.");
    Some((evidence("answered by", line, None), suggestion))
}

fn owner(found: &LocalListeners, address: IpAddr) -> Option<&Listener> {
    let taking = found.listeners.iter().filter(|l| listeners::accepts(&l.address, &address));
    // A listener bound to the address itself takes the connection before a wildcard one.
    let (exact, wildcard): (Vec<&Listener>, Vec<&Listener>) =
        taking.partition(|l| l.address.ip() == address);
    exact.into_iter().chain(wildcard).find(|l| l.pid.is_some())
}

/// The evidence lines of an HTTP answer: the status line with the time to first byte, the
/// headers kept, the body's first line, the redirects followed and the statuses expected.
pub(super) fn http_evidence(http: &HttpReport) -> Vec<Evidence> {
    let result = match http.status_line() {
        Some(line) if !http.failed => line,
        Some(line) => format!("{line}, then failed: {}", http.detail.as_deref().unwrap_or("?")),
        None => format!("failed: {}", http.detail.as_deref().unwrap_or("no response")),
    };
    let mut found = vec![evidence("http", result, http.first_byte_us)];
    for hop in &http.redirects {
        found.push(evidence("http redirect", format!("{} → {}", hop.status, hop.location), None));
    }
    for header in &http.headers {
        found.push(evidence(format!("http {}", header.name), header.value.clone(), None));
    }
    if let Some(line) = &http.body_first_line {
        found.push(evidence("http body", line.clone(), None));
    }
    if !http.expected_status.is_empty() {
        let expected: Vec<String> = http.expected_status.iter().map(u16::to_string).collect();
        found.push(evidence("http expected", expected.join(", "), None));
    }
    found
}

/// Over retried rounds where every failure was the service's own: `Intermittent server error:
/// the service answered 503 in 3 of 5 rounds; the network path worked in every round.`
pub(super) fn intermittent_service(rounds: &[Round], cause: Cause) -> Option<String> {
    let network_failed =
        rounds.iter().any(|r| !r.cause.is_reachable() && !is_service_failure(r.cause));
    if network_failed || !is_service_failure(cause) {
        return None;
    }
    let failing: Vec<&Round> = rounds.iter().filter(|r| r.cause == cause).collect();
    let statuses: Vec<u16> = failing.iter().filter_map(|r| r.http_status).collect();
    let status = statuses
        .iter()
        .copied()
        .max_by_key(|status| statuses.iter().filter(|s| *s == status).count());
    let what = match status {
        Some(status) => format!(
            "the service answered {status} in {} of {} rounds",
            statuses.iter().filter(|s| **s == status).count(),
            rounds.len()
        ),
        None => format!(
            "the service failed ({}) in {} of {} rounds",
            cause.as_str(),
            failing.len(),
            rounds.len()
        ),
    };
    Some(format!("Intermittent server error: {what}; the network path worked in every round."))
}

/// What to try when only the service failed, and only sometimes.
pub const INTERMITTENT_SERVICE_FIX: &str = "The network is fine (every round connected); the \
     service fails some requests: a flapping worker, an exhausted pool, or one unhealthy member \
     behind a load balancer. Compare its logs at the failing rounds' times.";

#[cfg(test)]
mod tests {
    use super::*;
    use whyrefused_shared::{HttpClose, HttpHeader, Timestamp};

    fn answer(status: u16, reason: &str, headers: &[(&str, &str)]) -> HttpReport {
        HttpReport {
            status: Some(status),
            reason: Some(reason.into()),
            detail: Some(reason.into()),
            failed: false,
            first_byte_us: Some(2_100),
            headers: headers
                .iter()
                .map(|(name, value)| HttpHeader { name: (*name).into(), value: (*value).into() })
                .collect(),
            ..HttpReport::empty()
        }
    }

    const AT: &str = "port 8080 of 127.0.0.1";

    #[test]
    fn a_5xx_is_a_server_error_naming_the_server_the_first_byte_and_the_body() {
        let mut http = answer(503, "Service Unavailable", &[("Server", "nginx/1.22")]);
        http.body_first_line = Some("database pool exhausted".into());
        let judged = judge_status(&http, AT, "/");
        assert_eq!(judged.cause, Cause::ServerError);
        assert_eq!(
            judged.summary,
            "The network path and the connection to port 8080 of 127.0.0.1 are fine; the \
             service answered 503 Service Unavailable (Server: nginx/1.22, first byte after \
             2.100 ms): look at its logs. It says: \"database pool exhausted\"."
        );
        let gateway = judge_status(&answer(502, "Bad Gateway", &[("Server", "nginx")]), AT, "/");
        assert!(gateway.suggestions[0].contains("upstream"), "{:?}", gateway.suggestions);
    }

    #[test]
    fn a_401_or_403_is_access_denied_naming_the_authentication_scheme() {
        let basic = answer(401, "Unauthorized", &[("WWW-Authenticate", "Basic realm=\"ops\"")]);
        let judged = judge_status(&basic, AT, "/");
        assert_eq!(judged.cause, Cause::AccessDenied);
        assert!(judged.summary.ends_with("it wants credentials (Basic authentication)."));
        assert!(judged.suggestions[0].contains("curl -u"), "{:?}", judged.suggestions);
        assert_eq!(
            judge_status(&answer(403, "Forbidden", &[]), AT, "/").cause,
            Cause::AccessDenied
        );
    }

    #[test]
    fn a_404_or_405_is_reachable_with_a_note_that_the_path_or_method_is_wrong() {
        let judged = judge_status(&answer(404, "Not Found", &[]), AT, "/missing");
        assert_eq!(judged.cause, Cause::Reachable);
        assert!(judged.summary.contains("/missing does not exist"), "{}", judged.summary);
        assert_eq!(judged.notes[0].probe, "note");
        let method = judge_status(&answer(405, "Method Not Allowed", &[]), AT, "/");
        assert!(method.summary.contains("does not take GET"), "{}", method.summary);
    }

    #[test]
    fn a_redirect_is_reachable_and_shows_where_it_points() {
        let moved = answer(301, "Moved Permanently", &[("Location", "https://example.com/")]);
        let judged = judge_status(&moved, AT, "/");
        assert_eq!(judged.cause, Cause::Reachable);
        assert!(judged.summary.contains("redirecting to https://example.com/ (not followed)"));
    }

    #[test]
    fn with_expected_statuses_any_other_is_unexpected_and_an_expected_one_reachable() {
        let mut found = answer(302, "Found", &[("Location", "/login")]);
        found.expected_status = vec![200, 204];
        let judged = judge_status(&found, AT, "/");
        assert_eq!(judged.cause, Cause::UnexpectedStatus);
        assert!(
            judged.summary.contains("answered 302 Found, not 200 or 204"),
            "{}",
            judged.summary
        );
        let mut fine = answer(204, "No Content", &[]);
        fine.expected_status = vec![200, 204];
        assert_eq!(judge_status(&fine, AT, "/").cause, Cause::Reachable);
        let mut failing = answer(503, "Service Unavailable", &[]);
        failing.expected_status = vec![503];
        assert_eq!(judge_status(&failing, AT, "/").cause, Cause::Reachable, "503 was asked for");
    }

    #[test]
    fn a_response_cut_in_its_body_is_an_http_error_saying_where_and_how_much_arrived() {
        let mut cut = answer(200, "OK", &[]);
        cut.failed = true;
        cut.detail = Some(
            "the server reset the connection during the body, after 85 bytes of the response"
                .into(),
        );
        cut.closed = Some(HttpClose {
            during: HttpPart::Body,
            how: whyrefused_shared::EarlyClose::Reset,
            bytes_received: 85,
        });
        let judged = judge_failure(&cut, AT);
        assert_eq!(judged.cause, Cause::HttpError);
        assert!(
            judged.summary.contains(
                "during the body, after 85 bytes of the response (it had begun HTTP/1.1 200 OK)"
            ),
            "{}",
            judged.summary
        );
    }

    fn round(number: u32, cause: Cause, http_status: u16) -> Round {
        let at = Timestamp(String::new());
        Round {
            round: number,
            at,
            cause,
            http_status: Some(http_status),
            elapsed_us: 10,
            tries: None,
        }
    }

    #[test]
    fn rounds_where_only_the_service_failed_read_as_an_intermittent_server_error() {
        let rounds = [
            round(1, Cause::ServerError, 503),
            round(2, Cause::Reachable, 200),
            round(3, Cause::ServerError, 503),
            round(4, Cause::ServerError, 503),
            round(5, Cause::Reachable, 200),
        ];
        assert_eq!(
            intermittent_service(&rounds, Cause::ServerError).as_deref(),
            Some(
                "Intermittent server error: the service answered 503 in 3 of 5 rounds; the \
                 network path worked in every round."
            )
        );
        let mut network = rounds.to_vec();
        network[1].cause = Cause::Filtered;
        assert_eq!(intermittent_service(&network, Cause::ServerError), None);
    }

    #[test]
    fn the_process_that_answered_is_the_listener_that_takes_the_address() {
        let listener = |address: &str, pid| Listener {
            address: address.parse().unwrap(),
            pid: Some(pid),
            process: Some("python3".into()),
            command: Some(format!("python3 -m http.server {pid}")),
            queue: None,
            owner_state: None,
        };
        let found = LocalListeners {
            owners_hidden: None,
            listen_overflows: None,
            port: 8080,
            listeners: vec![listener("[::]:8080", 1), listener("127.0.0.1:8080", 2)],
        };
        let (line, suggestion) = answering_process(&found, "127.0.0.1".parse().unwrap()).unwrap();
        assert_eq!(line.result, "pid 2 (python3 -m http.server 2) on 127.0.0.1:8080");
        assert!(suggestion.contains("pid 2"), "{suggestion}");
    }
}
