//! Apache Jira bug reports (`data/apache-jira-bugfix`) turned into GH Archive `IssuesEvent`s, so that the
//! issue-outcome model can be replayed and backfilled on ten years of real issue history.
//!
//! Each issue with a creation date becomes an `opened` event at its creation, and, once resolved, a `closed`
//! event at its resolution. The opened event carries only what was known when the issue was filed (project,
//! reporter, summary and description words, priority and components as labels); comments and the resolution
//! appear in the closed event only, so a model reading opened events cannot see the outcome.
//!
//! The files hold bags of words (`word:count …`) rather than text: a title or body is each word repeated by its
//! count, in the file's order. Components are separated by spaces although some names contain one (Kafka's
//! `system tests`): two adjacent words are read as one component when, in the whole project, the first never
//! appears other than right before the second, at least twice ([`join_components`]). Ids (event, issue, actor,
//! repository) are synthetic but stable: the same file gives the same events, so a replay stores each once, and
//! event ids (`jira-KAFKA-1234-opened`) cannot collide with GitHub's numeric ones.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Timelike};
use flate2::Compression;
use flate2::write::GzEncoder;
use forgecast_core::time::format_timestamp;
use serde::Serialize;

use crate::hours::Hour;

/// How the bundled files are named: `<project>-jira-bug-fix-dataset.csv`.
pub const FILE_SUFFIX: &str = "-jira-bug-fix-dataset.csv";

/// The columns read; every other column describes the issue's whole life and is ignored, except `NoComments`.
const COLUMNS: [&str; 10] = [
    "Project",
    "Key",
    "Priority",
    "Reporter",
    "Assignee",
    "Components",
    "SummaryTopWords",
    "DescriptionTopWords",
    "CreationDate",
    "ResolutionDate",
];

/// Why the files could not be read or the hour files written.
#[derive(Debug, thiserror::Error)]
pub enum JiraError {
    /// A file could not be read or is not CSV.
    #[error("{path}: {error}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// What the CSV reader said.
        error: csv::Error,
    },
    /// A column the converter needs is absent.
    #[error("{path}: no `{column}` column")]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The column.
        column: &'static str,
    },
    /// A date is not like `2011-07-19T21:32:09.000+0000`.
    #[error(
        "{path}, issue {key}: {column} {value:?} is not a date like 2011-07-19T21:32:09.000+0000"
    )]
    Date {
        /// The file.
        path: PathBuf,
        /// The issue.
        key: String,
        /// The column.
        column: &'static str,
        /// What it holds.
        value: String,
    },
    /// A key does not end in `-<number>`.
    #[error("{path}: key {key:?} is not like PROJECT-123")]
    Key {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
    },
    /// A directory or hour file could not be listed, created or written.
    #[error("{path}: {error}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What failed.
        error: io::Error,
    },
}

/// One Jira issue, as far as the converter reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JiraIssue {
    /// The Jira project key, such as `KAFKA`.
    pub project: String,
    /// The issue key, such as `KAFKA-1234`.
    pub key: String,
    /// The number in the key.
    pub number: u64,
    /// `Major`, `Blocker`, …; empty when the file has none.
    pub priority: String,
    /// The Jira user name of the reporter, as in the file.
    pub reporter: String,
    /// The Jira user name of the assignee, as in the file (often empty).
    pub assignee: String,
    /// The components (see [`join_components`]).
    pub components: Vec<String>,
    /// The summary's words with their counts, in the file's order.
    pub summary: Vec<(String, u32)>,
    /// The description's words with their counts, in the file's order.
    pub description: Vec<(String, u32)>,
    /// Creation time in Unix seconds; `None` when the file has no date.
    pub created: Option<i64>,
    /// Resolution time in Unix seconds, when resolved.
    pub resolved: Option<i64>,
    /// Comments over the issue's life (known only once it is closed).
    pub comments: u64,
}

