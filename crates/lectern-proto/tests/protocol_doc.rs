//! Keeps `docs/PROTOCOL.md` in step with the protocol types.
//!
//! - Every client message type, server message type and room event kind has exactly one
//!   `` ### `name` `` heading, and no such heading names something that does not exist.
//! - Every section under such a heading has a JSON example of that message or event.
//! - Every error code, close reason, leave reason and reaction appears in backticks.
//! - Every JSON example parses and re-serializes to exactly what the doc shows: client
//!   messages through `decode_client`, server messages as `ServerMessage`, and examples without
//!   a `type` as one of the shared object shapes.
//! - The samples the examples are generated from cover every type and kind.

use std::collections::BTreeMap;

use lectern_proto::samples;
use lectern_proto::{
    ChatMessage, ChatTarget, ClientMessage, CloseReason, ErrorCode, HandEntry, LeaveReason,
    LiveQuiz, MediaState, ParticipantInfo, Poll, PollResults, PollState, Reaction, RoomEvent,
    ServerMessage, Snapshot, decode_client,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

const DOC_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/PROTOCOL.md");

fn doc() -> String {
    std::fs::read_to_string(DOC_PATH).unwrap_or_else(|e| panic!("cannot read {DOC_PATH}: {e}"))
}

/// A `` ### `name` `` heading's name, if the line is one.
fn heading_name(line: &str) -> Option<&str> {
    line.strip_prefix("### `")?.strip_suffix('`')
}

/// Any Markdown heading of level 1 to 3 ends the section of a `` ### `name` `` heading.
fn ends_section(line: &str) -> bool {
    line.starts_with("# ") || line.starts_with("## ") || line.starts_with("### ")
}

#[derive(Debug)]
struct JsonBlock {
    /// 1-based line of the opening fence.
    line: usize,
    /// The `` ### `name` `` heading the block sits under, if any.
    section: Option<String>,
    text: String,
}

fn json_blocks(doc: &str) -> Vec<JsonBlock> {
    let mut blocks = Vec::new();
    let mut section: Option<String> = None;
    let mut open: Option<JsonBlock> = None;
    for (i, line) in doc.lines().enumerate() {
        if let Some(block) = open.as_mut() {
            if line.trim_end() == "```" {
                blocks.extend(open.take());
            } else {
                block.text.push_str(line);
                block.text.push('\n');
            }
            continue;
        }
        if line.trim_end() == "```json" {
            open = Some(JsonBlock {
                line: i + 1,
                section: section.clone(),
                text: String::new(),
            });
        } else if ends_section(line) {
            section = heading_name(line).map(str::to_owned);
        }
    }
    assert!(open.is_none(), "{DOC_PATH}: unclosed ```json block");
    blocks
}

fn wire_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value).expect("serializes") {
        Value::String(s) => s,
        other => panic!("not a unit variant: {other}"),
    }
}

