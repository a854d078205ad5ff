//! Session tests over the virtual line: both firmwares, corruption, unplugging, the commit
//! rule, efficiency in virtual time, and the captured transcripts in `firmware-fixtures/`.

use std::path::PathBuf;
use std::time::Duration;

use super::frame::{FrameDecoder, FrameKind};
use super::host::{HostConfig, HostEvent, Phase};
use super::link::LineTiming;
use super::message::{Firmware, Message};
use super::record::{ReadRecord, Route};
use super::recorder::{Recorder, RecorderConfig, RecorderData};
use super::sim::{
    Direction, Entry, HostApp, LineConfig, Simulation, Transcript, XorShift64, read_routes, replay, sample_route,
};

const CLOCK: i64 = 1_795_339_805; // 2026-11-22 09:30:05 local
const LIMIT: Duration = Duration::from_secs(3600);

fn timing() -> LineTiming {
    LineTiming::new(115_200, Duration::from_millis(10))
}

fn line(corrupt_rate: f64, seed: u64) -> LineConfig {
    LineConfig {
        timing: timing(),
        corrupt_rate,
        seed,
    }
}

/// A recorder that already walked `route` (so it holds one read per meter).
fn recorder_with_reads(fw: Firmware, route: &Route, seed: u64) -> (Recorder, Vec<ReadRecord>) {
    let mut data = RecorderData {
        routes: vec![route.clone()],
        next_seq: 1000,
        ..Default::default()
    };
    read_routes(&mut data, &mut XorShift64::new(seed), CLOCK - 86_400).unwrap();
    let reads = data.reads.clone();
    (Recorder::new(RecorderConfig::new("HH-0042", fw, timing()), data), reads)
}

fn host_config(nonce: u32) -> HostConfig {
    HostConfig::new(timing(), nonce, CLOCK)
}

/// Rebuilds the message stream from DATA frames (offsets, re-cut retransmissions).
#[derive(Default)]
struct Reassembler {
    expected: u32,
    rx: Vec<u8>,
}

impl Reassembler {
    fn push(&mut self, f: &super::Frame) -> Vec<Vec<u8>> {
        let end = f.seq + f.payload.len() as u32;
        if f.kind != FrameKind::Data || f.seq > self.expected || end <= self.expected {
            return Vec::new();
        }
        self.rx
            .extend_from_slice(&f.payload[(self.expected - f.seq) as usize..]);
        self.expected = end;
        let mut out = Vec::new();
        while self.rx.len() >= 2 {
            let len = usize::from(u16::from_le_bytes([self.rx[0], self.rx[1]]));
            if self.rx.len() < 2 + len {
                break;
            }
            out.push(self.rx[2..2 + len].to_vec());
            self.rx.drain(..2 + len);
        }
        out
    }
}

/// Session messages the host wrote, with the time the frame completing each was written.
fn host_messages(t: &Transcript) -> Vec<(Duration, Message)> {
    let mut dec = FrameDecoder::new();
    let mut stream = Reassembler::default();
    let mut out = Vec::new();
    for e in &t.entries {
        if let Entry::Bytes {
            at,
            dir: Direction::HostToRecorder,
            bytes,
        } = e
        {
            dec.push(bytes);
            while let Some(f) = dec.next_frame() {
                let f = f.expect("host frames are sent intact");
                if f.kind == FrameKind::Sync && f.seq == 0 && stream.expected > 0 {
                    // A new docking: the stream restarts at offset 0.
                    stream = Reassembler::default();
                }
                for m in stream.push(&f) {
                    out.push((*at, Message::decode(&m, t.firmware).unwrap()));
                }
            }
        }
    }
    out
}

