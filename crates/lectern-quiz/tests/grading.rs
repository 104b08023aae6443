//! Grading, answer validation, attempt rules and the student view on hand-written quizzes.
// 3.14 here is what a teacher types as a key, not an approximation of PI.
#![allow(clippy::approx_constant)]

use lectern_quiz::{
    Answer, AnswerError, AttemptError, Choice, NumericAnswer, NumericRange, Outcome, Question,
    QuestionAnswer, QuestionKind, QuestionProblem, Quiz, QuizError, QuizSettings, Solution,
    StudentKind, StudentQuiz, TextAnswer, WeightedChoice, grade, may_attempt, may_submit,
    normalise,
};

fn question(id: &str, kind: QuestionKind) -> Question {
    Question {
        id: id.into(),
        title: None,
        text: format!("Question {id}"),
        points: 2.0,
        explanation: Some(format!("Why {id}")),
        kind,
    }
}

fn sample() -> Quiz {
    Quiz {
        title: "Week 1".into(),
        description: "Warm-up".into(),
        settings: QuizSettings::default(),
        questions: vec![
            question(
                "single",
                QuestionKind::SingleChoice {
                    choices: vec![
                        Choice {
                            text: "Oslo".into(),
                            correct: true,
                            feedback: Some("Yes".into()),
                        },
                        Choice {
                            text: "Bergen".into(),
                            correct: false,
                            feedback: Some("No".into()),
                        },
                    ],
                },
            ),
            question(
                "multi",
                QuestionKind::MultipleChoice {
                    choices: vec![
                        WeightedChoice {
                            text: "2".into(),
                            weight: 0.5,
                            feedback: None,
                        },
                        WeightedChoice {
                            text: "4".into(),
                            weight: 0.5,
                            feedback: None,
                        },
                        WeightedChoice {
                            text: "5".into(),
                            weight: -1.0,
                            feedback: Some("5 is odd".into()),
                        },
                        WeightedChoice {
                            text: "maybe".into(),
                            weight: 0.0,
                            feedback: None,
                        },
                    ],
                },
            ),
            question(
                "pi",
                QuestionKind::Numeric {
                    answers: vec![
                        NumericAnswer {
                            accept: NumericRange::Tolerance {
                                value: 3.14,
                                tolerance: 0.01,
                            },
                            weight: 1.0,
                            feedback: Some("Good".into()),
                        },
                        NumericAnswer {
                            accept: NumericRange::Range { min: 3.0, max: 3.5 },
                            weight: 0.5,
                            feedback: Some("Roughly".into()),
                        },
                    ],
                },
            ),
            question(
                "author",
                QuestionKind::ShortText {
                    answers: vec![TextAnswer {
                        text: "William Shakespeare".into(),
                        weight: 1.0,
                        feedback: None,
                    }],
                    case_sensitive: false,
                },
            ),
        ],
    }
}

fn qa(question: &str, answer: Answer) -> QuestionAnswer {
    QuestionAnswer {
        question: question.into(),
        answer,
    }
}

fn graded_one(answer: QuestionAnswer) -> lectern_quiz::GradedQuestion {
    let quiz = sample();
    quiz.validate().unwrap();
    let id = answer.question.clone();
    let attempt = grade(&quiz, &[answer]).unwrap();
    attempt
        .questions
        .into_iter()
        .find(|q| q.question == id)
        .unwrap()
}

#[test]
fn single_choice_right_and_wrong_with_feedback_and_solution() {
    let g = graded_one(qa("single", Answer::SingleChoice { choice: 0 }));
    assert_eq!((g.score, g.max, g.outcome), (2.0, 2.0, Outcome::Correct));
    assert_eq!(g.feedback, ["Yes"]);
    assert_eq!(g.explanation.as_deref(), Some("Why single"));
    assert_eq!(g.solution, Solution::SingleChoice { correct: vec![0] });
    let g = graded_one(qa("single", Answer::SingleChoice { choice: 1 }));
    assert_eq!((g.score, g.outcome), (0.0, Outcome::Wrong));
    assert_eq!(g.feedback, ["No"]);
}

