//! A receiver's events → ingest units, the same [`Unit`]s an MQTT message becomes: a telegram
//! is decoded as a raw binary frame on a gateway topic would be (so its de-duplication key is
//! the same whichever way it arrived), a refusal names the layer and the check.

use jiff::Timestamp;
use meterd_protocols::decode::Keys;
use meterd_protocols::receiver::{Event, Kind};
use meterd_protocols::wmbus::compact::NoFormats;

use crate::ingest::mqtt::message::{Unit, binary_as, decode_payload, why_of};

/// The units of one read's events (replies are not units: the caller logs them).
pub fn units_of(
    kind: Kind,
    locator: &str,
    gateway: &str,
    events: Vec<Event>,
    received: Timestamp,
    keys: &Keys,
) -> Vec<Unit> {
    let mut out = Vec::new();
    for e in events {
        match e {
            Event::Telegram(t) => match binary_as(
                locator,
                &t.frame,
                gateway,
                received,
                keys,
                &NoFormats,
                kind.frame_format(),
            ) {
                Unit::Bad {
                    gateway,
                    locator,
                    why,
                    reason,
                    payload,
                } => out.push(Unit::Bad {
                    gateway,
                    locator,
                    why,
                    reason: format!("wM-Bus telegram: {reason}"),
                    payload,
                }),
                unit => out.push(unit),
            },
            // The common JSON path (rtl_433's ERT and Neptune models).
            Event::Json(line) => out.extend(decode_payload(locator, line.as_bytes(), gateway, received, keys)),
            Event::Bad { raw, error } => out.push(Unit::Bad {
                gateway: gateway.to_owned(),
                locator: locator.to_owned(),
                why: why_of(&error),
                reason: format!("{}: {error}", kind.layer()),
                payload: raw,
            }),
            Event::Reply(_) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use meterd_protocols::receiver::{Telegram, im871a};

    const R1: &str = "1844AE4C4455223368077A55000000041389E20100023B0000";

    #[test]
    fn a_stick_telegram_has_the_key_of_the_same_frame_over_mqtt() {
        let keys = Keys::new();
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let frame = hex::decode(R1).unwrap();
        let u = units_of(
            Kind::Im871a,
            "receiver /dev/x",
            "stick",
            vec![Event::Telegram(Telegram { frame, rssi_dbm: None })],
            now,
            &keys,
        );
        let [Unit::Frame(f)] = &u[..] else { panic!("{u:?}") };
        let m = decode_payload("meters/gw/raw", R1.as_bytes(), "gw", now, &keys);
        let [Unit::Frame(g)] = &m[..] else { panic!("{m:?}") };
        assert_eq!(f.dedup_key, g.dedup_key);
        assert_eq!((f.gateway.as_str(), f.locator.as_str()), ("stick", "receiver /dev/x"));
        // A refused HCI message names the layer and the check.
        let mut wire = im871a::indication(&hex::decode(R1).unwrap(), None, None);
        let n = wire.len();
        wire[n - 2] ^= 1;
        let events = Kind::Im871a.decoder().push(&wire);
        let u = units_of(Kind::Im871a, "receiver /dev/x", "stick", events, now, &keys);
        let [Unit::Bad { reason, locator, .. }] = &u[..] else {
            panic!("{u:?}")
        };
        assert!(
            reason.starts_with("iM871A HCI: CRC check failed: HCI CRC16"),
            "{reason}"
        );
        assert_eq!(locator, "receiver /dev/x");
    }

    /// A stick hands over telegrams without CRCs: one that does not decode (a device of a kind
    /// meterd does not read: CI 0x0A) says so, and counts as `format`; the same bytes from an
    /// MQTT gateway, whose framing is detected, are taken as a damaged format B frame.
    #[test]
    fn a_stick_telegram_that_does_not_decode_is_not_blamed_on_a_crc() {
        let keys = Keys::new();
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let mut frame = hex::decode(R1).unwrap();
        frame[10] = 0x0A;
        let u = units_of(
            Kind::Amber,
            "receiver /dev/x",
            "stick",
            vec![Event::Telegram(Telegram {
                frame: frame.clone(),
                rssi_dbm: None,
            })],
            now,
            &keys,
        );
        let [Unit::Bad { why, reason, .. }] = &u[..] else {
            panic!("{u:?}")
        };
        assert_eq!(*why, crate::model::Undecodable::Format, "{reason}");
        assert!(reason.contains("CI 0x0A"), "{reason}");
        assert!(!reason.contains("CRC"), "{reason}");
        let m = decode_payload("meters/gw/raw", hex::encode(&frame).as_bytes(), "gw", now, &keys);
        let [Unit::Bad { why, .. }] = &m[..] else {
            panic!("{m:?}")
        };
        assert_eq!(*why, crate::model::Undecodable::Crc);
    }
}
