//! `meterd report exceptions|unbilled|history|usage`: plain text by default, `--json`, `--csv`.

use clap::{Args, Subcommand};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::Ctx;
use super::output::print_json;
use crate::review::chart::chart_text;
use crate::review::reports::{self, Cycle};
use crate::review::usage::{self, UsageReport};

#[derive(Debug, Clone, PartialEq, Eq, Subcommand, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportCmd {
    /// Meter reading exception report of a cycle (Caselle's checks): active with no reading,
    /// active with no usage, inactive with usage, exact same usage, rollover, information
    /// codes, usage outside the high/low range.
    Exceptions {
        #[command(flatten)]
        cycle: CycleArgs,
        /// "No usage" needs this many consecutive periods without usage.
        #[arg(long, default_value_t = 1)]
        lookback: usize,
        #[command(flatten)]
        format: Format,
    },
    /// Active meters of a cycle without a billable read, with the reason (unread, skip code,
    /// held for review, rejected).
    Unbilled {
        #[command(flatten)]
        cycle: CycleArgs,
        #[command(flatten)]
        format: Format,
    },
    /// An account's consumption history: the last 13 periods of each meter, with the chart.
    History {
        #[arg(long)]
        account: String,
        #[command(flatten)]
        format: Format,
    },
    /// An account's interval data as a customer asks about it: the daily totals of the last 35
    /// local days per channel, the chosen day's profile by the hour, and each flag of those
    /// days in plain words. `--csv`: the daily totals.
    Usage {
        #[arg(long)]
        account: String,
        /// The day to chart and the last of the 35 (YYYY-MM-DD, a local day of `[intervals]
        /// time_zone`); default today there.
        #[arg(long, value_name = "DAY")]
        day: Option<jiff::civil::Date>,
        #[command(flatten)]
        format: Format,
    },
}

/// Which reads a report covers.
#[derive(Debug, Clone, PartialEq, Eq, Args, Serialize, Deserialize)]
pub struct CycleArgs {
    /// One route (default: all).
    #[arg(long)]
    pub route: Option<String>,
    /// First day (YYYY-MM-DD, UTC) or time (RFC 3339); default 35 days before --to.
    #[arg(long)]
    pub from: Option<String>,
    /// Last day, inclusive (YYYY-MM-DD, UTC) or end time; default now.
    #[arg(long)]
    pub to: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Args, Serialize, Deserialize)]
pub struct Format {
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    #[arg(long)]
    pub csv: bool,
}

pub(super) fn parse_time(s: &str, end_of_day: bool) -> anyhow::Result<Timestamp> {
    if let Ok(t) = s.parse::<Timestamp>() {
        return Ok(t);
    }
    let d: jiff::civil::Date = s.parse().map_err(|_| {
        anyhow::anyhow!(
            "{} is neither YYYY-MM-DD nor an RFC 3339 time",
            crate::model::limits::quote(s)
        )
    })?;
    let d = if end_of_day { d.tomorrow()? } else { d };
    Ok(d.to_zoned(jiff::tz::TimeZone::UTC)?.timestamp())
}

impl CycleArgs {
    fn cycle(&self) -> anyhow::Result<Cycle<'_>> {
        let to = match &self.to {
            Some(s) => parse_time(s, true)?,
            None => Timestamp::now(),
        };
        let from = match &self.from {
            Some(s) => parse_time(s, false)?,
            None => to.checked_sub(SignedDuration::from_hours(35 * 24))?,
        };
        Ok(Cycle {
            route: self.route.as_deref(),
            from,
            to,
        })
    }
}

/// Rows as CSV (header from the first row's field names).
fn print_csv<T: Serialize>(ctx: &Ctx<'_>, rows: &[T]) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r)?;
    }
    let bytes = w.into_inner().map_err(|e| anyhow::anyhow!("csv: {e}"))?;
    use std::io::Write as _;
    ctx.out().write_all(&bytes)?;
    Ok(())
}

