//! A loopback target checked from inside a container or another network namespace than the
//! host's: 127.0.0.1 there is the namespace's own loopback, which only its own processes
//! listen on, not the host's. Says so, and how to reach the host (`host.docker.internal`, the
//! bridge gateway), with the result of trying the gateway when `--try-host` asked. Decided from
//! the files [`crate::probe::namespace`] read; nothing is sent here.

use whyrefused_shared::{Attempt, ConnectState, Evidence, Verdict};

use crate::probe::namespace::Placement;
use crate::target::{Host, Target};

/// How many signs of a container make one: `/.dockerenv` alone is on build machines that are
/// no container a user would think of.
const CONTAINER_SIGNS: usize = 2;

/// Where the check ran, when not in the host's own network namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inside {
    /// In a container: the signs found.
    Container { signs: Vec<String> },
    /// In another network namespace than PID 1's, or in one `/run/netns` names.
    Namespace { name: Option<String> },
}

/// Where the placement says the check ran, if not in the host's namespace.
pub fn inside(placement: &Placement) -> Option<Inside> {
    if placement.container_signs.len() >= CONTAINER_SIGNS {
        return Some(Inside::Container { signs: placement.container_signs.clone() });
    }
    let name = placement.netns_name.clone();
    match (placement.netns, placement.init_netns) {
        (Some(own), Some(init)) if own != init => Some(Inside::Namespace { name }),
        (Some(_), Some(_)) => None,
        _ => name.map(|name| Inside::Namespace { name: Some(name) }),
    }
}

/// Whether the target is this machine's loopback: a loopback address, `localhost` or a name
/// under it.
pub fn is_loopback(target: &Target) -> bool {
    match &target.host {
        Host::Ip(ip) => ip.is_loopback(),
        Host::Name { ascii, .. } => ascii == "localhost" || ascii.ends_with(".localhost"),
    }
}

/// Adds to a failed loopback check's verdict that it ran inside a container or namespace, how
/// to reach the host, and what the host's gateway answered (`tried`, with `--try-host`).
pub fn annotate(
    target: &Target,
    placement: &Placement,
    tried: Option<&Attempt>,
    verdict: &mut Verdict,
) {
    if verdict.cause.is_reachable() || !is_loopback(target) {
        return;
    }
    let Some(inside) = inside(placement) else {
        if let [sign] = placement.container_signs.as_slice() {
            verdict.evidence.push(evidence(
                "container",
                format!(
                    "only one sign of a container ({sign}): not taken as one, and nothing shows \
                     another network namespace than the host's"
                ),
            ));
        }
        return;
    };
    let loopback = target.host.display();
    let (place, evidence_line) = match &inside {
        Inside::Container { signs } => (
            "inside a container".to_string(),
            evidence("container", format!("signs: {}", signs.join(", "))),
        ),
        Inside::Namespace { name } => {
            let named = name.as_ref().map_or(String::new(), |n| format!(" {n}"));
            let init = match placement.init_netns {
                Some(init) => format!("PID 1's is net:[{init}]"),
                None => "PID 1's cannot be read".into(),
            };
            let own = placement.netns.map_or(String::new(), |n| format!("net:[{n}]"));
            let listed = name.as_ref().map_or(String::new(), |n| format!(", /run/netns/{n}"));
            (
                format!("in the network namespace{named}, not the host's"),
                evidence("network namespace", format!("this check's is {own}{listed}; {init}")),
            )
        }
    };
    verdict.summary = format!(
        "{} This check ran {place}: {loopback} is that namespace's own loopback, which only its \
         own processes listen on, not the host's.",
        verdict.summary
    );
    verdict.evidence.push(evidence_line);
    verdict.suggestions.insert(0, how_to_reach_the_host(&inside, placement, target.port));
    if let Some(attempt) = tried {
        verdict.evidence.push(Evidence {
            probe: format!("try host {}", attempt.socket_addr()),
            result: attempt.state.as_str().replace('_', " "),
            elapsed_us: Some(attempt.elapsed_us),
        });
        if attempt.state == ConnectState::Open {
            verdict.suggestions.insert(
                0,
                format!(
                    "The host answers on {}: point the program there instead of {loopback}.",
                    attempt.socket_addr()
                ),
            );
        }
    }
}

