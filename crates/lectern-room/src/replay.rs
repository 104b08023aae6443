//! The replay ring: the last `replay_len` sequenced events, so a client that reconnects with
//! `last_seq` can be sent exactly what it missed instead of a full snapshot.
//!
//! Visibility is decided when replaying, from the event itself (a chat event carries its
//! target) and, for a `chat_deleted`, the audience of the deleted message, which the ring keeps
//! with it.
//!
//! Only a client that saw an event of this room instance can resume: a room recreated from
//! storage starts with an empty ring (and the class state it restored, see `room/restore.rs`),
//! which a client of the earlier instance must take as a snapshot.

use std::collections::VecDeque;

use lectern_proto::{RoomEvent, Seq, UnixMillis};

use crate::chat_log::Audience;

/// One kept event.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub seq: Seq,
    pub at: UnixMillis,
    pub event: RoomEvent,
    /// Set when only this audience may see the event (a deleted chat message's).
    pub audience: Option<Audience>,
}

#[derive(Debug)]
pub(crate) struct ReplayRing {
    capacity: usize,
    /// Ordered by `seq`. Gaps are chat messages that were deleted or failed to store.
    entries: VecDeque<Entry>,
    /// Every event with a larger seq that still exists is in `entries`: the seq of the last
    /// evicted event, or the room's seq when it was created.
    floor: Seq,
    /// The room's seq when it was created: the last seq of any earlier instance.
    start: Seq,
}

impl ReplayRing {
    /// An empty ring for a room created at seq `start`.
    pub fn new(capacity: usize, start: Seq) -> Self {
        ReplayRing {
            capacity,
            entries: VecDeque::with_capacity(capacity.min(4_096)),
            floor: start,
            start,
        }
    }

    pub fn push(&mut self, seq: Seq, at: UnixMillis, event: RoomEvent, audience: Option<Audience>) {
        self.entries.push_back(Entry {
            seq,
            at,
            event,
            audience,
        });
        while self.entries.len() > self.capacity {
            if let Some(old) = self.entries.pop_front() {
                self.floor = old.seq;
            }
        }
        if self.capacity == 0 {
            self.floor = seq;
        }
    }

    /// Drops a chat event (deleted, or never stored) so it is never replayed. Other events were
    /// delivered and stay.
    pub fn remove_chat(&mut self, seq: Seq) {
        let i = self.entries.partition_point(|e| e.seq < seq);
        if self
            .entries
            .get(i)
            .is_some_and(|e| e.seq == seq && matches!(e.event, RoomEvent::Chat { .. }))
        {
            self.entries.remove(i);
        }
    }

    /// True when every event after `last_seq` (up to `current`) can be replayed to a client
    /// that holds this room's state as of `last_seq`: the client saw an event of this room
    /// instance (`last_seq` after `start`; at or before it, its state is an earlier instance's
    /// roster and class state, which replaying nothing would leave stale), the ring still
    /// reaches back to it, and it is not ahead of the room.
    pub fn covers(&self, last_seq: Seq, current: Seq) -> bool {
        last_seq > self.start && last_seq >= self.floor && last_seq <= current
    }

    /// The kept events after `last_seq`, oldest first.
    pub fn since(&self, last_seq: Seq) -> impl Iterator<Item = &Entry> {
        let i = self.entries.partition_point(|e| e.seq <= last_seq);
        self.entries.range(i..)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }
}
