//! The member API under `/course/v1`: the course discussion board. Like the replay API, a member
//! authenticates with their own join token for any room of the course (`Authorization: Bearer`),
//! not an admin key, so it lives outside `/api/v1` (which operators may keep off the public
//! network). It has its own OpenAPI document, `/course/v1/openapi.json`, generated from the
//! handlers like the admin API's.
//!
//! Permissions: every member reads the public topics; a private topic (a question to the staff)
//! only staff and its asker. Students and staff post; observers only read. Authors edit their
//! own posts; authors and staff delete; staff pin, lock, reply to locked topics and move a live
//! chat message into a topic. A topic a member may not read answers 404, like one that does not
//! exist.

use std::convert::Infallible;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Json;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use base64::Engine;
use futures_util::Stream;
use lectern_proto::{ChatTarget, Role};
use lectern_store::{BoardAuthor, BoardReader, NewTopic, StoreError, Topic, TopicSource};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;
use tracing::{debug, info};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, ApiResult, AppState, ErrorBody, ErrorInfo, MAX_BODY_BYTES, json_errors};
use crate::auth::unix_now;
use crate::board::{
    Audience, BoardNotice, MAX_QUERY_CHARS, ReplyView, TopicView, check_body, check_title,
    reply_view, title_from_text, topic_view,
};
use crate::clock::wall_ms;
use crate::courses::service::require_course;
use crate::courses::{ErrorDetail, ServiceError};
use crate::room_name::RoomName;

/// How long the ticket in `events_url` lasts (an open page reconnects with it).
const TICKET_SECS: u64 = 12 * 3600;
/// The most topics or search hits one request returns.
const MAX_PAGE: u32 = 100;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Lectern member API",
        description = "The course discussion board, for course members. Authenticate with \
                       `Authorization: Bearer <join token>`: the member's own join token for \
                       any room of the course."
    ),
    servers((url = "/course/v1")),
    modifiers(&JoinTokenAuth),
    security(("join_token" = [])),
    components(schemas(ErrorBody, ErrorInfo, ErrorDetail, BoardNotice))
)]
struct MemberApiDoc;

struct JoinTokenAuth;

impl Modify for JoinTokenAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "join_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

fn member_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(MemberApiDoc::openapi())
        .routes(routes!(member_openapi_json))
        .routes(routes!(list_topics, create_topic))
        .routes(routes!(get_topic, change_topic, delete_topic))
        .routes(routes!(create_reply))
        .routes(routes!(edit_reply, delete_reply))
        .routes(routes!(search))
        .routes(routes!(events))
        .routes(routes!(topic_from_chat))
}

/// The member API router, to nest under `/course/v1`.
pub fn router() -> axum::Router<AppState> {
    let (router, _) = member_routes().split_for_parts();
    router
        .fallback(|| async { ApiError::not_found("no such member API endpoint") })
        .layer(axum::middleware::map_response(json_errors))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

/// The OpenAPI document of [`router`].
pub fn openapi() -> &'static utoipa::openapi::OpenApi {
    static DOC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOC.get_or_init(|| member_routes().split_for_parts().1)
}

/// The OpenAPI document of the member API (no token needed).
#[utoipa::path(get, path = "/openapi.json", tag = "meta", security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")))]
async fn member_openapi_json() -> Json<&'static utoipa::openapi::OpenApi> {
    Json(openapi())
}

fn forbidden(message: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
}

fn invalid(field: &str, reason: String) -> ApiError {
    ApiError {
        status: StatusCode::BAD_REQUEST,
        code: "invalid_input",
        message: format!("{field}: {reason}"),
        details: vec![ErrorDetail {
            field: Some(field.to_owned()),
            line: None,
            reason,
        }],
    }
}

/// A store failure as the API shows it.
fn store_error(err: StoreError) -> ApiError {
    match err {
        StoreError::TopicLocked(_) => ApiError::new(
            StatusCode::CONFLICT,
            "locked",
            "this topic is locked: only staff may reply",
        ),
        StoreError::Deleted { what, .. } => ApiError::new(
            StatusCode::CONFLICT,
            "deleted",
            format!("this {what} was deleted"),
        ),
        StoreError::NotFound { what, .. } => ApiError::not_found(&format!("no such {what}")),
        other => ServiceError::from(other).into(),
    }
}

