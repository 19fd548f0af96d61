//! The model registry: every trained version of each model, its figures and its artifact, and which version
//! serves. The embedded store and MongoDB implement it ([`Registry`]), tested by one conformance suite.

use std::collections::BTreeMap;
use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::store::StoreError;

/// The role of a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Alias {
    /// The version that serves; one per model.
    Champion,
    /// A candidate kept with its figures (trained, not promoted, or refused by the promotion rule).
    Challenger,
    /// A former champion.
    Retired,
}

impl Alias {
    /// As stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Alias::Champion => "champion",
            Alias::Challenger => "challenger",
            Alias::Retired => "retired",
        }
    }

    /// From its stored name.
    pub fn parse(text: &str) -> Option<Alias> {
        match text {
            "champion" => Some(Alias::Champion),
            "challenger" => Some(Alias::Challenger),
            "retired" => Some(Alias::Retired),
            _ => None,
        }
    }
}

/// A version to register: everything but its number, which the registry gives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewVersion {
    /// Model name, such as `sentiment`.
    pub name: String,
    /// Unix seconds.
    pub created: i64,
    /// The training data and window, in words (a file and its row count, a span of event time).
    pub training: String,
    /// The learner and its hyperparameters.
    pub params: serde_json::Value,
    /// Figures measured when it was trained (`macro_f1`, `auc`, …), with their protocol named in `training` or
    /// the model card.
    pub metrics: BTreeMap<String, f64>,
    /// SHA-256 of the artifact, hex.
    pub sha256: String,
    /// Bytes of the artifact.
    pub size: u64,
}

/// A registered version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelVersion {
    /// Version number, from 1, per model.
    pub version: u32,
    /// What was registered.
    #[serde(flatten)]
    pub meta: NewVersion,
    /// Its role, if any.
    pub alias: Option<Alias>,
}

/// Where trained versions live.
pub trait Registry: Send + Sync + 'static {
    /// Keeps a version and its artifact under the next number of its model; returns the number.
    fn register(
        &self,
        version: NewVersion,
        artifact: Vec<u8>,
    ) -> impl Future<Output = Result<u32, StoreError>> + Send;

    /// Every version of `name`, oldest first.
    fn versions(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Vec<ModelVersion>, StoreError>> + Send;

    /// The names of the models with at least one version.
    fn model_names(&self) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// The artifact of a version, if the version exists.
    fn artifact(
        &self,
        name: &str,
        version: u32,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;

    /// Gives a version a role. Making one the champion retires the champion before it, in one step; a version
    /// that does not exist is an error.
    fn set_alias(
        &self,
        name: &str,
        version: u32,
        alias: Alias,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Takes or renews the lease `name` (such as `train/sentiment`) for `holder` until `until` (Unix seconds);
    /// `false` while another holder's lease runs. A holder that dies loses it when it expires, so that any number
    /// of processes may run and one at a time does the leased work.
    fn lease(
        &self,
        name: &str,
        holder: &str,
        now: i64,
        until: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Gives the lease up, if `holder` has it.
    fn release(
        &self,
        name: &str,
        holder: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The champion among `versions`, if there is one.
pub fn champion(versions: &[ModelVersion]) -> Option<&ModelVersion> {
    versions.iter().find(|v| v.alias == Some(Alias::Champion))
}
