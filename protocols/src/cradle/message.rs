//! Session messages carried in the link's byte stream (length-prefixed there); first byte =
//! message code.
//! Integers are little-endian; strings are `len u8` + ASCII. Records inside `READS`, `METERS`
//! and `CODES` use the firmware's record format (ASCII lines for firmware 1, binary for 2).

use serde::{Deserialize, Serialize};

use super::record::{ReadRecord, RouteMeter, TroubleCode, check_text};
use super::{ascii, binary};
use crate::error::{Error, Result};

/// Recorder firmware generation: decides the record format and the link window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Firmware {
    /// Fixed-width ASCII records, stop-and-wait (window 1), frame payloads up to 256 bytes.
    V1,
    /// Binary records, sliding window of 8 frames, frame payloads up to 512 bytes.
    V2,
}

impl Firmware {
    pub fn code(self) -> u8 {
        match self {
            Firmware::V1 => 1,
            Firmware::V2 => 2,
        }
    }

    pub fn from_code(c: u8) -> Result<Self> {
        match c {
            1 => Ok(Firmware::V1),
            2 => Ok(Firmware::V2),
            _ => Err(Error::invalid("firmware", format!("unknown generation {c}"))),
        }
    }

    /// Frames in flight before waiting for an acknowledgement.
    pub fn window(self) -> u8 {
        match self {
            Firmware::V1 => 1,
            Firmware::V2 => 8,
        }
    }

    /// Largest DATA frame payload the firmware sends or accepts.
    pub fn max_payload(self) -> usize {
        match self {
            Firmware::V1 => 256,
            Firmware::V2 => 512,
        }
    }

    /// Encoded size of a read record in this firmware's format.
    pub fn read_len(self, r: &ReadRecord) -> usize {
        match self {
            Firmware::V1 => ascii::READ_LINE_LEN + 2,
            Firmware::V2 => binary::read_len(r),
        }
    }

    pub fn emit_read(self, r: &ReadRecord, out: &mut Vec<u8>) -> Result<()> {
        match self {
            Firmware::V1 => ascii::emit_read(r, out),
            Firmware::V2 => binary::emit_read(r, out),
        }
    }

    pub fn parse_read(self, input: &[u8]) -> Result<(ReadRecord, &[u8])> {
        match self {
            Firmware::V1 => ascii::parse_read(input),
            Firmware::V2 => binary::parse_read(input),
        }
    }

    pub fn emit_meter(self, m: &RouteMeter, out: &mut Vec<u8>) -> Result<()> {
        match self {
            Firmware::V1 => ascii::emit_meter(m, out),
            Firmware::V2 => binary::emit_meter(m, out),
        }
    }

    pub fn parse_meter(self, input: &[u8]) -> Result<(RouteMeter, &[u8])> {
        match self {
            Firmware::V1 => ascii::parse_meter(input),
            Firmware::V2 => binary::parse_meter(input),
        }
    }

    pub fn emit_code(self, c: &TroubleCode, out: &mut Vec<u8>) -> Result<()> {
        match self {
            Firmware::V1 => ascii::emit_code(c, out),
            Firmware::V2 => binary::emit_code(c, out),
        }
    }

    pub fn parse_code(self, input: &[u8]) -> Result<(TroubleCode, &[u8])> {
        match self {
            Firmware::V1 => ascii::parse_code(input),
            Firmware::V2 => binary::parse_code(input),
        }
    }
}

/// What a recorder says about itself when docked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceInfo {
    /// Device serial number (≤ 16): with the read sequence, the key that makes reads unique.
    pub serial: String,
    pub model: String,
    pub firmware: Firmware,
    /// Firmware version string, e.g. `"2.3.1"`.
    pub firmware_version: String,
    /// Meters the recorder can hold.
    pub capacity: u32,
    /// Routes currently loaded.
    pub routes: Vec<String>,
    /// Reads waiting to be unloaded.
    pub reads_pending: u32,
    /// Sequence number the recorder's next read will get. It never goes back; a host whose
    /// store already holds reads at or above it is talking to a recorder whose memory was
    /// reset, and must not trust its committed watermark for it.
    pub next_seq: u32,
}

