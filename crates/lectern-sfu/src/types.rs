//! Small public types shared by the core and the driver.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

macro_rules! opaque_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Arc<str>);

        impl $name {
            pub fn new(id: impl Into<Arc<str>>) -> Self {
                Self(id.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self(id.into())
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                Self(id.into())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), &*self.0)
            }
        }
    };
}

opaque_id!(
    /// A participant as the room knows it. Opaque to the SFU; one peer connection each.
    ParticipantId
);
opaque_id!(
    /// A room. Peers forward media only to peers of the same room.
    RoomId
);

/// A peer connection as the signalling layer names it: one participant of one room. The same
/// participant in two rooms placed on one worker has two peers. Used at the API boundary and in
/// events only; inside, the SFU addresses peers by its own small handle.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId {
    pub room: RoomId,
    pub participant: ParticipantId,
}

impl PeerId {
    pub fn new(room: impl Into<RoomId>, participant: impl Into<ParticipantId>) -> Self {
        PeerId {
            room: room.into(),
            participant: participant.into(),
        }
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "participant {} of room {}", self.participant, self.room)
    }
}

/// Audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    Audio,
    Video,
}

impl MediaKind {
    pub(crate) fn from_str0m(kind: str0m::media::MediaKind) -> Self {
        match kind {
            str0m::media::MediaKind::Audio => MediaKind::Audio,
            str0m::media::MediaKind::Video => MediaKind::Video,
        }
    }

    pub(crate) fn to_str0m(self) -> str0m::media::MediaKind {
        match self {
            MediaKind::Audio => str0m::media::MediaKind::Audio,
            MediaKind::Video => str0m::media::MediaKind::Video,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
        }
    }
}

/// What a participant may publish, as set by the room (`MediaIntent::Publish`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PublishPermission {
    pub audio: bool,
    pub video: bool,
}

impl PublishPermission {
    pub const NONE: PublishPermission = PublishPermission {
        audio: false,
        video: false,
    };

    pub fn allows(self, kind: MediaKind) -> bool {
        match kind {
            MediaKind::Audio => self.audio,
            MediaKind::Video => self.video,
        }
    }
}

/// One datagram to send. `source` is the local socket address it must leave from (one of
/// [`crate::SfuConfig::sockets`]); `contents` is already encrypted.
#[derive(Clone, PartialEq, Eq)]
pub struct Transmit {
    pub source: SocketAddr,
    pub destination: SocketAddr,
    pub contents: Vec<u8>,
}

impl fmt::Debug for Transmit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Addresses are personal data: keep them out of casual debug output.
        f.debug_struct("Transmit")
            .field("len", &self.contents.len())
            .finish_non_exhaustive()
    }
}

/// A send-only m-line the SFU put in an offer to a subscriber: which publisher's track the
/// browser will receive on `mid`. The signalling layer passes this to the client with the offer
/// so the UI knows whose video is whose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedTrack {
    pub mid: String,
    /// The peer whose track this is (always of the subscriber's room).
    pub publisher: PeerId,
    pub kind: MediaKind,
}

/// Something the signalling layer must act on. Drained with [`crate::Sfu::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEvent {
    /// The SFU needs to (re)negotiate with this participant: send `sdp` (an offer) to the
    /// browser and pass its answer to [`crate::Sfu::accept_answer`]. `tracks` lists the m-lines
    /// added by this offer.
    Offer {
        peer: PeerId,
        sdp: String,
        tracks: Vec<OfferedTrack>,
    },
    /// ICE and DTLS are up: media can flow to and from this peer.
    Connected { peer: PeerId },
    /// The media path to this peer is lost (ICE consent failed, DTLS closed or a fatal
    /// protocol error). The driver may wait for an ICE restart (a new offer) or remove the peer.
    Disconnected { peer: PeerId },
    /// The participant's browser offered a track (camera, microphone or screen). Whether it is
    /// forwarded depends on the publish permission.
    TrackPublished {
        peer: PeerId,
        mid: String,
        kind: MediaKind,
    },
    /// The participant stopped sending a track (m-line stopped or made receive-only).
    TrackUnpublished {
        peer: PeerId,
        mid: String,
        kind: MediaKind,
    },
    /// The room's active speaker changed (see the crate docs, "Active speaker"): `Some` names
    /// the publisher (a participant of `room`) who now speaks most, `None` means the last
    /// speaker left, stopped their microphone or may no longer be heard.
    ActiveSpeaker {
        room: RoomId,
        participant: Option<ParticipantId>,
    },
    /// The network quality of some of the room's peers changed (see the crate docs, "Network
    /// quality"): each listed participant's new quality. Checked every
    /// [`crate::QUALITY_INTERVAL`]; a peer that lost its connection becomes `Unknown`. A
    /// removed peer is not reported.
    NetworkQuality {
        room: RoomId,
        changes: Vec<(ParticipantId, crate::NetworkQuality)>,
    },
}

