//! The outbox: everything one socket sends goes through it to that socket's writer task, bounded
//! in bytes so a peer that stops reading is disconnected instead of buffered without limit.
//!
//! Messages are encoded when they are queued, so the outbox knows what it holds: once more than
//! its limit waits unsent, it overflows: every later send is refused, the writer tries to say why
//! in a close frame (for at most [`CLOSE_DEADLINE`]) and stops, and the session's read loop,
//! watching [`Outbox::overflowed`], ends the session.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message};
use futures::SinkExt;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::close;

/// The most bytes a socket's outbox holds unsent by default: a full-range scan's every batch,
/// or a check fanned out to a thousand vantage points, many times over.
pub const DEFAULT_OUTBOX_BYTES: usize = 16 * 1024 * 1024;

/// How long the writer tries to deliver a close frame to a peer that does not read (it must first
/// drain what the kernel holds for it, megabytes on a fast link), and how long it waits for the
/// session's requests to let go before that.
pub const CLOSE_DEADLINE: Duration = Duration::from_secs(5);

/// The longest a socket stays open after its session ended: the writer's wait for the requests
/// and its close frame, then the peer's answer to the close.
pub const LINGER_LIMIT: Duration = Duration::from_secs(15);

/// One frame for the writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A protocol message, already encoded as JSON.
    Text(String),
    /// A ping, to keep a link alive and prove it is.
    Ping,
    /// A close frame; the writer stops after it.
    Close(u16, &'static str),
}

impl Frame {
    fn cost(&self) -> usize {
        match self {
            Frame::Text(text) => text.len(),
            Frame::Ping | Frame::Close(..) => 0,
        }
    }
}

/// Why a frame was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The writer is gone: the socket closed.
    #[error("the socket is closed")]
    Closed,
    /// The peer left more than the limit unread; the socket is being closed.
    #[error("the peer does not read its messages")]
    Overflowed,
}

/// The sending side of one socket, cheap to clone: every clone feeds the same writer.
#[derive(Debug, Clone)]
pub struct Outbox {
    sender: mpsc::UnboundedSender<Frame>,
    /// Bytes queued and not yet written.
    queued: Arc<AtomicUsize>,
    /// The most bytes that may wait.
    limit: usize,
    /// Cancelled once the limit was passed.
    overflow: CancellationToken,
}

/// The writer's side of an [`Outbox`].
#[derive(Debug)]
pub struct Inbox {
    receiver: mpsc::UnboundedReceiver<Frame>,
    queued: Arc<AtomicUsize>,
    overflow: CancellationToken,
}

/// A new outbox holding at most `limit` unsent bytes, and its writer's end.
pub fn outbox(limit: usize) -> (Outbox, Inbox) {
    let (sender, receiver) = mpsc::unbounded_channel();
    let queued = Arc::new(AtomicUsize::new(0));
    let overflow = CancellationToken::new();
    let inbox = Inbox { receiver, queued: queued.clone(), overflow: overflow.clone() };
    (Outbox { sender, queued, limit, overflow }, inbox)
}

impl Outbox {
    /// Queues a frame, unless the peer already left too much unread (then the outbox overflows
    /// and refuses everything from now on).
    pub fn send(&self, frame: Frame) -> Result<(), SendError> {
        if self.overflow.is_cancelled() {
            return Err(SendError::Overflowed);
        }
        let cost = frame.cost();
        let queued = self.queued.fetch_add(cost, Ordering::AcqRel) + cost;
        if queued > self.limit {
            self.queued.fetch_sub(cost, Ordering::AcqRel);
            self.overflow.cancel();
            return Err(SendError::Overflowed);
        }
        self.sender.send(frame).map_err(|_| {
            self.queued.fetch_sub(cost, Ordering::AcqRel);
            SendError::Closed
        })
    }

    /// Encodes a protocol message (either direction's) and queues it.
    pub fn message(&self, message: &impl Serialize) -> Result<(), SendError> {
        // The protocol's types always serialize; a failure would be a bug in them.
        let json = serde_json::to_string(message).expect("protocol messages serialize");
        self.send(Frame::Text(json))
    }

    /// Queues a close frame.
    pub fn close(&self, code: u16, reason: &'static str) {
        let _ = self.send(Frame::Close(code, reason));
    }

    /// Completes once the peer left more than the limit unread.
    pub async fn overflowed(&self) {
        self.overflow.cancelled().await;
    }

    /// Whether the writer is gone.
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }
}

impl Inbox {
    async fn next(&mut self) -> Option<Frame> {
        let frame = self.receiver.recv().await?;
        self.queued.fetch_sub(frame.cost(), Ordering::AcqRel);
        Some(frame)
    }

