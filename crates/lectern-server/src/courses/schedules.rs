//! Weekly schedules (checked and normalized before they are stored) and the sessions they
//! expand to.

use jiff::civil::{Date, Time, Weekday};
use jiff::{SignedDuration, Timestamp};
use lectern_proto::UnixMillis;
use lectern_schedule::{
    Lifecycle, Occurrence, OneOff, Schedule, ScheduleError, WeeklySchedule, jiff,
};
use lectern_store::{Course, Store, StoredSchedule};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::service::{ServiceError, lifecycle_of, random_hex, require_course};
use crate::room_name::RoomName;

/// The longest window `sessions` lists at once, in days.
pub const MAX_SESSION_WINDOW_DAYS: i64 = 2 * 366;
/// The window `sessions` lists when `to` is not given, in days.
pub const DEFAULT_SESSION_WINDOW_DAYS: i64 = 120;

/// A weekly schedule in the course's timezone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    /// Weekdays: `mon`, `tue`, `wed`, `thu`, `fri`, `sat`, `sun`.
    pub days: Vec<String>,
    /// Local start time, `HH:MM`.
    pub start: String,
    pub duration_minutes: u32,
    /// First date, `YYYY-MM-DD`.
    pub first_date: String,
    /// Last date (inclusive), `YYYY-MM-DD`.
    pub last_date: String,
    /// Dates without a class (holidays), `YYYY-MM-DD`.
    #[serde(default)]
    pub exceptions: Vec<String>,
    /// One-off extra sessions.
    #[serde(default)]
    pub extra: Vec<OneOffSpec>,
}

/// A one-off session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OneOffSpec {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// `HH:MM`.
    pub start: String,
    pub duration_minutes: u32,
}

/// A stored schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ScheduleView {
    pub id: String,
    pub spec: ScheduleSpec,
}

/// One session of a course.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SessionView {
    /// The session's stable id: its scheduled local start, e.g. `2026-09-01T10:00`.
    pub session_key: String,
    /// The session's room id: `{course_id}.{session_key}`.
    pub room: String,
    /// RFC 3339, UTC.
    pub start: String,
    /// RFC 3339, UTC.
    pub end: String,
    /// Local start, e.g. `2026-09-01T10:00:00`.
    pub local_start: String,
}

fn parse_weekday(day: &str) -> Option<Weekday> {
    let day = day.trim().to_ascii_lowercase();
    let days = [
        ("mon", Weekday::Monday),
        ("tue", Weekday::Tuesday),
        ("wed", Weekday::Wednesday),
        ("thu", Weekday::Thursday),
        ("fri", Weekday::Friday),
        ("sat", Weekday::Saturday),
        ("sun", Weekday::Sunday),
    ];
    days.iter()
        .find(|(short, w)| day == *short || day == format!("{w:?}").to_ascii_lowercase())
        .map(|(_, w)| *w)
}

pub(super) fn weekday_name(day: Weekday) -> &'static str {
    match day {
        Weekday::Monday => "mon",
        Weekday::Tuesday => "tue",
        Weekday::Wednesday => "wed",
        Weekday::Thursday => "thu",
        Weekday::Friday => "fri",
        Weekday::Saturday => "sat",
        Weekday::Sunday => "sun",
    }
}

fn parse_date(field: &str, value: &str) -> Result<Date, ServiceError> {
    value
        .trim()
        .parse()
        .map_err(|_| ServiceError::field(field, format!("{value:?} is not a date (YYYY-MM-DD)")))
}

fn parse_time(field: &str, value: &str) -> Result<Time, ServiceError> {
    let value = value.trim();
    let ok = value.len() == 5 && value.as_bytes()[2] == b':';
    ok.then(|| value.parse().ok())
        .flatten()
        .ok_or_else(|| ServiceError::field(field, format!("{value:?} is not a time (HH:MM)")))
}

fn fmt_time(time: Time) -> String {
    format!("{:02}:{:02}", time.hour(), time.minute())
}

