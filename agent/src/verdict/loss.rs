//! Packet loss as a cause: a port that answers some connects (a SYN-ACK or a reset) and stays
//! silent on others, with nothing else between them, loses packets on the way. A firewall does
//! not drop some SYNs to a port and pass others, so this is told apart from `filtered` (silent
//! every time) and from a reject (ICMP errors keep their own meaning).

use whyrefused_shared::{Cause, Evidence, Loss, LossFinding, Round, Tries, Verdict};

use super::evidence;

/// Whether these tries show a lossy path: some answered and some not, and no ICMP error among
/// them.
pub fn is_lossy(found: &LossFinding) -> bool {
    found.icmp_errors == 0 && found.loss.answered > 0 && found.loss.answered < found.loss.sent
}

/// What the port is when packets get through: the cause that would hold without the loss.
fn port_when_through(open: bool) -> &'static str {
    if open { "open" } else { "closed (it answers with a reset)" }
}

/// The summary of a lossy port: the rate with its interval, and what the port is.
pub fn summary(endpoint: &str, loss: &Loss, open: bool) -> String {
    format!(
        "Packets to {endpoint} are lost on the way: {}. When they get through, the port is {}. \
         A firewall would drop every try, not some: this is a lossy path (a congested or faulty \
         link, a flapping route, an overloaded device on the way).",
        loss.describe(),
        port_when_through(open),
    )
}

/// What to do about a lossy path to `host`.
pub fn suggestions(host: &str) -> Vec<String> {
    vec![
        format!(
            "Find where the loss starts: `whyrefused trace {host}` or `mtr {host}` shows each hop's \
             answers; look at interface error and drop counters (`ip -s link`) on the hosts and \
             routers on the way."
        ),
        "Until it is fixed, clients need retries with backoff: a lost SYN costs a connect a \
         second or more."
            .into(),
    ]
}

/// The evidence: the tries as counted.
pub fn tries_evidence(found: &LossFinding) -> Evidence {
    evidence(
        format!("loss {}:{}", found.address, found.port),
        format!(
            "{} of {} connects answered ({} open, {} reset): {}",
            found.loss.answered,
            found.loss.sent,
            found.open,
            found.refused,
            found.loss.describe()
        ),
        None,
    )
}

/// For a lossy port: whether another port of the same host (a liveness port that answered)
/// lost packets too over the same time, in words; `None` when it answered every try.
pub fn host_also_lossy(other: &LossFinding) -> Option<String> {
    (other.loss.sent > 0 && other.loss.answered < other.loss.sent).then(|| {
        format!(
            "Port {} of the same host lost {} of {} tries over the same time: the whole path to \
             the host loses packets, not only this port's.",
            other.port,
            other.loss.lost(),
            other.loss.sent
        )
    })
}

/// For a port silent every time: what another port of the same host did over the same time.
/// Every try answered there shows the path does not lose packets, so this port's are dropped;
/// some lost shows loss too, which alone would not silence every try.
pub fn beside_silence(other: &LossFinding) -> Option<String> {
    let (sent, answered) = (other.loss.sent, other.loss.answered);
    match answered {
        _ if sent == 0 => None,
        _ if answered == sent => Some(format!(
            "Port {} of the same host answered all {sent} tries over the same time: the path \
             does not lose packets, this port's are dropped.",
            other.port
        )),
        _ => Some(format!(
            "The path loses packets too (port {} of the same host: {} of {sent} unanswered), but \
             loss alone would not silence every try.",
            other.port,
            other.loss.lost()
        )),
    }
}

/// The evidence of echoes sent over the same time as the further connects.
pub fn echoes_evidence(echoes: &Loss) -> Evidence {
    evidence("icmp echoes", format!("{} of {} answered", echoes.answered, echoes.sent), None)
}

/// The tries of every round together, when each round counted them.
pub fn over_rounds(rounds: &[Round]) -> Option<Tries> {
    rounds
        .iter()
        .map(|round| round.tries)
        .try_fold(Tries::default(), |total, tries| tries.map(|tries| total.plus(tries)))
}

