//! `meterd simulate gateway`: publishes simulated AMR gateway traffic to a broker (QoS 1) and
//! waits until the broker acknowledged every message.

use std::collections::{BTreeMap, HashSet};
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use serde_json::json;

use crate::cli::Env;
use crate::ingest::mqtt::config::{TlsSettings, parse_broker};
use crate::simulate::gateway::{SimOptions, Traffic};

#[derive(Debug, Args)]
pub struct GatewayArgs {
    /// Broker URL, `mqtt://HOST:PORT` or `mqtts://HOST:PORT` (TLS).
    #[arg(long)]
    pub broker: String,
    /// TLS settings (mqtts://).
    #[command(flatten)]
    pub tls: TlsArgs,
    /// Radio meters (SCM, SCM+, IDM, R900 mixed).
    #[arg(long, default_value_t = 100)]
    pub meters: usize,
    /// Messages per second (0: as fast as the broker takes them).
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Gateways; each transmission is heard by 1 to 3 of them.
    #[arg(long, default_value_t = 3)]
    pub gateways: usize,
    /// Messages to publish, then stop (default: until interrupted).
    #[arg(long)]
    pub count: Option<u64>,
    /// Share of messages with a corrupted packet (a flipped bit).
    #[arg(long, default_value_t = 0.02)]
    pub corrupt_rate: f64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Topic prefix: messages go to PREFIX/gwN/rtlamr and PREFIX/gwN/raw.
    #[arg(long, default_value = "meters")]
    pub topic_prefix: String,
    /// Write one JSON line per distinct intact transmission (key, endpoint, register).
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// MQTT client id.
    #[arg(long)]
    pub client_id: Option<String>,
}

/// The `[mqtt]` TLS keys as flags, for an `mqtts://` broker.
#[derive(Debug, Clone, Default, Args)]
pub struct TlsArgs {
    /// mqtts://: PEM CA certificate(s) of the broker (default: the system's roots).
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// mqtts://: PEM client certificate to log in with (with --key-file).
    #[arg(long, value_name = "FILE")]
    pub cert_file: Option<PathBuf>,
    /// mqtts://: the client certificate's PEM private key (owner-only permissions).
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// mqtts://: the name the broker's certificate must carry (a broker reached by address).
    #[arg(long)]
    pub server_name: Option<String>,
}

pub fn run(env: &Env, args: GatewayArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let summary = runtime.block_on(simulate(args))?;
    say!(env, "{}", serde_json::to_string(&summary)?);
    Ok(())
}

/// Publishes the traffic; returns a summary (also what the tests compare the store against).
pub async fn simulate(args: GatewayArgs) -> anyhow::Result<serde_json::Value> {
    let broker = parse_broker(&args.broker).map_err(anyhow::Error::msg)?;
    let client_id = args
        .client_id
        .clone()
        .unwrap_or_else(|| format!("meterd-sim-{}-{}", args.seed, std::process::id()));
    let mut o = MqttOptions::new(client_id, broker.host.clone(), broker.port);
    let tls = TlsSettings {
        ca_file: args.tls.ca_file.clone(),
        cert_file: args.tls.cert_file.clone(),
        key_file: args.tls.key_file.clone(),
        server_name: args.tls.server_name.clone(),
    };
    crate::ingest::mqtt::tls::apply(&mut o, &broker, &tls).context("--broker TLS")?;
    // A persistent session: un-acked publishes survive a broker restart.
    o.set_clean_start(false)
        .set_session_expiry_interval(Some(600))
        .set_outgoing_inflight_upper_limit(500);
    o.set_keep_alive(Duration::from_secs(10));
    let (client, mut eventloop) = AsyncClient::new(o, 1000);
    let (acked_tx, mut acked_rx) = tokio::sync::watch::channel(0u64);
    let poller = tokio::spawn(async move {
        let mut acked = 0u64;
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => {
                    acked += 1;
                    let _ = acked_tx.send(acked);
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "simulator: broker connection; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    });

    let opts = SimOptions {
        meters: args.meters,
        gateways: args.gateways,
        corrupt_rate: args.corrupt_rate.clamp(0.0, 1.0),
        seed: args.seed,
        topic_prefix: args.topic_prefix.clone(),
        start: jiff::Timestamp::now()
            .checked_sub(jiff::SignedDuration::from_hours(24))
            .expect("time"),
    };
    let mut manifest = match &args.manifest {
        Some(p) => Some(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => None,
    };
    let mut keys = HashSet::new();
    let (mut published, mut corrupt) = (0u64, 0u64);
    let mut by_protocol: BTreeMap<&str, u64> = BTreeMap::new();
    let started = tokio::time::Instant::now();
    for m in Traffic::new(opts) {
        if args.count.is_some_and(|c| published >= c) {
            break;
        }
        if args.rate > 0.0 {
            let due = started + Duration::from_secs_f64(published as f64 / args.rate);
            tokio::time::sleep_until(due).await;
        }
        client.publish(m.topic, QoS::AtLeastOnce, false, m.payload).await?;
        published += 1;
        *by_protocol.entry(m.protocol).or_default() += 1;
        match m.key {
            Some(k) => {
                if keys.insert(k.clone())
                    && let Some(w) = manifest.as_mut()
                {
                    writeln!(
                        w,
                        "{}",
                        json!({"key": k, "endpoint": m.endpoint, "register": m.register})
                    )?;
                }
            }
            None => corrupt += 1,
        }
    }
    if let Some(mut w) = manifest.take() {
        w.flush()?;
    }
    // Every message is at the broker once it acknowledged it.
    while *acked_rx.borrow_and_update() < published {
        if tokio::time::timeout(Duration::from_secs(120), acked_rx.changed())
            .await
            .is_err()
        {
            anyhow::bail!(
                "the broker acknowledged only {} of {published} messages",
                *acked_rx.borrow()
            );
        }
    }
    let _ = client.disconnect().await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    poller.abort();
    Ok(json!({
        "published": published,
        "transmissions": keys.len(),
        "corrupt": corrupt,
        "by_protocol": by_protocol,
        "seconds": started.elapsed().as_secs_f64(),
    }))
}
