//! The optical probe's side of an IEC 62056-21 mode C session, as a sans-IO state machine.
//!
//! The caller owns the serial port and one timer. It feeds received bytes to
//! [`ProbeSession::on_bytes`], calls [`ProbeSession::on_timeout`] when the timer fires, and carries
//! out the [`Action`]s the session queues, in order:
//! - [`Action::Send`]: write the bytes and wait until they have left the port (`tcdrain`), since
//!   the next action may change the line speed;
//! - [`Action::SetBaud`]: change the line speed;
//! - [`Action::Timer`]: (re)arm the one timer; [`Action::CancelTimer`]: disarm it;
//! - [`Action::Done`]: the session is over; [`ProbeSession::outcome`] holds the readout or error.
//!
//! Flow (readout mode): optional battery wake-up (NULs, then a pause), `/?addr!` at 300 baud,
//! identification, wait the meter's reaction time, option select `ACK V Z Y` at the old speed, then
//! switch to the agreed speed, receive the data message, check its BCC and answer NAK (the meter
//! repeats) up to `max_repeats` times. A meter that stays silent after the switch gets a second
//! sign-on without switching when `fallback_to_300` is set (meters that ignore the rate they
//! proposed). Programming mode reads chosen registers with R1 (or R5) after the password exchange.

use std::collections::VecDeque;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::message::{
    self, ACK, BlockEnd, Command, DataBlock, Identification, Message, Mode, NAK, OptionSelect, Request,
};
use crate::decoded::Decoded;
use crate::error::{Check, Error};

/// What the driver must do next. Shared by the probe and the meter simulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write these bytes and wait until they are sent.
    Send(Vec<u8>),
    /// Change the line speed (data format stays 7E1, or 8N1 with software parity).
    SetBaud(u32),
    /// Arm the timer (replacing an armed one); call `on_timeout` when it fires.
    Timer(Duration),
    /// Disarm the timer.
    CancelTimer,
    /// The session is over.
    Done,
}

/// Battery-powered meters sleep until woken by a train of NULs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WakeUp {
    /// NULs to send (65 at 300 baud last about 2.2 s, which is what the meters want).
    pub nuls: usize,
    /// Silence between the NULs and the sign-on (1.5–1.7 s).
    #[serde(rename = "pause_ms", with = "millis")]
    pub pause: Duration,
}

impl Default for WakeUp {
    fn default() -> Self {
        WakeUp {
            nuls: 65,
            pause: Duration::from_millis(1600),
        }
    }
}

/// Readout of the whole data message, or reading chosen registers in programming mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", deny_unknown_fields)]
pub enum ReadMode {
    /// Mode control character `0`: the meter sends its readout list.
    Readout,
    /// Mode control character `1`: password exchange, then one read command per register.
    Registers {
        /// Command type of the read: `b'1'` (R1) normally, `b'5'` (R5) for meters that want it.
        #[serde(with = "ascii_char")]
        read_command: u8,
        /// Sent with P1 when the meter asks for a password.
        #[serde(default)]
        password: Option<String>,
        /// Register addresses to read, e.g. `1.8.0`.
        addresses: Vec<String>,
    },
}

