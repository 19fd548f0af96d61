//! The Jira converter on the bundled files (`data/apache-jira-bugfix`): one opened event per issue with a creation
//! date and one closed event per resolved issue, written to hour files that decode back into valid events, in
//! time order, each id once. The files are written plain here, which is faster in a debug build; the unit tests
//! of `jira` read gzipped ones back.

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};

use forgecast_core::Event;
use forgecast_gharchive::jira::{self, FILE_SUFFIX};
use forgecast_gharchive::{Line, read_plain_lines};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/apache-jira-bugfix")
}

/// Issues with a creation date and issues also resolved, counted from the files with the CSV reader alone.
fn counted_in_files() -> (usize, usize) {
    let (mut created, mut resolved) = (0, 0);
    for entry in std::fs::read_dir(data_dir()).unwrap() {
        let path = entry.unwrap().path();
        if !path.to_string_lossy().ends_with(FILE_SUFFIX) {
            continue;
        }
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(b';')
            .flexible(true)
            .from_path(&path)
            .unwrap();
        let headers = reader.headers().unwrap().clone();
        let at = |name: &str| headers.iter().position(|h| h == name).unwrap();
        let (creation, resolution) = (at("CreationDate"), at("ResolutionDate"));
        for record in reader.records() {
            let record = record.unwrap();
            let has = |i: usize| record.get(i).is_some_and(|v| !v.trim().is_empty());
            if has(creation) {
                created += 1;
                resolved += usize::from(has(resolution));
            }
        }
    }
    (created, resolved)
}

#[test]
fn the_bundled_issues_become_one_opened_and_one_closed_event_each() {
    let (created, resolved) = counted_in_files();
    // SOURCE.md: 4,575 bugs in 8 projects, all with both dates.
    assert_eq!((created, resolved), (4575, 4575));

    let out = tempfile::tempdir().unwrap();
    let converted = jira::convert_dir(&data_dir(), out.path(), false).unwrap();
    assert_eq!(converted.issues, 4575);
    assert_eq!(converted.undated, 0);
    assert_eq!((converted.opened, converted.closed), (created, resolved));

    let mut files: Vec<PathBuf> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), converted.files);
    // In time order, as the hours the names stand for.
    files.sort_by_key(|p| {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        forgecast_gharchive::Hour::parse(name.trim_end_matches(".json")).unwrap()
    });

    let (mut opened, mut closed, mut last) = (0, 0, i64::MIN);
    let mut ids = HashSet::new();
    let mut projects = HashSet::new();
    for path in &files {
        let mut lines = Vec::new();
        read_plain_lines(File::open(path).unwrap(), 256, 1 << 20, |chunk| {
            lines.extend(chunk.lines);
            true
        })
        .unwrap();
        assert!(!lines.is_empty(), "{}", path.display());
        for line in lines {
            let Line::Text(text) = line else {
                panic!("a line over the limit in {}", path.display())
            };
            let event = Event::parse(&text).unwrap();
            assert_eq!(event.kind, "IssuesEvent");
            assert!(event.created_at >= last, "out of order at {}", event.id);
            last = event.created_at;
            assert!(ids.insert(event.id.clone()), "{} twice", event.id);
            projects.insert(event.repo.clone());
            match event.id.rsplit('-').next() {
                Some("opened") => opened += 1,
                Some("closed") => closed += 1,
                other => panic!("unexpected id suffix {other:?}"),
            }
        }
    }
    assert_eq!((opened, closed), (created, resolved));
    assert_eq!(projects.len(), 8);
    assert!(projects.contains("apache/kafka"));
}

#[test]
fn kafka_components_with_a_space_are_read_whole() {
    let issues = jira::read_dir(&data_dir()).unwrap();
    let kafka: Vec<&str> = issues
        .iter()
        .filter(|i| i.project == "KAFKA")
        .flat_map(|i| i.components.iter().map(String::as_str))
        .collect();
    for whole in ["system tests", "unit tests", "offset manager"] {
        assert!(kafka.contains(&whole), "{whole}");
    }
    for part in ["system", "unit", "tests", "offset", "manager"] {
        assert!(!kafka.contains(&part), "{part}");
    }
    assert!(kafka.contains(&"producer") && kafka.contains(&"core"));
}
