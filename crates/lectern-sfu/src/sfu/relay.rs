//! Relaying between SFUs: a room's peers spread over several `Sfu`s (media workers), each
//! packet taken in once where its publisher is and handed once to each other SFU that has
//! peers of the room.
//!
//! Two SFUs that relay to each other are *linked* ([`Sfu::add_link`], a [`LinkId`] naming the
//! other one). Everything between them is a [`RelayMessage`], taken out of one with
//! [`Sfu::poll_relay`] and put into the other with [`Sfu::handle_relay`], in order (one FIFO
//! per direction); the driver only carries them. Nothing here assumes both are in one
//! process, but only the in-process form exists (messages are not serialized).
//!
//! - **Interest.** When an SFU gets its first peer of a room it tells every link `Join`, and
//!   `Leave` when its last one goes. An SFU relays a room's media only to the links that
//!   joined it.
//! - **Tracks.** The publishing SFU sends a joined link the room's announced tracks (those a
//!   subscriber is offered) as a whole list, on `Join` and whenever the list changes. The
//!   receiving SFU keeps a *mirror* of each remote publisher: a peer of the room whose
//!   tracks its own peers subscribe to as to any local publisher's (m-lines offered the same
//!   way, the `OfferedTrack` naming the real publisher), but which has no connection and
//!   never subscribes. A list is the whole truth: tracks not in it are stopped, so a message
//!   lost to a `Leave`/`Join` race cannot leave a stale track.
//! - **Media.** After ingest (`ingest.rs`) the publisher's SFU hands the `Ingested` packet,
//!   payload `Arc` and all, once to each joined link; the receiving SFU updates the mirror's
//!   layer (rate, size, activity) and speech levels as its own ingest would, then runs its
//!   deliver step for its subscribers: layer choice, pauses, sequence and timestamp rewrites
//!   and keyframe gating are the receiving SFU's own. Packets are never relayed onward.
//! - **Keyframes.** A keyframe request for a mirror's track (a new subscriber, a layer switch,
//!   a subscriber's PLI/FIR) is coalesced there as for a local track, then sent to the
//!   publisher's SFU, where it is coalesced again with its own and sent to the publisher.
//! - **What stays at the origin.** Permission checks, loss repair (NACK), recording (only the
//!   publisher's SFU records, so every packet is recorded once) and the publisher's network
//!   quality. The active speaker is decided by each SFU over the publishers it sees (local
//!   and mirrored), so every SFU with peers of a room reports it.

use std::time::Instant;

use str0m::media::{KeyframeRequestKind, Mid};
use str0m::rtp::Ssrc;
use tracing::debug;

use super::Sfu;
use super::ingest::Ingested;
use crate::layers::{self, LAYER_CHECK_INTERVAL, LAYER_IDLE, Layer};
use crate::peer::{MAX_LAYERS, Mirror, Peer, PeerKey, TrackId, TrackIn};
use crate::speaker::SPEAKER_INTERVAL;
use crate::{MediaKind, PeerId, PublishPermission, RoomId};

/// Names another SFU this one relays with (another media worker); chosen by the driver, the
/// same on both sides of every message between two SFUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkId(pub u32);

impl std::fmt::Display for LinkId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One message from an SFU to a linked one (see [`Sfu::poll_relay`]). Opaque: the driver
/// carries it as it is. Cheap to move; a media packet's payload is shared, not copied.
pub struct RelayMessage(pub(super) Relay);

impl std::fmt::Debug for RelayMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match &self.0 {
            Relay::Join { .. } => "join",
            Relay::Leave { .. } => "leave",
            Relay::Tracks { .. } => "tracks",
            Relay::Media(_) => "media",
            Relay::Keyframe { .. } => "keyframe",
        };
        f.debug_tuple("RelayMessage").field(&what).finish()
    }
}

impl RelayMessage {
    /// A media packet (as opposed to control: interest, tracks, keyframe requests).
    pub fn is_media(&self) -> bool {
        matches!(self.0, Relay::Media(_))
    }
}

