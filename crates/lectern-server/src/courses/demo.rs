//! The demo course printed by `lectern serve` (with `[demo]` enabled): a roster of three and a
//! weekly schedule whose session is open now.

use lectern_proto::Role;
use lectern_schedule::Occurrence;
use lectern_schedule::jiff::{self, SignedDuration, Timestamp};
use lectern_store::{CourseMember, Store};

use super::roster::{NewCourse, create_course};
use super::schedules::{
    ScheduleSpec, SessionView, add_schedule, course_schedules, session_view, weekday_name,
};
use super::service::{ServiceError, lifecycle_of, require_course};

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
                record_sessions: None,
                recording_downloads: None,
                class_mode: None,
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
    let weekday = weekday_name(start.weekday());
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
