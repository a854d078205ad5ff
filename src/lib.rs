//! meterd: a meter data collector for water, gas and electric utilities.
//!
//! # Layout
//! The data flows one way, one folder per stage:
//! - [`ingest`]: where reads come from (files, handheld cradles on serial ports, MQTT gateways).
//! - [`store`]: the durable store behind a narrow interface (redb today).
//! - [`vee`]: validation, estimation, editing: the rules that decide whether a read is billable.
//! - [`review`]: what clerks do with the reads VEE held back.
//! - [`billing`]: validated reads handed to the billing system in batches, each read once.
//!
//! Wire and file formats live in the sans-IO `meterd-protocols` crate.
