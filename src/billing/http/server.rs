//! The billing API's connections: our own accept loop over hyper's HTTP/1.1 connection and
//! tokio-rustls, because axum-server has no cap on connections, no idle keep-alive timeout and
//! no TLS handshake timeout (a probe held 500 idle connections for a minute and starved the
//! daemon of file descriptors).
//!
//! Each connection has a watchdog. Measured with hyper 1.12 (a throwaway probe, 2026-12-05):
//! without a timer, as axum-server ran it, an idle kept-alive connection, a silent one and one
//! with half a request head all stay open (still open after 8 s); with a timer and
//! `header_read_timeout` = 2 s all three are closed after 2 s, because hyper starts that timer
//! whenever it waits for a request (`poll_read_head` in its `proto/h1/conn.rs`). So hyper alone
//! cannot have a keep-alive timeout different from the header timeout. We switch hyper's off and
//! measure ourselves, from the bytes the connection moves and the requests the service sees:
//! - no request in progress, no byte of the next one: closed `keep_alive_timeout` after the
//!   previous answer (a fresh connection: after the shorter of the two timeouts);
//! - the first byte of a request arrived but the service has not been called yet (headers
//!   incomplete): closed `header_read_timeout` after that byte;
//! - a request in progress: closed when no byte moved either way for `request_timeout` (a client
//!   that stops reading its answer, or stops sending its body).
//!
//! With `max_connections` served, a new connection is answered 503 (JSON, `Connection: close`)
//! by a small overflow pool under the same timeouts; beyond that pool it is closed at once.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::IntoResponse;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

use super::config::Limits;
use super::limits::MAX_HEAD_BYTES;

/// TLS settings for the API (rustls, HTTP/1.1 by ALPN).
pub type TlsConfig = Arc<rustls::ServerConfig>;

