//! In-process "browsers" (str0m peers in frame mode, a different mode and ICE role than the
//! SFU's) wired to the SFU through in-memory packet passing on a simulated clock.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use lectern_sfu::{LinkId, MediaEvent, PeerId, Sfu, SfuConfig};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid, Simulcast, SimulcastLayer};
use str0m::net::{Protocol, Receive};
use str0m::rtp::RtpWrite;
use str0m::{Candidate, Event, Input, Output, Rtc};

pub const SFU_ADDR: &str = "10.0.0.1:5000";

/// Where the SFU's own work starts and ends: [`Net`] runs every call into its `Sfu` through
/// [`scope::in_sfu`], so that `examples/peer_memory.rs` can count the SFU's heap apart from the
/// simulated browsers' (it sets [`scope::HOOK`] to run those calls in an allocation group).
/// Without a hook, as in the tests, the call just runs.
pub mod scope {
    use std::sync::OnceLock;

    /// Runs the SFU work it is given, wrapped as it needs.
    pub static HOOK: OnceLock<fn(&mut dyn FnMut())> = OnceLock::new();

    /// Run `f` as SFU work.
    pub fn in_sfu<R>(f: impl FnOnce() -> R) -> R {
        let Some(hook) = HOOK.get() else {
            return f();
        };
        let mut f = Some(f);
        let mut result = None;
        hook(&mut || result = f.take().map(|f| f()));
        result.expect("the scope hook runs the SFU work once")
    }
}
use scope::in_sfu;

/// Logs for debugging a test: `RUST_LOG=lectern_sfu=debug,str0m=debug cargo test ...`.
pub fn init_log() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

/// The picture size the test camera sends without simulcast.
pub const CAMERA_SIZE: (u16, u16) = (320, 240);

/// Offset of the tag in a payload of [`frame_payload_sized`].
fn tag_offset(kind: MediaKind) -> usize {
    match kind {
        MediaKind::Video => 10,
        MediaKind::Audio => 1,
    }
}

/// What the test publisher puts in every frame after the codec header: a tag and a counter,
/// so a receiver can tell exactly which frame arrived. Video says its picture `size` (a
/// simulcast layer's).
pub fn frame_payload_sized(kind: MediaKind, n: u32, keyframe: bool, size: (u16, u16)) -> Vec<u8> {
    let len = if kind == MediaKind::Video { 2500 } else { 120 };
    frame_payload_of(kind, n, keyframe, size, len)
}

/// [`frame_payload_sized`] of `len` bytes.
pub fn frame_payload_of(
    kind: MediaKind,
    n: u32,
    keyframe: bool,
    size: (u16, u16),
    len: usize,
) -> Vec<u8> {
    let mut data = Vec::new();
    match kind {
        // A VP8 frame header: bit 0 of the first byte is P (0 = keyframe), then (written in
        // every frame here) the keyframe start code and the picture size.
        MediaKind::Video => {
            data.extend_from_slice(&[if keyframe { 0x10 } else { 0x11 }, 0, 0, 0x9d, 0x01, 0x2a]);
            data.extend_from_slice(&size.0.to_le_bytes());
            data.extend_from_slice(&size.1.to_le_bytes());
        }
        MediaKind::Audio => data.push(0xfc), // an Opus TOC byte
    }
    data.extend_from_slice(b"LECTERN");
    data.extend_from_slice(&n.to_be_bytes());
    // Video frames span several RTP packets (2500 bytes unless said); audio fits in one.
    while data.len() < len {
        data.push((data.len() % 251) as u8);
    }
    data
}

/// The frame number of a payload made by [`frame_payload_sized`], if it is one.
pub fn frame_number(kind: MediaKind, data: &[u8]) -> Option<u32> {
    let at = tag_offset(kind);
    if data.len() < at + 11 || &data[at..at + 7] != b"LECTERN" {
        return None;
    }
    Some(u32::from_be_bytes(
        data[at + 7..at + 11].try_into().unwrap(),
    ))
}

/// The picture size written in a video payload of [`frame_payload_sized`].
pub fn frame_size(data: &[u8]) -> (u16, u16) {
    let le = |i: usize| u16::from_le_bytes([data[i], data[i + 1]]);
    (le(6), le(8))
}

#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    pub kind: MediaKind,
    pub frame: u32,
    pub keyframe: bool,
    pub data_ok: bool,
    /// Video: the picture size the frame says it has (which simulcast layer it came from).
    pub size: (u16, u16),
    /// The m-line it came on.
    pub mid: Mid,
    /// The RTP sequence numbers (extended) of its first and last packet.
    pub seq: (u64, u64),
    /// Its RTP timestamp (extended).
    pub rtp_time: u64,
}

