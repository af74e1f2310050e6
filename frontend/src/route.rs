//! The page's hash routes: what a link to the page asks it to show. Hash routes only (the part
//! after `#` never reaches the agent or its logs), read by hand: four shapes do not need a
//! router crate.
//!
//! - `#/r/ID`: one stored result, read-only;
//! - `#/check?target=db:5432` (or `&port=5432`): the check form filled and focused, not run;
//! - `#/history`, `#/watches`: those views;
//! - anything else (nothing, `#token=…`, junk): the page as it opens.

/// The longest result id taken from a link (ids are ten letters and digits; a little room).
const MAX_ID_LEN: usize = 32;

/// The longest target taken from a link: longer than any host name and port.
const MAX_TARGET_LEN: usize = 512;

/// What the page's address asks it to show.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Route {
    /// The page as it opens: the check form.
    #[default]
    Home,
    /// One stored result, read-only.
    Result(String),
    /// The check form filled with this target (never run by the link).
    Check(String),
    /// The History view.
    History,
    /// The watches.
    Watches,
}

impl Route {
    /// The route a URL fragment (`location.hash`, with or without its `#`) names; anything
    /// this page does not know is [`Route::Home`].
    pub fn parse(fragment: &str) -> Route {
        let fragment = fragment.strip_prefix('#').unwrap_or(fragment);
        let Some(path) = fragment.strip_prefix('/') else { return Route::Home };
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        match path.split('/').collect::<Vec<_>>().as_slice() {
            ["r", id] if is_result_id(id) => Route::Result((*id).to_string()),
            ["check"] => check_target(query).map_or(Route::Home, Route::Check),
            ["history"] => Route::History,
            ["watches"] => Route::Watches,
            _ => Route::Home,
        }
    }

    /// The fragment that names this route (`#/r/ID`), for links and for the address bar.
    pub fn fragment(&self) -> String {
        match self {
            Route::Home => "#/".to_string(),
            Route::Result(id) => format!("#/r/{id}"),
            Route::Check(target) => {
                let query: String = form_urlencoded::Serializer::new(String::new())
                    .append_pair("target", target)
                    .finish();
                format!("#/check?{query}")
            }
            Route::History => "#/history".to_string(),
            Route::Watches => "#/watches".to_string(),
        }
    }
}

/// Whether a link's id can be a result id: letters and digits only, so it can go into the API's
/// path as is.
fn is_result_id(id: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The target a `#/check?target=…&port=…` query names: `target` percent-decoded, with `port`
/// added when the target has none of its own. `None` without a usable target.
fn check_target(query: &str) -> Option<String> {
    let mut target = None;
    let mut port = None;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "target" => target = Some(value.to_string()),
            "port" => port = value.trim().parse::<u16>().ok().filter(|port| *port > 0),
            _ => {}
        }
    }
    let target = target.filter(|t| t.len() <= MAX_TARGET_LEN)?;
    if target.chars().any(char::is_control) {
        return None;
    }
    let target = Some(target.trim().to_string()).filter(|t| !t.is_empty())?;
    Some(match port {
        Some(port) if !has_port(&target) => with_port(&target, port),
        _ => target,
    })
}

/// Whether a typed target already names its port (`db:5432`, `[::1]:22`, a URL).
fn has_port(target: &str) -> bool {
    if target.contains("://") {
        return true;
    }
    match target.rsplit_once(':') {
        Some((host, port)) => {
            let bracketed = host.starts_with('[') && host.ends_with(']');
            let plain = !host.contains(':');
            (bracketed || plain) && port.parse::<u16>().is_ok()
        }
        None => false,
    }
}

/// `host:port`, with an IPv6 address in brackets.
fn with_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The route of the page's address now.
pub fn current() -> Route {
    web_sys::window()
        .and_then(|window| window.location().hash().ok())
        .map_or(Route::Home, |hash| Route::parse(&hash))
}

/// Puts `route` in the address bar (a new history entry, so Back returns), which fires
/// `hashchange`.
pub fn go(route: &Route) {
    if let Some(window) = web_sys::window() {
        let _ = window.location().set_hash(&route.fragment());
    }
}

/// The page's own address with `route`'s fragment: what "Copy link" copies (never a token).
pub fn link_to(route: &Route) -> String {
    let location = web_sys::window().map(|window| window.location());
    let origin = location.as_ref().and_then(|l| l.origin().ok()).unwrap_or_default();
    let path = location.as_ref().and_then(|l| l.pathname().ok()).unwrap_or_else(|| "/".into());
    format!("{origin}{path}{}", route.fragment())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_link_names_its_id() {
        assert_eq!(Route::parse("#/r/a1B2c3D4e5"), Route::Result("a1B2c3D4e5".into()));
        assert_eq!(Route::parse("/r/abc"), Route::Result("abc".into()), "without the #");
        assert_eq!(Route::Result("xyz".into()).fragment(), "#/r/xyz");
    }

    #[test]
    fn a_check_link_fills_the_target_percent_decoded_with_its_port() {
        assert_eq!(Route::parse("#/check?target=db:5432"), Route::Check("db:5432".into()));
        assert_eq!(Route::parse("#/check?target=db&port=5432"), Route::Check("db:5432".into()));
        assert_eq!(
            Route::parse("#/check?target=db%3A5432&port=1"),
            Route::Check("db:5432".into()),
            "the target's own port wins"
        );
        assert_eq!(Route::parse("#/check?port=22&target=::1"), Route::Check("[::1]:22".into()));
        assert_eq!(
            Route::parse("#/check?target=https%3A%2F%2Fexample.com%2Fa+b"),
            Route::Check("https://example.com/a b".into())
        );
        assert_eq!(Route::parse("#/check?target=db&port=x"), Route::Check("db".into()));
    }

    #[test]
    fn a_routes_fragment_parses_back_to_it() {
        for route in [
            Route::Check("db.internal:5432".into()),
            Route::Check("https://example.com/?a=1&b=2#x".into()),
            Route::History,
            Route::Watches,
            Route::Result("k3j4h5".into()),
        ] {
            assert_eq!(Route::parse(&route.fragment()), route, "{}", route.fragment());
        }
    }

    #[test]
    fn junk_and_tokens_are_the_page_as_it_opens() {
        for junk in [
            "",
            "#",
            "#token=abc",
            "#/",
            "#/r/",
            "#/r/a/b",
            "#/r/../../api",
            "#/r/%3Cscript%3E",
            "#/r/abcdefghijklmnopqrstuvwxyz0123456789",
            "#/check",
            "#/check?target=",
            "#/check?target=%0Adb:1",
            "#/nope",
            "#//history",
            "#/check?target=%FF%FE",
        ] {
            let route = Route::parse(junk);
            assert!(
                route == Route::Home || matches!(&route, Route::Check(t) if !t.is_empty()),
                "{junk:?} gave {route:?}"
            );
        }
        assert_eq!(Route::parse("#/check?target=%0Adb:1"), Route::Home, "no control characters");
        assert_eq!(Route::parse(&format!("#/check?target={}", "a".repeat(600))), Route::Home);
    }
}
