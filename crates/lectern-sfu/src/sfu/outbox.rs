//! What str0m produces after every change to a peer: datagrams to send and events to handle.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use str0m::{Event, Input, Output};
use tracing::warn;

use crate::peer::{Peer, PeerKey};
use crate::{SfuStats, Transmit};

/// In a batch, a subscriber's `Rtc` is sent what was written to it at the latest when this many
/// RTP packets wait (else at the batch's end). Bounds what str0m's send queues grow to (they
/// keep their capacity) and how long the first packet of a long batch waits; 8 packets per
/// pass already take 7/8 of the per-pass cost off each packet.
pub(super) const MAX_PER_PASS: u16 = 8;

/// Rounds of [`Outbox::ice_now`]: a browser's checks from up to two addresses (Chromium checks
/// from each of its interfaces) answered, and both pairs checked back.
const ICE_NOW_ROUNDS: usize = 4;

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
    /// A batch of received packets is being taken in (`Sfu::begin_batch`): RTP written to a
    /// subscriber is sent at the batch's end, in one pass per subscriber.
    pub batching: bool,
    /// Subscribers with RTP written and not sent yet (`Peer::unsent` > 0; a key may appear
    /// twice, the second time with nothing left to send).
    pub unsent: Vec<PeerKey>,
    /// When the first of them was written: the SFU's timeout is due then, so that a batch
    /// left open by mistake is sent by `handle_timeout`.
    pub unsent_since: Option<Instant>,
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

    /// After an RTP packet was written to `peer`: send it now ([`Outbox::send_written`]), or,
    /// while a batch is open, note the subscriber and send at the batch's end with the
    /// packets written to it after this one (`Sfu::send_unsent`).
    pub(super) fn written(
        &mut self,
        key: PeerKey,
        peer: &mut Peer,
        now: Instant,
        stats: &mut SfuStats,
    ) {
        if self.batching {
            if peer.unsent == 0 {
                self.unsent.push(key);
                self.unsent_since.get_or_insert(now);
            }
            peer.unsent += 1;
            if peer.unsent < MAX_PER_PASS {
                return;
            }
        }
        // Sent now, with whatever waited for the batch's end (the key stays listed; the end
        // skips it if nothing more is written).
        self.send_pass(key, peer, now, stats);
    }

    /// One send pass through `peer`: everything written to it leaves (see
    /// [`Outbox::send_written`]), and nothing waits for a batch's end any more.
    pub(super) fn send_pass(
        &mut self,
        key: PeerKey,
        peer: &mut Peer,
        now: Instant,
        stats: &mut SfuStats,
    ) {
        peer.unsent = 0;
        stats.subscriber_sends += 1;
        self.send_written(key, peer, now);
    }

    /// While `peer`'s timeout is due, hand str0m `now` and drain.
    /// Hand str0m `now` [`ICE_NOW_ROUNDS`] times, asked for or not, draining after each: for a
    /// peer not connected yet whose remote ICE credentials just arrived (the browser's answer).
    /// Connectivity checks that came before them were kept by str0m's ICE agent, which answers
    /// one of them per timeout and then returns without checking anything itself; its next
    /// timeout is then paced `Ta` (50 ms) after the last one. So a browser whose first check
    /// beat its answer to the SFU (the answer goes through the signalling server, the check
    /// straight to the media worker) was checked back, and its DTLS answered, 50 ms late. Each
    /// round answers a kept check, or sends a due check of a pair (the pairs those kept
    /// checks made are due at once).
    pub(super) fn ice_now(&mut self, key: PeerKey, peer: &mut Peer, now: Instant) {
        for _ in 0..ICE_NOW_ROUNDS {
            if !peer.rtc.is_alive() || !timeout_now(peer, now) {
                return;
            }
            self.drain(key, peer);
        }
    }

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
