//! Month partitions of the reads and interval reads tables: created before the first write into
//! a month (`CREATE TABLE IF NOT EXISTS reads_y2026m01 PARTITION OF reads ...`), remembered in
//! memory so that a month costs one statement per process.
//!
//! There is no default partition on purpose: a row of a month without its partition is an
//! error, not a row parked where a later `CREATE ... PARTITION OF` would have to move it.

use std::collections::{BTreeSet, HashSet};
use std::sync::Mutex;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use tokio_postgres::Client;

use crate::store::StoreError;

/// A table partitioned by month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Partitioned {
    /// `reads`, by `read_at`.
    Reads,
    /// `interval_reads`, by `end_at`.
    IntervalReads,
    /// `interval_days`, by the local `date` of the meter-channel-day.
    IntervalDays,
}

impl Partitioned {
    pub const ALL: [Partitioned; 3] = [
        Partitioned::Reads,
        Partitioned::IntervalReads,
        Partitioned::IntervalDays,
    ];
}

impl Partitioned {
    pub fn table(self) -> &'static str {
        match self {
            Partitioned::Reads => "reads",
            Partitioned::IntervalReads => "interval_reads",
            Partitioned::IntervalDays => "interval_days",
        }
    }
}

/// A calendar month in UTC (partition bounds are UTC midnights).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Month {
    year: i16,
    month: i8,
}

impl Month {
    /// `None` outside years 1..=9998 (PostgreSQL's bounds need a following month and no era).
    pub fn new(year: i16, month: i8) -> Option<Month> {
        ((1..=9998).contains(&year) && (1..=12).contains(&month)).then_some(Month { year, month })
    }

    /// The UTC month of `t`; `None` for times before year 1 or after 9998.
    pub fn of(t: Timestamp) -> Option<Month> {
        let d = t.to_zoned(TimeZone::UTC).date();
        Month::new(d.year(), d.month())
    }

    /// The months of `times` (a write's reads), each once, in order; the first time that has
    /// no month is the error.
    pub fn of_all(times: impl IntoIterator<Item = Timestamp>) -> Result<BTreeSet<Month>, StoreError> {
        times
            .into_iter()
            .map(|t| Month::of(t).ok_or_else(|| StoreError::Engine(format!("time {t} is outside the years 1 to 9998"))))
            .collect()
    }

    /// The month after this one (`None` after 9998-12).
    pub fn following(self) -> Option<Month> {
        let (y, m) = self.next();
        Month::new(y, m)
    }

    fn next(self) -> (i16, i8) {
        if self.month == 12 {
            (self.year + 1, 1)
        } else {
            (self.year, self.month + 1)
        }
    }

    /// The partition's name: `reads_y2026m01`.
    pub fn partition_name(self, table: Partitioned) -> String {
        format!("{}_y{:04}m{:02}", table.table(), self.year, self.month)
    }

    /// The month of a partition named as [`Month::partition_name`] does; `None` for others.
    pub fn of_partition_name(table: Partitioned, name: &str) -> Option<Month> {
        let rest = name.strip_prefix(table.table())?.strip_prefix("_y")?;
        let (year, month) = rest.split_once('m')?;
        if year.len() != 4 || month.len() != 2 {
            return None;
        }
        Month::new(year.parse().ok()?, month.parse().ok()?)
    }

    /// The month of a local day (`None` outside years 1 to 9998).
    pub fn of_date(d: jiff::civil::Date) -> Option<Month> {
        Month::new(d.year(), d.month())
    }

    fn create_sql(self, table: Partitioned) -> String {
        let (ny, nm) = self.next();
        if table == Partitioned::IntervalDays {
            // A date column: bounds are dates, no time zone involved.
            return format!(
                "CREATE TABLE IF NOT EXISTS {} PARTITION OF {} FOR VALUES FROM ('{:04}-{:02}-01') TO ('{ny:04}-{nm:02}-01')",
                self.partition_name(table),
                table.table(),
                self.year,
                self.month,
            );
        }
        format!(
            "CREATE TABLE IF NOT EXISTS {} PARTITION OF {} FOR VALUES FROM ('{:04}-{:02}-01 00:00:00+00') TO ('{ny:04}-{nm:02}-01 00:00:00+00')",
            self.partition_name(table),
            table.table(),
            self.year,
            self.month,
        )
    }
}

