//! A group of decoded MQTT messages → ONE durable transaction: de-duplication keys, reads
//! (through [`accept_in`], so VEE runs), interval reads, IDM/NetIDM interval days (through
//! the interval ingest, so interval VEE runs), tamper state, quarantine, gateway health and
//! outbox rows. The caller acks the group's messages only after [`commit_group`] returned
//! `Ok`.
//!
//! IDM/NetIDM intervals go two ways this release: into the old `interval_reads` table (5-minute
//! usage with an end time, which the register VEE's spike check reads) and into the interval
//! model as days of channel [`IDM_CHANNEL`] ([`idm_days`]).

use std::collections::{BTreeMap, HashMap};

use jiff::{SignedDuration, Timestamp};
use meterd_protocols::decode::Protocol;
use meterd_protocols::ert;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::config::MqttConfig;
use super::message::{Frame, Unit, binary, endpoint_key};
use crate::ingest::intervals::{IncomingDay, IncomingValue, IntervalReport, without_sum_check};
use crate::ingest::{AcceptReport, accept_in};
use crate::model::interval::{Channel, DayClock, Direction, Quality};
use crate::model::{
    GatewayState, IntervalRead, Meter, Origin, OriginKind, OutboxEntry, Quantity, QuarantineEntry, Read, ReadStatus,
    ReadType, Rule, codes, to_store_precision,
};
use crate::store::rules::INTERVAL_WINDOW;
use crate::store::{HeldTelegram, MAX_HELD};
use crate::store::{Result, Rules, Store, WriteTxn};
use crate::vee::VeeConfig;
use crate::vee::interval::IntervalConfig;
use meterd_protocols::decode::Keys;
use meterd_protocols::wmbus::compact::FormatKey;

/// The interval channel of an ERT endpoint's IDM/NetIDM differential intervals.
pub const IDM_CHANNEL: &str = "idm";
/// IDM/NetIDM intervals are 5 minutes long (`interval-data.md` §1).
const IDM_MINUTES: u16 = 5;

/// `seen` namespace of radio transmissions.
pub const SEEN_FRAMES: &str = "mqtt";
/// `seen` namespace of quarantined payloads (a redelivered bad message is kept once).
pub const SEEN_BAD: &str = "mqtt-bad";

/// One received message, decoded.
#[derive(Debug, Clone)]
pub struct Message {
    pub topic: String,
    pub units: Vec<Unit>,
    /// When meterd received it (gateway health runs on meterd's clock).
    pub received: Timestamp,
}

/// Everything one transaction does.
#[derive(Debug, Default, Clone)]
pub struct Job {
    pub messages: Vec<Message>,
    /// Outbox ids whose PUBACK came.
    pub published: Vec<u64>,
    /// Alerts to put in the outbox (gateway silence).
    pub alerts: Vec<OutboxEntry>,
    /// Drop `seen` keys older than the window in this transaction.
    pub expire_seen: bool,
    /// The messages are quarantined input retried (`meterd quarantine retry`), not traffic:
    /// gateway health (message counts, last heard) is left as it is.
    pub replay: bool,
    /// The wM-Bus keys, to decode held compact frames once their layout is known.
    pub keys: std::sync::Arc<meterd_protocols::decode::Keys>,
}

/// Whether de-duplication keys are due to be expired in the next job (once a minute; `last`
/// is reset when they are): the cadence of every source that commits jobs.
pub fn expire_due(last: &mut tokio::time::Instant) -> bool {
    let due = last.elapsed() > std::time::Duration::from_secs(60);
    if due {
        *last = tokio::time::Instant::now();
    }
    due
}

/// What a committed job did.
#[derive(Debug, Default)]
pub struct Committed {
    pub messages: u64,
    pub frames: u64,
    /// Copies of transmissions already stored (other gateways, repeats, redeliveries), and
    /// redelivered bad messages already quarantined.
    pub duplicates: u64,
    pub quarantined: u64,
    /// wM-Bus compact frames held until their layout is known.
    pub held: u64,
    /// Held compact frames decoded now (their meter type's full frame came).
    pub released: u64,
    /// Gateway status messages.
    pub statuses: u64,
    pub intervals: u64,
    pub reads: AcceptReport,
    /// IDM/NetIDM interval days (channel `idm`) stored or found unchanged.
    pub interval_days: IntervalReport,
    /// New outbox rows, for the publisher.
    pub outbox: Vec<(u64, OutboxEntry)>,
}

/// Runs one job in one transaction and commits it durably.
pub fn commit_group(
    store: &dyn Store,
    cfg: &MqttConfig,
    vee: &VeeConfig,
    intervals: &IntervalConfig,
    job: Job,
) -> Result<Committed> {
    let now = to_store_precision(Timestamp::now());
    // Run again from the job as received when the engine aborts: nothing of a failed attempt
    // (seen keys, outbox ids, counts) is kept. The caller PUBACKs only after this returned.
    crate::store::write(store, |txn| apply(txn, cfg, vee, intervals, job.clone(), now))
}

