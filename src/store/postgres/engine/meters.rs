//! Meters on PostgreSQL.

use tokio_postgres::Row;

use super::rows::{column, named, quantity};
use super::{PgTxn, params};
use crate::model::Meter;
use crate::store::{MeterQueries, MeterWrites, Result, StoreError};

fn meter_of(row: &Row) -> Result<Meter> {
    let small = |name: &'static str| -> Result<u8> {
        let v: i16 = row.try_get(name).map_err(column)?;
        u8::try_from(v).map_err(|_| StoreError::Corrupt {
            what: "meter",
            detail: format!("{name} {v} out of range"),
        })
    };
    let sequence: i64 = row.try_get("sequence").map_err(column)?;
    Ok(Meter {
        meter_id: row.try_get("meter_id").map_err(column)?,
        account: row.try_get("account").map_err(column)?,
        route: row.try_get("route").map_err(column)?,
        sequence: u32::try_from(sequence).map_err(|_| StoreError::Corrupt {
            what: "meter",
            detail: format!("sequence {sequence} out of range"),
        })?,
        service: named("service", row.try_get("service").map_err(column)?)?,
        unit: row.try_get("unit").map_err(column)?,
        dials: small("dials")?,
        decimals: small("decimals")?,
        multiplier: quantity(row.try_get("multiplier").map_err(column)?),
        status: named("meter status", row.try_get("status").map_err(column)?)?,
        address: row.try_get("address").map_err(column)?,
        notes: row.try_get("notes").map_err(column)?,
    })
}

impl MeterQueries for PgTxn<'_> {
    fn meter(&self, meter_id: &str) -> Result<Option<Meter>> {
        self.row(
            "reading a meter",
            "SELECT meter_id, account, route, sequence, service, unit, dials, decimals, multiplier, status, address, notes \
             FROM meters WHERE meter_id = $1",
            params![meter_id.to_owned()],
        )?
        .as_ref()
        .map(meter_of)
        .transpose()
    }

    fn meters(&self) -> Result<Vec<Meter>> {
        self.rows(
            "listing meters",
            "SELECT meter_id, account, route, sequence, service, unit, dials, decimals, multiplier, status, address, notes \
             FROM meters ORDER BY meter_id",
            params![],
        )?
        .iter()
        .map(meter_of)
        .collect()
    }

    fn meters_by_id(&self, ids: &[&str]) -> Result<Vec<Option<Meter>>> {
        let wanted: Vec<String> = ids.iter().map(|s| (*s).to_owned()).collect();
        let found: std::collections::HashMap<String, Meter> = self
            .rows(
                "reading meters",
                "SELECT meter_id, account, route, sequence, service, unit, dials, decimals, multiplier, status, address, notes \
                 FROM meters WHERE meter_id = ANY($1)",
                params![wanted],
            )?
            .iter()
            .map(|r| meter_of(r).map(|m| (m.meter_id.clone(), m)))
            .collect::<Result<_>>()?;
        Ok(ids.iter().map(|id| found.get(*id).cloned()).collect())
    }
}

impl MeterWrites for PgTxn<'_> {
    fn put_meter(&mut self, meter: &Meter) -> Result<()> {
        self.exec(
            "storing a meter",
            "INSERT INTO meters (meter_id, account, route, sequence, service, unit, dials, decimals, multiplier, status, address, notes) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT (meter_id) DO UPDATE SET account = EXCLUDED.account, route = EXCLUDED.route, \
             sequence = EXCLUDED.sequence, service = EXCLUDED.service, unit = EXCLUDED.unit, dials = EXCLUDED.dials, \
             decimals = EXCLUDED.decimals, multiplier = EXCLUDED.multiplier, status = EXCLUDED.status, \
             address = EXCLUDED.address, notes = EXCLUDED.notes",
            params![
                meter.meter_id.clone(),
                meter.account.clone(),
                meter.route.clone(),
                i64::from(meter.sequence),
                super::rows::name(&meter.service),
                meter.unit.clone(),
                i16::from(meter.dials),
                i16::from(meter.decimals),
                meter.multiplier.micros(),
                super::rows::name(&meter.status),
                meter.address.clone(),
                meter.notes.clone(),
            ],
        )?;
        Ok(())
    }

    fn lock_meters(&mut self, ids: &[&str]) -> Result<()> {
        // Sorted: two transactions locking overlapping sets take the rows in the same order and
        // cannot deadlock. `FOR UPDATE` row locks (not advisory locks): CockroachDB and
        // YugabyteDB take them too.
        let mut ids: Vec<String> = ids.iter().map(|s| (*s).to_owned()).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            return Ok(());
        }
        // Unknown meters are validated too (`unknown_meter`, duplicates, tamper changes): their
        // lock rows are made first, in id order (a waiting insert of the same id cannot
        // deadlock with ours), then every id's row is locked.
        self.exec(
            "making meter lock rows",
            "INSERT INTO meter_locks (meter_id) SELECT id FROM UNNEST($1::text[]) AS u(id) ORDER BY id \
             ON CONFLICT (meter_id) DO NOTHING",
            params![ids.clone()],
        )?;
        self.rows(
            "locking meters",
            "SELECT meter_id FROM meter_locks WHERE meter_id = ANY($1) ORDER BY meter_id FOR UPDATE",
            params![ids],
        )?;
        Ok(())
    }
}
