//! The MSS probe of a connection that opened and then stalled: the same exchange (the TLS
//! handshake, the HTTP response) repeated on new connections that announce a smaller MSS
//! (`TCP_MAXSEG` set before connect), so the server's segments shrink below a black hole's MTU.
//!
//! First [`SMALL_MSS`] with the check's own deadline; then the default MSS again (the stall,
//! with its `TCP_INFO`) and a binary search between them, each try waited for a few times what
//! the small one took. Bounded: at most [`MAX_TRIES`] connections and [`PROBE_BUDGET`] in all.
//! This module only measures; the verdict decides what the tries prove.

use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use socket2::SockRef;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use whyrefused_shared::{
    AfterConnect, HttpReport, LARGE_SEND, LargeSend, MssTry, MtuProbe, SMALL_MSS,
};

use super::after_connect::AfterConnectPlan;
use super::{tcp_info, tls};
use crate::{clock, rate};

/// The most connections one probe opens.
pub const MAX_TRIES: usize = 10;

/// The most time one probe takes, all tries together.
pub const PROBE_BUDGET: Duration = Duration::from_secs(8);

/// The search stops once the largest working and smallest stalling MSS are this close: 16
/// bytes of MSS are 16 bytes of implied MTU.
pub const PRECISION: u32 = 16;

/// How long a try after the small one is waited for: this many times what the small one took.
const WAIT_FACTOR: u32 = 5;

/// The shortest and longest wait for a try after the small one.
const MIN_WAIT: Duration = Duration::from_millis(300);
const MAX_WAIT: Duration = Duration::from_secs(2);

/// Bytes a `large` check sends: a dozen full-size segments. Newlines, which line-based
/// services read as empty lines.
pub const LARGE_BYTES: usize = 16 * 1024;

/// How often a `large` send's acknowledgement is looked at.
const ACK_POLL: Duration = Duration::from_millis(10);

/// The exchange a probe repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exchange {
    /// The TLS handshake (and with an HTTP path, the response over it).
    Tls,
    /// The plain HTTP response.
    Http,
    /// A `large` check's payload to the server, acknowledged.
    LargeSend,
}

impl Exchange {
    /// What a plan's connection exchanges after the connect.
    pub fn of(plan: &AfterConnectPlan) -> Exchange {
        if plan.tls { Exchange::Tls } else { Exchange::Http }
    }

    fn name(self) -> &'static str {
        match self {
            Exchange::Tls => "TLS handshake",
            Exchange::Http => "HTTP response",
            Exchange::LargeSend => LARGE_SEND,
        }
    }
}

/// Bytes of a response that prove many full-size segments came through: enough to stop reading.
const ENOUGH_BYTES: usize = 32 * 1024;

/// Whether what followed a connect started and then stalled: a TLS handshake that neither
/// finished nor failed within most of its deadline, or an HTTP request whose answer never
/// completed its head, with no close or reset from the server either way.
pub fn stalled(after: &AfterConnect, deadline: Duration) -> bool {
    if after.early_close.is_some() {
        return false;
    }
    let most_of_deadline = clock::micros(deadline) * 9 / 10;
    if let Some(tls) = &after.tls {
        let silent = !tls.ok && tls.certificate.is_none() && tls.alert.is_none();
        return silent && tls.elapsed_us >= most_of_deadline;
    }
    let silent = |http: &HttpReport| http.status.is_none() && http.closed.is_none();
    after.http.as_ref().is_some_and(|http| silent(http) || http.body_stalled)
}

/// Repeats the exchange `plan` describes with `address` at smaller MSSes (see the module).
pub async fn probe(address: SocketAddr, plan: &AfterConnectPlan, exchange: Exchange) -> MtuProbe {
    let start = Instant::now();
    let header_bytes = if address.is_ipv4() { 40 } else { 60 };
    let mut probe = MtuProbe {
        address,
        exchange: exchange.name().into(),
        tries: Vec::new(),
        header_bytes,
        hops: None,
    };
    let small = exchange_at(address, Some(SMALL_MSS), plan, exchange, plan.deadline).await;
    let small_took = Duration::from_micros(small.elapsed_us);
    let small_completed = small.completed;
    probe.tries.push(small);
    if !small_completed {
        return probe;
    }
    let wait = (small_took * WAIT_FACTOR).clamp(MIN_WAIT, MAX_WAIT);
    let default = exchange_at(address, None, plan, exchange, wait).await;
    let mut search = MssSearch::new(SMALL_MSS, default.mss);
    search.record(default.mss, default.completed);
    probe.tries.push(default);
    while let Some(mss) = search.next() {
        if probe.tries.len() >= MAX_TRIES || start.elapsed() + wait > PROBE_BUDGET {
            break;
        }
        let attempt = exchange_at(address, Some(mss), plan, exchange, wait).await;
        search.record(mss, attempt.completed);
        probe.tries.push(attempt);
    }
    probe
}

/// A binary search for the largest MSS that completes, between one known to complete (`works`)
/// and one known to stall (`stalls`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MssSearch {
    /// The largest MSS seen to complete.
    pub works: u32,
    /// The smallest MSS seen to stall; `None` while every MSS tried completed.
    pub stalls: Option<u32>,
}