pub(super) enum Relay {
    /// The sender has peers of `room` now: send it the room's tracks and media.
    Join { room: RoomId },
    /// The sender's last peer of `room` left.
    Leave { room: RoomId },
    /// Every announced track the sender's own publishers of `room` have.
    Tracks {
        room: RoomId,
        tracks: Vec<RelayTrack>,
    },
    /// One packet of a track in the last `Tracks` (source and track are the sender's).
    Media(Ingested),
    /// Please ask the publisher of the receiver's track for a keyframe.
    Keyframe {
        source: u64,
        track: u64,
        layer: Option<usize>,
        kind: KeyframeRequestKind,
    },
}

pub(super) struct RelayTrack {
    /// The publisher's `PeerKey` and the track's `TrackId` on the sending SFU.
    source: u64,
    track: u64,
    publisher: PeerId,
    kind: MediaKind,
}

impl Sfu {
    /// Relay with another SFU, named `link` in both directions. The rooms with peers here are
    /// joined at once.
    pub fn add_link(&mut self, link: LinkId) {
        if self.links.contains(&link) {
            return;
        }
        self.links.push(link);
        let rooms: Vec<RoomId> = self
            .rooms
            .keys()
            .filter(|r| self.has_local_peers(r))
            .cloned()
            .collect();
        for room in rooms {
            self.send_relay(link, Relay::Join { room });
        }
    }

    /// The next message for a linked SFU: deliver it to that SFU's [`Sfu::handle_relay`], in
    /// order. Drain after every input, like [`Sfu::poll_transmit`].
    pub fn poll_relay(&mut self) -> Option<(LinkId, RelayMessage)> {
        self.outbox.relay.pop_front()
    }

    /// A message from linked SFU `from` (what its [`Sfu::poll_relay`] gave for this one).
    pub fn handle_relay(&mut self, now: Instant, from: LinkId, message: RelayMessage) {
        match message.0 {
            Relay::Media(packet) => self.relayed_media(now, from, packet),
            Relay::Join { room } => {
                let joined = self.relay_to.entry(room.clone()).or_default();
                if !joined.contains(&from) {
                    joined.push(from);
                }
                debug!(room.id = %room, link = %from, "relay joined");
                let tracks = self.relay_tracks(&room);
                self.send_relay(from, Relay::Tracks { room, tracks });
            }
            Relay::Leave { room } => {
                debug!(room.id = %room, link = %from, "relay left");
                if let Some(joined) = self.relay_to.get_mut(&room) {
                    joined.retain(|l| *l != from);
                    if joined.is_empty() {
                        self.relay_to.remove(&room);
                    }
                }
                // It has no peers of the room left, so no publishers either.
                self.mirror_tracks(now, from, &room, Vec::new());
            }
            Relay::Tracks { room, tracks } => self.mirror_tracks(now, from, &room, tracks),
            Relay::Keyframe {
                source,
                track,
                layer,
                kind,
            } => {
                let local = self
                    .peers
                    .get(&PeerKey(source))
                    .is_some_and(|p| p.mirror.is_none());
                if local {
                    self.request_keyframe(now, PeerKey(source), TrackId(track), layer, kind);
                }
            }
        }
        self.finish(now);
    }

    fn send_relay(&mut self, link: LinkId, message: Relay) {
        self.outbox.relay.push_back((link, RelayMessage(message)));
    }

    /// Whether `room` has peers of this SFU's own (not mirrors).
    pub(super) fn has_local_peers(&self, room: &RoomId) -> bool {
        self.rooms.get(room).is_some_and(|members| {
            members
                .iter()
                .any(|k| self.peers.get(k).is_some_and(|p| p.mirror.is_none()))
        })
    }

    /// The first peer of `room` joined: every link is told.
    pub(super) fn relay_room_joined(&mut self, room: &RoomId) {
        for link in self.links.clone() {
            self.send_relay(link, Relay::Join { room: room.clone() });
        }
    }

    /// The last peer of `room` left: every link is told, and the mirrors go (nobody here
    /// subscribes to them).
    pub(super) fn relay_room_left(&mut self, room: &RoomId) {
        for link in self.links.clone() {
            self.send_relay(link, Relay::Leave { room: room.clone() });
        }
        let mirrors: Vec<PeerKey> = self
            .rooms
            .get(room)
            .map(|m| {
                m.iter()
                    .copied()
                    .filter(|k| self.peers.get(k).is_some_and(|p| p.mirror.is_some()))
                    .collect()
            })
            .unwrap_or_default();
        for key in mirrors {
            self.remove_mirror(key);
        }
        if self.rooms.get(room).is_some_and(|m| m.is_empty()) {
            self.rooms.remove(room);
        }
    }

