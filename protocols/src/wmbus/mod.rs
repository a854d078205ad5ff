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

pub mod compact;
pub mod crypto;
pub mod dll;

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::decode::Keys;
use crate::decoded::{Decoded, Reading};
use crate::error::{Check, Error, KeyError, KeyProblem, Result};
use crate::mbus::header::{self, LongHeader};
use crate::mbus::readings::push_records;
use crate::mbus::record::Records;
use compact::{FormatKey, Formats, NoFormats};
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
    let (mut h, after) = rest
        .split_at_checked(usize::from(len))
        .ok_or_else(|| too_short("AFL"))?;
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
        let n = a
            .mcl
            .and_then(mac_len)
            .ok_or_else(|| Error::invalid("AFL", "MAC present without a known MCL"))?;
        a.mac = Some(take(n)?.to_vec());
    }
    if fc & 0x1000 != 0 {
        a.ml = Some(u16::from_le_bytes(take(2)?.try_into().unwrap_or_default()));
    }
    Ok((a, after))
}

/// Finds the key for a meter: by the TPL identity first, then by the DLL identity.
fn key(keys: &Keys, id: [u8; 4], dll_id: [u8; 4], mode: &str) -> Result<[u8; 16]> {
    // Looked up per telegram: the id text is built on the stack.
    let lookup = |id: [u8; 4]| {
        let digits = header::id_digits(id);
        std::str::from_utf8(&digits).ok().and_then(|s| keys.get(s)).copied()
    };
    if let Some(k) = lookup(id) {
        return Ok(k);
    }
    if id != dll_id
        && let Some(k) = lookup(dll_id)
    {
        return Ok(k);
    }
    Err(Error::Key(KeyError {
        meter: header::id_string(id),
        problem: KeyProblem::Missing,
        check: Check::Decryption,
        detail: mode.to_owned(),
    }))
}

/// A configured key that did not open the telegram.
fn refused(id: [u8; 4], check: Check, detail: String) -> Error {
    Error::Key(KeyError {
        meter: header::id_string(id),
        problem: KeyProblem::Refused,
        check,
        detail,
    })
}

/// Peels an ELL (input starts at its CI); returns its access number and the bytes after it,
/// decrypted if need be.
fn ell<'a>(dll: &Dll, keys: &Keys, input: Cow<'a, [u8]>) -> Result<(u8, Cow<'a, [u8]>)> {
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
    if ci == 0x8C || ci == 0x8E {
        return Ok((acc, cut(input, 1 + header_len)));
    }
    let sn: [u8; 4] = h[header_len - 4..].try_into().unwrap_or_default();
    let security = u32::from_le_bytes(sn) >> 29;
    let mut payload = input[1 + header_len..].to_vec();
    match security {
        0 => {}
        1 => {
            let key = key(keys, dll.id, dll.id, "ELL AES-CTR")?;
            let mut counter = [0u8; 16];
            counter[..8].copy_from_slice(&dll.m_a());
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
            refused(
                dll.id,
                Check::Decryption,
                format!("ELL payload CRC fails after AES-CTR (sent {sent:04X}, decrypted data gives {computed:04X})"),
            )
        } else {
            Error::check(
                Check::Crc,
                format!("ELL payload CRC {sent:04X}, computed {computed:04X}"),
            )
        });
    }
    payload.drain(..2);
    Ok((acc, Cow::Owned(payload)))
}

