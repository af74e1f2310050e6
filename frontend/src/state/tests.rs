//! The page's state under every action: checks and scans folding their events, refusals,
//! cancels, dropped sockets and vantage points.

use std::net::{IpAddr, SocketAddr};

use whyrefused_shared::{
    AfterConnect, Attempt, Cause, CheckEvent, CheckReport, ConnectState, CrossCause, DnsStatus,
    Family, Finding, Outcome, Phases, PortResult, PortRun, PortSource, Resolution, ResolveMethod,
    ScanEvent, ScanProgress, ScanStep, StateCounts, Step, TargetInfo, Timestamp, Verdict,
};

use super::*;

fn reduce(state: State, actions: impl IntoIterator<Item = Action>) -> State {
    let mut state = Rc::new(state);
    for action in actions {
        state = state.reduce(action);
    }
    Rc::unwrap_or_clone(state)
}

fn hello(protocol: u32) -> Action {
    Action::Received(AgentMessage::Hello {
        protocol,
        agent: AgentInfo { version: "0.1.0".into(), hostname: "box".into(), build: None },
        auth_required: false,
    })
}

fn submit(id: u64, target: &str) -> Action {
    Action::Submitted { id: RequestId(id), request: CheckRequest::new(target), from: None }
}

fn event(id: u64, step: Step) -> Action {
    Action::Received(AgentMessage::Event {
        id: RequestId(id),
        vantage: None,
        event: CheckEvent { at: Timestamp("2026-11-24T10:00:00.000000Z".into()), step },
    })
}

fn started(port: u16) -> Step {
    Step::Started {
        target: TargetInfo {
            input: format!("localhost:{port}"),
            host: "localhost".into(),
            display_host: "localhost".into(),
            port,
            port_source: PortSource::Explicit,
            scheme: None,
            path: None,
        },
        timeout_ms: 3000,
    }
}

fn resolved(addresses: &[&str]) -> Step {
    Step::Resolved {
        resolution: Resolution {
            host: "localhost".into(),
            method: ResolveMethod::System,
            status: DnsStatus::Ok,
            addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
            detail: None,
            elapsed_us: 42,
        },
    }
}

fn attempt_started(address: &str) -> Step {
    Step::AttemptStarted { address: address.parse::<SocketAddr>().unwrap() }
}

fn attempt_finished(address: &str, state: ConnectState) -> Step {
    let address: IpAddr = address.parse().unwrap();
    Step::AttemptFinished {
        attempt: Attempt {
            address,
            port: 80,
            family: Family::of(&address),
            state,
            errno: None,
            icmp: None,
            elapsed_us: 87,
            elapsed_ms: 0.087,
            started_at: Timestamp("2026-11-24T10:00:00.000001Z".into()),
        },
    }
}

fn done(outcome: Outcome) -> Step {
    Step::Done { outcome, elapsed_us: 1000 }
}

fn connected() -> State {
    reduce(State::default(), [hello(PROTOCOL_VERSION)])
}

#[test]
fn the_page_starts_connecting_and_connects_on_the_agents_hello() {
    let state = State::default();
    assert_eq!(state.link.wire_name(), "connecting");
    let state = connected();
    assert!(matches!(state.link, LinkStatus::Connected { .. }));
    assert_eq!(state.link.wire_name(), "connected");
}

#[test]
fn a_hello_with_another_protocol_does_not_connect_and_says_why() {
    let state = reduce(State::default(), [hello(PROTOCOL_VERSION + 1)]);
    assert!(!matches!(state.link, LinkStatus::Connected { .. }));
    assert!(state.notice.as_deref().unwrap().contains("protocol version"));
}

#[test]
fn new_checks_come_first_and_earlier_ones_stay() {
    let state = reduce(connected(), [submit(1, "a:1"), submit(2, "b:2")]);
    let ids: Vec<u64> = state.cards.iter().map(|card| card.id().0).collect();
    assert_eq!(ids, [2, 1]);
    assert!(state.cards.iter().all(Card::is_running));
}

