//! One MQTT message's payload → decoded frames (or the reason it is undecodable). Pure: no
//! store, no IO, so it runs as messages arrive while the previous group commits.
//!
//! Payloads accepted (one per message, or several as lines):
//! - rtlamr `-format=json` lines (with or without the top-level `Type`);
//! - rtl_433 JSON lines (`-F json` / `-F mqtt` events) of the meter models it decodes;
//! - gateway envelopes `{"gateway", "received_at", "protocol", "hex"}`;
//! - a raw frame as hex (SCM, SCM+, IDM/NetIDM, R900, wM-Bus, M-Bus; detected);
//! - a raw frame as binary (a payload that is not UTF-8 text).

use jiff::Timestamp;
use meterd_protocols::decode::{Keys, Protocol, decode_binary_with, detect_binary};
use meterd_protocols::ert::{self, json::Source};
use meterd_protocols::wmbus::compact::{FormatKey, Formats, NoFormats};
use meterd_protocols::wmbus::dll::FrameFormat;
use meterd_protocols::{Check, Decoded, Error, hexline};
use sha2::{Digest, Sha256};

use crate::model::Undecodable;
use crate::model::limits::{self, Field, LimitError, quote};

/// A decoded frame with what ingest needs beside it.
#[derive(Debug, Clone)]
pub struct Frame {
    pub gateway: String,
    pub protocol: Protocol,
    pub decoded: Decoded,
    /// When the gateway heard it (its own time when given, else when meterd received it).
    pub heard_at: Timestamp,
    /// Identity of the transmission (same for every copy heard).
    pub dedup_key: String,
    /// `topic` or `topic line N`.
    pub locator: String,
    /// The bytes it was decoded from (the line, or the binary payload), for the quarantine
    /// when it carries no usable read.
    pub raw: Vec<u8>,
    /// A full wM-Bus frame's record layout, learned for its meter type's compact frames.
    pub layout: Option<(FormatKey, Vec<u8>)>,
}

/// What one unit (a line, or a whole binary payload) of a message became.
#[derive(Debug, Clone)]
pub enum Unit {
    Frame(Box<Frame>),
    /// Undecodable: kept in the quarantine with the reason (naming the failed check).
    Bad {
        gateway: String,
        locator: String,
        /// The kind of fault, for gateway health.
        why: Undecodable,
        reason: String,
        payload: Vec<u8>,
    },
    /// A wM-Bus compact frame whose layout was not known when it was decoded: the commit
    /// decodes it with the layouts stored (or learned in the same transaction), else holds it.
    Held(Box<crate::store::HeldTelegram>),
    /// A gateway status / last-will message.
    Status {
        gateway: String,
        status: String,
    },
}

/// The gateway named by the topic level `level`.
pub fn gateway_of_topic(topic: &str, level: usize) -> String {
    topic
        .split('/')
        .nth(level)
        .filter(|s| !s.is_empty())
        .unwrap_or("unknown")
        .to_owned()
}

/// The gateway a unit is counted under when its own name breaks a limit (a name over the limit
/// or with control characters is never stored; the unit is quarantined with the reason).
const UNNAMED_GATEWAY: &str = "unknown";

/// The topic as a locator: itself, or quoted and cut when over its limit (a topic may be 64 KiB).
pub fn locator_of(topic: &str) -> String {
    match limits::check(Field::Topic, "topic", topic) {
        Ok(()) => topic.to_owned(),
        Err(_) => quote(topic),
    }
}

/// The topic and the topic's gateway name within their limits, or the unit that quarantines
/// the message with the reason.
fn check_topic(topic: &str, payload: &[u8], topic_gateway: &str) -> Result<(), Unit> {
    limits::check(Field::Topic, "topic", topic)
        .and_then(|()| limits::check(Field::Gateway, "gateway (topic level)", topic_gateway))
        .map_err(|e| Unit::Bad {
            gateway: UNNAMED_GATEWAY.to_owned(),
            locator: locator_of(topic),
            why: Undecodable::Limit,
            reason: e.to_string(),
            payload: payload.to_vec(),
        })
}

