//! The runtime's own history engine: every core reads, inflates and counts the lake's hour files.
//!
//! A file is read whole and inflated at once (libdeflate: [`Inflater`]), then cut into pieces of whole lines
//! that any thread may count, so that the cores stay busy to the end even when files are fewer than cores or
//! of unequal sizes. Threads take pieces before files, and at most [`IN_MEMORY`] files are held at once. Each thread counts into its own [`History`]; one set of ids across the
//! threads keeps an id that several files repeat counting once, and the histories are merged at the end.
//! Lines are parsed in place ([`EventFields`]): only the fields the history reads, nothing copied.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use anyhow::Context;
use forgecast_core::EventFields;
use forgecast_core::aggregate::{AggregateRow, RepoFacts};
use forgecast_core::history::{History, SeenIds};
use forgecast_gharchive::inflate::Inflater;
use indicatif::{ProgressBar, ProgressStyle};

use super::{Input, Repos};

/// Bytes of lines counted as one piece: big enough that locking the set of ids once per piece costs nothing,
/// small enough that the pieces of one file spread over the cores.
const PIECE_BYTES: usize = 4 << 20;

/// Files held in memory at once: one being inflated while another is counted. An hour of GH Archive inflates to
/// about 500 MB, so this bounds the engine's memory (about 1.2 GB on such hours, whatever the number of cores).
const IN_MEMORY: usize = 2;

/// The text of one file, shared by its pieces.
struct Text {
    bytes: Vec<u8>,
    /// Pieces not counted yet; the file is done when it reaches 0.
    left: AtomicUsize,
}

/// Lines of one file to count.
struct Piece {
    text: Arc<Text>,
    lines: Range<usize>,
}

/// What is left to do, shared by the threads.
#[derive(Default)]
struct Work {
    files: Vec<Input>,
    pieces: VecDeque<Piece>,
    /// Files read or being read whose pieces are not all counted.
    in_memory: usize,
    /// The first error; the other threads stop when they see it.
    failed: bool,
}

/// Counts of lines.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Lines {
    /// Lines that are events (ids repeated across files included).
    pub events: u64,
    /// Lines that are not.
    pub malformed: u64,
}

struct Shared<'a> {
    work: Mutex<Work>,
    changed: Condvar,
    seen: Mutex<SeenIds>,
    repos: &'a Repos,
    bar: ProgressBar,
    /// Inflated buffers whose pieces are done, kept for the next file (their pages are already mapped).
    spare: Mutex<Vec<Vec<u8>>>,
    /// Files at most held in memory at once.
    most_in_memory: usize,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a thread does next.
enum Next {
    Count(Piece),
    Read(Input),
    Stop,
}

