//! GH Archive hour files: naming, ranges of hours, and decoding one file as a stream of events.
//!
//! GH Archive publishes one gzipped JSON-lines file per hour, `YYYY-MM-DD-H.json.gz` (hour without a leading
//! zero). A file is decoded as it arrives, from a local directory or over HTTP, line by line: nothing holds a
//! whole file in memory. A line that is not an event becomes a dead letter carrying the file name and line
//! number, and decoding goes on. The event schema changed over the years (2015, 2021 and 2025 differ in their
//! payloads); decoding reads only the fields every year has, see [`forgecast_core::event`].

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use flate2::read::MultiGzDecoder;
use forgecast_core::source::Incoming;
use forgecast_core::{DeadLetter, Event};
use tokio::sync::mpsc;

pub mod inflate;

/// One hour of the archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hour(NaiveDateTime);

impl Hour {
    /// Parses `2024-01-01T00` (also `2024-01-01T0` and `2024-01-01-0`).
    pub fn parse(text: &str) -> Result<Hour, String> {
        let bad = || format!("{text:?} is not an hour like 2024-01-01T00");
        let (day, hour) = text
            .rsplit_once(['T', '-'])
            .filter(|(d, _)| d.len() == 10)
            .ok_or_else(bad)?;
        let day = NaiveDate::parse_from_str(day, "%Y-%m-%d").map_err(|_| bad())?;
        let hour: u32 = hour.parse().ok().filter(|h| *h < 24).ok_or_else(bad)?;
        Ok(Hour(day.and_time(
            NaiveTime::from_hms_opt(hour, 0, 0).ok_or_else(bad)?,
        )))
    }

    /// The archive's file name for this hour.
    pub fn file_name(&self) -> String {
        format!("{}-{}.json.gz", self.0.format("%Y-%m-%d"), self.0.hour())
    }

    /// Unix seconds of the hour's start.
    pub fn unix(&self) -> i64 {
        self.0.and_utc().timestamp()
    }
}

impl fmt::Display for Hour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%dT%H"))
    }
}

/// Every `every`-th hour from `from` to `to`, both included.
pub fn hours(from: Hour, to: Hour, every: u32) -> Result<Vec<Hour>, String> {
    if every == 0 {
        return Err("every-nth-hour must be at least 1".into());
    }
    if to < from {
        return Err(format!("--to {to} is before --from {from}"));
    }
    let mut list = Vec::new();
    let mut at = from.0;
    while at <= to.0 {
        list.push(Hour(at));
        at += Duration::hours(i64::from(every));
    }
    Ok(list)
}

/// Every hour file under `dir`, searched recursively and sorted: `*.json.gz` as GH Archive publishes them,
/// `*.json` as the runtime's lake keeps them.
pub fn hour_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(at) = pending.pop() {
        for entry in std::fs::read_dir(&at)? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.to_string_lossy().ends_with(".json.gz")
                || path.extension().is_some_and(|e| e == "json")
            {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Where hour files come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HourSource {
    /// A local directory of `YYYY-MM-DD-H.json.gz` files.
    Dir(PathBuf),
    /// A base URL such as `https://data.gharchive.org`.
    Url(String),
}

/// Why an hour could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HourError {
    /// The archive has no file for this hour.
    #[error("{0}: not in the archive")]
    Missing(String),
    /// Reading or fetching failed; trying again may work.
    #[error("{name}: {reason}")]
    Failed {
        /// The file.
        name: String,
        /// What went wrong.
        reason: String,
    },
}

/// Opens the (still compressed) bytes of one hour.
pub async fn open(
    source: &HourSource,
    hour: Hour,
    client: &reqwest::Client,
) -> Result<Box<dyn Read + Send>, HourError> {
    let name = hour.file_name();
    match source {
        HourSource::Dir(dir) => match std::fs::File::open(dir.join(&name)) {
            Ok(file) => Ok(Box::new(file)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(HourError::Missing(name)),
            Err(e) => Err(HourError::Failed {
                name,
                reason: e.to_string(),
            }),
        },
        HourSource::Url(base) => {
            let url = format!("{}/{name}", base.trim_end_matches('/'));
            let failed = |reason: String| HourError::Failed {
                name: name.clone(),
                reason,
            };
            let response = client
                .get(&url)
                .send()
                .await
                .map_err(|e| failed(e.to_string()))?;
            match response.status().as_u16() {
                200 => Ok(Box::new(stream_body(response))),
                404 => Err(HourError::Missing(name)),
                status => Err(failed(format!("{url} answered {status}"))),
            }
        }
    }
}

/// Turns a response body into a blocking reader fed chunk by chunk, so it can be decoded on a blocking thread
/// while it downloads.
fn stream_body(mut response: reqwest::Response) -> ChunkReader {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            let chunk = match response.chunk().await {
                Ok(Some(chunk)) => Ok(chunk.to_vec()),
                Ok(None) => break,
                Err(e) => Err(io::Error::other(e)),
            };
            let failed = chunk.is_err();
            if tx.send(chunk).await.is_err() || failed {
                break;
            }
        }
    });
    ChunkReader {
        rx,
        chunk: Vec::new(),
        at: 0,
    }
}

