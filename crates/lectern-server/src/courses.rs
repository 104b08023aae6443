//! The course service: what the REST API (`api.rs`) and the CLI (`main.rs`) both do with
//! courses, rosters, schedules, sessions, join links and API keys.
//!
//! Input is validated here, before anything reaches the store: course ids, timezones and
//! schedules (through [`lectern_schedule::Schedule::new`]), roles ([`Role::parse`]), CSV rosters
//! (every row checked, every bad row reported with its line, nothing stored if one is bad).
//! Errors are [`ServiceError`]s with a stable [`ServiceError::code`].

use jiff::civil::{Date, Time, Weekday};
use jiff::{SignedDuration, Timestamp};
use lectern_proto::{Role, UnixMillis};
use lectern_schedule::{
    Lifecycle, Occurrence, OneOff, Schedule, ScheduleError, WeeklySchedule, jiff,
};
use lectern_store::{ApiKey, Course, CourseMember, Store, StoreError, StoredSchedule};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Authenticator;

/// Most rows a roster CSV may hold.
pub const MAX_IMPORT_ROWS: usize = 10_000;
/// The longest window `sessions` lists at once, in days.
pub const MAX_SESSION_WINDOW_DAYS: i64 = 2 * 366;
/// The window `sessions` lists when `to` is not given, in days.
pub const DEFAULT_SESSION_WINDOW_DAYS: i64 = 120;
/// A join link stays valid at least this long, even for a session about to close.
const MIN_LINK_TTL_SECS: u64 = 60;

/// Why a request was refused. Every variant but `Internal` is the caller's doing.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{what} {id:?} not found")]
    NotFound { what: &'static str, id: String },
    /// A scheduled session's room is not open now (the message names the next session).
    #[error("{0}")]
    SessionNotOpen(String),
    #[error("{message}")]
    InvalidInput {
        message: String,
        details: Vec<ErrorDetail>,
    },
    #[error("{0}")]
    Conflict(String),
    #[error("internal error")]
    Internal(String),
}

/// One precise reason within an `invalid_input` error: a field, or a line of a CSV file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// The field at fault, e.g. `timezone` or `role`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The 1-based line of the CSV file at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    pub reason: String,
}

impl ServiceError {
    /// The stable machine-readable code for API responses.
    pub fn code(&self) -> &'static str {
        match self {
            ServiceError::NotFound { .. } => "not_found",
            ServiceError::InvalidInput { .. } => "invalid_input",
            ServiceError::Conflict(_) => "conflict",
            ServiceError::SessionNotOpen(_) => "session_not_open",
            ServiceError::Internal(_) => "internal",
        }
    }

    fn field(field: &str, reason: impl Into<String>) -> ServiceError {
        let reason = reason.into();
        ServiceError::InvalidInput {
            message: format!("{field}: {reason}"),
            details: vec![ErrorDetail {
                field: Some(field.to_owned()),
                line: None,
                reason,
            }],
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound { what, id } => ServiceError::NotFound { what, id },
            StoreError::Conflict { what, id } => {
                ServiceError::Conflict(format!("{what} {id:?} already exists"))
            }
            other => ServiceError::Internal(other.to_string()),
        }
    }
}

/// A new course.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCourse {
    /// Lowercase letters, digits, `-` and `_`, 1 to 64 characters, e.g. `algebra`.
    pub id: String,
    pub title: String,
    /// IANA timezone, e.g. `Europe/Paris`.
    pub timezone: String,
    /// Minutes the room opens before a session (default 15).
    pub lobby_minutes: Option<u32>,
    /// Minutes before the end when participants are warned (default 5).
    pub warning_minutes: Option<u32>,
    /// Minutes the room stays open after the end (default 10).
    pub grace_minutes: Option<u32>,
    /// Start the class at the scheduled time without waiting for staff (default false).
    pub auto_start: Option<bool>,
}

/// A course as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CourseView {
    pub id: String,
    pub title: String,
    pub timezone: String,
    pub lobby_minutes: u32,
    pub warning_minutes: u32,
    pub grace_minutes: u32,
    pub auto_start: bool,
    /// RFC 3339, UTC.
    pub created_at: String,
}

/// A roster entry, as given and as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberView {
    /// The participant id in join tokens (e.g. the LMS user id): letters, digits and `._@+-`.
    pub member_id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// `instructor`, `ta`, `student` or `observer`.
    pub role: String,
}

/// A role change.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleChange {
    pub role: String,
}

/// The outcome of a roster import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ImportReport {
    /// Rows added or updated.
    pub imported: usize,
}

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

