//! The sample town of `meterd demo`, generated deterministically in code.
//!
//! 300 meters on 7 routes (water, gas, electric), 13 monthly reads each, and a handful of
//! every anomaly VEE knows, written as the same CSV files a utility would import, so the
//! demo goes through exactly the production import path.

use std::fmt::Write as _;
use std::path::Path;

use jiff::ToSpan;
use jiff::civil::{Date, date};

use crate::model::{MeterStatus, Service};

/// Deterministic generator (SplitMix64): the same town on every run and platform.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as i64
    }
}

/// One generated meter.
#[derive(Debug, Clone)]
pub struct TownMeter {
    pub meter_id: String,
    pub route: String,
    pub sequence: u32,
    pub service: Service,
    pub dials: u8,
    pub status: MeterStatus,
    pub address: String,
    /// Average daily usage in register units.
    pub adu: i64,
    /// Register at the first read.
    pub start: i64,
}

/// Anomalies planted in the last month (meter index → what happens).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plant {
    High,
    Low,
    Zero,
    Negative,
    SameUsage,
    Overflow,
    Tamper,
    Leak,
    ReverseFlow,
    SkipCode,
}

/// Months of history.
pub const MONTHS: i64 = 13;

fn first_read_day() -> Date {
    date(2025, 1, 6)
}

/// The town's meters.
pub fn meters() -> Vec<TownMeter> {
    let mut rng = Rng::new(0x6D65_7465_7264);
    let streets = [
        "Elm St",
        "Oak Ave",
        "Mill Rd",
        "Church St",
        "River Rd",
        "Maple Dr",
        "School Ln",
        "Depot St",
    ];
    // (route, service, meters, dials, ADU range)
    type RoutePlan = (&'static str, Service, usize, u8, (i64, i64));
    let plan: [RoutePlan; 7] = [
        ("W01", Service::Water, 50, 6, (5, 20)),
        ("W02", Service::Water, 50, 6, (5, 20)),
        ("W03", Service::Water, 50, 6, (5, 20)),
        ("W04", Service::Water, 50, 6, (5, 20)),
        ("G01", Service::Gas, 30, 5, (1, 6)),
        ("G02", Service::Gas, 30, 5, (1, 6)),
        ("E01", Service::Electric, 40, 5, (10, 40)),
    ];
    let mut out = Vec::new();
    for (route, service, count, dials, (lo, hi)) in plan {
        for seq in 1..=count {
            let i = out.len();
            let modulus = 10i64.pow(u32::from(dials));
            // Every 37th meter starts just below the top of its register, so it rolls over.
            let start = if i % 37 == 5 {
                modulus - rng.range(200, 900)
            } else {
                rng.range(0, modulus / 3)
            };
            out.push(TownMeter {
                meter_id: format!("{route}-{seq:03}"),
                route: route.to_owned(),
                sequence: seq as u32 * 10,
                service,
                dials,
                // A few services are off; two of them see usage in the last month.
                status: if i % 61 == 7 {
                    MeterStatus::Inactive
                } else {
                    MeterStatus::Active
                },
                address: format!(
                    "{} {}",
                    rng.range(1, 400),
                    streets[rng.range(0, streets.len() as i64 - 1) as usize]
                ),
                adu: rng.range(lo, hi),
                start,
            });
        }
    }
    out
}

fn unit(s: Service) -> &'static str {
    match s {
        Service::Water => "ft3",
        Service::Gas => "ccf",
        Service::Electric => "kWh",
    }
}

/// The meters CSV.
pub fn meters_csv(meters: &[TownMeter]) -> String {
    let mut s = String::from("meter_id,account,route,sequence,service,unit,dials,decimals,multiplier,status,address\n");
    for (i, m) in meters.iter().enumerate() {
        let _ = writeln!(
            s,
            "{},{:06},{},{},{},{},{},0,1,{},{}",
            m.meter_id,
            100_000 + i,
            m.route,
            m.sequence,
            m.service.as_str(),
            unit(m.service),
            m.dials,
            m.status.as_str(),
            m.address
        );
    }
    s
}

