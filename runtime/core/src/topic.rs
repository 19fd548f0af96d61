//! Topics and the records that travel on them.
//!
//! Topic names are the same in every mode: the embedded bus and Kafka both carry `gh.raw.<type>`-style topics
//! chosen by the routing script, plus [`DEAD_LETTER`] for whatever a stage could not handle.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::event::Event;

/// Where records go that a stage could not handle.
pub const DEAD_LETTER: &str = "gh.dlq";

/// The prefix of every topic the pipeline's processors consume.
pub const PIPELINE_PREFIX: &str = "gh.";

/// Longest topic name Kafka accepts.
const MAX_TOPIC_LEN: usize = 249;

/// Checks a topic name against the rules Kafka applies, so that a name accepted in embedded mode also works
/// on a real broker.
pub fn validate_topic(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("topic name is empty".into());
    }
    if name.len() > MAX_TOPIC_LEN {
        return Err(format!(
            "topic name is longer than {MAX_TOPIC_LEN} characters"
        ));
    }
    if name == "." || name == ".." {
        return Err(format!("topic name {name:?} is reserved"));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "topic name {name:?} contains {bad:?}; use letters, digits, '.', '_' or '-'"
        ));
    }
    Ok(())
}

/// One message on one topic.
#[derive(Debug, Clone)]
pub struct Record {
    /// The topic it was published to.
    pub topic: Arc<str>,
    /// Partition key: records with the same key keep their order.
    pub key: Option<Arc<str>>,
    /// What it carries.
    pub body: RecordBody,
}

/// What a [`Record`] carries.
#[derive(Debug, Clone)]
pub enum RecordBody {
    /// A GitHub event.
    Event(Arc<Event>),
    /// Something a stage could not handle, with the reason.
    DeadLetter(Arc<DeadLetter>),
}

/// Input that a stage could not handle, kept whole with the reason so nothing is lost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The stage that refused it: `parse`, `route`, …
    pub stage: String,
    /// Why, in one sentence.
    pub error: String,
    /// The script that failed on it, if a script did.
    pub script: Option<String>,
    /// The content hash of that script's version.
    pub version: Option<String>,
    /// Where the input came from, such as `2015-01-01-15.json.gz:17`.
    pub origin: Option<String>,
    /// The input as received.
    pub raw: String,
}

impl DeadLetter {
    /// The letter's identity, a SHA-256 of every field: the same letter delivered twice is stored once.
    pub fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut hash = Sha256::new();
        for part in [
            self.stage.as_str(),
            &self.error,
            self.script.as_deref().unwrap_or(""),
            self.version.as_deref().unwrap_or(""),
            self.origin.as_deref().unwrap_or(""),
            &self.raw,
        ] {
            hash.update((part.len() as u64).to_le_bytes());
            hash.update(part.as_bytes());
        }
        format!("{:x}", hash.finalize())
    }
}

impl Record {
    /// A record carrying an event.
    pub fn event(topic: Arc<str>, key: Option<Arc<str>>, event: Arc<Event>) -> Record {
        Record {
            topic,
            key,
            body: RecordBody::Event(event),
        }
    }

    /// A record for the dead-letter topic.
    pub fn dead_letter(letter: DeadLetter) -> Record {
        Record {
            topic: Arc::from(DEAD_LETTER),
            key: None,
            body: RecordBody::DeadLetter(Arc::new(letter)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_kafka_topic_names_only() {
        assert!(validate_topic("gh.raw.push").is_ok());
        assert!(validate_topic("gh_bots-2").is_ok());
        assert!(validate_topic("").is_err());
        assert!(validate_topic("..").is_err());
        assert!(validate_topic("gh raw").unwrap_err().contains("' '"));
        assert!(validate_topic(&"x".repeat(250)).is_err());
    }

    #[test]
    fn a_dead_letter_has_one_id_whatever_the_delivery() {
        let letter = DeadLetter {
            stage: "route".into(),
            error: "boom".into(),
            script: None,
            version: None,
            origin: Some("a.json:1".into()),
            raw: "{".into(),
        };
        assert_eq!(letter.digest(), letter.clone().digest());
        let other = DeadLetter {
            origin: Some("a.json:2".into()),
            ..letter.clone()
        };
        assert_ne!(letter.digest(), other.digest());
    }
}
