//! Attempts: a member's standing, starting or continuing, reading and submitting, by the
//! server's clock.

use super::*;

fn secs(ms: UnixMillis) -> i64 {
    i64::try_from(ms / 1000).unwrap_or(i64::MAX)
}

/// Whether an open attempt still takes a submission at `now` (grace included): the quiz's own
/// rules, and for an attempt started while the quiz was live in class, the end of that run.
fn still_open(
    quiz: &Quiz,
    attempt: &QuizAttempt,
    now: UnixMillis,
    live: &LiveQuizzes,
) -> Result<(), ServiceError> {
    may_submit(
        &quiz.settings,
        secs(attempt.started_at),
        secs(now).saturating_sub(SUBMIT_GRACE_SECS),
    )
    .map_err(refused)?;
    let grace_ms = u64::try_from(SUBMIT_GRACE_SECS).unwrap_or(0) * 1000;
    match live.cap(attempt.quiz_id, attempt.started_at) {
        Some(end) if now > end.saturating_add(grace_ms) => Err(ServiceError::Refused {
            code: "time_up",
            message: format!(
                "this attempt was started while the quiz was live in class, which ended at {}",
                rfc3339(end)
            ),
        }),
        _ => Ok(()),
    }
}

/// The title of quiz `id` for `quiz_launch` in a room of `course`: it must be one of the
/// course's published quizzes.
pub async fn live_launch_title(
    store: &Store,
    course: &str,
    id: i64,
) -> Result<String, lectern_room::QuizUnavailable> {
    use lectern_room::QuizUnavailable;
    match store.quiz(id).await {
        Ok(Some(q)) if q.course_id == course => {
            if q.published {
                Ok(q.title)
            } else {
                Err(QuizUnavailable::NotPublished)
            }
        }
        Ok(_) => Err(QuizUnavailable::NotFound),
        Err(_) => Err(QuizUnavailable::StoreUnavailable),
    }
}

/// When an open attempt stops taking submissions (without the grace), Unix milliseconds.
fn deadline(quiz: &Quiz, attempt: &QuizAttempt, live: &LiveQuizzes) -> Option<u64> {
    let started_at = attempt.started_at;
    let limit = quiz
        .settings
        .time_limit_secs
        .map(|s| started_at.saturating_add(u64::from(s) * 1000));
    // Due at the second `due_at` means submissions during that second are in time.
    let due = quiz
        .settings
        .due_at
        .map(|d| u64::try_from(d).unwrap_or(0).saturating_mul(1000) + 999);
    let live = live.cap(attempt.quiz_id, started_at);
    [limit, due, live].into_iter().flatten().min()
}

fn state(
    quiz: &Quiz,
    attempts: &[QuizAttempt],
    now: UnixMillis,
    live: &LiveQuizzes,
) -> MyQuizState {
    let used = u32::try_from(attempts.len()).unwrap_or(u32::MAX);
    let open = attempts
        .iter()
        .rev()
        .find(|a| a.submitted_at.is_none() && still_open(quiz, a, now, live).is_ok())
        .map(|a| a.id);
    let blocked = if open.is_some() {
        None
    } else {
        may_attempt(&quiz.settings, used, secs(now)).err()
    };
    MyQuizState {
        attempts_used: used,
        attempts_left: quiz.settings.max_attempts.map(|m| m.saturating_sub(used)),
        best_score: attempts
            .iter()
            .filter_map(|a| a.score)
            .fold(None, |best: Option<f64>, s| {
                Some(best.map_or(s, |b| b.max(s)))
            }),
        open_attempt: open,
        can_attempt: blocked.is_none(),
        blocked: blocked.map(|e| match e {
            AttemptError::NoAttemptsLeft { .. } => "no_attempts_left".to_owned(),
            AttemptError::PastDue { .. } => "past_due".to_owned(),
            other => other.to_string(),
        }),
    }
}

