//! Wireless M-Bus (EN 13757-4 link layer, EN 13757-7 / OMS security, EN 13757-3 records).
//!
//! Layers, bottom up, each peeled in turn:
//! - [`dll`]: CRC blocks (format A, B, or already removed) and L C M A;
//! - ELL (CI 0x8C–0x8F): communication control, access number, AES-CTR with payload CRC;
//! - AFL (CI 0x90): message counter and MAC for security mode 7;
//! - TPL (CI 0x78/0x7A/0x72): access number, status, configuration field with the security
//!   mode, AES-CBC mode 5 (IV from the header) or mode 7 (CMAC-derived keys, IV 0);
//! - the records, parsed by [`crate::mbus::record`].
//!
//! A telegram that does not decrypt to `2F 2F` (or whose ELL payload CRC fails after AES-CTR)
//! is refused as [`Check::Decryption`] and never parsed as data.

pub mod crypto;
pub mod dll;

use serde_json::{Map, Value};

use crate::decode::Keys;
use crate::decoded::{Decoded, Reading};
use crate::error::{Check, Error, Result};
use crate::mbus::header::{self, LongHeader};
use crate::mbus::readings::push_records;
use crate::mbus::record::Records;
use dll::Dll;

/// True when the L field is consistent with the length (with or without DLL CRC blocks).
pub fn looks_like(frame: &[u8]) -> bool {
    dll::plausible(frame)
}

/// The AFL fields mode 7 needs (EN 13757-7 §6).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Afl {
    pub fc: u16,
    pub mcl: Option<u8>,
    pub key_info: Option<u16>,
    pub mcr: Option<[u8; 4]>,
    pub mac: Option<Vec<u8>>,
    pub ml: Option<u16>,
}

/// Bytes of the AFL MAC for an MCL authentication type.
fn mac_len(mcl: u8) -> Option<usize> {
    Some(match mcl & 0x0F {
        3 => 2,
        4 => 4,
        5 => 8,
        6 => 12,
        7 => 16,
        8 => 12,
        _ => return None,
    })
}

fn too_short(layer: &'static str) -> Error {
    Error::invalid(layer, "telegram ends inside the header")
}

/// Parses an AFL (input starts after CI 0x90); returns it and the bytes after it.
pub fn afl(input: &[u8]) -> Result<(Afl, &[u8])> {
    let (&len, rest) = input.split_first().ok_or_else(|| too_short("AFL"))?;
    let (mut h, after) = rest.split_at_checked(usize::from(len)).ok_or_else(|| too_short("AFL"))?;
    let mut take = |n: usize| -> Result<&[u8]> {
        let (a, b) = h.split_at_checked(n).ok_or_else(|| too_short("AFL"))?;
        h = b;
        Ok(a)
    };
    let fc = u16::from_le_bytes(take(2)?.try_into().unwrap_or_default());
    if fc & 0x4000 != 0 {
        return Err(Error::Unsupported("fragmented AFL messages".into()));
    }
    let mut a = Afl { fc, ..Afl::default() };
    if fc & 0x2000 != 0 {
        a.mcl = Some(take(1)?[0]);
    }
    if fc & 0x0200 != 0 {
        a.key_info = Some(u16::from_le_bytes(take(2)?.try_into().unwrap_or_default()));
    }
    if fc & 0x0800 != 0 {
        a.mcr = Some(take(4)?.try_into().unwrap_or_default());
    }
    if fc & 0x0400 != 0 {
        let n = a.mcl.and_then(mac_len).ok_or_else(|| Error::invalid("AFL", "MAC present without a known MCL"))?;
        a.mac = Some(take(n)?.to_vec());
    }
    if fc & 0x1000 != 0 {
        a.ml = Some(u16::from_le_bytes(take(2)?.try_into().unwrap_or_default()));
    }
    Ok((a, after))
}

/// Security context gathered on the way up the layers.
struct Context<'k> {
    dll: Dll,
    keys: &'k Keys,
    fields: Map<String, Value>,
}

impl Context<'_> {
    fn key(&self, id: &str, mode: &str) -> Result<[u8; 16]> {
        let dll_id = header::id_string(self.dll.id);
        self.keys.get(id).or_else(|| self.keys.get(&dll_id)).copied().ok_or_else(|| {
            Error::check(Check::Decryption, format!("no key for meter {id} ({mode} encrypted telegram)"))
        })
    }
}

