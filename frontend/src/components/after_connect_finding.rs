//! [`AfterConnectFinding`]: what followed a connect that opened: an early close, a banner, the
//! TLS handshake and its certificate, the HTTP status.

use whyrefused_shared::{AfterConnect, CertificateSummary, EarlyClose, HttpReport, TlsReport};
use yew::prelude::*;

use crate::format;

#[derive(Properties, PartialEq)]
pub struct AfterConnectFindingProps {
    /// The probe's result.
    pub after: AfterConnect,
}

/// A definition list with a line for each thing that happened; a quiet server gets one line
/// saying so.
#[function_component(AfterConnectFinding)]
pub fn after_connect_finding(props: &AfterConnectFindingProps) -> Html {
    let after = &props.after;
    let quiet = after.early_close.is_none()
        && after.banner.is_none()
        && after.tls.is_none()
        && after.http.is_none();
    html! {
        <>
            <p class="finding-line">{ "Connected to " }<span class="mono">{ after.address.to_string() }</span></p>
            <dl class="finding-facts">
                if let Some(close) = after.early_close {
                    <dt>{ "Server" }</dt>
                    <dd class="bad-text">{ early_close(close) }</dd>
                }
                if let Some(banner) = &after.banner {
                    <dt>{ "Banner" }</dt>
                    <dd><code class="banner">{ banner }</code></dd>
                }
                if let Some(tls) = &after.tls {
                    { tls_facts(tls) }
                }
                if let Some(http) = &after.http {
                    <dt>{ "HTTP" }</dt>
                    <dd>{ http_status(http) }</dd>
                }
                if quiet {
                    <dt>{ "Server" }</dt>
                    <dd class="muted">{ "kept the connection open and sent nothing first" }</dd>
                }
            </dl>
        </>
    }
}

fn early_close(close: EarlyClose) -> &'static str {
    match close {
        EarlyClose::Closed => "closed the connection at once (FIN) without sending anything",
        EarlyClose::Reset => "reset the connection at once",
    }
}

fn tls_facts(tls: &TlsReport) -> Html {
    html! {
        <>
            <dt>{ "TLS" }</dt>
            <dd>
                <span class={classes!("pill", if tls.ok { "pill--ok" } else { "pill--bad" })}>
                    { if tls.ok { "ok" } else { "failed" } }
                </span>
                if let Some(version) = &tls.version {
                    { " " }<span class="mono">{ version }</span>
                }
                { " in " }<span class="mono time">{ format::millis(tls.elapsed_us) }</span>
                if let Some(error) = &tls.error {
                    <div class="bad-text">{ error }</div>
                }
            </dd>
            if let Some(alert) = &tls.alert {
                <dt>{ "Alert" }</dt>
                <dd class="mono bad-text">{ alert }</dd>
            }
            if tls.client_certificate_requested {
                <dt>{ "Client certificate" }</dt>
                <dd>{ "the server asked for one (none was sent)" }</dd>
            }
            if let Some(certificate) = &tls.certificate {
                { certificate_facts(certificate) }
            }
        </>
    }
}

fn certificate_facts(certificate: &CertificateSummary) -> Html {
    html! {
        <>
            <dt>{ "Subject" }</dt>
            <dd class="mono">{ &certificate.subject }</dd>
            <dt>{ "Issuer" }</dt>
            <dd class="mono">{ &certificate.issuer }</dd>
            <dt>{ "Expires" }</dt>
            <dd>
                <span class="mono">{ &certificate.not_after }</span>
                if certificate.expired {
                    { " " }<span class="pill pill--bad">{ "expired" }</span>
                }
            </dd>
            <dt>{ "Names" }</dt>
            <dd>
                <span class={classes!("pill", if certificate.name_matches { "pill--ok" } else { "pill--bad" })}>
                    { if certificate.name_matches { "host name matches" } else { "host name not listed" } }
                </span>
                { " " }
                <span class="mono">{ certificate.subject_alt_names.join(", ") }</span>
            </dd>
        </>
    }
}

fn http_status(http: &HttpReport) -> Html {
    html! {
        <>
            if let Some(status) = http.status {
                <span class={classes!("pill", if http.failed || status >= 500 { "pill--bad" } else { "pill--ok" })}>
                    { status }
                </span>
                { " " }
            } else {
                <span class="pill pill--bad">{ "no response" }</span>{ " " }
            }
            if let Some(line) = http.status_line() {
                <span class="mono">{ line }</span>
            }
            if let Some(detail) = http.detail.as_ref().filter(|_| http.failed) {
                <div class="bad-text">{ detail }</div>
            }
            if let Some(first_byte_us) = http.first_byte_us {
                <span class="muted">{ " · first byte after " }</span>
                <span class="mono time">{ format::millis(first_byte_us) }</span>
            }
        </>
    }
}

#[cfg(test)]
mod tests {
    use whyrefused_shared::Phases;

    use super::*;
    use crate::components::render;

    fn after() -> AfterConnect {
        AfterConnect {
            address: "192.0.2.1:443".parse().unwrap(),
            early_close: None,
            banner: None,
            tls: None,
            http: None,
            phases: Phases::default(),
        }
    }

    #[test]
    fn tls_shows_version_and_the_certificate_summary_and_http_its_status() {
        let mut after = after();
        after.tls = Some(TlsReport {
            ok: false,
            version: Some("TLSv1.3".into()),
            error: Some("invalid peer certificate: Expired".into()),
            certificate: Some(CertificateSummary {
                subject: "CN=db.test".into(),
                issuer: "CN=Test CA".into(),
                not_after: "2020-01-01T00:00:00Z".into(),
                subject_alt_names: vec!["db.test".into(), "www.db.test".into()],
                name_matches: true,
                expired: true,
            }),
            elapsed_us: 4_000,
            alert: None,
            client_certificate_requested: false,
        });
        after.http = Some(HttpReport {
            status: Some(503),
            detail: Some("Service Unavailable".into()),
            failed: false,
            first_byte_us: Some(9_000),
            ..HttpReport::empty()
        });
        let html = render::<AfterConnectFinding>(AfterConnectFindingProps { after });
        for expected in [
            "TLSv1.3",
            "invalid peer certificate: Expired",
            "CN=db.test",
            "CN=Test CA",
            "2020-01-01T00:00:00Z",
            "expired",
            "host name matches",
            "db.test, www.db.test",
            "503",
            "Service Unavailable",
            "9.000 ms",
        ] {
            assert!(html.contains(expected), "{expected} in {html}");
        }
    }

    #[test]
    fn a_banner_an_early_close_or_silence_is_said() {
        let mut banner = after();
        banner.banner = Some("SSH-2.0-OpenSSH_9.2".into());
        let html = render::<AfterConnectFinding>(AfterConnectFindingProps { after: banner });
        assert!(html.contains(r#"<code class="banner">SSH-2.0-OpenSSH_9.2</code>"#), "{html}");
        let mut closed = after();
        closed.early_close = Some(EarlyClose::Reset);
        let html = render::<AfterConnectFinding>(AfterConnectFindingProps { after: closed });
        assert!(html.contains("reset the connection at once"), "{html}");
        let html = render::<AfterConnectFinding>(AfterConnectFindingProps { after: after() });
        assert!(html.contains("sent nothing first"), "{html}");
    }
}
