use std::fmt;

use jiff::civil::{Date, DateTime, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};

use crate::zone::{time_zone, zone_name};
use crate::{MAX_DURATION_MINUTES, MAX_RANGE_YEARS, ScheduleError};

/// A weekly recurrence as entered by a teacher: plain data, checked by [`Schedule::new`].
///
/// All dates and times are local to `timezone`. `first_date..=last_date` bounds the weekly
/// sessions only; `exceptions` remove weekly sessions (holidays) and `extra` adds one-off
/// sessions, which happen even outside the range or on an exception date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeeklySchedule {
    /// IANA name, e.g. `Europe/Paris`; normally the course's timezone.
    pub timezone: String,
    /// Days with a class. May be empty only if `extra` is not (a schedule of one-offs).
    pub days: Vec<Weekday>,
    /// Local start time, on a whole minute.
    pub start: Time,
    /// 1 to [`MAX_DURATION_MINUTES`].
    pub duration_minutes: u32,
    pub first_date: Date,
    /// Inclusive.
    pub last_date: Date,
    /// Dates with no weekly class. Dates outside the range or on other weekdays are ignored.
    pub exceptions: Vec<Date>,
    pub extra: Vec<OneOff>,
}

/// A one-off extra session, local to the schedule's timezone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OneOff {
    pub date: Date,
    pub start: Time,
    pub duration_minutes: u32,
}

/// A validated [`WeeklySchedule`] with its timezone resolved. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    spec: WeeklySchedule,
    tz: TimeZone,
}

/// The stable id of one session within a course: its nominal local start, `YYYY-MM-DDTHH:MM`.
///
/// It is derived from the scheduled wall-clock time, not from the UTC instant, so it stays the
/// same when the schedule is re-expanded, when a window is moved, and when the tz rules change
/// the UTC offset. A start moved by a DST gap keeps the key of the time that was scheduled.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionKey(String);

impl SessionKey {
    fn new(date: Date, time: Time) -> SessionKey {
        SessionKey(format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}",
            date.year(),
            date.month(),
            date.day(),
            time.hour(),
            time.minute()
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<SessionKey> for String {
    fn from(key: SessionKey) -> String {
        key.0
    }
}

/// One session: a concrete occurrence of a schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    pub session_key: SessionKey,
    pub start_utc: Timestamp,
    /// `start_utc` plus exactly the scheduled duration.
    pub end_utc: Timestamp,
    /// The scheduled local date (as in the session key).
    pub local_date: Date,
    /// The local wall-clock start: the scheduled time, or later by the gap if it did not exist.
    pub local_start: DateTime,
    pub time_zone: TimeZone,
}

impl Occurrence {
    /// The session length.
    pub fn duration(&self) -> SignedDuration {
        self.end_utc.duration_since(self.start_utc)
    }

    /// `start_utc` formatted in the session's timezone, e.g. `2026-09-01 10:00 (Europe/Paris)`.
    pub fn local_start_display(&self) -> String {
        format!(
            "{} ({})",
            self.local_start.strftime("%Y-%m-%d %H:%M"),
            zone_name(&self.time_zone)
        )
    }
}

const MIN_YEAR: i16 = 1900;
const MAX_YEAR: i16 = 2999;

impl Schedule {
    /// Checks a schedule and resolves its timezone. Days and exceptions are sorted and deduplicated.
    pub fn new(mut spec: WeeklySchedule) -> Result<Schedule, ScheduleError> {
        let tz = time_zone(&spec.timezone)?;
        spec.timezone = zone_name(&tz).to_owned();
        if spec.days.is_empty() && spec.extra.is_empty() {
            return Err(ScheduleError::NoDays);
        }
        if spec.last_date < spec.first_date {
            return Err(ScheduleError::LastBeforeFirst {
                first: spec.first_date,
                last: spec.last_date,
            });
        }
        check_session(spec.start, spec.duration_minutes)?;
        for extra in &spec.extra {
            check_session(extra.start, extra.duration_minutes)?;
        }
        let first = spec
            .extra
            .iter()
            .map(|e| e.date)
            .fold(spec.first_date, Date::min);
        let last = spec
            .extra
            .iter()
            .map(|e| e.date)
            .fold(spec.last_date, Date::max);
        for date in [first, last] {
            if !(MIN_YEAR..=MAX_YEAR).contains(&date.year()) {
                return Err(ScheduleError::DateOutOfRange { date });
            }
        }
        // Years stay in 1900..=2999, so adding five years cannot overflow.
        let limit = first
            .checked_add(i64::from(MAX_RANGE_YEARS).years())
            .unwrap_or(Date::MAX);
        if last > limit {
            return Err(ScheduleError::RangeTooLong { first, last });
        }
        spec.days.sort_by_key(|d| d.to_monday_one_offset());
        spec.days.dedup();
        spec.exceptions.sort();
        spec.exceptions.dedup();
        Ok(Schedule { spec, tz })
    }

