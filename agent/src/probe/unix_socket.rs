//! A Unix socket an error names (`/var/run/docker.sock`): does it exist, is it a socket, does
//! a connect to it get through. The connection is closed at once; nothing is sent.

use std::io::ErrorKind;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use serde::Serialize;

/// What a connect to a Unix socket found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SocketState {
    /// A process accepted the connection: the service is up.
    Accepting,
    /// No file at that path: the service is not running, or uses another path.
    Missing,
    /// A file is there, but not a socket.
    NotASocket,
    /// The socket file exists and nothing listens on it (a service that stopped uncleanly).
    Refused,
    /// This user may not connect to it (its mode or group, `docker` for Docker's).
    PermissionDenied,
    /// Another error.
    Failed,
}

impl SocketState {
    /// What it means, in words.
    pub fn meaning(self) -> &'static str {
        match self {
            SocketState::Accepting => "accepts connections: the service behind it is up",
            SocketState::Missing => {
                "does not exist: the service is not running here, or listens at another path"
            }
            SocketState::NotASocket => "is a file, not a socket",
            SocketState::Refused => {
                "exists but nothing listens on it: the service stopped and left its socket behind"
            }
            SocketState::PermissionDenied => {
                "refuses this user: its owner, group or mode does not let this user connect \
                 (Docker's socket takes the docker group)"
            }
            SocketState::Failed => "could not be connected to",
        }
    }

    /// Whether the service behind the socket answered.
    pub fn is_up(self) -> bool {
        self == SocketState::Accepting
    }
}

/// Connects to the Unix socket at `path` and closes the connection at once.
pub fn state(path: &Path) -> SocketState {
    match std::fs::metadata(path) {
        Err(error) if error.kind() == ErrorKind::NotFound => return SocketState::Missing,
        Err(error) if error.kind() == ErrorKind::PermissionDenied => {
            return SocketState::PermissionDenied;
        }
        Err(_) => return SocketState::Failed,
        Ok(metadata) if !metadata.file_type().is_socket() => return SocketState::NotASocket,
        Ok(_) => {}
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => SocketState::Accepting,
        Err(error) => match error.kind() {
            ErrorKind::ConnectionRefused => SocketState::Refused,
            ErrorKind::PermissionDenied => SocketState::PermissionDenied,
            ErrorKind::NotFound => SocketState::Missing,
            _ => SocketState::Failed,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_state_of_a_socket_path_is_told_apart() {
        let directory =
            std::env::temp_dir().join(format!("whyrefused-sock-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        let path = directory.join("service.sock");
        let _ = std::fs::remove_file(&path);
        assert_eq!(state(&path), SocketState::Missing);
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        assert_eq!(state(&path), SocketState::Accepting);
        drop(listener);
        assert_eq!(state(&path), SocketState::Refused, "the file stays after the listener goes");
        let file = directory.join("plain");
        std::fs::write(&file, b"").unwrap();
        assert_eq!(state(&file), SocketState::NotASocket);
        std::fs::remove_dir_all(&directory).unwrap();
    }
}
