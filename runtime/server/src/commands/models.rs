//! `forgecast models [list | show NAME | promote NAME VERSION | export NAME VERSION --file F | import --file F]`:
//! the registry as an operator sees it; promoting an older version is how a model is rolled back, exporting and
//! importing how a version moves between registries (from a laptop's embedded store to MongoDB, say).
//!
//! An exported version is one JSON document ([`VersionFile`]): the format's name, the version's record as the
//! registry keeps it (name, number, training data, parameters, figures, artifact hash and size) and the artifact
//! in base64. Importing checks the hash and size, and that the artifact loads as its model, before registering it
//! under the next number of the target registry.

use std::path::Path;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use forgecast_core::registry::{Alias, ModelVersion, Registry, champion};
use forgecast_models::SentimentModel;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::backends::{Access, AnyStore, open_store};
use crate::cli::ModelsAction;
use crate::config::StoragePlan;

/// Opens the store that keeps the registry (alongside a running `up`).
pub(crate) async fn registry(storage: &StoragePlan) -> anyhow::Result<AnyStore> {
    match open_store(storage, Access::Reader, &CancellationToken::new()).await? {
        Some(store) => Ok(store),
        None => bail!("the store could not be reached"),
    }
}

/// The version `version` of `name`, or its champion, with the model loaded from its artifact.
pub(crate) async fn load(
    store: &AnyStore,
    name: &str,
    version: Option<u32>,
) -> anyhow::Result<(ModelVersion, SentimentModel)> {
    let versions = store.versions(name).await?;
    let chosen = match version {
        Some(n) => versions.iter().find(|v| v.version == n).with_context(|| {
            format!("{name} has no version {n}; `forgecast models show {name}` lists them")
        })?,
        None => champion(&versions).with_context(|| {
            format!("{name} has no champion yet; `forgecast train {name} --promote` trains one")
        })?,
    };
    let bytes = store
        .artifact(name, chosen.version)
        .await?
        .with_context(|| format!("{name} version {}: its artifact is missing", chosen.version))?;
    let model = SentimentModel::from_bytes(&bytes)
        .with_context(|| format!("{name} version {}", chosen.version))?;
    Ok((chosen.clone(), model))
}

/// Runs the action; prints what it found or did.
pub async fn run(action: ModelsAction, storage: StoragePlan) -> anyhow::Result<()> {
    let store = registry(&storage).await?;
    match action {
        ModelsAction::List => {
            let names = store.model_names().await?;
            if names.is_empty() {
                println!("No model registered yet; `forgecast train sentiment` trains one.");
            }
            for name in names {
                let versions = store.versions(&name).await?;
                match champion(&versions) {
                    Some(c) => println!(
                        "{name:<16} champion v{} {}  ({} versions)",
                        c.version,
                        figures(c),
                        versions.len()
                    ),
                    None => println!("{name:<16} no champion  ({} versions)", versions.len()),
                }
            }
        }
        ModelsAction::Show { name } => {
            let versions = store.versions(&name).await?;
            if versions.is_empty() {
                bail!("no model {name:?} is registered");
            }
            for v in &versions {
                println!(
                    "v{:<4} {:<10} {}  {}  {} bytes  sha256 {}",
                    v.version,
                    v.alias.map_or("-", Alias::as_str),
                    forgecast_core::time::format_timestamp(v.meta.created),
                    figures(v),
                    v.meta.size,
                    v.meta.sha256.get(..12).unwrap_or(&v.meta.sha256)
                );
                println!("       trained on {}", v.meta.training);
            }
        }
        ModelsAction::Promote { name, version } => {
            store.set_alias(&name, version, Alias::Champion).await?;
            println!("{name} version {version} is the champion now.");
        }
        ModelsAction::Export {
            name,
            version,
            file,
        } => export(&store, &name, version, &file).await?,
        ModelsAction::Import { file, promote } => import(&store, &file, promote).await?,
    }
    Ok(())
}

/// The format name an exported version carries.
pub const VERSION_FILE_FORMAT: &str = "forgecast-model-version/1";