impl MssSearch {
    /// A search between `works` (completed) and `upper` (not tried yet, or stalled).
    pub fn new(works: u32, upper: u32) -> Self {
        MssSearch { works, stalls: Some(upper.max(works)) }
    }

    /// Notes how a try at `mss` went.
    pub fn record(&mut self, mss: u32, completed: bool) {
        if completed {
            self.works = self.works.max(mss);
            if self.stalls.is_some_and(|stalls| stalls <= mss) {
                self.stalls = None;
            }
        } else {
            self.stalls = Some(self.stalls.map_or(mss, |stalls| stalls.min(mss)));
        }
    }

    /// The next MSS to try, or `None` once the bounds are within [`PRECISION`] (or nothing
    /// stalls: no black hole to bound).
    pub fn next(&self) -> Option<u32> {
        let stalls = self.stalls?;
        (stalls > self.works + PRECISION).then(|| self.works + (stalls - self.works) / 2)
    }
}

/// One try: a new connection announcing `mss` (the system's default for `None`), the exchange,
/// and what `TCP_INFO` says at its end.
async fn exchange_at(
    address: SocketAddr,
    mss: Option<u32>,
    plan: &AfterConnectPlan,
    exchange: Exchange,
    wait: Duration,
) -> MssTry {
    rate::before_connect(plan.budget.as_deref()).await;
    let start = Instant::now();
    let mut attempt = MssTry {
        mss: mss.unwrap_or_default(),
        default: mss.is_none(),
        completed: false,
        elapsed_us: 0,
        bytes_received: None,
        out_of_order: None,
    };
    let connected = tokio::time::timeout(wait, open_with_mss(address, mss)).await;
    if let Ok(Ok((stream, watcher))) = connected {
        if let Ok(effective) = SockRef::from(&stream).tcp_mss() {
            attempt.mss = mss.unwrap_or(effective);
        }
        let left = wait.saturating_sub(start.elapsed());
        let repeated = async {
            match exchange {
                Exchange::LargeSend => {
                    let mut stream = stream;
                    send_acknowledged(&mut stream, watcher.as_fd(), left).await.0 >= LARGE_BYTES
                }
                Exchange::Tls | Exchange::Http => repeat(stream, plan, left).await,
            }
        };
        attempt.completed = tokio::time::timeout(left, repeated).await.unwrap_or(false);
        if let Ok(info) = tcp_info::read(watcher.as_fd()) {
            attempt.bytes_received = Some(info.bytes_received);
            attempt.out_of_order = info.out_of_order;
        }
    }
    attempt.elapsed_us = clock::micros(start.elapsed());
    attempt
}

/// A `large` check's send: a new connection at the default MSS, [`LARGE_BYTES`] to the server,
/// and how much of it was acknowledged within the plan's deadline.
pub async fn large_send(address: SocketAddr, plan: &AfterConnectPlan) -> LargeSend {
    rate::before_connect(plan.budget.as_deref()).await;
    let start = Instant::now();
    let mut sent = LargeSend {
        address,
        bytes: LARGE_BYTES as u64,
        acknowledged_bytes: 0,
        acknowledged: false,
        elapsed_us: 0,
    };
    if let Ok(Ok((mut stream, watcher))) =
        tokio::time::timeout(plan.deadline, open_with_mss(address, None)).await
    {
        let left = plan.deadline.saturating_sub(start.elapsed());
        let (acked, _) = send_acknowledged(&mut stream, watcher.as_fd(), left).await;
        sent.acknowledged_bytes = acked as u64;
        sent.acknowledged = acked >= LARGE_BYTES;
    }
    sent.elapsed_us = clock::micros(start.elapsed());
    sent
}

/// Sends [`LARGE_BYTES`] and watches `TCP_INFO` until the server acknowledged them all or
/// `wait` passed; returns the bytes acknowledged and how long it took.
async fn send_acknowledged(
    stream: &mut TcpStream,
    watcher: BorrowedFd<'_>,
    wait: Duration,
) -> (usize, Duration) {
    let start = Instant::now();
    let acked = || tcp_info::read(watcher).map_or(0, |info| info.bytes_acked as usize);
    let before = acked();
    let payload = vec![b'\n'; LARGE_BYTES];
    if !matches!(tokio::time::timeout(wait, stream.write_all(&payload)).await, Ok(Ok(()))) {
        return (acked().saturating_sub(before), start.elapsed());
    }
    loop {
        let done = acked().saturating_sub(before);
        if done >= LARGE_BYTES || start.elapsed() >= wait {
            return (done, start.elapsed());
        }
        tokio::time::sleep(ACK_POLL).await;
    }
}

