//! A GitHub event, parsed only as far as the pipeline needs.
//!
//! Parsing a whole event into a JSON tree costs several microseconds because payloads are large; routing and
//! counting read a handful of top-level fields. So an [`Event`] holds those fields, typed, plus the original
//! line untouched in [`Event::raw`]. Whoever needs more of the payload parses it from there.

use std::borrow::Cow;
use std::sync::Arc;

use serde::Deserialize;

use crate::time::parse_timestamp;

/// One GitHub timeline event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// GitHub's event id, unique across the timeline.
    pub id: String,
    /// GitHub's event type, such as `PushEvent`.
    pub kind: String,
    /// Login of the actor.
    pub actor: String,
    /// Full name of the repository, `owner/name`.
    pub repo: String,
    /// Login of the organisation, when the repository belongs to one.
    pub org: Option<String>,
    /// Main language of the repository, when the event carries it (pull request payloads do).
    pub language: Option<String>,
    /// Creation time in Unix seconds.
    pub created_at: i64,
    /// The event as received, one JSON object.
    pub raw: Arc<str>,
}

/// Why a line could not become an [`Event`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EventError {
    /// The line is not a JSON object of the expected shape.
    #[error("not a GitHub event: {0}")]
    Json(String),
    /// A required field is empty.
    #[error("field `{0}` is empty")]
    Empty(&'static str),
    /// `created_at` is not an RFC 3339 timestamp.
    #[error("field `created_at` is not a timestamp: {0:?}")]
    Timestamp(String),
}

#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow, deserialize_with = "id_text")]
    id: Cow<'a, str>,
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    actor: Login<'a>,
    #[serde(borrow)]
    repo: Name<'a>,
    #[serde(borrow, default)]
    org: Option<Login<'a>>,
    #[serde(borrow)]
    created_at: Cow<'a, str>,
    /// Of the payload, only the language of a pull request's base repository.
    #[serde(borrow, default)]
    payload: Option<PayloadLanguage<'a>>,
}

#[derive(Deserialize)]
struct Login<'a> {
    #[serde(borrow)]
    login: Cow<'a, str>,
}

#[derive(Deserialize)]
struct Name<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
}

/// Where a pull request payload names the base repository's language.
const LANGUAGE_PATH: &[&str] = &["pull_request", "base", "repo", "language"];

/// Of a payload, the language of a pull request's base repository, read while the line is parsed (the payload
/// is gone through once). A value of another shape anywhere along the path reads as no language, never as an
/// error: the event stays valid.
struct PayloadLanguage<'a>(Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for PayloadLanguage<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let seed = crate::json_path::At {
            path: LANGUAGE_PATH,
            leaf: crate::json_path::Text,
        };
        Ok(PayloadLanguage(serde::de::DeserializeSeed::deserialize(
            seed, d,
        )?))
    }
}

/// GH Archive writes ids as strings; some exports write numbers. Both are accepted.
fn id_text<'de: 'a, 'a, D: serde::Deserializer<'de>>(d: D) -> Result<Cow<'a, str>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id<'a> {
        #[serde(borrow)]
        Text(Cow<'a, str>),
        Number(u64),
    }
    Ok(match Id::deserialize(d)? {
        Id::Text(text) => text,
        Id::Number(n) => Cow::Owned(n.to_string()),
    })
}

/// The fields of an [`Event`] borrowed from its line: what counting reads, without copying the line or
/// allocating (text with JSON escapes is the exception: it is unescaped into its own string).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFields<'a> {
    /// GitHub's event id.
    pub id: Cow<'a, str>,
    /// GitHub's event type.
    pub kind: Cow<'a, str>,
    /// Login of the actor.
    pub actor: Cow<'a, str>,
    /// Full name of the repository.
    pub repo: Cow<'a, str>,
    /// Login of the organisation, when there is one.
    pub org: Option<Cow<'a, str>>,
    /// Main language of the repository, when the event carries it.
    pub language: Option<Cow<'a, str>>,
    /// Creation time in Unix seconds.
    pub created_at: i64,
}

