//! An agent-side watch's [`WatchSpec`], as `POST /api/watches` receives it (hostile until
//! checked), checked field by field: the check parses as `whyrefused check` parses its target,
//! `every` is a duration no shorter than the agent's `--min-watch-every`, `count` is at least
//! 1, the vantage points are well-formed names, the quorum fits them, and the webhook is an
//! http(s) URL the agent's target policy allows. Each refusal names its field in one line.
//!
//! Whether the named vantage points exist is the hub's to say (`hub::watches`).

use std::sync::Arc;
use std::time::Duration;

use whyrefused_shared::{ALL_VANTAGES, CheckRequest, LOCAL_VANTAGE, WatchSpec};

use super::quorum::Quorum;
use super::webhook::WebhookUrl;
use crate::check::CheckPlan;
use crate::history::formats;
use crate::policy::TargetPolicy;
use crate::target::Host;

/// The longest `every` a watch may have: a round a month is not a watch.
pub const MAX_EVERY: Duration = Duration::from_secs(30 * 86_400);

/// The most vantage points one watch names.
pub const MAX_VANTAGES: usize = 64;

/// A spec field refused, and why: `every: '5ms' is shorter than …`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SpecError {
    pub field: &'static str,
    pub message: String,
}

fn refuse(field: &'static str, message: impl Into<String>) -> SpecError {
    SpecError { field, message: message.into() }
}

/// A checked spec, ready to run.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The check each round runs (its retries dropped: the watch is the repetition).
    pub request: CheckRequest,
    pub every: Duration,
    pub count: Option<u64>,
    /// The vantage points by name, without repeats (`local` when the spec names none).
    pub from: Vec<String>,
    pub quorum: Quorum,
    pub webhook: Option<WebhookUrl>,
}

/// Checks `spec` against the agent's shortest interval and its target policy.
pub fn check(
    spec: &WatchSpec,
    min_every: Duration,
    policy: &Arc<TargetPolicy>,
) -> Result<Checked, SpecError> {
    let request =
        CheckRequest { retries: None, trace: false, no_trace: false, ..spec.check.clone() };
    CheckPlan::from_request(&request, policy.clone(), None)
        .map_err(|error| refuse("check", error.to_string()))?;
    let every = every(&spec.every, min_every)?;
    if spec.count == Some(0) {
        return Err(refuse(
            "count",
            "a watch runs at least 1 round: give 1 or more, or leave it out",
        ));
    }
    let from = vantages(&spec.from)?;
    let counted = (!from.iter().any(|name| name == ALL_VANTAGES)).then_some(from.len());
    let quorum = match &spec.quorum {
        Some(text) => Quorum::parse(text, counted).map_err(|error| refuse("quorum", error))?,
        None => Quorum::any_of(counted.unwrap_or(1)),
    };
    let webhook = spec.webhook.as_deref().map(|text| webhook(text, policy)).transpose()?;
    Ok(Checked { request, every, count: spec.count, from, quorum, webhook })
}

/// `every`: a duration at least `min_every` and at most [`MAX_EVERY`].
fn every(text: &str, min_every: Duration) -> Result<Duration, SpecError> {
    // Said back as given, but never a control character (it comes from the network).
    let shown: String = text.chars().take(32).flat_map(char::escape_default).collect();
    let text = shown.as_str();
    let every = formats::parse_duration(text).map_err(|error| refuse("every", error))?;
    if every < min_every {
        return Err(refuse(
            "every",
            format!(
                "'{text}' is shorter than this agent's shortest interval, {} (serve \
                 --min-watch-every)",
                formats::duration_text(min_every)
            ),
        ));
    }
    if every > MAX_EVERY {
        return Err(refuse("every", format!("'{text}' is longer than the longest interval, 30d")));
    }
    Ok(every)
}

