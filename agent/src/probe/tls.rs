//! A TLS handshake (rustls) over an open connection, with the server's certificate summarised.
//!
//! The handshake is allowed to finish even when the certificate is not trusted: the verifier
//! records what verification said and accepts, so the report can show both the certificate and
//! why a strict client (a browser, curl) would refuse it. Nothing is sent over a connection
//! whose certificate failed.
//!
//! A server that ends the handshake with an alert is named by it, and whether it had asked for
//! a client certificate is recorded (none is sent): with TLS 1.3 such a server lets the
//! handshake finish and sends its `certificate_required` alert after, so
//! [`alert_after_handshake`] reads it from the first read's error.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    AlertDescription, CertificateError, DigitallySignedStruct, PeerIncompatible, RootCertStore,
    SignatureScheme,
};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use whyrefused_shared::{CertificateSummary, EarlyClose, TlsReport};

use crate::clock;
use crate::target::Host;

/// A finished handshake: the report, the stream when the handshake completed (to speak over
/// only when the report is ok), and how the server ended the connection if it hung up during
/// the handshake.
pub struct Handshake {
    pub report: TlsReport,
    pub stream: Option<TlsStream<TcpStream>>,
    pub early_close: Option<EarlyClose>,
}

/// Runs a TLS handshake with `host`'s name (SNI) over `stream`, giving up after `deadline`.
pub async fn handshake(stream: TcpStream, host: &Host, deadline: Duration) -> Handshake {
    let start = Instant::now();
    let verifier = Arc::new(RecordingVerifier::new(trusted_roots().await));
    let asked = Arc::new(CertificateRequestSeen::default());
    let connector = TlsConnector::from(Arc::new(client_config(verifier.clone(), asked.clone())));
    let outcome =
        tokio::time::timeout(deadline, connector.connect(server_name(host), stream)).await;
    let elapsed_us = clock::micros(start.elapsed());
    let seen = verifier.seen.lock().map(|seen| seen.clone()).unwrap_or_default();
    let certificate = seen.certificate.as_deref().and_then(|der| summarise(der, host));
    let mut report = TlsReport {
        ok: false,
        version: None,
        error: None,
        certificate,
        elapsed_us,
        alert: None,
        client_certificate_requested: asked.0.load(Ordering::Relaxed),
    };
    let mut early_close = None;
    let stream = match outcome {
        Ok(Ok(stream)) => {
            report.version = stream.get_ref().1.protocol_version().map(version_name);
            report.error = seen
                .verification_error
                .map(|error| describe_rejection(&error, host, report.certificate.as_ref()));
            report.ok = report.error.is_none();
            Some(stream)
        }
        Ok(Err(error)) => {
            early_close = hung_up(&error);
            report.alert = alert_in(&error).map(alert_name);
            report.error = Some(describe_failure(&error, report.client_certificate_requested));
            None
        }
        Err(_) => {
            report.error = Some(format!("no handshake within {} ms", deadline.as_millis()));
            None
        }
    };
    Handshake { stream, report, early_close }
}

/// The certificate authorities this host trusts (its CA bundle), loaded once.
pub(crate) async fn trusted_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    if let Some(roots) = ROOTS.get() {
        return roots.clone();
    }
    let load = || {
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        Arc::new(roots)
    };
    let roots = tokio::task::spawn_blocking(load)
        .await
        .unwrap_or_else(|_| Arc::new(RootCertStore::empty()));
    ROOTS.get_or_init(|| roots).clone()
}

pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn client_config(
    verifier: Arc<RecordingVerifier>,
    asked: Arc<CertificateRequestSeen>,
) -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_cert_resolver(asked)
}

/// A client-certificate resolver that has no certificate and notes that the server asked for
/// one (rustls asks it on every CertificateRequest).
#[derive(Debug, Default)]
struct CertificateRequestSeen(AtomicBool);

impl rustls::client::ResolvesClientCert for CertificateRequestSeen {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.0.store(true, Ordering::Relaxed);
        None
    }

    fn has_certs(&self) -> bool {
        false
    }
}

fn server_name(host: &Host) -> ServerName<'static> {
    match host {
        Host::Ip(ip) => ServerName::IpAddress((*ip).into()),
        Host::Name { ascii, .. } => ServerName::try_from(ascii.clone())
            .unwrap_or_else(|_| ServerName::IpAddress(IpAddr::from([0, 0, 0, 0]).into())),
    }
}

fn version_name(version: rustls::ProtocolVersion) -> String {
    match version {
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".into(),
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".into(),
        other => format!("{other:?}"),
    }
}

/// What the verifier saw: the server's certificate and why it would be refused, if it would.
#[derive(Debug, Clone, Default)]
struct Seen {
    certificate: Option<Vec<u8>>,
    verification_error: Option<rustls::Error>,
}

/// A verifier that runs the standard WebPKI checks against the host's trusted roots, records
/// the result and lets the handshake go on, so a rejected certificate can still be described.
#[derive(Debug)]
struct RecordingVerifier {
    strict: Option<Arc<WebPkiServerVerifier>>,
    algorithms: WebPkiSupportedAlgorithms,
    seen: Mutex<Seen>,
}