#[test]
fn events_fold_into_their_own_checks_report() {
    let state = reduce(
        connected(),
        [
            submit(1, "localhost:80"),
            submit(2, "localhost:81"),
            event(1, started(80)),
            event(1, resolved(&["::1", "127.0.0.1"])),
            event(1, attempt_started("[::1]:80")),
            event(1, attempt_started("127.0.0.1:80")),
            event(1, attempt_finished("127.0.0.1", ConnectState::Open)),
        ],
    );
    let check = state.check(RequestId(1)).unwrap();
    assert_eq!(check.report.target.as_ref().unwrap().port, 80);
    let rows = check.address_rows();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].address.to_string(), "::1");
    assert_eq!(rows[0].progress, RowProgress::Connecting);
    assert!(matches!(&rows[1].progress, RowProgress::Finished(a) if a.state == ConnectState::Open));
    assert_eq!(*state.check(RequestId(2)).unwrap().report, CheckReport::default());
}

#[test]
fn a_verdict_and_done_complete_a_check() {
    let verdict = Verdict {
        cause: Cause::PortClosed,
        summary: "closed".into(),
        suggestions: vec![],
        evidence: vec![],
        pattern: None,
    };
    let state = reduce(
        connected(),
        [
            submit(1, "localhost:80"),
            event(1, started(80)),
            event(1, Step::Verdict { verdict }),
            event(1, done(Outcome::Completed)),
        ],
    );
    let check = state.check(RequestId(1)).unwrap();
    assert_eq!(check.phase(), Phase::Completed);
    assert!(check.is_done());
    assert_eq!(check.report.verdict.as_ref().unwrap().cause, Cause::PortClosed);
}

#[test]
fn the_stored_id_that_follows_done_is_kept_for_the_cards_link() {
    let stored = |id: u64, result: &str| {
        Action::Received(AgentMessage::Stored {
            id: RequestId(id),
            vantage: None,
            result: result.into(),
        })
    };
    let state = reduce(
        connected(),
        [submit(1, "localhost:80"), event(1, done(Outcome::Completed)), stored(1, "r7k2")],
    );
    let check = state.check(RequestId(1)).unwrap();
    assert_eq!(check.phase(), Phase::Completed, "the id changes nothing else");
    assert_eq!(check.stored.as_deref(), Some("r7k2"));
    let unknown = reduce(state, [stored(9, "zz")]);
    assert_eq!(unknown.cards.len(), 1, "an id for no card is dropped");
}

#[test]
fn only_a_check_with_retries_plans_rounds_and_they_count_the_first() {
    let mut check = Check::new(RequestId(1), CheckRequest::new("a:1"), None);
    assert_eq!(check.rounds_planned(), None);
    check.request.retries = Some(0);
    assert_eq!(check.rounds_planned(), None);
    check.request.retries = Some(2);
    assert_eq!(check.rounds_planned(), Some(3));
}

#[test]
fn the_waterfall_comes_from_the_first_connection_that_opened() {
    let opened = |address: &str, connect_us: u64| Step::Finding {
        finding: Finding::AfterConnect(Box::new(AfterConnect {
            address: address.parse().unwrap(),
            early_close: None,
            banner: None,
            tls: None,
            http: None,
            phases: Phases { connect_us, ..Phases::default() },
        })),
    };
    let state = reduce(connected(), [submit(1, "localhost:80")]);
    assert_eq!(state.check(RequestId(1)).unwrap().first_opened(), None);
    let state =
        reduce(state, [event(1, opened("127.0.0.1:80", 120)), event(1, opened("[::1]:80", 90))]);
    let first = state.check(RequestId(1)).unwrap().first_opened().unwrap();
    assert_eq!(first.phases.connect_us, 120);
}

#[test]
fn resolved_addresses_not_tried_yet_are_waiting() {
    let state =
        reduce(connected(), [submit(1, "localhost:80"), event(1, resolved(&["127.0.0.1"]))]);
    let rows = state.check(RequestId(1)).unwrap().address_rows();
    assert_eq!(rows[0].progress, RowProgress::Waiting);
}

#[test]
fn an_error_for_a_check_is_shown_on_its_card_and_ends_it() {
    let error = AgentMessage::Error {
        id: Some(RequestId(1)),
        code: ErrorCode::InvalidTarget,
        message: "port 0 is not a valid port".into(),
    };
    let state = reduce(connected(), [submit(1, "x:0"), Action::Received(error)]);
    let check = state.check(RequestId(1)).unwrap();
    assert_eq!(check.phase(), Phase::Failed);
    assert!(check.is_done());
    assert_eq!(check.error.as_ref().unwrap().message, "port 0 is not a valid port");
    assert_eq!(state.notice, None);
}

