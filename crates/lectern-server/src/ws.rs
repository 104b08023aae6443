//! One WebSocket connection: a reader (this task) and a writer task.
//!
//! The reader checks the hello, then forwards decoded requests to the room task. Limits that
//! need no room state (frame size, frame rate, chat rate, malformed JSON) are enforced here with
//! typed errors. The reader never writes: a client's ping or close frame is answered by the
//! writer (the reader queues `Outbound::Pong` / `Outbound::CloseReply`), so control frames go
//! out between whole messages, never inside a fragmented one. The writer drains the bounded
//! outbound queue of pre-framed bytes, writing what is waiting in one vectored write, and
//! closes the connection after too many refusals. A keepalive beside the reader queues a Ping
//! on a schedule. Whichever half ends first ends the other, and the room always hears that the
//! connection is gone.

use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use lectern_proto::{
    ClientFrame, ClientMessage, CloseReason, ErrorCode, PROTOCOL_VERSION, RequestId, ServerMessage,
    decode_client, encode_server,
};
use lectern_room::ConnId;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tracing::{Instrument, debug, info_span, trace};

use crate::conn::{ConnTx, KillSwitch, Outbound, close_code, close_text, closing_frame};
use crate::courses::sessions;
use crate::metrics::Metrics;
use crate::rooms::{Opened, RoomCommand};
use crate::shared::Shared;
use crate::ws_frame;
use crate::ws_upgrade::{Socket, WriteSide};

mod writer;

use writer::write_loop;

/// Serve one upgraded socket until it closes.
/// `placed`: the URL had `placed=1` (a redirect from the node that placed the room here).
///
/// Not an `async fn` wrapping `run`: each layer of async fn would keep its own copy of the
/// arguments (the socket is ~300 bytes) in the connection's task for its whole life.
pub fn serve(
    socket: Socket,
    write: WriteSide,
    shared: Arc<Shared>,
    expected_room: Option<String>,
    placed: bool,
) -> impl Future<Output = ()> + Send {
    let conn = ConnId(shared.next_conn.fetch_add(1, Ordering::Relaxed));
    let span = info_span!("conn", conn = conn.0);
    run(socket, write, shared, conn, expected_room, placed).instrument(span)
}

