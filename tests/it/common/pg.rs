//! The tests' private PostgreSQL: one cluster per test-binary run, started by the first test
//! that asks ([`database`]), in a temporary folder, on a free loopback port, fast settings
//! (`fsync = off`: acceptable for a throwaway test cluster only), TLS on with a self-signed
//! certificate for `localhost` ([`ca_file`]).
//!
//! PostgreSQL refuses to run as root: as root, initdb and the server run as `postgres`, and the
//! folder is theirs. The server runs under a small `sh` supervisor that reads its stdin, a pipe
//! from this process: when the test process ends, however it ends (a panic, SIGKILL), the pipe
//! closes, and the supervisor stops the server and removes its folder. (PR_SET_PDEATHSIG would
//! fire when the *thread* that started it ends, a test thread here.)

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The role with a password (pg_hba: scram-sha-256 for it, trust for the others).
pub const PASSWORD_ROLE: &str = "meterd";
pub const PASSWORD: &str = "correct horse battery staple";

struct Cluster {
    bin: PathBuf,
    port: u16,
    /// The server's self-signed certificate (for `localhost` only), the CA of `ca_file`.
    ca_file: PathBuf,
    /// The supervisor; its stdin is the pipe whose end stops the server.
    _supervisor: Child,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();

/// The port of the shared cluster (started if need be).
pub fn port() -> u16 {
    cluster().port
}

/// The PEM certificate the server presents for `localhost` (self-signed: its own CA).
pub fn ca_file() -> PathBuf {
    cluster().ca_file.clone()
}

/// A fresh empty database on the shared cluster; its URL, as the superuser `postgres` (trust on
/// loopback, so no password).
pub fn database() -> String {
    let name = format!("t{}_{}", std::process::id(), NEXT_DB.fetch_add(1, Ordering::Relaxed));
    psql("postgres", &format!("CREATE DATABASE {name}"));
    format!("postgresql://postgres@127.0.0.1:{}/{name}", port())
}

/// A fresh database holding meterd's current schema and the month partitions of 2025
/// for reads and interval reads: a copy of a template made once per test run (migrating and
/// partitioning each test's database would cost more than most tests).
pub fn store_database() -> String {
    static TEMPLATE: OnceLock<String> = OnceLock::new();
    let template = TEMPLATE.get_or_init(|| {
        let url = database();
        let store = meterd::store::postgres::PgStore::open(&meterd::store::postgres::StoreConfig {
            url: Some(url.clone()),
            sslmode: meterd::store::postgres::SslMode::Disable,
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("template store: {e}"));
        let months: Vec<jiff::Timestamp> = (2025..=2025)
            .flat_map(|y| (1..=12).map(move |m| jiff::civil::date(y, m, 1)))
            .map(|d| d.to_zoned(jiff::tz::TimeZone::UTC).unwrap().timestamp())
            .collect();
        for table in [
            meterd::store::postgres::Partitioned::Reads,
            meterd::store::postgres::Partitioned::IntervalReads,
        ] {
            store.prepare_months_of(table, months.iter().copied()).unwrap();
        }
        drop(store);
        dbname(&url).to_owned()
    });
    let name = format!("t{}_{}", std::process::id(), NEXT_DB.fetch_add(1, Ordering::Relaxed));
    // The template's own connections may still be closing.
    psql(
        "postgres",
        &format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{template}'"),
    );
    psql("postgres", &format!("CREATE DATABASE {name} TEMPLATE {template}"));
    format!("postgresql://postgres@127.0.0.1:{}/{name}", port())
}

static NEXT_DB: AtomicU32 = AtomicU32::new(1);

/// The database name of a [`database`] URL.
pub fn dbname(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or_default()
}

/// Runs SQL in `db` as `postgres` with psql; returns its unaligned output (`-At`). Panics with
/// psql's error when it fails.
pub fn psql(db: &str, sql: &str) -> String {
    try_psql(db, sql).unwrap_or_else(|e| panic!("psql {sql:?} failed: {e}"))
}

/// [`psql`], its error text when it fails.
pub fn try_psql(db: &str, sql: &str) -> Result<String, String> {
    let c = cluster();
    psql_at(&c.bin, c.port, db, sql)
}

/// Runs SQL with psql as `postgres` in `db` of the server on loopback `port`; its unaligned,
/// trimmed output, or its error text.
pub fn psql_at(bin: &Path, port: u16, db: &str, sql: &str) -> Result<String, String> {
    let out = Command::new(bin.join("psql"))
        .args([
            "-X",
            "-At",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
        ])
        .args(["-p", &port.to_string(), "-d", db, "-c", sql])
        .output()
        .expect("running psql");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// A temporary folder for a server, kept until its supervisor removes it, owned by
/// `postgres` when we are root.
pub fn server_folder(prefix: &str) -> PathBuf {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("a temporary folder for PostgreSQL")
        .keep();
    if nix::unistd::geteuid().is_root() {
        let pg = nix::unistd::User::from_name("postgres")
            .ok()
            .flatten()
            .expect("user postgres (created by the postgresql package) for running the test server as root");
        nix::unistd::chown(&dir, Some(pg.uid), Some(pg.gid)).expect("giving the test server's folder to postgres");
    }
    dir
}

/// Starts `postgres -D data -c setting…` (as `postgres` when we are root) under a `sh`
/// supervisor named `name` that reads its stdin: when that pipe closes (this process ended,
/// however it ended), it stops the server (immediate shutdown: a throwaway) and removes
/// `dir`. The server's output goes to `dir/server.log`.
pub fn supervise(name: &str, bin: &Path, dir: &Path, data: &Path, settings: &[String]) -> Child {
    // setpriv executes the server in its place (runuser would stay between, as its parent),
    // so the supervisor's signal reaches the server itself.
    let mut argv: Vec<String> = Vec::new();
    if nix::unistd::geteuid().is_root() {
        argv.extend(["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"].map(str::to_owned));
    }
    argv.push(bin.join("postgres").to_string_lossy().into_owned());
    argv.extend(["-D".to_owned(), data.to_string_lossy().into_owned()]);
    for setting in settings {
        argv.extend(["-c".to_owned(), setting.clone()]);
    }
    // $1: folder, $2...: the server's command.
    let script = r#"dir=$1; shift
"$@" >"$dir/server.log" 2>&1 &
pg=$!
cat >/dev/null
kill -QUIT "$pg" 2>/dev/null
wait "$pg"
# The server's last children may still be writing as it exits: try again once.
rm -rf "$dir" 2>/dev/null || { sleep 1; rm -rf "$dir"; }"#;
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(name)
        .arg(dir)
        .args(&argv)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting a PostgreSQL supervisor")
}

fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(start)
}

/// Where initdb, postgres and psql are: `pg_config --bindir`, else the newest
/// /usr/lib/postgresql/N/bin.
pub fn bindir() -> PathBuf {
    let has_server = |d: &Path| d.join("initdb").is_file() && d.join("postgres").is_file();
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && has_server(&dir) {
            return dir;
        }
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            has_server(&bin).then_some((v, bin))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL is not installed (no initdb/postgres from pg_config --bindir or in /usr/lib/postgresql/*/bin): \
             run scripts/test (it installs it) or apt-get install postgresql"
        ),
    }
}

/// `cmd args` as `postgres` when we are root (runuser), else as ourselves.
pub fn as_server_user(program: &Path) -> Command {
    if nix::unistd::geteuid().is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn start() -> Cluster {
    let bin = bindir();
    let dir = server_folder("meterd-pg-");
    let data = dir.join("data");
    let init = as_server_user(&bin.join("initdb"))
        .arg("-D")
        .arg(&data)
        .args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ])
        .output()
        .expect("running initdb");
    assert!(
        init.status.success(),
        "initdb failed: {}{}",
        String::from_utf8_lossy(&init.stdout),
        String::from_utf8_lossy(&init.stderr)
    );
    // The password role needs a password on loopback; everyone else is trusted there.
    let hba = format!("host all {PASSWORD_ROLE} 127.0.0.1/32 scram-sha-256\nhost all all 127.0.0.1/32 trust\n");
    let hba_file = data.join("pg_hba.conf");
    // Written by root when we are root: keep it readable by postgres.
    std::fs::write(&hba_file, hba).expect("writing pg_hba.conf");
    // TLS with a certificate for `localhost` only, so that a connection to 127.0.0.1 shows
    // verify-full checking the host name.
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("a test certificate");
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, cert.cert.pem()).expect("writing ca.pem");
    std::fs::write(data.join("server.crt"), cert.cert.pem()).expect("writing server.crt");
    std::fs::write(data.join("server.key"), cert.signing_key.serialize_pem()).expect("writing server.key");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(data.join("server.key"), std::fs::Permissions::from_mode(0o600))
            .expect("chmod server.key");
    }
    if nix::unistd::geteuid().is_root()
        && let Ok(Some(pg)) = nix::unistd::User::from_name("postgres")
    {
        for f in ["pg_hba.conf", "server.crt", "server.key"] {
            nix::unistd::chown(&data.join(f), Some(pg.uid), Some(pg.gid)).expect("chown to postgres");
        }
    }

    let port = super::free_port();
    let settings = [
        "listen_addresses=127.0.0.1".to_owned(),
        format!("port={port}"),
        "unix_socket_directories=".to_owned(),
        "fsync=off".to_owned(),
        "synchronous_commit=off".to_owned(),
        "full_page_writes=off".to_owned(),
        "max_connections=300".to_owned(),
        "password_encryption=scram-sha-256".to_owned(),
        "ssl=on".to_owned(),
    ];
    let supervisor = supervise("meterd-test-pg", &bin, &dir, &data, &settings);
    let cluster = Cluster {
        bin,
        port,
        ca_file,
        _supervisor: supervisor,
    };
    wait_ready(&cluster.bin, cluster.port, &dir);
    psql_at(
        &cluster.bin,
        cluster.port,
        "postgres",
        &format!("CREATE ROLE {PASSWORD_ROLE} LOGIN PASSWORD '{PASSWORD}'"),
    )
    .unwrap_or_else(|e| panic!("creating the password role: {e}"));
    cluster
}

/// Waits until the server on `port` answers (60 s at most; then its log is the panic).
pub fn wait_ready(bin: &Path, port: u16, dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ok = Command::new(bin.join("pg_isready"))
            .args(["-q", "-h", "127.0.0.1", "-U", "postgres"])
            .arg("-p")
            .arg(port.to_string())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return;
        }
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
            panic!("the test PostgreSQL did not start on port {port} within 60 s:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
