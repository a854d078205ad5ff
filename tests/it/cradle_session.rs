//! Cradle sessions over real pseudo-terminal pairs (`tokio_serial::SerialStream::pair()`):
//! meterd's driver on one end, the simulated recorder on the other, the real redb store.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use meterd::ingest::cradle::{CradleConfig, Observer, SessionOptions, SessionReport, run_session};
use meterd::ingest::files;
use meterd::model::{OriginKind, StoredRead};
use meterd::simulate::recorder::{DockingEnd, PtyCradle, SimulatedRecorder};
use meterd::store::{RedbStore, Store};
use meterd::vee::VeeConfig;
use meterd_protocols::cradle::frame::FrameDecoder;
use meterd_protocols::cradle::{
    Firmware, FrameKind, HostEvent, LineTiming, Message, ReadRecord, RecorderConfig, RecorderData,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_serial::SerialStream;
use tokio_util::sync::CancellationToken;

/// `meterd_frames_total` is one registry per process: the test that checks the cradle counts
/// holds this exclusively, every other test of this file that runs sessions shares it.
static FRAME_COUNTS: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// The cradle counts of `meterd_frames_total`, per outcome.
fn cradle_frames() -> BTreeMap<&'static str, u64> {
    ["read", "held", "duplicate", "skipped", "quarantined"]
        .into_iter()
        .map(|o| {
            let v = meterd::metrics::global()
                .value(meterd::metrics::FRAMES, &[("source", "cradle"), ("outcome", o)])
                .unwrap_or(0.0);
            (o, v as u64)
        })
        .collect()
}

/// A store holding the demo town: 300 meters on 7 routes with 13 months of reads.
fn town() -> (tempfile::TempDir, Arc<RedbStore>) {
    let dir = tempfile::Builder::new().prefix("meterd-cradle-").tempdir().unwrap();
    let store = RedbStore::open_dir(&dir.path().join("store")).unwrap();
    let (meters_file, reads_file) = meterd::demo::write_files(dir.path()).unwrap();
    let meters = files::parse_meters_csv(&meters_file).unwrap();
    files::store_meters(&store, &meters).unwrap();
    files::import_reads_file(&store, &VeeConfig::default(), &reads_file, 5_000, &mut |_| {}).unwrap();
    (dir, Arc::new(store))
}

fn recorder(serial: &str, fw: Firmware, baud: u32, corrupt: f64, data: RecorderData) -> SimulatedRecorder {
    let timing = LineTiming::new(baud, Duration::from_millis(10));
    SimulatedRecorder::new(RecorderConfig::new(serial, fw, timing), data, corrupt, 7)
}

/// Reads of the store that came from recorder `serial`, keyed by recorder sequence.
fn cradle_reads(store: &RedbStore, serial: &str) -> BTreeMap<u32, Vec<StoredRead>> {
    let mut out: BTreeMap<u32, Vec<StoredRead>> = BTreeMap::new();
    for r in store.begin_read().unwrap().all_reads().unwrap() {
        if r.read.origin.kind == OriginKind::Cradle && r.read.origin.source == serial {
            let seq: u32 = r
                .read
                .origin
                .locator
                .split(" seq ")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            out.entry(seq).or_default().push(r);
        }
    }
    out
}

#[derive(Default)]
struct Watch {
    events: Vec<HostEvent>,
    received: u32,
    /// Cancelled once this many reads arrived (the cable is pulled).
    pull_at: Option<(u32, CancellationToken)>,
}

impl Observer for Watch {
    fn event(&mut self, event: &HostEvent, _: Duration) {
        self.events.push(event.clone());
    }
    fn progress(&mut self, _: meterd_protocols::cradle::Phase, received: u32, _: u32) {
        self.received = received;
        if let Some((n, pull)) = &self.pull_at
            && received >= *n
        {
            pull.cancel();
        }
    }
}

