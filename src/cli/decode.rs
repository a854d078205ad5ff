//! `meterd decode`: decodes meter frames and telegrams from a file or stdin and prints one JSON
//! object per frame (NDJSON). A frame that fails its check is never printed as data: stderr names
//! the frame and the check, and the command exits non-zero.

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use meterd_protocols::decode::{Keys, Protocol, decode_input};

use super::Env;
use crate::secrets;

/// Arguments of `meterd decode`.
#[derive(Debug, Args)]
pub struct DecodeArgs {
    /// Protocol of the input (scm, scm+, idm, netidm, r900, r900bcd, wmbus, mbus, iec62056-21,
    /// dsmr); detected per frame when absent.
    #[arg(long, value_parser = parse_protocol)]
    pub protocol: Option<Protocol>,
    /// Wireless M-Bus AES-128 key for one meter, as METER_ID=HEX (8-digit meter id). Repeatable.
    #[arg(long = "key", value_name = "METER_ID=HEX")]
    pub keys: Vec<String>,
    /// A key file with one METER_ID=HEX per line; refused when group or others can read it.
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// Input file; stdin when absent or `-`.
    pub input: Option<PathBuf>,
}

fn parse_protocol(s: &str) -> Result<Protocol, String> {
    s.parse().map_err(|e: meterd_protocols::Error| e.to_string())
}

/// Runs the command; fails (exit code 1) when any frame was refused or none was found.
pub fn run(env: &Env, args: DecodeArgs) -> Result<()> {
    let mut keys = match &args.key_file {
        Some(path) => secrets::read_key_file(path)?,
        None => Keys::new(),
    };
    for assignment in &args.keys {
        let (id, key) = Keys::parse_assignment(assignment).with_context(|| format!("--key {assignment}"))?;
        keys.insert(&id, key);
    }
    let (name, input) = match args.input.as_deref() {
        None => ("stdin".to_owned(), read_stdin()?),
        Some(p) if p.as_os_str() == "-" => ("stdin".to_owned(), read_stdin()?),
        Some(p) => (
            p.display().to_string(),
            std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
        ),
    };
    let frames = decode_input(&input, args.protocol, &keys);
    let mut refused = 0usize;
    for (n, frame) in frames.iter().enumerate() {
        match &frame.result {
            Ok(decoded) => {
                let mut out = env.out();
                serde_json::to_writer(&mut *out, decoded)?;
                out.write_all(b"\n")?;
            }
            Err(e) => {
                refused += 1;
                note!(env, "{name}: frame {} (line {}): {e}", n + 1, frame.line);
            }
        }
    }
    env.out().flush()?;
    if frames.is_empty() {
        bail!("{name}: no frames found");
    }
    if refused > 0 {
        bail!("{name}: {refused} of {} frames refused", frames.len());
    }
    Ok(())
}

fn read_stdin() -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    std::io::stdin().read_to_end(&mut buf).context("reading stdin")?;
    Ok(buf)
}
