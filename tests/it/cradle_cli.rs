//! The real binaries: `meterd simulate handheld` plays a recorder on a pty path, `meterd dock`
//! docks it twice (morning load, evening unload), then the route commands report on it.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::Scratch;

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for(path: &Path) {
    let start = Instant::now();
    while std::fs::symlink_metadata(path).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn read_line(meter: &str, reading: Option<u64>, skip: Option<&str>, minute: u8) -> String {
    serde_json::json!({
        "seq": 0, "route_id": "R1", "meter_id": meter, "reading": reading,
        "taken_at": {"year": 2026, "month": 3, "day": 2, "hour": 9, "minute": minute, "second": 0},
        "read_type": "Keyed", "verified": if reading == Some(999_999) { "High" } else { "No" },
        "skip_code": skip, "trouble_codes": []
    })
    .to_string()
}

#[test]
fn simulate_dock_and_route_reports() {
    let s = Scratch::new();
    let mut meters = String::from(crate::common::METERS_HEADER);
    for (i, id) in ["M1", "M2", "M3", "M4", "M5", "M6"].iter().enumerate() {
        meters.push_str(&format!(
            "{id},A{i},R1,{},water,gal,6,0,1,active,{i} Main St\n",
            (i + 1) * 10
        ));
    }
    meters.push_str("N1,B1,R2,10,gas,ccf,5,0,1,active,1 Oak Ave\n");
    let mf = s.file("meters.csv", &meters);
    s.ok(&["meters", "import", mf.to_str().unwrap()]);
    let rf = s.file(
        "reads.csv",
        "meter_id,read_at,value,read_type,codes\nM1,2026-01-05T10:00:00Z,1000,manual,\nM1,2026-02-05T10:00:00Z,1100,manual,\n",
    );
    s.ok(&["reads", "import", rf.to_str().unwrap()]);
    assert!(s.fails(&["routes", "assign", "R9", "--device", "SIM-7"]).contains("R9"));
    s.ok(&["routes", "assign", "R1", "--device", "SIM-7"]);
    assert!(s.fails(&["routes", "unread", "R1"]).contains("never loaded"));

    // M5 is skipped with a code, M6 left blank, M4 never read: M4 and M6 are unread.
    let script = [
        read_line("M1", Some(1234), None, 1),
        read_line("M2", Some(999_999), None, 2),
        read_line("M3", Some(42), None, 3),
        read_line("M5", None, Some("DOG"), 5),
        read_line("M6", None, None, 6),
    ]
    .join("\n");
    let reads_file = s.file("script.ndjson", &script);
    let port = s.dir.path().join("cradle");
    let state = s.dir.path().join("recorder.json");
    let sim = Kill(
        Command::new(env!("CARGO_BIN_EXE_meterd"))
            .args([
                "simulate",
                "handheld",
                "--firmware",
                "1",
                "--sessions",
                "2",
                "--serial",
                "SIM-7",
                "--baud",
                "115200",
            ])
            .arg("--port")
            .arg(&port)
            .arg("--state")
            .arg(&state)
            .arg("--reads")
            .arg(&reads_file)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    wait_for(&port);
    let port_s = port.to_str().unwrap();

    let morning = s.ok(&["dock", "--port", port_s]);
    assert!(morning.contains("recorder SIM-7"), "{morning}");
    assert!(morning.contains("loaded    R1"), "{morning}");
    let list: serde_json::Value = serde_json::from_str(&s.ok(&["routes", "list", "--json"])).unwrap();
    let r1 = list.as_array().unwrap().iter().find(|r| r["route"] == "R1").unwrap();
    assert_eq!(r1["assigned_to"], "SIM-7");
    assert_eq!(r1["loaded_on"], serde_json::json!(["SIM-7"]));
    assert_eq!(r1["meters"], 6);

    let evening = s.ok(&["dock", "--port", port_s, "--json"]);
    let report: serde_json::Value = serde_json::from_str(&evening).unwrap();
    assert_eq!(report["accepted"]["imported"], 3, "{evening}");
    assert_eq!(report["skips"], 2);
    assert_eq!(report["cleared"], 5);

    let unread: serde_json::Value = serde_json::from_str(&s.ok(&["routes", "unread", "R1", "--json"])).unwrap();
    let ids: Vec<&str> = unread["unread"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["meter_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["M4", "M6"], "{unread}");
    assert_eq!(
        (unread["read"].clone(), unread["skipped"].clone()),
        (3.into(), 1.into())
    );
    assert_eq!(unread["cycle"]["serial"], "SIM-7");

    let reads: serde_json::Value = serde_json::from_str(&s.ok(&["reads", "list", "--json"])).unwrap();
    let m2 = reads
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["meter_id"] == "M2")
        .unwrap();
    assert_eq!(m2["read_type"], "manual");
    assert!(
        m2["codes"].as_array().unwrap().contains(&"verified_high".into()),
        "{m2}"
    );
    assert!(m2["origin"].as_str().unwrap().starts_with("SIM-7 session"), "{m2}");

    // The simulator served its two dockings and saved the recorder's memory.
    let mut sim = sim;
    let start = Instant::now();
    while sim.0.try_wait().unwrap().is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "simulator did not stop after 2 sessions"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(saved["routes"][0]["id"], "R1", "route loaded again for the next day");
    // The five unloaded reads were cleared; what it holds now it read on the new load.
    assert!(
        saved["reads"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["seq"].as_u64().unwrap() >= 5),
        "{saved}"
    );
    assert!(!port.exists(), "the simulator removes its link");

    let err = s.fails(&["dock", "--port", port_s]);
    assert!(err.contains("cannot open"), "{err}");
}
