//! The protocol-neutral shape of one decoded frame: what `meterd decode` prints as one NDJSON
//! line and what ingest turns into reads.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One decoded frame or telegram.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decoded {
    /// `scm`, `scm+`, `idm`, `netidm`, `r900`, `r900bcd`, `wmbus`, `mbus`, `iec62056-21`, `dsmr`.
    pub protocol: String,
    /// ERT ID / EndpointID / ERTSerialNumber; M-Bus identification as 8 digits; meter serial or
    /// equipment id for IEC 62056-21 and DSMR.
    pub meter_id: String,
    /// Header fields. For ERT messages exactly rtlamr's JSON field names and values.
    pub fields: Map<String, Value>,
    /// The quantities the frame carries.
    pub readings: Vec<Reading>,
    /// Endpoint flags: `tamper`, `leak`, `reverse_flow`, `alarm`, `low_battery`, ...
    pub flags: Vec<String>,
}

/// One quantity carried by a frame. Names, units and functions come from the protocols' tables
/// almost always, so they are borrowed `'static` text (no allocation per reading); the JSON is
/// the same as with owned strings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    /// `register` for ERT consumption; for M-Bus `volume`, `volume_flow`, `energy`, `power`,
    /// `date_time`, `date`, `fabrication_no`, ...; for IEC/DSMR a name derived from the OBIS code.
    pub quantity: Cow<'static, str>,
    /// A number in `unit`, or a string for dates and texts.
    pub value: Value,
    /// `m3`, `m3/h`, `Wh`, `kWh`, `J`, `W`, ... or null.
    pub unit: Option<Cow<'static, str>>,
    /// M-Bus storage number.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub storage: Option<u64>,
    /// M-Bus tariff.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tariff: Option<u64>,
    /// M-Bus subunit.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub subunit: Option<u64>,
    /// M-Bus function field: `instantaneous`, `maximum`, `minimum`, `error`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub function: Option<Cow<'static, str>>,
    /// IEC 62056-21 / DSMR: the OBIS address as written.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub obis: Option<String>,
    /// Interval readings (IDM/NetIDM): the end of the interval, RFC 3339 UTC, when known.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub at: Option<String>,
}

impl Reading {
    /// A reading with only quantity, value and unit set.
    pub fn new(quantity: impl Into<Cow<'static, str>>, value: Value, unit: Option<&str>) -> Self {
        Reading {
            quantity: quantity.into(),
            value,
            unit: unit.map(|u| Cow::Owned(u.to_owned())),
            storage: None,
            tariff: None,
            subunit: None,
            function: None,
            obis: None,
            at: None,
        }
    }
}
