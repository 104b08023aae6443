//! The course home of one member: the course, the next session (with a join link for them once
//! its lobby is open), and the past sessions with the member's attendance (students: their own
//! only; staff: the counts) and the recordings ready to watch.

use lectern_proto::{Role, RoomId};
use lectern_schedule::jiff::Timestamp;
use lectern_store::{RecordingState, Store};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::attendance::{AttendanceStatus, DEFAULT_LATE_AFTER_MINUTES, Session, build_report};
use super::links::{LinkHolder, session_link};
use super::schedules::course_schedules;
use super::service::{ServiceError, lifecycle_of, rfc3339};
use crate::auth::Authenticator;
use crate::room_name::RoomName;

/// The most past sessions one request returns.
pub const MAX_PAST_SESSIONS: u32 = 50;

/// The course as its home shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HomeCourse {
    pub id: String,
    pub title: String,
    /// The IANA timezone the schedule is kept in, e.g. `Europe/Paris`.
    pub timezone: String,
}

/// Where the next session is in its day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NextState {
    /// Its room is not open yet (see `lobby_opens_at`).
    Upcoming,
    /// The room is open and the session starts soon: members wait in the lobby.
    LobbyOpen,
    /// Past its scheduled start, until its room closes (end plus the grace period).
    Live,
}

/// The next session that has not closed yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NextSession {
    pub session_key: String,
    /// Scheduled start and end, RFC 3339 UTC.
    pub start: String,
    pub end: String,
    /// When its room opens (the lobby) and closes, RFC 3339 UTC.
    pub lobby_opens_at: String,
    pub closes_at: String,
    pub state: NextState,
    /// The web client with a join token for this member, once the lobby is open (`lobby_open`
    /// or `live`); null while `upcoming`.
    pub join_url: Option<String>,
}

/// How many students were present, late and absent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AttendanceCounts {
    pub present: u32,
    pub late: u32,
    pub absent: u32,
}

/// A recording ready to watch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HomeRecording {
    pub id: String,
    pub title: String,
    /// RFC 3339 UTC.
    pub started_at: String,
    pub duration_ms: u64,
    /// The replay page with this member's join token in the fragment.
    pub replay_url: String,
}

/// A session whose room has closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PastSession {
    pub session_key: String,
    /// Scheduled start and end, RFC 3339 UTC.
    pub start: String,
    pub end: String,
    /// A student's own attendance; null for staff and observers.
    pub your_attendance: Option<AttendanceStatus>,
    /// Staff only: the students present, late and absent; null for everyone else.
    pub attendance_counts: Option<AttendanceCounts>,
    /// Its recordings that are `ready`, oldest first.
    pub recordings: Vec<HomeRecording>,
}

/// The member the home is shown to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HomeMember {
    pub member_id: String,
    pub name: String,
    /// `instructor`, `ta`, `student` or `observer`.
    pub role: String,
    /// Instructors and TAs.
    pub staff: bool,
}

/// Who is looking at the home.
#[derive(Debug, Clone, Copy)]
pub struct HomeViewer<'a> {
    pub member_id: &'a str,
    pub name: &'a str,
    pub role: Role,
    /// The join token the request carried (for the replay links).
    pub token: &'a str,
}

/// A member's course home (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CourseHome {
    pub course: HomeCourse,
    pub viewer: HomeMember,
    /// The next session that has not closed yet; null when the schedule has none left.
    pub next_session: Option<NextSession>,
    /// Newest first, `past_limit` of them from `past_offset`.
    pub past_sessions: Vec<PastSession>,
    /// Whether older past sessions exist beyond this page.
    pub past_has_more: bool,
}

