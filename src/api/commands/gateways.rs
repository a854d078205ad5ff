//! `meterd gateways list`: the MQTT gateways heard from, their last message and whether they
//! have gone silent (longer than `[mqtt] silence_after_secs`).

use clap::{Args, Subcommand};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::Ctx;
use super::output::print_json;
use crate::ingest::mqtt::health::{by_reason, by_reason_text, undecodable_over};
use crate::ingest::mqtt::silent_for;

#[derive(Debug, Clone, PartialEq, Eq, Subcommand, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GatewaysCmd {
    /// Gateways with their last message, status and silence.
    List(ListArgs),
    /// wM-Bus compact frames held until a full frame of their meter type teaches their layout.
    Held {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Args, Serialize, Deserialize)]
pub struct ListArgs {
    #[arg(long)]
    pub json: bool,
    /// Silence threshold in seconds (default: `[mqtt] silence_after_secs`).
    #[arg(long)]
    pub silence_after: Option<u64>,
}

pub fn run(ctx: &Ctx<'_>, cmd: GatewaysCmd) -> anyhow::Result<()> {
    let args = match cmd {
        GatewaysCmd::List(args) => args,
        GatewaysCmd::Held { json } => return held(ctx, json),
    };
    let mqtt = ctx.config.mqtt.clone().unwrap_or_default();
    let threshold = args.silence_after.unwrap_or(mqtt.silence_after_secs);
    let store = ctx.store;
    let gateways = store.begin_read()?.gateways()?;
    let now = Timestamp::now();
    let rows: Vec<serde_json::Value> = gateways
        .iter()
        .map(|g| {
            let silent = silent_for(g, now, threshold);
            let recent = g.recent();
            let undecodable_by: serde_json::Map<String, serde_json::Value> = g
                .undecodable_by
                .iter()
                .map(|(r, n)| (r.name().to_owned(), json!(n)))
                .collect();
            json!({
                "gateway": g.gateway,
                "last_message_at": g.last_message_at.map(|t| t.to_string()),
                "last_seen": g.last_seen().map(|t| t.to_string()),
                "messages": g.messages,
                "decoded": g.decoded,
                "undecodable": g.undecodable,
                "undecodable_by": undecodable_by,
                "recent": {
                    "since": g.previous_window.as_ref().unwrap_or(&g.window).started_at.map(|t| t.to_string()),
                    "messages": recent.messages,
                    "undecodable": recent.undecodable,
                    "undecodable_by": by_reason(&recent),
                },
                "undecodable_alert": undecodable_over(g, &mqtt).is_some(),
                "status": g.status,
                "status_at": g.status_at.map(|t| t.to_string()),
                "last_topic": g.last_topic,
                "silent": silent.is_some(),
                "silent_secs": silent,
            })
        })
        .collect();
    if args.json {
        return print_json(ctx, &rows);
    }
    say!(
        ctx,
        "{:<20} {:<27} {:>9} {:>9} {:>6} {:<8} {:<12} {:<10} undecodable by reason",
        "gateway",
        "last message",
        "messages",
        "decoded",
        "bad",
        "status",
        "silent",
        "recent bad"
    );
    for (g, r) in gateways.iter().zip(&rows) {
        let recent = g.recent();
        let share = format!(
            "{:.1}%{}",
            recent.share() * 100.0,
            if r["undecodable_alert"] == true { " !" } else { "" }
        );
        say!(
            ctx,
            "{:<20} {:<27} {:>9} {:>9} {:>6} {:<8} {:<12} {:<10} {}",
            g.gateway,
            g.last_message_at.map(|t| t.to_string()).unwrap_or_else(|| "-".into()),
            g.messages,
            g.decoded,
            g.undecodable,
            g.status.as_deref().unwrap_or("-"),
            r["silent_secs"]
                .as_u64()
                .map(|s| format!("yes, {s} s"))
                .unwrap_or_else(|| "no".into()),
            share,
            by_reason_text(&g.undecodable_by)
        );
    }
    Ok(())
}

fn held(ctx: &Ctx<'_>, json: bool) -> anyhow::Result<()> {
    let held = ctx.store.begin_read()?.held_telegrams()?;
    let rows: Vec<serde_json::Value> = held
        .iter()
        .map(|(id, h)| {
            json!({
                "id": id,
                "received_at": h.received_at.to_string(),
                "gateway": h.gateway,
                "source": h.locator,
                "meter": h.meter,
                "manufacturer": meterd_protocols::mbus::header::manufacturer_code(h.manufacturer),
                "version": h.version,
                "device_type": h.device_type,
                "signature": format!("{:04X}", h.signature),
            })
        })
        .collect();
    if json {
        return print_json(ctx, &json!({ "held": rows, "limit": crate::store::MAX_HELD }));
    }
    say!(
        ctx,
        "{:>8}  {:<27} {:<10} {:<20} waiting for the layout of",
        "id",
        "received",
        "meter",
        "gateway"
    );
    for (id, h) in &held {
        say!(
            ctx,
            "{:>8}  {:<27} {:<10} {:<20} {} version {} type {:02X}, signature {:04X}",
            id,
            h.received_at.to_string(),
            h.meter,
            h.gateway,
            meterd_protocols::mbus::header::manufacturer_code(h.manufacturer),
            h.version,
            h.device_type,
            h.signature
        );
    }
    say!(
        ctx,
        "{} compact frame(s) held (at most {})",
        held.len(),
        crate::store::MAX_HELD
    );
    Ok(())
}
