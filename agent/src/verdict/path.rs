//! Where the packets die, in words: the sentence, evidence and suggestion a traced [`Path`]
//! adds to a silent (or unreachable) verdict, honest about what the client cannot tell.
//!
//! A router answers a SYN whose TTL runs out there *before* its forward filter sees it, so
//! "hop N answered and nothing after it" means the SYNs die at hop N's forwarding or anywhere
//! up to the next hop. When the next hop is the target, its own firewall drops them just as
//! well: the client cannot tell the two apart, and says so (a host that answers on other ports
//! makes its own firewall the likelier one, no more).

use whyrefused_shared::{Evidence, HopReply, Path};

use super::evidence;

/// What a path says about where the packets die.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathReading {
    /// A sentence for the verdict's summary.
    pub sentence: String,
    /// The evidence: the hops that answered, and where silence began.
    pub evidence: Vec<Evidence>,
    /// What to look at next, when the path points at a place.
    pub suggestion: Option<String>,
}

/// Where a lossy path's loss starts, from the trace's own tries, as mtr reads it: loss that
/// begins at one hop and persists at every answering hop after it (the target included) starts
/// there; loss at one router alone, with the hops after it clean, is that router rate-limiting
/// its answers, not loss. `None` when the trace's last answering hop lost nothing.
pub fn loss_start(path: &Path) -> Option<String> {
    let answered: Vec<_> = path.hops.iter().filter(|hop| hop.is_answered()).collect();
    // The run of lossy hops that ends the path: none when its last answering hop lost nothing.
    let lossy = answered.iter().rev().take_while(|hop| hop.unanswered() > 0).count();
    let start = answered.len().checked_sub(lossy).filter(|_| lossy > 0).map(|i| answered[i])?;
    let before = answered.iter().rev().find(|hop| hop.ttl < start.ttl);
    let counts = format!("{} of {} tries unanswered", start.unanswered(), start.tries);
    let first = match before {
        Some(clean) => format!(
            "The trace's own tries show where: {} answered every try, and loss starts at {} \
             ({counts})",
            clean.describe(),
            start.describe()
        ),
        None => {
            format!("The trace's own tries lose packets from {} on ({counts})", start.describe())
        }
    };
    Some(match lossy {
        1 => format!("{first}."),
        _ => format!("{first}, and every hop after it loses some too."),
    })
}

/// Reads a finished path. `host_up` is the liveness probes' answer (the host answers on other
/// ports or to an echo), when they ran.
pub fn read(path: &Path, host_up: Option<bool>) -> PathReading {
    let port = path.port;
    let target = path.address;
    let mut reading = PathReading {
        sentence: String::new(),
        evidence: vec![evidence(
            format!("path {}", endpoint(path)),
            hops_line(path),
            Some(path.elapsed_us),
        )],
        suggestion: None,
    };
    if path.reached {
        let hops = match path.hops.len() {
            1 => "1 hop".to_string(),
            n => format!("{n} hops"),
        };
        reading.sentence = format!("Packets to port {port} reach {target}, {hops} away.");
        return reading;
    }
    if let Some(hop) = path.unreachable_hop() {
        reading.sentence = match (&hop.address, &hop.icmp) {
            (Some(address), Some(icmp)) => format!(
                "Packets to port {port} are turned back at {address} (hop {}): {}.",
                hop.ttl, icmp.meaning
            ),
            _ => format!("Packets to port {port} could not leave this host (hop {}).", hop.ttl),
        };
        return reading;
    }
    let Some(last) = &path.last_answered else {
        reading.sentence = format!(
            "No router on the way answered: packets to port {port} are lost before the first \
             hop, or every hop on the way is silent."
        );
        return reading;
    };
    let (address, ttl) = (last.address, last.ttl);
    let passed = format!("Packets to port {port} pass {address} (hop {ttl}) and are lost after it");
    match path.target_ttl {
        Some(target_ttl) if target_ttl > ttl + 1 => {
            let before = target_ttl - ttl;
            reading.sentence = format!("{passed}, {before} hops before {target}.");
            reading.suggestion = Some(format!(
                "Look for a filter on TCP port {port} at {address} (hop {ttl}) or the next hop: \
                 {target} answers other ports {target_ttl} hops away."
            ));
            reading.evidence.push(distance_evidence(path, target_ttl));
        }
        Some(target_ttl) if target_ttl == ttl + 1 => {
            reading.sentence = format!(
                "{passed}; {address} is the last router before {target}, so either it or \
                 {target}'s own firewall drops them{}.",
                likelier(host_up)
            );
            reading.suggestion = Some(format!(
                "Check {target}'s own firewall for TCP port {port}, then the router {address}."
            ));
            reading.evidence.push(distance_evidence(path, target_ttl));
        }
        _ => {
            reading.sentence = format!(
                "{passed}, somewhere before {target}: the next hop drops them, or {address} is \
                 the last router before {target} and its own firewall does{}.",
                likelier(host_up)
            );
            reading.suggestion =
                Some(format!("Look for a filter on TCP port {port} at {address} and beyond it."));
        }
    }
    reading
}

/// The liveness part of an ambiguity: "likelier", never "is".
fn likelier(host_up: Option<bool>) -> &'static str {
    match host_up {
        Some(true) => " (the host answers on other ports, so its own firewall is the likelier one)",
        _ => "",
    }
}

fn endpoint(path: &Path) -> String {
    match path.address {
        std::net::IpAddr::V6(v6) => format!("[{v6}]:{}", path.port),
        v4 => format!("{v4}:{}", path.port),
    }
}

fn distance_evidence(path: &Path, target_ttl: u8) -> Evidence {
    evidence(
        "path distance",
        format!("{} answers another port at hop {target_ttl}", path.address),
        None,
    )
}