/// One converted event: its time, id, action and GH Archive line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JiraEvent {
    /// `created_at` in Unix seconds.
    pub created_at: i64,
    /// The event id.
    pub id: String,
    /// `opened` or `closed`.
    pub action: &'static str,
    /// The event as one line of JSON, without line end.
    pub line: String,
}

/// What [`convert_dir`] read and wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Converted {
    /// Issues read.
    pub issues: usize,
    /// Issues skipped for want of a creation date.
    pub undated: usize,
    /// Opened events written.
    pub opened: usize,
    /// Closed events written.
    pub closed: usize,
    /// Hour files written.
    pub files: usize,
}

/// Reads one semicolon-delimited file of the dataset; `path` only names it in errors.
pub fn read_csv(reader: impl Read, path: &Path) -> Result<Vec<JiraIssue>, JiraError> {
    let csv_error = |error| JiraError::Csv {
        path: path.to_path_buf(),
        error,
    };
    let mut csv = csv::ReaderBuilder::new()
        .delimiter(b';')
        .flexible(true)
        .from_reader(reader);
    let headers = csv.headers().map_err(csv_error)?.clone();
    let column = |name: &'static str| {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| JiraError::MissingColumn {
                path: path.to_path_buf(),
                column: name,
            })
    };
    let at: HashMap<&str, usize> = COLUMNS
        .iter()
        .map(|c| Ok((*c, column(c)?)))
        .collect::<Result<_, JiraError>>()?;
    let comments_at = headers.iter().position(|h| h == "NoComments");
    let mut issues = Vec::new();
    for record in csv.records() {
        let record = record.map_err(csv_error)?;
        let field = |name: &str| record.get(at[name]).unwrap_or("").trim();
        let key = field("Key").to_string();
        let number = key
            .rsplit_once('-')
            .and_then(|(_, n)| n.parse().ok())
            .ok_or_else(|| JiraError::Key {
                path: path.to_path_buf(),
                key: key.clone(),
            })?;
        let date = |column: &'static str| -> Result<Option<i64>, JiraError> {
            let value = field(column);
            if value.is_empty() {
                return Ok(None);
            }
            parse_date(value).map(Some).ok_or_else(|| JiraError::Date {
                path: path.to_path_buf(),
                key: key.clone(),
                column,
                value: value.to_string(),
            })
        };
        let (created, resolved) = (date("CreationDate")?, date("ResolutionDate")?);
        issues.push(JiraIssue {
            project: field("Project").to_string(),
            number,
            priority: field("Priority").to_string(),
            reporter: field("Reporter").to_string(),
            assignee: field("Assignee").to_string(),
            components: field("Components")
                .split_whitespace()
                .map(str::to_string)
                .collect(),
            summary: bag(field("SummaryTopWords")),
            description: bag(field("DescriptionTopWords")),
            created,
            resolved,
            comments: comments_at
                .and_then(|i| record.get(i))
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or(0),
            key,
        });
    }
    join_components(&mut issues);
    Ok(issues)
}

/// Reads every `*-jira-bug-fix-dataset.csv` of `dir`, in file name order.
pub fn read_dir(dir: &Path) -> Result<Vec<JiraIssue>, JiraError> {
    let io_error = |error| JiraError::Io {
        path: dir.to_path_buf(),
        error,
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io_error)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(io_error)?;
    paths.retain(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(FILE_SUFFIX))
    });
    paths.sort();
    let mut issues = Vec::new();
    for path in paths {
        let file = File::open(&path).map_err(|error| JiraError::Io {
            path: path.clone(),
            error,
        })?;
        issues.extend(read_csv(io::BufReader::new(file), &path)?);
    }
    Ok(issues)
}

/// Jira's dates, `2011-07-19T21:32:09.000+0000`, in Unix seconds.
fn parse_date(text: &str) -> Option<i64> {
    DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z")
        .ok()
        .map(|t| t.timestamp())
}

