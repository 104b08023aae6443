//! Recording: staff start and stop it, everyone is told (and a late joiner's snapshot says
//! so), the driver is asked to record, and what the class sees is copied for the event log.

use lectern_proto::{
    ChatTarget, ClientMessage, ErrorCode, Reaction, RecordingStopReason, Role, RoomEvent,
    ServerMessage,
};
use lectern_room::{Input, Output, RecordingBlocked, RecordingIntent, RoomConfig, RoomInit};

use crate::support::*;

fn intents(outs: &[Output]) -> Vec<RecordingIntent> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Recording(i) => Some(i.clone()),
            _ => None,
        })
        .collect()
}

fn logged(outs: &[Output]) -> Vec<ServerMessage> {
    outs.iter()
        .filter_map(|o| match o {
            Output::RecordEvent(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn staff_start_recording_and_everyone_is_told_first() {
    let mut h = H::class();
    let outs = h.req(1, ClientMessage::RecordingStart);
    assert!(h.room.is_recording());
    assert_eq!(
        intents(&outs),
        vec![RecordingIntent::Start { by: Some(pid("t")) }]
    );
    // The driver is asked to start before the event, so the event is the log's first line.
    let start = outs
        .iter()
        .position(|o| matches!(o, Output::Recording(_)))
        .unwrap();
    let first_log = outs
        .iter()
        .position(|o| matches!(o, Output::RecordEvent(_)))
        .unwrap();
    assert!(start < first_log);
    for conn in [1, 2, 3] {
        assert!(
            events_to(&outs, conn).iter().any(
                |(_, e)| matches!(e, RoomEvent::RecordingStarted { by: Some(b) } if *b == pid("t"))
            ),
            "conn {conn} told"
        );
    }
    assert!(ack(&outs, h.last_request()).unwrap().is_some());
    // Someone joining now is told by their snapshot, before they publish anything.
    let outs = h.join(4, "s3", Role::Student);
    assert!(snapshot_to(&outs, 4).unwrap().recording);
    // Starting again is a no-op.
    let outs = h.req(1, ClientMessage::RecordingStart);
    assert!(intents(&outs).is_empty());
    assert_eq!(ack(&outs, h.last_request()), Some(None));
}

#[test]
fn students_may_not_record_and_a_class_not_live_cannot_be() {
    let mut h = H::class();
    let outs = h.req(2, ClientMessage::RecordingStart);
    assert_eq!(only_error(&outs), ErrorCode::NotPermitted);
    let outs = h.req(2, ClientMessage::RecordingStop);
    assert_eq!(only_error(&outs), ErrorCode::NotPermitted);
    assert!(!h.room.is_recording());

    let mut h = H::new();
    h.join(1, "t", Role::Instructor);
    let outs = h.req(1, ClientMessage::RecordingStart);
    assert_eq!(only_error(&outs), ErrorCode::ClassNotLive);
    assert!(intents(&outs).is_empty());
}

#[test]
fn an_unavailable_recorder_refuses_with_the_reason() {
    let mut h = H::class();
    h.input(Input::RecordingAvailability {
        blocked: Some(RecordingBlocked::DiskFull),
    });
    let outs = h.req(1, ClientMessage::RecordingStart);
    assert_eq!(only_error(&outs), ErrorCode::RecordingUnavailable);
    let message = to_conn(&outs, 1)
        .into_iter()
        .find_map(|m| match m {
            ServerMessage::Error { message, .. } => Some(message),
            _ => None,
        })
        .unwrap();
    assert!(message.contains("disk"), "{message}");
    h.input(Input::RecordingAvailability { blocked: None });
    let outs = h.req(1, ClientMessage::RecordingStart);
    assert_eq!(intents(&outs).len(), 1);
}

#[test]
fn what_the_class_sees_is_logged_while_recording_only() {
    let mut h = H::class();
    let outs = h.chat(2, ChatTarget::Everyone, "before");
    assert!(logged(&outs).is_empty());
    h.req(1, ClientMessage::RecordingStart);
    let outs = h.chat(2, ChatTarget::Everyone, "during");
    let log = logged(&outs);
    assert!(
        matches!(&log[..], [ServerMessage::Event { event: RoomEvent::Chat { message }, .. }] if message.text == "during")
    );
    // A private message is logged too (who may read it is decided at replay).
    let outs = h.chat(2, ChatTarget::Staff, "to staff");
    assert_eq!(logged(&outs).len(), 1);
    let outs = h.req(
        2,
        ClientMessage::React {
            reaction: Reaction::Clap,
        },
    );
    assert!(matches!(
        &logged(&outs)[..],
        [ServerMessage::Reaction { .. }]
    ));
    let outs = h.input(Input::ActiveSpeaker {
        participant_id: Some(pid("t")),
    });
    assert!(matches!(
        &logged(&outs)[..],
        [ServerMessage::ActiveSpeaker { .. }]
    ));
    let outs = h.req(
        1,
        ClientMessage::StageGrant {
            participant_id: pid("s1"),
        },
    );
    assert!(logged(&outs).iter().any(|m| matches!(
        m,
        ServerMessage::Event {
            event: RoomEvent::StageGranted { .. },
            ..
        }
    )));

    let outs = h.req(1, ClientMessage::RecordingStop);
    assert!(!h.room.is_recording());
    assert_eq!(
        intents(&outs),
        vec![RecordingIntent::Stop {
            reason: RecordingStopReason::Stopped
        }]
    );
    // The stop is the log's last line.
    assert!(matches!(
        logged(&outs).last(),
        Some(ServerMessage::Event {
            event: RoomEvent::RecordingStopped {
                reason: RecordingStopReason::Stopped,
                ..
            },
            ..
        })
    ));
    let outs = h.chat(2, ChatTarget::Everyone, "after");
    assert!(logged(&outs).is_empty());
    assert!(!snapshot_of(&mut h, 4).recording);
}

fn snapshot_of(h: &mut H, conn: u64) -> lectern_proto::Snapshot {
    let outs = h.join(conn, &format!("late{conn}"), Role::Student);
    snapshot_to(&outs, conn).unwrap()
}

#[test]
fn ending_the_class_stops_recording() {
    let mut h = H::class();
    h.req(1, ClientMessage::RecordingStart);
    let outs = h.req(1, ClientMessage::ClassEnd);
    assert_eq!(
        intents(&outs),
        vec![RecordingIntent::Stop {
            reason: RecordingStopReason::ClassEnded
        }]
    );
    assert!(!h.room.is_recording());
}

#[test]
fn a_recorder_that_stops_by_itself_is_announced() {
    let mut h = H::class();
    h.req(1, ClientMessage::RecordingStart);
    let outs = h.input(Input::RecordingStopped {
        reason: RecordingStopReason::DiskFull,
    });
    assert!(!h.room.is_recording());
    assert!(intents(&outs).is_empty(), "the driver already stopped");
    assert!(events_to(&outs, 2).iter().any(|(_, e)| matches!(
        e,
        RoomEvent::RecordingStopped {
            by: None,
            reason: RecordingStopReason::DiskFull
        }
    )));
}

#[test]
fn a_course_that_records_its_sessions_starts_when_the_class_does() {
    let config = RoomConfig {
        record_automatically: true,
        ..config()
    };
    let mut h = H::with(config, RoomInit::default());
    h.join(1, "t", Role::Instructor);
    assert!(!h.room.is_recording());
    let outs = h.req(1, ClientMessage::ClassStart);
    assert_eq!(intents(&outs), vec![RecordingIntent::Start { by: None }]);
    assert!(
        events_to(&outs, 1)
            .iter()
            .any(|(_, e)| matches!(e, RoomEvent::RecordingStarted { by: None }))
    );
}
