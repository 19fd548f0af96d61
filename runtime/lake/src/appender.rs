//! A lake that any bus consumer can append to: GH Archive-format hour files, `<lake>/YYYY/MM/DD/HH.json`, the
//! layout of the embedded store's lake, so the history engines read both alike. Hours that are over are
//! compressed (`HH.json.gz`, as GH Archive publishes them) by [`LakeAppender::compress_closed`].
//!
//! Delivery is at least once: lines are appended and synced before the consumer commits its offsets, so a
//! crash can write an event twice but never lose one; the history engines count each event id once. A line cut
//! short by a crash is cut off the first time its file is opened again, before anything is appended to it. One
//! appender per lake (a lock file in it), since two would interleave their writes.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use forgecast_core::Event;

use crate::layout::hour_file;

/// The lock file an appender holds in its lake.
pub const LOCK_FILE: &str = ".forgecast-archive.lock";

/// Files kept open between appends; past this, all are closed (a backfill through the bus touches many hours).
const OPEN_FILES: usize = 64;

/// Ids remembered to skip an event delivered twice in a row (routed to two topics, or redelivered): the
/// newer of two generations of this many ids each.
const RECENT_IDS: usize = 1 << 20;

/// What one append did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Events written.
    pub events: u64,
    /// Events skipped as just written already.
    pub repeated: u64,
    /// Hour files written to.
    pub files: u64,
}

/// Appends events to a lake's hour files.
#[derive(Debug)]
pub struct LakeAppender {
    dir: PathBuf,
    _lock: File,
    open: HashMap<String, File>,
    recent: [HashSet<String>; 2],
}

impl LakeAppender {
    /// Opens (creating it) the lake at `dir` for appending; refused while another appender holds it.
    pub fn open(dir: &Path) -> io::Result<LakeAppender> {
        fs::create_dir_all(dir)?;
        let path = dir.join(LOCK_FILE);
        let lock = File::create(&path)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!(
                        "another forgecast archive is appending to {}; one per lake",
                        dir.display()
                    ),
                ));
            }
            Err(TryLockError::Error(e)) => return Err(e),
        }
        Ok(LakeAppender {
            dir: dir.to_path_buf(),
            _lock: lock,
            open: HashMap::new(),
            recent: Default::default(),
        })
    }

    /// Appends `events` (one line each, in order per hour file) and syncs every file written to; returns once
    /// the bytes are on disk. On an error nothing counts as written: append the same events again.
    pub fn append<'a>(
        &mut self,
        events: impl IntoIterator<Item = &'a Event>,
    ) -> io::Result<Appended> {
        let mut appended = Appended::default();
        let mut lines: HashMap<String, Vec<u8>> = HashMap::new();
        let mut ids: HashSet<&str> = HashSet::new();
        for event in events {
            if self.recent.iter().any(|r| r.contains(&event.id)) || !ids.insert(&event.id) {
                appended.repeated += 1;
                continue;
            }
            let bytes = lines.entry(hour_file(event.created_at)).or_default();
            bytes.extend_from_slice(event.raw.as_bytes());
            bytes.push(b'\n');
            appended.events += 1;
        }
        if self.open.len() + lines.len() > OPEN_FILES {
            self.open.clear();
        }
        for (name, bytes) in &lines {
            let file = self.file(name)?;
            file.write_all(bytes)?;
            file.sync_data()?;
        }
        appended.files = lines.len() as u64;
        if self.recent[0].len() + ids.len() > RECENT_IDS {
            self.recent.swap(0, 1);
            self.recent[0].clear();
        }
        self.recent[0].extend(ids.into_iter().map(str::to_string));
        Ok(appended)
    }

    /// The open file `name`, opened for appending the first time after its last whole line.
    fn file(&mut self, name: &str) -> io::Result<&mut File> {
        if !self.open.contains_key(name) {
            let path = self.dir.join(name);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)?;
            }
            let mut file = OpenOptions::new()
                .read(true)
                .append(true)
                .create(true)
                .open(&path)?;
            cut_partial_line(&mut file)?;
            self.open.insert(name.to_string(), file);
        }
        Ok(self.open.get_mut(name).expect("just opened"))
    }
}

