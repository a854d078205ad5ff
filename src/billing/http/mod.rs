//! The billing pull API (axum): batches, acknowledgements, meter history, health and metrics.
//!
//! Every route but `/healthz` needs `Authorization: Bearer <token>` of a billing client
//! (`meterd tokens create NAME`); the client's name is who the batch is for. A request without
//! a valid token gets 401 and a warning in the log (remote address and path, never the token).
//! TLS (rustls) is used when `tls_cert` and `tls_key` are configured; the default listen
//! address is loopback. Store work runs on the blocking pool; a batch is committed before its
//! first byte is sent and an ack is committed before it is answered.

pub mod config;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::{ConnectInfo, MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::layouts::Layouts;
use super::render::{self, Format};
use super::{AckOutcome, tokens};
use crate::metrics;
use crate::model::{BatchStatus, ReadStatus, Rule};
use crate::store::Store;

pub use config::{DEFAULT_MAX_READS, DEFAULT_PORT, HttpConfig};

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub store: Arc<dyn Store>,
    pub layouts: Arc<Layouts>,
    pub time_zone: TimeZone,
    pub max_reads: usize,
}

impl ApiState {
    pub fn new(store: Arc<dyn Store>, config: &HttpConfig) -> anyhow::Result<Self> {
        Ok(ApiState {
            store,
            layouts: Arc::new(Layouts::load(config.layouts_dir.as_deref())?),
            time_zone: config.time_zone()?,
            max_reads: config.max_reads.max(1),
        })
    }

    /// A format by name: `json`, `csv`, `cmep` or a layout name.
    pub fn format(&self, name: Option<&str>) -> Result<Format, ApiError> {
        resolve_format(&self.layouts, &self.time_zone, name.unwrap_or("json")).ok_or_else(|| {
            ApiError::bad(format!(
                "unknown format {:?}; use json, csv, cmep or a layout: {}",
                name.unwrap_or(""),
                self.layouts.names().collect::<Vec<_>>().join(", ")
            ))
        })
    }
}

/// A format by name (`json`, `csv`, `cmep` or a layout name).
pub fn resolve_format(layouts: &Layouts, tz: &TimeZone, name: &str) -> Option<Format> {
    match name {
        "json" => Some(Format::Json),
        "csv" => Some(Format::Csv),
        "cmep" => Some(Format::Cmep),
        other => layouts.get(other).map(|l| Format::Layout(l, tz.clone())),
    }
}

/// An error answer: status and a JSON `{"error": ...}` body.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn bad(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }
    fn not_found(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }
    fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "billing API request failed");
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: e.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(serde_json::json!({ "error": self.message }))).into_response()
    }
}

/// The billing client a request was authenticated as.
#[derive(Debug, Clone)]
pub struct Client(pub String);

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> anyhow::Result<T> + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| ApiError::internal(format!("{e:#}")))
}

/// Every route of the API: (method, path, handler). The router and the OpenAPI test both use it.
pub fn routes() -> Vec<(&'static str, &'static str, MethodRouter<ApiState>)> {
    vec![
        ("get", "/healthz", get(healthz)),
        ("get", "/metrics", get(metrics_text)),
        ("get", "/v1/batches/next", get(next_batch)),
        ("get", "/v1/batches", get(list_batches)),
        ("get", "/v1/batches/{id}", get(get_batch)),
        ("post", "/v1/batches/{id}/ack", post(ack_batch)),
        ("get", "/v1/meters/{id}/reads", get(meter_reads)),
    ]
}

/// Routes that answer without a token.
pub const PUBLIC: [&str; 1] = ["/healthz"];

/// The API with authentication in front of every route but [`PUBLIC`] ones.
pub fn router(state: ApiState) -> Router {
    let mut public = Router::new();
    let mut protected = Router::new();
    for (_, path, handler) in routes() {
        if PUBLIC.contains(&path) {
            public = public.route(path, handler);
        } else {
            protected = protected.route(path, handler);
        }
    }
    let protected = protected.route_layer(middleware::from_fn_with_state(state.clone(), authenticate));
    public.merge(protected).with_state(state)
}

async fn authenticate(State(state): State<ApiState>, mut req: Request, next: Next) -> Response {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(|t| t.trim().to_owned());
    let client = match presented {
        Some(token) if !token.is_empty() => {
            let store = Arc::clone(&state.store);
            match blocking(move || Ok(tokens::verify(store.as_ref(), &token)?)).await {
                Ok(c) => c,
                Err(e) => return e.into_response(),
            }
        }
        _ => None,
    };
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let Some(client) = client else {
        let remote = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.to_string())
            .unwrap_or_else(|| "unknown".into());
        tracing::warn!(remote = %remote, path = %req.uri().path(), "billing API request without a valid token refused");
        metrics::counter_add(metrics::HTTP_UNAUTHORIZED, &[], 1);
        let mut resp = ApiError {
            status: StatusCode::UNAUTHORIZED,
            message: "a valid bearer token is required".into(),
        }
        .into_response();
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"meterd\""),
        );
        return resp;
    };
    req.extensions_mut().insert(Client(client));
    let resp = next.run(req).await;
    metrics::counter_add(
        metrics::HTTP_REQUESTS,
        &[("route", &route), ("code", resp.status().as_str())],
        1,
    );
    resp
}

