//! The client's side of files: a command that reads a file gets its bytes from the client,
//! which opened it with its own rights and streams it chunk by chunk (never holding it); the
//! daemon spools them to a private temporary file of its own ([`spool`]) and the command reads
//! that, from its start, as often as it needs ([`Upload`]). A command that produces a file hands
//! the bytes to the client, which writes it as itself, durably. The daemon never opens a path a
//! client names, and in process the same functions run (over the local file).

use std::fs::File;
use std::io::{ErrorKind, Read as _, Write as _};
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};

use super::proto::CHUNK;

/// Most bytes a file a command reads or produces may have. Checked in the client and again in
/// the daemon, which spools what it receives to disk: memory no longer grows with the file, so
/// the limit now bounds the disk a client can fill (a spooled file, and for reads the sorted
/// runs, about as large again, for each of the daemon's two upload
/// slots) and the time an endless input (`/dev/zero`) streams before it is refused. Kept at
/// 512 MiB (about 12 million reads): raised to 2 GiB, the refusal of an endless input took
/// over 2 minutes in the debug test suite.
pub const MAX_FILE: u64 = 512 << 20;

fn mib(n: u64) -> u64 {
    n >> 20
}

/// The file a command imports, opened (not read) as the calling user; the client streams it.
pub struct UploadFile {
    file: File,
    shown: String,
}

/// Opens the file a command imports as the calling user. Errors name the file as given
/// (`reads.csv: No such file or directory (os error 2)`) and never show its contents; a regular
/// file over [`MAX_FILE`] is refused here, before anything is sent.
pub fn open_upload(path: &Path) -> anyhow::Result<UploadFile> {
    let shown = path.display().to_string();
    let file = File::open(path).map_err(|e| anyhow!("{shown}: {e}"))?;
    if let Ok(m) = file.metadata()
        && m.is_file()
        && m.len() > MAX_FILE
    {
        return Err(too_large(&shown));
    }
    Ok(UploadFile { file, shown })
}

fn too_large(shown: &str) -> anyhow::Error {
    anyhow!(
        "{shown}: larger than the {} MiB a command may read; split it into smaller files",
        mib(MAX_FILE)
    )
}

impl UploadFile {
    /// Hands the file to `send` in chunks of at most [`CHUNK`] bytes, as read: never held. A
    /// device or a growing file has no useful length: read, and stop at the limit.
    pub fn stream(&mut self, send: &mut dyn FnMut(&[u8]) -> anyhow::Result<()>) -> anyhow::Result<()> {
        let mut buf = vec![0u8; CHUNK];
        let mut total: u64 = 0;
        loop {
            let n = match self.file.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(anyhow!("{}: {e}", self.shown)),
            };
            if n == 0 {
                return Ok(());
            }
            total += n as u64;
            if total > MAX_FILE {
                return Err(too_large(&self.shown));
            }
            send(&buf[..n])?;
        }
    }

    /// The file for a command run in process: a regular file as it is (read from its start
    /// by each pass); anything else (a pipe, a device) spooled first to a private temporary
    /// file, since an import reads its file twice.
    pub fn into_upload(mut self) -> anyhow::Result<Upload> {
        let scratch = std::env::temp_dir();
        let regular = self.file.metadata().map(|m| m.is_file()).unwrap_or(false);
        if regular {
            return Ok(Upload {
                file: self.file,
                scratch,
            });
        }
        let mut spooled = spool(&scratch)?;
        self.stream(&mut |chunk| spooled.write(chunk))?;
        spooled.finish()
    }
}

/// The file a command reads: a file it reads from its start ([`crate::ingest::source::Source`])
/// as often as it needs, and the directory for its own temporary files (sorted runs).
pub struct Upload {
    pub file: File,
    pub scratch: PathBuf,
}

/// A private temporary file receiving an upload: unnamed (`O_TMPFILE`: no other process can open
/// it, and it is gone when closed, even after a crash), created by the daemon itself in `dir`;
/// refuses more than [`MAX_FILE`] bytes.
pub struct Spool {
    file: File,
    scratch: PathBuf,
    written: u64,
}

/// Starts spooling an upload into `dir` (the daemon: its data directory).
pub fn spool(dir: &Path) -> anyhow::Result<Spool> {
    let file = tempfile::tempfile_in(dir).map_err(|e| {
        anyhow!(
            "cannot create a temporary file in {} for the upload: {e}",
            dir.display()
        )
    })?;
    Ok(Spool {
        file,
        scratch: dir.to_owned(),
        written: 0,
    })
}

impl Spool {
    /// Appends a chunk; refused past [`MAX_FILE`].
    pub fn write(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.written += bytes.len() as u64;
        if self.written > MAX_FILE {
            bail!("the file is larger than the {} MiB a command may read", mib(MAX_FILE));
        }
        self.file
            .write_all(bytes)
            .map_err(|e| anyhow!("cannot write the upload to {}: {e}", self.scratch.display()))
    }

    /// Bytes received so far.
    pub fn len(&self) -> u64 {
        self.written
    }