    /// The announced tracks of `room`'s own publishers changed: joined links get the new list.
    pub(super) fn relay_tracks_changed(&mut self, room: &RoomId) {
        let Some(links) = self.relay_to.get(room).cloned() else {
            return;
        };
        for link in links {
            let tracks = self.relay_tracks(room);
            self.send_relay(
                link,
                Relay::Tracks {
                    room: room.clone(),
                    tracks,
                },
            );
        }
    }

    fn relay_tracks(&self, room: &RoomId) -> Vec<RelayTrack> {
        let mut tracks = Vec::new();
        for key in self.rooms.get(room).into_iter().flatten() {
            let Some(peer) = self.peers.get(key).filter(|p| p.mirror.is_none()) else {
                continue;
            };
            for t in peer.tracks_in.iter().filter(|t| t.announced) {
                tracks.push(RelayTrack {
                    source: key.0,
                    track: t.id.0,
                    publisher: peer.id.clone(),
                    kind: t.kind,
                });
            }
        }
        tracks
    }

    /// After ingest: hand `packet` once to each link that joined its room.
    pub(super) fn relay(&mut self, packet: &Ingested) {
        let Some(peer) = self.peers.get(&packet.source) else {
            return;
        };
        let Some(links) = self.relay_to.get(&peer.id.room) else {
            return;
        };
        let announced = peer
            .track_in_index(packet.track)
            .is_some_and(|i| peer.tracks_in[i].announced);
        if !announced {
            return;
        }
        for &link in links {
            self.outbox
                .relay
                .push_back((link, RelayMessage(Relay::Media(packet.clone()))));
            self.stats.rtp_relayed += 1;
        }
    }

    /// A link's list of `room`'s tracks: mirror them (new ones offered to the peers here,
    /// missing ones stopped).
    fn mirror_tracks(
        &mut self,
        now: Instant,
        from: LinkId,
        room: &RoomId,
        tracks: Vec<RelayTrack>,
    ) {
        let local = self.has_local_peers(room);
        // Tracks of this link's publishers of this room that the list no longer has.
        let stale: Vec<(LinkId, u64)> = self
            .mirror_tracks
            .iter()
            .filter(|((link, origin), (key, _))| {
                *link == from
                    && self.peers.get(key).is_some_and(|p| p.id.room == *room)
                    && (!local || !tracks.iter().any(|t| t.track == *origin))
            })
            .map(|(k, _)| *k)
            .collect();
        for origin in stale {
            if let Some((key, track)) = self.mirror_tracks.remove(&origin) {
                self.remove_mirror_track(key, track);
            }
        }
        if !local {
            return;
        }
        for t in tracks {
            if self.mirror_tracks.contains_key(&(from, t.track)) {
                continue;
            }
            let key = self.mirror_peer(now, from, t.source, t.publisher);
            let id = TrackId(self.next_track);
            self.next_track += 1;
            let Some(peer) = self.peers.get_mut(&key) else {
                continue;
            };
            let mut track = TrackIn::new(id, Mid::from("relay"), t.kind);
            track.origin = Some(t.track);
            peer.tracks_in.push(track);
            self.mirror_tracks.insert((from, t.track), (key, id));
            debug!(room.id = %room, link = %from, kind = t.kind.as_str(), "relayed track");
            self.announce(key, id);
        }
    }

    /// The mirror of publisher `origin` of link `from`, made if there is none yet.
    fn mirror_peer(&mut self, now: Instant, from: LinkId, origin: u64, id: PeerId) -> PeerKey {
        if let Some(&key) = self.mirrors.get(&(from, origin)) {
            return key;
        }
        let key = PeerKey(self.next_key);
        self.next_key += 1;
        // A placeholder connection, never used: closed at once, so nothing drives it.
        let mut rtc = str0m::Rtc::builder().set_rtp_mode(true).build(now);
        rtc.disconnect();
        let room = id.room.clone();
        let mut peer = Peer::new(id, rtc, String::new(), now);
        peer.permission = PublishPermission {
            audio: true,
            video: true,
        };
        peer.holding = false;
        peer.down_reported = true;
        peer.mirror = Some(Mirror { link: from, origin });
        self.peers.insert(key, Box::new(peer));
        self.rooms.entry(room).or_default().push(key);
        self.mirrors.insert((from, origin), key);
        key
    }

