//! The scan engine: non-blocking connects driven by epoll, on plain threads (one per core), with
//! a window of connects in flight, a deadline each, retries for silence, and backoff.
//!
//! Each thread claims chunks of the work from a shared cursor, so the threads finish together
//! whatever the ports do. A port costs a handful of system calls and no task, future or timer:
//! every connect of a scan has the same deadline, so a queue in launch order is also in deadline
//! order. A connection that opens closes with zero linger (the port gets a reset, nothing is
//! left in `TIME_WAIT`). When the process runs short of descriptors or local ports, or the network
//! answers with ICMP errors, the window halves and the port is tried again; it grows back one connect per
//! success. Setting the [`StopFlag`] ends every thread within [`POLL_CEILING`], closing all of its
//! sockets.

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno as OsErrno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use slab::Slab;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::sync::mpsc::UnboundedSender;
use whyrefused_shared::{ConnectState, Errno, Family, IcmpError};

use crate::clock;
use crate::probe::{connect::classify, icmp};
use crate::rate::SharedBudget;
use crate::scan::loss::LossEstimate;

/// The longest a thread blocks before looking at the stop flag and sending its results.
pub const POLL_CEILING: Duration = Duration::from_millis(20);

/// The most items a thread claims from the shared cursor at once.
const CHUNK: usize = 128;

/// The most connects launched before the answers are collected: a connect's time then counts
/// at most this many launches after its own, not a whole window's.
const LAUNCH_BURST: usize = 256;

/// A thread sends its results once it holds this many, or after [`POLL_CEILING`].
const SEND_EVERY: usize = 512;

/// How long a thread keeps retrying a port when nothing is in flight and the system still has
/// no descriptor or local port to give, before it reports that port's error.
const STARVED_LIMIT: Duration = Duration::from_secs(2);

/// The work: every port on every address. Item `i` is port `ports[i % ports.len()]` of address
/// `addresses[i / ports.len()]`, so a scan goes through one address's ports in order.
#[derive(Debug)]
pub struct Work {
    /// The addresses to scan.
    pub addresses: Vec<IpAddr>,
    /// The ports, ascending.
    pub ports: Vec<u16>,
    /// The agent's connect budget, shared with every other check and scan; `None` without a
    /// limit.
    pub budget: SharedBudget,
    /// The packet loss seen so far, from ports that answered only on a retry: it raises the
    /// retries of silent ports.
    pub loss: LossEstimate,
}

impl Work {
    /// How many connects the work holds, not counting retries.
    pub fn len(&self) -> usize {
        self.addresses.len() * self.ports.len()
    }

    /// Whether there is nothing to scan.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn target(&self, item: usize) -> SocketAddr {
        let ports = self.ports.len();
        SocketAddr::new(self.addresses[item / ports], self.ports[item % ports])
    }
}

/// How to scan.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// The connect deadline.
    pub timeout: Duration,
    /// How many more times a port that timed out is tried.
    pub retries: u32,
    /// The most connects in flight, over all threads.
    pub window: usize,
    /// How many threads share the work.
    pub threads: usize,
}

/// How one port ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortOutcome {
    /// The address and port.
    pub target: SocketAddr,
    /// How the last connect ended.
    pub state: ConnectState,
    /// The OS error of a failed connect.
    pub errno: Option<Errno>,
    /// The ICMP error that ended it, if the network sent one.
    pub icmp: Option<IcmpError>,
    /// How long the last connect took, in microseconds.
    pub elapsed_us: u64,
    /// How many connects it took.
    pub tries: u32,
}