impl RecordingVerifier {
    fn new(roots: Arc<RootCertStore>) -> RecordingVerifier {
        let strict = WebPkiServerVerifier::builder_with_provider(roots, provider()).build().ok();
        let algorithms = provider().signature_verification_algorithms;
        RecordingVerifier { strict, algorithms, seen: Mutex::default() }
    }
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = match &self.strict {
            Some(strict) => strict
                .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
                .err(),
            None => Some(rustls::Error::General(
                "this host trusts no certificate authorities (install ca-certificates)".into(),
            )),
        };
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Seen { certificate: Some(end_entity.to_vec()), verification_error: verdict };
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Why a strict client refuses the certificate, in words.
fn describe_rejection(
    error: &rustls::Error,
    host: &Host,
    certificate: Option<&CertificateSummary>,
) -> String {
    let rustls::Error::InvalidCertificate(problem) = error else { return error.to_string() };
    let self_signed = certificate.is_some_and(|c| c.subject == c.issuer);
    let about_the_issuer =
        matches!(problem, CertificateError::UnknownIssuer | CertificateError::Other(_));
    if self_signed && about_the_issuer {
        return "the certificate is self-signed: no authority this host trusts vouches for it"
            .into();
    }
    match problem {
        CertificateError::UnknownIssuer => "the certificate is not signed by an authority this \
            host trusts (self-signed, a private CA, or a missing intermediate)"
            .into(),
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "the certificate has expired".into()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "the certificate is not valid yet (check both clocks)".into()
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            format!("the certificate is not valid for {}", host.display())
        }
        CertificateError::Revoked => "the certificate has been revoked".into(),
        other => format!("the certificate was refused: {other:?}"),
    }
}

/// Why the handshake itself failed, in words; `asked` is whether the server had asked for a
/// client certificate.
fn describe_failure(error: &std::io::Error, asked: bool) -> String {
    if let Some(alert) = alert_in(error) {
        return describe_alert(alert, asked);
    }
    match hung_up(error) {
        Some(how) if asked => format!(
            "the server asked for a client certificate and then {} the connection: it wants a \
             client certificate",
            if how == EarlyClose::Reset { "reset" } else { "closed" }
        ),
        Some(EarlyClose::Closed) => "the server closed the connection during the handshake".into(),
        Some(EarlyClose::Reset) => "the server reset the connection during the handshake".into(),
        None => match rustls_error(error) {
            Some(rustls::Error::InvalidMessage(_)) => {
                "the server did not answer in TLS (is it a plain-text port?)".into()
            }
            Some(other) => other.to_string(),
            None => error.to_string(),
        },
    }
}

/// The alert a server ended the connection with, in words, naming what it means.
fn describe_alert(alert: AlertDescription, asked: bool) -> String {
    let name = alert_name(alert);
    match alert {
        AlertDescription::CertificateRequired => {
            format!("the server wants a client certificate (alert {name})")
        }
        AlertDescription::HandshakeFailure | AlertDescription::BadCertificate if asked => {
            format!("the server wants a client certificate (it asked for one; alert {name})")
        }
        AlertDescription::ProtocolVersion => {
            format!("the server speaks only TLS 1.0/1.1, which this client refuses (alert {name})")
        }
        AlertDescription::UnrecognisedName => {
            format!("the server has no certificate for the name sent in SNI (alert {name})")
        }
        _ => format!("the server refused the handshake with the alert {name}"),
    }
}

fn rustls_error(error: &std::io::Error) -> Option<&rustls::Error> {
    error.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>())
}

/// The alert behind an I/O error over TLS: one the server sent, or a version this client
/// refused to go down to (named `protocol_version`, the alert it then sends).
pub fn alert_in(error: &std::io::Error) -> Option<AlertDescription> {
    match rustls_error(error)? {
        rustls::Error::AlertReceived(alert) => Some(*alert),
        rustls::Error::PeerIncompatible(
            PeerIncompatible::ServerDoesNotSupportTls12Or13
            | PeerIncompatible::ServerTlsVersionIsDisabledByOurConfig,
        ) => Some(AlertDescription::ProtocolVersion),
        _ => None,
    }
}

/// An alert's RFC 8446 name: `certificate_required`.
pub fn alert_name(alert: AlertDescription) -> String {
    // rustls spells this one the British way.
    let debug = format!("{alert:?}").replace("recognised", "recognized");
    let mut name = String::new();
    for (index, c) in debug.chars().enumerate() {
        if c.is_ascii_uppercase() && index > 0 {
            name.push('_');
        }
        name.push(c.to_ascii_lowercase());
    }
    name
}

/// Marks `report` failed when the first read after a finished handshake ended with an alert
/// (TLS 1.3's `certificate_required`); returns whether it did.
pub fn alert_after_handshake(report: &mut TlsReport, error: &std::io::Error) -> bool {
    let Some(alert) = alert_in(error) else { return false };
    let described = describe_alert(alert, report.client_certificate_requested);
    report.error = Some(match report.error.take() {
        Some(earlier) => format!("{described} after the handshake; and {earlier}"),
        None => format!("{described} after the handshake"),
    });
    report.ok = false;
    report.alert = Some(alert_name(alert));
    true
}

