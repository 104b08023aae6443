//! What passes between a room task and a connection's writer: the items of the bounded
//! outbound queue, the room's handle on a connection, and how a connection is closed (the
//! `closing` message's text, the WebSocket close code and reason).
//!
//! A leaf: it uses nothing else from this crate, so the room tasks (`rooms`) and the
//! connection tasks (`ws`) both depend on it and not on each other's internals.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use lectern_proto::{CloseReason, ServerMessage, encode_server};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// What a connection's writer receives.
#[derive(Debug)]
pub enum Outbound {
    /// A message to write, already framed (`ws_frame::text`): the same bytes for every
    /// recipient.
    Frame(Bytes),
    /// An error reply, framed: written like a frame, and counted toward the abuse limit.
    Refusal(Bytes),
    /// Write this `closing` message, then close the socket.
    Close {
        reason: CloseReason,
        frame: Utf8Bytes,
    },
    /// Time for the server's keepalive ping.
    Ping,
    /// The client pinged with this payload: answer with a pong (the reader asks).
    Pong(Bytes),
    /// The client sent a close frame with this status code (or none): answer with a close
    /// frame of the same code and end the connection (RFC 6455, section 5.5.1).
    CloseReply(Option<u16>),
}

impl Outbound {
    /// Write the `closing` message for `reason`, then close.
    pub fn close(reason: CloseReason) -> Outbound {
        Outbound::Close {
            reason,
            frame: closing_frame(reason),
        }
    }
}

/// The room task's handle on one connection: its bounded queue and a kill switch that closes
/// it at once (bypassing the queue) when it cannot keep up.
#[derive(Debug)]
pub struct ConnTx {
    pub tx: mpsc::Sender<Outbound>,
    pub kill: Arc<KillSwitch>,
}

/// Closes a connection at once, bypassing its queue: pulled by the room when the connection
/// cannot keep up (or a close does not fit), and by the connection's keepalive when a Ping goes
/// unanswered. The first pull's reason wins. The writer checks it at every wake-up, so checking
/// is an atomic load (and a waker registration when not pulled).
#[derive(Debug, Default)]
pub struct KillSwitch {
    /// 0 while not pulled, else 1 + the reason's index in `CloseReason::ALL`.
    reason: AtomicUsize,
    waker: AtomicWaker,
}

impl KillSwitch {
    pub fn pull(&self, reason: CloseReason) {
        let code = CloseReason::ALL
            .iter()
            .position(|r| *r == reason)
            .map_or(1, |i| i + 1);
        let _ = self
            .reason
            .compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire);
        self.waker.wake();
    }

    /// The reason, once pulled.
    pub fn pulled(&self) -> Option<CloseReason> {
        match self.reason.load(Ordering::Acquire) {
            0 => None,
            code => CloseReason::ALL.get(code - 1).copied(),
        }
    }

    /// Ready with the reason once pulled.
    pub fn poll_pulled(&self, cx: &mut Context<'_>) -> Poll<CloseReason> {
        if let Some(reason) = self.pulled() {
            return Poll::Ready(reason);
        }
        self.waker.register(cx.waker());
        self.pulled().map_or(Poll::Pending, Poll::Ready)
    }
}

/// The `closing` message a client gets before the socket closes, with a short explanation.
pub fn closing_frame(reason: CloseReason) -> Utf8Bytes {
    let message = match reason {
        CloseReason::ServerShutdown => "the server is restarting; reconnect in a moment",
        CloseReason::Removed => "you were removed from the class",
        CloseReason::ClassEnded => "the class has ended",
        CloseReason::Replaced => "you joined again from another window",
        CloseReason::SlowConsumer => "your connection could not keep up with the class",
        CloseReason::Abuse => "too many invalid or refused requests",
        CloseReason::HandshakeFailed => "the connection could not join the class",
        CloseReason::Left => "you left the class",
        CloseReason::Redirected => "the class is on another server; connecting there",
        CloseReason::RoomMoved => "the class is moving to another server; reconnect now",
    };
    Utf8Bytes::from(encode_server(&ServerMessage::Closing {
        reason,
        message: message.to_owned(),
    }))
}

/// The WebSocket close code for `reason` (RFC 6455: 1012 service restart, 1008 policy
/// violation, 1013 try again later, 1000 normal).
pub fn close_code(reason: CloseReason) -> u16 {
    match reason {
        CloseReason::ServerShutdown | CloseReason::RoomMoved => 1012,
        CloseReason::Abuse | CloseReason::HandshakeFailed => 1008,
        CloseReason::SlowConsumer => 1013,
        _ => 1000,
    }
}

/// The close frame's reason text: the reason's wire name (`"slow_consumer"`).
pub fn close_text(reason: CloseReason) -> Utf8Bytes {
    let text = serde_json::to_value(reason)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    Utf8Bytes::from(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_a_closing_message_a_code_and_its_wire_name() {
        for &reason in CloseReason::ALL {
            let frame: serde_json::Value =
                serde_json::from_str(closing_frame(reason).as_str()).expect("json");
            assert_eq!(frame["type"], "closing");
            assert_eq!(frame["reason"].as_str(), Some(close_text(reason).as_str()));
            assert!(!frame["message"].as_str().unwrap_or_default().is_empty());
            assert!((1000..=1013).contains(&close_code(reason)));
        }
        assert_eq!(
            close_text(CloseReason::SlowConsumer).as_str(),
            "slow_consumer"
        );
        assert_eq!(close_code(CloseReason::SlowConsumer), 1013);
    }

    #[test]
    fn a_kill_switch_keeps_the_first_reason_it_was_pulled_with() {
        let kill = KillSwitch::default();
        assert_eq!(kill.pulled(), None);
        for &reason in CloseReason::ALL {
            let k = KillSwitch::default();
            k.pull(reason);
            assert_eq!(k.pulled(), Some(reason));
        }
        kill.pull(CloseReason::Removed);
        kill.pull(CloseReason::SlowConsumer);
        assert_eq!(kill.pulled(), Some(CloseReason::Removed));
    }
}
