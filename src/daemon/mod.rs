//! `meterd run`: the daemon. It owns the store and runs one task per configured source (cradles,
//! MQTT gateways, meter buses, the billing API), until SIGTERM.
//!
//! Shape (after mini-redis): [`run_service`] is what `meterd run` calls: it turns the process's
//! signals into [`Signal`]s for [`serve`], which opens the store and runs until a shutdown
//! arrives. The daemon's unit tests send those signals themselves; the integration tests start
//! the same components in-process over a store they opened with [`run_with`], which stops when
//! a future resolves. [`components`] hands each component what it uses, as
//! `billing::http::run` takes it: the store, the VEE rules, its own section and a
//! [`CancellationToken`] (nothing below `daemon` imports it); on shutdown the token is cancelled and the daemon
//! waits for every component to return (a cradle session finishes or aborts cleanly: no
//! recorder is cleared without a commit).
//!
//! # Life cycle under systemd (`systemd/meterd.service`, `Type=notify`)
//! 1. Open the store, bind the control socket ([`control`]), start the components, then send
//!    `READY=1` ([`notify`]).
//! 2. Every half `$WATCHDOG_USEC`, check that the store answers and the main loop turns, then
//!    send `WATCHDOG=1`; a hung daemon is restarted by systemd.
//! 3. SIGHUP: `RELOADING=1`, re-read and validate the file (and the wM-Bus key file, which is
//!    re-read even when the configuration did not change). Invalid: the error (with its line) is
//!    logged and the running configuration stays. Valid: the components whose section changed
//!    (all of them when `[vee]` changed: every source applies it) are stopped and started
//!    again with the new configuration, requests on the control socket use it; then
//!    `READY=1`. An admin's `meterd reload` (over the control socket) does the same. `data_dir` and `[daemon]` changes need a
//!    restart (logged).
//! 4. SIGTERM/SIGINT: `STOPPING=1`, stop accepting (control socket closed), cancel every
//!    component, wait at most `[daemon] stop_deadline_secs` (below the unit's `TimeoutStopSec`),
//!    exit 0. A component still running at the deadline is named in the log and the exit status
//!    is 1.
//!
//! # Adding a component (cradles, MQTT, meter buses, HTTP)
//! Add one [`ComponentSpec`] in [`components`] when your section is configured, as MQTT does:
//! ```ignore
//! if let Some(mqtt) = &config.mqtt {
//!     let section = mqtt.clone();
//!     specs.push(ComponentSpec::new("mqtt", mqtt, move |shared, token| {
//!         let vee = Arc::new(shared.config.vee.clone());
//!         let intervals = Arc::new(shared.config.intervals.clone());
//!         Box::pin(crate::ingest::mqtt::component(shared.store, vee, intervals, section, token))
//!     }));
//! }
//! ```
//! The name must be unique (`cradle:/dev/meterd/cradle-A1B2` for one of many); the section is
//! what, when it changes on reload, restarts the component. Return promptly once the token is
//! cancelled, never with an acknowledgement ahead of a commit.
//!
//! # Logging in a component
//! Log with `tracing`, and give every line the identity of its unit of work: the sources put it
//! in each event's fields (`port`, `serial` of a cradle session; `broker` of the MQTT session),
//! the control socket logs each request with the caller's user name and uid:
//! ```ignore
//! tracing::info!(port = %opts.port, serial = %serial, received, "unload complete");
//! tracing::info!(user = %caller.name, uid = caller.uid, request = %name, "control request");
//! ```
//! Levels: `error` needs an operator, `warn` is a problem meterd handled (a NAKed frame, a
//! quarantined payload), `info` one line per session/batch, `debug` per frame or message.

pub mod config;
pub mod control;
pub mod logging;
pub mod notify;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::store::{Store, StoreTarget};
use notify::Notifier;

/// What every daemon component (and the control socket's requests) shares: the
/// configuration, the data dir and the one open store.
#[derive(Clone)]
pub struct Shared {
    /// The configuration this component was started with.
    pub config: Arc<Config>,
    /// Where the store lives.
    pub data_dir: PathBuf,
    /// The one open store (either engine; every component writes through it).
    pub store: Arc<dyn Store>,
}

/// A running part of the daemon: returns when its token is cancelled (or on a fatal error).
pub type Component = std::pin::Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

type Start = Box<dyn FnOnce(Shared, CancellationToken) -> Component + Send>;

