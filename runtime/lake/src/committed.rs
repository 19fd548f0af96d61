//! The lake the embedded store writes: every stored event's JSON, in GH Archive format (one event per line), one
//! file per hour of `created_at`: `<lake>/YYYY/MM/DD/HH.json` while the hour is going on, `HH.json.gz` once it is
//! over, as GH Archive publishes its hours.
//!
//! The store records each hour file in its database ([`FileState`]): its committed end on disk, its committed
//! length as JSON lines (where the next event's line starts, which stays valid when the file is compressed),
//! its form, and whether it is *open*: whether it may hold bytes past its committed end. The store appends an
//! event's bytes here and syncs them before the transaction that records where they are commits, so a committed
//! row always points at bytes on disk. A file is recorded open, durably, before its first bytes are written;
//! only open files can hold bytes past their committed end (a crash, or a failed commit), and those are cut off
//! when the writer opens the lake, so opening costs the same whatever the lake's size.
//!
//! An hour is over once the newest event written is [`OVER_AFTER`] past its end, or once the store is told so
//! (a backfill of past hours). Its plain file is then compressed into gzip members ([`crate::gzip`]) beside it,
//! synced and renamed into place, recorded, and only then removed; events of an hour already over are
//! compressed as they are written, each batch appended as more members, its lines placed alike beside alike
//! ([`placement_order`]). Readers take each file up to its committed end, in whichever form the database says
//! it is.

use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use forgecast_core::Event;

use crate::gzip::Compressors;

/// How long past its end an hour is over, counted from the newest event written: later events for it are not
/// expected any more (`forgecast archive` waits as long by default).
pub const OVER_AFTER: i64 = 2 * 3600;

/// Plain bytes read at once when a file is compressed.
const COMPRESS_WINDOW: usize = 32 << 20;

/// What the store records of one hour file, by its plain name (`2025/01/01/15.json`, the name events keep).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileState {
    /// Start of the file's hour, Unix seconds.
    pub hour: i64,
    /// Committed bytes on disk, in the file's present form.
    pub end: u64,
    /// Committed bytes of JSON lines (the file's content once inflated): where the next event's line starts.
    pub plain: u64,
    /// Whether the file is kept compressed, as `HH.json.gz`.
    pub gz: bool,
    /// Whether the file may hold bytes past `end`, or what compressing it left beside it: what the writer looks
    /// at when it opens the lake.
    pub open: bool,
}

/// The name on disk of the hour file `name` (`…/HH.json`) in its form.
pub fn disk_name(name: &str, gz: bool) -> String {
    if gz {
        format!("{name}.gz")
    } else {
        name.to_string()
    }
}

/// Each file's committed end on disk, by its name on disk (`…/15.json` or `…/15.json.gz`): what a reader of the
/// lake may read. A file absent has nothing committed.
pub fn committed_ends<'a>(
    files: impl IntoIterator<Item = (&'a String, &'a FileState)>,
) -> HashMap<String, u64> {
    files
        .into_iter()
        .filter(|(_, s)| s.end > 0)
        .map(|(name, s)| (disk_name(name, s.gz), s.end))
        .collect()
}

/// Bytes waiting to be written, per file, in order.
#[derive(Debug, Default)]
pub struct Pending {
    bytes: HashMap<String, (i64, Vec<u8>)>,
    /// Buffers of earlier batches, emptied, for the files of this one.
    spare: Vec<Vec<u8>>,
}

impl Pending {
    /// Appends one event's JSON (and its line end) to `file`, the file of its hour.
    pub fn push(&mut self, file: &str, created_at: i64, raw: &str) {
        let Pending { bytes, spare } = self;
        // Looked up before inserting: the file's name is copied once per batch, not once per event.
        let bytes = match bytes.get_mut(file) {
            Some((_, bytes)) => bytes,
            None => {
                let fresh = (hour_of(created_at), spare.pop().unwrap_or_default());
                &mut bytes.entry(file.to_string()).or_insert(fresh).1
            }
        };
        bytes.extend_from_slice(raw.as_bytes());
        bytes.push(b'\n');
    }

