//! Per-participant state: the str0m `Rtc` plus what it publishes (`TrackIn`) and what it is
//! sent (`TrackOut`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::Rtc;
use str0m::change::SdpPendingOffer;
use str0m::format::PayloadParams;
use str0m::media::{Mid, Pt};
use str0m::rtp::{RtpWrite, Ssrc};
use tracing::debug;

use crate::layers::{Layer, Run, TsRewrite, ViewSize, Vp8Rewrite};
use crate::sdp::Numbering;
use crate::speaker::LevelWindow;
use crate::{MediaKind, PeerId, PublishPermission};

/// The SFU's own handle for a peer. Never reused, so a stale key simply finds nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct PeerKey(pub u64);

/// A map by [`PeerKey`]. Looked up per forwarded packet and subscriber, and keyed by the SFU's
/// own counter (nothing from outside), so hashed with FxHash rather than SipHash.
pub(crate) type PeerMap<V> = HashMap<PeerKey, V, rustc_hash::FxBuildHasher>;

/// Identifies a published track within the whole SFU. Never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct TrackId(pub u64);

/// Most remote addresses remembered per peer for demultiplexing (candidate pairs seen).
pub(crate) const MAX_ADDRS_PER_PEER: usize = 8;

/// Most RTP streams (simulcast layers) taken from one published track; browsers send 3.
pub(crate) const MAX_LAYERS: usize = 4;

/// Most video packets held for a subscriber that is connecting (see `Peer::held`): about a
/// keyframe and the frames after it. More (a slow connection) and the hold is given up, so
/// the first burst a subscriber gets stays small.
pub(crate) const MAX_HELD: usize = 64;

/// How long after its connection is up a subscriber gets the held video: the browser has its
/// SRTP keys once it has read our last DTLS flight, a moment after we sent it.
pub(crate) const HELD_FLUSH_DELAY: Duration = Duration::from_millis(20);

pub(crate) struct Peer {
    pub id: PeerId,
    pub rtc: Rtc,
    /// Our ICE ufrag for this peer: STUN requests carry it, so they demultiplex by it.
    pub ufrag: String,
    /// Remote addresses routed to this peer (keys of the SFU's address map).
    pub addrs: Vec<SocketAddr>,
    /// When str0m next wants `handle_input(Timeout)`.
    pub timeout: Instant,
    /// RTP packets written to str0m during the current batch and not sent yet (see
    /// `Sfu::begin_batch`): the peer is in the SFU's list of subscribers to send to at the
    /// batch's end.
    pub unsent: u16,
    pub dtls_up: bool,
    pub ice_up: bool,
    /// The last connectivity event reported was `Connected`.
    pub up_reported: bool,
    /// A `Disconnected` was reported and no `Connected` since.
    pub down_reported: bool,
    /// From the peer's creation until `flush_at`: video for it is kept in `held` rather
    /// than dropped while it connects (for the first time).
    pub holding: bool,
    /// Video for a subscriber that is connecting, from a keyframe on, written to str0m (by
    /// mid) at `flush_at`: the keyframe asked for when the browser answered arrives about
    /// when the connection is up, and is not lost by arriving first.
    pub held: Vec<(Mid, RtpWrite)>,
    /// When `held` is sent: `HELD_FLUSH_DELAY` after the connection is first up.
    pub flush_at: Option<Instant>,
    pub permission: PublishPermission,
    /// The SFU's offer waiting for the browser's answer. At most one at a time.
    pub pending_offer: Option<SdpPendingOffer>,
    /// The connection has an application m-line (a data channel), negotiated by either side.
    /// Its only use: the bundle keeps a line that is never stopped (Chrome refuses a
    /// description whose m-lines are all stopped, "no bundle group", and tears the transport
    /// down when the bundle's first line is stopped).
    pub app_line: bool,
    /// `pending_offer` adds the application m-line.
    pub app_line_offered: bool,
    /// The header extension ids and payload types negotiated so far (from the answers):
    /// str0m keeps them for the life of the `Rtc`, so later offers must too.
    pub numbering: Numbering,
    pub tracks_in: Vec<TrackIn>,
    pub tracks_out: Vec<TrackOut>,
    /// m-lines whose track ended, negotiated inactive: the next track of their kind offered
    /// to this peer takes one up again rather than adding a line (see `IdleLine`).
    pub idle_lines: Vec<IdleLine>,
    /// Main SSRC of incoming RTP -> the track and layer it belongs to (`None`: not
    /// forwarded). Cleared on every negotiation.
    pub ssrc_routes: Vec<(Ssrc, Option<(TrackId, usize)>)>,
    /// Whether the video sent to this peer fits its link (see `crate::downlink`).
    pub downlink: crate::downlink::Downlink,
    /// What str0m's statistics showed since the last quality decision.
    pub quality_window: crate::quality::QualityWindow,
    /// The quality last decided (and reported, when it changed).
    pub quality: crate::quality::NetworkQuality,
    /// Set on a publisher that lives on another SFU (a mirror, see `sfu/relay.rs`): its
    /// tracks' packets come in relayed, and its `rtc` is a placeholder that never connects.
    pub mirror: Option<Mirror>,
}