impl LakeAppender {
    /// Compresses every plain hour file whose hour ended before `before` (Unix seconds) into a gzip file beside
    /// it (`HH.json.gz`, or `HH-2.json.gz`, … when one is there already: events that came after the hour was
    /// compressed), then removes the plain file. Returns the files written, relative to the lake. A crash
    /// between the two steps leaves both files, whose events the history engines count once.
    pub fn compress_closed(&mut self, before: i64) -> io::Result<Vec<String>> {
        let mut written = Vec::new();
        for path in crate::layout::hour_files(&self.dir)? {
            let Ok(name) = path.strip_prefix(&self.dir) else {
                continue;
            };
            let name = name.to_string_lossy().into_owned();
            let Some(start) = name.strip_suffix(".json").and_then(hour_start) else {
                continue;
            };
            if start + 3_600 <= before {
                written.push(self.compress(&name)?);
            }
        }
        Ok(written)
    }

    fn compress(&mut self, name: &str) -> io::Result<String> {
        self.open.remove(name);
        let plain = self.dir.join(name);
        let bytes = fs::read(&plain)?;
        // Whole lines only: a line a crash cut short is left out, as appending would have cut it.
        let end = bytes
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |at| at + 1);
        let stem = name.strip_suffix(".json").unwrap_or(name);
        let target = (1..)
            .map(|n| match n {
                1 => format!("{stem}.json.gz"),
                n => format!("{stem}-{n}.json.gz"),
            })
            .find(|candidate| !self.dir.join(candidate).exists())
            .expect("a free name");
        let temporary = self.dir.join(format!("{target}.tmp"));
        let mut encoder =
            flate2::write::GzEncoder::new(File::create(&temporary)?, flate2::Compression::new(6));
        encoder.write_all(&bytes[..end])?;
        encoder.finish()?.sync_all()?;
        fs::rename(&temporary, self.dir.join(&target))?;
        sync_parent(&self.dir.join(&target))?;
        fs::remove_file(&plain)?;
        sync_parent(&plain)?;
        Ok(target)
    }
}

/// The start, in Unix seconds, of the hour a lake file stands for (`2024/01/01/05`).
fn hour_start(stem: &str) -> Option<i64> {
    chrono::NaiveDateTime::parse_from_str(&format!("{stem}:00"), "%Y/%m/%d/%H:%M")
        .ok()
        .map(|t| t.and_utc().timestamp())
}

fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) => File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

