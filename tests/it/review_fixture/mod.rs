//! A small town for the review tests: three meters with a year of monthly reads and one
//! doubtful last read each, stored through the real import path (`accept_reads`).

use std::path::Path;

use jiff::Timestamp;
use jiff::civil::date;
use meterd::ingest::accept_reads;
use meterd::model::{Meter, MeterStatus, Origin, Quantity, Read, ReadType, Service};
use meterd::store::{RedbStore, Store};
use meterd::vee::VeeConfig;

pub fn q(s: &str) -> Quantity {
    Quantity::parse(s).unwrap()
}

/// 08:00 UTC on day 5 of month `m` counted from January 2025 (m = 0).
pub fn month(m: i64) -> Timestamp {
    let d = date(2025, 1, 5).checked_add(jiff::Span::new().months(m)).unwrap();
    d.at(8, 0, 0, 0).to_zoned(jiff::tz::TimeZone::UTC).unwrap().timestamp()
}

fn meter(id: &str, route: &str, seq: u32, service: Service, unit: &str, notes: &str) -> Meter {
    Meter {
        meter_id: id.into(),
        account: format!("A-{id}"),
        route: route.into(),
        sequence: seq,
        service,
        unit: unit.into(),
        dials: 6,
        decimals: 0,
        multiplier: q("1"),
        status: MeterStatus::Active,
        address: format!("{seq} Oak St"),
        notes: notes.into(),
    }
}

pub fn read(meter: &str, m: i64, value: i64, codes: &[&str]) -> Read {
    Read {
        meter_id: meter.into(),
        read_at: month(m),
        value: Quantity::from_units(value).unwrap(),
        raw: format!("{value:06}"),
        read_type: ReadType::Manual,
        codes: codes.iter().map(|c| c.to_string()).collect(),
        reader: Some("R7".into()),
        origin: Origin::file_line("route.csv", (m + 2) as u64),
    }
}

/// W-100: water, 300 a month, last read 912 over (a spike). G-200: gas, 50 a month, then
/// nothing (a stopped meter). E-300: electric, 500 a month, last read below the previous.
pub fn town(dir: &Path) -> RedbStore {
    let store = RedbStore::open_dir(dir).unwrap();
    let mut txn = store.begin_write().unwrap();
    txn.put_meter(&meter("W-100", "R01", 10, Service::Water, "gal", "dog in yard"))
        .unwrap();
    txn.put_meter(&meter("G-200", "R02", 5, Service::Gas, "ccf", ""))
        .unwrap();
    txn.put_meter(&meter("E-300", "R01", 20, Service::Electric, "kWh", "meter in garage"))
        .unwrap();
    txn.commit().unwrap();
    let mut reads = Vec::new();
    let (mut w, mut g, mut e) = (10_000, 2_000, 40_000);
    for m in 0..12 {
        // Usage varies a little every month (no "exact same usage").
        if m > 0 {
            w += 280 + (m * 37) % 41;
            g += 40 + (m * 13) % 17;
            e += 480 + (m * 29) % 43;
        }
        reads.push(read("W-100", m, w, &[]));
        reads.push(read("G-200", m, g, &[]));
        reads.push(read("E-300", m, e, &[]));
    }
    reads.push(read("W-100", 12, w + 912, &["TC-12"]));
    reads.push(read("G-200", 12, g, &[]));
    reads.push(read("E-300", 12, e - 40, &[]));
    accept_reads(&store, &VeeConfig::default(), reads).unwrap();
    store
}

/// A fixed clock for stable snapshots.
pub fn fixed_now() -> Timestamp {
    "2026-01-10T09:30:00Z".parse().unwrap()
}

/// E-300's hourly kWh on `day` (UTC days), 1 kWh an hour but 20 at 18:00 (interval 19):
/// held for review as `interval_spike`.
pub fn spike_day(store: &RedbStore, day: jiff::civil::Date) {
    use meterd::ingest::intervals::{IncomingDay, IncomingValue, accept_interval_days};
    use meterd::model::interval::{Channel, Direction, Quality};
    let values = (1..=24u16)
        .map(|n| IncomingValue {
            interval: n,
            value: Quantity::from_units(if n == 19 { 20 } else { 1 }).unwrap(),
            quality: Quality::Actual,
            method: None,
        })
        .collect();
    let day = IncomingDay {
        channel: Channel {
            meter_id: "E-300".into(),
            channel: "E1".into(),
            unit: "kWh".into(),
            direction: Direction::Delivered,
        },
        date: day,
        interval_minutes: 60,
        values,
        outages: vec![],
        source: "nem12 ami.csv line 3".into(),
    };
    let config = meterd::vee::interval::IntervalConfig {
        time_zone: Some("UTC".into()),
        ..Default::default()
    };
    let report = accept_interval_days(store, &config, &config.clock(), &[day]).unwrap();
    assert_eq!(report.flagged, 1, "{report:?}");
}
