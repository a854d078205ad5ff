//! End to end in a real terminal: the real `meterd review` binary in tmux, driven by
//! send-keys and read with capture-pane, through an edit with a reason; then the store and
//! the audit trail are checked with the CLI. The same screen through a running daemon: new
//! flagged reads appear without a restart, actions are recorded as the OS user, and a user in
//! no role is told so on the screen.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::daemon::Daemon;
use crate::common::tmux::Tmux;
use crate::common::{NOBODY, Scratch};

#[test]
fn edit_with_a_reason_in_a_real_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    drop(crate::review_fixture::town(&data));
    let bin = env!("CARGO_BIN_EXE_meterd");
    // The clerk is the OS user running the screen (root in CI).
    let command = format!("'{bin}' --data-dir '{}' review", data.display());
    let tmux = Tmux::start("review-test", 100, 30, &command);

    // The help line is drawn last: once it is there the whole first screen is (waiting for
    // the header alone could read the screen half drawn).
    tmux.wait_for("a accept e edit");
    tmux.wait_for("meterd review · root · 3 held");
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
    tmux.quit();

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
    for part in ["root", "14220", "13608", "flagged → edited", "keyed 9 for 6"] {
        assert!(line.contains(part), "{part} in {line}");
    }
    assert!(run(&["audit", "verify"]).contains("intact: 1 entries"));
}

#[test]
fn the_screen_through_a_running_daemon_at_80x24() {
    let s = Scratch::new();
    s.share();
    drop(crate::review_fixture::town(&s.data_dir()));
    let config = s.file(
        "meterd.toml",
        "[daemon]\nstop_deadline_secs = 10\ncontrol_socket_mode = \"0666\"\n",
    );
    let d = Daemon::start(&s, &config);
    d.wait_for("the daemon running", Duration::from_secs(60), |l| {
        l.contains("meterd running")
    });
    let bin = env!("CARGO_BIN_EXE_meterd");
    let command = format!("'{bin}' --data-dir '{}' review", s.data_dir().display());
    let tmux = Tmux::start("review-daemon", 80, 24, &command);
    tmux.wait_for("meterd review · root · 3 held");

    // The daemon takes in a doubtful read: it shows without restarting the screen.
    s.file(
        "new.csv",
        "meter_id,read_at,value,read_type,codes\nX-999,2026-01-05T08:00:00Z,100,manual,\n",
    );
    s.ok(&["reads", "import", "new.csv"]);
    tmux.wait_for("4 held");
    tmux.keys(&["Home"]);
    tmux.wait_for("X-999");
    tmux.keys(&["a"]);
    tmux.wait_for("accept (flagged → accepted)");
    tmux.keys(&["q"]);
    let audit = s.ok(&["audit", "show", "--meter", "X-999"]);
    assert!(audit.contains("root") && audit.contains("accept"), "{audit}");
    assert!(d.log().contains("request=review accept"), "{}", d.log());

    // A user in no role: the screen says so in its body and offers to retry.
    let command = format!(
        "setpriv --reuid={} --regid={} --clear-groups -- '{bin}' --data-dir '{}' review",
        NOBODY.0,
        NOBODY.1,
        s.data_dir().display()
    );
    let out = tmux.cmd(&["new-session", "-d", "-s", "nobody", "-x", "80", "-y", "24", &command]);
    assert!(out.status.success(), "tmux: {}", String::from_utf8_lossy(&out.stderr));
    let started = Instant::now();
    let screen = loop {
        let screen = String::from_utf8_lossy(&tmux.cmd(&["capture-pane", "-p", "-t", "nobody"]).stdout).into_owned();
        if screen.contains("r to retry") {
            break screen;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{screen}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        screen.contains("No queue to show") && screen.contains("nobody") && screen.contains("no meterd role"),
        "{screen}"
    );
    assert!(!screen.contains("held"), "{screen}");
    d.stop();
}