/// Every CLEAR in the transcript comes after a COMMIT covering it (or a watermark committed in
/// an earlier session).
fn assert_clear_after_commit(t: &Transcript, earlier: Option<u32>) {
    let messages = host_messages(t);
    let mut clears = messages.iter().filter_map(|(at, m)| match m {
        Message::Clear { through } => Some((*at, *through)),
        _ => None,
    });
    for (at, through) in clears.by_ref() {
        let committed = t
            .entries
            .iter()
            .filter_map(|e| match e {
                Entry::Commit { at: c, through } if *c <= at => Some(*through),
                _ => None,
            })
            .max()
            .max(earlier);
        if let Some(through) = through {
            assert!(
                committed.is_some_and(|c| c >= through),
                "CLEAR through {through} at {at:?}, committed {committed:?}"
            );
        }
    }
}

fn assert_store_holds_exactly(app: &HostApp, serial: &str, reads: &[ReadRecord]) {
    assert_eq!(app.store.duplicates, 0, "a read was offered twice");
    let stored: Vec<&ReadRecord> = app
        .store
        .reads
        .iter()
        .filter(|((s, _), _)| s == serial)
        .map(|(_, r)| r)
        .collect();
    assert_eq!(stored.len(), reads.len());
    for (a, b) in stored.iter().zip(reads) {
        assert_eq!(*a, b);
    }
}

#[test]
fn full_load_read_unload_cycle_for_both_firmwares() {
    for fw in [Firmware::V1, Firmware::V2] {
        let mut rng = XorShift64::new(7);
        let monday = sample_route("R01", 40, &mut rng);
        let tuesday = sample_route("R02", 35, &mut rng);
        let recorder = Recorder::new(RecorderConfig::new("HH-0042", fw, timing()), RecorderData::default());

        // Morning: an empty recorder gets its route.
        let mut sim = Simulation::new(
            line(0.0, 1),
            host_config(1),
            recorder,
            HostApp::new(vec![monday.clone()]),
        );
        assert!(sim.run(LIMIT));
        assert!(
            matches!(sim.app.events.last(), Some((_, HostEvent::Finished(_)))),
            "{fw:?}: {:?}",
            sim.app.events.last()
        );
        assert_eq!(
            sim.recorder.data().routes,
            vec![monday.clone()],
            "{fw:?}: route arrives intact"
        );
        let set_to = sim.app.events.iter().find_map(|(t, e)| match e {
            HostEvent::ClockSet { now, .. } => Some((*t, *now)),
            _ => None,
        });
        let (at, set_to) = set_to.expect("clock set");
        assert_eq!(set_to, CLOCK + at.as_secs() as i64);
        assert_eq!(sim.recorder.data().clock, Some(set_to));

        // The day's walk.
        read_routes(sim.recorder.data_mut(), &mut XorShift64::new(3), CLOCK + 3600).unwrap();
        let taken = sim.recorder.data().reads.clone();
        assert_eq!(taken.len(), 40);

        // Evening: unload, commit, clear, load tomorrow's route.
        sim.app.routes = vec![tuesday.clone()];
        sim.redock();
        assert!(sim.run(LIMIT));
        let events: Vec<&HostEvent> = sim.app.events.iter().map(|(_, e)| e).collect();
        assert!(
            events
                .iter()
                .any(|e| matches!(e, HostEvent::UnloadComplete { received: 40, .. })),
            "{fw:?}"
        );
        assert!(
            events.iter().any(|e| matches!(
                e,
                HostEvent::Cleared {
                    deleted: 40,
                    remaining: 0
                }
            )),
            "{fw:?}"
        );
        assert!(
            matches!(events.last(), Some(HostEvent::Finished(s)) if s.routes_loaded == ["R02"]),
            "{fw:?}"
        );
        assert_store_holds_exactly(&sim.app, "HH-0042", &taken);
        assert!(sim.recorder.data().reads.is_empty());
        assert_eq!(sim.recorder.data().routes, vec![tuesday]);
        assert_clear_after_commit(&sim.transcript, None);
    }
}

