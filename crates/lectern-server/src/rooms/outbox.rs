//! The one way a room task sends to its connections.
//!
//! A message is serialized and framed once ([`Encoded`]: the WebSocket frames that carry it,
//! cut into fragments per `websocket.send_fragment_bytes`) and each recipient's bounded queue
//! gets a clone of the same bytes with `try_send`: the room never waits for anyone, and each
//! writer writes those bytes to its socket as they are. A recipient whose queue
//! is full is a slow consumer, wherever the message came from (a broadcast, a signalling reply,
//! a scroll-back page): it is closed at once through its kill switch, counted in
//! `lectern_slow_clients_dropped_total`, and handed back by [`Outbox::take_slow`] so the room
//! hears that it is gone.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use bytes::Bytes;
use lectern_proto::{CloseReason, ServerMessage, encode_server};
use lectern_room::ConnId;
use tokio::sync::mpsc::error::TrySendError;
use tracing::warn;

use crate::conn::{ConnTx, Outbound};
use crate::metrics::Metrics;

/// A server message serialized and framed once, ready for any number of recipients.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// The frames that carry it (`ws_frame::text`).
    bytes: Bytes,
    /// An error reply: counted in `lectern_errors_sent_total`.
    error: bool,
    /// The client's fault (a refused request): counts toward the abuse limit.
    refusal: bool,
}

impl Encoded {
    /// `fragment`: `websocket.send_fragment_bytes`.
    pub fn new(message: &ServerMessage, fragment: usize) -> Self {
        let (error, refusal) = match message {
            ServerMessage::Error { code, .. } => (true, code.is_client_fault()),
            _ => (false, false),
        };
        Encoded {
            bytes: crate::ws_frame::text(&encode_server(message), fragment),
            error,
            refusal,
        }
    }

    fn outbound(&self) -> Outbound {
        if self.refusal {
            Outbound::Refusal(self.bytes.clone())
        } else {
            Outbound::Frame(self.bytes.clone())
        }
    }
}

/// Hashes a [`ConnId`] with one multiplication. The map is looked up once per recipient of
/// every message, where SipHash was a visible share of the cost; connection ids are handed out
/// by the server in sequence, never chosen by a client, so there is no flooding to resist, and
/// the multiplication spreads sequential ids over the hash's high bits (hashbrown's tags) while
/// keeping the low bits (its bucket index) distinct.
#[derive(Debug, Default, Clone, Copy)]
struct ConnIdHasher(u64);

impl Hasher for ConnIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// A room's connections, and the send path to them.
#[derive(Debug)]
pub struct Outbox {
    conns: HashMap<ConnId, ConnTx, BuildHasherDefault<ConnIdHasher>>,
    metrics: Arc<Metrics>,
    /// `websocket.send_fragment_bytes`.
    fragment: usize,
    /// Closed as slow consumers since [`Outbox::take_slow`] was last called.
    slow: Vec<ConnId>,
}

impl Outbox {
    pub fn new(metrics: Arc<Metrics>, fragment: usize) -> Self {
        Outbox {
            conns: HashMap::default(),
            metrics,
            fragment,
            slow: Vec::new(),
        }
    }

    pub fn insert(&mut self, conn: ConnId, tx: ConnTx) {
        self.conns.insert(conn, tx);
    }

    /// Forget a connection that went away by itself.
    pub fn remove(&mut self, conn: ConnId) {
        self.conns.remove(&conn);
    }

    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// Every connection here.
    pub fn conns(&self) -> Vec<ConnId> {
        self.conns.keys().copied().collect()
    }

    /// Serialize `message` once and send it to each of `to` (see [`Outbox::deliver`]).
    pub fn send(&mut self, to: impl IntoIterator<Item = ConnId>, message: &ServerMessage) {
        let frame = Encoded::new(message, self.fragment);
        self.deliver(to, &frame);
    }

    /// Queue `frame` for each of `to` that is still here; close any whose queue is full.
    pub fn deliver(&mut self, to: impl IntoIterator<Item = ConnId>, frame: &Encoded) {
        let mut sent = 0u64;
        for conn in to {
            let Some(c) = self.conns.get(&conn) else {
                continue;
            };
            match c.tx.try_send(frame.outbound()) {
                Ok(()) => sent += 1,
                Err(TrySendError::Full(_)) => self.close_slow(conn),
                // The writer is gone; the connection task tells the room.
                Err(TrySendError::Closed(_)) => {}
            }
        }
        Metrics::add(&self.metrics.messages_out, sent);
        if frame.error {
            Metrics::add(&self.metrics.errors_sent, sent);
        }
    }

    /// Close a connection the room let go: its `closing` message is written after what is
    /// already queued, or at once through the kill switch if the queue has no room for it.
    pub fn close(&mut self, conn: ConnId, reason: CloseReason) {
        if let Some(c) = self.conns.remove(&conn)
            && c.tx.try_send(Outbound::close(reason)).is_err()
        {
            c.kill.pull(reason);
        }
    }

