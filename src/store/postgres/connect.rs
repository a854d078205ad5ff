//! Connecting: the pool of connections to the server, TLS through rustls, the password from
//! its file, the server's version checked and the schema migrated; and the bridge that lets the
//! synchronous store traits run the driver's futures.
//!
//! The store traits are synchronous and are called from plain threads and from tokio worker
//! threads alike. The engine therefore owns its own small runtime (threads named `meterd-pg`)
//! and [`Bridge::run`] spawns a future there and waits for its answer on a std channel:
//! `Runtime::block_on` and tokio's `blocking_recv` panic when called inside a runtime.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio_postgres::config::Host;
use tokio_postgres::error::SqlState;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::config::{SslMode, StoreConfig};
use super::migrate::{self, Migrated};
use super::partitions::Partitions;
use crate::store::StoreError;

/// Oldest PostgreSQL meterd supports (`server_version_num`): 13 has what the schema and the
/// engine use (declarative partitions with their indexes, `INCLUDE` indexes).
pub const MIN_SERVER_VERSION: i32 = 130_000;

/// Worker threads of the engine's runtime: the driver's work is I/O; the server does the rest.
const WORKER_THREADS: usize = 2;

/// Runs futures on the engine's own runtime for synchronous callers.
pub struct Bridge {
    runtime: Option<tokio::runtime::Runtime>,
}

impl Bridge {
    /// A runtime of a few worker threads named `meterd-pg`.
    pub fn new() -> Result<Bridge, StoreError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKER_THREADS)
            .thread_name("meterd-pg")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Engine(format!("starting the PostgreSQL runtime: {e}")))?;
        Ok(Bridge { runtime: Some(runtime) })
    }

    /// Runs `fut` on the engine's runtime and waits for its result. Safe from any thread,
    /// a tokio worker included (it blocks that thread meanwhile), except one of the engine's
    /// own (`meterd-pg`), which would wait on itself.
    pub fn run<T, F>(&self, fut: F) -> Result<T, StoreError>
    where
        F: Future<Output = Result<T, StoreError>> + Send + 'static,
        T: Send + 'static,
    {
        let runtime = self
            .runtime
            .as_ref()
            .ok_or_else(|| StoreError::Engine("the PostgreSQL runtime is shut down".into()))?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        runtime.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv().unwrap_or_else(|_| {
            Err(StoreError::Engine(
                "a PostgreSQL task ended without an answer (it failed, or the engine is shutting down)".into(),
            ))
        })
    }

    /// The runtime's handle (to build things that must be created inside it).
    pub fn handle(&self) -> Option<&tokio::runtime::Handle> {
        self.runtime.as_ref().map(|r| r.handle())
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which panics on a tokio thread: the engine may well be
        // dropped on one. Pending work ends with the connections.
        if let Some(r) = self.runtime.take() {
            r.shutdown_background();
        }
    }
}

/// A connected PostgreSQL store: its pool, its runtime, and what names it in messages. The
/// engine of the store traits builds on it.
pub struct PgEngine {
    pool: Pool,
    partitions: Arc<Partitions>,
    target: Arc<str>,
    hosts: Arc<str>,
    migrated: Migrated,
    // Last: dropped after the pool, whose connections' tasks run on it.
    bridge: Bridge,
}

