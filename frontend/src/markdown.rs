//! A check as Markdown, for "Copy as Markdown": the verdict, its evidence and suggestions, the
//! rounds of a retried check, and the per-address table, ready to paste into a ticket or a chat.

use std::fmt::Write;

use whyrefused_shared::{Attempt, CheckReport, Evidence, Round, Verdict};

use crate::format;

/// The whole check as Markdown. `target` is what the user asked for; the report's parsed target
/// wins when it arrived.
pub fn check_markdown(target: &str, report: &CheckReport) -> String {
    let target = report.target.as_ref().map_or(target, |parsed| parsed.input.as_str());
    let mut out = format!("### whyrefused: `{}`\n", inline_code(target));
    if let Some(verdict) = &report.verdict {
        verdict_section(&mut out, verdict);
    }
    if !report.rounds.is_empty() {
        rounds_section(&mut out, &report.rounds);
    }
    if !report.attempts.is_empty() {
        attempts_section(&mut out, &report.attempts);
    }
    if let Some(elapsed_us) = report.elapsed_us {
        let _ = write!(out, "\nChecked in {}.\n", format::millis(elapsed_us));
    }
    out
}

fn verdict_section(out: &mut String, verdict: &Verdict) {
    let _ = write!(
        out,
        "\n**{}** (`{}`): {}\n",
        format::cause_title(verdict.cause),
        verdict.cause.as_str(),
        one_line(&verdict.summary)
    );
    if let Some(pattern) = verdict.pattern {
        let _ = writeln!(
            out,
            "\nPattern: {} ({}).",
            format::pattern_name(pattern),
            format::pattern_meaning(pattern)
        );
    }
    if !verdict.evidence.is_empty() {
        out.push_str("\n#### Evidence\n\n| probe | result | time |\n|---|---|---|\n");
        for item in &verdict.evidence {
            out.push_str(&evidence_row(item));
        }
    }
    if !verdict.suggestions.is_empty() {
        out.push_str("\n#### What to try\n\n");
        for suggestion in &verdict.suggestions {
            let _ = writeln!(out, "- {}", one_line(suggestion));
        }
    }
}

fn evidence_row(item: &Evidence) -> String {
    let time = item.elapsed_us.map(format::millis).unwrap_or_default();
    format!("| {} | {} | {} |\n", cell(&item.probe), cell(&item.result), time)
}

fn rounds_section(out: &mut String, rounds: &[Round]) {
    out.push_str("\n#### Rounds\n\n| round | cause | time |\n|---|---|---|\n");
    for round in rounds {
        let _ = writeln!(
            out,
            "| {} | `{}` | {} |",
            round.round,
            round.cause.as_str(),
            format::millis(round.elapsed_us)
        );
    }
}

fn attempts_section(out: &mut String, attempts: &[Attempt]) {
    out.push_str("\n#### TCP connects\n\n| address | family | state | time |\n|---|---|---|---|\n");
    for attempt in attempts {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} |",
            attempt.socket_addr(),
            attempt.family.label(),
            cell(&attempt_state(attempt)),
            format::millis(attempt.elapsed_us)
        );
    }
}

/// The state, then the errno and the ICMP error when there are any.
fn attempt_state(attempt: &Attempt) -> String {
    let mut state = format::state_label(attempt.state).to_owned();
    if let Some(errno) = &attempt.errno {
        let _ = write!(state, " ({})", errno.name);
    }
    if let Some(icmp) = &attempt.icmp {
        let _ = write!(state, "; ICMP {}", format::icmp_label(icmp));
    }
    state
}

/// Text made safe for one table cell: no line breaks, and pipes escaped.
fn cell(text: &str) -> String {
    one_line(text).replace('|', "\\|")
}

/// Line breaks would end a list item or a paragraph early: keep each text on one line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A backtick inside inline code would end it: use a look-alike instead.
fn inline_code(text: &str) -> String {
    text.replace('`', "'")
}

#[cfg(test)]
mod tests {
    use super::*;
    use whyrefused_shared::{
        Cause, ConnectState, Errno, Family, IcmpError, Pattern, Timestamp, Verdict,
    };