#[test]
fn an_error_without_a_check_becomes_the_notice() {
    let error = AgentMessage::Error {
        id: None,
        code: ErrorCode::MalformedMessage,
        message: "not JSON".into(),
    };
    let state = reduce(connected(), [Action::Received(error)]);
    assert_eq!(state.notice.as_deref(), Some("not JSON"));
}

#[test]
fn a_late_unknown_request_after_a_cancel_is_ignored() {
    let late = AgentMessage::Error {
        id: Some(RequestId(1)),
        code: ErrorCode::UnknownRequest,
        message: "request #1 is not running".into(),
    };
    let state = reduce(
        connected(),
        [
            submit(1, "localhost:80"),
            Action::CancelRequested(RequestId(1)),
            event(1, done(Outcome::Cancelled)),
            Action::Received(late),
        ],
    );
    let check = state.check(RequestId(1)).unwrap();
    assert_eq!(check.phase(), Phase::Cancelled);
    assert_eq!(check.error, None);
    assert_eq!(state.notice, None);
}

#[test]
fn cancelling_marks_the_check_until_done_arrives() {
    let state = reduce(
        connected(),
        [
            submit(1, "localhost:80"),
            event(1, resolved(&["127.0.0.1"])),
            event(1, attempt_started("127.0.0.1:80")),
            Action::CancelRequested(RequestId(1)),
        ],
    );
    assert!(state.check(RequestId(1)).unwrap().cancel_requested);
    let state = reduce(state, [event(1, done(Outcome::Cancelled))]);
    let check = state.check(RequestId(1)).unwrap();
    assert_eq!(check.phase(), Phase::Cancelled);
    assert_eq!(check.address_rows()[0].progress, RowProgress::NotFinished);
}

#[test]
fn a_dropped_socket_interrupts_running_checks_only() {
    let state = reduce(
        connected(),
        [
            submit(1, "localhost:80"),
            event(1, done(Outcome::Completed)),
            submit(2, "localhost:81"),
            Action::Disconnected { retry_in_ms: 500, reason: None },
        ],
    );
    assert_eq!(state.link.wire_name(), "disconnected");
    assert_eq!(state.check(RequestId(1)).unwrap().phase(), Phase::Completed);
    let interrupted = state.check(RequestId(2)).unwrap();
    assert_eq!(interrupted.phase(), Phase::Interrupted);
    assert!(!interrupted.is_done());
}

#[test]
fn connects_in_flight_when_the_socket_drops_are_no_longer_shown_as_connecting() {
    let state = reduce(
        connected(),
        [
            submit(1, "localhost:80"),
            event(1, resolved(&["127.0.0.1"])),
            event(1, attempt_started("127.0.0.1:80")),
            Action::Disconnected { retry_in_ms: 500, reason: None },
        ],
    );
    let rows = state.check(RequestId(1)).unwrap().address_rows();
    assert_eq!(rows[0].progress, RowProgress::NotFinished);
}

#[test]
fn events_for_an_interrupted_or_unknown_check_are_dropped() {
    let state = reduce(
        connected(),
        [
            submit(1, "localhost:80"),
            Action::Disconnected { retry_in_ms: 500, reason: None },
            Action::Connecting,
            hello(PROTOCOL_VERSION),
            event(1, started(80)),
            event(9, started(80)),
        ],
    );
    assert!(matches!(state.link, LinkStatus::Connected { .. }));
    assert_eq!(*state.check(RequestId(1)).unwrap().report, CheckReport::default());
    assert_eq!(state.cards.len(), 1);
}

fn scan_submit(id: u64, ports: &str) -> Action {
    Action::ScanSubmitted {
        id: RequestId(id),
        request: ScanRequest::new("127.0.0.1", ports),
        from: None,
    }
}

fn scan_event(id: u64, step: ScanStep) -> Action {
    Action::Received(AgentMessage::Scan {
        id: RequestId(id),
        vantage: None,
        event: ScanEvent { at: Timestamp("2026-11-25T10:00:00.000000Z".into()), step },
    })
}

fn scan_started(ports: &str, port_count: u32) -> ScanStep {
    ScanStep::Started {
        target: "127.0.0.1".into(),
        ports: ports.into(),
        port_count,
        timeout_ms: 1000,
        retries: 1,
    }
}

