//! The board's live updates (Server-Sent Events, with tickets for `EventSource`) and moving a
//! live chat message into a topic.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use base64::Engine;
use futures_util::Stream;
use lectern_proto::ChatTarget;
use lectern_store::{BoardReader, NewTopic, StoreError, TopicSource};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use tracing::{debug, info};
use utoipa::{IntoParams, ToSchema};

use super::{Member, bearer, course_of_room, forbidden, invalid, member, optional, store_error};
use crate::api::{ApiError, ApiResult, AppState, ErrorBody};
use crate::auth::unix_now;
use crate::board::{
    Audience, BoardNotice, TopicView, check_body, check_title, title_from_text, topic_view,
};
use crate::clock::wall_ms;
use crate::courses::service::require_course;
use crate::room_name::RoomName;

/// How long the ticket in `events_url` lasts (an open page reconnects with it).
const TICKET_SECS: u64 = 12 * 3600;

// ---- live updates ----

/// The grant scope of an events ticket.
fn ticket_scope(course: &str, payload: &str) -> String {
    format!("board-events {course} {payload}")
}

/// `events_url` for this member: the ticket carries who they are (`<staff 0|1>:<member>`,
/// base64url) and a grant over it.
pub(super) fn events_url(s: &AppState, member: &Member) -> String {
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(
        "{}:{}",
        u8::from(member.staff()),
        member.reader.member_id
    ));
    let grant = s.auth.grant(
        &ticket_scope(&member.course, &payload),
        unix_now() + TICKET_SECS,
    );
    format!(
        "/course/v1/courses/{}/board/events?ticket={payload}.{grant}",
        member.course
    )
}

