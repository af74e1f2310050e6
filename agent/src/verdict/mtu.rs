//! The path-MTU black hole: decided only by the MSS probe's proof (the default MSS stalled and
//! a smaller one completed the same exchange), never by a stall alone.

use whyrefused_shared::{Cause, Evidence, MtuProbe, SizedHops};

use super::{AddressDiagnosis, evidence};

/// Whether the probe proves a black hole: the default MSS stalled where a smaller one
/// completed the same exchange.
pub fn proves_black_hole(probe: &MtuProbe) -> bool {
    probe.default_stalled() && probe.largest_working_mss().is_some()
}

/// Names the black hole on the diagnosis of a connection that opened and then stalled, when the
/// probe proves one; with no proof, adds the probe's tries as evidence and leaves the cause.
pub(super) fn apply(probe: &MtuProbe, diagnosis: &mut AddressDiagnosis) {
    diagnosis.evidence.extend(tries_evidence(probe));
    if let Some(hops) = &probe.hops {
        diagnosis.evidence.extend(hops_evidence(hops));
    }
    let (Some(mtu), true) = (probe.implied_mtu(), proves_black_hole(probe)) else { return };
    let from = probe.address.ip();
    diagnosis.cause = Cause::MtuBlackHole;
    diagnosis.summary = if probe.is_upstream() {
        format!(
            "Connections open, but packets larger than about {mtu} bytes sent to {from} never \
             arrive: a router on the way drops them and does not send 'fragmentation needed' \
             back (a firewall blocking ICMP type 3 code 4, or a tunnel)."
        )
    } else {
        format!(
            "Connections open, but packets larger than about {mtu} bytes never arrive from \
             {from}: a router on the way drops them and does not send 'fragmentation needed' (a \
             firewall blocking ICMP type 3 code 4, or a tunnel)."
        )
    };
    if let Some(place) = narrow_link_words(probe, mtu) {
        diagnosis.summary.push(' ');
        diagnosis.summary.push_str(&place);
    }
    diagnosis.suggestions = suggestions(mtu, probe.address.is_ipv4());
}

/// Where the MTU drops, when the routers told: the last router full-size segments reached and
/// the next one, which only small packets reach. Only segments too big for the implied MTU
/// can tell.
fn narrow_link_words(probe: &MtuProbe, mtu: u32) -> Option<String> {
    let hops = probe.hops.as_ref()?;
    if hops.segment_bytes + probe.header_bytes <= mtu {
        return None;
    }
    let (before, beyond) = hops.narrow_link()?;
    let beyond = beyond.describe();
    Some(match before {
        Some(before) => format!(
            "Full-size packets sent toward it get as far as {} and no farther: the link from \
             there to {beyond} is the narrow one.",
            before.describe()
        ),
        None => format!(
            "Full-size packets sent toward it never reach the first router, {beyond}: the link \
             from this host to it is the narrow one."
        ),
    })
}

/// One evidence line per router: whether small and full-size packets expired there.
fn hops_evidence(hops: &SizedHops) -> Vec<Evidence> {
    let size = hops.segment_bytes;
    hops.hops
        .iter()
        .map(|hop| {
            let result = match (hop.small_expired, hop.large_expired) {
                (true, true) => format!("small and full-size ({size} bytes) packets reach it"),
                (true, false) => {
                    format!("small packets reach it, full-size ({size} bytes) ones do not")
                }
                (false, true) => format!("full-size ({size} bytes) packets reach it"),
                (false, false) => "no answer for small or full-size packets".to_string(),
            };
            evidence(hop.describe(), result, None)
        })
        .collect()
}

fn suggestions(mtu: u32, ipv4: bool) -> Vec<String> {
    let icmp = if ipv4 {
        "ICMP type 3 code 4 (fragmentation needed)"
    } else {
        "ICMPv6 type 2 (packet too big)"
    };
    let mss = mtu - if ipv4 { 40 } else { 60 };
    vec![
        format!("Allow {icmp} through the firewalls on the way, so path-MTU discovery works."),
        format!(
            "Or clamp the MSS on the tunnel or router: `iptables -t mangle -A FORWARD -p tcp \
             --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu` (or `--set-mss {mss}`)."
        ),
        format!(
            "Or lower the MTU here to {mtu}: `ip link set dev IFACE mtu {mtu}`, or for this \
             route only `ip route change DESTINATION via GATEWAY mtu {mtu}`."
        ),
    ]
}

