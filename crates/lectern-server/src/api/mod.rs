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
use axum::extract::{DefaultBodyLimit, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tracing::error;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::courses::{ErrorDetail, ServiceError};
use crate::shared::Shared;

pub mod board_routes;
mod course_routes;
mod feeds;
mod quiz_routes;
mod recording_routes;
pub mod replay_routes;
mod reports;
mod room_routes;

use course_routes::*;
use feeds::*;
use quiz_routes::*;
use recording_routes::*;
use reports::*;
use room_routes::*;

/// The largest request body the API reads (a roster CSV of a few thousand rows fits).
pub const MAX_BODY_BYTES: usize = 1 << 20;

type AppState = Arc<Shared>;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Lectern admin API",
        description = "Courses, rosters, schedules, sessions, join links, attendance, \
                       chat transcripts, polls and quizzes; actions on live rooms. \
                       Authenticate with `Authorization: Bearer <api key>` \
                       (create keys with `lectern apikey create`)."
    ),
    servers((url = "/api/v1")),
    modifiers(&API_KEY_AUTH),
    security(("api_key" = [])),
    components(schemas(ErrorBody, ErrorInfo, ErrorDetail))
)]
struct ApiDoc;

/// An HTTP bearer security scheme of this name in an OpenAPI document (the admin API's
/// `api_key`, the member API's `join_token`).
pub(crate) struct BearerAuth(pub &'static str);

const API_KEY_AUTH: BearerAuth = BearerAuth("api_key");

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            self.0,
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
        .routes(routes!(feed_home))
        .routes(routes!(session_attendance))
        .routes(routes!(session_transcript))
        .routes(routes!(session_polls))
        .routes(routes!(list_recordings))
        .routes(routes!(get_recording, delete_recording))
        .routes(routes!(download_recording))
        .routes(routes!(admin_list_quizzes, admin_create_quiz))
        .routes(routes!(
            admin_get_quiz,
            admin_change_quiz,
            admin_delete_quiz
        ))
        .routes(routes!(admin_quiz_results))
        .routes(routes!(admin_quiz_stats))
        .routes(routes!(room_end))
        .routes(routes!(room_admit))
        .routes(routes!(room_remove))
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
    /// Stable: `unauthorized`, `forbidden`, `not_found`, `invalid_input`, `conflict`,
    /// `payload_too_large`, `method_not_allowed`, `unsupported_media_type`, `internal`,
    /// `unavailable` (a live room's hosting node is gone or did not answer); in the
    /// member API also `locked` (a locked board topic) and `deleted` (a deleted board post);
    /// for quiz attempts (409) `no_attempts_left`, `past_due`, `time_up`, `already_submitted`.
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

    fn forbidden(message: &str) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
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
            ServiceError::Conflict(_)
            | ServiceError::SessionNotOpen(_)
            | ServiceError::Refused { .. } => StatusCode::CONFLICT,
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
pub(crate) fn public_url(shared: &Shared, headers: &HeaderMap) -> String {
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
            "GET /feeds/{token}/home",
            "GET /courses/{id}/sessions/{session_key}/attendance",
            "GET /courses/{id}/sessions/{session_key}/transcript",
            "GET /courses/{id}/sessions/{session_key}/polls",
            "GET /courses/{id}/recordings",
            "GET /recordings/{id}",
            "DELETE /recordings/{id}",
            "GET /recordings/{id}/download",
            "GET /courses/{id}/quizzes",
            "POST /courses/{id}/quizzes",
            "GET /courses/{id}/quizzes/{quiz}",
            "PATCH /courses/{id}/quizzes/{quiz}",
            "DELETE /courses/{id}/quizzes/{quiz}",
            "GET /courses/{id}/quizzes/{quiz}/results",
            "GET /courses/{id}/quizzes/{quiz}/stats",
            "POST /rooms/{room}/end",
            "POST /rooms/{room}/admit",
            "POST /rooms/{room}/remove",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect();
        assert_eq!(listed, expected);
        let json = serde_json::to_value(doc).unwrap();
        assert!(json["components"]["schemas"]["CourseView"].is_object());
        let mode = &json["components"]["schemas"]["CourseClassMode"]["enum"];
        assert_eq!(*mode, serde_json::json!(["lecture", "seminar"]), "{json}");
        let props = &json["components"]["schemas"]["NewCourse"]["properties"];
        assert!(props["class_mode"].is_object(), "{props}");
        assert!(json["components"]["securitySchemes"]["api_key"].is_object());
    }
}
