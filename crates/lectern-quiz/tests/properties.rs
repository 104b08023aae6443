//! Property tests: numeric tolerances and their bounds, text normalisation, multiple-choice
//! scores, attempt limits, no keys in the student view, and no panics on hostile input.

use lectern_quiz::{
    Answer, AttemptError, Choice, NumericAnswer, NumericRange, Outcome, Question, QuestionAnswer,
    QuestionKind, Quiz, QuizSettings, StudentQuiz, TextAnswer, WeightedChoice, gift, grade,
    may_attempt,
};
use proptest::prelude::*;

fn quiz_of(questions: Vec<Question>) -> Quiz {
    Quiz {
        title: "Quiz".into(),
        description: String::new(),
        settings: QuizSettings::default(),
        questions,
    }
}

fn question(id: &str, points: f64, kind: QuestionKind) -> Question {
    Question {
        id: id.into(),
        title: None,
        text: "Question".into(),
        points,
        explanation: None,
        kind,
    }
}

fn grade_one(quiz: &Quiz, answer: Answer) -> lectern_quiz::GradedQuestion {
    let answers = [QuestionAnswer {
        question: quiz.questions[0].id.clone(),
        answer,
    }];
    grade(quiz, &answers).unwrap().questions.remove(0)
}

fn numeric_quiz(accept: NumericRange) -> Quiz {
    let quiz = quiz_of(vec![question(
        "n",
        1.0,
        QuestionKind::Numeric {
            answers: vec![NumericAnswer {
                accept,
                weight: 1.0,
                feedback: None,
            }],
        },
    )]);
    quiz.validate().unwrap();
    quiz
}

/// Values a teacher might key in: finite, moderate, often decimal fractions.
fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        -1e6..1e6f64,
        (-100_000i64..100_000).prop_map(|n| n as f64 / 100.0),
    ]
}

fn tolerance() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(0.0),
        0.0..1e3f64,
        (0i64..1000).prop_map(|n| n as f64 / 1000.0),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn numeric_inside_tolerance_and_its_bounds_is_correct(
        value in value(), tolerance in tolerance(), t in 0.0..=1.0f64,
    ) {
        let quiz = numeric_quiz(NumericRange::Tolerance { value, tolerance });
        for x in [value, value - tolerance, value + tolerance, value + (2.0 * t - 1.0) * tolerance] {
            let g = grade_one(&quiz, Answer::Numeric { value: x });
            prop_assert_eq!(g.outcome, Outcome::Correct, "{} ± {}: {}", value, tolerance, x);
            prop_assert_eq!(g.score, 1.0);
        }
    }

    #[test]
    fn numeric_outside_tolerance_is_wrong(
        value in value(), tolerance in tolerance(), beyond in 1e-6..1e3f64, above: bool,
    ) {
        let quiz = numeric_quiz(NumericRange::Tolerance { value, tolerance });
        // The slack is 1e-9 of the largest bound: step well past it.
        let scale = (value.abs() + tolerance).max(1.0);
        let step = tolerance + beyond * scale;
        let x = if above { value + step } else { value - step };
        let g = grade_one(&quiz, Answer::Numeric { value: x });
        prop_assert_eq!(g.outcome, Outcome::Wrong, "{} ± {}: {}", value, tolerance, x);
        prop_assert_eq!(g.score, 0.0);
    }

    #[test]
    fn numeric_range_includes_its_bounds_only(
        a in value(), b in value(), t in 0.0..=1.0f64, beyond in 1e-6..1e3f64,
    ) {
        let (min, max) = if a <= b { (a, b) } else { (b, a) };
        let quiz = numeric_quiz(NumericRange::Range { min, max });
        for x in [min, max, min + t * (max - min)] {
            prop_assert_eq!(grade_one(&quiz, Answer::Numeric { value: x }).outcome, Outcome::Correct);
        }
        let scale = min.abs().max(max.abs()).max(1.0);
        for x in [min - beyond * scale, max + beyond * scale] {
            prop_assert_eq!(grade_one(&quiz, Answer::Numeric { value: x }).outcome, Outcome::Wrong);
        }
    }
}

