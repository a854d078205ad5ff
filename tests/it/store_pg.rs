//! The PostgreSQL store's foundations against a real server (the private cluster of
//! `common::pg`): schema migrations, month partitions, connection errors, `[store]` in the
//! configuration.

use std::os::unix::fs::PermissionsExt;

use meterd::store::StoreError;
use meterd::store::postgres::{Month, Partitioned, Partitions, PgEngine, SCHEMA_VERSION, SslMode, StoreConfig};

use crate::common::{Scratch, free_port, pg};

fn config(url: &str) -> StoreConfig {
    StoreConfig {
        url: Some(url.to_owned()),
        // The test cluster has no TLS (verify-full against it is tested below).
        sslmode: SslMode::Disable,
        connect_timeout_secs: 5,
        ..StoreConfig::default()
    }
}

fn connect_err(c: &StoreConfig) -> String {
    match PgEngine::connect(c) {
        Ok(e) => panic!("connecting to {} should have failed", e.target()),
        Err(e) => {
            let text = e.to_string();
            eprintln!("{text}");
            text
        }
    }
}

#[test]
fn an_empty_database_gets_the_current_schema_and_reopening_changes_nothing() {
    let url = pg::database();
    let db = pg::dbname(&url);
    let engine = PgEngine::connect(&config(&url)).unwrap();
    assert_eq!((engine.migrated().from, engine.migrated().to), (0, SCHEMA_VERSION));
    assert_eq!(engine.schema_version().unwrap(), SCHEMA_VERSION);
    assert!(engine.target().contains(db) && engine.target().contains(&format!("127.0.0.1:{}", pg::port())));
    // Every table of the embedded store has its counterpart.
    let tables = pg::psql(
        db,
        "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'",
    );
    for t in [
        "meters",
        "reads",
        "batches",
        "open_batches",
        "batch_contents",
        "billed",
        "billed_read_changes",
        "api_tokens",
        "quarantine",
        "quarantine_summary",
        "quarantine_usage",
        "seen",
        "gateways",
        "interval_reads",
        "tamper_state",
        "outbox",
        "route_assignments",
        "route_loads",
        "cradle_watermarks",
        "route_skips",
        "audit",
        "undo_snapshots",
        "service_orders",
        "meter_changes",
        "channels",
        "interval_days",
        "interval_batches",
        "open_interval_batches",
        "interval_batch_contents",
        "meterd_schema",
    ] {
        assert!(tables.split(',').any(|x| x == t), "table {t} missing in {tables}");
    }
    // One row per version applied, each naming the meterd that applied it.
    let recorded = pg::psql(
        db,
        "SELECT version || ' ' || meterd_version FROM meterd_schema ORDER BY version DESC LIMIT 1",
    );
    assert_eq!(recorded, format!("{SCHEMA_VERSION} {}", env!("CARGO_PKG_VERSION")));
    drop(engine);

    let again = PgEngine::connect(&config(&url)).unwrap();
    assert_eq!(
        (again.migrated().from, again.migrated().to),
        (SCHEMA_VERSION, SCHEMA_VERSION)
    );
    assert_eq!(
        pg::psql(db, "SELECT count(*) FROM meterd_schema"),
        SCHEMA_VERSION.to_string()
    );
}

#[test]
fn instances_starting_together_apply_each_migration_once() {
    let url = pg::database();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let c = config(&url);
            std::thread::spawn(move || PgEngine::connect(&c).map(|e| e.migrated()))
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap().unwrap()).collect();
    assert!(results.iter().all(|m| m.to == SCHEMA_VERSION), "{results:?}");
    assert_eq!(results.iter().filter(|m| m.from == 0).count(), 1, "{results:?}");
    assert_eq!(
        pg::psql(pg::dbname(&url), "SELECT count(*) FROM meterd_schema"),
        SCHEMA_VERSION.to_string()
    );
}

