//! Batches rendered for billing: JSON, CSV, CMEP `MEPMD01` and fixed-width layouts.
//!
//! Every renderer is a pure function of the stored batch ([`BatchDoc`]), so the same batch
//! always renders to the same bytes.

use jiff::tz::TimeZone;
use meterd_protocols::cmep::{self, Mepmd01, Triplet};
use meterd_protocols::fixed_width::Layout;
use serde::Serialize;

use super::BatchDoc;
use crate::model::billing::{BatchLine, Correction};
use crate::model::{BatchStatus, Quantity, ReadStatus, Service};

/// An output format.
#[derive(Debug, Clone)]
pub enum Format {
    Json,
    Csv,
    Cmep,
    /// A fixed-width layout, with the time zone its dates and times are written in.
    Layout(std::sync::Arc<Layout>, TimeZone),
}

impl Format {
    /// The HTTP content type.
    pub fn content_type(&self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Cmep | Format::Layout(..) => "text/plain; charset=utf-8",
        }
    }
}

/// Why a batch could not be rendered (a value does not fit a layout field).
#[derive(Debug, thiserror::Error)]
#[error("batch {batch}: read {read}: {detail}")]
pub struct RenderError {
    pub batch: u64,
    pub read: u64,
    pub detail: String,
}

fn status_str(s: BatchStatus) -> &'static str {
    match s {
        BatchStatus::Open => "open",
        BatchStatus::Acked => "acked",
    }
}

#[derive(Serialize)]
struct JsonBatch<'a> {
    id: u64,
    client: &'a str,
    status: &'static str,
    created_at: String,
    acked_at: Option<String>,
    reads: Vec<JsonLine<'a>>,
    corrections: Vec<JsonCorrection<'a>>,
}

#[derive(Serialize)]
struct JsonLine<'a> {
    read_id: u64,
    meter_id: &'a str,
    account: &'a str,
    route: &'a str,
    service: Option<Service>,
    read_at: String,
    value: Quantity,
    unit: &'a str,
    multiplier: Quantity,
    consumption: Option<Quantity>,
    status: ReadStatus,
    read_type: &'static str,
    codes: &'a [String],
}

#[derive(Serialize)]
struct JsonCorrection<'a> {
    read_id: u64,
    meter_id: &'a str,
    account: &'a str,
    read_at: String,
    original_batch: u64,
    old_value: Quantity,
    old_read_at: String,
    /// `null`: the read was rejected; reverse it.
    new_value: Option<Quantity>,
    unit: &'a str,
    reason: &'a str,
    corrected_at: String,
}

fn json_line(l: &BatchLine) -> JsonLine<'_> {
    JsonLine {
        read_id: l.read_id,
        meter_id: &l.meter_id,
        account: &l.account,
        route: &l.route,
        service: l.service,
        read_at: l.read_at.to_string(),
        value: l.value,
        unit: &l.unit,
        multiplier: l.multiplier,
        consumption: l.consumption,
        status: l.status,
        read_type: l.read_type.as_str(),
        codes: &l.codes,
    }
}

fn json_correction(c: &Correction) -> JsonCorrection<'_> {
    JsonCorrection {
        read_id: c.line.read_id,
        meter_id: &c.line.meter_id,
        account: &c.line.account,
        read_at: c.line.read_at.to_string(),
        original_batch: c.original_batch,
        old_value: c.old_value,
        old_read_at: c.old_read_at.to_string(),
        new_value: c.new_value,
        unit: &c.line.unit,
        reason: &c.reason,
        corrected_at: c.corrected_at.to_string(),
    }
}

/// Render a batch.
pub fn render(doc: &BatchDoc, format: &Format) -> Result<Vec<u8>, RenderError> {
    match format {
        Format::Json => Ok(json(doc)),
        Format::Csv => Ok(csv(doc)),
        Format::Cmep => cmep(doc),
        Format::Layout(layout, tz) => fixed_width(doc, layout, tz),
    }
}

fn json(doc: &BatchDoc) -> Vec<u8> {
    let b = &doc.batch;
    let v = JsonBatch {
        id: b.id,
        client: &b.client,
        status: status_str(b.status),
        created_at: b.created_at.to_string(),
        acked_at: b.acked_at.map(|t| t.to_string()),
        reads: doc.contents.lines.iter().map(json_line).collect(),
        corrections: doc.contents.corrections.iter().map(json_correction).collect(),
    };
    let mut out = Vec::with_capacity(256 + 300 * doc.contents.lines.len());
    serde_json::to_writer(&mut out, &v).expect("serialising to memory cannot fail");
    out.push(b'\n');
    out
}