/// Drops the first `n` bytes, borrowing when possible.
fn cut(input: Cow<'_, [u8]>, n: usize) -> Cow<'_, [u8]> {
    match input {
        Cow::Borrowed(b) => Cow::Borrowed(&b[n..]),
        Cow::Owned(mut v) => {
            v.drain(..n);
            Cow::Owned(v)
        }
    }
}

/// Decrypts the TPL payload in place per security mode; `tpl` runs from the TPL CI to the end
/// (what the mode-7 MAC covers) and `enc_at` is where the encrypted blocks start in it.
#[allow(clippy::too_many_arguments)]
fn decrypt_tpl(
    keys: &Keys,
    dll: &Dll,
    h: &LongHeader,
    mode: u8,
    blocks: usize,
    tpl: &mut [u8],
    enc_at: usize,
    afl: Option<&Afl>,
) -> Result<()> {
    let avail = tpl.len() - enc_at;
    let len = if blocks == 0 { avail - avail % 16 } else { 16 * blocks };
    if len > avail || len == 0 {
        return Err(Error::invalid(
            "TPL",
            format!("{len} encrypted bytes announced, {avail} present"),
        ));
    }
    match mode {
        5 => {
            let key = key(keys, h.id, dll.id, "mode 5")?;
            let mut iv = [h.access_no; 16];
            iv[..8].copy_from_slice(&m_a(h));
            crypto::cbc_decrypt(&key, &iv, &mut tpl[enc_at..enc_at + len]);
        }
        7 => {
            let key = key(keys, h.id, dll.id, "mode 7")?;
            let afl = afl.ok_or_else(|| Error::invalid("AFL", "mode 7 needs an AFL"))?;
            let (Some(mcl), Some(mcr), Some(mac)) = (afl.mcl, afl.mcr, afl.mac.as_deref()) else {
                return Err(Error::invalid("AFL", "mode 7 needs the message counter and MAC"));
            };
            let (kenc, kmac) = mode7_keys(&key, mcr, h.id);
            let computed = crypto::cmac(&kmac, &[&[mcl], &mcr, tpl]);
            if computed[..mac.len()] != *mac {
                return Err(refused(
                    h.id,
                    Check::Mac,
                    "the AFL MAC does not verify (mode 7; or the telegram was altered)".into(),
                ));
            }
            crypto::cbc_decrypt(&kenc, &[0; 16], &mut tpl[enc_at..enc_at + len]);
        }
        _ => return Err(Error::Unsupported(format!("TPL security mode {mode}"))),
    }
    // EN 13757-7 §9.2: the plaintext starts with the verification bytes 2F 2F. Meters that
    // leave them out (wmbusmeters #2042/#2062) cannot be told from a wrong key; the reason says
    // what came out so the operator can tell.
    if tpl[enc_at..enc_at + 2] != [0x2F, 0x2F] {
        return Err(refused(
            h.id,
            Check::Decryption,
            format!(
                "decrypted data does not start with 2F 2F (mode {mode}; it starts {:02X} {:02X})",
                tpl[enc_at],
                tpl[enc_at + 1]
            ),
        ));
    }
    Ok(())
}

/// M ‖ A of a header as sent: the first half of the mode 5 IV.
fn m_a(h: &LongHeader) -> [u8; 8] {
    let [m0, m1] = h.manufacturer.to_le_bytes();
    let [a, b, c, d] = h.id;
    [m0, m1, a, b, c, d, h.version, h.medium]
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

/// A telegram peeled down to its application layer (decrypted), records not yet walked.
#[derive(Debug, Clone)]
pub struct Telegram<'a> {
    pub format: dll::FrameFormat,
    pub dll: Dll,
    /// ELL access number, when there is an ELL.
    pub ell_access_no: Option<u8>,
    pub afl: Option<Afl>,
    /// The TPL CI (0x78, 0x7A, 0x72, or 0xA0–0xB7 manufacturer specific).
    pub ci: u8,
    /// The meter's identity and TPL fields: from the long header, else the DLL; access number,
    /// status and configuration from the short/long header (zero without one).
    pub header: LongHeader,
    /// False for CI 0x78 and manufacturer CIs (no access number, status or configuration).
    pub has_tpl_header: bool,
    /// From the TPL header, when it has one.
    pub security_mode: Option<u8>,
    /// A compact frame's format signature and full-frame CRC.
    pub compact: Option<(u16, u16)>,
    app: Cow<'a, [u8]>,
    records_at: usize,
}

impl Telegram<'_> {
    /// The records (after decryption).
    pub fn records(&self) -> Records<'_> {
        Records::new(&self.app[self.records_at..])
    }

    /// The application data after the TPL header, decrypted (records or manufacturer data).
    pub fn application_data(&self) -> &[u8] {
        &self.app[self.records_at..]
    }

    /// The 8-digit meter id (TPL identity when a long header names one, else the DLL's).
    pub fn meter_id(&self) -> String {
        header::id_string(self.header.id)
    }

    /// The meter type and signature a compact frame's layout is looked up by, or that a
    /// full frame's layout is learned under.
    fn format_key(&self, signature: u16) -> FormatKey {
        FormatKey {
            manufacturer: self.header.manufacturer,
            version: self.header.version,
            device_type: self.header.medium,
            signature,
        }
    }

    /// A full frame's layout to learn for the compact frames of its meter type (none for a
    /// compact frame or a record area with no compact form).
    pub fn learned_format(&self) -> Option<(FormatKey, Vec<u8>)> {
        if self.compact.is_some() || !matches!(self.ci, 0x78 | 0x7A | 0x72) {
            return None;
        }
        let layout = compact::layout_of(self.application_data())?;
        Some((self.format_key(compact::signature(&layout)), layout))
    }

    /// The `meterd decode` shape.
    pub fn to_decoded(&self) -> Result<Decoded> {
        self.to_decoded_with(&NoFormats)
    }

    /// The `meterd decode` shape, compact frames rebuilt from the layouts in `formats`.
    pub fn to_decoded_with(&self, formats: &dyn Formats) -> Result<Decoded> {
        let rebuilt;
        let records = match self.compact {
            None => self.records(),
            Some((signature, full_crc)) => {
                let key = self.format_key(signature);
                let layout = formats.layout(&key).ok_or_else(|| Error::CompactFormat {
                    meter: self.meter_id(),
                    key,
                })?;
                rebuilt = compact::expand(&layout, self.application_data(), full_crc)?;
                Records::new(&rebuilt)
            }
        };
        let mut fields = Map::new();
        let mut readings = Vec::with_capacity(8);
        let mut flags = Vec::new();
        let h = &self.header;
        fields.insert("c".into(), Value::String(header::hex_byte(self.dll.c)));
        fields.insert("frame_format".into(), Value::from(self.format.name()));
        fields.insert("ci".into(), Value::String(header::hex_byte(self.ci)));
        fields.insert(
            "manufacturer".into(),
            Value::String(header::manufacturer_code(h.manufacturer)),
        );
        fields.insert("version".into(), Value::from(h.version));
        fields.insert("medium".into(), Value::String(header::medium_name(h.medium)));
        if self.has_tpl_header {
            fields.insert("access_no".into(), Value::from(h.access_no));
            fields.insert("status".into(), Value::from(h.status));
            header::status_flags(h.status, &mut flags);
        } else if let Some(acc) = self.ell_access_no {
            fields.insert("access_no".into(), Value::from(acc));
        }
        if let Some(mode) = self.security_mode {
            fields.insert("security_mode".into(), Value::from(mode));
        }
        if let Some((signature, _)) = self.compact {
            fields.insert("format_signature".into(), Value::String(format!("{signature:04X}")));
        }
        if h.id != self.dll.id || h.manufacturer != self.dll.manufacturer {
            fields.insert("dll_id".into(), Value::String(header::id_string(self.dll.id)));
        }
        if (0xA0..=0xB7).contains(&self.ci) {
            let data = Value::String(hex::encode_upper(self.application_data()));
            readings.push(Reading::new("manufacturer_data", data, None));
        } else if self.security_mode.is_some_and(|m| m != 0) {
            // The key is proven right (2F 2F, MAC or payload CRC verified), so the bytes are
            // the meter's own: records the EN 13757-3 walk cannot read are the manufacturer's
            // content, kept as bytes after the records read so far, not a refusal.
            let mut records = records;
            if let Err(e) = push_records(&mut records, &mut readings, &mut fields, &mut flags) {
                let rest = records.remaining();
                readings.push(Reading::new(
                    "manufacturer_data",
                    Value::String(hex::encode_upper(rest)),
                    None,
                ));
                fields.insert("manufacturer_content".into(), Value::String(e.to_string()));
                flags.push("manufacturer_content".into());
            }
        } else {
            push_records(records, &mut readings, &mut fields, &mut flags)?;
        }
        Ok(Decoded {
            protocol: "wmbus".into(),
            meter_id: self.meter_id(),
            fields,
            readings,
            flags,
        })
    }
}