/// `from`: vantage point names (`local`, `all`, joined agents'), without repeats.
fn vantages(names: &[String]) -> Result<Vec<String>, SpecError> {
    if names.len() > MAX_VANTAGES {
        return Err(refuse("from", format!("at most {MAX_VANTAGES} vantage points")));
    }
    let mut from: Vec<String> = Vec::new();
    for name in names {
        let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if name.is_empty() || name.len() > 64 || !name.chars().all(valid) {
            let shown: String = name.chars().take(64).flat_map(char::escape_default).collect();
            return Err(refuse("from", format!("'{shown}' is not a vantage point's name")));
        }
        if !from.contains(name) {
            from.push(name.clone());
        }
    }
    if from.is_empty() {
        from.push(LOCAL_VANTAGE.into());
    }
    Ok(from)
}

/// `webhook`: an http(s) URL whose host and port the target policy does not deny before any
/// resolution (each resolved address is checked again at every delivery).
fn webhook(text: &str, policy: &TargetPolicy) -> Result<WebhookUrl, SpecError> {
    let url = WebhookUrl::parse(text).map_err(|error| refuse("webhook", error))?;
    let (host, port) = url.host_port();
    let host = Host::parse(host).map_err(|error| refuse("webhook", error.to_string()))?;
    policy
        .check_unresolved(&host, Some(port))
        .map_err(|denial| refuse("webhook", format!("{}: {denial}", url.shown())))?;
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(target: &str) -> WatchSpec {
        WatchSpec {
            check: CheckRequest::new(target),
            every: "10s".into(),
            count: None,
            from: vec![],
            quorum: None,
            webhook: None,
        }
    }

    fn refused(spec: &WatchSpec, policy: &Arc<TargetPolicy>) -> SpecError {
        check(spec, Duration::from_secs(1), policy).expect_err("refused")
    }

    #[test]
    fn a_good_spec_is_taken_with_its_defaults() {
        let open = Arc::new(TargetPolicy::unrestricted());
        let checked = check(&spec("db:5432"), Duration::from_secs(1), &open).unwrap();
        assert_eq!(checked.every, Duration::from_secs(10));
        assert_eq!(checked.from, ["local"]);
        assert_eq!(checked.quorum, Quorum::any_of(1));
        let several = WatchSpec {
            from: vec!["a1".into(), "a2".into(), "a1".into(), "local".into()],
            quorum: Some("2/3".into()),
            ..spec("db:5432")
        };
        let checked = check(&several, Duration::from_secs(1), &open).unwrap();
        assert_eq!(checked.from, ["a1", "a2", "local"], "without repeats");
        assert_eq!(checked.quorum.to_string(), "2/3");
    }

    #[test]
    fn each_bad_field_is_named_in_one_line() {
        let open = Arc::new(TargetPolicy::unrestricted());
        let cases = [
            (spec("db:99999"), "check"),
            (spec(""), "check"),
            (WatchSpec { every: "5ms".into(), ..spec("db:1") }, "every"),
            (WatchSpec { every: "soon".into(), ..spec("db:1") }, "every"),
            (WatchSpec { every: "90d".into(), ..spec("db:1") }, "every"),
            (WatchSpec { count: Some(0), ..spec("db:1") }, "count"),
            (WatchSpec { from: vec!["a b".into()], ..spec("db:1") }, "from"),
            (WatchSpec { quorum: Some("3/2".into()), ..spec("db:1") }, "quorum"),
            (WatchSpec { quorum: Some("2/3".into()), ..spec("db:1") }, "quorum"),
            (WatchSpec { webhook: Some("ftp://x/".into()), ..spec("db:1") }, "webhook"),
        ];
        for (spec, field) in cases {
            let error = refused(&spec, &open);
            assert_eq!(error.field, field, "{error}");
            assert!(!error.to_string().contains('\n'), "one line: {error}");
        }
        let short = refused(&WatchSpec { every: "5ms".into(), ..spec("db:1") }, &open);
        assert!(short.message.contains("--min-watch-every") && short.message.contains("1s"));
    }

    #[test]
    fn a_webhook_the_target_policy_denies_is_refused_and_shown_without_its_path() {
        let guarded = Arc::new(TargetPolicy::with_defaults());
        let spec = WatchSpec {
            webhook: Some("http://127.0.0.1:9/hooks/T0123/secret".into()),
            ..spec("db:5432")
        };
        let error = refused(&spec, &guarded);
        assert_eq!(error.field, "webhook");
        assert!(!error.message.contains("secret"), "{error}");
    }
}
