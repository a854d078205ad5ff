//! The meter data model shared by every stage: meters, reads, VEE flags, batches, quarantine.
//!
//! Values are exact decimals ([`Quantity`]); times are UTC [`Timestamp`]s kept to the
//! microsecond. Every enum here is stored by postcard as its variant index: **append new
//! variants at the end only** (or bump the store's schema version).

pub mod billing;
pub mod gateway;
pub mod interval;
pub mod limits;
mod quantity;
pub mod quarantine;
mod review;
mod route;

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

pub use billing::{Batch, BatchStatus};
pub use gateway::{GatewayState, HealthWindow, IntervalRead, OutboxEntry, RecentHealth, Undecodable};
pub use quantity::{QUANTITY_DECIMALS, Quantity, QuantityError, SCALE};
pub use quarantine::{QuarantineSummary, QuarantineUsage, Resolution, StoredQuarantine};
pub use review::{AuditAction, AuditEntry, DayAudit, HASH_LEN, IntervalChange, MeterChange, OrderStatus, ServiceOrder};
pub use route::{RouteLoad, RouteSkip};

/// Timestamps: RFC 3339 text for humans (JSON), microseconds since the epoch for the store.
pub mod time_serde {
    use jiff::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(t)
        } else {
            s.serialize_i64(t.as_microsecond())
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            s.parse().map_err(serde::de::Error::custom)
        } else {
            Timestamp::from_microsecond(i64::deserialize(d)?).map_err(serde::de::Error::custom)
        }
    }

    /// The same for `Option<Timestamp>`.
    pub mod option {
        use super::*;
        use serde::Serialize;

        pub fn serialize<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
            #[derive(serde::Serialize)]
            struct W<'a>(#[serde(with = "super")] &'a Timestamp);
            t.as_ref().map(W).serialize(s)
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
            #[derive(serde::Deserialize)]
            struct W(#[serde(with = "super")] Timestamp);
            Ok(Option::<W>::deserialize(d)?.map(|w| w.0))
        }
    }
}

/// Truncate a timestamp to the microsecond, the precision the store keeps (so that a read
/// compares equal to itself after a round trip through the store).
pub fn to_store_precision(t: Timestamp) -> Timestamp {
    Timestamp::from_microsecond(t.as_microsecond()).unwrap_or(t)
}

/// Which utility service a meter measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Service {
    Water,
    Gas,
    Electric,
}

impl Service {
    pub const ALL: [Service; 3] = [Service::Water, Service::Gas, Service::Electric];

    pub fn as_str(self) -> &'static str {
        match self {
            Service::Water => "water",
            Service::Gas => "gas",
            Service::Electric => "electric",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether the service at the meter is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MeterStatus {
    Active,
    Inactive,
}

impl MeterStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MeterStatus::Active => "active",
            MeterStatus::Inactive => "inactive",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [MeterStatus::Active, MeterStatus::Inactive]
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

/// A meter as billing knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meter {
    pub meter_id: String,
    pub account: String,
    pub route: String,
    /// Walk order within the route.
    pub sequence: u32,
    pub service: Service,
    /// Unit of the register value (`m3`, `gal`, `ccf`, `kWh`, ...).
    pub unit: String,
    /// Digits the register shows, including decimals.
    pub dials: u8,
    /// How many of the dials are after the decimal point.
    pub decimals: u8,
    /// Billing multiplier applied to consumption (CT ratio, 10× registers, ...).
    pub multiplier: Quantity,
    pub status: MeterStatus,
    pub address: String,
    pub notes: String,
}

/// Most dials a register may have (10^12 units still fits a [`Quantity`]).
pub const MAX_DIALS: u8 = 12;

impl Meter {
    /// The register modulus M = 10^(dials − decimals) value units: the register shows
    /// `0 ..= M − 10^-decimals` and then wraps to zero.
    pub fn modulus(&self) -> Quantity {
        let exp = u32::from(self.dials.saturating_sub(self.decimals).min(MAX_DIALS));
        Quantity::pow10(exp).expect("10^12 fits")
    }