/// Which session a join link is for.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    /// A session key; by default the next session that has not closed yet.
    pub session: Option<String>,
}

/// A join link for one member and one session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LinkView {
    pub session_key: String,
    pub room: String,
    /// The join token (JWT).
    pub token: String,
    /// The web client's URL with the token in the fragment.
    pub link: String,
    /// When the token expires (the session's room closes), RFC 3339.
    pub expires_at: String,
}

/// A member's personal calendar feed, as created. The token in both URLs is the secret: it is
/// shown once (only its hash is stored) and revoked by creating a new feed or deleting it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FeedView {
    /// The member's iCalendar feed, for a calendar app (no API key needed).
    pub calendar_url: String,
    /// Each event's link: opens the member's join link for the current or next session.
    pub join_url: String,
    /// RFC 3339, UTC.
    pub created_at: String,
}

/// The room id of a course session.
pub fn room_id(course_id: &str, session_key: &str) -> String {
    format!("{course_id}.{session_key}")
}

fn rfc3339(ms: UnixMillis) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(|ms| Timestamp::from_millisecond(ms).ok())
        .map(|t| t.to_string())
        .unwrap_or_default()
}

fn course_view(course: Course) -> CourseView {
    CourseView {
        created_at: rfc3339(course.created_at),
        id: course.id,
        title: course.title,
        timezone: course.timezone,
        lobby_minutes: course.lobby_minutes,
        warning_minutes: course.warning_minutes,
        grace_minutes: course.grace_minutes,
        auto_start: course.auto_start,
    }
}

fn member_view(member: CourseMember) -> MemberView {
    MemberView {
        member_id: member.member_id,
        name: member.name,
        email: member.email,
        role: member.role.as_str().to_owned(),
    }
}

pub(crate) fn check_course_id(id: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && id.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(
            "use 1 to 64 lowercase letters, digits, '-' or '_', starting with a letter or digit"
                .to_owned(),
        )
    }
}

fn check_member_id(id: &str) -> Result<(), String> {
    let ok = (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._@+-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err("use 1 to 128 letters, digits, '.', '_', '@', '+' or '-'".to_owned())
    }
}

fn check_text(value: &str, max: usize) -> Result<(), String> {
    if value.trim().is_empty() {
        Err("must not be empty".to_owned())
    } else if value.chars().count() > max {
        Err(format!("at most {max} characters"))
    } else if value.chars().any(char::is_control) {
        Err("must not contain control characters".to_owned())
    } else {
        Ok(())
    }
}

fn check_email(email: &str) -> Result<(), String> {
    let ok = email.len() <= 254
        && email
            .split_once('@')
            .is_some_and(|(user, host)| !user.is_empty() && host.contains('.'))
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(format!("{email:?} is not an email address"))
    }
}

fn parse_role(role: &str) -> Result<Role, String> {
    Role::parse(role)
        .ok_or_else(|| format!("unknown role {role:?} (use instructor, ta, student or observer)"))
}

/// A member from user input; each problem as `(field, reason)`.
fn check_member(input: &MemberView) -> Result<CourseMember, Vec<(&'static str, String)>> {
    let mut problems = Vec::new();
    if let Err(reason) = check_member_id(&input.member_id) {
        problems.push(("member_id", reason));
    }
    if let Err(reason) = check_text(&input.name, 200) {
        problems.push(("name", reason));
    }
    let email = input
        .email
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty());
    if let Some(Err(reason)) = email.map(check_email) {
        problems.push(("email", reason));
    }
    let role = parse_role(&input.role).map_err(|reason| problems.push(("role", reason)));
    match role {
        Ok(role) if problems.is_empty() => Ok(CourseMember {
            member_id: input.member_id.clone(),
            name: input.name.trim().to_owned(),
            email: email.map(str::to_owned),
            role,
        }),
        _ => Err(problems),
    }
}

async fn require_course(store: &Store, id: &str) -> Result<Course, ServiceError> {
    store
        .course(id)
        .await?
        .ok_or_else(|| ServiceError::NotFound {
            what: "course",
            id: id.to_owned(),
        })
}

