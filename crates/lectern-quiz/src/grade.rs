//! Grading a submitted answer set, and whether an attempt is allowed.

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

use crate::error::{AnswerError, AttemptError};
use crate::model::{NumericRange, Question, QuestionKind, Quiz, QuizSettings, limits};

/// A student's answer to one question, tagged by `"type"` like the question kinds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Answer {
    /// The index of the picked choice in the authored order ([`crate::StudentChoice::index`]).
    SingleChoice {
        choice: u32,
    },
    /// The picked choices; none picked is a valid answer (score 0 unless weights say otherwise).
    MultipleChoice {
        choices: Vec<u32>,
    },
    Numeric {
        value: f64,
    },
    ShortText {
        text: String,
    },
}

/// One answer and the question it answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuestionAnswer {
    pub question: String,
    #[serde(flatten)]
    pub answer: Answer,
}

/// How a question went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Correct,
    Partial,
    Wrong,
    Unanswered,
}

/// The key shown after submission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Solution {
    /// The choices marked correct (any one of them earns full marks).
    SingleChoice { correct: Vec<u32> },
    /// The choices with a positive weight (picking all of them, and nothing else, earns full marks).
    MultipleChoice { correct: Vec<u32> },
    /// The accepted intervals worth full marks, bounds included.
    Numeric { accepted: Vec<NumericRange> },
    /// The accepted answers worth full marks.
    ShortText { accepted: Vec<String> },
}

/// One graded question.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GradedQuestion {
    pub question: String,
    pub score: f64,
    pub max: f64,
    pub outcome: Outcome,
    /// The question's explanation (general feedback), if any.
    pub explanation: Option<String>,
    /// Feedback for what the student answered: each picked choice's, or the matched answer's.
    pub feedback: Vec<String>,
    pub solution: Solution,
}

/// A graded attempt: what a student gets back after submitting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GradedAttempt {
    pub score: f64,
    pub max_score: f64,
    /// In the authored order.
    pub questions: Vec<GradedQuestion>,
}

/// Checks a submitted answer set against the quiz: every answer names a question of the quiz
/// once, has its kind, picks existing choices once, numbers are finite, texts within
/// [`limits::STUDENT_TEXT_CHARS`]. Unanswered questions are allowed.
pub fn validate_answers(quiz: &Quiz, answers: &[QuestionAnswer]) -> Result<(), AnswerError> {
    if answers.len() > quiz.questions.len() {
        return Err(AnswerError::TooManyAnswers);
    }
    for (i, qa) in answers.iter().enumerate() {
        let id = || qa.question.clone();
        let question = quiz
            .question(&qa.question)
            .ok_or_else(|| AnswerError::UnknownQuestion { question: id() })?;
        if answers[..i].iter().any(|a| a.question == qa.question) {
            return Err(AnswerError::DuplicateAnswer { question: id() });
        }
        let choice_count = match &question.kind {
            QuestionKind::SingleChoice { choices } => choices.len(),
            QuestionKind::MultipleChoice { choices } => choices.len(),
            _ => 0,
        };
        let in_range = |c: u32| {
            if (c as usize) < choice_count {
                Ok(())
            } else {
                Err(AnswerError::ChoiceOutOfRange {
                    question: id(),
                    choice: c,
                })
            }
        };
        match (&question.kind, &qa.answer) {
            (QuestionKind::SingleChoice { .. }, Answer::SingleChoice { choice }) => {
                in_range(*choice)?
            }
            (QuestionKind::MultipleChoice { .. }, Answer::MultipleChoice { choices }) => {
                for (j, &c) in choices.iter().enumerate() {
                    in_range(c)?;
                    if choices[..j].contains(&c) {
                        return Err(AnswerError::DuplicateChoice {
                            question: id(),
                            choice: c,
                        });
                    }
                }
            }
            (QuestionKind::Numeric { .. }, Answer::Numeric { value }) => {
                if !value.is_finite() {
                    return Err(AnswerError::NotFinite { question: id() });
                }
            }
            (QuestionKind::ShortText { .. }, Answer::ShortText { text }) => {
                // Count at most one past the limit: a huge text costs no more than a short one.
                if text.chars().take(limits::STUDENT_TEXT_CHARS + 1).count()
                    > limits::STUDENT_TEXT_CHARS
                {
                    return Err(AnswerError::TextTooLong {
                        question: id(),
                        max: limits::STUDENT_TEXT_CHARS,
                    });
                }
            }
            (kind, _) => {
                return Err(AnswerError::WrongAnswerType {
                    question: id(),
                    expected: kind.name(),
                });
            }
        }
    }
    Ok(())
}

