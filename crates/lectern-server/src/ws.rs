//! One WebSocket connection: a reader (this task) and a writer task.
//!
//! The reader checks the hello, then forwards decoded requests to the room task. Limits that
//! need no room state (frame size, frame rate, chat rate, malformed JSON) are enforced here with
//! typed errors. The writer drains the bounded outbound queue, coalescing what is waiting into
//! one flush, pings when idle, and closes the connection after too many refusals. Whichever half
//! ends first ends the other, and the room always hears that the connection is gone.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use lectern_proto::{
    ClientFrame, ClientMessage, CloseReason, ErrorCode, PROTOCOL_VERSION, RequestId, ServerMessage,
    decode_client, encode_server,
};
use lectern_room::ConnId;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tracing::{Instrument, debug, info_span, trace};

use crate::conn::{ConnTx, Outbound, close_code, close_text, closing_frame};
use crate::courses::sessions;
use crate::metrics::Metrics;
use crate::rooms::{Opened, RoomCommand};
use crate::shared::Shared;
use crate::ws_upgrade::Socket;

/// Serve one upgraded socket until it closes.
/// `placed`: the URL had `placed=1` (a redirect from the node that placed the room here).
pub async fn serve(
    socket: Socket,
    shared: Arc<Shared>,
    expected_room: Option<String>,
    placed: bool,
) {
    let Some(_done) = shared.task_guard() else {
        return;
    };
    let conn = ConnId(shared.next_conn.fetch_add(1, Ordering::Relaxed));
    let span = info_span!("conn", conn = conn.0);
    async move {
        let metrics = &shared.metrics;
        metrics.connections.fetch_add(1, Ordering::Relaxed);
        Metrics::inc(&metrics.connections_total);
        run(socket, &shared, conn, expected_room, placed).await;
        metrics.connections.fetch_sub(1, Ordering::Relaxed);
    }
    .instrument(span)
    .await;
}

async fn run(
    socket: Socket,
    shared: &Arc<Shared>,
    conn: ConnId,
    expected_room: Option<String>,
    placed: bool,
) {
    let limits = &shared.config.limits;
    let (sink, mut stream) = socket.split();
    let (tx, rx) = mpsc::channel(limits.outbound_queue);
    let (kill_tx, kill_rx) = oneshot::channel();
    // True while no Ping is waiting for its Pong (none is before the first).
    let pong = Arc::new(AtomicBool::new(true));
    // Not instrumented with the connection's span: the writer is polled once per delivery,
    // and entering and leaving a span each time costs more than the write itself. Its few
    // events carry the connection id as a field instead.
    let mut writer = tokio::spawn(write_loop(
        sink,
        rx,
        kill_rx,
        pong.clone(),
        shared.clone(),
        conn,
    ));
    let mut reader = Reader::new(shared, tx.clone(), pong);

    let mut writer_done = false;
    let joined = tokio::select! {
        joined = reader.handshake(&mut stream, expected_room.as_deref(), placed) => joined,
        _ = &mut writer => {
            writer_done = true;
            None
        }
    };
    let room = match joined {
        Some((room_tx, identity, last_seq)) => {
            let command = RoomCommand::Join {
                conn,
                identity,
                last_seq,
                outbound: ConnTx {
                    tx: tx.clone(),
                    kill: kill_tx,
                },
            };
            if room_tx.send(command).await.is_ok() {
                Some(room_tx)
            } else {
                reader.close(CloseReason::ServerShutdown).await;
                None
            }
        }
        None => {
            Metrics::inc(&shared.metrics.handshake_failed);
            None
        }
    };
    if let Some(room_tx) = &room {
        let mut left = false;
        tokio::select! {
            l = reader.read_requests(&mut stream, conn, room_tx) => left = l,
            _ = &mut writer => writer_done = true,
        }
        // After `leave` the room answers (ack, then `closing`) and closes the socket itself:
        // give the writer time to write that before the room hears the connection is gone,
        // which would drop whatever is still queued for it.
        if left && !writer_done {
            writer_done = tokio::time::timeout(Duration::from_secs(2), &mut writer)
                .await
                .is_ok();
        }
        let _ = room_tx.send(RoomCommand::Disconnected { conn }).await;
    }
    // Let the writer flush what it has (e.g. a closing message), then stop it.
    drop(reader);
    drop(tx);
    if !writer_done
        && tokio::time::timeout(Duration::from_secs(2), &mut writer)
            .await
            .is_err()
    {
        writer.abort();
    }
}

struct Reader<'a> {
    shared: &'a Arc<Shared>,
    tx: mpsc::Sender<Outbound>,
    /// Set when a Pong arrives; the writer takes it (and clears it) before each Ping.
    pong: Arc<AtomicBool>,
    frames: DefaultDirectRateLimiter,
    chats: DefaultDirectRateLimiter,
}

