//! Published telegrams (the test lines of wmbusmeters' driver files, e.g. `drivers/src/iperl.xmq`;
//! only the bytes and the decoded values are used) plus telegrams built here for mode 7 and tampering.

use super::*;
use proptest::prelude::*;

fn bytes(hex: &str) -> Vec<u8> {
    hex::decode(hex.replace(['_', '|', ' '], "")).unwrap()
}

fn keys(id: &str, key: &str) -> Keys {
    let mut k = Keys::new();
    k.insert(id, bytes(key).try_into().unwrap());
    k
}

fn values(d: &Decoded) -> Vec<(String, String)> {
    d.readings
        .iter()
        .map(|r| (r.quantity.to_string(), r.value.to_string()))
        .collect()
}

const R1: &str = "1844AE4C4455223368077A55000000_041389E20100023B0000";
const R4: &str = "3444EE4D813929271608|811D|7A51000000|046D1912A62B036E000000|5170426CE1F1436E00000002FF2C00000259D6D0D4090265FC0902FD66A00044C4";
const R5: &str = "3944FA122162092002067A3600202567C94D48D00DC47B11213E23383DB51968A705AAFA60C60E263D50CD259D7C9A03FD0C08000002FD0B0011";
const R5_KEY: &str = "BEDB81B52C29B5C143388CBB0D15A051";
const R8: &str = "2A442D2C998734761B168D2091D37CAC21E1D68CDAFFCD3DC452BD802913FF7B1706CA9E355D6C2701CC24";
const R8_KEY: &str = "28F64A24988064A079AA2C807D6102AE";
const R10_KEY: &str = "000102030405060708090a0b0c0d0e0f";
const R10_GOOD: &str = "1e440c2e7856341201027a2a0010055e25183a152aa01322a8b355e717a5a8";
const R10_BAD: &str = "1e440c2e7856341201027a2a00100569bb7b2d9effa3e90b4cede3b8503cf2";

#[test]
fn r1_unencrypted_short_header() {
    let d = decode(&bytes(R1), &Keys::new()).unwrap();
    assert_eq!(d.protocol, "wmbus");
    assert_eq!(d.meter_id, "33225544");
    assert_eq!(d.fields["manufacturer"], "SEN");
    assert_eq!(d.fields["version"], 0x68);
    assert_eq!(d.fields["medium"], "water");
    assert_eq!(d.fields["access_no"], 0x55);
    assert_eq!(d.fields["ci"], "0x7A");
    assert_eq!(
        values(&d),
        [("volume".into(), "123.529".into()), ("volume_flow".into(), "0".into())]
    );
    assert_eq!(d.readings[0].unit.as_deref(), Some("m3"));
    assert_eq!(d.readings[1].unit.as_deref(), Some("m3/h"));
}

#[test]
fn r4_format_a_with_crcs() {
    let d = decode(&bytes(R4), &Keys::new()).unwrap();
    assert_eq!(d.meter_id, "27293981");
    assert_eq!(d.fields["manufacturer"], "SON");
    assert_eq!(d.fields["medium"], "heat cost allocation");
    assert_eq!(d.fields["version"], 0x16);
    assert_eq!(d.fields["frame_format"], "A");
    assert_eq!(d.readings[0].quantity, "date_time");
    assert_eq!(d.readings[1].quantity, "hca_units");
}

#[test]
fn r4_bad_crc_is_refused() {
    let mut f = bytes(R4);
    f[30] ^= 0x01;
    assert_eq!(decode(&f, &Keys::new()).unwrap_err().failed_check(), Some(Check::Crc));
}

