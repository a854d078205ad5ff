//! wM-Bus receivers on pseudo-terminals (`meterd simulate receiver`): a stick (iM871A, Amber,
//! CUL) that answers the mode and reset commands as the device does and, once its mode is set,
//! sends a burst of telegrams in its own framing; or an SDR decoder's output (rtl_wmbus,
//! rtl_433) that starts a burst when a reader opens the port. After a burst it is silent until
//! set up again (a reset forgets the mode, as the sticks' RAM settings do). What it hears and
//! sends is reported as lines (`command ...`, `telegram HEX`, `reader attached`, `silent`) so
//! a test can follow it. Unplugging is the process ending: its pty closes and the link goes.

use std::time::Duration;

use meterd_protocols::receiver::{Kind, amber, cul, im871a, rtl_433, rtl_wmbus};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::meter::Pty;

/// What the simulated receiver hears.
#[derive(Debug, Clone)]
pub struct ReceiverOptions {
    pub kind: Kind,
    /// Meters as (id, litres at round 0).
    pub meters: Vec<(u32, u32)>,
    /// Rounds per burst (each round: one telegram per meter).
    pub count: u64,
    pub every: Duration,
    /// Each telegram is sent this many times (a meter repeating itself, heard twice).
    pub repeat: u32,
    /// The first round's number (a new process after an "unplug" carries on from here).
    pub first_round: u64,
    pub step_litres: u32,
    /// Send one corrupt frame (in the receiver's framing) at the start of each burst.
    pub bad: bool,
}

/// A Sensus iPERL-shaped T1 telegram, CRCs removed (the shape of vector R1, `mbus.md` §3.2):
/// short transport header, unencrypted, volume in litres (DIF 04 VIF 13). The access number
/// is the round, so each round is a new transmission and a repeat is the same one.
pub fn telegram(id: u32, access: u8, litres: u32) -> Vec<u8> {
    let mut f = vec![0, 0x44, 0xAE, 0x4C];
    let digits = format!("{:08}", id % 100_000_000);
    // The identification number is 8 BCD digits, least significant byte first.
    for pair in digits.as_bytes().chunks(2).rev() {
        f.push(((pair[0] - b'0') << 4) | (pair[1] - b'0'));
    }
    f.extend([0x68, 0x07, 0x7A, access, 0x00, 0x00, 0x00, 0x04, 0x13]);
    f.extend(litres.to_le_bytes());
    f.extend([0x02, 0x3B, 0x00, 0x00]);
    f[0] = (f.len() - 1) as u8;
    f
}

/// A telegram in the receiver's framing.
pub fn framed(kind: Kind, frame: &[u8]) -> Vec<u8> {
    match kind {
        Kind::Im871a => im871a::indication(frame, Some(0x40), Some(0x0001_0000)),
        Kind::Amber => amber::transparent(frame, 0x40),
        Kind::Cul => cul::line(frame, 0x2A, 0x40).into_bytes(),
        Kind::RtlWmbus => rtl_wmbus::line("T1", frame, -48, &jiff::Timestamp::now().to_string()).into_bytes(),
        Kind::Rtl433 => rtl_433::line("T", frame).into_bytes(),
    }
}

/// A corrupt frame in the receiver's framing: each names a different check when refused.
pub fn corrupt(kind: Kind, frame: &[u8]) -> Vec<u8> {
    match kind {
        Kind::Im871a => {
            let mut w = im871a::indication(frame, None, None);
            if let Some(last) = w.last_mut() {
                *last ^= 0x01;
            }
            w
        }
        Kind::Amber => {
            let mut w = amber::data_ind(frame, 0x40);
            if let Some(last) = w.last_mut() {
                *last ^= 0x55;
            }
            w
        }
        Kind::Cul => format!("b{}G0\r\n", hex::encode_upper(frame)).into_bytes(),
        Kind::RtlWmbus => rtl_wmbus::line("T1", frame, -48, "2026-01-01T00:00:00Z")
            .replacen(";1;1;", ";0;1;", 1)
            .into_bytes(),
        Kind::Rtl433 => b"{\"model\":\"Wireless-MBus\",\"mode\":\"T\"}\n".to_vec(),
    }
}