/// Per-meter-type behaviour of a probe session. Deserialises from a meter-type profile in the
/// daemon's configuration (durations in milliseconds, characters as one-character strings):
/// `{"baud_switch": false, "protocol_char": "2", "mode": {"kind": "registers", "read_command":
/// "5", "addresses": ["1.8.0"]}, "reaction_delay_ms": 300}`; unknown keys are refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProbeConfig {
    /// Device address in the sign-on; empty for the one meter in front of the probe.
    pub address: String,
    /// Battery wake-up before every sign-on.
    pub wake_up: Option<WakeUp>,
    /// Switch to the rate the meter proposes. Off for meters that ignore their own proposal.
    pub baud_switch: bool,
    /// When nothing arrives after a switch, sign on again and stay at 300 baud.
    pub fallback_to_300: bool,
    /// Never go faster than this.
    pub max_baud: u32,
    /// Protocol control character V of the option select (`0`; `2` for APA NORAX).
    #[serde(with = "ascii_char")]
    pub protocol_char: u8,
    pub mode: ReadMode,
    /// Wait before each message to the meter; `None` uses 1.25 × the reaction time the
    /// identification announces (20 ms or 200 ms).
    #[serde(rename = "reaction_delay_ms", with = "opt_millis")]
    pub reaction_delay: Option<Duration>,
    /// Wait between the option select having left the port (after `tcdrain`) and the speed
    /// change. A meter with a 20 ms reaction time answers at the new speed soon after.
    #[serde(rename = "switch_delay_ms", with = "millis")]
    pub switch_delay: Duration,
    /// Silence after which the meter is taken not to answer.
    #[serde(rename = "response_timeout_ms", with = "millis")]
    pub response_timeout: Duration,
    /// NAKs sent for one block before the session fails.
    pub max_repeats: u32,
    /// Sign-on attempts when no identification arrives.
    pub sign_on_attempts: u32,
    /// Add and check 7E1 parity in software (for ports, such as a Linux pty, that ignore 7E1).
    pub software_parity: bool,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig {
            address: String::new(),
            wake_up: None,
            baud_switch: true,
            fallback_to_300: true,
            max_baud: 19_200,
            protocol_char: b'0',
            mode: ReadMode::Readout,
            reaction_delay: None,
            switch_delay: Duration::ZERO,
            response_timeout: Duration::from_millis(2000),
            max_repeats: 3,
            sign_on_attempts: 2,
            software_parity: false,
        }
    }
}

/// What a successful session brings home.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readout {
    pub identification: Identification,
    /// The data lines received, ending with the `!` line.
    pub data: Vec<u8>,
    /// Line speed of the data transfer.
    pub baud: u32,
    /// The meter did not answer at the rate it proposed and was read at 300 baud instead
    /// (worth setting `baud_switch = false` for this meter type).
    pub fell_back_to_300: bool,
    /// NAKs sent for corrupt blocks.
    pub naks: u32,
}

impl Readout {
    /// The readout in the form [`super::decode`] takes: identification line + data message.
    pub fn capture(&self) -> Vec<u8> {
        let mut out = self
            .identification
            .encode()
            .unwrap_or_else(|_| format!("/{}\r\n", self.identification.text()).into_bytes());
        out.extend_from_slice(
            &DataBlock {
                data: self.data.clone(),
                end: BlockEnd::Etx,
            }
            .encode(),
        );
        out
    }

    pub fn decode(&self) -> crate::error::Result<Decoded> {
        super::decode(&self.capture())
    }
}

