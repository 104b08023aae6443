//! The room registry and the task that owns each room.
//!
//! One task per room owns its [`Room`]; connections talk to it over a bounded channel. Each turn
//! the task takes every command already waiting (up to a batch limit), lets the room handle them,
//! writes everything the room asked to persist in ONE transaction (the group commit), and only
//! then delivers the room's messages, serialized once and shared by all recipients. A recipient
//! whose outbound queue is full is disconnected, never waited for.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::ws::Utf8Bytes;
use lectern_proto::{
    ClientMessage, CloseReason, ErrorCode, ParticipantId, RequestId, RoomId, Seq, ServerMessage,
    encode_server,
};
use lectern_room::{
    AttendanceKind, ConnId, Identity, Input, MediaIntent, Output, PersistRecord, Room, RoomConfig,
    RoomInit,
};
use lectern_store::StoreOp;
use tokio::sync::{mpsc, oneshot};
use tracing::{Instrument, debug, error, info, info_span, warn};

use crate::metrics::Metrics;
use crate::server::Shared;

/// Commands from connections to a room task.
#[derive(Debug)]
pub enum RoomCommand {
    Join {
        conn: ConnId,
        identity: Identity,
        last_seq: Option<Seq>,
        outbound: ConnTx,
    },
    Request {
        conn: ConnId,
        request_id: Option<RequestId>,
        message: ClientMessage,
    },
    Disconnected {
        conn: ConnId,
    },
    /// Something the media worker reported about a participant of this room.
    Media(lectern_sfu::WorkerEvent),
}

/// What a connection's writer receives.
#[derive(Debug)]
pub enum Outbound {
    /// A message to write.
    Frame(Utf8Bytes),
    /// An error reply: written like a frame, and counted toward the abuse limit.
    Refusal(Utf8Bytes),
    /// Write this `closing` message, then close the socket.
    Close {
        reason: CloseReason,
        frame: Utf8Bytes,
    },
}

/// The room task's handle on one connection: its bounded queue and a kill switch that closes
/// it at once (bypassing the queue) when it cannot keep up.
#[derive(Debug)]
pub struct ConnTx {
    pub tx: mpsc::Sender<Outbound>,
    pub kill: oneshot::Sender<CloseReason>,
}

pub fn closing_frame(reason: CloseReason) -> Utf8Bytes {
    let message = match reason {
        CloseReason::ServerShutdown => "the server is restarting; reconnect in a moment",
        CloseReason::Removed => "you were removed from the class",
        CloseReason::ClassEnded => "the class has ended",
        CloseReason::Replaced => "you joined again from another window",
        CloseReason::SlowConsumer => "your connection could not keep up with the class",
        CloseReason::Abuse => "too many invalid or refused requests",
        CloseReason::HandshakeFailed => "the connection could not join the class",
        CloseReason::Left => "you left the class",
    };
    Utf8Bytes::from(encode_server(&ServerMessage::Closing {
        reason,
        message: message.to_owned(),
    }))
}

/// Rooms with a running task, by id. Held briefly, never across an `.await`.
#[derive(Debug, Default)]
pub struct Registry {
    rooms: std::sync::Mutex<HashMap<RoomId, mpsc::Sender<RoomCommand>>>,
}

impl Registry {
    /// The room's command channel, starting its task if it has none.
    pub fn get_or_start(
        &self,
        shared: &Arc<Shared>,
        room_id: &RoomId,
    ) -> Option<mpsc::Sender<RoomCommand>> {
        let mut rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = rooms.get(room_id)
            && !tx.is_closed()
        {
            return Some(tx.clone());
        }
        let done = shared.task_guard()?;
        let (tx, rx) = mpsc::channel(1024);
        rooms.insert(room_id.clone(), tx.clone());
        let span = info_span!("room", room.id = %room_id);
        tokio::spawn(run_room(shared.clone(), room_id.clone(), rx, done).instrument(span));
        Some(tx)
    }

    /// The room's command channel, if its task is running (never starts one).
    pub fn get(&self, room_id: &RoomId) -> Option<mpsc::Sender<RoomCommand>> {
        let rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        rooms.get(room_id).filter(|tx| !tx.is_closed()).cloned()
    }

