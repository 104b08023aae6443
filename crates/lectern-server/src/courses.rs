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

/// The room id of a course session.
pub fn room_id(course_id: &str, session_key: &str) -> String {
    format!("{course_id}.{session_key}")
}

pub fn now_ms() -> UnixMillis {
    u64::try_from(Timestamp::now().as_millisecond()).unwrap_or(0)
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

fn check_course_id(id: &str) -> Result<(), String> {
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
    let (course_row, schedules) = course_schedules(store, course).await?;
    let occurrences = lectern_schedule::expand_all(&schedules);
    let feed = lectern_schedule::ics::CalendarFeed {
        course_id: &course_row.id,
        title: &course_row.title,
        timezone: &course_row.timezone,
        uid_domain,
        join_link: None,
    };
    lectern_schedule::ics::course_calendar(&feed, &occurrences, now)
        .map_err(|e| ServiceError::Internal(e.to_string()))
}

/// Mints a join token and link for a member of the course, for one session (by key, or the next
/// one that has not closed). The token carries the member's id, name and role, admits to the
/// session's room, and expires when the room closes (end plus grace).
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
    let lifecycle = Lifecycle {
        lobby_minutes: course_row.lobby_minutes,
        warning_minutes: course_row.warning_minutes,
        grace_minutes: course_row.grace_minutes,
        auto_start: course_row.auto_start,
    };
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