/// Tells the engine's threads to stop; they close every socket as they go.
#[derive(Debug, Clone, Default)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    /// Asks every thread to stop.
    pub fn stop(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Starts the threads. Results arrive on `results` in batches; the channel closes when every
/// thread has finished (or stopped).
pub fn start(
    work: Arc<Work>,
    settings: Settings,
    stop: StopFlag,
    results: UnboundedSender<Vec<PortOutcome>>,
) -> io::Result<()> {
    let threads = settings.threads.clamp(1, settings.window.max(1));
    let cursor = Arc::new(AtomicUsize::new(0));
    let local = Arc::new(icmp::local_addresses());
    let drivers = (0..threads)
        .map(|index| {
            let window = settings.window / threads + usize::from(index < settings.window % threads);
            Driver::new(&work, &cursor, &local, settings, window, &stop, &results)
        })
        .collect::<io::Result<Vec<_>>>()?;
    for (index, driver) in drivers.into_iter().enumerate() {
        std::thread::Builder::new().name(format!("scan-{index}")).spawn(move || driver.run())?;
    }
    Ok(())
}

/// One connect in flight.
struct Flight {
    socket: Socket,
    item: usize,
    tries: u32,
    started: Instant,
    /// Tells this flight's deadline entry from a later flight's in the same slot.
    sequence: u64,
}

/// How filling the window stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fill {
    /// The window is full, the work has run out, or the connect budget is spent.
    Full,
    /// A burst was launched and there is more: collect the answers, then go on.
    Burst,
    /// The system had no descriptor, buffer or local port to spare.
    Starved,
}

/// What became of a launch.
enum Launch {
    /// The connect is in flight.
    InFlight,
    /// It ended at once.
    Ended(PortOutcome),
    /// The system has no descriptor, buffer or local port to spare now: try again later.
    Starved(io::Error),
}

/// One thread's share of a scan.
struct Driver {
    work: Arc<Work>,
    cursor: Arc<AtomicUsize>,
    /// Items claimed from the cursor and not launched yet.
    claimed: Range<usize>,
    /// Items to launch before new ones: timed-out ports to retry, starved launches to repeat.
    again: VecDeque<(usize, u32)>,
    epoll: Epoll,
    flights: Slab<Flight>,
    /// (deadline, slot, sequence) in launch order, which is deadline order.
    deadlines: VecDeque<(Instant, usize, u64)>,
    next_sequence: u64,
    window: Window,
    settings: Settings,
    /// This host's addresses, to tell an ICMP error from this host's own firewall.
    local: Arc<Vec<IpAddr>>,
    /// Since when launches fail for want of resources with nothing in flight.
    starved_since: Option<Instant>,
    /// Connects granted by the agent's budget and not yet made (see [`crate::rate`]).
    credit: u32,
    stop: StopFlag,
    batch: Vec<PortOutcome>,
    last_send: Instant,
    results: UnboundedSender<Vec<PortOutcome>>,
}

impl Driver {
    fn new(
        work: &Arc<Work>,
        cursor: &Arc<AtomicUsize>,
        local: &Arc<Vec<IpAddr>>,
        settings: Settings,
        window: usize,
        stop: &StopFlag,
        results: &UnboundedSender<Vec<PortOutcome>>,
    ) -> io::Result<Driver> {
        let window = window.max(1);
        Ok(Driver {
            work: work.clone(),
            cursor: cursor.clone(),
            claimed: 0..0,
            again: VecDeque::new(),
            epoll: Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?,
            flights: Slab::with_capacity(window),
            deadlines: VecDeque::new(),
            next_sequence: 0,
            window: Window::new(window),
            settings,
            local: local.clone(),
            starved_since: None,
            credit: 0,
            stop: stop.clone(),
            batch: Vec::with_capacity(SEND_EVERY),
            last_send: Instant::now(),
            results: results.clone(),
        })
    }

    /// Launches, waits and collects until the work is done or the scan is stopped; dropping the
    /// driver at the end closes whatever is still in flight.
    fn run(mut self) {
        let mut events = vec![EpollEvent::empty(); 1024];
        while !self.stop.is_set() {
            let fill = self.fill_window();
            if self.flights.is_empty() && self.again.is_empty() && !self.has_new_work() {
                break;
            }
            let wait = self.wait_time(fill);
            if let Err(error) = self.collect(&mut events, wait) {
                tracing::error!(%error, "the scan's epoll failed; stopping this thread");
                break;
            }
            self.expire(Instant::now());
            if self.batch.len() >= SEND_EVERY || self.last_send.elapsed() >= POLL_CEILING {
                self.send();
            }
        }
        self.send();
    }

