//! Serial lines: opening a port with the settings a protocol needs, and the one thing the
//! drivers need beyond reading and writing, changing the speed.
//!
//! A Linux pseudo-terminal ignores data bits and parity (it keeps the baud rate), so 7E1 on a
//! pty is 8-bit clean: the IEC 62056-21 profile's `software_parity` adds and checks parity in
//! the codec instead, and the P1 splitter drops bit 7.

use std::path::Path;

use anyhow::Context as _;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_serial::{DataBits, Parity, SerialPort, SerialPortBuilderExt, SerialStream, StopBits};

/// Character format of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// 7 data bits, even parity, 1 stop bit (IEC 62056-21, DSMR 2.2/3).
    SevenE1,
    /// 8 data bits, even parity (M-Bus).
    EightE1,
    /// 8 data bits, no parity (DSMR 4/5; IEC 62056-21 with software parity).
    EightN1,
}

/// A byte stream whose speed can be changed.
pub trait Line: AsyncRead + AsyncWrite + Unpin + Send {
    fn set_baud(&mut self, baud: u32) -> std::io::Result<()>;
}

impl Line for SerialStream {
    fn set_baud(&mut self, baud: u32) -> std::io::Result<()> {
        self.set_baud_rate(baud).map_err(std::io::Error::other)
    }
}

/// Opens `path` exclusively (a second owner is refused) with the given speed and format.
pub fn open(path: &Path, baud: u32, format: Format) -> anyhow::Result<SerialStream> {
    let (data, parity) = match format {
        Format::SevenE1 => (DataBits::Seven, Parity::Even),
        Format::EightE1 => (DataBits::Eight, Parity::Even),
        Format::EightN1 => (DataBits::Eight, Parity::None),
    };
    tokio_serial::new(path.to_string_lossy(), baud)
        .data_bits(data)
        .parity(parity)
        .stop_bits(StopBits::One)
        .open_native_async()
        .with_context(|| format!("cannot open serial port {}", path.display()))
}

/// Speed and format of a P1 port by DSMR version.
pub fn p1_settings(dsmr: &str) -> Result<(u32, Format), String> {
    match dsmr.trim() {
        "4" | "4.0" | "4.2" | "5" | "5.0" | "5.0.2" => Ok((115_200, Format::EightN1)),
        "2" | "2.2" | "3" | "3.0" => Ok((9600, Format::SevenE1)),
        other => Err(format!("unknown DSMR version {other:?} (use 2.2, 3, 4 or 5)")),
    }
}
