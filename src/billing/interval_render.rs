//! Interval batches in the formats a CIS imports: `json`, `csv`, `cmep` (MEPMD01 interval
//! records), `nem12` (AEMO, with quality-method flags and 400 records for days of mixed
//! quality) and `greenbutton` (NAESB ESPI "Download My Data" Atom feed). Every format is
//! rendered from the batch as it was frozen, so asking again gives the same bytes.

use std::collections::BTreeMap;

use meterd_protocols::cmep::{self, Mepmd01, interval as cmep_iv};
use meterd_protocols::greenbutton as gb;
use meterd_protocols::nem12;
use serde::Serialize;

use super::intervals::IntervalBatchDoc;
use super::render::CMEP_SENDER;
use super::tou::TouConfig;
use crate::model::interval::{BatchDay, DayClock, Direction, IntervalDayView, Method, Quality};
use crate::model::{BatchStatus, Quantity, Service};

/// The interval export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntervalExport {
    Json,
    Csv,
    Cmep,
    Nem12,
    GreenButton,
}

impl IntervalExport {
    pub const NAMES: &'static str = "json, csv, cmep, nem12, greenbutton";

    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "json" => Some(IntervalExport::Json),
            "csv" => Some(IntervalExport::Csv),
            "cmep" => Some(IntervalExport::Cmep),
            "nem12" => Some(IntervalExport::Nem12),
            "greenbutton" | "green_button" | "espi" => Some(IntervalExport::GreenButton),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            IntervalExport::Json => "application/json",
            IntervalExport::Csv | IntervalExport::Nem12 => "text/csv; charset=utf-8",
            IntervalExport::Cmep => "text/plain; charset=utf-8",
            IntervalExport::GreenButton => "application/atom+xml",
        }
    }
}

/// What rendering needs besides the batch: the utility's days and its time-of-use schedule.
pub struct RenderContext<'a> {
    pub clock: &'a DayClock,
    pub tou: Option<&'a TouConfig>,
    pub holidays: &'a [jiff::civil::Date],
}

pub fn render(doc: &IntervalBatchDoc, format: IntervalExport, ctx: &RenderContext<'_>) -> Result<Vec<u8>, RenderError> {
    match format {
        IntervalExport::Json => Ok(json(doc, ctx)),
        IntervalExport::Csv => Ok(csv(doc, ctx)),
        IntervalExport::Cmep => cmep(doc, ctx),
        IntervalExport::Nem12 => nem12(doc),
        IntervalExport::GreenButton => greenbutton(doc, ctx),
    }
}

/// Why an interval batch could not be rendered (a value the format cannot carry).
#[derive(Debug, thiserror::Error)]
#[error("interval batch cannot be written: {0}")]
pub struct RenderError(pub String);

fn invalid(e: impl std::fmt::Display) -> RenderError {
    RenderError(e.to_string())
}

#[derive(Serialize)]
struct JsonBatch<'a> {
    id: u64,
    kind: &'static str,
    client: &'a str,
    status: &'static str,
    created_at: String,
    days: Vec<JsonDay<'a>>,
}

#[derive(Serialize)]
struct JsonDay<'a> {
    #[serde(flatten)]
    day: IntervalDayView<'a>,
    account: &'a str,
    service: Option<Service>,
    unit: &'a str,
    direction: Direction,
    correction_of: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tou: Option<BTreeMap<String, Quantity>>,
}

fn status_str(s: BatchStatus) -> &'static str {
    match s {
        BatchStatus::Open => "open",
        BatchStatus::Acked => "acked",
    }
}

fn json(doc: &IntervalBatchDoc, ctx: &RenderContext<'_>) -> Vec<u8> {
    let v = JsonBatch {
        id: doc.batch.id,
        kind: "intervals",
        client: &doc.batch.client,
        status: status_str(doc.batch.status),
        created_at: doc.batch.created_at.to_string(),
        days: doc
            .contents
            .days
            .iter()
            .map(|d| JsonDay {
                day: d.day.view(),
                account: &d.account,
                service: d.service,
                unit: &d.unit,
                direction: d.direction,
                correction_of: d.correction_of,
                tou: ctx.tou.map(|t| t.totals(&d.day, ctx.clock, ctx.holidays)),
            })
            .collect(),
    };
    let mut out = serde_json::to_vec_pretty(&v).unwrap_or_default();
    out.push(b'\n');
    out
}

