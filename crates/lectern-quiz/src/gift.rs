//! Moodle's GIFT text format, the common subset (docs/QUIZZES.md lists it): question titles,
//! single and multiple choice with per-answer feedback and `%n%` weights, true/false, short
//! answer, numeric (tolerance, range, several answers), general feedback, comments, escapes,
//! `$CATEGORY:` lines. What it cannot read is a [`GiftError`] naming the line.

use crate::error::{GiftError, GiftErrorKind, QuizError};
use crate::model::{
    Choice, NumericAnswer, NumericRange, Question, QuestionKind, TextAnswer, WeightedChoice, limits,
};

/// The largest GIFT text accepted, in bytes.
pub const MAX_GIFT_BYTES: usize = 1 << 20;

/// One character of a question, after escapes are resolved: `escaped` characters are text,
/// never syntax.
#[derive(Debug, Clone, Copy)]
struct Ch {
    c: char,
    escaped: bool,
    line: usize,
}

/// Reads GIFT text into questions, numbered `q1`, `q2`, … in the order of the text. Each
/// question is validated ([`Question::validate`]); build a [`crate::Quiz`] around them and
/// call [`crate::Quiz::validate`] for the quiz-level rules.
pub fn parse(text: &str) -> Result<Vec<Question>, GiftError> {
    let err = |line, kind| GiftError { line, kind };
    if text.len() > MAX_GIFT_BYTES {
        return Err(err(
            1,
            GiftErrorKind::TooLong {
                max: MAX_GIFT_BYTES,
            },
        ));
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut questions = Vec::new();
    for block in blocks(text) {
        let first_line = block.first().map_or(1, |c| c.line);
        if questions.len() == limits::QUESTIONS {
            return Err(err(
                first_line,
                GiftErrorKind::Invalid(QuizError::TooManyQuestions {
                    max: limits::QUESTIONS,
                }),
            ));
        }
        let id = format!("q{}", questions.len() + 1);
        let question = parse_question(&block, id)?;
        question.validate().map_err(|problem| {
            err(
                first_line,
                GiftErrorKind::Invalid(QuizError::Question {
                    question: question.id.clone(),
                    problem,
                }),
            )
        })?;
        questions.push(question);
    }
    if questions.is_empty() {
        return Err(err(1, GiftErrorKind::NoQuestions));
    }
    Ok(questions)
}

/// Splits the text into questions (separated by blank lines), dropping `//` comment lines and
/// `$CATEGORY:` lines, and resolves escapes.
fn blocks(text: &str) -> Vec<Vec<Ch>> {
    let mut blocks = Vec::new();
    let mut current: Vec<Ch> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let number = i + 1;
        let trimmed = line.trim();
        if trimmed.starts_with("//") {
            continue;
        }
        if trimmed.is_empty() || trimmed.starts_with("$CATEGORY:") {
            if !current.is_empty() {
                blocks.push(std::mem::take(&mut current));
            }
            continue;
        }
        if !current.is_empty() {
            current.push(Ch {
                c: '\n',
                escaped: false,
                line: number,
            });
        }
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            let ch = |c, escaped| Ch {
                c,
                escaped,
                line: number,
            };
            if c != '\\' {
                current.push(ch(c, false));
                continue;
            }
            match chars.clone().next() {
                Some(next @ ('~' | '=' | '#' | '{' | '}' | ':' | '\\')) => {
                    chars.next();
                    current.push(ch(next, true));
                }
                Some('n') => {
                    chars.next();
                    current.push(ch('\n', true));
                }
                // Any other backslash is just a backslash.
                _ => current.push(ch('\\', true)),
            }
        }
    }
    if !current.is_empty() {
        blocks.push(current);
    }
    blocks
}

fn is(ch: &Ch, c: char) -> bool {
    !ch.escaped && ch.c == c
}

/// The index of the first unescaped occurrence of `pattern` at or after `from`.
fn find(chars: &[Ch], from: usize, pattern: &str) -> Option<usize> {
    let pattern: Vec<char> = pattern.chars().collect();
    (from..chars.len()).find(|&i| {
        chars.len() - i >= pattern.len()
            && pattern.iter().zip(&chars[i..]).all(|(p, ch)| is(ch, *p))
    })
}

fn text_of(chars: &[Ch]) -> String {
    chars
        .iter()
        .map(|ch| ch.c)
        .collect::<String>()
        .trim()
        .to_owned()
}

fn skip_space(chars: &[Ch], mut i: usize) -> usize {
    while chars.get(i).is_some_and(|ch| ch.c.is_whitespace()) {
        i += 1;
    }
    i
}

fn line_at(chars: &[Ch], i: usize) -> usize {
    chars.get(i).or(chars.last()).map_or(1, |ch| ch.line)
}

