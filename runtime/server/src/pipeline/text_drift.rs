//! Drift of the sentiment model, which has no live labels: how far the texts it scores and the labels it gives
//! move from what its version scored first.
//!
//! The model stage hands each scored text to a [`TextDrift`]. Every [`TEXT_WINDOW`] texts make a window; the
//! serving version's first window is its reference, kept in the store (so that a restart measures against the
//! same reference), and each window's figures go to the store's `drift`, as the issue-outcome model's do:
//! PSI and KS of the text's length in characters and in words, PSI of the kind of event the text came from and
//! of the repository's language, and PSI of the predicted labels' shares. A text redelivered after a crash is
//! counted again (the figures describe what was scored, not each text once); the texts of a window not complete
//! when the process stops are not counted.

use forgecast_core::outcomes::{Drift, DriftReference, FeatureDrift, OutcomeStore};
use forgecast_core::store::StoreError;
use forgecast_models::drift::{CategoryBins, NumericBins, ks_statistic};
use serde::{Deserialize, Serialize};

use crate::backends::AnyStore;

/// Texts per drift window.
pub const TEXT_WINDOW: usize = 200;

/// What is measured of one scored text.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Event time, Unix seconds.
    pub at: i64,
    /// Characters of the text the model read.
    pub chars: f64,
    /// Its words.
    pub words: f64,
    /// The event type it came from.
    pub kind: String,
    /// The repository's language, `unknown` when not known.
    pub language: String,
    /// The predicted label.
    pub label: String,
}

impl Sample {
    /// The sample of a text scored with `label`.
    pub fn of(text: &str, at: i64, kind: &str, language: Option<&str>, label: &str) -> Sample {
        Sample {
            at,
            chars: text.chars().count() as f64,
            words: text.split_whitespace().count() as f64,
            kind: kind.to_string(),
            language: language.unwrap_or("unknown").to_string(),
            label: label.to_string(),
        }
    }
}

/// The reference and the window being filled, for one version.
#[derive(Serialize, Deserialize)]
struct Kept {
    reference: Vec<Sample>,
    /// Windows completed with this reference (the reference is the first).
    windows: u64,
}

/// The drift monitor of one model.
pub struct TextDrift {
    model: String,
    version: Option<u32>,
    kept: Option<Kept>,
    current: Vec<Sample>,
}

impl TextDrift {
    /// A monitor of `model`, with nothing read yet.
    pub fn new(model: &str) -> TextDrift {
        TextDrift {
            model: model.to_string(),
            version: None,
            kept: None,
            current: Vec::new(),
        }
    }

    fn key(&self, version: u32) -> String {
        format!("{}/v{version}/drift-reference", self.model)
    }

    /// Adds the texts `version` scored; records each window completed. A change of version starts over from
    /// that version's reference (kept, or its first window).
    pub async fn add(
        &mut self,
        store: &AnyStore,
        version: u32,
        samples: Vec<Sample>,
    ) -> Result<(), StoreError> {
        if self.version != Some(version) {
            self.kept = match store.learner(&self.key(version)).await? {
                Some((bytes, _)) => serde_json::from_slice(&bytes).ok(),
                None => None,
            };
            self.version = Some(version);
            self.current.clear();
        }
        for sample in samples {
            self.current.push(sample);
            if self.current.len() == TEXT_WINDOW {
                let window = std::mem::take(&mut self.current);
                self.complete(store, version, window).await?;
            }
        }
        Ok(())
    }

    async fn complete(
        &mut self,
        store: &AnyStore,
        version: u32,
        window: Vec<Sample>,
    ) -> Result<(), StoreError> {
        let key = self.key(version);
        let kept = self.kept.get_or_insert_with(|| Kept {
            reference: window.clone(),
            windows: 0,
        });
        let number = kept.windows;
        let drift = measure(&self.model, version, number, &kept.reference, &window);
        store.record_drift(drift).await?;
        kept.windows += 1;
        let bytes = serde_json::to_vec(&*kept).expect("samples always serialise");
        store.put_learner(&key, bytes, kept.windows).await
    }
}

/// The figures of `window` against `reference`; the window's number is its first text's, counting from 1.
fn measure(
    model: &str,
    version: u32,
    number: u64,
    reference: &[Sample],
    window: &[Sample],
) -> Drift {
    let numeric = |name: &str, value: fn(&Sample) -> f64| {
        let (before, now): (Vec<f64>, Vec<f64>) = (
            reference.iter().map(value).collect(),
            window.iter().map(value).collect(),
        );
        FeatureDrift {
            feature: name.to_string(),
            kind: "numeric".into(),
            psi: NumericBins::from_reference(&before, 10).psi(&now),
            ks: Some(ks_statistic(&before, &now)),
        }
    };
    let categorical = |name: &str, value: fn(&Sample) -> &str| {
        let before: Vec<&str> = reference.iter().map(value).collect();
        let now: Vec<&str> = window.iter().map(value).collect();
        FeatureDrift {
            feature: name.to_string(),
            kind: "categorical".into(),
            psi: CategoryBins::from_reference(&before).psi(&now),
            ks: None,
        }
    };
    let mut features = vec![
        numeric("text_chars", |s| s.chars),
        numeric("text_words", |s| s.words),
        categorical("event_type", |s| &s.kind),
        categorical("language", |s| &s.language),
    ];
    features.sort_by(|a, b| b.psi.total_cmp(&a.psi));
    let span = |samples: &[Sample]| {
        (
            samples.iter().map(|s| s.at).min().unwrap_or(0),
            samples.iter().map(|s| s.at).max().unwrap_or(0),
        )
    };
    let ((from, to), (ref_from, ref_to)) = (span(window), span(reference));
    Drift {
        model: model.to_string(),
        version,
        window: number * TEXT_WINDOW as u64 + 1,
        from,
        to,
        count: window.len() as u64,
        reference: DriftReference {
            from: ref_from,
            to: ref_to,
            count: reference.len() as u64,
        },
        features,
        prediction: categorical("label", |s| &s.label),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(n: usize, negative_every: usize, long: bool) -> Vec<Sample> {
        (0..n)
            .map(|i| {
                let label = if i % negative_every == 0 {
                    "negative"
                } else {
                    "neutral"
                };
                let text = if long {
                    "this does not work at all and it crashes every time".repeat(1 + i % 3)
                } else {
                    "thanks".repeat(1 + i % 3)
                };
                Sample::of(&text, i as i64, "IssueCommentEvent", Some("Rust"), label)
            })
            .collect()
    }

    #[test]
    fn a_window_like_its_reference_does_not_drift_and_a_changed_one_does() {
        let reference = samples(200, 10, false);
        let same = measure("sentiment", 1, 1, &reference, &samples(200, 10, false));
        assert!(same.features.iter().all(|f| f.psi < 0.01), "{same:?}");
        assert!(same.prediction.psi < 0.01);
        let changed = measure("sentiment", 1, 2, &reference, &samples(200, 2, true));
        assert_eq!(changed.window, 401);
        let by_name = |name: &str| changed.features.iter().find(|f| f.feature == name).unwrap();
        assert!(by_name("text_chars").psi > 0.25);
        assert!(by_name("text_chars").ks.unwrap() > 0.9);
        assert!(by_name("language").psi < 0.01);
        assert!(changed.prediction.psi > 0.25, "{:?}", changed.prediction);
        assert!(changed.features.windows(2).all(|w| w[0].psi >= w[1].psi));
    }
}
