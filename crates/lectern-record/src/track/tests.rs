use super::*;
use proptest::prelude::*;

const MS: Duration = Duration::from_millis(1);

/// A VP8 keyframe header (320x240) followed by `len - 10` filler bytes tagged with `tag`.
fn keyframe(len: usize, tag: u8) -> Vec<u8> {
    let mut data = vec![0x50, 0x2a, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00];
    data.resize(len.max(10), tag);
    data
}

fn interframe(len: usize, tag: u8) -> Vec<u8> {
    let mut data = vec![0x51, 0x11, 0x00];
    data.resize(len.max(3), tag);
    data
}

/// Packetizes a VP8 picture as RFC 7741 payloads of at most `chunk` bytes of data each.
fn packetize(picture: &[u8], chunk: usize) -> Vec<Vec<u8>> {
    picture
        .chunks(chunk)
        .enumerate()
        .map(|(i, part)| {
            let mut payload = vec![if i == 0 { 0x10 } else { 0x00 }];
            payload.extend_from_slice(part);
            payload
        })
        .collect()
}

/// A test publisher: numbers packets, stamps RTP time, tracks its own clock.
struct Sender {
    start: Instant,
    seq: u64,
    run: u64,
}

struct Sent {
    seq: u64,
    rtp_time: u32,
    marker: bool,
    payload: Vec<u8>,
}

impl Sender {
    fn new(start: Instant) -> Self {
        Sender {
            start,
            seq: 1000,
            run: 1,
        }
    }

    fn picture(&mut self, data: &[u8], rtp_time: u32) -> Vec<Sent> {
        let payloads = packetize(data, 1000);
        let last = payloads.len() - 1;
        payloads
            .into_iter()
            .enumerate()
            .map(|(i, payload)| {
                self.seq += 1;
                Sent {
                    seq: self.seq,
                    rtp_time,
                    marker: i == last,
                    payload,
                }
            })
            .collect()
    }

    fn audio(&mut self, rtp_time: u32, tag: u8) -> Sent {
        self.seq += 1;
        // TOC: CELT 20 ms, mono, one frame.
        Sent {
            seq: self.seq,
            rtp_time,
            marker: false,
            payload: vec![31 << 3, tag, tag],
        }
    }
}

fn push(rec: &mut TrackRecorder, at: Instant, run: u64, sent: &Sent) {
    rec.push(
        at,
        RecPacket {
            arrived: at,
            seq: sent.seq,
            rtp_time: sent.rtp_time,
            marker: sent.marker,
            run,
            keyframe_start: None,
            payload: &sent.payload,
        },
    );
}

fn frames(rec: &mut TrackRecorder) -> Vec<Frame> {
    std::iter::from_fn(|| rec.poll_frame()).collect()
}

fn gaps(rec: &mut TrackRecorder) -> Vec<Gap> {
    std::iter::from_fn(|| rec.poll_gap()).collect()
}

#[test]
fn vp8_packets_of_a_picture_are_joined_without_descriptors() {
    let t0 = Instant::now();
    let mut rec = TrackRecorder::new(Codec::Vp8, 90_000, t0);
    let mut tx = Sender::new(t0);
    let pictures = [keyframe(2500, 1), interframe(1500, 2), interframe(300, 3)];
    for (i, picture) in pictures.iter().enumerate() {
        let at = t0 + 100 * MS + 33 * MS * i as u32;
        for sent in tx.picture(picture, 5000 + 3000 * i as u32) {
            push(&mut rec, at, tx.run, &sent);
        }
    }
    let out = frames(&mut rec);
    assert_eq!(out.len(), 3);
    for (i, frame) in out.iter().enumerate() {
        assert_eq!(frame.data, pictures[i]);
        assert_eq!(frame.frame_no, i as u64);
        assert_eq!(frame.keyframe, i == 0);
        assert_eq!(frame.segment_start, i == 0);
    }
    // Anchored on the first packet's arrival, then the RTP clock: 3000 ticks = 33 333 us.
    assert_eq!(out[0].at_us, 100_000);
    assert_eq!(out[1].at_us, 133_333);
    assert_eq!(out[2].at_us, 166_666);
    assert!(gaps(&mut rec).is_empty());
    assert_eq!(rec.poll_timeout(), None);
    let _ = tx.start;
}

