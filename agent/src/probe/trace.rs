//! Where the packets die: a TCP path trace without privileges.
//!
//! Each try is a non-blocking TCP connect to the *checked* address and port (so routers and
//! firewalls treat it as they treat the failing connection) from a socket whose TTL (IPv6 hop
//! limit) is set low, with the ICMP error queue on (see [`icmp`]). The router where the TTL runs
//! out answers ICMP time exceeded; Linux ends the connect with `EHOSTUNREACH` and queues the
//! ICMP message with its sender, which is read from the error queue. A SYN-ACK or a reset means
//! the target itself answered. No `CAP_NET_RAW` is needed.
//!
//! Every TTL is sent at once (a 10-hop path costs about one round trip plus the per-try wait,
//! not hops × wait); a hop without an answer is tried again, up to [`TRIES_PER_HOP`] times, but
//! only near the last hop that answered ([`RETRY_GAP`]). Every socket closes with zero linger:
//! a connect that opens is reset, so no `TIME_WAIT` is left on either side. [`Hops`] keeps the
//! books (late, duplicate and given-up replies); [`trace`] drives the sockets. Like every
//! probe, this returns values and decides nothing.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsFd;
use std::pin::Pin;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use nix::errno::Errno;
use nix::sys::socket::{setsockopt, sockopt};
use tokio::net::TcpSocket;
use whyrefused_shared::path::TRIES_PER_HOP;
use whyrefused_shared::{Family, Hop, HopReply, IcmpError, Path};

use super::icmp;
use crate::clock;
use crate::policy::{Denial, TargetPolicy};
use crate::rate::{self, ConnectBudget};

/// How many TTLs past the farthest answer a silent hop is tried again: beyond that, silence
/// is the path's end (or a filter), and retrying every silent TTL up to the maximum would only
/// add SYNs.
pub const RETRY_GAP: u8 = 3;

/// How long reverse DNS names may take, all at once, once the hops are known.
pub const RDNS_DEADLINE: Duration = Duration::from_millis(500);

/// How a trace runs.
#[derive(Debug, Clone, Copy)]
pub struct TraceOptions {
    /// The highest TTL tried.
    pub max_hops: u8,
    /// How long one try waits before the hop is tried again (its socket keeps listening for a
    /// late answer while the trace runs).
    pub try_wait: Duration,
    /// The whole trace's deadline: what has not answered by then is silent.
    pub deadline: Duration,
    /// Whether to look up the hops' reverse DNS names.
    pub rdns: bool,
}

impl TraceOptions {
    /// A trace whose tries wait `try_wait` each, ending when every hop has had its tries.
    pub fn new(max_hops: u8, try_wait: Duration, rdns: bool) -> TraceOptions {
        let deadline = try_wait * u32::from(TRIES_PER_HOP) + RDNS_DEADLINE;
        TraceOptions { max_hops, try_wait, deadline, rdns }
    }

    /// A trace that must end within `budget` (a check's remaining connect time): each hop's
    /// tries (and the reverse DNS names, when asked) fit in it, and no try waits long enough
    /// for TCP to retransmit its SYN (1 s).
    pub fn within(max_hops: u8, budget: Duration, rdns: bool) -> TraceOptions {
        let probing = budget.saturating_sub(rdns_reserve(budget, rdns));
        let try_wait = (probing / u32::from(TRIES_PER_HOP)).min(Duration::from_millis(900));
        TraceOptions { max_hops, try_wait, deadline: budget, rdns }
    }
}

/// The part of a trace's deadline kept for reverse DNS names: a quarter, at most
/// [`RDNS_DEADLINE`].
fn rdns_reserve(deadline: Duration, rdns: bool) -> Duration {
    match rdns {
        true => RDNS_DEADLINE.min(deadline / 4),
        false => Duration::ZERO,
    }
}

/// What answered one try.
#[derive(Debug, Clone, PartialEq)]
pub struct TryReply {
    /// The kind of answer.
    pub reply: HopReply,
    /// Who answered (the target for `reached`; none for silence or a local failure).
    pub from: Option<IpAddr>,
    /// The ICMP error, for `time_exceeded` and `unreachable`.
    pub icmp: Option<IcmpError>,
    /// The round trip.
    pub rtt: Duration,
}

/// The state of one try of one hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TryState {
    /// Sent, waiting for its answer.
    Waiting,
    /// Its wait passed without an answer; a late answer still counts.
    GaveUp,
    /// Answered (a second answer for it is a duplicate and ignored).
    Answered,
}