/// The course home of `viewer`: `limit` past sessions (1 to [`MAX_PAST_SESSIONS`]) from
/// `offset`, newest first.
#[allow(clippy::too_many_arguments)]
pub async fn course_home(
    store: &Store,
    auth: &Authenticator,
    public_url: &str,
    course: &str,
    viewer: &HomeViewer<'_>,
    limit: u32,
    offset: u32,
    now: Timestamp,
) -> Result<CourseHome, ServiceError> {
    if !(1..=MAX_PAST_SESSIONS).contains(&limit) {
        return Err(ServiceError::field(
            "past_limit",
            format!("from 1 to {MAX_PAST_SESSIONS}"),
        ));
    }
    let (course_row, schedules) = course_schedules(store, course).await?;
    let lifecycle = lifecycle_of(&course_row);
    let all = lectern_schedule::expand_all(&schedules);
    let base = public_url.trim_end_matches('/');

    let next_session = match all.iter().find(|o| lifecycle.times(o).closes_at > now) {
        None => None,
        Some(occ) => {
            let times = lifecycle.times(occ);
            let state = if now < times.opens_at {
                NextState::Upcoming
            } else if now < times.starts_at {
                NextState::LobbyOpen
            } else {
                NextState::Live
            };
            let join_url = if state == NextState::Upcoming {
                None
            } else {
                let holder = LinkHolder {
                    member_id: viewer.member_id,
                    name: viewer.name,
                    role: viewer.role,
                };
                let link = session_link(
                    auth,
                    base,
                    course,
                    occ.session_key.as_str(),
                    times.closes_at,
                    &holder,
                    now,
                )?;
                Some(link.link)
            };
            Some(NextSession {
                session_key: occ.session_key.to_string(),
                start: occ.start_utc.to_string(),
                end: occ.end_utc.to_string(),
                lobby_opens_at: times.opens_at.to_string(),
                closes_at: times.closes_at.to_string(),
                state,
                join_url,
            })
        }
    };

    let past: Vec<_> = all
        .iter()
        .rev()
        .filter(|o| lifecycle.times(o).closes_at <= now)
        .skip(offset as usize)
        .take(limit as usize + 1)
        .collect();
    let past_has_more = past.len() > limit as usize;
    let recordings: Vec<_> = store
        .course_recordings(course)
        .await?
        .into_iter()
        .filter(|r| r.state == RecordingState::Ready)
        .collect();
    let staff = viewer.role.is_staff();
    let past: Vec<_> = past.into_iter().take(limit as usize).collect();
    // The roster and the page's attendance are read once, not per session.
    let roster = store.members(course).await?;
    let rooms: Vec<RoomId> = past
        .iter()
        .map(|occ| RoomName::session(&course_row.id, occ.session_key.as_str()).room_id())
        .collect();
    let mut intervals = store.attendance_of_rooms(&rooms).await?;
    let mut past_sessions = Vec::new();
    for (occ, room) in past.into_iter().zip(&rooms) {
        let key = occ.session_key.as_str();
        let session = Session {
            course: &course_row,
            occurrence: occ,
            lifecycle: &lifecycle,
        };
        let stays = intervals.remove(room).unwrap_or_default();
        let report = build_report(session, &roster, &stays, DEFAULT_LATE_AFTER_MINUTES, now);
        let statuses = report.attendees.iter().map(|a| a.status);
        let (your_attendance, attendance_counts) = if staff {
            let mut counts = AttendanceCounts::default();
            for status in statuses {
                match status {
                    AttendanceStatus::Present => counts.present += 1,
                    AttendanceStatus::Late => counts.late += 1,
                    AttendanceStatus::Absent => counts.absent += 1,
                }
            }
            (None, Some(counts))
        } else if viewer.role == Role::Student {
            let own = report
                .attendees
                .iter()
                .find(|a| a.member_id == viewer.member_id)
                .map_or(AttendanceStatus::Absent, |a| a.status);
            (Some(own), None)
        } else {
            (None, None)
        };
        let mut session_recordings: Vec<HomeRecording> = recordings
            .iter()
            .filter(|r| {
                RoomName::parse(&r.room_id)
                    .is_some_and(|n| n.course() == course && n.session_key() == key)
            })
            .map(|r| HomeRecording {
                id: r.id.clone(),
                title: r.title.clone(),
                started_at: rfc3339(r.started_at),
                duration_ms: r.duration_ms,
                replay_url: format!(
                    "{base}/replay.html?recording={}#token={}",
                    r.id, viewer.token
                ),
            })
            .collect();
        session_recordings.reverse();
        past_sessions.push(PastSession {
            session_key: key.to_owned(),
            start: occ.start_utc.to_string(),
            end: occ.end_utc.to_string(),
            your_attendance,
            attendance_counts,
            recordings: session_recordings,
        });
    }
    Ok(CourseHome {
        course: HomeCourse {
            id: course_row.id,
            title: course_row.title,
            timezone: course_row.timezone,
        },
        viewer: HomeMember {
            member_id: viewer.member_id.to_owned(),
            name: viewer.name.to_owned(),
            role: viewer.role.as_str().to_owned(),
            staff,
        },
        next_session,
        past_sessions,
        past_has_more,
    })
}
