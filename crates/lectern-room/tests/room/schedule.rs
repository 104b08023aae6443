//! A scheduled session's room lifecycle with time passed in: lobby, auto-start at the
//! scheduled start, the end warning, and closing for everyone after the grace period.

use lectern_proto::{ClassState, CloseReason, ErrorCode, LeaveReason, Role, RoomEvent};
use lectern_room::{PersistRecord, RoomConfig, RoomInit, SessionSchedule};

use crate::support::*;

const MIN: u64 = 60_000;

/// A room opened 10 minutes before a 60-minute session starting at `T0 + 10 min`, warning 5
/// minutes before the end, closing 10 minutes after it.
fn scheduled(auto_start: bool) -> (H, SessionSchedule) {
    let schedule = SessionSchedule {
        starts_at: T0 + 10 * MIN,
        ends_at: T0 + 70 * MIN,
        auto_start,
        warning_ms: 5 * MIN,
        close_grace_ms: 10 * MIN,
    };
    let config = RoomConfig {
        schedule: Some(schedule),
        ..config()
    };
    (H::with(config, RoomInit::default()), schedule)
}

#[test]
fn lobby_then_auto_start_at_the_scheduled_time_then_warning_then_close() {
    let (mut h, schedule) = scheduled(true);
    assert_eq!(h.room.poll_timeout(), Some(schedule.starts_at));

    // Early: the student waits in the lobby; the welcome carries the scheduled times.
    let outs = h.join(2, "s1", Role::Student);
    let snap = snapshot_to(&outs, 2).expect("welcome snapshot");
    assert_eq!(snap.class_state, ClassState::NotStarted);
    assert_eq!(snap.scheduled_start, Some(schedule.starts_at));
    assert_eq!(snap.scheduled_end, Some(schedule.ends_at));
    assert_eq!(snap.warns_at, Some(T0 + 65 * MIN));
    assert_eq!(snap.closes_at, Some(T0 + 80 * MIN));
    assert!(snap.roster[0].in_lobby);
    h.join(1, "t", Role::Instructor);

    // A tick just before the start changes nothing.
    h.now = schedule.starts_at - 1;
    assert!(h.tick().is_empty());

    // At the start the class goes live by itself: no `by`, the lobby gets a snapshot.
    h.now = schedule.starts_at;
    let outs = h.tick();
    assert_eq!(kinds(&outs), vec!["class_started"]);
    assert_eq!(events(&outs)[0].1, RoomEvent::ClassStarted { by: None });
    assert!(persists(&outs).contains(&PersistRecord::ClassStarted { at: h.now }));
    let snap = snapshot_to(&outs, 2).expect("let in with a snapshot");
    assert_eq!(snap.class_state, ClassState::Live);
    assert!(!snap.roster[0].in_lobby);
    assert_eq!(media(&outs), vec![publish("s1", false, false)]);
    assert_eq!(h.room.poll_timeout(), Some(schedule.warns_at()));
    assert_eq!(schedule.warns_at(), T0 + 65 * MIN);

    // A late join while the session runs is let straight in.
    h.now = schedule.starts_at + 20 * MIN;
    let outs = h.join(3, "s2", Role::Student);
    let snap = snapshot_to(&outs, 3).expect("welcome snapshot");
    assert_eq!(snap.class_state, ClassState::Live);
    assert!(snap.roster.iter().all(|p| !p.in_lobby));

    // The warning, once, to everyone, with the end and the closing time.
    h.now = schedule.warns_at();
    let outs = h.tick();
    let warning = RoomEvent::ClassEndingSoon {
        ends_at: schedule.ends_at,
        closes_at: schedule.ends_at + 10 * MIN,
    };
    let evs = events(&outs);
    assert_eq!(evs.len(), 1, "{outs:#?}");
    assert_eq!(evs[0].1, warning);
    assert_eq!(evs[0].2, vec![c(2), c(1), c(3)]);
    h.advance(1);
    assert!(h.tick().is_empty(), "warned twice");

    // The scheduled end passes: the class goes on through the grace period.
    h.now = schedule.ends_at + 5 * MIN;
    assert!(h.tick().is_empty());
    assert_eq!(h.room.class_state(), ClassState::Live);
    assert_eq!(h.room.poll_timeout(), Some(schedule.closes_at()));

    // After the grace period the class ends and everyone, staff too, is closed.
    h.now = schedule.closes_at();
    let outs = h.tick();
    let evs = events(&outs);
    assert_eq!(evs[0].1, RoomEvent::ClassEnded { by: None });
    assert_eq!(evs[0].2, vec![c(2), c(1), c(3)]);
    let mut closed = closes(&outs);
    closed.sort_by_key(|(conn, _)| *conn);
    assert_eq!(
        closed,
        vec![
            (c(1), CloseReason::ClassEnded),
            (c(2), CloseReason::ClassEnded),
            (c(3), CloseReason::ClassEnded)
        ]
    );
    let left: Vec<_> = evs
        .iter()
        .filter_map(|(_, e, _)| match e {
            RoomEvent::ParticipantLeft {
                participant_id,
                reason: LeaveReason::ClassEnded,
            } => Some(participant_id.clone()),
            _ => None,
        })
        .collect();
    // Staff see the students leave; nobody is left to see the staff go.
    assert_eq!(left, vec![pid("s1"), pid("s2")], "{evs:#?}");
    assert!(persists(&outs).contains(&PersistRecord::ClassEnded { at: h.now }));
    let leaves = persists(&outs)
        .into_iter()
        .filter(|r| matches!(r, PersistRecord::Attendance { .. }))
        .count();
    assert_eq!(leaves, 3, "each attendance interval ends");
    assert!(h.room.is_empty());
    assert!(h.room.is_closed());
    assert_eq!(h.room.poll_timeout(), None);

    // A join that races the close is refused.
    h.advance(1);
    let outs = h.join(4, "s3", Role::Student);
    assert_eq!(errors(&outs)[0].0, ErrorCode::SessionNotOpen);
    assert_eq!(closes(&outs), vec![(c(4), CloseReason::HandshakeFailed)]);
}

