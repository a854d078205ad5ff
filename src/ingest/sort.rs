//! The reads of an import file in the importer's order (by meter, then time, then line),
//! without holding the file: reads are sorted in runs of at most [`RUN_READS`] in memory; a file
//! with more is spilled run by run to private temporary files (unnamed, owner-only, gone when
//! closed) and merged back. The result is the order a stable sort of the whole file by meter and
//! time gives, whatever the number of runs.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read as _, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use jiff::Timestamp;

use crate::model::{Origin, OriginKind, Read};

/// Reads sorted in memory at once (about 250 bytes each).
pub const RUN_READS: usize = 50_000;
/// Runs merged at once; more are merged in rounds (open files and buffers stay bounded).
pub const FAN_IN: usize = 64;
const RUN_BUFFER: usize = 64 * 1024;

/// A read and its line in the file (its origin is rebuilt from the line when it comes out).
type Entry = (u64, Read);

fn key(e: &Entry) -> (&str, Timestamp, u64) {
    (&e.1.meter_id, e.1.read_at, e.0)
}

fn no_origin() -> Origin {
    Origin {
        kind: OriginKind::File,
        source: String::new(),
        locator: String::new(),
    }
}

/// Sorts the reads pushed in file order.
pub struct Sorter {
    dir: PathBuf,
    run: Vec<Entry>,
    runs: Vec<File>,
    run_reads: usize,
}

impl Sorter {
    /// Runs spilled, if any, go to unnamed files in `dir`.
    pub fn new(dir: &Path) -> Self {
        Self::with_run(dir, RUN_READS)
    }

    fn with_run(dir: &Path, run_reads: usize) -> Self {
        Sorter {
            dir: dir.to_owned(),
            run: Vec::new(),
            runs: Vec::new(),
            run_reads: run_reads.max(1),
        }
    }

    /// The next read of the file, from `line`.
    pub fn push(&mut self, line: u64, mut read: Read) -> std::io::Result<()> {
        read.origin = no_origin();
        self.run.push((line, read));
        if self.run.len() >= self.run_reads {
            self.spill()?;
        }
        Ok(())
    }

    fn sort_run(&mut self) {
        self.run.sort_unstable_by(|a, b| key(a).cmp(&key(b)));
    }

    fn spill(&mut self) -> std::io::Result<()> {
        self.sort_run();
        let mut w = BufWriter::with_capacity(RUN_BUFFER, self.temp()?);
        for e in self.run.drain(..) {
            write_entry(&mut w, &e)?;
        }
        let mut f = w.into_inner().map_err(|e| e.into_error())?;
        f.seek(SeekFrom::Start(0))?;
        self.runs.push(f);
        Ok(())
    }

    fn temp(&self) -> std::io::Result<File> {
        tempfile::tempfile_in(&self.dir).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!(
                    "cannot create a temporary file in {} to sort the file: {e}",
                    self.dir.display()
                ),
            )
        })
    }

    /// Everything pushed, in order; `file` names the reads' origin.
    pub fn finish(mut self, file: &str) -> std::io::Result<Sorted> {
        if self.runs.is_empty() {
            self.sort_run();
            return Ok(Sorted {
                file: file.to_owned(),
                inner: Inner::Memory(std::mem::take(&mut self.run).into_iter()),
            });
        }
        if !self.run.is_empty() {
            self.spill()?;
        }
        let mut runs = std::mem::take(&mut self.runs);
        // Rounds of merges until one merge of at most FAN_IN runs is left.
        while runs.len() > FAN_IN {
            let rest = runs.split_off(FAN_IN);
            let mut merge = Merge::new(runs)?;
            let mut w = BufWriter::with_capacity(RUN_BUFFER, self.temp()?);
            while let Some(e) = merge.next()? {
                write_entry(&mut w, &e)?;
            }
            let mut f = w.into_inner().map_err(|e| e.into_error())?;
            f.seek(SeekFrom::Start(0))?;
            runs = rest;
            runs.push(f);
        }
        Ok(Sorted {
            file: file.to_owned(),
            inner: Inner::Merge(Merge::new(runs)?),
        })
    }
}

/// A run's entry: its length, then postcard of the line, the time in nanoseconds (the read's own
/// serde keeps microseconds) and the read.
fn write_entry(w: &mut impl std::io::Write, e: &Entry) -> std::io::Result<()> {
    let bytes = postcard::to_stdvec(&(e.0, e.1.read_at.as_nanosecond(), &e.1)).map_err(std::io::Error::other)?;
    w.write_all(&(bytes.len() as u32).to_le_bytes())?;
    w.write_all(&bytes)
}

