//! File imports: meter lists (CSV or the Sensus AutoRead route layout) and reads (CSV).
//!
//! A file is checked completely before anything is stored, so a bad file is refused as a whole
//! with an error naming the file, line and field, and nothing of it is half-imported. Nothing
//! holds the file: it is read as a stream ([`Source`]), twice. The first pass checks every row
//! (and, for reads, sorts them into the importer's order in bounded runs, [`super::sort`]); the
//! second stores. The daemon reads a client's upload it spooled to a private temporary file and
//! never opens a path a client names; in process the same functions read the local file; the
//! `*_bytes` functions read bytes in memory (tests, fuzzing). Reads go through [`accept_reads`]
//! in chunks, each chunk one durable transaction; a progress callback hears about each commit
//! (the CLI prints it, so that what meterd reported as committed is committed even if it is
//! killed a moment later). Meters are stored in one durable transaction, as the second pass
//! reads them.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;

use jiff::Timestamp;
use meterd_protocols::fixed_width;

use super::pipeline::{AcceptReport, accept_reads};
use super::sort::Sorter;
pub use super::source::Source;
use super::source::{find_bad_utf8, head, next_line};
use crate::model::limits::{self, Field, LimitError, quote};
use crate::model::{Meter, MeterStatus, Origin, Quantity, Read, ReadType, Service};
use crate::store::{Store, StoreError};
use crate::vee::VeeConfig;

/// Why a file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{file}: {source}")]
    Io { file: String, source: std::io::Error },
    #[error("{file}, line {line}, field {field}: {message}")]
    Field {
        file: String,
        line: u64,
        field: String,
        message: String,
    },
    #[error("{file}, line {line}: {message}")]
    Line { file: String, line: u64, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Reads per transaction for file imports: large enough to amortise the fsync, small enough
/// that a crash loses little work (all of it is redone idempotently on re-import).
pub const DEFAULT_CHUNK: usize = 20_000;

/// The columns of a reads CSV. `meter_id`, `read_at` and `value` are required.
pub const READ_COLUMNS: [&str; 6] = ["meter_id", "read_at", "value", "read_type", "codes", "reader"];
const READ_REQUIRED: [&str; 3] = ["meter_id", "read_at", "value"];

/// The columns of a meters CSV. All but `notes` are required.
pub const METER_COLUMNS: [&str; 12] = [
    "meter_id",
    "account",
    "route",
    "sequence",
    "service",
    "unit",
    "dials",
    "decimals",
    "multiplier",
    "status",
    "address",
    "notes",
];

/// A CSV file with a checked header: column name → index.
struct Csv<'b> {
    file: String,
    reader: csv::Reader<Box<dyn BufRead + 'b>>,
    columns: HashMap<String, usize>,
}

/// Opens a local file, the error naming it.
fn open_file(path: &Path) -> Result<std::fs::File, ImportError> {
    std::fs::File::open(path).map_err(|source| ImportError::Io {
        file: path.display().to_string(),
        source,
    })
}

fn io_error(file: &str, source: std::io::Error) -> ImportError {
    ImportError::Io {
        file: file.to_owned(),
        source,
    }
}

impl<'b> Csv<'b> {
    /// Opens the source at its start (its encoding checked by the caller's first pass).
    fn open(file: &str, src: &'b dyn Source, known: &[&str], required: &[&str]) -> Result<Self, ImportError> {
        let input = src.open().map_err(|e| io_error(file, e))?;
        let file = file.to_owned();
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .trim(csv::Trim::All)
            .buffer_capacity(super::source::READ_BUFFER)
            .from_reader(input);
        let header = reader.headers().map_err(|e| csv_error(&file, e))?.clone();
        if header.is_empty() || (header.len() == 1 && header[0].is_empty()) {
            return Err(ImportError::Line {
                file,
                line: 1,
                message: "empty file: no header line".into(),
            });
        }
        let mut columns = HashMap::new();
        for (i, name) in header.iter().enumerate() {
            if !known.contains(&name) {
                return Err(ImportError::Field {
                    file,
                    line: 1,
                    field: column_name(name),
                    message: format!("unknown column (known columns: {})", known.join(", ")),
                });
            }
            if columns.insert(name.to_owned(), i).is_some() {
                return Err(ImportError::Field {
                    file,
                    line: 1,
                    field: column_name(name),
                    message: "column appears twice".into(),
                });
            }
        }
        if let Some(missing) = required.iter().find(|c| !columns.contains_key(**c)) {
            return Err(ImportError::Field {
                file,
                line: 1,
                field: (*missing).to_owned(),
                message: "required column missing".into(),
            });
        }
        Ok(Csv { file, reader, columns })
    }

