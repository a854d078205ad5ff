//! Wireless M-Bus compact-frame layouts and held compact frames on PostgreSQL (migration
//! `0005_wmbus`).

use meterd_protocols::wmbus::compact::FormatKey;
use tokio_postgres::Row;

use super::rows::{column, id};
use super::{PgTxn, params};
use crate::store::{HeldTelegram, Result, StoreError, WmbusQueries, WmbusWrites};

fn small<T: TryFrom<i64>>(what: &'static str, v: i64) -> Result<T> {
    T::try_from(v).map_err(|_| StoreError::Corrupt {
        what,
        detail: format!("{v} is out of range"),
    })
}

fn key_of(r: &Row, at: usize) -> Result<FormatKey> {
    let m: i32 = r.try_get(at).map_err(column)?;
    let v: i16 = r.try_get(at + 1).map_err(column)?;
    let t: i16 = r.try_get(at + 2).map_err(column)?;
    let s: i32 = r.try_get(at + 3).map_err(column)?;
    Ok(FormatKey {
        manufacturer: small("wM-Bus manufacturer", i64::from(m))?,
        version: small("wM-Bus version", i64::from(v))?,
        device_type: small("wM-Bus device type", i64::from(t))?,
        signature: small("wM-Bus format signature", i64::from(s))?,
    })
}

impl WmbusQueries for PgTxn<'_> {
    fn wmbus_layout(&self, key: &FormatKey) -> Result<Option<Vec<u8>>> {
        self.row(
            "reading a wM-Bus layout",
            "SELECT layout FROM wmbus_layouts \
             WHERE manufacturer = $1 AND version = $2 AND device_type = $3 AND signature = $4",
            params![
                i32::from(key.manufacturer),
                i16::from(key.version),
                i16::from(key.device_type),
                i32::from(key.signature)
            ],
        )?
        .map(|r| r.try_get(0).map_err(column))
        .transpose()
    }

    fn wmbus_layouts(&self) -> Result<Vec<(FormatKey, Vec<u8>)>> {
        self.rows(
            "reading wM-Bus layouts",
            "SELECT manufacturer, version, device_type, signature, layout FROM wmbus_layouts \
             ORDER BY manufacturer, version, device_type, signature",
            params![],
        )?
        .iter()
        .map(|r| Ok((key_of(r, 0)?, r.try_get(4).map_err(column)?)))
        .collect()
    }

    fn held_telegrams(&self) -> Result<Vec<(u64, HeldTelegram)>> {
        self.rows(
            "reading held wM-Bus telegrams",
            "SELECT id, manufacturer, version, device_type, signature, topic, locator, gateway, payload, \
             received_at, meter FROM wmbus_held ORDER BY id",
            params![],
        )?
        .iter()
        .map(|r| {
            let key = key_of(r, 1)?;
            Ok((
                id(r.try_get(0).map_err(column)?)?,
                HeldTelegram {
                    topic: r.try_get(5).map_err(column)?,
                    locator: r.try_get(6).map_err(column)?,
                    gateway: r.try_get(7).map_err(column)?,
                    payload: r.try_get(8).map_err(column)?,
                    received_at: r.try_get(9).map_err(column)?,
                    meter: r.try_get(10).map_err(column)?,
                    manufacturer: key.manufacturer,
                    version: key.version,
                    device_type: key.device_type,
                    signature: key.signature,
                },
            ))
        })
        .collect()
    }

    fn count_held_telegrams(&self) -> Result<u64> {
        let n: i64 = self
            .row(
                "counting held wM-Bus telegrams",
                "SELECT count(*) FROM wmbus_held",
                params![],
            )?
            .map(|r| r.try_get(0).map_err(column))
            .transpose()?
            .unwrap_or(0);
        id(n)
    }
}

impl WmbusWrites for PgTxn<'_> {
    fn put_wmbus_layout(&mut self, key: &FormatKey, layout: &[u8]) -> Result<()> {
        self.exec(
            "storing a wM-Bus layout",
            "INSERT INTO wmbus_layouts (manufacturer, version, device_type, signature, layout) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (manufacturer, version, device_type, signature) DO UPDATE SET layout = EXCLUDED.layout",
            params![
                i32::from(key.manufacturer),
                i16::from(key.version),
                i16::from(key.device_type),
                i32::from(key.signature),
                layout.to_vec()
            ],
        )?;
        Ok(())
    }

    fn hold_telegram(&mut self, held: &HeldTelegram) -> Result<u64> {
        let row = self
            .row(
                "holding a wM-Bus telegram",
                "INSERT INTO wmbus_held (topic, locator, gateway, payload, received_at, meter, manufacturer, \
                 version, device_type, signature) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
                params![
                    held.topic.clone(),
                    held.locator.clone(),
                    held.gateway.clone(),
                    held.payload.clone(),
                    held.received_at,
                    held.meter.clone(),
                    i32::from(held.manufacturer),
                    i16::from(held.version),
                    i16::from(held.device_type),
                    i32::from(held.signature)
                ],
            )?
            .ok_or_else(|| StoreError::Engine("holding a wM-Bus telegram: no id came back".into()))?;
        id(row.try_get(0).map_err(column)?)
    }

    fn release_held_telegram(&mut self, held: u64) -> Result<bool> {
        let Ok(held) = i64::try_from(held) else {
            return Ok(false);
        };
        Ok(self.exec(
            "releasing a held wM-Bus telegram",
            "DELETE FROM wmbus_held WHERE id = $1",
            params![held],
        )? == 1)
    }
}
