//! The course service: what the REST API (`api.rs`) and the CLI (`main.rs`) both do with
//! courses, rosters, schedules, sessions, join links and API keys, and the two questions the
//! live path asks about a room (may this join go ahead now, which session does this room run).
//!
//! Input is validated here, before anything reaches the store: course ids, timezones and
//! schedules (through [`lectern_schedule::Schedule::new`]), roles ([`Role::parse`]), CSV rosters
//! (every row checked, every bad row reported with its line, nothing stored if one is bad).
//! Errors are [`ServiceError`]s with a stable [`ServiceError::code`].
//!
//! One file per concern:
//! - [`service`]: errors, input checks and helpers the others share; admin API keys.
//! - [`roster`]: courses and their rosters (one by one or a CSV import).
//! - [`schedules`]: weekly schedules and the sessions they expand to.
//! - [`feeds`]: iCalendar feeds, the course's and each member's personal one.
//! - [`sessions`](mod@sessions): the live path's view, the join check and a room's session.
//!   `ws.rs` and the room tasks import this module only.
//! - [`links`]: join links (a token for one member and one session).
//! - [`home`]: a member's course home (next session, past sessions, recordings).
//! - [`demo`]: the demo course printed by `lectern serve`.
//! - [`attendance`](mod@attendance), [`transcript`](mod@transcript): the reports of one session.
//!
//! A session's room id is a [`RoomName`](crate::room_name::RoomName),
//! `{course}.{session_key}`.
//!
//! [`Role::parse`]: lectern_proto::Role::parse

pub mod attendance;
pub mod demo;
pub mod feeds;
pub mod home;
pub mod links;
pub mod polls;
pub mod roster;
pub mod schedules;
pub mod service;
pub mod sessions;
pub mod transcript;

pub use attendance::{
    ATTENDANCE_CSV_HEADER, AttendanceReport, AttendanceRow, AttendanceStatus,
    DEFAULT_LATE_AFTER_MINUTES, MAX_LATE_AFTER_MINUTES, Presence, SessionWindow, attendance,
    attendance_csv, presence,
};
pub use demo::{DEMO_MEMBERS, DemoSpec, ensure_demo_course};
pub use feeds::{
    FeedLinks, FeedView, calendar, create_member_feed, feed_home_link, feed_join_link,
    member_calendar, revoke_member_feed,
};
pub use home::{CourseHome, HomeViewer, MAX_PAST_SESSIONS, course_home};
pub use links::{LinkRequest, LinkView, home_link, mint_link};
pub use polls::{PollAnswerReport, PollOptionReport, PollReport, polls};
pub use roster::{
    CourseClassMode, CourseView, ImportReport, MAX_IMPORT_ROWS, MemberView, NewCourse, RoleChange,
    add_member, change_role, create_course, get_course, import_roster, list_courses, list_members,
    parse_roster, remove_member,
};
pub use schedules::{
    DEFAULT_SESSION_WINDOW_DAYS, MAX_SESSION_WINDOW_DAYS, OneOffSpec, ScheduleSpec, ScheduleView,
    SessionView, add_schedule, check_schedule, list_schedules, sessions,
};
pub use service::{ErrorDetail, ServiceError, create_api_key};
pub use sessions::{RoomSession, check_join, room_session};
pub use transcript::{Audience, TranscriptEntry, transcript, transcript_text};