/// Runs the receiver until cancelled; `say` reports what happens, one line each.
pub async fn run(
    mut pty: Pty,
    opts: ReceiverOptions,
    cancel: CancellationToken,
    say: &mut (dyn FnMut(&str) + Send),
) -> anyhow::Result<()> {
    let kind = opts.kind;
    let mut attached = false;
    let mut armed = false;
    let mut remaining = 0u64;
    let mut round = opts.first_round;
    let mut burst_start = false;
    let mut next_tick = Instant::now();
    let mut buf = [0u8; 1024];
    let mut pending: Vec<u8> = Vec::new();
    while !cancel.is_cancelled() {
        // A pending read means a reader holds the slave open; EIO (None) that nobody does.
        let got = tokio::select! {
            () = cancel.cancelled() => break,
            r = tokio::time::timeout(Duration::from_millis(50), pty.read(&mut buf)) => r,
        };
        let now_attached = !matches!(got, Ok(None));
        if now_attached != attached {
            attached = now_attached;
            say(if attached { "reader attached" } else { "reader gone" });
            if !attached {
                armed = false;
                pending.clear();
            } else if !kind.sets_mode() {
                // An SDR decoder streams to whoever reads.
                armed = true;
                remaining = opts.count;
                burst_start = true;
            }
        }
        if let Ok(Some(n)) = got {
            pending.extend_from_slice(&buf[..n]);
            for c in commands(kind, &mut pending) {
                say(&format!("command {}", c.heard));
                if !c.answer.is_empty() {
                    pty.write(&c.answer).await;
                }
                match c.effect {
                    Effect::Arm => {
                        armed = true;
                        remaining = opts.count;
                        burst_start = true;
                    }
                    Effect::Disarm => armed = false,
                    Effect::None => {}
                }
            }
        }
        if Instant::now() < next_tick {
            continue;
        }
        next_tick = Instant::now() + opts.every;
        if !(attached && armed && remaining > 0) {
            continue;
        }
        if burst_start && opts.bad {
            let first = opts.meters.first().copied().unwrap_or((1, 0));
            pty.write(&corrupt(kind, &telegram(first.0, 0xEE, first.1))).await;
            say("bad frame sent");
        }
        burst_start = false;
        for &(id, litres) in &opts.meters {
            let r = u32::try_from(round).unwrap_or(u32::MAX);
            let t = telegram(
                id,
                (round % 256) as u8,
                litres.wrapping_add(r.wrapping_mul(opts.step_litres)),
            );
            for _ in 0..opts.repeat.max(1) {
                pty.write(&framed(kind, &t)).await;
            }
            say(&format!("telegram {}", hex::encode_upper(&t)));
        }
        round += 1;
        remaining -= 1;
        if remaining == 0 {
            say("silent");
        }
    }
    Ok(())
}

enum Effect {
    Arm,
    Disarm,
    None,
}

struct Command {
    heard: String,
    answer: Vec<u8>,
    effect: Effect,
}

