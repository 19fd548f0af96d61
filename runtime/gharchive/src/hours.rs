//! GH Archive hour files: naming, ranges of hours, and opening one hour from a directory or over HTTP.
//!
//! GH Archive publishes one gzipped JSON-lines file per hour, `YYYY-MM-DD-H.json.gz` (hour without a leading
//! zero). A download is handed on as it arrives, so that decoding ([`crate::lines`]) starts before it ends.

use std::fmt;
use std::io::{self, Read};
use std::path::PathBuf;

use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use tokio::sync::mpsc;

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
    /// The file's bytes are damaged (cut short, corrupted): the lines before the damage were read, the rest is
    /// lost. Trying again helps only if the bytes were damaged on their way (a download).
    #[error("{name}: {reason}")]
    Damaged {
        /// The file.
        name: String,
        /// Where and how.
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
