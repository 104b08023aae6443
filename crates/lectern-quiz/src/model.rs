//! The authored quiz, with its keys. Its serde form is the JSON import/export format
//! (docs/QUIZZES.md). It never goes to a student: see [`crate::StudentQuiz`].

use serde::{Deserialize, Serialize};

use crate::error::{QuestionProblem, QuizError};

/// Limits on what an author may write (also bounds what the server stores and grades).
pub mod limits {
    pub const TITLE_CHARS: usize = 200;
    pub const DESCRIPTION_CHARS: usize = 5_000;
    pub const QUESTIONS: usize = 200;
    pub const QUESTION_ID_CHARS: usize = 64;
    pub const QUESTION_TEXT_CHARS: usize = 5_000;
    pub const EXPLANATION_CHARS: usize = 5_000;
    pub const FEEDBACK_CHARS: usize = 2_000;
    pub const CHOICES: usize = 20;
    pub const CHOICE_CHARS: usize = 1_000;
    /// Accepted answers of a numeric or short-text question.
    pub const ANSWERS: usize = 20;
    pub const ANSWER_CHARS: usize = 500;
    pub const MAX_POINTS: f64 = 1_000.0;
    /// A student's short-text answer.
    pub const STUDENT_TEXT_CHARS: usize = 500;
}

/// A quiz as authored: settings and questions with their keys and feedback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quiz {
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub settings: QuizSettings,
    pub questions: Vec<Question>,
}

/// Attempts, due date, time limit and order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuizSettings {
    /// At least 1; `None` (left out) allows any number of attempts.
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// Unix seconds; submissions after it are refused. `None`: no due date.
    #[serde(default)]
    pub due_at: Option<i64>,
    /// Seconds from the start of an attempt (a quiz launched live in class). `None`: no limit.
    #[serde(default)]
    pub time_limit_secs: Option<u32>,
    /// Show questions and choices in a per-attempt order (see [`crate::StudentQuiz::new`]).
    #[serde(default)]
    pub shuffle: bool,
}

/// One question: what every kind shares, and the kind with its keys.
// No `deny_unknown_fields` where a field is flattened: serde does not support the pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Question {
    /// Unique in the quiz; answers name it. 1 to 64 of `A-Z a-z 0-9 - _`.
    pub id: String,
    /// The author's name for the question (GIFT `::title::`); staff only, never shown to students.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub text: String,
    /// Full marks for the question; above 0, at most 1000. Default 1.
    #[serde(default = "one")]
    pub points: f64,
    /// General feedback shown after submission, whatever was answered (GIFT `####`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
    #[serde(flatten)]
    pub kind: QuestionKind,
}

fn one() -> f64 {
    1.0
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The kinds of question, tagged by `"type"` in JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum QuestionKind {
    /// Pick one choice. Full marks for a choice marked `correct` (several may be), none otherwise.
    SingleChoice { choices: Vec<Choice> },
    /// Pick any number of choices; each carries a weight (fraction of the points, -1 to 1).
    /// The score is the sum of the picked weights, kept within 0 and 1 (Moodle's rule).
    MultipleChoice { choices: Vec<WeightedChoice> },
    /// A number; the best matching accepted answer counts.
    Numeric { answers: Vec<NumericAnswer> },
    /// A short text compared after normalisation (see [`crate::normalise`]).
    ShortText {
        answers: Vec<TextAnswer>,
        /// Compare letters' case as written (default: case-insensitive).
        #[serde(default, skip_serializing_if = "is_false")]
        case_sensitive: bool,
    },
}

impl QuestionKind {
    /// The name used in JSON and in errors.
    pub fn name(&self) -> &'static str {
        match self {
            QuestionKind::SingleChoice { .. } => "single_choice",
            QuestionKind::MultipleChoice { .. } => "multiple_choice",
            QuestionKind::Numeric { .. } => "numeric",
            QuestionKind::ShortText { .. } => "short_text",
        }
    }
}

/// A choice of a single-choice question.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Choice {
    pub text: String,
    #[serde(default)]
    pub correct: bool,
    /// Shown after submission to a student who picked this choice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<String>,
}

/// A choice of a multiple-choice question.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightedChoice {
    pub text: String,
    /// Fraction of the points that picking it adds (negative: takes away). -1 to 1; the
    /// positive weights add up to 1.
    pub weight: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<String>,
}

