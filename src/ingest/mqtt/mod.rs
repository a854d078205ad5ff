//! AMR/AMI gateways over MQTT: radio reads in, nothing lost.
//!
//! - [`config`]: the `[mqtt]` section.
//! - [`message`]: payload → decoded frames (rtlamr JSON, envelopes, raw hex or binary frames).
//! - [`commit`]: a group of messages → one durable transaction (dedup, reads through
//!   `accept_in`, interval reads and IDM interval days, tamper-on-change, quarantine, gateway
//!   health, outbox).
//! - [`client`]: the rumqttc v5 session (persistent, manual acks after commit, reconnect with
//!   backoff, outbox publishing matched to PUBACKs).

pub mod client;
pub mod commit;
pub mod config;
pub mod health;
pub mod message;
pub mod tls;

use std::sync::Arc;

use meterd_protocols::decode::Keys;
use tokio_util::sync::CancellationToken;

pub use client::GatewayIngest;
pub use config::MqttConfig;
pub use health::silent_for;

use crate::store::Store;
use crate::vee::VeeConfig;
use crate::vee::interval::IntervalConfig;

/// The daemon component: the ingest over the store, with the VEE rules, `[intervals]` and its
/// own `[mqtt]` section, until `token` is cancelled.
pub async fn component(
    store: Arc<dyn Store>,
    vee: Arc<VeeConfig>,
    intervals: Arc<IntervalConfig>,
    cfg: MqttConfig,
    token: CancellationToken,
) -> anyhow::Result<()> {
    cfg.check().map_err(anyhow::Error::msg)?;
    let keys = match &cfg.wmbus_key_file {
        Some(p) => crate::secrets::read_key_file(p)?,
        None => Keys::new(),
    };
    let ingest = GatewayIngest {
        store,
        vee,
        intervals,
        config: Arc::new(cfg),
        keys: Arc::new(keys),
        progress: None,
    };
    client::run(ingest, token).await
}
