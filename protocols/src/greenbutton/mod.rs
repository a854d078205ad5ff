//! Green Button "Download My Data": NAESB REQ.21 ESPI resources in an Atom feed
//! (`interval-data.md` §4). Element names, their order and the code lists follow the Green
//! Button Alliance's published schema (Apache-2.0): GreenButtonAlliance/OpenESPI-Common-java
//! `src/main/resources/schemas/v3.3/usage.xsd` (ESPI 3.3).
//!
//! The feed holds one entry per resource, each tied to the others by Atom links (`self`,
//! `up`, `related`) whose paths follow the ESPI resource layout
//! (`/espi/1_1/resource/Subscription/{s}/UsagePoint/{u}/MeterReading/{m}/IntervalBlock/{b}`):
//! a `UsagePoint` (service kind), its `LocalTimeParameters`, then per channel a
//! `MeterReading`, its `ReadingType` and one `IntervalBlock` per block of readings (a day, as
//! meterd writes them).
//!
//! # Modules
//! - [`scale`]: micro-unit quantities as ESPI integers with a `powerOfTenMultiplier`.
//! - [`write`]: the feed as XML text (written as strings: the shapes are fixed and small, so
//!   no XML library is needed; every text and attribute is escaped).

pub mod scale;
pub mod write;

use jiff::Timestamp;

pub use scale::{choose_multiplier, to_espi_value};
pub use write::write_feed;

/// The ESPI namespace.
pub const ESPI_NS: &str = "http://naesb.org/espi";
/// The Atom namespace.
pub const ATOM_NS: &str = "http://www.w3.org/2005/Atom";

/// `ServiceKind` of a usage point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceKind {
    Electricity,
    Gas,
    Water,
}

impl ServiceKind {
    pub fn code(self) -> u8 {
        match self {
            ServiceKind::Electricity => 0,
            ServiceKind::Gas => 1,
            ServiceKind::Water => 2,
        }
    }
}

/// `FlowDirectionKind`: forward (delivered to the customer) or reverse (received from them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowDirection {
    Forward,
    Reverse,
}

impl FlowDirection {
    pub fn code(self) -> u8 {
        match self {
            FlowDirection::Forward => 1,
            FlowDirection::Reverse => 19,
        }
    }
}

/// `UnitSymbolKind` codes meterd's channels use.
pub mod uom {
    /// Watt-hour.
    pub const WH: u16 = 72;
    /// Cubic metre.
    pub const M3: u16 = 42;
    /// Cubic foot.
    pub const FT3: u16 = 119;
    /// US gallon.
    pub const US_GAL: u16 = 128;
    /// Therm.
    pub const THERM: u16 = 169;
}

/// `QualityOfReading` codes (the schema's list; a reading without `ReadingQuality` is valid).
pub mod quality {
    /// Passed every validation check, or verified.
    pub const VALID: u8 = 0;
    /// Replaced or approved by a person.
    pub const MANUALLY_EDITED: u8 = 7;
    /// Estimated from a reference day.
    pub const ESTIMATED_REFERENCE_DAY: u8 = 8;
    /// Estimated by linear interpolation.
    pub const ESTIMATED_LINEAR: u8 = 9;
    /// Failed one or more checks.
    pub const QUESTIONABLE: u8 = 10;
    /// Calculated, not measured directly.
    pub const DERIVED: u8 = 11;
    /// A forecast.
    pub const PROJECTED: u8 = 12;
    /// Mixed characteristics.
    pub const MIXED: u8 = 13;
    /// Not yet through validation, editing and estimation.
    pub const RAW: u8 = 14;
    /// Normalized for weather.
    pub const NORMALIZED_FOR_WEATHER: u8 = 15;
    pub const OTHER: u8 = 16;
    /// Validated and possibly edited or estimated by approved procedures.
    pub const VALIDATED: u8 = 17;
    /// Failed a check but determined to be actual usage.
    pub const VERIFIED: u8 = 18;
}

/// `AccumulationKind` deltaData: each value is the quantity of its interval.
pub const ACCUMULATION_DELTA_DATA: u8 = 4;
/// `MeasurementKind` energy.
pub const KIND_ENERGY: u16 = 12;
/// `CommodityKind` electricity secondary metered (the usual residential value).
pub const COMMODITY_ELECTRICITY: u16 = 1;

/// Most characters of a title or of the base URI.
pub const MAX_TEXT: usize = 256;

/// A whole feed: the usage points of one subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feed {
    /// Where the resource paths hang, without a trailing slash
    /// (`https://utility.example/DataCustodian`).
    pub base_uri: String,
    pub subscription_id: u64,
    pub title: String,
    /// The feed's and every entry's `updated` (and `published`) time.
    pub updated: Timestamp,
    pub usage_points: Vec<UsagePoint>,
}

/// A service point with its channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsagePoint {
    pub id: u64,
    pub title: String,
    pub kind: ServiceKind,
    /// Standard time offset from UTC, seconds (`-18000` for US Eastern).
    pub tz_offset_secs: i32,
    /// Daylight saving time, if the zone has it.
    pub dst: Option<Dst>,
    pub readings: Vec<Reading>,
}

/// Daylight saving time of [`UsagePoint`]'s `LocalTimeParameters`: the offset added in summer
/// and the schema's 32-bit start and end rules (`DstRuleType`), written as 8 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dst {
    pub offset_secs: i32,
    pub start_rule: u32,
    pub end_rule: u32,
}

/// One channel: a `MeterReading` with its `ReadingType` and blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    pub title: String,
    /// `CommodityKind` ([`COMMODITY_ELECTRICITY`], ...).
    pub commodity: u16,
    /// `MeasurementKind` ([`KIND_ENERGY`], ...).
    pub kind: u16,
    /// `UnitSymbolKind` of the values ([`uom`]).
    pub uom: u16,
    /// The unit of the micro-unit input as a power of ten of `uom`: kWh input with uom Wh is
    /// 3, m³ input with uom m³ is 0.
    pub unit_exponent: i8,
    pub flow: FlowDirection,
    /// Default interval length, seconds.
    pub interval_secs: u32,
    /// The `powerOfTenMultiplier` to write, or `None` to choose one ([`choose_multiplier`]).
    pub power_of_ten: Option<i8>,
    pub blocks: Vec<Block>,
}

/// An `IntervalBlock`: a span of time and the readings inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// Epoch seconds.
    pub start: i64,
    pub duration_secs: u32,
    pub readings: Vec<IntervalValue>,
}

/// One interval's value, micro-units of the reading's unit; `None` (missing) is left out of
/// the feed, as ESPI has no "no value" reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntervalValue {
    /// Epoch seconds.
    pub start: i64,
    pub duration_secs: u32,
    pub value: Option<i64>,
    /// A [`quality`] code, written as the reading's `ReadingQuality`.
    pub quality: Option<u8>,
}

#[cfg(test)]
mod tests;
