//! rtl_433's JSON output (`-F json`, and the events `-F mqtt` publishes) for the meter models it
//! decodes: ERT SCM, SCM+, IDM, NetIDM, Neptune R900/R900BCD and wireless M-Bus.
//!
//! A line is recognised by its `model` key. Each model's fields are turned back into the frame
//! the meter sent (ERT, R900) or taken as the telegram rtl_433 printed (wM-Bus), the check
//! values rtl_433 prints are verified, and the frame is decoded by the same code as a raw
//! frame, so an rtl_433 line and the rtlamr line or raw packet of the same transmission give
//! the same [`Decoded`] (and so the same meter key and de-duplication key).
//!
//! Field names, byte offsets and quirks: shared research `amr-radio.md` §11.5 and the rtl_433
//! test captures it cites (merbanan/rtl_433_tests `tests/ert/scm/01`, `tests/scmplus/01`,
//! `tests/idm/`, `tests/r900/01`, `tests/m_bus/`). Written from those facts, not from rtl_433's
//! (GPL) code.

mod ert;
pub mod fields;
mod time;
mod wmbus;

use jiff::Timestamp;
use serde_json::{Map, Value};

use crate::decode::{Keys, Protocol};
use crate::decoded::Decoded;
use crate::error::{Error, Result};
use fields::Fields;

pub use time::parse_time;

/// The longest `model` text quoted back when it is not a meter model.
const MODEL_SHOWN: usize = 40;

/// One rtl_433 line, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// The protocol the frame was decoded as.
    pub protocol: Protocol,
    /// The decoded frame, as the raw frame or the rtlamr line of the same packet decodes.
    pub decoded: Decoded,
    /// When rtl_433 heard it, when its `time` carries a zone (see [`parse_time`]).
    pub received_at: Option<Timestamp>,
}

/// The protocol of an rtl_433 model name, with the name as `'static` text for errors. rtl_433
/// has renamed models over the years (`IDM` / `ERT-IDM`, `NETIDM` / `NetIDM` / `ERT-NetIDM`,
/// `ERT-SCM` / `SCM`): every spelling seen in captures and in public bridges is accepted.
pub fn model(name: &str) -> Option<(Protocol, &'static str)> {
    Some(match name {
        "ERT-SCM" => (Protocol::Scm, "ERT-SCM"),
        "SCM" => (Protocol::Scm, "SCM"),
        "SCMplus" => (Protocol::ScmPlus, "SCMplus"),
        "ERT-SCMplus" => (Protocol::ScmPlus, "ERT-SCMplus"),
        "ERT-SCM+" => (Protocol::ScmPlus, "ERT-SCM+"),
        "IDM" => (Protocol::Idm, "IDM"),
        "ERT-IDM" => (Protocol::Idm, "ERT-IDM"),
        "NETIDM" => (Protocol::NetIdm, "NETIDM"),
        "NetIDM" => (Protocol::NetIdm, "NetIDM"),
        "ERT-NetIDM" => (Protocol::NetIdm, "ERT-NetIDM"),
        "ERT-NETIDM" => (Protocol::NetIdm, "ERT-NETIDM"),
        "Neptune-R900" => (Protocol::R900, "Neptune-R900"),
        "Neptune-R900BCD" => (Protocol::R900Bcd, "Neptune-R900BCD"),
        "Wireless-MBus" => (Protocol::Wmbus, "Wireless-MBus"),
        _ => return None,
    })
}

/// Decodes one rtl_433 line (a JSON object with `model`).
pub fn parse_map(map: &Map<String, Value>, keys: &Keys) -> Result<Line> {
    let name = match map.get("model") {
        Some(Value::String(s)) => s.as_str(),
        Some(other) => {
            return Err(Error::invalid(
                "model",
                format!(
                    "rtl_433 line: field \"model\" is {}, expected a string",
                    fields::shown(other)
                ),
            ));
        }
        None => return Err(Error::invalid("model", "rtl_433 line: field \"model\" missing")),
    };
    let (protocol, model) = self::model(name).ok_or_else(|| {
        let shown: String = name.chars().take(MODEL_SHOWN).collect();
        Error::Unsupported(format!(
            "rtl_433 model {shown:?}: not a meter model meterd reads (ERT-SCM, SCMplus, IDM, NETIDM, \
             Neptune-R900, Neptune-R900BCD, Wireless-MBus)"
        ))
    })?;
    let f = Fields { map, model };
    let received_at = time::of_line(&f)?;
    let (protocol, decoded) = match protocol {
        Protocol::Scm => (protocol, ert::scm(&f)?),
        Protocol::ScmPlus => (protocol, ert::scm_plus(&f)?),
        // IDM or NetIDM by the packet's ERT type, whichever decoder printed it.
        Protocol::Idm => ert::idm(&f, received_at)?,
        Protocol::NetIdm => ert::netidm(&f, received_at)?,
        Protocol::R900 => (protocol, ert::r900(&f, false)?),
        Protocol::R900Bcd => (protocol, ert::r900(&f, true)?),
        Protocol::Wmbus => (protocol, wmbus::telegram(&f, keys)?),
        other => return Err(Error::Unsupported(format!("{other} from rtl_433"))),
    };
    Ok(Line {
        protocol,
        decoded,
        received_at,
    })
}

/// Decodes one rtl_433 line given as text.
pub fn parse_line(line: &str, keys: &Keys) -> Result<Line> {
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(map)) => parse_map(&map, keys),
        Ok(_) => Err(Error::invalid("json", "expected a JSON object")),
        Err(e) => Err(Error::invalid("json", e.to_string())),
    }
}

#[cfg(test)]
mod tests;
