//! Meters read over serial lines by meterd itself: an IEC 62056-21 optical probe, a wired M-Bus
//! master and a DSMR P1 listener. Each pumps a sans-IO machine of `meterd-protocols` over a
//! `tokio_serial` port; what it decodes becomes [`Read`]s through the device → meter map of the
//! `[meterbus]` configuration and enters the store through [`accept_in`], like any other read.
//! Undecodable frames and telegrams go to the quarantine with the reason.
//!
//! - [`config`]: the `[meterbus]` section (ports, probe profiles, polling, the meter map).
//! - [`line`]: opening ports with the right settings; the baud switch.
//! - [`probe`], [`mbus`], [`p1`]: the three drivers.
//! - [`history`]: interval days from DSMR hourly gas values and M-Bus storage-number history,
//!   stored in the transaction of the frame's reads.
//! - [`daemon`]: the daemon component polling and listening on the configured ports.

pub mod config;
pub mod daemon;
pub mod history;
pub mod line;
pub mod mbus;
pub mod p1;
pub mod probe;

use std::sync::Arc;

use jiff::Timestamp;
use meterd_protocols::Decoded;
use meterd_protocols::decode::Protocol;
use meterd_protocols::iec62056_21::dataset::Obis;
use serde_json::Value;

pub use config::{MeterMap, MeterbusConfig};

use super::intervals::{IntervalReport, without_sum_check};
use super::pipeline::{AcceptReport, accept_in};
use crate::model::interval::{Channel, Direction};
use crate::model::{Origin, OriginKind, Quantity, QuarantineEntry, Read, ReadType, to_store_precision};
use crate::store::Store;
use crate::vee::VeeConfig;
use crate::vee::interval::IntervalConfig;

/// One unit a session brought home: a decoded frame, or bytes that did not decode.
#[derive(Debug, Clone)]
pub enum Capture {
    Frame {
        protocol: Protocol,
        decoded: Decoded,
        /// The raw frame or readout, kept with the read's origin for an auditor.
        raw: Vec<u8>,
        /// Where on the line (`address 5`, `telegram 3`, `readout`).
        locator: String,
        /// The bus address it answered on (M-Bus primary address), for the meter map.
        address: Option<u8>,
    },
    Refused {
        raw: Vec<u8>,
        reason: String,
        locator: String,
    },
}

impl Capture {
    /// Where on the line it came from.
    pub fn locator(&self) -> &str {
        match self {
            Capture::Frame { locator, .. } | Capture::Refused { locator, .. } => locator,
        }
    }
}

/// What a delivery stored.
#[derive(Debug, Clone, Default)]
pub struct Delivered {
    pub report: AcceptReport,
    pub reads: Vec<Read>,
    pub quarantined: Vec<String>,
    /// Interval days from DSMR hourly gas values and M-Bus history ([`history`]).
    pub intervals: IntervalReport,
}

/// The ingest of meters read over serial lines (probe, M-Bus, P1): turns captures into reads,
/// interval days and quarantine entries and commits them in one transaction; returns only
/// after the commit.
#[derive(Clone)]
pub struct MeterbusIngest {
    pub store: Arc<dyn Store>,
    pub vee: VeeConfig,
    /// The local days and interval VEE of the interval days ([`history`]).
    pub intervals: IntervalConfig,
    pub meters: Arc<Vec<MeterMap>>,
}

/// One meter's M-Bus storage-number history, waiting for its meter's multiplier.
struct HistoryJob {
    channel: Channel,
    source: String,
    points: Vec<history::Point>,
}

