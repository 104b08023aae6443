//! One test per GIFT construct, on small examples written for these tests.
// 3.14 here is what a teacher types as a key, not an approximation of PI.
#![allow(clippy::approx_constant)]

use lectern_quiz::gift::{self, MAX_GIFT_BYTES};
use lectern_quiz::{
    Choice, GiftErrorKind, NumericAnswer, NumericRange, Question, QuestionKind, QuizError,
    TextAnswer, WeightedChoice,
};

fn one(text: &str) -> Question {
    let mut questions = gift::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
    assert_eq!(questions.len(), 1, "{questions:?}");
    questions.remove(0)
}

fn error(text: &str) -> (usize, GiftErrorKind) {
    let e = gift::parse(text).expect_err(text);
    (e.line, e.kind)
}

fn choice(text: &str, correct: bool, feedback: Option<&str>) -> Choice {
    Choice {
        text: text.into(),
        correct,
        feedback: feedback.map(Into::into),
    }
}

#[test]
fn single_choice_with_title_and_feedback() {
    let q = one(
        "::Capitals::Which city is the capital of Norway? {\n  =Oslo#Yes.\n  ~Bergen#West coast.\n  ~Trondheim\n}",
    );
    assert_eq!(q.id, "q1");
    assert_eq!(q.title.as_deref(), Some("Capitals"));
    assert_eq!(q.text, "Which city is the capital of Norway?");
    assert_eq!(q.points, 1.0);
    assert_eq!(
        q.kind,
        QuestionKind::SingleChoice {
            choices: vec![
                choice("Oslo", true, Some("Yes.")),
                choice("Bergen", false, Some("West coast.")),
                choice("Trondheim", false, None),
            ]
        }
    );
}

#[test]
fn several_fully_correct_choices_stay_single_choice() {
    let q = one("Pick a prime below 4 {=2 =3 ~4}");
    let QuestionKind::SingleChoice { choices } = q.kind else {
        panic!("{:?}", q.kind)
    };
    let correct: Vec<bool> = choices.iter().map(|c| c.correct).collect();
    assert_eq!(correct, [true, true, false]);
}

#[test]
fn weighted_answers_make_multiple_choice() {
    let q = one("Which are even? {~%50%2 ~%50%4 ~%-100%5#odd ~7}");
    assert_eq!(
        q.kind,
        QuestionKind::MultipleChoice {
            choices: vec![
                WeightedChoice {
                    text: "2".into(),
                    weight: 0.5,
                    feedback: None
                },
                WeightedChoice {
                    text: "4".into(),
                    weight: 0.5,
                    feedback: None
                },
                WeightedChoice {
                    text: "5".into(),
                    weight: -1.0,
                    feedback: Some("odd".into())
                },
                // Unweighted wrong answer: -1/k with k = 2 positive answers.
                WeightedChoice {
                    text: "7".into(),
                    weight: -0.5,
                    feedback: None
                },
            ]
        }
    );
}

#[test]
fn weights_that_do_not_add_up_are_an_error_naming_the_line() {
    let (line, kind) = error("// header\n\nWhich? {\n~%50%a\n~%20%b\n~c}");
    assert_eq!(line, 3);
    assert!(
        matches!(kind, GiftErrorKind::Invalid(QuizError::Question { ref question, .. }) if question == "q1"),
        "{kind:?}"
    );
}

#[test]
fn true_false_in_all_spellings() {
    for (block, truth) in [
        ("{TRUE}", true),
        ("{T}", true),
        ("{FALSE}", false),
        ("{F}", false),
        ("{true}", true),
    ] {
        let q = one(&format!("The sky is blue. {block}"));
        assert_eq!(
            q.kind,
            QuestionKind::SingleChoice {
                choices: vec![choice("True", truth, None), choice("False", !truth, None)]
            },
            "{block}"
        );
    }
}

#[test]
fn true_false_feedback_is_wrong_then_right() {
    let q = one("Water boils at 50 °C at sea level. {F#No, at 100 °C.#Right.}");
    assert_eq!(
        q.kind,
        QuestionKind::SingleChoice {
            choices: vec![
                choice("True", false, Some("No, at 100 °C.")),
                choice("False", true, Some("Right.")),
            ]
        }
    );
    let (line, kind) = error("x {T#a#b#c}");
    assert_eq!((line, kind), (1, GiftErrorKind::TrueFalseFeedback));
}

