//! The attendance of one session: who of the roster was in the session's room while it was
//! open, for how long, and whether on time (`present`, `late`, `absent`).

use lectern_proto::{Role, UnixMillis};
use lectern_schedule::jiff::Timestamp;
use lectern_schedule::{Lifecycle, Occurrence};
use lectern_store::{AttendanceInterval, Course, CourseMember, Store};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::schedules::course_session;
use super::service::{ServiceError, rfc3339};
use crate::room_name::RoomName;

/// A first join later than this many minutes after the scheduled start is `late` (the default
/// of the `late_after_minutes` query parameter and CLI option).
pub const DEFAULT_LATE_AFTER_MINUTES: u32 = 10;
/// The largest `late_after_minutes` accepted (24 hours).
pub const MAX_LATE_AFTER_MINUTES: u32 = 24 * 60;

/// When a session counts: its room's opening (start minus lobby) to its closing (end plus
/// grace), the scheduled start, and how late a first join may be before it is `late`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionWindow {
    pub opens_at: UnixMillis,
    pub starts_at: UnixMillis,
    pub closes_at: UnixMillis,
    pub late_after_ms: u64,
}

/// `present`, `late` or `absent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttendanceStatus {
    /// Joined before the start plus the late threshold.
    Present,
    /// Joined first after the start plus the late threshold.
    Late,
    /// Never in the room while it was open for the session.
    Absent,
}

impl AttendanceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AttendanceStatus::Present => "present",
            AttendanceStatus::Late => "late",
            AttendanceStatus::Absent => "absent",
        }
    }
}

/// One participant's presence in a session, computed by [`presence`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presence {
    /// The earliest join among the stays that overlap the window (not clipped).
    pub first_join: Option<UnixMillis>,
    /// The latest leave among those stays; `None` if absent or one of them is still open.
    pub last_leave: Option<UnixMillis>,
    /// Whether one of those stays is still open.
    pub still_present: bool,
    /// The union of the stays clipped to the window, in milliseconds: overlapping stays (two
    /// tabs) count once, an open stay counts until `now`.
    pub present_ms: u64,
    pub status: AttendanceStatus,
}

/// One participant's presence from their stays in the session's room, each `(joined, left)`
/// with `left` `None` while still in the room. Pure: `now` is given.
pub fn presence(
    stays: &[(UnixMillis, Option<UnixMillis>)],
    window: SessionWindow,
    now: UnixMillis,
) -> Presence {
    let mut clipped = Vec::new();
    let mut first_join: Option<UnixMillis> = None;
    let mut last_leave: Option<UnixMillis> = None;
    let mut still_present = false;
    for &(joined, left) in stays {
        let end = left.unwrap_or(now.max(joined));
        if joined > window.closes_at || end < window.opens_at || end < joined {
            continue;
        }
        first_join = Some(first_join.map_or(joined, |f| f.min(joined)));
        match left {
            Some(left) => last_leave = Some(last_leave.map_or(left, |l| l.max(left))),
            None => still_present = true,
        }
        let from = joined.max(window.opens_at);
        let to = end.min(window.closes_at);
        if from < to {
            clipped.push((from, to));
        }
    }
    clipped.sort_unstable();
    let mut present_ms = 0;
    let mut current: Option<(UnixMillis, UnixMillis)> = None;
    for (from, to) in clipped {
        current = match current {
            Some((s, e)) if from <= e => Some((s, e.max(to))),
            Some((s, e)) => {
                present_ms += e - s;
                Some((from, to))
            }
            None => Some((from, to)),
        };
    }
    if let Some((s, e)) = current {
        present_ms += e - s;
    }
    let status = match first_join {
        None => AttendanceStatus::Absent,
        Some(first)
            if first.max(window.opens_at)
                > window.starts_at.saturating_add(window.late_after_ms) =>
        {
            AttendanceStatus::Late
        }
        Some(_) => AttendanceStatus::Present,
    };
    Presence {
        first_join,
        last_leave: if still_present { None } else { last_leave },
        still_present,
        present_ms,
        status,
    }
}

