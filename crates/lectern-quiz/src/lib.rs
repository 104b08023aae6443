//! Quizzes: the authored model with its keys, validation, the key-free view a student takes,
//! auto-grading with feedback, attempt rules, and import from Moodle's GIFT text format.
//!
//! Pure code like `lectern-schedule`: no I/O, no async, no clock, no randomness of its own.
//! Time (`now`, Unix seconds) and the shuffle seed are passed in. The server stores quizzes and
//! attempts and asks this crate what to show and what a submission is worth.
//!
//! # API contract
//! - [`Quiz`] is what staff author (its serde form is the JSON import/export format, described
//!   field by field in docs/QUIZZES.md). [`Quiz::validate`] checks it ([`QuizError`], naming the
//!   question); [`gift::parse`] reads GIFT text into validated questions ([`GiftError`] with the
//!   line).
//! - [`StudentQuiz::new`] is the only thing a student is sent before submitting. Its types have
//!   no field for keys, weights, tolerances, accepted answers, feedback or explanations, so no
//!   serialisation of it can leak them.
//! - [`grade`] checks a submitted answer set ([`validate_answers`], [`AnswerError`]; never
//!   panics on any input) and returns a [`GradedAttempt`]: per question the score, the outcome,
//!   the explanation, the feedback for what was answered and the [`Solution`]. Only this
//!   carries keys to a student, after submission.
//! - [`may_attempt`] and [`may_submit`] apply the attempt limit, the due date and the time
//!   limit ([`AttemptError`]).
//!
//! # Grading rules
//! - Single choice: full marks for a choice marked correct, none otherwise.
//! - Multiple choice (Moodle's "multiple answers" rule): each choice has a weight, a fraction
//!   of the points from -1 to 1, the positive ones adding up to 1. The score is the sum of the
//!   picked choices' weights, floored at 0 and capped at 1, times the points. Picking exactly
//!   the positively weighted choices earns full marks.
//! - Numeric: accepted intervals (value ± tolerance, or min..max), bounds included, with a
//!   relative slack of 1e-9 for decimal rounding; the best-weighted matching answer counts.
//! - Short text: compared after [`normalise`] (NFC, trimmed, inner whitespace collapsed,
//!   case folded unless the question is case-sensitive); the best-weighted match counts.

mod error;
pub mod gift;
mod grade;
mod model;
mod student;

pub use error::{AnswerError, AttemptError, GiftError, GiftErrorKind, QuestionProblem, QuizError};
pub use grade::{
    Answer, GradedAttempt, GradedQuestion, Outcome, QuestionAnswer, Solution, grade, may_attempt,
    may_submit, normalise, numeric_matches, validate_answers,
};
pub use model::{
    Choice, NumericAnswer, NumericRange, Question, QuestionKind, Quiz, QuizSettings, TextAnswer,
    WeightedChoice, limits,
};
pub use student::{StudentChoice, StudentKind, StudentQuestion, StudentQuiz};
