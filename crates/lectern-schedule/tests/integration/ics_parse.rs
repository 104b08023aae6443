//! The iCalendar feed read back with an independent parser (the `icalendar` crate), and its
//! VTIMEZONE checked against the tz database by resolving every event's local time through it.

use icalendar::parser::{Component, Property, read_calendar, unfold};
use jiff::civil::{DateTime, Weekday, date, time};
use jiff::tz::Offset;
use jiff::{SignedDuration, Timestamp};
use lectern_schedule::ics::{CalendarFeed, course_calendar};
use lectern_schedule::{Occurrence, OneOff, Schedule, ScheduleError, WeeklySchedule, expand_all};
use proptest::prelude::*;

use crate::support::{ZONES, ts};

const NOW: &str = "2026-08-20T12:34:56.789Z";

fn feed<'a>(zone: &'a str, title: &'a str, link: Option<&'a str>) -> CalendarFeed<'a> {
    CalendarFeed {
        course_id: "algebra-1",
        title,
        timezone: zone,
        uid_domain: "lectern.example.org",
        join_link: link,
        home_link: None,
    }
}

/// Tuesdays and Thursdays 10:00-11:30, autumn 2026, a holiday and one extra session.
fn autumn(zone: &str) -> Vec<Occurrence> {
    expand_all(&[Schedule::new(WeeklySchedule {
        timezone: zone.into(),
        days: vec![Weekday::Tuesday, Weekday::Thursday],
        start: time(10, 0, 0, 0),
        duration_minutes: 90,
        first_date: date(2026, 9, 1),
        last_date: date(2026, 12, 15),
        exceptions: vec![date(2026, 11, 10)],
        extra: vec![OneOff {
            date: date(2026, 12, 18),
            start: time(14, 0, 0, 0),
            duration_minutes: 120,
        }],
    })
    .unwrap()])
}

/// Two years of Sundays at 02:30, which lands in every gap and fold of these zones.
fn dst_sundays(zone: &str) -> Vec<Occurrence> {
    expand_all(&[Schedule::new(WeeklySchedule {
        timezone: zone.into(),
        days: vec![Weekday::Sunday],
        start: time(2, 30, 0, 0),
        duration_minutes: 60,
        first_date: date(2026, 1, 1),
        last_date: date(2027, 12, 31),
        exceptions: vec![],
        extra: vec![],
    })
    .unwrap()])
}

/// Checks the raw text: CRLF only, no line over 75 octets.
fn assert_content_lines(ics: &str) {
    assert!(ics.ends_with("\r\n"));
    for line in ics.split_terminator("\r\n") {
        assert!(
            !line.contains('\n') && !line.contains('\r'),
            "bare line break in {line:?}"
        );
        assert!(line.len() <= 75, "{} octets: {line:?}", line.len());
    }
}

fn parse(ics: &str) -> (Vec<Property<'static>>, Vec<Component<'static>>) {
    assert_content_lines(ics);
    let unfolded = unfold(ics);
    let cal = read_calendar(&unfolded).expect("the independent parser reads the feed");
    let props = cal.properties.iter().map(own_prop).collect();
    let comps = cal.components.iter().map(own_comp).collect();
    (props, comps)
}