/// Spells `text` differently: random case, whitespace around and inside (where there is a space).
fn respell(text: &str, case: &[bool], pads: &[&str]) -> String {
    let mut out = String::from(pads[0]);
    for (i, ch) in text.chars().enumerate() {
        if ch == ' ' {
            out.push_str(pads[(i % (pads.len() - 1)) + 1]);
            if pads[(i % (pads.len() - 1)) + 1].is_empty() {
                out.push(' ');
            }
        } else if case[i % case.len()] {
            out.extend(ch.to_uppercase());
        } else {
            out.extend(ch.to_lowercase());
        }
    }
    out.push_str(pads[pads.len() - 1]);
    out
}

fn text_quiz(accepted: &str, case_sensitive: bool) -> Quiz {
    let quiz = quiz_of(vec![question(
        "t",
        1.0,
        QuestionKind::ShortText {
            answers: vec![TextAnswer {
                text: accepted.into(),
                weight: 1.0,
                feedback: None,
            }],
            case_sensitive,
        },
    )]);
    quiz.validate().unwrap();
    quiz
}

const WORDS: &str = "[a-zA-ZéÅß0-9]{1,8}( [a-zA-ZéÅß0-9]{1,8}){0,3}";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn case_and_whitespace_variants_of_an_accepted_answer_are_accepted(
        accepted in WORDS,
        case in proptest::collection::vec(any::<bool>(), 1..8),
        pads in proptest::collection::vec(prop_oneof![Just(""), Just(" "), Just("  "), Just("\t"), Just("\n "), Just("\u{a0}")], 3..6),
    ) {
        let quiz = text_quiz(&accepted, false);
        let typed = respell(&accepted, &case, &pads);
        let g = grade_one(&quiz, Answer::ShortText { text: typed.clone() });
        prop_assert_eq!(g.outcome, Outcome::Correct, "{:?} typed as {:?}", accepted, typed);
    }

    #[test]
    fn a_different_answer_is_not_accepted(accepted in WORDS, other in WORDS, case_sensitive: bool) {
        let normal = |s: &str| {
            let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
            // Case folding as documented: upper then lower case ("ß" and "ss" are the same).
            if case_sensitive { s } else { s.to_uppercase().to_lowercase() }
        };
        prop_assume!(normal(&accepted) != normal(&other));
        let quiz = text_quiz(&accepted, case_sensitive);
        let g = grade_one(&quiz, Answer::ShortText { text: other });
        prop_assert_eq!(g.outcome, Outcome::Wrong);
    }

    #[test]
    fn case_sensitive_questions_refuse_another_case(accepted in "[a-z]{1,8}( [a-z]{1,8}){0,2}") {
        let quiz = text_quiz(&accepted, true);
        let upper = accepted.to_uppercase();
        prop_assert_eq!(grade_one(&quiz, Answer::ShortText { text: upper }).outcome, Outcome::Wrong);
        let padded = format!("  {accepted} ");
        prop_assert_eq!(grade_one(&quiz, Answer::ShortText { text: padded }).outcome, Outcome::Correct);
    }
}

/// A valid multiple-choice question: 1..=4 positively weighted choices (adding up to 1), the
/// others negative or zero, in a shuffled order.
fn multiple_choice() -> impl Strategy<Value = (Vec<f64>, f64)> {
    (
        proptest::collection::vec(1u32..100, 1..=4),
        proptest::collection::vec(prop_oneof![Just(0.0), -1.0..-0.001f64], 1..=6),
        prop_oneof![Just(1.0), 0.5..100.0f64],
    )
        .prop_flat_map(|(parts, others, points)| {
            let total: u32 = parts.iter().sum();
            let mut weights: Vec<f64> = parts
                .iter()
                .map(|&p| f64::from(p) / f64::from(total))
                .chain(others)
                .collect();
            let n = weights.len();
            (Just(std::mem::take(&mut weights)), Just(points), Just(n))
        })
        .prop_flat_map(|(weights, points, n)| (Just(weights).prop_shuffle(), Just(points), Just(n)))
        .prop_map(|(weights, points, _)| (weights, points))
}

