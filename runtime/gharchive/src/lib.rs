//! GH Archive and the other bundled histories: where events of the past come from.
//!
//! - [`hours`]: hour files named as GH Archive names them, ranges of hours, one hour opened from a directory or
//!   downloaded as a stream.
//! - [`lines`]: one hour file decoded line by line into events (a line over the limit or not an event becomes a
//!   dead letter; a damaged file keeps what came before the damage).
//! - [`inflate`]: whole-file inflate with libdeflate, for the batch history.
//! - [`replay`]: the bundled real events played back as if happening now (the embedded default's source).
//! - [`githut`]: GitHut 2.0's quarterly counts per language, the history of previous years.
//! - [`jira`]: the Apache Jira bug reports as `IssuesEvent`s (opened, closed) written to hour files, the real
//!   issue history the issue-outcome model is evaluated on.

pub mod githut;
pub mod hours;
pub mod inflate;
pub mod jira;
pub mod lines;
pub mod replay;

pub use hours::{Hour, HourError, HourSource, hours, open};
pub use lines::{
    Decoded, Line, Lines, LinesError, MAX_LINE_BYTES, TOO_LONG_KEPT, decode, parse_lines,
    read_lines, read_plain_lines,
};
