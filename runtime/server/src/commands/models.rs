//! `forgecast models [list | show NAME | promote NAME VERSION]`: the registry as an operator sees it; promoting
//! an older version is how a model is rolled back.

use anyhow::{Context, bail};
use forgecast_core::registry::{Alias, ModelVersion, Registry, champion};
use forgecast_models::SentimentModel;
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
    }
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