#[test]
fn video_waits_for_a_keyframe_and_asks_for_one() {
    let t0 = Instant::now();
    let mut rec = TrackRecorder::new(Codec::Vp8, 90_000, t0);
    let mut tx = Sender::new(t0);
    for sent in tx.picture(&interframe(500, 1), 0) {
        push(&mut rec, t0, tx.run, &sent);
    }
    assert!(
        rec.take_keyframe_request(),
        "the recorder starts mid-stream: it asks"
    );
    assert!(!rec.take_keyframe_request(), "once per ask");
    assert!(frames(&mut rec).is_empty());
    // Still no keyframe a second later: asked again.
    for sent in tx.picture(&interframe(500, 2), 90_000) {
        push(&mut rec, t0 + 1000 * MS, tx.run, &sent);
    }
    assert!(rec.take_keyframe_request());
    for sent in tx.picture(&keyframe(500, 3), 93_000) {
        push(&mut rec, t0 + 1033 * MS, tx.run, &sent);
    }
    let out = frames(&mut rec);
    assert_eq!(out.len(), 1);
    assert!(out[0].keyframe && out[0].segment_start);
    assert_eq!(out[0].frame_no, 0);
    assert_eq!(rec.stats().frames_dropped, 2);
}

#[test]
fn reordered_packets_are_released_in_order() {
    let t0 = Instant::now();
    let mut rec = TrackRecorder::new(Codec::Vp8, 90_000, t0);
    let mut tx = Sender::new(t0);
    let picture = keyframe(3500, 7);
    let mut sent = tx.picture(&picture, 0);
    sent.swap(1, 3);
    for (i, s) in sent.iter().enumerate() {
        push(&mut rec, t0 + MS * i as u32, tx.run, s);
    }
    let out = frames(&mut rec);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].data, picture);
    assert_eq!(rec.stats().lost, 0);
}

#[test]
fn a_retransmission_within_the_wait_repairs_the_loss() {
    let t0 = Instant::now();
    let mut rec = TrackRecorder::new(Codec::Vp8, 90_000, t0);
    let mut tx = Sender::new(t0);
    let key = keyframe(2500, 1);
    let inter = interframe(2500, 2);
    let mut sent = tx.picture(&key, 0);
    sent.extend(tx.picture(&inter, 3000));
    let missing = sent.remove(4);
    for s in &sent {
        push(&mut rec, t0, tx.run, s);
    }
    assert_eq!(
        frames(&mut rec).len(),
        1,
        "the second picture waits for its missing packet"
    );
    assert_eq!(rec.poll_timeout(), Some(t0 + REORDER_WAIT));
    rec.handle_timeout(t0 + 299 * MS);
    push(&mut rec, t0 + 299 * MS, tx.run, &missing);
    let out = frames(&mut rec);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].data, inter);
    assert_eq!(rec.stats().lost, 0);
    assert!(gaps(&mut rec).is_empty());
}

#[test]
fn unrepaired_video_loss_waits_for_a_keyframe_and_reports_a_gap() {
    let t0 = Instant::now();
    let mut rec = TrackRecorder::new(Codec::Vp8, 90_000, t0);
    let mut tx = Sender::new(t0);
    for sent in tx.picture(&keyframe(800, 1), 0) {
        push(&mut rec, t0, tx.run, &sent);
    }
    let _ = rec.take_keyframe_request();
    // Picture 2 is lost entirely; 3 and 4 arrive.
    let _lost = tx.picture(&interframe(800, 2), 3000);
    for (i, picture) in [interframe(800, 3), interframe(800, 4)].iter().enumerate() {
        for sent in tx.picture(picture, 6000 + 3000 * i as u32) {
            push(&mut rec, t0 + 66 * MS, tx.run, &sent);
        }
    }
    assert_eq!(frames(&mut rec).len(), 1);
    assert_eq!(rec.poll_timeout(), Some(t0 + 66 * MS + REORDER_WAIT));
    rec.handle_timeout(t0 + 366 * MS);
    assert_eq!(rec.stats().lost, 1);
    assert!(rec.take_keyframe_request());
    assert!(
        frames(&mut rec).is_empty(),
        "frames after the loss need a keyframe"
    );
    // The lost packet's retransmission comes too late: ignored.
    let late = Sent {
        seq: 1002,
        rtp_time: 3000,
        marker: true,
        payload: packetize(&interframe(800, 2), 1000).remove(0),
    };
    push(&mut rec, t0 + 400 * MS, tx.run, &late);
    assert_eq!(rec.stats().late, 1);
    let key = keyframe(900, 5);
    for sent in tx.picture(&key, 30_000) {
        push(&mut rec, t0 + 400 * MS, tx.run, &sent);
    }
    let out = frames(&mut rec);
    assert_eq!(out.len(), 1);
    assert!(out[0].keyframe && !out[0].segment_start);
    assert_eq!(out[0].frame_no, 1, "frame numbers count emitted frames");
    assert_eq!(
        gaps(&mut rec),
        vec![Gap {
            at_us: 0,
            duration_us: 333_333
        }]
    );
}

