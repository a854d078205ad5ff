//! Replays the fuzz corpus and every saved crash artifact of meterd's own fuzz targets
//! (`fuzz/{corpus,artifacts}/<target>/`) through the check its target makes
//! (`meterd::fuzz_checks`, the same function the target calls), as an ordinary test on stable: an
//! input that once broke an import, the configuration or the billing API stays a regression test
//! (x509-parser's `run_all_fuzz_files`). The protocol parsers' corpus is replayed by
//! `protocols/tests/fuzz_corpus.rs`.

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use meterd::fuzz_checks;

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
    let mut failures = Vec::new();
    for (target, path) in &files {
        // A running fuzzer replaces corpus files as it shrinks them: one gone since the listing
        // was not an input any more.
        let Ok(data) = fs::read(path) else { continue };
        let Some(check) = fuzz_checks::check_for(target) else {
            failures.push(format!("{}: no check for fuzz target {target:?}", path.display()));
            continue;
        };
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| check(&data))) {
            let why = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("panicked");
            failures.push(format!("{}: {why}", path.display()));
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
    assert_eq!(targets.len(), fuzz_checks::TARGETS.len(), "{targets:?}");
    for t in targets {
        assert!(
            fuzz_checks::check_for(t).is_some(),
            "fuzz target {t} has no entry in meterd::fuzz_checks::TARGETS"
        );
    }
}