/// Peels an ELL (input starts at its CI); returns the bytes after it, decrypted if need be.
fn ell(ctx: &mut Context<'_>, input: &[u8]) -> Result<Vec<u8>> {
    let ci = input[0];
    let header_len = match ci {
        0x8C => 2,
        0x8D => 6,
        0x8E => 10,
        0x8F => 14,
        _ => return Err(Error::Unsupported(format!("ELL CI 0x{ci:02X}"))),
    };
    let h = input.get(1..1 + header_len).ok_or_else(|| too_short("ELL"))?;
    let (cc, acc) = (h[0], h[1]);
    ctx.fields.insert("access_no".into(), Value::from(acc));
    let rest = &input[1 + header_len..];
    if ci == 0x8C || ci == 0x8E {
        return Ok(rest.to_vec());
    }
    let sn: [u8; 4] = h[header_len - 4..].try_into().unwrap_or_default();
    let security = u32::from_le_bytes(sn) >> 29;
    let mut payload = rest.to_vec();
    match security {
        0 => {}
        1 => {
            let id = header::id_string(ctx.dll.id);
            let key = ctx.key(&id, "ELL AES-CTR")?;
            let mut counter = [0u8; 16];
            counter[..8].copy_from_slice(&ctx.dll.m_a());
            counter[8] = cc & !0x12; // hop count and repeated-access bits are not part of it
            counter[9..13].copy_from_slice(&sn);
            crypto::ctr_apply(&key, &counter, &mut payload);
        }
        other => return Err(Error::Unsupported(format!("ELL security mode {other}"))),
    }
    if payload.len() < 2 {
        return Err(too_short("ELL"));
    }
    let sent = u16::from_le_bytes([payload[0], payload[1]]);
    let computed = dll::CRC.checksum(&payload[2..]);
    if sent != computed {
        return Err(if security == 1 {
            Error::check(Check::Decryption, "ELL payload CRC fails after AES-CTR (wrong key?)")
        } else {
            Error::check(Check::Crc, format!("ELL payload CRC {sent:04X}, computed {computed:04X}"))
        });
    }
    payload.drain(..2);
    Ok(payload)
}

/// Decrypts a TPL payload in place per security mode; `tpl` runs from the TPL CI to the end
/// (what the mode-7 MAC covers) and `enc_at` is where the encrypted blocks start in it.
#[allow(clippy::too_many_arguments)]
fn decrypt_tpl(
    ctx: &Context<'_>,
    mode: u8,
    blocks: usize,
    tpl: &mut [u8],
    enc_at: usize,
    m_a: [u8; 8],
    acc: u8,
    afl: Option<&Afl>,
) -> Result<()> {
    let id = header::id_string([m_a[2], m_a[3], m_a[4], m_a[5]]);
    let avail = tpl.len() - enc_at;
    let len = if blocks == 0 { avail - avail % 16 } else { 16 * blocks };
    if len > avail || len == 0 {
        return Err(Error::invalid("TPL", format!("{len} encrypted bytes announced, {avail} present")));
    }
    match mode {
        5 => {
            let key = ctx.key(&id, "mode 5")?;
            let mut iv = [acc; 16];
            iv[..8].copy_from_slice(&m_a);
            crypto::cbc_decrypt(&key, &iv, &mut tpl[enc_at..enc_at + len]);
        }
        7 => {
            let key = ctx.key(&id, "mode 7")?;
            let afl = afl.ok_or_else(|| Error::invalid("AFL", "mode 7 needs an AFL"))?;
            let (Some(mcl), Some(mcr), Some(mac)) = (afl.mcl, afl.mcr, afl.mac.as_deref()) else {
                return Err(Error::invalid("AFL", "mode 7 needs the message counter and MAC"));
            };
            let (kenc, kmac) = mode7_keys(&key, mcr, [m_a[2], m_a[3], m_a[4], m_a[5]]);
            let computed = crypto::cmac(&kmac, &[&[mcl], &mcr, tpl]);
            if computed[..mac.len()] != *mac {
                return Err(Error::check(Check::Mac, "AFL MAC does not verify (wrong key or altered telegram)"));
            }
            crypto::cbc_decrypt(&kenc, &[0; 16], &mut tpl[enc_at..enc_at + len]);
        }
        _ => return Err(Error::Unsupported(format!("TPL security mode {mode}"))),
    }
    if tpl[enc_at..enc_at + 2] != [0x2F, 0x2F] {
        return Err(Error::check(
            Check::Decryption,
            format!("decrypted block starts {:02X} {:02X}, not 2F 2F (wrong key?)", tpl[enc_at], tpl[enc_at + 1]),
        ));
    }
    Ok(())
}

/// Mode 7 ephemeral keys (KDF-A): `CMAC(K, 00|01 ‖ MCR ‖ ID ‖ 07×7)`.
pub fn mode7_keys(key: &[u8; 16], mcr: [u8; 4], id: [u8; 4]) -> ([u8; 16], [u8; 16]) {
    let mut input = [0x07u8; 16];
    input[1..5].copy_from_slice(&mcr);
    input[5..9].copy_from_slice(&id);
    input[0] = 0x00;
    let kenc = crypto::cmac(key, &[&input]);
    input[0] = 0x01;
    let kmac = crypto::cmac(key, &[&input]);
    (kenc, kmac)
}

