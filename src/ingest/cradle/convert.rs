//! Between the store's words and the recorder's: store meters → route records to load, and
//! unloaded read records → model [`Read`]s (or skipped meters).

use jiff::Timestamp;
use jiff::tz::TimeZone;
use meterd_protocols::cradle::{
    ReadRecord, ReadTime, ReadType as CradleReadType, Route, RouteMeter, TroubleCode, Verified,
};

use crate::model::limits;
use crate::model::{
    Meter, MeterStatus, Origin, OriginKind, Quantity, Read, ReadType, RouteSkip, SCALE, Service, codes,
    to_store_precision,
};
use crate::store::{HistoryQuery, ReadTxn};
use crate::vee::{self, ADU_WINDOW, VeeConfig};

/// The skip and trouble codes every route carries (the recorder shows them to the reader).
pub const TROUBLE_CODES: [(&str, &str); 8] = [
    ("DOG", "Dog in yard"),
    ("LOCK", "Locked gate"),
    ("BUR", "Meter buried or covered"),
    ("NOAC", "No access"),
    ("LEAK", "Leak at meter"),
    ("TAMP", "Meter tampered"),
    ("REV", "Dial turning backwards"),
    ("DMG", "Meter damaged"),
];

/// Limits of the recorder's route records (see the protocol's `record` module).
const MAX_ROUTE_ID: usize = 10;
const MAX_METER_ID: usize = 12;
const MAX_RECORDER_DIALS: u8 = 10;

/// Local civil time (the recorder's clock) as seconds since 1970, for `SET_CLOCK`.
pub fn local_civil_now(tz: &TimeZone) -> i64 {
    let dt = tz.to_datetime(Timestamp::now());
    dt.to_zoned(TimeZone::UTC)
        .map(|z| z.timestamp().as_second())
        .unwrap_or(0)
}

/// A recorder time (local civil) as a UTC timestamp.
pub fn read_time_to_timestamp(t: &ReadTime, tz: &TimeZone) -> Result<Timestamp, String> {
    let dt = jiff::civil::DateTime::new(
        t.year as i16,
        t.month as i8,
        t.day as i8,
        t.hour as i8,
        t.minute as i8,
        t.second as i8,
        0,
    )
    .map_err(|e| format!("read time {t:?}: {e}"))?;
    tz.to_ambiguous_zoned(dt)
        .compatible()
        .map(|z| z.timestamp())
        .map_err(|e| format!("read time {t:?}: {e}"))
}

/// Text fitted to a fixed-width field: printable ASCII, at most `max`, no trailing space.
fn fit(text: &str, max: usize) -> String {
    let s: String = text
        .chars()
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .take(max)
        .collect();
    s.trim_end().to_owned()
}

/// A register value in the recorder's integer dial units (`None` when it does not fit).
fn to_register(value: Quantity, decimals: u8) -> Option<u64> {
    let unit = SCALE / 10i64.checked_pow(u32::from(decimals))?;
    u64::try_from(value.micros().checked_div(unit)?).ok()
}

fn from_register(reading: u64, decimals: u8) -> Option<Quantity> {
    let unit = SCALE / 10i64.checked_pow(u32::from(decimals))?;
    Some(Quantity::from_micros(i64::try_from(reading).ok()?.checked_mul(unit)?))
}

/// Why a meter or route cannot go into a recorder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Left {
    pub meter_id: String,
    pub reason: String,
}

