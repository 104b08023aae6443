//! Courses and their rosters: create and list courses, add, remove and re-role members one by
//! one, or import a whole roster from CSV (all rows or none).

use lectern_proto::{ClassMode, Role, UnixMillis};
use lectern_schedule::{Lifecycle, ScheduleError};
use lectern_store::{Course, CourseMember, Store};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::service::{ErrorDetail, ServiceError, check_text, require_course, rfc3339};
use crate::room_name::check_course_id;

/// Most rows a roster CSV may hold.
pub const MAX_IMPORT_ROWS: usize = 10_000;

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
    /// Record every class of the course as it goes live (default false).
    pub record_sessions: Option<bool>,
    /// Students may download the course's recordings; staff always may (default false).
    pub recording_downloads: Option<bool>,
    /// The layout its rooms start in (default `lecture`): `seminar` starts them with a gallery
    /// of cameras and everyone allowed to speak.
    pub class_mode: Option<CourseClassMode>,
}

/// A course's class layout (see `docs/PROTOCOL.md`, class mode values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CourseClassMode {
    /// One stage; students' cameras need staff's leave.
    #[default]
    Lecture,
    /// A gallery of cameras; everyone may speak.
    Seminar,
}

impl From<CourseClassMode> for ClassMode {
    fn from(mode: CourseClassMode) -> ClassMode {
        match mode {
            CourseClassMode::Lecture => ClassMode::Lecture,
            CourseClassMode::Seminar => ClassMode::Seminar,
        }
    }
}

impl From<ClassMode> for CourseClassMode {
    fn from(mode: ClassMode) -> CourseClassMode {
        match mode {
            ClassMode::Lecture => CourseClassMode::Lecture,
            ClassMode::Seminar => CourseClassMode::Seminar,
        }
    }
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
    pub record_sessions: bool,
    pub recording_downloads: bool,
    pub class_mode: CourseClassMode,
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
        record_sessions: course.record_sessions,
        recording_downloads: course.recording_downloads,
        class_mode: course.class_mode.into(),
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
        record_sessions: input.record_sessions.unwrap_or(false),
        recording_downloads: input.recording_downloads.unwrap_or(false),
        class_mode: input.class_mode.unwrap_or_default().into(),
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

#[cfg(test)]
mod tests {
    use super::*;

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
