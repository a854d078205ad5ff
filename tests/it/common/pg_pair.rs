//! A PostgreSQL primary with a synchronous streaming standby, for the failover test: the
//! setup docs/postgresql.md describes, without Patroni (the test plays its part: it kills the
//! primary and promotes the standby with `pg_ctl promote`).
//!
//! Each server runs under the same kind of supervisor as the shared test cluster
//! ([`super::pg`]): when the test process ends, however it ends, both stop and their folders go.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use super::pg::{as_server_user, bindir, psql_at, server_folder, supervise, wait_ready};

/// One server of the pair.
pub struct Server {
    pub port: u16,
    pub data: PathBuf,
    _supervisor: Child,
}

/// A primary and its synchronous standby (`synchronous_standby_names = 'standby1'`): a commit
/// returns once the standby has the WAL.
pub struct Pair {
    bin: PathBuf,
    pub primary: Server,
    pub standby: Server,
}

fn ok(c: &mut Command) {
    let out = c.output().unwrap_or_else(|e| panic!("{c:?}: {e}"));
    assert!(
        out.status.success(),
        "{c:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts `postgres -D data` with `settings` under the test cluster's supervisor
/// ([`supervise`]): stopped and removed when this process ends.
fn serve(bin: &Path, dir: PathBuf, data: PathBuf, port: u16, settings: &[&str]) -> Server {
    let settings: Vec<String> = [
        "listen_addresses=127.0.0.1".to_owned(),
        format!("port={port}"),
        "unix_socket_directories=".to_owned(),
        "max_connections=200".to_owned(),
    ]
    .into_iter()
    .chain(settings.iter().map(|s| (*s).to_owned()))
    .collect();
    let supervisor = supervise("meterd-test-pg-pair", bin, &dir, &data, &settings);
    wait_ready(bin, port, &dir);
    Server {
        port,
        data,
        _supervisor: supervisor,
    }
}

impl Pair {
    /// A primary, a base backup of it started as a synchronous standby, and a database `db`.
    pub fn start(db: &str) -> Pair {
        let bin = bindir();
        let (pdir, sdir) = (server_folder("meterd-pg-pair-"), server_folder("meterd-pg-pair-"));
        let pdata = pdir.join("data");
        ok(as_server_user(&bin.join("initdb")).arg("-D").arg(&pdata).args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ]));
        let hba = "host all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n";
        std::fs::write(pdata.join("pg_hba.conf"), hba).expect("pg_hba.conf");
        if nix::unistd::geteuid().is_root() {
            let pg = nix::unistd::User::from_name("postgres")
                .ok()
                .flatten()
                .expect("user postgres");
            nix::unistd::chown(&pdata.join("pg_hba.conf"), Some(pg.uid), Some(pg.gid)).expect("chown");
        }
        let (pport, sport) = (super::free_port(), super::free_port());
        // Durable and synchronous, as production: fsync on, and a commit waits for the
        // standby's flush (remote_apply would also wait for replay).
        let primary = serve(
            &bin,
            pdir,
            pdata,
            pport,
            &[
                "wal_level=replica",
                "max_wal_senders=5",
                "synchronous_standby_names=standby1",
                "synchronous_commit=on",
            ],
        );
        let sdata = sdir.join("data");
        ok(as_server_user(&bin.join("pg_basebackup"))
            .args(["-D"])
            .arg(&sdata)
            .args(["-R", "-X", "stream", "--no-sync", "-d"])
            .arg(format!(
                "host=127.0.0.1 port={pport} user=postgres application_name=standby1"
            )));
        let conninfo = format!("primary_conninfo=host=127.0.0.1 port={pport} user=postgres application_name=standby1");
        let standby = serve(&bin, sdir, sdata, sport, &["hot_standby=on", &conninfo]);
        let pair = Pair { bin, primary, standby };
        pair.wait(|p| {
            p.psql(p.primary.port, "postgres", "SELECT sync_state FROM pg_stat_replication")
                .trim()
                == "sync"
        });
        pair.psql(pair.primary.port, "postgres", &format!("CREATE DATABASE {db}"));
        pair
    }

    /// `postgresql://postgres@primary,standby/db?target_session_attrs=read-write`: meterd
    /// finds whichever takes writes.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgresql://postgres@127.0.0.1:{},127.0.0.1:{}/{db}?target_session_attrs=read-write",
            self.primary.port, self.standby.port
        )
    }

    pub fn psql(&self, port: u16, db: &str, sql: &str) -> String {
        psql_at(&self.bin, port, db, sql).unwrap_or_else(|e| panic!("psql {sql:?}: {e}"))
    }

    fn wait(&self, mut cond: impl FnMut(&Pair) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !cond(self) {
            assert!(Instant::now() < deadline, "the standby did not become synchronous");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The primary's machine dies: its postmaster gets SIGKILL (no shutdown, no last WAL).
    pub fn kill_primary(&self) {
        let pid = std::fs::read_to_string(self.primary.data.join("postmaster.pid"))
            .expect("postmaster.pid")
            .lines()
            .next()
            .and_then(|l| l.trim().parse::<i32>().ok())
            .expect("the primary's pid");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL)
            .expect("killing the primary");
    }

    /// The standby becomes the primary (what Patroni does on failover).
    pub fn promote_standby(&self) {
        ok(as_server_user(&self.bin.join("pg_ctl"))
            .args(["promote", "-w", "-D"])
            .arg(&self.standby.data));
    }
}
