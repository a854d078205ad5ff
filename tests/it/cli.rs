//! The CLI contract, run through the real binary on real files.

use crate::common::{METERS_HEADER, Scratch, meter_line};
use serde_json::Value;

const READS_HEADER: &str = "meter_id,read_at,value,read_type,codes\n";

fn setup_meters(s: &Scratch) {
    let meters = format!(
        "{METERS_HEADER}{}{}{}",
        meter_line("M1", "water", 8, "active"),
        meter_line("M2", "gas", 5, "active"),
        meter_line("OFF", "electric", 6, "inactive"),
    );
    let f = s.file("meters.csv", &meters);
    let out = s.ok(&["meters", "import", f.to_str().unwrap()]);
    assert!(out.contains("imported 3 meters") && out.contains("3 added"), "{out}");
    let again = s.ok(&["meters", "import", f.to_str().unwrap()]);
    assert!(again.contains("0 added, 0 updated, 3 unchanged"), "{again}");
}

fn rules(read: &Value) -> Vec<String> {
    read["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn reads_list_json_shape_and_rollover_numbers() {
    let s = Scratch::new();
    setup_meters(&s);
    let reads = s.file(
        "reads.csv",
        &format!(
            "{READS_HEADER}M1,2025-01-05T08:00:00Z,99999678,manual,\n\
             M1,2025-02-05T08:00:00Z,00000123,manual,SC-04\n\
             M2,2025-01-05T09:00:00+01:00,100.5,radio,leak\n"
        ),
    );
    let out = s.ok(&["reads", "import", reads.to_str().unwrap()]);
    assert!(out.contains("committed 3 reads"), "{out}");
    assert!(
        out.contains("imported 3 reads") && out.contains("2 validated, 1 held for review"),
        "{out}"
    );
    assert!(out.contains("flagged by rule: rollover 1, leak 1"), "{out}");

    let list = s.json(&["reads", "list", "--json"]);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 3);
    let first = &list[0];
    assert_eq!(first["meter_id"], "M1");
    assert_eq!(first["read_at"], "2025-01-05T08:00:00Z");
    assert_eq!(first["value"], 99999678);
    assert!(first["consumption"].is_null(), "first read has no consumption");
    assert_eq!(first["status"], "validated");
    assert_eq!(first["flags"], serde_json::json!([]));

    let second = &list[1];
    assert_eq!(second["raw"], "00000123");
    assert_eq!(second["value"], 123);
    assert_eq!(second["consumption"], 445, "(123 − 99999678) mod 10^8 = 445");
    assert_eq!(second["status"], "validated");
    assert_eq!(second["codes"], serde_json::json!(["SC-04"]));
    assert_eq!(rules(second), ["rollover"]);
    assert_eq!(second["flags"][0]["actual"], 445);
    assert_eq!(second["flags"][0]["modulus"], 100000000);

    // Offsets are normalised to UTC; decimals print as JSON numbers.
    let m2 = &list[2];
    assert_eq!(m2["read_at"], "2025-01-05T08:00:00Z");
    assert_eq!(m2["value"], 100.5);
    assert_eq!(m2["status"], "flagged");
    assert_eq!(rules(m2), ["leak"]);

    let only = s.json(&["reads", "list", "--json", "--meter", "M2"]);
    assert_eq!(only.as_array().unwrap().len(), 1);
    assert_eq!(only[0]["meter_id"], "M2");

    let review = s.json(&["review", "list", "--json"]);
    let review = review.as_array().unwrap();
    assert_eq!(review.len(), 1);
    assert_eq!(review[0]["meter_id"], "M2");
}

#[test]
fn reimport_is_idempotent_and_conflicting_value_is_a_duplicate() {
    let s = Scratch::new();
    setup_meters(&s);
    let body = format!(
        "{READS_HEADER}M1,2025-01-05T08:00:00Z,1000,manual,\n\
         M1,2025-02-05T08:00:00Z,1300,manual,\n\
         M1,2025-03-05T08:00:00Z,1590,manual,\n"
    );
    let f = s.file("reads.csv", &body);
    s.ok(&["reads", "import", f.to_str().unwrap()]);
    let out = s.ok(&["reads", "import", f.to_str().unwrap()]);
    assert!(
        out.contains("imported 0 reads") && out.contains("3 duplicates skipped"),
        "{out}"
    );
    assert_eq!(s.json(&["reads", "list", "--json"]).as_array().unwrap().len(), 3);

    // Same meter and time, another value: kept and flagged duplicate, with both numbers.
    let g = s.file(
        "fix.csv",
        &format!("{READS_HEADER}M1,2025-03-05T08:00:00Z,1591,manual,\n"),
    );
    let report: Value = serde_json::from_str(&s.ok(&["reads", "import", "--json", g.to_str().unwrap()])).unwrap();
    assert_eq!(report["imported"], 1);
    assert_eq!(report["flagged"], 1);
    assert_eq!(report["by_rule"]["duplicate"], 1);
    let review = s.json(&["review", "list", "--json"]);
    assert_eq!(rules(&review[0]), ["duplicate"]);
    assert_eq!(review[0]["flags"][0]["expected"], 1590);
    assert_eq!(review[0]["flags"][0]["actual"], 1591);
}