/// CSV columns. `record` is `read` or `correction`; correction rows fill the last four.
pub const CSV_HEADER: [&str; 17] = [
    "record",
    "batch_id",
    "read_id",
    "meter_id",
    "account",
    "route",
    "service",
    "read_at",
    "value",
    "unit",
    "consumption",
    "status",
    "read_type",
    "codes",
    "original_batch",
    "old_value",
    "reason",
];

fn csv(doc: &BatchDoc) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::with_capacity(128 + 120 * doc.contents.lines.len()));
    let id = doc.batch.id.to_string();
    let row =
        |w: &mut csv::Writer<Vec<u8>>, kind: &str, l: &BatchLine, value: Option<Quantity>, c: Option<&Correction>| {
            let (ob, ov, reason) = match c {
                Some(c) => (c.original_batch.to_string(), c.old_value.to_string(), c.reason.as_str()),
                None => (String::new(), String::new(), ""),
            };
            w.write_record([
                kind,
                &id,
                &l.read_id.to_string(),
                &l.meter_id,
                &l.account,
                &l.route,
                l.service.map(Service::as_str).unwrap_or(""),
                &l.read_at.to_string(),
                &value.map(|v| v.to_string()).unwrap_or_default(),
                &l.unit,
                &l.consumption.map(|v| v.to_string()).unwrap_or_default(),
                l.status.as_str(),
                l.read_type.as_str(),
                &l.codes.join(" "),
                &ob,
                &ov,
                reason,
            ])
        };
    // Writing into a Vec cannot fail.
    w.write_record(CSV_HEADER).expect("in memory");
    for l in &doc.contents.lines {
        row(&mut w, "read", l, Some(l.value), None).expect("in memory");
    }
    for c in &doc.contents.corrections {
        row(&mut w, "correction", &c.line, c.new_value, Some(c)).expect("in memory");
    }
    w.into_inner().expect("in memory")
}

/// CMEP register units for a meter unit: `KWHREG`, `GALREG`, `CFREG`, `GASREG` (therms and
/// other gas units), else the unit upper-cased plus `REG` (e.g. `M3REG`, as vendors extend).
pub fn cmep_units(service: Option<Service>, unit: &str) -> String {
    match (service, unit.to_ascii_lowercase().as_str()) {
        (_, "kwh") => "KWHREG".into(),
        (_, "kvah") => "KVAHREG".into(),
        (_, "kvarh") => "KVARHREG".into(),
        (_, "gal" | "gallon" | "gallons") => "GALREG".into(),
        (_, "cf" | "ft3" | "cuft") => "CFREG".into(),
        (Some(Service::Gas), "therm" | "therms" | "") => "GASREG".into(),
        (_, u) => format!(
            "{}REG",
            u.to_ascii_uppercase().replace(|c: char| !c.is_ascii_alphanumeric(), "")
        ),
    }
}

fn commodity(s: Option<Service>) -> &'static str {
    match s {
        Some(Service::Water) | None => "W",
        Some(Service::Gas) => "G",
        Some(Service::Electric) => "E",
    }
}

/// Triplet flag: empty = validated, `E` estimated, `A` adjusted (edited by a clerk).
fn cmep_flag(status: ReadStatus) -> &'static str {
    match status {
        ReadStatus::Estimated => "E",
        ReadStatus::Edited => "A",
        _ => "",
    }
}

/// Sender id in CMEP records.
pub const CMEP_SENDER: &str = "METERD";

fn cmep_record(doc: &BatchDoc, l: &BatchLine, purpose: &str, flag: &str, value: Option<Quantity>) -> Mepmd01 {
    Mepmd01 {
        version: cmep::VERSION_1_20.into(),
        sender_id: CMEP_SENDER.into(),
        sender_customer_id: doc.batch.id.to_string(),
        receiver_id: doc.batch.client.clone(),
        receiver_customer_id: l.account.clone(),
        created: cmep::datetime(doc.batch.created_at),
        meter_id: l.meter_id.clone(),
        purpose: purpose.into(),
        commodity: commodity(l.service).into(),
        units: cmep_units(l.service, &l.unit),
        constant: l.multiplier.to_string(),
        interval: "00000000".into(),
        triplets: vec![Triplet {
            at: Some(cmep::datetime(l.read_at)),
            flag: flag.into(),
            value: value.map(|v| v.to_string()).unwrap_or_default(),
        }],
    }
}

