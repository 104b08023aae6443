//! Recording: staff start and stop it in a live class (or the course records its sessions
//! automatically when the class starts), everyone is told before their media is captured, and
//! while it runs the room hands its driver a copy of every message the class sees, for the
//! recording's event log.
//!
//! The room only decides; the driver records. It tells the room whether recording is possible
//! now ([`Input::RecordingAvailability`]: turned off, disk too full) and when a recording
//! stopped by itself ([`Input::RecordingStopped`]).

use lectern_proto::{
    ClassState, ParticipantId, RecordingStopReason, RoomEvent, ServerMessage, UnixMillis,
};

use super::{Handled, Reply, Request, Room};
use crate::{Output, RecordingIntent, RoomError};

impl Room {
    /// The room as staff see it (every chat message), for the first line of a recording's
    /// event log.
    pub fn recording_snapshot(&self) -> lectern_proto::Snapshot {
        let chat = self
            .chat
            .visible_tail(self.config.snapshot_chat_len, |_| true);
        self.build_snapshot(chat, None)
    }

    /// True while the class is being recorded.
    pub fn is_recording(&self) -> bool {
        self.recording
    }

    /// Staff start recording. The class must be live; recording twice is a no-op.
    pub(super) fn recording_start(&mut self, req: &Request) -> Handled {
        if self.class_state != ClassState::Live {
            return Err(RoomError::ClassNotLive);
        }
        if self.recording {
            return Reply::no_event();
        }
        if let Some(reason) = self.recording_blocked {
            return Err(RoomError::RecordingUnavailable(reason));
        }
        Reply::event(self.start_recording(req.now, Some(req.actor.clone())))
    }

    /// Staff stop recording; stopping when not recording is a no-op.
    pub(super) fn recording_stop(&mut self, req: &Request) -> Handled {
        if !self.recording {
            return Reply::no_event();
        }
        let by = Some(req.actor.clone());
        Reply::event(self.stop_recording(req.now, by, RecordingStopReason::Stopped))
    }

    /// Starts recording: `recording_started` goes to everyone first (it is the first line of
    /// the event log too), then the driver is asked to record.
    pub(super) fn start_recording(&mut self, now: UnixMillis, by: Option<ParticipantId>) -> u64 {
        self.recording = true;
        // The driver starts the recorder before the event, so the event is its log's first.
        self.outputs
            .push_back(Output::Recording(RecordingIntent::Start { by: by.clone() }));
        self.emit(now, RoomEvent::RecordingStarted { by }, None)
    }

    /// Stops recording (if it runs): `recording_stopped` is told and logged, then the driver
    /// is asked to stop.
    pub(super) fn stop_recording(
        &mut self,
        now: UnixMillis,
        by: Option<ParticipantId>,
        reason: RecordingStopReason,
    ) -> u64 {
        if !self.recording {
            return self.seq;
        }
        let seq = self.emit(now, RoomEvent::RecordingStopped { by, reason }, None);
        self.recording = false;
        self.outputs
            .push_back(Output::Recording(RecordingIntent::Stop { reason }));
        seq
    }

    /// The driver says whether recording is possible now (`None`) or why not.
    pub(super) fn handle_recording_availability(&mut self, blocked: Option<RecordingBlocked>) {
        self.recording_blocked = blocked;
    }

    /// The driver's recorder stopped by itself (disk full, write failure): tell the class.
    pub(super) fn handle_recording_stopped(
        &mut self,
        now: UnixMillis,
        reason: RecordingStopReason,
    ) {
        if self.recording {
            self.emit(now, RoomEvent::RecordingStopped { by: None, reason }, None);
            self.recording = false;
        }
    }

    /// While recording, a copy of a message the class saw, for the event log.
    pub(super) fn log_for_recording(&mut self, message: &ServerMessage) {
        if self.recording {
            self.outputs.push_back(Output::RecordEvent(message.clone()));
        }
    }

    /// When a class goes live: a course that records its sessions starts recording.
    pub(super) fn record_automatically(&mut self, now: UnixMillis) {
        if self.config.record_automatically && !self.recording && self.recording_blocked.is_none() {
            self.start_recording(now, None);
        }
    }
}

/// Why recording cannot start now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordingBlocked {
    /// `recording.enabled` is off on this server.
    Disabled,
    /// Free space on the recordings disk is under `recording.min_free_bytes`.
    DiskFull,
}