/// `word:count word:count …` as pairs; a count that is not a number counts once.
fn bag(text: &str) -> Vec<(String, u32)> {
    text.split_whitespace()
        .filter_map(|item| {
            let (word, count) = match item.rsplit_once(':') {
                Some((word, count)) => (word, count.parse().unwrap_or(1)),
                None => (item, 1),
            };
            (!word.is_empty()).then(|| (word.to_string(), count))
        })
        .collect()
}

/// Rejoins component names that contain a space, per project: words `a b` adjacent in a components field are
/// one component `a b` when `a` appears in that project's fields only directly before `b`, and at least twice
/// (so that a component seen once beside another is not glued to it).
pub fn join_components(issues: &mut [JiraIssue]) {
    let mut words: HashMap<(&str, &str), u32> = HashMap::new();
    let mut pairs: HashMap<(&str, &str, &str), u32> = HashMap::new();
    for issue in issues.iter() {
        for (at, word) in issue.components.iter().enumerate() {
            *words.entry((&issue.project, word)).or_default() += 1;
            if let Some(next) = issue.components.get(at + 1) {
                *pairs.entry((&issue.project, word, next)).or_default() += 1;
            }
        }
    }
    let joined: Vec<(String, String, String)> = pairs
        .iter()
        .filter(|((project, first, _), n)| **n >= 2 && words[&(*project, *first)] == **n)
        .map(|((p, a, b), _)| (p.to_string(), a.to_string(), b.to_string()))
        .collect();
    if joined.is_empty() {
        return;
    }
    for issue in issues.iter_mut() {
        let mut components = Vec::with_capacity(issue.components.len());
        let mut words = std::mem::take(&mut issue.components).into_iter().peekable();
        while let Some(word) = words.next() {
            let glued = words.peek().is_some_and(|next| {
                joined
                    .iter()
                    .any(|(p, a, b)| *p == issue.project && *a == word && b == next)
            });
            match glued {
                true => components.push(format!("{word} {}", words.next().expect("peeked"))),
                false => components.push(word),
            }
        }
        issue.components = components;
    }
}

/// A Jira user name as a GitHub login: letters, digits and single hyphens, no hyphen at either end, at most 39
/// characters; anything else becomes a hyphen (`ted.dunning@apache.org` → `ted-dunning-apache-org`). An empty
/// name becomes `ghost`, GitHub's login for a deleted user.
pub fn github_login(name: &str) -> String {
    let mut login = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            login.push(c);
        } else if !login.is_empty() && !login.ends_with('-') {
            login.push('-');
        }
    }
    login.truncate(39);
    while login.ends_with('-') {
        login.pop();
    }
    if login.is_empty() {
        "ghost".to_string()
    } else {
        login
    }
}

/// The GitHub repository an issue's project stands for: `apache/<project lowercased>`.
pub fn repo_name(project: &str) -> String {
    format!("apache/{}", project.to_lowercase())
}

/// A stable synthetic id from a name: FNV-1a, kept below 2⁵³ so that JSON readers keep it exact.
fn synthetic_id(kind: &str, name: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in kind.bytes().chain([0]).chain(name.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash & ((1 << 53) - 1)).max(1)
}

/// Words repeated by their counts, in order.
fn text_of(bag: &[(String, u32)]) -> String {
    let mut words = Vec::new();
    for (word, count) in bag {
        words.extend(std::iter::repeat_n(word.as_str(), *count as usize));
    }
    words.join(" ")
}

#[derive(Serialize)]
struct Line<'a> {
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    actor: Actor,
    repo: Repo,
    payload: Payload<'a>,
    public: bool,
    created_at: String,
    org: Org,
}

#[derive(Serialize)]
struct Actor {
    id: u64,
    login: String,
    gravatar_id: &'static str,
    url: String,
    avatar_url: String,
}

#[derive(Serialize)]
struct Repo {
    id: u64,
    name: String,
    url: String,
}

#[derive(Serialize)]
struct Org {
    id: u64,
    login: &'static str,
    gravatar_id: &'static str,
    url: &'static str,
}

