//! Chat requests: send (stored before it is delivered), delete, lock, and the recovery when
//! storing a message fails.

use lectern_proto::{ChatMessage, ChatTarget, RoomEvent, Seq};

use super::{Handled, Reply, Request, Room};
use crate::chat_log::{Audience, PendingChat};
use crate::{ModerationAction, PersistRecord, RoomError};

impl Room {
    /// Sends a chat message. Checks, in order: the role may chat, not in the lobby, chat not
    /// locked (staff may chat while locked), text not blank, not too long, and a participant
    /// target exists (staff only; checked by the dispatcher). A message to a participant who
    /// waits in the lobby is accepted; they see it in the snapshot they get when let in.
    ///
    /// The message is queued for storage before its event and ack, both tagged with its seq
    /// so the driver can drop them if storing fails.
    pub(super) fn chat_send(&mut self, req: &Request, to: ChatTarget, text: String) -> Handled {
        let actor = self.actor(req);
        if !actor.perms().chat {
            return Err(RoomError::NotPermitted);
        }
        if actor.in_lobby {
            return Err(RoomError::InLobby);
        }
        if self.chat_locked && !actor.is_staff() {
            return Err(RoomError::ChatLocked);
        }
        if text.trim().is_empty() {
            return Err(RoomError::ChatEmpty);
        }
        let max = self.config.max_chat_chars;
        if text.chars().count() > max {
            return Err(RoomError::ChatTooLong { max });
        }
        if let ChatTarget::Participant { id } = &to {
            if !actor.is_staff() {
                return Err(RoomError::NotPermitted);
            }
            if !self.roster.contains(id) {
                return Err(RoomError::NotFound);
            }
        }
        let seq = self.seq + 1;
        let message = ChatMessage {
            seq,
            from: actor.id.clone(),
            from_name: actor.name.clone(),
            from_role: actor.role,
            to,
            text,
            sent_at: req.now,
        };
        self.persist(PersistRecord::Chat(message.clone()));
        let event = RoomEvent::Chat {
            message: message.clone(),
        };
        let emitted = self.emit_tagged(req.now, event, None, Some(seq));
        debug_assert_eq!(emitted, seq);
        self.chat.push(message);
        self.chat.track(PendingChat {
            seq,
            conn: req.conn,
            request_id: req.request_id,
        });
        Ok(Reply::Ack {
            seq: Some(seq),
            persist_seq: Some(seq),
        })
    }

    /// Staff delete a message still kept in memory. Its event is also dropped from the replay
    /// ring, so a reconnecting client never receives the deleted text again. `chat_deleted`
    /// goes (live and replayed) only to the message's audience: everyone for a public message
    /// (the lobby included), else staff, the sender and any addressee, so a private message's
    /// deletion does not tell others that it existed.
    pub(super) fn chat_delete(&mut self, req: &Request, seq: Seq) -> Handled {
        let Some(deleted) = self.chat.remove(seq) else {
            return Err(RoomError::NotFound);
        };
        self.replay.remove_chat(seq);
        let by = req.actor.clone();
        let event = RoomEvent::ChatDeleted { seq, by };
        let audience = Some(Audience::of(&deleted));
        let event_seq = self.emit_scoped(req.now, event, None, None, audience);
        self.persist(PersistRecord::ChatDeleted {
            seq,
            by: req.actor.clone(),
            at: req.now,
        });
        self.persist_moderation(
            req,
            event_seq,
            ModerationAction::DeleteChat,
            Some(deleted.from),
        );
        Reply::event(event_seq)
    }

    /// Staff lock or unlock chat for students and observers. Unchanged is a no-op.
    pub(super) fn chat_lock(&mut self, req: &Request, locked: bool) -> Handled {
        if self.chat_locked == locked {
            return Reply::no_event();
        }
        self.chat_locked = locked;
        let by = req.actor.clone();
        let seq = self.emit(req.now, RoomEvent::ChatLocked { locked, by }, None);
        let action = if locked {
            ModerationAction::LockChat
        } else {
            ModerationAction::UnlockChat
        };
        self.persist_moderation(req, seq, action, None);
        Reply::event(seq)
    }

    /// Storing chat message `seq` failed; the driver dropped its deliveries. Forget it and
    /// tell the sender, on the connection that sent it if still attached, with their request
    /// id. Other seqs (or a repeated report) change nothing.
    pub(super) fn handle_persist_failed(&mut self, seq: Seq) {
        self.chat.remove(seq);
        self.replay.remove_chat(seq);
        let Some(pending) = self.chat.take_pending(seq) else {
            return;
        };
        if self.roster.id_by_conn(pending.conn).is_some() {
            let message = RoomError::StoreUnavailable.to_message(pending.request_id);
            self.send(vec![pending.conn], None, message);
        }
    }
}