/// The member behind a request, checked against the course in its path.
#[derive(Debug, Clone)]
struct Member {
    course: String,
    author: BoardAuthor,
    reader: BoardReader,
}

impl Member {
    fn staff(&self) -> bool {
        self.reader.staff
    }

    fn may_post(&self) -> Result<(), ApiError> {
        if self.author.role == Role::Observer {
            return Err(forbidden("observers read the board but do not post"));
        }
        Ok(())
    }

    fn is_author(&self, member_id: &str) -> bool {
        self.author.member_id == member_id
    }
}

/// The course a room id belongs to: the course part of a session's room; an ad-hoc room is its
/// own course (as for replays).
fn course_of_room(room: &str) -> String {
    RoomName::parse(room).map_or_else(|| room.to_owned(), |r| r.course().to_owned())
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// Checks the join token: 401 without a valid one, 403 if it is for another course, 404 if
/// the course does not exist.
async fn member(s: &AppState, headers: &HeaderMap, course: &str) -> Result<Member, ApiError> {
    let token = bearer(headers).ok_or_else(|| {
        ApiError::unauthorized("a join token is required: Authorization: Bearer <token>")
    })?;
    let (room, identity) = s
        .auth
        .verify(token, None)
        .map_err(|e| ApiError::unauthorized(&format!("the join token is not valid: {e}")))?;
    if course_of_room(room.as_str()) != course {
        return Err(forbidden("this join token is for another course"));
    }
    require_course(&s.store, course).await?;
    Ok(Member {
        course: course.to_owned(),
        reader: BoardReader {
            member_id: identity.id.as_str().to_owned(),
            staff: identity.role.is_staff(),
        },
        author: BoardAuthor {
            member_id: identity.id.as_str().to_owned(),
            name: identity.name,
            role: identity.role,
        },
    })
}

/// A post id from a path: a positive integer, else 404 (no such post).
fn post_id(text: &str, what: &str) -> Result<i64, ApiError> {
    text.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::not_found(&format!("no such {what}")))
}

/// The topic, if it is in the member's course and they may read it; else 404.
async fn readable_topic(s: &AppState, member: &Member, id: i64) -> Result<Topic, ApiError> {
    match s.store.topic(id).await.map_err(store_error)? {
        Some(topic) if topic.course_id == member.course && topic.visible_to(&member.reader) => {
            Ok(topic)
        }
        _ => Err(ApiError::not_found("no such topic")),
    }
}

// ---- topics ----

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct PageQuery {
    /// Topics per page, 1 to 100 (default 50).
    limit: Option<u32>,
    /// Topics to skip (default 0).
    offset: Option<u32>,
}

/// A topic in a list, with what the member has not read of it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
struct TopicListItem {
    topic: TopicView,
    /// 1 for a topic never opened (unless the member wrote it), plus the replies by others
    /// since the member last opened it.
    unread: u64,
}

/// Who the board is shown to.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
struct ViewerView {
    member_id: String,
    name: String,
    role: String,
    /// Instructors and TAs.
    staff: bool,
}

/// A page of topics.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
struct TopicList {
    /// Pinned topics first, then the latest activity first. Deleted topics are left out.
    topics: Vec<TopicListItem>,
    /// Unread posts over the whole board for this member.
    unread_total: u64,
    /// Whether a next page exists (`offset + limit`).
    has_more: bool,
    viewer: ViewerView,
    /// The live-update stream for this member, with a ticket in place of the token (for
    /// `EventSource`, which cannot send a header); valid 12 hours.
    events_url: String,
}

