//! docs/openapi.json matches the billing API's router: the same routes with the same methods,
//! path parameters declared, and authentication declared where the router requires it.

use std::collections::BTreeSet;

use meterd::billing::http::{PUBLIC, routes};
use serde_json::Value;

fn doc() -> Value {
    serde_json::from_str(include_str!("../../docs/openapi.json")).expect("docs/openapi.json is JSON")
}

#[test]
fn every_route_is_documented_and_every_documented_route_exists() {
    let doc = doc();
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| ops.as_object().unwrap().keys().map(move |m| (m.clone(), path.clone())))
        .filter(|(m, _)| ["get", "put", "post", "delete", "patch", "head", "options"].contains(&m.as_str()))
        .collect();
    let served: BTreeSet<(String, String)> = routes()
        .into_iter()
        .map(|(m, p, _)| (m.to_owned(), p.to_owned()))
        .collect();
    let missing: Vec<_> = served.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&served).collect();
    assert!(missing.is_empty(), "routes missing from docs/openapi.json: {missing:?}");
    assert!(
        extra.is_empty(),
        "documented routes the router does not serve: {extra:?}"
    );
}

#[test]
fn path_parameters_and_security_match() {
    let doc = doc();
    assert!(doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer");
    assert!(
        !doc["security"].as_array().unwrap().is_empty(),
        "authentication is the default"
    );
    for (method, path, _) in routes() {
        let op = &doc["paths"][path][method];
        let declared: BTreeSet<&str> = op["parameters"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .filter(|p| p["in"] == "path")
                    .map(|p| p["name"].as_str().unwrap())
                    .collect()
            })
            .unwrap_or_default();
        let templated: BTreeSet<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        assert_eq!(declared, templated, "{method} {path}: path parameters");
        let public = op
            .get("security")
            .is_some_and(|s| s.as_array().is_some_and(|a| a.is_empty()));
        assert_eq!(public, PUBLIC.contains(&path), "{method} {path}: security");
        if !public {
            assert!(op["responses"].get("401").is_some(), "{method} {path}: documents 401");
        }
    }
}

/// Follows a `$ref` to `#/components/...`.
fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v["$ref"].as_str() {
        Some(r) => r
            .strip_prefix("#/")
            .unwrap()
            .split('/')
            .fold(doc, |node, key| &node[key]),
        None => v,
    }
}

/// Statuses every operation can answer whatever it does: the limits in front of the router.
const EVERYWHERE: [&str; 5] = ["408", "413", "414", "431", "503"];

#[test]
fn every_error_answer_is_documented_as_the_json_error_object() {
    let doc = doc();
    for (method, path, _) in routes() {
        let responses = doc["paths"][path][method]["responses"].as_object().unwrap();
        for code in EVERYWHERE {
            assert!(responses.contains_key(code), "{method} {path}: documents {code}");
        }
        if !PUBLIC.contains(&path) {
            for code in ["401", "500"] {
                assert!(responses.contains_key(code), "{method} {path}: documents {code}");
            }
        }
        for (code, r) in responses {
            let r = resolve(&doc, r);
            assert!(r["description"].is_string(), "{method} {path} {code}: description");
            let status: u16 = code.parse().unwrap();
            if status < 400 {
                continue;
            }
            let content = r["content"]
                .as_object()
                .unwrap_or_else(|| panic!("{method} {path} {code}: content"));
            assert_eq!(
                content.keys().collect::<Vec<_>>(),
                ["application/json"],
                "{method} {path} {code}: only JSON"
            );
            assert_eq!(
                content["application/json"]["schema"]["$ref"], "#/components/schemas/Error",
                "{method} {path} {code}"
            );
        }
    }
}

