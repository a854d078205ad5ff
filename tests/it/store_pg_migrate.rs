//! `meterd store migrate --to URL`: an embedded store (the demo's: reads of every origin, a
//! billed batch, quarantine, gateways, a recorder's route, clerks' actions in the audit trail)
//! copied into an empty PostgreSQL database, then read back through the same commands with
//! `METERD_STORE_URL` set: every listing the same, the audit chain verified, `store check`
//! clean. A copy cut off half-way resumes where it stopped.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::{Scratch, failed, pg, succeeded};

/// `meterd --data-dir DATA args…`; with `url`, on that PostgreSQL store as an administrator
/// sets it up: METERD_STORE_URL, and a configuration naming the server's CA (TLS verify-full,
/// the default, for the server's name).
fn meterd(data: &Path, url: Option<&str>, args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_meterd"));
    c.env_remove("METERD_CONFIG").env_remove("METERD_DATA_DIR");
    match url {
        Some(u) => {
            let config = data.with_file_name("server.toml");
            let ca = pg::ca_file();
            std::fs::write(&config, format!("[store]\nca_file = {:?}\n", ca.to_str().unwrap())).unwrap();
            c.arg("--config").arg(&config).env("METERD_STORE_URL", u)
        }
        None => c.env_remove("METERD_STORE_URL"),
    };
    c.arg("--data-dir").arg(data).args(args);
    c.output().unwrap()
}

fn ok(data: &Path, url: Option<&str>, args: &[&str]) -> String {
    succeeded(args, meterd(data, url, args))
}

/// A fresh database, named by the host its certificate is for.
fn server_url() -> String {
    pg::database().replace("@127.0.0.1:", "@localhost:")
}

/// A demo store with some clerk work on it; its data directory.
fn demo_store(s: &Scratch) -> PathBuf {
    let demo = s.dir.path().join("demo");
    s.ok(&["demo", "--keep", demo.to_str().unwrap()]);
    let data = demo.join("store");
    let queue: serde_json::Value = serde_json::from_str(&ok(&data, None, &["review", "list", "--json"])).unwrap();
    let ids: Vec<String> = queue
        .as_array()
        .unwrap()
        .iter()
        .take(3)
        .map(|r| r["id"].to_string())
        .collect();
    assert_eq!(ids.len(), 3, "the demo holds reads for review");
    ok(&data, None, &["review", "accept", &ids[0]]);
    ok(&data, None, &["review", "note", &ids[1], "called the customer"]);
    ok(
        &data,
        None,
        &["review", "reject", &ids[2], "--reason", "photo shows another meter"],
    );
    data
}

/// What a clerk and the billing system see, without the fields that move with the clock.
fn listings(data: &Path, url: Option<&str>) -> Vec<(String, serde_json::Value)> {
    fn still(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                m.retain(|k, _| !k.starts_with("silen"));
                m.values_mut().for_each(still);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(still),
            _ => {}
        }
    }
    [
        vec!["reads", "list", "--json"],
        vec!["meters", "list", "--json"],
        vec!["batches", "list", "--json"],
        vec!["review", "list", "--json"],
        vec!["quarantine", "list", "--json"],
        vec!["gateways", "list", "--json"],
        vec!["routes", "list", "--json"],
        vec!["audit", "show", "--json", "--meter", "W09-002"],
    ]
    .into_iter()
    .map(|args| {
        let mut v: serde_json::Value = serde_json::from_str(&ok(data, url, &args)).unwrap();
        still(&mut v);
        (args.join(" "), v)
    })
    .collect()
}

