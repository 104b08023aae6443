//! The polls of one session's room with their results, for staff (issue 13).

use lectern_store::Store;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::schedules::course_session;
use super::service::{ServiceError, rfc3339};
use crate::room_name::RoomName;

/// One poll of a session with its results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PollReport {
    /// The poll's id in its room (the sequence number of its `poll_started` event).
    pub poll_id: u64,
    pub question: String,
    pub multiple: bool,
    /// Answers name nobody: `answers` is empty and only counts are kept.
    pub anonymous: bool,
    /// The staff member who asked: participant id and display name.
    pub asked_by: String,
    pub asked_by_name: String,
    /// RFC 3339 UTC.
    pub started_at: String,
    /// RFC 3339 UTC; null while the poll is open.
    pub ended_at: Option<String>,
    /// When staff showed the results to the class (RFC 3339 UTC); null if they did not.
    pub shared_at: Option<String>,
    /// How many participants answered.
    pub answered: u32,
    /// The options in order, each with how many chose it.
    pub options: Vec<PollOptionReport>,
    /// Who chose what, in the order they answered; empty for an anonymous poll.
    pub answers: Vec<PollAnswerReport>,
}

/// One option of a poll and how many chose it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PollOptionReport {
    pub text: String,
    pub count: u32,
}

/// One named answer to a poll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PollAnswerReport {
    pub participant_id: String,
    pub name: String,
    /// The chosen options' indices (from 0), ascending.
    pub choices: Vec<u32>,
    /// RFC 3339 UTC.
    pub answered_at: Option<String>,
}

/// Every poll of one session's room, in the order they were asked, with counts per option and,
/// unless anonymous, who chose what.
pub async fn polls(
    store: &Store,
    course: &str,
    session_key: &str,
) -> Result<Vec<PollReport>, ServiceError> {
    let (course_row, occ, _) = course_session(store, course, session_key).await?;
    let room = RoomName::session(&course_row.id, occ.session_key.as_str()).room_id();
    let stored = store.polls(&room).await?;
    Ok(stored.into_iter().map(report).collect())
}

fn report(stored: lectern_store::StoredPoll) -> PollReport {
    let poll = stored.poll;
    let mut counts = vec![0u32; poll.options.len()];
    for answer in &stored.answers {
        for &choice in &answer.choices {
            if let Some(n) = counts.get_mut(choice as usize) {
                *n += 1;
            }
        }
    }
    let answers = stored
        .answers
        .iter()
        .filter_map(|a| {
            let (id, name) = a.voter.clone()?;
            Some(PollAnswerReport {
                participant_id: id.0,
                name,
                choices: a.choices.clone(),
                answered_at: a.at.map(rfc3339),
            })
        })
        .collect();
    PollReport {
        poll_id: poll.poll_id,
        question: poll.question,
        multiple: poll.multiple,
        anonymous: poll.anonymous,
        asked_by: poll.asked_by.0,
        asked_by_name: stored.asked_by_name,
        started_at: rfc3339(poll.started_at),
        ended_at: stored.ended_at.map(rfc3339),
        shared_at: stored.shared_at.map(rfc3339),
        answered: u32::try_from(stored.answers.len()).unwrap_or(u32::MAX),
        options: poll
            .options
            .into_iter()
            .zip(counts)
            .map(|(text, count)| PollOptionReport { text, count })
            .collect(),
        answers,
    }
}