/// One simulated browser.
pub struct Client {
    /// Its peer: room r1 unless it joined another with [`Net::join`].
    pub id: PeerId,
    pub rtc: Rtc,
    /// The host candidate it advertises.
    pub addr: SocketAddr,
    /// The address the SFU sees its packets come from (differs behind a NAT).
    pub seen_as: SocketAddr,
    pub pending: Option<SdpPendingOffer>,
    pub connected: bool,
    pub publish: Vec<(Mid, MediaKind)>,
    pub received: Vec<Received>,
    pub keyframe_requests: Vec<Instant>,
    pub media_added: Vec<(Mid, MediaKind)>,
    /// Publisher state: next frame numbers and whether the next video frame is a keyframe.
    pub next_video: u32,
    pub next_audio: u32,
    pub want_keyframe: bool,
    /// An encoder that does not react to PLI/FIR (it still records them).
    pub ignore_keyframe_requests: bool,
    pub sending: bool,
    /// The microphone's level (dBov, 0 loudest, -127 silence) sent in the audio level header
    /// extension; `None` sends no level.
    pub audio_level: Option<i8>,
    pub last_video: Option<Instant>,
    pub last_audio: Option<Instant>,
    /// Publish video as simulcast: (rid, picture size) per layer.
    pub simulcast: Vec<(&'static str, (u16, u16))>,
    /// Bytes of each video frame per simulcast layer (as `simulcast`); 2500 each when empty.
    pub layer_bytes: Vec<usize>,
    /// How many times a delta frame's bytes a keyframe takes (1 unless said), as an encoder's
    /// keyframes are several times its delta frames.
    pub keyframe_factor: usize,
    /// Publish video (without simulcast) as RTP written directly, one packet per frame, with
    /// these extended sequence numbers (the next one to use): a camera that has been sending
    /// for a while is anywhere in its sequence space, e.g. just before a wrap. `None`: str0m
    /// packetizes the frames and numbers the packets from 1.
    pub rtp_video_seq: Option<u64>,
    /// The SFU it is a peer of: 0 is [`Net::sfu`], n is `Net::linked[n - 1]`.
    pub on: usize,
    timeout: Instant,
    outbox: VecDeque<(SocketAddr, Vec<u8>)>,
}

impl Client {
    pub fn new(now: Instant, id: &str, addr: &str) -> Client {
        Client::at(now, id, addr.parse().unwrap())
    }

    pub fn at(now: Instant, id: &str, addr: SocketAddr) -> Client {
        Client::with_rtc(now, id, addr, Rtc::builder().build(now))
    }

    /// A client on its own str0m configuration (another numbering of extensions and codecs).
    pub fn with_rtc(now: Instant, id: &str, addr: SocketAddr, mut rtc: Rtc) -> Client {
        rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
        let mut c = Client {
            id: PeerId::new("r1", id),
            rtc,
            addr,
            seen_as: addr,
            pending: None,
            connected: false,
            publish: Vec::new(),
            received: Vec::new(),
            keyframe_requests: Vec::new(),
            media_added: Vec::new(),
            next_video: 0,
            next_audio: 0,
            want_keyframe: true,
            ignore_keyframe_requests: false,
            sending: false,
            audio_level: None,
            last_video: None,
            last_audio: None,
            simulcast: Vec::new(),
            layer_bytes: Vec::new(),
            keyframe_factor: 1,
            rtp_video_seq: None,
            on: 0,
            timeout: now,
            outbox: VecDeque::new(),
        };
        c.drain(now);
        c
    }

    /// The next datagram this client wants sent: (destination, contents).
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.outbox.pop_front()
    }

    /// Poll str0m until its next timeout, keeping what it produced.
    pub fn drain(&mut self, now: Instant) {
        loop {
            match self.rtc.poll_output().expect("client poll") {
                Output::Timeout(t) => {
                    self.timeout = t;
                    return;
                }
                Output::Transmit(t) => self.outbox.push_back((t.destination, t.contents.into())),
                Output::Event(e) => self.on_event(now, e),
            }
        }
    }

