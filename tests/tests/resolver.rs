//! `--resolver tls://IP:PORT`: DNS over TLS against a small DoT server this test runs on
//! loopback (its certificate made for 127.0.0.1, trusted through SSL_CERT_FILE),
//! answering every A question with 127.0.0.1; an untrusted certificate is said, not ignored.
//! The target is `localhost`, which the system resolver answers from /etc/hosts: no lookup
//! leaves this host.

use std::net::TcpListener;
use std::process::Command;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use whyrefused::server::tls::{CertificateSource, server_tls};
use whyrefused_tests::agent_binary;

/// The DoT server's certificate and key files.
struct Certificate {
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
}

/// The answer to `query`: the same id and question, and for an A question one record,
/// 127.0.0.1 (an AAAA question gets no record).
fn answer(query: &[u8]) -> Option<Vec<u8>> {
    let mut end = 12;
    while *query.get(end)? != 0 {
        end += 1 + usize::from(query[end]);
    }
    let question_end = end + 5;
    let qtype = u16::from_be_bytes([*query.get(end + 1)?, *query.get(end + 2)?]);
    let is_a = qtype == 1;
    let mut response = vec![query[0], query[1], 0x81, 0x80, 0, 1, 0, u8::from(is_a), 0, 0, 0, 0];
    response.extend_from_slice(query.get(12..question_end)?);
    if is_a {
        response.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]);
    }
    Some(response)
}

/// Serves DNS over TLS on `listener`: length-prefixed questions, each answered.
async fn serve_dot(listener: TcpListener, acceptor: tokio_rustls::TlsAcceptor) {
    listener.set_nonblocking(true).unwrap();
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    loop {
        let Ok((tcp, _)) = listener.accept().await else { return };
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let Ok(mut stream) = acceptor.accept(tcp).await else { return };
            while let Ok(length) = stream.read_u16().await {
                let mut query = vec![0; usize::from(length)];
                if stream.read_exact(&mut query).await.is_err() {
                    return;
                }
                let Some(response) = answer(&query) else { return };
                let length = (response.len() as u16).to_be_bytes();
                let _ = stream.write_all(&[&length[..], &response].concat()).await;
            }
        });
    }
}

fn check(args: &[&str], trust: Option<&std::path::Path>) -> Value {
    let mut command = Command::new(agent_binary());
    command.arg("check").args(args);
    if let Some(file) = trust {
        command.env("SSL_CERT_FILE", file);
    }
    let output = command.output().expect("whyrefused runs");
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("JSON ({e}): {}", String::from_utf8_lossy(&output.stdout)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_over_tls_resolves_with_the_named_server_and_an_untrusted_one_is_said() {
    let directory = tempfile::tempdir().unwrap();
    // An end-entity certificate for 127.0.0.1 (not a CA: webpki refuses a CA as a server's).
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let (cert, key) = (directory.path().join("dot.pem"), directory.path().join("dot-key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let certificate = Certificate { cert, key };
    let source =
        CertificateSource::Files { cert: certificate.cert.clone(), key: certificate.key.clone() };
    let acceptor = server_tls(&source).expect("the certificate loads").acceptor;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let dot = listener.local_addr().unwrap();
    let server = tokio::spawn(serve_dot(listener, acceptor));
    let service = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = service.local_addr().unwrap().port();
    let target = format!("localhost:{port}");
    let resolver = format!("tls://{dot}");
    let args = [target.as_str(), "--json", "--no-trace", "--resolver", &resolver];

    let trusted = tokio::task::spawn_blocking({
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let cert = certificate.cert.clone();
        move || check(&args.iter().map(String::as_str).collect::<Vec<_>>(), Some(&cert))
    })
    .await
    .unwrap();
    assert_eq!(trusted["verdict"]["cause"], "reachable", "{trusted:#}");
    assert_eq!(trusted["dns"]["method"], "resolver");
    assert_eq!(trusted["dns"]["addresses"], serde_json::json!(["127.0.0.1"]));
    let detail = trusted["findings"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["probe"] == "dns_detail"))
        .expect("a dns_detail finding");
    let a = detail["answers"].as_array().unwrap().iter().find(|a| a["record"] == "A").unwrap();
    assert_eq!(
        (a["tls"].clone(), a["server"].clone()),
        (Value::Bool(true), dot.to_string().into())
    );

    let untrusted = tokio::task::spawn_blocking({
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        move || check(&args.iter().map(String::as_str).collect::<Vec<_>>(), None)
    })
    .await
    .unwrap();
    assert_eq!(untrusted["verdict"]["cause"], "dns_error", "{untrusted:#}");
    let said = untrusted.to_string();
    assert!(said.contains("the TLS handshake failed"), "{said}");
    server.abort();
}

#[test]
fn a_resolver_that_is_not_an_address_is_refused_with_the_forms_that_work() {
    let output = Command::new(agent_binary())
        .args(["check", "localhost:80", "--resolver", "dns.google"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("resolver 'dns.google' is not IP[:PORT] or tls://IP[:PORT]"), "{said}");
}