/// The reader an events ticket stands for, if it is valid for the course.
fn reader_from_ticket(s: &AppState, course: &str, ticket: &str) -> Option<BoardReader> {
    let (payload, grant) = ticket.split_once('.')?;
    if !s
        .auth
        .check_grant(&ticket_scope(course, payload), grant, unix_now())
    {
        return None;
    }
    let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (staff, member_id) = decoded.split_once(':')?;
    Some(BoardReader {
        member_id: member_id.to_owned(),
        staff: staff == "1",
    })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct EventsQuery {
    /// The ticket from `events_url` (for `EventSource`); not needed with a Bearer token.
    ticket: Option<String>,
}

/// Live updates of the board (`text/event-stream`): a `ready` event once subscribed, then one
/// event per change this member may see (`topic_created`, `topic_updated`, `topic_deleted`,
/// `reply_created`, `reply_updated`, `reply_deleted`; data: a `BoardNotice`), and `resync`
/// when the stream fell behind and missed some (reload the page's data). Authenticate with the
/// Bearer token or the `ticket` of `events_url`.
#[utoipa::path(get, path = "/courses/{course}/board/events", tag = "board",
    params(("course" = String, Path, description = "Course id"), EventsQuery),
    responses((status = 200, description = "Server-Sent Events", content_type = "text/event-stream", body = String),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub(super) async fn events(
    State(s): State<AppState>,
    Path(course): Path<String>,
    Query(query): Query<EventsQuery>,
    headers: HeaderMap,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>> + use<>>> {
    let reader = match (&query.ticket, bearer(&headers)) {
        (_, Some(_)) => member(&s, &headers, &course).await?.reader,
        (Some(ticket), None) => {
            let reader = reader_from_ticket(&s, &course, ticket).ok_or_else(|| {
                forbidden("the events ticket has expired or is not for this course; reload")
            })?;
            require_course(&s.store, &course).await?;
            reader
        }
        (None, None) => {
            return Err(ApiError::unauthorized(
                "a join token (Authorization: Bearer) or an events ticket is required",
            ));
        }
    };
    let state = EventsState {
        rx: s.board.subscribe(&course),
        shutdown: s.shutdown_rx.clone(),
        reader,
        ready_sent: false,
    };
    let stream = futures_util::stream::unfold(state, next_event);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

struct EventsState {
    rx: tokio::sync::broadcast::Receiver<Arc<crate::board::BoardEvent>>,
    shutdown: tokio::sync::watch::Receiver<bool>,
    reader: BoardReader,
    ready_sent: bool,
}

/// The next event this subscriber may see; `None` ends the stream (shutdown).
async fn next_event(mut state: EventsState) -> Option<(Result<Event, Infallible>, EventsState)> {
    if !state.ready_sent {
        state.ready_sent = true;
        let ready = Event::default().event("ready").data(r#"{"type":"ready"}"#);
        return Some((Ok(ready), state));
    }
    loop {
        if *state.shutdown.borrow() {
            return None;
        }
        tokio::select! {
            _ = state.shutdown.changed() => continue,
            received = state.rx.recv() => match received {
                Ok(event) if event.audience.includes(&state.reader) => {
                    let sse = Event::default().event(event.kind).data(event.json.as_str());
                    return Some((Ok(sse), state));
                }
                Ok(_) => continue,
                Err(RecvError::Lagged(missed)) => {
                    debug!(board.missed = missed, "a board subscriber fell behind");
                    let sse = Event::default()
                        .event("resync")
                        .data(format!(r#"{{"type":"resync","missed":{missed}}}"#));
                    return Some((Ok(sse), state));
                }
                Err(RecvError::Closed) => return None,
            },
        }
    }
}

// ---- from live chat ----

/// A live chat message to move into a topic.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct FromChatInput {
    /// The room (session) of the course the message was sent in, e.g.
    /// `algebra.2026-09-01T10:00`.
    room: String,
    /// The message's sequence number in that room.
    seq: u64,
    /// The topic's title (default: the message's first line).
    title: Option<String>,
    /// Make the topic private (staff and the message's sender). A message sent to the staff
    /// always makes a private topic.
    #[serde(default)]
    private: bool,
}

/// Move a live chat message into a board topic ("answer this after class"), staff only: the
/// topic quotes the message and its sender's display name and links to its session.
#[utoipa::path(post, path = "/courses/{course}/board/from-chat", tag = "board",
    request_body = FromChatInput,
    params(("course" = String, Path, description = "Course id")),
    responses((status = 201, body = TopicView), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(super) async fn topic_from_chat(
    State(s): State<AppState>,
    Path(course): Path<String>,
    headers: HeaderMap,
    Json(input): Json<FromChatInput>,
) -> ApiResult<(StatusCode, Json<TopicView>)> {
    let member = member(&s, &headers, &course).await?;
    if !member.staff() {
        return Err(forbidden("only staff may move a chat message to the board"));
    }
    if input.room.is_empty() || input.room.len() > 128 {
        return Err(invalid("room", "1 to 128 characters".to_owned()));
    }
    if course_of_room(&input.room) != course {
        return Err(forbidden("this room belongs to another course"));
    }
    let title = optional("title", input.title.as_deref(), check_title)?;
    let no_message = || ApiError::not_found("no such chat message in this room");
    // Seqs are stored as signed 64-bit integers.
    if input.seq == 0 || input.seq > i64::MAX as u64 {
        return Err(no_message());
    }
    let room = lectern_proto::RoomId(input.room.clone());
    let stored = s
        .store
        .chat_log(&room, input.seq - 1, 1)
        .await
        .map_err(store_error)?
        .into_iter()
        .find(|m| m.message.seq == input.seq && m.deleted_at.is_none())
        .ok_or_else(no_message)?;
    let message = stored.message;
    let private_to = match &message.to {
        ChatTarget::Everyone => input.private.then(|| message.from.as_str().to_owned()),
        ChatTarget::Staff => Some(message.from.as_str().to_owned()),
        ChatTarget::Participant { .. } => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                "a private message to one participant cannot be moved to the board",
            ));
        }
    };
    if let Some(existing) = s
        .store
        .topic_from_chat(&input.room, input.seq)
        .await
        .map_err(store_error)?
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("this message is already topic {existing}"),
        ));
    }
    let session = RoomName::parse(&input.room)
        .map(|r| format!(", in class {}", r.session_key()))
        .unwrap_or_default();
    let quoted: String = message
        .text
        .lines()
        .map(|line| format!("> {line}\n"))
        .collect();
    let body = format!("{quoted}\n— {}{session}", message.from_name);
    let body = check_body(&body).map_err(|r| invalid("seq", format!("the message {r}")))?;
    let title = title.unwrap_or_else(|| title_from_text(&message.text));
    let topic = s
        .store
        .create_topic(&NewTopic {
            course_id: course.clone(),
            author: member.author.clone(),
            title,
            body,
            private_to,
            source: Some(TopicSource {
                room: input.room.clone(),
                seq: message.seq,
                author_name: message.from_name.clone(),
                sent_at: message.sent_at,
            }),
            at: wall_ms(),
        })
        .await
        .map_err(|err| match err {
            StoreError::Conflict { .. } => ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                "this message is already a topic",
            ),
            other => store_error(other),
        })?;
    info!(course.id = %course, board.topic = topic.id, chat.seq = message.seq, "chat message moved to the board");
    let view = topic_view(&topic);
    s.board.publish(
        &course,
        &BoardNotice::TopicCreated {
            topic: view.clone(),
        },
        Audience::of(&topic),
    );
    Ok((StatusCode::CREATED, Json(view)))
}
