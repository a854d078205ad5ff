//! Wireless M-Bus compact-frame layouts and held compact frames in the redb engine.
//!
//! | table | key | value | why |
//! |---|---|---|---|
//! | `wmbus_layouts` | (manufacturer, version, device type, signature) | layout bytes | compact frames decode after a restart |
//! | `wmbus_held` | id | postcard [`HeldTelegram`] | compact frames waiting for their layout |
//!
//! Created when a store is opened for writing (no schema version change, as the interval
//! tables); a read of a store that predates them finds nothing.

use meterd_protocols::wmbus::compact::FormatKey;
use redb::{ReadableTable, ReadableTableMetadata, TableDefinition};

use super::{RedbRead, RedbWrite, decode, encode, engine, noted};
use crate::store::{HeldTelegram, Result, WmbusQueries, WmbusWrites};

pub(in crate::store) const WMBUS_LAYOUTS: TableDefinition<'_, (u16, u8, u8, u16), &[u8]> =
    TableDefinition::new("wmbus_layouts");
pub(in crate::store) const WMBUS_HELD: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("wmbus_held");

/// Creates the tables (at open, so readers find them).
pub(super) fn create_tables(txn: &redb::WriteTransaction) -> Result<()> {
    txn.open_table(noted(WMBUS_LAYOUTS)).map_err(engine)?;
    txn.open_table(noted(WMBUS_HELD)).map_err(engine)?;
    Ok(())
}

fn key_of(k: &FormatKey) -> (u16, u8, u8, u16) {
    (k.manufacturer, k.version, k.device_type, k.signature)
}

macro_rules! impl_wmbus_queries {
    ($ty:ty) => {
        impl WmbusQueries for $ty {
            fn wmbus_layout(&self, key: &FormatKey) -> Result<Option<Vec<u8>>> {
                let t = table!(self.txn, WMBUS_LAYOUTS);
                Ok(t.get(key_of(key)).map_err(engine)?.map(|v| v.value().to_vec()))
            }

            fn wmbus_layouts(&self) -> Result<Vec<(FormatKey, Vec<u8>)>> {
                let t = table!(self.txn, WMBUS_LAYOUTS);
                let mut out = Vec::new();
                for e in t.iter().map_err(engine)? {
                    let (k, v) = e.map_err(engine)?;
                    let (manufacturer, version, device_type, signature) = k.value();
                    out.push((
                        FormatKey {
                            manufacturer,
                            version,
                            device_type,
                            signature,
                        },
                        v.value().to_vec(),
                    ));
                }
                Ok(out)
            }

            fn held_telegrams(&self) -> Result<Vec<(u64, HeldTelegram)>> {
                let t = table!(self.txn, WMBUS_HELD);
                let mut out = Vec::new();
                for e in t.iter().map_err(engine)? {
                    let (k, v) = e.map_err(engine)?;
                    out.push((k.value(), decode("held telegram", v.value())?));
                }
                Ok(out)
            }

            fn count_held_telegrams(&self) -> Result<u64> {
                let t = table!(self.txn, WMBUS_HELD);
                t.len().map_err(engine)
            }
        }
    };
}

impl_wmbus_queries!(RedbRead);
impl_wmbus_queries!(RedbWrite);

impl WmbusWrites for RedbWrite {
    fn put_wmbus_layout(&mut self, key: &FormatKey, layout: &[u8]) -> Result<()> {
        self.txn
            .open_table(noted(WMBUS_LAYOUTS))
            .map_err(engine)?
            .insert(key_of(key), layout)
            .map_err(engine)?;
        Ok(())
    }

    fn hold_telegram(&mut self, held: &HeldTelegram) -> Result<u64> {
        let bytes = encode(held)?;
        let mut t = self.txn.open_table(noted(WMBUS_HELD)).map_err(engine)?;
        let id = match t.last().map_err(engine)? {
            Some((k, _)) => k.value() + 1,
            None => 1,
        };
        t.insert(id, bytes.as_slice()).map_err(engine)?;
        Ok(id)
    }

    fn release_held_telegram(&mut self, id: u64) -> Result<bool> {
        let mut t = self.txn.open_table(noted(WMBUS_HELD)).map_err(engine)?;
        Ok(t.remove(id).map_err(engine)?.is_some())
    }
}