#[test]
fn audio_skips_lost_packets() {
    let t0 = Instant::now();
    let mut rec = TrackRecorder::new(Codec::Opus, 48_000, t0);
    let mut tx = Sender::new(t0);
    let sent: Vec<Sent> = (0..6).map(|i| tx.audio(960 * i, i as u8)).collect();
    for (i, s) in sent.iter().enumerate() {
        if i != 2 {
            push(&mut rec, t0 + 20 * MS * i as u32, tx.run, s);
        }
    }
    assert_eq!(frames(&mut rec).len(), 2);
    rec.handle_timeout(t0 + 60 * MS + REORDER_WAIT);
    let out = frames(&mut rec);
    assert_eq!(
        out.iter().map(|f| f.at_us).collect::<Vec<_>>(),
        [60_000, 80_000, 100_000]
    );
    assert_eq!(out[0].data, sent[3].payload);
    assert!(out.iter().all(|f| f.keyframe && !f.segment_start));
    assert_eq!(
        gaps(&mut rec),
        vec![Gap {
            at_us: 20_000,
            duration_us: 40_000
        }]
    );
    assert!(
        !rec.take_keyframe_request(),
        "audio never asks for keyframes"
    );
}

#[test]
fn duplicates_and_far_jumps() {
    let t0 = Instant::now();
    let mut rec = TrackRecorder::new(Codec::Opus, 48_000, t0);
    let mut tx = Sender::new(t0);
    let a = tx.audio(0, 1);
    push(&mut rec, t0, 1, &a);
    push(&mut rec, t0, 1, &a);
    let b = tx.audio(960, 2);
    let c = tx.audio(1920, 3);
    push(&mut rec, t0 + 40 * MS, 1, &c);
    push(&mut rec, t0 + 40 * MS, 1, &c);
    assert_eq!(rec.stats().duplicates, 1);
    assert_eq!(rec.stats().late, 1);
    push(&mut rec, t0 + 41 * MS, 1, &b);
    assert_eq!(frames(&mut rec).len(), 3);
    // A jump far beyond what is held gives up at once, without waiting.
    tx.seq += 10_000;
    let d = tx.audio(2880, 4);
    push(&mut rec, t0 + 60 * MS, 1, &d);
    assert_eq!(frames(&mut rec).len(), 1);
    assert!(rec.stats().lost > 0);
    assert_eq!(rec.poll_timeout(), None);
}

#[test]
fn a_run_change_rebases_and_waits_for_a_keyframe() {
    let t0 = Instant::now();
    let mut rec = TrackRecorder::new(Codec::Vp8, 90_000, t0);
    let mut tx = Sender::new(t0);
    for sent in tx.picture(&keyframe(500, 1), 4_000_000) {
        push(&mut rec, t0 + 10 * MS, 1, &sent);
    }
    let old = tx.picture(&interframe(500, 2), 4_003_000);
    let _ = rec.take_keyframe_request();
    // Another layer: new sequence space and timestamps, starting with an interframe.
    tx.seq = 7;
    for sent in tx.picture(&interframe(500, 3), 12_345) {
        push(&mut rec, t0 + 50 * MS, 2, &sent);
    }
    assert!(rec.take_keyframe_request());
    // A late packet of the old run changes nothing.
    push(&mut rec, t0 + 51 * MS, 1, &old[0]);
    assert_eq!(rec.stats().stale_run, 1);
    for sent in tx.picture(&keyframe(500, 4), 12_345 + 9000) {
        push(&mut rec, t0 + 150 * MS, 2, &sent);
    }
    let out = frames(&mut rec);
    assert_eq!(out.len(), 2);
    // New anchor: the run's first packet arrived at 50 ms; 9000 ticks later is 150 ms.
    assert_eq!((out[0].at_us, out[1].at_us), (10_000, 150_000));
    assert!(out[1].keyframe && !out[1].segment_start);
    assert!(gaps(&mut rec).is_empty(), "a run change is no network loss");
}

