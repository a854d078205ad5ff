//! The store conformance battery: every case runs against every engine.
//!
//! A case is a plain function taking an [`Engine`]; [`battery!`] makes one `#[test]` per case
//! per engine (`store::redb::reads_survive_reopen`, ...). What only one engine has (redb's file
//! damage, locks, schema of redb files) is tested outside, in `store_redb`, `store_damage`,
//! `store_backup` and `store_pg`.
//!
//! The cases test the contract written in `src/store/mod.rs` and the area traits' docs, and the
//! rules (`src/store/rules.rs`) through [`meterd::store::Rules`], never an engine's insides.
//! Timestamps are fixed: nothing asserted depends on the clock.

use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use meterd::model::{
    Meter, MeterStatus, Origin, OriginKind, Quantity, Read, ReadStatus, ReadType, Service, StoredRead,
};
use meterd::store::postgres::{PgStore, SslMode, StoreConfig};
use meterd::store::prelude::*;
use meterd::store::{QuarantineLimits, RedbStore};

mod billing;
mod cradles;
mod gateways;
mod intervals;
mod meters;
mod pipeline;
mod quarantine;
mod reads;
mod review;
mod rules;
mod wmbus;

/// A store engine under test.
pub trait Engine {
    fn name(&self) -> &str;
    /// The store (the same handle until [`Engine::reopen`]).
    fn store(&self) -> Arc<dyn Store>;
    /// Same data, fresh handle: redb reopens the file, a server engine reconnects. Every
    /// handle from [`Engine::store`] must be dropped first.
    fn reopen(&self) -> Arc<dyn Store>;
    /// Quarantine retention of the current handle (engine configuration, not a store method).
    fn set_quarantine_limits(&self, limits: QuarantineLimits);
}

/// The embedded engine: a redb file in a fresh temporary folder.
pub struct RedbEngine {
    dir: tempfile::TempDir,
    current: Mutex<Option<Arc<RedbStore>>>,
}

pub fn redb_engine() -> RedbEngine {
    let dir = tempfile::tempdir().unwrap();
    let s = RedbStore::open_dir(dir.path()).unwrap();
    RedbEngine {
        dir,
        current: Mutex::new(Some(Arc::new(s))),
    }
}

impl RedbEngine {
    fn current(&self) -> Arc<RedbStore> {
        self.current.lock().unwrap().clone().expect("store open")
    }
}

impl Engine for RedbEngine {
    fn name(&self) -> &str {
        "redb"
    }
    fn store(&self) -> Arc<dyn Store> {
        self.current()
    }
    fn reopen(&self) -> Arc<dyn Store> {
        let mut cur = self.current.lock().unwrap();
        let old = cur.take().expect("store open");
        assert_eq!(
            Arc::strong_count(&old),
            1,
            "drop every store handle before reopen (redb holds a file lock)"
        );
        drop(old);
        let s = Arc::new(RedbStore::open_dir(self.dir.path()).unwrap());
        *cur = Some(s.clone());
        s
    }
    fn set_quarantine_limits(&self, limits: QuarantineLimits) {
        self.current().set_quarantine_limits(limits);
    }
}

/// The PostgreSQL engine: a fresh database on the test cluster of `common::pg` (started once
/// per test run). Reopen drops the pool and connects again.
pub struct PgEngine {
    url: String,
    current: Mutex<Option<Arc<PgStore>>>,
}

pub fn pg_engine() -> PgEngine {
    // The schema and the months the cases use made beforehand: a case's transaction reaching
    // a month without its partition would be asked to run again (`StoreError::Retry`), which
    // the callers' `store::write` does and these direct transactions do not.
    let url = crate::common::pg::store_database();
    let s = PgEngine::open(&url);
    PgEngine {
        url,
        current: Mutex::new(Some(Arc::new(s))),
    }
}

impl PgEngine {
    fn open(url: &str) -> PgStore {
        PgStore::open(&StoreConfig {
            url: Some(url.to_owned()),
            sslmode: SslMode::Disable,
            ..StoreConfig::default()
        })
        .unwrap()
    }
    fn current(&self) -> Arc<PgStore> {
        self.current.lock().unwrap().clone().expect("store open")
    }
}

impl Engine for PgEngine {
    fn name(&self) -> &str {
        "postgresql"
    }
    fn store(&self) -> Arc<dyn Store> {
        self.current()
    }
    fn reopen(&self) -> Arc<dyn Store> {
        let mut cur = self.current.lock().unwrap();
        let old = cur.take().expect("store open");
        assert_eq!(Arc::strong_count(&old), 1, "drop every store handle before reopen");
        drop(old);
        let s = Arc::new(PgEngine::open(&self.url));
        *cur = Some(s.clone());
        s
    }
    fn set_quarantine_limits(&self, limits: QuarantineLimits) {
        self.current().set_quarantine_limits(limits);
    }
}

// A new engine: a function returning its `Engine` (a fresh, empty store per call), and one
// line in the invocation below: `name: constructor();`.

/// One `#[test]` per case per engine, in a module named after the engine
/// (`store::redb::reads_survive_reopen_with_stable_ids_and_indexes`).
macro_rules! battery {
    (@engine $engine:ident, $make:expr, [$($area:ident::$case:ident),* $(,)?]) => {
        mod $engine {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[test]
                fn $case() {
                    let e = $make;
                    eprintln!("store battery on {}", e.name());
                    super::$area::$case(&e);
                }
            )*
        }
    };
    (cases: $cases:tt; $($engine:ident: $make:expr;)+) => {
        $( battery!(@engine $engine, $make, $cases); )+
    };
}

