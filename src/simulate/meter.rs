//! Meter simulators on pseudo-terminals (`meterd simulate meter`): an IEC 62056-21 meter
//! ([`MeterSim`] with its quirks), an M-Bus segment of slaves ([`Segment`]) and a DSMR meter
//! sending a telegram every few seconds. Each owns the master side of a pty and links the
//! slave device to a path of the caller's choosing, so meterd (or any other reader) opens that
//! path like a real port.
//!
//! A pty keeps no data format but does keep the line speed, and master and slave share one
//! termios: the IEC meter compares the speed the reader set with its own and, when they differ,
//! sends what a UART would receive, garbage (a meter that ignores the rate it proposed).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use jiff::Timestamp;
use meterd_protocols::iec62056_21::dataset;
use meterd_protocols::iec62056_21::message::Identification;
use meterd_protocols::iec62056_21::meter::{MeterConfig, MeterSim};
use meterd_protocols::iec62056_21::{Action, encode_7e1};
use meterd_protocols::mbus::slave::{Segment, Slave, SlaveConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use tokio_serial::{SerialPort, SerialStream};
use tokio_util::sync::CancellationToken;

/// The master side of a pty whose slave is reachable at `link`.
pub struct Pty {
    master: SerialStream,
    pub slave_path: PathBuf,
    pub link: PathBuf,
}

impl Pty {
    /// Creates a pty and links `link` to its slave (replacing an old link, refusing to replace
    /// anything else).
    pub fn create(link: &Path) -> anyhow::Result<Pty> {
        let (master, slave) = SerialStream::pair().context("cannot create a pseudo-terminal")?;
        let slave_path = PathBuf::from(slave.name().context("the pty slave has no name")?);
        // The slave is reopened by the reader; holding it here would leave its exclusive flag
        // set after the reader closes (nobody could open it twice).
        drop(slave);
        match std::fs::symlink_metadata(link) {
            Ok(m) if m.file_type().is_symlink() => std::fs::remove_file(link)?,
            Ok(_) => anyhow::bail!("{} exists and is not a link; choose another --port", link.display()),
            Err(_) => {}
        }
        std::os::unix::fs::symlink(&slave_path, link).with_context(|| format!("cannot link {}", link.display()))?;
        Ok(Pty {
            master,
            slave_path,
            link: link.to_owned(),
        })
    }

    /// The speed the reader set on its side (shared termios), if it can be read.
    pub fn line_speed(&self) -> Option<u32> {
        self.master.baud_rate().ok()
    }

    /// Reads what the reader sent; `None` while no reader has the slave open.
    pub(crate) async fn read(&mut self, buf: &mut [u8]) -> Option<usize> {
        match self.master.read(buf).await {
            Ok(n) if n > 0 => Some(n),
            // EIO: no reader has the slave open. Poll again shortly.
            _ => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                None
            }
        }
    }

    pub(crate) async fn write(&mut self, bytes: &[u8]) {
        // With no reader attached the bytes have nowhere to go, like a meter talking to nobody.
        let _ = self.master.write_all(bytes).await;
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        if std::fs::read_link(&self.link).is_ok_and(|t| t == self.slave_path) {
            let _ = std::fs::remove_file(&self.link);
        }
    }
}

/// What the simulated IEC 62056-21 meter is like.
#[derive(Debug, Clone)]
pub struct IecOptions {
    /// Identification after `/`, e.g. `ISk5MT174-0001` (baud character `5` = 9600).
    pub identification: String,
    pub serial: String,
    /// Register `1.8.0` in kWh, as the meter prints it.
    pub register_kwh: String,
    pub ignore_baud: bool,
    pub bad_bcc: u32,
    pub wake_up_nuls: usize,
    pub read_command: u8,
    pub password: Option<String>,
    pub software_parity: bool,
    pub lines_per_block: usize,
}

impl IecOptions {
    pub fn meter_config(&self) -> anyhow::Result<MeterConfig> {
        let line = format!("/{}\r\n", self.identification);
        let (_, ident) = Identification::parse(line.as_bytes())
            .map_err(|_| anyhow::anyhow!("{:?} is not an identification (XXXZident)", self.identification))?;
        let lines = format!(
            "0.0.0({})\r\nF.F(00)\r\n1.8.0({}*kWh)\r\n2.8.0(0000000.000*kWh)\r\nC.5.0(02)\r\n",
            self.serial, self.register_kwh
        );
        let sets = dataset::parse_lines(lines.as_bytes()).map_err(|e| anyhow::anyhow!("readout list: {e}"))?;
        let mut cfg = MeterConfig::new(ident, sets);
        cfg.ignores_proposed_baud = self.ignore_baud;
        cfg.bad_bcc_answers = self.bad_bcc;
        cfg.wake_up_nuls = self.wake_up_nuls;
        cfg.read_command = self.read_command;
        cfg.password = self.password.clone();
        cfg.software_parity = self.software_parity;
        cfg.lines_per_block = self.lines_per_block;
        Ok(cfg)
    }
}

