//! The task that owns one room: its loop (commands, timers, the clock, idleness, shutdown),
//! the drain of the room's outputs (persist, then deliver), and loading and storing the room.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use lectern_proto::{ClientMessage, ErrorCode, RoomId, Seq, ServerMessage};
use lectern_room::{ConnId, Input, Output, Room, RoomConfig, RoomInit};
use lectern_store::StoreOp;
use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};

use super::outbox::Outbox;
use super::records::store_op;
use super::signalling::MediaPeers;
use super::{Registry, RoomCommand, RoomEnv};
use crate::metrics::Metrics;

/// Most commands taken in one turn.
const BATCH: usize = 256;

/// The room's state and its connections, owned by its task.
pub(super) struct RoomTask {
    pub(super) env: RoomEnv,
    pub(super) room_id: RoomId,
    pub(super) room: Room,
    /// The last sequence number known to be stored.
    stored_seq: Seq,
    /// Several nodes: the lease's fencing token, passed with every write (see
    /// `Store::write_batch`); `None` on a single node.
    fence: Option<u64>,
    /// The store refused a batch as a stale holder's: the task stops without writing more.
    pub(super) fenced: bool,
    pub(super) outbox: Outbox,
    pub(super) media: MediaPeers,
    /// This task's own inbox, for work it finishes off the task (scroll-back). Weak, so it
    /// does not keep the room's channel open.
    pub(super) inbox: mpsc::WeakSender<RoomCommand>,
    /// The recording running in this room, if any.
    pub(super) recorder: super::recorder::Recorder,
    /// The course this room belongs to (a scheduled session's room), for `quiz_launch`.
    course: Option<String>,
    /// Live quiz windows, shared with the REST API.
    live_quizzes: Arc<crate::quizzes::LiveQuizzes>,
    /// The live quiz as last recorded in `live_quizzes`.
    live_seen: Option<lectern_proto::LiveQuiz>,
    /// Connections whose hello asked for `media_start` and whose welcome has not gone yet.
    pub(super) media_start_at_welcome: HashSet<ConnId>,
}

