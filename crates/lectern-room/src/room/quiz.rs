//! A quiz taken live in class: staff launch one of the course's published quizzes with a
//! duration (`quiz_launch`), everyone in the room is told (`quiz_live`, and the snapshot while
//! it runs), and it ends when staff end it (`quiz_end`), when its time is up, or when the class
//! ends (`quiz_ended`). One at a time per room.
//!
//! The room never sees a question or an answer: students take the quiz through the REST API,
//! which keeps an attempt started in the live window to `ends_at`. The driver looks the quiz
//! up before the room sees the request ([`crate::Input::QuizLaunch`]) and reports each
//! submission ([`crate::Input::QuizSubmitted`]); staff get the count as `quiz_progress`.

use std::collections::HashSet;

use lectern_proto::{
    LIVE_QUIZ_MAX_SECS, LIVE_QUIZ_MIN_SECS, LiveQuiz, QuizId, RoomEvent, ServerMessage, UnixMillis,
};

use super::{Handled, Reply, Request, Room};
use crate::{QuizUnavailable, RoomError};

/// The room's live quiz, or the last one (its submissions still count: the REST API accepts
/// them for a few seconds after `ends_at`).
#[derive(Debug, Clone)]
pub(crate) struct QuizRun {
    quiz: LiveQuiz,
    open: bool,
    /// Members who submitted an attempt, as the course knows them.
    submitted: HashSet<String>,
}

impl Room {
    /// Staff launch a quiz live. Refused for anyone but staff ([`RoomError::NotPermitted`]),
    /// while another quiz is live ([`RoomError::QuizAlreadyLive`]), with a duration out of
    /// range ([`RoomError::QuizDuration`]), or when the driver found no such published quiz in
    /// the course ([`RoomError::QuizUnavailable`]).
    pub(super) fn quiz_launch(
        &mut self,
        req: &Request,
        quiz_id: QuizId,
        duration_secs: u32,
        title: Result<String, QuizUnavailable>,
    ) -> Handled {
        if !self.actor(req).perms().moderate {
            return Err(RoomError::NotPermitted);
        }
        if self.live_quiz().is_some() {
            return Err(RoomError::QuizAlreadyLive);
        }
        if !(LIVE_QUIZ_MIN_SECS..=LIVE_QUIZ_MAX_SECS).contains(&duration_secs) {
            return Err(RoomError::QuizDuration);
        }
        let title = title.map_err(RoomError::QuizUnavailable)?;
        let quiz = LiveQuiz {
            quiz_id,
            title,
            launched_by: req.actor.clone(),
            launched_at: req.now,
            ends_at: req
                .now
                .saturating_add(u64::from(duration_secs).saturating_mul(1000)),
        };
        self.quiz = Some(QuizRun {
            quiz: quiz.clone(),
            open: true,
            submitted: HashSet::new(),
        });
        let seq = self.emit(req.now, RoomEvent::QuizLive { quiz }, None);
        self.send_quiz_progress(None);
        Reply::event(seq)
    }

    /// Staff end the live quiz early; another quiz, or none live, is
    /// [`RoomError::QuizNotLive`].
    pub(super) fn quiz_end(&mut self, req: &Request, quiz_id: QuizId) -> Handled {
        if self.live_quiz().is_none_or(|q| q.quiz_id != quiz_id) {
            return Err(RoomError::QuizNotLive);
        }
        Reply::event(self.end_quiz(req.now, Some(req)))
    }

    /// Closes the live quiz and returns the seq of `quiz_ended`. The caller checked it is live.
    fn end_quiz(&mut self, now: UnixMillis, req: Option<&Request>) -> u64 {
        let Some(run) = self.quiz.as_mut() else {
            return self.seq;
        };
        run.open = false;
        let event = RoomEvent::QuizEnded {
            quiz_id: run.quiz.quiz_id,
            by: req.map(|r| r.actor.clone()),
        };
        self.emit(now, event, None)
    }

    /// Time passed: a live quiz whose time is up ends.
    pub(super) fn expire_quiz(&mut self, now: UnixMillis) {
        if self.live_quiz().is_some_and(|q| q.ends_at <= now) {
            self.end_quiz(now, None);
        }
    }

    /// The class ended: a live quiz ends with it.
    pub(super) fn end_quiz_at_class_end(&mut self, now: UnixMillis) {
        if self.live_quiz().is_some() {
            self.end_quiz(now, None);
        }
    }

    /// A member submitted the room's current (or last) quiz: staff get the new count.
    pub(super) fn handle_quiz_submitted(&mut self, quiz_id: QuizId, member_id: String) {
        let Some(run) = self.quiz.as_mut().filter(|r| r.quiz.quiz_id == quiz_id) else {
            return;
        };
        if run.submitted.insert(member_id) {
            self.send_quiz_progress(None);
        }
    }

    /// `quiz_progress` to every staff connection, or to `conn` only (a staff member who just
    /// joined while a quiz is live).
    pub(super) fn send_quiz_progress(&mut self, conn: Option<crate::ConnId>) {
        let Some(run) = self.quiz.as_ref() else {
            return;
        };
        let message = ServerMessage::QuizProgress {
            quiz_id: run.quiz.quiz_id,
            submitted: u32::try_from(run.submitted.len()).unwrap_or(u32::MAX),
        };
        let to = match conn {
            Some(conn) => vec![conn],
            None => self.roster.recipients(|p| p.is_staff()),
        };
        if !to.is_empty() {
            self.send(to, None, message);
        }
    }

    /// After a join: staff get the live quiz's count.
    pub(super) fn quiz_progress_after_join(&mut self, conn: crate::ConnId, viewer_is_staff: bool) {
        if viewer_is_staff && self.live_quiz().is_some() {
            self.send_quiz_progress(Some(conn));
        }
    }

    /// The quiz live in this room now, if any.
    pub fn live_quiz(&self) -> Option<&LiveQuiz> {
        self.quiz.as_ref().filter(|r| r.open).map(|r| &r.quiz)
    }

    /// When the live quiz's time is up, for [`Room::poll_timeout`].
    pub(super) fn next_quiz_deadline(&self) -> Option<UnixMillis> {
        self.live_quiz().map(|q| q.ends_at)
    }
}
