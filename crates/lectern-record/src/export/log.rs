//! What the export reads from `events.jsonl`: who is staff, who held the stage when, and the
//! public chat. Read leniently, as the replay page reads it (`web-client/replay-model.js`):
//! a line that is not a JSON object with a numeric `t` and a `type` (a crash's cut-off last
//! line, damage) is skipped and counted; unknown types and fields are ignored.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use serde_json::Value;

use crate::RecordError;

/// A participant's role, as the protocol names them; an unknown name counts as a student.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Role {
    Instructor,
    Ta,
    Student,
    Observer,
}

impl Role {
    fn parse(s: Option<&str>) -> Option<Role> {
        match s? {
            "instructor" => Some(Role::Instructor),
            "ta" => Some(Role::Ta),
            "student" => Some(Role::Student),
            "observer" => Some(Role::Observer),
            _ => None,
        }
    }

    pub(crate) fn is_staff(self) -> bool {
        matches!(self, Role::Instructor | Role::Ta)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Person {
    pub id: String,
    pub name: String,
    pub role: Role,
}

/// One public chat message, at its time on the recording clock.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ChatLine {
    pub t_ms: u64,
    pub seq: u64,
    pub from: String,
    pub from_name: String,
    /// The message's target as logged (always `{"kind":"everyone"}` here).
    pub to: Value,
    pub text: String,
}

/// The parts of the event log the export needs.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ClassLog {
    /// Everyone the log names, in the order first seen (roles updated by later joins).
    pub people: Vec<Person>,
    /// Who holds the stage from `t` on (`None`: nobody), one entry per change, by time.
    pub presenters: Vec<(u64, Option<String>)>,
    /// Public, never-deleted chat, by time (then log order).
    pub chat: Vec<ChatLine>,
    /// The largest `t` of the log.
    pub last_t: u64,
    /// Lines that could not be read (e.g. the half-written last line a crash leaves).
    pub skipped_lines: u64,
}

impl ClassLog {
    /// Reads `path` (an `events.jsonl`).
    pub(crate) fn read(path: &Path) -> Result<ClassLog, RecordError> {
        let file = File::open(path).map_err(RecordError::io("open", path))?;
        let mut lines = Vec::new();
        let mut skipped = 0;
        for raw in BufReader::new(file).split(b'\n') {
            let raw = raw.map_err(RecordError::io("read", path))?;
            if raw.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<Value>(&raw) {
                Ok(v) if v.get("t").and_then(Value::as_u64).is_some() && v["type"].is_string() => {
                    lines.push(v)
                }
                _ => skipped += 1,
            }
        }
        let mut log = ClassLog::from_lines(lines);
        log.skipped_lines = skipped;
        Ok(log)
    }

    /// Builds the log from parsed lines (each an object with `t` and `type`), in any order.
    pub(crate) fn from_lines(mut lines: Vec<Value>) -> ClassLog {
        // By time; a stable sort keeps the log's order for equal times.
        lines.sort_by_key(t_of);
        let mut log = ClassLog {
            last_t: lines.last().map_or(0, t_of),
            ..ClassLog::default()
        };
        log.read_people(&lines);
        log.read_presenters(&lines);
        log.read_chat(&lines);
        log
    }

    /// Staff, instructors before TAs, each in the order first seen.
    pub(crate) fn staff(&self) -> Vec<&str> {
        let mut staff: Vec<&Person> = self.people.iter().filter(|p| p.role.is_staff()).collect();
        staff.sort_by_key(|p| p.role);
        staff.into_iter().map(|p| p.id.as_str()).collect()
    }

    /// Who holds the stage at `t`.
    pub(crate) fn presenter_at(&self, t: u64) -> Option<&str> {
        let i = self.presenters.partition_point(|(at, _)| *at <= t);
        i.checked_sub(1)
            .and_then(|i| self.presenters[i].1.as_deref())
    }

    fn meet(&mut self, id: &str, name: Option<&str>, role: Option<Role>) {
        let name = name.filter(|n| !n.is_empty());
        if let Some(known) = self.people.iter_mut().find(|p| p.id == id) {
            if let Some(name) = name {
                known.name = name.to_owned();
            }
            if let Some(role) = role {
                known.role = role;
            }
        } else {
            self.people.push(Person {
                id: id.to_owned(),
                name: name.unwrap_or_default().to_owned(),
                role: role.unwrap_or(Role::Student),
            });
        }
    }

