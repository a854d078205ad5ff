//! rtl_wmbus's output lines: `MODE;CRC_OK;3OUTOF6OK;TIMESTAMP;PACKET_RSSI;CURRENT_RSSI;
//! LINK_LAYER_IDENT_NO;0xHEX` (`mbus.md` §2.12), e.g. `T1;1;1;2019-...;-48;;12345678;0x1844...`.
//! A line whose CRC or 3-out-of-6 flag is 0 is refused naming that check.

use super::{Event, Telegram, check_frame, hex_field};
use crate::error::{Check, Error};

/// A line as rtl_wmbus prints it.
pub fn line(mode: &str, frame: &[u8], rssi: i16, at: &str) -> String {
    format!("{mode};1;1;{at};{rssi};;;0x{}\n", hex::encode_upper(frame))
}

pub fn parse_line(line: &str) -> Option<Event> {
    Some(Event::of_line(line, parse(line)))
}

fn parse(line: &str) -> Result<Telegram, Error> {
    let fields: Vec<&str> = line.split(';').collect();
    if fields.len() < 8 {
        return Err(Error::invalid(
            "fields",
            format!("{} `;`-separated fields, 8 expected", fields.len()),
        ));
    }
    if fields[1] != "1" {
        return Err(Error::check(Check::Crc, format!("rtl_wmbus CRC_OK is {:?}", fields[1])));
    }
    if fields[2] != "1" {
        return Err(Error::invalid(
            "3-out-of-6 coding",
            format!("rtl_wmbus 3OUTOF6OK is {:?}", fields[2]),
        ));
    }
    let hex = fields[7].trim();
    let hex = hex.strip_prefix("0x").or_else(|| hex.strip_prefix("0X")).unwrap_or(hex);
    let frame = hex_field("telegram hex", hex)?;
    check_frame(&frame)?;
    Ok(Telegram {
        frame,
        rssi_dbm: fields[4]
            .trim()
            .parse::<f64>()
            .ok()
            .map(|r| r.round().clamp(-200.0, 50.0) as i16),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const R1: &str = "1844AE4C4455223368077A55000000041389E20100023B0000";

    #[test]
    fn line_round_trip_and_refusals() {
        let frame = hex::decode(R1).unwrap();
        let l = line("T1", &frame, -48, "2019-04-02T10:00:00Z");
        assert_eq!(
            parse_line(l.trim()),
            Some(Event::Telegram(Telegram {
                frame,
                rssi_dbm: Some(-48)
            }))
        );
        let crc = l.replacen(";1;1;", ";0;1;", 1);
        let Some(Event::Bad { error, .. }) = parse_line(crc.trim()) else {
            panic!()
        };
        assert_eq!(error.failed_check(), Some(Check::Crc));
        let Some(Event::Bad { error, .. }) = parse_line("T1;1;1;x") else {
            panic!()
        };
        assert!(error.to_string().contains("fields"), "{error}");
    }
}