    fn on_event(&mut self, now: Instant, e: Event) {
        match e {
            Event::Connected => self.connected = true,
            Event::MediaAdded(m) => self.media_added.push((m.mid, m.kind)),
            Event::KeyframeRequest(_) => {
                self.keyframe_requests.push(now);
                self.want_keyframe |= !self.ignore_keyframe_requests;
            }
            Event::MediaData(d) => {
                let kind = if d.params.spec().codec == Codec::Opus {
                    MediaKind::Audio
                } else {
                    MediaKind::Video
                };
                if let Some(frame) = frame_number(kind, &d.data) {
                    let size = match kind {
                        MediaKind::Video => frame_size(&d.data),
                        MediaKind::Audio => (0, 0),
                    };
                    // Whatever its length (see `Client::layer_bytes`), byte for byte.
                    let expected =
                        frame_payload_of(kind, frame, d.data[0] == 0x10, size, d.data.len());
                    self.received.push(Received {
                        at: now,
                        kind,
                        frame,
                        keyframe: kind == MediaKind::Video && d.data[0] == 0x10,
                        data_ok: *d.data == *expected,
                        size,
                        mid: d.mid,
                        seq: (**d.seq_range.start(), **d.seq_range.end()),
                        rtp_time: d.time.numer(),
                    });
                }
            }
            _ => {}
        }
    }

    /// An offer publishing one send-only m-line per kind given (possibly none: then a data
    /// channel, as a receive-only browser might open with).
    pub fn make_offer(&mut self, now: Instant, kinds: &[MediaKind]) -> String {
        let mut api = self.rtc.sdp_api();
        let mut mids = Vec::new();
        for &kind in kinds {
            let simulcast = (kind == MediaKind::Video && !self.simulcast.is_empty()).then(|| {
                let mut s = Simulcast::new();
                for (rid, _) in &self.simulcast {
                    s.add_send_layer(SimulcastLayer::new(rid));
                }
                s
            });
            mids.push((
                api.add_media(
                    kind,
                    Direction::SendOnly,
                    Some(self.id.participant.to_string()),
                    None,
                    simulcast,
                ),
                kind,
            ));
        }
        if kinds.is_empty() {
            api.add_channel("lectern".into());
        }
        let (offer, pending) = api.apply().expect("offer");
        self.pending = Some(pending);
        self.publish.extend(mids);
        self.drain(now);
        offer.to_sdp_string()
    }

    /// An offer that changes the direction of one of its m-lines (a browser switching its
    /// camera off parks it inactive, and sends on it again when it is switched on). Media is
    /// sent on it only while it is sending.
    pub fn offer_direction(
        &mut self,
        now: Instant,
        mid: Mid,
        kind: MediaKind,
        dir: Direction,
    ) -> String {
        let mut api = self.rtc.sdp_api();
        api.set_direction(mid, dir);
        let (offer, pending) = api.apply().expect("offer");
        self.pending = Some(pending);
        self.publish.retain(|(m, _)| *m != mid);
        if dir.is_sending() {
            self.publish.push((mid, kind));
        }
        self.drain(now);
        offer.to_sdp_string()
    }

    pub fn accept_answer(&mut self, now: Instant, sdp: &str) {
        let answer = SdpAnswer::from_sdp_string(sdp).expect("answer parses");
        let pending = self.pending.take().expect("pending offer");
        self.rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .expect("answer accepted");
        self.drain(now);
    }

    pub fn accept_offer(&mut self, now: Instant, sdp: &str) -> String {
        let offer = SdpOffer::from_sdp_string(sdp).expect("offer parses");
        let answer = self
            .rtc
            .sdp_api()
            .accept_offer(offer)
            .expect("offer accepted");
        self.drain(now);
        answer.to_sdp_string()
    }

    pub fn receive(&mut self, now: Instant, source: SocketAddr, contents: &[u8]) {
        let receive = Receive::new(Protocol::Udp, source, self.addr, contents).expect("datagram");
        self.rtc
            .handle_input(Input::Receive(now, receive))
            .expect("client input");
        self.drain(now);
    }

    pub fn tick(&mut self, now: Instant) {
        if self.sending && self.connected {
            self.send_media(now);
        }
        if self.timeout <= now {
            self.rtc
                .handle_input(Input::Timeout(now))
                .expect("client timeout");
            self.drain(now);
        }
    }