/// Why a hello was refused: the code, a message for the client, and the hello's request id.
type Refusal = (ErrorCode, String, Option<RequestId>);

/// A hello whose token checked out.
struct Hello {
    room_id: lectern_proto::RoomId,
    identity: lectern_room::Identity,
    last_seq: Option<u64>,
    request_id: Option<RequestId>,
}

type Joined = (
    mpsc::Sender<RoomCommand>,
    lectern_room::Identity,
    Option<u64>,
);

/// Where an accepted hello goes.
enum Opening {
    /// Into the room, on this node.
    Joined(Joined),
    /// To the node that hosts the room (several nodes).
    Redirect {
        room_id: lectern_proto::RoomId,
        url: String,
    },
    /// Nowhere yet: the room is between nodes.
    Moving,
}

impl<'a> Reader<'a> {
    fn new(shared: &'a Arc<Shared>, tx: mpsc::Sender<Outbound>, pong: Arc<AtomicBool>) -> Self {
        let l = &shared.config.limits;
        let quota = |rate: u32, burst: u32| {
            let nz = |v: u32| NonZeroU32::new(v).unwrap_or(NonZeroU32::MIN);
            Quota::per_second(nz(rate)).allow_burst(nz(burst))
        };
        Reader {
            shared,
            tx,
            pong,
            frames: RateLimiter::direct(quota(l.frames_per_second, l.frames_burst)),
            chats: RateLimiter::direct(quota(l.chat_per_second, l.chat_burst)),
        }
    }

    async fn refuse(&self, code: ErrorCode, message: String, request_id: Option<RequestId>) {
        let error = ServerMessage::Error {
            code,
            message,
            request_id,
        };
        Metrics::inc(&self.shared.metrics.errors_sent);
        let _ = self
            .tx
            .send(Outbound::Refusal(Utf8Bytes::from(encode_server(&error))))
            .await;
    }

    async fn close(&self, reason: CloseReason) {
        let _ = self.tx.send(Outbound::close(reason)).await;
    }

    /// Wait for a valid hello. On failure the client has been told why and the connection is
    /// closing.
    async fn handshake(
        &mut self,
        stream: &mut SplitStream<Socket>,
        expected_room: Option<&str>,
        placed: bool,
    ) -> Option<Joined> {
        let shared = self.shared;
        let limit = Duration::from_secs(shared.config.limits.hello_timeout_secs);
        let mut shutdown = shared.shutdown_rx.clone();
        let first = tokio::select! {
            r = tokio::time::timeout(limit, self.next_text(stream)) => r,
            _ = shutdown.changed() => {
                self.close(CloseReason::ServerShutdown).await;
                return None;
            }
        };
        let result = match first {
            Err(_) => Err((
                ErrorCode::HelloRequired,
                "no hello within the time limit".to_owned(),
                None,
            )),
            Ok(None) => return None,
            Ok(Some(Err((code, message)))) => Err((code, message, None)),
            Ok(Some(Ok(text))) => match self.check_hello(&text, expected_room) {
                Ok(hello) => self.open_room(hello, placed).await,
                Err(refusal) => Err(refusal),
            },
        };
        match result {
            Ok(Opening::Joined(joined)) => Some(joined),
            Ok(Opening::Redirect { room_id, url }) => {
                debug!(room.id = %room_id, "hello redirected to the room's node");
                Metrics::inc(&self.shared.metrics.redirects_sent);
                let redirect = ServerMessage::Redirect { room_id, url };
                let _ = self
                    .tx
                    .send(Outbound::Frame(Utf8Bytes::from(encode_server(&redirect))))
                    .await;
                self.close(CloseReason::Redirected).await;
                None
            }
            Ok(Opening::Moving) => {
                self.close(CloseReason::RoomMoved).await;
                None
            }
            Err((code, message, request_id)) => {
                debug!(code = ?code, "handshake refused");
                self.refuse(code, message, request_id).await;
                self.close(CloseReason::HandshakeFailed).await;
                None
            }
        }
    }

    fn check_hello(&self, text: &str, expected_room: Option<&str>) -> Result<Hello, Refusal> {
        let frame = decode_client(text).map_err(|e| (e.code(), e.to_string(), e.request_id()))?;
        let ClientFrame {
            request_id,
            message:
                ClientMessage::Hello {
                    protocol_version,
                    token,
                    last_seq,
                },
        } = frame
        else {
            return Err((
                ErrorCode::HelloRequired,
                "the first message must be a hello".into(),
                frame.request_id,
            ));
        };
        if protocol_version != PROTOCOL_VERSION {
            return Err((
                ErrorCode::UnsupportedVersion,
                format!("this server speaks protocol version {PROTOCOL_VERSION}"),
                request_id,
            ));
        }
        let (room_id, identity) = self
            .shared
            .auth
            .verify(&token, expected_room)
            .map_err(|e| (e.code(), e.to_string(), request_id))?;
        trace!(participant.id = %identity.id, room.id = %room_id, "hello accepted");
        Ok(Hello {
            room_id,
            identity,
            last_seq,
            request_id,
        })
    }

