//! The admin REST API under `/api/v1`: courses, rosters, schedules, sessions, join links and
//! calendar feeds. Handlers are thin: they check the API key, call the course service
//! (`courses/`, shared with the CLI) and map its errors to JSON.
//!
//! The OpenAPI document (`/api/v1/openapi.json`) is generated from the handlers' `#[utoipa::path]`
//! annotations by `utoipa-axum`: a route can only be added through [`OpenApiRouter::routes`],
//! which records it in the document, so the two cannot drift apart.
//!
//! Every error is JSON, `{"error": {"code", "message", "details"?}}`, with a stable code;
//! rejections from axum's extractors (bad JSON, bad path, body too large) are rewritten into
//! that shape by [`json_errors`].

use std::sync::{Arc, OnceLock};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lectern_schedule::jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tracing::{error, info};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::clock::wall_ms;
use crate::courses::{
    self, AttendanceReport, CourseView, ErrorDetail, FeedView, ImportReport, LinkRequest, LinkView,
    MemberView, NewCourse, RoleChange, ScheduleSpec, ScheduleView, ServiceError, SessionView,
    TranscriptEntry,
};
use crate::shared::Shared;

/// The largest request body the API reads (a roster CSV of a few thousand rows fits).
pub const MAX_BODY_BYTES: usize = 1 << 20;

type AppState = Arc<Shared>;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Lectern admin API",
        description = "Courses, rosters, schedules, sessions, join links, attendance and \
                       chat transcripts. \
                       Authenticate with `Authorization: Bearer <api key>` \
                       (create keys with `lectern apikey create`)."
    ),
    servers((url = "/api/v1")),
    modifiers(&BearerAuth),
    security(("api_key" = [])),
    components(schemas(ErrorBody, ErrorInfo, ErrorDetail))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Every route of the API, each recorded in the OpenAPI document.
fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(openapi_json))
        .routes(routes!(list_courses, create_course))
        .routes(routes!(get_course))
        .routes(routes!(list_members, add_member))
        .routes(routes!(remove_member, change_role))
        .routes(routes!(import_members))
        .routes(routes!(list_schedules, add_schedule))
        .routes(routes!(list_sessions))
        .routes(routes!(mint_link))
        .routes(routes!(calendar))
        .routes(routes!(create_member_feed, revoke_member_feed))
        .routes(routes!(member_calendar))
        .routes(routes!(feed_join))
        .routes(routes!(session_attendance))
        .routes(routes!(session_transcript))
}

/// The API router, to nest under `/api/v1`.
pub fn router() -> axum::Router<AppState> {
    let (router, _) = api_routes().split_for_parts();
    router
        .fallback(|| async { ApiError::not_found("no such API endpoint") })
        .layer(axum::middleware::map_response(json_errors))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

/// The OpenAPI document of [`router`].
pub fn openapi() -> &'static utoipa::openapi::OpenApi {
    static DOC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOC.get_or_init(|| api_routes().split_for_parts().1)
}

/// The error body.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorInfo,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorInfo {
    /// Stable: `unauthorized`, `not_found`, `invalid_input`, `conflict`, `payload_too_large`,
    /// `method_not_allowed`, `unsupported_media_type`, `internal`.
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<ErrorDetail>,
}

/// An API failure, rendered as [`ErrorBody`].
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Vec<ErrorDetail>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            details: Vec::new(),
        }
    }

    fn unauthorized(message: &str) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    fn not_found(message: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }
}

