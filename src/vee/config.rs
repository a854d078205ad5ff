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
    /// Four-eyes approval: a clerk's edit or estimate that changes a read's consumption by
    /// more than this many register units waits for a supervisor (status `pending_approval`).
    /// `None` (the default): no absolute limit.
    pub approval_threshold: Option<Quantity>,
    /// The same as a percentage of the read's consumption before the adjustment. When both
    /// are set, exceeding either asks for approval; when neither is, none is needed.
    pub approval_threshold_percent: Option<Quantity>,
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
            approval_threshold: None,
            approval_threshold_percent: None,
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

    /// Why an adjustment that changes a read's consumption by `change` needs a supervisor's
    /// approval, or `None`. `base` is the consumption before the adjustment (the percentage is
    /// of it; a change from zero exceeds any percentage). Strictly more than a threshold counts.
    pub fn approval_needed(&self, change: Quantity, base: Quantity) -> Option<String> {
        // i128 on the micro-units: no overflow, no rounding (Quantity is fixed-point).
        let change_us = i128::from(change.micros()).abs();
        if let Some(t) = self.approval_threshold
            && change_us > i128::from(t.micros())
        {
            return Some(format!(
                "consumption change {} exceeds the approval threshold {t}",
                Quantity::from_micros(change.micros().saturating_abs())
            ));
        }
        if let Some(p) = self.approval_threshold_percent {
            let base_us = i128::from(base.micros()).abs();
            // change / base × 100 > p  ⇔  change × 100 × SCALE > p_µ × base (base > 0).
            if change_us * 100 * i128::from(crate::model::SCALE) > i128::from(p.micros()) * base_us {
                return Some(format!(
                    "consumption change {} from {} exceeds the approval threshold of {p}%",
                    Quantity::from_micros(change.micros().saturating_abs()),
                    Quantity::from_micros(base.micros().saturating_abs())
                ));
            }
        }
        None
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
            if let Some(t) = f.approval_threshold.filter(|t| t.is_negative()) {
                return Err(format!("vee.{s}.approval_threshold must not be negative, got {t}"));
            }
            if let Some(p) = f.approval_threshold_percent.filter(|p| p.is_negative()) {
                return Err(format!(
                    "vee.{s}.approval_threshold_percent must not be negative, got {p}"
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

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap()
    }

    fn with(abs: Option<&str>, pct: Option<&str>) -> ServiceFactors {
        ServiceFactors {
            approval_threshold: abs.map(q),
            approval_threshold_percent: pct.map(q),
            ..ServiceFactors::default()
        }
    }

    #[test]
    fn no_threshold_by_default_so_nothing_needs_approval() {
        let f = ServiceFactors::default();
        assert_eq!((f.approval_threshold, f.approval_threshold_percent), (None, None));
        assert_eq!(f.approval_needed(q("999999"), q("1")), None);
    }

    #[test]
    fn the_absolute_threshold_is_strictly_more_than_in_register_units() {
        let f = with(Some("50"), None);
        assert_eq!(f.approval_needed(q("50"), q("300")), None);
        assert_eq!(f.approval_needed(q("-50"), q("300")), None);
        let why = f.approval_needed(q("50.000001"), q("300")).unwrap();
        assert!(why.contains("50.000001") && why.contains("threshold 50"), "{why}");
        // A decrease counts as much as an increase.
        assert!(f.approval_needed(q("-612"), q("912")).is_some());
    }

    #[test]
    fn the_percentage_is_of_the_consumption_before_the_adjustment() {
        let f = with(None, Some("25"));
        assert_eq!(f.approval_needed(q("75"), q("300")), None, "exactly 25 %");
        assert!(f.approval_needed(q("75.000001"), q("300")).is_some());
        assert!(f.approval_needed(q("-76"), q("300")).is_some());
        // The base's sign does not matter (a negative-usage read edited).
        assert_eq!(f.approval_needed(q("75"), q("-300")), None);
        // From zero consumption any change is more than any percentage; no change is none.
        assert!(f.approval_needed(q("0.000001"), q("0")).is_some());
        assert_eq!(f.approval_needed(q("0"), q("0")), None);
        // Large numbers do not overflow: 10^12 register units.
        let big = q("1000000000000");
        assert!(f.approval_needed(big, q("1")).is_some());
        assert_eq!(f.approval_needed(q("1"), big), None);
    }

    #[test]
    fn with_both_set_either_one_exceeded_is_enough() {
        let f = with(Some("50"), Some("10"));
        // 40 of 1000 is 4 %, under both.
        assert_eq!(f.approval_needed(q("40"), q("1000")), None);
        // 60 of 1000: over 50 units, 6 %.
        assert!(f.approval_needed(q("60"), q("1000")).unwrap().contains("threshold 50"));
        // 20 of 100: under 50 units, 20 %.
        assert!(f.approval_needed(q("20"), q("100")).unwrap().contains("10%"));
    }

    #[test]
    fn thresholds_are_per_service_and_read_from_toml() {
        let c: VeeConfig =
            toml::from_str("[water]\napproval_threshold = 50\n[gas]\napproval_threshold_percent = 200\n").unwrap();
        assert_eq!(c.factors(Service::Water).approval_threshold, Some(q("50")));
        assert_eq!(c.factors(Service::Gas).approval_threshold, None);
        assert_eq!(c.factors(Service::Gas).approval_threshold_percent, Some(q("200")));
        assert_eq!(c.factors(Service::Electric), &ServiceFactors::default());
        c.check().unwrap();
        let bad: VeeConfig = toml::from_str("[gas]\napproval_threshold = -1\n").unwrap();
        assert!(bad.check().unwrap_err().contains("vee.gas.approval_threshold"));
        assert!(toml::from_str::<VeeConfig>("[water]\napproval_treshold = 5\n").is_err());
    }
}
