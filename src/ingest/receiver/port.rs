//! A receiver's port: a serial device (set up 8N1 raw, like the cradles) or a FIFO that an SDR
//! decoder writes into. meterd never starts the decoder: the daemon runs no command a
//! configuration names.

use std::os::unix::fs::FileTypeExt as _;
use std::path::Path;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

pub enum Port {
    Serial(tokio_serial::SerialStream),
    /// Opened read-write so that the decoder restarting (its write end closing) is not an
    /// end of file; nothing is ever written to it.
    Fifo(tokio::net::unix::pipe::Receiver),
}

impl Port {
    pub fn open(path: &Path, baud: u32) -> std::io::Result<Port> {
        let meta = std::fs::metadata(path)?;
        if meta.file_type().is_fifo() {
            let rx = tokio::net::unix::pipe::OpenOptions::new()
                .read_write(true)
                .open_receiver(path)?;
            return Ok(Port::Fifo(rx));
        }
        crate::ingest::cradle::daemon::open_port(path, baud).map(Port::Serial)
    }

    pub fn is_fifo(&self) -> bool {
        matches!(self, Port::Fifo(_))
    }

    /// Reads what arrived; 0 is the end (device gone).
    pub async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Port::Serial(s) => s.read(buf).await,
            Port::Fifo(f) => f.read(buf).await,
        }
    }

    /// Sends a command (a FIFO takes none).
    pub async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Port::Serial(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
            Port::Fifo(_) => Ok(()),
        }
    }
}