async fn dock(
    store: &Arc<RedbStore>,
    sim: &mut SimulatedRecorder,
    baud: u32,
    watch: &mut Watch,
    sim_cancel: CancellationToken,
) -> (SessionReport, DockingEnd) {
    let (master, slave) = SerialStream::pair().unwrap();
    let opts = SessionOptions::new("pty", LineTiming::new(baud, Duration::from_millis(10)));
    let host = run_session(
        slave,
        store.clone() as Arc<dyn Store>,
        Arc::new(VeeConfig::default()),
        opts,
        CancellationToken::new(),
        watch,
    );
    let rec = async {
        let end = sim.serve(master, &sim_cancel).await;
        // The recorder leaves the cradle: its end of the pty closes.
        end
    };
    let (report, end) = tokio::join!(host, rec);
    (report.unwrap(), end)
}

/// Every read record the recorder sent must be in the store exactly once, with its value
/// and codes, or be a recorded skip.
fn assert_stored_exactly(store: &RedbStore, serial: &str, sent: &[ReadRecord]) {
    let stored = cradle_reads(store, serial);
    let txn = store.begin_read().unwrap();
    let mut skips = BTreeSet::new();
    for route in sent.iter().map(|r| r.route_id.clone()).collect::<BTreeSet<_>>() {
        for s in txn.route_skips(&route).unwrap() {
            if s.serial == serial {
                assert!(skips.insert(s.seq), "skip {} twice", s.seq);
            }
        }
    }
    let mut expected_reads = 0;
    for r in sent {
        match r.reading {
            Some(v) => {
                expected_reads += 1;
                let got = stored
                    .get(&r.seq)
                    .unwrap_or_else(|| panic!("read seq {} not stored", r.seq));
                assert_eq!(got.len(), 1, "read seq {} stored {} times", r.seq, got.len());
                let g = &got[0];
                assert_eq!(g.read.meter_id, r.meter_id);
                assert_eq!(g.read.value.micros(), v as i64 * 1_000_000, "seq {}", r.seq);
                if let Some(s) = &r.skip_code {
                    assert!(g.read.has_code(&format!("SC-{s}")));
                }
                for t in &r.trouble_codes {
                    assert!(
                        g.read.has_code(&format!("TC-{t}")),
                        "seq {} lost trouble code {t}",
                        r.seq
                    );
                }
                assert_eq!(g.read.reader.as_deref(), Some(serial));
            }
            None => assert!(skips.contains(&r.seq), "skip seq {} not recorded", r.seq),
        }
    }
    assert_eq!(
        stored.len(),
        expected_reads,
        "reads stored that the recorder never sent"
    );
    assert_eq!(stored.values().map(Vec::len).sum::<usize>(), expected_reads);
}

