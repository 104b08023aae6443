//! Recording, the room task's side: it acts on the room's [`RecordingIntent`]s. Starting makes
//! the recording's row and folder, starts its writer (`lectern-record`, a thread), writes the
//! event log's first line (the room as staff see it), and tells the media worker the room is
//! placed on to feed the writer. While recording, each [`Output::RecordEvent`] goes to the log,
//! stamped on the recording's clock. Stopping tells the worker, lets the writer finish its
//! files, and stores the outcome.
//!
//! The media worker of a room can change (a room with no media peers releases its worker), so
//! the worker is told to record whenever the room is placed and to stop when it is released.
//!
//! [`Output::RecordEvent`]: lectern_room::Output::RecordEvent

use std::time::Instant;

use lectern_proto::{ParticipantId, RecordingStopReason, ServerMessage};
use lectern_record::{RecordingSink, StopReason, TrackKey, WriterConfig, WriterHandle};
use lectern_room::{Input, RecordingBlocked, RecordingIntent};
use lectern_sfu::{BoxedRecordSink, Command, MediaKind, RecordSink, RecordedFrame};
use lectern_store::{Recording, RecordingState, RecordingUpdate};
use serde_json::json;
use tracing::{error, info, warn};

use super::task::RoomTask;
use crate::recordings;
use crate::room_name::RoomName;

/// The recording running in this room, if any.
#[derive(Debug, Default)]
pub(super) struct Recorder {
    active: Option<Active>,
}

#[derive(Debug)]
struct Active {
    id: String,
    started: Instant,
    sink: RecordingSink,
    writer: WriterHandle,
}

impl RoomTask {
    /// Why recording is not possible now, if it is not: turned off, or the disk too full.
    pub(super) fn recording_blocked(&self) -> Option<RecordingBlocked> {
        let settings = &self.env.settings.recording;
        if !settings.enabled {
            return Some(RecordingBlocked::Disabled);
        }
        let dir = &self.env.settings.recordings_dir;
        let _ = std::fs::create_dir_all(dir);
        match lectern_record::available_space(dir) {
            Ok(free) if free < settings.min_free_bytes => Some(RecordingBlocked::DiskFull),
            Ok(_) => None,
            Err(e) => {
                warn!(error = %e, "cannot tell the free space of the recordings directory");
                Some(RecordingBlocked::DiskFull)
            }
        }
    }

    /// Tells the room whether it may record now (before a `recording_start` reaches it).
    pub(super) fn refresh_recording_availability(&mut self, now: u64) {
        let blocked = self.recording_blocked();
        self.room
            .handle(now, Input::RecordingAvailability { blocked });
    }

    /// Acts on the room's intent. A start that fails is told back to the room, which tells the
    /// class (`recording_stopped`, reason `failed` or `disk_full`).
    pub(super) async fn recording_intent(&mut self, intent: RecordingIntent) {
        match intent {
            RecordingIntent::Start { by } => {
                if let Err(reason) = self.start_recording(by).await {
                    let now = self.env.clock.now_ms();
                    self.room.handle(now, Input::RecordingStopped { reason });
                }
            }
            RecordingIntent::Stop { reason } => self.stop_recording(reason).await,
        }
    }