impl<'a> EventFields<'a> {
    /// Parses one GH Archive line (or one event of the REST events API), borrowing from it.
    pub fn parse(line: &'a str) -> Result<EventFields<'a>, EventError> {
        let head: Head = serde_json::from_str(line).map_err(|e| EventError::Json(e.to_string()))?;
        for (name, value) in [
            ("id", &head.id),
            ("type", &head.kind),
            ("repo.name", &head.repo.name),
        ] {
            if value.is_empty() {
                return Err(EventError::Empty(name));
            }
        }
        let created_at = parse_timestamp(&head.created_at)
            .ok_or_else(|| EventError::Timestamp(head.created_at.to_string()))?;
        let language = match head.payload {
            Some(payload) if head.kind.starts_with("PullRequest") => {
                payload.0.filter(|l| !l.is_empty())
            }
            _ => None,
        };
        Ok(EventFields {
            id: head.id,
            kind: head.kind,
            actor: head.actor.login,
            repo: head.repo.name,
            org: head.org.map(|o| o.login).filter(|o| !o.is_empty()),
            language,
            created_at,
        })
    }

    /// Whether the actor is an automation account (`dependabot[bot]`, `renovate-bot`, …).
    pub fn is_bot(&self) -> bool {
        is_bot_login(&self.actor)
    }
}

impl Event {
    /// Parses one GH Archive line (or one event of the REST events API).
    pub fn parse(line: &str) -> Result<Event, EventError> {
        Self::parse_shared(Arc::from(line.trim_end()))
    }

    /// Parses a line that is already shared, without copying it.
    pub fn parse_shared(raw: Arc<str>) -> Result<Event, EventError> {
        let fields = EventFields::parse(&raw)?;
        Ok(Event {
            id: fields.id.into_owned(),
            kind: fields.kind.into_owned(),
            actor: fields.actor.into_owned(),
            repo: fields.repo.into_owned(),
            org: fields.org.map(Cow::into_owned),
            language: fields.language.map(Cow::into_owned),
            created_at: fields.created_at,
            raw,
        })
    }

    /// The fields, borrowed from this event.
    pub fn fields(&self) -> EventFields<'_> {
        EventFields {
            id: Cow::Borrowed(&self.id),
            kind: Cow::Borrowed(&self.kind),
            actor: Cow::Borrowed(&self.actor),
            repo: Cow::Borrowed(&self.repo),
            org: self.org.as_deref().map(Cow::Borrowed),
            language: self.language.as_deref().map(Cow::Borrowed),
            created_at: self.created_at,
        }
    }

    /// Whether the actor is an automation account (`dependabot[bot]`, `renovate-bot`, …).
    pub fn is_bot(&self) -> bool {
        is_bot_login(&self.actor)
    }
}

/// Whether a login belongs to an automation account by GitHub's naming conventions.
pub fn is_bot_login(login: &str) -> bool {
    login.ends_with("[bot]") || login.ends_with("-bot") || login.ends_with("_bot")
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUSH: &str = r#"{"id":"2489651045","type":"PushEvent","actor":{"id":1,"login":"octo\"cat"},"repo":{"id":2,"name":"o/r"},"payload":{"size":1},"public":true,"created_at":"2015-01-01T15:00:00Z"}"#;

    #[test]
    fn parses_the_fields_routing_needs_and_keeps_the_line() {
        let event = Event::parse(PUSH).unwrap();
        assert_eq!(event.id, "2489651045");
        assert_eq!(event.kind, "PushEvent");
        assert_eq!(event.actor, "octo\"cat");
        assert_eq!(event.repo, "o/r");
        assert_eq!(event.org, None);
        assert_eq!(event.created_at, 1_420_124_400);
        assert_eq!(&*event.raw, PUSH);
    }

    #[test]
    fn reads_the_language_of_pull_requests() {
        let line = r#"{"id":1,"type":"PullRequestEvent","actor":{"login":"a"},"repo":{"name":"o/r"},"org":{"login":"o"},"created_at":"2021-07-21T06:00:00Z","payload":{"pull_request":{"base":{"repo":{"language":"Rust"}}}}}"#;
        let event = Event::parse(line).unwrap();
        assert_eq!(event.id, "1");
        assert_eq!(event.language.as_deref(), Some("Rust"));
        assert_eq!(event.org.as_deref(), Some("o"));
    }

    #[test]
    fn names_what_is_wrong_with_a_bad_line() {
        assert!(matches!(Event::parse("{\"id\":"), Err(EventError::Json(_))));
        let no_time = PUSH.replace("2015-01-01T15:00:00Z", "soon");
        assert_eq!(
            Event::parse(&no_time),
            Err(EventError::Timestamp("soon".into()))
        );
        let no_type = PUSH.replace("PushEvent", "");
        assert_eq!(Event::parse(&no_type), Err(EventError::Empty("type")));
    }

    #[test]
    fn recognises_bots() {
        assert!(is_bot_login("dependabot[bot]"));
        assert!(is_bot_login("renovate-bot"));
        assert!(!is_bot_login("robotics"));
    }
}