#[test]
fn vee_uses_earlier_reads_of_the_same_file_and_flags_unknown_meters() {
    let s = Scratch::new();
    setup_meters(&s);
    // Out of order in the file; sorted per meter before VEE. The fourth month is high:
    // E = 300, H = 540, C = 900.
    let f = s.file(
        "reads.csv",
        &format!(
            "{READS_HEADER}M1,2025-04-04T08:00:00Z,2500,manual,\n\
             M1,2025-01-05T08:00:00Z,1000,manual,\n\
             M1,2025-03-05T08:00:00Z,1590,manual,\n\
             M1,2025-02-03T08:00:00Z,1300,manual,\n\
             NOPE,2025-01-05T08:00:00Z,5,manual,\n\
             OFF,2025-01-05T08:00:00Z,10,manual,\n\
             OFF,2025-02-05T08:00:00Z,12,manual,\n"
        ),
    );
    s.ok(&["reads", "import", f.to_str().unwrap()]);
    let review = s.json(&["review", "list", "--json"]);
    let by_meter = |id: &str| {
        review
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["meter_id"] == id)
            .cloned()
            .unwrap()
    };
    let high = by_meter("M1");
    assert_eq!(high["read_at"], "2025-04-04T08:00:00Z");
    assert_eq!(rules(&high), ["high_usage"]);
    assert_eq!(high["consumption"], 910);
    assert_eq!(rules(&by_meter("NOPE")), ["unknown_meter"]);
    assert_eq!(rules(&by_meter("OFF")), ["usage_on_inactive"]);
    assert_eq!(review.as_array().unwrap().len(), 3);
}

#[test]
fn batches_next_is_stable_until_ack_and_ack_is_idempotent() {
    let s = Scratch::new();
    setup_meters(&s);
    let f = s.file(
        "reads.csv",
        &format!(
            "{READS_HEADER}M1,2025-01-05T08:00:00Z,1000,manual,\n\
             M1,2025-02-05T08:00:00Z,1300,manual,\n\
             M2,2025-01-05T08:00:00Z,50,manual,tamper\n"
        ),
    );
    s.ok(&["reads", "import", f.to_str().unwrap()]);

    let b1 = s.json(&["batches", "next", "--json"]);
    let id = b1["id"].as_u64().unwrap();
    let ids = |b: &Value| {
        b["reads"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_u64().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&b1).len(), 2, "the flagged tamper read is not billable");
    assert!(
        b1["reads"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "batched" && r["batch"] == id)
    );
    let b2 = s.json(&["batches", "next", "--json"]);
    assert_eq!(b2, b1, "re-asking before ack returns the same batch");

    assert!(s.ok(&["batches", "ack", &id.to_string()]).contains("acknowledged"));
    assert!(s.ok(&["batches", "ack", &id.to_string()]).contains("already"));
    let exported = s.json(&["reads", "list", "--json", "--meter", "M1"]);
    assert!(exported.as_array().unwrap().iter().all(|r| r["status"] == "exported"));

    // Nothing new to bill: no batch.
    let none = s.json(&["batches", "next", "--json"]);
    assert!(none["id"].is_null() && none["reads"].as_array().unwrap().is_empty());

    // New reads go into a new batch; the billed ones never again.
    let g = s.file(
        "more.csv",
        &format!("{READS_HEADER}M1,2025-03-05T08:00:00Z,1590,manual,\n"),
    );
    s.ok(&["reads", "import", g.to_str().unwrap()]);
    let b3 = s.json(&["batches", "next", "--json"]);
    assert_ne!(b3["id"], b1["id"]);
    assert_eq!(b3["reads"].as_array().unwrap().len(), 1);
    assert!(ids(&b3).iter().all(|r| !ids(&b1).contains(r)));

    let err = s.fails(&["batches", "ack", "999"]);
    assert!(err.contains("batch 999 not found"), "{err}");
}