/// Why a session failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("no answer from the meter while waiting for {0}")]
    Timeout(&'static str),
    #[error("{0}")]
    Frame(#[from] Error),
    #[error("meter refused: {0}")]
    Refused(String),
}

impl SessionError {
    /// The integrity check that made the session fail, if any.
    pub fn failed_check(&self) -> Option<Check> {
        match self {
            SessionError::Frame(e) => e.failed_check(),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Idle,
    Delaying,
    AwaitIdentification,
    AwaitData,
    AwaitPasswordPrompt,
    AwaitPasswordAck,
    AwaitAnswer,
    Done,
}

/// Something to do once a delay has run out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    SignOn,
    OptionSelect,
    SwitchBaud(u32),
    Send(u8),
    Password,
    Read(usize),
    Restart,
}

/// The probe side of one session. See the module documentation for the driving contract.
#[derive(Debug)]
pub struct ProbeSession {
    cfg: ProbeConfig,
    actions: VecDeque<Action>,
    rx: Vec<u8>,
    stage: Stage,
    /// Stage to enter when the pending delay ends, with what to do.
    deferred: Option<Next>,
    ident: Option<Identification>,
    baud: u32,
    switched: bool,
    skip_switch: bool,
    fell_back: bool,
    attempts: u32,
    repeats: u32,
    naks: u32,
    /// What we sent last, to recognise its echo.
    last_sent: Vec<u8>,
    /// Index of the register being read.
    resume: usize,
    /// Stage to wait in after a NAK.
    nak_stage: Stage,
    data: Vec<u8>,
    outcome: Option<Result<Readout, SessionError>>,
}

/// Marks a byte whose parity was wrong; it cannot occur in 7-bit data.
const PARITY_ERROR: u8 = 0xFF;

impl ProbeSession {
    pub fn new(cfg: ProbeConfig) -> Self {
        let skip_switch = !cfg.baud_switch;
        ProbeSession {
            cfg,
            actions: VecDeque::new(),
            rx: Vec::new(),
            stage: Stage::Idle,
            deferred: None,
            ident: None,
            baud: 300,
            switched: false,
            skip_switch,
            fell_back: false,
            attempts: 0,
            repeats: 0,
            naks: 0,
            last_sent: Vec::new(),
            resume: 0,
            nak_stage: Stage::AwaitData,
            data: Vec::new(),
            outcome: None,
        }
    }

    /// Begins the session: the port must be open at 300 baud.
    pub fn start(&mut self) {
        if self.stage != Stage::Idle {
            return;
        }
        self.begin_attempt();
    }

    /// The next action for the driver, in order.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    pub fn is_done(&self) -> bool {
        self.stage == Stage::Done
    }

    /// The result once [`Action::Done`] was issued.
    pub fn outcome(&self) -> Option<&Result<Readout, SessionError>> {
        self.outcome.as_ref()
    }

    pub fn take_outcome(&mut self) -> Option<Result<Readout, SessionError>> {
        self.outcome.take()
    }

    /// Bytes received from the port.
    pub fn on_bytes(&mut self, bytes: &[u8]) {
        if matches!(self.stage, Stage::Done | Stage::Idle) {
            return;
        }
        if self.cfg.software_parity {
            self.rx.extend(
                bytes
                    .iter()
                    .map(|&b| message::strip_even_parity(b).unwrap_or(PARITY_ERROR)),
            );
        } else {
            self.rx.extend(bytes.iter().map(|&b| b & 0x7F));
        }
        if self.stage == Stage::Delaying {
            if self.deferred == Some(Next::Restart) {
                // Before signing on again, wait until the meter has stopped talking.
                self.rx.clear();
                self.actions.push_back(Action::Timer(self.cfg.response_timeout));
            }
            return; // handled when the delay is over
        }
        self.process();
    }

    /// The armed timer fired.
    pub fn on_timeout(&mut self) {
        if let Some(next) = self.deferred.take() {
            self.run(next);
            return;
        }
        match self.stage {
            Stage::AwaitIdentification if self.attempts < self.cfg.sign_on_attempts => self.begin_attempt(),
            Stage::AwaitIdentification => self.fail(SessionError::Timeout("the identification")),
            Stage::AwaitData | Stage::AwaitPasswordPrompt
                if self.switched && self.cfg.fallback_to_300 && !self.fell_back =>
            {
                // The meter probably stayed at 300 baud: whatever it sent is lost, so wait until
                // it has given up on this session and sign on again without switching.
                self.fell_back = true;
                self.skip_switch = true;
                self.switched = false;
                self.set_baud(300);
                self.attempts = 0;
                self.defer(self.cfg.response_timeout, Next::Restart);
            }
            Stage::AwaitData => self.fail(SessionError::Timeout("the data message")),
            Stage::AwaitPasswordPrompt => self.fail(SessionError::Timeout("the password prompt")),
            Stage::AwaitPasswordAck => self.fail(SessionError::Timeout("the password acknowledgement")),
            Stage::AwaitAnswer => self.fail(SessionError::Timeout("the register answer")),
            Stage::Idle | Stage::Delaying | Stage::Done => {}
        }
    }

    // -- internals ------------------------------------------------------------------------------

    fn begin_attempt(&mut self) {
        self.rx.clear();
        match self.cfg.wake_up.clone() {
            Some(w) => {
                self.send(vec![0; w.nuls]);
                self.defer(w.pause, Next::SignOn);
            }
            None => self.run(Next::SignOn),
        }
    }

    fn reaction(&self) -> Duration {
        self.cfg
            .reaction_delay
            .or_else(|| self.ident.as_ref().map(|i| i.reaction_time() * 5 / 4))
            .unwrap_or(Duration::from_millis(250))
    }

    fn send(&mut self, bytes: Vec<u8>) {
        self.last_sent = bytes.clone();
        let wire = if self.cfg.software_parity {
            message::encode_7e1(&bytes)
        } else {
            bytes
        };
        self.actions.push_back(Action::Send(wire));
    }

    fn set_baud(&mut self, baud: u32) {
        if self.baud != baud {
            self.baud = baud;
            self.actions.push_back(Action::SetBaud(baud));
        }
    }

    fn wait_for(&mut self, stage: Stage) {
        self.stage = stage;
        self.actions.push_back(Action::Timer(self.cfg.response_timeout));
        self.process();
    }

    fn defer(&mut self, delay: Duration, next: Next) {
        self.stage = Stage::Delaying;
        self.deferred = Some(next);
        self.actions.push_back(Action::Timer(delay));
    }

    fn run(&mut self, next: Next) {
        match next {
            Next::SignOn => {
                self.attempts += 1;
                self.rx.clear();
                match Request::new(self.cfg.address.clone()).encode() {
                    Ok(req) => {
                        self.send(req);
                        self.wait_for(Stage::AwaitIdentification);
                    }
                    Err(e) => self.fail(e.into()),
                }
            }
            Next::Restart => self.begin_attempt(),
            Next::OptionSelect => {
                let Some(ident) = self.ident.clone() else { return };
                let target = self.target_baud(&ident);
                let mode = if matches!(self.cfg.mode, ReadMode::Readout) {
                    b'0'
                } else {
                    b'1'
                };
                let baud_char = message::baud_char_c(target).unwrap_or(b'0');
                self.send(
                    OptionSelect {
                        protocol: self.cfg.protocol_char,
                        baud_char,
                        mode,
                    }
                    .encode(),
                );
                if target != self.baud {
                    // The option select goes out at the old speed; switch once it has left.
                    self.defer(self.cfg.switch_delay, Next::SwitchBaud(target));
                } else {
                    self.after_option_select();
                }
            }
            Next::SwitchBaud(baud) => {
                self.set_baud(baud);
                self.switched = true;
                self.after_option_select();
            }
            Next::Send(byte) => {
                self.send(vec![byte]);
                let stage = if byte == NAK {
                    self.resume_stage()
                } else {
                    Stage::AwaitData
                };
                self.wait_for(stage);
            }
            Next::Password => {
                let pw = match &self.cfg.mode {
                    ReadMode::Registers { password: Some(pw), .. } => pw.clone(),
                    _ => String::new(),
                };
                self.send(Command::password(b'1', &pw).encode());
                self.wait_for(Stage::AwaitPasswordAck);
            }
            Next::Read(index) => {
                let ReadMode::Registers {
                    read_command,
                    addresses,
                    ..
                } = &self.cfg.mode
                else {
                    return;
                };
                match addresses.get(index) {
                    Some(addr) => {
                        let cmd = Command::read(*read_command, addr).encode();
                        self.repeats = 0;
                        self.send(cmd);
                        self.resume = index;
                        self.wait_for(Stage::AwaitAnswer);
                    }
                    None => {
                        self.send(Command::sign_off().encode());
                        self.data.extend_from_slice(b"!\r\n");
                        self.finish();
                    }
                }
            }
        }
    }

    fn target_baud(&self, ident: &Identification) -> u32 {
        if self.skip_switch || ident.mode() != Mode::C {
            return self.baud;
        }
        let proposed = ident.baud_rate().unwrap_or(300);
        [19_200, 9600, 4800, 2400, 1200, 600, 300]
            .into_iter()
            .find(|&r| r <= proposed && r <= self.cfg.max_baud)
            .unwrap_or(300)
    }

    fn after_option_select(&mut self) {
        match self.cfg.mode {
            ReadMode::Readout => self.wait_for(Stage::AwaitData),
            ReadMode::Registers { .. } => self.wait_for(Stage::AwaitPasswordPrompt),
        }
    }

    /// The stage a NAK (or a resent command) waits in.
    fn resume_stage(&self) -> Stage {
        self.nak_stage
    }

    fn process(&mut self) {
        while !self.rx.is_empty() && !matches!(self.stage, Stage::Delaying | Stage::Done | Stage::Idle) {
            // Optical heads often echo what we send: drop our own message when it comes back.
            if !self.last_sent.is_empty() {
                if self.rx.starts_with(&self.last_sent) {
                    let n = self.last_sent.len();
                    self.rx.drain(..n);
                    self.last_sent.clear();
                    continue;
                }
                if self.last_sent.starts_with(&self.rx) {
                    return; // maybe the start of the echo; wait for more
                }
            }
            match message::parse_message(&self.rx, false) {
                Ok((n, msg)) => {
                    self.rx.drain(..n);
                    self.on_message(msg);
                }
                Err(e) if matches!(e.error, Error::Incomplete { .. }) => {
                    if self.rx.contains(&PARITY_ERROR) && !matches!(self.rx[0], message::STX | message::SOH) {
                        self.rx.remove(0);
                        continue;
                    }
                    // Still arriving; keep waiting but restart the silence timer.
                    if self.stage != Stage::Delaying {
                        self.actions.push_back(Action::Timer(self.cfg.response_timeout));
                    }
                    return;
                }
                Err(e) => match e.consumed {
                    Some(n) => {
                        self.rx.drain(..n);
                        self.corrupt_block(e.error);
                    }
                    // Noise, or bytes from a speed mismatch: skip one byte and look again.
                    None => {
                        self.rx.remove(0);
                    }
                },
            }
        }
    }

    fn corrupt_block(&mut self, error: Error) {
        if !matches!(
            self.stage,
            Stage::AwaitData | Stage::AwaitAnswer | Stage::AwaitPasswordPrompt
        ) {
            return;
        }
        if self.repeats >= self.cfg.max_repeats {
            self.fail(SessionError::Frame(error));
            return;
        }
        self.repeats += 1;
        self.naks += 1;
        self.nak_stage = self.stage;
        self.rx.clear();
        let delay = self.reaction();
        self.defer(delay, Next::Send(NAK));
    }

    fn on_message(&mut self, msg: Message) {
        match (self.stage, msg) {
            (Stage::AwaitIdentification, Message::Identification(ident)) => {
                let mode = ident.mode();
                self.ident = Some(ident.clone());
                match mode {
                    Mode::C => {
                        let delay = self.reaction();
                        self.defer(delay, Next::OptionSelect);
                    }
                    // Mode A sends its data right after the identification at 300 baud; mode B
                    // switches to the proposed rate at once, without an option select.
                    Mode::A => self.wait_for(Stage::AwaitData),
                    Mode::B => {
                        if !self.skip_switch {
                            let rate = ident.baud_rate().unwrap_or(300).min(self.cfg.max_baud);
                            self.set_baud(rate);
                            self.switched = rate != 300;
                        }
                        self.wait_for(Stage::AwaitData);
                    }
                }
            }
            (Stage::AwaitData, Message::Data(block)) => {
                if block.data.contains(&PARITY_ERROR) {
                    self.corrupt_block(Error::invalid("parity", "data block holds a byte with odd parity"));
                    return;
                }
                self.repeats = 0;
                self.data.extend_from_slice(&block.data);
                match block.end {
                    BlockEnd::Etx => self.finish(),
                    BlockEnd::Eot => {
                        let delay = self.reaction();
                        self.defer(delay, Next::Send(ACK));
                    }
                }
            }
            (Stage::AwaitPasswordPrompt, Message::Command(c)) if c.command == b'P' => {
                let delay = self.reaction();
                let wants_password = matches!(&self.cfg.mode, ReadMode::Registers { password: Some(_), .. });
                self.repeats = 0;
                self.defer(delay, if wants_password { Next::Password } else { Next::Read(0) });
            }
            (Stage::AwaitPasswordAck, Message::Ack) => {
                let delay = self.reaction();
                self.defer(delay, Next::Read(0));
            }
            (Stage::AwaitPasswordAck, Message::Nak) => self.fail(SessionError::Refused("password not accepted".into())),
            (Stage::AwaitAnswer, Message::Data(block)) => {
                if block.data.contains(&PARITY_ERROR) {
                    self.corrupt_block(Error::invalid("parity", "answer holds a byte with odd parity"));
                    return;
                }
                self.data.extend_from_slice(&block.data);
                self.data.extend_from_slice(b"\r\n");
                let delay = self.reaction();
                let next = self.resume + 1;
                self.defer(delay, Next::Read(next));
            }
            (Stage::AwaitAnswer, Message::Ack) => {
                let cmd = match &self.cfg.mode {
                    ReadMode::Registers { read_command, .. } => *read_command as char,
                    ReadMode::Readout => '1',
                };
                self.fail(SessionError::Refused(format!(
                    "meter acknowledged R{cmd} without data; this meter type may need another read command (R1/R5)"
                )));
            }
            (Stage::AwaitAnswer, Message::Nak) if self.repeats < self.cfg.max_repeats => {
                // The meter did not understand our command: send it again.
                self.repeats += 1;
                let delay = self.reaction();
                self.defer(delay, Next::Read(self.resume));
            }
            (_, Message::Command(c)) if c.command == b'B' => {
                self.fail(SessionError::Refused("meter ended the session (B0)".into()));
            }
            // Anything else out of turn is ignored; the timer guards against waiting forever.
            _ => {}
        }
    }

    fn finish(&mut self) {
        let Some(identification) = self.ident.clone() else {
            return;
        };
        self.outcome = Some(Ok(Readout {
            identification,
            data: std::mem::take(&mut self.data),
            baud: self.baud,
            fell_back_to_300: self.fell_back,
            naks: self.naks,
        }));
        self.end();
    }

    fn fail(&mut self, e: SessionError) {
        if matches!(self.cfg.mode, ReadMode::Registers { .. }) && self.ident.is_some() {
            self.send(Command::sign_off().encode());
        }
        self.outcome = Some(Err(e));
        self.end();
    }

    fn end(&mut self) {
        self.stage = Stage::Done;
        self.deferred = None;
        self.actions.push_back(Action::CancelTimer);
        self.actions.push_back(Action::Done);
    }
}

/// Durations as whole milliseconds in configuration files.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

mod opt_millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&(d.as_millis() as u64)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<u64>::deserialize(d).map(|ms| ms.map(Duration::from_millis))
    }
}