fn parse_question(chars: &[Ch], id: String) -> Result<Question, GiftError> {
    let err = |i: usize, kind| GiftError {
        line: line_at(chars, i),
        kind,
    };
    let mut start = skip_space(chars, 0);
    let mut title = None;
    if find(chars, start, "::") == Some(start) {
        let end =
            find(chars, start + 2, "::").ok_or_else(|| err(start, GiftErrorKind::UnclosedTitle))?;
        let t = text_of(&chars[start + 2..end]);
        title = (!t.is_empty()).then_some(t);
        start = skip_space(chars, end + 2);
    }
    for marker in ["[html]", "[moodle]", "[plain]", "[markdown]"] {
        if find(chars, start, marker) == Some(start) {
            start += marker.len();
            break;
        }
    }
    let open = find(chars, start, "{").ok_or_else(|| err(start, GiftErrorKind::NoAnswerBlock))?;
    let close =
        find(chars, open + 1, "}").ok_or_else(|| err(open, GiftErrorKind::UnclosedBlock))?;
    if let Some(second) = find(chars, open + 1, "{") {
        return Err(err(second, GiftErrorKind::SecondBlock));
    }
    let before = text_of(&chars[start..open]);
    let after = text_of(&chars[close + 1..]);
    // Text after the block: Moodle's "missing word" form, the block stands for a blank.
    let text = match (before.is_empty(), after.is_empty()) {
        (_, true) => before,
        (true, false) => format!("_____ {after}"),
        (false, false) => format!("{before} _____ {after}"),
    };

    let mut block = &chars[open + 1..close];
    let mut explanation = None;
    if let Some(general) = find(block, 0, "####") {
        let t = text_of(&block[general + 4..]);
        explanation = (!t.is_empty()).then_some(t);
        block = &block[..general];
    }
    let kind = parse_block(block, open + 1, chars)?;
    Ok(Question {
        id,
        title,
        text,
        points: 1.0,
        explanation,
        kind,
    })
}

/// Reads an answer block. `offset` is the block's index in `all`, for error lines.
fn parse_block(block: &[Ch], offset: usize, all: &[Ch]) -> Result<QuestionKind, GiftError> {
    let err = |i: usize, kind| GiftError {
        line: line_at(all, offset + i),
        kind,
    };
    let first = skip_space(block, 0);
    let Some(head) = block.get(first) else {
        return Err(err(
            0,
            GiftErrorKind::Unsupported("essay questions (an empty block {})"),
        ));
    };
    if is(head, '#') {
        return parse_numeric(&block[first + 1..], offset + first + 1, all);
    }
    // True/false: T, TRUE, F or FALSE, then up to two feedback texts (for a wrong answer, then
    // for a right one).
    let keyword_end = find(block, first, "#").unwrap_or(block.len());
    let keyword = text_of(&block[first..keyword_end]).to_uppercase();
    if matches!(keyword.as_str(), "T" | "TRUE" | "F" | "FALSE") {
        let truth = keyword.starts_with('T');
        let mut feedback = Vec::new();
        let mut at = keyword_end;
        while at < block.len() {
            let next = find(block, at + 1, "#").unwrap_or(block.len());
            let t = text_of(&block[at + 1..next]);
            feedback.push((!t.is_empty()).then_some(t));
            at = next;
        }
        if feedback.len() > 2 {
            return Err(err(keyword_end, GiftErrorKind::TrueFalseFeedback));
        }
        let wrong_feedback = feedback.first().cloned().flatten();
        let right_feedback = feedback.get(1).cloned().flatten();
        let choice = |label: &str, correct: bool| Choice {
            text: label.to_owned(),
            correct,
            feedback: if correct {
                right_feedback.clone()
            } else {
                wrong_feedback.clone()
            },
        };
        return Ok(QuestionKind::SingleChoice {
            choices: vec![choice("True", truth), choice("False", !truth)],
        });
    }
    if let Some(arrow) = find(block, 0, "->") {
        return Err(err(
            arrow,
            GiftErrorKind::Unsupported("matching questions (->)"),
        ));
    }

    let answers = split_answers(block, first, &err, &['=', '~'])?;
    if answers.iter().all(|a| a.marker == '=') {
        return Ok(QuestionKind::ShortText {
            answers: answers
                .into_iter()
                .map(|a| TextAnswer {
                    text: a.text,
                    weight: a.weight.unwrap_or(1.0),
                    feedback: a.feedback,
                })
                .collect(),
            case_sensitive: false,
        });
    }
    let weight = |a: &RawAnswer| match (a.marker, a.weight) {
        (_, Some(w)) => Some(w),
        ('=', None) => Some(1.0),
        _ => None,
    };
    let single = answers
        .iter()
        .all(|a| matches!(weight(a), None | Some(0.0) | Some(1.0)));
    if single {
        return Ok(QuestionKind::SingleChoice {
            choices: answers
                .iter()
                .map(|a| Choice {
                    text: a.text.clone(),
                    correct: weight(a) == Some(1.0),
                    feedback: a.feedback.clone(),
                })
                .collect(),
        });
    }
    // Several answers allowed. An unweighted '~' answer is wrong and takes away 1/k of the
    // points (k: the number of positively weighted answers), so that ticking every box does not
    // earn full marks; `~%0%` writes a neutral one.
    let positive = answers
        .iter()
        .filter(|a| weight(a).is_some_and(|w| w > 0.0))
        .count()
        .max(1);
    Ok(QuestionKind::MultipleChoice {
        choices: answers
            .iter()
            .map(|a| WeightedChoice {
                text: a.text.clone(),
                weight: weight(a).unwrap_or(-1.0 / positive as f64),
                feedback: a.feedback.clone(),
            })
            .collect(),
    })
}