#[test]
fn r5_mode5_with_plaintext_tail() {
    let d = decode(&bytes(R5), &keys("20096221", R5_KEY)).unwrap();
    assert_eq!(d.meter_id, "20096221");
    assert_eq!(d.fields["manufacturer"], "DWZ");
    assert_eq!(d.fields["medium"], "warm water");
    assert_eq!(d.fields["security_mode"], 5);
    let v = values(&d);
    assert!(
        v.contains(&("date_time".into(), "\"2020-07-30T10:40:00\"".into())),
        "{v:?}"
    );
    assert!(v.contains(&("volume".into(), "0.106".into())), "{v:?}");
    assert!(v.contains(&("volume_backward".into(), "0".into())), "{v:?}");
    assert!(v.contains(&("error_flags".into(), "0".into())), "{v:?}");
    assert!(v.contains(&("model_version".into(), "\"000008\"".into())), "{v:?}");
    assert!(v.contains(&("parameter_set".into(), "\"1100\"".into())), "{v:?}");
}

#[test]
fn r5_wrong_or_missing_key() {
    let err = decode(&bytes(R5), &keys("20096221", R10_KEY)).unwrap_err();
    assert_eq!(err.failed_check(), Some(Check::Decryption));
    let err = decode(&bytes(R5), &Keys::new()).unwrap_err();
    assert_eq!(err.failed_check(), Some(Check::Decryption));
    assert_eq!(err.to_string(), "no key for meter 20096221 (mode 5)");
}

#[test]
fn r8_ell_aes_ctr() {
    let d = decode(&bytes(R8), &keys("76348799", R8_KEY)).unwrap();
    assert_eq!(d.meter_id, "76348799");
    assert_eq!(d.fields["manufacturer"], "KAM");
    assert_eq!(d.fields["medium"], "cold water");
    assert_eq!(d.fields["access_no"], 0x91);
    assert_eq!(d.fields["ci"], "0x78");
    let v = values(&d);
    assert!(v.contains(&("volume".into(), "6.408".into())), "{v:?}");
    let err = decode(&bytes(R8), &keys("76348799", R5_KEY)).unwrap_err();
    assert_eq!(err.failed_check(), Some(Check::Decryption));
}

#[test]
fn r10_the_2f2f_check() {
    let k = keys("12345678", R10_KEY);
    let d = decode(&bytes(R10_GOOD), &k).unwrap();
    assert_eq!(values(&d), [("volume".into(), "12345.678".into())]);
    let err = decode(&bytes(R10_BAD), &k).unwrap_err();
    assert_eq!(err.failed_check(), Some(Check::Decryption));
    assert!(err.to_string().contains("2F 2F"), "{err}");
}

/// Builds a mode 5 telegram (short TPL header) the way a meter does.
fn mode5(id: [u8; 4], acc: u8, key: &[u8; 16], records: &[u8]) -> Vec<u8> {
    let mut plain = vec![0x2F, 0x2F];
    plain.extend_from_slice(records);
    while plain.len() % 16 != 0 {
        plain.push(0x2F);
    }
    let n = plain.len() / 16;
    let m_a = [0x2D, 0x2C, id[0], id[1], id[2], id[3], 0x01, 0x07];
    let mut iv = [acc; 16];
    iv[..8].copy_from_slice(&m_a);
    crypto::cbc_encrypt(key, &iv, &mut plain);
    let cfg = 0x0500u16 | ((n as u16) << 4);
    let mut t = vec![0, 0x44];
    t.extend_from_slice(&m_a);
    t.extend_from_slice(&[0x7A, acc, 0x00]);
    t.extend_from_slice(&cfg.to_le_bytes());
    t.extend_from_slice(&plain);
    t[0] = (t.len() - 1) as u8;
    t
}