#[test]
fn an_embedded_store_moves_to_postgresql_whole_and_verified() {
    let s = Scratch::new();
    let data = demo_store(&s);
    let before = listings(&data, None);
    let audit_before = ok(&data, None, &["audit", "verify"]);
    assert!(audit_before.contains("intact: 3 entries"), "{audit_before}");

    let url = server_url();
    let out = ok(&data, Some(&url), &["store", "migrate"]);
    assert!(
        out.contains("copied and verified") && !out.contains("MISMATCH"),
        "{out}"
    );
    for table in [
        "meters",
        "reads",
        "batches",
        "quarantine",
        "audit",
        "interval_reads",
        "route_loads",
    ] {
        let line = out
            .lines()
            .find(|l| l.split_whitespace().next() == Some(table))
            .unwrap_or_else(|| panic!("no count for {table}:\n{out}"));
        let n: Vec<&str> = line.split_whitespace().skip(1).collect();
        assert!(n.len() == 2 && n[0] == n[1] && n[0] != "0", "{line}");
    }

    // The same commands on the copy say the same.
    let after = listings(&data, Some(&url));
    for ((what, a), (_, b)) in before.iter().zip(&after) {
        assert_eq!(a, b, "`{what}` differs between the embedded store and its copy");
    }
    assert_eq!(ok(&data, Some(&url), &["audit", "verify"]), audit_before);
    let check = ok(&data, Some(&url), &["store", "check"]);
    assert!(check.contains("intact"), "{check}");

    // The copy carries on: new ids follow the copied ones.
    let next: serde_json::Value = serde_json::from_str(&ok(&data, Some(&url), &["reads", "list", "--json"])).unwrap();
    let highest = next
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_u64().unwrap())
        .max()
        .unwrap();
    let csv = s.file(
        "more.csv",
        "meter_id,read_at,value\nW01-001,2026-02-01T10:00:00Z,999999\n",
    );
    ok(&data, Some(&url), &["reads", "import", csv.to_str().unwrap()]);
    let after: serde_json::Value = serde_json::from_str(&ok(&data, Some(&url), &["reads", "list", "--json"])).unwrap();
    let new = after
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_u64().unwrap())
        .max()
        .unwrap();
    assert_eq!(new, highest + 1);

    // A database that holds a store already is not copied into.
    let err = failed(&["store", "migrate"], meterd(&data, Some(&url), &["store", "migrate"]));
    assert!(err.contains("finished copy"), "{err}");
}

#[test]
fn a_copy_cut_off_half_way_resumes_and_ends_whole() {
    let s = Scratch::new();
    let data = demo_store(&s);
    let url = server_url();
    let db = pg::dbname(&url).to_owned();
    // The schema first (an instance opening the database makes it), then a fault the copy
    // meets after meters, reads and billing went in: the audit table refuses rows.
    drop(
        meterd::store::postgres::PgStore::open(&meterd::store::postgres::StoreConfig {
            url: Some(url.clone()),
            ca_file: Some(pg::ca_file()),
            ..Default::default()
        })
        .unwrap(),
    );
    pg::psql(
        &db,
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS \
         $$BEGIN RAISE EXCEPTION 'disk full (a test fault)'; END$$; \
         CREATE TRIGGER refuse BEFORE INSERT ON audit FOR EACH ROW EXECUTE FUNCTION refuse();",
    );
    let err = failed(&["store", "migrate"], meterd(&data, Some(&url), &["store", "migrate"]));
    assert!(err.contains("disk full"), "{err}");
    let reads_copied: u64 = pg::psql(&db, "SELECT count(*) FROM reads").parse().unwrap();
    assert!(reads_copied > 0, "the copy stopped before the reads");
    assert_eq!(pg::psql(&db, "SELECT count(*) FROM audit"), "0");

    pg::psql(&db, "DROP TRIGGER refuse ON audit");
    let out = ok(&data, Some(&url), &["store", "migrate"]);
    assert!(out.contains("an interrupted copy was resumed"), "{out}");
    assert!(
        out.contains("copied and verified") && !out.contains("MISMATCH"),
        "{out}"
    );
    // Nothing was copied twice.
    assert_eq!(
        pg::psql(&db, "SELECT count(*) FROM reads").parse::<u64>().unwrap(),
        reads_copied
    );
    assert_eq!(
        ok(&data, Some(&url), &["audit", "verify"]),
        ok(&data, None, &["audit", "verify"])
    );
}
