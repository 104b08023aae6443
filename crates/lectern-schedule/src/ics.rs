//! iCalendar (RFC 5545) feeds, so students can subscribe to their classes.
//!
//! One `VEVENT` per session rather than an `RRULE` with `EXDATE`s: the sessions are already
//! expanded (holidays removed, extras added, DST gaps resolved), so writing them out is exact by
//! construction, and one-off sessions need no `RDATE`/override machinery that calendar apps
//! implement unevenly. A semester is a few dozen events, so the feed stays small.
//!
//! Times are written as local times with `TZID` plus a `VTIMEZONE` generated from the bundled
//! tz rules, listing every transition of the years the feed covers (one `STANDARD`/`DAYLIGHT`
//! component per onset, no `RRULE`, so it is exact even when the rules changed in between).
//! A local end time that falls in the second half of a fall-back fold cannot be written with
//! `TZID` (readers take the first instant), so that rare `DTEND` is written in UTC instead.

use jiff::civil::{Date, DateTime};
use jiff::tz::{Dst, Offset, TimeZone};
use jiff::{SignedDuration, Timestamp};

use crate::schedule::resolve_local;
use crate::zone::{time_zone, zone_name};
use crate::{Occurrence, ScheduleError, shift};

/// Longest content line in octets, excluding the CRLF (RFC 5545 section 3.1).
pub const MAX_LINE_OCTETS: usize = 75;

/// What a feed is about and for whom.
#[derive(Debug, Clone, Copy)]
pub struct CalendarFeed<'a> {
    /// The course's stable id; part of every event's UID.
    pub course_id: &'a str,
    /// Used as the calendar name and as each event's summary.
    pub title: &'a str,
    /// The course's IANA timezone; times are written in it.
    pub timezone: &'a str,
    /// The domain that makes UIDs globally unique, e.g. the server's host name.
    pub uid_domain: &'a str,
    /// A member's own join link (member feeds), added to each event as `URL` and in the
    /// description. `None` for the plain course feed.
    pub join_link: Option<&'a str>,
    /// A member's course home link (member feeds), added to each event's description after the
    /// join link.
    pub home_link: Option<&'a str>,
}

/// The feed for `occurrences` (written in the given order), stamped with `now`.
///
/// Event UIDs are `<session key>-<course id>@<uid_domain>` (e.g.
/// `20260901T1000-algebra-1@lectern.example.org`): the same in the course feed and every member
/// feed, and unchanged when the feed is regenerated, so calendar apps update events in place.
pub fn course_calendar(
    feed: &CalendarFeed<'_>,
    occurrences: &[Occurrence],
    now: Timestamp,
) -> Result<String, ScheduleError> {
    let tz = time_zone(feed.timezone)?;
    let tzid = param_value(zone_name(&tz));
    let mut w = Writer::default();
    w.line("BEGIN:VCALENDAR");
    w.line("VERSION:2.0");
    w.line("PRODID:-//Lectern//lectern-schedule//EN");
    w.line("CALSCALE:GREGORIAN");
    w.line("METHOD:PUBLISH");
    w.line(&format!("X-WR-CALNAME:{}", escape_text(feed.title)));
    w.line(&format!("X-WR-TIMEZONE:{}", escape_text(zone_name(&tz))));
    w.line("REFRESH-INTERVAL;VALUE=DURATION:PT6H");
    w.line("X-PUBLISHED-TTL:PT6H");

    let first = occurrences.iter().map(|o| o.start_utc).min().unwrap_or(now);
    let last = occurrences.iter().map(|o| o.end_utc).max().unwrap_or(now);
    write_vtimezone(&mut w, &tz, &tzid, first, last);

    let stamp = utc_datetime(now);
    let link = feed.join_link.map(uri_value);
    let home = feed.home_link.map(uri_value);
    for occ in occurrences {
        w.line("BEGIN:VEVENT");
        w.line(&format!(
            "UID:{}",
            escape_text(&format!(
                "{}-{}@{}",
                compact_key(occ.session_key.as_str()),
                feed.course_id,
                feed.uid_domain
            ))
        ));
        w.line(&format!("DTSTAMP:{stamp}"));
        w.line(&date_time_property("DTSTART", &tz, &tzid, occ.start_utc));
        w.line(&date_time_property("DTEND", &tz, &tzid, occ.end_utc));
        w.line(&format!("SUMMARY:{}", escape_text(feed.title)));
        if let Some(link) = &link {
            w.line(&format!("URL:{link}"));
            let mut description = format!("Join the class: {link}");
            if let Some(home) = &home {
                description.push_str(&format!("\nCourse home: {home}"));
            }
            w.line(&format!("DESCRIPTION:{}", escape_text(&description)));
        }
        w.line("END:VEVENT");
    }
    w.line("END:VCALENDAR");
    Ok(w.out)
}

