//! The MQTT session: one task owns the rumqttc v5 client, a second polls its event loop.
//!
//! - Persistent session: clean start off and a session expiry interval, so the broker keeps the
//!   subscriptions and every un-acked QoS 1 message while meterd is down or reconnecting.
//! - Manual acks: a message is acked only after the transaction holding its reads (or its
//!   quarantine entry) committed. Messages are decoded as they arrive and grouped (up to
//!   `batch_size` messages or `batch_latency_ms`); one group commits while the next one fills.
//!   One commit at a time (the store has one writer): group N+1's commit starts only after
//!   group N's returned and N's acks were queued, and each ack follows its own group's commit.
//!   At a graceful stop the acks of every committed group are written before the DISCONNECT.
//! - A message received on an earlier connection is never acked on a later one: the broker
//!   redelivers it (dup) and de-duplication stores it once.
//! - Outbox: rows are published in id order; rumqttc reports `Outgoing::Publish(pkid)` in the
//!   order the publishes were requested, which pairs each outbox id with its packet id; a
//!   PUBACK removes the row (in the next transaction). Rows left at a crash are republished at
//!   start: consumers dedupe on `msg_id`.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use jiff::Timestamp;
use meterd_protocols::decode::Keys;
use rumqttc::Outgoing;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, Publish, PublishProperties};
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::commit::{Committed, Job, Message, commit_group, expire_due};
use super::config::{MqttConfig, topic_matches};
use super::health;
use super::message::{decode_payload, gateway_of_topic, locator_of, status_unit};
use crate::model::OutboxEntry;
use crate::store::Store;
use crate::vee::VeeConfig;
use crate::vee::interval::IntervalConfig;

/// The ingest of the MQTT gateways' messages: what its session ([`run`]) needs.
#[derive(Clone)]
pub struct GatewayIngest {
    pub store: Arc<dyn Store>,
    pub config: Arc<MqttConfig>,
    pub vee: Arc<VeeConfig>,
    /// `[intervals]`: the local days and rules of the IDM/NetIDM interval days.
    pub intervals: Arc<IntervalConfig>,
    pub keys: Arc<Keys>,
    /// Messages committed so far (for embedders and the benchmark).
    pub progress: Option<tokio::sync::watch::Sender<u64>>,
}

/// Waits until a session's [`GatewayIngest::progress`] says `n` messages are committed; fails
/// when no message is committed for `stall` (the demo, the benchmark and the tests run a session
/// in process and wait for it this way).
pub async fn committed(
    progress: &mut tokio::sync::watch::Receiver<u64>,
    n: u64,
    stall: Duration,
) -> anyhow::Result<()> {
    while *progress.borrow_and_update() < n {
        tokio::time::timeout(stall, progress.changed())
            .await
            .with_context(|| format!("ingest stalled at {} of {n} messages", *progress.borrow()))?
            .context("the ingest session ended")?;
    }
    Ok(())
}

/// A message waiting for its group to commit.
struct Pending {
    epoch: u64,
    publish: Publish,
}

/// Outbox rows and their packet ids.
#[derive(Default)]
struct Outbox {
    /// Loaded, not yet handed to the client.
    queue: VecDeque<(u64, OutboxEntry)>,
    /// Handed to the client, waiting for `Outgoing::Publish(pkid)`, in request order.
    requested: VecDeque<u64>,
    by_pkid: HashMap<u16, u64>,
    /// PUBACKed, to remove in the next transaction.
    acked: Vec<u64>,
}

impl Outbox {
    fn in_flight(&self) -> usize {
        self.requested.len() + self.by_pkid.len()
    }
    fn on_publish(&mut self, pkid: u16) {
        // A retransmission after a reconnect reuses its packet id: already paired.
        if pkid == 0 || self.by_pkid.contains_key(&pkid) {
            return;
        }
        if let Some(id) = self.requested.pop_front() {
            self.by_pkid.insert(pkid, id);
        }
    }
    fn on_puback(&mut self, pkid: u16) {
        if let Some(id) = self.by_pkid.remove(&pkid) {
            self.acked.push(id);
        }
    }
}