    /// A camera at 30 fps and a microphone at 50 packets/s, on whichever m-lines it publishes.
    fn send_media(&mut self, now: Instant) {
        for (mid, kind) in self.publish.clone() {
            let (last, period) = match kind {
                MediaKind::Video => (&mut self.last_video, Duration::from_millis(33)),
                MediaKind::Audio => (&mut self.last_audio, Duration::from_millis(20)),
            };
            if last.is_some_and(|t| now < t + period) {
                continue;
            }
            *last = Some(now);
            let (n, keyframe) = match kind {
                MediaKind::Video => {
                    self.next_video += 1;
                    (self.next_video, std::mem::take(&mut self.want_keyframe))
                }
                MediaKind::Audio => {
                    self.next_audio += 1;
                    (self.next_audio, false)
                }
            };
            let codec = match kind {
                MediaKind::Video => Codec::Vp8,
                MediaKind::Audio => Codec::Opus,
            };
            let clock = match kind {
                MediaKind::Video => Frequency::NINETY_KHZ,
                MediaKind::Audio => Frequency::FORTY_EIGHT_KHZ,
            };
            let period_ticks = match kind {
                MediaKind::Video => 3000,
                MediaKind::Audio => 960,
            };
            let time = MediaTime::new(n as u64 * period_ticks, clock);
            if kind == MediaKind::Video
                && let Some(seq) = self.rtp_video_seq
            {
                self.send_rtp_frame(now, mid, seq, n, keyframe, n.wrapping_mul(3000));
                self.rtp_video_seq = Some(seq + 1);
                continue;
            }
            let layers: Vec<(Option<&str>, (u16, u16))> = match (kind, self.simulcast.is_empty()) {
                (MediaKind::Video, false) => {
                    self.simulcast.iter().map(|(r, s)| (Some(*r), *s)).collect()
                }
                _ => vec![(None, CAMERA_SIZE)],
            };
            for (l, (rid, size)) in layers.into_iter().enumerate() {
                let Some(writer) = self.rtc.writer(mid) else {
                    break; // closed
                };
                let pt = writer
                    .payload_params()
                    .find(|p| p.spec().codec == codec)
                    .expect("codec negotiated")
                    .pt();
                let writer = match (kind, self.audio_level) {
                    (MediaKind::Audio, Some(level)) => writer.audio_level(level, level > -50),
                    _ => writer,
                };
                let writer = match rid {
                    Some(rid) => writer.rid(rid.into()),
                    None => writer,
                };
                let payload = match (kind, self.layer_bytes.get(l)) {
                    (MediaKind::Video, Some(&len)) => {
                        let len = if keyframe {
                            len * self.keyframe_factor.max(1)
                        } else {
                            len
                        };
                        frame_payload_of(kind, n, keyframe, size, len)
                    }
                    _ => frame_payload_sized(kind, n, keyframe, size),
                };
                writer.write(pt, now, time, payload).expect("write");
                self.drain(now);
            }
        }
    }

    /// One video frame as one RTP packet with sequence number `seq`: a VP8 payload
    /// descriptor (start of partition 0), then the frame (see [`frame_payload_of`]).
    fn send_rtp_frame(&mut self, now: Instant, mid: Mid, seq: u64, n: u32, key: bool, time: u32) {
        let Some(pt) = self.rtc.writer(mid).and_then(|w| {
            w.payload_params()
                .find(|p| p.spec().codec == Codec::Vp8)
                .map(|p| p.pt())
        }) else {
            return;
        };
        let mut payload = vec![0x10];
        payload.extend(frame_payload_of(
            MediaKind::Video,
            n,
            key,
            CAMERA_SIZE,
            1000,
        ));
        let mut api = self.rtc.direct_api();
        let Some(tx) = api.stream_tx_by_mid(mid, None) else {
            return;
        };
        tx.write_rtp(RtpWrite::new(pt, seq.into(), time, now, payload).marker(true));
        self.drain(now);
    }

    pub fn frames(&self, kind: MediaKind) -> Vec<&Received> {
        self.received.iter().filter(|r| r.kind == kind).collect()
    }
}

/// The SFU plus clients, exchanging datagrams in memory and signalling by direct calls.
pub struct Net {
    pub now: Instant,
    pub sfu: Sfu,
    pub sfu_addr: SocketAddr,
    /// More SFUs (media workers), each linked with every other: a room's peers spread over
    /// them, with relayed media between them. SFU n (n > 0) is `linked[n - 1]`, named
    /// `LinkId(n)` by the others.
    pub linked: Vec<(Sfu, SocketAddr)>,
    /// Relayed messages seen so far, per sending SFU: (media packets, others).
    pub relayed: Vec<(usize, usize)>,
    /// Relaying between SFUs stops (to show what depends on it).
    pub relay_off: bool,
    /// Relayed media held back instead of handed over: (to, from, message), for the test to
    /// hand over later (a worker behind on its channel).
    pub held_relays: Option<Vec<(usize, LinkId, lectern_sfu::RelayMessage)>>,
    pub clients: Vec<Client>,
    pub events: Vec<MediaEvent>,
    /// Answer SFU offers automatically (as the browser client does).
    pub auto_answer: bool,
    pub step: Duration,
    /// Packet loss: drop every n-th large datagram (media, not handshakes) to this address.
    pub lossy_link: Option<(SocketAddr, usize)>,
    pub dropped: usize,
    large_seen: usize,
    /// Every datagram the SFU sends to this address, recorded as sent.
    pub tap: Option<(SocketAddr, Vec<Vec<u8>>)>,
    /// Datagrams from the client seen at this address to the SFU, held back instead of
    /// delivered (the test hands them over later, as a late NACK).
    pub held_uplink: Option<(SocketAddr, Vec<Vec<u8>>)>,
    /// A slow link in front of one client (see [`Bottleneck`]).
    pub bottleneck: Option<Bottleneck>,
    /// Hand the SFUs what arrives at one instant as one batch (`Sfu::begin_batch`), as the
    /// media worker does with what one read of its socket returns: the datagrams the clients
    /// sent since the last round, and the messages relayed by one SFU. On by default; off,
    /// each packet is sent to the subscribers as it is forwarded.
    pub batch: bool,
}

