//! The integrity checks of the ERT messages: SCM's "BCH" code and the CRC-16 of SCM+/IDM/NetIDM.
//!
//! Both are plain MSB-first CRC-16 engines (rtlamr's `crc/crc.go` runs them over the data with its
//! CRC and compares the residue; rtl_433's `ert_idm.c` and `scmplus.c` agree), so they come from
//! the `crc` crate: SCM's code as a custom [`Algorithm`], the others as the catalogue's
//! CRC-16/GENIBUS.
//! R900's Reed-Solomon code lives in [`super::rs`].

use crc::{Algorithm, CRC_16_GENIBUS, Crc, Table};

use crate::error::{Check, Error, Result};

/// SCM's code, which rtlamr calls BCH: poly 0x6F63, init 0, no reflection, no xorout. Because
/// nothing is xored out, running it over data ‖ checksum leaves 0 on a good frame.
pub const SCM_BCH_ALGORITHM: Algorithm<u16> = Algorithm {
    width: 16,
    poly: 0x6F63,
    init: 0x0000,
    refin: false,
    refout: false,
    xorout: 0x0000,
    check: 0xBDF4,
    residue: 0x0000,
};

/// SCM's BCH engine (table-driven).
pub static SCM_BCH: Crc<u16> = Crc::<u16>::new(&SCM_BCH_ALGORITHM);

/// CRC-16/GENIBUS (poly 0x1021, init 0xFFFF, xorout 0xFFFF), transmitted big-endian by SCM+ and
/// IDM. rtlamr states it as "residue 0x1D0F", which is the same check. Slice-by-16 tables,
/// because IDM runs it over 86 bytes.
pub static GENIBUS: Crc<u16, Table<16>> = Crc::<u16, Table<16>>::new(&CRC_16_GENIBUS);

/// rtlamr's residue for a good GENIBUS-protected block (register before the final xor).
pub const GENIBUS_RESIDUE: u16 = 0x1D0F;

/// Checks an SCM body (bytes 2..11, checksum included): the remainder must be 0.
pub fn scm_bch(body: &[u8]) -> Result<()> {
    match SCM_BCH.checksum(body) {
        0 => Ok(()),
        rem => Err(Error::check(
            Check::Bch,
            format!("remainder 0x{rem:04X} over bytes 2..11, expected 0"),
        )),
    }
}

/// The rtlamr residue of a GENIBUS-protected block that ends with its big-endian CRC.
pub fn genibus_residue(block: &[u8]) -> u16 {
    GENIBUS.checksum(block) ^ CRC_16_GENIBUS.xorout
}

/// Checks a GENIBUS-protected block ending with its CRC; `what` names the block in the error.
pub fn genibus(block: &[u8], what: &str) -> Result<()> {
    match genibus_residue(block) {
        GENIBUS_RESIDUE => Ok(()),
        residue => Err(Error::check(
            Check::Crc,
            format!("{what}: residue 0x{residue:04X}, expected 0x{GENIBUS_RESIDUE:04X}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_check_values() {
        // The catalogue check values over "123456789" (CRC RevEng's catalogue gives 0xD64E for
        // CRC-16/GENIBUS; 0xBDF4 is the same engine with SCM's polynomial, init 0).
        assert_eq!(SCM_BCH.checksum(b"123456789"), 0xBDF4);
        assert_eq!(GENIBUS.checksum(b"123456789"), 0xD64E);
    }

    #[test]
    fn idm_serial_crcs() {
        assert_eq!(GENIBUS.checksum(&[0x00, 0xAC, 0x17, 0x1D]), 0xEABA);
        assert_eq!(GENIBUS.checksum(&[0x5C, 0x69, 0x51, 0xB3]), 0xEEFA);
        assert_eq!(GENIBUS.checksum(&[0x03, 0x91, 0xF6, 0xF5]), 0xA937);
    }

    #[test]
    fn residue_form_equals_comparing_the_crc() {
        let mut block = b"123456789".to_vec();
        block.extend_from_slice(&0xD64Eu16.to_be_bytes());
        assert_eq!(genibus_residue(&block), GENIBUS_RESIDUE);
        assert!(genibus(&block, "test").is_ok());
        block[0] ^= 1;
        assert_eq!(genibus(&block, "test").unwrap_err().failed_check(), Some(Check::Crc));
    }
}