/// Peels every layer and decrypts; the records are left for [`Telegram::records`].
pub fn parse<'a>(frame: &'a [u8], keys: &Keys) -> Result<Telegram<'a>> {
    let s = dll::strip(frame)?;
    let doubt = s.unverified_b;
    blame_crc(parse_telegram(s.telegram, s.format, keys), doubt)
}

/// [`parse`] for a source that knows its frame format (`None`: detect it).
pub fn parse_as<'a>(frame: &'a [u8], format: Option<dll::FrameFormat>, keys: &Keys) -> Result<Telegram<'a>> {
    match format {
        None => parse(frame, keys),
        Some(f) => parse_telegram(dll::strip_as(frame, f)?, f, keys),
    }
}

/// A frame taken as CRC-less although a format B CRC layout fit it (and failed): when it does
/// not decode as CRC-less either, it is a damaged format B frame and the CRC is the error
/// (see [`dll::strip`]). Key problems stay what they are: they say nothing about the CRC.
fn blame_crc<T>(result: Result<T>, doubt: Option<dll::BadBlock>) -> Result<T> {
    match (result, doubt) {
        (Err(e), Some(bad)) if !matches!(e, Error::Key(_) | Error::CompactFormat { .. }) => {
            let Error::Check { check, detail } = bad.error() else {
                return Err(e);
            };
            Err(Error::Check {
                check,
                detail: format!("{detail} (read as a telegram without CRCs it does not decode either: {e})"),
            })
        }
        (r, _) => r,
    }
}