/// A status / last-will message as a unit: the status, or the quarantine when the status or
/// the gateway name breaks its limit.
pub fn status_unit(topic: &str, payload: &[u8], gateway: String) -> Unit {
    if let Err(bad) = check_topic(topic, payload, &gateway) {
        return bad;
    }
    let status = status_of(payload);
    match limits::check(Field::Status, "status", &status) {
        Ok(()) => Unit::Status { gateway, status },
        Err(e) => Unit::Bad {
            gateway,
            locator: topic.to_owned(),
            why: Undecodable::Limit,
            reason: e.to_string(),
            payload: payload.to_vec(),
        },
    }
}

/// Decodes a status payload: `online`, or JSON with `status` / `state`.
pub fn status_of(payload: &[u8]) -> String {
    let text = String::from_utf8_lossy(payload);
    let text = text.trim();
    if let Ok(serde_json::Value::Object(m)) = serde_json::from_str::<serde_json::Value>(text) {
        for k in ["status", "state"] {
            if let Some(serde_json::Value::String(s)) = m.get(k) {
                return s.clone();
            }
        }
    }
    text.chars().take(64).collect()
}

/// Decodes a meter message payload into units.
pub fn decode_payload(topic: &str, payload: &[u8], topic_gateway: &str, received: Timestamp, keys: &Keys) -> Vec<Unit> {
    decode_payload_with(topic, payload, topic_gateway, received, keys, &NoFormats)
}