/// One hop's books.
#[derive(Debug, Clone, Default)]
struct HopBooks {
    tries: Vec<TryState>,
    /// The first answer (a later one from another address, as with ECMP, keeps the first).
    answer: Option<TryReply>,
    /// The fastest answer's round trip.
    best_rtt: Option<Duration>,
}

impl HopBooks {
    fn answered(&self) -> u8 {
        self.tries.iter().filter(|t| **t == TryState::Answered).count() as u8
    }

    fn waiting(&self) -> bool {
        self.tries.contains(&TryState::Waiting)
    }
}

/// The books of a trace: which TTLs were tried how often, what answered each, and where the
/// path ends. Pure bookkeeping, fed by the socket driver (and by tests).
#[derive(Debug, Clone)]
pub struct Hops {
    max_hops: u8,
    hops: BTreeMap<u8, HopBooks>,
    /// The lowest TTL at which the target answered or a router refused: higher TTLs are past
    /// the path's end and their answers are ignored.
    end: Option<u8>,
}

impl Hops {
    /// Books for TTLs 1 to `max_hops`.
    pub fn new(max_hops: u8) -> Hops {
        Hops { max_hops: max_hops.max(1), hops: BTreeMap::new(), end: None }
    }

    /// The highest TTL still worth trying.
    fn limit(&self) -> u8 {
        self.end.unwrap_or(self.max_hops).min(self.max_hops)
    }

    /// The TTL of the farthest hop that answered (0 when none did).
    fn farthest_answer(&self) -> u8 {
        let limit = self.limit();
        self.hops
            .iter()
            .filter(|(ttl, books)| **ttl <= limit && books.answer.is_some())
            .map(|(ttl, _)| *ttl)
            .max()
            .unwrap_or(0)
    }

    /// The tries to send now, as (ttl, try number from 0), marked as sent: a first try for
    /// every TTL not tried yet, and another for a silent hop near the farthest answer whose
    /// last try gave up.
    pub fn launch(&mut self) -> Vec<(u8, u8)> {
        let limit = self.limit();
        let retry_ceiling = self.farthest_answer().saturating_add(RETRY_GAP);
        let mut sends = Vec::new();
        for ttl in 1..=limit {
            let books = self.hops.entry(ttl).or_default();
            let first = books.tries.is_empty();
            let again = books.answer.is_none()
                && !books.waiting()
                && books.tries.len() < usize::from(TRIES_PER_HOP)
                && ttl <= retry_ceiling;
            if first || again {
                sends.push((ttl, books.tries.len() as u8));
                books.tries.push(TryState::Waiting);
            }
        }
        sends
    }

    /// A try's wait passed without an answer. Returns whether anything changed.
    pub fn give_up(&mut self, ttl: u8, try_number: u8) -> bool {
        let Some(state) = self.try_state(ttl, try_number) else { return false };
        if *state != TryState::Waiting {
            return false;
        }
        *state = TryState::GaveUp;
        true
    }

    /// A try answered (on time or late). Returns whether it changed the path: a duplicate, an
    /// answer for a try never sent, and an answer past the path's end change nothing.
    pub fn answer(&mut self, ttl: u8, try_number: u8, reply: TryReply) -> bool {
        if reply.reply == HopReply::Silent || ttl > self.limit() {
            return false;
        }
        let Some(state) = self.try_state(ttl, try_number) else { return false };
        if *state == TryState::Answered {
            return false;
        }
        *state = TryState::Answered;
        if matches!(reply.reply, HopReply::Reached | HopReply::Unreachable) {
            self.end = Some(self.end.map_or(ttl, |end| end.min(ttl)));
        }
        let books = self.hops.entry(ttl).or_default();
        books.best_rtt = Some(books.best_rtt.map_or(reply.rtt, |best| best.min(reply.rtt)));
        books.answer.get_or_insert(reply);
        true
    }

    fn try_state(&mut self, ttl: u8, try_number: u8) -> Option<&mut TryState> {
        self.hops.get_mut(&ttl)?.tries.get_mut(usize::from(try_number))
    }

    /// Whether every hop up to the path's end has answered or had all the tries it gets.
    pub fn is_finished(&self) -> bool {
        let limit = self.limit();
        let settled = self.hops.range(1..=limit).all(|(_, books)| !books.waiting());
        settled && self.clone().launch().is_empty()
    }