/// Build the route `route_id` from the store's meters on it (active ones, in walk order): the
/// previous read is the meter's latest trusted read, the hi/lo limits are VEE's expectation
/// from the last year (without history: previous read up to a tenth of the register).
/// Returns the route and the meters left out, with the reason.
pub fn build_route(
    txn: &dyn ReadTxn,
    vee_config: &VeeConfig,
    route_id: &str,
    now: Timestamp,
) -> crate::store::Result<(Route, Vec<Left>)> {
    let mut meters: Vec<Meter> = txn
        .meters()?
        .into_iter()
        .filter(|m| m.route == route_id && m.status == MeterStatus::Active)
        .collect();
    meters.sort_by(|a, b| a.sequence.cmp(&b.sequence).then_with(|| a.meter_id.cmp(&b.meter_id)));
    let from = now.checked_sub(ADU_WINDOW).unwrap_or(Timestamp::MIN);
    let queries: Vec<HistoryQuery<'_>> = meters
        .iter()
        .map(|m| HistoryQuery {
            meter_id: &m.meter_id,
            from,
            to: now,
        })
        .collect();
    let histories = txn.meter_histories(&queries)?;
    let mut out = Vec::new();
    let mut left = Vec::new();
    for (m, history) in meters.iter().zip(histories) {
        let history: Vec<_> = history
            .into_iter()
            .filter(|h| h.is_history() && h.status.is_trusted())
            .collect();
        if m.meter_id.len() > MAX_METER_ID || !m.meter_id.bytes().all(|b| (0x21..=0x7E).contains(&b)) {
            left.push(Left {
                meter_id: m.meter_id.clone(),
                reason: format!("meter id longer than {MAX_METER_ID} or not printable"),
            });
            continue;
        }
        if m.dials > MAX_RECORDER_DIALS {
            left.push(Left {
                meter_id: m.meter_id.clone(),
                reason: format!("{} dials; recorders key at most {MAX_RECORDER_DIALS}", m.dials),
            });
            continue;
        }
        let modulus = 10u64.pow(u32::from(m.dials));
        let previous = history.last().map(|h| h.value).unwrap_or(Quantity::ZERO);
        let prev_reg = to_register(previous, m.decimals).unwrap_or(0) % modulus;
        let (low, high) = match vee::expectation(&history, now, vee_config.factors(m.service)) {
            Some(e) => (
                to_register(previous.checked_add(e.low).unwrap_or(previous), m.decimals).unwrap_or(prev_reg),
                to_register(previous.checked_add(e.high).unwrap_or(previous), m.decimals).unwrap_or(prev_reg),
            ),
            None => (prev_reg, prev_reg + modulus / 10),
        };
        let (low_limit, high_limit) = recorder_limits(low, high, modulus);
        out.push(RouteMeter {
            sequence: m.sequence.min(999_999),
            meter_id: m.meter_id.clone(),
            account: fit(&m.account, 15),
            address: fit(&m.address, 20),
            customer: String::new(),
            service: match m.service {
                Service::Water => 'W',
                Service::Gas => 'G',
                Service::Electric => 'E',
            },
            previous_read: prev_reg,
            low_limit,
            high_limit,
            dials: m.dials,
            location: fit(&m.notes, 30),
        });
    }
    let route = Route {
        id: route_id.to_owned(),
        meters: out,
        trouble_codes: TROUBLE_CODES
            .iter()
            .map(|(c, t)| TroubleCode {
                code: (*c).into(),
                text: (*t).into(),
            })
            .collect(),
    };
    Ok((route, left))
}

/// The recorder's limits for an expected range `low..=high` (on an unwrapped register). Past
/// the register's top the dials wrap, so the limits do too; but a recorder's range cannot
/// wrap (low ≤ high, checked on load), so a range that straddles the top ends there: a
/// rolled-over read then asks the reader to re-key it (a confirmation), and VEE, which knows
/// rollover, judges the read after the unload.
fn recorder_limits(low: u64, high: u64, modulus: u64) -> (u64, u64) {
    if low / modulus == high / modulus {
        (low % modulus, high % modulus)
    } else {
        (low % modulus, modulus - 1)
    }
}

/// Whether a route id fits the recorder's field.
pub fn route_id_fits(route: &str) -> bool {
    !route.is_empty() && route.len() <= MAX_ROUTE_ID && route.bytes().all(|b| (0x21..=0x7E).contains(&b))
}

/// What one unloaded record becomes.
#[derive(Debug, Clone, PartialEq)]
pub enum Unloaded {
    Read(Box<Read>),
    Skip(RouteSkip),
}

/// Codes a read carries from the recorder: `SC-<code>` for a skip code keyed with a value,
/// `TC-<code>` per trouble code (plus the VEE endpoint flag for leak/tamper/reverse codes),
/// `verified_high` / `verified_low` for the recorder's hi/lo re-key.
fn read_codes(r: &ReadRecord) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(s) = &r.skip_code {
        out.push(format!("SC-{s}"));
    }
    for t in &r.trouble_codes {
        out.push(format!("TC-{t}"));
        let flag = match t.as_str() {
            "LEAK" => Some(codes::LEAK),
            "TAMP" => Some(codes::TAMPER),
            "REV" => Some(codes::REVERSE_FLOW),
            _ => None,
        };
        if let Some(f) = flag.filter(|f| !out.iter().any(|c| c == f)) {
            out.push(f.to_owned());
        }
    }
    match r.verified {
        Verified::High => out.push("verified_high".into()),
        Verified::Low => out.push("verified_low".into()),
        Verified::No => {}
    }
    out
}

