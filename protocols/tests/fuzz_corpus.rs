//! Replays the fuzz corpus and every saved crash artifact (`protocols/fuzz/{corpus,artifacts}/<target>/`)
//! through the parsers each fuzz target exercises, as an ordinary test on stable: an input that once
//! crashed a parser stays a regression test forever (x509-parser's `run_all_fuzz_files`).

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use meterd_protocols::cradle::{Firmware, ascii, binary, frame, message};
use meterd_protocols::decode::{Keys, Protocol, decode_binary, decode_input};
use meterd_protocols::{dsmr, iec62056_21, mbus, wmbus};

/// What each fuzz target feeds its input to. A corpus folder without an entry here fails the test,
/// so a new fuzz target cannot be forgotten.
fn replay(target: &str, data: &[u8]) -> bool {
    let keys = Keys::new();
    match target {
        "scm" => drop(decode_binary(Protocol::Scm, data, &keys)),
        "scm_plus" => drop(decode_binary(Protocol::ScmPlus, data, &keys)),
        "idm" => {
            drop(decode_binary(Protocol::Idm, data, &keys));
            drop(decode_binary(Protocol::NetIdm, data, &keys));
        }
        "r900" => {
            drop(decode_binary(Protocol::R900, data, &keys));
            drop(decode_binary(Protocol::R900Bcd, data, &keys));
        }
        "ert_json" => drop(decode_input(data, None, &keys)),
        "mbus" => {
            drop(mbus::decode(data));
            let _ = frame_or_nothing(data);
        }
        "wmbus" => drop(wmbus::decode(data, &keys)),
        "iec62056_21" => drop(iec62056_21::decode(data)),
        "dsmr" => drop(dsmr::decode(data)),
        "cradle_frame" => {
            let mut decoder = frame::FrameDecoder::new();
            decoder.push(data);
            while decoder.next_frame().is_some() {}
            drop(frame::parse_frame(data));
        }
        "cradle_records" => {
            drop(ascii::parse_read(data));
            drop(ascii::parse_meter(data));
            drop(binary::parse_read(data));
            drop(binary::parse_meter(data));
            drop(ascii::parse_code(data));
            drop(binary::parse_code(data));
            for fw in [Firmware::V1, Firmware::V2] {
                drop(message::Message::decode(data, fw));
            }
        }
        _ => return false,
    }
    true
}

fn frame_or_nothing(data: &[u8]) -> Option<usize> {
    mbus::frame::parse(data).ok().map(|(_, used)| used)
}

fn inputs(root: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let Ok(targets) = fs::read_dir(root) else { return out };
    for target in targets.flatten().filter(|e| e.path().is_dir()) {
        let name = target.file_name().to_string_lossy().into_owned();
        for file in fs::read_dir(target.path()).unwrap().flatten() {
            if file.path().is_file() {
                out.push((name.clone(), file.path()));
            }
        }
    }
    out
}

#[test]
fn corpus_and_artifacts_replay_without_panics() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut files = inputs(&fuzz.join("corpus"));
    files.extend(inputs(&fuzz.join("artifacts")));
    let mut failures = Vec::new();
    for (target, path) in &files {
        let data = fs::read(path).unwrap();
        match catch_unwind(AssertUnwindSafe(|| replay(target, &data))) {
            Ok(true) => {}
            Ok(false) => failures.push(format!("{}: no replay for fuzz target {target:?}", path.display())),
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
        .filter(|n| *n != "meterd-protocols-fuzz")
        .collect();
    assert!(targets.len() >= 11, "{targets:?}");
    for t in targets {
        assert!(replay(t, b""), "fuzz target {t} has no replay in tests/fuzz_corpus.rs");
    }
}