    /// The hops as reported: every TTL tried up to the path's end, without the trailing silent
    /// ones beyond [`RETRY_GAP`] past the farthest answer; and the highest TTL tried.
    pub fn hops(&self) -> (Vec<Hop>, u8) {
        let limit = self.limit();
        let shown_to = self.farthest_answer().saturating_add(RETRY_GAP).min(limit);
        let tried = self.hops.range(1..=limit).filter(|(_, b)| !b.tries.is_empty());
        let max_ttl = tried.clone().map(|(ttl, _)| *ttl).max().unwrap_or(0);
        let hops =
            tried.filter(|(ttl, _)| **ttl <= shown_to).map(|(ttl, b)| hop(*ttl, b)).collect();
        (hops, max_ttl)
    }
}

fn hop(ttl: u8, books: &HopBooks) -> Hop {
    let answer = books.answer.as_ref();
    Hop {
        ttl,
        address: answer.and_then(|a| a.from),
        name: None,
        reply: answer.map_or(HopReply::Silent, |a| a.reply),
        icmp: answer.and_then(|a| a.icmp.clone()),
        rtt_ms: books.best_rtt.map(clock::millis),
        tries: books.tries.len() as u8,
        answered: books.answered(),
    }
}

/// A try in flight: its connect, still running.
type Pending = Pin<Box<dyn Future<Output = TryReply> + Send>>;

/// What the driver learns about one try.
enum Event {
    /// It answered.
    Answer { ttl: u8, try_number: u8, reply: TryReply },
    /// Its wait passed; the connect keeps running for a late answer.
    GaveUp { ttl: u8, try_number: u8, pending: Pending },
}

/// Traces the path to `address` (whose port is the checked one) once `policy` allows it,
/// calling `on_change` with the path so far whenever a hop answers. Each try takes one connect
/// from `budget`.
pub async fn trace(
    address: SocketAddr,
    options: TraceOptions,
    policy: &TargetPolicy,
    budget: Option<&ConnectBudget>,
    mut on_change: impl FnMut(&Path),
) -> Result<Path, Denial> {
    policy.check(address)?;
    let start = Instant::now();
    let mut hops = Hops::new(options.max_hops);
    let run = drive(address, options, budget, &mut hops, &mut on_change, start);
    let reserve = rdns_reserve(options.deadline, options.rdns);
    let _ = tokio::time::timeout(options.deadline.saturating_sub(reserve), run).await;
    let mut path = snapshot(address, &hops, start);
    if options.rdns {
        let remaining = options.deadline.saturating_sub(start.elapsed());
        name_hops(&mut path.hops, remaining.min(RDNS_DEADLINE)).await;
    }
    path.complete = true;
    path.elapsed_us = clock::micros(start.elapsed());
    Ok(path)
}

/// Sends the tries and books their answers until every hop is settled.
async fn drive(
    address: SocketAddr,
    options: TraceOptions,
    budget: Option<&ConnectBudget>,
    hops: &mut Hops,
    on_change: &mut impl FnMut(&Path),
    start: Instant,
) {
    let mut in_flight = FuturesUnordered::new();
    loop {
        for (ttl, try_number) in hops.launch() {
            rate::before_connect(budget).await;
            let pending: Pending = Box::pin(send_try(address, ttl));
            in_flight.push(first_wait(ttl, try_number, pending, options.try_wait));
        }
        if hops.is_finished() {
            return;
        }
        let Some(event) = in_flight.next().await else { return };
        let changed = match event {
            Event::Answer { ttl, try_number, reply } => hops.answer(ttl, try_number, reply),
            Event::GaveUp { ttl, try_number, pending } => {
                in_flight.push(Box::pin(async move {
                    Event::Answer { ttl, try_number, reply: pending.await }
                }));
                hops.give_up(ttl, try_number)
            }
        };
        if changed {
            on_change(&snapshot(address, hops, start));
        }
    }
}

/// Waits `wait` for a try's answer; past it, hands the connect back to keep listening.
fn first_wait(
    ttl: u8,
    try_number: u8,
    mut pending: Pending,
    wait: Duration,
) -> Pin<Box<dyn Future<Output = Event> + Send>> {
    Box::pin(async move {
        match tokio::time::timeout(wait, &mut pending).await {
            Ok(reply) => Event::Answer { ttl, try_number, reply },
            Err(_waited) => Event::GaveUp { ttl, try_number, pending },
        }
    })
}

