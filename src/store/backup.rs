//! Backups of the redb store: a consistent copy taken from one read transaction (the daemon
//! keeps writing meanwhile; the copy is the store as of the transaction's start), and putting a
//! copy back in place of the store.

use std::collections::BTreeSet;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use redb::{Database, ReadableTable, TableDefinition, TableHandle};

use super::redb_engine::*;
use super::{Result, STORE_FILE, StoreError};

/// Copies every row of one table.
fn copy_table<K: redb::Key + 'static, V: redb::Value + 'static>(
    src: &redb::ReadTransaction,
    dst: &redb::WriteTransaction,
    def: TableDefinition<'static, K, V>,
) -> Result<()> {
    let from = match src.open_table(def) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
        Err(e) => return Err(engine(e)),
    };
    let mut to = dst.open_table(def).map_err(engine)?;
    for e in from.iter().map_err(engine)? {
        let (k, v) = e.map_err(engine)?;
        to.insert(k.value(), v.value()).map_err(engine)?;
    }
    Ok(())
}

/// Writes the snapshot `src` as a new store file at `dest` (which must not exist), fsync'd.
/// Every table is copied; a table this build does not know is refused rather than left out.
pub(super) fn copy_to(src: &redb::ReadTransaction, dest: &Path) -> Result<()> {
    let db = Database::builder().create(dest).map_err(engine)?;
    let txn = db.begin_write().map_err(engine)?;
    let mut copied = BTreeSet::new();
    macro_rules! copy {
        ($($t:ident),* $(,)?) => {$(
            copy_table(src, &txn, $t)?;
            copied.insert($t.name().to_owned());
        )*};
    }
    copy!(
        META,
        METERS,
        READS,
        METER_TIME,
        STATUS_INDEX,
        BATCHES,
        OPEN_BATCHES,
        QUARANTINE,
        QUARANTINE_SUMMARY,
        SEEN,
        SEEN_BY_TIME,
        BATCH_CONTENTS,
        BILLED,
        BILLED_READ_CHANGES,
        API_TOKENS,
        GW_GATEWAYS,
        GW_INTERVALS,
        GW_TAMPER,
        GW_OUTBOX,
        ROUTE_ASSIGN,
        ROUTE_LOADS,
        CRADLE_WATERMARK,
        ROUTE_SKIPS,
        AUDIT,
        AUDIT_BY_READ,
        AUDIT_BY_METER,
        UNDO_SNAPSHOTS,
        SERVICE_ORDERS,
        METER_CHANGES,
        IV_CHANNELS,
        IV_DAYS,
        IV_STATUS,
        IV_BATCHES,
        IV_BATCH_CONTENTS,
        IV_OPEN_BATCHES,
        WMBUS_LAYOUTS,
        WMBUS_HELD,
    );
    for t in src.list_tables().map_err(engine)? {
        if !copied.contains(t.name()) {
            return Err(StoreError::Engine(format!(
                "table {} is not known to the backup of this meterd build; no backup written",
                t.name()
            )));
        }
    }
    txn.commit().map_err(engine)?;
    db.close().map_err(engine)?;
    std::fs::File::open(dest)
        .and_then(|f| f.sync_all())
        .map_err(|e| StoreError::Engine(format!("syncing the backup {}: {e}", dest.display())))
}

/// [`copy_to`] into a private directory under `dir` (the data directory: the daemon never
/// writes where a client names), then the bytes of the copy (the directory goes).
pub(super) fn copy_to_bytes(src: &redb::ReadTransaction, dir: &Path) -> Result<Vec<u8>> {
    let tmp = tempfile::Builder::new()
        .prefix(".meterd-backup-")
        .tempdir_in(dir)
        .map_err(|e| {
            StoreError::Engine(format!(
                "cannot make a directory for the backup in {}: {e}",
                dir.display()
            ))
        })?;
    let path = tmp.path().join(STORE_FILE);
    copy_to(src, &path)?;
    std::fs::read(&path).map_err(|e| StoreError::Engine(format!("reading the backup {}: {e}", path.display())))
}

