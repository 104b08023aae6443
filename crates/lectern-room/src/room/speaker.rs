//! The active speaker: named by the media plane, told to the class when it changes and to each
//! participant as they enter the class.

use lectern_proto::{ParticipantId, ServerMessage};

use super::Room;
use crate::{ConnId, Output};

impl Room {
    /// The active speaker, as the media plane last named them.
    pub fn active_speaker(&self) -> Option<&ParticipantId> {
        self.speaker.as_ref()
    }

    /// The media plane names who speaks now (see [`crate::Input::ActiveSpeaker`]). A change is
    /// told to everyone in the class, not the lobby; ephemeral, like a reaction (no seq, not
    /// replayed).
    pub(super) fn handle_active_speaker(&mut self, participant_id: Option<ParticipantId>) {
        if participant_id
            .as_ref()
            .is_some_and(|id| !self.roster.contains(id))
        {
            return; // left meanwhile; the media plane clears it when their peer goes
        }
        if participant_id == self.speaker {
            return;
        }
        self.speaker.clone_from(&participant_id);
        let to = self.roster.recipients(|p| !p.in_lobby);
        let message = ServerMessage::ActiveSpeaker { participant_id };
        self.log_for_recording(&message);
        if !to.is_empty() {
            self.send(to, None, message);
        }
    }

    /// Tells these connections, entering the class, who speaks now (nothing when nobody does).
    pub(super) fn tell_speaker(&mut self, to: Vec<ConnId>) {
        if let Some(speaker) = &self.speaker
            && !to.is_empty()
        {
            let message = ServerMessage::ActiveSpeaker {
                participant_id: Some(speaker.clone()),
            };
            self.send(to, None, message);
        }
    }

    /// Right after a `welcome`: the driver adds what it sends every connection first (see
    /// [`Output::Welcomed`]), then someone in the class learns who speaks.
    pub(super) fn after_welcome(&mut self, conn: ConnId, id: &ParticipantId, in_class: bool) {
        self.outputs.push_back(Output::Welcomed {
            conn,
            participant_id: id.clone(),
        });
        if in_class {
            self.tell_speaker(vec![conn]);
        }
    }
}
