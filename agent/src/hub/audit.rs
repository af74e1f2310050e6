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

/// Whether a hub's `origin` is what a hub sends: a request id of at most 32 hex digits and a
/// socket address. Only such an origin is written to the audit log as is; another is ignored (a
/// hub cannot start a line of its own in a joined agent's log).
pub fn is_well_formed(origin: &Origin) -> bool {
    let id = &origin.request_id;
    let id_ok = !id.is_empty() && id.len() <= 32 && id.chars().all(|c| c.is_ascii_hexdigit());
    id_ok && origin.peer.parse::<SocketAddr>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_origin_with_a_hex_id_and_a_socket_address_is_taken() {
        let good = asked_here(Some("team"), "[2001:db8::1]:4000".parse().unwrap());
        assert!(is_well_formed(&good));
        let forged = Origin { request_id: "1\nINFO forged".into(), ..good.clone() };
        assert!(!is_well_formed(&forged));
        let odd_peer = Origin { peer: "somewhere\n".into(), ..good };
        assert!(!is_well_formed(&odd_peer));
    }

    #[test]
    fn request_ids_are_sixteen_hex_digits_and_differ() {
        let (first, second) = (new_request_id(), new_request_id());
        assert_eq!(first.len(), 16);
        assert!(first.chars().all(|c| c.is_ascii_hexdigit()), "{first}");
        assert_ne!(first, second);
    }
}
