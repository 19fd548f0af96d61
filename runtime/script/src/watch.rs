//! Drives [`ScriptHost::rescan`] from file-system notifications and a polling timer.
//!
//! Notifications (inotify on Linux) make edits live quickly; they are debounced so that an editor's
//! write-then-rename or a ConfigMap's symlink swap is read once, complete. Polling runs as well, always: it
//! covers file systems that deliver no notifications (network mounts, some container volumes) and any event a
//! watcher drops. Rescans are cheap when nothing changed: the files are hashed and compared.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::host::ScriptHost;

/// How the watcher behaves.
#[derive(Debug, Clone, Copy)]
pub struct WatchConfig {
    /// Quiet time after the last notification before rescanning.
    pub debounce: Duration,
    /// Rescan at least this often, notifications or not.
    pub poll: Duration,
    /// Use file-system notifications; off means polling only.
    pub notifications: bool,
}

impl Default for WatchConfig {
    fn default() -> Self {
        WatchConfig {
            debounce: Duration::from_millis(150),
            poll: Duration::from_secs(1),
            notifications: true,
        }
    }
}

fn notifications(dir: &Path) -> Option<(RecommendedWatcher, mpsc::UnboundedReceiver<()>)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if res.is_ok() {
            let _ = tx.send(());
        }
    });
    let mut watcher = match watcher {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(component = "scripts", error = %e, "No file notifications; polling only.");
            return None;
        }
    };
    if let Err(e) = watcher.watch(dir, RecursiveMode::Recursive) {
        tracing::warn!(component = "scripts", dir = %dir.display(), error = %e, "Cannot watch the scripts directory; polling only.");
        return None;
    }
    Some((watcher, rx))
}

async fn rescan(host: &Arc<ScriptHost>) {
    let host = host.clone();
    if let Err(e) = tokio::task::spawn_blocking(move || host.rescan()).await {
        tracing::error!(component = "scripts", error = %e, "Script rescan panicked; the live scripts are unchanged.");
    }
}

/// Watches the host's directory until `shutdown`, rescanning on changes and every `config.poll`.
pub async fn watch(host: Arc<ScriptHost>, config: WatchConfig, shutdown: CancellationToken) {
    let watcher = if config.notifications {
        notifications(host.dir())
    } else {
        None
    };
    let (_watcher, mut changes) = match watcher {
        Some((w, rx)) => (Some(w), rx),
        None => (None, mpsc::unbounded_channel().1),
    };
    let mut poll = tokio::time::interval(config.poll);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    poll.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = poll.tick() => rescan(&host).await,
            Some(()) = changes.recv() => {
                // Debounce: wait until no notification arrived for `config.debounce`.
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(config.debounce) => break,
                        more = changes.recv() => if more.is_none() { break },
                    }
                }
                rescan(&host).await;
                poll.reset();
            }
        }
    }
}
