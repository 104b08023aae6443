use std::mem::discriminant;

use jiff::{SignedDuration, Timestamp};

use crate::{MAX_SETTING_MINUTES, Occurrence, Schedule, ScheduleError, expand, shift};

/// A course's room timing settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifecycle {
    /// The room opens this long before the scheduled start; students wait in the lobby.
    pub lobby_minutes: u32,
    /// Participants are warned this long before the scheduled end.
    pub warning_minutes: u32,
    /// The room closes this long after the scheduled end.
    pub grace_minutes: u32,
    /// The class goes live at the scheduled start by itself; otherwise staff start it.
    pub auto_start: bool,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle {
            lobby_minutes: 15,
            warning_minutes: 5,
            grace_minutes: 10,
            auto_start: false,
        }
    }
}

/// Where a session's room is in its life at a given instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The room does not exist yet.
    BeforeOpen {
        opens_at: Timestamp,
    },
    /// The room is open and students wait for the class to start: a countdown to `starts_at`
    /// until then, "waiting for the instructor" once it has passed without staff starting it.
    Lobby {
        starts_at: Timestamp,
    },
    Live,
    /// The scheduled end is near.
    Warning {
        ends_at: Timestamp,
    },
    /// The scheduled end has passed; the room closes at `closes_at`.
    Grace {
        closes_at: Timestamp,
    },
    Closed,
}

impl Phase {
    /// Whether someone may join the room now (every phase but before-open and closed; joining
    /// late, after the start, is allowed).
    pub fn is_open(&self) -> bool {
        !matches!(self, Phase::BeforeOpen { .. } | Phase::Closed)
    }
}

/// The instants that bound one session's phases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTimes {
    pub opens_at: Timestamp,
    pub starts_at: Timestamp,
    /// Not before `starts_at`: a warning longer than the class starts with the class.
    pub warns_at: Timestamp,
    pub ends_at: Timestamp,
    pub closes_at: Timestamp,
}

fn minutes(m: u32) -> SignedDuration {
    SignedDuration::from_mins(m.into())
}

impl Lifecycle {
    /// Checks that every setting is at most [`MAX_SETTING_MINUTES`].
    pub fn validate(&self) -> Result<(), ScheduleError> {
        for (setting, value) in [
            ("lobby_minutes", self.lobby_minutes),
            ("warning_minutes", self.warning_minutes),
            ("grace_minutes", self.grace_minutes),
        ] {
            if value > MAX_SETTING_MINUTES {
                return Err(ScheduleError::SettingTooLong {
                    setting,
                    minutes: value,
                });
            }
        }
        Ok(())
    }

    pub fn times(&self, occ: &Occurrence) -> SessionTimes {
        let starts_at = occ.start_utc;
        let ends_at = occ.end_utc;
        SessionTimes {
            opens_at: shift(starts_at, -minutes(self.lobby_minutes)),
            starts_at,
            warns_at: shift(ends_at, -minutes(self.warning_minutes)).max(starts_at),
            ends_at,
            closes_at: shift(ends_at, minutes(self.grace_minutes)),
        }
    }

    /// The phase of `occ` at `now`. `staff_started` says whether staff have started the class
    /// (the room knows); it matters only without `auto_start`, where the class stays in the
    /// lobby until staff start it (possibly early, during the lobby) or the scheduled end
    /// passes. Every interval is half-open: at `starts_at` exactly an auto-started class is live.
    pub fn phase(&self, occ: &Occurrence, now: Timestamp, staff_started: bool) -> Phase {
        let t = self.times(occ);
        let started = staff_started || (self.auto_start && now >= t.starts_at);
        if now < t.opens_at {
            Phase::BeforeOpen {
                opens_at: t.opens_at,
            }
        } else if now >= t.closes_at {
            Phase::Closed
        } else if now >= t.ends_at {
            Phase::Grace {
                closes_at: t.closes_at,
            }
        } else if !started {
            Phase::Lobby {
                starts_at: t.starts_at,
            }
        } else if now >= t.warns_at {
            Phase::Warning { ends_at: t.ends_at }
        } else {
            Phase::Live
        }
    }