fn scan_resolved() -> ScanStep {
    ScanStep::Resolved {
        resolution: Resolution {
            host: "127.0.0.1".into(),
            method: ResolveMethod::Literal,
            status: DnsStatus::Ok,
            addresses: vec!["127.0.0.1".parse().unwrap()],
            detail: None,
            elapsed_us: 1,
        },
        addresses: vec!["127.0.0.1".parse().unwrap()],
        window: 512,
        problem: None,
        denied: Vec::new(),
    }
}

fn batch(done: u64, open: &[u16], refused: &[(u16, u16)]) -> ScanStep {
    let address: IpAddr = "127.0.0.1".parse().unwrap();
    ScanStep::Progress(ScanProgress {
        done,
        total: 100,
        rate_per_s: 5000.0,
        eta_ms: Some(10),
        results: open
            .iter()
            .map(|port| PortResult {
                address,
                port: *port,
                state: ConnectState::Open,
                errno: None,
                icmp: None,
                elapsed_us: 40,
                tries: 1,
                service: None,
            })
            .collect(),
        refused: refused
            .iter()
            .map(|(first, last)| PortRun { address, first: *first, last: *last })
            .collect(),
    })
}

fn scan_done(outcome: Outcome, open: u64, refused: u64) -> ScanStep {
    ScanStep::Done {
        outcome,
        counts: StateCounts { open, refused, ..StateCounts::default() },
        elapsed_us: 20_000,
        loss: None,
        found: None,
    }
}

#[test]
fn scan_batches_fold_into_the_scans_report_until_done() {
    let state = reduce(
        connected(),
        [
            scan_submit(1, "1-100"),
            scan_event(1, scan_started("1-100", 100)),
            scan_event(1, scan_resolved()),
            scan_event(1, batch(60, &[22], &[(1, 21), (23, 60)])),
        ],
    );
    let scan = state.scan(RequestId(1)).unwrap();
    assert_eq!(scan.phase(), Phase::Running);
    assert_eq!((scan.report.done, scan.report.total), (60, 100));
    assert_eq!(scan.report.state_of("127.0.0.1".parse().unwrap(), 22), Some(ConnectState::Open));
    assert_eq!(scan.report.refused.len(), 2);

    let state = reduce(
        state,
        [
            scan_event(1, batch(100, &[], &[(61, 100)])),
            scan_event(1, scan_done(Outcome::Completed, 1, 99)),
            // Nothing more is taken once it is done.
            scan_event(1, batch(100, &[99], &[])),
        ],
    );
    let scan = state.scan(RequestId(1)).unwrap();
    assert_eq!(scan.phase(), Phase::Completed);
    assert!(scan.is_done());
    assert_eq!(
        scan.report.refused,
        [
            PortRun { address: "127.0.0.1".parse().unwrap(), first: 1, last: 21 },
            PortRun { address: "127.0.0.1".parse().unwrap(), first: 23, last: 100 }
        ]
    );
    assert_eq!(scan.report.counts.total(), 100);
    assert_eq!(scan.report.results.len(), 1);
}

#[test]
fn a_scan_shows_what_was_asked_until_the_agent_echoes_it() {
    let state = reduce(
        connected(),
        [Action::ScanSubmitted {
            id: RequestId(1),
            request: ScanRequest { ports: None, ..ScanRequest::new("db", "") },
            from: None,
        }],
    );
    let scan = state.scan(RequestId(1)).unwrap();
    assert_eq!((scan.target(), scan.ports()), ("db", "top1000"));
    let state = reduce(state, [scan_event(1, scan_started("1-10", 10))]);
    let scan = state.scan(RequestId(1)).unwrap();
    assert_eq!((scan.target(), scan.ports()), ("127.0.0.1", "1-10"));
}

#[test]
fn an_error_for_a_scan_is_shown_on_its_card_and_ends_it() {
    let error = AgentMessage::Error {
        id: Some(RequestId(2)),
        code: ErrorCode::InvalidPorts,
        message: "port 0 is out of range: ports run from 1 to 65535".into(),
    };
    let state =
        reduce(connected(), [submit(1, "a:1"), scan_submit(2, "0-10"), Action::Received(error)]);
    let scan = state.scan(RequestId(2)).unwrap();
    assert_eq!(scan.phase(), Phase::Failed);
    assert!(scan.is_done());
    assert_eq!(scan.error.as_ref().unwrap().code, ErrorCode::InvalidPorts);
    assert_eq!(state.check(RequestId(1)).unwrap().error, None, "the check is untouched");
    assert_eq!(state.notice, None);
}