/// A protocol character (`0`, `2`, `5`, ...) as a one-character string.
mod ascii_char {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(c: &u8, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&(*c as char).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
        let s = String::deserialize(d)?;
        match s.as_bytes() {
            [c] if c.is_ascii_alphanumeric() => Ok(*c),
            _ => Err(D::Error::custom(format!("expected one letter or digit, got {s:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meter_type_profiles_deserialise_strictly() {
        let cfg: ProbeConfig = serde_json::from_str(
            r#"{"baud_switch": false, "protocol_char": "2", "reaction_delay_ms": 300,
                "wake_up": {"nuls": 70},
                "mode": {"kind": "registers", "read_command": "5", "addresses": ["1.8.0"]}}"#,
        )
        .unwrap();
        assert!(!cfg.baud_switch);
        assert_eq!(cfg.protocol_char, b'2');
        assert_eq!(cfg.reaction_delay, Some(Duration::from_millis(300)));
        assert_eq!(
            cfg.wake_up,
            Some(WakeUp {
                nuls: 70,
                pause: Duration::from_millis(1600)
            })
        );
        assert!(matches!(cfg.mode, ReadMode::Registers { read_command: b'5', .. }));
        assert_eq!(cfg.max_repeats, ProbeConfig::default().max_repeats);
        let back: ProbeConfig = serde_json::from_value(serde_json::to_value(&cfg).unwrap()).unwrap();
        assert_eq!(back, cfg);
        assert!(serde_json::from_str::<ProbeConfig>(r#"{"baud_swich": false}"#).is_err());
        assert!(serde_json::from_str::<ProbeConfig>(r#"{"protocol_char": "22"}"#).is_err());
    }
}
