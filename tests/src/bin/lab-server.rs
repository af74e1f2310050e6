//! A TCP server for the lab, started inside a namespace: `lab-server MODE ADDRESS...`.
//!
//! Modes: `hold` accepts and keeps connections open (a healthy service); `close` accepts and
//! closes at once (a failing server program); `reset` accepts and resets (zero linger);
//! `banner TEXT` accepts, writes TEXT and a newline, and keeps the connection open; `record FILE`
//! accepts, appends a line naming the peer to FILE (created empty at start) and closes, so a
//! test can tell whether anything connected.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mode, rest) = args.split_first().expect("usage: lab-server MODE [TEXT] ADDRESS...");
    let (banner, addresses) = match mode.as_str() {
        "banner" | "record" => (Some(rest[0].clone()), &rest[1..]),
        _ => (None, rest),
    };
    if mode == "record" {
        std::fs::write(banner.as_deref().unwrap_or_default(), "").expect("the record file");
    }
    let listeners: Vec<TcpListener> = addresses
        .iter()
        .map(|address| TcpListener::bind(address).unwrap_or_else(|e| panic!("bind {address}: {e}")))
        .collect();
    let handles: Vec<_> = listeners
        .into_iter()
        .map(|listener| {
            let mode = mode.clone();
            let banner = banner.clone();
            std::thread::spawn(move || serve(&listener, &mode, banner.as_deref()))
        })
        .collect();
    for handle in handles {
        let _ = handle.join();
    }
}

/// Appends a line naming the peer of `stream` to the file at `path`.
fn record(stream: &TcpStream, path: &str) {
    let peer = stream.peer_addr().map_or_else(|e| e.to_string(), |peer| peer.to_string());
    let mut file = std::fs::OpenOptions::new().append(true).create(true).open(path).expect(path);
    let _ = writeln!(file, "connection from {peer}");
}

fn serve(listener: &TcpListener, mode: &str, banner: Option<&str>) {
    let mut held: Vec<TcpStream> = Vec::new();
    for stream in listener.incoming().flatten() {
        match mode {
            "close" => drop(stream),
            "reset" => {
                let socket = socket2::SockRef::from(&stream);
                let _ = socket.set_linger(Some(Duration::ZERO));
                drop(stream);
            }
            "record" => record(&stream, banner.unwrap_or_default()),
            "banner" => {
                let mut stream = stream;
                let _ = writeln!(stream, "{}", banner.unwrap_or_default());
                held.push(stream);
            }
            _ => held.push(stream),
        }
        held.truncate(256);
    }
}
