//! rtl_433's `Wireless-MBus` lines: the telegram rtl_433 checked, in `data`.
//!
//! rtl_433 verifies the DLL CRCs itself and prints the telegram with them removed, L adjusted
//! to the bytes printed (rtl_433_tests `tests/m_bus/01` and `02`: `data` is L + 1 bytes). The
//! DLL header fields it prints beside (`M`, `id`, `version`, `type`) are checked against the
//! telegram, then the telegram is decoded (decrypted with the meter's key) like any other.
//! rtl_433's own record decoding (`inst_energy_wh_0`, ...) is not used.

use super::fields::Fields;
use crate::decode::Keys;
use crate::decoded::Decoded;
use crate::error::{Error, Result};
use crate::mbus::header::{id_string, manufacturer_code};
use crate::wmbus::{self, dll};

/// L is one byte: at most 256 bytes of telegram, 512 hex digits.
const MAX_HEX: usize = 512;

pub fn telegram(f: &Fields<'_>, keys: &Keys) -> Result<Decoded> {
    let data = f.text("data", MAX_HEX)?;
    let frame = hex::decode(data).map_err(|e| f.error("data", format_args!("is not hex: {e}")))?;
    let Some(&l) = frame.first() else {
        return Err(f.error("data", "is empty"));
    };
    if usize::from(l) + 1 != frame.len() {
        return Err(f.error(
            "data",
            format_args!(
                "has L = {l} but {} bytes (rtl_433 prints L + 1 bytes, CRCs removed)",
                frame.len()
            ),
        ));
    }
    let (h, _) = dll::header(&frame)?;
    let manufacturer = manufacturer_code(h.manufacturer);
    let m = f.text("M", 3)?;
    if m != manufacturer {
        return Err(f.error("M", format_args!("is {m:?} but the telegram says {manufacturer:?}")));
    }
    let id = f.int("id", 0, 99_999_999)?;
    if format!("{id:08}") != id_string(h.id) {
        return Err(f.error("id", format_args!("is {id} but the telegram says {}", id_string(h.id))));
    }
    let version = f.byte("version")?;
    if version != h.version {
        return Err(f.error(
            "version",
            format_args!("is {version} but the telegram says {}", h.version),
        ));
    }
    let device_type = f.byte("type")?;
    if device_type != h.device_type {
        return Err(f.error(
            "type",
            format_args!("is 0x{device_type:02X} but the telegram says 0x{:02X}", h.device_type),
        ));
    }
    wmbus::parse_as(&frame, Some(dll::FrameFormat::Stripped), keys)
        .and_then(|t| t.to_decoded())
        .map_err(|e| match e {
            Error::Invalid { field, detail } => Error::invalid(field, format!("rtl_433 {} line: {detail}", f.model)),
            other => other,
        })
}