#[test]
fn multiple_choice_partial_credit_floored_at_zero() {
    let cases: [(&[u32], f64, Outcome); 6] = [
        (&[0, 1], 2.0, Outcome::Correct),
        (&[1, 0, 3], 2.0, Outcome::Correct),
        (&[0], 1.0, Outcome::Partial),
        (&[0, 1, 2], 0.0, Outcome::Wrong),
        (&[2], 0.0, Outcome::Wrong),
        (&[], 0.0, Outcome::Wrong),
    ];
    for (picked, score, outcome) in cases {
        let g = graded_one(qa(
            "multi",
            Answer::MultipleChoice {
                choices: picked.to_vec(),
            },
        ));
        assert_eq!((g.score, g.outcome), (score, outcome), "{picked:?}");
    }
    let g = graded_one(qa("multi", Answer::MultipleChoice { choices: vec![2] }));
    assert_eq!(g.feedback, ["5 is odd"]);
    assert_eq!(
        g.solution,
        Solution::MultipleChoice {
            correct: vec![0, 1]
        }
    );
}

#[test]
fn numeric_tolerance_bounds_and_partial_ranges() {
    for (value, score, outcome) in [
        (3.14, 2.0, Outcome::Correct),
        // 3.15 - 3.14 is a little above 0.01 in binary: the bound still counts.
        (3.15, 2.0, Outcome::Correct),
        (3.13, 2.0, Outcome::Correct),
        (3.2, 1.0, Outcome::Partial),
        (3.5, 1.0, Outcome::Partial),
        (3.6, 0.0, Outcome::Wrong),
        (-3.14, 0.0, Outcome::Wrong),
    ] {
        let g = graded_one(qa("pi", Answer::Numeric { value }));
        assert_eq!((g.score, g.outcome), (score, outcome), "{value}");
    }
    let g = graded_one(qa("pi", Answer::Numeric { value: 3.141 }));
    assert_eq!(g.feedback, ["Good"]);
}

#[test]
fn short_text_is_normalised() {
    for text in [
        "William Shakespeare",
        "  william   SHAKESPEARE\n",
        "William\tShakespeare",
    ] {
        let g = graded_one(qa("author", Answer::ShortText { text: text.into() }));
        assert_eq!(g.outcome, Outcome::Correct, "{text:?}");
    }
    for text in ["Shakespeare", "WilliamShakespeare", ""] {
        let g = graded_one(qa("author", Answer::ShortText { text: text.into() }));
        assert_eq!(g.outcome, Outcome::Wrong, "{text:?}");
    }
    // NFC: a precomposed letter matches its decomposed spelling.
    assert_eq!(
        normalise("Caf\u{e9}", false),
        normalise("cafe\u{301}", false)
    );
    assert_eq!(normalise(" A  b ", true), "A b");
}

#[test]
fn unanswered_questions_score_zero() {
    let quiz = sample();
    let attempt = grade(&quiz, &[]).unwrap();
    assert_eq!((attempt.score, attempt.max_score), (0.0, 8.0));
    assert!(
        attempt
            .questions
            .iter()
            .all(|q| q.outcome == Outcome::Unanswered)
    );
    let all = [
        qa("single", Answer::SingleChoice { choice: 0 }),
        qa("multi", Answer::MultipleChoice { choices: vec![0] }),
        qa("pi", Answer::Numeric { value: 3.14 }),
        qa(
            "author",
            Answer::ShortText {
                text: "william shakespeare".into(),
            },
        ),
    ];
    assert_eq!(grade(&quiz, &all).unwrap().score, 7.0);
}

#[test]
fn bad_answer_sets_are_typed_errors() {
    let quiz = sample();
    let err = |answers: &[QuestionAnswer]| grade(&quiz, answers).unwrap_err();
    assert_eq!(
        err(&[qa("nope", Answer::Numeric { value: 1.0 })]),
        AnswerError::UnknownQuestion {
            question: "nope".into()
        }
    );
    assert_eq!(
        err(&[
            qa("pi", Answer::Numeric { value: 1.0 }),
            qa("pi", Answer::Numeric { value: 2.0 })
        ]),
        AnswerError::DuplicateAnswer {
            question: "pi".into()
        }
    );
    assert_eq!(
        err(&[qa("pi", Answer::SingleChoice { choice: 0 })]),
        AnswerError::WrongAnswerType {
            question: "pi".into(),
            expected: "numeric"
        }
    );
    assert_eq!(
        err(&[qa("single", Answer::SingleChoice { choice: 2 })]),
        AnswerError::ChoiceOutOfRange {
            question: "single".into(),
            choice: 2
        }
    );
    assert_eq!(
        err(&[qa(
            "multi",
            Answer::MultipleChoice {
                choices: vec![1, 1]
            }
        )]),
        AnswerError::DuplicateChoice {
            question: "multi".into(),
            choice: 1
        }
    );
    for value in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        assert_eq!(
            err(&[qa("pi", Answer::Numeric { value })]),
            AnswerError::NotFinite {
                question: "pi".into()
            }
        );
    }
    assert!(matches!(
        err(&[qa(
            "author",
            Answer::ShortText {
                text: "é".repeat(501)
            }
        )]),
        AnswerError::TextTooLong { .. }
    ));
    let five: Vec<QuestionAnswer> = (0..5)
        .map(|_| qa("pi", Answer::Numeric { value: 1.0 }))
        .collect();
    assert_eq!(err(&five), AnswerError::TooManyAnswers);
}

