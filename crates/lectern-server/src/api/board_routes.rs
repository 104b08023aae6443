//! The member API under `/course/v1`: the course home (`home.rs`) and the course discussion
//! board. Like the replay API, a member
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

use std::sync::OnceLock;

use axum::Json;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use lectern_proto::Role;
use lectern_store::{BoardAuthor, BoardReader, NewTopic, StoreError, Topic};
use serde::{Deserialize, Serialize};
use tracing::info;
use utoipa::{IntoParams, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

mod home;
mod live;
mod quizzes;
mod replies;

use home::*;
use live::*;
use quizzes::*;
use replies::*;

use super::{ApiError, ApiResult, AppState, ErrorBody, ErrorInfo, MAX_BODY_BYTES, json_errors};
use crate::board::{
    Audience, BoardNotice, ReplyView, TopicView, check_body, check_title, reply_view, topic_view,
};
use crate::clock::wall_ms;
use crate::courses::service::require_course;
use crate::courses::{ErrorDetail, ServiceError};
use crate::room_name::RoomName;

/// The most topics or search hits one request returns.
const MAX_PAGE: u32 = 100;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Lectern member API",
        description = "The course home, the course discussion board and quizzes, for course members. Authenticate with \
                       `Authorization: Bearer <join token>`: the member's own join token for \
                       any room of the course."
    ),
    servers((url = "/course/v1")),
    modifiers(&JOIN_TOKEN_AUTH),
    security(("join_token" = [])),
    components(schemas(ErrorBody, ErrorInfo, ErrorDetail, BoardNotice))
)]
struct MemberApiDoc;

const JOIN_TOKEN_AUTH: super::BearerAuth = super::BearerAuth("join_token");

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
        .routes(routes!(course_home))
        .routes(routes!(session_attendance))
        .routes(routes!(list_quizzes, create_quiz))
        .routes(routes!(get_quiz, change_quiz, delete_quiz))
        .routes(routes!(start_attempt, list_attempts))
        .routes(routes!(get_attempt))
        .routes(routes!(submit_attempt))
        .routes(routes!(quiz_results))
        .routes(routes!(quiz_stats))
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

/// An optional text field of a body: absent stays `None`; present, it must pass `check`, else a
/// 400 that names the field.
fn optional(
    field: &str,
    value: Option<&str>,
    check: fn(&str) -> Result<String, String>,
) -> Result<Option<String>, ApiError> {
    value
        .map(check)
        .transpose()
        .map_err(|reason| invalid(field, reason))
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
    let title = optional("title", change.title.as_deref(), check_title)?;
    let body = optional("body", change.body.as_deref(), check_body)?;
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
            "GET /courses/{course}/home",
            "GET /courses/{course}/sessions/{session}/attendance",
            "GET /courses/{course}/quizzes",
            "POST /courses/{course}/quizzes",
            "GET /courses/{course}/quizzes/{quiz}",
            "PATCH /courses/{course}/quizzes/{quiz}",
            "DELETE /courses/{course}/quizzes/{quiz}",
            "POST /courses/{course}/quizzes/{quiz}/attempts",
            "GET /courses/{course}/quizzes/{quiz}/attempts",
            "GET /courses/{course}/quizzes/{quiz}/attempts/{attempt}",
            "POST /courses/{course}/quizzes/{quiz}/attempts/{attempt}/submit",
            "GET /courses/{course}/quizzes/{quiz}/results",
            "GET /courses/{course}/quizzes/{quiz}/stats",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect();
        assert_eq!(listed, expected);
        let json = serde_json::to_value(doc).unwrap();
        assert!(json["components"]["schemas"]["TopicView"].is_object());
        assert!(json["components"]["schemas"]["BoardNotice"].is_object());
        assert!(json["components"]["schemas"]["CourseHome"].is_object());
        assert!(json["components"]["schemas"]["AttemptView"].is_object());
        assert!(json["components"]["securitySchemes"]["join_token"].is_object());
        assert_eq!(json["servers"][0]["url"], "/course/v1");
    }
}
