//! Data records (EN 13757-3 §6): DIB (DIF + DIFEs) → VIB (VIF + VIFEs) → data. Shared by wired
//! M-Bus and the wireless application layer.
//!
//! [`Records`] iterates lazily and borrows from the frame, so walking a telegram allocates
//! nothing; [`encode`] writes a record back for round-trip tests and for building telegrams.

use nom::IResult;
use nom::Parser;
use nom::bytes::complete::take;
use nom::number::complete::u8 as byte;

use super::value::{self, Data};
use super::vif::Table;
use crate::error::{Error, Result};

/// The standard caps DIFE and VIFE chains at 10; longer chains are malformed frames.
pub const MAX_EXTENSIONS: usize = 10;

/// DIF bits 5-4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Instantaneous,
    Maximum,
    Minimum,
    /// Value during error state.
    Error,
}

impl Function {
    fn from_dif(dif: u8) -> Self {
        match (dif >> 4) & 0x03 {
            0 => Function::Instantaneous,
            1 => Function::Maximum,
            2 => Function::Minimum,
            _ => Function::Error,
        }
    }

    fn bits(self) -> u8 {
        match self {
            Function::Instantaneous => 0,
            Function::Maximum => 1,
            Function::Minimum => 2,
            Function::Error => 3,
        }
    }

    /// The name used in `meterd decode` output.
    pub fn name(self) -> &'static str {
        match self {
            Function::Instantaneous => "instantaneous",
            Function::Maximum => "maximum",
            Function::Minimum => "minimum",
            Function::Error => "error",
        }
    }
}

/// Data information block: DIF and its DIFEs, accumulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dib {
    /// The DIF byte as sent.
    pub dif: u8,
    /// Data field (DIF bits 3-0): coding and length of the value.
    pub data_field: u8,
    pub function: Function,
    pub storage: u64,
    pub tariff: u32,
    pub subunit: u32,
}

/// Value information block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vib<'a> {
    /// The VIF byte as sent.
    pub vif: u8,
    pub table: Table,
    /// The code within `table` (extension bit cleared).
    pub code: u8,
    /// The combinable VIFEs after the code, as sent.
    pub vifes: &'a [u8],
    /// For a plain-text VIF: the unit, as sent (last character first).
    pub plain_text: Option<&'a [u8]>,
}

/// One data record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Record<'a> {
    pub dib: Dib,
    pub vib: Vib<'a>,
    /// The value bytes as sent (without the LVAR length byte).
    pub raw: &'a [u8],
    /// True when multi-byte values are sent most significant byte first (CI 0x76).
    pub msb_first: bool,
    pub data: Data<'a>,
}

/// One item of a record area.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Item<'a> {
    Record(Record<'a>),
    /// DIF `0F`/`1F` (or another special DIF): the rest is manufacturer data, kept as bytes.
    /// `more_follows` is set for `1F`: poll again for the next telegram.
    Manufacturer {
        dif: u8,
        data: &'a [u8],
        more_follows: bool,
    },
}

/// Iterator over the records of a record area. After an error it stops.
#[derive(Debug, Clone)]
pub struct Records<'a> {
    rest: &'a [u8],
    msb_first: bool,
    done: bool,
}

impl<'a> Records<'a> {
    /// Records in LSB-first order (CI 0x72, 0x7A, 0x78, wireless).
    pub fn new(area: &'a [u8]) -> Self {
        Records {
            rest: area,
            msb_first: false,
            done: false,
        }
    }

    /// Records whose multi-byte values are MSB first (CI 0x76).
    pub fn msb_first(area: &'a [u8]) -> Self {
        Records {
            rest: area,
            msb_first: true,
            done: false,
        }
    }
}