    fn refused(address: &str) -> Attempt {
        let address = address.parse().unwrap();
        Attempt {
            address,
            port: 5432,
            family: Family::of(&address),
            state: ConnectState::Refused,
            errno: Some(Errno { code: 111, name: "ECONNREFUSED".into() }),
            icmp: None,
            elapsed_us: 61,
            elapsed_ms: 0.061,
            started_at: Timestamp(String::new()),
        }
    }

    fn closed_report() -> CheckReport {
        CheckReport {
            attempts: vec![refused("127.0.0.1")],
            verdict: Some(Verdict {
                cause: Cause::PortClosed,
                summary: "Nothing listens on port 5432 of 127.0.0.1.".into(),
                suggestions: vec!["Start the service.".into(), "Port 5433 is open.".into()],
                evidence: vec![Evidence {
                    probe: "connect 127.0.0.1:5432".into(),
                    result: "refused (ECONNREFUSED)".into(),
                    elapsed_us: Some(61),
                }],
                pattern: None,
            }),
            elapsed_us: Some(1_250),
            ..CheckReport::default()
        }
    }

    #[test]
    fn the_verdict_comes_first_with_its_cause_summary_evidence_and_suggestions() {
        let markdown = check_markdown("127.0.0.1:5432", &closed_report());
        let expected = "### whyrefused: `127.0.0.1:5432`\n\
            \n**Port closed** (`port_closed`): Nothing listens on port 5432 of 127.0.0.1.\n\
            \n#### Evidence\n\n| probe | result | time |\n|---|---|---|\n\
            | connect 127.0.0.1:5432 | refused (ECONNREFUSED) | 0.061 ms |\n\
            \n#### What to try\n\n- Start the service.\n- Port 5433 is open.\n\
            \n#### TCP connects\n\n| address | family | state | time |\n|---|---|---|---|\n\
            | `127.0.0.1:5432` | IPv4 | refused (ECONNREFUSED) | 0.061 ms |\n\
            \nChecked in 1.250 ms.\n";
        assert_eq!(markdown, expected);
    }

    #[test]
    fn an_icmp_error_is_in_the_address_row_with_its_sender() {
        let mut report = closed_report();
        report.attempts[0].icmp = Some(IcmpError {
            icmp_type: 3,
            code: 13,
            meaning: "administratively prohibited".into(),
            from: "127.0.0.1".parse().unwrap(),
            from_local: true,
        });
        let markdown = check_markdown("x", &report);
        assert!(
            markdown.contains(
                "| refused (ECONNREFUSED); ICMP administratively prohibited (type 3, code 13) \
                 from 127.0.0.1 (this host) |"
            ),
            "{markdown}"
        );
    }

    #[test]
    fn pipes_and_line_breaks_cannot_break_the_tables_or_lists() {
        let mut report = closed_report();
        let verdict = report.verdict.as_mut().unwrap();
        verdict.evidence[0].result = "banner: a|b\nc".into();
        verdict.suggestions = vec!["two\nlines".into()];
        let markdown = check_markdown("x", &report);
        assert!(markdown.contains("| banner: a\\|b c |"), "{markdown}");
        assert!(markdown.contains("- two lines\n"), "{markdown}");
    }

    #[test]
    fn retried_checks_list_their_rounds_and_pattern() {
        let mut report = closed_report();
        report.verdict.as_mut().unwrap().pattern = Some(Pattern::Persistent);
        report.rounds = (1..=3)
            .map(|round| Round {
                round,
                at: Timestamp(String::new()),
                cause: Cause::PortClosed,
                http_status: None,
                elapsed_us: 900,
                tries: None,
            })
            .collect();
        let markdown = check_markdown("x", &report);
        assert!(markdown.contains("Pattern: persistent (the same in every round)."), "{markdown}");
        assert!(markdown.contains("| 3 | `port_closed` | 0.900 ms |"), "{markdown}");
    }

    #[test]
    fn a_check_without_a_verdict_yet_still_names_its_target() {
        let markdown = check_markdown("db:`5432`", &CheckReport::default());
        assert_eq!(markdown, "### whyrefused: `db:'5432'`\n");
    }
}
