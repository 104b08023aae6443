//! Room names: which course session (and, later, which sub-room of it) a room id stands for.
//!
//! On the wire a room id is an opaque string (1 to 128 characters, from the join token). The
//! rooms of scheduled sessions get structured ids:
//!
//! ```text
//! {course}.{session}          a session's room          algebra.2026-09-01T10:00
//! {course}.{session}.{room}   a sub-room of the session algebra.2026-09-01T10:00.group-2
//! ```
//!
//! - `course` is a course id ([`check_course_id`]): lowercase letters, digits, `-` and `_`, so
//!   it never holds a dot and the first dot always ends it.
//! - `session` is a session key, the session's local start `YYYY-MM-DDTHH:MM` (no dot).
//!   [`RoomName::parse`] does not check its shape: a key no session has names no session, and
//!   a join to it is refused like any join outside its session.
//! - `room` (optional) names a sub-room within the session, such as a breakout group; it is not
//!   empty and holds no dot.
//!
//! Any other room id (an ad-hoc room such as `algebra-101`, or one with an empty or extra part)
//! is not a course room: [`RoomName::parse`] gives `None`, and the room is not scheduled.
//!
//! This is a server convention, not a wire concept (clients never look inside a room id), so it
//! lives here rather than in `lectern-proto`. It depends on nothing else in the crate, so the
//! configuration, the course service and the live path can all use it.

use std::fmt;

use lectern_proto::RoomId;

/// The structured id of a course session's room (see the [module docs](self) for the format).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoomName {
    course: String,
    session: String,
    room: Option<String>,
}

impl RoomName {
    /// The room of one session of a course. Both parts must be free of dots, which course ids
    /// and session keys always are.
    pub fn session(course: impl Into<String>, session: impl Into<String>) -> RoomName {
        let name = RoomName {
            course: course.into(),
            session: session.into(),
            room: None,
        };
        debug_assert!(!name.course.contains('.') && !name.session.contains('.'));
        name
    }

    /// A sub-room of this session's room (e.g. a breakout group). `room` must not be empty nor
    /// hold a dot.
    pub fn with_sub_room(self, room: impl Into<String>) -> RoomName {
        let room = room.into();
        debug_assert!(!room.is_empty() && !room.contains('.'));
        RoomName {
            room: Some(room),
            ..self
        }
    }

    /// The name of `room_id` if it is a course room, `None` for any other room id.
    pub fn parse(room_id: &str) -> Option<RoomName> {
        let (course, rest) = room_id.split_once('.')?;
        check_course_id(course).ok()?;
        let (session, room) = match rest.split_once('.') {
            Some((session, room)) => (session, Some(room)),
            None => (rest, None),
        };
        if session.is_empty() || room.is_some_and(|r| r.is_empty() || r.contains('.')) {
            return None;
        }
        Some(RoomName {
            course: course.to_owned(),
            session: session.to_owned(),
            room: room.map(str::to_owned),
        })
    }

    /// The course id.
    pub fn course(&self) -> &str {
        &self.course
    }

    /// The session key.
    pub fn session_key(&self) -> &str {
        &self.session
    }

    /// The sub-room, if this is one.
    pub fn sub_room(&self) -> Option<&str> {
        self.room.as_deref()
    }

    /// The room id on the wire.
    pub fn room_id(&self) -> RoomId {
        RoomId::new(self.to_string())
    }
}

impl fmt::Display for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.course, self.session)?;
        if let Some(room) = &self.room {
            write!(f, ".{room}")?;
        }
        Ok(())
    }
}

/// Whether `id` may be a course id: 1 to 64 lowercase letters, digits, `-` or `_`, starting
/// with a letter or digit. Never a dot, which is what keeps [`RoomName`]s unambiguous.
pub fn check_course_id(id: &str) -> Result<(), String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "2026-09-01T10:00";

    #[test]
    fn a_session_room_formats_and_parses_back() {
        let name = RoomName::session("algebra", KEY);
        assert_eq!(name.to_string(), "algebra.2026-09-01T10:00");
        assert_eq!(name.room_id().as_str(), "algebra.2026-09-01T10:00");
        let parsed = RoomName::parse("algebra.2026-09-01T10:00").expect("a course room");
        assert_eq!(parsed, name);
        assert_eq!(parsed.course(), "algebra");
        assert_eq!(parsed.session_key(), KEY);
        assert_eq!(parsed.sub_room(), None);
    }

    #[test]
    fn a_sub_room_keeps_its_course_and_session() {
        // `rsplit_once('.')` read this as course "algebra.2026-09-01T10:00", session "group-2".
        let parsed = RoomName::parse("algebra.2026-09-01T10:00.group-2").expect("a sub-room");
        assert_eq!(parsed.course(), "algebra");
        assert_eq!(parsed.session_key(), KEY);
        assert_eq!(parsed.sub_room(), Some("group-2"));
        let built = RoomName::session("algebra", KEY).with_sub_room("group-2");
        assert_eq!(built, parsed);
        assert_eq!(built.to_string(), "algebra.2026-09-01T10:00.group-2");
    }

    #[test]
    fn course_ids_hold_no_dot_so_the_first_dot_ends_the_course() {
        assert!(check_course_id("math.101").is_err());
        assert!(check_course_id("math-101_b").is_ok());
        // A dotted "course" cannot exist: its first part is read as the course.
        let parsed = RoomName::parse("math.101.2026-09-01T10:00").expect("three parts");
        assert_eq!(parsed.course(), "math");
        assert_eq!(parsed.session_key(), "101");
        assert_eq!(parsed.sub_room(), Some("2026-09-01T10:00"));
    }

    #[test]
    fn other_room_ids_are_not_course_rooms() {
        for id in [
            "algebra-101",
            "",
            ".",
            "algebra.",
            ".2026-09-01T10:00",
            "Algebra.2026-09-01T10:00",
            "alg ebra.2026-09-01T10:00",
            "algebra.2026-09-01T10:00.",
            "algebra..group-2",
            "algebra.2026-09-01T10:00.group.2",
        ] {
            assert_eq!(RoomName::parse(id), None, "{id:?}");
        }
    }
}
