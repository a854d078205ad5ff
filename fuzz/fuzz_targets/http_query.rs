//! The billing API's request parsing (paths, query strings, methods), with and without a valid
//! token, against a real store: no input panics or answers 500, and every error answer is the
//! API's JSON error object.
//!
//! Input: the first byte picks the method and whether the token is sent; the rest is the
//! request target (`/v1/batches/next?max=...`).
#![no_main]
use std::sync::{Arc, OnceLock};

use http_body_util::BodyExt as _;
use jiff::Timestamp;
use libfuzzer_sys::fuzz_target;
use meterd::billing::http::{ApiState, HttpConfig, router};
use meterd::store::{RedbStore, Store};
use tower::ServiceExt as _;

struct Api {
    runtime: tokio::runtime::Runtime,
    state: ApiState,
    token: String,
    _dir: std::path::PathBuf,
}

const METERS: &str = "meter_id,account,route,sequence,service,unit,dials,decimals,multiplier,status,address\n\
M1,A1,R1,10,water,gal,6,0,1,active,1 Main St\n";
const READS: &str = "meter_id,read_at,value\nM1,2026-11-01T08:00:00Z,100\nM1,2026-12-01T08:00:00Z,150\n";

fn api() -> &'static Api {
    static API: OnceLock<Api> = OnceLock::new();
    API.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("meterd-fuzz-http-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let store: Arc<dyn Store> = Arc::new(RedbStore::open_dir(&dir).unwrap());
        let meters = meterd::ingest::files::parse_meters_csv_bytes("m.csv", METERS.as_bytes()).unwrap();
        meterd::ingest::files::store_meters(store.as_ref(), &meters).unwrap();
        meterd::ingest::files::import_reads_bytes(
            store.as_ref(),
            &Default::default(),
            "r.csv",
            READS.as_bytes(),
            100,
            &mut |_| {},
        )
        .unwrap();
        let token = meterd::billing::tokens::create(store.as_ref(), "cis", Timestamp::now()).unwrap();
        let state = ApiState::new(store, &HttpConfig::default()).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        Api { runtime, state, token, _dir: dir }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, target)) = data.split_first() else { return };
    let method = ["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS", "GET"][usize::from(first & 7)];
    let api = api();
    let mut request = axum::http::Request::builder().method(method);
    match axum::http::Uri::try_from(target) {
        Ok(uri) if uri.path().starts_with('/') => request = request.uri(uri),
        _ => return,
    }
    if first & 8 == 0 {
        request = request.header("authorization", format!("Bearer {}", api.token));
    }
    let request = request.body(axum::body::Body::empty()).unwrap();
    let (status, content_type, body) = api.runtime.block_on(async {
        let response = router(api.state.clone()).oneshot(request).await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, content_type, body)
    });
    assert_ne!(status.as_u16(), 500, "{method} {target:?}: {body:?}");
    if status.is_client_error() || status.is_server_error() {
        assert!(content_type.starts_with("application/json"), "{method} {target:?} {status}: {content_type}");
        // A HEAD answer has no body (RFC 9110 §9.3.2); its content type still says JSON.
        if method != "HEAD" {
            let error: serde_json::Value = serde_json::from_slice(&body).expect("error answer is JSON");
            assert!(error.get("error").and_then(|e| e.as_str()).is_some(), "{error}");
        }
    }
});
