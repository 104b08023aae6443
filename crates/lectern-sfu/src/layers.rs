//! Simulcast: the RTP streams (layers) of one published video track, what each looks like
//! (bit rate, picture size) and which one a subscriber is sent.
//!
//! A browser publishing simulcast sends the same camera as several RTP streams, each with its
//! own SSRC and `rid` (e.g. 320x180 and 640x360). The SFU forwards one of them to each
//! subscriber: the smallest whose picture is at least as tall as the subscriber shows it
//! (a thumbnail gets a thumbnail), and no more than the subscriber's link lets through when it
//! was found congested (`crate::downlink`). Switching happens on a keyframe of the new layer, with sequence numbers and
//! timestamps rewritten so the subscriber sees one continuous stream.

use std::time::{Duration, Instant};

use str0m::media::{KeyframeRequestKind, Rid};
use str0m::rtp::{Ssrc, Vp8Descriptor, Vp8Patch};

/// A layer that sent nothing for this long is not chosen (the browser paused it, e.g. for
/// lack of CPU or uplink bandwidth), unless it usually is silent for longer (see
/// [`Layer::active`]).
pub(crate) const LAYER_IDLE: Duration = Duration::from_secs(1);
/// The longest silence after which a layer still counts as sending, however slowly it sends.
const LAYER_IDLE_MAX: Duration = Duration::from_secs(3);

/// How often the SFU reconsiders which layer each subscriber gets.
pub(crate) const LAYER_CHECK_INTERVAL: Duration = Duration::from_millis(250);

/// The bit-rate window of a [`RateMeter`].
const RATE_WINDOW: Duration = Duration::from_millis(500);

/// Incoming bit rate over the last complete window.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RateMeter {
    window_start: Instant,
    bytes: u64,
    /// Bits per second of the last complete window (0 until one completes).
    pub bps: u64,
}

impl RateMeter {
    pub fn new(now: Instant) -> Self {
        RateMeter {
            window_start: now,
            bytes: 0,
            bps: 0,
        }
    }

    pub fn add(&mut self, now: Instant, bytes: usize) {
        let elapsed = now.saturating_duration_since(self.window_start);
        if elapsed >= RATE_WINDOW {
            self.bps = self.bytes * 8 * 1_000_000 / elapsed.as_micros().max(1) as u64;
            self.window_start = now;
            self.bytes = 0;
        }
        self.bytes += bytes as u64;
    }
}

/// One RTP stream of a published track.
#[derive(Debug, Clone)]
pub(crate) struct Layer {
    pub rid: Option<Rid>,
    /// Main SSRC (not the RTX one).
    pub ssrc: Ssrc,
    /// Bumped when the layer's SSRC changes (a new sequence space).
    pub epoch: u32,
    /// Picture size from the last keyframe (VP8), 0 until one is seen.
    pub width: u16,
    pub height: u16,
    pub rate: RateMeter,
    pub last_packet: Instant,
    /// The longest silence between its packets lately (a frame interval, more when its
    /// encoder falls behind): rises at once, falls by 1/16 of the difference a packet.
    usual_gap: Duration,
    pub last_keyframe_request: Option<Instant>,
    /// A coalesced keyframe request waiting for the interval to pass.
    pub keyframe_due: Option<(Instant, KeyframeRequestKind)>,
    /// Packets of it were shed (see `shed.rs`): the next packet sent on re-bases the
    /// subscribers' numbering, and (video) nothing more of it goes to them until a keyframe.
    pub shed: bool,
}

impl Layer {
    pub fn new(rid: Option<Rid>, ssrc: Ssrc, now: Instant) -> Self {
        Layer {
            rid,
            ssrc,
            epoch: 0,
            width: 0,
            height: 0,
            rate: RateMeter::new(now),
            last_packet: now,
            usual_gap: Duration::ZERO,
            last_keyframe_request: None,
            keyframe_due: None,
            shed: false,
        }
    }

    /// A packet of `bytes` arrived on the layer.
    pub fn heard(&mut self, now: Instant, bytes: usize) {
        self.rate.add(now, bytes);
        let gap = now.saturating_duration_since(self.last_packet);
        self.usual_gap = if gap >= self.usual_gap {
            gap
        } else {
            self.usual_gap - (self.usual_gap - gap) / 16
        };
        self.last_packet = now;
    }

