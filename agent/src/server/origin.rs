//! Who may open the WebSocket: same-origin pages only, on a host name that is really this agent.
//!
//! A web page on another site must not be able to drive a local agent to scan the user's network.
//! The browser always sends `Origin` on a WebSocket upgrade, so a present `Origin` must name the
//! same authority as `Host` (clients outside a browser, like the CLI, send none and are allowed).
//! A loopback agent also requires `Host` to be an IP literal or `localhost`: that defeats DNS
//! rebinding, where an attacker's name is re-pointed at 127.0.0.1 to look same-origin.
//!
//! Plain HTTP routes that make the agent connect (`/probe`) or tell about it (`/metrics`) meet
//! the same rules through [`check_fetch`], and more: a page's `<img>` or link sends a GET with no
//! `Origin`, so a browser's `Sec-Fetch-Site` other than same-origin, or a `Referer` from another
//! origin, is refused too.

use axum::http::HeaderMap;
use axum::http::header::{HOST, ORIGIN, REFERER};

/// Why an upgrade was refused; the text is sent to the client with the 403.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OriginError {
    #[error(
        "cross-origin WebSocket refused: a page from {origin} may not use this agent at {host}"
    )]
    CrossOrigin { origin: String, host: String },
    #[error("WebSocket refused: the request has no valid Host header")]
    MissingHost,
    #[error("WebSocket refused: Origin {0:?} is not a valid origin")]
    BadOrigin(String),
    #[error("WebSocket refused: this agent answers only to localhost or its IP address, not {0:?}")]
    ForeignHost(String),
    #[error("refused: the browser says this request comes from another site (Sec-Fetch-Site: {0})")]
    CrossSite(String),
    #[error("refused: a page from {referer} may not use this agent at {host}")]
    ForeignReferer { referer: String, host: String },
}

/// [`check`], then refuses a request a browser sent on another site's behalf: one whose
/// `Sec-Fetch-Site` is not `same-origin` or `none` (typed or bookmarked), or whose `Referer` is
/// another origin's. Prometheus and curl send neither.
pub fn check_fetch(headers: &HeaderMap, authenticated: bool) -> Result<(), OriginError> {
    check(headers, authenticated)?;
    let host = headers.get(HOST).and_then(|value| value.to_str().ok()).unwrap_or_default();
    if let Some(site) = headers.get("sec-fetch-site") {
        let site = site.to_str().unwrap_or("(not text)");
        if !matches!(site, "same-origin" | "none") {
            return Err(OriginError::CrossSite(site.to_string()));
        }
    }
    let Some(referer) = headers.get(REFERER) else { return Ok(()) };
    let referer = referer.to_str().unwrap_or("(not text)");
    let authority = referer
        .split_once("://")
        .map(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or_default());
    match authority {
        Some(authority) if authority.eq_ignore_ascii_case(host) => Ok(()),
        _ => Err(OriginError::ForeignReferer {
            referer: referer.to_string(),
            host: host.to_string(),
        }),
    }
}

