//! `meterd quarantine list|show|retry|purge`: input meterd could not decode, kept with the
//! reason; its retry with today's configuration and keys; its purge. Retention
//! (`[quarantine]`) removes the oldest entries by itself and keeps their counts in a summary,
//! which `list` shows.

use std::fmt::Write as _;

use clap::{ArgGroup, Args, Subcommand};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Ctx;
use super::output::print_json;
use super::report::parse_time;
use crate::ingest::mqtt::MqttConfig;
use crate::ingest::mqtt::message::{gateway_of_topic, topic_of_source};
use crate::ingest::quarantine::{Retry, RetryOutcome};
use crate::model::{QuarantineSummary, StoredQuarantine};

/// Entries `list` prints unless told otherwise (the newest ones).
pub const DEFAULT_LIST_LIMIT: u64 = 1000;

#[derive(Debug, Clone, PartialEq, Eq, Subcommand, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuarantineCmd {
    /// Quarantined input, oldest first, with the summary of entries the retention removed.
    List(ListArgs),
    /// One entry: the bytes as hex and text, the reason, where and when it came from.
    Show {
        id: u64,
        #[arg(long)]
        json: bool,
    },
    /// Decode entries again with today's configuration and keys (supervisors); what decodes
    /// now is stored through the normal ingest (de-duplication, VEE) and the entry resolved.
    Retry(RetryArgs),
    /// Remove the entries received before a date (supervisors); they stay counted in the summary.
    Purge {
        /// YYYY-MM-DD (UTC midnight) or an RFC 3339 time.
        #[arg(long)]
        before: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Args, Serialize, Deserialize)]
pub struct ListArgs {
    /// Only entries received at or after this (YYYY-MM-DD or an RFC 3339 time).
    #[arg(long)]
    pub since: Option<String>,
    /// Only entries whose source contains this (`mqtt`, a topic, a port, `cradle`).
    #[arg(long)]
    pub source: Option<String>,
    /// Only entries whose reason contains this (case-insensitive).
    #[arg(long)]
    pub reason: Option<String>,
    /// Print at most this many entries, the newest (the count of the others is shown).
    #[arg(long, default_value_t = DEFAULT_LIST_LIMIT, value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: u64,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Args, Serialize, Deserialize)]
#[command(group(ArgGroup::new("which").required(true).args(["id", "all", "reason"])))]
pub struct RetryArgs {
    /// The entry to retry.
    pub id: Option<u64>,
    /// Every entry not resolved yet.
    #[arg(long)]
    pub all: bool,
    /// Every unresolved entry whose reason contains this (case-insensitive).
    #[arg(long)]
    pub reason: Option<String>,
    #[arg(long)]
    pub json: bool,
}

impl QuarantineCmd {
    pub fn word(&self) -> &'static str {
        match self {
            QuarantineCmd::List(_) => "list",
            QuarantineCmd::Show { .. } => "show",
            QuarantineCmd::Retry(_) => "retry",
            QuarantineCmd::Purge { .. } => "purge",
        }
    }

    /// Retry and purge change the store.
    pub fn needs_supervisor(&self) -> bool {
        matches!(self, QuarantineCmd::Retry(_) | QuarantineCmd::Purge { .. })
    }
}

pub fn run(ctx: &Ctx<'_>, cmd: QuarantineCmd) -> anyhow::Result<()> {
    match cmd {
        QuarantineCmd::List(args) => list(ctx, args),
        QuarantineCmd::Show { id, json } => show(ctx, id, json),
        QuarantineCmd::Retry(args) => retry(ctx, args),
        QuarantineCmd::Purge { before } => purge(ctx, &before),
    }
}

fn contains_ci(haystack: &str, needle: &str) -> bool {
    haystack.to_lowercase().contains(&needle.to_lowercase())
}

fn state(q: &StoredQuarantine) -> &'static str {
    if q.resolution.is_some() { "resolved" } else { "open" }
}

fn entry_json(id: u64, q: &StoredQuarantine) -> Value {
    json!({
        "id": id,
        "received_at": q.entry.received_at.to_string(),
        "source": q.entry.source,
        "reason": q.entry.reason,
        "size": q.size,
        "kept_bytes": q.entry.payload.len(),
        "head_only": q.head_only(),
        "sha256": hex::encode(q.sha256),
        "state": state(q),
        "resolution": q.resolution,
    })
}