async fn full_cycle(fw: Firmware) {
    let _counts = FRAME_COUNTS.write().await;
    let (_dir, store) = town();
    let serial = format!("AR-{fw:?}");
    let mut sim = recorder(&serial, fw, 115_200, 0.0, RecorderData::default());
    {
        let mut txn = store.begin_write().unwrap();
        txn.assign_route("W02", Some(&serial)).unwrap();
        txn.commit().unwrap();
    }
    // Morning: nothing to unload; the assigned route goes in.
    let mut watch = Watch::default();
    let (morning, end) = dock(&store, &mut sim, 115_200, &mut watch, CancellationToken::new()).await;
    assert_eq!(end, DockingEnd::Bye);
    assert!(morning.finished.is_some(), "{morning:?}");
    assert_eq!(morning.routes_loaded, vec!["W02".to_string()]);
    assert_eq!(sim.data().routes.len(), 1);
    let route = &sim.data().routes[0];
    assert_eq!(route.meters.len(), 49, "active meters of W02 in walk order");
    assert!(route.meters.windows(2).all(|w| w[0].sequence < w[1].sequence));
    // The previous read is the meter's last stored read.
    let m0 = &route.meters[0];
    let last = store
        .begin_read()
        .unwrap()
        .meter_reads_before(&m0.meter_id, jiff::Timestamp::now(), 1)
        .unwrap();
    assert_eq!(m0.previous_read as i64 * 1_000_000, last[0].read.value.micros());
    assert!(m0.low_limit <= m0.high_limit || m0.high_limit < m0.previous_read);

    // The day out: the reader reads the route.
    let now = meterd::ingest::cradle::convert::local_civil_now(&jiff::tz::TimeZone::system());
    let taken = sim.read_loaded_routes(now + 60).unwrap();
    assert_eq!(taken, 49);
    let sent = sim.data().reads.clone();

    // Evening: unload, commit, clear, load again.
    let before = cradle_frames();
    let mut watch = Watch::default();
    let (evening, end) = dock(&store, &mut sim, 115_200, &mut watch, CancellationToken::new()).await;
    assert_eq!(end, DockingEnd::Bye);
    // Every record unloaded is accounted for in /metrics, by what became of it.
    let after = cradle_frames();
    let delta = |o: &str| after[o] - before[o];
    assert_eq!(
        delta("read") + delta("held") + delta("duplicate") + delta("skipped") + delta("quarantined"),
        sent.len() as u64,
        "{before:?} -> {after:?}"
    );
    assert_eq!(delta("read"), evening.accepted.validated, "{after:?}");
    assert_eq!(delta("held"), evening.accepted.flagged, "{after:?}");
    assert_eq!(delta("skipped"), evening.skips, "{after:?}");
    assert_eq!((delta("duplicate"), delta("quarantined")), (0, 0), "{after:?}");
    assert!(evening.finished.is_some(), "{evening:?}");
    assert_eq!(evening.cleared, Some(49));
    assert!(sim.data().reads.is_empty(), "recorder cleared");
    assert_stored_exactly(&store, &serial, &sent);
    let txn = store.begin_read().unwrap();
    assert_eq!(txn.cradle_watermark(&serial).unwrap(), Some(sent.last().unwrap().seq));
    // Every meter was read or skipped with a code: nothing unread in the cycle.
    let report = meterd::ingest::cradle::routes::unread(txn.as_ref(), "W02", jiff::Timestamp::now()).unwrap();
    assert_eq!(report.read + report.skipped, 49, "{report:?}");
    assert!(report.unread.is_empty());
    // Events came in protocol order: CLEAR only after the unload.
    let pos = |f: &dyn Fn(&HostEvent) -> bool| watch.events.iter().position(f).unwrap();
    assert!(pos(&|e| matches!(e, HostEvent::UnloadComplete { .. })) < pos(&|e| matches!(e, HostEvent::Cleared { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_cycle_firmware_1() {
    full_cycle(Firmware::V1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_cycle_firmware_2() {
    full_cycle(Firmware::V2).await;
}

/// A recorder holding `rounds` walks of route `route` (built from the store).
async fn loaded_recorder(
    store: &Arc<RedbStore>,
    serial: &str,
    fw: Firmware,
    baud: u32,
    corrupt: f64,
    route: &str,
    rounds: usize,
) -> SimulatedRecorder {
    let (r, _) = meterd::ingest::cradle::convert::build_route(
        store.begin_read().unwrap().as_ref(),
        &VeeConfig::default(),
        route,
        jiff::Timestamp::now(),
    )
    .unwrap();
    let mut data = RecorderData {
        routes: vec![r],
        ..RecorderData::default()
    };
    let mut rng = meterd_protocols::cradle::sim::XorShift64::new(99);
    let now = meterd::ingest::cradle::convert::local_civil_now(&jiff::tz::TimeZone::system());
    for i in 0..rounds {
        meterd_protocols::cradle::sim::read_routes(&mut data, &mut rng, now - 86_400 * (rounds - i) as i64).unwrap();
    }
    recorder(serial, fw, baud, corrupt, data)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_percent_corruption_stores_no_corrupted_read() {
    let _counts = FRAME_COUNTS.read().await;
    let (_dir, store) = town();
    let mut sim = loaded_recorder(&store, "NOISY-1", Firmware::V2, 460_800, 0.01, "E01", 5).await;
    let sent = sim.data().reads.clone();
    assert_eq!(sent.len(), 200);
    let mut watch = Watch::default();
    let (report, end) = dock(&store, &mut sim, 460_800, &mut watch, CancellationToken::new()).await;
    assert_eq!(end, DockingEnd::Bye);
    assert!(report.finished.is_some(), "{report:?}");
    assert!(
        sim.corrupted() > 50,
        "the line really was noisy: {} bytes",
        sim.corrupted()
    );
    let link = report.finished.as_ref().unwrap().link;
    assert!(link.frames_rejected > 0, "{link:?}");
    assert_eq!(report.cleared, Some(200));
    assert_stored_exactly(&store, "NOISY-1", &sent);
    assert!(store.begin_read().unwrap().quarantined().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unplug_mid_unload_then_redock_stores_every_read_once() {
    let _counts = FRAME_COUNTS.read().await;
    let (_dir, store) = town();
    let mut sim = loaded_recorder(&store, "PULL-1", Firmware::V2, 230_400, 0.0, "E01", 15).await;
    let sent = sim.data().reads.clone();
    assert_eq!(sent.len(), 600);
    let pull = CancellationToken::new();
    let mut watch = Watch {
        pull_at: Some((150, pull.clone())),
        ..Watch::default()
    };
    let (first, end) = dock(&store, &mut sim, 230_400, &mut watch, pull).await;
    assert_eq!(end, DockingEnd::Cancelled);
    assert!(first.finished.is_none());
    assert_eq!(first.failure.as_deref(), Some("link lost"), "{first:?}");
    assert_eq!(first.cleared, None);
    let partial = cradle_reads(&store, "PULL-1").len();
    assert!(
        (100..550).contains(&partial),
        "{partial} reads committed before the pull"
    );
    assert_eq!(sim.data().reads.len(), 600, "the recorder was not cleared");
    let mark = store.begin_read().unwrap().cradle_watermark("PULL-1").unwrap().unwrap();
    assert!(
        sent.iter()
            .filter(|r| r.seq <= mark)
            .all(|r| r.reading.is_none() || cradle_reads(&store, "PULL-1").contains_key(&r.seq))
    );

    let mut watch = Watch::default();
    let (second, end) = dock(&store, &mut sim, 230_400, &mut watch, CancellationToken::new()).await;
    assert_eq!(end, DockingEnd::Bye);
    assert!(second.finished.is_some(), "{second:?}");
    assert_eq!(second.accepted.duplicates_skipped, 0);
    assert!(
        watch.received < 600,
        "the unload resumed after the watermark ({} reads resent)",
        watch.received
    );
    assert_eq!(second.cleared, Some(600));
    assert!(sim.data().reads.is_empty());
    assert_stored_exactly(&store, "PULL-1", &sent);
}

/// Rebuilds the host→recorder message stream from frames (offsets make retransmissions
/// overlap, so only the new tail of each DATA frame is appended).
#[derive(Default)]
struct StreamTap {
    frames: FrameDecoder,
    stream: Vec<u8>,
    parsed: usize,
}

impl StreamTap {
    fn push(&mut self, bytes: &[u8], fw: Firmware) -> Vec<Message> {
        self.frames.push(bytes);
        while let Some(f) = self.frames.next_frame() {
            let Ok(f) = f else { continue };
            match f.kind {
                FrameKind::Sync => {
                    self.stream.clear();
                    self.parsed = 0;
                }
                FrameKind::Data if (f.seq as usize) <= self.stream.len() => {
                    let skip = self.stream.len() - f.seq as usize;
                    if skip < f.payload.len() {
                        self.stream.extend_from_slice(&f.payload[skip..]);
                    }
                }
                _ => {}
            }
        }
        let mut out = Vec::new();
        while self.stream.len() >= self.parsed + 2 {
            let len = u16::from_le_bytes([self.stream[self.parsed], self.stream[self.parsed + 1]]) as usize;
            if self.stream.len() < self.parsed + 2 + len {
                break;
            }
            out.push(Message::decode(&self.stream[self.parsed + 2..self.parsed + 2 + len], fw).unwrap());
            self.parsed += 2 + len;
        }
        out
    }
}

/// Bytes that passed the tap: direction and bytes.
type Transcript = Vec<(&'static str, Vec<u8>)>;
/// A CLEAR seen on the wire: its `through`, the store's watermark and cradle reads then.
type ClearSeen = (Option<u32>, Option<u32>, usize);

/// A tap between two pty pairs records the bytes both ways; when CLEAR passes it, the store
/// must already hold every read it covers (checked before the bytes reach the recorder).
async fn clear_after_commit(fw: Firmware) {
    let (_dir, store) = town();
    let serial = "TAP-1";
    let mut sim = loaded_recorder(&store, serial, fw, 115_200, 0.0, "G01", 4).await;
    let sent = sim.data().reads.clone();
    let (host_master, host_slave) = SerialStream::pair().unwrap();
    let (rec_master, rec_slave) = SerialStream::pair().unwrap();
    let transcript: Arc<Mutex<Transcript>> = Arc::default();
    let clears: Arc<Mutex<Vec<ClearSeen>>> = Arc::default();
    let stop = CancellationToken::new();
    let tap = {
        let (transcript, clears, store, stop) = (transcript.clone(), clears.clone(), store.clone(), stop.clone());
        tokio::spawn(async move {
            let (mut hr, mut hw) = tokio::io::split(host_master);
            let (mut rr, mut rw) = tokio::io::split(rec_master);
            let mut tap = StreamTap::default();
            let (mut b1, mut b2) = (vec![0u8; 4096], vec![0u8; 4096]);
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    n = hr.read(&mut b1) => {
                        let Ok(n) = n else { break };
                        if n == 0 { break; }
                        for m in tap.push(&b1[..n], fw) {
                            if let Message::Clear { through } = m {
                                let txn = store.begin_read().unwrap();
                                let mark = txn.cradle_watermark(serial).unwrap();
                                let stored = cradle_reads(&store, serial).len();
                                clears.lock().unwrap().push((through, mark, stored));
                            }
                        }
                        transcript.lock().unwrap().push(("H>R", b1[..n].to_vec()));
                        if rw.write_all(&b1[..n]).await.is_err() { break; }
                    }
                    n = rr.read(&mut b2) => {
                        let Ok(n) = n else { break };
                        if n == 0 { break; }
                        transcript.lock().unwrap().push(("R>H", b2[..n].to_vec()));
                        if hw.write_all(&b2[..n]).await.is_err() { break; }
                    }
                }
            }
        })
    };
    let opts = SessionOptions::new("tap", LineTiming::new(115_200, Duration::from_millis(10)));
    let mut watch = Watch::default();
    let host = run_session(
        host_slave,
        store.clone() as Arc<dyn Store>,
        Arc::new(VeeConfig::default()),
        opts,
        CancellationToken::new(),
        &mut watch,
    );
    let never = CancellationToken::new();
    let (report, end) = tokio::join!(host, sim.serve(rec_slave, &never));
    stop.cancel();
    tap.await.unwrap();
    let report = report.unwrap();
    assert_eq!(end, DockingEnd::Bye);
    assert!(report.finished.is_some(), "{report:?}");
    let clears = clears.lock().unwrap().clone();
    assert_eq!(clears.len(), 1, "exactly one CLEAR on the wire: {clears:?}");
    let (through, mark, stored) = clears[0];
    let last = sent.last().unwrap().seq;
    assert_eq!(through, Some(last));
    assert_eq!(
        mark,
        Some(last),
        "the watermark was committed before CLEAR left the host"
    );
    assert_eq!(
        stored,
        sent.iter().filter(|r| r.reading.is_some()).count(),
        "every covered read was stored before CLEAR"
    );
    let t = transcript.lock().unwrap();
    assert!(t.iter().any(|(d, _)| *d == "R>H") && t.iter().any(|(d, _)| *d == "H>R"));
    assert_stored_exactly(&store, serial, &sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_is_never_sent_before_commit_firmware_1() {
    let _counts = FRAME_COUNTS.read().await;
    clear_after_commit(Firmware::V1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_is_never_sent_before_commit_firmware_2() {
    let _counts = FRAME_COUNTS.read().await;
    clear_after_commit(Firmware::V2).await;
}

/// The daemon with two cradles at once: both recorders unloaded, cleared and loaded with
/// different routes; shutdown is prompt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_docks_two_cradles_at_once() {
    let _counts = FRAME_COUNTS.read().await;
    let (dir, store) = town();
    let mut sims = [
        loaded_recorder(&store, "DAEMON-1", Firmware::V1, 115_200, 0.0, "W01", 1).await,
        loaded_recorder(&store, "DAEMON-2", Firmware::V2, 115_200, 0.0, "W03", 2).await,
    ];
    let sent: Vec<Vec<ReadRecord>> = sims.iter().map(|s| s.data().reads.clone()).collect();
    let paths = [dir.path().join("cradle-1"), dir.path().join("cradle-2")];
    let mut cradles: Vec<PtyCradle> = paths.iter().map(|p| PtyCradle::open(Some(p)).unwrap()).collect();
    let config = meterd::config::Config {
        cradle: paths
            .iter()
            .map(|p| CradleConfig {
                port: p.clone(),
                baud: 115_200,
                turnaround_ms: 10,
            })
            .collect(),
        ..Default::default()
    };
    let shared = meterd::daemon::Shared {
        config: Arc::new(config),
        data_dir: dir.path().to_owned(),
        store: store.clone(),
    };
    let shutdown = CancellationToken::new();
    let daemon = {
        let s = shutdown.clone();
        tokio::spawn(meterd::daemon::run_with(shared, async move { s.cancelled().await }))
    };
    let never = CancellationToken::new();
    let [s1, s2] = &mut sims;
    let [c1, c2] = &mut cradles[..] else { unreachable!() };
    let serve = |c: &'static str| move |_: &SimulatedRecorder, end: DockingEnd| eprintln!("{c}: {end:?}");
    let (mut log1, mut log2) = (serve("cradle-1"), serve("cradle-2"));
    let (a, b) = tokio::join!(
        meterd::simulate::recorder::serve_pty(c1, s1, 1, Duration::ZERO, &never, &mut log1),
        meterd::simulate::recorder::serve_pty(c2, s2, 1, Duration::ZERO, &never, &mut log2),
    );
    assert_eq!((a.unwrap(), b.unwrap()), (1, 1));
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), daemon)
        .await
        .expect("prompt shutdown")
        .unwrap()
        .unwrap();
    for (sim, sent) in sims.iter().zip(&sent) {
        // Cleared of what it brought; the reader then walked the new route at once.
        let last_sent = sent.last().unwrap().seq;
        assert!(
            sim.data().reads.iter().all(|r| r.seq > last_sent),
            "{} cleared",
            sim.config().serial
        );
        assert_eq!(sim.data().routes.len(), 1, "{} got a route", sim.config().serial);
        assert_stored_exactly(&store, &sim.config().serial, sent);
    }
    let r1 = &sims[0].data().routes[0].id;
    let r2 = &sims[1].data().routes[0].id;
    assert_ne!(r1, r2, "two recorders never get the same unassigned route");
    let loads = store.begin_read().unwrap().route_loads().unwrap();
    assert_eq!(loads.iter().filter(|l| l.is_loaded()).count(), 2);
}

/// The daemon waits for a cradle port that is not there yet (reopen with backoff), docks the
/// recorder when it appears, and on shutdown mid-unload stops promptly without CLEAR: the
/// committed reads stay, the recorder keeps everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_reopens_absent_port_and_stops_mid_unload_without_clear() {
    let _counts = FRAME_COUNTS.read().await;
    let (dir, store) = town();
    let path = dir.path().join("cradle-late");
    let config = meterd::config::Config {
        cradle: vec![CradleConfig {
            port: path.clone(),
            baud: 19_200,
            turnaround_ms: 10,
        }],
        ..Default::default()
    };
    let shared = meterd::daemon::Shared {
        config: Arc::new(config),
        data_dir: dir.path().to_owned(),
        store: store.clone(),
    };
    let shutdown = CancellationToken::new();
    let daemon = {
        let s = shutdown.clone();
        tokio::spawn(meterd::daemon::run_with(shared, async move { s.cancelled().await }))
    };
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(!daemon.is_finished(), "an absent port is not fatal");

    let mut sim = loaded_recorder(&store, "LATE-1", Firmware::V2, 19_200, 0.0, "E01", 15).await;
    let sent = sim.data().reads.clone();
    let mut cradle = PtyCradle::open(Some(&path)).unwrap();
    let sim_stop = CancellationToken::new();
    let recorder = {
        let stop = sim_stop.clone();
        tokio::spawn(async move {
            let served =
                meterd::simulate::recorder::serve_pty(&mut cradle, &mut sim, 1, Duration::ZERO, &stop, &mut |_, _| {})
                    .await;
            (served, sim, cradle)
        })
    };
    let start = std::time::Instant::now();
    while cradle_reads(&store, "LATE-1").len() < 40 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the daemon never docked the late cradle"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), daemon)
        .await
        .expect("prompt shutdown")
        .unwrap()
        .unwrap();
    sim_stop.cancel();
    let (served, sim, _cradle) = recorder.await.unwrap();
    served.unwrap();
    assert!(
        !sim.events
            .iter()
            .any(|e| matches!(e, meterd_protocols::cradle::RecorderEvent::Cleared { .. })),
        "no CLEAR: {:?}",
        sim.events
    );
    assert_eq!(sim.data().reads.len(), sent.len(), "the recorder keeps every read");
    let stored = cradle_reads(&store, "LATE-1");
    assert!(stored.len() < sent.len(), "shutdown came mid-unload");
    assert!(stored.values().all(|v| v.len() == 1));
    let mark = store
        .begin_read()
        .unwrap()
        .cradle_watermark("LATE-1")
        .unwrap()
        .expect("watermark committed with the reads");
    let covered: Vec<&ReadRecord> = sent.iter().filter(|r| r.seq <= mark && r.reading.is_some()).collect();
    assert_eq!(
        covered.len(),
        stored.len(),
        "the watermark covers exactly the stored reads"
    );
}

/// A recorder left in its cradle after a finished session is not served again (no second
/// CLEAR, no reload of another route) until it has left the cradle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_does_not_serve_a_recorder_again_until_it_left_the_cradle() {
    let _counts = FRAME_COUNTS.read().await;
    let (dir, store) = town();
    let path = dir.path().join("cradle-stay");
    let config = meterd::config::Config {
        cradle: vec![CradleConfig {
            port: path.clone(),
            baud: 115_200,
            turnaround_ms: 10,
        }],
        ..Default::default()
    };
    let mut sim = loaded_recorder(&store, "STAY-1", Firmware::V2, 115_200, 0.0, "G02", 1).await;
    let sent = sim.data().reads.clone();
    let mut cradle = PtyCradle::open(Some(&path)).unwrap();
    let shared = meterd::daemon::Shared {
        config: Arc::new(config),
        data_dir: dir.path().to_owned(),
        store: store.clone(),
    };
    let shutdown = CancellationToken::new();
    let daemon = {
        let s = shutdown.clone();
        tokio::spawn(meterd::daemon::run_with(shared, async move { s.cancelled().await }))
    };
    // The recorder answers every docking at once (it never leaves the cradle): three dockings.
    let never = CancellationToken::new();
    let served = tokio::time::timeout(
        Duration::from_secs(60),
        meterd::simulate::recorder::serve_pty(&mut cradle, &mut sim, 3, Duration::ZERO, &never, &mut |_, _| {}),
    )
    .await
    .expect("three dockings")
    .unwrap();
    assert_eq!(served, 3);
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), daemon)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let cleared = sim
        .events
        .iter()
        .filter(|e| matches!(e, meterd_protocols::cradle::RecorderEvent::Cleared { .. }))
        .count();
    assert_eq!(cleared, 1, "served once: {:?}", sim.events);
    let loads: Vec<_> = store
        .begin_read()
        .unwrap()
        .route_loads()
        .unwrap()
        .into_iter()
        .filter(|l| l.serial == "STAY-1")
        .collect();
    assert_eq!(loads.len(), 1, "one route load: {loads:?}");
    assert_stored_exactly(&store, "STAY-1", &sent);
    // What the reader took after the first session is still on the recorder.
    assert!(!sim.data().reads.is_empty());
}

/// The captured sessions of `firmware-fixtures/handheld/fw{1,2}` replayed through the tokio
/// driver and the real store over a pty pair: the recorder's bytes go in at their captured
/// instants. Up to CLEAR the host must say exactly what the captured host said, store exactly
/// the expected reads, and send CLEAR only once they are committed. (After CLEAR the capture
/// loads a route built by the protocol tests, which a store cannot reproduce: not compared.)
async fn replay_fixture(fw: u8) {
    use meterd_protocols::cradle::sim::{Direction, Entry, Transcript};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("firmware-fixtures/handheld/fw{fw}"));
    let transcript = Transcript::parse(&std::fs::read_to_string(dir.join("session.transcript")).unwrap()).unwrap();
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("session.expected.json")).unwrap()).unwrap();
    let serial = expected["device_serial"].as_str().unwrap().to_owned();
    let reads: Vec<ReadRecord> = serde_json::from_value(expected["reads_unloaded"].clone()).unwrap();
    let store_dir = tempfile::tempdir().unwrap();
    let store = Arc::new(RedbStore::open_dir(store_dir.path()).unwrap());

    let (master, slave) = SerialStream::pair().unwrap();
    let mut opts = SessionOptions::new("replay", transcript.timing);
    opts.nonce = Some(transcript.nonce);
    let mut watch = Watch::default();
    let host = run_session(
        slave,
        store.clone() as Arc<dyn Store>,
        Arc::new(VeeConfig::default()),
        opts,
        CancellationToken::new(),
        &mut watch,
    );
    let (mut rd, mut wr) = tokio::io::split(master);
    let start = tokio::time::Instant::now();
    let recorder_bytes: Vec<(Duration, Vec<u8>)> = transcript
        .entries
        .iter()
        .filter_map(|e| match e {
            Entry::Bytes {
                at,
                dir: Direction::RecorderToHost,
                bytes,
            } => Some((*at, bytes.clone())),
            _ => None,
        })
        .collect();
    let heard = Arc::new(Mutex::new(StreamTap::default()));
    let messages = Arc::new(Mutex::new(Vec::new()));
    let listen = {
        let (heard, messages) = (heard.clone(), messages.clone());
        let fw = if fw == 1 { Firmware::V1 } else { Firmware::V2 };
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok(n) = rd.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                let got = heard.lock().unwrap().push(&buf[..n], fw);
                messages.lock().unwrap().extend(got);
            }
        })
    };
    let feed = async move {
        for (at, bytes) in recorder_bytes {
            tokio::time::sleep_until(start + at).await;
            if wr.write_all(&bytes).await.is_err() {
                break;
            }
        }
        wr
    };
    let (report, wr) = tokio::join!(tokio::time::timeout(Duration::from_secs(60), host), feed);
    drop(wr);
    // Let the listener read what the host wrote last (its CLEAR) before it stops: aborting it at
    // once lost that on a loaded machine. It ends when the host closes its side of the pair.
    let mut listen = listen;
    if tokio::time::timeout(Duration::from_secs(10), &mut listen)
        .await
        .is_err()
    {
        listen.abort();
    }
    let _ = report.expect("session ends").unwrap();

    // The host's messages up to CLEAR, as the captured host sent them.
    let mut captured_tap = StreamTap::default();
    let mut captured = Vec::new();
    for e in &transcript.entries {
        if let Entry::Bytes {
            dir: Direction::HostToRecorder,
            bytes,
            ..
        } = e
        {
            captured.extend(captured_tap.push(bytes, transcript.firmware));
        }
    }
    let upto_clear = |m: &[Message]| {
        m.iter()
            .position(|m| matches!(m, Message::Clear { .. }))
            .map(|i| m[..=i].to_vec())
    };
    let ours = messages.lock().unwrap().clone();
    assert_eq!(
        upto_clear(&ours).expect("our host sent CLEAR"),
        upto_clear(&captured).unwrap()
    );
    assert!(
        watch.events.iter().any(|e| matches!(e, HostEvent::Cleared { .. })),
        "CLEARED accepted: {:?}",
        watch.events
    );
    // Exactly the expected reads, each once; the watermark is the captured CLEAR's.
    assert_stored_exactly(&store, &serial, &reads);
    let mark = store.begin_read().unwrap().cradle_watermark(&serial).unwrap();
    assert_eq!(mark, expected["cleared_through"].as_u64().map(|v| v as u32));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captured_firmware_1_session_replays_through_the_driver() {
    let _counts = FRAME_COUNTS.read().await;
    replay_fixture(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captured_firmware_2_session_replays_through_the_driver() {
    let _counts = FRAME_COUNTS.read().await;
    replay_fixture(2).await;
}