    fn read_people(&mut self, lines: &[Value]) {
        let meet_info = |log: &mut ClassLog, p: &Value| {
            if let Some(id) = p["id"].as_str() {
                log.meet(id, p["name"].as_str(), Role::parse(p["role"].as_str()));
            }
        };
        for line in lines {
            match (line["type"].as_str(), event_kind(line)) {
                (Some("start"), _) => {
                    for p in array(&line["snapshot"]["roster"]) {
                        meet_info(self, p);
                    }
                }
                (Some("event"), Some("participant_joined")) => {
                    meet_info(self, &line["event"]["participant"]);
                }
                _ => {}
            }
        }
        // Someone who only chatted (left before the recording started) is named by their messages.
        for line in lines {
            for m in messages_of(line) {
                if let Some(from) = m["from"].as_str()
                    && !self.people.iter().any(|p| p.id == from)
                {
                    self.meet(
                        from,
                        m["from_name"].as_str(),
                        Role::parse(m["from_role"].as_str()),
                    );
                }
            }
        }
    }

    /// As the live client's room state keeps it: granted, revoked (only the holder's revoke
    /// counts), cleared when the presenter leaves or the class ends.
    fn read_presenters(&mut self, lines: &[Value]) {
        let mut presenter: Option<String> = None;
        let changes = &mut self.presenters;
        let mut set = |t: u64, id: Option<&str>, presenter: &mut Option<String>| {
            if presenter.as_deref() == id && !changes.is_empty() {
                return;
            }
            *presenter = id.map(str::to_owned);
            match changes.last_mut() {
                Some(last) if last.0 == t => last.1 = presenter.clone(),
                _ => changes.push((t, presenter.clone())),
            }
        };
        for line in lines {
            let t = t_of(line);
            let pid = line["event"]["participant_id"].as_str();
            match (line["type"].as_str(), event_kind(line)) {
                (Some("start"), _) => {
                    set(t, line["snapshot"]["presenter"].as_str(), &mut presenter)
                }
                (Some("event"), Some("stage_granted")) if pid.is_some() => {
                    set(t, pid, &mut presenter)
                }
                (Some("event"), Some("stage_revoked" | "participant_left"))
                    if pid.is_some() && pid == presenter.as_deref() =>
                {
                    set(t, None, &mut presenter)
                }
                (Some("event"), Some("class_ended")) => set(t, None, &mut presenter),
                _ => {}
            }
        }
    }

    /// Public messages only, each once, none that was ever deleted.
    fn read_chat(&mut self, lines: &[Value]) {
        let deleted: HashSet<u64> = lines
            .iter()
            .filter(|l| l["type"] == "event" && event_kind(l) == Some("chat_deleted"))
            .filter_map(|l| l["event"]["seq"].as_u64())
            .collect();
        let mut seen = HashSet::new();
        let names: HashMap<&str, &str> = self
            .people
            .iter()
            .map(|p| (p.id.as_str(), p.name.as_str()))
            .collect();
        let mut chat = Vec::new();
        for line in lines {
            for m in messages_of(line) {
                let (Some(seq), Some(from), Some(text)) =
                    (m["seq"].as_u64(), m["from"].as_str(), m["text"].as_str())
                else {
                    continue;
                };
                // Only what everyone saw: a private message (to staff or to one participant)
                // or one without a readable target stays out.
                if m["to"]["kind"] != "everyone" || deleted.contains(&seq) || !seen.insert(seq) {
                    continue;
                }
                let from_name = m["from_name"]
                    .as_str()
                    .filter(|n| !n.is_empty())
                    .or_else(|| names.get(from).copied())
                    .unwrap_or_default();
                chat.push(ChatLine {
                    t_ms: t_of(line),
                    seq,
                    from: from.to_owned(),
                    from_name: from_name.to_owned(),
                    to: m["to"].clone(),
                    text: text.to_owned(),
                });
            }
        }
        self.chat = chat;
    }
}

fn t_of(line: &Value) -> u64 {
    line["t"].as_u64().unwrap_or(0)
}

fn event_kind(line: &Value) -> Option<&str> {
    line["event"]["kind"].as_str()
}

fn array(v: &Value) -> &[Value] {
    v.as_array().map_or(&[], Vec::as_slice)
}