    pub fn is_empty(&self) -> bool {
        self.written == 0
    }

    /// The whole upload, for the command.
    pub fn finish(self) -> anyhow::Result<Upload> {
        Ok(Upload {
            file: self.file,
            scratch: self.scratch,
        })
    }
}

/// A file the client writes for a command: a temporary file next to the target, renamed over
/// it once complete and synced, then the directory synced, so the target is either the old
/// file or the whole new one, even after a crash.
pub struct OutFile {
    target: PathBuf,
    dir: PathBuf,
    tmp: tempfile::NamedTempFile,
    written: u64,
    /// Most bytes written ([`MAX_FILE`] unless [`Self::unlimited`]).
    limit: u64,
}

fn kind(t: std::fs::FileType) -> &'static str {
    if t.is_dir() {
        "a directory"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_fifo() {
        "a pipe"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else {
        "not a regular file"
    }
}

impl OutFile {
    /// Prepares writing `target` before the command runs, so that a path the user cannot
    /// write fails here, before anything changes in the store. Refuses to replace anything
    /// but a regular file, and the files in `protected` (the store).
    pub fn prepare(target: &Path, protected: &[PathBuf]) -> anyhow::Result<Self> {
        let shown = target.display();
        if let Ok(m) = std::fs::metadata(target) {
            if !m.is_file() {
                bail!("{shown} is {}: not replacing it with a file", kind(m.file_type()));
            }
            for p in protected {
                if let Ok(pm) = std::fs::metadata(p)
                    && (pm.dev(), pm.ino()) == (m.dev(), m.ino())
                {
                    bail!("{shown} is the meterd store: not replacing it with a file");
                }
            }
        }
        let dir = target
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_owned();
        let tmp = tempfile::Builder::new()
            .prefix(".meterd-")
            .tempfile_in(&dir)
            .map_err(|e| anyhow!("cannot write {shown}: cannot create a file in {}: {e}", dir.display()))?;
        Ok(OutFile {
            target: target.to_owned(),
            dir,
            tmp,
            written: 0,
            limit: MAX_FILE,
        })
    }

    /// Without the size limit (a store backup is as large as the store).
    pub fn unlimited(mut self) -> Self {
        self.limit = u64::MAX;
        self
    }

    /// Appends bytes (a chunk from the daemon, or the whole file in process).
    pub fn write(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.written += bytes.len() as u64;
        if self.written > self.limit {
            bail!(
                "{}: the file is larger than {} MiB; not written",
                self.target.display(),
                mib(MAX_FILE)
            );
        }
        self.tmp
            .write_all(bytes)
            .with_context(|| format!("writing {}", self.target.display()))
    }

    /// Syncs the file, renames it over the target and syncs the directory.
    pub fn persist(self) -> anyhow::Result<()> {
        let shown = self.target.display().to_string();
        self.tmp
            .as_file()
            .sync_all()
            .with_context(|| format!("writing {shown}"))?;
        self.tmp
            .persist(&self.target)
            .map_err(|e| anyhow!("writing {shown}: {}", e.error))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("syncing the directory of {shown}"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_files_replace_only_regular_files_and_never_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("batch.csv");
        std::fs::write(&target, "old").unwrap();
        let mut f = OutFile::prepare(&target, &[]).unwrap();
        f.write(b"new").unwrap();
        f.persist().unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");

        let e = OutFile::prepare(dir.path(), &[]).err().unwrap().to_string();
        assert!(e.contains("is a directory"), "{e}");
        let store = dir.path().join("meterd.redb");
        std::fs::write(&store, "store").unwrap();
        let e = OutFile::prepare(&store, std::slice::from_ref(&store))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("is the meterd store"), "{e}");
        let e = OutFile::prepare(Path::new("/nonexistent-dir/x.csv"), &[])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("cannot create a file in /nonexistent-dir"), "{e}");
        // Nothing left behind by a prepared file never persisted.
        drop(OutFile::prepare(&target, &[]).unwrap());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn uploads_name_the_file_and_stream_in_chunks() {
        let e = open_upload(Path::new("missing.csv")).err().unwrap().to_string();
        assert_eq!(e, "missing.csv: No such file or directory (os error 2)");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.csv");
        let body: Vec<u8> = (0..CHUNK * 2 + 10).map(|i| (i % 251) as u8).collect();
        std::fs::write(&p, &body).unwrap();
        let mut chunks = Vec::new();
        open_upload(&p)
            .unwrap()
            .stream(&mut |c| {
                chunks.push(c.to_vec());
                Ok(())
            })
            .unwrap();
        assert!(chunks.iter().all(|c| c.len() <= CHUNK));
        assert_eq!(chunks.concat(), body);
        // Spooled into a private file that leaves nothing behind.
        let mut s = spool(dir.path()).unwrap();
        for c in &chunks {
            s.write(c).unwrap();
        }
        assert_eq!(s.len(), body.len() as u64);
        let up = s.finish().unwrap();
        let mut back = Vec::new();
        crate::ingest::source::Source::open(&up.file)
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, body);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