/// Accepts an upgrade only from a client without `Origin` or from a page served by this agent.
/// An agent that requires a token answers to any host name (it is reached by its name on the
/// network, and a rebound name gains an attacker nothing without the token); one without
/// answers only to `localhost` or an IP literal.
pub fn check(headers: &HeaderMap, authenticated: bool) -> Result<(), OriginError> {
    let host = headers
        .get(HOST)
        .and_then(|value| value.to_str().ok())
        .filter(|host| !host.is_empty())
        .ok_or(OriginError::MissingHost)?;
    if !authenticated && !is_local_host_name(host) {
        return Err(OriginError::ForeignHost(host.to_string()));
    }
    let Some(origin) = headers.get(ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().map_err(|_| OriginError::BadOrigin("(not text)".into()))?;
    let authority = origin
        .split_once("://")
        .map(|(_, authority)| authority.trim_end_matches('/'))
        .ok_or_else(|| OriginError::BadOrigin(origin.to_string()))?;
    if authority.eq_ignore_ascii_case(host) {
        Ok(())
    } else {
        Err(OriginError::CrossOrigin { origin: origin.to_string(), host: host.to_string() })
    }
}

/// Whether a `Host` header names this machine directly: an IP literal or `localhost`.
fn is_local_host_name(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _port)| name),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_plain(headers: &HeaderMap) -> Result<(), OriginError> {
        check(headers, false)
    }

    #[test]
    fn an_agent_with_tokens_answers_to_its_name_but_still_only_to_its_own_pages() {
        let named = headers(Some("probe.example:7070"), Some("https://probe.example:7070"));
        assert!(check(&named, true).is_ok());
        assert!(matches!(check(&named, false), Err(OriginError::ForeignHost(_))));
        let foreign = headers(Some("probe.example:7070"), Some("https://evil.example"));
        assert!(matches!(check(&foreign, true), Err(OriginError::CrossOrigin { .. })));
    }

    fn headers(host: Option<&str>, origin: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(host) = host {
            headers.insert(HOST, host.parse().unwrap());
        }
        if let Some(origin) = origin {
            headers.insert(ORIGIN, origin.parse().unwrap());
        }
        headers
    }

    #[test]
    fn same_origin_pages_and_clients_without_origin_are_allowed() {
        assert!(
            check_plain(&headers(Some("127.0.0.1:7070"), Some("http://127.0.0.1:7070"))).is_ok()
        );
        assert!(
            check_plain(&headers(Some("localhost:7070"), Some("http://LOCALHOST:7070"))).is_ok()
        );
        assert!(check_plain(&headers(Some("[::1]:7070"), Some("http://[::1]:7070"))).is_ok());
        assert!(check_plain(&headers(Some("127.0.0.1:7070"), None)).is_ok());
    }

    #[test]
    fn other_origins_are_refused() {
        let refused = check_plain(&headers(Some("127.0.0.1:7070"), Some("https://evil.example")));
        assert!(matches!(refused, Err(OriginError::CrossOrigin { .. })));
        let other_port =
            check_plain(&headers(Some("127.0.0.1:7070"), Some("http://127.0.0.1:8080")));
        assert!(matches!(other_port, Err(OriginError::CrossOrigin { .. })));
        assert!(matches!(
            check_plain(&headers(Some("127.0.0.1:7070"), Some("null"))),
            Err(OriginError::BadOrigin(_))
        ));
    }

    #[test]
    fn a_scrape_from_another_site_is_refused_even_without_origin() {
        let mut img = headers(Some("127.0.0.1:7070"), None);
        img.insert("sec-fetch-site", "cross-site".parse().unwrap());
        assert!(matches!(check_fetch(&img, false), Err(OriginError::CrossSite(_))));
        let mut old_browser = headers(Some("127.0.0.1:7070"), None);
        old_browser.insert(REFERER, "https://evil.example/page".parse().unwrap());
        assert!(matches!(
            check_fetch(&old_browser, false),
            Err(OriginError::ForeignReferer { .. })
        ));
        let mut own_page = headers(Some("127.0.0.1:7070"), None);
        own_page.insert(REFERER, "http://127.0.0.1:7070/".parse().unwrap());
        own_page.insert("sec-fetch-site", "same-origin".parse().unwrap());
        assert!(check_fetch(&own_page, false).is_ok());
        assert!(check_fetch(&headers(Some("127.0.0.1:7070"), None), false).is_ok(), "Prometheus");
        let rebound = headers(Some("evil.example:7070"), None);
        assert!(matches!(check_fetch(&rebound, false), Err(OriginError::ForeignHost(_))));
    }

    #[test]
    fn a_rebound_name_is_refused_even_when_it_looks_same_origin() {
        let rebound =
            check_plain(&headers(Some("evil.example:7070"), Some("http://evil.example:7070")));
        assert!(matches!(rebound, Err(OriginError::ForeignHost(_))));
        assert!(matches!(check_plain(&headers(None, None)), Err(OriginError::MissingHost)));
    }
}
