//! What a peer may publish, the tracks it publishes, and who subscribes to them (every other
//! peer of its room, once the track is allowed).

use std::time::Instant;

use str0m::media::{KeyframeRequestKind, Mid};
use tracing::debug;

use super::Sfu;
use crate::peer::{OutState, PeerKey, TrackId, TrackIn, TrackOut};
use crate::{MediaEvent, MediaKind, PeerId, PublishPermission, SfuError};

impl Sfu {
    /// Set what a participant may publish (the room's media intent). Takes effect on the next
    /// packet: denied media is dropped before it is forwarded to anyone. Allowing a track for
    /// the first time offers it to the room's subscribers; allowing it again resumes
    /// forwarding at once and asks the publisher for a keyframe.
    pub fn set_publish_permission(
        &mut self,
        now: Instant,
        peer_id: &PeerId,
        audio: bool,
        video: bool,
    ) -> Result<(), SfuError> {
        let key = self.key(peer_id)?;
        let peer = self.peers.get_mut(&key).expect("indexed peer exists");
        let old = peer.permission;
        let new = PublishPermission { audio, video };
        peer.permission = new;
        debug!(room.id = %peer_id.room, participant.id = %peer_id.participant, audio, video, "publish permission");
        let mut to_announce = Vec::new();
        let mut resumed = Vec::new();
        for track in &mut peer.tracks_in {
            if new.allows(track.kind) && !old.allows(track.kind) {
                if track.announced {
                    track.generation = track.generation.wrapping_add(1);
                    resumed.push(track.id);
                } else {
                    to_announce.push(track.id);
                }
            }
        }
        for track in to_announce {
            self.announce(key, track);
        }
        for track in resumed {
            self.request_keyframe(now, key, track, None, KeyframeRequestKind::Pli);
        }
        if !audio {
            let room = self.peers[&key].id.room.clone();
            self.clear_speaker(&room, key);
        }
        self.finish(now);
        Ok(())
    }

    pub(super) fn add_track_in(&mut self, key: PeerKey, mid: Mid, kind: MediaKind) {
        let id = TrackId(self.next_track);
        self.next_track += 1;
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        peer.tracks_in.push(TrackIn::new(id, mid, kind));
        peer.ssrc_routes.clear();
        let allowed = peer.permission.allows(kind);
        debug!(room.id = %peer.id.room, participant.id = %peer.id.participant, kind = kind.as_str(), allowed, "track published");
        self.events.push_back(MediaEvent::TrackPublished {
            peer: peer.id.clone(),
            mid: mid.to_string(),
            kind,
        });
        if allowed {
            self.announce(key, id);
        }
    }

    pub(super) fn remove_track_in(&mut self, now: Instant, key: PeerKey, mid: Mid) {
        let Some(id) = self
            .peers
            .get(&key)
            .and_then(|p| p.tracks_in.iter().find(|t| t.mid == mid))
            .map(|t| t.id)
        else {
            return;
        };
        self.stop_recording_track(now, key, id);
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let Some(i) = peer.tracks_in.iter().position(|t| t.mid == mid) else {
            return;
        };
        let track = peer.tracks_in.remove(i);
        peer.ssrc_routes.clear();
        self.events.push_back(MediaEvent::TrackUnpublished {
            peer: peer.id.clone(),
            mid: mid.to_string(),
            kind: track.kind,
        });
        let still_audible = peer.tracks_in.iter().any(|t| t.kind == MediaKind::Audio);
        let room = peer.id.room.clone();
        for &sub in &track.subscribers {
            self.stop_track_out(sub, key, track.id);
        }
        if !still_audible {
            self.clear_speaker(&room, key);
        }
        if track.announced {
            self.relay_tracks_changed(&room);
        }
    }

    /// Offer a publisher's track to every other peer of its room.
    pub(super) fn announce(&mut self, key: PeerKey, track_id: TrackId) {
        let Some(peer) = self.peers.get(&key) else {
            return;
        };
        let (room, publisher) = (peer.id.room.clone(), peer.id.clone());
        let Some(i) = peer.track_in_index(track_id) else {
            return;
        };
        let kind = peer.tracks_in[i].kind;
        let subscribers: Vec<PeerKey> = self
            .rooms
            .get(&room)
            .map(|m| {
                m.iter()
                    .copied()
                    .filter(|k| *k != key && self.peers.get(k).is_some_and(|p| p.mirror.is_none()))
                    .collect()
            })
            .unwrap_or_default();
        let local = peer.mirror.is_none();
        for &sub in &subscribers {
            if let Some(s) = self.peers.get_mut(&sub) {
                s.tracks_out
                    .push(TrackOut::new(key, track_id, publisher.clone(), kind));
            }
        }
        let peer = self.peers.get_mut(&key).expect("checked above");
        let track = &mut peer.tracks_in[i];
        track.announced = true;
        track.subscribers.extend_from_slice(&subscribers);
        for sub in subscribers {
            self.want_offer(sub);
        }
        if local {
            self.relay_tracks_changed(&room);
        }
    }

    /// The source of `sub`'s copy of a track went away: its m-line is made inactive and kept
    /// for the next track of its kind (see `IdleLine`).
    pub(super) fn stop_track_out(&mut self, sub: PeerKey, source: PeerKey, track: TrackId) {
        let Some(peer) = self.peers.get_mut(&sub) else {
            return;
        };
        for out in peer.tracks_out.iter_mut() {
            if out.source == source && out.track == track {
                out.source_gone = true;
                if let OutState::Open(mid) = out.state {
                    out.state = OutState::ToIdle(mid);
                }
            }
        }
        peer.tracks_out
            .retain(|o| !(o.source_gone && o.state == OutState::ToOpen));
        self.want_offer(sub);
    }
}