/// Runs the room `room_id` until it has been empty for `room.idle_close_secs` or the server
/// shuts down. `done` is held while it runs (the server's shutdown waits for it).
pub(super) async fn run_room(
    env: RoomEnv,
    registry: Arc<Registry>,
    room_id: RoomId,
    (own_tx, mut inbox): (mpsc::WeakSender<RoomCommand>, mpsc::Receiver<RoomCommand>),
    _done: mpsc::Sender<()>,
    mut lease: Option<lectern_cluster::RoomLease>,
) {
    let _open = OpenRoom::count(&env.metrics);
    let _hosted = super::lease::Hosted::count(&env.metrics, &lease);
    let mut shutdown = env.shutdown.clone();
    let session = match crate::courses::room_session(&env.store, room_id.as_str()).await {
        Ok(session) => session,
        Err(e) => {
            error!(error = %e, "cannot load the room's session from the store");
            refuse_all(
                &mut inbox,
                &env.metrics,
                env.settings.send_fragment_bytes,
                false,
            )
            .await;
            // Given back at once, so that the next hello can try again here or elsewhere.
            return super::lease::release(lease).await;
        }
    };
    let title = match &session {
        Some(s) => s.course_title.clone(),
        None => room_id.as_str().to_owned(),
    };
    let fence = lease.as_ref().map(|l| l.token().0);
    let init = match load(&env, &room_id, &title, fence).await {
        Ok(init) => init,
        Err(e) => {
            error!(error = %e, "cannot load room from the store");
            // Fenced: another node claimed the room since; the joins go and find it there.
            let moved = matches!(e, lectern_store::StoreError::Fenced { .. });
            refuse_all(
                &mut inbox,
                &env.metrics,
                env.settings.send_fragment_bytes,
                moved,
            )
            .await;
            return super::lease::release(lease).await;
        }
    };
    let settings = &env.settings;
    let mut room_config = RoomConfig::new(room_id.clone(), title);
    room_config.auto_start = settings.room.auto_start;
    room_config.max_participants = settings.room.max_participants;
    room_config.max_chat_chars = settings.max_chat_chars;
    room_config.snapshot_chat_len = settings.room.snapshot_chat;
    room_config.replay_len = settings.room.replay_events;
    room_config.grace_ms = settings.room.grace_secs * 1000;
    room_config.late_after_ms = settings.room.late_after_secs.saturating_mul(1000);
    if let Some(session) = &session {
        // A scheduled session's room follows its course's settings, not `room.auto_start`.
        room_config.auto_start = false;
        room_config.schedule = Some(session_schedule(session));
        room_config.record_automatically = session.record_sessions && settings.recording.enabled;
        room_config.mode = session.class_mode;
    }
    let course = session.as_ref().and_then(|_| {
        crate::room_name::RoomName::parse(room_id.as_str()).map(|n| n.course().to_owned())
    });
    let idle_close = settings.idle_close();
    let clock = env.clock.clone();
    let mut clock_moved = clock.subscribe();
    let stored_seq = init.last_seq;
    let mut task = RoomTask {
        room: Room::new(room_config, init, clock.now_ms()),
        stored_seq,
        fence,
        fenced: false,
        outbox: Outbox::new(env.metrics.clone(), env.settings.send_fragment_bytes),
        media: MediaPeers::default(),
        room_id: room_id.clone(),
        inbox: own_tx,
        recorder: Default::default(),
        course,
        live_quizzes: registry.live_quizzes.clone(),
        live_seen: None,
        media_start_at_welcome: HashSet::new(),
        env,
    };
    info!("room opened");
    // What the schedule already asked for when the room opened (a class started while the
    // server was down) is stored before anyone joins.
    task.pump().await;
    if task.fenced {
        return task.stop_fenced(&registry);
    }
    let mut idle_since = tokio::time::Instant::now();
    // Set when the room closes for being empty: it then keeps nothing for a restore.
    let mut closed_empty = false;
    let mut recording_check = tokio::time::interval(Duration::from_secs(2));
    loop {
        let timer = task.room.poll_timeout().map(|at| {
            let now = clock.now_ms();
            tokio::time::Instant::now() + Duration::from_millis(at.saturating_sub(now))
        });
        let idle = task.room.is_empty() && task.outbox.is_empty();
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
            _ = sleep_until_opt(timer) => task.room.handle(clock.now_ms(), Input::Tick),
            // The clock was moved (tests): tick, and the loop re-arms the timer.
            Ok(()) = clock_moved.changed() => {
                task.room.handle(clock.now_ms(), Input::Tick);
            }
            _ = tokio::time::sleep_until(idle_since + idle_close), if idle => {
                if registry.remove_if_idle(&room_id, &inbox) {
                    info!("room closed after being empty");
                    closed_empty = true;
                    break;
                }
            }
            _ = recording_check.tick(), if task.is_recording() => task.check_recording().await,
            _ = shutdown.changed() => {
                task.room.shutdown(clock.now_ms());
                task.pump().await;
                break;
            }
            lost = super::lease::lost(&mut lease) => {
                registry.remove(&room_id);
                task.lease_lost(&lost);
                return;
            }
        }
        task.pump().await;
        if task.fenced {
            return task.stop_fenced(&registry);
        }
    }
    if task.fenced {
        // Refused while shutting down: another node hosts the room, nothing more is written.
        return task.stop_fenced(&registry);
    }
    // Persist the room's sequence number even when the last events were not stored, so a
    // restarted room never reuses one. A room closed for being empty is opened afresh next
    // time, as before restores existed (its class state is not kept); one stopped any other way
    // (shutdown, a lost lease, a crash) is restored from what it stored.
    let last = if closed_empty {
        vec![StoreOp::RoomStateCleared]
    } else {
        Vec::new()
    };
    if let Err(e) = task
        .env
        .store
        .write_batch(&room_id, task.fence, task.room.seq(), &last)
        .await
    {
        warn!(error = %e, "could not record the room's last sequence number");
    }
    super::lease::release(lease).await;
}

impl RoomTask {
    fn apply(&mut self, command: RoomCommand) {
        let now = self.env.clock.now_ms();
        match command {
            RoomCommand::Join {
                conn,
                identity,
                last_seq,
                media_start,
                outbound,
            } => {
                // A new connection comes with a new peer connection.
                self.drop_media_peer(&identity.id);
                self.outbox.insert(conn, outbound);
                if media_start {
                    self.media_start_at_welcome.insert(conn);
                }
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
                message:
                    ClientMessage::QuizLaunch {
                        quiz_id,
                        duration_secs,
                    },
            } => self.quiz_launch(conn, request_id, quiz_id, duration_secs),
            RoomCommand::Request {
                conn,
                request_id,
                message: ClientMessage::ChatHistory { before_seq, limit },
            } => self.chat_history(conn, request_id, before_seq, limit),
            RoomCommand::Request {
                conn,
                request_id,
                message,
            } => {
                if message == ClientMessage::RecordingStart {
                    self.refresh_recording_availability(now);
                }
                self.room.handle(
                    now,
                    Input::Request {
                        conn,
                        request_id,
                        message,
                    },
                )
            }
            RoomCommand::QuizChecked {
                conn,
                request_id,
                quiz_id,
                duration_secs,
                quiz,
            } => self.room.handle(
                now,
                Input::QuizLaunch {
                    conn,
                    request_id,
                    quiz_id,
                    duration_secs,
                    quiz,
                },
            ),
            RoomCommand::QuizSubmitted { quiz_id, member_id } => self
                .room
                .handle(now, Input::QuizSubmitted { quiz_id, member_id }),
            RoomCommand::Disconnected { conn } => self.disconnected(now, conn),
            RoomCommand::Deliver { conn, frame } => self.outbox.deliver([conn], &frame),
            RoomCommand::Admin { action, reply } => {
                info!(action = action.name(), "administrator's action");
                let _ = reply.send(self.room.handle_admin(now, action));
            }
        }
    }