#[test]
fn a_database_of_a_newer_schema_is_refused_with_both_versions() {
    let url = pg::database();
    drop(PgEngine::connect(&config(&url)).unwrap());
    let newer = SCHEMA_VERSION + 41;
    pg::psql(
        pg::dbname(&url),
        &format!("INSERT INTO meterd_schema VALUES ({newer}, now(), '9.9.9')"),
    );
    let e = PgEngine::connect(&config(&url)).unwrap_err();
    assert!(
        matches!(e, StoreError::SchemaVersion { found, supported, .. } if found == newer && supported == SCHEMA_VERSION),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(
        text.contains(&format!("schema version {newer}"))
            && text.contains(&format!("supports version {SCHEMA_VERSION}"))
            && text.contains(pg::dbname(&url)),
        "{text}"
    );
}

#[test]
fn month_partitions_are_created_on_demand_and_rows_land_in_theirs() {
    let url = pg::database();
    let db = pg::dbname(&url).to_owned();
    let engine = PgEngine::connect(&config(&url)).unwrap();
    let jan = Month::new(2026, 1).unwrap();
    let feb = Month::new(2026, 2).unwrap();
    let partitions = engine.partitions().clone();
    engine
        .with_client(move |client| async move {
            partitions.ensure(&client, Partitioned::Reads, [jan, feb]).await?;
            // Cached: a second call sends nothing (and would succeed anyway).
            partitions.ensure(&client, Partitioned::Reads, [jan, feb]).await
        })
        .unwrap();
    let insert = |id: u64, at: &str| {
        format!(
            "INSERT INTO reads (id, meter_id, read_at, value, raw, read_type, reader, origin_kind, origin_source, \
             origin_locator, status, consumption, excluded, received_at) VALUES ({id}, 'M1', '{at}', 1000000, '1', \
             'manual', NULL, 'file', 'reads.csv', 'line {id}', 0, NULL, false, now())"
        )
    };
    pg::psql(&db, &insert(1, "2026-01-31T23:59:59.999999Z"));
    pg::psql(&db, &insert(2, "2026-02-01T00:00:00Z"));
    let placed = pg::psql(
        &db,
        "SELECT string_agg(tableoid::regclass::text || '=' || id, ',' ORDER BY id) FROM reads",
    );
    assert_eq!(placed, "reads_y2026m01=1,reads_y2026m02=2");
    // A month without its partition is refused, not parked somewhere.
    let e = pg::try_psql(&db, &insert(3, "2026-04-01T00:00:00Z")).unwrap_err();
    assert!(e.contains("no partition of relation \"reads\" found"), "{e}");
    assert_eq!(
        pg::psql(
            &db,
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'reads'::regclass"
        ),
        "2"
    );

    // Instances racing to create the same month (each with its own cache) all succeed.
    let racers: Vec<_> = (0..4)
        .map(|_| {
            let c = config(&url);
            std::thread::spawn(move || {
                let e = PgEngine::connect(&c)?;
                let mar = Month::new(2026, 3).unwrap();
                e.with_client(move |client| async move {
                    Partitions::new()
                        .ensure(&client, Partitioned::IntervalReads, [mar])
                        .await
                })
            })
        })
        .collect();
    for r in racers {
        r.join().unwrap().unwrap();
    }
    assert_eq!(
        pg::psql(
            &db,
            "SELECT string_agg(c.relname, ',') FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE inhparent = 'interval_reads'::regclass"
        ),
        "interval_reads_y2026m03"
    );
}

#[test]
fn reads_go_in_by_the_thousand_with_one_statement_of_array_binds() {
    // What the engine's bulk insert will do: ids by the block from their sequence, the months'
    // partitions first, then one INSERT ... SELECT FROM UNNEST of one array per column.
    let url = pg::database();
    let engine = PgEngine::connect(&config(&url)).unwrap();
    let partitions = engine.partitions().clone();
    const N: usize = 3000;
    let inserted = engine
        .with_client(move |client| async move {
            let e = |e: tokio_postgres::Error| StoreError::Engine(meterd::store::postgres::error_text(&e));
            let start: jiff::Timestamp = "2026-01-20T00:00:00Z".parse().unwrap();
            // One read an hour: 20 January to about 5 June, five months.
            let times: Vec<jiff::Timestamp> = (0..N)
                .map(|i| start + jiff::SignedDuration::from_hours(i as i64))
                .collect();
            partitions
                .ensure(&client, Partitioned::Reads, Month::of_all(times.iter().copied())?)
                .await?;
            let ids: Vec<i64> = client
                .query(
                    "SELECT nextval('read_ids') FROM generate_series(1, $1::bigint)",
                    &[&(N as i64)],
                )
                .await
                .map_err(e)?
                .iter()
                .map(|r| r.get(0))
                .collect();
            let meters: Vec<String> = (0..N).map(|i| format!("M{}", i % 10)).collect();
            let values: Vec<i64> = (0..N).map(|i| i as i64 * 1_000_000).collect();
            let raws: Vec<String> = (0..N).map(|i| i.to_string()).collect();
            let types = vec!["gateway".to_owned(); N];
            let codes: Vec<serde_json::Value> = (0..N)
                .map(|i| {
                    if i % 2 == 0 {
                        serde_json::json!([])
                    } else {
                        serde_json::json!(["tamper"])
                    }
                })
                .collect();
            let readers: Vec<Option<String>> = (0..N).map(|i| (i % 3 == 0).then(|| "GW1".to_owned())).collect();
            let kinds = vec!["gateway".to_owned(); N];
            let sources = vec!["meters/GW1/rtlamr".to_owned(); N];
            let locators: Vec<String> = (0..N).map(|i| format!("packet {i}")).collect();
            let statuses = vec![0i16; N];
            let flags = vec![serde_json::json!([]); N];
            let consumption: Vec<Option<i64>> = (0..N).map(|i| (i > 0).then_some(1_000_000)).collect();
            let excluded = vec![false; N];
            let received = vec![start; N];
            let batches: Vec<Option<i64>> = vec![None; N];
            client
                .execute(
                    "INSERT INTO reads (id, meter_id, read_at, value, raw, read_type, codes, reader, origin_kind, \
                     origin_source, origin_locator, status, flags, consumption, excluded, received_at, batch_id) \
                     SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::timestamptz[], $4::bigint[], $5::text[], \
                     $6::text[], $7::jsonb[], $8::text[], $9::text[], $10::text[], $11::text[], $12::smallint[], \
                     $13::jsonb[], $14::bigint[], $15::bool[], $16::timestamptz[], $17::bigint[])",
                    &[
                        &ids,
                        &meters,
                        &times,
                        &values,
                        &raws,
                        &types,
                        &codes,
                        &readers,
                        &kinds,
                        &sources,
                        &locators,
                        &statuses,
                        &flags,
                        &consumption,
                        &excluded,
                        &received,
                        &batches,
                    ],
                )
                .await
                .map_err(e)
        })
        .unwrap();
    assert_eq!(inserted, N as u64);
    let db = pg::dbname(&url);
    assert_eq!(
        pg::psql(
            db,
            "SELECT string_agg(tableoid::regclass::text || '=' || n, ',' ORDER BY tableoid::regclass::text) FROM (SELECT tableoid, count(*) n FROM reads GROUP BY tableoid) p"
        ),
        "reads_y2026m01=288,reads_y2026m02=672,reads_y2026m03=744,reads_y2026m04=720,reads_y2026m05=576"
    );
    // Values exact, lists as lists, times to the microsecond.
    assert_eq!(
        pg::psql(
            db,
            "SELECT value || ' ' || codes::text || ' ' || (read_at AT TIME ZONE 'UTC')::text FROM reads WHERE raw = '2999'"
        ),
        "2999000000 [\"tamper\"] 2026-05-24 23:00:00"
    );
}

#[test]
fn a_refused_password_names_the_host_and_the_user() {
    let url = pg::database();
    let db = pg::dbname(&url);
    // The role with a password owns the database (so it may create the schema).
    pg::psql(
        "postgres",
        &format!("ALTER DATABASE {db} OWNER TO {}", pg::PASSWORD_ROLE),
    );
    let s = Scratch::new();
    let file = s.file("store.password", "not the password\n");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let password_url = format!("postgresql://{}@127.0.0.1:{}/{db}", pg::PASSWORD_ROLE, pg::port());
    let c = StoreConfig {
        password_file: Some(file.clone()),
        ..config(&password_url)
    };
    let e = connect_err(&c);
    assert!(
        e.contains(&format!("127.0.0.1:{}", pg::port()))
            && e.contains("password refused for user meterd")
            && !e.contains("not the password"),
        "{e}"
    );

    // A file others can read is refused before anything is sent.
    std::fs::write(&file, format!("{}\n", pg::PASSWORD)).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = connect_err(&c);
    assert!(e.contains("store.password_file") && e.contains("chmod 600"), "{e}");

    // The right password, from an owner-only file (trailing newline ignored), connects.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let engine = PgEngine::connect(&c).unwrap();
    assert_eq!(engine.schema_version().unwrap(), SCHEMA_VERSION);
}

#[test]
fn a_missing_database_is_named() {
    let url = format!("postgresql://postgres@127.0.0.1:{}/no_such_db", pg::port());
    let e = connect_err(&config(&url));
    assert!(
        e.contains(&format!("127.0.0.1:{}", pg::port())) && e.contains("database no_such_db does not exist"),
        "{e}"
    );
}

#[test]
fn nothing_listening_is_a_refused_connection_naming_every_host() {
    let (a, b) = (free_port(), free_port());
    let url = format!("postgresql://meterd@127.0.0.1:{a},localhost:{b}/meterd?target_session_attrs=read-write");
    let e = connect_err(&config(&url));
    assert!(
        e.contains(&format!("127.0.0.1:{a}, localhost:{b}")) && e.contains("connection refused"),
        "{e}"
    );
}

/// Whether the engine's connections are encrypted (pg_stat_ssl of its own backend).
fn encrypted(engine: &PgEngine) -> bool {
    engine
        .with_client(|client| async move {
            let row = client
                .query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
                .await
                .map_err(|e| StoreError::Engine(e.to_string()))?;
            Ok(row.get::<_, bool>(0))
        })
        .unwrap()
}

#[test]
fn verify_full_checks_the_certificate_and_the_host_name() {
    let url = pg::database();
    let db = pg::dbname(&url);
    let localhost = format!("postgresql://postgres@localhost:{}/{db}", pg::port());
    let verify = |url: &str, ca_file: Option<std::path::PathBuf>| StoreConfig {
        sslmode: SslMode::VerifyFull,
        ca_file,
        ..config(url)
    };
    // The server's CA and the name its certificate has: connected, encrypted.
    let engine = PgEngine::connect(&verify(&localhost, Some(pg::ca_file()))).unwrap();
    assert!(encrypted(&engine));
    drop(engine);
    // Without the CA (the system's roots do not know it): refused, saying why.
    let e = connect_err(&verify(&localhost, None));
    assert!(
        e.contains(&format!("localhost:{}", pg::port()))
            && e.contains("TLS certificate verification failed")
            && e.contains("store.ca_file"),
        "{e}"
    );
    // The right CA but another name than the certificate's (127.0.0.1): refused.
    let e = connect_err(&verify(&url, Some(pg::ca_file())));
    assert!(e.contains("TLS certificate verification failed"), "{e}");
    // require: encrypted, the certificate not checked.
    let require = StoreConfig {
        sslmode: SslMode::Require,
        ..config(&url)
    };
    assert!(encrypted(&PgEngine::connect(&require).unwrap()));
    // disable: plain text.
    assert!(!encrypted(&PgEngine::connect(&config(&url)).unwrap()));
}

#[test]
fn a_server_without_tls_is_refused_by_require_and_verify_full() {
    // A server that answers "no TLS" (`N`) to the client's SSLRequest, as one with ssl = off.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for conn in listener.incoming().flatten().take(2) {
            let mut conn = conn;
            let mut request = [0u8; 8];
            if conn.read_exact(&mut request).is_ok() {
                let _ = conn.write_all(b"N");
            }
        }
    });
    let url = format!("postgresql://meterd@127.0.0.1:{port}/meterd");
    for sslmode in [SslMode::VerifyFull, SslMode::Require] {
        let e = connect_err(&StoreConfig {
            sslmode,
            ..config(&url)
        });
        assert!(
            e.contains(&format!("127.0.0.1:{port}")) && e.contains("offers no TLS"),
            "{sslmode:?}: {e}"
        );
    }
}

