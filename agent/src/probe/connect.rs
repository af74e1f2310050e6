//! One TCP connect to one address, with its own deadline, classified from the OS's answer.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use std::os::fd::AsFd;

use nix::errno::Errno as OsErrno;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpStream;
use whyrefused_shared::{Attempt, ConnectState, Errno, Family, IcmpError};

use super::icmp;
use crate::clock;
use crate::rate::{self, ConnectBudget};

/// Connects to `address` once `budget` allows, giving up after `deadline`, and reports how it
/// went.
///
/// A socket that opens is closed at once with zero linger (a reset instead of a FIN), so probes
/// leave no `TIME_WAIT` behind on either side.
pub async fn connect(
    address: SocketAddr,
    deadline: Duration,
    budget: Option<&ConnectBudget>,
) -> Attempt {
    connect_and_keep(address, deadline, budget).await.0
}

/// Like [`connect`], but hands back the open stream for what follows the connect.
pub async fn connect_and_keep(
    address: SocketAddr,
    deadline: Duration,
    budget: Option<&ConnectBudget>,
) -> (Attempt, Option<TcpStream>) {
    rate::before_connect(budget).await;
    let started_at = clock::now();
    let start = Instant::now();
    let result = tokio::time::timeout(deadline, open(address)).await;
    let elapsed = start.elapsed();
    let (state, errno, icmp, stream) = match result {
        Ok(Ok(stream)) => (ConnectState::Open, None, None, Some(stream)),
        Ok(Err(failure)) => {
            let (state, errno) = classify(&failure.error, failure.icmp.as_ref());
            (state, errno, failure.icmp, None)
        }
        Err(_deadline_passed) => (ConnectState::Timeout, None, None, None),
    };
    let attempt = Attempt {
        address: address.ip(),
        port: address.port(),
        family: Family::of(&address.ip()),
        state,
        errno,
        icmp,
        elapsed_us: clock::micros(elapsed),
        elapsed_ms: clock::millis(elapsed),
        started_at,
    };
    (attempt, stream)
}

/// A failed connect: the OS error and the ICMP error behind it, if the network sent one.
#[derive(Debug)]
pub struct ConnectFailure {
    /// What `connect` returned.
    pub error: io::Error,
    /// The ICMP error queued on the socket (see [`icmp`]).
    pub icmp: Option<IcmpError>,
}

/// Opens a TCP connection with zero linger and ICMP errors queued, so a failure can say which
/// ICMP message (from whom) ended it. The open stream is returned for post-connect probes;
/// dropping it resets the connection.
///
/// The answer is looked for as soon as `connect` returns: to this host's own addresses it has
/// usually arrived by then (loopback delivers the SYN and its reset within the call), and the
/// attempt ends without waiting on the event loop. Otherwise the socket is waited on until it
/// connects or fails.
pub async fn open(address: SocketAddr) -> Result<TcpStream, ConnectFailure> {
    let failed = |error| ConnectFailure { error, icmp: None };
    let socket = nonblocking_socket(address).map_err(failed)?;
    match socket.connect(&address.into()) {
        Ok(()) => {}
        Err(error) if error.raw_os_error() == Some(OsErrno::EINPROGRESS as i32) => {}
        Err(error) => return Err(ConnectFailure { icmp: icmp::take(&socket), error }),
    }
    if let Some(error) = socket.take_error().map_err(failed)? {
        return Err(ConnectFailure { icmp: icmp::take(&socket), error });
    }
    let stream = TcpStream::from_std(std::net::TcpStream::from(socket)).map_err(failed)?;
    stream.writable().await.map_err(failed)?;
    match stream.take_error().map_err(failed)? {
        Some(error) => Err(ConnectFailure { icmp: icmp::take(&stream), error }),
        None => Ok(stream),
    }
}

/// A non-blocking TCP socket for `address`'s family, with zero linger and (best effort: without
/// it the attempt still runs, only without ICMP detail) ICMP errors queued.
fn nonblocking_socket(address: SocketAddr) -> io::Result<Socket> {
    let kind = Type::STREAM.nonblocking().cloexec();
    let socket = Socket::new(Domain::for_address(address), kind, Some(Protocol::TCP))?;
    socket.set_linger(Some(Duration::ZERO))?;
    let _ = icmp::enable(socket.as_fd(), Family::of(&address.ip()));
    Ok(socket)
}

/// Maps a connect error, with the ICMP error behind it if any, to a state; the errno is kept
/// as the socket gave it (for anything but a plain timeout).
///
/// `EACCES`/`EPERM` mean this host forbade the connect, unless an ICMP error from another host
/// caused them: Linux turns an ICMPv6 administratively-prohibited (or source-policy failure,
/// or reject-route) into `EACCES`, where IPv4's administratively-prohibited becomes
/// `EHOSTUNREACH`. Such a rejection is `HostUnreachable` in both families, as
/// [`ConnectState::HostUnreachable`] documents; the errno still says `EACCES`. Likewise a
/// router's ICMPv6 "no route to destination" arrives as `EHOSTUNREACH` where IPv4's "network
/// unreachable" is `ENETUNREACH`: both are `NetworkUnreachable`.
pub fn classify(error: &io::Error, icmp: Option<&IcmpError>) -> (ConnectState, Option<Errno>) {
    let Some(code) = error.raw_os_error() else {
        return (ConnectState::Error, None);
    };
    let os = OsErrno::from_raw(code);
    let state = match os {
        OsErrno::ECONNREFUSED => ConnectState::Refused,
        OsErrno::ETIMEDOUT => ConnectState::Timeout,
        OsErrno::EHOSTUNREACH if icmp.is_some_and(is_icmpv6_no_route) => {
            ConnectState::NetworkUnreachable
        }
        OsErrno::EHOSTUNREACH | OsErrno::EHOSTDOWN => ConnectState::HostUnreachable,
        OsErrno::ENETUNREACH | OsErrno::ENETDOWN => ConnectState::NetworkUnreachable,
        OsErrno::EACCES | OsErrno::EPERM if icmp.is_some_and(|e| !e.from_local) => {
            ConnectState::HostUnreachable
        }
        OsErrno::EACCES | OsErrno::EPERM => ConnectState::PermissionDenied,
        OsErrno::ECONNRESET | OsErrno::ECONNABORTED => ConnectState::Reset,
        _ => ConnectState::Error,
    };
    (state, Some(Errno { code, name: format!("{os:?}") }))
}

