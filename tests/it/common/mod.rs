//! Helpers for the integration tests: run the real `meterd` binary on real files.

use std::path::PathBuf;
use std::process::{Command, Output};

/// A scratch directory with a data dir inside.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        Scratch {
            dir: tempfile::Builder::new().prefix("meterd-test-").tempdir().unwrap(),
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn file(&self, name: &str, contents: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, contents).unwrap();
        p
    }

    /// `meterd --data-dir DATA args...`
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_meterd"));
        c.arg("--data-dir")
            .arg(self.data_dir())
            .args(args)
            .current_dir(self.dir.path());
        c.env_remove("METERD_CONFIG").env_remove("METERD_DATA_DIR");
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Opens the scratch directory to other users: an unprivileged client must reach its
    /// config, its files and the control socket (a tempdir is 0700).
    pub fn share(&self) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(self.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// `meterd --data-dir DATA args...` as another user: `setpriv` with that uid and gid and
    /// no supplementary groups (the daemon looks the user's groups up in the user database).
    pub fn cmd_as(&self, (uid, gid): (u32, u32), args: &[&str]) -> Command {
        let mut c = Command::new("setpriv");
        c.arg(format!("--reuid={uid}"))
            .arg(format!("--regid={gid}"))
            .arg("--clear-groups")
            .arg("--")
            .arg(env!("CARGO_BIN_EXE_meterd"))
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(args)
            .current_dir(self.dir.path());
        c.env_remove("METERD_CONFIG").env_remove("METERD_DATA_DIR");
        c
    }

    pub fn run_as(&self, user: (u32, u32), args: &[&str]) -> Output {
        self.cmd_as(user, args).output().unwrap()
    }

    /// Run and require success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        succeeded(args, self.run(args))
    }

    /// Run and require failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        failed(args, self.run(args))
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        json_of(args, &self.ok(args))
    }

    /// Import meters from CSV lines (without the header); requires success.
    pub fn import_meters(&self, lines: impl IntoIterator<Item = String>) {
        let csv: String = std::iter::once(METERS_HEADER.to_owned()).chain(lines).collect();
        self.ok(&["meters", "import", self.file("meters.csv", &csv).to_str().unwrap()]);
    }
}

/// The stdout of a `meterd args` run that must have succeeded (the test fails with its stderr).
pub fn succeeded(args: &[&str], out: Output) -> String {
    assert!(
        out.status.success(),
        "meterd {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The stderr of a `meterd args` run that must have failed (the test fails with its stdout).
pub fn failed(args: &[&str], out: Output) -> String {
    assert!(
        !out.status.success(),
        "meterd {args:?} should have failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr).unwrap()
}

/// What `meterd args` printed, as JSON.
pub fn json_of(args: &[&str], stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("meterd {args:?} printed no JSON ({e}): {stdout}"))
}

/// `nobody`: outside every role of the default `[access]`; the tests' unprivileged clerk or
/// supervisor when a config lists it.
pub const NOBODY: (u32, u32) = (65534, 65534);

/// stdout and stderr of a run, as text.
pub fn texts(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A loopback port free a moment ago (for a daemon's `[http] listen`).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub const METERS_HEADER: &str =
    "meter_id,account,route,sequence,service,unit,dials,decimals,multiplier,status,address\n";

/// A meters CSV line.
pub fn meter_line(id: &str, service: &str, dials: u8, status: &str) -> String {
    format!("{id},ACC-{id},R1,10,{service},gal,{dials},0,1,{status},1 Main St\n")
}

pub mod daemon;
pub mod mosquitto;
pub mod mqtt;
pub mod pg;
pub mod pg_pair;
pub mod tmux;