impl From<ServiceError> for ApiError {
    fn from(err: ServiceError) -> ApiError {
        let status = match &err {
            ServiceError::NotFound { .. } => StatusCode::NOT_FOUND,
            ServiceError::InvalidInput { .. } => StatusCode::BAD_REQUEST,
            ServiceError::Conflict(_) | ServiceError::SessionNotOpen(_) => StatusCode::CONFLICT,
            ServiceError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let code = err.code();
        match err {
            ServiceError::Internal(detail) => {
                // Logged once here; the client gets no internals.
                error!(error = %detail, "API request failed");
                ApiError::new(status, code, "internal error")
            }
            ServiceError::InvalidInput { message, details } => ApiError {
                status,
                code,
                message,
                details,
            },
            other => ApiError::new(status, code, other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorInfo {
                code: self.code.to_owned(),
                message: self.message,
                details: self.details,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// Rewrites the plain-text rejections of axum's extractors (and any other non-JSON error) into
/// the API's JSON error shape, keeping their message.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (status, code) = match status {
        StatusCode::NOT_FOUND => (status, "not_found"),
        StatusCode::METHOD_NOT_ALLOWED => (status, "method_not_allowed"),
        StatusCode::PAYLOAD_TOO_LARGE => (status, "payload_too_large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (status, "unsupported_media_type"),
        StatusCode::UNAUTHORIZED => (status, "unauthorized"),
        s if s.is_client_error() => (StatusCode::BAD_REQUEST, "invalid_input"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    };
    let body = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .unwrap_or_default();
    let mut message = String::from_utf8_lossy(&body).trim().to_owned();
    if message.is_empty() {
        message = status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_owned();
    }
    ApiError::new(status, code, message).into_response()
}

/// A caller holding a valid admin API key (`Authorization: Bearer <key>`).
#[derive(Debug)]
pub struct AdminKey {
    pub id: String,
}

impl FromRequestParts<AppState> for AdminKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, shared: &AppState) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(ApiError::unauthorized(
                "an API key is required: Authorization: Bearer <key>",
            ));
        };
        let key = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|k| !k.is_empty());
        let Some(key) = key else {
            return Err(ApiError::unauthorized(
                "the Authorization header must be: Bearer <key>",
            ));
        };
        match shared.store.verify_api_key(key).await {
            Ok(Some(record)) => Ok(AdminKey { id: record.id }),
            Ok(None) => Err(ApiError::unauthorized("invalid API key")),
            Err(err) => Err(ServiceError::from(err).into()),
        }
    }
}

/// The base URL for join links: the configured public URL, else the request's host.
fn public_url(shared: &Shared, headers: &HeaderMap) -> String {
    let configured = shared.config.server.public_url.trim_end_matches('/');
    if !configured.is_empty() {
        return configured.to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| shared.config.server.listen.to_string());
    format!("http://{host}")
}

type ApiResult<T> = Result<T, ApiError>;

/// The OpenAPI document of this API (no key needed).
#[utoipa::path(get, path = "/openapi.json", tag = "meta", security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")))]
async fn openapi_json() -> Json<&'static utoipa::openapi::OpenApi> {
    Json(openapi())
}

/// List every course.
#[utoipa::path(get, path = "/courses", tag = "courses",
    responses((status = 200, body = Vec<CourseView>), (status = 401, body = ErrorBody)))]
async fn list_courses(
    _key: AdminKey,
    State(s): State<AppState>,
) -> ApiResult<Json<Vec<CourseView>>> {
    Ok(Json(courses::list_courses(&s.store).await?))
}