/// Counters for metrics and tests. Monotonic since the [`crate::Sfu`] was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SfuStats {
    /// Peers currently on this SFU.
    pub peers: usize,
    /// RTP packets received from publishers.
    pub rtp_received: u64,
    /// RTP packets written to subscribers (one per subscriber).
    pub rtp_forwarded: u64,
    /// RTP packets dropped because the publisher may not publish that kind.
    pub rtp_denied: u64,
    /// Video packets not sent to a subscriber because it waits for a keyframe (new
    /// subscription or resumed forwarding).
    pub rtp_awaiting_keyframe: u64,
    /// Keyframe requests (PLI/FIR) sent to publishers, after coalescing.
    pub keyframe_requests_sent: u64,
    /// Keyframe requests suppressed (coalesced into one already sent or scheduled).
    pub keyframe_requests_coalesced: u64,
    /// Datagrams that no peer accepted.
    pub datagrams_unmatched: u64,
    /// Active-speaker changes reported ([`MediaEvent::ActiveSpeaker`]).
    pub speaker_changes: u64,
    /// Datagrams that matched neither the ufrag map (STUN) nor the address map and were
    /// offered to each peer in turn (`Rtc::accepts`).
    pub demux_scans: u64,
    /// Times a subscriber was switched to another simulcast layer of a video.
    pub layer_switches: u64,
    /// Times a subscriber's link was found congested and its video capped (see
    /// [`crate::CONGESTED_LOSS`]).
    pub downlink_cuts: u64,
    /// Network quality changes reported ([`MediaEvent::NetworkQuality`], per peer).
    pub quality_changes: u64,
    /// RTP packets handed to linked SFUs (once per packet and SFU that joined its room).
    pub rtp_relayed: u64,
    /// RTP packets relayed here by linked SFUs, for this SFU's subscribers.
    pub rtp_relay_received: u64,
    /// Datagrams the media worker's socket sent (set by the worker, not the `Sfu`).
    pub udp_sent: u64,
    /// Datagrams the kernel refused for their destination (no route, bad address); skipped.
    pub udp_send_failed: u64,
    /// Datagrams dropped because the worker's send queue was full while its socket's send
    /// buffer was (see `udp.rs`).
    pub udp_send_dropped: u64,
    /// `sendmmsg` calls of the worker.
    pub udp_send_calls: u64,
    /// `recvmmsg` calls of the worker.
    pub udp_recv_calls: u64,
    /// Datagrams the kernel dropped before the worker read them, its socket's receive buffer
    /// full: the worker fell behind (short of CPU). Connectivity checks of joining peers are
    /// among them, so joins fail while this grows.
    pub udp_recv_overflow: u64,
    /// Publishers' RTP packets not sent on because they were stale: read from the socket
    /// after waiting longer than `shed::STALE_AFTER` (the worker fell behind), or relayed
    /// from a linked worker that long after it arrived. Taken in (decrypted, recorded), but
    /// neither delivered nor relayed; see `shed.rs`.
    pub rtp_shed: u64,
    /// Times a subscriber's `Rtc` was handed a timeout and drained to send the RTP packets
    /// written to it: once per packet, or once per subscriber and batch of received packets
    /// (see [`Sfu::begin_batch`](crate::Sfu::begin_batch)). `rtp_forwarded` over this is the
    /// mean number of packets sent per pass.
    pub subscriber_sends: u64,
}

/// Sums counters of several SFUs (one per media worker). Destructured, so a new field cannot
/// be forgotten here.
impl std::ops::AddAssign for SfuStats {
    fn add_assign(&mut self, other: SfuStats) {
        let SfuStats {
            peers,
            rtp_received,
            rtp_forwarded,
            rtp_denied,
            rtp_awaiting_keyframe,
            keyframe_requests_sent,
            keyframe_requests_coalesced,
            datagrams_unmatched,
            speaker_changes,
            demux_scans,
            layer_switches,
            downlink_cuts,
            quality_changes,
            rtp_relayed,
            rtp_relay_received,
            udp_sent,
            udp_send_failed,
            udp_send_dropped,
            udp_send_calls,
            udp_recv_calls,
            udp_recv_overflow,
            rtp_shed,
            subscriber_sends,
        } = other;
        self.peers += peers;
        self.rtp_received += rtp_received;
        self.rtp_forwarded += rtp_forwarded;
        self.rtp_denied += rtp_denied;
        self.rtp_awaiting_keyframe += rtp_awaiting_keyframe;
        self.keyframe_requests_sent += keyframe_requests_sent;
        self.keyframe_requests_coalesced += keyframe_requests_coalesced;
        self.datagrams_unmatched += datagrams_unmatched;
        self.speaker_changes += speaker_changes;
        self.demux_scans += demux_scans;
        self.layer_switches += layer_switches;
        self.downlink_cuts += downlink_cuts;
        self.quality_changes += quality_changes;
        self.rtp_relayed += rtp_relayed;
        self.rtp_relay_received += rtp_relay_received;
        self.udp_sent += udp_sent;
        self.udp_send_failed += udp_send_failed;
        self.udp_send_dropped += udp_send_dropped;
        self.udp_send_calls += udp_send_calls;
        self.udp_recv_calls += udp_recv_calls;
        self.udp_recv_overflow += udp_recv_overflow;
        self.rtp_shed += rtp_shed;
        self.subscriber_sends += subscriber_sends;
    }
}
