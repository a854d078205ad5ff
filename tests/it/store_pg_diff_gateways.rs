//! The PostgreSQL engine's gateways, cradles and quarantine areas against the embedded (redb)
//! store: the same operations on both must answer the same, including the quarantine's trimming
//! by size and by age and its summary; and two instances marking one de-duplication key at once
//! must see exactly one "new". The server is the tests' private cluster (`common::pg`), a
//! fresh database per test.

use std::sync::Barrier;

use jiff::{SignedDuration, Timestamp};
use meterd::model::{GatewayState, IntervalRead, OutboxEntry, QuarantineEntry, Resolution, RouteLoad, RouteSkip};
use meterd::store::postgres::{PgStore, SslMode, StoreConfig};
use meterd::store::prelude::*;
use meterd::store::{QuarantineLimits, RedbStore};

/// A fresh database on the tests' private server, opened as a PgStore.
fn fresh_pg(_tag: &str) -> PgStore {
    PgStore::open(&StoreConfig {
        url: Some(crate::common::pg::database()),
        sslmode: SslMode::Disable,
        ..StoreConfig::default()
    })
    .expect("opening the PostgreSQL store")
}

fn limits() -> QuarantineLimits {
    QuarantineLimits {
        max_bytes: 700,
        max_age: Some(SignedDuration::from_hours(1)),
        keep_whole_bytes: 64,
    }
}

fn at(secs: i64) -> Timestamp {
    // 2026-03-31 23:50 UTC: interval reads cross into April's partition.
    Timestamp::from_second(1_775_001_000 + secs).unwrap()
}

fn entry(source: &str, reason: &str, len: usize, secs: i64) -> QuarantineEntry {
    QuarantineEntry {
        source: source.to_owned(),
        reason: reason.to_owned(),
        payload: (0..len).map(|i| (i % 251) as u8).collect(),
        received_at: at(secs),
    }
}