/// Builds a mode 7 telegram (AFL with MCL, MCR and an 8-byte CMAC; TPL short header).
fn mode7(id: [u8; 4], mcr: [u8; 4], key: &[u8; 16], records: &[u8]) -> Vec<u8> {
    let mut plain = vec![0x2F, 0x2F];
    plain.extend_from_slice(records);
    while plain.len() % 16 != 0 {
        plain.push(0x2F);
    }
    let n = plain.len() / 16;
    let (kenc, kmac) = mode7_keys(key, mcr, id);
    crypto::cbc_encrypt(&kenc, &[0; 16], &mut plain);
    let cfg = 0x0700u16 | ((n as u16) << 4);
    let mut tpl = vec![0x7A, 0x11, 0x00];
    tpl.extend_from_slice(&cfg.to_le_bytes());
    tpl.push(0x10); // CFG-ext: KDF-A
    tpl.extend_from_slice(&plain);
    let mcl = 0x05;
    let mac = crypto::cmac(&kmac, &[&[mcl], &mcr, &tpl]);
    let mut t = vec![0, 0x44, 0x2D, 0x2C, id[0], id[1], id[2], id[3], 0x01, 0x07];
    t.extend_from_slice(&[0x90, 0x0F, 0x00, 0x2C, mcl]);
    t.extend_from_slice(&mcr);
    t.extend_from_slice(&mac[..8]);
    t.extend_from_slice(&tpl);
    t[0] = (t.len() - 1) as u8;
    t
}

#[test]
fn mode7_mac_and_decryption() {
    let key = [0x42u8; 16];
    let id = [0x21, 0x43, 0x65, 0x87];
    let t = mode7(id, [1, 0, 0, 0], &key, &[0x04, 0x13, 0x39, 0x30, 0x00, 0x00]);
    let k = keys("87654321", &hex::encode(key));
    let d = decode(&t, &k).unwrap();
    assert_eq!(d.meter_id, "87654321");
    assert_eq!(d.fields["security_mode"], 7);
    assert_eq!(values(&d), [("volume".into(), "12.345".into())]);
    // Any altered byte after the AFL fails the MAC; a wrong key too.
    let mut bad = t.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert_eq!(decode(&bad, &k).unwrap_err().failed_check(), Some(Check::Mac));
    let wrong = keys("87654321", R10_KEY);
    assert_eq!(decode(&t, &wrong).unwrap_err().failed_check(), Some(Check::Mac));
    assert_eq!(
        decode(&t, &Keys::new()).unwrap_err().failed_check(),
        Some(Check::Decryption)
    );
}

#[test]
fn truncated_telegrams_are_errors_not_panics() {
    for hex in [R1, R4, R5, R8, R10_GOOD] {
        let full = bytes(hex);
        for n in 0..full.len() {
            let mut t = full[..n].to_vec();
            if let Some(l) = t.first_mut() {
                *l = n.saturating_sub(1) as u8;
            }
            let _ = decode(&t, &keys("20096221", R5_KEY));
        }
    }
}

proptest! {
    /// encrypt (mode 5) → decode gives back the volume, for any id, access number and key.
    #[test]
    fn mode5_round_trip(id in prop::array::uniform4(0u8..0x99), acc: u8, key: [u8; 16], litres in 0u32..99_999_999) {
        let mut rec = vec![0x04, 0x13];
        rec.extend_from_slice(&litres.to_le_bytes());
        let t = mode5(id, acc, &key, &rec);
        let meter = header::id_string(id);
        let d = decode(&t, &keys(&meter, &hex::encode(key))).unwrap();
        prop_assert_eq!(&d.meter_id, &meter);
        prop_assert_eq!(d.readings[0].value.to_string(), crate::mbus::value::scaled(i64::from(litres), -3).to_string());
    }
}