#[test]
fn silence_starts_a_new_segment_from_a_keyframe() {
    let t0 = Instant::now();
    let mut rec = TrackRecorder::new(Codec::Vp8, 90_000, t0);
    let mut tx = Sender::new(t0);
    for sent in tx.picture(&keyframe(500, 1), 0) {
        push(&mut rec, t0, 1, &sent);
    }
    for sent in tx.picture(&interframe(500, 2), 3000) {
        push(&mut rec, t0 + 33 * MS, 1, &sent);
    }
    let _ = rec.take_keyframe_request();
    let resume = t0 + 33 * MS + SEGMENT_IDLE;
    for sent in tx.picture(&interframe(500, 3), 3000 + 270_000) {
        push(&mut rec, resume, 1, &sent);
    }
    assert!(rec.take_keyframe_request());
    for sent in tx.picture(&keyframe(500, 4), 3000 + 273_000) {
        push(&mut rec, resume + 33 * MS, 1, &sent);
    }
    let out = frames(&mut rec);
    assert_eq!(
        out.iter().map(|f| f.segment_start).collect::<Vec<_>>(),
        [true, false, true]
    );
    assert_eq!(out[2].at_us, 33_333 + 3_033_333);
    // Just under the idle time: same segment.
    let mut audio = TrackRecorder::new(Codec::Opus, 48_000, t0);
    push(&mut audio, t0, 1, &tx.audio(0, 1));
    push(&mut audio, t0 + SEGMENT_IDLE - MS, 1, &tx.audio(143_952, 2));
    push(&mut audio, t0 + 2 * SEGMENT_IDLE, 1, &tx.audio(288_000, 3));
    let out = frames(&mut audio);
    assert_eq!(
        out.iter().map(|f| f.segment_start).collect::<Vec<_>>(),
        [true, false, true]
    );
}

#[test]
fn timestamps_unwrap_past_32_bits() {
    let t0 = Instant::now();
    let mut rec = TrackRecorder::new(Codec::Opus, 48_000, t0);
    let mut tx = Sender::new(t0);
    let start = u32::MAX - 960 * 2;
    let mut last = 0;
    for i in 0..6u32 {
        push(
            &mut rec,
            t0 + 20 * MS * i,
            1,
            &tx.audio(start.wrapping_add(960 * i), 0),
        );
        for f in frames(&mut rec) {
            assert_eq!(f.at_us, u64::from(i) * 20_000);
            last = f.at_us;
        }
    }
    assert_eq!(last, 100_000);
    assert_eq!(rec.stats().rebases, 0);
}

#[test]
fn a_clock_straying_from_arrival_is_reanchored() {
    let t0 = Instant::now();
    let mut rec = TrackRecorder::new(Codec::Opus, 48_000, t0);
    let mut tx = Sender::new(t0);
    push(&mut rec, t0, 1, &tx.audio(0, 0));
    // The publisher's timestamp leaps 10 s ahead while packets keep arriving every 20 ms.
    push(&mut rec, t0 + 20 * MS, 1, &tx.audio(480_000, 1));
    push(&mut rec, t0 + 40 * MS, 1, &tx.audio(480_960, 2));
    let at: Vec<u64> = frames(&mut rec).iter().map(|f| f.at_us).collect();
    assert_eq!(at, [0, 20_000, 40_000]);
    assert_eq!(rec.stats().rebases, 1);
}

#[test]
fn frame_times_never_go_backwards() {
    let t0 = Instant::now();
    let mut rec = TrackRecorder::new(Codec::Opus, 48_000, t0);
    let mut tx = Sender::new(t0);
    push(&mut rec, t0 + 500 * MS, 1, &tx.audio(0, 0));
    // A new run anchored on an arrival that is earlier than the frame already out.
    push(&mut rec, t0 + 400 * MS, 2, &tx.audio(77, 1));
    let at: Vec<u64> = frames(&mut rec).iter().map(|f| f.at_us).collect();
    assert_eq!(at, [500_000, 500_000]);
}

