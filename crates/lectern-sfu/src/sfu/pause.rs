//! A subscriber pauses a video it does not show at all (a gallery tile on another page): no
//! packet of it is forwarded to that subscriber until it resumes, which starts again at a
//! keyframe of the layer its view size asks for (requested at once), with sequence numbers
//! that continue without a gap.

use std::time::Instant;

use super::Sfu;
use crate::peer::{OutState, PeerKey};
use crate::{PeerId, SfuError};

impl Sfu {
    /// How big `peer` shows the video on `mid` and whether it is paused: see
    /// [`Sfu::set_view_size`] for the size. `paused`: nothing of this video is forwarded to
    /// this peer until a later call with `paused` false, which resumes it at a keyframe of the
    /// layer `width` x `height` asks for. Audio m-lines are never paused.
    pub fn set_view(
        &mut self,
        now: Instant,
        peer_id: &PeerId,
        mid: &str,
        width: u32,
        height: u32,
        paused: bool,
    ) -> Result<(), SfuError> {
        let key = self.key(peer_id)?;
        let Some(n) = self.out_index(key, mid)? else {
            // A video being stopped or stopped already: as in `set_view_size`, no error.
            return Ok(());
        };
        if paused {
            self.set_out_paused(now, key, n, true);
            self.set_view_size(now, peer_id, mid, width, height)
        } else {
            // The size first (no keyframe is asked for while paused), then the resume asks for
            // the keyframe of the layer that size chose.
            self.set_view_size(now, peer_id, mid, width, height)?;
            self.set_out_paused(now, key, n, false);
            self.finish(now);
            Ok(())
        }
    }

    /// The output on `mid`; `None` for a mid of this peer connection that is stopped (or being
    /// stopped): the browser measured it before it learned so.
    fn out_index(&self, key: PeerKey, mid: &str) -> Result<Option<usize>, SfuError> {
        let peer = self.peers.get(&key).expect("indexed peer exists");
        let n = peer.tracks_out.iter().position(|o| match o.state {
            OutState::Open(m) | OutState::Negotiating(m) => *m == *mid,
            _ => false,
        });
        let known = || {
            peer.rtc
                .media(str0m::media::Mid::from(mid))
                .is_some_and(|m| *m.mid() == *mid)
        };
        match n {
            Some(n) => Ok(Some(n)),
            None if known() => Ok(None),
            None => Err(SfuError::UnknownMid(mid.to_string())),
        }
    }

    fn set_out_paused(&mut self, now: Instant, key: PeerKey, n: usize, paused: bool) {
        let Some(out) = self
            .peers
            .get_mut(&key)
            .and_then(|p| p.tracks_out.get_mut(n))
        else {
            return;
        };
        if out.kind != crate::MediaKind::Video || out.paused == paused {
            return;
        }
        out.paused = paused;
        if paused {
            return;
        }
        // Resume: from a keyframe, re-based so the subscriber sees no gap to NACK.
        out.keyframe_gen = None;
        out.seq.rebase();
        if matches!(out.state, OutState::Open(_)) {
            self.retarget(now, key, n, true);
        }
    }
}
