//! A meter's side of an IEC 62056-21 mode C session, as a sans-IO state machine: the simulator
//! the probe session is tested against (in pure Rust here, over pseudo-terminals in the daemon's
//! tests). It is driven exactly like [`super::probe::ProbeSession`], with the same [`Action`]s.
//!
//! Modes A, B and C follow from the identification's baud character. Quirks of real meters can
//! be switched on: ignoring the baud rate it proposed, answering a
//! readout with a bad BCC a number of times, sleeping until woken by NULs (battery meters),
//! answering only one read command (R1 or R5) and acknowledging the other without data.

use std::collections::VecDeque;
use std::time::Duration;

use super::dataset::{self, DataSet};
use super::message::{self, ACK, BlockEnd, Command, DataBlock, Identification, Message, Mode, NAK};
use super::probe::Action;
use crate::error::Error;

/// How the simulated meter behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeterConfig {
    pub identification: Identification,
    /// Device address; a sign-on with another non-empty address is ignored.
    pub address: String,
    /// The readout list (also what R1/R5 read, by address).
    pub data_sets: Vec<DataSet>,
    /// Stays at 300 baud whatever was agreed.
    pub ignores_proposed_baud: bool,
    /// Answers this many readouts or register reads with a corrupted BCC.
    pub bad_bcc_answers: u32,
    /// Sleeps until at least this many NULs arrive (battery-powered meters); 0 = always awake.
    pub wake_up_nuls: usize,
    /// The read command type it answers (`b'1'` or `b'5'`); the other is acknowledged without data.
    pub read_command: u8,
    /// Password expected with P1 before register reads.
    pub password: Option<String>,
    /// Time between a message and the answer.
    pub reaction_time: Duration,
    /// Silence after which the meter drops the session and returns to 300 baud.
    pub inactivity_timeout: Duration,
    /// Adds and checks 7E1 parity in software.
    pub software_parity: bool,
    /// Sends the readout in partial blocks of this many data lines (0 = one data message).
    pub lines_per_block: usize,
}

impl MeterConfig {
    /// A meter with default behaviour and the given identification and readout list.
    pub fn new(identification: Identification, data_sets: Vec<DataSet>) -> Self {
        let reaction_time = identification.reaction_time();
        MeterConfig {
            identification,
            address: String::new(),
            data_sets,
            ignores_proposed_baud: false,
            bad_bcc_answers: 0,
            wake_up_nuls: 0,
            read_command: b'1',
            password: None,
            reaction_time,
            inactivity_timeout: Duration::from_millis(1500),
            software_parity: false,
            lines_per_block: 0,
        }
    }
}

/// What happened during the simulation, for tests to assert on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MeterStats {
    pub sign_ons: u32,
    pub naks_received: u32,
    pub blocks_sent: u32,
    pub baud_switches: u32,
    pub breaks: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Asleep,
    Idle,
    Delaying,
    AwaitOption,
    ReadoutSent,
    Programming,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    Identification,
    Readout,
    Block,
    PasswordPrompt,
    Resend,
    Answer(State),
}

/// The simulated meter.
#[derive(Debug)]
pub struct MeterSim {
    cfg: MeterConfig,
    actions: VecDeque<Action>,
    rx: Vec<u8>,
    state: State,
    deferred: Option<Next>,
    pending: Vec<u8>,
    last_block: Vec<u8>,
    /// Readout blocks still to send.
    blocks: VecDeque<Vec<u8>>,
    /// The state to wait in after resending the last block.
    resend_state: State,
    baud: u32,
    nuls: usize,
    bad_left: u32,
    authenticated: bool,
    stats: MeterStats,
}