/// Checks a schedule spec in a timezone; returns the schedule and the spec normalized.
pub fn check_schedule(
    spec: &ScheduleSpec,
    timezone: &str,
) -> Result<(Schedule, ScheduleSpec), ServiceError> {
    let mut days = Vec::new();
    for day in &spec.days {
        days.push(parse_weekday(day).ok_or_else(|| {
            ServiceError::field("days", format!("{day:?} is not a weekday (mon..sun)"))
        })?);
    }
    let mut exceptions = Vec::new();
    for date in &spec.exceptions {
        exceptions.push(parse_date("exceptions", date)?);
    }
    let mut extra = Vec::new();
    for one in &spec.extra {
        extra.push(OneOff {
            date: parse_date("extra.date", &one.date)?,
            start: parse_time("extra.start", &one.start)?,
            duration_minutes: one.duration_minutes,
        });
    }
    let weekly = WeeklySchedule {
        timezone: timezone.to_owned(),
        days,
        start: parse_time("start", &spec.start)?,
        duration_minutes: spec.duration_minutes,
        first_date: parse_date("first_date", &spec.first_date)?,
        last_date: parse_date("last_date", &spec.last_date)?,
        exceptions,
        extra,
    };
    let schedule = Schedule::new(weekly).map_err(|e| {
        let field = match &e {
            ScheduleError::UnknownTimezone { .. } => "timezone",
            ScheduleError::NoDays => "days",
            ScheduleError::InvalidDuration { .. } => "duration_minutes",
            ScheduleError::StartNotWholeMinute { .. } => "start",
            ScheduleError::LastBeforeFirst { .. } | ScheduleError::RangeTooLong { .. } => {
                "last_date"
            }
            _ => "schedule",
        };
        ServiceError::field(field, e.to_string())
    })?;
    let s = schedule.spec();
    let normalized = ScheduleSpec {
        days: s.days.iter().map(|d| weekday_name(*d).to_owned()).collect(),
        start: fmt_time(s.start),
        duration_minutes: s.duration_minutes,
        first_date: s.first_date.to_string(),
        last_date: s.last_date.to_string(),
        exceptions: s.exceptions.iter().map(Date::to_string).collect(),
        extra: s
            .extra
            .iter()
            .map(|o| OneOffSpec {
                date: o.date.to_string(),
                start: fmt_time(o.start),
                duration_minutes: o.duration_minutes,
            })
            .collect(),
    };
    Ok((schedule, normalized))
}

pub async fn add_schedule(
    store: &Store,
    course: &str,
    spec: ScheduleSpec,
    now: UnixMillis,
) -> Result<ScheduleView, ServiceError> {
    let course = require_course(store, course).await?;
    let (_, normalized) = check_schedule(&spec, &course.timezone)?;
    let id = format!("sch_{}", random_hex(8));
    let json = serde_json::to_string(&normalized)
        .map_err(|e| ServiceError::Internal(format!("schedule to JSON: {e}")))?;
    store
        .add_schedule(&StoredSchedule {
            id: id.clone(),
            course_id: course.id,
            spec: json,
            created_at: now,
        })
        .await?;
    Ok(ScheduleView {
        id,
        spec: normalized,
    })
}

pub async fn list_schedules(
    store: &Store,
    course: &str,
) -> Result<Vec<ScheduleView>, ServiceError> {
    require_course(store, course).await?;
    store
        .schedules(course)
        .await?
        .into_iter()
        .map(|s| {
            let spec = serde_json::from_str(&s.spec)
                .map_err(|e| ServiceError::Internal(format!("stored schedule {}: {e}", s.id)))?;
            Ok(ScheduleView { id: s.id, spec })
        })
        .collect()
}

/// The course and its validated schedules.
pub(super) async fn course_schedules(
    store: &Store,
    course: &str,
) -> Result<(Course, Vec<Schedule>), ServiceError> {
    let course_row = require_course(store, course).await?;
    let mut schedules = Vec::new();
    for view in list_schedules(store, course).await? {
        let (schedule, _) = check_schedule(&view.spec, &course_row.timezone)
            .map_err(|e| ServiceError::Internal(format!("stored schedule {}: {e}", view.id)))?;
        schedules.push(schedule);
    }
    Ok((course_row, schedules))
}

pub(super) fn session_view(course: &str, occ: &Occurrence) -> SessionView {
    SessionView {
        session_key: occ.session_key.to_string(),
        room: RoomName::session(course, occ.session_key.as_str()).to_string(),
        start: occ.start_utc.to_string(),
        end: occ.end_utc.to_string(),
        local_start: occ.local_start.to_string(),
    }
}

