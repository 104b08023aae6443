use jiff::civil::{Date, Time};

use crate::{MAX_DURATION_MINUTES, MAX_RANGE_YEARS, MAX_SETTING_MINUTES};

/// Why a schedule, a lifecycle setting or a calendar request was refused.
///
/// Every variant is a caller error (bad input), so the REST layer can map all of them to a 400
/// with [`ScheduleError::code`] as the stable error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("unknown time zone {name:?} (use an IANA name such as \"Europe/Paris\")")]
    UnknownTimezone { name: String },
    #[error("a schedule needs at least one weekday or one extra session")]
    NoDays,
    #[error("the last date {last} is before the first date {first}")]
    LastBeforeFirst { first: Date, last: Date },
    #[error("a session lasts 1 to {MAX_DURATION_MINUTES} minutes, not {minutes}")]
    InvalidDuration { minutes: u32 },
    #[error("the schedule spans {first} to {last}, more than {MAX_RANGE_YEARS} years")]
    RangeTooLong { first: Date, last: Date },
    #[error("start time {time} must be on a whole minute")]
    StartNotWholeMinute { time: Time },
    #[error("date {date} is outside the supported years 1900 to 2999")]
    DateOutOfRange { date: Date },
    #[error("{setting} is at most {MAX_SETTING_MINUTES} minutes, not {minutes}")]
    SettingTooLong { setting: &'static str, minutes: u32 },
}

impl ScheduleError {
    /// A stable, machine-readable code for API responses.
    pub fn code(&self) -> &'static str {
        match self {
            ScheduleError::UnknownTimezone { .. } => "unknown_timezone",
            ScheduleError::NoDays => "no_days",
            ScheduleError::LastBeforeFirst { .. } => "last_before_first",
            ScheduleError::InvalidDuration { .. } => "invalid_duration",
            ScheduleError::RangeTooLong { .. } => "range_too_long",
            ScheduleError::StartNotWholeMinute { .. } => "start_not_whole_minute",
            ScheduleError::DateOutOfRange { .. } => "date_out_of_range",
            ScheduleError::SettingTooLong { .. } => "setting_too_long",
        }
    }
}
