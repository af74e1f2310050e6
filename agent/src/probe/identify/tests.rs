//! Each protocol named against a faithful fake on loopback: a server that sends the real
//! greeting bytes of its kind, or answers the probe as the real server does.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use whyrefused_shared::AfterConnect;

use super::*;

/// How a fake answers one connection: what it sends at once, and what it answers to what it
/// read (nothing: it stays silent).
#[derive(Clone, Copy)]
struct Fake {
    greeting: &'static [u8],
    answer: fn(&[u8]) -> Vec<u8>,
}

fn silent(_: &[u8]) -> Vec<u8> {
    Vec::new()
}

/// Serves `fake` on every connection to a loopback port, for the length of the test.
async fn serve(fake: Fake) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = stream.write_all(fake.greeting).await;
                let mut buffer = vec![0; 4096];
                let Ok(read) = stream.read(&mut buffer).await else { return };
                let _ = stream.write_all(&(fake.answer)(&buffer[..read])).await;
                tokio::time::sleep(Duration::from_secs(2)).await;
            });
        }
    });
    address
}

/// An HTTP server as nginx answers anything that is not its protocol: 400, with its name.
fn nginx(_: &[u8]) -> Vec<u8> {
    b"HTTP/1.1 400 Bad Request\r\nServer: nginx/1.22.1\r\nContent-Type: text/html\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()
}

/// Redis 7 without a password: PONG to PING, its own words to anything else.
fn redis(question: &[u8]) -> Vec<u8> {
    match question.starts_with(b"PING") {
        true => b"+PONG\r\n".to_vec(),
        false => {
            b"-ERR unknown command 'GET', with args beginning with: '/' 'HTTP/1.0' \r\n".to_vec()
        }
    }
}

/// PostgreSQL with ssl = off: `N` to an SSLRequest; anything else closes the connection.
fn postgres(question: &[u8]) -> Vec<u8> {
    match question == [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f] {
        true => b"N".to_vec(),
        false => Vec::new(),
    }
}

/// RabbitMQ: its Connection.Start frame to the AMQP 0-9-1 header, and the header it speaks to
/// anything else.
fn rabbitmq(question: &[u8]) -> Vec<u8> {
    if question != b"AMQP\x00\x00\x09\x01" {
        return b"AMQP\x00\x00\x09\x01".to_vec();
    }
    let mut properties = Vec::new();
    properties.push(7u8);
    properties.extend_from_slice(b"product");
    properties.push(b'S');
    properties.extend_from_slice(&8u32.to_be_bytes());
    properties.extend_from_slice(b"RabbitMQ");
    let mut payload = vec![0, 10, 0, 10, 0, 9];
    payload.extend_from_slice(&(properties.len() as u32).to_be_bytes());
    payload.extend_from_slice(&properties);
    for text in [&b"PLAIN AMQPLAIN"[..], b"en_US"] {
        payload.extend_from_slice(&(text.len() as u32).to_be_bytes());
        payload.extend_from_slice(text);
    }
    let mut frame = vec![1, 0, 0];
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(&payload);
    frame.push(0xce);
    frame
}

/// MongoDB: an OP_MSG reply `{ok: 1.0}` to a hello, answering its request id.
fn mongodb(question: &[u8]) -> Vec<u8> {
    if question.len() < 16 || question[12..16] != 2013i32.to_le_bytes() {
        return Vec::new();
    }
    let mut document = vec![0x01];
    document.extend_from_slice(b"ok\0");
    document.extend_from_slice(&1f64.to_le_bytes());
    document.push(0);
    let size = (document.len() + 4) as i32;
    let mut body = 0u32.to_le_bytes().to_vec();
    body.push(0);
    body.extend_from_slice(&size.to_le_bytes());
    body.extend_from_slice(&document);
    let mut message = ((body.len() + 16) as i32).to_le_bytes().to_vec();
    message.extend_from_slice(&7i32.to_le_bytes());
    message.extend_from_slice(&question[4..8]);
    message.extend_from_slice(&2013i32.to_le_bytes());
    message.extend_from_slice(&body);
    message
}

/// MySQL 8.0's greeting (protocol 10), as a real server sends it on connect.
const MYSQL_GREETING: &[u8] = b"\x4a\x00\x00\x00\x0a8.0.36\x00\x0d\x00\x00\x00\x21\x3b\x5c\x01\x6e\x33\x12\x5a\x00\xff\xff\xff\x02\x00\xff\xdf\x15\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x0d\x19\x49\x38\x6f\x5f\x4e\x47\x2f\x42\x6e\x25\x00caching_sha2_password\x00";

fn target(text: &str) -> Target {
    Target::parse(text, None).unwrap()
}

/// What a plain check's first connection saw: the greeting, if any.
async fn first_look(address: SocketAddr) -> AfterConnect {
    let plan = crate::probe::after_connect::AfterConnectPlan::for_target(
        &target(&address.to_string()),
        &crate::probe::after_connect::Asked::default(),
        Duration::from_secs(1),
    );
    let stream = TcpStream::connect(address).await.unwrap();
    crate::probe::after_connect::after_connect(stream, address, &plan, 0, 0).await
}

async fn identified(fake: Fake, scheme: Option<&str>) -> ServiceIdentity {
    let address = serve(fake).await;
    let after = first_look(address).await;
    let text = match scheme {
        Some(scheme) => format!("{scheme}://{address}"),
        None => address.to_string(),
    };
    identify(address, &target(&text), &after, &TargetPolicy::unrestricted(), None).await
}