/// The layers above the DLL of a telegram whose CRCs are removed.
fn parse_telegram<'a>(telegram: Cow<'a, [u8]>, format: dll::FrameFormat, keys: &Keys) -> Result<Telegram<'a>> {
    let (dll, _) = dll::header(&telegram)?;
    let mut cur = cut(telegram, 10);
    let mut afl_layer = None;
    let mut ell_access_no = None;
    loop {
        let &ci = cur
            .first()
            .ok_or_else(|| Error::invalid("CI", "telegram ends after the link layer"))?;
        match ci {
            0x8C..=0x8F => {
                let (acc, rest) = ell(&dll, keys, cur)?;
                ell_access_no = Some(acc);
                cur = rest;
            }
            0x90 => {
                let (a, after) = afl(&cur[1..])?;
                let skip = cur.len() - after.len();
                afl_layer = Some(a);
                cur = cut(cur, skip);
            }
            _ => break,
        }
    }
    let ci = cur[0];
    let mut h = LongHeader {
        id: dll.id,
        manufacturer: dll.manufacturer,
        version: dll.version,
        medium: dll.device_type,
        access_no: 0,
        status: 0,
        signature: 0,
    };
    let mut records_at = match ci {
        // Compact frames (0x79, 0x7B, 0x73) have the headers of 0x78, 0x7A and 0x72; the
        // signature follows.
        0x78 | 0x79 | 0xA0..=0xB7 => 1,
        0x7A | 0x7B => {
            let [_, acc, status, c0, c1, ..] = *cur else {
                return Err(too_short("TPL"));
            };
            h = LongHeader {
                access_no: acc,
                status,
                signature: u16::from_le_bytes([c0, c1]),
                ..h
            };
            5
        }
        0x72 | 0x73 => {
            h = header::long_header(&cur[1..]).map_err(|_| too_short("TPL"))?.1;
            13
        }
        other => return Err(Error::Unsupported(format!("CI 0x{other:02X} after the link layer"))),
    };
    let has_tpl_header = matches!(ci, 0x7A | 0x72 | 0x7B | 0x73);
    let mut security_mode = None;
    if has_tpl_header {
        let cfg = h.signature;
        let mode = ((cfg >> 8) & 0x1F) as u8;
        let blocks = usize::from((cfg >> 4) as u8 & 0x0F);
        security_mode = Some(mode);
        if mode == 7 {
            records_at += 1; // configuration field extension
            let ext = *cur.get(records_at - 1).ok_or_else(|| too_short("TPL"))?;
            if (ext >> 4) & 0x03 != 1 {
                return Err(Error::Unsupported(format!(
                    "mode 7 key derivation {}",
                    (ext >> 4) & 0x03
                )));
            }
        }
        if records_at > cur.len() {
            return Err(too_short("TPL"));
        }
        if mode != 0 {
            let mut owned = cur.into_owned();
            decrypt_tpl(keys, &dll, &h, mode, blocks, &mut owned, records_at, afl_layer.as_ref())?;
            cur = Cow::Owned(owned);
        }
    }
    let mut compact = None;
    if matches!(ci, 0x79 | 0x7B | 0x73) {
        if security_mode.is_some_and(|m| m != 0) {
            records_at += 2; // the verification bytes 2F 2F, checked above
        }
        let [s0, s1, c0, c1] = *cur
            .get(records_at..records_at + 4)
            .ok_or_else(|| too_short("compact frame"))?
        else {
            return Err(too_short("compact frame"));
        };
        compact = Some((u16::from_le_bytes([s0, s1]), u16::from_le_bytes([c0, c1])));
        records_at += 4;
    }
    Ok(Telegram {
        format,
        dll,
        ell_access_no,
        afl: afl_layer,
        ci,
        header: h,
        has_tpl_header,
        security_mode,
        compact,
        app: cur,
        records_at,
    })
}

