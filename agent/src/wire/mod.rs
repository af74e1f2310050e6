//! The wire: how messages reach a socket and come off it, for every kind of socket the agent
//! has (a client's session, a joined agent's link at the hub, a joining agent's link to its hub).
//!
//! - [`outbox`]: the bounded outbox and the writer task that drains it into frames.
//! - [`codec`]: decoding a text frame into a client message, or a precise rejection.
//! - [`close`]: the close codes and reasons the agent ends sockets with.

pub mod codec;
pub mod outbox;

pub use codec::{Rejection, decode};
pub use outbox::{Frame, Inbox, Outbox, SendError, linger, outbox, write_frames};

/// Close codes (RFC 6455) and the reasons the agent gives with them.
pub mod close {
    pub use axum::extract::ws::close_code::{AWAY, POLICY, PROTOCOL};

    /// The peer left more than its outbox's limit unread.
    pub const TOO_SLOW: &str = "the client does not read its messages: the outbox is full";
    /// The agent is shutting down.
    pub const SHUTTING_DOWN: &str = "the agent is shutting down";
    /// The peer's protocol version differs.
    pub const PROTOCOL_MISMATCH: &str = "protocol version mismatch";
    /// Nothing was asked for the idle timeout.
    pub const IDLE: &str = "idle: nothing was asked for a while (the agent's --idle-timeout-s)";
    /// The hello had no valid token.
    pub const TOKEN_REQUIRED: &str = "a token is required";
    /// A `register` was refused.
    pub const REGISTRATION_REFUSED: &str = "the registration was refused";
    /// A link's peer answered no ping.
    pub const NO_PONG: &str = "no answer to pings";
    /// A joined agent's link ended at the hub.
    pub const LINK_ENDED: &str = "the link ended";
}
