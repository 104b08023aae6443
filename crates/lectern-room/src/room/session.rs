//! Joining (new, replaced connection, rejoin within grace), the welcome with its snapshot or
//! replay, leaving, dropped connections and their grace period, reactions and media switches.

use lectern_proto::{
    ClassMode, ClassState, CloseReason, LeaveReason, MediaState, PROTOCOL_VERSION, ParticipantId,
    Reaction, Role, RoomEvent, Seq, ServerMessage, UnixMillis,
};

use super::{Handled, Reply, Request, Room, attendance, can_see};
use crate::roster::Participant;
use crate::{AttendanceKind, ConnId, Identity, Permissions, RoomError};

impl Room {
    /// A connection presented a valid token.
    ///
    /// - Removed earlier in this class: refused and closed.
    /// - Already here on another connection: that one is closed (`Replaced`, ending its
    ///   attendance interval) and this one takes over, with no event (they never looked gone).
    /// - Within their grace period: reattached, announced as connected again.
    /// - Otherwise a new participant, if the room has space; they wait in the lobby when their
    ///   role does and the class is not live.
    ///
    /// A returning participant keeps the name and role they first joined with. A `conn` that
    /// is already attached is ignored (the driver sends one join per connection).
    pub(super) fn handle_join(
        &mut self,
        now: UnixMillis,
        conn: ConnId,
        identity: Identity,
        last_seq: Option<Seq>,
    ) {
        if self.roster.id_by_conn(conn).is_some() {
            return;
        }
        if self.progress.closed {
            self.send(vec![conn], None, RoomError::SessionClosed.to_message(None));
            self.close(conn, CloseReason::HandshakeFailed);
            return;
        }
        if self.banned.contains(&identity.id) {
            self.send(vec![conn], None, RoomError::Banned.to_message(None));
            self.close(conn, CloseReason::Removed);
            return;
        }
        let id = identity.id.clone();
        let rejoined = match self.roster.get(&id).map(|p| p.conn) {
            Some(Some(old)) => {
                self.persist_attendance(now, &id, AttendanceKind::Leave);
                self.roster.detach(&id, None);
                self.close(old, CloseReason::Replaced);
                self.roster.attach(&id, conn);
                true
            }
            Some(None) => {
                self.roster.attach(&id, conn);
                let event = RoomEvent::ParticipantConnection {
                    participant_id: id.clone(),
                    connected: true,
                };
                self.emit(now, event, Some(conn));
                true
            }
            None => {
                if self.roster.len() >= self.config.max_participants {
                    self.send(vec![conn], None, RoomError::RoomFull.to_message(None));
                    self.close(conn, CloseReason::HandshakeFailed);
                    return;
                }
                let in_lobby = Permissions::for_role(identity.role).waits_in_lobby
                    && self.class_state != ClassState::Live;
                let mut p = Participant::new(identity, conn, in_lobby);
                // A student arriving in a seminar may send video like everyone else.
                p.camera_allowed = self.mode == ClassMode::Seminar && p.role == Role::Student;
                let participant = self.info(&p);
                self.roster.insert(p);
                self.emit(
                    now,
                    RoomEvent::ParticipantJoined { participant },
                    Some(conn),
                );
                false
            }
        };
        self.publish_intent(&id);
        self.welcome(conn, &id, rejoined, last_seq);
        self.persist_attendance(now, &id, AttendanceKind::Join);
    }

    /// The welcome: the events after `last_seq` when all of them are still kept and were
    /// numbered by this room instance (then a `replay_done`), else a full snapshot; right after
    /// it, [`crate::Output::Welcomed`] and, in the class, the active speaker. A
    /// participant let in from the lobby while disconnected always gets a snapshot: a replay
    /// would lack the chat they could not see in the lobby.
    fn welcome(&mut self, conn: ConnId, id: &ParticipantId, rejoined: bool, last_seq: Option<Seq>) {
        let Some(viewer) = self.roster.get_mut(id) else {
            return;
        };
        let needs_snapshot = std::mem::take(&mut viewer.needs_snapshot);
        let Some(viewer) = self.roster.get(id) else {
            return;
        };
        let role = viewer.role;
        let staff = viewer.is_staff();
        let in_class = !viewer.in_lobby;
        let welcome = |snapshot| ServerMessage::Welcome {
            protocol_version: PROTOCOL_VERSION,
            participant_id: id.clone(),
            role,
            rejoined,
            snapshot,
        };
        match last_seq.filter(|&s| !needs_snapshot && self.replay.covers(s, self.seq)) {
            Some(since) => {
                let missed: Vec<ServerMessage> = self
                    .replay
                    .since(since)
                    .filter(|e| can_see(viewer, &e.event, e.audience.as_ref()))
                    .map(|e| ServerMessage::Event {
                        seq: e.seq,
                        at: e.at,
                        event: e.event.clone(),
                    })
                    .collect();
                let replayed = u32::try_from(missed.len()).unwrap_or(u32::MAX);
                self.send(vec![conn], None, welcome(None));
                self.after_welcome(conn, id, in_class);
                for event in missed {
                    self.send(vec![conn], None, event);
                }
                let done = ServerMessage::ReplayDone {
                    seq: self.seq,
                    replayed,
                };
                self.send(vec![conn], None, done);
                self.poll_results_after_replay(conn, staff);
                self.quiz_progress_after_join(conn, staff);
            }
            None => {
                let message = welcome(self.snapshot_for(id));
                self.send(vec![conn], None, message);
                self.after_welcome(conn, id, in_class);
                self.quiz_progress_after_join(conn, staff);
            }
        }
    }