    fn len(&self, file: &str) -> u64 {
        self.bytes.get(file).map_or(0, |(_, b)| b.len() as u64)
    }
}

/// The order the lines of a batch are placed in: by hour, then event type, then repository, arrival order among
/// equals. Lines alike then lie within deflate's 32 KiB window of each other, so a batch of past hours, which is
/// compressed as it is written, compresses smaller and faster than in arrival order (docs/performance.md has the
/// figures on real events). Where a line lies is recorded with its row, so its order in the file is free.
pub fn placement_order<E: Borrow<Event>>(events: &[E]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..events.len()).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (events[a].borrow(), events[b].borrow());
        (hour_of(a.created_at), &a.kind, &a.repo).cmp(&(hour_of(b.created_at), &b.kind, &b.repo))
    });
    order
}

/// The start of the hour of `unix`.
pub fn hour_of(unix: i64) -> i64 {
    unix - unix.rem_euclid(3600)
}

/// The lake directory and what the store recorded of its files.
#[derive(Debug)]
pub struct Lake {
    dir: PathBuf,
    files: HashMap<String, FileState>,
    handles: HashMap<String, File>,
    /// Hours that ended by then are over, whatever the events say.
    over_before: i64,
    /// The newest `created_at` written (or the newest hour recorded, at start).
    newest: i64,
    compressors: Compressors,
    /// Buffers kept from batch to batch (large buffers allocated and freed every batch fragment the heap):
    /// pending lines, and their compressed form.
    spare: Vec<Vec<u8>>,
    compressed: Vec<u8>,
}

