//! The control socket: the daemon's side of the client API ([`crate::api`]).
//!
//! redb lets one process open the store, and while the daemon runs it holds it: the CLI's
//! store commands and the review screen send typed requests here instead (frames, handshake,
//! messages: [`crate::api::proto`]). Who the caller is comes from the socket's peer
//! credentials, their role from `[access]`; the daemon logs every request with the user's name
//! and uid, refuses what the role does not allow (logged, counted in
//! `meterd_control_refused_total{role=…}`), and runs the rest against its open store with the
//! same code the CLI runs in process.
//!
//! Limits: a frame is at most [`MAX_FRAME`](crate::api::frame::MAX_FRAME) bytes; the handshake
//! must come within [`HANDSHAKE_TIMEOUT`], each frame of a request within [`FRAME_TIMEOUT`]; a
//! connection idle for [`IDLE_TIMEOUT`] is closed; at most [`MAX_CONNECTIONS`] connections at
//! once and [`MAX_UPLOADS`] files being received (each at most
//! [`MAX_FILE`](crate::api::files::MAX_FILE) bytes, spooled chunk by chunk as it arrives to a
//! private temporary file the daemon creates in its data directory ([`files::spool`]): memory
//! holds one chunk, and no allocation is sized by what a client claims). A command runs in a blocking task under `catch_unwind`: a
//! panic is reported to the client and logged, and the daemon keeps serving.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::AsyncWriteExt;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use super::{Shared, Signal};
use crate::api::commands::{self, Ctx, Sink, Transfer};
use crate::api::files::{self, MAX_FILE, Upload};
use crate::api::frame::{self, FrameReader, ReadError};
use crate::api::proto::{CHUNK, Chunk, Reply, Request, ToClient, ToDaemon};
use crate::api::{Caller, Role};
use crate::api::{
    FRAME_TIMEOUT, HANDSHAKE_TIMEOUT, IDLE_TIMEOUT, PROTOCOL_VERSION, UPLOAD_TIMEOUT, access, answer, identity, text,
};
use crate::config::Config;

/// Connections served at once; more are refused ("busy") so that a flood cannot exhaust the
/// daemon's tasks and memory.
pub const MAX_CONNECTIONS: usize = 64;
/// Files being received or imported at once (each spooled to disk, up to `MAX_FILE`).
pub const MAX_UPLOADS: usize = 2;

/// Binds the control socket (replacing a stale one, refusing when a live daemon answers on it),
/// with the configured mode and group.
pub async fn bind(path: &Path, mode: u32, group: Option<&str>) -> anyhow::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    if path.exists() {
        if UnixStream::connect(path).await.is_ok() {
            anyhow::bail!("another meterd answers on the control socket {}", path.display());
        }
        std::fs::remove_file(path)
            .with_context(|| format!("cannot remove the stale control socket {}", path.display()))?;
    }
    let listener = UnixListener::bind(path).with_context(|| format!("cannot listen on {}", path.display()))?;
    if let Some(name) = group {
        let g = nix::unistd::Group::from_name(name)
            .ok()
            .flatten()
            .with_context(|| format!("daemon.control_socket_group: no group {name:?}"))?;
        nix::unistd::chown(path, None, Some(g.gid))
            .with_context(|| format!("cannot give {} to group {name}", path.display()))?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of {}", path.display()))?;
    Ok(listener)
}

/// What every connection shares.
struct Server {
    shared: Shared,
    configs: watch::Receiver<Arc<Config>>,
    reload: mpsc::Sender<Signal>,
    uploads: Semaphore,
}

