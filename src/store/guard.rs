//! The engine boundary: a panic inside the engine (redb panics on some damaged files instead
//! of returning an error) never reaches the caller. It becomes [`StoreError::Damaged`] naming
//! the store file, the table last opened and what to do, and the store is marked damaged:
//! every later call returns the same error, nothing more is written, and the file is not
//! touched when the store closes (a damaged file must not be made worse; the issue this
//! answers saw one panic turn a readable store into "All roots are corrupted").

use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Mutex, Once};

use jiff::Timestamp;

use super::prelude::*;
use super::{DayWindow, HeldTelegram, HistoryQuery, Result, StoreError};
use crate::model::billing::{ApiToken, BatchContents, Billed, BilledReadChange};
use crate::model::interval::{Channel, DayKey, IntervalBatch, IntervalBatchContents, IntervalDay};
use crate::model::{
    AuditEntry, Batch, BatchId, BatchStatus, GatewayState, HASH_LEN, IntervalRead, Meter, MeterChange, OutboxEntry,
    QuarantineEntry, QuarantineSummary, QuarantineUsage, ReadId, ReadStatus, ReadSummary, Resolution, RouteLoad,
    RouteSkip, ServiceOrder, StoredQuarantine, StoredRead,
};
use jiff::civil::Date;
use meterd_protocols::wmbus::compact::FormatKey;

thread_local! {
    /// Set while this thread runs engine code under [`catch`]: its panics are expected to be
    /// caught, so the panic hook keeps their message instead of printing it.
    static IN_ENGINE: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
    /// The table the engine opened last on this thread (named in a damaged-store error).
    static LAST_TABLE: RefCell<String> = const { RefCell::new(String::new()) };
}

static HOOK: Once = Once::new();

/// Installs (once) a panic hook that keeps engine panics quiet and hands every other panic to
/// the hook that was there before.
fn install_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if IN_ENGINE.with(Cell::get) {
                let what = info
                    .payload()
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| info.payload().downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".into());
                let at = info.location().map(|l| {
                    let file = std::path::Path::new(l.file()).file_name().and_then(|f| f.to_str());
                    format!(" at {}:{}", file.unwrap_or("?"), l.line())
                });
                LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("{what}{}", at.unwrap_or_default())));
            } else {
                previous(info);
            }
        }));
    });
}

/// Runs engine code; a panic comes back as its message.
pub(super) fn catch<T>(f: impl FnOnce() -> T) -> std::result::Result<T, String> {
    install_hook();
    let was = IN_ENGINE.with(|c| c.replace(true));
    let r = catch_unwind(AssertUnwindSafe(f));
    IN_ENGINE.with(|c| c.set(was));
    r.map_err(|_| {
        LAST_PANIC
            .with(|p| p.borrow_mut().take())
            .unwrap_or_else(|| "the engine panicked".into())
    })
}

/// Records the table the engine is about to open (for the error if it then panics).
pub(super) fn note_table(name: &str) {
    LAST_TABLE.with(|t| {
        let mut t = t.borrow_mut();
        t.clear();
        t.push_str(name);
    });
}

fn last_table() -> Option<String> {
    LAST_TABLE.with(|t| Some(t.borrow().clone()).filter(|t| !t.is_empty()))
}

/// Forgets the table noted by [`note_table`] (before a new guarded call).
fn clear_table() {
    LAST_TABLE.with(|t| t.borrow_mut().clear());
}

/// Whether a store is still usable, and the error every call returns once it is not.
#[derive(Debug)]
pub(super) struct Health {
    path: String,
    damaged: Mutex<Option<StoreError>>,
}

/// An engine error that means the file is damaged (redb found a bad checksum or structure).
fn is_corruption(e: &StoreError) -> bool {
    matches!(e, StoreError::Engine(m) if m.contains("orrupt"))
}

impl Health {
    pub(super) fn new(path: String) -> Self {
        Health {
            path,
            damaged: Mutex::new(None),
        }
    }

    /// The error of a store found damaged, when it was.
    pub(super) fn damaged(&self) -> Option<StoreError> {
        self.damaged.lock().unwrap_or_else(|p| p.into_inner()).as_ref().cloned()
    }

