//! Records → `meterd decode` readings: VIF meaning, exact scaling, dates, and the record-level
//! flags. Shared by wired and wireless M-Bus.

use serde_json::{Map, Value};
use std::borrow::Cow;

use super::record::{Item, Record};
use super::value::{self, Data};
use super::vif::{self, Meaning, Table};
use crate::decoded::Reading;
use crate::error::Result;

/// Appends the readings of a record area; sets `more_records_follow` for DIF `1F`.
pub fn push_records<'a>(
    records: impl IntoIterator<Item = Result<Item<'a>>>,
    readings: &mut Vec<Reading>,
    fields: &mut Map<String, Value>,
    flags: &mut Vec<String>,
) -> Result<()> {
    for item in records {
        match item? {
            Item::Record(rec) => {
                let reading = reading(&rec);
                if reading.quantity == "error_flags" && reading.value.as_i64().is_some_and(|v| v != 0) {
                    flags.push("error_flags".into());
                }
                readings.push(reading);
            }
            Item::Manufacturer { data, more_follows, .. } => {
                if !data.is_empty() {
                    readings.push(Reading::new(
                        "manufacturer_data",
                        Value::String(hex::encode_upper(data)),
                        None,
                    ));
                }
                if more_follows {
                    fields.insert("more_records_follow".into(), Value::Bool(true));
                }
            }
        }
    }
    Ok(())
}

/// Value bytes in little-endian order, whatever the wire order was (fixed fields are at most
/// 8 bytes; longer LVAR values are cut, they never carry dates or versions).
fn le(rec: &Record<'_>) -> ([u8; 8], usize) {
    let n = rec.raw.len().min(8);
    let mut v = [0u8; 8];
    v[..n].copy_from_slice(&rec.raw[..n]);
    if rec.msb_first {
        v[..n].reverse();
    }
    (v, n)
}

fn text(bytes: &[u8]) -> Value {
    // LVAR text is sent last character first.
    Value::String(bytes.iter().rev().map(|&b| char::from(b)).collect())
}

fn number(data: &Data<'_>, exp: i32) -> Value {
    match *data {
        Data::None => Value::Null,
        Data::Int(v) | Data::Bcd(v) => value::scaled(v, exp),
        Data::Real(f) => value::scaled_real(f, exp),
        Data::BcdInvalid { raw, digits } => Value::String(value::bcd_digits(raw, digits)),
        Data::Text(t) => text(t),
        Data::Bytes(b) => Value::String(hex::encode_upper(b.iter().rev().copied().collect::<Vec<_>>())),
    }
}