/// Serves the client API until `token` is cancelled; then removes the socket file. Idle
/// connections are closed at once; commands already running are finished (they may hold a
/// store transaction; the daemon waits for them before closing the store).
pub async fn serve(
    shared: Shared,
    configs: watch::Receiver<Arc<Config>>,
    reload: mpsc::Sender<Signal>,
    listener: UnixListener,
    path: PathBuf,
    token: CancellationToken,
) -> anyhow::Result<()> {
    let server = Arc::new(Server {
        shared,
        configs,
        reload,
        uploads: Semaphore::new(MAX_UPLOADS),
    });
    let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut running = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            () = token.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let (server, token) = (Arc::clone(&server), token.clone());
                    match Arc::clone(&connections).try_acquire_owned() {
                        Ok(permit) => {
                            running.spawn(async move {
                                connection(server, stream, token).await;
                                drop(permit);
                            });
                        }
                        Err(_) => {
                            tracing::warn!(limit = MAX_CONNECTIONS, "control socket busy; connection refused");
                            running.spawn(async move {
                                let (_, mut write) = stream.into_split();
                                let msg = ToClient::Error { message: format!("the daemon is busy ({MAX_CONNECTIONS} connections); try again") };
                                let _ = send(&mut write, &msg).await;
                            });
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "control socket accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = running.join_next(), if !running.is_empty() => {}
        }
    }
    drop(listener);
    let _ = std::fs::remove_file(&path);
    while running.join_next().await.is_some() {}
    Ok(())
}

/// Writes one message within [`FRAME_TIMEOUT`].
async fn send(write: &mut OwnedWriteHalf, msg: &ToClient) -> anyhow::Result<()> {
    let bytes = frame::encode(msg)?;
    tokio::time::timeout(FRAME_TIMEOUT, write.write_all(&bytes))
        .await
        .context("the client did not read in time")??;
    Ok(())
}

/// One client, from the handshake to the end.
async fn connection(server: Arc<Server>, stream: UnixStream, token: CancellationToken) {
    let cred = match stream.peer_cred() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "control connection without peer credentials; closed");
            return;
        }
    };
    let (uid, gid) = (cred.uid(), cred.gid());
    // The user database may be slow (NSS): off the async threads.
    let caller = match tokio::task::spawn_blocking(move || Caller::from_uid(uid, Some(gid))).await {
        Ok(c) => c,
        Err(_) => return,
    };
    let (read, write) = stream.into_split();
    let mut conn = Conn {
        server,
        caller,
        reader: FrameReader::new(read),
        write,
    };
    if let Err(e) = conn.run(token).await {
        tracing::debug!(user = %conn.caller.name, uid = conn.caller.uid, error = %format!("{e:#}"), "control connection ended");
    }
}

struct Conn {
    server: Arc<Server>,
    caller: Caller,
    reader: FrameReader<OwnedReadHalf>,
    write: OwnedWriteHalf,
}

/// What a message read within a time limit turned out to be.
enum Next {
    Msg(ToDaemon),
    Closed,
    TimedOut,
    Bad(ReadError),
}

impl Conn {
    async fn send(&mut self, msg: &ToClient) -> anyhow::Result<()> {
        send(&mut self.write, msg).await
    }

    async fn next(&mut self, limit: Duration) -> Next {
        match tokio::time::timeout(limit, self.reader.next::<ToDaemon>()).await {
            Err(_) => Next::TimedOut,
            Ok(Ok(Some(m))) => Next::Msg(m),
            Ok(Ok(None)) => Next::Closed,
            Ok(Err(e)) => Next::Bad(e),
        }
    }

    /// Sends an error for a protocol violation; the caller closes the connection.
    async fn violation(&mut self, message: String) -> anyhow::Error {
        tracing::warn!(user = %self.caller.name, uid = self.caller.uid, problem = %message, "control connection refused");
        let _ = self
            .send(&ToClient::Error {
                message: message.clone(),
            })
            .await;
        anyhow::anyhow!(message)
    }

    fn config(&self) -> Arc<Config> {
        self.server.configs.borrow().clone()
    }