impl MeterSim {
    pub fn new(cfg: MeterConfig) -> Self {
        let state = if cfg.wake_up_nuls > 0 {
            State::Asleep
        } else {
            State::Idle
        };
        let bad_left = cfg.bad_bcc_answers;
        MeterSim {
            cfg,
            actions: VecDeque::new(),
            rx: Vec::new(),
            state,
            deferred: None,
            pending: Vec::new(),
            last_block: Vec::new(),
            blocks: VecDeque::new(),
            resend_state: State::ReadoutSent,
            baud: 300,
            nuls: 0,
            bad_left,
            authenticated: false,
            stats: MeterStats::default(),
        }
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    pub fn stats(&self) -> &MeterStats {
        &self.stats
    }

    /// The current line speed.
    pub fn baud(&self) -> u32 {
        self.baud
    }

    pub fn on_bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            let b = if self.cfg.software_parity {
                message::strip_even_parity(b).unwrap_or(0xFF)
            } else {
                b & 0x7F
            };
            if self.state == State::Asleep {
                self.nuls = if b == 0 { self.nuls + 1 } else { 0 };
                if self.nuls >= self.cfg.wake_up_nuls {
                    self.state = State::Idle;
                }
                continue;
            }
            if b != 0 || !self.rx.is_empty() {
                self.rx.push(b);
            }
        }
        if self.state != State::Delaying {
            self.process();
        }
    }

    pub fn on_timeout(&mut self) {
        if let Some(next) = self.deferred.take() {
            self.run(next);
            self.process();
            return;
        }
        // Silence: drop the session like a real meter does.
        self.drop_session();
    }

    fn drop_session(&mut self) {
        self.state = if self.cfg.wake_up_nuls > 0 {
            State::Asleep
        } else {
            State::Idle
        };
        self.nuls = 0;
        self.authenticated = false;
        self.set_baud(300);
        self.actions.push_back(Action::CancelTimer);
    }

    fn set_baud(&mut self, baud: u32) {
        if baud != self.baud {
            self.baud = baud;
            self.stats.baud_switches += 1;
            self.actions.push_back(Action::SetBaud(baud));
        }
    }

    fn send(&mut self, bytes: Vec<u8>) {
        let wire = if self.cfg.software_parity {
            message::encode_7e1(&bytes)
        } else {
            bytes
        };
        self.actions.push_back(Action::Send(wire));
    }

    fn defer(&mut self, next: Next) {
        self.state = State::Delaying;
        self.deferred = Some(next);
        self.actions.push_back(Action::Timer(self.cfg.reaction_time));
    }

    fn listen(&mut self, state: State) {
        self.state = state;
        self.actions.push_back(Action::Timer(self.cfg.inactivity_timeout));
    }

    fn send_block(&mut self, block: Vec<u8>) {
        self.last_block = block.clone();
        let mut wire = block;
        if self.bad_left > 0 {
            self.bad_left -= 1;
            if let Some(b) = wire.last_mut() {
                *b ^= 0x01;
            }
        }
        self.stats.blocks_sent += 1;
        self.send(wire);
    }

    fn run(&mut self, next: Next) {
        match next {
            Next::Identification => {
                let ident = self.cfg.identification.encode().unwrap_or_default();
                self.send(ident);
                match self.cfg.identification.mode() {
                    Mode::C => self.listen(State::AwaitOption),
                    // Mode A sends the data right away; mode B first switches to the rate it
                    // announced, without waiting for an option select.
                    Mode::A => self.defer(Next::Readout),
                    Mode::B => {
                        if !self.cfg.ignores_proposed_baud {
                            self.set_baud(self.cfg.identification.baud_rate().unwrap_or(300));
                        }
                        self.defer(Next::Readout);
                    }
                }
            }
            Next::Readout => {
                self.blocks = self.readout_blocks();
                self.run(Next::Block);
            }
            Next::Block => {
                let block = self.blocks.pop_front().unwrap_or_default();
                self.resend_state = State::ReadoutSent;
                self.send_block(block);
                self.listen(State::ReadoutSent);
            }
            Next::PasswordPrompt => {
                let serial = self.cfg.address.clone();
                // Kept for a repeat after NAK, but not one of the corrupted answers.
                let prompt = Command::password(b'0', &serial).encode();
                self.last_block = prompt.clone();
                self.resend_state = State::Programming;
                self.send(prompt);
                self.listen(State::Programming);
            }
            Next::Resend => {
                let block = self.last_block.clone();
                let state = self.resend_state;
                self.send_block(block);
                self.listen(state);
            }
            Next::Answer(state) => {
                let block = std::mem::take(&mut self.pending);
                if block == [ACK] || block == [NAK] {
                    self.send(block);
                } else {
                    self.resend_state = State::Programming;
                    self.send_block(block);
                }
                self.listen(state);
            }
        }
    }

    /// The readout as one data message, or as partial blocks (EOT) of `lines_per_block` lines
    /// and a last block (ETX), each acknowledged by the reader before the next is sent.
    fn readout_blocks(&self) -> VecDeque<Vec<u8>> {
        let sets = &self.cfg.data_sets;
        let per = match self.cfg.lines_per_block {
            0 => sets.len().max(1),
            n => n,
        };
        let chunks: Vec<&[DataSet]> = if sets.is_empty() {
            vec![&[]]
        } else {
            sets.chunks(per).collect()
        };
        let last = chunks.len() - 1;
        chunks
            .iter()
            .enumerate()
            .map(|(i, chunk)| {
                let lines = dataset::emit_lines(chunk);
                if i == last {
                    DataBlock::readout(&lines)
                } else {
                    DataBlock {
                        data: lines,
                        end: BlockEnd::Eot,
                    }
                }
                .encode()
            })
            .collect()
    }

    fn process(&mut self) {
        while !self.rx.is_empty() && !matches!(self.state, State::Delaying | State::Asleep) {
            match message::parse_message(&self.rx, self.state == State::AwaitOption) {
                Ok((n, msg)) => {
                    self.rx.drain(..n);
                    self.on_message(msg);
                }
                Err(e) if matches!(e.error, Error::Incomplete { .. }) => return,
                Err(e) => {
                    let n = e.consumed.unwrap_or(1);
                    self.rx.drain(..n);
                    if e.consumed.is_some() && self.state == State::Programming {
                        // A corrupt command: ask for it again.
                        self.pending = vec![NAK];
                        self.defer(Next::Answer(State::Programming));
                    }
                }
            }
        }
    }

    fn on_message(&mut self, msg: Message) {
        match (self.state, msg) {
            // A sign-on restarts the session whatever state it finds the meter in.
            (_, Message::Request(req)) if req.address.is_empty() || req.address == self.cfg.address => {
                self.stats.sign_ons += 1;
                self.authenticated = false;
                self.set_baud(300);
                self.defer(Next::Identification);
            }
            (State::AwaitOption, Message::OptionSelect(o)) => {
                let agreed = message::baud_rate(o.baud_char).unwrap_or(300);
                if !self.cfg.ignores_proposed_baud {
                    self.set_baud(agreed);
                }
                match o.mode {
                    b'0' => self.defer(Next::Readout),
                    b'1' => self.defer(Next::PasswordPrompt),
                    _ => self.drop_session(),
                }
            }
            (State::ReadoutSent, Message::Nak) => {
                self.stats.naks_received += 1;
                self.defer(Next::Resend);
            }
            (State::ReadoutSent, Message::Ack) if !self.blocks.is_empty() => self.defer(Next::Block),
            (State::ReadoutSent, Message::Ack) => self.drop_session(),
            (State::Programming, Message::Nak) => {
                self.stats.naks_received += 1;
                self.defer(Next::Resend);
            }
            (State::Programming, Message::Command(c)) => self.command(c),
            _ => {}
        }
    }

    fn command(&mut self, c: Command) {
        match (c.command, c.kind) {
            (b'B', _) => {
                self.stats.breaks += 1;
                self.drop_session();
            }
            (b'P', b'1') => {
                let given = c.data.as_deref().unwrap_or_default();
                let ok = match &self.cfg.password {
                    Some(pw) => given == format!("({pw})").as_bytes(),
                    None => true,
                };
                self.authenticated = ok;
                self.pending = vec![if ok { ACK } else { NAK }];
                self.defer(Next::Answer(State::Programming));
            }
            (b'R', kind) if kind != self.cfg.read_command => {
                self.pending = vec![ACK];
                self.defer(Next::Answer(State::Programming));
            }
            (b'R', _) => {
                if self.cfg.password.is_some() && !self.authenticated {
                    self.pending = vec![NAK];
                    self.defer(Next::Answer(State::Programming));
                    return;
                }
                let wanted = c.data.as_deref().unwrap_or_default();
                let address =
                    String::from_utf8_lossy(wanted.split(|&b| b == b'(').next().unwrap_or_default()).into_owned();
                let body = match self.cfg.data_sets.iter().find(|s| s.address == address) {
                    Some(set) => {
                        let mut line = dataset::emit_lines(std::slice::from_ref(set));
                        line.truncate(line.len() - 2);
                        line
                    }
                    None => b"(ERROR)".to_vec(),
                };
                self.pending = DataBlock {
                    data: body,
                    end: BlockEnd::Etx,
                }
                .encode();
                self.defer(Next::Answer(State::Programming));
            }
            _ => {
                self.pending = vec![NAK];
                self.defer(Next::Answer(State::Programming));
            }
        }
    }
}
