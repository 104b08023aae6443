//! The room's own attendance tally: everyone who has been in this room since it was created,
//! from the same join and leave moments it asks the driver to store. Kept in memory for the
//! staff's attendance panel (`attendance_get`); the stored records stay the durable account.

use std::collections::HashMap;

use lectern_proto::{AttendanceEntry, ParticipantId, Role, UnixMillis};

use crate::AttendanceKind;

#[derive(Debug, Clone)]
struct Tally {
    id: ParticipantId,
    name: String,
    role: Role,
    first_joined_at: UnixMillis,
    last_left_at: Option<UnixMillis>,
    late: bool,
    intervals: u32,
}

/// Every participant ever in the room, in order of first join.
#[derive(Debug, Default)]
pub(crate) struct AttendanceTally {
    list: Vec<Tally>,
    index: HashMap<ParticipantId, usize>,
}

impl AttendanceTally {
    /// Counts one join or leave. `late` is asked only on a participant's first join.
    pub fn record(
        &mut self,
        id: &ParticipantId,
        name: &str,
        role: Role,
        kind: AttendanceKind,
        at: UnixMillis,
        late: impl FnOnce() -> bool,
    ) {
        let i = match self.index.get(id) {
            Some(&i) => i,
            None => {
                if kind == AttendanceKind::Leave {
                    return; // never joined: nothing to end
                }
                self.index.insert(id.clone(), self.list.len());
                self.list.push(Tally {
                    id: id.clone(),
                    name: name.to_owned(),
                    role,
                    first_joined_at: at,
                    last_left_at: None,
                    late: late(),
                    intervals: 0,
                });
                self.list.len() - 1
            }
        };
        let entry = &mut self.list[i];
        match kind {
            AttendanceKind::Join => entry.intervals = entry.intervals.saturating_add(1),
            AttendanceKind::Leave => entry.last_left_at = Some(at),
        }
    }

    /// The entries, sorted by first join; `present` says who is in the room now.
    pub fn entries(&self, present: impl Fn(&ParticipantId) -> bool) -> Vec<AttendanceEntry> {
        let mut entries: Vec<AttendanceEntry> = self
            .list
            .iter()
            .map(|t| AttendanceEntry {
                participant_id: t.id.clone(),
                name: t.name.clone(),
                role: t.role,
                present: present(&t.id),
                first_joined_at: t.first_joined_at,
                last_left_at: t.last_left_at,
                late: t.late,
                intervals: t.intervals,
            })
            .collect();
        entries.sort_by_key(|e| e.first_joined_at);
        entries
    }
}
