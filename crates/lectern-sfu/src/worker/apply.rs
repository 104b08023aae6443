//! A worker's commands applied to its `Sfu`: the control API as messages (see [`Command`]).

use std::time::Instant;

use tracing::debug;

use super::{Command, CommandKind, Worker, WorkerEvent};

impl Worker {
    pub(super) fn apply(&mut self, command: Command) {
        let now = Instant::now();
        let (peer, command, result) = match command {
            Command::AddPeer { peer } => {
                let r = self.sfu.add_peer(now, peer.clone());
                (peer, CommandKind::AddPeer, r)
            }
            Command::RemovePeer { peer } => {
                self.sfu.remove_peer(now, &peer);
                return;
            }
            Command::AcceptOffer { peer, sdp } => match self.sfu.accept_offer(now, &peer, &sdp) {
                Ok(sdp) => {
                    (self.sink)(WorkerEvent::Answer { peer, sdp });
                    return;
                }
                Err(e) => (peer, CommandKind::AcceptOffer, Err(e)),
            },
            Command::AcceptAnswer { peer, sdp } => {
                let r = self.sfu.accept_answer(now, &peer, &sdp);
                (peer, CommandKind::AcceptAnswer, r)
            }
            Command::AddRemoteCandidate { peer, candidate } => {
                let r = self.sfu.add_remote_candidate(now, &peer, &candidate);
                (peer, CommandKind::AddRemoteCandidate, r)
            }
            Command::SetPublishPermission { peer, audio, video } => {
                let r = self.sfu.set_publish_permission(now, &peer, audio, video);
                (peer, CommandKind::SetPublishPermission, r)
            }
            Command::SetViewSize {
                peer,
                mid,
                width,
                height,
                paused,
            } => {
                let r = self.sfu.set_view(now, &peer, &mid, width, height, paused);
                (peer, CommandKind::SetViewSize, r)
            }
            Command::StartRecording {
                room,
                started,
                sink,
            } => {
                self.sfu.start_recording(room.clone(), started);
                self.record_sinks.insert(room, sink.0);
                return;
            }
            Command::RecordingKeyframes { room } => {
                self.sfu.request_recording_keyframes(now, &room);
                return;
            }
            Command::RecordingKeyframe {
                room,
                participant,
                track,
            } => {
                self.sfu
                    .request_recording_keyframe(now, &room, &participant, track);
                return;
            }
            Command::Link { own, other, to } => {
                self.own = Some(own);
                self.links.insert(other, to);
                self.sfu.add_link(other);
                return;
            }
            Command::Relay { from, message } => {
                self.sfu.handle_relay(now, from, message);
                return;
            }
            Command::StopRecording { room } => {
                self.sfu.stop_recording(now, &room);
                self.flush();
                self.record_sinks.remove(&room);
                return;
            }
            Command::Shutdown => return,
        };
        if let Err(error) = result {
            debug!(room.id = %peer.room, participant.id = %peer.participant, ?command, error = %error, "media command refused");
            (self.sink)(WorkerEvent::Failed {
                peer,
                command,
                error,
            });
        }
    }
}
