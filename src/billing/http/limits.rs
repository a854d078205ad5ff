//! Request limits and JSON error answers, as router middleware (so every way of serving the
//! router, the fuzz target's included, has them).
//!
//! - a request target over [`MAX_URI_BYTES`] gets 414, headers over [`MAX_HEADER_BYTES`] in all
//!   get 431, a body over `[http] max_body_bytes` gets 413 (the body is read here, bounded, so a
//!   chunked body without a length is refused too);
//! - a request not done within `[http] request_timeout_secs` gets 408 while its body is still
//!   arriving, 503 after;
//! - every error answer, whoever made it (axum's extractor rejections, 404, 405), leaves as the
//!   API's `{"error": "..."}` with `Content-Type: application/json`.
//!
//! What stays outside: hyper answers by itself, before any middleware, a request head over
//! [`MAX_HEAD_BYTES`] (431) or with more than 100 headers (431), a request line it cannot parse
//! (400) and a target over 65534 bytes (414), each with an empty body, then closes the
//! connection. Those requests never reach the router; the limits above are lower, so a head
//! within hyper's buffer gets the JSON answer.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use tokio::time::Instant;

use super::ApiError;
use super::config::Limits;

/// Longest request target (path and query) answered with a JSON 414.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Most header bytes (names and values) answered with a JSON 431.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// hyper's read buffer: a request head longer than this is refused by hyper itself.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// An error body from below longer than this is cut (they are one-line messages).
const MAX_ERROR_TEXT: usize = 1024;

/// Refuse over-long targets, headers and bodies; bound the request's time.
pub async fn guard(State(limits): State<Limits>, req: Request, next: Next) -> Response {
    let target = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if target > MAX_URI_BYTES {
        return ApiError::new(
            StatusCode::URI_TOO_LONG,
            format!("the request target is {target} bytes; at most {MAX_URI_BYTES}"),
        )
        .into_response();
    }
    let head: usize = req.headers().iter().map(|(n, v)| n.as_str().len() + v.len() + 4).sum();
    if head > MAX_HEADER_BYTES {
        return ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!("the request headers are {head} bytes; at most {MAX_HEADER_BYTES}"),
        )
        .into_response();
    }
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is over {} bytes", limits.max_body_bytes),
        )
        .into_response()
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_body_bytes as u64) {
        return too_large();
    }
    let deadline = Instant::now() + limits.request_timeout;
    let (parts, body) = req.into_parts();
    let body = match tokio::time::timeout_at(deadline, Limited::new(body, limits.max_body_bytes).collect()).await {
        Err(_) => {
            return ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                timeout_text("the request body", limits.request_timeout),
            )
            .into_response();
        }
        Ok(Err(e)) if e.is::<LengthLimitError>() => return too_large(),
        Ok(Err(e)) => {
            return ApiError::new(StatusCode::BAD_REQUEST, format!("reading the request body: {e}")).into_response();
        }
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    let req = Request::from_parts(parts, Body::from(body));
    match tokio::time::timeout_at(deadline, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            timeout_text("the request", limits.request_timeout),
        )
        .into_response(),
    }
}

fn timeout_text(what: &str, limit: Duration) -> String {
    format!("{what} did not complete within {} s", limit.as_secs())
}

/// Turn every error answer that is not JSON yet into `{"error": "..."}`: the text it had, or
/// the status's reason when it had none. Headers (Allow, WWW-Authenticate) are kept.
pub async fn json_errors(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let text = match Limited::new(body, MAX_ERROR_TEXT).collect().await {
        Ok(c) => String::from_utf8_lossy(&c.to_bytes()).trim().to_owned(),
        Err(_) => String::new(),
    };
    let text = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_lowercase()
    } else {
        text
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let body = serde_json::json!({ "error": text }).to_string();
    Response::from_parts(parts, Body::from(body))
}

/// Requests no route matches.
pub async fn not_found(req: Request) -> Response {
    let path: String = req.uri().path().chars().take(80).collect();
    ApiError::new(StatusCode::NOT_FOUND, format!("no such route: {path:?}")).into_response()
}
