//! Neptune R900 and R900BCD: 21 five-bit symbols (16 data + 5 Reed-Solomon parity) = 105 bits,
//! carried as 14 bytes with 7 zero pad bits (line coding and fields of rtlamr's
//! `r900/r900.go` and rtl_433's `neptune_r900.c`; capture in rtl_433_tests `tests/r900/01`).
//!
//! The radio sends 42 base-6 digits of 4 chips each after the preamble; [`digits_from_chips`] and
//! [`symbols_from_digits`] turn those into symbols and [`pack`] into the 14-byte form that
//! [`R900::parse`] takes.

use nom::IResult;
use nom::bits::complete::take;
use serde_json::{Map, Value};

use super::rs::{self, DATA, PARITY, SYMBOLS};
use super::{BitInput, exact_frame, nom_bits};
use crate::decoded::{Decoded, Reading};
use crate::error::{Check, Error, Result};

/// Frame length: 105 bits + 7 zero bits.
pub const LEN: usize = 14;
/// Base-6 digits in a payload.
pub const DIGITS: usize = 42;
/// The filler a meter sends instead of a reading (rtlamr #251).
pub const NO_READ: u32 = 0xAA_AAAA;
/// `Unkn1` of BCD meters.
pub const UNKN1_BCD: u8 = 0xA1;

/// One R900 message, field by field as rtlamr names them (rtlamr's widths: its `NoUse` and
/// `Leak` carry extra high bits, see [`R900::no_use_bucket`] and [`R900::wrap`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct R900 {
    /// `ID` (32 bits).
    pub id: u32,
    /// `Unkn1`: 0xA3 binary meters, 0xA1 BCD meters.
    pub unkn1: u8,
    /// `NoUse` (6 bits; the low 3 are the no-use day bucket).
    pub no_use: u8,
    /// `BackFlow` (2 bits): 0 none, 1 low, 2 high over the last 35 days.
    pub back_flow: u8,
    /// `Consumption`: the raw 24-bit register field (binary, or six BCD digits).
    pub consumption: u32,
    /// `Unkn3` (2 bits): consumption bits 25..26 on binary meters.
    pub unkn3: u8,
    /// `Leak` (4 bits): the high bit is consumption bit 24, the low 3 the leak day bucket.
    pub leak: u8,
    /// `LeakNow` (2 bits): 0 none, 1 intermittent, 2 continuous over the last 24 h.
    pub leak_now: u8,
    /// The five Reed-Solomon parity symbols.
    pub parity: [u8; PARITY],
}