/// Runs the IEC meter until cancelled.
pub async fn run_iec(mut pty: Pty, cfg: MeterConfig, cancel: CancellationToken) -> anyhow::Result<()> {
    let mut sim = MeterSim::new(cfg);
    let mut meter_baud = 300u32;
    let mut deadline: Option<Instant> = None;
    let mut buf = [0u8; 1024];
    loop {
        while let Some(action) = sim.poll_action() {
            match action {
                Action::Send(bytes) => {
                    // A UART set to another speed receives garbage (framing errors).
                    let wire = match pty.line_speed() {
                        Some(line) if line != meter_baud => vec![0x80; bytes.len()],
                        _ => bytes,
                    };
                    pty.write(&wire).await;
                }
                Action::SetBaud(b) => meter_baud = b,
                Action::Timer(d) => deadline = Some(Instant::now() + d),
                Action::CancelTimer => deadline = None,
                Action::Done => {}
            }
        }
        let sleep = deadline.map(tokio::time::sleep_until);
        tokio::select! {
            n = pty.read(&mut buf) => if let Some(n) = n { sim.on_bytes(&buf[..n]) },
            () = async { sleep.expect("guarded").await }, if sleep.is_some() => {
                deadline = None;
                sim.on_timeout();
            }
            () = cancel.cancelled() => return Ok(()),
        }
    }
}

/// One simulated M-Bus slave from `ADDRESS:ID:LITRES` (address 0 = secondary addressing only).
pub fn parse_slave(spec: &str) -> anyhow::Result<SlaveConfig> {
    let parts: Vec<&str> = spec.split(':').collect();
    let [a, id, litres] = parts.as_slice() else {
        anyhow::bail!("--meter {spec:?}: expected ADDRESS:ID:LITRES, e.g. 5:12345678:1234567");
    };
    let id: u32 = id
        .parse()
        .ok()
        .filter(|v| *v <= 99_999_999 && id.len() == 8)
        .with_context(|| format!("--meter {spec:?}: id must be 8 digits"))?;
    Ok(SlaveConfig::water(
        a.parse().with_context(|| format!("--meter {spec:?}: address"))?,
        id,
        litres.parse().with_context(|| format!("--meter {spec:?}: litres"))?,
    ))
}

/// Runs an M-Bus segment until cancelled; every complete readout of a slave adds
/// `step_litres` to its register (a meter that keeps counting).
pub async fn run_mbus(
    mut pty: Pty,
    slaves: Vec<SlaveConfig>,
    step_litres: u32,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let mut segment = Segment::new(slaves.into_iter().map(Slave::new).collect());
    let mut buf = [0u8; 1024];
    loop {
        tokio::select! {
            n = pty.read(&mut buf) => {
                let Some(n) = n else { continue };
                let before: Vec<u32> = segment.slaves.iter().map(|s| s.answered).collect();
                let reply = segment.on_bytes(&buf[..n]);
                if !reply.is_empty() {
                    pty.write(&reply).await;
                }
                for (slave, was) in segment.slaves.iter_mut().zip(before) {
                    if slave.answered != was && step_litres > 0 {
                        let v = slave.config().volume_litres.saturating_add(step_litres);
                        slave.set_volume(v);
                    }
                }
            }
            () = cancel.cancelled() => return Ok(()),
        }
    }
}

/// What the simulated DSMR meter sends.
#[derive(Debug, Clone)]
pub struct DsmrOptions {
    /// `5`, `4` (with CRC) or `2.2`/`3` (no CRC, 7E1 parity bits on the wire).
    pub version: String,
    pub equipment_id: String,
    pub every: Duration,
    /// Noise and a telegram cut short between the telegrams.
    pub garbage: bool,
    /// Stop after this many telegrams (0 = run until stopped).
    pub count: u64,
    /// A gas meter on the meter's M-Bus (DSMR 4/5 only).
    pub gas: Option<DsmrGas>,
}