/// A publisher of another SFU, mirrored here for this SFU's subscribers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mirror {
    /// The SFU it publishes on.
    pub link: crate::LinkId,
    /// Its `PeerKey` there.
    pub origin: u64,
}

impl Peer {
    /// A new peer: nothing allowed, nothing published or received, holding video until it
    /// first connects.
    pub fn new(id: PeerId, rtc: Rtc, ufrag: String, now: Instant) -> Peer {
        Peer {
            id,
            rtc,
            ufrag,
            addrs: Vec::new(),
            timeout: now,
            unsent: 0,
            dtls_up: false,
            ice_up: false,
            up_reported: false,
            down_reported: false,
            holding: true,
            held: Vec::new(),
            flush_at: None,
            permission: PublishPermission::NONE,
            pending_offer: None,
            app_line: false,
            app_line_offered: false,
            numbering: Numbering::default(),
            tracks_in: Vec::new(),
            tracks_out: Vec::new(),
            idle_lines: Vec::new(),
            ssrc_routes: Vec::new(),
            downlink: Default::default(),
            quality_window: Default::default(),
            quality: Default::default(),
            mirror: None,
        }
    }

    pub fn connected(&self) -> bool {
        self.dtls_up && self.ice_up
    }

    pub fn track_in_index(&self, id: TrackId) -> Option<usize> {
        self.tracks_in.iter().position(|t| t.id == id)
    }

    /// Forget everything derived from negotiated SDP (payload types, SSRCs).
    pub fn forget_negotiated(&mut self) {
        self.ssrc_routes.clear();
        for t in &mut self.tracks_in {
            t.pt_params.clear();
        }
        for t in &mut self.tracks_out {
            t.pt_map.clear();
        }
    }

    /// Which of our published tracks, and which of its layers, an incoming RTP packet with
    /// this main SSRC belongs to. A layer is created for each new `rid` (or for the one
    /// stream of a track sent without simulcast).
    pub fn route(&mut self, ssrc: Ssrc, now: Instant) -> Option<(TrackId, usize)> {
        if let Some((_, route)) = self.ssrc_routes.iter().find(|(s, _)| *s == ssrc) {
            return *route;
        }
        let (mid, rid) = {
            let mut api = self.rtc.direct_api();
            let rx = api.stream_rx(&ssrc)?;
            (rx.mid(), rx.rid())
        };
        let route = self
            .tracks_in
            .iter_mut()
            .find(|t| t.mid == mid)
            .and_then(|t| {
                let layer = match t.layers.iter().position(|l| l.rid == rid) {
                    Some(i) => {
                        // A new SSRC brings a new sequence space: subscribers re-base and
                        // wait for a keyframe, as after a pause.
                        let l = &mut t.layers[i];
                        if l.ssrc != ssrc {
                            l.ssrc = ssrc;
                            l.epoch = l.epoch.wrapping_add(1);
                        }
                        i
                    }
                    None if t.layers.len() < MAX_LAYERS => {
                        debug!(room.id = %self.id.room, participant.id = %self.id.participant, rid = ?rid, layer = t.layers.len(), "simulcast layer heard");
                        t.layers.push(Layer::new(rid, ssrc, now));
                        t.layers.len() - 1
                    }
                    None => return None,
                };
                Some((t.id, layer))
            });
        if route.is_none() {
            debug!(room.id = %self.id.room, participant.id = %self.id.participant, ?mid, ?rid, "rtp of no published track");
        }
        self.ssrc_routes.push((ssrc, route));
        route
    }
}