    /// The connection is gone (closed by its task, or by the outbox as a slow consumer).
    fn disconnected(&mut self, now: u64, conn: ConnId) {
        // The browser's peer connection goes with its page: a reconnecting client negotiates
        // a new one.
        if let Some(id) = self.room.participant_for_conn(conn).cloned() {
            self.drop_media_peer(&id);
        }
        self.outbox.remove(conn);
        self.media_start_at_welcome.remove(&conn);
        self.room.handle(now, Input::Disconnected { conn });
    }

    /// Drain the room's outputs: persist, then deliver, until nothing is left.
    pub(super) async fn pump(&mut self) {
        loop {
            // Connections the outbox closed as slow consumers leave the room first.
            let now = self.env.clock.now_ms();
            for conn in self.outbox.take_slow() {
                self.disconnected(now, conn);
            }
            self.sync_live_quiz(now);
            let outputs: Vec<Output> = std::iter::from_fn(|| self.room.poll_output()).collect();
            if outputs.is_empty() {
                return;
            }
            let persisting = std::time::Instant::now();
            let failed = self.persist(&outputs).await;
            let persist_us = u64::try_from(persisting.elapsed().as_micros()).unwrap_or(u64::MAX);
            if self.fenced {
                // Another node hosts the room: nothing of this batch is delivered (no ack, no
                // broadcast, no media change); the task stops (`stop_fenced`).
                return;
            }
            for output in outputs {
                match output {
                    Output::Send {
                        to,
                        persist_seq,
                        message,
                    } => {
                        if persist_seq.is_none_or(|s| !failed.contains(&s)) {
                            self.outbox.send(to, &message);
                        }
                    }
                    Output::Welcomed {
                        conn,
                        participant_id,
                    } => {
                        debug!(conn = conn.0, persist_us, "welcome sent");
                        self.send_media_config(conn, &participant_id);
                        self.send_current_quality(conn);
                        self.media_start_after_welcome(conn, &participant_id);
                    }
                    Output::Persist(_) => {}
                    Output::Media(intent) => {
                        Metrics::inc(&self.env.metrics.media_intents);
                        self.media_intent(intent);
                    }
                    Output::Close { conn, reason } => self.outbox.close(conn, reason),
                    Output::Recording(intent) => self.recording_intent(intent).await,
                    Output::RecordEvent(message) => {
                        if !is_failed_chat(&message, &failed) {
                            self.record_event(&message);
                        }
                    }
                }
            }
            let now = self.env.clock.now_ms();
            for seq in failed {
                self.room.handle(now, Input::PersistFailed { seq });
            }
        }
    }

