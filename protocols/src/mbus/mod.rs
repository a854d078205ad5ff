//! Wired M-Bus (EN 13757-2 link layer, EN 13757-3 application layer).
//!
//! Layers, bottom up:
//! - [`frame`]: link-layer frames and their checksum (streaming: incomplete vs invalid).
//! - [`link`]: the sans-IO master side (SND_NKE, REQ_UD2 with FCB, secondary selection, scan).
//! - [`header`]: identification, manufacturer, medium, status byte, the 12-byte data header.
//! - [`record`], [`vif`], [`value`]: DIF/VIF data records, shared with [`crate::wmbus`].
//! - [`readings`]: records → the readings `meterd decode` prints.

pub mod frame;
pub mod header;
pub mod link;
pub mod readings;
pub mod record;
#[cfg(any(test, feature = "testing"))]
pub mod slave;
pub mod value;
pub mod vif;

use serde_json::{Map, Value};

use crate::decoded::{Decoded, Reading};
use crate::error::{Error, Result};
use frame::Frame;
use record::Records;

/// True when the bytes have the shape of a wired M-Bus frame (E5, 10 .. 16, 68 L L 68 .. 16).
pub fn looks_like(frame: &[u8]) -> bool {
    match frame {
        [0xE5] => true,
        [0x10, _, _, _, 0x16] => true,
        [0x68, l1, l2, 0x68, ..] => l1 == l2 && frame.len() == *l1 as usize + 6,
        _ => false,
    }
}

/// Decodes one whole frame (as `meterd decode` takes it: from `68`/`10`/`E5`).
pub fn decode(bytes: &[u8]) -> Result<Decoded> {
    let (frame, used) = frame::parse(bytes)?;
    if used != bytes.len() {
        return Err(Error::invalid(
            "length",
            format!("{} bytes after the end of the frame", bytes.len() - used),
        ));
    }
    decode_frame(&frame)
}

/// The name of a C field (EN 13757-2 Table 3/4).
pub fn control_name(c: u8) -> String {
    let name = match c {
        0x40 => "SND_NKE",
        0x53 | 0x73 => "SND_UD",
        0x5B | 0x7B => "REQ_UD2",
        0x5A | 0x7A => "REQ_UD1",
        0x08 | 0x18 | 0x28 | 0x38 => "RSP_UD",
        other => return format!("0x{other:02X}"),
    };
    name.to_owned()
}

fn ci_string(ci: u8) -> Value {
    Value::String(header::hex_byte(ci))
}

fn link_only(kind: &str, c: u8, a: u8, ci: Option<u8>) -> Decoded {
    let mut fields = Map::new();
    fields.insert("frame".into(), Value::from(kind));
    if kind != "ack" {
        fields.insert("c".into(), Value::String(control_name(c)));
        fields.insert("address".into(), Value::from(a));
        if c & 0x40 != 0 {
            fields.insert("fcb".into(), Value::Bool(c & 0x20 != 0));
        }
    }
    if let Some(ci) = ci {
        fields.insert("ci".into(), ci_string(ci));
    }
    Decoded {
        protocol: "mbus".into(),
        meter_id: String::new(),
        fields,
        readings: Vec::new(),
        flags: Vec::new(),
    }
}

/// Decodes a parsed frame: link-layer frames as their fields, RSP_UD as readings.
pub fn decode_frame(frame: &Frame<'_>) -> Result<Decoded> {
    match *frame {
        Frame::Ack => Ok(link_only("ack", 0, 0, None)),
        Frame::Short { c, a } => Ok(link_only("short", c, a, None)),
        Frame::Control { c, a, ci } => Ok(link_only("control", c, a, Some(ci))),
        Frame::Long { c, a, ci, data } => {
            let mut d = decode_user_data(ci, data)?;
            if d.fields.contains_key("frame") {
                d.fields.insert("c".into(), Value::String(control_name(c)));
            }
            d.fields.insert("address".into(), Value::from(a));
            Ok(d)
        }
    }
}

