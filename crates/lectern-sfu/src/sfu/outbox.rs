//! What str0m produces after every change to a peer: datagrams to send and events to handle.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use str0m::{Event, Input, Output};
use tracing::warn;

use crate::Transmit;
use crate::peer::{Peer, PeerKey};

/// A local socket and the address advertised for it in candidates.
#[derive(Debug, Clone, Copy)]
pub(super) struct LocalAddr {
    pub socket: SocketAddr,
    pub advertised: SocketAddr,
}

/// What str0m produced while being drained, kept apart from `peers` so both can be borrowed.
pub(super) struct Outbox {
    pub local: Vec<LocalAddr>,
    pub transmits: VecDeque<Transmit>,
    /// str0m events not handled yet. Handling one may touch other peers, so events are queued
    /// and handled after the drain that produced them, never inside it.
    pub rtc_events: VecDeque<(PeerKey, Event)>,
    /// Messages for linked SFUs (see `relay.rs`).
    pub relay: VecDeque<(crate::LinkId, crate::RelayMessage)>,
}

impl Outbox {
    /// Poll `peer` until str0m returns its next timeout (str0m requires a full drain after
    /// every mutation).
    pub(super) fn drain(&mut self, key: PeerKey, peer: &mut Peer) {
        while peer.rtc.is_alive() {
            match peer.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    peer.timeout = t;
                    return;
                }
                Ok(Output::Transmit(t)) => {
                    // str0m sends from the advertised address; the socket may differ (NAT).
                    let source = self
                        .local
                        .iter()
                        .find(|l| l.advertised == t.source)
                        .map_or(t.source, |l| l.socket);
                    self.transmits.push_back(Transmit {
                        source,
                        destination: t.destination,
                        contents: t.contents.into(),
                    });
                }
                Ok(Output::Event(e)) => self.rtc_events.push_back((key, e)),
                Err(e) => {
                    warn!(room.id = %peer.id.room, participant.id = %peer.id.participant, error = %e, "peer failed");
                    peer.rtc.disconnect();
                    return;
                }
            }
        }
    }

    /// Drain, then let str0m act on `now` if it asks to (queued RTP leaves on a timeout).
    pub(super) fn settle(&mut self, key: PeerKey, peer: &mut Peer, now: Instant) {
        self.drain(key, peer);
        self.timeouts_due(key, peer, now);
    }

    /// After RTP was written to `peer`: str0m sends a written packet only once a timeout has
    /// stamped it (its send queue asks for one at once), so give it `now` straight away and
    /// drain once, instead of draining first only to be told the time is due. The same
    /// outputs as [`Outbox::settle`], one pass through str0m's output tree fewer per packet.
    pub(super) fn send_written(&mut self, key: PeerKey, peer: &mut Peer, now: Instant) {
        if timeout_now(peer, now) {
            self.drain(key, peer);
            self.timeouts_due(key, peer, now);
        }
    }

    /// While `peer`'s timeout is due, hand str0m `now` and drain.
    fn timeouts_due(&mut self, key: PeerKey, peer: &mut Peer, now: Instant) {
        // Bounded: str0m asks again at most a couple of times for the same instant.
        for _ in 0..3 {
            if !peer.rtc.is_alive() || peer.timeout > now || !timeout_now(peer, now) {
                return;
            }
            self.drain(key, peer);
        }
    }
}

/// Hand str0m `now`. False if the peer failed (it is disconnected).
fn timeout_now(peer: &mut Peer, now: Instant) -> bool {
    if let Err(e) = peer.rtc.handle_input(Input::Timeout(now)) {
        warn!(room.id = %peer.id.room, participant.id = %peer.id.participant, error = %e, "peer failed");
        peer.rtc.disconnect();
        return false;
    }
    true
}