/// One `MEPMD01` register-read record per read (purpose `OK`), then one per correction
/// (purpose `RESEND`, flag `A` with the new value, or `N` with no value when the read was
/// rejected). Sender customer id = batch id, receiver = the client, receiver customer id =
/// account. Lines end in CR LF; times are UTC minutes.
fn cmep(doc: &BatchDoc) -> Result<Vec<u8>, RenderError> {
    let mut out = Vec::with_capacity(128 * (doc.contents.lines.len() + 1));
    let mut put = |rec: Mepmd01, read: u64| -> Result<(), RenderError> {
        let line = rec.encode().map_err(|e| RenderError {
            batch: doc.batch.id,
            read,
            detail: e.to_string(),
        })?;
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
        Ok(())
    };
    for l in &doc.contents.lines {
        put(cmep_record(doc, l, "OK", cmep_flag(l.status), Some(l.value)), l.read_id)?;
    }
    for c in &doc.contents.corrections {
        let flag = if c.new_value.is_some() { "A" } else { "N" };
        put(cmep_record(doc, &c.line, "RESEND", flag, c.new_value), c.line.read_id)?;
    }
    Ok(out)
}

/// Names a layout's fields may use, with what they hold.
pub const LAYOUT_VALUES: [(&str, &str); 19] = [
    ("record", "R for a read, C for a correction"),
    ("batch_id", "the batch id"),
    ("read_id", "meterd's read id"),
    ("meter_id", "the meter id"),
    ("account", "the account"),
    ("route", "the route"),
    ("service", "W, G or E"),
    ("read_date", "date of the read (format = \"date\")"),
    ("read_time", "time of the read (format = \"time\")"),
    (
        "value",
        "the reading (new value for a correction; empty when withdrawn)",
    ),
    ("unit", "register unit"),
    ("consumption", "consumption since the previous read"),
    ("multiplier", "billing multiplier"),
    ("status", "validated, accepted, edited or estimated"),
    (
        "read_type",
        "M manual, R radio, P probe, G gateway, E estimate, C customer",
    ),
    ("note_code", "the read's first skip/trouble/note code"),
    ("original_batch", "corrections: the batch that carried the old value"),
    ("old_value", "corrections: the value billed before"),
    ("reason", "corrections: why the read changed"),
];

fn read_type_code(t: crate::model::ReadType) -> &'static str {
    use crate::model::ReadType::*;
    match t {
        Manual => "M",
        Radio => "R",
        Probe => "P",
        Gateway => "G",
        Estimate => "E",
        Customer => "C",
    }
}