fn choice_quiz(weights: &[f64], points: f64) -> Quiz {
    let quiz = quiz_of(vec![question(
        "m",
        points,
        QuestionKind::MultipleChoice {
            choices: weights
                .iter()
                .enumerate()
                .map(|(i, &weight)| WeightedChoice {
                    text: format!("choice {i}"),
                    weight,
                    feedback: None,
                })
                .collect(),
        },
    )]);
    quiz.validate().unwrap();
    quiz
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn multiple_choice_scores_stay_within_zero_and_the_points(
        (weights, points) in multiple_choice(),
        picks in proptest::collection::vec(any::<bool>(), 10),
    ) {
        let quiz = choice_quiz(&weights, points);
        let picked: Vec<u32> = (0..weights.len() as u32).filter(|&i| picks[i as usize]).collect();
        let g = grade_one(&quiz, Answer::MultipleChoice { choices: picked.clone() });
        prop_assert!(g.score >= 0.0 && g.score <= points, "{} of {}", g.score, points);
        let full = weights.iter().enumerate().all(|(i, &w)| {
            let chosen = picked.contains(&(i as u32));
            if w > 0.0 { chosen } else { w == 0.0 || !chosen }
        });
        if full {
            prop_assert_eq!(g.score, points);
            prop_assert_eq!(g.outcome, Outcome::Correct);
        } else {
            prop_assert!(g.score < points, "{:?} picked {:?}", weights, picked);
            prop_assert_ne!(g.outcome, Outcome::Correct);
        }
    }

    #[test]
    fn the_correct_set_in_any_order_earns_exactly_full_marks((weights, points) in multiple_choice()) {
        let quiz = choice_quiz(&weights, points);
        let mut correct: Vec<u32> = (0..weights.len() as u32).filter(|&i| weights[i as usize] > 0.0).collect();
        correct.reverse();
        let g = grade_one(&quiz, Answer::MultipleChoice { choices: correct });
        prop_assert_eq!(g.score, points);
        prop_assert_eq!(g.outcome, Outcome::Correct);
    }

    #[test]
    fn attempt_limits(
        max in proptest::option::of(1u32..10), previous in 0u32..20,
        due in proptest::option::of(-1000i64..1000), now in -2000i64..2000,
    ) {
        let settings = QuizSettings { max_attempts: max, due_at: due, time_limit_secs: None, shuffle: false };
        let result = may_attempt(&settings, previous, now);
        let late = due.is_some_and(|d| now > d);
        let used_up = max.is_some_and(|m| previous >= m);
        match result {
            Ok(()) => prop_assert!(!late && !used_up),
            Err(AttemptError::PastDue { due_at }) => prop_assert!(late && Some(due_at) == due),
            Err(AttemptError::NoAttemptsLeft { max: m }) => prop_assert!(!late && used_up && Some(m) == max),
            Err(other) => prop_assert!(false, "{other:?}"),
        }
    }
}

/// A secret-looking token: keys, feedback and explanations are made of these, so a leak shows.
fn token() -> impl Strategy<Value = String> + Clone {
    "[a-z]{4,10}".prop_map(|s| format!("secret{s}"))
}

