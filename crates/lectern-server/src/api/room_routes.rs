//! Live rooms: end the class, admit someone from the lobby, remove someone (admin API key). On
//! a cluster any node takes the call and the node hosting the room carries it out (see
//! `rooms::admin`). The room is named by its id, as in join tokens and join links: a session's
//! room is `{course}.{session_key}`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use lectern_proto::{ParticipantId, RoomId};
use lectern_room::{AdminAction, RoomError};
use serde::{Deserialize, Serialize};
use tracing::info;
use utoipa::ToSchema;

use super::{AdminKey, ApiError, ApiResult, AppState, ErrorBody};
use crate::rooms::ActError;

/// Who an action is for.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ParticipantBody {
    /// The participant's id (the `sub` of their join token; a course member's id).
    #[schema(min_length = 1, max_length = 128)]
    participant: String,
}

/// What was done.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(super) struct RoomActionDone {
    /// The room.
    room: String,
    /// `end_class`, `admit` or `remove`.
    action: String,
    /// The participant, for `admit` and `remove`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    participant: Option<String>,
}

/// End the class in a running room, as the instructor's "end class" does: students and
/// observers are sent away (`closing` with `class_ended`), staff stay. A class that is not live
/// is left as it is (and the call succeeds), so the call is safe to repeat.
#[utoipa::path(post, path = "/rooms/{room}/end", tag = "rooms",
    params(("room" = String, Path, description = "Room id, e.g. `algebra.2026-09-01T10:00`")),
    responses((status = 200, body = RoomActionDone), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody),
              (status = 404, description = "The room is not running on any node", body = ErrorBody),
              (status = 503, description = "The node hosting the room is gone or did not answer", body = ErrorBody)))]
pub(super) async fn room_end(
    key: AdminKey,
    State(s): State<AppState>,
    Path(room): Path<String>,
) -> ApiResult<Json<RoomActionDone>> {
    act(&s, &key, room, AdminAction::EndClass, None).await
}

/// Let a participant in from the lobby, as staff's "admit" does. Someone already in the class
/// is left as they are (and the call succeeds).
#[utoipa::path(post, path = "/rooms/{room}/admit", tag = "rooms", request_body = ParticipantBody,
    params(("room" = String, Path, description = "Room id, e.g. `algebra.2026-09-01T10:00`")),
    responses((status = 200, body = RoomActionDone), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody),
              (status = 404, description = "The room is not running on any node, or the participant is not in it", body = ErrorBody),
              (status = 503, description = "The node hosting the room is gone or did not answer", body = ErrorBody)))]
pub(super) async fn room_admit(
    key: AdminKey,
    State(s): State<AppState>,
    Path(room): Path<String>,
    Json(body): Json<ParticipantBody>,
) -> ApiResult<Json<RoomActionDone>> {
    let id = participant(&body)?;
    let action = AdminAction::Admit {
        participant_id: id.clone(),
    };
    act(&s, &key, room, action, Some(id)).await
}

/// Remove a participant for the rest of the class, as staff's "remove" does: they are sent
/// away (`closing` with `removed`) and refused until the class ends. Someone already removed
/// is left as they are (and the call succeeds); an instructor cannot be removed (409).
#[utoipa::path(post, path = "/rooms/{room}/remove", tag = "rooms", request_body = ParticipantBody,
    params(("room" = String, Path, description = "Room id, e.g. `algebra.2026-09-01T10:00`")),
    responses((status = 200, body = RoomActionDone), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody),
              (status = 404, description = "The room is not running on any node, or the participant is not in it", body = ErrorBody),
              (status = 409, description = "The participant is an instructor", body = ErrorBody),
              (status = 503, description = "The node hosting the room is gone or did not answer", body = ErrorBody)))]
pub(super) async fn room_remove(
    key: AdminKey,
    State(s): State<AppState>,
    Path(room): Path<String>,
    Json(body): Json<ParticipantBody>,
) -> ApiResult<Json<RoomActionDone>> {
    let id = participant(&body)?;
    let action = AdminAction::Remove {
        participant_id: id.clone(),
    };
    act(&s, &key, room, action, Some(id)).await
}

/// An id as join tokens allow them: 1 to 128 characters, not blank, no control characters.
fn valid_id(id: &str) -> bool {
    !id.trim().is_empty() && id.chars().count() <= 128 && !id.chars().any(char::is_control)
}

fn participant(body: &ParticipantBody) -> ApiResult<ParticipantId> {
    if !valid_id(&body.participant) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "participant must be 1 to 128 characters, without control characters",
        ));
    }
    Ok(ParticipantId::new(body.participant.clone()))
}

async fn act(
    s: &AppState,
    key: &AdminKey,
    room: String,
    action: AdminAction,
    participant: Option<ParticipantId>,
) -> ApiResult<Json<RoomActionDone>> {
    if !valid_id(&room) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "the room id must be 1 to 128 characters, without control characters",
        ));
    }
    let room_id = RoomId::new(room.clone());
    let name = action.name();
    s.registry
        .act(&room_id, action)
        .await
        .map_err(|e| act_error(e, participant.as_ref()))?;
    info!(api.key = %key.id, room.id = %room_id, action = name, "room action done");
    Ok(Json(RoomActionDone {
        room,
        action: name.to_owned(),
        participant: participant.map(|p| p.as_str().to_owned()),
    }))
}

fn act_error(e: ActError, participant: Option<&ParticipantId>) -> ApiError {
    let unavailable = |e: &ActError| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            e.to_string(),
        )
    };
    match &e {
        ActError::NotRunning { .. } => ApiError::not_found(&e.to_string()),
        ActError::Refused(RoomError::NotFound) => ApiError::not_found(&format!(
            "participant {} is not in the room",
            participant.map_or("", |p| p.as_str())
        )),
        ActError::Refused(_) => ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            "an instructor cannot be removed from the room",
        ),
        ActError::HostGone { .. } | ActError::Timeout { .. } | ActError::Unavailable(_) => {
            unavailable(&e)
        }
    }
}
