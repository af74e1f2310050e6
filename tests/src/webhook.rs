//! A webhook receiver on loopback, as the watch tests (CLI and agent-side) point their
//! `--webhook` at: it answers each POST with 204 and hands its JSON body to the test.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

/// A webhook receiver on loopback: every POST's body, in order, through the channel.
pub fn webhook_receiver() -> (SocketAddr, mpsc::Receiver<Value>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let (bodies, received) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(16) {
            let Ok(mut stream) = stream else { continue };
            stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
            let _ = bodies.send(serde_json::from_slice(&body).expect("the webhook body is JSON"));
        }
    });
    (address, received)
}

/// The two changes a watch of a port closed, then opened, then closed again posts, in order,
/// each checked: `port_closed` to `reachable`, then back.
pub fn closed_opened_closed(bodies: &mpsc::Receiver<Value>, patience: Duration) -> (Value, Value) {
    let first = bodies.recv_timeout(patience).expect("the first change is posted");
    let second = bodies.recv_timeout(patience).expect("the second change is posted");
    assert_eq!(
        (first["old_cause"].as_str(), first["new_cause"].as_str()),
        (Some("port_closed"), Some("reachable"))
    );
    assert_eq!(
        (second["old_cause"].as_str(), second["new_cause"].as_str()),
        (Some("reachable"), Some("port_closed"))
    );
    (first, second)
}