fn any_question() -> impl Strategy<Value = (Question, Vec<String>)> {
    let feedback = proptest::option::of(token());
    let kind = prop_oneof![
        (proptest::collection::vec(("[A-Za-z ]{1,12}", any::<bool>(), feedback.clone()), 2..6))
            .prop_map(|choices| QuestionKind::SingleChoice {
                choices: choices
                    .into_iter()
                    .enumerate()
                    .map(|(i, (text, correct, feedback))| Choice {
                        text: format!("{i} {text}"),
                        correct: correct || i == 0,
                        feedback
                    })
                    .collect(),
            }),
        (proptest::collection::vec(feedback.clone(), 2..6)).prop_map(|fs| {
            let n = fs.len();
            QuestionKind::MultipleChoice {
                choices: fs
                    .into_iter()
                    .enumerate()
                    .map(|(i, feedback)| WeightedChoice {
                        text: format!("option {i}"),
                        weight: if i == 0 { 1.0 } else { -1.0 / n as f64 },
                        feedback,
                    })
                    .collect(),
            }
        }),
        (value(), tolerance(), feedback.clone()).prop_map(|(value, tolerance, feedback)| {
            QuestionKind::Numeric {
                answers: vec![NumericAnswer {
                    accept: NumericRange::Tolerance { value, tolerance },
                    weight: 1.0,
                    feedback,
                }],
            }
        }),
        (
            proptest::collection::vec((token(), feedback), 1..4),
            any::<bool>()
        )
            .prop_map(|(answers, case_sensitive)| {
                QuestionKind::ShortText {
                    answers: answers
                        .into_iter()
                        .map(|(text, feedback)| TextAnswer {
                            text,
                            weight: 1.0,
                            feedback,
                        })
                        .collect(),
                    case_sensitive,
                }
            }),
    ];
    (
        kind,
        proptest::option::of(token()),
        proptest::option::of(token()),
        "Q[A-Za-z ?]{0,30}",
    )
        .prop_map(|(kind, title, explanation, text)| {
            let mut secrets: Vec<String> = title.iter().chain(&explanation).cloned().collect();
            match &kind {
                QuestionKind::SingleChoice { choices } => {
                    secrets.extend(choices.iter().filter_map(|c| c.feedback.clone()))
                }
                QuestionKind::MultipleChoice { choices } => {
                    secrets.extend(choices.iter().filter_map(|c| c.feedback.clone()))
                }
                QuestionKind::Numeric { answers } => {
                    secrets.extend(answers.iter().filter_map(|a| a.feedback.clone()))
                }
                QuestionKind::ShortText { answers, .. } => {
                    secrets.extend(answers.iter().map(|a| a.text.clone()));
                    secrets.extend(answers.iter().filter_map(|a| a.feedback.clone()));
                }
            }
            (
                Question {
                    id: "x".into(),
                    title,
                    text,
                    points: 1.0,
                    explanation,
                    kind,
                },
                secrets,
            )
        })
}

/// Every object key of a JSON value, recursively.
fn keys(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                out.push(k.clone());
                keys(v, out);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| keys(v, out)),
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_student_view_never_carries_a_key(
        questions in proptest::collection::vec(any_question(), 1..8),
        shuffle: bool, seed: u64,
        // Sometimes a visible text reuses a secret word: only then may it appear.
        echo in proptest::option::of(0usize..100),
    ) {
        let mut secrets = Vec::new();
        let mut qs = Vec::new();
        for (i, (mut q, s)) in questions.into_iter().enumerate() {
            q.id = format!("q{i}");
            secrets.extend(s);
            qs.push(q);
        }
        let mut quiz = quiz_of(qs);
        quiz.settings.shuffle = shuffle;
        if let (Some(k), false) = (echo, secrets.is_empty()) {
            quiz.description = format!("Hint: {}", secrets[k % secrets.len()]);
        }
        quiz.validate().unwrap();
        let view = StudentQuiz::new(&quiz, seed);
        let json = serde_json::to_value(&view).unwrap();
        let text = json.to_string();
        let mut visible: Vec<&str> = vec![&quiz.title, &quiz.description];
        for q in &quiz.questions {
            visible.push(&q.text);
            match &q.kind {
                QuestionKind::SingleChoice { choices } => visible.extend(choices.iter().map(|c| c.text.as_str())),
                QuestionKind::MultipleChoice { choices } => visible.extend(choices.iter().map(|c| c.text.as_str())),
                _ => {}
            }
        }
        for secret in &secrets {
            let shown = visible.iter().any(|v| v.contains(secret.as_str()));
            prop_assert!(shown || !text.contains(secret.as_str()), "{} leaked in {}", secret, text);
        }
        let mut all_keys = Vec::new();
        keys(&json, &mut all_keys);
        for k in all_keys {
            prop_assert!(
                ["title", "description", "max_attempts", "due_at", "time_limit_secs", "max_score",
                 "questions", "id", "text", "points", "type", "choices", "index"].contains(&k.as_str()),
                "unexpected field {} in the student view", k
            );
        }
    }
}

