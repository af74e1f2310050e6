//! Loopback targets with known behaviour: a closed port, a port whose connects hang, and an HTTP
//! server with a fixed answer.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use socket2::{Domain, Socket, Type};

/// A loopback port with nothing listening (bound, then released).
pub fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

/// A loopback port where new connects hang: a listener that never accepts, with its accept
/// queue filled, so the kernel drops further SYNs (as a firewall's DROP would; an agent on this
/// host sees the full queue and says `backlog_full`).
pub struct HangingPort {
    _listener: Socket,
    _fillers: Vec<TcpStream>,
    /// The hanging address.
    pub address: SocketAddr,
}

impl HangingPort {
    /// Creates the listener and fills its queue.
    pub fn new() -> HangingPort {
        let listener = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
        listener.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into()).expect("bind");
        listener.listen(0).expect("listen");
        let address = listener.local_addr().expect("address").as_socket().expect("inet");
        let mut fillers = Vec::new();
        // A backlog of 0 holds one connection; a few more make sure the queue is full.
        for _ in 0..3 {
            if let Ok(stream) = TcpStream::connect_timeout(&address, Duration::from_millis(200)) {
                fillers.push(stream);
            }
        }
        HangingPort { _listener: listener, _fillers: fillers, address }
    }
}

impl Default for HangingPort {
    fn default() -> Self {
        Self::new()
    }
}

/// How many IPv4 sockets on this host are in SYN_SENT towards `port` on loopback: a connect
/// still in flight. Read from `/proc/net/tcp`, as `ss -tn state syn-sent` would.
pub fn syn_sent_to(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp is readable");
    let remote = format!("0100007F:{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.get(2) == Some(&remote.as_str()) && fields.get(3) == Some(&"02")
        })
        .count()
}

/// A loopback HTTP server that answers every request with `response` (a whole HTTP response,
/// head and body), for the test's whole life; returns its port.
pub fn http_server(response: &'static str) -> u16 {
    use std::io::{Read, Write};
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = stream.read(&mut [0; 2048]);
            let _ = stream.write_all(response.as_bytes());
        }
    });
    port
}