    async fn run(&mut self, token: CancellationToken) -> anyhow::Result<()> {
        let hello = tokio::select! {
            () = token.cancelled() => return Ok(()),
            n = self.next(HANDSHAKE_TIMEOUT) => n,
        };
        let protocol = match hello {
            Next::Msg(ToDaemon::Hello { protocol, .. }) => protocol,
            Next::Msg(other) => {
                return Err(self
                    .violation(format!("expected a hello first, got {}", kind(&other)))
                    .await);
            }
            Next::Closed => return Ok(()),
            Next::TimedOut => {
                return Err(self
                    .violation(format!("no hello within {} s", HANDSHAKE_TIMEOUT.as_secs()))
                    .await);
            }
            Next::Bad(e) => return Err(self.violation(e.to_string()).await),
        };
        if protocol != PROTOCOL_VERSION {
            let message = format!(
                "refused: the client speaks protocol version {protocol}, this daemon (meterd {}) speaks version {PROTOCOL_VERSION}: use the meterd of the daemon's version",
                env!("CARGO_PKG_VERSION")
            );
            tracing::warn!(user = %self.caller.name, uid = self.caller.uid, protocol, "control client of another protocol version refused");
            let _ = self.send(&ToClient::Refused { message }).await;
            return Ok(());
        }
        let config = self.config();
        let Some(role) = access::role_of(&config.access, &self.caller) else {
            tracing::warn!(user = %self.caller.name, uid = self.caller.uid, "control client in no role refused");
            crate::metrics::counter_add(access::REFUSED_METRIC, &[("role", "none")], 1);
            let message = access::no_role(&config.access, &self.caller);
            let _ = self.send(&ToClient::Refused { message }).await;
            return Ok(());
        };
        self.send(&ToClient::Welcome {
            protocol: PROTOCOL_VERSION,
            server: env!("CARGO_PKG_VERSION").into(),
            user: self.caller.name.clone(),
            uid: self.caller.uid,
            role,
        })
        .await?;
        loop {
            let next = tokio::select! {
                () = token.cancelled() => return Ok(()),
                n = self.next(IDLE_TIMEOUT) => n,
            };
            match next {
                Next::Msg(ToDaemon::Request { request, on_behalf_of }) => self.request(request, on_behalf_of).await?,
                Next::Msg(other) => {
                    return Err(self
                        .violation(format!("expected a request, got {}", kind(&other)))
                        .await);
                }
                Next::Closed => return Ok(()),
                Next::TimedOut => return Ok(()),
                Next::Bad(e) => return Err(self.violation(e.to_string()).await),
            }
        }
    }

    /// Refuses one request (the connection stays usable).
    async fn refuse(&mut self, request: &str, needed: Option<Role>, message: String) -> anyhow::Result<()> {
        let needed_role = needed.map_or("none", Role::as_str);
        tracing::warn!(user = %self.caller.name, uid = self.caller.uid, request = %request, needed_role = %needed_role, "control request refused");
        if let Some(r) = needed {
            crate::metrics::counter_add(access::REFUSED_METRIC, &[("role", r.as_str())], 1);
        }
        self.send(&ToClient::Refused { message }).await
    }

