//! [`PathView`]: where a connection's packets go, as a vertical chain of hops, with the hop
//! after which they die marked in plain words. It updates while the trace runs.

use whyrefused_shared::{CheckRequest, Hop, HopReply, Path};
use yew::prelude::*;

use crate::hooks::AgentLink;

#[derive(Properties, PartialEq)]
pub struct PathViewProps {
    /// The path so far (or finished).
    pub path: Path,
}

/// An ordered list of hops (a screen reader reads "list, N items"); the hop after which the
/// packets are lost carries a sentence saying so, and the whole chain a one-line summary.
#[function_component(PathView)]
pub fn path_view(props: &PathViewProps) -> Html {
    let path = &props.path;
    let label = format!("Path to {} port {}", path.address, path.port);
    html! {
        <div class="path-view" data-reached={path.reached.to_string()}>
            <p class="finding-line path-summary" aria-live="polite">{ summary(path) }</p>
            <ol class="path-chain" aria-label={label}>
                { for path.hops.iter().map(|hop| hop_item(path, hop)) }
            </ol>
        </div>
    }
}

#[derive(Properties, PartialEq)]
pub struct TraceActionProps {
    /// The finished check's request, run again with the trace.
    pub request: CheckRequest,
}

/// "Trace the path": runs the check again with `trace`, so its card shows the path even when
/// the check did not end silent.
#[function_component(TraceAction)]
pub fn trace_action(props: &TraceActionProps) -> Html {
    let link = use_context::<AgentLink>();
    let request = CheckRequest { trace: true, no_trace: false, ..props.request.clone() };
    let ontrace = Callback::from(move |_: MouseEvent| {
        if let Some(link) = &link {
            link.check(request.clone(), None);
        }
    });
    html! {
        <p class="next-step">
            <button type="button" class="trace-path" onclick={ontrace}>{ "Trace the path" }</button>
            <span class="muted">{ "which routers the SYNs to this port pass, hop by hop" }</span>
        </p>
    }
}

/// One sentence: tracing, reached, or lost after which hop.
pub fn summary(path: &Path) -> String {
    if !path.complete {
        return format!("Tracing… {} hops so far", path.hops.len());
    }
    if path.reached {
        let hops = path.hops.len();
        return format!("The SYNs reach {} in {hops} hop{}.", path.address, plural(hops));
    }
    if let Some(hop) = path.unreachable_hop() {
        let from = hop.address.map_or("this host".to_string(), |a| a.to_string());
        return format!("{from} (hop {}) refuses to carry the SYNs on.", hop.ttl);
    }
    match &path.last_answered {
        Some(last) => {
            format!("The SYNs pass {} (hop {}) and are lost after it.", last.address, last.ttl)
        }
        None => "No hop answered: the SYNs are lost at the first hop, a router or, on this network, the target itself.".to_string(),
    }
}

fn hop_item(path: &Path, hop: &Hop) -> Html {
    let dies_after = path.complete
        && !path.reached
        && path.unreachable_hop().is_none()
        && path.last_answered.as_ref().is_some_and(|last| last.ttl == hop.ttl);
    let address = hop.address.map_or("*".to_string(), |a| a.to_string());
    let rtt = hop.rtt_ms.map(|ms| format!("{ms:.2} ms"));
    html! {
        <li
            class={classes!("path-hop", format!("path-hop--{}", hop.reply.as_str()), dies_after.then_some("path-hop--last"))}
            data-ttl={hop.ttl.to_string()}
            data-reply={hop.reply.as_str()}
        >
            <span class="path-ttl" aria-label={format!("hop {}", hop.ttl)}>{ hop.ttl }</span>
            <span class="path-address mono">{ address }</span>
            if let Some(name) = &hop.name {
                <span class="path-name">{ name.clone() }</span>
            }
            <span class="path-reply">{ reply_words(hop) }</span>
            if let Some(rtt) = rtt {
                <span class="path-rtt mono">{ rtt }</span>
            }
            <span class="path-loss">{ format!("{} of {} answered", hop.answered, hop.tries) }</span>
            if dies_after {
                <strong class="path-dies">{ "The packets are lost after this hop." }</strong>
            }
        </li>
    }
}

fn reply_words(hop: &Hop) -> String {
    match hop.reply {
        HopReply::TimeExceeded => "router".to_string(),
        HopReply::Reached => "the target answered".to_string(),
        HopReply::Silent => "no answer".to_string(),
        HopReply::Unreachable => match &hop.icmp {
            Some(icmp) => format!("unreachable: {}", icmp.meaning),
            None => "unreachable from this host".to_string(),
        },
    }
}

fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::render;

    fn hop(ttl: u8, address: Option<&str>, reply: HopReply) -> Hop {
        Hop {
            ttl,
            address: address.map(|a| a.parse().unwrap()),
            name: None,
            reply,
            icmp: None,
            rtt_ms: address.map(|_| 0.42),
            tries: 3,
            answered: u8::from(address.is_some()) * 3,
        }
    }

    fn lost_after_hop_1() -> Path {
        let hops =
            vec![hop(1, Some("10.0.1.1"), HopReply::TimeExceeded), hop(2, None, HopReply::Silent)];
        let address = "10.0.3.2:81".parse().unwrap();
        Path { complete: true, elapsed_us: 10, ..Path::of_hops(address, hops, 30) }
    }

    #[test]
    fn the_hop_after_which_packets_die_is_marked_in_words() {
        let html = render::<PathView>(PathViewProps { path: lost_after_hop_1() });
        assert!(html.contains("The SYNs pass 10.0.1.1 (hop 1) and are lost after it."), "{html}");
        assert_eq!(html.matches("The packets are lost after this hop.").count(), 1, "{html}");
        assert!(html.contains("0.42 ms") && html.contains("0 of 3 answered"), "{html}");
    }

    #[test]
    fn a_trace_still_running_marks_nothing() {
        let mut path = lost_after_hop_1();
        path.complete = false;
        let html = render::<PathView>(PathViewProps { path });
        assert!(html.contains("Tracing…"), "{html}");
        assert!(!html.contains("lost after this hop"), "{html}");
    }
}
