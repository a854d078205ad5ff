//! SCM+, 16 bytes from the sync `16 A3`, big-endian fields, CRC-16/GENIBUS over bytes 2..15
//! (field order of rtlamr's `scmplus/scmplus.go`; rtl_433's `scmplus.c` checks the same CRC).

use nom::IResult;
use nom::Parser;
use nom::number::complete::{be_u8, be_u16, be_u32};
use serde_json::{Map, Value};

use super::{checks, exact_frame};
use crate::decoded::{Decoded, Reading};
use crate::error::{Error, Result};

/// Frame length in bytes.
pub const LEN: usize = 16;
/// Frame sync.
pub const FRAME_SYNC: u16 = 0x16A3;
/// The only protocol id rtlamr accepts for SCM+.
pub const PROTOCOL_ID: u8 = 0x1E;

/// One SCM+, field by field as rtlamr names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScmPlus {
    /// `FrameSync` (0x16A3).
    pub frame_sync: u16,
    /// `ProtocolID` (0x1E).
    pub protocol_id: u8,
    /// `EndpointType`: the full type byte; the commodity is its low nibble.
    pub endpoint_type: u8,
    /// `EndpointID`.
    pub endpoint_id: u32,
    /// `Consumption`: the 32-bit register.
    pub consumption: u32,
    /// `Tamper`.
    pub tamper: u16,
    /// `PacketCRC`.
    pub packet_crc: u16,
}

fn fields(input: &[u8]) -> IResult<&[u8], ScmPlus> {
    let (input, (frame_sync, protocol_id, endpoint_type, endpoint_id, consumption, tamper, packet_crc)) =
        (be_u16, be_u8, be_u8, be_u32, be_u32, be_u16, be_u16).parse(input)?;
    Ok((
        input,
        ScmPlus {
            frame_sync,
            protocol_id,
            endpoint_type,
            endpoint_id,
            consumption,
            tamper,
            packet_crc,
        },
    ))
}

impl ScmPlus {
    /// Parses and checks one 16-byte SCM+: sync, CRC, then rtlamr's rules (ProtocolID 0x1E,
    /// EndpointID not 0).
    pub fn parse(frame: &[u8]) -> Result<ScmPlus> {
        let frame = exact_frame::<LEN>(frame, "SCM+")?;
        if frame[..2] != FRAME_SYNC.to_be_bytes() {
            return Err(Error::invalid(
                "sync",
                format!("SCM+ must start with 16 A3, got {:02X} {:02X}", frame[0], frame[1]),
            ));
        }
        checks::genibus(&frame[2..], "PacketCRC over bytes 2..15")?;
        let (_, msg) = fields(frame)?;
        if msg.protocol_id != PROTOCOL_ID {
            return Err(Error::invalid(
                "ProtocolID",
                format!("0x{:02X} is not SCM+ (0x1E)", msg.protocol_id),
            ));
        }
        if msg.endpoint_id == 0 {
            return Err(Error::invalid("EndpointID", "EndpointID 0 is not a meter"));
        }
        Ok(msg)
    }

    /// The 16 bytes a meter would send, with the CRC recomputed (FrameSync from the struct).
    pub fn encode(&self) -> [u8; LEN] {
        let mut out = [0u8; LEN];
        out[..2].copy_from_slice(&self.frame_sync.to_be_bytes());
        out[2] = self.protocol_id;
        out[3] = self.endpoint_type;
        out[4..8].copy_from_slice(&self.endpoint_id.to_be_bytes());
        out[8..12].copy_from_slice(&self.consumption.to_be_bytes());
        out[12..14].copy_from_slice(&self.tamper.to_be_bytes());
        let crc = checks::GENIBUS.checksum(&out[2..14]);
        out[14..].copy_from_slice(&crc.to_be_bytes());
        out
    }