/// [`decode_payload`] with the wM-Bus compact-frame layouts known.
pub fn decode_payload_with(
    topic: &str,
    payload: &[u8],
    topic_gateway: &str,
    received: Timestamp,
    keys: &Keys,
    formats: &dyn Formats,
) -> Vec<Unit> {
    if let Err(bad) = check_topic(topic, payload, topic_gateway) {
        return vec![bad];
    }
    let Ok(text) = std::str::from_utf8(payload) else {
        return vec![binary(topic, payload, topic_gateway, received, keys, formats)];
    };
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .map(|(n, l)| (n + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty())
        .collect();
    if lines.is_empty() {
        return vec![Unit::Bad {
            gateway: topic_gateway.to_owned(),
            locator: topic.to_owned(),
            why: Undecodable::Format,
            reason: "empty payload".into(),
            payload: payload.to_vec(),
        }];
    }
    let many = lines.len() > 1;
    lines
        .into_iter()
        .map(|(n, line)| {
            let locator = if many {
                format!("{topic} line {n}")
            } else {
                topic.to_owned()
            };
            match decode_line(line, topic_gateway, received, keys, formats) {
                Ok((gateway, protocol, decoded, heard_at, layout)) => match check_frame(&gateway, &decoded) {
                    Ok(()) => frame(gateway, protocol, decoded, heard_at, locator, line.as_bytes(), layout),
                    Err(e) => Unit::Bad {
                        gateway: topic_gateway.to_owned(),
                        locator,
                        why: Undecodable::Limit,
                        reason: e.to_string(),
                        payload: line.as_bytes().to_vec(),
                    },
                },
                // A compact frame is held as its bytes, decoded again by [`binary`] once its
                // layout is known; inside a JSON line (envelope, rtl_433) meterd cannot decode
                // it from the holding area, so it is kept in the quarantine with the reason.
                Err(Error::CompactFormat { meter, key }) => match hexline::parse(line) {
                    Ok(bytes) if !line.starts_with('{') => {
                        held(topic, locator, topic_gateway, &bytes, received, meter, key)
                    }
                    _ => Unit::Bad {
                        gateway: topic_gateway.to_owned(),
                        locator,
                        why: Undecodable::Format,
                        reason: format!(
                            "{}; compact frames are decoded from raw hex or binary payloads, not from JSON lines",
                            Error::CompactFormat { meter, key }
                        ),
                        payload: line.as_bytes().to_vec(),
                    },
                },
                Err(e) => Unit::Bad {
                    gateway: topic_gateway.to_owned(),
                    locator,
                    why: why_of(&e),
                    reason: e.to_string(),
                    payload: line.as_bytes().to_vec(),
                },
            }
        })
        .collect()
}

/// A compact frame to hold until its layout is known.
fn held(
    topic: &str,
    locator: String,
    gateway: &str,
    payload: &[u8],
    received: Timestamp,
    meter: String,
    key: FormatKey,
) -> Unit {
    Unit::Held(Box::new(crate::store::HeldTelegram {
        topic: topic.to_owned(),
        locator,
        gateway: gateway.to_owned(),
        payload: payload.to_vec(),
        received_at: received,
        meter,
        manufacturer: key.manufacturer,
        version: key.version,
        device_type: key.device_type,
        signature: key.signature,
    }))
}

/// A full wM-Bus frame's layout (none for other protocols).
fn layout_of(p: Protocol, bytes: &[u8], keys: &Keys) -> Option<(FormatKey, Vec<u8>)> {
    (p == Protocol::Wmbus)
        .then(|| meterd_protocols::wmbus::learned_format(bytes, keys))
        .flatten()
}

/// One binary frame (a binary MQTT payload, or a telegram a serial receiver handed over) as a
/// unit located at `topic`; a wM-Bus compact frame whose layout `formats` does not know yet is
/// held.
pub fn binary(
    topic: &str,
    payload: &[u8],
    gateway: &str,
    received: Timestamp,
    keys: &Keys,
    formats: &dyn Formats,
) -> Unit {
    binary_as(topic, payload, gateway, received, keys, formats, None)
}

/// [`binary`] for a source that knows how its wM-Bus telegrams are framed (`wmbus_format`).
pub fn binary_as(
    topic: &str,
    payload: &[u8],
    gateway: &str,
    received: Timestamp,
    keys: &Keys,
    formats: &dyn Formats,
    wmbus_format: Option<FrameFormat>,
) -> Unit {
    let decoded = detect_binary(payload)
        .ok_or_else(|| Error::Unrecognised(format!("{} binary bytes", payload.len())))
        .and_then(|p| decode_frame(p, payload, received, keys, formats, wmbus_format).map(|d| (p, d)));
    if let Err(Error::CompactFormat { meter, key }) = decoded {
        return held(topic, topic.to_owned(), gateway, payload, received, meter, key);
    }
    let result = match decoded {
        Ok((p, d)) => match check_frame(gateway, &d) {
            Ok(()) => Ok((p, d)),
            Err(e) => Err((Undecodable::Limit, e.to_string())),
        },
        Err(e) => Err((why_of(&e), e.to_string())),
    };
    match result {
        Ok((p, d)) => {
            let layout = layout_of(p, payload, keys);
            frame(gateway.to_owned(), p, d, received, topic.to_owned(), payload, layout)
        }
        Err((why, reason)) => Unit::Bad {
            gateway: gateway.to_owned(),
            locator: topic.to_owned(),
            why,
            reason,
            payload: payload.to_vec(),
        },
    }
}

/// The kind of fault a decoding error is, for gateway health: the failed integrity check
/// (damage on the air), a key problem, or a payload of a format meterd does not take.
pub fn why_of(e: &Error) -> Undecodable {
    match e {
        Error::Check { check, .. } => match check {
            Check::Bch => Undecodable::Bch,
            Check::Crc => Undecodable::Crc,
            Check::ReedSolomon => Undecodable::ReedSolomon,
            Check::Checksum => Undecodable::Checksum,
            Check::Bcc => Undecodable::Bcc,
            Check::Decryption | Check::Mac => Undecodable::Key,
        },
        Error::Key(_) => Undecodable::Key,
        _ => Undecodable::Format,
    }
}

/// The texts of a decoded frame that the store keeps, within their limits: the gateway name
/// (an envelope names its own) and the endpoint key the read is stored under.
fn check_frame(gateway: &str, decoded: &Decoded) -> Result<(), LimitError> {
    limits::check(Field::Gateway, "gateway", gateway)?;
    limits::check(Field::MeterId, "meter id", &endpoint_key(decoded))
}

fn decode_frame(
    p: Protocol,
    bytes: &[u8],
    received: Timestamp,
    keys: &Keys,
    formats: &dyn Formats,
    wmbus_format: Option<FrameFormat>,
) -> Result<Decoded, Error> {
    match p {
        // Intervals get their times from the reception time.
        Protocol::Idm => ert::idm::decode_at(bytes, false, Some(received)),
        Protocol::NetIdm => ert::idm::decode_at(bytes, true, Some(received)),
        // A source that knows its framing says so; otherwise it is detected.
        Protocol::Wmbus => meterd_protocols::wmbus::decode_as(bytes, keys, formats, wmbus_format),
        p => decode_binary_with(p, bytes, keys, formats),
    }
}

type Line = (String, Protocol, Decoded, Timestamp, Option<(FormatKey, Vec<u8>)>);

fn decode_line(
    line: &str,
    topic_gateway: &str,
    received: Timestamp,
    keys: &Keys,
    formats: &dyn Formats,
) -> Result<Line, Error> {
    if line.starts_with('{') {
        let parsed = ert::parse_json_line(line, keys)?;
        let heard_at = parsed.received_at.unwrap_or(received);
        // Envelopes name their gateway; rtlamr and rtl_433 lines do not (the topic does).
        let gateway = match parsed.source {
            Source::Envelope => parsed.gateway.unwrap_or_else(|| topic_gateway.to_owned()),
            Source::Rtlamr | Source::Rtl433 => topic_gateway.to_owned(),
        };
        return Ok((gateway, parsed.protocol, parsed.decoded, heard_at, None));
    }
    let bytes = hexline::parse(line)?;
    let p = detect_binary(&bytes).ok_or_else(|| Error::Unrecognised(format!("{} bytes of hex", bytes.len())))?;
    let decoded = decode_frame(p, &bytes, received, keys, formats, None)?;
    let layout = layout_of(p, &bytes, keys);
    Ok((topic_gateway.to_owned(), p, decoded, received, layout))
}

fn frame(
    gateway: String,
    protocol: Protocol,
    decoded: Decoded,
    heard_at: Timestamp,
    locator: String,
    raw: &[u8],
    layout: Option<(FormatKey, Vec<u8>)>,
) -> Unit {
    let dedup_key = ert::dedup_key(&decoded).unwrap_or_else(|| fallback_key(&decoded));
    Unit::Frame(Box::new(Frame {
        gateway,
        protocol,
        decoded,
        heard_at,
        dedup_key,
        locator,
        raw: raw.to_vec(),
        layout,
    }))
}

/// The decoded fields of a wM-Bus telegram that belong to its link layer, which a repeater
/// rewrites (EN 13757-4: the C field's relayed bit; mbus.md §2.2) and a receiver reshapes (the
/// DLL CRCs kept or removed: the frame format). The hop count and repeated-access bits of the
/// TPL configuration field and the ELL's communication control are not decoded fields at all.
const WMBUS_LINK_FIELDS: [&str; 2] = ["c", "frame_format"];

/// Protocols without a radio dedup rule (wM-Bus, M-Bus): the meter and a digest of everything
/// decoded above the link layer (identity, access number, TPL fields, decrypted readings), so
/// a repeated telegram (another gateway, a repeater's forwarded copy: wmbusmeters #57) is one
/// transmission and two transmissions that differ in their access number are two.
fn fallback_key(d: &Decoded) -> String {
    let mut h = Sha256::new();
    if d.protocol == "wmbus" {
        let mut fields = d.fields.clone();
        for f in WMBUS_LINK_FIELDS {
            fields.remove(f);
        }
        h.update(serde_json::to_vec(&fields).unwrap_or_default());
    } else {
        h.update(serde_json::to_vec(&d.fields).unwrap_or_default());
    }
    h.update(serde_json::to_vec(&d.readings).unwrap_or_default());
    format!("{}:{}:{}", d.protocol, d.meter_id, hex::encode(&h.finalize()[..12]))
}

/// The topic of a quarantine entry's source (`mqtt TOPIC` or `mqtt TOPIC line N`, as
/// [`super::commit`] writes it), if it is an MQTT entry.
pub fn topic_of_source(source: &str) -> Option<&str> {
    let rest = source.strip_prefix("mqtt ")?;
    Some(match rest.rsplit_once(" line ") {
        Some((topic, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => topic,
        _ => rest,
    })
}

/// The endpoint key a radio meter is stored under: `protocol:id` (`scm:54585868`,
/// `scm+:68211547`, `idm:11278109`, `r900:1545911110`, `wmbus:12345678`). The same ERT sends
/// SCM and IDM under one id, and different meters share ids across protocols, so the protocol
/// is part of the key.
pub fn endpoint_key(decoded: &Decoded) -> String {
    format!("{}:{}", decoded.protocol, decoded.meter_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-01-01T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn units_of_each_payload_kind() {
        let keys = Keys::new();
        let u = decode_payload("meters/gw1/raw", b"F95306F008951840EA0C101A", "gw1", now(), &keys);
        let Unit::Frame(f) = &u[0] else { panic!("{u:?}") };
        assert_eq!(f.protocol, Protocol::Scm);
        assert_eq!(endpoint_key(&f.decoded), "scm:54585868");
        assert_eq!(f.gateway, "gw1");
        let bin = hex::decode("F95306F008951840EA0C101A").unwrap();
        let u = decode_payload("t/gw2/raw", &[bin.as_slice(), &[0xFF]].concat(), "gw2", now(), &keys);
        assert!(matches!(&u[0], Unit::Bad { .. }), "{u:?}");
        // Two lines, one corrupt: the good one decodes, the bad one names its check.
        let u = decode_payload(
            "t",
            b"F95306F008951840EA0C101A\nF95306F0086A1840EA0C101A\n",
            "g",
            now(),
            &keys,
        );
        assert!(matches!(&u[0], Unit::Frame(_)));
        let Unit::Bad { reason, locator, .. } = &u[1] else {
            panic!()
        };
        assert!(reason.contains("BCH"), "{reason}");
        assert_eq!(locator, "t line 2");
        let env = r#"{"gateway":"gw9","received_at":"2026-01-01T00:00:01Z","hex":"F95306F008951840EA0C101A"}"#;
        let u = decode_payload("t/x", env.as_bytes(), "x", now(), &keys);
        let Unit::Frame(f) = &u[0] else { panic!() };
        assert_eq!(f.gateway, "gw9");
        assert_eq!(f.heard_at, "2026-01-01T00:00:01Z".parse::<Timestamp>().unwrap());
    }

    #[test]
    fn faults_are_sorted_for_gateway_health() {
        let keys = Keys::new();
        let why = |payload: &str| match &decode_payload("meters/g/raw", payload.as_bytes(), "g", now(), &keys)[0] {
            Unit::Bad { why, reason, .. } => (*why, reason.clone()),
            other => panic!("{other:?}"),
        };
        // A mode 5 telegram without its key (the wM-Bus vector R5 of the protocols crate).
        let (w, reason) = why(
            "3944FA122162092002067A3600202567C94D48D00DC47B11213E23383DB51968A705AAFA60C60E263D50CD259D7C9A03FD0C08000002FD0B0011",
        );
        assert_eq!(w, Undecodable::Key, "{reason}");
        assert!(reason.contains("no key"), "{reason}");
        assert_eq!(why("F95306F0086A1840EA0C101A").0, Undecodable::Bch);
        assert_eq!(why("not a frame").0, Undecodable::Format);
    }

    #[test]
    fn names_over_their_limits_make_the_unit_bad_with_the_reason() {
        let keys = Keys::new();
        let scm = "F95306F008951840EA0C101A";
        // An envelope naming a 100-character gateway: quarantined under the topic's gateway.
        let env = format!(r#"{{"gateway":"{}","hex":"{scm}"}}"#, "g".repeat(100));
        let u = decode_payload("meters/gw1/raw", env.as_bytes(), "gw1", now(), &keys);
        let Unit::Bad {
            gateway,
            why,
            reason,
            locator,
            payload,
        } = &u[0]
        else {
            panic!("{u:?}")
        };
        assert_eq!(*why, Undecodable::Limit);
        assert_eq!((gateway.as_str(), locator.as_str()), ("gw1", "meters/gw1/raw"));
        assert!(
            reason.starts_with("gateway: 100 bytes long; at most 64 are accepted"),
            "{reason}"
        );
        assert_eq!(payload, env.as_bytes());
        // An ANSI sequence in the envelope's gateway or in a status: refused, never shown.
        let env = format!(r#"{{"gateway":"gw\u001b[2J","hex":"{scm}"}}"#);
        let u = decode_payload("meters/gw1/raw", env.as_bytes(), "gw1", now(), &keys);
        assert!(
            matches!(&u[0], Unit::Bad { why: Undecodable::Limit, reason, gateway, .. } if reason.contains("U+001B") && gateway == "gw1"),
            "{u:?}"
        );
        let u = status_unit("meters/gw1/status", br#"{"status":"on\u001b[31mline"}"#, "gw1".into());
        assert!(
            matches!(&u, Unit::Bad { why: Undecodable::Limit, reason, .. } if reason.contains("U+001B")),
            "{u:?}"
        );
        // A NUL in the envelope's gateway.
        let env = format!(r#"{{"gateway":"gw\u0000x","hex":"{scm}"}}"#);
        let u = decode_payload("meters/gw1/raw", env.as_bytes(), "gw1", now(), &keys);
        let Unit::Bad { reason, .. } = &u[0] else {
            panic!("{u:?}")
        };
        assert!(reason.contains("U+0000"), "{reason}");
        // A topic level of 1 MiB names the gateway: the message is quarantined, the name never
        // stored, the locator cut.
        let level = "x".repeat(1 << 20);
        let topic = format!("meters/{level}/raw");
        let u = decode_payload(&topic, scm.as_bytes(), &level, now(), &keys);
        let Unit::Bad {
            gateway,
            reason,
            locator,
            ..
        } = &u[0]
        else {
            panic!("{u:?}")
        };
        assert_eq!(gateway, UNNAMED_GATEWAY);
        assert!(reason.starts_with("topic: 1048587 bytes long; at most 256"), "{reason}");
        assert!(reason.len() < 300 && locator.len() < 120, "{reason} / {locator}");
        let u = decode_payload("meters/gw\u{1b}/raw", scm.as_bytes(), "gw\u{1b}", now(), &keys);
        let Unit::Bad { reason, .. } = &u[0] else {
            panic!("{u:?}")
        };
        assert!(
            reason.starts_with("topic: contains the control character U+001B"),
            "{reason}"
        );
        // A status over its limit is quarantined too; a plain one is a status.
        let long = format!(r#"{{"status":"{}"}}"#, "on".repeat(1000));
        let u = status_unit("meters/gw1/status", long.as_bytes(), "gw1".into());
        let Unit::Bad { reason, gateway, .. } = &u else {
            panic!("{u:?}")
        };
        assert!(
            reason.starts_with("status: 2000 bytes long; at most 32") && gateway == "gw1",
            "{reason}"
        );
        let u = status_unit("meters/gw1/status", b"online", "gw1".into());
        assert!(matches!(&u, Unit::Status { status, .. } if status == "online"), "{u:?}");
    }

    /// R1 (mbus.md §3.2) as a gateway hears it from the meter (CRCs removed) and as another
    /// hears a repeater's copy (C field with the relayed bit, hop count and repeated-access
    /// bits set in the TPL configuration, CRCs kept: format A): one transmission. The next
    /// transmission (another access number) is another, even with the same register.
    #[test]
    fn a_repeated_wmbus_telegram_is_the_same_transmission() {
        use meterd_protocols::wmbus::dll::CRC;
        let keys = Keys::new();
        let original = hex::decode("1844AE4C4455223368077A55000000041389E20100023B0000").unwrap();
        let mut repeated = original.clone();
        repeated[1] |= 0x80;
        repeated[13] |= 0x03;
        let mut on_air = repeated[..10].to_vec();
        on_air.extend_from_slice(&CRC.checksum(&repeated[..10]).to_be_bytes());
        for block in repeated[10..].chunks(16) {
            on_air.extend_from_slice(block);
            on_air.extend_from_slice(&CRC.checksum(block).to_be_bytes());
        }
        let mut next = original.clone();
        next[11] = 0x56;
        let key = |payload: &[u8], gw: &str| {
            let u = decode_payload("meters/x/raw", hex::encode(payload).as_bytes(), gw, now(), &keys);
            let Unit::Frame(f) = &u[0] else { panic!("{u:?}") };
            f.dedup_key.clone()
        };
        let k = key(&original, "gw1");
        assert!(k.starts_with("wmbus:33225544:"), "{k}");
        assert_eq!(key(&on_air, "gw2"), k);
        assert_ne!(key(&next, "gw1"), k);
    }

    #[test]
    fn status_payloads() {
        assert_eq!(status_of(b"offline\n"), "offline");
        assert_eq!(status_of(br#"{"state":"online"}"#), "online");
        assert_eq!(gateway_of_topic("meters/gw1/status", 1), "gw1");
        assert_eq!(gateway_of_topic("x", 3), "unknown");
    }
}