/// The verdict across rounds of a lossy path: the latest silent round's evidence, with the
/// loss counted over every round's tries.
pub fn across_rounds(endpoint: &str, host: &str, tries: Tries, mut verdict: Verdict) -> Verdict {
    let loss = tries.loss();
    verdict.cause = Cause::PacketLoss;
    verdict.summary = summary(endpoint, &loss, tries.open > 0);
    verdict.suggestions = suggestions(host);
    verdict
}

/// Whether rounds that failed only by silence, beside rounds (or tries) that were answered, show
/// a lossy path; a round rejected by ICMP, or any other failure, keeps its own meaning.
pub fn rounds_are_lossy(rounds: &[Round]) -> bool {
    let silent = |cause: Cause| matches!(cause, Cause::Filtered | Cause::NoResponse);
    let answered =
        |cause: Cause| matches!(cause, Cause::Reachable | Cause::PortClosed | Cause::PacketLoss);
    let every_round_silent_or_answered =
        rounds.iter().all(|round| silent(round.cause) || answered(round.cause));
    let some_silence =
        rounds.iter().any(|round| silent(round.cause) || round.cause == Cause::PacketLoss);
    let some_answer = rounds.iter().any(|round| answered(round.cause));
    every_round_silent_or_answered && some_silence && some_answer
}

#[cfg(test)]
mod tests {
    use super::*;
    use whyrefused_shared::Timestamp;

    fn round(cause: Cause, sent: u32, answered: u32) -> Round {
        Round {
            round: 1,
            at: Timestamp("2026-12-02T00:00:00Z".into()),
            cause,
            http_status: None,
            elapsed_us: 1,
            tries: Some(Tries { sent, answered, open: answered }),
        }
    }

    fn finding(sent: u32, answered: u32, icmp_errors: u32) -> LossFinding {
        LossFinding {
            address: "10.0.1.2".parse().unwrap(),
            port: 8080,
            loss: Loss::of(sent, answered),
            open: answered,
            refused: 0,
            icmp_errors,
        }
    }

    #[test]
    fn some_tries_answered_is_lossy_none_or_all_is_not_and_icmp_keeps_its_meaning() {
        assert!(is_lossy(&finding(6, 3, 0)));
        assert!(!is_lossy(&finding(6, 0, 0)), "silent every time: a firewall");
        assert!(!is_lossy(&finding(6, 6, 0)));
        assert!(!is_lossy(&finding(6, 3, 1)), "silence mixed with rejects is not loss");
    }

    #[test]
    fn another_port_of_the_host_tells_whether_the_whole_path_loses_packets() {
        let mut clean = finding(5, 5, 0);
        clean.port = 22;
        let mut lossy = finding(5, 3, 0);
        lossy.port = 22;
        assert_eq!(host_also_lossy(&clean), None);
        assert!(
            host_also_lossy(&lossy).unwrap().starts_with("Port 22 of the same host lost 2 of 5")
        );
        assert!(beside_silence(&clean).unwrap().contains("answered all 5 tries"));
        assert!(beside_silence(&lossy).unwrap().contains("port 22 of the same host: 2 of 5"));
        assert_eq!(beside_silence(&finding(0, 0, 0)), None);
    }

    #[test]
    fn rounds_of_silence_and_answers_are_lossy_and_rejects_are_not() {
        let lossy = [round(Cause::Reachable, 1, 1), round(Cause::Filtered, 6, 0)];
        assert!(rounds_are_lossy(&lossy));
        assert_eq!(over_rounds(&lossy), Some(Tries { sent: 7, answered: 1, open: 1 }));
        assert!(!rounds_are_lossy(&[round(Cause::Filtered, 6, 0), round(Cause::Filtered, 6, 0)]));
        let rejected = [round(Cause::Reachable, 1, 1), round(Cause::FirewallReject, 1, 0)];
        assert!(!rounds_are_lossy(&rejected));
        let refused_and_silent = [round(Cause::PortClosed, 1, 1), round(Cause::Filtered, 6, 0)];
        assert!(rounds_are_lossy(&refused_and_silent));
    }

    #[test]
    fn the_summary_gives_the_rate_its_interval_and_the_port_without_loss() {
        let text = summary("10.0.1.2:8080", &Loss::of(10, 5), true);
        assert!(
            text.contains("about 50% of connects unanswered (5 of 10), 95% CI 24-76%"),
            "{text}"
        );
        assert!(text.contains("the port is open"), "{text}");
    }
}
