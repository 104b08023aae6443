//! Typed errors: an authored quiz that is not valid, a submitted answer set that is not valid,
//! an attempt that is not allowed, and GIFT text that cannot be read.

use thiserror::Error;

/// Why an authored quiz is not valid. Errors about one question name it by its id.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum QuizError {
    #[error("the quiz has no title")]
    EmptyTitle,
    #[error("the title is longer than {max} characters")]
    TitleTooLong { max: usize },
    #[error("the description is longer than {max} characters")]
    DescriptionTooLong { max: usize },
    #[error("the quiz has no questions")]
    NoQuestions,
    #[error("the quiz has more than {max} questions")]
    TooManyQuestions { max: usize },
    #[error("max_attempts must be at least 1 (leave it out for unlimited attempts)")]
    ZeroAttempts,
    #[error("time_limit_secs must be at least 1 (leave it out for no limit)")]
    ZeroTimeLimit,
    #[error("two questions have the id {question:?}")]
    DuplicateQuestionId { question: String },
    #[error("question {question:?}: {problem}")]
    Question {
        question: String,
        problem: QuestionProblem,
    },
}

/// What is wrong with one authored question.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum QuestionProblem {
    #[error("the id must be 1 to {max} letters, digits, '-' or '_'")]
    BadId { max: usize },
    #[error("the question has no text")]
    EmptyText,
    #[error("the title is longer than {max} characters")]
    TitleTooLong { max: usize },
    #[error("the question text is longer than {max} characters")]
    TextTooLong { max: usize },
    #[error("the explanation is longer than {max} characters")]
    ExplanationTooLong { max: usize },
    #[error("points must be a number above 0 and at most {max}")]
    BadPoints { max: f64 },
    #[error("a choice question needs at least 2 choices")]
    TooFewChoices,
    #[error("more than {max} choices")]
    TooManyChoices { max: usize },
    #[error("choice {choice} has no text")]
    EmptyChoice { choice: usize },
    #[error("choice {choice} is longer than {max} characters")]
    ChoiceTooLong { choice: usize, max: usize },
    #[error("choices {first} and {second} have the same text")]
    DuplicateChoice { first: usize, second: usize },
    #[error("no choice is marked correct")]
    NoCorrectChoice,
    #[error("choice {choice}: the weight must be a number from -1 to 1")]
    BadWeight { choice: usize },
    #[error("the positive weights add up to {sum} instead of 1 (100%)")]
    WeightsNotWhole { sum: f64 },
    #[error("no accepted answer")]
    NoAnswers,
    #[error("more than {max} accepted answers")]
    TooManyAnswers { max: usize },
    #[error("no accepted answer is worth full marks (weight 1)")]
    NoFullMarkAnswer,
    #[error("answer {answer}: the weight must be above 0 and at most 1")]
    BadAnswerWeight { answer: usize },
    #[error("answer {answer} is empty")]
    EmptyAnswer { answer: usize },
    #[error("answer {answer} is longer than {max} characters")]
    AnswerTooLong { answer: usize, max: usize },
    #[error("answer {answer}: a number is not finite")]
    NotFinite { answer: usize },
    #[error("answer {answer}: the tolerance is negative")]
    NegativeTolerance { answer: usize },
    #[error("answer {answer}: the range's minimum is above its maximum")]
    EmptyRange { answer: usize },
    #[error("a feedback text is longer than {max} characters")]
    FeedbackTooLong { max: usize },
}

/// Why a submitted answer set cannot be graded. Nothing is graded when one answer is bad.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum AnswerError {
    #[error("more answers than the quiz has questions")]
    TooManyAnswers,
    #[error("no question {question:?} in this quiz")]
    UnknownQuestion { question: String },
    #[error("question {question:?} is answered twice")]
    DuplicateAnswer { question: String },
    #[error("question {question:?} expects a {expected} answer")]
    WrongAnswerType {
        question: String,
        expected: &'static str,
    },
    #[error("question {question:?} has no choice {choice}")]
    ChoiceOutOfRange { question: String, choice: u32 },
    #[error("question {question:?}: choice {choice} is given twice")]
    DuplicateChoice { question: String, choice: u32 },
    #[error("question {question:?}: the number is not finite")]
    NotFinite { question: String },
    #[error("question {question:?}: the answer is longer than {max} characters")]
    TextTooLong { question: String, max: usize },
}

/// Why a student may not start (or submit) an attempt now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AttemptError {
    #[error("all {max} attempts are used")]
    NoAttemptsLeft { max: u32 },
    #[error("the quiz was due at {due_at} (Unix seconds)")]
    PastDue { due_at: i64 },
    #[error("the time limit of {limit_secs} s is over")]
    TimeUp { limit_secs: u32 },
}

/// GIFT text that cannot be imported, with the 1-based line it concerns.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("line {line}: {kind}")]
pub struct GiftError {
    pub line: usize,
    pub kind: GiftErrorKind,
}

/// What went wrong while reading GIFT.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum GiftErrorKind {
    #[error("the text is longer than {max} bytes")]
    TooLong { max: usize },
    #[error("no questions in the text")]
    NoQuestions,
    #[error("a question title opened with '::' is not closed")]
    UnclosedTitle,
    #[error("text without an answer block {{...}} (descriptions are not supported)")]
    NoAnswerBlock,
    #[error("an answer block '{{' is not closed with '}}'")]
    UnclosedBlock,
    #[error("more than one answer block in a question")]
    SecondBlock,
    #[error("not supported: {0}")]
    Unsupported(&'static str),
    #[error("text before the first '=' or '~' answer in the block")]
    StrayText,
    #[error("a '%' answer weight is not closed or not a number")]
    BadWeight,
    #[error("{0:?} is not a finite number")]
    BadNumber(String),
    #[error("a true/false block may carry at most two feedback texts")]
    TrueFalseFeedback,
    #[error("{0}")]
    Invalid(QuizError),
}
