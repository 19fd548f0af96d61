//! The replay source: real GH Archive events bundled with the binary, played back as if happening now.
//!
//! The bundled samples (2015, 2021 and 2025; see `data/gharchive-samples/SOURCE.md`) are laid end to end on
//! one timeline, keeping each file's own spacing between events but shortening quiet stretches to
//! [`MAX_GAP_SECS`], so the sparse 2021 sample does not idle. A round plays the timeline at `speed` times real
//! time, with every `created_at` rewritten to the moment the event is emitted; the next round starts where
//! the last one ended, with event ids offset by [`ROUND_ID_STRIDE`] per round so that they stay unique.
//! At speed 0 events are emitted as fast as the pipeline takes them, with timestamps following the timeline.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use flate2::read::GzDecoder;
use forgecast_core::Event;
use forgecast_core::source::Incoming;
use forgecast_core::time::{format_timestamp, now_unix};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Longest pause between two consecutive replayed events, in timeline seconds.
pub const MAX_GAP_SECS: i64 = 1;

/// Added to the numeric event id per round: larger than any GitHub event id so far (about 5·10¹⁰).
pub const ROUND_ID_STRIDE: u64 = 1_000_000_000_000;

/// The bundled sample files, name and content.
pub const SAMPLES: [(&str, &[u8]); 3] = [
    (
        "2015-01-01-15.sample.json",
        include_bytes!("../../../data/gharchive-samples/2015-01-01-15.sample.json"),
    ),
    (
        "2021-07-21-few-hours.json",
        include_bytes!("../../../data/gharchive-samples/2021-07-21-few-hours.json"),
    ),
    (
        "2025-01-01-15.sample.json.gz",
        include_bytes!("../../../data/gharchive-samples/2025-01-01-15.sample.json.gz"),
    ),
];

/// The text of a bundled sample, decompressed.
pub fn sample_text(name: &str, bytes: &[u8]) -> std::io::Result<String> {
    let mut text = String::new();
    if name.ends_with(".gz") {
        GzDecoder::new(bytes).read_to_string(&mut text)?;
    } else {
        text = String::from_utf8_lossy(bytes).into_owned();
    }
    Ok(text)
}

/// Every line of the bundled samples, in file order.
pub fn sample_lines() -> Vec<String> {
    SAMPLES
        .iter()
        .flat_map(|(name, bytes)| {
            sample_text(name, bytes)
                .expect("the bundled samples decompress")
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// How the replay runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplayConfig {
    /// Multiple of real time; 0 plays as fast as possible.
    pub speed: f64,
    /// Stop after one round.
    pub once: bool,
    /// Stop after this many events in all.
    pub limit: Option<u64>,
    /// Most events handed over at once.
    pub batch: usize,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        ReplayConfig {
            speed: 1.0,
            once: false,
            limit: None,
            batch: 512,
        }
    }
}

enum Piece {
    Text(String),
    Id,
    Time,
}

/// One event of the timeline, ready to be stamped with a round's id and time.
struct Template {
    event: Event,
    numeric_id: Option<u64>,
    offset: i64,
    pieces: Vec<Piece>,
}

const ID_MARK: &str = "@@forgecast-replay-id@@";
const TIME_MARK: &str = "@@forgecast-replay-time@@";

impl Template {
    fn new(line: &str, offset: i64) -> Option<Template> {
        let event = Event::parse(line).ok()?;
        let mut tree: Value = serde_json::from_str(line).ok()?;
        tree["id"] = Value::from(ID_MARK);
        tree["created_at"] = Value::from(TIME_MARK);
        let text = tree.to_string();
        let mut pieces = Vec::new();
        let mut rest = text.as_str();
        while let Some(at) = [ID_MARK, TIME_MARK]
            .iter()
            .filter_map(|m| rest.find(m).map(|i| (i, *m)))
            .min()
        {
            pieces.push(Piece::Text(rest[..at.0].to_string()));
            pieces.push(if at.1 == ID_MARK {
                Piece::Id
            } else {
                Piece::Time
            });
            rest = &rest[at.0 + at.1.len()..];
        }
        pieces.push(Piece::Text(rest.to_string()));
        Some(Template {
            numeric_id: event.id.parse().ok(),
            event,
            offset,
            pieces,
        })
    }

    fn stamp(&self, round: u64, created_at: i64) -> Event {
        let id = match (round, self.numeric_id) {
            (0, _) => self.event.id.clone(),
            (r, Some(n)) => (n + r * ROUND_ID_STRIDE).to_string(),
            (r, None) => format!("{}-{r}", self.event.id),
        };
        let time = format_timestamp(created_at);
        let mut raw = String::with_capacity(self.event.raw.len() + 8);
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => raw.push_str(t),
                Piece::Id => raw.push_str(&id),
                Piece::Time => raw.push_str(&time),
            }
        }
        Event {
            id,
            created_at,
            raw: Arc::from(raw),
            ..self.event.clone()
        }
    }
}

/// The replay source.
pub struct Replay {
    timeline: Vec<Template>,
    span: i64,
    config: ReplayConfig,
}

/// What a replay did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Events emitted.
    pub events: u64,
    /// Rounds started.
    pub rounds: u64,
}

impl Replay {
    /// Builds the timeline from the bundled samples.
    pub fn bundled(config: ReplayConfig) -> std::io::Result<Replay> {
        let mut texts = Vec::new();
        for (name, bytes) in SAMPLES {
            texts.push(sample_text(name, bytes)?);
        }
        Ok(Replay::from_texts(texts.iter().map(String::as_str), config))
    }

