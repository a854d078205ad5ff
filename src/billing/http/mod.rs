//! The billing pull API (axum): batches, acknowledgements, meter history, health and metrics.
//!
//! Every route but `/healthz` needs `Authorization: Bearer <token>` of a billing client
//! (`meterd tokens create NAME`); the client's name is who the batch is for. A request without
//! a valid token gets 401 and a warning in the log (remote address and path, never the token;
//! repeated refusals from one address are summed per minute: [`refusals`]).
//! Connections and requests are bounded ([`server`], [`limits`]); every error answer is JSON.
//! TLS (rustls) is used when `tls_cert` and `tls_key` are configured; the default listen
//! address is loopback. Store work runs on the blocking pool; a batch is committed before its
//! first byte is sent and an ack is committed before it is answered.

pub mod config;
pub mod limits;
pub mod refusals;
pub mod server;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use axum::extract::{ConnectInfo, MatchedPath, Path, Query, Request, State};

use crate::billing::interval_render::IntervalExport;
use crate::billing::intervals::IntervalBatchDoc;
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
use crate::model::limits::quote;
use crate::model::{BatchStatus, ReadStatus, Rule};
use crate::store::{Store, StoreError};

pub use config::{DEFAULT_MAX_READS, DEFAULT_PORT, HttpConfig, Limits};
pub use server::{TlsConfig, serve, tls_config};

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub store: Arc<dyn Store>,
    pub layouts: Arc<Layouts>,
    pub time_zone: TimeZone,
    pub max_reads: usize,
    /// Connection and request limits (`[http]`).
    pub limits: Limits,
    /// Requests refused for want of a token, summarised per address in the log.
    pub refusals: Arc<refusals::Refusals>,
    /// The utility's days and time-of-use periods, for interval batches.
    pub intervals: Arc<IntervalSettings>,
}

/// What rendering interval batches needs from the configuration (`[intervals]`, `[tou]`).
#[derive(Debug, Clone)]
pub struct IntervalSettings {
    pub clock: crate::model::interval::DayClock,
    pub tou: Option<crate::billing::tou::TouConfig>,
    pub holidays: Vec<jiff::civil::Date>,
}

impl IntervalSettings {
    pub fn from_config(
        intervals: &crate::vee::interval::IntervalConfig,
        tou: Option<&crate::billing::tou::TouConfig>,
    ) -> Self {
        IntervalSettings {
            clock: intervals.clock(),
            tou: tou.cloned(),
            holidays: intervals.holidays.clone(),
        }
    }

    fn render_context(&self) -> crate::billing::interval_render::RenderContext<'_> {
        crate::billing::interval_render::RenderContext {
            clock: &self.clock,
            tou: self.tou.as_ref(),
            holidays: &self.holidays,
        }
    }
}

impl Default for IntervalSettings {
    fn default() -> Self {
        Self::from_config(&Default::default(), None)
    }
}

impl ApiState {
    pub fn new(store: Arc<dyn Store>, config: &HttpConfig) -> anyhow::Result<Self> {
        Ok(ApiState {
            store,
            layouts: Arc::new(Layouts::load(config.layouts_dir.as_deref())?),
            time_zone: config.time_zone()?,
            max_reads: config.max_reads.max(1),
            limits: config.limits(),
            refusals: Arc::default(),
            intervals: Arc::default(),
        })
    }

    /// The same state rendering interval batches with these settings.
    pub fn with_intervals(mut self, intervals: IntervalSettings) -> Self {
        self.intervals = Arc::new(intervals);
        self
    }