/// Map an unloaded record. `meter` is the store's meter (for its decimals), `None` when unknown
/// (the read is still stored, flagged `unknown_meter` by VEE). `session` names the docking.
/// An error is a record that cannot become a read; the caller quarantines it with the reason.
pub fn unloaded(
    r: &ReadRecord,
    meter: Option<&Meter>,
    serial: &str,
    session: &str,
    tz: &TimeZone,
) -> Result<Unloaded, String> {
    let at = read_time_to_timestamp(&r.taken_at, tz)?;
    // The protocol checks a record's texts as it decodes one; checked again against the
    // store's limits, so a recorder that breaks its own protocol is quarantined, not stored.
    let over = |e: limits::LimitError| format!("record seq {}: {e}", r.seq);
    let Some(reading) = r.reading else {
        let skip = RouteSkip {
            route: r.route_id.clone(),
            meter_id: r.meter_id.clone(),
            at,
            code: r.skip_code.clone(),
            trouble_codes: r.trouble_codes.clone(),
            serial: serial.to_owned(),
            seq: r.seq,
            received_at: to_store_precision(Timestamp::now()),
        };
        limits::check_skip(&skip).map_err(over)?;
        return Ok(Unloaded::Skip(skip));
    };
    let decimals = meter.map_or(0, |m| m.decimals);
    let value =
        from_register(reading, decimals).ok_or_else(|| format!("reading {reading} does not fit a register value"))?;
    let width = meter.map_or(1, |m| usize::from(m.dials));
    let read_type = match r.read_type {
        CradleReadType::Keyed => ReadType::Manual,
        CradleReadType::Radio => ReadType::Radio,
        CradleReadType::Probe => ReadType::Probe,
    };
    let read = Read {
        meter_id: r.meter_id.clone(),
        read_at: at,
        value,
        raw: format!("{reading:0width$}"),
        read_type,
        codes: read_codes(r),
        reader: Some(serial.to_owned()),
        origin: Origin {
            kind: OriginKind::Cradle,
            source: serial.to_owned(),
            locator: format!("session {session} seq {} route {}", r.seq, r.route_id),
        },
    };
    limits::check_read(&read).map_err(over)?;
    Ok(Unloaded::Read(Box::new(read)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(reading: Option<u64>) -> ReadRecord {
        ReadRecord {
            seq: 7,
            route_id: "W01".into(),
            meter_id: "W01-001".into(),
            reading,
            taken_at: ReadTime::new(2026, 3, 4, 9, 30, 0).unwrap(),
            read_type: CradleReadType::Keyed,
            verified: Verified::High,
            skip_code: None,
            trouble_codes: vec!["LEAK".into()],
        }
    }

    /// W01-001, the first meter of route W01: water, 6 dials, whole gallons.
    fn w01_meter() -> Meter {
        Meter {
            meter_id: "W01-001".into(),
            account: "1".into(),
            route: "W01".into(),
            sequence: 10,
            service: Service::Water,
            unit: "gal".into(),
            dials: 6,
            decimals: 0,
            multiplier: Quantity::parse("1").unwrap(),
            status: MeterStatus::Active,
            address: String::new(),
            notes: String::new(),
        }
    }

    #[test]
    fn keyed_read_keeps_codes_and_decimals() {
        let mut meter = Meter {
            unit: "m3".into(),
            decimals: 1,
            ..w01_meter()
        };
        let Unloaded::Read(read) = unloaded(&record(Some(1234)), Some(&meter), "R1", "s1", &TimeZone::UTC).unwrap()
        else {
            panic!("expected a read")
        };
        assert_eq!(read.value, Quantity::parse("123.4").unwrap());
        assert_eq!(read.raw, "001234");
        assert_eq!(read.read_type, ReadType::Manual);
        assert_eq!(read.codes, vec!["TC-LEAK", "leak", "verified_high"]);
        assert_eq!(read.read_at.to_string(), "2026-03-04T09:30:00Z");
        assert_eq!(read.origin.locator, "session s1 seq 7 route W01");
        meter.decimals = 0;
        let Unloaded::Skip(skip) = unloaded(&record(None), Some(&meter), "R1", "s1", &TimeZone::UTC).unwrap() else {
            panic!("expected a skip")
        };
        assert_eq!((skip.seq, skip.code), (7, None));
    }

    #[test]
    fn a_route_near_the_register_top_loads() {
        use crate::store::Store;
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::RedbStore::open_dir(dir.path()).unwrap();
        let mut txn = store.begin_write().unwrap();
        let mut meter = w01_meter();
        txn.put_meter(&meter).unwrap();
        meter.meter_id = "W01-002".into();
        meter.sequence = 20;
        txn.put_meter(&meter).unwrap();
        txn.commit().unwrap();
        let now: Timestamp = "2026-06-01T12:00:00Z".parse().unwrap();
        // About 500 a month: W01-001 expects a range across the top of 6 dials, W01-002 one
        // wholly past it.
        let read = |meter: &str, day: &str, value: i64| crate::model::Read {
            meter_id: meter.into(),
            read_at: format!("2026-{day}T12:00:00Z").parse().unwrap(),
            value: Quantity::from_units(value).unwrap(),
            raw: value.to_string(),
            read_type: crate::model::ReadType::Manual,
            codes: vec![],
            reader: None,
            origin: crate::model::Origin::file_line("t.csv", 1),
        };
        let reads = vec![
            read("W01-001", "03-02", 998_500),
            read("W01-001", "04-01", 999_000),
            read("W01-001", "05-01", 999_500),
            read("W01-002", "03-02", 999_000),
            read("W01-002", "04-01", 999_500),
            read("W01-002", "05-01", 1_000_000 - 1),
        ];
        crate::ingest::accept_reads(&store, &VeeConfig::default(), reads).unwrap();
        let (route, left) =
            build_route(store.begin_read().unwrap().as_ref(), &VeeConfig::default(), "W01", now).unwrap();
        assert!(left.is_empty());
        for m in &route.meters {
            m.validate().unwrap_or_else(|e| panic!("{}: {e} ({m:?})", m.meter_id));
        }
        let limits: Vec<(u64, u64)> = route.meters.iter().map(|m| (m.low_limit, m.high_limit)).collect();
        assert!(
            limits[0].0 > 990_000 && limits[0].1 == 999_999,
            "a range straddling the top ends there: {limits:?}"
        );
        assert!(
            limits[1].0 <= limits[1].1 && limits[1].1 < 1_000,
            "a range wholly past the top wraps: {limits:?}"
        );
    }

    #[test]
    fn a_record_over_the_store_limits_is_refused_for_the_quarantine() {
        let meter = w01_meter();
        let mut r = record(Some(12));
        r.meter_id = "W01\u{0}1".into();
        let e = unloaded(&r, Some(&meter), "R1", "s1", &TimeZone::UTC).unwrap_err();
        assert!(
            e.starts_with("record seq 7: meter_id: contains the control character U+0000"),
            "{e}"
        );
        let mut r = record(Some(12));
        r.trouble_codes = vec!["DOG".into(); 40];
        let e = unloaded(&r, Some(&meter), "R1", "s1", &TimeZone::UTC).unwrap_err();
        assert!(e.contains("codes: more than 32 codes"), "{e}");
        // A skip (no reading) is checked as well.
        let mut r = record(None);
        r.skip_code = Some("X".repeat(100));
        let e = unloaded(&r, Some(&meter), "R1", "s1", &TimeZone::UTC).unwrap_err();
        assert!(e.contains("skip code: 100 bytes long; at most 32"), "{e}");
        let e = unloaded(&record(Some(1)), Some(&meter), &"S".repeat(200), "s1", &TimeZone::UTC).unwrap_err();
        assert!(e.contains("reader: 200 bytes long") && e.len() < 300, "{e}");
    }

    #[test]
    fn register_conversions_round_trip() {
        let q = Quantity::parse("123.45").unwrap();
        assert_eq!(to_register(q, 2), Some(12345));
        assert_eq!(from_register(12345, 2), Some(q));
        assert_eq!(fit("a long note with trailing   ", 20), "a long note with tra");
        assert_eq!(fit("ends in space ", 14), "ends in space");
    }
}