async fn run(
    mut stream: Socket,
    write: WriteSide,
    shared: Arc<Shared>,
    conn: ConnId,
    expected_room: Option<String>,
    placed: bool,
) {
    let Some(_done) = shared.task_guard() else {
        return;
    };
    let shared = &shared;
    let metrics = &shared.metrics;
    metrics.connections.fetch_add(1, Ordering::Relaxed);
    Metrics::inc(&metrics.connections_total);
    let limits = &shared.config.limits;
    let (tx, rx) = mpsc::channel(limits.outbound_queue);
    let kill = Arc::new(KillSwitch::default());
    // True while no Ping is waiting for its Pong (none is before the first).
    let pong = Arc::new(AtomicBool::new(true));
    // Runs alongside the reader, never ends: polled when the reader wakes or its timer is due,
    // not on every delivery as it would be in the writer.
    let keepalive = keepalive(tx.clone(), kill.clone(), pong.clone(), shared, conn);
    let mut keepalive = Box::pin(keepalive);
    // Not instrumented with the connection's span: the writer is polled once per delivery,
    // and entering and leaving a span each time costs more than the write itself. Its few
    // events carry the connection id as a field instead.
    let mut writer = tokio::spawn(write_loop(write, rx, kill.clone(), shared.clone(), conn));
    let mut reader = Reader::new(shared, tx.clone(), pong);

    let mut writer_done = false;
    // Boxed: the handshake (the hello's checks, the store's session check, opening the room)
    // is by far the largest state of this task, and it is over once the client has joined.
    // Inline, its room would stay in the task for the connection's life (see
    // `tests::a_connections_tasks_stay_small`).
    let handshake = Box::pin(reader.handshake(&mut stream, expected_room.as_deref(), placed));
    let joined = tokio::select! {
        joined = handshake => joined,
        _ = &mut writer => {
            writer_done = true;
            None
        }
        _ = &mut keepalive => None,
    };
    let room = match joined {
        Some((room_tx, identity, last_seq, media_start)) => {
            // A place in the room's queue first, then the command: a `send(command)` would keep
            // the command (and its copy in the send) in this task's state.
            let joined = match room_tx.reserve().await {
                Ok(permit) => {
                    permit.send(RoomCommand::Join {
                        conn,
                        identity,
                        last_seq,
                        media_start,
                        outbound: ConnTx {
                            tx: tx.clone(),
                            kill: kill.clone(),
                        },
                    });
                    true
                }
                Err(_) => false,
            };
            if joined {
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
            _ = &mut keepalive => {}
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
    drop(keepalive);
    drop(tx);
    if !writer_done
        && tokio::time::timeout(Duration::from_secs(2), &mut writer)
            .await
            .is_err()
    {
        writer.abort();
    }
    metrics.connections.fetch_sub(1, Ordering::Relaxed);
}

/// The server's keepalive: a Ping every `websocket.ping_interval_secs`, busy or not (queued
/// to the writer). The reader closes a connection that has sent nothing for
/// `idle_timeout_secs`, and a student who only listens answers nothing but pings (outbound
/// traffic must not put them off). A Ping still unanswered when the next is due means the
/// client is not reading its socket: it is closed as a slow consumer. Never returns.
async fn keepalive(
    tx: mpsc::Sender<Outbound>,
    kill: Arc<KillSwitch>,
    pong: Arc<AtomicBool>,
    shared: &Shared,
    conn: ConnId,
) {
    let every = Duration::from_secs(shared.config.websocket.ping_interval_secs);
    let mut ping = tokio::time::interval_at(Instant::now() + every, every);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ping.tick().await;
        // Unanswered since the last Ping, or answered: either way this one now waits.
        if !pong.swap(false, Ordering::Relaxed) {
            if kill.pulled().is_none() {
                Metrics::inc(&shared.metrics.slow_clients_dropped);
                debug!(conn = conn.0, "closing a connection that answers no ping");
                kill.pull(CloseReason::SlowConsumer);
            }
            return std::future::pending().await;
        }
        // A full queue: the room closes this connection as a slow consumer.
        let _ = tx.try_send(Outbound::Ping);
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
    media_start: bool,
    request_id: Option<RequestId>,
}

/// The room, who joined, their `last_seq` and whether their hello asked for `media_start`.
type Joined = (
    mpsc::Sender<RoomCommand>,
    lectern_room::Identity,
    Option<u64>,
    bool,
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
        // Framed before the await: the message itself (the largest enum of the protocol) is
        // not kept in the reader's state while the queue has no room.
        let frames = self.framed(&ServerMessage::Error {
            code,
            message,
            request_id,
        });
        Metrics::inc(&self.shared.metrics.errors_sent);
        let _ = self.tx.send(Outbound::Refusal(frames)).await;
    }

    /// `message` serialized and framed, like the room's messages (`rooms::Encoded`).
    fn framed(&self, message: &ServerMessage) -> Bytes {
        let fragment = self.shared.config.websocket.send_fragment_bytes;
        ws_frame::text(&encode_server(message), fragment)
    }

    async fn close(&self, reason: CloseReason) {
        let _ = self.tx.send(Outbound::close(reason)).await;
    }

    /// Wait for a valid hello. On failure the client has been told why and the connection is
    /// closing.
    async fn handshake(
        &mut self,
        stream: &mut Socket,
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
            Ok(Some(Ok(text))) => {
                let received = Instant::now();
                let opened = match self.check_hello(&text, expected_room) {
                    Ok(hello) => self.open_room(hello, placed).await,
                    Err(refusal) => Err(refusal),
                };
                let open_us = u64::try_from(received.elapsed().as_micros()).unwrap_or(u64::MAX);
                debug!(open_us, "hello checked and its room opened");
                opened
            }
        };
        match result {
            Ok(Opening::Joined(joined)) => Some(joined),
            Ok(Opening::Redirect { room_id, url }) => {
                debug!(room.id = %room_id, "hello redirected to the room's node");
                Metrics::inc(&self.shared.metrics.redirects_sent);
                let redirect = ServerMessage::Redirect { room_id, url };
                let _ = self.tx.send(Outbound::Frame(self.framed(&redirect))).await;
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
                    media_start,
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
            media_start,
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
            Opened::Here(room_tx) => {
                Opening::Joined((room_tx, hello.identity, hello.last_seq, hello.media_start))
            }
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
        stream: &mut Socket,
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
                // tungstenite's own pong goes nowhere (see `ws_upgrade`): the writer answers.
                Message::Ping(payload) => {
                    let _ = self.tx.send(Outbound::Pong(payload)).await;
                    continue;
                }
                // Fragments arrive reassembled: a raw frame is never read.
                Message::Frame(_) => continue,
                Message::Close(frame) => {
                    // tungstenite has checked the code (1002 in place of one not allowed).
                    let code = frame.map(|f| u16::from(f.code));
                    let _ = self.tx.send(Outbound::CloseReply(code)).await;
                    return None;
                }
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
        stream: &mut Socket,
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
            // Reserve, then build the command (see `run`'s join): one request in this state.
            let Ok(permit) = room.reserve().await else {
                return false;
            };
            permit.send(RoomCommand::Request {
                conn,
                request_id: frame.request_id,
                message: frame.message,
            });
            if leave {
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bounds on each task's future, in bytes, with some margin over a debug build's sizes
    /// (1,880 and 480 with Rust 1.95; the reader's was 4,264 while it kept the handshake's
    /// state, the protocol's largest message in a refusal and three copies of the socket).
    /// (A release build lays futures out on its own; not checked here.)
    const READER_MAX: usize = 2048;
    const WRITER_MAX: usize = 640;

    /// The size of the future that `f` returns, without calling it.
    fn future_size<A, B, C, D, E, Fut, F>(_: &F) -> usize
    where
        F: FnOnce(A, B, C, D, E) -> Fut,
    {
        std::mem::size_of::<Fut>()
    }

    /// Each connection holds two tasks for its whole life (this reader and its writer), and
    /// each task holds its future's largest state: with a thousand in a room, every KiB here is
    /// a MiB of the server's memory.
    #[test]
    fn a_connections_tasks_stay_small() {
        let reader = future_size(&serve);
        let writer = future_size(&write_loop);
        eprintln!("reader task future: {reader} bytes, writer task future: {writer} bytes");
        assert!(
            reader <= READER_MAX,
            "the reader's future grew to {reader} bytes"
        );
        assert!(
            writer <= WRITER_MAX,
            "the writer's future grew to {writer} bytes"
        );
    }
}
