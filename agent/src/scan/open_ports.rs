//! What a scan finds behind its open ports once the connects are over (at most
//! [`MAX_IDENTIFIED_PORTS`]): what answers on each, when the request asks (`identify`), and
//! when the scanned host is this one, the listening socket behind each with its process,
//! named only to a client that may see it (as a check names its listeners' owners).

use std::net::SocketAddr;

use futures::StreamExt;
use whyrefused_shared::scan::MAX_IDENTIFIED_PORTS;
use whyrefused_shared::{
    AfterConnect, Listener, OWNERS_HIDDEN_FROM_REMOTE, OpenPortsFound, Phases, ServiceIdentity,
};

use super::ScanPlan;
use crate::policy::TargetPolicy;
use crate::probe::{icmp, identify, listeners};
use crate::target::Target;

/// What `plan` finds behind `open` (the open ports, in scan order); `None` when nothing.
pub async fn find(plan: &ScanPlan, open: &[SocketAddr]) -> Option<Box<OpenPortsFound>> {
    let open = &open[..open.len().min(MAX_IDENTIFIED_PORTS)];
    if open.is_empty() {
        return None;
    }
    let services = match plan.identify {
        true => identify_each(plan, open).await,
        false => Vec::new(),
    };
    let mut listeners = local_owners(open).await;
    let owners_hidden = (!plan.show_processes && !listeners.is_empty()).then(|| {
        for listener in &mut listeners {
            (listener.pid, listener.process, listener.command) = (None, None, None);
        }
        OWNERS_HIDDEN_FROM_REMOTE.to_string()
    });
    let found = OpenPortsFound { services, listeners, owners_hidden };
    let empty = found.services.is_empty() && found.listeners.is_empty();
    (!empty).then(|| Box::new(found))
}

/// What answers on each open port, eight at a time, asked as a check asks, under the scan's
/// policy.
async fn identify_each(plan: &ScanPlan, open: &[SocketAddr]) -> Vec<ServiceIdentity> {
    // Each future owns what it reads: a future spawned on the runtime must be `Send` for every
    // lifetime, which borrowed items of a buffered stream do not prove.
    let asked = open.iter().copied().map(|address| {
        let policy = plan.policy.clone();
        async move { identify_one(address, &policy).await }
    });
    let found: Vec<Option<ServiceIdentity>> =
        futures::stream::iter(asked).buffered(8).collect().await;
    found.into_iter().flatten().collect()
}

/// What answers on one open port, under `policy`.
async fn identify_one(address: SocketAddr, policy: &TargetPolicy) -> Option<ServiceIdentity> {
    let target = Target::parse(&address.to_string(), None).ok()?;
    let nothing_yet = AfterConnect {
        address,
        early_close: None,
        banner: None,
        tls: None,
        http: None,
        phases: Phases::default(),
    };
    Some(identify::identify(address, &target, &nothing_yet, policy, None).await)
}

/// The listener of this host behind each open port of one of its own addresses.
async fn local_owners(open: &[SocketAddr]) -> Vec<Listener> {
    let here: Vec<SocketAddr> =
        open.iter().copied().filter(|a| icmp::is_local_address(&a.ip())).collect();
    if here.is_empty() {
        return Vec::new();
    }
    let ports: Vec<u16> = here.iter().map(SocketAddr::port).collect();
    let all = tokio::task::spawn_blocking(move || listeners::listeners_on_ports(&ports))
        .await
        .unwrap_or_default();
    // The socket that takes each open address and port.
    here.iter()
        .filter_map(|open| {
            all.iter()
                .find(|l| {
                    l.address.port() == open.port() && listeners::accepts(&l.address, &open.ip())
                })
                .cloned()
        })
        .collect()
}
