//! What each of meterd's own fuzz targets checks (`fuzz/`), written once: the cargo-fuzz targets
//! call these functions and `tests/it/fuzz_corpus.rs` calls the same ones on every saved input,
//! so a replay checks exactly what the fuzzer checked. A check panics when a property fails.
//! The protocol parsers' checks are in `meterd_protocols::fuzz_checks`.

use std::sync::{Arc, OnceLock};

use http_body_util::BodyExt as _;
use jiff::Timestamp;
use tower::ServiceExt as _;

use crate::billing::http::{ApiState, HttpConfig, router};
use crate::config::Config;
use crate::ingest::files::{self, RouteFileOptions};
use crate::store::{RedbStore, Store};

/// A fuzz target's check: panics when a property fails.
pub type Check = fn(&[u8]);

/// Every fuzz target by name with its check.
pub const TARGETS: &[(&str, Check)] = &[
    ("reads_csv", reads_csv),
    ("autoread_route", autoread_route),
    ("config_file", config_file),
    ("http_query", http_query),
];

/// The check of the named target.
pub fn check_for(target: &str) -> Option<Check> {
    TARGETS.iter().find(|(name, _)| *name == target).map(|(_, f)| *f)
}

/// The CSV imports (`reads import`, `meters import`): any bytes give reads, meters or an error
/// naming the file, never a panic.
pub fn reads_csv(data: &[u8]) {
    let _ = files::parse_reads_csv_bytes("fuzz.csv", data);
    let _ = files::parse_meters_csv_bytes("fuzz.csv", data);
}

/// The Sensus AutoRead route import: meters or an error naming the file and line.
pub fn autoread_route(data: &[u8]) {
    let _ = files::parse_sensus_route_bytes("ROUTE01.DAT", data.to_vec(), &RouteFileOptions::default());
}

/// The configuration file: any text is a configuration or an error; an accepted configuration
/// prints (`meterd check-config`) and reads back as itself.
pub fn config_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(config) = Config::parse(text, "fuzz.toml") else {
        return;
    };
    let _ = config.effective_toml();
    let printed = toml::to_string(&config).expect("an accepted configuration prints");
    let again = Config::parse(&printed, "printed.toml").expect("a printed configuration parses");
    assert_eq!(config, again, "configuration round trip");
}

/// The billing API over a small real store, built once per process.
struct Api {
    runtime: tokio::runtime::Runtime,
    state: ApiState,
    token: String,
    _dir: tempfile::TempDir,
}

fn api() -> &'static Api {
    static API: OnceLock<Api> = OnceLock::new();
    API.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let store: Arc<dyn Store> = Arc::new(RedbStore::open_dir(dir.path()).expect("a store"));
        let meters = files::parse_meters_csv_bytes(
            "m.csv",
            b"meter_id,account,route,sequence,service,unit,dials,decimals,multiplier,status,address\n\
              M1,A1,R1,10,water,gal,6,0,1,active,1 Main St\n",
        )
        .expect("meters");
        files::store_meters(store.as_ref(), &meters).expect("meters stored");
        let reads = b"meter_id,read_at,value\nM1,2026-11-01T08:00:00Z,100\nM1,2026-12-01T08:00:00Z,150\n";
        files::import_reads_bytes(store.as_ref(), &Default::default(), "r.csv", reads, 100, &mut |_| {})
            .expect("reads stored");
        let token = crate::billing::tokens::create(store.as_ref(), "cis", Timestamp::now()).expect("a token");
        let state = ApiState::new(store, &HttpConfig::default()).expect("the API");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        Api {
            runtime,
            state,
            token,
            _dir: dir,
        }
    })
}

/// The billing API's request parsing (paths, query strings, methods), with and without a valid
/// token: no request answers 500, and every error answer is the API's JSON error object.
///
/// The first byte picks the method and whether the token is sent; the rest is the request
/// target (`/v1/batches/next?max=...`).
pub fn http_query(data: &[u8]) {
    let Some((&first, target)) = data.split_first() else {
        return;
    };
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
    let request = request.body(axum::body::Body::empty()).expect("a request");
    let (status, content_type, body) = api.runtime.block_on(async {
        let response = router(api.state.clone()).oneshot(request).await.expect("an answer");
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body = response.into_body().collect().await.expect("a body").to_bytes();
        (status, content_type, body)
    });
    let shown = String::from_utf8_lossy(target);
    assert_ne!(status.as_u16(), 500, "{method} {shown}: {body:?}");
    if status.is_client_error() || status.is_server_error() {
        assert!(
            content_type.starts_with("application/json"),
            "{method} {shown} {status}: {content_type}"
        );
        // A HEAD answer has no body (RFC 9110 §9.3.2); its content type still says JSON.
        if method != "HEAD" {
            let error: serde_json::Value = serde_json::from_slice(&body).expect("error answer is JSON");
            assert!(
                error.get("error").and_then(|e| e.as_str()).is_some(),
                "{method} {shown}: {error}"
            );
        }
    }
}
