//! rtl_433's JSON lines (`-F json`). A wireless M-Bus telegram (`"model":"Wireless-MBus"`)
//! carries the frame from its L field, CRCs removed, in `data` as hex (seen in public rtl_433
//! captures); it becomes a telegram. Every other model (the ERT and Neptune meters) is handed
//! on whole to the common JSON path that MQTT messages take.

use serde_json::Value;

use super::{Event, Telegram, check_frame, hex_field};
use crate::error::Error;

pub const WMBUS_MODEL: &str = "Wireless-MBus";

/// A wM-Bus telegram as rtl_433 prints it.
pub fn line(mode: &str, frame: &[u8]) -> String {
    let mut j = serde_json::json!({
        "time": "2026-01-01 00:00:00",
        "model": WMBUS_MODEL,
        "mode": mode,
        "data": hex::encode(frame),
    });
    // The id as rtl_433 prints it: the BCD digits, most significant first, as a number.
    if let Some(id) = frame.get(4..8) {
        let digits: String = id.iter().rev().map(|b| format!("{b:02X}")).collect();
        if let Ok(n) = digits.parse::<u32>() {
            j["id"] = Value::from(n);
        }
    }
    format!("{j}\n")
}

pub fn parse_line(line: &str) -> Option<Event> {
    let value: Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => {
            return Some(Event::Bad {
                raw: line.as_bytes().to_vec(),
                error: Error::invalid("JSON", e.to_string()),
            });
        }
    };
    if value.get("model").and_then(Value::as_str) != Some(WMBUS_MODEL) {
        return Some(Event::Json(line.to_owned()));
    }
    let result = value
        .get("data")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::invalid("data", "missing (the telegram in hex)"))
        .and_then(|h| hex_field("data", h))
        .and_then(|frame| {
            check_frame(&frame)?;
            Ok(Telegram {
                frame,
                rssi_dbm: value
                    .get("rssi")
                    .and_then(Value::as_f64)
                    .map(|r| r.round().clamp(-200.0, 50.0) as i16),
            })
        });
    Some(Event::of_line(line, result))
}

#[cfg(test)]
mod tests {
    use super::*;

    const R1: &str = "1844AE4C4455223368077A55000000041389E20100023B0000";

    #[test]
    fn wmbus_lines_become_telegrams_others_go_on() {
        let frame = hex::decode(R1).unwrap();
        let l = line("T", &frame);
        assert_eq!(
            parse_line(l.trim()),
            Some(Event::Telegram(Telegram { frame, rssi_dbm: None }))
        );
        let scm = r#"{"model":"ERT-SCM","id":54585868,"consumption_data":562456}"#;
        assert_eq!(parse_line(scm), Some(Event::Json(scm.into())));
        let Some(Event::Bad { error, .. }) = parse_line(r#"{"model":"Wireless-MBus"}"#) else {
            panic!()
        };
        assert!(error.to_string().contains("invalid data"), "{error}");
        assert!(matches!(parse_line("{not json"), Some(Event::Bad { .. })));
    }
}