/// What [`restore`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreOutcome {
    /// The store now in place.
    pub store: PathBuf,
    /// Where the store that was there went (none when there was none).
    pub kept_aside: Option<PathBuf>,
}

/// Puts the store file `src` in place of the store in `data_dir`: the current store (if any)
/// is renamed to `meterd.redb.before-restore-<time>`, the copy gets the owner and mode of the
/// store it replaces (else of the data directory, mode 0600), and file and directory are
/// fsync'd. Refused while the store is open (the daemon holds its lock). The caller checks
/// `src` first (`store check`, `audit verify`).
pub fn restore(data_dir: &Path, src: &Path, now: Timestamp) -> Result<RestoreOutcome> {
    use std::io::Write as _;
    let target = data_dir.join(STORE_FILE);
    let shown = target.display().to_string();
    let io = |what: &str, e: std::io::Error| StoreError::Engine(format!("{what}: {e}"));
    std::fs::create_dir_all(data_dir).map_err(|e| io(&format!("creating {}", data_dir.display()), e))?;
    // Held until the copy is in place: no daemon or command opens the store meanwhile (redb
    // takes the same flock(2) lock).
    let current = match std::fs::File::open(&target) {
        Ok(f) => {
            match f.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => return Err(StoreError::Locked { path: shown }),
                Err(std::fs::TryLockError::Error(e)) => return Err(io(&format!("locking {shown}"), e)),
            }
            Some(f)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io(&format!("opening {shown}"), e)),
    };
    let (uid, gid, mode) = match &current {
        Some(f) => {
            let m = f.metadata().map_err(|e| io(&shown, e))?;
            (m.uid(), m.gid(), m.mode() & 0o7777)
        }
        None => {
            let m = std::fs::metadata(data_dir).map_err(|e| io(&data_dir.display().to_string(), e))?;
            (m.uid(), m.gid(), 0o600)
        }
    };
    let bytes = std::fs::read(src).map_err(|e| io(&src.display().to_string(), e))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".meterd-restore-")
        .tempfile_in(data_dir)
        .map_err(|e| io(&format!("cannot create a file in {}", data_dir.display()), e))?;
    tmp.write_all(&bytes).map_err(|e| io("writing the restored store", e))?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(|e| io("setting the restored store's mode", e))?;
    let m = tmp.as_file().metadata().map_err(|e| io("restored store", e))?;
    if (m.uid(), m.gid()) != (uid, gid) {
        nix::unistd::fchown(tmp.as_file(), Some(uid.into()), Some(gid.into())).map_err(|e| {
            StoreError::Engine(format!(
                "cannot give the restored store to uid {uid} gid {gid} (the owner of the store it replaces): {e}; run the restore as root or as that user"
            ))
        })?;
    }
    tmp.as_file()
        .sync_all()
        .map_err(|e| io("syncing the restored store", e))?;
    let kept_aside = match current {
        Some(_) => {
            let aside = data_dir.join(format!(
                "{STORE_FILE}.before-restore-{}",
                now.strftime("%Y%m%dT%H%M%SZ")
            ));
            if aside.exists() {
                return Err(StoreError::Engine(format!(
                    "{} exists already; not replacing it",
                    aside.display()
                )));
            }
            std::fs::rename(&target, &aside).map_err(|e| io(&format!("moving {shown} aside"), e))?;
            Some(aside)
        }
        None => None,
    };
    tmp.persist(&target)
        .map_err(|e| io(&format!("putting the restored store in place at {shown}"), e.error))?;
    std::fs::File::open(data_dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io(&format!("syncing {}", data_dir.display()), e))?;
    drop(current);
    Ok(RestoreOutcome {
        store: target,
        kept_aside,
    })
}