/// The course's topics this member may read, with unread counts.
#[utoipa::path(get, path = "/courses/{course}/board/topics", tag = "board",
    params(("course" = String, Path, description = "Course id"), PageQuery),
    responses((status = 200, body = TopicList), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
async fn list_topics(
    State(s): State<AppState>,
    Path(course): Path<String>,
    Query(page): Query<PageQuery>,
    headers: HeaderMap,
) -> ApiResult<Json<TopicList>> {
    let member = member(&s, &headers, &course).await?;
    let limit = page.limit.unwrap_or(50);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(invalid("limit", format!("from 1 to {MAX_PAGE}")));
    }
    let offset = u64::from(page.offset.unwrap_or(0));
    let mut topics = s
        .store
        .board_topics(&course, &member.reader, limit + 1, offset)
        .await
        .map_err(store_error)?;
    let has_more = topics.len() > limit as usize;
    topics.truncate(limit as usize);
    let unread_total = s
        .store
        .board_unread(&course, &member.reader)
        .await
        .map_err(store_error)?;
    Ok(Json(TopicList {
        topics: topics
            .iter()
            .map(|t| TopicListItem {
                topic: topic_view(&t.topic),
                unread: t.unread,
            })
            .collect(),
        unread_total,
        has_more,
        events_url: events_url(&s, &member),
        viewer: ViewerView {
            member_id: member.author.member_id.clone(),
            name: member.author.name.clone(),
            role: member.author.role.as_str().to_owned(),
            staff: member.staff(),
        },
    }))
}

/// A new topic.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewTopicInput {
    /// 1 to 200 characters, no line breaks.
    title: String,
    /// 1 to 10,000 characters.
    body: String,
    /// A private question to the staff: only staff and the author will read it.
    #[serde(default)]
    private: bool,
}