/// [`commit_group`] inside a caller's transaction.
pub fn apply(
    txn: &mut dyn WriteTxn,
    cfg: &MqttConfig,
    vee: &VeeConfig,
    intervals: &IntervalConfig,
    job: Job,
    now: Timestamp,
) -> Result<Committed> {
    let mut job = job;
    let released = resolve_compact(txn, &mut job)?;
    let mut out = Committed {
        messages: job.messages.len() as u64 - released,
        released,
        ..Committed::default()
    };
    if job.expire_seen {
        let window = SignedDuration::from_secs(cfg.dedup_window_secs as i64);
        let before = now.checked_sub(window).unwrap_or(Timestamp::MIN);
        txn.forget_seen_before(SEEN_FRAMES, before)?;
        txn.forget_seen_before(SEEN_BAD, before)?;
        out.quarantined += expire_held(txn, before, now)?;
    }
    // The meters this job validates, locked before anything of theirs is read (VEE per meter
    // is serialised across instances sharing the store).
    let mut ids: Vec<String> = job
        .messages
        .iter()
        .flat_map(|m| &m.units)
        .filter_map(|u| match u {
            Unit::Frame(frame) => {
                let endpoint = endpoint_key(&frame.decoded);
                Some(cfg.endpoints.get(&endpoint).cloned().unwrap_or(endpoint))
            }
            _ => None,
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    txn.lock_meters(&ids.iter().map(String::as_str).collect::<Vec<_>>())?;
    drop(ids);
    let mut gateways: BTreeMap<String, GatewayState> = BTreeMap::new();
    let mut meters: HashMap<String, Option<Meter>> = HashMap::new();
    let mut tamper: HashMap<String, (Timestamp, u64)> = HashMap::new();
    let mut reads = Vec::new();
    let clock = intervals.clock();
    // IDM/NetIDM (and wM-Bus history) values by meter, channel and local day: one incoming day
    // each, so two frames of a job that repeat an interval merge as one (a differing repeat is
    // an interval_duplicate).
    let mut idm: BTreeMap<(String, String, jiff::civil::Date), IncomingDay> = BTreeMap::new();
    let replay = job.replay;

    // Every frame's de-duplication key in one go, answered in the order the loop meets them.
    let keys: Vec<&[u8]> = job
        .messages
        .iter()
        .flat_map(|m| &m.units)
        .filter_map(|u| match u {
            Unit::Frame(frame) => Some(frame.dedup_key.as_bytes()),
            _ => None,
        })
        .collect();
    let mut first_seen = txn.mark_seen_all(SEEN_FRAMES, &keys, now)?.into_iter();
    drop(keys);

    // Held frames released by this job come last; they were counted as messages when held,
    // so their gateway counts only what became of them.
    let live = job.messages.len() - released as usize;
    for (index, msg) in job.messages.into_iter().enumerate() {
        let released_now = index >= live;
        for unit in msg.units {
            match unit {
                Unit::Status { gateway, status } => {
                    out.statuses += 1;
                    let g = gateway_entry(txn, &mut gateways, &gateway)?;
                    g.status = Some(status);
                    g.status_at = Some(msg.received);
                }
                Unit::Bad {
                    gateway,
                    locator,
                    why,
                    reason,
                    payload,
                } => {
                    let g = gateway_entry(txn, &mut gateways, &gateway)?;
                    if released_now {
                        g.count_outcome(Some(why));
                    } else {
                        g.count(msg.received, Some(why), cfg.health_window_secs);
                        g.last_topic = msg.topic.clone();
                    }
                    let digest = Sha256::new()
                        .chain_update(locator.as_bytes())
                        .chain_update([0])
                        .chain_update(&payload)
                        .finalize();
                    if txn.mark_seen(SEEN_BAD, &digest, now)? {
                        txn.quarantine(&QuarantineEntry {
                            source: source_of(&locator),
                            reason,
                            payload,
                            received_at: now,
                        })?;
                        out.quarantined += 1;
                    } else {
                        out.duplicates += 1;
                    }
                }
                Unit::Held(held) => {
                    if !replay {
                        let g = gateway_entry(txn, &mut gateways, &held.gateway)?;
                        g.count_held(msg.received, cfg.health_window_secs);
                        g.last_topic = msg.topic.clone();
                    }
                    if txn.count_held_telegrams()? < MAX_HELD {
                        txn.hold_telegram(&held)?;
                        out.held += 1;
                    } else {
                        // Nothing dropped: past the bound it is kept in the quarantine.
                        let reason = meterd_protocols::Error::CompactFormat {
                            meter: held.meter.clone(),
                            key: held.format_key(),
                        };
                        let digest = Sha256::new()
                            .chain_update(held.locator.as_bytes())
                            .chain_update([0])
                            .chain_update(&held.payload)
                            .finalize();
                        if txn.mark_seen(SEEN_BAD, &digest, now)? {
                            txn.quarantine(&QuarantineEntry {
                                source: source_of(&held.locator),
                                reason: format!("{reason}; the holding area is full ({MAX_HELD} frames)"),
                                payload: held.payload.clone(),
                                received_at: now,
                            })?;
                            out.quarantined += 1;
                        } else {
                            out.duplicates += 1;
                        }
                    }
                }
                Unit::Frame(frame) => {
                    out.frames += 1;
                    if !replay {
                        let g = gateway_entry(txn, &mut gateways, &frame.gateway)?;
                        if released_now {
                            g.count_outcome(None);
                        } else {
                            g.count(msg.received, None, cfg.health_window_secs);
                            g.last_topic = msg.topic.clone();
                        }
                    }
                    let fresh = first_seen.next().ok_or_else(|| {
                        crate::store::StoreError::Engine("mark_seen_all answered fewer keys than asked".into())
                    })?;
                    if !fresh {
                        out.duplicates += 1;
                        continue;
                    }
                    let endpoint = endpoint_key(&frame.decoded);
                    let meter_id = cfg
                        .endpoints
                        .get(&endpoint)
                        .cloned()
                        .unwrap_or_else(|| endpoint.clone());
                    if !meters.contains_key(&meter_id) {
                        let m = txn.meter(&meter_id)?;
                        meters.insert(meter_id.clone(), m);
                    }
                    let meter = meters[&meter_id].as_ref();
                    out.intervals += store_intervals(txn, &meter_id, &frame)?;
                    let mut days = idm_days(txn, &clock, &meter_id, meter, &frame)?;
                    days.extend(wmbus_history_days(&clock, &meter_id, meter, &frame));
                    for day in days {
                        match idm.entry((meter_id.clone(), day.channel.channel.clone(), day.date)) {
                            std::collections::btree_map::Entry::Vacant(e) => {
                                e.insert(day);
                            }
                            std::collections::btree_map::Entry::Occupied(mut e) => {
                                let have = e.get_mut();
                                for v in day.values {
                                    if !have.values.contains(&v) {
                                        have.values.push(v);
                                    }
                                }
                            }
                        }
                    }
                    let tamper_changed = tamper_change(txn, &mut tamper, &endpoint, &frame)?;
                    match read_of(&frame, meter, meter_id, tamper_changed) {
                        Some(read) => reads.push(read),
                        // Decoded, but nothing to store as a read (an R900 "no read" filler,
                        // a wM-Bus telegram without a volume or energy register, a register
                        // out of range): kept with the reason rather than silently gone.
                        None => {
                            txn.quarantine(&QuarantineEntry {
                                source: source_of(&frame.locator),
                                reason: no_read_reason(&frame),
                                payload: frame.raw.clone(),
                                received_at: now,
                            })?;
                            out.quarantined += 1;
                        }
                    }
                }
            }
        }
    }
    for (endpoint, (at, counters)) in &tamper {
        txn.set_tamper_state(endpoint, *at, *counters)?;
    }
    for g in gateways.values() {
        txn.put_gateway(g)?;
    }
    out.reads = accept_in(txn, vee, reads, now)?;
    out.duplicates += out.reads.duplicates_skipped;
    // After the reads, in the same transaction: nothing is acknowledged before the days are
    // durable too.
    let days: Vec<IncomingDay> = idm.into_values().collect();
    if !days.is_empty() {
        out.interval_days =
            // Without the sum check: an IDM register read's time is the end of the meter's own
            // interval ([`read_of`]), off the 5-minute grid the days use, so every span between
            // two such reads cuts an interval at each end and the check would flag correct data;
            // the register and the differentials come from the same counter in the same packet.
            crate::ingest::intervals::accept_in(txn, &without_sum_check(intervals), &clock, &days, now)?;
    }

    for id in job.published {
        txn.remove_outbox(id)?;
    }
    if let Some(topic) = &cfg.publish_topic {
        for &id in &out.reads.read_ids {
            let Some(stored) = txn.read(id)? else { continue };
            let alert = stored
                .flags
                .iter()
                .any(|f| matches!(f.rule, Rule::Tamper | Rule::Leak | Rule::ReverseFlow));
            let kind = match stored.status {
                ReadStatus::Validated => "read",
                _ if alert => "alert",
                _ => continue,
            };
            let payload = json!({
                "msg_id": format!("{kind}:read:{id}"),
                "kind": kind,
                "read_id": id,
                "meter_id": stored.read.meter_id,
                "read_at": stored.read.read_at.to_string(),
                "value": stored.read.value,
                "consumption": stored.consumption,
                "status": stored.status.as_str(),
                "flags": stored.flags.iter().map(|f| f.rule.as_str()).collect::<Vec<_>>(),
                "gateway": stored.read.reader,
            });
            let entry = OutboxEntry {
                topic: topic.clone(),
                payload: serde_json::to_vec(&payload).expect("JSON"),
            };
            let oid = txn.push_outbox(&entry)?;
            out.outbox.push((oid, entry));
        }
        for entry in job.alerts {
            let oid = txn.push_outbox(&entry)?;
            out.outbox.push((oid, entry));
        }
    }
    Ok(out)
}

/// The quarantine source of a unit's locator: `mqtt TOPIC`, or a serial receiver's own
/// `receiver PORT`.
fn source_of(locator: &str) -> String {
    if locator.starts_with(crate::ingest::receiver::SOURCE_PREFIX) {
        locator.to_owned()
    } else {
        format!("mqtt {locator}")
    }
}

/// wM-Bus compact frames, before anything else of the job: the layouts of the job's full
/// frames are stored (when new), the job's compact frames whose layout is known now (stored
/// before, or learned in this job) are decoded, and the frames held for a layout learned in
/// this job are decoded and released, appended to the job as messages of their own (one per
/// frame, at its reception time). Returns how many held frames were released.
fn resolve_compact(txn: &mut dyn WriteTxn, job: &mut Job) -> Result<u64> {
    let mut layouts: HashMap<FormatKey, Vec<u8>> = HashMap::new();
    let mut new_keys: Vec<FormatKey> = Vec::new();
    let mut waiting: Vec<FormatKey> = Vec::new();
    for unit in job.messages.iter().flat_map(|m| &m.units) {
        match unit {
            Unit::Frame(f) => {
                let Some((key, layout)) = &f.layout else { continue };
                if layouts.contains_key(key) {
                    continue;
                }
                // The first layout learned for a key stays: a later full frame (a forged one,
                // or a CRC collision of another layout) cannot rewrite it; a compact frame that
                // does not fit it fails the full-frame CRC and is quarantined with the reason.
                match txn.wmbus_layout(key)? {
                    Some(stored) => {
                        layouts.insert(*key, stored);
                    }
                    None => {
                        txn.put_wmbus_layout(key, layout)?;
                        new_keys.push(*key);
                        layouts.insert(*key, layout.clone());
                    }
                }
            }
            Unit::Held(h) => waiting.push(h.format_key()),
            _ => {}
        }
    }
    if waiting.is_empty() && new_keys.is_empty() {
        return Ok(0);
    }
    for key in waiting {
        if !layouts.contains_key(&key)
            && let Some(layout) = txn.wmbus_layout(&key)?
        {
            layouts.insert(key, layout);
        }
    }
    let keys = std::sync::Arc::clone(&job.keys);
    for unit in job.messages.iter_mut().flat_map(|m| &mut m.units) {
        if let Unit::Held(h) = unit
            && layouts.contains_key(&h.format_key())
        {
            *unit = decode_held(h, &keys, &layouts);
        }
    }
    let mut released = 0;
    if !new_keys.is_empty() && txn.count_held_telegrams()? > 0 {
        for (id, h) in txn.held_telegrams()? {
            if !new_keys.contains(&h.format_key()) {
                continue;
            }
            // Another instance sharing the store may have released it first.
            if !txn.release_held_telegram(id)? {
                continue;
            }
            let unit = decode_held(&h, &keys, &layouts);
            job.messages.push(Message {
                topic: h.topic.clone(),
                units: vec![unit],
                received: h.received_at,
            });
            released += 1;
        }
    }
    Ok(released)
}

/// Held compact frames received before `before` (the de-duplication window) whose layout was
/// never learned (a meter type whose full frame never comes, or noise that looked compact) go
/// to the quarantine with the reason, so the holding area keeps room for the frames that will
/// decode. Returns how many.
fn expire_held(txn: &mut dyn WriteTxn, before: Timestamp, now: Timestamp) -> Result<u64> {
    if txn.count_held_telegrams()? == 0 {
        return Ok(0);
    }
    let mut moved = 0;
    for (id, h) in txn.held_telegrams()? {
        if h.received_at >= before || !txn.release_held_telegram(id)? {
            continue;
        }
        let reason = meterd_protocols::Error::CompactFormat {
            meter: h.meter.clone(),
            key: h.format_key(),
        };
        txn.quarantine(&QuarantineEntry {
            source: source_of(&h.locator),
            reason: format!("{reason}; no full frame taught its layout within the de-duplication window"),
            payload: h.payload,
            received_at: now,
        })?;
        moved += 1;
    }
    Ok(moved)
}

/// A held compact frame decoded with the layouts known now, under its own locator.
fn decode_held(h: &HeldTelegram, keys: &Keys, layouts: &HashMap<FormatKey, Vec<u8>>) -> Unit {
    // Held frames are the frame's bytes (a hex line's decoded), so they are decoded as binary
    // whatever they look like (a binary telegram may well be valid UTF-8).
    match binary(&h.topic, &h.payload, &h.gateway, h.received_at, keys, layouts) {
        Unit::Frame(mut f) => {
            f.locator = h.locator.clone();
            Unit::Frame(f)
        }
        Unit::Bad {
            gateway,
            why,
            reason,
            payload,
            ..
        } => Unit::Bad {
            gateway,
            locator: h.locator.clone(),
            why,
            reason,
            payload,
        },
        other => other,
    }
}

fn gateway_entry<'a>(
    txn: &dyn WriteTxn,
    map: &'a mut BTreeMap<String, GatewayState>,
    id: &str,
) -> Result<&'a mut GatewayState> {
    if !map.contains_key(id) {
        let state = txn.gateway(id)?.unwrap_or_else(|| GatewayState::new(id));
        map.insert(id.to_owned(), state);
    }
    Ok(map.get_mut(id).expect("inserted"))
}

