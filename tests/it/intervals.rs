//! Interval data through the running daemon, as a clerk's CLI uses it: NEM12 and CMEP files
//! checked whole (a bad file names line and field and stores nothing), imported with interval
//! VEE (DST days in America/Los_Angeles), re-imported idempotently, a changed value flagged as a
//! duplicate, and interval batches exported as NEM12, CMEP and Green Button, parsed back, acked,
//! and not exported again.

use std::path::PathBuf;
use std::time::Duration;

use meterd::store::prelude::*;
use serde_json::Value;

use crate::common::daemon::Daemon;
use crate::common::{Scratch, meter_line};

/// Four like Tuesdays (flat 0.25 kWh a quarter hour), then a Tuesday (2026-11-03) with a
/// one-hour gap (intervals 33–36, null) and a spike at 18:00 (interval 73, 2.5): the gap is
/// interpolated at 0.25, the spike holds the day.
pub(crate) fn tuesdays_with_a_gap_and_a_spike() -> Vec<(&'static str, Vec<String>, &'static str, Vec<&'static str>)> {
    let mut spiky = flat(96, "0.25");
    for v in &mut spiky[32..36] {
        *v = "0".into();
    }
    spiky[72] = "2.5".into();
    vec![
        ("20261006", flat(96, "0.25"), "A", vec![]),
        ("20261013", flat(96, "0.25"), "A", vec![]),
        ("20261020", flat(96, "0.25"), "A", vec![]),
        ("20261027", flat(96, "0.25"), "A", vec![]),
        (
            "20261103",
            spiky,
            "V",
            vec!["400,1,32,A,,", "400,33,36,N,,", "400,37,96,A,,"],
        ),
    ]
}

/// A NEM12 file: one channel (`E1`, kWh, `minutes`), the given days as (YYYYMMDD, values,
/// quality-method of the day, 400 records).
pub(crate) fn nem12(nmi: &str, minutes: u16, days: &[(&str, Vec<String>, &str, Vec<&str>)]) -> String {
    let mut lines = vec![
        "100,NEM12,202611010000,MDP1,RET1".to_owned(),
        format!("200,{nmi},E1,1,E1,N1,SER-{nmi},KWH,{minutes},"),
    ];
    for (date, values, quality, events) in days {
        lines.push(format!("300,{date},{},{quality},,,20261101000000,", values.join(",")));
        lines.extend(events.iter().map(|e| e.to_string()));
    }
    lines.push("900".into());
    lines.join("\r\n") + "\r\n"
}

pub(crate) fn flat(n: usize, v: &str) -> Vec<String> {
    vec![v.to_owned(); n]
}

fn start(s: &Scratch) -> (Daemon, PathBuf) {
    start_with(s, "")
}

/// The daemon with `[intervals] time_zone = "America/Los_Angeles"` after `more` configuration.
pub(crate) fn start_with(s: &Scratch, more: &str) -> (Daemon, PathBuf) {
    let config = s.file(
        "meterd.toml",
        &format!("{more}\n[intervals]\ntime_zone = \"America/Los_Angeles\"\n"),
    );
    let d = Daemon::start(s, &config);
    d.wait_for("the daemon running", Duration::from_secs(60), |l| {
        l.contains("meterd running")
    });
    (d, config)
}

/// `meterd --config CONFIG args…` through the daemon.
fn ok(s: &Scratch, config: &std::path::Path, args: &[&str]) -> String {
    let mut all = vec!["--config", config.to_str().unwrap()];
    all.extend_from_slice(args);
    s.ok(&all)
}

fn fails(s: &Scratch, config: &std::path::Path, args: &[&str]) -> String {
    let mut all = vec!["--config", config.to_str().unwrap()];
    all.extend_from_slice(args);
    s.fails(&all)
}

fn days(s: &Scratch, config: &std::path::Path, meter: &str) -> Vec<Value> {
    let out = ok(s, config, &["intervals", "list", "--meter", meter, "--json"]);
    serde_json::from_str::<Value>(&out).unwrap().as_array().unwrap().clone()
}

