//! `meterd review list|show|accept|edit|estimate|reject|note|undo`: every clerk action as a
//! command, and the supervisors' four-eyes approval: `review approvals|approve|decline` (the
//! terminal UI is `meterd review` without a subcommand, in `cli`). Interval days held for
//! review: `review days|day|accept-day|edit-day|estimate-day|reject-day METER CHANNEL DATE`,
//! `--rev N` being the day's revision (`review day … --json` → `day.rev`).
//!
//! Actions take `--rev N`, the read's revision the clerk saw (`review show ID --json` → `rev`);
//! when the read changed since, the action is refused and says who did what. Approve and
//! decline require it (`review approvals` shows it). The clerk is the caller's OS user (or,
//! for an admin, `--on-behalf-of NAME`).

use clap::{Args, Subcommand};
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use super::Ctx;
use super::output::{print_json, print_reads_table, views};
use crate::model::interval::DayKey;
use crate::model::{Quantity, Rule, Service};
use crate::review::{
    self, Action, ActionRequest, DayAction, DayActionRequest, IntervalValue, QueueFilter, ReviewError,
};

/// Queue filters (the UI starts with them; `f` changes them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Args, Serialize, Deserialize)]
pub struct FilterArgs {
    /// Only reads of meters on this route.
    #[arg(long)]
    pub route: Option<String>,
    /// Only reads with this flag (`high_usage`, `zero_usage`, …).
    #[arg(long, value_parser = parse_rule)]
    pub rule: Option<Rule>,
    /// Only this service (water, gas, electric).
    #[arg(long, value_parser = parse_service)]
    pub service: Option<Service>,
}

fn parse_rule(s: &str) -> Result<Rule, String> {
    Rule::parse(s).ok_or_else(|| {
        format!(
            "no rule {}; rules: {}",
            crate::model::limits::quote(s),
            Rule::ALL.map(|r| r.as_str()).join(", ")
        )
    })
}

fn parse_service(s: &str) -> Result<Service, String> {
    Service::parse(s).ok_or_else(|| format!("no service {} (water, gas, electric)", crate::model::limits::quote(s)))
}