    /// Throws away what is queued and what comes, until no [`Outbox`] is left.
    async fn discard_until_every_sender_is_gone(&mut self) {
        while self.next().await.is_some() {}
    }

    /// The next frame, if one is queued (for tests and for batching writes).
    pub fn try_next(&mut self) -> Option<Frame> {
        let frame = self.receiver.try_recv().ok()?;
        self.queued.fetch_sub(frame.cost(), Ordering::AcqRel);
        Some(frame)
    }
}

/// Writes everything from the inbox as WebSocket frames until a close, until every sender is
/// gone, or until the outbox overflows (then, once every sender is gone, a close frame naming
/// why, if the peer takes it within [`CLOSE_DEADLINE`]). Frames queued together are written together and flushed once.
pub async fn write_frames(
    mut sink: impl futures::Sink<Message, Error = axum::Error> + Unpin,
    mut inbox: Inbox,
) {
    let overflow = inbox.overflow.clone();
    let written = async {
        while let Some(first) = inbox.next().await {
            let mut next = Some(first);
            while let Some(frame) = next.take() {
                let message = match frame {
                    Frame::Text(text) => Message::Text(text.into()),
                    Frame::Ping => Message::Ping(Vec::new().into()),
                    Frame::Close(code, reason) => {
                        let close = close_frame(code, reason);
                        let _ = tokio::time::timeout(CLOSE_DEADLINE, sink.send(close)).await;
                        return true;
                    }
                };
                if sink.feed(message).await.is_err() {
                    return true;
                }
                next = inbox.try_next();
            }
            if sink.flush().await.is_err() {
                return true;
            }
        }
        false
    };
    let closed = tokio::select! {
        biased;
        () = overflow.cancelled() => false,
        closed = written => closed,
    };
    if overflow.is_cancelled() {
        // The close comes after the session and its requests have let go of the outbox (what
        // they held, scan slots included, is free again by then), or after the deadline.
        let _ =
            tokio::time::timeout(CLOSE_DEADLINE, inbox.discard_until_every_sender_is_gone()).await;
        let close = close_frame(close::POLICY, close::TOO_SLOW);
        let _ = tokio::time::timeout(CLOSE_DEADLINE, sink.send(close)).await;
    } else if !closed {
        let _ = sink.close().await;
    }
}

/// Ends a socket's life once its session is over: waits for the writer (and its close frame),
/// then for the peer's answer to the close, reading on and throwing away what the peer still
/// sends. A socket closed with unread input is reset, and the reset would discard the close frame
/// on its way. The peer's answer is awaited for at most `answer_wait` (zero when the agent shuts
/// down), and everything for at most [`LINGER_LIMIT`], then the writer is stopped.
pub async fn linger(
    writer: tokio::task::JoinHandle<()>,
    incoming: &mut (impl futures::Stream<Item = Result<Message, axum::Error>> + Unpin),
    answer_wait: Duration,
) {
    let abort = writer.abort_handle();
    let until_the_peer_closes = async {
        while let Some(Ok(frame)) = futures::StreamExt::next(incoming).await {
            if matches!(frame, Message::Close(_)) {
                break;
            }
        }
    };
    let both = async {
        tokio::pin!(until_the_peer_closes, writer);
        tokio::select! {
            _ = &mut writer => {
                let _ = tokio::time::timeout(answer_wait, until_the_peer_closes).await;
            }
            () = &mut until_the_peer_closes => {
                let _ = writer.await;
            }
        }
    };
    if tokio::time::timeout(LINGER_LIMIT, both).await.is_err() {
        abort.abort();
    }
}

