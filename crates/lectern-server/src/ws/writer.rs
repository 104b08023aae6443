//! The connection's writer: drains its bounded outbound queue of pre-framed messages (the same
//! bytes for every recipient, see `ws_frame`) straight into the socket, all that is waiting in
//! one vectored write; answers the client's pings and close frame (the reader asks); and gives
//! up on a client that takes no data (a write pending for longer than the limit: a slow
//! consumer).
//!
//! Every item is a whole message (all its fragments) or a whole control frame, and the queue is
//! written in order, so a control frame never lands inside a fragmented message. When the
//! writer stops in the middle of a write (kill switch, stalled client), it finishes only the
//! message it had started before its close frames, so what the client reads stays well framed.

use std::collections::VecDeque;
use std::io::{self, IoSlice};

use bytes::Buf;

use super::*;

/// Why the writer stopped writing to a client.
enum Stop {
    /// The socket is gone, or the client was told to go: nothing more to do.
    Done,
    /// The client is not taking data: close it as a slow consumer.
    Stalled,
}

/// The most buffers given to one vectored write (Linux takes up to 1,024).
const MAX_SLICES: usize = 64;

/// The most items taken from the outbound queue at once.
const BATCH: usize = 256;

/// Room kept for this many items in the writer's own queues once a burst is written. They grow
/// to what a burst needed (a join storm queues hundreds of `participant_joined` notices per
/// connection, ~40 bytes each in each queue) and would keep it for the connection's life: given
/// back once the burst is out, they cost memory only while it lasts. Steady chat rarely has
/// more than a few items waiting, so this frees nothing (and costs nothing) per delivery.
const KEEP_ITEMS: usize = 16;

/// Frames on their way into the socket.
struct Wire {
    out: WriteSide,
    /// Whole messages or control frames, oldest first. The first may be partly written.
    queue: VecDeque<Bytes>,
    /// The first item of `queue` is partly written.
    started: bool,
}

impl Wire {
    fn new(out: WriteSide) -> Self {
        Wire {
            out,
            queue: VecDeque::new(),
            started: false,
        }
    }

    fn push(&mut self, frames: Bytes) {
        self.queue.push_back(frames);
    }

    /// Write everything queued.
    async fn write_all(&mut self) -> io::Result<()> {
        std::future::poll_fn(|cx| self.poll_write_all(cx)).await
    }

    fn poll_write_all(&mut self, cx: &mut std::task::Context<'_>) -> Poll<io::Result<()>> {
        while !self.queue.is_empty() {
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let mut n = 0;
            for (slot, frames) in slices.iter_mut().zip(&self.queue) {
                *slot = IoSlice::new(frames);
                n += 1;
            }
            let written = match self.out.as_mut().poll_write_vectored(cx, &slices[..n]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(written)) => written,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            };
            self.advance(written);
        }
        self.queue.shrink_to(KEEP_ITEMS);
        Poll::Ready(Ok(()))
    }

    fn advance(&mut self, mut written: usize) {
        while let Some(front) = self.queue.front_mut() {
            if written < front.len() {
                front.advance(written);
                self.started = written > 0 || self.started;
                return;
            }
            written -= front.len();
            self.queue.pop_front();
            self.started = false;
        }
    }

    /// Drop what has not started; keep the rest of a message partly written, so the frames
    /// that follow (a close) start on a frame boundary.
    fn cut(&mut self) {
        self.queue.truncate(usize::from(self.started));
    }

    /// Queue the `closing` message and the close frame for `reason`.
    fn push_close(&mut self, reason: CloseReason, closing: &Utf8Bytes, fragment: usize) {
        self.push(ws_frame::text(closing, fragment));
        let text = close_text(reason);
        self.push(ws_frame::close(Some((close_code(reason), &text))));
    }
}

pub(super) async fn write_loop(
    out: WriteSide,
    rx: mpsc::Receiver<Outbound>,
    kill: Arc<KillSwitch>,
    shared: Arc<Shared>,
    conn: ConnId,
) {
    let mut wire = Wire::new(out);
    if let Stop::Stalled = write_until_done(&mut wire, rx, &kill, &shared, conn).await {
        Metrics::inc(&shared.metrics.slow_clients_dropped);
        debug!(conn = conn.0, "closing a connection that takes no data");
        let reason = CloseReason::SlowConsumer;
        let fragment = shared.config.websocket.send_fragment_bytes;
        wire.cut();
        wire.push_close(reason, &closing_frame(reason), fragment);
        let _ = tokio::time::timeout(Duration::from_millis(200), wire.write_all()).await;
    }
}

/// A write to the socket, bounded by `websocket.write_timeout_secs`: a client whose socket
/// takes no data for that long (its buffers full) is stalled.
///
/// The timer starts only when the write does not complete at its first poll. Nearly every
/// write does (the socket's send buffer has room), and this runs for every delivery: a
/// `tokio::time::timeout` would read the clock and clone the runtime handle each time.
async fn bounded<E>(
    limit: Duration,
    write: impl Future<Output = Result<(), E>>,
) -> Result<(), Stop> {
    let mut write = std::pin::pin!(write);
    let mut timer: Option<Pin<Box<tokio::time::Sleep>>> = None;
    std::future::poll_fn(|cx| {
        if let Poll::Ready(written) = write.as_mut().poll(cx) {
            return Poll::Ready(written.map_err(|_| Stop::Done));
        }
        let timer = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        timer.as_mut().poll(cx).map(|()| Err(Stop::Stalled))
    })
    .await
}