    /// The normalized input (canonical timezone name, sorted days and exceptions).
    pub fn spec(&self) -> &WeeklySchedule {
        &self.spec
    }

    pub fn time_zone(&self) -> &TimeZone {
        &self.tz
    }

    /// This schedule's sessions that start in `[from, to)`, sorted by start.
    pub fn occurrences(&self, from: Timestamp, to: Timestamp) -> Vec<Occurrence> {
        expand(std::slice::from_ref(self), from, to)
    }

    fn push_weekly(&self, from: Timestamp, to: Timestamp, out: &mut Vec<Occurrence>) {
        let spec = &self.spec;
        if spec.days.is_empty() {
            return;
        }
        // Local dates whose sessions can start in [from, to). A gap moves a start up to a day
        // later (Pacific/Apia, 2011), so look two days back and one ahead.
        let lo = self.tz.to_datetime(from).date().saturating_sub(2.days());
        let hi = self.tz.to_datetime(to).date().saturating_add(1.day());
        let mut date = lo.max(spec.first_date);
        let end = hi.min(spec.last_date);
        while date <= end {
            if spec.days.contains(&date.weekday()) && spec.exceptions.binary_search(&date).is_err()
            {
                self.push_one(date, spec.start, spec.duration_minutes, from, to, out);
            }
            match date.tomorrow() {
                Ok(next) => date = next,
                Err(_) => break,
            }
        }
    }

