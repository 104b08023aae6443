//! Join links: a join token for one member of a course and one of its sessions, and the web
//! client's URL that carries it.

use lectern_proto::Role;
use lectern_schedule::jiff::Timestamp;
use lectern_store::Store;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::schedules::course_schedules;
use super::service::{ServiceError, lifecycle_of};
use crate::auth::Authenticator;
use crate::room_name::RoomName;

/// A join link stays valid at least this long, even for a session about to close.
const MIN_LINK_TTL_SECS: u64 = 60;

/// Which session a join link is for.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    /// A session key; by default the next session that has not closed yet.
    pub session: Option<String>,
}

/// A join link for one member and one session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LinkView {
    pub session_key: String,
    pub room: String,
    /// The join token (JWT).
    pub token: String,
    /// The web client's URL with the token in the fragment.
    pub link: String,
    /// The course home (`course.html`) with the same token in the fragment: the next class,
    /// past classes and recordings, the board.
    pub home_link: String,
    /// When the token expires (the session's room closes), RFC 3339.
    pub expires_at: String,
}

/// Mints a join token and link for a member of the course, for one session (by key, or the next
/// one that has not closed). The token carries the member's id, name and role, admits to the
/// session's room, and expires when the room closes (end plus grace).
pub async fn mint_link(
    store: &Store,
    auth: &Authenticator,
    public_url: &str,
    course: &str,
    member: &str,
    request: LinkRequest,
    now: Timestamp,
) -> Result<LinkView, ServiceError> {
    let (course_row, schedules) = course_schedules(store, course).await?;
    let member_row = store
        .member(course, member)
        .await?
        .ok_or_else(|| ServiceError::NotFound {
            what: "member",
            id: member.to_owned(),
        })?;
    let lifecycle = lifecycle_of(&course_row);
    let all = lectern_schedule::expand_all(&schedules);
    let occ = match &request.session {
        Some(key) => all
            .iter()
            .find(|o| o.session_key.as_str() == key)
            .ok_or_else(|| ServiceError::NotFound {
                what: "session",
                id: key.clone(),
            })?,
        None => all
            .iter()
            .find(|o| lifecycle.times(o).closes_at > now)
            .ok_or_else(|| ServiceError::NotFound {
                what: "upcoming session",
                id: course.to_owned(),
            })?,
    };
    let closes_at = lifecycle.times(occ).closes_at;
    if closes_at <= now {
        return Err(ServiceError::field(
            "session",
            format!(
                "session {} is over (its room closed at {closes_at})",
                occ.session_key
            ),
        ));
    }
    let holder = LinkHolder {
        member_id: &member_row.member_id,
        name: &member_row.name,
        role: member_row.role,
    };
    session_link(
        auth,
        public_url,
        course,
        occ.session_key.as_str(),
        closes_at,
        &holder,
        now,
    )
}

/// The course home page with a member's join token in the fragment.
pub fn home_link(public_url: &str, token: &str) -> String {
    format!(
        "{}/course.html#token={token}",
        public_url.trim_end_matches('/')
    )
}

/// Who a join link is for.
#[derive(Debug, Clone, Copy)]
pub struct LinkHolder<'a> {
    pub member_id: &'a str,
    pub name: &'a str,
    pub role: Role,
}

/// A join token and link for `holder` to the room of one session of `course`, valid until the
/// room closes (`closes_at`, at least [`MIN_LINK_TTL_SECS`] from now).
pub fn session_link(
    auth: &Authenticator,
    public_url: &str,
    course: &str,
    session_key: &str,
    closes_at: Timestamp,
    holder: &LinkHolder<'_>,
    now: Timestamp,
) -> Result<LinkView, ServiceError> {
    let ttl = u64::try_from(closes_at.as_second() - now.as_second())
        .unwrap_or(0)
        .max(MIN_LINK_TTL_SECS);
    if ttl > auth.max_lifetime_secs() {
        return Err(ServiceError::field(
            "session",
            format!(
                "session {session_key} is too far ahead: a join link is valid for at most {} s \
                 (auth.max_token_lifetime_secs); ask for it closer to the session",
                auth.max_lifetime_secs()
            ),
        ));
    }
    let room = RoomName::session(course, session_key).to_string();
    let token = auth
        .mint(&room, holder.member_id, holder.name, holder.role, ttl)
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
    let expires_at = Timestamp::from_second(now.as_second().saturating_add(ttl as i64))
        .map(|t| t.to_string())
        .unwrap_or_default();
    Ok(LinkView {
        session_key: session_key.to_owned(),
        room,
        link: format!("{}/#token={token}", public_url.trim_end_matches('/')),
        home_link: home_link(public_url, &token),
        token,
        expires_at,
    })
}
