//! A small shared metrics registry, rendered in the Prometheus text format by `GET /metrics`.
//!
//! Components count what they do ([`counter_add`], [`gauge_set`], [`gauge_add`]); numbers
//! that live in the store (reads by status and rule, batches) are computed at scrape time by
//! [`metrics_body`]. Metrics that nothing reported yet are still shown, as 0, when they are
//! declared in [`DECLARED`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};

use crate::model::{BatchStatus, ReadStatus, Rule};
use crate::store::Store;

/// Counter names with their help text (every counter ends in `_total`).
pub const READS_INGESTED: &str = "meterd_reads_ingested_total";
pub const SERIAL_SESSIONS: &str = "meterd_serial_sessions";
pub const MQTT_SESSIONS: &str = "meterd_mqtt_sessions";
pub const HTTP_REQUESTS: &str = "meterd_http_requests_total";
pub const HTTP_UNAUTHORIZED: &str = "meterd_http_unauthorized_total";
/// Billing API connections over `[http] max_connections` (answered 503 or closed).
pub const HTTP_CONNECTIONS_REFUSED: &str = "meterd_http_connections_refused_total";
/// Requests refused on the control socket, by the role they needed (`none`: a user in no
/// role, refused at connect). The same name as [`crate::api::access::REFUSED_METRIC`].
pub const CONTROL_REFUSED: &str = "meterd_control_refused_total";
/// What became of every frame, message or recorder record received, by source (`mqtt`,
/// `serial`, `cradle`) and outcome (`read`, `held`, `duplicate`, `quarantined`; `status` for
/// MQTT gateway status, `skipped` for P1 telegrams not due and cradle route skips): their sum
/// is everything received (a serial frame mapped to several meters counts once per read).
pub const FRAMES: &str = "meterd_frames_total";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

/// Metrics every scrape shows, reported or not: (name, kind, help).
pub const DECLARED: [(&str, Kind, &str); 8] = [
    (
        READS_INGESTED,
        Kind::Counter,
        "Reads committed by accept_reads since the daemon started.",
    ),
    (
        SERIAL_SESSIONS,
        Kind::Gauge,
        "Serial sessions open now (cradles, probes, buses).",
    ),
    (MQTT_SESSIONS, Kind::Gauge, "MQTT broker sessions connected now."),
    (
        HTTP_REQUESTS,
        Kind::Counter,
        "Billing API requests answered, by route and status code.",
    ),
    (
        HTTP_UNAUTHORIZED,
        Kind::Counter,
        "Billing API requests refused for a missing or wrong token.",
    ),
    (
        HTTP_CONNECTIONS_REFUSED,
        Kind::Counter,
        "Billing API connections over [http] max_connections, answered 503 or closed.",
    ),
    (
        CONTROL_REFUSED,
        Kind::Counter,
        "Control socket requests refused, by the role they needed (none: a user in no role).",
    ),
    (
        FRAMES,
        Kind::Counter,
        "Frames, messages and recorder records received since the daemon started, by source (mqtt, serial, cradle) and outcome (read, held, duplicate, quarantined, status, skipped).",
    ),
];

type Labels = Vec<(String, String)>;

#[derive(Default)]
struct Family {
    kind: Option<Kind>,
    help: String,
    values: BTreeMap<Labels, f64>,
}

/// The registry.
#[derive(Default)]
pub struct Registry {
    families: Mutex<BTreeMap<String, Family>>,
}

fn labels(l: &[(&str, &str)]) -> Labels {
    let mut v: Labels = l.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    v.sort();
    v
}

impl Registry {
    fn with(&self, name: &str, kind: Kind, f: impl FnOnce(&mut Family)) {
        let mut fams = self.families.lock().unwrap_or_else(|p| p.into_inner());
        let fam = fams.entry(name.to_owned()).or_default();
        fam.kind.get_or_insert(kind);
        f(fam);
    }

    pub fn counter_add(&self, name: &str, l: &[(&str, &str)], by: u64) {
        self.with(name, Kind::Counter, |f| {
            *f.values.entry(labels(l)).or_insert(0.0) += by as f64
        });
    }

