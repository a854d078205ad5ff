//! Golden test: walks `firmware-fixtures/` and decodes every capture (`NAME.in`), comparing the
//! result with `NAME.expected` (one JSON object per frame: the decoded frame, or
//! `{"error": {"check": "CRC"}}` / `{"error": {"kind": "invalid"}}` for a refused frame).
//! An optional `NAME.args` holds `protocol P` and `key METER_ID=HEX` lines, like the CLI flags.
//! Adding a capture adds a test.

use std::fs;
use std::path::{Path, PathBuf};

use meterd_protocols::decode::{Keys, Protocol, decode_input};
use meterd_protocols::error::Error;
use serde_json::{Value, json};

fn fixtures_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../firmware-fixtures")
}

fn captures(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            captures(&path, out);
        } else if path.extension().is_some_and(|e| e == "in") {
            out.push(path);
        }
    }
}

fn error_json(e: &Error) -> Value {
    match e.failed_check() {
        Some(check) => json!({"error": {"check": check.to_string()}}),
        None => json!({"error": {"kind": match e {
            Error::Incomplete { .. } => "incomplete",
            Error::Invalid { .. } => "invalid",
            Error::Unrecognised(_) => "unrecognised",
            Error::Unsupported(_) => "unsupported",
            _ => "other",
        }}}),
    }
}

#[test]
fn every_capture_decodes_to_its_expected_output() {
    let mut files = Vec::new();
    captures(&fixtures_root(), &mut files);
    files.sort();
    let mut failures = Vec::new();
    for input_path in &files {
        let input = fs::read(input_path).unwrap();
        let mut protocol = None;
        let mut keys = Keys::new();
        if let Ok(args) = fs::read_to_string(input_path.with_extension("args")) {
            for line in args.lines().map(str::trim).filter(|l| !l.is_empty()) {
                match line.split_once(' ') {
                    Some(("protocol", p)) => protocol = Some(p.trim().parse::<Protocol>().unwrap()),
                    Some(("key", k)) => {
                        let (id, key) = Keys::parse_assignment(k.trim()).unwrap();
                        keys.insert(&id, key);
                    }
                    _ => panic!("{}: bad args line {line:?}", input_path.display()),
                }
            }
        }
        let expected_path = input_path.with_extension("expected");
        let expected: Vec<Value> = fs::read_to_string(&expected_path)
            .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()))
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}", expected_path.display())))
            .collect();
        let actual: Vec<Value> = decode_input(&input, protocol, &keys)
            .into_iter()
            .map(|f| match f.result {
                Ok(d) => serde_json::to_value(d).unwrap(),
                Err(e) => error_json(&e),
            })
            .collect();
        if actual != expected {
            failures.push(format!(
                "{}\n  expected: {}\n  actual:   {}",
                input_path.display(),
                serde_json::to_string(&expected).unwrap(),
                serde_json::to_string(&actual).unwrap()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} captures differ:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}
