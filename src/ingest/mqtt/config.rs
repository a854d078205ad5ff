//! The `[mqtt]` section of `meterd.toml`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// MQTT gateway ingest. Present in the config = the daemon runs it.
///
/// ```toml
/// [mqtt]
/// broker = "mqtt://127.0.0.1:1883"
/// client_id = "meterd-1"
/// topics = ["meters/+/rtlamr", "meters/+/raw"]
/// shared_group = "meterd"          # subscribe as $share/meterd/<filter>
/// status_topics = ["meters/+/status"]
/// publish_topic = "meterd/reads"
/// # TLS: broker = "mqtts://broker.example:8883", with optional
/// # ca_file, cert_file + key_file (client certificate), server_name
/// [mqtt.endpoints]
/// "scm:54585868" = "E01-001"       # radio endpoint -> billing meter id
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    /// `mqtt://HOST:PORT` (or `tcp://`; port 1883 when absent), or `mqtts://HOST:PORT` (or
    /// `ssl://`; port 8883 when absent) for TLS.
    pub broker: String,
    /// Client id; with a persistent session the broker keeps un-acked messages under this id,
    /// so it must be stable across restarts and unique per meterd instance.
    pub client_id: String,
    pub username: Option<String>,
    /// File holding the password (owner-only permissions, see `secrets`).
    pub password_file: Option<PathBuf>,
    /// Topic filters carrying meter messages, subscribed at QoS 1.
    pub topics: Vec<String>,
    /// MQTT 5 shared subscription group: filters become `$share/GROUP/<filter>`, so several
    /// meterd instances split one broker's load.
    pub shared_group: Option<String>,
    /// Topic filters of gateway status / last-will messages (`online`, `offline`, or JSON with
    /// a `status` or `state` key). Also subscribed (never shared).
    pub status_topics: Vec<String>,
    /// Which topic level (0-based) names the gateway when the payload does not
    /// (`meters/GW1/rtlamr` → level 1 → `GW1`).
    pub gateway_topic_level: usize,
    /// How long the broker keeps the session (subscriptions and un-acked messages) while
    /// meterd is down.
    pub session_expiry_secs: u32,
    /// A group commits once it has this many messages (or after `batch_latency_ms`). While a
    /// commit runs, what arrives meanwhile joins the next group, which can then be larger (up
    /// to `receive_maximum`): under load, fewer and larger transactions.
    pub batch_size: usize,
    /// How long the first message of a group may wait for others before the commit.
    pub batch_latency_ms: u64,
    /// Receive maximum: un-acked messages the broker may send ahead of our acks. Acks follow
    /// each group's durable commit, so this must cover the group being committed and what
    /// arrives meanwhile, or the broker waits on meterd: 10,000 is a commit of 50 ms at
    /// 100,000 messages/s, twice over. The broker may apply a lower limit of its own.
    pub receive_maximum: u16,
    /// The same transmission (heard by several gateways or repeated by the meter) is stored
    /// once within this window.
    pub dedup_window_secs: u64,
    /// A gateway silent longer than this is reported (`meterd gateways list`, logs, alerts).
    pub silence_after_secs: u64,
    /// Gateway health is counted in windows this long (`meterd gateways list`, `/metrics`); the
    /// undecodable share is judged over the current window and the one before it.
    pub health_window_secs: u64,
    /// A gateway whose undecodable share over the recent windows rises above this percentage
    /// is reported (log, alert), once it sent `undecodable_alert_min_messages` there: a failing
    /// antenna or a wrong key roll-out, not only a gateway gone silent.
    pub undecodable_alert_percent: u8,
    pub undecodable_alert_min_messages: u64,
    /// Where validated reads and alerts are published (QoS 1, through the durable outbox);
    /// nothing is published when absent.
    pub publish_topic: Option<String>,
    /// Outbox messages in flight (published, PUBACK not yet received).
    pub publish_inflight: u16,
    pub keep_alive_secs: u64,
    /// wM-Bus AES keys (`METER_ID=HEX` per line, owner-only permissions).
    pub wmbus_key_file: Option<PathBuf>,
    /// `mqtts://` only: PEM file of the CA certificate(s) the broker's certificate must chain
    /// to; the system's roots when absent.
    pub ca_file: Option<PathBuf>,
    /// `mqtts://` only: PEM client certificate (chain) to log in with; needs `key_file`.
    pub cert_file: Option<PathBuf>,
    /// `mqtts://` only: the client certificate's PEM private key (owner-only permissions).
    pub key_file: Option<PathBuf>,
    /// `mqtts://` only: the name the broker's certificate must carry, when `broker` reaches it
    /// by another name or by address.
    pub server_name: Option<String>,
    /// Radio endpoint key (`scm:ID`, `idm:SERIAL`, `r900:ID`, ...) → billing meter id.
    /// Unmapped endpoints are stored under their endpoint key.
    pub endpoints: BTreeMap<String, String>,
}