/// An instant from user input: RFC 3339 (`2026-09-01T08:00:00Z`) or a date, read as midnight
/// in the course's timezone.
fn parse_instant(field: &str, value: &str, timezone: &str) -> Result<Timestamp, ServiceError> {
    if let Ok(ts) = value.parse::<Timestamp>() {
        return Ok(ts);
    }
    let date: Date = value.parse().map_err(|_| {
        ServiceError::field(
            field,
            format!("{value:?} is not an RFC 3339 time or a date"),
        )
    })?;
    let tz =
        lectern_schedule::time_zone(timezone).map_err(|e| ServiceError::Internal(e.to_string()))?;
    date.to_zoned_datetime(tz)
        .map(|z| z.timestamp())
        .map_err(|e| ServiceError::field(field, e.to_string()))
}

/// The sessions starting in `[from, to)`; `from` defaults to `now`, `to` to
/// [`DEFAULT_SESSION_WINDOW_DAYS`] after `from`.
pub async fn sessions(
    store: &Store,
    course: &str,
    from: Option<&str>,
    to: Option<&str>,
    now: Timestamp,
) -> Result<Vec<SessionView>, ServiceError> {
    let (course_row, schedules) = course_schedules(store, course).await?;
    let from = match from {
        Some(v) => parse_instant("from", v, &course_row.timezone)?,
        None => now,
    };
    let to = match to {
        Some(v) => parse_instant("to", v, &course_row.timezone)?,
        None => add_days(from, DEFAULT_SESSION_WINDOW_DAYS),
    };
    if to < from {
        return Err(ServiceError::field("to", "must not be before from"));
    }
    if to.duration_since(from) > SignedDuration::from_hours(24 * MAX_SESSION_WINDOW_DAYS) {
        return Err(ServiceError::field(
            "to",
            format!("the window is at most {MAX_SESSION_WINDOW_DAYS} days"),
        ));
    }
    Ok(lectern_schedule::expand(&schedules, from, to)
        .iter()
        .map(|occ| session_view(course, occ))
        .collect())
}

fn add_days(at: Timestamp, days: i64) -> Timestamp {
    at.checked_add(SignedDuration::from_hours(24 * days))
        .unwrap_or(Timestamp::MAX)
}

/// The course, one of its sessions by key, and the course lifecycle.
pub(super) async fn course_session(
    store: &Store,
    course: &str,
    session_key: &str,
) -> Result<(Course, Occurrence, Lifecycle), ServiceError> {
    let (course_row, schedules) = course_schedules(store, course).await?;
    let occ = lectern_schedule::expand_all(&schedules)
        .into_iter()
        .find(|o| o.session_key.as_str() == session_key)
        .ok_or_else(|| ServiceError::NotFound {
            what: "session",
            id: session_key.to_owned(),
        })?;
    let lifecycle = lifecycle_of(&course_row);
    Ok((course_row, occ, lifecycle))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ScheduleSpec {
        ScheduleSpec {
            days: vec!["Tuesday".into(), "thu".into(), "tue".into()],
            start: "10:00".into(),
            duration_minutes: 90,
            first_date: "2026-09-01".into(),
            last_date: "2026-12-15".into(),
            exceptions: vec!["2026-11-12".into()],
            extra: vec![],
        }
    }

    #[test]
    fn schedules_are_checked_and_normalized() {
        let (schedule, normalized) = check_schedule(&spec(), "Europe/Paris").unwrap();
        assert_eq!(normalized.days, ["tue", "thu"]);
        assert_eq!(normalized.start, "10:00");
        assert_eq!(normalized.first_date, "2026-09-01");
        assert!(!lectern_schedule::expand_all(&[schedule]).is_empty());

        let mut bad = spec();
        bad.start = "10h".into();
        let err = check_schedule(&bad, "Europe/Paris").unwrap_err();
        assert_eq!(err.code(), "invalid_input");
        assert!(err.to_string().contains("start"), "{err}");
        let err = check_schedule(&spec(), "Mars/Olympus").unwrap_err();
        assert!(err.to_string().contains("Mars/Olympus"), "{err}");
        let mut bad = spec();
        bad.last_date = "2026-08-01".into();
        assert!(check_schedule(&bad, "Europe/Paris").is_err());
    }
}