/// One row per meter-channel-day: its values `;`-separated (empty where missing), its quality
/// codes as one text, and the time-of-use totals as `tou_<period>` columns.
fn csv(doc: &IntervalBatchDoc, ctx: &RenderContext<'_>) -> Vec<u8> {
    let periods: Vec<String> = match ctx.tou {
        Some(t) => {
            let mut p: Vec<String> = t.period.iter().map(|p| p.name.clone()).collect();
            p.push(t.default_period.clone());
            p.dedup();
            p
        }
        None => Vec::new(),
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = [
        "batch",
        "meter_id",
        "account",
        "channel",
        "unit",
        "direction",
        "date",
        "interval_minutes",
        "total",
        "status",
        "correction_of",
        "quality",
        "methods",
        "values",
        "flags",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    header.extend(periods.iter().map(|p| format!("tou_{p}")));
    let _ = w.write_record(&header);
    for d in &doc.contents.days {
        let day = &d.day;
        let mut row = vec![
            doc.batch.id.to_string(),
            day.meter_id.clone(),
            d.account.clone(),
            day.channel.clone(),
            d.unit.clone(),
            d.direction.as_str().into(),
            day.date.to_string(),
            day.interval_minutes.to_string(),
            day.total().to_string(),
            day.status.as_str().into(),
            d.correction_of.map(|b| b.to_string()).unwrap_or_default(),
            day.quality.iter().map(|q| q.code()).collect(),
            day.methods
                .iter()
                .map(|m| m.map(Method::name).unwrap_or_default())
                .collect::<Vec<_>>()
                .join(";"),
            day.values
                .iter()
                .map(|v| v.map(|v| v.to_string()).unwrap_or_default())
                .collect::<Vec<_>>()
                .join(";"),
            day.flags.iter().map(|f| f.rule.as_str()).collect::<Vec<_>>().join(";"),
        ];
        if let Some(t) = ctx.tou {
            let totals = t.totals(day, ctx.clock, ctx.holidays);
            row.extend(
                periods
                    .iter()
                    .map(|p| totals.get(p).copied().unwrap_or_default().to_string()),
            );
        }
        let _ = w.write_record(&row);
    }
    w.into_inner().unwrap_or_default()
}

/// CMEP interval units for a channel unit (`kWh` → `KWH`, `m3` → `M3`).
fn cmep_interval_units(unit: &str) -> String {
    let u = unit
        .to_ascii_uppercase()
        .replace(|c: char| !c.is_ascii_alphanumeric(), "");
    if u.is_empty() { "UNITS".into() } else { u }
}

fn commodity(s: Option<Service>) -> &'static str {
    match s {
        Some(Service::Water) => "W",
        Some(Service::Gas) => "G",
        Some(Service::Electric) | None => "E",
    }
}

fn cmep(doc: &IntervalBatchDoc, ctx: &RenderContext<'_>) -> Result<Vec<u8>, RenderError> {
    let mut out = String::new();
    for d in &doc.contents.days {
        let day = &d.day;
        let head = Mepmd01 {
            version: cmep::VERSION_1_20.into(),
            sender_id: CMEP_SENDER.into(),
            sender_customer_id: doc.batch.id.to_string(),
            receiver_id: doc.batch.client.clone(),
            receiver_customer_id: d.account.clone(),
            created: cmep::datetime(doc.batch.created_at),
            meter_id: day.meter_id.clone(),
            // A day that corrects one billing had is sent again.
            purpose: if d.correction_of.is_some() { "RESEND" } else { "OK" }.into(),
            commodity: commodity(d.service).into(),
            units: cmep_interval_units(&d.unit),
            constant: "1".into(),
            interval: String::new(),
            triplets: Vec::new(),
        };
        let mut values = Vec::with_capacity(day.values.len());
        for (i, v) in day.values.iter().enumerate() {
            let n = (i + 1) as u16;
            let start = ctx
                .clock
                .interval_start(day.date, day.interval_minutes, n)
                .ok_or_else(|| invalid(format!("day {} has no interval {n}", day.date)))?;
            let end = start
                .checked_add(jiff::SignedDuration::from_mins(i64::from(day.interval_minutes)))
                .map_err(invalid)?;
            let flag = match (v, day.quality.get(i).copied().unwrap_or(Quality::Missing)) {
                (None, _) | (_, Quality::Missing) => cmep_iv::IntervalFlag::NoValue,
                (_, Quality::Estimated) => cmep_iv::IntervalFlag::Estimated,
                (_, Quality::Substituted | Quality::Edited) => cmep_iv::IntervalFlag::Adjusted,
                (_, Quality::Actual) => cmep_iv::IntervalFlag::Validated,
            };
            values.push(cmep_iv::IntervalValue {
                end,
                flag,
                value: if flag == cmep_iv::IntervalFlag::NoValue {
                    None
                } else {
                    v.map(|q| q.micros())
                },
            });
        }
        for r in cmep_iv::interval_records(&head, day.interval_minutes, &values).map_err(invalid)? {
            out.push_str(&r.encode().map_err(invalid)?);
            out.push_str("\r\n");
        }
    }
    Ok(out.into_bytes())
}

/// NEM12 quality-method of an interval: meterd's estimates are substitutions with their
/// method (17 linear, 15 average like day), a clerk's edit a final substitute (`F`), a missing
/// value `N` (AEMO Metrology Procedure Part B method numbers).
fn nem12_quality(q: Quality, m: Option<Method>) -> nem12::QualityMethod {
    use nem12::Quality as Q;
    match q {
        Quality::Actual => nem12::QualityMethod::new(Q::Actual, None),
        Quality::Estimated => match m {
            Some(Method::Source(0)) => nem12::QualityMethod::new(Q::Estimated, None),
            Some(Method::Source(n)) => nem12::QualityMethod::new(Q::Estimated, Some(n)),
            Some(m) => nem12::QualityMethod::new(Q::Substituted, Some(m.nem12())),
            None => nem12::QualityMethod::new(Q::Substituted, None),
        },
        Quality::Substituted => nem12::QualityMethod::new(Q::Substituted, m.map(Method::nem12)),
        Quality::Edited => nem12::QualityMethod::new(Q::Final, m.map(Method::nem12)),
        Quality::Missing => nem12::QualityMethod::new(Q::Null, None),
    }
}

fn nem12(doc: &IntervalBatchDoc) -> Result<Vec<u8>, RenderError> {
    let header = nem12::Header {
        created: doc.batch.created_at.to_zoned(jiff::tz::TimeZone::UTC).datetime(),
        from_participant: CMEP_SENDER.into(),
        to_participant: nem12_text(&doc.batch.client),
    };
    // One 200 record per meter and channel, its days in date order.
    let mut groups: BTreeMap<(&str, &str), (nem12::Channel, Vec<nem12::Day>)> = BTreeMap::new();
    for d in &doc.contents.days {
        let day = &d.day;
        let entry = groups.entry((&day.meter_id, &day.channel)).or_insert_with(|| {
            (
                nem12::Channel {
                    nmi: nem12_text(&day.meter_id),
                    nmi_configuration: nem12_text(&day.channel),
                    register_id: String::new(),
                    nmi_suffix: nem12_text(&day.channel),
                    mdm_data_stream_id: String::new(),
                    meter_serial: nem12_text(&day.meter_id),
                    unit: d.unit.to_ascii_uppercase(),
                    interval_minutes: day.interval_minutes,
                    next_scheduled_read: None,
                },
                Vec::new(),
            )
        });
        let qualities: Vec<nem12::IntervalQuality> = (0..day.values.len())
            .map(|i| {
                nem12::IntervalQuality::new(nem12_quality(
                    day.quality.get(i).copied().unwrap_or(Quality::Missing),
                    day.methods.get(i).copied().flatten(),
                ))
            })
            .collect();
        let values: Vec<i64> = day.values.iter().map(|v| v.map_or(0, |q| q.micros())).collect();
        let mut n = nem12::Day::from_intervals(day.date, values, &qualities).map_err(invalid)?;
        n.updated = Some(day.updated_at.to_zoned(jiff::tz::TimeZone::UTC).datetime());
        entry.1.push(n);
    }
    let channels: Vec<(nem12::Channel, Vec<nem12::Day>)> = groups.into_values().collect();
    Ok(nem12::write_file(&header, &channels).map_err(invalid)?.into_bytes())
}

/// NEM12 has no quoting: commas and line breaks become spaces.
fn nem12_text(s: &str) -> String {
    s.replace([',', '\r', '\n'], " ")
}

/// ESPI unit of measure and the power of ten of the channel's unit in it (kWh = 10³ Wh).
fn espi_unit(unit: &str) -> (u16, i8) {
    match unit.to_ascii_lowercase().as_str() {
        "kwh" => (gb::uom::WH, 3),
        "wh" => (gb::uom::WH, 0),
        "m3" | "m³" => (gb::uom::M3, 0),
        "gal" | "gallon" | "gallons" => (gb::uom::US_GAL, 0),
        "cf" | "ft3" => (gb::uom::FT3, 0),
        "ccf" => (gb::uom::FT3, 2),
        "therm" | "therms" => (gb::uom::THERM, 0),
        _ => (gb::uom::WH, 0),
    }
}

fn espi_quality(q: Quality, m: Option<Method>) -> Option<u8> {
    match (q, m) {
        (Quality::Actual, _) => Some(gb::quality::VALIDATED),
        (Quality::Estimated | Quality::Substituted, Some(Method::Linear)) => Some(gb::quality::ESTIMATED_LINEAR),
        (Quality::Estimated | Quality::Substituted, _) => Some(gb::quality::ESTIMATED_REFERENCE_DAY),
        (Quality::Edited, _) => Some(gb::quality::MANUALLY_EDITED),
        (Quality::Missing, _) => None,
    }
}

fn greenbutton(doc: &IntervalBatchDoc, ctx: &RenderContext<'_>) -> Result<Vec<u8>, RenderError> {
    // One usage point per meter, one reading per channel, one block per day.
    let mut points: BTreeMap<&str, Vec<&BatchDay>> = BTreeMap::new();
    for d in &doc.contents.days {
        points.entry(&d.day.meter_id).or_default().push(d);
    }
    let mut usage_points = Vec::new();
    for (i, (meter, days)) in points.into_iter().enumerate() {
        let service = days.first().and_then(|d| d.service);
        let mut readings: BTreeMap<&str, gb::Reading> = BTreeMap::new();
        for d in days {
            let day = &d.day;
            let (uom, unit_exponent) = espi_unit(&d.unit);
            let minutes = day.interval_minutes;
            let reading = readings.entry(&day.channel).or_insert_with(|| gb::Reading {
                title: format!("{meter} {} ({})", day.channel, d.unit),
                commodity: match service {
                    Some(Service::Water) => 4,
                    Some(Service::Gas) => 7,
                    _ => gb::COMMODITY_ELECTRICITY,
                },
                kind: gb::KIND_ENERGY,
                uom,
                unit_exponent,
                flow: match d.direction {
                    Direction::Delivered => gb::FlowDirection::Forward,
                    Direction::Received => gb::FlowDirection::Reverse,
                },
                interval_secs: u32::from(minutes) * 60,
                power_of_ten: None,
                blocks: Vec::new(),
            });
            let start = ctx
                .clock
                .day_start(day.date)
                .ok_or_else(|| invalid(format!("no start of day {}", day.date)))?;
            let length = ctx
                .clock
                .day_length(day.date)
                .ok_or_else(|| invalid(format!("no length of day {}", day.date)))?;
            let step = i64::from(minutes) * 60;
            reading.blocks.push(gb::Block {
                start: start.as_second(),
                duration_secs: u32::try_from(length.as_secs()).map_err(invalid)?,
                readings: day
                    .values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| gb::IntervalValue {
                        start: start.as_second() + step * i as i64,
                        duration_secs: u32::from(minutes) * 60,
                        value: v.map(|q| q.micros()),
                        quality: espi_quality(
                            day.quality.get(i).copied().unwrap_or(Quality::Missing),
                            day.methods.get(i).copied().flatten(),
                        ),
                    })
                    .collect(),
            });
        }
        let offset = days_offset(ctx, doc);
        usage_points.push(gb::UsagePoint {
            id: i as u64 + 1,
            title: meter.to_owned(),
            kind: match service {
                Some(Service::Water) => gb::ServiceKind::Water,
                Some(Service::Gas) => gb::ServiceKind::Gas,
                _ => gb::ServiceKind::Electricity,
            },
            tz_offset_secs: offset,
            dst: None,
            readings: readings.into_values().collect(),
        });
    }
    let feed = gb::Feed {
        base_uri: "https://meterd.invalid/DataCustodian".into(),
        subscription_id: doc.batch.id,
        title: format!("meterd interval batch {}", doc.batch.id),
        updated: doc.batch.created_at,
        usage_points,
    };
    Ok(gb::write_feed(&feed).map_err(invalid)?.into_bytes())
}

/// The utility's standard offset from UTC when the batch was made, for LocalTimeParameters.
fn days_offset(ctx: &RenderContext<'_>, doc: &IntervalBatchDoc) -> i32 {
    ctx.clock.tz.to_offset(doc.batch.created_at).seconds()
}