/// A slow link towards one client, as `tc qdisc ... tbf` makes one: what the SFU sends to
/// `to` leaves at `rate` bits per second through a queue of at most `queue` bytes, and what
/// does not fit in the queue is dropped.
pub struct Bottleneck {
    pub to: SocketAddr,
    pub rate: u64,
    pub queue: usize,
    /// Datagrams dropped so far.
    pub dropped: usize,
    queued: VecDeque<(Instant, SocketAddr, Vec<u8>)>,
    queued_bytes: usize,
    free_at: Option<Instant>,
}

impl Bottleneck {
    pub fn new(to: &str, rate: u64, queue: usize) -> Bottleneck {
        Bottleneck {
            to: to.parse().unwrap(),
            rate,
            queue,
            dropped: 0,
            queued: VecDeque::new(),
            queued_bytes: 0,
            free_at: None,
        }
    }

    /// Queue a datagram from `from` (or drop it when the queue is full).
    fn enqueue(&mut self, now: Instant, from: SocketAddr, bytes: Vec<u8>) {
        if self.queued_bytes + bytes.len() > self.queue {
            self.dropped += 1;
            return;
        }
        let start = self.free_at.map_or(now, |t| t.max(now));
        let leaves =
            start + Duration::from_nanos(bytes.len() as u64 * 8 * 1_000_000_000 / self.rate);
        self.free_at = Some(leaves);
        self.queued_bytes += bytes.len();
        self.queued.push_back((leaves, from, bytes));
    }

    /// The next datagram that has crossed the link by `now`.
    fn arrived(&mut self, now: Instant) -> Option<(SocketAddr, Vec<u8>)> {
        if self.queued.front().is_none_or(|(t, _, _)| *t > now) {
            return None;
        }
        let (_, from, bytes) = self.queued.pop_front()?;
        self.queued_bytes -= bytes.len();
        Some((from, bytes))
    }
}

impl Net {
    pub fn new() -> Net {
        init_log();
        let now = Instant::now();
        let sfu_addr: SocketAddr = SFU_ADDR.parse().unwrap();
        let sfu = in_sfu(|| Sfu::new(SfuConfig::new(vec![sfu_addr]))).expect("sfu");
        Net {
            now,
            sfu,
            sfu_addr,
            linked: Vec::new(),
            relayed: vec![(0, 0)],
            relay_off: false,
            held_relays: None,
            clients: Vec::new(),
            events: Vec::new(),
            auto_answer: true,
            step: Duration::from_millis(2),
            lossy_link: None,
            dropped: 0,
            large_seen: 0,
            tap: None,
            held_uplink: None,
            bottleneck: None,
            batch: true,
        }
    }

    /// Add an SFU linked with every other; returns its number (for [`Net::join_on`]).
    pub fn add_linked_sfu(&mut self) -> usize {
        let n = self.linked.len() + 1;
        let addr: SocketAddr = format!("10.0.0.{}:5000", n + 1).parse().unwrap();
        let mut sfu = in_sfu(|| Sfu::new(SfuConfig::new(vec![addr]))).expect("sfu");
        for other in 0..n {
            in_sfu(|| sfu.add_link(LinkId(other as u32)));
            let other_sfu = self.sfu_at(other);
            in_sfu(|| other_sfu.add_link(LinkId(n as u32)));
        }
        self.linked.push((sfu, addr));
        self.relayed.push((0, 0));
        self.pump();
        n
    }

    /// SFU `n` (0: [`Net::sfu`]).
    pub fn sfu_at(&mut self, n: usize) -> &mut Sfu {
        match n {
            0 => &mut self.sfu,
            n => &mut self.linked[n - 1].0,
        }
    }

    fn sfu_addr_of(&self, n: usize) -> SocketAddr {
        match n {
            0 => self.sfu_addr,
            n => self.linked[n - 1].1,
        }
    }

