use std::sync::Arc;

use jiff::civil::{Date, date};
use jiff::tz::TimeZone;
use meterd_protocols::Decoded;
use meterd_protocols::decode::Protocol;
use meterd_protocols::decoded::Reading;
use serde_json::json;

use super::*;
use crate::ingest::meterbus::{Capture, MeterMap, MeterbusConfig, MeterbusIngest};
use crate::model::interval::IntervalDay;
use crate::store::{RedbStore, Store};
use crate::vee::VeeConfig;
use crate::vee::interval::IntervalConfig;

fn q(s: &str) -> Quantity {
    Quantity::parse(s).unwrap()
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn amsterdam() -> DayClock {
    DayClock::new(TimeZone::get("Europe/Amsterdam").unwrap())
}

fn p(at: &str, value: &str) -> Point {
    Point {
        at: ts(at),
        value: q(value),
    }
}

#[test]
fn an_hour_is_the_register_s_movement_ending_on_the_hour() {
    let clock = amsterdam();
    // A DSMR gas meter stamps its capture a few seconds past the hour (DSMR 5 example
    // `170102161005W`): to the minute, 10:00 → 11:00 UTC is one hour.
    let s = step(
        &clock,
        60,
        p("2024-01-15T10:00:05Z", "1234.567"),
        p("2024-01-15T11:00:04Z", "1234.817"),
    );
    assert_eq!(
        s,
        Some(Step::Interval {
            start: ts("2024-01-15T10:00:00Z"),
            value: q("0.25"),
        })
    );
    // No usage is an interval of zero, not nothing.
    let s = step(
        &clock,
        60,
        p("2024-01-15T10:00:00Z", "5"),
        p("2024-01-15T11:00:00Z", "5"),
    );
    assert_eq!(
        s,
        Some(Step::Interval {
            start: ts("2024-01-15T10:00:00Z"),
            value: q("0"),
        })
    );
}

#[test]
fn without_the_previous_hour_or_off_the_hour_there_is_no_interval() {
    let clock = amsterdam();
    // A missed hour: the value two hours before is not this hour's start.
    assert_eq!(
        step(
            &clock,
            60,
            p("2024-01-15T09:00:00Z", "1"),
            p("2024-01-15T11:00:00Z", "2")
        ),
        None
    );
    // A DSMR 5 five-minute value is not on the hour.
    assert_eq!(
        step(
            &clock,
            60,
            p("2024-01-15T10:10:00Z", "1"),
            p("2024-01-15T11:10:00Z", "2")
        ),
        None
    );
    assert_eq!(interval_ending(&clock, ts("2024-01-15T11:05:00Z"), 60), None);
    // A quarter-hour grid takes quarter hours.
    assert_eq!(
        interval_ending(&clock, ts("2024-01-15T11:45:59Z"), 15),
        Some(ts("2024-01-15T11:30:00Z"))
    );
}

#[test]
fn a_register_going_down_gives_no_interval() {
    let clock = amsterdam();
    let s = step(
        &clock,
        60,
        p("2024-01-15T10:00:00Z", "1234.5"),
        p("2024-01-15T11:00:00Z", "0.1"),
    )
    .unwrap();
    assert_eq!(
        s,
        Step::Negative {
            start: ts("2024-01-15T10:00:00Z"),
            from: q("1234.5"),
            to: q("0.1"),
        }
    );
    assert!(values_of([s], "G-1", q("1")).is_empty());
    // The multiplier scales what is kept.
    let up = step(
        &clock,
        60,
        p("2024-01-15T10:00:00Z", "1"),
        p("2024-01-15T11:00:00Z", "1.5"),
    )
    .unwrap();
    assert_eq!(values_of([up], "G-1", q("10"))[0].1.value, q("5"));
}

fn gas_channel(meter: &str) -> Channel {
    Channel {
        meter_id: meter.into(),
        channel: "volume".into(),
        unit: "m3".into(),
        direction: Direction::Delivered,
    }
}

/// (date, interval, value) of every value of `days`.
fn cells(days: &[IncomingDay]) -> Vec<(Date, u16, Quantity)> {
    let mut out: Vec<_> = days
        .iter()
        .flat_map(|d| d.values.iter().map(move |v| (d.date, v.interval, v.value)))
        .collect();
    out.sort_by_key(|c| (c.0, c.1));
    out
}

#[test]
fn hours_across_dst_changes_land_on_the_local_day_s_intervals() {
    let clock = amsterdam();
    // 2024-03-31: 02:00 CET becomes 03:00 CEST, a 23-hour day. Hourly values at 00:00, 01:00,
    // 03:00 and 04:00 local (23:00, 00:00, 01:00, 02:00 UTC) are three whole hours: the
    // day's intervals 1, 2 and 3 (the third starts at 03:00 CEST).
    let points = [
        p("2024-03-30T23:00:00Z", "100"),
        p("2024-03-31T00:00:00Z", "101"),
        p("2024-03-31T01:00:00Z", "103"),
        p("2024-03-31T02:00:00Z", "106"),
    ];
    let days = mbus_history(&clock, &gas_channel("G-1"), "test", q("1"), &points);
    assert_eq!(
        cells(&days),
        vec![
            (date(2024, 3, 31), 1, q("1")),
            (date(2024, 3, 31), 2, q("2")),
            (date(2024, 3, 31), 3, q("3")),
        ]
    );
    assert_eq!(clock.intervals_in_day(date(2024, 3, 31), 60), Some(23));
    // 2024-10-27: 03:00 CEST becomes 02:00 CET, a 25-hour day; 02:00 happens twice, as
    // intervals 3 (CEST) and 4 (CET). The last hour of the day (23:00 CET) is interval 25.
    let points = [
        p("2024-10-27T00:00:00Z", "10"),
        p("2024-10-27T01:00:00Z", "12"),
        p("2024-10-27T02:00:00Z", "15"),
        p("2024-10-27T22:00:00Z", "20"),
        p("2024-10-27T23:00:00Z", "24"),
    ];
    let days = mbus_history(&clock, &gas_channel("G-1"), "test", q("1"), &points);
    assert_eq!(
        cells(&days),
        vec![
            (date(2024, 10, 27), 3, q("2")),
            (date(2024, 10, 27), 4, q("3")),
            (date(2024, 10, 27), 25, q("4")),
        ]
    );
}

/// A decoded M-Bus frame with `volume` values and their date/time records by storage number.
fn mbus_frame(history: &[(u64, &str, &str)]) -> Decoded {
    let mut readings = vec![Reading::new("volume", json!(12.5), Some("m3"))];
    readings[0].storage = Some(0);
    readings[0].function = Some("instantaneous".into());
    for &(storage, time, value) in history {
        let mut v = Reading::new("volume", value.parse::<serde_json::Value>().unwrap(), Some("m3"));
        v.storage = Some(storage);
        v.function = Some("instantaneous".into());
        let mut t = Reading::new("date_time", json!(time), None);
        t.storage = Some(storage);
        readings.push(v);
        readings.push(t);
    }
    Decoded {
        protocol: "mbus".into(),
        meter_id: "12345678".into(),
        fields: serde_json::Map::new(),
        readings,
        flags: Vec::new(),
    }
}

#[test]
fn a_quarter_hour_storage_history_becomes_intervals() {
    // Hand-built records: no device vector in the repository carries a load profile.
    let clock = amsterdam();
    let d = mbus_frame(&[
        (1, "2024-01-15T10:45:00", "12.4"),
        (2, "2024-01-15T10:30:00", "12.125"),
        (3, "2024-01-15T10:15:00", "12.1"),
        (4, "2024-01-15T10:00:00", "12"),
    ]);
    let points = mbus_points(&d, "volume", 0, 0, 0, &clock.tz);
    assert_eq!(points.len(), 4, "the current value (storage 0) is not history");
    // Meter time is local: 10:00 CET is 09:00 UTC.
    assert!(points.contains(&p("2024-01-15T09:00:00Z", "12")));
    let days = mbus_history(&clock, &gas_channel("W-1"), "mbus test", q("1"), &points);
    assert_eq!(days.len(), 1);
    assert_eq!(days[0].interval_minutes, 15);
    // 10:00–10:15 local is the day's 41st quarter hour.
    assert_eq!(
        cells(&days),
        vec![
            (date(2024, 1, 15), 41, q("0.1")),
            (date(2024, 1, 15), 42, q("0.025")),
            (date(2024, 1, 15), 43, q("0.275")),
        ]
    );
    // A missing storage number leaves its two intervals out, the others stay.
    let d = mbus_frame(&[
        (1, "2024-01-15T10:45:00", "12.4"),
        (3, "2024-01-15T10:15:00", "12.1"),
        (4, "2024-01-15T10:00:00", "12"),
    ]);
    let days = mbus_history(
        &clock,
        &gas_channel("W-1"),
        "t",
        q("1"),
        &mbus_points(&d, "volume", 0, 0, 0, &clock.tz),
    );
    assert_eq!(cells(&days), vec![(date(2024, 1, 15), 41, q("0.1"))]);
}

#[test]
fn a_monthly_or_daily_history_is_no_interval_data() {
    let clock = amsterdam();
    for history in [
        [
            (1, "2024-01-01T00:00:00", "10"),
            (2, "2023-12-01T00:00:00", "9"),
            (3, "2023-11-01T00:00:00", "8"),
        ],
        [
            (1, "2024-01-15T00:00:00", "10"),
            (2, "2024-01-14T00:00:00", "9"),
            (3, "2024-01-13T00:00:00", "8"),
        ],
        // Irregular, and every other spacing no multiple of the smallest.
        [
            (1, "2024-01-15T10:45:00", "10"),
            (2, "2024-01-15T10:30:00", "9"),
            (3, "2024-01-15T10:10:00", "8"),
        ],
    ] {
        let d = mbus_frame(&history);
        let points = mbus_points(&d, "volume", 0, 0, 0, &clock.tz);
        assert_eq!(points.len(), 3);
        assert!(mbus_history(&clock, &gas_channel("W-1"), "t", q("1"), &points).is_empty());
    }
}

#[test]
fn storage_numbers_without_one_time_or_with_a_bad_value_are_left_out() {
    let clock = amsterdam();
    let mut d = mbus_frame(&[
        (1, "2024-01-15T10:45:00", "12.4"),
        (2, "not a time", "12.1"),
        (3, "2024-01-15T10:15:00", "\"x\""),
    ]);
    // Storage 1 with two date/time records: which one is meant is unknown.
    let mut again = Reading::new("date_time", json!("2024-01-15T10:46:00"), None);
    again.storage = Some(1);
    d.readings.push(again);
    assert!(mbus_points(&d, "volume", 0, 0, 0, &clock.tz).is_empty());
    assert!(mbus_history(&clock, &gas_channel("W-1"), "t", q("1"), &[]).is_empty());
}

// DSMR hourly gas through the P1 ingest, stored.

const EQUIPMENT: &str = "E0012345678901234";

/// A DSMR 5 telegram with the gas meter's value `m3` captured at `captured` (DSMR time).
fn telegram(captured: &str, m3: &str) -> Decoded {
    let text = format!(
        "/ISk5\\2MT382-1000\r\n\r\n1-3:0.2.8(50)\r\n0-0:1.0.0(240115120000W)\r\n0-0:96.1.1({})\r\n\
         1-0:1.8.1(000123.456*kWh)\r\n0-1:24.1.0(003)\r\n0-1:96.1.0(4730303132)\r\n\
         0-1:24.2.1({captured})({m3}*m3)\r\n!",
        hex::encode_upper(EQUIPMENT)
    );
    let mut bytes = text.into_bytes();
    let crc = meterd_protocols::dsmr::CRC.checksum(&bytes);
    bytes.extend_from_slice(format!("{crc:04X}\r\n").as_bytes());
    meterd_protocols::dsmr::decode(&bytes).unwrap()
}

struct Fx {
    _dir: tempfile::TempDir,
    store: Arc<RedbStore>,
    ingest: MeterbusIngest,
}

impl Fx {
    fn new() -> Fx {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(RedbStore::open_dir(dir.path()).unwrap());
        let c: MeterbusConfig = toml::from_str(&format!(
            "[[meters]]\nmeter_id = \"GAS-1\"\ndsmr_equipment = \"{EQUIPMENT}\"\nregister = \"0-1:24.2.1\"\n"
        ))
        .unwrap();
        let meters: Vec<MeterMap> = c.meters;
        let ingest = MeterbusIngest {
            store: store.clone(),
            vee: VeeConfig::default(),
            intervals: IntervalConfig {
                time_zone: Some("Europe/Amsterdam".into()),
                ..IntervalConfig::default()
            },
            meters: Arc::new(meters),
        };
        Fx {
            _dir: dir,
            store,
            ingest,
        }
    }

    fn deliver(&self, telegrams: &[(&str, &str)]) -> crate::ingest::meterbus::Delivered {
        let captures = telegrams
            .iter()
            .enumerate()
            .map(|(i, (at, m3))| Capture::Frame {
                protocol: Protocol::Dsmr,
                decoded: telegram(at, m3),
                raw: Vec::new(),
                locator: format!("telegram {i}"),
                address: None,
            })
            .collect();
        self.ingest
            .deliver_blocking("/dev/ttyP1", captures, ts("2024-06-01T00:00:00Z"))
            .unwrap()
    }

    fn days(&self) -> Vec<IntervalDay> {
        self.store
            .begin_read()
            .unwrap()
            .interval_days("GAS-1", Date::MIN, Date::MAX)
            .unwrap()
    }

    /// (date, interval, value) of every stored value.
    fn values(&self) -> Vec<(Date, usize, Quantity)> {
        self.days()
            .iter()
            .flat_map(|d| {
                d.values
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| d.value_source.get(*i).is_some_and(Option::is_some))
                    .filter_map(move |(i, v)| Some((d.date, i + 1, (*v)?)))
            })
            .collect()
    }
}

