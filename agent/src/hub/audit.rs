//! Who asked for a request, for the audit log (target `whyrefused::audit`): the token's name,
//! the client's address, and a request id unique across the hub. A hub sends the three with
//! every request it forwards, and the joined agent's audit line repeats them, so one request can
//! be followed across hosts.

use std::net::SocketAddr;

use ring::rand::{SecureRandom, SystemRandom};
use whyrefused_shared::Origin;

/// A new request id: 64 random bits in hex. Unique across the hub (and its restarts) without
/// keeping a counter anywhere.
pub fn new_request_id() -> String {
    let mut bytes = [0u8; 8];
    // The system's random source fails only when the kernel has none; a fixed id then still
    // names the request, just not uniquely.
    let _ = SystemRandom::new().fill(&mut bytes);
    format!("{:016x}", u64::from_be_bytes(bytes))
}

/// A request asked of this agent by the holder of `token` at `peer`, under a new request id.
pub fn asked_here(token: Option<&str>, peer: SocketAddr) -> Origin {
    Origin {
        request_id: new_request_id(),
        token: token.map(str::to_string),
        peer: peer.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_sixteen_hex_digits_and_differ() {
        let (first, second) = (new_request_id(), new_request_id());
        assert_eq!(first.len(), 16);
        assert!(first.chars().all(|c| c.is_ascii_hexdigit()), "{first}");
        assert_ne!(first, second);
    }
}
