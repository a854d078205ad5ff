//! The daemon's life cycle with stand-in components: reload restarts exactly the components
//! whose section changed, an invalid file changes nothing, the stop deadline names a component
//! that ignores its token.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use super::*;

/// (component, event) in order, per test (each test uses its own log through its build fn).
static EVENTS_RELOAD: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn recorder(
    log: &'static Mutex<Vec<String>>,
    name: &'static str,
) -> impl FnOnce(Shared, CancellationToken) -> Component {
    move |shared, token| {
        Box::pin(async move {
            log.lock()
                .unwrap()
                .push(format!("{name} start {}", shared.config.vee.water.high_factor));
            token.cancelled().await;
            log.lock().unwrap().push(format!("{name} stop"));
            Ok(())
        })
    }
}

/// Stand-ins: "a" depends on `[log] level`, "b" on `[daemon] stop_deadline_secs` and exists
/// only when it is not 25.
fn build_reload(config: &Config) -> Vec<ComponentSpec> {
    let mut specs = vec![ComponentSpec::new(
        "a",
        &config.log.level,
        recorder(&EVENTS_RELOAD, "a"),
    )];
    if config.daemon.stop_deadline_secs != 25 {
        specs.push(ComponentSpec::new(
            "b",
            &config.daemon.stop_deadline_secs,
            recorder(&EVENTS_RELOAD, "b"),
        ));
    }
    specs
}

async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn events() -> Vec<String> {
    EVENTS_RELOAD.lock().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_restarts_changed_components_and_keeps_old_config_when_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("meterd.toml");
    std::fs::write(&file, "[vee.water]\nhigh_factor = 2\n").unwrap();
    let config = Config::load(Some(&file)).unwrap();
    let (tx, rx) = mpsc::channel(4);
    let daemon = tokio::spawn(serve(
        Options {
            config,
            config_path: Some(file.clone()),
            data_dir: dir.path().join("data"),
            build: build_reload,
        },
        rx,
    ));
    settle().await;
    assert_eq!(events(), ["a start 2"]);

    // Only b's section appears: a keeps running, b starts.
    std::fs::write(
        &file,
        "[vee.water]\nhigh_factor = 2\n[daemon]\nstop_deadline_secs = 9\n",
    )
    .unwrap();
    tx.send(Signal::Reload).await.unwrap();
    settle().await;
    assert_eq!(events(), ["a start 2", "b start 2"]);

    // An invalid file (unknown key): nothing stops, nothing starts.
    std::fs::write(&file, "[vee.water]\nhigh_factor = 5\nbogus = 1\n").unwrap();
    tx.send(Signal::Reload).await.unwrap();
    settle().await;
    assert_eq!(events().len(), 2);

    // a's section changes and b goes away.
    std::fs::write(&file, "[vee.water]\nhigh_factor = 2\n[log]\nlevel = \"debug\"\n").unwrap();
    tx.send(Signal::Reload).await.unwrap();
    settle().await;
    let e = events();
    assert_eq!(e.len(), 5, "{e:?}");
    assert!(
        e[2..4].contains(&"b stop".to_string()) && e[2..4].contains(&"a stop".to_string()),
        "{e:?}"
    );
    assert_eq!(e[4], "a start 2");

    // [vee] changes: every source applies it, so everything restarts with the new factors.
    std::fs::write(&file, "[vee.water]\nhigh_factor = 4\n[log]\nlevel = \"debug\"\n").unwrap();
    tx.send(Signal::Reload).await.unwrap();
    settle().await;
    assert_eq!(events()[5..], ["a stop", "a start 4"]);

    tx.send(Signal::Shutdown).await.unwrap();
    daemon.await.unwrap().unwrap();
    assert_eq!(events().last().unwrap(), "a stop");
    assert!(
        !dir.path().join("data/control.sock").exists(),
        "control socket removed on shutdown"
    );
}

static STUBBORN_STOPPED: AtomicBool = AtomicBool::new(false);

fn build_stubborn(_: &Config) -> Vec<ComponentSpec> {
    vec![
        ComponentSpec::new("polite", &(), |_, token| {
            Box::pin(async move {
                token.cancelled().await;
                Ok(())
            })
        }),
        ComponentSpec::new("stubborn", &(), |_, _token| {
            Box::pin(async move {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                STUBBORN_STOPPED.store(true, Ordering::SeqCst);
                Ok(())
            })
        }),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_deadline_names_the_component_that_did_not_stop() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::parse("[daemon]\nstop_deadline_secs = 1\n", "t").unwrap();
    let (tx, rx) = mpsc::channel(4);
    let daemon = tokio::spawn(serve(
        Options {
            config,
            config_path: None,
            data_dir: dir.path().join("data"),
            build: build_stubborn,
        },
        rx,
    ));
    settle().await;
    tx.send(Signal::Shutdown).await.unwrap();
    let e = daemon.await.unwrap().unwrap_err().to_string();
    assert!(
        e.contains("stubborn") && !e.contains("polite") && !e.contains("control"),
        "{e}"
    );
    assert!(!STUBBORN_STOPPED.load(Ordering::SeqCst));
}

fn build_failing(_: &Config) -> Vec<ComponentSpec> {
    vec![ComponentSpec::new("broken", &(), |_, _| {
        Box::pin(async { anyhow::bail!("serial port vanished") })
    })]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_component_stops_the_daemon_with_its_error() {
    let dir = tempfile::tempdir().unwrap();
    let (_tx, rx) = mpsc::channel(4);
    let options = Options {
        config: Config::default(),
        config_path: None,
        data_dir: dir.path().join("data"),
        build: build_failing,
    };
    let e = serve(options, rx).await.unwrap_err();
    assert!(
        format!("{e:#}").contains("component broken failed: serial port vanished"),
        "{e:#}"
    );
}
