//! VEE factors, per service and read type, and the limits of the later rules.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{Quantity, ReadType, Service};

/// The high/low factors of one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceFactors {
    /// H = max(high_factor × E, E + min_high_delta).
    pub high_factor: Quantity,
    /// low limit = low_factor × E.
    pub low_factor: Quantity,
    /// Smallest margin above E before a read is high, in register units (keeps tiny E from
    /// flagging every read).
    pub min_high_delta: Quantity,
    /// Factors for one read type that differ from the service's (Oracle's HILO table is per
    /// unit of measure and read type: a customer read may get a wider band than a radio read).
    /// `[vee.water.read_type.customer]` with `high_factor` and/or `low_factor`.
    pub read_type: BTreeMap<ReadType, ReadTypeFactors>,
}

/// High/low factors of one read type; a missing one falls back to the service's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReadTypeFactors {
    pub high_factor: Option<Quantity>,
    pub low_factor: Option<Quantity>,
}

impl Default for ServiceFactors {
    fn default() -> Self {
        ServiceFactors {
            high_factor: Quantity::from_micros(1_800_000),
            low_factor: Quantity::from_micros(400_000),
            min_high_delta: Quantity::from_micros(10_000_000),
            read_type: BTreeMap::new(),
        }
    }
}

impl ServiceFactors {
    /// The factors that apply to reads of `read_type`.
    pub fn for_read_type(&self, read_type: ReadType) -> ServiceFactors {
        let mut f = ServiceFactors {
            read_type: BTreeMap::new(),
            ..self.clone()
        };
        if let Some(o) = self.read_type.get(&read_type) {
            f.high_factor = o.high_factor.unwrap_or(f.high_factor);
            f.low_factor = o.low_factor.unwrap_or(f.low_factor);
        }
        f
    }
}

/// VEE configuration: factors for each service (the `[vee.water]`, `[vee.gas]`,
/// `[vee.electric]` tables of `meterd.toml`) and the limits of the other rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VeeConfig {
    pub water: ServiceFactors,
    pub gas: ServiceFactors,
    pub electric: ServiceFactors,
    /// `estimate_limit` flags an estimate that follows more than this many consecutive
    /// estimates of the same meter (default 2: the third estimate in a row is held).
    pub estimate_limit: u32,
    /// `spike` flags an interval whose consumption exceeds this factor × the third-highest
    /// interval of the window (default 3).
    pub spike_factor: Quantity,
    /// The window of interval data the spike check compares, in hours (default 24).
    pub spike_window_hours: u32,
}

impl Default for VeeConfig {
    fn default() -> Self {
        VeeConfig {
            water: ServiceFactors::default(),
            gas: ServiceFactors::default(),
            electric: ServiceFactors::default(),
            estimate_limit: 2,
            spike_factor: Quantity::from_micros(3_000_000),
            spike_window_hours: 24,
        }
    }
}

impl VeeConfig {
    pub fn factors(&self, service: Service) -> &ServiceFactors {
        match service {
            Service::Water => &self.water,
            Service::Gas => &self.gas,
            Service::Electric => &self.electric,
        }
    }

    /// Factors must make sense: positive high factor ≥ 1, low factor in [0, 1), delta ≥ 0.
    pub fn check(&self) -> Result<(), String> {
        for s in Service::ALL {
            let f = self.factors(s);
            let one = Quantity::from_micros(crate::model::SCALE);
            if f.high_factor < one {
                return Err(format!("vee.{s}.high_factor must be at least 1, got {}", f.high_factor));
            }
            if f.low_factor.is_negative() || f.low_factor >= one {
                return Err(format!("vee.{s}.low_factor must be in [0, 1), got {}", f.low_factor));
            }
            if f.min_high_delta.is_negative() {
                return Err(format!(
                    "vee.{s}.min_high_delta must not be negative, got {}",
                    f.min_high_delta
                ));
            }
            for (t, o) in &f.read_type {
                if o.high_factor.is_some_and(|h| h < one) {
                    return Err(format!(
                        "vee.{s}.read_type.{}.high_factor must be at least 1",
                        t.as_str()
                    ));
                }
                if o.low_factor.is_some_and(|l| l.is_negative() || l >= one) {
                    return Err(format!("vee.{s}.read_type.{}.low_factor must be in [0, 1)", t.as_str()));
                }
            }
        }
        if self.spike_factor < Quantity::from_micros(crate::model::SCALE) {
            return Err(format!(
                "vee.spike_factor must be at least 1, got {}",
                self.spike_factor
            ));
        }
        if self.spike_window_hours == 0 {
            return Err("vee.spike_window_hours must be at least 1".into());
        }
        Ok(())
    }
}