impl std::fmt::Debug for PgEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgEngine")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl PgEngine {
    /// Connects as `config` says (`METERD_STORE_URL` already applied by the caller, see
    /// [`StoreConfig::with_env`]), checks the server's version and brings the schema to
    /// [`migrate::SCHEMA_VERSION`]. Errors are short and name the host(s) and the reason.
    pub fn connect(config: &StoreConfig) -> Result<PgEngine, StoreError> {
        let opened = Opened::new(config)?;
        let migrated = {
            let (pool, target, hosts, user, dbname) = opened.owned();
            opened.bridge.run(async move {
                let mut client = pool.get().await.map_err(|e| pool_error(&hosts, &user, &dbname, &e))?;
                check_version(&client, &hosts).await?;
                migrate::migrate(&mut client, &target).await
            })?
        };
        Ok(PgEngine {
            pool: opened.pool,
            partitions: Arc::new(Partitions::new()),
            target: opened.target,
            hosts: opened.hosts.into(),
            migrated,
            bridge: opened.bridge,
        })
    }

    /// Connects once and reports the server and the schema without changing anything
    /// (`meterd check-config`); a schema newer than this build's is the same error as at start.
    pub fn probe(config: &StoreConfig) -> Result<Probe, StoreError> {
        let opened = Opened::new(config)?;
        let (pool, target, hosts, user, dbname) = opened.owned();
        opened.bridge.run(async move {
            let client = pool.get().await.map_err(|e| pool_error(&hosts, &user, &dbname, &e))?;
            let server_version = check_version(&client, &hosts).await?;
            let row = client
                .query_one("SELECT to_regclass('meterd_schema') IS NOT NULL", &[])
                .await
                .map_err(|e| query_error(&target, "looking for meterd_schema", &e))?;
            let schema_version = if row.get::<_, bool>(0) {
                let v: i64 = client
                    .query_one("SELECT coalesce(max(version), 0) FROM meterd_schema", &[])
                    .await
                    .map_err(|e| query_error(&target, "reading meterd_schema", &e))?
                    .get(0);
                u64::try_from(v).unwrap_or(0)
            } else {
                0
            };
            if schema_version > migrate::SCHEMA_VERSION {
                return Err(StoreError::SchemaVersion {
                    path: target.to_string(),
                    found: schema_version,
                    supported: migrate::SCHEMA_VERSION,
                });
            }
            Ok(Probe {
                target: target.to_string(),
                server_version,
                schema_version,
            })
        })
    }

    /// The connection pool (cheap to clone into a future for [`Bridge::run`]).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    pub fn bridge(&self) -> &Bridge {
        &self.bridge
    }

    /// The month partitions this process created or found.
    pub fn partitions(&self) -> &Arc<Partitions> {
        &self.partitions
    }

    /// `database meterd on db1:5432, db2:5432`: how messages name the store.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// `db1:5432, db2:5432`.
    pub fn hosts(&self) -> &str {
        &self.hosts
    }

    /// The schema version found when connecting, and the version now.
    pub fn migrated(&self) -> Migrated {
        self.migrated
    }

    /// Runs `f` with a pooled connection on the engine's runtime and waits for its result.
    pub fn with_client<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(deadpool_postgres::Client) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, StoreError>> + Send,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        let hosts = self.hosts.clone();
        self.bridge.run(async move {
            let client = pool.get().await.map_err(|e| pool_error(&hosts, "", "", &e))?;
            f(client).await
        })
    }

    /// The schema version recorded in the database now.
    pub fn schema_version(&self) -> Result<u64, StoreError> {
        let target = self.target.clone();
        self.with_client(move |client| async move {
            let v: i64 = client
                .query_one("SELECT coalesce(max(version), 0) FROM meterd_schema", &[])
                .await
                .map_err(|e| query_error(&target, "reading meterd_schema", &e))?
                .get(0);
            Ok(u64::try_from(v).unwrap_or(0))
        })
    }
}

/// What [`PgEngine::probe`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// `database meterd on db1:5432`.
    pub target: String,
    /// The server's `server_version` (`15.18 (Debian 15.18-0+deb12u1)`).
    pub server_version: String,
    /// The schema version recorded (0: an empty database, created at start).
    pub schema_version: u64,
}

/// A pool and its runtime, not connected yet; what connect and probe share.
struct Opened {
    pool: Pool,
    bridge: Bridge,
    target: Arc<str>,
    hosts: String,
    user: String,
    dbname: String,
}

