//! The wrong service: the port is open, but what answers speaks another protocol than the
//! target's scheme or well-known port expects (`postgres://` reaching an HTTP server). Decided
//! from the service's identity; an unknown service is never called wrong.

use whyrefused_shared::{Cause, ServiceIdentity};

use super::{AddressDiagnosis, evidence};

/// Adds what answers to the evidence of an address that opened; names the wrong service when
/// it is one and the exchange did not already fail for a reason of its own (an HTTP status).
pub fn apply(service: &ServiceIdentity, diagnosis: &mut AddressDiagnosis) {
    let what = service.describe();
    diagnosis.evidence.push(evidence(format!("service {}", service.address), what.clone(), None));
    let Some(expected) = service.expected.filter(|_| service.is_wrong_service()) else { return };
    let overridable = matches!(
        diagnosis.cause,
        Cause::Reachable | Cause::ServerClosed | Cause::TlsError | Cause::HttpError
    );
    if !overridable {
        return;
    }
    let (found, expected) = (service.protocol.label(), expected.label());
    let port = service.address.port();
    diagnosis.cause = Cause::WrongService;
    diagnosis.summary = format!(
        "{} accepts connections, but what answers is {what}, not {expected}: another service \
         listens on port {port}.",
        service.address
    );
    diagnosis.suggestions.insert(
        0,
        format!(
            "Check the port: the {expected} service may listen on another one, or {found} took \
             port {port} (see which process owns it: ss -ltnp 'sport = :{port}')."
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use whyrefused_shared::Protocol;

    fn diagnosis(cause: Cause) -> AddressDiagnosis {
        AddressDiagnosis {
            address: "127.0.0.1".parse().unwrap(),
            cause,
            summary: "as it was".into(),
            suggestions: vec![],
            evidence: vec![],
        }
    }

    fn service(protocol: Protocol, expected: Option<Protocol>) -> ServiceIdentity {
        ServiceIdentity {
            address: "127.0.0.1:5432".parse().unwrap(),
            protocol,
            detail: Some("Server: nginx/1.22.1".into()),
            received_bytes: None,
            expected,
        }
    }

    #[test]
    fn http_answering_a_postgres_port_is_the_wrong_service() {
        let mut found = diagnosis(Cause::Reachable);
        apply(&service(Protocol::Http, Some(Protocol::Postgresql)), &mut found);
        assert_eq!(found.cause, Cause::WrongService);
        assert_eq!(
            found.summary,
            "127.0.0.1:5432 accepts connections, but what answers is HTTP (Server: nginx/1.22.1), \
             not PostgreSQL: another service listens on port 5432."
        );
        assert_eq!(found.evidence[0].result, "HTTP (Server: nginx/1.22.1)");
    }

    #[test]
    fn the_expected_service_or_a_status_of_its_own_keeps_the_cause() {
        let mut right = diagnosis(Cause::Reachable);
        apply(&service(Protocol::Postgresql, Some(Protocol::Postgresql)), &mut right);
        assert_eq!((right.cause, right.summary.as_str()), (Cause::Reachable, "as it was"));
        assert_eq!(right.evidence.len(), 1, "what answers is evidence all the same");
        let mut failing = diagnosis(Cause::ServerError);
        apply(&service(Protocol::Http, Some(Protocol::Tls)), &mut failing);
        assert_eq!(failing.cause, Cause::ServerError);
    }
}
