//! The longest text every field may carry into the store, and one check per kind of field.
//!
//! Every input path (the CSV and AutoRead imports, cradle records, MQTT messages, serial meters,
//! the control socket's commands) checks what it stores here, so that a hostile or broken
//! source cannot put a 50 MB meter id or a NUL byte into the store, the audit trail, an export
//! or a clerk's screen. Each path adds where it found the value (file and line, frame, message)
//! to the [`LimitError`]. An error that quotes an input value quotes it with [`quote`]: at most
//! [`QUOTE_CHARS`] characters, control characters escaped.
//!
//! Why these numbers (generous for real data, small enough that a list or an export of a whole
//! town stays small):
//! - meter ids: a CIS meter number is rarely over 20 characters (the Sensus AutoRead route
//!   layout gives it 8, handheld recorders 12); meterd's own radio endpoint keys are
//!   `protocol:id` (`r900:1545911110`, 15); a DSMR P1 equipment identifier (OBIS 0-0:96.1.1) is
//!   the hex text of the serial, 34 characters on Dutch meters. 64 leaves room for all of them.
//! - accounts and route ids: AutoRead's account field is 15 characters, a recorder's route id
//!   10; CIS account numbers with a check digit and location suffix stay under 32.
//! - codes: a read carries a few skip/trouble codes and endpoint flags (`SC-DOG`, `TC-LEAK`,
//!   `register_modulus=16777216`); 32 codes of at most 32 bytes each.
//! - addresses: AutoRead has 2 × 20 characters; postal address lines are at most 35 (UPU
//!   S42 / ISO 20022 `AdrLine`) to 70; 200 covers a line with unit and town.
//! - readers, gateways: a recorder serial, a gateway name, a serial port path under
//!   `/dev/serial/by-id/` (about 60 to 100 characters).
//! - notes and clerks' reasons: a paragraph, 4096 bytes (what the control socket always took).

use std::fmt;

use super::{Meter, Read, RouteSkip};

/// How many characters of an offending value an error message shows.
pub const QUOTE_CHARS: usize = 80;
/// And at most this many bytes of them once escaped (80 escaped NULs would be 480 bytes).
pub const QUOTE_BYTES: usize = 160;

/// A kind of text field, with its limit and its rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// A meter id (CIS meter number, radio endpoint key, M-Bus/DSMR device id).
    MeterId,
    Account,
    RouteId,
    /// One skip/trouble code or endpoint flag of a read.
    Code,
    /// A register value as the source wrote it (`00000123`, `051H05`).
    RawValue,
    /// Who took a read: reader id, recorder serial, gateway id, serial port.
    Reader,
    /// A gateway's name (MQTT envelope `gateway` or topic level).
    Gateway,
    /// The unit of a register (`m3`, `gal`, `kWh`).
    Unit,
    Address,
    /// A meter's notes (location, access hints).
    MeterNotes,
    /// A clerk's note or reason, a service order's outcome.
    Note,
    /// A gateway's status text (`online`, `offline`).
    Status,
    /// A name given on the command line: a billing client, a token, a device.
    Name,
    /// An MQTT topic a message came on.
    Topic,
    /// Where a read came from (a file name, a port) and where in it.
    Origin,
}

impl Field {
    /// The longest value accepted, in bytes of UTF-8.
    pub const fn max(self) -> usize {
        match self {
            Field::MeterId | Field::Account | Field::RouteId | Field::RawValue | Field::Gateway | Field::Name => 64,
            Field::Code | Field::Unit | Field::Status => 32,
            Field::Reader => 128,
            Field::Address => 200,
            Field::MeterNotes => 1024,
            Field::Note | Field::Origin => 4096,
            Field::Topic => 256,
        }
    }

    /// How the field is named in a refusal when the caller has no column name for it.
    pub const fn name(self) -> &'static str {
        match self {
            Field::MeterId => "meter_id",
            Field::Account => "account",
            Field::RouteId => "route",
            Field::Code => "codes",
            Field::RawValue => "value",
            Field::Reader => "reader",
            Field::Gateway => "gateway",
            Field::Unit => "unit",
            Field::Address => "address",
            Field::MeterNotes => "notes",
            Field::Note => "note",
            Field::Status => "status",
            Field::Name => "name",
            Field::Topic => "topic",
            Field::Origin => "origin",
        }
    }

    /// Ids and codes key the store and are compared by their bytes: no spaces at either end
    /// (` 0021` and `0021` would be two meters that look alike).
    const fn is_key(self) -> bool {
        matches!(
            self,
            Field::MeterId | Field::Account | Field::RouteId | Field::Code | Field::Gateway
        )
    }
}