/// A track this peer publishes (an m-line the browser sends on).
pub(crate) struct TrackIn {
    pub id: TrackId,
    pub mid: Mid,
    pub kind: MediaKind,
    /// Its RTP streams: one, or one per simulcast layer, in the order first heard.
    pub layers: Vec<Layer>,
    /// Subscribers have been given an m-line for it (it was allowed at least once).
    pub announced: bool,
    /// Bumped when forwarding resumes after a pause, so subscribers re-base sequence numbers.
    pub generation: u32,
    /// Peers with a `TrackOut` for this track.
    pub subscribers: Vec<PeerKey>,
    /// Payload type -> codec parameters on the publisher's side.
    pub pt_params: Vec<(Pt, PayloadParams)>,
    /// Speech in the current active-speaker window (audio tracks only).
    pub levels: LevelWindow,
    /// A mirror's track: the `TrackId` it has on the SFU it is published on.
    pub origin: Option<u64>,
}

impl TrackIn {
    pub fn new(id: TrackId, mid: Mid, kind: MediaKind) -> Self {
        TrackIn {
            id,
            mid,
            kind,
            layers: Vec::new(),
            announced: false,
            generation: 0,
            subscribers: Vec::new(),
            pt_params: Vec::new(),
            levels: LevelWindow::default(),
            origin: None,
        }
    }

    pub fn params_for(&mut self, rtc: &Rtc, pt: Pt) -> Option<PayloadParams> {
        if let Some((_, p)) = self.pt_params.iter().find(|(p, _)| *p == pt) {
            return Some(*p);
        }
        let params = *rtc.codec_config().params().iter().find(|p| p.pt() == pt)?;
        self.pt_params.push((pt, params));
        Some(params)
    }
}

/// Negotiation state of one send-only m-line towards a subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutState {
    /// To be offered in the next offer: on an idle line of its kind, or a new one.
    ToOpen,
    /// In an offer waiting for the answer (`TrackOut::reused`: on an idle line made sending
    /// again).
    Negotiating(Mid),
    /// Negotiated: media is forwarded.
    Open(Mid),
    /// To be made inactive in the next offer (the source went away), then kept idle.
    ToIdle(Mid),
    /// Made inactive in an offer waiting for the answer; idle (reusable) once answered.
    NegotiatingIdle(Mid),
}

/// An m-line towards a subscriber whose track ended, negotiated inactive and kept for the next
/// track of its kind (as SFUs reuse idle transceivers). An m-line can never leave a
/// description, and a stopped one stays in Chromium's at ~2.5 KB: stopping one per ended
/// track, a page's SDP passed the 64 KiB frame limit after some 20 stage handovers. Reused,
/// a subscriber has at most as many m-lines as tracks it received at once.
pub(crate) struct IdleLine {
    pub mid: Mid,
    pub kind: MediaKind,
    /// The publisher whose stream id (msid `p{n}`) the line carries: that of the track it was
    /// added for. str0m cannot change a line's msid, so it stays when the line is taken up by
    /// another publisher's track (see `Sfu::maybe_offer`).
    pub stream_source: PeerKey,
    /// Where its RTP numbering stopped: the line keeps its SSRC, so the next track on it goes
    /// on from there (sequence numbers, timestamps, VP8 picture ids), as after a layer switch.
    pub seq: SeqRewrite,
    pub ts: TsRewrite,
    pub vp8: Vp8Rewrite,
}

