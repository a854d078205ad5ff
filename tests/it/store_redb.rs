//! What only the embedded redb engine has: its file's schema version, a foreign file, the file
//! lock, and stores written before an index existed. Everything engine-neutral is in the
//! battery (`store/`).

use meterd::store::prelude::*;
use meterd::store::{RedbStore, StoreError};

fn t(s: &str) -> jiff::Timestamp {
    s.parse().unwrap()
}

#[test]
fn seen_keys_of_a_store_without_the_time_index_still_expire() {
    let dir = tempfile::tempdir().unwrap();
    let s = RedbStore::open_dir(dir.path()).unwrap();
    let mut txn = s.begin_write().unwrap();
    assert!(txn.mark_seen("scm", b"old", t("2025-01-01T00:00:00Z")).unwrap());
    txn.commit().unwrap();
    drop(s);
    // A store written before the time index existed: the keys alone.
    {
        let db = redb::Database::open(dir.path().join(meterd::store::STORE_FILE)).unwrap();
        let txn = db.begin_write().unwrap();
        assert!(
            txn.delete_table(redb::TableDefinition::<(&str, i64, &[u8]), ()>::new("seen_by_time"))
                .unwrap()
        );
        txn.commit().unwrap();
    }
    let s = RedbStore::open_dir(dir.path()).unwrap();
    let mut txn = s.begin_write().unwrap();
    assert_eq!(txn.forget_seen_before("scm", t("2025-01-02T00:00:00Z")).unwrap(), 1);
    assert_eq!(txn.seen("scm", b"old").unwrap(), None);
}

#[test]
fn schema_version_and_foreign_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.redb");
    drop(RedbStore::open(&path).unwrap());
    // A newer store than this build knows is refused, with both versions named.
    let newer = meterd::store::SCHEMA_VERSION + 1;
    RedbStore::set_schema_version(&path, newer).unwrap();
    let e = RedbStore::open(&path).unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::SchemaVersion { found, supported: meterd::store::SCHEMA_VERSION, .. } if found == newer
        ),
        "{e}"
    );
    assert!(
        e.to_string().contains(&format!("schema version {newer}"))
            && e.to_string()
                .contains(&format!("supports version {}", meterd::store::SCHEMA_VERSION)),
        "{e}"
    );

    let garbage = dir.path().join("garbage.redb");
    std::fs::write(&garbage, b"this is not a database at all, just text").unwrap();
    let e = RedbStore::open(&garbage).unwrap_err().to_string();
    assert!(e.contains("garbage.redb"), "{e}");
}

#[test]
fn open_waiting_waits_for_a_store_another_holder_releases() {
    let dir = tempfile::tempdir().unwrap();
    let held = RedbStore::open_dir(dir.path()).unwrap();
    // Held throughout: the wait ends with the lock error.
    let e = meterd::store::open_waiting(dir.path(), std::time::Duration::from_millis(50)).unwrap_err();
    assert!(matches!(e, StoreError::Locked { .. }), "{e}");
    // Released meanwhile: the wait ends with the store.
    let release = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(100));
        drop(held);
    });
    meterd::store::open_waiting(dir.path(), std::time::Duration::from_secs(5)).unwrap();
    release.join().unwrap();
}

/// The frozen version-3 store (tests/fixtures/store-v3): this build opens a copy, migrating
/// it if its schema has moved on, and answers as the build that wrote it did.
#[test]
fn a_version_3_store_opens_with_the_same_answers() {
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-v3");
    let s = crate::common::Scratch::new();
    std::fs::create_dir_all(s.data_dir()).unwrap();
    std::fs::copy(fixture.join("meterd.redb"), s.data_dir().join("meterd.redb")).unwrap();
    let expect = |file: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(fixture.join(file)).unwrap()).unwrap()
    };
    assert_eq!(s.json(&["reads", "list", "--json"]), expect("reads.json"));
    // `batches list` names each batch's kind since interval batches came (issue 15); the
    // frozen answer predates the field.
    let mut batches = s.json(&["batches", "list", "--json"]);
    for b in batches.as_array_mut().unwrap() {
        assert_eq!(b.as_object_mut().unwrap().remove("kind"), Some("reads".into()));
    }
    assert_eq!(batches, expect("batches.json"));
    assert_eq!(
        s.json(&["audit", "show", "--json", "--meter", "E-1"]),
        expect("audit-E-1.json")
    );
    assert!(s.ok(&["audit", "verify"]).contains("intact: 3 entries"));
    assert!(s.ok(&["store", "check"]).contains("intact"));
    // Still a working store: the next read gets the next id.
    let csv = s.file("more.csv", "meter_id,read_at,value\nW-1,2025-03-05T10:00:00Z,2000\n");
    s.ok(&["reads", "import", csv.to_str().unwrap()]);
    let reads = s.json(&["reads", "list", "--json"]);
    assert_eq!(
        reads.as_array().unwrap().iter().filter_map(|r| r["id"].as_u64()).max(),
        Some(8)
    );
}