/// One line of a session's attendance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AttendanceRow {
    pub member_id: String,
    /// The roster name, or the name the participant joined with if not on the roster.
    pub name: String,
    /// The roster role, or the role the participant joined with if not on the roster.
    pub role: String,
    /// False for a participant who attended without being on the roster (e.g. removed since).
    pub on_roster: bool,
    /// The earliest join of a stay overlapping the session window, RFC 3339 UTC.
    pub first_join: Option<String>,
    /// The latest leave of those stays, RFC 3339 UTC; null if absent or still in the room.
    pub last_leave: Option<String>,
    /// Whether the participant is in the room now.
    pub still_present: bool,
    /// Whole minutes present within the session window (stays merged, so reconnects and two
    /// tabs count once; a stay still open counts until now).
    pub minutes_present: u64,
    /// The same, in seconds.
    pub seconds_present: u64,
    pub status: AttendanceStatus,
}

/// A session's attendance: every student of the roster, then anyone else not on the roster
/// who attended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AttendanceReport {
    pub course_id: String,
    pub session_key: String,
    pub room: String,
    /// Scheduled start and end, RFC 3339 UTC.
    pub start: String,
    pub end: String,
    /// The window presence is counted in: start minus the lobby, end plus the grace period.
    pub window_start: String,
    pub window_end: String,
    /// A first join later than start plus this many minutes is `late`.
    pub late_after_minutes: u32,
    /// When the report was computed, RFC 3339 UTC.
    pub generated_at: String,
    pub attendees: Vec<AttendanceRow>,
}

/// The CSV header of [`attendance_csv`].
pub const ATTENDANCE_CSV_HEADER: &str = "member_id,name,role,on_roster,first_join,last_leave,\
                                         still_present,minutes_present,seconds_present,status";

/// The attendance as CSV, a header row then one row per attendee.
pub fn attendance_csv(report: &AttendanceReport) -> Result<String, ServiceError> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let internal = |e: csv::Error| ServiceError::Internal(format!("attendance CSV: {e}"));
    writer
        .write_record(ATTENDANCE_CSV_HEADER.split(','))
        .map_err(internal)?;
    for row in &report.attendees {
        writer
            .write_record([
                row.member_id.as_str(),
                row.name.as_str(),
                row.role.as_str(),
                if row.on_roster { "true" } else { "false" },
                row.first_join.as_deref().unwrap_or(""),
                row.last_leave.as_deref().unwrap_or(""),
                if row.still_present { "true" } else { "false" },
                &row.minutes_present.to_string(),
                &row.seconds_present.to_string(),
                row.status.as_str(),
            ])
            .map_err(internal)?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| ServiceError::Internal(format!("attendance CSV: {e}")))?;
    String::from_utf8(bytes).map_err(|e| ServiceError::Internal(format!("attendance CSV: {e}")))
}

fn to_ms(at: Timestamp) -> UnixMillis {
    u64::try_from(at.as_millisecond()).unwrap_or(0)
}

/// The attendance of one session: every roster member with role student, and every
/// participant not on the roster who was in the session's room while it was open (flagged
/// `on_roster: false`). Staff on the roster are left out.
pub async fn attendance(
    store: &Store,
    course: &str,
    session_key: &str,
    late_after_minutes: Option<u32>,
    now: Timestamp,
) -> Result<AttendanceReport, ServiceError> {
    let late_after_minutes = late_after_minutes.unwrap_or(DEFAULT_LATE_AFTER_MINUTES);
    if late_after_minutes > MAX_LATE_AFTER_MINUTES {
        return Err(ServiceError::field(
            "late_after_minutes",
            format!("at most {MAX_LATE_AFTER_MINUTES}"),
        ));
    }
    let (course_row, occ, lifecycle) = course_session(store, course, session_key).await?;
    let room = RoomName::session(&course_row.id, occ.session_key.as_str());
    let intervals = store.attendance(&room.room_id()).await?;
    let roster = store.members(course).await?;
    let session = Session {
        course: &course_row,
        occurrence: &occ,
        lifecycle: &lifecycle,
    };
    Ok(build_report(
        session,
        &roster,
        &intervals,
        late_after_minutes,
        now,
    ))
}