fn fixed_width(doc: &BatchDoc, layout: &Layout, tz: &TimeZone) -> Result<Vec<u8>, RenderError> {
    let eol = match layout.line_ending {
        meterd_protocols::fixed_width::LineEnding::Crlf => "\r\n",
        meterd_protocols::fixed_width::LineEnding::Lf => "\n",
    };
    let mut out = Vec::with_capacity((layout.record_length + 2) * (doc.contents.lines.len() + 1));
    let batch_id = doc.batch.id.to_string();
    let mut put = |l: &BatchLine, c: Option<&Correction>| -> Result<(), RenderError> {
        let local = l.read_at.to_zoned(tz.clone());
        let date = local.date().to_string();
        let time = local.time().strftime("%H:%M:%S").to_string();
        let value = match c {
            Some(c) => c.new_value.map(|v| v.to_string()).unwrap_or_default(),
            None => l.value.to_string(),
        };
        let read_id = l.read_id.to_string();
        let consumption = l.consumption.map(|v| v.to_string()).unwrap_or_default();
        let multiplier = l.multiplier.to_string();
        let (ob, ov) = c
            .map(|c| (c.original_batch.to_string(), c.old_value.to_string()))
            .unwrap_or_default();
        let all: [(&str, &str); 19] = [
            ("record", if c.is_some() { "C" } else { "R" }),
            ("batch_id", &batch_id),
            ("read_id", &read_id),
            ("meter_id", &l.meter_id),
            ("account", &l.account),
            ("route", &l.route),
            ("service", commodity(l.service)),
            ("read_date", &date),
            ("read_time", &time),
            ("value", &value),
            ("unit", &l.unit),
            ("consumption", &consumption),
            ("multiplier", &multiplier),
            ("status", l.status.as_str()),
            ("read_type", read_type_code(l.read_type)),
            ("note_code", l.codes.first().map(String::as_str).unwrap_or("")),
            ("original_batch", &ob),
            ("old_value", &ov),
            ("reason", c.map(|c| c.reason.as_str()).unwrap_or("")),
        ];
        let used = all
            .into_iter()
            .filter(|(n, _)| layout.fields.iter().any(|f| f.name == *n));
        let line = layout.format_canonical(used).map_err(|e| RenderError {
            batch: doc.batch.id,
            read: l.read_id,
            detail: format!("layout {}: {e}", layout.name),
        })?;
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(eol.as_bytes());
        Ok(())
    };
    for l in &doc.contents.lines {
        put(l, None)?;
    }
    for c in &doc.contents.corrections {
        put(&c.line, Some(c))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::billing::BatchContents;
    use crate::model::{Batch, ReadType};

    fn doc(reason: &str, code: &str) -> BatchDoc {
        let line = BatchLine {
            read_id: 7,
            meter_id: "M,1".into(),
            account: "A1".into(),
            route: "R".into(),
            service: Some(Service::Gas),
            unit: "ccf".into(),
            multiplier: Quantity::from_units(1).unwrap(),
            read_at: "2026-03-29T01:30:59Z".parse().unwrap(),
            value: Quantity::parse("12.5").unwrap(),
            consumption: None,
            status: ReadStatus::Estimated,
            read_type: ReadType::Manual,
            codes: vec![code.into()],
        };
        let correction = Correction {
            line: line.clone(),
            original_batch: 3,
            old_value: Quantity::from_units(12).unwrap(),
            old_read_at: line.read_at,
            new_value: Some(line.value),
            reason: reason.into(),
            corrected_at: line.read_at,
        };
        BatchDoc {
            batch: Batch {
                id: 9,
                client: "cis".into(),
                read_ids: vec![7],
                status: BatchStatus::Open,
                created_at: line.read_at,
                acked_at: None,
            },
            contents: BatchContents {
                lines: vec![line],
                corrections: vec![correction],
            },
        }
    }

    #[test]
    fn csv_quotes_commas_and_marks_corrections() {
        let text = String::from_utf8(render(&doc("typo, fixed", "SC"), &Format::Csv).unwrap()).unwrap();
        let rows: Vec<&str> = text.lines().collect();
        assert_eq!(rows[0], CSV_HEADER.join(","));
        assert!(
            rows[1].starts_with("read,9,7,\"M,1\",A1,R,gas,2026-03-29T01:30:59Z,12.5,ccf,,estimated,manual,SC,,,"),
            "{text}"
        );
        assert!(
            rows[2].starts_with("correction,9,7,") && rows[2].ends_with(",3,12,\"typo, fixed\""),
            "{text}"
        );
    }

    #[test]
    fn cmep_units_flags_and_utc_minutes() {
        assert_eq!(cmep_units(Some(Service::Water), "gal"), "GALREG");
        assert_eq!(cmep_units(Some(Service::Electric), "kWh"), "KWHREG");
        assert_eq!(cmep_units(Some(Service::Water), "m3"), "M3REG");
        assert_eq!(cmep_units(Some(Service::Gas), "therm"), "GASREG");
        let text = String::from_utf8(render(&doc("r", "SC"), &Format::Cmep).unwrap()).unwrap();
        let recs = cmep::parse_file(&text).unwrap();
        assert_eq!(recs[0].meter_id, "M,1");
        assert_eq!((recs[0].commodity.as_str(), recs[0].units.as_str()), ("G", "CCFREG"));
        assert_eq!(
            (recs[0].triplets[0].at.as_deref(), recs[0].triplets[0].flag.as_str()),
            (Some("202603290130"), "E")
        );
        assert_eq!(
            (
                recs[1].purpose.as_str(),
                recs[1].triplets[0].flag.as_str(),
                recs[1].triplets[0].value.as_str()
            ),
            ("RESEND", "A", "12.5")
        );
    }

    #[test]
    fn layout_overflow_names_batch_read_and_field_and_time_zone_applies() {
        let layouts = super::super::layouts::Layouts::load(None).unwrap();
        let l = layouts.get("municipal-cis").unwrap();
        let e = render(&doc("r", "TOO-LONG-CODE"), &Format::Layout(l.clone(), TimeZone::UTC)).unwrap_err();
        assert!(
            e.to_string().contains("batch 9: read 7: layout municipal-cis") && e.to_string().contains("note_code"),
            "{e}"
        );
        let chicago = TimeZone::get("America/Chicago").unwrap();
        let text = String::from_utf8(render(&doc("r", "SC"), &Format::Layout(l.clone(), chicago)).unwrap()).unwrap();
        let rec = l.parse(text.lines().next().unwrap()).unwrap();
        assert_eq!(
            rec.canonical("read_date").unwrap().as_deref(),
            Some("2026-03-28"),
            "local date in Chicago"
        );
        assert_eq!(rec.canonical("value").unwrap().as_deref(), Some("12.500"));
    }
}
