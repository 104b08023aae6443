//! The lifecycle as a function of time: phases never go back, timers land on real changes.

use std::mem::discriminant;

use jiff::civil::Weekday;
use jiff::{SignedDuration, Timestamp};
use lectern_schedule::{Lifecycle, Phase, Schedule, WeeklySchedule, expand_all};
use proptest::prelude::*;

use crate::support::{ZONES, arb_date, arb_time};

fn rank(phase: &Phase) -> u8 {
    match phase {
        Phase::BeforeOpen { .. } => 0,
        Phase::Lobby { .. } => 1,
        Phase::Live => 2,
        Phase::Warning { .. } => 3,
        Phase::Grace { .. } => 4,
        Phase::Closed => 5,
    }
}

fn arb_lifecycle() -> impl Strategy<Value = Lifecycle> {
    (0u32..=120, 0u32..=120, 0u32..=120, any::<bool>()).prop_map(|(l, w, g, a)| Lifecycle {
        lobby_minutes: l,
        warning_minutes: w,
        grace_minutes: g,
        auto_start: a,
    })
}

/// Two weeks of daily sessions.
fn arb_schedule() -> impl Strategy<Value = Schedule> {
    (
        prop::sample::select(&ZONES[..]),
        arb_time(),
        1u32..=300,
        arb_date(),
    )
        .prop_map(|(zone, start, minutes, first)| {
            Schedule::new(WeeklySchedule {
                timezone: zone.into(),
                days: (0..7)
                    .map(|d| Weekday::from_monday_zero_offset(d).unwrap())
                    .collect(),
                start,
                duration_minutes: minutes,
                first_date: first,
                last_date: first.tomorrow().unwrap().tomorrow().unwrap(),
                exceptions: vec![],
                extra: vec![],
            })
            .unwrap()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn phase_is_constant_until_the_next_transition(
        schedule in arb_schedule(),
        life in arb_lifecycle(),
        offset_s in -3i64 * 3600..8 * 3600,
        staff_started in any::<bool>(),
    ) {
        let occ = expand_all(&[schedule])[0].clone();
        let now = occ.start_utc + SignedDuration::from_secs(offset_s);
        let phase = life.phase(&occ, now, staff_started);
        match life.next_transition(&occ, now, staff_started) {
            None => prop_assert_eq!(phase, Phase::Closed),
            Some(next) => {
                prop_assert!(next > now);
                let just_before = next - SignedDuration::from_nanos(1);
                prop_assert_eq!(discriminant(&life.phase(&occ, just_before, staff_started)), discriminant(&phase));
                let after = life.phase(&occ, next, staff_started);
                prop_assert!(rank(&after) > rank(&phase), "{:?} -> {:?}", phase, after);
            }
        }
        // Phases only move forward.
        let later = life.phase(&occ, now + SignedDuration::from_mins(7), staff_started);
        prop_assert!(rank(&later) >= rank(&phase));
        // An auto-started class is live or warning from its start to its end.
        if life.auto_start && now >= occ.start_utc && now < occ.end_utc {
            let live = matches!(phase, Phase::Live | Phase::Warning { .. });
            prop_assert!(live, "{:?}", phase);
        }
    }

    #[test]
    fn join_window_agrees_with_the_phases(
        schedule in arb_schedule(),
        life in arb_lifecycle(),
        offset_s in -30i64 * 3600..80 * 3600,
    ) {
        let occs = expand_all(std::slice::from_ref(&schedule));
        let now = occs[0].start_utc + SignedDuration::from_secs(offset_s);
        let open: Vec<_> = occs.iter().filter(|o| life.phase(o, now, false).is_open()).collect();
        match life.join_window(std::slice::from_ref(&schedule), now) {
            Ok(occ) => prop_assert!(open.contains(&&occ)),
            Err(err) => {
                prop_assert!(open.is_empty());
                let next = occs.iter().find(|o| life.times(o).opens_at > now);
                prop_assert_eq!(err.next.as_ref(), next);
                if let Some(next) = next {
                    prop_assert_eq!(err.opens_at, Some(life.times(next).opens_at));
                    prop_assert!(err.to_string().contains(&next.local_start_display()));
                }
            }
        }
    }
}

#[test]
fn lobby_countdown_reaches_zero_at_the_start() {
    let schedule = Schedule::new(WeeklySchedule {
        timezone: "America/New_York".into(),
        days: vec![Weekday::Monday],
        start: jiff::civil::time(9, 0, 0, 0),
        duration_minutes: 50,
        first_date: jiff::civil::date(2026, 11, 2),
        last_date: jiff::civil::date(2026, 11, 2),
        exceptions: vec![],
        extra: vec![],
    })
    .unwrap();
    let occ = expand_all(&[schedule])[0].clone();
    let life = Lifecycle {
        lobby_minutes: 10,
        warning_minutes: 5,
        grace_minutes: 5,
        auto_start: true,
    };
    let start: Timestamp = "2026-11-02T14:00Z".parse().unwrap();
    assert_eq!(occ.start_utc, start);
    for minutes_left in (1..=10).rev() {
        let now = start - SignedDuration::from_mins(minutes_left);
        let Phase::Lobby { starts_at } = life.phase(&occ, now, false) else {
            panic!("not in the lobby {minutes_left} minutes before the start");
        };
        assert_eq!(
            starts_at.duration_since(now),
            SignedDuration::from_mins(minutes_left)
        );
    }
    assert_eq!(life.phase(&occ, start, false), Phase::Live);
}