#[test]
fn check_config_reports_a_bad_url_and_a_password_in_it() {
    let s = Scratch::new();
    let file = s.file(
        "site.toml",
        "[store]\nurl = \"postgresql://meterd@db1:notaport/meterd\"\n",
    );
    let err = s.fails(&["--config", file.to_str().unwrap(), "check-config"]);
    assert!(
        err.contains("site.toml") && err.contains("store.url") && err.contains("not a PostgreSQL URL"),
        "{err}"
    );

    let file = s.file(
        "site.toml",
        "[store]\nurl = \"postgresql://meterd:hunter2@db1/meterd\"\n",
    );
    let err = s.fails(&["--config", file.to_str().unwrap(), "check-config"]);
    assert!(
        err.contains("store.url") && err.contains("password") && !err.contains("hunter2"),
        "{err}"
    );

    // The password file must be the owner's alone.
    let pw = s.file("store.password", "secret\n");
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o644)).unwrap();
    let file = s.file(
        "site.toml",
        &format!(
            "[store]\nurl = \"postgresql://meterd@db1/meterd\"\npassword_file = \"{}\"\n",
            pw.display()
        ),
    );
    let err = s.fails(&["--config", file.to_str().unwrap(), "check-config"]);
    assert!(
        err.contains("store.password_file") && err.contains("chmod 600"),
        "{err}"
    );
}

