//! Decoding one GH Archive hour file as a stream of events.
//!
//! A file is decoded line by line as it arrives: nothing holds a whole file, nor a whole line over the length
//! limit, in memory. A line that is not an event, or is over the limit, becomes a dead letter carrying the file
//! name and line number, and decoding goes on. A file whose bytes are damaged (a gzip cut short) hands on every
//! line read whole before the damage. The event schema changed over the years (2015, 2021 and 2025 differ in
//! their payloads); decoding reads only the fields every year has, see [`forgecast_core::event`].

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read};
use std::sync::Arc;

use flate2::read::MultiGzDecoder;
use forgecast_core::source::Incoming;
use forgecast_core::{DeadLetter, Event};

/// What decoding one file found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decoded {
    /// Events, by GitHub event type.
    pub per_type: BTreeMap<String, u64>,
    /// Lines that were not events (sent as dead letters), those over the length limit included.
    pub malformed: u64,
    /// Lines over the length limit.
    pub too_long: u64,
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
        self.too_long += other.too_long;
    }
}

/// The longest line read by default: well above GitHub's largest events (a few MB).
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// Bytes of a line over the limit kept in its dead letter.
pub const TOO_LONG_KEPT: usize = 1024;

/// One line of a file.
#[derive(Debug)]
pub enum Line {
    /// The line, without its line end, shared as the event it becomes keeps it.
    Text(Arc<str>),
    /// A line longer than the limit, of which only the start was kept.
    TooLong {
        /// Its first bytes, at most [`TOO_LONG_KEPT`].
        head: String,
        /// Its length in bytes, without its line end.
        len: u64,
        /// The limit it is over.
        limit: usize,
    },
}

/// Consecutive lines of one file.
#[derive(Debug, Default)]
pub struct Lines {
    /// Line number of the first line, from 1.
    pub first: u64,
    /// The lines.
    pub lines: Vec<Line>,
}

/// Why reading a file's lines stopped before its end. Either way, every line read whole before was handed on.
#[derive(Debug, thiserror::Error)]
pub enum LinesError {
    /// The bytes could not be read (a local read failed, a download broke off): trying again may work.
    #[error("read failed after line {lines}: {error}")]
    Unreadable {
        /// Lines handed on.
        lines: u64,
        /// What failed.
        error: io::Error,
    },
    /// The bytes are damaged (a gzip cut short or corrupted): the rest of the file is lost.
    #[error("damaged after line {lines}: {error}")]
    Damaged {
        /// Lines handed on.
        lines: u64,
        /// What the inflater found.
        error: io::Error,
    },
    /// The receiver of the lines refused a chunk.
    #[error("the pipeline stopped taking lines")]
    Refused,
}

/// Inflates a gzipped GH Archive file (blocking) and hands its lines to `out` in chunks of `batch`; a line longer
/// than `max_line` bytes is handed on as [`Line::TooLong`] without ever being held whole. Returns the number of
/// lines; stops early, with an error, when the bytes cannot be read or are damaged, or `out` refuses a chunk.
pub fn read_lines(
    compressed: impl Read,
    batch: usize,
    max_line: usize,
    out: impl FnMut(Lines) -> bool,
) -> Result<u64, LinesError> {
    let mut inflated = MultiGzDecoder::new(Watched {
        inner: compressed,
        failed: false,
    });
    match split_lines(&mut inflated, batch, max_line, out) {
        // The compressed bytes were all read: the inflater refused them.
        Err(LinesError::Unreadable { lines, error }) if !inflated.get_ref().failed => {
            Err(LinesError::Damaged { lines, error })
        }
        other => other,
    }
}

/// As [`read_lines`], for a file that is not compressed (the runtime's own lake).
pub fn read_plain_lines(
    plain: impl Read,
    batch: usize,
    max_line: usize,
    out: impl FnMut(Lines) -> bool,
) -> Result<u64, LinesError> {
    split_lines(plain, batch, max_line, out)
}

/// A reader that remembers whether it failed, to tell bytes that could not be read from bytes that are damaged.
struct Watched<R> {
    inner: R,
    failed: bool,
}

impl<R: Read> Read for Watched<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf);
        self.failed |= read
            .as_ref()
            .is_err_and(|e| e.kind() != io::ErrorKind::Interrupted);
        read
    }
}