fn own_prop(p: &Property<'_>) -> Property<'static> {
    Property {
        name: p.name.to_owned(),
        val: p.val.to_owned(),
        params: p
            .params
            .iter()
            .map(|param| icalendar::parser::Parameter {
                key: param.key.to_owned(),
                val: param.val.as_ref().map(|v| v.to_owned()),
            })
            .collect(),
    }
}

fn own_comp(c: &Component<'_>) -> Component<'static> {
    Component {
        name: c.name.to_owned(),
        properties: c.properties.iter().map(own_prop).collect(),
        components: c.components.iter().map(own_comp).collect(),
    }
}

fn value<'c>(c: &'c Component<'_>, name: &str) -> &'c str {
    c.find_prop(name)
        .unwrap_or_else(|| panic!("{} has no {name}", c.name))
        .val
        .as_str()
}

fn param<'p>(p: &'p Property<'_>, key: &str) -> Option<&'p str> {
    p.params
        .iter()
        .find(|param| param.key.as_str() == key)
        .and_then(|param| param.val.as_ref())
        .map(|v| v.as_str())
}

fn parse_local(s: &str) -> DateTime {
    DateTime::strptime("%Y%m%dT%H%M%S", s).unwrap()
}

fn parse_offset(s: &str) -> Offset {
    let sign = if s.starts_with('-') { -1 } else { 1 };
    let digits: Vec<i32> = s.as_bytes()[1..]
        .chunks(2)
        .map(|d| std::str::from_utf8(d).unwrap().parse().unwrap())
        .collect();
    let secs = digits[0] * 3600 + digits[1] * 60 + digits.get(2).copied().unwrap_or(0);
    Offset::from_seconds(sign * secs).unwrap()
}

/// A parsed VTIMEZONE: onsets in UTC with the offset they bring.
struct Vtimezone {
    onsets: Vec<(Timestamp, Offset)>,
}

impl Vtimezone {
    fn from_component(c: &Component<'_>) -> Vtimezone {
        let mut onsets: Vec<(Timestamp, Offset)> = c
            .components
            .iter()
            .map(|sub| {
                assert!(sub.name.as_str() == "STANDARD" || sub.name.as_str() == "DAYLIGHT");
                assert!(sub.find_prop("TZNAME").is_some());
                let from = parse_offset(value(sub, "TZOFFSETFROM"));
                let to = parse_offset(value(sub, "TZOFFSETTO"));
                let onset = from
                    .to_timestamp(parse_local(value(sub, "DTSTART")))
                    .unwrap();
                (onset, to)
            })
            .collect();
        onsets.sort();
        assert!(!onsets.is_empty());
        Vtimezone { onsets }
    }

    /// The offset at `t`, by this VTIMEZONE only (`None` before its first onset).
    fn offset_at(&self, t: Timestamp) -> Option<Offset> {
        self.onsets
            .iter()
            .rev()
            .find(|(onset, _)| *onset <= t)
            .map(|&(_, o)| o)
    }

    /// RFC 5545 reading of a local time: the earliest instant showing it; in a gap, the time
    /// read with the offset before the gap.
    fn resolve(&self, local: DateTime) -> Timestamp {
        let mut valid: Vec<Timestamp> = self
            .onsets
            .iter()
            .map(|&(_, o)| o.to_timestamp(local).unwrap())
            .filter(|&t| {
                self.offset_at(t)
                    .is_some_and(|o| o.to_timestamp(local).unwrap() == t)
            })
            .collect();
        valid.sort();
        if let Some(&t) = valid.first() {
            return t;
        }
        let probe = Offset::UTC.to_timestamp(local).unwrap() - SignedDuration::from_hours(24);
        self.offset_at(probe).unwrap().to_timestamp(local).unwrap()
    }
}

/// Reads an event's DTSTART/DTEND, as TZID local time or UTC.
fn event_time(ev: &Component<'_>, name: &str, zone: &str, vtz: &Vtimezone) -> Timestamp {
    let prop = ev.find_prop(name).unwrap();
    let raw = prop.val.as_str();
    match raw.strip_suffix('Z') {
        Some(utc) => {
            assert_eq!(param(prop, "TZID"), None);
            Offset::UTC.to_timestamp(parse_local(utc)).unwrap()
        }
        None => {
            assert_eq!(param(prop, "TZID"), Some(zone), "{name} {raw}");
            vtz.resolve(parse_local(raw))
        }
    }
}

/// Parses a feed and checks it against the occurrences it was made from.
fn check_feed(zone: &str, occs: &[Occurrence], ics: &str) -> Vec<Component<'static>> {
    let (props, comps) = parse(ics);
    let prop = |name: &str| {
        props
            .iter()
            .find(|p| p.name.as_str() == name)
            .map(|p| p.val.as_str().to_owned())
    };
    assert_eq!(prop("VERSION").as_deref(), Some("2.0"));
    assert!(prop("PRODID").is_some());
    assert_eq!(prop("CALSCALE").as_deref(), Some("GREGORIAN"));

    let vtimezones: Vec<_> = comps
        .iter()
        .filter(|c| c.name.as_str() == "VTIMEZONE")
        .collect();
    assert_eq!(vtimezones.len(), 1);
    assert_eq!(value(vtimezones[0], "TZID"), zone);
    let vtz = Vtimezone::from_component(vtimezones[0]);

    let events: Vec<_> = comps
        .iter()
        .filter(|c| c.name.as_str() == "VEVENT")
        .cloned()
        .collect();
    assert_eq!(events.len(), occs.len());
    let mut uids = std::collections::BTreeSet::new();
    for (ev, occ) in events.iter().zip(occs) {
        assert!(uids.insert(value(ev, "UID").to_owned()), "duplicate UID");
        assert_eq!(value(ev, "DTSTAMP"), "20260820T123456Z");
        let start = event_time(ev, "DTSTART", zone, &vtz);
        let end = event_time(ev, "DTEND", zone, &vtz);
        assert_eq!(start, occ.start_utc, "{}", occ.session_key);
        assert_eq!(end, occ.end_utc, "{}", occ.session_key);
        // The VTIMEZONE agrees with the tz database at both ends.
        let tz = &occ.time_zone;
        assert_eq!(vtz.offset_at(start), Some(tz.to_offset(start)));
        assert_eq!(vtz.offset_at(end), Some(tz.to_offset(end)));
    }
    events
}

#[test]
fn member_feed_parses_with_times_links_and_escaped_text() {
    let occs = autumn("Europe/Paris");
    assert_eq!(occs.len(), 31);
    let title =
        "Algèbre 1, groupe B; salle \\204\nmardi & jeudi — an exceedingly long course title";
    let link = "https://lectern.example.org/join/algebra-1?token=abc,def";
    let ics = course_calendar(&feed("Europe/Paris", title, Some(link)), &occs, ts(NOW)).unwrap();
    let events = check_feed("Europe/Paris", &occs, &ics);

    let first = &events[0];
    let dtstart = first.find_prop("DTSTART").unwrap();
    assert_eq!(param(dtstart, "TZID"), Some("Europe/Paris"));
    assert_eq!(dtstart.val.as_str(), "20260901T100000");
    assert_eq!(value(first, "DTEND"), "20260901T113000");
    assert_eq!(
        value(first, "UID"),
        "20260901T1000-algebra-1@lectern.example.org"
    );
    assert_eq!(value(first, "SUMMARY"), title);
    assert_eq!(value(first, "URL"), link);
    assert_eq!(
        value(first, "DESCRIPTION"),
        format!("Join the class: {link}")
    );
    // Across the change to winter time the local time stays 10:00.
    let starts: Vec<&str> = events.iter().map(|e| value(e, "DTSTART")).collect();
    assert!(starts.contains(&"20261027T100000"));
    assert!(!starts.iter().any(|s| s.starts_with("20261110")), "holiday");
    assert_eq!(*starts.last().unwrap(), "20261218T140000");
    assert!(starts.iter().take(30).all(|s| s.ends_with("T100000")));
}

#[test]
fn course_and_member_feeds_share_uids() {
    let occs = autumn("America/New_York");
    let course =
        course_calendar(&feed("America/New_York", "Physics", None), &occs, ts(NOW)).unwrap();
    let member = course_calendar(
        &feed("America/New_York", "Physics", Some("https://x.example/j/1")),
        &occs,
        ts(NOW),
    )
    .unwrap();
    let course_events = check_feed("America/New_York", &occs, &course);
    let member_events = check_feed("America/New_York", &occs, &member);
    for (c, m) in course_events.iter().zip(&member_events) {
        assert_eq!(value(c, "UID"), value(m, "UID"));
        assert!(c.find_prop("URL").is_none() && c.find_prop("DESCRIPTION").is_none());
        assert_eq!(value(m, "URL"), "https://x.example/j/1");
    }
    // Regenerating later changes only DTSTAMP.
    let again = course_calendar(
        &feed("America/New_York", "Physics", None),
        &occs,
        ts(NOW) + SignedDuration::from_hours(5),
    )
    .unwrap();
    let strip = |s: &str| {
        s.lines()
            .filter(|l| !l.starts_with("DTSTAMP"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(strip(&course), strip(&again));
}

#[test]
fn feeds_resolve_through_their_vtimezone_in_every_zone_across_gaps_and_folds() {
    for zone in ZONES {
        let occs = dst_sundays(zone);
        assert!(occs.len() >= 104);
        let ics = course_calendar(&feed(zone, "Night class", None), &occs, ts(NOW)).unwrap();
        check_feed(zone, &occs, &ics);
    }
}

#[test]
fn fold_day_end_is_written_in_utc() {
    let occs = dst_sundays("Europe/Paris");
    let fold = occs
        .iter()
        .find(|o| o.session_key.as_str() == "2026-10-25T02:30")
        .unwrap();
    let ics = course_calendar(
        &feed("Europe/Paris", "Night class", None),
        std::slice::from_ref(fold),
        ts(NOW),
    )
    .unwrap();
    let events = check_feed("Europe/Paris", std::slice::from_ref(fold), &ics);
    assert_eq!(value(&events[0], "DTSTART"), "20261025T023000");
    assert_eq!(value(&events[0], "DTEND"), "20261025T013000Z");
    // And the gap day's start is written as the wall time it moved to.
    let gap = occs
        .iter()
        .find(|o| o.session_key.as_str() == "2026-03-29T02:30")
        .unwrap();
    let ics = course_calendar(
        &feed("Europe/Paris", "Night class", None),
        std::slice::from_ref(gap),
        ts(NOW),
    )
    .unwrap();
    let events = check_feed("Europe/Paris", std::slice::from_ref(gap), &ics);
    assert_eq!(value(&events[0], "DTSTART"), "20260329T033000");
}

#[test]
fn vtimezone_components_follow_the_rules() {
    let occs = autumn("Australia/Sydney");
    let ics = course_calendar(&feed("Australia/Sydney", "Maths", None), &occs, ts(NOW)).unwrap();
    let (_, comps) = parse(&ics);
    let vtz = comps
        .iter()
        .find(|c| c.name.as_str() == "VTIMEZONE")
        .unwrap();
    let subs: Vec<(String, String, String, String)> = vtz
        .components
        .iter()
        .map(|s| {
            (
                s.name.to_string(),
                value(s, "DTSTART").to_owned(),
                value(s, "TZOFFSETFROM").to_owned(),
                value(s, "TZOFFSETTO").to_owned(),
            )
        })
        .collect();
    let row = |a: &str, b: &str, c: &str, d: &str| {
        (a.to_owned(), b.to_owned(), c.to_owned(), d.to_owned())
    };
    // The rule in force on 1 January 2026 (set in October 2025), then the two 2026 changes.
    assert_eq!(
        subs,
        [
            row("DAYLIGHT", "20251005T020000", "+1000", "+1100"),
            row("STANDARD", "20260405T030000", "+1100", "+1000"),
            row("DAYLIGHT", "20261004T020000", "+1000", "+1100"),
        ]
    );
}

#[test]
fn zone_without_dst_and_empty_feed_are_valid() {
    let occs = autumn("Asia/Kolkata");
    let ics = course_calendar(&feed("Asia/Kolkata", "Chemistry", None), &occs, ts(NOW)).unwrap();
    check_feed("Asia/Kolkata", &occs, &ics);
    assert!(ics.contains("TZOFFSETTO:+0530\r\n"));
    for zone in ["Asia/Kolkata", "UTC", "Europe/Paris"] {
        let ics = course_calendar(&feed(zone, "Nothing yet", None), &[], ts(NOW)).unwrap();
        check_feed(zone, &[], &ics);
    }
}

#[test]
fn unknown_feed_timezone_is_an_error() {
    assert_eq!(
        course_calendar(&feed("Nowhere/Land", "x", None), &[], ts(NOW)),
        Err(ScheduleError::UnknownTimezone {
            name: "Nowhere/Land".into()
        })
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]

    #[test]
    fn any_title_and_link_make_a_parsable_feed(
        title in "\\PC{0,120}|[a-z,;\\\\\r\n\t é数😀]{0,200}",
        link in "[a-zA-Z0-9:/?=&%.,;é\r\n-]{1,150}",
    ) {
        let occs = autumn("Europe/Paris");
        let occs = &occs[..3];
        let ics = course_calendar(&feed("Europe/Paris", &title, Some(&link)), occs, ts(NOW)).unwrap();
        let events = check_feed("Europe/Paris", occs, &ics);
        let expected_title: String = title
            .replace("\r\n", "\n")
            .replace('\r', "\n")
            .chars()
            .filter(|&c| !c.is_control() || c == '\n' || c == '\t')
            .collect();
        let expected_link: String = link.chars().filter(|c| !c.is_control()).collect();
        for ev in &events {
            prop_assert_eq!(value(ev, "SUMMARY"), expected_title.as_str());
            prop_assert_eq!(value(ev, "URL"), expected_link.as_str());
        }
    }
}