    async fn start_recording(
        &mut self,
        by: Option<ParticipantId>,
    ) -> Result<(), RecordingStopReason> {
        if self.recorder.active.is_some() {
            return Ok(());
        }
        if let Some(blocked) = self.recording_blocked() {
            warn!(?blocked, "recording refused");
            return Err(match blocked {
                RecordingBlocked::DiskFull => RecordingStopReason::DiskFull,
                RecordingBlocked::Disabled => RecordingStopReason::Failed,
            });
        }
        let id = recordings::new_recording_id();
        let started = Instant::now();
        let started_at = crate::clock::wall_ms();
        let course = RoomName::parse(self.room_id.as_str())
            .map(|r| r.course().to_owned())
            .unwrap_or_else(|| self.room_id.as_str().to_owned());
        let row = Recording {
            id: id.clone(),
            room_id: self.room_id.as_str().to_owned(),
            course_id: course,
            title: self.room.config().title.clone(),
            state: RecordingState::Recording,
            started_at,
            ended_at: None,
            duration_ms: 0,
            bytes: 0,
            interrupted: false,
            stop_reason: None,
            error: None,
            dir: id.clone(),
        };
        let settings = &self.env.settings;
        let config = WriterConfig {
            queue_frames: settings.recording.queue_frames,
            min_free_bytes: settings.recording.min_free_bytes,
            ..WriterConfig::new(
                settings.recordings_dir.join(&row.dir),
                id.clone(),
                started,
                started_at,
            )
        };
        let (sink, writer) = lectern_record::writer::spawn(config).map_err(|e| {
            error!(error = %e, "cannot start a recording's writer");
            RecordingStopReason::Failed
        })?;
        if let Err(e) = self.env.store.create_recording(&row).await {
            error!(error = %e, "cannot store a new recording");
            sink.stop(StopReason::Stopped);
            let _ = tokio::task::spawn_blocking(move || writer.join()).await;
            return Err(RecordingStopReason::Failed);
        }
        let snapshot = self.room.recording_snapshot();
        sink.event(
            0,
            json!({"t": 0, "type": "start", "started_at": started_at, "snapshot": snapshot}),
        );
        info!(recording.id = %id, by = ?by.as_ref().map(|b| b.as_str()), "recording started");
        self.recorder.active = Some(Active {
            id,
            started,
            sink,
            writer,
        });
        for worker in self.media_workers() {
            self.record_on_worker(worker);
        }
        Ok(())
    }

    /// Media worker `worker` records the room too (called for each of the room's workers when
    /// recording starts, and when a peer of the room is placed on a worker it had none on):
    /// each worker records the tracks published on it, into the one writer.
    pub(super) fn record_on_worker(&mut self, worker: usize) {
        let (Some(active), Some(plane)) = (&self.recorder.active, &self.env.media) else {
            return;
        };
        let Some(handle) = plane.handle(worker) else {
            return;
        };
        let sink = FrameSink {
            sink: active.sink.clone(),
        };
        let command = Command::StartRecording {
            room: lectern_sfu::RoomId::new(self.room_id.as_str()),
            started: active.started,
            sink: BoxedRecordSink(Box::new(sink)),
        };
        let _ = handle.send(command);
    }

    /// Media worker `worker` stops recording the room (recording stops, or the room's last peer
    /// there left).
    pub(super) fn stop_recording_on_worker(&self, worker: usize) {
        if self.recorder.active.is_none() {
            return;
        }
        if let Some(handle) = self.env.media.as_ref().and_then(|p| p.handle(worker)) {
            let room = lectern_sfu::RoomId::new(self.room_id.as_str());
            let _ = handle.send(Command::StopRecording { room });
        }
    }

    async fn stop_recording(&mut self, reason: RecordingStopReason) {
        for worker in self.media_workers() {
            self.stop_recording_on_worker(worker);
        }
        let Some(active) = self.recorder.active.take() else {
            return;
        };
        active.sink.stop(writer_reason(reason));
        let reason = stop_reason_str(reason);
        let ended_at = crate::clock::wall_ms();
        let update = |state, duration_ms, bytes, error: Option<String>| RecordingUpdate {
            state,
            ended_at: Some(ended_at),
            duration_ms,
            bytes,
            interrupted: false,
            stop_reason: Some(reason.to_owned()),
            error,
        };
        let store = &self.env.store;
        let _ = store
            .update_recording(&active.id, &update(RecordingState::Processing, 0, 0, None))
            .await;
        let writer = active.writer;
        let finished = tokio::task::spawn_blocking(move || writer.join()).await;
        let outcome = match finished {
            Ok(Ok(manifest)) => {
                // The one-file export is made in the background; the row stays `processing`
                // until it is done.
                let done = update(
                    RecordingState::Ready,
                    manifest.duration_ms,
                    manifest.segments.iter().map(|s| s.bytes).sum(),
                    None,
                );
                let processing = RecordingUpdate {
                    state: RecordingState::Processing,
                    ..done.clone()
                };
                let _ = store.update_recording(&active.id, &processing).await;
                let dir = self.env.settings.recordings_dir.join(&active.id);
                tokio::spawn(crate::recordings::export::export_then_ready(
                    store.clone(),
                    self.env.exports.clone(),
                    dir,
                    active.id.clone(),
                    done,
                ));
                info!(recording.id = %active.id, reason, "recording stopped; exporting");
                return;
            }
            Ok(Err(e)) => {
                error!(recording.id = %active.id, error = %e, "a recording's writer failed");
                update(RecordingState::Failed, 0, 0, Some(e.to_string()))
            }
            Err(e) => {
                error!(recording.id = %active.id, error = %e, "a recording's writer panicked");
                update(
                    RecordingState::Failed,
                    0,
                    0,
                    Some("the writer stopped".into()),
                )
            }
        };
        if let Err(e) = store.update_recording(&active.id, &outcome).await {
            error!(recording.id = %active.id, error = %e, "cannot store a recording's outcome");
        }
        info!(recording.id = %active.id, reason, state = %outcome.state, "recording stopped");
    }