    /// Lands every connect that has answered: waits up to `wait` for the first, then takes
    /// whatever else is ready, however many buffers' worth, so that no answered connect is left
    /// for [`Driver::expire`] to mistake for silence.
    fn collect(&mut self, events: &mut [EpollEvent], wait: Duration) -> nix::Result<()> {
        let mut timeout = millis(wait);
        loop {
            let ready = match self.epoll.wait(events, timeout) {
                Ok(ready) => ready,
                Err(OsErrno::EINTR) => 0,
                Err(error) => return Err(error),
            };
            for event in &events[..ready] {
                self.land(event.data() as usize);
            }
            if ready < events.len() {
                return Ok(());
            }
            timeout = 0;
        }
    }

    /// Launches until the window is full, the work runs out, or a burst of [`LAUNCH_BURST`] is
    /// out; returns how the filling stopped.
    fn fill_window(&mut self) -> Fill {
        for _ in 0..LAUNCH_BURST {
            if self.flights.len() >= self.window.size {
                return Fill::Full;
            }
            if !self.has_credit() {
                return Fill::Full;
            }
            let Some((item, tries)) = self.next_item() else { return Fill::Full };
            self.credit -= 1;
            match self.launch(item, tries) {
                Launch::InFlight => self.starved_since = None,
                Launch::Ended(outcome) => {
                    self.starved_since = None;
                    self.window.grow();
                    self.batch.push(outcome);
                }
                Launch::Starved(error) => {
                    self.starved(item, tries, error);
                    return Fill::Starved;
                }
            }
        }
        Fill::Burst
    }

    /// A launch found no resources: shrink the window and try the item again later, unless
    /// nothing has been in flight for a long while (then the error is the port's result).
    fn starved(&mut self, item: usize, tries: u32, error: io::Error) {
        self.window.shrink(self.flights.len());
        if !self.flights.is_empty() {
            self.again.push_front((item, tries));
            return;
        }
        let since = *self.starved_since.get_or_insert_with(Instant::now);
        if since.elapsed() < STARVED_LIMIT {
            self.again.push_front((item, tries));
        } else {
            let (state, errno) = classify(&error, None);
            let target = self.work.target(item);
            self.batch.push(outcome(target, state, errno, None, Duration::ZERO, tries));
        }
    }

    /// Whether the agent's connect budget allows another launch now (always, without a limit).
    fn has_credit(&mut self) -> bool {
        if self.credit == 0 {
            let room = self.window.size.saturating_sub(self.flights.len()).max(1);
            self.credit = match &self.work.budget {
                Some(budget) => budget.take(u32::try_from(room).unwrap_or(u32::MAX)),
                None => u32::MAX,
            };
        }
        self.credit > 0
    }

    /// The next item to launch: one to try again, else the next claimed one. A thread claims
    /// no more than its window has room for, so no item waits in one thread while another
    /// could launch it.
    fn next_item(&mut self) -> Option<(usize, u32)> {
        if let Some(again) = self.again.pop_front() {
            return Some(again);
        }
        if self.claimed.is_empty() {
            let room = self.window.size.saturating_sub(self.flights.len()).clamp(1, CHUNK);
            let start = self.cursor.fetch_add(room, Ordering::Relaxed);
            self.claimed = start.min(self.work.len())..(start + room).min(self.work.len());
        }
        self.claimed.next().map(|item| (item, 1))
    }

    fn has_new_work(&self) -> bool {
        !self.claimed.is_empty() || self.cursor.load(Ordering::Relaxed) < self.work.len()
    }

