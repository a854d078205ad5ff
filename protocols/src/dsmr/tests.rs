//! DSMR telegrams from ndokter/dsmr_parser's examples ( the CRCs of the 4.2
//! and 5 telegrams match the ones the meters sent).

use serde_json::json;

use super::*;
use crate::decoded::Reading;

const V22: &[u8] = include_bytes!("../../../firmware-fixtures/dsmr/iskra-mt382/v2.2.in");
const V3: &[u8] = include_bytes!("../../../firmware-fixtures/dsmr/iskra-mt382/v3.in");
const V42: &[u8] = include_bytes!("../../../firmware-fixtures/dsmr/kaifa-ma105/v4.2.in");
const V5: &[u8] = include_bytes!("../../../firmware-fixtures/dsmr/iskra-mt382/v5.in");
const T210: &[u8] = include_bytes!("../../../firmware-fixtures/dsmr/sagemcom-t210-d/v5.in");
const ESY: &[u8] = include_bytes!("../../../firmware-fixtures/dsmr/easymeter-q3d/v3.04-com1-gateway.in");

fn by<'a>(d: &'a Decoded, obis: &str) -> &'a Reading {
    d.readings
        .iter()
        .find(|r| r.obis.as_deref() == Some(obis))
        .unwrap_or_else(|| panic!("no {obis}"))
}

#[test]
fn dsmr5_telegram() {
    let d = decode(V5).unwrap();
    assert_eq!(d.protocol, "dsmr");
    assert_eq!(d.meter_id, "K8EG004046395507");
    assert_eq!(d.fields["version"], json!("5.0"));
    assert_eq!(d.fields["crc"], json!("6EEE"));
    assert_eq!(d.fields["identification"], json!("ISk5\\2MT382-1000"));
    assert_eq!(d.fields["timestamp"], json!("2017-01-02T18:20:02Z"));
    let r = by(&d, "1-0:1.8.1");
    assert_eq!(
        (&*r.quantity, r.value.clone(), r.unit.as_deref()),
        ("energy", json!(4.426), Some("kWh"))
    );
    assert_eq!(by(&d, "1-0:1.7.0").quantity, "power");
    assert_eq!(by(&d, "1-0:32.7.0").value, json!(230));
    assert_eq!(by(&d, "1-0:32.7.0").quantity, "voltage");
    assert_eq!(by(&d, "1-0:31.7.0").quantity, "current");
    let gas = by(&d, "0-1:24.2.1");
    assert_eq!(
        (&*gas.quantity, gas.value.clone(), gas.unit.as_deref()),
        ("volume", json!(0.107), Some("m3"))
    );
    assert_eq!(gas.at.as_deref(), Some("2017-01-02T15:10:05Z"));
    assert_eq!(by(&d, "0-1:96.1.0").value, json!("2222ABCD123456789"));
    assert_eq!(by(&d, "0-0:96.7.21").value, json!(13));
    // The empty power failure log gives no reading.
    assert!(d.readings.iter().all(|r| r.obis.as_deref() != Some("1-0:99.97.0")));
}

#[test]
fn dsmr42_telegram_with_power_failure_log() {
    let d = decode(V42).unwrap();
    assert_eq!(d.fields["version"], json!("4.2"));
    // Not hex-encoded text: kept as sent.
    assert_eq!(d.meter_id, "3960221976967177082151037881335713");
    let failures: Vec<_> = d.readings.iter().filter(|r| r.quantity == "power_failure").collect();
    assert_eq!(failures.len(), 3);
    assert_eq!(failures[0].value, json!(237126));
    assert_eq!(failures[0].unit.as_deref(), Some("s"));
    assert_eq!(failures[0].at.as_deref(), Some("2000-01-04T17:03:20Z"));
    assert_eq!(failures[2].value, json!(2317482647u64));
    assert_eq!(by(&d, "0-1:24.2.1").value, json!(981.443));
    assert_eq!(by(&d, "1-0:1.8.1").value, json!(1581.123));
    assert_eq!(by(&d, "1-0:2.8.1").value, json!(0));
    assert_eq!(by(&d, "1-0:32.32.0").quantity, "voltage_sags");
}

#[test]
fn dsmr22_and_3_have_no_crc() {
    let d = decode(V22).unwrap();
    assert_eq!(d.fields["crc"], json!(null));
    assert_eq!(d.fields["version"], json!(null));
    // All-zero equipment id means "not set": the header identifies the meter instead.
    assert_eq!(d.meter_id, "ISk5\\2MT382-1004");
    let gas = by(&d, "0-1:24.3.0");
    assert_eq!((gas.value.clone(), gas.unit.as_deref()), (json!(1.001), Some("m3")));
    assert_eq!(gas.at.as_deref(), Some("2016-11-07T18:00:00Z"));
    let d = decode(V3).unwrap();
    assert_eq!(d.meter_id, "K8EG004046395507");
    assert_eq!(by(&d, "0-0:96.13.1").value, json!("012345678"));
    assert_eq!(by(&d, "0-0:17.0.0").unit.as_deref(), Some("A"));
    // Summer/winter: 2009-02-12 16:00 is winter time.
    assert_eq!(by(&d, "0-1:24.3.0").at.as_deref(), Some("2009-02-12T15:00:00Z"));
}