/// Most codes one read may carry.
pub const MAX_CODES: usize = 32;

/// A value over its field's limit, or with a character it may not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct LimitError {
    /// The field as the source names it (`meter_id`, `codes`, `gateway`).
    pub field: String,
    /// What is wrong, with the limit, quoting at most [`QUOTE_CHARS`] of the value.
    pub message: String,
}

impl LimitError {
    fn new(field: &str, message: String) -> Self {
        LimitError {
            field: field.to_owned(),
            message,
        }
    }
}

/// Characters that are not control characters (Unicode category Cc) but rearrange or break what
/// a screen or a log shows: the bidirectional marks, embeddings, overrides and isolates (the
/// "Trojan Source" characters, CVE-2021-42574) and the line and paragraph separators.
pub fn rearranges_text(c: char) -> bool {
    matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}')
}

/// Whether a character may not appear in any stored text: a control character (NUL, newline,
/// escape: a newline forges a log line, an escape repaints a terminal) or one that rearranges
/// text.
pub fn is_forbidden(c: char) -> bool {
    c.is_control() || rearranges_text(c)
}

/// At most [`QUOTE_CHARS`] characters (and [`QUOTE_BYTES`] bytes) of `value`, in double quotes, control and rearranging
/// characters escaped (`\0`, `\n`, `\u{202e}`), with the length when cut. Every error that
/// quotes input uses it: an error must stay short, one line, and safe on a terminal.
pub fn quote(value: &str) -> String {
    quote_cut(value, value.len(), false)
}

/// `value` quoted and cut; the length `total` is added when something was cut (or `more`
/// says `value` is itself only the start).
fn quote_cut(value: &str, total: usize, more: bool) -> String {
    let mut out = String::with_capacity(QUOTE_CHARS + 16);
    out.push('"');
    let mut chars = value.chars().peekable();
    let mut shown = 0;
    while let Some(&c) = chars.peek() {
        let piece: String = if is_forbidden(c) || c == '"' || c == '\\' {
            c.escape_default().collect()
        } else {
            c.into()
        };
        if shown == QUOTE_CHARS || out.len() - 1 + piece.len() > QUOTE_BYTES {
            break;
        }
        out.push_str(&piece);
        shown += 1;
        chars.next();
    }
    out.push('"');
    if more || chars.next().is_some() {
        out.push_str(&format!("… ({total} bytes)"));
    }
    out
}

/// [`quote`] of bytes that may not be UTF-8 (invalid sequences shown as U+FFFD); only the
/// first bytes are looked at.
pub fn quote_bytes(value: &[u8]) -> String {
    let head = &value[..value.len().min(QUOTE_CHARS * 4)];
    quote_cut(&String::from_utf8_lossy(head), value.len(), head.len() < value.len())
}

/// Checks one value of kind `kind`; `field` names it in the error (a column name, a JSON key).
pub fn check(kind: Field, field: &str, value: &str) -> Result<(), LimitError> {
    let max = kind.max();
    if value.len() > max {
        return Err(LimitError::new(
            field,
            format!(
                "{} bytes long; at most {max} are accepted (starts {})",
                value.len(),
                quote(value)
            ),
        ));
    }
    if let Some((i, c)) = value.chars().enumerate().find(|(_, c)| is_forbidden(*c)) {
        return Err(LimitError::new(
            field,
            format!(
                "contains the control character U+{:04X} at character {} in {}; texts must be plain, one line",
                c as u32,
                i + 1,
                quote(value)
            ),
        ));
    }
    if kind.is_key() && value.trim() != value {
        return Err(LimitError::new(
            field,
            format!("{} starts or ends with a space", quote(value)),
        ));
    }
    Ok(())
}

/// Checks an optional value.
pub fn check_opt(kind: Field, field: &str, value: Option<&str>) -> Result<(), LimitError> {
    value.map_or(Ok(()), |v| check(kind, field, v))
}

