//! `meterd run`: the daemon. It owns the store and runs one task per configured source (cradles,
//! MQTT gateways, meter buses, the billing API), until the shutdown future resolves.
//!
//! Shape (after mini-redis): [`run`] takes the shutdown signal as a future, so tests start the
//! same daemon in-process and stop it by resolving that future. Every component gets a
//! [`Context`] and a [`CancellationToken`]; on shutdown the token is cancelled and the daemon waits
//! for every component to return (a cradle session finishes or aborts cleanly: no recorder is
//! cleared without a commit).

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::store::RedbStore;

/// What every daemon component shares.
#[derive(Clone)]
pub struct Context {
    /// The configuration the daemon started with.
    pub config: Arc<Config>,
    /// Where the store lives.
    pub data_dir: PathBuf,
    /// The one open store (redb allows one process; every component writes through it).
    pub store: Arc<RedbStore>,
}

/// A running part of the daemon: returns when its token is cancelled (or on a fatal error).
pub type Component = std::pin::Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

/// Builds the components the configuration asks for. Each source adds itself here.
fn components(ctx: &Context, token: &CancellationToken) -> Vec<(&'static str, Component)> {
    let mut components: Vec<(&'static str, Component)> = Vec::new();
    if let Some(http) = &ctx.config.http {
        let store: Arc<dyn crate::store::Store> = ctx.store.clone();
        components.push(("billing-api", Box::pin(crate::billing::http::run(store, http.clone(), token.clone()))));
    }
    components
}

/// Runs the daemon until `shutdown` resolves, then stops every component and returns.
pub async fn run(config: Config, data_dir: PathBuf, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let store = {
        let dir = data_dir.clone();
        tokio::task::spawn_blocking(move || RedbStore::open_dir(&dir))
            .await?
            .with_context(|| format!("cannot open the store in {}", data_dir.display()))?
    };
    let ctx = Context { config: Arc::new(config), data_dir, store: Arc::new(store) };
    run_with(ctx, shutdown).await
}

/// Runs the daemon's components over an already open store.
pub async fn run_with(ctx: Context, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let token = CancellationToken::new();
    let mut tasks = JoinSet::new();
    for (name, component) in components(&ctx, &token) {
        tracing::info!(component = name, "starting");
        tasks.spawn(async move { (name, component.await) });
    }
    tracing::info!(data_dir = %ctx.data_dir.display(), "meterd running");
    tokio::pin!(shutdown);
    let mut failure = None;
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            joined = tasks.join_next(), if !tasks.is_empty() => match joined {
                Some(Ok((name, Ok(())))) => tracing::info!(component = name, "stopped"),
                Some(Ok((name, Err(e)))) => {
                    tracing::error!(component = name, error = %format!("{e:#}"), "failed; stopping the daemon");
                    failure = Some(e.context(format!("component {name} failed")));
                    break;
                }
                Some(Err(e)) => {
                    failure = Some(anyhow::anyhow!("a component panicked: {e}"));
                    break;
                }
                None => {}
            },
        }
    }
    tracing::info!("shutting down");
    token.cancel();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((name, Ok(()))) => tracing::info!(component = name, "stopped"),
            Ok((name, Err(e))) => tracing::warn!(component = name, error = %format!("{e:#}"), "stopped with an error"),
            Err(e) => tracing::warn!(error = %e, "a component panicked during shutdown"),
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn termination_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
    }
}