fn fail_if_any(what: &str, problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{DOC_PATH}: {what}:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn every_message_type_and_event_kind_has_one_heading() {
    let doc = doc();
    let mut headings: BTreeMap<&str, usize> = BTreeMap::new();
    for line in doc.lines() {
        if let Some(name) = heading_name(line) {
            *headings.entry(name).or_default() += 1;
        }
    }
    let expected = [
        ("client message", ClientMessage::TYPES),
        ("server message", ServerMessage::TYPES),
        ("room event", RoomEvent::KINDS),
    ];
    let mut problems = Vec::new();
    for (what, names) in expected {
        for name in names {
            match headings.get(name) {
                None => problems.push(format!("{what} `{name}` has no \"### `{name}`\" heading")),
                Some(1) => {}
                Some(n) => problems.push(format!("heading \"### `{name}`\" appears {n} times")),
            }
        }
    }
    for name in headings.keys() {
        if !expected.iter().any(|(_, names)| names.contains(name)) {
            problems.push(format!(
                "heading \"### `{name}`\" is not a message type or event kind"
            ));
        }
    }
    fail_if_any("message headings", &problems);
}

#[test]
fn every_enum_value_appears_in_backticks() {
    let doc = doc();
    let mut values: Vec<(&str, String)> = Vec::new();
    values.extend(ErrorCode::ALL.iter().map(|v| ("error code", wire_name(v))));
    values.extend(
        CloseReason::ALL
            .iter()
            .map(|v| ("close reason", wire_name(v))),
    );
    values.extend(
        LeaveReason::ALL
            .iter()
            .map(|v| ("leave reason", wire_name(v))),
    );
    values.extend(Reaction::ALL.iter().map(|v| ("reaction", wire_name(v))));
    let problems: Vec<String> = values
        .into_iter()
        .filter(|(_, name)| !doc.contains(&format!("`{name}`")))
        .map(|(what, name)| format!("{what} `{name}` is not documented"))
        .collect();
    fail_if_any("missing values", &problems);
}

#[test]
fn every_message_and_event_section_has_its_example() {
    let doc = doc();
    let mut examples: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for block in json_blocks(&doc) {
        if let (Some(section), Ok(value)) = (block.section, serde_json::from_str(&block.text)) {
            examples.entry(section).or_default().push(value);
        }
    }
    let has = |name: &str, matches: &dyn Fn(&Value) -> bool| {
        examples
            .get(name)
            .is_some_and(|values| values.iter().any(matches))
    };
    let mut problems = Vec::new();
    for name in ClientMessage::TYPES.iter().chain(ServerMessage::TYPES) {
        if !has(name, &|v| v["type"] == *name) {
            problems.push(format!(
                "section `{name}` has no JSON example with \"type\": \"{name}\""
            ));
        }
    }
    for name in RoomEvent::KINDS {
        if !has(name, &|v| {
            v["type"] == "event" && v["event"]["kind"] == *name
        }) {
            problems.push(format!(
                "section `{name}` has no `event` example with \"kind\": \"{name}\""
            ));
        }
    }
    fail_if_any("missing examples", &problems);
}

/// `Ok` when `value` deserializes as `T` and serializes back to the same JSON.
fn round_trips<T: DeserializeOwned + Serialize>(value: &Value) -> Result<(), String> {
    let typed: T = serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
    let back = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    if back == *value {
        Ok(())
    } else {
        Err(format!("re-serializes differently, as {back}"))
    }
}

fn check_example(value: &Value) -> Result<(), String> {
    let Some(type_name) = value.get("type") else {
        // A shared object: it must be exactly one of the documented shapes.
        let shapes = [
            round_trips::<Snapshot>(value),
            round_trips::<ParticipantInfo>(value),
            round_trips::<ChatMessage>(value),
            round_trips::<ChatTarget>(value),
            round_trips::<MediaState>(value),
            round_trips::<HandEntry>(value),
            round_trips::<Poll>(value),
            round_trips::<PollResults>(value),
            round_trips::<PollState>(value),
            round_trips::<LiveQuiz>(value),
        ];
        return if shapes.iter().any(Result::is_ok) {
            Ok(())
        } else {
            Err(
                "has no \"type\" and is not a snapshot, participant, chat message, chat \
                 target, media state, hand entry, poll, poll results, poll state or live quiz"
                    .to_owned(),
            )
        };
    };
    let Some(type_name) = type_name.as_str() else {
        return Err("\"type\" is not a string".to_owned());
    };
    if ClientMessage::TYPES.contains(&type_name) {
        let frame = decode_client(&value.to_string()).map_err(|e| e.to_string())?;
        let back = serde_json::to_value(&frame).map_err(|e| e.to_string())?;
        if back == *value {
            Ok(())
        } else {
            Err(format!("re-serializes differently, as {back}"))
        }
    } else if ServerMessage::TYPES.contains(&type_name) {
        round_trips::<ServerMessage>(value)
    } else {
        Err(format!("unknown type {type_name:?}"))
    }
}

#[test]
fn json_examples_parse_exactly_as_shown() {
    let doc = doc();
    let blocks = json_blocks(&doc);
    assert!(!blocks.is_empty(), "{DOC_PATH}: no ```json blocks found");
    let problems: Vec<String> = blocks
        .iter()
        .filter_map(|block| {
            let result = serde_json::from_str::<Value>(&block.text)
                .map_err(|e| format!("not JSON: {e}"))
                .and_then(|value| check_example(&value));
            result
                .err()
                .map(|e| format!("example at line {}: {e}", block.line))
        })
        .collect();
    fail_if_any("bad JSON examples", &problems);
}

#[test]
fn samples_cover_every_type_and_kind() {
    let client: Vec<&str> = samples::client_messages()
        .iter()
        .map(ClientMessage::type_name)
        .collect();
    assert_eq!(
        client,
        ClientMessage::TYPES,
        "samples::client_messages must hold one of each ClientMessage::TYPES, in order"
    );

    let server: Vec<String> = samples::server_messages()
        .iter()
        .map(|m| samples::wire_name(&serde_json::to_value(m).expect("serializes")))
        .collect();
    assert_eq!(
        server,
        ServerMessage::TYPES,
        "samples::server_messages must hold one of each ServerMessage::TYPES, in order"
    );

    let kinds: Vec<String> = samples::room_events()
        .iter()
        .map(|e| {
            let value = serde_json::to_value(e).expect("serializes");
            value["kind"].as_str().unwrap_or_default().to_owned()
        })
        .collect();
    assert_eq!(
        kinds,
        RoomEvent::KINDS,
        "samples::room_events must hold one of each RoomEvent::KINDS, in order"
    );
}
