//! `meterd demo`: the newcomer's first run.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;

use super::Env;
use crate::api::commands::output::flag_text;
use crate::billing::{self, AckOutcome, DEFAULT_CLIENT};
use crate::ingest::AcceptReport;
use crate::ingest::files;
use crate::model::{ReadStatus, Service};
use crate::store::Store;
use crate::{demo, review};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the demo store and files in this directory instead of a temporary one.
    #[arg(long, value_name = "DIR")]
    pub keep: Option<PathBuf>,
}

pub fn run(env: &Env, args: DemoArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let tmp;
    let dir = match &args.keep {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => {
            tmp = tempfile::Builder::new().prefix("meterd-demo-").tempdir()?;
            tmp.path().to_owned()
        }
    };
    let store_path = dir.join("store").join(crate::store::STORE_FILE);
    if store_path.exists() {
        anyhow::bail!("{} already holds a demo store; pick an empty directory", dir.display());
    }
    // The demo's store is always a fresh embedded one in its own directory.
    let store = crate::store::open(
        &crate::store::StoreTarget::embedded(&dir.join("store")),
        crate::store::QuarantineLimits::default(),
    )?;
    let (meters_file, reads_file) = demo::write_files(&dir)?;

    say!(
        env,
        "meterd demo: a small town in a fresh store at {}",
        store_path.display()
    );
    let meters = files::parse_meters_csv(&meters_file)?;
    files::store_meters(&store, &meters)?;
    let routes: std::collections::BTreeSet<&str> = meters.iter().map(|m| m.route.as_str()).collect();
    let count = |s: Service| meters.iter().filter(|m| m.service == s).count();
    say!(
        env,
        "  meters   {} on {} routes ({} water, {} gas, {} electric)",
        meters.len(),
        routes.len(),
        count(Service::Water),
        count(Service::Gas),
        count(Service::Electric)
    );

    let mut commits = 0;
    let report = files::import_reads_file(&store, &env.config.vee, &reads_file, 1_000, &mut |_: &AcceptReport| {
        commits += 1
    })?;
    say!(
        env,
        "  reads    {} imported from {} ({} months, {} durable commits)",
        report.imported,
        reads_file.display(),
        demo::MONTHS,
        commits
    );
    say!(
        env,
        "  VEE      {} validated, {} held for review",
        report.validated,
        report.flagged
    );
    let rules: Vec<String> = report.by_rule.iter().map(|(r, n)| format!("{r} {n}")).collect();
    say!(env, "           flags: {}", rules.join(", "));

    let again = files::import_reads_file(&store, &env.config.vee, &reads_file, 1_000, &mut |_| {})?;
    say!(
        env,
        "  again    re-importing the same file: {} imported, {} duplicates skipped",
        again.imported,
        again.duplicates_skipped
    );

    let queue = review::queue(&store)?;
    say!(env, "  review   {} reads wait for a clerk, for example:", queue.len());
    let mut shown = std::collections::BTreeSet::new();
    for r in &queue {
        if let Some(f) = r.flags.iter().find(|f| shown.insert(f.rule)) {
            say!(
                env,
                "           {} {} value {}: {}",
                r.read.meter_id,
                r.read.read_at,
                r.read.value,
                flag_text(f)
            );
        }
    }

    let now = jiff::Timestamp::now();
    match billing::next_batch(&store, DEFAULT_CLIENT, usize::MAX, now)? {
        Some(b) => {
            let id = b.batch.id;
            let again = billing::next_batch(&store, DEFAULT_CLIENT, usize::MAX, now)?.map(|b| b.batch.id);
            let acked = billing::ack_batch(&store, id, now)?;
            let n = if let AckOutcome::Acked { reads } = acked {
                reads
            } else {
                0
            };
            say!(
                env,
                "  billing  batch {id}: {} validated reads (asked twice: same batch {}); acked, {n} reads exported",
                b.reads.len(),
                again.map(|a| a.to_string()).unwrap_or_default()
            );
        }
        None => say!(env, "  billing  nothing to bill"),
    }
    #[cfg(feature = "simulate")]
    {
        gateway_demo(env, &store)?;
        dock_demo(env, &store)?;
    }
    #[cfg(not(feature = "simulate"))]
    say!(
        env,
        "  gateway, cradle: skipped (this meterd was built without the `simulate` feature)"
    );

    let txn = store.begin_read()?;
    let exported = txn.reads_with_status(ReadStatus::Exported, usize::MAX)?.len();
    let flagged = txn.reads_with_status(ReadStatus::Flagged, usize::MAX)?.len();
    say!(
        env,
        "  store    {} reads: {exported} exported, {flagged} held for review",
        txn.count_reads()?
    );
    say!(env, "done in {:.1} s", started.elapsed().as_secs_f64());
    if args.keep.is_some() {
        say!(
            env,
            "kept in {}; try `meterd --data-dir {} review list`",
            dir.display(),
            dir.join("store").display()
        );
    }
    Ok(())
}