fn close_frame(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame { code, reason: reason.into() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_that_leaves_more_than_the_limit_unread_overflows_the_outbox() {
        let (outbox, mut inbox) = outbox(10);
        assert_eq!(outbox.send(Frame::Text("12345".into())), Ok(()));
        assert_eq!(outbox.send(Frame::Text("12345".into())), Ok(()));
        assert_eq!(outbox.send(Frame::Text("1".into())), Err(SendError::Overflowed));
        assert_eq!(outbox.send(Frame::Ping), Err(SendError::Overflowed), "refused from now on");
        assert!(inbox.overflow.is_cancelled());
        assert_eq!(inbox.try_next(), Some(Frame::Text("12345".into())));
    }

    #[test]
    fn written_frames_make_room_again() {
        let (outbox, mut inbox) = outbox(10);
        for _ in 0..100 {
            outbox.send(Frame::Text("1234567".into())).unwrap();
            assert!(inbox.try_next().is_some());
        }
        assert_eq!(inbox.queued.load(Ordering::Acquire), 0);
    }

    #[test]
    fn a_closed_writer_refuses_frames_without_counting_them() {
        let (outbox, inbox) = outbox(10);
        drop(inbox);
        assert_eq!(outbox.send(Frame::Text("12345".into())), Err(SendError::Closed));
        assert!(outbox.is_closed());
        assert_eq!(outbox.queued.load(Ordering::Acquire), 0);
    }

    #[tokio::test]
    async fn an_overflowing_outbox_ends_the_writer_with_a_close_naming_why() {
        let (outbox, inbox) = outbox(4);
        let (sink, mut written) = futures::channel::mpsc::unbounded::<Message>();
        let _ = outbox.send(Frame::Text("too long".into()));
        drop(outbox);
        write_frames(sink.sink_map_err(axum::Error::new), inbox).await;
        let Some(Message::Close(Some(frame))) = futures::StreamExt::next(&mut written).await else {
            panic!("a close frame")
        };
        assert_eq!((frame.code, frame.reason.as_str()), (close::POLICY, close::TOO_SLOW));
    }

    #[tokio::test(start_paused = true)]
    async fn the_close_after_an_overflow_waits_for_the_running_requests_to_let_go() {
        let (outbox, inbox) = outbox(4);
        let request = outbox.clone();
        let (sink, mut written) = futures::channel::mpsc::unbounded::<Message>();
        let writer = tokio::spawn(write_frames(sink.sink_map_err(axum::Error::new), inbox));
        let _ = outbox.send(Frame::Text("too long".into()));
        drop(outbox);
        tokio::time::sleep(CLOSE_DEADLINE / 2).await;
        assert!(written.try_recv().is_err(), "no close while a request still runs");
        drop(request);
        writer.await.unwrap();
        let Ok(Message::Close(Some(frame))) = written.try_recv() else {
            panic!("a close frame once the request let go")
        };
        assert_eq!(frame.code, close::POLICY);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_that_never_lets_go_delays_the_close_only_until_the_deadline() {
        let (outbox, inbox) = outbox(4);
        let (sink, mut written) = futures::channel::mpsc::unbounded::<Message>();
        let _ = outbox.send(Frame::Text("too long".into()));
        write_frames(sink.sink_map_err(axum::Error::new), inbox).await;
        assert!(matches!(written.try_recv(), Ok(Message::Close(_))));
        drop(outbox);
    }

    /// The peer's side of a socket: `frames`, then nothing more, ever.
    fn peer_sending(
        frames: Vec<Message>,
    ) -> impl futures::Stream<Item = Result<Message, axum::Error>> + Unpin {
        futures::StreamExt::chain(
            futures::stream::iter(frames.into_iter().map(Ok)),
            futures::stream::pending(),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn lingering_reads_what_the_peer_still_sends_until_its_close() {
        let writer = tokio::spawn(async {});
        let text = || Message::Text("more".into());
        let mut incoming = peer_sending(vec![text(), text(), Message::Close(None), text()]);
        let started = tokio::time::Instant::now();
        linger(writer, &mut incoming, CLOSE_DEADLINE).await;
        assert_eq!(started.elapsed(), Duration::ZERO, "the peer's close ends it at once");
        let after = futures::StreamExt::next(&mut incoming).await;
        assert!(matches!(after, Some(Ok(Message::Text(_)))), "read up to the close only");
    }

    #[tokio::test(start_paused = true)]
    async fn lingering_waits_for_a_silent_peer_only_as_long_as_asked() {
        let started = tokio::time::Instant::now();
        linger(tokio::spawn(async {}), &mut peer_sending(vec![]), CLOSE_DEADLINE).await;
        assert_eq!(started.elapsed(), CLOSE_DEADLINE);
        let started = tokio::time::Instant::now();
        linger(tokio::spawn(async {}), &mut peer_sending(vec![]), Duration::ZERO).await;
        assert_eq!(started.elapsed(), Duration::ZERO, "no wait when the agent shuts down");
    }

    #[tokio::test(start_paused = true)]
    async fn a_writer_that_never_ends_is_stopped_at_the_linger_limit() {
        let writer = tokio::spawn(futures::future::pending::<()>());
        let stopped = writer.abort_handle();
        let started = tokio::time::Instant::now();
        linger(writer, &mut peer_sending(vec![]), CLOSE_DEADLINE).await;
        assert_eq!(started.elapsed(), LINGER_LIMIT);
        tokio::task::yield_now().await;
        assert!(stopped.is_finished(), "the writer was aborted");
    }
}