    /// Opens a non-blocking socket and starts its connect.
    fn launch(&mut self, item: usize, tries: u32) -> Launch {
        let target = self.work.target(item);
        let socket = match open_socket(target) {
            Ok(socket) => socket,
            Err(error) if is_starvation(&error) => return Launch::Starved(error),
            Err(error) => {
                let (state, errno) = classify(&error, None);
                return Launch::Ended(outcome(target, state, errno, None, Duration::ZERO, tries));
            }
        };
        let started = Instant::now();
        match socket.connect(&SockAddr::from(target)) {
            Ok(()) => Launch::Ended(self.conclude(&socket, target, Ok(()), started, tries)),
            Err(error) if error.raw_os_error() == Some(OsErrno::EINPROGRESS as i32) => {
                self.track(socket, item, tries, started)
            }
            Err(error) if is_starvation(&error) => Launch::Starved(error),
            Err(error) => Launch::Ended(self.conclude(&socket, target, Err(error), started, tries)),
        }
    }

    /// Watches a connect in flight until it lands or its deadline passes.
    fn track(&mut self, socket: Socket, item: usize, tries: u32, started: Instant) -> Launch {
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        let slot = self.flights.insert(Flight { socket, item, tries, started, sequence });
        let interest = EpollEvent::new(EpollFlags::EPOLLOUT, slot as u64);
        if let Err(error) = self.epoll.add(self.flights[slot].socket.as_fd(), interest) {
            self.flights.remove(slot);
            return Launch::Starved(error.into());
        }
        self.deadlines.push_back((started + self.settings.timeout, slot, sequence));
        Launch::InFlight
    }

    /// A connect in flight answered (or failed).
    fn land(&mut self, slot: usize) {
        let Some(flight) = self.flights.try_remove(slot) else { return };
        let target = self.work.target(flight.item);
        let result = match flight.socket.take_error() {
            Ok(None) => Ok(()),
            Ok(Some(error)) | Err(error) => Err(error),
        };
        let ended = self.conclude(&flight.socket, target, result, flight.started, flight.tries);
        drop(flight.socket);
        if ended.icmp.is_some() {
            self.window.shrink(self.flights.len());
        } else if self.count_answer(&ended) && ended.tries > 1 {
            // An answer only on a retry: the path lost a try. Launch slower, so the scan's own
            // burst is not what loses the next ones.
            self.window.ease();
        } else {
            self.window.grow();
        }
        self.batch.push(ended);
    }

    /// Classifies how a connect ended, reading its ICMP error if it failed.
    fn conclude(
        &self,
        socket: &Socket,
        target: SocketAddr,
        result: io::Result<()>,
        started: Instant,
        tries: u32,
    ) -> PortOutcome {
        let elapsed = started.elapsed();
        if result.is_ok() {
            // Only a connection that opened leaves anything behind when closed: zero linger
            // makes its close a reset, so neither side keeps it in TIME_WAIT. (Refused and
            // unanswered connects close without a trace: no need for the system call.)
            let _ = socket.set_linger(Some(Duration::ZERO));
        }
        match result {
            // Connecting to a free port of this host can pick that very port as the source and
            // meet itself (TCP simultaneous open): nothing listens there.
            Ok(()) if is_self_connected(socket) => {
                outcome(target, ConnectState::Refused, None, None, elapsed, tries)
            }
            Ok(()) => outcome(target, ConnectState::Open, None, None, elapsed, tries),
            Err(error) => {
                let icmp =
                    icmp::take_with(socket, |ip| ip.is_loopback() || self.local.contains(ip));
                let (state, errno) = classify(&error, icmp.as_ref());
                outcome(target, state, errno, icmp, elapsed, tries)
            }
        }
    }