    /// The first instant after `now` at which [`Lifecycle::phase`] changes (with the same
    /// `staff_started`), for the driver's timer; `None` once closed. When staff start the class,
    /// the driver asks again.
    pub fn next_transition(
        &self,
        occ: &Occurrence,
        now: Timestamp,
        staff_started: bool,
    ) -> Option<Timestamp> {
        let t = self.times(occ);
        let current = discriminant(&self.phase(occ, now, staff_started));
        [t.opens_at, t.starts_at, t.warns_at, t.ends_at, t.closes_at]
            .into_iter()
            .filter(|&at| at > now)
            .find(|&at| discriminant(&self.phase(occ, at, staff_started)) != current)
    }

    /// The session whose room is open at `now`, for a join request; late joins are allowed
    /// until the room closes. Otherwise [`NotOpen`] names the next session, if any.
    ///
    /// When rooms overlap (a grace period running into the next lobby), a session between its
    /// start and end wins, then one in its lobby, then one in its grace period.
    pub fn join_window(
        &self,
        schedules: &[Schedule],
        now: Timestamp,
    ) -> Result<Occurrence, NotOpen> {
        let longest = minutes(crate::MAX_DURATION_MINUTES + self.grace_minutes);
        let lobby = minutes(self.lobby_minutes);
        // Sessions whose room can be open at `now`: start in (now - longest, now + lobby].
        let after_lobby = shift(shift(now, lobby), SignedDuration::from_nanos(1));
        let candidates = expand(schedules, shift(now, -longest), after_lobby);
        let rank = |occ: &Occurrence| {
            let t = self.times(occ);
            if now < t.opens_at || now >= t.closes_at {
                None
            } else if now < t.starts_at {
                Some((1, occ.start_utc.as_nanosecond()))
            } else if now < t.ends_at {
                Some((0, occ.start_utc.as_nanosecond()))
            } else {
                Some((2, -occ.end_utc.as_nanosecond()))
            }
        };
        if let Some(open) = candidates
            .into_iter()
            .filter_map(|occ| rank(&occ).map(|r| (r, occ)))
            .min_by_key(|(r, _)| *r)
        {
            return Ok(open.1);
        }
        let next = expand(schedules, after_lobby, Timestamp::MAX)
            .into_iter()
            .next();
        Err(NotOpen {
            opens_at: next.as_ref().map(|occ| self.times(occ).opens_at),
            next,
        })
    }
}

/// No session's room is open: the "join outside the window" error, with the next session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.message())]
pub struct NotOpen {
    /// The next session to open, if the schedule has one.
    pub next: Option<Occurrence>,
    /// When its room opens (its start minus the lobby time).
    pub opens_at: Option<Timestamp>,
}

impl NotOpen {
    /// A stable code for API responses.
    pub fn code(&self) -> &'static str {
        "session_not_open"
    }

    fn message(&self) -> String {
        let (Some(next), Some(opens_at)) = (&self.next, self.opens_at) else {
            return "no session is open now and no later session is scheduled".to_owned();
        };
        let opens = next.time_zone.to_datetime(opens_at);
        // The day is repeated only when the lobby opens the day before (a class just after midnight).
        let format = if opens.date() == next.local_start.date() {
            "%H:%M"
        } else {
            "%Y-%m-%d %H:%M"
        };
        format!(
            "no session is open now; the next session starts {} and its room opens at {}",
            next.local_start_display(),
            opens.strftime(format)
        )
    }
}

#[cfg(test)]
mod tests {
    use jiff::civil::{Weekday, date, time};

    use super::*;
    use crate::{OneOff, WeeklySchedule};

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// Tuesdays 10:00-11:30 Europe/Paris in September 2026 (UTC+2: 08:00Z-09:30Z).
    fn schedule() -> Schedule {
        Schedule::new(WeeklySchedule {
            timezone: "Europe/Paris".into(),
            days: vec![Weekday::Tuesday],
            start: time(10, 0, 0, 0),
            duration_minutes: 90,
            first_date: date(2026, 9, 1),
            last_date: date(2026, 9, 30),
            exceptions: vec![],
            extra: vec![],
        })
        .unwrap()
    }