/// The quizzes a member sees, with their own standing: every quiz for staff, the published
/// ones for everyone else.
pub async fn member_quizzes(
    store: &Store,
    course: &str,
    member_id: &str,
    staff: bool,
    now: UnixMillis,
    live: &LiveQuizzes,
) -> Result<Vec<QuizListItem>, ServiceError> {
    let mut out = Vec::new();
    for stored in store.quizzes(course).await? {
        if !(staff || stored.published) {
            continue;
        }
        let quiz = authored(&stored)?;
        let attempts = store.attempts(stored.id, Some(member_id)).await?;
        out.push(QuizListItem {
            quiz: summary(&stored, &quiz),
            mine: state(&quiz, &attempts, now, live),
        });
    }
    Ok(out)
}

/// A quiz's summary and the member's standing; for a non-staff member only a published quiz
/// (else `not_found`, as if it did not exist).
pub async fn member_quiz(
    store: &Store,
    course: &str,
    id: i64,
    member_id: &str,
    staff: bool,
    now: UnixMillis,
    live: &LiveQuizzes,
) -> Result<QuizListItem, ServiceError> {
    let (stored, quiz) = visible_quiz(store, course, id, staff).await?;
    let attempts = store.attempts(id, Some(member_id)).await?;
    Ok(QuizListItem {
        quiz: summary(&stored, &quiz),
        mine: state(&quiz, &attempts, now, live),
    })
}

async fn visible_quiz(
    store: &Store,
    course: &str,
    id: i64,
    staff: bool,
) -> Result<(StoredQuiz, Quiz), ServiceError> {
    let (stored, quiz) = course_quiz(store, course, id).await?;
    if !(staff || stored.published) {
        return Err(quiz_not_found(id));
    }
    Ok((stored, quiz))
}

fn attempt_view(
    quiz: &Quiz,
    attempt: &QuizAttempt,
    now: UnixMillis,
    live: &LiveQuizzes,
) -> Result<AttemptView, ServiceError> {
    let answers = attempt
        .answers
        .as_deref()
        .map(serde_json::from_str::<Vec<QuestionAnswer>>)
        .transpose()
        .map_err(|e| corrupt("attempt", attempt.id, e))?;
    let result = attempt
        .result
        .as_deref()
        .map(serde_json::from_str::<GradedAttempt>)
        .transpose()
        .map_err(|e| corrupt("attempt", attempt.id, e))?;
    Ok(AttemptView {
        id: attempt.id,
        quiz_id: attempt.quiz_id,
        member_id: attempt.member_id.clone(),
        number: attempt.number,
        started_at: attempt.started_at,
        submitted_at: attempt.submitted_at,
        deadline_at: attempt
            .submitted_at
            .is_none()
            .then(|| deadline(quiz, attempt, live))
            .flatten(),
        server_now: now,
        score: attempt.score,
        max_score: attempt.max_score,
        quiz: StudentQuiz::new(quiz, attempt.seed as u64),
        answers,
        result,
    })
}

/// Starts an attempt, or continues the member's open one (still within its time). Refused
/// with `no_attempts_left` or `past_due`. Returns the attempt and whether it is new.
pub async fn start_attempt(
    store: &Store,
    course: &str,
    id: i64,
    taker: &Taker<'_>,
    staff: bool,
    now: UnixMillis,
    live: &LiveQuizzes,
) -> Result<(AttemptView, bool), ServiceError> {
    let (_, quiz) = visible_quiz(store, course, id, staff).await?;
    // Two starts may race: the loser's insert conflicts on the attempt number; it then finds
    // the winner's attempt open and continues it.
    for _ in 0..3 {
        let attempts = store.attempts(id, Some(taker.member_id)).await?;
        if let Some(open) = attempts
            .iter()
            .rev()
            .find(|a| a.submitted_at.is_none() && still_open(&quiz, a, now, live).is_ok())
        {
            return Ok((attempt_view(&quiz, open, now, live)?, false));
        }
        let used = u32::try_from(attempts.len()).unwrap_or(u32::MAX);
        may_attempt(&quiz.settings, used, secs(now)).map_err(refused)?;
        let number = attempts.iter().map(|a| a.number).max().unwrap_or(0) + 1;
        let seed = {
            use rand::Rng;
            rand::rng().random::<i64>()
        };
        match store
            .start_attempt(&NewAttempt {
                quiz_id: id,
                member_id: taker.member_id.to_owned(),
                member_name: taker.name.to_owned(),
                number,
                seed,
                max_score: quiz.max_score(),
                at: now,
            })
            .await
        {
            Ok(attempt) => return Ok((attempt_view(&quiz, &attempt, now, live)?, true)),
            Err(StoreError::Conflict { .. }) => continue,
            Err(other) => return Err(other.into()),
        }
    }
    Err(ServiceError::Conflict(
        "another attempt was being started at the same time; try again".to_owned(),
    ))
}