/// The path as the books have it now (not complete).
fn snapshot(address: SocketAddr, hops: &Hops, start: Instant) -> Path {
    let (hops_now, max_ttl) = hops.hops();
    Path { elapsed_us: clock::micros(start.elapsed()), ..Path::of_hops(address, hops_now, max_ttl) }
}

/// One try: a connect with this TTL, until something answers (the caller bounds the wait).
async fn send_try(address: SocketAddr, ttl: u8) -> TryReply {
    let start = Instant::now();
    let outcome = connect_with_ttl(address, ttl).await;
    let rtt = start.elapsed();
    let (reply, from, icmp) = match outcome {
        Ok(()) => (HopReply::Reached, Some(address.ip()), None),
        Err((error, icmp)) => classify(address.ip(), &error, icmp),
    };
    TryReply { reply, from, icmp, rtt }
}

/// What a failed connect with a low TTL says: the ICMP error behind it names the router, a
/// reset names the target, anything else is this host's own failure to send.
fn classify(
    target: IpAddr,
    error: &io::Error,
    icmp: Option<IcmpError>,
) -> (HopReply, Option<IpAddr>, Option<IcmpError>) {
    match icmp {
        Some(icmp) if is_time_exceeded(&icmp) => {
            (HopReply::TimeExceeded, Some(icmp.from), Some(icmp))
        }
        Some(icmp) => (HopReply::Unreachable, Some(icmp.from), Some(icmp)),
        None if error.raw_os_error() == Some(Errno::ECONNREFUSED as i32) => {
            (HopReply::Reached, Some(target), None)
        }
        None if error.raw_os_error() == Some(Errno::ECONNRESET as i32) => {
            (HopReply::Reached, Some(target), None)
        }
        None => (HopReply::Unreachable, None, None),
    }
}

/// ICMP time exceeded (type 11) or ICMPv6 time exceeded (type 3).
fn is_time_exceeded(icmp: &IcmpError) -> bool {
    match icmp.from {
        IpAddr::V4(_) => icmp.icmp_type == 11,
        IpAddr::V6(_) => icmp.icmp_type == 3,
    }
}