/// The chat messages a line carries: the start snapshot's (sent before the recording) or a
/// `chat` event's.
fn messages_of(line: &Value) -> &[Value] {
    match (line["type"].as_str(), event_kind(line)) {
        (Some("start"), _) => array(&line["snapshot"]["chat"]),
        (Some("event"), Some("chat")) => std::slice::from_ref(&line["event"]["message"]),
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chat(t: u64, seq: u64, from: &str, to: Value, text: &str) -> Value {
        json!({"t": t, "type": "event", "seq": seq, "event": {"kind": "chat", "message": {
            "seq": seq, "from": from, "from_name": "", "from_role": "student", "to": to,
            "text": text, "sent_at": 1}}})
    }

    fn sample() -> Vec<Value> {
        vec![
            json!({"t": 0, "type": "start", "started_at": 1, "snapshot": {
                "roster": [
                    {"id": "s1", "name": "Ada", "role": "student"},
                    {"id": "ta", "name": "Tim", "role": "ta"},
                    {"id": "in", "name": "Ines", "role": "instructor"}],
                "presenter": null,
                "chat": [{"seq": 3, "from": "s1", "from_name": "Ada", "from_role": "student",
                          "to": {"kind": "everyone"}, "text": "before", "sent_at": 1}]}}),
            chat(1000, 10, "s1", json!({"kind": "everyone"}), "public"),
            chat(2000, 11, "s1", json!({"kind": "staff"}), "to staff"),
            chat(
                3000,
                12,
                "in",
                json!({"kind": "participant", "id": "s1"}),
                "to Ada",
            ),
            chat(4000, 13, "s1", json!({"kind": "everyone"}), "deleted later"),
            json!({"t": 4500, "type": "event", "seq": 14, "event": {"kind": "chat_deleted", "seq": 13, "by": "in"}}),
            json!({"t": 5000, "type": "event", "seq": 15, "event": {"kind": "stage_granted", "participant_id": "s1", "by": "in"}}),
            json!({"t": 6000, "type": "event", "seq": 16, "event": {"kind": "stage_revoked", "participant_id": "s2", "by": "in"}}),
            json!({"t": 7000, "type": "event", "seq": 17, "event": {"kind": "stage_revoked", "participant_id": "s1"}}),
            json!({"t": 8000, "type": "event", "seq": 18, "event": {"kind": "participant_joined",
                "participant": {"id": "in2", "name": "Ida", "role": "instructor"}}}),
            json!({"t": 9000, "type": "event", "seq": 19, "event": {"kind": "stage_granted", "participant_id": "in2", "by": "in"}}),
            json!({"t": 9500, "type": "event", "seq": 20, "event": {"kind": "participant_left", "participant_id": "in2", "reason": "left"}}),
        ]
    }

    #[test]
    fn public_chat_only_and_never_deleted() {
        let log = ClassLog::from_lines(sample());
        let got: Vec<(u64, u64, &str, &str)> = log
            .chat
            .iter()
            .map(|c| (c.t_ms, c.seq, c.from_name.as_str(), c.text.as_str()))
            .collect();
        assert_eq!(got, [(0, 3, "Ada", "before"), (1000, 10, "Ada", "public")]);
    }

    #[test]
    fn presenters_follow_the_live_rules() {
        let log = ClassLog::from_lines(sample());
        let changes: Vec<(u64, Option<&str>)> = log
            .presenters
            .iter()
            .map(|(t, p)| (*t, p.as_deref()))
            .collect();
        // Another participant's revoke changes nothing; leaving ends a presentation.
        assert_eq!(
            changes,
            [
                (0, None),
                (5000, Some("s1")),
                (7000, None),
                (9000, Some("in2")),
                (9500, None)
            ]
        );
        assert_eq!(log.presenter_at(4999), None);
        assert_eq!(log.presenter_at(5000), Some("s1"));
        assert_eq!(log.presenter_at(6500), Some("s1"));
        assert_eq!(log.presenter_at(9200), Some("in2"));
        assert_eq!(log.last_t, 9500);
    }

    #[test]
    fn staff_instructors_first_in_order_seen() {
        let log = ClassLog::from_lines(sample());
        assert_eq!(log.staff(), ["in", "in2", "ta"]);
        let ada = log.people.iter().find(|p| p.id == "s1").unwrap();
        assert_eq!((ada.name.as_str(), ada.role), ("Ada", Role::Student));
    }

    #[test]
    fn unreadable_lines_are_skipped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let mut text = String::new();
        for line in sample() {
            text.push_str(&line.to_string());
            text.push('\n');
        }
        text.push_str("[1,2]\n{\"type\":\"event\"}\n\n{\"t\":9900,\"type\":\"event\",\"ev");
        std::fs::write(&path, text).unwrap();
        let log = ClassLog::read(&path).unwrap();
        assert_eq!(log.skipped_lines, 3);
        assert_eq!(log.chat.len(), 2);
        assert_eq!(log.last_t, 9500);
        assert!(ClassLog::read(&dir.path().join("missing")).is_err());
    }
}