    /// Whether the layer is sending: heard from within [`LAYER_IDLE`], or within three of its
    /// usual silences when it sends more slowly than that (up to [`LAYER_IDLE_MAX`]). A browser
    /// short of CPU sends a frame a second or less on its large layer: without this, that layer
    /// would count as paused and back again every few seconds, and each subscriber would be
    /// switched down and up with it, a keyframe asked for at every switch.
    pub fn active(&self, now: Instant) -> bool {
        let idle = (self.usual_gap * 3).clamp(LAYER_IDLE, LAYER_IDLE_MAX);
        now.saturating_duration_since(self.last_packet) < idle
    }
}

/// Identifies one continuous run of packets a subscriber may be sent: a layer, in one of its
/// sequence spaces, between two pauses of forwarding. Any change means "re-base sequence
/// numbers and timestamps, and start at a keyframe".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Run {
    /// The track's generation (bumped when forwarding resumes after a pause).
    pub generation: u32,
    pub layer: u8,
    pub epoch: u32,
}

/// What a subscriber asked for: the size it shows a video at, in device pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ViewSize {
    pub width: u32,
    pub height: u32,
}

/// The layer to send a subscriber, as an index into `layers`.
///
/// `view`: how big the subscriber shows the video (`None`: not said, so the best there is;
/// 0x0: not shown, so the smallest). `ceiling`: the tallest picture the subscriber's link
/// takes, once found congested (`None`: no limit; see `crate::downlink`); the smallest layer
/// if none is that small. Only layers heard from recently are candidates (all of them if none
/// is).
pub(crate) fn choose(
    layers: &[Layer],
    now: Instant,
    view: Option<ViewSize>,
    ceiling: Option<u16>,
) -> usize {
    if layers.len() <= 1 {
        return 0;
    }
    // Under a ceiling, only the layers under it (any of them if none is sending: the
    // subscriber's link takes nothing larger); if none is that small, the smallest.
    let under = |i: &usize| ceiling.is_none_or(|max| layers[*i].height <= max);
    let mut candidates: Vec<usize> = (0..layers.len()).filter(under).collect();
    let smallest_only = candidates.is_empty();
    if smallest_only {
        candidates = (0..layers.len()).collect();
    }
    let mut order: Vec<usize> = candidates
        .iter()
        .copied()
        .filter(|&i| layers[i].active(now))
        .collect();
    if order.is_empty() {
        order = candidates;
    }
    // Smallest first: by picture height, then by bit rate (sizes are unknown until a
    // keyframe of the layer passed through).
    order.sort_by_key(|&i| (layers[i].height, layers[i].rate.bps));
    let by_size = match view {
        _ if smallest_only => 0,
        None => order.len() - 1,
        Some(v) if v.width == 0 || v.height == 0 => 0,
        Some(v) => order
            .iter()
            .position(|&i| {
                let l = &layers[i];
                l.height != 0 && u32::from(l.height) >= v.height && u32::from(l.width) >= v.width
            })
            .unwrap_or(order.len() - 1),
    };
    order[by_size]
}

/// The picture size in an RTP VP8 payload that starts a keyframe (the payload descriptor of
/// RFC 7741, then the keyframe header of RFC 6386 section 9.1).
pub(crate) fn vp8_keyframe_size(payload: &[u8]) -> Option<(u16, u16)> {
    let first = *payload.first()?;
    let mut len = 1;
    if first & 0x80 != 0 {
        let ext = *payload.get(1)?;
        len += 1;
        if ext & 0x80 != 0 {
            len += if payload.get(len)? & 0x80 != 0 { 2 } else { 1 };
        }
        if ext & 0x40 != 0 {
            len += 1;
        }
        if ext & 0x30 != 0 {
            len += 1;
        }
    }
    let frame = payload.get(len..)?;
    if frame.len() < 10 || frame[0] & 1 != 0 || frame[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let width = u16::from_le_bytes([frame[6], frame[7]]) & 0x3fff;
    let height = u16::from_le_bytes([frame[8], frame[9]]) & 0x3fff;
    Some((width, height))
}

/// Rewrites a publisher's RTP timestamps for one subscriber so they keep increasing with
/// real time across layer switches (each layer has its own random timestamp base).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct TsRewrite {
    state: Option<TsState>,
}