#[derive(Debug)]
struct RawAnswer {
    marker: char,
    /// The `%n%` weight as a fraction.
    weight: Option<f64>,
    text: String,
    feedback: Option<String>,
    /// Index of the marker in the block.
    at: usize,
}

/// Splits a block at its unescaped `markers` into answers: marker, optional `%n%` weight,
/// text, optional `#feedback`.
fn split_answers(
    block: &[Ch],
    first: usize,
    err: &dyn Fn(usize, GiftErrorKind) -> GiftError,
    markers: &[char],
) -> Result<Vec<RawAnswer>, GiftError> {
    let starts: Vec<usize> = (first..block.len())
        .filter(|&i| markers.iter().any(|m| is(&block[i], *m)))
        .collect();
    if starts.first() != Some(&first) {
        return Err(err(first, GiftErrorKind::StrayText));
    }
    let mut answers = Vec::with_capacity(starts.len());
    for (n, &at) in starts.iter().enumerate() {
        let end = starts.get(n + 1).copied().unwrap_or(block.len());
        let mut i = skip_space(block, at + 1);
        let mut weight = None;
        if block.get(i).is_some_and(|ch| is(ch, '%')) {
            let close =
                find(&block[..end], i + 1, "%").ok_or_else(|| err(i, GiftErrorKind::BadWeight))?;
            let percent: f64 = text_of(&block[i + 1..close])
                .parse()
                .map_err(|_| err(i, GiftErrorKind::BadWeight))?;
            if !percent.is_finite() {
                return Err(err(i, GiftErrorKind::BadWeight));
            }
            weight = Some(percent / 100.0);
            i = close + 1;
        }
        let (text_end, feedback) = match find(&block[..end], i, "#") {
            Some(hash) => {
                let f = text_of(&block[hash + 1..end]);
                (hash, (!f.is_empty()).then_some(f))
            }
            None => (end, None),
        };
        answers.push(RawAnswer {
            marker: block[at].c,
            weight,
            text: text_of(&block[i..text_end]),
            feedback,
            at,
        });
    }
    Ok(answers)
}

/// A numeric block after its leading `#`: `value`, `value:tolerance`, `min..max`, or a list
/// of `=` answers with optional weights and feedback.
fn parse_numeric(block: &[Ch], offset: usize, all: &[Ch]) -> Result<QuestionKind, GiftError> {
    let err = |i: usize, kind| GiftError {
        line: line_at(all, offset + i),
        kind,
    };
    let first = skip_space(block, 0);
    if let Some(tilde) = find(block, 0, "~") {
        return Err(err(
            tilde,
            GiftErrorKind::Unsupported("'~' answers in a numeric question"),
        ));
    }
    let raw = if block.get(first).is_some_and(|ch| is(ch, '=')) {
        split_answers(block, first, &err, &['='])?
    } else {
        let (end, feedback) = match find(block, first, "#") {
            Some(hash) => {
                let f = text_of(&block[hash + 1..]);
                (hash, (!f.is_empty()).then_some(f))
            }
            None => (block.len(), None),
        };
        vec![RawAnswer {
            marker: '=',
            weight: None,
            text: text_of(&block[first..end]),
            feedback,
            at: first,
        }]
    };
    let mut answers = Vec::with_capacity(raw.len());
    for a in raw {
        let number = |s: &str| -> Result<f64, GiftError> {
            s.trim()
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| err(a.at, GiftErrorKind::BadNumber(s.trim().to_owned())))
        };
        let accept = if let Some((min, max)) = a.text.split_once("..") {
            NumericRange::Range {
                min: number(min)?,
                max: number(max)?,
            }
        } else if let Some((value, tolerance)) = a.text.split_once(':') {
            NumericRange::Tolerance {
                value: number(value)?,
                tolerance: number(tolerance)?,
            }
        } else {
            NumericRange::Tolerance {
                value: number(&a.text)?,
                tolerance: 0.0,
            }
        };
        answers.push(NumericAnswer {
            accept,
            weight: a.weight.unwrap_or(1.0),
            feedback: a.feedback,
        });
    }
    Ok(QuestionKind::Numeric { answers })
}