fn read_entry(r: &mut BufReader<File>, buf: &mut Vec<u8>) -> std::io::Result<Option<Entry>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    buf.resize(u32::from_le_bytes(len) as usize, 0);
    r.read_exact(buf)?;
    let (line, nanos, mut read): (u64, i128, Read) = postcard::from_bytes(buf).map_err(std::io::Error::other)?;
    read.read_at = Timestamp::from_nanosecond(nanos).map_err(std::io::Error::other)?;
    Ok(Some((line, read)))
}

/// A k-way merge of sorted runs.
struct Merge {
    readers: Vec<BufReader<File>>,
    heads: BinaryHeap<Reverse<Head>>,
    buf: Vec<u8>,
}

struct Head(Entry, usize);

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        key(&self.0) == key(&other.0)
    }
}
impl Eq for Head {}
impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Head {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        key(&self.0).cmp(&key(&other.0))
    }
}

impl Merge {
    fn new(runs: Vec<File>) -> std::io::Result<Self> {
        let mut m = Merge {
            readers: runs
                .into_iter()
                .map(|f| BufReader::with_capacity(RUN_BUFFER, f))
                .collect(),
            heads: BinaryHeap::new(),
            buf: Vec::new(),
        };
        for i in 0..m.readers.len() {
            if let Some(e) = read_entry(&mut m.readers[i], &mut m.buf)? {
                m.heads.push(Reverse(Head(e, i)));
            }
        }
        Ok(m)
    }

    fn next(&mut self) -> std::io::Result<Option<Entry>> {
        let Some(Reverse(Head(e, i))) = self.heads.pop() else {
            return Ok(None);
        };
        if let Some(n) = read_entry(&mut self.readers[i], &mut self.buf)? {
            self.heads.push(Reverse(Head(n, i)));
        }
        Ok(Some(e))
    }
}

enum Inner {
    Memory(std::vec::IntoIter<Entry>),
    Merge(Merge),
}

/// The sorted reads, their origin (file and line) restored.
pub struct Sorted {
    file: String,
    inner: Inner,
}

impl Sorted {
    pub fn next_read(&mut self) -> std::io::Result<Option<Read>> {
        let e = match &mut self.inner {
            Inner::Memory(it) => it.next(),
            Inner::Merge(m) => m.next()?,
        };
        Ok(e.map(|(line, mut read)| {
            read.origin = Origin::file_line(&self.file, line);
            read
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Quantity, ReadType};

    fn read(meter: &str, at: i64, value: i64) -> Read {
        Read {
            meter_id: meter.into(),
            read_at: Timestamp::from_second(at).unwrap() + jiff::SignedDuration::from_nanos(7),
            value: Quantity::from_micros(value),
            raw: value.to_string(),
            read_type: ReadType::Manual,
            codes: vec!["c".into()],
            reader: None,
            origin: Origin::file_line("x", 0),
        }
    }

    /// Spilled in runs of 7 and merged in rounds or not, the order is the stable sort's.
    #[test]
    fn runs_merge_into_the_stable_sort_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut reads = Vec::new();
        let mut seed: u64 = 12345;
        for i in 0..1000u64 {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let meter = format!("M{}", (seed >> 33) % 37);
            // Few distinct times: many ties, broken by line.
            let at = ((seed >> 20) % 5) as i64 * 86_400;
            reads.push((i + 2, read(&meter, at, i as i64)));
        }
        let mut expected: Vec<Read> = reads.iter().map(|(_, r)| r.clone()).collect();
        expected.sort_by(|a, b| a.meter_id.cmp(&b.meter_id).then(a.read_at.cmp(&b.read_at)));
        for run in [1, 7, 1000, 5000] {
            let mut s = Sorter::with_run(dir.path(), run);
            for (line, r) in &reads {
                s.push(*line, r.clone()).unwrap();
            }
            let mut out = s.finish("r.csv").unwrap();
            let mut got = Vec::new();
            while let Some(r) = out.next_read().unwrap() {
                got.push(r);
            }
            assert_eq!(got.len(), expected.len(), "runs of {run}");
            for (g, e) in got.iter().zip(&expected) {
                assert_eq!(
                    (&g.meter_id, g.read_at, g.value),
                    (&e.meter_id, e.read_at, e.value),
                    "runs of {run}"
                );
                assert_eq!(g.origin.source, "r.csv");
                assert_eq!(g.codes, e.codes);
            }
            // Lines restored: each read's value is its line - 2.
            assert!(
                got.iter()
                    .all(|r| r.origin.locator == format!("line {}", r.value.micros() + 2))
            );
        }
        // Nothing left in the directory: the runs were unnamed files.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