/// A session message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// R→H: the recorder's identity and state.
    Hello(DeviceInfo),
    /// H→R: send pending reads with a sequence number above `after` (all when `None`).
    Unload {
        after: Option<u32>,
    },
    /// R→H: a batch of reads, in sequence order.
    Reads(Vec<ReadRecord>),
    /// R→H: the unload is complete; `last_seq` is the highest pending read (`None` = no reads).
    UnloadDone {
        sent: u32,
        last_seq: Option<u32>,
    },
    /// H→R: delete reads up to and including `through` and unload the routes. Sent only after
    /// the host committed every read up to `through`.
    Clear {
        through: Option<u32>,
    },
    /// R→H: reads deleted and still held.
    Cleared {
        deleted: u32,
        remaining: u32,
    },
    /// H→R: a route follows (`CODES`, `METERS`… then `LOAD_END`).
    LoadRoute {
        route_id: String,
        meters: u32,
        codes: u32,
    },
    TroubleCodes(Vec<TroubleCode>),
    Meters(Vec<RouteMeter>),
    /// H→R: the route announced by the last `LOAD_ROUTE` is complete.
    LoadEnd,
    /// R→H: a route was stored.
    Loaded {
        route_id: String,
        meters: u32,
    },
    /// R→H: the last request could not be honoured (e.g. capacity).
    Refused {
        reason: String,
    },
    /// H→R: set the recorder's clock (seconds since 1970, local civil time).
    SetClock {
        local_unix: i64,
    },
    /// R→H: the clock was set; `previous` is what it showed before.
    ClockSet {
        previous: Option<i64>,
    },
    /// H→R: session over; the reader may take the recorder.
    Bye,
}

mod code {
    pub const HELLO: u8 = 0x10;
    pub const UNLOAD: u8 = 0x11;
    pub const READS: u8 = 0x12;
    pub const UNLOAD_DONE: u8 = 0x13;
    pub const CLEAR: u8 = 0x14;
    pub const CLEARED: u8 = 0x15;
    pub const LOAD_ROUTE: u8 = 0x16;
    pub const CODES: u8 = 0x17;
    pub const METERS: u8 = 0x18;
    pub const LOAD_END: u8 = 0x19;
    pub const LOADED: u8 = 0x1A;
    pub const REFUSED: u8 = 0x1B;
    pub const SET_CLOCK: u8 = 0x1C;
    pub const CLOCK_SET: u8 = 0x1D;
    pub const BYE: u8 = 0x1E;
}

/// Bytes a `READS`/`METERS`/`CODES` message spends before its records.
pub const BATCH_HEADER_LEN: usize = 3;