    async fn request(&mut self, request: Request, on_behalf_of: Option<String>) -> anyhow::Result<()> {
        let name = request.name();
        // Texts first: nothing with a control character reaches the log, the store or a screen.
        let texts = text::check_all(&request).and_then(|()| match &on_behalf_of {
            Some(n) => identity::check_user_name(n),
            None => Ok(()),
        });
        if let Err(m) = texts {
            return self.refuse(&name, None, format!("refused: {m}")).await;
        }
        // The configuration in force now (a reload applies to the next request).
        let config = self.config();
        let Some(role) = access::role_of(&config.access, &self.caller) else {
            let message = access::no_role(&config.access, &self.caller);
            return self.refuse(&name, None, message).await;
        };
        if let Err(r) = access::check(&self.caller, role, &request, on_behalf_of.as_deref()) {
            return self.refuse(&name, Some(r.needed), r.message).await;
        }
        tracing::info!(user = %self.caller.name, uid = self.caller.uid, request = %name, on_behalf_of = ?on_behalf_of, "control request");
        match request {
            Request::Command(cmd) => self.command(config, cmd, on_behalf_of).await,
            Request::Reload => {
                let message = match self.server.reload.try_send(Signal::Reload) {
                    Ok(()) => {
                        "reload asked: the daemon re-reads its configuration file (its log says how it went)".to_owned()
                    }
                    Err(_) => "a reload is already under way".to_owned(),
                };
                self.send(&ToClient::Reply {
                    reply: Reply::Done { message },
                })
                .await
            }
            review => {
                let store = Arc::clone(&self.server.shared.store);
                let caller = self.caller.clone();
                let job = tokio::task::spawn_blocking(move || {
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        answer::review(&*store, &config, &caller, on_behalf_of.as_deref(), review)
                    }))
                });
                let reply = match job.await {
                    Ok(Ok(reply)) => reply,
                    _ => {
                        tracing::error!(request = %name, "review request panicked");
                        answer::failure(&crate::review::ReviewError::Unavailable(
                            "the request failed in the daemon (see its log)".into(),
                        ))
                    }
                };
                self.send(&ToClient::Reply { reply }).await
            }
        }
    }

    /// Receives the file a command reads, chunk by chunk, up to [`MAX_FILE`], into a private
    /// temporary file in the data directory (unnamed: gone when closed, even after a crash).
    async fn receive_upload(&mut self) -> anyhow::Result<Upload> {
        let dir = self.server.shared.data_dir.clone();
        let mut spool = match tokio::task::spawn_blocking(move || files::spool(&dir)).await? {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "cannot spool an upload");
                return Err(self.violation(format!("the daemon cannot take the file: {e:#}")).await);
            }
        };
        self.send(&ToClient::SendUpload).await?;
        let deadline = tokio::time::Instant::now() + UPLOAD_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                let m = format!("the file did not arrive within {} s", UPLOAD_TIMEOUT.as_secs());
                return Err(self.violation(m).await);
            }
            match self.next(FRAME_TIMEOUT.min(left)).await {
                Next::Msg(ToDaemon::Upload { data }) => {
                    if spool.len() + data.0.len() as u64 > MAX_FILE {
                        let m = format!("the file is larger than the {} MiB a command may read", MAX_FILE >> 20);
                        return Err(self.violation(m).await);
                    }
                    // A chunk into the page cache: off the async threads all the same.
                    let (back, written) = tokio::task::spawn_blocking(move || {
                        let r = spool.write(&data.0);
                        (spool, r)
                    })
                    .await?;
                    spool = back;
                    if let Err(e) = written {
                        tracing::error!(error = %format!("{e:#}"), "cannot spool an upload");
                        return Err(self.violation(format!("the daemon cannot take the file: {e:#}")).await);
                    }
                }
                Next::Msg(ToDaemon::UploadEnd) => return spool.finish(),
                Next::Msg(other) => {
                    return Err(self
                        .violation(format!("expected a file chunk, got {}", kind(&other)))
                        .await);
                }
                Next::Closed => anyhow::bail!("the client left during its upload"),
                Next::TimedOut => {
                    return Err(self
                        .violation(format!(
                            "no file chunk within {} s (or the whole file not within {} s)",
                            FRAME_TIMEOUT.as_secs(),
                            UPLOAD_TIMEOUT.as_secs()
                        ))
                        .await);
                }
                Next::Bad(e) => return Err(self.violation(e.to_string()).await),
            }
        }
    }

    /// Runs a store command: output streamed as it is printed, a produced file sent for the
    /// client to write, then the exit code.
    async fn command(
        &mut self,
        config: Arc<Config>,
        cmd: commands::Command,
        on_behalf_of: Option<String>,
    ) -> anyhow::Result<()> {
        let server = Arc::clone(&self.server);
        let _permit;
        let upload = if cmd.upload().is_some() {
            // Waiting for a slot has a limit too: the client is told, not kept waiting.
            _permit = match tokio::time::timeout(FRAME_TIMEOUT, server.uploads.acquire()).await {
                Ok(permit) => permit?,
                Err(_) => {
                    let m =
                        format!("the daemon is receiving {MAX_UPLOADS} other files; try again when they are imported");
                    return Err(self.violation(m).await);
                }
            };
            Some(self.receive_upload().await?)
        } else {
            None
        };
        let (tx, mut rx) = mpsc::channel::<Outgoing>(32);
        let store = Arc::clone(&self.server.shared.store);
        let caller = self.caller.clone();
        let name = cmd.name();
        let job = tokio::task::spawn_blocking(move || {
            let pipe = Pipe::new(tx);
            let mut transfer = DaemonTransfer {
                upload,
                pipe: pipe.clone(),
            };
            let ctx = Ctx::new(
                &*store,
                &config,
                &caller,
                on_behalf_of.as_deref(),
                Box::new(OutSink(pipe.clone())) as Sink,
                Box::new(ErrSink(pipe)) as Sink,
                &mut transfer,
            );
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| commands::run(&ctx, cmd))) {
                Ok(code) => code,
                Err(_) => {
                    tracing::error!(request = %name, "command panicked");
                    let _ = writeln!(
                        ctx.err(),
                        "meterd: error: the command panicked in the daemon (see its log)"
                    );
                    101
                }
            }
        });
        let mut gone = false;
        while let Some(o) = rx.recv().await {
            match o {
                Outgoing::Send(msg) => {
                    if self.send(&msg).await.is_err() {
                        gone = true;
                        break;
                    }
                }
                Outgoing::AwaitFile(reply) => {
                    let answer = match self.next(FRAME_TIMEOUT).await {
                        Next::Msg(ToDaemon::FileWritten) => Ok(()),
                        Next::Msg(ToDaemon::FileFailed { message }) => Err(message),
                        _ => {
                            gone = true;
                            Err("the client did not say whether it wrote the file".to_owned())
                        }
                    };
                    let _ = reply.send(answer);
                    if gone {
                        break;
                    }
                }
            }
        }
        // The client left: the command's next output fails and it stops.
        drop(rx);
        let exit_code = job.await.unwrap_or(101);
        if gone {
            anyhow::bail!("the client left before the command finished");
        }
        self.send(&ToClient::Done { exit_code }).await
    }
}