/// An accepted numeric answer: a value with a tolerance, or a range. Bounds are included.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumericAnswer {
    #[serde(flatten)]
    pub accept: NumericRange,
    /// Fraction of the points it earns: above 0, at most 1. Default 1.
    #[serde(default = "one")]
    pub weight: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<String>,
}

/// Which numbers a [`NumericAnswer`] accepts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum NumericRange {
    /// `|x - value| <= tolerance`.
    Tolerance {
        value: f64,
        #[serde(default)]
        tolerance: f64,
    },
    /// `min <= x <= max`.
    Range { min: f64, max: f64 },
}

impl NumericRange {
    /// The accepted interval, bounds included.
    pub fn bounds(&self) -> (f64, f64) {
        match *self {
            NumericRange::Tolerance { value, tolerance } => (value - tolerance, value + tolerance),
            NumericRange::Range { min, max } => (min, max),
        }
    }
}

/// An accepted short-text answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextAnswer {
    pub text: String,
    #[serde(default = "one")]
    pub weight: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<String>,
}

/// How close the positive weights of a multiple-choice question must add up to 1.
pub(crate) const WEIGHT_SLACK: f64 = 1e-3;

impl Quiz {
    /// Checks an authored quiz: texts present and within [`limits`], ids unique, every question
    /// answerable with full marks, numbers finite. The first problem found is returned.
    pub fn validate(&self) -> Result<(), QuizError> {
        use limits::*;
        if self.title.trim().is_empty() {
            return Err(QuizError::EmptyTitle);
        }
        if chars(&self.title) > TITLE_CHARS {
            return Err(QuizError::TitleTooLong { max: TITLE_CHARS });
        }
        if chars(&self.description) > DESCRIPTION_CHARS {
            return Err(QuizError::DescriptionTooLong {
                max: DESCRIPTION_CHARS,
            });
        }
        if self.settings.max_attempts == Some(0) {
            return Err(QuizError::ZeroAttempts);
        }
        if self.settings.time_limit_secs == Some(0) {
            return Err(QuizError::ZeroTimeLimit);
        }
        if self.questions.is_empty() {
            return Err(QuizError::NoQuestions);
        }
        if self.questions.len() > QUESTIONS {
            return Err(QuizError::TooManyQuestions { max: QUESTIONS });
        }
        for (i, q) in self.questions.iter().enumerate() {
            q.validate().map_err(|problem| QuizError::Question {
                question: q.id.clone(),
                problem,
            })?;
            if self.questions[..i].iter().any(|p| p.id == q.id) {
                return Err(QuizError::DuplicateQuestionId {
                    question: q.id.clone(),
                });
            }
        }
        Ok(())
    }

    /// The question with this id.
    pub fn question(&self, id: &str) -> Option<&Question> {
        self.questions.iter().find(|q| q.id == id)
    }

    /// Full marks for the whole quiz.
    pub fn max_score(&self) -> f64 {
        self.questions.iter().map(|q| q.points).sum()
    }
}