/// Start a topic (students and staff), or ask the staff privately (`private: true`).
#[utoipa::path(post, path = "/courses/{course}/board/topics", tag = "board",
    request_body = NewTopicInput,
    params(("course" = String, Path, description = "Course id")),
    responses((status = 201, body = TopicView), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
async fn create_topic(
    State(s): State<AppState>,
    Path(course): Path<String>,
    headers: HeaderMap,
    Json(input): Json<NewTopicInput>,
) -> ApiResult<(StatusCode, Json<TopicView>)> {
    let member = member(&s, &headers, &course).await?;
    member.may_post()?;
    let title = check_title(&input.title).map_err(|r| invalid("title", r))?;
    let body = check_body(&input.body).map_err(|r| invalid("body", r))?;
    let topic = s
        .store
        .create_topic(&NewTopic {
            course_id: course.clone(),
            author: member.author.clone(),
            title,
            body,
            private_to: input.private.then(|| member.author.member_id.clone()),
            source: None,
            at: wall_ms(),
        })
        .await
        .map_err(store_error)?;
    info!(course.id = %course, board.topic = topic.id, board.private = input.private, "topic created");
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

/// A topic with its replies.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
struct TopicThread {
    topic: TopicView,
    /// Oldest first; deleted replies keep their place with an empty body.
    replies: Vec<ReplyView>,
    /// What the member had not read before this request (it marks the topic read).
    unread: u64,
}

/// A topic and its replies; marks them read for this member.
#[utoipa::path(get, path = "/courses/{course}/board/topics/{topic}", tag = "board",
    params(("course" = String, Path, description = "Course id"),
           ("topic" = i64, Path, description = "Topic id")),
    responses((status = 200, body = TopicThread), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_topic(
    State(s): State<AppState>,
    Path((course, topic)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<TopicThread>> {
    let member = member(&s, &headers, &course).await?;
    let topic = readable_topic(&s, &member, post_id(&topic, "topic")?).await?;
    let replies = s.store.replies(topic.id).await.map_err(store_error)?;
    let unread = unread_of(&s, &member, &topic).await?;
    if topic.deleted_at.is_none() {
        s.store
            .mark_topic_read(topic.id, &member.reader.member_id, wall_ms())
            .await
            .map_err(store_error)?;
    }
    Ok(Json(TopicThread {
        topic: topic_view(&topic),
        replies: replies.iter().map(reply_view).collect(),
        unread,
    }))
}

/// The member's unread count of one topic (0 once deleted).
async fn unread_of(s: &AppState, member: &Member, topic: &Topic) -> Result<u64, ApiError> {
    if topic.deleted_at.is_some() {
        return Ok(0);
    }
    s.store
        .topic_unread(topic.id, &member.reader.member_id)
        .await
        .map_err(store_error)
}

/// Changes to a topic: any of the fields.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TopicChange {
    /// The author's new title.
    title: Option<String>,
    /// The author's new body.
    body: Option<String>,
    /// Staff only.
    pinned: Option<bool>,
    /// Staff only: a locked topic takes replies from staff only.
    locked: Option<bool>,
}

/// Edit a topic (its author: `title`, `body`) or pin and lock it (staff: `pinned`, `locked`).
#[utoipa::path(patch, path = "/courses/{course}/board/topics/{topic}", tag = "board",
    request_body = TopicChange,
    params(("course" = String, Path, description = "Course id"),
           ("topic" = i64, Path, description = "Topic id")),
    responses((status = 200, body = TopicView), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn change_topic(
    State(s): State<AppState>,
    Path((course, topic)): Path<(String, String)>,
    headers: HeaderMap,
    Json(change): Json<TopicChange>,
) -> ApiResult<Json<TopicView>> {
    let member = member(&s, &headers, &course).await?;
    let topic = readable_topic(&s, &member, post_id(&topic, "topic")?).await?;
    let edits_text = change.title.is_some() || change.body.is_some();
    let flags = change.pinned.is_some() || change.locked.is_some();
    if !edits_text && !flags {
        return Err(invalid(
            "body",
            "give at least one of title, body, pinned, locked".to_owned(),
        ));
    }
    if edits_text && !member.is_author(&topic.author.member_id) {
        return Err(forbidden("only its author may edit a topic"));
    }
    if flags && !member.staff() {
        return Err(forbidden("only staff may pin or lock a topic"));
    }
    let title = change
        .title
        .as_deref()
        .map(check_title)
        .transpose()
        .map_err(|r| invalid("title", r))?;
    let body = change
        .body
        .as_deref()
        .map(check_body)
        .transpose()
        .map_err(|r| invalid("body", r))?;
    let mut updated = topic.clone();
    if edits_text {
        updated = s
            .store
            .edit_topic(
                topic.id,
                title.as_deref().unwrap_or(&topic.title),
                body.as_deref().unwrap_or(&topic.body),
                wall_ms(),
            )
            .await
            .map_err(store_error)?;
    }
    if flags {
        updated = s
            .store
            .set_topic_flags(topic.id, change.pinned, change.locked)
            .await
            .map_err(store_error)?;
    }
    let view = topic_view(&updated);
    s.board.publish(
        &course,
        &BoardNotice::TopicUpdated {
            topic: view.clone(),
        },
        Audience::of(&updated),
    );
    Ok(Json(view))
}

/// Delete a topic (its author, or staff): its text is erased, its replies stay.
#[utoipa::path(delete, path = "/courses/{course}/board/topics/{topic}", tag = "board",
    params(("course" = String, Path, description = "Course id"),
           ("topic" = i64, Path, description = "Topic id")),
    responses((status = 204, description = "Deleted"), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_topic(
    State(s): State<AppState>,
    Path((course, topic)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let member = member(&s, &headers, &course).await?;
    let topic = readable_topic(&s, &member, post_id(&topic, "topic")?).await?;
    if !member.staff() && !member.is_author(&topic.author.member_id) {
        return Err(forbidden("only its author or staff may delete a topic"));
    }
    if topic.deleted_at.is_some() {
        return Ok(StatusCode::NO_CONTENT);
    }
    let deleted = s
        .store
        .delete_topic(topic.id, &member.reader.member_id, wall_ms())
        .await
        .map_err(store_error)?;
    info!(course.id = %course, board.topic = topic.id, "topic deleted");
    s.board.publish(
        &course,
        &BoardNotice::TopicDeleted {
            topic: topic_view(&deleted),
        },
        Audience::of(&topic),
    );
    Ok(StatusCode::NO_CONTENT)
}

// ---- replies ----

/// A reply's text.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ReplyInput {
    /// 1 to 10,000 characters.
    body: String,
}

/// Reply to a topic. A locked topic takes replies from staff only (409 `locked`).
#[utoipa::path(post, path = "/courses/{course}/board/topics/{topic}/replies", tag = "board",
    request_body = ReplyInput,
    params(("course" = String, Path, description = "Course id"),
           ("topic" = i64, Path, description = "Topic id")),
    responses((status = 201, body = ReplyView), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_reply(
    State(s): State<AppState>,
    Path((course, topic)): Path<(String, String)>,
    headers: HeaderMap,
    Json(input): Json<ReplyInput>,
) -> ApiResult<(StatusCode, Json<ReplyView>)> {
    let member = member(&s, &headers, &course).await?;
    let topic = readable_topic(&s, &member, post_id(&topic, "topic")?).await?;
    member.may_post()?;
    let body = check_body(&input.body).map_err(|r| invalid("body", r))?;
    let reply = s
        .store
        .add_reply(topic.id, &member.author, &body, member.staff(), wall_ms())
        .await
        .map_err(store_error)?;
    debug!(course.id = %course, board.topic = topic.id, board.reply = reply.id, "reply added");
    let view = reply_view(&reply);
    s.board.publish(
        &course,
        &BoardNotice::ReplyCreated {
            topic_id: topic.id,
            reply: view.clone(),
        },
        Audience::of(&topic),
    );
    Ok((StatusCode::CREATED, Json(view)))
}

/// The reply and its topic, if the member may read them; else 404.
async fn readable_reply(
    s: &AppState,
    member: &Member,
    id: &str,
) -> Result<(lectern_store::Reply, Topic), ApiError> {
    let id = post_id(id, "reply")?;
    let reply = s
        .store
        .reply(id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| ApiError::not_found("no such reply"))?;
    let topic = readable_topic(s, member, reply.topic_id)
        .await
        .map_err(|_| ApiError::not_found("no such reply"))?;
    Ok((reply, topic))
}

/// Edit your own reply.
#[utoipa::path(patch, path = "/courses/{course}/board/replies/{reply}", tag = "board",
    request_body = ReplyInput,
    params(("course" = String, Path, description = "Course id"),
           ("reply" = i64, Path, description = "Reply id")),
    responses((status = 200, body = ReplyView), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn edit_reply(
    State(s): State<AppState>,
    Path((course, reply)): Path<(String, String)>,
    headers: HeaderMap,
    Json(input): Json<ReplyInput>,
) -> ApiResult<Json<ReplyView>> {
    let member = member(&s, &headers, &course).await?;
    let (reply, topic) = readable_reply(&s, &member, &reply).await?;
    if !member.is_author(&reply.author.member_id) {
        return Err(forbidden("only its author may edit a reply"));
    }
    let body = check_body(&input.body).map_err(|r| invalid("body", r))?;
    let edited = s
        .store
        .edit_reply(reply.id, &body, wall_ms())
        .await
        .map_err(store_error)?;
    let view = reply_view(&edited);
    s.board.publish(
        &course,
        &BoardNotice::ReplyUpdated {
            topic_id: topic.id,
            reply: view.clone(),
        },
        Audience::of(&topic),
    );
    Ok(Json(view))
}

/// Delete a reply (its author, or staff): its text is erased, its place in the thread stays.
#[utoipa::path(delete, path = "/courses/{course}/board/replies/{reply}", tag = "board",
    params(("course" = String, Path, description = "Course id"),
           ("reply" = i64, Path, description = "Reply id")),
    responses((status = 204, description = "Deleted"), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_reply(
    State(s): State<AppState>,
    Path((course, reply)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let member = member(&s, &headers, &course).await?;
    let (reply, topic) = readable_reply(&s, &member, &reply).await?;
    if !member.staff() && !member.is_author(&reply.author.member_id) {
        return Err(forbidden("only its author or staff may delete a reply"));
    }
    if reply.deleted_at.is_some() {
        return Ok(StatusCode::NO_CONTENT);
    }
    let deleted = s
        .store
        .delete_reply(reply.id, &member.reader.member_id, wall_ms())
        .await
        .map_err(store_error)?;
    info!(course.id = %course, board.topic = topic.id, board.reply = reply.id, "reply deleted");
    s.board.publish(
        &course,
        &BoardNotice::ReplyDeleted {
            topic_id: topic.id,
            reply: reply_view(&deleted),
        },
        Audience::of(&topic),
    );
    Ok(StatusCode::NO_CONTENT)
}

// ---- search ----

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct SearchQuery {
    /// The words to find (all of them, each also as a prefix), 1 to 200 characters.
    q: String,
    /// Hits, 1 to 100 (default 20).
    limit: Option<u32>,
}

/// One search hit.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
struct SearchHitView {
    topic_id: i64,
    /// Null when the topic itself matched.
    reply_id: Option<i64>,
    /// The topic's title.
    title: String,
    /// Plain text around the match (no markup).
    excerpt: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
struct SearchAnswer {
    /// Best match first.
    hits: Vec<SearchHitView>,
}

/// Full-text search of the topics and replies this member may read.
#[utoipa::path(get, path = "/courses/{course}/board/search", tag = "board",
    params(("course" = String, Path, description = "Course id"), SearchQuery),
    responses((status = 200, body = SearchAnswer), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
async fn search(
    State(s): State<AppState>,
    Path(course): Path<String>,
    Query(query): Query<SearchQuery>,
    headers: HeaderMap,
) -> ApiResult<Json<SearchAnswer>> {
    let member = member(&s, &headers, &course).await?;
    let limit = query.limit.unwrap_or(20);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(invalid("limit", format!("from 1 to {MAX_PAGE}")));
    }
    if query.q.chars().count() > MAX_QUERY_CHARS {
        return Err(invalid(
            "q",
            format!("at most {MAX_QUERY_CHARS} characters"),
        ));
    }
    if lectern_store::search_query(&query.q).is_none() {
        return Err(invalid("q", "must contain a word".to_owned()));
    }
    let hits = s
        .store
        .search_board(&course, &member.reader, &query.q, limit)
        .await
        .map_err(store_error)?;
    Ok(Json(SearchAnswer {
        hits: hits
            .into_iter()
            .map(|h| SearchHitView {
                topic_id: h.topic_id,
                reply_id: h.reply_id,
                title: h.title,
                excerpt: h.excerpt,
            })
            .collect(),
    }))
}

// ---- live updates ----

/// The grant scope of an events ticket.
fn ticket_scope(course: &str, payload: &str) -> String {
    format!("board-events {course} {payload}")
}

/// `events_url` for this member: the ticket carries who they are (`<staff 0|1>:<member>`,
/// base64url) and a grant over it.
fn events_url(s: &AppState, member: &Member) -> String {
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
struct EventsQuery {
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
async fn events(
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
struct FromChatInput {
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
async fn topic_from_chat(
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
    let title = input
        .title
        .as_deref()
        .map(check_title)
        .transpose()
        .map_err(|r| invalid("title", r))?;
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The member document lists exactly the member API's routes.
    #[test]
    fn member_openapi_lists_every_route() {
        let doc = openapi();
        let listed: BTreeSet<String> = doc
            .paths
            .paths
            .iter()
            .flat_map(|(path, item)| {
                [
                    ("GET", item.get.is_some()),
                    ("POST", item.post.is_some()),
                    ("PATCH", item.patch.is_some()),
                    ("DELETE", item.delete.is_some()),
                    ("PUT", item.put.is_some()),
                ]
                .into_iter()
                .filter(|(_, present)| *present)
                .map(move |(method, _)| format!("{method} {path}"))
            })
            .collect();
        let expected: BTreeSet<String> = [
            "GET /openapi.json",
            "GET /courses/{course}/board/topics",
            "POST /courses/{course}/board/topics",
            "GET /courses/{course}/board/topics/{topic}",
            "PATCH /courses/{course}/board/topics/{topic}",
            "DELETE /courses/{course}/board/topics/{topic}",
            "POST /courses/{course}/board/topics/{topic}/replies",
            "PATCH /courses/{course}/board/replies/{reply}",
            "DELETE /courses/{course}/board/replies/{reply}",
            "GET /courses/{course}/board/search",
            "GET /courses/{course}/board/events",
            "POST /courses/{course}/board/from-chat",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect();
        assert_eq!(listed, expected);
        let json = serde_json::to_value(doc).unwrap();
        assert!(json["components"]["schemas"]["TopicView"].is_object());
        assert!(json["components"]["schemas"]["BoardNotice"].is_object());
        assert!(json["components"]["securitySchemes"]["join_token"].is_object());
        assert_eq!(json["servers"][0]["url"], "/course/v1");
    }
}