/// IDM/NetIDM intervals (47 or 27 × 5 min) into the interval table; returns how many were new.
fn store_intervals(txn: &mut dyn WriteTxn, meter_id: &str, frame: &Frame) -> Result<u64> {
    let Some(intervals) = ert::idm::interval_reads_of(&frame.decoded, Some(frame.heard_at)) else {
        return Ok(0);
    };
    let reads: Vec<IntervalRead> = intervals
        .into_iter()
        .filter_map(|i| {
            Some(IntervalRead {
                end: to_store_precision(i.end?),
                number: i.number,
                consumption: u64::from(i.consumption),
            })
        })
        .collect();
    txn.put_interval_reads(meter_id, &reads)
}

/// A frame's IDM/NetIDM intervals as incoming days of channel [`IDM_CHANNEL`] (none for
/// other protocols).
///
/// - Times: the end of each interval as first heard (the `interval_reads` row within
///   [`INTERVAL_WINDOW`] that [`store_intervals`] kept or just stored), rounded to the nearest
///   5-minute boundary; the start is 5 minutes before. IDM interval ends are computed from the
///   reception time (rtlamr-collect's rule), so every packet gives a slightly different end;
///   anchoring on the first one keeps an interval in one slot even when the meter's own
///   interval boundaries lie near the middle between two 5-minute marks (`interval-data.md`
///   §1: start times recomputed from every packet's reception time drift).
/// - Values: the differential count scaled as [`read_of`] scales the register of the same
///   packet (÷ 10^decimals, so in the meter's unit) and × the meter's multiplier, as the
///   interval ingest scales register reads for the sum check; a meter not in the meter list:
///   the raw count, unit `count`.
fn idm_days(
    txn: &dyn WriteTxn,
    clock: &DayClock,
    meter_id: &str,
    meter: Option<&Meter>,
    frame: &Frame,
) -> Result<Vec<IncomingDay>> {
    let Some(list) = ert::idm::interval_reads_of(&frame.decoded, Some(frame.heard_at)) else {
        return Ok(Vec::new());
    };
    let ends: Vec<Timestamp> = list.iter().filter_map(|i| i.end.map(to_store_precision)).collect();
    let (Some(first), Some(last)) = (ends.iter().min(), ends.iter().max()) else {
        return Ok(Vec::new());
    };
    let from = first.checked_sub(INTERVAL_WINDOW).unwrap_or(Timestamp::MIN);
    let to = last
        .checked_add(INTERVAL_WINDOW + SignedDuration::from_micros(1))
        .unwrap_or(Timestamp::MAX);
    let stored: Vec<Timestamp> = txn.interval_reads(meter_id, from, to)?.iter().map(|r| r.end).collect();
    let channel = Channel {
        meter_id: meter_id.to_owned(),
        channel: IDM_CHANNEL.to_owned(),
        unit: meter.map_or_else(|| "count".to_owned(), |m| m.unit.clone()),
        direction: Direction::Delivered,
    };
    let step = SignedDuration::from_mins(i64::from(IDM_MINUTES));
    let values = list.iter().filter_map(|i| {
        let end = to_store_precision(i.end?);
        let heard = stored
            .iter()
            .copied()
            .filter(|s| s.duration_since(end).abs() <= INTERVAL_WINDOW)
            .min_by_key(|s| s.duration_since(end).abs())
            .unwrap_or(end);
        let start = round_to(heard, step)?.checked_sub(step).ok()?;
        Some((start, idm_value(i.consumption, meter)?))
    });
    let source = format!("mqtt {} {}", frame.gateway, frame.decoded.protocol);
    // Rounded starts are always on a 5-minute boundary of the local day (zone offsets are
    // whole multiples of 5 minutes in practice); one that is not is left out, not an error
    // that would hold the whole group.
    let mut days = Vec::new();
    for (start, value) in values {
        let v = IncomingValue {
            interval: 0,
            value,
            quality: Quality::Actual,
            method: None,
        };
        if let Ok(d) = crate::ingest::intervals::place_by_time(clock, &channel, IDM_MINUTES, &source, [(start, v)]) {
            days.extend(d);
        }
    }
    // One incoming day per local date.
    let mut merged: Vec<IncomingDay> = Vec::new();
    for d in days {
        match merged.iter_mut().find(|m| m.date == d.date) {
            Some(m) => m.values.extend(d.values),
            None => merged.push(d),
        }
    }
    Ok(merged)
}