#[test]
fn dsmr_hourly_gas_values_become_an_hourly_interval_once() {
    let fx = Fx::new();
    // The first hour has nothing before it: a read, no interval.
    let d = fx.deliver(&[("240115100005W", "01234.567")]);
    assert_eq!(d.report.imported, 1);
    assert_eq!(
        d.reads[0].read_at,
        ts("2024-01-15T09:00:05Z"),
        "read at its capture time"
    );
    assert!(fx.days().is_empty());
    // The telegrams repeating it store nothing.
    let d = fx.deliver(&[("240115100005W", "01234.567"), ("240115100005W", "01234.567")]);
    assert_eq!((d.report.imported, d.report.duplicates_skipped), (0, 2));
    assert!(fx.days().is_empty());
    // An hour later (a new process: nothing in memory) the difference is the 10:00–11:00
    // interval, the day's 11th hour.
    let later = Fx {
        ingest: MeterbusIngest {
            store: fx.store.clone(),
            ..fx.ingest.clone()
        },
        ..fx
    };
    let d = later.deliver(&[("240115110004W", "01234.817")]);
    assert_eq!(d.intervals.stored, 1);
    assert_eq!(later.values(), vec![(date(2024, 1, 15), 11, q("0.25"))]);
    let day = &later.days()[0];
    assert_eq!(
        (day.channel.as_str(), day.interval_minutes, day.values.len()),
        ("gas_hourly", 60, 24)
    );
    let channel = later
        .store
        .begin_read()
        .unwrap()
        .channel("GAS-1", "gas_hourly")
        .unwrap()
        .unwrap();
    assert_eq!(channel.unit, "m3");
    // The same telegram again: idempotent.
    let before = later.days();
    let d = later.deliver(&[("240115110004W", "01234.817")]);
    assert_eq!(d.report.duplicates_skipped, 1);
    assert_eq!(d.intervals.stored, 0);
    assert_eq!(later.days(), before);
}