fn put_str(out: &mut Vec<u8>, field: &'static str, s: &str, max: usize) -> Result<()> {
    check_text(field, s, max)?;
    out.push(s.len() as u8);
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn put_opt_u32(out: &mut Vec<u8>, v: Option<u32>) {
    match v {
        Some(v) => {
            out.push(1);
            out.extend_from_slice(&v.to_le_bytes());
        }
        None => out.push(0),
    }
}

impl Message {
    /// The message's name as used in logs and transcripts.
    pub fn name(&self) -> &'static str {
        match self {
            Message::Hello(_) => "HELLO",
            Message::Unload { .. } => "UNLOAD",
            Message::Reads(_) => "READS",
            Message::UnloadDone { .. } => "UNLOAD_DONE",
            Message::Clear { .. } => "CLEAR",
            Message::Cleared { .. } => "CLEARED",
            Message::LoadRoute { .. } => "LOAD_ROUTE",
            Message::TroubleCodes(_) => "CODES",
            Message::Meters(_) => "METERS",
            Message::LoadEnd => "LOAD_END",
            Message::Loaded { .. } => "LOADED",
            Message::Refused { .. } => "REFUSED",
            Message::SetClock { .. } => "SET_CLOCK",
            Message::ClockSet { .. } => "CLOCK_SET",
            Message::Bye => "BYE",
        }
    }

    /// Encodes the message (the link adds the length prefix).
    pub fn encode(&self, fw: Firmware) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        match self {
            Message::Hello(d) => {
                out.push(code::HELLO);
                put_str(&mut out, "serial", &d.serial, 16)?;
                put_str(&mut out, "model", &d.model, 30)?;
                out.push(d.firmware.code());
                put_str(&mut out, "firmware version", &d.firmware_version, 30)?;
                out.extend_from_slice(&d.capacity.to_le_bytes());
                out.extend_from_slice(&d.reads_pending.to_le_bytes());
                out.extend_from_slice(&d.next_seq.to_le_bytes());
                if d.routes.len() > 255 {
                    return Err(Error::invalid("routes", "more than 255 routes loaded"));
                }
                out.push(d.routes.len() as u8);
                for r in &d.routes {
                    put_str(&mut out, "route id", r, 10)?;
                }
            }
            Message::Unload { after } => {
                out.push(code::UNLOAD);
                put_opt_u32(&mut out, *after);
            }
            Message::Reads(reads) => {
                out.push(code::READS);
                out.extend_from_slice(&(reads.len() as u16).to_le_bytes());
                for r in reads {
                    fw.emit_read(r, &mut out)?;
                }
            }
            Message::UnloadDone { sent, last_seq } => {
                out.push(code::UNLOAD_DONE);
                out.extend_from_slice(&sent.to_le_bytes());
                put_opt_u32(&mut out, *last_seq);
            }
            Message::Clear { through } => {
                out.push(code::CLEAR);
                put_opt_u32(&mut out, *through);
            }
            Message::Cleared { deleted, remaining } => {
                out.push(code::CLEARED);
                out.extend_from_slice(&deleted.to_le_bytes());
                out.extend_from_slice(&remaining.to_le_bytes());
            }
            Message::LoadRoute {
                route_id,
                meters,
                codes,
            } => {
                out.push(code::LOAD_ROUTE);
                put_str(&mut out, "route id", route_id, 10)?;
                out.extend_from_slice(&meters.to_le_bytes());
                out.extend_from_slice(&codes.to_le_bytes());
            }
            Message::TroubleCodes(codes) => {
                out.push(code::CODES);
                out.extend_from_slice(&(codes.len() as u16).to_le_bytes());
                for c in codes {
                    fw.emit_code(c, &mut out)?;
                }
            }
            Message::Meters(meters) => {
                out.push(code::METERS);
                out.extend_from_slice(&(meters.len() as u16).to_le_bytes());
                for m in meters {
                    fw.emit_meter(m, &mut out)?;
                }
            }
            Message::LoadEnd => out.push(code::LOAD_END),
            Message::Loaded { route_id, meters } => {
                out.push(code::LOADED);
                put_str(&mut out, "route id", route_id, 10)?;
                out.extend_from_slice(&meters.to_le_bytes());
            }
            Message::Refused { reason } => {
                out.push(code::REFUSED);
                let reason: String = reason
                    .chars()
                    .filter(|c| c.is_ascii_graphic() || *c == ' ')
                    .take(200)
                    .collect();
                put_str(&mut out, "reason", reason.trim_end(), 200)?;
            }
            Message::SetClock { local_unix } => {
                out.push(code::SET_CLOCK);
                out.extend_from_slice(&local_unix.to_le_bytes());
            }
            Message::ClockSet { previous } => {
                out.push(code::CLOCK_SET);
                match previous {
                    Some(p) => {
                        out.push(1);
                        out.extend_from_slice(&p.to_le_bytes());
                    }
                    None => out.push(0),
                }
            }
            Message::Bye => out.push(code::BYE),
        }
        Ok(out)
    }

    /// Decodes one message as delivered by the link.
    pub fn decode(payload: &[u8], fw: Firmware) -> Result<Message> {
        let mut r = Reader(payload);
        let code = r.u8("message code")?;
        let msg = match code {
            code::HELLO => Message::Hello(DeviceInfo {
                serial: r.str("serial", 16)?,
                model: r.str("model", 30)?,
                firmware: Firmware::from_code(r.u8("firmware")?)?,
                firmware_version: r.str("firmware version", 30)?,
                capacity: r.u32("capacity")?,
                reads_pending: r.u32("reads pending")?,
                next_seq: r.u32("next sequence")?,
                routes: {
                    let n = r.u8("route count")?;
                    (0..n).map(|_| r.str("route id", 10)).collect::<Result<_>>()?
                },
            }),
            code::UNLOAD => Message::Unload {
                after: r.opt_u32("unload after")?,
            },
            code::READS => Message::Reads(r.records("reads", |i| fw.parse_read(i))?),
            code::UNLOAD_DONE => Message::UnloadDone {
                sent: r.u32("sent")?,
                last_seq: r.opt_u32("last seq")?,
            },
            code::CLEAR => Message::Clear {
                through: r.opt_u32("clear through")?,
            },
            code::CLEARED => Message::Cleared {
                deleted: r.u32("deleted")?,
                remaining: r.u32("remaining")?,
            },
            code::LOAD_ROUTE => Message::LoadRoute {
                route_id: r.str("route id", 10)?,
                meters: r.u32("meter count")?,
                codes: r.u32("code count")?,
            },
            code::CODES => Message::TroubleCodes(r.records("trouble codes", |i| fw.parse_code(i))?),
            code::METERS => Message::Meters(r.records("meters", |i| fw.parse_meter(i))?),
            code::LOAD_END => Message::LoadEnd,
            code::LOADED => Message::Loaded {
                route_id: r.str("route id", 10)?,
                meters: r.u32("meters")?,
            },
            code::REFUSED => Message::Refused {
                reason: r.str("reason", 200)?,
            },
            code::SET_CLOCK => Message::SetClock {
                local_unix: r.i64("clock")?,
            },
            code::CLOCK_SET => Message::ClockSet {
                previous: if r.u8("clock flag")? == 1 {
                    Some(r.i64("previous clock")?)
                } else {
                    None
                },
            },
            code::BYE => Message::Bye,
            other => {
                return Err(Error::invalid("message code", format!("unknown message {other:#04x}")));
            }
        };
        if !r.0.is_empty() {
            return Err(Error::invalid(
                "message length",
                format!("{} trailing bytes after {}", r.0.len(), msg.name()),
            ));
        }
        Ok(msg)
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, field: &'static str, n: usize) -> Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(Error::invalid(field, "message truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8> {
        Ok(self.take(field, 1)?[0])
    }

    fn u16(&mut self, field: &'static str) -> Result<u16> {
        Ok(u16::from_le_bytes(self.take(field, 2)?.try_into().expect("2 bytes")))
    }

    fn u32(&mut self, field: &'static str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(field, 4)?.try_into().expect("4 bytes")))
    }

    fn i64(&mut self, field: &'static str) -> Result<i64> {
        Ok(i64::from_le_bytes(self.take(field, 8)?.try_into().expect("8 bytes")))
    }

    fn opt_u32(&mut self, field: &'static str) -> Result<Option<u32>> {
        match self.u8(field)? {
            0 => Ok(None),
            1 => Ok(Some(self.u32(field)?)),
            f => Err(Error::invalid(field, format!("option flag {f}"))),
        }
    }

    fn str(&mut self, field: &'static str, max: usize) -> Result<String> {
        let n = usize::from(self.u8(field)?);
        let raw = self.take(field, n)?;
        let s = std::str::from_utf8(raw)
            .map_err(|_| Error::invalid(field, "not ASCII"))?
            .to_string();
        check_text(field, &s, max)?;
        Ok(s)
    }

    fn records<T>(&mut self, field: &'static str, parse: impl Fn(&'a [u8]) -> Result<(T, &'a [u8])>) -> Result<Vec<T>> {
        let n = self.u16(field)?;
        let mut out = Vec::with_capacity(usize::from(n).min(256));
        for k in 0..n {
            let (rec, rest) = parse(self.0).map_err(|e| match e {
                Error::Invalid { field, detail } => Error::Invalid {
                    field,
                    detail: format!("record {} of {n}: {detail}", k + 1),
                },
                other => other,
            })?;
            out.push(rec);
            self.0 = rest;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::super::record::strategies;
    use super::*;
    use proptest::prelude::*;

    fn round_trip(m: &Message, fw: Firmware) {
        let bytes = m.encode(fw).unwrap();
        let back = Message::decode(&bytes, fw).unwrap();
        assert_eq!(&back, m);
        assert_eq!(back.encode(fw).unwrap(), bytes);
    }

    #[test]
    fn control_messages_round_trip() {
        let hello = Message::Hello(DeviceInfo {
            serial: "HH-000123".into(),
            model: "AR-5".into(),
            firmware: Firmware::V2,
            firmware_version: "2.3.1".into(),
            capacity: 5000,
            routes: vec!["R01".into(), "R02".into()],
            reads_pending: 17,
            next_seq: 1017,
        });
        for fw in [Firmware::V1, Firmware::V2] {
            for m in [
                hello.clone(),
                Message::Unload { after: None },
                Message::Unload { after: Some(99) },
                Message::UnloadDone {
                    sent: 3,
                    last_seq: Some(7),
                },
                Message::Clear { through: Some(7) },
                Message::Clear { through: None },
                Message::Cleared {
                    deleted: 3,
                    remaining: 0,
                },
                Message::LoadRoute {
                    route_id: "R01".into(),
                    meters: 3,
                    codes: 2,
                },
                Message::LoadEnd,
                Message::Loaded {
                    route_id: "R01".into(),
                    meters: 3,
                },
                Message::Refused {
                    reason: "capacity 10 meters".into(),
                },
                Message::SetClock {
                    local_unix: 1_795_339_805,
                },
                Message::ClockSet { previous: Some(-5) },
                Message::ClockSet { previous: None },
                Message::Bye,
            ] {
                round_trip(&m, fw);
            }
        }
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut b = Message::Bye.encode(Firmware::V2).unwrap();
        b.push(0);
        assert!(Message::decode(&b, Firmware::V2).is_err());
    }

    proptest! {
        #[test]
        fn batches_round_trip(reads in proptest::collection::vec(strategies::read_record(), 0..5),
                              meters in proptest::collection::vec(strategies::route_meter(), 0..3),
                              codes in proptest::collection::vec(strategies::trouble_code(), 0..3)) {
            for fw in [Firmware::V1, Firmware::V2] {
                round_trip(&Message::Reads(reads.clone()), fw);
                round_trip(&Message::Meters(meters.clone()), fw);
                round_trip(&Message::TroubleCodes(codes.clone()), fw);
            }
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = Message::decode(&bytes, Firmware::V1);
            let _ = Message::decode(&bytes, Firmware::V2);
        }
    }
}
