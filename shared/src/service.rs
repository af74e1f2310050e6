//! What answers on an open port: the protocol a service speaks, named from the first bytes it
//! sends or its answer to the smallest harmless probe, and the one the scheme or the well-known
//! port expected (a `postgres://` target reaching an HTTP server is the wrong service).

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// A protocol a service speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// HTTP (an answer to a request).
    Http,
    /// TLS (a handshake, or an alert to plain text).
    Tls,
    /// SSH (its banner).
    Ssh,
    /// SMTP (its `220` greeting).
    Smtp,
    /// FTP (its `220` greeting).
    Ftp,
    /// POP3 (`+OK` greeting).
    Pop3,
    /// IMAP (`* OK` greeting).
    Imap,
    /// Redis (an answer to `PING`).
    Redis,
    /// PostgreSQL (the answer to an SSLRequest).
    Postgresql,
    /// MySQL or MariaDB (the server's greeting).
    Mysql,
    /// MongoDB (an answer to `hello`).
    Mongodb,
    /// AMQP, RabbitMQ's protocol (an answer to its protocol header).
    Amqp,
    /// Nothing recognised (or a name from a newer agent).
    #[serde(other)]
    Unknown,
}

impl Protocol {
    /// The protocol as people name it.
    pub fn label(self) -> &'static str {
        match self {
            Protocol::Http => "HTTP",
            Protocol::Tls => "TLS",
            Protocol::Ssh => "SSH",
            Protocol::Smtp => "SMTP",
            Protocol::Ftp => "FTP",
            Protocol::Pop3 => "POP3",
            Protocol::Imap => "IMAP",
            Protocol::Redis => "Redis",
            Protocol::Postgresql => "PostgreSQL",
            Protocol::Mysql => "MySQL",
            Protocol::Mongodb => "MongoDB",
            Protocol::Amqp => "AMQP",
            Protocol::Unknown => "unknown",
        }
    }
}

/// What answers on one open address and port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceIdentity {
    /// The address and port.
    pub address: SocketAddr,
    /// The protocol it speaks ([`Protocol::Unknown`] when nothing matched).
    pub protocol: Protocol,
    /// What it said about itself: the `Server` header, the SSH banner, the database's version,
    /// the certificate's subject and expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// For an unknown service: the most bytes it sent to any probe (0: it stayed silent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_bytes: Option<u32>,
    /// The protocol the target's scheme or well-known port expects, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<Protocol>,
}

impl ServiceIdentity {
    /// The service in words: `HTTP (Server: nginx/1.22.1)`, `unknown, sent 12 bytes`.
    pub fn describe(&self) -> String {
        match (self.protocol, &self.detail, self.received_bytes) {
            (Protocol::Unknown, _, Some(0) | None) => {
                "unknown: it sent nothing to any probe".into()
            }
            (Protocol::Unknown, _, Some(bytes)) => format!("unknown, sent {bytes} bytes"),
            (protocol, Some(detail), _) => format!("{} ({detail})", protocol.label()),
            (protocol, None, _) => protocol.label().to_string(),
        }
    }

    /// Whether a known protocol answered where the scheme or port expected another.
    pub fn is_wrong_service(&self) -> bool {
        match self.expected {
            Some(expected) => self.protocol != Protocol::Unknown && self.protocol != expected,
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(protocol: Protocol, expected: Option<Protocol>) -> ServiceIdentity {
        ServiceIdentity {
            address: "127.0.0.1:5432".parse().unwrap(),
            protocol,
            detail: None,
            received_bytes: None,
            expected,
        }
    }

    #[test]
    fn only_a_known_other_protocol_is_the_wrong_service() {
        assert!(identity(Protocol::Http, Some(Protocol::Postgresql)).is_wrong_service());
        assert!(!identity(Protocol::Postgresql, Some(Protocol::Postgresql)).is_wrong_service());
        assert!(!identity(Protocol::Unknown, Some(Protocol::Postgresql)).is_wrong_service());
        assert!(!identity(Protocol::Http, None).is_wrong_service());
    }

    #[test]
    fn an_unknown_service_says_how_much_it_sent() {
        let mut unknown = identity(Protocol::Unknown, None);
        unknown.received_bytes = Some(12);
        assert_eq!(unknown.describe(), "unknown, sent 12 bytes");
        let json = serde_json::to_value(&unknown).unwrap();
        assert_eq!(json["protocol"], "unknown");
        let newer: Protocol = serde_json::from_str("\"gopher\"").unwrap();
        assert_eq!(newer, Protocol::Unknown);
    }
}