pub async fn create_course(
    store: &Store,
    input: NewCourse,
    now: UnixMillis,
) -> Result<CourseView, ServiceError> {
    check_course_id(&input.id).map_err(|r| ServiceError::field("id", r))?;
    check_text(&input.title, 200).map_err(|r| ServiceError::field("title", r))?;
    let tz = lectern_schedule::time_zone(&input.timezone)
        .map_err(|e| ServiceError::field("timezone", e.to_string()))?;
    let defaults = Lifecycle::default();
    let lifecycle = Lifecycle {
        lobby_minutes: input.lobby_minutes.unwrap_or(defaults.lobby_minutes),
        warning_minutes: input.warning_minutes.unwrap_or(defaults.warning_minutes),
        grace_minutes: input.grace_minutes.unwrap_or(defaults.grace_minutes),
        auto_start: input.auto_start.unwrap_or(defaults.auto_start),
    };
    if let Err(err) = lifecycle.validate() {
        let field = match &err {
            ScheduleError::SettingTooLong { setting, .. } => setting,
            _ => "lifecycle",
        };
        return Err(ServiceError::field(field, err.to_string()));
    }
    let course = Course {
        id: input.id,
        title: input.title.trim().to_owned(),
        timezone: tz.iana_name().unwrap_or(&input.timezone).to_owned(),
        lobby_minutes: lifecycle.lobby_minutes,
        warning_minutes: lifecycle.warning_minutes,
        grace_minutes: lifecycle.grace_minutes,
        auto_start: lifecycle.auto_start,
        created_at: now,
    };
    store.create_course(&course).await?;
    Ok(course_view(course))
}

pub async fn list_courses(store: &Store) -> Result<Vec<CourseView>, ServiceError> {
    Ok(store
        .list_courses()
        .await?
        .into_iter()
        .map(course_view)
        .collect())
}

pub async fn get_course(store: &Store, id: &str) -> Result<CourseView, ServiceError> {
    require_course(store, id).await.map(course_view)
}

pub async fn list_members(store: &Store, course: &str) -> Result<Vec<MemberView>, ServiceError> {
    require_course(store, course).await?;
    Ok(store
        .members(course)
        .await?
        .into_iter()
        .map(member_view)
        .collect())
}

pub async fn add_member(
    store: &Store,
    course: &str,
    input: MemberView,
) -> Result<MemberView, ServiceError> {
    let member = check_member(&input).map_err(|problems| ServiceError::InvalidInput {
        message: "invalid member".to_owned(),
        details: problems
            .into_iter()
            .map(|(field, reason)| ErrorDetail {
                field: Some(field.to_owned()),
                line: None,
                reason,
            })
            .collect(),
    })?;
    store.add_member(course, &member).await?;
    Ok(member_view(member))
}

pub async fn remove_member(store: &Store, course: &str, member: &str) -> Result<(), ServiceError> {
    require_course(store, course).await?;
    if store.remove_member(course, member).await? {
        Ok(())
    } else {
        Err(ServiceError::NotFound {
            what: "member",
            id: member.to_owned(),
        })
    }
}

pub async fn change_role(
    store: &Store,
    course: &str,
    member: &str,
    change: RoleChange,
) -> Result<MemberView, ServiceError> {
    let role = parse_role(&change.role).map_err(|r| ServiceError::field("role", r))?;
    require_course(store, course).await?;
    if !store.set_member_role(course, member, role).await? {
        return Err(ServiceError::NotFound {
            what: "member",
            id: member.to_owned(),
        });
    }
    let updated = store.member(course, member).await?;
    updated.map(member_view).ok_or(ServiceError::NotFound {
        what: "member",
        id: member.to_owned(),
    })
}

/// Imports a roster CSV with a header row naming the columns `member_id`, `name`, `role` and
/// optionally `email`, in any order. Every row is checked first; if any is bad, every bad row is
/// reported (with its line) and nothing is stored. Otherwise all rows are added or updated in one
/// transaction.
pub async fn import_roster(
    store: &Store,
    course: &str,
    csv_text: &str,
) -> Result<ImportReport, ServiceError> {
    require_course(store, course).await?;
    let members = parse_roster(csv_text)?;
    store.upsert_members(course, &members).await?;
    Ok(ImportReport {
        imported: members.len(),
    })
}

