//! A private mosquitto for `meterd demo`: a temporary config on a free loopback port, stopped
//! when dropped. `None` when mosquitto is not installed.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct DemoBroker {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl DemoBroker {
    /// Starts mosquitto; `Ok(None)` when it is not installed.
    pub fn start() -> anyhow::Result<Option<Self>> {
        let dir = tempfile::Builder::new().prefix("meterd-demo-broker-").tempdir()?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\n"),
        )?;
        let child = match Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let mut broker = DemoBroker { port, child, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = broker.child.try_wait()? {
                anyhow::bail!("mosquitto exited ({status}) before listening on port {port}");
            }
            if Instant::now() > deadline {
                anyhow::bail!("mosquitto did not listen on port {port}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Some(broker))
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }
}

impl Drop for DemoBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