#[derive(Debug, Clone, Copy)]
struct TsState {
    run: Run,
    /// The next packet starts a new mapping even in this run (see `rebase`).
    stale: bool,
    offset: u32,
    last_out: u32,
    last_at: Instant,
}

impl TsRewrite {
    /// The timestamp to send for `ts_in` (a packet of `run` that arrived at `now`; `clock_rate`
    /// in Hz). The first run keeps the publisher's timestamps.
    pub fn rewrite(&mut self, ts_in: u32, run: Run, now: Instant, clock_rate: u32) -> u32 {
        let offset = match self.state {
            Some(s) if s.run == run && !s.stale => s.offset,
            Some(s) => {
                let elapsed = now.saturating_duration_since(s.last_at);
                let ticks = (elapsed.as_micros() as u64 * u64::from(clock_rate) / 1_000_000)
                    .clamp(1, u64::from(u32::MAX / 2)) as u32;
                s.last_out.wrapping_add(ticks).wrapping_sub(ts_in)
            }
            None => 0,
        };
        let out = ts_in.wrapping_add(offset);
        let newer = match self.state {
            Some(s) if s.run == run && !s.stale => (out.wrapping_sub(s.last_out) as i32) > 0,
            _ => true,
        };
        if newer {
            self.state = Some(TsState {
                run,
                stale: false,
                offset,
                last_out: out,
                last_at: now,
            });
        }
        out
    }

    /// Another track's packets follow on this stream (an idle m-line taken up again), whose
    /// runs may compare equal to the last one's: the next packet continues from the last one
    /// sent, as when the run changes.
    pub fn rebase(&mut self) {
        if let Some(s) = &mut self.state {
            s.stale = true;
        }
    }
}

/// Rewrites VP8 picture ids (and TL0PICIDX) for one subscriber so they continue across layer
/// switches: each layer numbers its pictures on its own, and a decoder that sees the numbers
/// jump may take the new pictures for old ones. Costs nothing until the first switch: the
/// first run is sent as it is, and later ones through a patch str0m applies while it
/// serializes the packet (the shared payload is not copied).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Vp8Rewrite {
    state: Option<Vp8State>,
}

#[derive(Debug, Clone, Copy)]
struct Vp8State {
    run: Run,
    /// The next packet starts a new mapping even in this run (see `rebase`).
    stale: bool,
    picture_offset: u16,
    tl0_offset: u8,
    last_picture: u16,
    last_tl0: u8,
}

const PICTURE_ID_MASK: u16 = 0x7fff;

impl Vp8Rewrite {
    /// As `TsRewrite::rebase`.
    pub fn rebase(&mut self) {
        if let Some(s) = &mut self.state {
            s.stale = true;
        }
    }