#[test]
fn authoring_errors_name_the_question() {
    let mut quiz = sample();
    quiz.validate().unwrap();
    let check = |quiz: &Quiz| quiz.validate().unwrap_err();

    let mut q = quiz.clone();
    q.title = "  ".into();
    assert_eq!(check(&q), QuizError::EmptyTitle);
    q = quiz.clone();
    q.questions.clear();
    assert_eq!(check(&q), QuizError::NoQuestions);
    q = quiz.clone();
    q.settings.max_attempts = Some(0);
    assert_eq!(check(&q), QuizError::ZeroAttempts);
    q = quiz.clone();
    q.questions[1].id = "single".into();
    assert_eq!(
        check(&q),
        QuizError::DuplicateQuestionId {
            question: "single".into()
        }
    );
    let problem = |q: &Quiz| match check(q) {
        QuizError::Question { question, problem } => (question, problem),
        other => panic!("{other:?}"),
    };
    q = quiz.clone();
    if let QuestionKind::SingleChoice { choices } = &mut q.questions[0].kind {
        choices[0].correct = false;
    }
    assert_eq!(
        problem(&q),
        ("single".into(), QuestionProblem::NoCorrectChoice)
    );
    q = quiz.clone();
    if let QuestionKind::Numeric { answers } = &mut q.questions[2].kind {
        answers[0].accept = NumericRange::Tolerance {
            value: 1.0,
            tolerance: -0.1,
        };
    }
    assert_eq!(
        problem(&q),
        (
            "pi".into(),
            QuestionProblem::NegativeTolerance { answer: 0 }
        )
    );
    q = quiz.clone();
    if let QuestionKind::MultipleChoice { choices } = &mut q.questions[1].kind {
        choices[0].weight = 0.3;
    }
    assert!(matches!(
        problem(&q).1,
        QuestionProblem::WeightsNotWhole { .. }
    ));
    q = quiz.clone();
    q.questions[3].text = "x".repeat(5001);
    assert_eq!(
        problem(&q),
        ("author".into(), QuestionProblem::TextTooLong { max: 5000 })
    );
    q = quiz.clone();
    if let QuestionKind::SingleChoice { choices } = &mut q.questions[0].kind {
        for i in 0..20 {
            choices.push(Choice {
                text: format!("c{i}"),
                correct: false,
                feedback: None,
            });
        }
    }
    assert_eq!(
        problem(&q),
        ("single".into(), QuestionProblem::TooManyChoices { max: 20 })
    );
    quiz.questions[0].id = "has space".into();
    assert!(matches!(problem(&quiz).1, QuestionProblem::BadId { .. }));
}

#[test]
fn attempt_rules() {
    let settings = QuizSettings {
        max_attempts: Some(2),
        due_at: Some(1_000),
        time_limit_secs: Some(600),
        shuffle: false,
    };
    assert_eq!(may_attempt(&settings, 0, 999), Ok(()));
    assert_eq!(may_attempt(&settings, 1, 1_000), Ok(()));
    assert_eq!(
        may_attempt(&settings, 2, 500),
        Err(AttemptError::NoAttemptsLeft { max: 2 })
    );
    assert_eq!(
        may_attempt(&settings, 0, 1_001),
        Err(AttemptError::PastDue { due_at: 1_000 })
    );
    assert_eq!(
        may_attempt(&QuizSettings::default(), u32::MAX, i64::MAX),
        Ok(())
    );
    assert_eq!(may_submit(&settings, 100, 700), Ok(()));
    assert_eq!(
        may_submit(&settings, 100, 701),
        Err(AttemptError::TimeUp { limit_secs: 600 })
    );
    assert_eq!(
        may_submit(&settings, i64::MIN, i64::MAX),
        Err(AttemptError::PastDue { due_at: 1_000 })
    );
}

