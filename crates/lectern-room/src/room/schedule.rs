//! The lifecycle of a scheduled session's room, driven by the times passed in: auto-start at
//! the scheduled start, a warning before the scheduled end, and closing for everyone after the
//! grace period (see [`crate::SessionSchedule`]).

use lectern_proto::{ClassState, CloseReason, LeaveReason, RoomEvent, UnixMillis};

use super::{Room, attendance};
use crate::AttendanceKind;

/// Which of the schedule's moments the room has passed. Each is acted on once.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ScheduleProgress {
    /// The scheduled start passed (the class was auto-started if the course says so).
    pub started: bool,
    /// The end warning was due (and sent, if the class was live).
    pub warned: bool,
    /// The room closed for everyone.
    pub closed: bool,
}

impl Room {
    /// Acts on every moment of the schedule that is due at `now`. Called before each input.
    pub(super) fn run_schedule(&mut self, now: UnixMillis) {
        let Some(schedule) = self.config.schedule else {
            return;
        };
        if self.progress.closed {
            return;
        }
        if !self.progress.started && now >= schedule.starts_at {
            self.progress.started = true;
            // Never auto-start once the scheduled end has passed.
            if schedule.auto_start
                && self.class_state == ClassState::NotStarted
                && now < schedule.ends_at
            {
                self.start_class(now, None);
            }
        }
        if !self.progress.warned && schedule.warning_ms > 0 && now >= schedule.warns_at() {
            self.progress.warned = true;
            self.saved.dirty = true;
            if self.class_state == ClassState::Live && now < schedule.ends_at {
                let event = RoomEvent::ClassEndingSoon {
                    ends_at: schedule.ends_at,
                    closes_at: schedule.closes_at(),
                };
                self.emit(now, event, None);
            }
        }
        if now >= schedule.closes_at() {
            self.progress.closed = true;
            self.close_session(now);
        }
    }

    /// The next schedule moment the room has not passed, for [`Room::poll_timeout`].
    pub(super) fn next_schedule_deadline(&self) -> Option<UnixMillis> {
        let schedule = self.config.schedule?;
        let p = self.progress;
        if p.closed {
            return None;
        }
        [
            (!p.started).then_some(schedule.starts_at),
            (!p.warned && schedule.warning_ms > 0).then(|| schedule.warns_at()),
            Some(schedule.closes_at()),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The session is over: a live class ends as if staff ended it (students and observers
    /// leave), then everyone left (staff, the lobby, anyone in their grace period) leaves too.
    fn close_session(&mut self, now: UnixMillis) {
        if self.class_state == ClassState::Live {
            self.end_class(now, None);
        }
        self.presenter = None;
        self.hands.clear();
        let everyone = self.roster.remove_where(|_| true);
        for p in everyone {
            let event = RoomEvent::ParticipantLeft {
                participant_id: p.id.clone(),
                reason: LeaveReason::ClassEnded,
            };
            self.emit(now, event, None);
            if let Some(conn) = p.conn {
                self.persist(attendance(&p, AttendanceKind::Leave, now));
                self.close(conn, CloseReason::ClassEnded);
            }
            self.stop_intent(p.id);
        }
    }
}