/// The longest gateway health window: 30 days.
pub const MAX_HEALTH_WINDOW_SECS: u64 = 30 * 24 * 3600;

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            broker: "mqtt://127.0.0.1:1883".into(),
            client_id: "meterd".into(),
            username: None,
            password_file: None,
            topics: vec!["meters/+/rtlamr".into(), "meters/+/raw".into()],
            shared_group: None,
            status_topics: vec!["meters/+/status".into()],
            gateway_topic_level: 1,
            session_expiry_secs: 7 * 24 * 3600,
            batch_size: 1000,
            batch_latency_ms: 20,
            receive_maximum: 10_000,
            dedup_window_secs: 24 * 3600,
            silence_after_secs: 15 * 60,
            health_window_secs: 3600,
            undecodable_alert_percent: 25,
            undecodable_alert_min_messages: 20,
            publish_topic: None,
            publish_inflight: 100,
            keep_alive_secs: 30,
            wmbus_key_file: None,
            ca_file: None,
            cert_file: None,
            key_file: None,
            server_name: None,
            endpoints: BTreeMap::new(),
        }
    }
}

impl MqttConfig {
    /// Host, port and transport of `broker`.
    pub fn broker_addr(&self) -> Result<Broker, String> {
        parse_broker(&self.broker)
    }

    /// The TLS settings (used when `broker` is `mqtts://`).
    pub fn tls(&self) -> TlsSettings {
        TlsSettings {
            ca_file: self.ca_file.clone(),
            cert_file: self.cert_file.clone(),
            key_file: self.key_file.clone(),
            server_name: self.server_name.clone(),
        }
    }

    /// Checks values that would otherwise fail at run time.
    pub fn check(&self) -> Result<(), String> {
        let broker = self.broker_addr()?;
        self.tls().check(broker.tls).map_err(|e| format!("mqtt.{e}"))?;
        if self.client_id.trim().is_empty() {
            return Err("mqtt.client_id is empty".into());
        }
        if self.topics.is_empty() {
            return Err("mqtt.topics is empty".into());
        }
        if self.batch_size == 0 || self.receive_maximum == 0 || self.publish_inflight == 0 {
            return Err("mqtt.batch_size, receive_maximum and publish_inflight must be positive".into());
        }
        if !(1..=MAX_HEALTH_WINDOW_SECS).contains(&self.health_window_secs) || self.undecodable_alert_percent > 100 {
            return Err(format!(
                "mqtt.health_window_secs must be 1 to {MAX_HEALTH_WINDOW_SECS} (30 days) and undecodable_alert_percent at most 100"
            ));
        }
        if let Some(g) = &self.shared_group
            && (g.is_empty() || g.contains(['/', '+', '#']))
        {
            return Err(format!(
                "mqtt.shared_group {g:?} must be a non-empty name without / + #"
            ));
        }
        Ok(())
    }

    /// The filters to subscribe: meter topics (shared when configured), then status topics.
    pub fn subscriptions(&self) -> Vec<String> {
        let shared = |t: &String| match &self.shared_group {
            Some(g) => format!("$share/{g}/{t}"),
            None => t.clone(),
        };
        self.topics
            .iter()
            .map(shared)
            .chain(self.status_topics.iter().cloned())
            .collect()
    }
}

/// TLS settings of a broker connection (`[mqtt]`, `meterd simulate gateway`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub server_name: Option<String>,
}

impl TlsSettings {
    fn any(&self) -> bool {
        self.ca_file.is_some() || self.cert_file.is_some() || self.key_file.is_some() || self.server_name.is_some()
    }

    /// Consistency with the broker URL (`tls`: `mqtts://`); errors name the key.
    pub fn check(&self, tls: bool) -> Result<(), String> {
        if !tls && self.any() {
            return Err(
                "ca_file, cert_file, key_file and server_name are TLS settings: use an mqtts:// broker \
                 (meterd never sends them over plain TCP)"
                    .into(),
            );
        }
        if self.cert_file.is_some() != self.key_file.is_some() {
            return Err("cert_file and key_file go together (client certificate login)".into());
        }
        if let Some(name) = &self.server_name
            && rustls::pki_types::ServerName::try_from(name.as_str()).is_err()
        {
            return Err(format!("server_name {name:?} is not a DNS name or IP address"));
        }
        Ok(())
    }
}