fn split_lines(
    plain: impl Read,
    batch: usize,
    max_line: usize,
    mut out: impl FnMut(Lines) -> bool,
) -> Result<u64, LinesError> {
    let mut reader = BufReader::with_capacity(1 << 16, plain);
    let mut chunk = Lines {
        first: 1,
        lines: Vec::with_capacity(batch),
    };
    let mut number = 0u64;
    let mut line = Vec::new();
    loop {
        let len = match next_line(&mut reader, &mut line, max_line) {
            Ok(Some(len)) => len,
            Ok(None) => break,
            Err(error) => {
                // The lines read whole before the failure go on; the one it cut short does not.
                if !chunk.lines.is_empty() && !out(chunk) {
                    return Err(LinesError::Refused);
                }
                return Err(LinesError::Unreadable {
                    lines: number,
                    error,
                });
            }
        };
        number += 1;
        if len > max_line as u64 {
            let head = &line[..line.len().min(TOO_LONG_KEPT)];
            chunk.lines.push(Line::TooLong {
                head: String::from_utf8_lossy(head).into_owned(),
                len,
                limit: max_line,
            });
            // Let the buffer grown to the limit go rather than hand it on with the next line.
            line = Vec::new();
        } else {
            let mut end = line.len();
            while end > 0 && line[end - 1] == b'\r' {
                end -= 1;
            }
            // Copied once, into the allocation the event keeps; the line's buffer serves the next line.
            let text: Arc<str> = match std::str::from_utf8(&line[..end]) {
                Ok(text) => Arc::from(text),
                Err(_) => Arc::from(String::from_utf8_lossy(&line[..end]).as_ref()),
            };
            chunk.lines.push(Line::Text(text));
        }
        if chunk.lines.len() >= batch {
            let next = Lines {
                first: number + 1,
                lines: Vec::with_capacity(batch),
            };
            if !out(std::mem::replace(&mut chunk, next)) {
                return Err(LinesError::Refused);
            }
        }
    }
    if !chunk.lines.is_empty() && !out(chunk) {
        return Err(LinesError::Refused);
    }
    Ok(number)
}

/// Reads the next line into `line` (cleared first; without its line end), keeping at most `max` of its bytes.
/// Returns the line's whole length, or `None` at the end of the input.
fn next_line(reader: &mut impl BufRead, line: &mut Vec<u8>, max: usize) -> io::Result<Option<u64>> {
    line.clear();
    let (mut len, mut started) = (0u64, false);
    loop {
        let available = match reader.fill_buf() {
            Ok(available) => available,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(started.then_some(len));
        }
        started = true;
        let (content, used) = match memchr::memchr(b'\n', available) {
            Some(at) => (at, at + 1),
            None => (available.len(), available.len()),
        };
        let room = max.saturating_sub(line.len());
        line.extend_from_slice(&available[..content.min(room)]);
        len += content as u64;
        reader.consume(used);
        if used > content {
            return Ok(Some(len));
        }
    }
}

