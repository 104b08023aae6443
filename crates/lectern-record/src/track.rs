//! The sans-IO track recorder: one published track's RTP packets in, media frames out.
//!
//! One [`TrackRecorder`] per recorded track, fed once per received packet (after decryption,
//! before any forwarding decision), on the media worker's thread. It does no I/O and never
//! reads the clock: every call takes `now`.
//!
//! - [`TrackRecorder::push`] a packet; drain [`TrackRecorder::poll_frame`],
//!   [`TrackRecorder::poll_gap`] and [`TrackRecorder::take_keyframe_request`] after each call;
//!   call [`TrackRecorder::handle_timeout`] when [`TrackRecorder::poll_timeout`] says so.
//! - **Reordering.** Packets are released in sequence order. A missing packet is waited for
//!   [`REORDER_WAIT`] (counted from the arrival of the first packet after it: retransmissions
//!   after a NACK come late), then given up. In-order packets take a fast path that copies
//!   nothing but the payload into the frame being assembled.
//! - **Loss.** Video after an unrepaired loss (or a malformed packet) drops the picture it
//!   damaged and waits for the next keyframe, asking for one ([`TrackRecorder::take_keyframe_request`],
//!   repeated every [`KEYFRAME_RETRY`] while packets keep coming without one). Audio skips the
//!   lost packets. Either way the span between the last frame before the loss and the first
//!   after it is reported as a [`Gap`] once that frame is out.
//! - **Runs.** [`RecPacket::run`] is opaque: when it changes (new sequence space, another
//!   simulcast layer, a new pause generation) the recorder re-bases sequence numbers and
//!   timestamps on the new run's first packet and video waits for a keyframe. A packet of a
//!   recently replaced run (a late retransmission) is dropped.
//! - **Time.** A frame's [`Frame::at_us`] is microseconds since the recording's `started`:
//!   the RTP clock, anchored at the arrival of the run's first packet. A run whose RTP clock
//!   strays more than a second from the arrival clock is re-anchored. Frame times never go
//!   backwards, and the 32-bit RTP timestamp is unwrapped.
//! - **Segments.** After [`SEGMENT_IDLE`] without packets, the next frame starts a new
//!   segment ([`Frame::segment_start`]; video from a keyframe).
//! - **VP8.** Packets of one picture (same RTP timestamp, up to the marker bit) are joined with
//!   their RFC 7741 payload descriptors stripped ([`crate::vp8`]). Opus packets are frames.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::vp8;

/// A track silent this long starts a new segment when it sends again.
pub const SEGMENT_IDLE: Duration = Duration::from_secs(3);
/// How long a missing packet is waited for before it is given up.
pub const REORDER_WAIT: Duration = Duration::from_millis(300);
/// How often video still waiting for a keyframe asks again.
pub const KEYFRAME_RETRY: Duration = Duration::from_secs(1);

/// Packets held at most while waiting for a missing one (a jump further ahead gives up at once).
const REORDER_SLOTS: u64 = 512;
/// A run whose RTP clock strays further than this from the arrival clock is re-anchored.
const REBASE_SKEW_US: i128 = 1_000_000;
/// This many late packets in a row mean the sequence space restarted within a run.
const LATE_RESYNC: u32 = 64;
/// Replaced runs remembered, so their late packets do not count as a new run.
const RETIRED_RUNS: usize = 8;
/// The largest VP8 picture assembled; a bigger one is dropped as damaged.
const MAX_PICTURE_BYTES: usize = 4 << 20;

/// The codec of a recorded track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Vp8,
    Opus,
}

/// One received RTP packet, as the recorder needs it.
#[derive(Debug, Clone, Copy)]
pub struct RecPacket<'a> {
    /// When the packet arrived (monotonic).
    pub arrived: Instant,
    /// The publisher's extended RTP sequence number.
    pub seq: u64,
    pub rtp_time: u32,
    pub marker: bool,
    /// Opaque; changes when the sequence space, simulcast layer or pause generation changes.
    pub run: u64,
    /// VP8: whether the packet starts a keyframe, when the caller knows. The recorder reads the
    /// VP8 frame header itself and uses this only when the header is missing.
    pub keyframe_start: Option<bool>,
    /// The decrypted RTP payload (VP8: payload descriptor included).
    pub payload: &'a [u8],
}

