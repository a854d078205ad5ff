//! `meterd gateways list`: the MQTT gateways heard from, their last message and whether they
//! have gone silent (longer than `[mqtt] silence_after_secs`).

use clap::{Args, Subcommand};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::Ctx;
use super::output::print_json;
use crate::ingest::mqtt::{MqttConfig, silent_for};

#[derive(Debug, Clone, PartialEq, Eq, Subcommand, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GatewaysCmd {
    /// Gateways with their last message, status and silence.
    List(ListArgs),
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
    let GatewaysCmd::List(args) = cmd;
    let threshold = args.silence_after.unwrap_or_else(|| {
        ctx.config
            .mqtt
            .as_ref()
            .map_or(MqttConfig::default().silence_after_secs, |m| m.silence_after_secs)
    });
    let store = ctx.store;
    let gateways = store.begin_read()?.gateways()?;
    let now = Timestamp::now();
    let rows: Vec<serde_json::Value> = gateways
        .iter()
        .map(|g| {
            let silent = silent_for(g, now, threshold);
            json!({
                "gateway": g.gateway,
                "last_message_at": g.last_message_at.map(|t| t.to_string()),
                "last_seen": g.last_seen().map(|t| t.to_string()),
                "messages": g.messages,
                "undecodable": g.undecodable,
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
        "{:<20} {:<27} {:>9} {:>6} {:<8} silent",
        "gateway",
        "last message",
        "messages",
        "bad",
        "status"
    );
    for (g, r) in gateways.iter().zip(&rows) {
        say!(
            ctx,
            "{:<20} {:<27} {:>9} {:>6} {:<8} {}",
            g.gateway,
            g.last_message_at.map(|t| t.to_string()).unwrap_or_else(|| "-".into()),
            g.messages,
            g.undecodable,
            g.status.as_deref().unwrap_or("-"),
            r["silent_secs"]
                .as_u64()
                .map(|s| format!("yes, {s} s"))
                .unwrap_or_else(|| "no".into())
        );
    }
    Ok(())
}
