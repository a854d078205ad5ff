//! The client's side of files: a command that reads a file gets its bytes from the client,
//! which read it with its own rights; a command that produces a file hands the bytes to the
//! client, which writes it as itself, durably. The daemon never opens a path a client names,
//! and in process the same functions run.

use std::fs::File;
use std::io::{ErrorKind, Read as _, Write as _};
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};

use super::proto::CHUNK;

/// Most bytes a file a command reads or produces may have. Checked in the client and again in
/// the daemon (which never allocates more than it received).
pub const MAX_FILE: u64 = 512 << 20;

fn mib(n: u64) -> u64 {
    n >> 20
}

/// Reads the file a command imports, whole, as the calling user. Errors name the file as
/// given (`reads.csv: No such file or directory (os error 2)`) and never show its contents.
pub fn read_upload(path: &Path) -> anyhow::Result<Vec<u8>> {
    let shown = path.display();
    let mut f = File::open(path).map_err(|e| anyhow!("{shown}: {e}"))?;
    let too_large = || {
        anyhow!(
            "{shown}: larger than the {} MiB a command may read; split it into smaller files",
            mib(MAX_FILE)
        )
    };
    if let Ok(m) = f.metadata()
        && m.is_file()
        && m.len() > MAX_FILE
    {
        return Err(too_large());
    }
    // A device or a growing file has no useful length: read, and stop at the limit.
    let mut bytes = Vec::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match f.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(anyhow!("{shown}: {e}")),
        };
        if n == 0 {
            return Ok(bytes);
        }
        if (bytes.len() + n) as u64 > MAX_FILE {
            return Err(too_large());
        }
        bytes.extend_from_slice(&buf[..n]);
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
    fn uploads_name_the_file_and_stop_at_the_limit() {
        let e = read_upload(Path::new("missing.csv")).unwrap_err().to_string();
        assert_eq!(e, "missing.csv: No such file or directory (os error 2)");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.csv");
        std::fs::write(&p, "a,b\n").unwrap();
        assert_eq!(read_upload(&p).unwrap(), b"a,b\n");
    }
}