/// Radio meters heard by simulated gateways through a private mosquitto, ingested by the same
/// task the daemon runs.
#[cfg(feature = "simulate")]
fn gateway_demo(env: &Env, store: &std::sync::Arc<dyn Store>) -> anyhow::Result<()> {
    use crate::ingest::mqtt::{GatewayIngest, MqttConfig, client};
    use crate::model::{Meter, MeterStatus, Quantity};
    use crate::simulate::gateway::{SimOptions, Traffic};
    use std::sync::Arc;

    let Some(broker) = crate::simulate::broker::Mosquitto::start(false)? else {
        say!(
            env,
            "  gateway  mosquitto is not installed: skipping the simulated AMR gateway (apt-get install mosquitto)"
        );
        return Ok(());
    };
    const MESSAGES: u64 = 3_000;
    const METERS: usize = 60;
    let (seed, gateways) = (7, 3);
    // The radio meters are in billing's list under their endpoint keys (`scm:ID`, ...).
    let opts = SimOptions {
        meters: METERS,
        gateways,
        corrupt_rate: 0.02,
        seed,
        topic_prefix: "meters".into(),
        start: jiff::Timestamp::now(),
    };
    let endpoints: std::collections::BTreeSet<(String, &str)> = Traffic::new(opts)
        .take(MESSAGES as usize)
        .map(|m| (m.endpoint, m.protocol))
        .collect();
    let meters: Vec<Meter> = endpoints
        .iter()
        .enumerate()
        .map(|(i, (id, protocol))| Meter {
            meter_id: id.clone(),
            account: format!("R{:05}", i + 1),
            route: "RADIO".into(),
            sequence: i as u32 + 1,
            service: match *protocol {
                "r900" | "scm+" => Service::Water,
                "idm" => Service::Electric,
                _ => Service::Gas,
            },
            unit: "count".into(),
            dials: 10,
            decimals: 0,
            multiplier: Quantity::from_units(1).expect("1"),
            status: MeterStatus::Active,
            address: format!("{} Radio Rd", i + 1),
            notes: String::new(),
        })
        .collect();
    files::store_meters(store, &meters)?;

    let cfg = Arc::new(MqttConfig {
        broker: broker.url(),
        client_id: "meterd-demo".into(),
        ..MqttConfig::default()
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (tx, mut rx) = tokio::sync::watch::channel(0u64);
    let ingest = GatewayIngest {
        store: Arc::clone(store),
        config: Arc::clone(&cfg),
        vee: Arc::new(env.config.vee.clone()),
        intervals: Arc::new(env.config.intervals.clone()),
        keys: Arc::new(meterd_protocols::decode::Keys::new()),
        progress: Some(tx),
    };
    let before = store.begin_read()?.quarantined()?.len();
    let summary = rt.block_on(async {
        let token = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(client::run(ingest, token.clone()));
        // Let meterd subscribe first (its persistent session then keeps everything anyway).
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let args = super::simulate::gateway::GatewayArgs {
            broker: cfg.broker.clone(),
            meters: METERS,
            rate: 0.0,
            gateways,
            count: Some(MESSAGES),
            corrupt_rate: 0.02,
            seed,
            topic_prefix: "meters".into(),
            manifest: None,
            tls: Default::default(),
            client_id: Some("meterd-demo-gateways".into()),
        };
        let summary = super::simulate::gateway::simulate(args).await?;
        client::committed(&mut rx, MESSAGES, std::time::Duration::from_secs(60)).await?;
        token.cancel();
        task.await??;
        anyhow::Ok(summary)
    })?;
    let txn = store.begin_read()?;
    let radio: Vec<_> = meters
        .iter()
        .map(|m| txn.meter_reads(&m.meter_id, jiff::Timestamp::MIN, jiff::Timestamp::MAX))
        .collect::<Result<_, _>>()?;
    let reads: usize = radio.iter().map(Vec::len).sum();
    let flagged = radio
        .iter()
        .flatten()
        .filter(|r| r.status == ReadStatus::Flagged)
        .count();
    say!(
        env,
        "  gateway  a private mosquitto at {}: {} radio messages from {gateways} gateways ({} transmissions of {} SCM/SCM+/IDM/R900 meters, repeats, {} corrupt)",
        broker.url(),
        summary["published"],
        summary["transmissions"],
        meters.len(),
        summary["corrupt"]
    );
    say!(
        env,
        "           {reads} reads stored once each ({flagged} flagged), {} interval reads, {} corrupt packets quarantined; each message acked after its commit",
        txn.count_interval_reads()?,
        txn.quarantined()?.len() - before
    );
    Ok(())
}

/// A handheld recorder docks twice over a real pseudo-terminal pair: in the morning a route
/// goes in, the simulated reader walks it, in the evening its reads come back through VEE.
#[cfg(feature = "simulate")]
fn dock_demo(env: &Env, store: &std::sync::Arc<dyn Store>) -> anyhow::Result<()> {
    use std::sync::Arc;
    use std::time::Duration;

    use meterd_protocols::cradle::{Firmware, LineTiming, RecorderConfig};
    use tokio_util::sync::CancellationToken;

    use crate::ingest::cradle::{SessionOptions, SessionReport, convert, run_session};
    use crate::simulate::recorder::SimulatedRecorder;

    let timing = LineTiming::new(115_200, Duration::from_millis(10));
    let mut sim = SimulatedRecorder::new(
        RecorderConfig::new("AR5-DEMO", Firmware::V2, timing),
        Default::default(),
        0.0,
        42,
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let dock = |sim: &mut SimulatedRecorder| -> anyhow::Result<SessionReport> {
        runtime.block_on(async {
            let (recorder_end, cradle_end) = tokio_serial::SerialStream::pair()?;
            let store: Arc<dyn Store> = store.clone();
            let never = CancellationToken::new();
            let opts = SessionOptions::new("demo-pty", timing);
            let mut quiet = ();
            let host = run_session(
                cradle_end,
                store,
                Arc::new(env.config.vee.clone()),
                opts,
                never.clone(),
                &mut quiet,
            );
            let (report, _) = tokio::join!(host, sim.serve(recorder_end, &never));
            report
        })
    };
    let morning = dock(&mut sim)?;
    let route = morning.routes_loaded.first().cloned().unwrap_or_else(|| "none".into());
    let meters = sim.data().routes.first().map_or(0, |r| r.meters.len());
    say!(
        env,
        "  cradle   recorder AR5-DEMO (firmware 2) docked on a pty pair: route {route} loaded ({meters} meters, walk order, hi/lo limits)"
    );
    let taken = sim.read_loaded_routes(convert::local_civil_now(&jiff::tz::TimeZone::system()))?;
    let evening = dock(&mut sim)?;
    let a = &evening.accepted;
    say!(
        env,
        "           the reader walked it: {taken} records; docked again: {} reads unloaded and committed, {} skipped meters, recorder cleared of {}",
        a.imported,
        evening.skips,
        evening.cleared.unwrap_or(0)
    );
    let rules: Vec<String> = a.by_rule.iter().map(|(r, n)| format!("{r} {n}")).collect();
    say!(
        env,
        "           VEE: {} validated, {} held for review{}{}",
        a.validated,
        a.flagged,
        if rules.is_empty() { "" } else { "; flags: " },
        rules.join(", ")
    );
    if let Some(next) = evening.routes_loaded.first() {
        say!(env, "           next route loaded for tomorrow: {next}");
    }
    Ok(())
}