/// A publisher's track as sent to one subscriber.
pub(crate) struct TrackOut {
    pub source: PeerKey,
    pub track: TrackId,
    pub publisher: PeerId,
    pub kind: MediaKind,
    pub state: OutState,
    /// The source track is gone: make this m-line idle once it is negotiated.
    pub source_gone: bool,
    /// Whose stream id (msid) the m-line carries (see `IdleLine::stream_source`).
    pub stream_source: PeerKey,
    /// The m-line was idle and is taken up again (`Negotiating`): if that offer is dropped
    /// or fails, it goes back to `Peer::idle_lines`.
    pub reused: bool,
    pub seq: SeqRewrite,
    pub ts: TsRewrite,
    pub vp8: Vp8Rewrite,
    /// The run (layer, generation) being forwarded, from one of its keyframes on. Until a
    /// keyframe starts, video packets are held back: a decoder can do nothing with them.
    pub keyframe_gen: Option<Run>,
    /// The layer (index into the source track's layers) to forward; a switch to it happens
    /// at its next keyframe.
    pub target: usize,
    /// The run in `keyframe_gen` no longer fits the subscriber's link (see `crate::downlink`):
    /// none of its packets are sent; the target's next keyframe starts a new run.
    pub drop_run: bool,
    /// The tallest picture this video may be sent at while the subscriber's link is found
    /// congested (see `crate::downlink`); `None`: no limit.
    pub ceiling: Option<u16>,
    /// How big the subscriber shows this video (`media_view`), if it said.
    pub view: Option<ViewSize>,
    /// The subscriber does not show this video at all: nothing of it is forwarded.
    pub paused: bool,
    /// Publisher payload type -> our payload type for this subscriber (`None`: no match).
    pub pt_map: Vec<(Pt, Option<Pt>)>,
    /// RTP packets handed to str0m for this m-line.
    pub written: u64,
    /// At str0m's last statistics of the m-line: the packets it had sent (resends included),
    /// `written`, and how many of those written it had not sent yet (see
    /// `downlink::resends`). What it sent beyond what was written since is resends: the
    /// subscriber's loss (see `Sfu::note_downlink`).
    pub egress_seen: Option<(u64, u64, u64)>,
}

impl TrackOut {
    pub fn new(source: PeerKey, track: TrackId, publisher: PeerId, kind: MediaKind) -> Self {
        TrackOut {
            source,
            track,
            publisher,
            kind,
            state: OutState::ToOpen,
            source_gone: false,
            stream_source: source,
            reused: false,
            seq: SeqRewrite::default(),
            ts: TsRewrite::default(),
            vp8: Vp8Rewrite::default(),
            keyframe_gen: None,
            target: 0,
            drop_run: false,
            ceiling: None,
            view: None,
            paused: false,
            pt_map: Vec::new(),
            written: 0,
            egress_seen: None,
        }
    }

    /// Take up idle line `line`: its RTP numbering goes on, re-based so the first packet of
    /// this track follows the last one sent on the line.
    pub fn take_line(&mut self, line: IdleLine) {
        self.state = OutState::Negotiating(line.mid);
        self.reused = true;
        self.stream_source = line.stream_source;
        self.seq = line.seq;
        self.ts = line.ts;
        self.vp8 = line.vp8;
        self.seq.rebase();
        self.ts.rebase();
        self.vp8.rebase();
    }

    /// Its RTP numbering (sequence numbers, timestamps, VP8 picture ids) starts over, as on a
    /// fresh line: nothing numbered so far was sent.
    pub fn restart_numbering(&mut self) {
        self.seq = SeqRewrite::default();
        self.ts = TsRewrite::default();
        self.vp8 = Vp8Rewrite::default();
    }

    /// This output's m-line as an idle line (its track ended, or its reuse was not
    /// negotiated).
    pub fn idle_line(&self, mid: Mid) -> IdleLine {
        IdleLine {
            mid,
            kind: self.kind,
            stream_source: self.stream_source,
            seq: self.seq,
            ts: self.ts,
            vp8: self.vp8,
        }
    }

    pub fn map_pt(&mut self, rtc: &Rtc, pt: Pt, params: PayloadParams) -> Option<Pt> {
        if let Some((_, mapped)) = self.pt_map.iter().find(|(p, _)| *p == pt) {
            return *mapped;
        }
        let mapped = rtc.codec_config().match_params(params).map(|p| p.pt());
        self.pt_map.push((pt, mapped));
        mapped
    }
}

/// The first packet sent on a stream is numbered `seq_in & FIRST_SEQ_MASK`: below 32768, as
/// libwebrtc numbers its own streams. A receiver's SRTP rollover counter (ROC) is not signalled:
/// it starts at 0 and is guessed from the first packet the receiver decrypts (str0m takes the
/// sender's ROC from the extended number). Starting at 65,500, say, the ROC would turn 1 after
/// 36 packets: a subscriber that lost those (the first ones arrive while its browser may not
/// have its SRTP keys yet) would guess ROC 0 for a packet sent with ROC 1, fail to decrypt it
/// and every later one, and never see the video (issue 15, point 7). Below 32768, the first
/// 32,768 packets can all be lost without that.
pub(crate) const FIRST_SEQ_MASK: u64 = 0x7fff;