/// One media frame, ready for the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Microseconds since the recording started.
    pub at_us: u64,
    /// VP8 keyframe; always true for Opus.
    pub keyframe: bool,
    /// VP8: the picture, descriptors stripped. Opus: the packet.
    pub data: Vec<u8>,
    /// The first frame of a new segment (the first frame of all, or after [`SEGMENT_IDLE`]).
    pub segment_start: bool,
    /// Consecutive per recorder, so that a consumer can tell frames went missing on the way.
    pub frame_no: u64,
}

/// Media lost to unrepaired network loss: from the last frame before the loss, for
/// `duration_us`, up to the first frame after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    pub at_us: u64,
    pub duration_us: u64,
}

/// Counters, for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecorderStats {
    pub packets: u64,
    /// Arrived after they had been given up (or were already released).
    pub late: u64,
    pub duplicates: u64,
    /// Late packets of a replaced run.
    pub stale_run: u64,
    /// Given up after [`REORDER_WAIT`] (or skipped by a jump ahead).
    pub lost: u64,
    /// Payloads the depacketizer could not read.
    pub malformed: u64,
    /// Packets dropped because a new run started while they waited.
    pub discarded: u64,
    /// VP8 packets continuing a picture whose start was not seen.
    pub orphans: u64,
    pub frames: u64,
    /// Frames dropped while waiting for a keyframe.
    pub frames_dropped: u64,
    /// Times a run's clock was re-anchored on the arrival clock.
    pub rebases: u64,
}

struct Held {
    seq: u64,
    rtp_time: u32,
    marker: bool,
    keyframe_hint: Option<bool>,
    at_us: u64,
    arrived: Instant,
    payload: Vec<u8>,
}

/// A packet on its way to the depacketizer, borrowed from the caller or from [`Held`].
struct Pkt<'a> {
    rtp_time: u32,
    marker: bool,
    keyframe_hint: Option<bool>,
    at_us: u64,
    payload: &'a [u8],
}

struct Run {
    id: u64,
    base_ext: i64,
    base_us: i64,
    last_ext: i64,
}

struct Picture {
    rtp_time: u32,
    at_us: u64,
    keyframe: bool,
    data: Vec<u8>,
}

/// Turns one track's RTP packets into frames. See the [module docs](self).
pub struct TrackRecorder {
    codec: Codec,
    clock_rate: u32,
    started: Instant,
    run: Option<Run>,
    retired: VecDeque<u64>,
    next_seq: Option<u64>,
    /// `slots[i]` holds sequence number `next_seq + i`; the front is always a hole.
    slots: VecDeque<Option<Held>>,
    late_streak: u32,
    picture: Option<Picture>,
    frames: VecDeque<Frame>,
    gaps: VecDeque<Gap>,
    next_frame_no: u64,
    need_keyframe: bool,
    keyframe_request: bool,
    last_request: Option<Instant>,
    new_segment: bool,
    last_arrival: Option<Instant>,
    last_at_us: Option<u64>,
    loss_since_us: Option<u64>,
    stats: RecorderStats,
}