    pub fn gauge_set(&self, name: &str, l: &[(&str, &str)], v: f64) {
        self.with(name, Kind::Gauge, |f| {
            f.values.insert(labels(l), v);
        });
    }

    pub fn gauge_add(&self, name: &str, l: &[(&str, &str)], by: f64) {
        self.with(name, Kind::Gauge, |f| *f.values.entry(labels(l)).or_insert(0.0) += by);
    }

    /// The current value (tests and scrape-time composition).
    pub fn value(&self, name: &str, l: &[(&str, &str)]) -> Option<f64> {
        let fams = self.families.lock().unwrap_or_else(|p| p.into_inner());
        fams.get(name).and_then(|f| f.values.get(&labels(l)).copied())
    }

    /// Everything in the Prometheus text format, declared metrics included.
    pub fn render(&self, out: &mut String) {
        let fams = self.families.lock().unwrap_or_else(|p| p.into_inner());
        let mut names: Vec<&str> = fams.keys().map(String::as_str).collect();
        names.extend(DECLARED.iter().map(|d| d.0));
        names.sort_unstable();
        names.dedup();
        for name in names {
            let declared = DECLARED.iter().find(|d| d.0 == name);
            let fam = fams.get(name);
            let kind = fam
                .and_then(|f| f.kind)
                .or(declared.map(|d| d.1))
                .unwrap_or(Kind::Gauge);
            let help = declared.map(|d| d.2).or(fam.map(|f| f.help.as_str())).unwrap_or("");
            let values: Vec<(Labels, f64)> = match fam {
                Some(f) if !f.values.is_empty() => f.values.iter().map(|(l, v)| (l.clone(), *v)).collect(),
                _ => vec![(Vec::new(), 0.0)],
            };
            family(out, name, kind, help, values.iter().map(|(l, v)| (l.as_slice(), *v)));
        }
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Write one metric family (HELP, TYPE, samples).
pub fn family<'a>(
    out: &mut String,
    name: &str,
    kind: Kind,
    help: &str,
    samples: impl IntoIterator<Item = (&'a [(String, String)], f64)>,
) {
    let t = match kind {
        Kind::Counter => "counter",
        Kind::Gauge => "gauge",
    };
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {t}");
    for (l, v) in samples {
        if l.is_empty() {
            let _ = writeln!(out, "{name} {v}");
        } else {
            let l: Vec<String> = l.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
            let _ = writeln!(out, "{name}{{{}}} {v}", l.join(","));
        }
    }
}

/// The process-wide registry.
pub fn global() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(Registry::default)
}

pub fn counter_add(name: &str, l: &[(&str, &str)], by: u64) {
    global().counter_add(name, l, by);
}

/// Counts what became of received frames from `source` into [`FRAMES`] (zero counts are
/// left out). Call only after the durable commit of what the counts describe.
pub fn frames_add(source: &str, outcomes: &[(&str, u64)]) {
    for &(outcome, n) in outcomes {
        if n > 0 {
            counter_add(FRAMES, &[("source", source), ("outcome", outcome)], n);
        }
    }
}

pub fn gauge_set(name: &str, l: &[(&str, &str)], v: f64) {
    global().gauge_set(name, l, v);
}

pub fn gauge_add(name: &str, l: &[(&str, &str)], by: f64) {
    global().gauge_add(name, l, by);
}

/// The daemon's metrics in the Prometheus text format (what `GET /metrics` serves): the numbers
/// that live in the store (reads by status and rule, batches, corrections due), computed now,
/// then the shared registry.
pub fn metrics_body(store: &dyn Store) -> crate::store::Result<String> {
    let txn = store.begin_read()?;
    let mut out = String::new();
    let by_status = txn.count_reads_by_status()?;
    let samples: Vec<(Vec<(String, String)>, f64)> = by_status
        .iter()
        .map(|(s, n)| (vec![("status".to_owned(), s.as_str().to_owned())], *n as f64))
        .collect();
    family(
        &mut out,
        "meterd_reads",
        Kind::Gauge,
        "Reads in the store, by status.",
        samples.iter().map(|(l, v)| (l.as_slice(), *v)),
    );
    let mut rules: std::collections::BTreeMap<Rule, u64> = Rule::ALL.iter().map(|r| (*r, 0)).collect();
    for r in txn.reads_with_status(ReadStatus::Flagged, usize::MAX)? {
        for f in &r.flags {
            *rules.entry(f.rule).or_default() += 1;
        }
    }
    let samples: Vec<(Vec<(String, String)>, f64)> = rules
        .iter()
        .map(|(r, n)| (vec![("rule".to_owned(), r.as_str().to_owned())], *n as f64))
        .collect();
    family(
        &mut out,
        "meterd_flagged_reads",
        Kind::Gauge,
        "Reads held for review, by VEE rule (a read may have several).",
        samples.iter().map(|(l, v)| (l.as_slice(), *v)),
    );
    let batches = txn.batches(None)?;
    let open = batches.iter().filter(|b| b.status == BatchStatus::Open).count();
    let samples = [
        (vec![("status".to_owned(), "open".to_owned())], open as f64),
        (
            vec![("status".to_owned(), "acked".to_owned())],
            (batches.len() - open) as f64,
        ),
    ];
    family(
        &mut out,
        "meterd_batches",
        Kind::Gauge,
        "Billing batches, by status.",
        samples.iter().map(|(l, v)| (l.as_slice(), *v)),
    );
    let pending = txn.billed_read_changes()?.iter().filter(|c| c.correction_due).count();
    family(
        &mut out,
        "meterd_billing_corrections_pending",
        Kind::Gauge,
        "Billed reads changed since, waiting for a correction.",
        [(&[][..], pending as f64)],
    );
    quarantine_families(&mut out, txn.as_ref())?;
    gateway_families(&mut out, txn.as_ref())?;
    global().render(&mut out);
    Ok(out)
}

/// Gateway health from the store: messages, decoded, undecodable by reason, the recent share
/// (the alert's measure) and the last sign of life, per gateway (alert on them in Prometheus too).
fn gateway_families(out: &mut String, txn: &dyn crate::store::ReadTxn) -> crate::store::Result<()> {
    type Sample = (Vec<(String, String)>, f64);
    let gateways = txn.gateways()?;
    let gw = |g: &crate::model::GatewayState| vec![("gateway".to_owned(), g.gateway.clone())];
    let per = |f: &dyn Fn(&crate::model::GatewayState) -> Option<f64>| -> Vec<Sample> {
        gateways.iter().filter_map(|g| f(g).map(|v| (gw(g), v))).collect()
    };
    let families: [(&str, Kind, &str, Vec<Sample>); 5] = [
        (
            "meterd_gateway_messages_total",
            Kind::Counter,
            "Meter messages received from a gateway (every copy, before de-duplication).",
            per(&|g| Some(g.messages as f64)),
        ),
        (
            "meterd_gateway_decoded_total",
            Kind::Counter,
            "Frames a gateway sent that decoded.",
            per(&|g| Some(g.decoded as f64)),
        ),
        (
            "meterd_gateway_undecodable_total",
            Kind::Counter,
            "Messages of a gateway that did not decode, by reason (crc, bch, reed_solomon, checksum, bcc, key, format, limit).",
            gateways
                .iter()
                .flat_map(|g| {
                    crate::model::Undecodable::ALL.into_iter().map(move |r| {
                        let mut l = gw(g);
                        l.push(("reason".to_owned(), r.name().to_owned()));
                        (l, g.undecodable_by.get(&r).copied().unwrap_or(0) as f64)
                    })
                })
                .collect(),
        ),
        (
            "meterd_gateway_recent_undecodable_ratio",
            Kind::Gauge,
            "Undecodable share of a gateway's messages over the current and previous health window.",
            per(&|g| Some(g.recent().share())),
        ),
        (
            "meterd_gateway_last_seen_timestamp_seconds",
            Kind::Gauge,
            "When a gateway was last heard from (a meter or status message), Unix seconds.",
            per(&|g| g.last_seen().map(|t| t.as_second() as f64)),
        ),
    ];
    for (name, kind, help, samples) in &families {
        family(out, name, *kind, help, samples.iter().map(|(l, v)| (l.as_slice(), *v)));
    }
    Ok(())
}

/// The quarantine's size and the entries its retention removed (per source and reason class).
fn quarantine_families(out: &mut String, txn: &dyn crate::store::ReadTxn) -> crate::store::Result<()> {
    let usage = txn.quarantine_usage()?;
    family(
        out,
        "meterd_quarantine_entries",
        Kind::Gauge,
        "Entries in the quarantine now.",
        [(&[][..], usage.entries as f64)],
    );
    family(
        out,
        "meterd_quarantine_bytes",
        Kind::Gauge,
        "Stored bytes of the quarantine now (what [quarantine] max_mib limits).",
        [(&[][..], usage.bytes as f64)],
    );
    let summary = txn.quarantine_summary()?;
    let label = |s: &crate::model::QuarantineSummary| {
        vec![
            ("source".to_owned(), s.source.clone()),
            ("reason".to_owned(), s.reason.clone()),
        ]
    };
    let counts: Vec<(Vec<(String, String)>, f64)> = summary.iter().map(|s| (label(s), s.count as f64)).collect();
    family(
        out,
        "meterd_quarantine_summarised_entries",
        Kind::Gauge,
        "Quarantine entries removed by the retention limit or a purge and kept only as counts, by source and reason.",
        counts.iter().map(|(l, v)| (l.as_slice(), *v)),
    );
    let bytes: Vec<(Vec<(String, String)>, f64)> = summary.iter().map(|s| (label(s), s.bytes as f64)).collect();
    family(
        out,
        "meterd_quarantine_summarised_bytes",
        Kind::Gauge,
        "Payload bytes of the quarantine entries removed and summarised, by source and reason.",
        bytes.iter().map(|(l, v)| (l.as_slice(), *v)),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text_with_declared_zeros() {
        let r = Registry::default();
        r.counter_add(READS_INGESTED, &[("source", "file")], 3);
        r.counter_add(READS_INGESTED, &[("source", "file")], 2);
        r.gauge_set("x_gauge", &[("port", "/dev/tty\"S0")], 1.5);
        let mut s = String::new();
        r.render(&mut s);
        assert!(
            s.contains("# TYPE meterd_reads_ingested_total counter\nmeterd_reads_ingested_total{source=\"file\"} 5\n"),
            "{s}"
        );
        assert!(s.contains("meterd_mqtt_sessions 0\n"), "{s}");
        assert!(s.contains("x_gauge{port=\"/dev/tty\\\"S0\"} 1.5\n"), "{s}");
        assert_eq!(r.value(READS_INGESTED, &[("source", "file")]), Some(5.0));
    }

    #[test]
    fn the_quarantine_size_and_summary_are_scraped() {
        use crate::model::QuarantineEntry;
        use crate::store::{QuarantineLimits, RedbStore};
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open_dir(dir.path()).unwrap();
        store.set_quarantine_limits(QuarantineLimits {
            max_bytes: 300,
            ..QuarantineLimits::default()
        });
        let mut txn = store.begin_write().unwrap();
        for _ in 0..5 {
            txn.quarantine(&QuarantineEntry {
                source: "mqtt meters/gw1/raw".into(),
                reason: "unrecognised frame: 100 binary bytes".into(),
                payload: vec![9; 100],
                received_at: jiff::Timestamp::now(),
            })
            .unwrap();
        }
        txn.commit().unwrap();
        let body = metrics_body(&store).unwrap();
        let usage = store.begin_read().unwrap().quarantine_usage().unwrap();
        assert!(usage.entries < 5 && usage.bytes <= 300, "{usage:?}");
        assert!(
            body.contains(&format!("meterd_quarantine_entries {}\n", usage.entries)),
            "{body}"
        );
        let removed = 5 - usage.entries;
        assert!(
            body.contains(&format!(
                "meterd_quarantine_summarised_entries{{reason=\"unrecognised frame\",source=\"mqtt meters/gw1/raw\"}} {removed}\n"
            )) || body.contains(&format!(
                "meterd_quarantine_summarised_entries{{source=\"mqtt meters/gw1/raw\",reason=\"unrecognised frame\"}} {removed}\n"
            )),
            "{body}"
        );
        assert!(body.contains("# TYPE meterd_frames_total counter"), "{body}");
    }
}
