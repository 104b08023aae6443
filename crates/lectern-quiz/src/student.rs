//! What a student sees before submitting. These types have no field for a key, a weight, a
//! tolerance, an accepted answer, feedback, an explanation or the author's question title, so
//! serialising them cannot leak any of it. Keys only reach a student in a
//! [`crate::GradedAttempt`], after submission.

use serde::{Deserialize, Serialize};

use crate::model::{Question, QuestionKind, Quiz};

/// A quiz as shown to a student taking it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudentQuiz {
    pub title: String,
    pub description: String,
    pub max_attempts: Option<u32>,
    pub due_at: Option<i64>,
    pub time_limit_secs: Option<u32>,
    pub max_score: f64,
    pub questions: Vec<StudentQuestion>,
}

/// A question without its keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudentQuestion {
    pub id: String,
    pub text: String,
    pub points: f64,
    #[serde(flatten)]
    pub kind: StudentKind,
}

/// The kind of answer expected, and the choices to pick from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StudentKind {
    SingleChoice { choices: Vec<StudentChoice> },
    MultipleChoice { choices: Vec<StudentChoice> },
    Numeric,
    ShortText,
}

/// A choice label. `index` is its position in the authored quiz, which is what an answer names,
/// whatever order it is shown in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StudentChoice {
    pub index: u32,
    pub text: String,
}

impl StudentQuiz {
    /// The student's view of `quiz`. When the quiz shuffles, questions and choices are put in
    /// an order drawn from `seed` (the caller passes randomness in, e.g. per attempt, and keeps
    /// the seed to show the same order again); otherwise the authored order is kept.
    pub fn new(quiz: &Quiz, seed: u64) -> StudentQuiz {
        let mut rng = SplitMix64(seed);
        let mut questions: Vec<StudentQuestion> = quiz
            .questions
            .iter()
            .map(|q| student_question(q, quiz.settings.shuffle.then_some(&mut rng)))
            .collect();
        if quiz.settings.shuffle {
            shuffle(&mut questions, &mut rng);
        }
        StudentQuiz {
            title: quiz.title.clone(),
            description: quiz.description.clone(),
            max_attempts: quiz.settings.max_attempts,
            due_at: quiz.settings.due_at,
            time_limit_secs: quiz.settings.time_limit_secs,
            max_score: quiz.max_score(),
            questions,
        }
    }
}

fn student_question(q: &Question, rng: Option<&mut SplitMix64>) -> StudentQuestion {
    let labels = |texts: Vec<&String>| -> Vec<StudentChoice> {
        texts
            .into_iter()
            .enumerate()
            .map(|(i, t)| StudentChoice {
                index: u32::try_from(i).unwrap_or(u32::MAX),
                text: t.clone(),
            })
            .collect()
    };
    let mut kind = match &q.kind {
        QuestionKind::SingleChoice { choices } => StudentKind::SingleChoice {
            choices: labels(choices.iter().map(|c| &c.text).collect()),
        },
        QuestionKind::MultipleChoice { choices } => StudentKind::MultipleChoice {
            choices: labels(choices.iter().map(|c| &c.text).collect()),
        },
        QuestionKind::Numeric { .. } => StudentKind::Numeric,
        QuestionKind::ShortText { .. } => StudentKind::ShortText,
    };
    if let (
        Some(rng),
        StudentKind::SingleChoice { choices } | StudentKind::MultipleChoice { choices },
    ) = (rng, &mut kind)
    {
        shuffle(choices, rng);
    }
    StudentQuestion {
        id: q.id.clone(),
        text: q.text.clone(),
        points: q.points,
        kind,
    }
}

/// A small seeded generator (SplitMix64): enough to vary an order, no dependency, no I/O.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Fisher–Yates.
fn shuffle<T>(items: &mut [T], rng: &mut SplitMix64) {
    for i in (1..items.len()).rev() {
        let j = (rng.next() % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}