/// Accumulates content lines, folded and CRLF-terminated.
#[derive(Debug, Default)]
struct Writer {
    out: String,
}

impl Writer {
    /// Folds at 75 octets (a continuation line starts with one space, which counts), never
    /// inside a UTF-8 sequence.
    fn line(&mut self, content: &str) {
        let mut used = 0;
        for ch in content.chars() {
            let len = ch.len_utf8();
            if used + len > MAX_LINE_OCTETS {
                self.out.push_str("\r\n ");
                used = 1;
            }
            self.out.push(ch);
            used += len;
        }
        self.out.push_str("\r\n");
    }
}

/// Escapes a TEXT value (RFC 5545 section 3.3.11). Control characters other than tab, which
/// TEXT may not contain, are dropped; any line break becomes `\n`.
pub fn escape_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {
                chars.next_if_eq(&'\n');
                out.push_str("\\n");
            }
            '\t' => out.push('\t'),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// A URI value is not TEXT-escaped, but must not break the line: controls are dropped.
fn uri_value(uri: &str) -> String {
    uri.chars().filter(|c| !c.is_control()).collect()
}

/// A parameter value, quoted when it holds `:`, `;` or `,` (DQUOTE itself is not allowed).
fn param_value(value: &str) -> String {
    let clean: String = value
        .chars()
        .filter(|&c| c != '"' && !c.is_control())
        .collect();
    if clean.contains([':', ';', ',']) {
        format!("\"{clean}\"")
    } else {
        clean
    }
}

/// `2026-09-01T10:00` -> `20260901T1000`.
fn compact_key(key: &str) -> String {
    key.chars().filter(|c| !matches!(c, '-' | ':')).collect()
}

