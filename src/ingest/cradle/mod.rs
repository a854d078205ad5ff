//! Handheld recorders in cradles on serial ports: unload their reads, load their routes.
//!
//! - [`session`]: one docking, the tokio driver around the sans-IO `Host` of
//!   `meterd_protocols::cradle` (reads → [`crate::ingest::accept_reads_with`] with the
//!   recorder's watermark, then `committed`, the only path to CLEAR).
//! - [`convert`]: store meters → route records; unloaded records → reads or skipped meters.
//! - [`config`]: the `[[cradle]]` section of `meterd.toml`.
//! - [`daemon`]: the `[[cradle]]` daemon component, one task per port.

pub mod config;
pub mod convert;
pub mod daemon;
pub mod routes;
pub mod session;

pub use config::CradleConfig;
pub use session::{Observer, SessionOptions, SessionReport, run_session};