    /// The SFU client `id` is a peer of.
    pub fn sfu_of(&mut self, id: &str) -> &mut Sfu {
        let n = self.client(id).on;
        self.sfu_at(n)
    }

    pub fn client(&self, id: &str) -> &Client {
        self.clients
            .iter()
            .find(|c| c.id.participant.as_str() == id)
            .expect("known client")
    }

    /// The peer of client `id`.
    pub fn peer(&self, id: &str) -> PeerId {
        self.client(id).id.clone()
    }

    pub fn client_mut(&mut self, id: &str) -> &mut Client {
        self.clients
            .iter_mut()
            .find(|c| c.id.participant.as_str() == id)
            .expect("known client")
    }

    /// Join a client to `room` and, if it publishes (or has nothing to wait for), have it
    /// offer first, as the browser does.
    pub fn join(&mut self, room: &str, id: &str, addr: &str, publish: &[MediaKind]) {
        self.join_via(room, id, addr, addr, publish);
    }

    /// [`Net::join`] as a peer of SFU `on` (see [`Net::add_linked_sfu`]).
    pub fn join_on(&mut self, on: usize, room: &str, id: &str, addr: &str, publish: &[MediaKind]) {
        self.join_full(on, room, id, addr, addr, publish);
    }

    /// Join from behind a NAT: the client advertises `addr`, the SFU sees `seen_as`.
    pub fn join_via(
        &mut self,
        room: &str,
        id: &str,
        addr: &str,
        seen_as: &str,
        publish: &[MediaKind],
    ) {
        self.join_full(0, room, id, addr, seen_as, publish);
    }

    fn join_full(
        &mut self,
        on: usize,
        room: &str,
        id: &str,
        addr: &str,
        seen_as: &str,
        publish: &[MediaKind],
    ) {
        let now = self.now;
        let mut client = Client::new(now, id, addr);
        client.seen_as = seen_as.parse().unwrap();
        client.id = PeerId::new(room, id);
        client.on = on;
        let pid = client.id.clone();
        self.clients.push(client);
        let sfu = self.sfu_at(on);
        in_sfu(|| sfu.add_peer(now, pid.clone())).expect("add peer");
        if !publish.is_empty() {
            // The browser offers at once. An offer the SFU made at `add_peer` (the room's
            // tracks) reaches it while its own is pending, and it ignores that one (glare: its
            // offer wins, and the SFU offers those tracks again after answering it).
            while let Some(e) = in_sfu(|| self.sfu_at(on).poll_event()) {
                self.events.push(e);
            }
            let offer = self.client_mut(id).make_offer(now, publish);
            let sfu = self.sfu_at(on);
            let answer = in_sfu(|| sfu.accept_offer(now, &pid, &offer)).expect("sfu answers");
            assert_answer_within_offer(&offer, &answer);
            self.client_mut(id).accept_answer(now, &answer);
        }
        self.pump();
    }

