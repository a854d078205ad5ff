//! End to end in a real terminal: the real `meterd review` binary in tmux, driven by
//! send-keys and read with capture-pane, through an edit with a reason; then the store and
//! the audit trail are checked with the CLI.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::tmux::Tmux;

#[test]
fn edit_with_a_reason_in_a_real_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    drop(crate::review_fixture::town(&data));
    let bin = env!("CARGO_BIN_EXE_meterd");
    let command = format!("'{bin}' --data-dir '{}' review --clerk ann", data.display());
    let tmux = Tmux::start("review-test", 100, 30, &command);

    let screen = tmux.wait_for("meterd review · ann · 3 held");
    assert!(screen.contains("a accept e edit"), "help line:\n{screen}");
    tmux.keys(&["Down"]);
    tmux.wait_for("Read 14220 gal");
    tmux.keys(&["e"]);
    tmux.wait_for("Edit value");
    tmux.keys(&["BSpace", "BSpace", "BSpace", "BSpace", "BSpace"]);
    tmux.text("13608");
    tmux.keys(&["Enter"]);
    tmux.wait_for("a reason is required");
    tmux.keys(&["Tab"]);
    tmux.text("keyed 9 for 6");
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("edit 14220 → 13608, flagged → edited");
    assert!(screen.contains("2 held"), "{screen}");
    tmux.keys(&["q"]);
    let started = Instant::now();
    while tmux.running() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "meterd review did not quit"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let run = |args: &[&str]| {
        let o = Command::new(bin)
            .arg("--data-dir")
            .arg(&data)
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let reads: serde_json::Value =
        serde_json::from_str(&run(&["reads", "list", "--meter", "W-100", "--json"])).unwrap();
    let last = reads.as_array().unwrap().last().unwrap();
    assert_eq!(
        (
            last["value"].as_i64(),
            last["status"].as_str(),
            last["consumption"].as_i64()
        ),
        (Some(13608), Some("edited"), Some(300))
    );
    let audit = run(&["audit", "show", "--meter", "W-100"]);
    let line = audit
        .lines()
        .find(|l| l.contains(" edit "))
        .unwrap_or_else(|| panic!("{audit}"));
    for part in ["ann", "14220", "13608", "flagged → edited", "keyed 9 for 6"] {
        assert!(line.contains(part), "{part} in {line}");
    }
    assert!(run(&["audit", "verify"]).contains("intact: 1 entries"));
}