/// `hop 1 10.0.1.1 time exceeded 0.31 ms; hop 2 silent (3 tries)`: the listed hops, one
/// clause each, with a note of the silent TTLs tried beyond them.
fn hops_line(path: &Path) -> String {
    let mut parts: Vec<String> = path
        .hops
        .iter()
        .map(|hop| {
            let what = match hop.reply {
                HopReply::TimeExceeded => "time exceeded",
                HopReply::Unreachable => "unreachable",
                HopReply::Reached => "reached",
                HopReply::Silent => return format!("hop {} silent ({} tries)", hop.ttl, hop.tries),
            };
            let address = hop.address.map_or("this host".to_string(), |a| a.to_string());
            let rtt = hop.rtt_ms.map_or(String::new(), |ms| format!(" {ms:.2} ms"));
            format!("hop {} {address} {what}{rtt}", hop.ttl)
        })
        .collect();
    let last_listed = path.hops.last().map_or(0, |hop| hop.ttl);
    if path.max_ttl > last_listed {
        parts.push(format!("silent up to hop {}", path.max_ttl));
    }
    if parts.is_empty() {
        return "no hop answered".to_string();
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use whyrefused_shared::Hop;

    fn hop(ttl: u8, address: Option<&str>, reply: HopReply) -> Hop {
        Hop {
            ttl,
            address: address.map(|a| a.parse().unwrap()),
            name: None,
            reply,
            icmp: None,
            rtt_ms: address.map(|_| 0.3),
            tries: if address.is_some() { 1 } else { 3 },
            answered: u8::from(address.is_some()),
        }
    }

    fn answered(ttl: u8, address: &str, tries: u8, answered: u8) -> Hop {
        let reply = if ttl == 3 { HopReply::Reached } else { HopReply::TimeExceeded };
        Hop { tries, answered, ..hop(ttl, Some(address), reply) }
    }

    #[test]
    fn loss_starts_where_it_begins_and_persists_to_the_target() {
        let target: std::net::SocketAddr = "10.0.2.2:8080".parse().unwrap();
        let lossy = vec![
            answered(1, "10.0.0.1", 1, 1),
            answered(2, "10.0.1.1", 3, 2),
            answered(3, "10.0.2.2", 3, 1),
        ];
        let words = loss_start(&Path::of_hops(target, lossy, 3)).unwrap();
        assert_eq!(
            words,
            "The trace's own tries show where: hop 1 (10.0.0.1) answered every try, and loss \
             starts at hop 2 (10.0.1.1) (1 of 3 tries unanswered), and every hop after it loses \
             some too."
        );
        // A router that drops its own answers while the target answers every try: no loss.
        let rate_limited = vec![
            answered(1, "10.0.0.1", 1, 1),
            answered(2, "10.0.1.1", 3, 1),
            answered(3, "10.0.2.2", 3, 3),
        ];
        assert_eq!(loss_start(&Path::of_hops(target, rate_limited, 3)), None);
    }

    fn lost_after(routers: &[&str], target_ttl: Option<u8>) -> Path {
        let mut hops: Vec<Hop> = routers
            .iter()
            .enumerate()
            .map(|(i, r)| hop(i as u8 + 1, Some(r), HopReply::TimeExceeded))
            .collect();
        hops.push(hop(routers.len() as u8 + 1, None, HopReply::Silent));
        let address = "10.0.3.2:81".parse().unwrap();
        Path { target_ttl, complete: true, elapsed_us: 2_000, ..Path::of_hops(address, hops, 30) }
    }

    #[test]
    fn lost_well_before_the_target_names_the_hop_and_the_distance() {
        let reading = read(&lost_after(&["10.0.1.254"], Some(3)), Some(true));
        assert_eq!(
            reading.sentence,
            "Packets to port 81 pass 10.0.1.254 (hop 1) and are lost after it, 2 hops before \
             10.0.3.2."
        );
        assert!(reading.evidence[0].result.contains("hop 1 10.0.1.254 time exceeded"));
        assert!(reading.evidence[0].result.contains("silent up to hop 30"));
    }

    #[test]
    fn lost_after_the_router_before_the_target_says_either_and_likelier_not_is() {
        let path = lost_after(&["10.0.1.254", "10.0.2.254"], Some(3));
        let reading = read(&path, Some(true));
        assert!(reading.sentence.contains("either it or 10.0.3.2's own firewall"), "{reading:?}");
        assert!(reading.sentence.contains("likelier"), "{reading:?}");
        assert!(!reading.sentence.contains(" is the culprit"));
        let down = read(&path, Some(false));
        assert!(!down.sentence.contains("likelier"), "no liveness, no lean: {down:?}");
    }

    #[test]
    fn without_the_distance_the_silence_is_placed_honestly() {
        let reading = read(&lost_after(&["10.0.1.254"], None), None);
        assert!(reading.sentence.contains("pass 10.0.1.254 (hop 1) and are lost after it"));
        assert!(
            reading.sentence.contains("the next hop drops them, or 10.0.1.254 is the last router")
        );
    }

    #[test]
    fn no_answer_at_all_and_a_reached_target_read_plainly() {
        let none = read(&lost_after(&[], None), Some(false));
        assert!(none.sentence.contains("No router on the way answered"), "{none:?}");
        let mut reached = lost_after(&["10.0.1.254"], None);
        reached.hops[1] = hop(2, Some("10.0.3.2"), HopReply::Reached);
        reached.reached = true;
        assert_eq!(
            read(&reached, None).sentence,
            "Packets to port 81 reach 10.0.3.2, 2 hops away."
        );
    }
}
