//! Replaying a fuzz folder's saved inputs through the targets' checks, shared by the protocol
//! crate's replay test and meterd's (`tests/it/fuzz_corpus.rs` includes this file), so both walk
//! the folders and report alike.

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

/// Every saved input of `fuzz_dir` (`corpus/<target>/*` and `artifacts/<target>/*`) run
/// through the check `check_for` gives its target. Returns how many inputs ran and one line per
/// failure (a panic with its message, or a target without a check).
pub fn replay_saved(fuzz_dir: &Path, check_for: impl Fn(&str) -> Option<fn(&[u8])>) -> (usize, Vec<String>) {
    let mut files = inputs(&fuzz_dir.join("corpus"));
    files.extend(inputs(&fuzz_dir.join("artifacts")));
    let mut failures = Vec::new();
    for (target, path) in &files {
        // A running fuzzer replaces corpus files as it shrinks them.
        let Ok(data) = fs::read(path) else { continue };
        let Some(check) = check_for(target) else {
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
    (files.len(), failures)
}

/// The target names a fuzz crate's `Cargo.toml` declares (its `[[bin]]` names).
pub fn declared_targets(fuzz_dir: &Path) -> Vec<String> {
    let manifest = fs::read_to_string(fuzz_dir.join("Cargo.toml")).unwrap_or_default();
    let mut names: Vec<String> = manifest
        .lines()
        .filter_map(|l| l.strip_prefix("name = \""))
        .filter_map(|l| l.strip_suffix('"'))
        .map(str::to_owned)
        .collect();
    // The first name is the package's.
    if !names.is_empty() {
        names.remove(0);
    }
    names
}

fn inputs(root: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let Ok(targets) = fs::read_dir(root) else { return out };
    for target in targets.flatten().filter(|e| e.path().is_dir()) {
        let name = target.file_name().to_string_lossy().into_owned();
        let Ok(files) = fs::read_dir(target.path()) else {
            continue;
        };
        for file in files.flatten() {
            // A running fuzzer writes `.tmp*` files beside its corpus.
            if file.path().is_file() && !file.file_name().to_string_lossy().starts_with('.') {
                out.push((name.clone(), file.path()));
            }
        }
    }
    out
}
