//! Lectern's media plane: a selective forwarding unit (SFU) on [str0m], sans-IO WebRTC.
//!
//! Every participant has one bundled peer connection (one str0m `Rtc`) to the server. A
//! publisher's RTP packets are forwarded, as they are, to every other peer of its room; the
//! room decides who may publish. Two layers:
//!
//! - [`Sfu`], the sans-IO core. It owns the peers of the rooms placed on one media worker. It
//!   does no I/O and never reads the clock: datagrams and `now` go in, datagrams and events
//!   come out. All of its tests run in memory on a simulated clock.
//! - [`MediaWorker`], the thin driver: one OS thread, one UDP socket, one `Sfu`, controlled by
//!   [`Command`]s and reporting [`WorkerEvent`]s.
//!
//! # Contract of [`Sfu`]
//!
//! Inputs (each takes `now`; pass a monotonic `Instant`, never older than the last one):
//! - [`Sfu::add_peer`] / [`Sfu::remove_peer`]: a peer joins or leaves (a [`PeerId`], one
//!   participant of one room, names it in every call and event; the room's
//!   `MediaIntent::Stop` maps to `remove_peer`).
//! - [`Sfu::set_publish_permission`]: the room's `MediaIntent::Publish { audio, video }`.
//!   Peers start with nothing allowed.
//! - [`Sfu::accept_offer`] (returns the answer), [`Sfu::accept_answer`],
//!   [`Sfu::add_remote_candidate`]: signalling relayed from the room's WebSocket.
//! - [`Sfu::handle_receive`]: a UDP datagram from `source` to our socket `destination`.
//! - [`Sfu::handle_timeout`]: when [`Sfu::poll_timeout`] says so.
//! - [`Sfu::add_link`] / [`Sfu::handle_relay`]: another `Sfu` to relay with, and a message
//!   from it (see "Relaying" below).
//! - [`Sfu::begin_batch`] / [`Sfu::end_batch`] around a run of `handle_receive` and
//!   `handle_relay` calls (what one read of the socket returned): RTP for a subscriber is
//!   sent at the end, in one pass through its `Rtc` instead of one per packet.
//!
//! After every input, drain [`Sfu::poll_transmit`] (send each datagram from its `source`
//! socket), [`Sfu::poll_event`] (act on each [`MediaEvent`]) and, when linked,
//! [`Sfu::poll_relay`] (hand each [`RelayMessage`] to the `Sfu` its [`LinkId`] names), in that
//! order. Errors are
//! [`SfuError`]s with stable [`SfuError::code`]s; after a refused call the peer stays usable.
//!
//! ## Signalling and renegotiation
//!
//! - The browser offers what it publishes (camera, microphone, screen: send-only m-lines) and
//!   the SFU answers ([`Sfu::accept_offer`]). Later offers (a track added or stopped, an ICE
//!   restart) are accepted the same way. A later offer must keep the header extension ids
//!   and payload types agreed before (str0m cannot change them once negotiated): one that
//!   renumbers them is refused with [`SfuError::RenegotiationUnsupported`] before str0m sees
//!   it, and the peer goes on as before.
//! - The SFU offers what a peer receives: one send-only m-line per published track of every
//!   other peer of the room ([`MediaEvent::Offer`], with the [`OfferedTrack`]s it adds so the
//!   client knows whose media each `mid` carries; the SDP stream id, `p<n>` with the SFU's
//!   number for the publisher's peer, groups a publisher's audio and video for lip sync and
//!   carries no name or room). The browser
//!   answers ([`Sfu::accept_answer`]). At most one SFU offer is in flight per peer; changes
//!   made meanwhile, and all changes made by one call, go into the next offer.
//! - m-lines are reused: when a forwarded track ends, its m-line is made inactive (not
//!   stopped) and the next track of that kind offered to the peer takes it up again (its
//!   `OfferedTrack` names the new publisher; a line that carried the same publisher's track
//!   is preferred, so the stream id stays right in the common case). A peer has at most as
//!   many m-lines as tracks it received at once: stopped lines stay in a browser's SDP for
//!   good, which grew past the signalling frame limit after some 20 stage handovers.
//! - Glare: the browser's offer wins. A browser that has its own offer pending ignores an
//!   SFU offer; the SFU drops its pending offer when the browser's arrives and offers again
//!   right after answering. The answer returned by `accept_offer` must reach the browser
//!   before any event polled after that call (the worker guarantees this order).
//! - A track is offered to subscribers only once its publisher is allowed that kind (no SDP
//!   for the cameras of 300 students who may not publish). Revoking stops forwarding on the
//!   next packet without renegotiating; allowing again resumes on the same m-lines. When a
//!   publisher leaves or stops a track, subscribers get an offer stopping the m-line.
//! - A new subscriber, or one whose track resumes, is sent no video until a keyframe, and
//!   the publisher is asked for one (PLI, or FIR when a subscriber asked for FIR). Requests
//!   to one publisher track are coalesced to one per
//!   [`SfuConfig::keyframe_request_interval`] (300 ms); those inside the interval are sent
//!   as one when it ends. Subscribers' own PLI/FIR are relayed the same way.
//!
//! ## Network
//!
//! - One host candidate per configured socket, advertised with the socket's IP or, behind a
//!   1:1 NAT, with each of [`SfuConfig::public_ips`] (same port). Every bundled m-line of an
//!   SDP the SFU sends carries them (str0m writes them into the first only; some clients read
//!   another).
//! - The SFU is a full ICE agent (not ICE-lite: with ICE-lite its DTLS waited for the browser
//!   to nominate on a later check, ~48 ms with Chromium; see `ICE_LITE` in `sfu/peers.rs`). A
//!   check from any address that authenticates (including addresses no SDP or candidate
//!   mentioned: peer-reflexive) is answered and checked back at once; controlling when the SFU
//!   offers (a student joining), it nominates the pair itself. Trickled browser candidates are
//!   accepted but not needed.
//! - Demultiplexing on the shared port: STUN binding requests by the ufrag in `USERNAME` (a
//!   map), everything else by remote address (a map filled by those checks). Only datagrams
//!   matching neither ask each peer in turn, and a match is remembered
//!   ([`SfuStats::demux_scans`] counts them; zero in normal operation).
//!
//! ## Forwarding
//!
//! str0m runs in RTP mode: an incoming packet is decrypted once into one shared payload
//! (`Arc<[u8]>`); each subscriber gets a clone of that `Arc` plus its own header (payload
//! type mapped by codec, sequence number rewritten so each subscriber starts below 2^16 and
//! sees no gap across pauses; str0m sets SSRC, MID and transport-cc and encrypts). This crate
//! allocates nothing per forwarded packet; str0m allocates the encrypted datagram. NACKs from
//! subscribers are answered from str0m's per-stream RTX cache (on the RTX SSRC); the SFU
//! NACKs publishers for packets lost on their leg and forwards the repaired packets.
//! Each packet goes through two steps: it is taken in once (routed to its track and layer,
//! checked against the publisher's permission, counted for layer choice and the active
//! speaker), then delivered to each subscriber. A consumer fed once per packet, such as a
//! recorder, plugs in between the two (see `sfu/ingest.rs`).
//! Codecs negotiated: Opus and VP8 (every browser decodes them). SRTP: str0m's DTLS (dimpl)
//! prefers `AEAD_AES_256_GCM`, then `AEAD_AES_128_GCM`, then `AES128_CM_SHA1_80`, in both
//! DTLS roles; nothing to configure.
//!
//! ## Relaying (a room over several SFUs)
//!
//! A room's peers may be spread over several linked `Sfu`s (the server's media workers, one
//! per core). Each packet is taken in once, on the SFU of its publisher, and handed once to
//! each other SFU that has peers of the room ([`RelayMessage`], payload shared), which
//! delivers it to its own subscribers as if the publisher were local: it keeps a *mirror* of
//! each remote publisher, offers its tracks to its peers, chooses their simulcast layers,
//! rewrites their sequence numbers and sends keyframe requests back to the publisher's SFU.
//! SFUs tell each other when they get their first and lose their last peer of a room, and the
//! publisher's SFU sends the room's track list; nothing per subscriber crosses. Recording,
//! permission checks and loss repair stay with the publisher's SFU. Details in `sfu/relay.rs`.
//! The messages are in-process values; a relay between nodes would carry the same ones over
//! the network.
//!
//! ## Active speaker
//!
//! From the audio level header extension of the audio the SFU forwards (never decoded; a
//! muted publisher does not count): every [`SPEAKER_INTERVAL`] a room's publisher with the
//! most speech packets becomes its speaker ([`MediaEvent::ActiveSpeaker`]), with a margin
//! against flicker; silence keeps the last speaker; a speaker who leaves, stops the microphone
//! or is muted is cleared at once. Details and thresholds in the `speaker` module. Over
//! linked SFUs each one decides from the publishers it sees (its own and mirrored ones).
//!
//! ## Network quality
//!
//! Each peer's str0m statistics (every 500 ms: loss in receiver reports both ways and in
//! transport-wide feedback, round-trip times) are folded into a window; every
//! [`QUALITY_INTERVAL`] (2 s) the worst of the window decides the peer's quality (poor from
//! 10% loss or 400 ms RTT, fair from 3% or 200 ms, else good; a window without measurements
//! keeps the last quality; no connection is unknown) and the changes of each room are
//! reported in one [`MediaEvent::NetworkQuality`]. Details in the `quality` module.
//!
//! ## Subscribers on poor links
//!
//! The same statistics decide, per subscriber, whether the video sent to it fits its link:
//! congested from [`CONGESTED_LOSS`] (8%) loss (the share str0m resent on its NACKs, or its
//! receiver reports' fraction lost) or [`CONGESTED_RTT_GROWTH`] (250 ms) of round-trip time over
//! the lowest seen. Then each simulcast video it gets is capped one layer down (by picture
//! height), the layer above the cap is not sent one packet more (the queue in front of the link
//! drains) and the smaller layer's keyframe is asked for at once. The cap holds [`FIRST_HOLD`]
//! (20 s), then the larger layer is tried again (switched at its keyframe, as any switch up);
//! congestion within [`TRIAL`] of that doubles the hold, up to [`MAX_HOLD`]. A subscriber that
//! loses nothing and whose round trip does not grow is never moved. Receivers' REMB estimates
//! are not used (see `sfu/downlink.rs`). Details in the `downlink` module.
//!
//! ## Crypto backend
//!
//! str0m 0.25 with `default-features = false` and only `aws-lc-rs`. It is the only backend of
//! 0.25 that resolves from crates.io: 0.25 requires `str0m-rust-crypto` and `str0m-openssl`
//! 0.7, which are not published (0.6 is the newest; those pair with str0m 0.24). aws-lc-rs
//! builds offline from the crate (C, built with `cc`; no cmake or nasm needed on Linux
//! x86-64), costs about two minutes once in a cold build, and has the fastest AES-GCM, which
//! matters at one decryption per received packet and one encryption per subscriber.
//!
//! # Threading
//!
//! An `Sfu` has exactly one owner and no locks; it is `Send`, not shared. The server runs a
//! small fixed set of [`MediaWorker`]s (one per core by default), each on its own thread with
//! its own UDP socket (one port per worker) and its own `Sfu`. With relaying, a room's peers
//! may be on any of the workers (see "Relaying"). The worker blocks in `recv_from` with a read timeout set to the next timer; a
//! [`MediaWorkerHandle`] queues commands on a channel and wakes the worker with a one-byte
//! datagram from a loopback waker socket. Events are passed to a callback on the worker
//! thread, in order, which must not block (forward them into a channel). No tokio here.
//!
//! # Not done yet
//!
//! - SVC (temporal/spatial layers inside one stream); simulcast is handled per stream
//!   (`layers`): a subscriber gets one whole layer, never a lower frame rate of one.
//! - Bandwidth: str0m's send-side estimator (TWCC) is not enabled. Tried with simulcast: in
//!   the simulated network of the tests its estimate fell steadily from the start value to
//!   ~150 kbit/s with no loss or delay, and it paces video when on. So layers are chosen from
//!   the size a subscriber shows the video at (`set_view_size`), capped one layer down while
//!   its link is found congested from loss and round trip (see "Subscribers on poor links");
//!   there is no estimate of how much a link takes, so going back up is a timed try. No
//!   pausing of video when even the smallest layer does not fit. Transport-cc is negotiated
//!   only on the m-lines the SFU receives on (see `sdp`): str0m keeps a fixed 1,000-packet
//!   record (~88 KiB per peer) of what it sends with it. Turning the estimator on for
//!   subscribers needs it back there, and that record made configurable upstream to stay
//!   within the memory budget.
//! - TURN (relay candidates), ICE over TCP, several sockets per worker; IPv6 is untested.
//! - Batching inside str0m: each forwarded packet advances that subscriber's str0m clock once
//!   and str0m allocates each datagram. The worker's socket I/O is batched (`recvmmsg`,
//!   `sendmmsg`: see `udp.rs`); UDP GSO is not used (it batches segments to one destination).
//!   [`Sfu::poll_timeout`] scans all peers (a timer heap would not).
//! - Codecs beyond Opus and VP8 (keyframe gating reads the VP8 descriptor only); RED/FEC;
//!   an RTX cache sized to the stream's rate (now 3 s, at most 152 video packets per stream:
//!   `RTX_PACKETS_VIDEO`).
//! - Subscription control (everyone in a room receives every allowed track), removing the
//!   m-lines of a long-revoked track, per-peer stats export.
//! - Peers whose connection died stay until the driver calls [`Sfu::remove_peer`] after
//!   [`MediaEvent::Disconnected`]; a peer that never connects is not reported (the server
//!   times out joins). ICE restarts are accepted but untested.
//! - One DTLS certificate per `Sfu`, generated at start; no rotation. Randomness (ICE
//!   credentials, SSRCs, DTLS) comes from str0m, not from the caller.
//! - Data channels offered by a browser are answered but ignored.
//!
//! [str0m]: https://github.com/algesten/str0m

mod downlink;
mod error;
mod layers;
mod peer;
mod quality;
mod sdp;
mod sfu;
pub mod shed;
mod speaker;
mod types;
mod udp;
mod worker;

pub use downlink::{CONGESTED_LOSS, CONGESTED_RTT_GROWTH, FIRST_HOLD, MAX_HOLD, SETTLE, TRIAL};
pub use error::SfuError;
pub use quality::{FAIR_LOSS, FAIR_RTT, NetworkQuality, POOR_LOSS, POOR_RTT, QUALITY_INTERVAL};
pub use sfu::RecordedFrame;
pub use sfu::{DEFAULT_KEYFRAME_REQUEST_INTERVAL, LinkId, RelayMessage, Sfu, SfuConfig};
pub use speaker::{MIN_SPEECH_PACKETS, SPEAKER_INTERVAL, SPEECH_LEVEL};
pub use types::{
    MediaEvent, MediaKind, OfferedTrack, ParticipantId, PeerId, PublishPermission, RoomId,
    SfuStats, Transmit,
};
pub use worker::{
    BoxedRecordSink, Command, CommandKind, MediaWorker, MediaWorkerHandle, RecordSink,
    SOCKET_BUFFER_BYTES, WorkerConfig, WorkerEvent,
};