fn any_answer(ids: Vec<String>) -> impl Strategy<Value = QuestionAnswer> {
    let id = prop_oneof![proptest::sample::select(ids), ".{0,8}"];
    let number = prop_oneof![
        any::<f64>(),
        Just(f64::NAN),
        Just(f64::INFINITY),
        -10.0..10.0f64
    ];
    let answer = prop_oneof![
        prop_oneof![0u32..8, any::<u32>()].prop_map(|choice| Answer::SingleChoice { choice }),
        proptest::collection::vec(prop_oneof![0u32..8, any::<u32>()], 0..10)
            .prop_map(|choices| Answer::MultipleChoice { choices }),
        number.prop_map(|value| Answer::Numeric { value }),
        prop_oneof![".{0,40}", ".{490,520}"].prop_map(|text| Answer::ShortText { text }),
    ];
    (id, answer).prop_map(|(question, answer)| QuestionAnswer { question, answer })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn grading_arbitrary_answers_never_panics_and_stays_in_bounds(
        (quiz, answers) in proptest::collection::vec(any_question(), 1..6).prop_flat_map(|qs| {
            let quiz = quiz_of(qs.into_iter().enumerate().map(|(i, (mut q, _))| { q.id = format!("q{i}"); q }).collect());
            let ids: Vec<String> = quiz.questions.iter().map(|q| q.id.clone()).collect();
            (Just(quiz), proptest::collection::vec(any_answer(ids), 0..8))
        })
    ) {
        if let Ok(attempt) = grade(&quiz, &answers) {
            prop_assert!(attempt.score >= 0.0 && attempt.score <= attempt.max_score + 1e-9);
            for q in &attempt.questions {
                prop_assert!(q.score >= 0.0 && q.score <= q.max);
            }
        }
    }

    #[test]
    fn grading_an_unvalidated_quiz_never_panics(
        weights in proptest::collection::vec(any::<f64>(), 0..5),
        points in any::<f64>(),
        picks in proptest::collection::vec(any::<u32>(), 0..6),
        bounds in (any::<f64>(), any::<f64>()),
        value in any::<f64>(),
    ) {
        let quiz = quiz_of(vec![
            question("m", points, QuestionKind::MultipleChoice {
                choices: weights.iter().map(|&weight| WeightedChoice { text: "c".into(), weight, feedback: None }).collect(),
            }),
            question("n", points, QuestionKind::Numeric {
                answers: vec![NumericAnswer { accept: NumericRange::Range { min: bounds.0, max: bounds.1 }, weight: bounds.0, feedback: None }],
            }),
        ]);
        let _ = quiz.validate();
        let _ = grade(&quiz, &[
            QuestionAnswer { question: "m".into(), answer: Answer::MultipleChoice { choices: picks } },
            QuestionAnswer { question: "n".into(), answer: Answer::Numeric { value } },
        ]);
        let _ = StudentQuiz::new(&quiz, 1);
    }

    #[test]
    fn gift_parser_never_panics_on_arbitrary_text(text in ".{0,400}") {
        let _ = gift::parse(&text);
    }

    #[test]
    fn gift_parser_never_panics_on_gift_like_text(
        text in r"(::|\{|\}|=|~|#|####|%|-?[0-9]{1,3}|\.\.|:|->|\\|\\n|T|FALSE|[a-z ]{1,5}|\n|\n\n|//|\$CATEGORY: x\n|\[html\]){0,60}",
    ) {
        if let Ok(questions) = gift::parse(&text) {
            let quiz = quiz_of(questions);
            prop_assert!(quiz.validate().is_ok());
            let _ = grade(&quiz, &[]);
        }
    }
}