#[test]
fn several_routes_load_with_their_trouble_codes() {
    let mut rng = XorShift64::new(12);
    let routes = vec![sample_route("R21", 30, &mut rng), sample_route("R22", 25, &mut rng)];
    for fw in [Firmware::V1, Firmware::V2] {
        let recorder = Recorder::new(RecorderConfig::new("HH-7", fw, timing()), RecorderData::default());
        let mut sim = Simulation::new(line(0.0, 1), host_config(80), recorder, HostApp::new(routes.clone()));
        assert!(sim.run(LIMIT));
        assert_eq!(sim.recorder.data().routes, routes, "{fw:?}");
        let loaded: Vec<&HostEvent> = sim
            .app
            .events
            .iter()
            .map(|(_, e)| e)
            .filter(|e| matches!(e, HostEvent::RouteLoaded { .. }))
            .collect();
        assert_eq!(loaded.len(), 2);
        // The next docking reports them in HELLO.
        sim.redock();
        sim.run_until(LIMIT, |s| s.host.device().is_some());
        assert_eq!(sim.host.device().unwrap().routes, ["R21", "R22"]);
    }
}

#[test]
fn corruptor_alters_about_the_requested_share_of_bytes() {
    let mut c = super::sim::Corruptor::new(0.01, 5);
    let original = vec![0x55u8; 100_000];
    let mut bytes = original.clone();
    c.apply(&mut bytes);
    let changed = bytes.iter().zip(&original).filter(|(a, b)| a != b).count() as u64;
    assert_eq!(changed, c.corrupted);
    assert!((800..1200).contains(&changed), "{changed}");
}

#[test]
fn one_percent_corruption_loses_nothing_and_accepts_no_damaged_read() {
    for fw in [Firmware::V1, Firmware::V2] {
        let route = sample_route("R07", 300, &mut XorShift64::new(11));
        let (recorder, taken) = recorder_with_reads(fw, &route, 5);
        let mut sim = Simulation::new(
            line(0.01, 99),
            host_config(9),
            recorder,
            HostApp::new(vec![route.clone()]),
        );
        assert!(sim.run(LIMIT), "{fw:?}: session did not end");
        assert!(
            matches!(sim.app.events.last(), Some((_, HostEvent::Finished(_)))),
            "{fw:?}: {:?}",
            sim.app.events.last()
        );
        assert!(
            sim.line.corrupted() > 100,
            "{fw:?}: the line did corrupt bytes ({})",
            sim.line.corrupted()
        );
        let stats = sim.host.stats();
        assert!(stats.frames_rejected > 0, "{fw:?}: {stats:?}");
        assert_store_holds_exactly(&sim.app, "HH-0042", &taken);
        assert_eq!(sim.recorder.data().routes, vec![route], "{fw:?}: loaded route intact");
        assert_clear_after_commit(&sim.transcript, None);
    }
}

#[test]
fn unplugged_mid_unload_then_redocked_stores_every_read_exactly_once() {
    for fw in [Firmware::V1, Firmware::V2] {
        let route = sample_route("R03", 400, &mut XorShift64::new(2));
        let (recorder, taken) = recorder_with_reads(fw, &route, 8);
        let mut sim = Simulation::new(
            line(0.0, 3),
            host_config(20),
            recorder,
            HostApp::new(vec![route.clone()]),
        );
        sim.run_until(LIMIT, |s| s.app.store.reads.len() >= 150);
        assert_eq!(sim.host.phase(), Phase::Unloading);
        sim.unplug();
        assert!(matches!(sim.app.events.last(), Some((_, HostEvent::Failed(_)))));
        assert_eq!(
            sim.recorder.data().reads,
            taken,
            "{fw:?}: nothing cleared without a complete unload"
        );
        let partial = sim.app.store.reads.len();
        assert!((150..400).contains(&partial));
        let watermark = sim.app.store.committed_through("HH-0042");

        sim.redock();
        assert!(sim.run(LIMIT));
        assert!(
            matches!(sim.app.events.last(), Some((_, HostEvent::Finished(_)))),
            "{fw:?}"
        );
        assert_store_holds_exactly(&sim.app, "HH-0042", &taken);
        assert!(sim.recorder.data().reads.is_empty());
        // The second session asked only for what was missing.
        let resumed = sim.recorder_events.iter().rev().find_map(|(_, e)| match e {
            super::RecorderEvent::UnloadStarted { after, reads } => Some((*after, *reads)),
            _ => None,
        });
        assert_eq!(resumed, Some((watermark, (400 - partial) as u32)), "{fw:?}");
        assert_clear_after_commit(&sim.transcript, None);
    }
}

