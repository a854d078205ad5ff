//! The client API of meterd: what the CLI and the review screen ask, and how, shared by the
//! daemon that answers over its control socket and by the clients (the way mini-redis's `cmd`
//! types serve its server and client).
//!
//! # Layout
//! - [`frame`]: length-prefixed JSON frames (u32 length + JSON, at most [`frame::MAX_FRAME`]).
//! - [`proto`]: the messages both ways and the typed [`Request`]s (never an argv string), the
//!   [`Role`]s.
//! - [`commands`]: the store commands (arguments and execution), run by the daemon for a
//!   client and by the CLI in process, with the same output.
//! - [`identity`], [`access`], [`config`]: who the caller is (from the OS), what their role
//!   allows, `[access]`.
//! - [`text`]: the check every text a client sends goes through.
//! - [`client`]: the blocking client (connect, handshake, requests), [`files`]: the client's
//!   side of files (read what a command imports, write what it produces, durably),
//!   [`local`]: a request run in process, [`remote`]: the review screen's backend over the
//!   socket.
//!
//! # Arrows
//! `daemon` → `api` → (`store`, `review`, `billing`, `ingest`); `cli` → `api`. This module
//! never imports `daemon` or `cli`: the daemon's server loop (`daemon::control`) calls
//! [`commands::run`] and the review functions through these types.
//!
//! # Protocol version
//! [`PROTOCOL_VERSION`] is checked at connect: a client and a daemon of different versions
//! are refused with both numbers. Bump it whenever a message or request changes shape.

pub mod access;
pub mod answer;
pub mod client;
pub mod commands;
pub mod config;
pub mod files;
pub mod frame;
pub mod identity;
pub mod local;
pub mod proto;
pub mod remote;
pub mod text;

pub use access::Refusal;
pub use commands::Command;
pub use config::AccessConfig;
pub use identity::Caller;
pub use proto::{Reply, Request, Role, ToClient, ToDaemon};

/// The version of the control protocol this build speaks.
pub const PROTOCOL_VERSION: u32 = 2;

/// Time a peer has for the handshake.
pub const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// Time for one frame of a request (a request, a chunk of a file, the answer about a file).
pub const FRAME_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// Time for a whole file a command reads (512 MiB at under 1 MB/s still fits): a client
/// trickling chunks cannot hold one of the daemon's few upload slots for longer.
pub const UPLOAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);
/// A connection without a request for this long is closed.
pub const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);