/// Parses lines of the file `name` into events; a line that is not an event, or is over the length limit,
/// becomes a dead letter with the file and line number. Blank lines are skipped.
pub fn parse_lines(name: &str, chunk: Lines, decoded: &mut Decoded) -> Vec<Incoming> {
    let mut items = Vec::with_capacity(chunk.lines.len());
    let letter = |error: String, number: u64, raw: String| {
        Incoming::Malformed(DeadLetter {
            stage: "decode".into(),
            error,
            script: None,
            version: None,
            origin: Some(format!("{name}:{number}")),
            raw,
        })
    };
    for (number, line) in (chunk.first..).zip(chunk.lines) {
        let text = match line {
            Line::Text(text) => text,
            Line::TooLong { head, len, limit } => {
                decoded.malformed += 1;
                decoded.too_long += 1;
                let error = format!(
                    "line of {len} bytes is over the limit of {limit} bytes (--max-line-bytes); \
                     only its first {} bytes are kept",
                    head.len()
                );
                items.push(letter(error, number, head));
                continue;
            }
        };
        if text.trim().is_empty() {
            continue;
        }
        match Event::parse_shared(text.clone()) {
            Ok(event) => {
                *decoded.per_type.entry(event.kind.clone()).or_default() += 1;
                items.push(Incoming::Event(Arc::new(event)));
            }
            Err(e) => {
                decoded.malformed += 1;
                items.push(letter(e.to_string(), number, text.to_string()));
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
    max_line: usize,
    mut out: impl FnMut(Vec<Incoming>) -> bool,
) -> Result<Decoded, LinesError> {
    let mut decoded = Decoded::default();
    read_lines(compressed, batch, max_line, |chunk| {
        out(parse_lines(name, chunk, &mut decoded))
    })?;
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use std::io::{Read, Write};

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
        let decoded = decode(
            &bytes[..],
            "2015-01-01-15.json.gz",
            2,
            MAX_LINE_BYTES,
            |batch| {
                items.extend(batch);
                true
            },
        )
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

    const GOOD: &str = r#"{"id":"1","type":"PushEvent","actor":{"login":"a"},"repo":{"name":"o/r"},"created_at":"2015-01-01T15:00:00Z"}"#;

    fn gzip(text: &[u8]) -> Vec<u8> {
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        gz.write_all(text).unwrap();
        gz.finish().unwrap()
    }

    /// Every line handed on, in order, with its number.
    fn collect(
        read: impl FnOnce(&mut dyn FnMut(Lines) -> bool) -> Result<u64, LinesError>,
    ) -> (Vec<(u64, Line)>, Result<u64, LinesError>) {
        let mut lines = Vec::new();
        let result = read(&mut |chunk: Lines| {
            lines.extend((chunk.first..).zip(chunk.lines));
            true
        });
        (lines, result)
    }

    #[test]
    fn a_line_over_the_limit_is_handed_on_by_its_head_and_its_length() {
        let long = vec![b'x'; 300_000];
        let text = [b"first\n".as_slice(), &long, b"\r\nlast\r\n", b"0123456789"].concat();
        let (lines, result) = collect(|out| read_lines(&gzip(&text)[..], 2, 100_000, out));
        assert_eq!(result.unwrap(), 4);
        let numbers: Vec<u64> = lines.iter().map(|(n, _)| *n).collect();
        assert_eq!(numbers, [1, 2, 3, 4]);
        match &lines[1].1 {
            Line::TooLong { head, len, limit } => {
                assert_eq!(head.len(), TOO_LONG_KEPT);
                assert_eq!((*len, *limit), (300_001, 100_000), "its \r counts");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(&lines[2].1, Line::Text(t) if &**t == "last"));
        // A line of exactly the limit is a line; one byte more is not.
        let (lines, _) = collect(|out| read_plain_lines(&b"0123456789"[..], 8, 10, out));
        assert!(matches!(&lines[0].1, Line::Text(t) if &**t == "0123456789"));
        let (lines, _) = collect(|out| read_plain_lines(&b"0123456789\n"[..], 8, 9, out));
        assert!(matches!(lines[0].1, Line::TooLong { len: 10, .. }));
    }

    #[test]
    fn a_line_over_the_limit_becomes_a_short_dead_letter_naming_the_limit() {
        let text = format!(
            "{GOOD}\n{}\n{}\n",
            "y".repeat(5_000),
            GOOD.replace("\"1\"", "\"2\"")
        );
        let mut items = Vec::new();
        let decoded = decode(
            &gzip(text.as_bytes())[..],
            "h.json.gz",
            1024,
            4_096,
            |batch| {
                items.extend(batch);
                true
            },
        )
        .unwrap();
        assert_eq!(
            (decoded.events(), decoded.malformed, decoded.too_long),
            (2, 1, 1)
        );
        let letter = items
            .iter()
            .find_map(|i| match i {
                Incoming::Malformed(l) => Some(l),
                _ => None,
            })
            .unwrap();
        assert_eq!(letter.origin.as_deref(), Some("h.json.gz:2"));
        assert_eq!(letter.raw.len(), TOO_LONG_KEPT);
        assert!(
            letter.error.contains("5000 bytes") && letter.error.contains("limit of 4096 bytes"),
            "{}",
            letter.error
        );
    }

    #[test]
    fn a_gzip_cut_short_hands_on_every_line_before_the_cut_as_damaged() {
        let text: String = (0..200)
            .map(|i| format!("{}\n", GOOD.replace("\"1\"", &format!("\"{i}\""))))
            .collect();
        let whole = gzip(text.as_bytes());
        let cut = &whole[..whole.len() / 2];
        let mut inflated = Vec::new();
        let _ = MultiGzDecoder::new(cut).read_to_end(&mut inflated);
        let ended = inflated.iter().filter(|b| **b == b'\n').count() as u64;
        assert!(ended > 0 && ended < 200);

        let (lines, result) = collect(|out| read_lines(cut, 1024, MAX_LINE_BYTES, out));
        assert_eq!(
            lines.len() as u64,
            ended,
            "the line the cut went through is left out"
        );
        match result {
            Err(LinesError::Damaged { lines, .. }) => assert_eq!(lines, ended),
            other => panic!("{other:?}"),
        }
    }

    /// Hands out `bytes`, then fails as a broken download does.
    struct BrokenOff<'a>(&'a [u8]);

    impl Read for BrokenOff<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(io::Error::new(io::ErrorKind::ConnectionReset, "reset"));
            }
            let n = buf.len().min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn a_source_that_fails_is_unreadable_not_damaged() {
        let whole = gzip(format!("{GOOD}\n").repeat(100).as_bytes());
        let (lines, result) = collect(|out| {
            read_lines(
                BrokenOff(&whole[..whole.len() / 2]),
                1024,
                MAX_LINE_BYTES,
                out,
            )
        });
        assert!(!lines.is_empty());
        assert!(
            matches!(result, Err(LinesError::Unreadable { lines: n, .. }) if n == lines.len() as u64),
            "{result:?}"
        );
        let (_, plain) = collect(|out| read_plain_lines(BrokenOff(b"a\nb"), 1024, 10, out));
        assert!(matches!(
            plain,
            Err(LinesError::Unreadable { lines: 1, .. })
        ));
    }
}