#[derive(Serialize)]
struct Payload<'a> {
    action: &'static str,
    issue: &'a Issue,
}

#[derive(Clone, Serialize)]
struct Issue {
    url: String,
    html_url: String,
    id: u64,
    number: u64,
    title: String,
    user: User,
    labels: Vec<Label>,
    state: &'static str,
    locked: bool,
    assignee: Option<User>,
    milestone: Option<()>,
    comments: u64,
    created_at: String,
    updated_at: String,
    closed_at: Option<String>,
    author_association: &'static str,
    body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state_reason: Option<&'static str>,
}

#[derive(Clone, Serialize)]
struct User {
    login: String,
    id: u64,
    #[serde(rename = "type")]
    kind: &'static str,
    site_admin: bool,
}

#[derive(Clone, Serialize)]
struct Label {
    name: String,
}

fn user(login: String) -> User {
    User {
        id: synthetic_id("user", &login),
        login,
        kind: "User",
        site_admin: false,
    }
}

fn actor(login: &str) -> Actor {
    Actor {
        id: synthetic_id("user", login),
        login: login.to_string(),
        gravatar_id: "",
        url: format!("https://api.github.com/users/{login}"),
        avatar_url: format!(
            "https://avatars.githubusercontent.com/u/{}?",
            synthetic_id("user", login)
        ),
    }
}

/// The events of one issue: `opened` at its creation and, when resolved, `closed` at its resolution (never
/// before the creation). None for an issue without a creation date.
pub fn issue_events(issue: &JiraIssue) -> Vec<JiraEvent> {
    let Some(created) = issue.created else {
        return Vec::new();
    };
    let repo = repo_name(&issue.project);
    let reporter = github_login(&issue.reporter);
    let mut labels = Vec::with_capacity(1 + issue.components.len());
    if !issue.priority.is_empty() {
        labels.push(Label {
            name: format!("priority:{}", issue.priority),
        });
    }
    labels.extend(issue.components.iter().map(|c| Label {
        name: format!("component:{c}"),
    }));
    let body = text_of(&issue.description);
    let opened = Issue {
        url: format!(
            "https://api.github.com/repos/{repo}/issues/{}",
            issue.number
        ),
        html_url: format!("https://issues.apache.org/jira/browse/{}", issue.key),
        id: synthetic_id("issue", &issue.key),
        number: issue.number,
        title: text_of(&issue.summary),
        user: user(reporter.clone()),
        labels,
        state: "open",
        locked: false,
        assignee: None,
        milestone: None,
        comments: 0,
        created_at: format_timestamp(created),
        updated_at: format_timestamp(created),
        closed_at: None,
        author_association: "NONE",
        body: (!body.is_empty()).then_some(body),
        state_reason: None,
    };
    let line = |action: &'static str, at: i64, login: &str, issue_json: &Issue| {
        let id = format!("jira-{}-{action}", issue.key);
        let text = serde_json::to_string(&Line {
            id: id.clone(),
            kind: "IssuesEvent",
            actor: actor(login),
            repo: Repo {
                id: synthetic_id("repo", &repo),
                url: format!("https://api.github.com/repos/{repo}"),
                name: repo.clone(),
            },
            payload: Payload {
                action,
                issue: issue_json,
            },
            public: true,
            created_at: format_timestamp(at),
            org: Org {
                id: synthetic_id("org", "apache"),
                login: "apache",
                gravatar_id: "",
                url: "https://api.github.com/orgs/apache",
            },
        })
        .expect("an event always serialises");
        JiraEvent {
            created_at: at,
            id,
            action,
            line: text,
        }
    };
    let mut events = vec![line("opened", created, &reporter, &opened)];
    if let Some(resolved) = issue.resolved {
        let resolved = resolved.max(created);
        // Who resolved is not in the files; the assignee is the likeliest, else the reporter.
        let closer = match issue.assignee.is_empty() {
            true => reporter.clone(),
            false => github_login(&issue.assignee),
        };
        let closed = Issue {
            state: "closed",
            assignee: (!issue.assignee.is_empty()).then(|| user(closer.clone())),
            comments: issue.comments,
            updated_at: format_timestamp(resolved),
            closed_at: Some(format_timestamp(resolved)),
            state_reason: Some("completed"),
            ..opened.clone()
        };
        events.push(line("closed", resolved, &closer, &closed));
    }
    events
}

