//! `meterd report usage` through the running daemon: a NEM12 file imported with the CLI, then
//! the customer's question answered from it (daily totals, the day's profile, the flags in
//! plain words), as text, JSON and CSV; the same report in process once the daemon stopped.

use std::time::Duration;

use crate::common::daemon::Daemon;
use crate::common::{METERS_HEADER, Scratch};

/// One NEM12 day of 48 half hours: `value` everywhere, with overrides; `V` + `400` records
/// when some intervals have no value (quality `N`).
fn nem12_day(date: &str, value: &str, overrides: &[(usize, &str)], missing: Option<(usize, usize)>) -> String {
    let mut values = vec![value.to_owned(); 48];
    for &(n, v) in overrides {
        values[n - 1] = v.to_owned();
    }
    match missing {
        None => format!("300,{date},{},A,,,20260302000000,\r\n", values.join(",")),
        Some((a, b)) => format!(
            "300,{date},{},V,,,20260302000000,\r\n400,1,{},A,,\r\n400,{a},{b},N,,\r\n400,{},48,A,,\r\n",
            values.join(","),
            a - 1,
            b + 1
        ),
    }
}

#[test]
fn report_usage_answers_the_customer_through_the_daemon() {
    let s = Scratch::new();
    let config = s.file(
        "meterd.toml",
        "[daemon]\nstop_deadline_secs = 20\n\n[intervals]\ntime_zone = \"UTC\"\n",
    );
    let cfg = config.to_str().unwrap();
    s.ok(&[
        "--config",
        cfg,
        "meters",
        "import",
        s.file(
            "meters.csv",
            &format!("{METERS_HEADER}NMI0000001,ACC-7,R1,10,electric,kWh,6,0,1,active,7 High St\n"),
        )
        .to_str()
        .unwrap(),
    ]);
    let d = Daemon::start(&s, &config);
    d.wait_for("running", Duration::from_secs(30), |l| l.contains("meterd running"));

    // 28 Feb: 0.5 kWh every half hour. 1 Mar: no data 04:00–05:00 (intervals 9–10), and
    // 5 kWh at 18:00 (interval 37), more than 3 × the third-highest 0.5.
    let nem12 = format!(
        "100,NEM12,202603020000,MDP1,RET1\r\n200,NMI0000001,E1B1,1,E1,N1,SER1,KWH,30,\r\n{}{}900\r\n",
        nem12_day("20260228", "0.5", &[], None),
        nem12_day("20260301", "0.5", &[(37, "5")], Some((9, 10)))
    );
    let file = s.file("day.nem12", &nem12);
    let out = s.ok(&["--config", cfg, "intervals", "import", file.to_str().unwrap()]);
    assert!(out.contains("imported 2 interval days"), "{out}");

    let text = s.ok(&[
        "--config",
        cfg,
        "report",
        "usage",
        "--account",
        "ACC-7",
        "--day",
        "2026-03-01",
    ]);
    for want in [
        "Account ACC-7 · meter NMI0000001 · electric · 7 High St",
        "Channel E1 (kWh, delivered): daily totals 26 Jan 2026 to 1 Mar 2026 (UTC)",
        "2026-01-26               -  no_data",
        "2026-02-28          24 kWh  validated",
        "2026-03-01        28.5 kWh  flagged     interval_gap interval_spike",
        "kWh per hour on 1 Mar 2026: highest 5.5 at 18:00",
        "00 01 02 03 04 05 06 07 08 09 10 11 12 13 14 15 16 17 18 19 20 21 22 23",
        "░░",
        "█ actual  ░ estimated  ! flagged  ? no data",
        "What the flags say:",
        "- no data for 1 hour on 1 Mar (intervals 9–10, 04:00–05:00), estimated by linear interpolation",
        "- a spike on 1 Mar: 5 kWh at 18:00, more than 3 × the third-highest (0.5)",
    ] {
        // Sentences are wrapped at 80 columns with a two-space hanging indent.
        assert!(text.replace("\n  ", " ").contains(want), "missing {want:?} in:\n{text}");
    }
    assert!(text.lines().all(|l| l.chars().count() <= 80), "{text}");
    // The flagged hour is marked under its bar (18:00 starts at column 54).
    let marks = text
        .lines()
        .find(|l| l.trim() == "!")
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(marks.find('!'), Some(54), "{text}");
    assert!(d.log().contains("report usage"), "not run by the daemon:\n{}", d.log());

    let json = s.json(&[
        "--config",
        cfg,
        "report",
        "usage",
        "--account",
        "ACC-7",
        "--day",
        "2026-03-01",
        "--json",
    ]);
    assert_eq!(json["time_zone"], "UTC");
    assert_eq!(json["from"], "2026-01-26");
    let ch = &json["meters"][0]["channels"][0];
    assert_eq!(ch["unit"], "kWh");
    let days = ch["days"].as_array().unwrap();
    assert_eq!(days.len(), 35);
    assert_eq!(days[34]["total"], 28.5);
    assert_eq!(days[34]["status"], "flagged");
    assert_eq!(days[0]["total"], serde_json::Value::Null);
    let spike = &days[34]["flags"][1];
    assert_eq!(spike["rule"], "interval_spike");
    assert_eq!(spike["intervals"], serde_json::json!([37]));
    assert_eq!(
        spike["sentence"],
        "a spike on 1 Mar: 5 kWh at 18:00, more than 3 × the third-highest (0.5)"
    );
    let profile = &ch["profile"];
    assert_eq!(profile["values"].as_array().unwrap().len(), 48);
    assert_eq!(profile["quality"][8], "E");
    assert_eq!(profile["hours"][18]["total"], 5.5);
    assert_eq!(profile["hours"][18]["flagged"], true);
    assert_eq!(profile["hours"][4]["estimated"], true);

    let csv = s.ok(&[
        "--config",
        cfg,
        "report",
        "usage",
        "--account",
        "ACC-7",
        "--day",
        "2026-03-01",
        "--csv",
    ]);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "date,channel,total,status,flags,meter_id,unit");
    assert_eq!(lines[1], "2026-01-26,E1,,no_data,,NMI0000001,kWh");
    assert_eq!(
        lines[35],
        "2026-03-01,E1,28.5,flagged,interval_gap interval_spike,NMI0000001,kWh"
    );

    let err = s.fails(&["--config", cfg, "report", "usage", "--account", "nobody"]);
    assert!(err.contains("no meter has account"), "{err}");
    d.stop();

    // Without the daemon the same report runs in process on the store opened read-only.
    let again = s.ok(&[
        "--config",
        cfg,
        "report",
        "usage",
        "--account",
        "ACC-7",
        "--day",
        "2026-03-01",
    ]);
    assert_eq!(again, text);
}