/// The pure part of [`import_roster`].
pub fn parse_roster(csv_text: &str) -> Result<Vec<CourseMember>, ServiceError> {
    let bad = |line: u64, reason: String| ErrorDetail {
        field: None,
        line: Some(line),
        reason,
    };
    let invalid = |details: Vec<ErrorDetail>| ServiceError::InvalidInput {
        message: format!(
            "{} bad row(s) in the CSV; nothing was imported",
            details.len()
        ),
        details,
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(csv_text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| invalid(vec![bad(1, format!("cannot read the header: {e}"))]))?
        .clone();
    let column = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let (Some(id_col), Some(name_col), Some(role_col)) =
        (column("member_id"), column("name"), column("role"))
    else {
        return Err(invalid(vec![bad(
            1,
            "the header must name the columns member_id, name and role (and optionally email)"
                .to_owned(),
        )]));
    };
    let email_col = column("email");
    if let Some(unknown) = headers.iter().find(|h| {
        !["member_id", "name", "role", "email"].contains(&h.to_ascii_lowercase().as_str())
    }) {
        return Err(invalid(vec![bad(1, format!("unknown column {unknown:?}"))]));
    }

    let mut members = Vec::new();
    let mut errors = Vec::new();
    let mut seen = std::collections::HashMap::new();
    for record in reader.records() {
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                errors.push(bad(line, format!("unreadable row: {e}")));
                continue;
            }
        };
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        if record.iter().all(str::is_empty) {
            continue;
        }
        if members.len() + errors.len() >= MAX_IMPORT_ROWS {
            errors.push(bad(line, format!("more than {MAX_IMPORT_ROWS} rows")));
            break;
        }
        if record.len() != headers.len() {
            errors.push(bad(
                line,
                format!("{} fields, expected {}", record.len(), headers.len()),
            ));
            continue;
        }
        let input = MemberView {
            member_id: record[id_col].to_owned(),
            name: record[name_col].to_owned(),
            email: email_col.map(|c| record[c].to_owned()),
            role: record[role_col].to_owned(),
        };
        match check_member(&input) {
            Ok(member) => {
                if let Some(first) = seen.insert(member.member_id.clone(), line) {
                    errors.push(bad(
                        line,
                        format!("member_id {:?} already on line {first}", member.member_id),
                    ));
                } else {
                    members.push(member);
                }
            }
            Err(problems) => {
                let reasons: Vec<String> = problems
                    .into_iter()
                    .map(|(field, reason)| format!("{field}: {reason}"))
                    .collect();
                errors.push(bad(line, reasons.join("; ")));
            }
        }
    }
    if errors.is_empty() {
        Ok(members)
    } else {
        Err(invalid(errors))
    }
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

