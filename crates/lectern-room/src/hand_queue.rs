//! The hand queue: raised hands in the order they were raised, never duplicated.

use std::collections::{HashMap, VecDeque};

use lectern_proto::{HandEntry, ParticipantId, UnixMillis};

use crate::SavedHand;

#[derive(Debug, Default)]
pub(crate) struct HandQueue {
    entries: VecDeque<HandEntry>,
    /// Each raised hand's order key (see [`SavedHand::order`]).
    raised: HashMap<ParticipantId, u64>,
}

impl HandQueue {
    /// Raises `id`'s hand at the back of the queue, with `order` (larger than any before) as
    /// its stored place. False if it was already raised.
    pub fn raise(&mut self, id: &ParticipantId, at: UnixMillis, order: u64) -> bool {
        if self.raised.contains_key(id) {
            return false;
        }
        self.raised.insert(id.clone(), order);
        self.entries.push_back(HandEntry {
            participant_id: id.clone(),
            raised_at: at,
        });
        true
    }

    /// Rebuilds the queue from stored hands, in their order.
    pub fn restore(&mut self, mut hands: Vec<(ParticipantId, SavedHand)>) {
        hands.sort_by_key(|(id, hand)| (hand.order, id.clone()));
        for (id, hand) in hands {
            self.raise(&id, hand.raised_at, hand.order);
        }
    }

    /// Lowers `id`'s hand. False if it was not raised.
    pub fn lower(&mut self, id: &ParticipantId) -> bool {
        if self.raised.remove(id).is_none() {
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

    /// Every raised hand with its stored form.
    pub fn saved(&self) -> HashMap<&ParticipantId, SavedHand> {
        self.entries
            .iter()
            .filter_map(|e| {
                let order = *self.raised.get(&e.participant_id)?;
                let hand = SavedHand {
                    raised_at: e.raised_at,
                    order,
                };
                Some((&e.participant_id, hand))
            })
            .collect()
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