/// One reading from one record.
pub fn reading(rec: &Record<'_>) -> Reading {
    // VIFEs after a manufacturer VIF are the manufacturer's too.
    let mods = if rec.vib.table == Table::Manufacturer {
        vif::Modifiers::default()
    } else {
        vif::modifiers(rec.vib.vifes)
    };
    let meaning = vif::meaning(rec.vib.table, rec.vib.code);
    let exp = i32::from(mods.exp);
    let (quantity, value, unit): (Cow<'static, str>, Value, Option<Cow<'static, str>>) = match meaning {
        Meaning::Scaled {
            quantity,
            unit,
            exp: base,
        } => {
            let unit = match mods.per {
                Some(per) => Cow::Owned(format!("{unit}{per}")),
                None => Cow::Borrowed(unit),
            };
            (quantity.into(), number(&rec.data, i32::from(base) + exp), Some(unit))
        }
        Meaning::Duration { quantity, unit } => (quantity.into(), number(&rec.data, exp), Some(Cow::Borrowed(unit))),
        Meaning::Count { quantity } => (quantity.into(), number(&rec.data, exp), None),
        Meaning::Date { quantity } => {
            let (buf, n) = le(rec);
            let b = &buf[..n];
            let v = match (&rec.data, n) {
                (Data::Int(_) | Data::Bcd(_) | Data::BcdInvalid { .. }, 2) => value::date_g(b),
                (Data::Int(_) | Data::Bcd(_) | Data::BcdInvalid { .. }, 4) => value::datetime_f(b),
                (Data::Int(_) | Data::Bcd(_) | Data::BcdInvalid { .. }, 6) => value::datetime_i(b),
                _ => None,
            };
            let v = match v {
                Some(s) => Value::String(s),
                None => match rec.data {
                    Data::Text(t) => text(t),
                    _ => Value::Null,
                },
            };
            (quantity.into(), v, None)
        }
        Meaning::Digits { quantity } => {
            let v = match rec.data {
                Data::Int(v) if quantity == "fabrication_no" => Value::String(v.to_string()),
                Data::Bcd(_) | Data::BcdInvalid { .. } | Data::Int(_) => {
                    // Versions, parameter sets and BCD identifiers read as their hex digits.
                    let (buf, n) = le(rec);
                    let mut s = String::with_capacity(2 * n);
                    for &b in buf[..n].iter().rev() {
                        super::header::push_hex(&mut s, b);
                    }
                    Value::String(s)
                }
                ref other => number(other, 0),
            };
            (quantity.into(), v, None)
        }
        Meaning::Unknown => {
            let quantity = match rec.vib.table {
                Table::Primary => format!("vif_{:02X}", rec.vib.code),
                Table::Fb => format!("vif_FB{:02X}", rec.vib.code),
                Table::Fd => format!("vif_FD{:02X}", rec.vib.code),
                Table::Ef => format!("vif_EF{:02X}", rec.vib.code),
                Table::Manufacturer => "manufacturer_specific".to_owned(),
                Table::Any => "any".to_owned(),
                Table::PlainText => "value".to_owned(),
            };
            let unit = rec
                .vib
                .plain_text
                .map(|t| Cow::Owned(t.iter().rev().map(|&b| char::from(b)).collect()));
            let v = match rec.vib.table {
                // A manufacturer VIF gives no meaning: keep the bytes as sent.
                Table::Manufacturer => Value::String(hex::encode_upper(rec.raw)),
                _ => number(&rec.data, 0),
            };
            (quantity.into(), v, unit)
        }
    };
    let quantity = if mods.suffix.is_empty() {
        quantity
    } else {
        Cow::Owned(format!("{quantity}{}", mods.suffix))
    };
    Reading {
        quantity,
        value,
        unit,
        storage: Some(rec.dib.storage),
        tariff: Some(u64::from(rec.dib.tariff)),
        subunit: Some(u64::from(rec.dib.subunit)),
        function: Some(Cow::Borrowed(rec.dib.function.name())),
        obis: None,
        at: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(bytes: &[u8]) -> Reading {
        let mut readings = Vec::new();
        push_records(
            super::super::record::Records::new(bytes),
            &mut readings,
            &mut Map::new(),
            &mut Vec::new(),
        )
        .unwrap();
        assert_eq!(readings.len(), 1);
        readings.pop().unwrap()
    }

    #[test]
    fn volumes_energy_and_flow_scale_exactly() {
        let r = one(&[0x03, 0x13, 0x15, 0x31, 0x00]);
        assert_eq!(
            (&*r.quantity, r.value.to_string(), r.unit.as_deref()),
            ("volume", "12.565".into(), Some("m3"))
        );
        let r = one(&[0x8B, 0x60, 0x04, 0x37, 0x18, 0x02]);
        assert_eq!(
            (&*r.quantity, r.value.to_string(), r.unit.as_deref()),
            ("energy", "218370".into(), Some("Wh"))
        );
        let r = one(&[0x04, 0x06, 0x10, 0x00, 0x00, 0x00]);
        assert_eq!((r.value.to_string(), r.unit.as_deref()), ("16".into(), Some("kWh")));
        let r = one(&[0x02, 0x5A, 0x2C, 0x01]);
        assert_eq!(
            (&*r.quantity, r.value.to_string(), r.unit.as_deref()),
            ("flow_temperature", "30".into(), Some("°C"))
        );
        let r = one(&[0x05, 0x13, 0x1F, 0x85, 0x45, 0x41]);
        assert_eq!(r.value.to_string(), "0.012345");
    }

    #[test]
    fn identifiers_and_unknowns_are_kept() {
        let r = one(&[0x0C, 0x78, 0x78, 0x56, 0x34, 0x12]);
        assert_eq!(
            (&*r.quantity, r.value.clone()),
            ("fabrication_no", Value::from("12345678"))
        );
        let r = one(&[0x03, 0xFD, 0x0C, 0x08, 0x00, 0x00]);
        assert_eq!(
            (&*r.quantity, r.value.clone()),
            ("model_version", Value::from("000008"))
        );
        let r = one(&[0x01, 0x6F, 0x07]);
        assert_eq!((&*r.quantity, r.value.clone()), ("vif_6F", Value::from(7)));
        let r = one(&[0x02, 0xFF, 0x01, 0xAB, 0xCD]);
        assert_eq!(
            (&*r.quantity, r.value.clone()),
            ("manufacturer_specific", Value::from("ABCD"))
        );
        let r = one(&[0x0A, 0x13, 0x1B, 0xA0]);
        assert_eq!(
            r.value,
            Value::from("A01B"),
            "hex digits in BCD are shown, not computed"
        );
        let r = one(&[0x04, 0x93, 0x3C, 0x00, 0x00, 0x00, 0x00]);
        assert_eq!(r.quantity, "volume_backward");
    }
}