/// A version in a file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionFile {
    /// [`VERSION_FILE_FORMAT`].
    pub format: String,
    /// The version as its registry kept it (its role is not carried over).
    pub version: ModelVersion,
    /// The artifact, base64.
    pub artifact: String,
}

async fn export(store: &AnyStore, name: &str, version: u32, file: &Path) -> anyhow::Result<()> {
    let versions = store.versions(name).await?;
    let found = versions
        .into_iter()
        .find(|v| v.version == version)
        .with_context(|| {
            format!("{name} has no version {version}; `forgecast models show {name}` lists them")
        })?;
    let artifact = store
        .artifact(name, version)
        .await?
        .with_context(|| format!("{name} version {version}: its artifact is missing"))?;
    let exported = VersionFile {
        format: VERSION_FILE_FORMAT.into(),
        version: ModelVersion {
            alias: None,
            ..found
        },
        artifact: STANDARD.encode(&artifact),
    };
    let text = serde_json::to_vec_pretty(&exported)?;
    // Written beside the target and renamed, so a failed export never leaves half a file under its name.
    let partial = file.with_extension("partial");
    std::fs::write(&partial, &text)
        .with_context(|| format!("cannot write {}", partial.display()))?;
    std::fs::rename(&partial, file).with_context(|| format!("cannot write {}", file.display()))?;
    println!(
        "Exported {name} version {version} ({} artifact bytes, sha256 {}) to {}.",
        artifact.len(),
        exported.version.meta.sha256.get(..12).unwrap_or_default(),
        file.display()
    );
    Ok(())
}

/// Reads and checks a version file: its format, the artifact's hash and size, and that it loads as its model.
pub fn read_version_file(file: &Path) -> anyhow::Result<(ModelVersion, Vec<u8>)> {
    let text = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let exported: VersionFile = serde_json::from_slice(&text).with_context(|| {
        format!(
            "{} is not a model version file (`forgecast models export` writes them)",
            file.display()
        )
    })?;
    if exported.format != VERSION_FILE_FORMAT {
        bail!(
            "{}: format {:?}, this forgecast reads {VERSION_FILE_FORMAT:?}",
            file.display(),
            exported.format
        );
    }
    let artifact = STANDARD
        .decode(exported.artifact.as_bytes())
        .with_context(|| format!("{}: the artifact is not base64", file.display()))?;
    let meta = &exported.version.meta;
    let sha256 = format!("{:x}", Sha256::digest(&artifact));
    if sha256 != meta.sha256 || artifact.len() as u64 != meta.size {
        bail!(
            "{}: the artifact does not match its record (sha256 {} and {} bytes, the record says {} and {}); the file is damaged",
            file.display(),
            &sha256[..12],
            artifact.len(),
            meta.sha256.get(..12).unwrap_or(&meta.sha256),
            meta.size
        );
    }
    match meta.name.as_str() {
        "sentiment" => {
            SentimentModel::from_bytes(&artifact)
                .with_context(|| format!("{}: the artifact", file.display()))?;
        }
        other => bail!(
            "{}: a model {other:?}, which this forgecast cannot serve",
            file.display()
        ),
    }
    Ok((exported.version, artifact))
}

async fn import(store: &AnyStore, file: &Path, promote: bool) -> anyhow::Result<()> {
    let (version, artifact) = read_version_file(file)?;
    let name = version.meta.name.clone();
    let mut meta = version.meta;
    meta.training = format!(
        "{} (imported from {}, where it was version {})",
        meta.training,
        file.display(),
        version.version
    );
    let number = store.register(meta, artifact).await?;
    let alias = if promote {
        Alias::Champion
    } else {
        Alias::Challenger
    };
    store.set_alias(&name, number, alias).await?;
    println!(
        "Imported {} as {name} version {number} ({}).",
        file.display(),
        alias.as_str()
    );
    Ok(())
}

/// A version's figures on one line.
fn figures(v: &ModelVersion) -> String {
    v.meta
        .metrics
        .iter()
        .filter(|(k, _)| !k.starts_with("baseline"))
        .map(|(k, x)| format!("{k} {x:.3}"))
        .collect::<Vec<_>>()
        .join(", ")
}
