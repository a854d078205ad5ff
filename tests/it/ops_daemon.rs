//! The real `meterd run` as systemd runs it: sd_notify messages on a real notify socket,
//! SIGTERM, SIGHUP reloads (valid and invalid) and `meterd reload`, and the CLI's store
//! commands run by the daemon over its control socket while it holds the store.

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::common::{METERS_HEADER, Scratch, meter_line};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Upper bound for waits, so a broken daemon fails the test instead of hanging it (not a
/// speed assertion: a loaded machine is far below it).
const PATIENCE: Duration = Duration::from_secs(60);

struct Daemon {
    child: Child,
    notify: UnixDatagram,
    log: mpsc::Receiver<String>,
    seen: Vec<String>,
    _notify_dir: tempfile::TempDir,
}

impl Daemon {
    /// `meterd --config CONFIG run` with `$NOTIFY_SOCKET` and a short watchdog; returns once
    /// it sent READY=1.
    fn start(s: &Scratch, config: &Path) -> Daemon {
        let notify_dir = tempfile::tempdir().unwrap();
        let path = notify_dir.path().join("notify");
        let notify = UnixDatagram::bind(&path).unwrap();
        notify.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut cmd = s.cmd(&["--config", config.to_str().unwrap(), "run"]);
        cmd.env("NOTIFY_SOCKET", &path)
            .env("WATCHDOG_USEC", "400000")
            .env("INVOCATION_ID", "test")
            .env("RUST_LOG", "info");
        let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, log) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut d = Daemon {
            child,
            notify,
            log,
            seen: Vec::new(),
            _notify_dir: notify_dir,
        };
        d.expect_notify("READY=1");
        d
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// Waits for a notification starting with `prefix`; returns it.
    fn expect_notify(&mut self, prefix: &str) -> String {
        let mut buf = [0u8; 512];
        loop {
            let n = self
                .notify
                .recv(&mut buf)
                .unwrap_or_else(|e| panic!("no {prefix} notification: {e}"));
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            if msg.starts_with(prefix) {
                return msg;
            }
        }
    }

    /// Waits for a log line containing every needle; returns it.
    fn expect_log(&mut self, needles: &[&str]) -> String {
        loop {
            match self.log.recv_timeout(PATIENCE) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if needles.iter().all(|n| line.contains(n)) {
                        return line;
                    }
                }
                Err(e) => panic!(
                    "no log line with {needles:?} ({e}); log so far:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// SIGTERM; returns the exit status.
    fn stop(mut self) -> std::process::ExitStatus {
        kill(self.pid(), Signal::SIGTERM).unwrap();
        self.expect_notify("STOPPING=1");
        let status = self.child.wait().unwrap();
        // The reader thread ends at EOF, after the last line.
        for line in self.log.iter() {
            self.seen.push(line);
        }
        assert!(
            self.seen.iter().any(|l| l.contains("stopped")),
            "{}",
            self.seen.join("\n")
        );
        // Journald format (INVOCATION_ID is set): no colour anywhere, span fields included.
        assert!(
            !self.seen.iter().any(|l| l.contains('\u{1b}')),
            "{}",
            self.seen.join("\n")
        );
        status
    }
}

fn config(s: &Scratch, extra: &str) -> PathBuf {
    s.file("meterd.toml", &format!("[daemon]\nstop_deadline_secs = 20\n{extra}"))
}

#[test]
fn sigterm_exits_0_after_ready_watchdog_and_stopping() {
    let s = Scratch::new();
    let mut d = Daemon::start(&s, &config(&s, ""));
    assert!(s.data_dir().join("control.sock").exists());
    d.expect_notify("WATCHDOG=1");
    d.expect_notify("WATCHDOG=1");
    // Under systemd (INVOCATION_ID set) lines carry a syslog priority and no timestamp.
    let line = d.expect_log(&["meterd running"]);
    assert!(
        line.starts_with("<6>") && !line.contains("T0") && !line.contains('\u{1b}'),
        "{line}"
    );
    let status = d.stop();
    assert_eq!(status.code(), Some(0));
    assert!(
        !s.data_dir().join("control.sock").exists(),
        "control socket left behind"
    );
}

/// Meter M with three monthly reads of 10 units/day; the April read uses twice that: held as
/// high usage with the default high_factor 1.8, validated with 2.5.
fn history(s: &Scratch, meter: &str) -> (PathBuf, PathBuf) {
    let meters = s.file(
        &format!("{meter}-meters.csv"),
        &format!("{METERS_HEADER}{}", meter_line(meter, "water", 8, "active")),
    );
    let reads = s.file(
        &format!("{meter}-history.csv"),
        &format!(
            "meter_id,read_at,value,read_type,codes\n{meter},2025-01-01T08:00:00Z,1000,manual,\n{meter},2025-02-01T08:00:00Z,1310,manual,\n{meter},2025-03-01T08:00:00Z,1590,manual,\n"
        ),
    );
    (meters, reads)
}

fn april(s: &Scratch, meter: &str) -> PathBuf {
    s.file(
        &format!("{meter}-april.csv"),
        &format!("meter_id,read_at,value,read_type,codes\n{meter},2025-04-01T08:00:00Z,2210,manual,\n"),
    )
}

fn april_status(s: &Scratch, meter: &str) -> String {
    april_status_with(s, meter, "meterd.toml")
}

fn april_status_with(s: &Scratch, meter: &str, config: &str) -> String {
    let reads = s.json(&["--config", config, "reads", "list", "--json", "--meter", meter]);
    let last = reads.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["value"], 2210, "{last}");
    last["status"].as_str().unwrap().to_owned()
}

#[test]
fn sighup_reloads_a_valid_file_and_keeps_the_old_one_when_invalid() {
    let s = Scratch::new();
    for m in ["M1", "M2"] {
        let (meters, reads) = history(&s, m);
        s.ok(&["meters", "import", meters.to_str().unwrap()]);
        s.ok(&["reads", "import", reads.to_str().unwrap()]);
    }
    let file = config(&s, "");
    let mut d = Daemon::start(&s, &file);

    // Invalid: a typo next to the new factor. Logged with its line; the old factors stay.
    std::fs::write(
        &file,
        "[daemon]\nstop_deadline_secs = 20\n[vee.water]\nhigh_factor = 2.5\nhihg_factor = 3\n",
    )
    .unwrap();
    kill(d.pid(), Signal::SIGHUP).unwrap();
    d.expect_notify("RELOADING=1");
    let line = d.expect_log(&["invalid", "keeping the running one"]);
    assert!(line.contains("line 5") && line.contains("hihg_factor"), "{line}");
    d.expect_notify("READY=1");
    // Through the control socket: the daemon imports with its running config (the client
    // reads the file and sends its bytes). The broken file would stop the client itself; it
    // reads an empty one.
    let client = s.file("client.toml", "");
    let client = client.to_str().unwrap();
    s.ok(&["--config", client, "reads", "import", april(&s, "M1").to_str().unwrap()]);
    assert_eq!(april_status_with(&s, "M1", client), "flagged");

    // Valid: picked up.
    std::fs::write(
        &file,
        "[daemon]\nstop_deadline_secs = 20\n[vee.water]\nhigh_factor = 2.5\n",
    )
    .unwrap();
    kill(d.pid(), Signal::SIGHUP).unwrap();
    d.expect_notify("RELOADING=1");
    d.expect_log(&["configuration reloaded"]);
    d.expect_notify("READY=1");
    s.ok(&["reads", "import", april(&s, "M2").to_str().unwrap()]);
    assert_eq!(april_status(&s, "M2"), "validated");

    assert_eq!(d.stop().code(), Some(0));
}

#[test]
fn store_commands_run_in_the_daemon_with_the_clients_files() {
    let s = Scratch::new();
    let file = config(&s, "");
    let mut d = Daemon::start(&s, &file);

    // From other processes, relative paths and all: the client reads the files, the daemon
    // runs the commands, output and exit codes come back.
    let meters = s.file(
        "meters.csv",
        &format!(
            "{METERS_HEADER}{}{}",
            meter_line("W1", "water", 6, "active"),
            meter_line("W2", "water", 6, "active")
        ),
    );
    let out = s.ok(&["meters", "import", meters.file_name().unwrap().to_str().unwrap()]);
    assert!(out.contains('2'), "{out}");
    s.file("reads.csv", "meter_id,read_at,value,read_type,codes\nW1,2025-01-01T08:00:00Z,100,manual,\nW2,2025-01-01T08:00:00Z,200,manual,\n");
    let out = s.ok(&["reads", "import", "reads.csv"]);
    assert!(
        out.contains("committed 2 reads") && out.contains("imported 2 reads"),
        "{out}"
    );
    let reads = s.json(&["reads", "list", "--json"]);
    let ids: Vec<&str> = reads
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["meter_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["W1", "W2"]);
    // A failing command fails here too, with its message.
    let err = s.fails(&["reads", "import", "missing.csv"]);
    assert!(err.contains("missing.csv"), "{err}");
    // Never run by the daemon: a second daemon.
    let err = s.fails(&["run"]);
    assert!(err.contains("in use") && err.contains("stop it first"), "{err}");

    // `meterd reload` (root is an admin): what SIGHUP does.
    let out = s.ok(&["--config", file.to_str().unwrap(), "reload"]);
    assert!(out.contains("reload asked"), "{out}");
    d.expect_log(&["configuration reloaded"]);
    assert_eq!(d.stop().code(), Some(0));
    // Stopped: commands open the store themselves again and see what the daemon stored.
    assert_eq!(s.json(&["reads", "list", "--json"]).as_array().unwrap().len(), 2);
}

#[test]
fn a_locked_store_without_a_daemon_is_reported() {
    let s = Scratch::new();
    let _held = meterd::store::RedbStore::open_dir(&s.data_dir()).unwrap();
    let err = s.fails(&["reads", "list", "--json"]);
    assert!(
        err.contains("in use by another process") && err.contains("no meterd daemon answers on"),
        "{err}"
    );
}
