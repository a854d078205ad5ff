//! Gateway health you can act on: a gateway gone silent, and a gateway whose undecodable share
//! rose above `[mqtt] undecodable_alert_percent` (a failing antenna shows as CRC/BCH faults, a
//! wrong key roll-out as key faults). Each is reported once when it starts and once when it
//! ends; the counts come from the store ([`GatewayState`]), so every instance sharing a store
//! judges the same numbers.

use std::collections::HashSet;

use jiff::Timestamp;
use serde_json::json;

use super::config::MqttConfig;
use crate::model::{GatewayState, RecentHealth};

/// A change in a gateway's health.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Silent { secs: u64 },
    HeardAgain,
    Undecodable(RecentHealth),
    DecodingAgain(RecentHealth),
}

/// Seconds a gateway has been silent beyond `threshold_secs`, if it has.
pub fn silent_for(g: &GatewayState, now: Timestamp, threshold_secs: u64) -> Option<u64> {
    let last = g.last_seen()?;
    let secs = now.duration_since(last).as_secs();
    (secs >= 0 && secs as u64 > threshold_secs).then_some(secs as u64)
}

/// The recent counts of a gateway whose undecodable share is over the limit, if it is.
pub fn undecodable_over(g: &GatewayState, cfg: &MqttConfig) -> Option<RecentHealth> {
    let recent = g.recent();
    let over = recent.messages >= cfg.undecodable_alert_min_messages.max(1)
        && recent.undecodable * 100 > recent.messages * u64::from(cfg.undecodable_alert_percent);
    over.then_some(recent)
}

/// What the session remembers between checks: the gateways reported silent or undecodable.
#[derive(Debug, Default)]
pub struct Watch {
    silent: HashSet<String>,
    undecodable: HashSet<String>,
}

impl Watch {
    /// The changes since the last check.
    pub fn check(&mut self, gateways: &[GatewayState], now: Timestamp, cfg: &MqttConfig) -> Vec<(String, Change)> {
        let mut out = Vec::new();
        for g in gateways {
            match silent_for(g, now, cfg.silence_after_secs) {
                Some(secs) if self.silent.insert(g.gateway.clone()) => {
                    out.push((g.gateway.clone(), Change::Silent { secs }))
                }
                Some(_) => {}
                None if self.silent.remove(&g.gateway) => out.push((g.gateway.clone(), Change::HeardAgain)),
                None => {}
            }
            match undecodable_over(g, cfg) {
                Some(recent) if self.undecodable.insert(g.gateway.clone()) => {
                    out.push((g.gateway.clone(), Change::Undecodable(recent)))
                }
                Some(_) => {}
                None if self.undecodable.remove(&g.gateway) => {
                    out.push((g.gateway.clone(), Change::DecodingAgain(g.recent())))
                }
                None => {}
            }
        }
        out
    }
}

/// The alert published for a change (`[mqtt] publish_topic`), if it is one; `msg_id` is
/// stable for one episode, so a republished alert is recognised by consumers.
pub fn alert(g: &GatewayState, change: &Change) -> Option<serde_json::Value> {
    match change {
        Change::Silent { secs } => {
            let since = g.last_seen().map(|t| t.to_string());
            Some(json!({
                "msg_id": format!("alert:gateway_silent:{}:{}", g.gateway, since.clone().unwrap_or_default()),
                "kind": "alert", "alert": "gateway_silent", "gateway": g.gateway, "last_seen": since,
                "silent_secs": secs,
            }))
        }
        Change::Undecodable(recent) => {
            let since = g.previous_window.as_ref().unwrap_or(&g.window).started_at;
            let since = since.map(|t| t.to_string()).unwrap_or_default();
            Some(json!({
                "msg_id": format!("alert:gateway_undecodable:{}:{since}", g.gateway),
                "kind": "alert", "alert": "gateway_undecodable", "gateway": g.gateway,
                "messages": recent.messages, "undecodable": recent.undecodable,
                "percent": (recent.share() * 1000.0).round() / 10.0,
                "by_reason": by_reason(recent),
            }))
        }
        Change::HeardAgain | Change::DecodingAgain(_) => None,
    }
}

/// `{"crc": 3, "key": 9}`.
pub fn by_reason(recent: &RecentHealth) -> serde_json::Map<String, serde_json::Value> {
    recent
        .by_reason
        .iter()
        .map(|(r, n)| (r.name().to_owned(), json!(n)))
        .collect()
}

/// `crc 3, key 9` for logs and the list.
pub fn by_reason_text(by: &std::collections::BTreeMap<crate::model::Undecodable, u64>) -> String {
    let parts: Vec<String> = by.iter().map(|(r, n)| format!("{} {n}", r.name())).collect();
    if parts.is_empty() { "-".into() } else { parts.join(", ") }
}

