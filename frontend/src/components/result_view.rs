//! [`ResultView`]: one stored result, opened from a `#/r/ID` link or a History row
//! (`GET /api/results/{id}`), shown read-only with the same card a check or scan has on the
//! page: nothing on it makes the agent connect. A link without the token asks for it first.

use std::rc::Rc;

use serde_json::Value;
use whyrefused_shared::{
    CheckReport, CheckRequest, ResultKind, ResultSummary, ScanReport, ScanRequest, StoredResult,
};
use yew::platform::spawn_local;
use yew::prelude::*;

use crate::api::{self, ApiError};
use crate::components::check_card::CheckCard;
use crate::components::scan_card::ScanCard;
use crate::hooks::AgentLink;
use crate::route::Route;
use crate::state::Request;
use crate::timeline::short_time;

#[derive(Properties, PartialEq)]
pub struct ResultViewProps {
    /// The stored result's id.
    pub id: AttrValue,
    /// Whether the page is connected: a token given since is used at once.
    pub connected: bool,
}

/// A stored report, read as its kind says.
#[derive(Debug, Clone, PartialEq)]
pub enum StoredReport {
    Check(Rc<CheckReport>),
    Scan(Rc<ScanReport>),
}

/// Where the stored result stands.
#[derive(Debug, Clone, PartialEq)]
enum Fetched {
    Loading,
    Loaded(Box<ResultSummary>, StoredReport),
    Failed(ApiError),
}

/// `section#stored-result`: a line saying what this is, then the read-only card or what went
/// wrong (`data-state`: `loading`, `loaded`, `missing`, `error`).
#[function_component(ResultView)]
pub fn result_view(props: &ResultViewProps) -> Html {
    let link = use_context::<AgentLink>();
    let fetched = use_state(|| Fetched::Loading);
    {
        let fetched = fetched.clone();
        let token = link.as_ref().and_then(AgentLink::token);
        use_effect_with((props.id.clone(), props.connected), move |(id, _)| {
            let path = format!("/api/results/{id}");
            spawn_local(async move {
                fetched.set(match api::get::<StoredResult<Value>>(&path, token).await {
                    Ok(stored) => match read(stored) {
                        Ok((summary, report)) => Fetched::Loaded(Box::new(summary), report),
                        Err(error) => Fetched::Failed(error),
                    },
                    Err(error) => Fetched::Failed(error),
                });
            });
        });
    }
    let body = match &*fetched {
        Fetched::Loading => html! {
            <p class="history-state" data-state="loading">{ "Loading the stored result…" }</p>
        },
        Fetched::Loaded(summary, report) => html! {
            <StoredCard summary={(**summary).clone()} report={report.clone()} />
        },
        Fetched::Failed(ApiError::NotFound(message)) if message.contains("no history") => html! {
            <p class="notice" role="alert" data-state="missing">
                { "This agent keeps no history (it runs with --no-history), so it has no stored results to open." }
            </p>
        },
        Fetched::Failed(ApiError::NotFound(_)) => html! {
            <p class="notice" role="alert" data-state="missing">
                { format!("No result {} in this agent's history: the link may be mistyped, from another agent, or pruned by its retention.", props.id) }
            </p>
        },
        Fetched::Failed(error) => html! {
            <p class="notice" role="alert" data-state="error">{ error.to_string() }</p>
        },
    };
    html! {
        <section id="stored-result" class="stored-result" aria-label="Stored result">
            <p class="stored-head">
                <span>{ "A stored result, read-only." }</span>
                <a class="stored-close" href={Route::Home.fragment()}>{ "Close" }</a>
            </p>
            { body }
        </section>
    }
}

/// The summary and the report of a stored result, read as its kind says.
fn read(stored: StoredResult<Value>) -> Result<(ResultSummary, StoredReport), ApiError> {
    let unreadable = |error: serde_json::Error| ApiError::Unreadable(error.to_string());
    let report = match stored.summary.kind {
        ResultKind::Check => {
            StoredReport::Check(Rc::new(serde_json::from_value(stored.report).map_err(unreadable)?))
        }
        ResultKind::Scan => {
            StoredReport::Scan(Rc::new(serde_json::from_value(stored.report).map_err(unreadable)?))
        }
    };
    Ok((stored.summary, report))
}