    /// The room of an accepted hello, if it is open now: a scheduled session's room only within
    /// its window (see `courses::sessions::check_join`).
    async fn open_room(&self, hello: Hello, placed: bool) -> Result<Opening, Refusal> {
        let now = self.shared.clock.now();
        let store = &self.shared.store;
        if let Err(e) = sessions::check_join(store, hello.room_id.as_str(), now).await {
            let code = match e {
                sessions::ServiceError::SessionNotOpen(_) => ErrorCode::SessionNotOpen,
                _ => ErrorCode::StoreUnavailable,
            };
            return Err((code, e.to_string(), hello.request_id));
        }
        let opened = self
            .shared
            .registry
            .open(&hello.room_id, self.shared.task_guard(), placed)
            .await
            .ok_or((
                ErrorCode::Internal,
                "the server is shutting down".to_owned(),
                hello.request_id,
            ))?;
        Ok(match opened {
            Opened::Here(room_tx) => Opening::Joined((room_tx, hello.identity, hello.last_seq)),
            Opened::Redirect(url) => Opening::Redirect {
                room_id: hello.room_id,
                url,
            },
            Opened::Moving => Opening::Moving,
        })
    }

    /// The next text frame, answering limits with typed errors. `None` when the socket ends.
    async fn next_text(
        &mut self,
        stream: &mut SplitStream<Socket>,
    ) -> Option<Result<Utf8Bytes, (ErrorCode, String)>> {
        let idle = Duration::from_secs(self.shared.config.websocket.idle_timeout_secs);
        loop {
            let message = match tokio::time::timeout(idle, stream.next()).await {
                Err(_) => {
                    debug!("closing an idle connection");
                    return None;
                }
                Ok(None) | Ok(Some(Err(_))) => return None,
                Ok(Some(Ok(m))) => m,
            };
            Metrics::inc(&self.shared.metrics.messages_in);
            let text = match message {
                Message::Text(t) => t,
                Message::Binary(_) => {
                    return Some(Err((
                        ErrorCode::InvalidJson,
                        "binary frames are not accepted; send JSON text".into(),
                    )));
                }
                Message::Pong(_) => {
                    self.pong.store(true, Ordering::Relaxed);
                    continue;
                }
                // Fragments arrive reassembled: a raw frame is never read.
                Message::Ping(_) | Message::Frame(_) => continue,
                Message::Close(_) => return None,
            };
            if self.frames.check().is_err() {
                return Some(Err((
                    ErrorCode::RateLimited,
                    "too many frames per second".into(),
                )));
            }
            let max = self.shared.config.limits.max_frame_bytes;
            if text.len() > max {
                return Some(Err((
                    ErrorCode::FrameTooLarge,
                    format!("frames are limited to {max} bytes"),
                )));
            }
            return Some(Ok(text));
        }
    }

    /// Forward requests to the room until the socket ends or the client leaves. True when it
    /// left (sent `leave`).
    async fn read_requests(
        &mut self,
        stream: &mut SplitStream<Socket>,
        conn: ConnId,
        room: &mpsc::Sender<RoomCommand>,
    ) -> bool {
        while let Some(next) = self.next_text(stream).await {
            let text = match next {
                Ok(text) => text,
                Err((code, message)) => {
                    self.refuse(code, message, None).await;
                    continue;
                }
            };
            let frame = match decode_client(&text) {
                Ok(frame) => frame,
                Err(e) => {
                    self.refuse(e.code(), e.to_string(), e.request_id()).await;
                    continue;
                }
            };
            match frame.message {
                ClientMessage::Hello { .. } => {
                    self.refuse(
                        ErrorCode::HelloRequired,
                        "already joined: hello is only the first message".into(),
                        frame.request_id,
                    )
                    .await;
                    continue;
                }
                ClientMessage::ChatSend { .. } if self.chats.check().is_err() => {
                    self.refuse(
                        ErrorCode::RateLimited,
                        "you are sending chat messages too fast".into(),
                        frame.request_id,
                    )
                    .await;
                    continue;
                }
                _ => {}
            }
            let leave = matches!(frame.message, ClientMessage::Leave);
            let command = RoomCommand::Request {
                conn,
                request_id: frame.request_id,
                message: frame.message,
            };
            if room.send(command).await.is_err() {
                return false;
            }
            if leave {
                return true;
            }
        }
        false
    }
}

/// Why the writer stopped writing to a client.
enum Stop {
    /// The socket is gone, or the client was told to go: nothing more to do.
    Done,
    /// The client is not taking data: close it as a slow consumer.
    Stalled,
}

async fn write_loop(
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
