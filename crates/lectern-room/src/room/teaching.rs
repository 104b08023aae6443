//! Class-wide teaching controls: mute everyone, let everyone speak, switch between lecture and
//! seminar, ask for, allow and stop a student's camera, and the attendance panel. Each change is
//! recorded for the audit log and followed by the media intents of those whose permissions
//! changed.

use lectern_proto::{ClassMode, ParticipantId, Role, RoomEvent, ServerMessage};

use super::{Handled, Reply, Request, Room};
use crate::{ModerationAction, RoomError};

/// `(participant, (audio, video))` for each participant, to compare before and after a change.
type PermsBefore = Vec<(ParticipantId, (bool, bool))>;

/// Which camera request a staff member made.
#[derive(Debug, Clone, Copy)]
enum CameraAction {
    Request,
    Allow,
    Stop,
}

impl Room {
    /// Hard-mutes every non-staff participant (the presenter too, and the lobby, so that every
    /// client can apply `all_muted` the same way), clears every speech grant and turns
    /// `speak_all` off. Always announced, like `mute`.
    pub(super) fn mute_all(&mut self, req: &Request) -> Handled {
        let before = self.perms_before();
        for p in self.roster.iter_mut().filter(|p| !p.is_staff()) {
            p.hard_muted = true;
            p.speak_granted = false;
        }
        self.speak_all = false;
        let event = RoomEvent::AllMuted {
            by: req.actor.clone(),
        };
        let seq = self.emit(req.now, event, None);
        self.persist_moderation(req, seq, ModerationAction::MuteAll, None);
        self.publish_changes(before);
        Reply::event(seq)
    }

    /// "Allow everyone to speak": `true` lifts every hard mute and lets every student in the
    /// class speak; `false` takes that back with every speech grant (the presenter keeps the
    /// stage's audio). The current value again is a no-op.
    pub(super) fn set_speak_all(&mut self, req: &Request, allowed: bool) -> Handled {
        if allowed == self.speak_all {
            return Reply::no_event();
        }
        let before = self.perms_before();
        self.speak_all = allowed;
        for p in self.roster.iter_mut() {
            if allowed {
                p.hard_muted = false;
            } else {
                p.speak_granted = false;
            }
        }
        let event = RoomEvent::SpeakAllChanged {
            allowed,
            by: req.actor.clone(),
        };
        let seq = self.emit(req.now, event, None);
        let action = if allowed {
            ModerationAction::AllowSpeakAll
        } else {
            ModerationAction::RevokeSpeakAll
        };
        self.persist_moderation(req, seq, action, None);
        self.publish_changes(before);
        Reply::event(seq)
    }

    /// Switches the layout: seminar allows every student's camera, lecture stops them (the
    /// presenter still publishes through the stage). The current mode again is a no-op.
    pub(super) fn set_mode(&mut self, req: &Request, mode: ClassMode) -> Handled {
        if mode == self.mode {
            return Reply::no_event();
        }
        let before = self.perms_before();
        self.mode = mode;
        for p in self.roster.iter_mut().filter(|p| p.role == Role::Student) {
            p.camera_allowed = mode == ClassMode::Seminar;
        }
        let event = RoomEvent::ModeChanged {
            mode,
            by: req.actor.clone(),
        };
        let seq = self.emit(req.now, event, None);
        let action = match mode {
            ClassMode::Lecture => ModerationAction::LectureMode,
            ClassMode::Seminar => ModerationAction::SeminarMode,
        };
        self.persist_moderation(req, seq, action, None);
        self.publish_changes(before);
        Reply::event(seq)
    }

    /// Asks a student to turn the camera on: allows it; their client asks them (the server
    /// never turns a camera on).
    pub(super) fn camera_request(&mut self, req: &Request, target: ParticipantId) -> Handled {
        self.camera(req, target, CameraAction::Request)
    }

    pub(super) fn camera_allow(&mut self, req: &Request, target: ParticipantId) -> Handled {
        self.camera(req, target, CameraAction::Allow)
    }

    /// Stops a student's video (camera and screen) unless they hold the stage.
    pub(super) fn camera_stop(&mut self, req: &Request, target: ParticipantId) -> Handled {
        self.camera(req, target, CameraAction::Stop)
    }

    /// The target must be a student in the class: staff and observers are
    /// [`RoomError::NotPermitted`], the lobby [`RoomError::InLobby`] (see
    /// [`Room::check_speech_target`]). Always announced, like `mute`.
    fn camera(&mut self, req: &Request, target: ParticipantId, action: CameraAction) -> Handled {
        if self.check_speech_target(&target)?.is_staff() {
            return Err(RoomError::NotPermitted);
        }
        let p = self.roster.get_mut(&target).ok_or(RoomError::NotFound)?;
        p.camera_allowed = !matches!(action, CameraAction::Stop);
        let (participant_id, by) = (target.clone(), req.actor.clone());
        let (event, moderation) = match action {
            CameraAction::Request => (
                RoomEvent::CameraRequested { participant_id, by },
                ModerationAction::CameraRequest,
            ),
            CameraAction::Allow => (
                RoomEvent::CameraAllowed { participant_id, by },
                ModerationAction::CameraAllow,
            ),
            CameraAction::Stop => (
                RoomEvent::CameraStopped { participant_id, by },
                ModerationAction::CameraStop,
            ),
        };
        let seq = self.emit(req.now, event, None);
        self.persist_moderation(req, seq, moderation, Some(target.clone()));
        self.publish_intent(&target);
        Reply::event(seq)
    }

    /// Sends the attendance tally to the staff member who asked (instead of an ack).
    pub(super) fn attendance_get(&mut self, req: &Request) -> Handled {
        let entries = self.attendance.entries(|id| self.roster.contains(id));
        let message = ServerMessage::Attendance {
            request_id: req.request_id,
            class_started_at: self.class_started_at,
            entries,
        };
        self.send(vec![req.conn], None, message);
        Ok(Reply::Done)
    }

    fn perms_before(&self) -> PermsBefore {
        self.roster
            .iter()
            .map(|p| (p.id.clone(), self.media_perms(p)))
            .collect()
    }

    /// Media intents for everyone whose `(audio, video)` differs from `before`.
    fn publish_changes(&mut self, before: PermsBefore) {
        for (id, perms) in before {
            if self.media_permissions(&id).is_some_and(|now| now != perms) {
                self.publish_intent(&id);
            }
        }
    }
}