#[test]
fn short_answer_with_several_accepted_answers() {
    let q = one(
        "Name the author of Hamlet. {=Shakespeare =William Shakespeare#Full name. =%50%Shakspere}",
    );
    assert_eq!(
        q.kind,
        QuestionKind::ShortText {
            answers: vec![
                TextAnswer {
                    text: "Shakespeare".into(),
                    weight: 1.0,
                    feedback: None
                },
                TextAnswer {
                    text: "William Shakespeare".into(),
                    weight: 1.0,
                    feedback: Some("Full name.".into())
                },
                TextAnswer {
                    text: "Shakspere".into(),
                    weight: 0.5,
                    feedback: None
                },
            ],
            case_sensitive: false
        }
    );
}

fn numeric(q: &Question) -> &[NumericAnswer] {
    match &q.kind {
        QuestionKind::Numeric { answers } => answers,
        other => panic!("{other:?}"),
    }
}

#[test]
fn numeric_value_with_tolerance() {
    let q = one("Pi to two places? {#3.14:0.01}");
    assert_eq!(
        numeric(&q)[0].accept,
        NumericRange::Tolerance {
            value: 3.14,
            tolerance: 0.01
        }
    );
    let q = one("Two plus two? {#4}");
    assert_eq!(
        numeric(&q)[0].accept,
        NumericRange::Tolerance {
            value: 4.0,
            tolerance: 0.0
        }
    );
}

#[test]
fn numeric_range() {
    let q = one("A number from 1 to 2? {#1..2#Any in between.}");
    assert_eq!(
        numeric(&q),
        [NumericAnswer {
            accept: NumericRange::Range { min: 1.0, max: 2.0 },
            weight: 1.0,
            feedback: Some("Any in between.".into())
        }]
    );
    let q = one("Below zero? {#-5..-1}");
    assert_eq!(
        numeric(&q)[0].accept,
        NumericRange::Range {
            min: -5.0,
            max: -1.0
        }
    );
}

#[test]
fn numeric_several_answers_with_weights() {
    let q = one("Pi? {#\n=3.14:0.01#Good.\n=%50%3:0#Roughly.\n}");
    assert_eq!(
        numeric(&q),
        [
            NumericAnswer {
                accept: NumericRange::Tolerance {
                    value: 3.14,
                    tolerance: 0.01
                },
                weight: 1.0,
                feedback: Some("Good.".into())
            },
            NumericAnswer {
                accept: NumericRange::Tolerance {
                    value: 3.0,
                    tolerance: 0.0
                },
                weight: 0.5,
                feedback: Some("Roughly.".into())
            },
        ]
    );
}

#[test]
fn numeric_errors() {
    assert_eq!(error("x {#abc}").1, GiftErrorKind::BadNumber("abc".into()));
    assert_eq!(error("x {#inf}").1, GiftErrorKind::BadNumber("inf".into()));
    assert_eq!(
        error("x {#NaN:1}").1,
        GiftErrorKind::BadNumber("NaN".into())
    );
    assert!(matches!(error("x {#2..1}").1, GiftErrorKind::Invalid(_)));
    assert!(matches!(error("x {#3:-1}").1, GiftErrorKind::Invalid(_)));
    assert!(matches!(
        error("x {#3 ~4}").1,
        GiftErrorKind::Unsupported(_)
    ));
}

#[test]
fn general_feedback_is_the_explanation() {
    let q = one("Pick the vowel. {=a ~b ~c ####Vowels are a, e, i, o, u.}");
    assert_eq!(q.explanation.as_deref(), Some("Vowels are a, e, i, o, u."));
    let q = one("Pi? {#3.14:0.01####Pi is about 3.14159.}");
    assert_eq!(q.explanation.as_deref(), Some("Pi is about 3.14159."));
    assert_eq!(numeric(&q).len(), 1);
    let q = one("The sun is a star. {T####It is.}");
    assert_eq!(q.explanation.as_deref(), Some("It is."));
}

#[test]
fn comments_categories_and_blank_lines_separate_questions() {
    let text = "// A comment line\n$CATEGORY: $course$/Week 1\n\n\
                First? {T}\n\n\n\
                // another comment\n\
                Second? {=yes ~no}\n\
                \n\
                Third? {=x}\n";
    let questions = gift::parse(text).unwrap();
    let texts: Vec<&str> = questions.iter().map(|q| q.text.as_str()).collect();
    assert_eq!(texts, ["First?", "Second?", "Third?"]);
    let ids: Vec<&str> = questions.iter().map(|q| q.id.as_str()).collect();
    assert_eq!(ids, ["q1", "q2", "q3"]);
}