battery! {
    cases: [
        meters::meters_are_stored_replaced_and_listed_by_id,
        meters::many_meters_match_one_lookup_each,
        meters::lock_meters_skips_unknown_ids_and_changes_nothing,
        reads::reads_survive_reopen_with_stable_ids_and_indexes,
        reads::read_ids_increase_and_are_never_reused_across_reopen,
        reads::missing_reads_are_none_and_replacing_one_is_not_found,
        reads::meter_reads_are_end_exclusive_and_ordered,
        reads::meter_reads_before_is_newest_first_and_limited,
        reads::reads_with_status_are_oldest_id_first_and_limited,
        reads::counts_by_status_follow_updates,
        reads::update_read_moves_it_between_status_and_history_indexes,
        reads::histories_of_many_meters_at_once,
        reads::a_write_transaction_sees_its_own_writes,
        reads::nothing_of_a_dropped_write_transaction_is_stored,
        reads::a_read_transaction_sees_what_was_committed_before_it_began,
        billing::batches_are_stored_listed_and_ids_increase_across_reopen,
        billing::open_batches_per_client,
        billing::batch_contents_billed_and_changes_are_stored,
        billing::api_tokens_by_name,
        gateways::seen_keys_are_durable_and_expire_per_namespace,
        gateways::gateways_are_stored_by_id,
        gateways::interval_reads_are_end_exclusive_per_meter,
        gateways::tamper_state_is_replaced,
        gateways::many_seen_keys_at_once_as_one_after_the_other,
        gateways::outbox_ids_increase_and_pages_are_limited,
        intervals::interval_days_round_trip_whole,
        intervals::interval_days_by_meter_are_date_ranges,
        intervals::interval_days_by_status_follow_every_change,
        intervals::interval_batches_and_open_batch,
        intervals::bulk_lookups_answer_in_the_order_asked,
        cradles::route_assignments_and_loads,
        cradles::watermarks_and_skips,
        review::service_orders_get_fresh_ids_and_are_replaced,
        review::meter_changes_oldest_first,
        review::audit_entries_by_read_and_meter_with_undo_snapshots,
        review::a_day_entry_is_in_the_chain_and_found_by_meter,
        quarantine::quarantine_is_durable_and_resolved_once,
        quarantine::the_byte_limit_removes_the_oldest_and_summarises_them,
        quarantine::the_age_limit_and_purge,
        rules::the_audit_chain_links_and_verifies,
        rules::a_changed_billed_read_opens_one_change_at_the_callers_time,
        rules::a_billed_read_change_stays_after_its_correction_went_out,
        rules::the_watermark_never_lowers,
        rules::the_interval_window_is_60_seconds_inclusive,
        rules::many_interval_reads_at_once_keep_the_window,
        rules::one_open_batch_per_client_until_acked,
        rules::billing_state_moves_reads_in_bulk_and_refuses_a_stale_copy,
        rules::billing_state_refuses_a_read_in_another_batch,
        pipeline::an_impossible_value_is_not_the_next_reads_previous,
        pipeline::duplicates_within_one_call_and_unknown_meters,
        pipeline::reimporting_stores_nothing_twice_and_vee_flags_jumps,
        pipeline::batches_respect_max_and_never_share_a_read,
        pipeline::pull_and_ack_bill_each_read_once,
        wmbus::layouts_and_held_telegrams_survive_reopen,
    ];
    redb: redb_engine();
    pg: pg_engine();
}

// ---- shared helpers ----

pub fn meter(id: &str) -> Meter {
    Meter {
        meter_id: id.into(),
        account: "A".into(),
        route: "R1".into(),
        sequence: 1,
        service: Service::Water,
        unit: "gal".into(),
        dials: 8,
        decimals: 0,
        multiplier: Quantity::from_units(1).unwrap(),
        status: MeterStatus::Active,
        address: "1 Main St".into(),
        notes: String::new(),
    }
}

pub fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

pub fn q(units: i64) -> Quantity {
    Quantity::from_units(units).unwrap()
}

pub fn read(id: &str, at: &str, value: i64) -> Read {
    Read {
        meter_id: id.into(),
        read_at: t(at),
        value: q(value),
        raw: value.to_string(),
        read_type: ReadType::Gateway,
        codes: vec![],
        reader: Some("gw-1".into()),
        origin: Origin {
            kind: OriginKind::Gateway,
            source: "meters/+/scm".into(),
            locator: "pkid 7".into(),
        },
    }
}

/// A read as stored, not through VEE (id assigned on insert).
pub fn stored(id: &str, at: &str, value: i64, status: ReadStatus) -> StoredRead {
    StoredRead {
        id: 0,
        read: read(id, at, value),
        status,
        flags: vec![],
        consumption: None,
        received_at: t("2025-06-01T00:00:00Z"),
        batch: None,
    }
}

pub fn add_meter(s: &dyn Store, m: &Meter) {
    let mut txn = s.begin_write().unwrap();
    txn.put_meter(m).unwrap();
    txn.commit().unwrap();
}

/// Insert reads in one committed transaction; their ids.
pub fn insert(s: &dyn Store, reads: &[StoredRead]) -> Vec<u64> {
    let mut txn = s.begin_write().unwrap();
    let mut reads = reads.to_vec();
    let ids = txn.insert_reads(&mut reads).unwrap();
    txn.commit().unwrap();
    ids
}