    /// Ends the connects whose deadline has passed: retried while retries remain, else `timeout`.
    fn expire(&mut self, now: Instant) {
        while let Some(&(deadline, slot, sequence)) = self.deadlines.front() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_front();
            if self.flights.get(slot).is_none_or(|flight| flight.sequence != sequence) {
                continue;
            }
            let flight = self.flights.remove(slot);
            let target = self.work.target(flight.item);
            if let Some(answered) = self.answer_of(&flight, target) {
                self.count_answer(&answered);
                self.batch.push(answered);
                continue;
            }
            if flight.tries <= self.work.loss.retries(self.settings.retries) {
                self.again.push_back((flight.item, flight.tries + 1));
            } else {
                let elapsed = now.duration_since(flight.started);
                let timeout =
                    outcome(target, ConnectState::Timeout, None, None, elapsed, flight.tries);
                self.batch.push(timeout);
            }
        }
    }

    /// Counts a port that answered (a SYN-ACK or a reset, not an ICMP error) towards the loss
    /// estimate; returns whether it did.
    fn count_answer(&self, ended: &PortOutcome) -> bool {
        let answered = ended.icmp.is_none() && ended.state.is_answer();
        if answered {
            self.work.loss.answered(ended.tries);
        }
        answered
    }

    /// How a connect whose deadline passed really ended, if it did end (an answer that came
    /// just before the deadline, not yet collected): `None` while it is still unanswered.
    fn answer_of(&self, flight: &Flight, target: SocketAddr) -> Option<PortOutcome> {
        let result = match flight.socket.take_error() {
            Ok(Some(error)) | Err(error) => Err(error),
            Ok(None) if flight.socket.peer_addr().is_ok() => Ok(()),
            Ok(None) => return None,
        };
        Some(self.conclude(&flight.socket, target, result, flight.started, flight.tries))
    }

    /// How long to block: until the next deadline, a short pause when starved, at most
    /// [`POLL_CEILING`].
    fn wait_time(&self, fill: Fill) -> Duration {
        match fill {
            // More to launch: only collect what has already answered, then launch on.
            Fill::Burst => return Duration::ZERO,
            Fill::Starved if self.flights.is_empty() => return Duration::from_millis(5),
            Fill::Starved | Fill::Full => {}
        }
        let until_deadline = self.deadlines.front().map_or(POLL_CEILING, |(deadline, ..)| {
            deadline.saturating_duration_since(Instant::now())
        });
        let until_credit = match (self.credit, &self.work.budget) {
            (0, Some(budget)) => budget.next_in(),
            _ => POLL_CEILING,
        };
        until_deadline.min(until_credit).min(POLL_CEILING)
    }

    fn send(&mut self) {
        self.last_send = Instant::now();
        if !self.batch.is_empty() {
            let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(SEND_EVERY));
            // The receiver goes away only when the scan is dropped, which also stops this thread.
            let _ = self.results.send(batch);
        }
    }
}

/// The in-flight limit: halves under pressure, grows back by one per success.
#[derive(Debug)]
struct Window {
    size: usize,
    max: usize,
}

impl Window {
    fn new(max: usize) -> Window {
        Window { size: max, max }
    }

    fn grow(&mut self) {
        self.size = (self.size + 1).min(self.max);
    }

    fn shrink(&mut self, in_flight: usize) {
        self.size = (in_flight / 2).max(1).min(self.size);
    }

    /// One connect fewer: a lost try eases the launch rate, a first-try answer brings it back,
    /// so the window settles where the path stops losing to the scan's own burst.
    fn ease(&mut self) {
        self.size = self.size.saturating_sub(1).max(1);
    }
}

fn open_socket(target: SocketAddr) -> io::Result<Socket> {
    let socket =
        Socket::new(Domain::for_address(target), Type::STREAM.nonblocking(), Some(Protocol::TCP))?;
    // Best effort: without the error queue a port still gets its state, only not the ICMP.
    let _ = icmp::enable(socket.as_fd(), Family::of(&target.ip()));
    Ok(socket)
}

/// Errors that say this host is short of something (descriptors, buffers, local ports), not
/// anything about the target.
fn is_starvation(error: &io::Error) -> bool {
    let Some(code) = error.raw_os_error() else { return false };
    matches!(
        OsErrno::from_raw(code),
        OsErrno::EMFILE
            | OsErrno::ENFILE
            | OsErrno::ENOBUFS
            | OsErrno::ENOMEM
            | OsErrno::EADDRNOTAVAIL
            | OsErrno::EAGAIN
            | OsErrno::ENOSPC
    )
}