#[test]
fn wh_units_and_summer_time() {
    let d = decode(T210).unwrap();
    assert_eq!(d.fields["timestamp"], json!("2022-10-06T13:50:14Z"));
    assert_eq!(by(&d, "1-0:1.8.0").value, json!(6545766));
    assert_eq!(by(&d, "1-0:1.8.0").unit.as_deref(), Some("Wh"));
    assert_eq!(by(&d, "1-0:3.8.0").quantity, "energy");
    assert_eq!(by(&d, "1-0:4.7.0").quantity, "power");
    assert_eq!(d.meter_id, "EST5\\253710000_A");
}

#[test]
fn gateway_trailer_after_the_end_line_is_ignored() {
    let d = decode(ESY).unwrap();
    assert_eq!(d.meter_id, "0272031312565");
    assert_eq!(by(&d, "1-0:1.8.0*255").value.to_string(), "52185.7825309");
    assert_eq!(by(&d, "1-0:21.7.0*255").quantity, "power");
}

#[test]
fn bad_crc_names_the_check() {
    let bad = String::from_utf8_lossy(V42).replace("001581.123", "001581.124");
    let err = decode(bad.as_bytes()).unwrap_err();
    assert_eq!(err.failed_check(), Some(Check::Crc), "{err}");
    let bad = String::from_utf8_lossy(V5).replace("!6EEE", "!6EEF");
    assert_eq!(decode(bad.as_bytes()).unwrap_err().failed_check(), Some(Check::Crc));
    // Lower-case hex is still hex.
    let lower = String::from_utf8_lossy(V5).replace("!6EEE", "!6eee");
    assert!(decode(lower.as_bytes()).is_ok());
}

#[test]
fn dsmr5_without_crc_is_refused() {
    let cut = String::from_utf8_lossy(V5).replace("!6EEE", "!");
    let err = decode(cut.as_bytes()).unwrap_err();
    assert!(matches!(err, Error::Invalid { field: "crc", .. }), "{err}");
}

#[test]
fn truncated_telegrams_are_incomplete() {
    for cut in [1, 10, 200, V5.len() - 7, V5.len() - 3, V5.len() - 1] {
        assert!(
            matches!(decode(&V5[..cut]), Err(Error::Incomplete { .. })),
            "cut at {cut}"
        );
    }
    assert!(matches!(decode(b"garbage"), Err(Error::Invalid { .. })));
}

#[test]
fn crc_is_the_catalogue_arc() {
    // CRC-16/ARC check value of "123456789".
    assert_eq!(CRC.checksum(b"123456789"), 0xBB3D);
}

mod splitting {
    use super::*;

    fn drain(s: &mut Splitter) -> Vec<Event> {
        std::iter::from_fn(|| s.next_event()).collect()
    }

    #[test]
    fn telegrams_byte_by_byte_with_garbage_between() {
        let mut stream = b"\x00\xffnoise!6EEE\r\n".to_vec();
        stream.extend_from_slice(V5);
        stream.extend_from_slice(b"\r\n");
        stream.extend_from_slice(V42);
        let mut s = Splitter::default();
        let mut events = Vec::new();
        for b in &stream {
            s.push(&[*b]);
            events.extend(drain(&mut s));
        }
        let telegrams: Vec<_> = events
            .iter()
            .filter_map(|e| if let Event::Telegram(t) = e { Some(t) } else { None })
            .collect();
        assert_eq!(telegrams, vec![&V5.to_vec(), &V42.to_vec()]);
        let discarded: usize = events
            .iter()
            .map(|e| {
                if let Event::Discarded { bytes, .. } = e {
                    bytes.len()
                } else {
                    0
                }
            })
            .sum();
        assert_eq!(discarded, 14 + 2);
        assert_eq!(s.pending(), 0);
        for t in telegrams {
            decode(t).unwrap();
        }
    }

    #[test]
    fn cut_short_telegram_is_discarded_and_the_next_kept() {
        let mut stream = V5[..300].to_vec();
        stream.extend_from_slice(V42);
        let mut s = Splitter::default();
        s.push(&stream);
        let events = drain(&mut s);
        assert_eq!(events.len(), 2);
        assert!(
            matches!(&events[0], Event::Discarded { bytes, reason } if bytes.len() == 300 && reason.contains("cut short"))
        );
        assert_eq!(events[1], Event::Telegram(V42.to_vec()));
    }

    #[test]
    fn incomplete_is_not_invalid() {
        assert_eq!(
            splitter::frame(&V5[..V5.len() - 1], 4096),
            Err(Error::Incomplete { needed: 1 })
        );
        assert_eq!(splitter::frame(V5, 4096), Ok(V5.len()));
        assert_eq!(splitter::frame(V22, 4096), Ok(V22.len()));
        assert!(matches!(splitter::frame(V5, 100), Err(Error::Invalid { .. })));
        let mut s = Splitter::new(100);
        s.push(&V5[..150]);
        assert!(matches!(
            s.next_event(),
            Some(Event::Discarded {
                reason: "telegram too long",
                ..
            })
        ));
        s.push(&V5[..10]);
        assert_eq!(s.next_event(), None);
        assert!(matches!(s.flush(), Some(Event::Discarded { bytes, .. }) if bytes.len() == 10));
    }

    #[test]
    fn parity_bits_of_a_7e1_port_are_dropped() {
        let wire = crate::iec62056_21::encode_7e1(V22);
        let mut s = Splitter::default();
        s.push(&wire);
        assert_eq!(s.next_event(), Some(Event::Telegram(V22.to_vec())));
    }
}