/// Cuts a file back to the end of its last whole line (bytes after it are the start of a line a crash cut).
fn cut_partial_line(file: &mut File) -> io::Result<()> {
    let len = file.metadata()?.len();
    let mut end = len;
    let mut block = vec![0u8; 64 << 10];
    while end > 0 {
        let start = end.saturating_sub(block.len() as u64);
        let piece = &mut block[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(piece)?;
        if let Some(at) = piece.iter().rposition(|b| *b == b'\n') {
            end = start + at as u64 + 1;
            break;
        }
        end = start;
    }
    if end < len {
        file.set_len(end)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, at: &str) -> Event {
        Event::parse(&format!(
            r#"{{"id":"{id}","type":"PushEvent","actor":{{"login":"a"}},"repo":{{"name":"o/r"}},"created_at":"{at}"}}"#
        ))
        .unwrap()
    }

    fn read(dir: &Path, name: &str) -> String {
        fs::read_to_string(dir.join(name)).unwrap()
    }

    #[test]
    fn appends_lines_per_hour_and_skips_ids_just_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut lake = LakeAppender::open(dir.path()).unwrap();
        let (a, b, c) = (
            event("1", "2024-01-01T00:10:00Z"),
            event("2", "2024-01-01T01:00:00Z"),
            event("3", "2024-01-01T00:59:59Z"),
        );
        let first = lake.append([&a, &b, &a]).unwrap();
        assert_eq!(
            first,
            Appended {
                events: 2,
                repeated: 1,
                files: 2
            }
        );
        let second = lake.append([&c, &b]).unwrap();
        assert_eq!((second.events, second.repeated), (1, 1));
        assert_eq!(
            read(dir.path(), "2024/01/01/00.json"),
            format!("{}\n{}\n", a.raw, c.raw)
        );
        assert_eq!(
            read(dir.path(), "2024/01/01/01.json"),
            format!("{}\n", b.raw)
        );
    }

    #[test]
    fn hours_that_are_over_are_compressed_and_late_events_get_a_file_of_their_own() {
        let dir = tempfile::tempdir().unwrap();
        let mut lake = LakeAppender::open(dir.path()).unwrap();
        let (a, b, c) = (
            event("1", "2024-01-01T00:10:00Z"),
            event("2", "2024-01-01T00:20:00Z"),
            event("3", "2024-01-01T01:05:00Z"),
        );
        lake.append([&a, &b, &c]).unwrap();
        let one = chrono::DateTime::parse_from_rfc3339("2024-01-01T01:00:00Z")
            .unwrap()
            .timestamp();
        assert_eq!(
            lake.compress_closed(one).unwrap(),
            ["2024/01/01/00.json.gz"]
        );
        let gunzip = |name: &str| {
            let mut text = String::new();
            flate2::read::MultiGzDecoder::new(File::open(dir.path().join(name)).unwrap())
                .read_to_string(&mut text)
                .unwrap();
            text
        };
        assert_eq!(
            gunzip("2024/01/01/00.json.gz"),
            format!("{}\n{}\n", a.raw, b.raw)
        );
        assert!(!dir.path().join("2024/01/01/00.json").exists());
        assert!(
            dir.path().join("2024/01/01/01.json").exists(),
            "the next hour is not over"
        );

        // A late event for the compressed hour: a plain file again, compressed under a name of its own.
        let late = event("4", "2024-01-01T00:59:00Z");
        lake.append([&late]).unwrap();
        assert_eq!(
            lake.compress_closed(one).unwrap(),
            ["2024/01/01/00-2.json.gz"]
        );
        assert_eq!(gunzip("2024/01/01/00-2.json.gz"), format!("{}\n", late.raw));
        let files = crate::layout::hour_files(dir.path()).unwrap();
        assert_eq!(files.len(), 3, "{files:?}");
    }

    #[test]
    fn one_appender_per_lake() {
        let dir = tempfile::tempdir().unwrap();
        let _first = LakeAppender::open(dir.path()).unwrap();
        let error = LakeAppender::open(dir.path()).unwrap_err();
        assert!(error.to_string().contains("one per lake"), "{error}");
    }

    #[test]
    fn a_line_cut_by_a_crash_is_cut_off_before_appending() {
        let dir = tempfile::tempdir().unwrap();
        let a = event("1", "2024-01-01T00:10:00Z");
        let b = event("2", "2024-01-01T00:20:00Z");
        let file = dir.path().join("2024/01/01/00.json");
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        fs::write(&file, format!("{}\n{{\"id\":\"9\",\"ty", a.raw)).unwrap();
        let mut lake = LakeAppender::open(dir.path()).unwrap();
        lake.append([&b]).unwrap();
        assert_eq!(
            read(dir.path(), "2024/01/01/00.json"),
            format!("{}\n{}\n", a.raw, b.raw)
        );
        // A file that is one cut line only is emptied.
        let other = dir.path().join("2024/01/01/05.json");
        fs::write(&other, "{\"id\":").unwrap();
        lake.append([&event("3", "2024-01-01T05:00:00Z")]).unwrap();
        assert!(read(dir.path(), "2024/01/01/05.json").starts_with("{\"id\":\"3\""));
    }
}