/// The member's attempt `attempt` of quiz `id` (staff: anyone's); `not_found` otherwise.
async fn own_attempt(
    store: &Store,
    id: i64,
    attempt: i64,
    member_id: &str,
    staff: bool,
) -> Result<QuizAttempt, ServiceError> {
    store
        .attempt(attempt)
        .await?
        .filter(|a| a.quiz_id == id && (staff || a.member_id == member_id))
        .ok_or_else(|| ServiceError::NotFound {
            what: "attempt",
            id: attempt.to_string(),
        })
}

/// One attempt: the questions without keys while it is open; with the answers and the graded
/// result once submitted. A member reads their own attempts only; staff read anyone's.
pub async fn get_attempt(
    store: &Store,
    course: &str,
    id: i64,
    attempt: i64,
    member_id: &str,
    staff: bool,
    (now, live): (UnixMillis, &LiveQuizzes),
) -> Result<AttemptView, ServiceError> {
    let (_, quiz) = visible_quiz(store, course, id, staff).await?;
    let attempt = own_attempt(store, id, attempt, member_id, staff).await?;
    attempt_view(&quiz, &attempt, now, live)
}

/// The member's own attempts at a quiz, oldest first.
pub async fn my_attempts(
    store: &Store,
    course: &str,
    id: i64,
    member_id: &str,
    staff: bool,
) -> Result<Vec<AttemptBrief>, ServiceError> {
    visible_quiz(store, course, id, staff).await?;
    Ok(store
        .attempts(id, Some(member_id))
        .await?
        .iter()
        .map(|a| AttemptBrief {
            id: a.id,
            number: a.number,
            started_at: a.started_at,
            submitted_at: a.submitted_at,
            score: a.score,
            max_score: a.max_score,
        })
        .collect())
}

/// Grades and stores a submission of the member's own open attempt. Refused with `time_up`
/// (the time limit, or the end of the live run the attempt was started in) or `past_due` (beyond [`SUBMIT_GRACE_SECS`]) and `already_submitted`; bad answers are
/// `invalid_input`. Of two simultaneous submissions, one is stored, the other refused.
/// `(id, attempt)`: the quiz and the attempt; `(now, live)`: the server's clock and the live
/// quiz windows.
pub async fn submit_attempt(
    store: &Store,
    course: &str,
    (id, attempt): (i64, i64),
    member_id: &str,
    staff: bool,
    answers: &[QuestionAnswer],
    (now, live): (UnixMillis, &LiveQuizzes),
) -> Result<AttemptView, ServiceError> {
    // Staff reach an unpublished quiz (to try it out); everyone submits only their own
    // attempts.
    let (_, quiz) = visible_quiz(store, course, id, staff).await?;
    let attempt = own_attempt(store, id, attempt, member_id, false).await?;
    if attempt.submitted_at.is_some() {
        return Err(already_submitted());
    }
    still_open(&quiz, &attempt, now, live)?;
    let graded = grade(&quiz, answers).map_err(|err| answers_invalid(&err))?;
    let submission = AttemptSubmission {
        answers: to_json(&answers)?,
        result: to_json(&graded)?,
        score: graded.score,
        at: now,
    };
    match store.submit_attempt(attempt.id, &submission).await {
        Ok(stored) => attempt_view(&quiz, &stored, now, live),
        Err(StoreError::Conflict { .. }) => Err(already_submitted()),
        Err(other) => Err(other.into()),
    }
}

fn already_submitted() -> ServiceError {
    ServiceError::Refused {
        code: "already_submitted",
        message: "this attempt was already submitted".to_owned(),
    }
}