    /// The error for damage found now (a panic message or a corruption error).
    pub(super) fn damage(&self, detail: String) -> StoreError {
        StoreError::Damaged {
            path: self.path.clone(),
            table: last_table(),
            detail,
        }
    }

    /// Marks the store damaged (the first damage found is the one reported from then on).
    fn mark(&self, e: StoreError) -> StoreError {
        let mut d = self.damaged.lock().unwrap_or_else(|p| p.into_inner());
        d.get_or_insert(e).clone()
    }

    /// Runs one engine call: refused once the store is damaged; a panic or a corruption error
    /// marks it damaged.
    pub(super) fn run<R>(&self, f: impl FnOnce() -> Result<R>) -> Result<R> {
        if let Some(e) = self.damaged() {
            return Err(e);
        }
        clear_table();
        match catch(f) {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) if is_corruption(&e) => Err(self.mark(self.damage(e.to_string()))),
            // A record that does not decode: named with the store, the table and the hint. The
            // engine itself is fine, so the store stays usable for the rest.
            Ok(Err(e @ StoreError::Corrupt { .. })) => Err(self.damage(e.to_string())),
            Ok(Err(e)) => Err(e),
            Err(panic) => {
                tracing::error!(store = %self.path, "the store engine failed on the file ({panic}); the store is treated as damaged from now on");
                Err(self.mark(self.damage(format!("the engine failed on it ({panic})"))))
            }
        }
    }
}

/// A transaction behind the boundary. Once the store is damaged the transaction is leaked
/// rather than dropped: dropping it would let the engine write (an abort, a page release) to a
/// damaged file. The leak is bounded by one transaction per damage found.
pub(super) struct Guarded<'s, T> {
    inner: Option<T>,
    health: &'s Health,
}

impl<'s, T> Guarded<'s, T> {
    pub(super) fn new(inner: T, health: &'s Health) -> Self {
        Guarded {
            inner: Some(inner),
            health,
        }
    }

    fn inner(&self) -> &T {
        self.inner.as_ref().expect("present until commit or drop")
    }

    fn inner_mut(&mut self) -> &mut T {
        self.inner.as_mut().expect("present until commit or drop")
    }
}

impl<T: WriteTxn> Guarded<'_, T> {
    fn finish(mut self) -> Result<()> {
        let inner = self.inner.take().expect("present until commit or drop");
        let health = self.health;
        health.run(move || Box::new(inner).commit())
    }
}

impl<T> Drop for Guarded<'_, T> {
    fn drop(&mut self) {
        let Some(inner) = self.inner.take() else { return };
        if self.health.damaged().is_some() {
            std::mem::forget(inner);
            return;
        }
        if let Err(panic) = catch(move || drop(inner)) {
            tracing::error!(store = %self.health.path, "the store engine failed ending a transaction ({panic}); the store is treated as damaged from now on");
            self.health
                .mark(self.health.damage(format!("the engine failed on it ({panic})")));
        }
    }
}

/// One delegation per area trait method, each through `Health::run`: the signatures are
/// written once here, the bodies by the macro.
/// Tests: a write transaction whose commit is replaced, to play the faults a server engine
/// reports at commit ([`StoreError::Retry`], [`StoreError::Unavailable`]).
#[cfg(test)]
pub(crate) struct CommitHook<'s> {
    pub inner: Box<dyn WriteTxn + 's>,
    #[allow(clippy::type_complexity)]
    pub commit: Box<dyn FnOnce(Box<dyn WriteTxn + 's>) -> Result<()> + 's>,
}

#[cfg(test)]
impl WriteTxn for CommitHook<'_> {
    fn commit(self: Box<Self>) -> Result<()> {
        let this = *self;
        (this.commit)(this.inner)
    }
}

macro_rules! guarded {
    (queries $area:ident { $(fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty;)* }) => {
        impl<T: $area> $area for Guarded<'_, T> {
            $(fn $name(&self $(, $arg: $ty)*) -> $ret {
                let health = self.health;
                health.run(|| self.inner().$name($($arg),*))
            })*
        }
        #[cfg(test)]
        impl $area for CommitHook<'_> {
            $(fn $name(&self $(, $arg: $ty)*) -> $ret {
                self.inner.$name($($arg),*)
            })*
        }
    };
    (writes $area:ident { $(fn $name:ident(&mut self $(, $arg:ident: $ty:ty)*) -> $ret:ty;)* }) => {
        impl<T: $area> $area for Guarded<'_, T> {
            $(fn $name(&mut self $(, $arg: $ty)*) -> $ret {
                let health = self.health;
                health.run(|| self.inner_mut().$name($($arg),*))
            })*
        }
        #[cfg(test)]
        impl $area for CommitHook<'_> {
            $(fn $name(&mut self $(, $arg: $ty)*) -> $ret {
                self.inner.$name($($arg),*)
            })*
        }
    };
}