#[test]
fn unplugged_after_commit_before_clear_sends_nothing_twice() {
    let route = sample_route("R04", 60, &mut XorShift64::new(4));
    let (recorder, taken) = recorder_with_reads(Firmware::V2, &route, 4);
    let mut app = HostApp::new(vec![route]);
    app.hold_commits = true;
    let mut sim = Simulation::new(line(0.0, 3), host_config(30), recorder, app);
    sim.run_until(LIMIT, |s| s.host.phase() == Phase::AwaitCommit);
    sim.commit_held();
    assert_eq!(sim.host.phase(), Phase::Clearing);
    sim.unplug(); // CLEAR was written but the cable went first
    assert_eq!(sim.recorder.data().reads.len(), 60);
    let watermark = sim.app.store.committed_through("HH-0042");
    sim.app.hold_commits = false;
    sim.redock();
    assert!(sim.run(LIMIT));
    assert_store_holds_exactly(&sim.app, "HH-0042", &taken);
    assert!(sim.recorder.data().reads.is_empty());
    assert_clear_after_commit(&sim.transcript, watermark);
}

#[test]
fn clear_is_never_sent_before_the_commit() {
    let route = sample_route("R05", 80, &mut XorShift64::new(5));
    let (recorder, taken) = recorder_with_reads(Firmware::V2, &route, 6);
    let mut app = HostApp::new(vec![route]);
    app.hold_commits = true;
    let mut sim = Simulation::new(line(0.0, 3), host_config(40), recorder, app);
    sim.run_until(LIMIT, |s| s.host.phase() == Phase::AwaitCommit);
    // However long the store takes, nothing moves and no CLEAR goes out.
    let quiet = sim.now;
    while sim.step() {}
    assert_eq!(sim.host.phase(), Phase::AwaitCommit);
    assert!(
        host_messages(&sim.transcript)
            .iter()
            .all(|(_, m)| !matches!(m, Message::Clear { .. }))
    );
    assert_eq!(sim.recorder.data().reads.len(), 80);
    assert!(sim.now >= quiet);

    // Committing part of the reads is not enough either.
    let first = taken[0].seq;
    sim.host.committed(first).unwrap();
    while sim.step() {}
    assert!(
        host_messages(&sim.transcript)
            .iter()
            .all(|(_, m)| !matches!(m, Message::Clear { .. }))
    );

    sim.commit_held();
    assert!(sim.run(LIMIT));
    let clears: Vec<_> = host_messages(&sim.transcript)
        .into_iter()
        .filter(|(_, m)| matches!(m, Message::Clear { .. }))
        .collect();
    assert_eq!(clears.len(), 1);
    assert_eq!(
        clears[0].1,
        Message::Clear {
            through: taken.last().map(|r| r.seq)
        }
    );
    assert_clear_after_commit(&sim.transcript, None);
}

