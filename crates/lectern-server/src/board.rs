//! The course discussion board's server side: what members see of posts ([`TopicView`],
//! [`ReplyView`]), input checks, and [`BoardHub`], the live-update fan-out behind the board's
//! Server-Sent Events endpoint (`api/board_routes.rs`).
//!
//! Live updates: one `tokio::sync::broadcast` channel per course that has an open page. Each
//! change is serialized once ([`BoardEvent::json`]) and sent to every subscriber; a subscriber
//! decides from the event's [`Audience`] whether its member may see it (a private topic and its
//! replies reach only staff and the asker). A subscriber that falls more than [`CHANNEL_SIZE`]
//! events behind is told to reload (`resync`) instead of slowing anyone down.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use lectern_store::{BoardReader, Reply, Topic, TopicSource};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use utoipa::ToSchema;

use crate::courses::service::rfc3339;
use crate::room_name::RoomName;

/// The longest topic title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// The longest post body, in characters.
pub const MAX_BODY_CHARS: usize = 10_000;
/// The longest search text, in characters.
pub const MAX_QUERY_CHARS: usize = 200;
/// Events a subscriber may fall behind before it is told to reload.
pub const CHANNEL_SIZE: usize = 256;

/// Who wrote a post.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuthorView {
    /// The participant id of their join token.
    pub member_id: String,
    /// Their display name when they wrote it.
    pub name: String,
    /// `instructor`, `ta`, `student` or `observer`.
    pub role: String,
}

/// The live chat message a topic was made from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SourceView {
    /// The room the message was sent in.
    pub room: String,
    /// The session key of that room (`YYYY-MM-DDTHH:MM`), null for an ad-hoc room.
    pub session_key: Option<String>,
    /// The message's sequence number in the room.
    pub seq: u64,
    /// The sender's display name.
    pub author_name: String,
    /// RFC 3339, UTC.
    pub sent_at: String,
}

/// A topic. A deleted topic keeps its id, author and times; its title and body are empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TopicView {
    pub id: i64,
    pub course_id: String,
    pub author: AuthorView,
    pub title: String,
    pub body: String,
    /// A question to the staff: only staff and `private_to` read it.
    pub private: bool,
    /// The member a private topic is shared with (its asker), null for a public topic.
    pub private_to: Option<String>,
    pub pinned: bool,
    /// Only staff may reply.
    pub locked: bool,
    pub deleted: bool,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// RFC 3339, UTC; null if never edited.
    pub edited_at: Option<String>,
    /// RFC 3339, UTC; null unless deleted.
    pub deleted_at: Option<String>,
    /// The topic's creation or its latest reply, RFC 3339, UTC.
    pub last_activity_at: String,
    /// Replies that are not deleted.
    pub reply_count: u64,
    /// Set when staff made the topic from a live chat message.
    pub source: Option<SourceView>,
}

/// A reply. A deleted reply keeps its place in the thread; its body is empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReplyView {
    pub id: i64,
    pub topic_id: i64,
    pub author: AuthorView,
    pub body: String,
    pub deleted: bool,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// RFC 3339, UTC; null if never edited.
    pub edited_at: Option<String>,
    /// RFC 3339, UTC; null unless deleted.
    pub deleted_at: Option<String>,
}

fn author_view(author: &lectern_store::BoardAuthor) -> AuthorView {
    AuthorView {
        member_id: author.member_id.clone(),
        name: author.name.clone(),
        role: author.role.as_str().to_owned(),
    }
}

fn source_view(source: &TopicSource) -> SourceView {
    SourceView {
        room: source.room.clone(),
        session_key: RoomName::parse(&source.room).map(|r| r.session_key().to_owned()),
        seq: source.seq,
        author_name: source.author_name.clone(),
        sent_at: rfc3339(source.sent_at),
    }
}

pub fn topic_view(topic: &Topic) -> TopicView {
    TopicView {
        id: topic.id,
        course_id: topic.course_id.clone(),
        author: author_view(&topic.author),
        title: topic.title.clone(),
        body: topic.body.clone(),
        private: topic.private_to.is_some(),
        private_to: topic.private_to.clone(),
        pinned: topic.pinned,
        locked: topic.locked,
        deleted: topic.deleted_at.is_some(),
        created_at: rfc3339(topic.created_at),
        edited_at: topic.edited_at.map(rfc3339),
        deleted_at: topic.deleted_at.map(rfc3339),
        last_activity_at: rfc3339(topic.last_activity_at),
        reply_count: topic.reply_count,
        source: topic.source.as_ref().map(source_view),
    }
}

