//! `meterd review`: the clerks' terminal UI, and every clerk action as a command:
//! `review list|show|accept|edit|estimate|reject|note|undo`, and the supervisors' four-eyes
//! approval: `review approvals|approve|decline`.
//!
//! Actions take `--rev N`, the read's revision the clerk saw (`review show ID --json` → `rev`);
//! when the read changed since, the action is refused and says who did what. Approve and
//! decline require it (`review approvals` shows it).

use std::io::IsTerminal;

use clap::{Args, Subcommand};
use jiff::civil::Date;

use super::Env;
use super::output::{print_json, print_reads_table, views};
use crate::model::{Quantity, Rule, Service};
use crate::review::{self, Action, ActionRequest, QueueFilter, ReviewError, clerk_name};

#[derive(Debug, Args)]
pub struct ReviewArgs {
    #[command(subcommand)]
    pub cmd: Option<ReviewCmd>,
    /// Who is acting (default: the OS user, `$USER` or `$LOGNAME`). Recorded in the audit trail.
    #[arg(long, global = true)]
    pub clerk: Option<String>,
    #[command(flatten)]
    pub filter: FilterArgs,
}

/// Queue filters (the UI starts with them; `f` changes them).
#[derive(Debug, Args, Clone, Default)]
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
    Rule::parse(s).ok_or_else(|| format!("no rule {s:?}; rules: {}", Rule::ALL.map(|r| r.as_str()).join(", ")))
}

fn parse_service(s: &str) -> Result<Service, String> {
    Service::parse(s).ok_or_else(|| format!("no service {s:?} (water, gas, electric)"))
}

impl FilterArgs {
    fn filter(&self) -> QueueFilter {
        QueueFilter {
            route: self.route.clone(),
            rule: self.rule,
            service: self.service,
        }
    }
}

#[derive(Debug, Subcommand)]
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
}

#[derive(Debug, Args)]
pub struct ActArgs {
    /// The read's revision you saw (`review show ID --json` → rev): refused if it changed.
    #[arg(long)]
    pub rev: Option<u64>,
    /// Print what was done as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(env: &Env, args: ReviewArgs) -> anyhow::Result<()> {
    let clerk = clerk_name(args.clerk.as_deref());
    let Some(cmd) = args.cmd else {
        return tui(env, clerk, args.filter.filter());
    };
    let (id, common, action) = match cmd {
        ReviewCmd::List { json, filter } => {
            let store = env.open_store()?;
            let view = review::queue_view(&store, &filter.filter())?;
            let reads: Vec<_> = view.items.iter().map(|i| i.read.clone()).collect();
            if json {
                return print_json(env, &views(&reads));
            }
            print_reads_table(env, &reads)?;
            let counts: Vec<String> = view.counts.iter().map(|(r, n)| format!("{r} {n}")).collect();
            say!(
                env,
                "{} of {} reads awaiting review; by rule: {}",
                reads.len(),
                view.total,
                counts.join(", ")
            );
            return Ok(());
        }
        ReviewCmd::Show { id, json } => {
            let store = env.open_store()?;
            let d = review::detail(&store, id)?;
            if json {
                return print_json(env, &d);
            }
            return print_detail(env, &d);
        }
        ReviewCmd::Accept { id, common, reason } => (id, common, Action::Accept { reason }),
        ReviewCmd::Edit {
            id,
            value,
            reason,
            common,
        } => {
            let value = Quantity::parse(&value).map_err(|e| anyhow::anyhow!("value {value:?}: {e}"))?;
            (id, common, Action::Edit { value, reason })
        }
        ReviewCmd::Estimate {
            id,
            dry_run: true,
            common,
            ..
        } => {
            let store = env.open_store()?;
            let p = review::preview_estimate(&store, id, env.config.vee.estimate_limit)?;
            if common.json {
                return print_json(env, &p);
            }
            say!(
                env,
                "read {id}: ADU {} ({} over {} days), × {} days = {}, register units {}",
                p.adu,
                p.history_usage,
                p.history_days,
                p.days,
                p.usage,
                p.register_units
            );
            say!(
                env,
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
            let store = env.open_store()?;
            let items = review::approvals(&store)?;
            if json {
                return print_json(env, &items);
            }
            return print_approvals(env, &items);
        }
        ReviewCmd::Approve { id, rev, note, json } => (id, ActArgs { rev: Some(rev), json }, Action::Approve { note }),
        ReviewCmd::Decline { id, rev, reason, json } => {
            (id, ActArgs { rev: Some(rev), json }, Action::Decline { reason })
        }
    };
    let store = env.open_store()?;
    let req = ActionRequest {
        read_id: id,
        seen_rev: common.rev,
        clerk,
        action,
    };
    let outcome = review::act(&store, &env.config.vee, &req, jiff::Timestamp::now()).map_err(refusal)?;
    if common.json {
        return print_json(env, &outcome);
    }
    say!(env, "{}", outcome.summary());
    for w in &outcome.warnings {
        say!(env, "warning: {w}");
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

fn print_approvals(env: &Env, items: &[review::ApprovalItem]) -> anyhow::Result<()> {
    let opt = |q: Option<Quantity>| q.map(|q| q.to_string()).unwrap_or_else(|| "-".into());
    say!(
        env,
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
            env,
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
        env,
        "{} read(s) awaiting approval; approve with `meterd review approve ID --rev N`, decline with `meterd review decline ID --rev N --reason T`",
        items.len()
    );
    Ok(())
}

fn print_detail(env: &Env, d: &review::ReadDetail) -> anyhow::Result<()> {
    let r = &d.read;
    say!(env, "read {} · {} · rev {}", r.id, r.status, d.rev);
    match &d.meter {
        Some(m) => {
            say!(
                env,
                "meter {} · {} · {} · {} dials · account {}",
                m.meter_id,
                m.service,
                m.unit,
                m.dials,
                m.account
            );
            say!(
                env,
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
        None => say!(env, "meter {} is not in the store", r.read.meter_id),
    }
    say!(
        env,
        "value {} (raw {}) {} at {} · consumption {} · codes {}",
        r.read.value,
        r.read.raw,
        r.read.read_type.as_str(),
        r.read.read_at,
        r.consumption.map(|c| c.to_string()).unwrap_or_else(|| "-".into()),
        r.read.codes.join(" ")
    );
    for f in &r.flags {
        say!(env, "  {}", super::output::flag_text(f));
    }
    let unit = d.meter.as_ref().map(|m| m.unit.as_str()).unwrap_or("");
    for line in review::chart::chart_text(&d.periods, unit, 52, 10) {
        say!(env, "{line}");
    }
    for e in &d.audit {
        say!(
            env,
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
            env,
            "service order {} {} due {}: {}",
            o.id,
            o.status.as_str(),
            o.due,
            o.reason
        );
    }
    Ok(())
}

fn tui(env: &Env, clerk: String, filter: QueueFilter) -> anyhow::Result<()> {
    if env.shared_store.is_some() {
        anyhow::bail!("the review UI runs in your terminal, not inside the daemon; use the review subcommands");
    }
    if !std::io::stdout().is_terminal() {
        anyhow::bail!("`meterd review` needs a terminal; use `meterd review list` (or --json) in scripts");
    }
    let backend = review::LocalBackend::new(env.data_dir.clone(), env.config.vee.clone());
    let app = review::tui::App::new(clerk, filter, jiff::Zoned::now().date());
    review::tui::run(app, &backend)?;
    Ok(())
}
