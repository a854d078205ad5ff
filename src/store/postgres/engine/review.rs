//! Review on PostgreSQL: the hash-chained audit trail (its tail kept in the one-row table
//! `audit_tail`, locked by appenders), undo snapshots, service orders, meter changes.

use tokio_postgres::Row;

use super::rows::{
    ReadColumns, big, column, id, json, name, named, quantity, read_columns, read_of, read_unnest, status, status_code,
};
use super::{PgTxn, Sequence, params};
use crate::model::{AuditEntry, HASH_LEN, MeterChange, ReadId, ServiceOrder, StoredRead};
use crate::store::{Result, ReviewQueries, ReviewWrites, StoreError};

fn hash(row: &Row, col: &'static str) -> std::result::Result<[u8; HASH_LEN], String> {
    let v: Vec<u8> = row.try_get(col).map_err(|e| e.to_string())?;
    v.try_into().map_err(|_| format!("{col} is not {HASH_LEN} bytes"))
}

/// An audit row; an error names what does not decode (audit_scan keeps it as text).
fn entry_of(row: &Row) -> std::result::Result<AuditEntry, String> {
    let get_i64 = |c: &str| row.try_get::<_, i64>(c).map_err(|e| e.to_string());
    let get_str = |c: &str| row.try_get::<_, String>(c).map_err(|e| e.to_string());
    let st = |c: &str| -> std::result::Result<_, String> {
        status(row.try_get(c).map_err(|e| e.to_string())?).map_err(|e| e.to_string())
    };
    Ok(AuditEntry {
        seq: id(get_i64("seq")?).map_err(|e| e.to_string())?,
        at: row.try_get("at").map_err(|e| e.to_string())?,
        clerk: get_str("clerk")?,
        action: named("audit action", &get_str("action")?).map_err(|e| e.to_string())?,
        read_id: id(get_i64("read_id")?).map_err(|e| e.to_string())?,
        meter_id: get_str("meter_id")?,
        old_value: quantity(get_i64("old_value")?),
        new_value: quantity(get_i64("new_value")?),
        old_status: st("old_status")?,
        new_status: st("new_status")?,
        reason: get_str("reason")?,
        prev_hash: hash(row, "prev_hash")?,
        hash: hash(row, "hash")?,
        day: row
            .try_get::<_, Option<serde_json::Value>>("day")
            .map_err(|e| e.to_string())?
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| format!("day: {e}"))?,
    })
}

fn entry_strict(row: &Row) -> Result<AuditEntry> {
    entry_of(row).map_err(|detail| StoreError::Corrupt {
        what: "audit entry",
        detail,
    })
}

fn order_of(row: &Row) -> Result<ServiceOrder> {
    let sequence: i64 = row.try_get("sequence").map_err(column)?;
    Ok(ServiceOrder {
        id: id(row.try_get("id").map_err(column)?)?,
        meter_id: row.try_get("meter_id").map_err(column)?,
        read_id: id(row.try_get("read_id").map_err(column)?)?,
        route: row.try_get("route").map_err(column)?,
        sequence: u32::try_from(sequence).map_err(|_| StoreError::Corrupt {
            what: "service order",
            detail: format!("sequence {sequence} out of range"),
        })?,
        address: row.try_get("address").map_err(column)?,
        reason: row.try_get("reason").map_err(column)?,
        due: row.try_get("due").map_err(column)?,
        status: named("service order status", row.try_get("status").map_err(column)?)?,
        created_at: row.try_get("created_at").map_err(column)?,
        created_by: row.try_get("created_by").map_err(column)?,
        closed_at: row.try_get("closed_at").map_err(column)?,
        closed_by: row.try_get("closed_by").map_err(column)?,
        outcome: row.try_get("outcome").map_err(column)?,
    })
}

fn change_of(row: &Row) -> Result<MeterChange> {
    let small = |c: &'static str| -> Result<u8> {
        let v: i16 = row.try_get(c).map_err(column)?;
        u8::try_from(v).map_err(|_| StoreError::Corrupt {
            what: "meter change",
            detail: format!("{c} {v} out of range"),
        })
    };
    Ok(MeterChange {
        meter_id: row.try_get("meter_id").map_err(column)?,
        at: row.try_get("at").map_err(column)?,
        old_serial: row.try_get("old_serial").map_err(column)?,
        new_serial: row.try_get("new_serial").map_err(column)?,
        old_dials: small("old_dials")?,
        new_dials: small("new_dials")?,
        install_read: quantity(row.try_get("install_read").map_err(column)?),
        removal_read: row
            .try_get::<_, Option<i64>>("removal_read")
            .map_err(column)?
            .map(quantity),
    })
}

