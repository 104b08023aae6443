//! What every part of the course service shares: its error type, a check of free text, small
//! helpers, and admin API keys.

use lectern_proto::UnixMillis;
use lectern_schedule::{Lifecycle, jiff::Timestamp};
use lectern_store::{ApiKey, Course, Store, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Why a request was refused. Every variant but `Internal` is the caller's doing.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{what} {id:?} not found")]
    NotFound { what: &'static str, id: String },
    /// A scheduled session's room is not open now (the message names the next session).
    #[error("{0}")]
    SessionNotOpen(String),
    #[error("{message}")]
    InvalidInput {
        message: String,
        details: Vec<ErrorDetail>,
    },
    #[error("{0}")]
    Conflict(String),
    /// A rule refuses the request now (a quiz attempt: no attempts left, past due, time up,
    /// already submitted); `code` is its stable name.
    #[error("{message}")]
    Refused { code: &'static str, message: String },
    #[error("internal error")]
    Internal(String),
}

/// One precise reason within an `invalid_input` error: a field, or a line of a CSV file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// The field at fault, e.g. `timezone` or `role`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The 1-based line of the CSV file at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    pub reason: String,
}

impl ServiceError {
    /// The stable machine-readable code for API responses.
    pub fn code(&self) -> &'static str {
        match self {
            ServiceError::NotFound { .. } => "not_found",
            ServiceError::InvalidInput { .. } => "invalid_input",
            ServiceError::Conflict(_) => "conflict",
            ServiceError::SessionNotOpen(_) => "session_not_open",
            ServiceError::Refused { code, .. } => code,
            ServiceError::Internal(_) => "internal",
        }
    }

    pub(super) fn field(field: &str, reason: impl Into<String>) -> ServiceError {
        let reason = reason.into();
        ServiceError::InvalidInput {
            message: format!("{field}: {reason}"),
            details: vec![ErrorDetail {
                field: Some(field.to_owned()),
                line: None,
                reason,
            }],
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound { what, id } => ServiceError::NotFound { what, id },
            StoreError::Conflict { what, id } => {
                ServiceError::Conflict(format!("{what} {id:?} already exists"))
            }
            other => ServiceError::Internal(other.to_string()),
        }
    }
}

/// Unix milliseconds as RFC 3339 UTC (empty if out of range).
pub(crate) fn rfc3339(ms: UnixMillis) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(|ms| Timestamp::from_millisecond(ms).ok())
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// Free text (a title, a name): not blank, at most `max` characters, no control characters.
pub(super) fn check_text(value: &str, max: usize) -> Result<(), String> {
    if value.trim().is_empty() {
        Err("must not be empty".to_owned())
    } else if value.chars().count() > max {
        Err(format!("at most {max} characters"))
    } else if value.chars().any(char::is_control) {
        Err("must not contain control characters".to_owned())
    } else {
        Ok(())
    }
}

/// The course, or `not_found`.
pub(crate) async fn require_course(store: &Store, id: &str) -> Result<Course, ServiceError> {
    store
        .course(id)
        .await?
        .ok_or_else(|| ServiceError::NotFound {
            what: "course",
            id: id.to_owned(),
        })
}

/// The room lifecycle settings of a course.
pub(super) fn lifecycle_of(course: &Course) -> Lifecycle {
    Lifecycle {
        lobby_minutes: course.lobby_minutes,
        warning_minutes: course.warning_minutes,
        grace_minutes: course.grace_minutes,
        auto_start: course.auto_start,
    }
}

/// `bytes` random bytes as lowercase hex (ids and secrets).
pub(crate) fn random_hex(bytes: usize) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..bytes)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect()
}

/// Creates an admin API key: returns its record and the key, which is shown once and stored
/// only as a hash.
pub async fn create_api_key(
    store: &Store,
    name: &str,
    now: UnixMillis,
) -> Result<(ApiKey, String), ServiceError> {
    check_text(name, 100).map_err(|r| ServiceError::field("name", r))?;
    let id = format!("key_{}", random_hex(6));
    let key = format!("lectern_{}", random_hex(32));
    let record = store.create_api_key(&id, name.trim(), &key, now).await?;
    Ok((record, key))
}
