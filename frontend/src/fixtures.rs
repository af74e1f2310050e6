//! Port results the unit tests of the scan views build their reports from.

use whyrefused_shared::{ConnectState, IcmpError, PortResult};

/// A result on 127.0.0.1.
pub fn result(port: u16, state: ConnectState) -> PortResult {
    PortResult {
        address: "127.0.0.1".parse().unwrap(),
        port,
        state,
        errno: None,
        icmp: None,
        elapsed_us: 120,
        tries: 1,
        service: None,
    }
}

/// A refused result that an ICMP port-unreachable from the target answered.
pub fn rejected(port: u16) -> PortResult {
    PortResult {
        icmp: Some(IcmpError {
            icmp_type: 3,
            code: 3,
            meaning: "port unreachable".into(),
            from: "127.0.0.1".parse().unwrap(),
            from_local: false,
        }),
        ..result(port, ConnectState::Refused)
    }
}