    /// Check the meter's own fields (the importers call it for every row).
    pub fn check(&self) -> Result<(), String> {
        if self.meter_id.trim().is_empty() {
            return Err("meter_id is empty".into());
        }
        if self.dials == 0 || self.dials > MAX_DIALS {
            return Err(format!("dials must be 1..={MAX_DIALS}, got {}", self.dials));
        }
        if self.decimals >= self.dials {
            return Err(format!(
                "decimals ({}) must be fewer than dials ({})",
                self.decimals, self.dials
            ));
        }
        if !self.multiplier.is_positive() {
            return Err(format!("multiplier must be positive, got {}", self.multiplier));
        }
        Ok(())
    }
}

/// How a read was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadType {
    Manual,
    Radio,
    Probe,
    Gateway,
    Estimate,
    Customer,
}

impl ReadType {
    pub const ALL: [ReadType; 6] = [
        ReadType::Manual,
        ReadType::Radio,
        ReadType::Probe,
        ReadType::Gateway,
        ReadType::Estimate,
        ReadType::Customer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReadType::Manual => "manual",
            ReadType::Radio => "radio",
            ReadType::Probe => "probe",
            ReadType::Gateway => "gateway",
            ReadType::Estimate => "estimate",
            ReadType::Customer => "customer",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

/// Where a read is in its life: VEE sets `validated` or `flagged`; clerks accept, edit,
/// estimate or reject; an edit or estimate past the service's approval threshold waits as
/// `pending_approval` for a supervisor; billing batches and exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadStatus {
    Validated,
    Flagged,
    Accepted,
    Edited,
    Estimated,
    Rejected,
    Batched,
    Exported,
    /// A clerk's edit or estimate that changed the consumption by more than the service's
    /// approval threshold: the read carries the proposed value but is not billable until a
    /// supervisor other than its author approves it (declined: back to `flagged`). Last, so
    /// the stored codes of the others keep their meaning.
    PendingApproval,
}

impl ReadStatus {
    pub const ALL: [ReadStatus; 9] = [
        ReadStatus::Validated,
        ReadStatus::Flagged,
        ReadStatus::Accepted,
        ReadStatus::Edited,
        ReadStatus::Estimated,
        ReadStatus::Rejected,
        ReadStatus::Batched,
        ReadStatus::Exported,
        ReadStatus::PendingApproval,
    ];

    /// Statuses billing may take into a batch.
    pub const BILLABLE: [ReadStatus; 4] = [
        ReadStatus::Validated,
        ReadStatus::Accepted,
        ReadStatus::Edited,
        ReadStatus::Estimated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReadStatus::Validated => "validated",
            ReadStatus::Flagged => "flagged",
            ReadStatus::Accepted => "accepted",
            ReadStatus::Edited => "edited",
            ReadStatus::Estimated => "estimated",
            ReadStatus::Rejected => "rejected",
            ReadStatus::Batched => "batched",
            ReadStatus::Exported => "exported",
            ReadStatus::PendingApproval => "pending_approval",
        }
    }

    /// A stable one-byte code for index keys (the variant index).
    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.get(usize::from(code)).copied()
    }

    /// Whether a read with this status is trusted history for ADU (not held, not rejected, not
    /// an adjustment still awaiting approval).
    pub fn is_trusted(self) -> bool {
        !matches!(
            self,
            ReadStatus::Flagged | ReadStatus::Rejected | ReadStatus::PendingApproval
        )
    }
}

impl fmt::Display for ReadStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// VEE rule ids. They are part of the interface (CLI JSON, review filters, reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Rule {
    DialOverflow,
    Rollover,
    NegativeUsage,
    HighUsage,
    LowUsage,
    ZeroUsage,
    UsageOnInactive,
    ExactSameUsage,
    Duplicate,
    Tamper,
    Leak,
    ReverseFlow,
    UnknownMeter,
    MeterChange,
    EstimateLimit,
    Spike,
}