/// Rewrites a publisher's extended RTP sequence numbers for one subscriber.
///
/// A subscriber's first packet is numbered below 32768 (see [`FIRST_SEQ_MASK`]), and it must see
/// no gap when forwarding pauses and resumes (a gap would make it NACK packets that will never
/// come). So each (re)start maps the next packet to "last sent + 1" and shifts everything after
/// it by the same offset.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SeqRewrite {
    synced: Option<Synced>,
    max_out: u64,
}

#[derive(Debug, Clone, Copy)]
struct Synced {
    run: Run,
    /// Forwarding paused and resumes: the next packet starts a new mapping even in this run.
    stale: bool,
    /// First incoming sequence number of this run; older (reordered) packets are dropped.
    first_in: u64,
    offset: i64,
}

impl SeqRewrite {
    /// This subscriber's forwarding paused by itself (the run goes on for others): the next
    /// packet continues right after the last one sent, as when a run changes.
    pub fn rebase(&mut self) {
        if let Some(s) = &mut self.synced {
            s.stale = true;
        }
    }

    pub fn rewrite(&mut self, seq_in: u64, run: Run) -> Option<u64> {
        let synced = match self.synced {
            Some(s) if s.run == run && !s.stale => s,
            previous => {
                let next_out = match previous {
                    Some(_) => self.max_out + 1,
                    None => seq_in & FIRST_SEQ_MASK,
                };
                let s = Synced {
                    run,
                    stale: false,
                    first_in: seq_in,
                    offset: next_out as i64 - seq_in as i64,
                };
                self.synced = Some(s);
                s
            }
        };
        if seq_in < synced.first_in {
            return None;
        }
        let out = (seq_in as i64 + synced.offset) as u64;
        self.max_out = self.max_out.max(out);
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::SeqRewrite;
    use crate::layers::Run;

    fn run(generation: u32) -> Run {
        Run {
            generation,
            layer: 0,
            epoch: 0,
        }
    }

    #[test]
    fn first_packet_is_far_enough_from_a_wrap_that_losing_the_first_ones_keeps_roc_zero() {
        for seq_in in [65_535, 65_500, 32_768, 3 * 65536 + 40_000] {
            let mut r = SeqRewrite::default();
            let first = r.rewrite(seq_in, run(0)).expect("mapped");
            assert!(first < 32_768, "{seq_in} -> {first}");
            // The next 32,767 packets are all below the wrap (ROC 0).
            assert!(r.rewrite(seq_in + 32_767, run(0)).unwrap() < 65_536);
        }
    }

    #[test]
    fn first_packet_keeps_low_bits_so_rollover_counter_starts_at_zero() {
        let mut r = SeqRewrite::default();
        assert_eq!(r.rewrite(3 * 65536 + 100, run(0)), Some(100));
        assert_eq!(r.rewrite(3 * 65536 + 101, run(0)), Some(101));
        // Reordered within the run: passed through, still mapped.
        assert_eq!(r.rewrite(3 * 65536 + 103, run(0)), Some(103));
        assert_eq!(r.rewrite(3 * 65536 + 102, run(0)), Some(102));
        // Older than the start of the run: dropped.
        assert_eq!(r.rewrite(3 * 65536 + 99, run(0)), None);
    }

    #[test]
    fn resuming_after_a_pause_continues_without_a_gap() {
        let mut r = SeqRewrite::default();
        assert_eq!(r.rewrite(500, run(0)), Some(500));
        assert_eq!(r.rewrite(501, run(0)), Some(501));
        // Forwarding paused for 1000 packets, then resumed (generation bumped).
        assert_eq!(r.rewrite(1502, run(1)), Some(502));
        assert_eq!(r.rewrite(1503, run(1)), Some(503));
        // A straggler from before the pause is dropped.
        assert_eq!(r.rewrite(1400, run(1)), None);
    }

    #[test]
    fn a_rebase_continues_without_a_gap_in_the_same_run() {
        let mut r = SeqRewrite::default();
        assert_eq!(r.rewrite(500, run(0)), Some(500));
        r.rebase();
        // 300 packets were not sent to this subscriber.
        assert_eq!(r.rewrite(801, run(0)), Some(501));
        assert_eq!(r.rewrite(802, run(0)), Some(502));
    }

    #[test]
    fn wraps_into_the_next_rollover_counter() {
        let mut r = SeqRewrite::default();
        assert_eq!(r.rewrite(32_767, run(0)), Some(32_767));
        assert_eq!(r.rewrite(65_535, run(0)), Some(65_535));
        assert_eq!(r.rewrite(65_536, run(0)), Some(65_536));
    }
}