impl Question {
    /// Checks one question; [`Quiz::validate`] names it in the error.
    pub fn validate(&self) -> Result<(), QuestionProblem> {
        use QuestionProblem as P;
        use limits::*;
        let id_ok = !self.id.is_empty()
            && self.id.len() <= QUESTION_ID_CHARS
            && self
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !id_ok {
            return Err(P::BadId {
                max: QUESTION_ID_CHARS,
            });
        }
        if self.text.trim().is_empty() {
            return Err(P::EmptyText);
        }
        if chars(&self.text) > QUESTION_TEXT_CHARS {
            return Err(P::TextTooLong {
                max: QUESTION_TEXT_CHARS,
            });
        }
        if self
            .title
            .as_deref()
            .is_some_and(|t| chars(t) > TITLE_CHARS)
        {
            return Err(P::TitleTooLong { max: TITLE_CHARS });
        }
        if self
            .explanation
            .as_deref()
            .is_some_and(|t| chars(t) > EXPLANATION_CHARS)
        {
            return Err(P::ExplanationTooLong {
                max: EXPLANATION_CHARS,
            });
        }
        if !(self.points.is_finite() && self.points > 0.0 && self.points <= MAX_POINTS) {
            return Err(P::BadPoints { max: MAX_POINTS });
        }
        match &self.kind {
            QuestionKind::SingleChoice { choices } => {
                check_choices(choices.iter().map(|c| (&c.text, &c.feedback)))?;
                if !choices.iter().any(|c| c.correct) {
                    return Err(P::NoCorrectChoice);
                }
            }
            QuestionKind::MultipleChoice { choices } => {
                check_choices(choices.iter().map(|c| (&c.text, &c.feedback)))?;
                for (i, c) in choices.iter().enumerate() {
                    if !(c.weight.is_finite() && (-1.0..=1.0).contains(&c.weight)) {
                        return Err(P::BadWeight { choice: i });
                    }
                }
                let sum: f64 = choices.iter().map(|c| c.weight.max(0.0)).sum();
                if sum == 0.0 {
                    return Err(P::NoCorrectChoice);
                }
                if (sum - 1.0).abs() > WEIGHT_SLACK {
                    return Err(P::WeightsNotWhole { sum });
                }
            }
            QuestionKind::Numeric { answers } => {
                check_answers(answers.iter().map(|a| (a.weight, &a.feedback)))?;
                for (i, a) in answers.iter().enumerate() {
                    match a.accept {
                        NumericRange::Tolerance { value, tolerance } => {
                            if !(value.is_finite() && tolerance.is_finite()) {
                                return Err(P::NotFinite { answer: i });
                            }
                            if tolerance < 0.0 {
                                return Err(P::NegativeTolerance { answer: i });
                            }
                        }
                        NumericRange::Range { min, max } => {
                            if !(min.is_finite() && max.is_finite()) {
                                return Err(P::NotFinite { answer: i });
                            }
                            if min > max {
                                return Err(P::EmptyRange { answer: i });
                            }
                        }
                    }
                    let (lo, hi) = a.accept.bounds();
                    if !(lo.is_finite() && hi.is_finite()) {
                        return Err(P::NotFinite { answer: i });
                    }
                }
            }
            QuestionKind::ShortText { answers, .. } => {
                check_answers(answers.iter().map(|a| (a.weight, &a.feedback)))?;
                for (i, a) in answers.iter().enumerate() {
                    if a.text.trim().is_empty() {
                        return Err(P::EmptyAnswer { answer: i });
                    }
                    if chars(&a.text) > ANSWER_CHARS {
                        return Err(P::AnswerTooLong {
                            answer: i,
                            max: ANSWER_CHARS,
                        });
                    }
                }
            }
        }
        Ok(())
    }
}

fn check_choices<'a>(
    choices: impl ExactSizeIterator<Item = (&'a String, &'a Option<String>)> + Clone,
) -> Result<(), QuestionProblem> {
    use QuestionProblem as P;
    use limits::*;
    if choices.len() < 2 {
        return Err(P::TooFewChoices);
    }
    if choices.len() > CHOICES {
        return Err(P::TooManyChoices { max: CHOICES });
    }
    for (i, (text, feedback)) in choices.clone().enumerate() {
        if text.trim().is_empty() {
            return Err(P::EmptyChoice { choice: i });
        }
        if chars(text) > CHOICE_CHARS {
            return Err(P::ChoiceTooLong {
                choice: i,
                max: CHOICE_CHARS,
            });
        }
        if let Some(first) = choices.clone().take(i).position(|(t, _)| t == text) {
            return Err(P::DuplicateChoice { first, second: i });
        }
        check_feedback(feedback)?;
    }
    Ok(())
}

fn check_answers<'a>(
    answers: impl ExactSizeIterator<Item = (f64, &'a Option<String>)> + Clone,
) -> Result<(), QuestionProblem> {
    use QuestionProblem as P;
    if answers.len() == 0 {
        return Err(P::NoAnswers);
    }
    if answers.len() > limits::ANSWERS {
        return Err(P::TooManyAnswers {
            max: limits::ANSWERS,
        });
    }
    for (i, (weight, feedback)) in answers.clone().enumerate() {
        if !(weight.is_finite() && weight > 0.0 && weight <= 1.0) {
            return Err(P::BadAnswerWeight { answer: i });
        }
        check_feedback(feedback)?;
    }
    if !answers.clone().any(|(w, _)| w == 1.0) {
        return Err(P::NoFullMarkAnswer);
    }
    Ok(())
}

fn check_feedback(feedback: &Option<String>) -> Result<(), QuestionProblem> {
    match feedback {
        Some(f) if chars(f) > limits::FEEDBACK_CHARS => Err(QuestionProblem::FeedbackTooLong {
            max: limits::FEEDBACK_CHARS,
        }),
        _ => Ok(()),
    }
}

pub(crate) fn chars(s: &str) -> usize {
    s.chars().count()
}