pub fn reply_view(reply: &Reply) -> ReplyView {
    ReplyView {
        id: reply.id,
        topic_id: reply.topic_id,
        author: author_view(&reply.author),
        body: reply.body.clone(),
        deleted: reply.deleted_at.is_some(),
        created_at: rfc3339(reply.created_at),
        edited_at: reply.edited_at.map(rfc3339),
        deleted_at: reply.deleted_at.map(rfc3339),
    }
}

/// A title: trimmed, not blank, at most [`MAX_TITLE_CHARS`], no control characters.
pub fn check_title(title: &str) -> Result<String, String> {
    let title = title.trim();
    if title.is_empty() {
        Err("must not be empty".to_owned())
    } else if title.chars().count() > MAX_TITLE_CHARS {
        Err(format!("at most {MAX_TITLE_CHARS} characters"))
    } else if title.chars().any(char::is_control) {
        Err("must not contain control characters".to_owned())
    } else {
        Ok(title.to_owned())
    }
}

/// A post body: trimmed, not blank, at most [`MAX_BODY_CHARS`]; line breaks and tabs are the
/// only control characters it may hold.
pub fn check_body(body: &str) -> Result<String, String> {
    let body = body.trim();
    if body.is_empty() {
        Err("must not be empty".to_owned())
    } else if body.chars().count() > MAX_BODY_CHARS {
        Err(format!("at most {MAX_BODY_CHARS} characters"))
    } else if body
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        Err("must not contain control characters other than line breaks and tabs".to_owned())
    } else {
        Ok(body.to_owned())
    }
}

/// A title for a topic made from a chat message: its first line, cut at a word boundary to fit.
pub fn title_from_text(text: &str) -> String {
    const LIMIT: usize = 80;
    let line: String = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    if line.chars().count() <= LIMIT {
        return if line.is_empty() {
            "Question from class".to_owned()
        } else {
            line
        };
    }
    let cut: String = line.chars().take(LIMIT - 1).collect();
    let cut = match cut.rfind(' ') {
        Some(space) if space > LIMIT / 2 => cut[..space].to_owned(),
        _ => cut,
    };
    format!("{}…", cut.trim_end())
}

/// Who may see a board event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// Every member of the course.
    Everyone,
    /// Staff, and the members listed (a private topic's asker and author).
    StaffAnd(Vec<String>),
}

impl Audience {
    /// The audience of events about `topic` and its replies.
    pub fn of(topic: &Topic) -> Audience {
        match &topic.private_to {
            None => Audience::Everyone,
            Some(member) => {
                let mut members = vec![member.clone()];
                if topic.author.member_id != *member {
                    members.push(topic.author.member_id.clone());
                }
                Audience::StaffAnd(members)
            }
        }
    }

    pub fn includes(&self, reader: &BoardReader) -> bool {
        match self {
            Audience::Everyone => true,
            Audience::StaffAnd(members) => reader.staff || members.contains(&reader.member_id),
        }
    }
}

/// What changed on a board, as sent to open pages.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BoardNotice {
    TopicCreated { topic: TopicView },
    TopicUpdated { topic: TopicView },
    TopicDeleted { topic: TopicView },
    ReplyCreated { topic_id: i64, reply: ReplyView },
    ReplyUpdated { topic_id: i64, reply: ReplyView },
    ReplyDeleted { topic_id: i64, reply: ReplyView },
}

impl BoardNotice {
    /// The SSE event name: the notice's `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            BoardNotice::TopicCreated { .. } => "topic_created",
            BoardNotice::TopicUpdated { .. } => "topic_updated",
            BoardNotice::TopicDeleted { .. } => "topic_deleted",
            BoardNotice::ReplyCreated { .. } => "reply_created",
            BoardNotice::ReplyUpdated { .. } => "reply_updated",
            BoardNotice::ReplyDeleted { .. } => "reply_deleted",
        }
    }
}

/// One change, serialized once for every subscriber.
#[derive(Debug)]
pub struct BoardEvent {
    pub kind: &'static str,
    pub json: String,
    pub audience: Audience,
}

/// The live-update channels, one per course with at least one open page.
#[derive(Debug, Default)]
pub struct BoardHub {
    channels: Mutex<HashMap<String, broadcast::Sender<Arc<BoardEvent>>>>,
}