/// Decodes the application layer of a long frame by its CI field.
pub fn decode_user_data(ci: u8, data: &[u8]) -> Result<Decoded> {
    let mut fields = Map::new();
    let mut readings = Vec::with_capacity(8);
    let mut flags = Vec::new();
    let mut meter_id = String::new();
    fields.insert("ci".into(), ci_string(ci));
    match ci {
        0x72 | 0x76 => {
            let (records, h) = header::long_header(data).map_err(|_| {
                Error::invalid(
                    "header",
                    format!("variable data header needs 12 bytes, frame has {}", data.len()),
                )
            })?;
            meter_id = header::id_string(h.id);
            header_fields(&mut fields, &h);
            header::status_flags(h.status, &mut flags);
            let records = if ci == 0x76 {
                Records::msb_first(records)
            } else {
                Records::new(records)
            };
            readings::push_records(records, &mut readings, &mut fields, &mut flags)?;
        }
        0x7A => {
            let [acc, status, cfg_lo, cfg_hi, ref records @ ..] = *data else {
                return Err(Error::invalid("header", "short header needs 4 bytes"));
            };
            let mode = cfg_hi & 0x1F;
            if mode != 0 {
                return Err(Error::Unsupported(format!("wired M-Bus with security mode {mode}")));
            }
            let _ = cfg_lo;
            fields.insert("access_no".into(), Value::from(acc));
            fields.insert("status".into(), Value::from(status));
            header::status_flags(status, &mut flags);
            readings::push_records(Records::new(records), &mut readings, &mut fields, &mut flags)?;
        }
        0x78 => readings::push_records(Records::new(data), &mut readings, &mut fields, &mut flags)?,
        0x73 | 0x77 => {
            meter_id = fixed_data(data, &mut fields, &mut readings, &mut flags)?;
        }
        0x70 => {
            let code = data.first().copied().unwrap_or(0);
            fields.insert("application_error".into(), Value::from(code));
            flags.push("error".into());
        }
        _ => {
            // Not a meter response (a select, a set-baud, a vendor CI): keep it whole.
            fields.insert("frame".into(), Value::from("long"));
            fields.insert("data".into(), Value::String(hex::encode_upper(data)));
        }
    }
    Ok(Decoded {
        protocol: "mbus".into(),
        meter_id,
        fields,
        readings,
        flags,
    })
}

/// Header fields in the `meterd decode` contract.
pub fn header_fields(fields: &mut Map<String, Value>, h: &header::LongHeader) {
    fields.insert(
        "manufacturer".into(),
        Value::String(header::manufacturer_code(h.manufacturer)),
    );
    fields.insert("version".into(), Value::from(h.version));
    fields.insert("medium".into(), Value::String(header::medium_name(h.medium)));
    fields.insert("access_no".into(), Value::from(h.access_no));
    fields.insert("status".into(), Value::from(h.status));
}

/// Fixed data structure (CI 0x73, EN 13757-3 Annex G / EN 1434-3): two counters with unit codes.
fn fixed_data(
    data: &[u8],
    fields: &mut Map<String, Value>,
    readings: &mut Vec<Reading>,
    flags: &mut Vec<String>,
) -> Result<String> {
    let Some(d) = data.get(..16) else {
        return Err(Error::invalid(
            "header",
            format!("fixed data structure needs 16 bytes, frame has {}", data.len()),
        ));
    };
    let id = [d[0], d[1], d[2], d[3]];
    let (acc, status, t1, t2) = (d[4], d[5], d[6], d[7]);
    let medium = ((t1 & 0xC0) >> 6) | ((t2 & 0xC0) >> 4);
    fields.insert("medium".into(), Value::String(header::medium_name(medium)));
    fields.insert("access_no".into(), Value::from(acc));
    fields.insert("status".into(), Value::from(status));
    header::status_flags(status & 0x3F, flags);
    let binary = status & 0x80 != 0;
    let stored = u64::from(status & 0x40 != 0);
    let counter = |b: &[u8]| -> value::Data<'static> {
        if binary {
            value::Data::Int(i64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])))
        } else {
            value::bcd_le(b)
        }
    };
    let unit1 = t1 & 0x3F;
    for (k, (unit, raw)) in [(unit1, &d[8..12]), (t2 & 0x3F, &d[12..16])].into_iter().enumerate() {
        // 0x3E: same unit as counter 1, but a historic (stored) value.
        let (unit, storage) = if unit == 0x3E && k == 1 {
            (unit1, 1)
        } else {
            (unit, stored)
        };
        let data = counter(raw);
        let (quantity, unit, value) = match fixed_unit(unit) {
            Some((q, u, exp)) => (q, Some(std::borrow::Cow::Borrowed(u)), readings_number(&data, exp)),
            None => ("counter", None, readings_number(&data, 0)),
        };
        let mut r = Reading::new(quantity, value, None);
        r.unit = unit;
        r.storage = Some(storage);
        r.tariff = Some(0);
        r.subunit = Some(0);
        r.function = Some("instantaneous".into());
        readings.push(r);
    }
    Ok(header::id_string(id))
}

