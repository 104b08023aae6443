//! What a viewer of a recording is given: the recording's row, its segments (each with a URL
//! carrying a grant, usable as `<video src>`), and its event log filtered for that viewer.
//!
//! Filtering, as the class saw it, never more: a deleted chat message is gone from the replay
//! entirely (its `chat` line and the `chat_deleted` line); a private message (to staff, or to
//! one participant) is kept for staff and for its sender and addressee only. The snapshot in
//! the log's first line is filtered the same way.

use std::collections::HashSet;

use lectern_proto::{ChatMessage, ChatTarget, ParticipantId};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Who watches: a course member, by the identity of their join token.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub participant_id: ParticipantId,
    pub staff: bool,
}

impl Viewer {
    fn can_read(&self, message: &ChatMessage) -> bool {
        if self.staff || message.from == self.participant_id {
            return true;
        }
        match &message.to {
            ChatTarget::Everyone => true,
            ChatTarget::Staff => false,
            ChatTarget::Participant { id } => *id == self.participant_id,
        }
    }
}

/// One line of `events.jsonl`, as far as filtering needs to read it.
#[derive(Debug, Deserialize)]
struct Line {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    event: Option<Value>,
}

/// The event log's lines, parsed. A line that is not JSON (the last one, cut short by a
/// crash) is skipped.
pub fn parse_log(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The log's lines this viewer may see (see the module docs).
pub fn filter_events(lines: Vec<Value>, viewer: &Viewer) -> Vec<Value> {
    let deleted: HashSet<u64> = lines
        .iter()
        .filter_map(|v| {
            let event = v.get("event")?;
            (event.get("kind")?.as_str()? == "chat_deleted").then(|| event.get("seq")?.as_u64())?
        })
        .collect();
    let visible = |m: &ChatMessage| !deleted.contains(&m.seq) && viewer.can_read(m);
    lines
        .into_iter()
        .filter_map(|mut v| {
            let line: Line = serde_json::from_value(v.clone()).ok()?;
            match line.kind.as_str() {
                "start" => {
                    if let Some(chat) = v.pointer_mut("/snapshot/chat")
                        && let Some(items) = chat.as_array_mut()
                    {
                        items.retain(|m| {
                            serde_json::from_value::<ChatMessage>(m.clone())
                                .is_ok_and(|m| visible(&m))
                        });
                    }
                    Some(v)
                }
                "event" => {
                    let event = line.event?;
                    match event.get("kind").and_then(Value::as_str) {
                        Some("chat_deleted") => None,
                        Some("chat") => {
                            let message: ChatMessage =
                                serde_json::from_value(event.get("message")?.clone()).ok()?;
                            visible(&message).then_some(v)
                        }
                        _ => Some(v),
                    }
                }
                _ => Some(v),
            }
        })
        .collect()
}

/// A segment as the replay API lists it: the manifest's entry plus where to fetch it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SegmentView {
    #[serde(flatten)]
    pub segment: Value,
    pub url: String,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn chat(seq: u64, from: &str, to: Value) -> Value {
        json!({"t": seq * 100, "type": "event", "seq": seq, "at": 1, "event": {"kind": "chat",
            "message": {"seq": seq, "from": from, "from_name": from, "from_role": "student",
                        "to": to, "text": format!("m{seq}"), "sent_at": 1}}})
    }

    fn seqs(lines: &[Value]) -> Vec<u64> {
        lines
            .iter()
            .filter_map(|v| v.pointer("/event/message/seq").and_then(Value::as_u64))
            .collect()
    }

    fn log() -> Vec<Value> {
        vec![
            json!({"t": 0, "type": "start", "started_at": 5, "snapshot": {"chat": [
                chat(1, "s1", json!({"kind": "everyone"}))["event"]["message"].clone(),
                chat(2, "s2", json!({"kind": "staff"}))["event"]["message"].clone(),
            ]}}),
            chat(3, "s1", json!({"kind": "everyone"})),
            chat(4, "s2", json!({"kind": "staff"})),
            chat(5, "t", json!({"kind": "participant", "id": "s1"})),
            chat(6, "s2", json!({"kind": "everyone"})),
            json!({"t": 700, "type": "event", "seq": 7, "at": 1,
                   "event": {"kind": "chat_deleted", "seq": 6, "by": "t"}}),
            json!({"t": 800, "type": "event", "seq": 8, "at": 1,
                   "event": {"kind": "stage_granted", "participant_id": "s1", "by": "t"}}),
            json!({"t": 900, "type": "reaction", "participant_id": "s1", "reaction": "clap"}),
        ]
    }

    fn viewer(id: &str, staff: bool) -> Viewer {
        Viewer {
            participant_id: ParticipantId::new(id),
            staff,
        }
    }

    #[test]
    fn each_viewer_sees_what_they_could_in_class_and_nothing_deleted() {
        let staff = filter_events(log(), &viewer("t", true));
        assert_eq!(seqs(&staff), vec![3, 4, 5]);
        assert_eq!(staff[0]["snapshot"]["chat"].as_array().unwrap().len(), 2);
        assert!(
            !staff
                .iter()
                .any(|v| v.pointer("/event/kind") == Some(&json!("chat_deleted")))
        );
        assert_eq!(staff.len(), 6, "start, 3 chats, stage, reaction");

        let s1 = filter_events(log(), &viewer("s1", false));
        assert_eq!(
            seqs(&s1),
            vec![3, 5],
            "the private message to s1, not s2's to staff"
        );
        assert_eq!(s1[0]["snapshot"]["chat"].as_array().unwrap().len(), 1);

        let s2 = filter_events(log(), &viewer("s2", false));
        assert_eq!(seqs(&s2), vec![3, 4], "their own message to staff");
        assert_eq!(s2[0]["snapshot"]["chat"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn a_log_cut_short_by_a_crash_is_read_up_to_its_last_whole_line() {
        let text =
            "{\"t\":0,\"type\":\"start\",\"snapshot\":{\"chat\":[]}}\n{\"t\":5,\"type\":\"reac";
        let lines = parse_log(text);
        assert_eq!(lines.len(), 1);
        assert_eq!(filter_events(lines, &viewer("s1", false)).len(), 1);
    }
}