    fn first() -> Occurrence {
        schedule().occurrences(Timestamp::MIN, Timestamp::MAX)[0].clone()
    }

    const AUTO: Lifecycle = Lifecycle {
        lobby_minutes: 15,
        warning_minutes: 5,
        grace_minutes: 10,
        auto_start: true,
    };

    #[test]
    fn times_follow_the_settings() {
        let t = AUTO.times(&first());
        assert_eq!(t.opens_at, ts("2026-09-01T07:45Z"));
        assert_eq!(t.starts_at, ts("2026-09-01T08:00Z"));
        assert_eq!(t.warns_at, ts("2026-09-01T09:25Z"));
        assert_eq!(t.ends_at, ts("2026-09-01T09:30Z"));
        assert_eq!(t.closes_at, ts("2026-09-01T09:40Z"));
    }

    #[test]
    fn auto_start_walks_through_every_phase() {
        let occ = first();
        let at = |s| AUTO.phase(&occ, ts(s), false);
        assert_eq!(
            at("2026-09-01T07:44:59Z"),
            Phase::BeforeOpen {
                opens_at: ts("2026-09-01T07:45Z")
            }
        );
        // The lobby counts down to the start.
        for now in ["2026-09-01T07:45Z", "2026-09-01T07:59:59.999Z"] {
            assert_eq!(
                at(now),
                Phase::Lobby {
                    starts_at: ts("2026-09-01T08:00Z")
                }
            );
        }
        assert_eq!(at("2026-09-01T08:00Z"), Phase::Live);
        assert_eq!(at("2026-09-01T09:24:59Z"), Phase::Live);
        assert_eq!(
            at("2026-09-01T09:25Z"),
            Phase::Warning {
                ends_at: ts("2026-09-01T09:30Z")
            }
        );
        assert_eq!(
            at("2026-09-01T09:30Z"),
            Phase::Grace {
                closes_at: ts("2026-09-01T09:40Z")
            }
        );
        assert_eq!(at("2026-09-01T09:40Z"), Phase::Closed);
    }

    #[test]
    fn without_auto_start_students_wait_for_staff() {
        let manual = Lifecycle {
            auto_start: false,
            ..AUTO
        };
        let occ = first();
        let lobby = Phase::Lobby {
            starts_at: ts("2026-09-01T08:00Z"),
        };
        assert_eq!(manual.phase(&occ, ts("2026-09-01T08:00Z"), false), lobby);
        assert_eq!(manual.phase(&occ, ts("2026-09-01T09:27Z"), false), lobby);
        assert_eq!(
            manual.phase(&occ, ts("2026-09-01T08:10Z"), true),
            Phase::Live
        );
        // Staff may start early, during the lobby, but not before the room opens.
        assert_eq!(
            manual.phase(&occ, ts("2026-09-01T07:50Z"), true),
            Phase::Live
        );
        assert!(matches!(
            manual.phase(&occ, ts("2026-09-01T07:00Z"), true),
            Phase::BeforeOpen { .. }
        ));
        // A class never started still closes on time.
        assert!(matches!(
            manual.phase(&occ, ts("2026-09-01T09:30Z"), false),
            Phase::Grace { .. }
        ));
        assert_eq!(
            manual.phase(&occ, ts("2026-09-01T09:40Z"), false),
            Phase::Closed
        );
        // While not started the only timers are the end and the close.
        assert_eq!(
            manual.next_transition(&occ, ts("2026-09-01T07:50Z"), false),
            Some(ts("2026-09-01T09:30Z"))
        );
    }

