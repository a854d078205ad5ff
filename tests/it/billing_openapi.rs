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
