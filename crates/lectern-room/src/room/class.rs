//! The class lifecycle: start (the lobby is let in), admit one participant early, and end
//! (students and observers are sent away, class-scoped state is cleared, an open poll closes).

use lectern_proto::{
    ChatTarget, ClassState, CloseReason, LeaveReason, ParticipantId, RecordingStopReason,
    RoomEvent, Seq, ServerMessage, UnixMillis,
};

use super::{Handled, Reply, Request, Room, attendance};
use crate::roster::Participant;
use crate::{AttendanceKind, PersistRecord, RoomError};

impl Room {
    /// Staff start the class: everyone in the lobby is let in (see [`let_in`]) and, if
    /// connected, sent a fresh snapshot; the media plane is told what each may now publish.
    /// Starting a live class is a no-op. A class that ended may be started again.
    pub(super) fn class_start(&mut self, req: &Request) -> Handled {
        if self.class_state == ClassState::Live {
            return Reply::no_event();
        }
        Reply::event(self.start_class(req.now, Some(req.actor.clone())))
    }

    /// Starts the class (see [`Room::class_start`]); `by` is `None` when the schedule starts
    /// it. Returns the seq of `ClassStarted`.
    pub(super) fn start_class(&mut self, now: UnixMillis, by: Option<ParticipantId>) -> Seq {
        self.class_state = ClassState::Live;
        self.class_started_at = Some(now);
        self.forget_closed_poll();
        let admitted: Vec<ParticipantId> = self
            .roster
            .iter_mut()
            .filter(|p| p.in_lobby)
            .map(|p| {
                let_in(p);
                p.id.clone()
            })
            .collect();
        let seq = self.emit(now, RoomEvent::ClassStarted { by }, None);
        self.persist(PersistRecord::ClassStarted { at: now });
        self.send_snapshots(&admitted);
        for id in &admitted {
            self.publish_intent(id);
        }
        self.record_automatically(now);
        seq
    }

    /// Staff let one participant in from the lobby before the class starts (see [`let_in`]);
    /// if connected, they are sent a fresh snapshot. The media plane is told what they may
    /// now publish.
    pub(super) fn admit(&mut self, req: &Request, target: ParticipantId) -> Handled {
        let seq = self.let_in_one(req.now, target, Some(req.actor.clone()))?;
        Reply::event(seq)
    }

    /// Lets `target` in from the lobby (see [`Room::admit`]); `by` is `None` for an
    /// administrator. [`RoomError::NotFound`] unless they wait in the lobby.
    pub(super) fn let_in_one(
        &mut self,
        now: UnixMillis,
        target: ParticipantId,
        by: Option<ParticipantId>,
    ) -> Result<Seq, RoomError> {
        let Some(p) = self.roster.get_mut(&target).filter(|p| p.in_lobby) else {
            return Err(RoomError::NotFound);
        };
        let_in(p);
        let event = RoomEvent::Admitted {
            participant_id: target.clone(),
            by,
        };
        let seq = self.emit(now, event, None);
        self.send_snapshots(std::slice::from_ref(&target));
        self.publish_intent(&target);
        Ok(seq)
    }

    /// Staff end the class. The stage, hands, speech grants and hard mutes are cleared (clients
    /// derive this from `ClassEnded`); every student and observer (in the lobby or within
    /// their grace period too) is announced as left, stopped and closed. Staff stay. Anyone
    /// removed during the class may come back to the next one. Ending a class that is not
    /// live is a no-op.
    pub(super) fn class_end(&mut self, req: &Request) -> Handled {
        if self.class_state != ClassState::Live {
            return Reply::no_event();
        }
        Reply::event(self.end_class(req.now, Some(req.actor.clone())))
    }

    /// Ends the live class (see [`Room::class_end`]); `by` is `None` when the schedule ends
    /// it. Returns the seq of the last event.
    pub(super) fn end_class(&mut self, now: UnixMillis, by: Option<ParticipantId>) -> Seq {
        self.stop_recording(now, None, RecordingStopReason::ClassEnded);
        self.close_poll_at_class_end(now);
        self.end_quiz_at_class_end(now);
        self.class_state = ClassState::Ended;
        self.presenter = None;
        self.hands.clear();
        // Only staff remain, and staff always may publish and are never hard-muted, so no
        // media permission changes here beyond the `Stop`s below.
        for p in self.roster.iter_mut() {
            p.speak_granted = false;
            p.hard_muted = false;
        }
        let mut seq = self.emit(now, RoomEvent::ClassEnded { by }, None);
        // Taken out in one pass first, so each `ParticipantLeft` goes to the staff only.
        let sent_away = self.roster.remove_where(|p| !p.is_staff());
        for p in sent_away {
            let event = RoomEvent::ParticipantLeft {
                participant_id: p.id.clone(),
                reason: LeaveReason::ClassEnded,
            };
            seq = self.emit(now, event, None);
            if let Some(conn) = p.conn {
                self.persist(attendance(&p, AttendanceKind::Leave, now));
                self.close(conn, CloseReason::ClassEnded);
            }
            self.stop_intent(p.id);
        }
        self.persist(PersistRecord::ClassEnded { at: now });
        self.banned.clear();
        seq
    }

    /// Sends a fresh snapshot to each of these participants who is connected, then tells
    /// those in the class who speaks. Those whose visible chat is just the public chat (most
    /// students) share one `Send`, so letting a large lobby in builds one snapshot, not one per
    /// student.
    fn send_snapshots(&mut self, ids: &[ParticipantId]) {
        let parties = self.chat.private_parties();
        let mut shared = Vec::new();
        let mut own = Vec::new();
        let mut in_class = Vec::new();
        for id in ids {
            let Some(p) = self.roster.get(id) else {
                continue;
            };
            let Some(conn) = p.conn else {
                continue;
            };
            if !p.in_lobby {
                in_class.push(conn);
            }
            if p.is_staff() || p.in_lobby || parties.contains(id) || self.answered_poll(id) {
                own.push((id, conn));
            } else {
                shared.push(conn);
            }
        }
        if !shared.is_empty() {
            let chat = self.chat.visible_tail(self.config.snapshot_chat_len, |m| {
                m.to == ChatTarget::Everyone
            });
            let snapshot = self.build_snapshot(chat, None);
            self.send(shared, None, ServerMessage::Snapshot { snapshot });
        }
        for (id, conn) in own {
            if let Some(snapshot) = self.snapshot_for(id) {
                self.send(vec![conn], None, ServerMessage::Snapshot { snapshot });
            }
        }
        self.tell_speaker(in_class);
    }
}

/// Takes a participant out of the lobby. One in their grace period is marked to get a full
/// snapshot when they come back: what they may see widened while they could not be told.
fn let_in(p: &mut Participant) {
    p.in_lobby = false;
    if p.conn.is_none() {
        p.needs_snapshot = true;
    }
}