guarded!(queries MeterQueries {
    fn meter(&self, meter_id: &str) -> Result<Option<Meter>>;
    fn meters(&self) -> Result<Vec<Meter>>;
    fn meters_by_id(&self, ids: &[&str]) -> Result<Vec<Option<Meter>>>;
});
guarded!(writes MeterWrites {
    fn put_meter(&mut self, meter: &Meter) -> Result<()>;
    fn lock_meters(&mut self, ids: &[&str]) -> Result<()>;
});
guarded!(queries ReadQueries {
    fn read(&self, id: ReadId) -> Result<Option<StoredRead>>;
    fn meter_histories(&self, queries: &[HistoryQuery<'_>]) -> Result<Vec<Vec<ReadSummary>>>;
    fn meter_reads(&self, meter_id: &str, from: Timestamp, to: Timestamp) -> Result<Vec<StoredRead>>;
    fn meter_reads_before(&self, meter_id: &str, before: Timestamp, limit: usize) -> Result<Vec<StoredRead>>;
    fn all_reads(&self) -> Result<Vec<StoredRead>>;
    fn reads_with_status(&self, status: ReadStatus, limit: usize) -> Result<Vec<StoredRead>>;
    fn count_reads(&self) -> Result<u64>;
    fn count_reads_by_status(&self) -> Result<Vec<(ReadStatus, u64)>>;
});
guarded!(writes ReadWrites {
    fn insert_reads(&mut self, reads: &mut [StoredRead]) -> Result<Vec<ReadId>>;
    fn replace_reads(&mut self, reads: &[StoredRead]) -> Result<Vec<StoredRead>>;
    fn store_billing_state(&mut self, reads: &mut [StoredRead], status: ReadStatus, batch: BatchId) -> Result<()>;
});
guarded!(queries BillingQueries {
    fn batch(&self, id: BatchId) -> Result<Option<Batch>>;
    fn open_batch(&self, client: &str) -> Result<Option<Batch>>;
    fn batches(&self, status: Option<BatchStatus>) -> Result<Vec<Batch>>;
    fn batch_contents(&self, id: BatchId) -> Result<Option<BatchContents>>;
    fn billed(&self, read: ReadId) -> Result<Option<Billed>>;
    fn billed_read_changes(&self) -> Result<Vec<BilledReadChange>>;
    fn billed_read_change(&self, read: ReadId) -> Result<Option<BilledReadChange>>;
    fn api_tokens(&self) -> Result<Vec<ApiToken>>;
});
guarded!(writes BillingWrites {
    fn next_batch_id(&mut self) -> Result<BatchId>;
    fn put_batch(&mut self, batch: &Batch) -> Result<()>;
    fn lock_open_batch(&mut self, client: &str) -> Result<Option<BatchId>>;
    fn set_open_batch(&mut self, client: &str, batch: Option<BatchId>) -> Result<()>;
    fn put_batch_contents(&mut self, id: BatchId, contents: &BatchContents) -> Result<()>;
    fn put_billed(&mut self, billed: &[(ReadId, Billed)]) -> Result<()>;
    fn put_billed_read_change(&mut self, change: &BilledReadChange) -> Result<()>;
    fn remove_billed_read_change(&mut self, read: ReadId) -> Result<()>;
    fn put_api_token(&mut self, token: &ApiToken) -> Result<()>;
});
guarded!(queries GatewayQueries {
    fn seen(&self, namespace: &str, key: &[u8]) -> Result<Option<Timestamp>>;
    fn gateways(&self) -> Result<Vec<GatewayState>>;
    fn gateway(&self, gateway: &str) -> Result<Option<GatewayState>>;
    fn interval_reads(&self, meter_id: &str, from: Timestamp, to: Timestamp) -> Result<Vec<IntervalRead>>;
    fn count_interval_reads(&self) -> Result<u64>;
    fn tamper_state(&self, endpoint: &str) -> Result<Option<(Timestamp, u64)>>;
    fn outbox(&self, after: u64, limit: usize) -> Result<Vec<(u64, OutboxEntry)>>;
    fn outbox_len(&self) -> Result<u64>;
});
guarded!(writes GatewayWrites {
    fn mark_seen(&mut self, namespace: &str, key: &[u8], at: Timestamp) -> Result<bool>;
    fn mark_seen_all(&mut self, namespace: &str, keys: &[&[u8]], at: Timestamp) -> Result<Vec<bool>>;
    fn forget_seen_before(&mut self, namespace: &str, before: Timestamp) -> Result<u64>;
    fn put_gateway(&mut self, state: &GatewayState) -> Result<()>;
    fn insert_interval_read(&mut self, meter_id: &str, read: &IntervalRead) -> Result<()>;
    fn insert_interval_reads(&mut self, meter_id: &str, reads: &[IntervalRead]) -> Result<()>;
    fn set_tamper_state(&mut self, endpoint: &str, at: Timestamp, counters: u64) -> Result<()>;
    fn push_outbox(&mut self, entry: &OutboxEntry) -> Result<u64>;
    fn remove_outbox(&mut self, id: u64) -> Result<bool>;
});
guarded!(queries WmbusQueries {
    fn wmbus_layout(&self, key: &FormatKey) -> Result<Option<Vec<u8>>>;
    fn wmbus_layouts(&self) -> Result<Vec<(FormatKey, Vec<u8>)>>;
    fn held_telegrams(&self) -> Result<Vec<(u64, HeldTelegram)>>;
    fn count_held_telegrams(&self) -> Result<u64>;
});
guarded!(writes WmbusWrites {
    fn put_wmbus_layout(&mut self, key: &FormatKey, layout: &[u8]) -> Result<()>;
    fn hold_telegram(&mut self, held: &HeldTelegram) -> Result<u64>;
    fn release_held_telegram(&mut self, id: u64) -> Result<bool>;
});
guarded!(queries CradleQueries {
    fn route_assignments(&self) -> Result<Vec<(String, String)>>;
    fn route_loads(&self) -> Result<Vec<RouteLoad>>;
    fn cradle_watermark(&self, serial: &str) -> Result<Option<u32>>;
    fn route_skips(&self, route: &str) -> Result<Vec<RouteSkip>>;
});
guarded!(writes CradleWrites {
    fn assign_route(&mut self, route: &str, serial: Option<&str>) -> Result<()>;
    fn put_route_load(&mut self, load: &RouteLoad) -> Result<()>;
    fn remove_route_load(&mut self, load: &RouteLoad) -> Result<()>;
    fn put_cradle_watermark(&mut self, serial: &str, seq: u32) -> Result<()>;
    fn put_route_skip(&mut self, skip: &RouteSkip) -> Result<()>;
});
guarded!(queries ReviewQueries {
    fn audit_len(&self) -> Result<u64>;
    fn audit_scan(&self) -> Result<Vec<(u64, std::result::Result<AuditEntry, String>)>>;
    fn read_audit(&self, read_id: ReadId) -> Result<Vec<AuditEntry>>;
    fn meter_audit(&self, meter_id: &str) -> Result<Vec<AuditEntry>>;
    fn undo_snapshot(&self, seq: u64) -> Result<Option<StoredRead>>;
    fn service_orders(&self) -> Result<Vec<ServiceOrder>>;
    fn service_order(&self, id: u64) -> Result<Option<ServiceOrder>>;
    fn meter_changes(&self, meter_id: &str) -> Result<Vec<MeterChange>>;
});
guarded!(writes ReviewWrites {
    fn audit_tail(&mut self) -> Result<(u64, [u8; HASH_LEN])>;
    fn insert_audit(&mut self, entry: &AuditEntry, before: Option<&StoredRead>) -> Result<()>;
    fn put_service_order(&mut self, order: &ServiceOrder) -> Result<u64>;
    fn put_meter_change(&mut self, change: &MeterChange) -> Result<()>;
});
guarded!(queries QuarantineQueries {
    fn quarantined(&self) -> Result<Vec<(u64, QuarantineEntry)>>;
    fn quarantine_entries(&self) -> Result<Vec<(u64, StoredQuarantine)>>;
    fn quarantine_entry(&self, id: u64) -> Result<Option<StoredQuarantine>>;
    fn quarantine_summary(&self) -> Result<Vec<QuarantineSummary>>;
    fn quarantine_usage(&self) -> Result<QuarantineUsage>;
});
guarded!(writes QuarantineWrites {
    fn quarantine(&mut self, entry: &QuarantineEntry) -> Result<u64>;
    fn resolve_quarantine(&mut self, id: u64, resolution: &Resolution) -> Result<()>;
    fn purge_quarantine_before(&mut self, before: Timestamp) -> Result<QuarantineUsage>;
    fn enforce_quarantine_retention(&mut self, now: Timestamp) -> Result<u64>;
});

guarded!(queries IntervalQueries {
    fn channel(&self, meter_id: &str, channel: &str) -> Result<Option<Channel>>;
    fn channels_by_key(&self, keys: &[(&str, &str)]) -> Result<Vec<Option<Channel>>>;
    fn day_windows(&self, windows: &[DayWindow<'_>]) -> Result<Vec<Vec<IntervalDay>>>;
    fn channels(&self, meter_id: &str) -> Result<Vec<Channel>>;
    fn interval_day(&self, key: &DayKey) -> Result<Option<IntervalDay>>;
    fn interval_days(&self, meter_id: &str, from: Date, to: Date) -> Result<Vec<IntervalDay>>;
    fn interval_days_with_status(&self, status: ReadStatus, after: Option<&DayKey>, limit: usize) -> Result<Vec<DayKey>>;
    fn count_interval_days(&self) -> Result<u64>;
    fn interval_batch(&self, id: BatchId) -> Result<Option<IntervalBatch>>;
    fn interval_batches(&self) -> Result<Vec<IntervalBatch>>;
    fn interval_batch_contents(&self, id: BatchId) -> Result<Option<IntervalBatchContents>>;
});
guarded!(writes IntervalWrites {
    fn put_channel(&mut self, channel: &Channel) -> Result<()>;
    fn put_channels(&mut self, channels: &[Channel]) -> Result<()>;
    fn put_interval_days(&mut self, days: &[IntervalDay]) -> Result<()>;
    fn put_interval_batch(&mut self, batch: &IntervalBatch) -> Result<()>;
    fn put_interval_batch_contents(&mut self, id: BatchId, contents: &IntervalBatchContents) -> Result<()>;
    fn lock_open_interval_batch(&mut self, client: &str) -> Result<Option<BatchId>>;
    fn set_open_interval_batch(&mut self, client: &str, batch: Option<BatchId>) -> Result<()>;
});

impl<T: WriteTxn> WriteTxn for Guarded<'_, T> {
    fn commit(self: Box<Self>) -> Result<()> {
        (*self).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_a_damaged_store_error_and_every_later_call_gets_it() {
        let health = Health::new("/srv/meterd/meterd.redb".into());
        assert_eq!(health.run(|| Ok(1)).unwrap(), 1);
        let first = health
            .run(|| -> Result<()> {
                note_table("reads");
                panic!("entered unreachable code")
            })
            .unwrap_err();
        let text = first.to_string();
        assert!(text.contains("/srv/meterd/meterd.redb"), "{text}");
        assert!(text.contains("(table reads)"), "{text}");
        assert!(text.contains("entered unreachable code"), "{text}");
        assert!(text.contains("meterd store check"), "{text}");
        // Poisoned: a call that would succeed gets the same error, without running.
        let mut ran = false;
        let again = health
            .run(|| {
                ran = true;
                Ok(())
            })
            .unwrap_err();
        assert!(!ran);
        assert_eq!(again.to_string(), text);
    }

    #[test]
    fn a_record_that_does_not_decode_names_the_store_but_does_not_poison_it() {
        let health = Health::new("s.redb".into());
        let e = health
            .run(|| -> Result<()> {
                Err(StoreError::Corrupt {
                    what: "read",
                    detail: "bad".into(),
                })
            })
            .unwrap_err();
        assert!(matches!(e, StoreError::Damaged { .. }), "{e}");
        assert!(health.run(|| Ok(())).is_ok());
    }
}
