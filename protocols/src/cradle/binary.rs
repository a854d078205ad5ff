//! Firmware 2 records: compact binary, little-endian, strings as `len u8` + ASCII.
//!
//! Read record:
//! `seq u32 | route str | meter str | flags u8 | [reading u64 if flags.0] | year u16 month day hour
//! minute second (u8 each) | read type u8 (ASCII K/R/E) | skip str (empty = none) | n u8 (0..=2) | n × trouble str`
//!
//! `flags`: bit 0 reading present, bits 1–2 verified (0 no, 1 high, 2 low); other bits must be 0.
//!
//! Route meter: `sequence u32 | meter str | account str | address str | customer str | service u8 |
//! previous u64 | low u64 | high u64 | dials u8 | location str`. Trouble code: `code str | text str`.
//!
//! The field limits are those of the fixed-width layout (see [`super::record`]).

use nom::bytes::complete::take;
use nom::multi::length_data;
use nom::number::complete::{le_u16, le_u32, le_u64, u8 as byte};
use nom::{IResult, Parser};

use super::record::{ReadRecord, ReadTime, ReadType, RouteMeter, TroubleCode, Verified};
use crate::error::{Error, Result};

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Validation caps every field at 30 bytes, so the length fits.
    out.push(s.len() as u8);
    out.extend_from_slice(s.as_bytes());
}

fn truncated(record: &'static str) -> impl Fn(nom::Err<nom::error::Error<&[u8]>>) -> Error {
    move |_| Error::invalid("record length", format!("binary {record} record is truncated"))
}

fn string(field: &'static str) -> impl Fn(&[u8]) -> IResult<&[u8], std::result::Result<String, Error>> {
    move |input| {
        let (input, raw) = length_data(byte).parse(input)?;
        let s = std::str::from_utf8(raw)
            .map(str::to_string)
            .map_err(|_| Error::invalid(field, "not ASCII"));
        Ok((input, s))
    }
}

/// Encoded size of a read record, without encoding it.
pub fn read_len(r: &ReadRecord) -> usize {
    4 + 1
        + r.route_id.len()
        + 1
        + r.meter_id.len()
        + 1
        + if r.reading.is_some() { 8 } else { 0 }
        + 7
        + 1
        + 1
        + r.skip_code.as_ref().map_or(0, String::len)
        + 1
        + r.trouble_codes.iter().map(|c| 1 + c.len()).sum::<usize>()
}

/// Appends a read record. The record must be valid.
pub fn emit_read(r: &ReadRecord, out: &mut Vec<u8>) -> Result<()> {
    r.validate()?;
    out.extend_from_slice(&r.seq.to_le_bytes());
    put_str(out, &r.route_id);
    put_str(out, &r.meter_id);
    let verified = match r.verified {
        Verified::No => 0,
        Verified::High => 1,
        Verified::Low => 2,
    };
    out.push(u8::from(r.reading.is_some()) | verified << 1);
    if let Some(v) = r.reading {
        out.extend_from_slice(&v.to_le_bytes());
    }
    let t = &r.taken_at;
    out.extend_from_slice(&t.year.to_le_bytes());
    out.extend_from_slice(&[t.month, t.day, t.hour, t.minute, t.second, r.read_type.code()]);
    put_str(out, r.skip_code.as_deref().unwrap_or(""));
    out.push(r.trouble_codes.len() as u8);
    for c in &r.trouble_codes {
        put_str(out, c);
    }
    Ok(())
}

/// Parses one read record; returns it and the rest of the input.
pub fn parse_read(input: &[u8]) -> Result<(ReadRecord, &[u8])> {
    let t = truncated("read");
    let (i, seq) = le_u32(input).map_err(&t)?;
    let (i, route_id) = string("route id")(i).map_err(&t)?;
    let (i, meter_id) = string("meter id")(i).map_err(&t)?;
    let (i, flags) = byte(i).map_err(&t)?;
    if flags & !0b111 != 0 {
        return Err(Error::invalid(
            "read flags",
            format!("reserved bits set in {flags:#04x}"),
        ));
    }
    let (i, reading) = if flags & 1 == 1 {
        let (i, v) = le_u64(i).map_err(&t)?;
        (i, Some(v))
    } else {
        (i, None)
    };
    let verified = match flags >> 1 {
        0 => Verified::No,
        1 => Verified::High,
        2 => Verified::Low,
        _ => return Err(Error::invalid("verified flag", "value 3")),
    };
    let (i, year) = le_u16(i).map_err(&t)?;
    let (i, f) = take(6usize).parse(i).map_err(&t)?;
    let taken_at = ReadTime::new(year, f[0], f[1], f[2], f[3], f[4])?;
    let read_type = ReadType::from_code(f[5])?;
    let (i, skip) = string("skip code")(i).map_err(&t)?;
    let skip = skip?;
    let (mut i, n) = byte(i).map_err(&t)?;
    if n > 2 {
        return Err(Error::invalid("trouble codes", format!("{n} codes, at most 2")));
    }
    let mut trouble_codes = Vec::with_capacity(usize::from(n));
    for _ in 0..n {
        let (rest, c) = string("trouble code")(i).map_err(&t)?;
        trouble_codes.push(c?);
        i = rest;
    }
    let record = ReadRecord {
        seq,
        route_id: route_id?,
        meter_id: meter_id?,
        reading,
        taken_at,
        read_type,
        verified,
        skip_code: (!skip.is_empty()).then_some(skip),
        trouble_codes,
    };
    record.validate()?;
    Ok((record, i))
}