impl Lake {
    /// Opens the lake at `dir` to write it. `files` holds at least every open file and every file recorded in
    /// their directories; `newest` is the start of the newest hour recorded. Open files are cut back to their
    /// committed end (emptied when nothing is committed), what compressing them left is removed, and a plain
    /// hour file beside them that nothing records is emptied. Files that are not open are not looked at. Only
    /// the store's single writer may do this.
    pub fn open(dir: &Path, files: HashMap<String, FileState>, newest: i64) -> io::Result<Lake> {
        let mut lake = Lake::attach(dir, files)?;
        lake.newest = newest;
        let mut dirs = HashSet::new();
        for (name, state) in &lake.files {
            if !state.open {
                continue;
            }
            let (plain, gz) = (lake.dir.join(name), lake.dir.join(format!("{name}.gz")));
            remove_if_there(&lake.dir.join(format!("{name}.gz.tmp")))?;
            // The form the database does not record is a leftover: the plain file a compression replaced, or a
            // compression whose record did not commit.
            let (keep, leftover) = if state.gz { (gz, plain) } else { (plain, gz) };
            remove_if_there(&leftover)?;
            match OpenOptions::new().write(true).open(&keep) {
                Ok(file) => {
                    if file.metadata()?.len() > state.end {
                        file.set_len(state.end)?;
                    }
                    if let Some(parent) = keep.parent() {
                        dirs.insert(parent.to_path_buf());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound && state.end == 0 => {}
                Err(e) => return Err(e),
            }
        }
        for at in dirs {
            for entry in fs::read_dir(&at)? {
                let path = entry?.path();
                let Ok(name) = path.strip_prefix(&lake.dir) else {
                    continue;
                };
                let name = name.to_string_lossy();
                if name.ends_with(".json") && !lake.files.contains_key(name.as_ref()) {
                    let file = OpenOptions::new().write(true).open(&path)?;
                    if file.metadata()?.len() > 0 {
                        file.set_len(0)?;
                    }
                }
            }
        }
        Ok(lake)
    }

    /// Opens the lake at `dir` to read it, changing nothing (a writer elsewhere may be appending).
    pub fn attach(dir: &Path, files: HashMap<String, FileState>) -> io::Result<Lake> {
        fs::create_dir_all(dir)?;
        Ok(Lake {
            dir: dir.to_path_buf(),
            files,
            handles: HashMap::new(),
            over_before: i64::MIN,
            newest: i64::MIN,
            compressors: Compressors::default(),
            spare: Vec::new(),
            compressed: Vec::new(),
        })
    }

    /// Whether the hour starting at `hour` is over.
    pub fn is_over(&self, hour: i64) -> bool {
        hour.saturating_add(3600) <= self.over_before.max(self.newest.saturating_sub(OVER_AFTER))
    }

    /// Declares the hours that ended by `before` (Unix seconds) over.
    pub fn declare_over(&mut self, before: i64) {
        self.over_before = self.over_before.max(before);
    }

    /// Notes an event about to be written, created at `created_at`.
    pub fn saw(&mut self, created_at: i64) {
        self.newest = self.newest.max(created_at);
    }

    /// Whether the store's record of `name` is known here.
    pub fn knows(&self, name: &str) -> bool {
        self.files.contains_key(name)
    }

    /// Adds the store's record of `name`.
    pub fn learn(&mut self, name: String, state: FileState) {
        self.files.insert(name, state);
    }

    /// The records to commit, durably, before the hour files `files` (name and hour start) are written to: those
    /// not open yet, open, and new files in the form their hour asks for. Call [`Lake::opened`] once committed.
    pub fn opening<'a>(
        &self,
        files: impl IntoIterator<Item = (&'a str, i64)>,
    ) -> Vec<(String, FileState)> {
        let mut opening = Vec::new();
        for (name, hour) in files {
            match self.files.get(name) {
                Some(state) if state.open => {}
                Some(state) => opening.push((
                    name.to_string(),
                    FileState {
                        open: true,
                        ..*state
                    },
                )),
                None => opening.push((
                    name.to_string(),
                    FileState {
                        hour,
                        end: 0,
                        plain: 0,
                        gz: self.is_over(hour),
                        open: true,
                    },
                )),
            }
        }
        opening
    }

    /// Takes the records [`Lake::opening`] gave, now committed.
    pub fn opened(&mut self, states: Vec<(String, FileState)>) {
        self.files.extend(states);
    }

    /// An empty batch, reusing the buffers of earlier ones ([`Lake::recycle`]).
    pub fn pending(&mut self) -> Pending {
        Pending {
            bytes: HashMap::new(),
            spare: std::mem::take(&mut self.spare),
        }
    }

    /// Keeps a written batch's buffers for the next one.
    pub fn recycle(&mut self, pending: Pending) {
        self.spare = pending.spare;
        for (_, (_, mut bytes)) in pending.bytes {
            bytes.clear();
            self.spare.push(bytes);
        }
        self.spare.truncate(4);
    }

    /// Where the next event appended to `file` will start in its JSON lines, counting what is pending.
    pub fn offset(&self, pending: &Pending, file: &str) -> u64 {
        self.files.get(file).map_or(0, |s| s.plain) + pending.len(file)
    }

    fn handle(&mut self, disk: &str) -> io::Result<&File> {
        if !self.handles.contains_key(disk) {
            let path = self.dir.join(disk);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)?;
            }
            let handle = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)?;
            self.handles.insert(disk.to_string(), handle);
        }
        Ok(&self.handles[disk])
    }

    /// Writes and syncs what is pending at each file's committed end (compressed for files kept compressed);
    /// returns the records to commit with the events, which [`Lake::commit`] takes once they are. Every file
    /// written to must be open ([`Lake::opening`]).
    pub fn write(&mut self, pending: &Pending) -> io::Result<Vec<(String, FileState)>> {
        let mut written = Vec::with_capacity(pending.bytes.len());
        for (name, (_, bytes)) in &pending.bytes {
            let state = *self.files.get(name).filter(|s| s.open).ok_or_else(|| {
                io::Error::other(format!("{name} is written to before it is recorded open"))
            })?;
            let mut compressed = std::mem::take(&mut self.compressed);
            let out: &[u8] = if state.gz {
                self.compressors.members_into(bytes, &mut compressed);
                &compressed
            } else {
                bytes
            };
            let end = state.end + out.len() as u64;
            let handle = self.handle(&disk_name(name, state.gz))?;
            handle.write_all_at(out, state.end)?;
            // What a failed write left past this one.
            if handle.metadata()?.len() > end {
                handle.set_len(end)?;
            }
            handle.sync_data()?;
            self.compressed = compressed;
            written.push((
                name.clone(),
                FileState {
                    end,
                    plain: state.plain + bytes.len() as u64,
                    // An hour kept compressed and over expects nothing more: nothing to look at on the next start.
                    open: !(state.gz && self.is_over(state.hour)),
                    ..state
                },
            ));
        }
        Ok(written)
    }

    /// Takes the records [`Lake::write`] gave, now committed.
    pub fn commit(&mut self, written: Vec<(String, FileState)>) {
        for (name, state) in written {
            if !state.open {
                self.handles.remove(&disk_name(&name, state.gz));
            }
            self.files.insert(name, state);
        }
    }

    /// The plain files whose hour is over: to compress.
    pub fn closable(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .files
            .iter()
            .filter(|(_, s)| !s.gz && self.is_over(s.hour))
            .map(|(name, _)| name.clone())
            .collect();
        names.sort();
        names
    }

    /// Compresses the plain file `name`'s committed part into `HH.json.gz` beside it (written to a temporary
    /// file, synced, then renamed into place); returns the record to commit (the plain file still there, so
    /// still open), after which [`Lake::compressed`] removes the plain file.
    pub fn compress(&mut self, name: &str) -> io::Result<FileState> {
        let state = *self
            .files
            .get(name)
            .filter(|s| !s.gz)
            .ok_or_else(|| io::Error::other(format!("{name} is not a plain hour file")))?;
        self.handles.remove(name);
        let target = self.dir.join(format!("{name}.gz"));
        let temporary = self.dir.join(format!("{name}.gz.tmp"));
        let source = match File::open(self.dir.join(name)) {
            Ok(file) => Some(file),
            Err(e) if e.kind() == io::ErrorKind::NotFound && state.plain == 0 => None,
            Err(e) => return Err(e),
        };
        let out = File::create(&temporary)?;
        let (mut at, mut end) = (0u64, 0u64);
        let mut window = Vec::new();
        while let Some(source) = source.as_ref().filter(|_| at < state.plain) {
            let len = (state.plain - at).min(COMPRESS_WINDOW as u64) as usize;
            window.resize(len, 0);
            source.read_exact_at(&mut window, at)?;
            // Whole lines per window, so that every member starts at a line; a longer line goes whole.
            let take = match window.iter().rposition(|b| *b == b'\n') {
                Some(last) if at + (len as u64) < state.plain => last + 1,
                _ => len,
            };
            let members = self.compressors.members(&window[..take]);
            out.write_all_at(&members, end)?;
            end += members.len() as u64;
            at += take as u64;
        }
        out.sync_all()?;
        drop(out);
        fs::rename(&temporary, &target)?;
        sync_dir(&target)?;
        let compressed = FileState {
            end,
            gz: true,
            open: true,
            ..state
        };
        self.files.insert(name.to_string(), compressed);
        Ok(compressed)
    }

    /// Removes the plain file of `name` once its compressed form is recorded; returns the record to commit.
    pub fn compressed(&mut self, name: &str) -> io::Result<FileState> {
        let plain = self.dir.join(name);
        remove_if_there(&plain)?;
        sync_dir(&plain)?;
        let state = self
            .files
            .get_mut(name)
            .ok_or_else(|| io::Error::other(format!("{name} is not recorded")))?;
        state.open = false;
        Ok(*state)
    }

    /// Reads `len` bytes of `file`'s JSON lines at `offset`, in whichever form the file is.
    pub fn read(&mut self, file: &str, offset: u64, len: u64) -> io::Result<Vec<u8>> {
        let mut bytes = vec![0; len as usize];
        if self.files.get(file).is_some_and(|s| s.gz) {
            let gz = File::open(self.dir.join(format!("{file}.gz")))?;
            let mut lines = flate2::read::MultiGzDecoder::new(io::BufReader::new(gz));
            io::copy(&mut (&mut lines).take(offset), &mut io::sink())?;
            lines.read_exact(&mut bytes)?;
        } else {
            self.handle(file)?.read_exact_at(&mut bytes, offset)?;
        }
        Ok(bytes)
    }
}

