//! Between rows and meterd's types: ids, enums as the names meterd prints, quantities as
//! micro-units, lists as jsonb. A value the server holds that meterd cannot take (a negative id,
//! an unknown enum name) is [`StoreError::Corrupt`], never a panic.

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_postgres::Row;

use crate::model::{Origin, Quantity, Read, ReadStatus, StoredRead};
use crate::store::{Result, StoreError};

/// A stored id (bigint) as meterd's u64.
pub(super) fn id(v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt {
        what: "id",
        detail: format!("negative id {v}"),
    })
}

/// A row limit for `LIMIT`: `usize::MAX` (no limit) becomes the largest bigint.
pub(super) fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A range bound for a timestamptz comparison. jiff reaches back to the year -9999,
/// PostgreSQL to 4714 BC (22008 below that); no stored time is that old, so bounds before the
/// year -4000 select the same rows from there.
pub(super) fn bound(t: jiff::Timestamp) -> jiff::Timestamp {
    static OLDEST: std::sync::LazyLock<jiff::Timestamp> = std::sync::LazyLock::new(|| {
        jiff::civil::date(-4000, 1, 1)
            .to_zoned(jiff::tz::TimeZone::UTC)
            .map_or(jiff::Timestamp::MIN, |z| z.timestamp())
    });
    t.max(*OLDEST)
}

/// An id or count for a bigint column.
pub(super) fn big(v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| StoreError::Engine(format!("number {v} is too large for the database")))
}

/// An enum as the name meterd prints (its serde name).
pub(super) fn name<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(e) => e.to_string(),
    }
}

/// The enum a stored name stands for.
pub(super) fn named<T: DeserializeOwned>(what: &'static str, s: &str) -> Result<T> {
    serde_json::from_value(serde_json::Value::String(s.to_owned())).map_err(|_| StoreError::Corrupt {
        what,
        detail: format!("unknown value {s:?}"),
    })
}

/// A value for a jsonb column.
pub(super) fn json<T: Serialize>(v: &T) -> Result<serde_json::Value> {
    serde_json::to_value(v).map_err(|e| StoreError::Engine(format!("encoding a stored value: {e}")))
}

/// A jsonb column's value.
pub(super) fn from_json<T: DeserializeOwned>(what: &'static str, v: serde_json::Value) -> Result<T> {
    serde_json::from_value(v).map_err(|e| StoreError::Corrupt {
        what,
        detail: e.to_string(),
    })
}

pub(super) fn status(code: i16) -> Result<ReadStatus> {
    u8::try_from(code)
        .ok()
        .and_then(ReadStatus::from_code)
        .ok_or_else(|| StoreError::Corrupt {
            what: "read status",
            detail: format!("unknown status code {code}"),
        })
}

pub(super) fn status_code(s: ReadStatus) -> i16 {
    i16::from(s.code())
}

pub(super) fn quantity(micros: i64) -> Quantity {
    Quantity::from_micros(micros)
}

/// The columns of a stored read, in [`read_of`]'s and [`ReadColumns`]' order (`reads` and
/// `undo_snapshots` share them); a macro so that `concat!` can build statements with it.
macro_rules! read_columns {
    () => {
        "id, meter_id, read_at, value, raw, read_type, codes, reader, origin_kind, origin_source, \
         origin_locator, status, flags, consumption, excluded, received_at, batch_id"
    };
}
pub(super) use read_columns;

/// A stored read from a row selected with [`read_columns`].
pub(super) fn read_of(row: &Row) -> Result<StoredRead> {
    Ok(StoredRead {
        id: id(row.try_get("id").map_err(column)?)?,
        read: Read {
            meter_id: row.try_get("meter_id").map_err(column)?,
            read_at: row.try_get("read_at").map_err(column)?,
            value: quantity(row.try_get("value").map_err(column)?),
            raw: row.try_get("raw").map_err(column)?,
            read_type: named("read type", row.try_get("read_type").map_err(column)?)?,
            codes: from_json("read codes", row.try_get("codes").map_err(column)?)?,
            reader: row.try_get("reader").map_err(column)?,
            origin: Origin {
                kind: named("origin kind", row.try_get("origin_kind").map_err(column)?)?,
                source: row.try_get("origin_source").map_err(column)?,
                locator: row.try_get("origin_locator").map_err(column)?,
            },
        },
        status: status(row.try_get("status").map_err(column)?)?,
        flags: from_json("read flags", row.try_get("flags").map_err(column)?)?,
        consumption: row
            .try_get::<_, Option<i64>>("consumption")
            .map_err(column)?
            .map(quantity),
        received_at: row.try_get("received_at").map_err(column)?,
        batch: row
            .try_get::<_, Option<i64>>("batch_id")
            .map_err(column)?
            .map(id)
            .transpose()?,
    })
}