#[test]
fn bad_interval_files_are_refused_whole_naming_line_and_field() {
    let s = Scratch::new();
    let (d, config) = start(&s);
    let good_day = ("20261103", flat(96, "0.25"), "A", vec![]);
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "no-header.csv",
            nem12("N1", 15, std::slice::from_ref(&good_day)).replacen("100,NEM12,202611010000,MDP1,RET1\r\n", "", 1),
            "line 1",
        ),
        (
            "no-end.csv",
            nem12("N1", 15, std::slice::from_ref(&good_day)).replace("900\r\n", ""),
            "900",
        ),
        (
            "count.csv",
            // Two good days, then a day with 95 values: the first two must not be stored either.
            nem12(
                "N1",
                15,
                &[
                    good_day.clone(),
                    ("20261104", flat(96, "0.25"), "A", vec![]),
                    ("20261105", flat(95, "0.25"), "A", vec![]),
                ],
            ),
            "line 5",
        ),
        (
            "spring.csv",
            // 2026-03-08 in Los Angeles has 23 hours: 92 quarter hours, not 96.
            nem12("N1", 15, &[("20260308", flat(96, "0.25"), "A", vec![])]),
            "the local day 2026-03-08 has 92",
        ),
        (
            "flag.csv",
            nem12("N1", 15, &[("20261103", flat(96, "0.25"), "Q", vec![])]),
            "quality",
        ),
        (
            "cmep-count.csv",
            "MEPMD01,19970819,HES,,METERD,,202611040000,C1,OK,E,KWH,1,00000015,3,202611030015,,0.5,,,0.5\r\n".into(),
            "count",
        ),
        (
            "cmep-boundary.csv",
            "MEPMD01,19970819,HES,,METERD,,202611040000,C1,OK,E,KWH,1,00000015,1,202611030807,,0.5\r\n".into(),
            "line 1",
        ),
    ];
    for (name, text, names) in cases {
        let f = s.file(name, &text);
        let err = fails(&s, &config, &["intervals", "import", f.to_str().unwrap()]);
        assert!(err.contains(name), "{name}: the error names the file: {err}");
        assert!(err.contains(names), "{name}: expected {names:?} in: {err}");
        assert!(err.contains("line"), "{name}: names the line: {err}");
    }
    assert!(days(&s, &config, "N1").is_empty(), "nothing of a bad file is stored");
    assert!(days(&s, &config, "C1").is_empty());
    d.stop();
}