/// Connections over the cap that still get their 503 answer; more are closed unanswered.
const OVERFLOW_CONNECTIONS: usize = 32;
/// A request's own time limit answers 503 before the watchdog would cut its connection.
const WATCHDOG_GRACE: Duration = Duration::from_secs(1);
/// Requests in flight get this long to finish on shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// TLS settings from the configured files (the key must be private to its owner).
pub async fn tls_config(cert: &std::path::Path, key: &std::path::Path) -> anyhow::Result<TlsConfig> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let cert_pem = tokio::fs::read(cert)
        .await
        .with_context(|| format!("reading {}", cert.display()))?;
    let key_pem = crate::secrets::read_private(key)?;
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("TLS certificate {}", cert.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "TLS certificate {}: no certificate in it",
        cert.display()
    );
    let key_der =
        PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).with_context(|| format!("TLS key {}", key.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .with_context(|| format!("TLS certificate {} / key {}", cert.display(), key.display()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// What the watchdog knows about one connection.
struct Activity {
    /// Requests whose answer is not yet sent in full.
    busy: usize,
    /// When the connection opened or the last answer was sent.
    idle_since: Instant,
    /// Answers sent on this connection.
    answered: u64,
    /// The first byte read while no request was in progress (a request's head under way).
    head_started: Option<Instant>,
    /// The last byte read or written.
    progress: Instant,
}

struct Conn {
    activity: Mutex<Activity>,
    changed: Notify,
    limits: Limits,
}

impl Conn {
    fn new(limits: Limits) -> Arc<Self> {
        let now = Instant::now();
        Arc::new(Conn {
            activity: Mutex::new(Activity {
                busy: 0,
                idle_since: now,
                answered: 0,
                head_started: None,
                progress: now,
            }),
            changed: Notify::new(),
            limits,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Activity> {
        // A poisoned lock only means a panic elsewhere; the numbers are still usable.
        self.activity.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// When the connection is to be closed if nothing changes.
    fn deadline(&self) -> Instant {
        let a = self.lock();
        let l = &self.limits;
        if a.busy > 0 {
            a.progress + l.request_timeout + WATCHDOG_GRACE
        } else if let Some(t) = a.head_started {
            t + l.header_read_timeout
        } else if a.answered == 0 {
            a.idle_since + l.keep_alive_timeout.min(l.header_read_timeout)
        } else {
            a.idle_since + l.keep_alive_timeout
        }
    }

    fn read_some(&self) {
        let now = Instant::now();
        let mut a = self.lock();
        a.progress = now;
        if a.busy == 0 && a.head_started.is_none() {
            a.head_started = Some(now);
            drop(a);
            self.changed.notify_one();
        }
    }

    fn wrote_some(&self) {
        self.lock().progress = Instant::now();
    }

    fn begin(self: &Arc<Self>) -> Busy {
        let mut a = self.lock();
        a.busy += 1;
        a.head_started = None;
        a.progress = Instant::now();
        drop(a);
        self.changed.notify_one();
        Busy(Arc::clone(self))
    }
}

/// A request in progress; dropped when its answer is sent (or the connection is gone).
struct Busy(Arc<Conn>);

impl Drop for Busy {
    fn drop(&mut self) {
        let mut a = self.0.lock();
        a.busy = a.busy.saturating_sub(1);
        if a.busy == 0 {
            a.idle_since = Instant::now();
            a.answered += 1;
            a.head_started = None;
        }
        drop(a);
        self.0.changed.notify_one();
    }
}

/// An answer's body that keeps its request counted as in progress until hyper has sent it.
struct TrackedBody {
    inner: Body,
    _busy: Busy,
}

impl http_body::Body for TrackedBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The socket (plain or TLS), reporting each byte moved to the watchdog.
struct Watched<T> {
    io: T,
    conn: Arc<Conn>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.conn.read_some();
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.conn.wrote_some();
        }
        r
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.conn.wrote_some();
        }
        r
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Serve one connection until it ends, its watchdog fires or shutdown (graceful: the answer in
/// progress is finished, then the connection is closed).
async fn serve_connection<T>(
    io: T,
    conn: Arc<Conn>,
    app: Router,
    remote: SocketAddr,
    keep_alive: bool,
    shutdown: CancellationToken,
) where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = Watched {
        io,
        conn: Arc::clone(&conn),
    };
    let service_conn = Arc::clone(&conn);
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        let busy = service_conn.begin();
        let app = app.clone();
        req.extensions_mut().insert(ConnectInfo(remote));
        async move {
            let resp = app.oneshot(req.map(Body::new)).await.unwrap_or_else(|e| match e {});
            Ok::<_, Infallible>(resp.map(|inner| TrackedBody { inner, _busy: busy }))
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        // Our watchdog measures header reads (see the module comment).
        .header_read_timeout(None)
        .keep_alive(keep_alive)
        .max_buf_size(MAX_HEAD_BYTES);
    let http = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(http);
    let mut stopping = false;
    loop {
        let deadline = conn.deadline();
        tokio::select! {
            r = http.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(remote = %remote, error = %e, "billing API connection ended with an error");
                }
                return;
            }
            _ = tokio::time::sleep_until(deadline) => {
                if Instant::now() >= conn.deadline() {
                    tracing::debug!(remote = %remote, "billing API connection timed out; closed");
                    return;
                }
            }
            _ = conn.changed.notified() => {}
            _ = shutdown.cancelled(), if !stopping => {
                http.as_mut().graceful_shutdown();
                stopping = true;
            }
        }
    }
}

/// The answer to every request on a connection over the cap.
fn overloaded(max: usize) -> Router {
    Router::new().fallback(move || async move {
        let mut resp = super::ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the billing API is serving its limit of {max} connections; try again shortly"),
        )
        .into_response();
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        resp
    })
}

/// Serve the API on `listener` (TLS when `tls` is given) until `shutdown` is cancelled;
/// requests in flight get a few seconds to finish.
pub async fn serve(
    listener: std::net::TcpListener,
    tls: Option<TlsConfig>,
    state: super::ApiState,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let limits = state.limits;
    let refusals = Arc::clone(&state.refusals);
    let app = super::router(state);
    let busy_app = overloaded(limits.max_connections);
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let overflow = Arc::new(Semaphore::new(OVERFLOW_CONNECTIONS));
    let mut summaries = tokio::time::interval(super::refusals::WINDOW);
    loop {
        let (tcp, remote) = tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = summaries.tick() => {
                refusals.flush(Instant::now().into_std());
                continue;
            }
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "billing API cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let (permit, app, keep_alive) = match Arc::clone(&slots).try_acquire_owned() {
            Ok(p) => (p, app.clone(), true),
            Err(_) => match Arc::clone(&overflow).try_acquire_owned() {
                Ok(p) => {
                    crate::metrics::counter_add(crate::metrics::HTTP_CONNECTIONS_REFUSED, &[], 1);
                    (p, busy_app.clone(), false)
                }
                Err(_) => {
                    crate::metrics::counter_add(crate::metrics::HTTP_CONNECTIONS_REFUSED, &[], 1);
                    drop(tcp);
                    continue;
                }
            },
        };
        let conn = Conn::new(limits);
        let shutdown = shutdown.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match acceptor {
                None => serve_connection(tcp, conn, app, remote, keep_alive, shutdown).await,
                Some(acceptor) => {
                    match tokio::time::timeout(limits.tls_handshake_timeout, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => serve_connection(tls, conn, app, remote, keep_alive, shutdown).await,
                        Ok(Err(e)) => tracing::debug!(remote = %remote, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(remote = %remote, "TLS handshake timed out; closed"),
                    }
                }
            }
        });
    }
    drop(listener);
    // Every connection holds a slot; all slots back means all connections are closed.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, slots.acquire_many(all)).await;
    refusals.flush_all();
    Ok(())
}
