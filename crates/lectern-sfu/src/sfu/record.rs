//! Recording: a consumer of the ingest step (see `ingest.rs`), fed once per received packet of
//! a recorded room, never per subscriber.
//!
//! A room is recorded from [`Sfu::start_recording`] to [`Sfu::stop_recording`]. Every track a
//! publisher of that room may publish (the room decides who: the instructor, the presenter, a
//! student allowed to speak) gets a [`TrackRecorder`] on its first packet, which turns RTP
//! packets into frames after the loss repair str0m already does (NACK to the publisher; a
//! retransmission arrives as the packet it replaces). Simulcast: one layer is recorded, the
//! widest one that is active; a switch is a new run for the recorder, which then waits for a
//! keyframe. Whenever a recorder wants a keyframe (after loss, a layer switch, a new segment)
//! the publisher is asked through the usual coalesced requests, exactly as for a new
//! subscriber.
//!
//! Frames come out of [`Sfu::poll_recorded`]; the driver hands them to the recording's writer
//! off this thread. Frames the writer could not take are its to account for (a gap); it asks
//! for a keyframe back through [`Sfu::request_recording_keyframe`].

use std::collections::HashMap;
use std::time::Instant;

use lectern_record::{Codec as RecCodec, RecPacket, TrackRecorder};
use str0m::format::Codec;
use str0m::media::KeyframeRequestKind;

use super::Sfu;
use super::ingest::Ingested;
use crate::peer::{PeerKey, TrackId};
use crate::{MediaKind, ParticipantId, RoomId};

/// One recorded room: its clock's start and a recorder per recorded track.
#[derive(Debug)]
pub(super) struct RoomRecording {
    started: Instant,
    tracks: HashMap<(PeerKey, TrackId), Recorded>,
}

#[derive(Debug)]
struct Recorded {
    recorder: TrackRecorder,
    participant: ParticipantId,
    kind: MediaKind,
    /// The simulcast layer recorded now.
    layer: usize,
    /// Layer switches so far, part of the run the recorder is given: going back to a layer
    /// recorded before is a new run (the recorder drops packets of a run it has replaced).
    switches: u8,
}

/// A frame of a recorded room, for its writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedFrame {
    pub room: RoomId,
    pub participant: ParticipantId,
    /// The SFU's number for the published track, stable for the recording: a participant's
    /// camera and screen are two tracks.
    pub track: u64,
    pub kind: MediaKind,
    pub frame: lectern_record::Frame,
    /// Unrepaired loss just before this frame, if any.
    pub gap: Option<lectern_record::Gap>,
}

impl RoomRecording {
    pub(super) fn new(started: Instant) -> Self {
        RoomRecording {
            started,
            tracks: HashMap::new(),
        }
    }
}

impl Sfu {
    /// Start recording `room` on the clock that started at `started` (frame times are measured
    /// from it). Already recording: nothing changes.
    pub fn start_recording(&mut self, room: RoomId, started: Instant) {
        self.recordings
            .entry(room)
            .or_insert_with(|| RoomRecording::new(started));
    }

    /// Stop recording `room`: what each recorder still holds is released (polled with
    /// [`Sfu::poll_recorded`]), then the recorders go.
    pub fn stop_recording(&mut self, now: Instant, room: &RoomId) {
        if let Some(mut recording) = self.recordings.remove(room) {
            for ((_, track), mut rec) in recording.tracks.drain() {
                rec.recorder
                    .handle_timeout(now + lectern_record::REORDER_WAIT * 2);
                drain(&mut self.recorded, room, track, &mut rec);
            }
        }
    }

    /// Whether `room` is being recorded here.
    pub fn is_recording(&self, room: &RoomId) -> bool {
        self.recordings.contains_key(room)
    }

    /// The next recorded frame, if any. Drain after every input, like the other polls.
    pub fn poll_recorded(&mut self) -> Option<RecordedFrame> {
        self.recorded.pop_front()
    }

    /// The writer lost frames of this track: ask its publisher for a keyframe. False if the
    /// track is not recorded here (with linked SFUs, it may be recorded by another).
    pub fn request_recording_keyframe(
        &mut self,
        now: Instant,
        room: &RoomId,
        participant: &ParticipantId,
        track: u64,
    ) -> bool {
        let Some(recording) = self.recordings.get(room) else {
            return false;
        };
        let found = recording
            .tracks
            .iter()
            .find(|((_, t), r)| t.0 == track && r.participant == *participant)
            .map(|((key, t), r)| (*key, *t, r.layer));
        if let Some((key, t, layer)) = found {
            self.request_keyframe(now, key, t, Some(layer), KeyframeRequestKind::Pli);
        }
        found.is_some()
    }

    /// The stage moved: every recorded video track of `room` is asked for a keyframe, so that a
    /// cut to the new stage source (in the one-file export) need not wait for the browser's
    /// next periodic keyframe (Chrome sends one every ~100 s unless asked).
    pub fn request_recording_keyframes(&mut self, now: Instant, room: &RoomId) {
        let Some(recording) = self.recordings.get(room) else {
            return;
        };
        let tracks: Vec<_> = recording
            .tracks
            .iter()
            .filter(|(_, r)| r.kind == MediaKind::Video)
            .map(|(&(key, track), r)| (key, track, r.layer))
            .collect();
        for (key, track, layer) in tracks {
            self.request_keyframe(now, key, track, Some(layer), KeyframeRequestKind::Pli);
        }
    }

