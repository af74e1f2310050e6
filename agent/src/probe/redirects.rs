//! Following HTTP redirects (with `follow`): each `Location` in turn, at most
//! [`MAX_REDIRECTS`], over a fresh connection (to the same address for the same host and
//! port, else to the new host's first address the check's policy allows), keeping the hops.

use std::net::SocketAddr;

use whyrefused_shared::{AfterConnect, HttpRedirect, HttpReport, MAX_REDIRECTS, Phases};

use super::after_connect::{AfterConnectPlan, speak};
use super::tls;
use crate::target::Target;

/// With `follow`: while the answer is a redirect with a `Location`, request that (at most
/// [`MAX_REDIRECTS`] times, only where the check's policy allows), keeping the hops.
pub(super) async fn follow(
    plan: &AfterConnectPlan,
    address: SocketAddr,
    report: &mut AfterConnect,
) {
    let mut current = Hop { plan: plan.clone(), address };
    let mut hops = Vec::new();
    while hops.len() < MAX_REDIRECTS {
        let Some(http) = report.http.as_ref() else { return };
        let (Some(status @ 300..=399), Some(location)) = (http.status, http.header("location"))
        else {
            break;
        };
        let location = location.to_string();
        let Some(next) = current.next(&location).await else { break };
        hops.push(HttpRedirect { status, location });
        let Some(answer) = next.exchange().await else { break };
        report.http = Some(answer);
        current = next;
    }
    if let Some(http) = report.http.as_mut() {
        http.redirects = hops;
    }
}

/// One request of a chain of redirects: where it goes and how.
struct Hop {
    plan: AfterConnectPlan,
    address: SocketAddr,
}

impl Hop {
    /// The hop a `Location` leads to: the same connection's address for the same host and
    /// port, else the new host's first address the policy allows.
    async fn next(&self, location: &str) -> Option<Hop> {
        let mut plan = self.plan.clone();
        if location.contains("://") {
            let target = Target::parse(location, None).ok()?;
            let same = target.host == plan.host && target.port == plan.port;
            plan.tls = target.scheme.as_deref() == Some("https");
            plan.http_path = Some(target.path.clone().unwrap_or_else(|| "/".into()));
            if !same {
                plan.host = target.host;
                plan.port = target.port;
                let address = allowed_address(&plan).await?;
                return Some(Hop { plan, address });
            }
        } else {
            plan.http_path = Some(join_path(plan.http_path.as_deref().unwrap_or("/"), location));
        }
        Some(Hop { plan, address: self.address })
    }

    /// Connects, runs TLS when the hop asks for it, and sends the request.
    async fn exchange(&self) -> Option<HttpReport> {
        let budget = self.plan.budget.as_deref();
        let (_, stream) =
            super::connect::connect_and_keep(self.address, self.plan.deadline, budget).await;
        let mut report = AfterConnect {
            address: self.address,
            early_close: None,
            banner: None,
            tls: None,
            http: None,
            phases: Phases::default(),
        };
        if self.plan.tls {
            let handshake = tls::handshake(stream?, &self.plan.host, self.plan.deadline).await;
            let stream = handshake.stream.filter(|_| handshake.report.ok)?;
            speak(stream, &self.plan, &mut report).await;
        } else {
            speak(stream?, &self.plan, &mut report).await;
        }
        report.http
    }
}

/// The first address of the plan's host that its policy allows, with its port.
async fn allowed_address(plan: &AfterConnectPlan) -> Option<SocketAddr> {
    let policy = plan.follow.as_ref()?;
    let resolution = super::resolve(&plan.host, plan.deadline).await;
    let mut addresses = resolution.addresses.into_iter().map(|ip| SocketAddr::new(ip, plan.port));
    addresses.find(|address| policy.check(*address).is_ok())
}

/// A relative `Location` against the path it came from: `/a/b` and `c` give `/a/c`.
fn join_path(base: &str, location: &str) -> String {
    if location.starts_with('/') {
        return location.to_string();
    }
    let directory = base.rsplit_once('/').map_or("", |(directory, _)| directory);
    format!("{directory}/{location}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_locations_resolve_against_the_requested_path() {
        assert_eq!(join_path("/a/b", "c"), "/a/c");
        assert_eq!(join_path("/a/b", "/login"), "/login");
    }
}
