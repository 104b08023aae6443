//! Property tests and feed-parsing tests for `lectern-schedule`, in one test binary.

mod expand_props;
mod ics_parse;
mod lifecycle_props;
mod support;
