//! The room state machine: owns the roster, class state, chat, hand queue, stage and replay
//! ring; dispatches each input to the handlers in its submodules and queues their outputs.
//!
//! Conventions shared by every handler:
//! - A state change is announced with [`Room::emit`]: the next seq, one `Send` to every
//!   connection allowed to see it, and a copy in the replay ring.
//! - A request handler returns a [`Reply`] or a [`RoomError`]; [`Room::handle_request`] turns it
//!   into the `ack` or `error` frame. A refused request changes nothing and consumes no seq.
//! - Records for storage are queued after the event they describe (so storing them never delays
//!   the broadcast), except chat messages, which are stored before they are delivered.

mod admin;
mod chat;
mod class;
mod hands;
mod moderation;
mod polls;
mod quiz;
mod recording;
mod restore;
mod schedule;
mod session;
mod speaker;
mod teaching;

use std::collections::{HashSet, VecDeque};

use lectern_proto::{
    ClassMode, ClassState, ClientMessage, HandEntry, ParticipantId, ParticipantInfo, RequestId,
    Role, RoomEvent, Seq, ServerMessage, Snapshot, UnixMillis,
};

use crate::attendance::AttendanceTally;
use crate::chat_log::{Audience, ChatLog, can_read};
use crate::hand_queue::HandQueue;
use crate::replay::ReplayRing;
use crate::roster::{Participant, Roster};
use crate::{
    AttendanceKind, ConnId, Input, MediaIntent, ModerationAction, Output, PersistRecord,
    RoomConfig, RoomError, RoomInit,
};

pub use recording::RecordingBlocked;

/// The room keeps at least this many recent chat messages in memory (for deletes and
/// snapshots), more if `snapshot_chat_len` is larger.
pub(crate) const MIN_CHAT_KEPT: usize = 1_000;

/// One live class. See the crate documentation.
#[derive(Debug)]
pub struct Room {
    config: RoomConfig,
    class_state: ClassState,
    /// The last sequence number used.
    seq: Seq,
    roster: Roster,
    hands: HandQueue,
    /// The student holding the stage.
    presenter: Option<ParticipantId>,
    chat: ChatLog,
    chat_locked: bool,
    /// Removed by staff during this class; refused until the class ends.
    banned: HashSet<ParticipantId>,
    replay: ReplayRing,
    /// How far a scheduled session's lifecycle has run.
    progress: schedule::ScheduleProgress,
    /// The active speaker, as the media plane last named them (see [`Input::ActiveSpeaker`]).
    speaker: Option<ParticipantId>,
    /// The class is being recorded.
    recording: bool,
    /// Why the driver cannot record now, if it cannot.
    recording_blocked: Option<RecordingBlocked>,
    /// The class layout.
    mode: ClassMode,
    /// Staff allowed every student to speak.
    speak_all: bool,
    /// When the class last went live.
    class_started_at: Option<UnixMillis>,
    /// Everyone who has been in the room, for `attendance_get`.
    attendance: AttendanceTally,
    /// The open poll, or the last one.
    poll: Option<crate::poll::LivePoll>,
    /// The live quiz, or the last one.
    quiz: Option<quiz::QuizRun>,
    /// What the room last stored for a restore (see `restore.rs`).
    saved: restore::SavedState,
    outputs: VecDeque<Output>,
}

/// The request being handled.
#[derive(Debug)]
struct Request {
    now: UnixMillis,
    conn: ConnId,
    /// The participant `conn` is attached to.
    actor: ParticipantId,
    request_id: Option<RequestId>,
}

/// How a request handler succeeded.
#[derive(Debug)]
enum Reply {
    /// Acknowledge, with the (last) event seq it caused, if any.
    Ack {
        seq: Option<Seq>,
        /// Set for chat: the driver drops this ack if storing that message fails.
        persist_seq: Option<Seq>,
    },
    /// The handler already sent its ack (it had to precede a close).
    Done,
}

impl Reply {
    /// Success without an event (an idempotent no-op or an unsequenced action).
    fn no_event() -> Handled {
        Ok(Reply::Ack {
            seq: None,
            persist_seq: None,
        })
    }