impl MeterbusIngest {
    /// Commits the reads, interval days and quarantine entries of `captures` from `port`
    /// (blocking: call from `spawn_blocking` in async code, or use [`MeterbusIngest::deliver`]).
    pub fn deliver_blocking(&self, port: &str, captures: Vec<Capture>, at: Timestamp) -> anyhow::Result<Delivered> {
        let at = to_store_precision(at);
        let clock = self.intervals.clock();
        let mut reads = Vec::new();
        let mut timed = Vec::new();
        let mut histories = Vec::new();
        let mut quarantine = Vec::new();
        for capture in captures {
            match capture {
                Capture::Frame {
                    protocol,
                    decoded,
                    raw,
                    locator,
                    address,
                } => {
                    let device = Device {
                        protocol,
                        id: &decoded.meter_id,
                        address,
                        port,
                    };
                    match mapped_reads_of(&decoded, &device, &self.meters, at, &locator) {
                        Ok(mapped) => {
                            for m in mapped {
                                let source = format!("{} {port} {locator}", protocol.name());
                                if m.captured {
                                    timed.push(history::TimedRegister {
                                        meter_id: m.read.meter_id.clone(),
                                        unit: m.unit.clone(),
                                        point: history::Point {
                                            at: m.read.read_at,
                                            value: m.read.value,
                                        },
                                        source,
                                    });
                                } else if matches!(protocol, Protocol::Mbus | Protocol::Wmbus) {
                                    let points = history::mbus_points(
                                        &decoded,
                                        &m.register,
                                        m.storage,
                                        m.tariff,
                                        m.subunit,
                                        &clock.tz,
                                    );
                                    if points.len() >= 2 {
                                        histories.push(HistoryJob {
                                            channel: Channel {
                                                meter_id: m.read.meter_id.clone(),
                                                channel: m.register.clone(),
                                                unit: m.unit.clone().unwrap_or_else(|| "count".to_owned()),
                                                direction: Direction::Delivered,
                                            },
                                            source,
                                            points,
                                        });
                                    }
                                }
                                reads.push(m.read);
                            }
                        }
                        Err(reason) => quarantine.push(QuarantineEntry {
                            source: format!("{} {port} {locator}", protocol.name()),
                            reason,
                            payload: raw,
                            received_at: at,
                        }),
                    }
                }
                Capture::Refused { raw, reason, locator } => quarantine.push(QuarantineEntry {
                    source: format!("{port} {locator}"),
                    reason,
                    payload: raw,
                    received_at: at,
                }),
            }
        }
        // Registers and intervals come from the same counter, read off the days' grid: no sum
        // check (see `without_sum_check`).
        let interval_config = without_sum_check(&self.intervals);
        // Run again from the start when the engine aborts; the names of what was quarantined
        // come from the input, not from an attempt.
        let (report, intervals) = crate::store::write(self.store.as_ref(), |txn| {
            for q in &quarantine {
                txn.quarantine(q)?;
            }
            let report = accept_in(txn, &self.vee, reads.clone(), at)?;
            // After the reads, in the same transaction: an hour's gas value minus the one stored
            // an hour before (perhaps by this very delivery), durable together.
            let mut days = history::gas_days(txn, &clock, &timed)?;
            for h in &histories {
                let multiplier = txn
                    .meter(&h.channel.meter_id)?
                    .map_or(Quantity::from_micros(1_000_000), |m| m.multiplier);
                days.extend(history::mbus_history(
                    &clock, &h.channel, &h.source, multiplier, &h.points,
                ));
            }
            let intervals = if days.is_empty() {
                IntervalReport::default()
            } else {
                crate::ingest::intervals::accept_in(txn, &interval_config, &clock, &days, at)?
            };
            Ok::<_, crate::store::StoreError>((report, intervals))
        })?;
        let quarantined: Vec<String> = quarantine
            .iter()
            .map(|q| format!("{}: {}", q.source, q.reason))
            .collect();
        // Durable now. A frame mapped to several meters counts once per read it gave.
        let [read, held, duplicate] = report.outcomes();
        crate::metrics::frames_add(
            "serial",
            &[read, held, duplicate, ("quarantined", quarantined.len() as u64)],
        );
        Ok(Delivered {
            report,
            reads,
            quarantined,
            intervals,
        })
    }

    /// [`MeterbusIngest::deliver_blocking`] on the blocking pool.
    pub async fn deliver(&self, port: &str, captures: Vec<Capture>) -> anyhow::Result<Delivered> {
        let this = self.clone();
        let port = port.to_owned();
        tokio::task::spawn_blocking(move || this.deliver_blocking(&port, captures, Timestamp::now())).await?
    }
}