/// A component the configuration asks for, not started yet.
pub struct ComponentSpec {
    /// Unique name, in logs and in the stop-deadline report.
    pub name: String,
    /// Its configuration, serialised: the component is restarted on reload when it (or the
    /// `[vee]` section, which every source applies through `accept_reads`) changes.
    pub section: String,
    start: Start,
}

impl ComponentSpec {
    pub fn new<S: Serialize + ?Sized>(
        name: impl Into<String>,
        section: &S,
        start: impl FnOnce(Shared, CancellationToken) -> Component + Send + 'static,
    ) -> Self {
        let section = serde_json::to_string(section).expect("a config section serialises");
        ComponentSpec {
            name: name.into(),
            section,
            start: Box::new(start),
        }
    }
}

/// Builds the components the configuration asks for. Each source adds itself here.
pub fn components(config: &Config) -> Vec<ComponentSpec> {
    let mut specs: Vec<ComponentSpec> = Vec::new();
    for cradle in &config.cradle {
        let section = cradle.clone();
        specs.push(ComponentSpec::new(
            format!("cradle:{}", cradle.port.display()),
            cradle,
            move |shared, token| {
                let store: Arc<dyn Store> = shared.store.clone();
                let vee = Arc::new(shared.config.vee.clone());
                Box::pin(crate::ingest::cradle::daemon::run_cradle(store, vee, section, token))
            },
        ));
    }
    if let Some(mqtt) = &config.mqtt {
        let section = mqtt.clone();
        // The key file's digest is part of the section: a reload re-reads the keys (and the
        // component retries the telegrams quarantined for a key) when only the file changed.
        let keys = mqtt.wmbus_key_file.as_deref().map(crate::secrets::key_file_fingerprint);
        specs.push(ComponentSpec::new("mqtt", &(mqtt, keys), move |shared, token| {
            let vee = Arc::new(shared.config.vee.clone());
            let intervals = Arc::new(shared.config.intervals.clone());
            Box::pin(crate::ingest::mqtt::component(
                shared.store,
                vee,
                intervals,
                section,
                token,
            ))
        }));
    }
    // A receiver decodes with the [mqtt] section's keys, endpoints and de-duplication window:
    // they (and the key file's digest) are part of its section, so a reload that changes them
    // restarts the receivers too.
    let receiver_keys = config
        .mqtt
        .as_ref()
        .and_then(|m| m.wmbus_key_file.as_deref())
        .map(crate::secrets::key_file_fingerprint);
    for receiver in &config.receiver {
        let section = receiver.clone();
        specs.push(ComponentSpec::new(
            format!("receiver:{}", receiver.port.display()),
            &(receiver, &config.mqtt, &receiver_keys),
            move |shared, token| {
                let store: Arc<dyn Store> = shared.store.clone();
                let c = &shared.config;
                match crate::ingest::receiver::daemon::ReceiverIngest::new(
                    store,
                    c.vee.clone(),
                    c.intervals.clone(),
                    c.mqtt.clone(),
                ) {
                    Ok(ingest) => Box::pin(crate::ingest::receiver::daemon::run(ingest, section, token)),
                    Err(e) => Box::pin(async move { Err(e) }),
                }
            },
        ));
    }
    if config.meterbus.is_configured() {
        let section = config.meterbus.clone();
        specs.push(ComponentSpec::new(
            "meterbus",
            &config.meterbus,
            move |shared, token| {
                let store: Arc<dyn Store> = shared.store.clone();
                let vee = shared.config.vee.clone();
                let intervals = shared.config.intervals.clone();
                Box::pin(crate::ingest::meterbus::daemon::run(
                    store, vee, intervals, section, token,
                ))
            },
        ));
    }
    if let Some(http) = &config.http {
        let section = http.clone();
        specs.push(ComponentSpec::new("billing-api", http, move |shared, token| {
            let store: Arc<dyn Store> = shared.store.clone();
            let intervals = crate::billing::http::IntervalSettings::from_config(
                &shared.config.intervals,
                shared.config.tou.as_ref(),
            );
            Box::pin(crate::billing::http::run(store, section, intervals, token))
        }));
    }
    specs
}

/// What the daemon reacts to besides its components.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGHUP: reload the configuration file.
    Reload,
    /// SIGTERM/SIGINT: stop.
    Shutdown,
}

/// How to start the daemon.
pub struct Options {
    pub config: Config,
    /// The file to re-read on reload (`None`: reload keeps the defaults).
    pub config_path: Option<PathBuf>,
    pub data_dir: PathBuf,
    /// Which components a configuration asks for ([`components`] in production; tests pass
    /// their own).
    pub build: fn(&Config) -> Vec<ComponentSpec>,
}