/// A wM-Bus telegram's storage-number history (EN 13757-3) of the register [`read_of`] takes,
/// as interval days of a channel named after it, when its stored values are spaced 15, 30 or
/// 60 minutes ([`crate::ingest::meterbus::history`]); a daily or monthly history gives none.
fn wmbus_history_days(clock: &DayClock, meter_id: &str, meter: Option<&Meter>, frame: &Frame) -> Vec<IncomingDay> {
    use crate::ingest::meterbus::history;
    if frame.protocol != Protocol::Wmbus {
        return Vec::new();
    }
    let Some(register) = frame.decoded.readings.iter().find(|r| {
        matches!(&*r.quantity, "volume" | "energy")
            && r.storage.unwrap_or(0) == 0
            && r.tariff.unwrap_or(0) == 0
            && r.subunit.unwrap_or(0) == 0
            && r.function.as_deref().is_none_or(|f| f == "instantaneous")
    }) else {
        return Vec::new();
    };
    let points = history::mbus_points(&frame.decoded, &register.quantity, 0, 0, 0, &clock.tz);
    if points.len() < 2 {
        return Vec::new();
    }
    let channel = Channel {
        meter_id: meter_id.to_owned(),
        channel: register.quantity.to_string(),
        unit: register.unit.as_deref().unwrap_or("count").to_owned(),
        direction: Direction::Delivered,
    };
    let multiplier = meter.map_or(Quantity::from_micros(1_000_000), |m| m.multiplier);
    let source = format!("mqtt {} {}", frame.gateway, frame.decoded.protocol);
    history::mbus_history(clock, &channel, &source, multiplier, &points)
}

