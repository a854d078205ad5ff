//! A clerk's review action through the running daemon while it ingests gateway traffic
//! (issue 13): round-trip latency of `ReviewBackend::act` over the control socket, p50 / p99 /
//! max, with `meterd run` ingesting 1,000 MQTT messages/s from a private mosquitto.
//!
//! Set-up (not timed): a store of `METERS` water meters, each with a year of monthly reads
//! and a last read far above its usage (held for review: high usage); the real `meterd run`
//! with `[mqtt]`; `meterd simulate gateway --rate 1000` publishing for the whole run (its
//! meters are not in the store, so every one of their reads is held too: the review tables
//! grow under the clerk, the worst case). Then, one action at a time, as a clerk works: the
//! read's detail (for its revision; not timed), then accept it with that revision (timed:
//! request written, action committed durably in the daemon, answer read).
//!
//! Run: `cargo bench --bench review_roundtrip`. Target (issue 13): p99 < 50 ms on 2 cores.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use meterd::api::remote::RemoteBackend;
use meterd::review::{Action, ActionRequest, QueueFilter, ReviewBackend};
use meterd::simulate::broker::Mosquitto;

const METERS: usize = 300;
const RATE: u32 = 1_000;

fn meterd(data: &Path, config: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_meterd"));
    c.arg("--data-dir").arg(data).arg("--config").arg(config);
    c.env_remove("METERD_CONFIG").env_remove("METERD_DATA_DIR");
    c
}

fn ok(c: &mut Command) {
    let out = c.output().unwrap();
    assert!(out.status.success(), "{c:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A town where every meter's last read is held for review.
fn town(dir: &Path, data: &Path, config: &Path) {
    let mut meters =
        String::from("meter_id,account,route,sequence,service,unit,dials,decimals,multiplier,status,address\n");
    let mut reads = String::from("meter_id,read_at,value,read_type,codes\n");
    for i in 0..METERS {
        let id = format!("W{i:05}");
        meters.push_str(&format!(
            "{id},A{i},R{},{i},water,gal,8,0,1,active,{i} Elm St\n",
            i / 100
        ));
        let mut value = 10_000 + i as u64;
        for m in 1..=12u64 {
            reads.push_str(&format!("{id},2025-{m:02}-05T08:00:00Z,{value},manual,\n"));
            // Usage that varies from month to month, as real usage does (the same usage month
            // after month is itself a VEE flag).
            value += 280 + ((m * 37 + i as u64 * 11) % 50);
        }
        // Ten months of usage in one: high usage, held.
        reads.push_str(&format!("{id},2026-01-05T08:00:00Z,{},manual,\n", value + 3_000));
    }
    let (m, r) = (dir.join("meters.csv"), dir.join("reads.csv"));
    std::fs::write(&m, meters).unwrap();
    std::fs::write(&r, reads).unwrap();
    ok(meterd(data, config).args(["meters", "import"]).arg(&m));
    ok(meterd(data, config).args(["reads", "import"]).arg(&r));
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs it once as a test: skip then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let Some(broker) = Mosquitto::start(false).unwrap() else {
        eprintln!("review_roundtrip: mosquitto is not installed; skipping");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let socket = dir.path().join("control.sock");
    let config = dir.path().join("meterd.toml");
    std::fs::write(
        &config,
        format!(
            "[daemon]\ncontrol_socket = \"{}\"\n\n[mqtt]\nbroker = \"{}\"\nclient_id = \"meterd-bench\"\n\
             topics = [\"meters/+/rtlamr\", \"meters/+/raw\"]\n",
            socket.display(),
            broker.url()
        ),
    )
    .unwrap();
    town(dir.path(), &data, &config);

    let mut daemon = meterd(&data, &config)
        .arg("run")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = BufReader::new(daemon.stderr.take().unwrap());
    let daemon = Killed(daemon);
    let committed = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (subscribed_tx, subscribed_rx) = std::sync::mpsc::channel();
    {
        let committed = std::sync::Arc::clone(&committed);
        std::thread::spawn(move || {
            for line in log.lines() {
                let Ok(line) = line else { break };
                if line.contains("connected and subscribed") {
                    let _ = subscribed_tx.send(());
                }
                if line.contains("mqtt: committed")
                    && let Some(n) = line
                        .split_whitespace()
                        .find_map(|w| w.strip_prefix("messages="))
                        .and_then(|n| n.parse::<u64>().ok())
                {
                    committed.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                }
            }
        });
    }
    subscribed_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("meterd subscribed");

    // The reads to act on, before the gateway's reads crowd the queue.
    let backend = RemoteBackend::new(socket.clone(), None, None);
    let queue = backend
        .queue(&QueueFilter::default())
        .expect("the queue through the daemon");
    let ours: Vec<u64> = queue
        .items
        .iter()
        .filter(|i| i.read.read.meter_id.starts_with('W'))
        .map(|i| i.read.id)
        .collect();
    assert_eq!(ours.len(), METERS, "every town read held");

    // Traffic for the whole run; more than the run needs (it is killed at the end).
    let gateway = Killed(
        meterd(&data, &config)
            .args(["simulate", "gateway", "--broker", &broker.url(), "--meters", "2000"])
            .args([
                "--rate",
                &RATE.to_string(),
                "--count",
                "600000",
                "--gateways",
                "3",
                "--seed",
                "13",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_secs(3));

    let (c0, t0) = (committed.load(std::sync::atomic::Ordering::Relaxed), Instant::now());
    let mut rtts = Vec::with_capacity(ours.len());
    for id in ours {
        let detail = backend.detail(id).expect("detail");
        let req = ActionRequest {
            read_id: id,
            seen_rev: Some(detail.rev),
            clerk: String::new(),
            action: Action::Accept {
                reason: "benchmark".into(),
            },
        };
        let started = Instant::now();
        backend.act(&req).expect("accept");
        rtts.push(started.elapsed());
        // A clerk reads the next read before acting on it.
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = t0.elapsed();
    let ingested = committed.load(std::sync::atomic::Ordering::Relaxed) - c0;
    drop(gateway);
    drop(daemon);

    rtts.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "review_roundtrip: {} accepts through the daemon while it ingested {:.0} msgs/s (target {RATE}): \
         p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (target p99 < 50 ms)",
        rtts.len(),
        ingested as f64 / elapsed.as_secs_f64(),
        ms(percentile(&rtts, 0.50)),
        ms(percentile(&rtts, 0.99)),
        ms(*rtts.last().unwrap()),
    );
}