fn local_datetime(dt: DateTime) -> String {
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

fn utc_datetime(ts: Timestamp) -> String {
    format!("{}Z", local_datetime(Offset::UTC.to_datetime(ts)))
}

/// `NAME;TZID=zone:local` when the local time reads back as `at`, else `NAME:utcZ`.
fn date_time_property(name: &str, tz: &TimeZone, tzid: &str, at: Timestamp) -> String {
    let at = truncate_to_second(at);
    let local = tz.to_datetime(at);
    if resolve_local(tz, local) == Some(at) {
        format!("{name};TZID={tzid}:{}", local_datetime(local))
    } else {
        format!("{name}:{}", utc_datetime(at))
    }
}

fn truncate_to_second(ts: Timestamp) -> Timestamp {
    Timestamp::from_second(ts.as_second()).unwrap_or(ts)
}

/// `+HHMM`, or `+HHMMSS` for the odd historical offset with seconds.
fn utc_offset(offset: Offset) -> String {
    let secs = offset.seconds();
    let sign = if secs < 0 { '-' } else { '+' };
    let abs = secs.unsigned_abs();
    let (h, m, s) = (abs / 3600, abs / 60 % 60, abs % 60);
    if s == 0 {
        format!("{sign}{h:02}{m:02}")
    } else {
        format!("{sign}{h:02}{m:02}{s:02}")
    }
}

/// The local midnight starting `year` in `tz`, as an instant.
fn start_of_year(tz: &TimeZone, year: i16) -> Option<Timestamp> {
    let date = Date::new(year, 1, 1).ok()?;
    resolve_local(tz, date.to_datetime(jiff::civil::Time::midnight()))
}

/// A `VTIMEZONE` covering the whole years from `first` to `last`: the onset in force at the
/// start of the first year, then every transition until the end of the last year.
fn write_vtimezone(w: &mut Writer, tz: &TimeZone, tzid: &str, first: Timestamp, last: Timestamp) {
    let from_year = tz.to_datetime(first).year();
    let to_year = tz.to_datetime(last).year().saturating_add(1);
    let from = start_of_year(tz, from_year).unwrap_or(first);
    let to = start_of_year(tz, to_year).unwrap_or(last);

    w.line("BEGIN:VTIMEZONE");
    w.line(&format!("TZID:{tzid}"));
    w.line(&format!("X-LIC-LOCATION:{}", escape_text(zone_name(tz))));
    let just_before = |ts: Timestamp| shift(ts, SignedDuration::from_nanos(-1));
    let mut onsets: Vec<(Timestamp, Offset, Offset, Dst, String)> = Vec::new();
    let base = tz.preceding(from).next();
    let following = tz
        .following(just_before(from))
        .take_while(|t| t.timestamp() < to);
    for t in base.into_iter().chain(following) {
        let before = tz.to_offset(just_before(t.timestamp()));
        onsets.push((
            t.timestamp(),
            before,
            t.offset(),
            t.dst(),
            t.abbreviation().to_owned(),
        ));
    }
    if onsets.is_empty() {
        // A zone without transitions (UTC): one standard-time component from 1970 on.
        let info = tz.to_offset_info(from);
        w.line("BEGIN:STANDARD");
        w.line("DTSTART:19700101T000000");
        w.line(&format!("TZOFFSETFROM:{}", utc_offset(info.offset())));
        w.line(&format!("TZOFFSETTO:{}", utc_offset(info.offset())));
        w.line(&format!("TZNAME:{}", escape_text(info.abbreviation())));
        w.line("END:STANDARD");
    }
    for (at, before, after, dst, abbreviation) in onsets {
        let kind = if dst.is_dst() { "DAYLIGHT" } else { "STANDARD" };
        w.line(&format!("BEGIN:{kind}"));
        // The onset is written in the local time in force before it (TZOFFSETFROM).
        w.line(&format!(
            "DTSTART:{}",
            local_datetime(before.to_datetime(at))
        ));
        w.line(&format!("TZOFFSETFROM:{}", utc_offset(before)));
        w.line(&format!("TZOFFSETTO:{}", utc_offset(after)));
        w.line(&format!("TZNAME:{}", escape_text(&abbreviation)));
        w.line(&format!("END:{kind}"));
    }
    w.line("END:VTIMEZONE");
}

#[cfg(test)]
mod tests {
    use jiff::tz::offset;

    use super::*;

    #[test]
    fn text_escaping_covers_the_special_characters() {
        assert_eq!(
            escape_text("a,b;c\\d\ne\r\nf\rg\th\u{7}i"),
            "a\\,b\\;c\\\\d\\ne\\nf\\ng\thi"
        );
        assert_eq!(escape_text("Élève 数学"), "Élève 数学");
    }

    #[test]
    fn long_lines_fold_at_75_octets_on_char_boundaries() {
        let mut w = Writer::default();
        let content = format!("SUMMARY:{}", "é".repeat(100));
        w.line(&content);
        let lines: Vec<&str> = w.out.split_terminator("\r\n").collect();
        assert!(lines.len() > 1);
        for (i, line) in lines.iter().enumerate() {
            assert!(line.len() <= MAX_LINE_OCTETS, "{line:?}");
            assert_eq!(line.starts_with(' '), i > 0);
        }
        let unfolded = w.out.trim_end_matches("\r\n").replace("\r\n ", "");
        assert_eq!(unfolded, content);
        // Exactly 75 octets is not folded.
        let mut w = Writer::default();
        w.line(&"x".repeat(75));
        assert_eq!(w.out, format!("{}\r\n", "x".repeat(75)));
    }

    #[test]
    fn offsets_and_params_are_formatted() {
        assert_eq!(utc_offset(offset(2)), "+0200");
        assert_eq!(utc_offset(offset(-5)), "-0500");
        assert_eq!(utc_offset(Offset::UTC), "+0000");
        assert_eq!(utc_offset(Offset::from_seconds(19_800).unwrap()), "+0530");
        assert_eq!(utc_offset(Offset::from_seconds(-3_661).unwrap()), "-010101");
        assert_eq!(param_value("Europe/Paris"), "Europe/Paris");
        assert_eq!(param_value("a:b\""), "\"a:b\"");
        assert_eq!(
            uri_value("https://x/y?a=1,2\r\nEVIL:1"),
            "https://x/y?a=1,2EVIL:1"
        );
        assert_eq!(compact_key("2026-09-01T10:00"), "20260901T1000");
    }

    #[test]
    fn end_in_second_half_of_a_fold_is_written_in_utc() {
        let tz = time_zone("Europe/Paris").unwrap();
        // 00:15Z is 02:15 CEST (first 02:15), 01:15Z is 02:15 CET (second 02:15).
        let first: Timestamp = "2026-10-25T00:15Z".parse().unwrap();
        let second: Timestamp = "2026-10-25T01:15Z".parse().unwrap();
        assert_eq!(
            date_time_property("DTEND", &tz, "Europe/Paris", first),
            "DTEND;TZID=Europe/Paris:20261025T021500"
        );
        assert_eq!(
            date_time_property("DTEND", &tz, "Europe/Paris", second),
            "DTEND:20261025T011500Z"
        );
    }
}