struct ChunkReader {
    rx: mpsc::Receiver<io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    at: usize,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.rx.blocking_recv() {
                Some(chunk) => {
                    self.chunk = chunk?;
                    self.at = 0;
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// What decoding one file found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decoded {
    /// Events, by GitHub event type.
    pub per_type: BTreeMap<String, u64>,
    /// Lines that were not events (sent as dead letters).
    pub malformed: u64,
}

impl Decoded {
    /// Events decoded.
    pub fn events(&self) -> u64 {
        self.per_type.values().sum()
    }

    /// Adds another file's counts.
    pub fn add(&mut self, other: &Decoded) {
        for (kind, n) in &other.per_type {
            *self.per_type.entry(kind.clone()).or_default() += n;
        }
        self.malformed += other.malformed;
    }
}

/// Consecutive lines of one file.
#[derive(Debug, Default)]
pub struct Lines {
    /// Line number of the first line, from 1.
    pub first: u64,
    /// The lines, without their line ends.
    pub lines: Vec<String>,
}

/// Inflates a gzipped GH Archive file (blocking) and hands its lines to `out` in chunks of `batch`. Stops
/// early, with an error, when the bytes cannot be read or `out` refuses a chunk.
pub fn read_lines(
    compressed: impl Read,
    batch: usize,
    out: impl FnMut(Lines) -> bool,
) -> io::Result<()> {
    read_plain_lines(MultiGzDecoder::new(compressed), batch, out)
}

/// As [`read_lines`], for a file that is not compressed (the runtime's own lake).
pub fn read_plain_lines(
    plain: impl Read,
    batch: usize,
    mut out: impl FnMut(Lines) -> bool,
) -> io::Result<()> {
    let mut reader = BufReader::with_capacity(1 << 16, plain);
    let mut chunk = Lines {
        first: 1,
        lines: Vec::with_capacity(batch),
    };
    let mut number = 0u64;
    let mut line = Vec::new();
    let refused = || io::Error::other("the pipeline stopped taking events");
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        number += 1;
        while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            line.pop();
        }
        let text = String::from_utf8(std::mem::take(&mut line))
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        chunk.lines.push(text);
        if chunk.lines.len() >= batch {
            let next = Lines {
                first: number + 1,
                lines: Vec::with_capacity(batch),
            };
            if !out(std::mem::replace(&mut chunk, next)) {
                return Err(refused());
            }
        }
    }
    if !chunk.lines.is_empty() && !out(chunk) {
        return Err(refused());
    }
    Ok(())
}

/// Parses lines of the file `name` into events; a line that is not an event becomes a dead letter with the
/// file and line number. Blank lines are skipped.
pub fn parse_lines(name: &str, chunk: Lines, decoded: &mut Decoded) -> Vec<Incoming> {
    let mut items = Vec::with_capacity(chunk.lines.len());
    for (number, text) in (chunk.first..).zip(chunk.lines) {
        if text.trim().is_empty() {
            continue;
        }
        let text: Arc<str> = Arc::from(text);
        match Event::parse_shared(text.clone()) {
            Ok(event) => {
                *decoded.per_type.entry(event.kind.clone()).or_default() += 1;
                items.push(Incoming::Event(Arc::new(event)));
            }
            Err(e) => {
                decoded.malformed += 1;
                items.push(Incoming::Malformed(DeadLetter {
                    stage: "decode".into(),
                    error: e.to_string(),
                    script: None,
                    version: None,
                    origin: Some(format!("{name}:{number}")),
                    raw: text.to_string(),
                }));
            }
        }
    }
    items
}

/// Inflates and parses a file on the calling thread, handing batches of events to `out`.
pub fn decode(
    compressed: impl Read,
    name: &str,
    batch: usize,
    mut out: impl FnMut(Vec<Incoming>) -> bool,
) -> io::Result<Decoded> {
    let mut decoded = Decoded::default();
    read_lines(compressed, batch, |chunk| {
        out(parse_lines(name, chunk, &mut decoded))
    })?;
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use std::io::Write;

    #[test]
    fn hours_are_named_as_the_archive_names_them() {
        let from = Hour::parse("2024-01-01T22").unwrap();
        let to = Hour::parse("2024-01-02T01").unwrap();
        let names: Vec<String> = hours(from, to, 1)
            .unwrap()
            .iter()
            .map(Hour::file_name)
            .collect();
        assert_eq!(
            names,
            [
                "2024-01-01-22.json.gz",
                "2024-01-01-23.json.gz",
                "2024-01-02-0.json.gz",
                "2024-01-02-1.json.gz"
            ]
        );
        assert_eq!(hours(from, to, 2).unwrap().len(), 2);
        assert!(hours(to, from, 1).is_err());
        assert!(Hour::parse("2024-01-01T24").is_err());
        assert_eq!(
            Hour::parse("2024-01-01-7").unwrap().to_string(),
            "2024-01-01T07"
        );
    }

    #[test]
    fn a_bad_line_becomes_a_dead_letter_with_file_and_line() {
        let good = r#"{"id":"1","type":"PushEvent","actor":{"login":"a"},"repo":{"name":"o/r"},"created_at":"2015-01-01T15:00:00Z"}"#;
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        write!(
            gz,
            "{good}\n{{\"id\": broken\n\n{}\n",
            good.replace("\"1\"", "\"2\"")
        )
        .unwrap();
        let bytes = gz.finish().unwrap();
        let mut items = Vec::new();
        let decoded = decode(&bytes[..], "2015-01-01-15.json.gz", 2, |batch| {
            items.extend(batch);
            true
        })
        .unwrap();
        assert_eq!(decoded.events(), 2);
        assert_eq!(decoded.malformed, 1);
        let letter = items.iter().find_map(|i| match i {
            Incoming::Malformed(l) => Some(l),
            _ => None,
        });
        assert_eq!(
            letter.unwrap().origin.as_deref(),
            Some("2015-01-01-15.json.gz:2")
        );
    }
}