#[test]
fn without_auto_start_students_wait_for_staff_past_the_start() {
    let (mut h, schedule) = scheduled(false);
    h.join(1, "t", Role::Instructor);
    h.join(2, "s1", Role::Student);
    h.now = schedule.starts_at + 3 * MIN;
    assert!(h.tick().is_empty(), "no auto-start");
    assert_eq!(h.room.class_state(), ClassState::NotStarted);
    assert!(h.room.participant(&pid("s1")).unwrap().in_lobby);
    // A class that never went live gets no warning.
    h.now = schedule.warns_at();
    assert!(events(&h.tick()).is_empty());

    // Staff start it late; it still closes on time, with the lobby and staff.
    h.now = schedule.ends_at - MIN;
    let outs = h.req(1, lectern_proto::ClientMessage::ClassStart);
    assert_eq!(
        events(&outs)[0].1,
        RoomEvent::ClassStarted { by: Some(pid("t")) }
    );
    h.now = schedule.closes_at();
    let outs = h.tick();
    assert_eq!(events(&outs)[0].1, RoomEvent::ClassEnded { by: None });
    assert_eq!(closes(&outs).len(), 2);
    assert!(h.room.is_empty());
}

#[test]
fn a_room_opened_during_the_session_is_live_at_once() {
    let (mut h, schedule) = scheduled(true);
    h.now = schedule.starts_at + 30 * MIN;
    let outs = h.join(2, "s1", Role::Student);
    let snap = snapshot_to(&outs, 2).expect("welcome");
    assert_eq!(snap.class_state, ClassState::Live);
    assert!(!snap.roster[0].in_lobby);
}

#[test]
fn a_lobby_that_never_started_is_closed_too() {
    let (mut h, schedule) = scheduled(false);
    h.join(2, "s1", Role::Student);
    h.disconnect(2);
    h.join(3, "s2", Role::Student);
    // Far past every moment at once: one tick acts on all that is due.
    h.now = schedule.closes_at() + 5 * MIN;
    let outs = h.tick();
    assert_eq!(closes(&outs), vec![(c(3), CloseReason::ClassEnded)]);
    assert!(!kinds(&outs).contains(&"class_ended".to_owned()));
    assert!(!kinds(&outs).contains(&"class_ending_soon".to_owned()));
    assert!(h.room.is_empty());
}

#[test]
fn unscheduled_rooms_carry_no_schedule_and_no_timer() {
    let mut h = H::new();
    let outs = h.join(2, "s1", Role::Student);
    let snap = snapshot_to(&outs, 2).unwrap();
    assert_eq!(snap.scheduled_start, None);
    assert_eq!(snap.scheduled_end, None);
    assert_eq!(snap.warns_at, None);
    assert_eq!(snap.closes_at, None);
    assert_eq!(h.room.poll_timeout(), None);
}

#[test]
fn a_room_opened_after_its_start_is_live_at_once() {
    // A server restarted mid-class opens the room again after the scheduled start: with
    // auto-start the class is live from the room's first moment, before any input, and its next
    // timer is the end warning.
    let schedule = SessionSchedule {
        starts_at: T0 - 20 * MIN,
        ends_at: T0 + 40 * MIN,
        auto_start: true,
        warning_ms: 5 * MIN,
        close_grace_ms: 10 * MIN,
    };
    let config = RoomConfig {
        schedule: Some(schedule),
        ..config()
    };
    let mut room = lectern_room::Room::new(config, RoomInit::default(), T0);
    assert_eq!(room.class_state(), ClassState::Live);
    assert_eq!(room.poll_timeout(), Some(schedule.warns_at()));
    let outs: Vec<_> = std::iter::from_fn(|| room.poll_output()).collect();
    assert!(persists(&outs).contains(&PersistRecord::ClassStarted { at: T0 }));
}