    /// The participant's current connection dropped: their grace period starts. Anything
    /// else (an old, replaced or unknown connection) is ignored.
    pub(super) fn handle_disconnected(&mut self, now: UnixMillis, conn: ConnId) {
        let Some(id) = self.roster.id_by_conn(conn).cloned() else {
            return;
        };
        let deadline = now.saturating_add(self.config.grace_ms);
        self.roster.detach(&id, Some(deadline));
        let event = RoomEvent::ParticipantConnection {
            participant_id: id.clone(),
            connected: false,
        };
        self.emit(now, event, None);
        self.persist_attendance(now, &id, AttendanceKind::Leave);
    }

    /// Removes everyone whose grace period has ended.
    pub(super) fn handle_tick(&mut self, now: UnixMillis) {
        for id in self.roster.expired(now) {
            self.remove_for_good(now, &id, LeaveReason::TimedOut, None);
        }
    }

    /// Takes a participant out of the room for good: drops their hand, takes the stage back if
    /// they held it (`StageRevoked` by `stage_by`), announces `ParticipantLeft` and stops their
    /// media. The caller closes their connection and records attendance as fits the reason.
    /// Returns them and the seq of `ParticipantLeft`.
    pub(super) fn remove_for_good(
        &mut self,
        now: UnixMillis,
        id: &ParticipantId,
        reason: LeaveReason,
        stage_by: Option<ParticipantId>,
    ) -> Option<(Participant, Seq)> {
        let p = self.roster.remove(id)?;
        self.hands.lower(id);
        if self.presenter.as_ref() == Some(id) {
            self.presenter = None;
            let event = RoomEvent::StageRevoked {
                participant_id: id.clone(),
                by: stage_by,
            };
            self.emit(now, event, None);
        }
        let event = RoomEvent::ParticipantLeft {
            participant_id: id.clone(),
            reason,
        };
        let seq = self.emit(now, event, None);
        self.stop_intent(id.clone());
        Some((p, seq))
    }

    /// Leaves at once, with no grace period. Allowed in the lobby. The ack precedes the close.
    pub(super) fn leave(&mut self, req: &Request) -> Handled {
        let Some((p, seq)) = self.remove_for_good(req.now, &req.actor, LeaveReason::Left, None)
        else {
            return Err(RoomError::NotFound);
        };
        self.ack(req, Some(seq), None);
        self.close(req.conn, CloseReason::Left);
        self.persist(attendance(&p, AttendanceKind::Leave, req.now));
        Ok(Reply::Done)
    }

    /// An ephemeral reaction to every connected participant outside the lobby (the sender
    /// included). Not sequenced, not kept.
    pub(super) fn react(&mut self, req: &Request, reaction: Reaction) -> Handled {
        self.check_participation(req)?;
        let to = self.roster.recipients(|p| !p.in_lobby);
        let message = ServerMessage::Reaction {
            participant_id: req.actor.clone(),
            reaction,
        };
        self.log_for_recording(&message);
        self.send(to, None, message);
        Reply::no_event()
    }

    /// The client's own mic, camera and screen switches (allowed in the lobby). What the media
    /// plane forwards is decided by permissions, not by these.
    pub(super) fn set_media(&mut self, req: &Request, media: MediaState) -> Handled {
        let Some(p) = self.roster.get_mut(&req.actor) else {
            return Err(RoomError::NotFound);
        };
        if p.media == media {
            return Reply::no_event();
        }
        p.media = media;
        let event = RoomEvent::MediaChanged {
            participant_id: req.actor.clone(),
            media,
        };
        Reply::event(self.emit(req.now, event, None))
    }
}