#[test]
fn cancelling_a_scan_marks_it_until_done_and_a_late_unknown_request_is_ignored() {
    let late = AgentMessage::Error {
        id: Some(RequestId(1)),
        code: ErrorCode::UnknownRequest,
        message: "request #1 is not running".into(),
    };
    let state = reduce(
        connected(),
        [
            scan_submit(1, "1-100"),
            scan_event(1, scan_started("1-100", 100)),
            Action::CancelRequested(RequestId(1)),
        ],
    );
    assert!(state.scan(RequestId(1)).unwrap().cancel_requested);
    let state =
        reduce(state, [scan_event(1, scan_done(Outcome::Cancelled, 0, 0)), Action::Received(late)]);
    let scan = state.scan(RequestId(1)).unwrap();
    assert_eq!(scan.phase(), Phase::Cancelled);
    assert_eq!(scan.error, None);
    assert_eq!(state.notice, None);
}

#[test]
fn a_dropped_socket_interrupts_running_scans_and_their_late_batches_are_dropped() {
    let state = reduce(
        connected(),
        [
            scan_submit(1, "1-100"),
            scan_event(1, scan_done(Outcome::Completed, 0, 0)),
            scan_submit(2, "1-100"),
            scan_event(2, batch(10, &[], &[(1, 10)])),
            Action::Disconnected { retry_in_ms: 500, reason: None },
            scan_event(2, batch(20, &[], &[(11, 20)])),
        ],
    );
    assert_eq!(state.scan(RequestId(1)).unwrap().phase(), Phase::Completed);
    let interrupted = state.scan(RequestId(2)).unwrap();
    assert_eq!(interrupted.phase(), Phase::Interrupted);
    assert!(!interrupted.is_done());
    assert_eq!(interrupted.report.done, 10);
}

#[test]
fn checks_and_scans_share_one_list_newest_first() {
    let state = reduce(connected(), [submit(1, "a:1"), scan_submit(2, "top100"), submit(3, "b:2")]);
    let ids: Vec<u64> = state.cards.iter().map(|card| card.id().0).collect();
    assert_eq!(ids, [3, 2, 1]);
    assert!(matches!(&state.cards[1], Card::Scan(scan) if scan.id == RequestId(2)));
}

#[test]
fn an_event_copies_only_the_report_of_the_check_it_is_about() {
    let state = reduce(connected(), [submit(1, "a:1"), scan_submit(2, "1-100"), submit(3, "b:2")]);
    let check = Rc::clone(&state.check(RequestId(1)).unwrap().report);
    let scan = Rc::clone(&state.scan(RequestId(2)).unwrap().report);
    let state = reduce(state, [event(3, started(80))]);
    assert!(Rc::ptr_eq(&check, &state.check(RequestId(1)).unwrap().report));
    assert!(Rc::ptr_eq(&scan, &state.scan(RequestId(2)).unwrap().report));
    assert_eq!(state.check(RequestId(3)).unwrap().report.target.as_ref().unwrap().port, 80);
}

#[test]
fn an_update_copies_only_the_report_of_the_scan_it_is_about() {
    let state = reduce(connected(), [scan_submit(1, "1-100"), scan_submit(2, "1-100")]);
    let before = Rc::clone(&state.scan(RequestId(1)).unwrap().report);
    let state = reduce(state, [scan_event(2, batch(10, &[], &[(1, 10)]))]);
    assert!(Rc::ptr_eq(&before, &state.scan(RequestId(1)).unwrap().report));
}

#[test]
fn a_reconnect_clears_an_old_notice() {
    let state = reduce(connected(), [Action::Unreadable("expected value".into())]);
    assert!(state.notice.is_some());
    let state = reduce(state, [Action::Connecting, hello(PROTOCOL_VERSION)]);
    assert_eq!(state.notice, None);
}

