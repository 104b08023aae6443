//! Stale media shed between ingest and delivery, and the keyframe that ends a gap (see the
//! crate's `shed.rs` for the policy and why).

use std::net::SocketAddr;
use std::time::Instant;

use str0m::media::KeyframeRequestKind;
use tracing::debug;

use super::Sfu;
use super::ingest::Ingested;
use crate::MediaKind;

impl Sfu {
    /// [`Sfu::handle_receive`] for a datagram that waited in the socket longer than
    /// `shed::STALE_AFTER`: str0m takes it in as usual (STUN, DTLS and RTCP are handled as
    /// usual, and an RTP packet is decrypted, registered as received, so it is never NACKed,
    /// and recorded), but a publisher's RTP packet from it is neither delivered nor relayed
    /// (counted in [`SfuStats::rtp_shed`](crate::SfuStats::rtp_shed)), and its video layer is
    /// sent on only from its next keyframe.
    pub fn handle_stale_receive(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
    ) -> bool {
        self.shedding = true;
        let handled = self.handle_receive(now, source, destination, contents);
        self.shedding = false;
        handled
    }

    /// Whether `packet` goes on to subscribers (and linked SFUs). A `stale` one does not. The
    /// first one sent on after a layer lost packets so is marked [`Ingested::resumes`] (the
    /// subscribers' numbering goes on without a gap, so they NACK nothing); for video that is
    /// its next keyframe, asked for at the first fresh packet of it (the worker has caught up),
    /// as often as the keyframe interval allows until one comes.
    pub(super) fn passes_shed(&mut self, now: Instant, packet: &mut Ingested, stale: bool) -> bool {
        let Some(layer) = self.peers.get_mut(&packet.source).and_then(|p| {
            let i = p.track_in_index(packet.track)?;
            p.tracks_in[i].layers.get_mut(packet.layer)
        }) else {
            return !stale;
        };
        if stale {
            self.stats.rtp_shed += 1;
            if !layer.shed {
                layer.shed = true;
                debug!(layer = packet.layer, kind = ?packet.kind, "media shed: sent on again from the next fresh packet (video: keyframe)");
            }
            return false;
        }
        if !layer.shed {
            return true;
        }
        match (packet.kind, packet.keyframe_start) {
            (MediaKind::Video, Some(false)) => {
                self.stats.rtp_awaiting_keyframe += 1;
                self.keyframe_wanted(now, packet.source, packet.track, packet.layer);
                return false;
            }
            // A codec not inspected for keyframes: send on, and ask for one.
            (MediaKind::Video, None) => {
                layer.shed = false;
                self.request_keyframe(
                    now,
                    packet.source,
                    packet.track,
                    Some(packet.layer),
                    KeyframeRequestKind::Pli,
                );
            }
            _ => layer.shed = false,
        }
        debug!(layer = packet.layer, kind = ?packet.kind, "media sent on again after shedding");
        packet.resumes = true;
        true
    }
}