/// A column that is not there or not of the type expected: the schema is not the one this
/// build knows.
pub(super) fn column(e: tokio_postgres::Error) -> StoreError {
    StoreError::Corrupt {
        what: "row",
        detail: e.to_string(),
    }
}

/// Many reads as column arrays, for one `INSERT … SELECT * FROM UNNEST(…)` (array binds: one
/// statement for a whole group, not one per read).
#[derive(Default)]
pub(super) struct ReadColumns {
    pub id: Vec<i64>,
    pub meter_id: Vec<String>,
    pub read_at: Vec<jiff::Timestamp>,
    pub value: Vec<i64>,
    pub raw: Vec<String>,
    pub read_type: Vec<String>,
    pub codes: Vec<serde_json::Value>,
    pub reader: Vec<Option<String>>,
    pub origin_kind: Vec<String>,
    pub origin_source: Vec<String>,
    pub origin_locator: Vec<String>,
    pub status: Vec<i16>,
    pub flags: Vec<serde_json::Value>,
    pub consumption: Vec<Option<i64>>,
    pub excluded: Vec<bool>,
    pub received_at: Vec<jiff::Timestamp>,
    pub batch_id: Vec<Option<i64>>,
}

impl ReadColumns {
    pub fn with_capacity(n: usize) -> Self {
        ReadColumns {
            id: Vec::with_capacity(n),
            meter_id: Vec::with_capacity(n),
            read_at: Vec::with_capacity(n),
            value: Vec::with_capacity(n),
            raw: Vec::with_capacity(n),
            read_type: Vec::with_capacity(n),
            codes: Vec::with_capacity(n),
            reader: Vec::with_capacity(n),
            origin_kind: Vec::with_capacity(n),
            origin_source: Vec::with_capacity(n),
            origin_locator: Vec::with_capacity(n),
            status: Vec::with_capacity(n),
            flags: Vec::with_capacity(n),
            consumption: Vec::with_capacity(n),
            excluded: Vec::with_capacity(n),
            received_at: Vec::with_capacity(n),
            batch_id: Vec::with_capacity(n),
        }
    }

    pub fn push(&mut self, r: &StoredRead) -> Result<()> {
        let summary = r.summary();
        self.id.push(big(r.id)?);
        self.meter_id.push(r.read.meter_id.clone());
        self.read_at.push(r.read.read_at);
        self.value.push(r.read.value.micros());
        self.raw.push(r.read.raw.clone());
        self.read_type.push(name(&r.read.read_type));
        self.codes.push(json(&r.read.codes)?);
        self.reader.push(r.read.reader.clone());
        self.origin_kind.push(name(&r.read.origin.kind));
        self.origin_source.push(r.read.origin.source.clone());
        self.origin_locator.push(r.read.origin.locator.clone());
        self.status.push(status_code(r.status));
        self.flags.push(json(&r.flags)?);
        self.consumption.push(r.consumption.map(Quantity::micros));
        self.excluded.push(summary.excluded);
        self.received_at.push(r.received_at);
        self.batch_id.push(r.batch.map(big).transpose()?);
        Ok(())
    }

    /// The arrays as statement parameters `$1 … $17`, in [`read_columns`]' order.
    pub fn into_params(self) -> Vec<super::Param> {
        super::params![
            self.id,
            self.meter_id,
            self.read_at,
            self.value,
            self.raw,
            self.read_type,
            self.codes,
            self.reader,
            self.origin_kind,
            self.origin_source,
            self.origin_locator,
            self.status,
            self.flags,
            self.consumption,
            self.excluded,
            self.received_at,
            self.batch_id,
        ]
    }
}

/// `UNNEST` of [`ReadColumns::into_params`], typed.
macro_rules! read_unnest {
    () => {
        "UNNEST($1::bigint[], $2::text[], $3::timestamptz[], $4::bigint[], \
     $5::text[], $6::text[], $7::jsonb[], $8::text[], $9::text[], $10::text[], $11::text[], $12::smallint[], \
         $13::jsonb[], $14::bigint[], $15::boolean[], $16::timestamptz[], $17::bigint[])"
    };
}
pub(super) use read_unnest;
