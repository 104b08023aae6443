//! A poll of the class: its question, whether it still takes answers, who answered what.
//!
//! The room keeps one poll at a time (the open one, or the last one). Every answer is counted;
//! who gave it is kept for the answer-once rule and the participant's own view, and shown to
//! staff only for a poll that is not anonymous.

use std::collections::HashMap;

use lectern_proto::{
    POLL_MAX_OPTION_CHARS, POLL_MAX_OPTIONS, POLL_MAX_QUESTION_CHARS, POLL_MIN_OPTIONS,
    ParticipantId, Poll, PollResults, PollVote,
};

use crate::error::PollProblem;

/// The room's current poll.
#[derive(Debug, Clone)]
pub(crate) struct LivePoll {
    pub poll: Poll,
    pub open: bool,
    pub shared: bool,
    counts: Vec<u32>,
    /// Each participant's choices, for answer-once and their own view; never sent to others
    /// for an anonymous poll.
    answers: HashMap<ParticipantId, Vec<u32>>,
    /// Named answers in the order given (empty for an anonymous poll).
    votes: Vec<PollVote>,
}

impl LivePoll {
    pub fn new(poll: Poll) -> LivePoll {
        LivePoll {
            counts: vec![0; poll.options.len()],
            poll,
            open: true,
            shared: false,
            answers: HashMap::new(),
            votes: Vec::new(),
        }
    }

    pub fn answer_of(&self, id: &ParticipantId) -> Option<&Vec<u32>> {
        self.answers.get(id)
    }

    pub fn has_answered(&self, id: &ParticipantId) -> bool {
        self.answers.contains_key(id)
    }

    /// Counts an answer (already checked with [`check_choices`]) and returns the named vote
    /// it adds, if the poll is not anonymous.
    pub fn record(
        &mut self,
        id: &ParticipantId,
        name: &str,
        choices: Vec<u32>,
    ) -> Option<PollVote> {
        for &c in &choices {
            if let Some(n) = self.counts.get_mut(c as usize) {
                *n += 1;
            }
        }
        self.answers.insert(id.clone(), choices.clone());
        if self.poll.anonymous {
            return None;
        }
        let vote = PollVote {
            participant_id: id.clone(),
            name: name.to_owned(),
            choices,
        };
        self.votes.push(vote.clone());
        Some(vote)
    }

    pub fn answered(&self) -> u32 {
        u32::try_from(self.answers.len()).unwrap_or(u32::MAX)
    }

    pub fn counts(&self) -> &[u32] {
        &self.counts
    }

    /// The results with the given votes (staff views pass what they may see).
    pub fn results(&self, votes: Vec<PollVote>) -> PollResults {
        PollResults {
            poll_id: self.poll.poll_id,
            counts: self.counts.clone(),
            answered: self.answered(),
            votes,
        }
    }

    /// Every named vote so far (none for an anonymous poll).
    pub fn all_votes(&self) -> Vec<PollVote> {
        self.votes.clone()
    }
}

/// A checked poll question and options: trimmed, within the limits, options distinct.
pub(crate) fn check_poll(
    question: &str,
    options: &[String],
) -> Result<(String, Vec<String>), PollProblem> {
    let question = question.trim();
    if question.is_empty() {
        return Err(PollProblem::EmptyQuestion);
    }
    if question.chars().count() > POLL_MAX_QUESTION_CHARS {
        return Err(PollProblem::QuestionTooLong);
    }
    if !(POLL_MIN_OPTIONS..=POLL_MAX_OPTIONS).contains(&options.len()) {
        return Err(PollProblem::OptionCount);
    }
    let mut checked: Vec<String> = Vec::with_capacity(options.len());
    for option in options {
        let option = option.trim();
        if option.is_empty() {
            return Err(PollProblem::EmptyOption);
        }
        if option.chars().count() > POLL_MAX_OPTION_CHARS {
            return Err(PollProblem::OptionTooLong);
        }
        if checked.iter().any(|o| o == option) {
            return Err(PollProblem::DuplicateOption);
        }
        checked.push(option.to_owned());
    }
    Ok((question.to_owned(), checked))
}

/// Checks an answer's choices against the poll and returns them ascending: at least one, each
/// an option index, none twice, exactly one for a single-choice poll.
pub(crate) fn check_choices(poll: &Poll, mut choices: Vec<u32>) -> Option<Vec<u32>> {
    choices.sort_unstable();
    let distinct = choices.windows(2).all(|w| w[0] != w[1]);
    let in_range = choices.iter().all(|&c| (c as usize) < poll.options.len());
    let count_ok = if poll.multiple {
        !choices.is_empty()
    } else {
        choices.len() == 1
    };
    (distinct && in_range && count_ok).then_some(choices)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poll(multiple: bool) -> Poll {
        Poll {
            poll_id: 1,
            question: "Q".into(),
            options: vec!["a".into(), "b".into(), "c".into()],
            multiple,
            anonymous: false,
            asked_by: ParticipantId::new("t"),
            started_at: 0,
        }
    }

    #[test]
    fn choices_must_fit_the_poll() {
        assert_eq!(check_choices(&poll(false), vec![2]), Some(vec![2]));
        assert_eq!(check_choices(&poll(false), vec![]), None);
        assert_eq!(check_choices(&poll(false), vec![0, 1]), None);
        assert_eq!(check_choices(&poll(false), vec![3]), None);
        assert_eq!(check_choices(&poll(true), vec![2, 0]), Some(vec![0, 2]));
        assert_eq!(check_choices(&poll(true), vec![1, 1]), None);
        assert_eq!(check_choices(&poll(true), vec![]), None);
        assert_eq!(check_choices(&poll(true), vec![u32::MAX]), None);
    }

    #[test]
    fn questions_and_options_are_trimmed_and_checked() {
        let opts = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            check_poll("  Why? ", &opts(&[" a", "b "])),
            Ok(("Why?".into(), opts(&["a", "b"])))
        );
        assert_eq!(
            check_poll(" ", &opts(&["a", "b"])),
            Err(PollProblem::EmptyQuestion)
        );
        let long = "x".repeat(POLL_MAX_QUESTION_CHARS + 1);
        assert_eq!(
            check_poll(&long, &opts(&["a", "b"])),
            Err(PollProblem::QuestionTooLong)
        );
        // The limit counts characters, not bytes.
        let accents = "é".repeat(POLL_MAX_QUESTION_CHARS);
        assert!(check_poll(&accents, &opts(&["a", "b"])).is_ok());
        assert_eq!(
            check_poll("Q", &opts(&["a"])),
            Err(PollProblem::OptionCount)
        );
        let eleven: Vec<String> = (0..11).map(|i| i.to_string()).collect();
        assert_eq!(check_poll("Q", &eleven), Err(PollProblem::OptionCount));
        assert_eq!(
            check_poll("Q", &opts(&["a", "  "])),
            Err(PollProblem::EmptyOption)
        );
        let long = "y".repeat(POLL_MAX_OPTION_CHARS + 1);
        assert_eq!(
            check_poll("Q", &opts(&["a", &long])),
            Err(PollProblem::OptionTooLong)
        );
        assert_eq!(
            check_poll("Q", &opts(&["a", " a "])),
            Err(PollProblem::DuplicateOption)
        );
    }
}
