//! [`HistoryRow`]: one stored result in the History view: when, what, from where, the cause in
//! its colour, the connect time and the verdict's sentence; the whole row links to the full
//! card (`#/r/ID`).

use whyrefused_shared::ResultSummary;
use yew::prelude::*;

use crate::format;
use crate::route::Route;
use crate::timeline::{cause_named, short_time};

#[derive(Properties, PartialEq)]
pub struct HistoryRowProps {
    /// The stored result.
    pub summary: ResultSummary,
}

/// A list item holding one link; carries `data-result` (the id) and `data-cause`.
#[function_component(HistoryRow)]
pub fn history_row(props: &HistoryRowProps) -> Html {
    let summary = &props.summary;
    let cause = summary.cause.as_deref().map(cause_named);
    let cause_class = cause.map(|cause| format::severity_class(cause.severity()));
    let cause_label = match (cause, summary.cause.as_deref()) {
        (Some(cause), Some(_)) if summary.kind == whyrefused_shared::ResultKind::Check => {
            format::cause_title(cause).to_string()
        }
        (_, Some(name)) => name.replace('_', " "),
        _ => "no verdict".to_string(),
    };
    let connect = summary.connect_ms.map(|ms| format!("{ms:.1} ms"));
    let href = Route::Result(summary.id.clone()).fragment();
    html! {
        <li class="history-row" data-result={summary.id.clone()} data-cause={summary.cause.clone()}>
            <a class="history-link" {href}>
                <time class="history-time mono" datetime={summary.at.clone()}>
                    { short_time(&summary.at) }
                </time>
                <span class="history-target mono">
                    if summary.kind == whyrefused_shared::ResultKind::Scan {
                        <span class="kind">{ "scan " }</span>
                    }
                    { &summary.target }
                </span>
                <span class="history-vantage muted" title={summary.watch.as_ref().map(|watch| format!("a round of watch {watch}"))}>
                    { format!("from {}", summary.vantage) }
                    if summary.watch.is_some() {
                        { " · watch" }
                    }
                </span>
                <span class={classes!("state", "history-cause", cause_class)}>{ cause_label }</span>
                <span class="history-connect mono">{ connect.unwrap_or_else(|| "–".into()) }</span>
                <span class="history-summary" title={summary.summary.clone()}>
                    { summary.summary.clone().unwrap_or_default() }
                </span>
            </a>
        </li>
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::components::render;
    use whyrefused_shared::ResultKind;

    pub fn summary(id: &str, cause: &str, connect_ms: Option<f64>) -> ResultSummary {
        ResultSummary {
            id: id.into(),
            at: "2026-12-02T11:24:02.123Z".into(),
            finished_at: "2026-12-02T11:24:02.200Z".into(),
            kind: ResultKind::Check,
            target: "db.internal:5432".into(),
            host: "db.internal".into(),
            port: Some(5432),
            vantage: "local".into(),
            asked_by: None,
            source: "websocket".into(),
            cause: Some(cause.into()),
            reachable: Some(cause == "reachable"),
            connect_ms,
            summary: Some("Nothing listens on port 5432 of db.internal.".into()),
            watch: None,
        }
    }

    #[test]
    fn a_row_links_to_its_card_and_colours_its_cause_by_severity() {
        let html = render::<HistoryRow>(HistoryRowProps {
            summary: summary("k3j4h5m6n7", "port_closed", None),
        });
        assert!(html.contains(r##"href="#/r/k3j4h5m6n7""##), "{html}");
        assert!(html.contains("2026-12-02 11:24:02"), "{html}");
        assert!(html.contains("db.internal:5432") && html.contains("from local"), "{html}");
        assert!(
            html.contains(r#"class="state history-cause severity--bad">Port closed<"#),
            "{html}"
        );
        assert!(html.contains("Nothing listens on port 5432"), "{html}");
        let up = render::<HistoryRow>(HistoryRowProps {
            summary: summary("a", "reachable", Some(0.42)),
        });
        assert!(up.contains("severity--good") && up.contains("0.4 ms"), "{up}");
    }
}
