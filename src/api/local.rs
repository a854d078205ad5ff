//! A request run in process, when no daemon answers: the same command code over a store
//! opened here, with the same role check for the process's user (root and the store file's
//! owner are admins: see [`access`](super::access)).

use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use anyhow::anyhow;

use super::commands::Transfer;
use super::files::{OutFile, Upload, UploadFile};

/// The uid owning the store file, or the data directory when there is no store yet (whoever
/// creates it owns it).
pub fn store_owner(data_dir: &Path) -> Option<u32> {
    let file = data_dir.join(crate::store::STORE_FILE);
    std::fs::metadata(&file)
        .or_else(|_| std::fs::metadata(data_dir))
        .ok()
        .map(|m| m.uid())
}

/// The files of a command run in process: the file the client opened, the file it writes.
pub struct LocalTransfer {
    pub upload: Option<UploadFile>,
    pub out: Option<OutFile>,
}

impl Transfer for LocalTransfer {
    fn upload(&mut self) -> anyhow::Result<Upload> {
        self.upload
            .take()
            .ok_or_else(|| anyhow!("no file was read for this command"))?
            .into_upload()
    }

    fn deliver(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        let mut out = self
            .out
            .take()
            .ok_or_else(|| anyhow!("no file was prepared for this command"))?;
        out.write(bytes)?;
        out.persist()
    }
}