/// The gas meter behind a simulated DSMR meter: its register and capture time move by a step
/// per telegram, so a test sees hours pass in milliseconds.
#[derive(Debug, Clone)]
pub struct DsmrGas {
    /// Equipment id (data set `0-1:96.1.0`).
    pub equipment_id: String,
    /// The register in litres at the first telegram.
    pub litres: u64,
    /// Litres added per telegram.
    pub step_litres: u64,
    /// Capture time of the first telegram's value.
    pub first_capture: Timestamp,
    /// Capture time added per telegram (an hour for a DSMR 4 gas meter).
    pub capture_step: jiff::SignedDuration,
}

/// `at` as a DSMR timestamp in Dutch time: `YYMMDDhhmmss` and `W` (UTC+1) or `S` (UTC+2).
fn dsmr_time(at: Timestamp) -> String {
    let tz = jiff::tz::TimeZone::get("Europe/Amsterdam").unwrap_or(jiff::tz::TimeZone::fixed(jiff::tz::offset(1)));
    let z = at.to_zoned(tz);
    let summer = z.offset().seconds() >= 7200;
    format!("{}{}", z.strftime("%y%m%d%H%M%S"), if summer { 'S' } else { 'W' })
}

/// One telegram; the register `1-0:1.8.1` grows by 10 Wh per telegram.
pub fn dsmr_telegram(opts: &DsmrOptions, n: u64) -> Vec<u8> {
    let modern = !matches!(opts.version.as_str(), "2" | "2.2" | "3" | "3.0");
    let mut t = String::from("/ISk5\\2MT382-1000\r\n\r\n");
    if modern {
        t.push_str(if opts.version.starts_with('4') {
            "1-3:0.2.8(42)\r\n"
        } else {
            "1-3:0.2.8(50)\r\n"
        });
        // Dutch local time; `W` marks winter time (UTC+1).
        let local = Timestamp::now() + jiff::SignedDuration::from_hours(1);
        t.push_str(&format!("0-0:1.0.0({}W)\r\n", local.strftime("%y%m%d%H%M%S")));
    }
    t.push_str(&format!(
        "0-0:96.1.1({})\r\n",
        hex::encode_upper(opts.equipment_id.as_bytes())
    ));
    let wh = 123_456_000 + n * 10;
    t.push_str(&format!("1-0:1.8.1({:06}.{:03}*kWh)\r\n", wh / 1000, wh % 1000));
    t.push_str("1-0:1.8.2(000045.678*kWh)\r\n1-0:1.7.0(00.512*kW)\r\n");
    if let Some(g) = opts.gas.as_ref().filter(|_| modern) {
        let k = n.saturating_sub(1);
        let litres = g.litres.saturating_add(g.step_litres.saturating_mul(k));
        let captured = i32::try_from(k)
            .ok()
            .and_then(|k| g.capture_step.checked_mul(k))
            .and_then(|d| g.first_capture.checked_add(d).ok())
            .unwrap_or(g.first_capture);
        t.push_str(&format!(
            "0-1:24.1.0(003)\r\n0-1:96.1.0({})\r\n0-1:24.2.1({})({:05}.{:03}*m3)\r\n",
            hex::encode_upper(g.equipment_id.as_bytes()),
            dsmr_time(captured),
            litres / 1000,
            litres % 1000
        ));
    }
    t.push('!');
    let mut bytes = t.into_bytes();
    if modern {
        let crc = crc::Crc::<u16>::new(&crc::CRC_16_ARC).checksum(&bytes);
        bytes.extend_from_slice(format!("{crc:04X}").as_bytes());
    }
    bytes.extend_from_slice(b"\r\n");
    if modern { bytes } else { encode_7e1(&bytes) }
}

/// Sends telegrams until cancelled or `count` are out.
pub async fn run_dsmr(mut pty: Pty, opts: DsmrOptions, cancel: CancellationToken) -> anyhow::Result<()> {
    let mut n = 0u64;
    let mut tick = tokio::time::interval(opts.every);
    let mut sink = [0u8; 256];
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            // A P1 port is send-only; whatever arrives is dropped.
            _ = pty.read(&mut sink) => continue,
            () = cancel.cancelled() => return Ok(()),
        }
        if opts.count > 0 && n >= opts.count {
            cancel.cancelled().await;
            return Ok(());
        }
        n += 1;
        if opts.garbage {
            pty.write(b"\x00\xff\x13line noise 12#$%\r\n/ISk5 cut sh").await;
        }
        pty.write(&dsmr_telegram(&opts, n)).await;
    }
}