/// Grades a submitted answer set (validated first, see [`validate_answers`]). The quiz is
/// expected to be valid ([`Quiz::validate`]); grading an invalid one does not panic either.
pub fn grade(quiz: &Quiz, answers: &[QuestionAnswer]) -> Result<GradedAttempt, AnswerError> {
    validate_answers(quiz, answers)?;
    let questions: Vec<GradedQuestion> = quiz
        .questions
        .iter()
        .map(|q| {
            let answer = answers
                .iter()
                .find(|a| a.question == q.id)
                .map(|a| &a.answer);
            grade_question(q, answer)
        })
        .collect();
    Ok(GradedAttempt {
        score: questions.iter().map(|q| q.score).sum(),
        max_score: quiz.max_score(),
        questions,
    })
}

fn grade_question(q: &Question, answer: Option<&Answer>) -> GradedQuestion {
    let mut feedback = Vec::new();
    // The fraction of the points earned, within 0 and 1; None when unanswered.
    let fraction: Option<f64> = match (&q.kind, answer) {
        (QuestionKind::SingleChoice { choices }, Some(Answer::SingleChoice { choice })) => {
            choices.get(*choice as usize).map(|c| {
                feedback.extend(c.feedback.clone());
                if c.correct { 1.0 } else { 0.0 }
            })
        }
        (
            QuestionKind::MultipleChoice { choices },
            Some(Answer::MultipleChoice { choices: picked }),
        ) => {
            let mut sum = 0.0;
            for c in picked.iter().filter_map(|&i| choices.get(i as usize)) {
                sum += c.weight;
                feedback.extend(c.feedback.clone());
            }
            // Relative to the positive weights' total, which validation keeps within 0.001 of 1
            // (three choices of 33.333% add up to 0.99999): the correct set earns exactly 1.
            let whole: f64 = choices.iter().map(|c| c.weight.max(0.0)).sum();
            Some(if (sum - whole).abs() < 1e-9 {
                1.0
            } else if whole > 0.0 {
                clamp01(sum / whole)
            } else {
                0.0
            })
        }
        (QuestionKind::Numeric { answers }, Some(Answer::Numeric { value })) => {
            let best = answers
                .iter()
                .filter(|a| numeric_matches(&a.accept, *value))
                .max_by(|a, b| a.weight.total_cmp(&b.weight));
            Some(best.map_or(0.0, |a| {
                feedback.extend(a.feedback.clone());
                clamp01(a.weight)
            }))
        }
        (
            QuestionKind::ShortText {
                answers,
                case_sensitive,
            },
            Some(Answer::ShortText { text }),
        ) => {
            let given = normalise(text, *case_sensitive);
            let best = answers
                .iter()
                .filter(|a| normalise(&a.text, *case_sensitive) == given)
                .max_by(|a, b| a.weight.total_cmp(&b.weight));
            Some(best.map_or(0.0, |a| {
                feedback.extend(a.feedback.clone());
                clamp01(a.weight)
            }))
        }
        // Unanswered, or (only if validation was skipped) an answer of another kind.
        _ => None,
    };
    let outcome = match fraction {
        None => Outcome::Unanswered,
        Some(f) if f >= 1.0 => Outcome::Correct,
        Some(f) if f > 0.0 => Outcome::Partial,
        Some(_) => Outcome::Wrong,
    };
    let score = match fraction {
        Some(f) if f >= 1.0 => q.points,
        Some(f) => f * q.points,
        None => 0.0,
    };
    GradedQuestion {
        question: q.id.clone(),
        score,
        max: q.points,
        outcome,
        explanation: q.explanation.clone(),
        feedback,
        solution: solution(q),
    }
}