fn kind(msg: &ToDaemon) -> &'static str {
    match msg {
        ToDaemon::Hello { .. } => "a hello",
        ToDaemon::Request { .. } => "a request",
        ToDaemon::Upload { .. } => "a file chunk",
        ToDaemon::UploadEnd => "the end of a file",
        ToDaemon::FileWritten | ToDaemon::FileFailed { .. } => "an answer about a file",
    }
}

/// From the command's blocking task to the connection.
enum Outgoing {
    Send(ToClient),
    /// The file was sent: wait for the client to say whether it wrote it.
    AwaitFile(oneshot::Sender<Result<(), String>>),
}

/// The command's output on its way to the client. Standard output is buffered (sent at a
/// flush, or per [`CHUNK`]); standard error goes at once, after what stdout had buffered, so
/// the client sees both in the order they were printed.
#[derive(Clone)]
struct Pipe(Arc<Mutex<PipeState>>);

struct PipeState {
    tx: mpsc::Sender<Outgoing>,
    stdout: Vec<u8>,
}

fn gone() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client left")
}

impl Pipe {
    fn new(tx: mpsc::Sender<Outgoing>) -> Self {
        Pipe(Arc::new(Mutex::new(PipeState { tx, stdout: Vec::new() })))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, PipeState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn send(&self, msg: Outgoing) -> std::io::Result<()> {
        let tx = self.state().tx.clone();
        tx.blocking_send(msg).map_err(|_| gone())
    }

    fn flush_stdout(&self) -> std::io::Result<()> {
        let pending = std::mem::take(&mut self.state().stdout);
        for chunk in pending.chunks(CHUNK) {
            self.send(Outgoing::Send(ToClient::Stdout {
                data: Chunk(chunk.to_vec()),
            }))?;
        }
        Ok(())
    }
}

struct OutSink(Pipe);

impl Write for OutSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let full = {
            let mut s = self.0.state();
            s.stdout.extend_from_slice(buf);
            s.stdout.len() >= CHUNK
        };
        if full {
            self.0.flush_stdout()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush_stdout()
    }
}