impl ReviewQueries for PgTxn<'_> {
    fn audit_len(&self) -> Result<u64> {
        match self.row(
            "reading the audit length",
            "SELECT len FROM audit_tail WHERE id = 1",
            params![],
        )? {
            Some(r) => id(r.try_get("len").map_err(column)?),
            None => Ok(0),
        }
    }

    fn audit_scan(&self) -> Result<Vec<(u64, std::result::Result<AuditEntry, String>)>> {
        let rows = self.rows(
            "reading the audit trail",
            "SELECT seq, at, clerk, action, read_id, meter_id, old_value, new_value, old_status, new_status, reason, \
             prev_hash, hash, day FROM audit ORDER BY seq",
            params![],
        )?;
        rows.iter()
            .map(|r| Ok((id(r.try_get("seq").map_err(column)?)?, entry_of(r))))
            .collect()
    }

    fn read_audit(&self, read_id: ReadId) -> Result<Vec<AuditEntry>> {
        self.rows(
            "reading a read's audit entries",
            "SELECT seq, at, clerk, action, read_id, meter_id, old_value, new_value, old_status, new_status, reason, \
             prev_hash, hash, day FROM audit WHERE read_id = $1 AND day IS NULL ORDER BY seq",
            params![big(read_id)?],
        )?
        .iter()
        .map(entry_strict)
        .collect()
    }

    fn meter_audit(&self, meter_id: &str) -> Result<Vec<AuditEntry>> {
        self.rows(
            "reading a meter's audit entries",
            "SELECT seq, at, clerk, action, read_id, meter_id, old_value, new_value, old_status, new_status, reason, \
             prev_hash, hash, day FROM audit WHERE meter_id = $1 ORDER BY seq",
            params![meter_id.to_owned()],
        )?
        .iter()
        .map(entry_strict)
        .collect()
    }

    fn undo_snapshot(&self, seq: u64) -> Result<Option<StoredRead>> {
        self.row(
            "reading an undo snapshot",
            concat!("SELECT ", read_columns!(), " FROM undo_snapshots WHERE seq = $1"),
            params![big(seq)?],
        )?
        .as_ref()
        .map(read_of)
        .transpose()
    }

    fn service_orders(&self) -> Result<Vec<ServiceOrder>> {
        self.rows(
            "listing service orders",
            "SELECT id, meter_id, read_id, route, sequence, address, reason, due, status, created_at, created_by, \
             closed_at, closed_by, outcome FROM service_orders ORDER BY id",
            params![],
        )?
        .iter()
        .map(order_of)
        .collect()
    }

    fn service_order(&self, id: u64) -> Result<Option<ServiceOrder>> {
        self.row(
            "reading a service order",
            "SELECT id, meter_id, read_id, route, sequence, address, reason, due, status, created_at, created_by, \
             closed_at, closed_by, outcome FROM service_orders WHERE id = $1",
            params![big(id)?],
        )?
        .as_ref()
        .map(order_of)
        .transpose()
    }

    fn meter_changes(&self, meter_id: &str) -> Result<Vec<MeterChange>> {
        self.rows(
            "listing a meter's changes",
            "SELECT meter_id, at, old_serial, new_serial, old_dials, new_dials, install_read, removal_read \
             FROM meter_changes WHERE meter_id = $1 ORDER BY at",
            params![meter_id.to_owned()],
        )?
        .iter()
        .map(change_of)
        .collect()
    }
}