/// Each bad file is refused with file, line and field; the store is unchanged afterwards.
#[test]
fn bad_input_names_file_line_field_and_imports_nothing() {
    let s = Scratch::new();
    setup_meters(&s);
    let good = "M1,2025-01-05T08:00:00Z,1000,manual,\n".to_owned()
        + "M1,2025-02-05T08:00:00Z,1300,manual,\n"
        + "M2,2025-02-05T08:00:00Z,7,manual,\n";
    let cases: [(&str, String, &[&str]); 6] = [
        (
            "unknown_column.csv",
            "meter_id,read_at,value,colour\n".to_owned(),
            &["line 1", "field colour", "unknown column"],
        ),
        (
            "bad_date.csv",
            format!("{READS_HEADER}{good}M2,2025-13-05T08:00:00Z,8,manual,\n"),
            &["line 5", "field read_at", "2025-13-05T08:00:00Z"],
        ),
        (
            "no_offset.csv",
            format!("{READS_HEADER}{good}M2,2025-03-05 08:00,8,manual,\n"),
            &["line 5", "field read_at"],
        ),
        (
            "bad_number.csv",
            format!("{READS_HEADER}{good}M2,2025-03-05T08:00:00Z,8O1,manual,\n"),
            &["line 5", "field value", "8O1"],
        ),
        (
            "truncated.csv",
            format!("{READS_HEADER}{good}M2,2025-03-05T08:0"),
            &["line 5", "expected 5 fields, found 2"],
        ),
        (
            "bad_type.csv",
            format!("{READS_HEADER}{good}M2,2025-03-05T08:00:00Z,9,psychic,\n"),
            &["line 5", "field read_type"],
        ),
    ];
    for (name, body, expect) in cases {
        let f = s.file(name, &body);
        // A chunk of 1 would commit the good lines first if the file were not checked whole.
        let err = s.fails(&["reads", "import", "--chunk", "1", f.to_str().unwrap()]);
        assert!(err.contains(name), "{name}: {err}");
        for e in expect {
            assert!(err.contains(e), "{name}: expected {e:?} in {err}");
        }
        assert_eq!(
            s.json(&["reads", "list", "--json"]),
            serde_json::json!([]),
            "{name} was half-imported"
        );
    }

    let m = s.file(
        "meters_bad.csv",
        &format!("{METERS_HEADER}X1,A,R,1,water,gal,8,0,1,active,a\nX2,A,R,2,steam,gal,8,0,1,active,a\n"),
    );
    let err = s.fails(&["meters", "import", m.to_str().unwrap()]);
    assert!(
        err.contains("meters_bad.csv, line 3, field service") && err.contains("steam"),
        "{err}"
    );
    let meters = s.json(&["meters", "list", "--json"]);
    assert_eq!(
        meters.as_array().unwrap().len(),
        3,
        "X1 must not be imported from a rejected file"
    );

    let err = s.fails(&["reads", "import", "/nonexistent/reads.csv"]);
    assert!(err.contains("/nonexistent/reads.csv"), "{err}");
}

#[test]
fn sensus_autoread_route_layout_imports_meters_in_walk_order() {
    let s = Scratch::new();
    let layout = meterd_protocols::fixed_width::sensus_autoread_import();
    let rec = |addr: &str, id: &str, acct: &str, ty: &str| {
        layout
            .format([
                ("service_address", addr),
                ("meter_id", id),
                ("account_id", acct),
                ("meter_type", ty),
                ("previous_read", "1234"),
            ])
            .unwrap()
    };
    let body = format!(
        "{}\r\n{}\r\n",
        rec("12 ELM ST", "W0000001", "ACC1", "W"),
        rec("14 ELM ST", "G0000002", "ACC2", "G")
    );
    let f = s.file("route07.txt", &body);
    let out = s.ok(&[
        "meters",
        "import",
        "--layout",
        "sensus-autoread",
        "--dials",
        "6",
        f.to_str().unwrap(),
    ]);
    assert!(out.contains("imported 2 meters"), "{out}");
    let meters = s.json(&["meters", "list", "--json"]);
    assert_eq!(meters[0]["meter_id"], "G0000002");
    assert_eq!(meters[0]["service"], "gas");
    assert_eq!(meters[0]["sequence"], 2);
    assert_eq!(meters[1]["route"], "route07");
    assert_eq!(meters[1]["address"], "12 ELM ST");
    assert_eq!(meters[1]["dials"], 6);

    let short = s.file(
        "short.txt",
        &format!(
            "{}\n{}\n",
            rec("1 A", "W1", "A", "W"),
            &rec("2 B", "W2", "B", "W")[..100]
        ),
    );
    let err = s.fails(&[
        "meters",
        "import",
        "--layout",
        "sensus-autoread",
        short.to_str().unwrap(),
    ]);
    assert!(
        err.contains("short.txt, line 2") && err.contains("truncated record: 100 characters"),
        "{err}"
    );
    let bad = s.file("badtype.txt", &format!("{}\n", rec("1 A", "W1", "A", "Z")));
    let err = s.fails(&["meters", "import", "--layout", "sensus-autoread", bad.to_str().unwrap()]);
    assert!(err.contains("line 1, field meter_type"), "{err}");
}

