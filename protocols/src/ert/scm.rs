//! SCM, the Standard Consumption Message: 96 bits from the sync `F9 53`, protected by a BCH
//! code (poly 0x6F63) over bytes 2..11 (bit layout of rtlamr's `scm/scm.go`;
//! byte form of rtl_433's `ert_scm.c`).

use nom::IResult;
use nom::bits::complete::take;
use serde_json::{Map, Value};

use super::{BitInput, checks, exact_frame, nom_bits};
use crate::decoded::{Decoded, Reading};
use crate::error::{Error, Result};

/// Frame length in bytes, sync included.
pub const LEN: usize = 12;
/// The first 16 of the 21 sync bits; the other 5 are the top of byte 2 and are zero.
pub const SYNC: [u8; 2] = [0xF9, 0x53];

/// One SCM, field by field as rtlamr names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Scm {
    /// `ID`: 26 bits (2 high bits in byte 2, 24 low bits in bytes 7..9).
    pub id: u32,
    /// `Type`: the 4-bit ERT type (commodity).
    pub ert_type: u8,
    /// `TamperPhy`: 2-bit physical tamper counter.
    pub tamper_phy: u8,
    /// `TamperEnc`: 2-bit encoder tamper counter.
    pub tamper_enc: u8,
    /// `Consumption`: the 24-bit register.
    pub consumption: u32,
    /// `ChecksumVal`: the transmitted BCH checksum.
    pub checksum: u16,
}