    /// The next data row into `record` and its line number; `None` at the end.
    fn next_row(&mut self, record: &mut csv::StringRecord) -> Result<Option<u64>, ImportError> {
        loop {
            match self.reader.read_record(record) {
                Ok(false) => return Ok(None),
                Ok(true) => {
                    let line = record.position().map(|p| p.line()).unwrap_or(0);
                    if record.len() == 1 && record[0].is_empty() {
                        continue; // blank line
                    }
                    return Ok(Some(line));
                }
                Err(e) => return Err(csv_error(&self.file, e)),
            }
        }
    }

    fn get<'r>(&self, row: &'r csv::StringRecord, column: &str) -> Option<&'r str> {
        self.columns.get(column).and_then(|&i| row.get(i))
    }

    fn field_error(&self, line: u64, field: &str, message: impl Into<String>) -> ImportError {
        ImportError::Field {
            file: self.file.clone(),
            line,
            field: field.to_owned(),
            message: message.into(),
        }
    }

    /// A required, non-empty text field.
    fn text<'r>(&self, line: u64, row: &'r csv::StringRecord, column: &str) -> Result<&'r str, ImportError> {
        match self.get(row, column) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(self.field_error(line, column, "empty")),
        }
    }

    /// A field's limit broken on `line`.
    fn limit_error(&self, line: u64, e: LimitError) -> ImportError {
        self.field_error(line, &e.field, e.message)
    }

    /// A required text field within the limit of its kind.
    fn limited<'r>(
        &self,
        line: u64,
        row: &'r csv::StringRecord,
        column: &str,
        kind: Field,
    ) -> Result<&'r str, ImportError> {
        let v = self.text(line, row, column)?;
        limits::check(kind, column, v).map_err(|e| self.limit_error(line, e))?;
        Ok(v)
    }

    /// An optional text field (empty when absent) within the limit of its kind.
    fn limited_opt<'r>(
        &self,
        line: u64,
        row: &'r csv::StringRecord,
        column: &str,
        kind: Field,
    ) -> Result<&'r str, ImportError> {
        let v = self.get(row, column).unwrap_or("");
        limits::check(kind, column, v).map_err(|e| self.limit_error(line, e))?;
        Ok(v)
    }

    fn parse<T>(
        &self,
        line: u64,
        row: &csv::StringRecord,
        column: &str,
        what: &str,
        f: impl FnOnce(&str) -> Option<T>,
    ) -> Result<T, ImportError> {
        let v = self.text(line, row, column)?;
        f(v).ok_or_else(|| self.field_error(line, column, format!("{} is not {what}", quote(v))))
    }
}

/// A column name from a file's header, as a refusal shows it: itself when short and plain,
/// else quoted and cut (a header line may be anything).
fn column_name(name: &str) -> String {
    match limits::check(Field::Name, "column", name) {
        Ok(()) => name.to_owned(),
        Err(_) => quote(name),
    }
}

fn csv_error(file: &str, e: csv::Error) -> ImportError {
    let line = e.position().map(|p| p.line()).unwrap_or(0);
    let message = match e.kind() {
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            format!("expected {expected_len} fields, found {len} (truncated or malformed line)")
        }
        csv::ErrorKind::Utf8 { .. } => "not valid UTF-8".to_owned(),
        _ => e.to_string(),
    };
    ImportError::Line {
        file: file.to_owned(),
        line,
        message,
    }
}

