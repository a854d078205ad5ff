//! A private PostgreSQL server for the benches: the Debian package's binaries, run as
//! `postgres` when the bench runs as root, in a temporary folder on a free loopback port, with
//! durable settings (fsync and synchronous_commit on, as in production); stopped on drop, after
//! printing the statements that took over 150 ms from the server's log.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A private PostgreSQL server for the bench.
pub struct Cluster {
    bin: PathBuf,
    pub dir: tempfile::TempDir,
    port: u16,
}

fn as_postgres(program: &Path) -> Command {
    if nix::unistd::geteuid().is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn run(c: &mut Command) -> String {
    let out = c.output().unwrap_or_else(|e| panic!("{c:?}: {e}"));
    assert!(out.status.success(), "{c:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Cluster {
    pub fn start() -> Cluster {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|d| d.flatten().map(|e| e.path().join("bin")).max())
            .expect("PostgreSQL server binaries in /usr/lib/postgresql (scripts/test installs them)");
        let dir = tempfile::Builder::new().prefix("meterd-bench-pg-").tempdir().unwrap();
        if nix::unistd::geteuid().is_root() {
            let pg = nix::unistd::User::from_name("postgres")
                .unwrap()
                .expect("user postgres");
            nix::unistd::chown(dir.path(), Some(pg.uid), Some(pg.gid)).unwrap();
        }
        let data = dir.path().join("data");
        run(as_postgres(&bin.join("initdb"))
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(&data));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // Durable as in production (fsync, synchronous_commit: the defaults), sized for the
        // machine: 2 cores, a few GiB for the server.
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c shared_buffers=1GB -c max_wal_size=8GB \
             -c checkpoint_timeout=30min -c wal_buffers=64MB -c maintenance_work_mem=512MB \
             -c log_min_duration_statement=150",
            dir.path().display()
        );
        run(as_postgres(&bin.join("pg_ctl"))
            .args(["-w", "-l"])
            .arg(dir.path().join("log"))
            .args(["-D"])
            .arg(&data)
            .args(["-o", &opts, "start"]));
        Cluster { bin, dir, port }
    }

    pub fn psql(&self, db: &str, sql: &str) -> String {
        run(Command::new(self.bin.join("psql"))
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
            .args(["-p", &self.port.to_string(), "-d", db, "-c", sql]))
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/{db}", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Statements over 150 ms, from the server's log: where the time went.
        if let Ok(log) = std::fs::read_to_string(self.dir.path().join("log")) {
            for line in log.lines().filter(|l| l.contains("duration:")) {
                println!("slow statement: {}", line.chars().take(300).collect::<String>());
            }
        }
        let _ = as_postgres(&self.bin.join("pg_ctl"))
            .args(["-m", "fast", "-D"])
            .arg(self.dir.path().join("data"))
            .arg("stop")
            .output();
    }
}