    /// The connections closed as slow consumers since the last call: the room must be told
    /// they are gone.
    pub fn take_slow(&mut self) -> Vec<ConnId> {
        std::mem::take(&mut self.slow)
    }

    fn close_slow(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.remove(&conn) {
            Metrics::inc(&self.metrics.slow_clients_dropped);
            warn!(conn = conn.0, "closing a connection that cannot keep up");
            c.kill.pull(CloseReason::SlowConsumer);
            self.slow.push(conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use lectern_proto::ErrorCode;
    use tokio::sync::mpsc;

    use super::*;

    fn conn(outbox: &mut Outbox, id: u64, queue: usize) -> ConnHalves {
        let (tx, rx) = mpsc::channel(queue);
        let kill = Arc::new(crate::conn::KillSwitch::default());
        let killed = kill.clone();
        outbox.insert(ConnId(id), ConnTx { tx, kill });
        ConnHalves { rx, killed }
    }

    struct ConnHalves {
        rx: mpsc::Receiver<Outbound>,
        killed: Arc<crate::conn::KillSwitch>,
    }

    fn load(counter: &std::sync::atomic::AtomicU64) -> u64 {
        counter.load(std::sync::atomic::Ordering::Relaxed)
    }

    #[test]
    fn a_full_queue_closes_that_connection_as_a_slow_consumer_and_only_once() {
        let metrics = Arc::new(Metrics::default());
        let mut outbox = Outbox::new(metrics.clone(), 4096);
        let mut fast = conn(&mut outbox, 1, 8);
        let mut slow = conn(&mut outbox, 2, 1);
        let hello = ServerMessage::ReplayDone {
            seq: 1,
            replayed: 0,
        };
        outbox.send([ConnId(1), ConnId(2)], &hello);
        assert!(slow.killed.pulled().is_none(), "one item fits");
        outbox.send([ConnId(1), ConnId(2)], &hello);
        outbox.send([ConnId(2)], &hello);
        assert_eq!(slow.killed.pulled(), Some(CloseReason::SlowConsumer));
        assert_eq!(outbox.take_slow(), [ConnId(2)]);
        assert!(outbox.take_slow().is_empty());
        assert_eq!(load(&metrics.slow_clients_dropped), 1);
        assert_eq!(load(&metrics.messages_out), 3);
        // The fast one got both, the same bytes.
        let (Some(Outbound::Frame(a)), Some(Outbound::Frame(b))) =
            (fast.rx.try_recv().ok(), fast.rx.try_recv().ok())
        else {
            panic!("two frames");
        };
        assert_eq!(a, b);
        // Framed once: one final text frame, the very same buffer for every recipient.
        assert_eq!((a[0], usize::from(a[1])), (0x81, a.len() - 2));
        let Ok(Outbound::Frame(first_to_slow)) = slow.rx.try_recv() else {
            panic!("the slow one got the first");
        };
        assert_eq!(a.as_ptr(), first_to_slow.as_ptr());
        assert!(fast.killed.pulled().is_none());
    }

    #[test]
    fn client_faults_are_refusals_and_every_error_is_counted() {
        let metrics = Arc::new(Metrics::default());
        let mut outbox = Outbox::new(metrics.clone(), 4096);
        let mut c = conn(&mut outbox, 1, 8);
        outbox.send([ConnId(1)], &ServerMessage::error(ErrorCode::InLobby, None));
        outbox.send(
            [ConnId(1)],
            &ServerMessage::error(ErrorCode::Internal, None),
        );
        assert!(matches!(c.rx.try_recv(), Ok(Outbound::Refusal(_))));
        assert!(matches!(c.rx.try_recv(), Ok(Outbound::Frame(_))));
        assert_eq!(load(&metrics.errors_sent), 2);
    }

    #[test]
    fn a_close_that_does_not_fit_pulls_the_kill_switch_with_its_reason() {
        let mut outbox = Outbox::new(Arc::new(Metrics::default()), 4096);
        let mut roomy = conn(&mut outbox, 1, 8);
        let full = conn(&mut outbox, 2, 1);
        outbox.send(
            [ConnId(2)],
            &ServerMessage::ReplayDone {
                seq: 1,
                replayed: 0,
            },
        );
        outbox.close(ConnId(1), CloseReason::Removed);
        outbox.close(ConnId(2), CloseReason::Removed);
        assert!(matches!(
            roomy.rx.try_recv(),
            Ok(Outbound::Close {
                reason: CloseReason::Removed,
                ..
            })
        ));
        assert_eq!(full.killed.pulled(), Some(CloseReason::Removed));
        assert!(outbox.is_empty());
        assert!(
            outbox.take_slow().is_empty(),
            "a close is not a slow consumer"
        );
    }
}
