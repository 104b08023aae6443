//! Recent chat in memory: the messages snapshots carry and staff may delete, who may read
//! which message, and the chats still waiting for storage to confirm them.

use std::collections::{HashSet, VecDeque};

use lectern_proto::{ChatMessage, ChatTarget, ParticipantId, RequestId, Seq};

use crate::ConnId;
use crate::roster::Participant;

/// How many sent chats are remembered for [`crate::Input::PersistFailed`].
const PENDING_LEN: usize = 1_024;

/// Who sent a chat that storage has not failed yet.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PendingChat {
    pub seq: Seq,
    pub conn: ConnId,
    pub request_id: Option<RequestId>,
}

#[derive(Debug)]
pub(crate) struct ChatLog {
    capacity: usize,
    /// Not deleted, ordered by `seq`, oldest first.
    messages: VecDeque<ChatMessage>,
    pending: VecDeque<PendingChat>,
}

impl ChatLog {
    /// Keeps the last `capacity` of `recent` (oldest first).
    pub fn new(capacity: usize, mut recent: Vec<ChatMessage>) -> Self {
        recent.sort_by_key(|m| m.seq);
        let skip = recent.len().saturating_sub(capacity);
        ChatLog {
            capacity,
            messages: recent.into_iter().skip(skip).collect(),
            pending: VecDeque::new(),
        }
    }

    pub fn push(&mut self, message: ChatMessage) {
        self.messages.push_back(message);
        while self.messages.len() > self.capacity {
            self.messages.pop_front();
        }
    }

    fn position(&self, seq: Seq) -> Option<usize> {
        let i = self.messages.partition_point(|m| m.seq < seq);
        (self.messages.get(i)?.seq == seq).then_some(i)
    }

    pub fn remove(&mut self, seq: Seq) -> Option<ChatMessage> {
        let i = self.position(seq)?;
        self.messages.remove(i)
    }

    pub fn len(&self) -> usize {
        self.messages.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &ChatMessage> {
        self.messages.iter()
    }

    /// The last `n` messages matching `visible`, oldest first.
    pub fn visible_tail(
        &self,
        n: usize,
        mut visible: impl FnMut(&ChatMessage) -> bool,
    ) -> Vec<ChatMessage> {
        let mut tail: Vec<ChatMessage> = self
            .messages
            .iter()
            .rev()
            .filter(|m| visible(m))
            .take(n)
            .cloned()
            .collect();
        tail.reverse();
        tail
    }

    /// Everyone who sent or received a message not addressed to everyone: the only
    /// participants whose visible chat differs from the public chat (besides staff).
    pub fn private_parties(&self) -> HashSet<ParticipantId> {
        let mut parties = HashSet::new();
        for m in &self.messages {
            match &m.to {
                ChatTarget::Everyone => continue,
                ChatTarget::Staff => {}
                ChatTarget::Participant { id } => {
                    parties.insert(id.clone());
                }
            }
            parties.insert(m.from.clone());
        }
        parties
    }

    /// Remembers who sent `seq`, forgetting the oldest beyond [`PENDING_LEN`].
    pub fn track(&mut self, pending: PendingChat) {
        self.pending.push_back(pending);
        while self.pending.len() > PENDING_LEN {
            self.pending.pop_front();
        }
    }

    pub fn take_pending(&mut self, seq: Seq) -> Option<PendingChat> {
        let i = self.pending.iter().rposition(|p| p.seq == seq)?;
        self.pending.remove(i)
    }
}

/// Whether `viewer` may read `message`: nobody in the lobby; otherwise whoever it is
/// [addressed to](addressed_to).
pub(crate) fn can_read(viewer: &Participant, message: &ChatMessage) -> bool {
    !viewer.in_lobby && addressed_to(viewer, &message.from, &message.to)
}

/// Whether a message from `from` to `to` is addressed to `viewer`, wherever they wait:
/// everyone for public messages; staff and the sender for messages to staff; staff, the
/// sender and the addressee for messages to one participant.
fn addressed_to(viewer: &Participant, from: &ParticipantId, to: &ChatTarget) -> bool {
    match to {
        ChatTarget::Everyone => true,
        ChatTarget::Staff => viewer.is_staff() || viewer.id == *from,
        ChatTarget::Participant { id } => {
            viewer.is_staff() || viewer.id == *id || viewer.id == *from
        }
    }
}

/// Someone reading older chat (scroll-back, served from the store rather than the room's
/// memory), with what they may read: the same rule as live delivery. Made by
/// [`crate::Room::chat_reader`], which refuses the lobby.
#[derive(Debug, Clone)]
pub struct ChatReader {
    viewer: Participant,
}

impl ChatReader {
    /// Whether this reader may read `message` (deleted messages are the caller's to skip).
    pub fn can_read(&self, message: &ChatMessage) -> bool {
        can_read(&self.viewer, message)
    }

    pub fn participant_id(&self) -> &ParticipantId {
        &self.viewer.id
    }

    /// Staff read every private message of the room.
    pub fn is_staff(&self) -> bool {
        self.viewer.is_staff()
    }

    pub(crate) fn new(viewer: Participant) -> ChatReader {
        ChatReader { viewer }
    }
}

/// Who a chat message was addressed to: the audience of its `chat_deleted`, live and replayed.
/// A public message's deletion reaches everyone, the lobby included (it is harmless there);
/// a private one's never reaches anyone who could not have read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Audience {
    from: ParticipantId,
    to: ChatTarget,
}

impl Audience {
    pub fn of(message: &ChatMessage) -> Self {
        Audience {
            from: message.from.clone(),
            to: message.to.clone(),
        }
    }

    pub fn includes(&self, viewer: &Participant) -> bool {
        addressed_to(viewer, &self.from, &self.to)
    }
}