/// Refuses a file that is not UTF-8 text, naming what it is instead: UTF-16 with a
/// byte-order mark, UTF-16 without one (ASCII text in UTF-16 has a NUL byte in every other
/// position: Windows tools write "Unicode" text so), or bytes that are not valid UTF-8 (the
/// line and the byte offset of the first one). Checked before parsing, so that the error is
/// about the encoding rather than a column name full of NUL bytes. One streaming pass.
fn check_encoding(file: &str, src: &dyn Source) -> Result<(), ImportError> {
    let refuse = |line: u64, message: String| ImportError::Line {
        file: file.to_owned(),
        line,
        message,
    };
    const HINT: &str = "save it as UTF-8 (CSV UTF-8 in a spreadsheet) and import it again";
    let bytes = head(src, 4096).map_err(|e| io_error(file, e))?;
    for (bom, order) in [([0xFF, 0xFE], "little-endian"), ([0xFE, 0xFF], "big-endian")] {
        if bytes.starts_with(&bom) {
            return Err(refuse(
                1,
                format!("the file is UTF-16 ({order}, with a byte-order mark), not UTF-8: {HINT}"),
            ));
        }
    }
    let head = &bytes[..bytes.len().min(4096) & !1];
    let pairs = head.len() / 2;
    if pairs >= 2 {
        let nul_at = |parity: usize| head.iter().skip(parity).step_by(2).filter(|b| **b == 0).count();
        let (even, odd) = (nul_at(0), nul_at(1));
        // Mostly one NUL per pair, on the same side: UTF-16 text, not a stray NUL in a field.
        let order = if odd * 10 >= pairs * 8 && even * 10 < pairs {
            Some("little-endian")
        } else if even * 10 >= pairs * 8 && odd * 10 < pairs {
            Some("big-endian")
        } else {
            None
        };
        if let Some(order) = order {
            return Err(refuse(
                1,
                format!(
                    "the file looks like UTF-16 ({order}, without a byte-order mark: NUL bytes in every other position), not UTF-8: {HINT}"
                ),
            ));
        }
    }
    if let Some(bad) = find_bad_utf8(src).map_err(|e| io_error(file, e))? {
        return Err(refuse(
            bad.line,
            format!(
                "not valid UTF-8: byte 0x{:02X} at byte {} of the line (byte {} of the file); {HINT}",
                bad.byte, bad.column, bad.offset
            ),
        ));
    }
    Ok(())
}

/// Parse and check a reads CSV (`meter_id,read_at,value,read_type,codes[,reader]`).
pub fn parse_reads_csv(path: &Path) -> Result<Vec<Read>, ImportError> {
    parse_reads_source(&path.display().to_string(), &open_file(path)?)
}

/// [`parse_reads_csv`] of a file's bytes; errors name `file`. Every text field is checked
/// against its limit ([`crate::model::limits`]) before anything of it is kept.
pub fn parse_reads_csv_bytes(file: &str, bytes: &[u8]) -> Result<Vec<Read>, ImportError> {
    parse_reads_source(file, &bytes)
}

fn parse_reads_source(file: &str, src: &dyn Source) -> Result<Vec<Read>, ImportError> {
    let mut reads = Vec::new();
    for_each_read(file, src, &mut |_, read| {
        reads.push(read);
        Ok(())
    })?;
    Ok(reads)
}

/// Checks a reads CSV row by row, in one streaming pass (its encoding first), and hands each
/// read with its line to `each`, in file order; stops at the first refusal.
pub fn for_each_read(
    file: &str,
    src: &dyn Source,
    each: &mut dyn FnMut(u64, Read) -> Result<(), ImportError>,
) -> Result<(), ImportError> {
    check_encoding(file, src)?;
    let mut csv = Csv::open(file, src, &READ_COLUMNS, &READ_REQUIRED)?;
    let mut row = csv::StringRecord::new();
    while let Some(line) = csv.next_row(&mut row)? {
        let read = parse_read(&csv, line, &row)?;
        each(line, read)?;
    }
    Ok(())
}

/// One row of a reads CSV, checked.
fn parse_read(csv: &Csv<'_>, line: u64, row: &csv::StringRecord) -> Result<Read, ImportError> {
    let meter_id = csv.limited(line, row, "meter_id", Field::MeterId)?.to_owned();
    let read_at: Timestamp = csv.parse(
        line,
        row,
        "read_at",
        "an RFC 3339 time with offset (2025-01-31T08:00:00Z)",
        |v| v.parse().ok(),
    )?;
    let raw = csv.limited(line, row, "value", Field::RawValue)?;
    let value = Quantity::parse(raw)
        .map_err(|e| csv.field_error(line, "value", format!("{} is not a register value: {e}", quote(raw))))?;
    if value.is_negative() {
        return Err(csv.field_error(
            line,
            "value",
            format!("{} is negative; a register value never is", quote(raw)),
        ));
    }
    let read_type = match csv.get(row, "read_type") {
        None | Some("") => ReadType::Manual,
        Some(v) => ReadType::parse(v).ok_or_else(|| {
            csv.field_error(
                line,
                "read_type",
                format!(
                    "{} is not a read type ({})",
                    quote(v),
                    ReadType::ALL.map(ReadType::as_str).join(", ")
                ),
            )
        })?,
    };
    let codes = || {
        csv.get(row, "codes")
            .unwrap_or("")
            .split(';')
            .map(str::trim)
            .filter(|c| !c.is_empty())
    };
    // Counted lazily: a field of millions of codes is refused at the first one too many.
    limits::check_codes("codes", codes()).map_err(|e| csv.limit_error(line, e))?;
    let codes = codes().map(str::to_owned).collect();
    let reader = csv.limited_opt(line, row, "reader", Field::Reader)?;
    let read = Read {
        meter_id,
        read_at,
        value,
        raw: raw.to_owned(),
        read_type,
        codes,
        reader: Some(reader).filter(|r| !r.is_empty()).map(str::to_owned),
        origin: Origin::file_line(&csv.file, line),
    };
    limits::check_read(&read).map_err(|e| csv.limit_error(line, e))?;
    Ok(read)
}