impl<'a> Records<'a> {
    /// The bytes not walked yet; after an error, the record that failed and what follows.
    pub fn remaining(&self) -> &'a [u8] {
        self.rest
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<Item<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        // 0x2F is an idle filler wherever a DIF is expected.
        let skip = self.rest.iter().take_while(|&&b| b == 0x2F).count();
        self.rest = &self.rest[skip..];
        let &dif = self.rest.first()?;
        if dif & 0x0F == 0x0F {
            self.done = true;
            let data = &self.rest[1..];
            self.rest = &[];
            return Some(Ok(Item::Manufacturer {
                dif,
                data,
                more_follows: dif == 0x1F,
            }));
        }
        match record(self.rest, self.msb_first) {
            Ok((rest, rec)) => {
                self.rest = rest;
                Some(Ok(Item::Record(rec)))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Length in bytes of a fixed-length data field (`None` for LVAR and special functions).
pub fn data_len(data_field: u8) -> Option<usize> {
    Some(match data_field & 0x0F {
        0x0 | 0x8 => 0,
        0x1 | 0x9 => 1,
        0x2 | 0xA => 2,
        0x3 | 0xB => 3,
        0x4 | 0x5 | 0xC => 4,
        0x6 | 0xE => 6,
        0x7 => 8,
        _ => return None,
    })
}

type PResult<'a, T> = IResult<&'a [u8], T>;

/// A chain of extension bytes: each byte with bit 7 set announces another.
fn extensions(input: &[u8], first_has_ext: bool) -> PResult<'_, &[u8]> {
    if !first_has_ext {
        return Ok((input, &input[..0]));
    }
    let mut n = 0;
    loop {
        let Some(&b) = input.get(n) else {
            return Err(nom::Err::Error(nom::error::Error::new(
                input,
                nom::error::ErrorKind::Eof,
            )));
        };
        n += 1;
        if n > MAX_EXTENSIONS {
            return Err(nom::Err::Failure(nom::error::Error::new(
                input,
                nom::error::ErrorKind::TooLarge,
            )));
        }
        if b & 0x80 == 0 {
            break;
        }
    }
    take(n).parse(input)
}

fn dib(input: &[u8]) -> PResult<'_, Dib> {
    let (input, dif) = byte(input)?;
    let (input, difes) = extensions(input, dif & 0x80 != 0)?;
    let mut storage = u64::from((dif >> 6) & 1);
    let mut tariff = 0u32;
    let mut subunit = 0u32;
    for (k, d) in difes.iter().enumerate() {
        storage |= u64::from(d & 0x0F) << (1 + 4 * k);
        tariff |= u32::from((d >> 4) & 0x03) << (2 * k);
        subunit |= u32::from((d >> 6) & 1) << k;
    }
    Ok((
        input,
        Dib {
            dif,
            data_field: dif & 0x0F,
            function: Function::from_dif(dif),
            storage,
            tariff,
            subunit,
        },
    ))
}

fn vib(input: &[u8]) -> PResult<'_, Vib<'_>> {
    let (input, vif) = byte(input)?;
    let ext = vif & 0x80 != 0;
    match (vif, vif & 0x7F) {
        (0xFB | 0xFD | 0xEF, _) => {
            let (input, code) = byte(input)?;
            let (input, vifes) = extensions(input, code & 0x80 != 0)?;
            let table = match vif {
                0xFB => Table::Fb,
                0xFD => Table::Fd,
                _ => Table::Ef,
            };
            Ok((
                input,
                Vib {
                    vif,
                    table,
                    code: code & 0x7F,
                    vifes,
                    plain_text: None,
                },
            ))
        }
        (_, 0x7C) => {
            let (input, vifes) = extensions(input, ext)?;
            let (input, len) = byte(input)?;
            let (input, text) = take(len).parse(input)?;
            Ok((
                input,
                Vib {
                    vif,
                    table: Table::PlainText,
                    code: 0x7C,
                    vifes,
                    plain_text: Some(text),
                },
            ))
        }
        (_, code) => {
            let (input, vifes) = extensions(input, ext)?;
            let table = match code {
                0x7F => Table::Manufacturer,
                0x7E => Table::Any,
                _ => Table::Primary,
            };
            Ok((
                input,
                Vib {
                    vif,
                    table,
                    code,
                    vifes,
                    plain_text: None,
                },
            ))
        }
    }
}

/// Reads `n` value bytes into little-endian order.
fn le_bytes(raw: &[u8], msb_first: bool) -> [u8; 16] {
    let mut buf = [0u8; 16];
    let n = raw.len().min(16);
    buf[..n].copy_from_slice(&raw[..n]);
    if msb_first {
        buf[..n].reverse();
    }
    buf
}

fn data(input: &[u8], data_field: u8, msb_first: bool) -> PResult<'_, (&[u8], Data<'_>)> {
    let df = data_field & 0x0F;
    if df == 0x0D {
        let (input, lvar) = byte(input)?;
        let len = match lvar {
            0x00..=0xBF => usize::from(lvar),
            0xC0..=0xC9 => usize::from(lvar - 0xC0),
            0xD0..=0xD9 => usize::from(lvar - 0xD0),
            0xE0..=0xEF => usize::from(lvar - 0xE0),
            0xF0..=0xF4 => 4 * usize::from(lvar - 0xEC),
            0xF5 => 48,
            0xF6 => 64,
            _ => {
                return Err(nom::Err::Failure(nom::error::Error::new(
                    input,
                    nom::error::ErrorKind::Verify,
                )));
            }
        };
        let (input, raw) = take(len).parse(input)?;
        let value = match lvar {
            0x00..=0xBF => Data::Text(raw),
            0xC0..=0xD9 => {
                let buf = le_bytes(raw, msb_first);
                match value::bcd_le(&buf[..len]) {
                    Data::Bcd(v) if lvar >= 0xD0 => Data::Bcd(-v),
                    other => other,
                }
            }
            _ if len <= 8 => {
                // LVAR binary is an unsigned number.
                let buf = le_bytes(raw, msb_first);
                let mut v: u64 = 0;
                for (i, b) in buf[..len].iter().enumerate() {
                    v |= u64::from(*b) << (8 * i);
                }
                Data::Int(v as i64)
            }
            _ => Data::Bytes(raw),
        };
        return Ok((input, (raw, value)));
    }
    let Some(len) = data_len(df) else {
        return Err(nom::Err::Failure(nom::error::Error::new(
            input,
            nom::error::ErrorKind::Verify,
        )));
    };
    let (input, raw) = take(len).parse(input)?;
    let buf = le_bytes(raw, msb_first);
    let le = &buf[..len];
    let value = match df {
        0x0 | 0x8 => Data::None,
        0x5 => Data::Real(f32::from_le_bytes([le[0], le[1], le[2], le[3]])),
        0x9..=0xE => value::bcd_le(le),
        _ => Data::Int(value::int_le(le)),
    };
    Ok((input, (raw, value)))
}