#[test]
fn dsmr_gas_missed_hour_five_minute_values_and_a_register_going_down() {
    let fx = Fx::new();
    // 10:00, then 12:00: the 11:00 value was missed, so 11:00–12:00 has no interval (and
    // neither has 10:00–11:00).
    fx.deliver(&[("240115100000W", "00100.000")]);
    fx.deliver(&[("240115120000W", "00100.500")]);
    assert!(fx.values().is_empty(), "{:?}", fx.values());
    // DSMR 5 five-minute values between the hours are reads only; 13:00 minus 12:00 is an
    // interval, in one delivery with them.
    let d = fx.deliver(&[
        ("240115120500W", "00100.510"),
        ("240115121000W", "00100.520"),
        ("240115130000W", "00100.600"),
    ]);
    assert_eq!(d.report.imported, 3);
    assert_eq!(fx.values(), vec![(date(2024, 1, 15), 13, q("0.1"))]);
    // The meter was exchanged: 14:00 is below 13:00. No interval, the read is stored.
    let d = fx.deliver(&[("240115140000W", "00000.050")]);
    assert_eq!(d.report.imported, 1);
    assert_eq!(fx.values(), vec![(date(2024, 1, 15), 13, q("0.1"))]);
}

#[test]
fn dsmr_gas_hours_in_the_same_delivery_and_across_the_spring_dst_change() {
    let fx = Fx::new();
    // 2024-03-31 in Amsterdam: 01:00 CET, then 03:00 CEST (S) an hour later.
    fx.deliver(&[("240331010000W", "00010.000"), ("240331030000S", "00010.400")]);
    assert_eq!(fx.values(), vec![(date(2024, 3, 31), 2, q("0.4"))]);
    assert_eq!(fx.days()[0].values.len(), 23);
}
