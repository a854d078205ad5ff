//! The client of the control socket (blocking: the CLI and the review screen are synchronous).
//!
//! [`connect`] says whether a daemon answers (`Ok(None)`: nothing listens, the command runs in
//! process) and does the handshake. Once connected the client never falls back to the store:
//! a daemon that dies or refuses mid-command is reported, with a non-zero exit.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail};

use super::commands::Command;
use super::files::{OutFile, UploadFile};
use super::frame::{self, ReadError};
use super::proto::{Chunk, Reply, Request, Role, ToClient, ToDaemon};
use super::{FRAME_TIMEOUT, HANDSHAKE_TIMEOUT, PROTOCOL_VERSION};

/// A connection after a successful handshake.
pub struct Connection {
    stream: UnixStream,
    pub socket: PathBuf,
    /// Who the daemon takes the caller to be, and their role.
    pub user: String,
    pub uid: u32,
    pub role: Role,
    /// The daemon's meterd version.
    pub server: String,
}

/// Whether something listens on `socket` (without a handshake): a running daemon.
pub fn daemon_answers(socket: &Path) -> bool {
    UnixStream::connect(socket).is_ok()
}

/// Connects and shakes hands. `Ok(None)`: no daemon listens (no socket, or a stale one).
/// An error: a daemon is there but cannot be used (no permission on the socket, refused, a
/// different protocol version, no answer).
pub fn connect(socket: &Path) -> anyhow::Result<Option<Connection>> {
    let shown = socket.display();
    let stream = match UnixStream::connect(socket) {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None);
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => bail!(
            "cannot connect to the meterd daemon's control socket {shown}: {e}; its group may connect (group meterd on a packaged install: `sudo usermod -aG meterd $USER`, then log in again)"
        ),
        Err(e) => bail!("cannot connect to the meterd daemon's control socket {shown}: {e}"),
    };
    stream.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
    stream.set_write_timeout(Some(FRAME_TIMEOUT))?;
    let mut conn = Connection {
        stream,
        socket: socket.to_owned(),
        user: String::new(),
        uid: 0,
        role: Role::Clerk,
        server: String::new(),
    };
    conn.send(&ToDaemon::Hello {
        protocol: PROTOCOL_VERSION,
        client: env!("CARGO_PKG_VERSION").into(),
    })?;
    match conn.recv()? {
        Some(ToClient::Welcome {
            protocol: _,
            server,
            user,
            uid,
            role,
        }) => {
            conn.user = user;
            conn.uid = uid;
            conn.role = role;
            conn.server = server;
            Ok(Some(conn))
        }
        Some(ToClient::Refused { message }) => Err(anyhow!(message)),
        Some(ToClient::Error { message }) => bail!("the meterd daemon on {shown} refused the connection: {message}"),
        Some(other) => bail!("the meterd daemon on {shown} answered the handshake with {other:?}"),
        None => bail!("the meterd daemon on {shown} closed the connection during the handshake"),
    }
}

/// Why a typed call failed.
#[derive(Debug)]
pub enum CallError {
    /// The daemon refused the request (role, text); the message says why.
    Refused(String),
    /// The connection is broken or the daemon broke the protocol.
    Broken(anyhow::Error),
}

impl Connection {
    fn send(&mut self, msg: &ToDaemon) -> anyhow::Result<()> {
        let bytes = frame::encode(msg)?;
        self.stream
            .write_all(&bytes)
            .map_err(|e| self.io_error("sending to", e))
    }

    fn recv(&mut self) -> anyhow::Result<Option<ToClient>> {
        frame::read_blocking(&mut self.stream).map_err(|e| match e {
            ReadError::Io(e) => self.io_error("reading from", e),
            e => anyhow!("reading from the meterd daemon on {}: {e}", self.socket.display()),
        })
    }