fn symbols(input: BitInput<'_>) -> IResult<BitInput<'_>, ([u8; SYMBOLS], u8)> {
    let mut out = [0u8; SYMBOLS];
    let mut input = input;
    for slot in &mut out {
        let (rest, v) = take(5usize)(input)?;
        *slot = v;
        input = rest;
    }
    let (input, pad) = take(7usize)(input)?;
    Ok((input, (out, pad)))
}

fn data_fields(input: BitInput<'_>) -> IResult<BitInput<'_>, R900> {
    let (input, id) = take(32usize)(input)?;
    let (input, unkn1) = take(8usize)(input)?;
    let (input, no_use) = take(6usize)(input)?;
    let (input, back_flow) = take(2usize)(input)?;
    let (input, consumption) = take(24usize)(input)?;
    let (input, unkn3) = take(2usize)(input)?;
    let (input, leak) = take(4usize)(input)?;
    let (input, leak_now) = take(2usize)(input)?;
    Ok((
        input,
        R900 {
            id,
            unkn1,
            no_use,
            back_flow,
            consumption,
            unkn3,
            leak,
            leak_now,
            parity: [0; PARITY],
        },
    ))
}

/// Packs 21 symbols into the 14-byte form (105 bits MSB first, 7 zero bits).
pub fn pack(symbols: &[u8; SYMBOLS]) -> [u8; LEN] {
    let mut acc: u128 = 0;
    for &s in symbols {
        acc = acc << 5 | u128::from(s & 0x1F);
    }
    acc <<= 7;
    acc.to_be_bytes()[2..].try_into().expect("16 - 2 bytes")
}

/// Chips to base-6 digits: each 4-chip group (one hex nibble of `chips`) is one digit
/// (`0011`→0, `0101`→1, `0110`→2, `1100`→3, `1010`→4, `1001`→5).
pub fn digits_from_chips(chips: &[u8; DIGITS / 2]) -> Result<[u8; DIGITS]> {
    let mut out = [0u8; DIGITS];
    for (i, d) in out.iter_mut().enumerate() {
        let nibble = if i % 2 == 0 {
            chips[i / 2] >> 4
        } else {
            chips[i / 2] & 0x0F
        };
        *d = match nibble {
            0b0011 => 0,
            0b0101 => 1,
            0b0110 => 2,
            0b1100 => 3,
            0b1010 => 4,
            0b1001 => 5,
            other => {
                return Err(Error::invalid(
                    "chips",
                    format!("chip group {other:04b} at digit {i} is not a base-6 digit"),
                ));
            }
        };
    }
    Ok(out)
}

/// Base-6 digit pairs to symbols (`6·d1 + d2`); a pair above 31 refuses the packet before any
/// Reed-Solomon check, as rtlamr does.
pub fn symbols_from_digits(digits: &[u8; DIGITS]) -> Result<[u8; SYMBOLS]> {
    let mut out = [0u8; SYMBOLS];
    for (i, s) in out.iter_mut().enumerate() {
        let (d1, d2) = (digits[2 * i], digits[2 * i + 1]);
        if d1 > 5 || d2 > 5 {
            return Err(Error::invalid(
                "digits",
                format!("pair {i} ({d1}{d2}) has a digit above 5"),
            ));
        }
        let v = 6 * d1 + d2;
        if v > 31 {
            return Err(Error::invalid(
                "symbol",
                format!("digit pair {i} ({d1}{d2}) = {v} is above 31"),
            ));
        }
        *s = v;
    }
    Ok(out)
}

/// Reads a BCD register; `None` when a nibble is above 9.
pub fn from_bcd(raw: u32) -> Option<u32> {
    let mut value = 0;
    for shift in (0..24).step_by(4).rev() {
        let digit = raw >> shift & 0xF;
        if digit > 9 {
            return None;
        }
        value = value * 10 + digit;
    }
    Some(value)
}

/// Writes a value below 1,000,000 as six BCD digits.
pub fn to_bcd(value: u32) -> Option<u32> {
    if value > 999_999 {
        return None;
    }
    let mut raw = 0;
    let mut v = value;
    for shift in (0..24).step_by(4) {
        raw |= (v % 10) << shift;
        v /= 10;
    }
    Some(raw)
}

impl R900 {
    /// Parses and checks one 14-byte R900 frame: zero padding, then the Reed-Solomon syndromes.
    pub fn parse(frame: &[u8]) -> Result<R900> {
        let frame = exact_frame::<LEN>(frame, "R900")?;
        let (symbols, pad) = nom_bits(symbols, frame)?;
        if pad != 0 {
            return Err(Error::invalid(
                "padding",
                format!("the 7 bits after the 105 must be 0, got 0x{pad:02X}"),
            ));
        }
        Self::from_symbols(&symbols)
    }

    /// Checks 21 symbols (each < 32) and reads the fields.
    pub fn from_symbols(symbols: &[u8; SYMBOLS]) -> Result<R900> {
        if let Some(i) = symbols.iter().position(|&s| s > 31) {
            return Err(Error::invalid("symbol", format!("symbol {i} is above 31")));
        }
        let syndromes = rs::syndromes(symbols);
        if syndromes != [0; PARITY] {
            return Err(Error::check(
                Check::ReedSolomon,
                format!("syndromes {syndromes:?}, expected all 0"),
            ));
        }
        let packed = pack(symbols);
        let mut msg = nom_bits(data_fields, &packed[..10])?;
        msg.parity.copy_from_slice(&symbols[DATA..]);
        Ok(msg)
    }

    /// The 16 data symbols (80 bits) of these fields.
    pub fn data_symbols(&self) -> [u8; DATA] {
        let bits: u128 = u128::from(self.id) << 48
            | u128::from(self.unkn1) << 40
            | u128::from(self.no_use & 0x3F) << 34
            | u128::from(self.back_flow & 3) << 32
            | u128::from(self.consumption & 0xFF_FFFF) << 8
            | u128::from(self.unkn3 & 3) << 6
            | u128::from(self.leak & 0xF) << 2
            | u128::from(self.leak_now & 3);
        let mut out = [0u8; DATA];
        for (i, s) in out.iter_mut().enumerate() {
            *s = (bits >> (75 - 5 * i) & 0x1F) as u8;
        }
        out
    }

    /// The 80 data bits as 20 hex digits (what identifies one transmission).
    pub fn data_hex(&self) -> String {
        let packed = pack(&self.symbols());
        crate::hexline::format(&packed[..10])
    }

    /// All 21 symbols with the parity recomputed from the data.
    pub fn symbols(&self) -> [u8; SYMBOLS] {
        let data = self.data_symbols();
        let mut out = [0u8; SYMBOLS];
        out[..DATA].copy_from_slice(&data);
        out[DATA..].copy_from_slice(&rs::parity(&data));
        out
    }

    /// The 14 bytes a meter would send for these fields (parity recomputed).
    pub fn encode(&self) -> [u8; LEN] {
        pack(&self.symbols())
    }

    /// Days without use in the last 35 days, as a bucket: 0: 0, 1: 1–2, 2: 3–7, 3: 8–14, 4: 15–21,
    /// 5: 22–34, 6: 35+.
    pub fn no_use_bucket(&self) -> u8 {
        self.no_use & 7
    }

    /// Days with a leak in the last 35 days, same buckets as [`R900::no_use_bucket`].
    pub fn leak_bucket(&self) -> u8 {
        self.leak & 7
    }

    /// Consumption bits 24..26 that rtlamr shows as `Unkn3` and the high bit of `Leak`.
    pub fn wrap(&self) -> u8 {
        (self.unkn3 & 3) << 1 | (self.leak >> 3 & 1)
    }

    /// BCD meters send bits 74..79 all set and `Unkn1` 0xA1: then `Leak`/`LeakNow` (and the
    /// wrap bit inside them) are filler, not leak indications.
    pub fn leak_bits_are_filler(&self) -> bool {
        self.unkn1 == UNKN1_BCD || (self.leak == 15 && self.leak_now == 3)
    }

    /// The register: binary meters `wrap << 24 | Consumption` (27 bits), BCD meters the six
    /// digits. `Ok(None)` for the no-read filler 0xAAAAAA; an error when a BCD meter's field
    /// holds a nibble above 9 (rtlamr would print 0; a 0 must never become a read).
    pub fn register(&self, bcd: bool) -> Result<Option<u32>> {
        if self.consumption == NO_READ {
            return Ok(None);
        }
        if bcd {
            return from_bcd(self.consumption).map(Some).ok_or_else(|| {
                Error::invalid(
                    "Consumption",
                    format!(
                        "0x{:06X} is not BCD (a nibble above 9): not an R900BCD meter?",
                        self.consumption
                    ),
                )
            });
        }
        if self.leak_bits_are_filler() {
            Ok(Some(self.consumption))
        } else {
            Ok(Some(u32::from(self.wrap()) << 24 | self.consumption))
        }
    }

    /// rtlamr's `Consumption` for the variant: the raw field, or for R900BCD the hex digits read
    /// as decimal (0 when they are not BCD, as rtlamr prints).
    pub fn rtlamr_consumption(&self, bcd: bool) -> u32 {
        if bcd {
            from_bcd(self.consumption).unwrap_or(0)
        } else {
            self.consumption
        }
    }

    /// rtlamr's JSON `Message` object.
    pub fn rtlamr_fields(&self, bcd: bool) -> Map<String, Value> {
        let mut f = Map::new();
        f.insert("ID".into(), self.id.into());
        f.insert("Unkn1".into(), self.unkn1.into());
        f.insert("NoUse".into(), self.no_use.into());
        f.insert("BackFlow".into(), self.back_flow.into());
        f.insert("Consumption".into(), self.rtlamr_consumption(bcd).into());
        f.insert("Unkn3".into(), self.unkn3.into());
        f.insert("Leak".into(), self.leak.into());
        f.insert("LeakNow".into(), self.leak_now.into());
        f
    }

    /// The flags: `leak` (leak days bucket 1–6 or LeakNow 1–2, unless those bits are BCD
    /// filler), `reverse_flow` (BackFlow 1–2), `no_use` (no-use days bucket 1–6), `no_read`
    /// (the 0xAAAAAA filler).
    pub fn flags(&self) -> Vec<String> {
        let mut flags = Vec::new();
        if !self.leak_bits_are_filler() && ((1..=6).contains(&self.leak_bucket()) || (1..=2).contains(&self.leak_now)) {
            flags.push("leak".to_owned());
        }
        if (1..=2).contains(&self.back_flow) {
            flags.push("reverse_flow".to_owned());
        }
        if (1..=6).contains(&self.no_use_bucket()) {
            flags.push("no_use".to_owned());
        }
        if self.consumption == NO_READ {
            flags.push("no_read".to_owned());
        }
        flags
    }

    /// The protocol-neutral form (`r900` or `r900bcd`).
    pub fn to_decoded(&self, bcd: bool) -> Result<Decoded> {
        let readings = match self.register(bcd)? {
            Some(v) => vec![Reading::new("register", v.into(), None)],
            None => Vec::new(),
        };
        Ok(Decoded {
            protocol: if bcd { "r900bcd" } else { "r900" }.into(),
            meter_id: self.id.to_string(),
            fields: self.rtlamr_fields(bcd),
            readings,
            flags: self.flags(),
        })
    }
}

/// Decodes one R900 (`bcd` false) or R900BCD frame: 14 bytes, 105 bits + 7 zero bits.
pub fn decode(frame: &[u8], bcd: bool) -> Result<Decoded> {
    R900::parse(frame)?.to_decoded(bcd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;

    const R1_HEX: [u8; 14] = hex!("5C24BB46A384062DFA0035B96E80");
    const R5D_HEX: [u8; 14] = hex!("58865A81A1000160003F490C8E80");
    const R1_SYMBOLS: [u8; 21] = [
        11, 16, 18, 11, 22, 17, 21, 3, 16, 16, 3, 2, 27, 30, 16, 0, 6, 22, 28, 22, 29,
    ];

    fn digits(pairs: &str) -> [u8; DIGITS] {
        let v: Vec<u8> = pairs.bytes().filter(u8::is_ascii_digit).map(|b| b - b'0').collect();
        v.try_into().unwrap()
    }

    #[test]
    fn r1_from_chips_digits_symbols_to_fields() {
        let chips = hex!("596AC359CA69CC3C6A6A3C36AC936A3353CAAACAA9");
        let d = digits_from_chips(&chips).unwrap();
        assert_eq!(
            d,
            digits("15 24 30 15 34 25 33 03 24 24 03 02 43 50 24 00 10 34 44 34 45")
        );
        let s = symbols_from_digits(&d).unwrap();
        assert_eq!(s, R1_SYMBOLS);
        assert_eq!(pack(&s), R1_HEX);
        let m = R900::parse(&R1_HEX).unwrap();
        assert_eq!(
            (
                m.id,
                m.unkn1,
                m.no_use,
                m.back_flow,
                m.consumption,
                m.unkn3,
                m.leak,
                m.leak_now
            ),
            (1545911110, 163, 33, 0, 404986, 0, 0, 0)
        );
        assert_eq!(m.parity, [6, 22, 28, 22, 29]);
        assert_eq!(m.encode(), R1_HEX);
    }

    #[test]
    fn r1_decoded_as_rtlamr_json() {
        let d = decode(&R1_HEX, false).unwrap();
        assert_eq!(
            Value::Object(d.fields),
            serde_json::json!({"ID":1545911110,"Unkn1":163,"NoUse":33,"BackFlow":0,"Consumption":404986,"Unkn3":0,"Leak":0,"LeakNow":0})
        );
        assert_eq!(d.readings, vec![Reading::new("register", 404986.into(), None)]);
        assert_eq!(d.flags, vec!["no_use"], "NoUse 33: bucket 1 (1–2 days)");
    }

    #[test]
    fn n8_r1_as_bcd_is_refused_not_zero() {
        let m = R900::parse(&R1_HEX).unwrap();
        assert_eq!(m.rtlamr_consumption(true), 0, "what rtlamr would print");
        let err = decode(&R1_HEX, true).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Invalid {
                    field: "Consumption",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn r5d_bcd_meter() {
        let m = R900::parse(&R5D_HEX).unwrap();
        assert_eq!(
            (
                m.id,
                m.unkn1,
                m.no_use,
                m.back_flow,
                m.consumption,
                m.unkn3,
                m.leak,
                m.leak_now
            ),
            (1485200001, 161, 0, 0, 0x016000, 0, 15, 3)
        );
        let bcd = decode(&R5D_HEX, true).unwrap();
        assert_eq!(bcd.protocol, "r900bcd");
        assert_eq!(bcd.fields["Consumption"], 16000);
        assert_eq!(bcd.readings[0].value, 16000);
        assert!(
            bcd.flags.is_empty(),
            "Leak 15 / LeakNow 3 are BCD filler: {:?}",
            bcd.flags
        );
        let bin = decode(&R5D_HEX, false).unwrap();
        assert_eq!(bin.fields["Consumption"], 90112);
        assert_eq!(bin.readings[0].value, 90112, "filler wrap bit not counted");
    }

    #[test]
    fn n5_corrupted_symbol_names_reed_solomon() {
        let mut s = R1_SYMBOLS;
        s[5] ^= 1;
        let err = R900::parse(&pack(&s)).unwrap_err();
        assert_eq!(err.failed_check(), Some(Check::ReedSolomon));
        assert!(err.to_string().contains("[14, 10, 1, 25, 6]"), "{err}");
    }

    #[test]
    fn n6_digit_pair_above_31_is_refused_before_rs() {
        let mut d = digits("15 24 30 15 34 25 33 03 24 24 03 02 43 50 24 00 10 34 44 34 45");
        d[0] = 5;
        d[1] = 2; // pair "52" = 32
        assert!(matches!(
            symbols_from_digits(&d),
            Err(Error::Invalid { field: "symbol", .. })
        ));
        d[1] = 5; // "55" = 35
        assert!(matches!(
            symbols_from_digits(&d),
            Err(Error::Invalid { field: "symbol", .. })
        ));
        assert!(digits_from_chips(&[0xFF; 21]).is_err());
    }

    #[test]
    fn padding_and_length() {
        let mut f = R1_HEX;
        f[13] |= 1;
        assert!(matches!(R900::parse(&f), Err(Error::Invalid { field: "padding", .. })));
        assert!(matches!(
            R900::parse(&R1_HEX[..13]),
            Err(Error::Incomplete { needed: 1 })
        ));
    }

    #[test]
    fn flags_follow_the_bucket_semantics() {
        let base = R900::parse(&R1_HEX).unwrap();
        let with = |f: &dyn Fn(&mut R900)| {
            let mut m = base;
            f(&mut m);
            R900::parse(&m.encode()).unwrap().flags()
        };
        assert_eq!(
            with(&|m| m.no_use = 32),
            Vec::<String>::new(),
            "high bits of NoUse are not the bucket"
        );
        assert_eq!(
            with(&|m| {
                m.no_use = 0;
                m.leak = 2
            }),
            ["leak"]
        );
        assert_eq!(
            with(&|m| {
                m.no_use = 0;
                m.leak_now = 2
            }),
            ["leak"]
        );
        assert_eq!(
            with(&|m| {
                m.no_use = 0;
                m.leak = 8
            }),
            Vec::<String>::new(),
            "Leak 8 = wrap bit, bucket 0"
        );
        assert_eq!(
            with(&|m| {
                m.no_use = 0;
                m.back_flow = 1
            }),
            ["reverse_flow"]
        );
        assert_eq!(
            with(&|m| {
                m.no_use = 0;
                m.consumption = NO_READ
            }),
            ["no_read"]
        );
    }

    #[test]
    fn wrap_bits_extend_the_binary_register() {
        let mut m = R900::parse(&R1_HEX).unwrap();
        m.leak = 8 | 1;
        m.unkn3 = 2;
        let m = R900::parse(&m.encode()).unwrap();
        assert_eq!(m.wrap(), 5);
        assert_eq!(m.register(false).unwrap(), Some(5 << 24 | 404986));
        assert_eq!(m.leak_bucket(), 1);
    }

    #[test]
    fn no_read_filler_gives_no_register() {
        let mut m = R900::parse(&R5D_HEX).unwrap();
        m.consumption = NO_READ;
        let d = decode(&m.encode(), true).unwrap();
        assert!(d.readings.is_empty());
        assert_eq!(d.flags, ["no_read"]);
    }

    #[test]
    fn bcd_round_trip() {
        assert_eq!(from_bcd(0x223700), Some(223700));
        assert_eq!(to_bcd(223700), Some(0x223700));
        assert_eq!(from_bcd(0x062DFA), None);
        assert_eq!(to_bcd(1_000_000), None);
    }
}