fn how_to_reach_the_host(inside: &Inside, placement: &Placement, port: u16) -> String {
    let gateway = placement.gateway.map(|gw| format!("{gw}:{port}"));
    let via_gateway = gateway.as_ref().map_or(String::new(), |gw| {
        format!(", or this namespace's gateway {gw} (the host's end of the link: the service must listen on it or on 0.0.0.0)")
    });
    match inside {
        Inside::Container { .. } => {
            let alias = match placement.host_alias {
                Some(address) => format!(" (it is {address} here)"),
                None => " (on Linux, start the container with \
                          --add-host=host.docker.internal:host-gateway)"
                    .into(),
            };
            format!(
                "To reach a service on the host, use host.docker.internal{alias}{via_gateway}; \
                 or run the container with --network host. `whyrefused check --try-host` tries \
                 the gateway."
            )
        }
        Inside::Namespace { .. } => format!(
            "The host's services are not on this loopback: reach them through an address the \
             namespace has a route to{via_gateway}, or run the program in the host's namespace. \
             `whyrefused check --try-host` tries the gateway."
        ),
    }
}

fn evidence(probe: &str, result: String) -> Evidence {
    Evidence { probe: probe.into(), result, elapsed_us: None }
}

#[cfg(test)]
mod tests {
    use super::*;
    use whyrefused_shared::Cause;

    fn closed() -> Verdict {
        Verdict {
            cause: Cause::PortClosed,
            summary: "Nothing listens on port 8080 of 127.0.0.1.".into(),
            suggestions: vec![],
            evidence: vec![],
            pattern: None,
        }
    }

    fn placement(signs: &[&str], init: Option<u64>, name: Option<&str>) -> Placement {
        Placement {
            netns: Some(7),
            init_netns: init,
            netns_name: name.map(String::from),
            container_signs: signs.iter().map(|s| s.to_string()).collect(),
            gateway: Some("172.17.0.1".parse().unwrap()),
            host_alias: None,
        }
    }

    #[test]
    fn one_sign_alone_is_not_a_container() {
        assert_eq!(inside(&placement(&["/.dockerenv"], Some(7), None)), None);
        assert_eq!(inside(&placement(&["/.dockerenv"], None, None)), None);
        let two = placement(&["/.dockerenv", "cgroup docker"], Some(7), None);
        assert!(matches!(inside(&two), Some(Inside::Container { .. })));
        let other = placement(&[], Some(1), None);
        assert_eq!(inside(&other), Some(Inside::Namespace { name: None }));
        let named = placement(&[], None, Some("blue"));
        assert_eq!(inside(&named), Some(Inside::Namespace { name: Some("blue".into()) }));
    }

    #[test]
    fn a_container_loopback_says_whose_it_is_and_how_to_reach_the_host() {
        let target = Target::parse("127.0.0.1:8080", None).unwrap();
        let mut verdict = closed();
        let signs = placement(&["/.dockerenv", "cgroup docker"], Some(7), None);
        annotate(&target, &signs, None, &mut verdict);
        assert!(verdict.summary.ends_with(
            "This check ran inside a container: 127.0.0.1 is that namespace's own loopback, \
             which only its own processes listen on, not the host's."
        ));
        assert!(verdict.suggestions[0].contains("host.docker.internal"));
        assert!(verdict.suggestions[0].contains("172.17.0.1:8080"));
        let remote = Target::parse("10.0.0.5:8080", None).unwrap();
        let mut untouched = closed();
        annotate(&remote, &signs, None, &mut untouched);
        assert_eq!(untouched, closed(), "only loopback targets");
    }
}
