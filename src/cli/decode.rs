//! `meterd decode`: decodes meter frames and telegrams from a file or stdin and prints one JSON
//! object per frame (NDJSON). A frame that fails its check is never printed as data: stderr names
//! the frame, its position (line, byte offset) and the check, decoding goes on, and the command
//! exits non-zero at the end.
//!
//! It runs as a live filter (`rtl_wmbus | meterd decode`): the input is cut into frames as it
//! arrives ([`meterd_protocols::stream::Framer`]: lines, text telegrams, or binary frames by their
//! length fields), each result is written when its frame is complete and flushed when the input
//! has nothing more ready, in memory that does not grow with the input. A file is decoded on
//! every core (`--jobs`), its output still in input order.

use std::io::{BufWriter, Read, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use meterd_protocols::decode::{Keys, Protocol, decode_piece};
use meterd_protocols::stream::{Framer, Framing, Piece, Position};

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
    /// Decoding threads: the output keeps the input's order. Default: one per core for a
    /// file, one for a pipe (each frame's result is written as soon as it is complete).
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
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
    let (name, source, is_file): (String, Box<dyn Read + Send>, bool) = match args.input.as_deref() {
        None => ("stdin".to_owned(), Box::new(std::io::stdin()), false),
        Some(p) if p.as_os_str() == "-" => ("stdin".to_owned(), Box::new(std::io::stdin()), false),
        Some(p) => {
            let f = std::fs::File::open(p).with_context(|| format!("reading {}", p.display()))?;
            let is_file = f.metadata().is_ok_and(|m| m.is_file());
            (p.display().to_string(), Box::new(f), is_file)
        }
    };
    // A file is decoded on every core; a pipe frame by frame, for the lowest latency.
    let jobs = match args.jobs {
        Some(n) => n.clamp(1, MAX_JOBS),
        None if is_file => std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_JOBS)),
        None => 1,
    };
    let job = Job {
        protocol: args.protocol,
        keys: &keys,
    };
    let (frames, refused, skipped, controls) = {
        let mut guard = env.out();
        let mut tally = Tally::new(env, &name, BufWriter::with_capacity(READ_CHUNK, &mut *guard));
        if jobs == 1 {
            sequential(source, &job, &mut tally)?;
        } else {
            parallel(source, &job, jobs, &mut tally)?;
        }
        tally.out.flush()?;
        (tally.frames, tally.refused, tally.skipped, tally.controls)
    };
    if skipped > 0 {
        note!(env, "{name}: skipped {skipped} bytes that start no frame");
    }
    if controls > 0 {
        note!(
            env,
            "{name}: {controls} M-Bus control frames (ACK, requests) carry no data"
        );
    }
    if frames == 0 {
        bail!("{name}: no frames found");
    }
    if refused > 0 {
        bail!("{name}: {refused} of {frames} frames refused");
    }
    Ok(())
}

/// Bytes read and written at a time.
const READ_CHUNK: usize = 64 * 1024;
/// The most decoding threads `--jobs` starts.
const MAX_JOBS: usize = 64;
/// Input bytes handed to a decoding thread at a time in parallel mode (bounded, so memory stays
/// flat: a few batches per thread are in flight).
const BATCH_BYTES: usize = 64 * 1024;

/// What every frame is decoded with.
struct Job<'a> {
    protocol: Option<Protocol>,
    keys: &'a Keys,
}

impl Job<'_> {
    /// Decodes one frame: its NDJSON line is appended to `out`.
    fn decode(&self, at: Position, framing: Framing, bytes: &[u8], out: &mut Vec<u8>) -> Outcome {
        match decode_piece(framing, bytes, self.protocol, self.keys) {
            None => Outcome::Blank,
            Some(Ok(decoded)) => {
                let before = out.len();
                // Writing to a Vec cannot fail; a value that does not serialise would be a bug.
                match serde_json::to_writer(&mut *out, &decoded) {
                    Ok(()) => {
                        out.push(b'\n');
                        Outcome::Decoded(out.len() - before)
                    }
                    Err(e) => {
                        out.truncate(before);
                        Outcome::Refused(at, e.to_string())
                    }
                }
            }
            Some(Err(e)) => Outcome::Refused(at, e.to_string()),
        }
    }
}