impl Rule {
    pub const ALL: [Rule; 16] = [
        Rule::DialOverflow,
        Rule::Rollover,
        Rule::NegativeUsage,
        Rule::HighUsage,
        Rule::LowUsage,
        Rule::ZeroUsage,
        Rule::UsageOnInactive,
        Rule::ExactSameUsage,
        Rule::Duplicate,
        Rule::Tamper,
        Rule::Leak,
        Rule::ReverseFlow,
        Rule::UnknownMeter,
        Rule::MeterChange,
        Rule::EstimateLimit,
        Rule::Spike,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Rule::DialOverflow => "dial_overflow",
            Rule::Rollover => "rollover",
            Rule::NegativeUsage => "negative_usage",
            Rule::HighUsage => "high_usage",
            Rule::LowUsage => "low_usage",
            Rule::ZeroUsage => "zero_usage",
            Rule::UsageOnInactive => "usage_on_inactive",
            Rule::ExactSameUsage => "exact_same_usage",
            Rule::Duplicate => "duplicate",
            Rule::Tamper => "tamper",
            Rule::Leak => "leak",
            Rule::ReverseFlow => "reverse_flow",
            Rule::UnknownMeter => "unknown_meter",
            Rule::MeterChange => "meter_change",
            Rule::EstimateLimit => "estimate_limit",
            Rule::Spike => "spike",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Whether a flag of this rule holds the read for review. Only a plausible rollover does not.
    pub fn holds_for_review(self) -> bool {
        self != Rule::Rollover
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A flag VEE raised, with the numbers behind it so a clerk sees *why*.
///
/// (No `skip_serializing_if` here or on any stored type: postcard is not self-describing.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flag {
    pub rule: Rule,
    /// What VEE expected (e.g. ADU × days, or the previous period's consumption).
    #[serde(default)]
    pub expected: Option<Quantity>,
    /// The limit the read crossed (high or low limit, the register modulus for overflow).
    #[serde(default)]
    pub limit: Option<Quantity>,
    /// What the read showed (consumption, or the value for overflow and duplicates).
    #[serde(default)]
    pub actual: Option<Quantity>,
    /// Register modulus M for rollover-related flags.
    #[serde(default)]
    pub modulus: Option<Quantity>,
    /// Free text (the code that raised a code flag, the conflicting read id, ...).
    #[serde(default)]
    pub detail: Option<String>,
}

impl Flag {
    /// The flag's numbers that are present, named as clerks see them: `expected`, `limit`,
    /// `actual`, `modulus`, in that order (the review screen, the CLI and the reports print them).
    pub fn numbers(&self) -> impl Iterator<Item = (&'static str, Quantity)> {
        [
            ("expected", self.expected),
            ("limit", self.limit),
            ("actual", self.actual),
            ("modulus", self.modulus),
        ]
        .into_iter()
        .filter_map(|(name, v)| v.map(|v| (name, v)))
    }

    pub fn new(rule: Rule) -> Self {
        Flag {
            rule,
            expected: None,
            limit: None,
            actual: None,
            modulus: None,
            detail: None,
        }
    }
    pub fn expected(mut self, q: Quantity) -> Self {
        self.expected = Some(q);
        self
    }
    pub fn limit(mut self, q: Quantity) -> Self {
        self.limit = Some(q);
        self
    }
    pub fn actual(mut self, q: Quantity) -> Self {
        self.actual = Some(q);
        self
    }
    pub fn modulus(mut self, q: Quantity) -> Self {
        self.modulus = Some(q);
        self
    }
    pub fn detail(mut self, d: impl Into<String>) -> Self {
        self.detail = Some(d.into());
        self
    }
}

/// Endpoint flags carried as read codes (radio endpoints, handheld keyed codes). VEE turns
/// each into a flag of the rule with the same name.
pub mod codes {
    pub const TAMPER: &str = "tamper";
    pub const LEAK: &str = "leak";
    pub const REVERSE_FLOW: &str = "reverse_flow";
    /// R900 "no use" days bucket (information only: VEE judges zero usage itself).
    pub const NO_USE: &str = "no_use";
    /// `register_modulus=N`: the transmitted register wraps at N value units (radio endpoints
    /// count in 24/27/32 bits, not in decimal dials); the rollover rule uses the smaller of
    /// this and the meter's dials.
    pub const REGISTER_MODULUS_PREFIX: &str = "register_modulus=";
}

/// What kind of source a read came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OriginKind {
    /// An imported file (`locator` = line number).
    File,
    /// A handheld recorder session in a cradle (`locator` = session / record).
    Cradle,
    /// An MQTT gateway message (`locator` = topic / packet id).
    Gateway,
    /// An optical probe or wired bus readout.
    Probe,
    /// Typed or changed by a clerk.
    Clerk,
}

/// Where exactly a read came from, so an auditor can go back to the source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub kind: OriginKind,
    /// File path, recorder serial, gateway id, ...
    pub source: String,
    /// Line, frame or record within the source.
    pub locator: String,
}

impl Origin {
    pub fn file_line(path: &str, line: u64) -> Self {
        Origin {
            kind: OriginKind::File,
            source: path.to_owned(),
            locator: format!("line {line}"),
        }
    }
}