/// Parse and check a meters CSV.
pub fn parse_meters_csv(path: &Path) -> Result<Vec<Meter>, ImportError> {
    collect_meters(&path.display().to_string(), &open_file(path)?, &MeterLayout::Csv)
}

/// [`parse_meters_csv`] of a file's bytes; errors name `file`.
pub fn parse_meters_csv_bytes(file: &str, bytes: &[u8]) -> Result<Vec<Meter>, ImportError> {
    collect_meters(file, &bytes, &MeterLayout::Csv)
}

fn collect_meters(file: &str, src: &dyn Source, layout: &MeterLayout) -> Result<Vec<Meter>, ImportError> {
    let mut meters = Vec::new();
    for_each_meter(file, src, layout, &mut |m| {
        meters.push(m);
        Ok(())
    })?;
    Ok(meters)
}

/// The layout of a meter list.
#[derive(Debug, Clone)]
pub enum MeterLayout {
    /// CSV with a header line ([`METER_COLUMNS`]).
    Csv,
    /// Sensus AutoRead route import records.
    SensusRoute(RouteFileOptions),
}

/// Checks a meter list row by row, in one streaming pass (its encoding first), and hands each
/// meter to `each`, in file order; stops at the first refusal. A meter listed twice is refused
/// naming both lines (the one state kept across rows: each meter id and its line).
pub fn for_each_meter(
    file: &str,
    src: &dyn Source,
    layout: &MeterLayout,
    each: &mut dyn FnMut(Meter) -> Result<(), ImportError>,
) -> Result<(), ImportError> {
    check_encoding(file, src)?;
    meters_of(file, src, layout, each)
}

/// [`for_each_meter`] of a source whose encoding was checked.
fn meters_of(
    file: &str,
    src: &dyn Source,
    layout: &MeterLayout,
    each: &mut dyn FnMut(Meter) -> Result<(), ImportError>,
) -> Result<(), ImportError> {
    match layout {
        MeterLayout::Csv => for_each_meter_csv(file, src, each),
        MeterLayout::SensusRoute(opts) => for_each_route_meter(file, src, opts, each),
    }
}

fn for_each_meter_csv(
    file: &str,
    src: &dyn Source,
    each: &mut dyn FnMut(Meter) -> Result<(), ImportError>,
) -> Result<(), ImportError> {
    let mut csv = Csv::open(file, src, &METER_COLUMNS, &METER_COLUMNS[..11])?;
    let mut lines: HashMap<String, u64> = HashMap::new();
    let mut row = csv::StringRecord::new();
    while let Some(line) = csv.next_row(&mut row)? {
        let meter = Meter {
            meter_id: csv.limited(line, &row, "meter_id", Field::MeterId)?.to_owned(),
            account: csv.limited_opt(line, &row, "account", Field::Account)?.to_owned(),
            route: csv.limited(line, &row, "route", Field::RouteId)?.to_owned(),
            sequence: csv.parse(line, &row, "sequence", "a walk-order number", |v| v.parse().ok())?,
            service: csv.parse(
                line,
                &row,
                "service",
                "a service (water, gas, electric)",
                Service::parse,
            )?,
            unit: csv.limited(line, &row, "unit", Field::Unit)?.to_owned(),
            dials: csv.parse(line, &row, "dials", "a dial count", |v| v.parse().ok())?,
            decimals: csv.parse(line, &row, "decimals", "a count of decimals", |v| v.parse().ok())?,
            multiplier: csv.parse(line, &row, "multiplier", "a decimal number", |v| {
                Quantity::parse(v).ok()
            })?,
            status: csv.parse(
                line,
                &row,
                "status",
                "a meter status (active, inactive)",
                MeterStatus::parse,
            )?,
            address: csv.limited_opt(line, &row, "address", Field::Address)?.to_owned(),
            notes: csv.limited_opt(line, &row, "notes", Field::MeterNotes)?.to_owned(),
        };
        meter.check().map_err(|m| ImportError::Line {
            file: csv.file.clone(),
            line,
            message: m,
        })?;
        limits::check_meter(&meter).map_err(|e| csv.limit_error(line, e))?;
        if let Some(first) = lines.insert(meter.meter_id.clone(), line) {
            return Err(csv.field_error(
                line,
                "meter_id",
                format!("meter {} already listed on line {first}", meter.meter_id),
            ));
        }
        each(meter)?;
    }
    Ok(())
}

