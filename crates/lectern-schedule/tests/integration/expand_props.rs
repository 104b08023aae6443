//! Recurrence expansion against a reference model, across DST changes, holidays and extras.

use std::collections::BTreeMap;

use jiff::civil::{Date, Time, Weekday};
use jiff::{SignedDuration, Timestamp, ToSpan};
use lectern_schedule::{OneOff, Schedule, WeeklySchedule, expand, time_zone};
use proptest::prelude::*;

use crate::support::{ZONES, arb_date, arb_time, key, model_gap, model_instant, weekday};

fn arb_schedule() -> impl Strategy<Value = WeeklySchedule> {
    (
        prop::sample::select(&ZONES[..]),
        // Half the time with Sunday, the day every tested zone changes its clocks.
        (prop::collection::btree_set(0u8..7, 1..=7), any::<bool>()).prop_map(
            |(mut days, sunday)| {
                if sunday {
                    days.insert(6);
                }
                days
            },
        ),
        arb_time(),
        prop_oneof![1u32..=180, 1u32..=24 * 60],
        arb_date(),
        0i64..=800,
        prop::collection::vec(0i64..=800, 0..12),
        prop::collection::vec((-40i64..=840, arb_time(), 1u32..=300), 0..4),
    )
        .prop_map(
            |(zone, days, start, duration, first, span, holidays, extras)| {
                let at = |d: i64| first.checked_add(d.days()).unwrap();
                WeeklySchedule {
                    timezone: zone.to_owned(),
                    days: days.into_iter().map(weekday).collect(),
                    start,
                    duration_minutes: duration,
                    first_date: first,
                    last_date: at(span),
                    exceptions: holidays.into_iter().map(|d| at(d.min(span))).collect(),
                    extra: extras
                        .into_iter()
                        .map(|(d, start, minutes)| OneOff {
                            date: at(d),
                            start,
                            duration_minutes: minutes,
                        })
                        .collect(),
                }
            },
        )
}

/// A window: everything, or a random stretch around the schedule.
fn arb_window() -> impl Strategy<Value = Option<(i64, i64)>> {
    prop_oneof![
        Just(None),
        (-5i64 * 24..900 * 24, 1i64..400 * 24).prop_map(Some),
    ]
}

/// The sessions the model expects, by key: (start, duration in minutes).
fn model(spec: &WeeklySchedule) -> BTreeMap<String, (Timestamp, i64)> {
    let tz = time_zone(&spec.timezone).unwrap();
    let mut expected: BTreeMap<String, (Timestamp, i64)> = BTreeMap::new();
    let mut add = |date: Date, time: Time, minutes: u32| {
        let start = model_instant(&tz, date.to_datetime(time));
        let entry = expected
            .entry(key(date, time))
            .or_insert((start, minutes.into()));
        entry.1 = entry.1.max(minutes.into());
    };
    let mut date = spec.first_date;
    while date <= spec.last_date {
        if spec.days.contains(&date.weekday()) && !spec.exceptions.contains(&date) {
            add(date, spec.start, spec.duration_minutes);
        }
        date = date.tomorrow().unwrap();
    }
    for extra in &spec.extra {
        add(extra.date, extra.start, extra.duration_minutes);
    }
    expected
}