#[test]
fn the_documented_values_are_the_ones_the_server_accepts() {
    use meterd::billing::http::{DEFAULT_MAX_READS, resolve_format};
    use meterd::billing::layouts::Layouts;
    let doc = doc();
    let layouts = Layouts::load(None).unwrap();
    let mut accepted: BTreeSet<String> = ["json", "csv", "cmep"].map(String::from).into();
    accepted.extend(layouts.names().map(String::from));
    let param = |path: &str, name: &str| -> Value {
        doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{path} {name}"))
            .clone()
    };
    for path in ["/v1/batches/next", "/v1/batches/{id}"] {
        let schema = &param(path, "format")["schema"];
        let documented: BTreeSet<String> = schema["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(documented, accepted, "{path} format");
        let tz = jiff::tz::TimeZone::UTC;
        for f in &documented {
            assert!(resolve_format(&layouts, &tz, f).is_some(), "{f}");
        }
        assert!(resolve_format(&layouts, &tz, "").is_none());
    }
    let max = &param("/v1/batches/next", "max")["schema"];
    assert_eq!(
        (max["minimum"].as_u64(), max["maximum"].as_u64()),
        (Some(1), Some(DEFAULT_MAX_READS as u64))
    );
    let status = &param("/v1/batches", "status")["schema"]["enum"];
    assert_eq!(status, &serde_json::json!(["open", "acked", "all"]));
    for name in ["from", "to"] {
        assert_eq!(param("/v1/meters/{id}/reads", name)["schema"]["format"], "date-time");
    }
}

/// Every documented query parameter is taken by the router with a documented value, and an
/// undocumented one is refused with the JSON error: the document lists exactly what is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documented_query_parameters_are_accepted_and_others_refused() {
    use axum::body::Body;
    use axum::http::Request;
    use meterd::billing::http::{ApiState, HttpConfig, router};
    use meterd::store::RedbStore;
    use tower::ServiceExt as _;
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(RedbStore::open_dir(dir.path()).unwrap());
    let token = meterd::billing::tokens::create(store.as_ref(), "cis", jiff::Timestamp::now()).unwrap();
    let app = router(ApiState::new(store, &HttpConfig::default()).unwrap());
    let doc = doc();
    let call = |uri: String, method: &'static str| {
        let app = app.clone();
        let token = token.clone();
        async move {
            let req = Request::builder()
                .method(method)
                .uri(&uri)
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap();
            let resp = app.oneshot(req).await.unwrap();
            let status = resp.status().as_u16();
            let ct = resp
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned());
            let body = http_body_util::BodyExt::collect(resp.into_body())
                .await
                .unwrap()
                .to_bytes();
            (status, ct, String::from_utf8_lossy(&body).into_owned())
        }
    };
    for (method, path, _) in routes() {
        let params = doc["paths"][path][method]["parameters"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut concrete = path.to_owned();
        for p in params.iter().filter(|p| p["in"] == "path") {
            let example = match &p["example"] {
                Value::String(s) => s.clone(),
                v => v.to_string(),
            };
            concrete = concrete.replace(&format!("{{{}}}", p["name"].as_str().unwrap()), &example);
        }
        let m = if method == "post" { "POST" } else { "GET" };
        for p in params.iter().filter(|p| p["in"] == "query") {
            let name = p["name"].as_str().unwrap();
            let schema = &p["schema"];
            let value = schema["enum"]
                .get(0)
                .and_then(Value::as_str)
                .map(String::from)
                .or_else(|| p["example"].as_str().map(String::from))
                .or_else(|| schema["minimum"].as_u64().map(|n| n.to_string()))
                .unwrap_or_else(|| panic!("{path} {name}: no example"));
            let (status, _, body) = call(format!("{concrete}?{name}={value}"), m).await;
            assert_ne!(status, 400, "{path}?{name}={value}: {body}");
        }
        if !params.iter().any(|p| p["in"] == "query") {
            continue;
        }
        let (status, ct, body) = call(format!("{concrete}?x-unknown=1"), m).await;
        assert_eq!(status, 400, "{path}?x-unknown=1: {body}");
        assert_eq!(ct.as_deref(), Some("application/json"), "{path}: {body}");
        assert!(body.contains("x-unknown"), "{body}");
    }
}
