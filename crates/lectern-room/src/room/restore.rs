//! What a restore needs: the room keeps the stored form of its class state in step with the
//! store, and a room created from a [`crate::RoomInit`] takes it back.
//!
//! - **What is stored**: one [`SavedRoom`] (class state and start, stage, mode, "everyone may
//!   speak", who was removed, the end warning) and one [`SavedParticipant`] per participant
//!   whose state a fresh join would not give back (hand, stage, speech grant, hard mute,
//!   camera, let in from the lobby). Nothing that lives only while a connection is open
//!   (active speaker, media switches, recording, polls, quizzes).
//! - **When**: after every input that announced a change other than chat, joins, connections
//!   and media switches (see [`changes_saved_state`]), the room compares its state with what it
//!   last stored and queues only the differences: `RoomState` when the room-wide part changed,
//!   `ParticipantState` (an upsert) per participant that changed, `ParticipantStateCleared`
//!   per participant with nothing left to restore. The driver writes them in the input's
//!   group-commit transaction, before delivering its messages.
//! - **Restoring**: stored participants come back disconnected, in their grace period from
//!   the room's creation, as if their connections had just dropped (they had). One who joins
//!   again within it finds their hand, stage, grant and mute as they were and gets a snapshot
//!   (`rejoined: true`); one who does not is removed when it ends, with the usual events (hand
//!   lowered, stage taken back, `participant_left` with `timed_out`).

use std::collections::BTreeMap;

use lectern_proto::{ClassMode, ClassState, ParticipantId, Role, RoomEvent, UnixMillis};

use super::Room;
use crate::roster::Participant;
use crate::{Identity, Permissions, PersistRecord, SavedParticipant, SavedRoom};

/// What the room last stored for a restore.
#[derive(Debug, Default)]
pub(crate) struct SavedState {
    room: Option<SavedRoom>,
    participants: BTreeMap<ParticipantId, SavedParticipant>,
    /// An event that may have changed it was emitted since the last comparison.
    pub dirty: bool,
}

/// True for events that may change what a restore needs. Chat, joins (a newcomer has the
/// state a fresh join gives), connections and media switches never do, and are the frequent
/// ones, so they cost no comparison.
pub(super) fn changes_saved_state(event: &RoomEvent) -> bool {
    !matches!(
        event,
        RoomEvent::Chat { .. }
            | RoomEvent::ChatDeleted { .. }
            | RoomEvent::ParticipantJoined { .. }
            | RoomEvent::ParticipantConnection { .. }
            | RoomEvent::MediaChanged { .. }
    )
}

impl Room {
    /// Takes back the stored state of `init` (called by [`Room::new`] before the schedule
    /// runs). A stored class that has not started goes live at once with `auto_start`, as a
    /// new room would.
    pub(super) fn restore(
        &mut self,
        state: Option<SavedRoom>,
        participants: Vec<SavedParticipant>,
        now: UnixMillis,
    ) {
        let Some(state) = state else {
            // An auto-started class stores its start at once: a restore keeps that time.
            self.saved.dirty = self.class_state == ClassState::Live;
            return;
        };
        self.class_state = state.class_state;
        self.class_started_at = state.class_started_at;
        if self.class_state == ClassState::NotStarted && self.config.auto_start {
            self.class_state = ClassState::Live;
            self.class_started_at = Some(now);
        }
        self.mode = state.mode;
        self.speak_all = state.speak_all;
        self.banned = state.banned.iter().cloned().collect();
        self.progress.warned = state.end_warned;
        let deadline = now.saturating_add(self.config.grace_ms);
        let mut hands = Vec::new();
        for saved in &participants {
            if self.roster.contains(&saved.id) || self.banned.contains(&saved.id) {
                continue;
            }
            let identity = Identity {
                id: saved.id.clone(),
                name: saved.name.clone(),
                role: saved.role,
            };
            let mut p = Participant::new(identity, crate::ConnId(0), saved.in_lobby);
            p.hard_muted = saved.hard_muted;
            p.speak_granted = saved.speak_granted;
            p.camera_allowed = saved.camera_allowed;
            self.roster.insert_in_grace(p, deadline);
            if let Some(hand) = saved.hand {
                hands.push((saved.id.clone(), hand));
            }
        }
        self.hands.restore(hands);
        self.presenter = state
            .presenter
            .clone()
            .filter(|id| self.roster.contains(id));
        self.saved.room = Some(state);
        self.saved.participants = participants
            .into_iter()
            .map(|p| (p.id.clone(), p))
            .collect();
        // What was dropped above (a presenter or hand without a participant) is stored anew.
        self.saved.dirty = true;
    }

    /// Queues the records that bring the stored state in step with the room, if an event since
    /// the last call may have changed it.
    pub(super) fn persist_saved_state(&mut self) {
        if !std::mem::take(&mut self.saved.dirty) {
            return;
        }
        let room = self.saved_room();
        if self.saved.room.as_ref() != Some(&room) {
            self.saved.room = Some(room.clone());
            self.outputs
                .push_back(crate::Output::Persist(PersistRecord::RoomState(room)));
        }
        let hands = self.hands.saved();
        let mut now_saved = BTreeMap::new();
        let mut changed = Vec::new();
        for p in self.roster.iter() {
            let Some(saved) = self.saved_participant(p, hands.get(&p.id).copied()) else {
                continue;
            };
            if self.saved.participants.get(&p.id) != Some(&saved) {
                changed.push(saved.clone());
            }
            now_saved.insert(p.id.clone(), saved);
        }
        let cleared: Vec<ParticipantId> = self
            .saved
            .participants
            .keys()
            .filter(|id| !now_saved.contains_key(*id))
            .cloned()
            .collect();
        self.saved.participants = now_saved;
        for saved in changed {
            self.outputs
                .push_back(crate::Output::Persist(PersistRecord::ParticipantState(
                    saved,
                )));
        }
        for participant_id in cleared {
            self.outputs.push_back(crate::Output::Persist(
                PersistRecord::ParticipantStateCleared { participant_id },
            ));
        }
    }

    fn saved_room(&self) -> SavedRoom {
        let mut banned: Vec<ParticipantId> = self.banned.iter().cloned().collect();
        banned.sort();
        SavedRoom {
            class_state: self.class_state,
            class_started_at: self.class_started_at,
            presenter: self.presenter.clone(),
            mode: self.mode,
            speak_all: self.speak_all,
            banned,
            end_warned: self.progress.warned,
        }
    }

    /// The participant's stored form, or `None` when a fresh join would give them the same
    /// state (then nothing is stored for them).
    fn saved_participant(
        &self,
        p: &Participant,
        hand: Option<crate::SavedHand>,
    ) -> Option<SavedParticipant> {
        let lobby_by_default =
            Permissions::for_role(p.role).waits_in_lobby && self.class_state != ClassState::Live;
        let camera_by_default = self.mode == ClassMode::Seminar && p.role == Role::Student;
        let presenter = self.presenter.as_ref() == Some(&p.id);
        let fresh = p.in_lobby == lobby_by_default
            && p.camera_allowed == camera_by_default
            && !p.hard_muted
            && !p.speak_granted
            && hand.is_none()
            && !presenter;
        (!fresh).then(|| SavedParticipant {
            id: p.id.clone(),
            name: p.name.clone(),
            role: p.role,
            in_lobby: p.in_lobby,
            hard_muted: p.hard_muted,
            speak_granted: p.speak_granted,
            camera_allowed: p.camera_allowed,
            hand,
        })
    }
}