/// One evidence line per MSS tried: `mss 536: completed` with its time.
fn tries_evidence(probe: &MtuProbe) -> Vec<Evidence> {
    probe
        .tries
        .iter()
        .map(|attempt| {
            let label = match attempt.default {
                true => format!("mss {} (default)", attempt.mss),
                false => format!("mss {}", attempt.mss),
            };
            let mut result = match attempt.completed {
                true => format!("{} completed", probe.exchange),
                false => format!("{} stalled", probe.exchange),
            };
            if let (false, Some(bytes)) = (attempt.completed, attempt.bytes_received) {
                result.push_str(&format!(": {bytes} bytes received"));
                match attempt.out_of_order {
                    Some(1) => result.push_str(", 1 segment held behind a hole"),
                    Some(held) if held > 1 => {
                        result.push_str(&format!(", {held} segments held behind a hole"))
                    }
                    _ => {}
                }
            }
            evidence(label, result, Some(attempt.elapsed_us))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use whyrefused_shared::{MssTry, SizedHop};

    use super::*;

    fn attempt(mss: u32, default: bool, completed: bool) -> MssTry {
        MssTry {
            mss,
            default,
            completed,
            elapsed_us: 1000,
            bytes_received: Some(0),
            out_of_order: Some(2),
        }
    }

    fn diagnosis() -> AddressDiagnosis {
        AddressDiagnosis {
            address: "10.0.6.2".parse().unwrap(),
            cause: Cause::TlsError,
            summary: "the TLS handshake failed: no handshake within 3000 ms".into(),
            suggestions: Vec::new(),
            evidence: Vec::new(),
        }
    }

    fn probe(tries: Vec<MssTry>) -> MtuProbe {
        MtuProbe {
            address: "10.0.6.2:9443".parse().unwrap(),
            exchange: "TLS handshake".into(),
            tries,
            header_bytes: 40,
            hops: None,
        }
    }

    #[test]
    fn a_small_mss_completing_where_the_default_stalls_is_a_black_hole_with_its_mtu() {
        let mut found = diagnosis();
        let tries =
            vec![attempt(536, false, true), attempt(1460, true, false), attempt(1252, false, true)];
        apply(&probe(tries), &mut found);
        assert_eq!(found.cause, Cause::MtuBlackHole);
        assert!(found.summary.contains("larger than about 1292 bytes never arrive from 10.0.6.2"));
        assert!(found.suggestions[1].contains("--clamp-mss-to-pmtu"));
        assert!(found.suggestions[2].contains("mtu 1292"));
        assert_eq!(found.evidence.len(), 3);
        assert!(found.evidence[1].result.contains("2 segments held behind a hole"));
    }

    fn router(ttl: u8, small_expired: bool, large_expired: bool) -> SizedHop {
        let address = Some(format!("10.0.{ttl}.254").parse().unwrap());
        SizedHop { ttl, address, name: None, small_expired, large_expired }
    }

    fn black_hole_with(hops: Vec<SizedHop>, segment_bytes: u32) -> AddressDiagnosis {
        let tries =
            vec![attempt(536, false, true), attempt(1460, true, false), attempt(1252, false, true)];
        let mut probe = probe(tries);
        probe.hops = Some(SizedHops { segment_bytes, target_ttl: Some(3), hops });
        let mut found = diagnosis();
        apply(&probe, &mut found);
        found
    }

    #[test]
    fn the_routers_name_the_narrow_link_when_they_tell() {
        let found = black_hole_with(vec![router(1, true, true), router(2, true, false)], 1448);
        assert_eq!(found.cause, Cause::MtuBlackHole);
        assert!(
            found.summary.ends_with(
                "Full-size packets sent toward it get as far as hop 1 (10.0.1.254) and no \
                 farther: the link from there to hop 2 (10.0.2.254) is the narrow one."
            ),
            "{}",
            found.summary
        );
        let hop2 = found.evidence.iter().find(|e| e.probe == "hop 2 (10.0.2.254)").unwrap();
        assert_eq!(hop2.result, "small packets reach it, full-size (1448 bytes) ones do not");
    }

    #[test]
    fn routers_that_do_not_tell_or_segments_that_fit_name_no_link() {
        let silent = black_hole_with(vec![router(1, true, true), router(2, false, false)], 1448);
        let fitting = black_hole_with(vec![router(1, true, true), router(2, true, false)], 1200);
        for found in [silent, fitting] {
            assert_eq!(found.cause, Cause::MtuBlackHole);
            assert!(!found.summary.contains("narrow one"), "{}", found.summary);
        }
    }

    #[test]
    fn a_stall_alone_is_no_black_hole() {
        for tries in [
            vec![attempt(536, false, false)],
            vec![attempt(536, false, true), attempt(1460, true, true)],
        ] {
            let mut found = diagnosis();
            apply(&probe(tries), &mut found);
            assert_eq!(found.cause, Cause::TlsError);
        }
    }
}
