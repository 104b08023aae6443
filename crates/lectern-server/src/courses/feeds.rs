//! iCalendar feeds: the course's (behind the admin key) and each member's personal one, reached
//! by an unguessable token in its URL, whose events link to the member's own join link.

use lectern_proto::UnixMillis;
use lectern_schedule::jiff::Timestamp;
use lectern_store::Store;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::links::{LinkRequest, LinkView, home_link, mint_link};
use super::schedules::course_schedules;
use super::service::{ServiceError, lifecycle_of, random_hex, require_course};
use crate::auth::Authenticator;
use crate::room_name::RoomName;

/// A member's personal calendar feed, as created. The token in both URLs is the secret: it is
/// shown once (only its hash is stored) and revoked by creating a new feed or deleting it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FeedView {
    /// The member's iCalendar feed, for a calendar app (no API key needed).
    pub calendar_url: String,
    /// Each event's link: opens the member's join link for the current or next session.
    pub join_url: String,
    /// Opens the member's course home (next class, past classes, recordings, the board) with
    /// a fresh token; also in each event's description.
    pub home_url: String,
    /// RFC 3339, UTC.
    pub created_at: String,
}

/// The course's iCalendar feed (every session of every schedule).
pub async fn calendar(
    store: &Store,
    course: &str,
    uid_domain: &str,
    now: Timestamp,
) -> Result<String, ServiceError> {
    calendar_with_link(store, course, uid_domain, None, now).await
}

/// Creates a member's personal calendar feed (see [`FeedView`]), revoking any earlier one.
pub async fn create_member_feed(
    store: &Store,
    public_url: &str,
    course: &str,
    member: &str,
    now: UnixMillis,
) -> Result<FeedView, ServiceError> {
    require_course(store, course).await?;
    if store.member(course, member).await?.is_none() {
        return Err(ServiceError::NotFound {
            what: "member",
            id: member.to_owned(),
        });
    }
    let token = format!("feed_{}", random_hex(32));
    store.set_member_feed(course, member, &token, now).await?;
    let base = format!("{}/api/v1/feeds/{token}", public_url.trim_end_matches('/'));
    let created_at = Timestamp::from_millisecond(i64::try_from(now).unwrap_or(0))
        .map(|t| t.to_string())
        .unwrap_or_default();
    Ok(FeedView {
        calendar_url: format!("{base}/calendar.ics"),
        join_url: format!("{base}/join"),
        home_url: format!("{base}/home"),
        created_at,
    })
}

/// Revokes a member's calendar feed: its URLs stop working.
pub async fn revoke_member_feed(
    store: &Store,
    course: &str,
    member: &str,
) -> Result<(), ServiceError> {
    if store.revoke_member_feed(course, member).await? {
        Ok(())
    } else {
        Err(ServiceError::NotFound {
            what: "calendar feed of member",
            id: member.to_owned(),
        })
    }
}

/// The member a feed token stands for, as `(course id, member id)`.
async fn feed_member(store: &Store, token: &str) -> Result<(String, String), ServiceError> {
    match store.member_by_feed(token).await? {
        Some((course, member)) => Ok((course, member.member_id)),
        None => Err(ServiceError::NotFound {
            what: "calendar feed",
            // Never echo the secret.
            id: String::new(),
        }),
    }
}

/// A member's personal feed: the course's sessions, each event linking to `join_url` (the
/// member's own join link for the session at hand) and naming `home_url` (their course home).
pub async fn member_calendar(
    store: &Store,
    token: &str,
    links: FeedLinks<'_>,
    uid_domain: &str,
    now: Timestamp,
) -> Result<String, ServiceError> {
    let (course, _) = feed_member(store, token).await?;
    calendar_with_link(store, &course, uid_domain, Some(links), now).await
}

/// The two links of a member feed's events.
#[derive(Debug, Clone, Copy)]
pub struct FeedLinks<'a> {
    pub join_url: &'a str,
    pub home_url: &'a str,
}

/// How long the token of a feed's course home link lasts (at most the longest token lifetime).
const HOME_LINK_TTL_SECS: u64 = 12 * 3600;

/// The course home link of a feed's member: a fresh token for the room of the session open now
/// or next (the last one once the schedule is over), valid [`HOME_LINK_TTL_SECS`]. The room
/// still admits only while that session is open, as with any join link.
pub async fn feed_home_link(
    store: &Store,
    auth: &Authenticator,
    public_url: &str,
    token: &str,
    now: Timestamp,
) -> Result<String, ServiceError> {
    let (course, member) = feed_member(store, token).await?;
    let member_row =
        store
            .member(&course, &member)
            .await?
            .ok_or_else(|| ServiceError::NotFound {
                what: "member",
                id: member.clone(),
            })?;
    let (course_row, schedules) = course_schedules(store, &course).await?;
    let lifecycle = lifecycle_of(&course_row);
    let all = lectern_schedule::expand_all(&schedules);
    let occ = all
        .iter()
        .find(|o| lifecycle.times(o).closes_at > now)
        .or(all.last())
        .ok_or_else(|| ServiceError::NotFound {
            what: "session of course",
            id: course.clone(),
        })?;
    let room = RoomName::session(&course, occ.session_key.as_str()).to_string();
    let ttl = HOME_LINK_TTL_SECS.min(auth.max_lifetime_secs());
    let token = auth
        .mint(
            &room,
            &member_row.member_id,
            &member_row.name,
            member_row.role,
            ttl,
        )
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
    Ok(home_link(public_url, &token))
}

/// The join link of a feed's member for the session open now or next (see [`mint_link`]).
pub async fn feed_join_link(
    store: &Store,
    auth: &Authenticator,
    public_url: &str,
    token: &str,
    now: Timestamp,
) -> Result<LinkView, ServiceError> {
    let (course, member) = feed_member(store, token).await?;
    let request = LinkRequest::default();
    mint_link(store, auth, public_url, &course, &member, request, now).await
}

async fn calendar_with_link(
    store: &Store,
    course: &str,
    uid_domain: &str,
    links: Option<FeedLinks<'_>>,
    now: Timestamp,
) -> Result<String, ServiceError> {
    let (course_row, schedules) = course_schedules(store, course).await?;
    let occurrences = lectern_schedule::expand_all(&schedules);
    let feed = lectern_schedule::ics::CalendarFeed {
        course_id: &course_row.id,
        title: &course_row.title,
        timezone: &course_row.timezone,
        uid_domain,
        join_link: links.map(|l| l.join_url),
        home_link: links.map(|l| l.home_url),
    };
    lectern_schedule::ics::course_calendar(&feed, &occurrences, now)
        .map_err(|e| ServiceError::Internal(e.to_string()))
}