    /// A format by name: `json`, `csv`, `cmep` or a layout name.
    pub fn format(&self, name: Option<&str>) -> Result<Format, ApiError> {
        resolve_format(&self.layouts, &self.time_zone, name.unwrap_or("json")).ok_or_else(|| {
            ApiError::bad(format!(
                "unknown format {}; use json, csv, cmep or a layout: {}",
                quote(name.unwrap_or("")),
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
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }
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
        .map_err(failed)
}

/// A failed store operation: a conflict (a concurrent change; retrying is safe) is 409, the
/// rest 500.
fn failed(e: anyhow::Error) -> ApiError {
    let conflict = e
        .chain()
        .any(|c| matches!(c.downcast_ref::<StoreError>(), Some(StoreError::Conflict(_))));
    if conflict {
        tracing::info!(error = %format!("{e:#}"), "billing API request met a concurrent change");
        ApiError::new(StatusCode::CONFLICT, format!("{e:#}; try again"))
    } else {
        ApiError::internal(format!("{e:#}"))
    }
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
    let limits = state.limits;
    public
        .merge(protected)
        .fallback(limits::not_found)
        .with_state(state)
        .layer(middleware::from_fn_with_state(limits, limits::guard))
        .layer(middleware::from_fn(limits::json_errors))
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
            .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |c| c.0);
        state
            .refusals
            .refused(remote, req.uri().path(), std::time::Instant::now());
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
        Err(_) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the store does not answer").into_response(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NextQuery {
    max: Option<u64>,
    format: Option<String>,
    /// `reads` (default) or `intervals`.
    kind: Option<String>,
}

/// An interval batch in the format named (`json` by default).
fn interval_rendered(state: &ApiState, doc: &IntervalBatchDoc, format: Option<&str>) -> Result<Response, ApiError> {
    let name = format.unwrap_or("json");
    let format = IntervalExport::parse(name).ok_or_else(|| {
        ApiError::bad(format!(
            "unknown interval format {}; use {}",
            quote(name),
            IntervalExport::NAMES
        ))
    })?;
    let body = crate::billing::interval_render::render(doc, format, &state.intervals.render_context())
        .map_err(|e| unrenderable(&e))?;
    Ok(batch_response(body, format.content_type(), doc.batch.id))
}

/// A batch the format cannot carry (a value too long for a fixed-width field, ...).
fn unrenderable(e: &dyn std::fmt::Display) -> ApiError {
    ApiError {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        message: e.to_string(),
    }
}

/// A rendered batch with its content type and `X-Batch-Id`.
fn batch_response(body: Vec<u8>, content_type: &'static str, id: u64) -> Response {
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert("x-batch-id", HeaderValue::from(id));
    resp
}

fn is_intervals(kind: Option<&str>) -> Result<bool, ApiError> {
    match kind {
        None | Some("reads") => Ok(false),
        Some("intervals") => Ok(true),
        Some(other) => Err(ApiError::bad(format!("kind {}: use reads or intervals", quote(other)))),
    }
}

fn rendered(doc: &super::BatchDoc, format: &Format) -> Result<Response, ApiError> {
    let body = render::render(doc, format).map_err(|e| unrenderable(&e))?;
    Ok(batch_response(body, format.content_type(), doc.batch.id))
}

async fn next_batch(
    State(state): State<ApiState>,
    axum::Extension(Client(client)): axum::Extension<Client>,
    Query(q): Query<NextQuery>,
) -> Result<Response, ApiError> {
    let max = match q.max {
        None => state.max_reads,
        Some(m) if (1..=state.max_reads as u64).contains(&m) => m as usize,
        Some(m) => return Err(ApiError::bad(format!("max {m}: use 1..={}", state.max_reads))),
    };
    if is_intervals(q.kind.as_deref())? {
        // Checked before anything is taken into a batch.
        if let Some(f) = q.format.as_deref()
            && IntervalExport::parse(f).is_none()
        {
            return Err(ApiError::bad(format!(
                "unknown interval format {}; use {}",
                quote(f),
                IntervalExport::NAMES
            )));
        }
        let store = Arc::clone(&state.store);
        let doc = blocking(move || {
            Ok(super::intervals::pull_days(
                store.as_ref(),
                &client,
                max,
                Timestamp::now(),
            )?)
        })
        .await?;
        return match doc {
            Some(doc) => tokio::task::spawn_blocking(move || interval_rendered(&state, &doc, q.format.as_deref()))
                .await
                .map_err(ApiError::internal)?,
            None => Ok(StatusCode::NO_CONTENT.into_response()),
        };
    }
    let format = state.format(q.format.as_deref())?;
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
        .map_err(|_| ApiError::bad(format!("batch id {} is not a number", quote(id))))
}

async fn get_batch(
    State(state): State<ApiState>,
    axum::Extension(Client(client)): axum::Extension<Client>,
    Path(id): Path<String>,
    Query(q): Query<FormatQuery>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let store = Arc::clone(&state.store);
    let interval_doc = blocking(move || Ok(super::intervals::get_interval_doc(store.as_ref(), id)?)).await?;
    if let Some(doc) = interval_doc {
        if doc.batch.client != client {
            return Err(ApiError::not_found(format!("batch {id} not found")));
        }
        return tokio::task::spawn_blocking(move || interval_rendered(&state, &doc, q.format.as_deref()))
            .await
            .map_err(ApiError::internal)?;
    }
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
    /// `reads` or `intervals`.
    kind: &'static str,
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
        Some(other) => {
            return Err(ApiError::bad(format!(
                "status {}: use open, acked or all",
                quote(other)
            )));
        }
    };
    let store = Arc::clone(&state.store);
    let (batches, interval_batches) = blocking(move || {
        let txn = store.begin_read()?;
        Ok((txn.batches(status)?, txn.interval_batches()?))
    })
    .await?;
    let open_or_acked = |s: BatchStatus| if s == BatchStatus::Open { "open" } else { "acked" };
    let mut list: Vec<BatchSummary> = batches
        .into_iter()
        .filter(|b| b.client == client)
        .map(|b| BatchSummary {
            id: b.id,
            kind: "reads",
            status: open_or_acked(b.status),
            created_at: b.created_at.to_string(),
            acked_at: b.acked_at.map(|t| t.to_string()),
            reads: b.read_ids.len(),
        })
        .collect();
    list.extend(
        interval_batches
            .into_iter()
            .filter(|b| b.client == client && status.is_none_or(|s| s == b.status))
            .map(|b| BatchSummary {
                id: b.id,
                kind: "intervals",
                status: open_or_acked(b.status),
                created_at: b.created_at.to_string(),
                acked_at: b.acked_at.map(|t| t.to_string()),
                reads: b.days.len(),
            }),
    );
    list.sort_by_key(|b| b.id);
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
        let txn = store.begin_read()?;
        if let Some(b) = txn.interval_batch(id)? {
            drop(txn);
            if b.client != client {
                return Ok(None);
            }
            return Ok(Some(super::intervals::ack_interval_batch(
                store.as_ref(),
                id,
                Timestamp::now(),
            )?));
        }
        match txn.batch(id)? {
            Some(b) if b.client == client => {}
            _ => return Ok(None),
        }
        drop(txn);
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
        None => Ok(default),
        Some(t) => rfc3339(t).map_err(|e| {
            ApiError::bad(format!(
                "{name} {} is not an RFC 3339 time (2026-11-01T00:00:00Z): {e}",
                quote(t)
            ))
        }),
    }
}

/// An RFC 3339 `date-time` (section 5.6), exactly: jiff alone accepts more (no seconds, a
/// space for T, ISO 8601 week dates), which the API's document does not promise.
fn rfc3339(t: &str) -> Result<Timestamp, String> {
    let b = t.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    let shape = b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && matches!(b[10], b'T' | b't')
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    if !shape {
        return Err("want YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)".into());
    }
    let mut rest = &t[19..];
    let mut fraction = "";
    if let Some(r) = rest.strip_prefix('.') {
        let n = r.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return Err("a fraction of a second needs digits".into());
        }
        // jiff keeps nanoseconds; further digits cannot change the instant it stands for.
        fraction = &r[..n.min(9)];
        rest = &r[n..];
    }
    let ob = rest.as_bytes();
    let offset_ok = matches!(rest, "Z" | "z")
        || (ob.len() == 6
            && matches!(ob[0], b'+' | b'-')
            && ob[1..3].iter().all(u8::is_ascii_digit)
            && ob[3] == b':'
            && ob[4..6].iter().all(u8::is_ascii_digit)
            && rest[1..3] < *"24"
            && rest[4..6] < *"60");
    if !offset_ok {
        return Err("want Z or an offset +HH:MM / -HH:MM at the end".into());
    }
    let offset = if matches!(rest, "Z" | "z") { "Z" } else { rest };
    let frac = if fraction.is_empty() {
        String::new()
    } else {
        format!(".{fraction}")
    };
    format!("{}T{}{frac}{offset}", &t[..10], &t[11..19])
        .parse()
        .map_err(|e: jiff::Error| e.to_string())
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
    let store = Arc::clone(&state.store);
    let id = meter.clone();
    let (known, reads) = blocking(move || {
        let txn = store.begin_read()?;
        // `to` is exclusive: from at or after to is an empty interval (every value of the
        // document's date-time is a valid request), not an error, and not a reversed range
        // for the store.
        let reads = if from < to {
            txn.meter_reads(&id, from, to)?
        } else {
            Vec::new()
        };
        Ok((txn.meter(&id)?.is_some(), reads))
    })
    .await?;
    if !known && reads.is_empty() {
        return Err(ApiError::not_found(format!("meter {} not found", quote(&meter))));
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

/// The daemon component: bind, serve until the token is cancelled.
pub async fn run(
    store: Arc<dyn Store>,
    config: HttpConfig,
    intervals: IntervalSettings,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let state = ApiState::new(store, &config)?.with_intervals(intervals);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_conflict_is_409_other_failures_500() {
        let e = failed(anyhow::Error::new(StoreError::Conflict("read 7 is in batch 3".into())).context("pulling"));
        assert_eq!(e.status, StatusCode::CONFLICT, "{}", e.message);
        assert!(e.message.contains("read 7 is in batch 3"));
        let e = failed(anyhow::Error::new(StoreError::Engine("disk".into())));
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn times_are_rfc_3339_exactly() {
        for ok in [
            "2026-11-01T00:00:00Z",
            "2026-11-01t00:00:00z",
            "2026-11-01T00:00:00.5-06:00",
            "2026-11-01T00:00:00.123456789123+05:30",
            "0001-01-01T00:00:00Z",
        ] {
            assert!(rfc3339(ok).is_ok(), "{ok}: {:?}", rfc3339(ok));
        }
        assert_eq!(
            rfc3339("2026-11-01T00:00:00.5-06:00").unwrap(),
            "2026-11-01T06:00:00.5Z".parse::<Timestamp>().unwrap()
        );
        for bad in [
            "",
            "2026-11-01",
            "2026-11-01 00:00:00Z",
            "2026-11-01T00:00Z",
            "2026-11-01T00:00:00",
            "2026-11-01T00:00:00.Z",
            "2026-11-01T00:00:00+0600",
            "2026-11-01T00:00:00+24:00",
            "2026-13-01T00:00:00Z",
            "2026-11-01T00:00:00Zjunk",
            "２026-11-01T00:00:00Z",
        ] {
            assert!(rfc3339(bad).is_err(), "{bad:?} accepted");
        }
    }
}