async fn healthz(State(state): State<ApiState>) -> Response {
    let store = Arc::clone(&state.store);
    match blocking(move || Ok(store.begin_read()?.count_reads()?)).await {
        Ok(_) => (StatusCode::OK, "ok\n").into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n").into_response(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NextQuery {
    max: Option<usize>,
    format: Option<String>,
}

fn rendered(doc: &super::BatchDoc, format: &Format) -> Result<Response, ApiError> {
    let body = render::render(doc, format).map_err(|e| ApiError {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        message: e.to_string(),
    })?;
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    h.insert("x-batch-id", HeaderValue::from(doc.batch.id));
    Ok(resp)
}

async fn next_batch(
    State(state): State<ApiState>,
    axum::Extension(Client(client)): axum::Extension<Client>,
    Query(q): Query<NextQuery>,
) -> Result<Response, ApiError> {
    let format = state.format(q.format.as_deref())?;
    let max = q.max.unwrap_or(state.max_reads).clamp(1, state.max_reads);
    let store = Arc::clone(&state.store);
    let doc = blocking(move || Ok(super::pull(store.as_ref(), &client, max, Timestamp::now())?)).await?;
    match doc {
        Some(doc) => tokio::task::spawn_blocking(move || rendered(&doc, &format))
            .await
            .map_err(ApiError::internal)?,
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FormatQuery {
    format: Option<String>,
}

fn parse_id(id: &str) -> Result<u64, ApiError> {
    id.parse()
        .map_err(|_| ApiError::bad(format!("batch id {id:?} is not a number")))
}

async fn get_batch(
    State(state): State<ApiState>,
    axum::Extension(Client(client)): axum::Extension<Client>,
    Path(id): Path<String>,
    Query(q): Query<FormatQuery>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let format = state.format(q.format.as_deref())?;
    let store = Arc::clone(&state.store);
    let doc = blocking(move || Ok(super::get_doc(store.as_ref(), id)?)).await?;
    match doc {
        Some(doc) if doc.batch.client == client => tokio::task::spawn_blocking(move || rendered(&doc, &format))
            .await
            .map_err(ApiError::internal)?,
        _ => Err(ApiError::not_found(format!("batch {id} not found"))),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<String>,
}

#[derive(Serialize)]
struct BatchSummary {
    id: u64,
    status: &'static str,
    created_at: String,
    acked_at: Option<String>,
    reads: usize,
}

async fn list_batches(
    State(state): State<ApiState>,
    axum::Extension(Client(client)): axum::Extension<Client>,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let status = match q.status.as_deref() {
        None | Some("all") => None,
        Some("open") => Some(BatchStatus::Open),
        Some("acked") => Some(BatchStatus::Acked),
        Some(other) => return Err(ApiError::bad(format!("status {other:?}: use open, acked or all"))),
    };
    let store = Arc::clone(&state.store);
    let batches = blocking(move || Ok(store.begin_read()?.batches(status)?)).await?;
    let list: Vec<BatchSummary> = batches
        .into_iter()
        .filter(|b| b.client == client)
        .map(|b| BatchSummary {
            id: b.id,
            status: if b.status == BatchStatus::Open { "open" } else { "acked" },
            created_at: b.created_at.to_string(),
            acked_at: b.acked_at.map(|t| t.to_string()),
            reads: b.read_ids.len(),
        })
        .collect();
    Ok(axum::Json(serde_json::json!({ "batches": list })).into_response())
}

async fn ack_batch(
    State(state): State<ApiState>,
    axum::Extension(Client(client)): axum::Extension<Client>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let store = Arc::clone(&state.store);
    let outcome = blocking(move || {
        match store.begin_read()?.batch(id)? {
            Some(b) if b.client == client => {}
            _ => return Ok(None),
        }
        Ok(Some(super::ack_batch(store.as_ref(), id, Timestamp::now())?))
    })
    .await?;
    match outcome {
        Some(AckOutcome::Acked { reads }) => Ok(axum::Json(
            serde_json::json!({ "id": id, "status": "acked", "reads": reads, "already_acked": false }),
        )
        .into_response()),
        Some(AckOutcome::AlreadyAcked) => {
            Ok(axum::Json(serde_json::json!({ "id": id, "status": "acked", "already_acked": true })).into_response())
        }
        None => Err(ApiError::not_found(format!("batch {id} not found"))),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadsQuery {
    from: Option<String>,
    to: Option<String>,
}

fn parse_time(name: &str, v: Option<&str>, default: Timestamp) -> Result<Timestamp, ApiError> {
    match v {
        None | Some("") => Ok(default),
        Some(t) => t.parse().map_err(|e| {
            ApiError::bad(format!(
                "{name} {t:?} is not an RFC 3339 time (2026-11-01T00:00:00Z): {e}"
            ))
        }),
    }
}

#[derive(Serialize)]
struct HistoryRead {
    read_id: u64,
    read_at: String,
    value: crate::model::Quantity,
    consumption: Option<crate::model::Quantity>,
    status: ReadStatus,
    read_type: &'static str,
    flags: Vec<Rule>,
    codes: Vec<String>,
    batch: Option<u64>,
}

async fn meter_reads(
    State(state): State<ApiState>,
    Path(meter): Path<String>,
    Query(q): Query<ReadsQuery>,
) -> Result<Response, ApiError> {
    let from = parse_time("from", q.from.as_deref(), Timestamp::MIN)?;
    let to = parse_time("to", q.to.as_deref(), Timestamp::MAX)?;
    if from > to {
        return Err(ApiError::bad("from is after to"));
    }
    let store = Arc::clone(&state.store);
    let id = meter.clone();
    let (known, reads) = blocking(move || {
        let txn = store.begin_read()?;
        Ok((txn.meter(&id)?.is_some(), txn.meter_reads(&id, from, to)?))
    })
    .await?;
    if !known && reads.is_empty() {
        return Err(ApiError::not_found(format!("meter {meter} not found")));
    }
    let reads: Vec<HistoryRead> = reads
        .into_iter()
        .map(|r| HistoryRead {
            read_id: r.id,
            read_at: r.read.read_at.to_string(),
            value: r.read.value,
            consumption: r.consumption,
            status: r.status,
            read_type: r.read.read_type.as_str(),
            flags: r.flags.iter().map(|f| f.rule).collect(),
            codes: r.read.codes,
            batch: r.batch,
        })
        .collect();
    Ok(axum::Json(serde_json::json!({ "meter_id": meter, "reads": reads })).into_response())
}

async fn metrics_text(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let store = Arc::clone(&state.store);
    let body = blocking(move || Ok(metrics::metrics_body(store.as_ref())?)).await?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        body,
    )
        .into_response())
}

/// TLS settings from the configured files (the key must be private to its owner).
pub async fn tls_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> anyhow::Result<axum_server::tls_rustls::RustlsConfig> {
    let cert_pem = tokio::fs::read(cert)
        .await
        .with_context(|| format!("reading {}", cert.display()))?;
    let key_pem = crate::secrets::read_private(key)?;
    axum_server::tls_rustls::RustlsConfig::from_pem(cert_pem, key_pem.into_bytes())
        .await
        .with_context(|| format!("TLS certificate {} / key {}", cert.display(), key.display()))
}

/// Serve the API on `listener` (TLS when `tls` is given) until `shutdown` is cancelled;
/// requests in flight get a few seconds to finish.
pub async fn serve(
    listener: std::net::TcpListener,
    tls: Option<axum_server::tls_rustls::RustlsConfig>,
    state: ApiState,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    listener.set_nonblocking(true)?;
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.cancelled().await;
        stopper.graceful_shutdown(Some(Duration::from_secs(5)));
    });
    match tls {
        Some(tls) => {
            axum_server::tls_rustls::from_tcp_rustls(listener, tls)?
                .handle(handle)
                .serve(app)
                .await?
        }
        None => axum_server::from_tcp(listener)?.handle(handle).serve(app).await?,
    }
    Ok(())
}

/// The daemon component: bind, serve until the token is cancelled.
pub async fn run(store: Arc<dyn Store>, config: HttpConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let state = ApiState::new(store, &config)?;
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(c), Some(k)) => Some(tls_config(c, k).await?),
        (None, None) => None,
        _ => anyhow::bail!("[http] needs both tls_cert and tls_key for TLS, or neither"),
    };
    let listener = std::net::TcpListener::bind(config.listen)
        .with_context(|| format!("billing API cannot listen on {}", config.listen))?;
    if tls.is_none() && !config.listen.ip().is_loopback() {
        tracing::warn!(listen = %config.listen, "billing API serves plain HTTP on a non-loopback address; configure tls_cert and tls_key");
    }
    tracing::info!(listen = %listener.local_addr()?, tls = tls.is_some(), "billing API listening");
    serve(listener, tls, state, shutdown).await
}
