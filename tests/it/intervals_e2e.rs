//! The interval day's whole way, with real parts: a NEM12 file with a gap and a spike imported
//! through the running daemon, the held day accepted by a clerk in the real review screen
//! (tmux, 80×24), the batch exported as NEM12 and Green Button (both parsed back), acked, and
//! nothing exported again.

use serde_json::Value;

use crate::common::tmux::Tmux;
use crate::common::{Scratch, meter_line};
use crate::intervals::{check_green_button, nem12, reads_back_the_same, start_with, tuesdays_with_a_gap_and_a_spike};

#[test]
fn import_review_in_the_screen_export_ack_and_nothing_again() {
    let s = Scratch::new();
    s.import_meters([meter_line("AMI-7", "electric", 8, "active")]);
    let (d, config) = start_with(&s, "[daemon]\nstop_deadline_secs = 10\n");
    let cfg = config.to_str().unwrap();

    let file = s.file("ami.csv", &nem12("AMI-7", 15, &tuesdays_with_a_gap_and_a_spike()));
    let said = s.ok(&["--config", cfg, "intervals", "import", file.to_str().unwrap()]);
    assert!(said.contains("1 held for review"), "{said}");

    // The clerk opens the review screen (a client of the daemon), goes to the day, reads its
    // chart and accepts it.
    let bin = env!("CARGO_BIN_EXE_meterd");
    let command = format!(
        "'{bin}' --config '{cfg}' --data-dir '{}' review",
        s.data_dir().display()
    );
    let tmux = Tmux::start("intervals-e2e", 80, 24, &command);
    // The help line is drawn last: once it is there the whole first screen is.
    tmux.wait_for("a accept");
    tmux.wait_for("1 day");
    tmux.keys(&["End"]);
    let screen = tmux.wait_for("e edit intervals");
    for part in ["Day E1 2026-11-03 · flagged", "interval_spike", "▓", "░"] {
        assert!(screen.contains(part), "{part} in\n{screen}");
    }
    // The customer's view of the meter under review: daily totals, the day's profile, the
    // flags in plain words; any key but a scroll key closes it.
    tmux.keys(&["U"]);
    // A screen is drawn in one write, but tmux may be read in the middle of it: wait for
    // the last thing asserted, then look at the rest.
    let usage = tmux.wait_for("2026-10-06          24 kWh  validated");
    for part in ["Usage ·", "meter AMI-7", "daily totals"] {
        assert!(usage.contains(part), "{part} in\n{usage}");
    }
    tmux.keys(&["PageDown", "PageDown", "PageDown", "PageDown"]);
    tmux.wait_for("a spike on 3 Nov");
    tmux.keys(&["Escape"]);
    tmux.wait_for("e edit intervals");
    tmux.keys(&["a"]);
    tmux.wait_for("accept (flagged → accepted)");
    tmux.quit();
    let day: Value = s.json(&[
        "--config",
        cfg,
        "intervals",
        "list",
        "--meter",
        "AMI-7",
        "--from",
        "2026-11-03",
        "--json",
    ])[0]
        .clone();
    assert_eq!(day["status"], "accepted");
    assert_eq!(day["quality"][32], "E", "the gap stays estimated");

    // Billing: NEM12 and Green Button of the same frozen batch, every day in it.
    let nem = s.dir.path().join("batch.nem12");
    let gb = s.dir.path().join("batch.xml");
    let js = s.dir.path().join("batch.json");
    let cm = s.dir.path().join("batch.cmep");
    for (format, out) in [("nem12", &nem), ("greenbutton", &gb), ("json", &js), ("cmep", &cm)] {
        let said = s.ok(&[
            "--config",
            cfg,
            "batches",
            "export",
            "--kind",
            "intervals",
            "--format",
            format,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(said.contains("(5 days, 0 corrections)"), "{said}");
    }
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&js).unwrap()).unwrap();
    let nem_text = std::fs::read_to_string(&nem).unwrap();
    // The accepted day has mixed quality: V with 400 records, the interpolated hour E17.
    assert!(nem_text.contains("300,20261103,"), "{nem_text}");
    assert!(nem_text.contains("400,33,36,E17"), "{nem_text}");
    check_green_button(&std::fs::read_to_string(&gb).unwrap(), &json);
    // NEM12 and CMEP back into a fresh store: the same values and quality codes (E estimated
    // stays E; CMEP's A is meterd's edited).
    reads_back_the_same("back.csv", &nem_text, "AMI-7", &json);
    reads_back_the_same("back.cmep", &std::fs::read_to_string(&cm).unwrap(), "AMI-7", &json);

    let id = json["id"].as_u64().unwrap().to_string();
    let said = s.ok(&["--config", cfg, "batches", "ack", &id]);
    assert!(said.contains("5 days exported"), "{said}");
    let said = s.ok(&[
        "--config",
        cfg,
        "batches",
        "export",
        "--kind",
        "intervals",
        "--format",
        "nem12",
        "--out",
        s.dir.path().join("again.nem12").to_str().unwrap(),
    ]);
    assert!(said.contains("nothing to bill"), "{said}");
    d.stop();
}