#[test]
fn intervals_are_validated_estimated_exported_and_billed_once_through_the_daemon() {
    let s = Scratch::new();
    s.import_meters([meter_line("NMI1", "electric", 8, "active")]);
    let (d, config) = start(&s);

    // Four like Tuesdays, a Tuesday with a gap and a spike, and the DST days: 92 and 100
    // values.
    let mut days_in_file = tuesdays_with_a_gap_and_a_spike();
    days_in_file.push(("20260308", flat(92, "0.1"), "A", vec![]));
    days_in_file.push(("20261101", flat(100, "0.1"), "A", vec![]));
    let file = s.file("ami.csv", &nem12("NMI1", 15, &days_in_file));
    let said = ok(&s, &config, &["intervals", "import", file.to_str().unwrap()]);
    assert!(said.contains("committed 7 days"), "{said}");
    assert!(said.contains("7 stored"), "{said}");
    assert!(said.contains("interval_spike 1"), "{said}");
    let all = days(&s, &config, "NMI1");
    assert_eq!(all.len(), 7);
    let by_date = |d: &str| all.iter().find(|x| x["date"] == d).unwrap().clone();
    let spring = by_date("2026-03-08");
    assert_eq!(spring["values"].as_array().unwrap().len(), 92);
    assert_eq!(by_date("2026-11-01")["values"].as_array().unwrap().len(), 100);
    assert_eq!(spring["status"], "validated");
    let tue = by_date("2026-11-03");
    assert_eq!(tue["status"], "flagged", "a spike holds the day: {tue}");
    let rules: Vec<&str> = tue["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert!(
        rules.contains(&"interval_spike") && rules.contains(&"interval_gap"),
        "{rules:?}"
    );
    let spike = tue["flags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "interval_spike")
        .unwrap();
    assert_eq!(spike["intervals"], serde_json::json!([73]));
    assert_eq!(spike["actual"], 2.5);
    assert_eq!(spike["expected"], 0.25, "the third-highest");
    let gap = tue["flags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "interval_gap")
        .unwrap();
    assert_eq!(gap["intervals"], serde_json::json!([33, 34, 35, 36]));
    // The hour between two 0.25 neighbours is interpolated at 0.25, marked E / linear.
    for i in 32..36 {
        assert_eq!(tue["values"][i], 0.25, "{i}");
        assert_eq!(tue["quality"][i], "E");
        assert_eq!(tue["methods"][i], "linear");
    }
    assert_eq!(tue["quality"][31], "A");
    assert!(tue["methods"][31].is_null());

    // The store check walks the interval tables; a backup taken now carries them.
    assert!(ok(&s, &config, &["store", "check"]).contains("intact"));
    let backup = s.dir.path().join("backup.redb");
    ok(&s, &config, &["store", "backup", backup.to_str().unwrap()]);
    let copy = meterd::store::RedbStore::open(&backup).unwrap();
    assert_eq!(copy.begin_read().unwrap().count_interval_days().unwrap(), 7);
    drop(copy);

    // The same file again changes nothing.
    let again = ok(&s, &config, &["intervals", "import", file.to_str().unwrap()]);
    assert!(again.contains("0 stored") && again.contains("7 unchanged"), "{again}");
    assert_eq!(days(&s, &config, "NMI1"), all, "a re-import leaves every day as it was");

    // Another value for a stored interval: the day is held as a duplicate, the stored value stays.
    let mut changed = flat(96, "0.25");
    changed[9] = "0.3".into();
    let f2 = s.file("changed.csv", &nem12("NMI1", 15, &[("20261006", changed, "A", vec![])]));
    let said = ok(&s, &config, &["intervals", "import", f2.to_str().unwrap()]);
    assert!(said.contains("interval_duplicate 1"), "{said}");
    let oct6 = days(&s, &config, "NMI1")
        .into_iter()
        .find(|x| x["date"] == "2026-10-06")
        .unwrap();
    assert_eq!(oct6["status"], "flagged");
    assert_eq!(oct6["values"][9], 0.25);
    let dup = oct6["flags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "interval_duplicate")
        .unwrap();
    assert_eq!(dup["intervals"], serde_json::json!([10]));

    // Billing: the five billable days (not the two held) go out once, in every format from
    // the same frozen batch.
    let out = |name: &str| s.dir.path().join(name);
    let mut exported = Vec::new();
    for f in ["nem12", "cmep", "greenbutton", "json", "csv"] {
        let path = out(&format!("batch.{f}"));
        let said = ok(
            &s,
            &config,
            &[
                "batches",
                "export",
                "--kind",
                "intervals",
                "--format",
                f,
                "--out",
                path.to_str().unwrap(),
            ],
        );
        assert!(
            said.contains("interval batch") && said.contains("(5 days, 0 corrections)"),
            "{said}"
        );
        exported.push(std::fs::read_to_string(&path).unwrap());
    }
    let json: Value = serde_json::from_str(&exported[3]).unwrap();
    let batch_id = json["id"].as_u64().unwrap();
    let dates: Vec<&str> = json["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["date"].as_str().unwrap())
        .collect();
    assert_eq!(
        dates,
        ["2026-03-08", "2026-10-13", "2026-10-20", "2026-10-27", "2026-11-01"],
        "held days stay out"
    );

    // NEM12 and CMEP back (CMEP placed on the same local days, DST days included): every
    // value and quality code as the batch carried it.
    for (name, text) in [("back.csv", &exported[0]), ("back.cmep", &exported[1])] {
        reads_back_the_same(name, text, "NMI1", &json);
    }
    // Green Button: the structure, every reading inside its block, values scaled.
    check_green_button(&exported[2], &json);

    // Ack; nothing is exported again.
    let said = ok(&s, &config, &["batches", "ack", &batch_id.to_string()]);
    assert!(
        said.contains(&format!("interval batch {batch_id} acknowledged: 5 days exported")),
        "{said}"
    );
    let path = out("again.nem12");
    let said = ok(
        &s,
        &config,
        &[
            "batches",
            "export",
            "--kind",
            "intervals",
            "--format",
            "nem12",
            "--out",
            path.to_str().unwrap(),
        ],
    );
    assert!(said.contains("nothing to bill"), "{said}");
    assert!(!path.exists());
    let exported_days: Vec<Value> = days(&s, &config, "NMI1")
        .into_iter()
        .filter(|d| d["status"] == "exported")
        .collect();
    assert_eq!(exported_days.len(), 5);
    d.stop();
}

/// Imports an exported file into a fresh store and checks that every day of the batch `json`
/// comes back with the same values and quality codes.
pub(crate) fn reads_back_the_same(name: &str, text: &str, meter: &str, json: &Value) {
    let back = Scratch::new();
    let bc = back.file("meterd.toml", "[intervals]\ntime_zone = \"America/Los_Angeles\"\n");
    let f = back.file(name, text);
    ok(&back, &bc, &["intervals", "import", f.to_str().unwrap()]);
    let reimported = days(&back, &bc, meter);
    let batch = json["days"].as_array().unwrap();
    assert_eq!(reimported.len(), batch.len(), "{name}");
    for (day, orig) in reimported.iter().zip(batch) {
        assert_eq!(
            (&day["date"], &day["values"], &day["quality"]),
            (&orig["date"], &orig["values"], &orig["quality"]),
            "{name}"
        );
    }
}

pub(crate) fn check_green_button(xml: &str, json: &Value) {
    let doc = roxmltree::Document::parse(xml).unwrap();
    let espi = "http://naesb.org/espi";
    let atom = "http://www.w3.org/2005/Atom";
    let entries: Vec<_> = doc.descendants().filter(|n| n.has_tag_name((atom, "entry"))).collect();
    assert!(!entries.is_empty());
    for e in &entries {
        assert!(
            e.children()
                .any(|c| c.has_tag_name((atom, "link")) && c.attribute("rel") == Some("self")),
            "every entry links itself"
        );
    }
    let text = |n: roxmltree::Node<'_, '_>, name: &str| -> i64 {
        n.children()
            .find(|c| c.has_tag_name((espi, name)))
            .and_then(|c| c.text())
            .unwrap_or_else(|| panic!("{name}"))
            .trim()
            .parse()
            .unwrap()
    };
    let rt = doc
        .descendants()
        .find(|n| n.has_tag_name((espi, "ReadingType")))
        .expect("a ReadingType");
    let power = text(rt, "powerOfTenMultiplier");
    assert_eq!(text(rt, "uom"), 72, "Wh");
    let mut values = Vec::new();
    let blocks: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name((espi, "IntervalBlock")))
        .collect();
    assert_eq!(blocks.len(), 5, "one block per day");
    for b in blocks {
        let interval = b.children().find(|c| c.has_tag_name((espi, "interval"))).unwrap();
        let (start, duration) = (text(interval, "start"), text(interval, "duration"));
        for r in b.children().filter(|c| c.has_tag_name((espi, "IntervalReading"))) {
            let tp = r.children().find(|c| c.has_tag_name((espi, "timePeriod"))).unwrap();
            let (s, d) = (text(tp, "start"), text(tp, "duration"));
            assert!(s >= start && s + d <= start + duration, "reading inside its block");
            values.push(text(r, "value") as f64 * 10f64.powi(power as i32));
        }
    }
    // kWh in the batch, Wh in the feed.
    let want: Vec<f64> = json["days"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| {
            d["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() * 1000.0)
        })
        .collect();
    assert_eq!(values.len(), want.len());
    for (a, b) in values.iter().zip(&want) {
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }
}

/// A day still going on (today, its later intervals not due yet) is not held for the intervals
/// it cannot have yet, and billing does not take it while an interval is missing.
#[test]
fn a_day_still_going_on_waits_without_being_held() {
    let s = Scratch::new();
    let (d, config) = start(&s);
    let tz = jiff::tz::TimeZone::get("America/Los_Angeles").unwrap();
    let today = jiff::Timestamp::now().to_zoned(tz.clone()).date();
    let clock = meterd::model::interval::DayClock::new(tz);
    let n = clock.intervals_in_day(today, 60).unwrap();
    // The first hour measured, the rest null (N): hourly data so the file fits any day length.
    let mut values = flat(n, "0");
    values[0] = "1.5".into();
    let date = today.strftime("%Y%m%d").to_string();
    let events = ["400,1,1,A,,".to_owned(), format!("400,2,{n},N,,")];
    let events: Vec<&str> = events.iter().map(String::as_str).collect();
    let f = s.file(
        "today.csv",
        &nem12("LIVE1", 60, &[(date.as_str(), values, "V", events)]),
    );
    let said = ok(&s, &config, &["intervals", "import", f.to_str().unwrap()]);
    assert!(said.contains("0 held for review"), "{said}");
    let day = &days(&s, &config, "LIVE1")[0];
    assert_ne!(day["status"], "flagged", "{day}");
    assert!(
        day["flags"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["rule"] != "interval_gap" && f["rule"] != "not_estimable"),
        "{day}"
    );
    let out = s.dir.path().join("today.json");
    let said = ok(
        &s,
        &config,
        &[
            "batches",
            "export",
            "--kind",
            "intervals",
            "--format",
            "json",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(
        said.contains("nothing to bill"),
        "a day with missing values waits: {said}"
    );
    d.stop();
}
