//! Calendar feeds: the course's (behind the API key) and each member's own (its token is the
//! credential), with the join redirect their events link to.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lectern_schedule::jiff::Timestamp;
use tracing::info;

use super::{AdminKey, ApiError, ApiResult, AppState, ErrorBody, public_url};
use crate::clock::wall_ms;
use crate::courses::{self, FeedView, ServiceError};

/// The course's iCalendar feed: every session of every schedule.
#[utoipa::path(get, path = "/courses/{id}/calendar.ics", tag = "schedules",
    params(("id" = String, Path, description = "Course id")),
    responses((status = 200, description = "RFC 5545 calendar", content_type = "text/calendar",
               body = String),
              (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn calendar(
    _key: AdminKey,
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let base = public_url(&s, &headers);
    let ics = courses::calendar(&s.store, &id, &uid_domain(&base), Timestamp::now()).await?;
    Ok(ics_response(ics))
}

/// The host of a base URL, for event UIDs.
pub(super) fn uid_domain(base: &str) -> String {
    base.split_once("://")
        .map_or(base, |(_, rest)| rest)
        .split([':', '/'])
        .next()
        .filter(|d| !d.is_empty())
        .unwrap_or("lectern.local")
        .to_owned()
}

pub(super) fn ics_response(ics: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/calendar; charset=utf-8"),
            (header::CACHE_CONTROL, "private, max-age=300"),
        ],
        ics,
    )
        .into_response()
}

/// A feed token that is unknown or revoked: one answer for both, naming no token.
pub(super) fn feed_error(err: ServiceError) -> ApiError {
    match err {
        ServiceError::NotFound {
            what: "calendar feed",
            ..
        } => ApiError::not_found("no such calendar feed (it may have been revoked)"),
        other => other.into(),
    }
}

/// Create a member's personal calendar feed, replacing (revoking) any earlier one. The answer
/// holds the feed's URLs, shown once: the token in them is the secret a calendar app presents.
#[utoipa::path(post, path = "/courses/{id}/members/{member}/calendar", tag = "schedules",
    params(("id" = String, Path, description = "Course id"),
           ("member" = String, Path, description = "Member id")),
    responses((status = 201, body = FeedView), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub(super) async fn create_member_feed(
    key: AdminKey,
    State(s): State<AppState>,
    Path((id, member)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<(StatusCode, Json<FeedView>)> {
    let base = public_url(&s, &headers);
    let feed = courses::create_member_feed(&s.store, &base, &id, &member, wall_ms()).await?;
    info!(api.key = %key.id, course.id = %id, "member calendar feed created");
    Ok((StatusCode::CREATED, Json(feed)))
}

/// Revoke a member's calendar feed: its URLs stop working.
#[utoipa::path(delete, path = "/courses/{id}/members/{member}/calendar", tag = "schedules",
    params(("id" = String, Path, description = "Course id"),
           ("member" = String, Path, description = "Member id")),
    responses((status = 204, description = "Revoked"), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub(super) async fn revoke_member_feed(
    _key: AdminKey,
    State(s): State<AppState>,
    Path((id, member)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    courses::revoke_member_feed(&s.store, &id, &member).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A member's personal iCalendar feed, for calendar apps: no API key, the feed token in the
/// path is the credential. Every event links to the member's own join link (`…/join`) and
/// names their course home (`…/home`).
#[utoipa::path(get, path = "/feeds/{token}/calendar.ics", tag = "schedules", security(()),
    params(("token" = String, Path, description = "The member's feed token")),
    responses((status = 200, description = "RFC 5545 calendar", content_type = "text/calendar",
               body = String),
              (status = 404, body = ErrorBody)))]
pub(super) async fn member_calendar(
    State(s): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let base = public_url(&s, &headers);
    let join_url = format!("{base}/api/v1/feeds/{token}/join");
    let home_url = format!("{base}/api/v1/feeds/{token}/home");
    let links = courses::FeedLinks {
        join_url: &join_url,
        home_url: &home_url,
    };
    let ics = courses::member_calendar(
        &s.store,
        &token,
        links,
        &uid_domain(&base),
        Timestamp::now(),
    )
    .await
    .map_err(feed_error)?;
    Ok(ics_response(ics))
}

/// Opens the feed member's join link for the session open now or next: a redirect to the web
/// client with a fresh join token. No API key: the feed token is the credential.
#[utoipa::path(get, path = "/feeds/{token}/join", tag = "sessions", security(()),
    params(("token" = String, Path, description = "The member's feed token")),
    responses((status = 303, description = "To the web client with the member's join token"),
              (status = 404, body = ErrorBody)))]
pub(super) async fn feed_join(
    State(s): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let base = public_url(&s, &headers);
    let link = courses::feed_join_link(&s.store, &s.auth, &base, &token, Timestamp::now())
        .await
        .map_err(feed_error)?;
    redirect(&link.link)
}

/// Opens the feed member's course home (next class, past classes and recordings, the board): a
/// redirect to `course.html` with a fresh join token for the course. No API key: the feed
/// token is the credential.
#[utoipa::path(get, path = "/feeds/{token}/home", tag = "sessions", security(()),
    params(("token" = String, Path, description = "The member's feed token")),
    responses((status = 303, description = "To the course home with the member's join token"),
              (status = 404, body = ErrorBody)))]
pub(super) async fn feed_home(
    State(s): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let base = public_url(&s, &headers);
    let link = courses::feed_home_link(&s.store, &s.auth, &base, &token, s.clock.now())
        .await
        .map_err(feed_error)?;
    redirect(&link)
}

/// A `303 See Other` to a link carrying a token: never cached, never sent on as a referrer.
fn redirect(link: &str) -> ApiResult<Response> {
    let location = HeaderValue::from_str(link)
        .map_err(|_| ApiError::from(ServiceError::Internal("join link header".to_owned())))?;
    Ok((
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, location),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
        ],
    )
        .into_response())
}