/// What identifies the device a frame came from.
#[derive(Debug, Clone, Copy)]
pub struct Device<'a> {
    pub protocol: Protocol,
    /// M-Bus identification, IEC meter serial, DSMR equipment id (the decoded `meter_id`).
    pub id: &'a str,
    /// M-Bus primary address.
    pub address: Option<u8>,
    pub port: &'a str,
}

/// The reads a decoded frame yields: one per meter-map entry of its device, each from the
/// reading that entry names as the register; an unmapped device gives one read from its
/// default register under its own id (stored flagged `unknown_meter` unless such a meter
/// exists). `Err` names what was missing (the caller quarantines the frame).
///
/// A DSMR register with its own capture time (the gas meter's `0-n:24.2.1`) is read at that
/// time, not when the telegram arrived: the value is the meter's at its capture, and the
/// telegrams repeating it until the next capture are then the same read again (skipped as
/// duplicates), which is what makes it usable for hourly intervals ([`history`]).
///
/// Every read is checked against the store's limits ([`crate::model::limits`]): a device id
/// over the limit or with control characters (an IEC 62056-21 or DSMR meter sends its id as
/// text) quarantines the frame with the field named.
pub fn reads_of(
    decoded: &Decoded,
    device: &Device<'_>,
    maps: &[MeterMap],
    at: Timestamp,
    locator: &str,
) -> Result<Vec<Read>, String> {
    Ok(mapped_reads_of(decoded, device, maps, at, locator)?
        .into_iter()
        .map(|m| m.read)
        .collect())
}

/// A read of [`reads_of`] with the register it was taken from.
#[derive(Debug, Clone)]
pub struct MappedRead {
    pub read: Read,
    pub register: String,
    pub storage: u64,
    pub tariff: u64,
    pub subunit: u64,
    /// The register's unit as sent.
    pub unit: Option<String>,
    /// A DSMR M-Bus channel value (`0-n:24.x`) read at its own capture time.
    pub captured: bool,
}

/// [`reads_of`] with the registers.
pub fn mapped_reads_of(
    decoded: &Decoded,
    device: &Device<'_>,
    maps: &[MeterMap],
    at: Timestamp,
    locator: &str,
) -> Result<Vec<MappedRead>, String> {
    use crate::model::limits::{Field, check};
    check(Field::MeterId, "device id", device.id).map_err(|e| format!("{locator}: {e}"))?;
    let reads = unchecked_reads_of(decoded, device, maps, at, locator)?;
    for r in &reads {
        crate::model::limits::check_read(&r.read).map_err(|e| format!("{locator}: {e}"))?;
    }
    Ok(reads)
}

fn unchecked_reads_of(
    decoded: &Decoded,
    device: &Device<'_>,
    maps: &[MeterMap],
    at: Timestamp,
    locator: &str,
) -> Result<Vec<MappedRead>, String> {
    let mine: Vec<&MeterMap> = maps.iter().filter(|m| m.matches(device)).collect();
    let read = |meter_id: &str, found: Found, register: &str, (storage, tariff, subunit): (u64, u64, u64)| {
        let captured = found.captured_at.is_some();
        MappedRead {
            read: Read {
                meter_id: meter_id.to_owned(),
                read_at: found.captured_at.unwrap_or(at),
                value: found.value,
                raw: found.raw,
                read_type: ReadType::Probe,
                codes: decoded.flags.clone(),
                reader: Some(device.port.to_owned()),
                origin: Origin {
                    kind: OriginKind::Probe,
                    source: format!("{} {}", device.protocol.name(), device.port),
                    locator: format!("{locator} device {}", device.id),
                },
            },
            register: register.to_owned(),
            storage,
            tariff,
            subunit,
            unit: found.unit,
            captured,
        }
    };
    if mine.is_empty() {
        if device.id.is_empty() {
            return Err("the frame carries no device id and no meter is mapped to this address".into());
        }
        for selector in default_registers(device.protocol) {
            if let Some(found) = find_register(decoded, device.protocol, selector, 0, 0, 0, None)? {
                return Ok(vec![read(device.id, found, selector, (0, 0, 0))]);
            }
        }
        return Err(format!(
            "device {} is not in the meter map and has none of the default registers {:?}",
            device.id,
            default_registers(device.protocol)
        ));
    }
    let mut out = Vec::new();
    for m in mine {
        match find_register(
            decoded,
            device.protocol,
            &m.register,
            m.storage,
            m.tariff,
            m.subunit,
            m.unit.as_deref(),
        )? {
            Some(found) => out.push(read(&m.meter_id, found, &m.register, (m.storage, m.tariff, m.subunit))),
            None => {
                return Err(format!(
                    "meter {}: register {:?} (storage {}, tariff {}, subunit {}) is not in the frame of device {}",
                    m.meter_id, m.register, m.storage, m.tariff, m.subunit, device.id
                ));
            }
        }
    }
    Ok(out)
}

