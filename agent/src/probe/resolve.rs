//! Resolving a host with the system resolver, as every other program on the agent's host would.
//!
//! `getaddrinfo` honours `/etc/hosts`, `resolv.conf` and nsswitch, so the answer is what the
//! failing program saw. Its error codes tell a name that does not exist (`EAI_NONAME`) from one
//! without addresses (`EAI_NODATA`) and from a resolver failure (`EAI_AGAIN`, `EAI_FAIL`).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use dns_lookup::{AddrInfoHints, LookupError, LookupErrorKind};
use whyrefused_shared::{DnsStatus, Resolution, ResolveMethod};

use crate::clock;
use crate::target::Host;

/// Resolves `host`, giving up waiting after `deadline` (the lookup itself runs on a blocking
/// thread and cannot be stopped, but its answer is no longer awaited).
pub async fn resolve(host: &Host, deadline: Duration) -> Resolution {
    let name = match host {
        Host::Ip(ip) => return literal(*ip),
        Host::Name { ascii, .. } => ascii.clone(),
    };
    let start = Instant::now();
    let lookup = tokio::task::spawn_blocking({
        let name = name.clone();
        move || system_lookup(&name)
    });
    let answer = match tokio::time::timeout(deadline, lookup).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(join_error)) => Err(Failure::new(DnsStatus::Error, join_error.to_string())),
        Err(_) => Err(Failure::new(
            DnsStatus::Timeout,
            format!("no answer from the system resolver within {} ms", deadline.as_millis()),
        )),
    };
    let elapsed_us = clock::micros(start.elapsed());
    let (status, addresses, detail) = match answer {
        Ok(addresses) if addresses.is_empty() => (DnsStatus::NoAddress, addresses, None),
        Ok(addresses) => (DnsStatus::Ok, addresses, None),
        Err(failure) => (failure.status, Vec::new(), Some(failure.detail)),
    };
    Resolution { host: name, method: ResolveMethod::System, status, addresses, detail, elapsed_us }
}

fn literal(ip: IpAddr) -> Resolution {
    Resolution {
        host: ip.to_string(),
        method: ResolveMethod::Literal,
        status: DnsStatus::Ok,
        addresses: vec![ip],
        detail: None,
        elapsed_us: 0,
    }
}

/// A failed lookup: its status and the resolver's own words.
struct Failure {
    status: DnsStatus,
    detail: String,
}

impl Failure {
    fn new(status: DnsStatus, detail: String) -> Failure {
        Failure { status, detail }
    }
}

/// Every distinct address `getaddrinfo` returns for a TCP connection, in its order.
fn system_lookup(name: &str) -> Result<Vec<IpAddr>, Failure> {
    let hints = AddrInfoHints { socktype: nix::libc::SOCK_STREAM, ..AddrInfoHints::default() };
    let answers = dns_lookup::getaddrinfo(Some(name), None, Some(hints)).map_err(failure)?;
    let mut addresses = Vec::new();
    for answer in answers {
        let address =
            answer.map_err(|e| Failure::new(DnsStatus::Error, e.to_string()))?.sockaddr.ip();
        if !addresses.contains(&address) {
            addresses.push(address);
        }
    }
    Ok(addresses)
}

fn failure(error: LookupError) -> Failure {
    let status = match error.kind() {
        LookupErrorKind::NoName => DnsStatus::Nxdomain,
        LookupErrorKind::NoData => DnsStatus::NoAddress,
        _ => DnsStatus::Error,
    };
    Failure::new(status, std::io::Error::from(error).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_ip_literal_is_not_looked_up() {
        let resolution = resolve(&Host::Ip("::1".parse().unwrap()), Duration::from_secs(1)).await;
        assert_eq!(resolution.method, ResolveMethod::Literal);
        assert_eq!(resolution.addresses, vec!["::1".parse::<IpAddr>().unwrap()]);
    }

    #[tokio::test]
    async fn localhost_resolves_through_etc_hosts() {
        let host = Host::Name { ascii: "localhost".into(), display: "localhost".into() };
        let resolution = resolve(&host, Duration::from_secs(5)).await;
        assert_eq!(resolution.status, DnsStatus::Ok, "{resolution:?}");
        assert!(resolution.addresses.iter().all(|ip| ip.is_loopback()), "{resolution:?}");
    }
}