fn shutdown_channel(shutdown: impl Future<Output = ()> + Send + 'static) -> mpsc::Receiver<Signal> {
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        shutdown.await;
        let _ = tx.send(Signal::Shutdown).await;
    });
    rx
}

/// Runs the daemon's components over an already open store until `shutdown` resolves.
pub async fn run_with(shared: Shared, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
    serve_shared(shared, None, components, shutdown_channel(shutdown)).await
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

/// `meterd run`: the daemon with the process's signals (SIGTERM/SIGINT stop, SIGHUP reloads).
pub async fn run_service(config: Config, config_path: Option<PathBuf>, data_dir: PathBuf) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing a SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing a SIGINT handler")?;
    let mut hup = signal(SignalKind::hangup()).context("installing a SIGHUP handler")?;
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        loop {
            let signal = tokio::select! {
                _ = term.recv() => { tracing::info!("SIGTERM received"); Signal::Shutdown }
                _ = int.recv() => { tracing::info!("SIGINT received"); Signal::Shutdown }
                _ = hup.recv() => { tracing::info!("SIGHUP received"); Signal::Reload }
            };
            if tx.send(signal).await.is_err() {
                break;
            }
        }
    });
    serve(
        Options {
            config,
            config_path,
            data_dir,
            build: components,
        },
        rx,
    )
    .await
}

/// Hands `[quarantine]` to the store (every quarantine entry added applies it) and applies it
/// to what is stored now: a limit lowered while the daemon was down, entries aged meanwhile.
async fn quarantine_retention(store: &Arc<dyn Store>, config: &Config) -> anyhow::Result<()> {
    store.set_quarantine_limits(config.quarantine.limits());
    let store = Arc::clone(store);
    let removed = tokio::task::spawn_blocking(move || -> crate::store::Result<u64> {
        // Enforcing writes nothing when nothing is over a limit; the commit is then cheap.
        crate::store::write(store.as_ref(), |txn| {
            txn.enforce_quarantine_retention(jiff::Timestamp::now())
        })
    })
    .await?
    .context("applying the [quarantine] retention")?;
    if removed > 0 {
        tracing::info!(
            removed,
            "quarantine: entries over the [quarantine] limits removed (counted in the summary)"
        );
    }
    Ok(())
}

/// Runs the daemon until a [`Signal::Shutdown`] arrives (or the channel closes).
pub async fn serve(options: Options, signals: mpsc::Receiver<Signal>) -> anyhow::Result<()> {
    let Options {
        config,
        config_path,
        data_dir,
        build,
    } = options;
    let store = {
        let target = StoreTarget::from_config(&config, &data_dir);
        let limits = config.quarantine.limits();
        let shown = target.describe();
        let store = tokio::task::spawn_blocking(move || crate::store::open(&target, limits))
            .await?
            .with_context(|| format!("cannot open the store ({shown})"))?;
        tracing::info!(store = %store.describe(), "store open");
        store
    };
    let shared = Shared {
        config: Arc::new(config),
        data_dir,
        store,
    };
    serve_shared(shared, config_path, build, signals).await
}

