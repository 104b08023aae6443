//! Hand-queue requests: raise and lower your own hand; staff lower one or all, and call on
//! the next student or a given one.

use lectern_proto::{ParticipantId, RoomEvent};

use super::{Handled, Reply, Request, Room};
use crate::RoomError;

impl Room {
    /// Raises the actor's hand at the back of the queue; already raised is a no-op.
    pub(super) fn hand_raise(&mut self, req: &Request) -> Handled {
        self.check_participation(req)?;
        // The order key is the seq `hand_raised` is about to take: it grows across restores.
        if !self.hands.raise(&req.actor, req.now, self.seq + 1) {
            return Reply::no_event();
        }
        let event = RoomEvent::HandRaised {
            participant_id: req.actor.clone(),
            raised_at: req.now,
        };
        Reply::event(self.emit(req.now, event, None))
    }

    /// Lowers the actor's own hand; already down is a no-op.
    pub(super) fn hand_lower(&mut self, req: &Request) -> Handled {
        self.check_participation(req)?;
        if !self.hands.lower(&req.actor) {
            return Reply::no_event();
        }
        let event = RoomEvent::HandLowered {
            participant_id: req.actor.clone(),
            by: None,
        };
        Reply::event(self.emit(req.now, event, None))
    }

    /// Staff lower one participant's hand. Not raised is a no-op (two staff lowering the same
    /// hand race); a participant not in the room is [`RoomError::NotFound`].
    pub(super) fn hand_lower_for(&mut self, req: &Request, target: ParticipantId) -> Handled {
        if !self.roster.contains(&target) {
            return Err(RoomError::NotFound);
        }
        if !self.hands.lower(&target) {
            return Reply::no_event();
        }
        let event = RoomEvent::HandLowered {
            participant_id: target,
            by: Some(req.actor.clone()),
        };
        Reply::event(self.emit(req.now, event, None))
    }

    /// Staff lower every hand; none raised is a no-op.
    pub(super) fn hand_lower_all(&mut self, req: &Request) -> Handled {
        if !self.hands.clear() {
            return Reply::no_event();
        }
        let by = req.actor.clone();
        Reply::event(self.emit(req.now, RoomEvent::HandsCleared { by }, None))
    }

    /// Staff call on the first raised hand, or on a given participant (hand raised or not):
    /// their hand goes down, they may speak, and a hard mute is lifted. Observers and the lobby
    /// cannot be called on (see [`Room::check_speech_target`]).
    pub(super) fn call_on(&mut self, req: &Request, target: Option<ParticipantId>) -> Handled {
        let target = match target {
            Some(id) => id,
            None => self.hands.first().cloned().ok_or(RoomError::QueueEmpty)?,
        };
        self.check_speech_target(&target)?;
        self.hands.lower(&target);
        if let Some(p) = self.roster.get_mut(&target) {
            p.speak_granted = true;
            p.hard_muted = false;
        }
        let event = RoomEvent::CalledOn {
            participant_id: target.clone(),
            by: req.actor.clone(),
        };
        let seq = self.emit(req.now, event, None);
        self.publish_intent(&target);
        Reply::event(seq)
    }
}