/// Logs a change with what an operator needs to act on it.
pub fn log(gateway: &str, g: &GatewayState, change: &Change) {
    match change {
        Change::Silent { secs } => {
            tracing::warn!(gateway, silent_secs = secs, last_seen = ?g.last_seen().map(|t| t.to_string()), "mqtt: gateway silent")
        }
        Change::HeardAgain => tracing::info!(gateway, "mqtt: gateway heard again"),
        Change::Undecodable(r) => tracing::warn!(
            gateway,
            messages = r.messages,
            undecodable = r.undecodable,
            by_reason = %by_reason_text(&r.by_reason),
            "mqtt: gateway's undecodable share {:.1}% is over the limit (CRC/BCH faults point at the radio or antenna, key faults at the keys)",
            r.share() * 100.0
        ),
        Change::DecodingAgain(r) => tracing::info!(
            gateway,
            messages = r.messages,
            undecodable = r.undecodable,
            "mqtt: gateway's undecodable share back under the limit ({:.1}%)",
            r.share() * 100.0
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Undecodable;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn a_rising_undecodable_share_is_reported_once_and_its_end_too() {
        let cfg = MqttConfig {
            undecodable_alert_percent: 25,
            undecodable_alert_min_messages: 20,
            health_window_secs: 600,
            silence_after_secs: 3600,
            ..MqttConfig::default()
        };
        let mut g = GatewayState::new("pole-1");
        let mut watch = Watch::default();
        // A healthy hour: 100 decoded, 5 CRC faults.
        for i in 0..105 {
            let t = at("2026-05-01T10:00:00Z") + jiff::SignedDuration::from_secs(i * 10);
            g.count(t, (i % 21 == 0).then_some(Undecodable::Crc), cfg.health_window_secs);
        }
        let now = at("2026-05-01T10:20:00Z");
        assert_eq!(watch.check(std::slice::from_ref(&g), now, &cfg), vec![]);
        // A key roll-out goes wrong: 30 key faults in a row.
        for i in 0..30 {
            let t = at("2026-05-01T10:30:00Z") + jiff::SignedDuration::from_secs(i);
            g.count(t, Some(Undecodable::Key), cfg.health_window_secs);
        }
        let changes = watch.check(std::slice::from_ref(&g), at("2026-05-01T10:31:00Z"), &cfg);
        let [(name, Change::Undecodable(recent))] = changes.as_slice() else {
            panic!("{changes:?}")
        };
        assert_eq!(name, "pole-1");
        assert_eq!(recent.by_reason.get(&Undecodable::Key), Some(&30));
        let alert = alert(&g, &changes[0].1).unwrap();
        assert_eq!(alert["alert"], "gateway_undecodable");
        assert_eq!(alert["by_reason"]["key"], 30);
        // Reported once while it lasts.
        assert_eq!(
            watch.check(std::slice::from_ref(&g), at("2026-05-01T10:32:00Z"), &cfg),
            vec![]
        );
        // Keys fixed: two clean windows later the share is back under the limit.
        for i in 0..200 {
            let t = at("2026-05-01T10:41:00Z") + jiff::SignedDuration::from_secs(i * 6);
            g.count(t, None, cfg.health_window_secs);
        }
        let changes = watch.check(std::slice::from_ref(&g), at("2026-05-01T11:01:00Z"), &cfg);
        assert!(
            matches!(changes.as_slice(), [(_, Change::DecodingAgain(_))]),
            "{changes:?}"
        );
        // The lifetime counts keep everything.
        assert_eq!(g.messages, 335);
        assert_eq!(g.undecodable_by.get(&Undecodable::Key), Some(&30));
        assert_eq!(g.decoded + g.undecodable, g.messages);
    }

    #[test]
    fn too_few_messages_never_alert() {
        let cfg = MqttConfig::default();
        let mut g = GatewayState::new("truck-2");
        for _ in 0..(cfg.undecodable_alert_min_messages - 1) {
            g.count(
                at("2026-05-01T10:00:00Z"),
                Some(Undecodable::Bch),
                cfg.health_window_secs,
            );
        }
        assert!(undecodable_over(&g, &cfg).is_none());
        g.count(
            at("2026-05-01T10:00:01Z"),
            Some(Undecodable::Bch),
            cfg.health_window_secs,
        );
        assert!(undecodable_over(&g, &cfg).is_some());
    }

    #[test]
    fn a_window_long_past_is_not_held_against_a_gateway() {
        let mut g = GatewayState::new("g");
        for _ in 0..50 {
            g.count(at("2026-05-01T10:00:00Z"), Some(Undecodable::Crc), 600);
        }
        // Three windows later: the bad window is neither current nor previous.
        g.count(at("2026-05-01T10:30:00Z"), None, 600);
        assert_eq!(g.recent().messages, 1);
        assert!(g.previous_window.is_none());
        // One window later: it is the previous one.
        let mut h = GatewayState::new("h");
        for _ in 0..50 {
            h.count(at("2026-05-01T10:00:00Z"), Some(Undecodable::Crc), 600);
        }
        h.count(at("2026-05-01T10:15:00Z"), None, 600);
        assert_eq!((h.recent().messages, h.recent().undecodable), (51, 50));
    }
}
