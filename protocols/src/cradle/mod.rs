//! The handheld recorder cradle link: frames, sliding window, session messages and records.
//!
//! Sans-IO: nothing here reads a port or a clock. The daemon's tokio driver, the recorder
//! simulator, the tests and the benchmark all drive the same two state machines, [`Host`]
//! (meterd's end) and `Recorder` (the handheld; feature `testing`), by passing bytes and
//! `now: Duration` in and taking bytes, deadlines and events out. `now` is monotonic time since
//! any fixed origin (e.g. the driver's start): only differences matter, except that `SET_CLOCK`
//! sends `HostConfig::clock_at_start + now`.
//!
#![doc = include_str!("PROTOCOL.md")]

pub mod ascii;
pub mod binary;
pub mod frame;
pub mod host;
mod link;
pub mod message;
pub mod record;
#[cfg(any(test, feature = "testing"))]
pub mod recorder;
#[cfg(any(test, feature = "testing"))]
pub mod sim;

pub use frame::{Frame, FrameDecoder, FrameKind, parse_frame};
pub use host::{CommandError, Host, HostConfig, HostEvent, Phase, SessionFailure, SessionSummary};
pub use link::{LineTiming, LinkStats};
pub use message::{DeviceInfo, Firmware, Message};
pub use record::{ReadRecord, ReadTime, ReadType, Route, RouteMeter, TroubleCode, Verified};
#[cfg(any(test, feature = "testing"))]
pub use recorder::{Recorder, RecorderConfig, RecorderData, RecorderEvent};

#[cfg(test)]
mod tests;