    #[test]
    fn next_transition_steps_a_timer_through_the_session() {
        let occ = first();
        let mut now = ts("2026-09-01T06:00Z");
        let mut seen = vec![AUTO.phase(&occ, now, false)];
        while let Some(next) = AUTO.next_transition(&occ, now, false) {
            assert!(next > now);
            now = next;
            seen.push(AUTO.phase(&occ, now, false));
        }
        let names: Vec<_> = seen
            .iter()
            .map(|p| {
                format!("{p:?}")
                    .split([' ', '{'])
                    .next()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(
            names,
            ["BeforeOpen", "Lobby", "Live", "Warning", "Grace", "Closed"]
        );
        assert_eq!(now, ts("2026-09-01T09:40Z"));
    }

    #[test]
    fn zero_lobby_long_warning_and_no_grace_collapse_phases() {
        let tight = Lifecycle {
            lobby_minutes: 0,
            warning_minutes: 120,
            grace_minutes: 0,
            auto_start: true,
        };
        let occ = first();
        let t = tight.times(&occ);
        assert_eq!(t.opens_at, t.starts_at);
        assert_eq!(t.warns_at, t.starts_at);
        assert_eq!(t.closes_at, t.ends_at);
        assert_eq!(
            tight.phase(&occ, t.starts_at, false),
            Phase::Warning { ends_at: t.ends_at }
        );
        assert_eq!(tight.phase(&occ, t.ends_at, false), Phase::Closed);
        assert_eq!(
            tight.next_transition(&occ, ts("2026-09-01T07:00Z"), false),
            Some(t.starts_at)
        );
        assert_eq!(
            tight.next_transition(&occ, t.starts_at, false),
            Some(t.ends_at)
        );
    }

    #[test]
    fn late_join_is_allowed_until_the_room_closes() {
        let s = [schedule()];
        for now in [
            "2026-09-08T07:45Z",
            "2026-09-08T08:00Z",
            "2026-09-08T09:00Z",
            "2026-09-08T09:29Z",
            "2026-09-08T09:39:59Z",
        ] {
            let occ = AUTO.join_window(&s, ts(now)).unwrap();
            assert_eq!(occ.session_key.as_str(), "2026-09-08T10:00", "{now}");
        }
    }

    #[test]
    fn joining_outside_the_window_names_the_next_session() {
        let s = [schedule()];
        let err = AUTO.join_window(&s, ts("2026-09-08T09:40Z")).unwrap_err();
        let next = err.next.as_ref().unwrap();
        assert_eq!(next.session_key.as_str(), "2026-09-15T10:00");
        assert_eq!(err.opens_at, Some(ts("2026-09-15T07:45Z")));
        assert_eq!(
            err.to_string(),
            "no session is open now; the next session starts 2026-09-15 10:00 (Europe/Paris) \
             and its room opens at 09:45"
        );
        let early = AUTO.join_window(&s, ts("2026-09-08T07:44Z")).unwrap_err();
        assert_eq!(early.next.unwrap().session_key.as_str(), "2026-09-08T10:00");
    }

    #[test]
    fn joining_after_the_last_session_says_there_is_none() {
        let err = AUTO
            .join_window(&[schedule()], ts("2026-10-01T00:00Z"))
            .unwrap_err();
        assert_eq!(err.next, None);
        assert_eq!(
            err.to_string(),
            "no session is open now and no later session is scheduled"
        );
        assert_eq!(err.code(), "session_not_open");
    }

    #[test]
    fn overlapping_rooms_prefer_the_running_class() {
        // 10:00-11:30 then an extra 11:35-12:00: the first one's grace overlaps the second's lobby.
        let mut spec = schedule().spec().clone();
        spec.extra.push(OneOff {
            date: date(2026, 9, 1),
            start: time(11, 35, 0, 0),
            duration_minutes: 25,
        });
        let s = [Schedule::new(spec).unwrap()];
        let key = |now| {
            AUTO.join_window(&s, ts(now))
                .unwrap()
                .session_key
                .to_string()
        };
        // 11:25 local: the first is in its warning, the second in its lobby.
        assert_eq!(key("2026-09-01T09:25Z"), "2026-09-01T10:00");
        // 11:32 local: the first is in grace, the second in its lobby: go to the next class.
        assert_eq!(key("2026-09-01T09:32Z"), "2026-09-01T11:35");
        // 11:36 local: the second is live.
        assert_eq!(key("2026-09-01T09:36Z"), "2026-09-01T11:35");
    }

    #[test]
    fn settings_are_bounded() {
        assert!(AUTO.validate().is_ok());
        let bad = Lifecycle {
            grace_minutes: 1441,
            ..AUTO
        };
        assert_eq!(
            bad.validate(),
            Err(ScheduleError::SettingTooLong {
                setting: "grace_minutes",
                minutes: 1441
            })
        );
    }
}