fn options(cfg: &MqttConfig) -> anyhow::Result<MqttOptions> {
    let broker = cfg.broker_addr().map_err(anyhow::Error::msg)?;
    let mut o = MqttOptions::new(cfg.client_id.clone(), broker.host.clone(), broker.port);
    super::tls::apply(&mut o, &broker, &cfg.tls()).context("mqtt TLS")?;
    o.set_clean_start(false)
        .set_session_expiry_interval(Some(cfg.session_expiry_secs))
        .set_manual_acks(true)
        .set_keep_alive(Duration::from_secs(cfg.keep_alive_secs.max(5)))
        .set_receive_maximum(Some(cfg.receive_maximum))
        .set_outgoing_inflight_upper_limit(cfg.publish_inflight)
        .set_max_packet_size(Some(256 * 1024));
    if let Some(user) = &cfg.username {
        let password = match &cfg.password_file {
            Some(p) => crate::secrets::read_private(p)?
                .trim_end_matches(['\r', '\n'])
                .to_owned(),
            None => String::new(),
        };
        o.set_credentials(user.clone(), password);
    }
    Ok(o)
}

/// Runs the MQTT ingest until `token` is cancelled.
pub async fn run(ingest: GatewayIngest, token: CancellationToken) -> anyhow::Result<()> {
    let cfg = Arc::clone(&ingest.config);
    let opts = options(&cfg)?;
    // Requests to the event loop: a whole window of acks (one group can hold every message the
    // broker sent ahead of our acks), the outbox's publishes and a margin, so acking a group
    // never waits for the event loop to write the acks before it.
    let requests = usize::from(cfg.receive_maximum) + usize::from(cfg.publish_inflight) + 64;
    let (client, mut eventloop) = AsyncClient::new(opts, requests);

    // The poller: drives the connection, reconnects with backoff, forwards every event. At
    // shutdown it keeps driving until the broker closed the connection after our DISCONNECT
    // (so the acks queued before it reached the broker), or `poll_stop`.
    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel();
    let poll_token = token.clone();
    let poll_stop = CancellationToken::new();
    let poll_stopped = poll_stop.clone();
    let mut poller = tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
        loop {
            let ev = tokio::select! {
                () = poll_stopped.cancelled() => break,
                ev = eventloop.poll() => ev,
            };
            match ev {
                Ok(ev) => {
                    if matches!(ev, Event::Incoming(Packet::ConnAck(_))) {
                        backoff = Duration::from_millis(100);
                    }
                    // After a shutdown nobody reads the events any more: drop them. After the
                    // DISCONNECT the loop reads on until the broker closes the connection (the
                    // next poll fails, below): by then the broker has read every ack written
                    // before it. (Closing first raced a quick restart: mosquitto let the new
                    // connection take the session over before reading the old one's last
                    // acks, and redelivered those messages.)
                    let _ = ev_tx.send(Ok(ev));
                }
                Err(e) => {
                    // Shutting down: no reconnecting just to say goodbye.
                    if poll_token.is_cancelled() {
                        break;
                    }
                    let _ = ev_tx.send(Err(e.to_string()));
                    tokio::select! {
                        () = poll_stopped.cancelled() => break,
                        () = poll_token.cancelled() => break,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    });

    let keys = Arc::clone(&ingest.keys);
    let mut epoch = 0u64;
    let mut connected = false;
    let mut filling: Vec<Message> = Vec::new();
    let mut filling_acks: Vec<Pending> = Vec::new();
    let mut deadline: Option<Instant> = None;
    let mut running: Option<(JoinHandle<crate::store::Result<Committed>>, Vec<Pending>)> = None;
    let mut outbox = Outbox::default();
    let mut watch = health::Watch::default();
    let mut last_expire = Instant::now();
    let mut totals = (0u64, 0u64, 0u64);
    let mut pending_alerts: Vec<OutboxEntry> = Vec::new();
    let health_every = Duration::from_secs((cfg.silence_after_secs / 4).clamp(1, 30));
    let mut health = tokio::time::interval(health_every);

    if cfg.publish_topic.is_some() {
        let store = Arc::clone(&ingest.store);
        let rows = tokio::task::spawn_blocking(move || store.begin_read()?.outbox(0, usize::MAX)).await??;
        if !rows.is_empty() {
            tracing::info!(
                rows = rows.len(),
                "mqtt: republishing the outbox left from the previous run"
            );
        }
        outbox.queue.extend(rows);
    }

    let result: anyhow::Result<()> = loop {
        // Start a commit when none runs and the group is full, due, or there is outbox work.
        if running.is_none() {
            let due = deadline.is_some_and(|d| Instant::now() >= d) || filling.len() >= cfg.batch_size;
            let housekeeping = !outbox.acked.is_empty() || !pending_alerts.is_empty();
            if due || (filling.is_empty() && housekeeping) {
                let expire = expire_due(&mut last_expire);
                let job = Job {
                    messages: std::mem::take(&mut filling),
                    published: std::mem::take(&mut outbox.acked),
                    alerts: std::mem::take(&mut pending_alerts),
                    expire_seen: expire,
                    replay: false,
                    keys: Arc::clone(&ingest.keys),
                };
                let acks = std::mem::take(&mut filling_acks);
                deadline = None;
                let (store, c, v) = (Arc::clone(&ingest.store), Arc::clone(&cfg), Arc::clone(&ingest.vee));
                let i = Arc::clone(&ingest.intervals);
                running = Some((
                    tokio::task::spawn_blocking(move || commit_group(store.as_ref(), &c, &v, &i, job)),
                    acks,
                ));
            }
        }
        // Hand outbox rows to the client, a bounded number at a time.
        if connected {
            while outbox.in_flight() < usize::from(cfg.publish_inflight) {
                let Some((id, entry)) = outbox.queue.pop_front() else {
                    break;
                };
                let msg_id = serde_json::from_slice::<serde_json::Value>(&entry.payload)
                    .ok()
                    .and_then(|v| v.get("msg_id").and_then(|m| m.as_str()).map(str::to_owned))
                    .unwrap_or_else(|| format!("outbox:{id}"));
                let props = PublishProperties {
                    user_properties: vec![("msg_id".into(), msg_id)],
                    ..Default::default()
                };
                client
                    .publish_with_properties(
                        entry.topic.clone(),
                        QoS::AtLeastOnce,
                        false,
                        entry.payload.clone(),
                        props,
                    )
                    .await?;
                outbox.requested.push_back(id);
            }
        }
        let sleep_until = deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            () = token.cancelled() => break Ok(()),
            joined = async { (&mut running.as_mut().expect("guarded").0).await }, if running.is_some() => {
                let (_, acks) = running.take().expect("guarded");
                let done = joined.context("mqtt commit task")?.context("mqtt: committing a group")?;
                // Durable now: ack what this connection delivered.
                for p in acks.iter().filter(|p| p.epoch == epoch) {
                    client.ack(&p.publish).await?;
                }
                let stale = acks.iter().filter(|p| p.epoch != epoch).count();
                if stale > 0 {
                    tracing::debug!(stale, "mqtt: not acking messages of an earlier connection (the broker redelivers them)");
                }
                for (outcome, n) in done.outcomes() {
                    if n > 0 {
                        crate::metrics::counter_add(crate::metrics::FRAMES, &[("source", "mqtt"), ("outcome", outcome)], n);
                    }
                }
                totals.0 += done.messages;
                if let Some(p) = &ingest.progress {
                    p.send_replace(totals.0);
                }
                totals.1 += done.reads.imported;
                totals.2 += done.quarantined;
                if done.messages > 0 {
                    tracing::info!(
                        messages = done.messages, frames = done.frames, duplicates = done.duplicates,
                        reads = done.reads.imported, flagged = done.reads.flagged, quarantined = done.quarantined,
                        held = done.held, released = done.released,
                        intervals = done.intervals, total_messages = totals.0, total_reads = totals.1,
                        total_quarantined = totals.2, "mqtt: committed"
                    );
                }
                outbox.queue.extend(done.outbox);
            }
            ev = ev_rx.recv() => {
                // Handle everything already queued before looking at timers and commits again:
                // one select per burst instead of one per message.
                let mut burst = vec![ev];
                while burst.len() < 4096 && filling.len() + burst.len() < cfg.batch_size {
                    match ev_rx.try_recv() {
                        Ok(e) => burst.push(Some(e)),
                        Err(_) => break,
                    }
                }
                let mut stop = None;
                for ev in burst {
                    match ev {
                        // The poller stops on the same token: a shutdown, not a failure.
                        None if token.is_cancelled() => { stop = Some(Ok(())); break }
                        None => { stop = Some(Err(anyhow::anyhow!("mqtt event loop stopped"))); break }
                        Some(Err(e)) => {
                            if connected {
                                tracing::warn!(error = %e, "mqtt: connection lost; reconnecting with backoff");
                            } else {
                                // A refused certificate says why (unknown issuer, name, expiry).
                                tracing::warn!(error = %e, broker = %cfg.broker, "mqtt: cannot connect; retrying with backoff");
                            }
                            connected = false;
                        }
                        Some(Ok(Event::Incoming(Packet::ConnAck(ack)))) => {
                            epoch += 1;
                            connected = true;
                            // Subscribing again is harmless and covers a session the broker dropped.
                            for filter in cfg.subscriptions() {
                                client.subscribe(filter, QoS::AtLeastOnce).await?;
                            }
                            tracing::info!(broker = %cfg.broker, session_present = ack.session_present, filters = ?cfg.subscriptions(), "mqtt: connected and subscribed");
                        }
                        Some(Ok(Event::Incoming(Packet::Publish(p)))) => {
                            let received = Timestamp::now();
                            let topic = String::from_utf8_lossy(&p.topic).into_owned();
                            let gateway = gateway_of_topic(&topic, cfg.gateway_topic_level);
                            let units = if cfg.status_topics.iter().any(|f| topic_matches(f, &topic)) {
                                vec![status_unit(&topic, &p.payload, gateway)]
                            } else {
                                decode_payload(&topic, &p.payload, &gateway, received, &keys)
                            };
                            // The gateway's `last_topic` keeps it: within its limit, or quoted and cut.
                            let topic = locator_of(&topic);
                            filling.push(Message { topic, units, received });
                            if p.qos != QoS::AtMostOnce {
                                filling_acks.push(Pending { epoch, publish: p });
                            }
                            if deadline.is_none() {
                                deadline = Some(Instant::now() + Duration::from_millis(cfg.batch_latency_ms));
                            }
                        }
                        Some(Ok(Event::Outgoing(Outgoing::Publish(pkid)))) => outbox.on_publish(pkid),
                        Some(Ok(Event::Incoming(Packet::PubAck(ack)))) => outbox.on_puback(ack.pkid),
                        Some(Ok(_)) => {}
                    }
                }
                if let Some(r) = stop {
                    break r;
                }
            }
            // Only while no commit runs: a group whose deadline passed during a commit waits
            // for that commit (its end wakes the loop); a ready timer here would spin the loop.
            () = tokio::time::sleep_until(sleep_until), if deadline.is_some() && running.is_none() => {}
            _ = health.tick() => {
                let store = Arc::clone(&ingest.store);
                let gateways = tokio::task::spawn_blocking(move || store.begin_read()?.gateways()).await??;
                for (name, change) in watch.check(&gateways, Timestamp::now(), &cfg) {
                    let Some(g) = gateways.iter().find(|g| g.gateway == name) else { continue };
                    health::log(&name, g, &change);
                    if let (Some(topic), Some(payload)) = (&cfg.publish_topic, health::alert(g, &change)) {
                        pending_alerts.push(OutboxEntry { topic: topic.clone(), payload: serde_json::to_vec(&payload)? });
                    }
                }
            }
        }
    };

    // A commit still running finishes (it cannot be interrupted); once it is durable its
    // messages are acked like any other group's. What was not committed stays un-acked and
    // comes back from the broker, which de-duplication absorbs.
    if let Some((handle, acks)) = running.take()
        && let Ok(Ok(_)) = handle.await
        && connected
    {
        for p in acks.iter().filter(|p| p.epoch == epoch) {
            if client.try_ack(&p.publish).is_err() {
                break;
            }
        }
    }
    // Rows already PUBACKed leave the outbox now rather than being republished next start.
    if !outbox.acked.is_empty() {
        let job = Job {
            published: std::mem::take(&mut outbox.acked),
            ..Job::default()
        };
        let (store, c, v) = (Arc::clone(&ingest.store), Arc::clone(&cfg), Arc::clone(&ingest.vee));
        let i = Arc::clone(&ingest.intervals);
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || commit_group(store.as_ref(), &c, &v, &i, job)).await {
            tracing::warn!(error = %e, "mqtt: could not clear acknowledged outbox rows; they will be published again");
        }
    }
    // DISCONNECT after the acks queued before it; the poller stops once the broker closed the
    // connection (or after a second, when the broker is gone).
    let _ = tokio::time::timeout(Duration::from_secs(1), client.disconnect()).await;
    token.cancel();
    if tokio::time::timeout(Duration::from_secs(1), &mut poller).await.is_err() {
        poll_stop.cancel();
        let _ = poller.await;
    }
    result
}
