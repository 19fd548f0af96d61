//! Where events live in a lake: one file per hour of `created_at`, `<lake>/YYYY/MM/DD/HH.json`, compressed to
//! `HH.json.gz` once the hour is over (as GH Archive publishes its hours). Every writer and reader of a lake
//! takes its paths from here.

use std::io;
use std::path::{Path, PathBuf};

use chrono::DateTime;

/// The hour file, relative to the lake, of an event created at `unix` seconds.
pub fn hour_file(unix: i64) -> String {
    DateTime::from_timestamp(unix, 0)
        .unwrap_or_default()
        .format("%Y/%m/%d/%H.json")
        .to_string()
}

/// Every hour file under `dir`, searched recursively and sorted: `*.json.gz` as GH Archive publishes them,
/// `*.json` as a lake keeps an hour in progress.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_goes_to_the_file_of_its_hour() {
        // 2015-01-01T15:04:05Z
        assert_eq!(hour_file(1_420_124_645), "2015/01/01/15.json");
        assert_eq!(hour_file(0), "1970/01/01/00.json");
    }

    #[test]
    fn hour_files_are_found_recursively_and_sorted() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "2015/01/01/16.json",
            "2015/01/01/15.json.gz",
            "2015/01/01/notes.txt",
            "a.json",
        ] {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, b"").unwrap();
        }
        let found: Vec<String> = hour_files(dir.path())
            .unwrap()
            .iter()
            .map(|p| {
                p.strip_prefix(dir.path())
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(
            found,
            ["2015/01/01/15.json.gz", "2015/01/01/16.json", "a.json"]
        );
    }
}