impl Shared<'_> {
    fn next(&self) -> Next {
        let mut work = lock(&self.work);
        loop {
            if work.failed {
                return Next::Stop;
            }
            if let Some(piece) = work.pieces.pop_front() {
                return Next::Count(piece);
            }
            if work.in_memory < self.most_in_memory
                && let Some(file) = work.files.pop()
            {
                work.in_memory += 1;
                return Next::Read(file);
            }
            if work.files.is_empty() && work.in_memory == 0 {
                return Next::Stop;
            }
            // Another thread is reading a file whose pieces will come, or holds pieces being counted.
            work = self.changed.wait(work).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Reads (and inflates) `input` and queues its pieces.
    fn read(&self, input: &Input, inflater: &mut Inflater) -> anyhow::Result<()> {
        let file = &input.path;
        let spare = match input.gz() {
            true => lock(&self.spare).pop().unwrap_or_default(),
            false => Vec::new(),
        };
        let bytes = input
            .text(inflater, spare)
            .with_context(|| format!("cannot read {}", file.display()))?;
        let cuts = cut(&bytes, PIECE_BYTES);
        let text = Arc::new(Text {
            bytes,
            left: AtomicUsize::new(cuts.len()),
        });
        let mut work = lock(&self.work);
        if cuts.is_empty() {
            work.in_memory -= 1;
            self.bar.inc(1);
        }
        work.pieces.extend(cuts.into_iter().map(|lines| Piece {
            text: Arc::clone(&text),
            lines,
        }));
        drop(work);
        self.changed.notify_all();
        Ok(())
    }

    /// Counts the events of `piece` whose ids are new into `history`.
    fn count(&self, piece: Piece, history: &mut History, lines: &mut Lines) {
        let bytes = &piece.text.bytes[piece.lines.clone()];
        let mut events = Vec::new();
        let mut start = 0;
        let ends = memchr::memchr_iter(b'\n', bytes).chain(std::iter::once(bytes.len()));
        for end in ends {
            let line = &bytes[start..end];
            start = end + 1;
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let Ok(text) = std::str::from_utf8(line) else {
                // As GH Archive readers do, invalid bytes become U+FFFD; rare enough to copy.
                match EventFields::parse(&String::from_utf8_lossy(line)) {
                    Ok(event) => {
                        lines.events += 1;
                        let event = owned(event);
                        if lock(&self.seen).first_time(&event.id) {
                            history.add_unique(&event, facts(self.repos, &event.repo));
                        }
                    }
                    Err(_) => lines.malformed += 1,
                }
                continue;
            };
            match EventFields::parse(text) {
                Ok(event) => events.push(event),
                Err(_) => lines.malformed += 1,
            }
        }
        lines.events += events.len() as u64;
        let new: Vec<bool> = {
            let mut seen = lock(&self.seen);
            events.iter().map(|e| seen.first_time(&e.id)).collect()
        };
        for (event, new) in events.iter().zip(new) {
            if new {
                history.add_unique(event, facts(self.repos, &event.repo));
            }
        }
        drop(events);
        self.done(piece);
    }

    fn done(&self, piece: Piece) {
        if piece.text.left.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        if let Some(text) = Arc::into_inner(piece.text) {
            lock(&self.spare).push(text.bytes);
        }
        lock(&self.work).in_memory -= 1;
        self.bar.inc(1);
        self.changed.notify_all();
    }

    fn fail(&self) {
        lock(&self.work).failed = true;
        self.changed.notify_all();
    }
}

/// An event whose text had invalid bytes, no longer borrowing them.
fn owned(event: EventFields<'_>) -> EventFields<'static> {
    use std::borrow::Cow::Owned;
    EventFields {
        id: Owned(event.id.into_owned()),
        kind: Owned(event.kind.into_owned()),
        actor: Owned(event.actor.into_owned()),
        repo: Owned(event.repo.into_owned()),
        org: event.org.map(|o| Owned(o.into_owned())),
        language: event.language.map(|l| Owned(l.into_owned())),
        created_at: event.created_at,
    }
}

/// Ranges of `bytes` of about `size` bytes each, ending at line ends (the last one at the end).
fn cut(bytes: &[u8], size: usize) -> Vec<Range<usize>> {
    let mut pieces = Vec::new();
    let mut start = 0;
    while start < bytes.len() {
        let end = match memchr::memchr(b'\n', &bytes[(start + size).min(bytes.len())..]) {
            Some(at) => (start + size).min(bytes.len()) + at + 1,
            None => bytes.len(),
        };
        pieces.push(start..end);
        start = end;
    }
    pieces
}

fn facts<'a>(repos: &'a Repos, name: &str) -> RepoFacts<'a> {
    match repos.get(name) {
        Some((language, topics)) => RepoFacts {
            language: language.as_deref(),
            topics,
        },
        None => RepoFacts::default(),
    }
}

/// The history of the hour files `inputs` (sorted), on one thread per core.
pub(super) fn history(
    mut files: Vec<Input>,
    repos: &Repos,
) -> anyhow::Result<(Vec<AggregateRow>, Lines)> {
    files.reverse(); // taken from the end: oldest first
    let bar = ProgressBar::new(files.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} files  {elapsed}")
            .expect("a valid template"),
    );
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let shared = Shared {
        work: Mutex::new(Work {
            files,
            ..Work::default()
        }),
        changed: Condvar::new(),
        seen: Mutex::new(SeenIds::default()),
        repos,
        bar,
        spare: Mutex::new(Vec::new()),
        most_in_memory: IN_MEMORY,
    };
    let mut history = History::new();
    let mut total = Lines::default();
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let shared = &shared;
                scope.spawn(move || -> anyhow::Result<(History, Lines)> {
                    let (mut mine, mut lines) = (History::new(), Lines::default());
                    let mut inflater = Inflater::new();
                    loop {
                        match shared.next() {
                            Next::Count(piece) => shared.count(piece, &mut mine, &mut lines),
                            Next::Read(input) => {
                                if let Err(e) = shared.read(&input, &mut inflater) {
                                    shared.fail();
                                    return Err(e);
                                }
                            }
                            Next::Stop => return Ok((mine, lines)),
                        }
                    }
                })
            })
            .collect();
        let mut first_error = None;
        for handle in handles {
            match handle.join() {
                Ok(Ok((mine, lines))) => {
                    history.merge(mine);
                    total.events += lines.events;
                    total.malformed += lines.malformed;
                }
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(_) => {
                    first_error.get_or_insert(anyhow::anyhow!("a counting thread panicked"));
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    })?;
    shared.bar.finish();
    Ok((history.rows(), total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_end_at_line_ends_and_cover_everything() {
        let text = b"aaaa\nbb\n\ncccccc\nd".to_vec();
        for size in [1, 3, 5, 100] {
            let pieces = cut(&text, size);
            assert_eq!(pieces.first().map(|r| r.start), Some(0));
            assert_eq!(pieces.last().map(|r| r.end), Some(text.len()));
            for pair in pieces.windows(2) {
                assert_eq!(pair[0].end, pair[1].start);
                assert_eq!(text[pair[0].end - 1], b'\n');
            }
        }
        assert!(cut(b"", 4).is_empty());
    }
}