/// A frame to decode, or what a piece that is no frame comes to.
fn frame_or_outcome(piece: Piece<'_>) -> Result<(Position, Framing, &[u8]), Outcome> {
    match piece {
        Piece::Frame(at, framing, bytes) => Ok((at, framing, bytes)),
        Piece::Refused(at, e) => Err(Outcome::Refused(at, e.to_string())),
        Piece::Skipped(at, n) => Err(Outcome::Skipped(at, n)),
        Piece::Control(_) => Err(Outcome::Control),
    }
}

/// What became of one piece of input.
enum Outcome {
    /// Decoded: this many bytes of NDJSON.
    Decoded(usize),
    Refused(Position, String),
    Skipped(Position, u64),
    Control,
    /// A blank or comment line.
    Blank,
}

/// Decodes in this thread, writing each result as soon as its frame is complete.
fn sequential(mut source: Box<dyn Read + Send>, job: &Job<'_>, tally: &mut Tally<'_, impl Write>) -> Result<()> {
    let mut framer = Framer::new(job.protocol, None);
    let mut buf = vec![0u8; READ_CHUNK];
    let mut line = Vec::new();
    loop {
        let n = feed(&mut source, &mut framer, &mut buf)?;
        while let Some(piece) = framer.next_piece() {
            line.clear();
            let outcome = match frame_or_outcome(piece) {
                Ok((at, framing, bytes)) => job.decode(at, framing, bytes, &mut line),
                Err(outcome) => outcome,
            };
            tally.record(outcome, &line)?;
        }
        if n == 0 {
            return Ok(());
        }
        // A short read: nothing more is ready yet. Show what is decoded so far before waiting,
        // so a frame typed into the pipe comes out at once; fast input is written in chunks.
        if n < buf.len() {
            tally.out.flush()?;
        }
    }
}

/// One batch of frames for a decoding thread: the bytes of each piece, in input order.
struct Batch {
    seq: u64,
    data: Vec<u8>,
    pieces: Vec<Cut>,
    /// The read that ended this batch was short: flush after writing it.
    flush: bool,
}

impl Batch {
    fn new(seq: u64) -> Batch {
        Batch {
            seq,
            data: Vec::with_capacity(BATCH_BYTES + 1024),
            pieces: Vec::new(),
            flush: false,
        }
    }

    /// Sends this batch to the decoding threads and starts the next one in its place; `false`
    /// when they are gone.
    fn hand_over(&mut self, work: &std::sync::mpsc::SyncSender<Batch>, flush: bool) -> bool {
        self.flush = flush;
        let next = Batch::new(self.seq + 1);
        work.send(std::mem::replace(self, next)).is_ok()
    }
}

/// A piece kept by position in its batch's `data`.
enum Cut {
    Frame(Position, Framing, std::ops::Range<usize>),
    Other(Outcome),
}

/// A decoded batch: its NDJSON and the outcome of each piece.
struct Done {
    seq: u64,
    out: Vec<u8>,
    outcomes: Vec<Outcome>,
    flush: bool,
}