fn readings_number(data: &value::Data<'_>, exp: i32) -> Value {
    match *data {
        value::Data::Int(v) | value::Data::Bcd(v) => value::scaled(v, exp),
        value::Data::BcdInvalid { raw, digits } => Value::String(value::bcd_digits(raw, digits)),
        _ => Value::Null,
    }
}

/// Unit codes of the fixed data structure.
fn fixed_unit(code: u8) -> Option<(&'static str, &'static str, i32)> {
    let c = i32::from(code);
    Some(match code {
        0x02..=0x04 => ("energy", "Wh", c - 0x02),
        0x05..=0x0A => ("energy", "kWh", c - 0x05),
        0x0B..=0x13 => ("energy", "J", c - 0x0B + 3),
        0x14..=0x1C => ("power", "W", c - 0x14),
        0x1D..=0x25 => ("power", "J/h", c - 0x1D + 3),
        0x26..=0x2E => ("volume", "m3", c - 0x26 - 6),
        0x2F..=0x37 => ("volume_flow", "m3/h", c - 0x2F - 6),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Check;

    fn frame(hex: &str) -> Vec<u8> {
        hex::decode(hex.replace(' ', "")).unwrap()
    }

    #[test]
    fn w1_variable_data_with_difes() {
        let d = decode(&frame("68 1F 1F 68 08 02 72 78 56 34 12 24 40 01 07 55 00 00 00 03 13 15 31 00 DA 02 3B 13 01 8B 60 04 37 18 02 18 16")).unwrap();
        assert_eq!(d.meter_id, "12345678");
        assert_eq!(d.fields["manufacturer"], "PAD");
        assert_eq!(d.fields["medium"], "water");
        assert_eq!(d.fields["access_no"], 85);
        assert_eq!(d.readings.len(), 3);
        assert_eq!(
            (&*d.readings[0].quantity, d.readings[0].value.to_string()),
            ("volume", "12.565".into())
        );
        let flow = &d.readings[1];
        assert_eq!(
            (&*flow.quantity, flow.value.to_string(), flow.unit.as_deref()),
            ("volume_flow", "0.113".into(), Some("m3/h"))
        );
        assert_eq!((flow.function.as_deref(), flow.storage), (Some("maximum"), Some(5)));
        let energy = &d.readings[2];
        assert_eq!(
            (energy.value.to_string(), energy.tariff, energy.subunit),
            ("218370".into(), Some(2), Some(1))
        );
    }

    #[test]
    fn w4_date_time_and_error_flags() {
        let d = decode(&frame("68 20 20 68 08 FD 72 78 56 34 12 93 15 33 03 2A 00 00 00 0C 14 27 04 85 02 04 6D 32 37 1F 15 02 FD 17 00 00 89 16")).unwrap();
        assert_eq!(d.fields["manufacturer"], "ELS");
        assert_eq!(d.fields["medium"], "gas");
        assert_eq!(d.readings[0].value.to_string(), "28504.27");
        assert_eq!(d.readings[1].value, "2008-05-31T23:50:00");
        assert_eq!(
            (&*d.readings[2].quantity, d.readings[2].value.clone()),
            ("error_flags", Value::from(0))
        );
        assert!(d.flags.is_empty());
    }

    #[test]
    fn w5_fixed_data() {
        let d = decode(&frame(
            "68 13 13 68 08 05 73 78 56 34 12 0A 00 E9 7E 01 00 00 00 35 01 00 00 3C 16",
        ))
        .unwrap();
        assert_eq!(d.meter_id, "12345678");
        assert_eq!(d.fields["medium"], "water");
        assert_eq!(d.readings[0].value.to_string(), "0.001");
        assert_eq!(
            (d.readings[1].value.to_string(), d.readings[1].storage),
            ("0.135".into(), Some(1))
        );
    }

    #[test]
    fn checksum_and_trailing_bytes() {
        let mut w1 = frame(
            "68 1F 1F 68 08 02 72 78 56 34 12 24 40 01 07 55 00 00 00 03 13 15 31 00 DA 02 3B 13 01 8B 60 04 37 18 02 18 16",
        );
        w1[20] ^= 1;
        assert_eq!(decode(&w1).unwrap_err().failed_check(), Some(Check::Checksum));
        assert!(decode(&[0xE5, 0xE5]).is_err());
    }

    #[test]
    fn link_frames_decode_to_fields() {
        let d = decode(&frame("10 7B FD 78 16")).unwrap();
        assert_eq!(d.fields["c"], "REQ_UD2");
        assert_eq!(d.fields["fcb"], true);
        assert_eq!(d.fields["address"], 253);
        let d = decode(&frame("68 0B 0B 68 73 FD 52 78 56 34 12 FF FF FF FF D2 16")).unwrap();
        assert_eq!(d.fields["ci"], "0x52");
        assert_eq!(d.fields["c"], "SND_UD");
    }

    fn long(ci: u8, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        frame::encode(
            &Frame::Long {
                c: 0x08,
                a: 1,
                ci,
                data,
            },
            &mut out,
        )
        .unwrap();
        out
    }

    #[test]
    fn more_records_follow_and_status_flags() {
        let mut data = frame("78563412 2440 01 07 55 04 0000");
        data.extend_from_slice(&[0x04, 0x13, 0x39, 0x30, 0x00, 0x00, 0x1F, 0x01, 0x02]);
        let d = decode(&long(0x72, &data)).unwrap();
        assert_eq!(d.fields["more_records_follow"], true);
        assert_eq!(d.flags, ["low_battery"]);
        assert_eq!(d.readings[0].value.to_string(), "12.345");
        assert_eq!(
            (&*d.readings[1].quantity, d.readings[1].value.clone()),
            ("manufacturer_data", Value::from("0102"))
        );
    }

    #[test]
    fn msb_first_variable_data() {
        let mut data = frame("78563412 2440 01 07 55 00 0000");
        data.extend_from_slice(&[0x04, 0x13, 0x00, 0x00, 0x30, 0x39]);
        let d = decode(&long(0x76, &data)).unwrap();
        assert_eq!(d.readings[0].value.to_string(), "12.345");
    }

    #[test]
    fn short_header_and_application_error() {
        let d = decode(&long(0x7A, &[0x11, 0x03, 0x00, 0x00, 0x02, 0x5A, 0xC8, 0x00])).unwrap();
        assert_eq!(d.fields["access_no"], 0x11);
        assert_eq!(d.flags, ["alarm"]);
        assert_eq!(d.readings[0].value.to_string(), "20");
        let err = decode(&long(0x7A, &[0x11, 0x00, 0x10, 0x05, 0x2F, 0x2F])).unwrap_err();
        assert!(matches!(err, Error::Unsupported(_)), "{err}");
        let d = decode(&long(0x70, &[0x02])).unwrap();
        assert_eq!(d.fields["application_error"], 2);
        let err = decode(&long(0x72, &[0x78, 0x56])).unwrap_err();
        assert!(matches!(err, Error::Invalid { field: "header", .. }), "{err}");
    }
}