    fn io_error(&self, what: &str, e: std::io::Error) -> anyhow::Error {
        let shown = self.socket.display();
        match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                anyhow!("the meterd daemon on {shown} did not answer in time")
            }
            _ => anyhow!("{what} the meterd daemon on {shown}: {e}"),
        }
    }

    fn lost(&self) -> anyhow::Error {
        anyhow!(
            "the meterd daemon on {} closed the connection before the command finished (did it stop? see its log); the command may not have completed",
            self.socket.display()
        )
    }

    /// Runs a store command in the daemon: sends the file it reads (`upload`), prints what it
    /// prints, writes the file it produces (`out`). Returns its exit code; a refusal is
    /// printed (exit code 1); an error means the daemon was lost or broke the protocol.
    pub fn run_command(
        &mut self,
        cmd: Command,
        on_behalf_of: Option<&str>,
        mut upload: Option<UploadFile>,
        mut out: Option<OutFile>,
        stdout: &mut dyn Write,
        stderr: &mut dyn Write,
    ) -> anyhow::Result<i32> {
        self.send(&ToDaemon::Request {
            request: Request::Command(cmd),
            on_behalf_of: on_behalf_of.map(str::to_owned),
        })?;
        // A command runs as long as it needs; a daemon that dies closes the socket.
        self.stream.set_read_timeout(None)?;
        // Why the file could not be written, told to the command at the file's end.
        let mut failure: Option<String> = None;
        loop {
            let Some(msg) = self.recv()? else {
                return Err(self.lost());
            };
            match msg {
                ToClient::SendUpload => {
                    let mut file = upload
                        .take()
                        .ok_or_else(|| anyhow!("the daemon asked for a file this command does not read"))?;
                    // Chunk by chunk as read: the file is never held.
                    file.stream(&mut |chunk| {
                        self.send(&ToDaemon::Upload {
                            data: Chunk(chunk.to_vec()),
                        })
                    })?;
                    self.send(&ToDaemon::UploadEnd)?;
                }
                ToClient::Stdout { data } => {
                    stdout.write_all(&data.0)?;
                    stdout.flush()?;
                }
                ToClient::Stderr { data } => {
                    stderr.write_all(&data.0)?;
                    stderr.flush()?;
                }
                ToClient::File { data } => match out.as_mut() {
                    Some(f) => {
                        if let Err(e) = f.write(&data.0) {
                            out = None;
                            failure = Some(format!("{e:#}"));
                        }
                    }
                    None if failure.is_some() => {}
                    None => bail!("the daemon sent a file this command does not write"),
                },
                ToClient::FileEnd => {
                    let result = match (out.take(), failure.take()) {
                        (_, Some(m)) => Err(m),
                        (Some(f), None) => f.persist().map_err(|e| format!("{e:#}")),
                        (None, None) => Err("no file to write".to_owned()),
                    };
                    self.send(&match result {
                        Ok(()) => ToDaemon::FileWritten,
                        Err(message) => ToDaemon::FileFailed { message },
                    })?;
                }
                ToClient::Done { exit_code } => return Ok(exit_code),
                ToClient::Refused { message } => {
                    writeln!(stderr, "meterd: error: {message}")?;
                    return Ok(1);
                }
                ToClient::Error { message } => bail!("the meterd daemon refused the request: {message}"),
                ToClient::Welcome { .. } | ToClient::Reply { .. } => {
                    bail!("the meterd daemon answered out of turn")
                }
            }
        }
    }

    /// One typed request (the review screen's, reload) and its reply.
    pub fn call(&mut self, request: Request, on_behalf_of: Option<&str>) -> Result<Reply, CallError> {
        let broken = CallError::Broken;
        self.stream
            .set_read_timeout(Some(FRAME_TIMEOUT))
            .map_err(|e| broken(e.into()))?;
        self.send(&ToDaemon::Request {
            request,
            on_behalf_of: on_behalf_of.map(str::to_owned),
        })
        .map_err(broken)?;
        match self.recv().map_err(broken)? {
            Some(ToClient::Reply { reply }) => Ok(reply),
            Some(ToClient::Refused { message }) => Err(CallError::Refused(message)),
            Some(ToClient::Error { message }) => {
                Err(broken(anyhow!("the meterd daemon refused the request: {message}")))
            }
            Some(other) => Err(broken(anyhow!("the meterd daemon answered {other:?}"))),
            None => Err(broken(anyhow!(
                "the meterd daemon on {} closed the connection",
                self.socket.display()
            ))),
        }
    }
}
