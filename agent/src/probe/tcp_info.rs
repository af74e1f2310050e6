//! `TCP_INFO` of a connected socket: what the kernel knows about a connection that stalled
//! (bytes received in order, segments waiting out of order behind a hole).
//!
//! Neither socket2 nor nix exposes `TCP_INFO`, so this is the agent's one module with `unsafe`:
//! a single `getsockopt` into a zeroed `libc::tcp_info`.
#![allow(unsafe_code)]

use std::io;
use std::mem::{MaybeUninit, offset_of, size_of};
use std::os::fd::{AsRawFd, BorrowedFd};

/// What a stalled connection's `TCP_INFO` tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpInfo {
    /// Bytes received in order (`tcpi_bytes_received`).
    pub bytes_received: u64,
    /// Bytes sent that the peer acknowledged (`tcpi_bytes_acked`, the SYN counting one).
    pub bytes_acked: u64,
    /// Segments received out of order (`tcpi_rcv_ooopack`); `None` on a kernel too old to say.
    pub out_of_order: Option<u32>,
}

/// Reads `TCP_INFO` from the TCP socket `fd`.
pub fn read(fd: BorrowedFd<'_>) -> io::Result<TcpInfo> {
    let mut info = MaybeUninit::<libc::tcp_info>::zeroed();
    let mut length = size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `fd` is a valid open descriptor for the borrow's lifetime; the pointer and
    // `length` describe `info`'s own writable buffer, and the kernel writes at most `length`
    // bytes into it (and lowers `length` to what it wrote).
    let status = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            info.as_mut_ptr().cast(),
            &mut length,
        )
    };
    if status != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `tcp_info` is plain integers, so the zeroed bytes the kernel did not overwrite
    // are valid values too.
    let info = unsafe { info.assume_init() };
    let written = length as usize;
    let covers = |offset: usize, size: usize| written >= offset + size;
    let ooo_offset = offset_of!(libc::tcp_info, tcpi_rcv_ooopack);
    Ok(TcpInfo {
        bytes_received: info.tcpi_bytes_received,
        bytes_acked: info.tcpi_bytes_acked,
        out_of_order: covers(ooo_offset, size_of::<u32>()).then_some(info.tcpi_rcv_ooopack),
    })
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsFd;

    use super::*;

    #[test]
    fn a_loopback_connection_counts_the_bytes_it_received() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        server.write_all(&[7; 3000]).unwrap();
        let mut buffer = [0; 3000];
        client.read_exact(&mut buffer).unwrap();
        let info = read(client.as_fd()).unwrap();
        assert_eq!(info.bytes_received, 3000);
        // The client's acknowledgement may still be on its way: a bounded wait for it.
        let acked = (0..100).find_map(|_| {
            let acked = read(server.as_fd()).unwrap().bytes_acked;
            std::thread::sleep(std::time::Duration::from_millis(10));
            (acked >= 3000).then_some(acked)
        });
        assert_eq!(acked, Some(3000), "the server's data, acknowledged");
        assert_eq!(info.out_of_order, Some(0), "loopback loses nothing");
    }

    #[test]
    fn a_socket_that_is_not_tcp_is_an_error() {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(read(udp.as_fd()).is_err());
    }
}