    /// Builds the timeline from GH Archive texts, one file after the other.
    pub fn from_texts<'a>(
        texts: impl IntoIterator<Item = &'a str>,
        config: ReplayConfig,
    ) -> Replay {
        let mut timeline = Vec::new();
        let mut clock = 0;
        for text in texts {
            let mut file: Vec<(i64, &str)> = text
                .lines()
                .filter_map(|line| Event::parse(line).ok().map(|e| (e.created_at, line)))
                .collect();
            file.sort_by_key(|(t, _)| *t);
            let mut previous = file.first().map(|(t, _)| *t).unwrap_or(0);
            for (t, line) in file {
                clock += (t - previous).min(MAX_GAP_SECS);
                previous = t;
                timeline.extend(Template::new(line, clock));
            }
            clock += MAX_GAP_SECS;
        }
        Replay {
            timeline,
            span: clock,
            config,
        }
    }

    /// Events per round.
    pub fn len(&self) -> usize {
        self.timeline.len()
    }

    /// Whether the timeline is empty.
    pub fn is_empty(&self) -> bool {
        self.timeline.is_empty()
    }

    /// Plays rounds into `out` until done or `shutdown`.
    pub async fn run(
        self,
        out: mpsc::Sender<Vec<Incoming>>,
        shutdown: CancellationToken,
    ) -> ReplayReport {
        let mut report = ReplayReport::default();
        if self.timeline.is_empty() {
            return report;
        }
        let speed = self.config.speed;
        let mut round_time = now_unix();
        let mut batch = Vec::with_capacity(self.config.batch);
        'rounds: loop {
            report.rounds += 1;
            let round = report.rounds - 1;
            let round_start = Instant::now();
            for template in &self.timeline {
                if self
                    .config
                    .limit
                    .is_some_and(|limit| report.events >= limit)
                {
                    break 'rounds;
                }
                let created_at = if speed > 0.0 {
                    let due = round_start + Duration::from_secs_f64(template.offset as f64 / speed);
                    if due > Instant::now() && !batch.is_empty() && !send(&out, &mut batch).await {
                        break 'rounds;
                    }
                    tokio::select! {
                        _ = shutdown.cancelled() => break 'rounds,
                        _ = tokio::time::sleep_until(due) => {}
                    }
                    round_time + (template.offset as f64 / speed) as i64
                } else {
                    round_time + template.offset
                };
                batch.push(Incoming::Event(Arc::new(template.stamp(round, created_at))));
                report.events += 1;
                if batch.len() >= self.config.batch && !send(&out, &mut batch).await {
                    break 'rounds;
                }
                if shutdown.is_cancelled() {
                    break 'rounds;
                }
            }
            if self.config.once {
                break;
            }
            round_time += if speed > 0.0 {
                (self.span as f64 / speed).ceil() as i64
            } else {
                self.span
            };
        }
        if !batch.is_empty() {
            send(&out, &mut batch).await;
        }
        report
    }
}

async fn send(out: &mpsc::Sender<Vec<Incoming>>, batch: &mut Vec<Incoming>) -> bool {
    out.send(std::mem::take(batch)).await.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_timeline_holds_every_sample_event() {
        let replay = Replay::bundled(ReplayConfig::default()).unwrap();
        assert_eq!(replay.len(), 1024 + 800 + 2048);
    }

    #[test]
    fn a_stamped_event_has_the_new_id_and_time_and_is_otherwise_unchanged() {
        let line = r#"{"id":"2489651045","type":"PushEvent","actor":{"login":"a"},"repo":{"name":"o/r"},"payload":{"created_at":"keep"},"created_at":"2015-01-01T15:00:00Z"}"#;
        let template = Template::new(line, 0).unwrap();
        let event = template.stamp(2, 1_700_000_000);
        assert_eq!(event.id, "2002489651045");
        let reparsed = Event::parse(&event.raw).unwrap();
        assert_eq!(reparsed.id, event.id);
        assert_eq!(reparsed.created_at, 1_700_000_000);
        let tree: Value = serde_json::from_str(&event.raw).unwrap();
        assert_eq!(tree["payload"]["created_at"], "keep");
    }

    #[tokio::test]
    async fn rounds_keep_ids_unique_and_time_moving_forward() {
        let texts = [
            r#"{"id":"1","type":"PushEvent","actor":{"login":"a"},"repo":{"name":"o/r"},"created_at":"2015-01-01T15:00:00Z"}"#,
        ];
        let config = ReplayConfig {
            speed: 0.0,
            once: false,
            limit: Some(3),
            batch: 1,
        };
        let replay = Replay::from_texts(texts, config);
        let (tx, mut rx) = mpsc::channel(10);
        let report = replay.run(tx, CancellationToken::new()).await;
        assert_eq!(report.events, 3);
        let mut seen = Vec::new();
        while let Some(batch) = rx.recv().await {
            for item in batch {
                let Incoming::Event(e) = item else {
                    panic!("malformed")
                };
                seen.push((e.id.clone(), e.created_at));
            }
        }
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[0].0, "1");
        assert_eq!(seen[1].0, "1000000000001");
        assert!(seen[1].1 > seen[0].1 && seen[2].1 > seen[1].1);
    }
}