#[test]
fn an_agent_that_wants_a_token_blocks_requests_until_it_is_greeted_with_one() {
    let state = reduce(State::default(), vec![Action::TokenNeeded { problem: None }]);
    assert!(matches!(state.link, LinkStatus::NeedsToken { problem: None }));
    assert_eq!(state.link.wire_name(), "needs-token");
    let refused = Some("The agent refused that token.".to_string());
    let actions = [hello(PROTOCOL_VERSION), Action::TokenNeeded { problem: refused.clone() }];
    let state = reduce(State::default(), actions);
    assert_eq!(state.link, LinkStatus::NeedsToken { problem: refused });
    let actions = [Action::TokenNeeded { problem: None }, hello(PROTOCOL_VERSION)];
    let state = reduce(State::default(), actions);
    assert!(matches!(state.link, LinkStatus::Connected { .. }), "greeted once a token is sent");
}

fn submit_from(id: u64, target: &str, from: &[&str]) -> Action {
    Action::Submitted {
        id: RequestId(id),
        request: CheckRequest::new(target),
        from: Some(from.iter().map(|name| name.to_string()).collect()),
    }
}

fn tagged(id: u64, vantage: &str, step: Step) -> Action {
    Action::Received(AgentMessage::Event {
        id: RequestId(id),
        vantage: Some(vantage.into()),
        event: CheckEvent { at: Timestamp("2026-11-24T10:00:00.000000Z".into()), step },
    })
}

fn verdict(cause: Cause) -> Step {
    Step::Verdict {
        verdict: Verdict {
            cause,
            summary: String::new(),
            suggestions: vec![],
            evidence: vec![],
            pattern: None,
        },
    }
}

fn cross(id: u64, cause: CrossCause) -> Action {
    Action::Received(AgentMessage::VantagesDone {
        id: RequestId(id),
        verdict: CrossVerdict {
            cause,
            summary: "Every vantage point sees the same.".into(),
            details: vec![],
            vantages: vec![],
            router_rule: None,
        },
    })
}

#[test]
fn tagged_events_fold_into_their_vantage_points_part() {
    let state = reduce(
        connected(),
        [
            submit_from(1, "localhost:80", &["local", "a1"]),
            tagged(1, "a1", started(80)),
            tagged(1, "a1", verdict(Cause::PortClosed)),
            tagged(1, "local", verdict(Cause::Reachable)),
            tagged(1, "a2", started(80)),
        ],
    );
    let check = state.check(RequestId(1)).unwrap();
    let names: Vec<&str> = check.vantages.iter().map(|part| part.name.as_str()).collect();
    assert_eq!(names, ["local", "a1", "a2"], "named first, then as heard of");
    let cause = |index: usize| check.vantages[index].report.verdict.as_ref().map(|v| v.cause);
    assert_eq!((cause(0), cause(1)), (Some(Cause::Reachable), Some(Cause::PortClosed)));
    assert!(check.vantages[2].report.target.is_some());
    assert_eq!(*check.report, CheckReport::default(), "untagged report untouched");
    assert_eq!(check.phase(), Phase::Running);
}

#[test]
fn each_vantage_points_done_ends_its_part_and_vantages_done_ends_the_check() {
    let state = reduce(
        connected(),
        [
            submit_from(1, "localhost:80", &["local", "a1"]),
            tagged(1, "local", verdict(Cause::Reachable)),
            tagged(1, "local", done(Outcome::Completed)),
            tagged(1, "a1", done(Outcome::VantageOffline)),
            tagged(1, "a2", done(Outcome::VantageTimeout)),
        ],
    );
    let check = state.check(RequestId(1)).unwrap();
    assert_eq!(check.phase(), Phase::Running, "running until the comparison");
    assert_eq!(check.at(&check.vantages[2]).phase(), Phase::Failed, "the hub gave up on a2");
    assert!(!check.is_done());
    assert_eq!(check.at(&check.vantages[0]).phase(), Phase::Completed);
    assert_eq!(check.at(&check.vantages[1]).phase(), Phase::Failed);

    let state = reduce(state, [cross(1, CrossCause::Inconclusive)]);
    let check = state.check(RequestId(1)).unwrap();
    assert_eq!(check.cross.as_ref().unwrap().cause, CrossCause::Inconclusive);
    assert_eq!(check.phase(), Phase::Completed);
    assert!(check.is_done());
    // Nothing is taken once the comparison came.
    let state = reduce(state, [tagged(1, "local", started(81))]);
    assert_eq!(state.check(RequestId(1)).unwrap().vantages[0].report.target, None);
}

