//! The lake: every stored event's JSON, in GH Archive format (one event per line), one file per hour of
//! `created_at`: `<lake>/YYYY/MM/DD/HH.json`.
//!
//! The store appends an event's bytes here before the transaction that records where they are commits, and
//! syncs them first, so a committed row always points at bytes on disk. Bytes past the last committed event of
//! a file (a crash, or a failed commit) are cut off when the lake opens, and overwritten by the next write. Files
//! are plain JSON lines, which Spark, DuckDB and `forgecast aggregate` read as they read GH Archive.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Bytes waiting to be written, per file, in order.
#[derive(Debug, Default)]
pub struct Pending {
    bytes: HashMap<String, Vec<u8>>,
}

impl Pending {
    /// Appends one event's JSON (and its line end) to `file`.
    pub fn push(&mut self, file: &str, raw: &str) {
        let bytes = self.bytes.entry(file.to_string()).or_default();
        bytes.extend_from_slice(raw.as_bytes());
        bytes.push(b'\n');
    }

    fn len(&self, file: &str) -> u64 {
        self.bytes.get(file).map_or(0, |b| b.len() as u64)
    }
}

/// The lake directory and the committed end of each of its files.
#[derive(Debug)]
pub struct Lake {
    dir: PathBuf,
    ends: HashMap<String, u64>,
    files: HashMap<String, File>,
}

impl Lake {
    /// Opens the lake at `dir` to write it, given each file's committed end; cuts every file back to it (files
    /// with nothing committed are emptied). Only the store's single writer may do this.
    pub fn open(dir: &Path, committed: HashMap<String, u64>) -> io::Result<Lake> {
        let mut lake = Lake::attach(dir, committed)?;
        for file in lake.existing()? {
            let end = lake.end(&file);
            let handle = lake.handle(&file)?;
            if handle.metadata()?.len() > end {
                handle.set_len(end)?;
            }
        }
        Ok(lake)
    }

    /// Opens the lake at `dir` to read it, changing nothing (a writer elsewhere may be appending).
    pub fn attach(dir: &Path, committed: HashMap<String, u64>) -> io::Result<Lake> {
        fs::create_dir_all(dir)?;
        Ok(Lake {
            dir: dir.to_path_buf(),
            ends: committed,
            files: HashMap::new(),
        })
    }

    /// Every `*.json` file under the lake, relative to it.
    fn existing(&self) -> io::Result<Vec<String>> {
        let files = crate::layout::hour_files(&self.dir)?;
        Ok(files
            .iter()
            .filter(|path| path.extension().is_some_and(|e| e == "json"))
            .map(|path| {
                path.strip_prefix(&self.dir)
                    .unwrap_or(path)
                    .to_string_lossy()
                    .into_owned()
            })
            .collect())
    }

    fn end(&self, file: &str) -> u64 {
        self.ends.get(file).copied().unwrap_or(0)
    }

    /// Where the next event appended to `file` will start, counting what is pending.
    pub fn offset(&self, pending: &Pending, file: &str) -> u64 {
        self.end(file) + pending.len(file)
    }

    fn handle(&mut self, file: &str) -> io::Result<&File> {
        if !self.files.contains_key(file) {
            let path = self.dir.join(file);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)?;
            }
            let handle = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)?;
            self.files.insert(file.to_string(), handle);
        }
        Ok(&self.files[file])
    }

    /// Writes and syncs what is pending, at each file's committed end; nothing counts as committed yet.
    pub fn write(&mut self, pending: &Pending) -> io::Result<()> {
        for (file, bytes) in &pending.bytes {
            let end = self.end(file);
            let handle = self.handle(file)?;
            handle.write_all_at(bytes, end)?;
            handle.sync_data()?;
        }
        Ok(())
    }

    /// Marks what was written as committed.
    pub fn commit(&mut self, pending: Pending) {
        for (file, bytes) in pending.bytes {
            *self.ends.entry(file).or_default() += bytes.len() as u64;
        }
    }

    /// Reads `len` bytes of `file` at `offset`.
    pub fn read(&mut self, file: &str, offset: u64, len: u64) -> io::Result<Vec<u8>> {
        let mut bytes = vec![0; len as usize];
        self.handle(file)?.read_exact_at(&mut bytes, offset)?;
        Ok(bytes)
    }
}
