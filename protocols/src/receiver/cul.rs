//! culfw CUL sticks in wireless M-Bus mode: text lines (culfw's command reference).
//!
//! Host → stick: `X21` (report flags: known messages and RSSI), then `brs`, `brt` or `brc`
//! (receive mode S, T or C); `V` asks the version. Stick → host: `b` + the telegram in hex
//! from its L field; other lines answer commands. Verified in the command reference: `brs`,
//! `brt`, `b` + hex, `X21`, `V`. Not verified (see `docs/receivers.md`): `brc`, the `bY`
//! prefix for C-mode frame type B, and the trailer with reporting on, which this reads as two
//! bytes, LQI then RSSI (the reference describes one RSSI byte, for SlowRF reports).

use super::{Event, LinkMode, Telegram, check_frame, hex_field};
use crate::error::Error;

/// The commands that put the stick in `mode`: the version (logged), report flags, the mode.
pub fn setup(mode: LinkMode) -> Vec<u8> {
    format!("V\r\nX21\r\n{}\r\n", mode_command(mode)).into_bytes()
}

/// `brs`, `brt`, `brc` (culfw has no 169 MHz mode).
pub fn mode_command(mode: LinkMode) -> &'static str {
    match mode {
        LinkMode::S1 => "brs",
        LinkMode::T1 => "brt",
        LinkMode::C1 | LinkMode::N => "brc",
    }
}

/// A received telegram as the stick prints it (with LQI and RSSI, as after `X21`).
pub fn line(frame: &[u8], lqi: u8, rssi: u8) -> String {
    format!("b{}{lqi:02X}{rssi:02X}\r\n", hex::encode_upper(frame))
}

/// culfw's RSSI byte in dBm (CC1101 convention: two's complement half-dB steps, −74 dBm offset).
pub fn rssi_dbm(raw: u8) -> i16 {
    i16::from(raw as i8) / 2 - 74
}

/// One line from the stick.
pub fn parse_line(line: &str) -> Option<Event> {
    let Some(rest) = line.strip_prefix('b') else {
        return Some(Event::Reply(line.chars().take(64).collect()));
    };
    let hex = rest.strip_prefix('Y').unwrap_or(rest);
    let result = hex_field("telegram hex", hex).and_then(|mut bytes| {
        // The last two bytes are LQI and RSSI (reporting on).
        if bytes.len() < 2 {
            return Err(Error::invalid("telegram", "no LQI and RSSI bytes"));
        }
        let rssi = bytes.pop().unwrap_or(0);
        let _lqi = bytes.pop();
        check_frame(&bytes)?;
        Ok(Telegram {
            frame: bytes,
            rssi_dbm: Some(rssi_dbm(rssi)),
        })
    });
    Some(Event::of_line(line, result))
}

#[cfg(test)]
mod tests {
    use super::*;

    const R1: &str = "1844AE4C4455223368077A55000000041389E20100023B0000";

    #[test]
    fn received_line_round_trip() {
        let frame = hex::decode(R1).unwrap();
        let l = line(&frame, 0x2A, 0x40);
        assert!(l.starts_with("b1844AE4C"));
        assert_eq!(
            parse_line(l.trim()),
            Some(Event::Telegram(Telegram {
                frame: frame.clone(),
                rssi_dbm: Some(-42)
            }))
        );
        let y = format!("bY{}", &l[1..]);
        assert!(matches!(parse_line(y.trim()), Some(Event::Telegram(t)) if t.frame == frame));
        assert_eq!(setup(LinkMode::T1), b"V\r\nX21\r\nbrt\r\n");
    }

    #[test]
    fn bad_lines_name_the_field() {
        let Some(Event::Bad { error, .. }) = parse_line("b18zz") else {
            panic!()
        };
        assert!(error.to_string().contains("telegram hex"), "{error}");
        assert!(matches!(parse_line("b0102"), Some(Event::Bad { .. })));
        assert_eq!(parse_line("V 1.67 CUL868"), Some(Event::Reply("V 1.67 CUL868".into())));
    }
}