/// The months whose partitions this process created or found (one per engine).
#[derive(Debug, Default)]
pub struct Partitions {
    ensured: Mutex<HashSet<(Partitioned, Month)>>,
}

impl Partitions {
    pub fn new() -> Self {
        Self::default()
    }

    /// Which of `months` have no partition of `table` known to this process.
    pub fn missing(&self, table: Partitioned, months: impl IntoIterator<Item = Month>) -> Vec<Month> {
        let ensured = self.ensured.lock().unwrap_or_else(|p| p.into_inner());
        months.into_iter().filter(|m| !ensured.contains(&(table, *m))).collect()
    }

    /// Makes sure `table` has a partition for each of `months`. Call it outside a transaction
    /// (each `CREATE` commits on its own, and a failed statement would abort the caller's
    /// transaction): before the write transaction that inserts the rows. Another instance
    /// creating the same partition at the same moment is fine.
    pub async fn ensure(
        &self,
        client: &Client,
        table: Partitioned,
        months: impl IntoIterator<Item = Month>,
    ) -> Result<(), StoreError> {
        for month in self.missing(table, months) {
            match client.batch_execute(&month.create_sql(table)).await {
                Ok(()) => {}
                Err(e) if super::migrate::is_concurrent_create(&e) => {}
                Err(e) => {
                    return Err(StoreError::Engine(format!(
                        "creating partition {}: {}",
                        month.partition_name(table),
                        super::connect::error_text(&e)
                    )));
                }
            }
            self.ensured
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert((table, month));
        }
        Ok(())
    }
}

impl Partitions {
    /// Learns the month partitions that exist already (made by another instance, an earlier
    /// run or `store migrate`), so that a transaction into those months is not run twice.
    pub async fn load(&self, client: &Client) -> Result<(), StoreError> {
        for table in Partitioned::ALL {
            let rows = client
                .query(
                    "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
                     WHERE i.inhparent = $1::text::regclass",
                    &[&table.table()],
                )
                .await
                .map_err(|e| StoreError::Engine(format!("listing partitions: {}", super::connect::error_text(&e))))?;
            let mut ensured = self.ensured.lock().unwrap_or_else(|p| p.into_inner());
            for row in rows {
                let name: String = row.get(0);
                if let Some(month) = Month::of_partition_name(table, &name) {
                    ensured.insert((table, month));
                }
            }
        }
        Ok(())
    }

    /// Forgets what was ensured: after a write failed with "no partition of relation" (an
    /// operator dropped an old month), so that the next [`Partitions::ensure`] creates it again.
    pub fn forget(&self) {
        self.ensured.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

/// [`Partitions::ensure`] under the name the engine's writers use.
pub async fn ensure_month_partitions(
    client: &Client,
    partitions: &Partitions,
    table: Partitioned,
    months: impl IntoIterator<Item = Month>,
) -> Result<(), StoreError> {
    partitions.ensure(client, table, months).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_and_their_bounds() {
        let t: Timestamp = "2026-12-31T23:59:59.999999Z".parse().unwrap();
        let m = Month::of(t).unwrap();
        assert_eq!(m.partition_name(Partitioned::Reads), "reads_y2026m12");
        assert!(m.create_sql(Partitioned::IntervalReads).ends_with(
            "PARTITION OF interval_reads FOR VALUES FROM ('2026-12-01 00:00:00+00') TO ('2027-01-01 00:00:00+00')"
        ));
        let set = Month::of_all([
            "2026-01-05T00:00:00Z".parse().unwrap(),
            t,
            "2026-01-30T00:00:00Z".parse().unwrap(),
        ])
        .unwrap();
        assert_eq!(set.len(), 2);
        assert!(Month::of_all([Timestamp::MIN]).is_err());
        assert_eq!(Month::of_partition_name(Partitioned::Reads, "reads_y2026m12"), Some(m));
        assert_eq!(
            Month::of_partition_name(Partitioned::IntervalReads, "interval_reads_y2026m12"),
            Some(m)
        );
        for other in [
            "reads_default",
            "interval_reads_y2026m12",
            "reads_y2026m13",
            "reads_y26m01",
        ] {
            assert_eq!(Month::of_partition_name(Partitioned::Reads, other), None, "{other}");
        }
    }
}