/// The events of all issues, in time order (an issue's opening before its closing at the same second, then by
/// id).
pub fn events(issues: &[JiraIssue]) -> Vec<JiraEvent> {
    let mut events: Vec<JiraEvent> = issues.iter().flat_map(issue_events).collect();
    events.sort_by(|a, b| {
        (a.created_at, a.action != "opened", &a.id).cmp(&(
            b.created_at,
            b.action != "opened",
            &b.id,
        ))
    });
    events
}

/// The hour an event time falls in.
pub fn hour_of(unix: i64) -> Hour {
    let at = DateTime::from_timestamp(unix, 0).unwrap_or_default();
    Hour::parse(&format!("{}T{:02}", at.format("%Y-%m-%d"), at.hour()))
        .expect("a formatted hour parses")
}

/// The file name of an hour as written: GH Archive's `YYYY-MM-DD-H.json.gz`, or `YYYY-MM-DD-H.json` plain.
pub fn hour_file_name(hour: Hour, gzip: bool) -> String {
    let name = hour.file_name();
    match gzip {
        true => name,
        false => name.trim_end_matches(".gz").to_string(),
    }
}

/// Writes `events` (in time order, see [`events`]) into one file per hour under `dir`, created if need be,
/// gzipped as GH Archive publishes them (what `forgecast backfill --source-dir` reads) or plain. Returns the
/// files written, in time order.
pub fn write_hours(
    events: &[JiraEvent],
    dir: &Path,
    gzip: bool,
) -> Result<Vec<PathBuf>, JiraError> {
    let io_error = |path: &Path| {
        let path = path.to_path_buf();
        move |error| JiraError::Io { path, error }
    };
    std::fs::create_dir_all(dir).map_err(io_error(dir))?;
    let mut by_hour: BTreeMap<Hour, Vec<&JiraEvent>> = BTreeMap::new();
    for event in events {
        by_hour
            .entry(hour_of(event.created_at))
            .or_default()
            .push(event);
    }
    let mut written = Vec::with_capacity(by_hour.len());
    for (hour, events) in by_hour {
        let path = dir.join(hour_file_name(hour, gzip));
        let file = File::create(&path).map_err(io_error(&path))?;
        let mut out: Box<dyn Write> = match gzip {
            true => Box::new(GzEncoder::new(BufWriter::new(file), Compression::default())),
            false => Box::new(BufWriter::new(file)),
        };
        for event in events {
            writeln!(out, "{}", event.line).map_err(io_error(&path))?;
        }
        out.flush().map_err(io_error(&path))?;
        drop(out);
        written.push(path);
    }
    Ok(written)
}

