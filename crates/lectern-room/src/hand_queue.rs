//! The hand queue: raised hands in the order they were raised, never duplicated.

use std::collections::{HashSet, VecDeque};

use lectern_proto::{HandEntry, ParticipantId, UnixMillis};

#[derive(Debug, Default)]
pub(crate) struct HandQueue {
    entries: VecDeque<HandEntry>,
    raised: HashSet<ParticipantId>,
}

impl HandQueue {
    /// Raises `id`'s hand at the back of the queue. False if it was already raised.
    pub fn raise(&mut self, id: &ParticipantId, at: UnixMillis) -> bool {
        if !self.raised.insert(id.clone()) {
            return false;
        }
        self.entries.push_back(HandEntry {
            participant_id: id.clone(),
            raised_at: at,
        });
        true
    }

    /// Lowers `id`'s hand. False if it was not raised.
    pub fn lower(&mut self, id: &ParticipantId) -> bool {
        if !self.raised.remove(id) {
            return false;
        }
        self.entries.retain(|e| e.participant_id != *id);
        true
    }

    /// Lowers every hand. False if none was raised.
    pub fn clear(&mut self) -> bool {
        let had_any = !self.entries.is_empty();
        self.entries.clear();
        self.raised.clear();
        had_any
    }

    /// Whose hand has been up longest.
    pub fn first(&self) -> Option<&ParticipantId> {
        self.entries.front().map(|e| &e.participant_id)
    }

    /// Oldest first.
    pub fn entries(&self) -> Vec<HandEntry> {
        self.entries.iter().cloned().collect()
    }

    /// Oldest first.
    pub fn ids(&self) -> Vec<ParticipantId> {
        self.entries
            .iter()
            .map(|e| e.participant_id.clone())
            .collect()
    }
}