/// Runs one sequence of operations and writes down every answer.
fn transcript(store: &dyn Store) -> Vec<String> {
    let mut log = Vec::new();
    macro_rules! note {
        ($($e:tt)*) => { log.push(format!("{} = {:?}", stringify!($($e)*), $($e)*)) };
    }

    // April's interval reads partition first, in a transaction of its own: PostgreSQL makes a
    // partition outside the transaction and asks a transaction that has already written
    // interval reads to run again (StoreError::Retry) rather than make one midway.
    {
        let mut w = store.begin_write().unwrap();
        note!(w.insert_interval_read(
            "m1",
            &IntervalRead {
                end: at(900),
                number: 4,
                consumption: 11
            }
        ));
        w.commit().unwrap();
    }
    // Gateways and cradles, one transaction.
    {
        let mut w = store.begin_write().unwrap();
        note!(w.mark_seen("mqtt", b"k1", at(0)));
        note!(w.mark_seen("mqtt", b"k1", at(1)));
        note!(w.mark_seen("mqtt", b"k2", at(10)));
        note!(w.mark_seen("mqtt", &[0, 255, 7], at(20)));
        note!(w.mark_seen("other", b"k1", at(0)));
        let mut b = GatewayState::new("gw-b");
        b.messages = 3;
        note!(w.put_gateway(&b));
        let mut a = GatewayState::new("gw-a");
        note!(w.put_gateway(&a));
        a.last_message_at = Some(at(5));
        a.messages = 9;
        a.undecodable = 2;
        a.status = Some("online".into());
        a.status_at = Some(at(6));
        a.last_topic = "meters/gw-a/idm".into();
        note!(w.put_gateway(&a));
        for (secs, number, consumption) in [(0, 1, 5), (300, 2, 7), (600, 3, 0), (900, 4, 11), (300, 9, 8)] {
            let r = IntervalRead {
                end: at(secs),
                number,
                consumption,
            };
            note!(w.insert_interval_read("m1", &r));
        }
        note!(w.insert_interval_read(
            "m2",
            &IntervalRead {
                end: at(0),
                number: 255,
                consumption: u64::from(u32::MAX)
            }
        ));
        note!(w.set_tamper_state("e1", at(0), 1));
        note!(w.set_tamper_state("e1", at(60), 3));
        note!(w.set_tamper_state("e2", at(60), (1 << 63) | 5));
        for t in ["a", "b", "c"] {
            note!(w.push_outbox(&OutboxEntry {
                topic: format!("out/{t}"),
                payload: t.as_bytes().to_vec()
            }));
        }
        note!(w.remove_outbox(2));
        note!(w.remove_outbox(2));
        note!(w.remove_outbox(99));
        note!(w.assign_route("r2", Some("s1")));
        note!(w.assign_route("r1", Some("s2")));
        note!(w.assign_route("R0", Some("s3")));
        note!(w.assign_route("r1", Some("s4")));
        note!(w.assign_route("r2", None));
        let load = |route: &str, secs: i64, cleared: Option<i64>| RouteLoad {
            route: route.into(),
            serial: "s1".into(),
            loaded_at: at(secs),
            meters: 40,
            cleared_at: cleared.map(at),
        };
        note!(w.put_route_load(&load("r1", 100, None)));
        note!(w.put_route_load(&load("r1", 50, None)));
        note!(w.put_route_load(&load("r1", 100, Some(200))));
        note!(w.put_route_load(&load("Q9", 10, None)));
        note!(w.put_route_load(&load("r2", 10, None)));
        note!(w.remove_route_load(&load("r2", 10, None)));
        note!(w.put_cradle_watermark("s1", 5));
        note!(w.put_cradle_watermark("s1", 3));
        note!(w.put_cradle_watermark("s2", u32::MAX));
        let skip = |meter: &str, seq: u32, code: Option<&str>| RouteSkip {
            route: "r1".into(),
            meter_id: meter.into(),
            at: at(30),
            code: code.map(str::to_owned),
            trouble_codes: vec!["dog".into(), "locked".into()],
            serial: "s1".into(),
            seq,
            received_at: at(40),
        };
        note!(w.put_route_skip(&skip("m9", 2, Some("NA"))));
        note!(w.put_route_skip(&skip("m1", 7, None)));
        note!(w.put_route_skip(&skip("m1", 3, None)));
        note!(w.put_route_skip(&skip("m1", 3, None)));
        note!(w.put_route_skip(&skip("M0", 1, Some("x"))));
        w.commit().unwrap();
    }
    let look = |log: &mut Vec<String>| {
        let r = store.begin_read().unwrap();
        macro_rules! note {
            ($($e:tt)*) => { log.push(format!("{} = {:?}", stringify!($($e)*), $($e)*)) };
        }
        note!(r.seen("mqtt", b"k1"));
        note!(r.seen("mqtt", b"k2"));
        note!(r.seen("mqtt", &[0, 255, 7]));
        note!(r.seen("other", b"k1"));
        note!(r.seen("nobody", b"k1"));
        note!(r.gateways());
        note!(r.gateway("gw-a"));
        note!(r.gateway("gw-z"));
        note!(r.interval_reads("m1", at(0), at(900)));
        note!(r.interval_reads("m1", at(1), at(901)));
        note!(r.interval_reads("m1", at(300), at(300)));
        note!(r.interval_reads("m1", at(600), at(0)));
        note!(r.interval_reads("m2", at(-1000), at(1000)));
        note!(r.count_interval_reads());
        note!(r.tamper_state("e1"));
        note!(r.tamper_state("e2"));
        note!(r.tamper_state("e3"));
        note!(r.outbox(0, 10));
        note!(r.outbox(1, 1));
        note!(r.outbox(3, 10));
        note!(r.outbox(0, 0));
        note!(r.outbox_len());
        note!(r.route_assignments());
        note!(r.route_loads());
        note!(r.cradle_watermark("s1"));
        note!(r.cradle_watermark("s2"));
        note!(r.cradle_watermark("s9"));
        note!(r.route_skips("r1"));
        note!(r.route_skips("r2"));
    };
    look(&mut log);
    {
        let mut w = store.begin_write().unwrap();
        note!(w.forget_seen_before("mqtt", at(10)));
        note!(w.forget_seen_before("mqtt", at(10)));
        w.commit().unwrap();
    }
    look(&mut log);

    // The quarantine: each entry in its own transaction, watching usage and summary.
    let quarantine_state = |log: &mut Vec<String>| {
        let r = store.begin_read().unwrap();
        macro_rules! note {
            ($($e:tt)*) => { log.push(format!("{} = {:?}", stringify!($($e)*), $($e)*)) };
        }
        note!(r.quarantine_entries());
        note!(r.quarantined());
        note!(r.quarantine_summary());
        note!(r.quarantine_usage());
        note!(r.quarantine_entry(1));
        note!(r.quarantine_entry(1000));
    };
    let entries = [
        entry("mqtt meters/gw1/raw line 7", "unrecognised frame: 40 bytes", 40, 0),
        entry("serial /dev/ttyUSB0", "crc mismatch: 0x12", 10, 60),
        entry("mqtt meters/gw1/raw line 9", "unrecognised frame: 200 bytes", 200, 120),
        entry("file import.csv", "", 0, 180),
        entry("mqtt meters/gw2/raw", "unrecognised frame: 5 bytes", 5, 240),
        entry("serial /dev/ttyUSB0", "crc mismatch: 0x99", 63, 300),
        entry("serial /dev/ttyUSB1", "timeout", 64, 360),
        entry("mqtt meters/gw1/raw line 12", "unrecognised frame: 65", 65, 420),
    ];
    for (n, e) in entries.iter().enumerate() {
        let mut w = store.begin_write().unwrap();
        note!(w.quarantine(e));
        if n == 2 {
            let res = Resolution {
                at: at(130),
                by: "op".into(),
                reads: vec![4, 5],
                outcome: "2 reads".into(),
            };
            note!(w.resolve_quarantine(2, &res));
            note!(w.resolve_quarantine(2, &res));
            note!(w.resolve_quarantine(77, &res));
        }
        note!(w.quarantine_usage());
        w.commit().unwrap();
        quarantine_state(&mut log);
    }
    // Size: many small entries push the oldest out.
    for i in 0..12 {
        let mut w = store.begin_write().unwrap();
        note!(w.quarantine(&entry(
            &format!("mqtt meters/gw{i}/raw"),
            "short frame: n",
            20 + i,
            500 + i as i64
        )));
        w.commit().unwrap();
    }
    quarantine_state(&mut log);
    // Age: an entry two hours later pushes out everything older than an hour before it.
    for secs in [2 * 3600, 2 * 3600 + 1800] {
        let mut w = store.begin_write().unwrap();
        note!(w.quarantine(&entry("serial /dev/ttyUSB2", "late frame: x", 12, secs)));
        w.commit().unwrap();
        quarantine_state(&mut log);
    }
    {
        let mut w = store.begin_write().unwrap();
        note!(w.enforce_quarantine_retention(at(2 * 3600 + 1800)));
        note!(w.enforce_quarantine_retention(at(3 * 3600 + 1)));
        note!(w.quarantine(&entry("serial /dev/ttyUSB3", "late frame: y", 3, 4 * 3600)));
        note!(w.quarantine(&entry("serial /dev/ttyUSB3", "late frame: z", 3, 4 * 3600 + 5)));
        note!(w.purge_quarantine_before(at(4 * 3600 + 5)));
        note!(w.purge_quarantine_before(at(0)));
        w.commit().unwrap();
    }
    quarantine_state(&mut log);
    log
}