#[test]
fn commands_at_the_wrong_time_are_refused() {
    let route = sample_route("R06", 5, &mut XorShift64::new(6));
    let (recorder, _) = recorder_with_reads(Firmware::V1, &route, 6);
    let mut app = HostApp::new(vec![]);
    app.hold_commits = true;
    let mut sim = Simulation::new(line(0.0, 3), host_config(50), recorder, app);
    assert!(sim.host.committed(1000).is_err(), "nothing delivered yet");
    assert!(sim.host.unload(None).is_err(), "no HELLO yet");
    sim.run_until(LIMIT, |s| s.host.phase() == Phase::AwaitCommit);
    assert!(sim.host.unload(None).is_err(), "unload runs once");
    assert!(sim.host.committed(1005).is_err(), "read 1005 was never delivered");
    assert!(sim.host.load(vec![]).is_err(), "routes already given");
    let too_big = sample_route("BIG", 5001, &mut XorShift64::new(1));
    let mut manual = HostApp::new(vec![]);
    manual.load_on_dock = false;
    let mut fresh = Simulation::new(
        line(0.0, 3),
        host_config(51),
        Recorder::new(
            RecorderConfig::new("HH-1", Firmware::V2, timing()),
            RecorderData::default(),
        ),
        manual,
    );
    fresh.run_until(LIMIT, |s| s.host.device().is_some());
    let err = fresh.host.load(vec![too_big]).unwrap_err();
    assert!(err.to_string().contains("capacity"), "{err}");
}

#[test]
fn no_recorder_in_the_cradle_ends_with_no_answer() {
    let mut host = super::Host::new(host_config(1), Duration::ZERO);
    let mut now = Duration::ZERO;
    let mut syncs = 0;
    while !host.is_done() {
        while host.poll_transmit(now).is_some() {
            syncs += 1;
        }
        now = host.poll_timeout().expect("a timer while syncing");
        host.handle_timeout(now);
    }
    assert_eq!(
        host.poll_event(),
        Some(HostEvent::Failed(super::SessionFailure::NoAnswer))
    );
    assert_eq!(syncs, 13);
}

/// Unload time of 2,000 reads vs the time their record bytes alone need at line rate.
fn unload_ratio(fw: Firmware) -> (f64, Duration, Duration) {
    let route = sample_route("R99", 2000, &mut XorShift64::new(21));
    let (recorder, taken) = recorder_with_reads(fw, &route, 21);
    let payload: usize = taken.iter().map(|r| fw.read_len(r)).sum();
    let mut sim = Simulation::new(line(0.0, 1), host_config(60), recorder, HostApp::new(vec![]));
    assert!(sim.run(LIMIT));
    assert_store_holds_exactly(&sim.app, "HH-0042", &taken);
    let start = sim.app.time_of(|e| matches!(e, HostEvent::Docked(_))).unwrap();
    let end = sim
        .app
        .time_of(|e| matches!(e, HostEvent::UnloadComplete { .. }))
        .unwrap();
    let line_rate = timing().bytes_time(payload);
    (
        (end - start).as_secs_f64() / line_rate.as_secs_f64(),
        end - start,
        line_rate,
    )
}

#[test]
fn windowed_unload_of_2000_reads_is_within_115_percent_of_line_rate() {
    let (ratio2, took2, rate2) = unload_ratio(Firmware::V2);
    let (ratio1, took1, rate1) = unload_ratio(Firmware::V1);
    println!("firmware 2: unload {took2:?} vs payload at line rate {rate2:?}: ratio {ratio2:.3}");
    println!("firmware 1: unload {took1:?} vs payload at line rate {rate1:?}: ratio {ratio1:.3}");
    assert!(ratio2 <= 1.15, "firmware 2 ratio {ratio2:.3}");
    assert!(ratio1 > ratio2, "stop-and-wait cannot beat the window");
}

// ---- Captured transcripts -------------------------------------------------------------------

fn fixture_dir(fw: Firmware) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../firmware-fixtures/handheld/fw{}", fw.code()))
}

#[derive(Debug, serde::Serialize, serde::Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Expected {
    device_serial: String,
    /// Reads the host must deliver, in order.
    reads_unloaded: Vec<ReadRecord>,
    /// Highest sequence CLEAR covers.
    cleared_through: Option<u32>,
    /// Route the host loads (also the input the replay gives the host).
    route_loaded: Route,
    clock_set_to: i64,
}