impl ReviewWrites for PgTxn<'_> {
    fn audit_tail(&mut self) -> Result<(u64, [u8; HASH_LEN])> {
        // FOR UPDATE: the tail stays locked until this transaction ends, so appends from
        // several instances queue here instead of forking the chain.
        let row = self
            .row(
                "locking the audit tail",
                "SELECT len, hash FROM audit_tail WHERE id = 1 FOR UPDATE",
                params![],
            )?
            .ok_or_else(|| StoreError::Corrupt {
                what: "audit tail",
                detail: "the row of audit_tail is missing".into(),
            })?;
        let len = id(row.try_get("len").map_err(column)?)?;
        let hash = hash(&row, "hash").map_err(|detail| StoreError::Corrupt {
            what: "audit tail",
            detail,
        })?;
        Ok((len, hash))
    }

    fn insert_audit(&mut self, e: &AuditEntry, before: Option<&StoredRead>) -> Result<()> {
        self.exec(
            "appending to the audit trail",
            "INSERT INTO audit (seq, at, clerk, action, read_id, meter_id, old_value, new_value, old_status, \
             new_status, reason, prev_hash, hash, day) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
             $14)",
            params![
                big(e.seq)?,
                e.at,
                e.clerk.clone(),
                name(&e.action),
                big(e.read_id)?,
                e.meter_id.clone(),
                e.old_value.micros(),
                e.new_value.micros(),
                status_code(e.old_status),
                status_code(e.new_status),
                e.reason.clone(),
                e.prev_hash.to_vec(),
                e.hash.to_vec(),
                e.day.as_ref().map(json).transpose()?,
            ],
        )?;
        self.exec(
            "moving the audit tail",
            "UPDATE audit_tail SET len = $1, hash = $2 WHERE id = 1",
            params![big(e.seq)?, e.hash.to_vec()],
        )?;
        if let Some(before) = before {
            let mut cols = ReadColumns::with_capacity(1);
            cols.push(before)?;
            let mut p = params![big(e.seq)?];
            p.extend(cols.into_params());
            self.exec(
                "keeping an undo snapshot",
                concat!(
                    "INSERT INTO undo_snapshots (seq, ",
                    read_columns!(),
                    ") SELECT $18::bigint, u.* FROM ",
                    read_unnest!(),
                    " AS u"
                ),
                // $1..$17 are the read's columns; the seq goes last.
                {
                    let seq = p.remove(0);
                    p.push(seq);
                    p
                },
            )?;
        }
        Ok(())
    }

    fn put_service_order(&mut self, order: &ServiceOrder) -> Result<u64> {
        let oid = if order.id == 0 {
            self.next_ids(Sequence::ServiceOrders, 1)?
                .into_iter()
                .next()
                .ok_or_else(|| StoreError::Engine("service_order_ids gave no id".into()))?
        } else {
            order.id
        };
        self.exec(
            "storing a service order",
            "INSERT INTO service_orders (id, meter_id, read_id, route, sequence, address, reason, due, status, \
             created_at, created_by, closed_at, closed_by, outcome) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
             ON CONFLICT (id) DO UPDATE SET meter_id = EXCLUDED.meter_id, read_id = EXCLUDED.read_id, \
             route = EXCLUDED.route, sequence = EXCLUDED.sequence, address = EXCLUDED.address, \
             reason = EXCLUDED.reason, due = EXCLUDED.due, status = EXCLUDED.status, \
             created_at = EXCLUDED.created_at, created_by = EXCLUDED.created_by, closed_at = EXCLUDED.closed_at, \
             closed_by = EXCLUDED.closed_by, outcome = EXCLUDED.outcome",
            params![
                big(oid)?,
                order.meter_id.clone(),
                big(order.read_id)?,
                order.route.clone(),
                i64::from(order.sequence),
                order.address.clone(),
                order.reason.clone(),
                order.due,
                name(&order.status),
                order.created_at,
                order.created_by.clone(),
                order.closed_at,
                order.closed_by.clone(),
                order.outcome.clone(),
            ],
        )?;
        Ok(oid)
    }

    fn put_meter_change(&mut self, c: &MeterChange) -> Result<()> {
        self.exec(
            "storing a meter change",
            "INSERT INTO meter_changes (meter_id, at, old_serial, new_serial, old_dials, new_dials, install_read, \
             removal_read) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (meter_id, at) DO UPDATE SET old_serial = EXCLUDED.old_serial, \
             new_serial = EXCLUDED.new_serial, old_dials = EXCLUDED.old_dials, new_dials = EXCLUDED.new_dials, \
             install_read = EXCLUDED.install_read, removal_read = EXCLUDED.removal_read",
            params![
                c.meter_id.clone(),
                c.at,
                c.old_serial.clone(),
                c.new_serial.clone(),
                i16::from(c.old_dials),
                i16::from(c.new_dials),
                c.install_read.micros(),
                c.removal_read.map(|q| q.micros()),
            ],
        )?;
        Ok(())
    }
}
