//! Staff moderation: allow or revoke speech, hard-mute, hand over and take back the stage,
//! and remove a participant for the rest of the class. Each is recorded for the audit log
//! and followed by the media intent of whoever it affects.

use lectern_proto::{CloseReason, LeaveReason, ParticipantId, Role, RoomEvent};

use super::{Handled, Reply, Request, Room, attendance};
use crate::{AttendanceKind, ModerationAction, RoomError};

impl Room {
    /// Lets a participant speak and lifts a hard mute. Not an observer, nor someone in the
    /// lobby (see [`Room::check_speech_target`]).
    pub(super) fn allow_speak(&mut self, req: &Request, target: ParticipantId) -> Handled {
        self.check_speech_target(&target)?;
        let p = self.roster.get_mut(&target).ok_or(RoomError::NotFound)?;
        p.speak_granted = true;
        p.hard_muted = false;
        let event = RoomEvent::SpeakAllowed {
            participant_id: target.clone(),
            by: req.actor.clone(),
        };
        let seq = self.emit(req.now, event, None);
        self.persist_moderation(req, seq, ModerationAction::AllowSpeak, Some(target.clone()));
        self.publish_intent(&target);
        Reply::event(seq)
    }

    /// Takes back a speech grant (staff and the presenter still may speak by role or stage).
    pub(super) fn revoke_speak(&mut self, req: &Request, target: ParticipantId) -> Handled {
        let p = self.roster.get_mut(&target).ok_or(RoomError::NotFound)?;
        p.speak_granted = false;
        let event = RoomEvent::SpeakRevoked {
            participant_id: target.clone(),
            by: req.actor.clone(),
        };
        let seq = self.emit(req.now, event, None);
        self.persist_moderation(
            req,
            seq,
            ModerationAction::RevokeSpeak,
            Some(target.clone()),
        );
        self.publish_intent(&target);
        Reply::event(seq)
    }

    /// Hard-mutes a non-staff participant (even the presenter's audio) until staff allow them
    /// to speak or call on them.
    pub(super) fn mute(&mut self, req: &Request, target: ParticipantId) -> Handled {
        let p = self.roster.get_mut(&target).ok_or(RoomError::NotFound)?;
        if p.is_staff() {
            return Err(RoomError::NotPermitted);
        }
        p.hard_muted = true;
        p.speak_granted = false;
        let event = RoomEvent::Muted {
            participant_id: target.clone(),
            by: req.actor.clone(),
        };
        let seq = self.emit(req.now, event, None);
        self.persist_moderation(req, seq, ModerationAction::Mute, Some(target.clone()));
        self.publish_intent(&target);
        Reply::event(seq)
    }

    /// Hands the stage to a student outside the lobby, taking it from the current presenter
    /// first: staff and observers are [`RoomError::NotPermitted`], the lobby
    /// [`RoomError::InLobby`]. Granting it to the current presenter is a no-op.
    pub(super) fn stage_grant(&mut self, req: &Request, target: ParticipantId) -> Handled {
        if self.check_speech_target(&target)?.is_staff() {
            return Err(RoomError::NotPermitted);
        }
        if self.presenter.as_ref() == Some(&target) {
            return Reply::no_event();
        }
        let previous = self.presenter.take();
        if let Some(previous) = &previous {
            let event = RoomEvent::StageRevoked {
                participant_id: previous.clone(),
                by: Some(req.actor.clone()),
            };
            self.emit(req.now, event, None);
        }
        self.presenter = Some(target.clone());
        let event = RoomEvent::StageGranted {
            participant_id: target.clone(),
            by: req.actor.clone(),
        };
        let seq = self.emit(req.now, event, None);
        self.persist_moderation(req, seq, ModerationAction::GrantStage, Some(target.clone()));
        if let Some(previous) = previous {
            self.publish_intent(&previous);
        }
        self.publish_intent(&target);
        Reply::event(seq)
    }

    /// Takes the stage back; nobody presenting is a no-op.
    pub(super) fn stage_revoke(&mut self, req: &Request) -> Handled {
        let Some(presenter) = self.presenter.take() else {
            return Reply::no_event();
        };
        let event = RoomEvent::StageRevoked {
            participant_id: presenter.clone(),
            by: Some(req.actor.clone()),
        };
        let seq = self.emit(req.now, event, None);
        self.persist_moderation(
            req,
            seq,
            ModerationAction::RevokeStage,
            Some(presenter.clone()),
        );
        self.publish_intent(&presenter);
        Reply::event(seq)
    }

    /// Removes a participant (not an instructor) for the rest of the class: the stage is taken
    /// back (`by` the staff member), they are announced as removed, closed and stopped, and
    /// refused if they try to join again before the class ends. The free-text reason is not
    /// kept (the wire and storage records have no place for it).
    pub(super) fn remove(&mut self, req: &Request, target: ParticipantId) -> Handled {
        let p = self.roster.get(&target).ok_or(RoomError::NotFound)?;
        if p.role == Role::Instructor {
            return Err(RoomError::NotPermitted);
        }
        // A TA may remove themselves: their ack must then precede their close.
        let removed_self = p.conn == Some(req.conn);
        let seq =
            self.remove_participant(req.now, target, Some(req.actor.clone()), |room, seq| {
                if removed_self {
                    room.ack(req, Some(seq), None);
                }
            })?;
        if removed_self {
            Ok(Reply::Done)
        } else {
            Reply::event(seq)
        }
    }

    /// Removes `target` for the rest of the class (see [`Room::remove`]); `by` is the staff
    /// member, `None` for an administrator (the audit record then names
    /// [`crate::ADMIN_ACTOR`]). `before_close` runs after the announcement and before the
    /// close (for the remover's own ack). The caller checks who may be removed.
    pub(super) fn remove_participant(
        &mut self,
        now: lectern_proto::UnixMillis,
        target: ParticipantId,
        by: Option<ParticipantId>,
        before_close: impl FnOnce(&mut Room, lectern_proto::Seq),
    ) -> Result<lectern_proto::Seq, RoomError> {
        let actor = by
            .clone()
            .unwrap_or_else(|| ParticipantId::new(crate::ADMIN_ACTOR));
        let Some((p, seq)) = self.remove_for_good(now, &target, LeaveReason::Removed, by) else {
            return Err(RoomError::NotFound);
        };
        before_close(self, seq);
        if let Some(conn) = p.conn {
            self.close(conn, CloseReason::Removed);
        }
        self.persist(crate::PersistRecord::Moderation {
            seq,
            action: ModerationAction::Remove,
            by: actor,
            target: Some(target.clone()),
            at: now,
        });
        if p.conn.is_some() {
            self.persist(attendance(&p, AttendanceKind::Leave, now));
        }
        self.banned.insert(target);
        Ok(seq)
    }
}