/// Decodes one telegram (from the L field, with or without DLL CRCs).
pub fn decode(frame: &[u8], keys: &Keys) -> Result<Decoded> {
    let (telegram, format) = dll::strip(frame)?;
    let (dll, rest) = dll::header(&telegram)?;
    let mut ctx = Context { dll, keys, fields: Map::new() };
    ctx.fields.insert("c".into(), Value::String(format!("0x{:02X}", dll.c)));
    ctx.fields.insert("frame_format".into(), Value::from(format.name()));
    let mut cur = rest.to_vec();
    let mut afl_layer = None;
    loop {
        let &ci = cur.first().ok_or_else(|| Error::invalid("CI", "telegram ends after the link layer"))?;
        match ci {
            0x8C..=0x8F => cur = ell(&mut ctx, &cur)?,
            0x90 => {
                let (a, after) = afl(&cur[1..])?;
                cur = after.to_vec();
                afl_layer = Some(a);
            }
            _ => break,
        }
    }
    tpl(&mut ctx, &mut cur, afl_layer.as_ref())
}

fn tpl(ctx: &mut Context<'_>, cur: &mut [u8], afl: Option<&Afl>) -> Result<Decoded> {
    let ci = cur[0];
    let dll = ctx.dll;
    let mut readings = Vec::new();
    let mut flags = Vec::new();
    ctx.fields.insert("ci".into(), Value::String(format!("0x{ci:02X}")));
    let dll_header = LongHeader {
        id: dll.id,
        manufacturer: dll.manufacturer,
        version: dll.version,
        medium: dll.device_type,
        access_no: 0,
        status: 0,
        signature: 0,
    };
    let (h, records_at, has_status) = match ci {
        0x78 => (dll_header, 1, false),
        0x7A => {
            let [_, acc, status, c0, c1, ..] = *cur else { return Err(too_short("TPL")) };
            (LongHeader { access_no: acc, status, signature: u16::from_le_bytes([c0, c1]), ..dll_header }, 5, true)
        }
        0x72 => {
            let (_, h) = header::long_header(&cur[1..]).map_err(|_| too_short("TPL"))?;
            (h, 13, true)
        }
        0x73 | 0x79 | 0x7B => {
            return Err(Error::Unsupported(format!(
                "compact frame (CI 0x{ci:02X}): its format must first be learned from a full telegram"
            )));
        }
        0xA0..=0xB7 => {
            header_fields(&mut ctx.fields, &dll_header, None);
            readings.push(Reading::new("manufacturer_data", Value::String(hex::encode_upper(&cur[1..])), None));
            return Ok(finish(ctx, header::id_string(dll.id), readings, flags));
        }
        other => return Err(Error::Unsupported(format!("CI 0x{other:02X} after the link layer"))),
    };
    let mut records_at = records_at;
    if has_status {
        let cfg = h.signature;
        let mode = ((cfg >> 8) & 0x1F) as u8;
        let blocks = usize::from((cfg >> 4) as u8 & 0x0F);
        ctx.fields.insert("security_mode".into(), Value::from(mode));
        if mode == 7 {
            records_at += 1; // configuration field extension
            let ext = *cur.get(records_at - 1).ok_or_else(|| too_short("TPL"))?;
            if (ext >> 4) & 0x03 != 1 {
                return Err(Error::Unsupported(format!("mode 7 key derivation {}", (ext >> 4) & 0x03)));
            }
        }
        if records_at > cur.len() {
            return Err(too_short("TPL"));
        }
        if mode != 0 {
            let m_a = {
                let [m0, m1] = h.manufacturer.to_le_bytes();
                let [a, b, c, d] = h.id;
                [m0, m1, a, b, c, d, h.version, h.medium]
            };
            decrypt_tpl(ctx, mode, blocks, cur, records_at, m_a, h.access_no, afl)?;
        }
    }
    header_fields(&mut ctx.fields, &h, has_status.then_some((h.access_no, h.status)));
    if h.id != dll.id || h.manufacturer != dll.manufacturer {
        ctx.fields.insert("dll_id".into(), Value::String(header::id_string(dll.id)));
    }
    if has_status {
        header::status_flags(h.status, &mut flags);
    }
    push_records(Records::new(&cur[records_at..]), &mut readings, &mut ctx.fields, &mut flags)?;
    Ok(finish(ctx, header::id_string(h.id), readings, flags))
}

fn header_fields(fields: &mut Map<String, Value>, h: &LongHeader, acc_status: Option<(u8, u8)>) {
    fields.insert("manufacturer".into(), Value::String(header::manufacturer_code(h.manufacturer)));
    fields.insert("version".into(), Value::from(h.version));
    fields.insert("medium".into(), Value::String(header::medium_name(h.medium)));
    if let Some((acc, status)) = acc_status {
        fields.insert("access_no".into(), Value::from(acc));
        fields.insert("status".into(), Value::from(status));
    }
}

fn finish(ctx: &mut Context<'_>, meter_id: String, readings: Vec<Reading>, flags: Vec<String>) -> Decoded {
    Decoded { protocol: "wmbus".into(), meter_id, fields: std::mem::take(&mut ctx.fields), readings, flags }
}

#[cfg(test)]
mod tests;