    /// Remove the room if its channel is empty; the task then stops. Called by the room task
    /// itself when idle, under the lock so no new command can slip in unseen.
    fn remove_if_idle(&self, room_id: &RoomId, inbox: &mpsc::Receiver<RoomCommand>) -> bool {
        let mut rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        if inbox.is_empty() {
            rooms.remove(room_id);
            true
        } else {
            false
        }
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

const BATCH: usize = 256;

async fn run_room(
    shared: Arc<Shared>,
    room_id: RoomId,
    mut inbox: mpsc::Receiver<RoomCommand>,
    _done: mpsc::Sender<()>,
) {
    let _open = OpenRoom::count(&shared.metrics);
    let mut shutdown = shared.shutdown_rx.clone();
    let config = &shared.config;
    let session = match crate::courses::room_session(&shared.store, room_id.as_str()).await {
        Ok(session) => session,
        Err(e) => {
            error!(error = %e, "cannot load the room's session from the store");
            return refuse_all(&mut inbox, &shared.metrics).await;
        }
    };
    let title = match &session {
        Some(s) => s.course_title.clone(),
        None => shared.title_for(&room_id),
    };
    let init = match load(&shared, &room_id, &title).await {
        Ok(init) => init,
        Err(e) => {
            error!(error = %e, "cannot load room from the store");
            return refuse_all(&mut inbox, &shared.metrics).await;
        }
    };
    let mut room_config = RoomConfig::new(room_id.clone(), title);
    room_config.auto_start = config.room.auto_start;
    room_config.max_participants = config.room.max_participants;
    room_config.max_chat_chars = config.limits.max_chat_chars;
    room_config.snapshot_chat_len = config.room.snapshot_chat;
    room_config.replay_len = config.room.replay_events;
    room_config.grace_ms = config.room.grace_secs * 1000;
    if let Some(session) = &session {
        // A scheduled session's room follows its course's settings, not `room.auto_start`.
        room_config.auto_start = false;
        room_config.schedule = Some(session_schedule(session));
    }
    let stored_seq = init.last_seq;
    let mut clock_moved = shared.clock.subscribe();
    let mut task = RoomTask {
        room: Room::new(room_config, init, shared.clock.now_ms()),
        stored_seq,
        media: MediaPeers::default(),
        conns: HashMap::new(),
        shared: shared.clone(),
        room_id: room_id.clone(),
    };
    info!("room opened");
    let idle_close = Duration::from_secs(config.room.idle_close_secs);
    let mut idle_since = tokio::time::Instant::now();
    loop {
        let timer = task.room.poll_timeout().map(|at| {
            let now = shared.clock.now_ms();
            tokio::time::Instant::now() + Duration::from_millis(at.saturating_sub(now))
        });
        let idle = task.room.is_empty() && task.conns.is_empty();
        if !idle {
            idle_since = tokio::time::Instant::now();
        }
        tokio::select! {
            command = inbox.recv() => {
                let Some(command) = command else { break };
                task.apply(command);
                for _ in 1..BATCH {
                    match inbox.try_recv() {
                        Ok(command) => task.apply(command),
                        Err(_) => break,
                    }
                }
            }
            _ = sleep_until_opt(timer) => task.room.handle(shared.clock.now_ms(), Input::Tick),
            // The clock was moved (tests): tick, and the loop re-arms the timer.
            Ok(()) = clock_moved.changed() => {
                task.room.handle(shared.clock.now_ms(), Input::Tick);
            }
            _ = tokio::time::sleep_until(idle_since + idle_close), if idle => {
                if shared.registry.remove_if_idle(&room_id, &inbox) {
                    info!("room closed after being empty");
                    break;
                }
            }
            _ = shutdown.changed() => {
                task.room.shutdown(shared.clock.now_ms());
                task.pump().await;
                break;
            }
        }
        task.pump().await;
    }
    // Persist the room's sequence number even when the last events were not stored, so a
    // restarted room never reuses one.
    if let Err(e) = shared
        .store
        .write_batch(&room_id, task.room.seq(), &[])
        .await
    {
        warn!(error = %e, "could not record the room's last sequence number");
    }
}

/// Counts a running room task in the `lectern_rooms` gauge for as long as it lives, whichever
/// way the task ends.
struct OpenRoom<'a>(&'a Metrics);

impl<'a> OpenRoom<'a> {
    fn count(metrics: &'a Metrics) -> Self {
        metrics
            .rooms
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        OpenRoom(metrics)
    }
}

impl Drop for OpenRoom<'_> {
    fn drop(&mut self) {
        self.0
            .rooms
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The room's view of its scheduled session: instants in Unix milliseconds and the course's
/// lifecycle settings.
fn session_schedule(session: &crate::courses::RoomSession) -> lectern_room::SessionSchedule {
    let ms = |t: lectern_schedule::jiff::Timestamp| u64::try_from(t.as_millisecond()).unwrap_or(0);
    let minutes = |m: u32| u64::from(m) * 60_000;
    lectern_room::SessionSchedule {
        starts_at: ms(session.occurrence.start_utc),
        ends_at: ms(session.occurrence.end_utc),
        auto_start: session.lifecycle.auto_start,
        warning_ms: minutes(session.lifecycle.warning_minutes),
        close_grace_ms: minutes(session.lifecycle.grace_minutes),
    }
}

async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn load(
    shared: &Shared,
    room_id: &RoomId,
    title: &str,
) -> Result<RoomInit, lectern_store::StoreError> {
    shared.store.ensure_room(room_id, title, now_ms()).await?;
    // Attendance intervals left open by a crash end now: nobody is connected to a new room task.
    shared
        .store
        .close_open_attendance(room_id, now_ms())
        .await?;
    let loaded = shared
        .store
        .load_room(room_id, shared.config.room.snapshot_chat.max(1000))
        .await?;
    Ok(RoomInit {
        last_seq: loaded.last_seq,
        recent_chat: loaded.recent_chat,
        chat_locked: loaded.chat_locked,
    })
}

/// The store is unreachable: tell every joining connection and stop.
async fn refuse_all(inbox: &mut mpsc::Receiver<RoomCommand>, metrics: &Metrics) {
    inbox.close();
    while let Some(command) = inbox.recv().await {
        if let RoomCommand::Join { outbound, .. } = command {
            let error = ServerMessage::Error {
                code: ErrorCode::StoreUnavailable,
                message: "the class could not be opened; try again shortly".into(),
                request_id: None,
            };
            let _ = outbound
                .tx
                .try_send(Outbound::Refusal(Utf8Bytes::from(encode_server(&error))));
            let _ = outbound.tx.try_send(Outbound::Close {
                reason: CloseReason::HandshakeFailed,
                frame: closing_frame(CloseReason::HandshakeFailed),
            });
            Metrics::inc(&metrics.handshake_failed);
        }
    }
}

/// `chat_history` without a `limit`, and the largest `limit` accepted.
const CHAT_HISTORY_DEFAULT: u32 = 50;
const CHAT_HISTORY_MAX: u32 = 200;
/// `media_view`: longest mid accepted (str0m's are a few digits) and largest size, per side.
const MAX_MID_LEN: usize = 32;
const MAX_VIEW: u32 = 16_384;

/// The room's participants that have a peer on the media worker, the worker they are on, and
/// the requests waiting for the SFU's answer.
#[derive(Debug, Default)]
struct MediaPeers {
    peers: HashSet<ParticipantId>,
    /// Held while `peers` is not empty: every peer of a room is on this worker.
    placement: Option<crate::media::Placement>,
    pending_offer: HashMap<ParticipantId, Option<RequestId>>,
}

struct RoomTask {
    media: MediaPeers,
    room: Room,
    /// The last sequence number known to be stored.
    stored_seq: Seq,
    conns: HashMap<ConnId, ConnTx>,
    shared: Arc<Shared>,
    room_id: RoomId,
}

impl RoomTask {
    fn apply(&mut self, command: RoomCommand) {
        let now = self.shared.clock.now_ms();
        match command {
            RoomCommand::Join {
                conn,
                identity,
                last_seq,
                outbound,
            } => {
                // A new connection comes with a new peer connection.
                self.drop_media_peer(&identity.id);
                self.conns.insert(conn, outbound);
                self.room.handle(
                    now,
                    Input::Join {
                        conn,
                        identity,
                        last_seq,
                    },
                );
            }
            RoomCommand::Request {
                conn,
                request_id,
                message:
                    message @ (ClientMessage::MediaStart
                    | ClientMessage::MediaOffer { .. }
                    | ClientMessage::MediaAnswer { .. }
                    | ClientMessage::MediaCandidate { .. }
                    | ClientMessage::MediaView { .. }),
            } => self.media_request(conn, request_id, message),
            RoomCommand::Media(event) => self.media_event(event),
            RoomCommand::Request {
                conn,
                request_id,
                message: ClientMessage::ChatHistory { before_seq, limit },
            } => self.chat_history(conn, request_id, before_seq, limit),
            RoomCommand::Request {
                conn,
                request_id,
                message,
            } => self.room.handle(
                now,
                Input::Request {
                    conn,
                    request_id,
                    message,
                },
            ),
            RoomCommand::Disconnected { conn } => {
                // The browser's peer connection goes with its page: a reconnecting client
                // negotiates a new one.
                if let Some(id) = self.room.participant_for_conn(conn).cloned() {
                    self.drop_media_peer(&id);
                }
                self.conns.remove(&conn);
                self.room.handle(now, Input::Disconnected { conn });
            }
        }
    }

    /// Drain the room's outputs: persist, then deliver, until nothing is left.
    async fn pump(&mut self) {
        let shared = self.shared.clone();
        let metrics = &shared.metrics;
        loop {
            let outputs: Vec<Output> = std::iter::from_fn(|| self.room.poll_output()).collect();
            if outputs.is_empty() {
                return;
            }
            let ops: Vec<StoreOp> = outputs
                .iter()
                .filter_map(|o| match o {
                    Output::Persist(record) => Some(store_op(record)),
                    _ => None,
                })
                .collect();
            let mut failed: HashSet<Seq> = HashSet::new();
            // The sequence number is stored before any event is delivered, so a restart after a
            // crash never hands out a number a client has already seen.
            if !ops.is_empty() || self.room.seq() > self.stored_seq {
                match self
                    .shared
                    .store
                    .write_batch(&self.room_id, self.room.seq(), &ops)
                    .await
                {
                    Ok(()) => {
                        self.stored_seq = self.room.seq();
                        Metrics::inc(&metrics.store_batches);
                        let chats = ops.iter().filter(|o| matches!(o, StoreOp::Chat(_))).count();
                        Metrics::add(&metrics.chat_messages, chats as u64);
                    }
                    Err(e) => {
                        Metrics::inc(&metrics.store_failures);
                        error!(error = %e, ops = ops.len(), "store write failed");
                        failed.extend(ops.iter().filter_map(|o| match o {
                            StoreOp::Chat(m) => Some(m.seq),
                            _ => None,
                        }));
                    }
                }
            }
            let mut slow: Vec<ConnId> = Vec::new();
            for output in outputs {
                match output {
                    Output::Send {
                        to,
                        persist_seq,
                        message,
                    } => {
                        if persist_seq.is_some_and(|s| failed.contains(&s)) {
                            continue;
                        }
                        let refusal = matches!(
                            message,
                            ServerMessage::Error { code, .. } if code.is_client_fault()
                        );
                        let error = matches!(message, ServerMessage::Error { .. });
                        let bytes = Utf8Bytes::from(encode_server(&message));
                        let mut sent = 0u64;
                        for conn in to {
                            let Some(c) = self.conns.get(&conn) else {
                                continue;
                            };
                            let item = if refusal {
                                Outbound::Refusal(bytes.clone())
                            } else {
                                Outbound::Frame(bytes.clone())
                            };
                            match c.tx.try_send(item) {
                                Ok(()) => sent += 1,
                                Err(mpsc::error::TrySendError::Full(_)) => slow.push(conn),
                                Err(mpsc::error::TrySendError::Closed(_)) => {}
                            }
                        }
                        Metrics::add(&metrics.messages_out, sent);
                        if error {
                            Metrics::add(&metrics.errors_sent, sent);
                        }
                    }
                    // Right after its welcome, a connection learns its ICE servers.
                    Output::Welcomed {
                        conn,
                        participant_id,
                    } => {
                        if self.shared.media.is_some() {
                            let ice_servers = crate::turn::ice_servers(
                                &self.shared.config.turn,
                                &participant_id,
                                now_ms() / 1000,
                            );
                            self.send_to(conn, &ServerMessage::MediaConfig { ice_servers });
                        }
                    }
                    Output::Persist(_) => {}
                    Output::Media(intent) => {
                        Metrics::inc(&metrics.media_intents);
                        self.media_intent(intent);
                    }
                    Output::Close { conn, reason } => {
                        if let Some(c) = self.conns.remove(&conn) {
                            let item = Outbound::Close {
                                reason,
                                frame: closing_frame(reason),
                            };
                            if c.tx.try_send(item).is_err() {
                                let _ = c.kill.send(reason);
                            }
                        }
                    }
                }
            }
            let now = self.shared.clock.now_ms();
            for seq in failed {
                self.room.handle(now, Input::PersistFailed { seq });
            }
            slow.sort_unstable();
            slow.dedup();
            for conn in slow {
                if let Some(c) = self.conns.remove(&conn) {
                    Metrics::inc(&metrics.slow_clients_dropped);
                    warn!(conn = conn.0, "closing a connection that cannot keep up");
                    let _ = c.kill.send(CloseReason::SlowConsumer);
                    self.room.handle(now, Input::Disconnected { conn });
                }
            }
        }
    }
}

/// Scroll-back: older chat, read from the store (the room keeps only the newest messages).
impl RoomTask {
    fn chat_history(
        &self,
        conn: ConnId,
        request_id: Option<RequestId>,
        before_seq: Seq,
        limit: Option<u32>,
    ) {
        let refuse = |code: ErrorCode, message: &str| ServerMessage::Error {
            code,
            message: message.to_owned(),
            request_id,
        };
        let limit = limit.unwrap_or(CHAT_HISTORY_DEFAULT);
        if !(1..=CHAT_HISTORY_MAX).contains(&limit) {
            let message = format!("limit must be 1 to {CHAT_HISTORY_MAX}");
            return self.send_to(conn, &refuse(ErrorCode::InvalidMessage, &message));
        }
        // Sequence numbers are stored as signed 64-bit integers and never come near 2^63: a
        // larger `before_seq` is the client's mistake, not the store's.
        if i64::try_from(before_seq).is_err() {
            let message = "before_seq must be less than 2^63";
            return self.send_to(conn, &refuse(ErrorCode::InvalidMessage, message));
        }
        let reader = match self.room.chat_reader(conn) {
            Ok(reader) => reader,
            Err(code) => return self.send_to(conn, &ServerMessage::error(code, request_id)),
        };
        let Some(tx) = self.conns.get(&conn).map(|c| c.tx.clone()) else {
            return;
        };
        let store = self.shared.store.clone();
        let room = self.room_id.clone();
        let shared = self.shared.clone();
        // Off the room task: a store read must not hold up the class.
        tokio::spawn(async move {
            let filter = lectern_store::ChatReaderFilter {
                participant_id: reader.participant_id().clone(),
                staff: reader.is_staff(),
            };
            let message = match store.chat_before(&room, before_seq, limit, &filter).await {
                Ok(rows) => {
                    let complete = rows.len() < limit as usize;
                    let mut messages: Vec<_> = rows
                        .into_iter()
                        .filter(|row| row.deleted_at.is_none() && reader.can_read(&row.message))
                        .map(|row| row.message)
                        .collect();
                    messages.reverse();
                    ServerMessage::ChatPage {
                        request_id,
                        messages,
                        complete,
                    }
                }
                Err(e) => {
                    error!(error = %e, "chat history read failed");
                    ServerMessage::Error {
                        code: ErrorCode::Internal,
                        message: "chat history is not available right now".into(),
                        request_id,
                    }
                }
            };
            let bytes = Utf8Bytes::from(encode_server(&message));
            if tx.try_send(Outbound::Frame(bytes)).is_ok() {
                Metrics::inc(&shared.metrics.messages_out);
            }
        });
    }
}

/// WebRTC signalling: between the participant's connection and the media worker.
impl RoomTask {
    fn send_to(&self, conn: ConnId, message: &ServerMessage) {
        if let Some(c) = self.conns.get(&conn) {
            let bytes = Utf8Bytes::from(encode_server(message));
            let item = match message {
                ServerMessage::Error { code, .. } if code.is_client_fault() => {
                    Outbound::Refusal(bytes)
                }
                _ => Outbound::Frame(bytes),
            };
            if c.tx.try_send(item).is_ok() {
                Metrics::inc(&self.shared.metrics.messages_out);
            }
        }
    }

    fn media_request(
        &mut self,
        conn: ConnId,
        request_id: Option<RequestId>,
        message: ClientMessage,
    ) {
        let Some(id) = self.room.participant_for_conn(conn).cloned() else {
            return;
        };
        let refuse = |code: ErrorCode, message: &str| ServerMessage::Error {
            code,
            message: message.to_owned(),
            request_id,
        };
        let Some(plane) = self.shared.media.clone() else {
            let error = refuse(ErrorCode::Internal, "media is disabled on this server");
            return self.send_to(conn, &error);
        };
        if self.room.participant(&id).is_some_and(|p| p.in_lobby) {
            let error = refuse(
                ErrorCode::InLobby,
                "media starts when you are let into the class",
            );
            return self.send_to(conn, &error);
        }
        // A fresh start: the client made a new peer connection, so the old peer goes.
        if let ClientMessage::MediaStart = message {
            self.drop_media_peer(&id);
        }
        let key = crate::media::peer_key(&self.room_id, &id);
        let has_peer = self.media.peers.contains(&id);
        let placement = self.media.placement.get_or_insert_with(|| {
            let placement = plane.place();
            debug!(room.id = %self.room_id, media.worker = placement.worker(), "room placed");
            placement
        });
        let handle = placement.handle().clone();
        let result = match message {
            // The SFU offers the room's tracks right after adding the peer (if there are any).
            ClientMessage::MediaStart => {
                placement.peer_added();
                let (audio, video) = self.room.media_permissions(&id).unwrap_or((false, false));
                self.media.peers.insert(id.clone());
                handle
                    .add_peer(
                        lectern_sfu::RoomId::from(self.room_id.as_str()),
                        key.clone(),
                    )
                    .and_then(|()| handle.set_publish_permission(key.clone(), audio, video))
            }
            ClientMessage::MediaOffer { sdp } => {
                let mut result = Ok(());
                if !has_peer {
                    placement.peer_added();
                    let (audio, video) = self.room.media_permissions(&id).unwrap_or((false, false));
                    result = handle
                        .add_peer(
                            lectern_sfu::RoomId::from(self.room_id.as_str()),
                            key.clone(),
                        )
                        .and_then(|()| handle.set_publish_permission(key.clone(), audio, video));
                    self.media.peers.insert(id.clone());
                }
                // Acknowledged once the SFU's answer is sent.
                self.media.pending_offer.insert(id, request_id);
                return match result.and_then(|()| handle.accept_offer(key, sdp)) {
                    Ok(()) => {}
                    Err(e) => self.send_to(conn, &refuse(ErrorCode::Internal, &e.to_string())),
                };
            }
            _ if !has_peer => {
                if self.media.peers.is_empty() {
                    self.media.placement = None;
                }
                let error = refuse(ErrorCode::InvalidMessage, "send a media_offer first");
                return self.send_to(conn, &error);
            }
            ClientMessage::MediaAnswer { sdp } => handle.accept_answer(key, sdp),
            ClientMessage::MediaCandidate { candidate } => {
                handle.add_remote_candidate(key, candidate)
            }
            ClientMessage::MediaView { mid, width, height } => {
                if mid.is_empty()
                    || mid.len() > MAX_MID_LEN
                    || width > MAX_VIEW
                    || height > MAX_VIEW
                {
                    let error = refuse(
                        ErrorCode::InvalidMessage,
                        "media_view needs a mid of an sfu_offer and a size up to 16384",
                    );
                    return self.send_to(conn, &error);
                }
                handle.set_view_size(key, mid, width, height)
            }
            _ => return,
        };
        match (result, request_id) {
            (Ok(()), Some(request_id)) => self.send_to(
                conn,
                &ServerMessage::Ack {
                    request_id,
                    seq: None,
                },
            ),
            (Ok(()), None) => {}
            (Err(e), _) => self.send_to(conn, &refuse(ErrorCode::Internal, &e.to_string())),
        }
    }

    /// A report from the media worker about one of this room's participants.
    fn media_event(&mut self, event: lectern_sfu::WorkerEvent) {
        use lectern_sfu::{MediaEvent, WorkerEvent};
        let key = match &event {
            WorkerEvent::Answer { participant, .. }
            | WorkerEvent::Failed { participant, .. }
            | WorkerEvent::Media(MediaEvent::Offer { participant, .. }) => participant,
            WorkerEvent::Media(MediaEvent::ActiveSpeaker { participant, .. }) => {
                let participant_id = participant
                    .as_ref()
                    .and_then(crate::media::split_key)
                    .map(|(_, id)| id);
                let now = self.shared.clock.now_ms();
                return self
                    .room
                    .handle(now, Input::ActiveSpeaker { participant_id });
            }
            WorkerEvent::Media(other) => {
                debug!(event = ?other, "media event");
                return;
            }
        };
        let Some((_, id)) = crate::media::split_key(key) else {
            return;
        };
        let Some(conn) = self.room.conn_of(&id) else {
            return;
        };
        match &event {
            WorkerEvent::Failed { error, .. } => {
                let request_id = self.media.pending_offer.remove(&id).flatten();
                let code = match error {
                    lectern_sfu::SfuError::InvalidSdp(_)
                    | lectern_sfu::SfuError::InvalidCandidate(_)
                    | lectern_sfu::SfuError::UnknownMid(_)
                    | lectern_sfu::SfuError::NoPendingOffer => ErrorCode::InvalidMessage,
                    _ => ErrorCode::Internal,
                };
                let message = ServerMessage::Error {
                    code,
                    message: format!("media: {}", error.code()),
                    request_id,
                };
                self.send_to(conn, &message);
            }
            // An SFU offer made while the client's own offer was pending lost the glare: the
            // SFU dropped it and offers again after its answer, so the client never sees it.
            WorkerEvent::Media(MediaEvent::Offer { .. })
                if self.media.pending_offer.contains_key(&id) =>
            {
                debug!("dropping an SFU offer that crossed the client's offer");
            }
            _ => {
                if let Some(message) = crate::media::to_client(&event) {
                    self.send_to(conn, &message);
                }
                if let WorkerEvent::Answer { .. } = event
                    && let Some(Some(request_id)) = self.media.pending_offer.remove(&id)
                {
                    self.send_to(
                        conn,
                        &ServerMessage::Ack {
                            request_id,
                            seq: None,
                        },
                    );
                }
            }
        }
    }

    /// The room changed what a participant may publish, or they left.
    fn media_intent(&mut self, intent: MediaIntent) {
        match intent {
            MediaIntent::Publish {
                participant_id,
                audio,
                video,
            } => {
                debug!(participant.id = %participant_id, audio, video, "media intent: publish");
                if let Some(placement) = &self.media.placement
                    && self.media.peers.contains(&participant_id)
                {
                    let key = crate::media::peer_key(&self.room_id, &participant_id);
                    let _ = placement.handle().set_publish_permission(key, audio, video);
                }
            }
            MediaIntent::Stop { participant_id } => {
                debug!(participant.id = %participant_id, "media intent: stop");
                self.drop_media_peer(&participant_id);
            }
        }
    }

    fn drop_media_peer(&mut self, id: &ParticipantId) {
        self.media.pending_offer.remove(id);
        if self.media.peers.remove(id)
            && let Some(placement) = &mut self.media.placement
        {
            let _ = placement
                .handle()
                .remove_peer(crate::media::peer_key(&self.room_id, id));
            placement.peer_removed();
            if self.media.peers.is_empty() {
                self.media.placement = None;
            }
        }
    }
}

fn store_op(record: &PersistRecord) -> StoreOp {
    match record {
        PersistRecord::Chat(message) => StoreOp::Chat(message.clone()),
        PersistRecord::ChatDeleted { seq, by, at } => StoreOp::ChatDeleted {
            seq: *seq,
            by: by.clone(),
            at: *at,
        },
        PersistRecord::Attendance {
            participant_id,
            name,
            role,
            kind: AttendanceKind::Join,
            at,
        } => StoreOp::AttendanceJoin {
            participant_id: participant_id.clone(),
            name: name.clone(),
            role: *role,
            at: *at,
        },
        PersistRecord::Attendance {
            participant_id,
            kind: AttendanceKind::Leave,
            at,
            ..
        } => StoreOp::AttendanceLeave {
            participant_id: participant_id.clone(),
            at: *at,
        },
        PersistRecord::Moderation {
            seq,
            action,
            by,
            target,
            at,
        } => StoreOp::Moderation {
            seq: *seq,
            action: action.as_str().to_owned(),
            by: by.clone(),
            target: target.clone(),
            at: *at,
        },
        PersistRecord::ClassStarted { at } => StoreOp::ClassStarted { at: *at },
        PersistRecord::ClassEnded { at } => StoreOp::ClassEnded { at: *at },
    }
}
