//! How a command is told to stop: in two steps, as operators expect of a service. The first Ctrl-C (or the
//! SIGTERM of `docker stop` and Kubernetes) asks it to finish what it took in; a second one to stop waiting.

use tokio_util::sync::CancellationToken;

/// The two steps of a stop, passed to every command's `run`.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    /// Finish what was taken in, then stop.
    pub closing: CancellationToken,
    /// Stop waiting (on a failing backend, on a run in progress).
    pub abort: CancellationToken,
}

impl Shutdown {
    /// A shutdown only the caller triggers (tests, commands run from other commands).
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// A shutdown driven by the process's signals: the first logs `saying` for `component` and closes, the
    /// second aborts.
    pub fn on_signals(component: &'static str, saying: &'static str) -> Shutdown {
        let shutdown = Shutdown::new();
        let (closing, abort) = (shutdown.closing.clone(), shutdown.abort.clone());
        tokio::spawn(async move {
            if signal().await {
                tracing::info!(component, "{saying}");
                closing.cancel();
            }
            if signal().await {
                tracing::warn!(component, "Forced stop.");
                abort.cancel();
            }
        });
        shutdown
    }
}

/// Ctrl-C, or SIGTERM; `false` if no signal can be awaited.
async fn signal() -> bool {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => return tokio::signal::ctrl_c().await.is_ok(),
    };
    tokio::select! {
        interrupted = tokio::signal::ctrl_c() => interrupted.is_ok(),
        _ = term.recv() => true,
    }
}