impl FilterArgs {
    pub fn filter(&self) -> QueueFilter {
        QueueFilter {
            route: self.route.clone(),
            rule: self.rule,
            service: self.service,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewCmd {
    /// The reads awaiting review (status flagged), same shape as `reads list`, sorted by
    /// severity, route and walk sequence; counts per rule at the end (text).
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        filter: FilterArgs,
    },
    /// One read with its meter, revision (`rev`), last 13 periods, audit entries, orders.
    Show {
        id: u64,
        #[arg(long)]
        json: bool,
    },
    /// Accept a held read as is.
    Accept {
        id: u64,
        #[command(flatten)]
        common: ActArgs,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Set a read's value; the original stays in the audit trail.
    Edit {
        id: u64,
        value: String,
        /// Why (required).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        common: ActArgs,
    },
    /// Estimate a held read: ADU × days with the CPUC rounding steps.
    Estimate {
        id: u64,
        /// Show the estimate and its numbers without changing anything.
        #[arg(long)]
        dry_run: bool,
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        common: ActArgs,
    },
    /// Reject a read and create a re-read service order.
    Reject {
        id: u64,
        /// Why (required; goes on the service order).
        #[arg(long)]
        reason: String,
        /// When the re-read is due (default: in 3 days).
        #[arg(long)]
        due: Option<Date>,
        #[command(flatten)]
        common: ActArgs,
    },
    /// Add a note to a read.
    Note {
        id: u64,
        text: String,
        #[command(flatten)]
        common: ActArgs,
    },
    /// Undo the read's last change, when it was a clerk's accept, edit, estimate or reject (an
    /// adjustment awaiting approval: by its author only).
    Undo {
        id: u64,
        #[command(flatten)]
        common: ActArgs,
    },
    /// The reads whose edit or estimate awaits a supervisor's approval (four eyes): old and
    /// proposed value and consumption, the change, who asked, when and why.
    Approvals {
        #[arg(long)]
        json: bool,
    },
    /// Approve an adjustment awaiting approval (supervisors; not its author): it becomes billable.
    Approve {
        id: u64,
        /// The read's revision you saw (`review approvals` → rev).
        #[arg(long)]
        rev: u64,
        /// A note for the audit trail.
        #[arg(long, default_value = "")]
        note: String,
        /// Print what was done as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Decline it (supervisors; not its author): the read goes back to its value before the
    /// adjustment, held for review (`flagged`), with your reason.
    Decline {
        id: u64,
        /// The read's revision you saw (`review approvals` → rev).
        #[arg(long)]
        rev: u64,
        /// Why (required; the clerk sees it).
        #[arg(long)]
        reason: String,
        /// Print what was done as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The interval days awaiting review (status flagged), worst first: meter, channel, date,
    /// revision, flags, day total.
    Days {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        filter: FilterArgs,
    },
    /// One interval day: its flags in words, its day chart, its revision (`rev`), audit entries.
    Day {
        #[command(flatten)]
        day: DayArgs,
        #[arg(long)]
        json: bool,
    },
    /// Accept a held interval day as it is.
    AcceptDay {
        #[command(flatten)]
        day: DayArgs,
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        common: ActArgs,
    },
    /// Set the values of some intervals of a day (`--set 37=0.42 --set 38-40=0.4`); the day
    /// becomes edited (billable), the old values stay in the audit trail.
    EditDay {
        #[command(flatten)]
        day: DayArgs,
        /// `N=VALUE` or `FIRST-LAST=VALUE` (1-based interval numbers, as the flags name them).
        #[arg(long = "set", required = true)]
        set: Vec<String>,
        /// Why (required).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        common: ActArgs,
    },
    /// Run VEE and estimation on a day again (like days or register reads may have come).
    EstimateDay {
        #[command(flatten)]
        day: DayArgs,
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        common: ActArgs,
    },
    /// Approve an edit of an interval day that awaits approval (supervisors; not its author).
    ApproveDay {
        #[command(flatten)]
        day: DayArgs,
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        common: ActArgs,
    },
    /// Decline it: the edited intervals go back to what they were and the day is held again.
    DeclineDay {
        #[command(flatten)]
        day: DayArgs,
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        common: ActArgs,
    },
    /// Reject an interval day: it is not billed.
    RejectDay {
        #[command(flatten)]
        day: DayArgs,
        /// Why (required).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        common: ActArgs,
    },
}

/// Which interval day: `METER CHANNEL DATE` (`E-100 E1 2025-03-04`).
#[derive(Debug, Clone, PartialEq, Eq, Args, Serialize, Deserialize)]
pub struct DayArgs {
    /// The meter.
    pub meter: String,
    /// The channel (`E1`, `B1`, `KWH`; `meterd intervals list` shows them).
    pub channel: String,
    /// The local day, YYYY-MM-DD.
    pub date: Date,
}

impl DayArgs {
    pub fn key(&self) -> DayKey {
        DayKey {
            meter_id: self.meter.clone(),
            channel: self.channel.clone(),
            date: self.date,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Args, Serialize, Deserialize)]
pub struct ActArgs {
    /// The read's revision you saw (`review show ID --json` → rev): refused if it changed.
    #[arg(long)]
    pub rev: Option<u64>,
    /// Print what was done as JSON.
    #[arg(long)]
    pub json: bool,
}

impl ReviewCmd {
    /// The subcommand's word.
    pub fn word(&self) -> &'static str {
        match self {
            ReviewCmd::List { .. } => "list",
            ReviewCmd::Show { .. } => "show",
            ReviewCmd::Accept { .. } => "accept",
            ReviewCmd::Edit { .. } => "edit",
            ReviewCmd::Estimate { dry_run: true, .. } => "estimate --dry-run",
            ReviewCmd::Estimate { .. } => "estimate",
            ReviewCmd::Reject { .. } => "reject",
            ReviewCmd::Note { .. } => "note",
            ReviewCmd::Undo { .. } => "undo",
            ReviewCmd::Approvals { .. } => "approvals",
            ReviewCmd::Approve { .. } => "approve",
            ReviewCmd::Decline { .. } => "decline",
            ReviewCmd::Days { .. } => "days",
            ReviewCmd::Day { .. } => "day",
            ReviewCmd::AcceptDay { .. } => "accept-day",
            ReviewCmd::EditDay { .. } => "edit-day",
            ReviewCmd::EstimateDay { .. } => "estimate-day",
            ReviewCmd::RejectDay { .. } => "reject-day",
            ReviewCmd::ApproveDay { .. } => "approve-day",
            ReviewCmd::DeclineDay { .. } => "decline-day",
        }
    }

    /// Approving and declining an adjustment are a supervisor's (four eyes).
    pub fn needs_supervisor(&self) -> bool {
        matches!(
            self,
            ReviewCmd::Approve { .. }
                | ReviewCmd::Decline { .. }
                | ReviewCmd::ApproveDay { .. }
                | ReviewCmd::DeclineDay { .. }
        )
    }
}

/// `--set 37=0.42 --set 38-40=0.4` → the interval values.
pub fn parse_sets(sets: &[String]) -> anyhow::Result<Vec<IntervalValue>> {
    review::parse_interval_values(&sets.join(",")).map_err(|e| anyhow::anyhow!("--set {e}"))
}

/// The interval day commands.
fn run_day(ctx: &Ctx<'_>, cmd: ReviewCmd) -> anyhow::Result<()> {
    let (day, common, action) = match cmd {
        ReviewCmd::Days { json, filter } => {
            let view = review::queue_view(ctx.store, &filter.filter())?;
            if json {
                return print_json(ctx, &view.days);
            }
            return print_days(ctx, &view);
        }
        ReviewCmd::Day { day, json } => {
            let d = review::day_detail(ctx.store, &ctx.config.intervals, &day.key()).map_err(refusal)?;
            if json {
                // The day as `intervals list --json` shows it (quality codes, method names).
                #[derive(Serialize)]
                struct Shown<'a> {
                    day: crate::model::interval::IntervalDayView<'a>,
                    unit: &'a str,
                    direction: &'a str,
                    meter: Option<&'a crate::model::Meter>,
                    like_day: &'a [Quantity],
                    like_day_note: Option<&'a str>,
                    audit: &'a [crate::model::AuditEntry],
                }
                return print_json(
                    ctx,
                    &Shown {
                        day: d.day.view(),
                        unit: &d.unit,
                        direction: d.direction.as_str(),
                        meter: d.meter.as_ref(),
                        like_day: &d.like_day,
                        like_day_note: d.like_day_note.as_deref(),
                        audit: &d.audit,
                    },
                );
            }
            return print_day(ctx, &d);
        }
        ReviewCmd::AcceptDay { day, reason, common } => (day, common, DayAction::Accept { reason }),
        ReviewCmd::EditDay {
            day,
            set,
            reason,
            common,
        } => {
            let values = parse_sets(&set)?;
            (day, common, DayAction::Edit { values, reason })
        }
        ReviewCmd::EstimateDay { day, reason, common } => (day, common, DayAction::Estimate { reason }),
        ReviewCmd::RejectDay { day, reason, common } => (day, common, DayAction::Reject { reason }),
        ReviewCmd::ApproveDay { day, reason, common } => (day, common, DayAction::Approve { reason }),
        ReviewCmd::DeclineDay { day, reason, common } => (day, common, DayAction::Decline { reason }),
        _ => anyhow::bail!("not an interval day command"),
    };
    let req = DayActionRequest {
        key: day.key(),
        seen_rev: common.rev,
        clerk: ctx.clerk(),
        action,
    };
    let outcome = review::act_on_day(
        ctx.store,
        &ctx.config.intervals,
        &ctx.config.vee,
        &req,
        jiff::Timestamp::now(),
    )
    .map_err(refusal)?;
    if common.json {
        return print_json(ctx, &outcome);
    }
    say!(ctx, "{}", outcome.summary());
    for w in &outcome.warnings {
        say!(ctx, "warning: {w}");
    }
    Ok(())
}

fn print_days(ctx: &Ctx<'_>, view: &review::QueueView) -> anyhow::Result<()> {
    say!(
        ctx,
        "{:<12} {:<6} {:<10} {:>4}  {:>12}  flags",
        "meter",
        "chan",
        "date",
        "rev",
        "total"
    );
    for d in &view.days {
        let rules: Vec<&str> = d.rules.iter().map(|r| r.as_str()).collect();
        say!(
            ctx,
            "{:<12} {:<6} {:<10} {:>4}  {:>12}  {} ({} intervals)",
            d.key.meter_id,
            d.key.channel,
            d.key.date.to_string(),
            d.rev,
            d.total.to_string(),
            rules.join(","),
            d.flagged_intervals
        );
    }
    let counts: Vec<String> = view.day_counts.iter().map(|(r, n)| format!("{r} {n}")).collect();
    say!(
        ctx,
        "{} of {} interval days awaiting review; by rule: {}",
        view.days.len(),
        view.days_total,
        counts.join(", ")
    );
    Ok(())
}

fn print_day(ctx: &Ctx<'_>, d: &review::DayDetail) -> anyhow::Result<()> {
    let day = &d.day;
    say!(
        ctx,
        "day {} · {} · rev {} · {} × {} min · total {} {}",
        day.key(),
        day.status,
        day.rev,
        day.values.len(),
        day.interval_minutes,
        day.total(),
        d.unit
    );
    match &d.meter {
        Some(m) => say!(
            ctx,
            "meter {} · {} · account {} · route {} #{} · {}",
            m.meter_id,
            m.service,
            m.account,
            m.route,
            m.sequence,
            m.address
        ),
        None => say!(ctx, "meter {} is not in the meter list", day.meter_id),
    }
    for f in &day.flags {
        // Wrapped to the chart's width: the whole day fits an 80-column terminal.
        for (i, line) in review::interval_chart::flag_lines(f, day.interval_minutes, &d.unit, 74)
            .into_iter()
            .enumerate()
        {
            say!(ctx, "  {} {line}", if i == 0 { "⚑" } else { " " });
        }
    }
    if let Some(why) = &d.like_day_note {
        for line in review::interval_chart::wrap(&format!("no like-day average: {why}"), 78) {
            say!(ctx, "{line}");
        }
    }
    for line in review::interval_chart::day_chart_text(day, &d.like_day, &d.unit, 78, 12) {
        say!(ctx, "{line}");
    }
    for e in &d.audit {
        let changed = e.day.as_ref().map_or(0, |x| x.changes.len());
        say!(
            ctx,
            "#{} {} {} {}: total {} → {}, {} → {}, {changed} interval(s) changed · {}",
            e.seq,
            e.at,
            e.clerk,
            e.action.as_str(),
            e.old_value,
            e.new_value,
            e.old_status,
            e.new_status,
            e.reason
        );
    }
    Ok(())
}

pub fn run(ctx: &Ctx<'_>, cmd: ReviewCmd) -> anyhow::Result<()> {
    let (id, common, action) = match cmd {
        cmd @ (ReviewCmd::Days { .. }
        | ReviewCmd::Day { .. }
        | ReviewCmd::AcceptDay { .. }
        | ReviewCmd::EditDay { .. }
        | ReviewCmd::EstimateDay { .. }
        | ReviewCmd::RejectDay { .. }
        | ReviewCmd::ApproveDay { .. }
        | ReviewCmd::DeclineDay { .. }) => return run_day(ctx, cmd),
        ReviewCmd::List { json, filter } => {
            let store = ctx.store;
            let view = review::queue_view(store, &filter.filter())?;
            let reads: Vec<_> = view.items.iter().map(|i| i.read.clone()).collect();
            if json {
                return print_json(ctx, &views(&reads));
            }
            print_reads_table(ctx, &reads)?;
            let counts: Vec<String> = view.counts.iter().map(|(r, n)| format!("{r} {n}")).collect();
            say!(
                ctx,
                "{} of {} reads awaiting review; by rule: {}",
                reads.len(),
                view.total,
                counts.join(", ")
            );
            // Only when there are any: the read list looks as it always did.
            if view.days_total > 0 {
                say!(
                    ctx,
                    "{} interval days awaiting review too: meterd review days",
                    view.days_total
                );
            }
            return Ok(());
        }
        ReviewCmd::Show { id, json } => {
            let store = ctx.store;
            let d = review::detail(store, id)?;
            if json {
                return print_json(ctx, &d);
            }
            return print_detail(ctx, &d);
        }
        ReviewCmd::Accept { id, common, reason } => (id, common, Action::Accept { reason }),
        ReviewCmd::Edit {
            id,
            value,
            reason,
            common,
        } => {
            let value = Quantity::parse(&value)
                .map_err(|e| anyhow::anyhow!("value {}: {e}", crate::model::limits::quote(&value)))?;
            (id, common, Action::Edit { value, reason })
        }
        ReviewCmd::Estimate {
            id,
            dry_run: true,
            common,
            ..
        } => {
            let store = ctx.store;
            let p = review::preview_estimate(store, id, ctx.config.vee.estimate_limit)?;
            if common.json {
                return print_json(ctx, &p);
            }
            say!(
                ctx,
                "read {id}: ADU {} ({} over {} days), × {} days = {}, register units {}",
                p.adu,
                p.history_usage,
                p.history_days,
                p.days,
                p.usage,
                p.register_units
            );
            say!(
                ctx,
                "estimated read {} + {} = {}",
                p.previous_value,
                p.register_units,
                p.value
            );
            return Ok(());
        }
        ReviewCmd::Estimate { id, reason, common, .. } => (id, common, Action::Estimate { reason }),
        ReviewCmd::Reject {
            id,
            reason,
            due,
            common,
        } => {
            let due = match due {
                Some(d) => d,
                None => jiff::Zoned::now()
                    .date()
                    .checked_add(jiff::Span::new().days(review::tui::DEFAULT_DUE_DAYS))?,
            };
            (id, common, Action::Reject { reason, due })
        }
        ReviewCmd::Note { id, text, common } => (id, common, Action::Note { text }),
        ReviewCmd::Undo { id, common } => (id, common, Action::Undo),
        ReviewCmd::Approvals { json } => {
            let items = review::approvals(ctx.store)?;
            if json {
                return print_json(ctx, &items);
            }
            print_approvals(ctx, &items)?;
            let days = review::days_awaiting_approval(ctx.store)?;
            if !days.is_empty() {
                say!(
                    ctx,
                    "interval days awaiting approval (`review approve-day|decline-day M CHAN DATE --rev N`):"
                );
                for (day, entry) in days {
                    let (by, why) = entry.map(|e| (e.clerk, e.reason)).unwrap_or_default();
                    say!(
                        ctx,
                        "  {} {} {}  rev {}  total {}  by {by}: {why}",
                        day.meter_id,
                        day.channel,
                        day.date,
                        day.rev,
                        day.total()
                    );
                }
            }
            return Ok(());
        }
        ReviewCmd::Approve { id, rev, note, json } => (id, ActArgs { rev: Some(rev), json }, Action::Approve { note }),
        ReviewCmd::Decline { id, rev, reason, json } => {
            (id, ActArgs { rev: Some(rev), json }, Action::Decline { reason })
        }
    };
    let req = ActionRequest {
        read_id: id,
        seen_rev: common.rev,
        clerk: ctx.clerk(),
        action,
    };
    let outcome = review::act(ctx.store, &ctx.config.vee, &req, jiff::Timestamp::now()).map_err(refusal)?;
    if common.json {
        return print_json(ctx, &outcome);
    }
    say!(ctx, "{}", outcome.summary());
    for w in &outcome.warnings {
        say!(ctx, "warning: {w}");
    }
    Ok(())
}

fn refusal(e: ReviewError) -> anyhow::Error {
    match e {
        ReviewError::Conflict(m) => anyhow::anyhow!("refused: {m}"),
        ReviewError::Refused(m) => anyhow::anyhow!("refused: {m}"),
        e => e.into(),
    }
}

fn print_approvals(ctx: &Ctx<'_>, items: &[review::ApprovalItem]) -> anyhow::Result<()> {
    let opt = |q: Option<Quantity>| q.map(|q| q.to_string()).unwrap_or_else(|| "-".into());
    say!(
        ctx,
        "{:>8} {:>4}  {:<10} {:<8} {:<8}  {:>10} {:>8}  {:>10} {:>8}  {:>8}  {:<10} {:<16}  reason",
        "read",
        "rev",
        "meter",
        "service",
        "action",
        "old value",
        "old use",
        "proposed",
        "use",
        "change",
        "by",
        "at"
    );
    for a in items {
        say!(
            ctx,
            "{:>8} {:>4}  {:<10} {:<8} {:<8}  {:>10} {:>8}  {:>10} {:>8}  {:>8}  {:<10} {:<16}  {}",
            a.read_id,
            a.rev,
            a.meter_id,
            a.service.map(|s| s.as_str()).unwrap_or("?"),
            a.action.as_str(),
            a.old_value.to_string(),
            opt(a.old_consumption),
            a.value.to_string(),
            opt(a.consumption),
            a.change.to_string(),
            a.author,
            a.at.strftime("%Y-%m-%d %H:%M").to_string(),
            a.reason
        );
    }
    say!(
        ctx,
        "{} read(s) awaiting approval; approve with `meterd review approve ID --rev N`, decline with `meterd review decline ID --rev N --reason T`",
        items.len()
    );
    Ok(())
}

fn print_detail(ctx: &Ctx<'_>, d: &review::ReadDetail) -> anyhow::Result<()> {
    let r = &d.read;
    say!(ctx, "read {} · {} · rev {}", r.id, r.status, d.rev);
    match &d.meter {
        Some(m) => {
            say!(
                ctx,
                "meter {} · {} · {} · {} dials · account {}",
                m.meter_id,
                m.service,
                m.unit,
                m.dials,
                m.account
            );
            say!(
                ctx,
                "route {} #{} · {}{}",
                m.route,
                m.sequence,
                m.address,
                if m.notes.is_empty() {
                    String::new()
                } else {
                    format!(" · notes: {}", m.notes)
                }
            );
        }
        None => say!(ctx, "meter {} is not in the store", r.read.meter_id),
    }
    say!(
        ctx,
        "value {} (raw {}) {} at {} · consumption {} · codes {}",
        r.read.value,
        r.read.raw,
        r.read.read_type.as_str(),
        r.read.read_at,
        r.consumption.map(|c| c.to_string()).unwrap_or_else(|| "-".into()),
        r.read.codes.join(" ")
    );
    for f in &r.flags {
        say!(ctx, "  {}", super::output::flag_text(f));
    }
    let unit = d.meter.as_ref().map(|m| m.unit.as_str()).unwrap_or("");
    for line in review::chart::chart_text(&d.periods, unit, 52, 10) {
        say!(ctx, "{line}");
    }
    for e in &d.audit {
        say!(
            ctx,
            "#{} {} {} {}: {} → {}, {} → {} · {}",
            e.seq,
            e.at,
            e.clerk,
            e.action.as_str(),
            e.old_value,
            e.new_value,
            e.old_status,
            e.new_status,
            e.reason
        );
    }
    for o in &d.orders {
        say!(
            ctx,
            "service order {} {} due {}: {}",
            o.id,
            o.status.as_str(),
            o.due,
            o.reason
        );
    }
    Ok(())
}
