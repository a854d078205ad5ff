//! A private mosquitto for `meterd demo`, the tests and the MQTT benchmark: its own temporary
//! config on a free loopback port, optional persistence (needed when un-acked QoS 1 messages
//! must survive a broker restart), restartable on the same port, stopped when dropped.
//! `Ok(None)` when mosquitto is not installed, so each caller decides whether that is a skip
//! (the demo, the benchmark) or a failure (the tests).

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;

/// A running private mosquitto.
#[derive(Debug)]
pub struct Mosquitto {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Mosquitto {
    /// Starts mosquitto and waits until it listens; `Ok(None)` when it is not installed.
    pub fn start(persistence: bool) -> anyhow::Result<Option<Self>> {
        Self::start_with(persistence, "")
    }

    /// As [`Mosquitto::start`], with `listener` lines added to its listener's settings (TLS:
    /// `cafile`, `certfile`, `keyfile`, `require_certificate`; the files must be readable by
    /// the `mosquitto` user when started as root).
    pub fn start_with(persistence: bool, listener: &str) -> anyhow::Result<Option<Self>> {
        let dir = tempfile::Builder::new().prefix("meterd-mosquitto-").tempdir()?;
        // mosquitto started as root drops to the `mosquitto` user: it must be able to write
        // its persistence file and log here.
        std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777))?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let conf = format!(
            "listener {port} 127.0.0.1\n{listener}\nallow_anonymous true\npersistence {persistence}\npersistence_location {}/\n\
             persistence_file mosquitto.db\nautosave_interval 0\n\
             # Keep every queued QoS 1 message for offline persistent sessions (the default is 1000).\n\
             max_queued_messages 0\nmax_inflight_messages 0\nlog_dest file {}/mosquitto.log\n",
            dir.path().display(),
            dir.path().display()
        );
        std::fs::write(dir.path().join("mosquitto.conf"), conf)?;
        let mut broker = Mosquitto { port, dir, child: None };
        match broker.spawn() {
            Ok(()) => Ok(Some(broker)),
            Err(e)
                if e.downcast_ref::<std::io::Error>().map(std::io::Error::kind)
                    == Some(std::io::ErrorKind::NotFound) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(self.dir.path().join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let child = self.child.insert(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(status) = child.try_wait()? {
                anyhow::bail!(
                    "mosquitto exited ({status}) before listening on port {}: {}",
                    self.port,
                    log(self.dir.path())
                );
            }
            if Instant::now() > deadline {
                anyhow::bail!(
                    "mosquitto did not listen on port {}: {}",
                    self.port,
                    log(self.dir.path())
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// The `mqtts://` URL of a TLS listener.
    pub fn tls_url(&self) -> String {
        format!("mqtts://127.0.0.1:{}", self.port)
    }

    /// What mosquitto logged so far.
    pub fn log(&self) -> String {
        log(self.dir.path())
    }

    /// SIGTERM (mosquitto saves its persistence file) and wait.
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(c.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let _ = c.wait();
        }
    }

    /// Stops and starts again on the same port with the same persistence file.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.stop();
        self.spawn().context("restarting mosquitto")
    }
}

fn log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("mosquitto.log")).unwrap_or_default()
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
