//! Write transactions that run again when the engine aborts them.
//!
//! A server engine aborts a transaction on a serialisation failure or deadlock between meterd
//! instances, or when the connection is lost ([`StoreError::is_retryable`]); nothing of it was
//! written. [`write`] then runs the whole transaction again from the start: a fresh
//! transaction, the body again, the commit again. The body must therefore be repeatable: it
//! reads what it needs inside the transaction, keeps nothing from a failed attempt, and does
//! nothing upstream (acknowledge a message, clear a recorder, answer a request): that happens
//! after [`write`] returned, once the commit is durable.

use std::time::{Duration, Instant};

use super::{Store, StoreError, WriteTxn};

/// How long ingest keeps retrying before it gives up with the last error: long enough to ride
/// out a database failover (a standby is promoted within a minute or so), short enough that an
/// operator sees an outage in the logs and on the metrics well before a device's buffer fills.
/// Nothing is acknowledged meanwhile, so the source keeps its data and sends it again.
pub const INGEST_DEADLINE: Duration = Duration::from_secs(300);

/// How long a command or a request someone waits for (a clerk's action, a billing pull or
/// ack, a token change) keeps retrying: the person or client is answered within a minute, and
/// can try again.
pub const INTERACTIVE_DEADLINE: Duration = Duration::from_secs(30);

/// First pause before running a transaction again.
const FIRST_PAUSE: Duration = Duration::from_millis(20);
/// Longest pause between attempts.
const MAX_PAUSE: Duration = Duration::from_secs(2);

/// An error that may say "run the transaction again" ([`StoreError::is_retryable`]).
pub trait Retryable {
    fn is_retryable(&self) -> bool;
}

impl Retryable for StoreError {
    fn is_retryable(&self) -> bool {
        StoreError::is_retryable(self)
    }
}

impl Retryable for anyhow::Error {
    fn is_retryable(&self) -> bool {
        self.chain()
            .any(|e| e.downcast_ref::<StoreError>().is_some_and(StoreError::is_retryable))
    }
}

impl Retryable for crate::review::ReviewError {
    fn is_retryable(&self) -> bool {
        matches!(self, crate::review::ReviewError::Store(e) if e.is_retryable())
    }
}

impl Retryable for crate::billing::tokens::TokenError {
    fn is_retryable(&self) -> bool {
        matches!(self, crate::billing::tokens::TokenError::Store(e) if e.is_retryable())
    }
}

impl Retryable for crate::ingest::files::ImportError {
    fn is_retryable(&self) -> bool {
        matches!(self, crate::ingest::files::ImportError::Store(e) if e.is_retryable())
    }
}

/// [`write_within`] with the [`INGEST_DEADLINE`].
pub fn write<T, E>(store: &dyn Store, body: impl FnMut(&mut dyn WriteTxn) -> Result<T, E>) -> Result<T, E>
where
    E: From<StoreError> + Retryable + std::fmt::Display,
{
    write_within(store, INGEST_DEADLINE, body)
}