/// Options for a Sensus AutoRead route import; the layout carries neither route nor dials.
#[derive(Debug, Clone)]
pub struct RouteFileOptions {
    /// Route the file's meters belong to (default: the file name without extension).
    pub route: Option<String>,
    pub dials: u8,
    pub decimals: u8,
}

impl Default for RouteFileOptions {
    fn default() -> Self {
        RouteFileOptions {
            route: None,
            dials: 8,
            decimals: 0,
        }
    }
}

/// Default unit of a service when the file does not say.
fn default_unit(service: Service) -> &'static str {
    match service {
        Service::Water => "gal",
        Service::Gas => "ccf",
        Service::Electric => "kWh",
    }
}

/// Parse a Sensus AutoRead 155-character route import file into meters, in walk order.
pub fn parse_sensus_route(path: &Path, opts: &RouteFileOptions) -> Result<Vec<Meter>, ImportError> {
    collect_meters(
        &path.display().to_string(),
        &open_file(path)?,
        &MeterLayout::SensusRoute(opts.clone()),
    )
}

/// [`parse_sensus_route`] of a file's bytes; errors name `file`, and the default route is its
/// file name without extension.
pub fn parse_sensus_route_bytes(
    file: &str,
    bytes: Vec<u8>,
    opts: &RouteFileOptions,
) -> Result<Vec<Meter>, ImportError> {
    collect_meters(file, &bytes.as_slice(), &MeterLayout::SensusRoute(opts.clone()))
}

fn for_each_route_meter(
    file: &str,
    src: &dyn Source,
    opts: &RouteFileOptions,
    each: &mut dyn FnMut(Meter) -> Result<(), ImportError>,
) -> Result<(), ImportError> {
    let file = file.to_owned();
    let path = Path::new(&file);
    let route = opts.route.clone().unwrap_or_else(|| {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "route".into())
    });
    limits::check(Field::RouteId, "route", &route).map_err(|e| ImportError::Field {
        file: file.clone(),
        line: 1,
        field: e.field,
        message: format!("{} (the route is the file name unless --route names it)", e.message),
    })?;
    let layout = fixed_width::sensus_autoread_import();
    // A character is at most 4 bytes of UTF-8: a longer line cannot be a record, and is refused
    // before it is split into characters.
    let max_line = layout.record_length * 4;
    let mut count: u32 = 0;
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut input = src.open().map_err(|e| io_error(&file, e))?;
    let mut buf = Vec::new();
    let mut line: u64 = 0;
    while let Some(len) = next_line(&mut *input, &mut buf, max_line).map_err(|e| io_error(&file, e))? {
        line += 1;
        if len > max_line as u64 {
            return Err(ImportError::Line {
                file: file.clone(),
                line,
                message: format!(
                    "record too long: {len} bytes, layout {} needs {} characters",
                    layout.name, layout.record_length
                ),
            });
        }
        // The encoding was checked whole: every line is UTF-8.
        let line_text = std::str::from_utf8(&buf).map_err(|_| ImportError::Line {
            file: file.clone(),
            line,
            message: "not valid UTF-8".into(),
        })?;
        let line_text = if line == 1 {
            line_text.strip_prefix('\u{FEFF}').unwrap_or(line_text)
        } else {
            line_text
        };
        if line_text.trim().is_empty() {
            continue;
        }
        let rec = layout.parse(line_text).map_err(|e| ImportError::Line {
            file: file.clone(),
            line,
            message: e.to_string(),
        })?;
        for f in &layout.fields {
            let kind = match f.name.as_str() {
                "meter_id" => Field::MeterId,
                "account_id" => Field::Account,
                _ => Field::Address,
            };
            limits::check(kind, &f.name, rec.get(&f.name).unwrap_or("")).map_err(|e| ImportError::Field {
                file: file.clone(),
                line,
                field: e.field,
                message: e.message,
            })?;
        }
        let field = |name: &str| rec.get(name).unwrap_or("").to_owned();
        let ferr = |name: &str, message: String| ImportError::Field {
            file: file.clone(),
            line,
            field: name.to_owned(),
            message,
        };
        let meter_id = field("meter_id");
        if meter_id.is_empty() {
            return Err(ferr("meter_id", "empty".into()));
        }
        let service = match field("meter_type").to_ascii_uppercase().as_str() {
            "W" => Service::Water,
            // AutoRead's `P` (propane) is a gas service for billing.
            "G" | "P" => Service::Gas,
            "E" => Service::Electric,
            other => {
                return Err(ferr(
                    "meter_type",
                    format!("{} is not a meter type (W, G, E, P)", quote(other)),
                ));
            }
        };
        for numeric in ["previous_read", "low_limit", "high_limit"] {
            let v = field(numeric);
            if !v.is_empty() && Quantity::parse(&v).is_err() {
                return Err(ferr(numeric, format!("{} is not a number", quote(&v))));
            }
        }
        if let Some(first) = seen.insert(meter_id.clone(), line) {
            return Err(ferr(
                "meter_id",
                format!("meter {meter_id} already listed on line {first}"),
            ));
        }
        let notes = [field("comment"), field("customer_name"), field("service_address_2")]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        let meter = Meter {
            meter_id,
            account: field("account_id"),
            route: route.clone(),
            sequence: count + 1,
            service,
            unit: default_unit(service).to_owned(),
            dials: opts.dials,
            decimals: opts.decimals,
            multiplier: Quantity::from_micros(crate::model::SCALE),
            status: MeterStatus::Active,
            address: field("service_address"),
            notes,
        };
        meter.check().map_err(|m| ImportError::Line {
            file: file.clone(),
            line,
            message: m,
        })?;
        limits::check_meter(&meter).map_err(|e| ferr(&e.field, e.message))?;
        count += 1;
        each(meter)?;
    }
    Ok(())
}