/// The session captured in `firmware-fixtures/handheld/fwN/`: a recorder holding a day's reads,
/// over a line with a little corruption so the capture shows a retransmission.
fn capture(fw: Firmware) -> (Transcript, Expected) {
    let today = sample_route("R10", 12, &mut XorShift64::new(100));
    let tomorrow = sample_route("R11", 8, &mut XorShift64::new(101));
    let (recorder, taken) = recorder_with_reads(fw, &today, 102);
    let mut sim = Simulation::new(
        line(0.002, 103),
        host_config(0xC0FFEE),
        recorder,
        HostApp::new(vec![tomorrow.clone()]),
    );
    assert!(sim.run(LIMIT));
    let clock = sim.app.events.iter().find_map(|(_, e)| match e {
        HostEvent::ClockSet { now, .. } => Some(*now),
        _ => None,
    });
    let expected = Expected {
        device_serial: "HH-0042".into(),
        cleared_through: taken.last().map(|r| r.seq),
        reads_unloaded: taken,
        route_loaded: tomorrow,
        clock_set_to: clock.expect("clock set"),
    };
    (sim.transcript, expected)
}

#[test]
fn captured_transcripts_replay_to_the_same_host_bytes_and_outcome() {
    for fw in [Firmware::V1, Firmware::V2] {
        let dir = fixture_dir(fw);
        let (captured, expected_now) = capture(fw);
        if std::env::var_os("UPDATE_CRADLE_FIXTURES").is_some() {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("session.transcript"), captured.to_text()).unwrap();
            std::fs::write(
                dir.join("session.expected.json"),
                serde_json::to_string_pretty(&expected_now).unwrap() + "\n",
            )
            .unwrap();
        }
        let text = std::fs::read_to_string(dir.join("session.transcript")).expect("fixture transcript");
        let transcript = Transcript::parse(&text).unwrap();
        let expected: Expected =
            serde_json::from_str(&std::fs::read_to_string(dir.join("session.expected.json")).unwrap()).unwrap();
        assert_eq!(transcript.firmware, fw);

        let (host_bytes, app) = replay(&transcript, vec![expected.route_loaded.clone()]);
        let captured_host: Vec<&Entry> = transcript
            .entries
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    Entry::Bytes {
                        dir: Direction::HostToRecorder,
                        ..
                    }
                )
            })
            .collect();
        assert_eq!(host_bytes.len(), captured_host.len(), "{fw:?}: number of host writes");
        for (k, (a, b)) in host_bytes.iter().zip(&captured_host).enumerate() {
            assert_eq!(a, *b, "{fw:?}: host write {k} differs");
        }
        assert_store_holds_exactly(&app, &expected.device_serial, &expected.reads_unloaded);
        let events: Vec<&HostEvent> = app.events.iter().map(|(_, e)| e).collect();
        assert!(
            events
                .iter()
                .any(|e| matches!(e, HostEvent::RouteLoaded { route_id, meters }
            if *route_id == expected.route_loaded.id && *meters as usize == expected.route_loaded.meters.len()))
        );
        assert!(
            events
                .iter()
                .any(|e| matches!(e, HostEvent::ClockSet { now, .. } if *now == expected.clock_set_to))
        );
        assert!(matches!(events.last(), Some(HostEvent::Finished(_))), "{fw:?}");
        let clears: Vec<Message> = host_messages(&transcript)
            .into_iter()
            .map(|(_, m)| m)
            .filter(|m| matches!(m, Message::Clear { .. }))
            .collect();
        assert!(clears.iter().all(|m| *m
            == Message::Clear {
                through: expected.cleared_through
            }));
        assert_clear_after_commit(&transcript, None);
        // The simulator still produces exactly this capture (catches silent protocol drift).
        assert_eq!(
            captured, transcript,
            "{fw:?}: regenerate with UPDATE_CRADLE_FIXTURES=1 if the change is intended"
        );
        assert_eq!(expected_now, expected);
    }
}

// ---- A scripted recorder that breaks the protocol -------------------------------------------