fn window(spec: &WeeklySchedule, window: Option<(i64, i64)>) -> (Timestamp, Timestamp) {
    match window {
        None => (Timestamp::MIN, Timestamp::MAX),
        Some((from_h, len_h)) => {
            let base = spec.first_date.to_datetime(Time::midnight());
            let from = jiff::tz::Offset::UTC.to_timestamp(base).unwrap()
                + SignedDuration::from_hours(from_h);
            (from, from + SignedDuration::from_hours(len_h))
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn expansion_matches_the_model(spec in arb_schedule(), win in arb_window()) {
        let tz = time_zone(&spec.timezone).unwrap();
        let schedule = Schedule::new(spec.clone()).unwrap();
        let (from, to) = window(&spec, win);
        let occs = expand(std::slice::from_ref(&schedule), from, to);

        // Sorted by start, keys unique.
        for pair in occs.windows(2) {
            prop_assert!(
                (pair[0].start_utc, &pair[0].session_key) < (pair[1].start_utc, &pair[1].session_key)
            );
        }
        let mut keys: Vec<_> = occs.iter().map(|o| o.session_key.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        prop_assert_eq!(keys.len(), occs.len());

        for occ in &occs {
            // Within the window.
            prop_assert!(from <= occ.start_utc && occ.start_utc < to);
            let is_extra = spec.extra.iter().any(|e| key(e.date, e.start) == occ.session_key.as_str());
            let scheduled = if is_extra {
                spec.extra.iter().find(|e| key(e.date, e.start) == occ.session_key.as_str()).unwrap().start
            } else {
                // A weekly session: in the date range, on a class day, not on a holiday.
                prop_assert!(spec.first_date <= occ.local_date && occ.local_date <= spec.last_date);
                prop_assert!(spec.days.contains(&occ.local_date.weekday()));
                prop_assert!(!spec.exceptions.contains(&occ.local_date));
                spec.start
            };
            prop_assert_eq!(occ.session_key.as_str(), key(occ.local_date, scheduled));
            // The local start is the scheduled time, or later by exactly the gap.
            let nominal = occ.local_date.to_datetime(scheduled);
            prop_assert_eq!(occ.local_start, tz.to_datetime(occ.start_utc));
            match model_gap(&tz, nominal) {
                None => prop_assert_eq!(occ.local_start, nominal),
                Some(gap) => {
                    prop_assert!(gap.is_positive());
                    prop_assert_eq!(occ.local_start, nominal.checked_add(gap).unwrap());
                }
            }
        }

        // Exactly the model's sessions, with exact durations in UTC.
        let expected: BTreeMap<String, (Timestamp, i64)> = model(&spec)
            .into_iter()
            .filter(|(_, (start, _))| from <= *start && *start < to)
            .collect();
        let actual: BTreeMap<String, (Timestamp, i64)> = occs
            .iter()
            .map(|o| {
                let minutes = o.end_utc.duration_since(o.start_utc).as_secs() / 60;
                prop_assert_eq!(
                    o.end_utc.duration_since(o.start_utc),
                    SignedDuration::from_mins(minutes)
                );
                Ok((o.session_key.to_string(), (o.start_utc, minutes)))
            })
            .collect::<Result<_, TestCaseError>>()?;
        prop_assert_eq!(actual, expected);
    }

    #[test]
    fn split_windows_expand_to_the_same_sessions(
        spec in arb_schedule(),
        split_h in -48i64..900 * 24,
    ) {
        let schedule = Schedule::new(spec.clone()).unwrap();
        let all = expand(std::slice::from_ref(&schedule), Timestamp::MIN, Timestamp::MAX);
        let (mid, _) = window(&spec, Some((split_h, 1)));
        let mut parts = expand(std::slice::from_ref(&schedule), Timestamp::MIN, mid);
        parts.extend(expand(std::slice::from_ref(&schedule), mid, Timestamp::MAX));
        prop_assert_eq!(parts, all);
    }
}

/// The proptest's time strategy hits the DST edge cases; these pin one of each per zone.
#[test]
fn every_zone_resolves_gap_and_fold_days_like_the_model() {
    let days = |y: i16| -> Vec<(&str, Date)> {
        vec![
            (
                "Europe/Paris",
                jiff::civil::date(y, 3, 31)
                    .nth_weekday_of_month(-1, Weekday::Sunday)
                    .unwrap(),
            ),
            (
                "Europe/Paris",
                jiff::civil::date(y, 10, 31)
                    .nth_weekday_of_month(-1, Weekday::Sunday)
                    .unwrap(),
            ),
            (
                "America/New_York",
                jiff::civil::date(y, 3, 1)
                    .nth_weekday_of_month(2, Weekday::Sunday)
                    .unwrap(),
            ),
            (
                "America/New_York",
                jiff::civil::date(y, 11, 1)
                    .nth_weekday_of_month(1, Weekday::Sunday)
                    .unwrap(),
            ),
            (
                "Australia/Sydney",
                jiff::civil::date(y, 10, 1)
                    .nth_weekday_of_month(1, Weekday::Sunday)
                    .unwrap(),
            ),
            (
                "Australia/Sydney",
                jiff::civil::date(y, 4, 1)
                    .nth_weekday_of_month(1, Weekday::Sunday)
                    .unwrap(),
            ),
        ]
    };
    let mut gaps = 0;
    for year in [2026, 2029] {
        for (zone, day) in days(year) {
            for minute in (0..4 * 60).step_by(15) {
                let start = jiff::civil::time((minute / 60) as i8, (minute % 60) as i8, 0, 0);
                let spec = WeeklySchedule {
                    timezone: zone.into(),
                    days: vec![Weekday::Sunday],
                    start,
                    duration_minutes: 60,
                    first_date: day,
                    last_date: day,
                    exceptions: vec![],
                    extra: vec![],
                };
                let tz = time_zone(zone).unwrap();
                let occs = lectern_schedule::expand_all(&[Schedule::new(spec).unwrap()]);
                assert_eq!(occs.len(), 1);
                let nominal = day.to_datetime(start);
                assert_eq!(
                    occs[0].start_utc,
                    model_instant(&tz, nominal),
                    "{zone} {nominal}"
                );
                if let Some(gap) = model_gap(&tz, nominal) {
                    gaps += 1;
                    assert_eq!(gap, SignedDuration::from_hours(1));
                    assert_eq!(occs[0].local_start, nominal.checked_add(gap).unwrap());
                }
            }
        }
    }
    // Each spring-forward day has four quarter hours in its one-hour gap.
    assert_eq!(gaps, 2 * 3 * 4);
}
