//! The path-MTU black hole: decided only by the MSS probe's proof (the default MSS stalled and
//! a smaller one completed the same exchange), never by a stall alone.

use whyrefused_shared::{Cause, Evidence, MtuProbe};

use super::{AddressDiagnosis, evidence};

/// Whether the probe proves a black hole: the default MSS stalled where a smaller one
/// completed the same exchange.
pub fn proves_black_hole(probe: &MtuProbe) -> bool {
    probe.default_stalled() && probe.largest_working_mss().is_some()
}

/// Names the black hole on the diagnosis of a connection that opened and then stalled, when the
/// probe proves one; with no proof, adds the probe's tries as evidence and leaves the cause.
pub fn apply(probe: &MtuProbe, diagnosis: &mut AddressDiagnosis) {
    diagnosis.evidence.extend(tries_evidence(probe));
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
    diagnosis.suggestions = suggestions(mtu, probe.address.is_ipv4());
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
    use whyrefused_shared::MssTry;

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