/// Parses one record (not a special DIF) from the start of `input`.
pub fn record(input: &[u8], msb_first: bool) -> Result<(&[u8], Record<'_>)> {
    let at = |what: &'static str, e: nom::Err<nom::error::Error<&[u8]>>| match e {
        nom::Err::Failure(f) if f.code == nom::error::ErrorKind::TooLarge => {
            Error::invalid(what, format!("more than {MAX_EXTENSIONS} extension bytes"))
        }
        nom::Err::Failure(_) => Error::invalid(what, "reserved coding"),
        _ => Error::invalid(what, "record ends early"),
    };
    let (rest, dib) = dib(input).map_err(|e| at("DIF", e))?;
    let (rest, vib) = vib(rest).map_err(|e| at("VIF", e))?;
    let (rest, (raw, data)) = data(rest, dib.data_field, msb_first).map_err(|e| at("data", e))?;
    Ok((
        rest,
        Record {
            dib,
            vib,
            raw,
            msb_first,
            data,
        },
    ))
}

/// The length of the DIF, DIFEs, VIF and VIFEs at the start of `input` and the data field
/// they announce (a compact frame's layout, which holds only these).
pub fn header_len(input: &[u8]) -> Result<(usize, u8)> {
    let bad = |what: &'static str| Error::invalid(what, "record header ends early or is reserved");
    let (rest, dib) = dib(input).map_err(|_| bad("DIF"))?;
    let (rest, _) = vib(rest).map_err(|_| bad("VIF"))?;
    Ok((input.len() - rest.len(), dib.data_field))
}

