//! `meterd store check` on PostgreSQL: rows per table, and the cross-references the schema's
//! constraints do not hold (a read's batch, a client's open batch, the audit chain, billed
//! rows). Each check is one anti-join or window query over a table (hash or index joins, one
//! pass), listing a few offenders and counting the rest, in one REPEATABLE READ snapshot.

use super::rows::column;
use super::{PgStore, PgTxn};
use crate::store::Result;
use crate::store::check::{CheckReport, Problem, TableRows};

/// Offenders listed per check; the rest are counted.
const LISTED: i64 = 20;

/// Tables counted, in the schema's order.
const TABLES: &[(&str, &str)] = &[
    ("meters", "SELECT count(*) FROM meters"),
    ("reads", "SELECT count(*) FROM reads"),
    ("batches", "SELECT count(*) FROM batches"),
    (
        "open_batches",
        "SELECT count(*) FROM open_batches WHERE batch_id IS NOT NULL",
    ),
    ("batch_contents", "SELECT count(*) FROM batch_contents"),
    ("billed", "SELECT count(*) FROM billed"),
    ("billed_read_changes", "SELECT count(*) FROM billed_read_changes"),
    ("api_tokens", "SELECT count(*) FROM api_tokens"),
    ("quarantine", "SELECT count(*) FROM quarantine"),
    ("seen", "SELECT count(*) FROM seen"),
    ("gateways", "SELECT count(*) FROM gateways"),
    ("interval_reads", "SELECT count(*) FROM interval_reads"),
    ("tamper_state", "SELECT count(*) FROM tamper_state"),
    ("outbox", "SELECT count(*) FROM outbox"),
    ("route_assignments", "SELECT count(*) FROM route_assignments"),
    ("route_loads", "SELECT count(*) FROM route_loads"),
    ("cradle_watermarks", "SELECT count(*) FROM cradle_watermarks"),
    ("route_skips", "SELECT count(*) FROM route_skips"),
    ("audit", "SELECT count(*) FROM audit"),
    ("undo_snapshots", "SELECT count(*) FROM undo_snapshots"),
    ("service_orders", "SELECT count(*) FROM service_orders"),
    ("meter_changes", "SELECT count(*) FROM meter_changes"),
    ("wmbus_layouts", "SELECT count(*) FROM wmbus_layouts"),
    ("wmbus_held", "SELECT count(*) FROM wmbus_held"),
];

/// Each check: its table, and a statement giving (what, how many offenders in all) per listed
/// offender, at most `$1` of them.
const CHECKS: &[(&str, &str)] = &[
    (
        "reads",
        "SELECT 'read ' || r.id || ' names batch ' || r.batch_id || ', which does not exist', count(*) OVER () \
         FROM reads r WHERE r.batch_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM batches b WHERE b.id = r.batch_id) \
         ORDER BY r.id LIMIT $1",
    ),
    (
        "open_batches",
        "SELECT 'client ' || o.client || '''s open batch ' || b.id || ' is ' || b.status \
         || CASE WHEN b.client <> o.client THEN ' and belongs to client ' || b.client ELSE '' END, count(*) OVER () \
         FROM open_batches o JOIN batches b ON b.id = o.batch_id \
         WHERE b.status <> 'open' OR b.client <> o.client ORDER BY o.client LIMIT $1",
    ),
    (
        "audit",
        "SELECT CASE WHEN s.prev IS NULL THEN 'the chain starts at ' || s.seq || ', not 1' \
         WHEN s.seq <> s.prev + 1 THEN 'entries ' || (s.prev + 1) || ' to ' || (s.seq - 1) || ' are missing' \
         ELSE 'entry ' || s.seq || ' does not link to the hash of entry ' || s.prev END, count(*) OVER () \
         FROM (SELECT seq, prev_hash, lag(seq) OVER w AS prev, lag(hash) OVER w AS prev_entry_hash \
               FROM audit WINDOW w AS (ORDER BY seq)) s \
         WHERE (s.prev IS NULL AND s.seq <> 1) OR s.seq <> s.prev + 1 OR s.prev_hash <> s.prev_entry_hash \
         ORDER BY s.seq LIMIT $1",
    ),
    (
        "audit",
        "SELECT 'the recorded length is ' || t.len || ' but the last entry is ' || coalesce(m.seq, 0) \
         || CASE WHEN m.seq IS NOT NULL AND m.hash <> t.hash THEN ' and the recorded tail hash differs' ELSE '' END, 1::bigint \
         FROM audit_tail t LEFT JOIN LATERAL (SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1) m ON true \
         WHERE t.len <> coalesce(m.seq, 0) OR (m.seq IS NOT NULL AND m.hash <> t.hash) LIMIT $1",
    ),
    (
        "billed",
        "SELECT 'billed read ' || b.read_id || ' is not a read', count(*) OVER () \
         FROM billed b WHERE NOT EXISTS (SELECT 1 FROM reads r WHERE r.id = b.read_id) ORDER BY b.read_id LIMIT $1",
    ),
    (
        "billed",
        "SELECT 'billed read ' || b.read_id || ' names batch ' || b.batch_id || ', which does not exist', count(*) OVER () \
         FROM billed b WHERE NOT EXISTS (SELECT 1 FROM batches x WHERE x.id = b.batch_id) ORDER BY b.read_id LIMIT $1",
    ),
    (
        "billed_read_changes",
        "SELECT 'changed read ' || c.read_id || ' is not a read', count(*) OVER () \
         FROM billed_read_changes c WHERE NOT EXISTS (SELECT 1 FROM reads r WHERE r.id = c.read_id) \
         ORDER BY c.read_id LIMIT $1",
    ),
];

pub(super) fn check(store: &PgStore) -> Result<CheckReport> {
    let txn = store.begin(false)?;
    let mut report = CheckReport {
        store: store.target().to_owned(),
        // The server keeps its own pages (checksums, WAL); this walks meterd's rows only.
        engine_checked: false,
        tables: Vec::new(),
        problems: Vec::new(),
    };
    for (table, sql) in TABLES {
        report.tables.push(TableRows {
            table: (*table).to_owned(),
            rows: count(&txn, sql)?,
        });
    }
    for (table, sql) in CHECKS {
        let rows = txn.rows("checking the store", sql, params![LISTED])?;
        let mut all = 0i64;
        for r in &rows {
            let what: Option<String> = r.try_get(0).map_err(column)?;
            all = r.try_get(1).map_err(column)?;
            report.problems.push(Problem {
                table: (*table).to_owned(),
                what: what.unwrap_or_else(|| "a row that cannot be described".into()),
            });
        }
        let more = all - rows.len() as i64;
        if more > 0 {
            report.problems.push(Problem {
                table: (*table).to_owned(),
                what: format!("… and {more} more problems"),
            });
        }
    }
    Ok(report)
}

fn count(txn: &PgTxn<'_>, sql: &'static str) -> Result<u64> {
    match txn.row("counting rows", sql, params![])? {
        Some(r) => super::rows::id(r.try_get(0).map_err(column)?),
        None => Ok(0),
    }
}
