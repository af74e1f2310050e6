//! The probes a check runs: resolving the host and connecting to each address.
//!
//! Each probe returns a plain result value from the protocol crate; none of them emits events or
//! decides anything. [`crate::check`] runs them and [`crate::verdict`] interprets them.

pub mod after_connect;
pub mod connect;
pub mod dns_detail;
pub mod echo;
pub mod firewall;
pub mod host_pressure;
pub mod http;
pub mod icmp;
pub mod identify;
pub mod listeners;
pub mod liveness;
pub mod local_drops;
pub mod local_ports;
pub mod mtu;
pub mod mtu_hops;
pub mod namespace;
pub mod nearby;
pub mod netlink;
pub mod proxy;
pub mod recent;
pub mod redirects;
pub mod repeat;
pub mod resolve;
pub mod shared_sweep;
pub mod sock_diag;
pub mod socks;
pub mod tcp_info;
pub mod tls;
pub mod trace;
pub mod unix_socket;

pub use connect::connect;
pub use resolve::resolve;