#[test]
fn a_sequence_restart_within_a_run_is_followed() {
    let t0 = Instant::now();
    let mut rec = TrackRecorder::new(Codec::Opus, 48_000, t0);
    let mut tx = Sender::new(t0);
    tx.seq = 50_000;
    push(&mut rec, t0, 1, &tx.audio(0, 0));
    tx.seq = 10;
    for i in 1..=LATE_RESYNC + 5 {
        push(&mut rec, t0 + 20 * MS * i, 1, &tx.audio(960 * i, 0));
    }
    assert_eq!(rec.stats().late, u64::from(LATE_RESYNC - 1));
    assert_eq!(frames(&mut rec).len(), 1 + 6);
}

#[test]
fn hostile_payloads_never_panic() {
    let t0 = Instant::now();
    for codec in [Codec::Vp8, Codec::Opus] {
        let mut rec = TrackRecorder::new(codec, 90_000, t0);
        let payloads: [&[u8]; 7] = [
            &[],
            &[0x80],
            &[0x90, 0x80],
            &[0x90, 0xff, 0x80],
            &[0x10],
            &[0x00, 1, 2],
            &[0x10, 0x50],
        ];
        for (i, payload) in payloads.iter().enumerate() {
            rec.push(
                t0,
                RecPacket {
                    arrived: t0,
                    seq: i as u64,
                    rtp_time: i as u32,
                    marker: true,
                    run: 0,
                    keyframe_start: Some(true),
                    payload,
                },
            );
        }
        rec.handle_timeout(t0 + Duration::from_secs(10));
        let out = frames(&mut rec);
        assert!(out.iter().all(|f| !f.data.is_empty()));
        assert!(rec.stats().malformed > 0);
    }
}

#[test]
fn an_endless_picture_is_dropped() {
    let t0 = Instant::now();
    let mut rec = TrackRecorder::new(Codec::Vp8, 90_000, t0);
    let chunk = vec![0u8; 60_000];
    let mut first = vec![0x10];
    first.extend(keyframe(60_000, 0));
    rec.push(
        t0,
        RecPacket {
            arrived: t0,
            seq: 0,
            rtp_time: 0,
            marker: false,
            run: 0,
            keyframe_start: None,
            payload: &first,
        },
    );
    let mut cont = vec![0x00];
    cont.extend(&chunk);
    for seq in 1..100 {
        rec.push(
            t0,
            RecPacket {
                arrived: t0,
                seq,
                rtp_time: 0,
                marker: false,
                run: 0,
                keyframe_start: None,
                payload: &cont,
            },
        );
    }
    assert!(rec.stats().malformed >= 1);
    assert!(frames(&mut rec).is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    /// Whatever arrives, in whatever order: no panic, frame numbers consecutive, times
    /// monotonic, video segments and waits resolved by keyframes only.
    #[test]
    fn any_packet_stream_is_handled(
        packets in proptest::collection::vec(
            (0u64..40, any::<u32>(), any::<bool>(), 0u64..3, proptest::option::of(any::<bool>()),
             proptest::collection::vec(any::<u8>(), 0..40), 0u64..400),
            0..120),
        vp8 in any::<bool>(),
    ) {
        let t0 = Instant::now();
        let codec = if vp8 { Codec::Vp8 } else { Codec::Opus };
        let mut rec = TrackRecorder::new(codec, 90_000, t0);
        let mut now = t0;
        let mut next_no = 0;
        let mut last_at = 0;
        for (seq, rtp_time, marker, run, key, payload, advance_ms) in packets {
            now += Duration::from_millis(advance_ms);
            rec.push(now, RecPacket { arrived: now, seq, rtp_time, marker, run, keyframe_start: key, payload: &payload });
            if let Some(deadline) = rec.poll_timeout() && deadline <= now {
                rec.handle_timeout(now);
            }
            while let Some(frame) = rec.poll_frame() {
                prop_assert_eq!(frame.frame_no, next_no);
                prop_assert!(frame.at_us >= last_at);
                prop_assert!(!frame.data.is_empty());
                if vp8 && frame.segment_start {
                    prop_assert!(frame.keyframe);
                }
                next_no += 1;
                last_at = frame.at_us;
            }
            while let Some(gap) = rec.poll_gap() {
                prop_assert!(gap.at_us + gap.duration_us <= last_at);
            }
        }
    }
}