fn remove_if_there(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Syncs the directory holding `path`, so that a rename or removal in it is on disk.
fn sync_dir(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) => File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 1_735_743_600; // 2025-01-01T15:00:00Z

    fn line(id: u32) -> String {
        format!(
            "{{\"id\":\"{id}\",\"payload\":\"{}\"}}",
            "x".repeat(id as usize % 50)
        )
    }

    /// Writes `ids` into the file of `hour` as the store does (record open, write, commit); returns its name.
    fn store(lake: &mut Lake, hour: i64, ids: std::ops::Range<u32>) -> String {
        let name = crate::layout::hour_file(hour);
        let mut pending = Pending::default();
        for id in ids {
            lake.saw(hour);
            pending.push(&name, hour, &line(id));
        }
        let opening = lake.opening([(name.as_str(), hour)]);
        lake.opened(opening);
        let written = lake.write(&pending).unwrap();
        lake.commit(written);
        name
    }

    fn gunzip(path: &Path) -> String {
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(File::open(path).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        text
    }

    fn expected(ids: std::ops::Range<u32>) -> String {
        ids.map(|id| format!("{}\n", line(id))).collect()
    }

    #[test]
    fn a_batch_is_placed_by_hour_then_type_then_repository_in_arrival_order_among_equals() {
        let event = |id: &str, kind: &str, repo: &str, at: &str| {
            Event::parse(&format!(
                r#"{{"id":"{id}","type":"{kind}","actor":{{"login":"a"}},"repo":{{"name":"{repo}"}},"created_at":"2025-01-01T{at}Z"}}"#
            ))
            .unwrap()
        };
        let batch = [
            event("0", "PushEvent", "o/b", "16:00:00"),
            event("1", "PushEvent", "o/b", "15:59:59"),
            event("2", "IssuesEvent", "o/z", "15:10:00"),
            event("3", "PushEvent", "o/a", "15:20:00"),
            event("4", "PushEvent", "o/b", "15:00:00"),
            event("5", "IssuesEvent", "o/z", "15:00:00"),
        ];
        let ids: Vec<&str> = placement_order(&batch)
            .into_iter()
            .map(|at| batch[at].id.as_str())
            .collect();
        assert_eq!(ids, ["2", "5", "3", "1", "4", "0"]);
    }

    #[test]
    fn an_hour_over_is_compressed_and_reads_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let mut lake = Lake::open(dir.path(), HashMap::new(), i64::MIN).unwrap();
        let first = store(&mut lake, HOUR, 0..1000);
        assert!(lake.closable().is_empty(), "the newest hour is not over");
        store(&mut lake, HOUR + OVER_AFTER + 3600, 1000..1001);
        assert_eq!(lake.closable(), std::slice::from_ref(&first));
        let offset = expected(0..500).len() as u64;
        let before = lake.read(&first, offset, line(500).len() as u64).unwrap();

        let state = lake.compress(&first).unwrap();
        assert!(state.gz && state.open);
        assert!(
            dir.path().join(&first).exists(),
            "the plain file stays until the record says compressed"
        );
        let state = lake.compressed(&first).unwrap();
        assert!(!state.open);
        assert!(!dir.path().join(&first).exists());
        let gz = dir.path().join(format!("{first}.gz"));
        assert_eq!(gunzip(&gz), expected(0..1000));
        assert_eq!(fs::metadata(&gz).unwrap().len(), state.end);
        assert_eq!(
            lake.read(&first, offset, line(500).len() as u64).unwrap(),
            before
        );

        // A late event for the compressed hour is appended as a member of its own, at the end of its lines.
        let late = store(&mut lake, HOUR, 1001..1002);
        assert_eq!(late, first);
        assert_eq!(
            gunzip(&gz),
            expected(0..1000) + &expected(1001..1002),
            "one stream"
        );
        let at = expected(0..1000).len() as u64;
        assert_eq!(
            lake.read(&first, at, line(1001).len() as u64).unwrap(),
            line(1001).as_bytes()
        );
    }

    #[test]
    fn opening_cuts_only_open_files_and_the_leftovers_beside_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut lake = Lake::open(dir.path(), HashMap::new(), i64::MIN).unwrap();
        lake.declare_over(HOUR + 3600);
        let old = store(&mut lake, HOUR, 0..10);
        let current = store(&mut lake, HOUR + 7200, 10..20);
        let states = lake.files.clone();
        assert!(!states[&old].open && states[&old].gz);
        assert!(states[&current].open && !states[&current].gz);
        drop(lake);

        // Bytes past every committed end, as a crash between the lake's sync and the commit would leave them,
        // and a stray plain file beside the open one.
        let tail = |path: &Path| {
            let mut bytes = fs::read(path).unwrap();
            bytes.extend_from_slice(b"{\"half\":");
            fs::write(path, bytes).unwrap();
        };
        let old_path = dir.path().join(format!("{old}.gz"));
        let current_path = dir.path().join(&current);
        tail(&old_path);
        tail(&current_path);
        let stray = current_path.with_file_name("18.json");
        fs::write(&stray, "{\"never\":\"committed\"}\n").unwrap();
        let old_len = fs::metadata(&old_path).unwrap().len();

        let newest = states.values().map(|s| s.hour).max().unwrap();
        Lake::open(dir.path(), states.clone(), newest).unwrap();
        assert_eq!(
            fs::metadata(&current_path).unwrap().len(),
            states[&current].end,
            "the open file is cut back"
        );
        assert_eq!(fs::read(&stray).unwrap(), b"", "the stray is emptied");
        assert_eq!(
            fs::metadata(&old_path).unwrap().len(),
            old_len,
            "a closed file is not looked at"
        );
    }

    #[test]
    fn what_a_crash_while_compressing_leaves_is_cleared_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let mut lake = Lake::open(dir.path(), HashMap::new(), i64::MIN).unwrap();
        let name = store(&mut lake, HOUR, 0..100);
        let plain_state = lake.files[&name];
        // Crash after the rename, before the record: the database still says plain.
        lake.compress(&name).unwrap();
        drop(lake);
        let files = HashMap::from([(name.clone(), plain_state)]);
        let lake = Lake::open(dir.path(), files, HOUR).unwrap();
        assert!(!dir.path().join(format!("{name}.gz")).exists());
        assert_eq!(
            fs::read_to_string(dir.path().join(&name)).unwrap(),
            expected(0..100)
        );
        drop(lake);

        // Crash after the record, before the plain file is removed: the database says compressed and open.
        let mut lake = Lake::open(
            dir.path(),
            HashMap::from([(name.clone(), plain_state)]),
            HOUR,
        )
        .unwrap();
        let compressed = lake.compress(&name).unwrap();
        drop(lake);
        Lake::open(
            dir.path(),
            HashMap::from([(name.clone(), compressed)]),
            HOUR,
        )
        .unwrap();
        assert!(!dir.path().join(&name).exists());
        assert_eq!(
            gunzip(&dir.path().join(format!("{name}.gz"))),
            expected(0..100)
        );
    }

    #[test]
    fn readers_get_each_file_under_its_name_on_disk() {
        let state = |gz, end| FileState {
            hour: HOUR,
            end,
            plain: 10,
            gz,
            open: false,
        };
        let files = HashMap::from([
            ("a/15.json".to_string(), state(false, 10)),
            ("a/16.json".to_string(), state(true, 4)),
            ("a/17.json".to_string(), state(false, 0)),
        ]);
        assert_eq!(
            committed_ends(&files),
            HashMap::from([("a/15.json".into(), 10), ("a/16.json.gz".into(), 4)])
        );
    }
}