/// Registers of an unmapped device, first found wins.
pub fn default_registers(protocol: Protocol) -> &'static [&'static str] {
    match protocol {
        Protocol::Mbus | Protocol::Wmbus => &["volume", "energy"],
        _ => &["1.8.0", "1.8.1"],
    }
}

/// The value of the reading `register` names: an M-Bus quantity at a storage/tariff/subunit
/// (instantaneous), or an OBIS address (`1.8.0`, `1-0:1.8.1`) for IEC 62056-21 and DSMR.
/// A register's value as found in a frame.
struct Found {
    value: Quantity,
    raw: String,
    unit: Option<String>,
    /// The capture time a DSMR M-Bus channel value (`0-n:24.2.1`, `0-n:24.3.0`) carries.
    captured_at: Option<Timestamp>,
}

fn find_register(
    decoded: &Decoded,
    protocol: Protocol,
    register: &str,
    storage: u64,
    tariff: u64,
    subunit: u64,
    unit: Option<&str>,
) -> Result<Option<Found>, String> {
    let found = match protocol {
        Protocol::Mbus | Protocol::Wmbus => decoded.readings.iter().find(|r| {
            r.quantity == register
                && r.storage.unwrap_or(0) == storage
                && r.tariff.unwrap_or(0) == tariff
                && r.subunit.unwrap_or(0) == subunit
                && r.function.as_deref().is_none_or(|f| f == "instantaneous")
        }),
        _ => {
            let want = Obis::parse(register);
            decoded.readings.iter().find(|r| {
                r.obis.as_deref().is_some_and(|o| {
                    let o = Obis::parse(o);
                    o.is(&want.reduced()) && (want.a.is_none() || want.a == o.a) && (want.b.is_none() || want.b == o.b)
                }) && r.quantity != "date_time"
                    && !r.value.is_string()
            })
        }
    };
    let Some(r) = found else { return Ok(None) };
    if let Some(want) = unit
        && r.unit.as_deref() != Some(want)
    {
        return Err(format!(
            "register {register} is in {:?}, the meter map expects {want:?}",
            r.unit
        ));
    }
    let raw = match &r.value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        other => return Err(format!("register {register} holds {other}, not a number")),
    };
    let value = Quantity::parse(&raw)
        .map_err(|e| format!("register {register} value {}: {e}", crate::model::limits::quote(&raw)))?;
    // DSMR 5.0.2 §6.12: the values of the M-Bus devices behind a P1 meter (group C 24) carry
    // their capture time; an unreadable one is not used (the telegram's arrival stands).
    let captured_at = match protocol {
        Protocol::Dsmr if r.obis.as_deref().is_some_and(|o| Obis::parse(o).c == "24") => {
            r.at.as_deref()
                .and_then(|t| t.parse::<Timestamp>().ok())
                .map(to_store_precision)
        }
        _ => None,
    };
    Ok(Some(Found {
        value,
        raw,
        unit: r.unit.as_deref().map(str::to_owned),
        captured_at,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use meterd_protocols::mbus;
    use meterd_protocols::mbus::slave::{Segment, Slave, SlaveConfig};

    fn mbus_frame() -> Decoded {
        let mut cfg = SlaveConfig::water(5, 12345678, 1_234_567);
        cfg.telegrams = 2;
        let mut seg = Segment::new(vec![Slave::new(cfg)]);
        mbus::decode(&seg.on_bytes(&mbus::link::req_ud2(5, true))).unwrap()
    }

    fn map(toml_text: &str) -> Vec<MeterMap> {
        let c: MeterbusConfig = toml::from_str(toml_text).unwrap();
        c.check().unwrap();
        c.meters
    }

    #[test]
    fn mapped_and_unmapped_devices() {
        let d = mbus_frame();
        let dev = Device {
            protocol: Protocol::Mbus,
            id: "12345678",
            address: Some(5),
            port: "/dev/ttyM",
        };
        let at = Timestamp::now();
        let unmapped = reads_of(&d, &dev, &[], at, "address 5").unwrap();
        assert_eq!(unmapped.len(), 1);
        assert_eq!(unmapped[0].meter_id, "12345678");
        assert_eq!(unmapped[0].value, Quantity::parse("1234.567").unwrap());
        let maps = map("[[meters]]\nmeter_id = \"W-1\"\nmbus_id = \"12345678\"\nregister = \"volume\"\n");
        let r = reads_of(&d, &dev, &maps, at, "address 5").unwrap();
        assert_eq!(r[0].meter_id, "W-1");
        let maps = map("[[meters]]\nmeter_id = \"W-1\"\nmbus_address = 5\nregister = \"volume\"\nstorage = 3\n");
        let e = reads_of(&d, &dev, &maps, at, "address 5").unwrap_err();
        assert!(e.contains("storage 3"), "{e}");
        let maps = map("[[meters]]\nmeter_id = \"W-1\"\nmbus_address = 5\nregister = \"volume\"\nunit = \"kWh\"\n");
        assert!(reads_of(&d, &dev, &maps, at, "x").unwrap_err().contains("kWh"));
    }

    #[test]
    fn a_device_id_over_the_limit_or_with_control_characters_is_refused_by_name() {
        let d = mbus_frame();
        let at = Timestamp::now();
        let long = "7".repeat(1 << 20);
        for id in [long.as_str(), "1234\u{0}5678", "1234\u{1b}[2J"] {
            let dev = Device {
                protocol: Protocol::Iec62056_21,
                id,
                address: None,
                port: "/dev/ttyP",
            };
            let e = reads_of(&d, &dev, &[], at, "readout").unwrap_err();
            assert!(e.starts_with("readout: device id: "), "{e}");
            assert!(e.len() < 300, "{} bytes", e.len());
        }
        // Mapped by address, a bad id is refused all the same (it would be in the read's origin).
        let maps = map("[[meters]]\nmeter_id = \"W-1\"\nmbus_address = 5\nregister = \"volume\"\n");
        let dev = Device {
            protocol: Protocol::Mbus,
            id: "1\n2",
            address: Some(5),
            port: "/dev/ttyM",
        };
        assert!(
            reads_of(&d, &dev, &maps, at, "address 5")
                .unwrap_err()
                .contains("U+000A")
        );
    }

    #[test]
    fn obis_registers_of_a_readout() {
        let text =
            b"/ISk5MT174-0001\r\n\x020.0.0(12345678)\r\n1.8.0(0001234.567*kWh)\r\n1-0:2.8.0(10*kWh)\r\n!\r\n\x03";
        let mut input = text.to_vec();
        input.push(meterd_protocols::iec62056_21::bcc(
            &text[text.iter().position(|&b| b == 2).unwrap() + 1..],
        ));
        let d = meterd_protocols::iec62056_21::decode(&input).unwrap();
        let dev = Device {
            protocol: Protocol::Iec62056_21,
            id: &d.meter_id,
            address: None,
            port: "p",
        };
        let r = reads_of(&d, &dev, &[], Timestamp::now(), "readout").unwrap();
        assert_eq!((r[0].meter_id.as_str(), r[0].raw.as_str()), ("12345678", "1234.567"));
        let maps = map("[[meters]]\nmeter_id = \"E-9\"\niec_serial = \"12345678\"\nregister = \"1-0:2.8.0\"\n");
        let r = reads_of(&d, &dev, &maps, Timestamp::now(), "readout").unwrap();
        assert_eq!(
            (r[0].meter_id.as_str(), r[0].value),
            ("E-9", Quantity::parse("10").unwrap())
        );
    }
}