/// Connects once with the given TTL, zero linger and the ICMP error queue on; an open
/// connection is reset at once (dropped with zero linger).
async fn connect_with_ttl(
    address: SocketAddr,
    ttl: u8,
) -> Result<(), (io::Error, Option<IcmpError>)> {
    let family = Family::of(&address.ip());
    let socket = match address {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(|error| (error, None))?;
    socket.set_zero_linger().map_err(|error| (error, None))?;
    set_ttl(&socket, family, ttl).map_err(|errno| (io::Error::from(errno), None))?;
    icmp::enable(socket.as_fd(), family).map_err(|errno| (io::Error::from(errno), None))?;
    // `connect` consumes the socket and closes it on failure: a second descriptor keeps it
    // open long enough to read its error queue.
    let watcher = socket.as_fd().try_clone_to_owned().map_err(|error| (error, None))?;
    match socket.connect(address).await {
        Ok(_stream) => Ok(()),
        Err(error) => Err((error, icmp::take_with(&watcher, |_| false))),
    }
}

fn set_ttl(socket: &TcpSocket, family: Family, ttl: u8) -> nix::Result<()> {
    let ttl = i32::from(ttl);
    match family {
        Family::Ipv4 => setsockopt(socket, sockopt::Ipv4Ttl, &ttl),
        Family::Ipv6 => setsockopt(socket, sockopt::Ipv6Ttl, &ttl),
    }
}

/// Looks up the hops' reverse DNS names at once, for at most `deadline`; a hop whose name does
/// not come in time (or has none) keeps none. Loopback and link-local addresses are not asked.
async fn name_hops(hops: &mut [Hop], deadline: Duration) {
    let mut addresses: Vec<IpAddr> = hops.iter().filter_map(|hop| hop.address).collect();
    addresses.sort();
    addresses.dedup();
    addresses.retain(is_worth_naming);
    let lookups = addresses.into_iter().map(|address| async move {
        let lookup = tokio::task::spawn_blocking(move || dns_lookup::lookup_addr(&address));
        let name = tokio::time::timeout(deadline, lookup).await.ok()?.ok()?.ok()?;
        // getnameinfo hands back the address itself when it found no name.
        (name != address.to_string()).then_some((address, name))
    });
    let names: BTreeMap<IpAddr, String> =
        futures::future::join_all(lookups).await.into_iter().flatten().collect();
    for hop in hops {
        hop.name = hop.address.and_then(|address| names.get(&address).cloned());
    }
}

fn is_worth_naming(address: &IpAddr) -> bool {
    match address.to_canonical() {
        IpAddr::V4(v4) => !(v4.is_loopback() || v4.is_link_local() || v4.is_unspecified()),
        IpAddr::V6(v6) => !(v6.is_loopback() || v6.is_unicast_link_local() || v6.is_unspecified()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(address: &str) -> TryReply {
        let from: IpAddr = address.parse().unwrap();
        let family = Family::of(&from);
        let kind = if from.is_ipv4() { 11 } else { 3 };
        TryReply {
            reply: HopReply::TimeExceeded,
            from: Some(from),
            icmp: Some(icmp::describe(family, kind, 0, from)),
            rtt: Duration::from_micros(400),
        }
    }

    fn target(address: &str) -> TryReply {
        TryReply {
            reply: HopReply::Reached,
            from: Some(address.parse().unwrap()),
            icmp: None,
            rtt: Duration::from_micros(900),
        }
    }

    #[test]
    fn every_ttl_goes_out_at_once_and_the_target_ends_the_path() {
        let mut hops = Hops::new(30);
        let first = hops.launch();
        assert_eq!(first.len(), 30, "all TTLs in flight at once");
        assert!(first.iter().all(|(_, try_number)| *try_number == 0));
        assert!(hops.answer(1, 0, router("10.0.1.1")));
        assert!(hops.answer(2, 0, router("10.0.2.1")));
        assert!(hops.answer(3, 0, target("10.0.3.2")));
        assert!(!hops.answer(4, 0, target("10.0.3.2")), "past the end: ignored");
        assert!(hops.is_finished(), "hops 1 to 3 answered; 4 and up do not matter");
        let (path, _) = hops.hops();
        let addresses: Vec<String> =
            path.iter().map(|hop| hop.address.unwrap().to_string()).collect();
        assert_eq!(addresses, ["10.0.1.1", "10.0.2.1", "10.0.3.2"]);
        assert_eq!(path[2].reply, HopReply::Reached);
        assert_eq!((path[0].tries, path[0].answered), (1, 1));
    }

    #[test]
    fn a_duplicate_reply_is_counted_once() {
        let mut hops = Hops::new(3);
        hops.launch();
        assert!(hops.answer(1, 0, router("10.0.1.1")));
        assert!(!hops.answer(1, 0, router("10.0.1.1")), "the same try again");
        assert!(!hops.answer(1, 2, router("10.0.1.1")), "a try never sent");
        let (path, _) = hops.hops();
        assert_eq!((path[0].tries, path[0].answered), (1, 1));
    }

    #[test]
    fn silent_hops_near_the_last_answer_are_tried_three_times_and_farther_ones_once() {
        let mut hops = Hops::new(10);
        hops.launch();
        hops.answer(1, 0, router("10.0.1.1"));
        for ttl in 2..=10 {
            assert!(hops.give_up(ttl, 0));
        }
        let again: Vec<u8> = hops.launch().into_iter().map(|(ttl, _)| ttl).collect();
        assert_eq!(again, [2, 3, 4], "retried up to {RETRY_GAP} past hop 1");
        assert!(!hops.is_finished());
        for ttl in 2..=4 {
            hops.give_up(ttl, 1);
        }
        assert_eq!(hops.launch(), [(2, 2), (3, 2), (4, 2)]);
        for ttl in 2..=4 {
            hops.give_up(ttl, 2);
        }
        assert!(hops.launch().is_empty(), "three tries each at most");
        assert!(hops.is_finished());
        let (path, max_ttl) = hops.hops();
        assert_eq!(max_ttl, 10, "every TTL was tried once");
        let shown: Vec<(u8, u8, HopReply)> =
            path.iter().map(|hop| (hop.ttl, hop.tries, hop.reply)).collect();
        assert_eq!(
            shown,
            [
                (1, 1, HopReply::TimeExceeded),
                (2, 3, HopReply::Silent),
                (3, 3, HopReply::Silent),
                (4, 3, HopReply::Silent)
            ],
            "silent hops past the gap are not listed"
        );
        assert_eq!(Path::farthest_answer(&path).map(|last| last.ttl), Some(1));
    }

    #[test]
    fn a_late_reply_for_a_try_given_up_still_names_the_hop() {
        let mut hops = Hops::new(2);
        hops.launch();
        hops.give_up(1, 0);
        hops.give_up(2, 0);
        assert_eq!(hops.launch(), [(1, 1), (2, 1)]);
        assert!(hops.answer(1, 0, router("10.0.1.1")), "late, for try 0");
        assert!(!hops.give_up(1, 0), "an answered try cannot be given up");
        assert!(hops.answer(1, 1, router("10.0.1.1")), "the retry answers too");
        let (path, _) = hops.hops();
        assert_eq!(path[0].address.map(|a| a.to_string()), Some("10.0.1.1".to_string()));
        assert_eq!((path[0].tries, path[0].answered, path[0].loss_percent()), (2, 2, 0));
    }

    #[test]
    fn a_reply_for_a_hop_whose_tries_are_all_given_up_is_kept() {
        let mut hops = Hops::new(1);
        for try_number in 0..TRIES_PER_HOP {
            assert_eq!(hops.launch(), [(1, try_number)]);
            hops.give_up(1, try_number);
        }
        assert!(hops.is_finished());
        assert!(hops.answer(1, 2, router("10.0.1.1")), "late for the last try");
        let (path, _) = hops.hops();
        assert_eq!(
            (path[0].reply, path[0].tries, path[0].answered),
            (HopReply::TimeExceeded, 3, 1)
        );
    }

    #[test]
    fn an_unreachable_ends_the_path_where_it_was_sent() {
        let mut hops = Hops::new(30);
        hops.launch();
        hops.answer(1, 0, router("10.0.1.1"));
        let mut rejected = router("10.0.1.1");
        rejected.reply = HopReply::Unreachable;
        rejected.icmp = Some(icmp::describe(Family::Ipv4, 3, 13, "10.0.1.1".parse().unwrap()));
        assert!(hops.answer(2, 0, rejected));
        assert!(hops.is_finished());
        let (path, max_ttl) = hops.hops();
        assert_eq!((path.len(), max_ttl), (2, 2));
        assert_eq!(path[1].reply, HopReply::Unreachable);
    }

    #[test]
    fn a_reset_reaches_the_target_and_an_icmp_names_its_sender() {
        let target_ip: IpAddr = "10.0.3.2".parse().unwrap();
        let refused = io::Error::from_raw_os_error(Errno::ECONNREFUSED as i32);
        assert_eq!(classify(target_ip, &refused, None).0, HopReply::Reached);
        let unreachable = io::Error::from_raw_os_error(Errno::EHOSTUNREACH as i32);
        let expired = icmp::describe(Family::Ipv4, 11, 0, "10.0.1.1".parse().unwrap());
        let (reply, from, _) = classify(target_ip, &unreachable, Some(expired));
        assert_eq!(
            (reply, from.map(|f| f.to_string())),
            (HopReply::TimeExceeded, Some("10.0.1.1".into()))
        );
        let v6 = icmp::describe(Family::Ipv6, 3, 0, "fd00::1".parse().unwrap());
        assert_eq!(classify(target_ip, &unreachable, Some(v6)).0, HopReply::TimeExceeded);
    }

    #[tokio::test]
    async fn loopback_is_one_hop_away_for_an_open_and_a_closed_port() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = TargetPolicy::unrestricted();
        let options = TraceOptions::new(5, Duration::from_millis(500), false);
        let mut updates = 0;
        let path = trace(listener.local_addr().unwrap(), options, &open, None, |_| updates += 1)
            .await
            .unwrap();
        assert!(path.reached && path.complete, "{path:?}");
        assert_eq!(path.hops.len(), 1);
        assert_eq!(
            path.last_answered.map(|l| (l.ttl, l.address.to_string())),
            Some((1, "127.0.0.1".into()))
        );
        assert!(updates >= 1);
        let closed = listener.local_addr().unwrap();
        drop(listener);
        let v6 = TraceOptions::new(5, Duration::from_millis(500), false);
        let path = trace(closed, v6, &open, None, |_| {}).await.unwrap();
        assert!(path.reached, "a reset is the target answering: {path:?}");
        assert!(path.elapsed_us < 400_000, "no waiting when everything answers: {path:?}");
    }

    #[tokio::test]
    async fn a_denied_address_is_not_traced() {
        let policy = TargetPolicy::with_defaults();
        let options = TraceOptions::new(5, Duration::from_millis(100), false);
        let denied = trace("127.0.0.1:80".parse().unwrap(), options, &policy, None, |_| {}).await;
        assert!(denied.is_err());
    }
}