    pub fn patch(&mut self, d: &Vp8Descriptor, run: Run) -> Option<Vp8Patch> {
        let picture = d.picture_id()?;
        let tl0 = d.tl0_pic_idx();
        let (picture_offset, tl0_offset) = match self.state {
            Some(s) if s.run == run && !s.stale => (s.picture_offset, s.tl0_offset),
            Some(s) => (
                s.last_picture.wrapping_add(1).wrapping_sub(picture) & PICTURE_ID_MASK,
                tl0.map_or(0, |t| s.last_tl0.wrapping_add(1).wrapping_sub(t)),
            ),
            None => (0, 0),
        };
        let picture_out = picture.wrapping_add(picture_offset) & PICTURE_ID_MASK;
        let tl0_out = tl0.map(|t| t.wrapping_add(tl0_offset));
        let newer = match self.state {
            Some(s) if s.run == run && !s.stale => {
                let ahead = picture_out.wrapping_sub(s.last_picture) & PICTURE_ID_MASK;
                ahead != 0 && ahead < PICTURE_ID_MASK / 2
            }
            _ => true,
        };
        if newer {
            let last_tl0 = match (tl0_out, self.state) {
                (Some(t), _) => t,
                (None, Some(s)) => s.last_tl0,
                (None, None) => 0,
            };
            self.state = Some(Vp8State {
                run,
                stale: false,
                picture_offset,
                tl0_offset,
                last_picture: picture_out,
                last_tl0,
            });
        }
        if picture_offset == 0 && tl0_offset == 0 {
            return None;
        }
        let mut patch = d.patch().picture_id(picture_out);
        if let Some(t) = tl0_out {
            patch = patch.tl0_pic_idx(t);
        }
        patch.build().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(now: Instant, ssrc: u32, height: u16, bps: u64) -> Layer {
        let mut l = Layer::new(None, ssrc.into(), now);
        l.width = height * 16 / 9;
        l.height = height;
        l.rate.bps = bps;
        l
    }

    fn view(width: u32, height: u32) -> Option<ViewSize> {
        Some(ViewSize { width, height })
    }

    #[test]
    fn a_small_view_gets_the_smallest_layer_that_fills_it() {
        let now = Instant::now();
        // Listed in no particular order, as browsers do.
        let layers = [
            layer(now, 1, 720, 1_500_000),
            layer(now, 2, 180, 150_000),
            layer(now, 3, 360, 500_000),
        ];
        assert_eq!(choose(&layers, now, None, None), 0);
        assert_eq!(choose(&layers, now, view(320, 180), None), 1);
        assert_eq!(choose(&layers, now, view(400, 200), None), 2);
        assert_eq!(choose(&layers, now, view(1920, 1080), None), 0);
        // Not shown at all: the smallest.
        assert_eq!(choose(&layers, now, view(0, 0), None), 1);
    }

    #[test]
    fn a_congested_link_caps_the_picture_height() {
        let now = Instant::now();
        let layers = [
            layer(now, 1, 180, 150_000),
            layer(now, 2, 360, 500_000),
            layer(now, 3, 720, 1_500_000),
        ];
        assert_eq!(choose(&layers, now, None, Some(720)), 2);
        assert_eq!(choose(&layers, now, None, Some(719)), 1);
        assert_eq!(choose(&layers, now, None, Some(180)), 0);
        // Lower than even the smallest: the smallest anyway.
        assert_eq!(choose(&layers, now, None, Some(0)), 0);
        // The view's choice is not exceeded because the link allows more.
        assert_eq!(choose(&layers, now, view(320, 180), Some(720)), 0);
        // Under the ceiling even when the layers under it are silent.
        let later = now + Duration::from_secs(5);
        let mut layers = layers;
        layers[2].last_packet = later;
        assert_eq!(choose(&layers, later, None, None), 2);
        assert_eq!(choose(&layers, later, None, Some(360)), 1);
    }

    #[test]
    fn a_layer_that_sends_slowly_is_not_taken_for_paused() {
        let start = Instant::now();
        let mut l = layer(start, 1, 360, 500_000);
        // A frame (three packets) every 900 ms: a browser short of CPU.
        let mut now = start;
        for _ in 0..5 {
            now += Duration::from_millis(900);
            for _ in 0..3 {
                l.heard(now, 1000);
            }
        }
        assert!(l.active(now + Duration::from_millis(2000)));
        assert!(!l.active(now + LAYER_IDLE_MAX));
        // At 15 frames a second, a second of silence is a pause.
        let mut l = layer(start, 1, 360, 500_000);
        let mut now = start;
        for _ in 0..30 {
            now += Duration::from_millis(66);
            l.heard(now, 1000);
        }
        assert!(l.active(now + Duration::from_millis(900)));
        assert!(!l.active(now + LAYER_IDLE));
    }

    #[test]
    fn a_layer_the_browser_stopped_sending_is_not_chosen() {
        let start = Instant::now();
        let now = start + Duration::from_secs(5);
        let mut layers = [layer(start, 1, 180, 150_000), layer(start, 2, 360, 500_000)];
        layers[0].last_packet = now;
        assert_eq!(choose(&layers, now, None, None), 0);
        layers[1].last_packet = now;
        assert_eq!(choose(&layers, now, None, None), 1);
    }

    #[test]
    fn reads_the_picture_size_of_a_vp8_keyframe() {
        // Descriptor (1 byte), frame tag (keyframe), start code, 640x360.
        let mut p = vec![0x10, 0x50, 0x2d, 0x01, 0x9d, 0x01, 0x2a];
        p.extend_from_slice(&640u16.to_le_bytes());
        p.extend_from_slice(&360u16.to_le_bytes());
        assert_eq!(vp8_keyframe_size(&p), Some((640, 360)));
        // With an extended descriptor (15-bit picture id, TL0PICIDX, TID): 5 bytes.
        let mut q = vec![0x90, 0xe0, 0x80, 0x01, 0x05, 0x20];
        q.extend_from_slice(&p[1..]);
        assert_eq!(vp8_keyframe_size(&q), Some((640, 360)));
        // A delta frame (P bit set) has no size.
        p[1] |= 1;
        assert_eq!(vp8_keyframe_size(&p), None);
        assert_eq!(vp8_keyframe_size(&p[..5]), None);
    }

    /// A VP8 payload with a 15-bit picture id and a TL0PICIDX.
    fn vp8(picture: u16, tl0: u8) -> Vec<u8> {
        let [hi, lo] = (picture | 0x8000).to_be_bytes();
        vec![0x90, 0xe0, hi, lo, tl0, 0x20, 0x01, 0x00, 0x00]
    }

    #[test]
    fn picture_ids_continue_across_a_layer_switch() {
        let low = Run {
            generation: 0,
            layer: 0,
            epoch: 0,
        };
        let high = Run { layer: 1, ..low };
        let mut r = Vp8Rewrite::default();
        let parse = |p: &[u8]| Vp8Descriptor::parse(p).unwrap();
        // The first run is sent untouched.
        assert!(r.patch(&parse(&vp8(100, 7)), low).is_none());
        assert!(r.patch(&parse(&vp8(101, 8)), low).is_none());
        // The other layer numbers from 30000: rewritten to follow 101 and 8.
        let p = r.patch(&parse(&vp8(30_000, 200)), high).expect("patched");
        let expected = Vp8Descriptor::parse(&vp8(102, 9))
            .unwrap()
            .patch()
            .picture_id(102)
            .tl0_pic_idx(9)
            .build()
            .unwrap();
        assert_eq!(p, expected);
        let p = r.patch(&parse(&vp8(30_001, 201)), high).expect("patched");
        let expected = Vp8Descriptor::parse(&vp8(103, 10))
            .unwrap()
            .patch()
            .picture_id(103)
            .tl0_pic_idx(10)
            .build()
            .unwrap();
        assert_eq!(p, expected);
    }

    #[test]
    fn timestamps_continue_across_a_layer_switch() {
        let t0 = Instant::now();
        let low = Run {
            generation: 0,
            layer: 0,
            epoch: 0,
        };
        let high = Run { layer: 1, ..low };
        let mut ts = TsRewrite::default();
        assert_eq!(ts.rewrite(1000, low, t0, 90_000), 1000);
        assert_eq!(
            ts.rewrite(4000, low, t0 + Duration::from_millis(33), 90_000),
            4000
        );
        // The other layer has another base; 10 ms later it continues from 4000 + 900.
        let t1 = t0 + Duration::from_millis(43);
        assert_eq!(ts.rewrite(7_000_000, high, t1, 90_000), 4900);
        assert_eq!(
            ts.rewrite(7_003_000, high, t1 + Duration::from_millis(33), 90_000),
            7900
        );
        // A late packet of the same run keeps its offset and does not move "last".
        assert_eq!(ts.rewrite(7_000_000, high, t1, 90_000), 4900);
    }

    /// An idle m-line taken up by another track: its first run may equal the last one's
    /// (generation, layer and epoch all 0), yet its numbers go on from the last ones sent.
    #[test]
    fn after_a_rebase_an_equal_run_continues_from_the_last_timestamp_and_picture_id() {
        let t0 = Instant::now();
        let run = Run {
            generation: 0,
            layer: 0,
            epoch: 0,
        };
        let mut ts = TsRewrite::default();
        assert_eq!(ts.rewrite(1000, run, t0, 90_000), 1000);
        ts.rebase();
        // The next track's base is 500_000; 1 s later: 1000 + 90_000.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(ts.rewrite(500_000, run, t1, 90_000), 91_000);
        assert_eq!(ts.rewrite(503_000, run, t1, 90_000), 94_000);

        let mut r = Vp8Rewrite::default();
        let parse = |p: &[u8]| Vp8Descriptor::parse(p).unwrap();
        assert!(r.patch(&parse(&vp8(100, 7)), run).is_none());
        r.rebase();
        let p = r.patch(&parse(&vp8(5000, 40)), run).expect("patched");
        let expected = Vp8Descriptor::parse(&vp8(101, 8))
            .unwrap()
            .patch()
            .picture_id(101)
            .tl0_pic_idx(8)
            .build()
            .unwrap();
        assert_eq!(p, expected);
    }
}