/// An IDM differential count in the meter's unit × its multiplier (see [`idm_days`]).
fn idm_value(count: u16, meter: Option<&Meter>) -> Option<Quantity> {
    let q = Quantity::from_units(i64::from(count))?;
    match meter {
        Some(m) => q
            .mul_div(1, 10i128.checked_pow(u32::from(m.decimals))?)?
            .mul_factor(m.multiplier),
        None => Some(q),
    }
}

/// `at` rounded to the nearest multiple of `step` since the Unix epoch (half up).
fn round_to(at: Timestamp, step: SignedDuration) -> Option<Timestamp> {
    let step = step.as_nanos();
    let ns = at.as_nanosecond();
    let floor = ns.checked_sub(ns.rem_euclid(step))?;
    let rounded = if ns - floor >= step / 2 {
        floor.checked_add(step)?
    } else {
        floor
    };
    Timestamp::from_nanosecond(rounded).ok()
}

/// The endpoint's tamper counters (SCM: physical and encoder; SCM+: the tamper word).
fn tamper_counters(frame: &Frame) -> Option<u64> {
    let f = |k: &str| frame.decoded.fields.get(k).and_then(serde_json::Value::as_u64);
    match frame.protocol {
        Protocol::Scm => Some(f("TamperPhy")? << 2 | f("TamperEnc")?),
        Protocol::ScmPlus => f("Tamper"),
        // rtlamr's IDM tamper fields are unreliable (rtlamr2mqtt #254; see
        // meterd_protocols::ert::json); R900 has none.
        _ => None,
    }
}

/// Whether the tamper counters changed since the endpoint's previous (older) transmission.
/// Every real SCM has a non-zero counter, so a non-zero value alone means nothing; a change does.
fn tamper_change(
    txn: &dyn WriteTxn,
    pending: &mut HashMap<String, (Timestamp, u64)>,
    endpoint: &str,
    frame: &Frame,
) -> Result<bool> {
    let Some(counters) = tamper_counters(frame) else {
        return Ok(false);
    };
    let previous = match pending.get(endpoint) {
        Some(p) => Some(*p),
        None => txn.tamper_state(endpoint)?,
    };
    let at = to_store_precision(frame.heard_at);
    match previous {
        None => {
            pending.insert(endpoint.to_owned(), (at, counters));
            Ok(false)
        }
        Some((prev_at, prev)) if prev_at < at => {
            pending.insert(endpoint.to_owned(), (at, counters));
            Ok(prev != counters)
        }
        // An older transmission arriving late says nothing about a change now.
        Some(_) => Ok(false),
    }
}

