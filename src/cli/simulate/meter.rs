//! `meterd simulate meter`: a simulated meter on a pseudo-terminal, for trying out probes, M-Bus
//! masters and P1 listeners without hardware (and for the integration tests). The pty's device
//! is linked from `--port`; the command prints `ready PORT -> /dev/pts/N` and runs until
//! SIGTERM or Ctrl-C.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use tokio_util::sync::CancellationToken;

use crate::cli::Env;
use crate::simulate::meter::{self, DsmrOptions, IecOptions, Pty};

/// Which meter to simulate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    #[value(name = "iec62056-21")]
    Iec62056_21,
    Mbus,
    Dsmr,
}

#[derive(Debug, Args)]
pub struct MeterArgs {
    #[arg(long, value_enum)]
    pub kind: Kind,
    /// Path to link to the pty's device (the reader opens this).
    #[arg(long, value_name = "PATH")]
    pub port: PathBuf,

    // IEC 62056-21
    /// IEC: identification after `/` (the baud character proposes the rate: 5 = 9600).
    #[arg(long, default_value = "ISk5MT174-0001")]
    pub identification: String,
    /// IEC: meter serial (data set 0.0.0).
    #[arg(long, default_value = "12345678")]
    pub serial: String,
    /// IEC: register 1.8.0 in kWh as printed.
    #[arg(long, default_value = "0001234.567")]
    pub register_kwh: String,
    /// IEC: stay at 300 baud whatever rate was agreed.
    #[arg(long)]
    pub ignore_baud: bool,
    /// IEC: answer this many readouts with a bad BCC.
    #[arg(long, default_value_t = 0)]
    pub bad_bcc: u32,
    /// IEC: battery meter asleep until this many NULs arrive.
    #[arg(long, default_value_t = 0)]
    pub wake_up_nuls: usize,
    /// IEC: the read command it answers (1 = R1, 5 = R5).
    #[arg(long, default_value_t = 1)]
    pub read_command: u8,
    /// IEC: password expected before register reads.
    #[arg(long)]
    pub password: Option<String>,
    /// IEC: add and check 7E1 parity in software (the reader must do the same).
    #[arg(long)]
    pub software_parity: bool,
    /// IEC: send the readout in partial blocks of this many lines (0 = one block).
    #[arg(long, default_value_t = 0)]
    pub lines_per_block: usize,

    // M-Bus
    /// M-Bus: a slave as ADDRESS:ID:LITRES (address 0 = secondary addressing only). Repeatable;
    /// default one slave 5:12345678:1234567.
    #[arg(long = "meter", value_name = "A:ID:LITRES")]
    pub meters: Vec<String>,
    /// M-Bus: split each readout over this many telegrams (DIF 1F).
    #[arg(long, default_value_t = 1)]
    pub telegrams: usize,
    /// M-Bus: answer this many REQ_UD2 with a corrupt checksum (per slave).
    #[arg(long, default_value_t = 0)]
    pub bad_checksum: u32,
    /// M-Bus: litres added to a slave's register after each readout.
    #[arg(long, default_value_t = 0)]
    pub step_litres: u32,

    // DSMR
    /// DSMR: version (5, 4: CRC; 3, 2.2: no CRC, 7E1 parity bits).
    #[arg(long, default_value = "5")]
    pub dsmr: String,
    /// DSMR: equipment id (data set 96.1.1).
    #[arg(long, default_value = "E0012345678901234")]
    pub equipment_id: String,
    /// DSMR: milliseconds between telegrams.
    #[arg(long, default_value_t = 1000)]
    pub every_ms: u64,
    /// DSMR: line noise and a cut-short telegram before every telegram.
    #[arg(long)]
    pub garbage: bool,
    /// DSMR: stop sending after this many telegrams (0 = never).
    #[arg(long, default_value_t = 0)]
    pub count: u64,
    /// DSMR 4/5: a gas meter's register (`0-1:24.2.1`) in litres at the first telegram.
    #[arg(long, value_name = "LITRES")]
    pub gas_litres: Option<u64>,
    /// DSMR: litres the gas register grows per telegram.
    #[arg(long, default_value_t = 250)]
    pub gas_step_litres: u64,
    /// DSMR: capture time of the first gas value (RFC 3339; default the current whole hour).
    #[arg(long, value_name = "TIME")]
    pub gas_capture: Option<jiff::Timestamp>,
    /// DSMR: minutes the gas capture time advances per telegram (60: each telegram a new hour).
    #[arg(long, default_value_t = 60)]
    pub gas_every_minutes: i64,
    /// DSMR: the gas meter's equipment id (`0-1:96.1.0`).
    #[arg(long, default_value = "G0012345678901234")]
    pub gas_equipment_id: String,
}

pub fn run(env: &Env, args: MeterArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(simulate(env, args))
}

async fn simulate(env: &Env, args: MeterArgs) -> anyhow::Result<()> {
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    tokio::spawn(async move {
        crate::daemon::termination_signal().await;
        stop.cancel();
    });
    let pty = Pty::create(&args.port)?;
    let ready = format!("ready {} -> {}", args.port.display(), pty.slave_path.display());
    match args.kind {
        Kind::Iec62056_21 => {
            let cfg = IecOptions {
                identification: args.identification,
                serial: args.serial,
                register_kwh: args.register_kwh,
                ignore_baud: args.ignore_baud,
                bad_bcc: args.bad_bcc,
                wake_up_nuls: args.wake_up_nuls,
                read_command: b'0' + args.read_command.min(9),
                password: args.password,
                software_parity: args.software_parity,
                lines_per_block: args.lines_per_block,
            }
            .meter_config()?;
            announce(env, &ready)?;
            meter::run_iec(pty, cfg, cancel).await
        }
        Kind::Mbus => {
            let specs = if args.meters.is_empty() {
                vec!["5:12345678:1234567".to_owned()]
            } else {
                args.meters
            };
            let mut slaves = Vec::new();
            for s in &specs {
                let mut cfg = meter::parse_slave(s)?;
                cfg.telegrams = args.telegrams.max(1);
                cfg.bad_checksum_answers = args.bad_checksum;
                slaves.push(cfg);
            }
            announce(env, &ready)?;
            meter::run_mbus(pty, slaves, args.step_litres, cancel).await
        }
        Kind::Dsmr => {
            crate::ingest::meterbus::line::p1_settings(&args.dsmr).map_err(anyhow::Error::msg)?;
            let opts = DsmrOptions {
                version: args.dsmr,
                equipment_id: args.equipment_id,
                every: Duration::from_millis(args.every_ms.max(10)),
                garbage: args.garbage,
                count: args.count,
                gas: match args.gas_litres {
                    None => None,
                    Some(litres) => Some(meter::DsmrGas {
                        equipment_id: args.gas_equipment_id,
                        litres,
                        step_litres: args.gas_step_litres,
                        first_capture: match args.gas_capture {
                            Some(t) => t,
                            None => jiff::Timestamp::now().round(
                                jiff::TimestampRound::new()
                                    .smallest(jiff::Unit::Hour)
                                    .mode(jiff::RoundMode::Trunc),
                            )?,
                        },
                        capture_step: jiff::SignedDuration::from_mins(args.gas_every_minutes),
                    }),
                },
            };
            announce(env, &ready)?;
            meter::run_dsmr(pty, opts, cancel).await
        }
    }
}

fn announce(env: &Env, ready: &str) -> anyhow::Result<()> {
    say!(env, "{ready}");
    env.out().flush()?;
    Ok(())
}
