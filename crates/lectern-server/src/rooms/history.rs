//! Scroll-back: older chat, read from the store (the room keeps only the newest messages).
//!
//! The read runs off the room task, so a slow store never holds up the class; its reply comes
//! back to the task as [`RoomCommand::Deliver`] and goes out through the room's send path like
//! any other message (a reader whose queue is full is closed as a slow consumer).

use lectern_proto::{ErrorCode, RequestId, Seq, ServerMessage};
use lectern_room::ConnId;
use tracing::error;

use super::RoomCommand;
use super::outbox::Encoded;
use super::task::RoomTask;

/// `chat_history` without a `limit`, and the largest `limit` accepted.
const CHAT_HISTORY_DEFAULT: u32 = 50;
const CHAT_HISTORY_MAX: u32 = 200;

impl RoomTask {
    /// A `chat_history` request: checked here, read from the store off the task.
    pub(super) fn chat_history(
        &mut self,
        conn: ConnId,
        request_id: Option<RequestId>,
        before_seq: Seq,
        limit: Option<u32>,
    ) {
        let refuse = |code: ErrorCode, message: &str| ServerMessage::Error {
            code,
            message: message.to_owned(),
            request_id,
        };
        let limit = limit.unwrap_or(CHAT_HISTORY_DEFAULT);
        if !(1..=CHAT_HISTORY_MAX).contains(&limit) {
            let message = format!("limit must be 1 to {CHAT_HISTORY_MAX}");
            let error = refuse(ErrorCode::InvalidMessage, &message);
            return self.outbox.send([conn], &error);
        }
        // Sequence numbers are stored as signed 64-bit integers and never come near 2^63: a
        // larger `before_seq` is the client's mistake, not the store's.
        if i64::try_from(before_seq).is_err() {
            let error = refuse(
                ErrorCode::InvalidMessage,
                "before_seq must be less than 2^63",
            );
            return self.outbox.send([conn], &error);
        }
        let reader = match self.room.chat_reader(conn) {
            Ok(reader) => reader,
            Err(code) => {
                return self
                    .outbox
                    .send([conn], &ServerMessage::error(code, request_id));
            }
        };
        // The task is stopping when its channel is gone; nobody is left to answer.
        let Some(room_task) = self.inbox.upgrade() else {
            return;
        };
        let store = self.env.store.clone();
        let room = self.room_id.clone();
        let fragment = self.env.settings.send_fragment_bytes;
        tokio::spawn(async move {
            let filter = lectern_store::ChatReaderFilter {
                participant_id: reader.participant_id().clone(),
                staff: reader.is_staff(),
            };
            let message = match store.chat_before(&room, before_seq, limit, &filter).await {
                Ok(rows) => {
                    let complete = rows.len() < limit as usize;
                    let mut messages: Vec<_> = rows
                        .into_iter()
                        .filter(|row| row.deleted_at.is_none() && reader.can_read(&row.message))
                        .map(|row| row.message)
                        .collect();
                    messages.reverse();
                    ServerMessage::ChatPage {
                        request_id,
                        messages,
                        complete,
                    }
                }
                Err(e) => {
                    error!(error = %e, "chat history read failed");
                    ServerMessage::Error {
                        code: ErrorCode::Internal,
                        message: "chat history is not available right now".into(),
                        request_id,
                    }
                }
            };
            // Serialized here, off the room task; the room only queues the bytes.
            let frame = Encoded::new(&message, fragment);
            let _ = room_task.send(RoomCommand::Deliver { conn, frame }).await;
        });
    }
}