#[test]
fn long_tpl_header_names_the_meter_behind_a_radio_module() {
    // DLL: radio converter 11111111 (type 0x37); TPL long header: water meter 20096221 (DWZ).
    let key = [0x5Au8; 16];
    let tpl_id = [0x21, 0x62, 0x09, 0x20];
    let mut plain = vec![0x2F, 0x2F, 0x04, 0x13, 0x6A, 0x00, 0x00, 0x00];
    plain.resize(16, 0x2F);
    let m_a = [0xFA, 0x12, tpl_id[0], tpl_id[1], tpl_id[2], tpl_id[3], 0x02, 0x07];
    let mut iv = [0x36u8; 16];
    iv[..8].copy_from_slice(&m_a);
    crypto::cbc_encrypt(&key, &iv, &mut plain);
    let mut t = vec![0, 0x44, 0xAE, 0x4C, 0x11, 0x11, 0x11, 0x11, 0x01, 0x37, 0x72];
    t.extend_from_slice(&tpl_id); // long header: ID, then MAN, VER, TYPE
    t.extend_from_slice(&[0xFA, 0x12, 0x02, 0x07]);
    t.extend_from_slice(&[0x36, 0x00, 0x10, 0x05]);
    t.extend_from_slice(&plain);
    t[0] = (t.len() - 1) as u8;
    let d = decode(&t, &keys("20096221", &hex::encode(key))).unwrap();
    assert_eq!(d.meter_id, "20096221");
    assert_eq!(d.fields["dll_id"], "11111111");
    assert_eq!(d.fields["manufacturer"], "DWZ");
    assert_eq!(d.fields["medium"], "water");
    assert_eq!(values(&d), [("volume".into(), "0.106".into())]);
    // A key filed under the radio module's id is used when the meter's id has none.
    let d = decode(&t, &keys("11111111", &hex::encode(key))).unwrap();
    assert_eq!(d.meter_id, "20096221");
}

#[test]
fn format_b_with_two_crc_blocks() {
    let mut t = bytes(R1);
    for k in 0..40u8 {
        t.extend_from_slice(&[0x01, 0xFD, 0x3A, k]); // 40 dimensionless counters
    }
    t[0] = (t.len() - 1) as u8;
    assert!(t.len() > 128);
    let mut b = t[..126].to_vec();
    b.extend_from_slice(&dll::CRC.checksum(&t[..126]).to_be_bytes());
    let second = b.len();
    b.extend_from_slice(&t[126..]);
    b[0] = (b.len() + 2 - 1) as u8;
    let crc2 = dll::CRC.checksum(&b[second..]);
    b.extend_from_slice(&crc2.to_be_bytes());
    // The first CRC covers the rewritten L; recompute it now that L is final.
    let crc1 = dll::CRC.checksum(&b[..126]).to_be_bytes();
    b[126..128].copy_from_slice(&crc1);
    assert!(looks_like(&b));
    let d = decode(&b, &Keys::new()).unwrap();
    assert_eq!(d.fields["frame_format"], "B");
    assert_eq!(d.readings.len(), 42);
    assert_eq!(d.readings[41].value, 39);
    // Block 3 damaged: the first CRC proves format B, so the second is named.
    let mut bad = b.clone();
    bad[140] ^= 0x04;
    let err = decode(&bad, &Keys::new()).unwrap_err();
    assert_eq!(err.failed_check(), Some(Check::Crc));
    assert!(
        err.to_string()
            .contains(&format!("format B CRC of block 3 (bytes 128..{})", b.len() - 2)),
        "{err}"
    );
    // Block 2 damaged: the second CRC still proves format B.
    let mut bad = b.clone();
    bad[40] ^= 0x04;
    let err = decode(&bad, &Keys::new()).unwrap_err();
    assert!(
        err.to_string().contains("format B CRC of block 2 (bytes 0..126)"),
        "{err}"
    );
}

/// The field report of issue 16: a damaged one-block format B frame was read as CRC-less and
/// refused as "unsupported: CI 0x0A after the link layer". It now names the CRC and the block.
#[test]
fn damaged_short_format_b_names_the_crc() {
    let stripped = bytes(R1);
    let mut b = stripped.clone();
    b[0] += 2;
    let crc = dll::CRC.checksum(&b);
    b.extend_from_slice(&crc.to_be_bytes());
    assert_eq!(decode(&b, &Keys::new()).unwrap().fields["frame_format"], "B");
    for at in [1, 5, 11, 14, b.len() - 1] {
        let mut bad = b.clone();
        bad[at] ^= 0x01;
        let err = decode(&bad, &Keys::new()).unwrap_err();
        assert_eq!(err.failed_check(), Some(Check::Crc), "byte {at}: {err}");
        let text = err.to_string();
        assert!(
            text.starts_with("CRC check failed: wM-Bus link layer: format B CRC of block 2 (bytes 0..25) failed"),
            "byte {at}: {text}"
        );
    }
    // A byte damaged that turns the CI into 0x0A (the field report): still the CRC.
    let mut bad = b.clone();
    bad[10] = 0x0A;
    let err = decode(&bad, &Keys::new()).unwrap_err().to_string();
    assert!(
        err.contains("format B CRC of block 2") && err.contains("CI 0x0A"),
        "{err}"
    );
    // The real CRC-less telegram still decodes.
    assert_eq!(decode(&stripped, &Keys::new()).unwrap().fields["frame_format"], "none");
}