    fn event(seq: Seq) -> Handled {
        Ok(Reply::Ack {
            seq: Some(seq),
            persist_seq: None,
        })
    }
}

type Handled = Result<Reply, RoomError>;

impl Room {
    /// A room with the class not started (live at once with `config.auto_start`), continuing
    /// the sequence numbers, recent chat and chat lock loaded from storage.
    ///
    /// With a stored state (`init.state`), the room takes back its class state, stage, hand
    /// queue, grants, mutes, mode and removals as stored, and its stored participants come back
    /// disconnected, each in a grace period of `grace_ms` from `now`: as if every connection had
    /// just dropped. See `room/restore.rs`.
    pub fn new(config: RoomConfig, init: RoomInit, now: UnixMillis) -> Room {
        let class_state = if config.auto_start {
            ClassState::Live
        } else {
            ClassState::NotStarted
        };
        let seq = init
            .recent_chat
            .iter()
            .map(|m| m.seq)
            .fold(init.last_seq, Seq::max);
        let chat = ChatLog::new(
            config.snapshot_chat_len.max(MIN_CHAT_KEPT),
            init.recent_chat,
        );
        let mode = config.mode;
        let mut room = Room {
            replay: ReplayRing::new(config.replay_len, seq),
            config,
            class_state,
            seq,
            roster: Roster::default(),
            hands: HandQueue::default(),
            presenter: None,
            chat,
            chat_locked: init.chat_locked,
            banned: HashSet::new(),
            progress: schedule::ScheduleProgress::default(),
            speaker: None,
            recording: false,
            recording_blocked: None,
            mode,
            speak_all: mode == ClassMode::Seminar,
            class_started_at: (class_state == ClassState::Live).then_some(now),
            attendance: AttendanceTally::default(),
            poll: None,
            quiz: None,
            saved: restore::SavedState::default(),
            outputs: VecDeque::new(),
        };
        room.restore(init.state, init.participants, now);
        // A room opened after moments of its schedule (a server restarted mid-class) is at once
        // where its schedule says, so `class_state` and `poll_timeout` hold before any input.
        room.run_schedule(now);
        if room.class_state == ClassState::Live {
            room.record_automatically(now);
        }
        room.persist_saved_state();
        room
    }

    pub fn config(&self) -> &RoomConfig {
        &self.config
    }

    /// Apply one input at time `now`. Outputs queue up for [`Room::poll_output`].
    /// A scheduled session's due moments (start, warning, close) are acted on first.
    pub fn handle(&mut self, now: UnixMillis, input: Input) {
        self.run_schedule(now);
        self.expire_quiz(now);
        match input {
            Input::Join {
                conn,
                identity,
                last_seq,
            } => self.handle_join(now, conn, identity, last_seq),
            Input::Request {
                conn,
                request_id,
                message,
            } => self.handle_request(now, conn, request_id, message),
            Input::Disconnected { conn } => self.handle_disconnected(now, conn),
            Input::Tick => self.handle_tick(now),
            Input::PersistFailed { seq } => self.handle_persist_failed(seq),
            Input::ActiveSpeaker { participant_id } => self.handle_active_speaker(participant_id),
            Input::RecordingAvailability { blocked } => self.handle_recording_availability(blocked),
            Input::RecordingStopped { reason } => self.handle_recording_stopped(now, reason),
            Input::QuizLaunch {
                conn,
                request_id,
                quiz_id,
                duration_secs,
                quiz,
            } => {
                let Some(actor) = self.roster.id_by_conn(conn).cloned() else {
                    return;
                };
                let req = Request {
                    now,
                    conn,
                    actor,
                    request_id,
                };
                match self.quiz_launch(&req, quiz_id, duration_secs, quiz) {
                    Ok(Reply::Ack { seq, persist_seq }) => self.ack(&req, seq, persist_seq),
                    Ok(Reply::Done) => {}
                    Err(err) => self.send(vec![conn], None, err.to_message(request_id)),
                }
            }
            Input::QuizSubmitted { quiz_id, member_id } => {
                self.handle_quiz_submitted(quiz_id, member_id)
            }
        }
        self.persist_saved_state();
    }

