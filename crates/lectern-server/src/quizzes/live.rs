//! Quizzes launched live in class (`quiz_launch`, docs/PROTOCOL.md "Live quizzes"): the live
//! windows the attempt rules need, shared between the room tasks (which record them) and the
//! REST API (which caps an attempt started in a window at its end, and tells the room about
//! each submission).
//!
//! The windows are kept in memory for as long as the server runs (a few numbers each); after a
//! restart an attempt started in an earlier window follows the quiz's own rules again.

use std::collections::HashMap;
use std::sync::Mutex;

use lectern_proto::{LiveQuiz, QuizId, RoomId, UnixMillis};

/// One run of a quiz live in a room.
#[derive(Debug, Clone)]
struct Window {
    room: RoomId,
    launched_at: UnixMillis,
    /// When it ended or ends: `ends_at`, or earlier when staff ended it or the class ended.
    ends_at: UnixMillis,
}

impl Window {
    fn contains(&self, at: UnixMillis) -> bool {
        (self.launched_at..self.ends_at).contains(&at)
    }
}

/// Every live window since the server started, by quiz.
#[derive(Debug, Default)]
pub struct LiveQuizzes {
    windows: Mutex<HashMap<QuizId, Vec<Window>>>,
}

impl LiveQuizzes {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<QuizId, Vec<Window>>> {
        self.windows.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A room launched `quiz`.
    pub fn launched(&self, room: &RoomId, quiz: &LiveQuiz) {
        self.lock().entry(quiz.quiz_id).or_default().push(Window {
            room: room.clone(),
            launched_at: quiz.launched_at,
            ends_at: quiz.ends_at,
        });
    }

    /// The run of `quiz` in `room` ended at `at` (no later than its `ends_at`).
    pub fn ended(&self, room: &RoomId, quiz: &LiveQuiz, at: UnixMillis) {
        if let Some(windows) = self.lock().get_mut(&quiz.quiz_id)
            && let Some(w) = windows
                .iter_mut()
                .find(|w| &w.room == room && w.launched_at == quiz.launched_at)
        {
            w.ends_at = w.ends_at.min(at.max(w.launched_at));
        }
    }

    /// The end of the live window an attempt at `quiz_id` started at `started_at` falls in,
    /// if it started while the quiz was live somewhere (the latest, if in several rooms).
    pub fn cap(&self, quiz_id: QuizId, started_at: UnixMillis) -> Option<UnixMillis> {
        self.lock()
            .get(&quiz_id)?
            .iter()
            .filter(|w| w.contains(started_at))
            .map(|w| w.ends_at)
            .max()
    }

    /// The rooms whose live run of `quiz_id` an attempt started at `started_at` belongs to.
    pub fn rooms(&self, quiz_id: QuizId, started_at: UnixMillis) -> Vec<RoomId> {
        self.lock().get(&quiz_id).map_or_else(Vec::new, |windows| {
            windows
                .iter()
                .filter(|w| w.contains(started_at))
                .map(|w| w.room.clone())
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quiz(launched_at: u64, ends_at: u64) -> LiveQuiz {
        LiveQuiz {
            quiz_id: 7,
            title: "Q".into(),
            launched_by: lectern_proto::ParticipantId::new("t"),
            launched_at,
            ends_at,
        }
    }

    #[test]
    fn an_attempt_started_in_a_window_ends_with_it() {
        let live = LiveQuizzes::default();
        let room = RoomId::new("r");
        assert_eq!(live.cap(7, 1_500), None);
        let q = quiz(1_000, 61_000);
        live.launched(&room, &q);
        assert_eq!(live.cap(7, 999), None);
        assert_eq!(live.cap(7, 1_500), Some(61_000));
        assert_eq!(live.cap(8, 1_500), None);
        assert_eq!(live.rooms(7, 1_500), vec![room.clone()]);
        // Ended early: the window shrinks; an attempt started after it is not capped.
        live.ended(&room, &q, 30_000);
        assert_eq!(live.cap(7, 1_500), Some(30_000));
        assert_eq!(live.cap(7, 40_000), None);
        assert!(live.rooms(7, 40_000).is_empty());
    }
}
