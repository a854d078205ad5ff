//! Replays the fuzz corpus and every saved crash artifact of meterd's own fuzz targets
//! (`fuzz/{corpus,artifacts}/<target>/`) through what each target exercises, with the same checks,
//! as an ordinary test on stable: an input that once broke an import, the configuration or the
//! billing API stays a regression test (x509-parser's `run_all_fuzz_files`). The protocol parsers'
//! corpus is replayed by `protocols/tests/fuzz_corpus.rs`.

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use http_body_util::BodyExt as _;
use jiff::Timestamp;
use meterd::billing::http::{ApiState, HttpConfig, router};
use meterd::config::Config;
use meterd::ingest::files::{self, RouteFileOptions};
use meterd::store::{RedbStore, Store};
use tower::ServiceExt as _;

/// The billing API over a small real store, as the `http_query` target builds it.
struct Api {
    runtime: tokio::runtime::Runtime,
    state: ApiState,
    token: String,
    _dir: tempfile::TempDir,
}

impl Api {
    fn new() -> Api {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(RedbStore::open_dir(dir.path()).unwrap());
        let meters = files::parse_meters_csv_bytes(
            "m.csv",
            b"meter_id,account,route,sequence,service,unit,dials,decimals,multiplier,status,address\n\
              M1,A1,R1,10,water,gal,6,0,1,active,1 Main St\n",
        )
        .unwrap();
        files::store_meters(store.as_ref(), &meters).unwrap();
        let reads = b"meter_id,read_at,value\nM1,2026-11-01T08:00:00Z,100\nM1,2026-12-01T08:00:00Z,150\n";
        files::import_reads_bytes(store.as_ref(), &Default::default(), "r.csv", reads, 100, &mut |_| {}).unwrap();
        let token = meterd::billing::tokens::create(store.as_ref(), "cis", Timestamp::now()).unwrap();
        let state = ApiState::new(store, &HttpConfig::default()).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Api {
            runtime,
            state,
            token,
            _dir: dir,
        }
    }

    /// First byte: method and whether the token is sent; the rest: the request target.
    fn check(&self, data: &[u8]) -> Result<(), String> {
        let Some((&first, target)) = data.split_first() else {
            return Ok(());
        };
        let method = ["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS", "GET"][usize::from(first & 7)];
        let mut request = axum::http::Request::builder().method(method);
        match axum::http::Uri::try_from(target) {
            Ok(uri) if uri.path().starts_with('/') => request = request.uri(uri),
            _ => return Ok(()),
        }
        if first & 8 == 0 {
            request = request.header("authorization", format!("Bearer {}", self.token));
        }
        let request = request.body(axum::body::Body::empty()).unwrap();
        let (status, content_type, body) = self.runtime.block_on(async {
            let response = router(self.state.clone()).oneshot(request).await.unwrap();
            let status = response.status();
            let content_type = response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            (
                status,
                content_type,
                response.into_body().collect().await.unwrap().to_bytes(),
            )
        });
        let shown = String::from_utf8_lossy(target);
        if status.as_u16() == 500 {
            return Err(format!("{method} {shown}: 500 {body:?}"));
        }
        if status.is_client_error() || status.is_server_error() {
            let error: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
            let message = error.as_ref().and_then(|e| e.get("error")).and_then(|e| e.as_str());
            // A HEAD answer has no body (RFC 9110 §9.3.2); its content type still says JSON.
            if !content_type.starts_with("application/json") || (method != "HEAD" && message.is_none()) {
                return Err(format!(
                    "{method} {shown}: {status} is not a JSON error ({content_type}): {body:?}"
                ));
            }
        }
        Ok(())
    }
}

/// An accepted configuration prints and reads back as itself.
fn config_round_trip(data: &[u8]) -> Result<(), String> {
    let Ok(text) = std::str::from_utf8(data) else {
        return Ok(());
    };
    let Ok(config) = Config::parse(text, "fuzz.toml") else {
        return Ok(());
    };
    let _ = config.effective_toml();
    let printed = toml::to_string(&config).map_err(|e| format!("does not print: {e}"))?;
    let again = Config::parse(&printed, "printed.toml").map_err(|e| format!("printed form refused: {e}"))?;
    if again != config {
        return Err("round trip changed the configuration".into());
    }
    Ok(())
}

/// What each fuzz target feeds its input to; `None` for a target without a replay (the test
/// fails, so a new target cannot be forgotten).
fn replay(api: &Api, target: &str, data: &[u8]) -> Option<Result<(), String>> {
    Some(match target {
        "reads_csv" => {
            drop(files::parse_reads_csv_bytes("fuzz.csv", data));
            drop(files::parse_meters_csv_bytes("fuzz.csv", data));
            Ok(())
        }
        "autoread_route" => {
            drop(files::parse_sensus_route_bytes(
                "ROUTE01.DAT",
                data.to_vec(),
                &RouteFileOptions::default(),
            ));
            Ok(())
        }
        "config_file" => config_round_trip(data),
        "http_query" => api.check(data),
        _ => return None,
    })
}

fn inputs(root: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let Ok(targets) = fs::read_dir(root) else { return out };
    for target in targets.flatten().filter(|e| e.path().is_dir()) {
        let name = target.file_name().to_string_lossy().into_owned();
        for file in fs::read_dir(target.path()).unwrap().flatten() {
            // A running fuzzer writes `.tmp*` files beside its corpus.
            if file.path().is_file() && !file.file_name().to_string_lossy().starts_with('.') {
                out.push((name.clone(), file.path()));
            }
        }
    }
    out
}

#[test]
fn corpus_and_artifacts_replay_with_the_targets_checks() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut files = inputs(&fuzz.join("corpus"));
    files.extend(inputs(&fuzz.join("artifacts")));
    assert!(files.len() >= 4, "the corpus is missing: {files:?}");
    let api = Api::new();
    let mut failures = Vec::new();
    for (target, path) in &files {
        // A running fuzzer replaces corpus files as it shrinks them: one gone since the listing
        // was not an input any more.
        let Ok(data) = fs::read(path) else { continue };
        match catch_unwind(AssertUnwindSafe(|| replay(&api, target, &data))) {
            Ok(Some(Ok(()))) => {}
            Ok(Some(Err(e))) => failures.push(format!("{}: {e}", path.display())),
            Ok(None) => failures.push(format!("{}: no replay for fuzz target {target:?}", path.display())),
            Err(_) => failures.push(format!("{}: panicked", path.display())),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} fuzz inputs failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn every_fuzz_target_has_a_replay() {
    let manifest = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/Cargo.toml")).unwrap();
    let targets: Vec<&str> = manifest
        .lines()
        .filter_map(|l| l.strip_prefix("name = \""))
        .filter_map(|l| l.strip_suffix('"'))
        .filter(|n| *n != "meterd-fuzz")
        .collect();
    assert_eq!(targets.len(), 4, "{targets:?}");
    let api = Api::new();
    for t in targets {
        assert!(
            replay(&api, t, b"").is_some(),
            "fuzz target {t} has no replay in tests/it/fuzz_corpus.rs"
        );
    }
}