    fn push_one(
        &self,
        date: Date,
        start: Time,
        duration_minutes: u32,
        from: Timestamp,
        to: Timestamp,
        out: &mut Vec<Occurrence>,
    ) {
        let Some(start_utc) = resolve_local(&self.tz, date.to_datetime(start)) else {
            return;
        };
        if start_utc < from || start_utc >= to {
            return;
        }
        let Ok(end_utc) = start_utc.checked_add(SignedDuration::from_mins(duration_minutes.into()))
        else {
            return;
        };
        out.push(Occurrence {
            session_key: SessionKey::new(date, start),
            start_utc,
            end_utc,
            local_date: date,
            local_start: self.tz.to_datetime(start_utc),
            time_zone: self.tz.clone(),
        });
    }
}

fn check_session(start: Time, duration_minutes: u32) -> Result<(), ScheduleError> {
    if start.second() != 0 || start.subsec_nanosecond() != 0 {
        return Err(ScheduleError::StartNotWholeMinute { time: start });
    }
    if duration_minutes == 0 || duration_minutes > MAX_DURATION_MINUTES {
        return Err(ScheduleError::InvalidDuration {
            minutes: duration_minutes,
        });
    }
    Ok(())
}

/// The instant of a scheduled local time.
///
/// This is RFC 5545's rule (section 3.3.5), so calendar apps reading our feed agree with us:
/// - in a gap (spring forward) the time is read with the offset in force before the gap, so
///   the session starts later on the wall clock by the length of the gap (02:30 becomes 03:30);
/// - in a fold (fall back) the earlier of the two instants is taken (the first 02:30).
///
/// `None` only if the instant overflows, which validated dates cannot reach.
pub(crate) fn resolve_local(tz: &TimeZone, local: DateTime) -> Option<Timestamp> {
    tz.to_ambiguous_timestamp(local).compatible().ok()
}

/// All sessions of `schedules` that start in `[from, to)`, sorted by start then key.
///
/// Sessions with the same [`SessionKey`] (say an extra session entered at the same local time
/// as a weekly one) are merged into one, keeping the longest. Keys are local times, so the
/// schedules of one course should share the course's timezone.
pub fn expand(schedules: &[Schedule], from: Timestamp, to: Timestamp) -> Vec<Occurrence> {
    let mut out = Vec::new();
    if from >= to {
        return out;
    }
    for schedule in schedules {
        schedule.push_weekly(from, to, &mut out);
        for extra in &schedule.spec.extra {
            schedule.push_one(
                extra.date,
                extra.start,
                extra.duration_minutes,
                from,
                to,
                &mut out,
            );
        }
    }
    out.sort_by(|a, b| {
        a.session_key
            .cmp(&b.session_key)
            .then(b.end_utc.cmp(&a.end_utc))
    });
    out.dedup_by(|later, kept| later.session_key == kept.session_key);
    out.sort_by(|a, b| {
        a.start_utc
            .cmp(&b.start_utc)
            .then_with(|| a.session_key.cmp(&b.session_key))
    });
    out
}

/// Every session of `schedules`, first to last.
pub fn expand_all(schedules: &[Schedule]) -> Vec<Occurrence> {
    expand(schedules, Timestamp::MIN, Timestamp::MAX)
}

#[cfg(test)]
mod tests {
    use jiff::civil::{date, time};

    use super::*;

