//! The lake: GH Archive-format hour files that every stored event is written to once, which the history
//! engines (`forgecast aggregate`, the Spark jobs) read as they read GH Archive itself.
//!
//! - [`layout`]: where an event's line goes (`<lake>/YYYY/MM/DD/HH.json`, `HH.json.gz` once the hour is over),
//!   and the listing of a lake's hour files.
//! - [`committed`]: the lake the embedded store writes, recorded file by file in its database (committed end,
//!   form, whether it may hold an uncommitted tail), so a committed row always points at bytes on disk, opening
//!   looks only at the files that may hold a tail, and hours that are over are kept compressed.
//! - [`gzip`]: lake bytes compressed as gzip members on every core.
//! - [`appender`]: the lake `forgecast archive` appends to from the bus, at least once, with hours that are
//!   over compressed.

pub mod appender;
pub mod committed;
pub mod gzip;
pub mod layout;

pub use appender::{Appended, LakeAppender};
pub use committed::{FileState, Lake, Pending};