fn plant_for(i: usize) -> Option<Plant> {
    // Spread a handful of each anomaly across routes, away from the rollover and inactive meters.
    const PLANTS: [(usize, Plant); 30] = [
        (11, Plant::High),
        (63, Plant::High),
        (212, Plant::High),
        (271, Plant::High),
        (13, Plant::Low),
        (88, Plant::Low),
        (230, Plant::Low),
        (17, Plant::Zero),
        (120, Plant::Zero),
        (262, Plant::Zero),
        (21, Plant::Negative),
        (140, Plant::Negative),
        (285, Plant::Negative),
        (25, Plant::SameUsage),
        (160, Plant::SameUsage),
        (241, Plant::SameUsage),
        (29, Plant::Overflow),
        (181, Plant::Overflow),
        (31, Plant::Tamper),
        (190, Plant::Tamper),
        (290, Plant::Tamper),
        (33, Plant::Leak),
        (101, Plant::Leak),
        (171, Plant::Leak),
        (35, Plant::ReverseFlow),
        (205, Plant::ReverseFlow),
        (3, Plant::SkipCode),
        (55, Plant::SkipCode),
        (99, Plant::SkipCode),
        (250, Plant::SkipCode),
    ];
    PLANTS.iter().find(|(j, _)| *j == i).map(|(_, p)| *p)
}

/// The reads CSV: 13 monthly reads per meter with the planted anomalies, a conflicting
/// duplicate and reads of meters billing never sent.
pub fn reads_csv(meters: &[TownMeter]) -> String {
    let mut rng = Rng::new(0x0072_6561_6473);
    let mut s = String::from("meter_id,read_at,value,read_type,codes\n");
    for (i, m) in meters.iter().enumerate() {
        let modulus = 10i64.pow(u32::from(m.dials));
        let width = usize::from(m.dials);
        let read_type = if m.service == Service::Electric || i % 3 == 0 {
            "radio"
        } else {
            "manual"
        };
        let mut value = m.start;
        let mut previous_use = -1;
        let mut prev_day = first_read_day();
        for month in 0..MONTHS {
            let day = first_read_day().checked_add(month.months()).expect("date in range");
            let at = format!("{day}T{:02}:{:02}:00Z", 8 + (i % 8), (i * 7) % 60);
            let days = (day - prev_day).get_days() as i64;
            let mut codes = "";
            let mut shown: Option<String> = None;
            if month > 0 {
                // ±12 % around the average, never equal to the previous period by chance.
                let mut used = m.adu * days * rng.range(88, 112) / 100;
                if used == previous_use {
                    used += 1;
                }
                if m.status == MeterStatus::Inactive {
                    used = if month == MONTHS - 1 && i % 2 == 1 {
                        m.adu * days
                    } else {
                        0
                    };
                }
                let last = month == MONTHS - 1;
                match plant_for(i).filter(|_| last) {
                    Some(Plant::High) => used *= 3,
                    Some(Plant::Low) => used /= 5,
                    Some(Plant::Zero) => used = 0,
                    Some(Plant::SameUsage) => used = previous_use,
                    _ => {}
                }
                previous_use = used;
                value = (value + used).rem_euclid(modulus);
                match plant_for(i).filter(|_| last) {
                    // A misread: a digit short of the previous read.
                    Some(Plant::Negative) => shown = Some(format!("{:0width$}", (value - used - 37).max(0))),
                    // A keyed extra digit.
                    Some(Plant::Overflow) => shown = Some(format!("{value:0width$}7")),
                    Some(Plant::Tamper) => codes = "tamper",
                    Some(Plant::Leak) => codes = "leak",
                    Some(Plant::ReverseFlow) => codes = "reverse_flow",
                    Some(Plant::SkipCode) => codes = "SC-04;TC-12",
                    _ => {}
                }
            }
            prev_day = day;
            let shown = shown.unwrap_or_else(|| format!("{value:0width$}"));
            let _ = writeln!(s, "{},{at},{shown},{read_type},{codes}", m.meter_id);
            // Two meters get a second, different read at the same time (a re-key).
            if month == MONTHS - 2 && (i == 44 || i == 199) {
                let _ = writeln!(s, "{},{at},{:0width$},manual,", m.meter_id, (value + 3) % modulus);
            }
        }
    }
    // Reads for meters billing never sent (a meter found but not listed).
    for (n, id) in ["W09-001", "W09-002", "G07-015"].iter().enumerate() {
        let _ = writeln!(s, "{id},2026-01-0{}T10:00:00Z,{:06},manual,", n + 6, 4321 + n);
    }
    s
}

/// Write the town's `meters.csv` and `reads.csv` into `dir`.
pub fn write_files(dir: &Path) -> std::io::Result<(std::path::PathBuf, std::path::PathBuf)> {
    let town = meters();
    let (mp, rp) = (dir.join("meters.csv"), dir.join("reads.csv"));
    std::fs::write(&mp, meters_csv(&town))?;
    std::fs::write(&rp, reads_csv(&town))?;
    Ok((mp, rp))
}