/// [`serve`] over an already open store.
pub async fn serve_shared(
    shared: Shared,
    config_path: Option<PathBuf>,
    build: fn(&Config) -> Vec<ComponentSpec>,
    mut signals: mpsc::Receiver<Signal>,
) -> anyhow::Result<()> {
    let notifier = Notifier::from_env();
    quarantine_retention(&shared.store, &shared.config).await?;
    // The configuration in force, for requests on the control socket.
    let (config_tx, configs) = watch::channel(Arc::clone(&shared.config));
    // An admin's `meterd reload` over the control socket.
    let (reload_tx, mut reloads) = mpsc::channel::<Signal>(1);

    let socket_path = shared.config.daemon.control_socket(&shared.data_dir);
    let mode = shared.config.daemon.socket_mode().map_err(anyhow::Error::msg)?;
    let listener = control::bind(&socket_path, mode, shared.config.daemon.control_socket_group.as_deref()).await?;
    let mut daemon = Daemon {
        shared,
        build,
        running: BTreeMap::new(),
        generation: 0,
        exits: mpsc::unbounded_channel(),
        root: CancellationToken::new(),
    };
    {
        let (shared, token, path) = (daemon.shared.clone(), daemon.root.child_token(), socket_path.clone());
        daemon.spawn(
            "control".into(),
            String::new(),
            Box::new(move |_, _| Box::pin(control::serve(shared, configs, reload_tx, listener, path, token))),
        );
    }
    for spec in (daemon.build)(&daemon.shared.config) {
        daemon.start(spec);
    }
    tracing::info!(data_dir = %daemon.shared.data_dir.display(), control_socket = %socket_path.display(), "meterd running");
    notifier.ready("running");

    let watchdog = notify::watchdog_interval();
    let mut tick = tokio::time::interval(watchdog.unwrap_or(Duration::from_secs(3600)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failure = None;
    loop {
        tokio::select! {
            signal = signals.recv() => match signal {
                Some(Signal::Reload) => {
                    notifier.reloading();
                    daemon.reload(config_path.as_deref(), &config_tx).await;
                    notifier.ready("running");
                }
                Some(Signal::Shutdown) | None => break,
            },
            Some(_) = reloads.recv() => {
                notifier.reloading();
                daemon.reload(config_path.as_deref(), &config_tx).await;
                notifier.ready("running");
            }
            Some((name, generation, result)) = daemon.exits.1.recv() => {
                if daemon.running.get(&name).is_none_or(|r| r.generation != generation) {
                    continue; // stopped by a reload, already reported
                }
                daemon.running.remove(&name);
                match result {
                    Ok(()) => tracing::info!(component = %name, "stopped"),
                    Err(e) => {
                        tracing::error!(component = %name, error = %format!("{e:#}"), "failed; stopping the daemon");
                        failure = Some(e.context(format!("component {name} failed")));
                        break;
                    }
                }
            }
            _ = tick.tick(), if watchdog.is_some() => {
                let half = watchdog.unwrap_or_default() / 2;
                match daemon.healthy(half).await {
                    Ok(()) => notifier.watchdog(),
                    Err(e) => tracing::error!(error = %format!("{e:#}"), "health check failed; not feeding the watchdog"),
                }
            }
        }
    }
    notifier.stopping();
    tracing::info!("shutting down");
    let deadline = Duration::from_secs(daemon.shared.config.daemon.stop_deadline_secs);
    let stuck = daemon.stop_all(deadline).await;
    if !stuck.is_empty() {
        tracing::error!(components = ?stuck, deadline_secs = deadline.as_secs(), "components did not stop before the deadline");
        return Err(failure.unwrap_or_else(|| {
            anyhow::anyhow!(
                "components did not stop within {} s: {}",
                deadline.as_secs(),
                stuck.join(", ")
            )
        }));
    }
    tracing::info!("stopped");
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

struct Running {
    section: String,
    generation: u64,
    token: CancellationToken,
    handle: JoinHandle<()>,
}

type Exit = (String, u64, anyhow::Result<()>);

struct ExitGuard {
    exits: mpsc::UnboundedSender<Exit>,
    name: String,
    generation: u64,
    sent: bool,
}

impl ExitGuard {
    fn send(&mut self, result: anyhow::Result<()>) {
        self.sent = true;
        let _ = self.exits.send((self.name.clone(), self.generation, result));
    }
}

impl Drop for ExitGuard {
    fn drop(&mut self) {
        if !self.sent && std::thread::panicking() {
            self.send(Err(anyhow::anyhow!("panicked")));
        }
    }
}

struct Daemon {
    shared: Shared,
    build: fn(&Config) -> Vec<ComponentSpec>,
    running: BTreeMap<String, Running>,
    generation: u64,
    exits: (mpsc::UnboundedSender<Exit>, mpsc::UnboundedReceiver<Exit>),
    root: CancellationToken,
}

impl Daemon {
    fn start(&mut self, spec: ComponentSpec) {
        tracing::info!(component = %spec.name, "starting");
        self.spawn(spec.name, spec.section, spec.start);
    }

    fn spawn(&mut self, name: String, section: String, start: Start) {
        self.generation += 1;
        let generation = self.generation;
        let token = self.root.child_token();
        let future = start(self.shared.clone(), token.clone());
        let exits = self.exits.0.clone();
        let n = name.clone();
        let handle = tokio::spawn(async move {
            // Reports the exit even when the component panics (the guard drops while unwinding).
            let mut guard = ExitGuard {
                exits,
                name: n,
                generation,
                sent: false,
            };
            let result = future.await;
            guard.send(result);
        });
        self.running.insert(
            name,
            Running {
                section,
                generation,
                token,
                handle,
            },
        );
    }

    /// Re-reads the file; on success publishes it and restarts the components whose section
    /// changed. On failure logs why and keeps everything as it is.
    async fn reload(&mut self, path: Option<&std::path::Path>, config_tx: &watch::Sender<Arc<Config>>) {
        let Some(path) = path else {
            tracing::warn!("reload asked, but the daemon was started without a configuration file; nothing to re-read");
            return;
        };
        let new = match tokio::task::spawn_blocking({
            let path = path.to_owned();
            move || Config::load(Some(&path))
        })
        .await
        {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "the new configuration is invalid; keeping the running one");
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "reading the configuration panicked; keeping the running one");
                return;
            }
        };
        // A key file that no longer reads is refused like an invalid configuration: the MQTT
        // component keeps the keys it has rather than failing.
        if let Some(path) = new.mqtt.as_ref().and_then(|m| m.wmbus_key_file.clone()) {
            match tokio::task::spawn_blocking(move || crate::secrets::read_key_file(&path)).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::error!(error = %format!("{e:#}"), "the wM-Bus key file is invalid; keeping the running configuration");
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %e, "reading the wM-Bus key file panicked; keeping the running configuration");
                    return;
                }
            }
        }
        let old = Arc::clone(&self.shared.config);
        if new.data_dir != old.data_dir || new.daemon != old.daemon || new.log != old.log {
            tracing::warn!("data_dir, [daemon] and [log] changes take effect at the next restart");
        }
        let new = Arc::new(new);
        let vee_changed = new.vee != old.vee;
        self.shared.config = Arc::clone(&new);
        config_tx.send_replace(Arc::clone(&new));
        if new.quarantine != old.quarantine
            && let Err(e) = quarantine_retention(&self.shared.store, &new).await
        {
            tracing::error!(error = %e, "applying the new [quarantine] limits");
        }
        let mut wanted: BTreeMap<String, ComponentSpec> =
            (self.build)(&new).into_iter().map(|s| (s.name.clone(), s)).collect();
        let deadline = Duration::from_secs(new.daemon.stop_deadline_secs);
        let mut changed = Vec::new();
        let names: Vec<String> = self
            .running
            .keys()
            .filter(|n| n.as_str() != "control")
            .cloned()
            .collect();
        for name in names {
            let keep = !vee_changed
                && wanted
                    .get(&name)
                    .is_some_and(|s| s.section == self.running[&name].section);
            if keep {
                wanted.remove(&name);
                continue;
            }
            changed.push(name.clone());
            let r = self.running.remove(&name).expect("listed above");
            tracing::info!(component = %name, "stopping for the new configuration");
            r.token.cancel();
            let abort = r.handle.abort_handle();
            match tokio::time::timeout(deadline, r.handle).await {
                Ok(_) => tracing::info!(component = %name, "stopped"),
                Err(_) => {
                    tracing::error!(component = %name, "did not stop before the deadline; aborted");
                    abort.abort();
                }
            }
        }
        for (name, spec) in wanted {
            if !changed.contains(&name) {
                changed.push(name);
            }
            self.start(spec);
        }
        tracing::info!(restarted = ?changed, "configuration reloaded");
    }

    /// The store answers a read transaction within `limit`.
    async fn healthy(&self, limit: Duration) -> anyhow::Result<()> {
        let store = Arc::clone(&self.shared.store);
        let check = tokio::task::spawn_blocking(move || store.begin_read().and_then(|t| t.count_reads()).map(|_| ()));
        tokio::time::timeout(limit, check)
            .await
            .context("the store did not answer in time")???;
        Ok(())
    }

    /// Cancels everything and waits up to `deadline`; returns the names still running then.
    async fn stop_all(&mut self, deadline: Duration) -> Vec<String> {
        self.root.cancel();
        let wait = async {
            if self.running.is_empty() {
                return;
            }
            while let Some((name, generation, result)) = self.exits.1.recv().await {
                if self.running.get(&name).is_some_and(|r| r.generation == generation) {
                    self.running.remove(&name);
                    match result {
                        Ok(()) => tracing::info!(component = %name, "stopped"),
                        Err(e) => tracing::warn!(component = %name, error = %format!("{e:#}"), "stopped with an error"),
                    }
                }
                if self.running.is_empty() {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(deadline, wait).await;
        let stuck: Vec<String> = self.running.keys().cloned().collect();
        for r in self.running.values() {
            r.handle.abort();
        }
        stuck
    }
}

#[cfg(test)]
mod tests;