/// The session a report is about: its course, its occurrence and the course's lifecycle.
#[derive(Clone, Copy)]
pub(super) struct Session<'a> {
    pub course: &'a Course,
    pub occurrence: &'a Occurrence,
    pub lifecycle: &'a Lifecycle,
}

/// One session's report from what the caller read: the course's roster and the intervals of
/// the session's room (the course home reads those once for a page of sessions).
pub(super) fn build_report(
    session: Session<'_>,
    roster: &[CourseMember],
    intervals: &[AttendanceInterval],
    late_after_minutes: u32,
    now: Timestamp,
) -> AttendanceReport {
    let Session {
        course: course_row,
        occurrence: occ,
        lifecycle,
    } = session;
    let times = lifecycle.times(occ);
    let window = SessionWindow {
        opens_at: to_ms(times.opens_at),
        starts_at: to_ms(times.starts_at),
        closes_at: to_ms(times.closes_at),
        late_after_ms: u64::from(late_after_minutes) * 60_000,
    };
    let room = RoomName::session(&course_row.id, occ.session_key.as_str());
    let now_ms = to_ms(now);

    // Stays by participant, in the order they first joined.
    let mut stays: Vec<(String, Vec<&AttendanceInterval>)> = Vec::new();
    for interval in intervals {
        let id = interval.participant_id.as_str();
        match stays.iter_mut().find(|(p, _)| p == id) {
            Some((_, list)) => list.push(interval),
            None => stays.push((id.to_owned(), vec![interval])),
        }
    }
    let stays_of = |id: &str| -> Vec<(UnixMillis, Option<UnixMillis>)> {
        stays
            .iter()
            .find(|(p, _)| p == id)
            .map(|(_, list)| list.iter().map(|i| (i.joined_at, i.left_at)).collect())
            .unwrap_or_default()
    };
    let row =
        |member_id: &str, name: &str, role: Role, on_roster: bool, p: Presence| AttendanceRow {
            member_id: member_id.to_owned(),
            name: name.to_owned(),
            role: role.as_str().to_owned(),
            on_roster,
            first_join: p.first_join.map(rfc3339),
            last_leave: p.last_leave.map(rfc3339),
            still_present: p.still_present,
            minutes_present: p.present_ms / 60_000,
            seconds_present: p.present_ms / 1000,
            status: p.status,
        };

    let mut attendees = Vec::new();
    for member in roster.iter().filter(|m| m.role == Role::Student) {
        let p = presence(&stays_of(&member.member_id), window, now_ms);
        attendees.push(row(&member.member_id, &member.name, member.role, true, p));
    }
    for (id, list) in &stays {
        if roster.iter().any(|m| &m.member_id == id) {
            continue;
        }
        let p = presence(&stays_of(id), window, now_ms);
        if p.status == AttendanceStatus::Absent {
            continue;
        }
        let last = list.last().expect("a participant has at least one stay");
        attendees.push(row(id, &last.name, last.role, false, p));
    }
    AttendanceReport {
        course_id: course_row.id.clone(),
        session_key: occ.session_key.to_string(),
        room: room.to_string(),
        start: occ.start_utc.to_string(),
        end: occ.end_utc.to_string(),
        window_start: times.opens_at.to_string(),
        window_end: times.closes_at.to_string(),
        late_after_minutes,
        generated_at: now.to_string(),
        attendees,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60_000;

    /// A session starting at minute 100 (ms 6_000_000), open from 85 to 200, late after 10.
    fn window() -> SessionWindow {
        SessionWindow {
            opens_at: 85 * MIN,
            starts_at: 100 * MIN,
            closes_at: 200 * MIN,
            late_after_ms: 10 * MIN,
        }
    }

    fn at(minute: u64) -> UnixMillis {
        minute * MIN
    }

    #[test]
    fn presence_merges_overlapping_stays_from_two_tabs() {
        let stays = [(at(100), Some(at(140))), (at(120), Some(at(160)))];
        let p = presence(&stays, window(), at(1000));
        assert_eq!(p.present_ms, 60 * MIN);
        assert_eq!(p.first_join, Some(at(100)));
        assert_eq!(p.last_leave, Some(at(160)));
        assert_eq!(p.status, AttendanceStatus::Present);
        // A stay inside another adds nothing; order does not matter.
        let stays = [(at(110), Some(at(120))), (at(100), Some(at(150)))];
        assert_eq!(presence(&stays, window(), at(1000)).present_ms, 50 * MIN);
    }

    #[test]
    fn presence_skips_reconnect_gaps() {
        let stays = [(at(95), Some(at(130))), (at(133), Some(at(190)))];
        let p = presence(&stays, window(), at(1000));
        assert_eq!(p.present_ms, (35 + 57) * MIN);
        assert_eq!(p.first_join, Some(at(95)));
        assert_eq!(p.last_leave, Some(at(190)));
        assert!(!p.still_present);
        assert_eq!(p.status, AttendanceStatus::Present);
        // Touching stays (leave and rejoin in the same millisecond) are not double counted.
        let stays = [(at(100), Some(at(130))), (at(130), Some(at(150)))];
        assert_eq!(presence(&stays, window(), at(1000)).present_ms, 50 * MIN);
    }

    #[test]
    fn presence_counts_an_open_stay_until_now() {
        let stays = [(at(100), Some(at(110))), (at(120), None)];
        let p = presence(&stays, window(), at(150));
        assert_eq!(p.present_ms, (10 + 30) * MIN);
        assert!(p.still_present);
        assert_eq!(p.last_leave, None);
        // ... but not past the window's end.
        let p = presence(&stays, window(), at(500));
        assert_eq!(p.present_ms, (10 + 80) * MIN);
    }

    #[test]
    fn presence_is_clipped_to_the_window() {
        // Joined before the room opened, left after it closed: the whole window counts.
        let stays = [(at(10), Some(at(400)))];
        let p = presence(&stays, window(), at(1000));
        assert_eq!(p.present_ms, 115 * MIN);
        assert_eq!(p.first_join, Some(at(10)));
        assert_eq!(p.status, AttendanceStatus::Present);
        // Stays entirely outside the window do not count at all.
        let stays = [(at(10), Some(at(50))), (at(300), Some(at(310)))];
        let p = presence(&stays, window(), at(1000));
        assert_eq!(p.present_ms, 0);
        assert_eq!(p.first_join, None);
        assert_eq!(p.status, AttendanceStatus::Absent);
    }

    #[test]
    fn presence_tells_late_from_present_and_absent() {
        let p = |join: u64| presence(&[(at(join), Some(at(join + 1)))], window(), at(1000)).status;
        assert_eq!(p(86), AttendanceStatus::Present);
        assert_eq!(
            p(110),
            AttendanceStatus::Present,
            "exactly at the threshold"
        );
        assert_eq!(p(111), AttendanceStatus::Late);
        assert_eq!(p(199), AttendanceStatus::Late);
        assert_eq!(
            presence(&[], window(), at(1000)).status,
            AttendanceStatus::Absent
        );
        // The first join decides, even if a later stay is longer.
        let stays = [(at(150), Some(at(190))), (at(105), Some(at(106)))];
        assert_eq!(
            presence(&stays, window(), at(1000)).status,
            AttendanceStatus::Present
        );
    }

    #[test]
    fn attendance_csv_has_a_header_and_quotes_names() {
        let report = AttendanceReport {
            course_id: "c".into(),
            session_key: "k".into(),
            room: "c.k".into(),
            start: String::new(),
            end: String::new(),
            window_start: String::new(),
            window_end: String::new(),
            late_after_minutes: 10,
            generated_at: String::new(),
            attendees: vec![AttendanceRow {
                member_id: "ada".into(),
                name: "Lovelace, Ada".into(),
                role: "student".into(),
                on_roster: true,
                first_join: None,
                last_leave: None,
                still_present: false,
                minutes_present: 0,
                seconds_present: 0,
                status: AttendanceStatus::Absent,
            }],
        };
        let csv = attendance_csv(&report).unwrap();
        let mut lines = csv.lines();
        assert_eq!(lines.next(), Some(ATTENDANCE_CSV_HEADER));
        assert_eq!(
            lines.next(),
            Some("ada,\"Lovelace, Ada\",student,true,,,false,0,0,absent")
        );
    }
}