fn hung_up(error: &std::io::Error) -> Option<EarlyClose> {
    match error.kind() {
        std::io::ErrorKind::UnexpectedEof => Some(EarlyClose::Closed),
        std::io::ErrorKind::ConnectionReset => Some(EarlyClose::Reset),
        _ => None,
    }
}

/// Subject, issuer, expiry and names of a DER certificate, and whether `host` is among them.
pub fn summarise(der: &[u8], host: &Host) -> Option<CertificateSummary> {
    let (_, certificate) = x509_parser::parse_x509_certificate(der).ok()?;
    let not_after_seconds = certificate.validity().not_after.timestamp();
    let not_after = UNIX_EPOCH + Duration::from_secs(not_after_seconds.max(0).unsigned_abs());
    let subject_alt_names = alternative_names(&certificate);
    Some(CertificateSummary {
        subject: certificate.subject().to_string(),
        issuer: certificate.issuer().to_string(),
        not_after: humantime::format_rfc3339_seconds(not_after).to_string(),
        name_matches: subject_alt_names.iter().any(|name| name_covers(name, host)),
        subject_alt_names,
        expired: not_after < SystemTime::now(),
    })
}

fn alternative_names(certificate: &x509_parser::certificate::X509Certificate<'_>) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let Ok(Some(extension)) = certificate.subject_alternative_name() else { return Vec::new() };
    let name = |general: &GeneralName<'_>| match general {
        GeneralName::DNSName(dns) => Some(dns.to_string()),
        GeneralName::IPAddress(bytes) => match bytes.len() {
            4 => <[u8; 4]>::try_from(*bytes).ok().map(|b| IpAddr::from(b).to_string()),
            16 => <[u8; 16]>::try_from(*bytes).ok().map(|b| IpAddr::from(b).to_string()),
            _ => None,
        },
        _ => None,
    };
    extension.value.general_names.iter().filter_map(name).collect()
}

/// Whether the certificate name `pattern` covers `host`: the same name, a wildcard for exactly
/// one leftmost label, or the same address.
pub fn name_covers(pattern: &str, host: &Host) -> bool {
    let asked = match host {
        Host::Ip(ip) => return pattern.parse::<IpAddr>().is_ok_and(|named| named == *ip),
        Host::Name { ascii, .. } => ascii.trim_end_matches('.').to_ascii_lowercase(),
    };
    let pattern = pattern.trim_end_matches('.').to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(parent) => asked.split_once('.').is_some_and(|(label, rest)| {
            !label.is_empty() && rest == parent && parent.contains('.')
        }),
        None => pattern == asked,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> Host {
        Host::Name { ascii: text.into(), display: text.into() }
    }

    #[test]
    fn certificate_names_cover_exact_names_one_wildcard_label_and_addresses() {
        assert!(name_covers("db.example.com", &name("DB.example.com.")));
        assert!(name_covers("*.example.com", &name("db.example.com")));
        assert!(!name_covers("*.example.com", &name("a.db.example.com")));
        assert!(!name_covers("*.example.com", &name("example.com")));
        assert!(!name_covers("*.com", &name("example.com")));
        assert!(name_covers("127.0.0.1", &Host::Ip("127.0.0.1".parse().unwrap())));
        assert!(!name_covers("localhost", &Host::Ip("127.0.0.1".parse().unwrap())));
    }

    #[test]
    fn rejections_are_explained_in_words() {
        let host = name("db.example.com");
        let unknown = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        assert!(describe_rejection(&unknown, &host, None).contains("authority this host trusts"));
        let own = CertificateSummary {
            subject: "CN=db".into(),
            issuer: "CN=db".into(),
            not_after: "2030-01-01T00:00:00Z".into(),
            subject_alt_names: vec!["db".into()],
            name_matches: false,
            expired: false,
        };
        assert!(
            describe_rejection(&unknown, &host, Some(&own))
                .starts_with("the certificate is self-signed")
        );
        let wrong = rustls::Error::InvalidCertificate(CertificateError::NotValidForName);
        assert_eq!(
            describe_rejection(&wrong, &host, None),
            "the certificate is not valid for db.example.com"
        );
    }

    #[test]
    fn alerts_are_named_as_the_rfc_names_them_and_said_in_words() {
        assert_eq!(alert_name(AlertDescription::CertificateRequired), "certificate_required");
        assert_eq!(alert_name(AlertDescription::UnrecognisedName), "unrecognized_name");
        let failure = AlertDescription::HandshakeFailure;
        assert!(describe_alert(failure, true).starts_with("the server wants a client certificate"));
        assert!(!describe_alert(failure, false).contains("client certificate"));
        assert!(describe_alert(AlertDescription::ProtocolVersion, false).contains("TLS 1.0/1.1"));
        assert!(describe_alert(AlertDescription::UnrecognisedName, false).contains("SNI"));
    }
}