    /// Join a publisher of audio and a simulcast camera (one RTP stream per `(rid, size)`
    /// layer, as a browser with several encodings sends), offering first.
    pub fn join_simulcast(
        &mut self,
        room: &str,
        id: &str,
        addr: &str,
        layers: &[(&'static str, (u16, u16))],
    ) {
        let now = self.now;
        let mut client = Client::new(now, id, addr);
        client.simulcast = layers.to_vec();
        client.id = PeerId::new(room, id);
        let pid = client.id.clone();
        self.clients.push(client);
        in_sfu(|| self.sfu.add_peer(now, pid.clone())).expect("add peer");
        let offer = self
            .client_mut(id)
            .make_offer(now, &[MediaKind::Audio, MediaKind::Video]);
        let answer = in_sfu(|| self.sfu.accept_offer(now, &pid, &offer)).expect("answer");
        self.client_mut(id).accept_answer(now, &answer);
        self.pump();
    }

    pub fn allow(&mut self, id: &str, audio: bool, video: bool) {
        let now = self.now;
        let peer = self.peer(id);
        let sfu = self.sfu_of(id);
        in_sfu(|| sfu.set_publish_permission(now, &peer, audio, video)).expect("permission");
        self.pump();
    }

    fn lose(&mut self, destination: SocketAddr, len: usize) -> bool {
        let Some((addr, n)) = self.lossy_link else {
            return false;
        };
        if addr != destination || len < 500 {
            return false;
        }
        self.large_seen += 1;
        let drop = self.large_seen.is_multiple_of(n);
        self.dropped += drop as usize;
        drop
    }

    /// Move datagrams and signalling until nothing moves.
    pub fn pump(&mut self) {
        let now = self.now;
        loop {
            let mut moved = false;
            self.begin_batches();
            for i in 0..self.clients.len() {
                while let Some((dest, bytes)) = self.clients[i].outbox.pop_front() {
                    moved = true;
                    let seen_as = self.clients[i].seen_as;
                    if let Some((_, held)) =
                        self.held_uplink.as_mut().filter(|(a, _)| *a == seen_as)
                    {
                        held.push(bytes);
                        continue;
                    }
                    let on = (0..=self.linked.len()).find(|&n| self.sfu_addr_of(n) == dest);
                    if let Some(on) = on
                        && !self.lose(dest, bytes.len())
                    {
                        let sfu = self.sfu_at(on);
                        in_sfu(|| sfu.handle_receive(now, seen_as, dest, &bytes));
                    }
                }
            }
            self.end_batches(now);
            for on in 0..=self.linked.len() {
                moved |= self.pump_sfu(now, on);
            }
            while let Some((from, bytes)) = self.bottleneck.as_mut().and_then(|b| b.arrived(now)) {
                moved = true;
                let to = self.bottleneck.as_ref().map(|b| b.to);
                if let Some(c) = self.clients.iter_mut().find(|c| Some(c.seen_as) == to) {
                    c.receive(now, from, &bytes);
                }
            }
            if !moved {
                return;
            }
        }
    }

    /// With [`Net::batch`], every SFU starts a batch.
    fn begin_batches(&mut self) {
        if !self.batch {
            return;
        }
        for on in 0..=self.linked.len() {
            let sfu = self.sfu_at(on);
            in_sfu(|| sfu.begin_batch());
        }
    }

    /// Every SFU ends its batch (nothing to do without one).
    fn end_batches(&mut self, now: Instant) {
        for on in 0..=self.linked.len() {
            let sfu = self.sfu_at(on);
            in_sfu(|| sfu.end_batch(now));
        }
    }

    /// Move what SFU `on` produced: datagrams, events (answering offers), relayed messages.
    fn pump_sfu(&mut self, now: Instant, on: usize) -> bool {
        let mut moved = false;
        let sfu_addr = self.sfu_addr_of(on);
        while let Some(t) = in_sfu(|| self.sfu_at(on).poll_transmit()) {
            moved = true;
            assert_eq!(t.source, sfu_addr);
            if let Some((_, sent)) = self.tap.as_mut().filter(|(a, _)| *a == t.destination) {
                sent.push(t.contents.to_vec());
            }
            if self.lose(t.destination, t.contents.len()) {
                continue;
            }
            if let Some(b) = self.bottleneck.as_mut().filter(|b| b.to == t.destination) {
                b.enqueue(now, sfu_addr, t.contents.to_vec());
                continue;
            }
            if let Some(c) = self.clients.iter_mut().find(|c| c.seen_as == t.destination) {
                c.receive(now, sfu_addr, &t.contents);
            }
        }
        while let Some(e) = in_sfu(|| self.sfu_at(on).poll_event()) {
            moved = true;
            if let (MediaEvent::Offer { peer, sdp, .. }, true) = (&e, self.auto_answer) {
                let c = self
                    .clients
                    .iter_mut()
                    .find(|c| &c.id == peer && c.on == on)
                    .expect("offer for a known client");
                let answer = c.accept_offer(now, sdp);
                let sfu = self.sfu_at(on);
                in_sfu(|| sfu.accept_answer(now, peer, &answer)).expect("sfu accepts answer");
            }
            self.events.push(e);
        }
        // What SFU `on` relayed this round is one batch for each SFU it goes to.
        self.begin_batches();
        while let Some((to, message)) = in_sfu(|| self.sfu_at(on).poll_relay()) {
            moved = true;
            let seen = &mut self.relayed[on];
            if message.is_media() {
                seen.0 += 1;
            } else {
                seen.1 += 1;
            }
            if self.relay_off && message.is_media() {
                continue;
            }
            if let Some(held) = self.held_relays.as_mut().filter(|_| message.is_media()) {
                held.push((to.0 as usize, LinkId(on as u32), message));
                continue;
            }
            let sfu = self.sfu_at(to.0 as usize);
            in_sfu(|| sfu.handle_relay(now, LinkId(on as u32), message));
        }
        self.end_batches(now);
        moved
    }

    /// Run the simulated clock forward.
    pub fn run_for(&mut self, duration: Duration) {
        let end = self.now + duration;
        while self.now < end {
            self.now += self.step;
            let now = self.now;
            for c in &mut self.clients {
                c.tick(now);
            }
            for on in 0..=self.linked.len() {
                let sfu = self.sfu_at(on);
                if in_sfu(|| sfu.poll_timeout()).is_some_and(|t| t <= now) {
                    in_sfu(|| sfu.handle_timeout(now));
                }
            }
            self.pump();
        }
    }

    pub fn events_for(&self, id: &str) -> Vec<&MediaEvent> {
        self.events
            .iter()
            .filter(|e| match e {
                MediaEvent::Offer { peer, .. }
                | MediaEvent::Connected { peer }
                | MediaEvent::Disconnected { peer }
                | MediaEvent::TrackPublished { peer, .. }
                | MediaEvent::TrackUnpublished { peer, .. } => peer.participant.as_str() == id,
                MediaEvent::ActiveSpeaker { .. } | MediaEvent::NetworkQuality { .. } => false,
            })
            .collect()
    }

    /// The network quality changes reported so far for this participant, in order.
    pub fn qualities(&self, id: &str) -> Vec<lectern_sfu::NetworkQuality> {
        self.events
            .iter()
            .filter_map(|e| match e {
                MediaEvent::NetworkQuality { changes, .. } => Some(changes),
                _ => None,
            })
            .flatten()
            .filter(|(p, _)| p.as_str() == id)
            .map(|(_, q)| *q)
            .collect()
    }

    /// The active-speaker events so far: the participant named by each, in order.
    pub fn speakers(&self) -> Vec<Option<&str>> {
        self.events
            .iter()
            .filter_map(|e| match e {
                MediaEvent::ActiveSpeaker { participant, .. } => {
                    Some(participant.as_ref().map(|p| p.as_str()))
                }
                _ => None,
            })
            .collect()
    }

    /// The mid of the last video offered to `id`.
    pub fn video_mid(&self, id: &str) -> String {
        self.events_for(id)
            .iter()
            .filter_map(|e| match e {
                MediaEvent::Offer { tracks, .. } => Some(tracks),
                _ => None,
            })
            .flatten()
            .filter(|t| t.kind == lectern_sfu::MediaKind::Video)
            .map(|t| t.mid.clone())
            .next_back()
            .expect("a video was offered")
    }

    /// `id` shows its video at `width` x `height` (what the browser client reports).
    pub fn view(&mut self, id: &str, width: u32, height: u32) {
        let (now, mid) = (self.now, self.video_mid(id));
        let peer = self.peer(id);
        let sfu = self.sfu_of(id);
        in_sfu(|| sfu.set_view_size(now, &peer, &mid, width, height)).expect("view size");
        self.pump();
    }

    /// The SDP of the last offer the SFU made to `id`.
    pub fn last_offer(&self, id: &str) -> String {
        self.events_for(id)
            .into_iter()
            .rev()
            .find_map(|e| match e {
                MediaEvent::Offer { sdp, .. } => Some(sdp.clone()),
                _ => None,
            })
            .expect("an offer")
    }

    pub fn offers_for(&self, id: &str) -> usize {
        self.events_for(id)
            .iter()
            .filter(|e| matches!(e, MediaEvent::Offer { .. }))
            .count()
    }

    /// Run until `cond` holds, or fail after `limit` of simulated time.
    pub fn run_until(&mut self, limit: Duration, what: &str, mut cond: impl FnMut(&Net) -> bool) {
        let end = self.now + limit;
        while !cond(self) {
            assert!(self.now < end, "timed out (simulated) waiting for: {what}");
            self.run_for(self.step);
        }
    }
}

/// The m-line sections of an SDP, each from its `m=` line to the next.
pub fn sections(sdp: &str) -> Vec<&str> {
    let starts: Vec<usize> = sdp.match_indices("\nm=").map(|(i, _)| i + 1).collect();
    let ends = starts.iter().skip(1).copied().chain([sdp.len()]);
    starts.iter().zip(ends).map(|(&s, e)| &sdp[s..e]).collect()
}

/// The payload types an m-line section lists on its `m=` line.
pub fn payload_types(section: &str) -> Vec<&str> {
    let m_line = section.lines().next().unwrap_or_default();
    m_line.split(' ').skip(3).collect()
}

/// An answer lists no payload type that the m-line it answers did not offer.
pub fn assert_answer_within_offer(offer: &str, answer: &str) {
    let (offered, answered) = (sections(offer), sections(answer));
    assert_eq!(
        offered.len(),
        answered.len(),
        "one answer m-line per offered one"
    );
    for (o, a) in offered.iter().zip(&answered) {
        let (o_pts, a_pts) = (payload_types(o), payload_types(a));
        assert!(
            a_pts.iter().all(|pt| o_pts.contains(pt)),
            "answered payload types {a_pts:?}, offered {o_pts:?}"
        );
    }
}
