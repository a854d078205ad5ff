//! JSON shapes of the CLI contract, and small text helpers.

use serde::Serialize;

use super::Console;
use crate::model::{Flag, Quantity, StoredRead};

/// One read as `reads list --json`, `review list --json` and `batches next --json` print it:
/// `meter_id`, `read_at`, `value`, `consumption` (null for the first read), `status`,
/// `flags` (objects with `rule` and the numbers), plus id, raw text, type, codes and origin.
#[derive(Debug, Serialize)]
pub struct ReadView<'a> {
    pub id: u64,
    pub meter_id: &'a str,
    pub read_at: String,
    pub value: Quantity,
    pub raw: &'a str,
    pub consumption: Option<Quantity>,
    pub status: &'static str,
    pub read_type: &'static str,
    pub codes: &'a [String],
    pub flags: &'a [Flag],
    pub batch: Option<u64>,
    pub origin: String,
}

impl<'a> ReadView<'a> {
    pub fn of(r: &'a StoredRead) -> Self {
        ReadView {
            id: r.id,
            meter_id: &r.read.meter_id,
            read_at: r.read.read_at.to_string(),
            value: r.read.value,
            raw: &r.read.raw,
            consumption: r.consumption,
            status: r.status.as_str(),
            read_type: r.read.read_type.as_str(),
            codes: &r.read.codes,
            flags: &r.flags,
            batch: r.batch,
            origin: format!("{} {}", r.read.origin.source, r.read.origin.locator),
        }
    }
}

pub fn views(reads: &[StoredRead]) -> Vec<ReadView<'_>> {
    reads.iter().map(ReadView::of).collect()
}

/// Print JSON to stdout.
pub fn print_json(ctx: &(impl Console + ?Sized), v: &impl Serialize) -> anyhow::Result<()> {
    say!(ctx, "{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// A flag in one line: `high_usage (expected 300, limit 540, actual 912)`.
pub fn flag_text(f: &Flag) -> String {
    let nums: Vec<String> = f.numbers().map(|(n, v)| format!("{n} {v}")).collect();
    if nums.is_empty() {
        f.rule.to_string()
    } else {
        format!("{} ({})", f.rule, nums.join(", "))
    }
}

/// Plain-text table of reads.
pub fn print_reads_table(ctx: &(impl Console + ?Sized), reads: &[StoredRead]) -> anyhow::Result<()> {
    say!(
        ctx,
        "{:>8}  {:<12} {:<25} {:>14} {:>12}  {:<10} flags",
        "id",
        "meter",
        "read_at",
        "value",
        "consumption",
        "status"
    );
    for r in reads {
        let flags: Vec<String> = r.flags.iter().map(flag_text).collect();
        say!(
            ctx,
            "{:>8}  {:<12} {:<25} {:>14} {:>12}  {:<10} {}",
            r.id,
            r.read.meter_id,
            r.read.read_at.to_string(),
            r.read.value.to_string(),
            r.consumption.map(|c| c.to_string()).unwrap_or_else(|| "-".into()),
            r.status.as_str(),
            flags.join("; ")
        );
    }
    Ok(())
}
