//! Interval days held for review, through the running daemon: the CLI lists and shows the
//! day (flags in words, the day chart), a stale revision is refused, an edit is audited in the
//! same hash chain as the operating-system user; and the real review screen at 80×24 lists
//! the day next to the held reads, shows its chart and accepts it.

use std::time::Duration;

use crate::common::Scratch;
use crate::common::daemon::Daemon;
use crate::common::tmux::Tmux;

const CONFIG: &str =
    "[daemon]\nstop_deadline_secs = 10\ncontrol_socket_mode = \"0666\"\n\n[intervals]\ntime_zone = \"UTC\"\n";

#[test]
fn a_clerk_works_interval_days_through_the_daemon() {
    let s = Scratch::new();
    s.share();
    let store = crate::review_fixture::town(&s.data_dir());
    // Two days held: the CLI edits one, the screen accepts the other.
    crate::review_fixture::spike_day(&store, jiff::civil::date(2026, 1, 4));
    crate::review_fixture::spike_day(&store, jiff::civil::date(2026, 1, 5));
    drop(store);
    let config = s.file("meterd.toml", CONFIG);
    let cfg = config.to_str().unwrap();
    let d = Daemon::start(&s, &config);
    d.wait_for("the daemon running", Duration::from_secs(60), |l| {
        l.contains("meterd running")
    });

    // The queue: the reads as before, and the day.
    let list = s.ok(&["--config", cfg, "review", "list"]);
    assert!(list.contains("2 interval days awaiting review too"), "{list}");
    let days = s.json(&["--config", cfg, "review", "days", "--json"]);
    assert_eq!(days.as_array().unwrap().len(), 2, "{days}");
    let day = &days.as_array().unwrap()[0];
    assert_eq!(
        (
            day["key"]["meter_id"].as_str(),
            day["key"]["channel"].as_str(),
            day["key"]["date"].as_str()
        ),
        (Some("E-300"), Some("E1"), Some("2026-01-04"))
    );
    assert_eq!(day["rules"], serde_json::json!(["interval_spike"]));
    let rev = day["rev"].as_u64().unwrap();

    // One day in detail: flags in words with their numbers and times, the chart.
    let shown = s.ok(&["--config", cfg, "review", "day", "E-300", "E1", "2026-01-04"]);
    for part in [
        "day E-300 E1 2026-01-04 · flagged",
        "interval_spike: a spike",
        "interval 19 18:00–19:00",
        "▓",
        "^",
        "█ measured",
    ] {
        assert!(shown.contains(part), "{part} in\n{shown}");
    }
    assert!(shown.lines().all(|l| l.chars().count() <= 80), "{shown}");

    // A stale revision is refused and changes nothing; the right one edits.
    let stale = s.fails(&[
        "--config",
        cfg,
        "review",
        "edit-day",
        "E-300",
        "E1",
        "2026-01-04",
        "--set",
        "19=1",
        "--reason",
        "test load",
        "--rev",
        &(rev + 5).to_string(),
    ]);
    assert!(stale.contains("changed since you loaded it"), "{stale}");
    let done = s.ok(&[
        "--config",
        cfg,
        "review",
        "edit-day",
        "E-300",
        "E1",
        "2026-01-04",
        "--set",
        "19=1",
        "--reason",
        "test load",
        "--rev",
        &rev.to_string(),
    ]);
    assert!(
        done.contains("day E-300 E1 2026-01-04: edit (flagged → edited), total 43 → 24, 1 interval(s) changed"),
        "{done}"
    );
    let user = String::from_utf8(std::process::Command::new("id").arg("-un").output().unwrap().stdout)
        .unwrap()
        .trim()
        .to_owned();
    let audit = s.ok(&["--config", cfg, "audit", "show", "--meter", "E-300"]);
    let line = audit
        .lines()
        .find(|l| l.contains(" edit "))
        .unwrap_or_else(|| panic!("{audit}"));
    for part in [
        user.as_str(),
        "E1 2026-01-04",
        "43",
        "24",
        "flagged → edited",
        "test load (1 interval(s) changed)",
    ] {
        assert!(line.contains(part), "{part} in {line}");
    }
    assert!(d.log().contains("request=review edit-day"), "{}", d.log());
    let json = s.json(&["--config", cfg, "review", "day", "E-300", "E1", "2026-01-04", "--json"]);
    assert_eq!(json["day"]["status"], "edited");
    assert_eq!(json["day"]["quality"][18], "F");
    assert_eq!(json["audit"][0]["day"]["changes"][0]["interval"], 19);

    // The screen, through the daemon: the other day.
    let bin = env!("CARGO_BIN_EXE_meterd");
    let command = format!("'{bin}' --data-dir '{}' review", s.data_dir().display());
    let tmux = Tmux::start("review-days", 80, 24, &command);
    // The help line is drawn last: once it is there the whole first screen is.
    tmux.wait_for("a accept e edit");
    let screen = tmux.wait_for("3 held · 1 day");
    assert!(screen.contains("E-300   E1 01-05 interval_sp"), "{screen}");
    tmux.keys(&["End"]);
    let screen = tmux.wait_for("e edit intervals");
    for part in [
        "Day E1 2026-01-05 · flagged · rev 1",
        "⚑ interval_spike · 19 18:00–19:00",
        "▓",
        "^",
        "like days",
    ] {
        assert!(screen.contains(part), "{part} in\n{screen}");
    }
    tmux.keys(&["a"]);
    let screen = tmux.wait_for("accept (flagged → accepted)");
    assert!(screen.contains("day E-300 E1 2026-01-05"), "{screen}");
    tmux.quit();
    let audit = s.ok(&["--config", cfg, "audit", "show", "--meter", "E-300"]);
    assert!(
        audit
            .lines()
            .any(|l| l.contains(" accept ") && l.contains("E1 2026-01-05") && l.contains(&user)),
        "{audit}"
    );
    assert!(
        s.ok(&["--config", cfg, "audit", "verify"])
            .contains("intact: 2 entries")
    );
    d.stop();
}
