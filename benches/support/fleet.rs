//! The bench fleet shared by `ingest` and `pg_ingest`: 100,000 meters and a monthly register
//! read of each, the same figures on both engines.

use jiff::{Timestamp, ToSpan};
use meterd::model::{Meter, MeterStatus, Origin, OriginKind, Quantity, Read, ReadType, Service};

pub const METERS: usize = 100_000;

pub fn meter_id(i: usize) -> String {
    format!("B{i:06}")
}

pub fn meters() -> Vec<Meter> {
    (0..METERS)
        .map(|i| Meter {
            meter_id: meter_id(i),
            account: format!("A{i}"),
            route: format!("R{:03}", i / 500),
            sequence: (i % 500) as u32,
            service: Service::ALL[i % 3],
            unit: "gal".into(),
            dials: 8,
            decimals: 0,
            multiplier: Quantity::from_units(1).unwrap(),
            status: MeterStatus::Active,
            address: format!("{i} Main St"),
            notes: String::new(),
        })
        .collect()
}

/// The read of meter `i` for month `month` (register grows 300 ± a little per month).
pub fn read(i: usize, month: i64) -> Read {
    let start: Timestamp = "2020-01-05T08:00:00Z".parse().unwrap();
    let read_at = start
        .to_zoned(jiff::tz::TimeZone::UTC)
        .checked_add(month.months())
        .unwrap()
        .timestamp();
    let value = 1000 + month * 300 + (i as i64 % 13) * month + (month * month) % 7;
    Read {
        meter_id: meter_id(i),
        read_at,
        value: Quantity::from_units(value).unwrap(),
        raw: value.to_string(),
        read_type: ReadType::Radio,
        codes: Vec::new(),
        reader: None,
        origin: Origin {
            kind: OriginKind::File,
            source: "bench.csv".into(),
            locator: format!("line {}", i + 2),
        },
    }
}
