//! Keyframe requests to publishers (PLI/FIR): at most one per layer and interval, the rest
//! coalesced into one sent when the interval ends.

use std::time::Instant;

use str0m::media::KeyframeRequestKind;
use tracing::trace;

use super::Sfu;
use super::outbox::Outbox;
use crate::peer::{Peer, PeerKey, TrackId};
use crate::{MediaKind, SfuStats};

impl Sfu {
    /// Ask a publisher for a keyframe on one track (on one of its simulcast layers, or on all
    /// of them), at most once per layer and interval.
    pub(super) fn request_keyframe(
        &mut self,
        now: Instant,
        key: PeerKey,
        track: TrackId,
        layer: Option<usize>,
        kind: KeyframeRequestKind,
    ) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let Some(i) = peer.track_in_index(track) else {
            return;
        };
        let t = &peer.tracks_in[i];
        if t.kind != MediaKind::Video || !peer.permission.allows(MediaKind::Video) {
            return;
        }
        let wanted = match layer {
            Some(l) if l < t.layers.len() => l..l + 1,
            Some(_) => return,
            None => 0..t.layers.len(),
        };
        let mut sent = false;
        for l in wanted {
            let layer = &mut peer.tracks_in[i].layers[l];
            if let Some(last) = layer.last_keyframe_request {
                let next = last + self.keyframe_interval;
                if now < next {
                    self.stats.keyframe_requests_coalesced += 1;
                    let kind = match layer.keyframe_due {
                        Some((_, KeyframeRequestKind::Fir)) => KeyframeRequestKind::Fir,
                        _ => kind,
                    };
                    layer.keyframe_due = Some((next, kind));
                    continue;
                }
            }
            if send_keyframe_request(peer, i, l, kind, now, &mut self.outbox) {
                self.stats.keyframe_requests_sent += 1;
                sent = true;
            }
        }
        if sent {
            self.outbox.settle(key, peer, now);
        }
    }
}

impl Sfu {
    /// A subscriber waits for a keyframe of `layer`: ask for one (PLI) unless a request is
    /// already waiting for the interval to end. Cheap enough to call for every packet.
    pub(super) fn keyframe_wanted(
        &mut self,
        now: Instant,
        key: PeerKey,
        track: TrackId,
        layer: usize,
    ) {
        let due = self
            .peers
            .get(&key)
            .and_then(|p| p.track_in_index(track).map(|i| &p.tracks_in[i]))
            .and_then(|t| t.layers.get(layer))
            .is_none_or(|l| l.keyframe_due.is_some());
        if !due {
            self.request_keyframe(now, key, track, Some(layer), KeyframeRequestKind::Pli);
        }
    }
}

/// Ask str0m to send PLI/FIR for layer `l` of track `i` of `peer`. False if the publisher
/// has not sent anything on it yet (its first frame is a keyframe anyway).
fn send_keyframe_request(
    peer: &mut Peer,
    i: usize,
    l: usize,
    kind: KeyframeRequestKind,
    now: Instant,
    outbox: &mut Outbox,
) -> bool {
    let mirror = peer.mirror;
    let track = &mut peer.tracks_in[i];
    if let Some(mirror) = mirror {
        if l >= track.layers.len() {
            return false;
        }
        Sfu::relay_keyframe_request(outbox, mirror, track, l, kind);
        track.layers[l].last_keyframe_request = Some(now);
        return true;
    }
    let mid = track.mid;
    let Some(layer) = track.layers.get_mut(l) else {
        return false;
    };
    let mut api = peer.rtc.direct_api();
    let Some(rx) = api.stream_rx_by_mid(mid, layer.rid) else {
        return false;
    };
    rx.request_keyframe(kind);
    layer.last_keyframe_request = Some(now);
    trace!(room.id = %peer.id.room, participant.id = %peer.id.participant, ?kind, layer = l, "keyframe request");
    true
}

/// Send `peer`'s coalesced keyframe requests whose interval has ended.
pub(super) fn send_due_keyframe_requests(
    now: Instant,
    key: PeerKey,
    peer: &mut Peer,
    outbox: &mut Outbox,
    stats: &mut SfuStats,
) {
    for i in 0..peer.tracks_in.len() {
        for l in 0..peer.tracks_in[i].layers.len() {
            match peer.tracks_in[i].layers[l].keyframe_due {
                Some((due, kind)) if due <= now => {
                    peer.tracks_in[i].layers[l].keyframe_due = None;
                    if send_keyframe_request(peer, i, l, kind, now, outbox) {
                        stats.keyframe_requests_sent += 1;
                    }
                    outbox.drain(key, peer);
                }
                _ => {}
            }
        }
    }
}