impl std::fmt::Debug for TrackRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrackRecorder")
            .field("codec", &self.codec)
            .field("next_seq", &self.next_seq)
            .field("held", &self.slots.len())
            .field("need_keyframe", &self.need_keyframe)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl TrackRecorder {
    /// A recorder for a track of `codec` whose RTP clock runs at `clock_rate` Hz (90 000 for
    /// VP8, 48 000 for Opus), on a recording that started at `started`.
    pub fn new(codec: Codec, clock_rate: u32, started: Instant) -> Self {
        Self {
            codec,
            clock_rate: clock_rate.max(1),
            started,
            run: None,
            retired: VecDeque::new(),
            next_seq: None,
            slots: VecDeque::new(),
            late_streak: 0,
            picture: None,
            frames: VecDeque::new(),
            gaps: VecDeque::new(),
            next_frame_no: 0,
            need_keyframe: codec == Codec::Vp8,
            keyframe_request: false,
            last_request: None,
            new_segment: true,
            last_arrival: None,
            last_at_us: None,
            loss_since_us: None,
            stats: RecorderStats::default(),
        }
    }

    pub fn codec(&self) -> Codec {
        self.codec
    }

    pub fn stats(&self) -> RecorderStats {
        self.stats
    }

    /// One received packet. `now` is the current time (at least `packet.arrived`).
    pub fn push(&mut self, now: Instant, packet: RecPacket<'_>) {
        self.stats.packets += 1;
        // Holes whose wait is over are settled before anything else (they precede this packet).
        self.expire(now);
        match &self.run {
            Some(run) if run.id == packet.run => {}
            _ if self.retired.contains(&packet.run) => {
                self.stats.stale_run += 1;
                return;
            }
            _ => self.start_run(now, &packet),
        }
        if self
            .last_arrival
            .is_some_and(|last| packet.arrived.saturating_duration_since(last) >= SEGMENT_IDLE)
        {
            self.begin_segment(now);
        }
        self.last_arrival = Some(
            self.last_arrival
                .map_or(packet.arrived, |last| last.max(packet.arrived)),
        );
        if self.need_keyframe
            && self
                .last_request
                .is_none_or(|at| now.saturating_duration_since(at) >= KEYFRAME_RETRY)
        {
            self.ask_keyframe(now);
        }
        let at_us = self.map_time(&packet);
        self.insert(now, packet, at_us);
    }

    /// Gives up on missing packets whose wait is over.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.expire(now);
    }

    /// When [`TrackRecorder::handle_timeout`] should be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.first_held().map(|held| held.arrived + REORDER_WAIT)
    }

    pub fn poll_frame(&mut self) -> Option<Frame> {
        self.frames.pop_front()
    }

    pub fn poll_gap(&mut self) -> Option<Gap> {
        self.gaps.pop_front()
    }

    /// Whether a keyframe should be asked of the publisher (true once per ask).
    pub fn take_keyframe_request(&mut self) -> bool {
        std::mem::take(&mut self.keyframe_request)
    }

    fn since_start_us(&self, at: Instant) -> i64 {
        i64::try_from(at.saturating_duration_since(self.started).as_micros()).unwrap_or(i64::MAX)
    }

    fn start_run(&mut self, now: Instant, packet: &RecPacket<'_>) {
        if let Some(old) = self.run.take() {
            self.retired.push_back(old.id);
            if self.retired.len() > RETIRED_RUNS {
                self.retired.pop_front();
            }
        }
        // What the old run still held is cut off: its sequence space ended.
        self.stats.discarded += self.slots.iter().flatten().count() as u64;
        self.slots.clear();
        self.next_seq = None;
        self.late_streak = 0;
        if self.codec == Codec::Vp8 {
            self.picture = None;
            self.ask_keyframe(now);
        }
        let ext = i64::from(packet.rtp_time);
        let base_us = self.since_start_us(packet.arrived);
        self.run = Some(Run {
            id: packet.run,
            base_ext: ext,
            base_us,
            last_ext: ext,
        });
    }

    fn begin_segment(&mut self, now: Instant) {
        // A picture left open before the silence belongs to the old segment.
        self.finish_picture();
        self.new_segment = true;
        // Loss just before the silence is not carried over it.
        self.loss_since_us = None;
        if self.codec == Codec::Vp8 {
            self.ask_keyframe(now);
        }
    }

    fn ask_keyframe(&mut self, now: Instant) {
        self.need_keyframe = true;
        self.keyframe_request = true;
        self.last_request = Some(now);
    }

    /// RTP time to recording time, on the current run's anchor.
    fn map_time(&mut self, packet: &RecPacket<'_>) -> u64 {
        let arrival_us = self.since_start_us(packet.arrived);
        let clock_rate = i128::from(self.clock_rate);
        let Some(run) = self.run.as_mut() else {
            return 0;
        };
        // Unwrap the 32-bit timestamp around the newest one seen (reordered packets fall
        // slightly behind it, a wrap moves it on).
        let delta = packet.rtp_time.wrapping_sub(run.last_ext as u32) as i32;
        let ext = run.last_ext + i64::from(delta);
        run.last_ext = run.last_ext.max(ext);
        let mut at =
            i128::from(run.base_us) + i128::from(ext - run.base_ext) * 1_000_000 / clock_rate;
        if (at - i128::from(arrival_us)).abs() > REBASE_SKEW_US {
            run.base_ext = ext;
            run.base_us = arrival_us;
            at = i128::from(arrival_us);
            self.stats.rebases += 1;
        }
        u64::try_from(at.max(0)).unwrap_or(u64::MAX)
    }

    fn insert(&mut self, now: Instant, packet: RecPacket<'_>, at_us: u64) {
        let mut next = *self.next_seq.get_or_insert(packet.seq);
        if packet.seq < next {
            self.late_streak += 1;
            if self.late_streak < LATE_RESYNC {
                self.stats.late += 1;
                return;
            }
            // The publisher's numbering went back and stayed there: follow it.
            let held = self.slots.iter().flatten().count() as u64;
            self.stats.discarded += held;
            self.slots.clear();
            self.on_loss(now, 0);
            next = packet.seq;
            self.next_seq = Some(next);
        }
        self.late_streak = 0;
        if packet.seq - next >= REORDER_SLOTS {
            // Too far ahead to wait for what is missing before it.
            self.skip_to(now, packet.seq);
            next = packet.seq;
        }
        let idx = (packet.seq - next) as usize;
        if idx == 0 && self.slots.is_empty() {
            // In order, nothing waiting: straight to the depacketizer.
            self.next_seq = Some(next + 1);
            self.process(
                now,
                Pkt {
                    rtp_time: packet.rtp_time,
                    marker: packet.marker,
                    keyframe_hint: packet.keyframe_start,
                    at_us,
                    payload: packet.payload,
                },
            );
            return;
        }
        while self.slots.len() <= idx {
            self.slots.push_back(None);
        }
        if self.slots[idx].is_some() {
            self.stats.duplicates += 1;
            return;
        }
        self.slots[idx] = Some(Held {
            seq: packet.seq,
            rtp_time: packet.rtp_time,
            marker: packet.marker,
            keyframe_hint: packet.keyframe_start,
            at_us,
            arrived: packet.arrived,
            payload: packet.payload.to_vec(),
        });
        self.release_ready(now);
    }

    fn first_held(&self) -> Option<&Held> {
        self.slots.iter().flatten().next()
    }

    /// Releases packets from the front while there is no hole.
    fn release_ready(&mut self, now: Instant) {
        while let Some(Some(_)) = self.slots.front() {
            if let Some(Some(held)) = self.slots.pop_front() {
                self.next_seq = Some(held.seq + 1);
                self.process_held(now, &held);
            }
        }
    }

    fn process_held(&mut self, now: Instant, held: &Held) {
        self.process(
            now,
            Pkt {
                rtp_time: held.rtp_time,
                marker: held.marker,
                keyframe_hint: held.keyframe_hint,
                at_us: held.at_us,
                payload: &held.payload,
            },
        );
    }

    /// Gives up on the leading hole while its wait is over.
    fn expire(&mut self, now: Instant) {
        while let Some(deadline) = self.poll_timeout() {
            if now < deadline {
                break;
            }
            let mut missing = 0;
            while let Some(None) = self.slots.front() {
                self.slots.pop_front();
                missing += 1;
            }
            self.next_seq = self.next_seq.map(|n| n + missing);
            self.on_loss(now, missing);
            self.release_ready(now);
        }
        if self.first_held().is_none() {
            self.slots.clear();
        }
    }

    /// Moves the release point to `target`, releasing what was held before it and counting
    /// the rest as lost.
    fn skip_to(&mut self, now: Instant, target: u64) {
        let Some(mut next) = self.next_seq else {
            return;
        };
        let mut missing = 0;
        while next < target {
            match self.slots.pop_front() {
                Some(Some(held)) => {
                    if missing > 0 {
                        self.on_loss(now, missing);
                        missing = 0;
                    }
                    self.process_held(now, &held);
                }
                Some(None) => missing += 1,
                None => {
                    missing += (target - next).min(REORDER_SLOTS);
                    break;
                }
            }
            next += 1;
        }
        self.next_seq = Some(target);
        if missing > 0 {
            self.on_loss(now, missing);
        }
        // What is left starts at `target` (the front may hold a packet now).
        self.release_ready(now);
    }

    fn on_loss(&mut self, now: Instant, packets: u64) {
        self.stats.lost += packets;
        if let Some(last) = self.last_at_us {
            self.loss_since_us.get_or_insert(last);
        }
        if self.codec == Codec::Vp8 {
            self.picture = None;
            self.ask_keyframe(now);
        }
    }

    fn process(&mut self, now: Instant, pkt: Pkt<'_>) {
        match self.codec {
            Codec::Opus => {
                if pkt.payload.is_empty() {
                    self.stats.malformed += 1;
                    return;
                }
                self.emit(pkt.at_us, true, pkt.payload.to_vec());
            }
            Codec::Vp8 => self.process_vp8(now, pkt),
        }
    }

    fn process_vp8(&mut self, now: Instant, pkt: Pkt<'_>) {
        let Some(descriptor) = vp8::parse_descriptor(pkt.payload) else {
            self.stats.malformed += 1;
            self.on_loss(now, 0);
            return;
        };
        let data = pkt.payload.get(descriptor.len..).unwrap_or_default();
        if self
            .picture
            .as_ref()
            .is_some_and(|p| p.rtp_time != pkt.rtp_time)
        {
            // A new timestamp ends the previous picture even without its marker.
            self.finish_picture();
        }
        if descriptor.starts_frame() {
            let keyframe = vp8::is_keyframe(data).unwrap_or(pkt.keyframe_hint == Some(true));
            let mut buf = Vec::with_capacity(data.len().max(1200) * 2);
            buf.extend_from_slice(data);
            self.picture = Some(Picture {
                rtp_time: pkt.rtp_time,
                at_us: pkt.at_us,
                keyframe,
                data: buf,
            });
        } else if let Some(picture) = self.picture.as_mut() {
            if picture.data.len() + data.len() > MAX_PICTURE_BYTES {
                self.stats.malformed += 1;
                self.on_loss(now, 0);
                return;
            }
            picture.data.extend_from_slice(data);
        } else {
            self.stats.orphans += 1;
            return;
        }
        if pkt.marker {
            self.finish_picture();
        }
    }

    fn finish_picture(&mut self) {
        if let Some(picture) = self.picture.take()
            && !picture.data.is_empty()
        {
            self.emit(picture.at_us, picture.keyframe, picture.data);
        }
    }

    fn emit(&mut self, at_us: u64, keyframe: bool, data: Vec<u8>) {
        if self.codec == Codec::Vp8 && self.need_keyframe {
            if !keyframe {
                // The ask was made when the wait began, and is repeated by `push`.
                self.stats.frames_dropped += 1;
                return;
            }
            self.need_keyframe = false;
        }
        let at_us = at_us.max(self.last_at_us.unwrap_or(0));
        if let Some(since) = self.loss_since_us.take() {
            self.gaps.push_back(Gap {
                at_us: since,
                duration_us: at_us - since,
            });
        }
        let segment_start = std::mem::take(&mut self.new_segment);
        self.frames.push_back(Frame {
            at_us,
            keyframe,
            data,
            segment_start,
            frame_no: self.next_frame_no,
        });
        self.next_frame_no += 1;
        self.last_at_us = Some(at_us);
        self.stats.frames += 1;
    }
}

#[cfg(test)]
mod tests;
