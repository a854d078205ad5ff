//! `meterd simulate ...`: simulated devices for tests, demos, benchmarks and training, one file
//! per kind of device.

pub mod gateway;
mod handheld;
mod meter;
mod receiver;

use clap::Subcommand;

use super::Env;

/// The simulators.
#[derive(Debug, Subcommand)]
pub enum SimulateCmd {
    /// Play a handheld recorder docked in a cradle: creates a pseudo-terminal and links PATH
    /// to it, so `meterd dock --port PATH` (or a `[[cradle]]` of the daemon) talks to it.
    Handheld(handheld::HandheldArgs),
    /// Radio meters heard by gateways that publish rtlamr JSON and raw-hex envelopes to an MQTT
    /// broker (QoS 1; waits until the broker acknowledged every message).
    Gateway(gateway::GatewayArgs),
    /// A meter on a pty: IEC 62056-21 optical port, M-Bus slaves, or a DSMR P1 port.
    Meter(meter::MeterArgs),
    /// A wM-Bus receiver on a pty: an iM871A, Amber or CUL stick answering its mode and reset
    /// commands, or rtl_wmbus / rtl_433 output; sends telegrams in the device's framing.
    Receiver(receiver::ReceiverArgs),
}

pub fn run(env: &Env, cmd: SimulateCmd) -> anyhow::Result<()> {
    match cmd {
        SimulateCmd::Handheld(args) => handheld::run(env, args),
        SimulateCmd::Gateway(args) => gateway::run(env, args),
        SimulateCmd::Meter(args) => meter::run(env, args),
        SimulateCmd::Receiver(args) => receiver::run(env, args),
    }
}