/// What a meter import changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct MeterImportReport {
    pub added: u64,
    pub updated: u64,
    pub unchanged: u64,
}

/// Store meters (insert or update) in one durable transaction.
pub fn store_meters(store: &dyn Store, meters: &[Meter]) -> Result<MeterImportReport, StoreError> {
    crate::store::write_within(store, crate::store::INGEST_DEADLINE, |txn| {
        let mut report = MeterImportReport::default();
        for m in meters {
            match txn.meter(&m.meter_id)? {
                None => report.added += 1,
                Some(old) if &old == m => {
                    report.unchanged += 1;
                    continue;
                }
                Some(_) => report.updated += 1,
            }
            txn.put_meter(m)?;
        }
        Ok(report)
    })
}

/// Checks a meter list whole (first pass), then stores its meters (insert or update) in one
/// durable transaction as a second pass reads them again: nothing of a bad file is stored, and no
/// more than one row is held. Returns the meters in the file and what changed.
pub fn import_meters(
    store: &dyn Store,
    file: &str,
    src: &dyn Source,
    layout: &MeterLayout,
) -> Result<(u64, MeterImportReport), ImportError> {
    let mut meters: u64 = 0;
    for_each_meter(file, src, layout, &mut |_| {
        meters += 1;
        Ok(())
    })?;
    let report = crate::store::write_within(store, crate::store::INGEST_DEADLINE, |txn| {
        let mut report = MeterImportReport::default();
        // The first pass checked the encoding; the rows are checked again as they are read.
        meters_of(file, src, layout, &mut |m| {
            match txn.meter(&m.meter_id)? {
                None => report.added += 1,
                Some(old) if old == m => {
                    report.unchanged += 1;
                    return Ok(());
                }
                Some(_) => report.updated += 1,
            }
            txn.put_meter(&m)?;
            Ok(())
        })?;
        Ok::<_, ImportError>(report)
    })?;
    Ok((meters, report))
}

/// Import a reads CSV: check the whole file, then store it in chunks of `chunk` reads, each
/// one durable transaction; `on_commit` is called after each commit with the running totals.
pub fn import_reads_file(
    store: &dyn Store,
    config: &VeeConfig,
    path: &Path,
    chunk: usize,
    on_commit: &mut dyn FnMut(&AcceptReport),
) -> Result<AcceptReport, ImportError> {
    import_reads(
        store,
        config,
        &path.display().to_string(),
        &open_file(path)?,
        &std::env::temp_dir(),
        chunk,
        on_commit,
    )
}

/// [`import_reads_file`] of a file's bytes; errors name `file`.
pub fn import_reads_bytes(
    store: &dyn Store,
    config: &VeeConfig,
    file: &str,
    bytes: &[u8],
    chunk: usize,
    on_commit: &mut dyn FnMut(&AcceptReport),
) -> Result<AcceptReport, ImportError> {
    import_reads(store, config, file, &bytes, &std::env::temp_dir(), chunk, on_commit)
}