    /// The next output, in order; `None` when drained.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When the room next needs `Input::Tick`, if ever: the earliest end of a grace period, or
    /// the next moment of a scheduled session's lifecycle (see [`crate::SessionSchedule`]).
    pub fn poll_timeout(&self) -> Option<UnixMillis> {
        [
            self.roster.next_deadline(),
            self.next_schedule_deadline(),
            self.next_quiz_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// True once a scheduled session's room has closed for everyone; it refuses joins.
    pub fn is_closed(&self) -> bool {
        self.progress.closed
    }

    /// The last sequence number used.
    pub fn seq(&self) -> Seq {
        self.seq
    }

    pub fn class_state(&self) -> ClassState {
        self.class_state
    }

    /// Participants in the room, connected or within their grace period.
    pub fn participant_count(&self) -> usize {
        self.roster.len()
    }

    /// Open connections attached to participants.
    pub fn connection_count(&self) -> usize {
        self.roster.connection_count()
    }

    /// True when nobody is in the room (connected or in grace): the driver may drop it.
    pub fn is_empty(&self) -> bool {
        self.roster.is_empty()
    }

    /// What this participant would see now, if they are in the room.
    pub fn snapshot_for(&self, participant: &ParticipantId) -> Option<Snapshot> {
        let viewer = self.roster.get(participant)?;
        let chat = self
            .chat
            .visible_tail(self.config.snapshot_chat_len, |m| can_read(viewer, m));
        Some(self.build_snapshot(chat, Some(viewer)))
    }

    /// One participant as everyone sees them.
    pub fn participant(&self, id: &ParticipantId) -> Option<ParticipantInfo> {
        self.roster.get(id).map(|p| self.info(p))
    }

    /// Every participant, in join order.
    pub fn roster(&self) -> Vec<ParticipantInfo> {
        self.roster.iter().map(|p| self.info(p)).collect()
    }

    /// Raised hands, oldest first.
    pub fn hand_queue(&self) -> Vec<ParticipantId> {
        self.hands.ids()
    }

    /// Raised hands with the time each was raised, oldest first.
    pub fn hand_entries(&self) -> Vec<HandEntry> {
        self.hands.entries()
    }

    pub fn presenter(&self) -> Option<&ParticipantId> {
        self.presenter.as_ref()
    }

    pub fn chat_locked(&self) -> bool {
        self.chat_locked
    }

    /// The class layout now.
    pub fn mode(&self) -> ClassMode {
        self.mode
    }

    /// Staff allowed every student to speak.
    pub fn speak_all(&self) -> bool {
        self.speak_all
    }

    /// When the class last went live, if it has.
    pub fn class_started_at(&self) -> Option<UnixMillis> {
        self.class_started_at
    }

    /// Chat messages kept in memory (not deleted), oldest first.
    pub fn recent_chat(&self) -> impl Iterator<Item = &lectern_proto::ChatMessage> {
        self.chat.iter()
    }

    /// How many chat messages are kept in memory.
    pub fn chat_len(&self) -> usize {
        self.chat.len()
    }

    /// How many events are kept for replay.
    pub fn replay_len(&self) -> usize {
        self.replay.len()
    }

    /// True if staff removed this participant during the current class.
    pub fn is_banned(&self, id: &ParticipantId) -> bool {
        self.banned.contains(id)
    }

    /// The reader of older chat on this connection, or why it may not read: `in_lobby` (no
    /// chat in the lobby) or `not_permitted` (not a participant).
    pub fn chat_reader(&self, conn: ConnId) -> Result<crate::ChatReader, lectern_proto::ErrorCode> {
        let participant = self
            .roster
            .id_by_conn(conn)
            .and_then(|id| self.roster.get(id))
            .ok_or(lectern_proto::ErrorCode::NotPermitted)?;
        if participant.in_lobby {
            return Err(lectern_proto::ErrorCode::InLobby);
        }
        Ok(crate::ChatReader::new(participant.clone()))
    }

    /// The participant this connection belongs to, if it is attached to one.
    pub fn participant_for_conn(&self, conn: ConnId) -> Option<&ParticipantId> {
        self.roster.id_by_conn(conn)
    }

    /// The participant's current connection, if connected.
    pub fn conn_of(&self, id: &ParticipantId) -> Option<ConnId> {
        self.roster.get(id).and_then(|p| p.conn)
    }

    /// What the media plane should let this participant publish: `(audio, video)`.
    pub fn media_permissions(&self, id: &ParticipantId) -> Option<(bool, bool)> {
        self.roster.get(id).map(|p| self.media_perms(p))
    }

    /// The server is going away: close every connection with `ServerShutdown` and record the
    /// end of each attendance interval. Participants stay in the roster, disconnected and with
    /// no grace deadline; the room is not expected to be used afterwards.
    pub fn shutdown(&mut self, now: UnixMillis) {
        // Recording stops with the server; nobody is told (everyone is being closed), the
        // writer ends the log itself.
        if self.recording {
            self.recording = false;
            self.outputs
                .push_back(Output::Recording(crate::RecordingIntent::Stop {
                    reason: lectern_proto::RecordingStopReason::Shutdown,
                }));
        }
        let connected: Vec<ParticipantId> = self
            .roster
            .iter()
            .filter(|p| p.conn.is_some())
            .map(|p| p.id.clone())
            .collect();
        for id in connected {
            self.persist_attendance(now, &id, AttendanceKind::Leave);
            if let Some(conn) = self.roster.detach(&id, None) {
                self.close(conn, lectern_proto::CloseReason::ServerShutdown);
            }
        }
    }

    fn handle_request(
        &mut self,
        now: UnixMillis,
        conn: ConnId,
        request_id: Option<RequestId>,
        message: ClientMessage,
    ) {
        let Some(actor) = self.roster.id_by_conn(conn).cloned() else {
            return;
        };
        let req = Request {
            now,
            conn,
            actor,
            request_id,
        };
        match self.dispatch(&req, message) {
            Ok(Reply::Ack { seq, persist_seq }) => self.ack(&req, seq, persist_seq),
            Ok(Reply::Done) => {}
            Err(err) => self.send(vec![conn], None, err.to_message(request_id)),
        }
    }

    fn dispatch(&mut self, req: &Request, message: ClientMessage) -> Handled {
        if crate::is_staff_only(&message) && !self.actor(req).perms().moderate {
            return Err(RoomError::NotPermitted);
        }
        match message {
            ClientMessage::Hello { .. } => Err(RoomError::UnexpectedHello),
            // WebRTC signalling goes between the driver and the SFU; it changes no room state.
            ClientMessage::MediaStart
            | ClientMessage::MediaOffer { .. }
            | ClientMessage::MediaAnswer { .. }
            | ClientMessage::MediaCandidate { .. }
            | ClientMessage::MediaView { .. } => Err(RoomError::NotForTheRoom),
            // Older chat is read from the store by the driver (see `Room::chat_reader`).
            ClientMessage::ChatHistory { .. } => Err(RoomError::NotForTheRoom),
            ClientMessage::ChatSend { to, text } => self.chat_send(req, to, text),
            ClientMessage::ChatDelete { seq } => self.chat_delete(req, seq),
            ClientMessage::ChatLock { locked } => self.chat_lock(req, locked),
            ClientMessage::HandRaise => self.hand_raise(req),
            ClientMessage::HandLower => self.hand_lower(req),
            ClientMessage::HandLowerFor { participant_id } => {
                self.hand_lower_for(req, participant_id)
            }
            ClientMessage::HandLowerAll => self.hand_lower_all(req),
            ClientMessage::CallOn { participant_id } => self.call_on(req, participant_id),
            ClientMessage::AllowSpeak { participant_id } => self.allow_speak(req, participant_id),
            ClientMessage::RevokeSpeak { participant_id } => self.revoke_speak(req, participant_id),
            ClientMessage::Mute { participant_id } => self.mute(req, participant_id),
            ClientMessage::Remove { participant_id, .. } => self.remove(req, participant_id),
            ClientMessage::StageGrant { participant_id } => self.stage_grant(req, participant_id),
            ClientMessage::StageRevoke => self.stage_revoke(req),
            ClientMessage::ClassStart => self.class_start(req),
            ClientMessage::ClassEnd => self.class_end(req),
            ClientMessage::RecordingStart => self.recording_start(req),
            ClientMessage::RecordingStop => self.recording_stop(req),
            ClientMessage::Admit { participant_id } => self.admit(req, participant_id),
            ClientMessage::React { reaction } => self.react(req, reaction),
            ClientMessage::SetMedia { media } => self.set_media(req, media),
            ClientMessage::Leave => self.leave(req),
            ClientMessage::MuteAll => self.mute_all(req),
            ClientMessage::SpeakAll { allowed } => self.set_speak_all(req, allowed),
            ClientMessage::SetMode { mode } => self.set_mode(req, mode),
            ClientMessage::CameraRequest { participant_id } => {
                self.camera_request(req, participant_id)
            }
            ClientMessage::CameraAllow { participant_id } => self.camera_allow(req, participant_id),
            ClientMessage::CameraStop { participant_id } => self.camera_stop(req, participant_id),
            ClientMessage::AttendanceGet => self.attendance_get(req),
            ClientMessage::PollStart {
                question,
                options,
                multiple,
                anonymous,
            } => self.poll_start(req, question, options, multiple, anonymous),
            ClientMessage::PollAnswer { poll_id, choices } => {
                self.poll_answer(req, poll_id, choices)
            }
            ClientMessage::PollEnd { poll_id } => self.poll_end(req, poll_id),
            ClientMessage::PollShare { poll_id } => self.poll_share(req, poll_id),
            // The driver looks the quiz up first and hands it over as `Input::QuizLaunch`.
            ClientMessage::QuizLaunch { .. } => Err(RoomError::NotForTheRoom),
            ClientMessage::QuizEnd { quiz_id } => self.quiz_end(req, quiz_id),
        }
    }

    /// The participant making the request (attached to its connection, so present).
    fn actor(&self, req: &Request) -> &Participant {
        self.roster
            .get(&req.actor)
            .expect("a request's connection is attached to a participant")
    }

    /// Refuses observers ([`RoomError::NotPermitted`]) and the lobby ([`RoomError::InLobby`]):
    /// the check for hands and reactions.
    fn check_participation(&self, req: &Request) -> Result<(), RoomError> {
        let actor = self.actor(req);
        if !actor.perms().participate {
            return Err(RoomError::NotPermitted);
        }
        if actor.in_lobby {
            return Err(RoomError::InLobby);
        }
        Ok(())
    }

    /// Refuses to give speech or the stage to an observer ([`RoomError::NotPermitted`]:
    /// observers watch and listen only) or to someone in the lobby ([`RoomError::InLobby`]:
    /// the lobby gets no media). The target must be in the room ([`RoomError::NotFound`]).
    fn check_speech_target(&self, target: &ParticipantId) -> Result<&Participant, RoomError> {
        let p = self.roster.get(target).ok_or(RoomError::NotFound)?;
        if p.role == Role::Observer {
            return Err(RoomError::NotPermitted);
        }
        if p.in_lobby {
            return Err(RoomError::InLobby);
        }
        Ok(p)
    }

    fn ack(&mut self, req: &Request, seq: Option<Seq>, persist_seq: Option<Seq>) {
        if let Some(request_id) = req.request_id {
            self.send(
                vec![req.conn],
                persist_seq,
                ServerMessage::Ack { request_id, seq },
            );
        }
    }

    fn send(&mut self, to: Vec<ConnId>, persist_seq: Option<Seq>, message: ServerMessage) {
        self.outputs.push_back(Output::Send {
            to,
            persist_seq,
            message,
        });
    }

    fn close(&mut self, conn: ConnId, reason: lectern_proto::CloseReason) {
        self.outputs.push_back(Output::Close { conn, reason });
    }

    /// Queues a record for storage; attendance is also counted in the room's own tally.
    fn persist(&mut self, record: PersistRecord) {
        if let PersistRecord::Attendance {
            participant_id,
            name,
            role,
            kind,
            at,
        } = &record
        {
            let late = self.joins_late(*role, *at);
            self.attendance
                .record(participant_id, name, *role, *kind, *at, || late);
        }
        self.outputs.push_back(Output::Persist(record));
    }

    /// Whether a non-staff participant arriving at `at` is late: the class is live and went
    /// live (for a scheduled room: the later of that and the scheduled start) more than
    /// `late_after_ms` earlier.
    fn joins_late(&self, role: Role, at: UnixMillis) -> bool {
        if role.is_staff() || self.class_state != ClassState::Live {
            return false;
        }
        let Some(started) = self.class_started_at else {
            return false;
        };
        let reference = self
            .config
            .schedule
            .map_or(started, |s| s.starts_at.max(started));
        at > reference.saturating_add(self.config.late_after_ms)
    }

    fn persist_moderation(
        &mut self,
        req: &Request,
        seq: Seq,
        action: ModerationAction,
        target: Option<ParticipantId>,
    ) {
        self.persist(PersistRecord::Moderation {
            seq,
            action,
            by: req.actor.clone(),
            target,
            at: req.now,
        });
    }

    /// Records the start or end of a participant's attendance interval.
    fn persist_attendance(&mut self, now: UnixMillis, id: &ParticipantId, kind: AttendanceKind) {
        if let Some(p) = self.roster.get(id) {
            let record = attendance(p, kind, now);
            self.persist(record);
        }
    }

    /// Announces a state change to everyone allowed to see it (but `except`), keeps it for
    /// replay, and returns its seq.
    fn emit(&mut self, now: UnixMillis, event: RoomEvent, except: Option<ConnId>) -> Seq {
        self.emit_scoped(now, event, except, None, None)
    }

    /// [`Room::emit`] for a chat message: the sends are tagged with `persist_seq`.
    fn emit_tagged(
        &mut self,
        now: UnixMillis,
        event: RoomEvent,
        except: Option<ConnId>,
        persist_seq: Option<Seq>,
    ) -> Seq {
        self.emit_scoped(now, event, except, persist_seq, None)
    }

    /// [`Room::emit`] limited to `audience` (live and in replays), when given.
    fn emit_scoped(
        &mut self,
        now: UnixMillis,
        event: RoomEvent,
        except: Option<ConnId>,
        persist_seq: Option<Seq>,
        audience: Option<Audience>,
    ) -> Seq {
        self.seq += 1;
        let seq = self.seq;
        self.saved.dirty |= restore::changes_saved_state(&event);
        let to = self
            .roster
            .recipients(|p| p.conn != except && can_see(p, &event, audience.as_ref()));
        self.replay.push(seq, now, event.clone(), audience);
        let message = ServerMessage::Event {
            seq,
            at: now,
            event,
        };
        self.log_for_recording(&message);
        if !to.is_empty() {
            self.send(to, persist_seq, message);
        }
        seq
    }

    /// `(audio, video)` the participant may publish. Nothing in the lobby, whatever they were
    /// granted. Otherwise audio: not hard-muted, and staff, granted speech, presenting, or a
    /// student while everyone may speak (`speak_all`). Video: staff, presenting, or their
    /// camera allowed.
    fn media_perms(&self, p: &Participant) -> (bool, bool) {
        if p.in_lobby {
            return (false, false);
        }
        let publish = p.perms().publish;
        let presenter = self.presenter.as_ref() == Some(&p.id);
        let speak_all = self.speak_all && p.role == Role::Student;
        (
            !p.hard_muted && (publish || p.speak_granted || presenter || speak_all),
            publish || presenter || p.camera_allowed,
        )
    }

    /// Tells the media plane what this participant may publish now.
    fn publish_intent(&mut self, id: &ParticipantId) {
        if let Some((audio, video)) = self.media_permissions(id) {
            self.outputs.push_back(Output::Media(MediaIntent::Publish {
                participant_id: id.clone(),
                audio,
                video,
            }));
        }
    }

    fn stop_intent(&mut self, id: ParticipantId) {
        self.outputs
            .push_back(Output::Media(MediaIntent::Stop { participant_id: id }));
    }

    fn info(&self, p: &Participant) -> ParticipantInfo {
        ParticipantInfo {
            id: p.id.clone(),
            name: p.name.clone(),
            role: p.role,
            connected: p.conn.is_some(),
            in_lobby: p.in_lobby,
            hard_muted: p.hard_muted,
            can_speak: self.media_perms(p).0,
            speak_granted: p.speak_granted,
            presenter: self.presenter.as_ref() == Some(&p.id),
            media: p.media,
            camera_allowed: p.camera_allowed,
        }
    }

    /// The room as `viewer` sees it with this chat; `None` stands for a student who has not
    /// answered the current poll (see [`Room::poll_state_for`]).
    fn build_snapshot(
        &self,
        chat: Vec<lectern_proto::ChatMessage>,
        viewer: Option<&Participant>,
    ) -> Snapshot {
        Snapshot {
            room_id: self.config.room_id.clone(),
            title: self.config.title.clone(),
            class_state: self.class_state,
            roster: self.roster(),
            hand_queue: self.hands.entries(),
            presenter: self.presenter.clone(),
            chat_locked: self.chat_locked,
            recording: self.recording,
            chat,
            seq: self.seq,
            scheduled_start: self.config.schedule.map(|s| s.starts_at),
            scheduled_end: self.config.schedule.map(|s| s.ends_at),
            warns_at: self
                .config
                .schedule
                .filter(|s| s.warning_ms > 0)
                .map(|s| s.warns_at()),
            closes_at: self.config.schedule.map(|s| s.closes_at()),
            mode: self.mode,
            speak_all: self.speak_all,
            class_started_at: self.class_started_at,
            poll: self.poll_state_for(viewer),
            live_quiz: self.live_quiz().cloned(),
        }
    }
}

/// Whether `viewer` receives `event`: only if in `audience`, when given (a deleted chat
/// message's); then chat by [`can_read`], everything else always.
fn can_see(viewer: &Participant, event: &RoomEvent, audience: Option<&Audience>) -> bool {
    if audience.is_some_and(|a| !a.includes(viewer)) {
        return false;
    }
    match event {
        RoomEvent::Chat { message } => can_read(viewer, message),
        _ => true,
    }
}

fn attendance(p: &Participant, kind: AttendanceKind, at: UnixMillis) -> PersistRecord {
    PersistRecord::Attendance {
        participant_id: p.id.clone(),
        name: p.name.clone(),
        role: p.role,
        kind,
        at,
    }
}

#[cfg(test)]
mod tests {
    use lectern_proto::RoomId;

    use super::*;
    use crate::Identity;

    fn join(room: &mut Room, conn: u64, id: &str, role: Role) {
        let identity = Identity {
            id: ParticipantId::new(id),
            name: id.to_owned(),
            role,
        };
        room.handle(
            0,
            Input::Join {
                conn: ConnId(conn),
                identity,
                last_seq: None,
            },
        );
    }

    /// The lobby gets no media whatever it was granted (grants cannot be given in the lobby
    /// through requests, so this sets one directly); letting them in tells the media plane.
    #[test]
    fn the_lobby_publishes_nothing_whatever_its_grants() {
        let config = RoomConfig::new(RoomId::new("r"), "R");
        let mut room = Room::new(config, RoomInit::default(), 0);
        join(&mut room, 1, "t", Role::Instructor);
        join(&mut room, 2, "s1", Role::Student);
        let s1 = ParticipantId::new("s1");
        room.roster.get_mut(&s1).unwrap().speak_granted = true;
        assert_eq!(room.media_permissions(&s1), Some((false, false)));
        assert!(!room.participant(&s1).unwrap().can_speak);
        assert!(!room.snapshot_for(&s1).unwrap().roster[1].can_speak);

        while room.poll_output().is_some() {}
        let admit = ClientMessage::Admit {
            participant_id: s1.clone(),
        };
        room.handle(
            0,
            Input::Request {
                conn: ConnId(1),
                request_id: None,
                message: admit,
            },
        );
        let intents: Vec<MediaIntent> = std::iter::from_fn(|| room.poll_output())
            .filter_map(|o| match o {
                Output::Media(m) => Some(m),
                _ => None,
            })
            .collect();
        let publish = MediaIntent::Publish {
            participant_id: s1.clone(),
            audio: true,
            video: false,
        };
        assert_eq!(intents, vec![publish]);
        assert!(room.participant(&s1).unwrap().can_speak);
    }
}
