//! The chat transcript of one session's room, as JSON entries or plain text.

use lectern_store::Store;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::schedules::course_session;
use super::service::{ServiceError, rfc3339};
use crate::room_name::RoomName;

/// Chat messages read from the store per page while exporting a transcript.
const TRANSCRIPT_PAGE: u32 = 1000;

/// Who a chat message was for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// The whole class.
    Everyone,
    /// The teaching staff only (a student's private question).
    Staff,
    /// One participant (and the staff), by participant id.
    Participant(String),
}

impl Audience {
    fn label(&self) -> String {
        match self {
            Audience::Everyone => "everyone".to_owned(),
            Audience::Staff => "staff".to_owned(),
            Audience::Participant(id) => format!("participant:{id}"),
        }
    }
}

/// One chat message of a session's transcript.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TranscriptEntry {
    /// The message's sequence number in the room.
    pub seq: u64,
    /// RFC 3339 UTC.
    pub sent_at: String,
    pub from: String,
    pub from_name: String,
    pub from_role: String,
    /// `everyone`, `staff`, or `{"participant": id}` for a private message.
    pub to: Audience,
    /// Null when the message was deleted by staff (the text is not exported).
    pub text: Option<String>,
    pub deleted: bool,
    /// When and by whom it was deleted, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_by: Option<String>,
}

/// The chat of one session's room, oldest first, private messages included with their
/// audience, deleted messages marked (without their text).
pub async fn transcript(
    store: &Store,
    course: &str,
    session_key: &str,
) -> Result<Vec<TranscriptEntry>, ServiceError> {
    let (course_row, occ, _) = course_session(store, course, session_key).await?;
    let room = RoomName::session(&course_row.id, occ.session_key.as_str()).room_id();
    let mut entries = Vec::new();
    let mut after = 0;
    loop {
        let page = store.chat_log(&room, after, TRANSCRIPT_PAGE).await?;
        let full = page.len() >= TRANSCRIPT_PAGE as usize;
        for stored in page {
            let m = stored.message;
            after = after.max(m.seq);
            let deleted = stored.deleted_at.is_some();
            entries.push(TranscriptEntry {
                seq: m.seq,
                sent_at: rfc3339(m.sent_at),
                from: m.from.as_str().to_owned(),
                from_name: m.from_name,
                from_role: m.from_role.as_str().to_owned(),
                to: match m.to {
                    lectern_proto::ChatTarget::Everyone => Audience::Everyone,
                    lectern_proto::ChatTarget::Staff => Audience::Staff,
                    lectern_proto::ChatTarget::Participant { id } => {
                        Audience::Participant(id.as_str().to_owned())
                    }
                },
                text: (!deleted).then_some(m.text),
                deleted,
                deleted_at: stored.deleted_at.map(rfc3339),
                deleted_by: stored.deleted_by.map(|p| p.as_str().to_owned()),
            });
        }
        if !full {
            break;
        }
    }
    Ok(entries)
}

/// A transcript as plain text, one message per line:
/// `[2026-09-01T08:03:12Z] Ada Lovelace (ada, student) -> everyone: text`.
pub fn transcript_text(entries: &[TranscriptEntry]) -> String {
    let mut out = String::new();
    for e in entries {
        let body = if e.deleted {
            format!(
                "[deleted by {} at {}]",
                e.deleted_by.as_deref().unwrap_or("?"),
                e.deleted_at.as_deref().unwrap_or("?")
            )
        } else {
            // One message per line: line breaks inside a message are escaped.
            e.text
                .as_deref()
                .unwrap_or("")
                .replace('\\', "\\\\")
                .replace('\r', "\\r")
                .replace('\n', "\\n")
        };
        out.push_str(&format!(
            "[{}] {} ({}, {}) -> {}: {}\n",
            e.sent_at,
            e.from_name,
            e.from,
            e.from_role,
            e.to.label(),
            body
        ));
    }
    out
}