impl Opened {
    fn new(config: &StoreConfig) -> Result<Opened, StoreError> {
        let mut pg = config.pg_config().map_err(StoreError::Engine)?;
        let hosts = hosts_of(&pg);
        let user = pg.get_user().unwrap_or_default().to_owned();
        let dbname = pg.get_dbname().unwrap_or_default().to_owned();
        let target: Arc<str> = format!("database {dbname} on {hosts}").into();
        let unavailable = |detail: String| StoreError::Unavailable {
            host: hosts.clone(),
            detail,
        };
        if let Some(file) = &config.password_file {
            let text =
                crate::secrets::read_private(file).map_err(|e| unavailable(format!("store.password_file: {e:#}")))?;
            pg.password(text.trim_end_matches(['\r', '\n']));
        }
        let tls = tls_connector(config).map_err(unavailable)?;
        let bridge = Bridge::new()?;
        let manager = Manager::from_config(
            pg,
            tls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        // Every host may take the whole connect timeout before the next is tried.
        let hosts_n = hosts.split(", ").count() as u64;
        let create = Duration::from_secs(config.connect_timeout_secs * hosts_n.max(1) + 1);
        let pool = {
            let _in_runtime = bridge.handle().map(|h| h.enter());
            Pool::builder(manager)
                .max_size(config.pool_size)
                .runtime(deadpool_postgres::Runtime::Tokio1)
                .create_timeout(Some(create))
                .wait_timeout(Some(create))
                .build()
                .map_err(|e| StoreError::Engine(format!("PostgreSQL pool: {e}")))?
        };
        Ok(Opened {
            pool,
            bridge,
            target,
            hosts,
            user,
            dbname,
        })
    }

    /// Clones to move into a future.
    fn owned(&self) -> (Pool, Arc<str>, String, String, String) {
        (
            self.pool.clone(),
            self.target.clone(),
            self.hosts.clone(),
            self.user.clone(),
            self.dbname.clone(),
        )
    }
}

/// Refuses a server older than [`MIN_SERVER_VERSION`], naming its version; returns it.
async fn check_version(client: &tokio_postgres::Client, hosts: &str) -> Result<String, StoreError> {
    let row = client
        .query_one(
            "SELECT current_setting('server_version_num'), current_setting('server_version')",
            &[],
        )
        .await
        .map_err(|e| StoreError::Unavailable {
            host: hosts.to_owned(),
            detail: format!("reading the server version: {}", error_text(&e)),
        })?;
    let num: String = row.get(0);
    let shown: String = row.get(1);
    if supported(&num) {
        Ok(shown)
    } else {
        Err(StoreError::Unavailable {
            host: hosts.to_owned(),
            detail: format!(
                "server version {shown} is older than PostgreSQL {}, the oldest meterd supports",
                MIN_SERVER_VERSION / 10_000
            ),
        })
    }
}

/// Whether a `server_version_num` is one meterd supports.
fn supported(server_version_num: &str) -> bool {
    server_version_num
        .trim()
        .parse::<i32>()
        .is_ok_and(|n| n >= MIN_SERVER_VERSION)
}

/// `db1:5432, db2:5432` (Unix sockets as their path).
fn hosts_of(pg: &tokio_postgres::Config) -> String {
    let ports = pg.get_ports();
    pg.get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let port = match ports {
                [] => 5432,
                [one] => *one,
                many => many.get(i).copied().unwrap_or(5432),
            };
            match h {
                Host::Tcp(name) if name.contains(':') => format!("[{name}]:{port}"),
                Host::Tcp(name) => format!("{name}:{port}"),
                Host::Unix(dir) => format!("{}/.s.PGSQL.{port}", dir.display()),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The rustls connector for `sslmode`: verify-full checks the certificate against `ca_file`
/// (else the system's roots) and the host name; require checks nothing (libpq's meaning).
fn tls_connector(config: &StoreConfig) -> Result<MakeRustlsConnect, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let client = match config.sslmode {
        SslMode::Require => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth(),
        SslMode::Disable => builder
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
        SslMode::VerifyFull => {
            let roots = crate::tls_roots::roots(config.ca_file.as_deref(), "store.ca_file", "sslmode verify-full")?;
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    Ok(MakeRustlsConnect::new(client))
}

/// sslmode `require`: encryption without authentication of the server. The handshake's
/// signatures are still checked (with the certificate's key), only the certificate is not.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The driver's error with its causes, on one line (its own text is only the outer layer:
/// "db error", "error connecting to server").
pub fn error_text(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} ({})", db.message(), db.code().code());
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Why a connection could not be made, in the operator's words.
fn connect_reason(e: &tokio_postgres::Error, user: &str, dbname: &str) -> String {
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        return if *code == SqlState::INVALID_PASSWORD {
            format!("password refused for user {user} (store.password_file)")
        } else if *code == SqlState::INVALID_CATALOG_NAME {
            format!("database {dbname} does not exist (create it: createdb -O {user} {dbname})")
        } else if *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION {
            format!("user {user} refused: {}", db.message())
        } else if *code == SqlState::TOO_MANY_CONNECTIONS {
            format!("server has no connection left: {}", db.message())
        } else {
            format!("{} ({})", db.message(), code.code())
        };
    }
    let text = error_text(e);
    let io = std::iter::successors(std::error::Error::source(e), |s| s.source())
        .find_map(|s| s.downcast_ref::<std::io::Error>());
    if let Some(io) = io {
        match io.kind() {
            std::io::ErrorKind::ConnectionRefused => {
                return "connection refused (nothing listens there: is PostgreSQL running, on that port?)".into();
            }
            std::io::ErrorKind::TimedOut => return "no answer (timed out)".into(),
            _ => {}
        }
    }
    if text.starts_with("error performing TLS handshake") {
        if text.contains("does not support TLS") {
            return "the server offers no TLS; enable ssl on the server, or set store.sslmode = \"disable\" on a trusted network".into();
        }
        if text.contains("certificate") || text.contains("Certificate") {
            return format!(
                "TLS certificate verification failed ({}); store.ca_file must name the CA that signed the server's certificate, for the host name in store.url",
                text.trim_start_matches("error performing TLS handshake: ")
            );
        }
        return format!("TLS: {}", text.trim_start_matches("error performing TLS handshake: "));
    }
    if text.starts_with("timeout waiting for server") {
        return "no answer within store.connect_timeout_secs".into();
    }
    if text.contains("failed to lookup address") {
        return "host name not found (DNS)".into();
    }
    if text.contains("password missing") {
        return format!("the server asks a password for user {user}: set store.password_file");
    }
    text
}

/// A failure to get a pooled connection.
fn pool_error(hosts: &str, user: &str, dbname: &str, e: &PoolError) -> StoreError {
    let detail = match e {
        PoolError::Backend(e) => connect_reason(e, user, dbname),
        PoolError::Timeout(_) => "no connection within store.connect_timeout_secs".into(),
        other => other.to_string(),
    };
    StoreError::Unavailable {
        host: hosts.to_owned(),
        detail,
    }
}

/// A failed statement: a lost connection is [`StoreError::Unavailable`] (retry when it is
/// back), a serialization failure or deadlock a [`StoreError::Retry`] (retry the
/// transaction), anything else an engine error naming what was being done.
pub fn query_error(target: &str, doing: &str, e: &tokio_postgres::Error) -> StoreError {
    if let Some(code) = e.code()
        && (*code == SqlState::T_R_SERIALIZATION_FAILURE || *code == SqlState::T_R_DEADLOCK_DETECTED)
    {
        return StoreError::Retry(format!("{target}: {doing}: {}", error_text(e)));
    }
    // Class 08 (connection exception), class 57 (the server shutting down, crashed, starting:
    // a primary going away in a failover) and 25006 (a read-only transaction: the server is a
    // standby now) mean the transaction is gone with its server (57014, a cancelled statement,
    // is not one of them); it runs again on the next
    // connection, which the multi-host URL takes to the new primary.
    let server_gone = e.code().is_some_and(|c| {
        let code = c.code();
        code.starts_with("08") || (code.starts_with("57") && code != "57014") || code == "25006"
    });
    if server_gone || e.is_closed() || (e.as_db_error().is_none() && error_text(e).starts_with("error communicating")) {
        return StoreError::Unavailable {
            host: target.to_owned(),
            detail: format!("connection lost while {doing}: {}", error_text(e)),
        };
    }
    StoreError::Engine(format!("{target}: {doing}: {}", error_text(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_before_13_are_not_supported() {
        assert!(supported("130000") && supported("150018") && supported(" 170002\n"));
        assert!(!supported("120017") && !supported("90624") && !supported("") && !supported("x"));
    }

    #[test]
    fn the_bridge_answers_on_plain_and_tokio_threads() {
        let bridge = Bridge::new().unwrap();
        assert_eq!(bridge.run(async { Ok(7) }).unwrap(), 7);
        // From inside another runtime (a tokio worker calling the sync store): no panic.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let answer = rt.block_on(async move {
            tokio::spawn(async move {
                let r = bridge.run(async { Ok::<_, StoreError>("from pg") });
                // Dropped on a tokio thread: no panic either.
                drop(bridge);
                r
            })
            .await
            .unwrap()
        });
        assert_eq!(answer.unwrap(), "from pg");
    }
}