/// [`import_reads_file`] of a source (the daemon: a client's upload it spooled); the report
/// counts, without the stored reads' ids (`read_ids` is empty). The first
/// pass checks every row and sorts the reads by meter, then time (so that chunks split the file
/// by meter and every chunk sees the earlier reads of its meters already stored), in runs of
/// bounded size spilled to unnamed temporary files in `scratch`; the second merges them into
/// chunks. Memory does not grow with the file.
pub fn import_reads(
    store: &dyn Store,
    config: &VeeConfig,
    file: &str,
    src: &dyn Source,
    scratch: &Path,
    chunk: usize,
    on_commit: &mut dyn FnMut(&AcceptReport),
) -> Result<AcceptReport, ImportError> {
    let mut sorter = Sorter::new(scratch);
    for_each_read(file, src, &mut |line, read| {
        sorter.push(line, read).map_err(|e| io_error(file, e))
    })?;
    let mut sorted = sorter.finish(file).map_err(|e| io_error(file, e))?;
    let chunk = chunk.max(1);
    let mut total = AcceptReport::default();
    let mut batch = Vec::with_capacity(chunk.min(super::sort::RUN_READS));
    loop {
        let next = sorted.next_read().map_err(|e| io_error(file, e))?;
        let end = next.is_none();
        if let Some(read) = next {
            batch.push(read);
        }
        if batch.len() >= chunk || (end && !batch.is_empty()) {
            let mut report = accept_reads(store, config, std::mem::take(&mut batch))?;
            // The stored reads' ids are not kept: they would grow with the file.
            report.read_ids = Vec::new();
            total.absorb(report);
            on_commit(&total);
        }
        if end {
            return Ok(total);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "meter_id,read_at,value,read_type,codes,reader\n";

    /// The refusal of `bytes` as a reads CSV, checked to be short.
    fn refusal(bytes: &[u8]) -> String {
        let e = parse_reads_csv_bytes("r.csv", bytes).unwrap_err().to_string();
        assert!(e.len() < 300, "{} bytes: {}", e.len(), &e[..e.len().min(400)]);
        e
    }

    fn with_line(line: &[u8]) -> Vec<u8> {
        [HEADER.as_bytes(), b"W1,2025-01-01T00:00:00Z,1,manual,,\n", line, b"\n"].concat()
    }

    #[test]
    fn reads_fields_over_their_limits_are_refused_with_line_and_field() {
        let id = "A".repeat(50 << 20);
        let e = refusal(&with_line(format!("{id},2025-01-02T00:00:00Z,1,manual,,").as_bytes()));
        assert!(
            e.starts_with("r.csv, line 3, field meter_id: 52428800 bytes long; at most 64 are accepted"),
            "{e}"
        );
        let value = "9".repeat(50 << 20);
        let e = refusal(&with_line(
            format!("W1,2025-01-02T00:00:00Z,{value},manual,,").as_bytes(),
        ));
        assert!(e.starts_with("r.csv, line 3, field value: 52428800 bytes long"), "{e}");
        let codes = "X;".repeat(25_000_000);
        let e = refusal(&with_line(
            format!("W1,2025-01-02T00:00:00Z,1,manual,{codes},").as_bytes(),
        ));
        assert_eq!(
            e,
            "r.csv, line 3, field codes: more than 32 codes; at most 32 are accepted"
        );
        let e = refusal(&with_line(b"W\x001,2025-01-02T00:00:00Z,1,manual,,"));
        assert!(
            e.starts_with("r.csv, line 3, field meter_id: contains the control character U+0000"),
            "{e}"
        );
        let e = refusal(&with_line(
            format!("W1,2025-01-02T00:00:00Z,1,manual,,{}", "r".repeat(129)).as_bytes(),
        ));
        assert!(
            e.starts_with("r.csv, line 3, field reader: 129 bytes long; at most 128"),
            "{e}"
        );
        let e = refusal(&with_line(
            format!("W1,2025-01-02T00:00:00Z,1,{},,", "m".repeat(1000)).as_bytes(),
        ));
        assert!(e.contains("field read_type") && e.contains("… (1000 bytes)"), "{e}");
        // A bad header name is quoted too.
        let e = refusal(format!("meter_id,{}\n", "\u{1b}[2J".repeat(100)).as_bytes());
        assert!(e.contains(r"\u{1b}[2J") && !e.contains('\u{1b}'), "{e}");
        // At the limit, all is well.
        let ok = with_line(
            format!(
                "{},2025-01-02T00:00:00Z,1,manual,{},{}",
                "M".repeat(64),
                vec!["c".repeat(32); 32].join(";"),
                "r".repeat(128)
            )
            .as_bytes(),
        );
        assert_eq!(parse_reads_csv_bytes("r.csv", &ok).unwrap().len(), 2);
    }

    #[test]
    fn encodings_are_named_before_parsing() {
        let text = format!("{HEADER}W1,2025-01-01T00:00:00Z,1,manual,,\n");
        let le: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let be: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
        assert!(refusal(&le).contains("UTF-16 (little-endian, without a byte-order mark"));
        assert!(refusal(&be).contains("UTF-16 (big-endian, without a byte-order mark"));
        assert!(refusal(&[&[0xFF, 0xFE][..], &le].concat()).contains("UTF-16 (little-endian, with a byte-order mark)"));
        assert!(refusal(&[&[0xFE, 0xFF][..], &be].concat()).contains("UTF-16 (big-endian, with a byte-order mark)"));
        let e = refusal(&with_line(b"W\xE91,2025-01-02T00:00:00Z,1,manual,,"));
        assert!(
            e.starts_with("r.csv, line 3: not valid UTF-8: byte 0xE9 at byte 2 of the line (byte 83 of the file)"),
            "{e}"
        );
        // A UTF-8 byte-order mark is fine; so is one NUL (refused by its field, not as UTF-16).
        let bom = [&[0xEF, 0xBB, 0xBF][..], text.as_bytes()].concat();
        assert_eq!(parse_reads_csv_bytes("r.csv", &bom).unwrap().len(), 1);
        assert!(refusal(&with_line(b"W1,2025-01-02T00:00:00Z,1\x00,manual,,")).contains("field value"));
        // The meters import and the route import check the encoding too.
        let e = parse_meters_csv_bytes("m.csv", &le).unwrap_err().to_string();
        assert!(e.contains("UTF-16"), "{e}");
        let e = parse_sensus_route_bytes("r.txt", le, &RouteFileOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("UTF-16"), "{e}");
    }

    #[test]
    fn autoread_lines_are_checked_field_by_field() {
        let layout = fixed_width::sensus_autoread_import();
        let rec = |id: &str, addr: &str| {
            layout
                .format([("service_address", addr), ("meter_id", id), ("meter_type", "W")])
                .unwrap()
        };
        let opts = RouteFileOptions::default();
        let parse = |body: String| parse_sensus_route_bytes("route1.txt", body.into_bytes(), &opts);
        assert_eq!(parse(format!("{}\r\n", rec("W1", "1 ELM ST"))).unwrap().len(), 1);
        let e = parse(format!("{}\r\n{}\r\n", rec("W1", "1 ELM"), rec("W\u{0}2", "2 ELM")))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("route1.txt, line 2, field meter_id: contains the control character U+0000"),
            "{e}"
        );
        let e = parse(format!("{}\r\n", rec("W1", "1 ELM\u{1b}[2J")))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("route1.txt, line 1, field service_address: contains the control character U+001B"),
            "{e}"
        );
        let e = parse("y".repeat(50 << 20)).unwrap_err().to_string();
        assert_eq!(
            e,
            "route1.txt, line 1: record too long: 52428800 bytes, layout sensus-autoread needs 155 characters"
        );
        // The route named by a long file name.
        let long = format!("{}.txt", "r".repeat(100));
        let e = parse_sensus_route_bytes(&long, format!("{}\r\n", rec("W1", "1")).into_bytes(), &opts)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("field route: 100 bytes long; at most 64") && e.contains("--route"),
            "{e}"
        );
    }

    #[test]
    fn meters_fields_over_their_limits_are_refused() {
        let header = "meter_id,account,route,sequence,service,unit,dials,decimals,multiplier,status,address,notes\n";
        let row = |account: &str, unit: &str, notes: &str| {
            format!("{header}W1,{account},R1,1,water,{unit},6,0,1,active,1 Main St,{notes}\n")
        };
        assert_eq!(
            parse_meters_csv_bytes("m.csv", row("A1", "gal", "dog").as_bytes())
                .unwrap()
                .len(),
            1
        );
        let e = parse_meters_csv_bytes("m.csv", row(&"a".repeat(65), "gal", "").as_bytes()).unwrap_err();
        assert!(
            e.to_string().starts_with("m.csv, line 2, field account: 65 bytes long"),
            "{e}"
        );
        let e = parse_meters_csv_bytes("m.csv", row("A1", "g\u{202e}al", "").as_bytes()).unwrap_err();
        assert!(
            e.to_string()
                .contains("field unit: contains the control character U+202E"),
            "{e}"
        );
        let e = parse_meters_csv_bytes("m.csv", row("A1", "gal", &"n".repeat(2000)).as_bytes()).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("m.csv, line 2, field notes: 2000 bytes long; at most 1024"),
            "{e}"
        );
    }
}