    /// Feed one ingested packet to its room's recording, if the room is recorded.
    pub(super) fn record(&mut self, now: Instant, packet: &Ingested) {
        let Some(peer) = self.peers.get(&packet.source) else {
            return;
        };
        let room = &peer.id.room;
        let Some(recording) = self.recordings.get_mut(room) else {
            return;
        };
        let codec = match (packet.kind, packet.params.spec().codec) {
            (MediaKind::Video, Codec::Vp8) => RecCodec::Vp8,
            (MediaKind::Audio, Codec::Opus) => RecCodec::Opus,
            _ => return, // only what WebM can hold without transcoding
        };
        // Simulcast: the widest active layer (layers' sizes come from their keyframes).
        let wanted = peer
            .track_in_index(packet.track)
            .map(|i| {
                let layers = &peer.tracks_in[i].layers;
                (0..layers.len())
                    .filter(|&l| layers[l].active(now))
                    .max_by_key(|&l| (layers[l].width, std::cmp::Reverse(l)))
                    .unwrap_or(packet.layer)
            })
            .unwrap_or(packet.layer);
        let started = recording.started;
        let participant = peer.id.participant.clone();
        let rec = recording
            .tracks
            .entry((packet.source, packet.track))
            .or_insert_with(|| Recorded {
                recorder: TrackRecorder::new(codec, packet.params.spec().clock_rate.get(), started),
                participant,
                kind: packet.kind,
                layer: wanted,
                switches: 0,
            });
        if rec.layer != wanted {
            rec.layer = wanted;
            rec.switches = rec.switches.wrapping_add(1);
        }
        if packet.layer != rec.layer {
            return;
        }
        let run = (u64::from(packet.run.generation & 0xffff) << 48)
            | (u64::from(rec.switches) << 40)
            | (u64::from(packet.run.layer) << 32)
            | u64::from(packet.run.epoch);
        rec.recorder.push(
            now,
            RecPacket {
                arrived: packet.arrived,
                seq: packet.seq,
                rtp_time: packet.rtp_time,
                marker: packet.marker,
                run,
                keyframe_start: packet.keyframe_start,
                payload: &packet.payload,
            },
        );
        let wants_keyframe = rec.recorder.take_keyframe_request();
        let layer = rec.layer;
        let room = room.clone();
        drain(&mut self.recorded, &room, packet.track, rec);
        if wants_keyframe {
            self.request_keyframe(
                now,
                packet.source,
                packet.track,
                Some(layer),
                KeyframeRequestKind::Pli,
            );
        }
    }

    /// A publisher's track ended (the track stopped, or the peer left): its recorder releases
    /// what it holds and goes.
    pub(super) fn stop_recording_track(&mut self, now: Instant, key: PeerKey, track: TrackId) {
        let Some(room) = self.peers.get(&key).map(|p| p.id.room.clone()) else {
            return;
        };
        if let Some(recording) = self.recordings.get_mut(&room)
            && let Some(mut rec) = recording.tracks.remove(&(key, track))
        {
            rec.recorder
                .handle_timeout(now + lectern_record::REORDER_WAIT * 2);
            drain(&mut self.recorded, &room, track, &mut rec);
        }
    }

    /// Recorders' timers (a missing packet given up): run those due.
    pub(super) fn recording_timeouts(&mut self, now: Instant) {
        let mut keyframes = Vec::new();
        for (room, recording) in &mut self.recordings {
            for (&(key, track), rec) in &mut recording.tracks {
                if rec.recorder.poll_timeout().is_some_and(|t| t <= now) {
                    rec.recorder.handle_timeout(now);
                    if rec.recorder.take_keyframe_request() {
                        keyframes.push((key, track, rec.layer));
                    }
                    drain(&mut self.recorded, room, track, rec);
                }
            }
        }
        for (key, track, layer) in keyframes {
            self.request_keyframe(now, key, track, Some(layer), KeyframeRequestKind::Pli);
        }
    }

    /// The earliest recorder timer.
    pub(super) fn recording_timeout(&self) -> Option<Instant> {
        self.recordings
            .values()
            .flat_map(|r| r.tracks.values())
            .filter_map(|r| r.recorder.poll_timeout())
            .min()
    }
}

/// Moves a recorder's frames (with the gaps before them) into the SFU's queue.
fn drain(
    out: &mut std::collections::VecDeque<RecordedFrame>,
    room: &RoomId,
    track: TrackId,
    rec: &mut Recorded,
) {
    while let Some(frame) = rec.recorder.poll_frame() {
        out.push_back(RecordedFrame {
            room: room.clone(),
            participant: rec.participant.clone(),
            track: track.0,
            kind: rec.kind,
            frame,
            gap: rec.recorder.poll_gap(),
        });
    }
}