/// Feeds the host hand-made recorder frames and collects every message the host writes.
struct Script {
    host: super::Host,
    reassembler: Reassembler,
    seq: u32,
    written: Vec<Message>,
    decoder: FrameDecoder,
}

impl Script {
    fn docked(nonce: u32) -> Self {
        let mut s = Script {
            host: super::Host::new(host_config(nonce), Duration::ZERO),
            seq: 0,
            reassembler: Reassembler::default(),
            written: Vec::new(),
            decoder: FrameDecoder::new(),
        };
        s.drain();
        let mut ack = nonce.to_le_bytes().to_vec();
        ack.extend_from_slice(&[2, 8, 0x00, 0x02]);
        s.feed(super::Frame::new(FrameKind::SyncAck, 0, ack).encode().unwrap());
        s.send(&Message::Hello(super::DeviceInfo {
            serial: "HH-BAD".into(),
            model: "AR-5".into(),
            firmware: Firmware::V2,
            firmware_version: "2.3.1".into(),
            capacity: 100,
            routes: vec![],
            reads_pending: 3,
            next_seq: 3,
        }));
        s
    }

    fn feed(&mut self, bytes: Vec<u8>) {
        self.host.handle_bytes(&bytes, Duration::from_millis(1));
        self.drain();
    }

    fn send(&mut self, m: &Message) {
        self.send_raw(m.encode(Firmware::V2).unwrap());
    }

    fn send_raw(&mut self, message: Vec<u8>) {
        let mut stream = (message.len() as u16).to_le_bytes().to_vec();
        stream.extend_from_slice(&message);
        let frame = super::Frame::new(FrameKind::Data, self.seq, stream.clone())
            .encode()
            .unwrap();
        self.seq += stream.len() as u32;
        self.feed(frame);
    }

    fn drain(&mut self) {
        while let Some(bytes) = self.host.poll_transmit(Duration::from_millis(1)) {
            self.decoder.push(&bytes);
            while let Some(Ok(f)) = self.decoder.next_frame() {
                for m in self.reassembler.push(&f) {
                    self.written.push(Message::decode(&m, Firmware::V2).unwrap());
                }
            }
        }
    }

    fn events(&mut self) -> Vec<HostEvent> {
        std::iter::from_fn(|| self.host.poll_event()).collect()
    }
}

fn scripted_reads(seqs: &[u32]) -> Vec<ReadRecord> {
    let route = sample_route("RS", seqs.len(), &mut XorShift64::new(9));
    let mut data = RecorderData {
        routes: vec![route],
        ..Default::default()
    };
    read_routes(&mut data, &mut XorShift64::new(9), CLOCK).unwrap();
    data.reads
        .into_iter()
        .zip(seqs)
        .map(|(r, s)| ReadRecord { seq: *s, ..r })
        .collect()
}

#[test]
fn reads_out_of_sequence_fail_the_session_without_clear() {
    let mut s = Script::docked(70);
    assert!(matches!(s.events()[..], [HostEvent::Docked(_)]));
    s.host.unload(None).unwrap();
    s.drain();
    s.send(&Message::Reads(scripted_reads(&[5, 6])));
    s.send(&Message::Reads(scripted_reads(&[4])));
    let events = s.events();
    assert!(
        matches!(events.last(), Some(HostEvent::Failed(super::SessionFailure::Protocol(d))) if d.contains("not increasing")),
        "{events:?}"
    );
    assert!(s.written.iter().all(|m| !matches!(m, Message::Clear { .. })));
}

#[test]
fn unload_done_claiming_unsent_reads_fails_without_clear() {
    let mut s = Script::docked(71);
    s.events();
    s.host.unload(None).unwrap();
    s.send(&Message::Reads(scripted_reads(&[1, 2])));
    let delivered = s.events();
    assert!(matches!(&delivered[..], [HostEvent::ReadsReceived { reads, .. }] if reads.len() == 2));
    s.host.committed(2).unwrap();
    // The recorder says it holds read 3 too, which never arrived.
    s.send(&Message::UnloadDone {
        sent: 2,
        last_seq: Some(3),
    });
    assert!(matches!(
        s.events().last(),
        Some(HostEvent::Failed(super::SessionFailure::Protocol(_)))
    ));
    assert!(s.written.iter().all(|m| !matches!(m, Message::Clear { .. })));
}