    /// While recording: one message the class saw, into the event log.
    pub(super) fn record_event(&mut self, message: &ServerMessage) {
        let Some(active) = &self.recorder.active else {
            return;
        };
        let t = active.started.elapsed().as_millis() as u64;
        // The stage moved: fresh keyframes let the export cut to the new source at once.
        if let ServerMessage::Event {
            event:
                lectern_proto::RoomEvent::StageGranted { .. }
                | lectern_proto::RoomEvent::StageRevoked { .. },
            ..
        } = message
            && let Some(plane) = &self.env.media
        {
            for worker in self.media_workers() {
                if let Some(handle) = plane.handle(worker) {
                    let room = lectern_sfu::RoomId::new(self.room_id.as_str());
                    let _ = handle.send(Command::RecordingKeyframes { room });
                }
            }
        }
        let Ok(mut value) = serde_json::to_value(message) else {
            return;
        };
        if let Some(object) = value.as_object_mut() {
            object.insert("t".into(), t.into());
        }
        active.sink.event(t, value);
    }

    /// True while a recording runs here.
    pub(super) fn is_recording(&self) -> bool {
        self.recorder.active.is_some()
    }

    /// The writer stops by itself only when the disk fills up: then the room is told (it tells
    /// the class), and the recording is closed as any other. Checked every few seconds.
    pub(super) async fn check_recording(&mut self) {
        if self
            .recorder
            .active
            .as_ref()
            .is_some_and(|a| a.sink.is_stopped())
        {
            let now = self.env.clock.now_ms();
            let reason = RecordingStopReason::DiskFull;
            self.room.handle(now, Input::RecordingStopped { reason });
            self.stop_recording(reason).await;
        }
    }
}

fn writer_reason(reason: RecordingStopReason) -> StopReason {
    match reason {
        RecordingStopReason::ClassEnded => StopReason::ClassEnded,
        RecordingStopReason::DiskFull => StopReason::DiskFull,
        RecordingStopReason::Shutdown => StopReason::Shutdown,
        RecordingStopReason::Stopped | RecordingStopReason::Failed => StopReason::Stopped,
    }
}

fn stop_reason_str(reason: RecordingStopReason) -> &'static str {
    match reason {
        RecordingStopReason::Stopped => "stopped",
        RecordingStopReason::ClassEnded => "class_ended",
        RecordingStopReason::DiskFull => "disk_full",
        RecordingStopReason::Failed => "failed",
        RecordingStopReason::Shutdown => "shutdown",
    }
}

/// The media worker's end of a recording: frames into the writer's bounded queue.
struct FrameSink {
    sink: RecordingSink,
}

impl RecordSink for FrameSink {
    fn frame(&mut self, frame: RecordedFrame) -> bool {
        let kind = match frame.kind {
            MediaKind::Audio => lectern_record::Kind::Audio,
            MediaKind::Video => lectern_record::Kind::Video,
        };
        let key = TrackKey {
            participant_id: frame.participant.as_str().to_owned(),
            track: frame.track,
        };
        if let Some(gap) = frame.gap {
            self.sink.gap(key.clone(), gap);
        }
        self.sink.try_frame(key, kind, frame.frame)
    }

    fn keyframes_wanted(&mut self) -> Vec<(lectern_sfu::ParticipantId, u64)> {
        self.sink
            .take_keyframe_wanted()
            .into_iter()
            .map(|k| (lectern_sfu::ParticipantId::new(k.participant_id), k.track))
            .collect()
    }
}