#[test]
fn key_problems_are_told_apart() {
    // No key at all.
    let err = decode(&bytes(R10_GOOD), &Keys::new()).unwrap_err();
    assert_eq!(err.to_string(), "no key for meter 12345678 (mode 5)");
    assert!(matches!(&err, Error::Key(k) if k.problem == crate::error::KeyProblem::Missing));
    assert_eq!(crate::error::key_reason_meter(&err.to_string()), Some("12345678"));
    // A wrong key: the verification bytes do not come out.
    let err = decode(&bytes(R10_GOOD), &keys("12345678", R5_KEY)).unwrap_err();
    assert!(
        err.to_string().starts_with(
            "key for meter 12345678 refused: decrypted data does not start with 2F 2F (mode 5; it starts "
        ),
        "{err}"
    );
    assert!(matches!(&err, Error::Key(k) if k.problem == crate::error::KeyProblem::Refused));
    assert_eq!(err.failed_check(), Some(Check::Decryption));
    assert_eq!(crate::error::key_reason_meter(&err.to_string()), Some("12345678"));
    // ELL AES-CTR with a wrong key: the payload CRC names it.
    let err = decode(&bytes(R8), &keys("76348799", R5_KEY)).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("key for meter 76348799 refused: ELL payload CRC fails after AES-CTR"),
        "{err}"
    );
    // Not key errors: a CRC failure has no meter to re-key.
    assert_eq!(crate::error::key_reason_meter("CRC check failed: x"), None);
    // A receiver puts its layer in front.
    let prefixed = format!("wM-Bus telegram: {err}");
    assert_eq!(crate::error::key_reason_meter(&prefixed), Some("76348799"));
}

/// The right key, and after 2F 2F content the EN 13757-3 walk cannot read (manufacturer
/// specific): the records before it decode, the rest is kept as manufacturer data, flagged.
#[test]
fn right_key_with_manufacturer_content_decodes_as_far_as_it_goes() {
    let key = [0x11u8; 16];
    let id = [0x78, 0x56, 0x34, 0x12];
    let mut rec = vec![0x04, 0x13, 0x39, 0x30, 0x00, 0x00];
    // A DIF announcing more than 10 DIFEs: not an EN 13757-3 record.
    rec.push(0x84);
    rec.extend_from_slice(&[0x80; 11]);
    rec.extend_from_slice(&[0x01, 0x13, 0x05]);
    let t = mode5(id, 0x21, &key, &rec);
    let d = decode(&t, &keys("12345678", &hex::encode(key))).unwrap();
    assert_eq!(d.readings[0].quantity, "volume");
    assert_eq!(d.readings[0].value.to_string(), "12.345");
    assert_eq!(d.readings[1].quantity, "manufacturer_data");
    assert!(
        d.readings[1].value.as_str().unwrap().starts_with("848080"),
        "{:?}",
        d.readings[1]
    );
    assert!(d.flags.contains(&"manufacturer_content".to_owned()), "{:?}", d.flags);
    assert!(
        d.fields["manufacturer_content"].as_str().unwrap().contains("DIF"),
        "{:?}",
        d.fields
    );
    // The same content unencrypted is refused: without a verified key nothing proves it is
    // the meter's.
    let mut plain = vec![
        0x0E, 0x44, 0x2D, 0x2C, id[0], id[1], id[2], id[3], 0x01, 0x07, 0x7A, 0x21, 0x00, 0x00, 0x00,
    ];
    plain.extend_from_slice(&rec);
    plain[0] = (plain.len() - 1) as u8;
    assert!(decode(&plain, &Keys::new()).is_err());
}