fn weekday_name(day: Weekday) -> &'static str {
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
async fn course_schedules(
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

fn session_view(course: &str, occ: &Occurrence) -> SessionView {
    SessionView {
        session_key: occ.session_key.to_string(),
        room: room_id(course, occ.session_key.as_str()),
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

/// The course's iCalendar feed (every session of every schedule).
pub async fn calendar(
    store: &Store,
    course: &str,
    uid_domain: &str,
    now: Timestamp,
) -> Result<String, ServiceError> {
    calendar_with_link(store, course, uid_domain, None, now).await
}

/// Creates a member's personal calendar feed (see [`FeedView`]), revoking any earlier one.
pub async fn create_member_feed(
    store: &Store,
    public_url: &str,
    course: &str,
    member: &str,
    now: UnixMillis,
) -> Result<FeedView, ServiceError> {
    require_course(store, course).await?;
    if store.member(course, member).await?.is_none() {
        return Err(ServiceError::NotFound {
            what: "member",
            id: member.to_owned(),
        });
    }
    let token = format!("feed_{}", random_hex(32));
    store.set_member_feed(course, member, &token, now).await?;
    let base = format!("{}/api/v1/feeds/{token}", public_url.trim_end_matches('/'));
    let created_at = Timestamp::from_millisecond(i64::try_from(now).unwrap_or(0))
        .map(|t| t.to_string())
        .unwrap_or_default();
    Ok(FeedView {
        calendar_url: format!("{base}/calendar.ics"),
        join_url: format!("{base}/join"),
        created_at,
    })
}

/// Revokes a member's calendar feed: its URLs stop working.
pub async fn revoke_member_feed(
    store: &Store,
    course: &str,
    member: &str,
) -> Result<(), ServiceError> {
    if store.revoke_member_feed(course, member).await? {
        Ok(())
    } else {
        Err(ServiceError::NotFound {
            what: "calendar feed of member",
            id: member.to_owned(),
        })
    }
}

/// The member a feed token stands for, as `(course id, member id)`.
async fn feed_member(store: &Store, token: &str) -> Result<(String, String), ServiceError> {
    match store.member_by_feed(token).await? {
        Some((course, member)) => Ok((course, member.member_id)),
        None => Err(ServiceError::NotFound {
            what: "calendar feed",
            // Never echo the secret.
            id: String::new(),
        }),
    }
}

/// A member's personal feed: the course's sessions, each event linking to `join_url` (the
/// member's own join link for the session at hand).
pub async fn member_calendar(
    store: &Store,
    token: &str,
    join_url: &str,
    uid_domain: &str,
    now: Timestamp,
) -> Result<String, ServiceError> {
    let (course, _) = feed_member(store, token).await?;
    calendar_with_link(store, &course, uid_domain, Some(join_url), now).await
}

/// The join link of a feed's member for the session open now or next (see [`mint_link`]).
pub async fn feed_join_link(
    store: &Store,
    auth: &Authenticator,
    public_url: &str,
    token: &str,
    now: Timestamp,
) -> Result<LinkView, ServiceError> {
    let (course, member) = feed_member(store, token).await?;
    let request = LinkRequest::default();
    mint_link(store, auth, public_url, &course, &member, request, now).await
}

async fn calendar_with_link(
    store: &Store,
    course: &str,
    uid_domain: &str,
    join_link: Option<&str>,
    now: Timestamp,
) -> Result<String, ServiceError> {
    let (course_row, schedules) = course_schedules(store, course).await?;
    let occurrences = lectern_schedule::expand_all(&schedules);
    let feed = lectern_schedule::ics::CalendarFeed {
        course_id: &course_row.id,
        title: &course_row.title,
        timezone: &course_row.timezone,
        uid_domain,
        join_link,
    };
    lectern_schedule::ics::course_calendar(&feed, &occurrences, now)
        .map_err(|e| ServiceError::Internal(e.to_string()))
}

/// Mints a join token and link for a member of the course, for one session (by key, or the next
/// one that has not closed). The token carries the member's id, name and role, admits to the
/// session's room, and expires when the room closes (end plus grace).
/// The room lifecycle settings of a course.
fn lifecycle_of(course: &Course) -> Lifecycle {
    Lifecycle {
        lobby_minutes: course.lobby_minutes,
        warning_minutes: course.warning_minutes,
        grace_minutes: course.grace_minutes,
        auto_start: course.auto_start,
    }
}

/// The scheduled session a room belongs to, for its room task to run the session's lifecycle.
#[derive(Debug, Clone)]
pub struct RoomSession {
    pub course_title: String,
    pub lifecycle: Lifecycle,
    pub occurrence: Occurrence,
}

/// The session of a room named `{course}.{session_key}`, if the course exists and its schedule
/// has that session; `None` for any other room (ad hoc, the demo room).
pub async fn room_session(store: &Store, room: &str) -> Result<Option<RoomSession>, ServiceError> {
    let Some((course, key)) = room.rsplit_once('.') else {
        return Ok(None);
    };
    let (course_row, schedules) = match course_schedules(store, course).await {
        Ok(found) => found,
        Err(ServiceError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let occurrence = lectern_schedule::expand_all(&schedules)
        .into_iter()
        .find(|o| o.session_key.as_str() == key);
    Ok(occurrence.map(|occurrence| RoomSession {
        lifecycle: lifecycle_of(&course_row),
        course_title: course_row.title,
        occurrence,
    }))
}

/// Whether a join to `room` may go ahead at `now`. A room named `{course}.{session_key}` of a
/// known course is open from `lobby_minutes` before its session until `grace_minutes` after it;
/// outside that window the join is refused with the next session's time. Any other room (an
/// ad-hoc room, the demo) is not scheduled and always open.
pub async fn check_join(store: &Store, room: &str, now: Timestamp) -> Result<(), ServiceError> {
    let Some((course, key)) = room.rsplit_once('.') else {
        return Ok(());
    };
    let (course_row, schedules) = match course_schedules(store, course).await {
        Ok(found) => found,
        Err(ServiceError::NotFound { .. }) => return Ok(()),
        Err(e) => return Err(e),
    };
    let lifecycle = lifecycle_of(&course_row);
    match lifecycle.join_window(&schedules, now) {
        Ok(open) if open.session_key.as_str() == key => Ok(()),
        Ok(open) => Err(ServiceError::SessionNotOpen(format!(
            "this session is not open now; the open session is {}",
            open.local_start_display()
        ))),
        Err(not_open) => Err(ServiceError::SessionNotOpen(not_open.to_string())),
    }
}

pub async fn mint_link(
    store: &Store,
    auth: &Authenticator,
    public_url: &str,
    course: &str,
    member: &str,
    request: LinkRequest,
    now: Timestamp,
) -> Result<LinkView, ServiceError> {
    let (course_row, schedules) = course_schedules(store, course).await?;
    let member_row = store
        .member(course, member)
        .await?
        .ok_or_else(|| ServiceError::NotFound {
            what: "member",
            id: member.to_owned(),
        })?;
    let lifecycle = lifecycle_of(&course_row);
    let all = lectern_schedule::expand_all(&schedules);
    let occ = match &request.session {
        Some(key) => all
            .iter()
            .find(|o| o.session_key.as_str() == key)
            .ok_or_else(|| ServiceError::NotFound {
                what: "session",
                id: key.clone(),
            })?,
        None => all
            .iter()
            .find(|o| lifecycle.times(o).closes_at > now)
            .ok_or_else(|| ServiceError::NotFound {
                what: "upcoming session",
                id: course.to_owned(),
            })?,
    };
    let closes_at = lifecycle.times(occ).closes_at;
    if closes_at <= now {
        return Err(ServiceError::field(
            "session",
            format!(
                "session {} is over (its room closed at {closes_at})",
                occ.session_key
            ),
        ));
    }
    let ttl = u64::try_from(closes_at.as_second() - now.as_second())
        .unwrap_or(0)
        .max(MIN_LINK_TTL_SECS);
    if ttl > auth.max_lifetime_secs() {
        return Err(ServiceError::field(
            "session",
            format!(
                "session {} is too far ahead: a join link is valid for at most {} s \
                 (auth.max_token_lifetime_secs); ask for it closer to the session",
                occ.session_key,
                auth.max_lifetime_secs()
            ),
        ));
    }
    let room = room_id(course, occ.session_key.as_str());
    let token = auth
        .mint(
            &room,
            &member_row.member_id,
            &member_row.name,
            member_row.role,
            ttl,
        )
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
    let expires_at = Timestamp::from_second(now.as_second().saturating_add(ttl as i64))
        .map(|t| t.to_string())
        .unwrap_or_default();
    Ok(LinkView {
        session_key: occ.session_key.to_string(),
        room,
        link: format!("{}/#token={token}", public_url.trim_end_matches('/')),
        token,
        expires_at,
    })
}

// ---------------------------------------------------------------------------------------------
// The demo course printed by `lectern serve`.

/// The demo course's roster: `(member id, name, role)`, instructor first.
pub const DEMO_MEMBERS: [(&str, &str, Role); 3] = [
    ("demo-instructor", "Instructor Grace", Role::Instructor),
    ("demo-student-1", "Student Ada", Role::Student),
    ("demo-student-2", "Student Alan", Role::Student),
];

/// What the demo course looks like (from the `[demo]` settings).
#[derive(Debug, Clone)]
pub struct DemoSpec {
    pub course_id: String,
    pub title: String,
    /// The session's length; the demo's links stay valid about this long.
    pub session_minutes: u32,
    /// Start the class at the scheduled time without staff.
    pub auto_start: bool,
}

/// A demo session is replaced when it has less than this left before its end.
const DEMO_MIN_MINUTES_LEFT: i64 = 30;

/// Makes sure the demo course exists with its roster ([`DEMO_MEMBERS`]) and a weekly schedule
/// whose session is open at `now`, and returns that session. The course is created once, in
/// the machine's timezone (UTC if it has no IANA name); on later starts its session is reused
/// while it has at least half an hour left, else the schedule is replaced by one on today's
/// weekday starting five minutes before `now` (so a student joining late sees a class that has
/// begun, and the links work at once).
pub async fn ensure_demo_course(
    store: &Store,
    spec: &DemoSpec,
    now: Timestamp,
) -> Result<SessionView, ServiceError> {
    let course = match store.course(&spec.course_id).await? {
        Some(course) => course,
        None => {
            let system = jiff::tz::TimeZone::system();
            let timezone = system
                .iana_name()
                .filter(|name| lectern_schedule::time_zone(name).is_ok())
                .unwrap_or("UTC")
                .to_owned();
            let input = NewCourse {
                id: spec.course_id.clone(),
                title: spec.title.clone(),
                timezone,
                lobby_minutes: None,
                warning_minutes: None,
                grace_minutes: None,
                auto_start: Some(spec.auto_start),
            };
            let now_ms = u64::try_from(now.as_millisecond()).unwrap_or(0);
            create_course(store, input, now_ms).await?;
            require_course(store, &spec.course_id).await?
        }
    };
    let members: Vec<CourseMember> = DEMO_MEMBERS
        .iter()
        .map(|(id, name, role)| CourseMember {
            member_id: (*id).to_owned(),
            name: (*name).to_owned(),
            email: None,
            role: *role,
        })
        .collect();
    store.upsert_members(&course.id, &members).await?;

    let lifecycle = lifecycle_of(&course);
    let (_, schedules) = course_schedules(store, &course.id).await?;
    let enough_left = |occ: &Occurrence| {
        occ.end_utc.duration_since(now) >= SignedDuration::from_mins(DEMO_MIN_MINUTES_LEFT)
    };
    if let Ok(open) = lifecycle.join_window(&schedules, now)
        && open.start_utc <= now
        && enough_left(&open)
    {
        return Ok(session_view(&course.id, &open));
    }
    for old in store.schedules(&course.id).await? {
        store.delete_schedule(&course.id, &old.id).await?;
    }
    let tz = lectern_schedule::time_zone(&course.timezone)
        .map_err(|e| ServiceError::Internal(format!("demo course timezone: {e}")))?;
    let start = tz.to_datetime(
        now.checked_sub(SignedDuration::from_mins(5))
            .map_err(|e| ServiceError::Internal(e.to_string()))?,
    );
    let weekday = match start.weekday() {
        Weekday::Monday => "mon",
        Weekday::Tuesday => "tue",
        Weekday::Wednesday => "wed",
        Weekday::Thursday => "thu",
        Weekday::Friday => "fri",
        Weekday::Saturday => "sat",
        Weekday::Sunday => "sun",
    };
    let first = start.date();
    let last = first
        .checked_add(SignedDuration::from_hours(24 * 7 * 12))
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
    let schedule = ScheduleSpec {
        days: vec![weekday.to_owned()],
        start: format!("{:02}:{:02}", start.hour(), start.minute()),
        duration_minutes: spec.session_minutes.clamp(
            DEMO_MIN_MINUTES_LEFT as u32 * 2,
            lectern_schedule::MAX_DURATION_MINUTES,
        ),
        first_date: first.to_string(),
        last_date: last.to_string(),
        exceptions: vec![],
        extra: vec![],
    };
    let now_ms = u64::try_from(now.as_millisecond()).unwrap_or(0);
    add_schedule(store, &course.id, schedule, now_ms).await?;
    let (_, schedules) = course_schedules(store, &course.id).await?;
    let open = lifecycle
        .join_window(&schedules, now)
        .map_err(|e| ServiceError::Internal(format!("the demo session is not open: {e}")))?;
    Ok(session_view(&course.id, &open))
}

fn random_hex(bytes: usize) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..bytes)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect()
}

/// Creates an admin API key: returns its record and the key, which is shown once and stored
/// only as a hash.
pub async fn create_api_key(
    store: &Store,
    name: &str,
    now: UnixMillis,
) -> Result<(ApiKey, String), ServiceError> {
    check_text(name, 100).map_err(|r| ServiceError::field("name", r))?;
    let id = format!("key_{}", random_hex(6));
    let key = format!("lectern_{}", random_hex(32));
    let record = store.create_api_key(&id, name.trim(), &key, now).await?;
    Ok((record, key))
}

// ---------------------------------------------------------------------------------------------
// Attendance and transcripts of one session.

/// A first join later than this many minutes after the scheduled start is `late` (the default
/// of the `late_after_minutes` query parameter and CLI option).
pub const DEFAULT_LATE_AFTER_MINUTES: u32 = 10;
/// The largest `late_after_minutes` accepted (24 hours).
pub const MAX_LATE_AFTER_MINUTES: u32 = 24 * 60;
/// Chat messages read from the store per page while exporting a transcript.
const TRANSCRIPT_PAGE: u32 = 1000;

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

/// The course, one of its sessions by key, and the course lifecycle.
async fn course_session(
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
    let times = lifecycle.times(&occ);
    let window = SessionWindow {
        opens_at: to_ms(times.opens_at),
        starts_at: to_ms(times.starts_at),
        closes_at: to_ms(times.closes_at),
        late_after_ms: u64::from(late_after_minutes) * 60_000,
    };
    let room = room_id(&course_row.id, occ.session_key.as_str());
    let intervals = store
        .attendance(&lectern_proto::RoomId::new(room.clone()))
        .await?;
    let now_ms = to_ms(now);

    // Stays by participant, in the order they first joined.
    let mut stays: Vec<(String, Vec<&lectern_store::AttendanceInterval>)> = Vec::new();
    for interval in &intervals {
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

    let roster = store.members(course).await?;
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
    Ok(AttendanceReport {
        course_id: course_row.id,
        session_key: occ.session_key.to_string(),
        room,
        start: occ.start_utc.to_string(),
        end: occ.end_utc.to_string(),
        window_start: times.opens_at.to_string(),
        window_end: times.closes_at.to_string(),
        late_after_minutes,
        generated_at: now.to_string(),
        attendees,
    })
}

/// Who a chat message was for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// The whole class.
    Everyone,
    /// The teaching staff only (a student's private question).
    Staff,
    /// One participant (and the staff), by participant id.
    Participant(String),
}

impl Audience {
    fn label(&self) -> String {
        match self {
            Audience::Everyone => "everyone".to_owned(),
            Audience::Staff => "staff".to_owned(),
            Audience::Participant(id) => format!("participant:{id}"),
        }
    }
}

/// One chat message of a session's transcript.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TranscriptEntry {
    /// The message's sequence number in the room.
    pub seq: u64,
    /// RFC 3339 UTC.
    pub sent_at: String,
    pub from: String,
    pub from_name: String,
    pub from_role: String,
    /// `everyone`, `staff`, or `{"participant": id}` for a private message.
    pub to: Audience,
    /// Null when the message was deleted by staff (the text is not exported).
    pub text: Option<String>,
    pub deleted: bool,
    /// When and by whom it was deleted, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_by: Option<String>,
}

/// The chat of one session's room, oldest first, private messages included with their
/// audience, deleted messages marked (without their text).
pub async fn transcript(
    store: &Store,
    course: &str,
    session_key: &str,
) -> Result<Vec<TranscriptEntry>, ServiceError> {
    let (course_row, occ, _) = course_session(store, course, session_key).await?;
    let room = lectern_proto::RoomId::new(room_id(&course_row.id, occ.session_key.as_str()));
    let mut entries = Vec::new();
    let mut after = 0;
    loop {
        let page = store.chat_log(&room, after, TRANSCRIPT_PAGE).await?;
        let full = page.len() >= TRANSCRIPT_PAGE as usize;
        for stored in page {
            let m = stored.message;
            after = after.max(m.seq);
            let deleted = stored.deleted_at.is_some();
            entries.push(TranscriptEntry {
                seq: m.seq,
                sent_at: rfc3339(m.sent_at),
                from: m.from.as_str().to_owned(),
                from_name: m.from_name,
                from_role: m.from_role.as_str().to_owned(),
                to: match m.to {
                    lectern_proto::ChatTarget::Everyone => Audience::Everyone,
                    lectern_proto::ChatTarget::Staff => Audience::Staff,
                    lectern_proto::ChatTarget::Participant { id } => {
                        Audience::Participant(id.as_str().to_owned())
                    }
                },
                text: (!deleted).then_some(m.text),
                deleted,
                deleted_at: stored.deleted_at.map(rfc3339),
                deleted_by: stored.deleted_by.map(|p| p.as_str().to_owned()),
            });
        }
        if !full {
            break;
        }
    }
    Ok(entries)
}

/// A transcript as plain text, one message per line:
/// `[2026-09-01T08:03:12Z] Ada Lovelace (ada, student) -> everyone: text`.
pub fn transcript_text(entries: &[TranscriptEntry]) -> String {
    let mut out = String::new();
    for e in entries {
        let body = if e.deleted {
            format!(
                "[deleted by {} at {}]",
                e.deleted_by.as_deref().unwrap_or("?"),
                e.deleted_at.as_deref().unwrap_or("?")
            )
        } else {
            // One message per line: line breaks inside a message are escaped.
            e.text
                .as_deref()
                .unwrap_or("")
                .replace('\\', "\\\\")
                .replace('\r', "\\r")
                .replace('\n', "\\n")
        };
        out.push_str(&format!(
            "[{}] {} ({}, {}) -> {}: {}\n",
            e.sent_at,
            e.from_name,
            e.from,
            e.from_role,
            e.to.label(),
            body
        ));
    }
    out
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

    #[test]
    fn roster_csv_reports_every_bad_row() {
        let csv = "member_id,name,role,email\n\
                   ada,Ada Lovelace,student,ada@example.org\n\
                   bob,,student,\n\
                   cy,Cy,wizard,\n\
                   ada,Ada Again,student,\n\
                   dee,Dee,ta,not-an-email\n\
                   eve,Eve,observer\n";
        let ServiceError::InvalidInput { details, .. } = parse_roster(csv).unwrap_err() else {
            panic!("expected invalid_input");
        };
        let lines: Vec<_> = details.iter().map(|d| d.line.unwrap()).collect();
        assert_eq!(lines, [3, 4, 5, 6, 7], "{details:?}");
        assert!(details[0].reason.contains("name"));
        assert!(details[1].reason.contains("wizard"));
        assert!(details[2].reason.contains("line 2"));
        assert!(details[3].reason.contains("email"));
        assert!(details[4].reason.contains("fields"));

        let good = "Role,member_id,name\nstudent,ada,Ada\n\ninstructor,grace,Grace Hopper\n";
        let members = parse_roster(good).unwrap();
        assert_eq!(members.len(), 2);
        assert_eq!(members[1].role, Role::Instructor);
        assert_eq!(members[1].email, None);

        assert!(parse_roster("id,name\n1,x\n").is_err());
    }
}