    fn weekly(tz: &str, days: &[Weekday], start: Time, minutes: u32) -> WeeklySchedule {
        WeeklySchedule {
            timezone: tz.into(),
            days: days.to_vec(),
            start,
            duration_minutes: minutes,
            first_date: date(2026, 9, 1),
            last_date: date(2026, 12, 15),
            exceptions: vec![],
            extra: vec![],
        }
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn keys(occs: &[Occurrence]) -> Vec<&str> {
        occs.iter().map(|o| o.session_key.as_str()).collect()
    }

    #[test]
    fn paris_class_keeps_local_time_across_dst_change() {
        let s = Schedule::new(weekly(
            "Europe/Paris",
            &[Weekday::Tuesday],
            time(10, 0, 0, 0),
            90,
        ))
        .unwrap();
        let occs = s.occurrences(ts("2026-10-19T00:00Z"), ts("2026-11-01T00:00Z"));
        assert_eq!(keys(&occs), ["2026-10-20T10:00", "2026-10-27T10:00"]);
        // Summer time (UTC+2) before 25 October, winter time (UTC+1) after.
        assert_eq!(occs[0].start_utc, ts("2026-10-20T08:00Z"));
        assert_eq!(occs[1].start_utc, ts("2026-10-27T09:00Z"));
        for o in &occs {
            assert_eq!(o.local_start.time(), time(10, 0, 0, 0));
            assert_eq!(o.duration(), SignedDuration::from_mins(90));
        }
    }

    #[test]
    fn new_york_class_keeps_local_time_across_dst_change() {
        let s = Schedule::new(weekly(
            "America/New_York",
            &[Weekday::Monday],
            time(9, 30, 0, 0),
            60,
        ))
        .unwrap();
        let occs = s.occurrences(ts("2026-10-26T00:00Z"), ts("2026-11-10T00:00Z"));
        assert_eq!(
            keys(&occs),
            ["2026-10-26T09:30", "2026-11-02T09:30", "2026-11-09T09:30"]
        );
        assert_eq!(occs[0].start_utc, ts("2026-10-26T13:30Z"));
        assert_eq!(occs[1].start_utc, ts("2026-11-02T14:30Z"));
    }

    #[test]
    fn start_in_spring_forward_gap_moves_later_by_the_gap() {
        let mut spec = weekly("Europe/Paris", &[Weekday::Sunday], time(2, 30, 0, 0), 60);
        spec.first_date = date(2026, 3, 22);
        spec.last_date = date(2026, 4, 5);
        let occs = expand_all(&[Schedule::new(spec).unwrap()]);
        assert_eq!(
            keys(&occs),
            ["2026-03-22T02:30", "2026-03-29T02:30", "2026-04-05T02:30"]
        );
        let gap_day = &occs[1];
        // 02:30 does not exist on 29 March; read with the winter offset it is 01:30Z = 03:30 CEST.
        assert_eq!(gap_day.start_utc, ts("2026-03-29T01:30Z"));
        assert_eq!(gap_day.local_start, date(2026, 3, 29).at(3, 30, 0, 0));
        assert_eq!(gap_day.local_date, date(2026, 3, 29));
        assert_eq!(gap_day.end_utc, ts("2026-03-29T02:30Z"));
        assert_eq!(occs[2].start_utc, ts("2026-04-05T00:30Z"));
    }

    #[test]
    fn start_in_fall_back_fold_takes_the_earlier_instant() {
        let mut spec = weekly("Europe/Paris", &[Weekday::Sunday], time(2, 30, 0, 0), 60);
        spec.first_date = date(2026, 10, 25);
        spec.last_date = date(2026, 10, 25);
        let occs = expand_all(&[Schedule::new(spec).unwrap()]);
        assert_eq!(occs.len(), 1);
        // The first 02:30 (CEST, UTC+2), not the second one an hour later.
        assert_eq!(occs[0].start_utc, ts("2026-10-25T00:30Z"));
        assert_eq!(occs[0].local_start, date(2026, 10, 25).at(2, 30, 0, 0));
        // The class still lasts exactly 60 minutes: it ends at the second 02:30 wall time.
        assert_eq!(occs[0].end_utc, ts("2026-10-25T01:30Z"));
    }

    #[test]
    fn a_skipped_day_moves_its_session_a_day_later_and_window_queries_still_find_it() {
        // Samoa skipped 30 December 2011 (UTC-10 to UTC+14). Its 10:00 class is read with the
        // old offset, which lands on 31 December 10:00 local, the same instant as that day's class.
        let mut spec = weekly(
            "Pacific/Apia",
            &[Weekday::Friday, Weekday::Saturday],
            time(10, 0, 0, 0),
            60,
        );
        spec.first_date = date(2011, 12, 30);
        spec.last_date = date(2011, 12, 31);
        let s = Schedule::new(spec).unwrap();
        let all = expand_all(std::slice::from_ref(&s));
        assert_eq!(keys(&all), ["2011-12-30T10:00", "2011-12-31T10:00"]);
        assert_eq!(all[0].start_utc, all[1].start_utc);
        assert_eq!(all[0].local_start, date(2011, 12, 31).at(10, 0, 0, 0));
        // A window from local midnight on the 31st holds both, though one is dated the 30th.
        let from = ts("2011-12-30T10:00Z");
        assert_eq!(s.occurrences(from, Timestamp::MAX), all);
    }

    #[test]
    fn kolkata_has_a_constant_offset() {
        let mut spec = weekly("Asia/Kolkata", &[Weekday::Wednesday], time(18, 0, 0, 0), 45);
        spec.first_date = date(2026, 1, 1);
        spec.last_date = date(2026, 12, 31);
        let occs = expand_all(&[Schedule::new(spec).unwrap()]);
        assert_eq!(occs.len(), 52);
        for o in occs {
            assert_eq!(
                o.start_utc.to_zoned_datetime(TimeZone::UTC).time(),
                time(12, 30, 0, 0)
            );
        }
    }

    #[test]
    fn exceptions_remove_weekly_sessions_but_not_extras() {
        let mut spec = weekly(
            "Europe/Paris",
            &[Weekday::Tuesday, Weekday::Thursday],
            time(10, 0, 0, 0),
            90,
        );
        spec.first_date = date(2026, 11, 1);
        spec.last_date = date(2026, 11, 14);
        spec.exceptions = vec![date(2026, 11, 10), date(2026, 11, 12), date(2030, 1, 1)];
        spec.extra = vec![OneOff {
            date: date(2026, 11, 12),
            start: time(14, 0, 0, 0),
            duration_minutes: 120,
        }];
        let occs = expand_all(&[Schedule::new(spec).unwrap()]);
        assert_eq!(
            keys(&occs),
            ["2026-11-03T10:00", "2026-11-05T10:00", "2026-11-12T14:00"]
        );
        assert_eq!(occs[2].duration(), SignedDuration::from_mins(120));
    }

    #[test]
    fn extras_may_fall_outside_the_weekly_range() {
        let mut spec = weekly("Europe/Paris", &[Weekday::Tuesday], time(10, 0, 0, 0), 90);
        spec.extra = vec![OneOff {
            date: date(2027, 1, 12),
            start: time(9, 0, 0, 0),
            duration_minutes: 180,
        }];
        let occs = expand_all(&[Schedule::new(spec).unwrap()]);
        // 16 Tuesdays and the extra.
        assert_eq!(occs.len(), 17);
        assert_eq!(
            occs.first().unwrap().session_key.as_str(),
            "2026-09-01T10:00"
        );
        assert_eq!(
            occs.last().unwrap().session_key.as_str(),
            "2027-01-12T09:00"
        );
    }

    #[test]
    fn same_session_key_is_merged_keeping_the_longest() {
        let mut spec = weekly("Europe/Paris", &[Weekday::Tuesday], time(10, 0, 0, 0), 90);
        spec.last_date = date(2026, 9, 8);
        spec.extra = vec![OneOff {
            date: date(2026, 9, 8),
            start: time(10, 0, 0, 0),
            duration_minutes: 150,
        }];
        let s = Schedule::new(spec).unwrap();
        let occs = expand_all(&[s.clone(), s]);
        assert_eq!(keys(&occs), ["2026-09-01T10:00", "2026-09-08T10:00"]);
        assert_eq!(occs[1].duration(), SignedDuration::from_mins(150));
    }

    #[test]
    fn several_schedules_are_merged_in_time_order() {
        let tue = Schedule::new(weekly(
            "Europe/Paris",
            &[Weekday::Tuesday],
            time(10, 0, 0, 0),
            90,
        ));
        let mon = Schedule::new(weekly(
            "Europe/Paris",
            &[Weekday::Monday],
            time(16, 0, 0, 0),
            60,
        ));
        let occs = expand(
            &[tue.unwrap(), mon.unwrap()],
            ts("2026-09-01T00:00Z"),
            ts("2026-09-09T00:00Z"),
        );
        assert_eq!(
            keys(&occs),
            ["2026-09-01T10:00", "2026-09-07T16:00", "2026-09-08T10:00"]
        );
    }

    #[test]
    fn window_is_half_open_on_start_and_keys_are_stable() {
        let s = Schedule::new(weekly(
            "Europe/Paris",
            &[Weekday::Tuesday],
            time(10, 0, 0, 0),
            90,
        ))
        .unwrap();
        let start = ts("2026-09-08T08:00Z");
        assert!(
            s.occurrences(start - SignedDuration::from_mins(1), start)
                .is_empty()
        );
        let here = s.occurrences(start, start + SignedDuration::from_nanos(1));
        assert_eq!(keys(&here), ["2026-09-08T10:00"]);
        let all = expand_all(std::slice::from_ref(&s));
        assert!(all.contains(&here[0]));
        assert!(s.occurrences(start, start).is_empty());
    }

    #[test]
    fn days_and_exceptions_are_normalized() {
        let mut spec = weekly(
            "europe/PARIS",
            &[Weekday::Thursday, Weekday::Tuesday, Weekday::Thursday],
            time(10, 0, 0, 0),
            90,
        );
        spec.exceptions = vec![date(2026, 9, 3), date(2026, 9, 1), date(2026, 9, 3)];
        let s = Schedule::new(spec).unwrap();
        assert_eq!(s.spec().timezone, "Europe/Paris");
        assert_eq!(s.spec().days, [Weekday::Tuesday, Weekday::Thursday]);
        assert_eq!(s.spec().exceptions, [date(2026, 9, 1), date(2026, 9, 3)]);
    }

    #[test]
    fn validation_refuses_bad_schedules() {
        let ok = weekly("Europe/Paris", &[Weekday::Tuesday], time(10, 0, 0, 0), 90);
        let check = |f: &dyn Fn(&mut WeeklySchedule)| {
            let mut spec = ok.clone();
            f(&mut spec);
            Schedule::new(spec).unwrap_err()
        };
        assert_eq!(
            check(&|s| s.timezone = "Europe/Atlantis".into()),
            ScheduleError::UnknownTimezone {
                name: "Europe/Atlantis".into()
            }
        );
        assert_eq!(check(&|s| s.days.clear()), ScheduleError::NoDays);
        assert_eq!(
            check(&|s| s.last_date = date(2026, 8, 31)),
            ScheduleError::LastBeforeFirst {
                first: date(2026, 9, 1),
                last: date(2026, 8, 31)
            }
        );
        assert_eq!(
            check(&|s| s.duration_minutes = 0),
            ScheduleError::InvalidDuration { minutes: 0 }
        );
        assert_eq!(
            check(&|s| s.duration_minutes = 24 * 60 + 1),
            ScheduleError::InvalidDuration { minutes: 1441 }
        );
        assert_eq!(
            check(&|s| s.last_date = date(2031, 9, 2)),
            ScheduleError::RangeTooLong {
                first: date(2026, 9, 1),
                last: date(2031, 9, 2)
            }
        );
        assert_eq!(
            check(&|s| s.start = time(10, 0, 30, 0)),
            ScheduleError::StartNotWholeMinute {
                time: time(10, 0, 30, 0)
            }
        );
        assert_eq!(
            check(&|s| s.extra.push(OneOff {
                date: date(2026, 9, 2),
                start: time(10, 0, 0, 0),
                duration_minutes: 0
            })),
            ScheduleError::InvalidDuration { minutes: 0 }
        );
        assert_eq!(
            check(&|s| s.extra.push(OneOff {
                date: date(2033, 1, 1),
                start: time(10, 0, 0, 0),
                duration_minutes: 60
            })),
            ScheduleError::RangeTooLong {
                first: date(2026, 9, 1),
                last: date(2033, 1, 1)
            }
        );
        assert_eq!(
            check(&|s| {
                s.first_date = date(1800, 1, 1);
                s.last_date = date(1800, 1, 2);
            }),
            ScheduleError::DateOutOfRange {
                date: date(1800, 1, 1)
            }
        );
        // Exactly five years and a full-day session are fine.
        let mut edge = ok.clone();
        edge.last_date = date(2031, 9, 1);
        edge.duration_minutes = 24 * 60;
        assert!(Schedule::new(edge).is_ok());
    }

    #[test]
    fn a_schedule_of_only_extras_is_allowed() {
        let mut spec = weekly("Europe/Paris", &[], time(10, 0, 0, 0), 90);
        spec.extra = vec![OneOff {
            date: date(2026, 9, 5),
            start: time(9, 0, 0, 0),
            duration_minutes: 60,
        }];
        let occs = expand_all(&[Schedule::new(spec).unwrap()]);
        assert_eq!(keys(&occs), ["2026-09-05T09:00"]);
    }
}