#[test]
fn ell_without_encryption_and_other_cis() {
    // ELL I (CI 0x8C) in front of a short TPL.
    let mut t = bytes(
        "1844AE4C44552233680 78C2091 7A55000000041389E20100"
            .replace(' ', "")
            .as_str(),
    );
    t[0] = (t.len() - 1) as u8;
    let d = decode(&t, &Keys::new()).unwrap();
    assert_eq!(d.fields["access_no"], 0x55, "the TPL access number wins over the ELL's");
    assert_eq!(values(&d), [("volume".into(), "123.529".into())]);
    // Manufacturer-specific CI: kept as bytes.
    let d = decode(&bytes("0E44AE4C4455223368 07 A1 DEADBEEF"), &Keys::new()).unwrap();
    assert_eq!(d.readings[0].value, "DEADBEEF");
}

/// R1's records in compact form (CI 0x7B, the short header kept): signature and full-frame
/// CRC per EN 13757-3 Annex G as `compact` computes them, data bytes only.
fn r1_compact(acc: u8) -> Vec<u8> {
    let full = bytes(R1);
    let (_, sig, crc, data) = compact::compress(&full[15..]).unwrap();
    let mut t = full[..10].to_vec();
    t.extend_from_slice(&[0x7B, acc, 0x00, 0x00, 0x00]);
    t.extend_from_slice(&sig.to_le_bytes());
    t.extend_from_slice(&crc.to_le_bytes());
    t.extend_from_slice(&data);
    t[0] = (t.len() - 1) as u8;
    t
}

#[test]
fn compact_frames_decode_with_the_layout_learned_from_a_full_frame() {
    let c = r1_compact(0x56);
    assert_eq!(
        hex::encode_upper(&c[15..]),
        format!("{}89E201000000", &hex::encode_upper(&c[15..19]))
    );
    // Unknown layout: a distinct error naming the meter type and signature.
    let err = decode(&c, &Keys::new()).unwrap_err();
    let Error::CompactFormat { meter, key } = &err else {
        panic!("{err}")
    };
    assert_eq!(meter, "33225544");
    assert!(
        err.to_string().contains("not learned yet from a full frame") && err.to_string().contains("SEN"),
        "{err}"
    );
    // Learned from R1 (the full frame), under the meter type and its signature.
    let (learned, layout) = learned_format(&bytes(R1), &Keys::new()).unwrap();
    assert_eq!(&learned, key);
    assert_eq!(layout, [0x04, 0x13, 0x02, 0x3B]);
    assert_eq!(learned.signature, compact::signature(&[0x04, 0x13, 0x02, 0x3B]));
    let formats: std::collections::HashMap<_, _> = [(learned, layout.clone())].into();
    let d = decode_with(&c, &Keys::new(), &formats).unwrap();
    assert_eq!(d.meter_id, "33225544");
    assert_eq!(d.fields["access_no"], 0x56);
    assert_eq!(d.fields["ci"], "0x7B");
    assert_eq!(
        values(&d),
        [("volume".into(), "123.529".into()), ("volume_flow".into(), "0".into())]
    );
    // A damaged data byte fails the full-frame CRC; a compact frame teaches nothing.
    let mut bad = c.clone();
    bad[20] ^= 1;
    let err = decode_with(&bad, &Keys::new(), &formats).unwrap_err();
    assert_eq!(err.failed_check(), Some(Check::Crc), "{err}");
    assert!(learned_format(&c, &Keys::new()).is_none());
    // Another layout of the same meter type has another signature: not found.
    let other: std::collections::HashMap<_, _> = [(
        FormatKey {
            signature: learned.signature ^ 1,
            ..learned
        },
        layout,
    )]
    .into();
    assert!(matches!(
        decode_with(&c, &Keys::new(), &other),
        Err(Error::CompactFormat { .. })
    ));
}