#[test]
fn a_vantage_error_is_kept_on_that_vantage_points_part() {
    let refusal = AgentMessage::VantageError {
        id: RequestId(1),
        vantage: "a1".into(),
        code: ErrorCode::TooManyScans,
        message: "busy".into(),
    };
    let state = reduce(
        connected(),
        [
            submit_from(1, "localhost:80", &["local", "a1"]),
            Action::Received(refusal),
            tagged(1, "a1", done(Outcome::Rejected)),
        ],
    );
    let check = state.check(RequestId(1)).unwrap();
    assert_eq!(check.vantages[1].error.as_ref().unwrap().code, ErrorCode::TooManyScans);
    assert_eq!(check.vantages[0].error, None);
    assert_eq!(check.error, None, "the request as a whole was not refused");
    assert_eq!(check.at(&check.vantages[1]).phase(), Phase::Failed);
}

#[test]
fn a_cancelled_request_with_from_ends_cancelled() {
    let state = reduce(
        connected(),
        [
            submit_from(1, "localhost:80", &["all"]),
            Action::CancelRequested(RequestId(1)),
            tagged(1, "local", done(Outcome::Cancelled)),
            tagged(1, "a1", done(Outcome::Cancelled)),
            cross(1, CrossCause::Inconclusive),
        ],
    );
    let check = state.check(RequestId(1)).unwrap();
    assert_eq!(check.vantages.len(), 2, "`all` names come from the events");
    assert_eq!(check.phase(), Phase::Cancelled);
}

#[test]
fn tagged_scan_batches_fold_per_vantage_point() {
    let tagged_scan = |vantage: &str, step: ScanStep| {
        Action::Received(AgentMessage::Scan {
            id: RequestId(1),
            vantage: Some(vantage.into()),
            event: ScanEvent { at: Timestamp("2026-11-25T10:00:00.000000Z".into()), step },
        })
    };
    let state = reduce(
        connected(),
        [
            Action::ScanSubmitted {
                id: RequestId(1),
                request: ScanRequest::new("127.0.0.1", "1-100"),
                from: Some(vec!["local".into(), "a1".into()]),
            },
            tagged_scan("a1", scan_started("1-100", 100)),
            tagged_scan("a1", batch(100, &[22], &[(1, 21), (23, 100)])),
            tagged_scan("a1", scan_done(Outcome::Completed, 1, 99)),
            tagged_scan("local", scan_done(Outcome::Completed, 0, 0)),
        ],
    );
    let scan = state.scan(RequestId(1)).unwrap();
    assert_eq!(scan.vantages[1].report.done, 100);
    assert_eq!(scan.vantages[0].report.done, 0);
    assert_eq!(scan.ports(), "1-100", "echoed by the first part that started");
    assert_eq!(scan.phase(), Phase::Running);
    let state = reduce(state, [cross(1, CrossCause::FirewallBetween)]);
    let scan = state.scan(RequestId(1)).unwrap();
    assert_eq!(scan.phase(), Phase::Completed);
    assert_eq!(scan.cross.as_ref().unwrap().cause, CrossCause::FirewallBetween);
}

#[test]
fn the_agents_answer_replaces_the_vantage_list() {
    let info = |name: &str, online: bool| VantageInfo {
        name: name.into(),
        online,
        version: "0.1.0".into(),
        hostname: "box".into(),
        addresses: vec![],
        last_seen: None,
        connected_since: None,
    };
    let list = |agents| Action::Received(AgentMessage::Agents { id: RequestId(9), agents });
    let state = reduce(connected(), [list(vec![info("local", true), info("a1", true)])]);
    assert_eq!(state.vantages.len(), 2);
    let state = reduce(state, [list(vec![info("local", true), info("a1", false)])]);
    assert!(!state.vantages[1].online);
    assert!(state.cards.is_empty() && state.notice.is_none());
}

#[test]
fn only_local_sends_no_from() {
    let names = |list: &[&str]| list.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    assert_eq!(from_choice(&names(&["local"])), None);
    assert_eq!(from_choice(&names(&[])), None);
    assert_eq!(from_choice(&names(&["a1"])), Some(names(&["a1"])));
    assert_eq!(from_choice(&names(&["local", "a1"])), Some(names(&["local", "a1"])));
}