/// A read as it arrives, before VEE and the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Read {
    pub meter_id: String,
    #[serde(with = "time_serde")]
    pub read_at: Timestamp,
    pub value: Quantity,
    /// The value exactly as the source wrote it (`00000123`, `051H05`, ...).
    pub raw: String,
    pub read_type: ReadType,
    /// Skip/trouble/note codes (`SC-04`, `TC-12`) and endpoint flags (`tamper`, `leak`, `reverse_flow`).
    pub codes: Vec<String>,
    /// Reader id, recorder serial or gateway id that took the read.
    pub reader: Option<String>,
    pub origin: Origin,
}

impl Read {
    pub fn has_code(&self, code: &str) -> bool {
        self.codes.iter().any(|c| c.eq_ignore_ascii_case(code))
    }

    /// The register modulus the source declared with a `register_modulus=N` code.
    pub fn register_modulus(&self) -> Option<Quantity> {
        self.codes
            .iter()
            .find_map(|c| c.strip_prefix(codes::REGISTER_MODULUS_PREFIX))
            .and_then(|v| Quantity::parse(v).ok())
    }
}

/// Stable id of a stored read.
pub type ReadId = u64;
/// Id of a billing batch.
pub type BatchId = u64;

/// A read in the store, with what VEE decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredRead {
    pub id: ReadId,
    pub read: Read,
    pub status: ReadStatus,
    pub flags: Vec<Flag>,
    /// Consumption since the previous read (rollover-corrected); `None` for a meter's first read.
    pub consumption: Option<Quantity>,
    /// When meterd stored it.
    #[serde(with = "time_serde")]
    pub received_at: Timestamp,
    /// The billing batch that took it, if any.
    pub batch: Option<BatchId>,
}

impl StoredRead {
    pub fn has_flag(&self, rule: Rule) -> bool {
        self.flags.iter().any(|f| f.rule == rule)
    }

    /// Whether the read is an estimate (sent as one, or estimated by a clerk).
    pub fn is_estimate(&self) -> bool {
        self.read.read_type == ReadType::Estimate || self.status == ReadStatus::Estimated
    }

    /// The few numbers history needs (kept in the store's per-meter time index).
    pub fn summary(&self) -> ReadSummary {
        ReadSummary {
            id: self.id,
            read_at: self.read.read_at,
            value: self.read.value,
            consumption: self.consumption,
            status: self.status,
            excluded: self.has_flag(Rule::Duplicate) || self.has_flag(Rule::DialOverflow),
        }
    }
}

/// What VEE and the pipeline need of a stored read as history, without the whole record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadSummary {
    pub id: ReadId,
    pub read_at: Timestamp,
    pub value: Quantity,
    pub consumption: Option<Quantity>,
    pub status: ReadStatus,
    /// Not the meter's register history whatever its status: a conflicting second value
    /// (`duplicate`) or a value the register cannot show (`dial_overflow`).
    pub excluded: bool,
}

impl ReadSummary {
    /// Counts as the meter's history (a previous read, a period for ADU): not rejected, not
    /// [`excluded`](Self::excluded).
    pub fn is_history(&self) -> bool {
        self.status != ReadStatus::Rejected && !self.excluded
    }
}

/// Input meterd could not decode, kept with the reason so nothing is lost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineEntry {
    /// Where it came from (topic, port, file).
    pub source: String,
    pub reason: String,
    pub payload: Vec<u8>,
    #[serde(with = "time_serde")]
    pub received_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_status_codes_and_stored_bytes_of_the_older_variants_do_not_move() {
        // The status index keys on `code()` and reads carry postcard's variant index: a new
        // variant in the middle would make every stored read after it mean something else.
        let before = [
            "validated",
            "flagged",
            "accepted",
            "edited",
            "estimated",
            "rejected",
            "batched",
            "exported",
        ];
        for (i, name) in before.iter().enumerate() {
            let s = ReadStatus::from_code(i as u8).unwrap();
            assert_eq!(s.as_str(), *name);
            assert_eq!(s.code(), i as u8);
            assert_eq!(postcard::to_allocvec(&s).unwrap(), [i as u8]);
        }
        let p = ReadStatus::PendingApproval;
        assert_eq!((p.code(), ReadStatus::from_code(8)), (8, Some(p)));
        assert_eq!(serde_json::to_string(&p).unwrap(), "\"pending_approval\"");
        assert!(!ReadStatus::BILLABLE.contains(&p) && !p.is_trusted());
        for (i, s) in ReadStatus::ALL.iter().enumerate() {
            assert_eq!(usize::from(s.code()), i);
        }
    }
}