/// Reads the dataset's files in `source` and writes their events as hour files into `target`.
pub fn convert_dir(source: &Path, target: &Path, gzip: bool) -> Result<Converted, JiraError> {
    let issues = read_dir(source)?;
    let events = events(&issues);
    let files = write_hours(&events, target, gzip)?.len();
    let opened = events.iter().filter(|e| e.action == "opened").count();
    Ok(Converted {
        issues: issues.len(),
        undated: issues.iter().filter(|i| i.created.is_none()).count(),
        opened,
        closed: events.len() - opened,
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use forgecast_core::Event;
    use serde_json::Value;

    const HEADER: &str = "Project;Owner;Manager;Category;Key;Priority;Status;Reporter;Assignee;Components;\
        SummaryTopWords;DescriptionTopWords;CommentsTopWords;CreationDate;ResolutionDate;LastUpdateDate;\
        AffectsVersions;FixVersions;NoComments;FirstCommentDate;LastCommentDate;NoWatchers;NoAttachments;\
        FirstAttachmentDate;LastAttachmentDate;NoAttachedPatches;FirstAttachedPatchDate;LastAttachedPatchDate;\
        InwardIssueLinks;OutwardIssueLinks";

    fn rows(rows: &[&str]) -> Vec<JiraIssue> {
        let text = format!("{HEADER}\n{}\n", rows.join("\n"));
        read_csv(text.as_bytes(), Path::new("test.csv")).unwrap()
    }

    /// A resolved Kafka issue with two components, whose comments and attachments say how it ended.
    const RESOLVED: &str = "KAFKA;ASF;Apache Kafka Committee;big-data;KAFKA-42;Blocker;Resolved;ted.dunning@apache.org;\
        junrao;core producer ;leak:2 broker:1;memory:3 leak:1;fixed:5 committed:2;2012-03-04T05:06:07.000+0000;\
        2012-03-05T01:00:00.000+0000;;0.7;0.8;7;;;3;2;;;1;;;;";
    /// An issue still open, filed later the same day, without a description.
    const OPEN: &str = "KAFKA;ASF;Apache Kafka Committee;big-data;KAFKA-43;Minor;Open;bob;;;typo:1;;;\
        2012-03-04T23:59:59.000+0000;;;;;0;;;0;0;;;0;;;;";

    fn json(event: &JiraEvent) -> Value {
        serde_json::from_str(&event.line).unwrap()
    }

    #[test]
    fn an_issue_maps_to_an_opened_event_with_what_was_known_at_creation() {
        let issues = rows(&[RESOLVED]);
        assert_eq!(issues[0].components, ["core", "producer"]);
        let events = issue_events(&issues[0]);
        assert_eq!(events.len(), 2);
        let opened = json(&events[0]);
        assert_eq!(opened["id"], "jira-KAFKA-42-opened");
        assert_eq!(opened["type"], "IssuesEvent");
        assert_eq!(opened["repo"]["name"], "apache/kafka");
        assert_eq!(opened["org"]["login"], "apache");
        assert_eq!(opened["actor"]["login"], "ted-dunning-apache-org");
        assert_eq!(opened["created_at"], "2012-03-04T05:06:07Z");
        let issue = &opened["payload"]["issue"];
        assert_eq!(opened["payload"]["action"], "opened");
        assert_eq!(issue["number"], 42);
        assert_eq!(issue["title"], "leak leak broker");
        assert_eq!(issue["body"], "memory memory memory leak");
        let labels: Vec<&str> = issue["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            labels,
            ["priority:Blocker", "component:core", "component:producer"]
        );
        assert_eq!(issue["author_association"], "NONE");
        assert_eq!(issue["comments"], 0);
        assert_eq!(issue["state"], "open");
        assert_eq!(issue["created_at"], "2012-03-04T05:06:07Z");
        assert_eq!(issue["user"]["login"], "ted-dunning-apache-org");

        let parsed = Event::parse(&events[0].line).unwrap();
        assert_eq!(
            (
                parsed.kind.as_str(),
                parsed.repo.as_str(),
                parsed.org.as_deref()
            ),
            ("IssuesEvent", "apache/kafka", Some("apache"))
        );
        assert_eq!(parsed.created_at, events[0].created_at);
    }

    #[test]
    fn the_outcome_appears_only_in_the_closed_event() {
        let events = issue_events(&rows(&[RESOLVED])[0]);
        let (opened, closed) = (json(&events[0]), json(&events[1]));
        let issue = &opened["payload"]["issue"];
        assert!(issue["closed_at"].is_null() && issue["assignee"].is_null());
        assert!(issue.get("state_reason").is_none());
        assert!(!events[0].line.contains("fixed") && !events[0].line.contains("Resolved"));
        assert!(!events[0].line.contains("junrao"));

        assert_eq!(closed["id"], "jira-KAFKA-42-closed");
        assert_eq!(closed["payload"]["action"], "closed");
        assert_eq!(closed["created_at"], "2012-03-05T01:00:00Z");
        assert_eq!(closed["actor"]["login"], "junrao");
        let issue = &closed["payload"]["issue"];
        assert_eq!(issue["state"], "closed");
        assert_eq!(issue["closed_at"], "2012-03-05T01:00:00Z");
        assert_eq!(issue["comments"], 7);
        assert_eq!(issue["title"], opened["payload"]["issue"]["title"]);
        assert_eq!(issue["created_at"], "2012-03-04T05:06:07Z");
        assert!(Event::parse(&events[1].line).is_ok());
    }

    #[test]
    fn open_and_undated_issues() {
        let undated = OPEN.replace("2012-03-04T23:59:59.000+0000", "");
        let issues = rows(&[OPEN, &undated]);
        let events = issue_events(&issues[0]);
        assert_eq!(events.len(), 1);
        assert!(json(&events[0])["payload"]["issue"]["body"].is_null());
        assert_eq!(
            json(&events[0])["payload"]["issue"]["labels"][0]["name"],
            "priority:Minor"
        );
        assert!(issue_events(&issues[1]).is_empty());
        let bad = OPEN.replace("2012-03-04T23:59:59.000+0000", "yesterday");
        let text = format!("{HEADER}\n{bad}\n");
        let error = read_csv(text.as_bytes(), Path::new("k.csv")).unwrap_err();
        assert!(error.to_string().contains("KAFKA-43"), "{error}");
    }

    #[test]
    fn events_are_sorted_by_time_across_issues() {
        let events = events(&rows(&[RESOLVED, OPEN]));
        let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "jira-KAFKA-42-opened",
                "jira-KAFKA-43-opened",
                "jira-KAFKA-42-closed"
            ]
        );
        let mut distinct = ids.clone();
        distinct.dedup();
        assert_eq!(distinct.len(), 3);
    }

    #[test]
    fn hour_files_are_named_as_the_archive_names_them() {
        let dir = tempfile::tempdir().unwrap();
        let events = events(&rows(&[RESOLVED, OPEN]));
        let written = write_hours(&events, dir.path(), true).unwrap();
        let names: Vec<String> = written
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "2012-03-04-5.json.gz",
                "2012-03-04-23.json.gz",
                "2012-03-05-1.json.gz"
            ]
        );
        let mut lines = Vec::new();
        crate::read_lines(File::open(&written[0]).unwrap(), 16, 1 << 20, |chunk| {
            lines.extend(chunk.lines);
            true
        })
        .unwrap();
        assert!(matches!(&lines[..], [crate::Line::Text(l)] if **l == *events[0].line));

        let plain = write_hours(&events, &dir.path().join("plain"), false).unwrap();
        assert!(plain[1].ends_with("2012-03-04-23.json"));
        assert_eq!(
            std::fs::read_to_string(&plain[1]).unwrap(),
            format!("{}\n", events[1].line)
        );
    }

    #[test]
    fn names_become_github_logins_and_spaced_components_are_rejoined() {
        assert_eq!(github_login("Maxime Nay"), "Maxime-Nay");
        assert_eq!(github_login("james_pic"), "james-pic");
        assert_eq!(github_login("__x__"), "x");
        assert_eq!(github_login("ü"), "ghost");
        assert_eq!(github_login(&"a".repeat(50)).len(), 39);
        let mut issues = rows(&[RESOLVED, OPEN]);
        for (issue, components) in issues
            .iter_mut()
            .zip([vec!["system", "tests", "core"], vec!["system", "tests"]])
        {
            issue.components = components.into_iter().map(String::from).collect();
        }
        join_components(&mut issues);
        assert_eq!(issues[0].components, ["system tests", "core"]);
        assert_eq!(issues[1].components, ["system tests"]);
    }
}