/// Begins a write transaction, runs `body` in it and commits; returns once the commit is
/// durable. When the begin, the body or the commit fails with a retryable error, everything
/// is run again from the start after a pause (20 ms doubling to 2 s, jittered so instances
/// that collided do not collide again), with a warning naming the attempt; after `deadline`
/// the last error is returned. Any other error is returned at once (the transaction is rolled
/// back).
pub fn write_within<T, E>(
    store: &dyn Store,
    deadline: Duration,
    mut body: impl FnMut(&mut dyn WriteTxn) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<StoreError> + Retryable + std::fmt::Display,
{
    write_or_undo(store, deadline, |txn| body(txn).map(Finish::Commit))
}

/// How a body of [`write_or_undo`] ends its transaction.
pub enum Finish<T> {
    /// Commit, then return the value.
    Commit(T),
    /// Roll everything back, then return the value (the body found nothing worth keeping).
    Undo(T),
}

/// [`write_within`] for a body that may decide to keep nothing ([`Finish::Undo`]).
pub fn write_or_undo<T, E>(
    store: &dyn Store,
    deadline: Duration,
    mut body: impl FnMut(&mut dyn WriteTxn) -> Result<Finish<T>, E>,
) -> Result<T, E>
where
    E: From<StoreError> + Retryable + std::fmt::Display,
{
    let started = Instant::now();
    let mut pause = FIRST_PAUSE;
    let mut attempt: u32 = 1;
    loop {
        let err = match attempt_once(store, &mut body) {
            Ok(v) => {
                if attempt > 1 {
                    tracing::info!(attempt, store = %store.describe(), "store transaction committed after retrying");
                }
                return Ok(v);
            }
            Err(e) if e.is_retryable() => e,
            Err(e) => return Err(e),
        };
        // Half the pause fixed, half random: spreads instances that collided.
        let half = pause / 2;
        let jitter = Duration::from_micros(rand::random_range(0..=half.as_micros().max(1) as u64));
        let wait = half + jitter;
        if started.elapsed() + wait > deadline {
            tracing::error!(
                attempt,
                store = %store.describe(),
                waited_s = started.elapsed().as_secs(),
                "store transaction aborted, giving up: {err}"
            );
            return Err(err);
        }
        tracing::warn!(
            attempt,
            store = %store.describe(),
            retry_in_ms = wait.as_millis() as u64,
            "store transaction aborted, running it again: {err}"
        );
        std::thread::sleep(wait);
        pause = (pause * 2).min(MAX_PAUSE);
        attempt += 1;
    }
}

fn attempt_once<T, E>(
    store: &dyn Store,
    body: &mut impl FnMut(&mut dyn WriteTxn) -> Result<Finish<T>, E>,
) -> Result<T, E>
where
    E: From<StoreError>,
{
    let mut txn = store.begin_write()?;
    match body(txn.as_mut())? {
        Finish::Commit(v) => {
            txn.commit()?;
            Ok(v)
        }
        // Dropping a write transaction rolls it back.
        Finish::Undo(v) => Ok(v),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::store::guard::CommitHook;
    use crate::store::{CheckReport, QuarantineLimits, ReadTxn, RedbStore};

    /// A real redb store whose next `fail_commits` commits fail with `fault` instead of
    /// committing (the transaction is rolled back, as a server engine's abort leaves it).
    struct Flaky {
        inner: RedbStore,
        fail_commits: AtomicU32,
        fault: Mutex<StoreError>,
        commits: AtomicU32,
    }

    impl Store for Flaky {
        fn begin_read(&self) -> crate::store::Result<Box<dyn ReadTxn + '_>> {
            self.inner.begin_read()
        }
        fn begin_write(&self) -> crate::store::Result<Box<dyn WriteTxn + '_>> {
            let inner = self.inner.begin_write()?;
            Ok(Box::new(CommitHook {
                inner,
                commit: Box::new(move |txn| {
                    self.commits.fetch_add(1, Ordering::SeqCst);
                    let failing = self
                        .fail_commits
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok();
                    if failing {
                        drop(txn);
                        Err(self.fault.lock().unwrap().clone())
                    } else {
                        txn.commit()
                    }
                }),
            }))
        }
        fn check(&self) -> crate::store::Result<CheckReport> {
            self.inner.check()
        }
        fn backup(&self) -> crate::store::Result<Vec<u8>> {
            self.inner.backup()
        }
        fn set_quarantine_limits(&self, limits: QuarantineLimits) {
            self.inner.set_quarantine_limits(limits)
        }
        fn describe(&self) -> String {
            format!("flaky {}", self.inner.describe())
        }
    }

    fn flaky(dir: &std::path::Path, fail_commits: u32, fault: StoreError) -> Flaky {
        Flaky {
            inner: RedbStore::open_dir(dir).unwrap(),
            fail_commits: AtomicU32::new(fail_commits),
            fault: Mutex::new(fault),
            commits: AtomicU32::new(0),
        }
    }

    /// A small write every attempt makes (a route given to a recorder).
    fn assign(txn: &mut dyn WriteTxn) -> crate::store::Result<()> {
        txn.assign_route("r-1", Some("hh-7"))
    }

    fn assigned(store: &dyn Store) -> usize {
        store.begin_read().unwrap().route_assignments().unwrap().len()
    }

    #[test]
    fn a_commit_aborted_three_times_is_run_again_until_it_commits_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = flaky(dir.path(), 3, StoreError::Retry("could not serialize access".into()));
        let mut runs = 0;
        let out: Result<u32, StoreError> = write_within(&store, Duration::from_secs(10), |txn| {
            runs += 1;
            // A fresh transaction every time: nothing of the failed attempts is there.
            assert!(
                txn.route_assignments()?.is_empty(),
                "attempt {runs} sees a failed attempt's write"
            );
            assign(txn)?;
            Ok(runs)
        });
        assert_eq!(out.unwrap(), 4, "the value of the attempt that committed");
        assert_eq!(runs, 4, "the body ran once per attempt (3 aborted + 1)");
        assert_eq!(store.commits.load(Ordering::SeqCst), 4);
        assert_eq!(assigned(&store), 1);
    }

    #[test]
    fn an_unavailable_store_is_retried_too() {
        let dir = tempfile::tempdir().unwrap();
        let fault = StoreError::Unavailable {
            host: "db1:5432".into(),
            detail: "connection refused".into(),
        };
        let store = flaky(dir.path(), 2, fault);
        let mut runs = 0;
        write_within(&store, Duration::from_secs(10), |txn| {
            runs += 1;
            assign(txn)
        })
        .unwrap();
        assert_eq!(runs, 3);
    }

    #[test]
    fn an_error_that_is_not_retryable_is_returned_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = flaky(dir.path(), 5, StoreError::Conflict("read 7 is in batch 3".into()));
        let mut runs = 0;
        let e = write_within(&store, Duration::from_secs(10), |txn| {
            runs += 1;
            assign(txn)
        })
        .unwrap_err();
        assert!(matches!(e, StoreError::Conflict(_)), "{e}");
        assert_eq!(runs, 1);
        assert_eq!(store.commits.load(Ordering::SeqCst), 1);
        assert_eq!(assigned(&store), 0);

        // From the body, too (through an error type that wraps the store's).
        let mut runs = 0;
        let e = write_within(&store, Duration::from_secs(10), |_txn| -> anyhow::Result<()> {
            runs += 1;
            anyhow::bail!("meter m-1: bad dials")
        })
        .unwrap_err();
        assert_eq!(e.to_string(), "meter m-1: bad dials");
        assert_eq!(runs, 1);
    }

    #[test]
    fn a_retryable_error_inside_the_body_is_retried_through_anyhow() {
        let dir = tempfile::tempdir().unwrap();
        let store = flaky(dir.path(), 0, StoreError::Retry(String::new()));
        let mut runs = 0;
        write_within(&store, Duration::from_secs(10), |txn| -> anyhow::Result<()> {
            runs += 1;
            assign(txn)?;
            if runs < 3 {
                return Err(anyhow::Error::new(StoreError::Retry("deadlock detected".into())).context("importing"));
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(runs, 3);
    }

    #[test]
    fn gives_up_after_the_deadline_with_the_last_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = flaky(dir.path(), u32::MAX, StoreError::Retry("still failing over".into()));
        let started = Instant::now();
        let mut runs = 0;
        let e = write_within(&store, Duration::from_millis(300), |txn| {
            runs += 1;
            assign(txn)
        })
        .unwrap_err();
        assert!(
            matches!(e, StoreError::Retry(ref m) if m == "still failing over"),
            "{e}"
        );
        assert!(runs >= 3, "retried before giving up ({runs} runs)");
        assert!(started.elapsed() <= Duration::from_millis(300) + Duration::from_millis(200));
        assert_eq!(assigned(&store), 0);
    }
}
