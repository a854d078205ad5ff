//! The control socket: CLI commands forwarded to the running daemon.
//!
//! redb lets one process open the store. While the daemon runs, `meterd reads list` cannot
//! open it, so the CLI sends its command line here instead, and the daemon runs it against
//! its own open store, with the output collected in memory and sent back.
//!
//! Protocol: one request per connection. The client writes one JSON line
//! `{"argv": ["meterd", "reads", "list", "--json"]}` and reads one JSON line
//! `{"exit_code": 0, "stdout": "...", "stderr": "..."}`. The daemon's configuration and data
//! directory apply, whatever `--config`/`--data-dir` the client gave. Relative paths are made
//! absolute by the client; the daemon opens files with its own permissions (under the packaged
//! unit: user `meterd`, no access to /home, a private /tmp).
//!
//! The socket is created with mode 0660: members of the daemon's group may send commands.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::Shared;
use crate::cli::{self, Cli, Env};
use crate::config::Config;

/// What a client sends.
#[derive(Debug, Serialize, Deserialize)]
pub struct Request {
    pub argv: Vec<String>,
}

/// What the daemon answers.
#[derive(Debug, Serialize, Deserialize)]
pub struct Response {
    pub exit_code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Largest request accepted (an argv, not a file).
const MAX_REQUEST: u64 = 1 << 20;

/// Binds the control socket (replacing a stale one, refusing when a live daemon answers on it).
pub async fn bind(path: &Path) -> anyhow::Result<UnixListener> {
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
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("cannot set the mode of {}", path.display()))?;
    Ok(listener)
}

/// Serves forwarded commands until `token` is cancelled; then removes the socket file.
/// Commands already running are finished (they hold a store transaction; the daemon waits for
/// them before closing the store).
pub async fn serve(
    shared: Shared,
    configs: watch::Receiver<Arc<Config>>,
    listener: UnixListener,
    path: PathBuf,
    token: CancellationToken,
) -> anyhow::Result<()> {
    let mut running = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            () = token.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let mut shared = shared.clone();
                    shared.config = configs.borrow().clone();
                    running.spawn(async move {
                        if let Err(e) = answer(shared, stream).await {
                            tracing::warn!(error = %format!("{e:#}"), "control connection failed");
                        }
                    });
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

async fn answer(shared: Shared, stream: UnixStream) -> anyhow::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    BufReader::new(tokio::io::AsyncReadExt::take(read, MAX_REQUEST))
        .read_line(&mut line)
        .await?;
    let response = match serde_json::from_str::<Request>(&line) {
        Ok(request) => {
            let span = tracing::info_span!("control", command = %request.argv.get(1..).unwrap_or_default().join(" "));
            let _enter = span.enter();
            tracing::info!("forwarded command");
            drop(_enter);
            tokio::task::spawn_blocking(move || execute(&shared, request.argv)).await?
        }
        Err(e) => Response {
            exit_code: 2,
            stdout: String::new(),
            stderr: format!("meterd: bad control request: {e}\n"),
        },
    };
    let mut bytes = serde_json::to_vec(&response)?;
    bytes.push(b'\n');
    write.write_all(&bytes).await?;
    write.shutdown().await?;
    Ok(())
}

/// An in-memory sink for a forwarded command's output.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buffer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

/// Runs one forwarded command line against the daemon's store (blocking).
pub fn execute(shared: &Shared, argv: Vec<String>) -> Response {
    let cli = match Cli::try_parse_from(&argv) {
        Ok(cli) => cli,
        Err(e) => {
            let text = e.render().to_string();
            let (stdout, stderr) = if e.use_stderr() {
                (String::new(), text)
            } else {
                (text, String::new())
            };
            return Response {
                exit_code: e.exit_code(),
                stdout,
                stderr,
            };
        }
    };
    if !cli.command.forwardable() {
        return Response {
            exit_code: 2,
            stdout: String::new(),
            stderr: "meterd: error: this command is not run by the daemon; run it where the store is not in use\n"
                .into(),
        };
    }
    let (out, err) = (Buffer::default(), Buffer::default());
    let env = Env::forwarded(
        shared.config.as_ref().clone(),
        shared.data_dir.clone(),
        Arc::clone(&shared.store),
        Box::new(out.clone()),
        Box::new(err.clone()),
    );
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cli::run_in(&env, cli)));
    drop(env);
    let mut stderr = err.text();
    let exit_code = match result {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => {
            stderr.push_str(&format!("meterd: error: {e:#}\n"));
            1
        }
        Err(_) => {
            stderr.push_str("meterd: error: the command panicked in the daemon (see its log)\n");
            101
        }
    };
    Response {
        exit_code,
        stdout: out.text(),
        stderr,
    }
}

/// Client side: sends `argv` to the daemon at `socket`. `Ok(None)` when nothing listens there.
/// Relative paths in `argv` that exist here are made absolute (the daemon has another working
/// directory).
pub fn forward(socket: &Path, argv: &[String]) -> anyhow::Result<Option<Response>> {
    use std::io::{BufRead, BufReader};
    let mut stream = match std::os::unix::net::UnixStream::connect(socket) {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(e).with_context(|| format!("cannot connect to the control socket {}", socket.display())),
    };
    let cwd = std::env::current_dir().ok();
    let argv: Vec<String> = argv
        .iter()
        .enumerate()
        .map(|(i, a)| match &cwd {
            Some(cwd) if i > 0 && !a.starts_with('-') && Path::new(a).is_relative() && cwd.join(a).exists() => {
                cwd.join(a).display().to_string()
            }
            _ => a.clone(),
        })
        .collect();
    let mut request = serde_json::to_vec(&Request { argv })?;
    request.push(b'\n');
    stream.write_all(&request)?;
    let mut line = String::new();
    BufReader::new(&stream)
        .read_line(&mut line)
        .with_context(|| format!("reading the daemon's answer on {}", socket.display()))?;
    let response =
        serde_json::from_str(&line).with_context(|| format!("the daemon on {} answered {line:?}", socket.display()))?;
    Ok(Some(response))
}