fn body(input: BitInput<'_>) -> IResult<BitInput<'_>, Scm> {
    let (input, _sync_tail): (_, u8) = take(5usize)(input)?;
    let (input, id_high): (_, u32) = take(2usize)(input)?;
    let (input, _reserved): (_, u8) = take(1usize)(input)?;
    let (input, tamper_phy) = take(2usize)(input)?;
    let (input, ert_type) = take(4usize)(input)?;
    let (input, tamper_enc) = take(2usize)(input)?;
    let (input, consumption) = take(24usize)(input)?;
    let (input, id_low): (_, u32) = take(24usize)(input)?;
    let (input, checksum) = take(16usize)(input)?;
    let id = id_high << 24 | id_low;
    Ok((
        input,
        Scm {
            id,
            ert_type,
            tamper_phy,
            tamper_enc,
            consumption,
            checksum,
        },
    ))
}

impl Scm {
    /// Parses and checks one 12-byte SCM: sync, BCH, then the rtlamr rule that ID 0 (the all-zero
    /// codeword, which passes the BCH) is not a meter.
    pub fn parse(frame: &[u8]) -> Result<Scm> {
        let frame = exact_frame::<LEN>(frame, "SCM")?;
        if frame[..2] != SYNC || frame[2] & 0xF8 != 0 {
            return Err(Error::invalid(
                "sync",
                format!(
                    "SCM must start with F9 53 + 5 zero bits, got {:02X} {:02X} {:02X}",
                    frame[0], frame[1], frame[2]
                ),
            ));
        }
        checks::scm_bch(&frame[2..])?;
        let scm = nom_bits(body, &frame[2..])?;
        if scm.id == 0 {
            return Err(Error::invalid("ID", "ID 0 is the all-zero codeword, not a meter"));
        }
        Ok(scm)
    }

    /// The 12 bytes a meter would send for these fields (reserved bit 23 set to `reserved`), with
    /// the checksum recomputed. Fields wider than their slot are truncated.
    pub fn encode_with(&self, reserved: bool) -> [u8; LEN] {
        let mut out = [0u8; LEN];
        out[..2].copy_from_slice(&SYNC);
        out[2] = ((self.id >> 24) as u8 & 0x03) << 1 | reserved as u8;
        out[3] = (self.tamper_phy & 3) << 6 | (self.ert_type & 0x0F) << 2 | (self.tamper_enc & 3);
        out[4..7].copy_from_slice(&self.consumption.to_be_bytes()[1..]);
        out[7..10].copy_from_slice(&self.id.to_be_bytes()[1..]);
        let crc = checks::SCM_BCH.checksum(&out[2..10]);
        out[10..].copy_from_slice(&crc.to_be_bytes());
        out
    }

    /// [`Scm::encode_with`] with the reserved bit 0, as every verified capture has it.
    pub fn encode(&self) -> [u8; LEN] {
        self.encode_with(false)
    }

    /// rtlamr's JSON `Message` object for this SCM.
    pub fn rtlamr_fields(&self) -> Map<String, Value> {
        let mut f = Map::new();
        f.insert("ID".into(), self.id.into());
        f.insert("Type".into(), self.ert_type.into());
        f.insert("TamperPhy".into(), self.tamper_phy.into());
        f.insert("TamperEnc".into(), self.tamper_enc.into());
        f.insert("Consumption".into(), self.consumption.into());
        f.insert("ChecksumVal".into(), self.checksum.into());
        f
    }

    /// The protocol-neutral form: the register reading, and `tamper` when either tamper counter
    /// is non-zero.
    pub fn to_decoded(&self) -> Decoded {
        let mut flags = Vec::new();
        if self.tamper_phy != 0 || self.tamper_enc != 0 {
            flags.push("tamper".to_owned());
        }
        Decoded {
            protocol: "scm".into(),
            meter_id: self.id.to_string(),
            fields: self.rtlamr_fields(),
            readings: vec![Reading::new("register", self.consumption.into(), None)],
            flags,
        }
    }
}

/// Decodes one SCM frame (12 bytes from `F9 53`).
pub fn decode(frame: &[u8]) -> Result<Decoded> {
    Scm::parse(frame).map(|s| s.to_decoded())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Check;
    use hex_literal::hex;

    fn scm(id: u32, ert_type: u8, tamper_phy: u8, tamper_enc: u8, consumption: u32, checksum: u16) -> Scm {
        Scm {
            id,
            ert_type,
            tamper_phy,
            tamper_enc,
            consumption,
            checksum,
        }
    }

    #[test]
    fn published_vectors_s1_to_s5() {
        let cases = [
            (
                hex!("F95306F008951840EA0C101A"),
                scm(54585868, 12, 3, 0, 562456, 0x101A),
            ),
            (
                hex!("F95306B00B17EA5BEBC9DBFC"),
                scm(56355785, 12, 2, 0, 727018, 0xDBFC),
            ),
            (hex!("F95300152A7986099C5811C5"), scm(629848, 5, 0, 1, 2783622, 0x11C5)),
            (hex!("F95300152A7987099C58F327"), scm(629848, 5, 0, 1, 2783623, 0xF327)),
            (hex!("F95300152A7988099C58F515"), scm(629848, 5, 0, 1, 2783624, 0xF515)),
        ];
        for (frame, want) in cases {
            assert_eq!(Scm::parse(&frame).unwrap(), want);
            assert_eq!(want.encode(), frame, "re-encoding {want:?}");
        }
    }

    #[test]
    fn s1_decodes_to_rtlamr_json_values() {
        let d = decode(&hex!("F95306F008951840EA0C101A")).unwrap();
        assert_eq!(d.protocol, "scm");
        assert_eq!(d.meter_id, "54585868");
        assert_eq!(
            Value::Object(d.fields),
            serde_json::json!({"ID":54585868,"Type":12,"TamperPhy":3,"TamperEnc":0,"Consumption":562456,"ChecksumVal":4122})
        );
        assert_eq!(d.readings, vec![Reading::new("register", 562456.into(), None)]);
        assert_eq!(d.flags, vec!["tamper"]);
        let s3 = decode(&hex!("F95300152A7986099C5811C5")).unwrap();
        assert_eq!(s3.flags, vec!["tamper"], "TamperEnc 1");
    }

    #[test]
    fn n1_bad_check_names_bch_and_the_remainder() {
        let err = Scm::parse(&hex!("F95306F0086A1840EA0C101A")).unwrap_err();
        assert_eq!(err.failed_check(), Some(Check::Bch));
        assert!(err.to_string().contains("0x2C0D"), "{err}");
    }

    #[test]
    fn n2_zero_codeword_passes_bch_but_is_refused() {
        let frame = hex!("F95300000000000000000000");
        assert!(checks::scm_bch(&frame[2..]).is_ok());
        let err = Scm::parse(&frame).unwrap_err();
        assert!(matches!(err, Error::Invalid { field: "ID", .. }), "{err:?}");
    }

    #[test]
    fn length_and_sync_are_checked() {
        let s1 = hex!("F95306F008951840EA0C101A");
        assert!(matches!(Scm::parse(&s1[..11]), Err(Error::Incomplete { needed: 1 })));
        let mut long = s1.to_vec();
        long.push(0);
        assert!(matches!(Scm::parse(&long), Err(Error::Invalid { field: "length", .. })));
        let mut bad_sync = s1;
        bad_sync[2] |= 0x80;
        assert!(matches!(
            Scm::parse(&bad_sync),
            Err(Error::Invalid { field: "sync", .. })
        ));
    }

    #[test]
    fn reserved_bit_is_covered_by_the_check_but_not_a_field() {
        let s1 = scm(54585868, 12, 3, 0, 562456, 0);
        let other = s1.encode_with(true);
        let parsed = Scm::parse(&other).unwrap();
        assert_eq!(parsed.id, 54585868);
        assert_ne!(parsed.checksum, 0x101A);
    }

    #[test]
    fn id_uses_all_26_bits() {
        let s = scm((1 << 26) - 1, 15, 3, 3, (1 << 24) - 1, 0);
        let parsed = Scm::parse(&s.encode()).unwrap();
        assert_eq!(parsed.id, (1 << 26) - 1);
        assert_eq!(parsed.consumption, (1 << 24) - 1);
        assert_eq!((parsed.ert_type, parsed.tamper_phy, parsed.tamper_enc), (15, 3, 3));
    }
}
