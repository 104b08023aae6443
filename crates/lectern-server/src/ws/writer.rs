//! The connection's writer: drains its bounded outbound queue into the WebSocket, coalescing
//! what is waiting into one flush, cuts long messages into fragments, and gives up on a client
//! that takes no data (a write pending for longer than the limit: a slow consumer).

use super::*;

/// Why the writer stopped writing to a client.
enum Stop {
    /// The socket is gone, or the client was told to go: nothing more to do.
    Done,
    /// The client is not taking data: close it as a slow consumer.
    Stalled,
}

pub(super) async fn write_loop(
    mut sink: SplitSink<Socket, Message>,
    rx: mpsc::Receiver<Outbound>,
    kill: oneshot::Receiver<CloseReason>,
    pong: Arc<AtomicBool>,
    shared: Arc<Shared>,
    conn: ConnId,
) {
    if let Stop::Stalled = write_until_done(&mut sink, rx, kill, &pong, &shared, conn).await {
        Metrics::inc(&shared.metrics.slow_clients_dropped);
        debug!(conn = conn.0, "closing a connection that takes no data");
        let reason = CloseReason::SlowConsumer;
        let _ = tokio::time::timeout(
            Duration::from_millis(200),
            close_with(&mut sink, reason, closing_frame(reason)),
        )
        .await;
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
    sink: &mut SplitSink<Socket, Message>,
    mut rx: mpsc::Receiver<Outbound>,
    mut kill: oneshot::Receiver<CloseReason>,
    pong: &AtomicBool,
    shared: &Shared,
    conn: ConnId,
) -> Stop {
    let ping_every = Duration::from_secs(shared.config.websocket.ping_interval_secs);
    let stall = Duration::from_secs(shared.config.websocket.write_timeout_secs);
    let limits = &shared.config.limits;
    let window = Duration::from_secs(limits.abuse_window_secs);
    let fragment = shared.config.websocket.send_fragment_bytes;
    let mut refusals: VecDeque<Instant> = VecDeque::new();
    // Pings go out on a fixed schedule, busy or not: the reader closes a connection that has
    // sent nothing for `idle_timeout_secs`, and a student who only listens answers nothing but
    // pings (outbound traffic must not put them off). A Ping still unanswered when the next is
    // due means the client is not reading its socket.
    let mut ping = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut kill_armed = true;
    loop {
        tokio::select! {
            biased;
            reason = &mut kill, if kill_armed => {
                // The room dropped its handle without pulling the switch (e.g. after queueing a
                // polite close): carry on with the queue.
                let Ok(reason) = reason else {
                    kill_armed = false;
                    continue;
                };
                let _ = tokio::time::timeout(
                    Duration::from_millis(200),
                    close_with(sink, reason, closing_frame(reason)),
                )
                .await;
                return Stop::Done;
            }
            item = rx.recv() => {
                let Some(first) = item else {
                    let _ = bounded(stall, sink.send(Message::Close(None))).await;
                    return Stop::Done;
                };
                let mut next = Some(first);
                let mut batch = 0;
                while let Some(item) = next.take() {
                    let bytes = match item {
                        Outbound::Frame(bytes) => bytes,
                        Outbound::Refusal(bytes) => {
                            let now = Instant::now();
                            refusals.push_back(now);
                            while refusals.front().is_some_and(|t| now.duration_since(*t) > window) {
                                refusals.pop_front();
                            }
                            if refusals.len() > limits.abuse_strikes as usize {
                                Metrics::inc(&shared.metrics.abuse_closed);
                                debug!(conn = conn.0, "closing an abusive connection");
                                let close = async {
                                    let _ = feed_text(sink, bytes, fragment).await;
                                    let reason = CloseReason::Abuse;
                                    close_with(sink, reason, closing_frame(reason)).await;
                                };
                                let _ = tokio::time::timeout(stall, close).await;
                                return Stop::Done;
                            }
                            bytes
                        }
                        Outbound::Close { reason, frame } => {
                            let _ = tokio::time::timeout(stall, close_with(sink, reason, frame)).await;
                            return Stop::Done;
                        }
                    };
                    if let Err(stop) = bounded(stall, feed_text(sink, bytes, fragment)).await {
                        return stop;
                    }
                    batch += 1;
                    if batch < 256 {
                        next = rx.try_recv().ok();
                    }
                }
                if kill_armed {
                    tokio::select! {
                        r = bounded(stall, sink.flush()) => if let Err(stop) = r { return stop },
                        r = &mut kill => {
                            if r.is_ok() {
                                return Stop::Done;
                            }
                            kill_armed = false;
                            if let Err(stop) = bounded(stall, sink.flush()).await {
                                return stop;
                            }
                        }
                    }
                } else if let Err(stop) = bounded(stall, sink.flush()).await {
                    return stop;
                }
            }
            _ = ping.tick() => {
                // Unanswered since the last Ping, or answered: either way this one now waits.
                if !pong.swap(false, Ordering::Relaxed) {
                    return Stop::Stalled;
                }
                if let Err(stop) = bounded(stall, sink.send(Message::Ping(Default::default()))).await {
                    return stop;
                }
            }
        }
    }
}

async fn close_with(sink: &mut SplitSink<Socket, Message>, reason: CloseReason, frame: Utf8Bytes) {
    let _ = sink.feed(Message::Text(frame)).await;
    let _ = sink
        .send(Message::Close(Some(CloseFrame {
            code: CloseCode::from(close_code(reason)),
            reason: close_text(reason),
        })))
        .await;
}

/// Queue one text message: as one frame when it fits in `fragment` bytes (or `fragment` is 0),
/// else as fragments of at most that size, cut between characters (RFC 6455, section 5.4).
/// tungstenite's write buffer keeps the capacity of the largest frame it held, so this is what
/// bounds a connection's memory after a large `welcome` (see `ws_upgrade`).
async fn feed_text(
    sink: &mut SplitSink<Socket, Message>,
    text: Utf8Bytes,
    fragment: usize,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    if fragment == 0 || text.len() <= fragment {
        return sink.feed(Message::Text(text)).await;
    }
    for frame in fragments(&text, fragment) {
        sink.feed(Message::Frame(frame)).await?;
    }
    Ok(())
}

/// The frames of one text message cut into pieces of at most `size` bytes (at least one
/// character each), each cut on a character boundary.
fn fragments(text: &Utf8Bytes, size: usize) -> Vec<Frame> {
    let bytes = tokio_tungstenite::tungstenite::Bytes::from(text.clone());
    let s = text.as_str();
    let mut frames = Vec::with_capacity(s.len() / size.max(1) + 1);
    let mut start = 0;
    while start < s.len() {
        let mut end = (start + size).min(s.len());
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        if end == start {
            // `size` is smaller than one character: send that character whole.
            end = start + s[start..].chars().next().map_or(1, char::len_utf8);
        }
        let opcode = if start == 0 {
            OpCode::Data(Data::Text)
        } else {
            OpCode::Data(Data::Continue)
        };
        frames.push(Frame::message(
            bytes.slice(start..end),
            opcode,
            end == s.len(),
        ));
        start = end;
    }
    frames
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn fragments_cut_between_characters_and_rebuild_the_message() {
        let text = "é".repeat(10) + "abc" + &"😀".repeat(5);
        for size in [1, 2, 3, 5, 8, 64] {
            let frames = fragments(&Utf8Bytes::from(text.clone()), size);
            let mut joined = Vec::new();
            for (i, frame) in frames.iter().enumerate() {
                let header = frame.header();
                assert_eq!(header.is_final, i + 1 == frames.len());
                let expected = if i == 0 { Data::Text } else { Data::Continue };
                assert_eq!(header.opcode, OpCode::Data(expected));
                let piece = std::str::from_utf8(frame.payload()).expect("cut between characters");
                assert!(piece.len() <= size.max(4), "{size}: {}", piece.len());
                joined.extend_from_slice(piece.as_bytes());
            }
            assert_eq!(String::from_utf8(joined).expect("utf-8"), text);
        }
    }
}