#[tokio::test]
async fn each_protocol_is_named_from_its_real_greeting_or_answer() {
    let cases: [(Fake, Protocol, &str); 10] = [
        (Fake { greeting: b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n", answer: silent }, Protocol::Ssh, "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3"),
        (Fake { greeting: b"220 mail.example.com ESMTP Postfix (Debian/GNU)\r\n", answer: silent }, Protocol::Smtp, "220 mail.example.com ESMTP Postfix (Debian/GNU)"),
        (Fake { greeting: b"220 (vsFTPd 3.0.3)\r\n", answer: silent }, Protocol::Ftp, "220 (vsFTPd 3.0.3)"),
        (Fake { greeting: b"+OK Dovecot (Debian) ready.\r\n", answer: silent }, Protocol::Pop3, "+OK Dovecot (Debian) ready."),
        (Fake { greeting: b"* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS AUTH=PLAIN] Dovecot (Debian) ready.\r\n", answer: silent }, Protocol::Imap, "Dovecot (Debian) ready."),
        (Fake { greeting: MYSQL_GREETING, answer: silent }, Protocol::Mysql, "MySQL 8.0.36"),
        (Fake { greeting: b"", answer: nginx }, Protocol::Http, "Server: nginx/1.22.1"),
        (Fake { greeting: b"", answer: redis }, Protocol::Redis, "+PONG"),
        (Fake { greeting: b"", answer: postgres }, Protocol::Postgresql, "no TLS (SSLRequest answered N)"),
        (Fake { greeting: b"", answer: rabbitmq }, Protocol::Amqp, "RabbitMQ"),
    ];
    let all = cases.iter().map(|(fake, protocol, detail)| async move {
        let found = identified(*fake, None).await;
        assert_eq!(found.protocol, *protocol, "{found:?}");
        let said = found.detail.clone().unwrap_or_default();
        assert!(said.contains(detail), "{protocol:?}: {said}");
    });
    futures::future::join_all(all).await;
    let mongo = identified(Fake { greeting: b"", answer: mongodb }, None).await;
    assert_eq!(mongo.protocol, Protocol::Mongodb, "{mongo:?}");
}

#[tokio::test]
async fn a_tls_server_is_named_with_its_certificate_subject_and_expiry() {
    let directory =
        std::env::temp_dir().join(format!("whyrefused-identify-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&directory);
    let source = crate::server::tls::CertificateSource::SelfSigned {
        state_dir: directory.clone(),
        names: vec!["localhost".into()],
    };
    let acceptor = crate::server::tls::server_tls(&source).unwrap().acceptor;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let acceptor = Arc::new(acceptor);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(stream).await {
                    let mut buffer = [0; 64];
                    let _ = tls.read(&mut buffer).await;
                }
            });
        }
    });
    let after = first_look(address).await;
    let found = identify(
        address,
        &target(&address.to_string()),
        &after,
        &TargetPolicy::unrestricted(),
        None,
    )
    .await;
    std::fs::remove_dir_all(&directory).unwrap();
    assert_eq!(found.protocol, Protocol::Tls, "{found:?}");
    let detail = found.detail.unwrap();
    assert_eq!(detail, "CN=rcgen self signed cert, expires 4096-01-01T00:00:00Z");
}

#[tokio::test]
async fn a_postgres_target_reaching_an_http_server_is_the_wrong_service() {
    let found = identified(Fake { greeting: b"", answer: nginx }, Some("postgres")).await;
    assert_eq!((found.protocol, found.expected), (Protocol::Http, Some(Protocol::Postgresql)));
    assert!(found.is_wrong_service());
    let right = identified(Fake { greeting: b"", answer: postgres }, Some("postgres")).await;
    assert_eq!(right.protocol, Protocol::Postgresql);
    assert!(!right.is_wrong_service());
}

#[tokio::test]
async fn a_service_that_says_nothing_recognisable_is_unknown_with_the_bytes_it_sent() {
    fn noise(_: &[u8]) -> Vec<u8> {
        b"\x00\x01\x02 hello?\n".to_vec()
    }
    let found = identified(Fake { greeting: b"", answer: noise }, None).await;
    assert_eq!(found.protocol, Protocol::Unknown);
    assert_eq!(found.received_bytes, Some(11));
    assert_eq!(found.describe(), "unknown, sent 11 bytes");
    let quiet = identified(Fake { greeting: b"", answer: silent }, None).await;
    assert_eq!(quiet.describe(), "unknown: it sent nothing to any probe");
}

#[test]
fn the_scheme_then_the_well_known_port_set_what_is_expected() {
    assert_eq!(expected(&target("postgres://db")), Some(Protocol::Postgresql));
    assert_eq!(expected(&target("https://db:5432")), Some(Protocol::Tls));
    assert_eq!(expected(&target("db:6379")), Some(Protocol::Redis));
    assert_eq!(expected(&target("db:8080")), None);
}

#[test]
fn the_mongodb_hello_is_a_well_formed_op_msg() {
    let hello = mongodb_hello();
    let length = i32::from_le_bytes([hello[0], hello[1], hello[2], hello[3]]);
    assert_eq!(length as usize, hello.len());
    assert_eq!(hello[12..16], 2013i32.to_le_bytes());
    let document = &hello[21..];
    let size = i32::from_le_bytes([document[0], document[1], document[2], document[3]]);
    assert_eq!(size as usize, document.len());
}