fn summary_line(s: &[QuarantineSummary]) -> Option<String> {
    if s.is_empty() {
        return None;
    }
    let (n, bytes) = s.iter().fold((0, 0), |(n, b), r| (n + r.count, b + r.bytes));
    let rows: Vec<String> = s
        .iter()
        .map(|r| format!("{} / {}: {} ({} bytes)", r.source, r.reason, r.count, r.bytes))
        .collect();
    Some(format!(
        "older entries summarised: {n} entries, {bytes} bytes; {}",
        rows.join("; ")
    ))
}

fn list(ctx: &Ctx<'_>, args: ListArgs) -> anyhow::Result<()> {
    let since = args.since.as_deref().map(|s| parse_time(s, false)).transpose()?;
    let txn = ctx.store.begin_read()?;
    let mut rows: Vec<(u64, StoredQuarantine)> = txn
        .quarantine_entries()?
        .into_iter()
        .filter(|(_, q)| since.is_none_or(|t| q.entry.received_at >= t))
        .filter(|(_, q)| args.source.as_deref().is_none_or(|s| q.entry.source.contains(s)))
        .filter(|(_, q)| args.reason.as_deref().is_none_or(|r| contains_ci(&q.entry.reason, r)))
        .collect();
    let summary = txn.quarantine_summary()?;
    let usage = txn.quarantine_usage()?;
    let matching = rows.len() as u64;
    let skip = matching.saturating_sub(args.limit) as usize;
    rows.drain(..skip);
    if args.json {
        return print_json(
            ctx,
            &json!({
                "entries": rows.iter().map(|(id, q)| entry_json(*id, q)).collect::<Vec<_>>(),
                "matching": matching,
                "not_shown": skip,
                "usage": usage,
                "summarised": summary,
            }),
        );
    }
    say!(
        ctx,
        "{:>8}  {:<27} {:<9} {:>7}  {:<30}  reason",
        "id",
        "received",
        "state",
        "bytes",
        "source"
    );
    for (id, q) in &rows {
        say!(
            ctx,
            "{:>8}  {:<27} {:<9} {:>7}  {:<30}  {}",
            id,
            q.entry.received_at.to_string(),
            state(q),
            q.size,
            q.entry.source,
            q.entry.reason
        );
    }
    if skip > 0 {
        say!(ctx, "({skip} older matching entries not shown; --limit)");
    }
    say!(
        ctx,
        "{} entries in the quarantine, {} stored bytes",
        usage.entries,
        usage.bytes
    );
    if let Some(line) = summary_line(&summary) {
        say!(ctx, "{line}");
    }
    Ok(())
}

/// Offset, 16 bytes as hex, and the printable ones as text (`.` for the others).
fn hex_dump(bytes: &[u8]) -> String {
    let mut out = String::new();
    for (i, chunk) in bytes.chunks(16).enumerate() {
        let hex: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
        let text: String = chunk
            .iter()
            .map(|&b| {
                if b.is_ascii_graphic() || b == b' ' {
                    b as char
                } else {
                    '.'
                }
            })
            .collect();
        let _ = writeln!(out, "  {:08x}  {:<47}  |{text}|", i * 16, hex.join(" "));
    }
    out
}

/// The payload as text: valid UTF-8 with control characters escaped, else lossy.
fn as_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).escape_debug().to_string()
}

fn mqtt_config(ctx: &Ctx<'_>) -> MqttConfig {
    ctx.config.mqtt.clone().unwrap_or_default()
}

fn show(ctx: &Ctx<'_>, id: u64, json: bool) -> anyhow::Result<()> {
    let q = ctx
        .store
        .begin_read()?
        .quarantine_entry(id)?
        .ok_or_else(|| anyhow::anyhow!("quarantine entry {id} not found (see `meterd quarantine list`)"))?;
    let topic = topic_of_source(&q.entry.source);
    let gateway = topic.map(|t| gateway_of_topic(t, mqtt_config(ctx).gateway_topic_level));
    if json {
        let mut v = entry_json(id, &q);
        v["topic"] = json!(topic);
        v["gateway"] = json!(gateway);
        v["hex"] = json!(hex::encode(&q.entry.payload));
        v["text"] = json!(as_text(&q.entry.payload));
        return print_json(ctx, &v);
    }
    say!(ctx, "entry     {id} ({})", state(&q));
    say!(ctx, "received  {}", q.entry.received_at);
    say!(ctx, "source    {}", q.entry.source);
    if let (Some(t), Some(g)) = (topic, &gateway) {
        say!(ctx, "topic     {t}");
        say!(ctx, "gateway   {g}");
    }
    say!(ctx, "reason    {}", q.entry.reason);
    say!(ctx, "size      {} bytes, sha256 {}", q.size, hex::encode(q.sha256));
    if q.head_only() {
        say!(
            ctx,
            "kept      the first {} bytes only (large payloads are kept by reference)",
            q.entry.payload.len()
        );
    }
    if let Some(r) = &q.resolution {
        say!(ctx, "retried   {} by {}: {}", r.at, r.by, r.outcome);
        if !r.reads.is_empty() {
            let ids: Vec<String> = r.reads.iter().map(u64::to_string).collect();
            say!(ctx, "reads     {}", ids.join(", "));
        }
    }
    say!(ctx, "text      {}", as_text(&q.entry.payload));
    say!(ctx, "hex");
    write!(ctx.out(), "{}", hex_dump(&q.entry.payload))?;
    Ok(())
}