/// Appends a route meter. The meter must be valid.
pub fn emit_meter(m: &RouteMeter, out: &mut Vec<u8>) -> Result<()> {
    m.validate()?;
    out.extend_from_slice(&m.sequence.to_le_bytes());
    put_str(out, &m.meter_id);
    put_str(out, &m.account);
    put_str(out, &m.address);
    put_str(out, &m.customer);
    out.push(m.service as u8);
    out.extend_from_slice(&m.previous_read.to_le_bytes());
    out.extend_from_slice(&m.low_limit.to_le_bytes());
    out.extend_from_slice(&m.high_limit.to_le_bytes());
    out.push(m.dials);
    put_str(out, &m.location);
    Ok(())
}

/// Parses one route meter.
pub fn parse_meter(input: &[u8]) -> Result<(RouteMeter, &[u8])> {
    let t = truncated("route meter");
    let (i, sequence) = le_u32(input).map_err(&t)?;
    let (i, meter_id) = string("meter id")(i).map_err(&t)?;
    let (i, account) = string("account")(i).map_err(&t)?;
    let (i, address) = string("service address")(i).map_err(&t)?;
    let (i, customer) = string("customer name")(i).map_err(&t)?;
    let (i, service) = byte(i).map_err(&t)?;
    let (i, previous_read) = le_u64(i).map_err(&t)?;
    let (i, low_limit) = le_u64(i).map_err(&t)?;
    let (i, high_limit) = le_u64(i).map_err(&t)?;
    let (i, dials) = byte(i).map_err(&t)?;
    let (i, location) = string("location note")(i).map_err(&t)?;
    let meter = RouteMeter {
        sequence,
        meter_id: meter_id?,
        account: account?,
        address: address?,
        customer: customer?,
        service: service as char,
        previous_read,
        low_limit,
        high_limit,
        dials,
        location: location?,
    };
    meter.validate()?;
    Ok((meter, i))
}

/// Appends a trouble code.
pub fn emit_code(c: &TroubleCode, out: &mut Vec<u8>) -> Result<()> {
    c.validate()?;
    put_str(out, &c.code);
    put_str(out, &c.text);
    Ok(())
}

/// Parses one trouble code.
pub fn parse_code(input: &[u8]) -> Result<(TroubleCode, &[u8])> {
    let t = truncated("trouble code");
    let (i, code) = string("trouble code")(input).map_err(&t)?;
    let (i, text) = string("trouble code text")(i).map_err(&t)?;
    let c = TroubleCode {
        code: code?,
        text: text?,
    };
    c.validate()?;
    Ok((c, i))
}

#[cfg(test)]
mod tests {
    use super::super::record::strategies;
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn read_parse_emit_reparse(r in strategies::read_record()) {
            let mut out = Vec::new();
            emit_read(&r, &mut out).unwrap();
            prop_assert_eq!(out.len(), read_len(&r));
            let (back, rest) = parse_read(&out).unwrap();
            prop_assert!(rest.is_empty());
            prop_assert_eq!(&back, &r);
            let mut again = Vec::new();
            emit_read(&back, &mut again).unwrap();
            prop_assert_eq!(again, out);
        }

        #[test]
        fn meter_parse_emit_reparse(m in strategies::route_meter()) {
            let mut out = Vec::new();
            emit_meter(&m, &mut out).unwrap();
            let (back, rest) = parse_meter(&out).unwrap();
            prop_assert!(rest.is_empty());
            prop_assert_eq!(back, m);
        }

        #[test]
        fn code_parse_emit_reparse(c in strategies::trouble_code()) {
            let mut out = Vec::new();
            emit_code(&c, &mut out).unwrap();
            let (back, _) = parse_code(&out).unwrap();
            prop_assert_eq!(back, c);
        }

        #[test]
        fn truncation_is_an_error_not_a_panic(r in strategies::read_record(), cut in 0usize..60) {
            let mut out = Vec::new();
            emit_read(&r, &mut out).unwrap();
            if cut < out.len() {
                prop_assert!(parse_read(&out[..cut]).is_err());
            }
        }
    }
}
