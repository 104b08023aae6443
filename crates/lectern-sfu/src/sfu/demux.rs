//! Datagrams in: each goes to the peer it belongs to on the shared port.

use std::net::SocketAddr;
use std::time::Instant;

use str0m::Input;
use str0m::ice::StunMessage;
use str0m::net::{Protocol, Receive};
use tracing::{trace, warn};

use super::Sfu;
use crate::peer::{MAX_ADDRS_PER_PEER, PeerKey};

impl Sfu {
    /// A datagram arrived on `destination` (one of the configured sockets) from `source`.
    /// Returns whether a peer took it.
    ///
    /// Demultiplexing: STUN requests go by the ufrag in their USERNAME (so checks from
    /// addresses nobody signalled still find their peer); everything else by the remote
    /// address map that those checks fill. Only datagrams that match neither fall back to
    /// asking each peer (`Rtc::accepts`), and a match is remembered.
    pub fn handle_receive(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
    ) -> bool {
        // Behind a 1:1 NAT the packet was sent to the advertised (public) address.
        let destination = self
            .outbox
            .local
            .iter()
            .find(|l| l.socket == destination && l.advertised.is_ipv4() == source.is_ipv4())
            .map_or(destination, |l| l.advertised);
        let Ok(receive) = Receive::new(Protocol::Udp, source, destination, contents) else {
            trace!(len = contents.len(), "not a WebRTC datagram");
            self.stats.datagrams_unmatched += 1;
            return false;
        };
        let input = Input::Receive(now, receive);

        let stun_ufrag = stun_local_ufrag(contents);
        let mut key = match stun_ufrag {
            Some(ufrag) => self.by_ufrag.get(ufrag).copied(),
            None => self.by_addr.get(&source).copied(),
        };
        let mut remember = stun_ufrag.is_some();
        if key.is_none() {
            self.stats.demux_scans += 1;
            key = self
                .peers
                .iter()
                .find(|(_, p)| p.rtc.is_alive() && p.rtc.accepts(&input))
                .map(|(k, _)| *k);
            remember = true;
        }
        let Some(key) = key else {
            trace!(len = contents.len(), "no peer accepts the datagram");
            self.stats.datagrams_unmatched += 1;
            return false;
        };
        let peer = self.peers.get_mut(&key).expect("indexed peer exists");
        if !peer.rtc.is_alive() {
            return false;
        }
        let sent_before = self.outbox.transmits.len();
        if let Err(e) = peer.rtc.handle_input(input) {
            warn!(room.id = %peer.id.room, participant.id = %peer.id.participant, error = %e, "peer failed");
            peer.rtc.disconnect();
        }
        self.outbox.drain(key, peer);
        if remember {
            // A STUN request is only trusted once str0m answered it, i.e. its
            // MESSAGE-INTEGRITY checked out: a spoofed check must not steal an address.
            let trusted = stun_ufrag.is_none()
                || self
                    .outbox
                    .transmits
                    .iter()
                    .skip(sent_before)
                    .any(|t| t.destination == source);
            if trusted {
                self.remember_addr(source, key);
            }
        }
        self.finish(now);
        true
    }

    fn remember_addr(&mut self, addr: SocketAddr, key: PeerKey) {
        match self.by_addr.insert(addr, key) {
            Some(old) if old == key => return,
            Some(old) => {
                // The address moved to another peer (a NAT reused the port).
                if let Some(p) = self.peers.get_mut(&old) {
                    p.addrs.retain(|a| *a != addr);
                }
            }
            None => {}
        }
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        peer.addrs.push(addr);
        if peer.addrs.len() > MAX_ADDRS_PER_PEER {
            let oldest = peer.addrs.remove(0);
            if self.by_addr.get(&oldest) == Some(&key) {
                self.by_addr.remove(&oldest);
            }
        }
    }

    /// An ICE restart changes our ufrag: keep the STUN demultiplexer in step.
    pub(super) fn refresh_ufrag(&mut self, key: PeerKey) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let ufrag = peer.rtc.direct_api().local_ice_credentials().ufrag;
        if ufrag != peer.ufrag {
            if self.by_ufrag.get(&peer.ufrag) == Some(&key) {
                self.by_ufrag.remove(&peer.ufrag);
            }
            self.by_ufrag.insert(ufrag.clone(), key);
            peer.ufrag = ufrag;
        }
    }
}

/// The local (our) ufrag of a STUN binding request: `USERNAME` is `ours:theirs`.
fn stun_local_ufrag(contents: &[u8]) -> Option<&str> {
    // Same test str0m uses to tell STUN from DTLS/RTP on a shared port (RFC 7983).
    if contents.len() < 20 || contents[0] >= 2 {
        return None;
    }
    let msg = StunMessage::parse(contents).ok()?;
    if !msg.is_binding_request() {
        return None;
    }
    let username = msg.username()?;
    username.split(':').next().filter(|u| !u.is_empty())
}