fn retry(ctx: &Ctx<'_>, args: RetryArgs) -> anyhow::Result<()> {
    let ids: Vec<u64> = match args.id {
        Some(id) => vec![id],
        None => ctx
            .store
            .begin_read()?
            .quarantine_entries()?
            .into_iter()
            .filter(|(_, q)| q.resolution.is_none())
            .filter(|(_, q)| args.reason.as_deref().is_none_or(|r| contains_ci(&q.entry.reason, r)))
            .map(|(id, _)| id)
            .collect(),
    };
    let mqtt = mqtt_config(ctx);
    let keys = match &mqtt.wmbus_key_file {
        Some(p) => crate::secrets::read_key_file(p)?,
        None => meterd_protocols::decode::Keys::new(),
    };
    let by = ctx.clerk();
    let retry = Retry {
        mqtt: &mqtt,
        keys: &keys,
        vee: &ctx.config.vee,
        intervals: &ctx.config.intervals,
        by: &by,
    };
    let mut results = Vec::with_capacity(ids.len());
    for id in ids {
        results.push((id, retry.one(ctx.store, id)?));
    }
    let resolved = results
        .iter()
        .filter(|(_, o)| matches!(o, RetryOutcome::Resolved { .. }))
        .count();
    let reads: usize = results
        .iter()
        .map(|(_, o)| match o {
            RetryOutcome::Resolved { reads, .. } => reads.len(),
            _ => 0,
        })
        .sum();
    if args.json {
        let rows: Vec<Value> = results
            .iter()
            .map(|(id, o)| {
                let mut v = serde_json::to_value(o).unwrap_or(Value::Null);
                v["id"] = json!(id);
                v
            })
            .collect();
        print_json(
            ctx,
            &json!({"retried": results.len(), "resolved": resolved, "reads": reads, "entries": rows}),
        )?;
    } else {
        for (id, o) in &results {
            match o {
                RetryOutcome::Resolved { reads, duplicates } if reads.is_empty() => {
                    say!(
                        ctx,
                        "entry {id}: resolved; its {duplicates} frame(s) were stored before"
                    )
                }
                RetryOutcome::Resolved { reads, .. } => {
                    let ids: Vec<String> = reads.iter().map(u64::to_string).collect();
                    say!(ctx, "entry {id}: resolved; read(s) {} stored", ids.join(", "))
                }
                RetryOutcome::StillBad { reason } => say!(ctx, "entry {id}: still undecodable: {reason}"),
                RetryOutcome::CannotRetry { reason } => say!(ctx, "entry {id}: cannot be retried: {reason}"),
                RetryOutcome::AlreadyResolved => say!(ctx, "entry {id}: retried before; nothing to do"),
            }
        }
        say!(
            ctx,
            "retried {} entries: {resolved} resolved, {reads} read(s) stored",
            results.len()
        );
    }
    // One named entry that did not resolve is a failure of the command.
    if let (Some(id), [(_, o)]) = (args.id, results.as_slice()) {
        match o {
            RetryOutcome::StillBad { reason } => anyhow::bail!("entry {id} is still undecodable: {reason}"),
            RetryOutcome::CannotRetry { reason } => anyhow::bail!("entry {id} cannot be retried: {reason}"),
            _ => {}
        }
    }
    Ok(())
}

fn purge(ctx: &Ctx<'_>, before: &str) -> anyhow::Result<()> {
    let t: Timestamp = parse_time(before, false)?;
    let removed = crate::store::write_within(ctx.store, crate::store::INTERACTIVE_DEADLINE, |txn| {
        txn.purge_quarantine_before(t)
    })?;
    say!(
        ctx,
        "purged {} entries ({} stored bytes) received before {t}; the unresolved ones are counted in the summary",
        removed.entries,
        removed.bytes
    );
    Ok(())
}