#[test]
fn an_undecodable_message_is_quarantined_and_nothing_is_cleared() {
    let mut s = Script::docked(72);
    s.events();
    s.host.unload(None).unwrap();
    // CRC-valid frame, but a READS batch whose record has a month of 13.
    let read = scripted_reads(&[1]).remove(0);
    let mut payload = Message::Reads(vec![read.clone()]).encode(Firmware::V2).unwrap();
    assert!(read.reading.is_some());
    // code, count | seq | route | meter | flags | reading | year | month
    let month_at = 3 + 4 + (1 + read.route_id.len()) + (1 + read.meter_id.len()) + 1 + 8 + 2;
    assert_eq!(payload[month_at], read.taken_at.month);
    payload[month_at] = 13;
    s.send_raw(payload.clone());
    let events = s.events();
    assert!(
        matches!(&events[0], HostEvent::Quarantined { payload: p, error } if *p == payload && error.contains("read date")),
        "{events:?}"
    );
    assert!(matches!(events.last(), Some(HostEvent::Failed(_))));
    assert!(s.written.iter().all(|m| !matches!(m, Message::Clear { .. })));
}

#[test]
fn a_recorder_whose_sequence_went_back_is_never_cleared() {
    // The store holds reads up to 5000 from this serial; the recorder (memory reset) numbers
    // its reads from 1000.
    let route = sample_route("R30", 20, &mut XorShift64::new(30));
    let (recorder, taken) = recorder_with_reads(Firmware::V2, &route, 30);
    let mut app = HostApp::new(vec![]);
    app.store.commit(
        "HH-0042",
        &[ReadRecord {
            seq: 5000,
            ..taken[0].clone()
        }],
    );
    let mut sim = Simulation::new(line(0.0, 1), host_config(90), recorder, app);
    assert!(sim.run(LIMIT));
    assert_eq!(sim.host.phase(), Phase::Failed);
    assert!(
        sim.app.refused[0].to_string().contains("next sequence 1020"),
        "{:?}",
        sim.app.refused
    );
    assert_eq!(sim.recorder.data().reads, taken);
    assert!(
        host_messages(&sim.transcript)
            .iter()
            .all(|(_, m)| !matches!(m, Message::Clear { .. }))
    );
}

#[test]
fn re_cut_and_overlapping_retransmissions_deliver_each_read_once() {
    let mut s = Script::docked(73);
    s.events();
    s.host.unload(None).unwrap();
    let reads = scripted_reads(&[1, 2, 3]);
    let message = Message::Reads(reads.clone()).encode(Firmware::V2).unwrap();
    let mut stream = (message.len() as u16).to_le_bytes().to_vec();
    stream.extend_from_slice(&message);
    let base = s.seq;
    let frame = |from: usize, to: usize| {
        super::Frame::new(FrameKind::Data, base + from as u32, stream[from..to].to_vec())
            .encode()
            .unwrap()
    };
    let n = stream.len();
    // First attempt: a big frame of the first 40 bytes, then one from 60 (out of order, a NAK).
    s.feed(frame(0, 40));
    s.feed(frame(60, n));
    assert!(s.events().is_empty(), "nothing complete yet");
    // Go-back with smaller frames that overlap what arrived.
    s.feed(frame(20, 50));
    s.feed(frame(0, 30)); // a stale duplicate
    s.feed(frame(50, n));
    s.feed(frame(50, n)); // and a duplicate of the last
    let events = s.events();
    assert!(
        matches!(&events[..], [HostEvent::ReadsReceived { reads: got, .. }] if *got == reads),
        "{events:?}"
    );
}