/// A connection to `address` announcing `mss`, with zero linger, and a second descriptor that
/// keeps the socket readable for `TCP_INFO` after the exchange dropped the stream.
async fn open_with_mss(
    address: SocketAddr,
    mss: Option<u32>,
) -> std::io::Result<(TcpStream, OwnedFd)> {
    let socket = match address {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_zero_linger()?;
    if let Some(mss) = mss {
        SockRef::from(&socket).set_tcp_mss(mss)?;
    }
    let watcher = socket.as_fd().try_clone_to_owned()?;
    Ok((socket.connect(address).await?, watcher))
}

/// The exchange again: the TLS handshake (completed once the server's certificate arrived),
/// then with an HTTP path the response over it; or the plain HTTP response.
async fn repeat(stream: TcpStream, plan: &AfterConnectPlan, wait: Duration) -> bool {
    if !plan.tls {
        let mut stream = stream;
        return response_arrives(&mut stream, plan).await;
    }
    let handshake = tls::handshake(stream, &plan.host, wait).await;
    let arrived = handshake.report.ok || handshake.report.certificate.is_some();
    match handshake.stream {
        Some(mut stream) if handshake.report.ok && plan.http_path.is_some() => {
            response_arrives(&mut stream, plan).await
        }
        _ => arrived,
    }
}

/// Sends the plan's HTTP request and reads the answer until the server closes, or until
/// [`ENOUGH_BYTES`] arrived. Without an HTTP path there is nothing to repeat.
async fn response_arrives<S>(stream: &mut S, plan: &AfterConnectPlan) -> bool
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Some(path) = &plan.http_path else { return false };
    let request = super::after_connect::request_text(&plan.host, plan.port, plan.tls, path);
    if stream.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut received = 0;
    let mut chunk = vec![0; 8192];
    loop {
        match stream.read(&mut chunk).await {
            Ok(0) => return received > 0,
            Ok(read) => received += read,
            Err(_) => return false,
        }
        if received >= ENOUGH_BYTES {
            return true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a search against a path whose largest working MSS is `truth`, from a default
    /// MSS of `default`; returns the MSSes tried and where the search ended.
    fn search_on(truth: u32, default: u32) -> (Vec<u32>, MssSearch) {
        let mut search = MssSearch::new(SMALL_MSS, default);
        search.record(default, default <= truth);
        let mut tried = Vec::new();
        while let Some(mss) = search.next() {
            assert!(tried.len() < MAX_TRIES, "the search ends: {tried:?}");
            tried.push(mss);
            search.record(mss, mss <= truth);
        }
        (tried, search)
    }

    #[test]
    fn the_search_brackets_the_largest_working_mss_within_its_precision() {
        for truth in [536, 600, 1000, 1260, 1400, 1459] {
            let (tried, search) = search_on(truth, 1460);
            let stalls = search.stalls.unwrap();
            assert!(search.works <= truth && truth < stalls, "{truth}: {search:?}");
            assert!(stalls - search.works <= PRECISION, "{truth}: {search:?}");
            assert!(tried.len() <= 7, "{truth}: {} tries", tried.len());
        }
    }

    #[test]
    fn a_default_mss_that_works_leaves_nothing_to_search() {
        let (tried, search) = search_on(1460, 1460);
        assert!(tried.is_empty());
        assert_eq!((search.works, search.stalls), (1460, None));
    }

    #[test]
    fn a_stall_below_what_worked_raises_nothing_and_a_success_above_a_stall_clears_it() {
        let mut search = MssSearch::new(536, 1460);
        search.record(1000, true);
        search.record(900, false);
        assert_eq!((search.works, search.stalls), (1000, Some(900)));
        assert_eq!(search.next(), None, "inconsistent bounds end the search");
        search.record(1200, true);
        assert_eq!((search.works, search.stalls), (1200, None));
    }

    #[test]
    fn only_a_silent_exchange_is_a_stall() {
        use whyrefused_shared::{EarlyClose, Phases, TlsReport};
        let deadline = Duration::from_millis(3000);
        let base = AfterConnect {
            address: "10.0.6.2:9443".parse().unwrap(),
            early_close: None,
            banner: None,
            tls: None,
            http: None,
            phases: Phases::default(),
        };
        let tls = |elapsed_us, error: &str| TlsReport {
            ok: false,
            version: None,
            error: Some(error.into()),
            certificate: None,
            elapsed_us,
            alert: None,
            client_certificate_requested: false,
        };
        let silent_tls = AfterConnect {
            tls: Some(tls(3_000_400, "no handshake within 3000 ms")),
            ..base.clone()
        };
        assert!(stalled(&silent_tls, deadline));
        let not_tls =
            AfterConnect { tls: Some(tls(2_000, "received corrupt message")), ..base.clone() };
        assert!(!stalled(&not_tls, deadline), "a quick failure is no stall");
        let closed = AfterConnect { early_close: Some(EarlyClose::Reset), ..silent_tls };
        assert!(!stalled(&closed, deadline));
        let silent_http = AfterConnect { http: Some(HttpReport::empty()), ..base.clone() };
        assert!(stalled(&silent_http, deadline));
        let answered = HttpReport { status: Some(200), ..HttpReport::empty() };
        assert!(!stalled(&AfterConnect { http: Some(answered.clone()), ..base.clone() }, deadline));
        let cut = HttpReport { body_stalled: true, ..answered };
        assert!(stalled(&AfterConnect { http: Some(cut), ..base.clone() }, deadline));
        assert!(!stalled(&base, deadline), "a plain connection has no exchange to stall");
    }
}
