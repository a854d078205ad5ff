//! Replays the fuzz corpus and every saved crash artifact of meterd's own fuzz targets
//! (`fuzz/{corpus,artifacts}/<target>/`) through the check its target makes
//! (`meterd::fuzz_checks`, the same function the target calls), as an ordinary test on stable: an
//! input that once broke an import, the configuration or the billing API stays a regression test
//! (x509-parser's `run_all_fuzz_files`). The protocol parsers' corpus is replayed by
//! `protocols/tests/fuzz_corpus.rs`, with the same walker.

#[path = "../../protocols/tests/support/replay.rs"]
mod replay;

use std::path::Path;

use meterd::fuzz_checks;
use replay::{declared_targets, replay_saved};

#[test]
fn corpus_and_artifacts_replay_with_the_targets_checks() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let (ran, failures) = replay_saved(&fuzz, fuzz_checks::check_for);
    assert!(ran >= 4, "the corpus is missing: {ran} inputs");
    assert!(
        failures.is_empty(),
        "{} of {ran} fuzz inputs failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_fuzz_target_has_a_check() {
    let targets = declared_targets(&Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz"));
    assert_eq!(targets.len(), fuzz_checks::TARGETS.len(), "{targets:?}");
    for t in targets {
        assert!(
            fuzz_checks::check_for(&t).is_some(),
            "fuzz target {t} has no entry in meterd::fuzz_checks::TARGETS"
        );
    }
}