async fn write_until_done(
    wire: &mut Wire,
    mut rx: mpsc::Receiver<Outbound>,
    kill: &KillSwitch,
    shared: &Shared,
    conn: ConnId,
) -> Stop {
    let stall = Duration::from_secs(shared.config.websocket.write_timeout_secs);
    let limits = &shared.config.limits;
    let window = Duration::from_secs(limits.abuse_window_secs);
    let fragment = shared.config.websocket.send_fragment_bytes;
    let mut refusals: VecDeque<Instant> = VecDeque::new();
    let mut items: Vec<Outbound> = Vec::new();
    // Pings come through the queue (`ws::keepalive`): a timer polled here would be polled at
    // every delivery.
    loop {
        tokio::select! {
            biased;
            reason = std::future::poll_fn(|cx| kill.poll_pulled(cx)) => {
                wire.push_close(reason, &closing_frame(reason), fragment);
                let _ = tokio::time::timeout(Duration::from_millis(200), wire.write_all()).await;
                return Stop::Done;
            }
            received = rx.recv_many(&mut items, BATCH) => {
                if received == 0 {
                    // Every sender is gone: the connection is over.
                    wire.push(ws_frame::close(None));
                    let _ = bounded(stall, wire.write_all()).await;
                    return Stop::Done;
                }
                // The last write when this batch ends the connection.
                let mut last = false;
                for item in items.drain(..) {
                    match item {
                        Outbound::Frame(frames) => wire.push(frames),
                        Outbound::Refusal(frames) => {
                            wire.push(frames);
                            let now = Instant::now();
                            refusals.push_back(now);
                            while refusals.front().is_some_and(|t| now.duration_since(*t) > window) {
                                refusals.pop_front();
                            }
                            if refusals.len() > limits.abuse_strikes as usize {
                                Metrics::inc(&shared.metrics.abuse_closed);
                                debug!(conn = conn.0, "closing an abusive connection");
                                let reason = CloseReason::Abuse;
                                wire.push_close(reason, &closing_frame(reason), fragment);
                                last = true;
                                break;
                            }
                        }
                        Outbound::Close { reason, frame } => {
                            wire.push_close(reason, &frame, fragment);
                            last = true;
                            break;
                        }
                        Outbound::Ping => wire.push(ws_frame::ping()),
                        Outbound::Pong(payload) => wire.push(ws_frame::pong(&payload)),
                        Outbound::CloseReply(code) => {
                            wire.push(ws_frame::close(code.map(|code| (code, ""))));
                            last = true;
                            break;
                        }
                    }
                }
                // Empty now (drained): give back what a burst made it grow to.
                items.shrink_to(KEEP_ITEMS);
                if last {
                    items.clear();
                    let _ = tokio::time::timeout(stall, wire.write_all()).await;
                    return Stop::Done;
                }
                tokio::select! {
                    biased;
                    r = bounded(stall, wire.write_all()) => if let Err(stop) = r { return stop },
                    reason = std::future::poll_fn(|cx| kill.poll_pulled(cx)) => {
                        wire.cut();
                        wire.push_close(reason, &closing_frame(reason), fragment);
                        let _ = tokio::time::timeout(Duration::from_millis(200), wire.write_all()).await;
                        return Stop::Done;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;

    #[tokio::test]
    async fn a_write_that_completes_at_once_needs_no_timer_and_one_that_hangs_is_stalled() {
        let limit = Duration::from_millis(20);
        let done = bounded(limit, async { Ok::<(), ()>(()) }).await;
        assert!(matches!(done, Ok(())));
        let failed = bounded(limit, async { Err::<(), ()>(()) }).await;
        assert!(matches!(failed, Err(Stop::Done)));
        // Pending at its first poll: the timer starts then, and ends it.
        let hung = bounded(limit, std::future::pending::<Result<(), ()>>()).await;
        assert!(matches!(hung, Err(Stop::Stalled)));
    }

    #[tokio::test]
    async fn a_cut_keeps_the_message_partly_written_and_drops_the_ones_not_started() {
        // A pipe that takes 10 bytes before it is full.
        let (write, mut read) = tokio::io::duplex(10);
        let mut wire = Wire::new(Box::pin(write));
        wire.push(Bytes::from_static(b"0123456"));
        wire.push(Bytes::from_static(b"abcdefgh"));
        wire.push(Bytes::from_static(b"ABCD"));
        let stalled = bounded(Duration::from_millis(50), wire.write_all()).await;
        assert!(matches!(stalled, Err(Stop::Stalled)));
        assert!(wire.started, "the second item is partly written");
        wire.cut();
        wire.push(Bytes::from_static(b"!"));
        let mut got = Vec::new();
        let reading = async {
            let mut buf = [0u8; 4];
            while got.len() < 16 {
                let n = read.read(&mut buf).await.expect("read");
                got.extend_from_slice(&buf[..n]);
            }
        };
        let (_, written) = tokio::join!(reading, wire.write_all());
        written.expect("written");
        assert_eq!(got, b"0123456abcdefgh!");
        assert!(wire.queue.is_empty() && !wire.started);
    }

    #[tokio::test]
    async fn the_queue_gives_back_what_a_burst_made_it_grow_to() {
        let (write, mut read) = tokio::io::duplex(1 << 16);
        let mut wire = Wire::new(Box::pin(write));
        for _ in 0..BATCH {
            wire.push(Bytes::from_static(b"0123456789"));
        }
        assert!(wire.queue.capacity() >= BATCH);
        let reading = async {
            let mut got = vec![0u8; BATCH * 10];
            read.read_exact(&mut got).await.expect("read");
        };
        let (_, written) = tokio::join!(reading, wire.write_all());
        written.expect("written");
        assert!(wire.queue.is_empty());
        assert!(
            wire.queue.capacity() <= KEEP_ITEMS,
            "{} items of room kept after the burst",
            wire.queue.capacity()
        );
    }
}
