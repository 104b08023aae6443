//! The live path's view of courses: whether a join may go ahead now, and which scheduled
//! session a room runs. `ws.rs` and the room tasks use this module and nothing else of the
//! course service.
//!
//! A room is a course room when its id is a [`RoomName`] (`{course}.{session_key}`, or a
//! sub-room `{course}.{session_key}.{room}`, which follows its session) of a course that exists;
//! any other room (an ad-hoc room) is not scheduled.

use lectern_schedule::jiff::Timestamp;
use lectern_schedule::{Lifecycle, Occurrence};
use lectern_store::Store;

use super::schedules::{course_schedules, course_session};
pub use super::service::ServiceError;
use super::service::lifecycle_of;
use crate::room_name::RoomName;

/// The scheduled session a room belongs to, for its room task to run the session's lifecycle.
#[derive(Debug, Clone)]
pub struct RoomSession {
    pub course_title: String,
    pub lifecycle: Lifecycle,
    pub occurrence: Occurrence,
    /// The course records its sessions automatically.
    pub record_sessions: bool,
    /// The layout the course's rooms start in.
    pub class_mode: lectern_proto::ClassMode,
}

/// The session of a course room, if the course exists and its schedule has that session;
/// `None` for any other room (ad hoc, the demo room).
pub async fn room_session(store: &Store, room: &str) -> Result<Option<RoomSession>, ServiceError> {
    let Some(name) = RoomName::parse(room) else {
        return Ok(None);
    };
    match course_session(store, name.course(), name.session_key()).await {
        Ok((course_row, occurrence, lifecycle)) => Ok(Some(RoomSession {
            record_sessions: course_row.record_sessions,
            class_mode: course_row.class_mode,
            course_title: course_row.title,
            lifecycle,
            occurrence,
        })),
        // No such course, or no such session in its schedule.
        Err(ServiceError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether a join to `room` may go ahead at `now`. A course room is open from `lobby_minutes`
/// before its session until `grace_minutes` after it; outside that window the join is refused
/// with the next session's time. Any other room (an ad-hoc room, the demo) is not scheduled and
/// always open.
pub async fn check_join(store: &Store, room: &str, now: Timestamp) -> Result<(), ServiceError> {
    let Some(name) = RoomName::parse(room) else {
        return Ok(());
    };
    let (course_row, schedules) = match course_schedules(store, name.course()).await {
        Ok(found) => found,
        Err(ServiceError::NotFound { .. }) => return Ok(()),
        Err(e) => return Err(e),
    };
    let lifecycle = lifecycle_of(&course_row);
    match lifecycle.join_window(&schedules, now) {
        Ok(open) if open.session_key.as_str() == name.session_key() => Ok(()),
        Ok(open) => Err(ServiceError::SessionNotOpen(format!(
            "this session is not open now; the open session is {}",
            open.local_start_display()
        ))),
        Err(not_open) => Err(ServiceError::SessionNotOpen(not_open.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::courses::{NewCourse, ScheduleSpec, add_schedule, create_course};

    const KEY: &str = "2026-09-01T10:00";

    /// A store with course `algebra`: Tuesdays 10:00-11:30 UTC from 2026-09-01, lobby 15 and
    /// grace 10 minutes.
    async fn algebra() -> Store {
        algebra_as(None).await
    }

    async fn algebra_as(class_mode: Option<crate::courses::CourseClassMode>) -> Store {
        let store = Store::open("sqlite::memory:").await.expect("store");
        let course = NewCourse {
            id: "algebra".into(),
            title: "Algebra".into(),
            timezone: "UTC".into(),
            lobby_minutes: None,
            warning_minutes: None,
            grace_minutes: None,
            auto_start: None,
            record_sessions: None,
            recording_downloads: None,
            class_mode,
        };
        create_course(&store, course, 0).await.expect("course");
        let spec = ScheduleSpec {
            days: vec!["tue".into()],
            start: "10:00".into(),
            duration_minutes: 90,
            first_date: "2026-09-01".into(),
            last_date: "2026-12-15".into(),
            exceptions: vec![],
            extra: vec![],
        };
        add_schedule(&store, "algebra", spec, 0)
            .await
            .expect("schedule");
        store
    }

    fn at(rfc3339: &str) -> Timestamp {
        rfc3339.parse().expect("timestamp")
    }

    #[tokio::test]
    async fn a_sub_room_follows_its_session() {
        let store = algebra().await;
        let room = RoomName::session("algebra", KEY).with_sub_room("group-2");
        let room = room.to_string();
        let during = at("2026-09-01T10:30:00Z");
        check_join(&store, &room, during).await.expect("open");
        let next_day = at("2026-09-02T10:30:00Z");
        let refused = check_join(&store, &room, next_day).await.unwrap_err();
        assert!(
            matches!(refused, ServiceError::SessionNotOpen(_)),
            "{refused}"
        );

        let session = room_session(&store, &room).await.expect("store");
        let session = session.expect("the sub-room runs its session");
        assert_eq!(session.course_title, "Algebra");
        assert_eq!(session.occurrence.session_key.as_str(), KEY);
        assert_eq!(session.class_mode, lectern_proto::ClassMode::Lecture);
    }

    #[tokio::test]
    async fn a_seminar_course_runs_its_rooms_as_seminars() {
        let store = algebra_as(Some(crate::courses::CourseClassMode::Seminar)).await;
        let room = RoomName::session("algebra", KEY).to_string();
        let session = room_session(&store, &room).await.expect("store");
        let session = session.expect("a course room");
        assert_eq!(session.class_mode, lectern_proto::ClassMode::Seminar);
    }

    #[tokio::test]
    async fn only_course_rooms_are_scheduled() {
        let store = algebra().await;
        let next_day = at("2026-09-02T10:30:00Z");
        let main = RoomName::session("algebra", KEY).to_string();
        assert!(check_join(&store, &main, next_day).await.is_err());
        // A session the schedule does not have is never open and runs no session.
        assert!(
            check_join(&store, "algebra.someday", next_day)
                .await
                .is_err()
        );
        assert!(
            room_session(&store, "algebra.someday")
                .await
                .unwrap()
                .is_none()
        );
        // Ad-hoc rooms and rooms of unknown courses are always open and unscheduled.
        for room in ["algebra-101", "geometry.2026-09-01T10:00"] {
            check_join(&store, room, next_day).await.expect(room);
            assert!(
                room_session(&store, room).await.unwrap().is_none(),
                "{room}"
            );
        }
    }
}