    /// rtlamr's JSON `Message` object.
    pub fn rtlamr_fields(&self) -> Map<String, Value> {
        let mut f = Map::new();
        f.insert("FrameSync".into(), self.frame_sync.into());
        f.insert("ProtocolID".into(), self.protocol_id.into());
        f.insert("EndpointType".into(), self.endpoint_type.into());
        f.insert("EndpointID".into(), self.endpoint_id.into());
        f.insert("Consumption".into(), self.consumption.into());
        f.insert("Tamper".into(), self.tamper.into());
        f.insert("PacketCRC".into(), self.packet_crc.into());
        f
    }

    /// The protocol-neutral form. No flag comes from `Tamper`: its bits are undocumented and
    /// normal meters send non-zero values (0x4900 on the verified water meter).
    pub fn to_decoded(&self) -> Decoded {
        Decoded {
            protocol: "scm+".into(),
            meter_id: self.endpoint_id.to_string(),
            fields: self.rtlamr_fields(),
            readings: vec![Reading::new("register", self.consumption.into(), None)],
            flags: Vec::new(),
        }
    }
}

/// Decodes one SCM+ frame (16 bytes from `16 A3`).
pub fn decode(frame: &[u8]) -> Result<Decoded> {
    ScmPlus::parse(frame).map(|m| m.to_decoded())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Check;
    use hex_literal::hex;

    fn p(consumption: u32, packet_crc: u16) -> ScmPlus {
        ScmPlus {
            frame_sync: 0x16A3,
            protocol_id: 0x1E,
            endpoint_type: 0xAB,
            endpoint_id: 68211547,
            consumption,
            tamper: 0x4900,
            packet_crc,
        }
    }

    #[test]
    fn published_vectors_p1_to_p3() {
        let cases = [
            (hex!("16A31EAB0410D35B00001AE3490039BE"), p(6883, 0x39BE)),
            (hex!("16A31EAB0410D35B000019FD4900FA00"), p(6653, 0xFA00)),
            (hex!("16A31EAB0410D35B00001AE64900D24E"), p(6886, 0xD24E)),
        ];
        for (frame, want) in cases {
            assert_eq!(ScmPlus::parse(&frame).unwrap(), want);
            assert_eq!(want.encode(), frame);
        }
    }

    #[test]
    fn p1_fields_are_rtlamr_json() {
        let d = decode(&hex!("16A31EAB0410D35B00001AE3490039BE")).unwrap();
        assert_eq!(d.meter_id, "68211547");
        assert_eq!(
            Value::Object(d.fields),
            serde_json::json!({"FrameSync":5795,"ProtocolID":30,"EndpointType":171,"EndpointID":68211547,"Consumption":6883,"Tamper":18688,"PacketCRC":14782})
        );
        assert_eq!(d.readings[0].value, 6883);
        assert!(d.flags.is_empty());
    }

    #[test]
    fn n3_bad_crc_names_crc_and_the_residue() {
        let err = ScmPlus::parse(&hex!("16A31EAB0410D35B00001AE2490039BE")).unwrap_err();
        assert_eq!(err.failed_check(), Some(Check::Crc));
        assert!(err.to_string().contains("0xB75E"), "{err}");
    }

    #[test]
    fn n4_wrong_protocol_id_is_refused_after_a_good_crc() {
        let frame = hex!("16A31FAB0410D35B00001AE349003ACB");
        assert!(checks::genibus(&frame[2..], "x").is_ok());
        let err = ScmPlus::parse(&frame).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Invalid {
                    field: "ProtocolID",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn zero_endpoint_and_short_frames_are_refused() {
        let zero = ScmPlus {
            endpoint_id: 0,
            ..p(1, 0)
        }
        .encode();
        assert!(matches!(
            ScmPlus::parse(&zero),
            Err(Error::Invalid {
                field: "EndpointID",
                ..
            })
        ));
        assert!(matches!(
            ScmPlus::parse(&zero[..10]),
            Err(Error::Incomplete { needed: 6 })
        ));
    }
}