#[test]
fn schema_version_mismatch_is_a_clear_error() {
    let s = Scratch::new();
    setup_meters(&s);
    let path = s.data_dir().join(meterd::store::STORE_FILE);
    meterd::store::RedbStore::set_schema_version(&path, 999).unwrap();
    let err = s.fails(&["reads", "list", "--json"]);
    assert!(
        err.contains("schema version 999")
            && err.contains(&format!("supports version {}", meterd::store::SCHEMA_VERSION)),
        "{err}"
    );
}

#[test]
fn config_file_sets_data_dir_and_factors_and_rejects_unknown_keys() {
    let s = Scratch::new();
    let data = s.dir.path().join("from-config");
    let cfg = s.file(
        "meterd.toml",
        &format!(
            "data_dir = {:?}\n[vee.water]\nhigh_factor = 4\n",
            data.display().to_string()
        ),
    );
    let meters = s.file(
        "m.csv",
        &format!("{METERS_HEADER}{}", meter_line("M1", "water", 8, "active")),
    );
    // No --data-dir: the config's data_dir is used (meterd.toml in the working directory).
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_meterd"))
            .args(args)
            .current_dir(s.dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    run(&["meters", "import", meters.to_str().unwrap()]);
    assert!(data.join(meterd::store::STORE_FILE).exists());
    // With high_factor 4: E = 295 → H = 1180; C = 900 is not high (with 1.8 it would be).
    let reads = s.file(
        "r.csv",
        &format!(
            "{READS_HEADER}M1,2025-01-05T08:00:00Z,1000,manual,\nM1,2025-02-04T08:00:00Z,1300,manual,\n\
             M1,2025-03-06T08:00:00Z,1590,manual,\nM1,2025-04-05T08:00:00Z,2490,manual,\n"
        ),
    );
    let out = run(&["reads", "import", reads.to_str().unwrap()]);
    assert!(out.contains("0 held for review"), "{out}");

    let bad = s.file("bad.toml", "[vee.water]\nhigh_factr = 2\n");
    let err = s.fails(&["--config", bad.to_str().unwrap(), "reads", "list"]);
    assert!(err.contains("bad.toml") && err.contains("high_factr"), "{err}");
    drop(cfg);
}

#[test]
fn demo_runs_end_to_end() {
    let s = Scratch::new();
    let out = s.ok(&["demo"]);
    for expect in [
        "300 on 7 routes",
        "held for review",
        "rollover",
        "unknown_meter",
        "0 imported",
        "batch 1",
        "exported",
    ] {
        assert!(out.contains(expect), "demo output lacks {expect:?}:\n{out}");
    }
}

#[test]
fn poll_keeps_read_as_a_hidden_alias() {
    let s = Scratch::new();
    // Scripts written for `meterd read probe|mbus` keep working...
    let help = s.ok(&["read", "probe", "--help"]);
    assert!(help.contains("--software-parity"), "{help}");
    // ...but the help lists only `poll`, beside `reads` (the store's reads).
    let top = s.ok(&["--help"]);
    let commands: Vec<&str> = top
        .lines()
        .filter_map(|l| {
            l.strip_prefix("  ")
                .filter(|r| !r.starts_with(' '))?
                .split_whitespace()
                .next()
        })
        .collect();
    assert!(commands.contains(&"poll") && commands.contains(&"reads"), "{top}");
    assert!(!commands.contains(&"read"), "{top}");
}