    /// A mirrored track ended: its subscribers' m-lines go idle; a mirror without tracks goes.
    fn remove_mirror_track(&mut self, key: PeerKey, track: TrackId) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let Some(i) = peer.track_in_index(track) else {
            return;
        };
        let removed = peer.tracks_in.remove(i);
        let (room, empty) = (peer.id.room.clone(), peer.tracks_in.is_empty());
        let still_audible = peer.tracks_in.iter().any(|t| t.kind == MediaKind::Audio);
        for &sub in &removed.subscribers {
            self.stop_track_out(sub, key, removed.id);
        }
        if !still_audible {
            self.clear_speaker(&room, key);
        }
        if empty {
            self.remove_mirror(key);
        }
    }

    /// Forget a mirror and its tracks (their subscribers' m-lines go idle).
    fn remove_mirror(&mut self, key: PeerKey) {
        let Some(peer) = self.peers.remove(&key) else {
            return;
        };
        for track in &peer.tracks_in {
            for &sub in &track.subscribers {
                self.stop_track_out(sub, key, track.id);
            }
        }
        if let Some(m) = peer.mirror {
            self.mirrors.remove(&(m.link, m.origin));
        }
        self.mirror_tracks.retain(|_, (k, _)| *k != key);
        if let Some(members) = self.rooms.get_mut(&peer.id.room) {
            members.retain(|k| *k != key);
        }
        self.clear_speaker(&peer.id.room, key);
    }

    /// A packet relayed by `from`: taken in for the mirror as ingest would (layer, levels),
    /// then delivered to the subscribers here.
    fn relayed_media(&mut self, now: Instant, from: LinkId, mut packet: Ingested) {
        let Some(&(key, track)) = self.mirror_tracks.get(&(from, packet.track.0)) else {
            return;
        };
        self.stats.rtp_relay_received += 1;
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let Some(i) = peer.track_in_index(track) else {
            return;
        };
        let t = &mut peer.tracks_in[i];
        if packet.layer >= MAX_LAYERS {
            return;
        }
        while t.layers.len() <= packet.layer {
            // A layer not heard yet (the origin numbers them in the order it heard them):
            // idle until its packets come.
            let idle = now.checked_sub(LAYER_IDLE * 2).unwrap_or(now);
            t.layers.push(Layer::new(None, Ssrc::from(0), idle));
        }
        if packet.kind == MediaKind::Audio {
            t.levels.add(packet.ext.audio_level);
            if t.levels.speech_packets > 0 && self.next_speaker_check.is_none() {
                self.next_speaker_check = Some(now + SPEAKER_INTERVAL);
            }
        }
        let layer = &mut t.layers[packet.layer];
        layer.heard(now, packet.payload.len());
        if packet.keyframe_start == Some(true)
            && let Some((w, h)) = layers::vp8_keyframe_size(&packet.payload)
        {
            (layer.width, layer.height) = (w, h);
        }
        if t.layers.len() > 1 && self.next_layer_check.is_none() {
            self.next_layer_check = Some(now + LAYER_CHECK_INTERVAL);
        }
        packet.source = key;
        packet.track = track;
        // Relayed long after it arrived: this worker is behind on its channel.
        let stale = now.saturating_duration_since(packet.arrived) > crate::shed::STALE_AFTER;
        if self.passes_shed(now, &mut packet, stale) {
            self.deliver(now, &packet);
        }
    }

    /// A keyframe request for a mirror's track goes to the SFU it is published on.
    pub(super) fn relay_keyframe_request(
        outbox: &mut super::outbox::Outbox,
        mirror: Mirror,
        track: &TrackIn,
        layer: usize,
        kind: KeyframeRequestKind,
    ) {
        let Some(origin) = track.origin else {
            return;
        };
        outbox.relay.push_back((
            mirror.link,
            RelayMessage(Relay::Keyframe {
                source: mirror.origin,
                track: origin,
                layer: Some(layer),
                kind,
            }),
        ));
    }
}