impl BoardHub {
    /// A receiver of the course's events from now on.
    pub fn subscribe(&self, course: &str) -> broadcast::Receiver<Arc<BoardEvent>> {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        // Channels whose pages are all closed are dropped here, so the map only holds courses
        // with an open page (plus the one being subscribed to).
        channels.retain(|_, tx| tx.receiver_count() > 0);
        channels
            .entry(course.to_owned())
            .or_insert_with(|| broadcast::channel(CHANNEL_SIZE).0)
            .subscribe()
    }

    /// Sends the notice to the course's open pages, if any. Never waits.
    pub fn publish(&self, course: &str, notice: &BoardNotice, audience: Audience) {
        let sender = {
            let channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
            channels.get(course).cloned()
        };
        let Some(sender) = sender else {
            return;
        };
        let json = match serde_json::to_string(notice) {
            Ok(json) => json,
            Err(err) => {
                tracing::error!(error = %err, "a board notice did not serialize");
                return;
            }
        };
        let event = Arc::new(BoardEvent {
            kind: notice.kind(),
            json,
            audience,
        });
        // An error only means no page is open any more.
        let _ = sender.send(event);
    }

    /// How many courses have an open page (for tests and metrics).
    pub fn open_courses(&self) -> usize {
        let channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        channels
            .values()
            .filter(|tx| tx.receiver_count() > 0)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_and_bodies_are_checked() {
        assert_eq!(check_title("  Hello  "), Ok("Hello".to_owned()));
        assert!(check_title("   ").is_err());
        assert!(check_title(&"x".repeat(MAX_TITLE_CHARS + 1)).is_err());
        assert!(check_title(&"é".repeat(MAX_TITLE_CHARS)).is_ok());
        assert!(check_title("a\nb").is_err());
        assert_eq!(
            check_body("line 1\n\tline 2\n"),
            Ok("line 1\n\tline 2".to_owned())
        );
        assert!(check_body("\n\n").is_err());
        assert!(check_body("nul\0").is_err());
        assert!(check_body(&"x".repeat(MAX_BODY_CHARS + 1)).is_err());
    }

    #[test]
    fn chat_titles_are_first_lines_cut_at_a_word() {
        assert_eq!(
            title_from_text("What is a ring?\nthanks"),
            "What is a ring?"
        );
        assert_eq!(title_from_text("  \n"), "Question from class");
        let long = "word ".repeat(40);
        let title = title_from_text(&long);
        assert!(title.chars().count() <= 80, "{title}");
        assert!(title.ends_with("word…"), "{title}");
    }

    #[test]
    fn private_events_reach_staff_and_the_asker_only() {
        let audience = Audience::StaffAnd(vec!["ada".to_owned()]);
        let reader = |id: &str, staff| BoardReader {
            member_id: id.to_owned(),
            staff,
        };
        assert!(audience.includes(&reader("ada", false)));
        assert!(audience.includes(&reader("grace", true)));
        assert!(!audience.includes(&reader("alan", false)));
        assert!(Audience::Everyone.includes(&reader("alan", false)));
    }

    #[tokio::test]
    async fn the_hub_fans_out_per_course_and_forgets_closed_pages() {
        let hub = BoardHub::default();
        let mut algebra = hub.subscribe("algebra");
        let physics = hub.subscribe("physics");
        let notice = BoardNotice::ReplyDeleted {
            topic_id: 1,
            reply: ReplyView {
                id: 2,
                topic_id: 1,
                author: AuthorView {
                    member_id: "ada".to_owned(),
                    name: "Ada".to_owned(),
                    role: "student".to_owned(),
                },
                body: String::new(),
                deleted: true,
                created_at: String::new(),
                edited_at: None,
                deleted_at: None,
            },
        };
        hub.publish("algebra", &notice, Audience::Everyone);
        let event = algebra.recv().await.unwrap();
        assert_eq!(event.kind, "reply_deleted");
        assert!(
            event.json.contains("\"type\":\"reply_deleted\""),
            "{}",
            event.json
        );
        assert_eq!(hub.open_courses(), 2);
        drop(physics);
        assert_eq!(hub.open_courses(), 1);
        // Publishing to a course nobody watches is a no-op.
        hub.publish("physics", &notice, Audience::Everyone);
    }
}
