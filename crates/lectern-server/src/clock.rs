//! The server's clock for schedule decisions: the wall clock plus an offset that tests (and a
//! rehearsal of a class) can move. Room tasks and the join-window check read it; a room task
//! also watches it, so moving the clock re-arms the room's timers at once.
//!
//! TURN credentials and records of when something was made (courses, schedules, feeds) keep
//! the plain wall clock, [`wall_ms`]; token checks use seconds (`auth::unix_now`). Both
//! millisecond readings come from here.

use std::time::{SystemTime, UNIX_EPOCH};

use lectern_proto::UnixMillis;
use lectern_schedule::jiff::Timestamp;
use tokio::sync::watch;

/// The wall clock, in Unix milliseconds (0 before 1970).
pub fn wall_ms() -> UnixMillis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Wall clock plus an adjustable offset in milliseconds (0 unless moved).
#[derive(Debug)]
pub struct Clock {
    offset_ms: watch::Sender<i64>,
}

impl Default for Clock {
    fn default() -> Self {
        Clock {
            offset_ms: watch::Sender::new(0),
        }
    }
}

impl Clock {
    /// Now, in Unix milliseconds.
    pub fn now_ms(&self) -> UnixMillis {
        let wall = i64::try_from(wall_ms()).unwrap_or(i64::MAX);
        u64::try_from(wall.saturating_add(*self.offset_ms.borrow())).unwrap_or(0)
    }

    /// Now, as a timestamp for `lectern-schedule`.
    pub fn now(&self) -> Timestamp {
        let ms = i64::try_from(self.now_ms()).unwrap_or(i64::MAX);
        Timestamp::from_millisecond(ms).unwrap_or(Timestamp::MAX)
    }

    /// Makes the clock read `at` now (it keeps running from there).
    pub fn set_now(&self, at: UnixMillis) {
        let current = self.now_ms();
        let delta = i64::try_from(at).unwrap_or(i64::MAX) - i64::try_from(current).unwrap_or(0);
        self.offset_ms.send_modify(|o| *o = o.saturating_add(delta));
    }

    /// A receiver that changes whenever the clock is moved.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.offset_ms.subscribe()
    }
}
