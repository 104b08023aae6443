//! Each room's active speaker, decided every `SPEAKER_INTERVAL` from the levels taken in with
//! its audio (the rules are in `crate::speaker`).

use crate::peer::PeerKey;
use crate::speaker::{self, LevelWindow};
use crate::{MediaEvent, MediaKind, RoomId};

use super::Sfu;

impl Sfu {
    /// Every room's speaker for the window that just ended; reset the windows.
    pub(super) fn decide_speakers(&mut self) {
        let mut candidates = Vec::new();
        for (room, keys) in &self.rooms {
            candidates.clear();
            for key in keys {
                let Some(peer) = self.peers.get_mut(key) else {
                    continue;
                };
                let allowed = peer.permission.allows(MediaKind::Audio);
                let mut window = LevelWindow::default();
                let mut publishes_audio = false;
                for track in &mut peer.tracks_in {
                    let levels = std::mem::take(&mut track.levels);
                    if track.kind == MediaKind::Audio && allowed {
                        publishes_audio = true;
                        window.speech_packets += levels.speech_packets;
                        window.loudness += levels.loudness;
                    }
                }
                if publishes_audio {
                    candidates.push((*key, window));
                }
            }
            let current = self.speakers.get(room).copied();
            let new = match speaker::decide(current, &candidates) {
                Some(new) => Some(new),
                // Keep the current speaker through silence, unless they no longer publish
                // audio that may be heard.
                None if current.is_some_and(|c| !candidates.iter().any(|(k, _)| *k == c)) => None,
                None => continue,
            };
            match new {
                Some(key) => self.speakers.insert(room.clone(), key),
                None => self.speakers.remove(room),
            };
            let participant = new
                .and_then(|k| self.peers.get(&k))
                .map(|p| p.id.participant.clone());
            self.stats.speaker_changes += 1;
            self.events.push_back(MediaEvent::ActiveSpeaker {
                room: room.clone(),
                participant,
            });
        }
    }

    /// A peer that may no longer be heard (gone, microphone stopped, muted) stops being its
    /// room's speaker at once.
    pub(super) fn clear_speaker(&mut self, room: &RoomId, key: PeerKey) {
        if self.speakers.get(room) == Some(&key) {
            self.speakers.remove(room);
            self.stats.speaker_changes += 1;
            self.events.push_back(MediaEvent::ActiveSpeaker {
                room: room.clone(),
                participant: None,
            });
        }
    }
}