/// Decodes one telegram (from the L field, with or without DLL CRCs).
pub fn decode(frame: &[u8], keys: &Keys) -> Result<Decoded> {
    decode_with(frame, keys, &NoFormats)
}

/// [`decode_with`] for a source that knows its frame format (a receiver that removes the
/// CRCs): no detection, so a telegram that does not decode says why rather than blaming a
/// CRC it never had. `None`: detect it.
pub fn decode_as(
    frame: &[u8],
    keys: &Keys,
    formats: &dyn Formats,
    format: Option<dll::FrameFormat>,
) -> Result<Decoded> {
    match format {
        None => decode_with(frame, keys, formats),
        Some(f) => parse_telegram(dll::strip_as(frame, f)?, f, keys).and_then(|t| t.to_decoded_with(formats)),
    }
}

/// [`decode`] with the compact-frame layouts learned so far.
pub fn decode_with(frame: &[u8], keys: &Keys, formats: &dyn Formats) -> Result<Decoded> {
    let s = dll::strip(frame)?;
    let doubt = s.unverified_b;
    blame_crc(
        parse_telegram(s.telegram, s.format, keys).and_then(|t| t.to_decoded_with(formats)),
        doubt,
    )
}

/// A full frame's layout to learn (see [`Telegram::learned_format`]); `None` for anything
/// else, including telegrams that do not parse.
pub fn learned_format(frame: &[u8], keys: &Keys) -> Option<(FormatKey, Vec<u8>)> {
    parse(frame, keys).ok()?.learned_format()
}

#[cfg(test)]
mod tests;
