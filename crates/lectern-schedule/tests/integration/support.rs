//! A reference model of the DST rules, written against nothing but `TimeZone::to_offset`, so
//! the tests do not reuse the crate's own conversion.

use jiff::civil::{Date, DateTime, Time, Weekday};
use jiff::tz::{Offset, TimeZone};
use jiff::{SignedDuration, Timestamp, ToSpan};
use proptest::prelude::*;

pub const ZONES: [&str; 4] = [
    "Europe/Paris",
    "America/New_York",
    "Australia/Sydney",
    "Asia/Kolkata",
];

pub fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// The local date-time read as if it were UTC.
fn as_utc(local: DateTime) -> Timestamp {
    Offset::UTC.to_timestamp(local).unwrap()
}

fn minus_offset(local: DateTime, offset: Offset) -> Timestamp {
    as_utc(local) - SignedDuration::from_secs(offset.seconds().into())
}

/// What a scheduled local time must become: of the instants that show `local` on the wall
/// clock, the earliest; if none does (a gap), `local` read with the offset from before the gap.
/// Assumes at most one transition within a day, true of the zones tested.
pub fn model_instant(tz: &TimeZone, local: DateTime) -> Timestamp {
    let naive = as_utc(local);
    let before = tz.to_offset(naive - SignedDuration::from_hours(24));
    let after = tz.to_offset(naive + SignedDuration::from_hours(24));
    [before, after]
        .into_iter()
        .map(|offset| (offset, minus_offset(local, offset)))
        .filter(|&(offset, t)| tz.to_offset(t) == offset)
        .map(|(_, t)| t)
        .min()
        .unwrap_or_else(|| minus_offset(local, before))
}

/// The gap length if `local` does not exist in `tz`, else `None`.
pub fn model_gap(tz: &TimeZone, local: DateTime) -> Option<SignedDuration> {
    let naive = as_utc(local);
    let before = tz.to_offset(naive - SignedDuration::from_hours(24));
    let after = tz.to_offset(naive + SignedDuration::from_hours(24));
    let exists = [before, after]
        .into_iter()
        .any(|offset| tz.to_offset(minus_offset(local, offset)) == offset);
    (!exists).then(|| SignedDuration::from_secs((after.seconds() - before.seconds()).into()))
}

pub fn key(date: Date, time: Time) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}",
        date.year(),
        date.month(),
        date.day(),
        time.hour(),
        time.minute()
    )
}

pub fn weekday(n: u8) -> Weekday {
    Weekday::from_monday_zero_offset(n as i8).unwrap()
}

/// Any minute of the day, one between 01:00 and 03:59 (where the DST folds of all the tested
/// zones fall), or one between 02:00 and 02:59 (their spring-forward gap), in equal parts.
pub fn arb_time() -> impl Strategy<Value = Time> {
    prop_oneof![0u32..24 * 60, 60u32..4 * 60, 120u32..3 * 60]
        .prop_map(|m| jiff::civil::time((m / 60) as i8, (m % 60) as i8, 0, 0))
}

pub fn arb_date() -> impl Strategy<Value = Date> {
    (2020i16..2034, 0i64..366)
        .prop_map(|(y, d)| jiff::civil::date(y, 1, 1).checked_add(d.days()).unwrap())
}