/// A parsed broker URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broker {
    pub host: String,
    pub port: u16,
    /// `mqtts://`: TLS, never plain TCP.
    pub tls: bool,
}

/// `mqtt://host:port`, `tcp://host:port` or `host:port` (plain TCP, port 1883 by default);
/// `mqtts://host:port` or `ssl://host:port` (TLS, port 8883 by default).
pub fn parse_broker(url: &str) -> Result<Broker, String> {
    let (rest, tls) = if let Some(r) = url.strip_prefix("mqtts://").or_else(|| url.strip_prefix("ssl://")) {
        (r, true)
    } else {
        (
            url.strip_prefix("mqtt://")
                .or_else(|| url.strip_prefix("tcp://"))
                .unwrap_or(url),
            false,
        )
    };
    if rest.contains("://") {
        return Err(format!(
            "broker {url:?}: only mqtt:// (plain TCP) and mqtts:// (TLS) are supported"
        ));
    }
    let rest = rest.trim_end_matches('/');
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (
            h,
            p.parse::<u16>()
                .map_err(|_| format!("broker {url:?}: bad port {p:?}"))?,
        ),
        None => (rest, if tls { 8883 } else { 1883 }),
    };
    if host.is_empty() {
        return Err(format!("broker {url:?}: no host"));
    }
    Ok(Broker {
        host: host.to_owned(),
        port,
        tls,
    })
}

/// MQTT topic filter matching (`+` one level, `#` the rest).
pub fn topic_matches(filter: &str, topic: &str) -> bool {
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brokers() {
        let b = |host: &str, port, tls| Broker {
            host: host.into(),
            port,
            tls,
        };
        assert_eq!(
            parse_broker("mqtt://127.0.0.1:1884").unwrap(),
            b("127.0.0.1", 1884, false)
        );
        assert_eq!(parse_broker("localhost").unwrap(), b("localhost", 1883, false));
        assert_eq!(parse_broker("mqtts://h:8884").unwrap(), b("h", 8884, true));
        assert_eq!(parse_broker("mqtts://h").unwrap(), b("h", 8883, true));
        assert_eq!(parse_broker("ssl://h:1").unwrap(), b("h", 1, true));
        assert!(parse_broker("ws://h:8883").is_err());
        assert!(parse_broker("mqtt://h:x").is_err());
    }

    #[test]
    fn tls_settings_need_mqtts() {
        let tls = |broker: &str, f: fn(&mut MqttConfig)| {
            let mut c = MqttConfig {
                broker: broker.into(),
                ..MqttConfig::default()
            };
            f(&mut c);
            c.check()
        };
        assert!(tls("mqtts://h", |_| {}).is_ok());
        let e = tls("mqtt://h", |c| c.ca_file = Some("/ca.pem".into())).unwrap_err();
        assert!(e.contains("mqtts://"), "{e}");
        let e = tls("mqtts://h", |c| c.cert_file = Some("/c.pem".into())).unwrap_err();
        assert!(e.contains("key_file"), "{e}");
        assert!(tls("mqtts://10.0.0.1", |c| c.server_name = Some("broker.lan".into())).is_ok());
        assert!(tls("mqtts://h", |c| c.server_name = Some("bad name!".into())).is_err());
        let toml = "broker = \"mqtts://h\"\nca_file = \"/ca.pem\"\nclient_cert = \"/c\"\n";
        assert!(toml::from_str::<MqttConfig>(toml).is_err());
    }

    #[test]
    fn filters() {
        assert!(topic_matches("meters/+/status", "meters/gw1/status"));
        assert!(!topic_matches("meters/+/status", "meters/gw1/raw"));
        assert!(topic_matches("meters/#", "meters/gw1/raw"));
        assert!(!topic_matches("meters/+", "meters/gw1/raw"));
    }

    #[test]
    fn shared_subscriptions() {
        let c = MqttConfig {
            shared_group: Some("billing".into()),
            ..MqttConfig::default()
        };
        assert_eq!(
            c.subscriptions(),
            vec![
                "$share/billing/meters/+/rtlamr",
                "$share/billing/meters/+/raw",
                "meters/+/status"
            ]
        );
        let toml = "broker = \"mqtt://h:1\"\nbogus = 1\n";
        assert!(toml::from_str::<MqttConfig>(toml).is_err());
    }
}