/// Checks a read's codes: at most [`MAX_CODES`], each a [`Field::Code`]. Takes an iterator so
/// that a field of millions of codes is refused after the first [`MAX_CODES`] + 1, without
/// collecting them.
pub fn check_codes<'a>(field: &str, codes: impl IntoIterator<Item = &'a str>) -> Result<(), LimitError> {
    for (i, code) in codes.into_iter().enumerate() {
        if i == MAX_CODES {
            return Err(LimitError::new(
                field,
                format!("more than {MAX_CODES} codes; at most {MAX_CODES} are accepted"),
            ));
        }
        check(Field::Code, field, code)?;
    }
    Ok(())
}

/// Checks every text of a read before it is stored.
pub fn check_read(read: &Read) -> Result<(), LimitError> {
    check(Field::MeterId, "meter_id", &read.meter_id)?;
    check(Field::RawValue, "value", &read.raw)?;
    check_codes("codes", read.codes.iter().map(String::as_str))?;
    check_opt(Field::Reader, "reader", read.reader.as_deref())?;
    check(Field::Origin, "origin", &read.origin.source)?;
    check(Field::Origin, "origin", &read.origin.locator)
}

/// Checks every text of a meter before it is stored.
pub fn check_meter(meter: &Meter) -> Result<(), LimitError> {
    check(Field::MeterId, "meter_id", &meter.meter_id)?;
    check(Field::Account, "account", &meter.account)?;
    check(Field::RouteId, "route", &meter.route)?;
    check(Field::Unit, "unit", &meter.unit)?;
    check(Field::Address, "address", &meter.address)?;
    check(Field::MeterNotes, "notes", &meter.notes)
}

