//! The staff reports of a quiz: per-student results (JSON and CSV) and per-question
//! statistics.

use super::*;

/// Every student's results on a quiz (staff).
pub async fn results(store: &Store, course: &str, id: i64) -> Result<QuizResults, ServiceError> {
    let (stored, quiz) = course_quiz(store, course, id).await?;
    let mut by_member: BTreeMap<String, StudentResult> = BTreeMap::new();
    for m in store.members(course).await? {
        if m.role == Role::Student {
            by_member.insert(
                m.member_id.clone(),
                StudentResult {
                    member_id: m.member_id,
                    name: m.name,
                    on_roster: true,
                    attempts: 0,
                    submitted: 0,
                    best_score: None,
                    last_score: None,
                    last_submitted_at: None,
                },
            );
        }
    }
    for a in store.attempts(id, None).await? {
        let row = by_member
            .entry(a.member_id.clone())
            .or_insert_with(|| StudentResult {
                member_id: a.member_id.clone(),
                name: a.member_name.clone(),
                on_roster: false,
                attempts: 0,
                submitted: 0,
                best_score: None,
                last_score: None,
                last_submitted_at: None,
            });
        row.attempts += 1;
        if let (Some(score), Some(at)) = (a.score, a.submitted_at) {
            row.submitted += 1;
            row.best_score = Some(row.best_score.map_or(score, |b| b.max(score)));
            if row.last_submitted_at.is_none_or(|last| at >= last) {
                row.last_submitted_at = Some(at);
                row.last_score = Some(score);
            }
        }
    }
    let mut students: Vec<StudentResult> = by_member.into_values().collect();
    students.sort_by(|a, b| a.name.cmp(&b.name).then(a.member_id.cmp(&b.member_id)));
    Ok(QuizResults {
        quiz: summary(&stored, &quiz),
        students,
    })
}

/// The results as CSV with a header row: `member_id,name,on_roster,attempts,submitted,
/// best_score,last_score,max_score,last_submitted_at` (RFC 3339 UTC).
pub fn results_csv(results: &QuizResults) -> Result<String, ServiceError> {
    let mut out = csv::Writer::from_writer(Vec::new());
    let internal = |e: csv::Error| ServiceError::Internal(e.to_string());
    out.write_record([
        "member_id",
        "name",
        "on_roster",
        "attempts",
        "submitted",
        "best_score",
        "last_score",
        "max_score",
        "last_submitted_at",
    ])
    .map_err(internal)?;
    let score = |s: Option<f64>| s.map(|s| s.to_string()).unwrap_or_default();
    for r in &results.students {
        out.write_record([
            safe_cell(&r.member_id),
            safe_cell(&r.name),
            r.on_roster.to_string(),
            r.attempts.to_string(),
            r.submitted.to_string(),
            score(r.best_score),
            score(r.last_score),
            results.quiz.max_score.to_string(),
            r.last_submitted_at.map(rfc3339).unwrap_or_default(),
        ])
        .map_err(internal)?;
    }
    let bytes = out
        .into_inner()
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| ServiceError::Internal(e.to_string()))
}

/// A cell a spreadsheet will not run as a formula: text starting with `= + - @` (or a tab or
/// carriage return) gets a leading apostrophe.
pub(super) fn safe_cell(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

/// Per-question statistics over every submitted attempt (staff).
pub async fn stats(store: &Store, course: &str, id: i64) -> Result<QuizStats, ServiceError> {
    let (stored, quiz) = course_quiz(store, course, id).await?;
    let mut questions: Vec<QuestionStats> = quiz
        .questions
        .iter()
        .map(|q| {
            let choice = |index: usize, text: &str, correct: bool| ChoiceStats {
                index: u32::try_from(index).unwrap_or(u32::MAX),
                text: text.to_owned(),
                correct,
                count: 0,
            };
            let choices = match &q.kind {
                QuestionKind::SingleChoice { choices } => choices
                    .iter()
                    .enumerate()
                    .map(|(i, c)| choice(i, &c.text, c.correct))
                    .collect(),
                QuestionKind::MultipleChoice { choices } => choices
                    .iter()
                    .enumerate()
                    .map(|(i, c)| choice(i, &c.text, c.weight > 0.0))
                    .collect(),
                _ => Vec::new(),
            };
            QuestionStats {
                question: q.id.clone(),
                text: q.text.clone(),
                kind: q.kind.name().to_owned(),
                max: q.points,
                answered: 0,
                correct: 0,
                share_correct: 0.0,
                mean_score: 0.0,
                choices,
            }
        })
        .collect();
    let mut submitted = 0u32;
    let mut total = 0.0;
    for attempt in store.attempts(id, None).await? {
        let (Some(result), Some(answers)) = (&attempt.result, &attempt.answers) else {
            continue;
        };
        let graded: GradedAttempt =
            serde_json::from_str(result).map_err(|e| corrupt("attempt", attempt.id, e))?;
        let answers: Vec<QuestionAnswer> =
            serde_json::from_str(answers).map_err(|e| corrupt("attempt", attempt.id, e))?;
        submitted += 1;
        total += graded.score;
        for stats in &mut questions {
            if let Some(g) = graded
                .questions
                .iter()
                .find(|g| g.question == stats.question)
            {
                stats.mean_score += g.score;
                if g.outcome != Outcome::Unanswered {
                    stats.answered += 1;
                }
                if g.outcome == Outcome::Correct {
                    stats.correct += 1;
                }
            }
            let picked: Vec<u32> = match answers.iter().find(|a| a.question == stats.question) {
                Some(QuestionAnswer {
                    answer: Answer::SingleChoice { choice },
                    ..
                }) => vec![*choice],
                Some(QuestionAnswer {
                    answer: Answer::MultipleChoice { choices },
                    ..
                }) => choices.clone(),
                _ => Vec::new(),
            };
            for index in picked {
                if let Some(c) = stats.choices.iter_mut().find(|c| c.index == index) {
                    c.count += 1;
                }
            }
        }
    }
    if submitted > 0 {
        let n = f64::from(submitted);
        for stats in &mut questions {
            stats.mean_score /= n;
            stats.share_correct = f64::from(stats.correct) / n;
        }
    }
    Ok(QuizStats {
        quiz: summary(&stored, &quiz),
        submitted_attempts: submitted,
        mean_score: if submitted > 0 {
            total / f64::from(submitted)
        } else {
            0.0
        },
        questions,
    })
}