#[test]
fn escapes_are_text() {
    let q = one(
        r"::Set \:: notation::Is \{1\} a set with one element\: yes \= true\~ \# done? {=Yes\#1 ~No \\ never}",
    );
    assert_eq!(q.title.as_deref(), Some("Set :: notation"));
    assert_eq!(q.text, "Is {1} a set with one element: yes = true~ # done?");
    assert_eq!(
        q.kind,
        QuestionKind::SingleChoice {
            choices: vec![
                choice("Yes#1", true, None),
                choice(r"No \ never", false, None)
            ]
        }
    );
    let q = one(r"Line\nbreak {T}");
    assert_eq!(q.text, "Line\nbreak");
}

#[test]
fn missing_word_form_keeps_the_text_after_the_block() {
    let q = one("Paris is the {=capital ~largest village} of France.");
    assert_eq!(q.text, "Paris is the _____ of France.");
}

#[test]
fn format_markers_are_dropped() {
    let q = one("::T::[markdown]What is *two*? {#2}");
    assert_eq!(q.text, "What is *two*?");
}

#[test]
fn unsupported_constructs_name_their_line() {
    let (line, kind) = error("A? {T}\n\nMatch them. {\n=cat -> meow\n=dog -> woof\n}");
    assert_eq!(line, 4);
    assert_eq!(kind, GiftErrorKind::Unsupported("matching questions (->)"));
    let (line, kind) = error("A? {T}\n\n\nWrite an essay. {}");
    assert_eq!(line, 4);
    assert!(matches!(kind, GiftErrorKind::Unsupported(_)), "{kind:?}");
    let (line, kind) = error("A? {T}\n\nJust a description.");
    assert_eq!((line, kind), (3, GiftErrorKind::NoAnswerBlock));
}

#[test]
fn malformed_text_is_an_error_naming_the_line() {
    assert_eq!(error("Q {=a ~b").1, GiftErrorKind::UnclosedBlock);
    assert_eq!(error("::Title Q {T}").1, GiftErrorKind::UnclosedTitle);
    assert_eq!(error("Q {T} and {F}").1, GiftErrorKind::SecondBlock);
    assert_eq!(error("Q {stray =a ~b}").1, GiftErrorKind::StrayText);
    assert_eq!(error("Q {~%abc%a =b}").1, GiftErrorKind::BadWeight);
    assert_eq!(error("Q {~%50 a =b}").1, GiftErrorKind::BadWeight);
    assert_eq!(error("").1, GiftErrorKind::NoQuestions);
    assert_eq!(error("// only a comment\n").1, GiftErrorKind::NoQuestions);
    // A choice question without a correct answer.
    let (line, kind) = error("A? {T}\n\nB? {~x ~y}");
    assert_eq!(line, 3);
    assert!(
        matches!(kind, GiftErrorKind::Invalid(QuizError::Question { ref question, .. }) if question == "q2"),
        "{kind:?}"
    );
}

#[test]
fn limits_are_enforced() {
    let big = "x".repeat(MAX_GIFT_BYTES + 1);
    assert!(matches!(error(&big).1, GiftErrorKind::TooLong { .. }));
    let many = "Q? {T}\n\n".repeat(lectern_quiz::limits::QUESTIONS + 1);
    assert!(matches!(
        error(&many),
        (
            401,
            GiftErrorKind::Invalid(QuizError::TooManyQuestions { .. })
        )
    ));
}

#[test]
fn windows_line_endings_and_bom() {
    let questions = gift::parse("\u{feff}One? {T}\r\n\r\nTwo? {=a ~b}\r\n").unwrap();
    assert_eq!(questions.len(), 2);
    assert_eq!(questions[1].text, "Two?");
}

#[test]
fn imported_questions_make_a_valid_quiz() {
    let questions = gift::parse("A? {T}\n\nB? {#1..2}").unwrap();
    let quiz = lectern_quiz::Quiz {
        title: "Week 1".into(),
        description: String::new(),
        settings: Default::default(),
        questions,
    };
    quiz.validate().unwrap();
    let json = serde_json::to_string(&quiz).unwrap();
    let back: lectern_quiz::Quiz = serde_json::from_str(&json).unwrap();
    assert_eq!(back, quiz);
}

#[test]
fn the_gift_example_in_the_docs_imports() {
    let doc = include_str!("../../../docs/QUIZZES.md");
    let section = &doc[doc.find("## Importing GIFT").unwrap()..];
    let start = section.find("```\n").unwrap() + 4;
    let end = start + section[start..].find("```").unwrap();
    let questions = gift::parse(&section[start..end]).unwrap();
    assert_eq!(questions.len(), 9);
    assert_eq!(questions[0].title.as_deref(), Some("Capitals"));
    assert!(matches!(
        questions[1].kind,
        QuestionKind::MultipleChoice { .. }
    ));
}