fn clamp01(x: f64) -> f64 {
    if x.is_nan() { 0.0 } else { x.clamp(0.0, 1.0) }
}

fn solution(q: &Question) -> Solution {
    let indexes = |flags: Vec<bool>| -> Vec<u32> {
        flags
            .iter()
            .enumerate()
            .filter(|(_, f)| **f)
            .map(|(i, _)| u32::try_from(i).unwrap_or(u32::MAX))
            .collect()
    };
    match &q.kind {
        QuestionKind::SingleChoice { choices } => Solution::SingleChoice {
            correct: indexes(choices.iter().map(|c| c.correct).collect()),
        },
        QuestionKind::MultipleChoice { choices } => Solution::MultipleChoice {
            correct: indexes(choices.iter().map(|c| c.weight > 0.0).collect()),
        },
        QuestionKind::Numeric { answers } => Solution::Numeric {
            accepted: answers
                .iter()
                .filter(|a| a.weight >= 1.0)
                .map(|a| a.accept)
                .collect(),
        },
        QuestionKind::ShortText { answers, .. } => Solution::ShortText {
            accepted: answers
                .iter()
                .filter(|a| a.weight >= 1.0)
                .map(|a| a.text.clone())
                .collect(),
        },
    }
}

/// Whether `x` is in the accepted interval, bounds included. The bounds get a relative slack
/// of 1e-9 so that decimal rounding never rejects a bound (3.14 ± 0.01 accepts 3.15, although
/// 3.15 - 3.14 is 0.010000000000000231 in binary floating point).
pub fn numeric_matches(range: &NumericRange, x: f64) -> bool {
    let (lo, hi) = range.bounds();
    let scale = lo.abs().max(hi.abs()).max(1.0);
    let slack = scale * 1e-9;
    x >= lo - slack && x <= hi + slack
}

/// The form short-text answers are compared in: Unicode NFC, leading and trailing whitespace
/// removed, inner runs of whitespace made one space, and (unless `case_sensitive`) case folded.
/// Folding is upper case then lower case, which approximates Unicode full case folding with
/// the standard library: "ß", "SS" and "ss" match, and so do "ς", "Σ" and "σ".
pub fn normalise(text: &str, case_sensitive: bool) -> String {
    let nfc: String = text.nfc().collect();
    let collapsed = nfc.split_whitespace().collect::<Vec<_>>().join(" ");
    if case_sensitive {
        collapsed
    } else {
        // Changing case can change a string's composition (e.g. 'İ'): normalise once more.
        collapsed.to_uppercase().to_lowercase().nfc().collect()
    }
}

/// Whether a student who made `previous_attempts` attempts may start another at `now` (Unix
/// seconds). Submitting exactly at the due second is still in time.
pub fn may_attempt(
    settings: &QuizSettings,
    previous_attempts: u32,
    now: i64,
) -> Result<(), AttemptError> {
    if let Some(due_at) = settings.due_at
        && now > due_at
    {
        return Err(AttemptError::PastDue { due_at });
    }
    if let Some(max) = settings.max_attempts
        && previous_attempts >= max
    {
        return Err(AttemptError::NoAttemptsLeft { max });
    }
    Ok(())
}

/// Whether an attempt started at `started_at` may be submitted at `now` (Unix seconds): before
/// the due date, and within the time limit (a submission at exactly the limit counts).
pub fn may_submit(settings: &QuizSettings, started_at: i64, now: i64) -> Result<(), AttemptError> {
    if let Some(due_at) = settings.due_at
        && now > due_at
    {
        return Err(AttemptError::PastDue { due_at });
    }
    if let Some(limit_secs) = settings.time_limit_secs
        && now.saturating_sub(started_at) > i64::from(limit_secs)
    {
        return Err(AttemptError::TimeUp { limit_secs });
    }
    Ok(())
}