#[test]
fn student_view_has_labels_and_no_keys() {
    let quiz = sample();
    let view = StudentQuiz::new(&quiz, 7);
    let json = serde_json::to_value(&view).unwrap();
    assert_eq!(
        json["questions"][0],
        serde_json::json!({
            "id": "single", "text": "Question single", "points": 2.0, "type": "single_choice",
            "choices": [{"index": 0, "text": "Oslo"}, {"index": 1, "text": "Bergen"}]
        })
    );
    assert_eq!(
        json["questions"][2],
        serde_json::json!({"id": "pi", "text": "Question pi", "points": 2.0, "type": "numeric"})
    );
    assert_eq!(json["max_score"], 8.0);
    let text = json.to_string();
    for secret in [
        "Why", "Yes", "5 is odd", "Good", "William", "weight", "correct",
    ] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
}

#[test]
fn shuffled_views_keep_indexes_and_repeat_with_the_seed() {
    let mut quiz = sample();
    quiz.settings.shuffle = true;
    let a = StudentQuiz::new(&quiz, 42);
    assert_eq!(a, StudentQuiz::new(&quiz, 42));
    let orders: std::collections::BTreeSet<Vec<String>> = (0..20)
        .map(|seed| {
            StudentQuiz::new(&quiz, seed)
                .questions
                .into_iter()
                .map(|q| q.id)
                .collect()
        })
        .collect();
    assert!(orders.len() > 1, "shuffle never changed the order");
    for q in &a.questions {
        if let StudentKind::MultipleChoice { choices } = &q.kind {
            let mut indexes: Vec<u32> = choices.iter().map(|c| c.index).collect();
            indexes.sort_unstable();
            assert_eq!(indexes, [0, 1, 2, 3]);
            for c in choices {
                let label = ["2", "4", "5", "maybe"][c.index as usize];
                assert_eq!(c.text, label);
            }
        }
    }
}

#[test]
fn the_json_example_in_the_docs_is_a_valid_quiz() {
    let doc = include_str!("../../../docs/QUIZZES.md");
    let start = doc.find("```json\n").expect("a json block") + "```json\n".len();
    let end = start + doc[start..].find("```").unwrap();
    let quiz: Quiz = serde_json::from_str(&doc[start..end]).unwrap();
    quiz.validate().unwrap();
    assert_eq!(quiz.questions.len(), 4);
    let back = serde_json::to_value(&quiz).unwrap();
    let again: Quiz = serde_json::from_value(back).unwrap();
    assert_eq!(again, quiz);
}

#[test]
fn case_folding_matches_sharp_s_and_final_sigma() {
    assert_eq!(normalise("Straße", false), normalise("STRASSE", false));
    assert_eq!(normalise("ΟΔΟΣ", false), normalise("οδος", false));
    assert_eq!(normalise("οδος", false), normalise("οδοσ", false));
    assert_ne!(normalise("Straße", true), normalise("STRASSE", true));
}

#[test]
fn submissions_and_results_in_json() {
    let quiz = sample();
    let answers: Vec<QuestionAnswer> = serde_json::from_str(
        r#"[{"question": "single", "type": "single_choice", "choice": 0},
            {"question": "multi", "type": "multiple_choice", "choices": [0, 1]},
            {"question": "pi", "type": "numeric", "value": 3},
            {"question": "author", "type": "short_text", "text": " william shakespeare"}]"#,
    )
    .unwrap();
    let attempt = grade(&quiz, &answers).unwrap();
    assert_eq!(attempt.score, 7.0);
    let json = serde_json::to_value(&attempt).unwrap();
    assert_eq!(
        json["questions"][2],
        serde_json::json!({
            "question": "pi", "score": 1.0, "max": 2.0, "outcome": "partial",
            "explanation": "Why pi", "feedback": ["Roughly"],
            "solution": {"type": "numeric", "accepted": [{"value": 3.14, "tolerance": 0.01}]}
        })
    );
    // A number sent as a string is refused when decoding, before grading.
    assert!(
        serde_json::from_str::<QuestionAnswer>(
            r#"{"question": "pi", "type": "numeric", "value": "3"}"#
        )
        .is_err()
    );
}
