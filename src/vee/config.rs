//! VEE factors, per service.

use serde::{Deserialize, Serialize};

use crate::model::{Quantity, Service};

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
}

impl Default for ServiceFactors {
    fn default() -> Self {
        ServiceFactors {
            high_factor: Quantity::from_micros(1_800_000),
            low_factor: Quantity::from_micros(400_000),
            min_high_delta: Quantity::from_micros(10_000_000),
        }
    }
}

/// VEE configuration: factors for each service (the `[vee.water]`, `[vee.gas]`,
/// `[vee.electric]` tables of `meterd.toml`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VeeConfig {
    pub water: ServiceFactors,
    pub gas: ServiceFactors,
    pub electric: ServiceFactors,
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
                return Err(format!("vee.{s}.min_high_delta must not be negative, got {}", f.min_high_delta));
            }
        }
        Ok(())
    }
}
