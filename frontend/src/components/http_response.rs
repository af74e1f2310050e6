//! [`HttpResponse`]: what the service answered, in the card right under the verdict: the status
//! line, the headers that matter, the body's first line, where a response was cut short, the
//! redirects followed and the statuses expected.

use whyrefused_shared::HttpReport;
use yew::prelude::*;

use crate::format;

#[derive(Properties, PartialEq)]
pub struct HttpResponseProps {
    /// The HTTP exchange of the first connection that opened.
    pub http: HttpReport,
}

/// A status line with its time to first byte, then a definition list of the rest.
#[function_component(HttpResponse)]
pub fn http_response(props: &HttpResponseProps) -> Html {
    let http = &props.http;
    let expected: Vec<String> = http.expected_status.iter().map(u16::to_string).collect();
    html! {
        <section class="http-response" aria-label="HTTP response" data-status={http.status.map(|s| s.to_string())}>
            <p class="http-status-line">
                if let Some(status) = http.status {
                    <span class={classes!("pill", status_tone(status))}>{ status }</span>{ " " }
                }
                <code class="mono">{ http.status_line().unwrap_or_else(|| "no HTTP response".into()) }</code>
                if let Some(us) = http.first_byte_us {
                    <span class="muted">{ " · first byte after " }</span>
                    <span class="mono time">{ format::millis(us) }</span>
                }
            </p>
            <dl class="finding-facts http-facts">
                { for http.redirects.iter().map(|hop| html! {
                    <>
                        <dt>{ "Redirect" }</dt>
                        <dd class="mono">{ format!("{} → {}", hop.status, hop.location) }</dd>
                    </>
                }) }
                { for http.headers.iter().map(|header| html! {
                    <>
                        <dt>{ &header.name }</dt>
                        <dd class="mono http-header">{ &header.value }</dd>
                    </>
                }) }
                if let Some(line) = &http.body_first_line {
                    <dt>{ "Body" }</dt>
                    <dd><code class="banner http-body">{ line }</code></dd>
                }
                if http.closed.is_some() {
                    <dt>{ "Cut short" }</dt>
                    <dd class="bad-text">{ http.detail.clone().unwrap_or_default() }</dd>
                }
                if !expected.is_empty() {
                    <dt>{ "Expected" }</dt>
                    <dd class="mono">{ expected.join(", ") }</dd>
                }
            </dl>
        </section>
    }
}

/// `pill--ok` for 1xx–3xx, `pill--partial` for 4xx, `pill--bad` for 5xx.
fn status_tone(status: u16) -> &'static str {
    match status {
        500.. => "pill--bad",
        400..=499 => "pill--partial",
        _ => "pill--ok",
    }
}

#[cfg(test)]
mod tests {
    use whyrefused_shared::{HttpHeader, HttpRedirect};

    use super::*;
    use crate::components::render;

    #[test]
    fn a_503_shows_its_status_line_server_header_and_body_line() {
        let http = HttpReport {
            status: Some(503),
            reason: Some("Service Unavailable".into()),
            version: Some("HTTP/1.1".into()),
            failed: false,
            first_byte_us: Some(2_500),
            headers: vec![HttpHeader { name: "Server".into(), value: "nginx/1.22".into() }],
            body_first_line: Some("database pool exhausted".into()),
            redirects: vec![HttpRedirect { status: 301, location: "/new".into() }],
            expected_status: vec![200, 204],
            ..HttpReport::empty()
        };
        let html = render::<HttpResponse>(HttpResponseProps { http });
        for expected in [
            r#"data-status="503""#,
            "pill--bad",
            "HTTP/1.1 503 Service Unavailable",
            "2.500 ms",
            "<dt>Server</dt>",
            "nginx/1.22",
            "database pool exhausted",
            "301 → /new",
            "200, 204",
        ] {
            assert!(html.contains(expected), "{expected} in {html}");
        }
    }
}
