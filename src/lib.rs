//! meterd: a meter data collector for water, gas and electric utilities.
//!
//! # Layout
//! The data flows one way, one folder per stage:
//! - [`ingest`]: where reads come from (files, handheld cradles on serial ports, MQTT gateways),
//!   and [`ingest::accept_reads`], the one entry every source uses to hand reads to the store.
//! - [`store`]: the durable store behind a narrow interface (redb today).
//! - [`vee`]: validation, estimation, editing: the rules that decide whether a read is billable.
//! - [`review`]: what clerks do with the reads VEE held back.
//! - [`billing`]: validated reads handed to the billing system in batches, each read once.
//!
//! Shared by all stages: [`model`] (meters, reads, flags, batches) and [`config`].
//! At the edge: [`api`] (the client API: typed requests over the daemon's control socket, and
//! the store commands both the daemon and the CLI run), [`cli`] (the `meterd` commands),
//! [`daemon`] (`meterd run`), [`secrets`] (key files with permission checks) and [`demo`] (the
//! sample town). The arrows run one way: `daemon` → `api`, `cli` → `api`; `api` imports
//! neither.
//! Beside the production paths: `simulate` (simulated devices for `meterd simulate`, the demo,
//! the tests and the benches; the default feature `simulate`).
//! Wire and file formats live in the sans-IO `meterd-protocols` crate.
#![forbid(unsafe_code)]

#[macro_use]
mod macros;

pub mod api;
pub mod billing;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod demo;
/// What each fuzz target checks, shared by the targets and the corpus replay test.
#[doc(hidden)]
pub mod fuzz_checks;
pub mod ingest;
pub mod metrics;
pub mod model;
pub mod review;
pub mod secrets;
#[cfg(feature = "simulate")]
pub mod simulate;
pub mod store;
pub mod tls_roots;
pub mod vee;