/// ICMPv6 destination unreachable, code 0: no route to destination.
fn is_icmpv6_no_route(error: &IcmpError) -> bool {
    error.from.is_ipv6() && (error.icmp_type, error.code) == (1, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state_of(code: i32) -> (ConnectState, String) {
        let (state, errno) = classify(&io::Error::from_raw_os_error(code), None);
        (state, errno.expect("an OS error keeps its errno").name)
    }

    #[test]
    fn os_errors_map_to_states_with_their_names() {
        let cases = [
            (OsErrno::ECONNREFUSED, ConnectState::Refused, "ECONNREFUSED"),
            (OsErrno::ETIMEDOUT, ConnectState::Timeout, "ETIMEDOUT"),
            (OsErrno::EHOSTUNREACH, ConnectState::HostUnreachable, "EHOSTUNREACH"),
            (OsErrno::EHOSTDOWN, ConnectState::HostUnreachable, "EHOSTDOWN"),
            (OsErrno::ENETUNREACH, ConnectState::NetworkUnreachable, "ENETUNREACH"),
            (OsErrno::ENETDOWN, ConnectState::NetworkUnreachable, "ENETDOWN"),
            (OsErrno::EACCES, ConnectState::PermissionDenied, "EACCES"),
            (OsErrno::EPERM, ConnectState::PermissionDenied, "EPERM"),
            (OsErrno::ECONNRESET, ConnectState::Reset, "ECONNRESET"),
            (OsErrno::EADDRNOTAVAIL, ConnectState::Error, "EADDRNOTAVAIL"),
            (OsErrno::EMFILE, ConnectState::Error, "EMFILE"),
        ];
        for (errno, state, name) in cases {
            assert_eq!(state_of(errno as i32), (state, name.to_string()));
        }
    }

    fn sent_by(from: &str, from_local: bool) -> IcmpError {
        let mut error = icmp::describe(Family::Ipv6, 1, 1, from.parse().unwrap());
        error.from_local = from_local;
        error
    }

    #[test]
    fn eacces_from_another_hosts_icmpv6_reject_is_host_unreachable_like_its_ipv4_twin() {
        let eacces = io::Error::from_raw_os_error(OsErrno::EACCES as i32);
        let (state, errno) = classify(&eacces, Some(&sent_by("fd13:2::2", false)));
        assert_eq!(state, ConnectState::HostUnreachable);
        assert_eq!(errno.map(|e| e.name), Some("EACCES".to_string()), "the real errno is kept");
        let ehostunreach = io::Error::from_raw_os_error(OsErrno::EHOSTUNREACH as i32);
        let ipv4 = icmp::describe(Family::Ipv4, 3, 13, "10.0.1.2".parse().unwrap());
        assert_eq!(classify(&ehostunreach, Some(&ipv4)).0, state, "the IPv4 twin's state");
    }

    #[test]
    fn a_routers_icmpv6_no_route_is_network_unreachable_like_ipv4s_net_unreachable() {
        let ehostunreach = io::Error::from_raw_os_error(OsErrno::EHOSTUNREACH as i32);
        let no_route = icmp::describe(Family::Ipv6, 1, 0, "fd13:1::254".parse().unwrap());
        let (state, errno) = classify(&ehostunreach, Some(&no_route));
        assert_eq!(state, ConnectState::NetworkUnreachable);
        assert_eq!(errno.map(|e| e.name), Some("EHOSTUNREACH".to_string()));
        let address = icmp::describe(Family::Ipv6, 1, 3, "fd13:1::254".parse().unwrap());
        assert_eq!(classify(&ehostunreach, Some(&address)).0, ConnectState::HostUnreachable);
    }

    #[test]
    fn eacces_or_eperm_from_this_host_or_without_icmp_is_permission_denied() {
        for code in [OsErrno::EACCES, OsErrno::EPERM] {
            let error = io::Error::from_raw_os_error(code as i32);
            let local = sent_by("fd13:2::1", true);
            assert_eq!(classify(&error, Some(&local)).0, ConnectState::PermissionDenied);
            assert_eq!(classify(&error, None).0, ConnectState::PermissionDenied);
        }
    }

    #[test]
    fn an_error_without_errno_is_a_plain_error() {
        let (state, errno) = classify(&io::Error::other("no errno"), None);
        assert_eq!((state, errno), (ConnectState::Error, None));
    }

    #[tokio::test]
    async fn a_listening_port_is_open_and_a_closed_one_refused() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = connect(listener.local_addr().unwrap(), Duration::from_secs(3), None).await;
        assert_eq!(open.state, ConnectState::Open);
        assert_eq!(open.errno, None);

        let closed_port = listener.local_addr().unwrap();
        drop(listener);
        let closed = connect(closed_port, Duration::from_secs(3), None).await;
        assert_eq!(closed.state, ConnectState::Refused);
        assert_eq!(closed.errno.map(|e| e.name), Some("ECONNREFUSED".to_string()));
        assert_eq!(closed.family, Family::Ipv4);
    }
}