/// Create a course.
#[utoipa::path(post, path = "/courses", tag = "courses", request_body = NewCourse,
    responses((status = 201, body = CourseView), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_course(
    key: AdminKey,
    State(s): State<AppState>,
    Json(input): Json<NewCourse>,
) -> ApiResult<(StatusCode, Json<CourseView>)> {
    let course = courses::create_course(&s.store, input, wall_ms()).await?;
    info!(api.key = %key.id, course.id = %course.id, "course created");
    Ok((StatusCode::CREATED, Json(course)))
}

/// One course.
#[utoipa::path(get, path = "/courses/{id}", tag = "courses",
    params(("id" = String, Path, description = "Course id")),
    responses((status = 200, body = CourseView), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
async fn get_course(
    _key: AdminKey,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<CourseView>> {
    Ok(Json(courses::get_course(&s.store, &id).await?))
}

/// The course's roster.
#[utoipa::path(get, path = "/courses/{id}/members", tag = "roster",
    params(("id" = String, Path, description = "Course id")),
    responses((status = 200, body = Vec<MemberView>), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
async fn list_members(
    _key: AdminKey,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<MemberView>>> {
    Ok(Json(courses::list_members(&s.store, &id).await?))
}

/// Add one member to the roster.
#[utoipa::path(post, path = "/courses/{id}/members", tag = "roster", request_body = MemberView,
    params(("id" = String, Path, description = "Course id")),
    responses((status = 201, body = MemberView), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
async fn add_member(
    _key: AdminKey,
    State(s): State<AppState>,
    Path(id): Path<String>,
    Json(input): Json<MemberView>,
) -> ApiResult<(StatusCode, Json<MemberView>)> {
    let member = courses::add_member(&s.store, &id, input).await?;
    Ok((StatusCode::CREATED, Json(member)))
}

/// Remove a member from the roster.
#[utoipa::path(delete, path = "/courses/{id}/members/{member}", tag = "roster",
    params(("id" = String, Path, description = "Course id"),
           ("member" = String, Path, description = "Member id")),
    responses((status = 204, description = "Removed"), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
async fn remove_member(
    _key: AdminKey,
    State(s): State<AppState>,
    Path((id, member)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    courses::remove_member(&s.store, &id, &member).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Change a member's role.
#[utoipa::path(patch, path = "/courses/{id}/members/{member}", tag = "roster",
    request_body = RoleChange,
    params(("id" = String, Path, description = "Course id"),
           ("member" = String, Path, description = "Member id")),
    responses((status = 200, body = MemberView), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn change_role(
    _key: AdminKey,
    State(s): State<AppState>,
    Path((id, member)): Path<(String, String)>,
    Json(change): Json<RoleChange>,
) -> ApiResult<Json<MemberView>> {
    Ok(Json(
        courses::change_role(&s.store, &id, &member, change).await?,
    ))
}

/// Import a roster from CSV: a header naming `member_id`, `name`, `role` and optionally
/// `email`, then one member per line. Existing members are updated. If any row is bad, the
/// answer lists every bad line and nothing is imported.
#[utoipa::path(post, path = "/courses/{id}/members/import", tag = "roster",
    request_body(content = String, content_type = "text/csv",
                 example = "member_id,name,role,email\nada,Ada Lovelace,student,ada@example.org\n"),
    params(("id" = String, Path, description = "Course id")),
    responses((status = 200, body = ImportReport),
              (status = 400, body = ErrorBody, description = "Bad rows, each with its line"),
              (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 413, body = ErrorBody)))]
async fn import_members(
    _key: AdminKey,
    State(s): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<ImportReport>> {
    let Ok(text) = std::str::from_utf8(&body) else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "the CSV must be UTF-8",
        ));
    };
    let report = courses::import_roster(&s.store, &id, text).await?;
    info!(course.id = %id, import.rows = report.imported, "roster imported");
    Ok(Json(report))
}

/// The course's schedules.
#[utoipa::path(get, path = "/courses/{id}/schedules", tag = "schedules",
    params(("id" = String, Path, description = "Course id")),
    responses((status = 200, body = Vec<ScheduleView>), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
async fn list_schedules(
    _key: AdminKey,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<ScheduleView>>> {
    Ok(Json(courses::list_schedules(&s.store, &id).await?))
}

/// Add a weekly schedule (in the course's timezone), with exceptions and one-off sessions.
#[utoipa::path(post, path = "/courses/{id}/schedules", tag = "schedules",
    request_body = ScheduleSpec,
    params(("id" = String, Path, description = "Course id")),
    responses((status = 201, body = ScheduleView), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn add_schedule(
    _key: AdminKey,
    State(s): State<AppState>,
    Path(id): Path<String>,
    Json(spec): Json<ScheduleSpec>,
) -> ApiResult<(StatusCode, Json<ScheduleView>)> {
    let schedule = courses::add_schedule(&s.store, &id, spec, wall_ms()).await?;
    Ok((StatusCode::CREATED, Json(schedule)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct SessionsQuery {
    /// RFC 3339 time or a date (midnight in the course's timezone); default now.
    from: Option<String>,
    /// RFC 3339 time or a date; default 120 days after `from`.
    to: Option<String>,
}

/// Sessions starting in `[from, to)`.
#[utoipa::path(get, path = "/courses/{id}/sessions", tag = "sessions",
    params(("id" = String, Path, description = "Course id"), SessionsQuery),
    responses((status = 200, body = Vec<SessionView>), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_sessions(
    _key: AdminKey,
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<SessionsQuery>,
) -> ApiResult<Json<Vec<SessionView>>> {
    Ok(Json(
        courses::sessions(
            &s.store,
            &id,
            query.from.as_deref(),
            query.to.as_deref(),
            Timestamp::now(),
        )
        .await?,
    ))
}

/// Mint a join token and link for a member, for one session (default: the next one).
#[utoipa::path(post, path = "/courses/{id}/members/{member}/link", tag = "sessions",
    request_body(content = LinkRequest, description = "Optional; `{}` for the next session"),
    params(("id" = String, Path, description = "Course id"),
           ("member" = String, Path, description = "Member id")),
    responses((status = 200, body = LinkView), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn mint_link(
    _key: AdminKey,
    State(s): State<AppState>,
    Path((id, member)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<LinkView>> {
    // The body is optional: an empty one asks for the next session.
    let request: LinkRequest = if body.iter().all(u8::is_ascii_whitespace) {
        LinkRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_input", e.to_string()))?
    };
    let base = public_url(&s, &headers);
    let link = courses::mint_link(
        &s.store,
        &s.auth,
        &base,
        &id,
        &member,
        request,
        Timestamp::now(),
    )
    .await?;
    Ok(Json(link))
}

/// The course's iCalendar feed: every session of every schedule.
#[utoipa::path(get, path = "/courses/{id}/calendar.ics", tag = "schedules",
    params(("id" = String, Path, description = "Course id")),
    responses((status = 200, description = "RFC 5545 calendar", content_type = "text/calendar",
               body = String),
              (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn calendar(
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
fn uid_domain(base: &str) -> String {
    base.split_once("://")
        .map_or(base, |(_, rest)| rest)
        .split([':', '/'])
        .next()
        .filter(|d| !d.is_empty())
        .unwrap_or("lectern.local")
        .to_owned()
}

fn ics_response(ics: String) -> Response {
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
fn feed_error(err: ServiceError) -> ApiError {
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
async fn create_member_feed(
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
async fn revoke_member_feed(
    _key: AdminKey,
    State(s): State<AppState>,
    Path((id, member)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    courses::revoke_member_feed(&s.store, &id, &member).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A member's personal iCalendar feed, for calendar apps: no API key, the feed token in the
/// path is the credential. Every event links to the member's own join link (`…/join`).
#[utoipa::path(get, path = "/feeds/{token}/calendar.ics", tag = "schedules", security(()),
    params(("token" = String, Path, description = "The member's feed token")),
    responses((status = 200, description = "RFC 5545 calendar", content_type = "text/calendar",
               body = String),
              (status = 404, body = ErrorBody)))]
async fn member_calendar(
    State(s): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let base = public_url(&s, &headers);
    let join_url = format!("{base}/api/v1/feeds/{token}/join");
    let ics = courses::member_calendar(
        &s.store,
        &token,
        &join_url,
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
async fn feed_join(
    State(s): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let base = public_url(&s, &headers);
    let link = courses::feed_join_link(&s.store, &s.auth, &base, &token, Timestamp::now())
        .await
        .map_err(feed_error)?;
    let location = HeaderValue::from_str(&link.link)
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

/// Whether the alternative to JSON is wanted: `?format=` if given, else the `Accept` header
/// naming `mime`.
fn wants(alternative: Option<bool>, headers: &HeaderMap, mime: &str) -> bool {
    alternative.unwrap_or_else(|| {
        headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .eq_ignore_ascii_case(mime)
            })
    })
}

/// The representations of an attendance report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum AttendanceFormat {
    Json,
    Csv,
}

/// The representations of a transcript.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum TranscriptFormat {
    Json,
    Txt,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct AttendanceQuery {
    /// `json` (the default) or `csv`; `Accept: text/csv` also asks for CSV.
    #[param(inline)]
    format: Option<AttendanceFormat>,
    /// A first join later than the start plus this many minutes is `late` (default 10, at
    /// most 1440).
    #[param(maximum = 1440)]
    late_after_minutes: Option<u32>,
}

/// Attendance of one session: every student on the roster (and anyone not on the roster who
/// attended, with `on_roster: false`) with first join, last leave, minutes present (stays
/// merged across reconnects, clipped to the room's open window) and `present`, `late` or
/// `absent`.
#[utoipa::path(get, path = "/courses/{id}/sessions/{session_key}/attendance", tag = "sessions",
    params(("id" = String, Path, description = "Course id"),
           ("session_key" = String, Path, description = "Session key, e.g. `2026-09-01T10:00`"),
           AttendanceQuery),
    responses((status = 200, description = "The attendance, as JSON or CSV (with a header row)",
               content((AttendanceReport = "application/json"), (String = "text/csv"))),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
async fn session_attendance(
    _key: AdminKey,
    State(s): State<AppState>,
    Path((id, session_key)): Path<(String, String)>,
    Query(query): Query<AttendanceQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let csv = wants(
        query.format.map(|f| f == AttendanceFormat::Csv),
        &headers,
        "text/csv",
    );
    let report = courses::attendance(
        &s.store,
        &id,
        &session_key,
        query.late_after_minutes,
        Timestamp::now(),
    )
    .await?;
    if csv {
        let text = courses::attendance_csv(&report)?;
        Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], text).into_response())
    } else {
        Ok(Json(report).into_response())
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct TranscriptQuery {
    /// `json` (the default) or `txt`; `Accept: text/plain` also asks for text.
    #[param(inline)]
    format: Option<TranscriptFormat>,
}

/// The chat transcript of one session's room, oldest first. Private messages are included
/// with their audience (`to`); messages deleted by staff are marked `deleted`, without text.
#[utoipa::path(get, path = "/courses/{id}/sessions/{session_key}/transcript", tag = "sessions",
    params(("id" = String, Path, description = "Course id"),
           ("session_key" = String, Path, description = "Session key, e.g. `2026-09-01T10:00`"),
           TranscriptQuery),
    responses((status = 200, description = "The transcript, as JSON or plain text",
               content((Vec<TranscriptEntry> = "application/json"), (String = "text/plain"))),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
async fn session_transcript(
    _key: AdminKey,
    State(s): State<AppState>,
    Path((id, session_key)): Path<(String, String)>,
    Query(query): Query<TranscriptQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let text = wants(
        query.format.map(|f| f == TranscriptFormat::Txt),
        &headers,
        "text/plain",
    );
    let entries = courses::transcript(&s.store, &id, &session_key).await?;
    if text {
        Ok((
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            courses::transcript_text(&entries),
        )
            .into_response())
    } else {
        Ok(Json(entries).into_response())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The document lists exactly the API's routes: if a route is added without `routes!`
    /// (so without its `#[utoipa::path]`), this list and the integration probe disagree.
    #[test]
    fn openapi_lists_every_route() {
        let doc = openapi();
        let listed: BTreeSet<String> = doc
            .paths
            .paths
            .iter()
            .flat_map(|(path, item)| {
                let methods = [
                    ("GET", item.get.is_some()),
                    ("POST", item.post.is_some()),
                    ("PATCH", item.patch.is_some()),
                    ("DELETE", item.delete.is_some()),
                    ("PUT", item.put.is_some()),
                ];
                methods
                    .into_iter()
                    .filter(|(_, present)| *present)
                    .map(move |(method, _)| format!("{method} {path}"))
            })
            .collect();
        let expected: BTreeSet<String> = [
            "GET /openapi.json",
            "GET /courses",
            "POST /courses",
            "GET /courses/{id}",
            "GET /courses/{id}/members",
            "POST /courses/{id}/members",
            "DELETE /courses/{id}/members/{member}",
            "PATCH /courses/{id}/members/{member}",
            "POST /courses/{id}/members/import",
            "GET /courses/{id}/schedules",
            "POST /courses/{id}/schedules",
            "GET /courses/{id}/sessions",
            "POST /courses/{id}/members/{member}/link",
            "GET /courses/{id}/calendar.ics",
            "POST /courses/{id}/members/{member}/calendar",
            "DELETE /courses/{id}/members/{member}/calendar",
            "GET /feeds/{token}/calendar.ics",
            "GET /feeds/{token}/join",
            "GET /courses/{id}/sessions/{session_key}/attendance",
            "GET /courses/{id}/sessions/{session_key}/transcript",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect();
        assert_eq!(listed, expected);
        let json = serde_json::to_value(doc).unwrap();
        assert!(json["components"]["schemas"]["CourseView"].is_object());
        assert!(json["components"]["securitySchemes"]["api_key"].is_object());
    }
}