fn is_self_connected(socket: &Socket) -> bool {
    match (socket.local_addr(), socket.peer_addr()) {
        (Ok(local), Ok(peer)) => local.as_socket() == peer.as_socket(),
        _ => false,
    }
}

fn outcome(
    target: SocketAddr,
    state: ConnectState,
    errno: Option<Errno>,
    icmp: Option<IcmpError>,
    elapsed: Duration,
    tries: u32,
) -> PortOutcome {
    PortOutcome { target, state, errno, icmp, elapsed_us: clock::micros(elapsed), tries }
}

/// A wait in whole milliseconds, rounded up so a deadline is never polled too early.
fn millis(wait: Duration) -> u16 {
    let rounded = wait.as_micros().div_ceil(1000);
    u16::try_from(rounded).unwrap_or(u16::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the engine over `work` and returns every outcome, sorted by target.
    fn scan(work: Work, settings: Settings) -> Vec<PortOutcome> {
        let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
        start(Arc::new(work), settings, StopFlag::default(), sender).unwrap();
        let mut all = Vec::new();
        while let Some(batch) = receiver.blocking_recv() {
            all.extend(batch);
        }
        all.sort_by_key(|outcome| outcome.target);
        all
    }

    fn settings(window: usize, threads: usize) -> Settings {
        Settings { timeout: Duration::from_millis(500), retries: 1, window, threads }
    }

    fn localhost() -> IpAddr {
        "127.0.0.1".parse().unwrap()
    }

    #[test]
    fn every_port_gets_one_outcome_and_listeners_are_open() {
        let listeners: Vec<std::net::TcpListener> =
            (0..3).map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap()).collect();
        let open: Vec<u16> = listeners.iter().map(|l| l.local_addr().unwrap().port()).collect();
        let low = *open.iter().min().unwrap();
        let ports: Vec<u16> = (low.saturating_sub(300).max(1)..=low.saturating_add(300)).collect();
        let count = ports.len();
        let outcomes = scan(
            Work { addresses: vec![localhost()], ports, budget: None, loss: Default::default() },
            settings(64, 2),
        );
        assert_eq!(outcomes.len(), count, "one outcome per port");
        for outcome in &outcomes {
            let expected = if open.contains(&outcome.target.port()) {
                ConnectState::Open
            } else {
                ConnectState::Refused
            };
            // A port outside the listeners may be open by another program on this machine.
            if expected == ConnectState::Open {
                assert_eq!(outcome.state, expected, "{outcome:?}");
            } else {
                assert!(matches!(outcome.state, ConnectState::Refused | ConnectState::Open));
            }
        }
    }

    #[test]
    fn a_window_of_one_still_scans_everything() {
        let ports: Vec<u16> = (40_000..40_100).collect();
        let outcomes = scan(
            Work { addresses: vec![localhost()], ports, budget: None, loss: Default::default() },
            settings(1, 1),
        );
        assert_eq!(outcomes.len(), 100);
        assert!(outcomes.iter().all(|o| o.tries == 1));
    }

    /// Where the hanging ports live: a loopback address of its own, so that other tests'
    /// scans of 127.0.0.1 never touch them.
    const HANGING_HOST: [u8; 4] = [127, 0, 0, 2];

    /// A loopback listener whose accept queue is full, so the kernel drops further SYNs (as a
    /// firewall's DROP would), kept with its fillers.
    fn hanging_port() -> (Socket, Vec<std::net::TcpStream>, u16) {
        let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        listener.bind(&SocketAddr::from((HANGING_HOST, 0)).into()).unwrap();
        listener.listen(0).unwrap();
        let address = listener.local_addr().unwrap().as_socket().unwrap();
        // Connect until one hangs: the queue is full then.
        let fillers = (0..4)
            .map_while(|_| {
                std::net::TcpStream::connect_timeout(&address, Duration::from_millis(20)).ok()
            })
            .collect();
        (listener, fillers, address.port())
    }

    /// Connects in SYN_SENT towards these ports of [`HANGING_HOST`].
    fn syn_sent_to(ports: &[u16]) -> usize {
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
        let wanted: Vec<String> = ports.iter().map(|p| format!("0200007F:{p:04X}")).collect();
        table
            .lines()
            .skip(1)
            .map(|line| line.split_whitespace().collect::<Vec<_>>())
            .filter(|fields| {
                fields.get(3) == Some(&"02")
                    && wanted.iter().any(|w| fields.get(2) == Some(&w.as_str()))
            })
            .count()
    }

    #[test]
    fn with_room_for_all_the_work_every_connect_is_in_flight_at_once() {
        // Two threads sharing a window exactly as large as the work: neither may hold items it
        // cannot launch, or they would wait a whole deadline for the next wave.
        let hanging: Vec<_> = (0..40).map(|_| hanging_port()).collect();
        let ports: Vec<u16> = hanging.iter().map(|(_, _, port)| *port).collect();
        let mut sorted = ports.clone();
        sorted.sort_unstable();
        let work = Work {
            addresses: vec![IpAddr::from(HANGING_HOST)],
            ports: sorted,
            budget: None,
            loss: Default::default(),
        };
        let settings = Settings { timeout: Duration::from_secs(30), ..settings(40, 2) };
        let (sender, _receiver) = tokio::sync::mpsc::unbounded_channel();
        let stop = StopFlag::default();
        start(Arc::new(work), settings, stop.clone(), sender).unwrap();
        let start = Instant::now();
        while syn_sent_to(&ports) < ports.len() && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let in_flight = syn_sent_to(&ports);
        stop.stop();
        assert_eq!(in_flight, ports.len(), "every connect in flight together");
    }

    #[test]
    fn answers_that_came_before_the_deadline_are_never_called_silence() {
        // Launching 2,000 connects outlasts a 1 ms deadline, and more answers wait than one
        // epoll buffer holds: every one must still be collected as the answer it is.
        let ports: Vec<u16> = (31_000..33_000).collect();
        let settings =
            Settings { timeout: Duration::from_millis(1), retries: 0, window: 2_000, threads: 1 };
        let outcomes = scan(
            Work {
                addresses: vec![IpAddr::from(HANGING_HOST)],
                ports,
                budget: None,
                loss: Default::default(),
            },
            settings,
        );
        assert_eq!(outcomes.len(), 2_000);
        let silent = outcomes.iter().filter(|o| o.state == ConnectState::Timeout).count();
        assert_eq!(silent, 0, "loopback answers every connect at once");
    }

    #[test]
    fn the_window_halves_under_pressure_and_grows_back() {
        let mut window = Window::new(100);
        window.shrink(80);
        assert_eq!(window.size, 40);
        window.shrink(0);
        assert_eq!(window.size, 1);
        (0..500).for_each(|_| window.grow());
        assert_eq!(window.size, 100);
    }

    #[test]
    fn waits_round_up_to_whole_milliseconds() {
        assert_eq!(millis(Duration::from_micros(1)), 1);
        assert_eq!(millis(Duration::from_millis(20)), 20);
        assert_eq!(millis(Duration::from_secs(1_000)), u16::MAX);
    }

    #[test]
    fn resource_shortages_are_told_from_answers() {
        assert!(is_starvation(&io::Error::from_raw_os_error(OsErrno::EMFILE as i32)));
        assert!(is_starvation(&io::Error::from_raw_os_error(OsErrno::EADDRNOTAVAIL as i32)));
        assert!(!is_starvation(&io::Error::from_raw_os_error(OsErrno::ECONNREFUSED as i32)));
        assert!(!is_starvation(&io::Error::other("no errno")));
    }
}
