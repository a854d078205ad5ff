//! `meterd decode`: decodes meter frames and telegrams from a file or stdin and prints one JSON
//! object per frame (NDJSON). A frame that fails its check is never printed as data: stderr names
//! the frame and the check, and the command exits non-zero.

use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use meterd_protocols::decode::{Keys, Protocol, decode_input, decode_line, is_text_input};

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
    let (name, source): (String, Box<dyn Read>) = match args.input.as_deref() {
        None => ("stdin".to_owned(), Box::new(std::io::stdin())),
        Some(p) if p.as_os_str() == "-" => ("stdin".to_owned(), Box::new(std::io::stdin())),
        Some(p) => (
            p.display().to_string(),
            Box::new(std::fs::File::open(p).with_context(|| format!("reading {}", p.display()))?),
        ),
    };
    let mut input = BufReader::with_capacity(READ_CHUNK, source);
    let mut guard = env.out();
    let mut out = BufWriter::with_capacity(READ_CHUNK, &mut *guard);
    let mut tally = Tally::default();
    let mut line = Vec::new();
    let mut number = 0usize;
    // Until the first line with something on it says whether the input is text telegrams.
    let mut decided = false;
    let mut opening = Vec::new();
    loop {
        // Nothing more is ready to read: show what is decoded so far before waiting, so a
        // frame typed into the pipe comes out at once, and fast input is written in chunks.
        if input.buffer().is_empty() {
            out.flush()?;
        }
        line.clear();
        let whole = read_line(&mut input, &mut line)?;
        if line.is_empty() {
            break;
        }
        number += 1;
        let text = String::from_utf8_lossy(&line);
        if !decided {
            let first = line
                .iter()
                .copied()
                .find(|b| !(b & 0x7F).is_ascii_whitespace() && *b != 0);
            let Some(first) = first else {
                // Blank, or an optical probe's wake-up NULs: the next line decides.
                opening.extend_from_slice(&line);
                continue;
            };
            decided = true;
            if is_text_input(first, args.protocol) {
                // Text telegrams (IEC 62056-21, DSMR) span lines: they are framed over the rest
                // of the input as a whole.
                let base = number - opening.iter().filter(|&&b| b & 0x7F == b'\n').count();
                let mut rest = std::mem::take(&mut opening);
                rest.extend_from_slice(&line);
                input.read_to_end(&mut rest).context("reading the input")?;
                for frame in decode_input(&rest, args.protocol, &keys) {
                    tally.show(env, &mut out, &name, frame.line + base - 1, &frame.result)?;
                }
                break;
            }
        }
        if !whole {
            tally.show(
                env,
                &mut out,
                &name,
                number,
                &Err(meterd_protocols::Error::invalid(
                    "line",
                    format!("longer than {MAX_LINE} bytes"),
                )),
            )?;
            continue;
        }
        if let Some(result) = decode_line(&text, args.protocol, &keys) {
            tally.show(env, &mut out, &name, number, &result)?;
        }
    }
    out.flush()?;
    drop(out);
    drop(guard);
    if tally.frames == 0 {
        bail!("{name}: no frames found");
    }
    if tally.refused > 0 {
        bail!("{name}: {} of {} frames refused", tally.refused, tally.frames);
    }
    Ok(())
}

/// Bytes read and written at a time.
const READ_CHUNK: usize = 64 * 1024;
/// The longest line taken (a wM-Bus telegram is at most 255 bytes, 510 hex digits; a JSON line
/// a few hundred bytes): a longer one is refused, so memory stays bounded whatever the input.
const MAX_LINE: usize = 64 * 1024;

/// Reads one line (with its newline) into `line`, at most [`MAX_LINE`] bytes of it; `false`
/// when it was longer (the rest of it is read and dropped). An empty `line`: the input ended.
fn read_line(input: &mut impl BufRead, line: &mut Vec<u8>) -> Result<bool> {
    let limit = MAX_LINE as u64 + 1;
    input.take(limit).read_until(b'\n', line).context("reading the input")?;
    if line.len() <= MAX_LINE || line.ends_with(b"\n") {
        return Ok(true);
    }
    let mut skipped = Vec::new();
    loop {
        skipped.clear();
        let n = input
            .take(limit)
            .read_until(b'\n', &mut skipped)
            .context("reading the input")?;
        if n == 0 || skipped.ends_with(b"\n") {
            return Ok(false);
        }
    }
}

/// Frames seen and refused, and the printing of each.
#[derive(Default)]
struct Tally {
    frames: usize,
    refused: usize,
}

impl Tally {
    fn show(
        &mut self,
        env: &Env,
        out: &mut impl Write,
        name: &str,
        line: usize,
        result: &meterd_protocols::Result<meterd_protocols::Decoded>,
    ) -> Result<()> {
        self.frames += 1;
        match result {
            Ok(decoded) => {
                serde_json::to_writer(&mut *out, decoded)?;
                out.write_all(b"\n")?;
            }
            Err(e) => {
                self.refused += 1;
                // Data before its refusal, in input order.
                out.flush()?;
                note!(env, "{name}: frame {} (line {line}): {e}", self.frames);
            }
        }
        Ok(())
    }
}