/// The host's commands complete in `pending`, answered as the device does.
fn commands(kind: Kind, pending: &mut Vec<u8>) -> Vec<Command> {
    let mut out = Vec::new();
    match kind {
        Kind::Im871a => loop {
            let Some(start) = pending.iter().position(|&b| b == im871a::START_OF_FRAME) else {
                pending.clear();
                break;
            };
            pending.drain(..start);
            match im871a::parse(pending) {
                Ok((m, used)) => {
                    pending.drain(..used);
                    let reply = |id: u8, payload: Vec<u8>| {
                        im871a::encode(
                            &im871a::Message {
                                endpoint: im871a::DEVMGMT,
                                id,
                                payload,
                                timestamp: None,
                                rssi: None,
                            },
                            false,
                        )
                    };
                    out.push(match (m.endpoint, m.id) {
                        (im871a::DEVMGMT, im871a::SET_CONFIG_REQ) => Command {
                            heard: format!("set-config {}", hex::encode_upper(&m.payload)),
                            answer: reply(im871a::SET_CONFIG_RSP, vec![0]),
                            effect: Effect::Arm,
                        },
                        (im871a::DEVMGMT, im871a::RESET_REQ) => Command {
                            heard: "reset".into(),
                            answer: reply(im871a::RESET_RSP, vec![0]),
                            effect: Effect::Disarm,
                        },
                        (im871a::DEVMGMT, im871a::PING_REQ) => Command {
                            heard: "ping".into(),
                            answer: reply(im871a::PING_RSP, vec![]),
                            effect: Effect::None,
                        },
                        (ep, id) => Command {
                            heard: format!("endpoint {ep} message 0x{id:02X}"),
                            answer: Vec::new(),
                            effect: Effect::None,
                        },
                    });
                }
                Err(meterd_protocols::Error::Incomplete { .. }) => break,
                Err(_) => {
                    pending.drain(..1);
                }
            }
        },
        Kind::Amber => loop {
            let Some(start) = pending.iter().position(|&b| b == amber::START) else {
                pending.clear();
                break;
            };
            pending.drain(..start);
            match amber::parse_command(pending) {
                Ok((cmd, payload, used)) => {
                    pending.drain(..used);
                    out.push(match cmd {
                        amber::CMD_SET_MODE_REQ => Command {
                            heard: format!("set-mode {}", hex::encode_upper(&payload)),
                            answer: amber::command(amber::CMD_SET_MODE_REQ | amber::CONFIRM, &[0]),
                            effect: Effect::Arm,
                        },
                        amber::CMD_RESET_REQ => Command {
                            heard: "reset".into(),
                            answer: amber::command(amber::CMD_RESET_REQ | amber::CONFIRM, &[0]),
                            effect: Effect::Disarm,
                        },
                        c => Command {
                            heard: format!("command 0x{c:02X}"),
                            answer: Vec::new(),
                            effect: Effect::None,
                        },
                    });
                }
                Err(meterd_protocols::Error::Incomplete { .. }) => break,
                Err(_) => {
                    pending.drain(..1);
                }
            }
        },
        Kind::Cul => {
            while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                let line = String::from_utf8_lossy(&line).trim().to_owned();
                if line.is_empty() {
                    continue;
                }
                let (answer, effect) = match line.as_str() {
                    "brt" | "brc" | "brs" => (
                        format!("{} mode\r\n", &line[2..].to_uppercase()).into_bytes(),
                        Effect::Arm,
                    ),
                    "V" => (b"V 1.67 CUL868 (simulated)\r\n".to_vec(), Effect::None),
                    _ => (Vec::new(), Effect::None),
                };
                out.push(Command {
                    heard: line,
                    answer,
                    effect,
                });
            }
        }
        Kind::RtlWmbus | Kind::Rtl433 => pending.clear(),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_telegram_is_the_published_vector_r1() {
        assert_eq!(
            hex::encode_upper(telegram(33_225_544, 0x55, 123_529)),
            "1844AE4C4455223368077A55000000041389E20100023B0000"
        );
    }

    #[test]
    fn commands_are_answered_as_the_device_does() {
        let mut p = im871a::set_link_mode(meterd_protocols::receiver::LinkMode::T1);
        p.extend(im871a::reset());
        let c = commands(Kind::Im871a, &mut p);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].heard, "set-config 00020300");
        assert_eq!(c[1].heard, "reset");
        let mut p = b"X21\r\nbrt\r\n".to_vec();
        let c = commands(Kind::Cul, &mut p);
        assert_eq!(c.iter().map(|c| c.heard.as_str()).collect::<Vec<_>>(), ["X21", "brt"]);
    }
}