/// Checks every text of a skipped meter (a cradle record without a reading).
pub fn check_skip(skip: &RouteSkip) -> Result<(), LimitError> {
    check(Field::RouteId, "route", &skip.route)?;
    check(Field::MeterId, "meter_id", &skip.meter_id)?;
    check_opt(Field::Code, "skip code", skip.code.as_deref())?;
    check_codes("trouble codes", skip.trouble_codes.iter().map(String::as_str))?;
    check(Field::Reader, "serial", &skip.serial)
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Origin, Quantity, ReadType};

    fn read() -> Read {
        Read {
            meter_id: "W-1001".into(),
            read_at: "2026-01-01T00:00:00Z".parse().unwrap(),
            value: Quantity::from_units(12).unwrap(),
            raw: "000012".into(),
            read_type: ReadType::Manual,
            codes: vec!["SC-DOG".into(), "leak".into()],
            reader: Some("R1".into()),
            origin: Origin::file_line("reads.csv", 2),
        }
    }

    #[test]
    fn quote_cuts_at_80_characters_and_escapes_controls() {
        assert_eq!(quote("W-1001"), "\"W-1001\"");
        assert_eq!(
            quote("a\0b\n\u{1b}[31m\u{202e}\"\\"),
            r#""a\u{0}b\n\u{1b}[31m\u{202e}\"\\""#
        );
        let long = "x".repeat(50 << 20);
        let q = quote(&long);
        assert_eq!(q, format!("\"{}\"… (52428800 bytes)", "x".repeat(80)));
        // 80 characters, not 80 bytes: a multi-byte character is never cut in half.
        let q = quote(&"ü".repeat(81));
        assert!(
            q.starts_with(&format!("\"{}\"", "ü".repeat(80))) && q.ends_with("(162 bytes)"),
            "{q}"
        );
        assert_eq!(quote(&"y".repeat(80)), format!("\"{}\"", "y".repeat(80)));
        let q = quote_bytes(&[b'a', 0xFF, 0, b'b']);
        assert_eq!(q, "\"a\u{FFFD}\\u{0}b\"");
        let q = quote(&"\0".repeat(100));
        assert_eq!(q, format!("\"{}\"… (100 bytes)", r"\u{0}".repeat(32)));
        let q = quote_bytes(&vec![b'z'; 1000]);
        assert_eq!(q, format!("\"{}\"… (1000 bytes)", "z".repeat(80)));
    }

    #[test]
    fn each_kind_has_its_limit_and_names_the_field() {
        assert!(check(Field::MeterId, "meter_id", &"1".repeat(64)).is_ok());
        let e = check(Field::MeterId, "meter_id", &"1".repeat(65)).unwrap_err();
        assert_eq!(e.field, "meter_id");
        assert!(e.message.starts_with("65 bytes long; at most 64 are accepted"), "{e}");
        for (kind, max) in [
            (Field::Account, 64),
            (Field::RouteId, 64),
            (Field::Code, 32),
            (Field::RawValue, 64),
            (Field::Reader, 128),
            (Field::Gateway, 64),
            (Field::Unit, 32),
            (Field::Address, 200),
            (Field::MeterNotes, 1024),
            (Field::Note, 4096),
            (Field::Status, 32),
            (Field::Name, 64),
            (Field::Topic, 256),
        ] {
            assert_eq!(kind.max(), max, "{kind}");
            assert!(check(kind, kind.name(), &"a".repeat(max)).is_ok(), "{kind}");
            let e = check(kind, kind.name(), &"a".repeat(max + 1)).unwrap_err();
            assert!(e.to_string().contains(&format!("at most {max}")), "{e}");
        }
        // A 50 MB value: the error stays short.
        let e = check(Field::MeterId, "meter_id", &"A".repeat(50 << 20)).unwrap_err();
        assert!(e.to_string().len() < 200, "{} bytes", e.to_string().len());
    }

    #[test]
    fn control_and_rearranging_characters_are_refused() {
        let e = check(Field::MeterId, "meter_id", "W-\u{0}1001").unwrap_err();
        assert!(e.message.contains("U+0000 at character 3"), "{e}");
        assert!(e.message.contains(r"W-\u{0}1001"), "{e}");
        assert!(check(Field::Address, "address", "1 Main St\r\n").is_err());
        assert!(check(Field::Note, "note", "meter \u{202E}1200").is_err());
        assert!(check(Field::Note, "note", "a\u{2028}b").is_err());
        assert!(check(Field::Note, "note", "Zählerstand · ok ").is_ok());
        // Ids may not start or end with a space; texts may.
        assert!(check(Field::MeterId, "meter_id", " 0021").is_err());
        assert!(check(Field::MeterId, "meter_id", "W 0021").is_ok());
    }

    #[test]
    fn codes_are_counted_without_collecting_them() {
        assert!(check_codes("codes", ["SC-DOG"; MAX_CODES]).is_ok());
        // 25 million codes: refused at the 33rd.
        let mut seen = 0;
        let many = std::iter::repeat_n("x", 25_000_000).inspect(|_| seen += 1);
        let e = check_codes("codes", many).unwrap_err();
        assert_eq!(seen, MAX_CODES + 1);
        assert_eq!(e.to_string(), "codes: more than 32 codes; at most 32 are accepted");
        let e = check_codes("codes", ["ok", "bad\0"]).unwrap_err();
        assert!(e.message.contains("U+0000"), "{e}");
    }

    #[test]
    fn a_read_a_meter_and_a_skip_are_checked_field_by_field() {
        assert!(check_read(&read()).is_ok());
        let mut r = read();
        r.reader = Some("r".repeat(129));
        assert_eq!(check_read(&r).unwrap_err().field, "reader");
        let mut r = read();
        r.codes = vec!["c".repeat(33)];
        assert_eq!(check_read(&r).unwrap_err().field, "codes");
        let mut r = read();
        r.raw = "1\u{0}".into();
        assert_eq!(check_read(&r).unwrap_err().field, "value");
        let meter = Meter {
            meter_id: "W-1".into(),
            account: "A1".into(),
            route: "R1".into(),
            sequence: 1,
            service: crate::model::Service::Water,
            unit: "gal".into(),
            dials: 6,
            decimals: 0,
            multiplier: Quantity::from_units(1).unwrap(),
            status: crate::model::MeterStatus::Active,
            address: "1 Main St".into(),
            notes: "dog".into(),
        };
        assert!(check_meter(&meter).is_ok());
        let bad = Meter {
            notes: "n".repeat(1025),
            ..meter.clone()
        };
        assert_eq!(check_meter(&bad).unwrap_err().field, "notes");
        let bad = Meter {
            unit: "m\u{1b}3".into(),
            ..meter
        };
        assert_eq!(check_meter(&bad).unwrap_err().field, "unit");
        let skip = RouteSkip {
            route: "W01".into(),
            meter_id: "W01-001".into(),
            at: "2026-01-01T00:00:00Z".parse().unwrap(),
            code: Some("DOG".into()),
            trouble_codes: vec!["LEAK".into()],
            serial: "R1".into(),
            seq: 1,
            received_at: "2026-01-01T00:00:00Z".parse().unwrap(),
        };
        assert!(check_skip(&skip).is_ok());
        let bad = RouteSkip {
            code: Some("D\u{7}G".into()),
            ..skip
        };
        assert_eq!(check_skip(&bad).unwrap_err().field, "skip code");
    }
}