#[test]
fn meterd_store_url_overrides_the_configured_url_and_check_config_connects() {
    let s = Scratch::new();
    let file = s.file(
        "site.toml",
        "[store]\nurl = \"postgresql://meterd@db1.invalid/meterd\"\nsslmode = \"disable\"\n",
    );
    let run = |env_url: &str| {
        s.cmd(&["--config", file.to_str().unwrap(), "check-config"])
            .env("METERD_STORE_URL", env_url)
            .output()
            .unwrap()
    };
    // The variable's database, not the file's, is the one checked (and left unchanged).
    let url = pg::database();
    let out = run(&url);
    let (stdout, stderr) = crate::common::texts(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains(&format!("url = \"{url}\"")) && !stdout.contains("db1"),
        "{stdout}"
    );
    assert!(
        stderr.contains(&format!("store database {}", pg::dbname(&url)))
            && stderr.contains(&format!("schema version 0 (this meterd: {SCHEMA_VERSION}")),
        "{stderr}"
    );
    assert_eq!(
        pg::psql(
            pg::dbname(&url),
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ),
        "0"
    );

    // Without the variable, the file's host, which does not resolve, is reported.
    let out = s
        .cmd(&["--config", file.to_str().unwrap(), "check-config"])
        .env_remove("METERD_STORE_URL")
        .output()
        .unwrap();
    let (_, stderr) = crate::common::texts(&out);
    assert!(
        !out.status.success() && stderr.contains("db1.invalid:5432") && stderr.contains("host name not found"),
        "{stderr}"
    );

    // A missing database, through check-config.
    let out = run(&format!("postgresql://postgres@127.0.0.1:{}/not_there", pg::port()));
    let (_, stderr) = crate::common::texts(&out);
    assert!(
        !out.status.success() && stderr.contains("database not_there does not exist"),
        "{stderr}"
    );

    // A bad URL in the variable names the variable.
    let out = run("postgresql://meterd@db9:bad/other");
    let (_, stderr) = crate::common::texts(&out);
    assert!(
        !out.status.success() && stderr.contains("METERD_STORE_URL") && stderr.contains("store.url"),
        "{stderr}"
    );
}