/// Builds the DIB bytes for a data field, function, storage, tariff and subunit.
/// Returns `None` when the numbers need more than [`MAX_EXTENSIONS`] DIFEs.
pub fn encode_dib(data_field: u8, function: Function, storage: u64, tariff: u32, subunit: u32) -> Option<Vec<u8>> {
    let mut out = vec![(data_field & 0x0F) | (function.bits() << 4) | (((storage & 1) as u8) << 6)];
    let (mut s, mut t, mut u) = (storage >> 1, tariff, subunit);
    while s != 0 || t != 0 || u != 0 {
        if out.len() > MAX_EXTENSIONS {
            return None;
        }
        let last = out.len() - 1;
        out[last] |= 0x80;
        out.push((s & 0x0F) as u8 | (((t & 0x03) as u8) << 4) | (((u & 1) as u8) << 6));
        s >>= 4;
        t >>= 2;
        u >>= 1;
    }
    Some(out)
}

/// Encodes an integer value for a fixed-length data field (integer or BCD coding), LSB first.
/// Returns `None` when the value does not fit.
pub fn encode_value(data_field: u8, v: i64) -> Option<Vec<u8>> {
    let df = data_field & 0x0F;
    let len = data_len(df)?;
    match df {
        0x1..=0x4 | 0x6 | 0x7 => {
            let bits = 8 * len as u32;
            if bits < 64 {
                let min = -(1i64 << (bits - 1));
                let max = (1i64 << (bits - 1)) - 1;
                if v < min || v > max {
                    return None;
                }
            }
            Some(v.to_le_bytes()[..len].to_vec())
        }
        0x9..=0xC | 0xE => {
            let digits = 2 * len;
            let mut mag = v.unsigned_abs();
            let mut nibbles = vec![0u8; digits];
            for n in nibbles.iter_mut() {
                *n = (mag % 10) as u8;
                mag /= 10;
            }
            if mag != 0 || (v < 0 && nibbles[digits - 1] != 0) {
                return None;
            }
            if v < 0 {
                nibbles[digits - 1] = 0x0F;
            }
            Some(nibbles.chunks(2).map(|p| p[0] | (p[1] << 4)).collect())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn records(area: &[u8]) -> Vec<Item<'_>> {
        Records::new(area).collect::<Result<Vec<_>>>().unwrap()
    }

    #[test]
    fn difes_accumulate_storage_tariff_subunit() {
        // W1: `DA 02 3B 13 01` maximum, storage 5; `8B 60 04 37 18 02` tariff 2, subunit 1.
        let items = records(&[0xDA, 0x02, 0x3B, 0x13, 0x01, 0x8B, 0x60, 0x04, 0x37, 0x18, 0x02]);
        let Item::Record(a) = items[0] else { panic!() };
        assert_eq!(
            (a.dib.function, a.dib.storage, a.dib.tariff, a.dib.subunit),
            (Function::Maximum, 5, 0, 0)
        );
        assert_eq!(a.data, Data::Bcd(113));
        let Item::Record(b) = items[1] else { panic!() };
        assert_eq!(
            (b.dib.function, b.dib.storage, b.dib.tariff, b.dib.subunit),
            (Function::Instantaneous, 0, 2, 1)
        );
        assert_eq!(b.data, Data::Bcd(21_837));
    }

    #[test]
    fn fillers_are_skipped_and_mfct_tail_kept() {
        let items = records(&[0x2F, 0x2F, 0x01, 0x13, 0x05, 0x1F, 0xAA, 0xBB]);
        assert_eq!(items.len(), 2);
        assert_eq!(
            items[1],
            Item::Manufacturer {
                dif: 0x1F,
                data: &[0xAA, 0xBB],
                more_follows: true
            }
        );
    }

    #[test]
    fn extension_tables_and_plain_text() {
        let items = records(&[0x02, 0xFD, 0x17, 0x04, 0x00, 0x01, 0x7C, 0x03, b'h', b'W', b'k', 0x07]);
        let Item::Record(a) = items[0] else { panic!() };
        assert_eq!((a.vib.table, a.vib.code), (Table::Fd, 0x17));
        assert_eq!(a.data, Data::Int(4));
        let Item::Record(b) = items[1] else { panic!() };
        assert_eq!(b.vib.table, Table::PlainText);
        assert_eq!(b.vib.plain_text, Some(&b"hWk"[..]));
    }

    #[test]
    fn lvar_codings() {
        let items = records(&[
            0x0D, 0x78, 0x03, b'C', b'B', b'A', 0x0D, 0x13, 0xC2, 0x45, 0x23, 0x0D, 0x13, 0xD1, 0x07,
        ]);
        let Item::Record(a) = items[0] else { panic!() };
        assert_eq!(a.data, Data::Text(b"CBA"));
        let Item::Record(b) = items[1] else { panic!() };
        assert_eq!(b.data, Data::Bcd(2345));
        let Item::Record(c) = items[2] else { panic!() };
        assert_eq!(c.data, Data::Bcd(-7));
    }

    #[test]
    fn malformed_records_are_errors_not_panics() {
        let too_many = [
            0x84, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0x13, 1, 2, 3, 4,
        ];
        let err = Records::new(&too_many).next().unwrap().unwrap_err();
        assert!(err.to_string().contains("extension"), "{err}");
        let err = Records::new(&[0x04, 0x13, 0x01]).next().unwrap().unwrap_err();
        assert!(matches!(err, Error::Invalid { field: "data", .. }), "{err}");
        let err = Records::new(&[0x0D, 0x13, 0xFA]).next().unwrap().unwrap_err();
        assert!(matches!(err, Error::Invalid { field: "data", .. }), "{err}");
    }

    #[test]
    fn msb_first_values_are_reversed() {
        let items: Vec<_> = Records::msb_first(&[0x04, 0x13, 0x00, 0x01, 0xE2, 0x89])
            .collect::<Result<_>>()
            .unwrap();
        let Item::Record(a) = items[0] else { panic!() };
        assert_eq!(a.data, Data::Int(123_529));
    }

    fn function() -> impl Strategy<Value = Function> {
        prop_oneof![
            Just(Function::Instantaneous),
            Just(Function::Maximum),
            Just(Function::Minimum),
            Just(Function::Error)
        ]
    }

    proptest! {
        /// encode → parse gives back the DIB, the VIB and the value.
        #[test]
        fn record_round_trip(
            df in prop::sample::select(vec![1u8, 2, 3, 4, 6, 7, 9, 0xA, 0xB, 0xC, 0xE]),
            f in function(),
            storage in 0u64..(1 << 41),
            tariff in 0u32..(1 << 20),
            subunit in 0u32..(1 << 10),
            // 0x6F with the extension bit is 0xEF, the third extension table.
            vif in (0u8..0x7B).prop_filter("EF", |v| *v != 0x6F),
            vifes in prop::collection::vec(0u8..0x7F, 0..4),
            v in any::<i64>(),
        ) {
            let Some(dib_bytes) = encode_dib(df, f, storage, tariff, subunit) else { return Ok(()) };
            let len = data_len(df).unwrap();
            let bound = if df >= 9 { 10i64.pow(2 * len as u32 - 1) } else if len < 8 { 1i64 << (8 * len - 1) } else { i64::MAX };
            let v = v % bound;
            let value = encode_value(df, v).unwrap();
            let mut bytes = dib_bytes;
            bytes.push(if vifes.is_empty() { vif } else { vif | 0x80 });
            for (k, e) in vifes.iter().enumerate() {
                bytes.push(if k + 1 < vifes.len() { e | 0x80 } else { *e });
            }
            bytes.extend_from_slice(&value);
            let (rest, rec) = record(&bytes, false).unwrap();
            prop_assert!(rest.is_empty());
            prop_assert_eq!(rec.dib.function, f);
            prop_assert_eq!(rec.dib.storage, storage);
            prop_assert_eq!(rec.dib.tariff, tariff);
            prop_assert_eq!(rec.dib.subunit, subunit);
            prop_assert_eq!(rec.vib.code, vif);
            prop_assert_eq!(rec.vib.vifes.len(), vifes.len());
            let expected = if df >= 9 { Data::Bcd(v) } else { Data::Int(v) };
            prop_assert_eq!(rec.data, expected);
        }
    }
}