    /// Writes every record in `outputs` in one transaction, with the room's sequence number.
    /// Returns the chat messages that could not be stored: their sends are dropped.
    async fn persist(&mut self, outputs: &[Output]) -> HashSet<Seq> {
        let ops: Vec<StoreOp> = outputs
            .iter()
            .filter_map(|o| match o {
                Output::Persist(record) => Some(store_op(record)),
                _ => None,
            })
            .collect();
        let mut failed = HashSet::new();
        // The sequence number is stored before any event is delivered, so a restart after a
        // crash never hands out a number a client has already seen.
        if ops.is_empty() && self.room.seq() <= self.stored_seq {
            return failed;
        }
        let metrics = &self.env.metrics;
        match self
            .env
            .store
            .write_batch(&self.room_id, self.fence, self.room.seq(), &ops)
            .await
        {
            Ok(()) => {
                self.stored_seq = self.room.seq();
                Metrics::inc(&metrics.store_batches);
                let chats = ops.iter().filter(|o| matches!(o, StoreOp::Chat(_))).count();
                Metrics::add(&metrics.chat_messages, chats as u64);
            }
            Err(lectern_store::StoreError::Fenced { token, newest, .. }) => {
                self.refused_as_stale(token, newest, ops.len())
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
        failed
    }
}

impl RoomTask {
    /// A `quiz_launch`: the quiz is looked up in the room's course off the task, then handed
    /// to the room (which checks the rest) as `Input::QuizLaunch`.
    fn quiz_launch(
        &mut self,
        conn: ConnId,
        request_id: Option<lectern_proto::RequestId>,
        quiz_id: lectern_proto::QuizId,
        duration_secs: u32,
    ) {
        let checked = move |quiz| RoomCommand::QuizChecked {
            conn,
            request_id,
            quiz_id,
            duration_secs,
            quiz,
        };
        let Some(course) = self.course.clone() else {
            self.apply(checked(Err(lectern_room::QuizUnavailable::NoCourse)));
            return;
        };
        // The task is stopping when its channel is gone; nobody is left to answer.
        let Some(room_task) = self.inbox.upgrade() else {
            return;
        };
        let store = self.env.store.clone();
        tokio::spawn(async move {
            let quiz = crate::quizzes::live_launch_title(&store, &course, quiz_id).await;
            if let Err(lectern_room::QuizUnavailable::StoreUnavailable) = quiz {
                error!("cannot read the quiz for quiz_launch");
            }
            let _ = room_task.send(checked(quiz)).await;
        });
    }

    /// Records a launched or ended live quiz in the windows the REST API reads.
    fn sync_live_quiz(&mut self, now: u64) {
        let current = self.room.live_quiz();
        if current == self.live_seen.as_ref() {
            return;
        }
        if let Some(old) = self.live_seen.take() {
            self.live_quizzes.ended(&self.room_id, &old, now);
        }
        if let Some(new) = current {
            self.live_quizzes.launched(&self.room_id, new);
            info!(quiz.id = new.quiz_id, "quiz launched live");
        }
        self.live_seen = current.cloned();
    }
}

/// A chat message that could not be stored was never delivered: it is not logged either.
fn is_failed_chat(message: &ServerMessage, failed: &HashSet<Seq>) -> bool {
    matches!(message, ServerMessage::Event { event: lectern_proto::RoomEvent::Chat { message }, .. } if failed.contains(&message.seq))
}

/// Counts a running room task in the `lectern_rooms` gauge for as long as it lives, whichever
/// way the task ends.
struct OpenRoom(Arc<Metrics>);

impl OpenRoom {
    fn count(metrics: &Arc<Metrics>) -> Self {
        metrics
            .rooms
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        OpenRoom(metrics.clone())
    }
}

impl Drop for OpenRoom {
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

/// The room's stored state. Its row is made if new, and attendance intervals and polls left open
/// by a crash end now: nobody is connected to a new room task. Under a lease, the lease's token
/// is given to the store first (an empty fenced batch): from then on a previous holder's writes
/// are refused, and what it committed before is in what is loaded.
async fn load(
    env: &RoomEnv,
    room_id: &RoomId,
    title: &str,
    fence: Option<u64>,
) -> Result<RoomInit, lectern_store::StoreError> {
    let now = env.clock.now_ms();
    env.store.ensure_room(room_id, title, now).await?;
    if fence.is_some() {
        env.store.write_batch(room_id, fence, 0, &[]).await?;
    }
    env.store.close_open_attendance(room_id, now).await?;
    // A new room task has no open poll: one a crash or restart left open ends now.
    env.store.close_open_polls(room_id, now).await?;
    let loaded = env
        .store
        .load_room(room_id, env.settings.room.snapshot_chat.max(1000))
        .await?;
    Ok(RoomInit {
        last_seq: loaded.last_seq,
        recent_chat: loaded.recent_chat,
        chat_locked: loaded.chat_locked,
        state: loaded.state,
        participants: loaded.participants,
    })
}

/// The store is unreachable: tell every joining connection and stop. `moved`: the store
/// fenced this claim (another node took the room since): the joins are sent to reconnect.
async fn refuse_all(
    inbox: &mut mpsc::Receiver<RoomCommand>,
    metrics: &Arc<Metrics>,
    fragment: usize,
    moved: bool,
) {
    inbox.close();
    let mut outbox = Outbox::new(metrics.clone(), fragment);
    let error = ServerMessage::Error {
        code: ErrorCode::StoreUnavailable,
        message: "the class could not be opened; try again shortly".into(),
        request_id: None,
    };
    while let Some(command) = inbox.recv().await {
        if let RoomCommand::Join { conn, outbound, .. } = command {
            outbox.insert(conn, outbound);
            if moved {
                outbox.close(conn, lectern_proto::CloseReason::RoomMoved);
                continue;
            }
            outbox.send([conn], &error);
            outbox.close(conn, lectern_proto::CloseReason::HandshakeFailed);
            Metrics::inc(&metrics.handshake_failed);
        }
    }
}