#[derive(Properties, PartialEq)]
pub struct StoredCardProps {
    /// What was stored about it.
    pub summary: ResultSummary,
    /// Its report.
    pub report: StoredReport,
}

/// When and where it ran, and who asked, over the card of its kind, read-only.
#[function_component(StoredCard)]
pub fn stored_card(props: &StoredCardProps) -> Html {
    let summary = &props.summary;
    let mut said = format!("Ran {} UTC from {}", short_time(&summary.at), summary.vantage);
    if let Some(asker) = &summary.asked_by {
        said.push_str(&format!(", asked by {asker}"));
    }
    if let Some(watch) = &summary.watch {
        said.push_str(&format!(", a round of watch {watch}"));
    }
    let card = match &props.report {
        StoredReport::Check(report) => {
            let request = CheckRequest::new(summary.target.clone());
            let check = Request::of_stored(request, Rc::clone(report), summary.id.clone());
            html! { <CheckCard {check} readonly=true /> }
        }
        StoredReport::Scan(report) => {
            let request =
                ScanRequest { ports: None, ..ScanRequest::new(summary.target.clone(), "") };
            let scan = Request::of_stored(request, Rc::clone(report), summary.id.clone());
            html! { <ScanCard {scan} readonly=true /> }
        }
    };
    html! {
        <div class="stored" data-result={summary.id.clone()} data-kind={summary.kind.as_str()}>
            <p class="stored-meta muted">{ said }</p>
            { card }
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::history_row::tests::summary;
    use crate::components::render;
    use whyrefused_shared::{Cause, Outcome, PortSource, TargetInfo, Verdict};

    /// A finished check whose verdict would offer "Scan nearby ports" on a card the page ran.
    fn closed_port_report() -> CheckReport {
        CheckReport {
            target: Some(TargetInfo {
                input: "db.internal:5432".into(),
                host: "db.internal".into(),
                display_host: "db.internal".into(),
                port: 5432,
                port_source: PortSource::Explicit,
                scheme: None,
                path: None,
            }),
            verdict: Some(Verdict {
                cause: Cause::PortClosed,
                summary: "Nothing listens on port 5432 of db.internal.".into(),
                suggestions: vec![],
                evidence: vec![],
                pattern: None,
            }),
            outcome: Some(Outcome::Completed),
            elapsed_us: Some(1_200),
            ..CheckReport::default()
        }
    }

    #[test]
    fn a_stored_check_is_its_card_read_only_with_its_link_and_nothing_that_runs() {
        let html = render::<StoredCard>(StoredCardProps {
            summary: summary("k3j4h5m6n7", "port_closed", None),
            report: StoredReport::Check(Rc::new(closed_port_report())),
        });
        assert!(html.contains(r#"data-cause="port_closed""#), "the card: {html}");
        assert!(html.contains("Nothing listens on port 5432 of db.internal."), "{html}");
        assert!(html.contains("Ran 2026-12-02 11:24:02 UTC from local"), "{html}");
        assert!(html.contains(r#"class="copy-link""#) && html.contains("#/r/k3j4h5m6n7"), "{html}");
        for runs in ["scan-nearby", "trace-path", "watch-this", r#"class="cancel""#] {
            assert!(!html.contains(runs), "a read-only card offers no {runs}: {html}");
        }
    }

    #[test]
    fn the_same_check_on_a_card_the_page_ran_offers_what_the_stored_one_does_not() {
        let check = Request::of_stored(
            CheckRequest::new("db.internal:5432"),
            Rc::new(closed_port_report()),
            "k3j4h5m6n7".into(),
        );
        let html = render::<CheckCard>(crate::components::check_card::CheckCardProps {
            check,
            readonly: false,
        });
        assert!(html.contains("scan-nearby") && html.contains("watch-this"), "{html}");
    }
}
