//! What VEE looks at for one stored read besides the read itself, gathered from the store (for
//! edits and re-validation).

use jiff::{SignedDuration, Timestamp};

use crate::model::{Meter, MeterChange, Quantity, ReadSummary, StoredRead};
use crate::store::{HistoryQuery, ReadTxn, Result};
use crate::vee::ADU_WINDOW;

/// What [`crate::vee::validate`] needs for `read`, as owned data.
#[derive(Debug, Clone, Default)]
pub struct VeeInputs {
    pub meter: Option<Meter>,
    pub history: Vec<ReadSummary>,
    pub same_time: Vec<Quantity>,
    pub changes: Vec<MeterChange>,
    pub prior_estimates: u32,
}

impl VeeInputs {
    pub fn as_meter_history(&self) -> crate::vee::MeterHistory<'_> {
        crate::vee::MeterHistory {
            meter: self.meter.as_ref(),
            history: &self.history,
            same_time: &self.same_time,
            changes: &self.changes,
            prior_estimates: self.prior_estimates,
            totals: None,
        }
    }
}

/// Gather the meter, the history before the read (the year of ADU plus the previous read),
/// other values at the same time, the meter's exchanges and the estimates right before it.
pub fn vee_inputs(txn: &dyn ReadTxn, read: &StoredRead, estimate_limit: u32) -> Result<VeeInputs> {
    let r = &read.read;
    let meter = txn.meter(&r.meter_id)?;
    let query = HistoryQuery {
        meter_id: &r.meter_id,
        from: r.read_at.checked_sub(ADU_WINDOW).unwrap_or(Timestamp::MIN),
        to: r.read_at,
    };
    let history: Vec<ReadSummary> = txn
        .meter_histories(&[query])?
        .into_iter()
        .next()
        .unwrap_or_default()
        .into_iter()
        .filter(|s| s.is_history() && s.id != read.id)
        .collect();
    let next = r
        .read_at
        .checked_add(SignedDuration::from_micros(1))
        .unwrap_or(Timestamp::MAX);
    let same_time = txn
        .meter_reads(&r.meter_id, r.read_at, next)?
        .into_iter()
        .filter(|o| o.id != read.id && o.summary().is_history() && o.read.value != r.value)
        .map(|o| o.read.value)
        .collect();
    let changes = txn.meter_changes(&r.meter_id)?;
    let before = txn.meter_reads_before(&r.meter_id, r.read_at, estimate_limit as usize + 1)?;
    let prior_estimates = before
        .iter()
        .filter(|b| b.summary().is_history())
        .take_while(|b| b.is_estimate())
        .count() as u32;
    Ok(VeeInputs {
        meter,
        history,
        same_time,
        changes,
        prior_estimates,
    })
}