struct ErrSink(Pipe);

impl Write for ErrSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.flush_stdout()?;
        for chunk in buf.chunks(CHUNK) {
            self.0.send(Outgoing::Send(ToClient::Stderr {
                data: Chunk(chunk.to_vec()),
            }))?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The files of a command run for a client: the file it sent, spooled; a produced file goes
/// back in chunks, and the command waits for the client's word that it wrote it.
struct DaemonTransfer {
    upload: Option<Upload>,
    pipe: Pipe,
}

impl Transfer for DaemonTransfer {
    fn upload(&mut self) -> anyhow::Result<Upload> {
        self.upload
            .take()
            .ok_or_else(|| anyhow::anyhow!("the client sent no file for this command"))
    }

    fn deliver(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.pipe.flush_stdout()?;
        for chunk in bytes.chunks(CHUNK) {
            self.pipe.send(Outgoing::Send(ToClient::File {
                data: Chunk(chunk.to_vec()),
            }))?;
        }
        self.pipe.send(Outgoing::Send(ToClient::FileEnd))?;
        let (tx, rx) = oneshot::channel();
        self.pipe.send(Outgoing::AwaitFile(tx))?;
        match rx.blocking_recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(anyhow::anyhow!(message)),
            Err(_) => Err(gone().into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(msg: Outgoing) -> (&'static str, String) {
        match msg {
            Outgoing::Send(ToClient::Stdout { data }) => ("out", String::from_utf8(data.0).unwrap()),
            Outgoing::Send(ToClient::Stderr { data }) => ("err", String::from_utf8(data.0).unwrap()),
            _ => panic!("unexpected message"),
        }
    }

    #[test]
    fn stderr_goes_after_the_stdout_printed_before_it() {
        let (tx, mut rx) = mpsc::channel(16);
        let pipe = Pipe::new(tx);
        let (mut out, mut err) = (OutSink(pipe.clone()), ErrSink(pipe));
        write!(out, "line 1\nline 2\n").unwrap();
        writeln!(err, "warning").unwrap();
        writeln!(out, "line 3").unwrap();
        out.flush().unwrap();
        let mut got = Vec::new();
        while let Ok(m) = rx.try_recv() {
            got.push(text(m));
        }
        let joined: Vec<(&str, String)> = got.into_iter().fold(Vec::new(), |mut acc, (k, t)| {
            match acc.last_mut() {
                Some((lk, lt)) if *lk == k => lt.push_str(&t),
                _ => acc.push((k, t)),
            }
            acc
        });
        assert_eq!(
            joined,
            [
                ("out", "line 1\nline 2\n".to_owned()),
                ("err", "warning\n".to_owned()),
                ("out", "line 3\n".to_owned())
            ]
        );
    }

    #[test]
    fn a_client_that_left_stops_the_command_at_its_next_output() {
        let (tx, rx) = mpsc::channel(1);
        drop(rx);
        let mut out = OutSink(Pipe::new(tx));
        writeln!(out, "buffered").unwrap();
        assert_eq!(out.flush().unwrap_err().kind(), std::io::ErrorKind::BrokenPipe);
    }
}