pub fn run(ctx: &Ctx<'_>, cmd: ReportCmd) -> anyhow::Result<()> {
    let store = ctx.store;
    match cmd {
        ReportCmd::Exceptions {
            cycle,
            lookback,
            format,
        } => {
            let c = cycle.cycle()?;
            let rows = reports::exceptions(store, &c, lookback)?;
            if format.json {
                return print_json(ctx, &rows);
            }
            if format.csv {
                return print_csv(ctx, &rows);
            }
            say!(
                ctx,
                "Meter reading exceptions, {} to {}{}",
                c.from,
                c.to,
                c.route.map(|r| format!(", route {r}")).unwrap_or_default()
            );
            say!(
                ctx,
                "{:<6} {:>5}  {:<12} {:<10} {:<20} {:>8}  detail",
                "route",
                "seq",
                "meter",
                "account",
                "check",
                "read"
            );
            for e in &rows {
                say!(
                    ctx,
                    "{:<6} {:>5}  {:<12} {:<10} {:<20} {:>8}  {}",
                    e.route,
                    e.sequence,
                    e.meter_id,
                    e.account,
                    e.check.as_str(),
                    e.read_id.map(|i| i.to_string()).unwrap_or_else(|| "-".into()),
                    e.detail
                );
            }
            let mut counts = std::collections::BTreeMap::new();
            for e in &rows {
                *counts.entry(e.check.as_str()).or_insert(0) += 1;
            }
            let counts: Vec<String> = counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
            say!(ctx, "{} exceptions: {}", rows.len(), counts.join(", "));
            Ok(())
        }
        ReportCmd::Unbilled { cycle, format } => {
            let c = cycle.cycle()?;
            let rows = reports::unbilled(store, &c)?;
            if format.json {
                return print_json(ctx, &rows);
            }
            if format.csv {
                return print_csv(ctx, &rows);
            }
            say!(
                ctx,
                "Meters without a billable read, {} to {}{}",
                c.from,
                c.to,
                c.route.map(|r| format!(", route {r}")).unwrap_or_default()
            );
            say!(
                ctx,
                "{:<6} {:>5}  {:<12} {:<10} {:<16} {:>8}  {:<24} detail",
                "route",
                "seq",
                "meter",
                "account",
                "reason",
                "read",
                "address"
            );
            for u in &rows {
                say!(
                    ctx,
                    "{:<6} {:>5}  {:<12} {:<10} {:<16} {:>8}  {:<24} {}",
                    u.route,
                    u.sequence,
                    u.meter_id,
                    u.account,
                    u.reason.as_str(),
                    u.read_id.map(|i| i.to_string()).unwrap_or_else(|| "-".into()),
                    u.address,
                    u.detail
                );
            }
            say!(ctx, "{} meters unbilled", rows.len());
            Ok(())
        }
        ReportCmd::History { account, format } => {
            let meters = reports::account_history(store, &account)?;
            if meters.is_empty() {
                anyhow::bail!("no meter has account {}", crate::model::limits::quote(&account));
            }
            if format.json {
                return print_json(ctx, &meters);
            }
            if format.csv {
                #[derive(Serialize)]
                struct Row<'a> {
                    account: &'a str,
                    meter_id: &'a str,
                    read_id: u64,
                    read_at: String,
                    value: crate::model::Quantity,
                    consumption: Option<crate::model::Quantity>,
                    unit: &'a str,
                    status: &'static str,
                    read_type: &'static str,
                }
                let rows: Vec<Row<'_>> = meters
                    .iter()
                    .flat_map(|m| {
                        m.reads.iter().map(move |r| Row {
                            account: &m.meter.account,
                            meter_id: &m.meter.meter_id,
                            read_id: r.id,
                            read_at: r.read.read_at.to_string(),
                            value: r.read.value,
                            consumption: r.consumption,
                            unit: &m.meter.unit,
                            status: r.status.as_str(),
                            read_type: r.read.read_type.as_str(),
                        })
                    })
                    .collect();
                return print_csv(ctx, &rows);
            }
            for m in &meters {
                say!(
                    ctx,
                    "Account {} · meter {} · {} · {} · route {} #{}",
                    account,
                    m.meter.meter_id,
                    m.meter.service,
                    m.meter.address,
                    m.meter.route,
                    m.meter.sequence
                );
                say!(
                    ctx,
                    "{:<12} {:>12} {:>12}  {:<10} type",
                    "date",
                    "read",
                    "used",
                    "status"
                );
                for r in &m.reads {
                    say!(
                        ctx,
                        "{:<12} {:>12} {:>12}  {:<10} {}",
                        r.read.read_at.strftime("%Y-%m-%d").to_string(),
                        r.read.value.to_string(),
                        r.consumption.map(|c| c.to_string()).unwrap_or_else(|| "-".into()),
                        r.status.as_str(),
                        r.read.read_type.as_str()
                    );
                }
                for line in chart_text(&m.periods, &m.meter.unit, 52, 10) {
                    say!(ctx, "{line}");
                }
                say!(ctx);
            }
            Ok(())
        }
        ReportCmd::Usage { account, day, format } => {
            let clock = ctx.config.intervals.clock();
            let day = day.unwrap_or_else(|| clock.date_of(Timestamp::now()));
            let report = usage::account_usage(store, &clock, &account, day)?;
            if report.meters.is_empty() {
                anyhow::bail!("no meter has account {}", crate::model::limits::quote(&account));
            }
            if format.json {
                return print_json(ctx, &report);
            }
            if format.csv {
                return print_csv(ctx, &usage_rows(&report));
            }
            print_usage(ctx, &clock, &report)
        }
    }
}

/// `report usage --csv`: one row per meter, channel and day (the spec's columns first).
#[derive(Serialize)]
struct UsageRow<'a> {
    date: jiff::civil::Date,
    channel: &'a str,
    total: Option<crate::model::Quantity>,
    status: &'a str,
    /// Rule ids, space separated.
    flags: String,
    meter_id: &'a str,
    unit: &'a str,
}

fn usage_rows(report: &UsageReport) -> Vec<UsageRow<'_>> {
    let mut rows = Vec::new();
    for m in &report.meters {
        for c in &m.channels {
            for d in &c.days {
                rows.push(UsageRow {
                    date: d.date,
                    channel: &c.channel,
                    total: d.total,
                    status: &d.status,
                    flags: d
                        .flags
                        .iter()
                        .map(|f| f.flag.rule.as_str())
                        .collect::<Vec<_>>()
                        .join(" "),
                    meter_id: &m.meter_id,
                    unit: &c.unit,
                });
            }
        }
    }
    rows
}

/// The profile chart's size in a report: 80 columns, 12 lines.
const PROFILE_WIDTH: u16 = 80;
const PROFILE_HEIGHT: u16 = 12;

fn print_usage(ctx: &Ctx<'_>, clock: &crate::model::interval::DayClock, r: &UsageReport) -> anyhow::Result<()> {
    for line in usage::usage_lines(r, clock, PROFILE_WIDTH, PROFILE_HEIGHT) {
        say!(ctx, "{line}");
    }
    Ok(())
}