#[test]
fn gateways_cradles_and_quarantine_answer_as_the_embedded_store_does() {
    let dir = tempfile::tempdir().unwrap();
    let redb = RedbStore::open_dir(dir.path()).unwrap();
    redb.set_quarantine_limits(limits());
    let pg = fresh_pg("diff");
    pg.set_quarantine_limits(limits());

    let want = transcript(&redb);
    let got = transcript(&pg);
    assert_eq!(want.len(), got.len());
    for (w, g) in want.iter().zip(&got) {
        assert_eq!(w, g, "PostgreSQL differs from redb");
    }
    // The sequence exercises what it means to: no errors but the expected ones, trimming by
    // size and by age, and a summary.
    let all = want.join("\n");
    assert!(!all.contains("Engine"), "{all}");
    assert!(all.contains("w.mark_seen(\"mqtt\", b\"k1\", at(1)) = Ok(false)"));
    assert!(all.contains("Conflict") && all.contains("NotFound"));
    let summary = want.iter().rfind(|l| l.starts_with("r.quarantine_summary()")).unwrap();
    assert!(
        summary.contains("unrecognised frame") && summary.contains("late frame"),
        "{summary}"
    );
    assert!(
        all.contains("w.enforce_quarantine_retention(at(3 * 3600 + 1)) = Ok(1)"),
        "{all}"
    );
}

#[test]
fn two_instances_marking_one_key_at_once_get_one_new() {
    let pg = fresh_pg("seen");
    for round in 0..10 {
        let key = format!("key-{round}");
        let barrier = Barrier::new(2);
        let answers: Vec<bool> = std::thread::scope(|s| {
            let run = || {
                let mut w = pg.begin_write().unwrap();
                barrier.wait();
                let new = w.mark_seen("mqtt", key.as_bytes(), at(round)).unwrap();
                w.commit().unwrap();
                new
            };
            let a = s.spawn(run);
            let b = s.spawn(run);
            vec![a.join().unwrap(), b.join().unwrap()]
        });
        assert_eq!(answers.iter().filter(|n| **n).count(), 1, "round {round}: {answers:?}");
    }
    let r = pg.begin_read().unwrap();
    assert_eq!(r.seen("mqtt", b"key-3").unwrap(), Some(at(3)));
}
