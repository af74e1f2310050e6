//! The page as the agent serves it: compressed at build time and chosen by `Accept-Encoding`,
//! revalidated by a strong ETag, and guarded by a Content-Security-Policy that forbids framing
//! and loading from anywhere else. (The browser tests prove the page still runs under it.)

use std::io::{Read, Write};
use std::net::TcpStream;

use whyrefused_tests::Agent;

/// A raw HTTP/1.1 GET with extra headers: the status line and headers (lower-cased names), and
/// the body's length.
fn get(
    agent: &Agent,
    path: &str,
    headers: &[(&str, &str)],
) -> (String, Vec<(String, String)>, usize) {
    let address = agent.url().trim_start_matches("http://").trim_end_matches('/').to_string();
    let mut stream = TcpStream::connect(&address).expect("the agent listens");
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").expect("a header block");
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines.next().unwrap().to_string();
    let fields = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    (status, fields, response.len() - split - 4)
}

fn header<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields.iter().find(|(n, _)| n == name).map(|(_, value)| value.as_str())
}

#[test]
fn the_wasm_goes_out_gzip_compressed_and_a_reload_costs_a_304() {
    let agent = Agent::start();
    let (status, plain, plain_length) = get(&agent, "/whyrefused_frontend_bg.wasm", &[]);
    assert!(status.contains("200"), "{status}");
    assert_eq!(header(&plain, "content-encoding"), None, "no Accept-Encoding, no coding");

    // A browser's list: gzip is the coding the agent carries.
    let accept = [("Accept-Encoding", "gzip, deflate, br, zstd")];
    let (status, gzip, gzip_length) = get(&agent, "/whyrefused_frontend_bg.wasm", &accept);
    assert!(status.contains("200"), "{status}");
    assert_eq!(header(&gzip, "content-encoding"), Some("gzip"));
    assert_eq!(header(&gzip, "vary"), Some("Accept-Encoding"));
    assert!(gzip_length * 2 < plain_length, "{gzip_length} of {plain_length} bytes");

    let etag = header(&gzip, "etag").expect("a strong ETag").to_string();
    assert!(etag.starts_with('"') && !etag.starts_with("W/"), "{etag}");
    assert_ne!(Some(etag.as_str()), header(&plain, "etag"), "each encoding its own tag");
    let revalidate = [accept[0], ("If-None-Match", etag.as_str())];
    let (status, _, length) = get(&agent, "/whyrefused_frontend_bg.wasm", &revalidate);
    assert!(status.contains("304"), "{status}");
    assert_eq!(length, 0);
}

#[test]
fn the_page_forbids_framing_and_loading_from_anywhere_else() {
    let agent = Agent::start();
    let (status, fields, _) = get(&agent, "/", &[]);
    assert!(status.contains("200"), "{status}");
    let policy = header(&fields, "content-security-policy").expect("a CSP");
    for part in [
        "default-src 'none'",
        "frame-ancestors 'none'",
        "'wasm-unsafe-eval'",
        "'sha256-",
        "img-src data:",
        "connect-src 'self'",
    ] {
        assert!(policy.contains(part), "{part:?} missing from {policy}");
    }
    let scripts = policy.split(';').map(str::trim).find(|d| d.starts_with("script-src")).unwrap();
    assert!(
        !scripts.contains("'unsafe-inline'") && !scripts.contains("'unsafe-eval'"),
        "no inline or eval'd script but the hashed one: {scripts}"
    );
    assert_eq!(header(&fields, "x-frame-options"), Some("DENY"));
    assert_eq!(header(&fields, "x-content-type-options"), Some("nosniff"));
}