/// Decodes on `jobs` threads: this thread writes the results in input order while a reader
/// thread cuts frames into batches and the decoding threads turn batches into NDJSON. Every
/// channel is bounded, so memory stays flat whatever the input's size.
fn parallel(
    mut source: Box<dyn Read + Send>,
    job: &Job<'_>,
    jobs: usize,
    tally: &mut Tally<'_, impl Write>,
) -> Result<()> {
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    use std::sync::mpsc::sync_channel;

    let (work_tx, work_rx) = sync_channel::<Batch>(jobs);
    let work_rx = Mutex::new(work_rx);
    let (done_tx, done_rx) = sync_channel::<Done>(jobs);
    std::thread::scope(|scope| -> Result<()> {
        for _ in 0..jobs {
            let done_tx = done_tx.clone();
            let work_rx = &work_rx;
            scope.spawn(move || {
                loop {
                    let batch = match work_rx.lock().unwrap_or_else(|p| p.into_inner()).recv() {
                        Ok(b) => b,
                        Err(_) => return,
                    };
                    let mut out = Vec::with_capacity(batch.data.len() * 2);
                    let outcomes = batch
                        .pieces
                        .into_iter()
                        .map(|cut| match cut {
                            Cut::Frame(at, framing, range) => job.decode(at, framing, &batch.data[range], &mut out),
                            Cut::Other(o) => o,
                        })
                        .collect();
                    let done = Done {
                        seq: batch.seq,
                        out,
                        outcomes,
                        flush: batch.flush,
                    };
                    if done_tx.send(done).is_err() {
                        return;
                    }
                }
            });
        }
        drop(done_tx);
        let protocol = job.protocol;
        let reader = scope.spawn(move || -> Result<()> {
            let mut framer = Framer::new(protocol, None);
            let mut buf = vec![0u8; READ_CHUNK];
            let mut batch = Batch::new(0);
            loop {
                let n = feed(&mut source, &mut framer, &mut buf)?;
                while let Some(piece) = framer.next_piece() {
                    batch.pieces.push(match frame_or_outcome(piece) {
                        Ok((at, framing, bytes)) => {
                            let from = batch.data.len();
                            batch.data.extend_from_slice(bytes);
                            Cut::Frame(at, framing, from..batch.data.len())
                        }
                        Err(outcome) => Cut::Other(outcome),
                    });
                    if batch.data.len() >= BATCH_BYTES && !batch.hand_over(&work_tx, false) {
                        return Ok(());
                    }
                }
                // A short read (or the end): nothing more is ready, so what is cut goes out now
                // and is flushed once written.
                if n < buf.len() && !batch.pieces.is_empty() && !batch.hand_over(&work_tx, true) {
                    return Ok(());
                }
                if n == 0 {
                    return Ok(());
                }
            }
        });
        // Batches come back in any order; they are written in input order.
        let mut waiting = BTreeMap::new();
        let mut next = 0u64;
        let mut result = Ok(());
        for done in done_rx {
            waiting.insert(done.seq, done);
            while let Some(done) = waiting.remove(&next) {
                next += 1;
                if result.is_err() {
                    continue;
                }
                result = tally.record_batch(done);
            }
        }
        let read = reader
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the reading thread failed")));
        result.and(read)
    })
}

/// Reads what is ready into the framer; 0 when the input ended (and the framer was told).
fn feed(source: &mut impl Read, framer: &mut Framer, buf: &mut [u8]) -> Result<usize> {
    let n = read(source, buf)?;
    if n == 0 {
        framer.finish();
    } else {
        framer.push(&buf[..n]);
    }
    Ok(n)
}

/// Reads what is ready (at most `buf.len()` bytes); 0 at the end of the input.
fn read(source: &mut impl Read, buf: &mut [u8]) -> Result<usize> {
    loop {
        match source.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("reading the input"),
        }
    }
}

/// Frames seen and refused, and the printing of each.
struct Tally<'a, W: Write> {
    env: &'a Env,
    name: &'a str,
    out: W,
    frames: usize,
    refused: usize,
    skipped: u64,
    controls: usize,
}

impl<'a, W: Write> Tally<'a, W> {
    fn new(env: &'a Env, name: &'a str, out: W) -> Self {
        Tally {
            env,
            name,
            out,
            frames: 0,
            refused: 0,
            skipped: 0,
            controls: 0,
        }
    }

    /// Writes one outcome; `bytes` holds its NDJSON when it was decoded.
    fn record(&mut self, outcome: Outcome, bytes: &[u8]) -> Result<()> {
        let env = self.env;
        match outcome {
            Outcome::Decoded(_) => {
                self.frames += 1;
                self.out.write_all(bytes)?;
            }
            Outcome::Refused(at, e) => {
                self.frames += 1;
                self.refused += 1;
                // Data before its refusal, in input order.
                self.out.flush()?;
                note!(
                    env,
                    "{}: frame {} (line {}, byte {}): {e}",
                    self.name,
                    self.frames,
                    at.line,
                    at.offset
                );
            }
            Outcome::Skipped(at, n) => {
                self.skipped += n;
                self.out.flush()?;
                note!(
                    env,
                    "{}: skipped {n} bytes at line {}, byte {}: they start no frame",
                    self.name,
                    at.line,
                    at.offset
                );
            }
            Outcome::Control => self.controls += 1,
            Outcome::Blank => {}
        }
        Ok(())
    }

    fn record_batch(&mut self, done: Done) -> Result<()> {
        let mut at = 0;
        for outcome in done.outcomes {
            let len = match outcome {
                Outcome::Decoded(n) => n,
                _ => 0,
            };
            self.record(outcome, &done.out[at..at + len])?;
            at += len;
        }
        if done.flush {
            self.out.flush()?;
        }
        Ok(())
    }
}