impl Committed {
    /// What became of every unit received, for `meterd_frames_total{source="mqtt",outcome}`:
    /// `read` (validated), `held` (flagged for review), `duplicate`, `quarantined`, `status`.
    pub fn outcomes(&self) -> [(&'static str, u64); 5] {
        [
            ("read", self.reads.validated),
            ("held", self.reads.flagged),
            ("duplicate", self.duplicates),
            ("quarantined", self.quarantined),
            ("status", self.statuses),
        ]
    }
}

/// Why a decoded frame gave no read, naming the frame.
fn no_read_reason(frame: &Frame) -> String {
    let d = &frame.decoded;
    let registers: Vec<&str> = d.readings.iter().take(8).map(|r| r.quantity.as_ref()).collect();
    format!(
        "no usable read: {} frame of meter {} decoded but carries no current register value (readings: {})",
        d.protocol,
        d.meter_id,
        if registers.is_empty() {
            "none".to_owned()
        } else {
            registers.join(", ")
        }
    )
}

/// The read a frame carries, or `None` when it carries no register (R900 "no read" filler,
/// a wM-Bus telegram without a volume or energy register).
fn read_of(frame: &Frame, meter: Option<&Meter>, meter_id: String, tamper_changed: bool) -> Option<Read> {
    let d = &frame.decoded;
    let register = d.readings.iter().find(|r| r.quantity == "register").or_else(|| {
        d.readings.iter().find(|r| {
            matches!(&*r.quantity, "volume" | "energy")
                && r.storage.unwrap_or(0) == 0
                && r.tariff.unwrap_or(0) == 0
                && r.subunit.unwrap_or(0) == 0
                && r.function.as_deref().is_none_or(|f| f == "instantaneous")
        })
    })?;
    let raw = match &register.value {
        serde_json::Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let mut value = Quantity::parse(&raw).ok()?;
    // The ERT sends the dials as a whole number; the meter's decimals place the point.
    let scale = |q: Quantity, m: &Meter| q.mul_div(1, 10i128.pow(u32::from(m.decimals)));
    let count_register = register.quantity == "register";
    if count_register && let Some(m) = meter {
        value = scale(value, m)?;
    }
    let mut read_codes = Vec::new();
    for flag in [codes::LEAK, codes::REVERSE_FLOW, codes::NO_USE] {
        if d.flags.iter().any(|f| f == flag) {
            read_codes.push(flag.to_owned());
        }
    }
    if tamper_changed {
        read_codes.push(codes::TAMPER.to_owned());
    }
    if count_register && let Some(modulus) = ert::register_modulus(frame.protocol) {
        let q = Quantity::from_units(modulus as i64)?;
        let q = match meter {
            Some(m) => scale(q, m)?,
            None => q,
        };
        read_codes.push(format!("{}{q}", codes::REGISTER_MODULUS_PREFIX));
    }
    // IDM's LastConsumptionCount holds at the start of the current interval.
    let read_at = match frame.protocol {
        Protocol::Idm | Protocol::NetIdm => {
            let tto = d
                .fields
                .get("TransmitTimeOffset")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0);
            ert::idm::interval_end(frame.heard_at, 0, tto as u16).unwrap_or(frame.heard_at)
        }
        _ => frame.heard_at,
    };
    Some(Read {
        meter_id,
        read_at,
        value,
        raw,
        read_type: ReadType::Gateway,
        codes: read_codes,
        reader: Some(frame.gateway.clone()),
        origin: Origin {
            kind: OriginKind::Gateway,
            source: frame.gateway.clone(),
            locator: format!("{} {}", frame.locator, frame.dedup_key),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::mqtt::message::decode_payload;
    use crate::model::interval::IntervalRule;
    use crate::model::{MeterStatus, Service};
    use crate::store::RedbStore;
    use meterd_protocols::decode::Keys;
    use meterd_protocols::ert::scm::Scm;

    fn scm(tamper_phy: u8, consumption: u32, at: &str) -> Message {
        let frame = Scm {
            id: 54585868,
            ert_type: 12,
            tamper_phy,
            tamper_enc: 0,
            consumption,
            checksum: 0,
        }
        .encode();
        let env = format!(
            r#"{{"gateway":"gw1","received_at":"{at}","hex":"{}"}}"#,
            hex::encode(frame)
        );
        let received = Timestamp::now();
        Message {
            topic: "meters/gw1/raw".into(),
            units: decode_payload("meters/gw1/raw", env.as_bytes(), "gw1", received, &Keys::new()),
            received,
        }
    }

    /// IDM packets heard over the air (rtl_433_tests `tests/idm/`, as in
    /// `meterd_protocols::ert::idm`): I1 and I3 carry the same intervals.
    const IDM_I1: &str = "555516A31C5CC6041700AC171DF6BC020100EF0900000000000000000000053004000000000000000000000000000000000000000000000000000000008000000000000000000000200000000000000000000008000001DCEABA7C37";
    const IDM_I3: &str = "555516A31C5CC6041700AC171DF6BC020100EF090000000000000000000005300400000000000000000000000000000000000000000000000000000000800000000000000000000020000000000000000000000800000D27EABA20A6";
    /// The packet of the interval before I1's (ConsumptionIntervalCount 0xF5).
    const IDM_I2: &str = "555516A31C5CC6041700AC171DF5BC020100EF090000000000000000000005300400000000000000000000000000000000000000000000000000000100000000000000000000004000000000000000000000100000000D06EABAAA64";

    fn idm(hex: &str, at: &str) -> Message {
        let env = format!(r#"{{"gateway":"gw1","received_at":"{at}","hex":"{hex}"}}"#);
        let received = Timestamp::now();
        Message {
            topic: "meters/gw1/raw".into(),
            units: decode_payload("meters/gw1/raw", env.as_bytes(), "gw1", received, &Keys::new()),
            received,
        }
    }

    #[test]
    fn idm_intervals_become_interval_days_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open_dir(dir.path()).unwrap();
        let (cfg, vee) = (MqttConfig::default(), VeeConfig::default());
        let intervals = IntervalConfig {
            time_zone: Some("UTC".into()),
            ..IntervalConfig::default()
        };
        let run = |msgs: Vec<Message>| {
            commit_group(
                &store,
                &cfg,
                &vee,
                &intervals,
                Job {
                    messages: msgs,
                    ..Job::default()
                },
            )
            .unwrap()
        };
        let c = run(vec![idm(IDM_I1, "2026-01-01T00:02:10Z")]);
        assert_eq!(c.reads.imported, 1);
        assert_eq!(c.intervals, 47);
        let meter = store.begin_read().unwrap().all_reads().unwrap()[0]
            .read
            .meter_id
            .clone();
        let days = |store: &RedbStore| {
            store
                .begin_read()
                .unwrap()
                .interval_days(&meter, jiff::civil::Date::MIN, jiff::civil::Date::MAX)
                .unwrap()
        };
        let first = days(&store);
        assert!(
            first
                .iter()
                .all(|d| d.channel == "idm" && d.values.len() == 288 && d.interval_minutes == 5)
        );
        assert_eq!(c.interval_days.stored, first.len() as u64);
        let known: usize = first.iter().map(|d| d.value_source.iter().flatten().count()).sum();
        assert_eq!(known, 47, "one value per interval, none estimated into them");
        let channel = store.begin_read().unwrap().channel(&meter, "idm").unwrap().unwrap();
        assert_eq!(channel.unit, "count", "no meter list: raw counts");
        // Each interval sits where its end, rounded to 5 minutes, says.
        let decoded = decode_payload(
            "meters/gw1/raw",
            format!(r#"{{"gateway":"gw1","received_at":"2026-01-01T00:02:10Z","hex":"{IDM_I1}"}}"#).as_bytes(),
            "gw1",
            Timestamp::now(),
            &Keys::new(),
        )
        .into_iter()
        .find_map(|u| match u {
            Unit::Frame(f) => Some(f.decoded),
            _ => None,
        })
        .unwrap();
        let heard: Timestamp = "2026-01-01T00:02:10Z".parse().unwrap();
        let clock = intervals.clock();
        for i in ert::idm::interval_reads_of(&decoded, Some(heard)).unwrap() {
            let step = SignedDuration::from_mins(5);
            let start = round_to(to_store_precision(i.end.unwrap()), step).unwrap() - step;
            let (date, n) = clock.locate(start, 5).unwrap();
            let day = first.iter().find(|d| d.date == date).unwrap();
            assert_eq!(
                day.values[usize::from(n) - 1],
                Quantity::from_units(i64::from(i.consumption)),
                "{i:?}"
            );
        }

        // A redelivery of I1, and I3 (the same transmission heard again): de-duplicated as
        // frames, nothing changes.
        let c = run(vec![
            idm(IDM_I3, "2026-01-01T00:02:50Z"),
            idm(IDM_I1, "2026-01-01T00:02:10Z"),
        ]);
        assert_eq!(c.duplicates, 2);
        assert_eq!(days(&store), first);

        // I2, the packet of one interval earlier, heard with its clock 20 s off the grid I1
        // gave: its 46 intervals that I1 had land in the same slots with the same values
        // (anchored on the ends first heard), its oldest one is new.
        let tto = |hex: &str| {
            let d = meterd_protocols::ert::idm::decode(&hex::decode(hex).unwrap(), false).unwrap();
            d.fields["TransmitTimeOffset"].as_u64().unwrap() as i64
        };
        let i1_end = heard - SignedDuration::from_nanos(tto(IDM_I1) * 62_500_000);
        let i2_heard = i1_end - SignedDuration::from_mins(5)
            + SignedDuration::from_nanos(tto(IDM_I2) * 62_500_000)
            + SignedDuration::from_secs(20);
        let c = run(vec![idm(IDM_I2, &i2_heard.to_string())]);
        assert_eq!(c.intervals, 1, "one new interval read in the old table");
        let after = days(&store);
        let known: usize = after.iter().map(|d| d.value_source.iter().flatten().count()).sum();
        assert_eq!(known, 48, "{:?}", c.interval_days);
        assert!(after.iter().all(|d| !d.has_flag(IntervalRule::Duplicate)), "{after:#?}");
    }

    #[test]
    fn rounding_to_five_minutes_and_scaling_counts() {
        let t = |s: &str| s.parse::<Timestamp>().unwrap();
        let step = SignedDuration::from_mins(5);
        assert_eq!(
            round_to(t("2026-01-01T00:02:29Z"), step),
            Some(t("2026-01-01T00:00:00Z"))
        );
        assert_eq!(
            round_to(t("2026-01-01T00:02:30Z"), step),
            Some(t("2026-01-01T00:05:00Z"))
        );
        assert_eq!(
            round_to(t("1969-12-31T23:58:00Z"), step),
            Some(t("1970-01-01T00:00:00Z"))
        );
        // The ends of time never panic.
        let _ = (round_to(Timestamp::MAX, step), round_to(Timestamp::MIN, step));
        let meter = Meter {
            meter_id: "W".into(),
            account: String::new(),
            route: String::new(),
            sequence: 0,
            service: Service::Water,
            unit: "gal".into(),
            dials: 6,
            decimals: 1,
            multiplier: Quantity::from_units(10).unwrap(),
            status: MeterStatus::Active,
            address: String::new(),
            notes: String::new(),
        };
        // 7 counts of a register with one decimal = 0.7 gal, × 10.
        assert_eq!(idm_value(7, Some(&meter)), Quantity::from_units(7));
        assert_eq!(idm_value(7, None), Quantity::from_units(7));
        assert_eq!(idm_value(u16::MAX, Some(&meter)), Quantity::from_units(65535));
    }

    #[test]
    fn tamper_on_change_only_and_rollover_at_the_radio_register() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open_dir(dir.path()).unwrap();
        let mut txn = store.begin_write().unwrap();
        txn.put_meter(&Meter {
            meter_id: "E-1".into(),
            account: "A".into(),
            route: "R".into(),
            sequence: 1,
            service: Service::Electric,
            unit: "kWh".into(),
            dials: 8,
            decimals: 0,
            multiplier: Quantity::from_units(1).unwrap(),
            status: MeterStatus::Active,
            address: String::new(),
            notes: String::new(),
        })
        .unwrap();
        txn.commit().unwrap();
        let cfg = MqttConfig {
            endpoints: [("scm:54585868".to_owned(), "E-1".to_owned())].into(),
            ..MqttConfig::default()
        };
        let vee = VeeConfig::default();
        let run = |msgs: Vec<Message>| {
            commit_group(
                &store,
                &cfg,
                &vee,
                &IntervalConfig::default(),
                Job {
                    messages: msgs,
                    ..Job::default()
                },
            )
            .unwrap()
        };

        // Every real SCM has a non-zero counter: the first one seen is the baseline.
        let c = run(vec![
            scm(3, 16_777_200, "2026-01-01T00:00:00Z"),
            scm(3, 16_777_210, "2026-01-01T00:05:00Z"),
        ]);
        assert_eq!(c.reads.imported, 2);
        // The counter changes (and the 24-bit register wraps: 16777210 → 4 is 10 units).
        let c = run(vec![scm(0, 4, "2026-01-01T00:10:00Z")]);
        assert_eq!(c.reads.imported, 1);
        // Unchanged again: no tamper.
        run(vec![scm(0, 9, "2026-01-01T00:15:00Z")]);

        let reads = store
            .begin_read()
            .unwrap()
            .meter_reads("E-1", Timestamp::MIN, Timestamp::MAX)
            .unwrap();
        let tampered: Vec<bool> = reads.iter().map(|r| r.read.has_code(codes::TAMPER)).collect();
        assert_eq!(tampered, [false, false, true, false]);
        assert!(reads[2].has_flag(Rule::Tamper));
        let wrap = reads[2]
            .flags
            .iter()
            .find(|f| f.rule == Rule::Rollover)
            .expect("rollover at 2^24, not negative usage");
        assert_eq!(wrap.modulus, Quantity::from_units(1 << 24));
        assert_eq!(reads[2].consumption, Quantity::from_units(10));
        assert!(!reads[2].has_flag(Rule::NegativeUsage));
        // The same transmission again (another gateway, a redelivery) is not stored.
        let c = run(vec![scm(0, 9, "2026-01-01T00:15:00.3Z")]);
        assert_eq!((c.duplicates, c.reads.imported), (1, 0));
    }

    #[test]
    fn a_message_with_a_name_over_its_limit_is_quarantined_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open_dir(dir.path()).unwrap();
        let env = format!(
            r#"{{"gateway":"{}","hex":"F95306F008951840EA0C101A"}}"#,
            "G".repeat(5000)
        );
        let received = Timestamp::now();
        let msg = Message {
            topic: "meters/gw1/raw".into(),
            units: decode_payload("meters/gw1/raw", env.as_bytes(), "gw1", received, &Keys::new()),
            received,
        };
        let job = Job {
            messages: vec![msg],
            ..Job::default()
        };
        let c = commit_group(
            &store,
            &MqttConfig::default(),
            &VeeConfig::default(),
            &IntervalConfig::default(),
            job,
        )
        .unwrap();
        assert_eq!((c.quarantined, c.reads.imported), (1, 0));
        let txn = store.begin_read().unwrap();
        let q = txn.quarantined().unwrap();
        assert_eq!(q.len(), 1);
        assert_eq!(q[0].1.source, "mqtt meters/gw1/raw");
        assert!(
            q[0].1.reason.starts_with("gateway: 5000 bytes long; at most 64"),
            "{}",
            q[0].1.reason
        );
        // Over 4 KiB: kept by reference, the head and the whole size.
        assert!(
            env.as_bytes().starts_with(&q[0].1.payload),
            "the head of what was received"
        );
        assert_eq!(txn.quarantine_entries().unwrap()[0].1.size, env.len() as u64);
        // Counted under the topic's gateway; the long name is stored nowhere.
        let gateways: Vec<String> = txn.gateways().unwrap().into_iter().map(|g| g.gateway).collect();
        assert_eq!(gateways, ["gw1"]);
        assert_eq!(txn.count_reads().unwrap(), 0);
    }

    /// The probe of issue 18: random binary payloads through the message path. Every unit
    /// each one became is accounted for (read, held, duplicate, quarantined), and every one
    /// that is not a read is in the quarantine; before, a few decoded as frames and vanished.
    #[test]
    fn every_random_payload_is_accounted_for() {
        use rand::{Rng, SeedableRng};
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open_dir(dir.path()).unwrap();
        let (cfg, vee, keys) = (MqttConfig::default(), VeeConfig::default(), Keys::new());
        let mut rng = rand::rngs::StdRng::seed_from_u64(18);
        let received = Timestamp::now();
        let mut units = 0u64;
        let mut total = Committed::default();
        for chunk in 0..100 {
            let mut messages = Vec::new();
            for _ in 0..100 {
                let len = rng.random_range(1..=64);
                let payload: Vec<u8> = (0..len).map(|_| rng.random()).collect();
                let u = decode_payload("meters/gw1/raw", &payload, "gw1", received, &keys);
                units += u.len() as u64;
                messages.push(Message {
                    topic: "meters/gw1/raw".into(),
                    units: u,
                    received,
                });
            }
            let c = commit_group(
                &store,
                &cfg,
                &vee,
                &IntervalConfig::default(),
                Job {
                    messages,
                    ..Job::default()
                },
            )
            .unwrap_or_else(|e| panic!("chunk {chunk}: {e}"));
            total.frames += c.frames;
            total.duplicates += c.duplicates;
            total.quarantined += c.quarantined;
            total.statuses += c.statuses;
            total.reads.absorb(c.reads);
        }
        let outcomes: u64 = total.outcomes().iter().map(|(_, n)| n).sum();
        assert_eq!(outcomes, units, "{total:?}");
        let txn = store.begin_read().unwrap();
        let stored = txn.count_reads().unwrap();
        assert_eq!(stored, total.reads.imported);
        assert_eq!(txn.quarantine_usage().unwrap().entries, total.quarantined);
        assert_eq!(stored + total.quarantined + total.duplicates, units);
        // The frames that decoded but carried no read are the ones that used to vanish.
        let no_read = txn
            .quarantined()
            .unwrap()
            .iter()
            .filter(|(_, q)| q.reason.starts_with("no usable read"))
            .count();
        assert!(
            total.frames > 0 && no_read > 0,
            "frames {} no read {no_read}",
            total.frames
        );
        eprintln!(
            "probe: {units} units, {} frames, {stored} reads, {} duplicates, {} quarantined ({no_read} decoded without a usable read)",
            total.frames, total.duplicates, total.quarantined
        );
    }

    /// A wM-Bus telegram with a quarter-hour history (hand-built records: no vector in the
    /// repository carries one) gives interval days of channel `volume`; other protocols none.
    #[test]
    fn wmbus_quarter_hour_history_becomes_interval_days() {
        use meterd_protocols::decoded::Reading;
        let mut readings = Vec::new();
        for (storage, time, value) in [
            (0, "2026-01-05T11:07:00", 12.5),
            (1, "2026-01-05T11:00:00", 12.4),
            (2, "2026-01-05T10:45:00", 12.3),
            (3, "2026-01-05T10:30:00", 12.25),
        ] {
            let mut v = Reading::new("volume", json!(value), Some("m3"));
            v.storage = Some(storage);
            let mut t = Reading::new("date_time", json!(time), None);
            t.storage = Some(storage);
            readings.extend([v, t]);
        }
        let mut frame = Frame {
            gateway: "gw1".into(),
            protocol: Protocol::Wmbus,
            decoded: meterd_protocols::Decoded {
                protocol: "wmbus".into(),
                meter_id: "12345678".into(),
                fields: serde_json::Map::new(),
                readings,
                flags: Vec::new(),
            },
            heard_at: Timestamp::now(),
            dedup_key: String::new(),
            locator: "t".into(),
            raw: Vec::new(),
            layout: None,
        };
        let clock = DayClock::new(jiff::tz::TimeZone::UTC);
        let days = wmbus_history_days(&clock, "W-1", None, &frame);
        assert_eq!(days.len(), 1);
        let d = &days[0];
        assert_eq!(
            (d.channel.channel.as_str(), d.channel.unit.as_str(), d.interval_minutes),
            ("volume", "m3", 15)
        );
        let mut got: Vec<(u16, String)> = d.values.iter().map(|v| (v.interval, v.value.to_string())).collect();
        got.sort();
        // 10:30–10:45 is the day's 43rd quarter hour (UTC here).
        assert_eq!(got, vec![(43, "0.05".to_owned()), (44, "0.1".to_owned())]);
        frame.protocol = Protocol::Mbus;
        assert!(wmbus_history_days(&clock, "W-1", None, &frame).is_empty());
    }

    /// A compact frame whose layout no full frame taught within the de-duplication window
    /// leaves the holding area for the quarantine, with the reason, at the next expiry.
    #[test]
    fn a_held_frame_never_taught_goes_to_the_quarantine_after_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open_dir(dir.path()).unwrap();
        let (cfg, vee) = (MqttConfig::default(), VeeConfig::default());
        let now = Timestamp::now();
        let held = |age_hours: i64| crate::store::HeldTelegram {
            topic: "meters/gw1/raw".into(),
            locator: "meters/gw1/raw".into(),
            gateway: "gw1".into(),
            payload: vec![0x0F, age_hours as u8],
            received_at: now - SignedDuration::from_hours(age_hours),
            meter: "12345678".into(),
            manufacturer: 0x2C2D,
            version: 0x1B,
            device_type: 0x16,
            signature: 0xBEEF,
        };
        let job = Job {
            messages: vec![Message {
                topic: "meters/gw1/raw".into(),
                units: vec![Unit::Held(Box::new(held(30))), Unit::Held(Box::new(held(2)))],
                received: now,
            }],
            ..Job::default()
        };
        let c = commit_group(&store, &cfg, &vee, &Default::default(), job).unwrap();
        assert_eq!(c.held, 2);
        let expire = Job {
            expire_seen: true,
            ..Job::default()
        };
        let c = commit_group(&store, &cfg, &vee, &Default::default(), expire).unwrap();
        assert_eq!(c.quarantined, 1);
        let txn = store.begin_read().unwrap();
        let held_now = txn.held_telegrams().unwrap();
        assert_eq!(held_now.len(), 1, "the frame inside the window stays held");
        assert_eq!(held_now[0].1.payload, vec![0x0F, 2]);
        let q = txn.quarantine_entries().unwrap();
        assert_eq!(q.len(), 1);
        assert_eq!(q[0].1.entry.source, "mqtt meters/gw1/raw");
        assert_eq!(q[0].1.entry.payload, vec![0x0F, 30]);
        assert!(
            q[0].1.entry.reason.contains("no full frame taught its layout"),
            "{}",
            q[0].1.entry.reason
        );
    }
}
