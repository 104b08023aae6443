//! Actions of the server's administrators on a live room (the REST API, on whichever node it
//! was called): end the class, let someone in from the lobby, remove someone. They do what the
//! staff's `class_end`, `admit` and `remove` do, with no participant behind them: events carry
//! no `by`, and the audit record of a removal names [`crate::ADMIN_ACTOR`].
//!
//! Each is safe to repeat (a cross-node command whose reply was lost may be sent again):
//! ending a class that is not live, admitting someone already in the class and removing
//! someone already removed succeed and change nothing.

use lectern_proto::{ClassState, ParticipantId, Role, UnixMillis};

use super::Room;
use crate::{AdminAction, RoomError};

impl Room {
    /// Applies an administrator's action at `now`; outputs queue up as for [`Room::handle`].
    /// Refused: [`RoomError::NotFound`] for a participant who is not in the room (nor removed
    /// from it during this class), [`RoomError::NotPermitted`] for removing an instructor.
    /// A refused action changes nothing.
    pub fn handle_admin(&mut self, now: UnixMillis, action: AdminAction) -> Result<(), RoomError> {
        self.run_schedule(now);
        self.expire_quiz(now);
        let result = match action {
            AdminAction::EndClass => {
                if self.class_state == ClassState::Live {
                    self.end_class(now, None);
                }
                Ok(())
            }
            AdminAction::Admit { participant_id } => self.admin_admit(now, participant_id),
            AdminAction::Remove { participant_id } => self.admin_remove(now, participant_id),
        };
        self.persist_saved_state();
        result
    }

    fn admin_admit(&mut self, now: UnixMillis, target: ParticipantId) -> Result<(), RoomError> {
        match self.roster.get(&target) {
            None => Err(RoomError::NotFound),
            // Already in the class: done before (a repeated command) or by staff.
            Some(p) if !p.in_lobby => Ok(()),
            Some(_) => self.let_in_one(now, target, None).map(|_| ()),
        }
    }

    fn admin_remove(&mut self, now: UnixMillis, target: ParticipantId) -> Result<(), RoomError> {
        let Some(p) = self.roster.get(&target) else {
            return if self.banned.contains(&target) {
                Ok(())
            } else {
                Err(RoomError::NotFound)
            };
        };
        if p.role == Role::Instructor {
            return Err(RoomError::NotPermitted);
        }
        self.remove_participant(now, target, None, |_, _| {})
            .map(|_| ())
    }
}
