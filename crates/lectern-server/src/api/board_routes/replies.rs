//! The board's replies and search (see the parent module for the permissions).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use tracing::{debug, info};
use utoipa::{IntoParams, ToSchema};

use lectern_store::Topic;

use super::{MAX_PAGE, Member, forbidden, invalid, member, post_id, readable_topic, store_error};
use crate::api::{ApiError, ApiResult, AppState, ErrorBody};
use crate::board::{Audience, BoardNotice, MAX_QUERY_CHARS, ReplyView, check_body, reply_view};
use crate::clock::wall_ms;

// ---- replies ----

/// A reply's text.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ReplyInput {
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
pub(super) async fn create_reply(
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
pub(super) async fn edit_reply(
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
pub(super) async fn delete_reply(
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
pub(super) struct SearchQuery {
    /// The words to find (all of them, each also as a prefix), 1 to 200 characters.
    q: String,
    /// Hits, 1 to 100 (default 20).
    limit: Option<u32>,
}

/// One search hit.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(super) struct SearchHitView {
    topic_id: i64,
    /// Null when the topic itself matched.
    reply_id: Option<i64>,
    /// The topic's title.
    title: String,
    /// Plain text around the match (no markup).
    excerpt: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(super) struct SearchAnswer {
    /// Best match first.
    hits: Vec<SearchHitView>,
}

/// Full-text search of the topics and replies this member may read.
#[utoipa::path(get, path = "/courses/{course}/board/search", tag = "board",
    params(("course" = String, Path, description = "Course id"), SearchQuery),
    responses((status = 200, body = SearchAnswer), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub(super) async fn search(
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
